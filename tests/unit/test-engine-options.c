/* test-engine-options.c - -v specs, --mount objects, ulimits and seccomp profiles (engine/options.h). */
#include "unit.h"
#include "common/json.h"
#include "engine/options.h"

static json_t *j(const char *s)
{
	json_t *v = json_loads(s, 0, NULL);
	assert_non_null(v);
	return v;
}

static void expect_err(int r, struct berth_error **errp, const char *needle)
{
	struct berth_error *err = *errp;
	assert_true(r < 0);
	char *m = berth_error_string(err);
	assert_non_null(m);
	if (needle && !strstr(m, needle))
		fail_msg("error '%s' lacks '%s'", m, needle);
	free(m);
	berth_error_free(err);
}

static void test_bind_ok(void **state)
{
	json_t *m = NULL;
	assert_int_equal(engine_bind_parse("/data", &m, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(m, "Type")), "volume");
	assert_true(json_is_true(json_object_get(m, "anonymous")));
	assert_true(json_is_true(json_object_get(m, "copy")));
	json_decref(m);
	assert_int_equal(engine_bind_parse("/host//x/:/c/./d:ro,rshared,Z", &m, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(m, "Source")), "/host/x");
	assert_string_equal(json_string_value(json_object_get(m, "Destination")), "/c/d");
	assert_string_equal(json_string_value(json_object_get(m, "Propagation")), "rshared");
	assert_true(json_is_false(json_object_get(m, "RW")));
	json_decref(m);
	assert_int_equal(engine_bind_parse("vol:/d:nocopy,rw", &m, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(m, "Name")), "vol");
	assert_true(json_is_false(json_object_get(m, "copy")));
	assert_true(json_is_true(json_object_get(m, "RW")));
	json_decref(m);
}

