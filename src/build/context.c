/*
 * context.c - build context: walk a directory or unpack a context tar into
 * a private directory, apply .dockerignore, resolve COPY/ADD sources and
 * hash them. Trade-off: a tar is unpacked to disk once (bounded by the
 * caller's upload limit) so that both kinds of context share one code path
 * and the executor can copy from a real directory.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "build/context-internal.h"
#include "build/pathmatch.h"
#include "common/fs.h"

/* A file's digest taken while it was extracted, by inode (extract_file). */
struct pre_digest {
	ino_t ino;
	uint64_t size;
	char digest[DIGEST_STRING_MAX];
};

struct walker {
	struct build_context *ctx;
	bool use_owner;
	const struct pre_digest *pre; /* sorted by inode, one per inode */
	size_t n_pre;
	struct berth_error **err;
};

static int pre_cmp(const void *a, const void *b)
{
	ino_t x = ((const struct pre_digest *)a)->ino, y = ((const struct pre_digest *)b)->ino;
	return x < y ? -1 : x > y;
}

static int add_entry(struct walker *w, const char *path, const struct stat *st, int dirfd, const char *name)
{
	struct build_context *ctx = w->ctx;
	if (ctx->n >= CONTEXT_MAX_ENTRIES)
		return berth_error_msg(w->err, EFBIG, "build context has more than %d entries",
				       CONTEXT_MAX_ENTRIES);
	if ((ctx->n & (ctx->n - 1)) == 0)
		ctx->e = xrealloc(ctx->e, (ctx->n ? ctx->n * 2 : 16) * sizeof(*ctx->e));
	struct ctx_entry *e = &ctx->e[ctx->n];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	e->mode = st->st_mode;
	e->uid = w->use_owner ? st->st_uid : 0;
	e->gid = w->use_owner ? st->st_gid : 0;
	e->size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
	if (S_ISREG(st->st_mode) && w->n_pre) {
		struct pre_digest key = { .ino = st->st_ino };
		const struct pre_digest *p = bsearch(&key, w->pre, w->n_pre, sizeof(key), pre_cmp);
		if (p && p->size == e->size)
			memcpy(e->digest, p->digest, sizeof(e->digest));
	}
	if (S_ISLNK(st->st_mode)) {
		char buf[PATH_MAX]; /* readlink targets are at most PATH_MAX */
		ssize_t l = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
		if (l < 0) {
			free(e->path);
			return berth_error_errno(w->err, "readlink '%s'", path);
		}
		buf[l] = '\0';
		e->link = xstrdup(buf);
	}
	ctx->n++;
	return 0;
}

static int walk(struct walker *w, int dirfd, const char *rel, int depth)
{
	if (depth > CONTEXT_MAX_DEPTH)
		return berth_error_msg(w->err, ELOOP, "build context nested deeper than %d at '%s'",
				       CONTEXT_MAX_DEPTH, rel);
	int dfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return berth_error_errno(w->err, "dup");
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return berth_error_errno(w->err, "open directory '%s'", *rel ? rel : ".");
	}
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *path = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		struct stat st;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return berth_error_errno(w->err, "stat '%s'", path);
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			continue; /* sockets, fifos, devices are not sent */
		bool excluded = build_ignore_matches(w->ctx->ignore, path);
		int r;
		if (!S_ISDIR(st.st_mode)) {
			if (!excluded && (r = add_entry(w, path, &st, dirfd, de->d_name)) < 0)
				return r;
			continue;
		}
		if (excluded && !build_ignore_has_exceptions(w->ctx->ignore))
			continue;
		size_t before = w->ctx->n;
		if (!excluded && (r = add_entry(w, path, &st, dirfd, de->d_name)) < 0)
			return r;
		_cleanup_close_ int sub =
		    openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return berth_error_errno(w->err, "open directory '%s'", path);
		if ((r = walk(w, sub, path, depth + 1)) < 0)
			return r;
		/* An excluded directory with re-included children is still sent. */
		if (excluded && w->ctx->n > before && (r = add_entry(w, path, &st, dirfd, de->d_name)) < 0)
			return r;
	}
	if (errno)
		return berth_error_errno(w->err, "read directory '%s'", *rel ? rel : ".");
	return 0;
}

int build_context_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ctx_entry *)a)->path, ((const struct ctx_entry *)b)->path);
}

