/* test-runtime-seccomp.c - profiles compile to BPF that really denies what they say (in a child). */
#include <dirent.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "unit.h"
#include "common/fs.h"
#include "common/json.h"
#include "runtime/container.h"

static struct runtime_spec *spec_with(const char *seccomp)
{
	_cleanup_free_ char *text = xasprintf(
	    "{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"seccomp\":%s}}", seccomp);
	_cleanup_json_ json_t *j = NULL;
	struct runtime_spec *s = NULL;
	assert_int_equal(json_parse(text, strlen(text), "t", &j, NULL), 0);
	assert_int_equal(runtime_spec_parse(j, NULL, &s, NULL), 0);
	return s;
}

static void test_errno_rule_and_args(void **state)
{
	_cleanup_spec_ struct runtime_spec *s =
	    spec_with("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":["
		      "{\"names\":[\"mkdir\",\"mkdirat\",\"no_such_syscall\"],\"action\":\"SCMP_ACT_ERRNO\","
		      "\"errnoRet\":38},"
		      "{\"names\":[\"umask\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":13,"
		      "\"args\":[{\"index\":0,\"value\":63,\"op\":\"SCMP_CMP_EQ\"}]}]}");
	struct sock_fprog *prog = NULL;
	struct berth_error *err = NULL;
	if (runtime_seccomp_compile(s->seccomp, NULL, &prog, &err) < 0)
		fail_msg("%s", berth_error_string(err));
	assert_true(prog->len > 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (runtime_seccomp_install(prog, 0) < 0)
			_exit(10);
		if (mkdir("/tmp/berth-unit-seccomp-never", 0700) == 0) {
			rmdir("/tmp/berth-unit-seccomp-never");
			_exit(11);
		}
		if (errno != ENOSYS)
			_exit(11);
		/* the argument filter: umask(63) is denied with EACCES, umask(18) is not */
		if (syscall(SYS_umask, 63) != -1 || errno != EACCES)
			_exit(12);
		if (syscall(SYS_umask, 18) < 0)
			_exit(13);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	runtime_seccomp_prog_free(prog);
}

static void test_kill_default(void **state)
{
	_cleanup_spec_ struct runtime_spec *s =
	    spec_with("{\"defaultAction\":\"SCMP_ACT_KILL_PROCESS\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
		      "\"syscalls\":["
		      "{\"names\":[\"exit_group\",\"exit\",\"write\",\"getpid\",\"seccomp\",\"prctl\","
		      "\"brk\",\"mmap\"],"
		      "\"action\":\"SCMP_ACT_ALLOW\"}]}");
	struct sock_fprog *prog = NULL;
	assert_int_equal(runtime_seccomp_compile(s->seccomp, NULL, &prog, NULL), 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (runtime_seccomp_install(prog, 0) < 0)
			_exit(10);
		getpid();
		getppid(); /* not allowed: killed */
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	runtime_seccomp_prog_free(prog);
}

/* Denied by default with EPERM; numbers above the highest the profile names: ENOSYS (runc's stub). */
static _Noreturn void quit(int code)
{
	syscall(SYS_exit_group, code);
	__builtin_unreachable();
}

static void test_enosys_above_the_profile(void **state)
{
	_cleanup_spec_ struct runtime_spec *s = spec_with(
	    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
	    "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\"],"
	    "\"syscalls\":[{\"names\":[\"exit_group\",\"exit\",\"write\",\"getpid\",\"brk\",\"mmap\","
	    "\"munmap\",\"rt_sigprocmask\",\"seccomp\",\"sigaltstack\",\"gettid\",\"futex\",\"writev\","
	    "\"rt_sigaction\"],\"action\":\"SCMP_ACT_ALLOW\"}]}"); /* what the sanitizers need too */
	struct sock_fprog *prog = NULL;
	assert_int_equal(runtime_seccomp_compile(s->seccomp, NULL, &prog, NULL), 0);
	pid_t pid = fork();
	/* exit_group directly: the sanitizers' _exit runs a leak check that needs syscalls this
	 * filter refuses */
	if (pid == 0) {
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (runtime_seccomp_install(prog, 0) < 0)
			quit(10);
		if (syscall(SYS_getpid) < 0)
			quit(11);
		if (syscall(SYS_getppid) != -1 || errno != EPERM) /* 110 < seccomp (317): EPERM */
			quit(12);
		if (syscall(400) != -1 || errno != ENOSYS) /* no such syscall, above 317 */
			quit(13);
		if (syscall(SYS_pidfd_open, 1, 0) != -1 || errno != ENOSYS) /* 434 > 317 */
			quit(14);
		if (syscall(1000) != -1 || errno != ENOSYS)
			quit(15);
		quit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st), 0);
	runtime_seccomp_prog_free(prog);
}

static bool same_prog(const struct sock_fprog *a, const struct sock_fprog *b)
{
	return a->len == b->len && memcmp(a->filter, b->filter, a->len * sizeof(struct sock_filter)) == 0;
}

/* The cache returns exactly what compiling returns; damaged or foreign files are recompiled over. */
static void test_cache_hits_and_survives_damage(void **state)
{
	char dir[] = "/tmp/berth-unit-seccomp-XXXXXX";
	assert_non_null(mkdtemp(dir));
	unit_tmp_track(dir);
	_cleanup_free_ char *cache = xasprintf("%s/.seccomp", dir);
	_cleanup_spec_ struct runtime_spec *s =
	    spec_with("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
		      "{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"}]}");
	_cleanup_spec_ struct runtime_spec *other =
	    spec_with("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":["
		      "{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\"}]}");
	struct sock_fprog *plain = NULL, *miss = NULL, *hit = NULL, *o = NULL, *again = NULL;
	assert_int_equal(runtime_seccomp_compile(s->seccomp, NULL, &plain, NULL), 0);
	assert_int_equal(runtime_seccomp_compile(s->seccomp, cache, &miss, NULL), 0);
	assert_int_equal(runtime_seccomp_compile(s->seccomp, cache, &hit, NULL), 0);
	assert_true(same_prog(plain, miss));
	assert_true(same_prog(plain, hit));
	assert_int_equal(runtime_seccomp_compile(other->seccomp, cache, &o, NULL), 0);
	assert_false(same_prog(plain, o));
	/* damage every cached file: truncate one, overwrite the other with garbage */
	DIR *d = opendir(cache);
	assert_non_null(d);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", cache, de->d_name);
		if (n++ == 0)
			assert_int_equal(truncate(p, 30), 0);
		else
			assert_int_equal(fs_write_file_atomic(p, "garbage", 7, 0600, NULL), 0);
	}
	closedir(d);
	assert_int_equal(n, 2);
	assert_int_equal(runtime_seccomp_compile(s->seccomp, cache, &again, NULL), 0);
	assert_true(same_prog(plain, again));
	runtime_seccomp_prog_free(plain);
	runtime_seccomp_prog_free(miss);
	runtime_seccomp_prog_free(hit);
	runtime_seccomp_prog_free(o);
	runtime_seccomp_prog_free(again);
	assert_int_equal(fs_rm_rf(dir, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_rule_and_args),
		cmocka_unit_test(test_kill_default),
		cmocka_unit_test(test_enosys_above_the_profile),
		cmocka_unit_test(test_cache_hits_and_survives_damage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
