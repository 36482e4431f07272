/*
 * unpack.c - apply one layer tar to an empty directory, safely.
 *
 * Trade-off: every entry's parent directory is resolved inside the layer root
 * with fs_mkdir_p_in_root() (openat2 RESOLVE_IN_ROOT), and the entry itself is
 * created relative to that fd with O_NOFOLLOW/AT_SYMLINK_NOFOLLOW, so neither
 * "..", absolute paths, nor symlinks planted by earlier entries can make us
 * write outside the root. To keep that affordable for layers of many small
 * files, the last parent fd is cached and dropped whenever an entry replaces
 * or removes something (which could change what a path means).
 *
 * Whiteouts become overlayfs ones: ".wh.name" -> char device 0/0 "name",
 * ".wh..wh..opq" -> xattr trusted.overlay.opaque=y on the directory.
 * Directory mtimes are applied at the end (creating children changes them).
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "common/fs.h"
#include "image/unpack.h"

#define UNPACK_BUF_SIZE (256u << 10)
#define WH_PREFIX       ".wh."
#define WH_OPAQUE       ".wh..wh..opq"
#define WH_META         ".wh..wh."

struct dir_time {
	char *path;
	struct timespec ts[2];
};

struct unpack_ctx {
	int rootfd;
	struct decomp *dc;
	char *buf;
	struct berth_error *read_err;
	unpack_progress_fn progress;
	void *userdata;
	char *cached_parent;
	int cached_fd;
	bool stale;   /* cached_fd may no longer mean cached_parent: drop at next lookup */
	mode_t umask; /* the process umask (read from /proc, as umask(2) cannot be read thread-safely) */
	struct dir_time *dirs;
	size_t n_dirs, alloc_dirs;
	uint64_t size;
	const struct image_extract_opts *opts; /* NULL: a layer (whiteouts, tar ownership) */
};

static la_ssize_t read_cb(struct archive *a, void *ud, const void **buf)
{
	struct unpack_ctx *c = ud;
	ssize_t n = image_decomp_read(c->dc, c->buf, UNPACK_BUF_SIZE, &c->read_err);
	if (n < 0) {
		archive_set_error(a, EIO, "layer stream error");
		return -1;
	}
	if (c->progress)
		c->progress(image_decomp_consumed(c->dc), c->userdata);
	*buf = c->buf;
	return n;
}

/* Clean an entry path: strip "/" and ".", refuse "..". "" means the root itself. */
int image_unpack_clean_path(const char *raw, char **ret, struct berth_error **err)
{
	if (!raw)
		return berth_error_msg(err, EINVAL, "layer entry without a path");
	if (strlen(raw) > UNPACK_MAX_PATH)
		return berth_error_msg(err, ENAMETOOLONG, "layer entry path too long");
	struct strbuf sb = STRBUF_INIT;
	const char *p = raw;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			strbuf_release(&sb);
			return berth_error_msg(err, EINVAL, "layer entry '%s': path escapes the layer root",
					       raw);
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (sb.len)
				strbuf_addch(&sb, '/');
			strbuf_add(&sb, p, n);
		}
		p = e;
	}
	*ret = strbuf_detach(&sb, NULL);
	return 0;
}

static void drop_cache(struct unpack_ctx *c)
{
	free(c->cached_parent);
	c->cached_parent = NULL;
	c->cached_fd = safe_close(c->cached_fd);
}

/* Borrowed fd of the parent directory (created as needed), resolved in root. */
static int parent_fd(struct unpack_ctx *c, const char *parent, struct berth_error **err)
{
	if (!c->stale && c->cached_parent && streq(c->cached_parent, parent))
		return c->cached_fd;
	c->stale = false;
	drop_cache(c);
	int fd = fs_mkdir_p_in_root(c->rootfd, parent, 0755, err);
	if (fd < 0)
		return fd;
	c->cached_parent = xstrdup(parent);
	c->cached_fd = fd;
	return fd;
}

