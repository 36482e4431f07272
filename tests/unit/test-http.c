/* test-http.c - server and client over a unix socket: routing data, limits, hijack, relay. */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "unit.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "http/admit.h"
#include "http/http.h"

static void echo_hijack(void *ctx, int fd, const char *extra, size_t extra_len)
{
	char buf[256];
	if (extra_len)
		(void)fs_write_all(fd, extra, extra_len);
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		(void)fs_write_all(fd, buf, (size_t)n);
	shutdown(fd, SHUT_WR);
}

static int count_stream(void *ctx, struct strbuf *out)
{
	int *n = ctx;
	if (*n >= 3)
		return 1;
	strbuf_addf(out, "chunk%d;", (*n)++);
	return 0;
}

static atomic_int done_calls, done_completed;

/* /block holds its worker until released (test_inline_routes_need_no_worker) */
static pthread_mutex_t block_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t block_cond = PTHREAD_COND_INITIALIZER;
static bool block_running, block_release;

static void on_done(struct http_request *req, bool completed, void *ctx)
{
	/* accessors still work once the request is over */
	assert_string_equal(http_request_path(req), "/done");
	assert_string_equal(http_request_method(req), "GET");
	free(ctx);
	atomic_fetch_add(&done_completed, completed);
	atomic_fetch_add(&done_calls, 1);
}

static void handler(struct http_request *req, void *userdata)
{
	const char *path = http_request_path(req);
	if (streq(path, "/echo")) {
		size_t len;
		const char *b = http_request_body(req, &len);
		char *copy = xstrndup(b, len);
		http_response_header(req, "X-Version",
				     http_request_version(req) ? http_request_version(req) : "none");
		http_respond(req, 200, "text/plain", copy, len);
	} else if (streq(path, "/query")) {
		http_respond_json(req, 200,
				  json_pack("{s:b,s:s?}", "flag", http_query_bool(req, "flag", false), "v",
					    http_request_query(req, "v")));
	} else if (streq(path, "/query-all")) {
		_cleanup_strv_ char **t = http_request_query_all(req, "t");
		_cleanup_strv_ char **none = http_request_query_all(req, "none");
		json_t *a = json_array();
		for (char **p = t; *p; p++)
			json_array_append_new(a, json_string(*p));
		http_respond_json(req, 200,
				  json_pack("{s:o,s:b,s:b}", "t", a, "none_empty", none[0] == NULL, "sock",
					    http_request_socket(req) >= 0));
	} else if (streq(path, "/block")) {
		pthread_mutex_lock(&block_mu);
		block_running = true;
		pthread_cond_broadcast(&block_cond);
		while (!block_release)
			pthread_cond_wait(&block_cond, &block_mu);
		pthread_mutex_unlock(&block_mu);
		http_respond(req, 200, "text/plain", xstrdup("released"), 8);
	} else if (streq(path, "/stream") || streq(path, "/inline-stream")) {
		int *n = xcalloc(1, sizeof(int));
		http_respond_stream(req, 200, "text/plain", count_stream, free, n);
	} else if (streq(path, "/hijack")) {
		http_respond_hijack(req, "application/vnd.docker.raw-stream", echo_hijack, NULL, NULL);
	} else if (streq(path, "/file")) {
		/* "0123456789" from a file, honouring Range */
		_cleanup_free_ char *fp = xasprintf("%s/file", (const char *)userdata);
		int fd = open(fp, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		if (http_respond_fd_range(req, "application/octet-stream", fd, 10) == -ERANGE)
			http_respond_error(req, 416, "range not satisfiable");
	} else if (streq(path, "/upload")) {
		/* a streamed body, counted as it arrives */
		char buf[300];
		ssize_t n;
		uint64_t total = 0;
		while ((n = http_request_body_read(req, buf, sizeof(buf))) > 0)
			total += (uint64_t)n;
		if (n == -EFBIG)
			http_respond_error(req, 413, "too large after %llu bytes", (unsigned long long)total);
		else
			http_respond_json(req, 200,
					  json_pack("{s:I,s:b}", "n", (json_int_t)total, "streamed",
						    http_request_body_streamed(req)));
	} else if (streq(path, "/refuse")) {
		/* a streamed route that refuses before reading the body */
		http_respond_error(req, 401, "no");
	} else if (streq(path, "/done")) {
		http_request_on_done(req, on_done, xstrdup("ctx"));
		/* a unix socket has no IP address */
		http_respond(req, 200, "text/plain", xstrdup(http_request_remote(req)), 1);
	} else if (streq(path, "/noanswer")) {
		/* the server must answer 500 itself */
	} else {
		http_respond_error(req, 404, "page not found: '%s'", path);
	}
}

static bool body_stream(const char *method, const char *path, void *userdata)
{
	return streq(path, "/upload") || streq(path, "/refuse");
}

/* /query, /file and /inline-stream run on the I/O thread (run_inline); the rest on workers */
static bool run_inline(struct http_request *req, void *userdata)
{
	const char *p = http_request_path(req);
	return streq(p, "/query") || streq(p, "/file") || streq(p, "/inline-stream");
}

static char *error_body(unsigned status, const char *message, void *userdata)
{
	return status == 413
		   ? xasprintf("{\"errors\":[{\"code\":\"SIZE_INVALID\",\"message\":\"%s\"}]}\n", message)
		   : NULL;
}

struct fixture {
	char *dir, *sock;
	struct http_server *srv;
	struct http_client *cli;
};

static int setup_with(void **state, const struct http_limits *lim)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	f->sock = xasprintf("%s/s.sock", f->dir);
	int fd = http_listen_unix(f->sock, 0660, NULL);
	assert_true(fd >= 0);
	_cleanup_free_ char *file = xasprintf("%s/file", f->dir);
	assert_int_equal(fs_write_file_atomic(file, "0123456789", 10, 0644, NULL), 0);
	struct http_server_opts o = { .listen_fd = fd,
				      .max_body = 1024,
				      .body_stream = body_stream,
				      .error_body = error_body,
				      .run_inline = run_inline,
				      .limits = lim,
				      .handler = handler,
				      .userdata = f->dir };
	assert_int_equal(http_server_start(&o, &f->srv, NULL), 0);
	_cleanup_free_ char *host = xasprintf("unix://%s", f->sock);
	assert_int_equal(http_client_new(host, &f->cli, NULL), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, NULL);
}

