/*
 * query.c - the ECS cluster query language: lexer, parser, compiler.
 *
 *   expr    := and { ("or" | "||") and }
 *   and     := unary { ("and" | "&&") unary }
 *   unary   := ("not" | "!") unary | "(" expr ")" | compare
 *   compare := subject op [ value | "[" value { "," value } "]" ]
 *   subject := attribute:NAME | task:group | instanceId | ec2InstanceId |
 *              runningTasksCount | registeredAt | agentConnected | agentVersion
 *
 * Operators in symbols or words (== equals, != not_equals, > greater_than,
 * >= greater_than_equal, < less_than, <= less_than_equal, exists, !exists
 * not_exists, in, !in not_in, =~ matches, !~ not_matches). Values are bare
 * words (anything up to blank, parenthesis, bracket, comma or operator
 * character) or quoted with ' or ". Regular expressions are POSIX extended
 * and must match the whole value (Java's Pattern.matches, which ECS uses).
 * Every error names the 1-based byte position where it was found.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

#define QUERY_MAX_DEPTH 64 /* nesting (parentheses, not) before we refuse: bounds the recursion */
#define QUERY_MAX_ARGS  100

enum tok {
	T_END = 0,
	T_LP,
	T_RP,
	T_LB,
	T_RB,
	T_COMMA,
	T_OP,
	T_AND,
	T_OR,
	T_NOT,
	T_WORD,
	T_STR,
};

struct lexer {
	const char *text;
	size_t pos;   /* next byte */
	enum tok tok; /* current token */
	size_t tpos;  /* its offset */
	char *val;    /* T_WORD, T_STR: its text */
	enum qop op;  /* T_OP */
	int depth;
	struct interner *in;
	struct berth_error **err;
};

static int lex_error(struct lexer *lx, size_t at, const char *fmt, ...) _printf_(3, 4);
static int lex_error(struct lexer *lx, size_t at, const char *fmt, ...)
{
	va_list ap;
	_cleanup_free_ char *msg = NULL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		abort(); /* out of memory, as xasprintf */
	return berth_error_msg(lx->err, EINVAL, "position %zu: %s", at + 1, msg);
}

static bool word_char(char c)
{
	return c && !isspace((unsigned char)c) && !strchr("()[],'\"=!<>&|", c);
}

static const struct {
	const char *text;
	enum qop op;
} sym_ops[] = {
	{ "==", QO_EQ },      { "!=", QO_NE },          { ">=", QO_GE }, { "<=", QO_LE },
	{ "=~", QO_MATCHES }, { "!~", QO_NOT_MATCHES }, { ">", QO_GT },  { "<", QO_LT },
};

static const struct {
	const char *text;
	enum qop op;
} word_ops[] = {
	{ "equals", QO_EQ },       { "not_equals", QO_NE },
	{ "greater_than", QO_GT }, { "greater_than_equal", QO_GE },
	{ "less_than", QO_LT },    { "less_than_equal", QO_LE },
	{ "exists", QO_EXISTS },   { "not_exists", QO_NOT_EXISTS },
	{ "in", QO_IN },           { "not_in", QO_NOT_IN },
	{ "matches", QO_MATCHES }, { "not_matches", QO_NOT_MATCHES },
};

static int lex_quoted(struct lexer *lx)
{
	char q = lx->text[lx->pos++];
	size_t start = lx->pos;
	while (lx->text[lx->pos] && lx->text[lx->pos] != q)
		lx->pos++;
	if (!lx->text[lx->pos])
		return lex_error(lx, lx->tpos, "unterminated %s",
				 q == '"' ? "\"-quoted value" : "'-quoted value");
	lx->val = xstrndup(lx->text + start, lx->pos - start);
	lx->pos++;
	lx->tok = T_STR;
	return 0;
}

/* "!" followed by "in"/"exists" as a whole word is an operator, else it is not. */
static bool lex_bang_word(struct lexer *lx)
{
	const char *p = lx->text + lx->pos + 1;
	static const struct {
		const char *w;
		enum qop op;
	} bw[] = { { "in", QO_NOT_IN }, { "exists", QO_NOT_EXISTS } };
	for (size_t i = 0; i < ARRAY_SIZE(bw); i++) {
		size_t l = strlen(bw[i].w);
		if (strncmp(p, bw[i].w, l) == 0 && !word_char(p[l])) {
			lx->tok = T_OP;
			lx->op = bw[i].op;
			lx->pos += 1 + l;
			return true;
		}
	}
	return false;
}

