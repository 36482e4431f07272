#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "unit.h"
#include "common/process.h"

static void test_run_captures_output_and_status(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "cat; echo err >&2; exit 3", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT, errout = STRBUF_INIT;
	int status = 0;
	assert_int_equal(proc_run(&o, "hello", 5, &out, &errout, 0, 5000, &status, NULL), 0);
	assert_string_equal(out.buf, "hello");
	assert_string_equal(errout.buf, "err\n");
	assert_true(WIFEXITED(status));
	assert_int_equal(proc_exit_code(status), 3);
}

static void test_run_timeout_kills(void **state)
{
	const char *argv[] = { "/bin/sleep", "30", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_error_ struct berth_error *err = NULL;
	int64_t t0 = proc_now_ms();
	assert_int_equal(proc_run(&o, NULL, 0, NULL, NULL, 0, 100, NULL, &err), -ETIMEDOUT);
	assert_true(proc_now_ms() - t0 < 10000);
	assert_non_null(err);
}

static void test_spawn_missing_program(void **state)
{
	const char *argv[] = { "/nonexistent/prog", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_error_ struct berth_error *err = NULL;
	pid_t pid;
	assert_int_equal(proc_spawn(&o, &pid, NULL, &err), -ENOENT);
	_cleanup_free_ char *s = berth_error_string(err);
	assert_string_equal(s, "spawn '/nonexistent/prog': No such file or directory");
	struct proc_spawn_opts empty = PROC_SPAWN_OPTS_INIT;
	assert_int_equal(proc_spawn(&empty, &pid, NULL, NULL), -EINVAL);
}

static void test_extra_fds_and_closing(void **state)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* an inheritable fd that must not reach the child */
	int leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	_cleanup_free_ char *script =
	    xasprintf("echo via3 >&3; ls /proc/self/fd | sort -n | tr '\\n' ' ' >&3");
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.extra_fds = &p[1];
	o.n_extra_fds = 1;
	pid_t pid;
	int pidfd = -1;
	assert_int_equal(proc_spawn(&o, &pid, &pidfd, NULL), 0);
	close(p[1]);
	close(leak);
	int status;
	assert_int_equal(proc_wait(pid, pidfd, 5000, &status, NULL), 0);
	assert_int_equal(proc_exit_code(status), 0);
	safe_close(pidfd);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_true(strbuf_read_fd(&sb, p[0], 0) > 0);
	close(p[0]);
	/* 0 1 2 3, plus the fd ls uses to read the directory */
	assert_true(startswith(sb.buf, "via3\n0 1 2 3 "));
	_cleanup_free_ char *leakfd = xasprintf(" %d ", leak);
	const char *fds = sb.buf + 5;
	/* only one fd above 3 (ls's own) */
	int count = 0;
	for (const char *c = fds; *c; c++)
		if (*c == ' ')
			count++;
	assert_true(count <= 5);
}

static void test_wait_timeout_and_signal(void **state)
{
	const char *argv[] = { "/bin/sleep", "30", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	pid_t pid;
	int pidfd;
	assert_int_equal(proc_spawn(&o, &pid, &pidfd, NULL), 0);
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(proc_wait(pid, pidfd, 50, NULL, &err), -ETIMEDOUT);
	assert_int_equal(proc_signal(pid, pidfd, SIGTERM), 0);
	int status;
	assert_int_equal(proc_wait(pid, pidfd, 5000, &status, NULL), 0);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(proc_exit_code(status), 128 + SIGTERM);
	close(pidfd);
}

static void test_cwd_and_env(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "pwd; echo $FOO", NULL };
	const char *envp[] = { "FOO=bar", "PATH=/usr/bin:/bin", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.envp = envp;
	o.cwd = "/tmp";
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int status;
	assert_int_equal(proc_run(&o, NULL, 0, &out, NULL, 0, 5000, &status, NULL), 0);
	assert_string_equal(out.buf, "/tmp\nbar\n");
}

/* Source fds inside the range used to park fds must survive (engine's shim bug). */
static void test_high_source_fds_are_not_clobbered(void **state)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* Move the write end to where a naive park range (n + 16) would put slot 0. */
	int hi = fcntl(p[1], F_DUPFD_CLOEXEC, 3 + 7 + 16);
	assert_true(hi >= 26);
	close(p[1]);
	int extra[7];
	for (int i = 0; i < 7; i++)
		extra[i] = i == 6 ? hi : STDERR_FILENO;
	const char *argv[] = { "/bin/sh", "-c", "echo ok >&9", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.extra_fds = extra;
	o.n_extra_fds = 7;
	pid_t pid;
	int status;
	assert_int_equal(proc_spawn(&o, &pid, NULL, NULL), 0);
	close(hi);
	assert_int_equal(proc_wait(pid, -1, -1, &status, NULL), 0);
	assert_int_equal(proc_exit_code(status), 0);
	char buf[8] = { 0 };
	assert_int_equal(read(p[0], buf, sizeof(buf) - 1), 3);
	assert_string_equal(buf, "ok\n");
	close(p[0]);
}

/* A missing fd is /dev/null even when /dev/null's own fd lands in the parking range. */
static void test_missing_fd_is_dev_null_when_park_range_is_low(void **state)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	int out = fcntl(p[1], F_DUPFD_CLOEXEC, 100);
	close(p[1]);
	/* The lowest free fd L is where /dev/null opens; a source at L - 1 puts the base at L. */
	int lowest = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
	assert_true(lowest >= 3);
	close(lowest);
	const char *argv[] = { "/bin/sh", "-c",
			       "if [ -c /dev/stdout ]; then echo chr >&2; else echo other >&2; fi", NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.stdio[0] = lowest - 1;
	o.stdio[1] = -1;
	o.stdio[2] = STDERR_FILENO; /* keep the sources below L: stderr goes to the pipe */
	pid_t pid;
	int status;
	int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 101);
	assert_int_equal(dup2(out, STDERR_FILENO), STDERR_FILENO);
	int r = proc_spawn(&o, &pid, NULL, NULL);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(out);
	assert_int_equal(r, 0);
	assert_int_equal(proc_wait(pid, -1, -1, &status, NULL), 0);
	char buf[64] = { 0 };
	assert_true(read(p[0], buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "chr\n"); /* /dev/null, not a copy of the pipe */
	close(p[0]);
	(void)state;
}

static void test_timespec_add_ms_carries_nanoseconds(void **state)
{
	struct timespec t = { .tv_sec = 10, .tv_nsec = 999999999 };
	struct timespec r = proc_timespec_add_ms(t, 1);
	assert_int_equal(r.tv_sec, 11);
	assert_int_equal(r.tv_nsec, 999999);
	r = proc_timespec_add_ms(t, 2500); /* seconds and a carry */
	assert_int_equal(r.tv_sec, 13);
	assert_int_equal(r.tv_nsec, 499999999);
	t.tv_nsec = 500000000;
	r = proc_timespec_add_ms(t, 500); /* exactly one second: tv_nsec 0, not 1e9 */
	assert_int_equal(r.tv_sec, 11);
	assert_int_equal(r.tv_nsec, 0);
	r = proc_timespec_add_ms(t, 499);
	assert_int_equal(r.tv_sec, 10);
	assert_int_equal(r.tv_nsec, 999000000);
	r = proc_timespec_add_ms(t, 0);
	assert_int_equal(r.tv_sec, 10);
	assert_int_equal(r.tv_nsec, 500000000);
	r = proc_timespec_add_ms(t, -1500); /* negative: now, never a tv_nsec < 0 */
	assert_int_equal(r.tv_sec, 10);
	assert_int_equal(r.tv_nsec, 500000000);
	r = proc_timespec_add_ms(t, (int64_t)30 * 24 * 3600 * 1000 + 1); /* 30 days */
	assert_int_equal(r.tv_sec, 10 + 30 * 24 * 3600);
	assert_int_equal(r.tv_nsec, 501000000);
	(void)state;
}

static void test_deadline_is_on_the_given_clock(void **state)
{
	struct timespec before, after;
	clock_gettime(CLOCK_MONOTONIC, &before);
	struct timespec d = proc_deadline(CLOCK_MONOTONIC, 0);
	clock_gettime(CLOCK_MONOTONIC, &after);
	assert_true(d.tv_sec >= before.tv_sec && d.tv_sec <= after.tv_sec);
	d = proc_deadline(CLOCK_REALTIME, 1000);
	clock_gettime(CLOCK_REALTIME, &after);
	assert_true(d.tv_sec >= after.tv_sec); /* wall clock seconds, not the boot-relative monotonic ones */
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
	(void)state;
}

/* A monotonic condition with a monotonic deadline times out, after the deadline (not at once, not never). */
static void test_monotonic_cond_times_out_at_its_deadline(void **state)
{
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t c;
	proc_cond_init_monotonic(&c);
	pthread_mutex_lock(&m);
	struct timespec d = proc_deadline(CLOCK_MONOTONIC, 20);
	int r;
	while ((r = pthread_cond_timedwait(&c, &m, &d)) == 0)
		;
	pthread_mutex_unlock(&m);
	assert_int_equal(r, ETIMEDOUT);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	assert_true(now.tv_sec > d.tv_sec || (now.tv_sec == d.tv_sec && now.tv_nsec >= d.tv_nsec));
	pthread_cond_destroy(&c);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_captures_output_and_status),
		cmocka_unit_test(test_run_timeout_kills),
		cmocka_unit_test(test_spawn_missing_program),
		cmocka_unit_test(test_extra_fds_and_closing),
		cmocka_unit_test(test_wait_timeout_and_signal),
		cmocka_unit_test(test_cwd_and_env),
		cmocka_unit_test(test_high_source_fds_are_not_clobbered),
		cmocka_unit_test(test_missing_fd_is_dev_null_when_park_range_is_low),
		cmocka_unit_test(test_timespec_add_ms_carries_nanoseconds),
		cmocka_unit_test(test_deadline_is_on_the_given_clock),
		cmocka_unit_test(test_monotonic_cond_times_out_at_its_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
