#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "unit.h"
#include "common/util.h"

static void test_parse_int(void **state)
{
	int64_t v;
	uint64_t u;
	assert_int_equal(util_parse_int64("-42", &v), 0);
	assert_int_equal(v, -42);
	assert_int_equal(util_parse_int64("", &v), -EINVAL);
	assert_int_equal(util_parse_int64(" 1", &v), -EINVAL);
	assert_int_equal(util_parse_int64("1x", &v), -EINVAL);
	assert_int_equal(util_parse_int64("99999999999999999999", &v), -ERANGE);
	assert_int_equal(util_parse_uint64("18446744073709551615", &u), 0);
	assert_int_equal(util_parse_uint64("-1", &u), -EINVAL);
	assert_int_equal(util_parse_uint64(NULL, &u), -EINVAL);
}

static void test_parse_bytes(void **state)
{
	int64_t v;
	assert_int_equal(util_parse_bytes("1024", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(util_parse_bytes("10k", &v), 0);
	assert_int_equal(v, 10240);
	assert_int_equal(util_parse_bytes("512m", &v), 0);
	assert_int_equal(v, 512ll << 20);
	assert_int_equal(util_parse_bytes("1GiB", &v), 0);
	assert_int_equal(v, 1ll << 30);
	assert_int_equal(util_parse_bytes("1.5g", &v), 0);
	assert_int_equal(v, 3ll << 29);
	assert_int_equal(util_parse_bytes("12b", &v), 0);
	assert_int_equal(v, 12);
	assert_int_equal(util_parse_bytes("-1m", &v), -EINVAL);
	assert_int_equal(util_parse_bytes("1q", &v), -EINVAL);
	assert_int_equal(util_parse_bytes("m", &v), -EINVAL);
	assert_int_equal(util_parse_bytes("1mm", &v), -EINVAL);
	assert_int_equal(util_parse_bytes("99999999p", &v), -ERANGE);
}

static void test_parse_duration(void **state)
{
	int64_t v;
	assert_int_equal(util_parse_duration_ns("300ms", &v), 0);
	assert_int_equal(v, 300000000);
	assert_int_equal(util_parse_duration_ns("1h30m", &v), 0);
	assert_int_equal(v, 5400ll * 1000000000);
	assert_int_equal(util_parse_duration_ns("1.5s", &v), 0);
	assert_int_equal(v, 1500000000);
	assert_int_equal(util_parse_duration_ns("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(util_parse_duration_ns("10", &v), -EINVAL);
	assert_int_equal(util_parse_duration_ns("s", &v), -EINVAL);
	assert_int_equal(util_parse_duration_ns("5x", &v), -EINVAL);
	assert_int_equal(util_parse_duration_ns("", &v), -EINVAL);
}

/* util_format_utc against gmtime_r over leap years, century rules and the epoch's sides */
static void test_format_utc_matches_gmtime(void **state)
{
	const time_t cases[] = { 0,
				 -1,
				 59,
				 86399,
				 86400,
				 951782400 /* 2000-02-29 */,
				 4107542400 /* 2100-03-01 */,
				 1796634766,
				 -11644473600 /* 1601-01-01 */,
				 253402300799 /* 9999-12-31 */ };
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (time_t t = cases[i] - 2 * 86400; t <= cases[i] + 2 * 86400; t += 3607) {
			struct tm tm;
			char want[64], got[64];
			gmtime_r(&t, &tm);
			strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
			assert_int_equal(util_format_utc(t, got, sizeof(got)), strlen(want));
			assert_string_equal(got, want);
			/* and back: util_days_from_civil is util_format_utc's inverse (timegm without a time
			 * zone) */
			int64_t days = util_days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday);
			assert_int_equal(days * 86400 + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec, t);
		}
	}
	char small[8];
	assert_int_equal(util_format_utc(0, small, sizeof(small)), 7);
	assert_string_equal(small, "1970-01");
}

static void test_rfc3339_round_trip(void **state)
{
	struct timespec ts = { .tv_sec = 1795784400, .tv_nsec = 123456789 }, back;
	char buf[RFC3339_MAX];
	util_format_rfc3339(&ts, buf);
	assert_string_equal(buf, "2026-11-27T13:00:00.123456789Z");
	assert_int_equal(util_parse_rfc3339(buf, &back), 0);
	assert_int_equal(back.tv_sec, ts.tv_sec);
	assert_int_equal(back.tv_nsec, ts.tv_nsec);
	assert_int_equal(util_parse_rfc3339("2026-11-27T14:00:00+01:00", &back), 0);
	assert_int_equal(back.tv_sec, 1795784400);
	assert_int_equal(util_parse_rfc3339("2026-11-27T10:00:00", &back), -EINVAL);
	assert_int_equal(util_parse_rfc3339("garbage", &back), -EINVAL);
	assert_int_equal(util_parse_rfc3339("2026-11-27T10:00:00.Z", &back), -EINVAL);
}

static void test_random_hex(void **state)
{
	_cleanup_free_ char *a = util_random_hex(32);
	_cleanup_free_ char *b = util_random_hex(32);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
}

static void test_http_target_and_framing(void **state)
{
	(void)state;
	assert_int_equal(util_http_target_check("/v2/x/manifests/v1"), 0);
	assert_int_equal(util_http_target_check("/v2/x/manifests/v1%2500"),
			 0); /* a literal "%00" after decoding */
	assert_int_equal(util_http_target_check("/v2/x/manifests/v1%00.json"), -EINVAL);
	assert_int_equal(util_http_target_check("/containers/json?all=1%00"), -EINVAL);
	assert_int_equal(util_http_target_check("/a%0a"), 0);
	assert_int_equal(util_http_framing_check(0, NULL, NULL, false), 0);
	assert_int_equal(util_http_framing_check(0, NULL, NULL, true), 0);
	assert_int_equal(util_http_framing_check(1, "3", NULL, false), 0);
	assert_int_equal(util_http_framing_check(2, "3", "3", false), 0);
	assert_int_equal(util_http_framing_check(2, "3", "4", false), -EINVAL);
	assert_int_equal(util_http_framing_check(3, "3", "3", false), -EINVAL);
	assert_int_equal(util_http_framing_check(1, "3", NULL, true), -EINVAL);
}

static void *release_fifo(void *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC); /* blocks until util_hang_point opens it */
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void test_hang_point(void **state)
{
	(void)state;
	unsetenv("BERTH_TEST_HANG_AT");
	util_hang_point("exit-cleanup", "web"); /* unset: returns */
	setenv("BERTH_TEST_HANG_AT", "exit-cleanup:web", 1);
	util_hang_point("exit-cleanup", "db"); /* another subject */
	util_hang_point("exit-cleanup", NULL); /* no subject */
	util_hang_point("exit", "web");        /* a prefix of the point is not the point */
	util_hang_point("exit-cleanup-x", "web");
	char dir[] = "/tmp/test-hang-XXXXXX";
	assert_non_null(mkdtemp(dir));
	unit_tmp_track(dir);
	char fifo[sizeof(dir) + 8];
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	setenv("BERTH_TEST_HANG_FIFO", fifo, 1);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, release_fifo, fifo), 0);
	util_hang_point("exit-cleanup", "web"); /* matches: returns once released */
	pthread_join(t, NULL);
	setenv("BERTH_TEST_HANG_AT", "exit-cleanup", 1);
	assert_int_equal(pthread_create(&t, NULL, release_fifo, fifo), 0);
	util_hang_point("exit-cleanup", "any"); /* no subject in the variable: every one */
	pthread_join(t, NULL);
	unsetenv("BERTH_TEST_HANG_AT");
	unsetenv("BERTH_TEST_HANG_FIFO");
	unlink(fifo);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_parse_bytes),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_rfc3339_round_trip),
		cmocka_unit_test(test_format_utc_matches_gmtime),
		cmocka_unit_test(test_random_hex),
		cmocka_unit_test(test_http_target_and_framing),
		cmocka_unit_test(test_hang_point),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
