/* test-http-xfer.c - the libcurl wrapper against a local scripted HTTP/1.1 server (TCP and a unix socket). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "unit.h"
#include "common/fs.h"
#include "common/util.h"
#include "http/xfer.h"

struct srv {
	int fd;
	int port;
	pthread_t th;
	atomic_bool stop;
	char *unix_path;
};

static void send_str(int fd, const char *s)
{
	(void)fs_write_all(fd, s, strlen(s));
}

static void respond(int fd, int status, const char *extra, const char *body, size_t len)
{
	char *head = xasprintf("HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
			       len, extra ? extra : "");
	send_str(fd, head);
	(void)fs_write_all(fd, body, len);
	free(head);
}

/* Read one request: head into head, body (Content-Length or chunked) into body. */
static bool read_request(int fd, struct strbuf *head, struct strbuf *body)
{
	char c;
	while (!strstr(head->buf ? head->buf : "", "\r\n\r\n")) {
		if (read(fd, &c, 1) != 1)
			return false;
		strbuf_addch(head, c);
	}
	const char *cl = strcasestr(head->buf, "\r\ncontent-length:");
	if (cl) {
		size_t n = strtoul(cl + 17, NULL, 10);
		strbuf_grow(body, n);
		if (n && fs_read_full(fd, body->buf, n) < 0)
			return false;
		strbuf_setlen(body, n);
	} else if (strcasestr(head->buf, "transfer-encoding: chunked")) {
		for (;;) {
			struct strbuf line = STRBUF_INIT;
			while (!(line.len >= 2 && !memcmp(line.buf + line.len - 2, "\r\n", 2))) {
				if (read(fd, &c, 1) != 1)
					return false;
				strbuf_addch(&line, c);
			}
			size_t n = strtoul(line.buf, NULL, 16);
			strbuf_release(&line);
			char *tmp = xmalloc(n + 2);
			if (fs_read_full(fd, tmp, n + 2) < 0)
				return false;
			strbuf_add(body, tmp, n);
			free(tmp);
			if (n == 0)
				break;
		}
	}
	return true;
}

static void serve_one(int fd)
{
	struct strbuf head = STRBUF_INIT, body = STRBUF_INIT;
	if (!read_request(fd, &head, &body))
		goto out;
	char method[16] = "", path[256] = "";
	sscanf(head.buf, "%15s %255s", method, path);
	if (streq(path, "/hello")) {
		respond(fd, 200, "X-Test: yes\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n", "hello",
			5);
	} else if (streq(path, "/redirect")) {
		respond(fd, 302, "Location: /hello\r\n", "", 0);
	} else if (streq(path, "/loop")) {
		respond(fd, 302, "Location: /loop\r\n", "", 0);
	} else if (streq(path, "/echo")) { /* method, then the body */
		char *out = xasprintf("%s %s", method, body.buf ? body.buf : "");
		respond(fd, 200, NULL, out, strlen(out));
		free(out);
	} else if (streq(path, "/head")) { /* the request head back */
		respond(fd, 200, NULL, head.buf, head.len);
	} else if (streq(path, "/big")) {
		char *b = xmalloc(100000);
		memset(b, 'x', 100000);
		respond(fd, 200, NULL, b, 100000);
		free(b);
	} else if (streq(path, "/slow")) { /* a head, then nothing for 5 s */
		send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
		struct pollfd p = { fd, POLLIN, 0 };
		(void)poll(&p, 1, 5000);
	} else {
		respond(fd, 404, NULL, "nope", 4);
	}
out:
	strbuf_release(&head);
	strbuf_release(&body);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	while (!atomic_load(&s->stop)) {
		struct pollfd p = { s->fd, POLLIN, 0 };
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve_one(c);
		close(c);
	}
	return NULL;
}

