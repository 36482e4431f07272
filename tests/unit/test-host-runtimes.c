/*
 * test-host-runtimes.c - the daemon's and the agent's runtime options
 * (host/runtimes.h) through an option table as both front ends build it:
 * --add-runtime, --default-runtime, the legacy --runtime-path, the alias
 * io.containerd.runc.v2, and the refusals with their messages.
 */
#include "unit.h"
#include "host/runtimes.h"

/* Scan argv (NULL-terminated, after the program name) into o with stderr captured into out. */
static int scan(struct host_runtime_opts *o, const char *const *args, char *out, size_t n)
{
	const struct cli_opt t[] = { HOST_RUNTIME_OPTIONS(o), { NULL } };
	char *argv[16] = { "berth" };
	int argc = 1;
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	struct unit_capture c = unit_capture_begin(2);
	int r = opttab_scan(t, argc, argv, NULL, 0);
	unit_capture_end(&c, out, n);
	return r;
}

/* Scan, then finish: 0, or the finish error's message in msg. */
static int parse(struct host_runtime_opts *o, const char *const *args, char *msg, size_t n)
{
	int r = scan(o, args, msg, n);
	if (r != CLI_OPTTAB_OK)
		return r;
	struct berth_error *err = NULL;
	r = host_runtime_opts_finish(o, &err);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		snprintf(msg, n, "%s", m);
		berth_error_free(err);
	}
	return r;
}

static void test_options_define_runtimes_and_the_default(void **state)
{
	(void)state;
	struct host_runtime_opts o = { .who = "berth agent" };
	char msg[256];
	const char *args[] = { "--add-runtime",
			       "runc=/usr/sbin/runc",
			       "--add-runtime",
			       " Crun = /usr/bin/crun ",
			       "--default-runtime",
			       "crun",
			       NULL };
	assert_int_equal(parse(&o, args, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
	assert_string_equal(runtime_registry_default(&o.runtimes), "crun");
	assert_string_equal(runtime_registry_find(&o.runtimes, "crun")->path, "/usr/bin/crun");
	assert_string_equal(runtime_registry_find(&o.runtimes, "io.containerd.runc.v2")->path,
			    "/usr/sbin/runc");
	host_runtime_opts_done(&o);
	assert_null(o.default_runtime);
	assert_int_equal(o.runtimes.n, 0);
	host_runtime_opts_done(&o); /* twice: harmless */
}

static void test_runtime_path_and_runc_v2_default(void **state)
{
	(void)state;
	struct host_runtime_opts o = { 0 };
	char msg[256];
	/* the legacy flag is runc=PATH; dockerd's alias names it as the default */
	const char *args[] = { "--runtime-path", "/usr/sbin/runc", "--default-runtime",
			       "io.containerd.runc.v2", NULL };
	assert_int_equal(parse(&o, args, msg, sizeof(msg)), 0);
	assert_string_equal(runtime_registry_default(&o.runtimes), "io.containerd.runc.v2");
	assert_string_equal(runtime_registry_find(&o.runtimes, "runc")->path, "/usr/sbin/runc");
	host_runtime_opts_done(&o);
	/* --runtime-path berth: nothing defined, runc is the built-in runtime */
	const char *builtin[] = { "--runtime-path", "berth", NULL };
	assert_int_equal(parse(&o, builtin, msg, sizeof(msg)), 0);
	assert_int_equal(o.runtimes.n, 0);
	assert_null(runtime_registry_find(&o.runtimes, "runc")->path);
	assert_string_equal(runtime_registry_default(&o.runtimes), "runc");
	host_runtime_opts_done(&o);
}

static void test_bad_options_are_refused_with_dockerds_messages(void **state)
{
	(void)state;
	static const struct {
		const char *args[7];
		int r;
		const char *msg;
	} cases[] = {
		{ { "--add-runtime", "runc", NULL },
		  CLI_OPTTAB_BAD_VALUE,
		  "berth agent: --add-runtime: invalid runtime argument: runc\n" },
		{ { "--add-runtime", "crun=", NULL },
		  CLI_OPTTAB_BAD_VALUE,
		  "berth agent: --add-runtime: invalid runtime argument: crun=\n" },
		{ { "--add-runtime", "berth=/x", NULL },
		  CLI_OPTTAB_BAD_VALUE,
		  "berth agent: --add-runtime: runtime name 'berth' is reserved\n" },
		{ { "--add-runtime", "a=/x", "--add-runtime", "A=/y", NULL },
		  CLI_OPTTAB_BAD_VALUE,
		  "berth agent: --add-runtime: runtime 'a' was already defined\n" },
		{ { "--add-runtime", "a/b=/x", NULL },
		  CLI_OPTTAB_BAD_VALUE,
		  "berth agent: --add-runtime: invalid runtime name 'a/b': expected at most 64 characters of "
		  "[a-z0-9_.-], starting with a letter or digit\n" },
		{ { "--default-runtime", "nope", NULL },
		  -EINVAL,
		  "specified default runtime 'nope' does not exist" },
		{ { "--default-runtime", "io.containerd.runc.v1", NULL },
		  -EINVAL,
		  "specified default runtime 'io.containerd.runc.v1' does not exist" },
		{ { "--runtime-path", "/x", "--add-runtime", "runc=/y", NULL },
		  -EINVAL,
		  "--runtime-path: runtime 'runc' was already defined" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct host_runtime_opts o = { .who = "berth agent" };
		char msg[512];
		assert_int_equal(parse(&o, cases[i].args, msg, sizeof(msg)), cases[i].r);
		assert_string_equal(msg, cases[i].msg);
		host_runtime_opts_done(&o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options_define_runtimes_and_the_default),
		cmocka_unit_test(test_runtime_path_and_runc_v2_default),
		cmocka_unit_test(test_bad_options_are_refused_with_dockerds_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
