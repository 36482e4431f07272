/*
 * server.c - HTTP server over libmicrohttpd: a few epoll threads (its thread
 * pool, HTTP_IO_THREADS) do all the socket I/O, each for its share of the
 * connections, a bounded pool of workers runs the handlers.
 *
 * A request whose headers and body have arrived is suspended in MHD and
 * queued for a worker; the handler may block (it runs on its own thread),
 * answers with one http_respond_*() call, and the connection is resumed to
 * send the answer. Streams (logs -f, events, waits) are pumped by a thread
 * of their own into a bounded buffer the epoll thread drains; the connection
 * is suspended while the buffer is empty, so a quiet stream costs no polling
 * and never times out. Hijacked connections (attach/exec) get a thread each.
 * A handler may also defer its answer (http_request_defer): the request then
 * holds no thread at all until its owner resumes it (the cluster server's
 * agent long polls).
 *
 * Limits (struct http_limits): at most max_connections at once (beyond: a
 * 503 and close), headers within header_timeout of the connection's start or
 * of the previous answer, bodies at body_min_rate after that grace (slow
 * loris), and idle_timeout without a byte either way while MHD has the turn.
 * Bodies are buffered up to the route's limit, or read by the handler as
 * they arrive (body_stream routes: http_request_body_read).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/connlimit.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "http/admit.h"
#include "http/http.h"
#include "http/tlsexit.h"

/* Response headers a handler may add (the registry's manifest PUT answers one OCI-Tag per tag). */
#define HTTP_MAX_HEADERS 256
/* A stream's producer runs ahead of the client by at most this much. */
#define STREAM_HIGH      (256u * 1024)
/* A streamed request body is held back (the connection suspended) beyond this. */
#define BODY_IN_MAX      (1u << 20)
/* A buffered body's room is allocated up front from its Content-Length up to this. */
#define BODY_RESERVE_MAX (16u << 20)
/* The largest body of a refused request read (and dropped) to keep the connection. */
#define DRAIN_MAX        (256u * 1024)
/*
 * libmicrohttpd's memory pool per connection (http_limits.conn_memory): request head, read
 * buffer, response head. libmicrohttpd 0.9.75 zeroes the whole pool after every request of a
 * kept-alive connection, so it is a memset per request and resident memory per connection (256 KiB
 * cost a 256 KiB memset per heartbeat and ~0.5 GB at 2,000 agent connections): 64 KiB by default.
 * It also bounds the read size of a streamed body, so the Docker API asks for 256 KiB: at 32 KiB a
 * 300 MB `docker load` took 2.85 s instead of 2.0 s. Larger headers are refused.
 */
#define HTTP_CONN_MEMORY (64u * 1024)
/* Beyond MHD's own count: connections being added while others close. */
#define MHD_LIMIT_SLACK  64
/*
 * libmicrohttpd's I/O threads (its thread pool; a connection stays on one). libmicrohttpd 0.9.75
 * walks every suspended connection of a thread each time one of that thread's connections is
 * resumed, and every answered request is a resume (the handler runs on a worker while its
 * connection is suspended), so N parked long polls cost an N-entry walk per request: spread over
 * the pool, each walk is a fraction of that. Overridable by BERTH_HTTP_IO_THREADS (1..16).
 */
#define HTTP_IO_THREADS  4
/* How often the reaper looks for clients that ended their side of a connection (nudge_half_closed). */
#define HALF_CLOSE_MS    500

struct pending_peer {
	int fd; /* -1: free slot */
	char *peer;
};

/* One connection as the limits see it (MHD's socket context). */
struct conn {
	struct conn *prev, *next;
	int fd;
	char *peer;
	enum conn_phase phase;
	int64_t t0;          /* ms, start of the phase */
	uint64_t bytes;      /* body bytes in this phase */
	int64_t stalled;     /* ms we held the body back */
	int64_t stall_since; /* ms, 0: not stalled */
	bool killed;
	bool upgraded; /* hijacked: busy until it closes */
};

struct http_server {
	struct MHD_Daemon *mhd;
	http_handler_fn handler;
	http_quick_fn quick;
	void *userdata;
	size_t max_body;
	size_t (*body_limit)(const char *method, const char *path, void *userdata);
	bool (*body_stream)(const char *method, const char *path, void *userdata);
	char *(*error_body)(unsigned status, const char *message, void *userdata);
	bool (*run_inline)(struct http_request *req, void *userdata);
	struct http_limits lim;
	struct conn_limits cl;
	int listen_fd;
	struct http_admit *admit; /* our accept loop on listen_fd (admit.c) */
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* a thread ended, a deferred request resolved, stop */
	pthread_cond_t work_cond; /* work queued (workers only) */
	struct conn *conns;
	size_t n_conns;
	/* TLS connections handed over but not yet picked up by libmicrohttpd (grows: the TLS event loop
	 * can complete hundreds of handshakes while libmicrohttpd's thread is busy) */
	struct pending_peer *peers;
	size_t n_peers, cap_peers;
	/* the worker pool */
	struct http_request *q_head, *q_tail;
	size_t n_workers, n_idle;
	/* threads outside the pool (stream pumps, hijacks), deferred requests */
	size_t n_aux, n_deferred;
	bool stopping;
	pthread_t reaper;
	bool reaper_started;
};

struct qval {
	enum MHD_ValueKind kind;
	char *key, *val;
};

struct http_request {
	struct http_server *srv;
	struct MHD_Connection *conn; /* NULL once MHD is done with it */
	struct conn *c;
	int refs; /* MHD's + the current owner's (worker, pump, deferral); under mu */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	char *method; /* a copy: MHD's string goes with the connection, which may end before the request */
	char *path;
	char *version;
	int sock;
	char *peer;
	struct qval *vals; /* headers and query arguments, copied for the workers */
	size_t n_vals;
	/* buffered body */
	struct strbuf body;
	bool too_big;
	bool drain; /* refused before its body: read and drop the body, then answer (keep-alive) */
	size_t limit;
	/* streamed body */
	bool streamed;
	struct strbuf in;
	size_t in_off;
	uint64_t in_total;
	bool in_eof, in_gone, in_suspended;
	bool head_wait;   /* suspended after the headers until the handler reads the body or answers */
	uint64_t dropped; /* body bytes dropped after an answer that came before the body's end */
	/* state */
	bool dispatched; /* a worker has (or had) the handler */
	bool handler_done;
	bool suspended;    /* by us, waiting for the handler or a deferred answer */
	unsigned n_defers; /* http_request_defer() calls so far */
	bool responded;    /* an http_respond_*() happened */
	bool queued;       /* the answer went to MHD */
	bool gone;         /* MHD completed the request */
	unsigned status;
	struct MHD_Response *resp;
	struct stream *stream; /* its pump starts once the answer is queued */
	enum MHD_Result result;
	size_t n_headers;
	char **hdr_key, **hdr_val; /* grown as headers are added */
	/* the peer's address (MHD's, or getpeername() of the socket), formatted on demand */
	struct sockaddr_storage remote;
	socklen_t remote_len;
	char remote_str[INET6_ADDRSTRLEN];
	/* http_request_on_done() */
	void (*on_done)(struct http_request *req, bool completed, void *ctx);
	void *on_done_ctx;
	bool completed_ok; /* MHD finished the answer without an error */
	/* when it reached each step (µs, monotonic; 0: not reached), logged at trace level at its end:
	 * complete and handed off, a worker ran it, answered, the answer went to MHD */
	int64_t t_ready, t_run, t_answered, t_queued;
	bool ran_inline;
	/* queue link and job */
	struct http_request *next;
	http_handler_fn job;
	void *job_ctx;
};

