/*
 * shim.c - `berth shim DIR`: one monitor process per running container.
 *
 * Single-threaded poll loop over: the listening socket, the container's
 * stdout/stderr (pipes, or a pty master with a TTY), attached clients, exec
 * sessions and a signalfd for SIGCHLD. The shim forks once to detach (it is
 * single-threaded then, so the child may do anything) and is a child
 * subreaper, so the container's init, created by the runtime, is reparented
 * to it and reaped here.
 *
 * Output never waits for a client: every client has its own queue, written
 * with non-blocking sends when its socket is writable; a client more than
 * SHIM_CLIENT_MAX_PENDING behind is dropped (its connection closed), the
 * container and its log go on. An exec's output instead applies back-
 * pressure to the exec (its pipe is not read while its one client is
 * SHIM_EXEC_HIGH_WATER behind), which blocks only that process, as docker.
 * Detach keys (TTY only, as docker) are matched on each client's stdin.
 */
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "shim/client.h"
#include "shim/logfile.h"
#include "runtime/runtime.h"
#include "runtime/ops.h"
#include "shim/shim.h"

#define SHIM_MAX_CLIENTS      64
#define SHIM_MAX_EXECS        32
#define SHIM_BUF              (32 * 1024)
/* An exec's pipes are not read while its client is this far behind. */
#define SHIM_EXEC_HIGH_WATER  (256 * 1024)
/* At exit, clients that take no data for this long are dropped. */
#define SHIM_DRAIN_TIMEOUT_MS 5000

struct exec_session {
	char *id;
	pid_t pid;
	struct client conn; /* stream to the client, fd -1 when detached */
	int out, errfd, in; /* our ends; out is the pty master with a tty */
	bool tty, exited;
	bool raw;      /* output to conn unframed: the start's Tty, not the process's */
	bool recorded; /* exec-<id>.json written; the stream may still be flushing */
	int status;
};

struct shim {
	char *dir, *id, *runtime, *state_root, *log_path;
	char *runtime_log;   /* an external runtime's --log (its stderr is the container's) */
	char **runtime_args; /* an external runtime's global options (dockerd's runtimeArgs) */
	bool tty, open_stdin, stdin_once;
	struct runtime_oci rt;
	struct logfile log;
	int listen_fd, sig_fd;
	int out, errfd, in; /* container stdio, our ends */
	pid_t init_pid;
	bool init_exited;
	int init_status;
	struct client clients[SHIM_MAX_CLIENTS];
	size_t n_clients;
	struct exec_session *execs[SHIM_MAX_EXECS];
	size_t n_execs;
};

static int load_config(struct shim *s, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("%s/shim.json", s->dir);
	_cleanup_json_ json_t *j = NULL;
	int r = json_load_path(path, 1 << 20, &j, err);
	if (r < 0)
		return r;
	const char *id, *runtime, *root, *logp = NULL, *driver = NULL, *attrs = NULL;
	int64_t max_size = 0, max_file = 1;
	bool compress = false;
	if ((r = json_get_string(j, NULL, "id", JSON_REQUIRED, &id, err)) < 0 ||
	    (r = json_get_string(j, NULL, "runtime", JSON_REQUIRED, &runtime, err)) < 0 ||
	    (r = json_get_string(j, NULL, "runtime_root", JSON_REQUIRED, &root, err)) < 0 ||
	    (r = json_get_strv(j, NULL, "runtime_args", 0, &s->runtime_args, err)) < 0 ||
	    (r = json_get_string(j, NULL, "log_path", 0, &logp, err)) < 0 ||
	    (r = json_get_int64(j, NULL, "log_max_size", 0, &max_size, err)) < 0 ||
	    (r = json_get_int64(j, NULL, "log_max_file", 0, &max_file, err)) < 0 ||
	    (r = json_get_string(j, NULL, "log_driver", 0, &driver, err)) < 0 ||
	    (r = json_get_bool(j, NULL, "log_compress", 0, &compress, err)) < 0 ||
	    (r = json_get_string(j, NULL, "log_attrs", 0, &attrs, err)) < 0 ||
	    (r = json_get_bool(j, NULL, "tty", 0, &s->tty, err)) < 0 ||
	    (r = json_get_bool(j, NULL, "open_stdin", 0, &s->open_stdin, err)) < 0 ||
	    (r = json_get_bool(j, NULL, "stdin_once", 0, &s->stdin_once, err)) < 0)
		return r;
	s->id = xstrdup(id);
	s->runtime = xstrdup(runtime);
	s->state_root = xstrdup(root);
	s->log_path = logp ? xstrdup(logp) : NULL;
	s->runtime_log = xasprintf("%s/runtime.log", s->dir);
	runtime_oci_init(&s->rt, s->runtime, s->state_root, s->runtime_log, 60000);
	s->rt.args = s->runtime_args;
	shim_logfile_init(&s->log, s->log_path, max_size, (int)max_file);
	shim_logfile_set_format(&s->log, driver && streq(driver, "local"), compress);
	s->log.attrs = attrs && *attrs ? xstrdup(attrs) : NULL;
	return 0;
}

