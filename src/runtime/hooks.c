/*
 * hooks.c - OCI hooks: each runs with the container state JSON on stdin, its
 * own args/env, and an optional timeout after which it is killed. A failing
 * hook fails the lifecycle step, except poststart and poststop: the runtime
 * spec has a failing one logged as a warning and the rest run on
 * (runtime_hooks_run_warn).
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "common/log.h"
#include "common/process.h"
#include "runtime/container.h"

static const char *const kind_names[RUNTIME_HOOK_MAX] = {
	[RUNTIME_HOOK_PRESTART] = "prestart",
	[RUNTIME_HOOK_CREATE_RUNTIME] = "createRuntime",
	[RUNTIME_HOOK_CREATE_CONTAINER] = "createContainer",
	[RUNTIME_HOOK_START_CONTAINER] = "startContainer",
	[RUNTIME_HOOK_POSTSTART] = "poststart",
	[RUNTIME_HOOK_POSTSTOP] = "poststop",
};

const char *runtime_hook_kind_name(enum runtime_hook_kind k)
{
	return kind_names[k];
}

/*
 * posix_spawn the hook: unlike proc_run() the program (path) and argv[0]
 * (args[0]) may differ, which dockerd's libnetwork-setkey hook relies on.
 * stdin gets the state; stdout and stderr are captured (bounded) for errors.
 */
static int hook_spawn(const struct runtime_hook *h, const char *input, struct strbuf *out, int *ret_pid,
		      int *ret_pidfd, int *ret_in, struct berth_error **err)
{
	static const char *const empty_env[] = { NULL };
	const char *argv_default[] = { h->path, NULL };
	int in[2], o[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return berth_error_errno(err, "pipe");
	if (pipe2(o, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return berth_error_errno(err, "pipe");
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], 1);
	posix_spawn_file_actions_adddup2(&fa, o[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	pid_t pid;
	int r = posix_spawn(&pid, h->path, &fa, NULL,
			    (char *const *)(h->args && h->args[0] ? h->args : argv_default),
			    (char *const *)(h->env ? h->env : empty_env));
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(o[1]);
	if (r != 0) {
		close(in[1]);
		close(o[0]);
		return berth_error_set(err, r, "spawn '%s'", h->path);
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(o[0], F_SETFL, O_NONBLOCK);
	*ret_pid = pid;
	*ret_pidfd = proc_pidfd_open(pid);
	*ret_in = in[1];
	(void)input;
	(void)out;
	return o[0];
}

/*
 * write() to a hook's stdin without dying of SIGPIPE when the hook exited
 * without reading it (an error then, not a signal). The disposition is left
 * alone, since ignored signals are inherited by the containers we exec: the
 * signal is blocked around the write and a pending one is taken back.
 */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(fd, buf, len);
	int saved = errno;
	if (w < 0 && errno == EPIPE) {
		const struct timespec zero = { 0, 0 };
		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return w;
}

/* Feed stdin, collect output, wait for exit or the deadline. */
static int hook_wait(int pid, int pidfd, int infd, int outfd, const char *input, struct strbuf *out,
		     int timeout_ms, int *status)
{
	size_t off = 0, len = strlen(input);
	int64_t deadline = timeout_ms > 0 ? proc_now_ms() + timeout_ms : 0;
	while (outfd >= 0 || infd >= 0) {
		struct pollfd p[2] = { { infd, POLLOUT, 0 }, { outfd, POLLIN, 0 } };
		int left = deadline ? (int)MAX(deadline - proc_now_ms(), 0) : -1;
		int n = poll(p, 2, left);
		if (n == 0) {
			proc_signal(pid, pidfd, SIGKILL);
			waitpid(pid, status, 0);
			return -ETIMEDOUT;
		}
		if (p[0].revents) {
			ssize_t w = write_nosigpipe(infd, input + off, len - off);
			if (w > 0)
				off += (size_t)w;
			if (w < 0 || off == len)
				infd = safe_close(infd);
		}
		if (p[1].revents) {
			char buf[4096];
			ssize_t rd = read(outfd, buf, sizeof(buf));
			if (rd <= 0)
				outfd = safe_close(outfd);
			else if (out->len < (64 << 10))
				strbuf_add(out, buf, (size_t)rd);
		}
	}
	int left = deadline ? (int)MAX(deadline - proc_now_ms(), 1) : -1;
	struct berth_error *e = NULL;
	int r = proc_wait(pid, pidfd, left, status, &e);
	berth_error_free(e);
	if (r == -ETIMEDOUT) {
		proc_signal(pid, pidfd, SIGKILL);
		waitpid(pid, status, 0);
	}
	return r;
}

static int hook_run_one(const struct runtime_hook *h, const char *kind, size_t i, const char *state_json,
			struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int pid = 0, pidfd = -1, in = -1, status = 0;
	int outfd = hook_spawn(h, state_json, &out, &pid, &pidfd, &in, err);
	if (outfd < 0)
		return berth_error_wrap(err, outfd, "%s hook %zu '%s'", kind, i, h->path);
	int r = hook_wait(pid, pidfd, in, outfd, state_json, &out, h->timeout * 1000, &status);
	safe_close(pidfd);
	if (r == -ETIMEDOUT)
		return berth_error_msg(err, ETIMEDOUT, "%s hook %zu '%s' timed out after %ds", kind, i,
				       h->path, h->timeout);
	if (r < 0)
		return berth_error_set(err, -r, "%s hook %zu '%s': wait", kind, i, h->path);
	if (status != 0) {
		strbuf_trim_trailing(&out);
		return berth_error_msg(err, EIO, "%s hook %zu '%s' failed with exit code %d%s%s", kind, i,
				       h->path, proc_exit_code(status), out.len ? ": " : "", out.buf);
	}
	return 0;
}

int runtime_hooks_run(const struct runtime_hooks *hooks, const char *kind, const char *state_json,
		      struct berth_error **err)
{
	for (size_t i = 0; i < hooks->n; i++) {
		int r = hook_run_one(&hooks->list[i], kind, i, state_json, err);
		if (r < 0)
			return r;
	}
	return 0;
}

void runtime_hooks_run_warn(const struct runtime_hooks *hooks, const char *kind, const char *state_json)
{
	for (size_t i = 0; i < hooks->n; i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (hook_run_one(&hooks->list[i], kind, i, state_json, &err) < 0) {
			_cleanup_free_ char *msg = berth_error_string(err);
			log_fields(LOG_LEVEL_WARN, "hook failed, continuing as the runtime spec says",
				   "error", msg, NULL);
		}
	}
}
