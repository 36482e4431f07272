/*
 * fuzz-http-request.c - raw bytes on a connection to the real http/server.c
 * (libmicrohttpd, our request-target and framing checks): the input is what a
 * client sends. Oracle: a request line whose target encodes a NUL byte ("%00")
 * or whose head carries conflicting framing never reaches the handler; the
 * server never crashes and always ends the exchange.
 */
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/util.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Atomic int handled;

static void handler(struct http_request *req, void *userdata)
{
	(void)userdata;
	handled = 1;
	http_respond(req, 200, "text/plain", xstrdup("ok"), 2);
}

static struct http_server *server(void)
{
	static struct http_server *srv;
	if (!srv) {
		struct http_server_opts o = { .listen_fd = -1, .handler = handler, .max_body = 4096 };
		if (http_server_start(&o, &srv, NULL) < 0)
			__builtin_trap();
	}
	return srv;
}

/* The target of the input's first request line, if it has one. */
static char *first_target(const uint8_t *data, size_t size)
{
	const char *p = memchr(data, ' ', size);
	if (!p)
		return NULL;
	const char *end = memchr(p + 1, ' ', size - (size_t)(p + 1 - (const char *)data));
	const char *nl = memchr(data, '\n', size);
	if (!end || (nl && nl < end))
		return NULL;
	return xstrndup(p + 1, (size_t)(end - p - 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16 * 1024)
		return 0;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return 0;
	handled = 0;
	if (http_server_add_connection(server(), sp[0], NULL, 0, NULL) < 0) {
		close(sp[1]);
		return 0;
	}
	(void)send(sp[1], data, size, MSG_NOSIGNAL);
	shutdown(sp[1], SHUT_WR);
	char buf[4096];
	for (;;) {
		struct pollfd p = { sp[1], POLLIN, 0 };
		if (poll(&p, 1, 5000) <= 0)
			__builtin_trap(); /* the server neither answered nor closed */
		if (recv(sp[1], buf, sizeof(buf), 0) <= 0)
			break;
	}
	close(sp[1]);
	_cleanup_free_ char *target = first_target(data, size);
	if (handled && target && util_http_target_check(target) < 0)
		__builtin_trap(); /* a NUL-encoding target reached the handler */
	return 0;
}
