/*
 * server.c - HTTP server over libmicrohttpd, one thread per connection.
 *
 * Thread-per-connection costs a stack per client but lets handlers block
 * (waits, log follow, hijacked streams) without callbacks turning inside
 * out; Docker clients keep few connections open, so this is the right trade.
 * Bodies are buffered up to max_body; the handler sees a complete request.
 */
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "http/admit.h"
#include "http/http.h"

#define HTTP_MAX_HEADERS       8
/* Upgraded (attach/exec) connections tracked for shutdown. */
#define HTTP_MAX_HIJACKED      1024
/* TLS connections handed over but not yet picked up by libmicrohttpd. */
#define HTTP_MAX_PENDING_PEERS 256

struct pending_peer {
	int fd; /* -1: free slot */
	char *peer;
};

struct http_server {
	struct MHD_Daemon *mhd;
	http_handler_fn handler;
	void *userdata;
	size_t max_body;
	size_t (*body_limit)(const char *method, const char *path, void *userdata);
	int listen_fd;
	struct http_admit *admit; /* our accept loop on listen_fd (admit.c) */
	pthread_mutex_t lock;
	int hijacked[HTTP_MAX_HIJACKED]; /* live upgraded sockets, -1 when free */
	struct pending_peer peers[HTTP_MAX_PENDING_PEERS];
};

struct http_request {
	struct MHD_Connection *conn;
	struct http_server *srv;
	const char *method;
	char *path;
	char *version;
	struct strbuf body;
	bool too_big;
	bool responded;
	size_t limit;
	enum MHD_Result result;
	size_t n_headers;
	char *hdr_key[HTTP_MAX_HEADERS];
	char *hdr_val[HTTP_MAX_HEADERS];
};

struct stream_ctx {
	http_stream_fn read;
	void (*done)(void *ctx);
	void *ctx;
	struct strbuf pending;
	size_t off;
	int state; /* 0 running, 1 ended, <0 error */
};

struct hijack_ctx {
	struct http_server *srv;
	http_hijack_fn fn;
	void (*done)(void *ctx);
	void *ctx;
};

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

const char *http_request_query(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct query_all {
	const char *key;
	char **v;
	size_t n;
};

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_all *q = cls;
	(void)kind;
	if (key && streq(key, q->key) && q->n < 1024) { /* MHD bounds the request; this bounds the vector */
		q->v = xrealloc(q->v, (q->n + 2) * sizeof(char *));
		q->v[q->n++] = xstrdup(value ? value : "");
		q->v[q->n] = NULL;
	}
	return MHD_YES;
}

char **http_request_query_all(const struct http_request *req, const char *key)
{
	struct query_all q = { .key = key };
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, &q);
	return q.v ? q.v : xcalloc(1, sizeof(char *));
}

