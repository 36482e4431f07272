/*
 * tlsloop.c - TLS for every connection of a listener in one epoll thread
 * (tlsloop.h).
 *
 * Each connection is a small state machine over two non-blocking sockets,
 * net (the client, TLS) and local (the server's plain end). Epoll is
 * level-triggered and each socket's interest is recomputed after every
 * step, so a socket is only watched for what can make progress: net for
 * reading while the peer may still send and nothing decrypted waits for
 * local; for writing while OpenSSL waits to flush; local likewise. A socket
 * that hung up is closed or ends the connection at once (epoll reports a
 * hangup whatever the interest, so leaving it registered would spin).
 *
 * Data normally passes through one shared scratch buffer: SSL_read into it,
 * send() it on; only the part a full socket did not take is copied into a
 * per-connection buffer, and that direction stops reading until it drains.
 * SSL_MODE_RELEASE_BUFFERS lets OpenSSL drop its record buffers while a
 * connection idles.
 *
 * Deadlines: a handshake ends within handshake_ms of the accept, and a
 * connection whose close_notify went out ends within linger_ms. Each kind
 * is a FIFO list (all of one kind have the same duration, so the head is the
 * earliest), checked every loop turn.
 */
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "http/tlsexit.h"
#include "http/tlsloop.h"

/* One TLS record's worth of plaintext. */
#define SCRATCH           (16 * 1024)
#define MAX_EVENTS        64
#define TAG_LISTEN        0u
#define TAG_STOP          1u
#define TAG_LOCAL         1u /* low bit of a connection's pointer: the event is local's */
/* After http_tls_loop_stop(), established connections get this long to end (the server's stop waits
 * 15 s for its handlers, then the client gets its linger). */
#define TLS_LOOP_DRAIN_MS 30000

/* L_QUICK: handshake done, no owner yet: requests are offered to the fast path (opts.quick) */
enum list_kind { L_NONE, L_HANDSHAKE, L_QUICK, L_RELAY, L_LINGER, L_DEAD };

struct tconn {
	struct tconn *prev, *next;
	enum list_kind list;
	SSL *ssl;
	int net, local;
	int64_t deadline; /* ms (handshake or linger end) */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	bool net_in;     /* the peer may still send */
	bool local_in;   /* local may still send */
	bool local_shut; /* shutdown(local, SHUT_WR) done */
	bool local_gone; /* local takes nothing more: what the peer sends is dropped */
	bool local_hup;  /* local hung up: watched only while something is still to be read from it */
	bool want_close_notify, close_notify_sent;
	bool ssl_failed;           /* a fatal TLS error: no SSL_shutdown (OpenSSL forbids it) */
	uint32_t rd_wants;         /* SSL_read waits for this on net (EPOLLOUT: a key update to send) */
	uint32_t wr_wants;         /* SSL_write / SSL_shutdown wait for this on net */
	uint32_t hs_wants;         /* the handshake waits for this on net */
	uint32_t ev_net, ev_local; /* registered interests; local registered once >= 0 */
	bool local_registered;
	char *to_local; /* decrypted, not yet taken by local */
	size_t tl_off, tl_len;
	char *to_net; /* from local, not yet taken by SSL_write (retried with the same bytes) */
	size_t tn_off, tn_len;
	struct strbuf q; /* L_QUICK: what the client sent since the previous answer */
};

struct list {
	struct tconn *head, *tail;
};

struct tls_loop {
	struct tls_loop_opts o;
	int listen_fd, ep;
	int stop_pipe[2];
	pthread_t thread;
	/* http_tls_loop_stop(): no more accepts nor callbacks (acked), relays drain until drain_until */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stopping, stop_acked;
	int refs; /* the thread's and http_tls_loop_stop()'s: the last one frees (under mu) */
	int64_t drain_until;
	struct tls_thread *exit; /* TLS loops: the process's exit waits for this thread (tlsexit.h) */
	struct list lists[L_DEAD + 1];
	unsigned n[L_DEAD + 1];
	char scratch[SCRATCH];
	atomic_uint st_handshaking, st_relaying, st_quick;
	atomic_ulong st_accepted, st_refused, st_hs_failed, st_hs_timeouts, st_turns, st_quick_answers;
};

