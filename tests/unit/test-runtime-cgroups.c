/* test-runtime-cgroups.c - cgroupsPath resolution and the v1 manager against a fake hierarchy. */
#include <fcntl.h>
#include <sys/stat.h>

#include <linux/bpf.h>

#include "unit.h"
#include "common/fs.h"
#include "runtime/cgroups.h"

static void resolve_ok(const char *in, const char *want)
{
	struct runtime_resources r = { 0 };
	char *out = NULL;
	struct berth_error *err = NULL;
	int ret = runtime_cgroup_path_resolve(in, "cid", &r, false, false, &out, &err);
	if (ret < 0)
		fail_msg("'%s': %s", in, berth_error_string(err));
	assert_string_equal(out, want);
	free(out);
}

static void resolve_fails(const char *in, bool systemd, const char *expect)
{
	struct runtime_resources r = { 0 };
	char *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(runtime_cgroup_path_resolve(in, "cid", &r, false, systemd, &out, &err) < 0);
	assert_null(out);
	_cleanup_free_ char *msg = berth_error_string(err);
	if (!strstr(msg, expect))
		fail_msg("'%s' does not contain '%s'", msg, expect);
}

static void test_paths(void **state)
{
	resolve_ok("/docker/abc", "/docker/abc");
	resolve_ok("/a//b/./c/", "/a/b/c");
	resolve_ok("system.slice:docker:abc", "/system.slice/docker-abc.scope");
	resolve_ok("machine-qemu-x.slice:libpod:abc",
		   "/machine.slice/machine-qemu.slice/machine-qemu-x.slice/libpod-abc.scope");
	resolve_ok(":crio:abc", "/system.slice/crio-abc.scope");
	resolve_ok("user.slice:pre:sub.slice", "/user.slice/sub.slice");
	resolve_fails("/", false, "root cgroup");
	resolve_fails("a:b", false, "slice:prefix:name");
	resolve_fails("bad:x:y", false, "invalid slice");
	resolve_fails("a--b.slice:x:y", false, "invalid slice");
	resolve_fails("/x", true, "systemd cgroup manager");
}

static void test_default_path_only_with_limits(void **state)
{
	struct runtime_resources r = { 0 };
	char *out = (char *)"untouched";
	assert_int_equal(runtime_cgroup_path_resolve(NULL, "cid", &r, true, false, &out, NULL), 0);
	assert_null(out);
	r.n_devices = 1; /* device rules alone do not make a cgroup */
	assert_int_equal(runtime_cgroup_path_resolve(NULL, "cid", &r, true, false, &out, NULL), 0);
	assert_null(out);
	r.set = RES_PIDS_LIMIT;
	assert_int_equal(runtime_cgroup_path_resolve(NULL, "cid", &r, true, false, &out, NULL), 0);
	assert_string_equal(out, "/berth/cid");
	free(out);
}