const char *http_request_peer(const struct http_request *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/*
 * A connection starts (maybe in another thread than the one that added it):
 * move the peer identity recorded for its fd into its socket context. Closed:
 * free it. Every TLS connection of a peer-recording listener records an
 * entry (NULL for no certificate), so a reused fd never sees a stale one.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *s = cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < HTTP_MAX_PENDING_PEERS; i++)
		if (s->peers[i].fd == ci->connect_fd) {
			*socket_context = s->peers[i].peer;
			s->peers[i] = (struct pending_peer){ -1, NULL };
			break;
		}
	pthread_mutex_unlock(&s->lock);
}

int http_request_socket(const struct http_request *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

const char *http_request_header(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

const char *http_request_body(const struct http_request *req, size_t *ret_len)
{
	if (ret_len)
		*ret_len = req->body.len;
	return req->body.buf;
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
	req->hdr_key[req->n_headers] = xstrdup(key);
	req->hdr_val[req->n_headers] = xstrdup(value);
	req->n_headers++;
}

static void queue(struct http_request *req, unsigned status, struct MHD_Response *resp, const char *ctype)
{
	if (!resp) {
		req->result = MHD_NO;
		req->responded = true;
		return;
	}
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, "Server", "berth/" BERTH_VERSION);
	for (size_t i = 0; i < req->n_headers; i++)
		MHD_add_response_header(resp, req->hdr_key[i], req->hdr_val[i]);
	req->result = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	req->responded = true;
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
	queue(req, status, resp, content_type);
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

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_ctx *s = cls;
	while (s->off >= s->pending.len) {
		if (s->state != 0)
			return s->state > 0 ? MHD_CONTENT_READER_END_OF_STREAM
					    : MHD_CONTENT_READER_END_WITH_ERROR;
		strbuf_reset(&s->pending);
		s->off = 0;
		int r = s->read(s->ctx, &s->pending);
		if (r != 0)
			s->state = r > 0 ? 1 : -1;
	}
	size_t n = MIN(max, s->pending.len - s->off);
	memcpy(buf, s->pending.buf + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream_ctx *s = cls;
	if (s->done)
		s->done(s->ctx);
	strbuf_release(&s->pending);
	free(s);
}

void http_respond_stream(struct http_request *req, unsigned status, const char *content_type,
			 http_stream_fn read, void (*done)(void *ctx), void *ctx)
{
	if (req->responded) {
		if (done)
			done(ctx);
		return;
	}
	struct stream_ctx *s = xcalloc(1, sizeof(*s));
	s->read = read;
	s->done = done;
	s->ctx = ctx;
	strbuf_init(&s->pending, 0);
	struct MHD_Response *resp =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_free);
	if (!resp)
		stream_free(s);
	queue(req, status, resp, content_type);
}

static void hijack_run(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
		       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct hijack_ctx *h = cls;
	/* MHD's sockets are non-blocking; the handler gets plain blocking I/O. */
	int fl = fcntl(sock, F_GETFL);
	if (fl >= 0)
		(void)fcntl(sock, F_SETFL, fl & ~O_NONBLOCK);
	int slot = -1;
	pthread_mutex_lock(&h->srv->lock);
	for (int i = 0; i < HTTP_MAX_HIJACKED && slot < 0; i++)
		if (h->srv->hijacked[i] < 0)
			h->srv->hijacked[slot = i] = sock;
	pthread_mutex_unlock(&h->srv->lock);
	h->fn(h->ctx, sock, extra, extra_len);
	pthread_mutex_lock(&h->srv->lock);
	if (slot >= 0)
		h->srv->hijacked[slot] = -1;
	pthread_mutex_unlock(&h->srv->lock);
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	if (h->done)
		h->done(h->ctx);
	free(h);
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
		queue(req, 500, NULL, NULL);
		return;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "tcp");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
	queue(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp, content_type);
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

static void request_free(struct http_request *req)
{
	if (!req)
		return;
	free(req->path);
	free(req->version);
	strbuf_release(&req->body);
	for (size_t i = 0; i < req->n_headers; i++) {
		free(req->hdr_key[i]);
		free(req->hdr_val[i]);
	}
	free(req);
}

/* con_cls marker set by on_uri: the raw request-target encodes a NUL byte. */
static char bad_target;

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	if (*con_cls != &bad_target)
		request_free(*con_cls);
	*con_cls = NULL;
}

static struct http_request *request_new(struct http_server *srv, struct MHD_Connection *conn, const char *url,
					const char *method)
{
	struct http_request *req = xcalloc(1, sizeof(*req));
	req->conn = conn;
	req->srv = srv;
	req->method = method;
	strbuf_init(&req->body, 0);
	split_version(url, &req->version, &req->path);
	req->limit = srv->max_body;
	if (srv->body_limit) {
		size_t l = srv->body_limit(method, req->path, srv->userdata);
		if (l)
			req->limit = l;
	}
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	uint64_t n;
	if (cl && parse_uint64(cl, &n) == 0 && n > req->limit)
		req->too_big = true;
	return req;
}