static void list_del(struct tls_loop *l, struct tconn *c)
{
	struct list *L = &l->lists[c->list];
	if (c->prev)
		c->prev->next = c->next;
	else
		L->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		L->tail = c->prev;
	c->prev = c->next = NULL;
	l->n[c->list]--;
	c->list = L_NONE;
}

static void list_move(struct tls_loop *l, struct tconn *c, enum list_kind to)
{
	if (c->list != L_NONE)
		list_del(l, c);
	struct list *L = &l->lists[to];
	c->prev = L->tail;
	if (L->tail)
		L->tail->next = c;
	else
		L->head = c;
	L->tail = c;
	c->list = to;
	l->n[to]++;
	atomic_store(&l->st_handshaking, l->n[L_HANDSHAKE]);
	atomic_store(&l->st_relaying, l->n[L_RELAY] + l->n[L_LINGER]);
	atomic_store(&l->st_quick, l->n[L_QUICK]);
}

static bool set_interest(struct tls_loop *l, int fd, uint32_t *cur, uint32_t want, uint64_t tag, bool add)
{
	if (!add && *cur == want)
		return true;
	struct epoll_event ev = { .events = want, .data.u64 = tag };
	if (epoll_ctl(l->ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) < 0)
		return false;
	*cur = want;
	return true;
}

/* local is of no more use (closed both ways, or failed): close it; the peer gets close_notify. */
static void close_local(struct tls_loop *l, struct tconn *c)
{
	if (c->local < 0)
		return;
	if (c->local_registered)
		(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, c->local, NULL);
	close(c->local);
	c->local = -1;
	c->local_registered = false;
	c->local_in = false;
	c->local_gone = c->local_shut = true;
	c->want_close_notify = true;
	free(c->to_local);
	c->to_local = NULL;
	c->tl_len = c->tl_off = 0;
}

/* The connection ends: it leaves the epoll set now and is freed after the current batch of events. */
static void conn_kill(struct tls_loop *l, struct tconn *c)
{
	if (c->list == L_DEAD)
		return;
	if (c->net >= 0) {
		(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, c->net, NULL);
		if (c->ssl && !c->close_notify_sent && !c->ssl_failed && c->list != L_HANDSHAKE) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl); /* best effort: non-blocking */
			ERR_clear_error(); /* what it queued must not reach another connection's call */
		}
		shutdown(c->net, SHUT_WR);
		close(c->net);
		c->net = -1;
	}
	close_local(l, c);
	list_move(l, c, L_DEAD);
}

static void conn_free(struct tconn *c)
{
	SSL_free(c->ssl);
	free(c->to_local);
	free(c->to_net);
	strbuf_release(&c->q);
	free(c);
}

static void reap(struct tls_loop *l)
{
	struct tconn *c;
	while ((c = l->lists[L_DEAD].head)) {
		list_del(l, c);
		conn_free(c);
	}
}

static void log_ssl_failure(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "connection closed";
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	log_fields(LOG_LEVEL_DEBUG, what, "error", buf, NULL);
}

/* ---- net -> local ---- */

/* Hand p[0..n) to local; what it does not take waits in to_local. */
static void give_local(struct tconn *c, const char *p, size_t n)
{
	if (c->local_gone)
		return; /* dropped */
	while (n > 0) {
		ssize_t w = send(c->local, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0) {
			c->local_gone = true;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
	if (n) {
		c->to_local = xrealloc(c->to_local, n);
		memcpy(c->to_local, p, n);
		c->tl_off = 0;
		c->tl_len = n;
	}
}

static void flush_local(struct tconn *c)
{
	const char *p = c->to_local + c->tl_off;
	size_t n = c->tl_len - c->tl_off;
	c->tl_len = c->tl_off = 0; /* give_local keeps the rest anew */
	_cleanup_free_ char *old = c->to_local;
	c->to_local = NULL;
	give_local(c, p, n);
}

/* SSL_read until it would block, local is full, or the peer ended; false: the connection failed. */
static bool read_net(struct tls_loop *l, struct tconn *c)
{
	c->rd_wants = 0;
	while (c->net_in && c->tl_len == 0) {
		ERR_clear_error(); /* SSL_get_error reads the thread's queue: one queue, every connection */
		int n = SSL_read(c->ssl, l->scratch, sizeof(l->scratch));
		if (n > 0) {
			give_local(c, l->scratch, (size_t)n);
			continue;
		}
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return true;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->rd_wants = EPOLLOUT;
			return true;
		}
		c->net_in = false; /* close_notify, EOF, or an error: nothing more comes */
		if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL) {
			c->ssl_failed = true;
			log_ssl_failure("TLS read failed");
			return false;
		}
		c->ssl_failed = e == SSL_ERROR_SYSCALL;
		ERR_clear_error();
	}
	return true;
}

