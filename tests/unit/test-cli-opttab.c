/* test-cli-opttab.c - cli/'s verbs over the option tables: a whole parse, usage styles and exit codes
 * (the tables themselves: test-opttab.c). */
#include "unit.h"
#include "cli/opttab.h"
#include "common/strv.h"

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
	char *argv[] = { "ls",  "-q",       "--format",  "{{.Name}}", "-l",
			 "a=b", "--filter", "label=x=y", "op",        "--not-an-option-after-the-operand",
			 NULL };
	int rc = -7;
	assert_true(cli_opttab_parse(t, 10, argv, "+", "ls", &rc));
	assert_int_equal(rc, -7);    /* untouched on success */
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

/* Run cli_opttab_parse_usage with stdout and stderr captured. */
static bool parse_captured(const struct cli_opt *t, int argc, char **argv, const struct cli_usage *u, int *rc,
			   char *out, char *err, size_t n)
{
	struct unit_capture co = unit_capture_begin(1), ce = unit_capture_begin(2);
	opterr = 1;
	bool ok = cli_opttab_parse_usage(t, argc, argv, "+", u, rc);
	unit_capture_end(&ce, err, n);
	unit_capture_end(&co, out, n);
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
		cmocka_unit_test(test_parse_whole_argv),
		cmocka_unit_test(test_usage_styles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
