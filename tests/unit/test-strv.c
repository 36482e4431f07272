#include "unit.h"
#include "common/json.h"
#include "common/strv.h"

static void test_add_and_length(void **state)
{
	_cleanup_strv_ char **v = NULL;
	assert_int_equal(strv_length(v), 0);
	strv_add(&v, "a");
	strv_add(&v, "");
	strv_add(&v, "c");
	assert_int_equal(strv_length(v), 3);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "");
	assert_string_equal(v[2], "c");
	assert_null(v[3]);
}

static void test_dup_is_deep(void **state)
{
	const char *src[] = { "x", "y", NULL };
	_cleanup_strv_ char **c = strv_dup(src);
	assert_int_equal(strv_length(c), 2);
	assert_ptr_not_equal(c[0], src[0]);
	assert_string_equal(c[1], "y");
	_cleanup_strv_ char **e = strv_dup((char **)NULL);
	assert_non_null(e);
	assert_null(e[0]);
}

static void test_contains(void **state)
{
	char *v[] = { "alpha", "beta", NULL };
	assert_true(strv_contains(v, "beta"));
	assert_false(strv_contains(v, "bet"));
	assert_false(strv_contains(v, ""));
	assert_false(strv_contains((const char **)NULL, "alpha"));
}

static void test_to_json(void **state)
{
	const char *v[] = { "a", "b\"q", NULL };
	_cleanup_json_ json_t *j = strv_to_json(v);
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT);
	assert_string_equal(s, "[\"a\",\"b\\\"q\"]");
	_cleanup_json_ json_t *e = strv_to_json((char **)NULL);
	assert_true(json_is_array(e));
	assert_int_equal(json_array_size(e), 0);
}

static void test_kv(void **state)
{
	const char *v[] = { "a=1", "b", "c=x=y", "=e", "a=2", NULL };
	_cleanup_json_ json_t *j = strv_kv_to_json(v);
	_cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(s, "{\"\":\"e\",\"a\":\"2\",\"b\":\"\",\"c\":\"x=y\"}");
	_cleanup_json_ json_t *e = strv_kv_to_json((char **)NULL);
	assert_int_equal(json_object_size(e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_length),
		cmocka_unit_test(test_dup_is_deep),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_kv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
