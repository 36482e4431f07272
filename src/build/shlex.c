/*
 * shlex.c - variable substitution with the rules of BuildKit's shell lexer
 * (frontend/dockerfile/shell). A small recursive-descent scanner over bytes:
 * the word is processed until a set of stop characters; `$` and quotes have
 * their own processors. In words mode the result is also split into fields.
 */
#include <ctype.h>
#include <fnmatch.h>

#include "build/shlex.h"
#include "common/strbuf.h"

struct words {
	char **v;
	size_t n;
	struct strbuf cur;
	bool in_word;
};

struct lex {
	const char *s;
	size_t pos, len;
	char escape;
	char *const *env;
	int flags;
	struct words *words; /* NULL unless splitting */
	struct berth_error **err;
	int depth;
};

#define SHLEX_MAX_DEPTH 64

static void words_flush(struct words *w)
{
	if (!w->in_word)
		return;
	w->v = xrealloc(w->v, (w->n + 2) * sizeof(char *));
	w->v[w->n++] = strbuf_detach(&w->cur, NULL);
	w->v[w->n] = NULL;
	w->in_word = false;
}

static void words_add_char(struct words *w, char c, bool raw)
{
	if (!w)
		return;
	if (!raw && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')) {
		words_flush(w);
		return;
	}
	strbuf_addch(&w->cur, c);
	w->in_word = true;
}

static void words_add_string(struct words *w, const char *s, bool raw)
{
	if (!w)
		return;
	if (raw)
		w->in_word = true; /* "" still makes a word */
	for (; *s; s++)
		words_add_char(w, *s, raw);
}

const char *build_shlex_env_get(char *const *env, const char *key)
{
	const char *found = NULL;
	size_t kl = strlen(key);
	for (char *const *e = env; e && *e; e++)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
			found = *e + kl + 1;
	return found;
}

static int peek(struct lex *l)
{
	return l->pos < l->len ? (unsigned char)l->s[l->pos] : -1;
}

static int next(struct lex *l)
{
	return l->pos < l->len ? (unsigned char)l->s[l->pos++] : -1;
}

static int process_stop(struct lex *l, const char *stops, bool raw_escapes, struct strbuf *out);

static int process_single_quote(struct lex *l, struct strbuf *out)
{
	next(l);
	if (l->flags & SHLEX_RAW_QUOTES)
		strbuf_addch(out, '\'');
	for (;;) {
		int c = next(l);
		if (c < 0)
			return berth_error_msg(
			    l->err, EINVAL,
			    "unexpected end of statement while looking for matching single-quote");
		if (c == '\'')
			break;
		strbuf_addch(out, (char)c);
	}
	if (l->flags & SHLEX_RAW_QUOTES)
		strbuf_addch(out, '\'');
	return 0;
}

static int process_dollar(struct lex *l, struct strbuf *out);

static int process_double_quote(struct lex *l, struct strbuf *out)
{
	next(l);
	if (l->flags & SHLEX_RAW_QUOTES)
		strbuf_addch(out, '"');
	for (;;) {
		int c = peek(l);
		if (c < 0)
			return berth_error_msg(
			    l->err, EINVAL,
			    "unexpected end of statement while looking for matching double-quote");
		if (c == '"') {
			next(l);
			break;
		}
		if (c == '$') {
			int r = process_dollar(l, out);
			if (r < 0)
				return r;
			continue;
		}
		c = next(l);
		if (c == l->escape) {
			if (l->flags & SHLEX_RAW_ESCAPES)
				strbuf_addch(out, (char)c);
			int p = peek(l);
			if (p < 0)
				continue;
			if (p == '"' || p == '$' || p == l->escape)
				c = next(l);
		}
		strbuf_addch(out, (char)c);
	}
	if (l->flags & SHLEX_RAW_QUOTES)
		strbuf_addch(out, '"');
	return 0;
}

static bool is_special_param(int c)
{
	return c == '@' || c == '*' || c == '#' || c == '?' || c == '-' || c == '$' || c == '!' || c == '0';
}

