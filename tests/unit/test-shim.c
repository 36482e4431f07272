/* test-shim.c - the log writers (json-file, local: framing, rotation, gzip) and stream frames. */
#include <fcntl.h>
#include <sys/socket.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "shim/logfile.h"
#include "shim/loglocal.h"
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
	shim_logfile_init(&l, path, 0, 1);
	assert_int_equal(shim_logfile_open(&l), 0);
	shim_logfile_write(&l, 1, "hel", 3);
	shim_logfile_write(&l, 1, "lo\nwor", 6);
	shim_logfile_write(&l, 2, "err \"q\"\n", 8);
	shim_logfile_done(&l); /* flushes "wor" without a newline */
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
	shim_logfile_init(&l, path, 300, 3);
	assert_int_equal(shim_logfile_open(&l), 0);
	for (int i = 0; i < 50; i++)
		shim_logfile_write(&l, 1, "0123456789012345678901234567890123456789\n", 41);
	shim_logfile_done(&l);
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
	shim_logfile_init(&l, path, 0, 1);
	assert_int_equal(shim_logfile_open(&l), 0);
	_cleanup_free_ char *big = xmalloc(LOGFILE_MAX_LINE * 2 + 10);
	memset(big, 'x', LOGFILE_MAX_LINE * 2 + 10);
	shim_logfile_write(&l, 1, big, LOGFILE_MAX_LINE * 2 + 10);
	shim_logfile_done(&l);
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
	shim_logfile_init(&l, NULL, 0, 1);
	assert_int_equal(shim_logfile_open(&l), 0);
	shim_logfile_write(&l, 1, "dropped\n", 8);
	shim_logfile_done(&l);
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

static void test_local_roundtrip(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	shim_loglocal_encode(&sb, 1, 1234567890123456789LL, "hello", 5, false);
	shim_loglocal_encode(&sb, 2, 5, "par", 3, true);
	struct loglocal_entry e;
	ssize_t n = shim_loglocal_decode(sb.buf, sb.len, &e);
	assert_true(n > 0);
	assert_int_equal(e.stream, 1);
	assert_true(e.time_ns == 1234567890123456789LL);
	assert_int_equal(e.len, 5);
	assert_memory_equal(e.line, "hello", 5);
	assert_false(e.partial);
	ssize_t n2 = shim_loglocal_decode(sb.buf + n, sb.len - (size_t)n, &e);
	assert_int_equal((size_t)(n + n2), sb.len);
	assert_int_equal(e.stream, 2);
	assert_true(e.partial);
	/* every truncation of a frame is "incomplete", never an error or an overread */
	for (size_t cut = 0; cut < (size_t)n; cut++) {
		_cleanup_free_ char *p = xmalloc(cut + 1);
		memcpy(p, sb.buf, cut);
		assert_int_equal(shim_loglocal_decode(p, cut, &e), 0);
	}
}

static void test_local_rejects_corrupt_frames(void **state)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	shim_loglocal_encode(&sb, 1, 1, "x", 1, false);
	struct loglocal_entry e;
	_cleanup_free_ char *bad = xmalloc(sb.len);
	memcpy(bad, sb.buf, sb.len);
	bad[sb.len - 1] ^= 1; /* trailer mismatch */
	assert_int_equal(shim_loglocal_decode(bad, sb.len, &e), -EBADMSG);
	memcpy(bad, sb.buf, sb.len);
	bad[4] = 0x0f; /* field 1 with wire type 7 */
	assert_int_equal(shim_loglocal_decode(bad, sb.len, &e), -EBADMSG);
	memcpy(bad, sb.buf, sb.len);
	bad[5] = 0x7f; /* source longer than the message */
	assert_int_equal(shim_loglocal_decode(bad, sb.len, &e), -EBADMSG);
	const unsigned char huge[8] = { 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	assert_int_equal(shim_loglocal_decode(huge, sizeof(huge), &e), -EBADMSG);
	const unsigned char zero_field[] = { 0, 0, 0, 2, 0x00, 0x01, 0, 0, 0, 2 };
	assert_int_equal(shim_loglocal_decode(zero_field, sizeof(zero_field), &e), -EBADMSG);
	const unsigned char long_varint[] = { 0,    0,    0,    11,   0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0xff, 0xff, 0,    0,    0,    11 };
	assert_int_equal(shim_loglocal_decode(long_varint, sizeof(long_varint), &e), -EBADMSG);
}

static void test_local_writer_rotates_and_compresses(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/container.log", dir);
	struct logfile l;
	shim_logfile_init(&l, path, 400, 3);
	shim_logfile_set_format(&l, true, true);
	assert_int_equal(shim_logfile_open(&l), 0);
	for (int i = 0; i < 100; i++)
		shim_logfile_write(&l, 1, "0123456789012345678901234567890123456789\n", 41);
	shim_logfile_done(&l); /* waits for the gzip child */
	_cleanup_free_ char *gz1 = xasprintf("%s.1.gz", path);
	_cleanup_free_ char *gz2 = xasprintf("%s.2.gz", path);
	_cleanup_free_ char *gz3 = xasprintf("%s.3.gz", path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(stat(gz1, &st), 0);
	assert_int_equal(stat(gz2, &st), 0);
	assert_int_not_equal(stat(gz3, &st), 0);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_int_equal(fs_read_file_at(AT_FDCWD, path, 0, &sb, NULL), 0);
	struct loglocal_entry e;
	ssize_t n = shim_loglocal_decode(sb.buf, sb.len, &e);
	assert_true(n > 0);
	assert_int_equal(e.len, 40);
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
		cmocka_unit_test(test_local_roundtrip),
		cmocka_unit_test(test_local_rejects_corrupt_frames),
		cmocka_unit_test(test_local_writer_rotates_and_compresses),
		cmocka_unit_test(test_request_to_missing_shim_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
