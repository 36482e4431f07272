/*
 * test-http-tlsloop.c - the TLS event loop (http/tlsloop.c): relaying both
 * ways with half-closes and backpressure, slow and partial handshakes,
 * clients that vanish mid-handshake, the handshake and admission limits, no
 * busy loop once the local side hung up, and a stop that keeps established
 * connections; the fast path (opts.quick): answers on the loop, a hand-over with
 * what was read, admission counting and the idle timeout of held connections.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>

#include "unit.h"
#include "common/fs.h"
#include "common/util.h"
#include "http/http.h"
#include "http/tlsexit.h"
#include "http/tlsloop.h"
#include "pki/pki.h"

#define MAX_LOCALS 8

struct fixture {
	char *dir;
	void *ctx;   /* server SSL_CTX */
	SSL_CTX *cc; /* client */
	struct tls_loop *loop;
	int port;
	bool admit;
	unsigned held;          /* the last admit() call's */
	unsigned quick_idle_ms; /* != 0: the fast path is on (quick_cb) */
	pthread_mutex_t mu;
	int locals[MAX_LOCALS]; /* our ends of the socketpairs handed to the loop */
	size_t n_locals;
};

static bool admit_cb(void *ud, unsigned held)
{
	struct fixture *f = ud;
	f->held = held;
	return f->admit;
}

/* The fast path of the tests: lines; "ping" is answered "pong", anything else goes to ready(). */
static int quick_cb(void *ud, void *ssl, const char *data, size_t len, char **ret_out, size_t *ret_len)
{
	assert_non_null(ssl);
	if (!memchr(data, '\n', len))
		return TLS_QUICK_MORE;
	if (len != 5 || memcmp(data, "ping\n", 5))
		return TLS_QUICK_PASS;
	*ret_out = xstrdup("pong\n");
	*ret_len = 5;
	return TLS_QUICK_ANSWER;
}

static int ready_cb(void *ud, void *ssl, int fd, const struct sockaddr *addr, socklen_t len)
{
	struct fixture *f = ud;
	assert_non_null(ssl);
	assert_int_equal(fd, -1);
	assert_true(len > 0 && addr->sa_family == AF_INET);
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	pthread_mutex_lock(&f->mu);
	assert_true(f->n_locals < MAX_LOCALS);
	f->locals[f->n_locals++] = sp[0];
	pthread_mutex_unlock(&f->mu);
	return sp[1];
}

static void write_file(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	assert_int_equal(fs_write_file_replace(p, text, strlen(text), 0600, NULL), 0);
}

