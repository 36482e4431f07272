/*
 * ignore.c - .dockerignore matching. patternmatcher compiles each pattern
 * to a regexp with fast paths (exact, prefix: a trailing double star, suffix:
 * a leading double star); we keep its match types, quirks included, and replace the regexp by a
 * token matcher with memoisation, so hostile patterns stay O(tokens * len^2).
 */
#include "build/ignore.h"
#include "build/pathmatch.h"
#include "common/strbuf.h"

enum tok_kind { T_LIT, T_STAR, T_QMARK, T_CLASS, T_DSTAR_DIR, T_DSTAR_ANY };

struct tok {
	enum tok_kind kind;
	char c;          /* T_LIT */
	size_t off, len; /* T_CLASS: the class text in the pattern */
};

enum match_type { M_EXACT, M_PREFIX, M_SUFFIX, M_REGEXP };

struct pattern {
	char *cleaned;
	bool exclusion;
	enum match_type type;
	struct tok *toks;
	size_t n_toks;
};

struct ignore {
	struct pattern *p;
	size_t n;
	bool exceptions;
};

static bool ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static char *trim_dup(const char *s, size_t n)
{
	while (n > 0 && ws(*s))
		s++, n--;
	while (n > 0 && ws(s[n - 1]))
		n--;
	return xstrndup(s, n);
}

char **build_ignore_read_patterns(const char *text, size_t len)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	const char *s = text, *end = text + len;
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	while (s < end && n < IGNORE_MAX_PATTERNS) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t l = nl ? (size_t)(nl - s) : (size_t)(end - s);
		const char *line = s;
		s += l + (nl ? 1 : 0);
		if (l > 0 && line[0] == '#')
			continue;
		_cleanup_free_ char *pat = trim_dup(line, l);
		if (!*pat)
			continue;
		bool invert = pat[0] == '!';
		char *body = pat + (invert ? 1 : 0);
		_cleanup_free_ char *t = trim_dup(body, strlen(body));
		_cleanup_free_ char *clean = NULL;
		if (*t) {
			clean = build_go_path_clean(t);
			if (strlen(clean) > 1 && clean[0] == '/')
				memmove(clean, clean + 1, strlen(clean));
		}
		v = xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = xasprintf("%s%s", invert ? "!" : "", clean ? clean : "");
		v[n] = NULL;
	}
	return v;
}

static void push_tok(struct pattern *p, struct tok t)
{
	p->toks = xrealloc(p->toks, (p->n_toks + 1) * sizeof(t));
	p->toks[p->n_toks++] = t;
}

/* patternmatcher's compile(): tokens and match type. */
static int compile(struct pattern *p)
{
	const char *s = p->cleaned;
	size_t n = strlen(s);
	p->type = M_EXACT;
	for (size_t i = 0, idx = 0; i < n; idx++) {
		char ch = s[i++];
		if (ch == '*') {
			if (i < n && s[i] == '*') {
				i++;
				if (i < n && s[i] == '/')
					i++;
				if (i >= n) {
					if (p->type == M_EXACT) {
						p->type = M_PREFIX;
					} else {
						push_tok(p, (struct tok){ .kind = T_DSTAR_ANY });
						p->type = M_REGEXP;
					}
				} else {
					push_tok(p, (struct tok){ .kind = T_DSTAR_DIR });
					p->type = M_REGEXP;
				}
				if (idx == 0)
					p->type = M_SUFFIX;
			} else {
				push_tok(p, (struct tok){ .kind = T_STAR });
				p->type = M_REGEXP;
			}
		} else if (ch == '?') {
			push_tok(p, (struct tok){ .kind = T_QMARK });
			p->type = M_REGEXP;
		} else if (ch == '\\') {
			if (i < n)
				p->type = M_REGEXP;
			push_tok(p, (struct tok){ .kind = T_LIT, .c = i < n ? s[i++] : '\\' });
		} else if (ch == '[') {
			size_t len;
			if (build_go_match_class(s + i - 1, n - i + 1, 0, &len) < 0)
				return -EINVAL;
			push_tok(p, (struct tok){ .kind = T_CLASS, .off = i - 1, .len = len });
			i += len - 1;
			p->type = M_REGEXP;
		} else {
			if (ch == ']')
				p->type = M_REGEXP;
			push_tok(p, (struct tok){ .kind = T_LIT, .c = ch });
		}
	}
	return 0;
}

