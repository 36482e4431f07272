/* test-runtime-spec.c - config.json parsing: the happy path and precise errors. */
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "unit.h"
#include "common/json.h"
#include "runtime/spec.h"

#define BASE "\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"}"

static struct runtime_spec *parse_ok(const char *text)
{
	_cleanup_json_ json_t *j = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	struct runtime_spec *s = NULL;
	assert_int_equal(json_parse(text, strlen(text), "test", &j, &err), 0);
	int r = runtime_spec_parse(j, "/b", &s, &err);
	if (r < 0)
		fail_msg("unexpected error: %s", berth_error_string(err));
	return s;
}

static void parse_fails(const char *text, const char *expect)
{
	_cleanup_json_ json_t *j = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	struct runtime_spec *s = NULL;
	assert_int_equal(json_parse(text, strlen(text), "test", &j, &err), 0);
	assert_true(runtime_spec_parse(j, "/b", &s, &err) < 0);
	assert_null(s);
	_cleanup_free_ char *msg = berth_error_string(err);
	if (!strstr(msg, expect))
		fail_msg("error '%s' does not contain '%s'", msg, expect);
}

static void test_minimal(void **state)
{
	_cleanup_spec_ struct runtime_spec *s = parse_ok("{" BASE "}");
	assert_string_equal(s->root_path, "/b/rootfs");
	assert_false(s->has_process);
	assert_int_equal(s->n_mounts, 0);
}

