/*
 * listen.c - the daemon's sockets: unix paths and TCP addresses; TCP is TLS
 * with required client certificates unless explicitly forced otherwise.
 */
#include <sys/stat.h>

#include "api/listen.h"
#include "common/strbuf.h"

struct api_listeners {
	size_t n;
	int fds[API_MAX_HOSTS];
	char *unix_paths[API_MAX_HOSTS]; /* to unlink; NULL for TCP */
	bool tcp[API_MAX_HOSTS];
	bool main_taken;
	size_t main_index;
	struct http_tcp_listener *running[API_MAX_HOSTS];
	struct http_tls_files tls;
	bool use_tls, verify;
};

/* The unix path of host, or NULL when it is a tcp:// host; -EINVAL for anything else. */
static int classify(const char *host, const char **ret_path, const char **ret_addr, struct berth_error **err)
{
	*ret_path = *ret_addr = NULL;
	if (startswith(host, "unix://"))
		*ret_path = host + 7;
	else if (host[0] == '/')
		*ret_path = host;
	else if (startswith(host, "tcp://"))
		*ret_addr = host + 6;
	else
		return berth_error_msg(err, EINVAL,
				       "invalid host '%s': expected unix:///path or tcp://host:port", host);
	if (*ret_path && (*ret_path)[0] != '/')
		return berth_error_msg(err, EINVAL, "invalid host '%s': the socket path must be absolute",
				       host);
	if (*ret_addr && (!**ret_addr || !strchr(*ret_addr, ':') || strchr(*ret_addr, '/')))
		return berth_error_msg(err, EINVAL, "invalid host '%s': expected tcp://host:port", host);
	return 0;
}

int api_listen_check(const struct api_listen_opts *o, bool *ret_insecure, struct berth_error **err)
{
	bool any_tcp = false;
	*ret_insecure = false;
	if (o->n_hosts == 0)
		return berth_error_msg(err, EINVAL, "no host to listen on");
	for (size_t i = 0; i < o->n_hosts; i++) {
		const char *path, *addr;
		int r = classify(o->hosts[i], &path, &addr, err);
		if (r < 0)
			return r;
		any_tcp = any_tcp || addr;
		if (addr && !o->tlsverify && !o->allow_insecure_tcp)
			return berth_error_msg(
			    err, EPERM,
			    "refusing to listen on '%s' without --tlsverify: anyone who can reach the port "
			    "would control this host as root; give --tlsverify --tlscacert --tlscert "
			    "--tlskey, "
			    "or --allow-insecure-tcp to take that risk",
			    o->hosts[i]);
	}
	bool tls = o->tls || o->tlsverify;
	if (tls && (!o->tlscert || !o->tlskey))
		return berth_error_msg(err, EINVAL, "TLS needs --tlscert and --tlskey");
	if (o->tlsverify && !o->tlscacert)
		return berth_error_msg(err, EINVAL, "--tlsverify needs --tlscacert");
	*ret_insecure = any_tcp && !o->tlsverify;
	return 0;
}

int api_listen_bind(const struct api_listen_opts *o, struct api_listeners **ret, int *ret_main_fd,
		    struct berth_error **err)
{
	struct api_listeners *l = xcalloc(1, sizeof(*l));
	l->tls = (struct http_tls_files){ o->tlscacert, o->tlscert, o->tlskey };
	l->use_tls = o->tls || o->tlsverify;
	l->verify = o->tlsverify;
	*ret_main_fd = -1;
	for (size_t i = 0; i < o->n_hosts; i++) {
		const char *path, *addr;
		int r = classify(o->hosts[i], &path, &addr, err);
		int fd = r < 0 ? r : path ? http_listen_unix(path, 0660, err) : http_listen_tcp(addr, err);
		if (fd < 0) {
			*ret_main_fd = safe_close(*ret_main_fd);
			api_listen_free(l);
			return fd;
		}
		l->fds[l->n] = fd;
		l->unix_paths[l->n] = path ? xstrdup(path) : NULL;
		l->tcp[l->n] = addr != NULL;
		if (path && !l->main_taken) {
			l->main_taken = true;
			l->main_index = l->n;
			*ret_main_fd = fd;
			l->fds[l->n] = -1; /* the caller's now */
		}
		l->n++;
	}
	*ret = l;
	return 0;
}

int api_listen_start(struct api_listeners *l, struct http_server *srv, struct berth_error **err)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->main_taken && i == l->main_index)
			continue;
		bool tls = l->tcp[i] && l->use_tls;
		int fd = l->fds[i];
		l->fds[i] = -1; /* taken over by the listener, even on failure */
		int r =
		    http_tcp_listener_start(srv, fd, tls ? &l->tls : NULL, l->verify, &l->running[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

void api_listen_free(struct api_listeners *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++) {
		http_tcp_listener_stop(l->running[i]);
		safe_close(l->fds[i]);
		if (l->unix_paths[i])
			(void)unlink(l->unix_paths[i]);
		free(l->unix_paths[i]);
	}
	free(l);
}

char *api_listen_describe(const struct api_listen_opts *o)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < o->n_hosts; i++) {
		bool tcp = startswith(o->hosts[i], "tcp://");
		strbuf_addf(&sb, "%s%s", i ? ", " : "", o->hosts[i]);
		if (tcp)
			strbuf_addstr(&sb, o->tlsverify ? " (tls, client certificates required)"
							: (o->tls ? " (tls, NO client authentication)"
								  : " (plain http, NO authentication)"));
	}
	return strbuf_detach(&sb, NULL);
}
