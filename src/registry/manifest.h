/*
 * manifest.h - validation of pushed manifests.
 *
 * registry_manifest_parse() checks what can be checked without the store: the media
 * type (OCI image manifest/index, Docker schema2 manifest/list; schema1 is
 * refused), JSON syntax, schemaVersion, descriptor shapes (mediaType, digest,
 * size), and collects the references the caller must find in the repository
 * before accepting the manifest. Fuzzed by tests/fuzz/fuzz-registry-manifest.c.
 */
#ifndef BERTH_REGISTRY_MANIFEST_H
#define BERTH_REGISTRY_MANIFEST_H

#include <jansson.h>

#include "common/digest.h"
#include "common/error.h"

#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"

/* Upper bound on descriptors one manifest may reference. */
#define MANIFEST_MAX_REFS 10000

struct manifest_ref {
	char digest[DIGEST_STRING_MAX];
	int64_t size;
	bool is_manifest; /* an index entry: must be a manifest in the repo */
};

struct manifest_info {
	const char *media_type; /* one of the MT_* constants */
	bool is_index;
	char subject[DIGEST_STRING_MAX]; /* "" when none */
	char *artifact_type; /* artifactType, else config.mediaType for image manifests; or NULL */
	json_t *annotations; /* owned reference or NULL */
	struct manifest_ref *refs;
	size_t n_refs;
};

/*
 * Parse and validate. content_type is the request's Content-Type (may be NULL
 * or empty: the document's mediaType decides). -EINVAL with a message for
 * invalid manifests, -EPROTONOSUPPORT for schema1.
 */
int registry_manifest_parse(const char *content_type, const char *data, size_t len, struct manifest_info *ret,
			    struct berth_error **err);
void registry_manifest_info_done(struct manifest_info *m);

bool registry_manifest_media_type_known(const char *mt);

#endif
