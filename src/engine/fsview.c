/*
 * fsview.c - a container's file system as its processes see it, for the
 * archive API (docker cp): the rootfs with the container's volumes, bind
 * mounts, tmpfs mounts and the engine's /etc files mounted on it, assembled
 * for one call in a mount namespace of its own.
 *
 * dockerd does the same (it mounts the container's mounts for the call). The
 * view is built on a dedicated thread that unshares its file system context
 * and its mount namespace: the mounts we make are invisible to the daemon,
 * the host and the container, and all of them go away with the namespace,
 * on error paths too and if the daemon dies mid-copy. The thread leaves the
 * namespace before it ends, so the last reference (and the unmounting) is
 * dropped before the caller goes on. Walking /proc/<pid>/root instead would
 * show a running container's /proc, /sys and /dev (and any mount it made
 * itself), and does nothing for a stopped container.
 *
 * A running container's tmpfs contents exist only in its own mount
 * namespace: the thread joins it (setns on the init's pidfd, so a reused pid
 * cannot send us elsewhere), resolves each tmpfs destination there with
 * fs_open_in_root() (the container's "/" as root, no magic links), clones
 * that one mount (open_tree(OPEN_TREE_CLONE), not recursive) and returns to
 * the daemon's namespace before anything else. A stopped container gets an
 * empty tmpfs, read-only once assembled: its real one starts empty, so a
 * copy into it would be lost.
 *
 * Targets are resolved in the view's root with fs_open_in_root() and mounts
 * are attached by fd (move_mount), so a symlink planted by the container can
 * only move a mount elsewhere inside the container's view. Sources are host
 * paths the daemon chose (volumes, engine files) or the user gave (binds),
 * resolved on the host as the runtime does. Every cloned tree is made private
 * before it is attached, so nothing mounted in the view propagates to the
 * daemon's mounts (a clone of a shared mount would otherwise be its peer).
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/fs.h"
#include "common/json.h"
#include "engine/fsops.h"

/* ---- the plan (pure) ---- */

void engine_fsview_plan_done(struct fsview_plan *p)
{
	for (size_t i = 0; p && i < p->n; i++) {
		free(p->m[i].dst);
		free(p->m[i].src);
		free(p->m[i].opts);
	}
	if (p) {
		free(p->m);
		*p = (struct fsview_plan){ 0 };
	}
}

static int plan_add(struct fsview_plan *p, const char *dst, const struct fsview_mount *tmpl,
		    struct berth_error **err)
{
	if (!dst || dst[0] != '/')
		return 0; /* never stored (create validates); nothing to mount */
	_cleanup_free_ char *clean = fs_path_clean(dst);
	if (streq(clean, "/"))
		return 0;
	if (p->n >= FSVIEW_MAX_MOUNTS)
		return berth_error_msg(err, E2BIG, "more than %d mounts", FSVIEW_MAX_MOUNTS);
	p->m = xrealloc(p->m, (p->n + 1) * sizeof(*p->m));
	struct fsview_mount *m = &p->m[p->n++];
	*m = *tmpl;
	m->dst = TAKE_PTR(clean);
	m->src = tmpl->src ? xstrdup(tmpl->src) : NULL;
	m->opts = tmpl->opts && *tmpl->opts ? xstrdup(tmpl->opts) : NULL;
	return 0;
}

char *engine_fsview_mount_option(const char *opts, const char *key)
{
	size_t kl = strlen(key);
	for (const char *o = opts; o && *o;) {
		size_t n = strcspn(o, ",");
		if (n > kl && !strncmp(o, key, kl) && o[kl] == '=')
			return xstrndup(o + kl + 1, n - kl - 1);
		if (n == kl && !strncmp(o, key, kl))
			return xstrdup("");
		o += n + (o[n] == ',');
	}
	return NULL;
}

/* One of c->mounts (engine/mounts.c): bind, volume or tmpfs. */
static int plan_mount_point(struct fsview_plan *p, const json_t *m, struct berth_error **err)
{
	const char *type = json_string_value(json_object_get(m, "Type"));
	const char *dst = json_string_value(json_object_get(m, "Destination"));
	const char *src = json_string_value(json_object_get(m, "Source"));
	if (!type || !dst || !src)
		return 0; /* as engine_mounts_to_oci(): not mounted in the container either */
	bool ro = !json_is_true(json_object_get(m, "RW"));
	if (streq(type, "tmpfs")) {
		const char *o = json_string_value(json_object_get(m, "tmpfs"));
		return plan_add(
		    p, dst, &(struct fsview_mount){ .kind = FSVIEW_TMPFS, .ro = ro, .opts = (char *)o }, err);
	}
	struct fsview_mount t = { .kind = FSVIEW_BIND,
				  .src = (char *)src,
				  .ro = ro,
				  .recursive = !json_is_true(json_object_get(m, "nonrecursive")),
				  .create = json_is_true(json_object_get(m, "create_source")) };
	return plan_add(p, dst, &t, err);
}

