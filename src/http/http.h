/*
 * http.h - thin wrappers over libmicrohttpd (server) and libcurl (client).
 *
 * Server: one epoll thread for all socket I/O and a bounded pool of worker
 * threads for the handlers (which may block: waits, pulls; streams get a
 * pump thread each, hijacked attach/exec streams a thread each, deferred
 * requests none), listening on a unix socket or an fd the caller made, plus
 * TCP listeners (tls.c) that may terminate TLS with client certificates and
 * hand the plain stream to the server. Limits: struct http_limits. A request
 * is handed to the handler once its whole body is in memory (bounded by
 * max_body; larger bodies get 413 without reaching the handler), or at once
 * on body_stream routes, whose handler reads the body as it arrives
 * (http_request_body_read). The handler answers with exactly one
 * http_respond_*() call; if it does not, the server sends 500. Every
 * allocation tied to a request is freed when the request completes (strict
 * cleanup, no arena).
 *
 * Client: blocking requests over a unix socket (or TCP), body in memory or
 * streamed to a callback, plus a raw "hijack" that upgrades the connection and
 * returns the socket for bidirectional streams (attach/exec).
 */
#ifndef BERTH_HTTP_HTTP_H
#define BERTH_HTTP_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/opttab.h"
#include "common/strbuf.h"

struct http_server;
struct http_request;

/* Default limit on request bodies the server buffers (Docker's create bodies are small). */
#define HTTP_DEFAULT_MAX_BODY (4u << 20)

typedef void (*http_handler_fn)(struct http_request *req, void *userdata);

/* Defaults of struct http_limits (docs/engine.md "Limits"). */
#define HTTP_DEFAULT_MAX_CONNECTIONS 4096u
#define HTTP_DEFAULT_WORKERS         32u
#define HTTP_DEFAULT_HEADER_TIMEOUT  30u
#define HTTP_DEFAULT_IDLE_TIMEOUT    300u
#define HTTP_DEFAULT_BODY_MIN_RATE   1024u

/* What one server lets its clients hold; 0 members take the defaults above. */
struct http_limits {
	unsigned max_connections;  /* open at once (streams, long polls and idle keep-alives included);
				      beyond: 503 and close */
	unsigned workers;          /* handler threads (requests beyond wait in a queue) */
	unsigned header_timeout_s; /* a request's headers complete within this of the connection's start
				      or the previous answer (idle keep-alive connections close then too) */
	unsigned idle_timeout_s;   /* no byte either way while the server reads or writes */
	unsigned body_min_rate;    /* bytes/s a request body averages after header_timeout_s */
	size_t conn_memory;        /* memory per connection (head, read buffer): 64 KiB; more reads
				      streamed bodies in larger pieces (HTTP_CONN_MEMORY_BULK) */
};
/* conn_memory for servers that take large bodies (the Docker API: docker load, build contexts). */
#define HTTP_CONN_MEMORY_BULK (256u * 1024)
/* Fill 0 members with the defaults. */
void http_limits_defaults(struct http_limits *l);

/*
 * The --http-* flags of every server front end (daemon, berth server) as
 * option table entries (common/opttab.h) over limits (struct http_limits *):
 * a bad value prints "<who>: invalid --http-workers 'x': expected ..." and
 * fails the scan.
 */
#define HTTP_LIMITS_N_OPTS 5
#define HTTP_LIMITS_OPT(name, index, limits, who)                                                \
	{                                                                                        \
		(name), 0, CLI_OPT_ENTRY, (limits), (who), (index), .entry_fn = http_limits_opt, \
								    .has_arg = true              \
	}
#define HTTP_LIMITS_OPTS(limits, who)                               \
	HTTP_LIMITS_OPT("http-max-connections", 0, limits, who),    \
	    HTTP_LIMITS_OPT("http-workers", 1, limits, who),        \
	    HTTP_LIMITS_OPT("http-header-timeout", 2, limits, who), \
	    HTTP_LIMITS_OPT("http-idle-timeout", 3, limits, who),   \
	    HTTP_LIMITS_OPT("http-body-min-rate", 4, limits, who)