struct stream {
	struct http_server *srv;
	struct MHD_Connection *conn;
	http_stream_fn read;
	void (*done)(void *ctx);
	void *ctx;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int refs;
	struct strbuf buf;
	size_t off;
	int state; /* 0 running, 1 ended, <0 error */
	bool suspended, closed;
};

struct hijack_ctx {
	struct http_server *srv;
	http_hijack_fn fn;
	void (*done)(void *ctx);
	void *ctx;
	/* set when MHD upgrades */
	int sock;
	char *extra;
	size_t extra_len;
	struct MHD_UpgradeResponseHandle *urh;
};

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void conn_phase(struct http_server *s, struct conn *c, enum conn_phase p)
{
	if (!c)
		return;
	pthread_mutex_lock(&s->lock);
	c->phase = c->upgraded ? CONN_PHASE_BUSY : p;
	c->t0 = proc_now_ms();
	c->bytes = 0;
	c->stalled = 0;
	c->stall_since = 0;
	pthread_mutex_unlock(&s->lock);
}

/* ---- threads outside MHD ---- */

static bool spawn(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int r = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return r == 0;
}

static void aux_end(struct http_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->n_aux--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* ---- request accessors ---- */

const char *http_request_method(const struct http_request *req)
{
	return req->method;
}

const char *http_request_path(const struct http_request *req)
{
	return req->path;
}

const char *http_request_version(const struct http_request *req)
{
	return req->version;
}

static const char *lookup(const struct http_request *req, enum MHD_ValueKind kind, const char *key)
{
	for (size_t i = 0; i < req->n_vals; i++)
		if (req->vals[i].kind == kind && (kind == MHD_HEADER_KIND ? !strcasecmp(req->vals[i].key, key)
									  : streq(req->vals[i].key, key)))
			return req->vals[i].val;
	return NULL;
}

const char *http_request_query(const struct http_request *req, const char *key)
{
	return lookup(req, MHD_GET_ARGUMENT_KIND, key);
}

char **http_request_query_all(const struct http_request *req, const char *key)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < req->n_vals && n < 1024;
	     i++) /* MHD bounds the request; this bounds the vector */
		if (req->vals[i].kind == MHD_GET_ARGUMENT_KIND && streq(req->vals[i].key, key)) {
			v = xrealloc(v, (n + 2) * sizeof(char *));
			v[n++] = xstrdup(req->vals[i].val);
			v[n] = NULL;
		}
	return v;
}

const char *http_request_peer(const struct http_request *req)
{
	return req->peer;
}

int http_request_socket(const struct http_request *req)
{
	return req->sock;
}

const char *http_request_header(const struct http_request *req, const char *key)
{
	return lookup(req, MHD_HEADER_KIND, key);
}

const char *http_request_body(const struct http_request *req, size_t *ret_len)
{
	if (ret_len)
		*ret_len = req->body.len;
	return req->body.buf;
}

bool http_request_body_streamed(const struct http_request *req)
{
	return req->streamed;
}

static void resume_locked(struct http_request *req)
{
	if ((req->suspended || req->in_suspended) && req->conn) {
		req->suspended = req->in_suspended = false;
		MHD_resume_connection(req->conn);
	}
}

ssize_t http_request_body_read(struct http_request *req, void *buf, size_t n)
{
	if (!req->streamed) {
		size_t left = req->body.len - req->in_off;
		size_t k = MIN(n, left);
		memcpy(buf, req->body.buf + req->in_off, k);
		req->in_off += k;
		return (ssize_t)k;
	}
	pthread_mutex_lock(&req->mu);
	if (req->head_wait && req->suspended && req->conn) { /* the handler wants the body: let it come */
		req->suspended = false;
		MHD_resume_connection(req->conn);
	}
	while (req->in_off == req->in.len && !req->in_eof && !req->in_gone)
		pthread_cond_wait(&req->cond, &req->mu);
	ssize_t r;
	if (req->in_off < req->in.len) {
		size_t k = MIN(n, req->in.len - req->in_off);
		memcpy(buf, req->in.buf + req->in_off, k);
		req->in_off += k;
		if (req->in_off == req->in.len) {
			strbuf_reset(&req->in);
			req->in_off = 0;
		}
		r = (ssize_t)k;
		/* room again: let MHD hand us the rest */
		if (req->in_suspended && req->in.len < BODY_IN_MAX / 2 && req->conn) {
			req->in_suspended = false;
			struct conn *c = req->c;
			if (c) {
				pthread_mutex_lock(&req->srv->lock);
				if (c->stall_since) {
					c->stalled += proc_now_ms() - c->stall_since;
					c->stall_since = 0;
				}
				pthread_mutex_unlock(&req->srv->lock);
			}
			if (!req->suspended)
				MHD_resume_connection(req->conn);
		}
	} else if (req->in_gone) {
		r = req->too_big ? -EFBIG : -ECONNRESET;
	} else {
		r = 0;
	}
	pthread_mutex_unlock(&req->mu);
	return r;
}

bool http_query_bool(const struct http_request *req, const char *key, bool def)
{
	const char *v = http_request_query(req, key);
	if (!v)
		return def;
	if (*v == '\0')
		return true; /* "?stream" */
	return streq(v, "1") || !strcasecmp(v, "true") || streq(v, "yes");
}

void http_response_header(struct http_request *req, const char *key, const char *value)
{
	if (req->n_headers >= HTTP_MAX_HEADERS)
		return;
	if (req->n_headers % 8 == 0) { /* room for 8 more: one realloc per 8 headers */
		req->hdr_key = xrealloc(req->hdr_key, (req->n_headers + 8) * sizeof(char *));
		req->hdr_val = xrealloc(req->hdr_val, (req->n_headers + 8) * sizeof(char *));
	}
	req->hdr_key[req->n_headers] = xstrdup(key);
	req->hdr_val[req->n_headers] = xstrdup(value);
	req->n_headers++;
}

/* ---- responses: prepared by the handler's thread, queued by MHD's ---- */

static void prepare(struct http_request *req, unsigned status, struct MHD_Response *resp, const char *ctype)
{
	if (resp) {
		if (ctype)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
		MHD_add_response_header(resp, "Server", "berth/" BERTH_VERSION);
		for (size_t i = 0; i < req->n_headers; i++)
			MHD_add_response_header(resp, req->hdr_key[i], req->hdr_val[i]);
	}
	pthread_mutex_lock(&req->mu);
	req->status = status;
	req->resp = resp;
	req->responded = true;
	req->t_answered = mono_us();
	pthread_mutex_unlock(&req->mu);
}

void http_respond(struct http_request *req, unsigned status, const char *content_type, char *body, size_t len)
{
	if (req->responded) {
		free(body);
		return;
	}
	struct MHD_Response *resp;
	if (body)
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	else
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!resp)
		free(body);
	prepare(req, status, resp, content_type);
}

void http_respond_json(struct http_request *req, unsigned status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!s) {
		http_respond_error(req, 500, "encode response: out of memory");
		return;
	}
	size_t n = strlen(s);
	char *t = xrealloc(s, n + 2);
	t[n] = '\n';
	t[n + 1] = '\0';
	http_respond(req, status, "application/json", t, n + 1);
}

void http_respond_empty(struct http_request *req, unsigned status)
{
	http_respond(req, status, NULL, NULL, 0);
}

void http_respond_error(struct http_request *req, unsigned status, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	http_respond_json(req, status, json_pack("{s:s}", "message", sb.buf));
	strbuf_release(&sb);
}

/* An error the wrapper itself answers (framing, limits, a handler without an answer): in the
 * server's error format (http_server_opts.error_body), Docker's by default. */