/* ---- local -> net ---- */

/* SSL_write p[0..n); the part not taken waits in to_net. false: the connection failed. */
static bool give_net(struct tconn *c, const char *p, size_t n)
{
	c->wr_wants = 0;
	while (n > 0) {
		ERR_clear_error();
		int w = SSL_write(c->ssl, p, (int)MIN(n, (size_t)INT_MAX));
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		int e = SSL_get_error(c->ssl, w);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
			c->ssl_failed = true;
			log_ssl_failure("TLS write failed");
			return false;
		}
		c->wr_wants = e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
		break;
	}
	if (n) {
		if (c->to_net != p) {
			char *buf = xmalloc(n);
			memcpy(buf, p, n); /* before freeing: p may point into the old buffer */
			free(c->to_net);
			c->to_net = buf;
		}
		c->tn_off = 0;
		c->tn_len = n;
	} else {
		free(c->to_net);
		c->to_net = NULL;
		c->tn_off = c->tn_len = 0;
	}
	return true;
}

static bool flush_net(struct tconn *c)
{
	/* the retry passes the same bytes (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows a new address) */
	const char *p = c->to_net + c->tn_off;
	return give_net(c, p, c->tn_len - c->tn_off);
}

/* recv from local and encrypt until it would block or ends. false: the connection failed. */
static bool read_local(struct tls_loop *l, struct tconn *c)
{
	while (c->local_in && c->tn_len == 0) {
		ssize_t n = recv(c->local, l->scratch, sizeof(l->scratch), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0) { /* local is done sending: close_notify once the rest went out */
			c->local_in = false;
			c->want_close_notify = true;
			return true;
		}
		if (!give_net(c, l->scratch, (size_t)n))
			return false;
	}
	return true;
}

static bool send_close_notify(struct tls_loop *l, struct tconn *c, int64_t now)
{
	c->wr_wants = 0; /* a writable socket stays reported: wanted only while SSL waits for it */
	if (c->ssl_failed)
		return false;
	ERR_clear_error();
	int r = SSL_shutdown(c->ssl);
	if (r < 0) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			c->wr_wants = e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN;
			return true;
		}
		ERR_clear_error();
		c->ssl_failed = true;
		return false;
	}
	c->close_notify_sent = true;
	c->deadline = now + l->o.linger_ms; /* the peer gets this long to finish */
	list_move(l, c, L_LINGER);
	return true;
}

/* ---- one connection's turn ---- */

static void update_interest(struct tls_loop *l, struct tconn *c)
{
	uint64_t tag = (uint64_t)(uintptr_t)c;
	uint32_t net = c->wr_wants | c->rd_wants;
	if (c->net_in && c->tl_len == 0 && !c->rd_wants)
		net |= EPOLLIN;
	set_interest(l, c->net, &c->ev_net, net, tag, false);
	if (c->local < 0)
		return;
	uint32_t loc = 0;
	if (c->local_in && c->tn_len == 0)
		loc |= EPOLLIN;
	if (c->tl_len)
		loc |= EPOLLOUT;
	/* a hung-up socket is reported whatever the interest: out of the set while nothing is wanted */
	bool reg = !(c->local_hup && !loc);
	if (reg && !c->local_registered)
		c->local_registered = set_interest(l, c->local, &c->ev_local, loc, tag | TAG_LOCAL, true);
	else if (reg)
		(void)set_interest(l, c->local, &c->ev_local, loc, tag | TAG_LOCAL, false);
	else if (c->local_registered) {
		(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, c->local, NULL);
		c->local_registered = false;
	}
}

