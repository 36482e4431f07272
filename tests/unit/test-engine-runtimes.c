/*
 * test-engine-runtimes.c - the runtime a container runs on (engine/runtimes.c):
 * its name resolved to shim.json's members at a start (state roots per
 * runtime, runtimeArgs, an undefined name refused), read back from an exec
 * dir, and the runtime_oci the engine's operations call built from them.
 */
#include "unit.h"

#include "common/fs.h"
#include "common/json.h"
#include "engine/internal.h"

struct fixture {
	char *dir;
	struct engine e;
	struct container c;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	f->e.exec_root = xstrdup(f->dir);
	f->e.rt_root = xasprintf("%s/runc", f->dir);
	runtime_registry_init(&f->e.runtimes);
	char *const args[] = { "--debug", "--systemd-cgroup", NULL };
	assert_int_equal(runtime_registry_add(&f->e.runtimes, "runc", "/usr/sbin/runc", NULL, NULL), 0);
	assert_int_equal(runtime_registry_add(&f->e.runtimes, "wrapped", "/opt/wrap", args, NULL), 0);
	f->c.hostconfig = json_object();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->e.exec_root);
	free(f->e.rt_root);
	runtime_registry_done(&f->e.runtimes);
	json_decref(f->c.hostconfig);
	free(f);
	return 0;
}

/* shim.json's members for a start of a container naming name (NULL: none). */
static char *resolved(struct fixture *f, const char *name, int *rc, struct berth_error **err)
{
	if (name)
		json_object_set_new(f->c.hostconfig, "Runtime", json_string(name));
	else
		json_object_del(f->c.hostconfig, "Runtime");
	json_t *used = NULL;
	*rc = engine_runtime_for_start(&f->e, &f->c, &used, err);
	char *s = used ? json_dumps(used, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(used);
	return s;
}

static void test_a_start_resolves_the_containers_runtime(void **state)
{
	struct fixture *f = *state;
	int rc;
	_cleanup_free_ char *runc = resolved(f, "runc", &rc, NULL);
	_cleanup_free_ char *want = xasprintf(
	    "{\"runtime\":\"/usr/sbin/runc\",\"runtime_name\":\"runc\",\"runtime_root\":\"%s/runtime-runc\"}",
	    f->dir);
	assert_string_equal(runc, want);
	_cleanup_free_ char *wrapped = resolved(f, "wrapped", &rc, NULL);
	_cleanup_free_ char *want2 =
	    xasprintf("{\"runtime\":\"/opt/wrap\",\"runtime_args\":[\"--debug\",\"--systemd-cgroup\"],"
		      "\"runtime_name\":\"wrapped\",\"runtime_root\":\"%s/runtime-wrapped\"}",
		      f->dir);
	assert_string_equal(wrapped, want2);
	_cleanup_free_ char *berth = resolved(f, "berth", &rc, NULL);
	_cleanup_free_ char *want3 = xasprintf(
	    "{\"runtime\":\"berth\",\"runtime_name\":\"berth\",\"runtime_root\":\"%s/runc\"}", f->dir);
	assert_string_equal(berth, want3);
	/* none named (a record older than per-container runtimes): the default, runc here */
	_cleanup_free_ char *dflt = resolved(f, NULL, &rc, NULL);
	assert_string_equal(dflt, want);
	assert_null(json_object_get(f->c.hostconfig, "Runtime")); /* the shared HostConfig is not written */
}

static void test_an_undefined_runtime_fails_the_start(void **state)
{
	struct fixture *f = *state;
	int rc;
	struct berth_error *err = NULL;
	_cleanup_free_ char *s = resolved(f, "crun", &rc, &err);
	assert_null(s);
	assert_int_equal(rc, -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "unknown or invalid runtime name: crun");
	berth_error_free(err);
	err = NULL;
	assert_int_equal(engine_runtime_check(&f->e, "crun", &err), -EINVAL);
	_cleanup_free_ char *m2 = berth_error_string(err);
	assert_string_equal(m2, "Unknown runtime specified crun");
	berth_error_free(err);
	assert_int_equal(engine_runtime_check(&f->e, "runc", NULL), 0);
	assert_int_equal(engine_runtime_check(&f->e, "berth", NULL), 0);
}

static void test_the_run_reads_its_runtime_back_from_the_exec_dir(void **state)
{
	struct fixture *f = *state;
	assert_null(engine_runtime_from_exec_dir(f->dir)); /* no shim.json: no runtime was called */
	_cleanup_free_ char *cfg = xasprintf("%s/shim.json", f->dir);
	const char *doc = "{\"id\":\"x\",\"runtime\":\"/opt/wrap\",\"runtime_root\":\"/r\","
			  "\"runtime_args\":[\"--debug\"],\"tty\":false}";
	assert_int_equal(fs_write_file_replace(cfg, doc, strlen(doc), 0600, NULL), 0);
	_cleanup_json_ json_t *used = engine_runtime_from_exec_dir(f->dir);
	_cleanup_free_ char *s = json_dumps(used, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(
	    s, "{\"runtime\":\"/opt/wrap\",\"runtime_args\":[\"--debug\"],\"runtime_root\":\"/r\"}");
	struct engine_rt rt;
	engine_rt_from(&f->e, used, &rt);
	assert_ptr_equal(rt.oci.ops, &runtime_ops_cli);
	assert_string_equal(rt.oci.path, "/opt/wrap");
	assert_string_equal(rt.oci.state_root, "/r");
	assert_string_equal(rt.oci.args[0], "--debug");
	assert_null(rt.oci.args[1]);
	assert_int_equal(rt.oci.timeout_ms, 30000);
	engine_rt_done(&rt);
	/* a container with no run known here: the built-in runtime on its root */
	engine_rt_of(&f->e, &f->c, &rt);
	assert_ptr_equal(rt.oci.ops, &runtime_ops_builtin);
	assert_string_equal(rt.oci.state_root, f->e.rt_root);
	assert_null(rt.oci.args);
	engine_rt_done(&rt);
	/* a shim.json from before runtime_args (older daemons) */
	const char *old = "{\"id\":\"x\",\"runtime\":\"berth\",\"runtime_root\":\"/old\"}";
	assert_int_equal(fs_write_file_replace(cfg, old, strlen(old), 0600, NULL), 0);
	_cleanup_json_ json_t *u2 = engine_runtime_from_exec_dir(f->dir);
	engine_rt_from(&f->e, u2, &rt);
	assert_ptr_equal(rt.oci.ops, &runtime_ops_builtin);
	assert_string_equal(rt.oci.state_root, "/old");
	engine_rt_done(&rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_start_resolves_the_containers_runtime, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_an_undefined_runtime_fails_the_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_run_reads_its_runtime_back_from_the_exec_dir, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
