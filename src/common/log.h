/*
 * log.h - one line per event, logfmt (or JSON) to stderr or a chosen fd.
 *
 *   time=2026-11-27T13:00:00.123Z level=info msg="container started" id=abc pid=42
 *
 * Library code logs at debug or trace only; the daemon and CLI log above that.
 * Fields are passed as key, value string pairs ended by NULL; values are quoted
 * when they contain spaces, quotes, '=' or control characters.
 */
#ifndef BERTH_COMMON_LOG_H
#define BERTH_COMMON_LOG_H

#include "common/macro.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_TRACE,
};

enum log_format {
	LOG_FORMAT_TEXT = 0, /* logfmt */
	LOG_FORMAT_JSON,     /* {"time":...,"level":...,"msg":...,key:value} */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error|warn|warning|info|debug|trace"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *ret);
const char *log_level_name(enum log_level level);
void log_set_format(enum log_format format);
/* Log to fd (default STDERR_FILENO). The fd is not closed by the logger. */
void log_set_fd(int fd);
/* Add a field to every line (e.g. component=daemon); key/value are copied. */
void log_set_global_field(const char *key, const char *value);

static inline bool log_enabled(enum log_level level)
{
	return level <= log_get_level();
}

/* Emit msg with key/value pairs terminated by NULL. Thread-safe (one write). */
void log_fields(enum log_level level, const char *msg, ...) _sentinel_;
/* Emit a printf-formatted message without fields. */
void log_msgf(enum log_level level, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) log_msgf(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msgf(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msgf(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                          \
	do {                                                    \
		if (log_enabled(LOG_LEVEL_DEBUG))               \
			log_msgf(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
