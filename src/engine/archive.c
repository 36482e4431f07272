/*
 * archive.c - Docker's archive API on a container's file system: path stat
 * (HEAD), tar of a path (GET) and extraction of a tar (PUT), for created,
 * running and exited containers. Each call works in the container's fsview
 * (fsview.c): the rootfs with its volumes, bind mounts, tmpfs mounts and
 * /etc files mounted on it, so paths in and across mounts behave as inside
 * the container, as with dockerd.
 *
 * Safety: the container is hostile. Every parent directory is resolved with
 * fs_open_in_root() (openat2 RESOLVE_IN_ROOT) from the view's root, the tree
 * is walked with directory fds and O_NOFOLLOW (never by path), files are
 * opened O_NONBLOCK and re-checked with fstat, so swapping a directory for a
 * symlink while we walk can only make us read inside the container's view.
 * Extraction goes through the image unpacker (image_extract_tar), rooted at
 * the destination; read-only mounts are read-only in the view as well.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "engine/fsops.h"
#include "image/image.h"

#define ARCHIVE_BUF       (128u << 10)
/* Directory nesting we follow when taring (each level holds a directory fd). */
#define ARCHIVE_MAX_DEPTH 256

const char *const engine_fsop_engine_mountpoints[] = {
	"etc/hosts",  "etc/hostname", "etc/resolv.conf", "dev/pts", "dev/shm",
	"dev/mqueue", "dev/console",  "sys/fs/cgroup",   NULL,
};

int engine_fsop_begin(struct engine *e, const char *ref, bool need_rootfs, struct fsop *op,
		      struct berth_error **err)
{
	*op = (struct fsop){ .e = e, .rootfd = -1, .pidfd = -1, .ref = ref };
	int r = engine_container_find(e, ref, &op->c, err);
	if (r < 0)
		return r;
	struct container *c = op->c;
	pthread_mutex_lock(&c->op_lock);
	op->locked = true;
	pthread_mutex_lock(&e->lock);
	op->running = c->state == ENGINE_RUNNING || c->state == ENGINE_PAUSED;
	_cleanup_free_ char *rootfs = c->rootfs ? xstrdup(c->rootfs) : NULL;
	_cleanup_free_ char *image_id = c->image_id ? xstrdup(c->image_id) : NULL;
	op->id = xstrdup(c->id);
	op->config = json_deep_copy(c->config);
	op->hostconfig = json_deep_copy(c->hostconfig);
	op->mounts = c->mounts ? json_deep_copy(c->mounts) : json_array();
	/* the init's pidfd, to join its mount namespace (fsview.c) without a pid reuse race */
	if (op->running) {
		op->pidfd = c->pidfd >= 0 ? fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3) : proc_pidfd_open(c->pid);
		op->pidfd = MAX(op->pidfd, -1);
	}
	pthread_mutex_unlock(&e->lock);
	if (!need_rootfs)
		return 0;
	if (op->running && rootfs) {
		op->rootfs = TAKE_PTR(rootfs);
	} else {
		r = rootfs ? e->img->mount(e->img_ctx, op->id, &op->rootfs, err)
			   : e->img->prepare(e->img_ctx, op->id, image_id, &op->rootfs, err);
		if (r < 0)
			return r;
		op->mounted = true;
		if (!rootfs) {
			pthread_mutex_lock(&e->lock);
			c->rootfs = xstrdup(op->rootfs);
			engine_container_save(e, c, NULL);
			pthread_mutex_unlock(&e->lock);
		}
	}
	op->rootfd = open(op->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (op->rootfd < 0)
		return berth_error_errno(err, "open container rootfs '%s'", op->rootfs);
	if (op->running) { /* the fd pins the mount: let lifecycle operations go on */
		pthread_mutex_unlock(&c->op_lock);
		op->locked = false;
	}
	return 0;
}

