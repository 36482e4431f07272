/*
 * lifecycle.c - operations on an existing container: start, kill, delete,
 * pause/resume, update, stats, pids, and the features document. Each loads
 * state.json, derives the live status and acts through pidfds (no pid reuse
 * races) and the container's cgroup manager.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "runtime/cgroups.h"
#include "runtime/container.h"

static int load_hooks_spec(const struct runtime_ctx *ctx, const char *id, struct runtime_spec **ret)
{
	_cleanup_free_ char *dir = runtime_state_dir(ctx, id);
	_cleanup_free_ char *path = xasprintf("%s/hooks.json", dir);
	_cleanup_json_ json_t *doc = NULL;
	if (json_load_path(path, 0, &doc, NULL) < 0) {
		/* in-memory specs keep a whole copy instead */
		_cleanup_free_ char *cfg = xasprintf("%s/config.json", dir);
		if (access(cfg, F_OK) < 0)
			return -ENOENT;
		return runtime_spec_load(dir, ret, NULL);
	}
	return runtime_spec_parse(doc, NULL, ret, NULL);
}

int runtime_start(const struct runtime_ctx *ctx, const char *id, struct berth_error **err)
{
	struct container_state st;
	int r = runtime_state_load(ctx, id, &st, err);
	if (r < 0)
		return r;
	enum runtime_status status = runtime_state_status(ctx, &st);
	if (status != RUNTIME_STATUS_CREATED) {
		runtime_container_state_done(&st);
		return berth_error_msg(err, EINVAL, "cannot start a container that is %s",
				       runtime_status_name(status));
	}
	_cleanup_free_ char *dir = runtime_state_dir(ctx, id);
	_cleanup_free_ char *fifo = xasprintf("%s/exec.fifo", dir);
	_cleanup_close_ int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		r = berth_error_errno(err, "start container '%s': release init", id);
		runtime_container_state_done(&st);
		return r;
	}
	unlink(fifo);
	_cleanup_spec_ struct runtime_spec *spec = NULL;
	if (load_hooks_spec(ctx, id, &spec) == 0 && spec->hooks[RUNTIME_HOOK_POSTSTART].n) {
		_cleanup_free_ char *js = runtime_state_hook_json(id, RUNTIME_STATUS_RUNNING, st.st.pid,
								  st.st.bundle, st.st.annotations);
		/* runtime-spec: a failing poststart hook is a warning and the lifecycle goes on (runc
		 * kills the container instead) */
		runtime_hooks_run_warn(&spec->hooks[RUNTIME_HOOK_POSTSTART], "poststart", js);
	}
	runtime_container_state_done(&st);
	return 0;
}

static int kill_cgroup(const struct container_state *st, int sig, struct berth_error **err)
{
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(st->cgroup_kind);
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (!ops || !*st->cgroup_path)
		return 1; /* no cgroup: only the init */
	if (sig == SIGKILL && st->cgroup_kind == CGROUP_V2) {
		/* cgroup.kill (5.14+) kills every process at once, frozen or not, no pid races */
		_cleanup_free_ char *d = xasprintf("%s%s", runtime_cgroup_root(), st->cgroup_path);
		if (runtime_cg_write(d, "cgroup.kill", "1", NULL) == 0)
			return 0;
	}
	if (sig == SIGKILL && ops->is_frozen(st->cgroup_path) == 1)
		ops->freeze(st->cgroup_path, false, NULL);
	int r = ops->pids(st->cgroup_path, &pids, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		kill(pids[i], sig);
	return 0;
}

int runtime_kill(const struct runtime_ctx *ctx, const char *id, int sig, bool all, struct berth_error **err)
{
	struct container_state st;
	int r = runtime_state_load(ctx, id, &st, err);
	if (r < 0)
		return r;
	enum runtime_status status = runtime_state_status(ctx, &st);
	if (status == RUNTIME_STATUS_STOPPED && !all) {
		runtime_container_state_done(&st);
		/* containerd matches "container not running" to treat this as already finished */
		return berth_error_msg(err, ESRCH, "kill '%s': container not running", id);
	}
	if (all && (r = kill_cgroup(&st, sig, err)) <= 0) {
		runtime_container_state_done(&st);
		return r;
	}
	if (status != RUNTIME_STATUS_STOPPED) {
		int pidfd = proc_pidfd_open(st.st.pid);
		r = proc_signal(st.st.pid, pidfd, sig);
		safe_close(pidfd);
		if (r < 0)
			berth_error_set(err, -r, "kill container '%s' with signal %d", id, sig);
	}
	runtime_container_state_done(&st);
	return r < 0 ? r : 0;
}

/* Wait (bounded) for a non-child process to be gone, via its pidfd. */
static void wait_gone(pid_t pid, unsigned long long start, int timeout_ms)
{
	int fd = proc_pidfd_open(pid);
	if (fd < 0)
		return;
	if (runtime_proc_start_time(pid) == start) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, timeout_ms);
	}
	close(fd);
}

