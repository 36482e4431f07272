/*
 * runtimes.c - which OCI runtime each container runs on.
 *
 * A container names a runtime (HostConfig.Runtime, the daemon's default when
 * its create named none, as dockerd). The name is resolved in the daemon's
 * registry (runtime/registry.h) at every start, and what it resolved to (the
 * binary or the built-in library, its runtimeArgs, its state root) is written
 * into the run's shim.json: the shim runs the container with it, and every
 * later operation of that run (pause, resume, top, update, the cleanup of an
 * orphan or of an interrupted start, after a daemon restart too) reads it
 * back from there. A run thus keeps its runtime when the daemon is restarted
 * with other definitions; the next start resolves the name again (dockerd
 * resolves at start too).
 *
 * State roots: the built-in runtime keeps <exec root>/runc (where it always
 * was); an external runtime NAME gets <exec root>/runtime-NAME, so runc and
 * the built-in never read each other's state files.
 */
#include "common/json.h"
#include "common/strv.h"
#include "engine/internal.h"

/* The shim.json members of a run on d (named name). */
static json_t *used_of(struct engine *e, const char *name, const struct runtime_def *d)
{
	_cleanup_free_ char *root = d->path ? xasprintf("%s/runtime-%s", e->exec_root, d->name) : NULL;
	json_t *j =
	    json_pack("{s:s,s:s,s:s}", "runtime_name", name, "runtime",
		      d->path ? d->path : RUNTIME_OCI_BUILTIN, "runtime_root", root ? root : e->rt_root);
	if (d->args)
		json_object_set_new(j, "runtime_args", strv_to_json(d->args));
	return j;
}

int engine_runtime_for_start(struct engine *e, const struct container *c, json_t **ret,
			     struct berth_error **err)
{
	/* set at create; records older than per-container runtimes get the default when loaded */
	const char *name = json_string_value(json_object_get(c->hostconfig, "Runtime"));
	if (!name || !*name)
		name = engine_runtime_default(e);
	const struct runtime_def *d = runtime_registry_find(&e->runtimes, name);
	if (!d)
		return berth_error_msg(err, EINVAL, "unknown or invalid runtime name: %s", name);
	*ret = used_of(e, name, d);
	return 0;
}

json_t *engine_runtime_from_exec_dir(const char *xdir)
{
	_cleanup_free_ char *path = xasprintf("%s/shim.json", xdir);
	_cleanup_json_ json_t *j = NULL;
	if (json_load_path(path, 1 << 20, &j, NULL) < 0 ||
	    !json_string_value(json_object_get(j, "runtime")) ||
	    !json_string_value(json_object_get(j, "runtime_root")))
		return NULL;
	json_t *used = json_object();
	static const char *const keys[] = { "runtime_name", "runtime", "runtime_args", "runtime_root" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (json_object_get(j, keys[i]))
			json_object_set(used, keys[i], json_object_get(j, keys[i]));
	return used;
}

void engine_rt_from(struct engine *e, const json_t *used, struct engine_rt *ret)
{
	*ret = (struct engine_rt){ .used = used ? json_deep_copy(used) : NULL };
	const char *runtime = json_string_value(json_object_get(ret->used, "runtime"));
	const char *root = json_string_value(json_object_get(ret->used, "runtime_root"));
	if (!runtime || !root)
		runtime = RUNTIME_OCI_BUILTIN, root = e->rt_root;
	/* the engine's runtime operations are short (pause, resume, ps, update, delete): 30 s at most */
	runtime_oci_init(&ret->oci, runtime, root, NULL, 30000);
	if (ret->used)
		json_get_strv(ret->used, NULL, "runtime_args", 0, &ret->args, NULL);
	ret->oci.args = ret->args;
}

void engine_rt_of(struct engine *e, const struct container *c, struct engine_rt *ret)
{
	engine_rt_from(e, c->rt_used, ret);
}

void engine_rt_done(struct engine_rt *rt)
{
	json_decref(rt->used);
	strv_free(rt->args);
	*rt = (struct engine_rt){ 0 };
}

/* ---- the daemon's runtimes, for GET /info ---- */

json_t *engine_runtimes_info(const struct engine *e)
{
	return runtime_registry_info(&e->runtimes);
}

const char *engine_runtime_default(const struct engine *e)
{
	return runtime_registry_default(&e->runtimes);
}

int engine_runtime_check(const struct engine *e, const char *name, struct berth_error **err)
{
	if (!runtime_registry_find(&e->runtimes, name))
		return berth_error_msg(err, EINVAL, "Unknown runtime specified %s", name);
	return 0;
}