/* A server with one worker thread. */
static int setup_one_worker(void **state)
{
	struct http_limits lim = { .workers = 1 };
	return setup_with(state, &lim);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	http_client_free(f->cli);
	http_server_stop(f->srv);
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->sock);
	free(f);
	return 0;
}

static long do_req(struct fixture *f, const char *method, const char *path, const char *body,
		   struct strbuf *out)
{
	struct http_client_request r = { .method = method,
					 .path = path,
					 .body = body,
					 .body_len = body ? strlen(body) : 0,
					 .body_fd = -1 };
	long st = 0;
	assert_int_equal(http_client_do(f->cli, &r, &st, out, NULL), 0);
	return st;
}

static void test_body_roundtrip_and_version_prefix(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "POST", "/v1.41/echo", "hello", &out), 200);
	assert_string_equal(out.buf, "hello");
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "POST", "/echo", "x", &out), 200);
	assert_string_equal(out.buf, "x");
}

static void test_query_and_json(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "GET", "/query?flag=1&v=a%20b", NULL, &out), 200);
	assert_string_equal(out.buf, "{\"flag\":true,\"v\":\"a b\"}\n");
}

static void test_query_all_keeps_repeats_in_order(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "POST", "/query-all?t=a&x=1&t=b%3Ac&t=", NULL, &out), 200);
	assert_string_equal(out.buf, "{\"t\":[\"a\",\"b:c\",\"\"],\"none_empty\":true,\"sock\":true}\n");
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "POST", "/query-all", NULL, &out), 200);
	assert_string_equal(out.buf, "{\"t\":[],\"none_empty\":true,\"sock\":true}\n");
}