void engine_fsop_end(struct fsop *op)
{
	op->rootfd = safe_close(op->rootfd);
	op->pidfd = safe_close(op->pidfd);
	if (op->mounted)
		op->e->img->unmount(op->e->img_ctx, op->id, NULL);
	if (op->c) {
		if (op->locked)
			pthread_mutex_unlock(&op->c->op_lock);
		pthread_mutex_lock(&op->e->lock);
		engine_container_unref(op->c);
		pthread_mutex_unlock(&op->e->lock);
	}
	free(op->rootfs);
	free(op->id);
	json_decref(op->config);
	json_decref(op->hostconfig);
	json_decref(op->mounts);
	*op = (struct fsop){ .rootfd = -1, .pidfd = -1 };
}

uint32_t engine_fsop_go_mode(mode_t m)
{
	uint32_t g = m & 0777;
	switch (m & S_IFMT) {
	case S_IFDIR: g |= 1u << 31; break;
	case S_IFLNK: g |= 1u << 27; break;
	case S_IFIFO: g |= 1u << 25; break;
	case S_IFSOCK: g |= 1u << 24; break;
	case S_IFBLK: g |= 1u << 26; break;
	case S_IFCHR: g |= 1u << 26 | 1u << 21; break;
	default: break;
	}
	if (m & S_ISUID)
		g |= 1u << 23;
	if (m & S_ISGID)
		g |= 1u << 22;
	if (m & S_ISVTX)
		g |= 1u << 20;
	return g;
}

/* A container path taken apart: cleaned absolute form, parent, base, trailing "/" or "/.". */
struct cpath {
	char *abs;    /* "/a/b" ("/" for the root) */
	char *parent; /* "a" relative to the root ("" for top-level entries) */
	char *base;   /* "b"; NULL for the root */
	char *name;   /* Docker's stat name: base, "." for "x/.", "/" for the root */
	bool follow;  /* trailing "/" or "/.": the last component is followed */
};

static void cpath_done(struct cpath *p)
{
	free(p->abs);
	free(p->parent);
	free(p->base);
	free(p->name);
}

static int cpath_parse(const char *path, struct cpath *p, struct berth_error **err)
{
	*p = (struct cpath){ 0 };
	if (!path || !*path)
		return berth_error_msg(err, EINVAL, "path is required");
	if (strlen(path) > 4096)
		return berth_error_msg(err, ENAMETOOLONG, "path too long");
	_cleanup_free_ char *withroot = xasprintf("/%s", path);
	size_t n = strlen(path);
	bool dot = (n == 1 && path[0] == '.') || endswith(path, "/.");
	p->follow = dot || path[n - 1] == '/';
	p->abs = fs_path_clean(withroot);
	if (streq(p->abs, "/")) {
		p->parent = xstrdup("");
		p->name = xstrdup(dot ? "." : "/");
		p->follow = true;
		return 0;
	}
	char *slash = strrchr(p->abs, '/');
	p->parent = xstrndup(p->abs + 1, (size_t)(slash - p->abs) > 0 ? (size_t)(slash - p->abs) - 1 : 0);
	p->base = xstrdup(slash + 1);
	p->name = xstrdup(dot ? "." : p->base);
	return 0;
}

static int not_found(struct fsop *op, const char *path, struct berth_error **err)
{
	berth_error_free(err ? *err : NULL);
	if (err)
		*err = NULL;
	return berth_error_msg(err, ENOENT, "Could not find the file %s in container %s", path, op->ref);
}

/*
 * Resolve p to (dirfd, base): the node is base inside dirfd, or dirfd itself
 * when *ret_base is NULL (root, or a followed last component).
 */
