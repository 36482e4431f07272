/*
 * client.c - a shim stream client: output queued per client and sent with
 * non-blocking sends (a stalled client costs memory up to its limit, never
 * time), stdin forwarded through the detach-key filter.
 */
#include <poll.h>
#include <sys/socket.h>

#include "common/fs.h"
#include "common/util.h"
#include "shim/client.h"

/* Read size for a client's stdin; also the queue compaction threshold. */
#define CLIENT_BUF (32 * 1024)

size_t shim_outq_pending(const struct outq *q)
{
	return q->buf.len - q->off;
}

void shim_outq_done(struct outq *q)
{
	strbuf_release(&q->buf);
	q->off = 0;
}

/* Send what the socket takes now; -EPIPE when the peer is gone. */
int shim_outq_flush(int fd, struct outq *q)
{
	while (shim_outq_pending(q) > 0) {
		ssize_t w = send(fd, q->buf.buf + q->off, shim_outq_pending(q), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return -EPIPE;
		q->off += (size_t)w;
	}
	if (q->off == q->buf.len)
		shim_outq_done(q); /* give a burst's memory back */
	else if (q->off > CLIENT_BUF && q->off > q->buf.len / 2) {
		memmove(q->buf.buf, q->buf.buf + q->off, shim_outq_pending(q));
		strbuf_setlen(&q->buf, shim_outq_pending(q));
		q->off = 0;
	}
	return 0;
}

/* Send data after what is queued, queueing what the socket does not take; -ENOBUFS over limit. */
int shim_outq_send(int fd, struct outq *q, const char *data, size_t len, size_t limit)
{
	if (shim_outq_pending(q) + len > limit)
		return -ENOBUFS;
	strbuf_add(&q->buf, data, len);
	return shim_outq_flush(fd, q);
}

void shim_client_drop(struct client *c)
{
	c->fd = safe_close(c->fd);
	shim_outq_done(&c->q);
}

/* detach_keys of a request: an array of byte values (TTY streams only, as docker). */
void shim_request_detach_keys(const json_t *req, bool tty, struct detach_matcher *dm)
{
	const json_t *keys = json_object_get(req, "detach_keys");
	*dm = (struct detach_matcher){ 0 };
	if (!tty || !json_is_array(keys) || json_array_size(keys) > DETACH_KEYS_MAX)
		return;
	size_t i;
	json_t *k;
	json_array_foreach (keys, i, k) {
		json_int_t v = json_integer_value(k);
		if (!json_is_integer(k) || v < 0 || v > 255)
			return;
		dm->keys[i] = (unsigned char)v;
	}
	dm->n = json_array_size(keys);
}

/*
 * Stdin from a client: forward, or close the container's stdin at EOF when
 * "once" (not with a tty). The detach sequence closes the client's stream
 * and leaves the process and its stdin alone.
 */
void shim_client_input(struct client *c, int *in_fd, bool once, bool tty)
{
	char buf[CLIENT_BUF];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		c->in_eof = true;
		if (once && *in_fd >= 0 && !tty)
			*in_fd = safe_close(*in_fd);
		if (n < 0)
			shim_client_drop(c);
		return;
	}
	_cleanup_strbuf_ struct strbuf fwd = STRBUF_INIT;
	bool detach = detachkeys_matcher_feed(&c->dm, buf, (size_t)n, &fwd);
	if (*in_fd >= 0 && c->in && fwd.len > 0 && fs_write_all(*in_fd, fwd.buf, fwd.len) < 0)
		*in_fd = safe_close(*in_fd);
	if (detach)
		shim_client_drop(c);
}

/* Events of a client socket: stdin while it is open, POLLOUT while output is queued. */
short shim_client_events(const struct client *c, bool want_in)
{
	return (short)((want_in && !c->in_eof ? POLLIN : 0) | (shim_outq_pending(&c->q) ? POLLOUT : 0));
}

/* A client socket is ready: flush its queue, read its stdin. */
void shim_client_ready(struct client *c, short revents, int *in_fd, bool once, bool tty)
{
	if ((revents & POLLOUT) && shim_outq_flush(c->fd, &c->q) < 0) {
		shim_client_drop(c);
		return;
	}
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->in_eof)
		shim_client_input(c, in_fd, once, tty);
	else if ((revents & (POLLHUP | POLLERR)) && !(revents & POLLOUT))
		shim_client_drop(c);
}
