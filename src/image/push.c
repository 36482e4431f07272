/*
 * push.c - image_push(): blobs (HEAD, cross-repository mount, monolithic or
 * chunked upload), then the manifest PUT.
 *
 * Blobs are pushed one after another; a registry's upload sessions are
 * stateful and chunked uploads must be ordered, so parallelism would buy
 * little on the loopback registries we target and complicate progress.
 * NEEDSWORK: parallel blob pushes for remote registries.
 */
#include <sys/stat.h>

#include "common/json.h"
#include "image/manifest.h"
#include "image/remote.h"

#define PUSH_MONOLITHIC_MAX (16u << 20)
#define PUSH_CHUNK          (16u << 20)
#define PUSH_BODY_MAX       (64u << 10)

/* Absolute upload URL from a Location header, plus a query parameter. */
static char *upload_url(struct remote *rm, const char *loc, const char *param)
{
	_cleanup_free_ char *abs = startswith(loc, "http://") || startswith(loc, "https://")
				       ? xstrdup(loc)
				       : xasprintf("%s%s", rm->base, loc);
	if (!param)
		return TAKE_PTR(abs);
	return xasprintf("%s%s%s", abs, strchr(abs, '?') ? "&" : "?", param);
}

static int blob_exists(struct remote *rm, const char *digest, bool *ret, struct berth_error **err)
{
	_cleanup_free_ char *url = image_remote_url(rm, "blobs", digest);
	struct http_req q = { .method = "HEAD", .url = url };
	int r = image_remote_do(rm, &q, err);
	image_http_req_done(&q);
	if (r < 0)
		return r;
	if (q.status != 200 && q.status != 404)
		return berth_error_msg(err, EPROTO, "check blob '%s': registry returned HTTP %ld", digest,
				       q.status);
	*ret = q.status == 200;
	return 0;
}

/* Other repositories on the same registry that hold this blob (from our digests table). */
static char *mount_source(struct remote *rm, const char *digest)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_open(rm->s, &db, NULL) < 0 ||
	    image_store_db_prepare(db,
				   "SELECT d.ref FROM digests d JOIN images i ON i.id = d.image_id"
				   " LEFT JOIN image_layers l ON l.image_id = i.id"
				   " WHERE (l.blob = ?1 OR i.id = ?1) AND d.ref LIKE ?2 LIMIT 16",
				   &st, NULL) < 0)
		return NULL;
	_cleanup_free_ char *prefix = xasprintf("%s/%%", rm->ref->domain);
	_cleanup_free_ char *self = image_ref_name(rm->ref);
	sqlite3_bind_text(st, 1, digest, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *ref = (const char *)sqlite3_column_text(st, 0);
		const char *at = strchr(ref, '@');
		size_t dl = strlen(rm->ref->domain);
		if (!at || (size_t)(at - ref) <= dl + 1 || !strncmp(ref, self, strlen(self)))
			continue;
		return xstrndup(ref + dl + 1, (size_t)(at - ref) - dl - 1);
	}
	return NULL;
}

static int try_mount(struct remote *rm, const char *digest, const char *from, bool *ret_done, char **ret_loc,
		     struct berth_error **err)
{
	_cleanup_free_ char *ed = http_url_escape(digest), *ef = http_url_escape(from);
	_cleanup_free_ char *url =
	    xasprintf("%s/v2/%s/blobs/uploads/?mount=%s&from=%s", rm->base, rm->ref->path, ed, ef);
	struct http_req q = { .method = "POST", .url = url };
	int r = image_remote_do(rm, &q, err);
	if (r >= 0 && q.status != 201 && q.status != 202)
		r = image_remote_status_error(&q, "start upload", err);
	if (r >= 0) {
		*ret_done = q.status == 201;
		*ret_loc = q.location ? xstrdup(q.location) : NULL;
		if (!*ret_done && !*ret_loc)
			r = berth_error_msg(err, EPROTO, "start upload: no Location header");
	}
	image_http_req_done(&q);
	return r;
}

