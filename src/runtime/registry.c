/*
 * registry.c - a daemon's named OCI runtimes (see registry.h). A small array
 * searched linearly: a daemon defines a handful, looked up once per start.
 */
#include <ctype.h>

#include "common/json.h"
#include "common/strv.h"
#include "common/util.h"
#include "runtime/ops.h"
#include "runtime/registry.h"

static const struct runtime_def builtin = { .name = (char *)RUNTIME_OCI_BUILTIN };

void runtime_registry_init(struct runtime_registry *r)
{
	*r = (struct runtime_registry){ 0 };
}

static void def_done(struct runtime_def *d)
{
	free(d->name);
	free(d->path);
	strv_free(d->args);
}

void runtime_registry_done(struct runtime_registry *r)
{
	for (size_t i = 0; i < r->n; i++)
		def_done(&r->defs[i]);
	free(r->defs);
	free(r->default_name);
	*r = (struct runtime_registry){ 0 };
}

void runtime_registry_copy(struct runtime_registry *dst, const struct runtime_registry *src)
{
	runtime_registry_init(dst);
	dst->defs = xcalloc(src->n ? src->n : 1, sizeof(*dst->defs));
	for (size_t i = 0; i < src->n; i++) {
		const struct runtime_def *s = &src->defs[i];
		dst->defs[i] = (struct runtime_def){ .name = xstrdup(s->name),
						     .path = s->path ? xstrdup(s->path) : NULL,
						     .args = s->args ? strv_dup(s->args) : NULL };
	}
	dst->n = src->n;
	dst->default_name = src->default_name ? xstrdup(src->default_name) : NULL;
}

/* s without leading and trailing blanks (a new string). */
static char *trimmed(const char *s)
{
	s += strspn(s, " \t");
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return xstrndup(s, n);
}

