/*
 * xfer.h - the one libcurl wrapper. Every outgoing HTTP(S) transfer of berth
 * that needs TLS, redirects, proxies or streaming (the daemon's TCP/TLS
 * client, registry sessions and blob downloads, the registry's pull-through
 * cache, ADD <url> in builds) goes through here; nothing else includes
 * <curl/curl.h>. libcurl stays lazily bound (common/lazylib.h): nothing here
 * calls it before the first transfer, escape or handle.
 *
 * A transfer is described by a struct http_xfer_req (what to send, where the
 * answer goes, the transport policy) and run on a struct http_xfer (one
 * reusable curl handle: connections and TLS sessions are kept between
 * transfers of one handle) either blocking (http_xfer_perform) or in a
 * group on one thread (struct http_xfer_multi).
 *
 * Results: any HTTP status is a completed transfer (0, res->status set); a
 * transport failure is -errno with err "METHOD 'URL': <curl's error>" and
 * res->fail/res->reason/res->detail set so callers can word their own message:
 *   -ECONNREFUSED  could not connect (HTTP_XFER_CONNECT)
 *   -ETIMEDOUT     timeout_ms, connect timeout or the low-speed limit hit
 *   -ECANCELED     *cancel became true
 *   -EFBIG         out_max or max_filesize exceeded
 *   -EIO           anything else, and a data/read callback's abort with no errno
 * A data callback returning > 0 stops the transfer quietly: 0, res->stopped.
 */
#ifndef BERTH_HTTP_XFER_H
#define BERTH_HTTP_XFER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"

/* Response body bytes: 0 continue, > 0 stop quietly, < 0 abort with that -errno. */
typedef int (*http_xfer_data_fn)(void *ctx, const char *p, size_t n);
/* One raw response header line with its CRLF (status lines and the blank line too; every response of
 * a redirect chain or a 401/100 exchange). Return 0 to continue, < 0 to abort. */
typedef int (*http_xfer_header_fn)(void *ctx, const char *line, size_t n);
/* Request body: bytes put in buf (<= n), 0 at the end, < 0 abort with that -errno. */
typedef ssize_t (*http_xfer_read_fn)(void *ctx, char *buf, size_t n);

struct http_xfer_req {
	const char *method;         /* NULL: GET. HEAD reads no body. Other methods are sent as given. */
	const char *url;            /* absolute http(s) URL (copied) */
	const char *const *headers; /* NULL-terminated "Name: value" lines (copied); "Name:" drops curl's */
	const char *unix_socket;    /* connect to this unix socket instead of the URL's host */

	/* Request body, one of: a buffer (POST-style, not copied: kept until the transfer ends; a POST
	 * without body or reader sends an empty body), or a reader streaming body_size bytes (-1:
	 * unknown length, chunked). */
	const char *body;
	size_t body_len;
	http_xfer_read_fn read;
	void *read_ctx;
	int64_t body_size;

	/* Response body: to on_data when set, else appended to out (NULL: discarded). out_max > 0 caps
	 * what out may hold (-EFBIG beyond). */
	http_xfer_data_fn on_data;
	void *data_ctx;
	struct strbuf *out;
	size_t out_max;
	http_xfer_header_fn on_header;
	void *header_ctx;
	struct strbuf *resp_headers; /* raw header lines appended, when no on_header */

	/* TLS: files (PEM) or NULL for the system's CA store and no client certificate. */
	const char *ca_file, *cert_file, *key_file;
	bool tls_no_verify; /* neither the peer nor the host name checked */

	/* Timeouts and limits: 0 means libcurl's default (none but the 300 s connect timeout). */
	long connect_timeout_ms, timeout_ms;
	long low_speed_limit, low_speed_time_s; /* abort under limit bytes/s for time s */
	uint64_t max_filesize;                  /* abort when a response announces or sends more */
	const atomic_bool *cancel;              /* checked about once a second and on every callback */

	/* Redirects: followed up to max_redirs (0: not followed). */
	long max_redirs;
	const char *protocols;       /* e.g. "http,https"; NULL: libcurl's default */
	const char *redir_protocols; /* protocols a redirect may go to; NULL: libcurl's default */

