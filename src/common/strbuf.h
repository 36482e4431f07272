/*
 * strbuf.h - growable string buffer (git's strbuf).
 *
 * Invariants: `buf` is never NULL and always NUL-terminated; `len` bytes are
 * valid (binary data allowed); `alloc` is the allocated size or 0 when `buf`
 * points at the shared empty string. Initialise with STRBUF_INIT. Allocation
 * failure aborts. strbuf_detach() hands the buffer to the caller and resets
 * the strbuf.
 */
#ifndef BERTH_COMMON_STRBUF_H
#define BERTH_COMMON_STRBUF_H

#include <stdarg.h>

#include "common/macro.h"

extern char strbuf_slopbuf[];

struct strbuf {
	size_t alloc;
	size_t len;
	char *buf;
};

#define STRBUF_INIT                  \
	{                            \
		0, 0, strbuf_slopbuf \
	}

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
/* Return the buffer (caller frees) and reset sb; *len may be NULL. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
/* Make room for `extra` more bytes plus the NUL. */
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_setlen(struct strbuf *sb, size_t len);
static inline void strbuf_reset(struct strbuf *sb)
{
	strbuf_setlen(sb, 0);
}

void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Append s as a JSON string literal, quotes included. */
void strbuf_add_json_string(struct strbuf *sb, const char *s);
void strbuf_trim_trailing(struct strbuf *sb);

/*
 * Read all of fd (or up to max bytes; 0 means no limit) and append. Returns
 * bytes read or -errno; -EFBIG when the limit would be exceeded.
 */
ssize_t strbuf_read_fd(struct strbuf *sb, int fd, size_t max);

static inline void strbuf_releasep(struct strbuf *sb)
{
	strbuf_release(sb);
}
#define _cleanup_strbuf_ _cleanup_(strbuf_releasep)

#endif
