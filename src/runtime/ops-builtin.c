/*
 * ops-builtin.c - runtime_ops over berth's own runtime library, in-process
 * (see ops.h). create/exec leave the container's processes children of the
 * caller, which reaps them (the shim is a subreaper).
 */
#include "common/json.h"
#include "runtime/ops.h"

static struct runtime_ctx ctx_of(const struct runtime_oci *rt)
{
	struct runtime_ctx c = RUNTIME_CTX_INIT;
	c.state_root = rt->state_root;
	return c;
}

/* "OCI runtime <what> failed: <the library's message>" (as an external runtime's failures read). */
static int failed(int r, const char *what, struct berth_error **err)
{
	return r < 0 ? berth_error_wrap(err, r, "OCI runtime %s failed", what) : 0;
}

static int b_create(const struct runtime_oci *rt, const char *id, const char *bundle,
		    const struct runtime_io *io, pid_t *ret_pid, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	memcpy(o.stdio, io->stdio, sizeof(o.stdio));
	o.console_socket = io->console;
	int pidfd = -1;
	int r = runtime_create(&c, id, bundle, &o, ret_pid, &pidfd, err);
	safe_close(pidfd);
	return failed(r, "create", err);
}

static int b_start(const struct runtime_oci *rt, const char *id, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_start(&c, id, err), "start", err);
}

static int b_exec(const struct runtime_oci *rt, const char *id, const char *process_file,
		  const struct runtime_io *io, pid_t *ret_pid, struct berth_error **err)
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
	struct runtime_ctx c = ctx_of(rt);
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	memcpy(o.stdio, io->stdio, sizeof(o.stdio));
	o.console_socket = io->console;
	o.process = &proc;
	o.detach = true; /* the caller reaps the process itself */
	int pidfd = -1;
	r = runtime_exec(&c, id, &o, ret_pid, &pidfd, NULL, err);
	safe_close(pidfd);
	runtime_process_done(&proc);
	return failed(r, "exec", err);
}

static int b_kill(const struct runtime_oci *rt, const char *id, int sig, bool all, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_kill(&c, id, sig, all, err), "kill", err);
}

static int b_delete(const struct runtime_oci *rt, const char *id, bool force, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_delete(&c, id, force, err), "delete", err);
}

static int b_pause(const struct runtime_oci *rt, const char *id, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_pause(&c, id, err), "pause", err);
}

static int b_resume(const struct runtime_oci *rt, const char *id, struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_resume(&c, id, err), "resume", err);
}

static int b_ps(const struct runtime_oci *rt, const char *id, pid_t **ret, size_t *ret_n,
		struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_pids(&c, id, ret, ret_n, err), "ps", err);
}

static int b_update(const struct runtime_oci *rt, const char *id, const json_t *resources,
		    struct berth_error **err)
{
	struct runtime_resources res;
	int r = runtime_resources_parse(resources, "resources", &res, err);
	if (r < 0)
		return failed(r, "update", err);
	struct runtime_ctx c = ctx_of(rt);
	r = runtime_update(&c, id, &res, err);
	runtime_resources_done(&res);
	return failed(r, "update", err);
}

static int b_state(const struct runtime_oci *rt, const char *id, struct runtime_state *ret,
		   struct berth_error **err)
{
	struct runtime_ctx c = ctx_of(rt);
	return failed(runtime_state(&c, id, ret, err), "state", err);
}

const struct runtime_ops runtime_ops_builtin = {
	.name = "builtin",
	.create = b_create,
	.start = b_start,
	.exec = b_exec,
	.kill = b_kill,
	.delete = b_delete,
	.pause = b_pause,
	.resume = b_resume,
	.ps = b_ps,
	.update = b_update,
	.state = b_state,
};

void runtime_oci_init(struct runtime_oci *rt, const char *runtime, const char *state_root,
		      const char *log_path, int timeout_ms)
{
	bool builtin = runtime_oci_is_builtin(runtime);
	*rt = (struct runtime_oci){
		.ops = builtin ? &runtime_ops_builtin : &runtime_ops_cli,
		.path = builtin ? NULL : runtime,
		.state_root = state_root,
		.log_path = log_path,
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 60000,
	};
}