static int cpath_resolve(const struct fsview *v, const struct cpath *p, int *ret_dirfd, const char **ret_base,
			 struct berth_error **err)
{
	const char *rel = p->abs + 1;
	int fd;
	if (p->follow || !p->base) {
		fd = fs_open_in_root(v->rootfd, *rel ? rel : ".", O_PATH, 0, FS_RESOLVE_DEFAULT, err);
		*ret_base = NULL;
	} else {
		fd = fs_open_in_root(v->rootfd, *p->parent ? p->parent : ".", O_PATH | O_DIRECTORY, 0,
				     FS_RESOLVE_DEFAULT, err);
		*ret_base = p->base;
	}
	if (fd == -ENOENT || fd == -ENOTDIR)
		return not_found(v->op, p->abs, err);
	if (fd < 0)
		return fd;
	struct stat st;
	if (*ret_base && fstatat(fd, *ret_base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		int r = errno == ENOENT || errno == ENOTDIR ? not_found(v->op, p->abs, err)
							    : berth_error_errno(err, "stat '%s'", p->abs);
		close(fd);
		return r;
	}
	*ret_dirfd = fd;
	return 0;
}

static int node_stat(int dirfd, const char *base, struct stat *st)
{
	return base ? fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW) : fstat(dirfd, st);
}

/*
 * Container path a symlink points to (resolved inside the view; lexically when
 * dangling). The view's root is attached at op->rootfs in the view's namespace,
 * so the kernel's name for the resolved file starts with that path.
 */
static char *link_target(const struct fsview *v, const struct cpath *p, int dirfd, const char *base)
{
	const char *rootfs = v->op->rootfs;
	_cleanup_close_ int fd = fs_open_in_root(v->rootfd, p->abs + 1, O_PATH, 0, FS_RESOLVE_DEFAULT, NULL);
	if (fd >= 0) {
		_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
		char host[4096];
		ssize_t n = readlink(proc, host, sizeof(host) - 1);
		size_t rl = strlen(rootfs);
		if (n > 0) {
			host[n] = '\0';
			if (strncmp(host, rootfs, rl) == 0 && (host[rl] == '/' || !host[rl]))
				return xstrdup(host[rl] ? host + rl : "/");
		}
	}
	char target[4096];
	ssize_t n = readlinkat(dirfd, base, target, sizeof(target) - 1);
	if (n < 0)
		return xstrdup("");
	target[n] = '\0';
	_cleanup_free_ char *joined =
	    target[0] == '/' ? xstrdup(target) : xasprintf("/%s/%s", p->parent, target);
	return fs_path_clean(joined);
}

static json_t *stat_json(const struct fsview *v, const struct cpath *p, int dirfd, const char *base,
			 const struct stat *st)
{
	char mtime[RFC3339_MAX];
	util_format_rfc3339(&st->st_mtim, mtime);
	_cleanup_free_ char *target = S_ISLNK(st->st_mode) && base ? link_target(v, p, dirfd, base) : NULL;
	return json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", p->name, "size", (json_int_t)st->st_size,
			 "mode", (json_int_t)engine_fsop_go_mode(st->st_mode), "mtime", mtime, "linkTarget",
			 target ? target : "");
}

static int stat_in_view(const struct fsview *v, const char *path, struct cpath *p, int *ret_dirfd,
			const char **ret_base, json_t **ret, struct berth_error **err)
{
	int r = cpath_parse(path, p, err);
	if (r < 0)
		return r;
	int dirfd = -1;
	r = cpath_resolve(v, p, &dirfd, ret_base, err);
	if (r < 0)
		return r;
	struct stat st;
	if (node_stat(dirfd, *ret_base, &st) < 0) {
		r = berth_error_errno(err, "stat '%s'", p->abs);
		close(dirfd);
		return r;
	}
	*ret = stat_json(v, p, dirfd, *ret_base, &st);
	*ret_dirfd = dirfd;
	return 0;
}

/* What one archive call asks of the view (arguments in, results out). */
struct archive_call {
	const char *path;
	int fd; /* GET: the tar's destination; PUT: its source */
	const struct engine_archive_put_opts *put;
	json_t *stat;
};

static int stat_fn(struct fsview *v, void *arg, struct berth_error **err)
{
	struct archive_call *a = arg;
	struct cpath p = { 0 };
	int dirfd = -1;
	const char *base;
	int r = stat_in_view(v, a->path, &p, &dirfd, &base, &a->stat, err);
	safe_close(dirfd);
	cpath_done(&p);
	return r;
}