static void loop_start(struct fixture *f, unsigned handshake_ms, unsigned max_hs, unsigned linger_ms)
{
	struct berth_error *err = NULL;
	int fd = http_listen_tcp("127.0.0.1:0", &err);
	assert_true(fd >= 0);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	struct tls_loop_opts o = { .ssl_ctx = f->ctx,
				   .handshake_ms = handshake_ms,
				   .max_handshakes = max_hs,
				   .linger_ms = linger_ms,
				   .admit = admit_cb,
				   .ready = ready_cb,
				   .quick = f->quick_idle_ms ? quick_cb : NULL,
				   .quick_idle_ms = f->quick_idle_ms,
				   .userdata = f };
	assert_int_equal(http_tls_loop_start(&o, fd, &f->loop, &err), 0);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct berth_error *err = NULL;
	signal(SIGPIPE, SIG_IGN);
	f->dir = unit_tmpdir();
	f->admit = true;
	pthread_mutex_init(&f->mu, NULL);
	_cleanup_free_ char *ca = NULL, *cakey = NULL, *cert = NULL, *key = NULL;
	assert_int_equal(pki_ca_create("test CA", &ca, &cakey, &err), 0);
	assert_int_equal(pki_server_cert(ca, cakey, "127.0.0.1", &cert, &key, &err), 0);
	write_file(f->dir, "cert.pem", cert);
	write_file(f->dir, "key.pem", key);
	_cleanup_free_ char *cp = xasprintf("%s/cert.pem", f->dir), *kp = xasprintf("%s/key.pem", f->dir);
	struct http_tls_files files = { .cert = cp, .key = kp };
	assert_int_equal(http_tls_ctx_new(&files, false, true, &f->ctx, &err), 0);
	f->cc = SSL_CTX_new(TLS_client_method());
	assert_non_null(f->cc);
	SSL_CTX_set_verify(f->cc, SSL_VERIFY_NONE, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	http_tls_loop_stop(f->loop);
	for (size_t i = 0; i < f->n_locals; i++)
		safe_close(f->locals[i]);
	http_tls_ctx_free(f->ctx);
	SSL_CTX_free(f->cc);
	(void)fs_rm_rf(f->dir, NULL);
	free(f->dir);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	struct timeval tv = { 20, 0 }; /* a broken loop fails the test instead of hanging it */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static SSL *tls_connect(struct fixture *f, int *ret_fd)
{
	int fd = tcp_connect(f->port);
	SSL *ssl = SSL_new(f->cc);
	assert_non_null(ssl);
	SSL_set_fd(ssl, fd);
	assert_int_equal(SSL_connect(ssl), 1);
	*ret_fd = fd;
	return ssl;
}

static int local_end(struct fixture *f, size_t n);
static void read_exact(int fd, char *buf, size_t n);

/* A TLS connection whose first message msg reached local (the n-th handed over). */
static SSL *relay_open(struct fixture *f, size_t n, const char *msg, int *ret_fd, int *ret_local)
{
	SSL *ssl = tls_connect(f, ret_fd);
	size_t len = strlen(msg);
	assert_int_equal(SSL_write(ssl, msg, (int)len), (int)len);
	*ret_local = local_end(f, n);
	char buf[64];
	assert_true(len <= sizeof(buf));
	read_exact(*ret_local, buf, len);
	assert_memory_equal(buf, msg, len);
	return ssl;
}

/* The local end of the n-th connection handed over (waits for it). */
static int local_end(struct fixture *f, size_t n)
{
	for (int i = 0; i < 2000; i++) {
		pthread_mutex_lock(&f->mu);
		int fd = f->n_locals > n ? f->locals[n] : -1;
		pthread_mutex_unlock(&f->mu);
		if (fd >= 0)
			return fd;
		(void)poll(NULL, 0, 5);
	}
	fail_msg("no connection handed over");
	return -1;
}

static void stats(struct fixture *f, struct tls_loop_stats *s)
{
	http_tls_loop_get_stats(f->loop, s);
}

/* Wait until pred(stats) holds. */
static void wait_stats(struct fixture *f, bool (*pred)(const struct tls_loop_stats *))
{
	struct tls_loop_stats s;
	for (int i = 0; i < 2000; i++) {
		stats(f, &s);
		if (pred(&s))
			return;
		(void)poll(NULL, 0, 5);
	}
	fail_msg("loop state not reached: handshaking %u relaying %u", s.handshaking, s.relaying);
}

static bool none_left(const struct tls_loop_stats *s)
{
	return s->handshaking == 0 && s->relaying == 0;
}

static void read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

static void ssl_read_exact(SSL *ssl, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		int r = SSL_read(ssl, buf + got, (int)(n - got));
		assert_true(r > 0);
		got += (size_t)r;
	}
}

struct big {
	int fd;
	size_t n;
};

static void *write_big(void *arg)
{
	struct big *b = arg;
	char *buf = xmalloc(b->n);
	for (size_t i = 0; i < b->n; i++)
		buf[i] = (char)(i * 7);
	assert_int_equal(fs_write_all(b->fd, buf, b->n), 0);
	free(buf);
	return NULL;
}

struct ssl_big {
	SSL *ssl;
	const char *p;
	size_t n;
};

static void *ssl_write_big(void *arg)
{
	struct ssl_big *b = arg;
	for (size_t off = 0; off < b->n;) {
		int w = SSL_write(b->ssl, b->p + off, (int)MIN(b->n - off, (size_t)65536));
		assert_true(w > 0);
		off += (size_t)w;
	}
	return NULL;
}

static void test_relays_both_ways_with_half_closes_and_backpressure(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 0, 0);
	int fd, local;
	SSL *ssl = relay_open(f, 0, "GET / HTTP/1.1\r\n\r\n", &fd, &local);
	char buf[64];
	/* 4 MiB towards the client while it does not read: local fills up, the loop holds back */
	const size_t big = 4u << 20;
	struct big b = { local, big };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, write_big, &b), 0);
	(void)poll(NULL, 0, 50);
	char *in = xmalloc(big);
	ssl_read_exact(ssl, in, big);
	pthread_join(t, NULL);
	for (size_t i = 0; i < big; i += 4093)
		assert_int_equal(in[i], (char)(i * 7));
	/* and 4 MiB from the client while local does not read at first */
	struct ssl_big sb = { ssl, in, big };
	assert_int_equal(pthread_create(&t, NULL, ssl_write_big, &sb), 0);
	(void)poll(NULL, 0, 50);
	char *got = xmalloc(big);
	read_exact(local, got, big);
	pthread_join(t, NULL);
	assert_memory_equal(got, in, big);
	free(got);
	free(in);
	/* local half-closes: the client sees close_notify, and can still send */
	assert_int_equal(shutdown(local, SHUT_WR), 0);
	assert_int_equal(SSL_read(ssl, buf, sizeof(buf)), 0);
	assert_int_equal(SSL_get_error(ssl, 0), SSL_ERROR_ZERO_RETURN);
	assert_int_equal(SSL_write(ssl, "late", 4), 4);
	read_exact(local, buf, 4);
	assert_memory_equal(buf, "late", 4);
	/* the client's close_notify reaches local as EOF, and the connection ends */
	assert_true(SSL_shutdown(ssl) >= 0);
	assert_int_equal(read(local, buf, sizeof(buf)), 0);
	wait_stats(f, none_left);
	assert_int_equal(read(fd, buf, sizeof(buf)), 0); /* closed on our side too */
	SSL_free(ssl);
	close(fd);
}