static void server_error(struct http_request *req, unsigned status, const char *fmt, ...) _printf_(3, 4);
static void server_error(struct http_request *req, unsigned status, const char *fmt, ...)
{
	va_list ap;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	char *body = req->srv->error_body ? req->srv->error_body(status, sb.buf, req->srv->userdata) : NULL;
	if (body)
		http_respond(req, status, "application/json", body, strlen(body));
	else
		http_respond_error(req, status, "%s", sb.buf);
}

/* ---- file responses ---- */

void http_respond_fd(struct http_request *req, unsigned status, const char *content_type, int fd,
		     uint64_t offset, uint64_t len)
{
	if (req->responded) {
		safe_close(fd);
		return;
	}
	/* libmicrohttpd sends it with sendfile(2) on a plain socket (pread otherwise) and closes fd */
	struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
	if (!resp) {
		safe_close(fd);
		server_error(req, 500, "cannot send file: out of memory");
		return;
	}
	prepare(req, status, resp, content_type);
}

int http_range_parse(const char *h, uint64_t size, uint64_t *ret_start, uint64_t *ret_end)
{
	if (!h)
		return 0;
	if (!startswith(h, "bytes="))
		return -1;
	const char *spec = h + 6;
	const char *dash = strchr(spec, '-');
	if (!dash || strchr(spec, ','))
		return -1;
	_cleanup_free_ char *a = xstrndup(spec, (size_t)(dash - spec));
	const char *b = dash + 1;
	uint64_t x, y;
	if (!*a) {
		if (util_parse_uint64(b, &y) < 0 || y == 0 || size == 0)
			return -1;
		*ret_start = y >= size ? 0 : size - y;
		*ret_end = size - 1;
		return 1;
	}
	if (util_parse_uint64(a, &x) < 0 || x >= size)
		return -1;
	if (!*b)
		y = size - 1;
	else if (util_parse_uint64(b, &y) < 0 || y < x)
		return -1;
	*ret_start = x;
	*ret_end = MIN(y, size - 1);
	return 1;
}

int http_respond_fd_range(struct http_request *req, const char *content_type, int fd, uint64_t size)
{
	uint64_t start = 0, end = size ? size - 1 : 0;
	int r = http_range_parse(http_request_header(req, "Range"), size, &start, &end);
	char crange[96];
	if (r < 0) {
		safe_close(fd);
		snprintf(crange, sizeof(crange), "bytes */%llu", (unsigned long long)size);
		http_response_header(req, "Content-Range", crange);
		return -ERANGE;
	}
	http_response_header(req, "Accept-Ranges", "bytes");
	if (r == 0) {
		http_respond_fd(req, 200, content_type, fd, 0, size);
		return 0;
	}
	snprintf(crange, sizeof(crange), "bytes %llu-%llu/%llu", (unsigned long long)start,
		 (unsigned long long)end, (unsigned long long)size);
	http_response_header(req, "Content-Range", crange);
	http_respond_fd(req, 206, content_type, fd, start, end - start + 1);
	return 0;
}

/* ---- request lifetime ---- */

void http_request_on_done(struct http_request *req,
			  void (*fn)(struct http_request *req, bool completed, void *ctx), void *ctx)
{
	pthread_mutex_lock(&req->mu);
	req->on_done = fn;
	req->on_done_ctx = ctx;
	pthread_mutex_unlock(&req->mu);
}

const char *http_request_remote(struct http_request *req)
{
	if (req->remote_str[0])
		return req->remote_str;
	if (!req->remote_len && req->sock >= 0) {
		socklen_t n = sizeof(req->remote);
		if (getpeername(req->sock, (struct sockaddr *)&req->remote, &n) == 0)
			req->remote_len = n;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&req->remote;
	const void *a = NULL;
	if (req->remote_len && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (req->remote_len && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (!a || !inet_ntop(sa->sa_family, a, req->remote_str, sizeof(req->remote_str)))
		memcpy(req->remote_str, "-", 2);
	return req->remote_str;
}

/* ---- streams ---- */

static void stream_unref(struct stream *st)
{
	pthread_mutex_lock(&st->mu);
	bool last = --st->refs == 0;
	pthread_mutex_unlock(&st->mu);
	if (!last)
		return;
	if (st->done)
		st->done(st->ctx);
	strbuf_release(&st->buf);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cond);
	free(st);
}

/* MHD's thread: hand out what the pump produced; suspend while there is nothing. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	(void)pos;
	pthread_mutex_lock(&st->mu);
	ssize_t r;
	if (st->off < st->buf.len) {
		size_t n = MIN(max, st->buf.len - st->off);
		memcpy(buf, st->buf.buf + st->off, n);
		st->off += n;
		if (st->off == st->buf.len) {
			strbuf_reset(&st->buf);
			st->off = 0;
		}
		pthread_cond_broadcast(&st->cond);
		r = (ssize_t)n;
	} else if (st->state != 0) {
		r = st->state > 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
	} else {
		MHD_suspend_connection(st->conn);
		st->suspended = true;
		r = 0;
	}
	pthread_mutex_unlock(&st->mu);
	return r;
}

static void stream_closed(void *cls)
{
	struct stream *st = cls;
	pthread_mutex_lock(&st->mu);
	st->closed = true;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->mu);
	stream_unref(st);
}

static void *stream_pump(void *arg)
{
	struct stream *st = arg;
	struct strbuf chunk = STRBUF_INIT;
	for (;;) {
		pthread_mutex_lock(&st->mu);
		while (st->buf.len - st->off >= STREAM_HIGH && !st->closed)
			pthread_cond_wait(&st->cond, &st->mu);
		bool closed = st->closed;
		pthread_mutex_unlock(&st->mu);
		if (closed)
			break;
		strbuf_reset(&chunk);
		int r = st->read(st->ctx, &chunk);
		pthread_mutex_lock(&st->mu);
		strbuf_add(&st->buf, chunk.buf, chunk.len);
		if (r != 0)
			st->state = r > 0 ? 1 : -1;
		if (st->suspended && !st->closed && (chunk.len || r != 0)) {
			st->suspended = false;
			MHD_resume_connection(st->conn);
		}
		pthread_mutex_unlock(&st->mu);
		if (r != 0)
			break;
	}
	strbuf_release(&chunk);
	struct http_server *s = st->srv;
	stream_unref(st);
	http_tls_thread_forget();
	aux_end(s);
	return NULL;
}

void http_respond_stream(struct http_request *req, unsigned status, const char *content_type,
			 http_stream_fn read, void (*done)(void *ctx), void *ctx)
{
	if (req->responded) {
		if (done)
			done(ctx);
		return;
	}
	struct stream *st = xcalloc(1, sizeof(*st));
	st->srv = req->srv;
	st->read = read;
	st->done = done;
	st->ctx = ctx;
	st->refs = 1; /* the response's; the pump takes its own when it starts */
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cond, NULL);
	strbuf_init(&st->buf, 0);
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, st, stream_closed);
	if (!resp) {
		stream_unref(st);
		prepare(req, status, NULL, NULL);
		return;
	}
	req->stream = st;
	prepare(req, status, resp, content_type);
}

/* ---- hijack ---- */

static void *hijack_main(void *arg)
{
	struct hijack_ctx *h = arg;
	/* MHD's sockets are non-blocking; the handler gets plain blocking I/O. */
	int fl = fcntl(h->sock, F_GETFL);
	if (fl >= 0)
		(void)fcntl(h->sock, F_SETFL, fl & ~O_NONBLOCK);
	h->fn(h->ctx, h->sock, h->extra, h->extra_len);
	MHD_upgrade_action(h->urh, MHD_UPGRADE_ACTION_CLOSE);
	if (h->done)
		h->done(h->ctx);
	struct http_server *s = h->srv;
	free(h->extra);
	free(h);
	http_tls_thread_forget();
	aux_end(s);
	return NULL;
}