#define HTTP_LIMITS_USAGE                                                                            \
	"      --http-max-connections N  open client connections at once, streams and long polls\n"  \
	"                           included; beyond: 503 (default 4096)\n"                          \
	"      --http-workers N     threads running requests; more wait in a queue (default 32)\n"   \
	"      --http-header-timeout SEC  a request's headers must arrive within SEC (default 30)\n" \
	"      --http-idle-timeout SEC  close a connection silent both ways for SEC (default 300)\n" \
	"      --http-body-min-rate B  bytes/s a request body must average after the header\n"       \
	"                           timeout (default 1024)\n"
/* Parse the value of the index-th flag above into l; -EINVAL (err names the flag) when bad. */
int http_limits_parse_opt(struct http_limits *l, int index, const char *value, struct berth_error **err);
/* The CLI_OPT_ENTRY callback of HTTP_LIMITS_OPTS: o->dest the limits, o->min the index, o->key who. */
int http_limits_opt(const struct cli_opt *o, const char *value);

/*
 * A fast path for small, cheap requests on a server's TLS listeners: a connection stays with the TLS
 * event loop (tlsloop.h) while its requests are answered here, on the loop's thread, without
 * libmicrohttpd, a worker or any thread hand-off. Offered: each complete request that fits the fast
 * path's framing (http/quick.h: HTTP/1.1, Content-Length body, no query, nothing pipelined, all within
 * HTTP_QUICK_MAX bytes), with the raw path (no version prefix removed), the connection's peer identity
 * (as http_request_peer(), NULL without one) and its body. Answer by returning true with *ret_status
 * and *ret_body (JSON, malloc'd, taken); return false to leave it to the handler: the connection then
 * goes to libmicrohttpd for good, this request included. Must not block or take long: the loop serves
 * every TLS connection of the listener.
 */
typedef bool (*http_quick_fn)(const char *method, const char *path, const char *peer, const char *body,
			      size_t body_len, unsigned *ret_status, char **ret_body, size_t *ret_len,
			      void *userdata);

struct http_server_opts {
	int listen_fd;   /* a bound, listening socket the server takes over; -1: none (add_connection only) */
	size_t max_body; /* 0: HTTP_DEFAULT_MAX_BODY */
	/* Optional per-request limit by method and path (version prefix removed); 0: max_body. */
	size_t (*body_limit)(const char *method, const char *path, void *userdata);
	/* Optional: true for routes whose handler reads the body as it arrives (http_request_body_read). */
	bool (*body_stream)(const char *method, const char *path, void *userdata);
	/*
	 * Optional: the body (a JSON document, malloc'd; NULL: Docker's) of the errors the
	 * server answers itself (400 bad framing, 413 over the body limit, 500 no answer),
	 * so that they read like the handlers' own (the registry's {"errors":[...]}).
	 */
	char *(*error_body)(unsigned status, const char *message, void *userdata);
	/*
	 * Optional: true for a complete request (buffered body, if any) whose handler
	 * answers at once and never blocks for long (a stat, an open, a small read): it
	 * then runs on the I/O thread that read it, without the handoff to a worker and
	 * back (the registry's manifest GETs and blob HEADs: ~1.5x the request rate).
	 * Such a handler must not defer. Request accessors work in the callback.
	 */
	bool (*run_inline)(struct http_request *req, void *userdata);
	const struct http_limits *limits; /* NULL: defaults */
	http_handler_fn handler;
	void *userdata;
	/* Optional fast path of the TLS listeners (http_quick_fn); NULL: every request goes to handler. */
	http_quick_fn quick;
};

/* Start serving in background threads. On failure listen_fd is closed. */
int http_server_start(const struct http_server_opts *opts, struct http_server **ret,
		      struct berth_error **err);
/*
 * Stop accepting, close every connection (streams see the hangup), wait
 * (bounded) for handlers, streams and deferred requests to end, free.
 * Accepts NULL.
 */
struct http_server *http_server_stop(struct http_server *s);
/* true once the connection limit is reached (or the server stops); extra: connections held elsewhere
 * (by a TLS listener's fast path) that count against it too. */
bool http_server_full(struct http_server *s);
bool http_server_full_with(struct http_server *s, unsigned extra);
/* The server's fast path (http_server_opts.quick) or NULL; its header timeout in ms (idle fast-path
 * connections close after it, as libmicrohttpd's do). */
