/*
 * filter.c - CloudWatch Logs filter patterns (filter.h): a hand-written
 * recursive-descent parser into a small tree, matched per event. JSON
 * patterns parse the message with jansson once per event; text patterns are
 * memmem() per term. Trade-off: no compiled automaton, so a pattern of N
 * terms costs N scans of the message (patterns are short, messages too).
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/strbuf.h"
#include "logs/filter.h"

/* Deepest nesting of parentheses in a JSON pattern (the parser recurses). */
#define MAX_DEPTH  32
/* Most fields of a space-delimited message that are looked at. */
#define MAX_FIELDS 256

enum kind { K_TEXT, K_JSON, K_SPACE };
enum cmpop { OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_TRUE, OP_FALSE, OP_NULL, OP_EXISTS, OP_NOT_EXISTS };

struct term {
	char *text;
	char mode; /* '+' required, '-' excluded, '?' any of */
};

struct cond {
	enum cmpop op;
	bool is_num;
	char *str; /* the value's text (a glob for strings) */
	double num;
};

struct seg {
	char *key; /* NULL: index */
	long index;
};

struct jexpr {
	char op; /* '&', '|', 'c' */
	struct jexpr *l, *r;
	struct seg *path;
	size_t n_path;
	struct cond c;
};

struct sfield {
	bool ellipsis, has_cond;
	struct cond c;
};

struct logs_filter {
	enum kind kind;
	struct term *terms;
	size_t n_terms;
	bool any_or;
	struct jexpr *json;
	struct sfield *fields;
	size_t n_fields;
};

struct parser {
	const char *s, *p;
	int depth;
	struct berth_error **err;
};

static int fail(struct parser *ps, const char *what)
{
	return berth_error_msg(ps->err, EINVAL, "Invalid filter pattern: position %zu: %s",
			       (size_t)(ps->p - ps->s) + 1, what);
}

static void skip_blank(struct parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

/* A "quoted" string at ps->p (escapes \" \\); *ret new. */
static int parse_quoted(struct parser *ps, char **ret)
{
	struct strbuf sb = STRBUF_INIT;
	ps->p++;
	for (;;) {
		char ch = *ps->p;
		if (!ch) {
			strbuf_release(&sb);
			return fail(ps, "unterminated quoted string");
		}
		ps->p++;
		if (ch == '"')
			break;
		if (ch == '\\' && (*ps->p == '"' || *ps->p == '\\'))
			ch = *ps->p++;
		strbuf_addch(&sb, ch);
	}
	*ret = strbuf_detach(&sb, NULL);
	return 0;
}

/* ---- values and comparisons (JSON and space-delimited) ---- */

static bool is_word_char(char ch, const char *stops)
{
	return ch && !isspace((unsigned char)ch) && !strchr(stops, ch);
}

/* A comparison value: "quoted" or a bare word up to a stop character. */
static int parse_value(struct parser *ps, const char *stops, struct cond *c)
{
	skip_blank(ps);
	if (*ps->p == '"')
		return parse_quoted(ps, &c->str);
	const char *b = ps->p;
	while (is_word_char(*ps->p, stops))
		ps->p++;
	if (ps->p == b)
		return fail(ps, "expected a value");
	c->str = xstrndup(b, ps->p - b);
	char *end;
	double d = strtod(c->str, &end);
	if (*end == '\0' && end != c->str && isfinite(d) && !strchr(c->str, '*')) {
		c->is_num = true;
		c->num = d;
	}
	return 0;
}

static bool keyword(struct parser *ps, const char *kw)
{
	size_t n = strlen(kw);
	if (strncasecmp(ps->p, kw, n) || isalnum((unsigned char)ps->p[n]) || ps->p[n] == '_')
		return false;
	ps->p += n;
	skip_blank(ps);
	return true;
}

/* After a selector or a field name: OP VALUE, IS TRUE|FALSE|NULL, EXISTS, NOT EXISTS. */
static int parse_cond(struct parser *ps, const char *stops, bool json, struct cond *c)
{
	skip_blank(ps);
	static const struct {
		const char *text;
		enum cmpop op;
	} ops[] = { { "!=", OP_NE }, { "<=", OP_LE }, { ">=", OP_GE },
		    { "=", OP_EQ },  { "<", OP_LT },  { ">", OP_GT } };
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		size_t n = strlen(ops[i].text);
		if (strncmp(ps->p, ops[i].text, n))
			continue;
		ps->p += n;
		c->op = ops[i].op;
		const char *at = ps->p;
		int r = parse_value(ps, stops, c);
		if (r < 0)
			return r;
		if (c->op != OP_EQ && c->op != OP_NE && !c->is_num) {
			ps->p = at;
			return fail(ps, "a numeric comparison needs a number");
		}
		return 0;
	}
	if (!json)
		return fail(ps, "expected a comparison operator");
	if (keyword(ps, "IS")) {
		if (keyword(ps, "TRUE"))
			c->op = OP_TRUE;
		else if (keyword(ps, "FALSE"))
			c->op = OP_FALSE;
		else if (keyword(ps, "NULL"))
			c->op = OP_NULL;
		else
			return fail(ps, "expected TRUE, FALSE or NULL after IS");
		return 0;
	}
	if (keyword(ps, "EXISTS")) {
		c->op = OP_EXISTS;
		return 0;
	}
	if (keyword(ps, "NOT")) {
		if (!keyword(ps, "EXISTS"))
			return fail(ps, "expected EXISTS after NOT");
		c->op = OP_NOT_EXISTS;
		return 0;
	}
	return fail(ps, "expected a comparison operator");
}