int build_ignore_new(char *const *patterns, struct ignore **ret, struct berth_error **err)
{
	struct ignore *ig = xcalloc(1, sizeof(*ig));
	for (char *const *pp = patterns; pp && *pp; pp++) {
		_cleanup_free_ char *t = trim_dup(*pp, strlen(*pp));
		if (!*t)
			continue;
		if (strlen(t) > IGNORE_MAX_PATTERN_LEN) {
			build_ignore_free(ig);
			return berth_error_msg(err, EINVAL, "pattern longer than %d bytes",
					       IGNORE_MAX_PATTERN_LEN);
		}
		_cleanup_free_ char *c = build_go_path_clean(t);
		struct pattern pat = { 0 };
		char *body = c;
		if (c[0] == '!') {
			if (c[1] == '\0') {
				build_ignore_free(ig);
				return berth_error_msg(err, EINVAL, "illegal exclusion pattern: \"!\"");
			}
			pat.exclusion = true;
			ig->exceptions = true;
			body++;
		}
		if (build_go_path_match(body, ".") < 0) {
			build_ignore_free(ig);
			return berth_error_msg(err, EINVAL, "syntax error in pattern '%s'", *pp);
		}
		pat.cleaned = xstrdup(body);
		ig->p = xrealloc(ig->p, (ig->n + 1) * sizeof(pat));
		ig->p[ig->n++] = pat;
		if (compile(&ig->p[ig->n - 1]) < 0) {
			build_ignore_free(ig);
			return berth_error_msg(err, EINVAL, "syntax error in pattern '%s'", *pp);
		}
	}
	*ret = ig;
	return 0;
}

int build_ignore_parse(const char *text, size_t len, struct ignore **ret, struct berth_error **err)
{
	_cleanup_strv_ char **pats = build_ignore_read_patterns(text, len);
	return build_ignore_new(pats, ret, err);
}

struct matcher {
	const struct pattern *p;
	const char *s;
	size_t n;
	uint8_t *seen; /* failed states (ti, si) */
};

static bool tok_match(struct matcher *m, size_t ti, size_t si)
{
	if (ti == m->p->n_toks)
		return si == m->n;
	size_t state = ti * (m->n + 1) + si;
	if (m->seen[state / 8] & (1u << (state % 8)))
		return false;
	const struct tok *t = &m->p->toks[ti];
	bool ok = false;
	uint32_t r;
	size_t l;
	switch (t->kind) {
	case T_LIT: ok = si < m->n && m->s[si] == t->c && tok_match(m, ti + 1, si + 1); break;
	case T_STAR:
		for (size_t k = si; !ok && k <= m->n; k++) {
			ok = tok_match(m, ti + 1, k);
			if (k < m->n && m->s[k] == '/')
				break;
		}
		break;
	case T_QMARK:
		if (si < m->n && m->s[si] != '/') {
			l = build_utf8_decode(m->s + si, m->n - si, &r);
			ok = tok_match(m, ti + 1, si + l);
		}
		break;
	case T_CLASS:
		if (si < m->n) {
			size_t len;
			l = build_utf8_decode(m->s + si, m->n - si, &r);
			ok = build_go_match_class(m->p->cleaned + t->off, t->len, r, &len) > 0 &&
			     tok_match(m, ti + 1, si + l);
		}
		break;
	case T_DSTAR_DIR:
		ok = tok_match(m, ti + 1, si);
		for (size_t k = si; !ok && k < m->n; k++)
			if (m->s[k] == '/')
				ok = tok_match(m, ti + 1, k + 1);
		break;
	case T_DSTAR_ANY:
		for (size_t k = si; !ok && k <= m->n; k++)
			ok = tok_match(m, ti + 1, k);
		break;
	}
	if (!ok)
		m->seen[state / 8] |= (uint8_t)(1u << (state % 8));
	return ok;
}

static bool pattern_match(const struct pattern *p, const char *path, size_t n)
{
	const char *c = p->cleaned;
	size_t cl = strlen(c);
	switch (p->type) {
	case M_EXACT: return n == cl && memcmp(path, c, n) == 0;
	case M_PREFIX: return n >= cl - 2 && memcmp(path, c, cl - 2) == 0;
	case M_SUFFIX: {
		const char *suf = c + 2;
		size_t sl = cl - 2;
		if (n >= sl && memcmp(path + n - sl, suf, sl) == 0)
			return true;
		return sl > 0 && suf[0] == '/' && n == sl - 1 && memcmp(path, suf + 1, n) == 0;
	}
	case M_REGEXP: {
		struct matcher m = { .p = p, .s = path, .n = n };
		size_t states = (p->n_toks + 1) * (n + 1);
		m.seen = xcalloc(states / 8 + 1, 1);
		bool ok = tok_match(&m, 0, 0);
		free(m.seen);
		return ok;
	}
	}
	return false;
}

bool build_ignore_matches(const struct ignore *ig, const char *path)
{
	if (!ig)
		return false;
	bool matched = false;
	size_t n = strlen(path);
	const char *slash = strrchr(path, '/');
	size_t parent_len = slash ? (size_t)(slash - path) : 0;
	for (size_t i = 0; i < ig->n; i++) {
		const struct pattern *p = &ig->p[i];
		if (p->exclusion != matched)
			continue;
		bool match = pattern_match(p, path, n);
		for (size_t k = 0; !match && parent_len > 0 && k <= parent_len; k++)
			if (k == parent_len || path[k] == '/')
				match = pattern_match(p, path, k);
		if (match)
			matched = !p->exclusion;
	}
	return matched;
}

bool build_ignore_has_exceptions(const struct ignore *ig)
{
	return ig && ig->exceptions;
}

struct ignore *build_ignore_free(struct ignore *ig)
{
	if (!ig)
		return NULL;
	for (size_t i = 0; i < ig->n; i++) {
		free(ig->p[i].cleaned);
		free(ig->p[i].toks);
	}
	free(ig->p);
	free(ig);
	return NULL;
}
