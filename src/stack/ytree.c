/*
 * ytree.c - YAML to a located node tree over libyaml's event parser (see
 * ytree.h). A recursive descent, depth-bounded; anchors live in a small
 * table of (name, node) so an alias is a pointer, and every node carries its
 * expanded size so alias bombs fail in O(document) time.
 */
#include <yaml.h>

#include "common/util.h"
#include "stack/ytree.h"

struct anchor {
	char *name;
	struct ynode *node;
};

struct parse {
	yaml_parser_t parser;
	struct ytree *t;
	struct anchor *anchors;
	size_t nanchors;
	struct berth_error **err;
};

static int fail_at(struct parse *p, const yaml_mark_t *m, const char *what)
{
	return berth_error_msg(p->err, EINVAL, "%zu:%zu: %s", m->line + 1, m->column + 1, what);
}

static int next(struct parse *p, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&p->parser, ev))
		return berth_error_msg(p->err, EINVAL, "%zu:%zu: %s", p->parser.problem_mark.line + 1,
				       p->parser.problem_mark.column + 1,
				       p->parser.problem ? p->parser.problem : "invalid YAML");
	return 0;
}

static struct ynode *new_node(struct parse *p, enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ytree *t = p->t;
	if (t->nall == t->capall) {
		t->capall = t->capall ? 2 * t->capall : 64;
		t->all = xrealloc(t->all, t->capall * sizeof(*t->all));
	}
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->line = m->line + 1;
	n->col = m->column + 1;
	n->size = 1;
	t->all[t->nall++] = n;
	return n;
}

static void add_child(struct ynode *n, struct ynode *key, struct ynode *val)
{
	n->keys = key ? xrealloc(n->keys, (n->n + 1) * sizeof(*n->keys)) : n->keys;
	n->vals = xrealloc(n->vals, (n->n + 1) * sizeof(*n->vals));
	if (key)
		n->keys[n->n] = key;
	n->vals[n->n++] = val;
	size_t add = val->size + (key ? key->size : 0);
	n->size = n->size + add < n->size ? SIZE_MAX : n->size + add;
}

static int remember(struct parse *p, const yaml_char_t *anchor, struct ynode *n)
{
	if (!anchor)
		return 0;
	p->anchors = xrealloc(p->anchors, (p->nanchors + 1) * sizeof(*p->anchors));
	p->anchors[p->nanchors++] = (struct anchor){ xstrdup((const char *)anchor), n };
	return 0;
}

static struct ynode *lookup(struct parse *p, const char *name)
{
	for (size_t i = p->nanchors; i-- > 0;) /* a redefined anchor: the latest wins */
		if (streq(p->anchors[i].name, name))
			return p->anchors[i].node;
	return NULL;
}

static int node(struct parse *p, yaml_event_t *ev, int depth, struct ynode **ret);

/* `<<: *a` or `<<: [*a, *b]`: keys of the merged maps that m does not have yet (ours win). */
static int merge_into(struct parse *p, struct ynode *m, struct ynode *src, const yaml_mark_t *at)
{
	if (src->kind == YNODE_SEQ) {
		for (size_t i = 0; i < src->n; i++)
			if (merge_into(p, m, src->vals[i], at) < 0)
				return -EINVAL;
		return 0;
	}
	if (src->kind != YNODE_MAP)
		return fail_at(p, at, "'<<' merges a mapping or a list of mappings");
	for (size_t i = 0; i < src->n; i++)
		if (!stack_ynode_get(m, src->keys[i]->str))
			add_child(m, src->keys[i], src->vals[i]);
	return 0;
}

static int mapping(struct parse *p, struct ynode *m, int depth)
{
	struct ynode **merges = NULL;
	yaml_mark_t *merge_marks = NULL;
	size_t nmerges = 0;
	int r = 0;
	for (;;) {
		yaml_event_t ev;
		if ((r = next(p, &ev)) < 0)
			break;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			break;
		}
		yaml_mark_t at = ev.start_mark;
		struct ynode *k = NULL, *v = NULL;
		bool scalar_key = ev.type == YAML_SCALAR_EVENT;
		if ((r = node(p, &ev, depth + 1, &k)) < 0)
			break;
		if (!scalar_key || k->kind != YNODE_SCALAR) {
			r = fail_at(p, &at, "mapping keys must be scalars");
			break;
		}
		if ((r = next(p, &ev)) < 0 || (r = node(p, &ev, depth + 1, &v)) < 0)
			break;
		if (k->plain && streq(k->str, "<<")) {
			merges = xrealloc(merges, (nmerges + 1) * sizeof(*merges));
			merge_marks = xrealloc(merge_marks, (nmerges + 1) * sizeof(*merge_marks));
			merge_marks[nmerges] = at;
			merges[nmerges++] = v;
			continue;
		}
		if (stack_ynode_get(m, k->str)) {
			_cleanup_free_ char *msg = xasprintf("duplicate key '%s'", k->str);
			r = fail_at(p, &at, msg);
			break;
		}
		add_child(m, k, v);
	}
	for (size_t i = 0; r == 0 && i < nmerges; i++)
		r = merge_into(p, m, merges[i], &merge_marks[i]);
	free(merges);
	free(merge_marks);
	return r;
}

static int sequence(struct parse *p, struct ynode *s, int depth)
{
	for (;;) {
		yaml_event_t ev;
		int r = next(p, &ev);
		if (r < 0)
			return r;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		struct ynode *v = NULL;
		if ((r = node(p, &ev, depth + 1, &v)) < 0)
			return r;
		add_child(s, NULL, v);
	}
}