/* Bind a unix socket at dir/name; returns the listening fd. */
static int listen_at(const char *dir, const char *name, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
	if (strlen(path) >= sizeof(sa.sun_path))
		return berth_error_set(err, ENAMETOOLONG, "bind '%s'", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_errno(err, "create socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		return berth_error_errno(err, "listen on '%s'", path);
	return TAKE_FD(fd);
}

/* Receive the pty master the runtime sends over the console socket. */
static int recv_console(int lfd, struct berth_error **err)
{
	_cleanup_close_ int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return berth_error_errno(err, "accept console socket");
	char buf[256];
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)
	};
	/* The runtime may connect before it sends (the socket is non-blocking): wait for the message
	 * or the runtime's end of the connection, a slow runtime for up to a minute. */
	struct pollfd p = { c, POLLIN, 0 };
	int r;
	while ((r = poll(&p, 1, 60000)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return berth_error_msg(err, ETIMEDOUT, "receive console: the runtime sent none");
	ssize_t n;
	while ((n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return berth_error_errno(err, "receive console");
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return berth_error_msg(err, EIO, "receive console: no file descriptor");
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* Pipes for a process: ours[i] is our end, theirs[i] the process's. -1 where unused. */
static int make_stdio(bool want_in, bool tty, int ours[3], int theirs[3], struct berth_error **err)
{
	for (int i = 0; i < 3; i++)
		ours[i] = theirs[i] = -1;
	for (int i = 0; i < 3; i++) {
		if ((i == 0 && !want_in) || (tty && i > 0))
			continue;
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			return berth_error_errno(err, "create pipe");
		ours[i] = i == 0 ? p[1] : p[0];
		theirs[i] = i == 0 ? p[0] : p[1];
	}
	return 0;
}

static void close3(int fds[3])
{
	for (int i = 0; i < 3; i++)
		fds[i] = safe_close(fds[i]);
}

static int create_container(struct shim *s, struct berth_error **err)
{
	int ours[3], theirs[3];
	int r = make_stdio(s->open_stdin, s->tty, ours, theirs, err);
	if (r < 0)
		return r;
	_cleanup_close_ int con_lfd = -1;
	_cleanup_free_ char *con_path = NULL;
	if (s->tty) {
		con_lfd = listen_at(s->dir, "console.sock", err);
		if (con_lfd < 0)
			return con_lfd;
		con_path = xasprintf("%s/console.sock", s->dir);
	}
	struct runtime_io io = { { theirs[0], theirs[1], theirs[2] }, con_path };
	r = s->rt.ops->create(&s->rt, s->id, s->dir, &io, &s->init_pid, err);
	close3(theirs);
	if (r < 0) {
		close3(ours);
		return r;
	}
	s->in = ours[0];
	s->out = ours[1];
	s->errfd = ours[2];
	if (s->tty) {
		int m = recv_console(con_lfd, err);
		(void)unlink(con_path);
		if (m < 0)
			return m;
		s->out = m;
		if (s->open_stdin)
			s->in = safe_close(s->in), s->in = fcntl(m, F_DUPFD_CLOEXEC, 0);
	}
	return 0;
}

static void reply(int fd, const char *error)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (error) {
		strbuf_addstr(&sb, "{\"error\":");
		strbuf_add_json_string(&sb, error);
		strbuf_addstr(&sb, "}\n");
	} else {
		strbuf_addstr(&sb, "{\"ok\":true}\n");
	}
	(void)fs_write_all(fd, sb.buf, sb.len);
}

static void reply_err(int fd, struct berth_error *e)
{
	_cleanup_free_ char *m = berth_error_string(e);
	reply(fd, m);
}

/*
 * Send output to the log and to every client that wants this stream.
 * buf has 8 free bytes before data for the frame header.
 */
static void broadcast(struct shim *s, int stream, char *buf, size_t n)
{
	char *data = buf + 8;
	shim_logfile_write(&s->log, stream, data, n);
	if (!s->tty) {
		unsigned char hdr[8] = { (unsigned char)stream,
					 0,
					 0,
					 0,
					 (unsigned char)(n >> 24),
					 (unsigned char)(n >> 16),
					 (unsigned char)(n >> 8),
					 (unsigned char)n };
		memcpy(buf, hdr, 8);
	}
	for (size_t i = 0; i < s->n_clients; i++) {
		struct client *c = &s->clients[i];
		if (c->fd < 0 || (stream == 1 && !c->out) || (stream == 2 && !c->err))
			continue;
		if (shim_outq_send(c->fd, &c->q, s->tty ? data : buf, s->tty ? n : n + 8,
				   SHIM_CLIENT_MAX_PENDING) < 0)
			shim_client_drop(c);
	}
}

/* Drop clients whose connection is closed (keeps the table compact). */
static void clients_compact(struct shim *s)
{
	size_t j = 0;
	for (size_t i = 0; i < s->n_clients; i++) {
		if (s->clients[i].fd < 0) {
			shim_outq_done(&s->clients[i].q);
			continue;
		}
		s->clients[j++] = s->clients[i];
	}
	s->n_clients = j;
}

static int read_request(int fd, json_t **ret)
{
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_until(fd, "\n", SHIM_MAX_REQUEST, &sb) < 0)
		return -EIO;
	strbuf_setlen(&sb, sb.len - 1);
	tv.tv_sec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*ret = json_loadb(sb.buf, sb.len, 0, NULL);
	return *ret ? 0 : -EINVAL;
}

static int start_exec(struct shim *s, int conn, json_t *req, struct berth_error **err)
{
	const char *id = json_string_value(json_object_get(req, "id"));
	json_t *proc = json_object_get(req, "process");
	bool detach = json_is_true(json_object_get(req, "detach"));
	if (!id || !json_is_object(proc) || strspn(id, "0123456789abcdef") != strlen(id))
		return berth_error_msg(err, EINVAL, "exec: bad request");
	if (s->n_execs >= SHIM_MAX_EXECS)
		return berth_error_msg(err, EBUSY, "exec: too many concurrent execs");
	bool tty = json_is_true(json_object_get(proc, "terminal"));
	_cleanup_free_ char *pfile = xasprintf("%s/exec-%s.process.json", s->dir, id);
	_cleanup_free_ char *ptext = json_dumps(proc, JSON_COMPACT);
	int r = fs_write_file_replace(pfile, ptext, strlen(ptext), 0600, err);
	if (r < 0)
		return r;
	int ours[3], theirs[3];
	bool want_in = json_is_true(json_object_get(req, "stdin")) && !detach;
	if ((r = make_stdio(want_in, tty, ours, theirs, err)) < 0)
		return r;
	if (detach)
		close3(ours);
	_cleanup_close_ int con_lfd = -1;
	_cleanup_free_ char *con_path = NULL;
	if (tty) {
		_cleanup_free_ char *name = xasprintf("exec-%.12s.sock", id);
		con_lfd = listen_at(s->dir, name, err);
		if (con_lfd < 0)
			return close3(ours), close3(theirs), con_lfd;
		con_path = xasprintf("%s/%s", s->dir, name);
	}
	pid_t pid;
	struct runtime_io io = { { theirs[0], theirs[1], theirs[2] }, con_path };
	r = s->rt.ops->exec(&s->rt, s->id, pfile, &io, &pid, err);
	close3(theirs);
	if (r < 0)
		return close3(ours), r;
	struct exec_session *x = xcalloc(1, sizeof(*x));
	x->id = xstrdup(id);
	x->pid = pid;
	x->tty = tty;
	json_t *raw = json_object_get(req, "raw");
	x->raw = json_is_boolean(raw) ? json_is_true(raw) : tty;
	x->in = ours[0];
	x->out = ours[1];
	x->errfd = ours[2];
	x->conn = (struct client){ .fd = detach ? -1 : conn, .in = want_in };
	shim_request_detach_keys(req, tty, &x->conn.dm);
	if (tty) {
		/* The runtime sends the pty master once the process exists; wait for it (bounded). */
		struct pollfd p = { con_lfd, POLLIN, 0 };
		if (poll(&p, 1, 30000) == 1) {
			int m = recv_console(con_lfd, NULL);
			if (m >= 0) {
				x->out = m;
				if (want_in)
					x->in = safe_close(x->in), x->in = fcntl(m, F_DUPFD_CLOEXEC, 0);
			}
		}
		(void)unlink(con_path);
	}
	s->execs[s->n_execs++] = x;
	return 0;
}

static void handle_request(struct shim *s, int fd)
{
	_cleanup_json_ json_t *req = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	if (read_request(fd, &req) < 0) {
		reply(fd, "bad request");
		close(fd);
		return;
	}
	const char *op = json_string_value(json_object_get(req, "op"));
	if (!op) {
		reply(fd, "bad request: no op");
	} else if (streq(op, "start")) {
		if (s->rt.ops->start(&s->rt, s->id, &e) < 0)
			reply_err(fd, e);
		else
			reply(fd, NULL);
	} else if (streq(op, "attach")) {
		if (s->n_clients >= SHIM_MAX_CLIENTS) {
			reply(fd, "too many attached clients");
		} else {
			reply(fd, NULL);
			struct client *c = &s->clients[s->n_clients++];
			*c = (struct client){ .fd = fd,
					      .in = json_is_true(json_object_get(req, "stdin")),
					      .out = json_is_true(json_object_get(req, "stdout")),
					      .err = json_is_true(json_object_get(req, "stderr")) };
			shim_request_detach_keys(req, s->tty, &c->dm);
			return;
		}
	} else if (streq(op, "exec")) {
		bool detach = json_is_true(json_object_get(req, "detach"));
		if (start_exec(s, fd, req, &e) < 0) {
			reply_err(fd, e);
		} else {
			reply(fd, NULL);
			if (!detach)
				return;
		}
	} else if (streq(op, "resize")) {
		json_int_t h = json_integer_value(json_object_get(req, "height"));
		json_int_t w = json_integer_value(json_object_get(req, "width"));
		const char *xid = json_string_value(json_object_get(req, "exec"));
		int tfd = s->tty ? s->out : -1;
		for (size_t i = 0; xid && i < s->n_execs; i++)
			if (streq(s->execs[i]->id, xid))
				tfd = s->execs[i]->tty ? s->execs[i]->out : -1;
		struct winsize ws = { .ws_row = (unsigned short)h, .ws_col = (unsigned short)w };
		if (tfd < 0 || ioctl(tfd, TIOCSWINSZ, &ws) < 0)
			reply(fd, "resize: no terminal");
		else
			reply(fd, NULL);
	} else {
		reply(fd, "bad request: unknown op");
	}
	close(fd);
}

static void write_exit_file(struct shim *s)
{
	struct timespec ts;
	char t[RFC3339_MAX];
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, t);
	int st = s->init_status;
	_cleanup_free_ char *body = xasprintf("{\"exit_code\":%d,\"signal\":%d,\"finished_at\":\"%s\"}\n",
					      proc_exit_code(st), WIFSIGNALED(st) ? WTERMSIG(st) : 0, t);
	_cleanup_free_ char *path = xasprintf("%s/exit.json", s->dir);
	(void)fs_write_file_replace(path, body, strlen(body), 0600, NULL);
}

/* Record the exec's exit (before its stream closes: a client that never reads cannot hide it). */
static void record_exec(struct shim *s, struct exec_session *x)
{
	_cleanup_free_ char *path = xasprintf("%s/exec-%s.json", s->dir, x->id);
	_cleanup_free_ char *body =
	    xasprintf("{\"exit_code\":%d,\"pid\":%d}\n", proc_exit_code(x->status), (int)x->pid);
	(void)fs_write_file_replace(path, body, strlen(body), 0600, NULL);
	_cleanup_free_ char *pfile = xasprintf("%s/exec-%s.process.json", s->dir, x->id);
	(void)unlink(pfile);
	x->recorded = true;
}

static void finish_exec(struct shim *s, size_t i)
{
	struct exec_session *x = s->execs[i];
	if (!x->recorded)
		record_exec(s, x);
	shim_client_drop(&x->conn);
	safe_close(x->in);
	safe_close(x->out);
	safe_close(x->errfd);
	free(x->id);
	free(x);
	s->execs[i] = s->execs[--s->n_execs];
}

static void reap(struct shim *s)
{
	struct signalfd_siginfo si;
	while (read(s->sig_fd, &si, sizeof(si)) > 0)
		;
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p <= 0)
			break;
		shim_logfile_child_exited(&s->log, p);
		if (p == s->init_pid) {
			s->init_exited = true;
			s->init_status = st;
		}
		for (size_t i = 0; i < s->n_execs; i++)
			if (s->execs[i]->pid == p) {
				s->execs[i]->exited = true;
				s->execs[i]->status = st;
			}
	}
}

