/*
 * detachkeys.h - docker's detach key sequences ("ctrl-p,ctrl-q"): parsing
 * the user's spec and recognising the sequence in a stdin stream.
 *
 * Syntax (docker's): comma-separated keys, each a single character or
 * "ctrl-<c>" with <c> one of @ a..z [ \ ] ^ _ (codes 0..31). Parsing is
 * strict: anything else is an error naming the key.
 */
#ifndef BERTH_COMMON_DETACHKEYS_H
#define BERTH_COMMON_DETACHKEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/strbuf.h"

/* Longest sequence accepted (docker has no limit; 16 keys is far beyond any real use). */
#define DETACH_KEYS_MAX     16
#define DETACH_KEYS_DEFAULT "ctrl-p,ctrl-q"

/*
 * Parse spec into out[0..*ret_n). On failure returns -EINVAL with docker's
 * message ("Unknown character: 'x'"); out and *ret_n are untouched.
 */
int detachkeys_parse(const char *spec, unsigned char out[DETACH_KEYS_MAX], size_t *ret_n,
		     struct berth_error **err);

/* A stream filter: holds back a partial match, forwards everything else. */
struct detach_matcher {
	unsigned char keys[DETACH_KEYS_MAX];
	size_t n;       /* 0: never matches (filter is a plain copy) */
	size_t matched; /* keys[0..matched) seen and held back */
};

/*
 * Filter len bytes of input: the bytes to forward are appended to out.
 * Returns true when the whole sequence was seen: the held bytes and the rest
 * of this input are dropped (the caller detaches). Like docker's escape
 * proxy, a mismatch flushes the held bytes together with the mismatching one.
 */
bool detachkeys_matcher_feed(struct detach_matcher *m, const char *in, size_t len, struct strbuf *out);

#endif