/* Run fn on ref's view (the container pinned for the call). */
static int archive_run(struct engine *e, const char *ref, fsview_fn fn, struct archive_call *a,
		       struct berth_error **err)
{
	struct fsop op;
	int r = engine_fsop_begin(e, ref, true, &op, err);
	if (r >= 0)
		r = engine_fsview_run(&op, fn, a, err);
	engine_fsop_end(&op);
	return r;
}

int engine_archive_stat(struct engine *e, const char *ref, const char *path, json_t **ret,
			struct berth_error **err)
{
	struct archive_call a = { .path = path, .fd = -1 };
	int r = archive_run(e, ref, stat_fn, &a, err);
	if (r >= 0)
		*ret = TAKE_PTR(a.stat);
	json_decref(a.stat);
	return r;
}

/* ---- tar writer ---- */

struct tarw {
	struct archive *a;
	struct archive_entry_linkresolver *lr;
	char *buf;
	int out_fd;
	int write_errno;
};

static la_ssize_t tarw_write(struct archive *a, void *ud, const void *buf, size_t len)
{
	struct tarw *t = ud;
	int r = fs_write_all(t->out_fd, buf, len);
	if (r < 0) {
		t->write_errno = -r;
		archive_set_error(a, -r, "write failed");
		return -1;
	}
	return (la_ssize_t)len;
}

static int tarw_emit(struct tarw *t, struct archive_entry *e, int datafd, struct berth_error **err)
{
	if (archive_write_header(t->a, e) != ARCHIVE_OK)
		return berth_error_msg(err, t->write_errno ? t->write_errno : EIO,
				       "write tar header '%s': %s", archive_entry_pathname(e),
				       archive_error_string(t->a));
	if (datafd < 0 || archive_entry_size(e) <= 0)
		return 0;
	int64_t left = archive_entry_size(e);
	while (left > 0) {
		ssize_t n = read(datafd, t->buf, (size_t)MIN((int64_t)ARCHIVE_BUF, left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_errno(err, "read '%s'", archive_entry_pathname(e));
		if (n == 0) { /* shrank while we read: pad, the header is written */
			memset(t->buf, 0, ARCHIVE_BUF);
			n = (ssize_t)MIN((int64_t)ARCHIVE_BUF, left);
		}
		if (archive_write_data(t->a, t->buf, (size_t)n) < 0)
			return berth_error_msg(err, t->write_errno ? t->write_errno : EIO,
					       "write tar data: %s", archive_error_string(t->a));
		left -= n;
	}
	return 0;
}

/* Open the node's data: regular files only, never following, never blocking. */
static int open_data(int dirfd, const char *base, const struct stat *st)
{
	int fd;
	if (base) {
		fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	} else {
		_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", dirfd);
		fd = open(proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	}
	struct stat now;
	if (fd >= 0 && (fstat(fd, &now) < 0 || !S_ISREG(now.st_mode) || now.st_ino != st->st_ino ||
			now.st_dev != st->st_dev))
		fd = safe_close(fd);
	return fd;
}

static int tar_node(struct tarw *t, int dirfd, const char *base, const char *arcname, unsigned depth,
		    struct berth_error **err);

static int tar_children(struct tarw *t, int pfd, const char *base, const char *arcname, unsigned depth,
			struct berth_error **err)
{
	if (depth >= ARCHIVE_MAX_DEPTH)
		return berth_error_msg(err, ELOOP, "'%s': directories nested too deeply", arcname);
	int fd = openat(pfd, base ? base : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "open directory '%s'", arcname);
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return berth_error_errno(err, "open directory '%s'", arcname);
	}
	/* sorted names make the archive reproducible */
	struct dirent **list = NULL;
	struct dirent *de;
	size_t n = 0, cap = 0;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (n == cap)
			list = xrealloc(list, (cap = cap ? cap * 2 : 32) * sizeof(*list));
		size_t sz = offsetof(struct dirent, d_name) + strlen(de->d_name) + 1;
		list[n] = xmalloc(MAX(sz, sizeof(struct dirent)));
		memcpy(list[n++], de, sz);
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), (int (*)(const void *, const void *))alphasort);
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		if (r >= 0) {
			_cleanup_free_ char *child = xasprintf("%s/%s", arcname, list[i]->d_name);
			r = tar_node(t, dirfd(d), list[i]->d_name, child, depth + 1, err);
		}
		free(list[i]);
	}
	free(list);
	return r;
}

