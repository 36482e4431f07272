#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"
#include "common/fs.h"

struct fixture {
	char *dir;
	int rootfd;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	_cleanup_free_ char *root = xasprintf("%s/root", f->dir);
	assert_int_equal(mkdir(root, 0755), 0);
	f->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->rootfd >= 0);
	/* root/etc/passwd, root/abs -> /etc, root/rel -> ../../etc, root/loop -> loop,
	 * outside secret next to root */
	assert_int_equal(mkdirat(f->rootfd, "etc", 0755), 0);
	int fd = openat(f->rootfd, "etc/passwd", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "inside\n", 7), 7);
	close(fd);
	assert_int_equal(symlinkat("/etc", f->rootfd, "abs"), 0);
	assert_int_equal(symlinkat("../../../etc", f->rootfd, "rel"), 0);
	assert_int_equal(symlinkat("loop", f->rootfd, "loop"), 0);
	assert_int_equal(symlinkat("/proc/self/root", f->rootfd, "magic"), 0);
	_cleanup_free_ char *secret = xasprintf("%s/secret", f->dir);
	assert_int_equal(fs_write_file_atomic(secret, "host", 4, 0600, NULL), 0);
	_cleanup_free_ char *target = xasprintf("%s/secret", f->dir);
	assert_int_equal(symlinkat(target, f->rootfd, "hostabs"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close(f->rootfd);
	assert_int_equal(fs_rm_rf(f->dir, NULL), 0);
	free(f->dir);
	free(f);
	return 0;
}

static void read_inside(int rootfd, const char *path, int rflags)
{
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_close_ int fd = fs_open_in_root(rootfd, path, O_RDONLY, 0, rflags, &err);
	assert_true(fd >= 0);
	char buf[16] = { 0 };
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 7);
	assert_string_equal(buf, "inside\n");
}

static void run_containment(struct fixture *f, int rflags)
{
	read_inside(f->rootfd, "/etc/passwd", rflags);
	read_inside(f->rootfd, "abs/passwd", rflags);
	read_inside(f->rootfd, "rel/passwd", rflags);
	read_inside(f->rootfd, "../../../../etc/passwd", rflags);
	read_inside(f->rootfd, "etc/../etc/./passwd", rflags);
	/* an absolute symlink to the host's secret resolves inside root: ENOENT */
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(fs_open_in_root(f->rootfd, "hostabs", O_RDONLY, 0, rflags, &err), -ENOENT);
	_cleanup_error_ struct berth_error *e2 = NULL;
	assert_int_equal(fs_open_in_root(f->rootfd, "loop", O_RDONLY, 0, rflags, &e2), -ELOOP);
	/* no-follow on the last component */
	_cleanup_error_ struct berth_error *e3 = NULL;
	assert_int_equal(fs_open_in_root(f->rootfd, "abs", O_RDONLY, 0, rflags | FS_RESOLVE_NO_FOLLOW, &e3),
			 -ELOOP);
	int fd = fs_open_in_root(f->rootfd, "abs", O_PATH, 0, rflags | FS_RESOLVE_NO_FOLLOW, NULL);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	close(fd);
	/* creation lands inside */
	fd = fs_open_in_root(f->rootfd, "abs/new", O_WRONLY | O_CREAT | O_EXCL, 0600, rflags, NULL);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(faccessat(f->rootfd, "etc/new", F_OK, 0), 0);
	assert_int_equal(unlinkat(f->rootfd, "etc/new", 0), 0);
	/* file used as a directory */
	assert_int_equal(fs_open_in_root(f->rootfd, "etc/passwd/x", O_RDONLY, 0, rflags, NULL), -ENOTDIR);
}

static void test_containment_openat2(void **state)
{
	if (!fs_have_openat2())
		skip();
	run_containment(*state, 0);
	struct fixture *f = *state;
	/* magic links are refused by the kernel */
	int fd = fs_open_in_root(f->rootfd, "magic", O_RDONLY | O_DIRECTORY, 0, 0, NULL);
	assert_true(fd < 0);
}