/* Read from a container/exec output fd; returns false at EOF (pty: EIO). */
static bool pump(int fd, int stream, struct shim *s, struct exec_session *x)
{
	char buf[8 + SHIM_BUF];
	ssize_t n = read(fd, buf + 8, SHIM_BUF);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	if (!x) {
		broadcast(s, stream, buf, (size_t)n);
	} else if (x->conn.fd >= 0) {
		size_t len = (size_t)n;
		const char *p = buf + 8;
		if (!x->raw) {
			unsigned char hdr[8] = { (unsigned char)stream,
						 0,
						 0,
						 0,
						 (unsigned char)(len >> 24),
						 (unsigned char)(len >> 16),
						 (unsigned char)(len >> 8),
						 (unsigned char)len };
			memcpy(buf, hdr, 8);
			p = buf;
			len += 8;
		}
		if (shim_outq_send(x->conn.fd, &x->conn.q, p, len, SHIM_CLIENT_MAX_PENDING) < 0)
			shim_client_drop(&x->conn);
	}
	return true;
}

enum slot_kind { SLOT_LISTEN, SLOT_SIG, SLOT_OUT, SLOT_ERR, SLOT_CLIENT, SLOT_XOUT, SLOT_XERR, SLOT_XCONN };

static int loop(struct shim *s)
{
	struct pollfd pfd[4 + SHIM_MAX_CLIENTS + 3 * SHIM_MAX_EXECS];
	enum slot_kind kind[ARRAY_SIZE(pfd)];
	size_t idx[ARRAY_SIZE(pfd)];
	for (;;) {
		size_t n = 0;
#define ADDEV(fd_, ev_, k_, i_) \
	(pfd[n] = (struct pollfd){ (fd_), (ev_), 0 }, kind[n] = (k_), idx[n] = (i_), n++)
#define ADD(fd_, k_, i_) ADDEV(fd_, POLLIN, k_, i_)
		ADD(s->listen_fd, SLOT_LISTEN, 0);
		ADD(s->sig_fd, SLOT_SIG, 0);
		if (s->out >= 0)
			ADD(s->out, SLOT_OUT, 0);
		if (s->errfd >= 0)
			ADD(s->errfd, SLOT_ERR, 0);
		for (size_t i = 0; i < s->n_clients; i++) {
			short ev = shim_client_events(&s->clients[i], true);
			if (s->clients[i].fd >= 0 && ev)
				ADDEV(s->clients[i].fd, ev, SLOT_CLIENT, i);
		}
		for (size_t i = 0; i < s->n_execs; i++) {
			struct exec_session *x = s->execs[i];
			bool room = x->conn.fd < 0 || shim_outq_pending(&x->conn.q) < SHIM_EXEC_HIGH_WATER;
			if (x->out >= 0 && room)
				ADD(x->out, SLOT_XOUT, i);
			if (x->errfd >= 0 && room)
				ADD(x->errfd, SLOT_XERR, i);
			short ev = shim_client_events(&x->conn, x->in >= 0);
			if (x->conn.fd >= 0 && ev)
				ADDEV(x->conn.fd, ev, SLOT_XCONN, i);
		}
#undef ADD
#undef ADDEV
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			return -errno;
		for (size_t k = 0; k < n; k++) {
			if (!pfd[k].revents)
				continue;
			size_t i = idx[k];
			switch (kind[k]) {
			case SLOT_LISTEN: {
				int c = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
				if (c >= 0)
					handle_request(s, c);
				break;
			}
			case SLOT_SIG: reap(s); break;
			case SLOT_OUT:
				if (!pump(s->out, 1, s, NULL))
					s->out = safe_close(s->out), shim_logfile_flush(&s->log, 1);
				break;
			case SLOT_ERR:
				if (!pump(s->errfd, 2, s, NULL))
					s->errfd = safe_close(s->errfd), shim_logfile_flush(&s->log, 2);
				break;
			case SLOT_CLIENT:
				shim_client_ready(&s->clients[i], pfd[k].revents, &s->in, s->stdin_once,
						  s->tty);
				break;
			case SLOT_XOUT:
				if (i < s->n_execs && !pump(s->execs[i]->out, 1, s, s->execs[i]))
					s->execs[i]->out = safe_close(s->execs[i]->out);
				break;
			case SLOT_XERR:
				if (i < s->n_execs && !pump(s->execs[i]->errfd, 2, s, s->execs[i]))
					s->execs[i]->errfd = safe_close(s->execs[i]->errfd);
				break;
			case SLOT_XCONN:
				if (i < s->n_execs) {
					struct exec_session *x = s->execs[i];
					shim_client_ready(&x->conn, pfd[k].revents, &x->in, true, x->tty);
					if (x->conn.in_eof)
						x->in = safe_close(x->in);
				}
				break;
			}
		}
		/*
		 * Finished execs: exited, output drained (a pty master may never EOF:
		 * exit wins) and sent to the client.
		 */
		for (size_t i = 0; i < s->n_execs;) {
			struct exec_session *x = s->execs[i];
			if (x->exited && x->tty && x->out >= 0) {
				while (pump(x->out, 1, s, x))
					;
				x->out = safe_close(x->out);
			}
			bool drained = x->exited && x->errfd < 0 && x->out < 0;
			if (drained && !x->recorded)
				record_exec(s, x);
			if (drained && (x->conn.fd < 0 || shim_outq_pending(&x->conn.q) == 0))
				finish_exec(s, i);
			else
				i++;
		}
		clients_compact(s);
		if (s->init_exited && s->errfd < 0 && (s->out < 0 || s->tty))
			return 0;
	}
}