static int remove_cgroup(const struct container_state *st, struct berth_error **err)
{
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(st->cgroup_kind);
	if (!ops || !*st->cgroup_path)
		return 0;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	/* stragglers (daemons forked by the init): kill and wait for each */
	if (ops->pids(st->cgroup_path, &pids, &n, NULL) == 0 && n) {
		kill_cgroup(st, SIGKILL, NULL);
		for (size_t i = 0; i < n; i++)
			wait_gone(pids[i], runtime_proc_start_time(pids[i]), 2000);
	}
	int r = ops->destroy(st->cgroup_path, err);
	for (int i = 0; r == -EBUSY && i < 100; i++) {
		/* a task may still be exiting: its cgroup reference drops right after */
		struct timespec ts = { 0, 2000000 };
		nanosleep(&ts, NULL);
		berth_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		r = ops->destroy(st->cgroup_path, err);
	}
	return r;
}

int runtime_delete(const struct runtime_ctx *ctx, const char *id, bool force, struct berth_error **err)
{
	struct container_state st;
	int r = runtime_state_load(ctx, id, &st, err);
	if (r == -EAGAIN && force) {
		/* a create that died half-way: nothing runs, remove the directory */
		berth_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		_cleanup_free_ char *dir = runtime_state_dir(ctx, id);
		return fs_rm_rf(dir, err);
	}
	if (r < 0)
		return r;
	enum runtime_status status = runtime_state_status(ctx, &st);
	if ((status == RUNTIME_STATUS_RUNNING || status == RUNTIME_STATUS_PAUSED) && !force) {
		runtime_container_state_done(&st);
		return berth_error_msg(err, EBUSY, "cannot delete container '%s' that is %s (use --force)",
				       id, runtime_status_name(status));
	}
	if (status != RUNTIME_STATUS_STOPPED) {
		kill_cgroup(&st, SIGKILL, NULL);
		proc_signal(st.st.pid, -1, SIGKILL);
		wait_gone(st.st.pid, st.pid_start, 5000);
	}
	r = remove_cgroup(&st, err);
	_cleanup_spec_ struct runtime_spec *spec = NULL;
	if (load_hooks_spec(ctx, id, &spec) == 0 && spec->hooks[RUNTIME_HOOK_POSTSTOP].n) {
		_cleanup_free_ char *js =
		    runtime_state_hook_json(id, RUNTIME_STATUS_STOPPED, 0, st.st.bundle, st.st.annotations);
		/* poststop failures are warnings per the spec: the container is deleted anyway */
		runtime_hooks_run_warn(&spec->hooks[RUNTIME_HOOK_POSTSTOP], "poststop", js);
	}
	_cleanup_free_ char *dir = runtime_state_dir(ctx, id);
	int r2 = fs_rm_rf(dir, r < 0 ? NULL : err);
	runtime_container_state_done(&st);
	if (r < 0)
		return berth_error_wrap(err, r, "delete container '%s'", id);
	return r2;
}

static int with_cgroup(const struct runtime_ctx *ctx, const char *id, struct container_state *st,
		       const struct cgroup_ops **ops, struct berth_error **err)
{
	int r = runtime_state_load(ctx, id, st, err);
	if (r < 0)
		return r;
	*ops = runtime_cgroup_ops_for(st->cgroup_kind);
	if (!*ops || !*st->cgroup_path) {
		runtime_container_state_done(st);
		return berth_error_msg(
		    err, ENOTSUP, "container '%s' has no cgroup (no 'linux.cgroupsPath' or resources)", id);
	}
	return 0;
}

