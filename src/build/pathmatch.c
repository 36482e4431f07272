/*
 * pathmatch.c - our own implementation of Go's filepath.Clean and
 * filepath.Match rules (Unix), because Docker defines COPY wildcards and
 * .dockerignore validation by them, quirks included: `*` never crosses `/`,
 * classes are [^...] with \ escapes, and a malformed pattern is an error even
 * where the match already failed.
 */
#include "build/pathmatch.h"
#include "common/strbuf.h"

size_t build_utf8_decode(const char *s, size_t n, uint32_t *rune)
{
	const unsigned char *u = (const unsigned char *)s;
	if (n == 0) {
		*rune = 0xFFFD;
		return 0;
	}
	if (u[0] < 0x80) {
		*rune = u[0];
		return 1;
	}
	size_t len = (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3 : (u[0] & 0xF8) == 0xF0 ? 4 : 0;
	if (len == 0 || len > n)
		goto bad;
	uint32_t r = u[0] & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if ((u[i] & 0xC0) != 0x80)
			goto bad;
		r = (r << 6) | (u[i] & 0x3F);
	}
	if ((len == 2 && r < 0x80) || (len == 3 && r < 0x800) ||
	    (len == 4 && (r < 0x10000 || r > 0x10FFFF)) || (r >= 0xD800 && r <= 0xDFFF))
		goto bad;
	*rune = r;
	return len;
bad:
	*rune = 0xFFFD;
	return 1;
}

char *build_go_path_clean(const char *path)
{
	bool rooted = path[0] == '/';
	size_t n = 0, cap = 8;
	const char **comp = xmalloc(cap * sizeof(char *));
	size_t *len = xmalloc(cap * sizeof(size_t));
	for (const char *s = path; *s;) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		bool dotdot = l == 2 && s[0] == '.' && s[1] == '.';
		if (l == 0 || (l == 1 && s[0] == '.')) {
			/* skip */
		} else if (dotdot && n > 0 && !(len[n - 1] == 2 && memcmp(comp[n - 1], "..", 2) == 0)) {
			n--;
		} else if (dotdot && rooted) {
			/* ".." at the root stays at the root */
		} else {
			if (n == cap) {
				cap *= 2;
				comp = xrealloc(comp, cap * sizeof(char *));
				len = xrealloc(len, cap * sizeof(size_t));
			}
			comp[n] = s;
			len[n++] = l;
		}
		s += l;
		if (*s == '/')
			s++;
	}
	struct strbuf out = STRBUF_INIT;
	if (rooted)
		strbuf_addch(&out, '/');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strbuf_addch(&out, '/');
		strbuf_add(&out, comp[i], len[i]);
	}
	if (out.len == 0)
		strbuf_addch(&out, '.');
	free(comp);
	free(len);
	return strbuf_detach(&out, NULL);
}

bool build_go_has_wildcards(const char *p)
{
	for (; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p == '*' || *p == '?' || *p == '[')
			return true;
	}
	return false;
}

/* getEsc: one possibly escaped rune of a class; -EINVAL on bad syntax. */
static int get_esc(const char *c, size_t n, uint32_t *r, size_t *used)
{
	size_t i = 0;
	if (n == 0 || c[0] == '-' || c[0] == ']')
		return -EINVAL;
	if (c[0] == '\\') {
		i = 1;
		if (n == 1)
			return -EINVAL;
	}
	size_t l = build_utf8_decode(c + i, n - i, r);
	if (*r == 0xFFFD && l == 1 && (unsigned char)c[i] >= 0x80)
		return -EINVAL;
	i += l;
	if (i >= n)
		return -EINVAL;
	*used = i;
	return 0;
}

