/* test-shim.c - the json-file writer (line splitting, rotation) and stream frames. */
#include <fcntl.h>
#include <sys/socket.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "shim/logfile.h"
#include "shim/shim.h"

static char *read_all(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(fs_read_file_at(AT_FDCWD, path, 0, &sb, NULL), 0);
	return strbuf_detach(&sb, NULL);
}

static void test_lines_become_records(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/c-json.log", dir);
	struct logfile l;
	logfile_init(&l, path, 0, 1);
	assert_int_equal(logfile_open(&l), 0);
	logfile_write(&l, 1, "hel", 3);
	logfile_write(&l, 1, "lo\nwor", 6);
	logfile_write(&l, 2, "err \"q\"\n", 8);
	logfile_done(&l); /* flushes "wor" without a newline */
	_cleanup_free_ char *text = read_all(path);
	char *save = NULL;
	const char *want[][2] = { { "hello\n", "stdout" }, { "err \"q\"\n", "stderr" }, { "wor", "stdout" } };
	size_t i = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
		assert_true(i < ARRAY_SIZE(want));
		json_t *j = json_loads(line, 0, NULL);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "log")), want[i][0]);
		assert_string_equal(json_string_value(json_object_get(j, "stream")), want[i][1]);
		assert_non_null(json_string_value(json_object_get(j, "time")));
		json_decref(j);
	}
	assert_int_equal(i, 3);
	fs_rm_rf(dir, NULL);
}

static void test_rotation_keeps_max_file(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/c-json.log", dir);
	struct logfile l;
	logfile_init(&l, path, 300, 3);
	assert_int_equal(logfile_open(&l), 0);
	for (int i = 0; i < 50; i++)
		logfile_write(&l, 1, "0123456789012345678901234567890123456789\n", 41);
	logfile_done(&l);
	struct stat st;
	for (int i = 0; i < 3; i++) {
		_cleanup_free_ char *p = i ? xasprintf("%s.%d", path, i) : xstrdup(path);
		assert_int_equal(stat(p, &st), 0);
		assert_true(st.st_size <= 300);
	}
	_cleanup_free_ char *p3 = xasprintf("%s.3", path);
	assert_int_equal(stat(p3, &st), -1);
	fs_rm_rf(dir, NULL);
}

static void test_long_lines_are_split(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/c-json.log", dir);
	struct logfile l;
	logfile_init(&l, path, 0, 1);
	assert_int_equal(logfile_open(&l), 0);
	_cleanup_free_ char *big = xmalloc(LOGFILE_MAX_LINE * 2 + 10);
	memset(big, 'x', LOGFILE_MAX_LINE * 2 + 10);
	logfile_write(&l, 1, big, LOGFILE_MAX_LINE * 2 + 10);
	logfile_done(&l);
	_cleanup_free_ char *text = read_all(path);
	size_t lines = 0;
	for (char *p = text; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines, 3);
	fs_rm_rf(dir, NULL);
}

static void test_none_driver_writes_nothing(void **state)
{
	struct logfile l;
	logfile_init(&l, NULL, 0, 1);
	assert_int_equal(logfile_open(&l), 0);
	logfile_write(&l, 1, "dropped\n", 8);
	logfile_done(&l);
}

static void test_frame_header(void **state)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(shim_write_frame(sp[0], SHIM_STDERR, "abc", 3), 0);
	unsigned char buf[16];
	assert_int_equal(read(sp[1], buf, sizeof(buf)), 11);
	const unsigned char want[8] = { 2, 0, 0, 0, 0, 0, 0, 3 };
	assert_memory_equal(buf, want, 8);
	assert_memory_equal(buf + 8, "abc", 3);
	close(sp[0]);
	close(sp[1]);
}

static void test_request_to_missing_shim_fails(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	json_t *req = json_pack("{s:s}", "op", "start");
	struct berth_error *err = NULL;
	assert_true(shim_request(dir, req, NULL, &err) < 0);
	assert_non_null(err);
	berth_error_free(err);
	json_decref(req);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_become_records),
		cmocka_unit_test(test_rotation_keeps_max_file),
		cmocka_unit_test(test_long_lines_are_split),
		cmocka_unit_test(test_none_driver_writes_nothing),
		cmocka_unit_test(test_frame_header),
		cmocka_unit_test(test_request_to_missing_shim_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
