/*
 * Unit tests for network CRUD, container prepare/teardown with the real CNI
 * plugins, gc and the Docker API shapes. Needs root: the whole test process
 * first moves into a private network namespace, so iptables and bridges it
 * creates vanish with it.
 */
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "net/internal.h"

struct fixture {
	char *dir;
	struct net_ctx *ctx;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	_cleanup_free_ char *root = xasprintf("%s/root", f->dir), *run = xasprintf("%s/run", f->dir);
	struct net_config cfg = { .root = root, .exec_root = run };
	_cleanup_error_ struct berth_error *err = NULL;
	int r = net_ctx_open(&cfg, &f->ctx, &err);
	if (r < 0)
		berth_error_print(err, "setup");
	assert_int_equal(r, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	net_gc(f->ctx, NULL, NULL, NULL, NULL);
	net_ctx_free(f->ctx);
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f);
	return 0;
}

/* A bridge left with another address: adopted, or refused when a subnet was asked for (issue 19 item 9). */
static void test_existing_bridge_address(void **state)
{
	assert_int_equal(system("ip link add bt-adopt type bridge && ip addr add 10.251.7.1/24 dev bt-adopt"),
			 0);
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *root = xasprintf("%s/root", dir), *run = xasprintf("%s/run", dir);
	struct net_config cfg = { .root = root, .exec_root = run, .bridge_name = "bt-adopt" };
	struct net_ctx *ctx = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(net_ctx_open(&cfg, &ctx, &err), 0);
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	assert_int_equal(net_network_get(ctx, "bridge", &n, NULL), 0);
	assert_string_equal(n->subnet, "10.251.7.0/24");
	assert_string_equal(n->gateway, "10.251.7.1");
	net_ctx_free(ctx);
	/* the same root after the bridge got another address: adopted again (nothing attached) */
	assert_int_equal(system("ip addr flush dev bt-adopt && ip addr add 10.251.8.1/24 dev bt-adopt"), 0);
	assert_int_equal(net_ctx_open(&cfg, &ctx, NULL), 0);
	net_network_free(n);
	n = NULL;
	assert_int_equal(net_network_get(ctx, "bridge", &n, NULL), 0);
	assert_string_equal(n->subnet, "10.251.8.0/24");
	net_ctx_free(ctx);
	/* a subnet asked for that the bridge does not have: refused, naming the bridge and the fix */
	_cleanup_free_ char *root2 = xasprintf("%s/root2", dir);
	struct net_config cfg2 = {
		.root = root2, .exec_root = run, .bridge_name = "bt-adopt", .bridge_subnet = "10.251.9.0/24"
	};
	assert_int_equal(net_ctx_open(&cfg2, &ctx, &err), -EEXIST);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_non_null(strstr(msg, "bridge 'bt-adopt' already has address 10.251.8.1/24"));
	assert_non_null(strstr(msg, "ip link delete bt-adopt"));
	assert_int_equal(system("ip link delete bt-adopt"), 0);
	fs_rm_rf(dir, NULL);
}

static int create(struct fixture *f, const char *name, const char *subnet, struct berth_error **err)
{
	struct net_create_opts o = { .name = name, .subnet = subnet };
	return net_network_create(f->ctx, &o, NULL, err);
}

static void test_default_networks(void **state)
{
	struct fixture *f = *state;
	struct net_network **v = NULL;
	assert_int_equal(net_network_list(f->ctx, &v, NULL), 0);
	assert_string_equal(v[0]->name, "bridge");
	assert_string_equal(v[0]->bridge, "berth0");
	assert_string_equal(v[0]->subnet, "172.17.0.0/16"); /* a fresh netns has no routes */
	assert_string_equal(v[0]->gateway, "172.17.0.1");
	assert_string_equal(v[1]->name, "host");
	assert_string_equal(v[2]->name, "none");
	assert_null(v[3]);
	net_network_list_free(v);
}