static int tar_node(struct tarw *t, int dirfd, const char *base, const char *arcname, unsigned depth,
		    struct berth_error **err)
{
	struct stat st;
	if (node_stat(dirfd, base, &st) < 0)
		return errno == ENOENT ? 0 : berth_error_errno(err, "stat '%s'", arcname);
	if (S_ISSOCK(st.st_mode))
		return 0; /* like docker: sockets are not archived */
	struct archive_entry *e = archive_entry_new();
	archive_entry_copy_stat(e, &st);
	archive_entry_set_pathname(e, arcname);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = base ? readlinkat(dirfd, base, target, sizeof(target) - 1) : -1;
		target[n > 0 ? n : 0] = '\0';
		archive_entry_set_symlink(e, target);
	}
	if (!S_ISREG(st.st_mode))
		archive_entry_set_size(e, 0);
	struct archive_entry *spare = NULL;
	archive_entry_linkify(t->lr, &e, &spare);
	int r = 0;
	if (e) {
		_cleanup_close_ int fd = -1;
		if (S_ISREG(st.st_mode) && archive_entry_size(e) > 0 && !archive_entry_hardlink(e)) {
			fd = open_data(dirfd, base, &st);
			if (fd < 0) /* changed under us: archive it empty rather than fail */
				archive_entry_set_size(e, 0);
		}
		r = tarw_emit(t, e, fd, err);
	}
	archive_entry_free(e);
	archive_entry_free(spare);
	if (r >= 0 && S_ISDIR(st.st_mode))
		r = tar_children(t, dirfd, base, arcname, depth, err);
	return r;
}