/* Remove whatever is at pfd/name (tree or file). Absent is fine. */
static int remove_existing(struct unpack_ctx *c, int pfd, const char *name, bool keep_dir,
			   struct berth_error **err)
{
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : berth_error_errno(err, "stat '%s'", name);
	if (S_ISDIR(st.st_mode) && keep_dir)
		return 1;
	c->stale = true;
	/* pfd may be O_PATH: reopen it for the removal */
	_cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_errno(err, "open parent of '%s'", name);
	if (S_ISDIR(st.st_mode))
		return fs_rm_rf_at(dfd, name, err);
	if (unlinkat(dfd, name, 0) < 0)
		return berth_error_errno(err, "remove '%s'", name);
	return 0;
}

static int whiteout(struct unpack_ctx *c, int pfd, const char *parent, const char *base,
		    struct berth_error **err)
{
	if (streq(base, WH_OPAQUE)) {
		_cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsetxattr(dfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return berth_error_errno(err, "mark '%s' opaque", parent);
		return 0;
	}
	if (startswith(base, WH_META))
		return 0;
	const char *name = base + strlen(WH_PREFIX);
	if (!*name || streq(name, ".") || streq(name, ".."))
		return berth_error_msg(err, EINVAL, "invalid whiteout '%s/%s'", parent, base);
	int r = remove_existing(c, pfd, name, false, err);
	if (r < 0)
		return r;
	if (mknodat(pfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return berth_error_errno(err, "create whiteout '%s/%s'", parent, name);
	return 0;
}

static int archive_fail(struct unpack_ctx *c, struct archive *a, struct berth_error **err);

static int write_data(struct unpack_ctx *c, struct archive *a, int fd, const char *path, uint64_t *ret_end,
		      struct berth_error **err)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		const char *p = buf;
		while (size > 0) {
			ssize_t n = pwrite(fd, p, size, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return berth_error_errno(err, "write '%s'", path);
			p += n;
			size -= (size_t)n;
			off += n;
		}
		*ret_end = (uint64_t)off;
	}
	if (r != ARCHIVE_EOF)
		return berth_error_wrap(err, archive_fail(c, a, err), "read data of '%s'", path);
	return 0;
}

static int set_xattrs(struct archive_entry *e, int fd, const char *path, struct berth_error **err)
{
	const char *name;
	const void *value;
	size_t size;
	if (archive_entry_xattr_reset(e) == 0)
		return 0;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!name || startswith(name, "trusted.overlay."))
			continue;
		if (fsetxattr(fd, name, value, size, 0) < 0 && errno != EOPNOTSUPP && errno != ENOTSUP)
			return berth_error_errno(err, "set xattr '%s' on '%s'", name, path);
	}
	return 0;
}

static int set_meta(struct unpack_ctx *c, struct archive_entry *e, int pfd, const char *base, int fd,
		    const char *path, bool chmod_needed, struct berth_error **err)
{
	mode_t type = archive_entry_filetype(e);
	uid_t uid = (uid_t)archive_entry_uid(e);
	gid_t gid = (gid_t)archive_entry_gid(e);
	if (c->opts && c->opts->chown) {
		uid = c->opts->uid;
		gid = c->opts->gid;
	}
	if (fd >= 0 ? fchown(fd, uid, gid) < 0 : fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "chown '%s'", path);
	if (type == AE_IFLNK) {
		struct timespec ts[2] = { { archive_entry_mtime(e), archive_entry_mtime_nsec(e) },
					  { archive_entry_mtime(e), archive_entry_mtime_nsec(e) } };
		(void)utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
		return 0;
	}
	_cleanup_close_ int own = -1;
	if (fd < 0 && (type == AE_IFDIR || type == AE_IFREG)) {
		own = openat(pfd, base,
			     O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (type == AE_IFDIR ? O_DIRECTORY : 0));
		if (own < 0)
			return berth_error_errno(err, "open '%s'", path);
		fd = own;
	}
	mode_t mode = archive_entry_perm(e) & 07777;
	if (chmod_needed && (fd >= 0 ? fchmod(fd, mode) < 0 : fchmodat(pfd, base, mode, 0) < 0))
		return berth_error_errno(err, "chmod '%s'", path);
	if (fd >= 0) {
		int r = set_xattrs(e, fd, path, err);
		if (r < 0)
			return r;
	}
	struct timespec ts[2] = {
		{ archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e),
		  archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e) },
		{ archive_entry_mtime(e), archive_entry_mtime_nsec(e) }
	};
	if (type == AE_IFDIR) {
		if (c->n_dirs == c->alloc_dirs) {
			c->alloc_dirs = c->alloc_dirs ? c->alloc_dirs * 2 : 64;
			c->dirs = xrealloc(c->dirs, c->alloc_dirs * sizeof(*c->dirs));
		}
		c->dirs[c->n_dirs].path = xstrdup(path);
		memcpy(c->dirs[c->n_dirs].ts, ts, sizeof(ts));
		c->n_dirs++;
		return 0;
	}
	if (fd >= 0 ? futimens(fd, ts) < 0 : utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "set times of '%s'", path);
	return 0;
}

