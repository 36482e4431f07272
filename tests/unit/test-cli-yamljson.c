/*
 * test-cli-yamljson.c - YAML to JSON (cli/yamljson.h): the core schema's
 * scalar types, block and flow collections, and the refusals.
 */
#include "unit.h"

#include "cli/yamljson.h"
#include "common/json.h"
#include "common/strbuf.h"

static void check(const char *yaml, const char *want_json)
{
	json_t *got = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (cli_yaml_to_json(yaml, strlen(yaml), &got, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("refused '%s': %s", yaml, m);
	}
	_cleanup_json_ json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
	assert_non_null(want);
	if (!json_equal(got, want)) {
		_cleanup_free_ char *s = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
		fail_msg("'%s': got %s, want %s", yaml, s, want_json);
	}
	json_decref(got);
}

static void test_taskdef_shape(void **state)
{
	(void)state;
	check("# a task definition\n"
	      "family: web\n"
	      "networkMode: awsvpc\n"
	      "cpu: '256'\n"
	      "containerDefinitions:\n"
	      "  - name: main\n"
	      "    image: busybox:latest\n"
	      "    memory: 64\n"
	      "    essential: true\n"
	      "    command: [sh, -c, \"echo hi\"]\n"
	      "    environment:\n"
	      "      - {name: A, value: \"1\"}\n"
	      "    portMappings: []\n",
	      "{\"family\":\"web\",\"networkMode\":\"awsvpc\",\"cpu\":\"256\",\"containerDefinitions\":[{"
	      "\"name\":\"main\",\"image\":\"busybox:latest\",\"memory\":64,\"essential\":true,"
	      "\"command\":[\"sh\",\"-c\",\"echo hi\"],\"environment\":[{\"name\":\"A\",\"value\":\"1\"}],"
	      "\"portMappings\":[]}]}");
}

static void test_scalars(void **state)
{
	(void)state;
	check("[~, null, NULL, '', true, False, 12, -3, +4, 0o17, 0x1F, 1.5, -2e3, .5, 1., .inf, yes, 1.2.3, "
	      "'12', \"true\", 0x, 12abc]",
	      "[null,null,null,\"\",true,false,12,-3,4,15,31,1.5,-2000.0,0.5,1.0,\".inf\",\"yes\",\"1.2.3\","
	      "\"12\",\"true\",\"0x\",\"12abc\"]");
	check("a:\nb: |\n  line1\n  line2\nc: >\n  folded\n  text\n",
	      "{\"a\":null,\"b\":\"line1\\nline2\\n\",\"c\":\"folded text\\n\"}");
	check("42", "42");
	check("---\nk: v\n...\n", "{\"k\":\"v\"}");
}

static void test_refusals(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",                             /* no document */
		"# only a comment\n",           /* no document */
		"a: 1\na: 2\n",                 /* duplicate key */
		"base: &b {x: 1}\nother: *b\n", /* anchors and aliases */
		"? [a, b]\n: 1\n",              /* non-scalar key */
		"a: 1\n---\nb: 2\n",            /* two documents */
		"a: [1, 2\n",                   /* syntax error */
		"a:\n\t- b\n",                  /* tab indentation */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *j = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (cli_yaml_to_json(bad[i], strlen(bad[i]), &j, &err) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_null(j);
		_cleanup_free_ char *m = berth_error_string(err);
		assert_non_null(strstr(m, "line "));
	}
	/* nesting deeper than the limit */
	struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i < YAMLJSON_MAX_DEPTH + 2; i++)
		strbuf_addch(&sb, '[');
	json_t *j = NULL;
	assert_int_equal(cli_yaml_to_json(sb.buf, sb.len, &j, NULL), -EINVAL);
	strbuf_release(&sb);
	assert_int_equal(cli_yaml_to_json("a", YAMLJSON_MAX_SIZE + 1, &j, NULL), -EFBIG);
	assert_null(j);
}

static void test_looks_like_json(void **state)
{
	(void)state;
	assert_true(cli_yamljson_looks_like_json("  \n{\"a\":1}", 10));
	assert_true(cli_yamljson_looks_like_json("# c\n[1]", 7));
	assert_false(cli_yamljson_looks_like_json("family: x", 9));
	assert_false(cli_yamljson_looks_like_json("", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_taskdef_shape),
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_looks_like_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