/* MHD's thread, once the 101 is out: the stream gets a thread of its own. */
static void hijack_run(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
		       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct hijack_ctx *h = cls;
	struct http_server *s = h->srv;
	(void)con_cls;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn *c = ci ? ci->socket_context : NULL;
	if (c) {
		pthread_mutex_lock(&s->lock);
		c->upgraded = true;
		c->phase = CONN_PHASE_BUSY;
		pthread_mutex_unlock(&s->lock);
	}
	h->sock = sock;
	if (extra_len) {
		h->extra = xmalloc(extra_len);
		memcpy(h->extra, extra, extra_len);
	}
	h->extra_len = extra_len;
	h->urh = urh;
	pthread_mutex_lock(&s->lock);
	s->n_aux++;
	pthread_mutex_unlock(&s->lock);
	if (!spawn(hijack_main, h)) {
		log_fields(LOG_LEVEL_WARN, "cannot start a thread for a hijacked stream", NULL);
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		if (h->done)
			h->done(h->ctx);
		free(h->extra);
		free(h);
		aux_end(s);
	}
}

void http_respond_hijack(struct http_request *req, const char *content_type, http_hijack_fn fn,
			 void (*done)(void *ctx), void *ctx)
{
	if (req->responded) {
		if (done)
			done(ctx);
		return;
	}
	struct hijack_ctx *h = xcalloc(1, sizeof(*h));
	h->srv = req->srv;
	h->fn = fn;
	h->done = done;
	h->ctx = ctx;
	struct MHD_Response *resp = MHD_create_response_for_upgrade(hijack_run, h);
	if (!resp) {
		if (done)
			done(ctx);
		free(h);
		prepare(req, 500, NULL, NULL);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "tcp");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	prepare(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp, content_type);
}

/* ---- requests and the worker pool ---- */

static void request_unref(struct http_request *req)
{
	if (!req)
		return;
	pthread_mutex_lock(&req->mu);
	bool last = --req->refs == 0;
	pthread_mutex_unlock(&req->mu);
	if (!last)
		return;
	if (req->on_done)
		req->on_done(req, req->completed_ok, req->on_done_ctx);
	if (req->resp)
		MHD_destroy_response(req->resp);
	if (req->stream) /* prepared but never queued */
		stream_unref(req->stream);
	free(req->method);
	free(req->path);
	free(req->version);
	free(req->peer);
	for (size_t i = 0; i < req->n_vals; i++) {
		free(req->vals[i].key);
		free(req->vals[i].val);
	}
	free(req->vals);
	strbuf_release(&req->body);
	strbuf_release(&req->in);
	for (size_t i = 0; i < req->n_headers; i++) {
		free(req->hdr_key[i]);
		free(req->hdr_val[i]);
	}
	free(req->hdr_key);
	free(req->hdr_val);
	pthread_mutex_destroy(&req->mu);
	pthread_cond_destroy(&req->cond);
	free(req);
}

static void run_job(struct http_request *req)
{
	pthread_mutex_lock(&req->mu);
	http_handler_fn fn = req->job;
	void *ctx = req->job_ctx;
	unsigned d0 = req->n_defers;
	if (!req->t_run)
		req->t_run = mono_us();
	pthread_mutex_unlock(&req->mu);
	fn(req, ctx);
	pthread_mutex_lock(&req->mu);
	/* the handler deferred: its owner has the request now (and may have resumed it already) */
	bool deferred = req->n_defers != d0;
	pthread_mutex_unlock(&req->mu);
	if (!deferred) {
		if (!req->responded)
			server_error(req, 500, "internal error: no response");
		pthread_mutex_lock(&req->mu);
		req->handler_done = true;
		resume_locked(req);
		pthread_mutex_unlock(&req->mu);
	}
	request_unref(req);
}

static void *worker_main(void *arg)
{
	struct http_server *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->q_head && !(s->stopping && s->n_deferred == 0)) {
			s->n_idle++;
			pthread_cond_wait(&s->work_cond, &s->lock);
			s->n_idle--;
		}
		struct http_request *req = s->q_head;
		if (!req)
			break;
		s->q_head = req->next;
		if (!s->q_head)
			s->q_tail = NULL;
		req->next = NULL;
		pthread_mutex_unlock(&s->lock);
		run_job(req);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	http_tls_thread_forget(); /* the server's stop, then the process's exit, may follow the count at once
				   */
	pthread_mutex_lock(&s->lock);
	s->n_workers--;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Queue fn(req, ctx) for a worker; the caller's reference on req goes with it. */
static void enqueue(struct http_server *s, struct http_request *req, http_handler_fn fn, void *ctx)
{
	req->job = fn;
	req->job_ctx = ctx;
	pthread_mutex_lock(&s->lock);
	if (s->q_tail)
		s->q_tail->next = req;
	else
		s->q_head = req;
	s->q_tail = req;
	bool grow = s->n_idle == 0 && s->n_workers < s->lim.workers;
	if (grow)
		s->n_workers++;
	pthread_cond_signal(&s->work_cond);
	pthread_mutex_unlock(&s->lock);
	if (grow && !spawn(worker_main, s)) {
		pthread_mutex_lock(&s->lock);
		s->n_workers--;
		pthread_mutex_unlock(&s->lock);
		log_fields(LOG_LEVEL_WARN, "cannot start an http worker thread", NULL);
	}
}

static void dispatch(struct http_request *req)
{
	req->refs++; /* the worker's; called with req->mu held */
	req->dispatched = true;
	req->t_ready = mono_us();
	enqueue(req->srv, req, req->srv->handler, req->srv->userdata);
}

void http_request_defer(struct http_request *req)
{
	struct http_server *s = req->srv;
	pthread_mutex_lock(&req->mu);
	req->n_defers++;
	req->refs++; /* the owner's until it resumes the request */
	pthread_mutex_unlock(&req->mu);
	pthread_mutex_lock(&s->lock);
	s->n_deferred++;
	pthread_mutex_unlock(&s->lock);
}

void http_request_resume(struct http_request *req, http_handler_fn fn, void *ctx)
{
	struct http_server *s = req->srv;
	enqueue(s, req, fn, ctx);
	pthread_mutex_lock(&s->lock);
	s->n_deferred--;
	pthread_cond_broadcast(&s->cond);
	pthread_cond_broadcast(&s->work_cond);
	pthread_mutex_unlock(&s->lock);
}

bool http_server_stopping(struct http_server *s)
{
	pthread_mutex_lock(&s->lock);
	bool r = s->stopping;
	pthread_mutex_unlock(&s->lock);
	return r;
}

/* MHD's thread, req->mu held: give the prepared answer to MHD. */
static enum MHD_Result queue_now(struct http_request *req)
{
	struct http_server *s = req->srv;
	req->queued = true;
	req->t_queued = mono_us();
	if (!req->resp)
		return req->result = MHD_NO;
	struct stream *st = req->stream;
	req->stream = NULL;
	if (st)
		st->conn = req->conn;
	req->result = MHD_queue_response(req->conn, req->status, req->resp);
	MHD_destroy_response(req->resp);
	req->resp = NULL;
	if (st) {
		/* the pump's reference; the response holds the other until MHD frees it */
		pthread_mutex_lock(&st->mu);
		st->refs++;
		pthread_mutex_unlock(&st->mu);
		pthread_mutex_lock(&s->lock);
		s->n_aux++;
		pthread_mutex_unlock(&s->lock);
		if (!spawn(stream_pump, st)) {
			pthread_mutex_lock(&st->mu);
			st->state = -1;
			pthread_mutex_unlock(&st->mu);
			stream_unref(st);
			aux_end(s);
		}
	}
	return req->result;
}

