/*
 * error.c - error chain. Each node owns its message and its cause; the chain
 * is rendered outermost first. Allocation failure aborts (see xmalloc).
 */
#include <stdarg.h>

#include "common/error.h"
#include "common/strbuf.h"

static int push(struct berth_error **err, int code, bool quiet, const char *fmt, va_list ap)
{
	if (code < 0)
		code = -code;
	if (!err)
		return code ? -code : -EINVAL;

	struct berth_error *e = xcalloc(1, sizeof(*e));
	if (vasprintf(&e->msg, fmt, ap) < 0)
		abort();
	e->code = code;
	e->quiet = quiet;
	e->cause = *err;
	*err = e;
	int inner = berth_error_code(e);
	return inner ? -inner : -EINVAL;
}

int berth_error_set(struct berth_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = push(err, code, false, fmt, ap);
	va_end(ap);
	return r;
}

int berth_error_msg(struct berth_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = push(err, code, true, fmt, ap);
	va_end(ap);
	return r;
}

int berth_error_errno(struct berth_error **err, const char *fmt, ...)
{
	int code = errno > 0 ? errno : EIO;
	va_list ap;
	va_start(ap, fmt);
	int r = push(err, code, false, fmt, ap);
	va_end(ap);
	return r;
}

int berth_error_wrap(struct berth_error **err, int ret, const char *fmt, ...)
{
	int code = 0;
	if (!err || !*err)
		code = ret < 0 ? -ret : (ret > 0 ? ret : EINVAL);
	va_list ap;
	va_start(ap, fmt);
	int r = push(err, code, false, fmt, ap);
	va_end(ap);
	if (ret < 0 && (!err || berth_error_code(*err) == 0))
		return ret;
	return r;
}

int berth_error_code(const struct berth_error *e)
{
	int code = 0;
	for (; e; e = e->cause)
		if (e->code)
			code = e->code;
	return code;
}

char *berth_error_string(const struct berth_error *e)
{
	struct strbuf sb = STRBUF_INIT;
	for (const struct berth_error *p = e; p; p = p->cause) {
		if (p != e && sb.len && p->msg[0])
			strbuf_addstr(&sb, ": ");
		strbuf_addstr(&sb, p->msg);
		/* strerror once, at the innermost node that has a code */
		if (p->code && !p->quiet && berth_error_code(p->cause) == 0)
			strbuf_addf(&sb, ": %s", strerror(p->code));
	}
	if (!e)
		strbuf_addstr(&sb, "unknown error");
	return strbuf_detach(&sb, NULL);
}

void berth_error_print(const struct berth_error *e, const char *prefix)
{
	_cleanup_free_ char *s = berth_error_string(e);
	if (prefix)
		fprintf(stderr, "%s: %s\n", prefix, s);
	else
		fprintf(stderr, "%s\n", s);
}

struct berth_error *berth_error_free(struct berth_error *e)
{
	while (e) {
		struct berth_error *next = e->cause;
		free(e->msg);
		free(e);
		e = next;
	}
	return NULL;
}