static void test_containment_walk(void **state)
{
	run_containment(*state, FS_RESOLVE_FORCE_WALK);
	struct fixture *f = *state;
	/* /proc/self/root resolved inside the root does not exist */
	assert_true(
	    fs_open_in_root(f->rootfd, "magic", O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_FORCE_WALK, NULL) < 0);
	/* root itself */
	int fd = fs_open_in_root(f->rootfd, "/", O_RDONLY | O_DIRECTORY, 0, FS_RESOLVE_FORCE_WALK, NULL);
	assert_true(fd >= 0);
	close(fd);
}

static void test_mkdir_p_in_root(void **state)
{
	struct fixture *f = *state;
	_cleanup_error_ struct berth_error *err = NULL;
	int fd = fs_mkdir_p_in_root(f->rootfd, "/abs/a/b/../c", 0755, &err);
	assert_true(fd >= 0);
	close(fd);
	struct stat st;
	assert_int_equal(fstatat(f->rootfd, "etc/a/c", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* through a symlink escaping upwards: stays inside */
	fd = fs_mkdir_p_in_root(f->rootfd, "rel/x", 0755, NULL);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fstatat(f->rootfd, "etc/x", &st, 0), 0);
	/* a file in the way */
	_cleanup_error_ struct berth_error *e2 = NULL;
	assert_true(fs_mkdir_p_in_root(f->rootfd, "etc/passwd/y", 0755, &e2) < 0);
	assert_non_null(e2);
}

static void test_atomic_write_and_read(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *p = xasprintf("%s/file", f->dir);
	assert_int_equal(fs_write_file_atomic(p, "one", 3, 0640, NULL), 0);
	assert_int_equal(fs_write_file_atomic(p, "two!", 4, 0640, NULL), 0);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_int_equal(fs_read_file_at(AT_FDCWD, p, 0, &sb, NULL), 0);
	assert_string_equal(sb.buf, "two!");
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(fs_write_file_atomic("/nonexistent-dir/x", "a", 1, 0600, &err), -ENOENT);
}

static void test_rm_rf_does_not_follow_symlinks(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *tree = xasprintf("%s/tree", f->dir);
	_cleanup_free_ char *deep = xasprintf("%s/tree/a/b/c", f->dir);
	assert_int_equal(fs_mkdir_p(deep, 0755, NULL), 0);
	_cleanup_free_ char *link = xasprintf("%s/tree/a/escape", f->dir);
	_cleanup_free_ char *secret = xasprintf("%s/secret", f->dir);
	assert_int_equal(symlink(f->dir, link), 0);
	assert_int_equal(fs_rm_rf(tree, NULL), 0);
	assert_int_equal(access(tree, F_OK), -1);
	assert_int_equal(access(secret, F_OK), 0);
	assert_int_equal(fs_rm_rf(tree, NULL), 0); /* ENOENT is success */
}

static void test_path_clean(void **state)
{
	static const char *cases[][2] = {
		{ "/a//b/./c/../d", "/a/b/d" },
		{ "../../x", "x" },
		{ "/../..", "/" },
		{ "", "." },
		{ "a/..", "." },
		{ "/", "/" },
		{ "a/b/", "a/b" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *c = fs_path_clean(cases[i][0]);
		assert_string_equal(c, cases[i][1]);
	}
}

/* What is left in fd after the head: every byte, in order. */
static void assert_rest(int fd, const char *want)
{
	char buf[256] = { 0 };
	assert_int_equal(fs_read_full(fd, buf, strlen(want)), 0);
	assert_string_equal(buf, want);
}

static void read_until_on(int fds[2])
{
	/* whole head plus stream bytes in one write: the stream stays in fd */
	const char *m = "HTTP/1.1 101 Switching\r\nA: b\r\n\r\nSTREAM";
	assert_int_equal(write(fds[1], m, strlen(m)), (ssize_t)strlen(m));
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_int_equal(fs_read_until(fds[0], "\r\n\r\n", 1024, &sb), 0);
	assert_string_equal(sb.buf, "HTTP/1.1 101 Switching\r\nA: b\r\n\r\n");
	assert_rest(fds[0], "STREAM");
	/* the delimiter straddling two writes, appended to what sb held */
	strbuf_reset(&sb);
	strbuf_addstr(&sb, "x");
	assert_int_equal(write(fds[1], "line\r", 5), 5);
	assert_int_equal(write(fds[1], "\nnext", 5), 5);
	/* a peek may see only the first write: loop until the line is whole */
	assert_int_equal(fs_read_until(fds[0], "\r\n", 1024, &sb), 0);
	assert_string_equal(sb.buf, "xline\r\n");
	assert_rest(fds[0], "next");
	/* too long without the delimiter */
	strbuf_reset(&sb);
	assert_int_equal(write(fds[1], "0123456789abcdef", 16), 16);
	assert_int_equal(fs_read_until(fds[0], "\n", 8, &sb), -EMSGSIZE);
}

static void test_read_until_socket(void **state)
{
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	read_until_on(fds);
	/* EOF before the delimiter */
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	char junk[64];
	(void)!read(fds[0], junk, sizeof(junk));
	assert_int_equal(write(fds[1], "partial", 7), 7);
	shutdown(fds[1], SHUT_WR);
	assert_int_equal(fs_read_until(fds[0], "\n", 1024, &sb), -EIO);
	assert_string_equal(sb.buf, "partial");
	close(fds[0]);
	close(fds[1]);
}

static void test_read_until_pipe(void **state)
{
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	read_until_on(fds);
	close(fds[0]);
	close(fds[1]);
}

/* A file of n bytes of a pattern that no shifted copy matches. */
static char *make_data(size_t n)
{
	char *d = xmalloc(n);
	for (size_t i = 0; i < n; i++)
		d[i] = (char)(i * 7 + i / 251);
	return d;
}

static int make_file(const char *dir, const char *name, const char *data, size_t n)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(fs_write_all(fd, data, n), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void assert_file_is(int fd, const char *want, size_t n)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, n);
	_cleanup_free_ char *got = xmalloc(n + 1);
	assert_int_equal(pread(fd, got, n + 1, 0), (ssize_t)n);
	assert_memory_equal(got, want, n);
}

/* Every way (copy_file_range, sendfile, read/write), whole and bounded, from an offset. */
static void test_copy_fd_ways(void **state)
{
	struct fixture *f = *state;
	const size_t n = 300 * 1024 + 17; /* several read/write blocks and an odd tail */
	_cleanup_free_ char *data = make_data(n);
	static const unsigned ways[] = { FS_COPY_DEFAULT, FS_COPY_NO_RANGE,
					 FS_COPY_NO_RANGE | FS_COPY_NO_SENDFILE };
	for (size_t i = 0; i < ARRAY_SIZE(ways); i++) {
		_cleanup_close_ int in = make_file(f->dir, "in", data, n);
		_cleanup_close_ int out = make_file(f->dir, "out", "", 0);
		_cleanup_error_ struct berth_error *err = NULL;
		assert_int_equal(fs_copy_fd(in, out, FS_COPY_ALL, ways[i], &err), n);
		assert_null(err);
		assert_file_is(out, data, n);
		/* at the end of in: nothing more */
		assert_int_equal(fs_copy_fd(in, out, FS_COPY_ALL, ways[i], NULL), 0);
		/* bounded, from in's offset to out's offset; both move on */
		_cleanup_close_ int part = make_file(f->dir, "part", "head", 4);
		assert_int_equal(lseek(part, 0, SEEK_END), 4);
		assert_int_equal(lseek(in, 5, SEEK_SET), 5);
		assert_int_equal(fs_copy_fd(in, part, 100001, ways[i], NULL), 100001);
		assert_int_equal(lseek(in, 0, SEEK_CUR), 100006);
		assert_int_equal(lseek(part, 0, SEEK_CUR), 100005);
		_cleanup_free_ char *want = xmalloc(100005);
		memcpy(want, "head", 4);
		memcpy(want + 4, data + 5, 100001);
		assert_file_is(part, want, 100005);
		/* a bound past the end copies what there is; max 0 copies nothing */
		assert_int_equal(fs_copy_fd(in, part, n, ways[i], NULL), n - 100006);
		assert_int_equal(fs_copy_fd(in, part, 0, ways[i], NULL), 0);
	}
}

/* A pipe as in: copy_file_range and sendfile refuse it, read/write copies. */
static void test_copy_fd_from_pipe(void **state)
{
	struct fixture *f = *state;
	const size_t n = 40000; /* fits the pipe's buffer: written before the copy */
	_cleanup_free_ char *data = make_data(n);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fs_write_all(p[1], data, n), 0);
	close(p[1]);
	_cleanup_close_ int out = make_file(f->dir, "out", "", 0);
	assert_int_equal(fs_copy_fd(p[0], out, FS_COPY_ALL, 0, NULL), n);
	assert_file_is(out, data, n);
	close(p[0]);
}

