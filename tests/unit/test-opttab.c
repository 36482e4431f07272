/* test-opttab.c - option tables: getopt arrays, every kind, bad values, short letters, the scan's
 * results and runc's (Go flag) syntax. */
#include "unit.h"
#include "common/log.h"
#include "common/opttab.h"
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
	opttab_getopt(t, NULL, 0, "+", &lo, &so);
	optind = 0;
	opterr = 0;
	int ch, r = 0;
	while (r == 0 && (ch = getopt_long(argc, argv, so, lo, NULL)) != -1)
		r = ch == '?' ? 2 : opttab_apply(t, ch, optarg);
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
	assert_int_equal(parse(t, 2, unknown), 2);                      /* getopt's '?' */
	assert_int_equal(opttab_apply(t, 'z', NULL), 1);                /* not ours */
	assert_int_equal(opttab_apply(t, CLI_OPTTAB_BASE + 3, "x"), 1); /* past the end */
	assert_int_equal(opttab_apply(NULL, CLI_OPTTAB_BASE, "x"), 1);
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
	opttab_getopt(t, extra, 1, "h", &lo, &so);
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
	opttab_getopt(t, NULL, 0, NULL, &lo, &so);
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
	opttab_getopt(t, NULL, 0, NULL, &lo, &so);
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