/* The v1 manager writes the right files; a tmpfs tree stands in for /sys/fs/cgroup. */
static void test_v1_apply_writes_files(void **state)
{
	_cleanup_free_ char *root = unit_tmpdir();
	static const char *const ctrls[] = { "memory", "pids", "cpu", "devices", NULL };
	setenv("BERTH_CGROUP_ROOT", root, 1);
	for (int i = 0; ctrls[i]; i++) {
		_cleanup_free_ char *d = xasprintf("%s/%s", root, ctrls[i]);
		assert_int_equal(mkdir(d, 0755), 0);
	}
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(CGROUP_V1);
	assert_int_equal(ops->create("/x/y", NULL), 0);
	struct runtime_resources r = { .set = RES_MEM_LIMIT | RES_PIDS_LIMIT | RES_CPU_SHARES | RES_CPU_QUOTA,
				       .mem_limit = 1 << 20,
				       .pids_limit = 0,
				       .cpu_shares = 512,
				       .cpu_quota = 5000 };
	/* the files do not exist in a plain tmpfs: create them, as the kernel would */
	static const char *const files[] = { "memory/x/y/memory.limit_in_bytes", "pids/x/y/pids.max",
					     "cpu/x/y/cpu.shares", "cpu/x/y/cpu.cfs_quota_us", NULL };
	for (int i = 0; files[i]; i++) {
		_cleanup_free_ char *f = xasprintf("%s/%s", root, files[i]);
		int fd = open(f, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	struct berth_error *err = NULL;
	if (ops->apply("/x/y", &r, &err) < 0)
		fail_msg("%s", berth_error_string(err));
	const char *want[] = { "1048576", "max", "512", "5000" };
	for (int i = 0; files[i]; i++) {
		_cleanup_free_ char *f = xasprintf("%s/%s", root, files[i]);
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		assert_true(fs_read_file_at(AT_FDCWD, f, 0, &sb, NULL) >= 0);
		assert_string_equal(sb.buf, want[i]);
	}
	struct runtime_resources bad = { .unified = (const char *[]){ "memory.high", "1", NULL } };
	_cleanup_error_ struct berth_error *e2 = NULL;
	assert_true(ops->apply("/x/y", &bad, &e2) < 0);
	fs_rm_rf(root, NULL);
	unsetenv("BERTH_CGROUP_ROOT");
}

/* Co-mounted hierarchies ("cpu,cpuacct" with "cpu" and "cpuacct" symlinks) are listed once. */
static void test_v1_lists_real_hierarchies(void **state)
{
	_cleanup_free_ char *root = unit_tmpdir();
	_cleanup_free_ char *co = xasprintf("%s/cpu,cpuacct", root), *mem = xasprintf("%s/memory", root),
			    *l1 = xasprintf("%s/cpu", root), *l2 = xasprintf("%s/cpuacct", root);
	assert_int_equal(mkdir(co, 0755), 0);
	assert_int_equal(mkdir(mem, 0755), 0);
	assert_int_equal(symlink("cpu,cpuacct", l1), 0);
	assert_int_equal(symlink("cpu,cpuacct", l2), 0);
	setenv("BERTH_CGROUP_ROOT", root, 1);
	const char *const *v = runtime_cgroup_v1_controllers();
	size_t n = 0;
	bool saw_co = false;
	for (; v[n]; n++)
		saw_co |= streq(v[n], "cpu,cpuacct");
	assert_int_equal(n, 2);
	assert_true(saw_co);
	/* a cgroup is created in the real directory; "cpu/..." paths resolve through the alias */
	assert_int_equal(runtime_cgroup_ops_for(CGROUP_V1)->create("/c", NULL), 0);
	_cleanup_free_ char *via = xasprintf("%s/cpu/c", root);
	assert_int_equal(access(via, F_OK), 0);
	fs_rm_rf(root, NULL);
	unsetenv("BERTH_CGROUP_ROOT");
}

static void test_device_program_shape(void **state)
{
	struct bpf_insn *prog = NULL;
	size_t n = 0;
	/* no rules: 6 loads + "r0 = 1; exit" */
	assert_int_equal(runtime_cgroup_devices_program(NULL, 0, NULL, 0, &prog, &n), 0);
	assert_int_equal(n, 8);
	assert_int_equal(prog[6].imm, 1);
	free(prog);
	/* deny all then one exact allow: the allow block (type, access, major, minor, verdict) then default
	 * deny */
	struct runtime_device_rule rules[] = { { false, 'a', -1, -1, "rwm" }, { true, 'c', 1, 3, "rw" } };
	assert_int_equal(runtime_cgroup_devices_program(rules, 2, NULL, 0, &prog, &n), 0);
	assert_int_equal(n, 6 + 8 + 2);
	assert_int_equal(prog[n - 2].imm, 0);
	assert_int_equal(prog[n - 4].imm, 1);
	free(prog);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_default_path_only_with_limits),
		cmocka_unit_test(test_v1_apply_writes_files),
		cmocka_unit_test(test_v1_lists_real_hierarchies),
		cmocka_unit_test(test_device_program_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