static struct srv *srv_start(bool unix_socket)
{
	struct srv *s = xcalloc(1, sizeof(*s));
	if (unix_socket) {
		char *dir = unit_tmpdir();
		s->unix_path = xasprintf("%s/s.sock", dir);
		free(dir);
		s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->unix_path);
		assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	} else {
		s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		socklen_t len = sizeof(sa);
		assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
		s->port = ntohs(sa.sin_port);
	}
	assert_int_equal(listen(s->fd, 16), 0);
	assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
	return s;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->fd);
	if (s->unix_path) {
		unlink(s->unix_path);
		char *dir = xstrdup(s->unix_path);
		*strrchr(dir, '/') = '\0';
		rmdir(dir);
		free(dir);
		free(s->unix_path);
	}
	free(s);
}

static char *url(struct srv *s, const char *path)
{
	return xasprintf("http://127.0.0.1:%d%s", s->port, path);
}

/* A TCP server, a handle and an output buffer for each test. */
struct fx {
	struct srv *s;
	struct http_xfer *x;
	struct strbuf out;
};

static int fx_setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	f->s = srv_start(false);
	f->x = http_xfer_new();
	strbuf_init(&f->out, 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	if (f->s)
		srv_stop(f->s);
	http_xfer_free(f->x);
	strbuf_release(&f->out);
	free(f);
	return 0;
}

static void test_get_headers_redirects(void **state)
{
	struct fx *f = *state;
	struct berth_error *err = NULL;
	struct http_xfer_res res;
	_cleanup_strbuf_ struct strbuf hdrs = STRBUF_INIT;
	_cleanup_free_ char *u = url(f->s, "/redirect");

	/* not followed by default */
	struct http_xfer_req q = { .url = u, .out = &f->out };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_int_equal(res.status, 302);

	/* followed, headers of every response seen, Last-Modified as filetime */
	q = (struct http_xfer_req){
		.url = u, .out = &f->out, .max_redirs = 3, .resp_headers = &hdrs, .want_filetime = true
	};
	strbuf_reset(&f->out);
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(f->out.buf, "hello");
	assert_non_null(strstr(hdrs.buf, "HTTP/1.1 302"));
	assert_non_null(strstr(hdrs.buf, "X-Test: yes"));
	assert_int_equal(res.filetime, 1445412480);

	/* a loop ends at max_redirs with the URL and curl's reason */
	_cleanup_free_ char *lu = url(f->s, "/loop");
	q = (struct http_xfer_req){ .url = lu, .max_redirs = 2 };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -EIO);
	assert_int_equal(res.fail, HTTP_XFER_FAILED);
	assert_non_null(strstr(err->msg, lu));
	assert_non_null(strstr(err->msg, "GET '"));
	berth_error_free(err), err = NULL;

	/* request headers, user agent, Basic credentials */
	_cleanup_free_ char *hu = url(f->s, "/head");
	const char *h[] = { "X-One: 1", "Accept:", NULL };
	q = (struct http_xfer_req){
		.url = hu, .out = &f->out, .headers = h, .user_agent = "ua/1", .user = "u", .password = "p"
	};
	strbuf_reset(&f->out);
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_non_null(strstr(f->out.buf, "X-One: 1\r\n"));
	assert_null(strstr(f->out.buf, "Accept:"));
	assert_non_null(strstr(f->out.buf, "User-Agent: ua/1\r\n"));
	assert_non_null(strstr(f->out.buf, "Authorization: Basic dTpw\r\n"));

	/* fail_on_error */
	_cleanup_free_ char *nu = url(f->s, "/missing");
	q = (struct http_xfer_req){ .url = nu, .fail_on_error = true };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -EIO);
	assert_int_equal(res.fail, HTTP_XFER_HTTP);
	assert_non_null(strstr(res.detail, "404"));
	berth_error_free(err), err = NULL;
}

struct reader {
	const char *p;
	size_t left;
};

static ssize_t read_cb(void *ctx, char *buf, size_t n)
{
	struct reader *r = ctx;
	size_t k = MIN(n, r->left);
	memcpy(buf, r->p, k);
	r->p += k;
	r->left -= k;
	return (ssize_t)k;
}

static ssize_t read_fail(void *ctx, char *buf, size_t n)
{
	(void)ctx, (void)buf, (void)n;
	return -ENOSPC;
}

