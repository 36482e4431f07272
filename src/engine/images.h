/*
 * images.h - the engine's built-in image store: flattened rootfs directories
 * imported from tarballs (`docker import`), with overlay snapshots for
 * containers. It exists so the engine works without the full image library
 * (src/image/); the engine only sees it through struct engine_image_ops, so
 * replacing it is a matter of passing other ops to engine_open().
 *
 * Layout: <root>/images/<hex>/rootfs, metadata in the engine's SQLite
 * (tables images, tags). Image IDs are "sha256:<hex>" of the config JSON.
 */
#ifndef BERTH_ENGINE_IMAGES_H
#define BERTH_ENGINE_IMAGES_H

#include <jansson.h>
#include <sqlite3.h>

#include "common/error.h"

struct engine_images;

int engine_images_new(const char *root, struct engine_images **ret, struct berth_error **err);
struct engine_images *engine_images_free(struct engine_images *s);
extern const struct engine_image_ops engine_images_ops;

/* Normalise a reference: "busybox" -> "busybox:latest", "docker.io/library/x" -> "x". Caller frees. */
char *engine_image_normalize(const char *ref);

/* `docker import`: rootfs tarball on fd; config (may be NULL) is the image "config" object. */
int engine_images_import(struct engine_images *s, int fd, const char *ref, const json_t *config,
			 char **ret_id, struct berth_error **err);
int engine_images_import_buffer(struct engine_images *s, const void *buf, size_t len, const char *ref,
				const json_t *config, char **ret_id, struct berth_error **err);
/* Docker's /images/json list and /images/{name}/json. */
int engine_images_list(struct engine_images *s, json_t **ret, struct berth_error **err);
int engine_images_inspect(struct engine_images *s, const char *name, json_t **ret, struct berth_error **err);
int engine_images_tag(struct engine_images *s, const char *name, const char *ref, struct berth_error **err);
/* Untag (or delete by ID); *ret: Docker's [{"Untagged":..},{"Deleted":..}]. in_use(id) refuses deletion. */
int engine_images_remove(struct engine_images *s, const char *name, bool force,
			 bool (*in_use)(void *ctx, const char *id), void *ctx, json_t **ret,
			 struct berth_error **err);
unsigned engine_images_count(struct engine_images *s);

#endif
