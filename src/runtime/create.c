/*
 * create.c - runtime_create/run/exec on the runtime's side: validate, make
 * the state directory and cgroup, clone3() the init with every namespace flag
 * at once, write id maps, place it in the cgroup, drive the sync protocol
 * (container.h) and record state. Any failure tears down what was made:
 * the child is killed and reaped, the cgroup removed, the state dir deleted.
 */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "runtime/cgroups.h"
#include "runtime/container.h"

static int64_t timing_last;

void runtime_timing_mark(bool on, const char *phase)
{
	if (!on)
		return;
	int64_t now = proc_now_ns();
	if (timing_last && log_enabled(LOG_LEVEL_DEBUG)) {
		char us[32], pid[16];
		snprintf(us, sizeof(us), "%lld", (long long)((now - timing_last) / 1000));
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		log_fields(LOG_LEVEL_DEBUG, "timing", "phase", phase, "us", us, "pid", pid, NULL);
	}
	timing_last = now;
}

/* What create/run/exec build and must undo on failure. */
struct launch {
	const struct runtime_ctx *ctx;
	const char *id;
	char *dir; /* state dir, owned; NULL for exec */
	bool dir_created;
	const struct cgroup_ops *cg;
	char *cg_path; /* owned */
	bool cg_created;
	pid_t pid;
	int pidfd;
	int sync_fd;
	struct sock_fprog *prog;
};

