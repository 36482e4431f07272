#include "unit.h"
#include "common/log.h"
#include "common/strbuf.h"

static char *capture(enum log_format fmt, void (*fn)(void))
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	log_set_fd(p[1]);
	log_set_format(fmt);
	fn();
	close(p[1]);
	log_set_fd(STDERR_FILENO);
	log_set_format(LOG_FORMAT_TEXT);
	struct strbuf sb = STRBUF_INIT;
	assert_true(strbuf_read_fd(&sb, p[0], 0) >= 0);
	close(p[0]);
	return strbuf_detach(&sb, NULL);
}

static void emit_fields(void)
{
	log_fields(LOG_LEVEL_INFO, "container started", "id", "abc", "name", "my web", NULL);
}

static void emit_debug(void)
{
	log_debug("hidden %d", 1);
}

static void test_logfmt_quotes_values(void **state)
{
	log_set_level(LOG_LEVEL_INFO);
	_cleanup_free_ char *s = capture(LOG_FORMAT_TEXT, emit_fields);
	assert_true(startswith(s, "time="));
	assert_non_null(strstr(s, " level=info msg=\"container started\" id=abc name=\"my web\"\n"));
}

static void test_json_format(void **state)
{
	_cleanup_free_ char *s = capture(LOG_FORMAT_JSON, emit_fields);
	assert_true(startswith(s, "{\"time\":"));
	assert_non_null(strstr(s, "\"level\":\"info\",\"msg\":\"container started\",\"id\":\"abc\""));
	assert_true(endswith(s, "}\n"));
}

static void test_level_filters(void **state)
{
	log_set_level(LOG_LEVEL_INFO);
	_cleanup_free_ char *s = capture(LOG_FORMAT_TEXT, emit_debug);
	assert_string_equal(s, "");
	log_set_level(LOG_LEVEL_DEBUG);
	_cleanup_free_ char *s2 = capture(LOG_FORMAT_TEXT, emit_debug);
	assert_non_null(strstr(s2, "level=debug msg=\"hidden 1\""));
	log_set_level(LOG_LEVEL_INFO);
}

static void test_parse_level(void **state)
{
	enum log_level l;
	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_parse_level("WARNING", &l), 0);
	assert_int_equal(l, LOG_LEVEL_WARN);
	assert_int_equal(log_parse_level("loud", &l), -EINVAL);
	assert_int_equal(log_parse_level(NULL, &l), -EINVAL);
	assert_string_equal(log_level_name(LOG_LEVEL_ERROR), "error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logfmt_quotes_values),
		cmocka_unit_test(test_json_format),
		cmocka_unit_test(test_level_filters),
		cmocka_unit_test(test_parse_level),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