http_quick_fn http_server_quick(struct http_server *s, void **ret_userdata, unsigned *ret_idle_ms);
/* true once http_server_stop() began: owners of deferred requests answer them now. */
bool http_server_stopping(struct http_server *s);

/*
 * Serve a connected socket (a TCP client, one end of a socketpair) as if it
 * had been accepted by the server; fd is taken over (closed on failure).
 * addr: the peer's address (for logs).
 */
int http_server_add_connection(struct http_server *s, int fd, const struct sockaddr *addr, socklen_t addr_len,
			       struct berth_error **err);

/* ---- TCP and TLS (tls.c) ---- */

/* PEM files; NULL members are not used. */
struct http_tls_files {
	const char *ca, *cert, *key;
};

/* Bind and listen on "host:port", "[v6]:port" or ":port" (every address). */
int http_listen_tcp(const char *addr, struct berth_error **err);
/* Connect (listen_mode false) or bind+listen to such an address; returns the socket. */
int http_tcp_connect_or_listen(const char *addr, bool listen_mode, struct berth_error **err);

/*
 * Accept connections on listen_fd (taken over) in a thread and serve them
 * through srv. tls NULL: plain HTTP. Otherwise TLS is terminated here
 * (OpenSSL, TLS >= 1.2) with tls->cert/key, every connection in that one
 * thread's event loop (tlsloop.h); verify_client: the handshake fails unless
 * the client presents a certificate signed by tls->ca.
 */
struct http_tcp_listener;
int http_tcp_listener_start(struct http_server *srv, int listen_fd, const struct http_tls_files *tls,
			    bool verify_client, struct http_tcp_listener **ret, struct berth_error **err);
/* Stop accepting (established connections end with the server). Accepts NULL. */
struct http_tcp_listener *http_tcp_listener_stop(struct http_tcp_listener *l);

/*
 * Stop accepting on the server's own listen_fd and close it (new clients are
 * refused; established connections go on) so that the owner can wait for its
 * requests in flight before http_server_stop() (graceful shutdown).
 */
void http_server_quiesce(struct http_server *s);

/*
 * Like http_tcp_listener_start() with TLS, for servers where some clients
 * authenticate with certificates and others do not (berth server: SigV4 API
 * clients and mTLS agents on one port): a client certificate is requested;
 * one that does not verify against tls->ca fails the handshake; a client
 * without one is served too. Each request then knows its peer
 * (http_request_peer()).
 */
int http_tcp_listener_start_peer(struct http_server *srv, int listen_fd, const struct http_tls_files *tls,
				 struct http_tcp_listener **ret, struct berth_error **err);

/*
 * The verified client certificate of the request's connection, as
 * "CN sha256:<hex of the DER>", or NULL without one (or on a listener that
 * does not record peers). Valid until the request completes.
 */
const char *http_request_peer(const struct http_request *req);
/* Serve fd like http_server_add_connection(), recording its peer identity (may be NULL). */
int http_server_add_connection_peer(struct http_server *s, int fd, const struct sockaddr *addr,
				    socklen_t addr_len, const char *peer, struct berth_error **err);

/* An SSL_CTX (opaque here) for a server or a client; verify: check the peer against f->ca. */
int http_tls_ctx_new(const struct http_tls_files *f, bool verify, bool server, void **ret,
		     struct berth_error **err);
void http_tls_ctx_free(void *ctx);
/*
 * Client side: TLS handshake on the connected fd (taken over, closed on
 * failure) with host ("name:port", checked against the server certificate
 * when verify), then a relay thread; returns a plain socket whose bytes are
 * the decrypted stream (shutdown(SHUT_WR) on it sends close_notify).
 */
int http_tls_client_wrap(void *ctx, int fd, const char *host, bool verify, struct berth_error **err);

/* Bind and listen on a unix socket at path (replacing a stale one) with the given mode. */
int http_listen_unix(const char *path, mode_t mode, struct berth_error **err);

/* Request accessors: valid until the request completes. */
const char *http_request_method(const struct http_request *req);
/* Path with any "/vX.Y" API version prefix removed, no query string. */
const char *http_request_path(const struct http_request *req);
/* The "X.Y" of the version prefix, or NULL when the request was unversioned. */
const char *http_request_version(const struct http_request *req);
const char *http_request_query(const struct http_request *req, const char *key);
/* Every value of a repeated query parameter ("?t=a&t=b"), in request order, as a
 * NULL-terminated vector the caller frees with strv_free() (never NULL; empty when absent). */
