#include "unit.h"
#include "common/fs.h"
#include "common/json.h"

static json_t *parse(const char *s)
{
	json_t *j = NULL;
	assert_int_equal(json_parse(s, strlen(s), "test", &j, NULL), 0);
	return j;
}

static void test_parse_error_has_position(void **state)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *j = NULL;
	assert_int_equal(json_parse("{\n \"a\": }", 9, "'config.json'", &j, &err), -EINVAL);
	assert_null(j);
	_cleanup_free_ char *s = berth_error_string(err);
	assert_non_null(strstr(s, "parse 'config.json':"));
	assert_non_null(strstr(s, "line 2"));
}

static void test_duplicate_keys_rejected(void **state)
{
	json_t *j = NULL;
	assert_int_equal(json_parse("{\"a\":1,\"a\":2}", 13, NULL, &j, NULL), -EINVAL);
}

static void test_string_getter(void **state)
{
	_cleanup_json_ json_t *j = parse("{\"cwd\":\"/\",\"n\":3,\"z\":null}");
	const char *s = "untouched";
	assert_int_equal(json_get_string(j, "process", "cwd", JSON_REQUIRED, &s, NULL), 1);
	assert_string_equal(s, "/");
	s = "untouched";
	assert_int_equal(json_get_string(j, "process", "missing", 0, &s, NULL), 0);
	assert_int_equal(json_get_string(j, "process", "z", 0, &s, NULL), 0);
	assert_string_equal(s, "untouched");

	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(json_get_string(j, "process", "n", 0, &s, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "'process.n': expected string, got integer");
	assert_string_equal(s, "untouched");
}

static void test_required_missing(void **state)
{
	_cleanup_json_ json_t *j = parse("{}");
	_cleanup_error_ struct berth_error *err = NULL;
	const char *s;
	assert_int_equal(json_get_string(j, "", "ociVersion", JSON_REQUIRED, &s, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "'ociVersion': required but missing");
}

static void test_integers_and_ranges(void **state)
{
	_cleanup_json_ json_t *j = parse("{\"uid\":4294967296,\"gid\":7,\"neg\":-1,\"r\":1.5,\"b\":true}");
	uint32_t u;
	int64_t i;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(json_get_uint32(j, "user", "gid", 0, &u, NULL), 1);
	assert_int_equal(u, 7);
	assert_int_equal(json_get_uint32(j, "user", "uid", 0, &u, &err), -ERANGE);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(strstr(m, "'user.uid': 4294967296 out of range"));
	assert_int_equal(json_get_uint32(j, "user", "neg", 0, &u, NULL), -ERANGE);
	assert_int_equal(json_get_int64(j, "user", "neg", 0, &i, NULL), 1);
	assert_int_equal(i, -1);
	assert_int_equal(json_get_int64(j, "user", "r", 0, &i, NULL), -EINVAL);
	double d;
	assert_int_equal(json_get_double(j, "", "r", 0, &d, NULL), 1);
	assert_true(d == 1.5);
	bool b = false;
	assert_int_equal(json_get_bool(j, "", "b", 0, &b, NULL), 1);
	assert_true(b);
	assert_int_equal(json_get_bool(j, "", "gid", 0, &b, NULL), -EINVAL);
	uint64_t u64;
	assert_int_equal(json_get_uint64(j, "", "uid", 0, &u64, NULL), 1);
	assert_true(u64 == 4294967296ull);
}

static void test_strv_reports_index(void **state)
{
	_cleanup_json_ json_t *j = parse("{\"args\":[\"sh\",\"-c\",3],\"ok\":[\"a\",\"b\"]}");
	_cleanup_strv_ char **v = NULL;
	assert_int_equal(json_get_strv(j, "process", "ok", 0, &v, NULL), 1);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	assert_null(v[2]);
	char **bad = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(json_get_strv(j, "process", "args", 0, &bad, &err), -EINVAL);
	assert_null(bad);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "'process.args[2]': expected string, got integer");
}

static void test_string_map(void **state)
{
	_cleanup_json_ json_t *j = parse("{\"l\":{\"a\":\"1\",\"b\":\"2\"},\"bad\":{\"a\":1}}");
	_cleanup_strv_ char **v = NULL;
	assert_int_equal(json_get_string_map(j, "", "l", 0, &v, NULL), 1);
	assert_string_equal(v[0], "a=1");
	assert_string_equal(v[1], "b=2");
	char **w = NULL;
	assert_int_equal(json_get_string_map(j, "", "bad", 0, &w, NULL), -EINVAL);
}

static void test_object_array_getters(void **state)
{
	_cleanup_json_ json_t *j = parse("{\"o\":{},\"a\":[]}");
	json_t *x;
	assert_int_equal(json_get_object(j, "", "o", 0, &x, NULL), 1);
	assert_int_equal(json_get_array(j, "", "a", 0, &x, NULL), 1);
	assert_int_equal(json_get_object(j, "", "a", 0, &x, NULL), -EINVAL);
	assert_int_equal(json_get_array(j, "", "o", 0, &x, NULL), -EINVAL);
	/* getters on a non-object behave like an empty object */
	json_t *arr = json_object_get(j, "a");
	assert_int_equal(json_get_object(arr, "a", "k", 0, &x, NULL), 0);
}

static void test_load_file_limits(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *p = xasprintf("%s/c.json", dir);
	assert_int_equal(fs_write_file_atomic(p, "{\"a\":[1,2,3]}", 13, 0644, NULL), 0);
	_cleanup_json_ json_t *j = NULL;
	assert_int_equal(json_load_path(p, 0, &j, NULL), 0);
	json_t *j2 = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(json_load_path(p, 5, &j2, &err), -EFBIG);
	_cleanup_error_ struct berth_error *err2 = NULL;
	_cleanup_free_ char *missing = xasprintf("%s/nope.json", dir);
	assert_int_equal(json_load_path(missing, 0, &j2, &err2), -ENOENT);
	_cleanup_free_ char *m = berth_error_string(err2);
	assert_non_null(strstr(m, "nope.json': No such file or directory"));
	assert_int_equal(fs_rm_rf(dir, NULL), 0);
}

static void test_paths(void **state)
{
	_cleanup_free_ char *a = json_path_join(NULL, "x");
	_cleanup_free_ char *b = json_path_join("linux", "resources");
	_cleanup_free_ char *c = json_path_index("mounts", 4);
	assert_string_equal(a, "x");
	assert_string_equal(b, "linux.resources");
	assert_string_equal(c, "mounts[4]");
}

static void test_strv_find(void **state)
{
	_cleanup_json_ json_t *a = json_pack("[s,i,n,s,s]", "Alpha", 7, "beta", "alpha");
	assert_int_equal(json_strv_find(a, "alpha", false), 4);
	assert_int_equal(json_strv_find(a, "ALPHA", true), 0);
	assert_int_equal(json_strv_find(a, "beta", false), 3);
	assert_int_equal(json_strv_find(a, "7", false), -1); /* non-strings never match */
	assert_int_equal(json_strv_find(a, NULL, false), -1);
	assert_int_equal(json_strv_find(NULL, "beta", false), -1);
	_cleanup_json_ json_t *o = json_pack("{s:s}", "beta", "beta");
	assert_int_equal(json_strv_find(o, "beta", false), -1);
	assert_true(json_strv_contains(a, "Alpha"));
	assert_false(json_strv_contains(a, "gamma"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_error_has_position),
		cmocka_unit_test(test_duplicate_keys_rejected),
		cmocka_unit_test(test_string_getter),
		cmocka_unit_test(test_required_missing),
		cmocka_unit_test(test_integers_and_ranges),
		cmocka_unit_test(test_strv_reports_index),
		cmocka_unit_test(test_string_map),
		cmocka_unit_test(test_object_array_getters),
		cmocka_unit_test(test_load_file_limits),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_strv_find),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