static void test_errors_are_json(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "GET", "/nope", NULL, &out), 404);
	assert_string_equal(out.buf, "{\"message\":\"page not found: '/nope'\"}\n");
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "GET", "/noanswer", NULL, &out), 500);
	assert_non_null(strstr(out.buf, "no response"));
}

static void test_body_limit_is_413(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *big = xmalloc(4096);
	memset(big, 'a', 4095);
	big[4095] = '\0';
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "POST", "/echo", big, &out), 413);
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "POST", "/echo", "still serving", &out), 200);
}

/* GET /file with an optional Range header; the response's headers go to hdrs. */
static long get_file(struct fixture *f, const char *range, struct strbuf *out, struct strbuf *hdrs)
{
	_cleanup_free_ char *h = range ? xasprintf("Range: %s", range) : NULL;
	const char *headers[] = { h, NULL };
	struct http_client_request r = {
		.method = "GET", .path = "/file", .body_fd = -1, .headers = headers, .resp_headers = hdrs
	};
	long st = 0;
	strbuf_reset(out);
	strbuf_reset(hdrs);
	assert_int_equal(http_client_do(f->cli, &r, &st, out, NULL), 0);
	return st;
}

static void test_fd_response_honours_ranges(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT, hdrs = STRBUF_INIT;
	assert_int_equal(get_file(f, NULL, &out, &hdrs), 200);
	assert_string_equal(out.buf, "0123456789");
	assert_non_null(strcasestr(hdrs.buf, "Accept-Ranges: bytes"));
	assert_non_null(strcasestr(hdrs.buf, "Content-Type: application/octet-stream"));
	assert_int_equal(get_file(f, "bytes=2-4", &out, &hdrs), 206);
	assert_string_equal(out.buf, "234");
	assert_non_null(strcasestr(hdrs.buf, "Content-Range: bytes 2-4/10"));
	assert_int_equal(get_file(f, "bytes=7-", &out, &hdrs), 206);
	assert_string_equal(out.buf, "789");
	assert_int_equal(get_file(f, "bytes=-3", &out, &hdrs), 206);
	assert_string_equal(out.buf, "789");
	assert_int_equal(get_file(f, "bytes=5-100", &out, &hdrs), 206);
	assert_string_equal(out.buf, "56789");
	assert_non_null(strcasestr(hdrs.buf, "Content-Range: bytes 5-9/10"));
	assert_int_equal(get_file(f, "bytes=10-", &out, &hdrs), 416);
	assert_non_null(strcasestr(hdrs.buf, "Content-Range: bytes */10"));
	assert_int_equal(get_file(f, "bytes=1-2,4-5", &out, &hdrs), 416);
	/* the connection (and the file's fd) are fine after every answer */
	assert_int_equal(get_file(f, NULL, &out, &hdrs), 200);
	assert_string_equal(out.buf, "0123456789");
}

