/*
 * test-runtime-registry.c - the daemon's named runtimes (runtime/registry.h):
 * --add-runtime NAME=PATH and its bad forms, the config file's "runtimes",
 * the reserved and alias names, the default's check, /info's map.
 */
#include "unit.h"
#include "common/json.h"
#include "common/strv.h"
#include "runtime/ops.h"
#include "runtime/registry.h"

/* The call fails with EINVAL and exactly msg; nothing changes in r. */
static void expect_fail(int rc, struct berth_error **err, const char *msg)
{
	assert_int_equal(rc, -EINVAL);
	assert_non_null(*err);
	_cleanup_free_ char *m = berth_error_string(*err);
	assert_string_equal(m, msg);
	berth_error_free(*err);
	*err = NULL;
}

static void test_empty_registry_has_berth_and_runc_as_berth(void **state)
{
	(void)state;
	struct runtime_registry r;
	runtime_registry_init(&r);
	assert_string_equal(runtime_registry_default(&r), "runc");
	const struct runtime_def *d = runtime_registry_find(&r, "runc");
	assert_non_null(d);
	assert_null(d->path);
	assert_string_equal(d->name, "berth");
	assert_ptr_equal(runtime_registry_find(&r, "berth"), d);
	assert_null(runtime_registry_find(&r, "crun"));
	assert_null(runtime_registry_find(&r, NULL));
	assert_int_equal(runtime_registry_check(&r, NULL), 0);
	_cleanup_json_ json_t *info = runtime_registry_info(&r);
	_cleanup_free_ char *s = json_dumps(info, JSON_COMPACT);
	assert_string_equal(s, "{\"berth\":{\"path\":\"berth\"},\"runc\":{\"path\":\"berth\"},"
			       "\"io.containerd.runc.v2\":{\"path\":\"berth\"}}");
	runtime_registry_done(&r);
}

static void test_add_opt_defines_a_runtime(void **state)
{
	(void)state;
	struct runtime_registry r;
	runtime_registry_init(&r);
	assert_int_equal(runtime_registry_add_opt(&r, "runc=/usr/sbin/runc", NULL), 0);
	/* dockerd trims and lower-cases the name, trims the path */
	assert_int_equal(runtime_registry_add_opt(&r, " CRun = /usr/bin/crun ", NULL), 0);
	assert_int_equal(runtime_registry_add_opt(&r, "legacy=berth", NULL), 0);
	const struct runtime_def *d = runtime_registry_find(&r, "runc");
	assert_string_equal(d->name, "runc");
	assert_string_equal(d->path, "/usr/sbin/runc");
	assert_null(d->args);
	assert_string_equal(runtime_registry_find(&r, "crun")->path, "/usr/bin/crun");
	assert_null(runtime_registry_find(&r, "CRun"));
	assert_null(runtime_registry_find(&r, "legacy")->path); /* "berth": the built-in */
	assert_null(runtime_registry_find(&r, "berth")->path);
	_cleanup_json_ json_t *info = runtime_registry_info(&r);
	_cleanup_free_ char *s = json_dumps(info, JSON_COMPACT);
	assert_string_equal(s, "{\"berth\":{\"path\":\"berth\"},\"runc\":{\"path\":\"/usr/sbin/runc\"},"
			       "\"crun\":{\"path\":\"/usr/bin/crun\"},\"legacy\":{\"path\":\"berth\"},"
			       "\"io.containerd.runc.v2\":{\"path\":\"/usr/sbin/runc\"}}");
	struct runtime_registry c;
	runtime_registry_copy(&c, &r);
	runtime_registry_done(&r);
	assert_string_equal(runtime_registry_find(&c, "crun")->path, "/usr/bin/crun");
	runtime_registry_done(&c);
}

