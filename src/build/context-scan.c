/*
 * context-scan.c - a context tar scanned as it streams (the POST /build
 * body): one pass records what extracting it and walking the result would
 * find (paths, types, modes, owners, sizes, link targets, sha256 digests,
 * .dockerignore applied), keeps the Dockerfile, and leaves the bytes in the
 * caller's spool. The files are written only if a step needs them
 * (build_context_extract): a fully cached rebuild writes none.
 *
 * Trade-off: the entry list must be exactly the walk's, or cache keys would
 * change. The scanner models a *plain replay* (files, directories, symlinks,
 * hard links to files, later entries replacing earlier files, parents
 * created 0755 & ~umask); anything else (a path through a symlink, a file or
 * symlink over a directory, set-id bits, a non-root daemon, a symlinked or
 * oversized ignore file, ...) makes it extract at once and walk, the old
 * way. Those tars are rare (docker's CLI never sends them) and still right.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "build/context-internal.h"
#include "build/dockerfile.h"
#include "build/pathmatch.h"
#include "common/fs.h"

#define SCAN_BUF       (256u * 1024)
#define SCAN_MAX_DEPTH 250 /* below the walk's CONTEXT_MAX_DEPTH: deeper tars take the old path */

/* The special files kept in memory while they stream. */
enum { KEEP_DOCKERFILE, KEEP_OWN_IGNORE, KEEP_IGNORE, KEEP_N };

struct scan_ent {
	char *path;
	mode_t mode;
	uint32_t uid, gid;
	uint64_t size;
	char *link;
	uint64_t data_off;
	char digest[DIGEST_STRING_MAX];
};

struct scanner {
	const struct build_context_scan_opts *o;
	struct archive *a;
	char *buf;
	bool eof;
	struct scan_ent *e;
	size_t n;
	uint32_t *slot; /* open addressing by path: entry index + 1, 0 free */
	size_t n_slot;
	bool plain;    /* uncompressed: data offsets are spool offsets */
	bool fallback; /* not a plain replay: extract and walk */
	mode_t dir_mode;
	uid_t uid;
	gid_t gid;
	char *keep_path[KEEP_N];
	struct strbuf keep[KEEP_N];
	bool kept[KEEP_N]; /* keep[k] is the whole content of the file now at keep_path[k] */
};

static const size_t keep_max[KEEP_N] = { DF_MAX_SIZE + 1, CTX_IGNORE_MAX, CTX_IGNORE_MAX };

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct scan_ent *find(const struct scanner *sc, const char *path)
{
	if (!sc->n_slot)
		return NULL;
	for (size_t i = path_hash(path) & (sc->n_slot - 1);; i = (i + 1) & (sc->n_slot - 1)) {
		if (!sc->slot[i])
			return NULL;
		if (streq(sc->e[sc->slot[i] - 1].path, path))
			return &sc->e[sc->slot[i] - 1];
	}
}

static void index_put(struct scanner *sc, size_t idx)
{
	size_t i = path_hash(sc->e[idx].path) & (sc->n_slot - 1);
	while (sc->slot[i])
		i = (i + 1) & (sc->n_slot - 1);
	sc->slot[i] = (uint32_t)idx + 1;
}

/* A new entry at path (not present); the caller fills it in. */
static struct scan_ent *add(struct scanner *sc, const char *path)
{
	if ((sc->n & (sc->n - 1)) == 0)
		sc->e = xrealloc(sc->e, (sc->n ? sc->n * 2 : 16) * sizeof(*sc->e));
	if ((sc->n + 1) * 2 > sc->n_slot) {
		free(sc->slot);
		sc->n_slot = sc->n_slot ? sc->n_slot * 2 : 64;
		sc->slot = xcalloc(sc->n_slot, sizeof(*sc->slot));
		for (size_t i = 0; i < sc->n; i++)
			index_put(sc, i);
	}
	struct scan_ent *e = &sc->e[sc->n];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(path);
	index_put(sc, sc->n++);
	return e;
}

/* Reuse the entry at path (a file or symlink being replaced) or add one; NULL: a directory is there. */
static struct scan_ent *put(struct scanner *sc, const char *path)
{
	struct scan_ent *e = find(sc, path);
	if (!e)
		return add(sc, path);
	if (S_ISDIR(e->mode))
		return NULL;
	free(e->link);
	char *p = e->path;
	memset(e, 0, sizeof(*e));
	e->path = p;
	return e;
}

