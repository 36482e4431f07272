/* test-cli-opttab.c - table-driven option parsing: getopt arrays, every kind, bad values, short letters. */
#include "unit.h"
#include "cli/opttab.h"
#include "common/strv.h"

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
	optind = 0;
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

/* docker's boolean flags: "--x" true, "--x=BOOL" (attached only), "-x" true; anything else fails. */
static void test_optional_value_booleans(void **state)
{
	(void)state;
	bool pause = false, human = true;
	const struct cli_opt t[] = {
		{ "pause", 'p', CLI_OPT_BOOL, &pause },
		{ "human", 'H', CLI_OPT_BOOL, &human },
		{ NULL },
	};
	struct option *lo = NULL;
	char *so = NULL;
	cli_opttab_getopt(t, NULL, 0, NULL, &lo, &so);
	assert_string_equal(so, "pH"); /* short letters take no value */
	assert_int_equal(lo[0].has_arg, optional_argument);
	free(lo);
	free(so);

	char *a1[] = { "x", "--pause", "--human=false", "op" };
	assert_int_equal(parse(t, 4, a1), 0);
	assert_true(pause);
	assert_false(human);
	assert_int_equal(optind, 3);
	char *a2[] = { "x", "--pause=0", "-H" };
	assert_int_equal(parse(t, 3, a2), 0);
	assert_false(pause);
	assert_true(human);
	char *a3[] = { "x", "--pause=true", "--human=1" };
	assert_int_equal(parse(t, 3, a3), 0);
	assert_true(pause);
	assert_true(human);
	/* a separate word is an operand, not the value (pflag's rule too) */
	char *a4[] = { "x", "--human", "false" };
	human = false;
	assert_int_equal(parse(t, 3, a4), 0);
	assert_true(human);
	assert_int_equal(optind, 2);
	/* negative: anything but true/false/1/0 fails and leaves the value alone */
	static const char *const bad[] = { "--pause=maybe", "--pause=", "--pause=yes", "--pause=TRUE ",
					   "--pause=2" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		pause = true;
		char *argv[] = { "x", (char *)bad[i] };
		assert_int_equal(parse(t, 2, argv), -1);
		assert_true(pause);
	}
	char *a5[] = { "x", "-p=false" }; /* short letters take no value: '=' is an unknown letter */
	assert_int_equal(parse(t, 2, a5), 2);
}

/* An optional string value on a callback: "--cb" gives NULL, "--cb=v" v, a separate word is an operand. */
static void test_optional_value_callbacks(void **state)
{
	(void)state;
	const char *got = "unset";
	calls = 0;
	const struct cli_opt t[] = {
		{ "cb", 'c', CLI_OPT_CALL, &got, .fn = count_call, .optional_arg = true },
		{ NULL },
	};
	struct option *lo = NULL;
	char *so = NULL;
	cli_opttab_getopt(t, NULL, 0, NULL, &lo, &so);
	assert_string_equal(so, "c");
	assert_int_equal(lo[0].has_arg, optional_argument);
	free(lo);
	free(so);
	char *a1[] = { "x", "--cb" };
	assert_int_equal(parse(t, 2, a1), 0);
	assert_null(got);
	char *a2[] = { "x", "--cb=v", "op" };
	assert_int_equal(parse(t, 3, a2), 0);
	assert_string_equal(got, "v");
	assert_int_equal(optind, 2);
	char *a3[] = { "x", "--cb", "op" };
	assert_int_equal(parse(t, 3, a3), 0);
	assert_null(got);
	assert_int_equal(optind, 2);
	char *a4[] = { "x", "--cb=bad" }; /* the callback's refusal */
	assert_int_equal(parse(t, 2, a4), -1);
	assert_int_equal(calls, 4);
}

static int entry_seen(const struct cli_opt *o, const char *arg)
{
	if (streq(arg, "bad"))
		return -1;
	json_object_set_new(o->dest, o->key, json_string(o->name));
	return 0;
}

