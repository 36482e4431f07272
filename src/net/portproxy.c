/*
 * portproxy.c - userland forwarding of the published ports the kernel cannot DNAT:
 * an IPv6 loopback host address (`-p [::1]:8080:80`). IPv6 has no route_localnet, so
 * a packet from ::1 never leaves lo for a bridge: dockerd forwards these through
 * docker-proxy, and so does berth, with one process per mapping (`berth net-tool
 * port-proxy`) that outlives a daemon restart as the container does.
 *
 * The daemon binds the socket itself (a taken port fails the container's start with
 * docker's message, never later in a child) and hands it over as fd 3. TCP: a thread
 * per connection copies both ways with half-closes. UDP: one upstream socket per
 * client address, dropped after UDP_IDLE_S without traffic (docker-proxy: 90 s).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include "common/fs.h"
#include "common/process.h"
#include "common/util.h"
#include "net/internal.h"

#define UDP_IDLE_S    90
#define UDP_CLIENTS   1024
#define RELAY_BUF     (64u << 10)
#define UDP_DGRAM_MAX 65536

bool net_port_needs_proxy(const char *host_ip)
{
	struct in6_addr a;
	return host_ip && inet_pton(AF_INET6, host_ip, &a) == 1 && IN6_IS_ADDR_LOOPBACK(&a);
}

static int sock_type(const char *proto, struct berth_error **err)
{
	if (streq(proto, "tcp"))
		return SOCK_STREAM;
	if (streq(proto, "udp"))
		return SOCK_DGRAM;
	return berth_error_msg(err, EOPNOTSUPP, "publishing %s on an IPv6 loopback address is not supported",
			       proto);
}

int net_port_proxy_listen(const char *proto, const char *host_ip, uint16_t port, int *ret_fd,
			  struct berth_error **err)
{
	int type = sock_type(proto, err);
	if (type < 0)
		return type;
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	if (inet_pton(AF_INET6, host_ip, &sa.sin6_addr) != 1)
		return berth_error_msg(err, EINVAL, "invalid host address '%s'", host_ip);
	_cleanup_close_ int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "socket");
	int one = 1;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EADDRINUSE) /* as net_ports_allocate() words it */
			return berth_error_msg(err, EADDRINUSE,
					       "bind for %s:%u/%s failed: port is already allocated", host_ip,
					       port, proto);
		return berth_error_errno(err, "bind [%s]:%u", host_ip, port);
	}
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		return berth_error_errno(err, "listen [%s]:%u", host_ip, port);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int parse_target(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len,
			struct berth_error **err)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	return berth_error_msg(err, EINVAL, "invalid target address '%s'", ip);
}

/* ---- TCP ---- */

struct tcp_conn {
	int client;
	struct sockaddr_storage to;
	socklen_t to_len;
};

/* Copy both ways until both directions ended; each EOF is passed on as shutdown(SHUT_WR). */
static void relay(int a, int b)
{
	_cleanup_free_ char *buf = xmalloc(RELAY_BUF);
	const int fds[2] = { a, b };
	struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
	int open_dirs = 2;
	while (open_dirs > 0 && poll(p, 2, -1) >= 0) {
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(fds[i], buf, RELAY_BUF);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			int out = fds[1 - i];
			if (n <= 0) { /* EOF (or reset): this direction is done */
				shutdown(out, SHUT_WR);
				p[i].fd = -1; /* poll ignores it from now on */
				open_dirs--;
				if (n < 0)
					return;
				continue;
			}
			if (fs_write_all(out, buf, (size_t)n) < 0)
				return;
		}
	}
}

static void *tcp_conn_main(void *arg)
{
	struct tcp_conn *c = arg;
	int up = socket(c->to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (up >= 0 && connect(up, (struct sockaddr *)&c->to, c->to_len) == 0)
		relay(c->client, up);
	if (up >= 0)
		close(up);
	close(c->client);
	free(c);
	return NULL;
}

static int serve_tcp(int fd, const struct sockaddr_storage *to, socklen_t to_len, struct berth_error **err)
{
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 128 * 1024);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
				continue;
			pthread_attr_destroy(&at);
			return berth_error_errno(err, "accept");
		}
		struct tcp_conn *conn = xmalloc(sizeof(*conn));
		*conn = (struct tcp_conn){ .client = c, .to = *to, .to_len = to_len };
		pthread_t t;
		if (pthread_create(&t, &at, tcp_conn_main, conn) != 0) {
			close(c);
			free(conn);
		}
	}
}

