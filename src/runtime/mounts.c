/*
 * mounts.c - the container's mount namespace, built by the init before exec:
 * rootfs bind, the spec's mounts, default devices, pivot_root, masked and
 * read-only paths, sysctl.
 *
 * Every mount target is resolved inside the rootfs with fs_open_in_root()
 * (openat2 RESOLVE_IN_ROOT) and mounted through its /proc/self/fd/N magic
 * link, so a symlink planted in the image can never redirect a mount onto the
 * host. After a mount the target is re-opened to address the new mount (for
 * remounts and propagation changes).
 */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "common/fs.h"
#include "runtime/cgroups.h"
#include "runtime/container.h"

#define FD_PATH_MAX 32 /* "/proc/self/fd/" + an int */

static void fd_path(int fd, char buf[FD_PATH_MAX])
{
	snprintf(buf, FD_PATH_MAX, "/proc/self/fd/%d", fd);
}

/* Flags a bind remount must keep (the kernel refuses to drop locked ones). */
static unsigned long mount_flags_of(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	return f;
}

/* Create the mount point: a directory, or an empty file when binding a non-directory. */
static int make_target(int rootfd, const char *dest, bool file, struct berth_error **err)
{
	if (!file)
		return fs_mkdir_p_in_root(rootfd, dest, 0755, err);
	_cleanup_free_ char *parent = xstrdup(dest);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = 0;
		int pfd = fs_mkdir_p_in_root(rootfd, parent, 0755, err);
		if (pfd < 0)
			return pfd;
		close(pfd);
	}
	int fd = fs_open_in_root(rootfd, dest, O_PATH, 0, 0, NULL);
	if (fd >= 0)
		return fd;
	fd = fs_open_in_root(rootfd, dest, O_CREAT | O_WRONLY, 0644, FS_RESOLVE_NO_FOLLOW, err);
	if (fd < 0)
		return fd;
	close(fd);
	return fs_open_in_root(rootfd, dest, O_PATH, 0, 0, err);
}

static int remount_and_propagate(int rootfd, const struct runtime_mount *m, bool bind,
				 struct berth_error **err)
{
	unsigned long want = m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
					 MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME);
	if (!(bind && want) && !m->propagation)
		return 0;
	_cleanup_close_ int fd = fs_open_in_root(rootfd, m->destination, O_PATH, 0, 0, err);
	if (fd < 0)
		return fd;
	char p[FD_PATH_MAX];
	fd_path(fd, p);
	if (bind && want) {
		unsigned long keep = mount_flags_of(p) & ~m->clear;
		if (mount(NULL, p, NULL,
			  MS_REMOUNT | MS_BIND | want | (keep & ~MS_RDONLY) | (want & MS_RDONLY), NULL) < 0)
			return berth_error_errno(err, "remount '%s'", m->destination);
	}
	if (m->propagation && mount(NULL, p, NULL, m->propagation, NULL) < 0)
		return berth_error_errno(err, "set propagation of '%s'", m->destination);
	return 0;
}

/* Recreate the host's co-mount aliases ("cpu" -> "cpu,cpuacct") in the container's tmpfs. */
static int cgroup_v1_aliases(int tmpfd, struct berth_error **err)
{
	_cleanup_closedir_ DIR *d = opendir(runtime_cgroup_root());
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char target[256];
		if (de->d_type != DT_LNK)
			continue;
		ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
		if (n <= 0 || strchr(target, '/'))
			continue;
		target[n] = 0;
		if (symlinkat(target, tmpfd, de->d_name) < 0 && errno != EEXIST)
			return berth_error_errno(err, "symlink cgroup alias '%s'", de->d_name);
	}
	return 0;
}

static int mount_cgroup_v1(const struct init_config *c, int tmpfd, unsigned long flags,
			   struct berth_error **err)
{
	bool cgns = c->spec->ns[RUNTIME_NS_CGROUP].enabled;
	int r = cgroup_v1_aliases(tmpfd, err);
	if (r < 0)
		return r;
	for (const char *const *ctl = runtime_cgroup_v1_controllers(); *ctl; ctl++) {
		char p[FD_PATH_MAX + 64];
		if (streq(*ctl, "unified"))
			continue;
		if (mkdirat(tmpfd, *ctl, 0755) < 0 && errno != EEXIST)
			return berth_error_errno(err, "mkdir cgroup mount point '%s'", *ctl);
		snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", tmpfd, *ctl);
		bool unified = streq(*ctl, "unified");
		if (cgns) {
			const char *data = streq(*ctl, "systemd") ? "none,name=systemd"
					   : unified              ? NULL
								  : *ctl;
			r = mount("cgroup", p, unified ? "cgroup2" : "cgroup", flags, data);
		} else {
			_cleanup_free_ char *src = xasprintf("%s/%s%s", runtime_cgroup_root(), *ctl,
							     c->cgroup_path ? c->cgroup_path : "");
			r = mount(src, p, NULL, MS_BIND | MS_REC, NULL);
			if (r == 0 && (flags & MS_RDONLY))
				r = mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | flags, NULL);
		}
		if (r < 0) {
			if (unified || streq(*ctl, "systemd"))
				continue;
			return berth_error_errno(err, "mount cgroup '%s'", *ctl);
		}
	}
	return 0;
}

