/*
 * unpack.h - private to src/image: stream a layer tar (plain, gzip or zstd,
 * detected from the magic bytes) into a directory, converting OCI whiteouts
 * into overlayfs ones, while hashing the uncompressed stream.
 */
#ifndef BERTH_IMAGE_UNPACK_H
#define BERTH_IMAGE_UNPACK_H

#include "common/digest.h"
#include "image/image.h"

/* Called with compressed bytes consumed so far; may be NULL. */
typedef void (*unpack_progress_fn)(uint64_t done, void *userdata);

/* Limits on hostile layers. */
#define UNPACK_MAX_ENTRIES 1000000
#define UNPACK_MAX_PATH    4096

struct unpack_result {
	char diff_id[DIGEST_STRING_MAX]; /* sha256 of the uncompressed tar stream */
	uint64_t size;                   /* sum of regular file sizes */
	uint64_t compressed;             /* bytes read from in_fd */
	uint64_t tar_size;               /* uncompressed tar bytes */
};

/*
 * Unpack the layer read from in_fd into the empty directory rootfd. Every
 * entry's parent is resolved inside rootfd (fs_mkdir_p_in_root), never
 * following a symlink out; ".." components are refused (-EINVAL, "layer entry
 * '../x': path escapes the layer root"), leading "/" is stripped. Hardlink
 * targets are resolved inside the root too. When expected_diff_id is non-NULL
 * the uncompressed digest must match (-EBADMSG otherwise). Truncated or corrupt
 * compressed streams fail with -EBADMSG. On failure the directory holds a
 * partial tree: the caller discards it.
 */
int image_unpack_layer(int in_fd, int rootfd, const char *expected_diff_id, unpack_progress_fn progress,
		       void *userdata, struct unpack_result *ret, struct berth_error **err);

/*
 * Clean an archive path: strip leading "/", "." and empty components; refuse
 * ".." (-EINVAL "path escapes the layer root"). "" means the root itself.
 */
int image_unpack_clean_path(const char *raw, char **ret, struct berth_error **err);

/*
 * Decompressing reader used by unpack and by save (to emit uncompressed
 * layer.tar): detects gzip/zstd/none, hashes the uncompressed output.
 */
struct decomp;
int image_decomp_new(int in_fd, struct decomp **ret, struct berth_error **err);
/* Read up to len uncompressed bytes: count, 0 at end, -errno (-EBADMSG corrupt/truncated). */
ssize_t image_decomp_read(struct decomp *d, void *buf, size_t len, struct berth_error **err);
/* Digest of everything returned so far. */
void image_decomp_digest(struct decomp *d, char out[DIGEST_STRING_MAX]);
uint64_t image_decomp_consumed(const struct decomp *d);
uint64_t image_decomp_produced(const struct decomp *d);
struct decomp *image_decomp_free(struct decomp *d);

#endif