struct ctx_entry *build_context_lookup(const struct build_context *ctx, const char *path, bool for_copy)
{
	struct ctx_entry key = { .path = (char *)path };
	if (ctx->n == 0)
		return NULL;
	struct ctx_entry *e = bsearch(&key, ctx->e, ctx->n, sizeof(*ctx->e), build_context_entry_cmp);
	if (e && for_copy && e->build_only)
		return NULL;
	return e;
}

/* Keep the Dockerfile and .dockerignore readable even when ignored. */
static int add_build_file(struct walker *w, const char *path)
{
	if (!path || build_context_lookup(w->ctx, path, false))
		return 0;
	_cleanup_free_ char *clean = build_go_path_clean(path);
	if (startswith(clean, "../") || streq(clean, "..") || clean[0] == '/' || strchr(clean, '/'))
		return 0; /* outside or nested: read through the normal lookup */
	struct stat st;
	if (fstatat(w->ctx->rootfd, clean, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return 0;
	int r = add_entry(w, clean, &st, w->ctx->rootfd, clean);
	if (r < 0)
		return r;
	w->ctx->e[w->ctx->n - 1].build_only = true;
	qsort(w->ctx->e, w->ctx->n, sizeof(*w->ctx->e), build_context_entry_cmp);
	return 0;
}

static int context_load(struct build_context *ctx, bool use_owner, const char *dockerfile,
			const struct pre_digest *pre, size_t n_pre, struct berth_error **err)
{
	struct walker w = { .ctx = ctx, .use_owner = use_owner, .pre = pre, .n_pre = n_pre, .err = err };
	_cleanup_strbuf_ struct strbuf ig = STRBUF_INIT;
	/* BuildKit: "<Dockerfile>.dockerignore" next to the Dockerfile wins over ".dockerignore" */
	_cleanup_free_ char *own = dockerfile ? xasprintf("%s.dockerignore", dockerfile) : NULL;
	const char *ignore_file = ".dockerignore";
	int r = -ENOENT;
	if (own && !startswith(own, "../") && own[0] != '/') {
		r = fs_open_in_root(ctx->rootfd, own, O_RDONLY, 0, 0, NULL);
		if (r >= 0) {
			_cleanup_close_ int fd = r;
			r = (int)strbuf_read_fd(&ig, fd, 1 << 20);
			ignore_file = own;
		}
	}
	if (r < 0)
		r = fs_read_file_at(ctx->rootfd, ".dockerignore", 1 << 20, &ig, NULL);
	if (r >= 0 && (r = build_ignore_parse(ig.buf, ig.len, &ctx->ignore, err)) < 0)
		return berth_error_wrap(err, r, "read '%s'", ignore_file);
	if ((r = walk(&w, ctx->rootfd, "", 0)) < 0)
		return r;
	if (ctx->n > 1)
		qsort(ctx->e, ctx->n, sizeof(*ctx->e), build_context_entry_cmp);
	if ((r = add_build_file(&w, ".dockerignore")) < 0)
		return r;
	return add_build_file(&w, dockerfile);
}

int build_context_load_dir(struct build_context *ctx, bool use_owner, const char *dockerfile,
			   struct berth_error **err)
{
	return context_load(ctx, use_owner, dockerfile, NULL, 0, err);
}

int build_context_open_dir(const char *dir, const char *dockerfile, struct build_context **ret,
			   struct berth_error **err)
{
	_cleanup_context_ struct build_context *ctx = build_context_new();
	ctx->root = xstrdup(dir);
	ctx->rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->rootfd < 0)
		return berth_error_errno(err, "open build context '%s'", dir);
	int r = context_load(ctx, false, dockerfile, NULL, 0, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ctx);
	return 0;
}

/* --- tar ----------------------------------------------------------------- */

int build_context_clean_tar_name(const char *name, char **ret, struct berth_error **err)
{
	while (*name == '/')
		name++;
	_cleanup_free_ char *c = build_go_path_clean(name);
	if (streq(c, "..") || startswith(c, "../"))
		return berth_error_msg(err, EPERM, "tar entry '%s' escapes the build context", name);
	*ret = TAKE_PTR(c);
	return 0;
}

/*
 * Extraction state. Consecutive regular files of one directory (what a tar
 * mostly is) reuse that directory's descriptor: `dir` is resolved in the root
 * once, not per file. The cache is dropped by anything that may change what
 * a directory path resolves to: a directory, symlink or hard link entry, and
 * a file replacing an existing entry. Per new file: open, write, close (plus
 * fchmod/fchown only when the creation mode or owner are not already right).
 */
struct extractor {
	int rootfd;
	char *dir;      /* the cached directory ("" = the root), or NULL */
	int dirfd;      /* its descriptor */
	bool dir_sgid;  /* it is set-group-ID: new files take its group */
	mode_t umask;   /* the process's, for the creation mode */
	bool root_user; /* euid and egid 0: new files are owned 0:0 */
	/*
	 * Digests of the files as written, so that hashing them for a cache key
	 * does not read them again. Only on a tmpfs, which never reuses an inode
	 * number within a mount: a digest keyed by inode then belongs to that
	 * file alone, whatever path it ends up under. Only files written in one
	 * contiguous run (no holes) are recorded; the others are read when hashed.
	 */
	bool record;
	struct pre_digest *pre;
	size_t n_pre;
};

static struct pre_digest *mfree_pre(struct pre_digest *p)
{
	free(p);
	return NULL;
}

static void extractor_drop_dir(struct extractor *x)
{
	x->dirfd = safe_close(x->dirfd);
	free(x->dir);
	x->dir = NULL;
}

/* The process umask without changing it (umask(2) would race other threads). */
mode_t build_context_umask(void)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, "/proc/self/status", 1 << 16, &sb, NULL) >= 0) {
		const char *u = strstr(sb.buf, "\nUmask:");
		if (u)
			return (mode_t)strtoul(u + 7, NULL, 8) & 0777;
	}
	return 0777; /* unknown: always fchmod */
}