static void test_add_opt_bad_forms(void **state)
{
	(void)state;
	struct runtime_registry r;
	runtime_registry_init(&r);
	assert_int_equal(runtime_registry_add_opt(&r, "runc=/usr/sbin/runc", NULL), 0);
	static const struct {
		const char *arg, *msg;
	} bad[] = {
		{ "runc", "invalid runtime argument: runc" },
		{ "=/usr/sbin/runc", "invalid runtime argument: =/usr/sbin/runc" },
		{ "crun=", "invalid runtime argument: crun=" },
		{ " = ", "invalid runtime argument:  = " },
		{ "", "invalid runtime argument: " },
		{ "runc=/usr/bin/runc", "runtime 'runc' was already defined" },
		{ "RUNC=/usr/bin/runc", "runtime 'runc' was already defined" },
		{ "berth=/usr/bin/crun", "runtime name 'berth' is reserved" },
		{ "a/b=/x", "invalid runtime name 'a/b': expected at most 64 characters of [a-z0-9_.-], "
			    "starting with a letter or digit" },
		{ "../x=/x", "invalid runtime name '../x': expected at most 64 characters of [a-z0-9_.-], "
			     "starting with a letter or digit" },
		{ "a b=/x", "invalid runtime name 'a b': expected at most 64 characters of [a-z0-9_.-], "
			    "starting with a letter or digit" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct berth_error *err = NULL;
		expect_fail(runtime_registry_add_opt(&r, bad[i].arg, &err), &err, bad[i].msg);
	}
	char long_name[RUNTIME_NAME_MAX + 8];
	memset(long_name, 'a', RUNTIME_NAME_MAX + 1);
	memcpy(long_name + RUNTIME_NAME_MAX + 1, "=/x", 4);
	assert_int_equal(runtime_registry_add_opt(&r, long_name, NULL), -EINVAL);
	long_name[RUNTIME_NAME_MAX] = '=';
	long_name[RUNTIME_NAME_MAX + 1] = '/';
	long_name[RUNTIME_NAME_MAX + 2] = '\0';
	assert_int_equal(runtime_registry_add_opt(&r, long_name, NULL), 0);
	assert_int_equal(r.n, 2);
	for (int i = 2; i < RUNTIME_REGISTRY_MAX; i++) {
		_cleanup_free_ char *a = xasprintf("r%d=/x", i);
		assert_int_equal(runtime_registry_add_opt(&r, a, NULL), 0);
	}
	struct berth_error *err = NULL;
	expect_fail(runtime_registry_add_opt(&r, "one-more=/x", &err), &err,
		    "runtime 'one-more': too many runtimes (at most 32)");
	runtime_registry_done(&r);
}

static void test_default_must_exist(void **state)
{
	(void)state;
	struct runtime_registry r;
	runtime_registry_init(&r);
	runtime_registry_set_default(&r, "crun");
	struct berth_error *err = NULL;
	expect_fail(runtime_registry_check(&r, &err), &err,
		    "specified default runtime 'crun' does not exist");
	/* defined after the default was named (flags in any order) */
	assert_int_equal(runtime_registry_add_opt(&r, "crun=/usr/bin/crun", NULL), 0);
	assert_int_equal(runtime_registry_check(&r, NULL), 0);
	assert_string_equal(runtime_registry_default(&r), "crun");
	runtime_registry_set_default(&r, "berth");
	assert_int_equal(runtime_registry_check(&r, NULL), 0);
	runtime_registry_set_default(&r, NULL);
	assert_string_equal(runtime_registry_default(&r), "runc");
	runtime_registry_done(&r);
}

static void test_config_file_runtimes(void **state)
{
	(void)state;
	struct runtime_registry r;
	runtime_registry_init(&r);
	_cleanup_json_ json_t *j = NULL;
	const char *ok = "{\"runc\": {\"path\": \"/usr/sbin/runc\", \"runtimeArgs\": [\"--debug\"]},"
			 " \"crun\": {\"path\": \"crun\"}}";
	assert_int_equal(json_parse(ok, strlen(ok), "test", &j, NULL), 0);
	assert_int_equal(runtime_registry_add_json(&r, j, NULL), 0);
	const struct runtime_def *d = runtime_registry_find(&r, "runc");
	assert_string_equal(d->path, "/usr/sbin/runc");
	assert_int_equal(strv_length(d->args), 1);
	assert_string_equal(d->args[0], "--debug");
	assert_string_equal(runtime_registry_find(&r, "crun")->path, "crun");
	_cleanup_json_ json_t *info = runtime_registry_info(&r);
	_cleanup_free_ char *s = json_dumps(info, JSON_COMPACT);
	assert_string_equal(
	    s, "{\"berth\":{\"path\":\"berth\"},\"runc\":{\"path\":\"/usr/sbin/runc\","
	       "\"runtimeArgs\":[\"--debug\"]},\"crun\":{\"path\":\"crun\"},"
	       "\"io.containerd.runc.v2\":{\"path\":\"/usr/sbin/runc\",\"runtimeArgs\":[\"--debug\"]}}");
	assert_int_equal(runtime_registry_add_json(&r, NULL, NULL), 0);
	static const struct {
		const char *doc, *msg;
	} bad[] = {
		{ "[]", "'runtimes': expected object, got array" },
		{ "{\"x\": \"/bin/x\"}", "'runtimes.x': expected object, got string" },
		{ "{\"x\": {}}", "runtime 'x': a path must be configured" },
		{ "{\"x\": {\"path\": \"\"}}", "runtime 'x': a path must be configured" },
		{ "{\"x\": {\"path\": 3}}", "'runtimes.x.path': expected string, got integer" },
		{ "{\"x\": {\"path\": \"/x\", \"runtimeArgs\": \"--debug\"}}",
		  "'runtimes.x.runtimeArgs': expected array, got string" },
		{ "{\"x\": {\"runtimeType\": \"io.containerd.runsc.v1\"}}",
		  "runtime 'x': 'runtimeType' is not supported (containerd shims): berth runs "
		  "runc-compatible runtimes, give a 'path'" },
		{ "{\"x\": {\"path\": \"/x\", \"pth\": 1}}", "runtime 'x': unknown key 'pth'" },
		/* the second is bad: the first is not added either */
		{ "{\"ok\": {\"path\": \"/x\"}, \"crun\": {\"path\": \"/y\"}}",
		  "runtime 'crun' was already defined" },
		{ "{\"berth\": {\"path\": \"/x\"}}", "runtime name 'berth' is reserved" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_json_ json_t *b = NULL;
		assert_int_equal(json_parse(bad[i].doc, strlen(bad[i].doc), "test", &b, NULL), 0);
		struct berth_error *err = NULL;
		expect_fail(runtime_registry_add_json(&r, b, &err), &err, bad[i].msg);
		assert_null(runtime_registry_find(&r, "ok"));
		assert_int_equal(r.n, 2);
	}
	runtime_registry_done(&r);
}

/* dockerd's io.containerd.runc.v2 is runc, whichever runc is, also as the default. */
static void test_runc_v2_is_an_alias_of_runc(void **state)
{
	(void)state;
	struct runtime_registry r;
	runtime_registry_init(&r);
	assert_ptr_equal(runtime_registry_find(&r, "io.containerd.runc.v2"),
			 runtime_registry_find(&r, "runc"));
	assert_null(runtime_registry_find(&r, "io.containerd.runc.v2")->path); /* runc as berth */
	assert_null(runtime_registry_find(&r, "io.containerd.runc.v1"));
	assert_null(runtime_registry_find(&r, "IO.containerd.runc.v2"));
	runtime_registry_set_default(&r, "io.containerd.runc.v2");
	assert_int_equal(runtime_registry_check(&r, NULL), 0);
	assert_string_equal(runtime_registry_default(&r), "io.containerd.runc.v2");
	/* runc defined: the alias follows it (its state root is runc's: the definition's name) */
	assert_int_equal(runtime_registry_add_opt(&r, "runc=/usr/sbin/runc", NULL), 0);
	const struct runtime_def *d = runtime_registry_find(&r, "io.containerd.runc.v2");
	assert_string_equal(d->name, "runc");
	assert_string_equal(d->path, "/usr/sbin/runc");
	/* a definition under the alias's name wins (dockerd 24+), and is listed once */
	assert_int_equal(runtime_registry_add_opt(&r, "IO.containerd.runc.v2=/usr/bin/crun", NULL), 0);
	d = runtime_registry_find(&r, "io.containerd.runc.v2");
	assert_string_equal(d->name, "io.containerd.runc.v2");
	assert_string_equal(d->path, "/usr/bin/crun");
	assert_string_equal(runtime_registry_find(&r, "runc")->path, "/usr/sbin/runc");
	_cleanup_json_ json_t *info = runtime_registry_info(&r);
	_cleanup_free_ char *s = json_dumps(info, JSON_COMPACT);
	assert_string_equal(s, "{\"berth\":{\"path\":\"berth\"},\"runc\":{\"path\":\"/usr/sbin/runc\"},"
			       "\"io.containerd.runc.v2\":{\"path\":\"/usr/bin/crun\"}}");
	runtime_registry_done(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_registry_has_berth_and_runc_as_berth),
		cmocka_unit_test(test_add_opt_defines_a_runtime),
		cmocka_unit_test(test_add_opt_bad_forms),
		cmocka_unit_test(test_default_must_exist),
		cmocka_unit_test(test_config_file_runtimes),
		cmocka_unit_test(test_runc_v2_is_an_alias_of_runc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
