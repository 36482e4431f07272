/*
 * store.h - private to src/image: the store handle, the content (blob) store
 * and the SQLite metadata database.
 *
 * Blobs: <root>/content/blobs/sha256/<hex>. A writer streams into
 * content/ingest/<random>, hashing as it goes; commit verifies digest and size,
 * fsyncs and renames. A blob that exists is complete and verified.
 *
 * Metadata (image.db): each operation borrows a connection of its own (so
 * threads never share one) from the store's pool of long-lived connections
 * (an idle one is handed out again, so an operation costs no open, no PRAGMAs
 * and no schema parse); WAL, busy timeout; every change is one transaction.
 */
#ifndef BERTH_IMAGE_STORE_H
#define BERTH_IMAGE_STORE_H

#include <sqlite3.h>

#include "common/digest.h"
#include "common/strbuf.h"
#include "image/image.h"
#include "image/unpack.h"

/* Limits on what we accept from registries and archives. */
#define IMAGE_MANIFEST_MAX (4u << 20) /* manifests, indexes, configs (docker: 4 MiB) */
#define IMAGE_LAYERS_MAX   256        /* layers per image */

struct image_store {
	char *root;
	/*
	 * A connection held open for the store's lifetime and never used: with it
	 * the database's -wal and -shm files are neither deleted nor reset when an
	 * operation's own connection closes, so reads keep working on a full disk
	 * (the first connection of a process re-creates and grows the -shm file,
	 * which fails with "disk I/O error" when no block is free), and closing an
	 * operation's connection no longer checkpoints the WAL every time.
	 */
	sqlite3 *keeper;
	/* Idle connections (db.c's pool lock): handed out by image_store_db_open, back at _cleanup_db_. */
	sqlite3 *idle[4];
	size_t n_idle;
};

/* ---- content ---- */

/* Path of a blob ("<root>/content/blobs/sha256/<hex>"); caller frees. -EINVAL on a bad digest. */
int image_content_path(struct image_store *s, const char *digest, char **ret, struct berth_error **err);
/* 1 and *ret_size (may be NULL) when present, 0 when absent. */
int image_content_has(struct image_store *s, const char *digest, uint64_t *ret_size);
/* Open a blob read-only. -ENOENT with "blob 'sha256:...' not found". */
int image_content_open(struct image_store *s, const char *digest, struct berth_error **err);
/* Read a whole small blob (at most max bytes) into sb. */
int image_content_read(struct image_store *s, const char *digest, size_t max, struct strbuf *sb,
		       struct berth_error **err);
/* Remove a blob; absent is success. */
int image_content_delete(struct image_store *s, const char *digest);

struct content_writer {
	struct image_store *store;
	int fd;
	char *tmp_path;
	struct digester *d;
	uint64_t size;
	bool existed; /* set by commit: the blob was already in the store */
};

/* Start a writer on a new temp file in content/ingest. */
int image_content_writer_open(struct image_store *s, struct content_writer *w, struct berth_error **err);
/* Append data: 0 or -errno. */
int image_content_writer_write(struct content_writer *w, const void *data, size_t len,
			       struct berth_error **err);
/*
 * Verify (expected digest may be NULL: accept what was written; expected_size
 * < 0: no size check), fsync and publish. *ret_digest (may be NULL) gets the
 * digest. -EBADMSG on a digest/size mismatch ("digest mismatch ..."). The
 * writer is finished either way (call image_content_writer_done()).
 */
int image_content_writer_commit(struct content_writer *w, const char *expected, int64_t expected_size,
				char ret_digest[DIGEST_STRING_MAX], struct berth_error **err);
/* Drop the temp file if not committed; idempotent. */
void image_content_writer_done(struct content_writer *w);

/* Store a buffer; verifies against expected when non-NULL. */
int image_content_write_buffer(struct image_store *s, const void *data, size_t len, const char *expected,
			       char ret_digest[DIGEST_STRING_MAX], struct berth_error **err);

/* ---- database ---- */

/* Borrow a connection (an idle pooled one, or a new one); give it back with image_store_db_release. */
int image_store_db_open(struct image_store *s, sqlite3 **ret, struct berth_error **err);
/* Back to its store's pool when clean (no transaction, no statement open); closed otherwise. */
void image_store_db_release(sqlite3 *db);
static inline void sqlite3_closep(sqlite3 **db)
{
	if (*db)
		image_store_db_release(*db);
}
static inline void sqlite3_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}
#define _cleanup_db_   _cleanup_(sqlite3_closep)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* Run SQL without results. */
int image_store_db_exec(sqlite3 *db, const char *sql, struct berth_error **err);
/* Prepare a statement; error names the SQLite message. */
int image_store_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct berth_error **err);
/* Error from the db's last failure, with context. */
int image_store_db_error(sqlite3 *db, struct berth_error **err, const char *what);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int image_store_db_begin(sqlite3 *db, struct berth_error **err);
int image_store_db_commit(sqlite3 *db, struct berth_error **err);
void image_store_db_rollback(sqlite3 *db);