static int lex_symbol(struct lexer *lx)
{
	const char *p = lx->text + lx->pos;
	if (strncmp(p, "&&", 2) == 0 || strncmp(p, "||", 2) == 0) {
		lx->tok = p[0] == '&' ? T_AND : T_OR;
		lx->pos += 2;
		return 0;
	}
	if (p[0] == '!' && lex_bang_word(lx))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(sym_ops); i++) {
		size_t l = strlen(sym_ops[i].text);
		if (strncmp(p, sym_ops[i].text, l) == 0) {
			lx->tok = T_OP;
			lx->op = sym_ops[i].op;
			lx->pos += l;
			return 0;
		}
	}
	if (p[0] == '!') {
		lx->tok = T_NOT;
		lx->pos++;
		return 0;
	}
	char c[2] = { p[0], 0 };
	return lex_error(lx, lx->pos, "unexpected character '%s'", c);
}

static int lex_next(struct lexer *lx)
{
	free(lx->val);
	lx->val = NULL;
	while (isspace((unsigned char)lx->text[lx->pos]))
		lx->pos++;
	lx->tpos = lx->pos;
	char c = lx->text[lx->pos];
	const char *single = strchr("()[],", c);
	if (!c) {
		lx->tok = T_END;
		return 0;
	}
	if (single) {
		static const enum tok toks[] = { T_LP, T_RP, T_LB, T_RB, T_COMMA };
		lx->tok = toks[single - "()[],"];
		lx->pos++;
		return 0;
	}
	if (c == '\'' || c == '"')
		return lex_quoted(lx);
	if (!word_char(c))
		return lex_symbol(lx);
	size_t start = lx->pos;
	while (word_char(lx->text[lx->pos]))
		lx->pos++;
	lx->val = xstrndup(lx->text + start, lx->pos - start);
	lx->tok = T_WORD;
	if (streq(lx->val, "and"))
		lx->tok = T_AND;
	else if (streq(lx->val, "or"))
		lx->tok = T_OR;
	else if (streq(lx->val, "not"))
		lx->tok = T_NOT;
	return 0;
}

static const char *tok_desc(const struct lexer *lx)
{
	switch (lx->tok) {
	case T_END: return "end of expression";
	case T_LP: return "'('";
	case T_RP: return "')'";
	case T_LB: return "'['";
	case T_RB: return "']'";
	case T_COMMA: return "','";
	case T_OP: return "an operator";
	case T_AND: return "'and'";
	case T_OR: return "'or'";
	case T_NOT: return "'not'";
	case T_WORD:
	case T_STR: return "a value";
	}
	return "?";
}

static struct qnode *qnode_free(struct qnode *q)
{
	if (!q)
		return NULL;
	qnode_free(q->a);
	qnode_free(q->b);
	for (size_t i = 0; i < q->n_args; i++)
		free(q->args[i]);
	free(q->args);
	free(q->syms);
	free(q->nums);
	if (q->re) {
		regfree(q->re);
		free(q->re);
	}
	sched_u32map_done(&q->memo);
	free(q);
	return NULL;
}

static inline void qnode_freep(struct qnode **q)
{
	*q = qnode_free(*q);
}

