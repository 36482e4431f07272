/* test-cli-network.c - run/create networking flags -> Config/HostConfig/NetworkingConfig. */
#include "unit.h"
#include "cli/network.h"

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
	assert_int_equal(cli_net_run_opt(cfg, hc, 'p', "127.0.0.1:8080-8081:80-81"), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, 'p', "53/udp"), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, 'P', NULL), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_EXPOSE, "90"), 0);
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
		assert_int_equal(cli_net_run_opt(cfg, hc, 'p', bad[i]), -EINVAL);
		assert_null(json_object_get(hc, "PortBindings"));
		json_decref(cfg);
		json_decref(hc);
	}
	json_t *cfg = json_object(), *hc = json_object();
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_EXPOSE, "x/tcp"), -EINVAL);
	assert_int_equal(cli_net_run_opt(cfg, hc, 'z', "x"), -ENOENT);
	json_decref(cfg);
	json_decref(hc);
}

static void test_endpoint_flags_follow_network(void **state)
{
	json_t *cfg = json_object(), *hc = json_object();
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_ALIAS, "db"), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_IP, "10.1.0.9"), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_DNS, "1.1.1.1"), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_DNS_SEARCH, "ex.test"), 0);
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_DNS_OPTION, "ndots:1"), 0);
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
	assert_int_equal(cli_net_run_opt(cfg, hc, CLI_NET_OPT_ALIAS, "x"), 0);
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
