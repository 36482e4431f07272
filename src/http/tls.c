/*
 * tls.c - TCP listeners for the HTTP server, with TLS terminated here by
 * OpenSSL, and TLS for the client's raw (hijacked) connections.
 *
 * Why not libmicrohttpd's own TLS (GnuTLS on Debian): it can only *request*
 * a client certificate (MHD_OPTION_HTTPS_MEM_TRUST sets GNUTLS_CERT_REQUEST),
 * so every request would have to re-check the peer through the GnuTLS
 * session, and a client without a certificate would complete the handshake.
 * Here the handshake itself requires a certificate signed by the CA (docker's
 * tls.RequireAndVerifyClientCert), and the decrypted connection is handed to
 * the server as one end of a socketpair (MHD_add_connection), so hijacked
 * attach/exec streams, half-closes and every handler work exactly as on the
 * unix socket. One event-loop thread per listener (tlsloop.c) accepts, runs
 * every handshake and relays every connection, non-blocking; the client side
 * (http_tls_client_wrap) keeps a relay thread per hijacked connection, ended
 * before the process exits.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include "common/fs.h"
#include "common/log.h"
#include "http/http.h"
#include "http/quick.h"
#include "http/tlsexit.h"
#include "http/tlsloop.h"

#define TLS_RELAY_BUF (32 * 1024)

struct http_tcp_listener {
	struct http_server *srv;
	bool record_peer;
	http_quick_fn quick; /* the server's fast path (http_server_opts.quick) */
	void *quick_userdata;
	struct tls_loop *loop; /* accepts, and terminates TLS for every connection (tlsloop.c) */
};

static char *ssl_errors(void)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned long e;
	char buf[256];
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		strbuf_addf(&sb, "%s%s", sb.len ? "; " : "", buf);
	}
	if (!sb.len)
		strbuf_addstr(&sb, "unknown TLS error");
	return strbuf_detach(&sb, NULL);
}

static int ssl_fail(struct berth_error **err, const char *what, const char *path)
{
	_cleanup_free_ char *e = ssl_errors();
	return berth_error_msg(err, EINVAL, "%s '%s': %s", what, path ? path : "", e);
}

/* Certificate, key and (optional) CA into ctx; verify: the peer must present a certificate from ca. */
static int ctx_setup(SSL_CTX *ctx, const struct http_tls_files *f, bool verify, bool server,
		     struct berth_error **err)
{
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* after a non-application record SSL_read returns WANT_READ instead of blocking for more */
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	if (f->cert && SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
		return ssl_fail(err, "load certificate", f->cert);
	if (f->key && SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
		return ssl_fail(err, "load key", f->key);
	if (f->cert && f->key && SSL_CTX_check_private_key(ctx) != 1)
		return ssl_fail(err, "key does not match certificate", f->cert);
	if (!verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return 0;
	}
	if (!f->ca)
		return berth_error_msg(err, EINVAL, "TLS verification needs a CA certificate");
	if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1)
		return ssl_fail(err, "load CA certificate", f->ca);
	if (server) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->ca);
		if (!names)
			return ssl_fail(err, "load CA certificate", f->ca);
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	return 0;
}

int http_tls_ctx_new(const struct http_tls_files *f, bool verify, bool server, void **ret,
		     struct berth_error **err)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx)
		return ssl_fail(err, "create TLS context", NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* a client that ends with a TCP FIN and no close_notify (many do, after their last request)
	 * still gets the answers in flight, as from Go's crypto/tls and nginx: OpenSSL 3 would make
	 * that EOF an error and the connection would be dropped */
	if (server)
		SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	int r = ctx_setup(ctx, f, verify, server, err);
	if (r < 0) {
		SSL_CTX_free(ctx);
		return r;
	}
	*ret = ctx;
	return 0;
}

void http_tls_ctx_free(void *ctx)
{
	SSL_CTX_free(ctx);
}