char **http_request_query_all(const struct http_request *req, const char *key);
/* The connection's socket, to watch for the client going away while a handler or a
 * stream callback blocks (poll for POLLHUP); -1 when unknown. Never close or read it. */
int http_request_socket(const struct http_request *req);
const char *http_request_header(const struct http_request *req, const char *key);
const char *http_request_body(const struct http_request *req, size_t *ret_len);
/*
 * The body, piece by piece: blocks until some arrives; 0 at its end,
 * -EFBIG over the route's limit, -ECONNRESET when the client went away.
 * Works for buffered bodies too (reads the buffer).
 */
ssize_t http_request_body_read(struct http_request *req, void *buf, size_t n);
/* true when the request's body is read with http_request_body_read (a body_stream route). */
bool http_request_body_streamed(const struct http_request *req);
/* The client's IP address ("-" when unknown: a unix socket). Valid until the request completes. */
const char *http_request_remote(struct http_request *req);
/*
 * Call fn(req, completed, ctx) once the request is over: answered (or the
 * client gone) and the handler returned. completed: the whole answer was
 * sent. Request accessors still work in fn; it must not answer. For access
 * logs, metrics and in-flight counts that must cover sending a file.
 */
void http_request_on_done(struct http_request *req,
			  void (*fn)(struct http_request *req, bool completed, void *ctx), void *ctx);

/*
 * Answer later without holding a thread (long polls): the handler calls
 * http_request_defer() and returns without answering; the connection then
 * waits, suspended, until the owner calls http_request_resume(), which runs
 * fn(req, ctx) on a worker to answer. Every deferred request must be resumed
 * exactly once, also when the server stops (http_server_stopping()).
 */
void http_request_defer(struct http_request *req);
void http_request_resume(struct http_request *req, http_handler_fn fn, void *ctx);

/* Convenience: query parameter as boolean ("1", "true", "True"); default when absent. */
bool http_query_bool(const struct http_request *req, const char *key, bool def);

/* Responses. Each takes ownership of what it is given. */
void http_respond(struct http_request *req, unsigned status, const char *content_type, char *body,
		  size_t len);
void http_respond_json(struct http_request *req, unsigned status, json_t *body);
void http_respond_empty(struct http_request *req, unsigned status);
/* Docker's error body {"message": "..."}. */
void http_respond_error(struct http_request *req, unsigned status, const char *fmt, ...) _printf_(3, 4);
/* Add a header to the response about to be sent (call before http_respond_*). At most 256. */
void http_response_header(struct http_request *req, const char *key, const char *value);

/*
 * Answer with len bytes of fd from offset, without copying them through
 * memory (sendfile(2) on plain connections); fd is taken over. HEAD requests
 * get the headers (Content-Length: len) only.
 */
void http_respond_fd(struct http_request *req, unsigned status, const char *content_type, int fd,
		     uint64_t offset, uint64_t len);
/*
 * A Range header ("bytes=a-b", "bytes=a-", "bytes=-n"; one range) against a
 * size: 1 with the inclusive [start, end], 0 when h is NULL, -1 when it
 * cannot be satisfied or is malformed.
 */
int http_range_parse(const char *h, uint64_t size, uint64_t *ret_start, uint64_t *ret_end);
/*
 * Answer a file of size bytes honouring the request's Range header: 200 with
 * "Accept-Ranges: bytes", or 206 with Content-Range. An unsatisfiable range
 * returns -ERANGE without answering (fd closed, "Content-Range: bytes * /size"
 * added) so that the caller sends its own 416 body.
 */
int http_respond_fd_range(struct http_request *req, const char *content_type, int fd, uint64_t size);

/*
 * Streaming body (chunked). `read` is called from the connection's thread and
 * may block; it appends to `out` and returns 0 to continue, 1 at the end, or
 * negative on error (the connection is closed). `done` frees ctx.
 */
typedef int (*http_stream_fn)(void *ctx, struct strbuf *out);
void http_respond_stream(struct http_request *req, unsigned status, const char *content_type,
			 http_stream_fn read, void (*done)(void *ctx), void *ctx);

