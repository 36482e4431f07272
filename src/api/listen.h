/*
 * listen.h - private to api/: the daemon's listeners (-H, repeatable):
 * unix sockets and TCP, the latter only with TLS client certificates
 * (--tlsverify) unless --allow-insecure-tcp.
 */
#ifndef BERTH_API_LISTEN_H
#define BERTH_API_LISTEN_H

#include "http/http.h"

#define API_MAX_HOSTS 8

struct api_listen_opts {
	const char
	    *hosts[API_MAX_HOSTS]; /* "unix:///path", "/path", "tcp://host:port", "fd://" is not supported */
	size_t n_hosts;
	bool tls, tlsverify, allow_insecure_tcp;
	const char *tlscacert, *tlscert, *tlskey;
};

/*
 * Check the hosts and the TLS policy without touching anything: every host
 * parses, TCP hosts have --tlsverify (or allow_insecure_tcp), TLS has a
 * certificate and key, --tlsverify a CA. *ret_insecure: a TCP host will
 * accept clients without a verified certificate (the caller warns loudly).
 */
int api_listen_check(const struct api_listen_opts *o, bool *ret_insecure, struct berth_error **err);

struct api_listeners;
/*
 * Bind every host (unix sockets mode 0660). *ret_main_fd: the first unix
 * socket, owned by the caller from now on (for the http server's own
 * listening socket), or -1.
 */
int api_listen_bind(const struct api_listen_opts *o, struct api_listeners **ret, int *ret_main_fd,
		    struct berth_error **err);
/* Serve the other sockets through srv (TLS where configured). */
int api_listen_start(struct api_listeners *l, struct http_server *srv, struct berth_error **err);
/* Stop accepting, close, unlink the unix sockets. Accepts NULL. */
void api_listen_free(struct api_listeners *l);
/* "unix:///a/b.sock, tcp://127.0.0.1:2376 (tls, client certificates)" for the log. Caller frees. */
char *api_listen_describe(const struct api_listen_opts *o);

#endif