static void test_range_parse(void **state)
{
	(void)state;
	uint64_t a = 99, b = 99;
	assert_int_equal(http_range_parse(NULL, 10, &a, &b), 0);
	assert_int_equal(http_range_parse("bytes=0-0", 10, &a, &b), 1);
	assert_true(a == 0 && b == 0);
	assert_int_equal(http_range_parse("bytes=-20", 10, &a, &b), 1);
	assert_true(a == 0 && b == 9);
	const char *bad[] = { "bytes=",    "bytes=-",   "bytes=-0",      "bytes=5-4", "bytes=10-11",
			      "items=0-1", "bytes=a-b", "bytes=0-1,2-3", "bytes=1" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(http_range_parse(bad[i], 10, &a, &b), -1);
	assert_int_equal(http_range_parse("bytes=-1", 0, &a, &b), -1);
}

/* POST path with n bytes of 'x' as a chunked body (no Content-Length) read from a file. */
static long post_chunked(struct fixture *f, const char *path, size_t n, struct strbuf *out)
{
	_cleanup_free_ char *p = xasprintf("%s/body", f->dir);
	char *data = xmalloc(n ? n : 1);
	memset(data, 'x', n);
	assert_int_equal(fs_write_file_atomic(p, data, n, 0644, NULL), 0);
	free(data);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct http_client_request r = { .method = "POST", .path = path, .body_fd = fd };
	long st = 0;
	strbuf_reset(out);
	assert_int_equal(http_client_do(f->cli, &r, &st, out, NULL), 0);
	return st;
}

static void test_streamed_body_and_its_limit(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	/* read piece by piece as it arrives, up to the limit (1024) */
	assert_int_equal(post_chunked(f, "/upload", 1000, &out), 200);
	assert_string_equal(out.buf, "{\"n\":1000,\"streamed\":true}\n");
	assert_int_equal(post_chunked(f, "/upload", 0, &out), 200);
	assert_string_equal(out.buf, "{\"n\":0,\"streamed\":true}\n");
	/* over it without a Content-Length: the handler's read says so, its answer gets out */
	assert_int_equal(post_chunked(f, "/upload", 5000, &out), 413);
	assert_non_null(strstr(out.buf, "too large after"));
	/* announced over it: refused before the handler, in the server's error format */
	_cleanup_free_ char *big = xmalloc(2001);
	memset(big, 'y', 2000);
	big[2000] = '\0';
	assert_int_equal(do_req(f, "POST", "/upload", big, &out), 413);
	assert_non_null(strstr(out.buf, "\"SIZE_INVALID\""));
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "POST", "/upload", "small", &out), 200);
	assert_string_equal(out.buf, "{\"n\":5,\"streamed\":true}\n");
}

static void test_streamed_route_refuses_before_the_body(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	/* the answer goes out before the body is read (libmicrohttpd takes it only before the body), and
	 * the connection then closes: a client still writing a big body may meet EPIPE or ECONNRESET
	 * before it reads the answer, so only the status is checked when the client got one */
	long st = 0;
	_cleanup_free_ char *p = xasprintf("%s/body", f->dir);
	char *data = xmalloc(4000000);
	memset(data, 'x', 4000000);
	assert_int_equal(fs_write_file_atomic(p, data, 4000000, 0644, NULL), 0);
	free(data);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct http_client_request r = { .method = "POST", .path = "/refuse", .body_fd = fd };
	if (http_client_do(f->cli, &r, &st, &out, NULL) == 0) {
		assert_int_equal(st, 401);
		assert_string_equal(out.buf, "{\"message\":\"no\"}\n");
	}
	/* a small announced body is read and dropped first: the answer always arrives */
	_cleanup_free_ char *body = xmalloc(1001);
	memset(body, 'z', 1000);
	body[1000] = '\0';
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "POST", "/refuse", body, &out), 401);
	assert_string_equal(out.buf, "{\"message\":\"no\"}\n");
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "POST", "/upload", "after", &out), 200);
}

static void test_on_done_runs_once_after_the_answer(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	atomic_store(&done_calls, 0);
	atomic_store(&done_completed, 0);
	assert_int_equal(do_req(f, "GET", "/done", NULL, &out), 200);
	assert_string_equal(out.buf, "-");
	for (int i = 0; i < 500 && atomic_load(&done_calls) == 0; i++)
		usleep(10 * 1000);
	assert_int_equal(atomic_load(&done_calls), 1);
	assert_int_equal(atomic_load(&done_completed), 1);
	strbuf_reset(&out);
	assert_int_equal(do_req(f, "GET", "/query", NULL, &out), 200); /* others do not call it */
	assert_int_equal(atomic_load(&done_calls), 1);
}