static void launch_abort(struct launch *l)
{
	if (l->pid > 0) {
		proc_signal(l->pid, l->pidfd, SIGKILL);
		while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	l->pidfd = safe_close(l->pidfd);
	if (l->cg_created)
		l->cg->destroy(l->cg_path, NULL);
	if (l->dir_created)
		fs_rm_rf(l->dir, NULL);
}

static void launch_done(struct launch *l)
{
	l->sync_fd = safe_close(l->sync_fd);
	free(l->dir);
	free(l->cg_path);
	runtime_seccomp_prog_free(l->prog);
}

static int clone_init(int flags, int *ret_pidfd)
{
	struct clone_args args = { 0 };
	int pidfd = -1;
	args.flags = (uint64_t)flags | CLONE_PIDFD;
	args.pidfd = (uint64_t)(uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	long pid = syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0)
		return negative_errno();
	if (pid > 0)
		*ret_pidfd = pidfd;
	return (int)pid;
}

static int write_id_map(pid_t pid, const char *file, const struct runtime_id_map *m, size_t n,
			struct berth_error **err)
{
	struct strbuf sb = STRBUF_INIT;
	char path[64];
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int r = fd < 0 || write(fd, sb.buf, sb.len) < 0 ? negative_errno() : 0;
	safe_close(fd);
	strbuf_release(&sb);
	if (r < 0)
		return berth_error_set(err, -r, "write '%s'", path);
	return 0;
}

static int cap_last_cap(void)
{
	static int last = -1;
	if (last < 0) {
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		last = 40;
		if (fs_read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", 16, &sb, NULL) >= 0)
			last = atoi(sb.buf);
		if (last <= 0 || last > 63)
			last = 40;
	}
	return last;
}

/* Parent side after clone: maps, cgroup, GO, hooks, READY. */
typedef int (*after_go_fn)(void *arg, struct berth_error **err);

/*
 * after_go (may be NULL) runs while the init builds its rootfs: create records
 * its state there, overlapping the file system latency with the init's work.
 */
static int drive_child(struct launch *l, const struct runtime_spec *spec, const struct init_config *cfg,
		       const char *bundle, after_go_fn after_go, void *arg, struct berth_error **err)
{
	int r;
	if (cfg->userns && !cfg->exec) {
		if ((r = write_id_map(l->pid, "uid_map", spec->uid_mappings, spec->n_uid_mappings, err)) <
			0 ||
		    (r = write_id_map(l->pid, "gid_map", spec->gid_mappings, spec->n_gid_mappings, err)) < 0)
			return r;
	}
	if (l->cg_path && (r = l->cg->add_pid(l->cg_path, l->pid, err)) < 0)
		return berth_error_wrap(err, r, "add pid %d to cgroup '%s'", (int)l->pid, l->cg_path);
	_cleanup_free_ char *state =
	    runtime_state_hook_json(l->id, RUNTIME_STATUS_CREATING, l->pid, bundle, spec->annotations);
	if ((r = runtime_sync_send(l->sync_fd, MSG_GO, 0, state)) < 0)
		return berth_error_set(err, -r, "start container init");
	runtime_timing_mark(l->ctx->timings, "clone+go");
	if (after_go && (r = after_go(arg, err)) < 0)
		return r;
	_cleanup_free_ struct sync_msg *m = xmalloc(sizeof(*m));
	for (;;) {
		if (runtime_sync_recv(l->sync_fd, m) < 0)
			return berth_error_msg(err, EPIPE, "container init exited during setup");
		if (m->type == MSG_READY)
			return 0;
		if (m->type == MSG_ERROR)
			return berth_error_msg(err, m->code > 0 ? m->code : EIO, "%s", m->text);
		if (m->type != MSG_HOOKS)
			return berth_error_msg(err, EPROTO, "unexpected message %d from container init",
					       m->type);
		if ((r = runtime_hooks_run(&spec->hooks[RUNTIME_HOOK_PRESTART], "prestart", state, err)) <
			0 ||
		    (r = runtime_hooks_run(&spec->hooks[RUNTIME_HOOK_CREATE_RUNTIME], "createRuntime", state,
					   err)) < 0)
			return r;
		runtime_sync_send(l->sync_fd, MSG_HOOKS_DONE, 0, NULL);
	}
}

/*
 * With a new user namespace, namespaces joined by path (network, ipc, uts,
 * cgroup) belong to the host's user namespace: the init could not setns() into
 * them once inside its own. The parent joins them around clone3 instead and
 * returns to its own afterwards (self_fds[t] >= 0 for each one it joined).
 */
static int parent_join(const struct init_config *cfg, int self_fds[RUNTIME_NS_MAX], struct berth_error **err)
{
	static const enum runtime_ns_type kinds[] = { RUNTIME_NS_NET, RUNTIME_NS_IPC, RUNTIME_NS_UTS,
						      RUNTIME_NS_CGROUP };
	for (int t = 0; t < RUNTIME_NS_MAX; t++)
		self_fds[t] = -1;
	if (cfg->exec || !cfg->userns)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct runtime_namespace *ns = &cfg->spec->ns[kinds[i]];
		if (!ns->enabled || !ns->path)
			continue;
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/ns/%s", runtime_ns_proc_name(kinds[i]));
		int cur = open(self, O_RDONLY | O_CLOEXEC);
		_cleanup_close_ int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (cur < 0 || fd < 0 || setns(fd, runtime_ns_clone_flag(kinds[i])) < 0) {
			int e = errno;
			safe_close(cur);
			return berth_error_set(err, e, "join %s namespace '%s'", runtime_ns_name(kinds[i]),
					       ns->path);
		}
		self_fds[kinds[i]] = cur;
	}
	return 0;
}

static void parent_unjoin(int self_fds[RUNTIME_NS_MAX])
{
	for (int t = 0; t < RUNTIME_NS_MAX; t++)
		if (self_fds[t] >= 0) {
			if (setns(self_fds[t], runtime_ns_clone_flag(t)) < 0)
				log_debug("restore %s namespace: %s", runtime_ns_name(t), strerror(errno));
			self_fds[t] = safe_close(self_fds[t]);
		}
}

/*
 * linux.timeOffsets: offsets can only be written before a process enters the
 * namespace, so unshare one for our children, write them, and let clone3
 * place the init in it; *ret_self is our own time namespace, to go back to.
 */
static int timens_prepare(const struct runtime_spec *s, int *ret_self, struct berth_error **err)
{
	char buf[128];
	int self = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return berth_error_errno(err, "'linux.timeOffsets': open time namespace");
	if (unshare(0x00000080) < 0) {
		close(self);
		return berth_error_errno(err, "'linux.timeOffsets': unshare time namespace");
	}
	snprintf(buf, sizeof(buf), "monotonic %lld %lld\nboottime %lld %lld\n",
		 (long long)s->time_offset_monotonic[0], (long long)s->time_offset_monotonic[1],
		 (long long)s->time_offset_boottime[0], (long long)s->time_offset_boottime[1]);
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, strlen(buf)) < 0) {
		int e = errno;
		safe_close(fd);
		setns(self, 0x00000080);
		close(self);
		return berth_error_set(err, e, "'linux.timeOffsets': write offsets");
	}
	close(fd);
	*ret_self = self;
	return 0;
}