static void test_bind_bad(void **state)
{
	static const char *const bad[][2] = {
		{ "", "invalid volume specification" },
		{ "a:b:c:d", "invalid volume specification" },
		{ "/x:rel", "must be absolute" },
		{ "/x:/", "can't be '/'" },
		{ "/x:/y:bogus", "invalid mode" },
		{ "/x:/y:ro,rw", "invalid mode" },
		{ "/x:/y:nocopy", "invalid mode" },
		{ "v:/y:rshared", "invalid mode" },
		{ "/x:/y:", "invalid" },
		{ ":/y", "invalid volume specification" },
		{ "/x:/y:ro,", "invalid mode" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct berth_error *err = NULL;
		json_t *m = NULL;
		expect_err(engine_bind_parse(bad[i][0], &m, &err), &err, bad[i][1]);
		assert_null(m);
	}
}

static void test_mount_ok(void **state)
{
	json_t *in =
	    j("{\"Type\":\"tmpfs\",\"Target\":\"/t\",\"TmpfsOptions\":{\"SizeBytes\":1024,\"Mode\":448}}");
	json_t *m = NULL;
	assert_int_equal(engine_mount_parse(in, "m", &m, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(m, "tmpfs")), "size=1024,mode=700");
	json_decref(m);
	json_decref(in);
	in = j("{\"Type\":\"bind\",\"Source\":\"/tmp\",\"Target\":\"/t\",\"ReadOnly\":true,"
	       "\"BindOptions\":{\"Propagation\":\"slave\",\"NonRecursive\":true}}");
	assert_int_equal(engine_mount_parse(in, "m", &m, NULL), 0);
	assert_true(json_is_true(json_object_get(m, "nonrecursive")));
	assert_string_equal(json_string_value(json_object_get(m, "Propagation")), "slave");
	json_t *pub = json_pack("[O]", m);
	json_t *p = engine_mounts_public(pub);
	assert_null(json_object_get(json_array_get(p, 0), "nonrecursive"));
	assert_non_null(json_object_get(json_array_get(p, 0), "Propagation"));
	json_decref(p);
	json_decref(pub);
	json_decref(m);
	json_decref(in);
}

static void test_mount_bad(void **state)
{
	static const char *const bad[][2] = {
		{ "[]", "expected object" },
		{ "{\"Target\":\"/t\"}", "type must be specified" },
		{ "{\"Type\":\"nfs\",\"Target\":\"/t\"}", "mount type unknown" },
		{ "{\"Type\":\"bind\",\"Target\":\"/t\"}", "Source must not be empty" },
		{ "{\"Type\":\"bind\",\"Source\":\"/nonexistent-xyz\",\"Target\":\"/t\"}", "does not exist" },
		{ "{\"Type\":\"volume\",\"Source\":\"v\"}", "Target must not be empty" },
		{ "{\"Type\":\"tmpfs\",\"Source\":\"x\",\"Target\":\"/t\"}", "Source must not be specified" },
		{ "{\"Type\":\"volume\",\"Target\":\"/t\",\"BindOptions\":{}}", "must not be specified" },
		{ "{\"Type\":\"bind\",\"Source\":\"/tmp\",\"Target\":\"/"
		  "t\",\"BindOptions\":{\"Propagation\":\"x\"}}",
		  "propagation" },
		{ "{\"Type\":\"tmpfs\",\"Target\":\"/t\",\"TmpfsOptions\":{\"SizeBytes\":\"1\"}}",
		  "SizeBytes" },
		{ "{\"Type\":\"volume\",\"Target\":\"/"
		  "t\",\"VolumeOptions\":{\"DriverConfig\":{\"Name\":\"nfs\"}}}",
		  "not found" },
		{ "{\"Type\":\"volume\",\"Target\":\"/t\",\"ReadOnly\":\"yes\"}", "ReadOnly" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *in = j(bad[i][0]);
		struct berth_error *err = NULL;
		json_t *m = NULL;
		expect_err(engine_mount_parse(in, "m", &m, &err), &err, bad[i][1]);
		json_decref(in);
	}
}

static void test_ulimits(void **state)
{
	json_t *u = NULL;
	assert_int_equal(engine_ulimit_parse("nofile=10:20", &u, NULL), 0);
	json_t *list = json_pack("[o]", u);
	json_t *rl = NULL;
	assert_int_equal(engine_ulimits_check(list, "U", &rl, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(json_array_get(rl, 0), "type")),
			    "RLIMIT_NOFILE");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rl, 0), "hard")), 20);
	json_decref(rl);
	json_decref(list);
	static const char *const bad[][2] = {
		{ "{}", "expected array" },
		{ "[{\"Name\":\"bogus\",\"Soft\":1,\"Hard\":1}]", "invalid ulimit type" },
		{ "[{\"Name\":\"nofile\",\"Soft\":2,\"Hard\":1}]", "soft limit" },
		{ "[{\"Name\":\"nofile\",\"Soft\":\"x\",\"Hard\":1}]", "Soft" },
		{ "[{\"Name\":\"nofile\",\"Soft\":1,\"Hard\":1},{\"Name\":\"nofile\",\"Soft\":1,\"Hard\":1}]",
		  "duplicate" },
		{ "[{\"Name\":\"nofile\",\"Soft\":-7,\"Hard\":1}]", ">= -1" },
		{ "[5]", "expected object" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *in = j(bad[i][0]);
		struct berth_error *err = NULL;
		expect_err(engine_ulimits_check(in, "U", NULL, &err), &err, bad[i][1]);
		json_decref(in);
	}
	const char *badp[] = { "nofile", "x=1", "nofile=a", "nofile=3:2" };
	for (size_t i = 0; i < ARRAY_SIZE(badp); i++) {
		struct berth_error *err = NULL;
		expect_err(engine_ulimit_parse(badp[i], &u, &err), &err, NULL);
	}
}

