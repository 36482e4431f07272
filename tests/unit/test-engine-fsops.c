/* test-engine-fsops.c - the engine's fsops parsers: commit "changes", stats files, Go file modes. */
#include <sys/stat.h>

#include "unit.h"
#include "common/json.h"
#include "engine/fsops.h"

static json_t *apply(const char *const *lines, int *ret)
{
	json_t *cfg = json_pack("{s:[s], s:[s,s], s:{s:s}}", "Env", "PATH=/bin", "Cmd", "sleep", "1",
				"Labels", "old", "1");
	struct berth_error *err = NULL;
	*ret = engine_config_apply_changes(cfg, lines, &err);
	if (*ret < 0)
		assert_non_null(err);
	berth_error_free(err);
	return cfg;
}

static void test_changes_apply_each_instruction(void **state)
{
	const char *const lines[] = { "ENV FOO=bar BAZ=\"two words\"",
				      "ENV PATH=$PATH:/opt",
				      "LABEL a=b \"c d\"=e",
				      "EXPOSE 80 53/udp",
				      "VOLUME [\"/data\", \"/logs\"]",
				      "WORKDIR /srv/$FOO",
				      "USER nobody",
				      "STOPSIGNAL SIGINT",
				      "ENTRYPOINT [\"/bin/sh\"]",
				      "CMD echo hi",
				      "ONBUILD RUN true",
				      NULL };
	int r;
	_cleanup_json_ json_t *cfg = apply(lines, &r);
	assert_int_equal(r, 0);
	json_t *env = json_object_get(cfg, "Env");
	assert_string_equal(json_string_value(json_array_get(env, 0)), "PATH=/bin:/opt");
	assert_string_equal(json_string_value(json_array_get(env, 1)), "FOO=bar");
	assert_string_equal(json_string_value(json_array_get(env, 2)), "BAZ=two words");
	json_t *labels = json_object_get(cfg, "Labels");
	assert_string_equal(json_string_value(json_object_get(labels, "old")), "1");
	assert_string_equal(json_string_value(json_object_get(labels, "c d")), "e");
	assert_non_null(json_object_get(json_object_get(cfg, "ExposedPorts"), "80/tcp"));
	assert_non_null(json_object_get(json_object_get(cfg, "ExposedPorts"), "53/udp"));
	assert_non_null(json_object_get(json_object_get(cfg, "Volumes"), "/logs"));
	assert_string_equal(json_string_value(json_object_get(cfg, "WorkingDir")), "/srv/bar");
	assert_string_equal(json_string_value(json_object_get(cfg, "User")), "nobody");
	assert_string_equal(json_string_value(json_object_get(cfg, "StopSignal")), "SIGINT");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Entrypoint"), 0)),
			    "/bin/sh");
	json_t *cmd = json_object_get(cfg, "Cmd");
	assert_int_equal(json_array_size(cmd), 3);
	assert_string_equal(json_string_value(json_array_get(cmd, 2)), "echo hi");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "OnBuild"), 0)),
			    "RUN true");
}

static void test_changes_entrypoint_drops_inherited_cmd(void **state)
{
	const char *const lines[] = { "ENTRYPOINT top", NULL };
	int r;
	_cleanup_json_ json_t *cfg = apply(lines, &r);
	assert_int_equal(r, 0);
	assert_true(json_is_null(json_object_get(cfg, "Cmd")));
}

static void test_changes_reject_bad_lines(void **state)
{
	static const char *const bad[] = { "RUN echo", "COPY a b",       "FROM x", "NOPE x",
					   "ENV",      "ONBUILD FROM x", "LABEL",  "ADD a b" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *lines[] = { bad[i], NULL };
		int r;
		_cleanup_json_ json_t *cfg = apply(lines, &r);
		if (r == 0)
			fail_msg("change '%s' was accepted", bad[i]);
	}
	/* blank lines are ignored */
	const char *const blank[] = { "", "   ", NULL };
	int r;
	_cleanup_json_ json_t *cfg = apply(blank, &r);
	assert_int_equal(r, 0);
}

static void test_stats_parsers(void **state)
{
	_cleanup_json_ json_t *k =
	    engine_stats_parse_keyed("cache 4096\nrss 8192\ntotal_inactive_file 12\nbogus\nneg -1\n\nlast 7");
	assert_int_equal(json_integer_value(json_object_get(k, "cache")), 4096);
	assert_int_equal(json_integer_value(json_object_get(k, "total_inactive_file")), 12);
	assert_int_equal(json_integer_value(json_object_get(k, "last")), 7);
	assert_null(json_object_get(k, "bogus"));
	_cleanup_json_ json_t *n = engine_stats_parse_netdev(
	    "Inter-|   Receive                                                |  Transmit\n"
	    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop "
	    "fifo colls "
	    "carrier compressed\n"
	    "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    "
	    "0     0 "
	    "      0          0\n"
	    "  eth0:    1500      10    1    2    0     0          0         0      700       5    3    4    "
	    "0     0 "
	    "      0          0\n"
	    "  bad: 1 2 3\n");
	assert_null(json_object_get(n, "lo"));
	assert_null(json_object_get(n, "bad"));
	json_t *eth = json_object_get(n, "eth0");
	assert_int_equal(json_integer_value(json_object_get(eth, "rx_bytes")), 1500);
	assert_int_equal(json_integer_value(json_object_get(eth, "rx_dropped")), 2);
	assert_int_equal(json_integer_value(json_object_get(eth, "tx_bytes")), 700);
	assert_int_equal(json_integer_value(json_object_get(eth, "tx_errors")), 3);
}

static void test_go_modes(void **state)
{
	assert_int_equal(fsop_go_mode(S_IFREG | 0644), 0644);
	assert_int_equal(fsop_go_mode(S_IFDIR | 0755), (1u << 31) | 0755);
	assert_int_equal(fsop_go_mode(S_IFLNK | 0777), (1u << 27) | 0777);
	assert_int_equal(fsop_go_mode(S_IFCHR | 0600), (1u << 26) | (1u << 21) | 0600);
	assert_int_equal(fsop_go_mode(S_IFREG | S_ISUID | 0755), (1u << 23) | 0755);
	assert_int_equal(fsop_go_mode(S_IFDIR | S_ISVTX | 0777), (1u << 31) | (1u << 20) | 0777);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes_apply_each_instruction),
		cmocka_unit_test(test_changes_entrypoint_drops_inherited_cmd),
		cmocka_unit_test(test_changes_reject_bad_lines),
		cmocka_unit_test(test_stats_parsers),
		cmocka_unit_test(test_go_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