/* Split "/v1.41/containers/json" into version "1.41" and path "/containers/json". */
static void split_version(const char *url, char **ret_version, char **ret_path)
{
	*ret_version = NULL;
	if (url[0] == '/' && url[1] == 'v') {
		const char *p = url + 2;
		size_t n = strspn(p, "0123456789.");
		if (n > 0 && (p[n] == '/' || p[n] == '\0') && strchr(p, '.') && strchr(p, '.') < p + n) {
			*ret_version = xstrndup(p, n);
			url = p + n;
		}
	}
	*ret_path = xstrdup(*url ? url : "/");
}

/* con_cls markers set by on_uri: the raw request-target encodes a NUL byte; it holds whitespace or a
 * control byte (libmicrohttpd takes "GET /a b HTTP/1.1" for the target "/a b"; Go answers 400). */
static char bad_target, spaced_target;

/* A span in µs between two steps ("-" when either was not reached). */
static void span(char *buf, size_t n, int64_t from, int64_t to)
{
	if (from && to >= from)
		snprintf(buf, n, "%lld", (long long)(to - from));
	else
		snprintf(buf, n, "-");
}

/*
 * Where a request's time went (trace level): queue-us from complete to a worker running it (the
 * handoff; 0 inline), handler-us until it answered, resume-us until MHD's thread took the answer
 * (the handoff back), send-us until the answer was out (a stream's whole life).
 */
static void log_timing(struct http_request *req, bool ok)
{
	char st[8], q[24], h[24], r[24], sd[24];
	pthread_mutex_lock(&req->mu);
	snprintf(st, sizeof(st), "%u", req->status);
	span(q, sizeof(q), req->t_ready, req->t_run);
	span(h, sizeof(h), req->t_run, req->t_answered);
	span(r, sizeof(r), req->t_answered, req->t_queued);
	span(sd, sizeof(sd), req->t_queued, mono_us());
	bool in = req->ran_inline;
	pthread_mutex_unlock(&req->mu);
	log_fields(LOG_LEVEL_TRACE, "http: request", "method", req->method, "path", req->path, "status", st,
		   "inline", in ? "1" : "0", "queue-us", q, "handler-us", h, "resume-us", r, "send-us", sd,
		   "completed", ok ? "1" : "0", NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_request *req = *con_cls;
	(void)conn;
	*con_cls = NULL;
	if (!req || req == (void *)&bad_target || req == (void *)&spaced_target)
		return;
	if (log_enabled(LOG_LEVEL_TRACE))
		log_timing(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	pthread_mutex_lock(&req->mu);
	req->completed_ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
	req->gone = true;
	req->conn = NULL;
	if (req->streamed && !req->in_eof)
		req->in_gone = true; /* the client went away in the middle of the body */
	pthread_cond_broadcast(&req->cond);
	conn_phase(s, req->c, CONN_PHASE_HEAD); /* keep-alive: the next request's headers */
	req->c = NULL;
	pthread_mutex_unlock(&req->mu);
	request_unref(req);
}

static enum MHD_Result collect_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct http_request *req = cls;
	if (!key)
		return MHD_YES;
	if ((req->n_vals & (req->n_vals - 1)) == 0) /* 0, 1, 2, 4, 8...: double the room */
		req->vals = xrealloc(req->vals, (req->n_vals ? 2 * req->n_vals : 1) * sizeof(*req->vals));
	req->vals[req->n_vals++] = (struct qval){ kind, xstrdup(key), xstrdup(value ? value : "") };
	return MHD_YES;
}

static struct http_request *request_new(struct http_server *srv, struct MHD_Connection *conn, const char *url,
					const char *method)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	req->conn = conn;
	req->srv = srv;
	req->method = xstrdup(method);
	req->refs = 1; /* MHD's, until on_completed */
	req->sock = -1;
	pthread_mutex_init(&req->mu, NULL);
	pthread_cond_init(&req->cond, NULL);
	strbuf_init(&req->body, 0);
	strbuf_init(&req->in, 0);
	split_version(url, &req->version, &req->path);
	MHD_get_connection_values(conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, collect_value, req);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	req->c = ci ? ci->socket_context : NULL;
	if (req->c && req->c->peer)
		req->peer = xstrdup(req->c->peer);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci)
		req->sock = ci->connect_fd;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr &&
	    (ci->client_addr->sa_family == AF_INET || ci->client_addr->sa_family == AF_INET6)) {
		req->remote_len = ci->client_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
									: sizeof(struct sockaddr_in6);
		memcpy(&req->remote, ci->client_addr, req->remote_len);
	}
	req->limit = srv->max_body;
	if (srv->body_limit) {
		size_t l = srv->body_limit(method, req->path, srv->userdata);
		if (l)
			req->limit = l;
	}
	req->streamed = srv->body_stream && srv->body_stream(method, req->path, srv->userdata);
	const char *cl = lookup(req, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n;
	if (cl && util_parse_uint64(cl, &n) == 0 && n > req->limit)
		req->too_big = true;
	else if (cl && !req->streamed && util_parse_uint64(cl, &n) == 0 && n > 0)
		/* once, not a realloc (a copy) per doubling; capped: a client announcing a large body
		 * gets the rest as it sends it */
		strbuf_grow(&req->body, (size_t)MIN(n, (uint64_t)BODY_RESERVE_MAX));
	return req;
}

/* Called with the raw request-target before MHD decodes it; the result becomes con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls, (void)conn;
	if (util_http_target_check(uri) < 0)
		return &bad_target;
	for (const unsigned char *p = (const unsigned char *)uri; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return &spaced_target;
	return NULL;
}

/* What the head's fields say about its framing and form (count_framing). */
struct framing {
	size_t n_cl;
	const char *cl[2];
	size_t n_te;
	const char *te;
	size_t n_host;
	const char *expect;
	bool bad_name;  /* a field name that is not a token: "Name : v", a leading space (obs-fold) */
	bool bad_value; /* a control character in a value (CR, DEL, ...; HTAB is fine) */
	bool folded;    /* a framing field name with more glued on: libmicrohttpd's obs-fold */
};

static bool field_name_ok(const char *k)
{
	if (!*k)
		return false;
	for (const unsigned char *p = (const unsigned char *)k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *p)))
			return false;
	return true;
}

static bool field_value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if ((*p < ' ' && *p != '\t') || *p == 0x7f)
			return false;
	return true;
}

