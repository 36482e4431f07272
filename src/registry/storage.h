/*
 * storage.h - the registry's on-disk store (layout compatible in spirit with
 * Distribution's filesystem driver, simpler):
 *
 *   blobs/<algo>/<hex>                         content, shared by all repositories
 *   repositories/<name>/_layers/<algo>/<hex>   empty file: the repo may serve that blob
 *   repositories/<name>/_manifests/revisions/<algo>/<hex>
 *                                              "<media type>\n<subject digest>\n"
 *   repositories/<name>/_manifests/tags/<tag>  "<digest>\n" (mtime = push time)
 *   repositories/<name>/_referrers/<algo>/<subject hex>/<algo>-<hex>
 *                                              the referrer's descriptor (JSON)
 *   uploads/<uuid>/{data,info}                 upload sessions (see upload.h)
 *   .lock                                      flock: shared by link writers, exclusive by gc
 *
 * Blobs are written once (temp file, fsync, rename) and never modified, so
 * readers need no locks. Repository names and digests are validated by the
 * caller (route.h), which makes them safe path components.
 */
#ifndef BERTH_REGISTRY_STORAGE_H
#define BERTH_REGISTRY_STORAGE_H

#include <jansson.h>
#include <stdatomic.h>
#include <time.h>

#include "common/digest.h"
#include "common/error.h"

struct registry_store {
	int rootfd;
	char *root;
	_Atomic int64_t bytes; /* approximate size of blobs/, for metrics */
	/*
	 * storage.fsync (default true): a blob, manifest, revision, tag or referrer is
	 * fsynced before its rename and the directory after it, so whatever a client
	 * got 201 for survives a power loss. false skips every fsync (Distribution's
	 * filesystem driver does none): faster, but a crash can leave a truncated
	 * file under a valid digest name. Set by the caller after registry_store_open().
	 */
	bool fsync;
};

int registry_store_open(const char *root, struct registry_store **ret, struct berth_error **err);
struct registry_store *registry_store_free(struct registry_store *s);

/* Take the gc lock (shared for writers, exclusive for gc). Returns an fd to close, or -errno. */
int registry_store_lock(struct registry_store *s, bool exclusive, struct berth_error **err);

/* "blobs/sha256/<hex>" for a valid digest, into out (PATH_MAX). */
void registry_store_blob_path(const char *digest, char *out, size_t n);

/* Open a blob for reading: O_RDONLY fd and size. -ENOENT if absent. */
int registry_store_blob_open(struct registry_store *s, const char *digest, int *ret_fd, uint64_t *ret_size);
bool registry_store_blob_exists(struct registry_store *s, const char *digest, uint64_t *ret_size);
/* Move a verified, fsynced temp file (relative to rootfd) to the blob path; touches an existing one. */
int registry_store_blob_commit(struct registry_store *s, const char *tmp_path, const char *digest,
			       uint64_t size, struct berth_error **err);

/* Per-repository blob links. */
bool registry_store_repo_has_blob(struct registry_store *s, const char *repo, const char *digest,
				  uint64_t *ret_size);
int registry_store_repo_link_blob(struct registry_store *s, const char *repo, const char *digest,
				  struct berth_error **err);
int registry_store_repo_unlink_blob(struct registry_store *s, const char *repo, const char *digest);
bool registry_store_repo_exists(struct registry_store *s, const char *repo);

/* Manifests. ref is a tag or a digest. ret_digest has DIGEST_STRING_MAX bytes. */
int registry_store_resolve_tag(struct registry_store *s, const char *repo, const char *tag, char *ret_digest);
/* When the tag was last written (pushed or refreshed). -ENOENT if absent. */
int registry_store_tag_mtime(struct registry_store *s, const char *repo, const char *tag, time_t *ret);
/* The revision's media type (and subject digest if any, may be NULL). -ENOENT when unknown in repo. */
int registry_store_manifest_info(struct registry_store *s, const char *repo, const char *digest,
				 char *ret_media_type, size_t mt_size, char *ret_subject);
struct manifest_put {
	const char *repo;
	const char *const *tags; /* tags to point at digest (NULL-terminated), or NULL */
	const char *digest;
	const char *media_type;
	const char *subject;       /* or NULL */
	const char *artifact_type; /* referrer descriptor's artifactType, or NULL */
	json_t *annotations;       /* borrowed, or NULL */
	const void *data;
	size_t len;
	bool immutable_tags; /* refuse moving an existing tag: -EEXIST */
};
int registry_store_manifest_put(struct registry_store *s, const struct manifest_put *p,
				struct berth_error **err);
int registry_store_manifest_delete(struct registry_store *s, const char *repo, const char *digest);
int registry_store_tag_delete(struct registry_store *s, const char *repo, const char *tag);

/* Sorted, NULL-terminated lists; caller frees with strv_free. */
int registry_store_tags_list(struct registry_store *s, const char *repo, char ***ret);
int registry_store_catalog(struct registry_store *s, char ***ret);
int registry_store_manifest_list(struct registry_store *s, const char *repo, char ***ret);
/* JSON array of referrer descriptors for subject, filtered by artifactType when not NULL. */
int registry_store_referrers(struct registry_store *s, const char *repo, const char *subject,
			     const char *artifact_type, json_t **ret);

/* Size of all blobs, walking the tree (startup, gc). */
int64_t registry_store_scan_size(struct registry_store *s);

#endif