static bool cond_text(const struct cond *c, const char *s, size_t len)
{
	bool eq;
	if (c->is_num) {
		_cleanup_free_ char *t = xstrndup(s, len);
		char *end;
		double d = strtod(t, &end);
		bool num = *end == '\0' && end != t;
		if (c->op != OP_EQ && c->op != OP_NE) {
			if (!num)
				return false;
			switch (c->op) {
			case OP_LT: return d < c->num;
			case OP_GT: return d > c->num;
			case OP_LE: return d <= c->num;
			default: return d >= c->num;
			}
		}
		eq = (num && d == c->num) || (strlen(c->str) == len && !memcmp(c->str, s, len));
	} else {
		eq = logs_glob_match(c->str, s, len);
	}
	return c->op == OP_EQ ? eq : !eq;
}

bool logs_glob_match(const char *pat, const char *s, size_t len)
{
	/* greedy with one backtrack point: linear for a single '*', O(n*m) at worst */
	const char *star = NULL;
	size_t i = 0, mark = 0;
	while (i < len) {
		if (*pat == '*') {
			star = pat++;
			mark = i;
		} else if (*pat && *pat == s[i]) {
			pat++, i++;
		} else if (star) {
			pat = star + 1;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/* ---- JSON patterns ---- */

static void jexpr_free(struct jexpr *e)
{
	if (!e)
		return;
	jexpr_free(e->l);
	jexpr_free(e->r);
	for (size_t i = 0; i < e->n_path; i++)
		free(e->path[i].key);
	free(e->path);
	free(e->c.str);
	free(e);
}

static int parse_selector(struct parser *ps, struct jexpr *e)
{
	if (*ps->p != '$')
		return fail(ps, "expected a selector starting with '$'");
	ps->p++;
	while (*ps->p == '.' || *ps->p == '[') {
		if (e->n_path >= 32)
			return fail(ps, "selector too deep");
		e->path = xrealloc(e->path, (e->n_path + 1) * sizeof(*e->path));
		struct seg *sg = &e->path[e->n_path];
		*sg = (struct seg){ 0 };
		if (*ps->p == '.') {
			ps->p++;
			const char *b = ps->p;
			while (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '-' ||
			       *ps->p == '@' || *ps->p == ':')
				ps->p++;
			if (ps->p == b)
				return fail(ps, "expected a property name in the selector");
			sg->key = xstrndup(b, ps->p - b);
		} else {
			ps->p++;
			char *end;
			long idx = strtol(ps->p, &end, 10);
			if (end == ps->p || *end != ']' || idx < 0 || !isdigit((unsigned char)*ps->p))
				return fail(ps, "expected an array index in the selector");
			sg->index = idx;
			ps->p = end + 1;
		}
		e->n_path++;
	}
	if (e->n_path == 0)
		return fail(ps, "expected '.' after '$'");
	return 0;
}

static int parse_or(struct parser *ps, struct jexpr **ret);

static int parse_primary(struct parser *ps, struct jexpr **ret)
{
	skip_blank(ps);
	int r;
	if (*ps->p == '(') {
		if (++ps->depth > MAX_DEPTH)
			return fail(ps, "too many nested parentheses");
		ps->p++;
		if ((r = parse_or(ps, ret)) < 0)
			return r;
		skip_blank(ps);
		if (*ps->p != ')') {
			*ret = (jexpr_free(*ret), NULL);
			return fail(ps, "expected ')'");
		}
		ps->p++;
		ps->depth--;
		return 0;
	}
	struct jexpr *e = xcalloc(1, sizeof(*e));
	e->op = 'c';
	if ((r = parse_selector(ps, e)) < 0 || (r = parse_cond(ps, "(){}&|", true, &e->c)) < 0) {
		jexpr_free(e);
		return r;
	}
	*ret = e;
	return 0;
}

static int parse_chain(struct parser *ps, const char *tok, char op,
		       int (*next)(struct parser *, struct jexpr **), struct jexpr **ret)
{
	struct jexpr *l = NULL;
	int r = next(ps, &l);
	if (r < 0)
		return r;
	for (;;) {
		skip_blank(ps);
		if (strncmp(ps->p, tok, 2))
			break;
		ps->p += 2;
		struct jexpr *rr = NULL;
		if ((r = next(ps, &rr)) < 0) {
			jexpr_free(l);
			return r;
		}
		struct jexpr *n = xcalloc(1, sizeof(*n));
		n->op = op, n->l = l, n->r = rr;
		l = n;
	}
	*ret = l;
	return 0;
}

static int parse_and(struct parser *ps, struct jexpr **ret)
{
	return parse_chain(ps, "&&", '&', parse_primary, ret);
}

static int parse_or(struct parser *ps, struct jexpr **ret)
{
	return parse_chain(ps, "||", '|', parse_and, ret);
}

static const json_t *select_path(const json_t *j, const struct jexpr *e, bool *found)
{
	*found = false;
	for (size_t i = 0; i < e->n_path && j; i++)
		j = e->path[i].key ? json_object_get(j, e->path[i].key)
				   : json_array_get(j, (size_t)e->path[i].index);
	*found = j != NULL;
	return j;
}

static bool jcompare(const struct cond *c, const json_t *v)
{
	char buf[64];
	switch (json_typeof(v)) {
	case JSON_STRING: return cond_text(c, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return cond_text(c, buf, strlen(buf));
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return cond_text(c, buf, strlen(buf));
	case JSON_TRUE: return cond_text(c, "true", 4);
	case JSON_FALSE: return cond_text(c, "false", 5);
	default: return false;
	}
}

static bool jeval(const struct jexpr *e, const json_t *doc)
{
	if (e->op == '&')
		return jeval(e->l, doc) && jeval(e->r, doc);
	if (e->op == '|')
		return jeval(e->l, doc) || jeval(e->r, doc);
	bool found;
	const json_t *v = select_path(doc, e, &found);
	switch (e->c.op) {
	case OP_EXISTS: return found;
	case OP_NOT_EXISTS: return !found;
	case OP_TRUE: return found && json_is_true(v);
	case OP_FALSE: return found && json_is_false(v);
	case OP_NULL: return found && json_is_null(v);
	default: return found && jcompare(&e->c, v);
	}
}

/* ---- space-delimited patterns ---- */

static int parse_space(struct parser *ps, struct logs_filter *f)
{
	ps->p++;
	for (;;) {
		skip_blank(ps);
		if (f->n_fields >= MAX_FIELDS)
			return fail(ps, "too many fields");
		f->fields = xrealloc(f->fields, (f->n_fields + 1) * sizeof(*f->fields));
		struct sfield *fd = &f->fields[f->n_fields];
		*fd = (struct sfield){ 0 };
		if (!strncmp(ps->p, "...", 3)) {
			ps->p += 3;
			fd->ellipsis = true;
			f->n_fields++;
		} else {
			const char *b = ps->p;
			while (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '-')
				ps->p++;
			if (ps->p == b)
				return fail(ps, "expected a field name or '...'");
			f->n_fields++;
			skip_blank(ps);
			if (*ps->p != ',' && *ps->p != ']') {
				fd->has_cond = true;
				int r = parse_cond(ps, ",]", false, &fd->c);
				if (r < 0)
					return r;
			}
		}
		skip_blank(ps);
		if (*ps->p == ']') {
			ps->p++;
			return 0;
		}
		if (*ps->p != ',')
			return fail(ps, "expected ',' or ']'");
		ps->p++;
	}
}

struct span {
	const char *s;
	size_t len;
};

/* Split a message into fields: blanks separate; "..." and [...] are one field (delimiters dropped). */
static size_t split_fields(const char *m, size_t len, struct span *out, size_t max)
{
	size_t n = 0, i = 0;
	while (i < len && n < max) {
		while (i < len && (m[i] == ' ' || m[i] == '\t'))
			i++;
		if (i >= len)
			break;
		char close = m[i] == '"' ? '"' : m[i] == '[' ? ']' : 0;
		size_t b = i;
		if (close) {
			const char *e = memchr(m + i + 1, close, len - i - 1);
			if (e) {
				out[n++] = (struct span){ m + i + 1, (size_t)(e - m) - i - 1 };
				i = (size_t)(e - m) + 1;
				continue;
			}
		}
		while (i < len && m[i] != ' ' && m[i] != '\t')
			i++;
		out[n++] = (struct span){ m + b, i - b };
	}
	return n;
}

static bool field_ok(const struct sfield *fd, const struct span *sp)
{
	return !fd->has_cond || cond_text(&fd->c, sp->s, sp->len);
}

static bool space_match(const struct logs_filter *f, const char *m, size_t len)
{
	struct span sp[MAX_FIELDS];
	size_t n = split_fields(m, len, sp, MAX_FIELDS);
	/* '...' is a '*' over fields: greedy with one backtrack point */
	size_t p = 0, i = 0, star = SIZE_MAX, mark = 0;
	while (i < n) {
		if (p < f->n_fields && f->fields[p].ellipsis) {
			star = p++;
			mark = i;
		} else if (p < f->n_fields && field_ok(&f->fields[p], &sp[i])) {
			p++, i++;
		} else if (star != SIZE_MAX) {
			p = star + 1;
			i = ++mark;
		} else {
			return false;
		}
	}
	while (p < f->n_fields && f->fields[p].ellipsis)
		p++;
	return p == f->n_fields;
}

/* ---- text patterns ---- */

static int parse_text(struct parser *ps, struct logs_filter *f)
{
	for (;;) {
		skip_blank(ps);
		if (!*ps->p)
			return 0;
		char mode = '+';
		if (*ps->p == '-' || *ps->p == '?') {
			mode = *ps->p++;
			if (!*ps->p || isspace((unsigned char)*ps->p))
				return fail(ps, "expected a term after '-' or '?'");
		}
		char *text;
		if (*ps->p == '"') {
			int r = parse_quoted(ps, &text);
			if (r < 0)
				return r;
		} else {
			const char *b = ps->p;
			while (is_word_char(*ps->p, "\""))
				ps->p++;
			if (*ps->p == '"')
				return fail(ps, "unexpected '\"' inside a term");
			text = xstrndup(b, ps->p - b);
		}
		if (!*text) {
			free(text);
			return fail(ps, "empty term");
		}
		f->terms = xrealloc(f->terms, (f->n_terms + 1) * sizeof(*f->terms));
		f->terms[f->n_terms++] = (struct term){ text, mode };
		f->any_or |= mode == '?';
	}
}

static bool text_match(const struct logs_filter *f, const char *m, size_t len)
{
	bool any = !f->any_or;
	for (size_t i = 0; i < f->n_terms; i++) {
		const struct term *t = &f->terms[i];
		bool hit = memmem(m, len, t->text, strlen(t->text)) != NULL;
		if ((t->mode == '+' && !hit) || (t->mode == '-' && hit))
			return false;
		any |= t->mode == '?' && hit;
	}
	return any;
}

/* ---- API ---- */

int logs_filter_parse(const char *pattern, struct logs_filter **ret, struct berth_error **err)
{
	if (strlen(pattern) > LOGS_FILTER_MAX)
		return berth_error_msg(err, EINVAL, "Invalid filter pattern: longer than %d characters",
				       LOGS_FILTER_MAX);
	struct parser ps = { .s = pattern, .p = pattern, .err = err };
	struct logs_filter *f = xcalloc(1, sizeof(*f));
	skip_blank(&ps);
	int r;
	if (*ps.p == '{') {
		f->kind = K_JSON;
		ps.p++;
		r = parse_or(&ps, &f->json);
		skip_blank(&ps);
		if (r >= 0 && *ps.p != '}')
			r = fail(&ps, "expected '}' or an operator");
		else if (r >= 0)
			ps.p++;
	} else if (*ps.p == '[') {
		f->kind = K_SPACE;
		r = parse_space(&ps, f);
	} else {
		f->kind = K_TEXT;
		r = parse_text(&ps, f);
	}
	if (r >= 0 && f->kind != K_TEXT) {
		skip_blank(&ps);
		if (*ps.p)
			r = fail(&ps, "unexpected text after the pattern");
	}
	if (r < 0) {
		logs_filter_free(f);
		return r;
	}
	*ret = f;
	return 0;
}

bool logs_filter_match(const struct logs_filter *f, const char *msg, size_t len)
{
	switch (f->kind) {
	case K_TEXT: return text_match(f, msg, len);
	case K_SPACE: return space_match(f, msg, len);
	case K_JSON: break;
	}
	size_t i = 0;
	while (i < len && isspace((unsigned char)msg[i]))
		i++;
	if (i == len || msg[i] != '{')
		return false;
	json_t *doc = json_loadb(msg, len, JSON_DECODE_ANY, NULL);
	bool ok = json_is_object(doc) && jeval(f->json, doc);
	json_decref(doc);
	return ok;
}

struct logs_filter *logs_filter_free(struct logs_filter *f)
{
	if (!f)
		return NULL;
	for (size_t i = 0; i < f->n_terms; i++)
		free(f->terms[i].text);
	free(f->terms);
	jexpr_free(f->json);
	for (size_t i = 0; i < f->n_fields; i++)
		free(f->fields[i].c.str);
	free(f->fields);
	free(f);
	return NULL;
}