static int parent_fd(struct extractor *x, const char *path, const char **base, struct berth_error **err)
{
	const char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	size_t dl = slash ? (size_t)(slash - path) : 0;
	if (x->dir && strlen(x->dir) == dl && !strncmp(x->dir, path, dl))
		return x->dirfd;
	extractor_drop_dir(x);
	_cleanup_free_ char *dir = xstrndup(path, dl);
	int fd = dl ? fs_mkdir_p_in_root(x->rootfd, dir, 0755, err) : fcntl(x->rootfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return dl ? fd : berth_error_errno(err, "dup");
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return berth_error_errno(err, "stat '%s'", dl ? dir : ".");
	}
	x->dir_sgid = st.st_mode & S_ISGID;
	x->dir = TAKE_PTR(dir);
	x->dirfd = fd;
	return fd;
}

static int extract_file(struct extractor *x, struct archive *a, const char *path, struct archive_entry *ae,
			struct berth_error **err)
{
	const char *base;
	int pfd = parent_fd(x, path, &base, err);
	if (pfd < 0)
		return pfd;
	mode_t perm = archive_entry_perm(ae) & 07777;
	mode_t cmode = perm & 0777;
	/* base is one cleaned component: no "/", "." or ".."; O_EXCL|O_NOFOLLOW never follows a link */
	int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	_cleanup_close_ int fd = openat(pfd, base, flags, cmode);
	if (fd < 0 && errno == EEXIST) {
		/* a later entry for the same path replaces it */
		if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
			return berth_error_errno(err, "replace '%s'", path);
		fd = openat(pfd, base, flags, cmode);
		extractor_drop_dir(x); /* the tree changed */
	}
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", path);
	const void *buf;
	size_t size;
	la_int64_t off, pos = 0;
	int r;
	_cleanup_digester_ struct digester *dg = x->record ? digester_new(DIGEST_SHA256) : NULL;
	while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK) {
		if (off != pos) {
			if (lseek(fd, off, SEEK_SET) < 0)
				return berth_error_errno(err, "write '%s'", path);
			dg = digester_free(dg); /* a hole: hashed from the file later */
		}
		if (fs_write_all(fd, buf, size) < 0)
			return berth_error_errno(err, "write '%s'", path);
		if (dg)
			digester_update(dg, buf, size);
		pos = off + (la_int64_t)size;
	}
	if (r != ARCHIVE_EOF)
		return berth_error_msg(err, EIO, "read tar entry '%s': %s", path, archive_error_string(a));
	uid_t uid = (uid_t)archive_entry_uid(ae);
	gid_t gid = (gid_t)archive_entry_gid(ae);
	/* the owner before the mode: a chown clears set-user-ID bits */
	if ((pos != archive_entry_size(ae) && ftruncate(fd, archive_entry_size(ae)) < 0) ||
	    ((uid || gid || !x->root_user || x->dir_sgid) && fchown(fd, uid, gid) < 0) ||
	    ((perm != cmode || (cmode & x->umask)) && fchmod(fd, perm) < 0))
		return berth_error_errno(err, "set attributes of '%s'", path);
	struct stat st;
	if (dg && pos == archive_entry_size(ae) && fstat(fd, &st) == 0) {
		if ((x->n_pre & (x->n_pre - 1)) == 0)
			x->pre = xrealloc(x->pre, (x->n_pre ? x->n_pre * 2 : 16) * sizeof(*x->pre));
		struct pre_digest *p = &x->pre[x->n_pre++];
		p->ino = st.st_ino;
		p->size = (uint64_t)pos;
		digester_final(dg, p->digest);
	}
	return 0;
}

