/*
 * yamljson.c - YAML to JSON over libyaml's event parser (see yamljson.h).
 *
 * A recursive descent over events: one function per node kind, depth-bounded.
 * Events are pulled one at a time, so memory is the size of the result.
 */
#include <math.h>
#include <yaml.h>

#include "cli/yamljson.h"
#include "common/json.h"

struct conv {
	yaml_parser_t parser;
	struct berth_error **err;
};

static int fail_at(struct conv *c, const yaml_mark_t *m, const char *what)
{
	return berth_error_msg(c->err, EINVAL, "line %zu, column %zu: %s", m->line + 1, m->column + 1, what);
}

static int next(struct conv *c, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&c->parser, ev)) {
		const char *p = c->parser.problem ? c->parser.problem : "invalid YAML";
		return berth_error_msg(c->err, EINVAL, "line %zu, column %zu: %s",
				       c->parser.problem_mark.line + 1, c->parser.problem_mark.column + 1, p);
	}
	return 0;
}

static bool all_in(const char *s, const char *set)
{
	return *s && strspn(s, set) == strlen(s);
}

static bool is_int(const char *s, long long *ret)
{
	const char *digits = s + (*s == '-' || *s == '+');
	int base = 10;
	if (startswith(s, "0o") && all_in(s + 2, "01234567"))
		base = 8, digits = s + 2;
	else if (startswith(s, "0x") && all_in(s + 2, "0123456789abcdefABCDEF"))
		base = 16, digits = s + 2;
	else if (!all_in(digits, "0123456789"))
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(base == 10 ? s : digits, &end, base);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

static bool is_float(const char *s, double *ret)
{
	const char *p = s + (*s == '-' || *s == '+');
	if (streq(p, ".inf") || streq(p, ".Inf") || streq(p, ".INF")) {
		*ret = *s == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (streq(s, ".nan") || streq(s, ".NaN") || streq(s, ".NAN")) {
		*ret = NAN;
		return true;
	}
	/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
	size_t i = strspn(p, "0123456789");
	size_t frac = 0;
	if (p[i] == '.') {
		frac = strspn(p + i + 1, "0123456789");
		if (i == 0 && frac == 0)
			return false;
		i += 1 + frac;
	} else if (i == 0) {
		return false;
	}
	if (p[i] == 'e' || p[i] == 'E') {
		size_t j = i + 1 + (p[i + 1] == '-' || p[i + 1] == '+');
		size_t e = strspn(p + j, "0123456789");
		if (e == 0)
			return false;
		i = j + e;
	}
	if (p[i])
		return false;
	*ret = strtod(s, NULL);
	return true;
}

static json_t *plain_scalar(const char *s)
{
	long long i;
	double d;
	if (!*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL"))
		return json_null();
	if (streq(s, "true") || streq(s, "True") || streq(s, "TRUE"))
		return json_true();
	if (streq(s, "false") || streq(s, "False") || streq(s, "FALSE"))
		return json_false();
	if (is_int(s, &i))
		return json_integer(i);
	if (is_float(s, &d) && isfinite(d))
		return json_real(d);
	return json_string(s);
}

static int node(struct conv *c, yaml_event_t *ev, int depth, json_t **ret);

/* After a MAPPING_START or SEQUENCE_START: children until the matching end. */
static int collection(struct conv *c, bool mapping, int depth, json_t **ret)
{
	_cleanup_json_ json_t *out = mapping ? json_object() : json_array();
	for (;;) {
		yaml_event_t ev;
		int r = next(c, &ev);
		if (r < 0)
			return r;
		if (ev.type == (mapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
			yaml_event_delete(&ev);
			*ret = TAKE_PTR(out);
			return 0;
		}
		if (!mapping) {
			json_t *v = NULL;
			r = node(c, &ev, depth + 1, &v);
			if (r < 0)
				return r;
			json_array_append_new(out, v);
			continue;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			r = fail_at(c, &ev.start_mark, "mapping keys must be scalars");
			yaml_event_delete(&ev);
			return r;
		}
		size_t klen = ev.data.scalar.length;
		_cleanup_free_ char *key = xstrndup((const char *)ev.data.scalar.value, klen);
		yaml_mark_t at = ev.start_mark;
		bool anchored = ev.data.scalar.anchor != NULL;
		yaml_event_delete(&ev);
		if (anchored)
			return fail_at(c, &at, "anchors and aliases are not supported");
		if (strlen(key) != klen || json_object_get(out, key))
			return fail_at(c, &at, "duplicate or invalid mapping key");
		if ((r = next(c, &ev)) < 0)
			return r;
		json_t *v = NULL;
		if ((r = node(c, &ev, depth + 1, &v)) < 0)
			return r;
		json_object_set_new(out, key, v);
	}
}

/* Convert the node that starts with ev (consumed). */
static int node(struct conv *c, yaml_event_t *ev, int depth, json_t **ret)
{
	int r = 0;
	if (depth > YAMLJSON_MAX_DEPTH) {
		r = fail_at(c, &ev->start_mark, "nested too deeply");
	} else if (ev->type == YAML_ALIAS_EVENT ||
		   (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor) ||
		   (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor) ||
		   (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor)) {
		r = fail_at(c, &ev->start_mark, "anchors and aliases are not supported");
	} else if (ev->type == YAML_SCALAR_EVENT) {
		const char *v = (const char *)ev->data.scalar.value;
		size_t n = ev->data.scalar.length;
		if (strlen(v) != n)
			r = fail_at(c, &ev->start_mark, "NUL byte in a scalar");
		else if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag)
			*ret = plain_scalar(v);
		else
			*ret = json_stringn(v, n);
		if (r == 0 && !*ret)
			r = fail_at(c, &ev->start_mark, "scalar is not valid UTF-8");
	} else if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
		bool mapping = ev->type == YAML_MAPPING_START_EVENT;
		yaml_event_delete(ev);
		return collection(c, mapping, depth, ret);
	} else {
		r = fail_at(c, &ev->start_mark, "unexpected YAML event");
	}
	yaml_event_delete(ev);
	return r;
}

/* Expect an event of type; consumed. */
static int expect(struct conv *c, yaml_event_type_t type, const char *what)
{
	yaml_event_t ev;
	int r = next(c, &ev);
	if (r < 0)
		return r;
	if (ev.type != type)
		r = fail_at(c, &ev.start_mark, what);
	yaml_event_delete(&ev);
	return r;
}

int cli_yaml_to_json(const char *text, size_t len, json_t **ret, struct berth_error **err)
{
	if (len > YAMLJSON_MAX_SIZE)
		return berth_error_msg(err, EFBIG, "YAML larger than %u bytes", YAMLJSON_MAX_SIZE);
	struct conv c = { .err = err };
	if (!yaml_parser_initialize(&c.parser))
		return berth_error_msg(err, ENOMEM, "initialise the YAML parser");
	yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
	json_t *out = NULL;
	yaml_event_t ev;
	int r = expect(&c, YAML_STREAM_START_EVENT, "expected a YAML stream");
	if (r == 0 && (r = next(&c, &ev)) == 0) {
		if (ev.type != YAML_DOCUMENT_START_EVENT) {
			r = fail_at(&c, &ev.start_mark, "empty document");
			yaml_event_delete(&ev);
		} else {
			yaml_event_delete(&ev);
			if ((r = next(&c, &ev)) == 0)
				r = node(&c, &ev, 0, &out);
		}
	}
	if (r == 0)
		r = expect(&c, YAML_DOCUMENT_END_EVENT, "expected the end of the document");
	if (r == 0)
		r = expect(&c, YAML_STREAM_END_EVENT, "expected one document, found several");
	yaml_parser_delete(&c.parser);
	if (r < 0) {
		json_decref(out);
		return r;
	}
	*ret = out;
	return 0;
}

bool cli_yamljson_looks_like_json(const char *text, size_t len)
{
	size_t i = 0;
	while (i < len) {
		char ch = text[i];
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			i++;
		} else if (ch == '#') {
			const char *nl = memchr(text + i, '\n', len - i);
			i = nl ? (size_t)(nl - text) + 1 : len;
		} else {
			return ch == '{' || ch == '[';
		}
	}
	return false;
}
