/*
 * init.c - the container side: what the cloned init (or exec'd process) does
 * between clone3() and execve() of the user's program.
 *
 * Runs in a fork-like child of a single-threaded caller (see runtime.h), so
 * ordinary libc is safe. Everything expensive or allocation-heavy that can be
 * prepared before clone (spec parsing, seccomp BPF) was prepared by the
 * parent. Order of the final steps follows runc: the bounding set is dropped
 * while still root; seccomp is loaded before the user switch when it needs
 * CAP_SYS_ADMIN (no noNewPrivileges), otherwise as late as possible.
 */
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>

#include "common/fs.h"
#include "common/process.h"
#include "runtime/container.h"

#define CLOSE_RANGE_CLOEXEC_FLAG (1U << 2)

int runtime_sync_send(int fd, int type, int code, const char *text)
{
	struct sync_msg m; /* only the header and the text's bytes are sent: no 64 KiB clearing */
	m.type = type;
	m.code = code;
	size_t len = text ? strlen(text) : 0;
	if (len >= SYNC_MSG_TEXT)
		len = SYNC_MSG_TEXT - 1;
	if (len)
		memcpy(m.text, text, len);
	m.text[len] = 0;
	size_t n = offsetof(struct sync_msg, text) + len + 1;
	ssize_t w;
	do
		w = send(fd, &m, n, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	return w < 0 ? negative_errno() : 0;
}

int runtime_sync_recv(int fd, struct sync_msg *m)
{
	ssize_t n;
	do
		n = recv(fd, m, sizeof(*m), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if (n < (ssize_t)offsetof(struct sync_msg, text) + 1)
		return -EPIPE;
	((char *)m)[n - 1] = 0;
	return 0;
}

void runtime_sync_send_error(int fd, const struct berth_error *err, int code)
{
	_cleanup_free_ char *s = err ? berth_error_string(err) : xstrdup("container init failed");
	runtime_sync_send(fd, MSG_ERROR, code, s);
}

/* Move an fd to >= floor (CLOEXEC), closing the old one. */
static int move_high(int *fd, int floor)
{
	if (*fd < 0)
		return 0;
	int n = fcntl(*fd, F_DUPFD_CLOEXEC, floor);
	if (n < 0)
		return negative_errno();
	*fd = n;
	return 0;
}

/*
 * A stdio fd that is the null device but not the container's own /dev/null
 * (the host's, inherited from the shim or passed by a runc-style caller) would
 * let root in the container fchmod/fchown the host's device node. Swap it for
 * the container's /dev/null, as runc's reOpenDevNull does. Runs after
 * pivot_root or setns, so "/dev/null" names the container's node.
 */
static int reopen_devnull(struct berth_error **err)
{
	_cleanup_close_ int null = -1;
	struct stat own = { 0 };
	for (int i = 0; i < 3; i++) {
		struct stat st;
		if (fstat(i, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
			continue;
		if (null < 0) {
			null = open("/dev/null", O_RDWR | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
			if (null < 0)
				return berth_error_errno(err, "reopen '/dev/null' in the container");
			if (fstat(null, &own) < 0 || !S_ISCHR(own.st_mode) || own.st_rdev != makedev(1, 3))
				return berth_error_msg(err, EINVAL,
						       "'/dev/null' in the container is not the null device");
		}
		if (st.st_dev == own.st_dev && st.st_ino == own.st_ino)
			continue;
		if (dup3(null, i, 0) < 0)
			return berth_error_errno(err, "dup3 '/dev/null' to fd %d", i);
	}
	return 0;
}

/*
 * Lay out fds: stdio[i] -> i, preserve_fds[k] -> 3 + k; everything else is
 * marked close-on-exec (close_range), so nothing of the host leaks.
 */
static int setup_fds(struct init_config *c, int *stdio, int *preserve, struct berth_error **err)
{
	int floor = 3 + (int)c->n_preserve_fds + 8;
	for (int i = 0; i < 3; i++)
		if (move_high(&stdio[i], floor) < 0)
			return berth_error_errno(err, "dup stdio");
	for (size_t k = 0; k < c->n_preserve_fds; k++)
		if (move_high(&preserve[k], floor) < 0)
			return berth_error_errno(err, "dup preserved fd %d", c->preserve_fds[k]);
	if (move_high(&c->sync_fd, floor) < 0 || move_high(&c->fifo_fd, floor) < 0 ||
	    move_high(&c->console_fd, floor) < 0)
		return berth_error_errno(err, "dup internal fds");
	for (int i = 0; i < 3; i++)
		if (stdio[i] >= 0 && dup2(stdio[i], i) < 0)
			return berth_error_errno(err, "dup2 stdio %d", i);
	for (size_t k = 0; k < c->n_preserve_fds; k++)
		if (dup2(preserve[k], 3 + (int)k) < 0)
			return berth_error_errno(err, "dup2 preserved fd");
	if (syscall(SYS_close_range, 3 + c->n_preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC_FLAG) < 0)
		return berth_error_errno(err, "close_range");
	return reopen_devnull(err);
}

static int join_namespaces(const struct runtime_spec *s, int skip, struct berth_error **err)
{
	/* user first: the others are owned by it */
	static const enum runtime_ns_type order[] = { RUNTIME_NS_USER, RUNTIME_NS_IPC,    RUNTIME_NS_UTS,
						      RUNTIME_NS_NET,  RUNTIME_NS_CGROUP, RUNTIME_NS_TIME,
						      RUNTIME_NS_MNT };
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		const struct runtime_namespace *ns = &s->ns[order[i]];
		if (!ns->enabled || !ns->path || (runtime_ns_clone_flag(order[i]) & skip))
			continue;
		_cleanup_close_ int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return berth_error_errno(err, "open %s namespace '%s'", runtime_ns_name(order[i]),
						 ns->path);
		if (setns(fd, runtime_ns_clone_flag(order[i])) < 0)
			return berth_error_errno(err, "join %s namespace '%s'", runtime_ns_name(order[i]),
						 ns->path);
	}
	return 0;
}

/*
 * A network namespace the runtime made has its loopback up, as runc's does
 * (its "loopback" network): programs of a --network none container talk to
 * themselves over 127.0.0.1. A joined namespace is its maker's business.
 */
static int loopback_up(struct berth_error **err)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { .ifr_name = "lo" };
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return berth_error_errno(err, "bring up 'lo' in the new network namespace");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return berth_error_errno(err, "bring up 'lo' in the new network namespace");
	return 0;
}

static int setup_namespaces(struct init_config *c, struct berth_error **err)
{
	const struct runtime_spec *s = c->spec;
	int r = join_namespaces(s, c->parent_joined, err);
	if (r < 0)
		return r;
	if (c->userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
		return berth_error_errno(err, "become root in the user namespace");
	if (s->ns[RUNTIME_NS_NET].enabled && !s->ns[RUNTIME_NS_NET].path && (r = loopback_up(err)) < 0)
		return r;
	if (s->ns[RUNTIME_NS_CGROUP].enabled && !s->ns[RUNTIME_NS_CGROUP].path &&
	    unshare(CLONE_NEWCGROUP) < 0)
		return berth_error_errno(err, "unshare cgroup namespace");
	if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0)
		return berth_error_errno(err, "set hostname '%s'", s->hostname);
	if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0)
		return berth_error_errno(err, "set domainname '%s'", s->domainname);
	return 0;
}

static int rlimit_name_error(const struct runtime_rlimit *rl, size_t i, struct berth_error **err)
{
	struct rlimit cur;
	getrlimit(rl->resource, &cur);
	if (rl->hard > cur.rlim_max && errno == EPERM)
		return berth_error_msg(
		    err, EPERM,
		    "'process.rlimits[%zu]': raising the hard limit from %llu to %llu needs "
		    "CAP_SYS_RESOURCE, which this runtime does not have",
		    i, (unsigned long long)cur.rlim_max, (unsigned long long)rl->hard);
	return berth_error_errno(err, "'process.rlimits[%zu]': setrlimit", i);
}

static int setup_process_limits(const struct init_config *c, struct berth_error **err)
{
	const struct runtime_process *p = c->process;
	for (size_t i = 0; i < p->n_rlimits; i++) {
		struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
		if (setrlimit(p->rlimits[i].resource, &rl) < 0)
			return rlimit_name_error(&p->rlimits[i], i, err);
	}
	if (p->has_oom_score_adj) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d", p->oom_score_adj);
		_cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, buf, strlen(buf)) < 0)
			return berth_error_errno(err, "'process.oomScoreAdj': set %d", p->oom_score_adj);
	}
	if (p->has_io_priority && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0,
					  (p->io_priority_class << 13) | p->io_priority) < 0)
		return berth_error_errno(err, "'process.ioPriority'");
	if (p->has_scheduler) {
		struct sched_param sp = { .sched_priority = p->sched_priority };
		if (sched_setscheduler(0, p->sched_policy, &sp) < 0)
			return berth_error_errno(err, "'process.scheduler'");
		if (p->sched_nice && setpriority(PRIO_PROCESS, 0, p->sched_nice) < 0)
			return berth_error_errno(err, "'process.scheduler.nice'");
	}
	if (!c->exec && c->spec->has_personality && personality(c->spec->personality) < 0)
		return berth_error_errno(err, "'linux.personality'");
	return 0;
}

