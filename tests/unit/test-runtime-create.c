/*
 * test-runtime-create.c - the library used in-process, as the shim does:
 * run and create/start/kill/delete with a spec parsed in memory, stdio fds
 * handed to the container, the init a child of the caller (pidfd, waitpid).
 * Needs root; skipped otherwise. The rootfs is Debian's static busybox alone.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "runtime/runtime.h"

struct fixture {
	char *dir, *rootfs, *state;
};

static int setup(void **state)
{
	if (geteuid() != 0 || access("/bin/busybox", X_OK) < 0)
		return 0;
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	f->rootfs = xasprintf("%s/rootfs", f->dir);
	f->state = xasprintf("%s/state", f->dir);
	_cleanup_free_ char *bin = xasprintf("%s/bin", f->rootfs);
	assert_int_equal(fs_mkdir_p(bin, 0755, NULL), 0);
	static const char *const dirs[] = { "proc", "dev", "tmp" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *d = xasprintf("%s/%s", f->rootfs, dirs[i]);
		assert_int_equal(mkdir(d, 0755), 0);
	}
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_true(fs_read_file_at(AT_FDCWD, "/bin/busybox", 0, &sb, NULL) >= 0);
	_cleanup_free_ char *bb = xasprintf("%s/bin/busybox", f->rootfs);
	assert_int_equal(fs_write_file_atomic(bb, sb.buf, sb.len, 0755, NULL), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (!f)
		return 0;
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->rootfs);
	free(f->state);
	free(f);
	return 0;
}

static struct runtime_spec *make_spec(const struct fixture *f, const char *script)
{
	_cleanup_json_ json_t *doc =
	    json_pack("{s:s, s:{s:s}, s:s, s:{s:[s,s,s,s], s:[s], s:s}, s:[{s:s,s:s,s:s}],"
		      " s:{s:[{s:s},{s:s},{s:s},{s:s}]}}",
		      "ociVersion", "1.0.2", "root", "path", f->rootfs, "hostname", "inproc", "process",
		      "args", "/bin/busybox", "sh", "-c", script, "env", "PATH=/bin", "cwd", "/", "mounts",
		      "destination", "/proc", "type", "proc", "source", "proc", "linux", "namespaces", "type",
		      "pid", "type", "mount", "type", "uts", "type", "ipc");
	assert_non_null(doc);
	struct runtime_spec *s = NULL;
	struct berth_error *err = NULL;
	if (runtime_spec_parse(doc, f->dir, &s, &err) < 0)
		fail_msg("%s", berth_error_string(err));
	return s;
}

static void test_run_in_process_with_stdio(void **state)
{
	struct fixture *f = *state;
	if (!f)
		skip();
	struct runtime_ctx ctx = RUNTIME_CTX_INIT;
	ctx.state_root = f->state;
	_cleanup_spec_ struct runtime_spec *s = make_spec(f, "/bin/busybox hostname; echo $$; exit 7");
	int out[2];
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	o.spec = s;
	o.stdio[1] = out[1];
	int status = -1;
	struct berth_error *err = NULL;
	if (runtime_run(&ctx, "inproc1", f->dir, &o, NULL, NULL, &status, &err) < 0)
		fail_msg("%s", berth_error_string(err));
	close(out[1]);
	char buf[64] = "";
	assert_true(read(out[0], buf, sizeof(buf) - 1) > 0);
	close(out[0]);
	assert_string_equal(buf, "inproc\n1\n");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
	_cleanup_free_ char *dir = xasprintf("%s/inproc1", f->state);
	assert_int_equal(access(dir, F_OK), -1); /* run deletes */
}

static void test_create_start_wait_delete(void **state)
{
	struct fixture *f = *state;
	if (!f)
		skip();
	struct runtime_ctx ctx = RUNTIME_CTX_INIT;
	ctx.state_root = f->state;
	_cleanup_spec_ struct runtime_spec *s = make_spec(f, "/bin/busybox sleep 30");
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	o.spec = s;
	pid_t pid = 0;
	int pidfd = -1;
	struct berth_error *err = NULL;
	if (runtime_create(&ctx, "inproc2", f->dir, &o, &pid, &pidfd, &err) < 0)
		fail_msg("%s", berth_error_string(err));
	assert_true(pid > 0 && pidfd >= 0);
	struct runtime_state st;
	assert_int_equal(runtime_state(&ctx, "inproc2", &st, NULL), 0);
	assert_int_equal(st.status, RUNTIME_STATUS_CREATED);
	assert_int_equal(st.pid, pid);
	runtime_state_done(&st);
	assert_int_equal(runtime_create(&ctx, "inproc2", f->dir, &o, NULL, NULL, NULL), -EEXIST);
	assert_int_equal(runtime_start(&ctx, "inproc2", NULL), 0);
	assert_int_equal(runtime_kill(&ctx, "inproc2", SIGKILL, false, NULL), 0);
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 10000), 1);
	int wst;
	assert_int_equal(waitpid(pid, &wst, 0), pid); /* the init is our child */
	assert_true(WIFSIGNALED(wst));
	close(pidfd);
	assert_int_equal(runtime_state(&ctx, "inproc2", &st, NULL), 0);
	assert_int_equal(st.status, RUNTIME_STATUS_STOPPED);
	runtime_state_done(&st);
	assert_int_equal(runtime_delete(&ctx, "inproc2", false, NULL), 0);
	assert_int_equal(runtime_delete(&ctx, "inproc2", false, NULL), -ENOENT);
}

static void test_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	if (!f)
		skip();
	struct runtime_ctx ctx = RUNTIME_CTX_INIT;
	ctx.state_root = f->state;
	_cleanup_spec_ struct runtime_spec *s = make_spec(f, "true");
	((struct runtime_process *)&s->process)->args[0] = "/bin/nonexistent";
	struct runtime_create_opts o = RUNTIME_CREATE_OPTS_INIT;
	o.spec = s;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(runtime_create(&ctx, "inproc3", f->dir, &o, NULL, NULL, &err) < 0);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_non_null(strstr(msg, "create container 'inproc3': exec '/bin/nonexistent'"));
	_cleanup_free_ char *dir = xasprintf("%s/inproc3", f->state);
	assert_int_equal(access(dir, F_OK), -1);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* nothing left to reap */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_in_process_with_stdio),
		cmocka_unit_test(test_create_start_wait_delete),
		cmocka_unit_test(test_failure_leaves_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