/*
 * Hijack (HTTP upgrade to a raw stream, Docker's attach/exec). Sends
 * "101 UPGRADED" with "Upgrade: tcp" and then calls fn in a thread with the raw
 * socket; bytes the client sent early are in extra. fn may read, write and
 * shutdown() fd but must not close it. `done` frees ctx afterwards.
 */
typedef void (*http_hijack_fn)(void *ctx, int fd, const char *extra, size_t extra_len);
void http_respond_hijack(struct http_request *req, const char *content_type, http_hijack_fn fn,
			 void (*done)(void *ctx), void *ctx);

/*
 * Copy both ways between a client socket and a backend stream until the
 * backend's EOF; extra (bytes the client already sent) goes to the backend
 * first. The client's EOF is forwarded as shutdown(backend, SHUT_WR). Neither
 * fd is closed.
 */
void http_relay(int client, int backend, const char *extra, size_t extra_len);

/* ---- client ---- */

struct http_client;

/* host: "unix:///path", "/path" or "tcp://host:port". */
int http_client_new(const char *host, struct http_client **ret, struct berth_error **err);
/*
 * Speak TLS to a tcp:// host: client certificate f->cert/f->key when given;
 * verify_server: check the server's certificate against f->ca and the host
 * name (docker's --tlsverify); otherwise encrypt only (docker's --tls).
 */
int http_client_set_tls(struct http_client *c, const struct http_tls_files *f, bool verify_server,
			struct berth_error **err);
struct http_client *http_client_free(struct http_client *c);
static inline void http_client_freep(struct http_client **c)
{
	*c = http_client_free(*c);
}
#define _cleanup_http_client_ _cleanup_(http_client_freep)

/* Called with each chunk of a streamed response body; return 0 to continue, non-zero to stop. */
typedef int (*http_body_fn)(void *ctx, const char *data, size_t len);

struct http_client_request {
	const char *method;
	const char *path; /* with query, e.g. "/containers/json?all=1" */
	const char *content_type;
	const char *body;
	size_t body_len;
	int body_fd;          /* >= 0: stream the request body from this fd instead */
	http_body_fn on_body; /* NULL: collect into the response strbuf */
	void *on_body_ctx;
	long timeout_ms;             /* 0: none */
	struct strbuf *resp_headers; /* non-NULL: the response's header lines ("Key: value\r\n") appended */
	const char *const *headers;  /* extra "Key: value" lines, NULL-terminated; may be NULL */
	/* Non-NULL: checked about once a second while the request runs; true aborts it (-ECANCELED). */
	const atomic_bool *cancel;
};

/* Perform a request. *ret_status is the HTTP status; out (may be NULL) gets the body. */
int http_client_do(struct http_client *c, const struct http_client_request *r, long *ret_status,
		   struct strbuf *out, struct berth_error **err);

/*
 * Send method+path with "Connection: Upgrade", "Upgrade: tcp" and the body on a
 * fresh connection, read the response head, and return the connected socket in
 * *ret_fd positioned at the start of the raw stream. *ret_status is the status
 * (101 or 200 for a hijacked stream; otherwise the error body is in out).
 */
int http_client_hijack(struct http_client *c, const char *method, const char *path, const char *body,
		       size_t body_len, long *ret_status, int *ret_fd, struct strbuf *out,
		       struct berth_error **err);

/*
 * Raw requests for callers that must order several requests themselves
 * (docker run: send "wait" before "start", read its answer after the stream):
 * send() writes the request on a fresh connection and returns the socket;
 * read_response() reads status and body (Content-Length or chunked; until EOF
 * otherwise); one_line: a chunked body ends at its first complete line (a wait's
 * answer is one JSON line: no wait for the closing chunk). headers: extra
 * "Key: value\r\n" lines or NULL.
 */
int http_client_send(struct http_client *c, const char *method, const char *path, const char *headers,
		     const char *body, size_t body_len, struct berth_error **err);
int http_client_read_response(int fd, bool one_line, long *ret_status, struct strbuf *out,
			      struct berth_error **err);
/* ... the same in two steps: the head (status; head keeps it for the body), then the body. */
int http_client_read_head(int fd, long *ret_status, struct strbuf *head, struct berth_error **err);
int http_client_read_body(int fd, const char *head, bool one_line, struct strbuf *out,
			  struct berth_error **err);

#endif
