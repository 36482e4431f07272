/*
 * context-view.c - the context as a RUN --mount=type=bind of it shows it:
 * only the entries .dockerignore keeps (BuildKit sends the context already
 * filtered, so ignored files are invisible to COPY and to bind mounts alike,
 * and so are an ignored Dockerfile and .dockerignore, which the builder reads
 * on the side). The extracted (or directory) context holds every file, so the
 * view is a second tree of the kept entries: directories and symlinks made
 * anew with the originals' modes, owners and times, regular files hard-linked
 * (copied when the context lives on another file system). It is made once,
 * on the first bind mount, and removed with the context.
 *
 * Trade-off: hard links cost an inode entry per file and share the content
 * with the context, which is safe because the builder binds the context
 * read-only; a context without .dockerignore rules binds its root directly.
 */
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>

#include "build/context-internal.h"
#include "common/fs.h"

/* Owner, mode and times of a made entry from its original (the times last, after its children). */
static int copy_meta(int viewfd, const char *path, const struct stat *st, struct berth_error **err)
{
	if (fchownat(viewfd, path, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "chown '%s'", path);
	if (!S_ISLNK(st->st_mode) && fchmodat(viewfd, path, st->st_mode & 07777, 0) < 0)
		return berth_error_errno(err, "chmod '%s'", path);
	return 0;
}

static int set_times(int viewfd, const char *path, const struct stat *st, struct berth_error **err)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(viewfd, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "set times of '%s'", path);
	return 0;
}

/* A regular file another file system holds: its content, mode, owner and times. */
static int copy_file(int rootfd, int viewfd, const char *path, const struct stat *st,
		     struct berth_error **err)
{
	_cleanup_close_ int in = openat(rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return berth_error_errno(err, "open '%s'", path);
	_cleanup_close_ int out =
	    openat(viewfd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return berth_error_errno(err, "create '%s'", path);
	int64_t n = fs_copy_fd(in, out, FS_COPY_ALL, 0, err);
	if (n < 0)
		return berth_error_wrap(err, (int)n, "copy '%s'", path);
	int r = copy_meta(viewfd, path, st, err);
	return r < 0 ? r : set_times(viewfd, path, st, err);
}

static int view_entry(int rootfd, int viewfd, const struct ctx_entry *e, struct berth_error **err)
{
	struct stat st;
	if (fstatat(rootfd, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "stat '%s'", e->path);
	if ((st.st_mode & S_IFMT) != (e->mode & S_IFMT))
		return berth_error_msg(err, EIO, "'%s' changed type in the build context", e->path);
	if (S_ISDIR(st.st_mode)) {
		if (mkdirat(viewfd, e->path, 0700) < 0)
			return berth_error_errno(err, "create '%s'", e->path);
		return copy_meta(viewfd, e->path, &st, err);
	}
	if (S_ISLNK(st.st_mode)) {
		if (symlinkat(e->link ? e->link : "", viewfd, e->path) < 0)
			return berth_error_errno(err, "create '%s'", e->path);
		int r = copy_meta(viewfd, e->path, &st, err);
		return r < 0 ? r : set_times(viewfd, e->path, &st, err);
	}
	if (linkat(rootfd, e->path, viewfd, e->path, 0) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return berth_error_errno(err, "link '%s'", e->path);
	return copy_file(rootfd, viewfd, e->path, &st, err);
}

/* Fill viewfd with ctx's kept entries (sorted by path: a directory before what it holds). */
static int view_fill(const struct build_context *ctx, int viewfd, struct berth_error **err)
{
	struct stat st;
	if (fstat(ctx->rootfd, &st) < 0)
		return berth_error_errno(err, "stat the build context");
	if (fchown(viewfd, st.st_uid, st.st_gid) < 0 || fchmod(viewfd, st.st_mode & 07777) < 0)
		return berth_error_errno(err, "prepare the build context's view");
	int r;
	for (size_t i = 0; i < ctx->n; i++)
		if (!ctx->e[i].build_only && (r = view_entry(ctx->rootfd, viewfd, &ctx->e[i], err)) < 0)
			return r;
	/* directories' times once nothing more is written in them */
	for (size_t i = ctx->n; i-- > 0;) {
		const struct ctx_entry *e = &ctx->e[i];
		if (e->build_only || !S_ISDIR(e->mode))
			continue;
		if (fstatat(ctx->rootfd, e->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return berth_error_errno(err, "stat '%s'", e->path);
		if ((r = set_times(viewfd, e->path, &st, err)) < 0)
			return r;
	}
	if (fstat(ctx->rootfd, &st) < 0)
		return berth_error_errno(err, "stat the build context");
	struct timespec ts[2] = { st.st_atim, st.st_mtim };
	if (futimens(viewfd, ts) < 0)
		return berth_error_errno(err, "set times of the build context's view");
	return 0;
}

/* Beside a private extraction (same file system: links), else under tmpdir. */
static int view_make(struct build_context *ctx, const char *tmpdir, struct berth_error **err)
{
	_cleanup_free_ char *copy = ctx->owned_root ? xstrdup(ctx->root) : NULL;
	const char *parent = copy ? dirname(copy) : tmpdir ? tmpdir : "/tmp";
	_cleanup_free_ char *tmpl = xasprintf("%s/berth-context-view-XXXXXX", parent);
	if (!mkdtemp(tmpl))
		return berth_error_errno(err, "create directory in '%s'", parent);
	_cleanup_close_ int viewfd = open(tmpl, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r = viewfd < 0 ? berth_error_errno(err, "open '%s'", tmpl) : view_fill(ctx, viewfd, err);
	if (r < 0) {
		(void)fs_rm_rf(tmpl, NULL);
		return berth_error_wrap(err, r, "filter the build context by .dockerignore");
	}
	ctx->view = TAKE_PTR(tmpl);
	ctx->view_beside = ctx->owned_root;
	return 0;
}

int build_context_view(const struct build_context *cctx, const char *tmpdir, const char **ret,
		       struct berth_error **err)
{
	/* made once, under the lock: several stages' RUN steps may ask at once */
	struct build_context *ctx = (struct build_context *)cctx;
	int r = build_context_extract(ctx, err);
	if (r < 0)
		return r;
	if (!ctx->ignore) {
		*ret = ctx->root; /* nothing is ignored: the files as they are */
		return 0;
	}
	pthread_mutex_lock(&ctx->view_lock);
	if (!ctx->view)
		r = view_make(ctx, tmpdir, err);
	pthread_mutex_unlock(&ctx->view_lock);
	if (r < 0)
		return r;
	*ret = ctx->view;
	return 0;
}