static void test_stream_response(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "GET", "/stream", NULL, &out), 200);
	assert_string_equal(out.buf, "chunk0;chunk1;chunk2;");
}

static void test_hijack_echo(void **state)
{
	struct fixture *f = *state;
	long st = 0;
	int fd = -1;
	assert_int_equal(http_client_hijack(f->cli, "POST", "/hijack", NULL, 0, &st, &fd, NULL, NULL), 0);
	assert_int_equal(st, 101);
	assert_int_equal(fs_write_all(fd, "ping", 4), 0);
	shutdown(fd, SHUT_WR);
	_cleanup_strbuf_ struct strbuf got = STRBUF_INIT;
	assert_true(strbuf_read_fd(&got, fd, 1024) >= 0);
	assert_string_equal(got.buf, "ping");
	close(fd);
}

static void test_client_rejects_bad_host(void **state)
{
	struct http_client *c = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(http_client_new("ftp://x", &c, &err), -EINVAL);
	assert_null(c);
	berth_error_free(err);
}

static void test_relay_forwards_half_close(void **state)
{
	int a[2], b[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	/* client a[0] <-> relay(a[1], b[0]) <-> backend b[1] */
	assert_int_equal(fs_write_all(a[0], "in", 2), 0);
	shutdown(a[0], SHUT_WR);
	assert_int_equal(fs_write_all(b[1], "out", 3), 0);
	shutdown(b[1], SHUT_WR);
	http_relay(a[1], b[0], "x", 1);
	char buf[8] = { 0 };
	assert_int_equal(read(b[1], buf, sizeof(buf)), 3);
	assert_string_equal(buf, "xin");
	memset(buf, 0, sizeof(buf));
	assert_int_equal(read(a[0], buf, sizeof(buf)), 3);
	assert_string_equal(buf, "out");
	for (int i = 0; i < 2; i++) {
		close(a[i]);
		close(b[i]);
	}
}

static long block_status; /* of the /block request (get_block) */

static void *get_block(void *arg)
{
	struct fixture *f = arg;
	_cleanup_free_ char *host = xasprintf("unix://%s", f->sock);
	struct http_client *c = NULL;
	struct http_client_request r = { .method = "GET", .path = "/block", .body_fd = -1 };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	if (http_client_new(host, &c, NULL) == 0 && http_client_do(c, &r, &block_status, &out, NULL) < 0)
		block_status = -1;
	http_client_free(c);
	return NULL;
}

/* run_inline routes are answered on the I/O thread: also while the only worker is held. */
static void test_inline_routes_need_no_worker(void **state)
{
	struct fixture *f = *state;
	block_running = block_release = false;
	block_status = 0;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, get_block, f), 0);
	pthread_mutex_lock(&block_mu);
	while (!block_running)
		pthread_cond_wait(&block_cond, &block_mu);
	pthread_mutex_unlock(&block_mu);
	/* a request queued behind the busy worker would time out */
	_cleanup_strbuf_ struct strbuf q = STRBUF_INIT, st = STRBUF_INIT;
	struct http_client_request r = {
		.method = "GET", .path = "/query?v=x", .body_fd = -1, .timeout_ms = 3000
	};
	long qs = 0, ss = 0;
	int qr = http_client_do(f->cli, &r, &qs, &q, NULL);
	/* an inline handler may answer with a stream: its pump is a thread of its own */
	r.path = "/inline-stream";
	int sr = http_client_do(f->cli, &r, &ss, &st, NULL);
	pthread_mutex_lock(&block_mu);
	block_release = true;
	pthread_cond_broadcast(&block_cond);
	pthread_mutex_unlock(&block_mu);
	pthread_join(t, NULL);
	assert_int_equal(block_status, 200);
	assert_int_equal(qr, 0);
	assert_int_equal(qs, 200);
	assert_string_equal(q.buf, "{\"flag\":false,\"v\":\"x\"}\n");
	assert_int_equal(sr, 0);
	assert_int_equal(ss, 200);
	assert_string_equal(st.buf, "chunk0;chunk1;chunk2;");
}

