/* test-dockerfile.c - Dockerfile parser: syntax, instructions, errors. */
#include "unit.h"

#include "build/dockerfile.h"

static struct dockerfile *parse_ok(const char *text)
{
	struct dockerfile *df = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = dockerfile_parse(text, strlen(text), NULL, &df, &err);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("parse failed: %s", m);
	}
	return df;
}

static char *parse_err(const char *text)
{
	struct dockerfile *df = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = dockerfile_parse(text, strlen(text), NULL, &df, &err);
	assert_int_equal(r, -EINVAL);
	assert_null(df);
	return berth_error_string(err);
}

static void test_basic(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok("FROM busybox\nRUN echo hi\n");
	assert_int_equal(df->n_stages, 1);
	assert_int_equal(df->n_instrs, 2);
	assert_string_equal(df->stages[0].base, "busybox");
	assert_int_equal(df->instrs[1].cmd, DF_RUN);
	assert_string_equal(df->instrs[1].args[0], "echo hi");
	assert_false(df->instrs[1].json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