/* A pipe as out: copy_file_range refuses it, sendfile copies. */
static void test_copy_fd_to_pipe(void **state)
{
	struct fixture *f = *state;
	const size_t n = 30000;
	_cleanup_free_ char *data = make_data(n);
	_cleanup_close_ int in = make_file(f->dir, "in", data, n);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fs_copy_fd(in, p[1], FS_COPY_ALL, 0, NULL), n);
	close(p[1]);
	_cleanup_free_ char *got = xmalloc(n + 1);
	assert_int_equal(fs_read_full(p[0], got, n), 0);
	assert_memory_equal(got, data, n);
	assert_int_equal(read(p[0], got, 1), 0);
	close(p[0]);
}

/* A /proc file says its size is 0: the copy reads it anyway. */
static void test_copy_fd_from_proc(void **state)
{
	struct fixture *f = *state;
	_cleanup_strbuf_ struct strbuf want = STRBUF_INIT;
	assert_int_equal(fs_read_file_at(AT_FDCWD, "/proc/version", 0, &want, NULL), 0);
	assert_true(want.len > 0);
	for (unsigned flags = 0; flags <= (FS_COPY_NO_RANGE | FS_COPY_NO_SENDFILE); flags++) {
		_cleanup_close_ int in = open("/proc/version", O_RDONLY | O_CLOEXEC);
		assert_true(in >= 0);
		_cleanup_close_ int out = make_file(f->dir, "out", "", 0);
		assert_int_equal(fs_copy_fd(in, out, FS_COPY_ALL, flags, NULL), want.len);
		assert_file_is(out, want.buf, want.len);
	}
}