static int set_frozen(const struct runtime_ctx *ctx, const char *id, bool frozen, struct berth_error **err)
{
	struct container_state st;
	const struct cgroup_ops *ops;
	int r = with_cgroup(ctx, id, &st, &ops, err);
	if (r < 0)
		return r;
	enum runtime_status status = runtime_state_status(ctx, &st);
	if (frozen && status != RUNTIME_STATUS_RUNNING)
		r = berth_error_msg(err, EINVAL, "cannot pause container '%s' that is %s", id,
				    runtime_status_name(status));
	else if (!frozen && status != RUNTIME_STATUS_PAUSED)
		r = berth_error_msg(err, EINVAL, "cannot resume container '%s' that is %s", id,
				    runtime_status_name(status));
	else
		r = ops->freeze(st.cgroup_path, frozen, err);
	runtime_container_state_done(&st);
	return r;
}

int runtime_pause(const struct runtime_ctx *ctx, const char *id, struct berth_error **err)
{
	return set_frozen(ctx, id, true, err);
}

int runtime_resume(const struct runtime_ctx *ctx, const char *id, struct berth_error **err)
{
	return set_frozen(ctx, id, false, err);
}

int runtime_update(const struct runtime_ctx *ctx, const char *id, const struct runtime_resources *res,
		   struct berth_error **err)
{
	struct container_state st;
	const struct cgroup_ops *ops;
	int r = with_cgroup(ctx, id, &st, &ops, err);
	if (r < 0)
		return r;
	if (runtime_state_status(ctx, &st) == RUNTIME_STATUS_STOPPED)
		r = berth_error_msg(err, EINVAL, "cannot update container '%s' that is stopped", id);
	else
		r = ops->apply(st.cgroup_path, res, err);
	runtime_container_state_done(&st);
	return r;
}

int runtime_stats(const struct runtime_ctx *ctx, const char *id, struct runtime_stats *ret,
		  struct berth_error **err)
{
	struct container_state st;
	const struct cgroup_ops *ops;
	int r = with_cgroup(ctx, id, &st, &ops, err);
	if (r < 0)
		return r;
	r = ops->stats(st.cgroup_path, ret, err);
	runtime_container_state_done(&st);
	return r;
}

int runtime_pids(const struct runtime_ctx *ctx, const char *id, pid_t **ret, size_t *ret_n,
		 struct berth_error **err)
{
	struct container_state st;
	int r = runtime_state_load(ctx, id, &st, err);
	if (r < 0)
		return r;
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(st.cgroup_kind);
	if (ops && *st.cgroup_path)
		r = ops->pids(st.cgroup_path, ret, ret_n, err);
	else {
		bool alive = runtime_state_status(ctx, &st) != RUNTIME_STATUS_STOPPED;
		*ret = xcalloc(1, sizeof(pid_t));
		(*ret)[0] = st.st.pid;
		*ret_n = alive ? 1 : 0;
	}
	runtime_container_state_done(&st);
	return r;
}

void runtime_stats_to_json(const char *id, const struct runtime_stats *s, struct strbuf *sb)
{
	strbuf_addstr(sb, "{\"type\":\"stats\",\"id\":");
	strbuf_add_json_string(sb, id);
	strbuf_addf(sb,
		    ",\"data\":{\"cpu\":{\"usage\":{\"total\":%llu,\"kernel\":%llu,\"user\":%llu},"
		    "\"throttling\":{\"throttledPeriods\":%llu,\"throttledTime\":%llu}}",
		    (unsigned long long)s->cpu_usage_ns, (unsigned long long)s->cpu_system_ns,
		    (unsigned long long)s->cpu_user_ns, (unsigned long long)s->cpu_throttled_periods,
		    (unsigned long long)s->cpu_throttled_ns);
	if (s->has_memory)
		strbuf_addf(
		    sb,
		    ",\"memory\":{\"cache\":%llu,\"usage\":{\"limit\":%llu,\"usage\":%llu,\"max\":%llu,"
		    "\"failcnt\":%llu},\"swap\":{\"limit\":%llu,\"usage\":%llu}}",
		    (unsigned long long)s->mem_cache, (unsigned long long)s->mem_limit,
		    (unsigned long long)s->mem_usage, (unsigned long long)s->mem_max_usage,
		    (unsigned long long)s->mem_failcnt, (unsigned long long)s->swap_limit,
		    (unsigned long long)s->swap_usage);
	if (s->has_pids)
		strbuf_addf(sb, ",\"pids\":{\"current\":%llu,\"limit\":%llu}",
			    (unsigned long long)s->pids_current, (unsigned long long)s->pids_limit);
	strbuf_addf(
	    sb,
	    ",\"blkio\":{\"ioServiceBytesRecursive\":[{\"op\":\"Read\",\"value\":%llu},"
	    "{\"op\":\"Write\",\"value\":%llu}],\"ioServicedRecursive\":[{\"op\":\"Read\",\"value\":%llu},"
	    "{\"op\":\"Write\",\"value\":%llu}]}}}",
	    (unsigned long long)s->blkio_read_bytes, (unsigned long long)s->blkio_write_bytes,
	    (unsigned long long)s->blkio_read_ios, (unsigned long long)s->blkio_write_ios);
}