static int make_hardlink(struct unpack_ctx *c, struct archive_entry *e, int pfd, const char *base,
			 const char *path, struct berth_error **err)
{
	_cleanup_free_ char *target = NULL;
	int r = image_unpack_clean_path(archive_entry_hardlink(e), &target, err);
	if (r < 0)
		return berth_error_wrap(err, r, "hardlink '%s'", path);
	if (!*target || streq(target, path))
		return berth_error_msg(err, EINVAL, "layer entry '%s': invalid hardlink target", path);
	_cleanup_close_ int tfd = fs_open_in_root(c->rootfd, target, O_PATH, 0, FS_RESOLVE_NO_FOLLOW, err);
	if (tfd < 0)
		return berth_error_wrap(err, tfd, "layer entry '%s': hardlink target '%s'", path, target);
	struct stat st;
	if (fstat(tfd, &st) < 0)
		return berth_error_errno(err, "stat '%s'", target);
	if (S_ISDIR(st.st_mode))
		return berth_error_msg(err, EINVAL, "layer entry '%s': hardlink to directory '%s'", path,
				       target);
	r = remove_existing(c, pfd, base, false, err);
	if (r < 0)
		return r;
	if (linkat(tfd, "", pfd, base, AT_EMPTY_PATH) < 0)
		return berth_error_errno(err, "link '%s' to '%s'", path, target);
	/* Like docker (and GNU tar), the link entry's metadata applies to the shared inode. */
	if (S_ISLNK(st.st_mode))
		return 0;
	return set_meta(c, e, pfd, base, -1, path, true, err);
}

/* IMAGE_EXTRACT no_overwrite_dir_nondir: refuse to replace a directory by a non-directory or back. */
static int check_overwrite(struct unpack_ctx *c, int pfd, const char *base, bool is_dir, const char *path,
			   struct berth_error **err)
{
	struct stat st;
	if (!c->opts || !c->opts->no_overwrite_dir_nondir || fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (S_ISDIR(st.st_mode) && !is_dir)
		return berth_error_msg(err, EEXIST, "cannot overwrite directory '%s' with non-directory",
				       path);
	if (!S_ISDIR(st.st_mode) && is_dir)
		return berth_error_msg(err, EEXIST, "cannot overwrite non-directory '%s' with directory",
				       path);
	return 0;
}

/* Create the node itself (no metadata); EEXIST when something is in the way. */
static int make_node(struct archive_entry *e, int pfd, const char *base, mode_t create_mode, int *ret_fd)
{
	mode_t type = archive_entry_filetype(e);
	switch (type) {
	case AE_IFREG:
		*ret_fd =
		    openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, create_mode);
		return *ret_fd < 0 ? -errno : 0;
	case AE_IFDIR: return mkdirat(pfd, base, 0700) < 0 ? -errno : 0;
	case AE_IFLNK: return symlinkat(archive_entry_symlink(e), pfd, base) < 0 ? -errno : 0;
	default: return mknodat(pfd, base, type | 0600, archive_entry_rdev(e)) < 0 ? -errno : 0;
	}
}