static void test_append_strv_and_entry(void **state)
{
	(void)state;
	json_t *obj = json_object();
	char **tags = NULL;
	const struct cli_opt t[] = {
		{ "env", 'e', CLI_OPT_JSON_APPEND, obj, "Env" },
		{ "tag", 't', CLI_OPT_STRV, &tags },
		{ "entry", 0, CLI_OPT_ENTRY, obj, "Seen", .entry_fn = entry_seen, .has_arg = true },
		{ "flagentry", 0, CLI_OPT_ENTRY, obj, "Flag", .entry_fn = entry_seen },
		{ NULL },
	};
	char *argv[] = { "x", "-e", "A=1", "--env", "B=2", "-t", "a:1", "--tag=b:2", "--entry", "v" };
	assert_int_equal(parse(t, ARRAY_SIZE(argv), argv), 0);
	json_t *env = json_object_get(obj, "Env");
	assert_int_equal(json_array_size(env), 2);
	assert_string_equal(json_string_value(json_array_get(env, 1)), "B=2");
	assert_int_equal(strv_length(tags), 2);
	assert_string_equal(tags[0], "a:1");
	assert_string_equal(tags[1], "b:2");
	assert_string_equal(json_string_value(json_object_get(obj, "Seen")), "entry");
	/* an existing non-array member is replaced by the array */
	json_object_set_new(obj, "Env", json_string("oops"));
	char *a2[] = { "x", "-e", "C=3", "--entry", "bad" };
	assert_int_equal(parse(t, ARRAY_SIZE(a2), a2), -1);
	assert_int_equal(json_array_size(json_object_get(obj, "Env")), 1);
	char *a3[] = { "x", "--flagentry=v" }; /* no argument: a value is refused by getopt */
	assert_int_equal(parse(t, 2, a3), 2);
	strv_free(tags);
	json_decref(obj);
}

/* Run cli_opttab_parse_usage with stdout and stderr captured. */
static bool parse_captured(const struct cli_opt *t, int argc, char **argv, const struct cli_usage *u, int *rc,
			   char *out, char *err, size_t n)
{
	fflush(stdout);
	fflush(stderr);
	FILE *fo = tmpfile(), *fe = tmpfile();
	int so = dup(1), se = dup(2);
	dup2(fileno(fo), 1);
	dup2(fileno(fe), 2);
	opterr = 1;
	bool ok = cli_opttab_parse_usage(t, argc, argv, "+", u, rc);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	memset(out, 0, n);
	memset(err, 0, n);
	rewind(fo);
	rewind(fe);
	size_t r1 = fread(out, 1, n - 1, fo), r2 = fread(err, 1, n - 1, fe);
	(void)r1;
	(void)r2;
	fclose(fo);
	fclose(fe);
	return ok;
}

static void test_usage_styles(void **state)
{
	(void)state;
	bool f = false;
	const struct cli_opt t[] = { { "force", 'f', CLI_OPT_FLAG, &f }, { NULL } };
	char out[512], err[512];
	int rc = -1;
	char *help[] = { "v", "--help" }, *bogus[] = { "v", "--bogus" }, *dash_h[] = { "v", "-h" };

	const struct cli_usage plain = { CLI_USAGE_PLAIN, "v [-f] X\n\nDo v", "v [OPTIONS] X" };
	assert_false(parse_captured(t, 2, help, &plain, &rc, out, err, sizeof(out)));
	assert_int_equal(rc, 0);
	assert_string_equal(out, "Usage: berth v [-f] X\n\nDo v\n");
	assert_string_equal(err, "");
	assert_false(parse_captured(t, 2, bogus, &plain, &rc, out, err, sizeof(out)));
	assert_int_equal(rc, 125);
	assert_string_equal(out, "");
	assert_string_equal(err, "v: unrecognized option '--bogus'\nUsage: berth v [OPTIONS] X\n");
	/* -h is not help unless the verb says so */
	assert_false(parse_captured(t, 2, dash_h, &plain, &rc, out, err, sizeof(out)));
	assert_int_equal(rc, 125);

	const struct cli_usage hint = { CLI_USAGE_HINT, "v X\n" };
	assert_false(parse_captured(t, 2, help, &hint, &rc, out, err, sizeof(out)));
	assert_string_equal(out, "Usage: berth v X\n");
	assert_false(parse_captured(t, 2, bogus, &hint, &rc, out, err, sizeof(out)));
	assert_int_equal(rc, 125);
	assert_string_equal(err, "v: unrecognized option '--bogus'\nUsage: berth v X\n\n"
				 "Run 'berth --help' for more information\n");

	const struct cli_usage see = { CLI_USAGE_SEE, "v X", .verb = "v", .short_help = true };
	assert_false(parse_captured(t, 2, dash_h, &see, &rc, out, err, sizeof(out)));
	assert_int_equal(rc, 0);
	assert_string_equal(out, "Usage: berth v X\n");
	assert_false(parse_captured(t, 2, bogus, &see, &rc, out, err, sizeof(out)));
	assert_int_equal(rc, 125);
	assert_string_equal(err, "v: unrecognized option '--bogus'\nSee 'berth v --help'.\n");
	char *ok[] = { "v", "-f", "x" };
	assert_true(parse_captured(t, 3, ok, &see, &rc, out, err, sizeof(out)));
	assert_true(f);
	assert_string_equal(out, "");
	assert_string_equal(err, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_bad_values_and_foreign_options),
		cmocka_unit_test(test_getopt_arrays),
		cmocka_unit_test(test_parse_whole_argv),
		cmocka_unit_test(test_optional_value_booleans),
		cmocka_unit_test(test_optional_value_callbacks),
		cmocka_unit_test(test_append_strv_and_entry),
		cmocka_unit_test(test_usage_styles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
