/*
 * ops-cli.c - runtime_ops over an external runtime with runc's command line
 * (runc, crun, `berth runtime`; see ops.h): one execution of the binary per
 * operation. When rt->log_path is set, the runtime logs JSON there (its
 * stderr may be the container's) and a failure reports its last "error"
 * line; otherwise its stderr.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/strv.h"
#include "common/util.h"
#include "runtime/ops.h"

/* Longest argv of an operation but the runtime's own global options: ours, the verb's, the id and NULL. */
#define CLI_ARGV_MAX 24

/* "OCI runtime <what> failed: <the last error the runtime logged, or its stderr>". */
static int cli_fail(const struct runtime_oci *rt, const char *what, const struct strbuf *errout,
		    struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_free_ char *msg = NULL;
	if (rt->log_path && fs_read_file_at(AT_FDCWD, rt->log_path, 1 << 20, &sb, NULL) == 0) {
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

/* argv[0..] = the binary and its global options (the runtime's own first); returns their count. */
static size_t base_argv(const struct runtime_oci *rt, const char **argv)
{
	size_t n = 0;
	argv[n++] = rt->path;
	for (char *const *a = rt->args; a && *a; a++)
		argv[n++] = *a;
	argv[n++] = "--root";
	argv[n++] = rt->state_root;
	if (rt->log_path) {
		argv[n++] = "--log";
		argv[n++] = rt->log_path;
		argv[n++] = "--log-format";
		argv[n++] = "json";
	}
	return n;
}

/* The full argv (caller frees): the global options, then args (NULL-terminated). */
static const char **full_argv(const struct runtime_oci *rt, const char *const *args)
{
	size_t max = CLI_ARGV_MAX + strv_length(rt->args);
	const char **argv = xcalloc(max, sizeof(*argv));
	size_t n = base_argv(rt, argv);
	for (size_t i = 0; args[i] && n < max - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return argv;
}

/*
 * Run a short operation to completion (at most rt->timeout_ms), its stdout
 * into out (may be NULL); extra_fd (>= 0) becomes its fd 3.
 */
static int cli_run(const struct runtime_oci *rt, const char *what, const char *const *args,
		   struct strbuf *out, int extra_fd, struct berth_error **err)
{
	_cleanup_free_ const char **argv = full_argv(rt, args);
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	if (extra_fd >= 0) {
		o.extra_fds = &extra_fd;
		o.n_extra_fds = 1;
	}
	_cleanup_strbuf_ struct strbuf errout = STRBUF_INIT;
	int status;
	int r = proc_run(&o, NULL, 0, out, &errout, 0, rt->timeout_ms, &status, err);
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cli_fail(rt, what, &errout, err);
	return 0;
}

/* Run an operation that exits once its process runs (create, exec --detach); the pid from its pid file. */
static int run_for_pid(const struct runtime_oci *rt, const char *const *args, const int stdio[3],
		       const char *what, const char *pidf, pid_t *ret_pid, struct berth_error **err)
{
	_cleanup_free_ const char **argv = full_argv(rt, args);
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
		return cli_fail(rt, what, NULL, err);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	r = fs_read_file_at(AT_FDCWD, pidf, 64, &sb, err);
	if (r < 0)
		return r;
	int64_t v;
	strbuf_trim_trailing(&sb);
	if (util_parse_int64(sb.buf, &v) < 0 || v <= 0)
		return berth_error_msg(err, EIO, "OCI runtime %s: bad pid file '%s'", what, sb.buf);
	*ret_pid = (pid_t)v;
	return 0;
}

static int c_create(const struct runtime_oci *rt, const char *id, const char *bundle,
		    const struct runtime_io *io, pid_t *ret_pid, struct berth_error **err)
{
	_cleanup_free_ char *pidf = xasprintf("%s/init.pid", bundle);
	const char *args[10] = { "create", "--bundle", bundle, "--pid-file", pidf };
	size_t n = 5;
	if (io->console) {
		args[n++] = "--console-socket";
		args[n++] = io->console;
	}
	args[n++] = id;
	args[n] = NULL;
	return run_for_pid(rt, args, io->stdio, "create", pidf, ret_pid, err);
}

static int c_start(const struct runtime_oci *rt, const char *id, struct berth_error **err)
{
	const char *args[] = { "start", id, NULL };
	return cli_run(rt, "start", args, NULL, -1, err);
}

static int c_exec(const struct runtime_oci *rt, const char *id, const char *process_file,
		  const struct runtime_io *io, pid_t *ret_pid, struct berth_error **err)
{
	/* runc takes a console socket only with --detach: the process is then the caller's (a subreaper)
	 * once runc exits, and its pid comes from the pid file; without, runc waits for the process and
	 * exits with its status. */
	_cleanup_free_ char *pidf = io->console ? xasprintf("%s.pid", process_file) : NULL;
	const char *args[12] = { "exec", "--process", process_file };
	size_t n = 3;
	if (io->console) {
		args[n++] = "--console-socket";
		args[n++] = io->console;
		args[n++] = "--pid-file";
		args[n++] = pidf;
		args[n++] = "--detach";
	}
	args[n++] = id;
	args[n] = NULL;
	if (io->console)
		return run_for_pid(rt, args, io->stdio, "exec", pidf, ret_pid, err);
	_cleanup_free_ const char **argv = full_argv(rt, args);
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	memcpy(o.stdio, io->stdio, sizeof(o.stdio));
	int pidfd = -1;
	int r = proc_spawn(&o, ret_pid, &pidfd, err);
	safe_close(pidfd);
	return r;
}

static int c_kill(const struct runtime_oci *rt, const char *id, int sig, bool all, struct berth_error **err)
{
	char s[16];
	snprintf(s, sizeof(s), "%d", sig);
	const char *with_all[] = { "kill", "--all", id, s, NULL }, *one[] = { "kill", id, s, NULL };
	return cli_run(rt, "kill", all ? with_all : one, NULL, -1, err);
}

static int c_delete(const struct runtime_oci *rt, const char *id, bool force, struct berth_error **err)
{
	const char *forced[] = { "delete", "--force", id, NULL }, *plain[] = { "delete", id, NULL };
	return cli_run(rt, "delete", force ? forced : plain, NULL, -1, err);
}

static int c_pause(const struct runtime_oci *rt, const char *id, struct berth_error **err)
{
	const char *args[] = { "pause", id, NULL };
	return cli_run(rt, "pause", args, NULL, -1, err);
}

static int c_resume(const struct runtime_oci *rt, const char *id, struct berth_error **err)
{
	const char *args[] = { "resume", id, NULL };
	return cli_run(rt, "resume", args, NULL, -1, err);
}

static int c_ps(const struct runtime_oci *rt, const char *id, pid_t **ret, size_t *ret_n,
		struct berth_error **err)
{
	const char *args[] = { "ps", "--format", "json", id, NULL };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r = cli_run(rt, "ps", args, &out, -1, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *pids = json_loadb(out.buf, out.len, 0, NULL);
	if (!json_is_array(pids))
		return berth_error_msg(err, EIO, "OCI runtime ps failed: not a JSON array of pids: '%.100s'",
				       out.buf);
	size_t n = json_array_size(pids);
	pid_t *v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (pid_t)json_integer_value(json_array_get(pids, i));
	*ret = v;
	*ret_n = n;
	return 0;
}

static int c_update(const struct runtime_oci *rt, const char *id, const json_t *resources,
		    struct berth_error **err)
{
	/* the resources file is a memfd the runtime reopens as its own fd 3 (no file to clean up) */
	_cleanup_free_ char *text = json_dumps(resources, JSON_COMPACT);
	_cleanup_close_ int fd = memfd_create("berth-resources", MFD_CLOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "OCI runtime update: memfd");
	int r = fs_write_all(fd, text, strlen(text));
	if (r < 0)
		return berth_error_set(err, -r, "OCI runtime update: write resources");
	const char *args[] = { "update", "--resources", "/proc/self/fd/3", id, NULL };
	return cli_run(rt, "update", args, NULL, fd, err);
}

static int c_state(const struct runtime_oci *rt, const char *id, struct runtime_state *ret,
		   struct berth_error **err)
{
	const char *args[] = { "state", id, NULL };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r = cli_run(rt, "state", args, &out, -1, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *j = json_loadb(out.buf, out.len, 0, NULL);
	const char *status = json_string_value(json_object_get(j, "status"));
	if (!status)
		return berth_error_msg(err, EIO, "OCI runtime state failed: no status in '%.100s'", out.buf);
	memset(ret, 0, sizeof(*ret));
	ret->status = RUNTIME_STATUS_STOPPED;
	for (int s = RUNTIME_STATUS_CREATING; s <= RUNTIME_STATUS_STOPPED; s++)
		if (streq(status, runtime_status_name(s)))
			ret->status = s;
	ret->id = xstrdup(json_string_value(json_object_get(j, "id")) ?: id);
	ret->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	ret->bundle = xstrdup(json_string_value(json_object_get(j, "bundle")) ?: "");
	ret->rootfs = xstrdup(json_string_value(json_object_get(j, "rootfs")) ?: "");
	ret->created = xstrdup(json_string_value(json_object_get(j, "created")) ?: "");
	ret->owner = xstrdup(json_string_value(json_object_get(j, "owner")) ?: "");
	json_t *a = json_object_get(j, "annotations");
	ret->annotations = json_is_object(a) ? json_incref(a) : NULL;
	return 0;
}

const struct runtime_ops runtime_ops_cli = {
	.name = "cli",
	.create = c_create,
	.start = c_start,
	.exec = c_exec,
	.kill = c_kill,
	.delete = c_delete,
	.pause = c_pause,
	.resume = c_resume,
	.ps = c_ps,
	.update = c_update,
	.state = c_state,
};
