/*
 * process.h - spawning and waiting for child processes.
 *
 * proc_spawn() runs a program with a chosen set of fds (0, 1, 2 and extra fds
 * mapped to 3, 4, ...; every other fd is closed in the child), returning its
 * pid and, where the kernel has it, a pidfd. proc_wait() waits for exit with a
 * timeout by polling the pidfd: no sleeping loops, no SIGCHLD handler needed.
 */
#ifndef BERTH_COMMON_PROCESS_H
#define BERTH_COMMON_PROCESS_H

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include "common/error.h"
#include "common/strbuf.h"

struct proc_spawn_opts {
	const char *const *argv; /* argv[0] is the program; searched in PATH if no '/' */
	const char *const *envp; /* NULL: inherit environ */
	const char *cwd;         /* NULL: inherit */
	int stdio[3];            /* fds for 0,1,2; -1 = /dev/null */
	const int *extra_fds;    /* mapped to 3, 4, ... in order */
	size_t n_extra_fds;
	bool new_session; /* setsid() in the child */
};

#define PROC_SPAWN_OPTS_INIT            \
	{                               \
		.stdio = { -1, -1, -1 } \
	}

/* Start the program. *ret_pidfd is -1 when pidfds are unavailable; either ret may be NULL. */
int proc_spawn(const struct proc_spawn_opts *opts, pid_t *ret_pid, int *ret_pidfd, struct berth_error **err);

/* pidfd_open(2) wrapper: fd or -errno. */
int proc_pidfd_open(pid_t pid);
/* pidfd_send_signal(2), falling back to kill(2) when pidfd < 0. 0 or -errno. */
int proc_signal(pid_t pid, int pidfd, int sig);

/*
 * Wait for the child to exit, at most timeout_ms (-1: forever). Reaps it and
 * stores the waitpid status in *ret_status. -ETIMEDOUT when the time ran out
 * (the child is left running and unreaped).
 */
int proc_wait(pid_t pid, int pidfd, int timeout_ms, int *ret_status, struct berth_error **err);

/* Shell-style exit code of a wait status: code, or 128 + signal. */
int proc_exit_code(int status);

/*
 * Run a program to completion feeding `input` (may be NULL) on stdin and
 * capturing stdout/stderr (either may be NULL to discard), each limited to
 * max_output bytes (0: 1 MiB). On timeout the child is killed with SIGKILL and
 * -ETIMEDOUT returned. On success *ret_status is the wait status.
 */
int proc_run(const struct proc_spawn_opts *opts, const char *input, size_t input_len, struct strbuf *out,
	     struct strbuf *errout, size_t max_output, int timeout_ms, int *ret_status,
	     struct berth_error **err);

/* CLOCK_MONOTONIC in milliseconds / nanoseconds: for deadlines and intervals, never for wall time. */
int64_t proc_now_ms(void);
int64_t proc_now_ns(void);

/*
 * Deadlines for pthread_cond_timedwait(). The clock must be the condition's
 * own (pthread_condattr_setclock; CLOCK_REALTIME for one made with NULL
 * attributes or PTHREAD_COND_INITIALIZER): a deadline on another clock makes
 * the wait end at once or, monotonic time being far behind the wall clock, never.
 * Prefer proc_cond_init_monotonic() + CLOCK_MONOTONIC: immune to clock steps.
 *
 * proc_timespec_add_ms: t plus ms (< 0 counts as 0), tv_nsec kept in [0, 1e9).
 * proc_deadline: the clock's current time plus ms, same rules.
 */
struct timespec proc_timespec_add_ms(struct timespec t, int64_t ms);
struct timespec proc_deadline(clockid_t clock, int64_t ms);

/* pthread_cond_init on CLOCK_MONOTONIC: its timed waits take proc_deadline(CLOCK_MONOTONIC, ms). */
void proc_cond_init_monotonic(pthread_cond_t *c);

#endif
