/* Unit tests for src/net/ pure helpers: CIDRs, names, -p specs, hosts/resolv.conf, isolation rules. */
#include <arpa/inet.h>

#include "unit.h"
#include "common/fs.h"
#include "net/internal.h"

static void test_cidr_parse(void **state)
{
	struct ip4net n;
	uint32_t host;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(net_ip4net_parse("10.1.0.0/24", "subnet", false, &n, NULL, NULL), 0);
	assert_int_equal(n.addr, 0x0a010000);
	assert_int_equal(n.prefix, 24);
	_cleanup_free_ char *s = net_ip4net_format(&n);
	assert_string_equal(s, "10.1.0.0/24");
	assert_int_equal(net_ip4net_parse("10.1.0.5/24", "subnet", true, &n, &host, NULL), 0);
	assert_int_equal(host, 0x0a010005);
	assert_int_equal(net_ip4net_parse("10.1.0.5/24", "subnet", false, &n, NULL, &err), -EINVAL);
	assert_non_null(strstr(err->msg, "did you mean '10.1.0.0/24'"));
	const char *bad[] = { "",          "10.1.0.0",  "10.1.0.0/",    "10.1.0.0/33",  "10.1.0.0/-1",
			      "10.1.0/24", "a.b.c.d/8", "10.1.0.0/24x", "10.1.0.0/ 24", "300.1.0.0/8",
			      "::1/64",    NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(net_ip4net_parse(bad[i], "subnet", false, &n, NULL, NULL), -EINVAL);
	assert_int_equal(net_ip4net_parse(NULL, "subnet", false, &n, NULL, NULL), -EINVAL);
}

static void test_overlap_contains(void **state)
{
	struct ip4net a = { 0x0a000000, 8 }, b = { 0x0a010000, 16 }, c = { 0x0b000000, 8 }, all = { 0, 0 };
	assert_true(net_ip4net_overlap(&a, &b));
	assert_true(net_ip4net_overlap(&b, &a));
	assert_false(net_ip4net_overlap(&a, &c));
	assert_true(net_ip4net_overlap(&all, &c));
	assert_true(net_ip4net_contains(&b, 0x0a01ff01));
	assert_false(net_ip4net_contains(&b, 0x0a02ff01));
}

static void test_ip_validation(void **state)
{
	assert_true(net_ip_valid("1.2.3.4"));
	assert_true(net_ip_valid("fe80::1"));
	assert_false(net_ip_valid("1.2.3"));
	assert_false(net_ip_valid(NULL));
	assert_true(net_ip_cidr_valid("1.2.3.4/32"));
	assert_true(net_ip_cidr_valid("fd00::2/64"));
	assert_false(net_ip_cidr_valid("1.2.3.4/33"));
	assert_false(net_ip_cidr_valid("fd00::2/129"));
	assert_false(net_ip_cidr_valid("1.2.3.4"));
	assert_false(net_ip_cidr_valid("1.2.3.4/"));
}

static void test_names(void **state)
{
	assert_true(net_name_valid("my-net_1.x"));
	assert_false(net_name_valid("-net"));
	assert_false(net_name_valid("a/b"));
	assert_false(net_name_valid(""));
	assert_true(net_id_valid("abc123"));
	assert_false(net_id_valid(".."));
	assert_false(net_id_valid("a/../b"));
	assert_true(net_hostname_valid("web.example"));
	assert_false(net_hostname_valid("-x"));
	assert_false(net_hostname_valid("a b"));
	/* docker takes any name: spaces, '/', ':' and UTF-8, not control characters */
	assert_true(net_network_name_valid("my net"));
	assert_true(net_network_name_valid("a/b:c \xc3\xbc"));
	assert_false(net_network_name_valid(""));
	assert_false(net_network_name_valid("a\nb"));
	assert_false(net_network_name_valid("a\x7f"));
	char long_name[NET_NAME_MAX + 2];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[NET_NAME_MAX + 1] = '\0';
	assert_false(net_network_name_valid(long_name));
	long_name[NET_NAME_MAX] = '\0';
	assert_true(net_network_name_valid(long_name));
	assert_true(net_mac_valid("02:42:AC:11:00:9f"));
	assert_false(net_mac_valid("02:42:ac:11:00"));
	assert_false(net_mac_valid("02-42-ac-11-00-99"));
	assert_false(net_mac_valid("02:42:ac:11:00:9g"));
	assert_false(net_mac_valid(NULL));
}

static void test_routes_read(void **state)
{
	struct route4 *r = NULL;
	size_t n = 99;
	assert_int_equal(net_routes4_read(&r, &n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		assert_true(r[i].dst.prefix > 0);
	free(r);
}

static void test_port_specs(void **state)
{
	struct net_port *v = NULL;
	size_t n = 0;
	assert_int_equal(net_port_parse("8080:80", &v, &n, NULL), 0);
	assert_int_equal(net_port_parse("127.0.0.1:9000-9001:90-91/udp", &v, &n, NULL), 0);
	assert_int_equal(net_port_parse("53", &v, &n, NULL), 0);
	assert_int_equal(net_port_parse("127.0.0.1::81", &v, &n, NULL), 0);
	assert_int_equal(net_port_parse("[::1]:82:82/sctp", &v, &n, NULL), 0);
	assert_int_equal(n, 6);
	assert_int_equal(v[0].host_port, 8080);
	assert_int_equal(v[0].container_port, 80);
	assert_string_equal(v[0].proto, "tcp");
	assert_string_equal(v[0].host_ip, "");
	assert_string_equal(v[1].host_ip, "127.0.0.1");
	assert_int_equal(v[2].host_port, 9001);
	assert_int_equal(v[2].container_port, 91);
	assert_string_equal(v[2].proto, "udp");
	assert_int_equal(v[3].host_port, 0);
	assert_int_equal(v[4].host_port, 0);
	assert_string_equal(v[5].host_ip, "::1");
	assert_string_equal(v[5].proto, "sctp");
	const char *bad[] = {
		"",      "0",          "65536", "80/icmp", "x:80", "1.2.3:80:80", "8080-8081:80-82",
		"90-80", "[::1:80:80", ":",     "80:",     NULL
	};
	for (size_t i = 0; bad[i]; i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		assert_true(net_port_parse(bad[i], &v, &n, &err) < 0);
		assert_non_null(err);
	}
	assert_int_equal(n, 6);
	assert_int_equal(net_port_expose("80/tcp", &v, &n, NULL), 0);
	assert_int_equal(v[6].host_port, 0);
	assert_true(net_port_expose("1:2", &v, &n, NULL) < 0);
	json_t *j = net_ports_to_cni(v, 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "hostPort")), 8080);
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "hostIP")), "127.0.0.1");
	assert_null(json_object_get(json_array_get(j, 0), "hostIP"));
	json_decref(j);
	free(v);
}

