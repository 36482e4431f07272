/*
 * util.h - small parsers and formatters shared by every front end: strict
 * integers, docker-style byte sizes ("512m"), durations ("1m30s"), RFC 3339.
 * Parsers reject trailing garbage, overflow and empty input with -EINVAL or
 * -ERANGE; outputs are untouched on failure.
 */
#ifndef BERTH_COMMON_UTIL_H
#define BERTH_COMMON_UTIL_H

#include <time.h>

#include "common/macro.h"

int util_parse_int64(const char *s, int64_t *ret);
int util_parse_uint64(const char *s, uint64_t *ret);
/* Bytes: "1024", "10k", "512m", "1g" (1024-based, case-insensitive, optional 'b'/'ib'). */
int util_parse_bytes(const char *s, int64_t *ret);
/* Go-style durations: "300ms", "1.5s", "2m", "1h30m", "10us", "0". Result in nanoseconds. */
int util_parse_duration_ns(const char *s, int64_t *ret);

/* RFC 3339 UTC with nanoseconds: "2026-11-27T13:00:00.123456789Z" (at most 35 chars + NUL). */
#define RFC3339_MAX 40
/* "YYYY-MM-DDTHH:MM:SS" of t in UTC (no time zone loaded); the length written. */
size_t util_format_utc(time_t t, char *out, size_t size);
void util_format_rfc3339(const struct timespec *ts, char out[RFC3339_MAX]);
/* Parse RFC 3339 (Z or +hh:mm offset, optional fraction) into a timespec. */
int util_parse_rfc3339(const char *s, struct timespec *ret);
/* Days since 1970-01-01 of proleptic Gregorian y-m-d (m 1..12, d 1..31; H. Hinnant's
 * days-from-civil algorithm, the inverse of what util_format_utc does): timegm() without the time zone. */
int64_t util_days_from_civil(int64_t y, int m, int d);

/* Random hex id of n bytes of entropy (2n characters). Caller frees. */
char *util_random_hex(size_t n);

/*
 * HTTP framing checks shared by our servers (http/server.c, registry/server.c).
 * util_http_target_check: 0 when a raw request-target (path and query, before any
 * percent-decoding) is acceptable; -EINVAL when decoding it would put a NUL
 * byte into the path or a query value ("%00"), which C strings truncate.
 * util_http_framing_check: given how many Content-Length headers a request carries
 * and their values (the first two), and whether it has Transfer-Encoding:
 * -EINVAL for two different lengths (RFC 9112 6.3) or a length together with
 * Transfer-Encoding (request smuggling), 0 otherwise.
 */
int util_http_target_check(const char *raw);
/*
 * Crash-consistency test hook: when $BERTH_TEST_CRASH_AT equals name, the
 * process SIGKILLs itself here (a kill -9 at an exact point, no timing). Always
 * compiled in; costs one getenv() where it is placed.
 */
void util_crash_point(const char *name);
/*
 * Hang test hook: when $BERTH_TEST_HANG_AT equals name, or "name:subject",
 * the calling thread blocks here until $BERTH_TEST_HANG_FIFO (a FIFO the test
 * made) is opened for writing and closed again (forever without one). Always
 * compiled in; costs one getenv() where it is placed.
 */
void util_hang_point(const char *name, const char *subject);
int util_http_framing_check(size_t n_content_length, const char *cl1, const char *cl2,
			    bool transfer_encoding);

#endif