/* Run the client handshake through memory BIOs, sending its bytes to fd `chunk` bytes at a time. */
static void slow_handshake(struct fixture *f, int fd, size_t chunk, unsigned pause_ms)
{
	SSL *ssl = SSL_new(f->cc);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	for (;;) {
		int r = SSL_do_handshake(ssl);
		char buf[16384];
		int n;
		while ((n = BIO_read(wb, buf, sizeof(buf))) > 0)
			for (int off = 0; off < n; off += (int)chunk) {
				size_t k = MIN(chunk, (size_t)(n - off));
				assert_int_equal(send(fd, buf + off, k, MSG_NOSIGNAL), (ssize_t)k);
				(void)poll(NULL, 0, (int)pause_ms);
			}
		if (r == 1)
			break;
		assert_int_equal(SSL_get_error(ssl, r), SSL_ERROR_WANT_READ);
		ssize_t got = recv(fd, buf, sizeof(buf), 0);
		assert_true(got > 0);
		BIO_write(rb, buf, (int)got);
	}
	/* the session works */
	assert_int_equal(SSL_write(ssl, "ping", 4), 4);
	char buf[4096];
	int n = BIO_read(wb, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
	SSL_free(ssl);
}

static void test_slow_handshake_completes_while_others_are_served(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 0, 0);
	int slow = tcp_connect(f->port);
	/* a fast client in the middle of the slow one's handshake is not held up */
	int fd;
	SSL *ssl = tls_connect(f, &fd);
	slow_handshake(f, slow, 7, 1);
	assert_int_equal(SSL_write(ssl, "fast", 4), 4);
	char buf[8];
	read_exact(local_end(f, 0), buf, 4);
	assert_memory_equal(buf, "fast", 4);
	read_exact(local_end(f, 1), buf, 4);
	assert_memory_equal(buf, "ping", 4);
	struct tls_loop_stats s;
	stats(f, &s);
	assert_int_equal(s.relaying, 2);
	assert_int_equal(s.handshake_failed, 0);
	SSL_free(ssl);
	close(fd);
	close(slow);
	wait_stats(f, none_left);
}