/* Parents as extraction makes them (mkdir 0755, owned by the daemon); false when one is not a
 * directory (extraction would follow a symlink or fail). create=false: they must exist. */
static bool parents(struct scanner *sc, const char *path, bool create)
{
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		_cleanup_free_ char *dir = xstrndup(path, (size_t)(s - path));
		struct scan_ent *d = find(sc, dir);
		if (d && !S_ISDIR(d->mode))
			return false;
		if (d)
			continue;
		if (!create)
			return false;
		d = add(sc, dir);
		d->mode = S_IFDIR | sc->dir_mode;
		d->uid = sc->uid;
		d->gid = sc->gid;
	}
	return true;
}

/* Which kept files a path is (bit k: keep_path[k]). */
static unsigned keep_mask(const struct scanner *sc, const char *path)
{
	unsigned m = 0;
	for (int k = 0; k < KEEP_N; k++)
		if (sc->keep_path[k] && streq(sc->keep_path[k], path))
			m |= 1u << k;
	return m;
}

static void keep_reset(struct scanner *sc, unsigned mask, bool whole)
{
	for (int k = 0; k < KEEP_N; k++)
		if (mask & (1u << k)) {
			strbuf_setlen(&sc->keep[k], 0);
			sc->kept[k] = whole;
		}
}

static void feed(struct scanner *sc, struct digester *dg, unsigned mask, const void *buf, size_t n)
{
	digester_update(dg, buf, n);
	for (int k = 0; k < KEEP_N; k++)
		if ((mask & (1u << k)) && sc->kept[k])
			strbuf_add(&sc->keep[k], buf, n);
}

static void feed_zeros(struct scanner *sc, struct digester *dg, unsigned mask, uint64_t n)
{
	static const char zeros[16384];
	while (n) {
		size_t c = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
		feed(sc, dg, mask, zeros, c);
		n -= c;
	}
}

/* A regular file's content: digest (holes and a short tail read as zeros, as the extracted file
 * would), the kept copy, and where it lies in the spool when that is one contiguous run. */
static int scan_data(struct scanner *sc, struct archive_entry *ae, struct scan_ent *e, const char *path,
		     struct berth_error **err)
{
	unsigned mask = keep_mask(sc, path);
	keep_reset(sc, mask, e->size <= DF_MAX_SIZE + 1);
	for (int k = 0; k < KEEP_N; k++)
		if ((mask & (1u << k)) && e->size > keep_max[k])
			sc->kept[k] = false;
	la_int64_t start = archive_filter_bytes(sc->a, 0);
	_cleanup_digester_ struct digester *dg = digester_new(DIGEST_SHA256);
	const void *buf;
	size_t size;
	la_int64_t off, pos = 0;
	bool contiguous = true;
	int r;
	while ((r = archive_read_data_block(sc->a, &buf, &size, &off)) == ARCHIVE_OK) {
		if (off < pos)
			return berth_error_msg(err, EIO, "read tar entry '%s': overlapping data", path);
		if (off > pos) {
			feed_zeros(sc, dg, mask, (uint64_t)(off - pos));
			contiguous = false;
		}
		feed(sc, dg, mask, buf, size);
		pos = off + (la_int64_t)size;
	}
	if (r != ARCHIVE_EOF)
		return berth_error_msg(err, EIO, "read tar entry '%s': %s", path,
				       archive_error_string(sc->a));
	if ((uint64_t)pos < e->size) {
		feed_zeros(sc, dg, mask, e->size - (uint64_t)pos);
		contiguous = false;
	}
	digester_final(dg, e->digest);
	/* a sparse entry's map (pax 1.0) is read with its data: known only now */
	if (sc->plain && contiguous && start > 0 && archive_entry_sparse_count(ae) == 0)
		e->data_off = (uint64_t)start;
	return 0;
}

