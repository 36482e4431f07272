#include <fcntl.h>

#include "unit.h"
#include "common/strbuf.h"

static void test_init_is_empty_string(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");
	char *s = strbuf_detach(&sb, NULL);
	assert_string_equal(s, "");
	free(s);
	assert_string_equal(sb.buf, "");
}

static void test_add_and_format(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "hello");
	strbuf_addch(&sb, ' ');
	strbuf_addf(&sb, "%s-%d", "world", 42);
	assert_string_equal(sb.buf, "hello world-42");
	assert_int_equal(sb.len, 14);
	strbuf_setlen(&sb, 5);
	assert_string_equal(sb.buf, "hello");
	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
}

static void test_grows_large(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i < 10000; i++)
		strbuf_addf(&sb, "%04d", i % 10000);
	assert_int_equal(sb.len, 40000);
	assert_int_equal(sb.buf[sb.len], '\0');
	assert_memory_equal(sb.buf + 39996, "9999", 4);
}

static void test_binary_data(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_add(&sb, "a\0b", 3);
	assert_int_equal(sb.len, 3);
	assert_int_equal(sb.buf[1], '\0');
	assert_int_equal(sb.buf[3], '\0');
}

static void test_json_string(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_add_json_string(&sb, "a\"b\\c\n\x01");
	assert_string_equal(sb.buf, "\"a\\\"b\\\\c\\n\\u0001\"");
	/* runs of plain characters around and between escapes, UTF-8 as it is, the empty string */
	strbuf_reset(&sb);
	strbuf_add_json_string(&sb, "\"plain run\t\xc3\xa9t\xc3\xa9\x1f\\");
	strbuf_add_json_string(&sb, "");
	strbuf_add_json_string(&sb, "only plain");
	assert_string_equal(sb.buf, "\"\\\"plain run\\t\xc3\xa9t\xc3\xa9\\u001f\\\\\"\"\"\"only plain\"");
}

static void test_trim(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "line \n\t");
	strbuf_trim_trailing(&sb);
	assert_string_equal(sb.buf, "line");
}

static void test_read_fd_limit(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	char buf[100];
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(write(p[1], buf, sizeof(buf)), 100);
	close(p[1]);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "pre");
	assert_int_equal(strbuf_read_fd(&sb, p[0], 50), -EFBIG);
	assert_string_equal(sb.buf, "pre");
	close(p[0]);

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], buf, sizeof(buf)), 100);
	close(p[1]);
	assert_int_equal(strbuf_read_fd(&sb, p[0], 0), 100);
	assert_int_equal(sb.len, 103);
	close(p[0]);
	assert_int_equal(strbuf_read_fd(&sb, -1, 0), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_is_empty_string), cmocka_unit_test(test_add_and_format),
		cmocka_unit_test(test_grows_large),          cmocka_unit_test(test_binary_data),
		cmocka_unit_test(test_json_string),          cmocka_unit_test(test_trim),
		cmocka_unit_test(test_read_fd_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
