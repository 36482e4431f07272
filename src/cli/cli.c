/*
 * cli.c - connecting to the daemon, requests, daemon errors, streams.
 */
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <time.h>
#include <sys/socket.h>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/json.h"

/* DOCKER_TLS_VERIFY / DOCKER_TLS with the files in DOCKER_CERT_PATH (default ~/.docker), like docker. */
static int cli_tls(struct cli *cli, struct berth_error **err)
{
	const char *verify = getenv("DOCKER_TLS_VERIFY"), *tls = getenv("DOCKER_TLS");
	bool v = verify && *verify, t = tls && *tls && !streq(tls, "0") && strcasecmp(tls, "false");
	if (!v && !t)
		return 0;
	if (!startswith(cli->host, "tcp://"))
		return 0;
	const char *home = getenv("HOME");
	_cleanup_free_ char *dir = getenv("DOCKER_CERT_PATH") && *getenv("DOCKER_CERT_PATH")
				       ? xstrdup(getenv("DOCKER_CERT_PATH"))
				       : xasprintf("%s/.docker", home ? home : "/root");
	_cleanup_free_ char *ca = xasprintf("%s/ca.pem", dir), *cert = xasprintf("%s/cert.pem", dir),
			    *key = xasprintf("%s/key.pem", dir);
	bool have_cert = access(cert, R_OK) == 0 && access(key, R_OK) == 0;
	struct http_tls_files f = { .ca = ca,
				    .cert = have_cert ? cert : NULL,
				    .key = have_cert ? key : NULL };
	signal(SIGPIPE, SIG_IGN); /* a vanished peer must not kill the TLS relay */
	return http_client_set_tls(cli->http, &f, v, err);
}

int cli_open(struct cli *cli, const char *host_flag)
{
	static char buf[4096];
	const char *host = host_flag;
	if (!host)
		host = getenv("BERTH_HOST");
	if (!host && getenv("DOCKER_HOST") && *getenv("DOCKER_HOST"))
		host = getenv("DOCKER_HOST");
	if (!host && getenv("BERTH_EXEC_ROOT")) {
		snprintf(buf, sizeof(buf), "unix://%s/berth.sock", getenv("BERTH_EXEC_ROOT"));
		host = buf;
	}
	if (!host)
		host = "unix:///run/berth/berth.sock";
	cli->host = host;
	_cleanup_error_ struct berth_error *err = NULL;
	if (http_client_new(host, &cli->http, &err) < 0 || cli_tls(cli, &err) < 0) {
		berth_error_print(err, "berth");
		cli->http = http_client_free(cli->http);
		return -EINVAL;
	}
	return 0;
}

void cli_close(struct cli *cli)
{
	cli->http = http_client_free(cli->http);
}

/* Percent-encode everything but RFC 3986's unreserved characters (as curl_easy_escape). */
char *cli_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct strbuf b = STRBUF_INIT;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p)) {
			strbuf_addch(&b, (char)*p);
		} else {
			strbuf_addch(&b, '%');
			strbuf_addch(&b, hex[*p >> 4]);
			strbuf_addch(&b, hex[*p & 15]);
		}
	}
	return strbuf_detach(&b, NULL);
}

void cli_print_daemon_error(const json_t *body, long status)
{
	const char *m = json_string_value(json_object_get(body, "message"));
	if (m)
		fprintf(stderr, "Error response from daemon: %s\n", m);
	else
		fprintf(stderr, "Error response from daemon: HTTP status %ld\n", status);
}

long cli_call(struct cli *cli, const char *method, const json_t *body, json_t **ret, const char *fmt, ...)
{
	va_list ap;
	struct strbuf path = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&path, fmt, ap);
	va_end(ap);
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct http_client_request r = { .method = method,
					 .path = path.buf,
					 .body = text,
					 .body_len = text ? strlen(text) : 0,
					 .body_fd = -1,
					 .content_type = text ? "application/json" : NULL };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	long status = 0;
	int rc = http_client_do(cli->http, &r, &status, &out, &err);
	strbuf_release(&path);
	if (rc < 0) {
		berth_error_print(err, NULL);
		return rc;
	}
	if (ret) {
		*ret = out.len ? json_loadb(out.buf, out.len, 0, NULL) : NULL;
		if (!*ret && out.len && status >= 400)
			*ret = json_pack("{s:s%}", "message", out.buf, out.len);
	}
	return status;
}

bool cli_is_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--"))
			return false;
		if (streq(argv[i], "--help") || streq(argv[i], "-h"))
			return true;
	}
	return false;
}

/* Demultiplex frames from buf; keeps an incomplete frame in pending. */
static void demux(struct strbuf *pending, const char *buf, size_t n)
{
	strbuf_add(pending, buf, n);
	size_t i = 0;
	while (pending->len - i >= 8) {
		const unsigned char *h = (const unsigned char *)pending->buf + i;
		size_t len = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
		if (pending->len - i - 8 < len)
			break;
		(void)fs_write_all(h[0] == 2 ? STDERR_FILENO : STDOUT_FILENO, pending->buf + i + 8, len);
		i += 8 + len;
	}
	memmove(pending->buf, pending->buf + i, pending->len - i);
	strbuf_setlen(pending, pending->len - i);
}

bool cli_pump_out(int fd, bool tty, struct strbuf *pending)
{
	char buf[32 * 1024];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	if (tty)
		(void)fs_write_all(STDOUT_FILENO, buf, (size_t)n);
	else
		demux(pending, buf, (size_t)n);
	return true;
}

void cli_copy_stream(int fd, bool tty)
{
	_cleanup_strbuf_ struct strbuf pending = STRBUF_INIT;
	while (cli_pump_out(fd, tty, &pending))
		;
}

void cli_attach_stdio(int fd, bool in, bool tty)
{
	_cleanup_strbuf_ struct strbuf pending = STRBUF_INIT;
	bool in_open = in;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { in_open ? STDIN_FILENO : -1, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (p[0].revents && !cli_pump_out(fd, tty, &pending))
			return;
		if (in_open && p[1].revents) {
			char buf[32 * 1024];
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0 || fs_write_all(fd, buf, (size_t)n) < 0) {
				in_open = false;
				shutdown(fd, SHUT_WR);
			}
		}
	}
}

char *cli_human_size(double b)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	size_t u = 0;
	while (b >= 1000 && u < ARRAY_SIZE(units) - 1) {
		b /= 1000;
		u++;
	}
	return xasprintf("%.3g%s", b, units[u]);
}

char *cli_human_ago(int64_t t)
{
	int64_t s = (int64_t)time(NULL) - t;
	if (s < 1)
		return xstrdup("Less than a second ago");
	if (s < 60)
		return xasprintf("%lld second%s ago", (long long)s, s == 1 ? "" : "s");
	if (s < 3600)
		return s < 120 ? xstrdup("About a minute ago")
			       : xasprintf("%lld minutes ago", (long long)(s / 60));
	if (s < 48 * 3600)
		return s < 7200 ? xstrdup("About an hour ago")
				: xasprintf("%lld hours ago", (long long)(s / 3600));
	return xasprintf("%lld days ago", (long long)(s / 86400));
}