static int tar_path(int dirfd, const char *base, const char *name, int out_fd, struct berth_error **err)
{
	struct tarw t = { .out_fd = out_fd, .buf = xmalloc(ARCHIVE_BUF) };
	t.a = archive_write_new();
	archive_write_set_format_pax_restricted(t.a);
	archive_write_set_bytes_in_last_block(t.a, 1);
	t.lr = archive_entry_linkresolver_new();
	archive_entry_linkresolver_set_strategy(t.lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	int r = archive_write_open(t.a, &t, NULL, tarw_write, NULL) == ARCHIVE_OK
		    ? 0
		    : berth_error_msg(err, EIO, "open tar writer: %s", archive_error_string(t.a));
	if (r >= 0)
		r = tar_node(&t, dirfd, base, name, 0, err);
	if (r >= 0 && archive_write_close(t.a) != ARCHIVE_OK)
		r = berth_error_msg(err, t.write_errno ? t.write_errno : EIO, "write tar: %s",
				    archive_error_string(t.a));
	archive_write_free(t.a);
	archive_entry_linkresolver_free(t.lr);
	free(t.buf);
	return r;
}

static int get_fn(struct fsview *v, void *arg, struct berth_error **err)
{
	struct archive_call *a = arg;
	struct cpath p = { 0 };
	int dirfd = -1;
	const char *base = NULL;
	int r = stat_in_view(v, a->path, &p, &dirfd, &base, &a->stat, err);
	if (r >= 0) {
		const char *name = streq(p.name, "/") ? "." : p.name;
		r = tar_path(dirfd, base, name, a->fd, err);
	}
	safe_close(dirfd);
	cpath_done(&p);
	return r;
}

int engine_archive_get(struct engine *e, const char *ref, const char *path, int out_fd, json_t **ret_stat,
		       struct berth_error **err)
{
	struct archive_call a = { .path = path, .fd = out_fd };
	int r = archive_run(e, ref, get_fn, &a, err);
	if (r >= 0 && ret_stat)
		*ret_stat = TAKE_PTR(a.stat);
	json_decref(a.stat);
	return r;
}

/* Owner for copyUIDGID: the container's User looked up in its /etc/passwd. */
static int put_owner(struct fsop *op, struct image_extract_opts *x, struct berth_error **err)
{
	const char *user = json_string_value(json_object_get(op->config, "User"));
	uint32_t uid = 0, gid = 0;
	if (user && *user) {
		int r = engine_spec_resolve_user(op->rootfs, user, &uid, &gid, err);
		if (r < 0)
			return r;
	}
	x->uid = uid;
	x->gid = gid;
	return 0;
}

/*
 * May a copy land in the directory dirfd? docker's rules, decided by the mount
 * that holds it: the rootfs unless ReadonlyRootfs, a mount point unless it is
 * read-only. Copies into a stopped container's tmpfs are refused too: the
 * container starts with an empty one, so the files would never be seen.
 */
static int put_check_writable(const struct fsview *v, int dirfd, struct berth_error **err)
{
	int where, r = engine_fsview_mount_of(v, dirfd, &where);
	if (r < 0)
		return berth_error_set(err, r, "find the mount of the extraction point");
	if (where == FSVIEW_ROOTFS) {
		if (json_is_true(json_object_get(v->op->hostconfig, "ReadonlyRootfs")))
			return berth_error_msg(err, EACCES, "container rootfs is marked read-only");
		return 0;
	}
	const struct fsview_mount *m = where >= 0 ? &v->plan.m[where] : NULL;
	if (m && v->placeholder[where])
		return berth_error_msg(err, ENOTCONN,
				       "Container %s is not running: its tmpfs mount %s starts empty, a copy "
				       "into it would be lost",
				       v->op->ref, m->dst);
	struct statvfs sv;
	if ((m && m->ro) || (fstatvfs(dirfd, &sv) == 0 && (sv.f_flag & ST_RDONLY)))
		return berth_error_msg(err, EACCES, "mounted volume is marked read-only");
	return 0;
}

static int put_fn(struct fsview *v, void *arg, struct berth_error **err)
{
	struct archive_call *a = arg;
	struct cpath p = { 0 };
	int r = cpath_parse(a->path, &p, err);
	_cleanup_close_ int dirfd = -1;
	if (r >= 0) {
		/* the destination follows symlinks, its last component too (docker's EvalSymlinks) */
		const char *rel = p.abs + 1;
		dirfd = fs_open_in_root(v->rootfd, *rel ? rel : ".", O_PATH, 0, FS_RESOLVE_DEFAULT, err);
		if (dirfd == -ENOENT || dirfd == -ENOTDIR)
			r = not_found(v->op, p.abs, err);
		else if (dirfd < 0)
			r = dirfd;
	}
	struct stat st;
	if (r >= 0 && fstat(dirfd, &st) < 0)
		r = berth_error_errno(err, "stat '%s'", p.abs);
	if (r >= 0 && !S_ISDIR(st.st_mode))
		r = berth_error_msg(err, ENOTDIR, "extraction point is not a directory");
	if (r >= 0)
		r = put_check_writable(v, dirfd, err);
	const struct engine_archive_put_opts *o = a->put;
	struct image_extract_opts x = { .chown = true,
					.no_overwrite_dir_nondir = o && o->no_overwrite_dir_nondir };
	if (r >= 0 && o && o->copy_uid_gid)
		r = put_owner(v->op, &x, err);
	if (r >= 0)
		r = image_extract_tar(a->fd, dirfd, &x, err);
	cpath_done(&p);
	return r;
}

int engine_archive_put(struct engine *e, const char *ref, const char *path, int in_fd,
		       const struct engine_archive_put_opts *opts, struct berth_error **err)
{
	struct archive_call a = { .path = path, .fd = in_fd, .put = opts };
	return archive_run(e, ref, put_fn, &a, err);
}