static int scan_hardlink(struct scanner *sc, const char *path, const char *hl, struct berth_error **err)
{
	_cleanup_free_ char *target = NULL;
	int r = build_context_clean_tar_name(hl, &target, err);
	if (r < 0)
		return r;
	const struct scan_ent *t = find(sc, target);
	if (!t || !S_ISREG(t->mode)) {
		sc->fallback = true;
		return 0;
	}
	/* a copy of the target written beside it (the parent must exist), mode 0644, the daemon's;
	 * put() may reset or move the target (a link to itself): take what it has first */
	struct scan_ent copy = *t;
	struct scan_ent *e;
	if (!parents(sc, path, false) || !(e = put(sc, path))) {
		sc->fallback = true;
		return 0;
	}
	e->mode = S_IFREG | 0644;
	e->uid = sc->uid;
	e->gid = sc->gid;
	e->size = copy.size;
	e->data_off = copy.data_off;
	memcpy(e->digest, copy.digest, sizeof(e->digest));
	keep_reset(sc, keep_mask(sc, path), false);
	return 0;
}

static int scan_entry(struct scanner *sc, struct archive_entry *ae, struct berth_error **err)
{
	_cleanup_free_ char *path = NULL;
	int r = build_context_clean_tar_name(archive_entry_pathname(ae), &path, err);
	if (r < 0 || streq(path, "."))
		return r;
	const char *hl = archive_entry_hardlink(ae);
	mode_t type = archive_entry_filetype(ae);
	if (!hl && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return 0; /* devices, fifos: not extracted */
	size_t depth = 0;
	for (const char *s = path; (s = strchr(s, '/')); s++)
		depth++;
	mode_t perm = archive_entry_perm(ae) & 07777;
	if (depth > SCAN_MAX_DEPTH || (perm & 07000)) {
		sc->fallback = true;
		return 0;
	}
	if (hl)
		return scan_hardlink(sc, path, hl, err);
	struct scan_ent *e = NULL;
	if (!parents(sc, path, true)) {
		sc->fallback = true;
		return 0;
	}
	if (type == AE_IFDIR) {
		e = find(sc, path);
		if (e && !S_ISDIR(e->mode)) {
			sc->fallback = true;
			return 0;
		}
		if (!e)
			e = add(sc, path);
		e->mode = S_IFDIR | perm;
	} else if (!(e = put(sc, path)) ||
		   (type == AE_IFLNK &&
		    (!archive_entry_symlink(ae) || strlen(archive_entry_symlink(ae)) >= PATH_MAX - 1))) {
		sc->fallback = true;
		return 0;
	}
	e->uid = (uint32_t)archive_entry_uid(ae);
	e->gid = (uint32_t)archive_entry_gid(ae);
	if (type == AE_IFLNK) {
		e->mode = S_IFLNK | 0777;
		e->link = xstrdup(archive_entry_symlink(ae));
		keep_reset(sc, keep_mask(sc, path), false);
		return 0;
	}
	if (type == AE_IFDIR) {
		keep_reset(sc, keep_mask(sc, path), false);
		return 0;
	}
	e->mode = S_IFREG | perm;
	e->size = archive_entry_size(ae) > 0 ? (uint64_t)archive_entry_size(ae) : 0;
	return scan_data(sc, ae, e, path, err);
}

static la_ssize_t scan_read(struct archive *a, void *ud, const void **buf)
{
	struct scanner *sc = ud;
	if (sc->eof)
		return 0;
	ssize_t n = sc->o->read(sc->o->read_userdata, sc->buf, SCAN_BUF);
	if (n < 0) {
		archive_set_error(a, (int)-n, "%s", strerror((int)-n));
		return -1;
	}
	sc->eof = n == 0;
	*buf = sc->buf;
	return n;
}

/* The tar's entries, then the rest of the stream (past the end-of-archive blocks) to the spool. */
static int scan_stream(struct scanner *sc, struct berth_error **err)
{
	archive_read_support_filter_all(sc->a);
	archive_read_support_format_tar(sc->a);
	archive_read_support_format_empty(sc->a);
	if (archive_read_open(sc->a, sc, NULL, scan_read, NULL) != ARCHIVE_OK)
		return berth_error_msg(err, EINVAL, "read context tar: %s", archive_error_string(sc->a));
	struct archive_entry *ae;
	size_t count = 0;
	int ar, r = 0;
	while ((ar = archive_read_next_header(sc->a, &ae)) == ARCHIVE_OK) {
		if (count++ == 0)
			sc->plain = archive_filter_count(sc->a) == 1 &&
				    archive_filter_code(sc->a, 0) == ARCHIVE_FILTER_NONE;
		if (count > CONTEXT_MAX_ENTRIES)
			return berth_error_msg(err, EFBIG, "context tar has more than %d entries",
					       CONTEXT_MAX_ENTRIES);
		if ((r = scan_entry(sc, ae, err)) < 0)
			return r;
	}
	if (ar != ARCHIVE_EOF)
		return berth_error_msg(err, EINVAL, "read context tar: %s", archive_error_string(sc->a));
	while (!sc->eof) {
		ssize_t n = sc->o->read(sc->o->read_userdata, sc->buf, SCAN_BUF);
		if (n < 0)
			return berth_error_set(err, (int)-n, "read context tar");
		sc->eof = n == 0;
	}
	return 0;
}

/* The kept content of a special file for context_load's reads: 1 and *ret, 0 absent, -1 take the
 * old path (not a regular file, or not kept whole). */
static int kept_file(const struct scanner *sc, int k, const struct strbuf **ret)
{
	const struct scan_ent *e = sc->keep_path[k] ? find(sc, sc->keep_path[k]) : NULL;
	if (!e)
		return 0;
	if (!S_ISREG(e->mode) || !sc->kept[k] || sc->keep[k].len != e->size || e->size > keep_max[k])
		return -1;
	*ret = &sc->keep[k];
	return 1;
}

/* The ignore rules the way context_load reads them; 1 when the old path must decide. */
static int scan_ignore(struct scanner *sc, struct build_context *ctx, const char *dockerfile,
		       struct berth_error **err)
{
	const struct strbuf *text = NULL;
	const char *name = ".dockerignore";
	int r = 0;
	_cleanup_free_ char *own = dockerfile ? xasprintf("%s.dockerignore", dockerfile) : NULL;
	if (own && !startswith(own, "../") && own[0] != '/') {
		if (!sc->keep_path[KEEP_OWN_IGNORE])
			return 1; /* resolves above the root */
		if ((r = kept_file(sc, KEEP_OWN_IGNORE, &text)) < 0)
			return 1;
		name = own;
	}
	if (r == 0) {
		name = ".dockerignore";
		if ((r = kept_file(sc, KEEP_IGNORE, &text)) < 0)
			return 1;
	}
	if (r > 0 && (r = build_ignore_parse(text->buf, text->len, &ctx->ignore, err)) < 0)
		return berth_error_wrap(err, r, "read '%s'", name);
	return 0;
}

/* An entry's index by its depth, to decide parents before their children. */
struct by_depth {
	size_t depth, i;
};

static int depth_cmp(const void *a, const void *b)
{
	const struct by_depth *x = a, *y = b;
	return x->depth < y->depth ? -1 : x->depth > y->depth;
}

static size_t parent_of(const struct scanner *sc, size_t i)
{
	const char *p = sc->e[i].path, *s = strrchr(p, '/');
	if (!s)
		return SIZE_MAX;
	_cleanup_free_ char *dir = xstrndup(p, (size_t)(s - p));
	const struct scan_ent *d = find(sc, dir);
	return d ? (size_t)(d - sc->e) : SIZE_MAX; /* parents always exist (scan_entry made them) */
}

/* The walk's choice, one ignore match per entry: without exception rules an ignored directory
 * hides its subtree (parents decided first); with them every entry is visited and an ignored
 * directory stays when something below it does. */
static bool *scan_keep(struct scanner *sc, const struct ignore *ig)
{
	bool *keep = xcalloc(sc->n ? sc->n : 1, sizeof(bool));
	if (!build_ignore_has_exceptions(ig)) {
		struct by_depth *order = xcalloc(sc->n ? sc->n : 1, sizeof(*order));
		for (size_t i = 0; i < sc->n; i++) {
			order[i].i = i;
			for (const char *p = sc->e[i].path; (p = strchr(p, '/')); p++)
				order[i].depth++;
		}
		qsort(order, sc->n, sizeof(*order), depth_cmp);
		for (size_t k = 0; k < sc->n; k++) {
			size_t i = order[k].i, p = parent_of(sc, i);
			keep[i] = (p == SIZE_MAX || keep[p]) && !build_ignore_matches(ig, sc->e[i].path);
		}
		free(order);
		return keep;
	}
	for (size_t i = 0; i < sc->n; i++)
		keep[i] = !build_ignore_matches(ig, sc->e[i].path);
	for (size_t i = 0; i < sc->n; i++)
		for (size_t p = keep[i] ? parent_of(sc, i) : SIZE_MAX; p != SIZE_MAX && !keep[p];
		     p = parent_of(sc, p))
			keep[p] = true;
	return keep;
}

static void copy_entry(struct build_context *ctx, struct scan_ent *s, bool build_only)
{
	if ((ctx->n & (ctx->n - 1)) == 0)
		ctx->e = xrealloc(ctx->e, (ctx->n ? ctx->n * 2 : 16) * sizeof(*ctx->e));
	struct ctx_entry *e = &ctx->e[ctx->n++];
	memset(e, 0, sizeof(*e));
	e->path = xstrdup(s->path);
	e->mode = s->mode;
	e->uid = s->uid;
	e->gid = s->gid;
	e->size = S_ISREG(s->mode) ? s->size : 0;
	e->link = s->link ? xstrdup(s->link) : NULL;
	e->build_only = build_only;
	e->data_off = s->data_off;
	if (S_ISREG(s->mode))
		memcpy(e->digest, s->digest, sizeof(e->digest));
}

/* context_load's add_build_file over the scanned entries. */
static void scan_build_file(struct scanner *sc, struct build_context *ctx, const char *path)
{
	if (!path || build_context_lookup(ctx, path, false))
		return;
	_cleanup_free_ char *clean = build_go_path_clean(path);
	if (startswith(clean, "../") || streq(clean, "..") || clean[0] == '/' || strchr(clean, '/'))
		return;
	struct scan_ent *s = find(sc, clean);
	if (!s || !S_ISREG(s->mode))
		return;
	copy_entry(ctx, s, true);
	qsort(ctx->e, ctx->n, sizeof(*ctx->e), build_context_entry_cmp);
}

/* The entries the walk would have found; 1 when the old path must decide. */
static int scan_finish(struct scanner *sc, struct build_context *ctx, const char *dockerfile,
		       struct berth_error **err)
{
	if (sc->n >= CONTEXT_MAX_ENTRIES)
		return 1; /* with the parents it made: the walk's limit decides */
	int r = scan_ignore(sc, ctx, dockerfile, err);
	if (r != 0)
		return r;
	_cleanup_free_ bool *keep = scan_keep(sc, ctx->ignore);
	for (size_t i = 0; i < sc->n; i++)
		if (keep[i])
			copy_entry(ctx, &sc->e[i], false);
	if (ctx->n > 1)
		qsort(ctx->e, ctx->n, sizeof(*ctx->e), build_context_entry_cmp);
	scan_build_file(sc, ctx, ".dockerignore");
	scan_build_file(sc, ctx, dockerfile);
	struct build_context_lazy *lz = ctx->lazy;
	if (sc->kept[KEEP_DOCKERFILE] && lz->df_path && find(sc, lz->df_path) &&
	    S_ISREG(find(sc, lz->df_path)->mode)) {
		lz->df = sc->keep[KEEP_DOCKERFILE];
		sc->keep[KEEP_DOCKERFILE] = (struct strbuf)STRBUF_INIT;
		lz->df_complete = true;
	}
	return 0;
}

static void scanner_done(struct scanner *sc)
{
	if (sc->a)
		archive_read_free(sc->a);
	for (size_t i = 0; i < sc->n; i++) {
		free(sc->e[i].path);
		free(sc->e[i].link);
	}
	free(sc->e);
	free(sc->slot);
	free(sc->buf);
	for (int k = 0; k < KEEP_N; k++) {
		free(sc->keep_path[k]);
		strbuf_release(&sc->keep[k]);
	}
}

static void scanner_init(struct scanner *sc, const struct build_context_scan_opts *o)
{
	*sc = (struct scanner){ .o = o, .a = archive_read_new(), .buf = xmalloc(SCAN_BUF) };
	mode_t um = build_context_umask();
	sc->dir_mode = 0755 & ~um;
	sc->uid = geteuid();
	sc->gid = getegid();
	/* extraction sets owners with fchown: only root replays them all; an unknown umask (0777)
	 * leaves the mode of the parents it makes unknown */
	sc->fallback = sc->uid != 0 || sc->gid != 0 || um == 0777;
	for (int k = 0; k < KEEP_N; k++)
		sc->keep[k] = (struct strbuf)STRBUF_INIT;
	_cleanup_free_ char *own = o->dockerfile ? xasprintf("%s.dockerignore", o->dockerfile) : NULL;
	if (o->dockerfile)
		(void)build_context_clean_source(o->dockerfile, &sc->keep_path[KEEP_DOCKERFILE], NULL);
	if (own && !startswith(own, "../") && own[0] != '/') {
		char *c = build_go_path_clean(own);
		if (streq(c, "..") || startswith(c, "../"))
			free(c);
		else
			sc->keep_path[KEEP_OWN_IGNORE] = c;
	}
	sc->keep_path[KEEP_IGNORE] = xstrdup(".dockerignore");
}

static struct build_context_lazy *lazy_new(const struct build_context_scan_opts *o)
{
	struct build_context_lazy *lz = xcalloc(1, sizeof(*lz));
	pthread_mutex_init(&lz->lock, NULL);
	lz->spool_fd = fcntl(o->spool_fd, F_DUPFD_CLOEXEC, 3);
	lz->df = (struct strbuf)STRBUF_INIT;
	lz->dir = o->dir;
	lz->dir_userdata = o->dir_userdata;
	lz->tmpdir = o->tmpdir ? xstrdup(o->tmpdir) : NULL;
	if (o->dockerfile)
		(void)build_context_clean_source(o->dockerfile, &lz->df_path, NULL);
	return lz;
}

int build_context_scan_tar(const struct build_context_scan_opts *o, struct build_context **ret,
			   struct berth_error **err)
{
	_cleanup_context_ struct build_context *ctx = build_context_new();
	ctx->lazy = lazy_new(o);
	if (ctx->lazy->spool_fd < 0)
		return berth_error_errno(err, "duplicate the context spool");
	struct scanner sc;
	scanner_init(&sc, o);
	int r = scan_stream(&sc, err);
	ctx->lazy->plain = sc.plain;
	if (r >= 0 && !sc.fallback)
		r = scan_finish(&sc, ctx, o->dockerfile, err);
	else if (r >= 0)
		r = 1;
	scanner_done(&sc);
	if (r > 0) {
		/* the old path: extract now, walk what was written */
		for (size_t i = 0; i < ctx->n; i++) {
			free(ctx->e[i].path);
			free(ctx->e[i].link);
		}
		free(ctx->e);
		ctx->e = NULL;
		ctx->n = 0;
		build_ignore_free(ctx->ignore);
		ctx->ignore = NULL;
		strbuf_release(&ctx->lazy->df);
		ctx->lazy->df_complete = false;
		if ((r = build_context_extract(ctx, err)) >= 0)
			r = build_context_load_dir(ctx, true, o->dockerfile, err);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ctx);
	return 0;
}

/* --- extraction on demand -------------------------------------------------- */

static int extract_spool(struct build_context *ctx, struct berth_error **err)
{
	struct build_context_lazy *lz = ctx->lazy;
	_cleanup_free_ char *dir = NULL;
	int r = 0;
	if (lz->dir && (r = lz->dir(lz->dir_userdata, &dir, err)) < 0)
		return r;
	if ((r = build_context_mkdtemp(ctx, dir ? dir : lz->tmpdir, err)) >= 0) {
		if (lseek(lz->spool_fd, 0, SEEK_SET) < 0)
			r = berth_error_errno(err, "rewind the context spool");
		else
			r = build_context_extract_fd(lz->spool_fd, ctx->rootfd, err);
	}
	if (r < 0) {
		ctx->rootfd = safe_close(ctx->rootfd);
		if (ctx->root && ctx->owned_root)
			(void)fs_rm_rf(ctx->root, NULL);
		free(ctx->root);
		ctx->root = NULL;
		ctx->owned_root = false;
	}
	return r;
}

int build_context_extract(const struct build_context *cctx, struct berth_error **err)
{
	/* filled in once, under the lock: the files are the context's lazily computed part */
	struct build_context *ctx = (struct build_context *)cctx;
	struct build_context_lazy *lz = ctx->lazy;
	if (!lz)
		return 0;
	pthread_mutex_lock(&lz->lock);
	int r = 0;
	if (!lz->extracted && (r = extract_spool(ctx, err)) >= 0)
		lz->extracted = true;
	pthread_mutex_unlock(&lz->lock);
	return r;
}

bool build_context_is_extracted(const struct build_context *ctx)
{
	struct build_context_lazy *lz = ctx->lazy;
	if (!lz)
		return true;
	pthread_mutex_lock(&lz->lock);
	bool x = lz->extracted;
	pthread_mutex_unlock(&lz->lock);
	return x;
}