static bool one_timeout(const struct tls_loop_stats *s)
{
	return s->handshake_timeouts == 1 && s->handshaking == 0;
}

static bool one_failed(const struct tls_loop_stats *s)
{
	return s->handshake_failed == 1 && s->handshaking == 0;
}

/* The first bytes of a real ClientHello. */
static size_t client_hello(struct fixture *f, char *buf, size_t size)
{
	SSL *ssl = SSL_new(f->cc);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	assert_int_equal(SSL_do_handshake(ssl), -1);
	int n = BIO_read(wb, buf, (int)size);
	assert_true(n > 20);
	SSL_free(ssl);
	return (size_t)n;
}

static bool two_failed(const struct tls_loop_stats *s)
{
	return s->handshake_failed == 2 && s->handshaking == 0;
}

static void test_partial_handshake_times_out_and_a_vanished_client_is_dropped(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 300, 0, 0);
	char hello[4096];
	size_t n = client_hello(f, hello, sizeof(hello));
	/* half a ClientHello, then nothing: closed at the handshake deadline */
	int stuck = tcp_connect(f->port);
	assert_int_equal(send(stuck, hello, n / 2, 0), (ssize_t)(n / 2));
	wait_stats(f, one_timeout);
	char buf[64];
	assert_true(read(stuck, buf, sizeof(buf)) <= 0);
	close(stuck);
	/* half a ClientHello, then the client closes: dropped at once */
	int gone = tcp_connect(f->port);
	assert_int_equal(send(gone, hello, n / 2, 0), (ssize_t)(n / 2));
	close(gone);
	wait_stats(f, one_failed);
	/* not TLS at all: an alert, then closed */
	int junk = tcp_connect(f->port);
	assert_int_equal(send(junk, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
	while (read(junk, buf, sizeof(buf)) > 0)
		;
	close(junk);
	wait_stats(f, two_failed);
	/* the loop still serves */
	int fd, local;
	SSL *ssl = relay_open(f, 0, "ok", &fd, &local);
	struct tls_loop_stats s;
	stats(f, &s);
	assert_int_equal(s.handshake_timeouts, 1);
	assert_int_equal(s.relaying, 1);
	SSL_free(ssl);
	close(fd);
}

static bool two_handshaking(const struct tls_loop_stats *s)
{
	return s->handshaking == 2;
}

static bool one_refused(const struct tls_loop_stats *s)
{
	return s->refused == 1;
}

static void test_handshake_limit_and_admission(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 2, 0);
	int a = tcp_connect(f->port), b = tcp_connect(f->port);
	wait_stats(f, two_handshaking);
	int c = tcp_connect(f->port); /* over the limit: closed before any TLS work */
	char buf[8];
	assert_true(read(c, buf, sizeof(buf)) <= 0);
	wait_stats(f, one_refused);
	close(a);
	close(b);
	close(c);
	wait_stats(f, none_left);
	f->admit = false; /* e.g. the server is full */
	int d = tcp_connect(f->port);
	assert_true(read(d, buf, sizeof(buf)) <= 0);
	close(d);
	struct tls_loop_stats s;
	stats(f, &s);
	assert_int_equal(s.refused, 2);
	assert_int_equal(f->n_locals, 0);
}

static bool one_quick(const struct tls_loop_stats *s)
{
	return s->quick == 1 && s->relaying == 1;
}

static bool none_quick(const struct tls_loop_stats *s)
{
	return s->quick == 0;
}

