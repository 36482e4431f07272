/*
 * strv.c - NULL-terminated string vectors.
 */
#include "common/strv.h"

size_t strv_length_(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

void strv_add(char ***v, const char *s)
{
	size_t n = strv_length(*v);
	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

char **strv_dup_(const char *const *v)
{
	size_t n = strv_length(v);
	char **r = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i]);
	return r;
}

bool strv_contains_(const char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

json_t *strv_to_json_(const char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

void strv_kv_set(json_t *o, const char *kv)
{
	const char *eq = strchr(kv, '=');
	_cleanup_free_ char *k = eq ? xstrndup(kv, (size_t)(eq - kv)) : xstrdup(kv);
	json_object_set_new(o, k, json_string(eq ? eq + 1 : ""));
}

json_t *strv_kv_to_json_(const char *const *v)
{
	json_t *o = json_object();
	for (size_t i = 0; v && v[i]; i++)
		strv_kv_set(o, v[i]);
	return o;
}