	const char *proxy, *noproxy; /* NULL: libcurl's environment rules (http_proxy, no_proxy) */
	const char *user, *password; /* Basic credentials (CURLOPT_USERNAME/PASSWORD) */
	const char *user_agent;
	const char *range;  /* "N-" etc. */
	bool fail_on_error; /* HTTP >= 400 is a failure (-EIO, HTTP_XFER_HTTP) */
	bool want_filetime; /* res->filetime from Last-Modified */
	void *priv;         /* the caller's pointer, http_xfer_priv() */
};

enum http_xfer_fail {
	HTTP_XFER_OK = 0,
	HTTP_XFER_CONNECT,   /* could not connect */
	HTTP_XFER_TIMEOUT,   /* timeout or low-speed limit */
	HTTP_XFER_CANCELLED, /* *cancel */
	HTTP_XFER_TOO_LARGE, /* out_max or max_filesize */
	HTTP_XFER_ABORTED,   /* a callback returned < 0 */
	HTTP_XFER_HTTP,      /* fail_on_error and status >= 400 */
	HTTP_XFER_FAILED,    /* anything else (resolve, TLS, protocol...) */
};

struct http_xfer_res {
	long status;      /* last response's status, 0 when none came */
	int64_t filetime; /* epoch seconds, -1 unknown */
	bool stopped;     /* a data callback returned > 0 */
	enum http_xfer_fail fail;
	int cb_errno;       /* the callback's errno for HTTP_XFER_ABORTED (0: none) */
	const char *reason; /* libcurl's short text for its code ("Couldn't connect to server"), static */
	char detail[256];   /* libcurl's detailed message ("Could not resolve host: x"), else reason */
};

struct http_xfer;
struct http_xfer *http_xfer_new(void); /* never NULL (aborts like xmalloc) */
struct http_xfer *http_xfer_free(struct http_xfer *x);
static inline void http_xfer_freep(struct http_xfer **x)
{
	*x = http_xfer_free(*x);
}
#define _cleanup_http_xfer_ _cleanup_(http_xfer_freep)

/* Run r on x, blocking. res is always filled. */
int http_xfer_perform(struct http_xfer *x, const struct http_xfer_req *r, struct http_xfer_res *res,
		      struct berth_error **err);

/* The status of the response being received (usable in callbacks), 0 before one. */
long http_xfer_status(struct http_xfer *x);
void *http_xfer_priv(struct http_xfer *x);

/* ---- many transfers on one thread ---- */
struct http_xfer_multi;
struct http_xfer_multi *http_xfer_multi_new(void);
/* Remove every transfer first (http_xfer_multi_remove). */
struct http_xfer_multi *http_xfer_multi_free(struct http_xfer_multi *m);
/* Configure x for r and start it in m. x must not be in a multi already. */
int http_xfer_multi_add(struct http_xfer_multi *m, struct http_xfer *x, const struct http_xfer_req *r,
			struct berth_error **err);
/* Take x out of m (finished or not); no-op when not in m. */
void http_xfer_multi_remove(struct http_xfer_multi *m, struct http_xfer *x);
/* Drive the transfers; *ret_running: how many are still running. */
void http_xfer_multi_perform(struct http_xfer_multi *m, int *ret_running);
/* A transfer that finished since the last call (its result in res, err as http_xfer_perform's), or
 * NULL. A finished transfer stays in m until removed. */
struct http_xfer *http_xfer_multi_next(struct http_xfer_multi *m, struct http_xfer_res *res, int *ret_r,
				       struct berth_error **err);
/* Wait for activity, at most timeout_ms, or until http_xfer_multi_wakeup() (any thread). */
void http_xfer_multi_wait(struct http_xfer_multi *m, int timeout_ms);
void http_xfer_multi_wakeup(struct http_xfer_multi *m);

/* Percent-encode everything but RFC 3986's unreserved characters. Caller frees. */
char *http_url_escape(const char *s);

#endif