/* The failing call is named: a read-only out fails the write, a write-only in the read. */
static void test_copy_fd_errors(void **state)
{
	struct fixture *f = *state;
	_cleanup_close_ int in = make_file(f->dir, "in", "some bytes", 10);
	_cleanup_free_ char *outp = xasprintf("%s/in", f->dir);
	_cleanup_close_ int ro = open(outp, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	for (unsigned flags = 0; flags <= (FS_COPY_NO_RANGE | FS_COPY_NO_SENDFILE); flags++) {
		_cleanup_error_ struct berth_error *err = NULL;
		assert_int_equal(lseek(in, 0, SEEK_SET), 0);
		assert_int_equal(fs_copy_fd(in, ro, FS_COPY_ALL, flags, &err), -EBADF);
		_cleanup_free_ char *msg = berth_error_string(err);
		assert_string_equal(msg, "write: Bad file descriptor");
	}
	_cleanup_close_ int wo = open(outp, O_WRONLY | O_CLOEXEC);
	assert_true(wo >= 0);
	_cleanup_close_ int out = make_file(f->dir, "out", "", 0);
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(fs_copy_fd(wo, out, FS_COPY_ALL, 0, &err), -EBADF);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_string_equal(msg, "read: Bad file descriptor");
	/* a directory is no copy source */
	_cleanup_close_ int dir = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dir >= 0);
	assert_int_equal(fs_copy_fd(dir, out, FS_COPY_ALL, 0, NULL), -EISDIR);
}

