/*
 * cli-run.c - the verbs that put a process into a container: create, run,
 * exec. They first re-exec from a sealed memfd (CVE-2019-5736, see exe.c).
 * In the foreground, run and exec forward signals to the process (signalfd),
 * wait on its pidfd and return its exit code; with a terminal and no
 * --console-socket they relay between our stdio and the pty themselves.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "runtime/cli.h"
#include "runtime/container.h"

struct run_flags {
	const char *bundle, *console_socket, *pid_file, *preserve;
	bool no_pivot, no_new_keyring, detach, keep, no_subreaper;
};

static int protect(void)
{
	_cleanup_error_ struct berth_error *err = NULL;
	if (runtime_protect_exe(runtime_cli_g.argv_full, &err) < 0) {
		runtime_cli_error(err);
		return -1;
	}
	return 0;
}

static void cli_warnings(const struct strbuf *w)
{
	for (const char *l = w->buf; *l;) {
		const char *nl = strchrnul(l, '\n');
		fprintf(stderr, "berth-runtime: warning: %.*s\n", (int)(nl - l), l);
		l = *nl ? nl + 1 : nl;
	}
}

/*
 * create's and run's command line, with the container id it requires, then the runtime's own
 * protection (protect): the index of the id in argv, or minus the exit code to return.
 */
static int parse_run_flags(const char *verb, int argc, char **argv, struct run_flags *f)
{
	const struct cli_opt opts[] = {
		{ "bundle", 'b', CLI_OPT_STRING, &f->bundle },
		{ "console-socket", 0, CLI_OPT_STRING, &f->console_socket },
		{ "pid-file", 0, CLI_OPT_STRING, &f->pid_file },
		{ "preserve-fds", 0, CLI_OPT_STRING, &f->preserve },
		{ "no-pivot", 0, CLI_OPT_BOOL, &f->no_pivot },
		{ "no-new-keyring", 0, CLI_OPT_BOOL, &f->no_new_keyring },
		{ "detach", 'd', CLI_OPT_BOOL, &f->detach },
		{ "keep", 0, CLI_OPT_BOOL, &f->keep },
		{ "no-subreaper", 0, CLI_OPT_BOOL, &f->no_subreaper },
		{ NULL },
	};
	int idx = runtime_cli_parse(verb, argc, argv, opts);
	if (idx < 0)
		return -2;
	if (idx >= argc)
		return -runtime_cli_usage_error("%s: requires a container id", verb);
	return protect() < 0 ? -1 : idx;
}

static int preserve_list(const char *s, int **ret, size_t *n)
{
	int64_t v = 0;
	*ret = NULL;
	*n = 0;
	if (!s)
		return 0;
	if (util_parse_int64(s, &v) < 0 || v < 0 || v > 1024)
		return runtime_cli_usage_error("invalid --preserve-fds '%s'", s), -1;
	*ret = xcalloc((size_t)v + 1, sizeof(int));
	for (int64_t i = 0; i < v; i++)
		(*ret)[i] = 3 + (int)i;
	*n = (size_t)v;
	return 0;
}

