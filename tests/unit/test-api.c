/* test-api.c - routing, error mapping and create-config validation (no daemon). */
#include "unit.h"
#include "api/api.h"
#include "common/json.h"

static void test_routes(void **state)
{
	assert_true(api_route_exists("GET", "/_ping"));
	assert_true(api_route_exists("HEAD", "/_ping"));
	assert_true(api_route_exists("POST", "/containers/abc/start"));
	assert_true(api_route_exists("GET", "/containers/abc/json"));
	assert_true(api_route_exists("DELETE", "/containers/abc"));
	assert_true(api_route_exists("GET", "/images/reg:5000/a/b:tag/json"));
	assert_true(api_route_exists("DELETE", "/images/reg:5000/a/b:tag"));
	assert_false(api_route_exists("GET", "/containers/abc/start"));
	assert_false(api_route_exists("GET", "/containers//json"));
	assert_false(api_route_exists("GET", "/images//json"));
	assert_false(api_route_exists("PUT", "/nothing"));
}

/* What runs on the HTTP server's I/O thread: answers from memory, never a route that blocks. */
static void test_inline_routes(void **state)
{
	assert_true(api_route_inline("HEAD", "/_ping", NULL));
	assert_true(api_route_inline("GET", "/_ping", "1.41"));
	assert_true(api_route_inline("GET", "/version", "1.41"));
	assert_true(api_route_inline("POST", "/containers/abc/wait", "1.41"));
	assert_true(api_route_inline("GET", "/exec/abc/json", "1.41"));
	assert_true(api_route_inline("GET", "/swarm", "1.41"));
	assert_true(api_route_inline("GET", "/nothing", "1.41"));              /* 404 */
	assert_true(api_route_inline("GET", "/containers/abc/start", "1.41")); /* 405 */
	assert_true(api_route_inline("POST", "/containers/create", "1.12"));   /* too old: 400 */
	/* engine work, disk, the network lock, other processes, bodies: a worker */
	assert_false(api_route_inline("POST", "/containers/create", "1.41"));
	assert_false(api_route_inline("POST", "/containers/abc/start", "1.41"));
	assert_false(api_route_inline("POST", "/containers/abc/attach", "1.41"));
	assert_false(api_route_inline("GET", "/containers/abc/json", NULL));
	assert_false(api_route_inline("GET", "/containers/json", NULL));
	assert_false(api_route_inline("GET", "/info", NULL));
	assert_false(api_route_inline("GET", "/events", NULL));
	assert_false(api_route_inline("POST", "/images/load", NULL));
	assert_false(api_route_inline("GET", "/images/busybox/json", NULL));
	assert_false(api_route_inline("GET", "/images/nothing/here/x", NULL)); /* the images router decides */
}

static void test_status_mapping(void **state)
{
	assert_int_equal(api_status_of(-ENOENT), 404);
	assert_int_equal(api_status_of(-EEXIST), 409);
	assert_int_equal(api_status_of(-EBUSY), 409);
	assert_int_equal(api_status_of(-EALREADY), 304);
	assert_int_equal(api_status_of(-EINVAL), 400);
	assert_int_equal(api_status_of(-EIO), 500);
}

static int check(const char *config_json)
{
	json_t *j = json_loads(config_json, 0, NULL);
	assert_non_null(j);
	struct berth_error *err = NULL;
	int r = engine_container_config_check(j, json_object_get(j, "HostConfig"), &err);
	if (r < 0) {
		char *m = berth_error_string(err);
		assert_non_null(m);
		free(m);
	}
	berth_error_free(err);
	json_decref(j);
	return r;
}

static void test_config_check(void **state)
{
	assert_int_equal(check("{\"Image\":\"busybox\",\"Cmd\":[\"sh\"]}"), 0);
	assert_int_equal(check("{\"Image\":\"busybox\",\"Cmd\":\"echo hi\"}"), 0);
	assert_int_equal(check("{\"Image\":\"busybox\",\"Cmd\":5}"), -EINVAL);
	assert_int_equal(check("{\"Image\":\"busybox\",\"Cmd\":[1]}"), -EINVAL);
	assert_int_equal(check("{\"Image\":7}"), -EINVAL);
	assert_int_equal(check("{\"Image\":\"b\",\"Env\":\"A=1\"}"), -EINVAL);
	assert_int_equal(check("{\"Image\":\"b\",\"Labels\":{\"a\":1}}"), -EINVAL);
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"Memory\":\"1g\"}}"), -EINVAL);
	assert_int_equal(
	    check("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"sometimes\"}}}"), -EINVAL);
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\"},"
			       "\"AutoRemove\":true}}"),
			 -EINVAL);
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"RestartPolicy\":{\"Name\":\"always\","
			       "\"MaximumRetryCount\":3}}}"),
			 -EINVAL);
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"LogConfig\":{\"Type\":\"syslog\"}}}"),
			 -EINVAL);
	assert_int_equal(
	    check("{\"Image\":\"b\",\"HostConfig\":{\"LogConfig\":{\"Config\":{\"max-size\":\"1q\"}}}}"),
	    -EINVAL);
	/* whether a network exists is the start's question (dockerd creates the container) */
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"NetworkMode\":\"mynet\"}}"), 0);
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":{\"NetworkMode\":\"none\"}}"), 0);
	assert_int_equal(check("{\"Image\":\"b\",\"HostConfig\":[]}"), -EINVAL);
	assert_int_equal(check("[]"), -EINVAL);
}

static void test_signal_names(void **state)
{
	assert_int_equal(engine_signal_parse("SIGTERM"), 15);
	assert_int_equal(engine_signal_parse("term"), 15);
	assert_int_equal(engine_signal_parse("9"), 9);
	assert_int_equal(engine_signal_parse("KILL"), 9);
	assert_int_equal(engine_signal_parse("SIGNOPE"), -EINVAL);
	assert_int_equal(engine_signal_parse("0"), -EINVAL);
	assert_int_equal(engine_signal_parse("99"), -EINVAL);
	assert_int_equal(engine_signal_parse(""), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),         cmocka_unit_test(test_inline_routes),
		cmocka_unit_test(test_status_mapping), cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_signal_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
