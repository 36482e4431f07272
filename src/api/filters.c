/*
 * filters.c - docker's ?filters= parameter (both of its encodings).
 */
#include <regex.h>

#include "api/filters.h"
#include "common/json.h"

#define FILTERS_MAX (64u << 10)

static bool key_allowed(const char *key, const char *const *allowed)
{
	if (!allowed)
		return true;
	for (; *allowed; allowed++)
		if (streq(*allowed, key))
			return true;
	return false;
}

int api_filters_parse(const char *q, const char *const *allowed, json_t **ret, struct berth_error **err)
{
	*ret = NULL;
	if (!q || !*q)
		return 0;
	if (strlen(q) > FILTERS_MAX)
		return berth_error_msg(err, EINVAL, "invalid filters: too long");
	_cleanup_json_ json_t *j = NULL;
	int r = json_parse(q, strlen(q), "filters", &j, err);
	if (r < 0)
		return r;
	if (!json_is_object(j))
		return berth_error_msg(err, EINVAL, "invalid filters: expected an object");
	const char *key;
	json_t *v;
	json_object_foreach (j, key, v) {
		if (!key_allowed(key, allowed))
			return berth_error_msg(err, EINVAL, "Invalid filter '%s'", key);
		size_t i;
		json_t *e;
		const char *k;
		if (json_is_array(v)) {
			json_array_foreach (v, i, e)
				if (!json_is_string(e))
					return berth_error_msg(err, EINVAL,
							       "invalid filter '%s': expected strings", key);
		} else if (json_is_object(v)) {
			json_object_foreach (v, k, e)
				if (!json_is_boolean(e))
					return berth_error_msg(err, EINVAL,
							       "invalid filter '%s': expected booleans", key);
		} else {
			return berth_error_msg(err, EINVAL,
					       "invalid filter '%s': expected an array or object", key);
		}
	}
	*ret = TAKE_PTR(j);
	return 0;
}

char **api_filter_values(const json_t *filters, const char *key)
{
	const json_t *v = json_object_get(filters, key);
	size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
	if (!v || n == 0)
		return NULL;
	char **out = xcalloc(n + 1, sizeof(*out));
	size_t k = 0;
	if (json_is_array(v)) {
		size_t i;
		const json_t *e;
		json_array_foreach (v, i, e)
			if (json_is_string(e))
				out[k++] = xstrdup(json_string_value(e));
	} else {
		const char *s;
		const json_t *e;
		/* every key, whatever its boolean: dockerd's filters.Args.Get ranges over the map's keys */
		json_object_foreach ((json_t *)v, s, e)
			out[k++] = xstrdup(s);
	}
	return out;
}

bool api_filter_match(char **vals, const char *source)
{
	for (char **v = vals; v && *v; v++) {
		regex_t re;
		if (regcomp(&re, *v, REG_EXTENDED | REG_NOSUB) != 0)
			continue;
		bool m = regexec(&re, source, 0, NULL, 0) == 0;
		regfree(&re);
		if (m)
			return true;
	}
	return false;
}
