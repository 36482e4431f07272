/*
 * test-server-taskdef.c - the task-definition validator (every refusal names
 * its field) and the built-in placement step.
 */
#include "unit.h"

#include "server/placement.h"
#include "server/taskdef.h"

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

static void expect_refusal(const char *body, const char *type, const char *needle)
{
	json_t *in = parse(body), *out = NULL;
	struct taskdef_error e;
	if (taskdef_validate(in, &out, &e) == 0)
		fail_msg("accepted %s", body);
	assert_string_equal(e.type, type);
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' does not mention '%s'", e.msg, needle);
	free(e.msg);
	json_decref(in);
}

#define C(x) "{\"family\":\"f\",\"containerDefinitions\":[" x "]}"

static void test_valid_defaults(void **state)
{
	(void)state;
	json_t *in =
	    parse("{\"family\":\"web\",\"cpu\":\"0.5 vCPU\",\"memory\":\"1 GB\",\"containerDefinitions\":["
		  "{\"name\":\"a\",\"image\":\"busybox\",\"cpu\":256,\"memory\":128,"
		  "\"dependsOn\":[{\"containerName\":\"b\",\"condition\":\"COMPLETE\"}]},"
		  "{\"name\":\"b\",\"image\":\"busybox\",\"essential\":false,\"memoryReservation\":64}]}");
	json_t *out = NULL;
	struct taskdef_error e;
	assert_int_equal(taskdef_validate(in, &out, &e), 0);
	assert_string_equal(json_string_value(json_object_get(out, "networkMode")), "bridge");
	assert_string_equal(json_string_value(json_object_get(out, "cpu")), "512");
	assert_string_equal(json_string_value(json_object_get(out, "memory")), "1024");
	json_t *a = json_array_get(json_object_get(out, "containerDefinitions"), 0);
	assert_true(json_is_true(json_object_get(a, "essential")));
	assert_int_equal(taskdef_cpu(out), 512);
	assert_int_equal(taskdef_memory(out), 1024);
	json_decref(out);
	json_decref(in);
}

static void test_refusals(void **state)
{
	(void)state;
	expect_refusal(C("{\"name\":\"a\",\"memory\":64}"), "ClientException",
		       "containerDefinitions[0].image");
	expect_refusal(
	    "{\"family\":\"f\",\"networkMode\":\"overlay\",\"containerDefinitions\":[{\"name\":\"a\","
	    "\"image\":\"x\",\"memory\":64}]}",
	    "ClientException", "networkMode");
	expect_refusal(C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64},{\"name\":\"a\",\"image\":\"x\","
			 "\"memory\":64}"),
		       "ClientException", "containerDefinitions[1].name");
	expect_refusal(
	    C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"dependsOn\":[{\"containerName\":\"b\","
	      "\"condition\":\"START\"}]},{\"name\":\"b\",\"image\":\"x\",\"memory\":64,\"dependsOn\":"
	      "[{\"containerName\":\"a\",\"condition\":\"START\"}]}"),
	    "ClientException", "cycle");
	expect_refusal(
	    C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"dependsOn\":[{\"containerName\":\"zz\","
	      "\"condition\":\"START\"}]}"),
	    "ClientException", "dependsOn[0].containerName");
	expect_refusal(
	    C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"dependsOn\":[{\"containerName\":\"a\","
	      "\"condition\":\"START\"}]}"),
	    "ClientException", "itself");
	expect_refusal(
	    C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64},{\"name\":\"b\",\"image\":\"x\",\"memory\":64,"
	      "\"dependsOn\":[{\"containerName\":\"a\",\"condition\":\"HEALTHY\"}]}"),
	    "ClientException", "healthCheck");
	expect_refusal(
	    "{\"family\":\"f\",\"memory\":\"100\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"x\","
	    "\"memory\":200}]}",
	    "ClientException", "memory");
	expect_refusal(
	    "{\"family\":\"f\",\"cpu\":\"99999\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"x\","
	    "\"memory\":200}]}",
	    "ClientException", "'cpu'");
	expect_refusal(C("{\"name\":\"a\",\"image\":\"x\"}"), "ClientException", "memoryReservation");
	expect_refusal(
	    C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"portMappings\":[{\"containerPort\":70000}]}"),
	    "ClientException", "portMappings[0].containerPort");
	expect_refusal(
	    C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"portMappings\":[{\"containerPort\":80,"
	      "\"hostPort\":8080},{\"containerPort\":81,\"hostPort\":8080}]}"),
	    "ClientException", "portMappings[1].hostPort");
	expect_refusal(C("{\"name\":\"a\",\"image\":\"x\",\"memory\":\"64\"}"), "SerializationException",
		       "containerDefinitions[0].memory");
	expect_refusal(C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"essential\":false}"),
		       "ClientException", "essential");
	expect_refusal("{\"containerDefinitions\":[]}", "ClientException", "family");
	expect_refusal("{\"family\":\"f\",\"containerDefinitions\":[]}", "ClientException",
		       "containerDefinitions");
}

