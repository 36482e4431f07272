/*
 * manifest.h - private to src/image: OCI and docker schema 2 manifests,
 * indexes/manifest lists and image configs, parsed and validated.
 *
 * Parsing is strict where it matters for safety (digests, sizes, media types,
 * counts) and lenient elsewhere (unknown fields are ignored, as the specs say).
 */
#ifndef BERTH_IMAGE_MANIFEST_H
#define BERTH_IMAGE_MANIFEST_H

#include <jansson.h>

#include "common/digest.h"
#include "image/image.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_CONFIG   "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER    "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG      "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER       "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_GZIP  "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_LAYER_ZSTD  "application/vnd.oci.image.layer.v1.tar+zstd"

/* The Accept header value for manifest requests. */
#define MANIFEST_ACCEPT MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST

struct manifest_desc {
	char *media_type;
	char digest[DIGEST_STRING_MAX];
	int64_t size;
	/* index entries only (may be NULL) */
	char *os, *arch, *variant;
	char *ref_name; /* annotation org.opencontainers.image.ref.name or io.containerd.image.name */
};

enum manifest_kind {
	MANIFEST_IMAGE,
	MANIFEST_INDEX,
};

struct manifest {
	enum manifest_kind kind;
	char *media_type;
	struct manifest_desc config;  /* MANIFEST_IMAGE */
	struct manifest_desc *layers; /* MANIFEST_IMAGE */
	size_t n_layers;
	struct manifest_desc *manifests; /* MANIFEST_INDEX */
	size_t n_manifests;
};

/*
 * Parse a manifest or index. content_type (may be NULL) is the registry's
 * Content-Type; the document's own mediaType wins when present and the two
 * must agree. Schema 1 and unknown types are refused with -EPROTONOSUPPORT
 * and a message naming the media type.
 */
int image_manifest_parse(const char *buf, size_t len, const char *content_type, struct manifest *ret,
			 struct berth_error **err);
void image_manifest_done(struct manifest *m);

/* Whether a layer media type is one we can unpack (tar, gzip, zstd; docker or OCI). */
bool image_manifest_layer_type_supported(const char *media_type);

/*
 * Pick the entry of an index for platform p (os and arch must match; variant
 * when both sides give one; arm64 "v8" equals none). -ENOENT with
 * "no matching manifest for linux/amd64 in the manifest list entries".
 */
int image_manifest_select(const struct manifest *index, const struct image_platform *p,
			  const struct manifest_desc **ret, struct berth_error **err);

/* What we need from an image config. */
struct config_info {
	char **diff_ids; /* NULL-terminated, validated digests */
	size_t n_diff_ids;
	int64_t created; /* unix seconds, 0 when absent */
	char *os, *arch, *variant;
};

/* Parse an image config (docker or OCI). */
int image_config_parse(const char *buf, size_t len, struct config_info *ret, struct berth_error **err);
void image_config_info_done(struct config_info *c);

#endif