static int create_node(struct unpack_ctx *c, struct archive *a, struct archive_entry *e, int pfd,
		       const char *base, const char *path, struct berth_error **err)
{
	mode_t type = archive_entry_filetype(e);
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFCHR &&
	    type != AE_IFBLK && type != AE_IFIFO)
		return 0; /* sockets and unknown types are skipped, like docker */
	if (type == AE_IFLNK && !archive_entry_symlink(e))
		return berth_error_msg(err, EINVAL, "layer entry '%s': symlink without target", path);
	/* Create with the final permission bits when the umask cannot strip them (saves a chmod). */
	mode_t perm = archive_entry_perm(e) & 07777;
	bool chmod_needed = type != AE_IFREG || (perm & 07000) || (perm & c->umask);
	mode_t create_mode = chmod_needed ? 0600 : perm;
	_cleanup_close_ int fd = -1;
	int r = make_node(e, pfd, base, create_mode, &fd);
	if (r == -EEXIST) { /* replace what an earlier entry put there; a directory stays */
		r = check_overwrite(c, pfd, base, type == AE_IFDIR, path, err);
		if (r < 0)
			return r;
		r = remove_existing(c, pfd, base, type == AE_IFDIR, err);
		if (r < 0)
			return r;
		r = r == 1 ? 0 : make_node(e, pfd, base, create_mode, &fd);
	}
	if (r < 0)
		return berth_error_set(err, r, "create '%s'", path);
	if (type == AE_IFREG) {
		uint64_t end = 0;
		r = write_data(c, a, fd, path, &end, err);
		if (r < 0)
			return r;
		/* a sparse file ends in a hole: extend it to its size */
		if (archive_entry_size_is_set(e) && end != (uint64_t)archive_entry_size(e) &&
		    ftruncate(fd, archive_entry_size(e)) < 0)
			return berth_error_errno(err, "truncate '%s'", path);
		c->size += (uint64_t)archive_entry_size(e);
	}
	/* dockerd's layer size (its graph driver's DiffSize) counts a symlink's lstat size: its target's
	 * length */
	if (type == AE_IFLNK)
		c->size += strlen(archive_entry_symlink(e));
	if (type == AE_IFDIR)
		c->stale = true;
	return set_meta(c, e, pfd, base, fd, path, chmod_needed, err);
}

static int apply_entry(struct unpack_ctx *c, struct archive *a, struct archive_entry *e,
		       struct berth_error **err)
{
	_cleanup_free_ char *path = NULL;
	int r = image_unpack_clean_path(archive_entry_pathname(e), &path, err);
	if (r < 0)
		return r;
	if (!*path)
		return 0; /* "./" itself: the layer root keeps its own metadata */
	char *slash = strrchr(path, '/');
	_cleanup_free_ char *parent = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
	const char *base = slash ? slash + 1 : path;
	int pfd = parent_fd(c, parent, err);
	if (pfd < 0)
		return berth_error_wrap(err, pfd, "layer entry '%s'", path);
	if (!c->opts && startswith(base, WH_PREFIX))
		return whiteout(c, pfd, parent, base, err);
	if (archive_entry_hardlink(e))
		return make_hardlink(c, e, pfd, base, path, err);
	return create_node(c, a, e, pfd, base, path, err);
}

static int apply_dir_times(struct unpack_ctx *c, struct berth_error **err)
{
	for (size_t i = c->n_dirs; i > 0; i--) {
		struct dir_time *d = &c->dirs[i - 1];
		_cleanup_close_ int fd = fs_open_in_root(c->rootfd, d->path, O_RDONLY | O_DIRECTORY, 0,
							 FS_RESOLVE_NO_FOLLOW, NULL);
		if (fd < 0)
			continue; /* replaced by a later entry */
		if (futimens(fd, d->ts) < 0)
			return berth_error_errno(err, "set times of '%s'", d->path);
	}
	return 0;
}