static json_t *attrs_az(const char *az)
{
	return json_pack("[{s:s,s:s}]", "name", "ecs.availability-zone", "value", az);
}

static void test_placement(void **state)
{
	(void)state;
	json_t *a1 = attrs_az("a"), *a2 = attrs_az("a"), *a3 = attrs_az("b");
	struct placement_node nodes[] = {
		{ "n1", true, true, 1024, 1000, a1, 0 },
		{ "n2", true, true, 1024, 1000, a2, 0 },
		{ "n3", true, true, 1024, 1000, a3, 0 },
		{ "n4", false, true, 4096, 9000, a3, 0 }, /* DRAINING */
	};
	json_t *spread =
	    json_pack("[{s:s,s:s}]", "type", "spread", "field", "attribute:ecs.availability-zone");
	struct placement_request rq = { 0, 100, 4, NULL, spread };
	struct placement_result res[4];
	placement_place(&rq, nodes, 4, res, NULL);
	int az_b = 0;
	for (int i = 0; i < 4; i++) {
		assert_true(res[i].node >= 0 && res[i].node < 3);
		az_b += res[i].node == 2;
	}
	assert_int_equal(az_b, 2); /* two zones, four tasks: two each */

	/* distinctInstance: three usable nodes hold at most three more tasks of the group */
	for (int i = 0; i < 4; i++)
		nodes[i].group_tasks = 0;
	json_t *distinct = json_pack("[{s:s}]", "type", "distinctInstance");
	struct placement_request rq2 = { 0, 10, 4, distinct, NULL };
	char *detail = NULL;
	placement_place(&rq2, nodes, 4, res, &detail);
	assert_true(res[0].node >= 0 && res[1].node >= 0 && res[2].node >= 0);
	assert_true(res[0].node != res[1].node && res[1].node != res[2].node && res[0].node != res[2].node);
	assert_int_equal(res[3].node, -1);
	assert_non_null(detail);
	free(detail);

	/* memory: nothing fits */
	struct placement_request rq3 = { 0, 100000, 1, NULL, NULL };
	placement_place(&rq3, nodes, 4, res, NULL);
	assert_int_equal(res[0].node, -1);
	assert_string_equal(res[0].reason, "RESOURCE:MEMORY");
	struct placement_request rq4 = { 5000, 1, 1, NULL, NULL };
	placement_place(&rq4, nodes, 4, res, NULL);
	assert_string_equal(res[0].reason, "RESOURCE:CPU");

	char *msg = NULL;
	json_t *bad = json_pack("[{s:s,s:s}]", "type", "spread", "field", "bogus");
	struct placement_request rq5 = { 0, 1, 1, NULL, bad };
	assert_int_equal(placement_check(&rq5, &msg), -EINVAL);
	free(msg);
	json_decref(bad);
	json_decref(spread);
	json_decref(distinct);
	json_decref(a1);
	json_decref(a2);
	json_decref(a3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_defaults),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_placement),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