static int setup(struct shim *s, struct berth_error **err)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sig_fd < 0)
		return berth_error_errno(err, "signalfd");
	int r = shim_logfile_open(&s->log);
	if (r < 0)
		return berth_error_set(err, -r, "open log '%s'", s->log_path);
	s->listen_fd = listen_at(s->dir, "shim.sock", err);
	if (s->listen_fd < 0)
		return s->listen_fd;
	r = create_container(s, err);
	/* the spec, seccomp filter and runtime state are freed: give the pages back */
	malloc_trim(0);
	return r;
}

/* Send the clients what is queued for them; give up on one that takes nothing for a while. */
static void drain_clients(struct shim *s)
{
	for (;;) {
		struct pollfd pfd[SHIM_MAX_CLIENTS];
		size_t n = 0, which[SHIM_MAX_CLIENTS];
		for (size_t i = 0; i < s->n_clients; i++)
			if (s->clients[i].fd >= 0 && shim_outq_pending(&s->clients[i].q)) {
				pfd[n] = (struct pollfd){ s->clients[i].fd, POLLOUT, 0 };
				which[n++] = i;
			}
		if (n == 0)
			return;
		int r = poll(pfd, n, SHIM_DRAIN_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			r = 0; /* cannot wait: give up on everyone */
		for (size_t k = 0; k < n; k++) {
			struct client *c = &s->clients[which[k]];
			if (r == 0 || (pfd[k].revents && shim_outq_flush(c->fd, &c->q) < 0))
				shim_client_drop(c);
		}
	}
}

static void shim_exit(struct shim *s)
{
	if (s->tty && s->out >= 0) {
		/* drain what the pty still holds */
		int fl = fcntl(s->out, F_GETFL);
		fcntl(s->out, F_SETFL, fl | O_NONBLOCK);
		while (pump(s->out, 1, s, NULL))
			;
	}
	shim_logfile_done(&s->log);
	write_exit_file(s);
	/* the readiness pipe's hang-up tells the engine: what follows is not on the way to its answer */
	close(3);
	drain_clients(s);
	for (size_t i = 0; i < s->n_clients; i++)
		shim_client_drop(&s->clients[i]);
	_cleanup_free_ char *sock = xasprintf("%s/shim.sock", s->dir);
	(void)unlink(sock);
	(void)s->rt.ops->delete (&s->rt, s->id, true, NULL);
}

/* Free what load_config() allocated; safe on a zeroed or half-loaded shim. */
static void shim_config_done(struct shim *s)
{
	free(s->id);
	free(s->runtime);
	free(s->state_root);
	free(s->log_path);
	free(s->runtime_log);
	strv_free(s->runtime_args);
	s->runtime_args = NULL;
	s->id = s->runtime = s->state_root = s->log_path = s->runtime_log = NULL;
}

static bool wants_builtin_runtime(const char *dir)
{
	_cleanup_free_ char *path = xasprintf("%s/shim.json", dir);
	_cleanup_json_ json_t *j = NULL;
	if (json_load_path(path, 1 << 20, &j, NULL) < 0)
		return false;
	const char *rt = json_string_value(json_object_get(j, "runtime"));
	return rt && runtime_oci_is_builtin(rt);
}

int shim_main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "Usage: berth shim DIR (internal; started by the berth daemon)\n");
		return 2;
	}
	/*
	 * fd 3 is the readiness pipe; the engine may pass our read-only exe
	 * handle as fd 4 (we were executed through it): nothing else is ours.
	 */
	close_range(4, ~0U, 0);
	prctl(PR_SET_NAME, "berth-shim");
	/*
	 * With the in-process runtime, run from a binary containers cannot write
	 * (CVE-2019-5736, see runtime.h): the engine starts us from a read-only
	 * mount, else this re-executes. argv - 1 is main()'s argv: the re-exec
	 * must see "berth shim DIR" again.
	 */
	if (wants_builtin_runtime(argv[1])) {
		_cleanup_error_ struct berth_error *pe = NULL;
		if (runtime_protect_exe(argv - 1, &pe) < 0) {
			_cleanup_free_ char *m = berth_error_string(pe);
			dprintf(3, "error %s\n", m);
			return 1;
		}
	}
	/* Detach: the parent returns at once, the engine reaps it; fd 3 carries readiness. */
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0)
		_exit(0);
	setsid();
	/*
	 * fd 3 stays open until exit.json is written (shim_exit): the container's
	 * processes, forked from us, must not keep it past their exec.
	 */
	(void)fcntl(3, F_SETFD, FD_CLOEXEC);
	struct shim s = { .dir = argv[1], .listen_fd = -1, .sig_fd = -1, .out = -1, .errfd = -1, .in = -1 };
	_cleanup_error_ struct berth_error *e = NULL;
	int r = load_config(&s, &e);
	if (r >= 0)
		r = setup(&s, &e);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(e);
		dprintf(3, "error %s\n", m);
		close(3);
		if (s.id) /* load_config() succeeded: the log was initialised */
			shim_logfile_done(&s.log);
		shim_config_done(&s);
		return 1;
	}
	dprintf(3, "ok %d %d\n", (int)s.init_pid, (int)getpid());
	r = loop(&s);
	shim_exit(&s);
	shim_config_done(&s);
	return r < 0 ? 1 : 0;
}
