/*
 * process.c - child process helpers. posix_spawn (vfork-based in glibc) keeps
 * spawning cheap; the fd plan is expressed as file actions, and every fd not in
 * the plan is closed with addclosefrom_np.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fs.h"
#include "common/process.h"

extern char **environ;

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

int64_t proc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t proc_now_ms(void)
{
	return proc_now_ns() / 1000000;
}

struct timespec proc_timespec_add_ms(struct timespec t, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	int64_t ns = (int64_t)t.tv_nsec + (ms % 1000) * 1000000;
	t.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
	t.tv_nsec = (long)(ns % 1000000000);
	return t;
}

struct timespec proc_deadline(clockid_t clock, int64_t ms)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return proc_timespec_add_ms(now, ms);
}

void proc_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

int proc_pidfd_open(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? negative_errno() : fd;
}

int proc_signal(pid_t pid, int pidfd, int sig)
{
	if (pidfd >= 0) {
		if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) == 0)
			return 0;
		if (errno != ENOSYS)
			return negative_errno();
	}
	return kill(pid, sig) < 0 ? negative_errno() : 0;
}

int proc_exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

int proc_spawn(const struct proc_spawn_opts *opts, pid_t *ret_pid, int *ret_pidfd, struct berth_error **err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int r;

	if (!opts->argv || !opts->argv[0])
		return berth_error_set(err, EINVAL, "spawn: empty argv");

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);

	/*
	 * Move every source fd above the target range first, so that mapping one
	 * onto a number another still needs cannot clobber it.
	 */
	size_t n = 3 + opts->n_extra_fds;
	/* /dev/null stands in for missing fds; open it before choosing the parking base. */
	_cleanup_close_ int devnull = -1;
	for (size_t i = 0; i < n && devnull < 0; i++)
		if ((i < 3 ? opts->stdio[i] : opts->extra_fds[i - 3]) < 0) {
			devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (devnull < 0) {
				r = berth_error_errno(err, "open '/dev/null'");
				goto out;
			}
		}
	/* Park above every source fd (and /dev/null), or parking one could clobber another. */
	int base = MAX((int)n, devnull + 1);
	for (size_t i = 0; i < n; i++) {
		int src = i < 3 ? opts->stdio[i] : opts->extra_fds[i - 3];
		if (src >= base)
			base = src + 1;
	}
	for (size_t i = 0; i < n; i++) {
		int src = i < 3 ? opts->stdio[i] : opts->extra_fds[i - 3];
		posix_spawn_file_actions_adddup2(&fa, src < 0 ? devnull : src, base + (int)i);
	}
	for (size_t i = 0; i < n; i++)
		posix_spawn_file_actions_adddup2(&fa, base + (int)i, (int)i);
	posix_spawn_file_actions_addclosefrom_np(&fa, (int)n);
	if (opts->cwd)
		posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);

	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	if (opts->new_session)
		flags |= POSIX_SPAWN_SETSID;
	posix_spawnattr_setflags(&attr, flags);

	pid_t pid;
	char *const *envp = opts->envp ? (char *const *)opts->envp : environ;
	if (strchr(opts->argv[0], '/'))
		r = posix_spawn(&pid, opts->argv[0], &fa, &attr, (char *const *)opts->argv, envp);
	else
		r = posix_spawnp(&pid, opts->argv[0], &fa, &attr, (char *const *)opts->argv, envp);
	if (r != 0) {
		r = berth_error_set(err, r, "spawn '%s'", opts->argv[0]);
		goto out;
	}
	if (ret_pidfd) {
		int pfd = proc_pidfd_open(pid);
		*ret_pidfd = pfd >= 0 ? pfd : -1;
	}
	if (ret_pid)
		*ret_pid = pid;
	r = 0;
out:
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return r;
}

