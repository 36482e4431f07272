/*
 * error.h - the error chain carried across module boundaries.
 *
 * A failing function creates the error once, at the failing call, with the
 * errno it saw and a message naming what failed ("open 'config.json'"). Each
 * caller on the way up may wrap it with context ("load spec"); the top level
 * (CLI, API handler) prints the whole chain once:
 *
 *     load spec: open 'config.json': No such file or directory
 *
 * Conventions: functions return int, >= 0 on success and -errno on failure, and
 * take `struct berth_error **err` as their last parameter. `err` may be NULL
 * when the caller does not want the message. On success *err is untouched. On
 * failure *err is set (or wrapped, if it already held an error). The helpers
 * below return the negative errno so that `return berth_error_set(...)` works.
 *
 * Messages: lowercase, no trailing full stop, user values in single quotes.
 */
#ifndef BERTH_COMMON_ERROR_H
#define BERTH_COMMON_ERROR_H

#include "common/macro.h"

struct berth_error {
	int code;                  /* positive errno, or 0 for "no errno" */
	bool quiet;                /* do not append strerror(code) when rendering */
	char *msg;                 /* this level's message, never NULL */
	struct berth_error *cause; /* inner error, or NULL */
};

/*
 * Set *err to a new error with errno `code` (positive; 0 means none; a
 * negative value is negated) and a printf-style message. When code is non-zero
 * the text of strerror(code) is appended when the chain is rendered. If *err
 * already holds an error, the new one wraps it. Returns -code, or -EINVAL when
 * code is 0, so it can be returned directly.
 */
int berth_error_set(struct berth_error **err, int code, const char *fmt, ...) _printf_(3, 4);

/*
 * Like berth_error_set() but the message stands alone: strerror(code) is not
 * appended. For validation errors ("'process.cwd': expected string, got integer")
 * that still carry an errno (usually EINVAL) for callers to test.
 */
int berth_error_msg(struct berth_error **err, int code, const char *fmt, ...) _printf_(3, 4);

/* Like berth_error_set() with code = errno at the time of the call. */
int berth_error_errno(struct berth_error **err, const char *fmt, ...) _printf_(2, 3);

/*
 * Wrap the existing error in *err with context. If *err is NULL (the callee did
 * not set one), a new error is made with `ret` as its code. Returns the code of
 * the innermost error as a negative errno, or `ret` if it is negative.
 */
int berth_error_wrap(struct berth_error **err, int ret, const char *fmt, ...) _printf_(3, 4);

/* Positive errno of the innermost error that has one, or 0. */
int berth_error_code(const struct berth_error *e);

/* The whole chain as "outer: inner: msg: strerror". Caller frees. */
char *berth_error_string(const struct berth_error *e);

/* Print "prefix: chain\n" to stderr (prefix may be NULL). */
void berth_error_print(const struct berth_error *e, const char *prefix);

/* Free a chain; accepts NULL; returns NULL. */
struct berth_error *berth_error_free(struct berth_error *e);

static inline void berth_error_freep(struct berth_error **e)
{
	*e = berth_error_free(*e);
}
#define _cleanup_error_ _cleanup_(berth_error_freep)

#endif