/* Look up `file` in PATH of the process env (execvp semantics, but resolved now for a precise error). */
static int find_executable(const struct runtime_process *p, char *out, size_t outlen,
			   struct berth_error **err)
{
	const char *file = p->args[0];
	struct stat st;
	if (strchr(file, '/')) {
		if (stat(file, &st) < 0 && errno == ENOENT) /* docker's CLI maps this text to 127 */
			return berth_error_msg(err, ENOENT, "exec '%s': no such file or directory", file);
		if (stat(file, &st) < 0)
			return berth_error_errno(err, "exec '%s'", file);
		if (!S_ISREG(st.st_mode) || access(file, X_OK) < 0)
			return berth_error_msg(err, EACCES, "exec '%s': permission denied", file);
		snprintf(out, outlen, "%s", file);
		return 0;
	}
	const char *path = NULL;
	for (const char **e = p->env; *e; e++)
		if (startswith(*e, "PATH="))
			path = *e + 5;
	if (!path)
		path = ""; /* like runc: no PATH in process.env, no search */
	while (*path) {
		const char *end = strchrnul(path, ':');
		int n = snprintf(out, outlen, "%.*s/%s", (int)(end - path), path, file);
		if (n > 0 && (size_t)n < outlen && end > path && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(out, X_OK) == 0)
			return 0;
		path = *end ? end + 1 : end;
	}
	return berth_error_msg(err, ENOENT, "exec '%s': executable file not found in $PATH", file);
}