struct interrupter {
	pid_t tid;        /* the copying thread */
	pthread_t thread; /* the same, to signal */
	int rfd, wfd;     /* the pipe it reads */
};

static volatile sig_atomic_t eintr_hits;
static volatile sig_atomic_t copy_returned;

static void on_usr1(int sig)
{
	(void)sig;
	eintr_hits++;
}

/* True once tid sits in read(2) of fd (its /proc syscall line: "0 0xFD ..."). */
static bool blocked_in_read(pid_t tid, int fd)
{
	_cleanup_free_ char *p = xasprintf("/proc/self/task/%d/syscall", (int)tid);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, p, 4096, &sb, NULL) < 0)
		return false;
	_cleanup_free_ char *want = xasprintf("%d 0x%x ", SYS_read, fd);
	return strncmp(sb.buf, want, strlen(want)) == 0;
}

/* Wait (a deadline, not a timing) until the copier blocks in read or its copy has returned. */
static void wait_blocked_in_read(const struct interrupter *it)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!copy_returned && !blocked_in_read(it->tid, it->rfd)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 60)
			return;
		sched_yield();
	}
}

/* Interrupt the copier's blocked read with a signal (no SA_RESTART), then feed and close the pipe. */
static void *interrupt_then_feed(void *arg)
{
	struct interrupter *it = arg;
	wait_blocked_in_read(it);
	pthread_kill(it->thread, SIGUSR1);
	/* the read fails EINTR; retried, it blocks again (without the retry the copy returns) */
	while (!eintr_hits && !copy_returned)
		sched_yield();
	wait_blocked_in_read(it);
	(void)!write(it->wfd, "after", 5);
	close(it->wfd);
	return NULL;
}

static void test_copy_fd_retries_eintr(void **state)
{
	struct fixture *f = *state;
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0); /* no SA_RESTART: read fails EINTR */
	eintr_hits = copy_returned = 0;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct interrupter it = {
		.tid = (pid_t)syscall(SYS_gettid), .thread = pthread_self(), .rfd = p[0], .wfd = p[1]
	};
	_cleanup_close_ int out = make_file(f->dir, "out", "", 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, interrupt_then_feed, &it), 0);
	int64_t r = fs_copy_fd(p[0], out, FS_COPY_ALL, 0, NULL);
	copy_returned = 1;
	pthread_join(t, NULL);
	sigaction(SIGUSR1, &old, NULL);
	close(p[0]);
	assert_int_equal(eintr_hits, 1);
	assert_int_equal(r, 5);
	assert_file_is(out, "after", 5);
}

/* unit.h: a test process's temporary directories go with its exit, whatever failed before it. */
static void test_unit_tmpdir_removed_at_exit(void **state)
{
	struct fixture *f = *state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *d = unit_tmpdir(); /* a failed assertion would jump over its removal: exit */
		_cleanup_free_ char *sub = xasprintf("%s/sub", d);
		if (mkdir(sub, 0700) < 0 || fs_write_all(p[1], d, strlen(d)) < 0)
			_exit(2);
		exit(1);
	}
	close(p[1]);
	char dir[PATH_MAX] = { 0 };
	(void)!read(p[0], dir, sizeof(dir) - 1);
	close(p[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	assert_true(startswith(dir, "/tmp/berth-unit-"));
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(access(f->dir, F_OK), 0); /* the parent's, made before the fork, stays */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_containment_openat2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_containment_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p_in_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_write_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rm_rf_does_not_follow_symlinks, setup, teardown),
		cmocka_unit_test(test_path_clean),
		cmocka_unit_test(test_read_until_socket),
		cmocka_unit_test(test_read_until_pipe),
		cmocka_unit_test_setup_teardown(test_copy_fd_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_fd_from_pipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_fd_to_pipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_fd_from_proc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_fd_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_fd_retries_eintr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unit_tmpdir_removed_at_exit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
