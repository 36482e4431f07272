/*
 * context.h - the build context: a directory or a tar stream (what the
 * Docker API sends), filtered by .dockerignore, with the lookups COPY and
 * ADD need and deterministic content hashes for cache keys.
 *
 * Entries are sorted by path. The Dockerfile and .dockerignore are always
 * readable by the builder even when .dockerignore excludes them (docker
 * sends them anyway), but then they are `build_only` and invisible to COPY.
 *
 * Ownership in the hash: a directory walk records uid/gid 0, like the tar
 * docker's CLI sends; a tar context records the owners of its headers.
 *
 * A context tar can also be *scanned* (build_context_scan_tar): one pass over
 * the stream records every entry and its content digest, as its extraction
 * and walk would have, and spools the stream; the files are extracted from
 * the spool only when a step needs them (build_context_extract), so a fully
 * cached rebuild never writes them. The entries, digests and cache keys are
 * the same either way.
 */
#ifndef BERTH_BUILD_CONTEXT_H
#define BERTH_BUILD_CONTEXT_H

#include <pthread.h>
#include <sys/types.h>

#include "build/ignore.h"
#include "common/digest.h"
#include "common/strbuf.h"

#define CONTEXT_MAX_ENTRIES 1000000
#define CONTEXT_MAX_DEPTH   256

struct ctx_entry {
	char *path;  /* relative, cleaned, "/"-separated */
	mode_t mode; /* file type and permission bits */
	uint32_t uid, gid;
	uint64_t size;
	char *link;                     /* symlink target, or NULL */
	bool build_only;                /* excluded by .dockerignore, kept for the builder */
	char digest[DIGEST_STRING_MAX]; /* regular files: sha256 of the content, computed lazily */
	uint64_t data_off;              /* a scanned plain tar: where the content starts in the spool, 0:
					   unknown (compressed, sparse, a hard link) */
};

struct build_context_lazy; /* context-internal.h */

struct build_context {
	char *root;      /* directory holding the files (NULL until extracted, see build_context_extract) */
	bool owned_root; /* a private extraction, removed by build_context_free() */
	int rootfd;      /* -1 until extracted */
	struct ctx_entry *e;
	size_t n;
	struct ignore *ignore;
	struct build_context_lazy *lazy; /* a scanned tar (NULL: root holds the files) */
	pthread_mutex_t view_lock;       /* guards view */
	char *view;                      /* build_context_view's tree, or NULL */
	bool view_beside;                /* view is beside root: removed with it (when owned_root) */
};

/*
 * Open a directory as the context. `dockerfile` is the Dockerfile's path
 * relative to the context (may be NULL), kept readable even if ignored; a
 * "<dockerfile>.dockerignore" beside it replaces ".dockerignore" (BuildKit).
 */
int build_context_open_dir(const char *dir, const char *dockerfile, struct build_context **ret,
			   struct berth_error **err);

/*
 * Read a context tar (plain, gzip, bzip2, xz, zstd) from fd into a private
 * directory under tmpdir, refusing entries that escape it, then open it.
 */
int build_context_open_tar(int fd, const char *tmpdir, const char *dockerfile, struct build_context **ret,
			   struct berth_error **err);

/* The request body of a context tar, piece by piece: the bytes read (> 0), 0 at its end, -errno. */
typedef ssize_t (*build_context_read_fn)(void *userdata, void *buf, size_t n);

/* Where a scanned context is extracted: a new directory for build_context_extract() to fill
 * (*ret_dir, caller frees; it may be a fresh tmpfs). */
typedef int (*build_context_dir_fn)(void *userdata, char **ret_dir, struct berth_error **err);

struct build_context_scan_opts {
	build_context_read_fn read; /* the stream (plain, gzip, bzip2, xz, zstd tar) */
	void *read_userdata;
	int spool_fd;             /* read() wrote every byte it returned here, from offset 0 (borrowed; the
				     context keeps a duplicate) */
	const char *dockerfile;   /* relative to the context (may be NULL) */
	build_context_dir_fn dir; /* NULL: a directory under tmpdir */
	void *dir_userdata;
	const char *tmpdir; /* NULL: /tmp */
};

