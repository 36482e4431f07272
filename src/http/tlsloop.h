/*
 * tlsloop.h - one thread that accepts a TCP listener's connections and
 * terminates TLS for all of them: non-blocking OpenSSL handshakes, reads and
 * writes in one epoll loop, each decrypted stream relayed to a plain socket
 * its owner provides (the HTTP server's end of a socketpair). No thread per
 * connection; an idle connection costs its SSL object and nothing else
 * (buffers are released while idle). docs/engine.md "TLS".
 *
 * Per connection: the handshake must complete within handshake_ms in total
 * (a client trickling bytes cannot stretch it), at most max_handshakes run
 * at once (beyond: closed at accept), admit() is asked before any TLS work.
 * Half-closes go both ways: the peer's close_notify (or EOF) becomes
 * shutdown(local, SHUT_WR), local's EOF becomes close_notify; once our side
 * has sent close_notify the peer gets linger_ms to finish its side.
 */
#ifndef BERTH_HTTP_TLSLOOP_H
#define BERTH_HTTP_TLSLOOP_H

#include <stdbool.h>
#include <sys/socket.h>

#include "common/error.h"

#define TLS_LOOP_HANDSHAKE_MS  10000u
#define TLS_LOOP_MAX_HANDSHAKE 128u
#define TLS_LOOP_LINGER_MS     5000u

struct tls_loop;

struct tls_loop_opts {
	void *ssl_ctx;           /* SSL_CTX * (a reference is taken); NULL: plain TCP, no relay */
	unsigned handshake_ms;   /* 0: TLS_LOOP_HANDSHAKE_MS */
	unsigned max_handshakes; /* 0: TLS_LOOP_MAX_HANDSHAKE */
	unsigned linger_ms;      /* 0: TLS_LOOP_LINGER_MS */
	/* Asked on accept, before any TLS work; false closes the connection. NULL: always admitted. */
	bool (*admit)(void *userdata);
	/*
	 * A connection is ready. Plain TCP: fd is the accepted socket (taken over), ssl NULL; return -1.
	 * TLS: after the handshake, ssl is the session (SSL *, for the peer's certificate), fd -1; return
	 * a connected plain socket (taken over) whose bytes are the decrypted stream, or < 0 to drop
	 * the connection. Runs on the loop's thread: must not block.
	 */
	int (*ready)(void *userdata, void *ssl, int fd, const struct sockaddr *addr, socklen_t addr_len);
	void *userdata;
};

/* Serve listen_fd (taken over, closed on failure) in a new thread. */
int tls_loop_start(const struct tls_loop_opts *o, int listen_fd, struct tls_loop **ret,
		   struct berth_error **err);
/*
 * Stop accepting and drop the handshakes in progress; no callback runs once this returns. The
 * established connections go on until both their ends finish (the owner's server closes its
 * ends when it stops), at most 30 s; the thread then ends and frees everything itself. Accepts
 * NULL.
 */
struct tls_loop *tls_loop_stop(struct tls_loop *l);

/* Counters for tests and logs. */
struct tls_loop_stats {
	unsigned handshaking, relaying;
	unsigned long accepted, refused, handshake_failed, handshake_timeouts;
	unsigned long turns; /* epoll_wait returns */
};
void tls_loop_get_stats(struct tls_loop *l, struct tls_loop_stats *ret);

#endif
