/*
 * handlers-manifest.c - manifests (GET/HEAD/PUT/DELETE by tag or digest),
 * tags list, catalog and the referrers API.
 *
 * A PUT arrives buffered by the server (bounded by storage.manifest_max_size: 413
 * SIZE_INVALID beyond, from the server), is validated by
 * registry_manifest_parse(), every referenced blob/manifest is checked in the
 * repository under the shared gc lock, then stored.
 */
#include <inttypes.h>

#include "common/json.h"
#include "common/util.h"
#include "registry/manifest.h"
#include "registry/server.h"

#define MEDIA_TYPE_MAX    256
/* Most ?tag= values one manifest PUT takes (distribution-spec 1.1 tags on push). */
#define MANIFEST_TAGS_MAX 64

static int manifest_unknown(struct req *r)
{
	return registry_req_error(r, 404, "MANIFEST_UNKNOWN", "manifest unknown", r->route.ref);
}

static int resolve_ref(struct req *r, char *digest)
{
	struct registry *reg = r->reg;
	const char *repo = r->route.name, *ref = r->route.ref;
	if (r->route.ref_is_digest) {
		memcpy(digest, ref, strlen(ref) + 1);
		return 0;
	}
	return registry_store_resolve_tag(reg->store, repo, ref, digest);
}

static int manifest_get(struct req *r)
{
	struct registry *reg = r->reg;
	const char *repo = r->route.name;
	char digest[DIGEST_STRING_MAX], mt[MEDIA_TYPE_MAX], etag[DIGEST_STRING_MAX + 2];
	time_t tagged;
	if (reg->cfg->proxy_url && !r->route.ref_is_digest &&
	    registry_store_tag_mtime(reg->store, repo, r->route.ref, &tagged) == 0 &&
	    time(NULL) - tagged >= reg->cfg->proxy_tag_ttl_s)
		registry_proxy_fetch_manifest(reg, repo, r->route.ref, digest,
					      NULL); /* on failure: serve the cached tag */
	int rr = resolve_ref(r, digest);
	if (rr == 0)
		rr = registry_store_manifest_info(reg->store, repo, digest, mt, sizeof(mt), NULL);
	if (rr < 0 && reg->cfg->proxy_url) {
		if (registry_proxy_fetch_manifest(reg, repo, r->route.ref, digest, NULL) == 0)
			rr = registry_store_manifest_info(reg->store, repo, digest, mt, sizeof(mt), NULL);
	}
	if (rr < 0)
		return manifest_unknown(r);
	snprintf(etag, sizeof(etag), "\"%s\"", digest);
	const char *inm = registry_req_header(r, "If-None-Match");
	const char *h[] = { "Docker-Content-Digest", digest, "ETag", etag, NULL };
	if (inm && streq(inm, etag))
		return registry_req_respond(r, 304, NULL, NULL, 0, h);
	int fd;
	uint64_t size;
	if (registry_store_blob_open(reg->store, digest, &fd, &size) < 0)
		return manifest_unknown(r);
	return registry_req_respond_fd(r, 200, mt, fd, 0, size, h);
}

static int manifest_delete(struct req *r)
{
	struct registry *reg = r->reg;
	if (!reg->cfg->delete_enabled)
		return registry_req_error(r, 405, "UNSUPPORTED", "deletes are disabled", NULL);
	int rr;
	if (r->route.ref_is_digest) {
		rr = registry_store_manifest_delete(reg->store, r->route.name, r->route.ref);
	} else {
		if (registry_tags_immutable(reg, r->route.name))
			return registry_req_error(r, 400, "TAG_INVALID",
						  "tags are immutable in this repository", r->route.ref);
		rr = registry_store_tag_delete(reg->store, r->route.name, r->route.ref);
	}
	if (rr < 0)
		return manifest_unknown(r);
	return registry_req_respond(r, 202, NULL, NULL, 0, NULL);
}

static int manifest_put(struct req *r);

int registry_handle_manifest(struct req *r)
{
	int ret;
	const char *repo = r->route.name;
	switch (r->method) {
	case M_GET:
	case M_HEAD:
		if (!registry_req_authorize(r, repo, REGISTRY_PULL, &ret))
			return ret;
		return manifest_get(r);
	case M_DELETE:
		if (!registry_req_authorize(r, repo, REGISTRY_DELETE, &ret))
			return ret;
		return manifest_delete(r);
	case M_PUT: break;
	default: return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	}
	if (!registry_req_authorize(r, repo, REGISTRY_PULL | REGISTRY_PUSH, &ret) ||
	    !registry_req_push_check(r, &ret))
		return ret;
	return manifest_put(r);
}