/* Progress both directions as far as the sockets allow; net_ev/local_ev: what epoll reported. */
static void relay_step(struct tls_loop *l, struct tconn *c, uint32_t net_ev, uint32_t local_ev, int64_t now)
{
	/* the peer can receive nothing more (reset, or closed both ways): the connection is over */
	if (net_ev & (EPOLLHUP | EPOLLERR))
		return conn_kill(l, c);
	if (local_ev & EPOLLERR)
		close_local(l, c);
	if (local_ev & EPOLLHUP) /* closed both ways: what it sent is still read, then it is closed */
		c->local_hup = true;
	/* local -> net first: it may unblock an SSL_write that waits for a read, and vice versa below */
	if (c->tn_len && (net_ev & (EPOLLIN | EPOLLOUT)) && !flush_net(c))
		return conn_kill(l, c);
	if (c->tl_len && (local_ev & EPOLLOUT))
		flush_local(c);
	bool readable = (net_ev & EPOLLIN) || (c->rd_wants && (net_ev & EPOLLOUT)) || SSL_pending(c->ssl) > 0;
	if ((readable || (local_ev & EPOLLOUT)) && !read_net(l, c))
		return conn_kill(l, c);
	if ((local_ev & (EPOLLIN | EPOLLHUP)) && c->local >= 0 && !read_local(l, c))
		return conn_kill(l, c);
	if (c->local_hup && !c->local_in)
		close_local(l, c);
	if (!c->net_in && !c->tl_len && !c->local_shut && c->local >= 0) {
		shutdown(c->local, SHUT_WR);
		c->local_shut = true;
	}
	if (c->want_close_notify && !c->close_notify_sent && !c->tn_len && !send_close_notify(l, c, now))
		return conn_kill(l, c);
	/* the end: both directions finished */
	if (!c->net_in && !c->local_in && c->close_notify_sent && !c->tn_len && !c->tl_len)
		return conn_kill(l, c);
	update_interest(l, c);
}

/* The connection goes to its owner (ready()) for good, with what the fast path read of it. */
static void hand_over(struct tls_loop *l, struct tconn *c, int64_t now)
{
	int local = l->o.ready(l->o.userdata, c->ssl, -1, (struct sockaddr *)&c->addr, c->addr_len);
	if (local < 0)
		return conn_kill(l, c);
	int fl = fcntl(local, F_GETFL);
	if (fl >= 0)
		(void)fcntl(local, F_SETFL, fl | O_NONBLOCK);
	c->local = local;
	c->net_in = c->local_in = true;
	c->deadline = 0;
	list_move(l, c, L_RELAY);
	if (c->q.len)
		give_local(c, c->q.buf, c->q.len);
	strbuf_release(&c->q);
	/* the client may have sent (more of) its request already: SSL holds it */
	relay_step(l, c, EPOLLIN, 0, now);
}

/*
 * L_QUICK: read what the client sends and offer it to opts.quick until that answers (write the answer,
 * wait for the next request) or passes (hand_over). One answer is written at a time: nothing more is
 * read while one waits for the socket.
 */