int build_go_match_class(const char *chunk, size_t n, uint32_t r, size_t *len)
{
	size_t i = 1;
	bool negated = false, match = false;
	if (i < n && chunk[i] == '^') {
		negated = true;
		i++;
	}
	for (size_t nrange = 0;; nrange++) {
		if (i < n && chunk[i] == ']' && nrange > 0) {
			i++;
			break;
		}
		uint32_t lo, hi;
		size_t used;
		if (get_esc(chunk + i, n - i, &lo, &used) < 0)
			return -EINVAL;
		i += used;
		hi = lo;
		if (chunk[i] == '-') {
			i++;
			if (get_esc(chunk + i, n - i, &hi, &used) < 0)
				return -EINVAL;
			i += used;
		}
		if (lo <= r && r <= hi)
			match = true;
	}
	*len = i;
	return match != negated;
}

/* matchChunk: returns 1 and *rest on match, 0 on no match, -EINVAL. */
static int match_chunk(const char *chunk, size_t cn, const char *s, size_t sn, size_t *rest)
{
	bool failed = false;
	size_t ci = 0, si = 0;
	while (ci < cn) {
		if (!failed && si >= sn)
			failed = true;
		uint32_t r = 0;
		switch (chunk[ci]) {
		case '[': {
			if (!failed)
				si += build_utf8_decode(s + si, sn - si, &r);
			size_t len;
			int m = build_go_match_class(chunk + ci, cn - ci, failed ? 0xFFFFFFFF : r, &len);
			if (m < 0)
				return -EINVAL;
			if (!m)
				failed = true;
			ci += len;
			break;
		}
		case '?':
			if (!failed) {
				if (s[si] == '/')
					failed = true;
				si += build_utf8_decode(s + si, sn - si, &r);
			}
			ci++;
			break;
		case '\\':
			ci++;
			if (ci >= cn)
				return -EINVAL;
			/* fall through */
		default:
			if (!failed) {
				if (chunk[ci] != s[si])
					failed = true;
				si++;
			}
			ci++;
		}
	}
	if (failed)
		return 0;
	*rest = si;
	return 1;
}

static void scan_chunk(const char *p, size_t n, bool *star, size_t *chunk_start, size_t *chunk_len)
{
	size_t i = 0;
	*star = false;
	while (i < n && p[i] == '*') {
		i++;
		*star = true;
	}
	*chunk_start = i;
	bool inrange = false;
	for (; i < n; i++) {
		if (p[i] == '\\') {
			if (i + 1 < n)
				i++;
		} else if (p[i] == '[') {
			inrange = true;
		} else if (p[i] == ']') {
			inrange = false;
		} else if (p[i] == '*' && !inrange) {
			break;
		}
	}
	*chunk_len = i - *chunk_start;
}

static int check_rest(const char *p, size_t pn)
{
	while (pn > 0) {
		bool star;
		size_t cs, cl, rest;
		scan_chunk(p, pn, &star, &cs, &cl);
		if (match_chunk(p + cs, cl, "", 0, &rest) < 0)
			return -EINVAL;
		p += cs + cl;
		pn -= cs + cl;
	}
	return 0;
}

int build_go_path_match(const char *pattern, const char *name)
{
	const char *p = pattern, *s = name;
	size_t pn = strlen(p), sn = strlen(s);
	while (pn > 0) {
		bool star;
		size_t cs, cl, rest;
		scan_chunk(p, pn, &star, &cs, &cl);
		const char *chunk = p + cs;
		p += cs + cl;
		pn -= cs + cl;
		if (star && cl == 0)
			return memchr(s, '/', sn) == NULL;
		int m = match_chunk(chunk, cl, s, sn, &rest);
		if (m > 0 && (rest == sn || pn > 0)) {
			s += rest;
			sn -= rest;
			continue;
		}
		if (m < 0)
			return -EINVAL;
		bool found = false;
		if (star) {
			for (size_t i = 0; i < sn && s[i] != '/'; i++) {
				m = match_chunk(chunk, cl, s + i + 1, sn - i - 1, &rest);
				if (m > 0) {
					if (pn == 0 && rest < sn - i - 1)
						continue;
					s += i + 1 + rest;
					sn -= i + 1 + rest;
					found = true;
					break;
				}
				if (m < 0)
					return -EINVAL;
			}
		}
		if (found)
			continue;
		return check_rest(p, pn) < 0 ? -EINVAL : 0;
	}
	return sn == 0;
}
