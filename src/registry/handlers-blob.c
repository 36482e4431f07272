/*
 * handlers-blob.c - blob routes: GET/HEAD/DELETE /v2/<name>/blobs/<digest>
 * and the upload protocol (POST, PATCH, PUT, GET, DELETE on
 * /v2/<name>/blobs/uploads/...), including cross-repository mounts.
 *
 * Bodies stream into the session's data file as the server hands them over
 * (http_request_body_read); a chunk whose Content-Range or length lies is
 * rolled back (truncate to where it began), so the stored prefix always
 * matches the running digest. Blobs are sent from their file (sendfile),
 * ranges included (http_respond_fd_range).
 */
#include <fcntl.h>
#include <inttypes.h>

#include "common/util.h"
#include "registry/server.h"

#define UUID_HDR        "Docker-Upload-UUID"
/* Upload bodies are read from the server in pieces of up to this. */
#define UPLOAD_READ_MAX (256u << 10)

static int blob_unknown(struct req *r, const char *digest)
{
	return registry_req_error(r, 404, "BLOB_UNKNOWN", "blob unknown to registry", digest);
}

static int blob_get(struct req *r, const char *repo, const char *digest)
{
	struct registry *reg = r->reg;
	uint64_t size;
	int fd = -1;
	if (!registry_store_repo_has_blob(reg->store, repo, digest, NULL)) {
		if (!reg->cfg->proxy_url || registry_proxy_fetch_blob(reg, repo, digest, NULL) < 0)
			return blob_unknown(r, digest);
	}
	if (registry_store_blob_open(reg->store, digest, &fd, &size) < 0)
		return blob_unknown(r, digest);
	char etag[DIGEST_STRING_MAX + 2];
	snprintf(etag, sizeof(etag), "\"%s\"", digest);
	const char *h[] = { "Docker-Content-Digest", digest, "ETag", etag, "Cache-Control",
			    "max-age=31536000",      NULL };
	uint64_t start = 0, end = 0;
	int rr = http_range_parse(registry_req_header(r, "Range"), size, &start, &end);
	if (rr < 0) {
		close(fd);
		char crange[48];
		snprintf(crange, sizeof(crange), "bytes */%" PRIu64, size);
		const char *eh[] = { "Content-Range", crange, NULL };
		static const char body[] =
		    "{\"errors\":[{\"code\":\"RANGE_INVALID\",\"message\":\"range not satisfiable\"}]}\n";
		return registry_req_respond(r, 416, "application/json", body, sizeof(body) - 1, eh);
	}
	registry_req_prepare(r, rr > 0 ? 206 : 200, h);
	if (r->method != M_HEAD)
		r->bytes_out += rr > 0 ? end - start + 1 : size;
	http_respond_fd_range(r->hr, "application/octet-stream", fd, size);
	return 0;
}

int registry_handle_blob(struct req *r)
{
	const char *repo = r->route.name, *digest = r->route.ref;
	int ret;
	if (r->method == M_GET || r->method == M_HEAD) {
		if (!registry_req_authorize(r, repo, REGISTRY_PULL, &ret))
			return ret;
		return blob_get(r, repo, digest);
	}
	if (r->method != M_DELETE)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if (!registry_req_authorize(r, repo, REGISTRY_DELETE, &ret))
		return ret;
	if (!r->reg->cfg->delete_enabled)
		return registry_req_error(r, 405, "UNSUPPORTED", "deletes are disabled", NULL);
	if (registry_store_repo_unlink_blob(r->reg->store, repo, digest) < 0)
		return blob_unknown(r, digest);
	return registry_req_respond(r, 202, NULL, NULL, 0, NULL);
}

/* 202 with the session's Location and Range (GET status, PATCH, POST). */
static int upload_status(struct req *r, unsigned status)
{
	char loc[600], range[48];
	snprintf(loc, sizeof(loc), "/v2/%s/blobs/uploads/%s", r->route.name, r->up->uuid);
	snprintf(range, sizeof(range), "0-%" PRIu64, r->up->offset ? r->up->offset - 1 : 0);
	const char *h[] = { "Location", loc, "Range", range, UUID_HDR, r->up->uuid, NULL };
	return registry_req_respond(r, status, NULL, NULL, 0, h);
}

static int blob_created(struct req *r, const char *digest)
{
	char loc[600];
	snprintf(loc, sizeof(loc), "/v2/%s/blobs/%s", r->route.name, digest);
	const char *h[] = { "Location", loc, "Docker-Content-Digest", digest, NULL };
	return registry_req_respond(r, 201, NULL, NULL, 0, h);
}

