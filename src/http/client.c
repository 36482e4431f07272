/*
 * client.c - blocking HTTP client. Requests to a unix socket (the berth
 * daemon: every CLI verb) are spoken here in plain HTTP/1.1 on a fresh
 * connection each; TCP, TLS and streamed uploads go through libcurl, which is
 * bound lazily (common/lazylib.h), so `berth ps` never loads libcurl and its
 * ~30 dependencies (docs/ARCHITECTURE.md, "Process start"). Also a
 * hand-rolled HTTP/1.1 upgrade for hijacked streams (libcurl cannot hand
 * back a raw socket after a 101 response without its CONNECT_ONLY dance).
 */
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/fs.h"
#include "common/process.h"
#include "common/util.h"
#include "http/http.h"
#include "http/xfer.h"

/* Longest response head we accept on a hijack (status line + headers). */
#define HIJACK_MAX_HEAD (64 * 1024)

struct http_client {
	struct http_xfer *xfer; /* made on first use: unix-socket clients may never need one */
	char *unix_path;        /* NULL for TCP */
	char *tcp_addr;         /* "host:port" for TCP */
	char *base_url;         /* "http://localhost", "http://host:port" or "https://host:port" */
	void *tls_ctx;          /* SSL_CTX for hijacked connections, NULL without TLS */
	bool tls_verify;
	char *ca, *cert, *key;
};

int http_client_new(const char *host, struct http_client **ret, struct berth_error **err)
{
	struct http_client *c = xcalloc(1, sizeof(*c));
	if (startswith(host, "unix://")) {
		c->unix_path = xstrdup(host + 7);
		c->base_url = xstrdup("http://localhost");
	} else if (host[0] == '/') {
		c->unix_path = xstrdup(host);
		c->base_url = xstrdup("http://localhost");
	} else if (startswith(host, "tcp://")) {
		const char *a = host + 6;
		c->tcp_addr = xstrndup(a, strcspn(a, "/"));
		c->base_url = xasprintf("http://%s", c->tcp_addr);
	} else {
		free(c);
		return berth_error_msg(err, EINVAL,
				       "invalid host '%s': expected unix:///path or tcp://host:port", host);
	}
	*ret = c;
	return 0;
}

struct http_client *http_client_free(struct http_client *c)
{
	if (!c)
		return NULL;
	http_xfer_free(c->xfer);
	if (c->tls_ctx) /* never a call into OpenSSL (loading it) for nothing */
		http_tls_ctx_free(c->tls_ctx);
	free(c->tcp_addr);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->unix_path);
	free(c->base_url);
	free(c);
	return NULL;
}

int http_client_set_tls(struct http_client *c, const struct http_tls_files *f, bool verify_server,
			struct berth_error **err)
{
	if (!c->tcp_addr)
		return berth_error_msg(err, EINVAL, "TLS needs a tcp:// host");
	void *ctx = NULL;
	int r = http_tls_ctx_new(f, verify_server, false, &ctx, err);
	if (r < 0)
		return r;
	http_tls_ctx_free(c->tls_ctx);
	c->tls_ctx = ctx;
	c->tls_verify = verify_server;
	free(c->ca);
	free(c->cert);
	free(c->key);
	c->ca = f->ca ? xstrdup(f->ca) : NULL;
	c->cert = f->cert ? xstrdup(f->cert) : NULL;
	c->key = f->key ? xstrdup(f->key) : NULL;
	free(c->base_url);
	c->base_url = xasprintf("https://%s", c->tcp_addr);
	return 0;
}

static int connect_unix(const char *path, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return berth_error_set(err, ENAMETOOLONG, "connect '%s'", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "create socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_msg(
		    err, errno, "cannot connect to the berth daemon at '%s': is the daemon running?", path);
	return TAKE_FD(fd);
}

/* ---- plain HTTP/1.1 over a unix socket (http_client_do without libcurl) ---- */

struct reader {
	int fd;
	size_t off, len;
	int64_t deadline_ms; /* 0: none */
	const atomic_bool *cancel;
	const struct http_client_request *r;
	char buf[16 * 1024];
};

