/*
 * registry.h - `berth registry`: an OCI distribution-spec v1.1 server.
 *
 * The whole public API is the command entry point and the two long-running
 * operations it exposes; everything else is private to src/registry/.
 */
#ifndef BERTH_REGISTRY_REGISTRY_H
#define BERTH_REGISTRY_REGISTRY_H

#include <jansson.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "registry/config.h"

/* `berth registry ...` (argv[0] is "registry"). Returns the process exit code. */
int registry_main(int argc, char **argv);

/* Serve until SIGTERM/SIGINT, then drain in-flight requests. */
int registry_serve(struct registry_config *cfg, struct berth_error **err);

struct registry_gc_stats {
	size_t manifests_marked, blobs_marked;
	size_t blobs_deleted, manifests_deleted, tags_deleted, links_deleted;
	int64_t bytes_freed;
};

/* Lifecycle rules then mark-and-sweep. dry_run reports without deleting. */
int registry_gc(struct registry_config *cfg, bool dry_run, struct registry_gc_stats *ret,
		struct berth_error **err);

/*
 * Embedding (berth server --registry): the registry serving in this process
 * (its own HTTP threads) and the operations the ECR API needs on its store.
 * cfg (and cfg->hooks) must outlive the registry. Repository names and
 * digests must be valid (route.h's grammar): the caller checks them.
 */
struct registry;
int registry_start(struct registry_config *cfg, struct registry **ret, struct berth_error **err);
uint16_t registry_bound_port(const struct registry *reg);
/* Stop accepting, drain in-flight requests (bounded), free. NULL is fine. */
void registry_stop(struct registry *reg);

/*
 * The images (manifests) of repo, sorted by digest: a new array of
 * {"imageDigest", "imageManifestMediaType", "imageTags": [...], "storedAt"
 * (epoch seconds the revision was written)}; empty when the repository
 * holds nothing.
 */
json_t *registry_repo_images(struct registry *reg, const char *repo);
/* The stored manifest: bytes into *ret, media type into *ret_media_type (caller frees). -ENOENT. */
int registry_manifest_read(struct registry *reg, const char *repo, const char *digest, struct strbuf *ret,
			   char **ret_media_type);
/* Resolve a tag to its digest (DIGEST_STRING_MAX bytes). -ENOENT. */
int registry_tag_resolve(struct registry *reg, const char *repo, const char *tag, char *ret_digest);
/*
 * Store a manifest as a push would (media type from content_type or the
 * document; referenced blobs must be in repo: -ENOENT naming it in *err;
 * an immutable tag that would move: -EEXIST; invalid: -EINVAL). The digest
 * goes to ret_digest (DIGEST_STRING_MAX bytes).
 */
int registry_manifest_write(struct registry *reg, const char *repo, const char *tag, const char *content_type,
			    const void *data, size_t len, char *ret_digest, struct berth_error **err);
/* Open a blob for reading (O_RDONLY). -ENOENT. */
int registry_blob_open(struct registry *reg, const char *digest, int *ret_fd, uint64_t *ret_size);
/* Delete a manifest and the tags pointing at it. -ENOENT. */
int registry_image_delete(struct registry *reg, const char *repo, const char *digest);
int registry_tag_delete(struct registry *reg, const char *repo, const char *tag);
/* Remove the repository and everything in it (blobs are freed by gc). */
int registry_repo_delete(struct registry *reg, const char *repo, struct berth_error **err);

#endif
