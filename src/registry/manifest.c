/*
 * manifest.c - structural validation of image manifests and indexes before
 * they are stored. Existence of the referenced blobs is checked by the caller
 * against the repository (handlers), so this file stays pure and fuzzable.
 */
#include "registry/manifest.h"

#include "common/json.h"

bool registry_manifest_media_type_known(const char *mt)
{
	return streq(mt, MT_OCI_MANIFEST) || streq(mt, MT_OCI_INDEX) || streq(mt, MT_DOCKER_MANIFEST) ||
	       streq(mt, MT_DOCKER_LIST);
}

static const char *canonical_mt(const char *mt)
{
	static const char *const known[] = { MT_OCI_MANIFEST, MT_OCI_INDEX, MT_DOCKER_MANIFEST,
					     MT_DOCKER_LIST };
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (streq(mt, known[i]))
			return known[i];
	return NULL;
}

static bool is_schema1(const char *mt)
{
	return startswith(mt, "application/vnd.docker.distribution.manifest.v1");
}

/* Strip parameters: "application/json; charset=utf-8" -> "application/json" into buf. */
static const char *bare_mt(const char *ct, char *buf, size_t n)
{
	size_t len = strcspn(ct, "; \t");
	if (len >= n)
		len = n - 1;
	memcpy(buf, ct, len);
	buf[len] = '\0';
	return buf;
}

static int parse_descriptor(const json_t *d, const char *path, struct manifest_ref *ref,
			    struct berth_error **err)
{
	const char *mt, *digest;
	int64_t size;
	int r;
	if (!json_is_object(d))
		return json_type_error(path, NULL, "object", d, err);
	if ((r = json_get_string(d, path, "mediaType", JSON_REQUIRED, &mt, err)) < 0 ||
	    (r = json_get_string(d, path, "digest", JSON_REQUIRED, &digest, err)) < 0 ||
	    (r = json_get_int_range(d, path, "size", JSON_REQUIRED, 0, INT64_MAX, &size, err)) < 0)
		return r;
	if (digest_parse(digest, NULL, NULL, NULL) < 0)
		return berth_error_msg(err, EINVAL, "'%s.digest': invalid digest '%s'", path, digest);
	snprintf(ref->digest, sizeof(ref->digest), "%s", digest);
	ref->size = size;
	return 0;
}

static int add_refs(const json_t *doc, const char *key, bool required, bool is_manifest,
		    struct manifest_info *m, struct berth_error **err)
{
	json_t *arr = NULL;
	int r = json_get_array(doc, "", key, required ? JSON_REQUIRED : 0, &arr, err);
	if (r <= 0)
		return r;
	if (json_array_size(arr) > MANIFEST_MAX_REFS)
		return berth_error_msg(err, EINVAL, "'%s': too many entries", key);
	m->refs = xrealloc(m->refs, (m->n_refs + json_array_size(arr) + 1) * sizeof(*m->refs));
	size_t i;
	json_t *d;
	json_array_foreach (arr, i, d) {
		_cleanup_free_ char *path = json_path_index(key, i);
		struct manifest_ref *ref = &m->refs[m->n_refs];
		*ref = (struct manifest_ref){ .is_manifest = is_manifest };
		if ((r = parse_descriptor(d, path, ref, err)) < 0)
			return r;
		/* foreign layers (with urls) live elsewhere: nothing to check locally */
		if (json_object_get(d, "urls") && !is_manifest)
			continue;
		m->n_refs++;
	}
	return 0;
}

static int parse_image(const json_t *doc, struct manifest_info *m, struct berth_error **err)
{
	json_t *config;
	int r = json_get_object(doc, "", "config", JSON_REQUIRED, &config, err);
	if (r < 0)
		return r;
	m->refs = xrealloc(m->refs, sizeof(*m->refs));
	if ((r = parse_descriptor(config, "config", &m->refs[0], err)) < 0)
		return r;
	m->refs[0].is_manifest = false;
	m->n_refs = 1;
	if ((r = add_refs(doc, "layers", true, false, m, err)) < 0)
		return r;
	const char *at = NULL;
	if ((r = json_get_string(doc, "", "artifactType", 0, &at, err)) < 0)
		return r;
	if (!at)
		at = json_string_value(json_object_get(config, "mediaType"));
	m->artifact_type = at ? xstrdup(at) : NULL;
	return 0;
}