static void quick_step(struct tls_loop *l, struct tconn *c, uint32_t net_ev, int64_t now)
{
	if (net_ev & (EPOLLHUP | EPOLLERR))
		return conn_kill(l, c);
	if (c->tn_len && !flush_net(c))
		return conn_kill(l, c);
	c->rd_wants = 0;
	while (!c->tn_len) {
		ERR_clear_error();
		int n = SSL_read(c->ssl, l->scratch, sizeof(l->scratch));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				break;
			if (e == SSL_ERROR_WANT_WRITE) {
				c->rd_wants = EPOLLOUT;
				break;
			}
			/* close_notify or EOF between requests: the connection ends */
			c->ssl_failed = e != SSL_ERROR_ZERO_RETURN;
			if (c->ssl_failed && e != SSL_ERROR_SYSCALL)
				log_ssl_failure("TLS read failed");
			ERR_clear_error();
			return conn_kill(l, c);
		}
		strbuf_add(&c->q, l->scratch, (size_t)n);
		char *out = NULL;
		size_t out_len = 0;
		int r = c->q.len > TLS_LOOP_QUICK_MAX
			    ? TLS_QUICK_PASS
			    : l->o.quick(l->o.userdata, c->ssl, c->q.buf, c->q.len, &out, &out_len);
		if (r == TLS_QUICK_PASS)
			return hand_over(l, c, now);
		if (r != TLS_QUICK_ANSWER)
			continue;
		atomic_fetch_add_explicit(&l->st_quick_answers, 1, memory_order_relaxed);
		strbuf_reset(&c->q);
		bool ok = give_net(c, out, out_len);
		free(out);
		if (!ok)
			return conn_kill(l, c);
		c->deadline = now + l->o.quick_idle_ms; /* the next request's time starts now */
		list_move(l, c, L_QUICK);               /* to the tail: the list stays in deadline order */
		if (!SSL_has_pending(c->ssl))
			break; /* the next request wakes us (level-triggered): no read that would block */
	}
	uint32_t want = c->tn_len ? c->wr_wants : c->rd_wants ? c->rd_wants : EPOLLIN;
	set_interest(l, c->net, &c->ev_net, want ? want : EPOLLIN, (uint64_t)(uintptr_t)c, false);
}

static void handshake_step(struct tls_loop *l, struct tconn *c, int64_t now)
{
	ERR_clear_error();
	int r = SSL_do_handshake(c->ssl);
	if (r != 1) {
		int e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			c->hs_wants = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
			set_interest(l, c->net, &c->ev_net, c->hs_wants, (uint64_t)(uintptr_t)c, false);
			return;
		}
		atomic_fetch_add(&l->st_hs_failed, 1);
		log_ssl_failure("TLS handshake failed");
		return conn_kill(l, c);
	}
	c->hs_wants = 0;
	c->net_in = true;
	if (l->o.quick) {
		c->deadline = now + l->o.quick_idle_ms;
		list_move(l, c, L_QUICK);
		/* the client may have sent its request with its last handshake flight: SSL holds it already
		 */
		return quick_step(l, c, EPOLLIN, now);
	}
	hand_over(l, c, now);
}

/* ---- accept, deadlines, the loop ---- */

static void accept_one(struct tls_loop *l, int64_t now)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);
	int fd = accept4(l->listen_fd, (struct sockaddr *)&addr, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	atomic_fetch_add(&l->st_accepted, 1);
	/* answers leave in pieces (head, body, TLS records): without this, Nagle holds a piece until the
	 * client's delayed ACK, 40 ms per request/answer exchange */
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!l->o.ssl_ctx) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		(void)l->o.ready(l->o.userdata, NULL, fd, (struct sockaddr *)&addr, len);
		return;
	}
	/* the limits apply before any TLS work: a full server or a handshake flood costs nothing */
	if (l->n[L_HANDSHAKE] >= l->o.max_handshakes ||
	    (l->o.admit && !l->o.admit(l->o.userdata, l->n[L_QUICK]))) {
		atomic_fetch_add(&l->st_refused, 1);
		log_fields(LOG_LEVEL_DEBUG, "TLS connection refused: connection or handshake limit reached",
			   NULL);
		close(fd);
		return;
	}
	SSL *ssl = SSL_new(l->o.ssl_ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	SSL_set_accept_state(ssl);
	SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	struct tconn *c = xcalloc(1, sizeof(*c));
	c->ssl = ssl;
	c->net = fd;
	strbuf_init(&c->q, 0);
	c->local = -1;
	c->addr = addr;
	c->addr_len = len;
	c->deadline = now + l->o.handshake_ms;
	list_move(l, c, L_HANDSHAKE);
	set_interest(l, fd, &c->ev_net, EPOLLIN, (uint64_t)(uintptr_t)c, true);
}

static void expire(struct tls_loop *l, int64_t now)
{
	struct tconn *c;
	while ((c = l->lists[L_HANDSHAKE].head) && c->deadline <= now) {
		atomic_fetch_add(&l->st_hs_timeouts, 1);
		log_fields(LOG_LEVEL_DEBUG, "TLS handshake timed out", "action", "connection closed", NULL);
		conn_kill(l, c);
	}
	while ((c = l->lists[L_QUICK].head) && c->deadline <= now) {
		log_fields(LOG_LEVEL_DEBUG, "http: request headers too slow", "action", "connection closed",
			   NULL);
		conn_kill(l, c);
	}
	while ((c = l->lists[L_LINGER].head) && c->deadline <= now)
		conn_kill(l, c);
}

