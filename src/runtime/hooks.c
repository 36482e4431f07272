/*
 * hooks.c - OCI hooks: each runs with the container state JSON on stdin, its
 * own args/env, and an optional timeout after which it is killed. A failing
 * hook fails the lifecycle step (except poststop, whose caller only warns).
 */
#include "common/process.h"
#include "runtime/container.h"

static const char *const kind_names[RUNTIME_HOOK_MAX] = {
	[RUNTIME_HOOK_PRESTART] = "prestart",
	[RUNTIME_HOOK_CREATE_RUNTIME] = "createRuntime",
	[RUNTIME_HOOK_CREATE_CONTAINER] = "createContainer",
	[RUNTIME_HOOK_START_CONTAINER] = "startContainer",
	[RUNTIME_HOOK_POSTSTART] = "poststart",
	[RUNTIME_HOOK_POSTSTOP] = "poststop",
};

const char *hook_kind_name(enum runtime_hook_kind k)
{
	return kind_names[k];
}

static int hook_run_one(const struct runtime_hook *h, const char *kind, size_t i, const char *state_json,
			struct berth_error **err)
{
	static const char *const empty_env[] = { NULL };
	const char *argv_default[] = { h->path, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT, errout = STRBUF_INIT;
	int status = 0;
	/* argv[0] comes from args[0]; the program is always `path`. */
	_cleanup_free_ const char **argv = NULL;
	if (h->args && h->args[0]) {
		size_t n = 0;
		while (h->args[n])
			n++;
		argv = xcalloc(n + 2, sizeof(char *));
		argv[0] = h->path;
		for (size_t k = 1; k < n; k++)
			argv[k] = h->args[k];
	}
	o.argv = argv ? argv : argv_default;
	o.envp = h->env ? h->env : empty_env;
	o.stdio[2] = -1;
	int r = proc_run(&o, state_json, strlen(state_json), &out, &errout, 64 << 10,
			 h->timeout > 0 ? h->timeout * 1000 : -1, &status, err);
	if (r == -ETIMEDOUT)
		return berth_error_wrap(err, r, "%s hook %zu '%s' timed out after %ds", kind, i, h->path,
					h->timeout);
	if (r < 0)
		return berth_error_wrap(err, r, "%s hook %zu '%s'", kind, i, h->path);
	if (status != 0) {
		strbuf_trim_trailing(&errout);
		return berth_error_msg(err, EIO, "%s hook %zu '%s' failed with exit code %d%s%s", kind, i,
				       h->path, proc_exit_code(status), errout.len ? ": " : "", errout.buf);
	}
	return 0;
}

int hooks_run(const struct runtime_hooks *hooks, const char *kind, const char *state_json,
	      struct berth_error **err)
{
	for (size_t i = 0; i < hooks->n; i++) {
		int r = hook_run_one(&hooks->list[i], kind, i, state_json, err);
		if (r < 0)
			return r;
	}
	return 0;
}
