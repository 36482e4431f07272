/*
 * copy.c - COPY/ADD and WORKDIR on a snapshot of the state: files from the
 * build context (as resolved by the plan, .dockerignore and --exclude
 * applied), another stage or image (--from, recursive, owners kept), or
 * heredocs; --chown (names looked up in the destination's /etc/passwd and
 * /etc/group), --chmod (octal or symbolic), ADD's local archives unpacked. Every write
 * goes through the in-root helpers of common/fs.h: a symlink in the image
 * never leads a write out of the root filesystem.
 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/context.h"
#include "build/flags.h"
#include "build/pathmatch.h"
#include "buildexec/internal.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/util.h"

struct cp {
	int rootfd;        /* destination root (O_PATH) */
	int64_t uid, gid;  /* --chown, -1: keep the source's */
	const char *chmod; /* --chmod (octal or symbolic, checked by the plan), NULL: keep */
	unsigned depth;
};

static int lookup_id(int rootfd, const char *file, const char *name, int64_t *ret, struct berth_error **err)
{
	if (util_parse_int64(name, ret) == 0 && *ret >= 0 && *ret <= UINT32_MAX)
		return 0;
	struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(rootfd, file, 4u << 20, &sb, NULL);
	size_t nl = strlen(name);
	for (char *line = sb.buf, *next; r >= 0 && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *f = strchr(line, ':');
		char *id = f ? strchr(f + 1, ':') : NULL;
		if (f && id && (size_t)(f - line) == nl && strncmp(line, name, nl) == 0) {
			*ret = strtoll(id + 1, NULL, 10);
			strbuf_release(&sb);
			return 0;
		}
	}
	strbuf_release(&sb);
	return berth_error_msg(err, ENOENT,
			       "unable to convert uid/gid chown string to host mapping: no such %s '%s'",
			       streq(file, "etc/passwd") ? "user" : "group", name);
}

static int parse_chown(struct cp *c, const char *spec, struct berth_error **err)
{
	c->uid = c->gid = -1;
	if (!spec || !*spec)
		return 0;
	_cleanup_free_ char *u = xstrdup(spec);
	char *g = strchr(u, ':');
	if (g)
		*g++ = '\0';
	int r = lookup_id(c->rootfd, "etc/passwd", u, &c->uid, err);
	if (r < 0)
		return r;
	if (!g) {
		/* docker: the user's primary group when only a name is given, else the same number */
		c->gid = c->uid;
		return 0;
	}
	return lookup_id(c->rootfd, "etc/group", g, &c->gid, err);
}

static int parse_chmod(struct cp *c, const char *spec, struct berth_error **err)
{
	c->chmod = NULL;
	if (!spec || !*spec)
		return 0;
	int r = build_chmod_check(spec, err);
	if (r >= 0)
		c->chmod = spec;
	return r;
}

/* Split "a/b/c" into an fd of "a/b" (created) and "c". */
static int parent_of(struct cp *c, const char *path, char **ret_base, struct berth_error **err)
{
	_cleanup_free_ char *clean = fs_path_clean(path);
	char *slash = strrchr(clean, '/');
	const char *base = slash ? slash + 1 : clean;
	if (!*base || streq(base, ".") || streq(base, ".."))
		return berth_error_msg(err, EINVAL, "invalid copy destination '%s'", path);
	if (slash)
		*slash = '\0';
	int fd = fs_mkdir_p_in_root(c->rootfd, slash && *clean ? clean : "/", 0755, err);
	if (fd >= 0)
		*ret_base = xstrdup(base);
	return fd;
}

static void put_meta(struct cp *c, int fd, const struct stat *st)
{
	uid_t uid = c->uid >= 0 ? (uid_t)c->uid : st->st_uid;
	gid_t gid = c->gid >= 0 ? (gid_t)c->gid : st->st_gid;
	mode_t mode =
	    c->chmod ? build_chmod_apply(c->chmod, st->st_mode, S_ISDIR(st->st_mode)) : st->st_mode & 07777;
	if (fchown(fd, uid, gid) < 0)
		log_debug("copy: fchown: %s", strerror(errno));
	(void)fchmod(fd, mode);
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	(void)futimens(fd, ts);
}