static bool name_valid(const char *s)
{
	if (!*s || strlen(s) > RUNTIME_NAME_MAX || !isalnum((unsigned char)*s))
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static const struct runtime_def *defined(const struct runtime_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (streq(r->defs[i].name, name))
			return &r->defs[i];
	return NULL;
}

/* The checks of a new definition: its (trimmed, lower-cased) name in *ret_name. */
static int check_new(const struct runtime_registry *r, const char *name, const char *path, char **ret_name,
		     struct berth_error **err)
{
	_cleanup_free_ char *n = trimmed(name);
	for (char *p = n; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!name_valid(n))
		return berth_error_msg(err, EINVAL,
				       "invalid runtime name '%s': expected at most %d characters of "
				       "[a-z0-9_.-], starting with a letter or digit",
				       n, RUNTIME_NAME_MAX);
	if (streq(n, RUNTIME_OCI_BUILTIN))
		return berth_error_msg(err, EINVAL, "runtime name '%s' is reserved", RUNTIME_OCI_BUILTIN);
	if (defined(r, n))
		return berth_error_msg(err, EINVAL, "runtime '%s' was already defined", n);
	if (r->n >= RUNTIME_REGISTRY_MAX)
		return berth_error_msg(err, EINVAL, "runtime '%s': too many runtimes (at most %d)", n,
				       RUNTIME_REGISTRY_MAX);
	if (!*path)
		return berth_error_msg(err, EINVAL, "runtime '%s': empty path", n);
	*ret_name = TAKE_PTR(n);
	return 0;
}

int runtime_registry_add(struct runtime_registry *r, const char *name, const char *path, char *const *args,
			 struct berth_error **err)
{
	_cleanup_free_ char *p = trimmed(path);
	char *n = NULL;
	int r2 = check_new(r, name, p, &n, err);
	if (r2 < 0)
		return r2;
	if (strv_length(args) > RUNTIME_ARGS_MAX) {
		r2 = berth_error_msg(err, EINVAL, "runtime '%s': too many runtimeArgs (at most %d)", n,
				     RUNTIME_ARGS_MAX);
		free(n);
		return r2;
	}
	r->defs = xrealloc(r->defs, (r->n + 1) * sizeof(*r->defs));
	r->defs[r->n++] = (struct runtime_def){ .name = n,
						.path = runtime_oci_is_builtin(p) ? NULL : TAKE_PTR(p),
						.args = args && *args ? strv_dup(args) : NULL };
	return 0;
}

int runtime_registry_add_opt(struct runtime_registry *r, const char *arg, struct berth_error **err)
{
	const char *eq = strchr(arg, '=');
	if (!eq)
		return berth_error_msg(err, EINVAL, "invalid runtime argument: %s", arg);
	_cleanup_free_ char *raw = xstrndup(arg, (size_t)(eq - arg));
	_cleanup_free_ char *name = trimmed(raw), *path = trimmed(eq + 1);
	if (!*name || !*path)
		return berth_error_msg(err, EINVAL, "invalid runtime argument: %s", arg);
	return runtime_registry_add(r, name, path, NULL, err);
}

/* One "runtimes" member: its path and runtimeArgs (*ret_args owned by the caller). */
static int json_def(const char *name, const json_t *v, const char **ret_path, char ***ret_args,
		    struct berth_error **err)
{
	_cleanup_free_ char *where = xasprintf("runtimes.%s", name);
	if (!json_is_object(v))
		return json_type_error("runtimes", name, "object", v, err);
	const char *k;
	json_t *m;
	json_object_foreach ((json_t *)v, k, m) {
		if (streq(k, "runtimeType") || streq(k, "options"))
			return berth_error_msg(
			    err, EINVAL,
			    "runtime '%s': '%s' is not supported (containerd shims): berth "
			    "runs runc-compatible runtimes, give a 'path'",
			    name, k);
		if (!streq(k, "path") && !streq(k, "runtimeArgs"))
			return berth_error_msg(err, EINVAL, "runtime '%s': unknown key '%s'", name, k);
	}
	const char *path = NULL;
	int r = json_get_string(v, where, "path", 0, &path, err);
	if (r < 0)
		return r;
	if (!path || !*path)
		return berth_error_msg(err, EINVAL, "runtime '%s': a path must be configured", name);
	char **args = NULL;
	if ((r = json_get_strv(v, where, "runtimeArgs", 0, &args, err)) < 0)
		return r;
	*ret_path = path;
	*ret_args = args;
	return 0;
}

int runtime_registry_add_json(struct runtime_registry *r, const json_t *runtimes, struct berth_error **err)
{
	if (!runtimes || json_is_null(runtimes))
		return 0;
	if (!json_is_object(runtimes))
		return json_type_error(NULL, "runtimes", "object", runtimes, err);
	/* into a copy: a bad member adds none of them */
	struct runtime_registry tmp;
	runtime_registry_copy(&tmp, r);
	const char *name;
	json_t *v;
	json_object_foreach ((json_t *)runtimes, name, v) {
		const char *path = NULL;
		_cleanup_strv_ char **args = NULL;
		int rc = json_def(name, v, &path, &args, err);
		if (rc >= 0)
			rc = runtime_registry_add(&tmp, name, path, args, err);
		if (rc < 0) {
			runtime_registry_done(&tmp);
			return rc;
		}
	}
	runtime_registry_done(r);
	*r = tmp;
	return 0;
}

void runtime_registry_set_default(struct runtime_registry *r, const char *name)
{
	free(r->default_name);
	r->default_name = name ? trimmed(name) : NULL;
}

const char *runtime_registry_default(const struct runtime_registry *r)
{
	return r->default_name ? r->default_name : RUNTIME_REGISTRY_STOCK;
}

const struct runtime_def *runtime_registry_find(const struct runtime_registry *r, const char *name)
{
	if (!name)
		return NULL;
	const struct runtime_def *d = defined(r, name);
	if (d)
		return d;
	if (streq(name, RUNTIME_REGISTRY_RUNC_V2))
		return runtime_registry_find(r, RUNTIME_REGISTRY_STOCK);
	if (streq(name, RUNTIME_OCI_BUILTIN) || streq(name, RUNTIME_REGISTRY_STOCK))
		return &builtin;
	return NULL;
}

int runtime_registry_check(const struct runtime_registry *r, struct berth_error **err)
{
	const char *d = runtime_registry_default(r);
	if (!runtime_registry_find(r, d))
		return berth_error_msg(err, EINVAL, "specified default runtime '%s' does not exist", d);
	return 0;
}

static json_t *def_info(const struct runtime_def *d)
{
	json_t *j = json_pack("{s:s}", "path", d->path ? d->path : RUNTIME_OCI_BUILTIN);
	if (d->args)
		json_object_set_new(j, "runtimeArgs", strv_to_json(d->args));
	return j;
}

json_t *runtime_registry_info(const struct runtime_registry *r)
{
	json_t *j = json_object();
	json_object_set_new(j, RUNTIME_OCI_BUILTIN, def_info(&builtin));
	if (!defined(r, RUNTIME_REGISTRY_STOCK))
		json_object_set_new(j, RUNTIME_REGISTRY_STOCK, def_info(&builtin));
	for (size_t i = 0; i < r->n; i++)
		json_object_set_new(j, r->defs[i].name, def_info(&r->defs[i]));
	if (!defined(r, RUNTIME_REGISTRY_RUNC_V2))
		json_object_set_new(j, RUNTIME_REGISTRY_RUNC_V2,
				    def_info(runtime_registry_find(r, RUNTIME_REGISTRY_STOCK)));
	return j;
}
