/*
 * test-logs-filter.c - CloudWatch Logs filter patterns: text terms, quoted
 * phrases, exclusions, ?OR terms, JSON selectors with && || and numeric
 * comparisons, space-delimited fields with '...', and the parser's refusals.
 */
#include "unit.h"

#include "logs/filter.h"

static bool m(const char *pattern, const char *msg)
{
	struct logs_filter *f = NULL;
	struct berth_error *err = NULL;
	int r = logs_filter_parse(pattern, &f, &err);
	if (r < 0)
		fail_msg("pattern '%s': %s", pattern, err->msg);
	bool ok = logs_filter_match(f, msg, strlen(msg));
	logs_filter_free(f);
	return ok;
}

static void test_text(void **state)
{
	(void)state;
	assert_true(m("", "anything"));
	assert_true(m("ERROR", "an ERROR here"));
	assert_false(m("ERROR", "an error here")); /* case-sensitive */
	assert_true(m("ERROR disk", "ERROR: disk full"));
	assert_false(m("ERROR disk", "ERROR: memory"));
	assert_true(m("\"disk full\"", "ERROR: disk full now"));
	assert_false(m("\"disk full\"", "full disk"));
	assert_true(m("\"say \\\"hi\\\"\"", "they say \"hi\""));
	assert_true(m("ERROR -healthcheck", "ERROR in request"));
	assert_false(m("ERROR -healthcheck", "ERROR in healthcheck"));
	assert_false(m("-\"GET /health\"", "GET /health 200"));
	assert_true(m("?ERROR ?WARN", "WARN low disk"));
	assert_true(m("?ERROR ?WARN", "ERROR"));
	assert_false(m("?ERROR ?WARN", "INFO fine"));
	assert_false(m("?ERROR ?WARN -disk", "WARN low disk"));
}

static void test_json(void **state)
{
	(void)state;
	const char *e = "{\"level\":\"error\",\"latency\":250,\"user\":{\"id\":7,\"name\":\"ann\"},"
			"\"tags\":[\"a\",\"b\"],\"ok\":false,\"gone\":null}";
	assert_true(m("{ $.level = \"error\" }", e));
	assert_true(m("{$.level=error}", e));
	assert_false(m("{ $.level = \"warn\" }", e));
	assert_true(m("{ $.level = \"err*\" }", e));
	assert_true(m("{ $.level != \"warn\" }", e));
	assert_true(m("{ $.latency > 100 }", e));
	assert_false(m("{ $.latency < 100 }", e));
	assert_true(m("{ $.latency >= 250 && $.latency <= 250 }", e));
	assert_true(m("{ $.latency = 250 }", e));
	assert_true(m("{ $.user.id = 7 }", e));
	assert_true(m("{ $.user.name = \"ann\" && $.tags[1] = \"b\" }", e));
	assert_true(m("{ $.level = \"warn\" || $.user.id = 7 }", e));
	assert_false(m("{ ($.level = \"warn\" || $.user.id = 8) && $.latency > 0 }", e));
	assert_true(m("{ $.level = \"warn\" || $.user.id = 8 || $.ok IS FALSE }", e));
	assert_true(m("{ $.gone IS NULL }", e));
	assert_true(m("{ $.missing NOT EXISTS && $.level EXISTS }", e));
	assert_false(m("{ $.missing = \"x\" }", e));
	assert_false(m("{ $.level = \"error\" }", "level error, not JSON"));
	assert_false(m("{ $.level = \"error\" }", "[1,2]"));
}

static void test_space(void **state)
{
	(void)state;
	const char *line = "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 404 2326";
	assert_true(m("[ip, id, user, timestamp, request, status, bytes]", line));
	assert_true(m("[ip, id, user, timestamp, request, status = 404, bytes]", line));
	assert_true(m("[ip, id, user, timestamp, request, status = 4*, bytes > 1000]", line));
	assert_false(m("[ip, id, user, timestamp, request, status = 5*, bytes]", line));
	assert_true(m("[..., status = 404, bytes]", line));
	assert_true(m("[ip = 127.0.0.1, ...]", line));
	assert_true(m("[ip, ..., request = \"GET /a.gif HTTP/1.0\", ...]", line));
	assert_false(m("[ip, id, user]", line)); /* field count differs */
}

static void test_refusals(void **state)
{
	(void)state;
	const char *bad[] = { "\"unterminated",
			      "{ $.level = \"error\" ",
			      "{ level = 1 }",
			      "{ $.a = }",
			      "{ $.a > \"x\" }",
			      "{ $.a IS MAYBE }",
			      "{ $. = 1 }",
			      "{ $.a[x] = 1 }",
			      "{ ($.a = 1 }",
			      "{ $.a = 1 } trailing",
			      "[a, b",
			      "[a b, c]",
			      "[a, b > x]",
			      "-",
			      "? ERROR",
			      "ERR\"OR",
			      "{ $.a = 1 && }",
			      "{ $.a NOT 1 }",
			      "{}",
			      "[]" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct logs_filter *f = NULL;
		struct berth_error *err = NULL;
		if (logs_filter_parse(bad[i], &f, &err) == 0)
			fail_msg("pattern '%s' was accepted", bad[i]);
		assert_non_null(err);
		assert_non_null(strstr(err->msg, "Invalid filter pattern"));
		berth_error_free(err);
	}
	char big[LOGS_FILTER_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct logs_filter *f = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(logs_filter_parse(big, &f, &err), -EINVAL);
	berth_error_free(err);
	/* deep nesting is refused, not a stack overflow */
	char deep[200];
	size_t n = 0;
	deep[n++] = '{';
	for (int i = 0; i < 60; i++)
		deep[n++] = '(';
	deep[n] = '\0';
	err = NULL;
	assert_int_equal(logs_filter_parse(deep, &f, &err), -EINVAL);
	berth_error_free(err);
}

static void test_glob(void **state)
{
	(void)state;
	assert_true(logs_glob_match("a*c", "abbbc", 5));
	assert_true(logs_glob_match("*", "", 0));
	assert_true(logs_glob_match("*b*", "abc", 3));
	assert_false(logs_glob_match("a*d", "abc", 3));
	assert_true(logs_glob_match("a*b*c", "axxbyybzc", 9));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),     cmocka_unit_test(test_json), cmocka_unit_test(test_space),
		cmocka_unit_test(test_refusals), cmocka_unit_test(test_glob),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
