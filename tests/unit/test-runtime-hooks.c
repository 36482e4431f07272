/* test-runtime-hooks.c - OCI hooks: state on stdin, argv[0] from args, env, timeouts, failures. */
#include <fcntl.h>

#include "unit.h"
#include "common/fs.h"
#include "runtime/container.h"

static void test_hook_gets_state_argv0_and_env(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *script = xasprintf("cat > %s/in; echo \"$0 $FOO\" > %s/argv", dir, dir);
	const char *env[] = { "FOO=bar", NULL };
	/* argv[0] is args[0], the program is path: sh sees "-c script" and $0 = my-hook-name */
	const char *sh_args[] = { "my-hook-name", "-c", script, NULL };
	struct runtime_hook h = { .path = "/bin/sh", .args = sh_args, .env = env, .timeout = 5 };
	struct runtime_hooks hooks = { &h, 1 };
	struct berth_error *err = NULL;
	if (runtime_hooks_run(&hooks, "prestart", "{\"id\":\"x\"}", &err) < 0)
		fail_msg("%s", berth_error_string(err));
	_cleanup_free_ char *in = xasprintf("%s/in", dir), *argv = xasprintf("%s/argv", dir);
	_cleanup_strbuf_ struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	assert_true(fs_read_file_at(AT_FDCWD, in, 0, &a, NULL) >= 0);
	assert_string_equal(a.buf, "{\"id\":\"x\"}");
	assert_true(fs_read_file_at(AT_FDCWD, argv, 0, &b, NULL) >= 0);
	assert_string_equal(b.buf, "my-hook-name bar\n");
	fs_rm_rf(dir, NULL);
}

static void test_hook_failure_and_timeout(void **state)
{
	const char *fail_args[] = { "sh", "-c", "echo oops >&2; exit 3", NULL };
	const char *slow_args[] = { "sh", "-c", "sleep 30", NULL };
	struct runtime_hook hs[] = {
		{ .path = "/bin/sh", .args = fail_args },
		{ .path = "/bin/sh", .args = slow_args, .timeout = 1 },
		{ .path = "/nonexistent/hook" },
	};
	static const char *const want[] = { "poststop hook 0 '/bin/sh' failed with exit code 3: oops",
					    "poststop hook 0 '/bin/sh' timed out after 1s",
					    "poststop hook 0 '/nonexistent/hook'" };
	for (size_t i = 0; i < ARRAY_SIZE(hs); i++) {
		struct runtime_hooks hooks = { &hs[i], 1 };
		_cleanup_error_ struct berth_error *err = NULL;
		assert_true(runtime_hooks_run(&hooks, "poststop", "{}", &err) < 0);
		_cleanup_free_ char *msg = berth_error_string(err);
		if (!strstr(msg, want[i]))
			fail_msg("'%s' does not contain '%s'", msg, want[i]);
	}
}

static void test_big_state_is_fed_fully(void **state)
{
	/* more than a pipe buffer: the hook must still get all of it */
	size_t n = 200000;
	_cleanup_free_ char *big = xmalloc(n + 1);
	memset(big, 'a', n);
	big[n] = 0;
	const char *args[] = { "sh", "-c", "test $(wc -c) -eq 200000", NULL };
	struct runtime_hook h = { .path = "/bin/sh", .args = args, .timeout = 10 };
	struct runtime_hooks hooks = { &h, 1 };
	struct berth_error *err = NULL;
	if (runtime_hooks_run(&hooks, "createRuntime", big, &err) < 0)
		fail_msg("%s", berth_error_string(err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hook_gets_state_argv0_and_env),
		cmocka_unit_test(test_hook_failure_and_timeout),
		cmocka_unit_test(test_big_state_is_fed_fully),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