/* Every descriptor must exist in the repository. Returns the first missing digest or NULL. */
static const char *missing_ref(struct registry *reg, const char *repo, const struct manifest_info *m)
{
	char mt[MEDIA_TYPE_MAX];
	for (size_t i = 0; i < m->n_refs; i++) {
		const struct manifest_ref *ref = &m->refs[i];
		bool ok = ref->is_manifest
			      ? registry_store_manifest_info(reg->store, repo, ref->digest, mt, sizeof(mt),
							     NULL) == 0
			      : registry_store_repo_has_blob(reg->store, repo, ref->digest, NULL);
		if (!ok)
			return ref->digest;
	}
	return NULL;
}

int registry_manifest_commit(struct registry *reg, const char *repo, const char *const *tags,
			     const struct manifest_info *m, const char *digest, const void *data, size_t len,
			     const char **ret_missing, struct berth_error **err)
{
	struct manifest_put p = {
		.repo = repo,
		.tags = tags,
		.digest = digest,
		.media_type = m->media_type,
		.subject = m->subject[0] ? m->subject : NULL,
		.artifact_type = m->artifact_type,
		.annotations = m->annotations,
		.data = data,
		.len = len,
		.immutable_tags = tags && tags[0] && registry_tags_immutable(reg, repo),
	};
	int lock = registry_store_lock(reg->store, false, err);
	if (lock < 0)
		return lock;
	*ret_missing = missing_ref(reg, repo, m);
	int rr = *ret_missing ? -ENOENT : registry_store_manifest_put(reg->store, &p, err);
	close(lock);
	const struct registry_hooks *hk = reg->cfg->hooks;
	if (rr == 0 && hk && hk->manifest_pushed) {
		hk->manifest_pushed(reg->cfg->hooks_data, repo, tags ? tags[0] : NULL, digest);
		for (size_t i = 1; tags && tags[0] && tags[i]; i++)
			hk->manifest_pushed(reg->cfg->hooks_data, repo, tags[i], digest);
	}
	return rr;
}

struct tag_args {
	const char *v[MANIFEST_TAGS_MAX + 2]; /* the route's tag (if any), then ?tag= values, NULL */
	size_t n;
	const char *bad; /* the first invalid value */
	bool too_many;
};

/* The ?tag= values after the route's own tag; the first invalid one in t->bad. */
static void collect_tags(struct tag_args *t, char **values)
{
	for (char **v = values; *v; v++) {
		if (!registry_tag_valid(*v)) {
			if (!t->bad)
				t->bad = *v;
			continue;
		}
		bool dup = false;
		for (size_t i = 0; i < t->n && !dup; i++)
			dup = streq(t->v[i], *v);
		if (dup)
			continue;
		if (t->n >= MANIFEST_TAGS_MAX + 1)
			t->too_many = true;
		else
			t->v[t->n++] = *v;
	}
}

static int manifest_store(struct req *r, const struct manifest_info *m, const char *digest,
			  const struct tag_args *tags)
{
	const char *repo = r->route.name, *missing = NULL;
	struct berth_error *err = NULL;
	int rr =
	    registry_manifest_commit(r->reg, repo, tags->v, m, digest, r->data, r->data_len, &missing, &err);
	_cleanup_error_ struct berth_error *e = err;
	_cleanup_free_ char *msg = err ? berth_error_string(err) : NULL;
	if (missing)
		return registry_req_error(r, 400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry",
					  missing);
	if (rr == -EEXIST)
		return registry_req_error(r, 400, "TAG_INVALID", msg, r->route.ref);
	if (rr < 0)
		return registry_req_store_error(r, rr, "cannot store manifest", e);
	char loc[600];
	snprintf(loc, sizeof(loc), "/v2/%s/manifests/%s", repo, digest);
	/* name/value pairs: one OCI-Tag per tag created (distribution-spec 1.1, push with ?tag=) */
	const char *h[2 * (MANIFEST_TAGS_MAX + 4) + 1];
	size_t k = 0;
	h[k++] = "Location";
	h[k++] = loc;
	h[k++] = "Docker-Content-Digest";
	h[k++] = digest;
	if (m->subject[0]) {
		h[k++] = "OCI-Subject";
		h[k++] = m->subject;
	}
	for (size_t i = 0; r->route.ref_is_digest && i < tags->n; i++) {
		h[k++] = "OCI-Tag";
		h[k++] = tags->v[i];
	}
	h[k] = NULL;
	return registry_req_respond(r, 201, NULL, NULL, 0, h);
}

/*
 * The digest a manifest is stored under: the reference's when pushed by
 * digest; by tag, sha256 unless the client names another with ?digest=
 * (the OCI conformance suite's digest-algorithm checks, regclient's
 * "digest" parameter), which must then match the body.
 */