static int archive_fail(struct unpack_ctx *c, struct archive *a, struct berth_error **err)
{
	if (c->read_err) {
		int code = berth_error_code(c->read_err);
		_cleanup_free_ char *m = berth_error_string(c->read_err);
		return berth_error_msg(err, code ? code : EBADMSG, "%s", m);
	}
	return berth_error_msg(err, EBADMSG, "invalid layer tar: %s", archive_error_string(a));
}

static int read_entries(struct unpack_ctx *c, struct archive *a, struct berth_error **err)
{
	struct archive_entry *e;
	size_t count = 0;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		if (++count > UNPACK_MAX_ENTRIES)
			return berth_error_msg(err, E2BIG, "layer has more than %d entries",
					       UNPACK_MAX_ENTRIES);
		int k = apply_entry(c, a, e, err);
		if (k < 0)
			return k;
	}
	if (r != ARCHIVE_EOF)
		return archive_fail(c, a, err);
	return 0;
}

static int drain(struct unpack_ctx *c, struct berth_error **err)
{
	ssize_t n;
	while ((n = image_decomp_read(c->dc, c->buf, UNPACK_BUF_SIZE, err)) > 0)
		;
	return n < 0 ? (int)n : 0;
}

static void ctx_done(struct unpack_ctx *c)
{
	drop_cache(c);
	for (size_t i = 0; i < c->n_dirs; i++)
		free(c->dirs[i].path);
	free(c->dirs);
	free(c->buf);
	image_decomp_free(c->dc);
	berth_error_free(c->read_err);
}

static mode_t current_umask(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	unsigned int m;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			return (mode_t)m & 0777;
	return 0777; /* unknown: always chmod */
}

static int unpack(int in_fd, int rootfd, const struct image_extract_opts *opts, const char *expected_diff_id,
		  unpack_progress_fn progress, void *userdata, struct unpack_result *ret,
		  struct berth_error **err)
{
	struct unpack_ctx c = { .umask = current_umask(),
				.rootfd = rootfd,
				.cached_fd = -1,
				.progress = progress,
				.userdata = userdata,
				.opts = opts };
	int r = image_decomp_new(in_fd, &c.dc, err);
	if (r < 0)
		return r;
	c.buf = xmalloc(UNPACK_BUF_SIZE);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	if (archive_read_open(a, &c, NULL, read_cb, NULL) != ARCHIVE_OK)
		r = archive_fail(&c, a, err);
	else
		r = read_entries(&c, a, err);
	if (r >= 0)
		r = drain(&c, err);
	if (r >= 0)
		r = apply_dir_times(&c, err);
	struct unpack_result res = { .size = c.size };
	if (r >= 0) {
		image_decomp_digest(c.dc, res.diff_id);
		res.compressed = image_decomp_consumed(c.dc);
		res.tar_size = image_decomp_produced(c.dc);
		if (expected_diff_id && !streq(expected_diff_id, res.diff_id))
			r = berth_error_msg(err, EBADMSG, "layer diff_id mismatch: expected '%s', got '%s'",
					    expected_diff_id, res.diff_id);
	}
	archive_read_free(a);
	ctx_done(&c);
	if (r < 0)
		return r;
	if (ret)
		*ret = res;
	return 0;
}

int image_unpack_layer(int in_fd, int rootfd, const char *expected_diff_id, unpack_progress_fn progress,
		       void *userdata, struct unpack_result *ret, struct berth_error **err)
{
	return unpack(in_fd, rootfd, NULL, expected_diff_id, progress, userdata, ret, err);
}

int image_extract_tar(int in_fd, int dirfd, const struct image_extract_opts *opts, struct berth_error **err)
{
	static const struct image_extract_opts defaults = { 0 };
	return unpack(in_fd, dirfd, opts ? opts : &defaults, NULL, NULL, NULL, NULL, err);
}
