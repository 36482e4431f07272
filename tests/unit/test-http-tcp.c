/* test-http-tcp.c - TCP listeners feeding the server through MHD_add_connection, plain and TLS setup errors.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "unit.h"
#include "common/fs.h"
#include "http/http.h"

static void handler(struct http_request *req, void *userdata)
{
	http_respond(req, 200, "text/plain", xstrdup("pong"), 4);
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void test_plain_tcp_listener_serves_without_own_socket(void **state)
{
	struct berth_error *err = NULL;
	struct http_server_opts so = { .listen_fd = -1, .handler = handler };
	struct http_server *srv = NULL;
	assert_int_equal(http_server_start(&so, &srv, &err), 0);
	int fd = http_listen_tcp("127.0.0.1:0", &err);
	assert_true(fd >= 0);
	int port = bound_port(fd);
	struct http_tcp_listener *l = NULL;
	assert_int_equal(http_tcp_listener_start(srv, fd, NULL, false, &l, &err), 0);
	char host[64];
	snprintf(host, sizeof(host), "tcp://127.0.0.1:%d", port);
	struct http_client *c = NULL;
	assert_int_equal(http_client_new(host, &c, &err), 0);
	for (int i = 0; i < 3; i++) { /* several connections */
		struct http_client_request r = { .method = "GET", .path = "/_ping", .body_fd = -1 };
		struct strbuf out = STRBUF_INIT;
		long st = 0;
		assert_int_equal(http_client_do(c, &r, &st, &out, &err), 0);
		assert_int_equal(st, 200);
		assert_string_equal(out.buf, "pong");
		strbuf_release(&out);
	}
	http_client_free(c);
	http_tcp_listener_stop(l);
	http_server_stop(srv);
}

static void test_bad_addresses_and_tls_files(void **state)
{
	struct berth_error *err = NULL;
	static const char *const bad[] = { "nohostport", "127.0.0.1:", "[::1", "no.such.host.invalid:1" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_true(http_listen_tcp(bad[i], &err) < 0);
		assert_non_null(err);
		berth_error_free(err);
		err = NULL;
	}
	void *ctx = NULL;
	struct http_tls_files f = { .ca = "/nonexistent/ca.pem",
				    .cert = "/nonexistent/c.pem",
				    .key = "/x/k.pem" };
	assert_int_equal(http_tls_ctx_new(&f, true, true, &ctx, &err), -EINVAL);
	assert_non_null(strstr(err->msg, "/nonexistent/c.pem"));
	berth_error_free(err);
	err = NULL;
	struct http_tls_files noca = { 0 };
	assert_int_equal(http_tls_ctx_new(&noca, true, false, &ctx, &err), -EINVAL);
	berth_error_free(err);
	err = NULL;
	assert_int_equal(http_tls_ctx_new(&noca, false, false, &ctx, &err), 0); /* encrypt-only client */
	http_tls_ctx_free(ctx);
	struct http_client *c = NULL;
	assert_int_equal(http_client_new("unix:///x.sock", &c, &err), 0);
	assert_int_equal(http_client_set_tls(c, &noca, false, &err), -EINVAL); /* TLS needs tcp:// */
	berth_error_free(err);
	http_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_tcp_listener_serves_without_own_socket),
		cmocka_unit_test(test_bad_addresses_and_tls_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