/* Wait until fd is ready for events, honouring the deadline and the cancel flag. */
static int wait_fd(int fd, short events, int64_t deadline_ms, const atomic_bool *cancel,
		   const struct http_client_request *r, struct berth_error **err)
{
	if (!deadline_ms && !cancel)
		return 0;
	for (;;) {
		if (cancel && atomic_load(cancel))
			return berth_error_msg(err, ECANCELED, "%s %s: cancelled", r->method, r->path);
		int timeout = cancel ? 1000 : -1;
		if (deadline_ms) {
			int64_t left = deadline_ms - proc_now_ms();
			if (left <= 0)
				return berth_error_msg(err, ETIMEDOUT, "%s %s: timed out", r->method,
						       r->path);
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		struct pollfd p = { fd, events, 0 };
		int n = poll(&p, 1, timeout);
		if (n < 0 && errno != EINTR)
			return berth_error_errno(err, "%s %s: poll", r->method, r->path);
		if (n > 0)
			return 0;
	}
}

/* Read more into the buffer: > 0 bytes added, 0 at EOF, < 0 error. */
static ssize_t reader_fill(struct reader *x, struct berth_error **err)
{
	if (x->off == x->len)
		x->off = x->len = 0;
	if (x->len == sizeof(x->buf)) {
		memmove(x->buf, x->buf + x->off, x->len - x->off);
		x->len -= x->off;
		x->off = 0;
	}
	for (;;) {
		int r = wait_fd(x->fd, POLLIN, x->deadline_ms, x->cancel, x->r, err);
		if (r < 0)
			return r;
		ssize_t n = read(x->fd, x->buf + x->len, sizeof(x->buf) - x->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_errno(err, "%s %s: read response", x->r->method, x->r->path);
		x->len += (size_t)n;
		return n;
	}
}

/* One line (without its CRLF) into line; -EIO at EOF or past max bytes. */
static int reader_line(struct reader *x, struct strbuf *line, size_t max, struct berth_error **err)
{
	strbuf_reset(line);
	for (;;) {
		char *nl = memchr(x->buf + x->off, '\n', x->len - x->off);
		size_t take = nl ? (size_t)(nl - (x->buf + x->off)) + 1 : x->len - x->off;
		strbuf_add(line, x->buf + x->off, take);
		x->off += take;
		if (line->len > max)
			return berth_error_msg(err, EIO, "%s %s: response line too long", x->r->method,
					       x->r->path);
		if (nl) {
			strbuf_setlen(line, line->len - 1);
			if (line->len && line->buf[line->len - 1] == '\r')
				strbuf_setlen(line, line->len - 1);
			return 0;
		}
		ssize_t n = reader_fill(x, err);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return berth_error_msg(err, EIO, "%s %s: connection closed in the response head",
					       x->r->method, x->r->path);
	}
}

/* Deliver body bytes: 1 when the callback asked to stop. */
static int deliver(const struct http_client_request *r, struct strbuf *out, const char *p, size_t n)
{
	if (r->on_body)
		return r->on_body(r->on_body_ctx, p, n) == 0 ? 0 : 1;
	if (out)
		strbuf_add(out, p, n);
	return 0;
}

/* Up to want bytes of body (SIZE_MAX: until EOF); 1 if stopped by the callback. */
static int body_bytes(struct reader *x, size_t want, struct strbuf *out, struct berth_error **err)
{
	while (want) {
		if (x->off == x->len) {
			ssize_t n = reader_fill(x, err);
			if (n < 0)
				return (int)n;
			if (n == 0) {
				if (want == SIZE_MAX)
					return 0;
				return berth_error_msg(
				    err, EIO, "%s %s: connection closed before the end of the response",
				    x->r->method, x->r->path);
			}
		}
		size_t k = MIN(want, x->len - x->off);
		int stop = deliver(x->r, out, x->buf + x->off, k);
		x->off += k;
		if (want != SIZE_MAX)
			want -= k;
		if (stop)
			return 1;
	}
	return 0;
}

static int body_chunked(struct reader *x, struct strbuf *out, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	for (;;) {
		int r = reader_line(x, &line, 1024, err);
		if (r < 0)
			return r;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(line.buf, &end, 16);
		if (end == line.buf || errno || (*end && *end != ';' && *end != ' '))
			return berth_error_msg(err, EIO, "%s %s: bad chunk size '%s'", x->r->method,
					       x->r->path, line.buf);
		if (n == 0) { /* trailers, then the blank line */
			do
				r = reader_line(x, &line, HIJACK_MAX_HEAD, err);
			while (r >= 0 && line.len);
			return r < 0 ? r : 0;
		}
		if ((r = body_bytes(x, (size_t)n, out, err)) != 0)
			return r;
		if ((r = reader_line(x, &line, 2, err)) < 0)
			return r;
	}
}

static int send_all(int fd, const char *p, size_t n, const struct http_client_request *r, int64_t deadline_ms,
		    struct berth_error **err)
{
	while (n) {
		int w = wait_fd(fd, POLLOUT, deadline_ms, r->cancel, r, err);
		if (w < 0)
			return w;
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return berth_error_errno(err, "%s %s: send request", r->method, r->path);
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int native_do(struct http_client *c, const struct http_client_request *r, long *ret_status,
		     struct strbuf *out, struct berth_error **err)
{
	int64_t deadline = r->timeout_ms > 0 ? proc_now_ms() + r->timeout_ms : 0;
	_cleanup_close_ int fd = connect_unix(c->unix_path, err);
	if (fd < 0)
		return fd;
	bool head = streq(r->method, "HEAD");
	_cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
	/*
	 * One request per connection: saying so spares the server its keep-alive turn (libmicrohttpd
	 * zeroes the connection's whole memory pool, 256 KiB on the Docker API, before the next request).
	 */
	strbuf_addf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\nConnection: close\r\n",
		    r->method, r->path);
	if (r->content_type)
		strbuf_addf(&req, "Content-Type: %s\r\n", r->content_type);
	for (const char *const *h = r->headers; h && *h; h++)
		strbuf_addf(&req, "%s\r\n", *h);
	if (r->body || streq(r->method, "POST"))
		strbuf_addf(&req, "Content-Length: %zu\r\n", r->body ? r->body_len : 0);
	strbuf_addstr(&req, "\r\n");
	_cleanup_error_ struct berth_error *serr = NULL;
	int rc = send_all(fd, req.buf, req.len, r, deadline, &serr);
	if (rc >= 0 && r->body && r->body_len)
		rc = send_all(fd, r->body, r->body_len, r, deadline, &serr);
	/* a server that answers before reading the whole body (413, 400) may reset: read its answer anyway */
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET) {
		if (err && !*err)
			*err = TAKE_PTR(serr);
		return rc;
	}

	struct reader *x = xcalloc(1, sizeof(*x));
	_cleanup_free_ struct reader *xfree = x;
	*x = (struct reader){ .fd = fd, .deadline_ms = deadline, .cancel = r->cancel, .r = r };
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	long status;
	long long clen = -1;
	bool chunked = false;
	for (;;) { /* skip interim 1xx answers (101 is not expected here) */
		int k = reader_line(x, &line, HIJACK_MAX_HEAD, err);
		if (k < 0)
			return k;
		if (sscanf(line.buf, "HTTP/1.%*d %ld", &status) != 1)
			return berth_error_msg(err, EIO, "%s %s: malformed response status line", r->method,
					       r->path);
		if (r->resp_headers)
			strbuf_addf(r->resp_headers, "%s\r\n", line.buf);
		size_t total = line.len;
		for (;;) {
			if ((k = reader_line(x, &line, HIJACK_MAX_HEAD, err)) < 0)
				return k;
			total += line.len;
			if (total > HIJACK_MAX_HEAD)
				return berth_error_msg(err, EIO, "%s %s: response head too large", r->method,
						       r->path);
			if (r->resp_headers)
				strbuf_addf(r->resp_headers, "%s\r\n", line.buf);
			if (!line.len)
				break;
			if (!strncasecmp(line.buf, "content-length:", 15))
				clen = strtoll(line.buf + 15, NULL, 10);
			else if (!strncasecmp(line.buf, "transfer-encoding:", 18) &&
				 strcasestr(line.buf + 18, "chunked"))
				chunked = true;
		}
		if (status >= 200 || status == 101)
			break;
		clen = -1;
		chunked = false;
	}
	*ret_status = status;
	if (head || status == 204 || status == 304 || status < 200)
		return 0;
	int b = chunked ? body_chunked(x, out, err)
			: body_bytes(x, clen >= 0 ? (size_t)clen : SIZE_MAX, out, err);
	return b < 0 ? b : 0;
}

static ssize_t read_fd(void *ctx, char *buf, size_t n)
{
	int fd = *(int *)ctx;
	ssize_t r;
	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int on_body(void *ctx, const char *p, size_t n)
{
	const struct http_client_request *r = ctx;
	return r->on_body(r->on_body_ctx, p, n) == 0 ? 0 : 1;
}

int http_client_do(struct http_client *c, const struct http_client_request *r, long *ret_status,
		   struct strbuf *out, struct berth_error **err)
{
	if (c->unix_path && r->body_fd < 0)
		return native_do(c, r, ret_status, out, err);
	if (!c->xfer)
		c->xfer = http_xfer_new();
	_cleanup_free_ char *url = xasprintf("%s%s", c->base_url, r->path);
	_cleanup_free_ char *ct = r->content_type ? xasprintf("Content-Type: %s", r->content_type) : NULL;
	size_t nh = 0;
	while (r->headers && r->headers[nh])
		nh++;
	_cleanup_free_ const char **hdrs = xcalloc(nh + 3, sizeof(*hdrs));
	size_t k = 0;
	if (ct)
		hdrs[k++] = ct;
	hdrs[k++] = "Expect:";
	for (size_t i = 0; i < nh; i++)
		hdrs[k++] = r->headers[i];
	int fd = r->body_fd;
	struct http_xfer_req q = {
		.method = r->method,
		.url = url,
		.headers = hdrs,
		.unix_socket = c->unix_path,
		.body = fd < 0 ? r->body : NULL,
		.body_len = r->body_len,
		.read = fd >= 0 ? read_fd : NULL,
		.read_ctx = &fd,
		.body_size = -1,
		.on_data = r->on_body ? on_body : NULL,
		.data_ctx = (void *)r,
		.out = out,
		.resp_headers = r->resp_headers,
		.timeout_ms = r->timeout_ms > 0 ? r->timeout_ms : 0,
		.cancel = r->cancel,
	};
	if (c->tls_ctx) {
		q.cert_file = c->cert;
		q.key_file = c->key;
		q.ca_file = c->ca;
		q.tls_no_verify = !c->tls_verify;
	}
	struct http_xfer_res res;
	_cleanup_error_ struct berth_error *xerr = NULL;
	int rc = http_xfer_perform(c->xfer, &q, &res, &xerr);
	if (rc >= 0) {
		*ret_status = res.status;
		return 0;
	}
	if (res.fail == HTTP_XFER_CANCELLED)
		return berth_error_msg(err, ECANCELED, "%s %s: cancelled", r->method, r->path);
	if (res.fail == HTTP_XFER_CONNECT)
		return berth_error_msg(err, ECONNREFUSED,
				       "cannot connect to the berth daemon at '%s': is the daemon running?",
				       c->unix_path ? c->unix_path : c->base_url);
	return berth_error_msg(err, res.fail == HTTP_XFER_TIMEOUT ? ETIMEDOUT : EIO, "%s %s: %s", r->method,
			       r->path, res.reason);
}

static int connect_raw(struct http_client *c, struct berth_error **err)
{
	if (c->tcp_addr) {
		int fd = http_tcp_connect_or_listen(c->tcp_addr, false, err);
		if (fd < 0 || !c->tls_ctx)
			return fd;
		return http_tls_client_wrap(c->tls_ctx, fd, c->tcp_addr, c->tls_verify, err);
	}
	return connect_unix(c->unix_path, err);
}

/* The response head (through its blank line); the stream after it stays in fd. */
static int read_head(int fd, struct strbuf *head, struct berth_error **err)
{
	int r = fs_read_until(fd, "\r\n\r\n", HIJACK_MAX_HEAD, head);
	if (r == -EIO)
		return berth_error_msg(err, EIO, "read response: connection closed");
	if (r == -EMSGSIZE)
		return berth_error_msg(err, EIO, "read response: head too large");
	if (r < 0)
		return berth_error_set(err, -r, "read response");
	return 0;
}

static long head_content_length(const char *head)
{
	const char *p = strcasestr(head, "\r\ncontent-length:");
	if (!p)
		return -1;
	return strtol(p + 17, NULL, 10);
}

int http_client_send(struct http_client *c, const char *method, const char *path, const char *headers,
		     const char *body, size_t body_len, struct berth_error **err)
{
	_cleanup_close_ int fd = connect_raw(c, err);
	if (fd < 0)
		return fd;
	_cleanup_strbuf_ struct strbuf req = STRBUF_INIT;
	strbuf_addf(&req,
		    "%s %s HTTP/1.1\r\nHost: berth\r\n%sContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\n\r\n",
		    method, path, headers ? headers : "", body ? body_len : 0);
	if (body)
		strbuf_add(&req, body, body_len);
	int r = fs_write_all(fd, req.buf, req.len);
	if (r < 0)
		return berth_error_set(err, -r, "send request");
	return TAKE_FD(fd);
}

/* Decode a chunked body in place. */
static void dechunk(struct strbuf *sb)
{
	struct strbuf out = STRBUF_INIT;
	size_t i = 0;
	while (i < sb->len) {
		char *end;
		unsigned long n = strtoul(sb->buf + i, &end, 16);
		const char *nl = strstr(end, "\r\n");
		if (!nl || n == 0)
			break;
		i = (size_t)(nl - sb->buf) + 2;
		if (i + n > sb->len)
			n = sb->len - i;
		strbuf_add(&out, sb->buf + i, n);
		i += n + 2;
	}
	strbuf_release(sb);
	*sb = out;
}

/* A chunked body that holds a whole line already: chunks end with CRLF, the line's own "\n" precedes it. */
static bool chunked_line_done(const struct strbuf *body)
{
	const char *nl = memchr(body->buf, '\n', body->len);
	if (!nl) /* the chunk size line */
		return false;
	return body->len >= 3 && !memcmp(body->buf + body->len - 3, "\n\r\n", 3);
}

int http_client_read_head(int fd, long *ret_status, struct strbuf *head, struct berth_error **err)
{
	int r = read_head(fd, head, err);
	if (r < 0)
		return r;
	if (sscanf(head->buf, "HTTP/1.%*d %ld", ret_status) != 1)
		return berth_error_msg(err, EIO, "malformed response status line");
	return 0;
}

int http_client_read_body(int fd, const char *head, bool one_line, struct strbuf *out,
			  struct berth_error **err)
{
	long cl = head_content_length(head);
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	if (cl >= 0) {
		strbuf_grow(&body, (size_t)cl);
		if (fs_read_full(fd, body.buf, (size_t)cl) < 0)
			return berth_error_msg(err, EIO, "read response: connection closed");
		strbuf_setlen(&body, (size_t)cl);
	} else {
		bool chunked = strcasestr(head, "transfer-encoding: chunked") != NULL;
		for (;;) {
			char buf[4096];
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			strbuf_add(&body, buf, (size_t)n);
			if (chunked && body.len >= 5 && !memcmp(body.buf + body.len - 5, "0\r\n\r\n", 5))
				break;
			if (chunked && one_line && chunked_line_done(&body))
				break;
		}
		if (chunked)
			dechunk(&body);
	}
	if (out)
		strbuf_add(out, body.buf, body.len);
	return 0;
}

int http_client_read_response(int fd, bool one_line, long *ret_status, struct strbuf *out,
			      struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf head = STRBUF_INIT;
	long status = 0;
	int r = http_client_read_head(fd, &status, &head, err);
	if (r < 0 || (r = http_client_read_body(fd, head.buf, one_line, out, err)) < 0)
		return r;
	*ret_status = status;
	return 0;
}

int http_client_hijack(struct http_client *c, const char *method, const char *path, const char *body,
		       size_t body_len, long *ret_status, int *ret_fd, struct strbuf *out,
		       struct berth_error **err)
{
	_cleanup_close_ int fd =
	    http_client_send(c, method, path, "Connection: Upgrade\r\nUpgrade: tcp\r\n", body, body_len, err);
	if (fd < 0)
		return fd;
	_cleanup_strbuf_ struct strbuf head = STRBUF_INIT;
	long status = 0;
	int r = http_client_read_head(fd, &status, &head, err);
	if (r < 0)
		return r;
	if (status != 101 && status != 200 && out) {
		long cl = head_content_length(head.buf);
		if (cl > 0 && cl < (long)HIJACK_MAX_HEAD) {
			strbuf_grow(out, (size_t)cl);
			if (fs_read_full(fd, out->buf + out->len, (size_t)cl) == 0)
				strbuf_setlen(out, out->len + (size_t)cl);
		}
	}
	*ret_status = status;
	*ret_fd = TAKE_FD(fd);
	return 0;
}
