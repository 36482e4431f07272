/*
 * query-eval.c - evaluating a compiled cluster query against a node.
 *
 * Values are symbols, so == / in are integer compares. Comparisons that need
 * the text (regular expressions, ordered compares of attributes and agent
 * versions) are memoised per (query node, value symbol): a cluster has few
 * distinct values, so each regexec runs once per value, not once per node.
 *
 * Negated operators (!=, !in, !~, !exists) are the negation of their
 * positive forms: `attribute:x != a` holds on a node without x, and
 * `task:group != web` holds on a node running no task of group web.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

static bool digits(const char *s, size_t n, int *ret)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*ret = v;
	return true;
}

/* 2018-06-18, 2018-06-18T22:28:28, ...Z, ...+00:00 / -05:30 (ECS's formats). */
int sched_parse_date(const char *s, int64_t *ret)
{
	int y, mo, d, h = 0, mi = 0, se = 0, oh = 0, om = 0, sign = 1;
	size_t len = strlen(s);
	if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
		return -EINVAL;
	const char *p = s + 10;
	if (*p == 'T' || *p == ' ') {
		if (strlen(p) < 9 || !digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi) ||
		    p[6] != ':' || !digits(p + 7, 2, &se) || h > 23 || mi > 59 || se > 60)
			return -EINVAL;
		p += 9;
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p == '-' ? -1 : 1;
			if (strlen(p) != 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
			    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
				return -EINVAL;
			p += 6;
		}
	}
	if (*p)
		return -EINVAL;
	int64_t t = util_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	*ret = t - sign * (oh * 3600 + om * 60);
	return 0;
}

/* Dotted versions compared part by part, numerically where both parts are numbers. */
int sched_version_cmp(const char *a, const char *b)
{
	if (*a == 'v')
		a++;
	if (*b == 'v')
		b++;
	while (*a || *b) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		char *ea, *eb;
		unsigned long long na = strtoull(a, &ea, 10), nb = strtoull(b, &eb, 10);
		int c;
		if (ea == a + la && eb == b + lb && la && lb)
			c = na < nb ? -1 : na > nb;
		else {
			c = strncmp(a, b, MIN(la, lb));
			if (!c)
				c = la < lb ? -1 : la > lb;
		}
		if (c)
			return c;
		a += la + (a[la] == '.');
		b += lb + (b[lb] == '.');
	}
	return 0;
}

static bool ordered(enum qop op, int c)
{
	switch (op) {
	case QO_GT: return c > 0;
	case QO_GE: return c >= 0;
	case QO_LT: return c < 0;
	case QO_LE: return c <= 0;
	case QO_EQ: return c == 0;
	default: return false;
	}
}

static bool numeric(const char *s, int64_t *ret)
{
	return *s && util_parse_int64(s, ret) >= 0;
}

/* Ordered compare of two texts: numbers as numbers, else version order (covers plain strings). */
static int text_cmp(const char *a, const char *b)
{
	int64_t x, y;
	if (numeric(a, &x) && numeric(b, &y))
		return x < y ? -1 : x > y;
	return sched_version_cmp(a, b);
}

/* Positive form of op (EQ, GT.., IN, MATCHES) on one string value, memoised by symbol. */
static bool match_text(struct sched_snapshot *s, struct qnode *q, enum qop op, uint32_t val)
{
	if (op == QO_EQ)
		return val == q->syms[0];
	if (op == QO_IN) {
		for (size_t i = 0; i < q->n_args; i++)
			if (val == q->syms[i])
				return true;
		return false;
	}
	uint32_t m = sched_u32map_get(&q->memo, val);
	if (m)
		return m - 1;
	const char *text = sym_str(&s->in, val);
	bool r;
	if (op == QO_MATCHES)
		r = regexec(q->re, text, 0, NULL, 0) == 0;
	else
		r = ordered(op, text_cmp(text, q->args[0]));
	sched_u32map_set(&q->memo, val, r + 1u);
	return r;
}

static bool match_num(const struct qnode *q, enum qop op, int64_t v)
{
	if (op == QO_IN) {
		for (size_t i = 0; i < q->n_args; i++)
			if (v == q->nums[i])
				return true;
		return false;
	}
	return ordered(op, v < q->nums[0] ? -1 : v > q->nums[0]);
}

static enum qop positive(enum qop op, bool *negated)
{
	*negated = true;
	switch (op) {
	case QO_NE: return QO_EQ;
	case QO_NOT_IN: return QO_IN;
	case QO_NOT_MATCHES: return QO_MATCHES;
	case QO_NOT_EXISTS: return QO_EXISTS;
	default: *negated = false; return op;
	}
}

static bool any_group(struct sched_snapshot *s, struct qnode *q, enum qop op, const struct snode *n)
{
	uint32_t slot = (uint32_t)(n - s->nodes);
	if (op == QO_EQ || op == QO_IN) {
		for (size_t i = 0; i < q->n_args; i++) {
			struct gindex *g = sched_group_find(s, q->syms[i]);
			if (g && sched_u32map_get(&g->per_node, slot))
				return true;
		}
		return false;
	}
	for (uint32_t i = 0; i < n->n_tasks; i++) {
		uint32_t g = s->tasks[n->tasks[i]].group;
		if (g && (op == QO_EXISTS || match_text(s, q, op, g)))
			return true;
	}
	return false;
}

static bool eval_cmp(struct sched_snapshot *s, struct qnode *q, const struct snode *n)
{
	bool neg;
	enum qop op = positive(q->op, &neg);
	bool r;
	uint32_t val = 0;
	switch (q->subject) {
	case QS_TASK_GROUP: return any_group(s, q, op, n) != neg;
	case QS_RUNNING_TASKS: return match_num(q, op, n->n_tasks) != neg;
	case QS_REGISTERED_AT: return match_num(q, op, n->registered_at) != neg;
	case QS_AGENT_CONNECTED:
		if (op == QO_MATCHES)
			return (regexec(q->re, n->connected ? "true" : "false", 0, NULL, 0) == 0) != neg;
		return match_num(q, op, n->connected) != neg;
	case QS_ATTRIBUTE: val = node_value(s, n, q->key); break;
	case QS_INSTANCE_ID: val = n->id_sym; break;
	case QS_EC2_INSTANCE_ID: val = n->ec2_sym; break;
	case QS_AGENT_VERSION: val = n->version_sym; break;
	}
	if (op == QO_EXISTS)
		r = val != 0;
	else
		r = val != 0 && match_text(s, q, op, val);
	return r != neg;
}

static bool eval(struct sched_snapshot *s, struct qnode *q, const struct snode *n)
{
	switch (q->kind) {
	case QK_AND: return eval(s, q->a, n) && eval(s, q->b, n);
	case QK_OR: return eval(s, q->a, n) || eval(s, q->b, n);
	case QK_NOT: return !eval(s, q->a, n);
	case QK_CMP: return eval_cmp(s, q, n);
	}
	return false;
}

bool sched_query_eval(struct sched_snapshot *s, struct sched_query *q, const struct snode *n)
{
	return eval(s, q->root, n);
}
