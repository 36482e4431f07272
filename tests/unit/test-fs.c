#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