/*
 * POST ?mount=<digest>&from=<repo>: link when the source has it. 1 = mounted
 * (answered 201 on the last callback, keeping the connection alive), 0 = fall
 * back to a session.
 */
static int try_mount(struct req *r)
{
	const char *digest = registry_req_arg(r, "mount"), *from = registry_req_arg(r, "from");
	struct registry *reg = r->reg;
	if (!digest || !digest_valid(digest))
		return 0;
	if (!from || !registry_name_valid(from) ||
	    !registry_auth_allowed(reg->auth, &r->id, from, REGISTRY_PULL) ||
	    !registry_store_repo_has_blob(reg->store, from, digest, NULL))
		return 0;
	int lock = registry_store_lock(reg->store, false, NULL);
	if (lock < 0)
		return 0;
	int rr = registry_store_repo_link_blob(reg->store, r->route.name, digest, NULL);
	close(lock);
	if (rr < 0)
		return 0;
	r->mounted = digest;
	return 1;
}

static int range_invalid(struct req *r)
{
	char range[48];
	snprintf(range, sizeof(range), "0-%" PRIu64, r->up->offset ? r->up->offset - 1 : 0);
	const char *h[] = { "Range", range, UUID_HDR, r->up->uuid, NULL };
	static const char body[] = "{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\",\"message\":\"content "
				   "range does not match upload offset\"}]}\n";
	return registry_req_respond(r, 416, "application/json", body, sizeof(body) - 1, h);
}

/* Acquire the session named in the route and check Content-Range for a body. */
static int upload_prepare_body(struct req *r, int *ret)
{
	uint64_t a, b;
	int rr = registry_content_range_parse(registry_req_header(r, "Content-Range"), &a, &b);
	if (rr < 0) {
		*ret = range_invalid(r);
		return -1;
	}
	r->chunk_start = r->up->offset;
	if (rr > 0) {
		if (a != r->up->offset) {
			*ret = range_invalid(r);
			return -1;
		}
		r->range_end = (int64_t)b;
		const char *cl = registry_req_header(r, "Content-Length");
		uint64_t len;
		if (cl && (util_parse_uint64(cl, &len) < 0 || len != b - a + 1)) {
			*ret = range_invalid(r);
			return -1;
		}
	}
	r->body = BODY_UPLOAD;
	return 0;
}

static int upload_acquire_route(struct req *r)
{
	int rr = registry_upload_acquire(&r->reg->uploads, r->route.name, r->route.ref, &r->up);
	if (rr == -EBUSY)
		return registry_req_error(r, 409, "BLOB_UPLOAD_INVALID",
					  "upload is busy with another request", NULL);
	if (rr < 0)
		return registry_req_error(r, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry",
					  NULL);
	return 0;
}

static int upload_start(struct req *r)
{
	if (registry_req_arg(r, "mount") && try_mount(r))
		return 0;
	const char *digest = registry_req_arg(r, "digest");
	if (digest && !digest_valid(digest))
		return registry_req_error(r, 400, "DIGEST_INVALID", "invalid digest", digest);
	_cleanup_error_ struct berth_error *err = NULL;
	int rr = registry_upload_create(&r->reg->uploads, r->route.name, &r->up, &err);
	if (rr == -EAGAIN)
		return registry_req_error(r, 429, "TOOMANYREQUESTS", "too many upload sessions", NULL);
	if (rr < 0)
		return registry_req_store_error(r, rr, "cannot create upload session", err);
	if (digest) {
		r->upload_monolithic = true;
		r->body = BODY_UPLOAD;
		r->chunk_start = 0;
	}
	return 0; /* answered once the body has been read (upload_end) */
}

static int upload_begin(struct req *r)
{
	int ret;
	if (!registry_req_authorize(r, r->route.name, REGISTRY_PULL | REGISTRY_PUSH, &ret))
		return ret;
	if (r->route.kind == ROUTE_UPLOAD_START) {
		if (r->method != M_POST)
			return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
		if (!registry_req_push_check(r, &ret))
			return ret;
		return upload_start(r);
	}
	if (r->method != M_GET && r->method != M_PATCH && r->method != M_PUT && r->method != M_DELETE)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if ((ret = upload_acquire_route(r)) != 0 || r->responded)
		return ret;
	if (r->method == M_GET)
		return upload_status(r, 204);
	if (r->method == M_DELETE) {
		registry_upload_cancel(&r->reg->uploads, r->up);
		r->up = NULL;
		return registry_req_respond(r, 204, NULL, NULL, 0, NULL);
	}
	if (r->method == M_PUT) {
		const char *digest = registry_req_arg(r, "digest");
		if (!digest || !digest_valid(digest))
			return registry_req_error(r, 400, "DIGEST_INVALID", "missing or invalid digest",
						  digest);
	}
	if (upload_prepare_body(r, &ret) < 0)
		return ret;
	return 0;
}

