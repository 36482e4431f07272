/*
 * test-cli-ecs.c - the argument parsers of the cluster verbs (cli/ecs.h):
 * --placement-constraint/--placement-strategy key=value lists and --command.
 */
#include "unit.h"

#include "cli/ecs.h"
#include "common/json.h"

static const char *const CONSTRAINT[] = { "type", "expression", NULL };

static void check_kv(const char *in, const char *want)
{
	_cleanup_json_ json_t *got = cli_ecs_parse_kv("--x", in, CONSTRAINT);
	_cleanup_json_ json_t *w = want ? json_loads(want, 0, NULL) : NULL;
	if (!want) {
		if (got)
			fail_msg("accepted '%s'", in);
		return;
	}
	if (!got || !json_equal(got, w))
		fail_msg("'%s' -> unexpected result", in);
}

static void test_parse_kv(void **state)
{
	(void)state;
	check_kv("type=distinctInstance", "{\"type\":\"distinctInstance\"}");
	check_kv("type=memberOf,expression=attribute:ecs.availability-zone == az1",
		 "{\"type\":\"memberOf\",\"expression\":\"attribute:ecs.availability-zone == az1\"}");
	/* a value keeps its commas up to the next known key */
	check_kv("expression=attribute:ecs.instance-type in [t2.small, t2.medium],type=memberOf",
		 "{\"type\":\"memberOf\",\"expression\":\"attribute:ecs.instance-type in [t2.small, "
		 "t2.medium]\"}");
	check_kv("type=", "{\"type\":\"\"}");
	check_kv("", "{}");
	check_kv("field=x", NULL);       /* unknown key */
	check_kv("type=a,type=b", NULL); /* repeated */
	check_kv("type", NULL);          /* no '=' */
	check_kv("expressionx=1", NULL); /* a prefix of a key is not the key */
}

static void check_cmd(const char *in, const char *want)
{
	_cleanup_json_ json_t *got = cli_ecs_parse_command(in);
	_cleanup_json_ json_t *w = want ? json_loads(want, 0, NULL) : NULL;
	if (!want ? got != NULL : !got || !json_equal(got, w))
		fail_msg("--command '%s': unexpected result", in);
}

static void test_parse_command(void **state)
{
	(void)state;
	check_cmd("sleep 10", "[\"sleep\",\"10\"]");
	check_cmd("sh -c 'exit 3'", "[\"sh\",\"-c\",\"exit 3\"]");
	check_cmd("echo \"a \\\"b\\\"\" c\\ d ''", "[\"echo\",\"a \\\"b\\\"\",\"c d\",\"\"]");
	check_cmd("  [\"sh\", \"-c\", \"echo hi\"]", "[\"sh\",\"-c\",\"echo hi\"]");
	check_cmd("[\"sh\", 1]", NULL);
	check_cmd("[]", NULL);
	check_cmd("sh -c 'unterminated", NULL);
	check_cmd("   ", NULL);
}

static void test_arn_helpers(void **state)
{
	(void)state;
	assert_string_equal(cli_ecs_arn_id("arn:aws:ecs:us-east-1:1:task/default/abc"), "abc");
	assert_string_equal(cli_ecs_arn_id("abc"), "abc");
	assert_string_equal(cli_ecs_arn_id(NULL), "");
	_cleanup_free_ char *n = cli_ecs_taskdef_name("arn:aws:ecs:us-east-1:1:task-definition/web:3");
	assert_string_equal(n, "web:3");
	_cleanup_json_ json_t *res = json_loads("[{\"name\":\"CPU\",\"integerValue\":1024},"
						"{\"name\":\"MEMORY\",\"integerValue\":512}]",
						0, NULL);
	assert_int_equal(cli_ecs_resource(res, "MEMORY"), 512);
	assert_int_equal(cli_ecs_resource(res, "PORTS"), -1);
	_cleanup_json_ json_t *t = json_real(1440938160.5);
	_cleanup_free_ char *ts = cli_ecs_time(t);
	assert_string_equal(ts, "2015-08-30T12:36:00Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kv),
		cmocka_unit_test(test_parse_command),
		cmocka_unit_test(test_arn_helpers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