/*
 * Fork the init with everything in cfg. Joining a pid namespace, and a time
 * namespace with offsets, is done here around clone3 and undone after it:
 * both only affect children.
 */
static int spawn_init(struct launch *l, struct init_config *cfg, int flags, const char *pid_join,
		      struct berth_error **err)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return berth_error_errno(err, "socketpair");
	_cleanup_close_ int self_pidns = -1, join_fd = -1;
	if (pid_join) {
		self_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		join_fd = cfg->exec ? fcntl(cfg->join_pidfd, F_DUPFD_CLOEXEC, 3)
				    : open(pid_join, O_RDONLY | O_CLOEXEC);
		if (self_pidns < 0 || join_fd < 0 || setns(join_fd, CLONE_NEWPID) < 0) {
			close(sp[0]);
			close(sp[1]);
			return berth_error_errno(err, "join pid namespace '%s'", pid_join);
		}
	}
	_cleanup_close_ int self_timens = -1;
	if (!cfg->exec && cfg->spec->has_time_offsets) {
		int r = timens_prepare(cfg->spec, &self_timens, err);
		if (r < 0) {
			close(sp[0]);
			close(sp[1]);
			return r;
		}
		flags &= ~0x00000080; /* the init enters the prepared namespace at fork */
	}
	int self_fds[RUNTIME_NS_MAX];
	int r = parent_join(cfg, self_fds, err);
	if (r < 0) {
		parent_unjoin(self_fds);
		close(sp[0]);
		close(sp[1]);
		return r;
	}
	for (int t = 0; t < RUNTIME_NS_MAX; t++)
		if (self_fds[t] >= 0)
			cfg->parent_joined |= runtime_ns_clone_flag(t);
	int pidfd = -1;
	int pid = clone_init(flags, &pidfd);
	if (pid == 0) {
		close(sp[0]);
		cfg->sync_fd = sp[1];
		runtime_init_main(cfg);
	}
	int e = errno;
	parent_unjoin(self_fds);
	if (self_timens >= 0 && setns(self_timens, 0x00000080) < 0)
		log_debug("restore time namespace: %s", strerror(errno));
	if (pid_join && setns(self_pidns, CLONE_NEWPID) < 0)
		log_debug("restore pid namespace: %s", strerror(errno));
	close(sp[1]);
	l->sync_fd = sp[0];
	if (pid < 0)
		return berth_error_set(err, e, "clone3 container init");
	l->pid = pid;
	l->pidfd = pidfd;
	return 0;
}

static int new_ns_flags(const struct runtime_spec *s)
{
	int flags = 0;
	for (int t = 0; t < RUNTIME_NS_MAX; t++) {
		if (!s->ns[t].enabled || s->ns[t].path)
			continue;
		/* cgroup: unshared by the init after it is in its cgroup */
		if (t == RUNTIME_NS_CGROUP)
			continue;
		/* with a joined user namespace the others are unshared by the init (owned by it) */
		flags |= runtime_ns_clone_flag(t);
	}
	return flags;
}

/* AppArmor/SELinux labels on a host without that LSM: warn and continue. */
static void lsm_warnings(const struct runtime_process *p, const char *mount_label, struct strbuf *w)
{
	if (!w)
		return;
	if (p->apparmor_profile && *p->apparmor_profile && access("/sys/kernel/security/apparmor", F_OK) < 0)
		strbuf_addf(
		    w, "'process.apparmorProfile': AppArmor is not enabled on this host, ignoring '%s'\n",
		    p->apparmor_profile);
	bool selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
	if (p->selinux_label && *p->selinux_label && !selinux)
		strbuf_addf(w, "'process.selinuxLabel': SELinux is not enabled on this host, ignoring '%s'\n",
			    p->selinux_label);
	if (mount_label && *mount_label && !selinux)
		strbuf_addf(w, "'linux.mountLabel': SELinux is not enabled on this host, ignoring '%s'\n",
			    mount_label);
}