/* The scan's results: help (an entry or the added --help), getopt's errors and refused values apart. */
static void test_scan_results(void **state)
{
	(void)state;
	bool f = false;
	char *owned = xstrdup("old");
	long n = 0;
	const struct cli_opt t[] = {
		{ "force", 'f', CLI_OPT_FLAG, &f },
		{ "name", 'n', CLI_OPT_STRDUP, &owned },
		{ "count", 0, CLI_OPT_LONG, &n, NULL, 1, 9 },
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
	opterr = 0;
	char *ok[] = { "x", "op", "-f", "--name", "a", "-nb", "--count=3" }; /* permuted: op last */
	assert_int_equal(opttab_scan(t, ARRAY_SIZE(ok), ok, NULL, 0), CLI_OPTTAB_OK);
	assert_true(f);
	assert_string_equal(owned, "b"); /* the copy of "a" was freed */
	assert_int_equal(n, 3);
	assert_int_equal(optind, 6);
	assert_string_equal(ok[optind], "op");
	/* help stops the scan: a bad option after it is not looked at */
	char *help[] = { "x", "-h", "--bogus" }, *help2[] = { "x", "--he", "--count", "0" };
	assert_int_equal(opttab_scan(t, 3, help, "+", 0), CLI_OPTTAB_HELP);
	assert_int_equal(opttab_scan(t, 4, help2, "+", 0), CLI_OPTTAB_HELP);
	char *bogus[] = { "x", "--bogus", "-h" }, *missing[] = { "x", "--name" }, *letter[] = { "x", "-z" };
	assert_int_equal(opttab_scan(t, 3, bogus, "+", 0), CLI_OPTTAB_USAGE);
	assert_int_equal(opttab_scan(t, 2, missing, "+", 0), CLI_OPTTAB_USAGE);
	assert_int_equal(opttab_scan(t, 2, letter, "+", 0), CLI_OPTTAB_USAGE);
	char *bad[] = { "x", "--count", "10", "--bogus" }, *noarg[] = { "x", "--force=1" };
	assert_int_equal(opttab_scan(t, 4, bad, "+", 0), CLI_OPTTAB_BAD_VALUE);
	assert_int_equal(opttab_scan(t, 2, noarg, "+", 0), CLI_OPTTAB_USAGE);
	/* "+": the first operand ends the options */
	char *stop[] = { "x", "op", "--bogus" };
	assert_int_equal(opttab_scan(t, 3, stop, "+", 0), CLI_OPTTAB_OK);
	assert_int_equal(optind, 1);
	/* the added --help (and -h only when asked) */
	const struct cli_opt plain[] = { { "force", 'f', CLI_OPT_FLAG, &f }, { NULL } };
	char *h1[] = { "x", "--help" }, *h2[] = { "x", "-h" };
	assert_int_equal(opttab_scan(plain, 2, h1, "+", CLI_OPTTAB_ADD_HELP), CLI_OPTTAB_HELP);
	assert_int_equal(opttab_scan(plain, 2, h1, "+", 0), CLI_OPTTAB_USAGE);
	assert_int_equal(opttab_scan(plain, 2, h2, "+", CLI_OPTTAB_ADD_HELP), CLI_OPTTAB_USAGE);
	assert_int_equal(opttab_scan(plain, 2, h2, "+", CLI_OPTTAB_ADD_HELP | CLI_OPTTAB_SHORT_HELP),
			 CLI_OPTTAB_HELP);
	opterr = 1;
	free(owned);
}

static FILE *usage_to;
static int usage_calls;
static void record_usage(FILE *f)
{
	usage_to = f;
	usage_calls++;
}

/* The usual answer: usage on stdout for help, on stderr for getopt's errors, none for a bad value. */
static void test_scan_usage(void **state)
{
	(void)state;
	long n = 0;
	const struct cli_opt t[] = { { "count", 'c', CLI_OPT_LONG, &n, NULL, 1, 9 },
				     { "help", 'h', CLI_OPT_HELP },
				     { NULL } };
	char *help[] = { "x", "-h" }, *bogus[] = { "x", "--bogus" }, *bad[] = { "x", "-c", "0" },
	     *ok[] = { "x", "-c3" };
	opterr = 0;
	assert_int_equal(opttab_scan_usage(t, 2, help, NULL, record_usage), CLI_OPTTAB_HELP);
	assert_ptr_equal(usage_to, stdout);
	assert_int_equal(opttab_scan_usage(t, 2, bogus, NULL, record_usage), CLI_OPTTAB_USAGE);
	assert_ptr_equal(usage_to, stderr);
	assert_int_equal(usage_calls, 2);
	assert_int_equal(opttab_scan_usage(t, 3, bad, NULL, record_usage), CLI_OPTTAB_BAD_VALUE);
	assert_int_equal(opttab_scan_usage(t, 2, ok, NULL, record_usage), CLI_OPTTAB_OK);
	assert_int_equal(usage_calls, 2);
	assert_int_equal(n, 3);
	opterr = 1;
}

/* Run opttab_scan_go with stderr captured into err. */
static int scan_go(const struct cli_opt *t, int argc, char **argv, char *err, size_t n)
{
	struct unit_capture c = unit_capture_begin(2);
	int r = opttab_scan_go(t, argc, argv, "rt: kill");
	unit_capture_end(&c, err, n);
	return r;
}

/* runc's command line: Go's flag package, as urfave/cli v1 reads it. */
static void test_go_syntax(void **state)
{
	(void)state;
	bool all = false, tty = true;
	const char *sig = NULL;
	char **env = NULL;
	const struct cli_opt t[] = {
		{ "all", 'a', CLI_OPT_BOOL, &all },
		{ "tty", 't', CLI_OPT_FLAG, &tty },
		{ "signal", 's', CLI_OPT_STRING, &sig },
		{ "env", 'e', CLI_OPT_STRV, &env },
		{ NULL },
	};
	char err[256];
	char *a1[] = { "kill", "-a", "--tty=false", "-signal", "KILL", "--e=A=1", "-env", "B=2", "id", "-t" };
	assert_int_equal(scan_go(t, ARRAY_SIZE(a1), a1, err, sizeof(err)), 8);
	assert_true(all);
	assert_false(tty);
	assert_string_equal(sig, "KILL");
	assert_int_equal(strv_length(env), 2);
	assert_string_equal(env[0], "A=1");
	assert_string_equal(err, "");
	char *a2[] = { "kill", "--all=F", "-t=T", "--s=", "--", "-a" };
	assert_int_equal(scan_go(t, ARRAY_SIZE(a2), a2, err, sizeof(err)), 5);
	assert_false(all);
	assert_true(tty);
	assert_string_equal(sig, "");
	char *a3[] = { "kill", "-", "-a" }; /* "-" is an operand */
	assert_int_equal(scan_go(t, 3, a3, err, sizeof(err)), 1);
	/* negative: no abbreviations, no clusters, no junk booleans, no missing values */
	static const struct {
		const char *arg, *msg;
	} bad[] = {
		{ "--al", "rt: kill: unknown option '--al'\n" },
		{ "-at", "rt: kill: unknown option '-at'\n" },
		{ "---all", "rt: kill: unknown option '---all'\n" },
		{ "--=x", "rt: kill: unknown option '--=x'\n" },
		{ "--all=junk", "rt: kill: invalid boolean value 'junk' for '--all'\n" },
		{ "-a=", "rt: kill: invalid boolean value '' for '-a'\n" },
		{ "--signal", "rt: kill: option '--signal' needs a value\n" },
		{ "-e", "rt: kill: option '-e' needs a value\n" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		all = true;
		char *argv[] = { "kill", (char *)bad[i].arg };
		assert_int_equal(scan_go(t, 2, argv, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].msg);
		assert_true(all);
	}
	const struct cli_opt with_help[] = { { "help", 'h', CLI_OPT_HELP }, { NULL } };
	char *h[] = { "kill", "--help" };
	assert_int_equal(scan_go(with_help, 2, h, err, sizeof(err)), -1);
	char *none[] = { "features", "--x" };
	assert_int_equal(scan_go(NULL, 2, none, err, sizeof(err)), -1);
	assert_string_equal(err, "rt: kill: unknown option '--x'\n");
	strv_free(env);
}

/* The shared --log-level callback: sets the level at once, names the front end in its message. */
static void test_log_level_callback(void **state)
{
	(void)state;
	enum log_level saved = log_get_level();
	const struct cli_opt t[] = {
		{ "log-level", 'l', CLI_OPT_CALL, "berth agent", .fn = opttab_log_level, .has_arg = true },
		{ NULL },
	};
	char *a1[] = { "x", "--log-level", "debug", NULL };
	assert_int_equal(opttab_scan(t, 3, a1, NULL, 0), CLI_OPTTAB_OK);
	assert_int_equal(log_get_level(), LOG_LEVEL_DEBUG);
	char *a2[] = { "x", "-l", "WARNING", NULL };
	assert_int_equal(opttab_scan(t, 3, a2, NULL, 0), CLI_OPTTAB_OK);
	assert_int_equal(log_get_level(), LOG_LEVEL_WARN);

	struct unit_capture c = unit_capture_begin(2);
	char *a3[] = { "x", "--log-level=loud", NULL };
	int r = opttab_scan(t, 2, a3, NULL, 0);
	assert_int_equal(opttab_log_level(NULL, ""), -1);
	char err[256];
	unit_capture_end(&c, err, sizeof(err));
	assert_int_equal(r, CLI_OPTTAB_BAD_VALUE);
	assert_int_equal(log_get_level(), LOG_LEVEL_WARN); /* unchanged by a refused value */
	assert_string_equal(err, "berth agent: invalid log level 'loud'\nberth: invalid log level ''\n");
	log_set_level(saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_kind),
		cmocka_unit_test(test_bad_values_and_foreign_options),
		cmocka_unit_test(test_getopt_arrays),
		cmocka_unit_test(test_optional_value_booleans),
		cmocka_unit_test(test_optional_value_callbacks),
		cmocka_unit_test(test_append_strv_and_entry),
		cmocka_unit_test(test_scan_results),
		cmocka_unit_test(test_scan_usage),
		cmocka_unit_test(test_go_syntax),
		cmocka_unit_test(test_log_level_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