/* The container's passwd entry of a uid (name and home), as runc looks it up for numeric users. */
struct pw_entry {
	bool found;
	char name[256];
	char home[1024];
};

/* Split a line at ':' into at most max fields (empty fields allowed). */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	for (char *p = line; p && n < max; n++) {
		f[n] = p;
		p = strchr(p, ':');
		if (p)
			*p++ = 0;
	}
	return n;
}

static void passwd_find(uid_t uid, struct pw_entry *pw)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	memset(pw, 0, sizeof(*pw));
	if (fs_read_file_at(AT_FDCWD, "/etc/passwd", 1 << 20, &sb, NULL) < 0)
		return;
	for (char *l = sb.buf, *next; l && *l; l = next) {
		next = strchr(l, '\n');
		if (next)
			*next++ = 0;
		char *f[7];
		char *end;
		if (split_fields(l, f, 7) < 6 || !*f[2])
			continue;
		unsigned long u = strtoul(f[2], &end, 10);
		if (*end || u != uid)
			continue;
		pw->found = true;
		snprintf(pw->name, sizeof(pw->name), "%s", f[0]);
		snprintf(pw->home, sizeof(pw->home), "%s", f[5]);
		return;
	}
}

/* Supplementary groups of the named user from the container's /etc/group. */
static size_t container_groups(const char *name, gid_t *out, size_t max)
{
	_cleanup_strbuf_ struct strbuf gr = STRBUF_INIT;
	size_t n = 0;
	if (!*name || fs_read_file_at(AT_FDCWD, "/etc/group", 1 << 20, &gr, NULL) < 0)
		return 0;
	for (char *l = gr.buf, *next; l && *l && n < max; l = next) {
		next = strchr(l, '\n');
		if (next)
			*next++ = 0;
		char *f[4];
		char *end;
		if (split_fields(l, f, 4) < 4 || !*f[2])
			continue;
		unsigned long g = strtoul(f[2], &end, 10);
		if (*end)
			continue;
		for (char *m = f[3], *comma; m && *m && n < max; m = comma) {
			comma = strchr(m, ',');
			if (comma)
				*comma++ = 0;
			if (streq(m, name))
				out[n++] = (gid_t)g;
		}
	}
	return n;
}

