/*
 * builtin.c - the shim's in-process OCI runtime backend: the berth runtime
 * library (runtime/runtime.h) instead of exec'ing a runc binary. The
 * container's init and exec'd processes are children of the shim itself,
 * so the shim reaps them directly. Selected with the runtime name "berth".
 */
#include "common/json.h"
#include "runtime/runtime.h"
#include "shim/runc.h"

static struct runtime_ctx ctx_of(const struct runc *rc)
{
	struct runtime_ctx c = RUNTIME_CTX_INIT;
	c.state_root = rc->state_root;
	return c;
}

int builtin_create(const struct runc *rc, const int stdio[3], const char *console, pid_t *ret_pid,
		   struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rc);
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	memcpy(o.stdio, stdio, sizeof(o.stdio));
	o.console_socket = console;
	int pidfd = -1;
	int r = runtime_create(&c, rc->id, rc->dir, &o, ret_pid, &pidfd, err);
	safe_close(pidfd);
	return r < 0 ? berth_error_wrap(err, r, "OCI runtime create failed") : 0;
}

int builtin_start(const struct runc *rc, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rc);
	int r = runtime_start(&c, rc->id, err);
	return r < 0 ? berth_error_wrap(err, r, "OCI runtime start failed") : 0;
}

int builtin_delete(const struct runc *rc, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rc);
	return runtime_delete(&c, rc->id, true, err);
}

int builtin_exec(const struct runc *rc, const char *process_file, const int stdio[3], const char *console,
		 pid_t *ret_pid, struct berth_error **err)
{
	_cleanup_json_ json_t *doc = NULL;
	int r = json_load_path(process_file, 1 << 20, &doc, err);
	if (r < 0)
		return r;
	struct runtime_process proc;
	memset(&proc, 0, sizeof(proc));
	r = runtime_process_parse(doc, "process", &proc, err);
	if (r < 0)
		return r;
	struct runtime_ctx c = ctx_of(rc);
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	memcpy(o.stdio, stdio, sizeof(o.stdio));
	o.console_socket = console;
	o.process = &proc;
	o.detach = true;
	int pidfd = -1;
	r = runtime_exec(&c, rc->id, &o, ret_pid, &pidfd, NULL, err);
	safe_close(pidfd);
	runtime_process_done(&proc);
	return r < 0 ? berth_error_wrap(err, r, "OCI runtime exec failed") : 0;
}
