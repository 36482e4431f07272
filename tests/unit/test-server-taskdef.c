/*
 * test-server-taskdef.c - the task-definition validator (every refusal names
 * its field). Placement requests: test-server-sched.c.
 */
#include "unit.h"

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
	if (server_taskdef_validate(in, &out, &e) == 0)
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
	assert_int_equal(server_taskdef_validate(in, &out, &e), 0);
	assert_string_equal(json_string_value(json_object_get(out, "networkMode")), "bridge");
	assert_string_equal(json_string_value(json_object_get(out, "cpu")), "512");
	assert_string_equal(json_string_value(json_object_get(out, "memory")), "1024");
	json_t *a = json_array_get(json_object_get(out, "containerDefinitions"), 0);
	assert_true(json_is_true(json_object_get(a, "essential")));
	assert_int_equal(server_taskdef_cpu(out), 512);
	assert_int_equal(server_taskdef_memory(out), 1024);
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

#define HC(x) C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"healthCheck\":{" x "}}")

/* healthCheck: ECS's ranges, each bound accepted, one past it refused naming the field. */
static void test_health_check_ranges(void **state)
{
	(void)state;
	static const char *const ok[] = {
		HC("\"command\":[\"CMD-SHELL\",\"true\"]"),
		HC("\"command\":[\"CMD\",\"true\"],\"interval\":5,\"timeout\":2,\"retries\":1,"
		   "\"startPeriod\":0"),
		HC("\"command\":[\"CMD\",\"true\"],\"interval\":300,\"timeout\":60,\"retries\":10,"
		   "\"startPeriod\":300"),
		HC("\"command\":[\"NONE\"]"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		json_t *in = parse(ok[i]), *out = NULL;
		struct taskdef_error e;
		if (server_taskdef_validate(in, &out, &e) != 0)
			fail_msg("refused %s: %s", ok[i], e.msg);
		json_decref(out);
		json_decref(in);
	}
	static const struct {
		const char *body, *needle;
	} bad[] = {
		{ HC("\"command\":[\"CMD\",\"true\"],\"interval\":4"),
		  "'containerDefinitions[0].healthCheck.interval': 4 is out of range (5 to 300)" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"interval\":301"), "healthCheck.interval': 301" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"timeout\":1"),
		  "healthCheck.timeout': 1 is out of range (2 to 60)" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"timeout\":61"), "healthCheck.timeout': 61" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"retries\":0"),
		  "healthCheck.retries': 0 is out of range (1 to 10)" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"retries\":11"), "healthCheck.retries': 11" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"startPeriod\":-1"),
		  "healthCheck.startPeriod': -1 is out of range (0 to 300)" },
		{ HC("\"command\":[\"CMD\",\"true\"],\"startPeriod\":301"), "healthCheck.startPeriod': 301" },
		{ HC("\"interval\":30"), "healthCheck.command': required" },
		{ HC("\"command\":[\"sh\",\"true\"]"), "healthCheck.command': required, starting with CMD" },
		{ HC("\"command\":[\"CMD-SHELL\"]"), "CMD-SHELL needs a command" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refusal(bad[i].body, "ClientException", bad[i].needle);
	expect_refusal(HC("\"command\":[\"CMD\",\"true\"],\"interval\":\"5\""), "SerializationException",
		       "healthCheck.interval");
	expect_refusal(C("{\"name\":\"a\",\"image\":\"x\",\"memory\":64,\"healthCheck\":[]}"),
		       "SerializationException", "containerDefinitions[0].healthCheck");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_defaults),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_health_check_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
