/*
 * test-runtime-ops.c - the runtime interface (runtime/ops.h): which
 * implementation a runtime name selects; the external CLI's command lines,
 * outputs and errors against a fake runc (a shell script that records its
 * argv); the in-process library's errors read as the CLI's do.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "unit.h"
#include "common/fs.h"
#include "runtime/ops.h"

static void test_init_selects_the_implementation(void **state)
{
	(void)state;
	struct runtime_oci rt;
	runtime_oci_init(&rt, "berth", "/run/x", "/tmp/log", 0);
	assert_ptr_equal(rt.ops, &runtime_ops_builtin);
	assert_null(rt.path);
	assert_int_equal(rt.timeout_ms, 60000);
	runtime_oci_init(&rt, NULL, "/run/x", NULL, 5);
	assert_ptr_equal(rt.ops, &runtime_ops_builtin);
	runtime_oci_init(&rt, "/usr/sbin/runc", "/run/x", NULL, 30000);
	assert_ptr_equal(rt.ops, &runtime_ops_cli);
	assert_string_equal(rt.path, "/usr/sbin/runc");
	assert_string_equal(rt.state_root, "/run/x");
	assert_int_equal(rt.timeout_ms, 30000);
	assert_true(runtime_oci_is_builtin("berth"));
	assert_false(runtime_oci_is_builtin("runc"));
}

/*
 * A fake runc in dir: appends its argv (one line) to dir/argv; `ps` prints
 * pids, `state` a state document, `update` copies its --resources file to
 * dir/resources; FAIL=verb in dir/fail makes that verb fail (stderr, and a
 * JSON error line into --log when given).
 */
static char *fake_runc(const char *dir)
{
	char *path = xasprintf("%s/runc", dir);
	_cleanup_free_ char *text = xasprintf(
	    "#!/bin/sh\n"
	    "D=%s\n"
	    "echo \"$*\" >> $D/argv\n"
	    "log=; while [ $# -gt 0 ]; do case $1 in --root) shift 2;; --log) log=$2; shift 2;;\n"
	    "  --log-format) shift 2;; *) break;; esac; done\n"
	    "verb=$1\n"
	    "if [ -f $D/fail ] && [ \"$(cat $D/fail)\" = $verb ]; then\n"
	    "  echo \"$verb went wrong\" >&2\n"
	    "  [ -n \"$log\" ] && echo '{\"level\":\"error\",\"msg\":\"logged: '$verb' failed\"}' >> $log\n"
	    "  exit 1; fi\n"
	    "case $verb in\n"
	    "  ps) echo '[12,34]';;\n"
	    "  state) echo '{\"ociVersion\":\"1.0.2\",\"id\":\"c1\",\"pid\":77,\"status\":\"paused\","
	    "\"bundle\":\"/b\",\"rootfs\":\"/b/rootfs\",\"created\":\"2026-01-01T00:00:00Z\","
	    "\"owner\":\"\",\"annotations\":{\"a\":\"1\"}}';;\n"
	    "  update) cat $3 > $D/resources;;\n"
	    "esac\n",
	    dir);
	assert_int_equal(fs_write_file_atomic(path, text, strlen(text), 0755, NULL), 0);
	return path;
}

static char *read_text(const char *dir, const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, p, 0, &sb, NULL) < 0)
		strbuf_addstr(&sb, "(none)");
	return strbuf_detach(&sb, NULL);
}