static int parse_common(const json_t *doc, struct manifest_info *m, struct berth_error **err)
{
	int64_t version;
	json_t *subject = NULL, *ann = NULL;
	int r = json_get_int_range(doc, "", "schemaVersion", JSON_REQUIRED, 0, 100, &version, err);
	if (r < 0)
		return r;
	if (version != 2)
		return berth_error_msg(err, EINVAL, "'schemaVersion': expected 2, got %lld",
				       (long long)version);
	if ((r = json_get_object(doc, "", "subject", 0, &subject, err)) < 0)
		return r;
	if (subject) {
		struct manifest_ref ref;
		if ((r = parse_descriptor(subject, "subject", &ref, err)) < 0)
			return r;
		memcpy(m->subject, ref.digest, sizeof(ref.digest));
	}
	if ((r = json_get_object(doc, "", "annotations", 0, &ann, err)) < 0)
		return r;
	m->annotations = json_incref(ann);
	return 0;
}

static int resolve_media_type(const char *content_type, const json_t *doc, struct manifest_info *m,
			      struct berth_error **err)
{
	char ctbuf[128];
	const char *ct = content_type && *content_type ? bare_mt(content_type, ctbuf, sizeof(ctbuf)) : NULL;
	const char *doc_mt = NULL;
	int r = json_get_string(doc, "", "mediaType", 0, &doc_mt, err);
	if (r < 0)
		return r;
	if (ct && streq(ct, "application/json"))
		ct = NULL; /* generic type: let the document say */
	if ((ct && is_schema1(ct)) || (doc_mt && is_schema1(doc_mt)) ||
	    (!ct && !doc_mt && json_object_get(doc, "fsLayers")))
		return berth_error_msg(err, EPROTONOSUPPORT, "schema1 manifests are not supported");
	if (ct && doc_mt && !streq(ct, doc_mt))
		return berth_error_msg(
		    err, EINVAL, "media type '%s' does not match the manifest's mediaType '%s'", ct, doc_mt);
	const char *mt = ct ? ct : doc_mt;
	if (!mt) {
		/* OCI allows omitting mediaType; guess from the shape */
		mt = json_object_get(doc, "manifests") ? MT_OCI_INDEX : MT_OCI_MANIFEST;
	}
	m->media_type = canonical_mt(mt);
	if (!m->media_type)
		return berth_error_msg(err, EINVAL, "unsupported manifest media type '%s'", mt);
	m->is_index = streq(m->media_type, MT_OCI_INDEX) || streq(m->media_type, MT_DOCKER_LIST);
	return 0;
}

int registry_manifest_parse(const char *content_type, const char *data, size_t len, struct manifest_info *ret,
			    struct berth_error **err)
{
	_cleanup_json_ json_t *doc = NULL;
	struct manifest_info m = { 0 };
	int r = json_parse(data, len, "manifest", &doc, err);
	if (r < 0)
		return r;
	if (!json_is_object(doc))
		return json_type_error(NULL, NULL, "object", doc, err);
	if ((r = resolve_media_type(content_type, doc, &m, err)) < 0 || (r = parse_common(doc, &m, err)) < 0)
		goto fail;
	if (m.is_index)
		r = add_refs(doc, "manifests", true, true, &m, err);
	else
		r = parse_image(doc, &m, err);
	if (r < 0)
		goto fail;
	if (m.is_index) {
		const char *at = NULL;
		if ((r = json_get_string(doc, "", "artifactType", 0, &at, err)) < 0)
			goto fail;
		m.artifact_type = at ? xstrdup(at) : NULL;
	}
	*ret = m;
	return 0;
fail:
	registry_manifest_info_done(&m);
	return r;
}

void registry_manifest_info_done(struct manifest_info *m)
{
	free(m->refs);
	free(m->artifact_type);
	json_decref(m->annotations);
	*m = (struct manifest_info){ 0 };
}
