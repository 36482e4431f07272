/*
 * manifest.c - parse OCI/docker manifests, indexes and image configs.
 *
 * Everything read from a registry or an archive passes through here before
 * any digest in it is trusted for a path or a request, so every digest is
 * validated with digest_parse() and every count and size is bounded.
 */
#include "common/json.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/store.h"

static const char *const layer_types[] = {
	MT_DOCKER_LAYER,
	MT_OCI_LAYER,
	MT_OCI_LAYER_GZIP,
	MT_OCI_LAYER_ZSTD,
	"application/vnd.oci.image.layer.nondistributable.v1.tar",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
};

bool image_manifest_layer_type_supported(const char *media_type)
{
	for (size_t i = 0; i < ARRAY_SIZE(layer_types); i++)
		if (streq(media_type, layer_types[i]))
			return true;
	return false;
}

static void desc_done(struct manifest_desc *d)
{
	free(d->media_type);
	free(d->os);
	free(d->arch);
	free(d->variant);
	free(d->ref_name);
	memset(d, 0, sizeof(*d));
}

void image_manifest_done(struct manifest *m)
{
	free(m->media_type);
	desc_done(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		desc_done(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->n_manifests; i++)
		desc_done(&m->manifests[i]);
	free(m->manifests);
	memset(m, 0, sizeof(*m));
}

static int desc_parse(const json_t *o, const char *path, struct manifest_desc *d, struct berth_error **err)
{
	const char *mt = NULL, *dg = NULL;
	int64_t size = 0;
	int r;
	if (!json_is_object(o))
		return json_type_error(path, NULL, "object", o, err);
	if ((r = json_get_string(o, path, "mediaType", JSON_REQUIRED, &mt, err)) < 0 ||
	    (r = json_get_string(o, path, "digest", JSON_REQUIRED, &dg, err)) < 0 ||
	    (r = json_get_int_range(o, path, "size", JSON_REQUIRED, 0, INT64_MAX, &size, err)) < 0)
		return r;
	if ((r = digest_parse(dg, NULL, NULL, err)) < 0)
		return berth_error_wrap(err, r, "'%s.digest'", path);
	d->media_type = xstrdup(mt);
	snprintf(d->digest, sizeof(d->digest), "%s", dg);
	d->size = size;
	json_t *plat = NULL, *ann = NULL;
	if (json_get_object(o, path, "platform", JSON_OPTIONAL, &plat, NULL) > 0) {
		const char *s = NULL;
		if (json_get_string(plat, NULL, "os", 0, &s, NULL) > 0)
			d->os = xstrdup(s);
		if (json_get_string(plat, NULL, "architecture", 0, &s, NULL) > 0)
			d->arch = xstrdup(s);
		if (json_get_string(plat, NULL, "variant", 0, &s, NULL) > 0)
			d->variant = xstrdup(s);
	}
	if (json_get_object(o, path, "annotations", JSON_OPTIONAL, &ann, NULL) > 0) {
		const char *s = NULL;
		if (json_get_string(ann, NULL, "io.containerd.image.name", 0, &s, NULL) > 0 ||
		    json_get_string(ann, NULL, "org.opencontainers.image.ref.name", 0, &s, NULL) > 0)
			d->ref_name = xstrdup(s);
	}
	return 0;
}

static int desc_array(const json_t *doc, const char *key, size_t max, struct manifest_desc **ret,
		      size_t *ret_n, struct berth_error **err)
{
	json_t *arr = NULL;
	int r = json_get_array(doc, NULL, key, JSON_REQUIRED, &arr, err);
	if (r < 0)
		return r;
	size_t n = json_array_size(arr);
	if (n > max)
		return berth_error_msg(err, E2BIG, "'%s': too many entries (%zu, at most %zu)", key, n, max);
	struct manifest_desc *v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = json_path_index(key, i);
		r = desc_parse(json_array_get(arr, i), p, &v[i], err);
		if (r < 0) {
			for (size_t j = 0; j <= i; j++)
				desc_done(&v[j]);
			free(v);
			return r;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool is_schema1(const char *mt)
{
	return mt && (streq(mt, "application/vnd.docker.distribution.manifest.v1+json") ||
		      streq(mt, "application/vnd.docker.distribution.manifest.v1+prettyjws"));
}

static int check_type(const char *mt, const char *content_type, struct berth_error **err)
{
	if (is_schema1(mt) || is_schema1(content_type))
		return berth_error_msg(
		    err, EPROTONOSUPPORT,
		    "unsupported manifest media type '%s': docker image format v1 (schema 1) "
		    "is no longer supported",
		    is_schema1(mt) ? mt : content_type);
	if (!mt)
		return berth_error_msg(err, EPROTONOSUPPORT, "manifest has no media type");
	if (!streq(mt, MT_DOCKER_MANIFEST) && !streq(mt, MT_DOCKER_LIST) && !streq(mt, MT_OCI_MANIFEST) &&
	    !streq(mt, MT_OCI_INDEX))
		return berth_error_msg(err, EPROTONOSUPPORT, "unsupported manifest media type '%s'", mt);
	return 0;
}

static int parse_image(const json_t *doc, struct manifest *m, struct berth_error **err)
{
	json_t *cfg = NULL;
	int r = json_get_object(doc, NULL, "config", JSON_REQUIRED, &cfg, err);
	if (r < 0)
		return r;
	r = desc_parse(cfg, "config", &m->config, err);
	if (r < 0)
		return r;
	r = desc_array(doc, "layers", IMAGE_LAYERS_MAX, &m->layers, &m->n_layers, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_layers; i++)
		if (!image_manifest_layer_type_supported(m->layers[i].media_type))
			return berth_error_msg(err, EPROTONOSUPPORT,
					       "'layers[%zu]': unsupported layer media type '%s'", i,
					       m->layers[i].media_type);
	return 0;
}

int image_manifest_parse(const char *buf, size_t len, const char *content_type, struct manifest *ret,
			 struct berth_error **err)
{
	if (len > IMAGE_MANIFEST_MAX)
		return berth_error_msg(err, EFBIG, "manifest too large (%zu bytes, at most %u)", len,
				       IMAGE_MANIFEST_MAX);
	_cleanup_json_ json_t *doc = NULL;
	int r = json_parse(buf, len, "manifest", &doc, err);
	if (r < 0)
		return r;
	if (!json_is_object(doc))
		return json_type_error(NULL, NULL, "object", doc, err);
	int64_t version = 0;
	r = json_get_int_range(doc, NULL, "schemaVersion", JSON_REQUIRED, 0, 100, &version, err);
	if (r < 0)
		return r;
	if (version == 1)
		return check_type("application/vnd.docker.distribution.manifest.v1+json", NULL, err);
	if (version != 2)
		return berth_error_msg(err, EPROTONOSUPPORT, "unsupported manifest schema version %lld",
				       (long long)version);
	const char *mt = NULL;
	r = json_get_string(doc, NULL, "mediaType", JSON_OPTIONAL, &mt, err);
	if (r < 0)
		return r;
	if (!mt && content_type && !streq(content_type, "application/json"))
		mt = content_type;
	if (!mt) /* OCI allows omitting mediaType: tell by shape */
		mt = json_object_get(doc, "manifests") ? MT_OCI_INDEX : MT_OCI_MANIFEST;
	r = check_type(mt, content_type, err);
	if (r < 0)
		return r;
	struct manifest m = { .media_type = xstrdup(mt) };
	if (streq(mt, MT_DOCKER_LIST) || streq(mt, MT_OCI_INDEX)) {
		m.kind = MANIFEST_INDEX;
		r = desc_array(doc, "manifests", 1024, &m.manifests, &m.n_manifests, err);
	} else {
		m.kind = MANIFEST_IMAGE;
		r = parse_image(doc, &m, err);
	}
	if (r < 0) {
		image_manifest_done(&m);
		return r;
	}
	*ret = m;
	return 0;
}

static bool variant_eq(const char *arch, const char *a, const char *b)
{
	if (!a || !b)
		return true;
	if (streq(arch, "arm64")) {
		if (streq(a, "v8"))
			a = "";
		if (streq(b, "v8"))
			b = "";
	}
	return streq(a, b);
}

int image_manifest_select(const struct manifest *index, const struct image_platform *p,
			  const struct manifest_desc **ret, struct berth_error **err)
{
	for (size_t i = 0; i < index->n_manifests; i++) {
		const struct manifest_desc *d = &index->manifests[i];
		if (!d->os || !d->arch || !streq(d->os, p->os) || !streq(d->arch, p->arch))
			continue;
		if (!variant_eq(p->arch, d->variant, p->variant))
			continue;
		if (!streq(d->media_type, MT_OCI_MANIFEST) && !streq(d->media_type, MT_DOCKER_MANIFEST))
			continue;
		*ret = d;
		return 0;
	}
	return berth_error_msg(err, ENOENT, "no matching manifest for %s/%s%s%s in the manifest list entries",
			       p->os, p->arch, p->variant ? "/" : "", p->variant ? p->variant : "");
}

void image_config_info_done(struct config_info *c)
{
	strv_free(c->diff_ids);
	free(c->os);
	free(c->arch);
	free(c->variant);
	memset(c, 0, sizeof(*c));
}

static int config_diff_ids(const json_t *doc, struct config_info *c, struct berth_error **err)
{
	json_t *rootfs = NULL;
	int r = json_get_object(doc, NULL, "rootfs", JSON_REQUIRED, &rootfs, err);
	if (r < 0)
		return r;
	r = json_get_strv(rootfs, "rootfs", "diff_ids", JSON_REQUIRED, &c->diff_ids, err);
	if (r < 0)
		return r;
	for (char **d = c->diff_ids; *d; d++, c->n_diff_ids++) {
		if (c->n_diff_ids >= IMAGE_LAYERS_MAX)
			return berth_error_msg(err, E2BIG, "'rootfs.diff_ids': too many layers (at most %d)",
					       IMAGE_LAYERS_MAX);
		r = digest_parse(*d, NULL, NULL, err);
		if (r < 0)
			return berth_error_wrap(err, r, "'rootfs.diff_ids[%zu]'", c->n_diff_ids);
	}
	return 0;
}

int image_config_parse(const char *buf, size_t len, struct config_info *ret, struct berth_error **err)
{
	if (len > IMAGE_MANIFEST_MAX)
		return berth_error_msg(err, EFBIG, "image config too large (%zu bytes)", len);
	_cleanup_json_ json_t *doc = NULL;
	int r = json_parse(buf, len, "image config", &doc, err);
	if (r < 0)
		return r;
	if (!json_is_object(doc))
		return json_type_error(NULL, NULL, "object", doc, err);
	struct config_info c = { 0 };
	r = config_diff_ids(doc, &c, err);
	if (r < 0) {
		image_config_info_done(&c);
		return berth_error_wrap(err, r, "invalid image config");
	}
	const char *s = NULL;
	if (json_get_string(doc, NULL, "created", 0, &s, NULL) > 0) {
		struct timespec ts;
		if (util_parse_rfc3339(s, &ts) == 0)
			c.created = ts.tv_sec;
	}
	if (json_get_string(doc, NULL, "os", 0, &s, NULL) > 0)
		c.os = xstrdup(s);
	if (json_get_string(doc, NULL, "architecture", 0, &s, NULL) > 0)
		c.arch = xstrdup(s);
	if (json_get_string(doc, NULL, "variant", 0, &s, NULL) > 0)
		c.variant = xstrdup(s);
	*ret = c;
	return 0;
}