int engine_fsview_plan_build(const json_t *mounts, const json_t *hostconfig, const char *cdir,
			     struct fsview_plan *ret, struct berth_error **err)
{
	_cleanup_(engine_fsview_plan_done) struct fsview_plan p = { 0 };
	static const char *const files[] = { "hostname", "hosts", "resolv.conf" };
	int r;
	for (size_t i = 0; cdir && i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *src = xasprintf("%s/%s", cdir, files[i]);
		_cleanup_free_ char *dst = xasprintf("/etc/%s", files[i]);
		struct fsview_mount t = {
			.kind = FSVIEW_BIND, .src = src, .recursive = true, .optional = true
		};
		if ((r = plan_add(&p, dst, &t, err)) < 0)
			return r;
	}
	size_t i;
	json_t *m;
	json_array_foreach (mounts, i, m)
		if ((r = plan_mount_point(&p, m, err)) < 0)
			return r;
	const char *k;
	json_t *v;
	json_object_foreach (json_object_get(hostconfig, "Tmpfs"), k, v) {
		const char *o = json_string_value(v);
		_cleanup_free_ char *ro = engine_fsview_mount_option(o, "ro");
		struct fsview_mount t = { .kind = FSVIEW_TMPFS, .ro = ro != NULL, .opts = (char *)o };
		if ((r = plan_add(&p, k, &t, err)) < 0)
			return r;
	}
	*ret = p;
	p = (struct fsview_plan){ 0 };
	return 0;
}

/* ---- assembling the view (on its own thread) ---- */

struct view_ctx {
	struct fsview v;
	fsview_fn fn;
	void *arg;
	struct berth_error **err;
	int r;
	int *trees; /* per plan entry: the detached mount to attach, or -1 */
	int hostns; /* the daemon's mount namespace */
};

static uint64_t mount_id(int fd)
{
	struct statx sx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0 ||
	    !(sx.stx_mask & STATX_MNT_ID))
		return 0;
	return sx.stx_mnt_id;
}

int engine_fsview_mount_of(const struct fsview *v, int fd, int *ret_where)
{
	uint64_t id = mount_id(fd);
	if (!id)
		return -EIO;
	*ret_where = FSVIEW_SUBMOUNT;
	if (id == v->root_mnt_id)
		*ret_where = FSVIEW_ROOTFS;
	for (size_t i = v->plan.n; i-- > 0 && *ret_where == FSVIEW_SUBMOUNT;)
		if (v->mnt_ids[i] == id)
			*ret_where = (int)i;
	return 0;
}

/* Clone the host sources (volumes, binds, engine files) while in the daemon's namespace. */
static int clone_sources(struct view_ctx *x, struct berth_error **err)
{
	for (size_t i = 0; i < x->v.plan.n; i++) {
		const struct fsview_mount *m = &x->v.plan.m[i];
		if (m->kind != FSVIEW_BIND)
			continue;
		unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m->recursive ? AT_RECURSIVE : 0);
		x->trees[i] = open_tree(AT_FDCWD, m->src, flags);
		if (x->trees[i] < 0 && errno == ENOENT && m->create) {
			int r = fs_mkdir_p(m->src, 0755, err);
			if (r < 0)
				return berth_error_wrap(err, r, "mount '%s'", m->dst);
			x->trees[i] = open_tree(AT_FDCWD, m->src, flags);
		}
		if (x->trees[i] < 0 && !(m->optional && errno == ENOENT))
			return berth_error_errno(err, "mount '%s': clone source '%s'", m->dst, m->src);
	}
	return 0;
}

