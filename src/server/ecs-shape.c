/*
 * ecs-shape.c - ECS request bodies against the model's input shapes (ecs-shape.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "common/strbuf.h"
#include "server/ecs-shape.h"

const struct ecs_shape *server_ecs_shape_input(const char *op)
{
	for (size_t i = 0; op && i < server_ecs_model_n_ops; i++)
		if (streq(server_ecs_model_ops[i].op, op))
			return server_ecs_model_ops[i].input;
	return NULL;
}

const struct ecs_shape *server_ecs_shape_named(const char *name)
{
	for (size_t i = 0; name && i < server_ecs_model_n_named; i++)
		if (streq(server_ecs_model_named[i].op, name))
			return server_ecs_model_named[i].input;
	return NULL;
}

const struct ecs_shape *server_ecs_shape_member(const struct ecs_shape *s, const char *member)
{
	for (size_t i = 0; s && s->type == ECS_SHAPE_STRUCT && i < s->n; i++)
		if (streq(s->members[i].name, member))
			return s->members[i].shape;
	return NULL;
}

struct walk {
	struct strbuf path; /* of the value being checked, "" at the top */
	enum ecs_shape_problem problem;
	char *msg;
};

static enum ecs_shape_problem problem(struct walk *w, enum ecs_shape_problem p, const char *fmt, ...)
    _printf_(3, 4);
static enum ecs_shape_problem problem(struct walk *w, enum ecs_shape_problem p, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	w->msg = strbuf_detach(&sb, NULL);
	return w->problem = p;
}

static const char *type_text(enum ecs_shape_type t)
{
	switch (t) {
	case ECS_SHAPE_STRUCT: return "an object";
	case ECS_SHAPE_LIST: return "a list";
	case ECS_SHAPE_MAP: return "an object (a map)";
	case ECS_SHAPE_STRING:
	case ECS_SHAPE_BLOB: return "a string";
	case ECS_SHAPE_INTEGER: return "an integer (32 bits)";
	case ECS_SHAPE_LONG: return "an integer";
	case ECS_SHAPE_BOOLEAN: return "a boolean";
	case ECS_SHAPE_DOUBLE: return "a number";
	case ECS_SHAPE_TIMESTAMP: return "a timestamp (epoch seconds)";
	}
	return "?";
}

static bool type_ok(const struct ecs_shape *s, json_t *v)
{
	switch (s->type) {
	case ECS_SHAPE_STRUCT:
	case ECS_SHAPE_MAP: return json_is_object(v);
	case ECS_SHAPE_LIST: return json_is_array(v);
	case ECS_SHAPE_STRING:
	case ECS_SHAPE_BLOB: return json_is_string(v);
	case ECS_SHAPE_INTEGER:
		return json_is_integer(v) && json_integer_value(v) >= INT32_MIN &&
		       json_integer_value(v) <= INT32_MAX;
	case ECS_SHAPE_LONG: return json_is_integer(v);
	case ECS_SHAPE_BOOLEAN: return json_is_boolean(v);
	case ECS_SHAPE_DOUBLE:
	case ECS_SHAPE_TIMESTAMP: return json_is_number(v);
	}
	return false;
}

/* The path for messages: "containerDefinitions[0].name", or the shape's name at the top. */
static const char *where(struct walk *w, const struct ecs_shape *s)
{
	return w->path.len ? w->path.buf : s->name;
}

static enum ecs_shape_problem check(struct walk *w, const struct ecs_shape *s, json_t *v, bool top);

static enum ecs_shape_problem check_struct(struct walk *w, const struct ecs_shape *s, json_t *v, bool top)
{
	size_t base = w->path.len;
	const char *key;
	json_t *x, *tmp;
	json_object_foreach_safe (v, tmp, key, x) {
		const struct ecs_member *m = NULL;
		for (size_t i = 0; i < s->n && !m; i++)
			if (streq(s->members[i].name, key))
				m = &s->members[i];
		if (json_is_null(x) || (!m && !top && !startswith(key, "berth"))) {
			json_object_del(v, key); /* absent, as for ECS */
			continue;
		}
		if (!m)
			continue;
		if (base)
			strbuf_addch(&w->path, '.');
		strbuf_addstr(&w->path, key);
		if (check(w, m->shape, x, false))
			return w->problem;
		strbuf_setlen(&w->path, base);
	}
	for (size_t i = 0; !top && i < s->n; i++)
		if (s->members[i].required && !json_object_get(v, s->members[i].name))
			return problem(w, ECS_SHAPE_INVALID, "Invalid '%s': member '%s' is required.",
				       where(w, s), s->members[i].name);
	return ECS_SHAPE_OK;
}

static enum ecs_shape_problem check(struct walk *w, const struct ecs_shape *s, json_t *v, bool top)
{
	if (!type_ok(s, v))
		return problem(w, ECS_SHAPE_SERIALIZATION, "'%s': expected %s (%s).", where(w, s),
			       type_text(s->type), s->name);
	size_t base = w->path.len, i;
	json_t *x;
	switch (s->type) {
	case ECS_SHAPE_STRUCT: return check_struct(w, s, v, top);
	case ECS_SHAPE_LIST:
		for (i = 0; i < json_array_size(v); i++) {
			x = json_array_get(v, i);
			strbuf_addf(&w->path, "[%zu]", i);
			if (json_is_null(x))
				return problem(w, ECS_SHAPE_SERIALIZATION, "'%s': null in a list.",
					       w->path.buf);
			if (check(w, s->elem, x, false))
				return w->problem;
			strbuf_setlen(&w->path, base);
		}
		return ECS_SHAPE_OK;
	case ECS_SHAPE_MAP: {
		const char *key;
		json_t *tmp;
		json_object_foreach_safe (v, tmp, key, x) {
			if (json_is_null(x)) {
				json_object_del(v, key);
				continue;
			}
			strbuf_addf(&w->path, "[\"%s\"]", key);
			if (check(w, s->elem, x, false))
				return w->problem;
			strbuf_setlen(&w->path, base);
		}
		return ECS_SHAPE_OK;
	}
	case ECS_SHAPE_STRING:
		if (s->enums) {
			const char *str = json_string_value(v);
			for (i = 0; i < s->n; i++)
				if (streq(s->enums[i], str))
					return ECS_SHAPE_OK;
			struct strbuf vals = STRBUF_INIT;
			for (i = 0; i < s->n; i++)
				strbuf_addf(&vals, "%s%s", i ? ", " : "", s->enums[i]);
			enum ecs_shape_problem p =
			    problem(w, ECS_SHAPE_INVALID, "Invalid '%s': '%.64s' is not one of %s.",
				    where(w, s), str, vals.buf);
			strbuf_release(&vals);
			return p;
		}
		return ECS_SHAPE_OK;
	default: return ECS_SHAPE_OK;
	}
}

enum ecs_shape_problem server_ecs_shape_check(const struct ecs_shape *shape, json_t *in, char **ret_msg)
{
	struct walk w = { .path = STRBUF_INIT };
	*ret_msg = NULL;
	enum ecs_shape_problem p = check(&w, shape, in, true);
	strbuf_release(&w.path);
	*ret_msg = w.msg;
	return p;
}