void runtime_features_json(struct strbuf *sb)
{
	strbuf_addstr(
	    sb,
	    "{\n  \"ociVersionMin\": \"1.0.0\",\n  \"ociVersionMax\": \"1.1.0\",\n"
	    "  \"hooks\": [\"prestart\", \"createRuntime\", \"createContainer\", \"startContainer\", "
	    "\"poststart\", \"poststop\"],\n"
	    "  \"mountOptions\": [\"async\", \"atime\", \"bind\", \"defaults\", \"dev\", \"diratime\", "
	    "\"dirsync\", \"exec\", \"loud\", \"mand\", \"noatime\", \"nodev\", \"nodiratime\", \"noexec\", "
	    "\"nomand\", \"norelatime\", \"nostrictatime\", \"nosuid\", \"private\", \"rbind\", "
	    "\"relatime\", "
	    "\"remount\", \"ro\", \"rprivate\", \"rshared\", \"rslave\", \"runbindable\", \"rw\", "
	    "\"shared\", "
	    "\"silent\", \"slave\", \"strictatime\", \"suid\", \"sync\", \"unbindable\"],\n"
	    "  \"linux\": {\n"
	    "    \"namespaces\": [\"cgroup\", \"ipc\", \"mount\", \"network\", \"pid\", \"time\", \"user\", "
	    "\"uts\"],\n"
	    "    \"capabilities\": [");
	for (int c = 0; c <= RUNTIME_CAP_LAST; c++)
		strbuf_addf(sb, "%s\"%s\"", c ? ", " : "", runtime_cap_name(c));
	strbuf_addstr(
	    sb, "],\n"
		"    \"cgroup\": {\"v1\": true, \"v2\": true, \"systemd\": false, \"systemdUser\": false, "
		"\"rdma\": false},\n"
		"    \"seccomp\": {\"enabled\": true, \"actions\": [\"SCMP_ACT_ALLOW\", \"SCMP_ACT_ERRNO\", "
		"\"SCMP_ACT_KILL\", \"SCMP_ACT_KILL_PROCESS\", \"SCMP_ACT_KILL_THREAD\", \"SCMP_ACT_LOG\", "
		"\"SCMP_ACT_TRACE\", \"SCMP_ACT_TRAP\"],\n"
		"      \"operators\": [\"SCMP_CMP_EQ\", \"SCMP_CMP_GE\", \"SCMP_CMP_GT\", \"SCMP_CMP_LE\", "
		"\"SCMP_CMP_LT\", \"SCMP_CMP_MASKED_EQ\", \"SCMP_CMP_NE\"],\n"
		"      \"archs\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X32\", "
		"\"SCMP_ARCH_AARCH64\", "
		"\"SCMP_ARCH_ARM\"]},\n"
		"    \"apparmor\": {\"enabled\": false},\n    \"selinux\": {\"enabled\": false},\n"
		"    \"intelRdt\": {\"enabled\": false},\n"
		"    \"mountExtensions\": {\"idmap\": {\"enabled\": false}}\n"
		"  },\n"
		"  \"annotations\": {\"org.opencontainers.runc.checkpoint.enabled\": \"false\"}\n"
		"}\n");
}