static int ssl_write_all(SSL *ssl, const char *p, size_t n)
{
	while (n > 0) {
		ERR_clear_error(); /* SSL_get_error reads the thread's error queue */
		int w = SSL_write(ssl, p, (int)MIN(n, (size_t)INT_MAX));
		if (w <= 0) {
			int e = SSL_get_error(ssl, w);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				continue;
			return -EPIPE;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -EPIPE;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One SSL_read into local: 1 data, 0 nothing yet, -1 the peer is done sending, -2 local is gone. */
static int net_to_local(SSL *ssl, int local, char *buf, size_t size)
{
	ERR_clear_error();
	int n = SSL_read(ssl, buf, (int)size);
	if (n > 0)
		return send_all(local, buf, (size_t)n) < 0 ? -2 : 1;
	int e = SSL_get_error(ssl, n);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/*
 * The client side's relay thread (http_tls_client_wrap): copy between a TLS
 * session on net and the plain socket local, with half-closes both ways
 * (close_notify <-> shutdown(SHUT_WR)), until both directions ended, the
 * peer vanished, or 5 s after local's EOF.
 */
static void tls_relay(void *ssl_ptr, int net, int local)
{
	SSL *ssl = ssl_ptr;
	char buf[TLS_RELAY_BUF];
	bool net_open = true, local_open = true;
	while (net_open || local_open) {
		bool pending = net_open && SSL_pending(ssl) > 0;
		/* a closed direction's fd is left out (-1): poll reports POLLHUP whatever the events, so an
		 * fd polled for nothing that hung up would return at once, forever */
		struct pollfd p[2] = { { net, net_open ? POLLIN : 0, 0 },
				       { local_open ? local : -1, POLLIN, 0 } };
		if (!pending) {
			/* once our side is done, the peer gets a little while to finish */
			int pr = poll(p, 2, local_open ? -1 : (int)TLS_LOOP_LINGER_MS);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr <= 0)
				break;
		}
		if (pending || (net_open && p[0].revents)) {
			int r = net_to_local(ssl, local, buf, sizeof(buf));
			if (r == -2)
				break;
			if (r == -1) { /* close_notify or EOF: half-close towards local */
				net_open = false;
				shutdown(local, SHUT_WR);
			}
		}
		if (!net_open && (p[0].revents & (POLLHUP | POLLERR)))
			break; /* the peer went away in both directions */
		if (local_open && p[1].revents) {
			ssize_t n = read(local, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) { /* local is done sending: close_notify, keep reading */
				local_open = false;
				SSL_shutdown(ssl);
			} else if (ssl_write_all(ssl, buf, (size_t)n) < 0) {
				break;
			}
		}
	}
	if (local_open)
		SSL_shutdown(ssl);
	shutdown(net, SHUT_WR);
}

/* "CN sha256:<hex>" of a verified client certificate, or NULL. */
static char *peer_identity(SSL *ssl)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	if (!cert)
		return NULL;
	char *id = NULL;
	if (SSL_get_verify_result(ssl) == X509_V_OK) {
		char cn[256] = ""; /* X.509 limits a CN to 64 characters */
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int n = 0;
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
		if (X509_digest(cert, EVP_sha256(), md, &n) == 1 && cn[0]) {
			struct strbuf sb = STRBUF_INIT;
			strbuf_addf(&sb, "%s sha256:", cn);
			for (unsigned int i = 0; i < n; i++)
				strbuf_addf(&sb, "%02x", md[i]);
			id = strbuf_detach(&sb, NULL);
		}
	}
	X509_free(cert);
	return id;
}

/* The fast path asks for the identity on every request: worked out once per connection, kept with it. */
static int peer_ex_index = -1;
static pthread_once_t peer_ex_once = PTHREAD_ONCE_INIT;

static void peer_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

static void peer_ex_init(void)
{
	peer_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_ex_free);
}

static const char *peer_identity_cached(SSL *ssl)
{
	pthread_once(&peer_ex_once, peer_ex_init);
	if (peer_ex_index < 0)
		return NULL;
	char *id = SSL_get_ex_data(ssl, peer_ex_index);
	if (!id && (id = peer_identity(ssl)) && SSL_set_ex_data(ssl, peer_ex_index, id) != 1) {
		free(id);
		id = NULL;
	}
	return id;
}

static bool listener_admit(void *userdata, unsigned held)
{
	struct http_tcp_listener *l = userdata;
	return !http_server_full_with(l->srv, held);
}

/* The TLS loop's fast path (tlsloop.h): a complete plain request goes to the server's quick(). */
static int listener_quick(void *userdata, void *ssl, const char *data, size_t len, char **ret_out,
			  size_t *ret_len)
{
	struct http_tcp_listener *l = userdata;
	struct http_quick_req q;
	enum http_quick_parse p = http_quick_parse(data, len, &q);
	if (p != HTTP_QUICK_READY)
		return p == HTTP_QUICK_MORE ? TLS_QUICK_MORE : TLS_QUICK_PASS;
	const char *peer = l->record_peer ? peer_identity_cached(ssl) : NULL;
	unsigned status = 0;
	_cleanup_free_ char *body = NULL;
	size_t n = 0;
	if (!l->quick(q.method, q.path, peer, q.body, q.body_len, &status, &body, &n, l->quick_userdata))
		return TLS_QUICK_PASS;
	*ret_out = http_quick_format(status, "application/json", body, n, ret_len);
	return TLS_QUICK_ANSWER;
}

/* A connection is ready (tlsloop.h): plain ones go to the server as they are, TLS ones through a socketpair.
 */
static int listener_ready(void *userdata, void *ssl, int fd, const struct sockaddr *addr, socklen_t addr_len)
{
	struct http_tcp_listener *l = userdata;
	_cleanup_error_ struct berth_error *err = NULL;
	if (!ssl) {
		(void)http_server_add_connection(l->srv, fd, addr, addr_len, &err);
		return -1;
	}
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	_cleanup_free_ char *peer = l->record_peer ? peer_identity(ssl) : NULL;
	/* sp[0] is the server's from here, also on failure (closed, or a refusal written to it) */
	if (l->record_peer)
		(void)http_server_add_connection_peer(l->srv, sp[0], addr, addr_len, peer, &err);
	else
		(void)http_server_add_connection(l->srv, sp[0], addr, addr_len, &err);
	return sp[1];
}

static int listener_start(struct http_server *srv, int listen_fd, const struct http_tls_files *tls,
			  bool verify_client, bool record_peer, struct http_tcp_listener **ret,
			  struct berth_error **err)
{
	struct http_tcp_listener *l = xcalloc(1, sizeof(*l));
	l->srv = srv;
	l->record_peer = record_peer;
	SSL_CTX *ctx = NULL;
	int r = 0;
	if (tls && (r = http_tls_ctx_new(tls, verify_client, true, (void **)&ctx, err)) < 0) {
		close(listen_fd);
		free(l);
		return r;
	}
	if (ctx && record_peer) /* request a certificate, verify it when sent, serve clients without one */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	struct tls_loop_opts o = {
		.ssl_ctx = ctx, .admit = listener_admit, .ready = listener_ready, .userdata = l
	};
	l->quick = http_server_quick(srv, &l->quick_userdata, &o.quick_idle_ms);
	if (l->quick && ctx)
		o.quick = listener_quick;
	r = http_tls_loop_start(&o, listen_fd, &l->loop, err); /* takes its own reference on ctx */
	SSL_CTX_free(ctx);
	if (r < 0) {
		free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int http_tcp_listener_start_peer(struct http_server *srv, int listen_fd, const struct http_tls_files *tls,
				 struct http_tcp_listener **ret, struct berth_error **err)
{
	return listener_start(srv, listen_fd, tls, true, true, ret, err);
}

int http_tcp_listener_start(struct http_server *srv, int listen_fd, const struct http_tls_files *tls,
			    bool verify_client, struct http_tcp_listener **ret, struct berth_error **err)
{
	return listener_start(srv, listen_fd, tls, verify_client, false, ret, err);
}

struct http_tcp_listener *http_tcp_listener_stop(struct http_tcp_listener *l)
{
	if (!l)
		return NULL;
	l->loop = http_tls_loop_stop(l->loop);
	free(l);
	return NULL;
}

/* "host:port", "[v6]:port" or ":port" -> host (NULL for any) and port. */
static int split_host_port(const char *addr, char **ret_host, char **ret_port, struct berth_error **err)
{
	const char *colon = addr[0] == '[' ? strstr(addr, "]:") : strrchr(addr, ':');
	if (!colon || !colon[addr[0] == '[' ? 2 : 1])
		return berth_error_msg(err, EINVAL, "invalid TCP address '%s': expected host:port", addr);
	const char *port = colon + (addr[0] == '[' ? 2 : 1);
	size_t hl = addr[0] == '[' ? (size_t)(colon - addr - 1) : (size_t)(colon - addr);
	*ret_host = hl ? xstrndup(addr + (addr[0] == '['), hl) : NULL;
	*ret_port = xstrdup(port);
	return 0;
}

int http_tcp_connect_or_listen(const char *addr, bool listen_mode, struct berth_error **err)
{
	_cleanup_free_ char *host = NULL, *port = NULL;
	int r = split_host_port(addr, &host, &port, err);
	if (r < 0)
		return r;
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = listen_mode ? AI_PASSIVE : 0 };
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, port, &hints, &res);
	if (g != 0)
		return berth_error_msg(err, EINVAL, "resolve '%s': %s", addr, gai_strerror(g));
	int fd = -1, saved = 0;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		int one = 1;
		if (listen_mode)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		bool ok = listen_mode ? bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0
				      : connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
		if (!ok) {
			saved = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return berth_error_set(err, saved ? saved : EADDRNOTAVAIL, "%s '%s'",
				       listen_mode ? "listen on" : "connect to", addr);
	return fd;
}

int http_listen_tcp(const char *addr, struct berth_error **err)
{
	return http_tcp_connect_or_listen(addr, true, err);
}

/* The client's relay threads are detached; each joins the exit drain (tlsexit.h). */
struct client_relay {
	SSL *ssl;
	int net, local;
	struct tls_thread *exit;
};

static void *client_relay_thread(void *arg)
{
	struct client_relay *c = arg;
	tls_relay(c->ssl, c->net, c->local);
	SSL_free(c->ssl);
	http_tls_thread_leave(c->exit, true);
	close(c->net);
	close(c->local);
	free(c);
	return NULL;
}

int http_tls_client_wrap(void *ctx_ptr, int fd, const char *host, bool verify, struct berth_error **err)
{
	SSL *ssl = SSL_new(ctx_ptr);
	int sp[2] = { -1, -1 };
	int r;
	_cleanup_free_ char *name = NULL, *port = NULL;
	if (!ssl) {
		r = ssl_fail(err, "create TLS session", NULL);
		goto fail;
	}
	if (split_host_port(host, &name, &port, NULL) == 0 && name) {
		struct in6_addr a6;
		bool ip = inet_pton(AF_INET, name, &a6) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
		if (!ip)
			SSL_set_tlsext_host_name(ssl, name);
		if (verify && ip)
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
		else if (verify)
			SSL_set1_host(ssl, name);
	}
	if (SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
		r = ssl_fail(err, "TLS handshake with", host);
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		r = berth_error_errno(err, "create socketpair");
		goto fail;
	}
	struct client_relay *c = xcalloc(1, sizeof(*c));
	*c = (struct client_relay){ ssl, fd, sp[1], http_tls_thread_join(TLS_WAKE_SHUTDOWN, fd, sp[1]) };
	pthread_t t;
	if (pthread_create(&t, NULL, client_relay_thread, c) != 0) {
		http_tls_thread_leave(c->exit, false);
		free(c);
		r = berth_error_set(err, EAGAIN, "start TLS relay thread");
		goto fail;
	}
	pthread_detach(t);
	return sp[0];
fail:
	SSL_free(ssl);
	safe_close(sp[0]);
	safe_close(sp[1]);
	close(fd);
	return r;
}