static void test_uploads(void **state)
{
	struct fx *f = *state;
	struct berth_error *err = NULL;
	struct http_xfer_res res;
	_cleanup_free_ char *u = url(f->s, "/echo");

	struct http_xfer_req q = { .method = "POST", .url = u, .body = "a=1", .body_len = 3, .out = &f->out };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_string_equal(f->out.buf, "POST a=1");

	q = (struct http_xfer_req){ .method = "POST", .url = u, .out = &f->out }; /* empty POST */
	strbuf_reset(&f->out);
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_string_equal(f->out.buf, "POST ");

	struct reader rd = { "streamed body", 13 }; /* known length */
	q = (struct http_xfer_req){
		.method = "PUT", .url = u, .read = read_cb, .read_ctx = &rd, .body_size = 13, .out = &f->out
	};
	strbuf_reset(&f->out);
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_string_equal(f->out.buf, "PUT streamed body");

	rd = (struct reader){ "chunked", 7 }; /* unknown length */
	q = (struct http_xfer_req){
		.method = "PATCH", .url = u, .read = read_cb, .read_ctx = &rd, .body_size = -1, .out = &f->out
	};
	strbuf_reset(&f->out);
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_string_equal(f->out.buf, "PATCH chunked");

	q = (struct http_xfer_req){ .method = "PUT", .url = u, .read = read_fail, .body_size = 10 };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -ENOSPC);
	assert_int_equal(res.fail, HTTP_XFER_ABORTED);
	assert_int_equal(res.cb_errno, ENOSPC);
	berth_error_free(err), err = NULL;
}

static int count_cb(void *ctx, const char *p, size_t n)
{
	(void)p;
	*(size_t *)ctx += n;
	return *(size_t *)ctx >= 1000 ? 1 : 0; /* stop quietly */
}

static int abort_cb(void *ctx, const char *p, size_t n)
{
	(void)ctx, (void)p, (void)n;
	return -EBADMSG;
}

static void test_limits_and_callbacks(void **state)
{
	struct fx *f = *state;
	struct berth_error *err = NULL;
	struct http_xfer_res res;
	_cleanup_free_ char *big = url(f->s, "/big"), *slow = url(f->s, "/slow");

	struct http_xfer_req q = { .url = big, .out = &f->out, .out_max = 1000 };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -EFBIG);
	assert_int_equal(res.fail, HTTP_XFER_TOO_LARGE);
	assert_non_null(strstr(err->msg, "larger than 1000 bytes"));
	berth_error_free(err), err = NULL;

	q = (struct http_xfer_req){ .url = big, .max_filesize = 500 };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -EFBIG);
	berth_error_free(err), err = NULL;

	size_t got = 0;
	q = (struct http_xfer_req){ .url = big, .on_data = count_cb, .data_ctx = &got };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), 0);
	assert_true(res.stopped);
	assert_int_equal(res.status, 200);

	q = (struct http_xfer_req){ .url = big, .on_data = abort_cb };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -EBADMSG);
	assert_int_equal(res.fail, HTTP_XFER_ABORTED);
	berth_error_free(err), err = NULL;

	q = (struct http_xfer_req){ .url = slow, .timeout_ms = 300 };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -ETIMEDOUT);
	assert_int_equal(res.fail, HTTP_XFER_TIMEOUT);
	berth_error_free(err), err = NULL;

	atomic_bool cancel = true;
	q = (struct http_xfer_req){ .url = slow, .cancel = &cancel };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -ECANCELED);
	assert_int_equal(res.fail, HTTP_XFER_CANCELLED);
	berth_error_free(err), err = NULL;

	/* the protocols policy: a file:// URL is refused when only http(s) is allowed */
	q = (struct http_xfer_req){ .url = "file:///etc/hostname", .protocols = "http,https" };
	assert_true(http_xfer_perform(f->x, &q, &res, &err) < 0);
	berth_error_free(err), err = NULL;

	/* nothing listening: -ECONNREFUSED, the URL and curl's detail in the message */
	int port = f->s->port;
	srv_stop(f->s);
	f->s = NULL;
	_cleanup_free_ char *dead = xasprintf("http://127.0.0.1:%d/x", port);
	q = (struct http_xfer_req){ .url = dead };
	assert_int_equal(http_xfer_perform(f->x, &q, &res, &err), -ECONNREFUSED);
	assert_int_equal(res.fail, HTTP_XFER_CONNECT);
	assert_non_null(strstr(err->msg, dead));
	assert_non_null(strstr(err->msg, res.detail));
	berth_error_free(err), err = NULL;
}

