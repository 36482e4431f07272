/*
 * attach.c - `berth attach` and the attach helpers shared with run and
 * exec: signal proxying (docker's --sig-proxy: signals the CLI receives are
 * sent to the container through the kill API by a thread that sigwait()s
 * them) and telling a detach (the daemon closed the stream on the detach
 * keys, the container still runs) from an exit.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include "cli/cli.h"
#include "cli/opttab.h"
#include "common/detachkeys.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"

/*
 * After a TTY stream ended without a local detach, how long the exit may take
 * to show in the wait response before a still-running container counts as
 * detached by the daemon's own detach keys (which this CLI does not know).
 */
#define CLI_EXIT_GRACE_MS 2000

/* Signals forwarded to the container (docker forwards every one but CHLD/PIPE/URG/WINCH). */
static const int PROXIED[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGALRM };

struct sig_proxy {
	char *host, *id;
	sigset_t set;
};

static void *sig_proxy_thread(void *arg)
{
	struct sig_proxy *p = arg;
	for (;;) {
		int sig;
		if (sigwait(&p->set, &sig) != 0)
			continue;
		struct cli c;
		if (cli_open(&c, p->host) < 0)
			continue;
		_cleanup_free_ char *id = cli_escape(p->id);
		cli_call(&c, "POST", NULL, NULL, "/v1.41/containers/%s/kill?signal=%d", id, sig);
		cli_close(&c);
	}
	return NULL;
}

int cli_sig_proxy_start(const char *host, const char *id)
{
	struct sig_proxy *p = xcalloc(1, sizeof(*p));
	p->host = host ? xstrdup(host) : NULL;
	p->id = xstrdup(id);
	sigemptyset(&p->set);
	for (size_t i = 0; i < ARRAY_SIZE(PROXIED); i++)
		sigaddset(&p->set, PROXIED[i]);
	pthread_sigmask(SIG_BLOCK, &p->set, NULL);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&t, &at, sig_proxy_thread, p);
	pthread_attr_destroy(&at);
	if (r != 0) {
		pthread_sigmask(SIG_UNBLOCK, &p->set, NULL);
		free(p->host);
		free(p->id);
		free(p);
		return -r;
	}
	return 0; /* the thread owns p until the process exits */
}

int cli_container_running(struct cli *cli, const char *id, bool *ret_tty, bool *ret_stdin)
{
	_cleanup_free_ char *q = cli_escape(id);
	json_t *resp = NULL;
	long st = cli_call(cli, "GET", NULL, &resp, "/v1.41/containers/%s/json", q);
	if (st != 200) {
		if (st > 0)
			cli_print_daemon_error(resp, st);
		json_decref(resp);
		return -ENOENT;
	}
	json_t *cfg = json_object_get(resp, "Config");
	if (ret_tty)
		*ret_tty = json_is_true(json_object_get(cfg, "Tty"));
	if (ret_stdin)
		*ret_stdin = json_is_true(json_object_get(cfg, "OpenStdin"));
	bool running = json_is_true(json_object_get(json_object_get(resp, "State"), "Running"));
	json_decref(resp);
	return running ? 1 : 0;
}

void cli_print_daemon_error_text(const char *body, size_t len, long status)
{
	_cleanup_json_ json_t *j = json_loadb(body, len, 0, NULL);
	if (json_is_string(json_object_get(j, "message")))
		cli_print_daemon_error(j, status);
	else
		fprintf(stderr, "Error response from daemon: %.*s\n", (int)len, body);
}

int cli_hijack(struct cli *cli, const char *path, const char *body, int *ret_fd)
{
	long st = 0;
	int fd = -1;
	_cleanup_strbuf_ struct strbuf eb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	if (http_client_hijack(cli->http, "POST", path, body, body ? strlen(body) : 0, &st, &fd, &eb, &err) <
		0 ||
	    (st != 101 && st != 200)) {
		if (err)
			berth_error_print(err, "berth");
		else
			cli_print_daemon_error_text(eb.buf, eb.len, st);
		safe_close(fd);
		return -1;
	}
	*ret_fd = fd;
	return 0;
}

bool cli_raw_terminal(struct termios *saved)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	struct termios raw = *saved;
	cfmakeraw(&raw);
	return tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

void cli_resize(struct cli *cli, const char *what, const char *id)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
		cli_call(cli, "POST", NULL, NULL, "/v1.41/%s/%s/resize?h=%u&w=%u", what, id, ws.ws_row,
			 ws.ws_col);
}

int cli_attach_session(int fd, bool in, bool tty, const char *keys, bool *ret_detached)
{
	struct detach_matcher dm = { 0 };
	if (tty && in && detachkeys_parse(keys ? keys : DETACH_KEYS_DEFAULT, dm.keys, &dm.n, NULL) < 0)
		dm.n = 0;
	_cleanup_strbuf_ struct strbuf pending = STRBUF_INIT;
	bool in_open = in;
	*ret_detached = false;
	for (;;) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { in_open ? STDIN_FILENO : -1, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[0].revents && !cli_pump_out(fd, tty, &pending))
			return 0;
		if (!in_open || !p[1].revents)
			continue;
		char buf[32 * 1024];
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		_cleanup_strbuf_ struct strbuf fwd = STRBUF_INIT;
		bool detach = n > 0 && detachkeys_matcher_feed(&dm, buf, (size_t)n, &fwd);
		if (n <= 0 || (fwd.len && fs_write_all(fd, fwd.buf, fwd.len) < 0)) {
			in_open = false;
			shutdown(fd, SHUT_WR);
		}
		if (detach) {
			*ret_detached = true;
			return 0;
		}
	}
}