static void test_fast_path_answers_then_hands_over_and_idles_out(void **state)
{
	struct fixture *f = *state;
	f->quick_idle_ms = 400;
	loop_start(f, 0, 0, 0);
	int fd;
	SSL *ssl = tls_connect(f, &fd);
	char buf[16];
	for (int i = 0; i < 3; i++) { /* answered on the loop, in pieces too */
		if (i == 1) {
			assert_int_equal(SSL_write(ssl, "pi", 2), 2);
			(void)poll(NULL, 0, 20);
			assert_int_equal(SSL_write(ssl, "ng\n", 3), 3);
		} else {
			assert_int_equal(SSL_write(ssl, "ping\n", 5), 5);
		}
		ssl_read_exact(ssl, buf, 5);
		assert_memory_equal(buf, "pong\n", 5);
	}
	struct tls_loop_stats s;
	stats(f, &s);
	assert_int_equal(s.quick_answers, 3);
	assert_int_equal(s.quick, 1);
	assert_int_equal(f->n_locals, 0); /* no owner was involved */
	/* counted against admission while held */
	int fd2;
	SSL *ssl2 = tls_connect(f, &fd2);
	assert_int_equal(f->held, 1);
	/* anything else: the connection goes to ready() for good, with what was read */
	assert_int_equal(SSL_write(ssl, "other\n", 6), 6);
	int local = local_end(f, 0);
	read_exact(local, buf, 6);
	assert_memory_equal(buf, "other\n", 6);
	assert_int_equal(SSL_write(ssl, "ping\n", 5), 5); /* now relayed too */
	read_exact(local, buf, 5);
	assert_memory_equal(buf, "ping\n", 5);
	assert_int_equal(fs_write_all(local, "resp", 4), 0);
	ssl_read_exact(ssl, buf, 4);
	assert_memory_equal(buf, "resp", 4);
	wait_stats(f, one_quick); /* ssl2 is still held; ssl relays */
	/* a held connection that sends nothing closes after quick_idle_ms; a partial request does not
	 * stretch it */
	assert_int_equal(SSL_write(ssl2, "pi", 2), 2);
	assert_true(SSL_read(ssl2, buf, sizeof(buf)) <= 0);
	wait_stats(f, none_quick);
	assert_int_equal(f->n_locals, 1);
	SSL_free(ssl2);
	close(fd2);
	SSL_free(ssl);
	close(fd);
}

static void test_local_hangup_sends_close_notify_without_spinning(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 0, 60000); /* the client may linger: the loop must idle meanwhile */
	int fd, local;
	SSL *ssl = relay_open(f, 0, "req", &fd, &local);
	char buf[16];
	assert_int_equal(write(local, "answer", 6), 6);
	close(local); /* the server closed the connection after its answer (both ways) */
	pthread_mutex_lock(&f->mu);
	f->locals[0] = -1;
	pthread_mutex_unlock(&f->mu);
	ssl_read_exact(ssl, buf, 6);
	assert_memory_equal(buf, "answer", 6);
	assert_int_equal(SSL_read(ssl, buf, sizeof(buf)), 0); /* close_notify */
	/* the client keeps its socket open (a kept-alive pool): the loop must not turn meanwhile */
	struct tls_loop_stats s0, s1;
	stats(f, &s0);
	(void)poll(NULL, 0, 300);
	stats(f, &s1);
	assert_int_equal(s1.relaying, 1);
	assert_true(s1.turns - s0.turns < 10);
	/* a write from the client after that is dropped, and its close ends the connection */
	(void)SSL_write(ssl, "more", 4);
	SSL_free(ssl);
	close(fd);
	wait_stats(f, none_left);
}

static bool one_handshaking(const struct tls_loop_stats *s)
{
	return s->handshaking == 1 && s->relaying == 1;
}

