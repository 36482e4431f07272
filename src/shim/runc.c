/*
 * runc.c - the shim's OCI runtime backend: an external runtime with runc's
 * CLI (runc, crun, or `berth runtime`). Its own diagnostics go to a JSON log
 * file (--log), because its stderr is the container's stderr.
 *
 * NEEDSWORK: call the in-process runtime library (runtime/runtime.h) instead
 * of exec'ing a binary once it is merged; the vtable-free shape of these
 * functions (create/start/exec/delete) mirrors its API for that swap.
 */
#include <fcntl.h>
#include <sys/wait.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "shim/runc.h"
#include "shim/shim.h"

static char *runc_log_path(const struct runc *rc)
{
	return xasprintf("%s/runtime.log", rc->dir);
}

/* The last "error" message runc logged, or its stderr. */
static int runc_fail(const struct runc *rc, const char *what, const struct strbuf *errout,
		     struct berth_error **err)
{
	_cleanup_free_ char *path = runc_log_path(rc);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *msg = NULL;
	if (fs_read_file_at(AT_FDCWD, path, 1 << 20, &sb, NULL) == 0) {
		char *save = NULL;
		for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			json_t *j = json_loads(line, 0, NULL);
			const char *lvl = json_string_value(json_object_get(j, "level"));
			const char *m = json_string_value(json_object_get(j, "msg"));
			if (lvl && m && streq(lvl, "error")) {
				free(msg);
				msg = xstrdup(m);
			}
			json_decref(j);
		}
	}
	if (!msg && errout && errout->len) {
		msg = xstrndup(errout->buf, errout->len);
		size_t n = strlen(msg);
		while (n && msg[n - 1] == '\n')
			msg[--n] = '\0';
	}
	return berth_error_msg(err, EIO, "OCI runtime %s failed: %s", what, msg ? msg : "unknown error");
}

static void base_argv(const struct runc *rc, const char **argv, size_t *n, char *logp)
{
	argv[(*n)++] = rc->runtime;
	argv[(*n)++] = "--root";
	argv[(*n)++] = rc->state_root;
	argv[(*n)++] = "--log";
	argv[(*n)++] = logp;
	argv[(*n)++] = "--log-format";
	argv[(*n)++] = "json";
}

/* Run a runtime verb that exits once its process runs (create, exec --detach); the pid from its pid file. */
static int run_for_pid(const struct runc *rc, const char **argv, const int stdio[3], const char *verb,
		       const char *pidf, pid_t *ret_pid, struct berth_error **err)
{
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	memcpy(o.stdio, stdio, sizeof(o.stdio));
	pid_t pid;
	int pidfd, status;
	int r = proc_spawn(&o, &pid, &pidfd, err);
	if (r < 0)
		return r;
	r = proc_wait(pid, pidfd, -1, &status, err);
	safe_close(pidfd);
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return runc_fail(rc, verb, NULL, err);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	r = fs_read_file_at(AT_FDCWD, pidf, 64, &sb, err);
	if (r < 0)
		return r;
	int64_t v;
	strbuf_trim_trailing(&sb);
	if (parse_int64(sb.buf, &v) < 0 || v <= 0)
		return berth_error_msg(err, EIO, "OCI runtime %s: bad pid file '%s'", verb, sb.buf);
	*ret_pid = (pid_t)v;
	return 0;
}

int runc_create(const struct runc *rc, const int stdio[3], const char *console, pid_t *ret_pid,
		struct berth_error **err)
{
	if (runc_is_builtin(rc))
		return builtin_create(rc, stdio, console, ret_pid, err);
	_cleanup_free_ char *logp = runc_log_path(rc);
	_cleanup_free_ char *pidf = xasprintf("%s/init.pid", rc->dir);
	const char *argv[20];
	size_t n = 0;
	base_argv(rc, argv, &n, logp);
	argv[n++] = "create";
	argv[n++] = "--bundle";
	argv[n++] = rc->dir;
	argv[n++] = "--pid-file";
	argv[n++] = pidf;
	if (console) {
		argv[n++] = "--console-socket";
		argv[n++] = console;
	}
	argv[n++] = rc->id;
	argv[n] = NULL;
	return run_for_pid(rc, argv, stdio, "create", pidf, ret_pid, err);
}

/* Run a short runtime command to completion, capturing its stderr. */
static int runc_simple(const struct runc *rc, const char *what, const char *const *args,
		       struct berth_error **err)
{
	_cleanup_free_ char *logp = runc_log_path(rc);
	const char *argv[24];
	size_t n = 0;
	base_argv(rc, argv, &n, logp);
	for (size_t i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_strbuf_ struct strbuf errout = STRBUF_INIT;
	int status;
	int r = proc_run(&o, NULL, 0, NULL, &errout, 0, 60000, &status, err);
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return runc_fail(rc, what, &errout, err);
	return 0;
}

int runc_start(const struct runc *rc, struct berth_error **err)
{
	if (runc_is_builtin(rc))
		return builtin_start(rc, err);
	const char *args[] = { "start", rc->id, NULL };
	return runc_simple(rc, "start", args, err);
}

int runc_delete(const struct runc *rc, struct berth_error **err)
{
	if (runc_is_builtin(rc))
		return builtin_delete(rc, err);
	const char *args[] = { "delete", "--force", rc->id, NULL };
	return runc_simple(rc, "delete", args, err);
}

int runc_exec(const struct runc *rc, const char *process_file, const int stdio[3], const char *console,
	      bool detach, pid_t *ret_pid, struct berth_error **err)
{
	if (runc_is_builtin(rc))
		return builtin_exec(rc, process_file, stdio, console, ret_pid, err);
	_cleanup_free_ char *logp = runc_log_path(rc);
	const char *argv[20];
	size_t n = 0;
	base_argv(rc, argv, &n, logp);
	argv[n++] = "exec";
	argv[n++] = "--process";
	argv[n++] = process_file;
	if (console) {
		argv[n++] = "--console-socket";
		argv[n++] = console;
	}
	/* runc takes a console socket only with --detach: the process is then the shim's
	 * (a subreaper) once runc exits, and its pid comes from the pid file. */
	_cleanup_free_ char *pidf = console ? xasprintf("%s.pid", process_file) : NULL;
	if (console) {
		argv[n++] = "--pid-file";
		argv[n++] = pidf;
	}
	if (detach || console)
		argv[n++] = "--detach";
	argv[n++] = rc->id;
	argv[n] = NULL;
	if (console)
		return run_for_pid(rc, argv, stdio, "exec", pidf, ret_pid, err);
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	memcpy(o.stdio, stdio, sizeof(o.stdio));
	int pidfd = -1;
	int r = proc_spawn(&o, ret_pid, &pidfd, err);
	safe_close(pidfd);
	return r;
}