/*
 * A process cannot be given a capability the runtime itself cannot hold: one
 * outside its bounding set makes capset fail in the container (exit 127 after
 * a "successful" start). Refuse it at create, naming it. The bounding list
 * only limits, so it may name anything.
 */
static int check_caps_held(const struct runtime_process *p, struct berth_error **err)
{
	if (!p->has_caps)
		return 0;
	const struct {
		const char *name;
		uint64_t mask;
	} sets[] = { { "effective", p->caps.effective },
		     { "permitted", p->caps.permitted },
		     { "inheritable", p->caps.inheritable },
		     { "ambient", p->caps.ambient } };
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++)
		for (int c = 0; c < 64; c++) {
			if (!(sets[i].mask & (1ull << c)) ||
			    prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) == 1)
				continue;
			char num[32];
			snprintf(num, sizeof(num), "capability %d", c);
			return berth_error_msg(err, EPERM,
					       "'process.capabilities.%s': %s is not in the runtime's own "
					       "bounding set, so no process it starts can have it (drop it "
					       "from the configuration)",
					       sets[i].name, runtime_cap_name(c) ? runtime_cap_name(c) : num);
		}
	return 0;
}

static int check_spec(const struct runtime_spec *s, const struct runtime_create_opts *o,
		      struct berth_error **err)
{
	lsm_warnings(&s->process, s->mount_label, o->warnings);
	struct stat st;
	if (!s->has_process)
		return berth_error_msg(err, EINVAL, "'process': required to create a container");
	if (stat(s->root_path, &st) < 0)
		return berth_error_errno(err, "'root.path': rootfs '%s'", s->root_path);
	if (!S_ISDIR(st.st_mode))
		return berth_error_msg(err, ENOTDIR, "'root.path': rootfs '%s' is not a directory",
				       s->root_path);
	if (!s->ns[RUNTIME_NS_MNT].enabled) {
		/* the runtime's own mount namespace: nothing may be mounted in it (as runc) */
		if ((s->masked_paths && s->masked_paths[0]) || (s->readonly_paths && s->readonly_paths[0]))
			return berth_error_msg(err, EINVAL,
					       "'linux.%s': cannot restrict paths without a private mount "
					       "namespace (add {\"type\": \"mount\"} to linux.namespaces)",
					       s->masked_paths && s->masked_paths[0] ? "maskedPaths"
										     : "readonlyPaths");
		if (s->root_readonly)
			return berth_error_msg(err, EINVAL,
					       "'root.readonly': needs a private mount namespace (add "
					       "{\"type\": \"mount\"} to linux.namespaces)");
		if (s->n_mounts && o->warnings)
			strbuf_addf(o->warnings,
				    "'mounts': not mounted and 'root.path' not entered without a mount "
				    "namespace: the process sees the runtime's filesystem\n");
	}
	int r = check_caps_held(&s->process, err);
	if (r < 0)
		return r;
	if (s->ns[RUNTIME_NS_USER].path && new_ns_flags(s))
		return berth_error_msg(err, EOPNOTSUPP,
				       "'linux.namespaces': joining a user namespace while creating other "
				       "namespaces is not supported");
	if (s->process.terminal && !o->console_socket && o->console_socket_fd < 0)
		return berth_error_msg(err, EINVAL,
				       "'process.terminal': a console socket is required (--console-socket)");
	return 0;
}

/* Compiled seccomp programs live next to the containers' state (seccomp.c). */
static char *filter_cache_dir(const struct runtime_ctx *ctx)
{
	return xasprintf("%s/.seccomp", ctx->state_root ? ctx->state_root : RUNTIME_DEFAULT_STATE_ROOT);
}

static int make_state_dir(struct launch *l, struct berth_error **err)
{
	const char *root = l->ctx->state_root ? l->ctx->state_root : RUNTIME_DEFAULT_STATE_ROOT;
	if (mkdir(root, 0700) < 0 && errno != EEXIST) {
		int r = fs_mkdir_p(root, 0700, err);
		if (r < 0)
			return berth_error_wrap(err, r, "state root");
	}
	l->dir = runtime_state_dir(l->ctx, l->id);
	if (mkdir(l->dir, 0711) < 0) {
		if (errno == EEXIST)
			return berth_error_msg(err, EEXIST, "container '%s' already exists", l->id);
		return berth_error_errno(err, "create state directory '%s'", l->dir);
	}
	l->dir_created = true;
	return 0;
}