/* Clone the running container's tmpfs mounts from its namespace; always come back. */
static int clone_container_tmpfs(struct view_ctx *x, struct berth_error **err)
{
	if (setns(x->v.op->pidfd, CLONE_NEWNS) < 0) {
		if (errno == ESRCH)
			return 0; /* exited meanwhile: its tmpfs mounts are gone, the view gets empty ones */
		return berth_error_errno(err, "join the mount namespace of container '%s'", x->v.op->ref);
	}
	int r = 0;
	_cleanup_close_ int croot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (croot < 0)
		r = berth_error_errno(err, "open the root of container '%s'", x->v.op->ref);
	for (size_t i = 0; r >= 0 && i < x->v.plan.n; i++) {
		const struct fsview_mount *m = &x->v.plan.m[i];
		if (m->kind != FSVIEW_TMPFS)
			continue;
		_cleanup_close_ int fd =
		    fs_open_in_root(croot, m->dst + 1, O_PATH | O_DIRECTORY, 0, FS_RESOLVE_DEFAULT, err);
		if (fd < 0) {
			r = berth_error_wrap(err, fd, "tmpfs mount '%s' of the running container", m->dst);
			break;
		}
		x->trees[i] = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
		if (x->trees[i] < 0)
			r = berth_error_errno(err, "clone tmpfs mount '%s' of the running container", m->dst);
	}
	/* back before anything else: a failure here ends the thread, which never resolves host paths again */
	if (setns(x->hostns, CLONE_NEWNS) < 0)
		return berth_error_errno(err, "return to the daemon's mount namespace");
	return r;
}

/* An empty tmpfs (a stopped container's, as the container will get it: with its mode). */
static int empty_tmpfs(const struct fsview_mount *m, struct berth_error **err)
{
	_cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return berth_error_errno(err, "tmpfs mount '%s': fsopen", m->dst);
	_cleanup_free_ char *mode = engine_fsview_mount_option(m->opts, "mode");
	if (mode && *mode && fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0)
		return berth_error_errno(err, "tmpfs mount '%s': mode '%s'", m->dst, mode);
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return berth_error_errno(err, "tmpfs mount '%s': create", m->dst);
	int fd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "tmpfs mount '%s': fsmount", m->dst);
	return fd;
}

/* The mount point of dst in the view (created like the runtime does when missing). */
static int mount_target(int rootfd, const char *dst, bool dir, struct berth_error **err)
{
	const char *rel = dst + 1;
	int fd = fs_open_in_root(rootfd, rel, O_PATH, 0, FS_RESOLVE_DEFAULT, NULL);
	if (fd != -ENOENT)
		return fd < 0 ? berth_error_set(err, -fd, "mount point '%s'", dst) : fd;
	if (dir)
		return fs_mkdir_p_in_root(rootfd, rel, 0755, err);
	_cleanup_free_ char *parent = xstrdup(rel);
	char *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		_cleanup_close_ int pfd = fs_mkdir_p_in_root(rootfd, parent, 0755, err);
		if (pfd < 0)
			return pfd;
	}
	fd = fs_open_in_root(rootfd, rel, O_CREAT | O_WRONLY, 0644, FS_RESOLVE_DEFAULT, err);
	return fd < 0 ? berth_error_wrap(err, fd, "create mount point '%s'", dst) : fd;
}

static int attach(struct view_ctx *x, size_t i, struct berth_error **err)
{
	const struct fsview_mount *m = &x->v.plan.m[i];
	int tree = x->trees[i];
	struct stat st;
	if (fstat(tree, &st) < 0)
		return berth_error_errno(err, "mount '%s'", m->dst);
	_cleanup_close_ int target = mount_target(x->v.rootfd, m->dst, S_ISDIR(st.st_mode), err);
	if (target < 0)
		return target;
	struct mount_attr a = { .attr_set = m->ro ? MOUNT_ATTR_RDONLY : 0, .propagation = MS_PRIVATE };
	if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
		return berth_error_errno(err, "mount '%s': set attributes", m->dst);
	if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return berth_error_errno(err, "mount '%s'", m->dst);
	x->v.mnt_ids[i] = mount_id(tree);
	return 0;
}

