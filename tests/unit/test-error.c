#include "unit.h"
#include "common/error.h"

static void test_set_returns_negative_errno(void **state)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = berth_error_set(&err, ENOENT, "open '%s'", "config.json");
	assert_int_equal(r, -ENOENT);
	assert_int_equal(berth_error_code(err), ENOENT);
	_cleanup_free_ char *s = berth_error_string(err);
	assert_string_equal(s, "open 'config.json': No such file or directory");
}

static void test_wrap_prepends_context(void **state)
{
	_cleanup_error_ struct berth_error *err = NULL;
	berth_error_set(&err, EACCES, "mount '/proc'");
	int r = berth_error_wrap(&err, -EACCES, "prepare rootfs");
	assert_int_equal(r, -EACCES);
	berth_error_wrap(&err, r, "create container '%s'", "web");
	_cleanup_free_ char *s = berth_error_string(err);
	assert_string_equal(s, "create container 'web': prepare rootfs: mount '/proc': Permission denied");
	assert_int_equal(berth_error_code(err), EACCES);
}

static void test_wrap_without_inner_uses_ret(void **state)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = berth_error_wrap(&err, -EEXIST, "create '%s'", "x");
	assert_int_equal(r, -EEXIST);
	_cleanup_free_ char *s = berth_error_string(err);
	assert_string_equal(s, "create 'x': File exists");
}

static void test_code_zero_is_einval_without_strerror(void **state)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = berth_error_set(&err, 0, "'process.args': required but missing");
	assert_int_equal(r, -EINVAL);
	_cleanup_free_ char *s = berth_error_string(err);
	assert_string_equal(s, "'process.args': required but missing");
}

static void test_null_err_is_allowed(void **state)
{
	assert_int_equal(berth_error_set(NULL, EPERM, "x"), -EPERM);
	assert_int_equal(berth_error_wrap(NULL, -EIO, "y"), -EIO);
	assert_null(berth_error_free(NULL));
	_cleanup_free_ char *s = berth_error_string(NULL);
	assert_string_equal(s, "unknown error");
}

static void test_errno_variant(void **state)
{
	_cleanup_error_ struct berth_error *err = NULL;
	errno = ENOTDIR;
	assert_int_equal(berth_error_errno(&err, "stat"), -ENOTDIR);
	errno = 0;
	_cleanup_error_ struct berth_error *e2 = NULL;
	assert_int_equal(berth_error_errno(&e2, "weird"), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_returns_negative_errno),
		cmocka_unit_test(test_wrap_prepends_context),
		cmocka_unit_test(test_wrap_without_inner_uses_ret),
		cmocka_unit_test(test_code_zero_is_einval_without_strerror),
		cmocka_unit_test(test_null_err_is_allowed),
		cmocka_unit_test(test_errno_variant),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