/* At trace level every request logs where its time went: the handoffs, the handler, the send. */
static void test_request_timing_is_traced(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *path = xasprintf("%s/log", f->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	enum log_level old = log_get_level();
	log_set_fd(fd);
	log_set_level(LOG_LEVEL_TRACE);
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_int_equal(do_req(f, "GET", "/query", NULL, &out), 200);
	assert_int_equal(do_req(f, "POST", "/echo", "x", &out), 200);
	/* logged once the answer is out, which may be just after the client has it */
	_cleanup_strbuf_ struct strbuf log = STRBUF_INIT;
	for (int i = 0; i < 500; i++) {
		strbuf_reset(&log);
		_cleanup_close_ int rfd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(rfd >= 0);
		assert_true(strbuf_read_fd(&log, rfd, 1 << 20) >= 0);
		if (strstr(log.buf, "path=/echo"))
			break;
		usleep(10000);
	}
	log_set_level(old);
	log_set_fd(STDERR_FILENO);
	close(fd);
	const char *q = strstr(log.buf, "path=/query");
	const char *e = strstr(log.buf, "path=/echo");
	assert_non_null(q);
	assert_non_null(e);
	assert_non_null(strstr(q, "status=200 inline=1 queue-us=0 handler-us="));
	assert_non_null(strstr(e, "status=200 inline=0 queue-us="));
	assert_non_null(strstr(e, "resume-us="));
}

/* Send data (after delay_ms; in two parts with a pause when split > 0) on a fresh connection and
 * return what comes back until the server closes. */
static void raw_exchange(struct fixture *f, const char *data, size_t split, int delay_ms, struct strbuf *out)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (delay_ms)
		usleep((useconds_t)delay_ms * 1000);
	if (split) {
		assert_int_equal(fs_write_all(fd, data, split), 0);
		usleep(50000);
	}
	assert_int_equal(fs_write_all(fd, data + split, strlen(data) - split), 0);
	strbuf_reset(out);
	assert_true(strbuf_read_fd(out, fd, 1 << 16) >= 0);
	close(fd);
}

/* The accept loop judges a client whose first bytes came with its connection at once, and the
 * others when they arrive: either way non-HTTP gets a 400, HTTP is served. */
static void test_admit_judges_early_and_late_clients(void **state)
{
	struct fixture *f = *state;
	const char *get = "GET /query HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	raw_exchange(f, "hello\r\n\r\n", 0, 0, &out);
	assert_true(startswith(out.buf, "HTTP/1.1 400 Bad Request\r\n"));
	raw_exchange(f, "hello\r\n\r\n", 0, 50, &out);
	assert_true(startswith(out.buf, "HTTP/1.1 400 Bad Request\r\n"));
	raw_exchange(f, get, 0, 0, &out);
	assert_true(startswith(out.buf, "HTTP/1.1 200 OK\r\n"));
	raw_exchange(f, get, 0, 50, &out);
	assert_true(startswith(out.buf, "HTTP/1.1 200 OK\r\n"));
	raw_exchange(f, get, 2, 0, &out); /* "GE", a pause, the rest */
	assert_true(startswith(out.buf, "HTTP/1.1 200 OK\r\n"));
}

/* A server whose header and idle timeouts are far beyond the half-close test's deadline. */
static int setup_patient(void **state)
{
	struct http_limits lim = { .header_timeout_s = 600, .idle_timeout_s = 600 };
	return setup_with(state, &lim);
}

/*
 * Hand the server a connection whose client already sent data and ended its side (both wait in the
 * socket before libmicrohttpd's first read) and return what it answered; fails unless the server
 * closes within 20 s (its timeouts are 600 s).
 */