static const struct {
	const char *name;
	enum qsubject subject;
	uint16_t ops; /* bit per enum qop */
} subjects[] = {
#define OPS(...) (uint16_t)(__VA_ARGS__)
#define B(o)     (1u << (o))
	{ "task:group", QS_TASK_GROUP,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_IN) | B(QO_NOT_IN) | B(QO_MATCHES) | B(QO_NOT_MATCHES) |
	      B(QO_EXISTS) | B(QO_NOT_EXISTS)) },
	{ "instanceId", QS_INSTANCE_ID,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_IN) | B(QO_NOT_IN) | B(QO_MATCHES) | B(QO_NOT_MATCHES)) },
	{ "ec2InstanceId", QS_EC2_INSTANCE_ID,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_IN) | B(QO_NOT_IN) | B(QO_MATCHES) | B(QO_NOT_MATCHES)) },
	{ "runningTasksCount", QS_RUNNING_TASKS,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_GT) | B(QO_GE) | B(QO_LT) | B(QO_LE) | B(QO_IN) | B(QO_NOT_IN)) },
	{ "registeredAt", QS_REGISTERED_AT,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_GT) | B(QO_GE) | B(QO_LT) | B(QO_LE)) },
	{ "agentConnected", QS_AGENT_CONNECTED,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_IN) | B(QO_NOT_IN) | B(QO_MATCHES) | B(QO_NOT_MATCHES)) },
	{ "agentVersion", QS_AGENT_VERSION,
	  OPS(B(QO_EQ) | B(QO_NE) | B(QO_GT) | B(QO_GE) | B(QO_LT) | B(QO_LE)) },
	{ "attribute:", QS_ATTRIBUTE, 0xfff },
#undef B
#undef OPS
};

static const char *op_name(enum qop op)
{
	for (size_t i = 0; i < ARRAY_SIZE(word_ops); i++)
		if (word_ops[i].op == op)
			return word_ops[i].text;
	return "?";
}

static int parse_subject(struct lexer *lx, struct qnode *q, uint16_t *ret_ops)
{
	if (lx->tok != T_WORD)
		return lex_error(lx, lx->tpos, "expected a subject (attribute:NAME, task:group, ...), got %s",
				 tok_desc(lx));
	for (size_t i = 0; i < ARRAY_SIZE(subjects); i++) {
		const char *name = subjects[i].name;
		bool prefix = endswith(name, ":") && !streq(name, "task:group");
		if (prefix ? !startswith(lx->val, name) : !streq(lx->val, name))
			continue;
		if (prefix && !lx->val[strlen(name)])
			return lex_error(lx, lx->tpos, "attribute name missing after '%s'", name);
		q->subject = subjects[i].subject;
		if (prefix)
			q->key = sched_intern(lx->in, lx->val + strlen(name));
		*ret_ops = subjects[i].ops;
		return lex_next(lx);
	}
	return lex_error(lx, lx->tpos, "unknown subject '%s'", lx->val);
}

static int parse_operator(struct lexer *lx, struct qnode *q, uint16_t ops, const char *subject)
{
	if (lx->tok == T_WORD) {
		for (size_t i = 0; i < ARRAY_SIZE(word_ops); i++)
			if (streq(lx->val, word_ops[i].text)) {
				lx->tok = T_OP;
				lx->op = word_ops[i].op;
			}
	}
	if (lx->tok != T_OP) {
		_cleanup_free_ char *m =
		    xasprintf("expected an operator after '%s', got %s", subject, tok_desc(lx));
		return lex_error(lx, lx->tpos, "%s", m);
	}
	if (!(ops & (1u << lx->op))) {
		_cleanup_free_ char *m =
		    xasprintf("operator '%s' is not valid for '%s'", op_name(lx->op), subject);
		return lex_error(lx, lx->tpos, "%s", m);
	}
	q->op = lx->op;
	return lex_next(lx);
}

static int add_arg(struct lexer *lx, struct qnode *q)
{
	if (lx->tok != T_WORD && lx->tok != T_STR)
		return lex_error(lx, lx->tpos, "expected a value, got %s", tok_desc(lx));
	if (q->n_args >= QUERY_MAX_ARGS)
		return lex_error(lx, lx->tpos, "more than %s values in a list", "100");
	q->args = xrealloc(q->args, (q->n_args + 1) * sizeof(*q->args));
	q->args[q->n_args++] = TAKE_PTR(lx->val);
	return lex_next(lx);
}

static int parse_args(struct lexer *lx, struct qnode *q)
{
	if (q->op == QO_EXISTS || q->op == QO_NOT_EXISTS)
		return 0;
	if (q->op != QO_IN && q->op != QO_NOT_IN)
		return add_arg(lx, q);
	if (lx->tok != T_LB)
		return lex_error(lx, lx->tpos, "expected '[' to open the list of values, got %s",
				 tok_desc(lx));
	int r = lex_next(lx);
	for (; r >= 0;) {
		r = add_arg(lx, q);
		if (r < 0)
			return r;
		if (lx->tok == T_RB)
			return lex_next(lx);
		if (lx->tok != T_COMMA)
			return lex_error(lx, lx->tpos, "expected ',' or ']' in the list of values, got %s",
					 tok_desc(lx));
		r = lex_next(lx);
	}
	return r;
}

