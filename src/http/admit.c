/*
 * admit.c - the server's own accept loop: a connection reaches
 * libmicrohttpd only once its first bytes look like an HTTP request line
 * (a method token and a space). Anything else (a TLS ClientHello, a stray
 * "hello\r\n", binary noise) is answered "400 Bad Request" and closed, as Go's
 * net/http (dockerd) does; libmicrohttpd alone closes without an answer or,
 * when no line end ever comes, keeps the connection open for good.
 *
 * One thread polls the listening socket and the connections that have not
 * sent anything yet; a connection leaves that set at its first readable
 * event, so nothing is polled twice for the same bytes (no busy loop). A
 * client that has sent only part of a method token so far is handed to the
 * server unjudged: it is either slow or HTTP, and libmicrohttpd copes.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "common/fs.h"
#include "common/process.h"
#include "common/util.h"
#include "http/admit.h"

/* Connections waiting for their first bytes; beyond that, new ones go straight to the server. */
#define ADMIT_MAX_PENDING 256

struct http_admit {
	struct http_server *srv;
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	unsigned timeout_s;
	size_t n;
	int pending[ADMIT_MAX_PENDING];
	int64_t since[ADMIT_MAX_PENDING]; /* ms, accepted at */
};

static bool is_tchar(unsigned char c)
{
	/* RFC 9110 token characters */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

enum http_first_bytes http_first_bytes_classify(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i = 0;
	while (i < len && i < HTTP_METHOD_MAX && is_tchar(p[i]))
		i++;
	if (i == HTTP_METHOD_MAX)
		return HTTP_FIRST_NOT_HTTP;
	if (i == len)
		return HTTP_FIRST_NEED_MORE;
	return i > 0 && p[i] == ' ' ? HTTP_FIRST_HTTP : HTTP_FIRST_NOT_HTTP;
}

void http_refuse_fd(int fd, const char *status, const char *ctype, const char *body)
{
	char resp[512];
	int n = snprintf(
	    resp, sizeof(resp),
	    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n%s", status,
	    ctype, body ? strlen(body) : 0, startswith(status, "503") ? "Retry-After: 1\r\n" : "",
	    body ? body : "");
	if (n > 0)
		(void)send(fd, resp, MIN((size_t)n, sizeof(resp) - 1), MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	/* Unread input makes the close a reset (ECONNRESET before the client reads the answer):
	 * discard what has arrived, within a bound. */
	char sink[4096];
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

static void hand_over(struct http_admit *a, int fd)
{
	_cleanup_error_ struct berth_error *err = NULL;
	(void)http_server_add_connection(a->srv, fd, NULL, 0, &err);
}

/* Judge a connection by the first bytes it sent (n from a peek: 0 hung up, < 0 errno). */
static void judge_peeked(struct http_admit *a, int fd, const char *buf, ssize_t n)
{
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		hand_over(a, fd);
		return;
	}
	if (n <= 0) { /* hung up without a word */
		close(fd);
		return;
	}
	if (http_first_bytes_classify(buf, (size_t)n) == HTTP_FIRST_NOT_HTTP)
		http_refuse_fd(fd, "400 Bad Request", "text/plain; charset=utf-8", "400 Bad Request");
	else
		hand_over(a, fd);
}

/* The first readable event of a pending connection: judge it. */
static void judge(struct http_admit *a, int fd)
{
	char buf[HTTP_METHOD_MAX + 1];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	judge_peeked(a, fd, buf, n);
}

/* Accept a connection; false when none is waiting. */
static bool accept_one(struct http_admit *a)
{
	int fd = accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return false;
	/* A client usually writes its request as soon as it is connected: when it is already
	 * here, judge it now rather than after another turn of the poll loop. */
	char buf[HTTP_METHOD_MAX + 1];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
		judge_peeked(a, fd, buf, n);
	} else if (a->n == ADMIT_MAX_PENDING) {
		hand_over(a, fd);
	} else {
		a->since[a->n] = proc_now_ms();
		a->pending[a->n++] = fd;
	}
	return true;
}

static void *admit_thread(void *arg)
{
	struct http_admit *a = arg;
	struct pollfd p[ADMIT_MAX_PENDING + 2];
	for (;;) {
		p[0] = (struct pollfd){ a->stop_pipe[0], POLLIN, 0 };
		p[1] = (struct pollfd){ a->listen_fd, POLLIN, 0 };
		for (size_t i = 0; i < a->n; i++)
			p[i + 2] = (struct pollfd){ a->pending[i], POLLIN | POLLRDHUP, 0 };
		/* a connection that sends nothing is closed after the header timeout */
		if (poll(p, a->n + 2, a->n ? 1000 : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		/* judge the ready ones, keep the rest in order */
		size_t kept = 0, n = a->n;
		int64_t now = proc_now_ms();
		for (size_t i = 0; i < n; i++) {
			if (p[i + 2].revents) {
				judge(a, a->pending[i]);
			} else if (now - a->since[i] > (int64_t)a->timeout_s * 1000) {
				close(a->pending[i]);
			} else {
				a->since[kept] = a->since[i];
				a->pending[kept++] = a->pending[i];
			}
		}
		a->n = kept;
		/* every client that is waiting (a burst of connections), within a bound per turn */
		for (int i = 0; p[1].revents && i < 64 && accept_one(a); i++)
			;
	}
	return NULL;
}

int http_admit_start(struct http_server *srv, int listen_fd, unsigned timeout_s, struct http_admit **ret,
		     struct berth_error **err)
{
	struct http_admit *a = xcalloc(1, sizeof(*a));
	a->srv = srv;
	a->timeout_s = timeout_s;
	a->listen_fd = listen_fd;
	if (pipe2(a->stop_pipe, O_CLOEXEC) < 0) {
		int r = berth_error_errno(err, "create pipe");
		free(a);
		return r;
	}
	int fl = fcntl(listen_fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK);
	if (pthread_create(&a->thread, NULL, admit_thread, a) != 0) {
		close(a->stop_pipe[0]);
		close(a->stop_pipe[1]);
		free(a);
		return berth_error_set(err, EAGAIN, "start the http accept thread");
	}
	*ret = a;
	return 0;
}

struct http_admit *http_admit_stop(struct http_admit *a)
{
	if (!a)
		return NULL;
	(void)fs_write_all(a->stop_pipe[1], "x", 1);
	pthread_join(a->thread, NULL);
	for (size_t i = 0; i < a->n; i++)
		close(a->pending[i]);
	close(a->stop_pipe[0]);
	close(a->stop_pipe[1]);
	free(a);
	return NULL;
}