static void test_full_process(void **state)
{
	_cleanup_spec_ struct runtime_spec *s = parse_ok(
	    "{" BASE ",\"process\":{\"terminal\":true,\"consoleSize\":{\"height\":24,\"width\":80},"
	    "\"user\":{\"uid\":1000,\"gid\":100,\"umask\":18,\"additionalGids\":[5,6]},"
	    "\"args\":[\"sh\",\"-c\",\"true\"],\"env\":[\"A=b\",\"PATH=/bin\"],\"cwd\":\"/tmp\","
	    "\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],\"effective\":[\"CAP_KILL\"]},"
	    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":512}],"
	    "\"noNewPrivileges\":true,\"oomScoreAdj\":-500,"
	    "\"scheduler\":{\"policy\":\"SCHED_BATCH\",\"nice\":5}},"
	    "\"hostname\":\"h\",\"linux\":{\"namespaces\":[{\"type\":\"uts\"},{\"type\":\"pid\"},"
	    "{\"type\":\"network\",\"path\":\"/run/netns/x\"}]}}");
	struct runtime_process *p = &s->process;
	assert_true(s->has_process);
	assert_true(p->terminal);
	assert_int_equal(p->console_width, 80);
	assert_int_equal(p->uid, 1000);
	assert_int_equal(p->gid, 100);
	assert_true(p->has_umask);
	assert_int_equal(p->umask, 022);
	assert_int_equal(p->n_additional_gids, 2);
	assert_string_equal(p->args[2], "true");
	assert_null(p->args[3]);
	assert_string_equal(p->env[1], "PATH=/bin");
	assert_string_equal(p->cwd, "/tmp");
	assert_true(p->has_caps);
	assert_int_equal(p->caps.bounding, (1ull << 5) | (1ull << 0));
	assert_int_equal(p->caps.effective, 1ull << 5);
	assert_int_equal(p->n_rlimits, 1);
	assert_int_equal(p->rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(p->rlimits[0].soft, 512);
	assert_true(p->no_new_privileges);
	assert_int_equal(p->oom_score_adj, -500);
	assert_int_equal(p->sched_policy, 3);
	assert_true(s->ns[RUNTIME_NS_UTS].enabled);
	assert_null(s->ns[RUNTIME_NS_UTS].path);
	assert_string_equal(s->ns[RUNTIME_NS_NET].path, "/run/netns/x");
	assert_false(s->ns[RUNTIME_NS_USER].enabled);
}

static void test_mounts(void **state)
{
	_cleanup_spec_ struct runtime_spec *s = parse_ok(
	    "{" BASE ",\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	    "{\"destination\":\"/dev//shm/\",\"type\":\"tmpfs\",\"source\":\"shm\","
	    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
	    "{\"destination\":\"/data\",\"source\":\"/srv\",\"options\":[\"rbind\",\"ro\",\"rslave\"]},"
	    "{\"destination\":\"/x\",\"type\":\"bind\",\"source\":\"/srv\",\"options\":[\"rw\"]}]}");
	assert_int_equal(s->n_mounts, 4);
	assert_string_equal(s->mounts[0].type, "proc");
	assert_string_equal(s->mounts[1].destination, "/dev/shm");
	assert_int_equal(s->mounts[1].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV);
	assert_string_equal(s->mounts[1].data, "mode=1777,size=65536k");
	assert_true(s->mounts[2].bind && s->mounts[2].rbind);
	assert_int_equal(s->mounts[2].flags, MS_RDONLY);
	assert_int_equal(s->mounts[2].propagation, MS_SLAVE | MS_REC);
	assert_true(s->mounts[3].bind);
	assert_false(s->mounts[3].rbind);
	assert_int_equal(s->mounts[3].clear, MS_RDONLY);
}

static void test_linux_sections(void **state)
{
	_cleanup_spec_ struct runtime_spec *s = parse_ok(
	    "{" BASE ",\"linux\":{\"namespaces\":[{\"type\":\"user\"},{\"type\":\"mount\"}],"
	    "\"uidMappings\":[{\"containerID\":0,\"hostID\":100000,\"size\":65536}],"
	    "\"gidMappings\":[{\"containerID\":0,\"hostID\":100000,\"size\":65536}],"
	    "\"devices\":[{\"path\":\"/dev/"
	    "fuse\",\"type\":\"c\",\"major\":10,\"minor\":229,\"fileMode\":438}],"
	    "\"resources\":{\"memory\":{\"limit\":1048576,\"swap\":2097152},\"cpu\":{\"shares\":512,"
	    "\"quota\":50000,\"period\":100000,\"cpus\":\"0-1\"},\"pids\":{\"limit\":10},"
	    "\"devices\":[{\"allow\":false,\"access\":\"rwm\"},{\"allow\":true,\"type\":\"c\",\"major\":1,"
	    "\"minor\":3,\"access\":\"rw\"}],\"blockIO\":{\"weight\":300}},"
	    "\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},\"cgroupsPath\":\"/berth/x\","
	    "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\"],"
	    "\"syscalls\":[{\"names\":[\"mkdir\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":38,"
	    "\"args\":[{\"index\":1,\"value\":448,\"op\":\"SCMP_CMP_EQ\"}]}]},"
	    "\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/sys\"],"
	    "\"rootfsPropagation\":\"rprivate\",\"personality\":{\"domain\":\"LINUX32\"}}}");
	assert_int_equal(s->n_uid_mappings, 1);
	assert_int_equal(s->uid_mappings[0].host_id, 100000);
	assert_int_equal(s->devices[0].mode, 0666);
	assert_true(s->has_resources);
	assert_int_equal(s->resources.mem_limit, 1048576);
	assert_true(s->resources.set & RES_MEM_SWAP);
	assert_int_equal(s->resources.cpu_quota, 50000);
	assert_string_equal(s->resources.cpus, "0-1");
	assert_int_equal(s->resources.pids_limit, 10);
	assert_int_equal(s->resources.n_devices, 2);
	assert_false(s->resources.devices[0].allow);
	assert_int_equal(s->resources.devices[0].major, -1);
	assert_int_equal(s->resources.devices[1].minor, 3);
	assert_string_equal(s->sysctl[0], "net.ipv4.ip_forward");
	assert_string_equal(s->cgroups_path, "/berth/x");
	assert_non_null(s->seccomp);
	assert_int_equal(s->seccomp->default_action, SCMP_ACT_ALLOW);
	assert_int_equal(s->seccomp->rules[0].action, SCMP_ACT_ERRNO(38));
	assert_int_equal(s->seccomp->rules[0].args[0].op, SCMP_CMP_EQ);
	assert_int_equal(s->seccomp->archs[0], SCMP_ARCH_X86_64);
	assert_int_equal(s->rootfs_propagation, MS_PRIVATE | MS_REC);
	assert_true(s->has_personality);
}

static void test_errors_name_the_field(void **state)
{
	static const struct {
		const char *json, *expect;
	} cases[] = {
		{ "[]", "'(root)': expected object, got array" },
		{ "{\"root\":{\"path\":\"r\"}}", "ociVersion" },
		{ "{\"ociVersion\":\"2.0\",\"root\":{\"path\":\"r\"}}", "unsupported version '2.0'" },
		{ "{\"ociVersion\":\"1.0\"}", "root" },
		{ "{\"ociVersion\":\"1.0\",\"root\":{\"path\":5}}",
		  "'root.path': expected string, got integer" },
		{ "{" BASE ",\"process\":{\"args\":\"sh\"}}", "'process.args': expected array, got string" },
		{ "{" BASE ",\"process\":{\"args\":[]}}", "'process.args': must name a program" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"cwd\":\"tmp\"}}",
		  "'process.cwd': must be an absolute" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":\"0\"}}}",
		  "'process.user.uid': expected integer, got string" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"user\":{\"uid\":-1}}}", "'process.user.uid'" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"env\":[\"NOEQUALS\"]}}", "'process.env[0]'" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"capabilities\":{\"bounding\":[\"CAP_KILL\","
		  "\"CAP_NOPE\"]}}}",
		  "'process.capabilities.bounding[1]': unknown capability 'CAP_NOPE'" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_FOO\",\"soft\":1,"
		  "\"hard\":1}]}}",
		  "'process.rlimits[0].type': unknown rlimit 'RLIMIT_FOO'" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\","
		  "\"soft\":2,\"hard\":1}]}}",
		  "'process.rlimits[0].soft'" },
		{ "{" BASE ",\"process\":{\"args\":[\"sh\"],\"oomScoreAdj\":5000}}",
		  "'process.oomScoreAdj'" },
		{ "{" BASE ",\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"foo\"}]}}",
		  "'linux.namespaces[1].type': unknown namespace 'foo'" },
		{ "{" BASE ",\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"pid\"}]}}",
		  "duplicate namespace" },
		{ "{" BASE ",\"linux\":{\"namespaces\":[{\"type\":\"user\"}]}}", "needs uidMappings" },
		{ "{" BASE ",\"hostname\":\"x\"}", "'hostname': needs a new UTS namespace" },
		{ "{" BASE ",\"mounts\":[{\"destination\":\"proc\",\"type\":\"proc\"}]}",
		  "'mounts[0].destination': must be an absolute path" },
		{ "{" BASE ",\"mounts\":[{\"destination\":\"/x\"}]}", "'mounts[0].type': required" },
		{ "{" BASE ",\"mounts\":[{\"destination\":\"/x\",\"options\":[\"bind\"]}]}",
		  "'mounts[0].source'" },
		{ "{" BASE ",\"mounts\":{}}", "'mounts': expected array, got object" },
		{ "{" BASE ",\"mounts\":[{\"destination\":\"/x\",\"source\":\"/"
		  "y\",\"options\":[\"bind\",\"idmap\"]}]}",
		  "'mounts[0].options[1]': id-mapped mounts ('idmap') are not supported" },
		{ "{" BASE ",\"hooks\":{\"prestart\":[{\"path\":\"rel\"}]}}", "'hooks.prestart[0].path'" },
		{ "{" BASE ",\"hooks\":{\"poststop\":[{\"path\":\"/bin/x\",\"timeout\":0}]}}",
		  "'hooks.poststop[0].timeout'" },
		{ "{" BASE ",\"linux\":{\"resources\":{\"memory\":{\"limit\":\"1g\"}}}}",
		  "'linux.resources.memory.limit': expected" },
		{ "{" BASE ",\"linux\":{\"resources\":{\"devices\":[{\"allow\":true,\"access\":\"rwx\"}]}}}",
		  "'linux.resources.devices[0].access'" },
		{ "{" BASE ",\"linux\":{\"resources\":{\"cpu\":{\"cpus\":\"0;1\"}}}}",
		  "'linux.resources.cpu.cpus'" },
		{ "{" BASE ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_FOO\"}}}",
		  "'linux.seccomp.defaultAction': unknown action" },
		{ "{" BASE ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":["
		  "\"SCMP_ARCH_VAX\"]}}}",
		  "'linux.seccomp.architectures[0]': unknown architecture" },
		{ "{" BASE ",\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{"
		  "\"names\":[\"x\"],"
		  "\"action\":\"SCMP_ACT_ERRNO\",\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}"
		  "]}}}",
		  "'linux.seccomp.syscalls[0].args[0].index'" },
		{ "{" BASE
		  ",\"linux\":{\"devices\":[{\"path\":\"/dev/x\",\"type\":\"z\",\"major\":1,\"minor\":1}]}}",
		  "'linux.devices[0].type': unknown device type 'z'" },
		{ "{" BASE ",\"linux\":{\"rootfsPropagation\":\"sideways\"}}", "'linux.rootfsPropagation'" },
		{ "{" BASE ",\"linux\":{\"cgroupsPath\":\"/a/../../b\"}}", "'linux.cgroupsPath'" },
		{ "{" BASE ",\"linux\":{\"sysctl\":{\"../x\":\"1\"}}}", "'linux.sysctl.../x'" },
		{ "{" BASE ",\"linux\":{\"timeOffsets\":{}}}", "needs a new time namespace" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		parse_fails(cases[i].json, cases[i].expect);
}

static void test_signals(void **state)
{
	int s = 0;
	assert_int_equal(runtime_parse_signal("SIGKILL", &s), 0);
	assert_int_equal(s, SIGKILL);
	assert_int_equal(runtime_parse_signal("term", &s), 0);
	assert_int_equal(s, SIGTERM);
	assert_int_equal(runtime_parse_signal("10", &s), 0);
	assert_int_equal(s, 10);
	assert_int_equal(runtime_parse_signal("RTMIN+2", &s), 0);
	assert_int_equal(s, SIGRTMIN + 2);
	assert_int_equal(runtime_parse_signal("SIGFOO", &s), -EINVAL);
	assert_int_equal(runtime_parse_signal("0", &s), -EINVAL);
	assert_int_equal(runtime_parse_signal("99", &s), -EINVAL);
	assert_int_equal(runtime_parse_signal("", &s), -EINVAL);
	assert_int_equal(runtime_parse_signal("9x", &s), -EINVAL);
}

static void test_default_spec_parses(void **state)
{
	_cleanup_free_ char *text = runtime_spec_default_json(false);
	_cleanup_spec_ struct runtime_spec *s = parse_ok(text);
	assert_true(s->ns[RUNTIME_NS_MNT].enabled);
	assert_string_equal(s->process.args[0], "sh");
	assert_true(s->n_mounts >= 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full_process),
		cmocka_unit_test(test_mounts),
		cmocka_unit_test(test_linux_sections),
		cmocka_unit_test(test_errors_name_the_field),
		cmocka_unit_test(test_signals),
		cmocka_unit_test(test_default_spec_parses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
