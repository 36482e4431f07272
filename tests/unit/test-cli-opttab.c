/* test-cli-opttab.c - table-driven option parsing: getopt arrays, every kind, bad values, short letters. */
#include "unit.h"
#include "cli/opttab.h"

static int calls;
static int count_call(void *dest, const char *arg)
{
	calls++;
	*(const char **)dest = arg;
	return arg && !strcmp(arg, "bad") ? -1 : 0;
}

/* Run getopt_long over argv with t; returns the first non-zero apply result (or 0). */
static int parse(const struct cli_opt *t, int argc, char **argv)
{
	struct option *lo = NULL;
	char *so = NULL;
	cli_opttab_getopt(t, NULL, 0, "+", &lo, &so);
	optind = 1;
	opterr = 0;
	int ch, r = 0;
	while (r == 0 && (ch = getopt_long(argc, argv, so, lo, NULL)) != -1)
		r = ch == '?' ? 2 : cli_opttab_apply(t, ch, optarg);
	free(lo);
	free(so);
	return r;
}

static void test_every_kind(void **state)
{
	(void)state;
	bool force = false;
	const char *why = NULL, *called = NULL;
	long n = 0;
	json_t *in = json_object();
	const struct cli_opt t[] = {
		{ "force", 'f', CLI_OPT_FLAG, &force },
		{ "why", 'w', CLI_OPT_STRING, &why },
		{ "count", 0, CLI_OPT_LONG, &n, NULL, 1, 10 },
		{ "port", 'p', CLI_OPT_JSON_INT, in, "port", 1, 65535 },
		{ "name", 0, CLI_OPT_JSON_STR, in, "name" },
		{ "stop", 0, CLI_OPT_JSON_TRUE, in, "stop" },
		{ "call", 0, CLI_OPT_CALL, &called, .fn = count_call, .has_arg = true },
		{ 0 },
	};
	char *argv[] = { "x",  "-f",     "--why", "a",      "-wb",    "--count=7", "-p",
			 "80", "--name", "n1",    "--stop", "--call", "c",         "rest" };
	assert_int_equal(parse(t, ARRAY_SIZE(argv), argv), 0);
	assert_true(force);
	assert_string_equal(why, "b"); /* last one wins */
	assert_int_equal(n, 7);
	assert_int_equal(json_integer_value(json_object_get(in, "port")), 80);
	assert_string_equal(json_string_value(json_object_get(in, "name")), "n1");
	assert_true(json_is_true(json_object_get(in, "stop")));
	assert_string_equal(called, "c");
	assert_int_equal(calls, 1);
	assert_int_equal(optind, (int)ARRAY_SIZE(argv) - 1);
	json_decref(in);
}

static void test_bad_values_and_foreign_options(void **state)
{
	(void)state;
	long n = 0;
	const char *called = NULL;
	json_t *in = json_object();
	const struct cli_opt t[] = {
		{ "count", 'c', CLI_OPT_LONG, &n, NULL, 1, 10 },
		{ "port", 0, CLI_OPT_JSON_INT, in, "port", 1, 65535 },
		{ "call", 0, CLI_OPT_CALL, &called, .fn = count_call, .has_arg = true },
		{ 0 },
	};
	static const char *const bad[][3] = { { "x", "--count", "0" },
					      { "x", "--count", "11" },
					      { "x", "-c", "3x" },
					      { "x", "--count", "" },
					      { "x", "--port", "65536" },
					      { "x", "--port", "-1" },
					      { "x", "--count", "99999999999999999999" },
					      { "x", "--call", "bad" } };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(parse(t, 3, (char **)bad[i]), -1);
	assert_int_equal(n, 0);
	assert_null(json_object_get(in, "port"));
	char *unknown[] = { "x", "--nope" };
	assert_int_equal(parse(t, 2, unknown), 2);                          /* getopt's '?' */
	assert_int_equal(cli_opttab_apply(t, 'z', NULL), 1);                /* not ours */
	assert_int_equal(cli_opttab_apply(t, CLI_OPTTAB_BASE + 3, "x"), 1); /* past the end */
	assert_int_equal(cli_opttab_apply(NULL, CLI_OPTTAB_BASE, "x"), 1);
	json_decref(in);
}

static void test_getopt_arrays(void **state)
{
	(void)state;
	bool b = false;
	const char *s = NULL;
	const struct cli_opt t[] = { { "flag", 'b', CLI_OPT_FLAG, &b },
				     { "str", 's', CLI_OPT_STRING, &s },
				     { 0 } };
	const struct option extra[] = { { "help", no_argument, NULL, 'h' } };
	struct option *lo = NULL;
	char *so = NULL;
	cli_opttab_getopt(t, extra, 1, "h", &lo, &so);
	assert_string_equal(so, "hbs:");
	assert_string_equal(lo[0].name, "help");
	assert_string_equal(lo[1].name, "flag");
	assert_int_equal(lo[1].has_arg, no_argument);
	assert_int_equal(lo[2].has_arg, required_argument);
	assert_int_equal(lo[2].val, CLI_OPTTAB_BASE + 1);
	assert_null(lo[3].name);
	free(lo);
	free(so);
}

static void test_parse_whole_argv(void **state)
{
	bool quiet = false;
	const char *format = NULL;
	json_t *labels = json_object(), *filters = json_object();
	const struct cli_opt t[] = {
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ "format", 0, CLI_OPT_STRING, &format },
		CLI_OPT_KV("label", 'l', labels),
		CLI_OPT_FILTER("filter", 'f', filters),
		{ NULL },
	};
	char *argv[] = { "ls", "-q", "--format", "{{.Name}}", "-l", "a=b", "--filter", "label=x=y", "op",
			 "--not-an-option-after-the-operand", NULL };
	int rc = -7;
	assert_true(cli_opttab_parse(t, 10, argv, "+", "ls", &rc));
	assert_int_equal(rc, -7); /* untouched on success */
	assert_int_equal(optind, 8); /* "+": stops at the first operand */
	assert_true(quiet);
	assert_string_equal(format, "{{.Name}}");
	assert_string_equal(json_string_value(json_object_get(labels, "a")), "b");
	assert_true(json_is_true(json_object_get(json_object_get(filters, "label"), "x=y")));
	/* --help: usage on stdout, rc 0; a bad option: rc 125 (docker's daemon-error code) */
	char *help[] = { "ls", "--help", NULL };
	assert_false(cli_opttab_parse(t, 2, help, "+", "ls", &rc));
	assert_int_equal(rc, 0);
	char *bad[] = { "ls", "--bogus", NULL };
	opterr = 0;
	assert_false(cli_opttab_parse(t, 2, bad, "+", "ls", &rc));
	assert_int_equal(rc, 125);
	opterr = 1;
	json_decref(labels);
	json_decref(filters);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_bad_values_and_foreign_options),
		cmocka_unit_test(test_getopt_arrays),
		cmocka_unit_test(test_parse_whole_argv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