static void half_closed_exchange(struct fixture *f, const char *data, struct strbuf *out)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(fs_write_all(sp[1], data, strlen(data)), 0);
	assert_int_equal(shutdown(sp[1], SHUT_WR), 0);
	assert_int_equal(http_server_add_connection(f->srv, sp[0], NULL, 0, NULL), 0);
	strbuf_reset(out);
	int64_t end = proc_now_ms() + 20000;
	for (;;) {
		int64_t left = end - proc_now_ms();
		struct pollfd p = { sp[1], POLLIN, 0 };
		assert_true(left > 0 && poll(&p, 1, (int)left) == 1); /* else: held open */
		char buf[4096];
		ssize_t n = recv(sp[1], buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		strbuf_add(out, buf, (size_t)n);
	}
	close(sp[1]);
}

/* A client that ends its side is closed at once: after the answer to a complete request, without
 * one in the middle of a head or a body (libmicrohttpd alone waited for its timeouts). */
static void test_half_closed_connections_close(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	half_closed_exchange(f, "GET /query HTTP/1.1\r\nHost: x\r\n", &out);
	assert_int_equal(out.len, 0);
	half_closed_exchange(f, "GET /que", &out);
	assert_int_equal(out.len, 0);
	half_closed_exchange(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", &out);
	assert_int_equal(out.len, 0);
	half_closed_exchange(f, "GET /query HTTP/1.1\r\nHost: x\r\n\r\n", &out);
	assert_true(startswith(out.buf, "HTTP/1.1 200 OK\r\n"));
	half_closed_exchange(f, "GET /query HTTP/1.0\r\n\r\n", &out);
	assert_true(startswith(out.buf, "HTTP/1.1 200 OK\r\n"));
}

static void test_first_bytes_classify(void **state)
{
	(void)state;
	assert_int_equal(http_first_bytes_classify("GET / HTTP/1.1\r\n", 16), HTTP_FIRST_HTTP);
	assert_int_equal(http_first_bytes_classify("OPTIONS *", 9), HTTP_FIRST_HTTP);
	assert_int_equal(http_first_bytes_classify("GE", 2), HTTP_FIRST_NEED_MORE);
	assert_int_equal(http_first_bytes_classify("", 0), HTTP_FIRST_NEED_MORE);
	assert_int_equal(http_first_bytes_classify("hello\r\n", 7), HTTP_FIRST_NOT_HTTP);
	assert_int_equal(http_first_bytes_classify("\x16\x03\x01", 3), HTTP_FIRST_NOT_HTTP);
	assert_int_equal(http_first_bytes_classify(" GET", 4), HTTP_FIRST_NOT_HTTP);
	assert_int_equal(http_first_bytes_classify("\r\n", 2), HTTP_FIRST_NOT_HTTP);
	char longtok[HTTP_METHOD_MAX + 1];
	memset(longtok, 'A', sizeof(longtok));
	assert_int_equal(http_first_bytes_classify(longtok, sizeof(longtok)), HTTP_FIRST_NOT_HTTP);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the daemon does: the 413 path closes while the client sends */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_body_roundtrip_and_version_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_and_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_all_keeps_repeats_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_are_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limit_is_413, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_response_honours_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_on_done_runs_once_after_the_answer, setup, teardown),
		cmocka_unit_test(test_range_parse),
		cmocka_unit_test_setup_teardown(test_streamed_body_and_its_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streamed_route_refuses_before_the_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hijack_echo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inline_routes_need_no_worker, setup_one_worker,
						teardown),
		cmocka_unit_test_setup_teardown(test_request_timing_is_traced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admit_judges_early_and_late_clients, setup, teardown),
		cmocka_unit_test(test_client_rejects_bad_host),
		cmocka_unit_test(test_first_bytes_classify),
		cmocka_unit_test_setup_teardown(test_half_closed_connections_close, setup_patient, teardown),
		cmocka_unit_test(test_relay_forwards_half_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
