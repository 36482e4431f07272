/* util.c - strict number, size, duration and time parsing and formatting. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <ctype.h>
#include <sys/random.h>
#include <time.h>

#include "common/util.h"

int util_parse_int64(const char *s, int64_t *ret)
{
	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end || end == s)
		return -EINVAL;
	*ret = v;
	return 0;
}

int util_parse_uint64(const char *s, uint64_t *ret)
{
	if (!s || !*s || !isdigit((unsigned char)*s))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int util_parse_bytes(const char *s, int64_t *ret)
{
	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mult = 1;
	char u = (char)tolower((unsigned char)*end);
	if (u) {
		switch (u) {
		case 'b': mult = 1; break;
		case 'k': mult = 1024.0; break;
		case 'm': mult = 1024.0 * 1024; break;
		case 'g': mult = 1024.0 * 1024 * 1024; break;
		case 't': mult = 1024.0 * 1024 * 1024 * 1024; break;
		case 'p': mult = 1024.0 * 1024 * 1024 * 1024 * 1024; break;
		default: return -EINVAL;
		}
		end++;
		if (u != 'b') {
			if (tolower((unsigned char)*end) == 'i')
				end++;
			if (tolower((unsigned char)*end) == 'b')
				end++;
		}
	}
	if (*end)
		return -EINVAL;
	double total = v * mult;
	if (total >= 9.2e18)
		return -ERANGE;
	*ret = (int64_t)total;
	return 0;
}

int util_parse_duration_ns(const char *s, int64_t *ret)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {
		{ "ns", 1 },  { "us", 1e3 }, { "µs", 1e3 },   { "ms", 1e6 },
		{ "s", 1e9 }, { "m", 60e9 }, { "h", 3600e9 },
	};
	if (!s || !*s)
		return -EINVAL;
	if (streq(s, "0")) {
		*ret = 0;
		return 0;
	}
	double total = 0;
	const char *p = s;
	bool neg = false;
	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	if (!*p)
		return -EINVAL;
	while (*p) {
		if (!(isdigit((unsigned char)*p) || *p == '.'))
			return -EINVAL;
		char *end;
		double v = strtod(p, &end);
		if (end == p)
			return -EINVAL;
		p = end;
		size_t best = 0;
		double mult = 0;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			size_t l = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, l) == 0 && l > best &&
			    !(l == 1 && units[i].unit[0] == 'm' && p[1] == 's')) {
				best = l;
				mult = units[i].ns;
			}
		}
		if (!best)
			return -EINVAL;
		p += best;
		total += v * mult;
	}
	if (total > 9.2e18)
		return -ERANGE;
	*ret = (int64_t)(neg ? -total : total);
	return 0;
}

int64_t util_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * "YYYY-MM-DDTHH:MM:SS" of t in UTC, by arithmetic (H. Hinnant's civil_from_days):
 * glibc's gmtime_r() loads the time zone (TZ, /etc/localtime) on its first
 * call, a file read in every short-lived process that stamps a time.
 */
size_t util_format_utc(time_t t, char *out, size_t size)
{
	int64_t days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	int n = snprintf(out, size, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", (long long)y, (long long)m,
			 (long long)d, (long long)(secs / 3600), (long long)(secs / 60 % 60),
			 (long long)(secs % 60));
	return n < 0 ? 0 : MIN((size_t)n, size ? size - 1 : 0);
}

void util_format_rfc3339(const struct timespec *ts, char out[RFC3339_MAX])
{
	size_t n = util_format_utc(ts->tv_sec, out, RFC3339_MAX);
	snprintf(out + n, RFC3339_MAX - n, ".%09ldZ", ts->tv_nsec);
}

int util_parse_rfc3339(const char *s, struct timespec *ret)
{
	struct tm tm = { 0 };
	if (!s)
		return -EINVAL;
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	long nsec = 0;
	if (*p == '.') {
		p++;
		int digits = 0;
		while (isdigit((unsigned char)*p)) {
			if (digits < 9) {
				nsec = nsec * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (!digits)
			return -EINVAL;
		while (digits++ < 9)
			nsec *= 10;
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		int hh, mm;
		if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 || strlen(p) != 6)
			return -EINVAL;
		off = sign * (hh * 3600L + mm * 60L);
		p += 6;
	} else {
		return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mday == 31))
		return -EINVAL;
	ret->tv_sec = t - off;
	ret->tv_nsec = nsec;
	return 0;
}

char *util_random_hex(size_t n)
{
	static const char hex[] = "0123456789abcdef";
	_cleanup_free_ unsigned char *b = xmalloc(n);
	size_t got = 0;
	while (got < n) {
		ssize_t k = getrandom(b + got, n - got, 0);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			abort();
		}
		got += (size_t)k;
	}
	char *s = xmalloc(2 * n + 1);
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = hex[b[i] >> 4];
		s[2 * i + 1] = hex[b[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

int util_http_target_check(const char *raw)
{
	/* "%00" is the only escape that decodes to NUL; hex digits '0' have no case */
	return raw && strstr(raw, "%00") ? -EINVAL : 0;
}

int util_http_framing_check(size_t n_content_length, const char *cl1, const char *cl2, bool transfer_encoding)
{
	if (n_content_length > 0 && transfer_encoding)
		return -EINVAL;
	if (n_content_length > 2 || (n_content_length == 2 && (!cl1 || !cl2 || !streq(cl1, cl2))))
		return -EINVAL;
	return 0;
}

void util_hang_point(const char *name, const char *subject)
{
	const char *at = getenv("BERTH_TEST_HANG_AT");
	size_t n = strlen(name);
	if (!at || strncmp(at, name, n) != 0 ||
	    !(at[n] == '\0' || (at[n] == ':' && subject && strcmp(at + n + 1, subject) == 0)))
		return;
	const char *fifo = getenv("BERTH_TEST_HANG_FIFO");
	int fd = fifo ? open(fifo, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		for (;;)
			pause();
	}
	char buf[64];
	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));
		if (k == 0 || (k < 0 && errno != EINTR))
			break;
	}
	close(fd);
}

void util_crash_point(const char *name)
{
	const char *at = getenv("BERTH_TEST_CRASH_AT");
	if (at && strcmp(at, name) == 0)
		raise(SIGKILL);
}
