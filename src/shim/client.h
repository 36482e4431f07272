/*
 * client.h - the shim's stream clients (attach and exec connections): an
 * output queue per client written with non-blocking sends, stdin with the
 * detach-key filter. Private to the shim. Not thread-safe (the shim is
 * single-threaded).
 */
#ifndef BERTH_SHIM_CLIENT_H
#define BERTH_SHIM_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "common/strbuf.h"
#include "common/detachkeys.h"

/* Output queued for one attached client before it is dropped. */
#define SHIM_CLIENT_MAX_PENDING (4 << 20)

/* Bytes not yet sent to a client: buf[off..len). */
struct outq {
	struct strbuf buf;
	size_t off;
};

/* A stream connection. fd -1: gone (dropped or detached). */
struct client {
	int fd;
	bool in, out, err; /* forwards stdin; wants stdout; wants stderr */
	bool in_eof;       /* the client half-closed (no more stdin) */
	struct outq q;
	struct detach_matcher dm;
};

/* Bytes queued and not yet sent. */
size_t shim_outq_pending(const struct outq *q);
/* Forget the queue and free its memory. */
void shim_outq_done(struct outq *q);
/* Send what the socket takes now (never blocks); -EPIPE when the peer is gone. */
int shim_outq_flush(int fd, struct outq *q);
/* Queue data after what is pending and flush; -ENOBUFS (nothing queued) when over limit. */
int shim_outq_send(int fd, struct outq *q, const char *data, size_t len, size_t limit);

/* Close the client's connection and drop its queue (fd becomes -1). */
void shim_client_drop(struct client *c);
/* dm from the request's "detach_keys" (an array of byte values); TTY streams only, as docker. */
void shim_request_detach_keys(const json_t *req, bool tty, struct detach_matcher *dm);
/* poll() events for the client: POLLIN while want_in and stdin is open, POLLOUT while output is queued. */
short shim_client_events(const struct client *c, bool want_in);
/*
 * The client's socket is ready: flush its queue, read its stdin into *in_fd
 * (closed at the client's EOF when once, not with a tty; closed on write
 * errors). The detach keys drop the client and leave *in_fd alone.
 */
void shim_client_ready(struct client *c, short revents, int *in_fd, bool once, bool tty);

#endif
