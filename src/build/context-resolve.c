/*
 * context-resolve.c - COPY/ADD source resolution over a build context and
 * the content hash of what was resolved (the cache key input).
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "build/context-internal.h"
#include "build/pathmatch.h"
#include "common/fs.h"

int build_context_clean_source(const char *src, char **ret, struct berth_error **err)
{
	const char *s = src;
	while (*s == '/')
		s++;
	_cleanup_free_ char *c = build_go_path_clean(s);
	if (streq(c, "..") || startswith(c, "../"))
		return berth_error_msg(err, EPERM, "forbidden path outside the build context: '%s'", src);
	*ret = TAKE_PTR(c);
	return 0;
}

/*
 * Resolve symlinks in a context path the way COPY follows them: relative
 * targets against the link's directory, absolute ones against the context
 * root, ".." never above the root; at most 40 links. Returns the entry or
 * NULL (dangling, loop).
 */
static struct ctx_entry *follow(const struct build_context *ctx, const char *path)
{
	_cleanup_free_ char *cur = xstrdup(path);
	for (int hops = 0; hops <= 40; hops++) {
		struct ctx_entry *e = build_context_lookup(ctx, cur, true);
		if (e && !S_ISLNK(e->mode))
			return e;
		/* find the first symlink component of cur */
		size_t len = strlen(cur);
		struct ctx_entry *link = NULL;
		size_t plen = 0;
		for (size_t i = 1; i <= len && !link; i++) {
			if (i < len && cur[i] != '/')
				continue;
			_cleanup_free_ char *prefix = xstrndup(cur, i);
			struct ctx_entry *pe = build_context_lookup(ctx, prefix, true);
			if (!pe)
				return NULL;
			if (S_ISLNK(pe->mode)) {
				link = pe;
				plen = i;
			}
		}
		if (!link)
			return NULL;
		_cleanup_free_ char *dir = xstrndup(cur, plen);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		else
			dir[0] = '\0';
		const char *t = link->link;
		_cleanup_free_ char *joined = t[0] == '/' ? xasprintf("/%s%s", t, cur + plen)
							  : xasprintf("/%s/%s%s", dir, t, cur + plen);
		_cleanup_free_ char *clean = build_go_path_clean(joined);
		free(cur);
		cur = xstrdup(streq(clean, "/") ? "." : clean + 1);
		if (streq(cur, "."))
			return NULL;
	}
	return NULL;
}

struct resolver {
	struct build_context *ctx;
	struct ignore *excl;
	struct ctx_match *m;
	size_t n;
};

static void push_match(struct resolver *rs, size_t entry, const char *rel, size_t source)
{
	if ((rs->n & (rs->n - 1)) == 0)
		rs->m = xrealloc(rs->m, (rs->n ? rs->n * 2 : 8) * sizeof(*rs->m));
	const char *path = entry == SIZE_MAX ? "." : rs->ctx->e[entry].path;
	rs->m[rs->n++] = (struct ctx_match){
		.entry = entry, .path = xstrdup(path), .rel = xstrdup(rel), .source = source
	};
}

/* A source root and, for a directory, everything below it. */
static void add_root(struct resolver *rs, size_t j, size_t source)
{
	const struct build_context *ctx = rs->ctx;
	if (S_ISLNK(ctx->e[j].mode)) {
		struct ctx_entry *t = follow(ctx, ctx->e[j].path);
		if (t)
			j = (size_t)(t - ctx->e);
	}
	const char *root = ctx->e[j].path;
	push_match(rs, j, "", source);
	if (!S_ISDIR(ctx->e[j].mode))
		return;
	size_t rl = strlen(root);
	for (size_t k = j + 1; k < ctx->n; k++) {
		const struct ctx_entry *e = &ctx->e[k];
		if (strncmp(e->path, root, rl) != 0 || (e->path[rl] != '/' && e->path[rl] != '\0')) {
			if (strncmp(e->path, root, rl) > 0)
				break;
			continue;
		}
		if (e->build_only || build_ignore_matches(rs->excl, e->path + rl + 1))
			continue;
		push_match(rs, k, e->path + rl + 1, source);
	}
}

static int resolve_one(struct resolver *rs, const char *src, size_t source, struct berth_error **err)
{
	_cleanup_free_ char *c = NULL;
	int r = build_context_clean_source(src, &c, err);
	if (r < 0)
		return r;
	const struct build_context *ctx = rs->ctx;
	size_t before = rs->n;
	if (streq(c, ".")) {
		push_match(rs, SIZE_MAX, "", source);
		for (size_t k = 0; k < ctx->n; k++)
			if (!ctx->e[k].build_only && !build_ignore_matches(rs->excl, ctx->e[k].path))
				push_match(rs, k, ctx->e[k].path, source);
		return 0;
	}
	if (build_go_has_wildcards(c)) {
		for (size_t k = 0; k < ctx->n; k++) {
			int m = build_go_path_match(c, ctx->e[k].path);
			if (m < 0)
				return berth_error_msg(err, EINVAL, "syntax error in pattern '%s'", src);
			if (m && !ctx->e[k].build_only && !build_ignore_matches(rs->excl, ctx->e[k].path))
				add_root(rs, k, source);
		}
		if (rs->n == before)
			return berth_error_msg(err, ENOENT,
					       "no source files were specified: '%s' matches nothing", src);
		return 0;
	}
	struct ctx_entry *e = build_context_lookup(ctx, c, true);
	if (!e || S_ISLNK(e->mode)) {
		struct ctx_entry *t = follow(ctx, c);
		if (t)
			e = t;
	}
	if (!e)
		return berth_error_msg(err, ENOENT, "'%s': not found in build context", src);
	add_root(rs, (size_t)(e - ctx->e), source);
	return 0;
}