static int setup_cgroup(struct launch *l, const struct runtime_spec *s, struct berth_error **err)
{
	int r = runtime_cgroup_path_resolve(s->cgroups_path, l->id, &s->resources, s->has_resources,
					    l->ctx->systemd_cgroup, &l->cg_path, err);
	if (r < 0 || !l->cg_path)
		return r;
	l->cg = runtime_cgroup_ops_for(runtime_cgroup_detect());
	if (!l->cg)
		return berth_error_msg(err, ENOTSUP, "no cgroup file system at '%s'", runtime_cgroup_root());
	if ((r = l->cg->create(l->cg_path, err)) < 0)
		return berth_error_wrap(err, r, "create cgroup '%s'", l->cg_path);
	l->cg_created = true;
	if (s->has_resources && (r = l->cg->apply(l->cg_path, &s->resources, err)) < 0)
		return berth_error_wrap(err, r, "apply 'linux.resources' to cgroup '%s'", l->cg_path);
	return 0;
}

/*
 * The state's "owner": the user's name in /etc/passwd (read directly, as runc
 * does, not through NSS: berth-shim is a static binary, where getpwuid()
 * would dlopen the NSS modules). NULL when not listed.
 */
static char *owner_name(uid_t uid)
{
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return NULL;
	char *name = NULL;
	struct passwd *pw;
	while (!name && (pw = fgetpwent(f)))
		if (pw->pw_uid == uid)
			name = xstrdup(pw->pw_name);
	fclose(f);
	return name;
}

static int save_created_inner(struct launch *l, const struct runtime_spec *s, const char *bundle,
			      bool in_memory, struct berth_error **err)
{
	char created[RFC3339_MAX];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, created);
	_cleanup_free_ char *owner = owner_name(getuid());
	struct container_state st = {
		.st = { .id = (char *)l->id,
			.pid = l->pid,
			.bundle = (char *)bundle,
			.rootfs = s->root_path,
			.created = created,
			.owner = owner ? owner : (char *)"",
			.annotations = s->annotations },
		.pid_start = runtime_proc_start_time(l->pid),
		.cgroup_kind = l->cg_path ? (int)runtime_cgroup_detect() : CGROUP_NONE,
		.cgroup_path = l->cg_path,
		.userns = s->ns[RUNTIME_NS_USER].enabled,
	};
	_cleanup_close_ int dfd = open(l->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r;
	if (dfd < 0)
		return berth_error_errno(err, "open '%s'", l->dir);
	if (in_memory) {
		/* no config.json on disk to come back to (exec, hooks): keep a copy */
		_cleanup_free_ char *config = json_dump_compact(s->doc);
		if ((r = runtime_write_file_at(dfd, "config.json", config, strlen(config), err)) < 0)
			return r;
	} else if (s->hooks[RUNTIME_HOOK_POSTSTART].n || s->hooks[RUNTIME_HOOK_POSTSTOP].n) {
		/* start and delete run these later even if the bundle changes */
		_cleanup_json_ json_t *h =
		    json_pack("{s:s, s:{s:s}, s:O}", "ociVersion", s->oci_version, "root", "path", "/",
			      "hooks", json_object_get(s->doc, "hooks"));
		_cleanup_free_ char *text = h ? json_dump_compact(h) : NULL;
		if (!text || (r = runtime_write_file_at(dfd, "hooks.json", text, strlen(text), err)) < 0)
			return text ? r : berth_error_msg(err, EINVAL, "encode hooks");
	}
	if ((r = runtime_state_save(l->ctx, &st, err)) < 0)
		return r;
	return 0;
}

struct save_args {
	struct launch *l;
	const struct runtime_spec *s;
	const char *bundle;
	bool in_memory;
};

static int save_created(void *arg, struct berth_error **err)
{
	struct save_args *a = arg;
	struct launch *l = a->l;
	const struct runtime_spec *s = a->s;
	const char *bundle = a->bundle;
	bool in_memory = a->in_memory;
	int ret = save_created_inner(l, s, bundle, in_memory, err);
	runtime_timing_mark(l->ctx->timings, "state");
	return ret;
}