static void test_stop_drops_handshakes_and_keeps_established_connections(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 0, 0);
	int fd;
	SSL *ssl = tls_connect(f, &fd);
	int half = tcp_connect(f->port);
	wait_stats(f, one_handshaking);
	f->loop = http_tls_loop_stop(f->loop);
	/* nothing listens any more, the handshake in progress is gone */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(f->port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), -1);
	close(s);
	char buf[16];
	assert_true(read(half, buf, sizeof(buf)) <= 0);
	close(half);
	/* the established connection still relays both ways until its ends finish */
	assert_int_equal(SSL_write(ssl, "after", 5), 5);
	int local = local_end(f, 0);
	read_exact(local, buf, 5);
	assert_memory_equal(buf, "after", 5);
	assert_int_equal(write(local, "bye", 3), 3);
	assert_int_equal(shutdown(local, SHUT_WR), 0);
	ssl_read_exact(ssl, buf, 3);
	assert_memory_equal(buf, "bye", 3);
	assert_int_equal(SSL_read(ssl, buf, sizeof(buf)), 0);
	assert_true(SSL_shutdown(ssl) >= 0);
	assert_int_equal(read(local, buf, sizeof(buf)), 0);
	SSL_free(ssl);
	close(fd);
}

static bool one_relaying(const struct tls_loop_stats *s)
{
	return s->handshaking == 0 && s->relaying == 1;
}

/*
 * One thread serves every connection, and OpenSSL's error queue is per thread: a connection that
 * fails (here a client that sends a record that does not decrypt) must leave nothing in it, or the next
 * SSL_get_error of a healthy connection reads that stale error and the loop drops it with its
 * answer unsent (seen as boto3's "Connection was closed before we received a valid response").
 */
static void test_a_failed_connection_does_not_fail_another(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 0, 0);
	int fd_a, local_a, fd_b, local_b;
	SSL *a = relay_open(f, 0, "req1", &fd_a, &local_a);
	SSL *b = relay_open(f, 1, "reqB", &fd_b, &local_b);
	SSL_free(b);
	/* an application-data record that does not decrypt: the loop's read on b fails ("bad record
	 * mac"); a FIN without close_notify is an ordinary end, see the next test */
	static const char bad[21] = { 0x17, 0x03, 0x03, 0x00, 0x10 };
	assert_int_equal(write(fd_b, bad, sizeof(bad)), (ssize_t)sizeof(bad));
	char buf[16];
	assert_int_equal(read(local_b, buf, sizeof(buf)), 0);
	wait_stats(f, one_relaying);
	close(fd_b);
	/* a goes on: its next request and answer pass */
	assert_int_equal(SSL_write(a, "req2", 4), 4);
	read_exact(local_a, buf, 4);
	assert_memory_equal(buf, "req2", 4);
	assert_int_equal(write(local_a, "ans2", 4), 4);
	ssl_read_exact(a, buf, 4);
	assert_memory_equal(buf, "ans2", 4);
	SSL_free(a);
	close(fd_a);
	/* a's end (a FIN) reaches the local side, whose end closes the connection */
	assert_int_equal(read(local_a, buf, sizeof(buf)), 0);
	assert_int_equal(shutdown(local_a, SHUT_WR), 0);
	wait_stats(f, none_left);
}

/*
 * A client that sends its request and ends with a TCP FIN without close_notify (OpenSSL 3's
 * "unexpected eof", an error unless SSL_OP_IGNORE_UNEXPECTED_EOF) still gets the whole answer, as
 * from Go's crypto/tls or nginx: the local side sees the end of the request, answers, and the answer
 * reaches the client.
 */
static void test_a_fin_without_close_notify_still_gets_the_answer(void **state)
{
	struct fixture *f = *state;
	loop_start(f, 0, 0, 0);
	int fd, local;
	SSL *ssl = relay_open(f, 0, "request", &fd, &local);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	char buf[16];
	assert_int_equal(read(local, buf, sizeof(buf)), 0); /* the request ended */
	assert_int_equal(send(local, "the answer", 10, MSG_NOSIGNAL), 10);
	assert_int_equal(shutdown(local, SHUT_WR), 0);
	ssl_read_exact(ssl, buf, 10);
	assert_memory_equal(buf, "the answer", 10);
	assert_int_equal(SSL_read(ssl, buf, sizeof(buf)), 0); /* then close_notify */
	assert_int_equal(SSL_get_error(ssl, 0), SSL_ERROR_ZERO_RETURN);
	SSL_free(ssl);
	close(fd);
	wait_stats(f, none_left);
}