bool cli_detached_by_daemon(struct cli *cli, const char *id, int wfd)
{
	struct pollfd p = { wfd, POLLIN, 0 };
	if (wfd >= 0 && poll(&p, 1, CLI_EXIT_GRACE_MS) != 0)
		return false;
	return cli_container_running(cli, id, NULL, NULL) == 1;
}

int cli_wait_begin(struct cli *cli, const char *path, struct strbuf *head)
{
	_cleanup_error_ struct berth_error *err = NULL;
	long st = 0;
	int fd = http_client_send(cli->http, "POST", path, "Connection: close\r\n", NULL, 0, &err);
	if (fd >= 0 && http_client_read_head(fd, &st, head, &err) == 0 && st == 200)
		return fd;
	if (fd >= 0 && !err) { /* the daemon's error (e.g. 404: no such container) */
		_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
		if (http_client_read_body(fd, head->buf, false, &body, NULL) == 0)
			cli_print_daemon_error_text(body.buf, body.len, st);
	} else {
		_cleanup_free_ char *m = berth_error_string(err);
		fprintf(stderr, "error waiting for container: %s\n", m);
	}
	safe_close(fd);
	return -1;
}

int cli_wait_response(int wfd, const char *head)
{
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	if (http_client_read_body(wfd, head, true, &body, &err) < 0 || !body.len) {
		_cleanup_free_ char *m = err ? berth_error_string(err) : xstrdup("connection closed");
		fprintf(stderr, "error waiting for container: %s\n", m);
		return CLI_EXIT_DAEMON;
	}
	_cleanup_json_ json_t *j = json_loadb(body.buf, body.len, 0, NULL);
	json_t *code = json_object_get(j, "StatusCode");
	const char *msg = json_string_value(json_object_get(json_object_get(j, "Error"), "Message"));
	if (msg && *msg)
		fprintf(stderr, "error waiting for container: %s\n", msg);
	if (!json_is_integer(code)) {
		if (!msg)
			fprintf(stderr, "error waiting for container: unexpected answer: %.*s\n",
				(int)body.len, body.buf);
		return CLI_EXIT_DAEMON;
	}
	return (int)json_integer_value(code);
}

static const struct cli_usage attach_usage = {
	CLI_USAGE_PLAIN,
	"attach [OPTIONS] CONTAINER\n\n"
	"Attach local standard input, output, and error streams to a running container\n\n"
	"Options:\n"
	"      --detach-keys KEYS   Override the key sequence for detaching a container\n"
	"                           (default ctrl-p,ctrl-q; TTY only)\n"
	"      --no-stdin           Do not attach STDIN\n"
	"      --sig-proxy[=BOOL]   Proxy all received signals to the process (default true;\n"
	"                           not with a TTY)\n"
	"  -H, --host URL           Daemon socket (default $BERTH_HOST)",
};

static int do_attach(struct cli *cli, const char *host, const char *id, bool no_stdin, bool sig_proxy,
		     const char *keys)
{
	bool tty = false, open_stdin = false;
	int r = cli_container_running(cli, id, &tty, &open_stdin);
	if (r < 0)
		return 1;
	if (r == 0) {
		fprintf(stderr, "You cannot attach to a stopped container, start it first\n");
		return 1;
	}
	bool in = open_stdin && !no_stdin;
	_cleanup_free_ char *q = cli_escape(id);
	_cleanup_free_ char *kq = keys ? cli_escape(keys) : NULL;
	_cleanup_free_ char *path =
	    xasprintf("/v1.41/containers/%s/attach?stream=1&stdin=%d&stdout=1&stderr=1%s%s", q, in,
		      kq ? "&detachKeys=" : "", kq ? kq : "");
	int fd = -1;
	if (cli_hijack(cli, path, NULL, &fd) < 0)
		return 1;
	/* registered before streaming: an exit right after the stream cannot be missed */
	_cleanup_free_ char *wpath = xasprintf("/v1.41/containers/%s/wait", q);
	_cleanup_strbuf_ struct strbuf whead = STRBUF_INIT;
	_cleanup_close_ int wfd = cli_wait_begin(cli, wpath, &whead);
	if (wfd < 0) {
		close(fd);
		return 1;
	}
	if (sig_proxy && !tty)
		(void)cli_sig_proxy_start(host, id);
	struct termios saved;
	bool raw = tty && in && cli_raw_terminal(&saved);
	if (tty)
		cli_resize(cli, "containers", id);
	bool detached = false;
	cli_attach_session(fd, in, tty, keys, &detached);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	close(fd);
	if (detached || (tty && in && cli_detached_by_daemon(cli, id, wfd)))
		return 0; /* the container goes on */
	return cli_wait_response(wfd, whead.buf);
}

int cli_attach(int argc, char **argv)
{
	bool no_stdin = false, sig_proxy = true;
	const char *host = NULL, *keys = NULL;
	const struct cli_opt t[] = {
		{ "no-stdin", 0, CLI_OPT_FLAG, &no_stdin },
		{ "sig-proxy", 0, CLI_OPT_BOOL, &sig_proxy },
		{ "detach-keys", 0, CLI_OPT_STRING, &keys },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse_usage(t, argc, argv, "+", &attach_usage, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "berth attach: requires exactly 1 argument.\n");
		return cli_usage_print(&attach_usage, false);
	}
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	int code = do_attach(&cli, host, argv[optind], no_stdin, sig_proxy, keys);
	cli_close(&cli);
	return code;
}
