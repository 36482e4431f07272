/*
 * client.c - blocking HTTP client over libcurl, plus a hand-rolled HTTP/1.1
 * upgrade for hijacked streams (libcurl cannot hand back a raw socket after
 * a 101 response without its CONNECT_ONLY dance, and the head is tiny).
 */
#include <curl/curl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/fs.h"
#include "common/util.h"
#include "http/http.h"

/* Longest response head we accept on a hijack (status line + headers). */
#define HIJACK_MAX_HEAD (64 * 1024)

struct http_client {
	CURL *curl;
	char *unix_path; /* NULL for TCP */
	char *tcp_addr;  /* "host:port" for TCP */
	char *base_url;  /* "http://localhost", "http://host:port" or "https://host:port" */
	void *tls_ctx;   /* SSL_CTX for hijacked connections, NULL without TLS */
	bool tls_verify;
	char *ca, *cert, *key;
};

int http_client_new(const char *host, struct http_client **ret, struct berth_error **err)
{
	static bool inited;
	if (!inited) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		inited = true;
	}
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
	c->curl = curl_easy_init();
	if (!c->curl) {
		http_client_free(c);
		return berth_error_set(err, ENOMEM, "init curl");
	}
	*ret = c;
	return 0;
}

struct http_client *http_client_free(struct http_client *c)
{
	if (!c)
		return NULL;
	if (c->curl)
		curl_easy_cleanup(c->curl);
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

static void set_curl_tls(struct http_client *c, CURL *h)
{
	if (!c->tls_ctx)
		return;
	if (c->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	if (c->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
}

struct body_sink {
	struct strbuf *out;
	http_body_fn fn;
	void *ctx;
};

static size_t on_write(char *data, size_t size, size_t n, void *cls)
{
	struct body_sink *s = cls;
	size_t len = size * n;
	if (s->fn)
		return s->fn(s->ctx, data, len) == 0 ? len : 0;
	if (s->out)
		strbuf_add(s->out, data, len);
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *cls)
{
	strbuf_add(cls, data, size * n);
	return size * n;
}

static size_t on_read_fd(char *buf, size_t size, size_t n, void *cls)
{
	int fd = *(int *)cls;
	ssize_t r;
	do
		r = read(fd, buf, size * n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

/* libcurl calls this about once a second (and on every transfer): non-zero aborts. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load((const atomic_bool *)ctx) ? 1 : 0;
}

int http_client_do(struct http_client *c, const struct http_client_request *r, long *ret_status,
		   struct strbuf *out, struct berth_error **err)
{
	CURL *h = c->curl;
	curl_easy_reset(h);
	_cleanup_free_ char *url = xasprintf("%s%s", c->base_url, r->path);
	struct body_sink sink = { out, r->on_body, r->on_body_ctx };
	struct curl_slist *hdrs = NULL;
	int fd = r->body_fd;

	curl_easy_setopt(h, CURLOPT_URL, url);
	if (c->unix_path)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
	set_curl_tls(c, h);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (r->resp_headers) {
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, r->resp_headers);
	}
	if (r->timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	if (r->cancel) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)r->cancel);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (r->content_type) {
		_cleanup_free_ char *ct = xasprintf("Content-Type: %s", r->content_type);
		hdrs = curl_slist_append(hdrs, ct);
	}
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (const char *const *x = r->headers; x && *x; x++)
		hdrs = curl_slist_append(hdrs, *x);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (fd >= 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read_fd);
		curl_easy_setopt(h, CURLOPT_READDATA, &fd);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (r->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	} else if (streq(r->method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	} else if (streq(r->method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	}
	CURLcode rc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	if (rc == CURLE_WRITE_ERROR && r->on_body) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
		return 0; /* the callback asked to stop */
	}
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return berth_error_msg(err, ECANCELED, "%s %s: cancelled", r->method, r->path);
	if (rc != CURLE_OK) {
		if (rc == CURLE_COULDNT_CONNECT)
			return berth_error_msg(
			    err, ECONNREFUSED,
			    "cannot connect to the berth daemon at '%s': is the daemon running?",
			    c->unix_path ? c->unix_path : c->base_url);
		return berth_error_msg(err, rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO, "%s %s: %s",
				       r->method, r->path, curl_easy_strerror(rc));
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, ret_status);
	return 0;
}

static int connect_raw(struct http_client *c, struct berth_error **err)
{
	if (c->tcp_addr) {
		int fd = http_tcp_connect_or_listen(c->tcp_addr, false, err);
		if (fd < 0 || !c->tls_ctx)
			return fd;
		return http_tls_client_wrap(c->tls_ctx, fd, c->tcp_addr, c->tls_verify, err);
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->unix_path) >= sizeof(sa.sun_path))
		return berth_error_set(err, ENAMETOOLONG, "connect '%s'", c->unix_path);
	memcpy(sa.sun_path, c->unix_path, strlen(c->unix_path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "create socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_errno(err, "cannot connect to the berth daemon at '%s'", c->unix_path);
	return TAKE_FD(fd);
}

/* Read the response head one byte at a time so no stream byte is consumed. */
static int read_head(int fd, struct strbuf *head, struct berth_error **err)
{
	while (head->len < HIJACK_MAX_HEAD) {
		char ch;
		ssize_t n = read(fd, &ch, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_errno(err, "read response");
		if (n == 0)
			return berth_error_msg(err, EIO, "read response: connection closed");
		strbuf_addch(head, ch);
		if (head->len >= 4 && !memcmp(head->buf + head->len - 4, "\r\n\r\n", 4))
			return 0;
	}
	return berth_error_msg(err, EIO, "read response: head too large");
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

int http_client_read_response(int fd, long *ret_status, struct strbuf *out, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf head = STRBUF_INIT;
	int r = read_head(fd, &head, err);
	if (r < 0)
		return r;
	long status = 0;
	if (sscanf(head.buf, "HTTP/1.%*d %ld", &status) != 1)
		return berth_error_msg(err, EIO, "malformed response status line");
	long cl = head_content_length(head.buf);
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	if (cl >= 0) {
		strbuf_grow(&body, (size_t)cl);
		if (fs_read_full(fd, body.buf, (size_t)cl) == 0)
			strbuf_setlen(&body, (size_t)cl);
	} else {
		bool chunked = strcasestr(head.buf, "transfer-encoding: chunked") != NULL;
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
		}
		if (chunked)
			dechunk(&body);
	}
	if (out)
		strbuf_add(out, body.buf, body.len);
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
	int r = read_head(fd, &head, err);
	if (r < 0)
		return r;
	long status = 0;
	if (sscanf(head.buf, "HTTP/1.%*d %ld", &status) != 1)
		return berth_error_msg(err, EIO, "malformed response status line");
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