/* Convert the node that starts with ev (consumed). */
static int node(struct parse *p, yaml_event_t *ev, int depth, struct ynode **ret)
{
	yaml_mark_t at = ev->start_mark;
	int r = 0;
	struct ynode *n = NULL;
	if (depth > YTREE_MAX_DEPTH) {
		r = fail_at(p, &at, "nested too deeply");
	} else if (ev->type == YAML_ALIAS_EVENT) {
		n = lookup(p, (const char *)ev->data.alias.anchor);
		if (!n) {
			_cleanup_free_ char *msg =
			    xasprintf("unknown alias '*%s'", (const char *)ev->data.alias.anchor);
			r = fail_at(p, &at, msg);
		}
	} else if (ev->type == YAML_SCALAR_EVENT) {
		const char *v = (const char *)ev->data.scalar.value;
		if (strlen(v) != ev->data.scalar.length) {
			r = fail_at(p, &at, "NUL byte in a scalar");
		} else {
			n = new_node(p, YNODE_SCALAR, &at);
			n->str = xstrdup(v);
			n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag;
			remember(p, ev->data.scalar.anchor, n);
		}
	} else if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
		bool map = ev->type == YAML_MAPPING_START_EVENT;
		n = new_node(p, map ? YNODE_MAP : YNODE_SEQ, &at);
		_cleanup_free_ char *anchor = NULL;
		const yaml_char_t *a = map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
		if (a)
			anchor = xstrdup((const char *)a);
		yaml_event_delete(ev);
		r = map ? mapping(p, n, depth) : sequence(p, n, depth);
		/* an anchor names the node once it is complete: a self-reference is an unknown alias */
		if (r == 0 && anchor)
			remember(p, (const yaml_char_t *)anchor, n);
		if (r == 0 && n->size > YTREE_MAX_NODES)
			r = fail_at(p, &at, "document too large after alias expansion");
		if (r == 0)
			*ret = n;
		return r;
	} else {
		r = fail_at(p, &at, "unexpected YAML event");
	}
	yaml_event_delete(ev);
	if (r == 0)
		*ret = n;
	return r;
}

static int expect(struct parse *p, yaml_event_type_t type, const char *what)
{
	yaml_event_t ev;
	int r = next(p, &ev);
	if (r < 0)
		return r;
	if (ev.type != type)
		r = fail_at(p, &ev.start_mark, what);
	yaml_event_delete(&ev);
	return r;
}

static int document(struct parse *p)
{
	yaml_event_t ev;
	int r = expect(p, YAML_STREAM_START_EVENT, "expected a YAML stream");
	if (r < 0 || (r = next(p, &ev)) < 0)
		return r;
	if (ev.type == YAML_STREAM_END_EVENT) { /* empty file: no document */
		yaml_event_delete(&ev);
		return 0;
	}
	if (ev.type != YAML_DOCUMENT_START_EVENT) {
		r = fail_at(p, &ev.start_mark, "expected a document");
		yaml_event_delete(&ev);
		return r;
	}
	yaml_event_delete(&ev);
	if ((r = next(p, &ev)) < 0 || (r = node(p, &ev, 0, &p->t->root)) < 0)
		return r;
	if ((r = expect(p, YAML_DOCUMENT_END_EVENT, "expected the end of the document")) < 0)
		return r;
	return expect(p, YAML_STREAM_END_EVENT, "expected one document, found several");
}

int stack_ytree_parse(const char *text, size_t len, struct ytree **ret, struct berth_error **err)
{
	if (len > YTREE_MAX_SIZE)
		return berth_error_msg(err, EFBIG, "YAML larger than %u bytes", YTREE_MAX_SIZE);
	struct parse p = { .err = err, .t = xcalloc(1, sizeof(struct ytree)) };
	if (!yaml_parser_initialize(&p.parser)) {
		stack_ytree_free(p.t);
		return berth_error_msg(err, ENOMEM, "initialise the YAML parser");
	}
	yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);
	int r = document(&p);
	yaml_parser_delete(&p.parser);
	for (size_t i = 0; i < p.nanchors; i++)
		free(p.anchors[i].name);
	free(p.anchors);
	if (r < 0) {
		stack_ytree_free(p.t);
		return r;
	}
	*ret = p.t;
	return 0;
}

struct ytree *stack_ytree_free(struct ytree *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->nall; i++) {
		free(t->all[i]->str);
		free(t->all[i]->keys);
		free(t->all[i]->vals);
		free(t->all[i]);
	}
	free(t->all);
	free(t);
	return NULL;
}

struct ynode *stack_ynode_get(const struct ynode *m, const char *key)
{
	if (!m || m->kind != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (streq(m->keys[i]->str, key))
			return m->vals[i];
	return NULL;
}

bool stack_ynode_is_null(const struct ynode *n)
{
	return !n || (n->kind == YNODE_SCALAR && n->plain &&
		      (!*n->str || streq(n->str, "~") || streq(n->str, "null") || streq(n->str, "Null") ||
		       streq(n->str, "NULL")));
}

const char *stack_ynode_kind_name(const struct ynode *n)
{
	return !n                     ? "nothing"
	       : n->kind == YNODE_MAP ? "a mapping"
	       : n->kind == YNODE_SEQ ? "a list"
				      : "a scalar";
}