static int next_timeout(struct tls_loop *l, int64_t now)
{
	int64_t t = l->stopping ? l->drain_until : -1;
	for (enum list_kind k = L_HANDSHAKE; k <= L_LINGER; k++) {
		struct tconn *c = l->lists[k].head;
		if (c && c->deadline && (t < 0 || c->deadline < t))
			t = c->deadline;
	}
	return t < 0 ? -1 : t <= now ? 0 : (int)MIN(t - now, (int64_t)INT_MAX);
}

static void dispatch(struct tls_loop *l, const struct epoll_event *ev, int64_t now)
{
	struct tconn *c = (struct tconn *)(uintptr_t)(ev->data.u64 & ~(uint64_t)TAG_LOCAL);
	bool is_local = ev->data.u64 & TAG_LOCAL;
	if (c->list == L_DEAD)
		return;
	if (c->list == L_HANDSHAKE) {
		if (ev->events & EPOLLERR)
			return conn_kill(l, c);
		return handshake_step(l, c, now);
	}
	if (c->list == L_QUICK)
		return quick_step(l, c, ev->events, now);
	relay_step(l, c, is_local ? 0 : ev->events, is_local ? ev->events : 0, now);
}

static void loop_free(struct tls_loop *l)
{
	safe_close(l->stop_pipe[0]);
	safe_close(l->stop_pipe[1]);
	safe_close(l->ep);
	safe_close(l->listen_fd);
	SSL_CTX_free(l->o.ssl_ctx);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cond);
	free(l);
}

static void loop_unref(struct tls_loop *l)
{
	pthread_mutex_lock(&l->mu);
	bool last = --l->refs == 0;
	pthread_mutex_unlock(&l->mu);
	if (last)
		loop_free(l);
}

/* Read what was written to the stop pipe: true when the process's exit asked to end at once ('q'). */
static bool stop_requested(struct tls_loop *l)
{
	char b[16];
	ssize_t n = read(l->stop_pipe[0], b, sizeof(b));
	return n > 0 && memchr(b, 'q', (size_t)n) != NULL;
}

/* Stop accepting, drop the handshakes (no callback runs after this), let http_tls_loop_stop() return. */
static void begin_stop(struct tls_loop *l, int64_t now)
{
	(void)epoll_ctl(l->ep, EPOLL_CTL_DEL, l->listen_fd, NULL);
	l->listen_fd = safe_close(l->listen_fd);
	while (l->lists[L_HANDSHAKE].head)
		conn_kill(l, l->lists[L_HANDSHAKE].head);
	while (l->lists[L_QUICK].head) /* no owner to finish them */
		conn_kill(l, l->lists[L_QUICK].head);
	l->stopping = true;
	l->drain_until = now + TLS_LOOP_DRAIN_MS;
	pthread_mutex_lock(&l->mu);
	l->stop_acked = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

static void *loop_main(void *arg)
{
	struct tls_loop *l = arg;
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		int64_t now = proc_now_ms();
		int n = epoll_wait(l->ep, evs, MAX_EVENTS, next_timeout(l, now));
		if (n < 0 && errno != EINTR)
			break;
		now = proc_now_ms();
		atomic_fetch_add_explicit(&l->st_turns, 1, memory_order_relaxed);
		bool stop = false, quit = false;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == TAG_STOP)
				stop = true, quit |= stop_requested(l);
			else if (evs[i].data.u64 == TAG_LISTEN)
				accept_one(l, now);
			else
				dispatch(l, &evs[i], now);
		}
		expire(l, now);
		if (stop && !l->stopping)
			begin_stop(l, now);
		if (quit) /* the process exits: the established connections end now */
			l->drain_until = now;
		reap(l);
		if (l->stopping && (l->n[L_RELAY] + l->n[L_LINGER] == 0 || now >= l->drain_until))
			break;
	}
	if (!l->stopping)
		begin_stop(l, proc_now_ms()); /* epoll failed: http_tls_loop_stop() must not wait for us */
	for (enum list_kind k = L_HANDSHAKE; k <= L_LINGER; k++)
		while (l->lists[k].head)
			conn_kill(l, l->lists[k].head);
	reap(l);
	struct tls_thread *exit = l->exit;
	loop_unref(l); /* detached by http_tls_loop_stop() */
	if (exit)
		http_tls_thread_leave(
		    exit, true); /* after the last OpenSSL call (loop_unref may free the context) */
	return NULL;
}