static const char good_profile[] =
    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1,"
    "\"archMap\":[{\"architecture\":\"SCMP_ARCH_X86_64\",\"subArchitectures\":[\"SCMP_ARCH_X86\"]},"
    "{\"architecture\":\"SCMP_ARCH_AARCH64\",\"subArchitectures\":[\"SCMP_ARCH_ARM\"]}],"
    "\"syscalls\":[{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
    "{\"name\":\"mkdir\",\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":13},"
    "{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"caps\":[\"CAP_SYS_PTRACE\"]}},"
    "{\"names\":[\"chown\"],\"action\":\"SCMP_ACT_ALLOW\",\"excludes\":{\"caps\":[\"CAP_CHOWN\"]}},"
    "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":8,"
    "\"op\":\"SCMP_CMP_EQ\"}]},"
    "{\"names\":[\"s390_only\"],\"action\":\"SCMP_ACT_ALLOW\",\"includes\":{\"arches\":[\"s390x\"]}}]}";

static void test_seccomp_ok(void **state)
{
	json_t *caps = json_pack("[s]", "CAP_CHOWN");
	json_t *oci = NULL;
	assert_int_equal(engine_seccomp_profile_to_oci(good_profile, strlen(good_profile), caps, &oci, NULL),
			 0);
	assert_string_equal(json_string_value(json_object_get(oci, "defaultAction")), "SCMP_ACT_ERRNO");
	json_t *arches = json_object_get(oci, "architectures");
	assert_int_equal(json_array_size(arches), 2);
	json_t *rules = json_object_get(oci, "syscalls");
	/* ptrace (no CAP_SYS_PTRACE), chown (has CAP_CHOWN) and the s390x rule are left out */
	assert_int_equal(json_array_size(rules), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(rules, 1), "errnoRet")), 13);
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(json_array_get(rules, 1), "names"), 0)),
	    "mkdir");
	assert_non_null(json_object_get(json_array_get(rules, 2), "args"));
	json_decref(oci);
	json_decref(caps);
}

static void test_seccomp_bad(void **state)
{
	static const char *const bad[][2] = {
		{ "not json", "seccomp profile" },
		{ "[]", "expected object" },
		{ "{}", "defaultAction" },
		{ "{\"defaultAction\":\"SCMP_ACT_NOPE\"}", "unknown seccomp action" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[],\"archMap\":[]}", "either" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"name\":\"a\",\"names\":[\"b\"],"
		  "\"action\":\"SCMP_ACT_ALLOW\"}]}",
		  "'name' and 'names'" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"action\":\"SCMP_ACT_ALLOW\"}]}",
		  "needs" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"a\"]}]}", "action" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"a\"],\"action\":\"SCMP_"
		  "ACT_ALLOW\","
		  "\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
		  "index" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"a\"],\"action\":\"SCMP_"
		  "ACT_ALLOW\","
		  "\"args\":[{\"index\":0,\"value\":1,\"op\":\"LT\"}]}]}",
		  "unknown seccomp operator" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[1],\"action\":\"SCMP_ACT_"
		  "ALLOW\"}]}",
		  "syscalls[0].names[0]" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":{}}", "syscalls" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultErrnoRet\":-1}", "defaultErrnoRet" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"archMap\":[{\"subArchitectures\":[]}]}",
		  "architecture" },
		{ "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"a\"],\"action\":\"SCMP_"
		  "ACT_ALLOW\","
		  "\"includes\":{\"caps\":\"x\"}}]}",
		  "caps" },
	};
	json_t *caps = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct berth_error *err = NULL;
		json_t *oci = NULL;
		expect_err(engine_seccomp_profile_to_oci(bad[i][0], strlen(bad[i][0]), caps, &oci, &err),
			   &err, bad[i][1]);
		assert_null(oci);
	}
	json_decref(caps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_ok),     cmocka_unit_test(test_bind_bad),
		cmocka_unit_test(test_mount_ok),    cmocka_unit_test(test_mount_bad),
		cmocka_unit_test(test_ulimits),     cmocka_unit_test(test_seccomp_ok),
		cmocka_unit_test(test_seccomp_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