/* A framing field's name followed by more (libmicrohttpd glues an obs-fold's text to the name). */
static bool glued_to(const char *key, const char *name)
{
	size_t n = strlen(name);
	return !strncasecmp(key, name, n) && key[n] != '\0';
}

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;
	(void)kind;
	if (!key)
		return MHD_YES;
	if (!field_name_ok(key))
		f->bad_name = true;
	if (value && !field_value_ok(value))
		f->bad_value = true;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		if (f->n_cl < 2)
			f->cl[f->n_cl] = value;
		f->n_cl++;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->te = value;
		f->n_te++;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_HOST)) {
		f->n_host++;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_EXPECT)) {
		f->expect = value;
	} else if (glued_to(key, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
		   glued_to(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->folded = true;
	}
	return MHD_YES;
}

/* A body announced by Content-Length, not empty and small enough to read and drop before an
 * answer (DRAIN_MAX): the client may still be sending it, and a close with unread data would
 * make its read of the answer fail. */
static bool small_announced_body(struct http_request *req)
{
	const char *cl = lookup(req, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n = 0;
	return cl && util_parse_uint64(cl, &n) == 0 && n > 0 && n <= DRAIN_MAX;
}

/*
 * What the wrapper refuses for every server before a handler runs (RFC 9112, as Go's net/http does:
 * dockerd and Distribution are built on it); status 0 when fine. Every refusal here closes the
 * connection unread: a request whose framing is in doubt says nothing reliable about where the next
 * one starts (request smuggling).
 */
struct refusal {
	unsigned status;
	const char *why;
};

/* The one transfer coding we decode: "chunked" alone (libmicrohttpd reads any other as no body). */
static struct refusal transfer_coding_error(const struct framing *f, const char *version)
{
	if (f->n_te == 0)
		return (struct refusal){ 0, NULL };
	if (version && !strcmp(version, MHD_HTTP_VERSION_1_0))
		/* RFC 9112 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing */
		return (struct refusal){ 400, "invalid request: Transfer-Encoding in an HTTP/1.0 request" };
	const char *v = f->te ? f->te : "";
	size_t n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (f->n_te == 1 && n == 7 && !strncasecmp(v, "chunked", 7))
		return (struct refusal){ 0, NULL };
	/* chunked not last: the body's end cannot be known (RFC 9112 6.3) */
	bool chunked_last = n >= 7 && !strncasecmp(v + n - 7, "chunked", 7) &&
			    (n == 7 || v[n - 8] == ',' || v[n - 8] == ' ' || v[n - 8] == '\t');
	if (!chunked_last || f->n_te > 1)
		return (struct refusal){ 400, "invalid request: Transfer-Encoding other than chunked alone" };
	return (struct refusal){ 501, "unsupported transfer encoding" };
}

static struct refusal framing_error(struct MHD_Connection *conn, const char *version, const void *target)
{
	if (target == &spaced_target)
		return (struct refusal){ 400, "invalid request: whitespace or a control character in the "
					      "request-target" };
	if (target == &bad_target)
		return (struct refusal){ 400,
					 "invalid request: the path or query contains a NUL byte (%00)" };
	struct framing f = { 0 };
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	if (f.bad_name)
		return (struct refusal){ 400, "invalid request: malformed header field name" };
	if (f.bad_value)
		return (struct refusal){ 400, "invalid request: control character in a header field value" };
	if (f.folded)
		return (struct refusal){ 400, "invalid request: obsolete line folding in a framing header" };
	if (f.n_host > 1)
		return (struct refusal){ 400, "invalid request: more than one Host header" };
	if (f.n_host == 0 && version && !strcmp(version, MHD_HTTP_VERSION_1_1))
		return (struct refusal){ 400, "invalid request: missing required Host header" };
	if (util_http_framing_check(f.n_cl, f.cl[0], f.cl[1], f.n_te > 0) < 0)
		return (struct refusal){ 400, f.n_te
						  ? "invalid request: Content-Length together with "
						    "Transfer-Encoding"
						  : "invalid request: conflicting Content-Length headers" };
	struct refusal te = transfer_coding_error(&f, version);
	if (te.status)
		return te;
	/* the one expectation there is (RFC 9110 10.1.1); Go answers others 417 likewise */
	if (f.expect && strcasecmp(f.expect, "100-continue"))
		return (struct refusal){ 417, "unsupported Expect header" };
	return (struct refusal){ 0, NULL };
}

/* MHD's thread, req->mu held: a body piece of a request whose handler reads it as it comes. */
static void take_streamed(struct http_request *req, const char *data, size_t *size)
{
	struct http_server *s = req->srv;
	size_t n = *size;
	if (req->in_gone) { /* refused (too big): discard */
		*size = 0;
		return;
	}
	if (req->in_total + n > req->limit) {
		req->too_big = req->in_gone = true;
		*size = 0;
		pthread_cond_broadcast(&req->cond);
		return;
	}
	size_t room = req->in.len < BODY_IN_MAX ? BODY_IN_MAX - req->in.len : 0;
	size_t take = MIN(n, room);
	strbuf_add(&req->in, data, take);
	req->in_total += take;
	*size = n - take;
	pthread_cond_broadcast(&req->cond);
	if (*size && !req->in_suspended) {
		MHD_suspend_connection(req->conn);
		req->in_suspended = true;
		if (req->c) {
			pthread_mutex_lock(&s->lock);
			req->c->stall_since = proc_now_ms();
			pthread_mutex_unlock(&s->lock);
		}
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size,
				  void **con_cls)
{
	struct http_server *srv = cls;
	struct http_request *req = *con_cls;
	enum MHD_Result ret = MHD_YES;

	if (!req || req == (void *)&bad_target || req == (void *)&spaced_target) {
		bool nul_target = req == (void *)&bad_target;
		struct refusal bad = framing_error(conn, version, req);
		*con_cls = req = request_new(srv, conn, url, method);
		pthread_mutex_lock(&req->mu);
		conn_phase(srv, req->c, CONN_PHASE_BODY);
		if (bad.status) {
			/*
			 * A small body of a well-framed request is read and dropped before the
			 * answer, as Go's net/http does for up to 256 KiB: a client still sending
			 * it would otherwise meet a closed connection (EPIPE) instead of the
			 * answer. Otherwise the body stays unread and the connection closes.
			 */
			req->drain = nul_target && small_announced_body(req);
			if (!req->drain)
				http_response_header(req, "Connection", "close");
			pthread_mutex_unlock(&req->mu);
			server_error(req, bad.status, "%s", bad.why);
			pthread_mutex_lock(&req->mu);
			if (!req->drain)
				ret = queue_now(req);
		} else if (req->streamed && req->too_big) {
			pthread_mutex_unlock(&req->mu);
			server_error(req, 413, "request body too large (limit %zu bytes)", req->limit);
			pthread_mutex_lock(&req->mu);
			ret = queue_now(req);
		} else if (req->streamed) {
			/*
			 * The handler reads the body as it arrives. libmicrohttpd takes an answer only
			 * before the body or after all of it: until the handler either reads or answers
			 * (a refusal, which then goes out at once and closes), the body waits.
			 */
			dispatch(req);
			MHD_suspend_connection(conn);
			req->suspended = true;
			req->head_wait = true;
		}
		pthread_mutex_unlock(&req->mu);
		return ret;
	}
	pthread_mutex_lock(&req->mu);
	if (*upload_size > 0 && req->c) {
		pthread_mutex_lock(&srv->lock);
		req->c->bytes += *upload_size;
		pthread_mutex_unlock(&srv->lock);
	}
	if (req->head_wait) { /* resumed after the headers: the handler answered or reads the body */
		req->head_wait = false;
		if (req->responded && !req->queued) {
			/*
			 * Answered before the body: a small announced body is read and dropped first
			 * (as for the refusals above), since a connection closed with unread data makes
			 * the client's read of the answer fail (ECONNRESET); a bigger one or one of
			 * unknown size gets the answer at once, and the connection closes.
			 */
			req->drain = small_announced_body(req);
			if (req->drain)
				*upload_size = 0;
			else
				ret = queue_now(req);
		}
	} else if (req->drain) {
		if (*upload_size == 0 && !req->queued)
			ret = queue_now(req); /* the whole body was read */
		*upload_size = 0;
	} else if (req->responded && !req->queued &&
		   (!req->dispatched || req->handler_done || req->streamed)) {
		/* answered in the middle of the body: drop the rest (a little of it) and answer at its end */
		if (*upload_size > 0) {
			req->dropped += *upload_size;
			*upload_size = 0;
			if (req->dropped > DRAIN_MAX)
				ret = MHD_NO;
		} else {
			ret = queue_now(req);
		}
	} else if (*upload_size > 0) {
		if (req->queued) {
			*upload_size = 0;
		} else if (req->streamed) {
			take_streamed(req, upload, upload_size);
		} else {
			if (!req->too_big && req->body.len + *upload_size <= req->limit)
				strbuf_add(&req->body, upload, *upload_size);
			else
				req->too_big = true;
			*upload_size = 0;
		}
	} else if (!req->dispatched) { /* the whole buffered body is here */
		conn_phase(srv, req->c, CONN_PHASE_BUSY);
		if (req->too_big) {
			pthread_mutex_unlock(&req->mu);
			server_error(req, 413, "request body too large (limit %zu bytes)", req->limit);
			pthread_mutex_lock(&req->mu);
			ret = queue_now(req);
		} else if (srv->run_inline && srv->run_inline(req, srv->userdata)) {
			/* quick and never blocking for long: here, without the handoff to a worker */
			req->dispatched = true;
			req->ran_inline = true;
			req->t_ready = req->t_run = mono_us();
			pthread_mutex_unlock(&req->mu);
			srv->handler(req, srv->userdata);
			if (!req->responded)
				server_error(req, 500, "internal error: no response");
			pthread_mutex_lock(&req->mu);
			req->handler_done = true;
			ret = queue_now(req);
		} else {
			MHD_suspend_connection(conn);
			req->suspended = true;
			dispatch(req);
		}
	} else if (!req->queued) {
		if (req->streamed && !req->in_eof) {
			req->in_eof = true;
			pthread_cond_broadcast(&req->cond);
			conn_phase(srv, req->c, CONN_PHASE_BUSY);
		}
		if (!req->responded) { /* until the handler answers */
			MHD_suspend_connection(conn);
			req->suspended = true;
		}
	}
	pthread_mutex_unlock(&req->mu);
	return ret;
}

/* ---- connections, limits, the reaper ---- */

/* The pending peer entry of fd, or -1; under s->lock. */
static ssize_t peer_find(struct http_server *s, int fd)
{
	for (size_t i = 0; i < s->n_peers; i++)
		if (s->peers[i].fd == fd)
			return (ssize_t)i;
	return -1;
}

static void peer_drop(struct http_server *s, int fd)
{
	ssize_t i = peer_find(s, fd);
	if (i >= 0) {
		free(s->peers[i].peer);
		s->peers[i] = s->peers[--s->n_peers];
	}
}

/*
 * A connection starts (MHD's thread): track it for the limits, with the peer
 * identity recorded for its fd (TLS listeners that record peers always leave
 * an entry, NULL without a certificate, so a reused fd never sees a stale
 * one). Closed (before MHD closes the fd): forget it.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *s = cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn *c = *socket_context;
		*socket_context = NULL;
		if (!c)
			return;
		pthread_mutex_lock(&s->lock);
		if (c->prev)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		s->n_conns--;
		pthread_mutex_unlock(&s->lock);
		free(c->peer);
		free(c);
		return;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct conn *c = xcalloc(1, sizeof(*c));
	c->fd = ci ? ci->connect_fd : -1;
	c->phase = CONN_PHASE_HEAD;
	c->t0 = proc_now_ms();
	pthread_mutex_lock(&s->lock);
	ssize_t i = c->fd >= 0 ? peer_find(s, c->fd) : -1;
	if (i >= 0) {
		c->peer = s->peers[i].peer;
		s->peers[i] = s->peers[--s->n_peers];
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	pthread_mutex_unlock(&s->lock);
	*socket_context = c;
}

/*
 * Connections whose client has ended its side (shutdown(SHUT_WR), or closed) while libmicrohttpd
 * waits to read a request's head or body from them. libmicrohttpd's epoll is edge-triggered and
 * takes a short read for "nothing more to read": when the client's last bytes and its end arrive
 * together, it reads the bytes and never the end, and the connection waits for the idle timeout
 * (a head that never completes; a keep-alive connection after its answer; a body cut short).
 * shutdown(SHUT_RD) changes nothing the client can see (it sends no more anyway) but wakes every
 * epoll watching the socket: libmicrohttpd then reads, sees the end and closes by its own rules
 * (an incomplete head or body is an aborted request; a complete request it read before is answered
 * first). Called every turn of the reaper, s->lock held (the fds stay open while listed).
 */
static void nudge_half_closed(struct http_server *s, struct pollfd **pfd, size_t *cap)
{
	size_t n = 0;
	for (struct conn *c = s->conns; c; c = c->next) {
		if (c->killed || c->fd < 0 || c->upgraded || c->phase == CONN_PHASE_BUSY)
			continue;
		if (n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			*pfd = xrealloc(*pfd, *cap * sizeof(**pfd));
		}
		(*pfd)[n++] = (struct pollfd){ c->fd, POLLRDHUP, 0 };
	}
	if (n == 0 || poll(*pfd, n, 0) <= 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!((*pfd)[i].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			continue;
		shutdown((*pfd)[i].fd, SHUT_RD);
		log_fields(LOG_LEVEL_TRACE, "http: client ended its side of the connection", "action",
			   "read the end", NULL);
	}
}

static void *reaper_main(void *arg)
{
	struct http_server *s = arg;
	struct pollfd *pfd = NULL;
	size_t cap = 0;
	int64_t last_nudge = 0;
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec ts = proc_deadline(CLOCK_MONOTONIC, 1000);
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		int64_t now = proc_now_ms();
		/* s->cond also wakes us for other reasons (many times a second on a busy server) */
		if (!s->stopping && now - last_nudge >= HALF_CLOSE_MS) {
			nudge_half_closed(s, &pfd, &cap);
			last_nudge = now;
		}
		for (struct conn *c = s->conns; c && !s->stopping; c = c->next) {
			int64_t stalled = c->stalled + (c->stall_since ? now - c->stall_since : 0);
			if (c->killed || c->fd < 0 ||
			    !connlimit_overdue(&s->cl, c->phase, now - c->t0, stalled, c->bytes))
				continue;
			/* MHD sees the end of the stream and closes it (the fd stays valid until CLOSED) */
			c->killed = true;
			shutdown(c->fd, SHUT_RDWR);
			log_fields(LOG_LEVEL_DEBUG,
				   c->phase == CONN_PHASE_HEAD ? "http: request headers too slow"
							       : "http: request body too slow",
				   "action", "connection closed", NULL);
		}
	}
	pthread_mutex_unlock(&s->lock);
	free(pfd);
	return NULL;
}

void http_limits_defaults(struct http_limits *l)
{
	if (!l->max_connections)
		l->max_connections = HTTP_DEFAULT_MAX_CONNECTIONS;
	if (!l->workers)
		l->workers = HTTP_DEFAULT_WORKERS;
	if (!l->header_timeout_s)
		l->header_timeout_s = HTTP_DEFAULT_HEADER_TIMEOUT;
	if (!l->idle_timeout_s)
		l->idle_timeout_s = HTTP_DEFAULT_IDLE_TIMEOUT;
	if (!l->body_min_rate)
		l->body_min_rate = HTTP_DEFAULT_BODY_MIN_RATE;
	if (!l->conn_memory)
		l->conn_memory = HTTP_CONN_MEMORY;
}

int http_limits_parse_opt(struct http_limits *l, int index, const char *value, struct berth_error **err)
{
	static const char *const names[HTTP_LIMITS_N_OPTS] = { "http-max-connections", "http-workers",
							       "http-header-timeout", "http-idle-timeout",
							       "http-body-min-rate" };
	static const uint64_t max[HTTP_LIMITS_N_OPTS] = { 1000000, 4096, 86400, 86400, 1u << 30 };
	unsigned *slots[HTTP_LIMITS_N_OPTS] = { &l->max_connections, &l->workers, &l->header_timeout_s,
						&l->idle_timeout_s, &l->body_min_rate };
	uint64_t n;
	if (index < 0 || index >= HTTP_LIMITS_N_OPTS)
		return berth_error_msg(err, EINVAL, "unknown http limit");
	if (util_parse_uint64(value, &n) < 0 || n < 1 || n > max[index])
		return berth_error_msg(err, EINVAL, "invalid --%s '%s': expected a number from 1 to %llu",
				       names[index], value, (unsigned long long)max[index]);
	*slots[index] = (unsigned)n;
	return 0;
}

int http_limits_opt(const struct cli_opt *o, const char *value)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = http_limits_parse_opt(o->dest, (int)o->min, value, &err);
	if (r < 0)
		berth_error_print(err, o->key);
	return r;
}

/* Every connection costs up to three descriptors (a TLS client's socket and a socketpair). */
static void raise_nofile(unsigned max_connections)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)max_connections * 3 + 256) {
		char have[24], want[24];
		snprintf(have, sizeof(have), "%llu", (unsigned long long)rl.rlim_cur);
		snprintf(want, sizeof(want), "%u", max_connections);
		log_fields(LOG_LEVEL_WARN, "open file limit is low for the connection limit", "nofile", have,
			   "max-connections", want, NULL);
	}
}

