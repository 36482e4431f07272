/*
 * test-engine-fsops.c - the engine's fsops parsers: commit "changes", stats files, Go file modes,
 * and the archive view's mount plan (fsview.c).
 */
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
	assert_int_equal(engine_fsop_go_mode(S_IFREG | 0644), 0644);
	assert_int_equal(engine_fsop_go_mode(S_IFDIR | 0755), (1u << 31) | 0755);
	assert_int_equal(engine_fsop_go_mode(S_IFLNK | 0777), (1u << 27) | 0777);
	assert_int_equal(engine_fsop_go_mode(S_IFCHR | 0600), (1u << 26) | (1u << 21) | 0600);
	assert_int_equal(engine_fsop_go_mode(S_IFREG | S_ISUID | 0755), (1u << 23) | 0755);
	assert_int_equal(engine_fsop_go_mode(S_IFDIR | S_ISVTX | 0777), (1u << 31) | (1u << 20) | 0777);
}

/* The view mounts what the container gets, in the runtime's order (engine/spec.c). */
static void test_fsview_plan_order_and_flags(void **state)
{
	_cleanup_json_ json_t *mounts = json_pack(
	    "[{s:s,s:s,s:s,s:b}, {s:s,s:s,s:s,s:b,s:b,s:b}, {s:s,s:s,s:s,s:b,s:s}, {s:s,s:s,s:s,s:b}, "
	    "{s:s,s:s,s:b}]",
	    "Type", "volume", "Source", "/var/lib/berth/volumes/v/_data", "Destination", "/data", "RW", 1,
	    "Type", "bind", "Source", "/srv/in", "Destination", "/data/sub/../in/", "RW", 0, "nonrecursive",
	    1, "create_source", 1, "Type", "tmpfs", "Source", "", "Destination", "/run", "RW", 1, "tmpfs",
	    "size=1m,mode=700", "Type", "bind", "Source", "/x", "Destination", "relative", "RW", 1,
	    /* no Source: not mounted in the container (engine_mounts_to_oci skips it), nor in the view */
	    "Type", "volume", "Destination", "/nosrc", "RW", 1);
	_cleanup_json_ json_t *hc = json_pack("{s:{s:s,s:s}}", "Tmpfs", "/scratch", "ro,size=2m", "/", "");
	struct fsview_plan p = { 0 };
	struct berth_error *err = NULL;
	assert_int_equal(engine_fsview_plan_build(mounts, hc, "/run/c/ID", &p, &err), 0);
	assert_null(err);
	assert_int_equal(p.n, 7);
	const char *dst[] = { "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/data",
			      "/data/in",      "/run",       "/scratch" };
	for (size_t i = 0; i < p.n; i++)
		assert_string_equal(p.m[i].dst, dst[i]);
	/* the engine's files come first (user mounts at the same place cover them) and may not exist yet */
	assert_string_equal(p.m[1].src, "/run/c/ID/hosts");
	assert_true(p.m[1].optional && p.m[1].recursive && !p.m[1].ro && p.m[1].kind == FSVIEW_BIND);
	assert_true(p.m[3].kind == FSVIEW_BIND && p.m[3].recursive && !p.m[3].ro && !p.m[3].optional);
	assert_string_equal(p.m[4].src, "/srv/in");
	assert_true(p.m[4].ro && !p.m[4].recursive && p.m[4].create && !p.m[3].create);
	assert_true(p.m[5].kind == FSVIEW_TMPFS && !p.m[5].ro && !p.m[5].src);
	assert_string_equal(p.m[5].opts, "size=1m,mode=700");
	/* HostConfig.Tmpfs: read-only from its options */
	assert_true(p.m[6].kind == FSVIEW_TMPFS && p.m[6].ro);
	engine_fsview_plan_done(&p);
	engine_fsview_plan_done(&p); /* done twice is harmless */

	/* no container dir (never started): only the mount points */
	assert_int_equal(engine_fsview_plan_build(mounts, NULL, NULL, &p, &err), 0);
	assert_int_equal(p.n, 3);
	assert_string_equal(p.m[0].dst, "/data");
	engine_fsview_plan_done(&p);
}

static void test_fsview_plan_is_bounded(void **state)
{
	_cleanup_json_ json_t *mounts = json_array();
	for (int i = 0; i <= FSVIEW_MAX_MOUNTS; i++) {
		_cleanup_free_ char *dst = xasprintf("/m%d", i);
		json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:b}", "Type", "bind", "Source", "/x",
							"Destination", dst, "RW", 1));
	}
	struct fsview_plan p = { 0 };
	struct berth_error *err = NULL;
	assert_int_equal(engine_fsview_plan_build(mounts, NULL, NULL, &p, &err), -E2BIG);
	assert_non_null(err);
	assert_null(p.m); /* untouched on failure */
	berth_error_free(err);
}

static void test_fsview_mount_option(void **state)
{
	_cleanup_free_ char *mode = engine_fsview_mount_option("size=64m,mode=1777,ro", "mode");
	assert_string_equal(mode, "1777");
	_cleanup_free_ char *ro = engine_fsview_mount_option("size=64m,mode=1777,ro", "ro");
	assert_string_equal(ro, "");
	assert_null(engine_fsview_mount_option("size=64m,rox,modes=1", "ro"));
	assert_null(engine_fsview_mount_option("size=64m,rox,modes=1", "mode"));
	assert_null(engine_fsview_mount_option(NULL, "mode"));
	assert_null(engine_fsview_mount_option("", "mode"));
	_cleanup_free_ char *empty = engine_fsview_mount_option("mode=,x", "mode");
	assert_string_equal(empty, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes_apply_each_instruction),
		cmocka_unit_test(test_changes_entrypoint_drops_inherited_cmd),
		cmocka_unit_test(test_changes_reject_bad_lines),
		cmocka_unit_test(test_stats_parsers),
		cmocka_unit_test(test_go_modes),
		cmocka_unit_test(test_fsview_plan_order_and_flags),
		cmocka_unit_test(test_fsview_plan_is_bounded),
		cmocka_unit_test(test_fsview_mount_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
