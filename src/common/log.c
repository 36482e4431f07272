/*
 * log.c - logfmt/JSON line logger. Each line is built in memory and written
 * with one write(2), so lines from threads and processes sharing the fd do not
 * interleave. Timestamps are RFC 3339 UTC with milliseconds.
 */
#include <stdarg.h>
#include <time.h>

#include "common/log.h"
#include "common/strbuf.h"
#include "common/util.h"

static enum log_level current_level = LOG_LEVEL_INFO;
static enum log_format current_format = LOG_FORMAT_TEXT;
static int log_fd = STDERR_FILENO;
static char *global_key, *global_value;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARN] = "warning", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug", [LOG_LEVEL_TRACE] = "trace",
};

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= ARRAY_SIZE(level_names))
		return "unknown";
	return level_names[level];
}

int log_parse_level(const char *s, enum log_level *ret)
{
	static const struct {
		const char *name;
		enum log_level level;
	} map[] = {
		{ "error", LOG_LEVEL_ERROR }, { "fatal", LOG_LEVEL_ERROR },  { "panic", LOG_LEVEL_ERROR },
		{ "warn", LOG_LEVEL_WARN },   { "warning", LOG_LEVEL_WARN }, { "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG }, { "trace", LOG_LEVEL_TRACE },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (s && strcasecmp(s, map[i].name) == 0) {
			*ret = map[i].level;
			return 0;
		}
	return -EINVAL;
}

void log_set_format(enum log_format format)
{
	current_format = format;
}

void log_set_fd(int fd)
{
	log_fd = fd;
}

void log_set_global_field(const char *key, const char *value)
{
	free(global_key);
	free(global_value);
	global_key = key ? xstrdup(key) : NULL;
	global_value = value ? xstrdup(value) : NULL;
}

static bool needs_quote(const char *v)
{
	if (!*v)
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return true;
	return false;
}

static void add_field(struct strbuf *sb, const char *key, const char *value)
{
	if (!value)
		value = "";
	if (current_format == LOG_FORMAT_JSON) {
		strbuf_addch(sb, ',');
		strbuf_add_json_string(sb, key);
		strbuf_addch(sb, ':');
		strbuf_add_json_string(sb, value);
		return;
	}
	if (sb->len)
		strbuf_addch(sb, ' ');
	strbuf_addstr(sb, key);
	strbuf_addch(sb, '=');
	if (needs_quote(value))
		strbuf_add_json_string(sb, value);
	else
		strbuf_addstr(sb, value);
}

static void format_time(char *buf, size_t size)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	size_t n = util_format_utc(ts.tv_sec, buf, size);
	snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void emit(enum log_level level, const char *msg, va_list ap)
{
	/* "2026-11-27T13:00:00.123Z" is 24 characters */
	char tbuf[40];
	struct strbuf sb = STRBUF_INIT;

	format_time(tbuf, sizeof(tbuf));
	if (current_format == LOG_FORMAT_JSON) {
		strbuf_addstr(&sb, "{\"time\":");
		strbuf_add_json_string(&sb, tbuf);
	} else {
		add_field(&sb, "time", tbuf);
	}
	add_field(&sb, "level", log_level_name(level));
	add_field(&sb, "msg", msg);
	if (global_key)
		add_field(&sb, global_key, global_value);
	for (;;) {
		const char *k = va_arg(ap, const char *);
		if (!k)
			break;
		const char *v = va_arg(ap, const char *);
		add_field(&sb, k, v);
	}
	if (current_format == LOG_FORMAT_JSON)
		strbuf_addch(&sb, '}');
	strbuf_addch(&sb, '\n');
	size_t off = 0;
	while (off < sb.len) {
		ssize_t n = write(log_fd, sb.buf + off, sb.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	strbuf_release(&sb);
}

void log_fields(enum log_level level, const char *msg, ...)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	va_list ap;
	va_start(ap, msg);
	emit(level, msg, ap);
	va_end(ap);
	errno = saved;
}

static void emit_noargs(enum log_level level, const char *msg, ...)
{
	va_list ap;
	va_start(ap, msg);
	emit(level, msg, ap);
	va_end(ap);
}

void log_msgf(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	int saved = errno;
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r >= 0) {
		emit_noargs(level, msg, (const char *)NULL);
		free(msg);
	}
	errno = saved;
}