int http_tls_loop_start(const struct tls_loop_opts *o, int listen_fd, struct tls_loop **ret,
			struct berth_error **err)
{
	struct tls_loop *l = xcalloc(1, sizeof(*l));
	l->o = *o;
	if (!l->o.handshake_ms)
		l->o.handshake_ms = TLS_LOOP_HANDSHAKE_MS;
	if (!l->o.max_handshakes)
		l->o.max_handshakes = TLS_LOOP_MAX_HANDSHAKE;
	if (!l->o.linger_ms)
		l->o.linger_ms = TLS_LOOP_LINGER_MS;
	if (!l->o.quick_idle_ms)
		l->o.quick_idle_ms = TLS_LOOP_QUICK_IDLE_MS;
	if (!l->o.ssl_ctx)
		l->o.quick = NULL; /* plain connections go to ready() at accept */
	l->listen_fd = listen_fd;
	l->stop_pipe[0] = l->stop_pipe[1] = -1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cond, NULL);
	int r;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	if (l->ep < 0 || pipe2(l->stop_pipe, O_CLOEXEC) < 0) {
		r = berth_error_errno(err, "create the TLS event loop");
		goto fail;
	}
	int fl = fcntl(listen_fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(listen_fd, F_SETFL,
			    fl | O_NONBLOCK); /* a client gone before accept() never blocks us */
	struct epoll_event e1 = { .events = EPOLLIN, .data.u64 = TAG_LISTEN };
	struct epoll_event e2 = { .events = EPOLLIN, .data.u64 = TAG_STOP };
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, listen_fd, &e1) < 0 ||
	    epoll_ctl(l->ep, EPOLL_CTL_ADD, l->stop_pipe[0], &e2) < 0) {
		r = berth_error_errno(err, "watch the listening socket");
		goto fail;
	}
	if (l->o.ssl_ctx)
		SSL_CTX_up_ref(l->o.ssl_ctx);
	l->refs = 2;
	if (l->o.ssl_ctx)
		l->exit = http_tls_thread_join(TLS_WAKE_PIPE, l->stop_pipe[1], -1);
	if (pthread_create(&l->thread, NULL, loop_main, l) != 0) {
		if (l->exit)
			http_tls_thread_leave(l->exit, false);
		SSL_CTX_free(l->o.ssl_ctx);
		r = berth_error_set(err, EAGAIN, "start the TLS event loop thread");
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	l->o.ssl_ctx = NULL; /* no reference taken yet */
	loop_free(l);
	return r;
}

struct tls_loop *http_tls_loop_stop(struct tls_loop *l)
{
	if (!l)
		return NULL;
	/* the thread drains the established connections on its own */
	pthread_detach(l->thread);
	(void)fs_write_all(l->stop_pipe[1], "x", 1);
	pthread_mutex_lock(&l->mu);
	while (!l->stop_acked)
		pthread_cond_wait(&l->cond, &l->mu);
	pthread_mutex_unlock(&l->mu);
	loop_unref(l);
	return NULL;
}

void http_tls_loop_get_stats(struct tls_loop *l, struct tls_loop_stats *ret)
{
	*ret = (struct tls_loop_stats){
		.handshaking = atomic_load(&l->st_handshaking),
		.relaying = atomic_load(&l->st_relaying),
		.quick = atomic_load(&l->st_quick),
		.quick_answers = atomic_load(&l->st_quick_answers),
		.accepted = atomic_load(&l->st_accepted),
		.refused = atomic_load(&l->st_refused),
		.handshake_failed = atomic_load(&l->st_hs_failed),
		.handshake_timeouts = atomic_load(&l->st_hs_timeouts),
		.turns = atomic_load(&l->st_turns),
	};
}