int runtime_cli_cmd_create(int argc, char **argv)
{
	struct run_flags f = { .bundle = "." };
	int idx = parse_run_flags("create", argc, argv, &f);
	if (idx < 0)
		return -idx;
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	_cleanup_free_ int *pfds = NULL;
	if (preserve_list(f.preserve, &pfds, &o.n_preserve_fds) < 0)
		return 2;
	o.preserve_fds = pfds;
	o.pid_file = f.pid_file;
	o.console_socket = f.console_socket;
	o.no_pivot = f.no_pivot;
	o.no_new_keyring = f.no_new_keyring;
	_cleanup_strbuf_ struct strbuf warnings = STRBUF_INIT;
	o.warnings = &warnings;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = runtime_create(&runtime_cli_g.ctx, argv[idx], f.bundle, &o, NULL, NULL, &err);
	cli_warnings(&warnings);
	if (r < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static void copy_winsize(int master)
{
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

static bool relay_data(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return false;
	fs_write_all(to, buf, (size_t)n);
	return true;
}

/* Forward signals, relay the pty (master >= 0) and reap. Returns the wait status. */
static int supervise(pid_t pid, int pidfd, int sigfd, int master)
{
	struct termios saved;
	bool raw = master >= 0 && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (raw) {
		struct termios t = saved;
		cfmakeraw(&t);
		tcsetattr(STDIN_FILENO, TCSANOW, &t);
		copy_winsize(master);
	}
	bool in_open = master >= 0, out_open = master >= 0;
	for (;;) {
		struct pollfd p[4] = { { pidfd, POLLIN, 0 },
				       { sigfd, POLLIN, 0 },
				       { in_open ? STDIN_FILENO : -1, POLLIN, 0 },
				       { out_open ? master : -1, POLLIN, 0 } };
		if (poll(p, 4, -1) < 0 && errno != EINTR)
			break;
		if (p[3].revents)
			out_open = relay_data(master, STDOUT_FILENO);
		if (p[2].revents && !relay_data(STDIN_FILENO, master))
			in_open = false;
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGWINCH && master >= 0)
					copy_winsize(master);
				else if (si.ssi_signo != SIGCHLD)
					proc_signal(pid, pidfd, (int)si.ssi_signo);
			}
		}
		if (p[0].revents & POLLIN) {
			while (out_open && relay_data(master, STDOUT_FILENO))
				;
			break;
		}
	}
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static int block_signals(sigset_t *old)
{
	sigset_t s;
	sigfillset(&s);
	sigdelset(&s, SIGSEGV);
	sigdelset(&s, SIGBUS);
	sigdelset(&s, SIGFPE);
	sigdelset(&s, SIGILL);
	sigprocmask(SIG_BLOCK, &s, old);
	return signalfd(-1, &s, SFD_CLOEXEC);
}

/* Terminal without --console-socket: receive the pty master ourselves. */
static int own_console(const struct runtime_process *p, const char *console_socket, int sp[2])
{
	sp[0] = sp[1] = -1;
	if (!p || !p->terminal || console_socket)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	return 1;
}

/*
 * After runtime_run or runtime_exec returned r for pid: report a failure (false), or take the
 * terminal's master from own_console's socket pair sp and, unless detach, relay the terminal and
 * signals until pid exits (*ret_status its wait status). Closes sp, pidfd and the master.
 */
static bool follow_process(int r, struct berth_error **err, int sp[2], bool detach, pid_t pid, int pidfd,
			   int sigfd, int *ret_status)
{
	safe_close(sp[1]);
	if (r < 0) {
		safe_close(sp[0]);
		runtime_cli_error(*err);
		return false;
	}
	int master = -1;
	if (sp[0] >= 0 && runtime_console_recv_fd(sp[0], &master, err) < 0)
		runtime_cli_error(*err);
	safe_close(sp[0]);
	*ret_status = detach ? 0 : supervise(pid, pidfd, sigfd, master);
	safe_close(pidfd);
	safe_close(master);
	return true;
}

int runtime_cli_cmd_run(int argc, char **argv)
{
	struct run_flags f = { .bundle = "." };
	int idx = parse_run_flags("run", argc, argv, &f);
	if (idx < 0)
		return -idx;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_spec_ struct runtime_spec *spec = NULL;
	if (runtime_spec_load(f.bundle, &spec, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	_cleanup_free_ int *pfds = NULL;
	if (preserve_list(f.preserve, &pfds, &o.n_preserve_fds) < 0)
		return 2;
	int sp[2];
	if (own_console(&spec->process, f.console_socket, sp) < 0)
		return runtime_cli_usage_error("socketpair: %s", strerror(errno)), 1;
	o.spec = spec;
	o.preserve_fds = pfds;
	o.pid_file = f.pid_file;
	o.console_socket = f.console_socket;
	o.console_socket_fd = sp[1];
	o.no_pivot = f.no_pivot;
	o.no_new_keyring = f.no_new_keyring;
	o.detach = true;
	sigset_t old;
	_cleanup_close_ int sigfd = f.detach ? -1 : block_signals(&old);
	pid_t pid;
	int pidfd = -1, status;
	_cleanup_strbuf_ struct strbuf warnings = STRBUF_INIT;
	o.warnings = &warnings;
	int r = runtime_run(&runtime_cli_g.ctx, argv[idx], f.bundle, &o, &pid, &pidfd, NULL, &err);
	cli_warnings(&warnings);
	if (!follow_process(r, &err, sp, f.detach, pid, pidfd, sigfd, &status))
		return 1;
	if (f.detach)
		return 0;
	if (!f.keep && runtime_delete(&runtime_cli_g.ctx, argv[idx], true, &err) < 0)
		runtime_cli_error(err);
	return proc_exit_code(status);
}

struct exec_flags {
	const char *console_socket, *cwd, *user, *process, *pid_file, *preserve, *label, *apparmor, *cgroup;
	char **env, **gids, **caps;
	bool tty, detach, nnp, ignore_paused;
};

static int exec_user(json_t *proc, const char *user)
{
	unsigned uid, gid;
	char extra;
	json_t *u = json_object();
	int n = sscanf(user, "%u:%u%c", &uid, &gid, &extra);
	if (n < 1 || n > 2 || (n == 1 && strchr(user, ':'))) {
		json_decref(u);
		return runtime_cli_usage_error("exec: invalid --user '%s', expected UID[:GID]", user), -1;
	}
	json_object_set_new(u, "uid", json_integer(uid));
	json_object_set_new(u, "gid", json_integer(n == 2 ? gid : 0));
	json_object_set_new(proc, "user", u);
	return 0;
}

static void append_strs(json_t *obj, const char *key, char **v)
{
	json_t *a = json_object_get(obj, key);
	if (!a) {
		a = json_array();
		json_object_set_new(obj, key, a);
	}
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
}

/* The exec process: --process FILE, or the container's process with the flags applied (runc's semantics). */
static int exec_process_json(const char *id, const struct exec_flags *f, int argc, char **argv, json_t **ret)
{
	_cleanup_error_ struct berth_error *err = NULL;
	if (f->process)
		return json_load_path(f->process, 1 << 20, ret, &err) < 0 ? (runtime_cli_error(err), -1) : 0;
	if (argc == 0)
		return runtime_cli_usage_error("exec: requires a command (or --process)"), -1;
	struct container_state st;
	if (runtime_state_load(&runtime_cli_g.ctx, id, &st, &err) < 0) {
		runtime_cli_error(err);
		return -1;
	}
	_cleanup_free_ char *dir = runtime_state_dir(&runtime_cli_g.ctx, id);
	_cleanup_free_ char *copy = xasprintf("%s/config.json", dir);
	_cleanup_free_ char *cfg =
	    access(copy, F_OK) == 0 ? TAKE_PTR(copy) : xasprintf("%s/config.json", st.st.bundle);
	runtime_container_state_done(&st);
	_cleanup_json_ json_t *doc = NULL;
	if (json_load_path(cfg, 0, &doc, &err) < 0) {
		runtime_cli_error(err);
		return -1;
	}
	json_t *p = json_deep_copy(json_object_get(doc, "process"));
	if (!p)
		p = json_object();
	json_t *args = json_array();
	for (int i = 0; i < argc; i++)
		json_array_append_new(args, json_string(argv[i]));
	json_object_set_new(p, "args", args);
	json_object_set_new(p, "terminal", json_boolean(f->tty));
	json_object_del(p, "consoleSize");
	if (f->cwd)
		json_object_set_new(p, "cwd", json_string(f->cwd));
	append_strs(p, "env", f->env);
	if (f->user && exec_user(p, f->user) < 0) {
		json_decref(p);
		return -1;
	}
	if (f->gids) {
		json_t *u = json_object_get(p, "user");
		json_t *a = json_array();
		for (size_t i = 0; f->gids[i]; i++)
			json_array_append_new(a, json_integer(atoll(f->gids[i])));
		if (u)
			json_object_set_new(u, "additionalGids", a);
		else
			json_decref(a);
	}
	if (f->caps) {
		json_t *c = json_object_get(p, "capabilities");
		if (!c) {
			c = json_object();
			json_object_set_new(p, "capabilities", c);
		}
		append_strs(c, "bounding", f->caps);
		append_strs(c, "effective", f->caps);
		append_strs(c, "permitted", f->caps);
	}
	if (f->nnp)
		json_object_set_new(p, "noNewPrivileges", json_true());
	*ret = p;
	return 0;
}

static int parse_exec_flags(int argc, char **argv, struct exec_flags *f)
{
	const struct cli_opt opts[] = {
		{ "console-socket", 0, CLI_OPT_STRING, &f->console_socket },
		{ "cwd", 0, CLI_OPT_STRING, &f->cwd },
		{ "env", 'e', CLI_OPT_STRV, &f->env },
		{ "tty", 't', CLI_OPT_BOOL, &f->tty },
		{ "user", 'u', CLI_OPT_STRING, &f->user },
		{ "additional-gids", 'g', CLI_OPT_STRV, &f->gids },
		{ "process", 'p', CLI_OPT_STRING, &f->process },
		{ "detach", 'd', CLI_OPT_BOOL, &f->detach },
		{ "pid-file", 0, CLI_OPT_STRING, &f->pid_file },
		{ "process-label", 0, CLI_OPT_STRING, &f->label },
		{ "apparmor", 0, CLI_OPT_STRING, &f->apparmor },
		{ "no-new-privs", 0, CLI_OPT_BOOL, &f->nnp },
		{ "cap", 'c', CLI_OPT_STRV, &f->caps },
		{ "preserve-fds", 0, CLI_OPT_STRING, &f->preserve },
		{ "ignore-paused", 0, CLI_OPT_BOOL, &f->ignore_paused },
		{ "cgroup", 0, CLI_OPT_STRING, &f->cgroup },
		{ NULL },
	};
	return runtime_cli_parse("exec", argc, argv, opts);
}

int runtime_cli_cmd_exec(int argc, char **argv)
{
	struct exec_flags f = { 0 };
	int idx = parse_exec_flags(argc, argv, &f);
	_cleanup_strv_ char **env = NULL, **gids = NULL, **caps = NULL;
	env = f.env, gids = f.gids, caps = f.caps;
	if (idx < 0)
		return 2;
	if (idx >= argc)
		return runtime_cli_usage_error("exec: requires a container id");
	if (protect() < 0)
		return 1;
	const char *id = argv[idx];
	_cleanup_json_ json_t *pj = NULL;
	if (exec_process_json(id, &f, argc - idx - 1, argv + idx + 1, &pj) < 0)
		return 1;
	_cleanup_error_ struct berth_error *err = NULL;
	struct runtime_process proc;
	if (runtime_process_parse(pj, "process", &proc, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	_cleanup_free_ int *pfds = NULL;
	int sp[2] = { -1, -1 };
	if (preserve_list(f.preserve, &pfds, &o.n_preserve_fds) < 0 ||
	    own_console(&proc, f.console_socket, sp) < 0) {
		runtime_process_done(&proc);
		return 2;
	}
	o.process = &proc;
	o.preserve_fds = pfds;
	o.pid_file = f.pid_file;
	o.console_socket = f.console_socket;
	o.console_socket_fd = sp[1];
	o.detach = true;
	sigset_t old;
	_cleanup_close_ int sigfd = f.detach ? -1 : block_signals(&old);
	pid_t pid;
	int pidfd = -1, status;
	_cleanup_strbuf_ struct strbuf warnings = STRBUF_INIT;
	o.warnings = &warnings;
	int r = runtime_exec(&runtime_cli_g.ctx, id, &o, &pid, &pidfd, NULL, &err);
	cli_warnings(&warnings);
	runtime_process_done(&proc);
	if (!follow_process(r, &err, sp, f.detach, pid, pidfd, sigfd, &status))
		return 1;
	return f.detach ? 0 : proc_exit_code(status);
}