/*
 * Scan a context tar as it streams: entries, .dockerignore, digests and the
 * Dockerfile are known without writing a file. Reads until read() returns 0
 * (the whole stream) unless it fails: then the rest is the caller's to drain.
 * A tar whose extraction would not be a plain replay of its entries (a path
 * through a symlink, a file replacing a directory, set-id bits, a hard link to
 * something that is not a file, a symlinked .dockerignore, ...) is extracted at
 * once and walked, as build_context_open_tar() does: same result, same errors.
 */
int build_context_scan_tar(const struct build_context_scan_opts *o, struct build_context **ret,
			   struct berth_error **err);

/*
 * Make ctx->root and ctx->rootfd hold the files: for a scanned context not yet
 * extracted, extract the spool (once; thread-safe); otherwise nothing to do.
 * Whoever reads the context's files calls this first.
 */
int build_context_extract(const struct build_context *ctx, struct berth_error **err);

/*
 * The directory a RUN --mount=type=bind of the context shows: the files
 * .dockerignore keeps and nothing else (not the Dockerfile nor .dockerignore
 * when it ignores them), as in BuildKit, whose context arrives filtered.
 * Extracts the context first. Without .dockerignore rules it is ctx->root;
 * otherwise a tree made once (thread-safe) beside a private extraction, or
 * under tmpdir (NULL: /tmp) for a directory context, whose files are hard
 * links to the context's (copies across file systems): bind it read-only.
 * *ret is owned by ctx and lives as long as it.
 */
int build_context_view(const struct build_context *ctx, const char *tmpdir, const char **ret,
		       struct berth_error **err);

/* true when the context's files are on disk (a directory context, or extracted). */
bool build_context_is_extracted(const struct build_context *ctx);

/* The entry at a cleaned relative path, or NULL. `for_copy` hides build_only entries. */
struct ctx_entry *build_context_lookup(const struct build_context *ctx, const char *path, bool for_copy);

/* Read a file of the context (at most max bytes; a scanned context's Dockerfile and ignore files
 * without extracting it). */
int build_context_read(const struct build_context *ctx, const char *path, size_t max, struct strbuf *sb,
		       struct berth_error **err);

/*
 * Normalise a COPY/ADD source: drop a leading "/", clean; -EPERM with
 * "forbidden path outside the build context" when it escapes.
 */
int build_context_clean_source(const char *src, char **ret, struct berth_error **err);

/* A resolved source: an entry and its path relative to the source root. */
struct ctx_match {
	size_t entry;  /* index into ctx->e; SIZE_MAX for the context root itself */
	char *path;    /* the entry's path in the context ("." for the root) */
	char *rel;     /* path below the matched source; "" for the source itself */
	size_t source; /* which source of the instruction */
};

/*
 * Resolve the sources of a COPY/ADD: wildcards with filepath.Match
 * semantics, directories recursively, `excludes` (COPY --exclude) as
 * patterns relative to each source. Fails when a source matches nothing.
 * *ret is an array of *n_ret matches (free with build_ctx_matches_free()).
 */
int build_context_resolve(struct build_context *ctx, char *const *sources, char *const *excludes,
			  struct ctx_match **ret, size_t *n_ret, struct berth_error **err);
void build_ctx_matches_free(struct ctx_match *m, size_t n);

/*
 * Content hash of resolved sources: sha256 over, in order, each match's
 * source index, relative path, type and mode bits, uid, gid, size, link
 * target and content digest. Deterministic; mtimes are not included.
 */
int build_context_hash(struct build_context *ctx, const struct ctx_match *m, size_t n,
		       char out[DIGEST_STRING_MAX], struct berth_error **err);

/* 1 if the regular file at path is a tar archive (plain or compressed) that
 * ADD unpacks, 0 if not (ADD copies it as is), -errno on read errors. */
int build_context_is_archive(const struct build_context *ctx, const char *path, struct berth_error **err);

/* Compute (once) the sha256 content digest of a regular file entry. */
int build_context_entry_digest(struct build_context *ctx, struct ctx_entry *e, struct berth_error **err);

struct build_context *build_context_free(struct build_context *ctx);
static inline void build_context_freep(struct build_context **c)
{
	*c = build_context_free(*c);
}
#define _cleanup_context_ _cleanup_(build_context_freep)

#endif
