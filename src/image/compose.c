/*
 * compose.c - image_compose(): a new image from a given config on the layers
 * of an existing image (the builder's final commit: its config and history
 * are the Dockerfile's, its layers those of the last filesystem step).
 */
#include <time.h>

#include "common/json.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/store.h"

static int layers_of(struct image_store *s, const char *image, json_t **ret_diffs,
		     struct store_image *ret_img, struct berth_error **err)
{
	if (!image) {
		*ret_diffs = json_array();
		return 0;
	}
	_cleanup_free_ char *id = NULL;
	_cleanup_json_ json_t *cfg = NULL;
	int r = image_resolve(s, image, &id, err);
	if (r >= 0)
		r = image_get_config(s, id, &cfg, err);
	if (r < 0)
		return r;
	json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diffs))
		return berth_error_msg(err, EINVAL, "image '%s' has no rootfs.diff_ids", id);
	_cleanup_db_ sqlite3 *db = NULL;
	if ((r = image_store_db_open(s, &db, err)) < 0 ||
	    (r = image_store_image_get(db, id, ret_img, err)) < 0)
		return r;
	*ret_diffs = json_incref(diffs);
	return 0;
}

static int compose_store(struct image_store *s, const char *txt, const struct store_image *base,
			 const char *parent, const char *ref, char **ret_id, struct berth_error **err)
{
	char cdg[DIGEST_STRING_MAX];
	int r = image_content_write_buffer(s, txt, strlen(txt), NULL, cdg, err);
	if (r < 0)
		return r;
	struct store_image img = { 0 };
	struct config_info ci = { 0 };
	snprintf(img.id, sizeof(img.id), "%s", cdg);
	snprintf(img.parent, sizeof(img.parent), "%s", parent && !streq(parent, cdg) ? parent : "");
	r = image_config_parse(txt, strlen(txt), &ci, err);
	img.created = ci.created;
	img.n_layers = ci.n_diff_ids;
	img.layers = xcalloc(img.n_layers + 1, sizeof(*img.layers));
	for (size_t i = 0; r >= 0 && i < img.n_layers; i++) {
		struct store_layer *l = &img.layers[i];
		snprintf(l->diff_id, sizeof(l->diff_id), "%s", ci.diff_ids[i]);
		snprintf(l->blob, sizeof(l->blob), "%s", base->layers[i].blob);
		l->media_type =
		    xstrdup(base->layers[i].media_type ? base->layers[i].media_type
						       : image_store_sniff_layer_type(s, l->blob));
		image_content_has(s, l->blob, &l->blob_size);
	}
	const char *tags[2] = { NULL, NULL };
	_cleanup_free_ char *full = NULL;
	if (r >= 0 && ref) {
		_cleanup_image_ref_ struct image_ref *rf = NULL;
		r = image_ref_parse(ref, IMAGE_REF_DEFAULT_TAG | IMAGE_REF_NO_DIGEST, &rf, err);
		if (r >= 0)
			tags[0] = full = image_ref_string(rf);
	}
	if (r >= 0)
		r = image_store_layers_unpack(s, &img, NULL, NULL, NULL, err);
	if (r >= 0)
		r = image_store_image_finish(s, &img, tags, NULL, err);
	if (r >= 0 && ret_id)
		*ret_id = xstrdup(img.id);
	image_store_image_done(&img);
	image_config_info_done(&ci);
	return r;
}

int image_compose_prefix(struct image_store *s, const char *layers_image, size_t n_layers, const char *parent,
			 const json_t *config, const char *ref, char **ret_id, struct berth_error **err)
{
	if (!json_is_object(config))
		return berth_error_msg(err, EINVAL, "compose: image config must be an object");
	_cleanup_json_ json_t *diffs = NULL;
	struct store_image base = { 0 };
	int r = layers_of(s, layers_image, &diffs, &base, err);
	if (r >= 0 && base.n_layers != json_array_size(diffs))
		r = berth_error_msg(err, EINVAL, "image '%s' has %zu layers but %zu diff_ids", layers_image,
				    base.n_layers, json_array_size(diffs));
	if (r >= 0 && n_layers != SIZE_MAX && n_layers > base.n_layers)
		r = berth_error_msg(err, EINVAL, "image '%s' has %zu layers, not %zu", layers_image,
				    base.n_layers, n_layers);
	if (r < 0) {
		image_store_image_done(&base);
		return berth_error_wrap(err, r, "compose image");
	}
	while (n_layers != SIZE_MAX && json_array_size(diffs) > n_layers)
		json_array_remove(diffs, json_array_size(diffs) - 1);
	_cleanup_json_ json_t *cfg = json_deep_copy(config);
	if (!json_is_string(json_object_get(cfg, "created"))) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		char created[RFC3339_MAX];
		util_format_rfc3339(&now, created);
		json_object_set_new(cfg, "created", json_string(created));
	}
	json_object_set_new(cfg, "rootfs", json_pack("{s:s, s:O}", "type", "layers", "diff_ids", diffs));
	_cleanup_free_ char *txt = json_dumps(cfg, JSON_COMPACT);
	r = compose_store(s, txt, &base, parent, ref, ret_id, err);
	image_store_image_done(&base);
	return r < 0 ? berth_error_wrap(err, r, "compose image") : 0;
}

int image_compose(struct image_store *s, const char *layers_image, const json_t *config, const char *ref,
		  char **ret_id, struct berth_error **err)
{
	/* docker's Parent of a built image: the last step's image */
	_cleanup_free_ char *parent = NULL;
	if (layers_image && image_resolve(s, layers_image, &parent, NULL) < 0)
		parent = NULL;
	return image_compose_prefix(s, layers_image, SIZE_MAX, parent, config, ref, ret_id, err);
}