/* create (run_mode false: the init waits on exec.fifo) or the first half of run. */
static int do_create(struct launch *l, const char *bundle_in, const struct runtime_create_opts *o,
		     bool run_mode, const struct runtime_spec **ret_spec, struct runtime_spec **owned,
		     struct berth_error **err)
{
	_cleanup_free_ char *bundle = realpath(bundle_in ? bundle_in : ".", NULL);
	int r;
	if (!bundle)
		return berth_error_errno(err, "bundle '%s'", bundle_in ? bundle_in : ".");
	if ((r = runtime_id_validate(l->id, err)) < 0)
		return r;
	const struct runtime_spec *s = o->spec;
	if (!s) {
		if ((r = runtime_spec_load(bundle, owned, err)) < 0)
			return r;
		s = *owned;
	}
	*ret_spec = s;
	runtime_timing_mark(l->ctx->timings, "spec");
	if ((r = check_spec(s, o, err)) < 0 || (r = make_state_dir(l, err)) < 0)
		return r;
	runtime_timing_mark(l->ctx->timings, "state-dir");
	if ((r = setup_cgroup(l, s, err)) < 0)
		return r;
	runtime_timing_mark(l->ctx->timings, "cgroup");
	_cleanup_free_ char *sc_cache = filter_cache_dir(l->ctx);
	if (s->seccomp && (r = runtime_seccomp_compile(s->seccomp, sc_cache, &l->prog, err)) < 0)
		return r;
	runtime_timing_mark(l->ctx->timings, "seccomp");
	struct init_config cfg = {
		.spec = s,
		.process = &s->process,
		.fifo_fd = -1,
		.console_fd = o->console_socket_fd,
		.stdio = { o->stdio[0], o->stdio[1], o->stdio[2] },
		.preserve_fds = o->preserve_fds,
		.n_preserve_fds = o->n_preserve_fds,
		.no_pivot = o->no_pivot,
		.no_new_keyring = o->no_new_keyring,
		.wait_start_msg = run_mode,
		.userns = s->ns[RUNTIME_NS_USER].enabled && !s->ns[RUNTIME_NS_USER].path,
		.cgroup_kind = l->cg_path ? (int)runtime_cgroup_detect() : (int)runtime_cgroup_detect(),
		.cgroup_path = l->cg_path,
		.cap_last = cap_last_cap(),
		.seccomp_prog = l->prog,
		.seccomp_flags = s->seccomp ? s->seccomp->flags : 0,
		.timings = l->ctx->timings,
	};
	_cleanup_close_ int console = -1, fifo = -1;
	if (s->process.terminal && o->console_socket_fd < 0) {
		if ((console = runtime_console_socket_connect(o->console_socket, err)) < 0)
			return console;
		cfg.console_fd = console;
	}
	if (!run_mode) {
		_cleanup_free_ char *fifo_path = xasprintf("%s/exec.fifo", l->dir);
		if (mkfifo(fifo_path, 0600) < 0 || (fifo = open(fifo_path, O_RDWR | O_CLOEXEC)) < 0)
			return berth_error_errno(err, "create '%s'", fifo_path);
		cfg.fifo_fd = fifo;
	}
	runtime_timing_mark(l->ctx->timings, "prepare");
	if ((r = spawn_init(l, &cfg, new_ns_flags(s), s->ns[RUNTIME_NS_PID].path, err)) < 0)
		return r;
	fifo = safe_close(fifo);
	console = safe_close(console);
	_cleanup_free_ char *cfg_path = xasprintf("%s/config.json", bundle);
	/* a spec given in memory without a config.json in the bundle needs a copy for exec and hooks */
	struct save_args sa = { l, s, bundle, o->spec != NULL && access(cfg_path, F_OK) < 0 };
	if ((r = drive_child(l, s, &cfg, bundle, save_created, &sa, err)) < 0)
		return r;
	runtime_timing_mark(l->ctx->timings, "init-ready");
	if (o->pid_file) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d", (int)l->pid);
		if ((r = runtime_write_file_at(AT_FDCWD, o->pid_file, buf, strlen(buf), err)) < 0)
			return berth_error_wrap(err, r, "--pid-file");
	}
	return 0;
}