static void test_hosts_and_resolv(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT, rc = STRBUF_INIT, rc2 = STRBUF_INIT;
	struct hosts_entry e[] = { { "10.0.0.2", "web www" } };
	net_hosts_render(&sb, e, 1);
	assert_non_null(strstr(sb.buf, "127.0.0.1\tlocalhost\n"));
	assert_non_null(strstr(sb.buf, "10.0.0.2\tweb www\n"));
	const char *host =
	    "# c\nnameserver 127.0.0.53\nnameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n";
	net_resolv_conf_render(&rc, host, NULL, NULL, NULL);
	assert_null(strstr(rc.buf, "127.0.0.53"));
	assert_non_null(strstr(rc.buf, "nameserver 1.1.1.1\n"));
	assert_non_null(strstr(rc.buf, "search a.example\n"));
	assert_non_null(strstr(rc.buf, "options ndots:2\n"));
	const char *dns[] = { "9.9.9.9", NULL }, *search[] = { "x.test", "y.test", NULL };
	net_resolv_conf_render(&rc2, "nameserver 127.0.0.1\n", dns, search, NULL);
	assert_non_null(strstr(rc2.buf, "nameserver 9.9.9.9\n"));
	assert_non_null(strstr(rc2.buf, "search x.test y.test\n"));
	strbuf_reset(&rc2);
	net_resolv_conf_render(&rc2, "nameserver 127.0.0.1\n", NULL, NULL, NULL);
	assert_non_null(strstr(rc2.buf, "nameserver 8.8.8.8\n"));
}