static int compile_arg(struct lexer *lx, struct qnode *q, size_t i, size_t at)
{
	const char *a = q->args[i];
	q->syms[i] = sched_intern(lx->in, a);
	switch (q->subject) {
	case QS_RUNNING_TASKS:
		if (util_parse_int64(a, &q->nums[i]) < 0 || q->nums[i] < 0)
			return lex_error(lx, at, "expected a task count, got '%s'", a);
		break;
	case QS_REGISTERED_AT:
		if (sched_parse_date(a, &q->nums[i]) < 0)
			return lex_error(lx, at, "expected a date like 2018-06-18T22:28:28Z, got '%s'", a);
		break;
	case QS_AGENT_CONNECTED:
		if (q->op != QO_MATCHES && q->op != QO_NOT_MATCHES && !streq(a, "true") && !streq(a, "false"))
			return lex_error(lx, at, "expected true or false, got '%s'", a);
		q->nums[i] = streq(a, "true");
		break;
	default: break;
	}
	return 0;
}

#define REGEX_MAX_LEN    256 /* a pattern longer than this is not an attribute filter */
#define REGEX_MAX_REPEAT 100 /* {n,m} bounds: glibc expands them, memory grows with the count */

/*
 * glibc's regcomp() needs memory exponential in stacked quantifiers
 * ("a+++++") and linear in {n,m} bounds: refuse both before compiling, so a
 * user's expression cannot exhaust the server (found by fuzz-sched-query).
 */
static const char *regex_too_complex(const char *re)
{
	bool after_quant = false, in_class = false;
	if (strlen(re) > REGEX_MAX_LEN)
		return "longer than 256 characters";
	for (const char *p = re; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			after_quant = false;
			continue;
		}
		if (in_class) {
			in_class = *p != ']';
			continue;
		}
		bool quant = strchr("*+?{", *p) != NULL;
		if (quant && after_quant)
			return "a quantifier follows a quantifier";
		if (*p == '{') {
			char *end;
			for (const char *d = p + 1; *d && *d != '}'; d = end) {
				unsigned long v = strtoul(d, &end, 10);
				if (v > REGEX_MAX_REPEAT)
					return "a repeat count above 100";
				if (end == d)
					end = (char *)d + 1;
			}
			p = strchrnul(p, '}');
			if (!*p)
				break;
		}
		in_class = *p == '[';
		after_quant = quant;
	}
	return NULL;
}

static int compile_regex(struct lexer *lx, struct qnode *q, size_t at)
{
	const char *why = regex_too_complex(q->args[0]);
	if (why)
		return lex_error(lx, at, "regular expression '%s' is too complex: %s", q->args[0], why);
	_cleanup_free_ char *anchored = xasprintf("^(%s)$", q->args[0]);
	q->re = xmalloc(sizeof(*q->re));
	int rc = regcomp(q->re, anchored, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char buf[128];
		regerror(rc, q->re, buf, sizeof(buf));
		free(q->re);
		q->re = NULL;
		_cleanup_free_ char *m = xasprintf("invalid regular expression '%s': %s", q->args[0], buf);
		return lex_error(lx, at, "%s", m);
	}
	return 0;
}

