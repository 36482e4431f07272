/*
 * remote.h - private to src/image: a session with one registry repository
 * over the distribution API (http/xfer.h): scheme choice, TLS, credentials,
 * Bearer/Basic auth, and single requests. pull.c and push.c build on it.
 */
#ifndef BERTH_IMAGE_REMOTE_H
#define BERTH_IMAGE_REMOTE_H

#include "common/strbuf.h"
#include "http/xfer.h"
#include "image/store.h"

struct remote {
	struct image_store *s;
	const struct image_remote_opts *o;
	struct image_ref *ref;
	char *host;  /* "registry-1.docker.io", "127.0.0.1:5000" */
	char *base;  /* "http://127.0.0.1:5000" */
	char *scope; /* "repository:library/busybox:pull" */
	char *auth;  /* full "Authorization: ..." header, or NULL */
	char *user, *pass, *identity_token;
	char *ca_file, *client_cert, *client_key;
	bool insecure; /* plain HTTP allowed (loopback or listed) */
};

struct http_req {
	const char *method; /* GET HEAD PUT POST PATCH */
	const char *url;    /* absolute */
	const char *accept;
	const char *content_type;
	const char *content_range;
	/* request body: a buffer, or a byte range of an fd */
	const char *in_buf;
	size_t in_len;
	int in_fd;
	uint64_t in_off, in_size;
	/* response body (GET): kept in body up to body_max bytes (-EFBIG beyond) */
	struct strbuf *body;
	size_t body_max;
	/* response */
	long status;
	char *location, *resp_type, *resp_digest, *www_auth;
	uint64_t in_sent;
};

void image_http_req_done(struct http_req *q);

/* Open a session for ref (normalised) with push or pull scope. Probes /v2/. */
int image_remote_open(struct image_store *s, const struct image_ref *ref, const struct image_remote_opts *o,
		      bool push, struct remote *ret, struct berth_error **err);
void image_remote_done(struct remote *rm);

/* "<base>/v2/<repo>/<kind>/<ref>" */
char *image_remote_url(struct remote *rm, const char *kind, const char *what);

/*
 * The session's transport policy for a GET of url into *ret (TLS files, timeouts, redirects, user
 * agent). hdrs holds n request header lines and has room for n + 2: the session's Authorization and
 * the terminating NULL are added. ret points into hdrs and rm: both outlive the transfer's start.
 */
void image_remote_xfer_req(struct remote *rm, const char *url, const char **hdrs, size_t n,
			   struct http_xfer_req *ret);

/*
 * Perform one request, authenticating on a 401 challenge (once) and retrying.
 * 0 with q->status set for any HTTP status; -errno on transport failures.
 */
int image_remote_do(struct remote *rm, struct http_req *q, struct berth_error **err);

/* Report progress through o's callback, when it has one (o may be NULL). */
void image_remote_emit(const struct image_remote_opts *o, const char *id, const char *status, uint64_t cur,
		       uint64_t total);

/* Error for an unexpected status, with the registry's error message if any. */
int image_remote_status_error(struct http_req *q, const char *what, struct berth_error **err);

#endif