static char *process_name(struct lex *l)
{
	struct strbuf name = STRBUF_INIT;
	int c = peek(l);
	if (c >= '0' && c <= '9') {
		while ((c = peek(l)) >= '0' && c <= '9')
			strbuf_addch(&name, (char)next(l));
		return strbuf_detach(&name, NULL);
	}
	if (is_special_param(c)) {
		strbuf_addch(&name, (char)next(l));
		return strbuf_detach(&name, NULL);
	}
	while ((c = peek(l)) >= 0 && (isalnum(c) || c == '_' || c >= 0x80))
		strbuf_addch(&name, (char)next(l));
	return strbuf_detach(&name, NULL);
}

/* ${v#pat} and friends: remove the shortest/longest matching prefix/suffix. */
static char *trim_pattern(const char *value, const char *pat, bool suffix, bool longest)
{
	size_t n = strlen(value);
	_cleanup_free_ char *tmp = xmalloc(n + 1);
	for (size_t k = 0; k <= n; k++) {
		size_t len = longest ? n - k : k;
		if (suffix) {
			if (fnmatch(pat, value + (n - len), 0) == 0)
				return xstrndup(value, n - len);
		} else {
			memcpy(tmp, value, len);
			tmp[len] = '\0';
			if (fnmatch(pat, tmp, 0) == 0)
				return xstrdup(value + len);
		}
	}
	return xstrdup(value);
}

static int apply_modifier(struct lex *l, const char *name, const char *mod, const char *word,
			  struct strbuf *out)
{
	const char *value = build_shlex_env_get(l->env, name);
	bool set = value != NULL, null_unset = mod[0] == ':';
	char op = null_unset ? mod[1] : mod[0];
	if (!set && (l->flags & SHLEX_SKIP_UNSET)) {
		strbuf_addf(out, "${%s%s%s}", name, mod, word);
		return 0;
	}
	bool empty = !set || (null_unset && value[0] == '\0');
	switch (op) {
	case '-': strbuf_addstr(out, empty ? word : value); return 0;
	case '+': strbuf_addstr(out, empty ? "" : word); return 0;
	case '?':
		if (!set)
			return berth_error_msg(l->err, EINVAL, "%s: %s", name,
					       *word ? word : "is not allowed to be unset");
		if (empty)
			return berth_error_msg(l->err, EINVAL, "%s: %s", name,
					       *word ? word : "is not allowed to be empty");
		strbuf_addstr(out, value);
		return 0;
	case '#':
	case '%': {
		if (null_unset)
			break;
		bool longest = mod[1] == op;
		_cleanup_free_ char *r = trim_pattern(set ? value : "", word, op == '%', longest);
		strbuf_addstr(out, r);
		return 0;
	}
	}
	return berth_error_msg(l->err, EINVAL, "unsupported modifier (%s) in substitution", mod);
}

static int process_braced(struct lex *l, struct strbuf *out)
{
	int c = peek(l);
	if (c < 0)
		return berth_error_msg(l->err, EINVAL, "syntax error: missing '}'");
	if (c == '{' || c == '}' || c == ':')
		return berth_error_msg(l->err, EINVAL, "syntax error: bad substitution");
	_cleanup_free_ char *name = process_name(l);
	c = next(l);
	if (c < 0)
		return berth_error_msg(l->err, EINVAL, "syntax error: missing '}'");
	if (c == '}') {
		const char *v = build_shlex_env_get(l->env, name);
		if (!v && (l->flags & SHLEX_SKIP_UNSET))
			strbuf_addf(out, "${%s}", name);
		else
			strbuf_addstr(out, v ? v : "");
		return 0;
	}
	char mod[3] = { (char)c, 0, 0 };
	if (c == ':') {
		mod[1] = (char)next(l);
		if (mod[1] == '\xff')
			mod[1] = 0;
	} else if ((c == '#' || c == '%') && peek(l) == c) {
		mod[1] = (char)next(l);
	}
	char op = mod[0] == ':' ? mod[1] : mod[0];
	if (!strchr("+-?#%", op ? op : 'x'))
		return berth_error_msg(l->err, EINVAL, "unsupported modifier (%s) in substitution", mod);
	struct strbuf word = STRBUF_INIT;
	struct words *saved = l->words;
	l->words = NULL;
	int r = process_stop(l, "}", op == '#' || op == '%', &word);
	l->words = saved;
	if (r < 0) {
		strbuf_release(&word);
		return r;
	}
	if (r == 0) {
		strbuf_release(&word);
		return berth_error_msg(l->err, EINVAL, "syntax error: missing '}'");
	}
	r = apply_modifier(l, name, mod, word.buf, out);
	strbuf_release(&word);
	return r;
}