static void upload_data(struct req *r, const char *data, size_t len)
{
	if (r->defer_status)
		return; /* discarding after an error */
	if (r->range_end >= 0 && r->up->offset + len > (uint64_t)r->range_end + 1) {
		r->defer_status = 416;
		r->defer_code = "BLOB_UPLOAD_INVALID";
		r->defer_msg = "body longer than its content range";
		return;
	}
	if (r->up->offset + len > (uint64_t)r->reg->cfg->blob_max) {
		r->defer_status = 413;
		r->defer_code = "SIZE_INVALID";
		r->defer_msg = "blob exceeds storage.blob_max_size";
		return;
	}
	int w = registry_upload_write(r->up, data, len);
	if (w < 0) { /* the chunk is rolled back at the end; the client reads why once it has sent it */
		r->defer_status = w == -ENOSPC ? 507 : 500;
		r->defer_code = "UNKNOWN";
		r->defer_msg = w == -ENOSPC ? "write blob upload: no space left on device"
					    : "write blob upload: I/O error";
	}
}

static void rollback_chunk(struct req *r)
{
	r->up->offset = r->chunk_start;
	registry_upload_rollback(r->up);
}

static int upload_finish_req(struct req *r, const char *digest)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int rr = registry_upload_finish(&r->reg->uploads, r->up, digest, &err);
	if (rr == 0) {
		r->up = NULL; /* freed by registry_upload_finish */
		return blob_created(r, digest);
	}
	registry_upload_cancel(&r->reg->uploads, r->up);
	r->up = NULL;
	if (rr == -EBADMSG)
		return registry_req_error(r, 400, "DIGEST_INVALID",
					  "provided digest did not match uploaded content", digest);
	return registry_req_store_error(r, rr, "cannot store blob", err);
}

static int upload_end(struct req *r)
{
	if (r->mounted)
		return blob_created(r, r->mounted);
	if (!r->up)
		return registry_req_error(r, 500, "UNKNOWN", "no upload session", NULL);
	if (!r->defer_status && r->range_end >= 0 && r->up->offset != (uint64_t)r->range_end + 1) {
		r->defer_status = 416;
		r->defer_code = "BLOB_UPLOAD_INVALID";
		r->defer_msg = "body shorter than its content range";
	}
	if (r->defer_status) {
		rollback_chunk(r);
		if (r->upload_monolithic) { /* the session was only for this request */
			registry_upload_cancel(&r->reg->uploads, r->up);
			r->up = NULL;
			return registry_req_error(r, r->defer_status, r->defer_code, r->defer_msg, NULL);
		}
		if (r->defer_status == 416)
			return range_invalid(r);
		return registry_req_error(r, r->defer_status, r->defer_code, r->defer_msg, NULL);
	}
	if (r->upload_monolithic || r->method == M_PUT)
		return upload_finish_req(r, registry_req_arg(r, "digest"));
	return upload_status(r, 202);
}

/*
 * The body as it arrives: into the session (BODY_UPLOAD) or dropped, so the
 * connection stays usable. < 0 when the client went away in the middle.
 */
static ssize_t upload_read_body(struct req *r)
{
	char *buf = xmalloc(UPLOAD_READ_MAX);
	ssize_t n;
	while ((n = http_request_body_read(r->hr, buf, UPLOAD_READ_MAX)) > 0) {
		r->bytes_in += (uint64_t)n;
		if (r->body == BODY_UPLOAD)
			upload_data(r, buf, (size_t)n);
	}
	free(buf);
	return n;
}

int registry_handle_upload(struct req *r)
{
	upload_begin(r);
	if (r->responded)
		return 0;
	if (upload_read_body(r) <
	    0) /* what arrived is kept, as for any interrupted PATCH; nobody reads this */
		return registry_req_error(r, 400, "BLOB_UPLOAD_INVALID", "the request body ended early",
					  NULL);
	return upload_end(r);
}