static void test_create_validation(void **state)
{
	struct fixture *f = *state;
	struct {
		struct net_create_opts o;
		int code;
		const char *msg;
	} cases[] = {
		{ { .name = "a", .subnet = "10.5.0.0/33" }, -EINVAL, "invalid subnet '10.5.0.0/33'" },
		{ { .name = "a", .subnet = "10.5.0.1/24" }, -EINVAL, "host bits set" },
		{ { .name = "a", .subnet = "10.5.0.0/24", .gateway = "10.6.0.1" },
		  -EINVAL,
		  "invalid gateway" },
		{ { .name = "a", .subnet = "10.5.0.0/24", .ip_range = "10.5.1.0/25" },
		  -EINVAL,
		  "not inside" },
		{ { .name = "a", .gateway = "10.5.0.1" }, -EINVAL, "need --subnet" },
		{ { .name = "bad\nname" }, -EINVAL, "invalid network name" },
		{ { .name = "a",
		    .subnet = "10.5.0.0/24",
		    .aux = (const char *const[]){ "x=10.6.0.1", NULL } },
		  -EINVAL,
		  "not inside subnet" },
		{ { .name = "host" }, -EPERM, "reserved" },
		{ { .name = "a", .driver = "overlay" }, -EOPNOTSUPP, "not supported" },
		{ { .name = "a", .subnet = "172.17.5.0/24" }, -EEXIST, "overlaps with network 'bridge'" },
		{ { .name = "a", .ipv6 = true, .subnet6 = "fd00:5::/64", .ip_range6 = "fd00:6::/120" },
		  -EINVAL,
		  "not inside subnet" },
		{ { .name = "a", .ipv6 = true, .subnet6 = "fd00:5::/64", .ip_range6 = "fd00::/16" },
		  -EINVAL,
		  "not inside subnet" },
		{ { .name = "a", .ipv6 = true, .subnet6 = "fd00:5::/64", .ip_range6 = "fd00:5::1/120" },
		  -EINVAL,
		  "host bits" },
		{ { .name = "a", .ip_range6 = "fd00:5::/120" }, -EINVAL, "needs IPv6 enabled" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		assert_int_equal(net_network_create(f->ctx, &cases[i].o, NULL, &err), cases[i].code);
		_cleanup_free_ char *msg = berth_error_string(err);
		if (!strstr(msg, cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, msg, cases[i].msg);
	}
	struct net_network **v = NULL;
	assert_int_equal(net_network_list(f->ctx, &v, NULL), 0);
	assert_null(v[3]); /* nothing left behind */
	net_network_list_free(v);
}

static void test_create_get_remove_prune(void **state)
{
	struct fixture *f = *state;
	const char *labels[] = { "team=a", NULL };
	struct net_create_opts o = { .name = "n1",
				     .subnet = "10.5.0.0/24",
				     .ip_range = "10.5.0.128/25",
				     .internal = true,
				     .labels = labels };
	_cleanup_(net_network_freep) struct net_network *n = NULL, *g = NULL;
	assert_int_equal(net_network_create(f->ctx, &o, &n, NULL), 0);
	assert_string_equal(n->gateway, "10.5.0.1");
	assert_int_equal(strlen(n->bridge), 15);
	assert_int_equal(create(f, "n1", "10.6.0.0/24", NULL), -EEXIST);
	assert_int_equal(create(f, "n2", "10.5.0.0/16", NULL), -EEXIST);
	assert_int_equal(create(f, "auto", NULL, NULL), 0);
	assert_int_equal(net_network_get(f->ctx, "auto", &g, NULL), 0);
	assert_string_equal(g->subnet, "172.18.0.0/16");
	net_network_free(g);
	assert_int_equal(net_network_get(f->ctx, n->id, &g, NULL), 0);
	assert_string_equal(g->name, "n1");
	assert_true(g->internal);
	assert_string_equal(g->labels[0], "team=a");
	assert_int_equal(net_network_get(f->ctx, "nosuch", NULL, NULL), -ENOENT);
	json_auto_t *api = net_api_network(f->ctx, g, true);
	assert_string_equal(json_string_value(json_object_get(api, "Name")), "n1");
	assert_true(json_is_true(json_object_get(api, "Internal")));
	json_t *cfg = json_array_get(json_object_get(json_object_get(api, "IPAM"), "Config"), 0);
	assert_string_equal(json_string_value(json_object_get(cfg, "IPRange")), "10.5.0.128/25");
	assert_string_equal(json_string_value(json_object_get(json_object_get(api, "Labels"), "team")), "a");
	assert_int_equal(net_network_remove(f->ctx, "bridge", NULL), -EPERM);
	assert_int_equal(net_network_remove(f->ctx, "n1", NULL), 0);
	assert_int_equal(net_network_remove(f->ctx, "n1", NULL), -ENOENT);
	_cleanup_strv_ char **removed = NULL;
	assert_int_equal(net_network_prune(f->ctx, &removed, NULL), 0);
	assert_string_equal(removed[0], "auto");
	assert_null(removed[1]);
	json_auto_t *pr = net_api_prune_response(removed);
	assert_int_equal(json_array_size(json_object_get(pr, "NetworksDeleted")), 1);
}

/* an IPv6 --ip-range: kept, shown, and the IPv6 range set of the CNI config limited to it */
static void test_ipv6_ip_range(void **state)
{
	struct fixture *f = *state;
	struct net_create_opts o = {
		.name = "r6", .ipv6 = true, .subnet6 = "fd00:5::/64", .ip_range6 = "fd00:5::/120"
	};
	_cleanup_(net_network_freep) struct net_network *n = NULL, *g = NULL;
	assert_int_equal(net_network_create(f->ctx, &o, &n, NULL), 0);
	assert_int_equal(net_network_get(f->ctx, "r6", &g, NULL), 0);
	assert_string_equal(g->ip_range6, "fd00:5::/120");
	json_auto_t *api = net_api_network(f->ctx, g, false);
	json_t *cfg = json_array_get(json_object_get(json_object_get(api, "IPAM"), "Config"), 1);
	assert_string_equal(json_string_value(json_object_get(cfg, "IPRange")), "fd00:5::/120");
	/* the range starts at the subnet's own address: that one (the anycast address) is skipped */
	json_auto_t *conf = net_network_conflist(f->ctx, g, false, false, false);
	json_t *ranges = json_object_get(
	    json_object_get(json_array_get(json_object_get(conf, "plugins"), 0), "ipam"), "ranges");
	json_t *r6 = json_array_get(json_array_get(ranges, 1), 0);
	assert_string_equal(json_string_value(json_object_get(r6, "rangeStart")), "fd00:5::1");
	assert_string_equal(json_string_value(json_object_get(r6, "rangeEnd")), "fd00:5::ff");
	/* a static --ip6 gets the whole subnet; the IPv4 side keeps its own choice */
	json_auto_t *whole = net_network_conflist(f->ctx, g, false, false, true);
	ranges = json_object_get(
	    json_object_get(json_array_get(json_object_get(whole, "plugins"), 0), "ipam"), "ranges");
	assert_null(json_object_get(json_array_get(json_array_get(ranges, 1), 0), "rangeStart"));
	assert_int_equal(net_network_remove(f->ctx, "r6", NULL), 0);
	/* a range elsewhere in the subnet starts at its own first address */
	o.ip_range6 = "fd00:5::1:0/112";
	net_network_free(g);
	g = NULL;
	assert_int_equal(net_network_create(f->ctx, &o, &g, NULL), 0);
	json_auto_t *conf2 = net_network_conflist(f->ctx, g, false, false, false);
	ranges = json_object_get(
	    json_object_get(json_array_get(json_object_get(conf2, "plugins"), 0), "ipam"), "ranges");
	r6 = json_array_get(json_array_get(ranges, 1), 0);
	assert_string_equal(json_string_value(json_object_get(r6, "rangeStart")), "fd00:5::1:0");
	assert_string_equal(json_string_value(json_object_get(r6, "rangeEnd")), "fd00:5::1:ffff");
	assert_int_equal(net_network_remove(f->ctx, "r6", NULL), 0);
}

static bool link_exists(const char *name)
{
	return if_nametoindex(name) != 0;
}

static void test_prepare_teardown_real_plugins(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(create(f, "app", "10.7.0.0/24", NULL), 0);
	const char *aliases[] = { "db", NULL };
	struct net_endpoint_opts eps[] = { { .network = "app", .aliases = aliases, .ipv4 = "10.7.0.50" } };
	struct net_port ports[] = { { "127.0.0.1", 0, 80, "tcp" } };
	struct net_container_opts o = { .container_id = "c1",
					.name = "one",
					.endpoints = eps,
					.n_endpoints = 1,
					.ports = ports,
					.n_ports = 1 };
	_cleanup_(net_container_freep) struct net_container *c = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = net_container_prepare(f->ctx, &o, &c, &err);
	if (r < 0)
		berth_error_print(err, "prepare");
	assert_int_equal(r, 0);
	assert_string_equal(c->endpoints[0].ipv4, "10.7.0.50");
	assert_string_equal(c->endpoints[0].ifname, "eth0");
	assert_true(c->ports[0].host_port > 0); /* allocated */
	assert_string_equal(c->endpoints[0].aliases[0], "one");
	assert_string_equal(c->endpoints[0].aliases[1], "db");
	assert_int_equal(access(c->netns_path, F_OK), 0);
	/* same static IP again: refused, nothing left */
	struct net_container_opts o2 = { .container_id = "c2", .endpoints = eps, .n_endpoints = 1 };
	assert_int_equal(net_container_prepare(f->ctx, &o2, NULL, NULL), -EADDRNOTAVAIL);
	assert_int_equal(net_container_get(f->ctx, "c2", NULL, NULL), -ENOENT);
	/* same host port: refused */
	struct net_port same[] = { c->ports[0] };
	struct net_container_opts o3 = { .container_id = "c3", .ports = same, .n_ports = 1 };
	assert_int_equal(net_container_prepare(f->ctx, &o3, NULL, NULL), -EADDRINUSE);
	/* unknown network: refused */
	struct net_endpoint_opts unk[] = { { .network = "nosuch" } };
	struct net_container_opts o4 = { .container_id = "c4", .endpoints = unk, .n_endpoints = 1 };
	assert_int_equal(net_container_prepare(f->ctx, &o4, NULL, NULL), -ENOENT);
	assert_int_equal(net_container_prepare(f->ctx, &o, NULL, NULL), -EEXIST);
	{
		_cleanup_error_ struct berth_error *cerr = NULL;
		if (net_container_check(f->ctx, "c1", &cerr) < 0)
			berth_error_print(cerr, "check");
		assert_null(cerr);
	}
	assert_int_equal(net_network_remove(f->ctx, "app", NULL), -EBUSY);
	json_auto_t *ns = net_api_network_settings(c, NULL);
	json_t *app = json_object_get(json_object_get(ns, "Networks"), "app");
	assert_string_equal(json_string_value(json_object_get(app, "IPAddress")), "10.7.0.50");
	assert_non_null(json_object_get(json_object_get(ns, "Ports"), "80/tcp"));
	assert_true(link_exists("br-") == false);
	/* connect to the default network, then disconnect */
	struct net_endpoint_opts def = { .network = "bridge" };
	assert_int_equal(net_container_connect(f->ctx, "c1", &def, NULL), 0);
	assert_int_equal(net_container_connect(f->ctx, "c1", &def, NULL), -EEXIST);
	assert_true(link_exists("berth0"));
	assert_int_equal(net_container_disconnect(f->ctx, "c1", "bridge", NULL), 0);
	assert_int_equal(net_container_disconnect(f->ctx, "c1", "bridge", NULL), -ENOENT);
	_cleanup_free_ char *nspath = xstrdup(c->netns_path);
	assert_int_equal(net_container_teardown(f->ctx, "c1", NULL), 0);
	assert_int_equal(access(nspath, F_OK), -1);
	assert_int_equal(net_container_teardown(f->ctx, "c1", NULL), 0);
	assert_int_equal(net_network_remove(f->ctx, "app", NULL), 0);
}

#define PAR 6

struct par_arg {
	struct fixture *f;
	char id[8];
	struct net_container *c;
	int r;
};

static void *par_prepare(void *arg)
{
	struct par_arg *a = arg;
	struct net_endpoint_opts eps[] = { { .network = "par" } };
	struct net_port ports[] = { { "127.0.0.1", 0, 80, "tcp" } };
	struct net_container_opts o = {
		.container_id = a->id, .endpoints = eps, .n_endpoints = 1, .ports = ports, .n_ports = 1
	};
	_cleanup_error_ struct berth_error *err = NULL;
	a->r = net_container_prepare(a->f->ctx, &o, &a->c, &err);
	if (a->r < 0)
		berth_error_print(err, "prepare");
	return NULL;
}

/* Setups at once (net_lock is not held across the CNI calls): each container gets its own address and
 * host port, and every one is complete. */
static void test_concurrent_prepares_get_distinct_addresses(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(create(f, "par", "10.9.0.0/24", NULL), 0);
	struct par_arg a[PAR];
	pthread_t th[PAR];
	for (int i = 0; i < PAR; i++) {
		a[i] = (struct par_arg){ .f = f };
		snprintf(a[i].id, sizeof(a[i].id), "p%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, par_prepare, &a[i]), 0);
	}
	for (int i = 0; i < PAR; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < PAR; i++) {
		assert_int_equal(a[i].r, 0);
		assert_int_equal(a[i].c->n_endpoints, 1);
		assert_true(startswith(a[i].c->endpoints[0].ipv4, "10.9.0."));
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(a[i].c->endpoints[0].ipv4, a[j].c->endpoints[0].ipv4);
			assert_int_not_equal(a[i].c->ports[0].host_port, a[j].c->ports[0].host_port);
		}
		_cleanup_error_ struct berth_error *cerr = NULL;
		if (net_container_check(f->ctx, a[i].id, &cerr) < 0)
			berth_error_print(cerr, "check");
		assert_null(cerr);
	}
	/* A bridge's MAC follows its ports (the lowest one) as containers come and go: CHECK of a
	 * container that started before the change still passes (the bridge plugin compares the MAC
	 * it saw at ADD; this failed under load when a later veth had a lower MAC). */
	{
		_cleanup_(net_network_freep) struct net_network *n = NULL;
		assert_int_equal(net_network_get(f->ctx, "par", &n, NULL), 0);
		_cleanup_free_ char *cmd =
		    xasprintf("ip link set dev %s address 02:00:00:00:00:01", n->bridge);
		assert_int_equal(system(cmd), 0);
		_cleanup_error_ struct berth_error *cerr = NULL;
		if (net_container_check(f->ctx, a[0].id, &cerr) < 0)
			berth_error_print(cerr, "check after the bridge's MAC changed");
		assert_null(cerr);
	}
	for (int i = 0; i < PAR; i++) {
		assert_int_equal(net_container_teardown(f->ctx, a[i].id, NULL), 0);
		net_container_free(a[i].c);
	}
	assert_int_equal(net_network_remove(f->ctx, "par", NULL), 0);
}

/* The owner line of host-local's lease for ip on network net ("" when there is none). */
static char *lease_owner(struct fixture *f, const char *net, const char *ip)
{
	_cleanup_free_ char *p = xasprintf("%s/root/net/ipam/%s/%s", f->dir, net, ip);
	struct strbuf sb = STRBUF_INIT;
	(void)fs_read_file_at(AT_FDCWD, p, 0, &sb, NULL);
	sb.buf[strcspn(sb.buf, "\r\n")] = '\0';
	return strbuf_detach(&sb, NULL);
}

static struct net_container *prepare_two(struct fixture *f, const char *id, const char *ip)
{
	struct net_endpoint_opts eps[] = { { .network = "keep", .ipv4 = ip }, { .network = "bridge" } };
	struct net_container_opts o = { .container_id = id, .endpoints = eps, .n_endpoints = 2 };
	struct net_container *c = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (net_container_prepare(f->ctx, &o, &c, &err) < 0)
		berth_error_print(err, "prepare");
	assert_non_null(c);
	return c;
}

static void assert_same_addresses(const struct net_container *a, const struct net_container *b)
{
	assert_int_equal(a->n_endpoints, b->n_endpoints);
	for (size_t i = 0; i < a->n_endpoints; i++) {
		assert_string_equal(a->endpoints[i].ipv4, b->endpoints[i].ipv4);
		assert_string_equal(a->endpoints[i].mac, b->endpoints[i].mac);
	}
}

static void test_stop_keeps_addresses_until_released(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(create(f, "keep", "10.18.0.0/24", NULL), 0);
	_cleanup_(net_container_freep) struct net_container *a = prepare_two(f, "k1", NULL), *b = NULL,
							    *a2 = NULL, *a3 = NULL, *a4 = NULL;
	_cleanup_free_ char *ip = xstrdup(a->endpoints[0].ipv4), *bip = xstrdup(a->endpoints[1].ipv4);
	assert_int_equal(net_container_stop(f->ctx, "k1", NULL), 0);
	assert_int_equal(net_container_get(f->ctx, "k1", NULL, NULL), -ENOENT);
	_cleanup_free_ char *o1 = lease_owner(f, "keep", ip), *o2 = lease_owner(f, "bridge", bip);
	assert_string_equal(o1, "berth-reserved:k1");
	assert_string_equal(o2, "berth-reserved:k1");
	/* kept: a newcomer gets other addresses, a static --ip of it is refused */
	b = prepare_two(f, "k2", NULL);
	assert_string_not_equal(b->endpoints[0].ipv4, ip);
	assert_string_not_equal(b->endpoints[1].ipv4, bip);
	struct net_endpoint_opts st[] = { { .network = "keep", .ipv4 = ip } };
	struct net_container_opts o3 = { .container_id = "k3", .endpoints = st, .n_endpoints = 1 };
	assert_int_equal(net_container_prepare(f->ctx, &o3, NULL, NULL), -EADDRNOTAVAIL);
	/* the next prepare gets the same address and MAC on both networks */
	a2 = prepare_two(f, "k1", NULL);
	assert_same_addresses(a, a2);
	_cleanup_free_ char *o3owner = lease_owner(f, "keep", ip);
	assert_string_equal(o3owner, "k1");
	/* a gc that reserves keeps them (the record goes, as after a crash), one that does not frees them */
	const char *keep[] = { "k2", NULL }, *reserve[] = { "k1", NULL };
	assert_int_equal(net_gc(f->ctx, keep, reserve, NULL, NULL), 0);
	assert_int_equal(net_container_get(f->ctx, "k1", NULL, NULL), -ENOENT);
	a3 = prepare_two(f, "k1", NULL);
	assert_same_addresses(a, a3);
	assert_int_equal(net_container_stop(f->ctx, "k1", NULL), 0);
	/* disconnect-while-stopped: one network's address goes, the other stays */
	assert_int_equal(net_container_release(f->ctx, "k1", "keep", NULL), 0);
	_cleanup_free_ char *o4 = lease_owner(f, "keep", ip), *o5 = lease_owner(f, "bridge", bip);
	assert_string_equal(o4, "");
	assert_string_equal(o5, "berth-reserved:k1");
	/* a different static --ip replaces what was kept */
	a4 = prepare_two(f, "k1", "10.18.0.99");
	assert_string_equal(a4->endpoints[0].ipv4, "10.18.0.99");
	assert_string_equal(a4->endpoints[1].ipv4, bip);
	assert_int_equal(net_container_stop(f->ctx, "k1", NULL), 0);
	assert_int_equal(net_gc(f->ctx, keep, NULL, NULL, NULL), 0); /* k1 is gone */
	_cleanup_free_ char *o6 = lease_owner(f, "keep", "10.18.0.99"), *o7 = lease_owner(f, "bridge", bip);
	assert_string_equal(o6, "");
	assert_string_equal(o7, "");
	/* teardown (container removed) releases too */
	assert_int_equal(net_container_stop(f->ctx, "k2", NULL), 0);
	assert_int_equal(net_container_teardown(f->ctx, "k2", NULL), 0);
	_cleanup_free_ char *o8 = lease_owner(f, "keep", b->endpoints[0].ipv4);
	assert_string_equal(o8, "");
	_cleanup_free_ char *res = xasprintf("%s/root/net/reserved/k2.json", f->dir);
	assert_int_equal(access(res, F_OK), -1);
	assert_int_equal(net_network_remove(f->ctx, "keep", NULL), 0); /* its bridge and route go */
}

static void test_modes_and_gc(void **state)
{
	struct fixture *f = *state;
	struct net_container_opts none = { .container_id = "n1", .mode = NET_MODE_NONE, .hostname = "box" };
	struct net_container_opts host = { .container_id = "h1", .mode = NET_MODE_HOST };
	struct net_container_opts join = { .container_id = "j1",
					   .mode = NET_MODE_CONTAINER,
					   .share_with = "n1" };
	struct net_container_opts bad = { .container_id = "j2",
					  .mode = NET_MODE_CONTAINER,
					  .share_with = "zz" };
	_cleanup_(net_container_freep) struct net_container *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(net_container_prepare(f->ctx, &none, &a, NULL), 0);
	assert_int_equal(net_container_prepare(f->ctx, &host, &b, NULL), 0);
	assert_int_equal(net_container_prepare(f->ctx, &join, &c, NULL), 0);
	assert_int_equal(net_container_prepare(f->ctx, &bad, NULL, NULL), -ENOENT);
	assert_non_null(a->netns_path);
	assert_null(b->netns_path);
	assert_string_equal(c->netns_path, a->netns_path);
	assert_string_equal(c->hosts_path, a->hosts_path);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_int_equal(fs_read_file_at(AT_FDCWD, a->hostname_path, 0, &sb, NULL), 0);
	assert_string_equal(sb.buf, "box\n");
	json_auto_t *ns = net_api_network_settings(a, NULL);
	assert_non_null(json_object_get(json_object_get(ns, "Networks"), "none"));
	const char *keep[] = { "h1", NULL };
	_cleanup_strv_ char **removed = NULL;
	assert_int_equal(net_gc(f->ctx, keep, NULL, &removed, NULL), 0);
	_cleanup_strv_ char **left = NULL;
	assert_int_equal(net_container_list(f->ctx, &left, NULL), 0);
	assert_string_equal(left[0], "h1");
	assert_null(left[1]);
	assert_int_equal(access(a->netns_path, F_OK), -1);
}

static bool matches(struct fixture *f, const char *name, const char *filters)
{
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	json_auto_t *j = json_loads(filters, 0, NULL);
	bool m = false;
	assert_int_equal(net_network_get(f->ctx, name, &n, NULL), 0);
	assert_int_equal(net_api_network_match(f->ctx, n, j, &m, NULL), 0);
	return m;
}

static void test_api_filters_and_filtered_prune(void **state)
{
	struct fixture *f = *state;
	const char *labels[] = { "team=a", NULL };
	struct net_create_opts o = { .name = "web-net", .subnet = "10.8.0.0/24", .labels = labels };
	assert_int_equal(net_network_create(f->ctx, &o, NULL, NULL), 0);
	assert_int_equal(create(f, "other", "10.9.0.0/24", NULL), 0);
	assert_true(matches(f, "web-net", "{\"name\":[\"web\"]}"));
	assert_false(matches(f, "other", "{\"name\":[\"web\"]}"));
	assert_true(matches(f, "other", "{\"name\":[\"web\",\"oth\"]}")); /* values OR */
	assert_true(matches(f, "web-net", "{\"label\":[\"team\"],\"driver\":[\"bridge\"]}"));
	assert_false(matches(f, "web-net", "{\"label\":[\"team=b\"]}"));
	assert_true(matches(f, "other", "{\"label!\":[\"team\"]}"));
	assert_true(matches(f, "bridge", "{\"type\":[\"builtin\"]}"));
	assert_false(matches(f, "bridge", "{\"type\":[\"custom\"]}"));
	assert_true(matches(f, "other", "{\"dangling\":[\"true\"]}"));
	assert_true(matches(f, "other", "{\"name\":{\"oth\":true}}")); /* docker's old map form */
	assert_true(matches(f, "other", "{\"until\":[\"2999-01-01T00:00:00Z\"]}"));
	assert_false(matches(f, "other", "{\"until\":[\"1h\"]}"));
	assert_true(matches(f, "other", "{}"));
	const char *bad[] = { "{\"bogus\":[\"x\"]}",
			      "{\"type\":[\"x\"]}",
			      "{\"until\":[\"soon\"]}",
			      "{\"name\":[1]}",
			      "{\"name\":\"x\"}",
			      "[]",
			      NULL };
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	assert_int_equal(net_network_get(f->ctx, "other", &n, NULL), 0);
	for (size_t i = 0; bad[i]; i++) {
		json_auto_t *j = json_loads(bad[i], 0, NULL);
		bool m;
		assert_int_equal(net_api_network_match(f->ctx, n, j, &m, NULL), -EINVAL);
	}
	json_auto_t *pf = json_loads("{\"label\":[\"team=a\"]}", 0, NULL);
	_cleanup_strv_ char **removed = NULL;
	assert_int_equal(net_network_prune_filtered(f->ctx, pf, &removed, NULL), 0);
	assert_string_equal(removed[0], "web-net");
	assert_null(removed[1]);
	json_auto_t *badprune = json_loads("{\"name\":[\"x\"]}", 0, NULL);
	assert_int_equal(net_network_prune_filtered(f->ctx, badprune, NULL, NULL), -EINVAL);
}

static void test_api_parsers(void **state)
{
	json_auto_t *body =
	    json_loads("{\"Name\":\"x\",\"Driver\":\"bridge\",\"Internal\":true,"
		       "\"IPAM\":{\"Config\":[{\"Subnet\":\"10.9.0.0/24\",\"Gateway\":\"10.9.0.254\"}]},"
		       "\"Labels\":{\"a\":\"b\"},\"Options\":{}}",
		       0, NULL);
	struct net_create_opts o;
	assert_int_equal(net_api_parse_create(body, &o, NULL), 0);
	assert_string_equal(o.name, "x");
	assert_string_equal(o.subnet, "10.9.0.0/24");
	assert_string_equal(o.gateway, "10.9.0.254");
	assert_true(o.internal);
	assert_string_equal(o.labels[0], "a=b");
	net_api_create_opts_done(&o);
	/* Labels/Options absent or null (docker-compose sends null): no labels, no crash */
	json_auto_t *bare = json_loads("{\"Name\":\"y\",\"Labels\":null}", 0, NULL);
	assert_int_equal(net_api_parse_create(bare, &o, NULL), 0);
	assert_null(o.labels[0]);
	assert_null(o.options[0]);
	net_api_create_opts_done(&o);
	/* dual stack: one entry per family, in any order */
	json_auto_t *ds =
	    json_loads("{\"Name\":\"d\",\"EnableIPv6\":true,\"IPAM\":{\"Config\":["
		       "{\"Subnet\":\"fd00:1::/64\",\"Gateway\":\"fd00:1::9\"},"
		       "{\"Subnet\":\"10.9.0.0/24\",\"AuxiliaryAddresses\":{\"h\":\"10.9.0.5\"}}]}}",
		       0, NULL);
	assert_int_equal(net_api_parse_create(ds, &o, NULL), 0);
	assert_true(o.ipv6);
	assert_string_equal(o.subnet6, "fd00:1::/64");
	assert_string_equal(o.gateway6, "fd00:1::9");
	assert_string_equal(o.subnet, "10.9.0.0/24");
	assert_string_equal(o.aux[0], "h=10.9.0.5");
	assert_null(o.ip_range6);
	net_api_create_opts_done(&o);
	/* an IPv6 IPRange goes with the IPv6 subnet (it used to be refused) */
	json_auto_t *r6 = json_loads("{\"Name\":\"x\",\"IPAM\":{\"Config\":[{\"Subnet\":\"fd00::/64\","
				     "\"IPRange\":\"fd00::/80\"}]}}",
				     0, NULL);
	assert_int_equal(net_api_parse_create(r6, &o, NULL), 0);
	assert_string_equal(o.ip_range6, "fd00::/80");
	assert_null(o.ip_range);
	net_api_create_opts_done(&o);
	const char *bad[] = { "[]",
			      "{}",
			      "{\"Name\":1}",
			      "{\"Name\":\"x\",\"IPAM\":{\"Config\":[{\"Subnet\":\"fd00::/"
			      "64\"},{\"Subnet\":\"fd01::/64\"}]}}",
			      "{\"Name\":\"x\",\"Labels\":{\"a\":1}}",
			      "{\"Name\":\"x\",\"IPAM\":{\"Config\":[1]}}",
			      NULL };
	for (size_t i = 0; bad[i]; i++) {
		json_auto_t *j = json_loads(bad[i], 0, NULL);
		assert_true(net_api_parse_create(j, &o, NULL) < 0);
	}
	json_auto_t *cb = json_loads("{\"Container\":\"c\",\"EndpointConfig\":{\"Aliases\":[\"w\"],"
				     "\"IPAMConfig\":{\"IPv4Address\":\"10.9.0.3\"}}}",
				     0, NULL);
	const char *ctr;
	struct net_endpoint_opts ep;
	assert_int_equal(net_api_parse_connect(cb, &ctr, &ep, NULL), 0);
	assert_string_equal(ctr, "c");
	assert_string_equal(ep.ipv4, "10.9.0.3");
	assert_string_equal(ep.aliases[0], "w");
	net_api_endpoint_opts_done(&ep);
	json_auto_t *cbad = json_loads("{\"Container\":\"c\",\"EndpointConfig\":{\"Aliases\":[1]}}", 0, NULL);
	assert_true(net_api_parse_connect(cbad, &ctr, &ep, NULL) < 0);
	json_auto_t *empty = net_api_network_settings(NULL, NULL);
	assert_string_equal(json_string_value(json_object_get(empty, "IPAddress")), "");
}

int main(void)
{
	if (geteuid() != 0 || access("/usr/lib/cni/bridge", X_OK) != 0 || unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "skipping: needs root and containernetworking-plugins\n");
		return 77;
	}
	/* lo up in our private netns: net_routes4_read and port binds work there */
	if (system("ip link set lo up") != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_networks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_prepares_get_distinct_addresses, setup,
						teardown),
		cmocka_unit_test(test_existing_bridge_address),
		cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6_ip_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_get_remove_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_teardown_real_plugins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_keeps_addresses_until_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_modes_and_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_api_filters_and_filtered_prune, setup, teardown),
		cmocka_unit_test(test_api_parsers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
