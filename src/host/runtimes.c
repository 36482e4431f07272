/*
 * runtimes.c - the daemon's and the agent's runtime options (see runtimes.h):
 * one parser, so both front ends accept and refuse the same definitions with
 * the same messages.
 */
#include "host/runtimes.h"
#include "runtime/ops.h"

int host_runtime_opt_add(void *dest, const char *arg)
{
	struct host_runtime_opts *o = dest;
	_cleanup_error_ struct berth_error *err = NULL;
	if (runtime_registry_add_opt(&o->runtimes, arg, &err) < 0) {
		_cleanup_free_ char *who = xasprintf("%s: --add-runtime", o->who ? o->who : "berth");
		berth_error_print(err, who);
		return -EINVAL;
	}
	return 0;
}

int host_runtime_opts_finish(struct host_runtime_opts *o, struct berth_error **err)
{
	int r;
	if (!runtime_oci_is_builtin(o->runtime_path) &&
	    (r = runtime_registry_add(&o->runtimes, RUNTIME_REGISTRY_STOCK, o->runtime_path, NULL, err)) < 0)
		return berth_error_wrap(err, r, "--runtime-path");
	runtime_registry_set_default(&o->runtimes, o->default_runtime);
	return runtime_registry_check(&o->runtimes, err);
}

void host_runtime_opts_done(struct host_runtime_opts *o)
{
	runtime_registry_done(&o->runtimes);
	free(o->default_runtime);
	free(o->runtime_path);
	o->default_runtime = o->runtime_path = NULL;
}
