/*
 * server.h - private to src/registry: the running registry and the per-request
 * context shared by server.c (routing, responses, access log) and the
 * handlers-*.c files. The HTTP server is the shared one (http/http.h): each
 * request runs on one of its workers, start to end, in one call.
 *
 * One `struct req` is allocated per request and freed once the request is
 * over (http_request_on_done: the answer sent, files included).
 */
#ifndef BERTH_REGISTRY_SERVER_H
#define BERTH_REGISTRY_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "common/strbuf.h"
#include "http/http.h"
#include "registry/auth.h"
#include "registry/config.h"
#include "registry/route.h"
#include "registry/storage.h"
#include "registry/upload.h"

struct registry_metrics {
	_Atomic uint64_t requests[_ROUTE_MAX][6]; /* by route and status class (1xx..5xx, other) */
	_Atomic uint64_t bytes_in, bytes_out;
	_Atomic uint64_t in_flight;
	_Atomic uint64_t proxy_fetches;
};

struct registry {
	struct registry_config *cfg;
	struct registry_store *store;
	struct upload_table uploads;
	struct registry_auth *auth;
	struct registry_metrics metrics;
	struct http_server *http;
	struct http_tcp_listener *tls; /* TLS: accepts and terminates; plain: the server's own listen_fd */
	uint16_t port;
	pthread_mutex_t drain_lock;
	pthread_cond_t drain_cond;
};

enum req_method { M_OTHER = 0, M_GET, M_HEAD, M_PUT, M_POST, M_PATCH, M_DELETE };

enum body_mode {
	BODY_NONE = 0, /* read and drop any body */
	BODY_UPLOAD,   /* stream into req->up */
};

struct req {
	struct registry *reg;
	struct http_request *hr;
	struct route route;
	enum req_method method;
	const char *method_name;
	const char *url;
	enum body_mode body;
	const char *data; /* a manifest PUT's body (buffered by the server, up to manifest_max) */
	size_t data_len;
	struct upload *up;      /* acquired upload session */
	uint64_t chunk_start;   /* upload offset when this request began */
	int64_t range_end;      /* Content-Range end (inclusive), or -1 */
	bool upload_monolithic; /* POST ?digest=: finish when the body ends */
	const char *mounted;    /* POST ?mount=: the linked digest (the request's query string) */
	bool responded;
	unsigned defer_status; /* an error found while reading the body, answered at its end */
	const char *defer_code;
	const char *defer_msg;
	unsigned status;
	uint64_t bytes_in, bytes_out;
	struct auth_identity id;
	struct timespec start;
};

/*
 * Handlers return 0 once they have answered (every path answers exactly once).
 * Queue a response. body is copied; headers is a NULL-terminated list of name,
 * value pairs (a NULL value skips the pair).
 */
int registry_req_respond(struct req *r, unsigned status, const char *content_type, const void *body,
			 size_t len, const char *const *headers);
/* Answer len bytes of fd from offset (taken over; sendfile). */
int registry_req_respond_fd(struct req *r, unsigned status, const char *content_type, int fd, uint64_t offset,
			    uint64_t len, const char *const *headers);
/* The registry's headers (API version, headers) and bookkeeping before any http_respond_*(). */
void registry_req_prepare(struct req *r, unsigned status, const char *const *headers);
/* The spec's JSON error body: {"errors":[{"code":..,"message":..,"detail":..}]}. detail may be NULL. */
char *registry_error_json(const char *code, const char *message, const char *detail);
int registry_req_error(struct req *r, unsigned status, const char *code, const char *message,
		       const char *detail);
/*
 * A storage failure (r < 0, -errno) as the spec's error: 507 when the disk is full,
 * else 500, code UNKNOWN, message "<what>: <reason>" (the berth error's text when
 * err is set, else strerror), so clients show why.
 */
int registry_req_store_error(struct req *r, int rr, const char *what, const struct berth_error *err);
/* 401 with a WWW-Authenticate challenge for repo/actions (repo may be NULL). */
int registry_req_unauthorized(struct req *r, const char *repo, unsigned actions);

const char *registry_req_header(struct req *r, const char *name);
const char *registry_req_arg(struct req *r, const char *name);

/* Check that the caller may do `actions` on repo; queues 401/403 and returns false otherwise. */
bool registry_req_authorize(struct req *r, const char *repo, unsigned actions, int *ret);

/* Pushes to repo allowed by the embedder (hooks->push_check); queues 404 NAME_UNKNOWN otherwise. */
bool registry_req_push_check(struct req *r, int *ret);
/* The config rule's immutable_tags or the embedder's hooks->tag_immutable. */
bool registry_tags_immutable(struct registry *reg, const char *repo);

struct manifest_info;
/*
 * Store a parsed manifest under the shared gc lock after checking that every
 * blob/manifest it references is in repo, then tell the embedder. -ENOENT
 * with *ret_missing (a digest of m) when one is not; -EEXIST when one of tags
 * (NULL-terminated, may be NULL) is immutable and would move (nothing is
 * written then). The embedder's manifest_pushed hook runs once per tag (once
 * with NULL without tags).
 */
int registry_manifest_commit(struct registry *reg, const char *repo, const char *const *tags,
			     const struct manifest_info *m, const char *digest, const void *data, size_t len,
			     const char **ret_missing, struct berth_error **err);

/* Handlers (uploads read their body themselves, the rest find it in r->data). */
int registry_handle_blob(struct req *r);
int registry_handle_upload(struct req *r);
int registry_handle_manifest(struct req *r);
int registry_handle_tags(struct req *r);
int registry_handle_catalog(struct req *r);
int registry_handle_referrers(struct req *r);
int registry_handle_token(struct req *r);
int registry_handle_metrics(struct req *r);

/* Pull-through cache: fetch a missing manifest/blob from the upstream into the store. */
int registry_proxy_fetch_manifest(struct registry *reg, const char *repo, const char *ref, char *ret_digest,
				  struct berth_error **err);
int registry_proxy_fetch_blob(struct registry *reg, const char *repo, const char *digest,
			      struct berth_error **err);

/* Build "<prefix>?n=<n>&last=<last>" paginated JSON lists (tags, catalog). */
int registry_req_paginated_list(struct req *r, const char *key, const char *name, char **items,
				const char *link_base);

/* Lifecycle (server.c). */
int registry_init(struct registry *reg, struct registry_config *cfg, struct berth_error **err);
void registry_done(struct registry *reg);
int registry_start_http(struct registry *reg, struct berth_error **err);
/* Stop accepting, wait for in-flight requests (at most shutdown_timeout). */
void registry_drain(struct registry *reg);

#endif