static int manifest_digest(struct req *r, char *digest, bool *ok)
{
	const char *want = r->route.ref_is_digest ? r->route.ref : registry_req_arg(r, "digest");
	enum digest_algo algo = DIGEST_SHA256;
	*ok = false;
	if (want && *want && digest_parse(want, &algo, NULL, NULL) < 0)
		return registry_req_error(r, 400, "DIGEST_INVALID", "invalid digest", want);
	digest_buffer(algo, r->data, r->data_len, digest);
	if (want && *want && !streq(digest, want))
		return registry_req_error(r, 400, "DIGEST_INVALID",
					  "manifest digest does not match reference", digest);
	*ok = true;
	return 0;
}

static int manifest_put(struct req *r)
{
	struct tag_args tags = { .n = 0 };
	if (!r->route.ref_is_digest)
		tags.v[tags.n++] = r->route.ref;
	_cleanup_strv_ char **values = http_request_query_all(r->hr, "tag");
	collect_tags(&tags, values);
	tags.v[tags.n] = NULL;
	if (tags.bad)
		return registry_req_error(r, 400, "TAG_INVALID", "invalid tag", tags.bad);
	if (tags.too_many)
		return registry_req_error(r, 400, "TAG_INVALID", "too many tags", NULL);
	char digest[DIGEST_STRING_MAX];
	bool ok;
	int dr = manifest_digest(r, digest, &ok);
	if (!ok)
		return dr;
	struct manifest_info m;
	struct berth_error *err = NULL;
	int rr =
	    registry_manifest_parse(registry_req_header(r, "Content-Type"), r->data, r->data_len, &m, &err);
	if (rr < 0) {
		_cleanup_free_ char *msg = berth_error_string(err);
		berth_error_free(err);
		return registry_req_error(r, 400, "MANIFEST_INVALID", "manifest invalid", msg);
	}
	int ret = manifest_store(r, &m, digest, &tags);
	registry_manifest_info_done(&m);
	return ret;
}

int registry_handle_tags(struct req *r)
{
	int ret;
	const char *repo = r->route.name;
	if (r->method != M_GET && r->method != M_HEAD)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if (!registry_req_authorize(r, repo, REGISTRY_PULL, &ret))
		return ret;
	_cleanup_strv_ char **tags = NULL;
	if (registry_store_tags_list(r->reg->store, repo, &tags) < 0)
		return registry_req_error(r, 404, "NAME_UNKNOWN", "repository name not known to registry",
					  repo);
	_cleanup_free_ char *base = xasprintf("/v2/%s/tags/list", repo);
	return registry_req_paginated_list(r, "tags", repo, tags, base);
}

int registry_handle_catalog(struct req *r)
{
	if (r->method != M_GET && r->method != M_HEAD)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if (registry_auth_enabled(r->reg->auth) && !r->id.authenticated)
		return registry_req_unauthorized(r, "", 0);
	_cleanup_strv_ char **repos = NULL;
	registry_store_catalog(r->reg->store, &repos);
	/* show only what the caller may pull */
	size_t j = 0;
	for (size_t i = 0; repos[i]; i++) {
		bool ok =
		    r->id.bearer
			? r->id.catalog ||
			      registry_auth_allowed(r->reg->auth, &r->id, repos[i], REGISTRY_PULL)
			: (registry_auth_config_actions(r->reg->cfg, &r->id, repos[i]) & REGISTRY_PULL) ||
			      !registry_auth_enabled(r->reg->auth);
		if (ok)
			repos[j++] = repos[i];
		else
			free(repos[i]);
	}
	repos[j] = NULL;
	return registry_req_paginated_list(r, "repositories", NULL, repos, "/v2/_catalog");
}

int registry_handle_referrers(struct req *r)
{
	int ret;
	const char *repo = r->route.name;
	if (r->method != M_GET && r->method != M_HEAD)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if (!r->route.ref_is_digest)
		return registry_req_error(r, 400, "DIGEST_INVALID", "invalid digest", r->route.ref);
	if (!registry_req_authorize(r, repo, REGISTRY_PULL, &ret))
		return ret;
	const char *at = registry_req_arg(r, "artifactType");
	json_t *list = NULL;
	registry_store_referrers(r->reg->store, repo, r->route.ref, at && *at ? at : NULL, &list);
	_cleanup_json_ json_t *doc =
	    json_pack("{s:i,s:s,s:o}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX, "manifests", list);
	_cleanup_free_ char *body = json_dump_compact(doc);
	const char *h[] = { "OCI-Filters-Applied", at && *at ? "artifactType" : NULL, NULL };
	return registry_req_respond(r, 200, MT_OCI_INDEX, body, strlen(body), h);
}