/* Called with the raw request-target before MHD decodes it; the result becomes con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls, (void)conn;
	return http_target_check(uri) < 0 ? &bad_target : NULL;
}

struct framing {
	size_t n_cl;
	const char *cl[2];
	bool te;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;
	(void)kind;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		if (f->n_cl < 2)
			f->cl[f->n_cl] = value;
		f->n_cl++;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->te = true;
	}
	return MHD_YES;
}

/* What the wrapper refuses for every server before a handler runs; NULL when fine. */
static const char *framing_error(struct MHD_Connection *conn, bool nul_target)
{
	if (nul_target)
		return "invalid request: the path or query contains a NUL byte (%00)";
	struct framing f = { 0 };
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_framing, &f);
	if (http_framing_check(f.n_cl, f.cl[0], f.cl[1], f.te) < 0)
		return f.te ? "invalid request: Content-Length together with Transfer-Encoding"
			    : "invalid request: conflicting Content-Length headers";
	return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size,
				  void **con_cls)
{
	struct http_server *srv = cls;
	struct http_request *req = *con_cls;

	if (!req || req == (void *)&bad_target) {
		const char *why = framing_error(conn, req != NULL);
		*con_cls = req = request_new(srv, conn, url, method);
		if (!why)
			return MHD_YES;
		/* the body, if any, is left unread: the connection cannot be reused */
		http_response_header(req, "Connection", "close");
		req->result = MHD_YES;
		http_respond_error(req, 400, "%s", why);
		return req->result;
	}
	if (*upload_size > 0) {
		if (!req->too_big && req->body.len + *upload_size <= req->limit)
			strbuf_add(&req->body, upload, *upload_size);
		else
			req->too_big = true;
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->responded)
		return MHD_YES;
	req->result = MHD_YES;
	if (req->too_big)
		http_respond_error(req, 413, "request body too large (limit %zu bytes)", req->limit);
	else
		srv->handler(req, srv->userdata);
	if (!req->responded)
		http_respond_error(req, 500, "internal error: no response");
	return req->result;
}

int http_server_start(const struct http_server_opts *opts, struct http_server **ret, struct berth_error **err)
{
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->handler = opts->handler;
	s->userdata = opts->userdata;
	s->max_body = opts->max_body ? opts->max_body : HTTP_DEFAULT_MAX_BODY;
	s->body_limit = opts->body_limit;
	s->listen_fd = opts->listen_fd;
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < HTTP_MAX_HIJACKED; i++)
		s->hijacked[i] = -1;
	for (int i = 0; i < HTTP_MAX_PENDING_PEERS; i++)
		s->peers[i].fd = -1;
	/* MHD never listens itself: our accept loop (admit.c) refuses non-HTTP clients first */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_UPGRADE |
			 MHD_USE_ITC | MHD_USE_POLL | MHD_USE_NO_LISTEN_SOCKET;
	s->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024), MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)0, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(256 * 1024), MHD_OPTION_END);
	if (!s->mhd) {
		safe_close(opts->listen_fd);
		free(s);
		return berth_error_set(err, EIO, "start http server");
	}
	if (opts->listen_fd >= 0) {
		int r = http_admit_start(s, opts->listen_fd, &s->admit, err);
		if (r < 0) {
			MHD_stop_daemon(s->mhd);
			safe_close(opts->listen_fd);
			free(s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

struct http_server *http_server_stop(struct http_server *s)
{
	if (!s)
		return NULL;
	s->admit = http_admit_stop(s->admit);
	/* End hijacked streams so their threads (joined by MHD) return. */
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < HTTP_MAX_HIJACKED; i++)
		if (s->hijacked[i] >= 0)
			shutdown(s->hijacked[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
	MHD_stop_daemon(s->mhd);
	pthread_mutex_destroy(&s->lock);
	for (int i = 0; i < HTTP_MAX_PENDING_PEERS; i++)
		free(s->peers[i].peer);
	safe_close(s->listen_fd);
	free(s);
	return NULL;
}

int http_server_add_connection(struct http_server *s, int fd, const struct sockaddr *addr, socklen_t addr_len,
			       struct berth_error **err)
{
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
	int slot = -1;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < HTTP_MAX_PENDING_PEERS; i++) {
		if (s->peers[i].fd == fd) { /* stale: a connection MHD refused without starting it */
			free(s->peers[i].peer);
			s->peers[i] = (struct pending_peer){ -1, NULL };
		}
		if (slot < 0 && s->peers[i].fd < 0)
			slot = i;
	}
	if (slot >= 0)
		s->peers[slot] = (struct pending_peer){ fd, peer ? xstrdup(peer) : NULL };
	pthread_mutex_unlock(&s->lock);
	if (slot < 0) {
		close(fd);
		return berth_error_set(err, EAGAIN, "too many connections starting");
	}
	int r = http_server_add_connection(s, fd, addr, addr_len, err);
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		if (s->peers[slot].fd == fd) {
			free(s->peers[slot].peer);
			s->peers[slot] = (struct pending_peer){ -1, NULL };
		}
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
	if (listen(fd, 512) < 0)
		return berth_error_errno(err, "listen on '%s'", path);
	return TAKE_FD(fd);
}