int http_server_start(const struct http_server_opts *opts, struct http_server **ret, struct berth_error **err)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->handler = opts->handler;
	s->quick = opts->quick;
	s->userdata = opts->userdata;
	s->max_body = opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
	s->body_limit = opts->body_limit;
	s->body_stream = opts->body_stream;
	s->error_body = opts->error_body;
	s->run_inline = opts->run_inline;
	s->listen_fd = opts->listen_fd;
	if (opts->limits)
		s->lim = *opts->limits;
	http_limits_defaults(&s->lim);
	s->cl = (struct conn_limits){ s->lim.header_timeout_s, s->lim.body_min_rate };
	pthread_mutex_init(&s->lock, NULL);
	proc_cond_init_monotonic(&s->cond); /* timed waits: the reaper, stop */
	pthread_cond_init(&s->work_cond, NULL);
	raise_nofile(s->lim.max_connections);
	/* MHD never listens itself: our accept loop (admit.c) refuses non-HTTP clients first */
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE |
			 MHD_USE_ITC | MHD_USE_NO_LISTEN_SOCKET;
	unsigned io_threads = HTTP_IO_THREADS;
	const char *e = getenv("BERTH_HTTP_IO_THREADS");
	uint64_t n;
	if (e && util_parse_uint64(e, &n) == 0 && n >= 1 && n <= 16)
		io_threads = (unsigned)n;
	s->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_THREAD_POOL_SIZE, io_threads,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    s->lim.conn_memory, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->lim.idle_timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->lim.max_connections + MHD_LIMIT_SLACK),
	    MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024), MHD_OPTION_END);
	if (!s->mhd) {
		safe_close(opts->listen_fd);
		free(s);
		return berth_error_set(err, EIO, "start http server");
	}
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		MHD_stop_daemon(s->mhd);
		safe_close(opts->listen_fd);
		free(s);
		return berth_error_set(err, EAGAIN, "start the http reaper thread");
	}
	s->reaper_started = true;
	if (opts->listen_fd >= 0) {
		int r = http_admit_start(s, opts->listen_fd, s->lim.header_timeout_s, &s->admit, err);
		if (r < 0) {
			pthread_mutex_lock(&s->lock);
			s->stopping = true;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			pthread_join(s->reaper, NULL);
			MHD_stop_daemon(s->mhd);
			safe_close(opts->listen_fd);
			free(s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

void http_server_quiesce(struct http_server *s)
{
	s->admit = http_admit_stop(s->admit);
	s->listen_fd = safe_close(s->listen_fd);
}

/* How long stop waits for handlers, streams and deferred requests to end. */
#define HTTP_STOP_WAIT_SEC 15

struct http_server *http_server_stop(struct http_server *s)
{
	if (!s)
		return NULL;
	s->admit = http_admit_stop(s->admit);
	/* End every connection (streams and hijacked ones see the hangup), let handlers finish. */
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	pthread_cond_broadcast(&s->cond);
	pthread_cond_broadcast(&s->work_cond);
	struct timespec deadline = proc_deadline(CLOCK_MONOTONIC, HTTP_STOP_WAIT_SEC * 1000);
	bool stuck = false;
	while (s->n_workers || s->n_aux || s->n_deferred || s->q_head)
		if (pthread_cond_timedwait(&s->cond, &s->lock, &deadline) != 0) {
			stuck = true;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->reaper, NULL);
	if (stuck) {
		/* MHD aborts on suspended connections, and threads still use s: leave both to the exit */
		log_fields(LOG_LEVEL_WARN, "http server: requests still running at shutdown", NULL);
		return NULL;
	}
	MHD_stop_daemon(s->mhd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->work_cond);
	for (size_t i = 0; i < s->n_peers; i++)
		free(s->peers[i].peer);
	free(s->peers);
	safe_close(s->listen_fd);
	free(s);
	return NULL;
}

bool http_server_full_with(struct http_server *s, unsigned extra)
{
	pthread_mutex_lock(&s->lock);
	bool full = s->n_conns + extra >= s->lim.max_connections || s->stopping;
	pthread_mutex_unlock(&s->lock);
	return full;
}

bool http_server_full(struct http_server *s)
{
	return http_server_full_with(s, 0);
}

http_quick_fn http_server_quick(struct http_server *s, void **ret_userdata, unsigned *ret_idle_ms)
{
	*ret_userdata = s->userdata;
	*ret_idle_ms = s->lim.header_timeout_s * 1000u;
	return s->quick;
}

int http_server_add_connection(struct http_server *s, int fd, const struct sockaddr *addr, socklen_t addr_len,
			       struct berth_error **err)
{
	if (http_server_full(s)) {
		_cleanup_free_ char *msg =
		    xasprintf("{\"message\":\"too many connections (limit %u); retry later\"}\n",
			      s->lim.max_connections);
		http_refuse_fd(fd, "503 Service Unavailable", "application/json", msg);
		log_fields(LOG_LEVEL_DEBUG, "http: connection limit reached", "action", "503", NULL);
		return berth_error_set(err, EBUSY, "too many connections");
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	struct sockaddr_un unknown = { .sun_family = AF_UNIX };
	if (!addr || addr_len == 0) {
		addr = (const struct sockaddr *)&unknown;
		addr_len = sizeof(sa_family_t);
	}
	/* MHD closes fd itself when it refuses the connection */
	if (MHD_add_connection(s->mhd, fd, addr, addr_len) != MHD_YES)
		return berth_error_set(err, EIO, "add connection to the http server");
	return 0;
}

int http_server_add_connection_peer(struct http_server *s, int fd, const struct sockaddr *addr,
				    socklen_t addr_len, const char *peer, struct berth_error **err)
{
	pthread_mutex_lock(&s->lock);
	peer_drop(s, fd); /* stale: a connection MHD refused without starting it */
	if (s->n_peers == s->cap_peers) {
		s->cap_peers = s->cap_peers ? 2 * s->cap_peers : 64;
		s->peers = xrealloc(s->peers, s->cap_peers * sizeof(*s->peers));
	}
	s->peers[s->n_peers++] = (struct pending_peer){ fd, peer ? xstrdup(peer) : NULL };
	pthread_mutex_unlock(&s->lock);
	int r = http_server_add_connection(s, fd, addr, addr_len, err);
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		peer_drop(s, fd);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

int http_listen_unix(const char *path, mode_t mode, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return berth_error_set(err, ENAMETOOLONG, "listen on '%s'", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "create socket");
	if (unlink(path) < 0 && errno != ENOENT)
		return berth_error_errno(err, "remove stale socket '%s'", path);
	mode_t old = umask(0777 & ~mode);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return berth_error_errno(err, "bind '%s'", path);
	if (chmod(path, mode) < 0)
		return berth_error_errno(err, "chmod '%s'", path);
	if (listen(fd, 1024) < 0)
		return berth_error_errno(err, "listen on '%s'", path);
	return TAKE_FD(fd);
}