int runtime_create(const struct runtime_ctx *ctx, const char *id, const char *bundle,
		   const struct runtime_create_opts *opts, pid_t *ret_pid, int *ret_pidfd,
		   struct berth_error **err)
{
	struct launch l = { .ctx = ctx, .id = id, .pidfd = -1, .sync_fd = -1 };
	_cleanup_spec_ struct runtime_spec *owned = NULL;
	const struct runtime_spec *s = NULL;
	runtime_timing_mark(ctx->timings, "begin");
	int r = do_create(&l, bundle, opts, false, &s, &owned, err);
	if (r < 0) {
		launch_abort(&l);
		launch_done(&l);
		return berth_error_wrap(err, r, "create container '%s'", id);
	}
	if (ret_pid)
		*ret_pid = l.pid;
	if (ret_pidfd)
		*ret_pidfd = TAKE_FD(l.pidfd);
	safe_close(l.pidfd);
	launch_done(&l);
	return 0;
}

int runtime_run(const struct runtime_ctx *ctx, const char *id, const char *bundle,
		const struct runtime_create_opts *opts, pid_t *ret_pid, int *ret_pidfd, int *ret_status,
		struct berth_error **err)
{
	struct launch l = { .ctx = ctx, .id = id, .pidfd = -1, .sync_fd = -1 };
	_cleanup_spec_ struct runtime_spec *owned = NULL;
	const struct runtime_spec *s = NULL;
	runtime_timing_mark(ctx->timings, "begin");
	int r = do_create(&l, bundle, opts, true, &s, &owned, err);
	if (r >= 0 && (r = runtime_sync_send(l.sync_fd, MSG_START, 0, NULL)) < 0)
		berth_error_set(err, -r, "start container init");
	if (r < 0) {
		launch_abort(&l);
		launch_done(&l);
		return berth_error_wrap(err, r, "run container '%s'", id);
	}
	runtime_timing_mark(ctx->timings, "started");
	if (s->hooks[RUNTIME_HOOK_POSTSTART].n) {
		_cleanup_free_ char *st =
		    runtime_state_hook_json(id, RUNTIME_STATUS_RUNNING, l.pid, s->bundle, s->annotations);
		runtime_hooks_run_warn(&s->hooks[RUNTIME_HOOK_POSTSTART], "poststart", st);
	}
	if (ret_pid)
		*ret_pid = l.pid;
	if (!opts->detach) {
		int status = 0;
		r = proc_wait(l.pid, l.pidfd, -1, &status, err);
		safe_close(l.pidfd);
		launch_done(&l);
		if (r < 0)
			return r;
		if (ret_status)
			*ret_status = status;
		return runtime_delete(ctx, id, true, err);
	}
	if (ret_pidfd)
		*ret_pidfd = TAKE_FD(l.pidfd);
	safe_close(l.pidfd);
	launch_done(&l);
	return 0;
}

/* exec: the target must be created or running; its spec gives namespaces and seccomp. */
static int exec_target(const struct runtime_ctx *ctx, const char *id, struct container_state *st,
		       struct runtime_spec **spec, int *cpidfd, struct berth_error **err)
{
	enum runtime_status status = runtime_state_status(ctx, st);
	if (status != RUNTIME_STATUS_RUNNING && status != RUNTIME_STATUS_CREATED)
		return berth_error_msg(err, EINVAL, "cannot exec in a %s container",
				       runtime_status_name(status));
	int r = runtime_state_load_spec(ctx, st, spec, err);
	if (r < 0)
		return r;
	if ((*cpidfd = proc_pidfd_open(st->st.pid)) < 0)
		return berth_error_set(err, -*cpidfd, "open container init %d", (int)st->st.pid);
	return 0;
}

static int exec_console(const struct runtime_create_opts *o, int *console, struct berth_error **err)
{
	if (!o->process->terminal || o->console_socket_fd >= 0)
		return 0;
	if (!o->console_socket)
		return berth_error_msg(err, EINVAL,
				       "'process.terminal': a console socket is required (--console-socket)");
	*console = runtime_console_socket_connect(o->console_socket, err);
	return *console < 0 ? *console : 0;
}