/* ---- image records ---- */

/* One layer of an image, bottom first. */
struct store_layer {
	char diff_id[DIGEST_STRING_MAX];  /* uncompressed digest */
	char chain_id[DIGEST_STRING_MAX]; /* OCI ChainID */
	char blob[DIGEST_STRING_MAX];     /* digest of the stored blob ("" when none) */
	char *media_type;                 /* blob's media type (owned) */
	uint64_t blob_size;
	uint64_t size;     /* unpacked bytes */
	uint64_t tar_size; /* uncompressed tar bytes (for docker save's layer.tar) */
};

struct store_image {
	char id[DIGEST_STRING_MAX]; /* config digest */
	char *manifest_digest;      /* may be NULL (loaded from docker save without one) */
	char *manifest_media_type;
	char *config_media_type;
	int64_t created; /* unix seconds from the config */
	uint64_t size;   /* sum of unpacked layer sizes */
	size_t n_layers;
	struct store_layer *layers;
	char parent[DIGEST_STRING_MAX]; /* docker's Parent: the image committed on ("" none) */
};

void image_store_image_done(struct store_image *img);

/* Chain IDs per the OCI spec: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
void image_store_chain_id(const char *parent_chain, const char *diff_id, char out[DIGEST_STRING_MAX]);

/* Insert or replace an image row and its layer list, in one transaction with the tags in db. */
int image_store_image_put(sqlite3 *db, const struct store_image *img, struct berth_error **err);
/* The parent of image id into out ("" when none or the parent is gone). */
int image_store_parent_get(sqlite3 *db, const char *id, char out[DIGEST_STRING_MAX]);
/* Load an image by full ID. -ENOENT if absent. */
int image_store_image_get(sqlite3 *db, const char *id, struct store_image *ret, struct berth_error **err);
/* Point tag (normalised full reference string) at id. */
int image_store_tag_put(sqlite3 *db, const char *ref, const char *id, struct berth_error **err);
/* Record a repo digest ("docker.io/library/busybox@sha256:...") for id. */
int image_store_digest_put(sqlite3 *db, const char *ref, const char *id, struct berth_error **err);

/* 1 (and sizes, either may be NULL) when the layer row for chain_id exists, else 0. */
int image_store_layer_get(sqlite3 *db, const char *chain_id, uint64_t *ret_size, uint64_t *ret_tar_size);
int image_store_layer_put(sqlite3 *db, const char *chain_id, const char *diff_id, uint64_t size,
			  uint64_t tar_size, struct berth_error **err);

/*
 * Make sure every layer of img has its unpacked snapshot: fills chain_id,
 * size and tar_size; layers whose chain exists are skipped ("Already exists"),
 * others are unpacked from their blob (which must be in the content store)
 * into <root>/tmp, diff_id verified, then renamed to snapshots/<chain hex>.
 * progress_id (may be NULL) gets per-layer events "Extracting"/"Pull complete".
 */
int image_store_layers_unpack(struct image_store *s, struct store_image *img, image_progress_fn progress,
			      void *userdata, const char *done_status, struct berth_error **err);

/* Fill every layer's chain_id from the diff_ids. */
void image_store_image_chain_ids(struct store_image *img);

/*
 * One layer of image_store_layers_unpack() (chain_id must be set), for callers that
 * unpack on their own thread: db is the caller's connection; fn (may be
 * NULL) gets compressed bytes consumed. *ret_unpacked tells whether work was
 * done (false: the snapshot existed).
 */
int image_store_layer_ensure(struct image_store *s, sqlite3 *db, struct store_layer *l, unpack_progress_fn fn,
			     void *ud, bool *ret_unpacked, struct berth_error **err);

/*
 * Record img (layers unpacked, blobs stored) in one transaction, with tags
 * (NULL-terminated normalised references, may be NULL) and an optional repo
 * digest reference. When img->manifest_digest is NULL an OCI manifest is
 * synthesised from the config and layer blobs and stored first.
 */
int image_store_image_finish(struct image_store *s, struct store_image *img, const char *const *tags,
			     const char *repo_digest, struct berth_error **err);

/* OCI layer media type of a stored blob by its magic bytes (tar, tar+gzip, tar+zstd). */
const char *image_store_sniff_layer_type(struct image_store *s, const char *digest);

/* Short id of a digest for progress ("sha256:abcdef..." -> "abcdef012345"). out: 13 bytes. */
void image_store_short_id(const char *digest, char out[13]);

/* Describe a container snapshot without mounting it. -ENOENT if unknown. */
int image_store_snapshot_get(struct image_store *s, const char *id, struct image_snapshot **ret,
			     struct berth_error **err);

/* Snapshot directory of a chain ID / a container: "<root>/snapshots/<hex or id>". Caller frees. */
char *image_store_snapshot_dir(struct image_store *s, const char *id_or_digest);

#endif