/* Write one entry (not recursive) read from srcdir/name at `target` in the root. */
static int put_entry(struct cp *c, int srcdir, const char *name, const struct stat *st, const char *target,
		     struct berth_error **err)
{
	_cleanup_free_ char *base = NULL;
	_cleanup_close_ int pfd = parent_of(c, target, &base, err);
	if (pfd < 0)
		return pfd;
	struct stat cur;
	bool exists = fstatat(pfd, base, &cur, AT_SYMLINK_NOFOLLOW) == 0;
	if (S_ISDIR(st->st_mode)) {
		if (exists && !S_ISDIR(cur.st_mode) && unlinkat(pfd, base, 0) < 0)
			return berth_error_errno(err, "replace '%s'", target);
		if ((!exists || !S_ISDIR(cur.st_mode)) && mkdirat(pfd, base, 0755) < 0)
			return berth_error_errno(err, "mkdir '%s'", target);
		_cleanup_close_ int d = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d < 0)
			return berth_error_errno(err, "open '%s'", target);
		put_meta(c, d, st);
		return 0;
	}
	if (exists && (S_ISDIR(cur.st_mode) ? fs_rm_rf_at(pfd, base, err) : unlinkat(pfd, base, 0)) < 0)
		return berth_error_errno(err, "replace '%s'", target);
	if (S_ISLNK(st->st_mode)) {
		char link[PATH_MAX];
		ssize_t n = readlinkat(srcdir, name, link, sizeof(link) - 1);
		if (n < 0)
			return berth_error_errno(err, "readlink '%s'", name);
		link[n] = '\0';
		if (symlinkat(link, pfd, base) < 0)
			return berth_error_errno(err, "symlink '%s'", target);
		if (fchownat(pfd, base, c->uid >= 0 ? (uid_t)c->uid : st->st_uid,
			     c->gid >= 0 ? (gid_t)c->gid : st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
			log_debug("copy: lchown '%s': %s", target, strerror(errno));
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return 0; /* devices, fifos, sockets are not copied (docker skips sockets; devices need mknod)
			   */
	_cleanup_close_ int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return berth_error_errno(err, "open copy source '%s'", name);
	_cleanup_close_ int out =
	    openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return berth_error_errno(err, "create '%s'", target);
	int64_t n = fs_copy_fd(in, out, FS_COPY_ALL, 0, err);
	if (n < 0)
		return berth_error_wrap(err, (int)n, "copy '%s' to '%s'", name, target);
	put_meta(c, out, st);
	return 0;
}

/* Recursive copy of srcdir/name to target (stage and image sources). */
static int put_tree(struct cp *c, int srcdir, const char *name, const char *target, struct berth_error **err)
{
	struct stat st;
	if (fstatat(srcdir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "stat '%s'", name);
	int r = put_entry(c, srcdir, name, &st, target, err);
	if (r < 0 || !S_ISDIR(st.st_mode))
		return r;
	if (++c->depth > 256)
		return berth_error_msg(err, ELOOP, "copy: directories nested too deep at '%s'", target);
	int dfd = openat(srcdir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return berth_error_errno(err, "open directory '%s'", name);
	}
	struct dirent *de;
	while (r >= 0 && (de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *t = xasprintf("%s/%s", target, de->d_name);
		r = put_tree(c, dirfd(d), de->d_name, t, err);
	}
	closedir(d);
	c->depth--;
	return r;
}

/* mkdir -p the destination of a directory source; docker gives a new one the --chown owner. */
static int make_dest_dir(struct cp *c, const char *ddir, struct berth_error **err)
{
	int fd = fs_open_in_root(c->rootfd, ddir, O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_DEFAULT, NULL);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	fd = fs_mkdir_p_in_root(c->rootfd, ddir, 0755, err);
	if (fd < 0)
		return fd;
	if (c->uid >= 0 && fchownat(fd, "", (uid_t)c->uid, (gid_t)c->gid, AT_EMPTY_PATH) < 0)
		log_debug("copy: chown '%s': %s", ddir, strerror(errno));
	close(fd);
	return 0;
}

static bool dest_is_dir(struct cp *c, const char *dest)
{
	if (dest[strlen(dest) - 1] == '/')
		return true;
	int fd = fs_open_in_root(c->rootfd, dest, O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_DEFAULT, NULL);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* Where a source root (rel "") lands: dest itself, or dest/<basename> when dest is a directory. */
static char *target_of(struct cp *c, const char *dest, const char *src_path, bool src_is_dir)
{
	if (src_is_dir)
		return xstrdup(dest);
	if (dest_is_dir(c, dest))
		return xasprintf("%s/%s", dest, base_name(src_path));
	return xstrdup(dest);
}

static int extract_archive(struct cp *c, int srcdir, const char *name, const char *dest,
			   struct berth_error **err)
{
	_cleanup_close_ int dfd = fs_mkdir_p_in_root(c->rootfd, dest, 0755, err);
	if (dfd < 0)
		return dfd;
	_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", dfd);
	char real[PATH_MAX];
	ssize_t n = readlink(proc, real, sizeof(real) - 1);
	_cleanup_close_ int in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (n < 0 || in < 0)
		return berth_error_errno(err, "ADD: open '%s'", name);
	real[n] = '\0';
	struct archive *a = archive_read_new(), *w = archive_write_disk_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
					      ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
					      ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_UNLINK);
	/* entry paths are prefixed with the destination below; "/x" lands in it too */
	int r = archive_read_open_fd(a, in, 65536) == ARCHIVE_OK ? 0 : -EINVAL;
	struct archive_entry *e;
	while (r >= 0 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		_cleanup_free_ char *p = xasprintf("%s/%s", real, archive_entry_pathname(e));
		archive_entry_set_pathname(e, p);
		if (archive_entry_hardlink(e)) {
			_cleanup_free_ char *h = xasprintf("%s/%s", real, archive_entry_hardlink(e));
			archive_entry_set_hardlink(e, h);
		}
		if (c->uid >= 0)
			archive_entry_set_uid(e, c->uid), archive_entry_set_gid(e, c->gid);
		if (archive_write_header(w, e) < ARCHIVE_WARN) {
			r = berth_error_msg(err, EINVAL, "ADD: extract '%s': %s", name,
					    archive_error_string(w));
			break;
		}
		const void *buf;
		size_t len;
		int64_t off;
		int rc;
		while ((rc = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
			if (archive_write_data_block(w, buf, len, off) < ARCHIVE_OK) {
				rc = ARCHIVE_FATAL;
				break;
			}
		if (rc != ARCHIVE_EOF) {
			r = berth_error_msg(err, EINVAL, "ADD: extract '%s': %s", name,
					    archive_error_string(a));
			break;
		}
		archive_write_finish_entry(w);
	}
	if (r == -EINVAL && !(err && *err))
		r = berth_error_msg(err, EINVAL, "ADD: read archive '%s': %s", name, archive_error_string(a));
	archive_write_free(w);
	archive_read_free(a);
	return r;
}

static bool is_extract(const struct plan_copy *pc, const char *path)
{
	for (char **x = pc->extract; x && *x; x++)
		if (streq(*x, path))
			return true;
	return false;
}

static int copy_context(struct cp *c, const struct plan_copy *pc, const struct build_context *ctx,
			struct berth_error **err)
{
	int r = build_context_extract(ctx, err); /* a miss: the files are needed now */
	if (r < 0)
		return r;
	_cleanup_free_ char *ddir = xstrdup(pc->dest);
	if (strlen(ddir) > 1 && ddir[strlen(ddir) - 1] == '/')
		ddir[strlen(ddir) - 1] = '\0';
	for (size_t i = 0; r >= 0 && i < pc->n_matches; i++) {
		const struct ctx_match *m = &pc->matches[i];
		const char *path = m->entry == SIZE_MAX ? "." : m->path;
		struct stat st;
		if (fstatat(ctx->rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return berth_error_errno(err, "stat context file '%s'", path);
		if (pc->parents) {
			/* COPY --parents: the source's path in the context is kept below dest */
			_cleanup_free_ char *t = xasprintf("%s/%s", streq(ddir, "/") ? "" : ddir, m->path);
			r = S_ISDIR(st.st_mode) && !m->rel[0] ? make_dest_dir(c, t, err)
							      : put_entry(c, ctx->rootfd, path, &st, t, err);
		} else if (m->rel[0]) {
			_cleanup_free_ char *t = xasprintf("%s/%s", streq(ddir, "/") ? "" : ddir, m->rel);
			r = put_entry(c, ctx->rootfd, path, &st, t, err);
		} else if (S_ISDIR(st.st_mode)) {
			r = make_dest_dir(c, ddir, err);
		} else if (pc->add && S_ISREG(st.st_mode) && is_extract(pc, path)) {
			r = extract_archive(c, ctx->rootfd, path, ddir, err);
		} else {
			_cleanup_free_ char *t = target_of(c, pc->dest, path, false);
			r = put_entry(c, ctx->rootfd, path, &st, t, err);
		}
	}
	return r;
}

static int copy_dir_contents(struct cp *c, int dfd, const char *ddir, struct berth_error **err)
{
	int fd = make_dest_dir(c, ddir, err);
	if (fd < 0)
		return fd;
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup < 0 ? NULL : fdopendir(dup);
	if (!d) {
		if (dup >= 0)
			close(dup);
		return berth_error_errno(err, "open source directory");
	}
	int r = 0;
	struct dirent *de;
	while (r >= 0 && (de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *t = xasprintf("%s/%s", streq(ddir, "/") ? "" : ddir, de->d_name);
		r = put_tree(c, dirfd(d), de->d_name, t, err);
	}
	closedir(d);
	return r;
}

static int copy_one_from(struct cp *c, const struct plan_copy *pc, int dirfd, const char *name,
			 const char *ddir, struct berth_error **err)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(err, "stat '%s'", name);
	if (S_ISDIR(st.st_mode)) {
		_cleanup_close_ int sub =
		    openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return berth_error_errno(err, "open '%s'", name);
		_cleanup_free_ char *sd = pc->parents ? xasprintf("%s/%s", ddir, name) : NULL;
		return copy_dir_contents(c, sub, sd ? sd : ddir, err);
	}
	_cleanup_free_ char *t =
	    pc->parents ? xasprintf("%s/%s", ddir, name) : target_of(c, pc->dest, name, false);
	return put_tree(c, dirfd, name, t, err);
}

/* COPY --from a stage or image: sources are paths in srcroot, a wildcard allowed in the last component. */
static int copy_from_tree(struct cp *c, const struct plan_copy *pc, int srcroot, struct berth_error **err)
{
	_cleanup_free_ char *ddir = xstrdup(pc->dest);
	if (strlen(ddir) > 1 && ddir[strlen(ddir) - 1] == '/')
		ddir[strlen(ddir) - 1] = '\0';
	int r = 0;
	for (char **s = pc->srcs; r >= 0 && s && *s; s++) {
		_cleanup_free_ char *src = fs_path_clean(*s);
		char *slash = strrchr(src, '/');
		const char *pat = slash ? slash + 1 : src;
		if (slash)
			*slash = '\0';
		const char *dir = slash && *src ? src : "/";
		/* --parents: the source's directory is kept below dest */
		_cleanup_free_ char *pdir =
		    pc->parents && slash && *src ? xasprintf("%s/%s", ddir, src) : NULL;
		const char *to = pdir ? pdir : ddir;
		_cleanup_close_ int dfd =
		    fs_open_in_root(srcroot, dir, O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_DEFAULT, NULL);
		if (dfd < 0)
			return berth_error_msg(err, ENOENT, "COPY --from: source '%s' not found", *s);
		if (!*pat || streq(pat, ".")) {
			r = copy_dir_contents(c, dfd, to, err);
			continue;
		}
		if (!build_go_has_wildcards(pat)) {
			if (faccessat(dfd, pat, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
				return berth_error_msg(err, ENOENT, "COPY --from: source '%s' not found", *s);
			r = copy_one_from(c, pc, dfd, pat, to, err);
			continue;
		}
		struct dirent **names = NULL;
		int n = scandirat(dfd, ".", &names, NULL, alphasort);
		size_t hits = 0;
		for (int i = 0; i < n; i++) {
			if (r >= 0 && !streq(names[i]->d_name, ".") && !streq(names[i]->d_name, "..") &&
			    build_go_path_match(pat, names[i]->d_name) == 1) {
				hits++;
				r = copy_one_from(c, pc, dfd, names[i]->d_name, to, err);
			}
			free(names[i]);
		}
		free(names);
		if (r >= 0 && hits == 0)
			return berth_error_msg(err, ENOENT,
					       "COPY --from: no source files were specified by '%s'", *s);
	}
	return r;
}

static int copy_inline(struct cp *c, const struct plan_copy *pc, struct berth_error **err)
{
	for (size_t i = 0; i < pc->n_inline; i++) {
		_cleanup_free_ char *t = target_of(c, pc->dest, pc->inline_names[i], false);
		_cleanup_free_ char *base = NULL;
		_cleanup_close_ int pfd = parent_of(c, t, &base, err);
		if (pfd < 0)
			return pfd;
		(void)unlinkat(pfd, base, 0);
		_cleanup_close_ int out =
		    openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (out < 0 || fs_write_all(out, pc->inline_data[i], strlen(pc->inline_data[i])) < 0)
			return berth_error_errno(err, "write '%s'", t);
		struct stat st = { .st_mode = S_IFREG | 0644 };
		clock_gettime(CLOCK_REALTIME, &st.st_mtim);
		st.st_atim = st.st_mtim;
		put_meta(c, out, &st);
	}
	return 0;
}

static int copy_fetched(struct cp *c, const struct plan_copy *pc, const struct bx_fetched *f, size_t n,
			struct berth_error **err)
{
	_cleanup_free_ char *ddir = xstrdup(pc->dest);
	if (strlen(ddir) > 1 && ddir[strlen(ddir) - 1] == '/')
		ddir[strlen(ddir) - 1] = '\0';
	if (n > 1 && pc->dest[strlen(pc->dest) - 1] != '/')
		return berth_error_msg(err, EINVAL,
				       "When using ADD with more than one source file, the destination must "
				       "be a directory and end with a /");
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_close_ int dfd = open(f[i].dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return berth_error_errno(err, "open '%s'", f[i].dir);
		if (f[i].is_dir) {
			_cleanup_close_ int sub =
			    openat(dfd, f[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0)
				return berth_error_msg(err, ENOENT, "ADD: '%s' not found in the repository",
						       f[i].name);
			r = copy_dir_contents(c, sub, ddir, err);
		} else {
			_cleanup_free_ char *t = target_of(c, pc->dest, f[i].name, false);
			r = put_tree(c, dfd, f[i].name, t, err);
		}
	}
	return r;
}

static int copy_into(struct buildexec *b, struct cp *c, const struct build_copy_req *req,
		     const struct bx_fetched *fetched, size_t n_fetched, struct berth_error **err)
{
	const struct plan_copy *pc = req->copy;
	int r = parse_chown(c, pc->chown, err);
	if (r >= 0)
		r = parse_chmod(c, pc->chmod, err);
	if (r >= 0)
		r = copy_inline(c, pc, err);
	if (r < 0)
		return r;
	if (pc->kind == SRC_CONTEXT)
		return pc->n_matches ? copy_context(c, pc, req->ctx, err) : 0;
	if (pc->kind == SRC_URL)
		return copy_fetched(c, pc, fetched, n_fetched, err);
	if (pc->kind != SRC_STAGE && pc->kind != SRC_IMAGE)
		return 0;
	const char *from = pc->kind == SRC_STAGE ? req->src_state : pc->from_image_id;
	if (!from || streq(from, BX_SCRATCH))
		return berth_error_msg(err, ENOENT,
				       "COPY --from: source '%s' not found in an empty filesystem",
				       pc->srcs && pc->srcs[0] ? pc->srcs[0] : "");
	_cleanup_free_ char *sid = NULL;
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	if ((r = buildexec_snapshot(b, from, &sid, &sn, err)) < 0)
		return r;
	int srcroot = open(sn->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	r = srcroot < 0 ? berth_error_errno(err, "open '%s'", sn->rootfs)
			: copy_from_tree(c, pc, srcroot, err);
	if (srcroot >= 0)
		close(srcroot);
	(void)image_snapshot_remove(b->images, sid, NULL);
	return r;
}

struct step_input {
	const struct build_copy_req *req;
	const char *mkdir;
	const struct bx_fetched *fetched;
	size_t n_fetched;
};

static int on_snapshot(struct buildexec *b, const char *state, const struct step_input *in,
		       const char *created_by, char **ret_state, struct berth_error **err)
{
	_cleanup_free_ char *sid = NULL;
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	int r = buildexec_snapshot(b, state, &sid, &sn, err);
	if (r < 0)
		return r;
	struct cp c = { .rootfd = open(sn->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC), .uid = -1, .gid = -1 };
	if (c.rootfd < 0)
		r = berth_error_errno(err, "open '%s'", sn->rootfs);
	else if (in->mkdir) {
		int fd = fs_mkdir_p_in_root(c.rootfd, in->mkdir, 0755, err);
		r = fd < 0 ? fd : (close(fd), 0);
	} else if (in->req) {
		r = copy_into(b, &c, in->req, in->fetched, in->n_fetched, err);
	}
	if (c.rootfd >= 0)
		close(c.rootfd);
	if (r < 0) {
		(void)image_snapshot_remove(b->images, sid, NULL);
		return r;
	}
	return buildexec_commit_snapshot(b, sid, created_by, ret_state, err);
}

int buildexec_copy(void *be, const char *state, const struct build_copy_req *req, char **ret_state,
		   struct berth_error **err)
{
	_cleanup_free_ char *by =
	    xasprintf("/bin/sh -c #(nop) %s %s", req->copy->add ? "ADD" : "COPY", req->copy->dest);
	return on_snapshot(be, state, &(struct step_input){ .req = req }, by, ret_state, err);
}

int buildexec_copy_fetched(struct buildexec *b, const char *state, const struct build_copy_req *req,
			   const struct bx_fetched *f, size_t n, char **ret_state, struct berth_error **err)
{
	_cleanup_free_ char *by = xasprintf("/bin/sh -c #(nop) ADD %s", req->copy->dest);
	return on_snapshot(b, state, &(struct step_input){ .req = req, .fetched = f, .n_fetched = n }, by,
			   ret_state, err);
}

int buildexec_mkdir(void *be, const char *state, const char *path, char **ret_state, struct berth_error **err)
{
	_cleanup_free_ char *by = xasprintf("/bin/sh -c #(nop) WORKDIR %s", path);
	return on_snapshot(be, state, &(struct step_input){ .mkdir = path }, by, ret_state, err);
}
