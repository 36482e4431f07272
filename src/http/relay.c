/*
 * relay.c - copy bytes both ways between two connected sockets until the
 * backend ends its stream (the hijacked attach/exec streams). Half-closes
 * are forwarded: the client's EOF becomes shutdown(backend, SHUT_WR) (stdin
 * closed), the backend's EOF ends the relay.
 */
#include <poll.h>
#include <sys/socket.h>

#include "common/fs.h"
#include "http/http.h"

#define RELAY_BUF (32 * 1024)

/* send(2) with MSG_NOSIGNAL: a vanished peer is an error, not a SIGPIPE. */
static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == ENOTSOCK)
			return fs_write_all(fd, p, n);
		if (w <= 0)
			return -EPIPE;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void http_relay(int client, int backend, const char *extra, size_t extra_len)
{
	char buf[RELAY_BUF];
	bool client_open = true;
	if (extra_len > 0 && send_all(backend, extra, extra_len) < 0)
		return;
	for (;;) {
		/* The client stays polled after its EOF: POLLHUP (both directions gone) ends the relay. */
		struct pollfd p[2] = { { backend, POLLIN, 0 }, { client, client_open ? POLLIN : 0, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents) {
			ssize_t n = read(backend, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || send_all(client, buf, (size_t)n) < 0) {
				shutdown(client, SHUT_WR);
				return;
			}
		}
		if (!client_open && (p[1].revents & (POLLHUP | POLLERR)))
			return;
		if (client_open && p[1].revents) {
			ssize_t n = read(client, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				client_open = false;
				shutdown(backend, SHUT_WR);
			} else if (send_all(backend, buf, (size_t)n) < 0) {
				client_open = false;
			}
		}
	}
}