static void test_unix_socket_and_proxy(void **state)
{
	(void)state;
	struct srv *s = srv_start(true);
	_cleanup_http_xfer_ struct http_xfer *x = http_xfer_new();
	struct berth_error *err = NULL;
	struct http_xfer_res res;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	struct http_xfer_req q = { .url = "http://localhost/hello",
				   .unix_socket = s->unix_path,
				   .out = &out };
	assert_int_equal(http_xfer_perform(x, &q, &res, &err), 0);
	assert_string_equal(out.buf, "hello");
	srv_stop(s);

	/* an explicit proxy is used (the request line carries the absolute URL) */
	s = srv_start(false);
	_cleanup_free_ char *proxy = xasprintf("http://127.0.0.1:%d", s->port);
	q = (struct http_xfer_req){ .url = "http://upstream.invalid/head", .proxy = proxy, .out = &out };
	strbuf_reset(&out);
	assert_int_equal(http_xfer_perform(x, &q, &res, &err), 0);
	assert_int_equal(res.status, 404); /* the request line held the absolute URL, not "/head" */
	assert_string_equal(out.buf, "nope");
	srv_stop(s);
}

static void test_multi(void **state)
{
	(void)state;
	struct srv *s = srv_start(false);
	struct berth_error *err = NULL;
	struct http_xfer_multi *m = http_xfer_multi_new();
	struct strbuf outs[3] = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT };
	struct http_xfer *xs[3];
	_cleanup_free_ char *u = url(s, "/hello"), *nu = url(s, "/nope");
	for (int i = 0; i < 3; i++) {
		xs[i] = http_xfer_new();
		struct http_xfer_req q = { .url = i == 2 ? nu : u, .out = &outs[i], .priv = &outs[i] };
		assert_int_equal(http_xfer_multi_add(m, xs[i], &q, &err), 0);
	}
	struct http_xfer_req again = { .url = u };
	assert_int_equal(http_xfer_multi_add(m, xs[0], &again, &err), -EBUSY);
	berth_error_free(err), err = NULL;
	int done = 0, running = 1;
	while (done < 3) {
		http_xfer_multi_perform(m, &running);
		struct http_xfer *x;
		struct http_xfer_res res;
		int r;
		while ((x = http_xfer_multi_next(m, &res, &r, &err))) {
			assert_int_equal(r, 0);
			struct strbuf *o = http_xfer_priv(x);
			assert_int_equal(res.status, o == &outs[2] ? 404 : 200);
			http_xfer_multi_remove(m, x);
			done++;
		}
		if (done < 3)
			http_xfer_multi_wait(m, 100);
	}
	http_xfer_multi_wakeup(m);
	assert_string_equal(outs[0].buf, "hello");
	assert_string_equal(outs[2].buf, "nope");
	for (int i = 0; i < 3; i++) {
		http_xfer_free(xs[i]);
		strbuf_release(&outs[i]);
	}
	http_xfer_multi_free(m);
	srv_stop(s);
}

static void test_url_escape(void **state)
{
	(void)state;
	_cleanup_free_ char *e = http_url_escape("repository:a/b:pull sha256:x~_.-");
	assert_string_equal(e, "repository%3Aa%2Fb%3Apull%20sha256%3Ax~_.-");
	_cleanup_free_ char *empty = http_url_escape("");
	assert_string_equal(empty, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_get_headers_redirects, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_uploads, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_callbacks, fx_setup, fx_teardown),
		cmocka_unit_test(test_unix_socket_and_proxy),
		cmocka_unit_test(test_multi),
		cmocka_unit_test(test_url_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
