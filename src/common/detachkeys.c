/*
 * detachkeys.c - detach key specs and the stdin filter that spots them
 * (docker's term.ToBytes and escape proxy semantics, our own code).
 */
#include <string.h>

#include "common/detachkeys.h"

/* "ctrl-" followed by one of these: index + 0 ... "@" is code 0, "a" 1, ... "_" 31. */
static const char CTRL_CHARS[] = "@abcdefghijklmnopqrstuvwxyz[\\]^_";

static int key_code(const char *key, size_t len)
{
	if (len == 1)
		return (unsigned char)key[0];
	if (len == 6 && !strncmp(key, "ctrl-", 5) && key[5] != '\0') {
		const char *p = strchr(CTRL_CHARS, key[5]);
		if (p)
			return (int)(p - CTRL_CHARS);
	}
	return -1;
}

int detachkeys_parse(const char *spec, unsigned char out[DETACH_KEYS_MAX], size_t *ret_n,
		     struct berth_error **err)
{
	unsigned char keys[DETACH_KEYS_MAX];
	size_t n = 0;
	const char *p = spec;
	for (;;) {
		size_t len = strcspn(p, ",");
		int code = key_code(p, len);
		if (code < 0)
			return berth_error_msg(err, EINVAL, "Unknown character: '%.*s'", (int)len, p);
		if (n >= DETACH_KEYS_MAX)
			return berth_error_msg(err, EINVAL, "too many detach keys (at most %d)",
					       DETACH_KEYS_MAX);
		keys[n++] = (unsigned char)code;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	memcpy(out, keys, n);
	*ret_n = n;
	return 0;
}

bool detachkeys_matcher_feed(struct detach_matcher *m, const char *in, size_t len, struct strbuf *out)
{
	if (m->n == 0) {
		strbuf_add(out, in, len);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch == m->keys[m->matched]) {
			if (++m->matched == m->n) {
				m->matched = 0;
				return true;
			}
			continue;
		}
		strbuf_add(out, (const char *)m->keys, m->matched);
		strbuf_addch(out, (char)ch);
		m->matched = 0;
	}
	return false;
}