static void test_cli_command_lines_and_outputs(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *bin = fake_runc(dir);
	struct runtime_oci rt;
	runtime_oci_init(&rt, bin, "/run/r", NULL, 5000);
	struct berth_error *err = NULL;
	assert_int_equal(rt.ops->start(&rt, "c1", &err), 0);
	assert_int_equal(rt.ops->pause(&rt, "c1", &err), 0);
	assert_int_equal(rt.ops->resume(&rt, "c1", &err), 0);
	assert_int_equal(rt.ops->kill(&rt, "c1", SIGTERM, false, &err), 0);
	assert_int_equal(rt.ops->kill(&rt, "c1", SIGKILL, true, &err), 0);
	assert_int_equal(rt.ops->delete (&rt, "c1", true, &err), 0);
	assert_int_equal(rt.ops->delete (&rt, "c1", false, &err), 0);
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	assert_int_equal(rt.ops->ps(&rt, "c1", &pids, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(pids[0], 12);
	assert_int_equal(pids[1], 34);
	json_t *res = json_pack("{s:{s:I}}", "memory", "limit", (json_int_t)1048576);
	assert_int_equal(rt.ops->update(&rt, "c1", res, &err), 0);
	json_decref(res);
	struct runtime_state st;
	assert_int_equal(rt.ops->state(&rt, "c1", &st, &err), 0);
	assert_int_equal(st.status, RUNTIME_STATUS_PAUSED);
	assert_int_equal(st.pid, 77);
	assert_string_equal(st.bundle, "/b");
	assert_string_equal(json_string_value(json_object_get(st.annotations, "a")), "1");
	runtime_state_done(&st);
	assert_null(err);
	_cleanup_free_ char *argv = read_text(dir, "argv"), *got = read_text(dir, "resources");
	_cleanup_free_ char *want = xasprintf("--root /run/r start c1\n"
					      "--root /run/r pause c1\n"
					      "--root /run/r resume c1\n"
					      "--root /run/r kill c1 15\n"
					      "--root /run/r kill --all c1 9\n"
					      "--root /run/r delete --force c1\n"
					      "--root /run/r delete c1\n"
					      "--root /run/r ps --format json c1\n"
					      "--root /run/r update --resources /proc/self/fd/3 c1\n"
					      "--root /run/r state c1\n");
	assert_string_equal(argv, want);
	assert_string_equal(got, "{\"memory\":{\"limit\":1048576}}");
	fs_rm_rf(dir, NULL);
}

static void test_cli_errors_name_the_operation(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *bin = fake_runc(dir), *fail = xasprintf("%s/fail", dir);
	_cleanup_free_ char *log = xasprintf("%s/runtime.log", dir);
	struct runtime_oci rt;
	/* without a log: the runtime's stderr */
	runtime_oci_init(&rt, bin, "/run/r", NULL, 5000);
	assert_int_equal(fs_write_file_atomic(fail, "pause", 5, 0644, NULL), 0);
	struct berth_error *err = NULL;
	assert_int_equal(rt.ops->pause(&rt, "c1", &err), -EIO);
	_cleanup_free_ char *m1 = berth_error_string(err);
	assert_string_equal(m1, "OCI runtime pause failed: pause went wrong");
	berth_error_free(err);
	err = NULL;
	/* with a log: its last error line wins */
	runtime_oci_init(&rt, bin, "/run/r", log, 5000);
	assert_int_equal(fs_write_file_atomic(fail, "ps", 2, 0644, NULL), 0);
	pid_t *pids = NULL;
	size_t n = 0;
	assert_int_equal(rt.ops->ps(&rt, "c1", &pids, &n, &err), -EIO);
	assert_null(pids);
	_cleanup_free_ char *m2 = berth_error_string(err);
	assert_string_equal(m2, "OCI runtime ps failed: logged: ps failed");
	berth_error_free(err);
	err = NULL;
	/* a missing binary */
	runtime_oci_init(&rt, "/nonexistent/runc", "/run/r", NULL, 5000);
	assert_true(rt.ops->resume(&rt, "c1", &err) < 0);
	assert_non_null(err);
	berth_error_free(err);
	fs_rm_rf(dir, NULL);
}

/* The library in-process: no container, and each operation says which failed, as the CLI's do. */
static void test_builtin_errors_read_as_the_cli(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = unit_tmpdir();
	struct runtime_oci rt;
	runtime_oci_init(&rt, "berth", dir, NULL, 0);
	struct berth_error *err = NULL;
	assert_int_equal(rt.ops->pause(&rt, "nope", &err), -ENOENT);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_true(startswith(m, "OCI runtime pause failed: "));
	assert_non_null(strstr(m, "'nope'"));
	berth_error_free(err);
	err = NULL;
	pid_t *pids = NULL;
	size_t n = 0;
	assert_int_equal(rt.ops->ps(&rt, "nope", &pids, &n, &err), -ENOENT);
	berth_error_free(err);
	err = NULL;
	json_t *bad = json_pack("{s:s}", "memory", "lots");
	assert_true(rt.ops->update(&rt, "nope", bad, &err) < 0);
	_cleanup_free_ char *m2 = berth_error_string(err);
	assert_true(startswith(m2, "OCI runtime update failed: "));
	json_decref(bad);
	berth_error_free(err);
	err = NULL;
	struct runtime_state st;
	assert_int_equal(rt.ops->state(&rt, "nope", &st, &err), -ENOENT);
	berth_error_free(err);
	err = NULL;
	assert_int_equal(rt.ops->delete (&rt, "nope", true, &err), -ENOENT);
	berth_error_free(err);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_selects_the_implementation),
		cmocka_unit_test(test_cli_command_lines_and_outputs),
		cmocka_unit_test(test_cli_errors_name_the_operation),
		cmocka_unit_test(test_builtin_errors_read_as_the_cli),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
