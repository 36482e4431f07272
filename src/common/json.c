/*
 * json.c - typed getters over jansson. Paths are only built on the error path,
 * so the success path costs one hash lookup and a type check.
 */
#include <fcntl.h>
#include <inttypes.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"

const char *json_type_name(const json_t *j)
{
	if (!j)
		return "nothing";
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

char *json_path_join(const char *parent, const char *key)
{
	if (!parent || !*parent)
		return xstrdup(key ? key : "");
	if (!key || !*key)
		return xstrdup(parent);
	return xasprintf("%s.%s", parent, key);
}

char *json_path_index(const char *parent, size_t index)
{
	return xasprintf("%s[%zu]", parent ? parent : "", index);
}

int json_type_error(const char *parent, const char *key, const char *expected, const json_t *got,
		    struct berth_error **err)
{
	_cleanup_free_ char *p = json_path_join(parent, key);
	berth_error_msg(err, EINVAL, "'%s': expected %s, got %s", *p ? p : "(root)", expected,
			json_type_name(got));
	return -EINVAL;
}

int json_parse(const char *buf, size_t len, const char *what, json_t **ret, struct berth_error **err)
{
	json_error_t jerr;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return berth_error_msg(err, EINVAL, "parse %s: %s at line %d column %d", what ? what : "json",
				       jerr.text, jerr.line, jerr.column);
	*ret = j;
	return 0;
}

int json_load_at(int dirfd, const char *path, size_t max, json_t **ret, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(dirfd, path, max ? max : JSON_DEFAULT_MAX_SIZE, &sb, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *what = xasprintf("'%s'", path);
	return json_parse(sb.buf, sb.len, what, ret, err);
}

int json_load_path(const char *path, size_t max, json_t **ret, struct berth_error **err)
{
	return json_load_at(AT_FDCWD, path, max, ret, err);
}

/* Look up key; 0 absent-optional, 1 found, -EINVAL missing-required. */
static int lookup(const json_t *obj, const char *path, const char *key, int flags, json_t **ret,
		  struct berth_error **err)
{
	json_t *v = NULL;
	if (obj && json_is_object(obj))
		v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (flags & JSON_REQUIRED) {
			_cleanup_free_ char *p = json_path_join(path, key);
			return berth_error_msg(err, EINVAL, "'%s': required but missing", p);
		}
		return 0;
	}
	*ret = v;
	return 1;
}

int json_get_string(const json_t *obj, const char *path, const char *key, int flags, const char **ret,
		    struct berth_error **err)
{
	json_t *v = NULL;
	int r = lookup(obj, path, key, flags, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_string(v))
		return json_type_error(path, key, "string", v, err);
	*ret = json_string_value(v);
	return 1;
}

int json_get_bool(const json_t *obj, const char *path, const char *key, int flags, bool *ret,
		  struct berth_error **err)
{
	json_t *v = NULL;
	int r = lookup(obj, path, key, flags, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_boolean(v))
		return json_type_error(path, key, "boolean", v, err);
	*ret = json_is_true(v);
	return 1;
}

int json_get_int_range(const json_t *obj, const char *path, const char *key, int flags, int64_t min,
		       int64_t max, int64_t *ret, struct berth_error **err)
{
	json_t *v = NULL;
	int r = lookup(obj, path, key, flags, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_integer(v))
		return json_type_error(path, key, "integer", v, err);
	json_int_t n = json_integer_value(v);
	if (n < min || n > max) {
		_cleanup_free_ char *p = json_path_join(path, key);
		return berth_error_msg(err, ERANGE,
				       "'%s': %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", p,
				       (int64_t)n, min, max);
	}
	*ret = n;
	return 1;
}

int json_get_int64(const json_t *obj, const char *path, const char *key, int flags, int64_t *ret,
		   struct berth_error **err)
{
	return json_get_int_range(obj, path, key, flags, INT64_MIN, INT64_MAX, ret, err);
}

int json_get_uint32(const json_t *obj, const char *path, const char *key, int flags, uint32_t *ret,
		    struct berth_error **err)
{
	int64_t n;
	int r = json_get_int_range(obj, path, key, flags, 0, UINT32_MAX, &n, err);
	if (r > 0)
		*ret = (uint32_t)n;
	return r;
}

int json_get_uint64(const json_t *obj, const char *path, const char *key, int flags, uint64_t *ret,
		    struct berth_error **err)
{
	/* jansson integers are int64; larger values do not parse as integers */
	int64_t n;
	int r = json_get_int_range(obj, path, key, flags, 0, INT64_MAX, &n, err);
	if (r > 0)
		*ret = (uint64_t)n;
	return r;
}

int json_get_double(const json_t *obj, const char *path, const char *key, int flags, double *ret,
		    struct berth_error **err)
{
	json_t *v = NULL;
	int r = lookup(obj, path, key, flags, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_number(v))
		return json_type_error(path, key, "number", v, err);
	*ret = json_number_value(v);
	return 1;
}

int json_get_object(const json_t *obj, const char *path, const char *key, int flags, json_t **ret,
		    struct berth_error **err)
{
	json_t *v = NULL;
	int r = lookup(obj, path, key, flags, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_object(v))
		return json_type_error(path, key, "object", v, err);
	*ret = v;
	return 1;
}

int json_get_array(const json_t *obj, const char *path, const char *key, int flags, json_t **ret,
		   struct berth_error **err)
{
	json_t *v = NULL;
	int r = lookup(obj, path, key, flags, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_array(v))
		return json_type_error(path, key, "array", v, err);
	*ret = v;
	return 1;
}

int json_get_strv(const json_t *obj, const char *path, const char *key, int flags, char ***ret,
		  struct berth_error **err)
{
	json_t *arr;
	int r = json_get_array(obj, path, key, flags, &arr, err);
	if (r <= 0)
		return r;
	size_t n = json_array_size(arr);
	_cleanup_strv_ char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		if (!json_is_string(e)) {
			_cleanup_free_ char *p = json_path_join(path, key);
			_cleanup_free_ char *pi = json_path_index(p, i);
			return json_type_error(pi, NULL, "string", e, err);
		}
		v[i] = xstrdup(json_string_value(e));
	}
	*ret = TAKE_PTR(v);
	return 1;
}

int json_get_string_map(const json_t *obj, const char *path, const char *key, int flags, char ***ret,
			struct berth_error **err)
{
	json_t *o;
	int r = json_get_object(obj, path, key, flags, &o, err);
	if (r <= 0)
		return r;
	_cleanup_strv_ char **v = xcalloc(json_object_size(o) + 1, sizeof(char *));
	size_t i = 0;
	const char *k;
	json_t *e;
	json_object_foreach (o, k, e) {
		if (!json_is_string(e)) {
			_cleanup_free_ char *p = json_path_join(path, key);
			return json_type_error(p, k, "string", e, err);
		}
		v[i++] = xasprintf("%s=%s", k, json_string_value(e));
	}
	*ret = TAKE_PTR(v);
	return 1;
}

char *json_dump_compact(const json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		abort();
	return s;
}

ssize_t json_strv_find(const json_t *a, const char *s, bool icase)
{
	size_t i;
	const json_t *el;
	if (!s)
		return -1;
	json_array_foreach (a, i, el) {
		const char *v = json_string_value(el);
		if (v && (icase ? strcasecmp(v, s) == 0 : streq(v, s)))
			return (ssize_t)i;
	}
	return -1;
}

bool json_strv_contains(const json_t *a, const char *s)
{
	return json_strv_find(a, s, false) >= 0;
}
