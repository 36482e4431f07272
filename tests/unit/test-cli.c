/* test-cli.c - --format templates and human units. */
#include "unit.h"
#include "cli/cli.h"

static void expect(const char *tmpl, const char *json, const char *want)
{
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	char *got = cli_format(tmpl, j);
	assert_string_equal(got, want);
	free(got);
	json_decref(j);
}

static void test_templates(void **state)
{
	expect("{{.Name}}", "{\"Name\":\"web\"}", "web");
	expect("{{ .State.Status }} {{.State.Pid}}", "{\"State\":{\"Status\":\"running\",\"Pid\":42}}",
	       "running 42");
	expect("{{.Missing}}", "{}", "<no value>");
	expect("{{.N}}", "{\"N\":null}", "<nil>");
	expect("{{json .L}}", "{\"L\":{\"a\":\"b\"}}", "{\"a\":\"b\"}");
	expect("{{json .}}", "{\"a\":1}", "{\"a\":1}");
	expect("json", "{\"a\":true}", "{\"a\":true}");
	expect("a\\tb\\n", "{}", "a\tb\n");
	expect("{{.B}} {{", "{\"B\":true}", "true {{");
	expect("{{index .X}}", "{}", "{{index .X}}");
}

static void test_human(void **state)
{
	char *s = cli_human_size(1980000);
	assert_string_equal(s, "1.98MB");
	free(s);
	s = cli_human_size(12);
	assert_string_equal(s, "12B");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_templates),
		cmocka_unit_test(test_human),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