static int switch_user(const struct init_config *c, const struct pw_entry *pw, struct berth_error **err)
{
	const struct runtime_process *p = c->process;
	gid_t groups[256];
	size_t n = 0;
	for (size_t i = 0; i < p->n_additional_gids && n < ARRAY_SIZE(groups); i++)
		groups[n++] = p->additional_gids[i];
	n += container_groups(pw->name, groups + n, ARRAY_SIZE(groups) - n);
	if (setgroups(n, groups) < 0 && !(errno == EPERM && c->userns))
		return berth_error_errno(err, "setgroups");
	if (prctl(PR_SET_KEEPCAPS, 1) < 0)
		return berth_error_errno(err, "keep capabilities");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return berth_error_errno(err, "'process.user.gid': setgid %u", p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return berth_error_errno(err, "'process.user.uid': setuid %u", p->uid);
	prctl(PR_SET_KEEPCAPS, 0);
	return 0;
}

static int drop_bounding(const struct init_config *c, struct berth_error **err)
{
	const struct runtime_process *p = c->process;
	if (!p->has_caps)
		return 0;
	for (int cap = 0; cap <= c->cap_last; cap++)
		if (!(p->caps.bounding & (1ull << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
		    errno != EINVAL)
			return berth_error_errno(err, "drop capability %d from the bounding set", cap);
	return 0;
}

static int set_caps(const struct init_config *c, struct berth_error **err)
{
	const struct runtime_process *p = c->process;
	if (!p->has_caps)
		return 0;
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = (uint32_t)(p->caps.effective >> (32 * i));
		d[i].permitted = (uint32_t)(p->caps.permitted >> (32 * i));
		d[i].inheritable = (uint32_t)(p->caps.inheritable >> (32 * i));
	}
	if (syscall(SYS_capset, &h, d) < 0)
		return berth_error_errno(err, "'process.capabilities': capset");
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int cap = 0; cap <= c->cap_last; cap++)
		/* a capability not in the inheritable set cannot be ambient: skipped, as runc does */
		if ((p->caps.ambient & (1ull << cap)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
			return berth_error_errno(err, "'process.capabilities.ambient': raise capability %d",
						 cap);
	return 0;
}

static void reset_signals(void)
{
	sigset_t all;
	struct sigaction sa = { .sa_handler = SIG_DFL };
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

static int wait_for_start(struct init_config *c, struct berth_error **err)
{
	if (c->fifo_fd >= 0) {
		char b;
		ssize_t n;
		do
			n = read(c->fifo_fd, &b, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			return berth_error_errno(err, "wait for start");
		c->fifo_fd = safe_close(c->fifo_fd);
	} else if (c->wait_start_msg) {
		struct sync_msg *m = xmalloc(sizeof(*m));
		int r = runtime_sync_recv(c->sync_fd, m);
		int type = m->type;
		free(m);
		if (r < 0 || type != MSG_START)
			return berth_error_msg(err, EPIPE, "runtime went away before start");
	}
	return 0;
}

/* Container setup up to "ready" (mount namespace, console, limits). */
static int init_setup(struct init_config *c, struct berth_error **err)
{
	const struct runtime_spec *s = c->spec;
	int r;
	if (c->exec) {
		if (setns(c->join_pidfd, c->join_flags) < 0)
			return berth_error_errno(err, "join the container's namespaces");
		c->join_pidfd = safe_close(c->join_pidfd);
		if (c->userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
			return berth_error_errno(err, "become root in the user namespace");
	} else {
		if ((r = setup_namespaces(c, err)) < 0)
			return r;
		runtime_timing_mark(c->timings, "namespaces");
		/* without a mount namespace of its own the container sees the runtime's filesystem */
		bool own_mnt = s->ns[RUNTIME_NS_MNT].enabled;
		if (own_mnt && (r = runtime_rootfs_prepare(c, err)) < 0)
			return r;
		if (s->hooks[RUNTIME_HOOK_PRESTART].n || s->hooks[RUNTIME_HOOK_CREATE_RUNTIME].n) {
			struct sync_msg *m = xmalloc(sizeof(*m));
			runtime_sync_send(c->sync_fd, MSG_HOOKS, 0, NULL);
			r = runtime_sync_recv(c->sync_fd, m);
			int type = m->type;
			free(m);
			if (r < 0 || type != MSG_HOOKS_DONE)
				return berth_error_msg(err, EPIPE, "runtime hooks failed");
		}
		if ((r = runtime_hooks_run(&s->hooks[RUNTIME_HOOK_CREATE_CONTAINER], "createContainer",
					   c->state_json, err)) < 0)
			return r;
		if ((r = setup_process_limits(c, err)) < 0) /* oom_score_adj needs the host's /proc */
			return r;
		if ((own_mnt && (r = runtime_rootfs_pivot(c, err)) < 0) ||
		    (r = runtime_rootfs_finish(c, err)) < 0)
			return r;
		runtime_timing_mark(c->timings, "rootfs");
	}
	if (c->exec && (r = setup_process_limits(c, err)) < 0)
		return r;
	if (c->process->terminal) {
		if ((r = runtime_console_setup(c->console_fd, c->process, !c->exec, err)) < 0)
			return r;
		c->console_fd = safe_close(c->console_fd);
	} else if (setsid() < 0) { /* its own session, as with runc (runtime_console_setup does it too) */
		return berth_error_errno(err, "setsid");
	}
	if (!c->no_new_keyring && syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL) < 0 &&
	    errno != ENOSYS && errno != EPERM && errno != EACCES)
		return berth_error_errno(err, "create session keyring");
	return 0;
}

/* Last steps: user, capabilities, seccomp, exec. Returns only on failure. */
static int init_exec(struct init_config *c, const char *exe, struct berth_error **err)
{
	const struct runtime_process *p = c->process;
	int r;
	if (chdir(p->cwd) < 0)
		return berth_error_errno(err, "'process.cwd': chdir to '%s'", p->cwd);
	/* a cwd reached through a leaked fd (CVE-2024-21626) is outside our root: getcwd says so */
	char cwdbuf[4096];
	if (!getcwd(cwdbuf, sizeof(cwdbuf)) || cwdbuf[0] != '/')
		return berth_error_msg(err, EPERM, "'process.cwd': '%s' is outside the container", p->cwd);
	if ((r = drop_bounding(c, err)) < 0)
		return r;
	if (c->seccomp_prog && !p->no_new_privileges &&
	    (r = runtime_seccomp_install(c->seccomp_prog, c->seccomp_flags)) < 0)
		return berth_error_set(err, -r, "load seccomp filter");
	struct pw_entry pw;
	passwd_find(p->uid, &pw);
	if ((r = switch_user(c, &pw, err)) < 0 || (r = set_caps(c, err)) < 0)
		return r;
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return berth_error_errno(err, "'process.noNewPrivileges'");
	umask(p->has_umask ? p->umask : 022);
	reset_signals();
	if (c->seccomp_prog && p->no_new_privileges &&
	    (r = runtime_seccomp_install(c->seccomp_prog, c->seccomp_flags)) < 0)
		return berth_error_set(err, -r, "load seccomp filter");
	/* HOME from the container's passwd when the spec does not set it (runc does the same) */
	const char **env = p->env;
	size_t n_env = 0;
	bool has_home = false;
	for (; env[n_env]; n_env++)
		has_home |= startswith(env[n_env], "HOME=");
	_cleanup_free_ const char **env2 = NULL;
	_cleanup_free_ char *home = NULL;
	if (!has_home) {
		env2 = xcalloc(n_env + 2, sizeof(char *));
		memcpy(env2, env, n_env * sizeof(char *));
		home = xasprintf("HOME=%s", pw.found && *pw.home ? pw.home : "/");
		env2[n_env] = home;
		env = env2;
	}
	execve(exe, (char *const *)p->args, (char *const *)env);
	return berth_error_errno(err, "exec '%s'", exe);
}

_Noreturn void runtime_init_main(struct init_config *c)
{
	struct berth_error *err = NULL;
	struct sync_msg *m = xmalloc(sizeof(*m));
	int stdio[3] = { c->stdio[0], c->stdio[1], c->stdio[2] };
	_cleanup_free_ int *preserve = xcalloc(c->n_preserve_fds + 1, sizeof(int));
	char exe[4096];
	int r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	umask(0);
	for (size_t k = 0; k < c->n_preserve_fds; k++)
		preserve[k] = c->preserve_fds[k];
	if (runtime_sync_recv(c->sync_fd, m) < 0 || m->type != MSG_GO)
		_exit(1);
	c->state_json = m->text;
	if ((r = init_setup(c, &err)) < 0 || (r = find_executable(c->process, exe, sizeof(exe), &err)) < 0 ||
	    (r = setup_fds(c, c->process->terminal ? (int[3]){ -1, -1, -1 } : stdio, preserve, &err)) < 0)
		goto fail;
	prctl(PR_SET_PDEATHSIG, 0);
	if (runtime_sync_send(c->sync_fd, MSG_READY, 0, NULL) < 0)
		_exit(1);
	if ((r = wait_for_start(c, &err)) < 0)
		goto fail_late;
	if ((r = runtime_hooks_run(&c->spec->hooks[RUNTIME_HOOK_START_CONTAINER], "startContainer",
				   c->state_json, &err)) < 0)
		goto fail_late;
	r = init_exec(c, exe, &err);
fail_late:
	/* After ready nobody waits for a sync message: say it on the container's stderr. */
	{
		_cleanup_free_ char *s = berth_error_string(err);
		dprintf(STDERR_FILENO, "berth-runtime: %s\n", s);
	}
	_exit(127);
fail:
	runtime_sync_send_error(c->sync_fd, err, -r);
	_exit(1);
}