static int process_dollar(struct lex *l, struct strbuf *out)
{
	if (++l->depth > SHLEX_MAX_DEPTH)
		return berth_error_msg(l->err, EINVAL, "substitution nested too deeply");
	next(l);
	int r = 0;
	if (peek(l) != '{') {
		_cleanup_free_ char *name = process_name(l);
		if (!*name) {
			strbuf_addch(out, '$');
		} else {
			const char *v = build_shlex_env_get(l->env, name);
			if (!v && (l->flags & SHLEX_SKIP_UNSET))
				strbuf_addf(out, "$%s", name);
			else
				strbuf_addstr(out, v ? v : "");
		}
	} else {
		next(l);
		r = process_braced(l, out);
	}
	l->depth--;
	return r;
}

/*
 * Process until one of `stops` (consumed; returns 1) or the end (returns 0);
 * -errno on error.
 * raw_escapes keeps escape characters (used inside ${v#pattern}).
 */
static int process_stop(struct lex *l, const char *stops, bool raw_escapes, struct strbuf *out)
{
	for (;;) {
		int c = peek(l);
		if (c < 0)
			return 0;
		if (c && strchr(stops, c)) {
			next(l);
			return 1;
		}
		if (c == '\'' || c == '"' || c == '$') {
			struct strbuf part = STRBUF_INIT;
			int r = c == '\''  ? process_single_quote(l, &part)
				: c == '"' ? process_double_quote(l, &part)
					   : process_dollar(l, &part);
			if (r < 0) {
				strbuf_release(&part);
				return r;
			}
			strbuf_add(out, part.buf, part.len);
			words_add_string(l->words, part.buf, c != '$');
			strbuf_release(&part);
			continue;
		}
		c = next(l);
		if (c == l->escape) {
			if ((l->flags & SHLEX_RAW_ESCAPES) || raw_escapes)
				strbuf_addch(out, (char)c);
			c = next(l);
			if (c < 0)
				return 0;
			words_add_char(l->words, (char)c, true);
		} else {
			words_add_char(l->words, (char)c, false);
		}
		strbuf_addch(out, (char)c);
	}
}

int build_shlex_process_word(const char *word, char escape, char *const *env, int flags, char **ret,
			     struct berth_error **err)
{
	struct lex l = {
		.s = word, .len = strlen(word), .escape = escape, .env = env, .flags = flags, .err = err
	};
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r = process_stop(&l, "", false, &out);
	if (r < 0)
		return r;
	*ret = strbuf_detach(&out, NULL);
	return 0;
}

int build_shlex_process_words(const char *word, char escape, char *const *env, int flags, char ***ret,
			      struct berth_error **err)
{
	struct words w = { .cur = STRBUF_INIT };
	struct lex l = { .s = word,
			 .len = strlen(word),
			 .escape = escape,
			 .env = env,
			 .flags = flags,
			 .words = &w,
			 .err = err };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r = process_stop(&l, "", false, &out);
	words_flush(&w);
	strbuf_release(&w.cur);
	if (r < 0) {
		strv_free(w.v);
		return r;
	}
	if (!w.v)
		w.v = xcalloc(1, sizeof(char *));
	*ret = w.v;
	return 0;
}