static int extract_entry(struct extractor *x, struct archive *a, struct archive_entry *ae,
			 struct berth_error **err)
{
	_cleanup_free_ char *path = NULL;
	int rootfd = x->rootfd;
	int r = build_context_clean_tar_name(archive_entry_pathname(ae), &path, err);
	if (r < 0 || streq(path, "."))
		return r;
	const char *hl = archive_entry_hardlink(ae);
	if (!hl && archive_entry_filetype(ae) == AE_IFREG)
		return extract_file(x, a, path, ae, err);
	extractor_drop_dir(x); /* anything else may change what a directory path resolves to */
	if (hl) {
		/* a new file outside extract_file: no recorded digest may be trusted after it */
		x->record = false;
		x->pre = mfree_pre(x->pre);
		x->n_pre = 0;
		_cleanup_free_ char *target = NULL;
		if ((r = build_context_clean_tar_name(hl, &target, err)) < 0)
			return r;
		_cleanup_strbuf_ struct strbuf data = STRBUF_INIT;
		if ((r = fs_read_file_at(rootfd, target, 0, &data, err)) < 0)
			return berth_error_wrap(err, r, "tar hard link '%s'", path);
		return fs_write_file_atomic_at(rootfd, path, data.buf, data.len, 0644, err);
	}
	switch (archive_entry_filetype(ae)) {
	case AE_IFDIR: {
		_cleanup_close_ int fd = fs_mkdir_p_in_root(rootfd, path, 0755, err);
		if (fd < 0)
			return fd;
		_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
		if (chmod(proc, archive_entry_perm(ae) & 07777) < 0 ||
		    chown(proc, (uid_t)archive_entry_uid(ae), (gid_t)archive_entry_gid(ae)) < 0)
			return berth_error_errno(err, "set attributes of '%s'", path);
		return 0;
	}
	case AE_IFLNK: {
		const char *base;
		int pfd = parent_fd(x, path, &base, err);
		if (pfd < 0)
			return pfd;
		unlinkat(pfd, base, 0);
		r = 0;
		if (symlinkat(archive_entry_symlink(ae), pfd, base) < 0 ||
		    fchownat(pfd, base, (uid_t)archive_entry_uid(ae), (gid_t)archive_entry_gid(ae),
			     AT_SYMLINK_NOFOLLOW) < 0)
			r = berth_error_errno(err, "create symlink '%s'", path);
		extractor_drop_dir(x);
		return r;
	}
	default: return 0; /* devices, fifos: not part of a build context */
	}
}