int proc_wait(pid_t pid, int pidfd, int timeout_ms, int *ret_status, struct berth_error **err)
{
	_cleanup_close_ int own = -1;
	if (pidfd < 0 && timeout_ms >= 0) {
		own = proc_pidfd_open(pid);
		if (own < 0)
			return berth_error_set(err, -own, "pidfd_open %d", (int)pid);
		pidfd = own;
	}
	if (timeout_ms >= 0) {
		int64_t deadline = proc_now_ms() + timeout_ms;
		for (;;) {
			int64_t left = deadline - proc_now_ms();
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			int n = poll(&p, 1, left > 0 ? (int)MIN(left, INT32_MAX) : 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return berth_error_errno(err, "poll pidfd");
			if (n == 0)
				return berth_error_set(err, ETIMEDOUT, "wait for pid %d", (int)pid);
			break;
		}
	}
	int status;
	for (;;) {
		pid_t w = waitpid(pid, &status, __WALL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return berth_error_errno(err, "waitpid %d", (int)pid);
		break;
	}
	if (ret_status)
		*ret_status = status;
	return 0;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? negative_errno() : 0;
}

int proc_run(const struct proc_spawn_opts *opts, const char *input, size_t input_len, struct strbuf *out,
	     struct strbuf *errout, size_t max_output, int timeout_ms, int *ret_status,
	     struct berth_error **err)
{
	int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
	struct proc_spawn_opts o = *opts;
	pid_t pid;
	_cleanup_close_ int pidfd = -1;
	int r;

	if (!max_output)
		max_output = 1 << 20;
	if (pipe2(in_p, O_CLOEXEC) < 0 || pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0) {
		r = berth_error_errno(err, "pipe");
		goto out;
	}
	o.stdio[0] = in_p[0];
	o.stdio[1] = out_p[1];
	o.stdio[2] = err_p[1];
	r = proc_spawn(&o, &pid, &pidfd, err);
	in_p[0] = safe_close(in_p[0]);
	out_p[1] = safe_close(out_p[1]);
	err_p[1] = safe_close(err_p[1]);
	if (r < 0)
		goto out;
	set_nonblock(in_p[1]);
	if (!input || !input_len)
		in_p[1] = safe_close(in_p[1]);

	struct strbuf discard = STRBUF_INIT;
	struct strbuf *sinks[2] = { out ? out : &discard, errout ? errout : &discard };
	int fds[2] = { out_p[0], err_p[0] };
	size_t start[2] = { sinks[0]->len, sinks[1]->len };
	size_t in_off = 0;
	int64_t deadline = timeout_ms >= 0 ? proc_now_ms() + timeout_ms : INT64_MAX;
	bool timed_out = false;
	while (fds[0] >= 0 || fds[1] >= 0 || in_p[1] >= 0) {
		struct pollfd p[3] = {
			{ .fd = fds[0], .events = POLLIN },
			{ .fd = fds[1], .events = POLLIN },
			{ .fd = in_p[1], .events = POLLOUT },
		};
		int64_t left = deadline == INT64_MAX ? -1 : deadline - proc_now_ms();
		if (deadline != INT64_MAX && left <= 0) {
			timed_out = true;
			break;
		}
		int n = poll(p, 3, left < 0 ? -1 : (int)MIN(left, INT32_MAX));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[4096];
			ssize_t k = read(fds[i], buf, sizeof(buf));
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k <= 0) {
				fds[i] = safe_close(fds[i]);
				continue;
			}
			if (sinks[i] != &discard && sinks[i]->len - start[i] + (size_t)k <= max_output)
				strbuf_add(sinks[i], buf, (size_t)k);
		}
		if (in_p[1] >= 0 && p[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
			ssize_t k = write(in_p[1], input + in_off, input_len - in_off);
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k < 0 || (in_off += (size_t)k) >= input_len)
				in_p[1] = safe_close(in_p[1]);
		}
	}
	strbuf_release(&discard);
	out_p[0] = fds[0];
	err_p[0] = fds[1];
	if (timed_out) {
		proc_signal(pid, pidfd, SIGKILL);
		proc_wait(pid, pidfd, -1, NULL, NULL);
		r = berth_error_set(err, ETIMEDOUT, "'%s' did not finish within %d ms", opts->argv[0],
				    timeout_ms);
		goto out;
	}
	int64_t left = deadline == INT64_MAX ? -1 : MAX(deadline - proc_now_ms(), 0);
	r = proc_wait(pid, pidfd, (int)MIN(left, INT32_MAX), ret_status, err);
	if (r == -ETIMEDOUT) {
		proc_signal(pid, pidfd, SIGKILL);
		proc_wait(pid, pidfd, -1, NULL, NULL);
	}
out:
	safe_close(in_p[0]);
	safe_close(in_p[1]);
	safe_close(out_p[0]);
	safe_close(out_p[1]);
	safe_close(err_p[0]);
	safe_close(err_p[1]);
	return r;
}