static void test_rewrite_in_place_keeps_inode(void **state)
{
	_cleanup_free_ char *d = unit_tmpdir();
	_cleanup_free_ char *p = xasprintf("%s/hosts", d);
	struct stat a, b;
	assert_int_equal(net_file_rewrite_in_place(p, "a long first version\n", 21, NULL), 0);
	assert_int_equal(stat(p, &a), 0);
	assert_int_equal(net_file_rewrite_in_place(p, "short\n", 6, NULL), 0);
	assert_int_equal(stat(p, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(b.st_size, 6);
	fs_rm_rf(d, NULL);
}

static void test_extra_hosts(void **state)
{
	char *name = NULL, *ip = NULL;
	assert_int_equal(net_extra_host_parse("db:10.0.0.9", &name, &ip, NULL), 0);
	assert_string_equal(name, "db");
	assert_string_equal(ip, "10.0.0.9");
	free(name);
	free(ip);
	assert_int_equal(net_extra_host_parse("v6:[fd00::1]", &name, &ip, NULL), 0);
	assert_string_equal(ip, "fd00::1");
	free(name);
	free(ip);
	assert_int_equal(net_extra_host_parse("gw:host-gateway", &name, &ip, NULL), 0);
	free(name);
	free(ip);
	const char *bad[] = { "nocolon", "db:notanip", ":1.2.3.4", "a b:1.2.3.4", "x:[zz]", NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(net_extra_host_parse(bad[i], &name, &ip, NULL), -EINVAL);
}

static void test_ip6(void **state)
{
	struct ip6net a, b;
	uint8_t x[16];
	assert_int_equal(net_ip6net_parse("fd00:db8:1::/64", "s", &a, NULL), 0);
	assert_int_equal(a.prefix, 64);
	_cleanup_free_ char *f = net_ip6net_format(&a);
	assert_string_equal(f, "fd00:db8:1::/64");
	assert_int_equal(net_ip6net_parse("fd00:db8:1::1/64", "s", &b, NULL), -EINVAL); /* host bits */
	assert_int_equal(net_ip6net_parse("fd00::/129", "s", &b, NULL), -EINVAL);
	assert_int_equal(net_ip6net_parse("10.0.0.0/8", "s", &b, NULL), -EINVAL);
	assert_int_equal(net_ip6net_parse("fd00::", "s", &b, NULL), -EINVAL);
	assert_int_equal(net_ip6net_parse("fd00:db8::/32", "s", &b, NULL), 0);
	assert_true(net_ip6net_overlap(&a, &b));
	assert_int_equal(net_ip6net_parse("fd00:db9::/32", "s", &b, NULL), 0);
	assert_false(net_ip6net_overlap(&a, &b));
	assert_int_equal(net_ip6_parse("fd00:db8:1::ff", "a", x, NULL), 0);
	assert_true(net_ip6net_contains(&a, x));
	assert_int_equal(net_ip6_parse("fd00:db8:2::ff", "a", x, NULL), 0);
	assert_false(net_ip6net_contains(&a, x));
	assert_int_equal(net_ip6_parse("1.2.3.4", "a", x, NULL), -EINVAL);
	/* net_cni_result_ipv6 */
	json_auto_t *res = json_pack("{s:[{s:s},{s:s,s:s}]}", "ips", "address", "10.1.0.2/24", "address",
				     "fd00:db8:1:0::2/64", "gateway", "fd00:db8:1::1");
	char ip[IP6_STR_MAX], gw[IP6_STR_MAX];
	int p = 0;
	assert_int_equal(net_cni_result_ipv6(res, ip, &p, gw), 0);
	assert_string_equal(ip, "fd00:db8:1::2");
	assert_string_equal(gw, "fd00:db8:1::1");
	assert_int_equal(p, 64);
	json_auto_t *v4 = json_pack("{s:[{s:s}]}", "ips", "address", "10.1.0.2/24");
	assert_int_equal(net_cni_result_ipv6(v4, ip, &p, gw), -ENOENT);
}

static void test_fw_render_v6(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	struct fw_net nets[] = { { "berth0", "172.17.0.0/16", false, NULL },
				 { "br-a", "10.1.0.0/24", false, "fd00:db8:1::/64" },
				 { "br-b", "10.2.0.0/24", true, "fd00:db8:2::/64" } };
	struct fw_chains c = { 0 };
	net_fw_chains_init(&c, "0123abcd");
	net_fw_render_family(&sb, &c, nets, 3, true);
	assert_non_null(
	    strstr(sb.buf, "-A BERTH-POSTROUTING-0123abcd -s fd00:db8:1::/64 ! -o br-a -j MASQUERADE\n"));
	assert_null(strstr(sb.buf, "fd00:db8:2::/64")); /* internal: no NAT */
	assert_null(strstr(sb.buf, "172.17.0.0/16"));
	assert_non_null(strstr(sb.buf, "-A BERTH-ISOLATION-2-0123abcd -o br-b -j DROP\n"));
}

static void test_fw_render(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	struct fw_net nets[] = { { "berth0", "172.17.0.0/16", false }, { "br-a", "10.1.0.0/24", true } };
	struct fw_chains c = { 0 };
	net_fw_chains_init(&c, "0123abcdEXTRA");
	assert_string_equal(c.iso1, "BERTH-ISOLATION-1-0123abcd");
	assert_string_equal(c.iso2, "BERTH-ISOLATION-2-0123abcd");
	assert_string_equal(c.nat, "BERTH-POSTROUTING-0123abcd");
	net_fw_render(&sb, &c, nets, 2);
	assert_true(startswith(sb.buf, "*filter\n:BERTH-ISOLATION-1-0123abcd - [0:0]\n"));
	assert_non_null(strstr(sb.buf, "-A BERTH-ISOLATION-1-0123abcd -i br-a ! -o br-a -j DROP\n"));
	assert_non_null(strstr(sb.buf, "-A BERTH-ISOLATION-1-0123abcd -i berth0 ! -o berth0 -j "
				       "BERTH-ISOLATION-2-0123abcd\n"));
	assert_non_null(strstr(sb.buf, "-A BERTH-ISOLATION-2-0123abcd -o br-a -j DROP\n"));
	assert_null(strstr(sb.buf, "-i berth0 ! -o berth0 -j DROP"));
	/* internal drops come before the DNAT exception */
	assert_true(strstr(sb.buf, "br-a ! -o br-a -j DROP") < strstr(sb.buf, "--ctstate DNAT"));
	assert_non_null(strstr(sb.buf,
			       "*nat\n:BERTH-POSTROUTING-0123abcd - [0:0]\n:BERTH-HOSTPORT-SETMARK - [0:0]\n"
			       "-A BERTH-HOSTPORT-SETMARK -j MARK --set-xmark 0x2000/0x2000\n"
			       "-A BERTH-POSTROUTING-0123abcd -m mark --mark 0x2000/0x2000 -j MASQUERADE\n"
			       "-A BERTH-POSTROUTING-0123abcd -s 172.17.0.0/16 ! -o berth0 -j MASQUERADE\n"
			       "COMMIT\n"));
	assert_null(strstr(sb.buf, "10.1.0.0/24 ! -o br-a")); /* internal: no NAT */
	/* no rule of any other chain set: a daemon only ever rebuilds its own */
	assert_null(strstr(sb.buf, "BERTH-POSTROUTING "));
	assert_null(strstr(sb.buf, "BERTH-ISOLATION-1 "));
}

static void test_dns_messages(void **state)
{
	/* id 0x1234, RD, one question: "Web.app" A IN */
	const uint8_t q[] = { 0x12, 0x34, 0x01, 0x00, 0,   1,   0,   0, 0, 0, 0, 0, 3,
			      'W',  'e',  'b',  3,    'a', 'p', 'p', 0, 0, 1, 0, 1 };
	struct dns_query dq;
	assert_int_equal(net_dns_parse_query(q, sizeof(q), &dq, NULL), 0);
	assert_string_equal(dq.name, "web.app");
	assert_int_equal(dq.id, 0x1234);
	assert_int_equal(dq.qtype, DNS_TYPE_A);
	assert_int_equal(dq.end, sizeof(q));
	uint8_t out[512];
	uint32_t addrs[] = { 0x0a000002, 0x0a000003 };
	size_t n = net_dns_build_reply(q, &dq, DNS_RCODE_OK, addrs, 2, out, sizeof(out));
	assert_int_equal(n, sizeof(q) + 32);
	assert_int_equal(out[2] & 0x80, 0x80); /* response */
	assert_int_equal(out[2] & 0x01, 0x01); /* RD copied */
	assert_int_equal(out[3] & 0x0f, 0);
	assert_int_equal(out[7], 2); /* ANCOUNT */
	assert_int_equal(out[sizeof(q)], 0xc0);
	assert_int_equal(out[sizeof(q) + 1], 12);
	assert_memory_equal(out + sizeof(q) + 12, "\x0a\x00\x00\x02", 4);
	assert_int_equal(net_dns_build_reply(q, &dq, DNS_RCODE_NXDOMAIN, NULL, 0, out, sizeof(out)),
			 sizeof(q));
	assert_int_equal(out[3] & 0x0f, DNS_RCODE_NXDOMAIN);
	assert_int_equal(net_dns_build_reply(q, &dq, 0, addrs, 2, out, 30), 0); /* too small */
	struct in6_addr a6[2];
	assert_int_equal(inet_pton(AF_INET6, "fd00:db8::2", &a6[0]), 1);
	assert_int_equal(inet_pton(AF_INET6, "fd00:db8::3", &a6[1]), 1);
	n = net_dns_build_reply6(q, &dq, a6, 2, out, sizeof(out));
	assert_int_equal(n, sizeof(q) + 2 * 28);
	assert_int_equal(out[3] & 0x0f, DNS_RCODE_OK);
	assert_int_equal(out[7], 2);                         /* ANCOUNT */
	assert_int_equal(out[sizeof(q) + 3], DNS_TYPE_AAAA); /* TYPE */
	assert_int_equal(out[sizeof(q) + 11], 16);           /* RDLENGTH */
	assert_memory_equal(out + sizeof(q) + 12, &a6[0], 16);
	assert_memory_equal(out + sizeof(q) + 28 + 12, &a6[1], 16);
	assert_int_equal(net_dns_build_reply6(q, &dq, NULL, 0, out, sizeof(out)), sizeof(q)); /* NODATA */
	assert_int_equal(out[7], 0);
	assert_int_equal(out[3] & 0x0f, DNS_RCODE_OK);
	assert_int_equal(net_dns_build_reply6(q, &dq, a6, 2, out, sizeof(q) + 30), 0); /* too small */
	uint8_t bad[sizeof(q)];
	memcpy(bad, q, sizeof(q));
	bad[2] |= 0x80; /* a response */
	assert_int_equal(net_dns_parse_query(bad, sizeof(bad), &dq, NULL), -EINVAL);
	memcpy(bad, q, sizeof(q));
	bad[5] = 2; /* two questions */
	assert_int_equal(net_dns_parse_query(bad, sizeof(bad), &dq, NULL), -EINVAL);
	memcpy(bad, q, sizeof(q));
	bad[12] = 0xc0; /* compression pointer in the question */
	assert_int_equal(net_dns_parse_query(bad, sizeof(bad), &dq, NULL), -EINVAL);
	memcpy(bad, q, sizeof(q));
	bad[12] = 60; /* label runs past the end */
	assert_int_equal(net_dns_parse_query(bad, sizeof(bad), &dq, NULL), -EINVAL);
	assert_int_equal(net_dns_parse_query(q, sizeof(q) - 1, &dq, NULL), -EINVAL); /* truncated */
	assert_int_equal(net_dns_parse_query(q, 5, &dq, NULL), -EINVAL);
	memcpy(bad, q, sizeof(q));
	bad[13] = ' ';
	assert_int_equal(net_dns_parse_query(bad, sizeof(bad), &dq, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_overlap_contains),
		cmocka_unit_test(test_ip_validation),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_routes_read),
		cmocka_unit_test(test_port_specs),
		cmocka_unit_test(test_hosts_and_resolv),
		cmocka_unit_test(test_rewrite_in_place_keeps_inode),
		cmocka_unit_test(test_extra_hosts),
		cmocka_unit_test(test_dns_messages),
		cmocka_unit_test(test_fw_render),
		cmocka_unit_test(test_fw_render_v6),
		cmocka_unit_test(test_ip6),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