/* type "cgroup": v1 gets a tmpfs with one mount per hierarchy; v2 a cgroup2 mount. */
static int mount_cgroup(const struct init_config *c, int rootfd, int target, const struct runtime_mount *m,
			struct berth_error **err)
{
	char p[FD_PATH_MAX];
	unsigned long flags = m->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
	fd_path(target, p);
	if (c->cgroup_kind == CGROUP_V2) {
		if (c->spec->ns[RUNTIME_NS_CGROUP].enabled) {
			if (mount("cgroup2", p, "cgroup2", flags, NULL) < 0)
				return berth_error_errno(err, "mount cgroup2 on '%s'", m->destination);
			return 0;
		}
		_cleanup_free_ char *src =
		    xasprintf("%s%s", runtime_cgroup_root(), c->cgroup_path ? c->cgroup_path : "");
		if (mount(src, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			return berth_error_errno(err, "bind cgroup '%s' on '%s'", src, m->destination);
		return remount_and_propagate(rootfd, m, true, err);
	}
	if (mount("tmpfs", p, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") <
	    0)
		return berth_error_errno(err, "mount tmpfs on '%s'", m->destination);
	_cleanup_close_ int tmpfd = fs_open_in_root(rootfd, m->destination, O_PATH | O_DIRECTORY, 0, 0, err);
	if (tmpfd < 0)
		return tmpfd;
	/* the tmpfs itself stays writable and the hybrid cgroup2 is not exposed, as with runc */
	return mount_cgroup_v1(c, tmpfd, flags, err);
}

static int mount_one(const struct init_config *c, int rootfd, const struct runtime_mount *m,
		     struct berth_error **err)
{
	_cleanup_free_ char *src = NULL;
	bool file = false;
	if (m->bind) {
		struct stat st;
		src = m->source[0] == '/' || !c->spec->bundle
			  ? xstrdup(m->source)
			  : xasprintf("%s/%s", c->spec->bundle, m->source);
		if (stat(src, &st) < 0)
			return berth_error_errno(err, "bind source '%s'", src);
		file = !S_ISDIR(st.st_mode);
	}
	_cleanup_close_ int target = make_target(rootfd, m->destination, file, err);
	if (target < 0)
		return berth_error_wrap(err, target, "mount point '%s'", m->destination);
	char p[FD_PATH_MAX];
	fd_path(target, p);
	if (m->type && streq(m->type, "cgroup"))
		return mount_cgroup(c, rootfd, target, m, err);
	if (m->bind) {
		if (mount(src, p, NULL, MS_BIND | (m->rbind ? MS_REC : 0), NULL) < 0)
			return berth_error_errno(err, "bind-mount '%s' on '%s'", src, m->destination);
		return remount_and_propagate(rootfd, m, true, err);
	}
	unsigned long flags = m->flags & ~(MS_REMOUNT);
	if (mount(m->source ? m->source : m->type, p, m->type, flags, m->data) < 0) {
		int e = errno;
		/* sysfs needs a new network namespace; without one, bind the host's (as runc). */
		if (streq(m->type, "sysfs") && e == EPERM && !c->spec->ns[RUNTIME_NS_NET].enabled) {
			if (mount("/sys", p, NULL, MS_BIND | MS_REC, NULL) < 0)
				return berth_error_errno(err, "bind-mount '/sys' on '%s'", m->destination);
			return remount_and_propagate(rootfd, m, true, err);
		}
		return berth_error_set(err, e, "mount '%s' (type '%s') on '%s'", m->source ? m->source : "",
				       m->type, m->destination);
	}
	return remount_and_propagate(rootfd, m, false, err);
}

static const struct {
	const char *name;
	unsigned maj, min;
} default_devices[] = {
	{ "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
	{ "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

/* mknod, or (in a user namespace, where mknod is not allowed) bind the host's node. */
static int make_device(const struct init_config *c, int rootfd, const char *path, char type, unsigned maj,
		       unsigned min, mode_t mode, uid_t uid, gid_t gid, struct berth_error **err)
{
	_cleanup_free_ char *parent = xstrdup(path);
	char *slash = strrchr(parent, '/');
	const char *name = slash ? slash + 1 : parent;
	if (slash)
		*slash = 0;
	_cleanup_close_ int dfd = fs_mkdir_p_in_root(rootfd, *parent ? parent : "/", 0755, err);
	if (dfd < 0)
		return dfd;
	_cleanup_close_ int dirfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return berth_error_errno(err, "open '%s'", parent);
	unlinkat(dirfd, name, 0);
	if (c->userns) {
		int f = openat(dirfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (f < 0)
			return berth_error_errno(err, "create '%s'", path);
		close(f);
		_cleanup_close_ int t = fs_open_in_root(rootfd, path, O_PATH, 0, FS_RESOLVE_NO_FOLLOW, err);
		if (t < 0)
			return t;
		char p[FD_PATH_MAX];
		fd_path(t, p);
		if (mount(path, p, NULL, MS_BIND, NULL) < 0)
			return berth_error_errno(err, "bind-mount device '%s'", path);
		return 0;
	}
	mode_t kind = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
	if (mknodat(dirfd, name, kind | (mode & 07777), makedev(maj, min)) < 0)
		return berth_error_errno(err, "mknod '%s'", path);
	if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "chown '%s'", path);
	return 0;
}

static int create_devices(const struct init_config *c, int rootfd, struct berth_error **err)
{
	static const char *const links[][2] = {
		{ "/proc/self/fd", "fd" },       { "/proc/self/fd/0", "stdin" },
		{ "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
		{ "pts/ptmx", "ptmx" },
	};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++) {
		char path[32];
		snprintf(path, sizeof(path), "/dev/%s", default_devices[i].name);
		if ((r = make_device(c, rootfd, path, 'c', default_devices[i].maj, default_devices[i].min,
				     0666, 0, 0, err)) < 0)
			return r;
	}
	for (size_t i = 0; i < c->spec->n_devices; i++) {
		const struct runtime_device *d = &c->spec->devices[i];
		if ((r = make_device(c, rootfd, d->path, d->type, (unsigned)d->major, (unsigned)d->minor,
				     d->has_mode ? d->mode : 0666, d->has_uid ? d->uid : 0,
				     d->has_gid ? d->gid : 0, err)) < 0)
			return r;
	}
	_cleanup_close_ int dev = fs_open_in_root(rootfd, "/dev", O_RDONLY | O_DIRECTORY, 0, 0, err);
	if (dev < 0)
		return dev;
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
			return berth_error_errno(err, "symlink '/dev/%s'", links[i][1]);
	return 0;
}

static bool dev_is_bound(const struct runtime_spec *s)
{
	for (size_t i = 0; i < s->n_mounts; i++)
		if (streq(s->mounts[i].destination, "/dev") && s->mounts[i].bind)
			return true;
	return false;
}

int runtime_rootfs_prepare(const struct init_config *c, struct berth_error **err)
{
	const struct runtime_spec *s = c->spec;
	unsigned long prop = s->rootfs_propagation ? s->rootfs_propagation : MS_SLAVE | MS_REC;
	if (prop & MS_SHARED)
		prop = MS_SLAVE | MS_REC; /* made shared after pivot_root, which refuses shared parents */
	if (mount(NULL, "/", NULL, prop | MS_REC, NULL) < 0)
		return berth_error_errno(err, "make '/' %s", (prop & MS_PRIVATE) ? "private" : "slave");
	if (mount(s->root_path, s->root_path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return berth_error_errno(err, "bind-mount rootfs '%s'", s->root_path);
	_cleanup_close_ int rootfd = open(s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return berth_error_errno(err, "open rootfs '%s'", s->root_path);
	for (size_t i = 0; i < s->n_mounts; i++) {
		int r = mount_one(c, rootfd, &s->mounts[i], err);
		if (r < 0)
			return berth_error_wrap(err, r, "'mounts[%zu]'", i);
	}
	runtime_timing_mark(c->timings, "mounts");
	if (!dev_is_bound(s)) {
		int r = create_devices(c, rootfd, err);
		if (r < 0)
			return r;
	}
	/* process.cwd is created if missing, resolved inside the root (runc does the same). */
	int cwd = fs_mkdir_p_in_root(rootfd, c->process->cwd, 0755, err);
	if (cwd < 0)
		return berth_error_wrap(err, cwd, "'process.cwd'");
	close(cwd);
	return 0;
}

int runtime_rootfs_pivot(const struct init_config *c, struct berth_error **err)
{
	const char *root = c->spec->root_path;
	if (chdir(root) < 0)
		return berth_error_errno(err, "chdir to rootfs '%s'", root);
	if (c->no_pivot) {
		if (mount(root, "/", NULL, MS_MOVE, NULL) < 0)
			return berth_error_errno(err, "move rootfs to '/'");
		if (chroot(".") < 0)
			return berth_error_errno(err, "chroot");
	} else {
		_cleanup_close_ int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (oldroot < 0)
			return berth_error_errno(err, "open '/'");
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			return berth_error_errno(err, "pivot_root to '%s'", root);
		if (fchdir(oldroot) < 0)
			return berth_error_errno(err, "fchdir to the old root");
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			return berth_error_errno(err, "make the old root slave");
		if (umount2(".", MNT_DETACH) < 0)
			return berth_error_errno(err, "unmount the old root");
	}
	if (chdir("/") < 0)
		return berth_error_errno(err, "chdir '/'");
	if (c->spec->rootfs_propagation && mount(NULL, "/", NULL, c->spec->rootfs_propagation, NULL) < 0)
		return berth_error_errno(err, "set rootfs propagation");
	return 0;
}

static bool sysctl_allowed(const struct runtime_spec *s, const char *key)
{
	static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb",         "kernel.msgmni",
					   "kernel.sem",    "kernel.shmall",         "kernel.shmmax",
					   "kernel.shmmni", "kernel.shm_rmid_forced" };
	if (startswith(key, "net.") && s->ns[RUNTIME_NS_NET].enabled)
		return true;
	if (s->ns[RUNTIME_NS_IPC].enabled) {
		if (startswith(key, "fs.mqueue."))
			return true;
		for (size_t i = 0; i < ARRAY_SIZE(ipc); i++)
			if (streq(key, ipc[i]))
				return true;
	}
	if (s->ns[RUNTIME_NS_UTS].enabled &&
	    (streq(key, "kernel.hostname") || streq(key, "kernel.domainname")))
		return true;
	return false;
}

static int apply_sysctl(const struct runtime_spec *s, struct berth_error **err)
{
	for (size_t i = 0; s->sysctl && s->sysctl[i]; i += 2) {
		const char *key = s->sysctl[i], *val = s->sysctl[i + 1];
		if (!sysctl_allowed(s, key))
			return berth_error_msg(
			    err, EPERM,
			    "'linux.sysctl.%s': not namespaced by the container's namespaces, "
			    "refusing to change the host",
			    key);
		char path[512];
		int n = snprintf(path, sizeof(path), "/proc/sys/%s", key);
		if (n < 0 || (size_t)n >= sizeof(path))
			return berth_error_msg(err, ENAMETOOLONG, "'linux.sysctl.%s': name too long", key);
		for (char *p = path + 10; *p; p++)
			if (*p == '.')
				*p = '/';
		_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || write(fd, val, strlen(val)) < 0)
			return berth_error_errno(err, "'linux.sysctl.%s': write '%s'", key, val);
	}
	return 0;
}

static int mask_path(int rootfd, const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd =
	    fs_open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0, FS_RESOLVE_NO_FOLLOW, NULL);
	if (fd < 0)
		return 0; /* nothing to mask */
	struct stat st;
	char p[FD_PATH_MAX];
	if (fstat(fd, &st) < 0)
		return berth_error_errno(err, "stat masked path '%s'", path);
	fd_path(fd, p);
	int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, NULL)
				    : mount("/dev/null", p, NULL, MS_BIND, NULL);
	if (r < 0)
		return berth_error_errno(err, "mask '%s'", path);
	return 0;
}

static int readonly_path(int rootfd, const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd =
	    fs_open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0, FS_RESOLVE_NO_FOLLOW, NULL);
	if (fd < 0)
		return 0;
	char p[FD_PATH_MAX];
	fd_path(fd, p);
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		return berth_error_errno(err, "bind '%s' read-only", path);
	_cleanup_close_ int fd2 =
	    fs_open_in_root(rootfd, path, O_PATH | O_NOFOLLOW, 0, FS_RESOLVE_NO_FOLLOW, err);
	if (fd2 < 0)
		return fd2;
	fd_path(fd2, p);
	unsigned long keep = mount_flags_of(p);
	if (mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
		return berth_error_errno(err, "remount '%s' read-only", path);
	return 0;
}

int runtime_rootfs_finish(const struct init_config *c, struct berth_error **err)
{
	const struct runtime_spec *s = c->spec;
	int r = apply_sysctl(s, err);
	if (r < 0 || !s->ns[RUNTIME_NS_MNT].enabled) /* no mount namespace: nothing to remount */
		return r;
	_cleanup_close_ int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return berth_error_errno(err, "open '/'");
	for (const char **p = s->readonly_paths; p && *p; p++)
		if ((r = readonly_path(rootfd, *p, err)) < 0)
			return r;
	for (const char **p = s->masked_paths; p && *p; p++)
		if ((r = mask_path(rootfd, *p, err)) < 0)
			return r;
	if (s->root_readonly) {
		unsigned long keep = mount_flags_of("/");
		if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, NULL) < 0)
			return berth_error_errno(err, "remount the root read-only");
	}
	return 0;
}