void build_ctx_matches_free(struct ctx_match *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].rel);
		free(m[i].path);
	}
	free(m);
}

int build_context_resolve(struct build_context *ctx, char *const *sources, char *const *excludes,
			  struct ctx_match **ret, size_t *n_ret, struct berth_error **err)
{
	struct resolver rs = { .ctx = ctx };
	int r = 0;
	if (excludes && *excludes && (r = build_ignore_new(excludes, &rs.excl, err)) < 0)
		return r;
	for (size_t i = 0; sources[i] && r >= 0; i++)
		r = resolve_one(&rs, sources[i], i, err);
	build_ignore_free(rs.excl);
	if (r < 0) {
		build_ctx_matches_free(rs.m, rs.n);
		return r;
	}
	*ret = rs.m;
	*n_ret = rs.n;
	return 0;
}

int build_context_entry_digest(struct build_context *ctx, struct ctx_entry *e, struct berth_error **err)
{
	if (e->digest[0] || !S_ISREG(e->mode))
		return 0;
	int r = build_context_extract(ctx, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
	    fs_open_in_root(ctx->rootfd, e->path, O_RDONLY, 0, FS_RESOLVE_NO_FOLLOW, err);
	if (fd < 0)
		return berth_error_wrap(err, fd, "hash '%s'", e->path);
	return digest_fd(DIGEST_SHA256, fd, e->digest, NULL, err);
}

int build_context_hash(struct build_context *ctx, const struct ctx_match *m, size_t n,
		       char out[DIGEST_STRING_MAX], struct berth_error **err)
{
	_cleanup_digester_ struct digester *d = digester_new(DIGEST_SHA256);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *line = NULL;
		if (m[i].entry == SIZE_MAX) {
			line = xasprintf("%zu\t.\tcontext-root\n", m[i].source);
		} else {
			struct ctx_entry *e = &ctx->e[m[i].entry];
			int r = build_context_entry_digest(ctx, e, err);
			if (r < 0)
				return r;
			line = xasprintf("%zu\t%s\t%o\t%u\t%u\t%llu\t%s\t%s\n", m[i].source, m[i].rel,
					 (unsigned)e->mode, e->uid, e->gid, (unsigned long long)e->size,
					 e->link ? e->link : "", e->digest);
		}
		digester_update(d, line, strlen(line));
	}
	digester_final(d, out);
	return 0;
}

/* A file's bytes where a scanned plain tar holds them in its spool. */
struct spool_range {
	int fd;
	uint64_t off, end;
	char buf[1 << 14];
};

static la_ssize_t range_read(struct archive *a, void *ud, const void **buf)
{
	struct spool_range *s = ud;
	size_t want = s->end - s->off < sizeof(s->buf) ? (size_t)(s->end - s->off) : sizeof(s->buf);
	ssize_t n = want ? pread(s->fd, s->buf, want, (off_t)s->off) : 0;
	if (n < 0) {
		archive_set_error(a, errno, "read the context spool");
		return -1;
	}
	s->off += (uint64_t)n;
	*buf = s->buf;
	return n;
}

static bool starts_archive(struct archive *a, int r)
{
	struct archive_entry *ae;
	bool is = r == ARCHIVE_OK && archive_read_next_header(a, &ae) == ARCHIVE_OK;
	archive_read_free(a);
	return is;
}

int build_context_is_archive(const struct build_context *ctx, const char *path, struct berth_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	const struct ctx_entry *e = ctx->lazy ? build_context_lookup(ctx, path, false) : NULL;
	if (e && S_ISREG(e->mode) && e->data_off && !build_context_is_extracted(ctx)) {
		/* not extracted (a cached rebuild): read the spool where the file lies */
		_cleanup_free_ struct spool_range *s = xmalloc(sizeof(*s));
		*s = (struct spool_range){ .fd = ctx->lazy->spool_fd,
					   .off = e->data_off,
					   .end = e->data_off + e->size };
		return starts_archive(a, archive_read_open(a, s, NULL, range_read, NULL));
	}
	int r = build_context_extract(ctx, err);
	_cleanup_close_ int fd =
	    r < 0 ? r : fs_open_in_root(ctx->rootfd, path, O_RDONLY, 0, FS_RESOLVE_NO_FOLLOW, err);
	if (fd < 0) {
		archive_read_free(a);
		return fd;
	}
	return starts_archive(a, archive_read_open_fd(a, fd, 1 << 14));
}