/* Read-only marks that must wait until every mount point below them exists. */
static int seal(struct view_ctx *x, struct berth_error **err)
{
	struct mount_attr ro = { .attr_set = MOUNT_ATTR_RDONLY };
	for (size_t i = 0; i < x->v.plan.n; i++)
		if (x->v.placeholder[i] && x->trees[i] >= 0 &&
		    mount_setattr(x->trees[i], "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
			return berth_error_errno(err, "make tmpfs mount '%s' read-only", x->v.plan.m[i].dst);
	if (json_is_true(json_object_get(x->v.op->hostconfig, "ReadonlyRootfs")) &&
	    mount_setattr(x->v.rootfd, "", AT_EMPTY_PATH, &ro, sizeof(ro)) < 0)
		return berth_error_errno(err, "make the view's root read-only");
	return 0;
}

static int assemble(struct view_ctx *x, struct berth_error **err)
{
	struct fsop *op = x->v.op;
	/* in the daemon's namespace: the rootfs (pinned by op->rootfd) and the host sources */
	x->v.rootfd = open_tree(op->rootfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (x->v.rootfd < 0)
		return berth_error_errno(err, "clone the rootfs mount of container '%s'", op->ref);
	int r = clone_sources(x, err);
	if (r >= 0 && op->running && op->pidfd < 0)
		r = berth_error_msg(err, ESRCH, "cannot reach the mount namespace of container '%s'",
				    op->ref);
	if (r >= 0 && op->running)
		r = clone_container_tmpfs(x, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < x->v.plan.n; i++)
		if (x->v.plan.m[i].kind == FSVIEW_TMPFS && x->trees[i] < 0) {
			if ((x->trees[i] = empty_tmpfs(&x->v.plan.m[i], err)) < 0)
				return x->trees[i];
			x->v.placeholder[i] = true;
		}
	/*
	 * Our own namespace, private: none of our mounts go out, and no unmount
	 * in the daemon's (say, of this rootfs when the container exits
	 * meanwhile) has to propagate into our copies, which could make it fail.
	 */
	if (unshare(CLONE_NEWNS) < 0)
		return berth_error_errno(err, "unshare the mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return berth_error_errno(err, "make the view's mounts private");
	struct mount_attr priv = { .propagation = MS_PRIVATE };
	if (mount_setattr(x->v.rootfd, "", AT_EMPTY_PATH, &priv, sizeof(priv)) < 0)
		return berth_error_errno(err, "make the view's root private");
	if (move_mount(x->v.rootfd, "", AT_FDCWD, op->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return berth_error_errno(err, "attach the view's root at '%s'", op->rootfs);
	for (size_t i = 0; i < x->v.plan.n; i++)
		if (x->trees[i] >= 0 && (r = attach(x, i, err)) < 0)
			return r;
	if ((r = seal(x, err)) < 0)
		return r;
	x->v.root_mnt_id = mount_id(x->v.rootfd);
	return 0;
}

static void *view_thread(void *arg)
{
	struct view_ctx *x = arg;
	struct berth_error **err = x->err;
	if (unshare(CLONE_FS) < 0) {
		x->r = berth_error_errno(err, "unshare the file system context");
		return NULL;
	}
	x->hostns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (x->hostns < 0) {
		x->r = berth_error_errno(err, "open the daemon's mount namespace");
		return NULL;
	}
	x->r = assemble(x, err);
	if (x->r >= 0)
		x->r = x->fn(&x->v, x->arg, err);
	for (size_t i = 0; i < x->v.plan.n; i++)
		x->trees[i] = safe_close(x->trees[i]);
	x->v.rootfd = safe_close(x->v.rootfd);
	/* leaving drops the namespace's last reference: its mounts go now, not at thread exit */
	(void)setns(x->hostns, CLONE_NEWNS);
	x->hostns = safe_close(x->hostns);
	return NULL;
}

/* Driver volumes (volume-opt device=...) are mounted on their _data at first use, as at start. */
static int mount_volume_drivers(struct fsop *op, struct berth_error **err)
{
	size_t i;
	json_t *m;
	json_array_foreach (op->mounts, i, m) {
		const char *name = json_string_value(json_object_get(m, "Name"));
		const char *type = json_string_value(json_object_get(m, "Type"));
		if (!type || !streq(type, "volume") || !name || !*name)
			continue;
		int r = engine_volume_mount_driver(op->e, name, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int engine_fsview_run(struct fsop *op, fsview_fn fn, void *arg, struct berth_error **err)
{
	_cleanup_free_ char *cdir = engine_container_dir(op->e, op->id);
	struct view_ctx x = {
		.v = { .op = op, .rootfd = -1 }, .fn = fn, .arg = arg, .err = err, .hostns = -1
	};
	int r = engine_fsview_plan_build(op->mounts, op->hostconfig, cdir, &x.v.plan, err);
	if (r < 0)
		return r;
	if ((r = mount_volume_drivers(op, err)) >= 0) {
		size_t n = x.v.plan.n;
		x.trees = xmalloc((n + 1) * sizeof(int));
		for (size_t i = 0; i < n; i++)
			x.trees[i] = -1;
		x.v.placeholder = xcalloc(n + 1, sizeof(bool));
		x.v.mnt_ids = xcalloc(n + 1, sizeof(uint64_t));
		pthread_t t;
		r = -pthread_create(&t, NULL, view_thread, &x);
		if (r < 0)
			r = berth_error_set(err, -r, "start the file system view of container '%s'", op->ref);
		else {
			pthread_join(t, NULL);
			r = x.r;
		}
	}
	free(x.trees);
	free(x.v.placeholder);
	free(x.v.mnt_ids);
	engine_fsview_plan_done(&x.v.plan);
	return r;
}
