/*
 * test-net-portproxy.c - the userland forwarder of [::1] publishes (net/portproxy.c): which
 * host addresses need it, its bind errors, and TCP (with half-close) and UDP relayed to an
 * IPv4 backend on loopback.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "net/net.h"

static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

static int backend(int type, uint16_t *ret_port)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 4), 0);
	*ret_port = local_port(fd);
	return fd;
}

/* TCP: read everything, then answer "got:<it>" and close. */
static void *tcp_backend_main(void *arg)
{
	int l = (int)(intptr_t)arg;
	int c = accept(l, NULL, NULL);
	char buf[256], out[300];
	size_t n = 0;
	ssize_t r;
	while (c >= 0 && n < sizeof(buf) && (r = read(c, buf + n, sizeof(buf) - n)) > 0)
		n += (size_t)r;
	int len = snprintf(out, sizeof(out), "got:%.*s", (int)n, buf);
	if (c >= 0 && write(c, out, (size_t)len) != len)
		fail_msg("backend write");
	if (c >= 0)
		close(c);
	return NULL;
}

/* UDP: echo one datagram back, upper-cased. */
static void *udp_backend_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[256];
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	for (ssize_t i = 0; i < n; i++)
		buf[i] = (char)toupper((unsigned char)buf[i]);
	if (n > 0)
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	return NULL;
}

struct proxy {
	int fd;
	const char *proto;
	uint16_t to_port;
};

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	net_port_proxy_serve(p->fd, p->proto, "127.0.0.1", p->to_port, NULL);
	return NULL;
}

static int connect6(int type, uint16_t port)
{
	int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6,
				   .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_which_addresses(void **state)
{
	assert_true(net_port_needs_proxy("::1"));
	assert_true(net_port_needs_proxy("0:0:0:0:0:0:0:1"));
	assert_false(net_port_needs_proxy("127.0.0.1"));
	assert_false(net_port_needs_proxy("::"));
	assert_false(net_port_needs_proxy("fd00::1"));
	assert_false(net_port_needs_proxy(""));
	assert_false(net_port_needs_proxy(NULL));
	assert_false(net_port_needs_proxy("[::1]"));
}

static void test_listen_errors(void **state)
{
	int fd = -1;
	struct berth_error *err = NULL;
	assert_int_equal(net_port_proxy_listen("sctp", "::1", 0, &fd, &err), -EOPNOTSUPP);
	err = berth_error_free(err);
	assert_int_equal(net_port_proxy_listen("tcp", "127.0.0.1", 0, &fd, NULL), -EINVAL);
	assert_int_equal(net_port_proxy_listen("tcp", "::1", 0, &fd, NULL), 0);
	uint16_t port = local_port(fd);
	int again = -1;
	assert_int_equal(net_port_proxy_listen("tcp", "::1", port, &again, &err), -EADDRINUSE);
	_cleanup_free_ char *m = berth_error_string(err);
	_cleanup_free_ char *want = xasprintf("bind for ::1:%u/tcp failed: port is already allocated", port);
	assert_string_equal(m, want);
	berth_error_free(err);
	assert_int_equal(again, -1);
	close(fd);
	/* a bad target is refused before serving */
	assert_int_equal(net_port_proxy_serve(-1, "tcp", "not-an-ip", 80, NULL), -EINVAL);
	assert_int_equal(net_port_proxy_serve(-1, "sctp", "127.0.0.1", 80, NULL), -EOPNOTSUPP);
}

static void test_tcp_relay_with_half_close(void **state)
{
	uint16_t bport;
	int b = backend(SOCK_STREAM, &bport);
	pthread_t bt, pt;
	assert_int_equal(pthread_create(&bt, NULL, tcp_backend_main, (void *)(intptr_t)b), 0);
	static struct proxy p = { .proto = "tcp" };
	p.to_port = bport;
	assert_int_equal(net_port_proxy_listen("tcp", "::1", 0, &p.fd, NULL), 0);
	assert_int_equal(pthread_create(&pt, NULL, proxy_main, &p), 0);
	pthread_detach(pt); /* serves until the process ends */
	int c = connect6(SOCK_STREAM, local_port(p.fd));
	assert_int_equal(write(c, "hello", 5), 5);
	/* the backend answers only after our EOF: the half-close must pass through */
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	char buf[64];
	size_t n = 0;
	ssize_t r;
	while ((r = read(c, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	assert_string_equal(buf, "got:hello");
	close(c);
	pthread_join(bt, NULL);
	close(b);
}

static void test_udp_relay(void **state)
{
	uint16_t bport;
	int b = backend(SOCK_DGRAM, &bport);
	pthread_t bt, pt;
	assert_int_equal(pthread_create(&bt, NULL, udp_backend_main, (void *)(intptr_t)b), 0);
	static struct proxy p = { .proto = "udp" };
	p.to_port = bport;
	assert_int_equal(net_port_proxy_listen("udp", "::1", 0, &p.fd, NULL), 0);
	assert_int_equal(pthread_create(&pt, NULL, proxy_main, &p), 0);
	pthread_detach(pt);
	int c = connect6(SOCK_DGRAM, local_port(p.fd));
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(send(c, "ping", 4, 0), 4);
	char buf[16] = { 0 };
	assert_int_equal(recv(c, buf, sizeof(buf) - 1, 0), 4);
	assert_string_equal(buf, "PING");
	close(c);
	pthread_join(bt, NULL);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_which_addresses),
		cmocka_unit_test(test_listen_errors),
		cmocka_unit_test(test_tcp_relay_with_half_close),
		cmocka_unit_test(test_udp_relay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