/* ---- UDP ---- */

struct udp_client {
	struct sockaddr_in6 addr; /* the client, on the listening socket */
	int up;                   /* connected to the target; -1: free slot */
	int64_t last_ms;
};

static struct udp_client *udp_find(struct udp_client *v, size_t n, const struct sockaddr_in6 *a)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].up >= 0 && v[i].addr.sin6_port == a->sin6_port &&
		    !memcmp(&v[i].addr.sin6_addr, &a->sin6_addr, sizeof(a->sin6_addr)))
			return &v[i];
	return NULL;
}

/* A slot for a new client: a free one, else the longest idle one (closed). */
static struct udp_client *udp_slot(struct udp_client *v, size_t n)
{
	struct udp_client *oldest = &v[0];
	for (size_t i = 0; i < n; i++) {
		if (v[i].up < 0)
			return &v[i];
		if (v[i].last_ms < oldest->last_ms)
			oldest = &v[i];
	}
	close(oldest->up);
	oldest->up = -1;
	return oldest;
}

static void udp_from_client(int fd, struct udp_client *v, size_t n, const struct sockaddr_storage *to,
			    socklen_t to_len, char *buf)
{
	struct sockaddr_in6 from;
	socklen_t fl = sizeof(from);
	ssize_t len = recvfrom(fd, buf, UDP_DGRAM_MAX, 0, (struct sockaddr *)&from, &fl);
	if (len < 0)
		return;
	struct udp_client *c = udp_find(v, n, &from);
	if (!c) {
		int up = socket(to->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (up < 0)
			return;
		if (connect(up, (const struct sockaddr *)to, to_len) < 0) {
			close(up);
			return;
		}
		c = udp_slot(v, n);
		c->addr = from;
		c->up = up;
	}
	c->last_ms = proc_now_ms();
	(void)send(c->up, buf, (size_t)len, 0);
}

static int serve_udp(int fd, const struct sockaddr_storage *to, socklen_t to_len, struct berth_error **err)
{
	_cleanup_free_ struct udp_client *v = xcalloc(UDP_CLIENTS, sizeof(*v));
	_cleanup_free_ struct pollfd *p = xcalloc(UDP_CLIENTS + 1, sizeof(*p));
	_cleanup_free_ char *buf = xmalloc(UDP_DGRAM_MAX);
	for (size_t i = 0; i < UDP_CLIENTS; i++)
		v[i].up = -1;
	for (;;) {
		p[0] = (struct pollfd){ .fd = fd, .events = POLLIN };
		for (size_t i = 0; i < UDP_CLIENTS; i++)
			p[i + 1] = (struct pollfd){ .fd = v[i].up, .events = POLLIN };
		if (poll(p, UDP_CLIENTS + 1, 1000) < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_errno(err, "poll");
		}
		int64_t now = proc_now_ms();
		for (size_t i = 0; i < UDP_CLIENTS; i++) {
			if (v[i].up < 0)
				continue;
			if (p[i + 1].revents & POLLIN) {
				ssize_t len = recv(v[i].up, buf, UDP_DGRAM_MAX, 0);
				if (len >= 0) {
					(void)sendto(fd, buf, (size_t)len, 0, (struct sockaddr *)&v[i].addr,
						     sizeof(v[i].addr));
					v[i].last_ms = now;
				}
			} else if (now - v[i].last_ms > UDP_IDLE_S * 1000) {
				close(v[i].up);
				v[i].up = -1;
			}
		}
		if (p[0].revents & POLLIN)
			udp_from_client(fd, v, UDP_CLIENTS, to, to_len, buf);
	}
}

int net_port_proxy_serve(int fd, const char *proto, const char *to_ip, uint16_t to_port,
			 struct berth_error **err)
{
	struct sockaddr_storage to;
	socklen_t to_len = 0;
	int type = sock_type(proto, err);
	if (type < 0)
		return type;
	int r = parse_target(to_ip, to_port, &to, &to_len, err);
	if (r < 0)
		return r;
	signal(SIGPIPE, SIG_IGN);
	return type == SOCK_STREAM ? serve_tcp(fd, &to, to_len, err) : serve_udp(fd, &to, to_len, err);
}