static int upload_blob(struct remote *rm, const char *sid, const char *digest, const char *loc, uint64_t size,
		       struct berth_error **err)
{
	_cleanup_close_ int fd = image_content_open(rm->s, digest, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *cur = xstrdup(loc);
	_cleanup_free_ char *dparam = xasprintf("digest=%s", digest);
	uint64_t off = 0;
	int r = 0;
	while (size > PUSH_MONOLITHIC_MAX && off < size) { /* chunked: PATCH ranges */
		uint64_t n = MIN((uint64_t)PUSH_CHUNK, size - off);
		_cleanup_free_ char *url = upload_url(rm, cur, NULL);
		_cleanup_free_ char *range =
		    xasprintf("%llu-%llu", (unsigned long long)off, (unsigned long long)(off + n - 1));
		struct http_req q = { .method = "PATCH",
				      .url = url,
				      .in_fd = fd,
				      .in_off = off,
				      .in_size = n,
				      .content_type = "application/octet-stream",
				      .content_range = range };
		r = image_remote_do(rm, &q, err);
		if (r >= 0 && q.status != 202)
			r = image_remote_status_error(&q, "upload blob chunk", err);
		if (r >= 0 && q.location) {
			free(cur);
			cur = xstrdup(q.location);
		}
		image_http_req_done(&q);
		if (r < 0)
			return r;
		off += n;
		image_remote_emit(rm->o, sid, "Pushing", off, size);
	}
	_cleanup_free_ char *url = upload_url(rm, cur, dparam);
	struct http_req q = { .method = "PUT",
			      .url = url,
			      .in_fd = fd,
			      .in_off = off,
			      .in_size = size - off,
			      .content_type = "application/octet-stream" };
	r = image_remote_do(rm, &q, err);
	if (r >= 0 && q.status != 201)
		r = image_remote_status_error(&q, "finish blob upload", err);
	image_http_req_done(&q);
	return r;
}

static int push_blob(struct remote *rm, const char *digest, struct berth_error **err)
{
	char sid[13];
	uint64_t size = 0;
	image_store_short_id(digest, sid);
	if (!image_content_has(rm->s, digest, &size))
		return berth_error_msg(err, ENOENT, "blob '%s' missing from the store", digest);
	image_remote_emit(rm->o, sid, "Preparing", 0, 0);
	bool exists = false;
	int r = blob_exists(rm, digest, &exists, err);
	if (r < 0)
		return r;
	if (exists) {
		image_remote_emit(rm->o, sid, "Layer already exists", 0, 0);
		return 0;
	}
	_cleanup_free_ char *from = mount_source(rm, digest);
	_cleanup_free_ char *loc = NULL;
	bool done = false;
	if (from) {
		/* A refused mount (e.g. no pull access to `from`) falls back to an upload. */
		_cleanup_error_ struct berth_error *merr = NULL;
		r = try_mount(rm, digest, from, &done, &loc, &merr);
		if (r >= 0 && done) {
			_cleanup_free_ char *m = xasprintf("Mounted from %s", from);
			image_remote_emit(rm->o, sid, m, 0, 0);
			return 0;
		}
	}
	if (!loc) {
		_cleanup_free_ char *url = xasprintf("%s/v2/%s/blobs/uploads/", rm->base, rm->ref->path);
		_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
		struct http_req q = {
			.method = "POST", .url = url, .body = &body, .body_max = PUSH_BODY_MAX
		};
		r = image_remote_do(rm, &q, err);
		if (r >= 0 && q.status != 202)
			r = image_remote_status_error(&q, "start blob upload", err);
		if (r >= 0 && !q.location)
			r = berth_error_msg(err, EPROTO, "start blob upload: no Location header");
		if (r >= 0)
			loc = xstrdup(q.location);
		image_http_req_done(&q);
		if (r < 0)
			return r;
	}
	image_remote_emit(rm->o, sid, "Pushing", 0, size);
	r = upload_blob(rm, sid, digest, loc, size, err);
	if (r < 0)
		return berth_error_wrap(err, r, "push blob '%s'", digest);
	image_remote_emit(rm->o, sid, "Pushed", size, size);
	return 0;
}

static int put_manifest(struct remote *rm, const struct store_image *img, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf m = STRBUF_INIT, body = STRBUF_INIT;
	int r = image_content_read(rm->s, img->manifest_digest, IMAGE_MANIFEST_MAX, &m, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url = image_remote_url(rm, "manifests", rm->ref->tag);
	struct http_req q = { .method = "PUT",
			      .url = url,
			      .in_buf = m.buf,
			      .in_len = m.len,
			      .content_type =
				  img->manifest_media_type ? img->manifest_media_type : MT_OCI_MANIFEST,
			      .body = &body,
			      .body_max = PUSH_BODY_MAX };
	r = image_remote_do(rm, &q, err);
	if (r >= 0 && q.status != 201)
		r = image_remote_status_error(&q, "put manifest", err);
	image_http_req_done(&q);
	return r;
}

static int do_push(struct remote *rm, const char *id, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	struct store_image img = { 0 };
	int r = image_store_db_open(rm->s, &db, err);
	if (r < 0 || (r = image_store_image_get(db, id, &img, err)) < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < img.n_layers; i++)
		r = push_blob(rm, img.layers[i].blob, err);
	if (r >= 0)
		r = push_blob(rm, img.id, err);
	if (r >= 0 && !img.manifest_digest)
		r = berth_error_msg(err, ENOENT, "image '%s' has no manifest", id);
	if (r >= 0)
		r = put_manifest(rm, &img, err);
	if (r >= 0) {
		_cleanup_free_ char *name = image_ref_name(rm->ref);
		_cleanup_free_ char *dref = xasprintf("%s@%s", name, img.manifest_digest);
		r = image_store_digest_put(db, dref, id, err);
		char line[256];
		uint64_t msize = 0;
		image_content_has(rm->s, img.manifest_digest, &msize);
		snprintf(line, sizeof(line), "%s: digest: %s size: %llu", rm->ref->tag, img.manifest_digest,
			 (unsigned long long)msize);
		image_remote_emit(rm->o, NULL, line, 0, 0);
	}
	image_store_image_done(&img);
	return r;
}

int image_push(struct image_store *s, const char *ref, const struct image_remote_opts *opts,
	       char **ret_digest, struct berth_error **err)
{
	_cleanup_image_ref_ struct image_ref *r = NULL;
	int k = image_ref_parse(ref, IMAGE_REF_DEFAULT_TAG | IMAGE_REF_NO_DIGEST, &r, err);
	if (k < 0)
		return k;
	_cleanup_free_ char *full = image_ref_string(r);
	_cleanup_free_ char *id = NULL;
	k = image_resolve(s, full, &id, err);
	if (k < 0)
		return berth_error_wrap(err, k, "push '%s': tag does not exist", ref);
	struct remote rm = { 0 };
	k = image_remote_open(s, r, opts, true, &rm, err);
	if (k >= 0)
		k = do_push(&rm, id, err);
	if (k >= 0 && ret_digest) {
		_cleanup_db_ sqlite3 *db = NULL;
		struct store_image img = { 0 };
		if (image_store_db_open(s, &db, NULL) >= 0 && image_store_image_get(db, id, &img, NULL) >= 0)
			*ret_digest = xstrdup(img.manifest_digest ? img.manifest_digest : "");
		else
			*ret_digest = xstrdup("");
		image_store_image_done(&img);
	}
	image_remote_done(&rm);
	if (k < 0)
		return berth_error_wrap(err, k, "push '%s'", ref);
	return 0;
}