/* Run child() in a forked process and return its exit status; fails after 25 s (the loop's own
 * drain after a stop is 30 s: an exit must not wait for it). Under ASan a leak or a double free
 * in the child's exit makes its status non-zero. */
static int in_child(struct fixture *f, int (*child)(struct fixture *f, int out), char *out, size_t outlen)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		exit(child(f, p[1])); /* exit, not _exit: the atexit handlers are what is tested */
	}
	close(p[1]);
	struct pollfd pf = { p[0], POLLIN, 0 };
	size_t got = 0;
	for (;;) {
		int pr = poll(&pf, 1, 25000);
		assert_true(pr == 1);
		ssize_t n = read(p[0], out + got, outlen - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	out[got] = 0;
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void *slow_leaver(void *arg)
{
	void **a = arg;
	struct tls_thread *t = a[0];
	int fd = (int)(intptr_t)a[1], out = (int)(intptr_t)a[2];
	char c;
	while (read(fd, &c, 1) > 0) /* until the exit shuts the socket down */
		;
	(void)poll(NULL, 0, 300);
	(void)!write(out, "left", 4);
	http_tls_thread_leave(t, true);
	return NULL;
}

static int child_slow_thread(struct fixture *f, int out)
{
	(void)f;
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return 3;
	static void *a[3];
	a[0] = http_tls_thread_join(TLS_WAKE_SHUTDOWN, sp[0], -1);
	a[1] = (void *)(intptr_t)sp[0];
	a[2] = (void *)(intptr_t)out;
	pthread_t t;
	if (pthread_create(&t, NULL, slow_leaver, a) != 0)
		return 3;
	pthread_detach(t);
	return 0; /* exit() wakes the thread and waits until it left */
}

static void test_exit_waits_for_tls_threads_to_leave(void **state)
{
	char out[64];
	assert_int_equal(in_child(*state, child_slow_thread, out, sizeof(out)), 0);
	assert_string_equal(out, "left");
}

static struct fixture *exit_f;
static int exit_out;

/* The child's, after every atexit handler (so after the TLS exit drain, which the parent may have
 * registered before the fork): has the loop ended the relay? */
__attribute__((destructor)) static void report_relay_state(void)
{
	if (!exit_f)
		return;
	int local = exit_f->n_locals ? exit_f->locals[0] : -1;
	char c;
	(void)fcntl(local, F_SETFL, O_NONBLOCK);
	const char *m = read(local, &c, 1) == 0 ? " ended" : " open";
	(void)!write(exit_out, m, strlen(m));
}

static int child_relaying_loop(struct fixture *f, int out)
{
	exit_f = f, exit_out = out;
	loop_start(f, 5000, 64, 200);
	int fd, local;
	SSL *ssl = relay_open(f, 0, "hello", &fd, &local);
	f->loop = http_tls_loop_stop(f->loop); /* established connections may drain for 30 s ... */
	(void)!write(out, "relaying", 8);
	SSL_free(ssl); /* ours; its socket stays open: the loop's relay does not end by itself */
	return 0;      /* ... but an exit ends them and waits for the loop's thread */
}

static void test_exit_ends_a_draining_loop(void **state)
{
	char out[64];
	assert_int_equal(in_child(*state, child_relaying_loop, out, sizeof(out)), 0);
	assert_string_equal(out, "relaying ended");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_relays_both_ways_with_half_closes_and_backpressure,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_handshake_completes_while_others_are_served, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_partial_handshake_times_out_and_a_vanished_client_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_limit_and_admission, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fast_path_answers_then_hands_over_and_idles_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_connection_does_not_fail_another, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_fin_without_close_notify_still_gets_the_answer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_exit_waits_for_tls_threads_to_leave, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_ends_a_draining_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_hangup_sends_close_notify_without_spinning, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_drops_handshakes_and_keeps_established_connections,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
