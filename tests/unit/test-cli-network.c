/* test-cli-network.c - run/create networking flags -> Config/HostConfig/NetworkingConfig. */
#include "unit.h"
#include "cli/network.h"
#include "cli/opttab.h"

/* One networking flag of run/create through its table entry. */
static int net_opt(json_t *cfg, json_t *hc, const char *name, const char *v)
{
	struct cli_net_run_ctx ctx = { cfg, hc };
	const struct cli_opt o = CLI_NET_RUN_ENTRY(name, 0, &ctx, v != NULL);
	return cli_net_run_entry(&o, v);
}

static void assert_json(const json_t *got, const char *want_text)
{
	json_t *want = json_loads(want_text, 0, NULL);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		char *g = json_dumps(got, JSON_SORT_KEYS);
		fail_msg("got %s, want %s", g, want_text);
	}
	json_decref(want);
}

static void test_publish(void **state)
{
	json_t *cfg = json_object(), *hc = json_object();
	assert_int_equal(net_opt(cfg, hc, "publish", "127.0.0.1:8080-8081:80-81"), 0);
	assert_int_equal(net_opt(cfg, hc, "publish", "53/udp"), 0);
	assert_int_equal(net_opt(cfg, hc, "publish-all", NULL), 0);
	assert_int_equal(net_opt(cfg, hc, "expose", "90"), 0);
	assert_json(json_object_get(cfg, "ExposedPorts"),
		    "{\"80/tcp\":{},\"81/tcp\":{},\"53/udp\":{},\"90/tcp\":{}}");
	assert_json(json_object_get(hc, "PortBindings"),
		    "{\"80/tcp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"8080\"}],"
		    "\"81/tcp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"8081\"}],"
		    "\"53/udp\":[{\"HostIp\":\"\",\"HostPort\":\"\"}]}");
	assert_true(json_is_true(json_object_get(hc, "PublishAllPorts")));
	json_decref(cfg);
	json_decref(hc);
}

static void test_publish_invalid(void **state)
{
	static const char *const bad[] = { "", "abc", "70000", "1:2:3:4", "80/xyz", "8080-8085:80-81", "-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *cfg = json_object(), *hc = json_object();
		assert_int_equal(net_opt(cfg, hc, "publish", bad[i]), -EINVAL);
		assert_null(json_object_get(hc, "PortBindings"));
		json_decref(cfg);
		json_decref(hc);
	}
	json_t *cfg = json_object(), *hc = json_object();
	assert_int_equal(net_opt(cfg, hc, "expose", "x/tcp"), -EINVAL);
	assert_int_equal(net_opt(cfg, hc, "zz", "x"), -EINVAL);
	json_decref(cfg);
	json_decref(hc);
}

static void test_endpoint_flags_follow_network(void **state)
{
	json_t *cfg = json_object(), *hc = json_object();
	assert_int_equal(net_opt(cfg, hc, "network-alias", "db"), 0);
	assert_int_equal(net_opt(cfg, hc, "ip", "10.1.0.9"), 0);
	assert_int_equal(net_opt(cfg, hc, "dns", "1.1.1.1"), 0);
	assert_int_equal(net_opt(cfg, hc, "dns-search", "ex.test"), 0);
	assert_int_equal(net_opt(cfg, hc, "dns-option", "ndots:1"), 0);
	json_object_set_new(hc, "NetworkMode", json_string("backend"));
	cli_net_run_finish(cfg, hc);
	assert_json(json_object_get(cfg, "NetworkingConfig"),
		    "{\"EndpointsConfig\":{\"backend\":{\"Aliases\":[\"db\"],"
		    "\"IPAMConfig\":{\"IPv4Address\":\"10.1.0.9\"}}}}");
	assert_json(json_object_get(hc, "Dns"), "[\"1.1.1.1\"]");
	assert_json(json_object_get(hc, "DnsSearch"), "[\"ex.test\"]");
	assert_json(json_object_get(hc, "DnsOptions"), "[\"ndots:1\"]");
	json_decref(cfg);
	json_decref(hc);
	cfg = json_object(), hc = json_object();
	assert_int_equal(net_opt(cfg, hc, "network-alias", "x"), 0);
	cli_net_run_finish(cfg, hc);
	assert_non_null(json_object_get(
	    json_object_get(json_object_get(cfg, "NetworkingConfig"), "EndpointsConfig"), "default"));
	json_decref(cfg);
	json_decref(hc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_publish_invalid),
		cmocka_unit_test(test_endpoint_flags_follow_network),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
