/* test-build-shlex.c - variable substitution like BuildKit's shell lexer. */
#include "unit.h"

#include "build/shlex.h"

static char *const env[] = { (char *)"A=alpha",
			     (char *)"EMPTY=",
			     (char *)"SP=a b",
			     (char *)"A=override",
			     (char *)"PATHV=/usr/local/bin.tar.gz",
			     NULL };

static void check(const char *in, const char *expect)
{
	_cleanup_free_ char *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (build_shlex_process_word(in, '\\', env, 0, &out, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("'%s' failed: %s", in, m);
	}
	if (!streq(out, expect))
		fail_msg("'%s' -> '%s', expected '%s'", in, out, expect);
}

static void check_err(const char *in, const char *expect)
{
	_cleanup_free_ char *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_shlex_process_word(in, '\\', env, 0, &out, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	if (!strstr(m, expect))
		fail_msg("'%s': error '%s' lacks '%s'", in, m, expect);
}

static void test_simple(void **state)
{
	check("$A", "override");
	check("${A}", "override");
	check("x${A}y", "xoverridey");
	check("$A.b", "override.b");
	check("$NOPE", "");
	check("$", "$");
	check("a$", "a$");
	check("$1x", "x");
	check("${EMPTY}", "");
	check("plain", "plain");
}

static void test_modifiers(void **state)
{
	check("${NOPE:-def}", "def");
	check("${EMPTY:-def}", "def");
	check("${EMPTY-def}", "");
	check("${NOPE-def}", "def");
	check("${A:-def}", "override");
	check("${A:+alt}", "alt");
	check("${EMPTY:+alt}", "");
	check("${EMPTY+alt}", "alt");
	check("${NOPE+alt}", "");
	check("${NOPE:-$A}", "override");
	check("${NOPE:-${EMPTY:-deep}}", "deep");
	check("${A:?msg}", "override");
	check("${PATHV#*/}", "usr/local/bin.tar.gz");
	check("${PATHV##*/}", "bin.tar.gz");
	check("${PATHV%.*}", "/usr/local/bin.tar");
	check("${PATHV%%.*}", "/usr/local/bin");
}

static void test_modifier_errors(void **state)
{
	check_err("${NOPE:?}", "NOPE: is not allowed to be unset");
	check_err("${EMPTY:?}", "EMPTY: is not allowed to be empty");
	check_err("${NOPE?custom}", "NOPE: custom");
	check_err("${A", "syntax error: missing '}'");
	check_err("${A:-x", "syntax error: missing '}'");
	check_err("${}", "bad substitution");
	check_err("${:x}", "bad substitution");
	check_err("${A^x}", "unsupported modifier (^) in substitution");
	check_err("${A:x}", "unsupported modifier (:x) in substitution");
	check_err("'open", "matching single-quote");
	check_err("\"open", "matching double-quote");
}

static void test_quotes_and_escapes(void **state)
{
	check("'$A'", "$A");
	check("\"$A\"", "override");
	check("\"a\\\"b\"", "a\"b");
	check("\"a\\$A\"", "a$A");
	check("\"a\\nb\"", "a\\nb");
	check("\\$A", "$A");
	check("a\\ b", "a b");
	check("it\\'s", "it's");
	check("'a\\b'", "a\\b");
	check("x\\", "x");
	check("\"${NOPE:-a b}\"", "a b");
	check("${NOPE:-'q'}", "q");
}

static void test_backtick_escape(void **state)
{
	_cleanup_free_ char *out = NULL;
	assert_int_equal(build_shlex_process_word("c:\\dir `$A", '`', env, 0, &out, NULL), 0);
	assert_string_equal(out, "c:\\dir $A");
}

static void test_flags(void **state)
{
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(build_shlex_process_word("'x' \"$A\"", '\\', env, SHLEX_RAW_QUOTES, &a, NULL), 0);
	assert_string_equal(a, "'x' \"override\"");
	assert_int_equal(
	    build_shlex_process_word("$NOPE ${NOPE} ${NOPE:-d} $A", '\\', env, SHLEX_SKIP_UNSET, &b, NULL),
	    0);
	assert_string_equal(b, "$NOPE ${NOPE} ${NOPE:-d} override");
	assert_int_equal(build_shlex_process_word("a\\b", '\\', env, SHLEX_RAW_ESCAPES, &c, NULL), 0);
	assert_string_equal(c, "a\\b");
}

static void test_words(void **state)
{
	_cleanup_strv_ char **w = NULL;
	assert_int_equal(build_shlex_process_words("80 $SP \"$SP\" 'x y' a\\ b \"\"", '\\', env, 0, &w, NULL),
			 0);
	const char *expect[] = { "80", "a", "b", "a b", "x y", "a b", "", NULL };
	for (size_t i = 0; expect[i]; i++) {
		assert_non_null(w[i]);
		assert_string_equal(w[i], expect[i]);
	}
	assert_null(w[7]);
	_cleanup_strv_ char **e = NULL;
	assert_int_equal(build_shlex_process_words("   ", '\\', env, 0, &e, NULL), 0);
	assert_null(e[0]);
}

static void test_env_get_last_wins(void **state)
{
	assert_string_equal(build_shlex_env_get(env, "A"), "override");
	assert_null(build_shlex_env_get(env, "AL"));
	assert_null(build_shlex_env_get(NULL, "A"));
}

static void test_deep_nesting_is_bounded(void **state)
{
	size_t n = 200;
	char *s = xmalloc(n * 6 + 10);
	char *p = s;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, "${X:-", 5);
		p += 5;
	}
	*p++ = 'v';
	for (size_t i = 0; i < n; i++)
		*p++ = '}';
	*p = '\0';
	_cleanup_free_ char *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_shlex_process_word(s, '\\', env, 0, &out, &err), -EINVAL);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_modifiers),
		cmocka_unit_test(test_modifier_errors),
		cmocka_unit_test(test_quotes_and_escapes),
		cmocka_unit_test(test_backtick_escape),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_env_get_last_wins),
		cmocka_unit_test(test_deep_nesting_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