static int extract_tar(int fd, int rootfd, bool digests, struct pre_digest **ret_pre, size_t *ret_n_pre,
		       struct berth_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	int r = 0;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		r = berth_error_msg(err, EINVAL, "read context tar: %s", archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	struct extractor x = { .rootfd = rootfd,
			       .dirfd = -1,
			       .umask = build_context_umask(),
			       .root_user = geteuid() == 0 && getegid() == 0 };
	struct statfs sfs;
	x.record = digests && fstatfs(rootfd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
	struct archive_entry *ae;
	size_t count = 0;
	int ar;
	while ((ar = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		if (++count > CONTEXT_MAX_ENTRIES) {
			r = berth_error_msg(err, EFBIG, "context tar has more than %d entries",
					    CONTEXT_MAX_ENTRIES);
			break;
		}
		if ((r = extract_entry(&x, a, ae, err)) < 0)
			break;
	}
	extractor_drop_dir(&x);
	if (r == 0 && ar != ARCHIVE_EOF)
		r = berth_error_msg(err, EINVAL, "read context tar: %s", archive_error_string(a));
	archive_read_free(a);
	/* by inode; unique on a tmpfs, but an inode seen twice would keep neither record */
	size_t n = 0;
	if (x.n_pre > 1)
		qsort(x.pre, x.n_pre, sizeof(*x.pre), pre_cmp);
	for (size_t i = 0; i < x.n_pre; i++) {
		bool dup = (i > 0 && x.pre[i - 1].ino == x.pre[i].ino) ||
			   (i + 1 < x.n_pre && x.pre[i + 1].ino == x.pre[i].ino);
		if (!dup)
			x.pre[n++] = x.pre[i];
	}
	*ret_pre = x.pre;
	*ret_n_pre = n;
	return r;
}

int build_context_extract_fd(int fd, int rootfd, struct berth_error **err)
{
	_cleanup_free_ struct pre_digest *pre = NULL;
	size_t n_pre = 0;
	return extract_tar(fd, rootfd, false, &pre, &n_pre, err);
}

int build_context_mkdtemp(struct build_context *ctx, const char *dir, struct berth_error **err)
{
	_cleanup_free_ char *tmpl = xasprintf("%s/berth-context-XXXXXX", dir ? dir : "/tmp");
	if (!mkdtemp(tmpl))
		return berth_error_errno(err, "create directory in '%s'", dir ? dir : "/tmp");
	ctx->root = TAKE_PTR(tmpl);
	ctx->owned_root = true;
	ctx->rootfd = open(ctx->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->rootfd < 0)
		return berth_error_errno(err, "open '%s'", ctx->root);
	return 0;
}

int build_context_open_tar(int fd, const char *tmpdir, const char *dockerfile, struct build_context **ret,
			   struct berth_error **err)
{
	_cleanup_context_ struct build_context *ctx = build_context_new();
	int r = build_context_mkdtemp(ctx, tmpdir, err);
	if (r < 0)
		return r;
	_cleanup_free_ struct pre_digest *pre = NULL;
	size_t n_pre = 0;
	r = extract_tar(fd, ctx->rootfd, true, &pre, &n_pre, err);
	if (r >= 0)
		r = context_load(ctx, true, dockerfile, pre, n_pre, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ctx);
	return 0;
}

int build_context_read(const struct build_context *ctx, const char *path, size_t max, struct strbuf *sb,
		       struct berth_error **err)
{
	_cleanup_free_ char *clean = NULL;
	int r = build_context_clean_source(path, &clean, err);
	if (r < 0)
		return r;
	const struct build_context_lazy *lz = ctx->lazy;
	if (lz && lz->df_complete && streq(clean, lz->df_path)) {
		/* the Dockerfile, kept while the stream was scanned */
		if (lz->df.len > max)
			return berth_error_msg(err, EFBIG, "'%s' is larger than %zu bytes", path, max);
		strbuf_add(sb, lz->df.buf, lz->df.len);
		return 0;
	}
	if ((r = build_context_extract(ctx, err)) < 0)
		return r;
	_cleanup_close_ int fd = fs_open_in_root(ctx->rootfd, clean, O_RDONLY, 0, 0, err);
	if (fd < 0)
		return fd;
	ssize_t n = strbuf_read_fd(sb, fd, max);
	if (n == -EFBIG)
		return berth_error_msg(err, EFBIG, "'%s' is larger than %zu bytes", path, max);
	if (n < 0)
		return berth_error_set(err, (int)n, "read '%s'", path);
	return 0;
}

struct build_context *build_context_new(void)
{
	struct build_context *ctx = xcalloc(1, sizeof(*ctx));
	ctx->rootfd = -1;
	pthread_mutex_init(&ctx->view_lock, NULL);
	return ctx;
}

struct build_context *build_context_free(struct build_context *ctx)
{
	if (!ctx)
		return NULL;
	if (ctx->view && (ctx->owned_root || !ctx->view_beside))
		(void)fs_rm_rf(ctx->view, NULL);
	free(ctx->view);
	pthread_mutex_destroy(&ctx->view_lock);
	for (size_t i = 0; i < ctx->n; i++) {
		free(ctx->e[i].path);
		free(ctx->e[i].link);
	}
	free(ctx->e);
	build_ignore_free(ctx->ignore);
	if (ctx->lazy) {
		safe_close(ctx->lazy->spool_fd);
		pthread_mutex_destroy(&ctx->lazy->lock);
		free(ctx->lazy->df_path);
		strbuf_release(&ctx->lazy->df);
		free(ctx->lazy->tmpdir);
		free(ctx->lazy);
	}
	safe_close(ctx->rootfd);
	if (ctx->owned_root && ctx->root)
		fs_rm_rf(ctx->root, NULL);
	free(ctx->root);
	free(ctx);
	return NULL;
}
