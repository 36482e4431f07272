/* test-cli-runopts.c - the client-side --mount and --ulimit parsers, good and bad input. */
#include "unit.h"
#include "cli/runopts.h"

static void assert_json_eq(json_t *got, const char *want)
{
	json_t *w = json_loads(want, 0, NULL);
	assert_non_null(w);
	if (!json_equal(got, w)) {
		char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
		fail_msg("got %s, want %s", g, want);
	}
	json_decref(w);
}

static void test_mount_ok(void **state)
{
	json_t *m = NULL;
	char *msg = NULL;
	assert_int_equal(cli_mount_parse("type=bind,source=/tmp,target=/t,readonly,bind-propagation=rshared,"
					 "bind-nonrecursive=true",
					 &m, &msg),
			 0);
	assert_json_eq(m, "{\"Type\":\"bind\",\"Source\":\"/tmp\",\"Target\":\"/t\",\"ReadOnly\":true,"
			  "\"BindOptions\":{\"Propagation\":\"rshared\",\"NonRecursive\":true}}");
	json_decref(m);
	assert_int_equal(cli_mount_parse("src=v,dst=/d,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs,"
					 "volume-opt=device=tmpfs",
					 &m, &msg),
			 0);
	assert_json_eq(m, "{\"Type\":\"volume\",\"Source\":\"v\",\"Target\":\"/d\",\"VolumeOptions\":"
			  "{\"NoCopy\":true,\"Labels\":{\"a\":\"b\"},\"DriverConfig\":{\"Options\":"
			  "{\"type\":\"tmpfs\",\"device\":\"tmpfs\"}}}}");
	json_decref(m);
	assert_int_equal(cli_mount_parse("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", &m, &msg), 0);
	assert_json_eq(m, "{\"Type\":\"tmpfs\",\"Target\":\"/t\",\"TmpfsOptions\":{\"SizeBytes\":1048576,"
			  "\"Mode\":1016}}");
	json_decref(m);
}

static void test_mount_bad(void **state)
{
	const char *bad[] = { "",
			      "type=bind,source=/x",
			      "type=bind,target=/t,bogus=1",
			      "target",
			      "type=tmpfs,target=/t,tmpfs-size=huge",
			      "type=tmpfs,target=/t,tmpfs-mode=9",
			      "type=volume,target=/t,readonly=maybe",
			      "type=volume,target=/t,volume-label=novalue",
			      "type=volume,target=/t,volume-opt==x" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *m = NULL;
		char *msg = NULL;
		assert_int_equal(cli_mount_parse(bad[i], &m, &msg), -EINVAL);
		assert_non_null(msg);
		assert_null(m);
		free(msg);
	}
}

static void test_ulimit(void **state)
{
	json_t *u = NULL;
	char *msg = NULL;
	assert_int_equal(cli_ulimit_parse("nofile=1024:2048", &u, &msg), 0);
	assert_json_eq(u, "{\"Name\":\"nofile\",\"Soft\":1024,\"Hard\":2048}");
	json_decref(u);
	assert_int_equal(cli_ulimit_parse("core=unlimited", &u, &msg), 0);
	assert_json_eq(u, "{\"Name\":\"core\",\"Soft\":-1,\"Hard\":-1}");
	json_decref(u);
	assert_int_equal(cli_ulimit_parse("nproc=5", &u, &msg), 0);
	assert_json_eq(u, "{\"Name\":\"nproc\",\"Soft\":5,\"Hard\":5}");
	json_decref(u);
	const char *bad[] = { "nofile",     "bogus=1",   "nofile=x", "nofile=2:1",
			      "nofile=1:x", "nofile=-5", "=1",       "nofile=unlimited:5" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		u = NULL;
		msg = NULL;
		assert_int_equal(cli_ulimit_parse(bad[i], &u, &msg), -EINVAL);
		assert_non_null(msg);
		free(msg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mount_ok),
		cmocka_unit_test(test_mount_bad),
		cmocka_unit_test(test_ulimit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