static int parse_compare(struct lexer *lx, struct qnode **ret)
{
	_cleanup_(qnode_freep) struct qnode *q = xcalloc(1, sizeof(*q));
	q->kind = QK_CMP;
	uint16_t ops = 0;
	_cleanup_free_ char *subject = lx->val ? xstrdup(lx->val) : NULL;
	int r = parse_subject(lx, q, &ops);
	if (r < 0)
		return r;
	r = parse_operator(lx, q, ops, subject);
	if (r < 0)
		return r;
	size_t at = lx->tpos;
	r = parse_args(lx, q);
	if (r < 0)
		return r;
	q->syms = xcalloc(q->n_args + 1, sizeof(*q->syms));
	q->nums = xcalloc(q->n_args + 1, sizeof(*q->nums));
	for (size_t i = 0; i < q->n_args; i++) {
		r = compile_arg(lx, q, i, at);
		if (r < 0)
			return r;
	}
	if (q->op == QO_MATCHES || q->op == QO_NOT_MATCHES) {
		r = compile_regex(lx, q, at);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(q);
	return 0;
}

static int parse_or(struct lexer *lx, struct qnode **ret);

static int parse_unary(struct lexer *lx, struct qnode **ret)
{
	if (++lx->depth > QUERY_MAX_DEPTH)
		return lex_error(lx, lx->tpos, "expression nested more than %s levels deep", "64");
	int r;
	if (lx->tok == T_NOT) {
		_cleanup_(qnode_freep) struct qnode *q = xcalloc(1, sizeof(*q));
		q->kind = QK_NOT;
		r = lex_next(lx);
		if (r >= 0)
			r = parse_unary(lx, &q->a);
		if (r >= 0)
			*ret = TAKE_PTR(q);
	} else if (lx->tok == T_LP) {
		size_t open = lx->tpos;
		r = lex_next(lx);
		if (r >= 0)
			r = parse_or(lx, ret);
		if (r >= 0 && lx->tok != T_RP) {
			*ret = qnode_free(*ret);
			_cleanup_free_ char *m = xasprintf(
			    "expected ')' to close the '(' at position %zu, got %s", open + 1, tok_desc(lx));
			r = lex_error(lx, lx->tpos, "%s", m);
		} else if (r >= 0 && (r = lex_next(lx)) < 0) {
			*ret = qnode_free(*ret);
		}
	} else {
		r = parse_compare(lx, ret);
	}
	lx->depth--;
	return r;
}

static int parse_binary(struct lexer *lx, enum tok op, enum qkind kind,
			int (*sub)(struct lexer *, struct qnode **), struct qnode **ret)
{
	_cleanup_(qnode_freep) struct qnode *left = NULL;
	int r = sub(lx, &left);
	if (r < 0)
		return r;
	while (lx->tok == op) {
		_cleanup_(qnode_freep) struct qnode *q = xcalloc(1, sizeof(*q));
		q->kind = kind;
		q->a = TAKE_PTR(left);
		r = lex_next(lx);
		if (r >= 0)
			r = sub(lx, &q->b);
		if (r < 0)
			return r;
		left = TAKE_PTR(q);
	}
	*ret = TAKE_PTR(left);
	return 0;
}

static int parse_and(struct lexer *lx, struct qnode **ret)
{
	return parse_binary(lx, T_AND, QK_AND, parse_unary, ret);
}

static int parse_or(struct lexer *lx, struct qnode **ret)
{
	return parse_binary(lx, T_OR, QK_OR, parse_and, ret);
}

int sched_query_parse(struct interner *in, const char *text, struct sched_query **ret,
		      struct berth_error **err)
{
	if (!text)
		return berth_error_msg(err, EINVAL, "expression is required");
	if (strlen(text) > SCHED_MAX_EXPRESSION)
		return berth_error_msg(err, E2BIG, "expression longer than %d characters",
				       SCHED_MAX_EXPRESSION);
	struct lexer lx = { .text = text, .in = in, .err = err };
	_cleanup_(qnode_freep) struct qnode *root = NULL;
	int r = lex_next(&lx);
	if (r >= 0 && lx.tok == T_END)
		r = lex_error(&lx, lx.tpos, "%s", "empty expression");
	if (r >= 0)
		r = parse_or(&lx, &root);
	if (r >= 0 && lx.tok != T_END)
		r = lex_error(&lx, lx.tpos, "expected 'and', 'or' or the end, got %s", tok_desc(&lx));
	free(lx.val);
	if (r < 0)
		return r;
	struct sched_query *q = xcalloc(1, sizeof(*q));
	q->root = TAKE_PTR(root);
	q->text = xstrdup(text);
	*ret = q;
	return 0;
}

struct sched_query *sched_query_free(struct sched_query *q)
{
	if (!q)
		return NULL;
	qnode_free(q->root);
	free(q->text);
	free(q);
	return NULL;
}
