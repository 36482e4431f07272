/*
 * test-sched-service.c - a service's scheduling extensions (rebalance.c):
 * berthScheduling.rebalance / disruptionBudget from the CreateService or
 * UpdateService field and from the berth:rebalance / berth:disruptionBudget
 * tags, normalised into the service record; bad shapes are
 * InvalidParameterException naming the field or tag, and leave the record
 * untouched.
 */
#include "unit.h"

#include "server/internal.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

/* server_service_sched_ext(in) on svc; returns the error message (or NULL) and keeps svc. */
static char *ext(const char *in_json, json_t *svc)
{
	struct ecs_call c = { 0 };
	json_t *in = parse(in_json);
	int r = server_service_sched_ext(&c, in, svc);
	json_decref(in);
	if (r == 0) {
		assert_null(c.msg);
		return NULL;
	}
	assert_string_equal(c.type, "InvalidParameterException");
	return c.msg;
}

static void test_field_and_defaults(void **state)
{
	json_t *svc = json_object();
	assert_null(ext("{\"berthScheduling\":{\"rebalance\":{}}}", svc));
	json_t *rb = json_object_get(json_object_get(svc, "berthScheduling"), "rebalance");
	assert_true(
	    json_is_true(json_object_get(rb, "enabled"))); /* an object given: on, one move at a time */
	assert_int_equal(json_integer_value(json_object_get(rb, "maxMoves")), 1);
	/* an update merges: the budget is added, the rebalance kept */
	assert_null(ext("{\"berthScheduling\":{\"disruptionBudget\":{\"maxUnavailable\":2}}}", svc));
	json_t *b = json_object_get(svc, "berthScheduling");
	assert_non_null(json_object_get(b, "rebalance"));
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(b, "disruptionBudget"), "maxUnavailable")), 2);
	assert_null(ext("{\"berthScheduling\":{\"rebalance\":{\"enabled\":false,\"maxMoves\":3}}}", svc));
	rb = json_object_get(json_object_get(svc, "berthScheduling"), "rebalance");
	assert_false(json_is_true(json_object_get(rb, "enabled")));
	assert_int_equal(json_integer_value(json_object_get(rb, "maxMoves")), 3);
	/* nothing given: nothing set */
	json_t *plain = json_object();
	assert_null(ext("{}", plain));
	assert_null(json_object_get(plain, "berthScheduling"));
	json_decref(plain);
	json_decref(svc);
}

static void test_tags(void **state)
{
	json_t *svc = json_object();
	assert_null(ext("{\"tags\":[{\"key\":\"team\",\"value\":\"x\"},"
			"{\"key\":\"berth:rebalance\",\"value\":\"{\\\"maxMoves\\\":4}\"},"
			"{\"key\":\"berth:disruptionBudget\",\"value\":\"{\\\"maxUnavailable\\\":0}\"}]}",
			svc));
	json_t *b = json_object_get(svc, "berthScheduling");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "rebalance"), "maxMoves")), 4);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(b, "disruptionBudget"), "maxUnavailable")), 0);
	/* the field wins over a tag for the same setting */
	json_t *svc2 = json_object();
	assert_null(ext("{\"berthScheduling\":{\"rebalance\":{\"maxMoves\":2}},"
			"\"tags\":[{\"key\":\"berth:rebalance\",\"value\":\"not json\"}]}",
			svc2));
	assert_int_equal(
	    json_integer_value(json_object_get(
		json_object_get(json_object_get(svc2, "berthScheduling"), "rebalance"), "maxMoves")),
	    2);
	json_decref(svc2);
	json_decref(svc);
}

static void test_bad_shapes(void **state)
{
	static const char *const cases[][2] = {
		{ "{\"berthScheduling\":[]}", "berthScheduling: expected an object" },
		{ "{\"berthScheduling\":{\"rebalance\":true}}",
		  "berthScheduling.rebalance: expected an object" },
		{ "{\"berthScheduling\":{\"rebalance\":{\"maxMoves\":0}}}",
		  "berthScheduling.rebalance.maxMoves: expected an integer from 1 to 100" },
		{ "{\"berthScheduling\":{\"rebalance\":{\"maxMoves\":101}}}",
		  "berthScheduling.rebalance.maxMoves: expected an integer from 1 to 100" },
		{ "{\"berthScheduling\":{\"rebalance\":{\"enabled\":1}}}",
		  "berthScheduling.rebalance.enabled: expected true or false" },
		{ "{\"berthScheduling\":{\"rebalance\":{\"moves\":1}}}",
		  "berthScheduling.rebalance.moves: unknown field (enabled, maxMoves)" },
		{ "{\"berthScheduling\":{\"disruptionBudget\":{}}}",
		  "berthScheduling.disruptionBudget.maxUnavailable: required" },
		{ "{\"berthScheduling\":{\"disruptionBudget\":{\"maxUnavailable\":-1}}}",
		  "berthScheduling.disruptionBudget.maxUnavailable: expected maxUnavailable, an integer >= "
		  "0" },
		{ "{\"berthScheduling\":{\"priority\":1}}",
		  "berthScheduling.priority: unknown field (rebalance, disruptionBudget)" },
		{ "{\"tags\":[{\"key\":\"berth:rebalance\",\"value\":\"{\"}]}",
		  "tag 'berth:rebalance': the value must be JSON" },
		{ "{\"tags\":[{\"key\":\"berth:rebalance\",\"value\":\"{\\\"maxMoves\\\":0}\"}]}",
		  "tag 'berth:rebalance'.rebalance.maxMoves: expected an integer from 1 to 100" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *svc = json_object();
		char *msg = ext(cases[i][0], svc);
		assert_non_null(msg);
		assert_string_equal(msg, cases[i][1]);
		assert_null(json_object_get(svc, "berthScheduling")); /* nothing half-set */
		free(msg);
		json_decref(svc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_and_defaults),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_bad_shapes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