/* Spawn, drive to READY, record the pid, release. */
static int exec_launch(struct launch *l, struct init_config *cfg, const struct runtime_spec *spec,
		       const struct container_state *st, const char *pid_file, struct berth_error **err)
{
	int r;
	if ((r = spawn_init(l, cfg, 0, spec->ns[RUNTIME_NS_PID].enabled ? "container" : NULL, err)) < 0 ||
	    (r = drive_child(l, spec, cfg, st->st.bundle, NULL, NULL, err)) < 0)
		return r;
	if (pid_file) {
		char buf[16];
		snprintf(buf, sizeof(buf), "%d", (int)l->pid);
		if ((r = runtime_write_file_at(AT_FDCWD, pid_file, buf, strlen(buf), err)) < 0)
			return r;
	}
	if ((r = runtime_sync_send(l->sync_fd, MSG_START, 0, NULL)) < 0)
		return berth_error_set(err, -r, "start exec process");
	return 0;
}

int runtime_exec(const struct runtime_ctx *ctx, const char *id, const struct runtime_create_opts *o,
		 pid_t *ret_pid, int *ret_pidfd, int *ret_status, struct berth_error **err)
{
	struct launch l = { .ctx = ctx, .id = id, .pidfd = -1, .sync_fd = -1 };
	struct container_state st = { 0 };
	_cleanup_spec_ struct runtime_spec *spec = NULL;
	_cleanup_close_ int cpidfd = -1, console = -1;
	if (!o->process)
		return berth_error_msg(err, EINVAL, "exec in container '%s': no process given", id);
	lsm_warnings(o->process, NULL, o->warnings);
	int r = check_caps_held(o->process, err);
	if (r < 0)
		return berth_error_wrap(err, r, "exec in container '%s'", id);
	r = runtime_state_load(ctx, id, &st, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *sc_cache = filter_cache_dir(ctx);
	if ((r = exec_target(ctx, id, &st, &spec, &cpidfd, err)) < 0 ||
	    (r = exec_console(o, &console, err)) < 0 ||
	    (spec->seccomp && (r = runtime_seccomp_compile(spec->seccomp, sc_cache, &l.prog, err)) < 0))
		goto out;
	int join = 0;
	for (int t = 0; t < RUNTIME_NS_MAX; t++)
		if (spec->ns[t].enabled && t != RUNTIME_NS_PID)
			join |= runtime_ns_clone_flag(t);
	struct init_config cfg = {
		.spec = spec,
		.process = o->process,
		.fifo_fd = -1,
		.console_fd = console >= 0 ? console : o->console_socket_fd,
		.stdio = { o->stdio[0], o->stdio[1], o->stdio[2] },
		.preserve_fds = o->preserve_fds,
		.n_preserve_fds = o->n_preserve_fds,
		.no_new_keyring = true,
		.exec = true,
		.join_pidfd = cpidfd,
		.join_flags = join,
		.wait_start_msg = true,
		.userns = spec->ns[RUNTIME_NS_USER].enabled,
		.cap_last = cap_last_cap(),
		.seccomp_prog = l.prog,
		.seccomp_flags = spec->seccomp ? spec->seccomp->flags : 0,
	};
	if (*st.cgroup_path) {
		l.cg = runtime_cgroup_ops_for(st.cgroup_kind);
		l.cg_path = xstrdup(st.cgroup_path);
	}
	if ((r = exec_launch(&l, &cfg, spec, &st, o->pid_file, err)) < 0) {
		launch_abort(&l); /* cg_created is false: the container's cgroup stays */
		goto out;
	}
	if (ret_pid)
		*ret_pid = l.pid;
	if (!o->detach) {
		int wst = 0;
		r = proc_wait(l.pid, l.pidfd, -1, &wst, err);
		if (r >= 0 && ret_status)
			*ret_status = wst;
	} else if (ret_pidfd)
		*ret_pidfd = TAKE_FD(l.pidfd);
	safe_close(l.pidfd);
	l.pidfd = -1;
out:
	launch_done(&l);
	runtime_container_state_done(&st);
	return r < 0 ? berth_error_wrap(err, r, "exec in container '%s'", id) : r;
}
