/* test-cli-fsops.c - cp/stats parsers of the CLI: path stat header, cp arguments, stats rows. */
#include "unit.h"
#include "cli/fsops.h"
#include "common/base64.h"
#include "common/json.h"

static int parse_b64(const char *json, struct cli_path_stat *st)
{
	_cleanup_free_ char *b = base64_encode(json, strlen(json));
	return cli_path_stat_parse(b, st, NULL);
}

static void test_path_stat_header(void **state)
{
	struct cli_path_stat st;
	assert_int_equal(parse_b64("{\"name\":\"etc\",\"size\":4096,\"mode\":2147484141,"
				   "\"mtime\":\"2026-01-01T00:00:00Z\",\"linkTarget\":\"\"}",
				   &st),
			 0);
	assert_string_equal(st.name, "etc");
	assert_int_equal(st.size, 4096);
	assert_true(st.mode & CLI_MODE_DIR);
	assert_int_equal(st.mode & 0777, 0755);
	cli_path_stat_done(&st);
	assert_int_equal(
	    parse_b64("{\"name\":\"l\",\"size\":3,\"mode\":134218239,\"linkTarget\":\"/x\"}", &st), 0);
	assert_true(st.mode & CLI_MODE_SYMLINK);
	assert_string_equal(st.link_target, "/x");
	cli_path_stat_done(&st);
}

static void test_path_stat_header_rejects_garbage(void **state)
{
	struct cli_path_stat st = { 0 };
	struct berth_error *err = NULL;
	assert_int_equal(cli_path_stat_parse(NULL, &st, &err), -EINVAL);
	err = berth_error_free(err);
	assert_int_equal(cli_path_stat_parse("!!!", &st, NULL), -EINVAL);
	assert_int_equal(parse_b64("not json", &st), -EINVAL);
	assert_int_equal(parse_b64("[]", &st), -EINVAL);
	assert_int_equal(parse_b64("{\"name\":1,\"size\":1,\"mode\":1}", &st), -EINVAL);
	assert_int_equal(parse_b64("{\"name\":\"a\",\"size\":\"1\",\"mode\":1}", &st), -EINVAL);
	assert_int_equal(parse_b64("{\"name\":\"a\",\"size\":1,\"mode\":-1}", &st), -EINVAL);
	assert_int_equal(parse_b64("{\"name\":\"a\",\"size\":1,\"mode\":99999999999}", &st), -EINVAL);
	assert_int_equal(parse_b64("{\"name\":\"a\",\"size\":1,\"mode\":1,\"linkTarget\":5}", &st), -EINVAL);
	assert_null(st.name);
}

static void split(const char *arg, const char *ctr, const char *path)
{
	_cleanup_free_ char *c = NULL, *p = NULL;
	cli_cp_split(arg, &c, &p);
	if (ctr)
		assert_string_equal(c, ctr);
	else
		assert_null(c);
	assert_string_equal(p, path);
}

static void test_cp_split(void **state)
{
	split("web:/etc/passwd", "web", "/etc/passwd");
	split("web:rel", "web", "rel");
	split("/abs:with:colons", NULL, "/abs:with:colons");
	split("./local:x", NULL, "./local:x");
	split("plain", NULL, "plain");
	split(":nothing", NULL, ":nothing");
	split("-", NULL, "-");
}

static void test_stats_row(void **state)
{
	_cleanup_json_ json_t *prev =
	    json_pack("{s:{s:{s:I}, s:I, s:i}}", "cpu_stats", "cpu_usage", "total_usage",
		      (json_int_t)1000000000, "system_cpu_usage", (json_int_t)10000000000, "online_cpus", 2);
	_cleanup_json_ json_t *cur =
	    json_pack("{s:s, s:s, s:{s:{s:I}, s:I, s:i}, s:{s:I, s:I, s:{s:I}}, s:{s:i}, s:{s:{s:I, s:I}},"
		      " s:{s:[{s:s, s:I}, {s:s, s:I}]}}",
		      "id", "0123456789abcdef0123", "name", "/web", "cpu_stats", "cpu_usage", "total_usage",
		      (json_int_t)1500000000, "system_cpu_usage", (json_int_t)12000000000, "online_cpus", 2,
		      "memory_stats", "usage", (json_int_t)(10 << 20), "limit", (json_int_t)(64 << 20),
		      "stats", "total_inactive_file", (json_int_t)(2 << 20), "pids_stats", "current", 3,
		      "networks", "eth0", "rx_bytes", (json_int_t)1500, "tx_bytes", (json_int_t)0,
		      "blkio_stats", "io_service_bytes_recursive", "op", "read", "value", (json_int_t)2000000,
		      "op", "Write", "value", (json_int_t)0);
	_cleanup_json_ json_t *row = cli_stats_row(cur, prev, true);
	/* 0.5 s of CPU over 2 s of host time on 2 CPUs */
	assert_string_equal(json_string_value(json_object_get(row, "CPUPerc")), "50.00%");
	assert_string_equal(json_string_value(json_object_get(row, "MemUsage")), "8MiB / 64MiB");
	assert_string_equal(json_string_value(json_object_get(row, "MemPerc")), "12.50%");
	assert_string_equal(json_string_value(json_object_get(row, "NetIO")), "1.5kB / 0B");
	assert_string_equal(json_string_value(json_object_get(row, "BlockIO")), "2MB / 0B");
	assert_string_equal(json_string_value(json_object_get(row, "PIDs")), "3");
	assert_string_equal(json_string_value(json_object_get(row, "ID")), "0123456789ab");
	assert_string_equal(json_string_value(json_object_get(row, "Name")), "web");
	/* an empty sample (stopped container) gives zeros, not garbage */
	_cleanup_json_ json_t *empty = json_object();
	_cleanup_json_ json_t *zero = cli_stats_row(empty, NULL, false);
	assert_string_equal(json_string_value(json_object_get(zero, "CPUPerc")), "0.00%");
	assert_string_equal(json_string_value(json_object_get(zero, "MemUsage")), "0B / 0B");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_stat_header),
		cmocka_unit_test(test_path_stat_header_rejects_garbage),
		cmocka_unit_test(test_cp_split),
		cmocka_unit_test(test_stats_row),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
