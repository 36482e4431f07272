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
	/* Asked on accept, before any TLS work; false closes the connection. NULL: always admitted.
	 * held: connections the loop holds without an owner (the fast path's, below). */
	bool (*admit)(void *userdata, unsigned held);
	/*
	 * A connection is ready. Plain TCP: fd is the accepted socket (taken over), ssl NULL; return -1.
	 * TLS: after the handshake, ssl is the session (SSL *, for the peer's certificate), fd -1; return
	 * a connected plain socket (taken over) whose bytes are the decrypted stream, or < 0 to drop
	 * the connection. Runs on the loop's thread: must not block.
	 */
	int (*ready)(void *userdata, void *ssl, int fd, const struct sockaddr *addr, socklen_t addr_len);
	/*
	 * Optional fast path (TLS only). A connection goes to ready() only when this passes it: until
	 * then what the client sends is offered here, data[0..len) being everything since the previous
	 * answer. Return TLS_QUICK_MORE to wait for more (within quick_idle_ms of the handshake or of the
	 * previous answer, else the connection closes), TLS_QUICK_PASS to hand the connection to ready()
	 * for good (these bytes go to the local socket first), or TLS_QUICK_ANSWER with *ret_out
	 * (malloc'd, taken) for the client; the connection then waits for its next request. Runs on the
	 * loop's thread: must not block.
	 */
	int (*quick)(void *userdata, void *ssl, const char *data, size_t len, char **ret_out,
		     size_t *ret_len);
	unsigned quick_idle_ms; /* 0: TLS_LOOP_QUICK_IDLE_MS */
	void *userdata;
};

enum { TLS_QUICK_MORE, TLS_QUICK_PASS, TLS_QUICK_ANSWER };
#define TLS_LOOP_QUICK_IDLE_MS 30000u
/* What a connection may send before the fast path passes it on whatever quick() says. */
#define TLS_LOOP_QUICK_MAX     (64u * 1024)

/* Serve listen_fd (taken over, closed on failure) in a new thread. */
int http_tls_loop_start(const struct tls_loop_opts *o, int listen_fd, struct tls_loop **ret,
			struct berth_error **err);
/*
 * Stop accepting and drop the handshakes in progress; no callback runs once this returns. The
 * established connections go on until both their ends finish (the owner's server closes its
 * ends when it stops), at most 30 s; the thread then ends and frees everything itself. Accepts
 * NULL.
 */
struct tls_loop *http_tls_loop_stop(struct tls_loop *l);

/* Counters for tests and logs. */
struct tls_loop_stats {
	unsigned handshaking, relaying, quick; /* quick: held by the fast path */
	unsigned long accepted, refused, handshake_failed, handshake_timeouts;
	unsigned long turns; /* epoll_wait returns */
	unsigned long quick_answers;
};
void http_tls_loop_get_stats(struct tls_loop *l, struct tls_loop_stats *ret);

#endif
