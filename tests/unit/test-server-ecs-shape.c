/*
 * test-server-ecs-shape.c - ECS request bodies against botocore's input
 * shapes (ecs-shape.c, ecs-model.c): wrong JSON types, enums, nested
 * required members, nulls and foreign members dropped, berth's own kept.
 */
#include "unit.h"

#include "server/ecs-shape.h"

/* Check body against op's input; returns the problem, *msg (freed by the caller) and the normalized body. */
static enum ecs_shape_problem run(const char *op, const char *body, char **msg, json_t **ret)
{
	const struct ecs_shape *s = server_ecs_shape_input(op);
	assert_non_null(s);
	json_t *in = json_loads(body, 0, NULL);
	assert_non_null(in);
	enum ecs_shape_problem p = server_ecs_shape_check(s, in, msg);
	if (ret)
		*ret = in;
	else
		json_decref(in);
	return p;
}

static void expect(const char *op, const char *body, enum ecs_shape_problem want, const char *words)
{
	char *msg = NULL;
	enum ecs_shape_problem p = run(op, body, &msg, NULL);
	if (p != want || (words && (!msg || !strstr(msg, words))))
		fail_msg("%s %s: problem %d (want %d), message %s", op, body, p, want, msg ? msg : "(none)");
	if (want != ECS_SHAPE_OK)
		assert_non_null(msg);
	free(msg);
}

static void test_lookup(void **state)
{
	(void)state;
	assert_non_null(server_ecs_shape_input("RegisterTaskDefinition"));
	assert_non_null(server_ecs_shape_input("DescribeTaskSets"));
	assert_null(server_ecs_shape_input("BerthExplainPlacement"));
	assert_null(server_ecs_shape_input(NULL));
	assert_true(server_ecs_model_n_ops >= 35);
	/* output shapes the server checks agent reports against */
	const struct ecs_shape *c = server_ecs_shape_named("Container");
	assert_non_null(c);
	assert_int_equal(server_ecs_shape_member(c, "exitCode")->type, ECS_SHAPE_INTEGER);
	assert_int_equal(server_ecs_shape_member(c, "networkBindings")->type, ECS_SHAPE_LIST);
	assert_null(server_ecs_shape_member(c, "essential"));
	assert_null(server_ecs_shape_member(server_ecs_shape_member(c, "name"), "x"));
	assert_non_null(server_ecs_shape_named("Attachments"));
	assert_null(server_ecs_shape_named("Nope"));
	char *msg = NULL;
	json_t *v =
	    json_loads("[{\"bindIP\":\"0.0.0.0\",\"containerPort\":80,\"hostPort\":\"80\"}]", 0, NULL);
	assert_int_equal(server_ecs_shape_check(server_ecs_shape_member(c, "networkBindings"), v, &msg),
			 ECS_SHAPE_SERIALIZATION);
	assert_non_null(strstr(msg, "[0].hostPort"));
	free(msg);
	json_decref(v);
}

static void test_types(void **state)
{
	(void)state;
	expect(
	    "RegisterTaskDefinition",
	    "{\"family\":\"f\",\"cpu\":\"256\",\"containerDefinitions\":[{\"name\":\"a\",\"image\":\"b\","
	    "\"memory\":64,\"essential\":true,\"portMappings\":[{\"containerPort\":80,\"protocol\":\"udp\"}],"
	    "\"dockerLabels\":{\"k\":\"v\"},\"logConfiguration\":{\"logDriver\":\"awslogs\","
	    "\"options\":{\"awslogs-group\":\"g\"}}}]}",
	    ECS_SHAPE_OK, NULL);
	expect("RegisterTaskDefinition", "{\"cpu\":256}", ECS_SHAPE_SERIALIZATION,
	       "'cpu': expected a string");
	expect("RegisterTaskDefinition",
	       "{\"containerDefinitions\":[{\"portMappings\":[{\"containerPort\":\"80\"}]}]}",
	       ECS_SHAPE_SERIALIZATION, "containerDefinitions[0].portMappings[0].containerPort");
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[{\"memory\":1.5}]}",
	       ECS_SHAPE_SERIALIZATION, "an integer");
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[{\"memory\":4294967296}]}",
	       ECS_SHAPE_SERIALIZATION, "32 bits");
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[{\"dockerLabels\":{\"a\":1}}]}",
	       ECS_SHAPE_SERIALIZATION, "containerDefinitions[0].dockerLabels[\"a\"]");
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[{\"essential\":\"yes\"}]}",
	       ECS_SHAPE_SERIALIZATION, "a boolean");
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[5]}", ECS_SHAPE_SERIALIZATION,
	       "containerDefinitions[0]': expected an object");
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[null]}", ECS_SHAPE_SERIALIZATION,
	       "null");
	expect("RunTask", "{\"count\":\"2\"}", ECS_SHAPE_SERIALIZATION, "'count'");
	expect("RunTask", "{\"overrides\":[]}", ECS_SHAPE_SERIALIZATION, "'overrides': expected an object");
	expect("RunTask", "{\"enableECSManagedTags\":\"true\"}", ECS_SHAPE_SERIALIZATION, NULL);
	expect("ListClusters", "{\"maxResults\":2147483648}", ECS_SHAPE_SERIALIZATION, NULL);
	expect("ListClusters", "{\"maxResults\":100}", ECS_SHAPE_OK, NULL);
	expect("DescribeTasks", "{\"tasks\":\"x\"}", ECS_SHAPE_SERIALIZATION, NULL);
}

static void test_enums_and_required(void **state)
{
	(void)state;
	expect("RunTask", "{\"launchType\":\"MOON\"}", ECS_SHAPE_INVALID,
	       "'launchType': 'MOON' is not one of EC2");
	expect("RunTask", "{\"launchType\":\"EC2\",\"propagateTags\":\"NONE\"}", ECS_SHAPE_OK, NULL);
	expect("RegisterTaskDefinition",
	       "{\"containerDefinitions\":[{\"ulimits\":[{\"name\":\"bogus\",\"softLimit\":1,\"hardLimit\":2}"
	       "]}]}",
	       ECS_SHAPE_INVALID, "containerDefinitions[0].ulimits[0].name");
	expect("DescribeClusters", "{\"include\":[\"NOPE\"]}", ECS_SHAPE_INVALID, "include[0]");
	/* nested required members; top-level ones are the operations' own checks */
	expect("RegisterTaskDefinition", "{\"containerDefinitions\":[{\"secrets\":[{\"name\":\"S\"}]}]}",
	       ECS_SHAPE_INVALID, "'containerDefinitions[0].secrets[0]': member 'valueFrom' is required");
	expect("RunTask", "{}", ECS_SHAPE_OK, NULL);
	expect("TagResource", "{\"tags\":[{}]}", ECS_SHAPE_OK, NULL);
}

static void test_normalized(void **state)
{
	(void)state;
	char *msg = NULL;
	json_t *in = NULL;
	assert_int_equal(
	    run("RegisterTaskDefinition",
		"{\"family\":\"f\",\"cpu\":null,\"berthScheduling\":{},\"topUnknown\":1,"
		"\"containerDefinitions\":[{\"name\":\"a\",\"healthCheck\":null,\"foo\":{\"x\":1},"
		"\"berthX\":1,\"dockerLabels\":{\"a\":null,\"b\":\"c\"}}]}",
		&msg, &in),
	    ECS_SHAPE_OK);
	assert_null(msg);
	assert_null(json_object_get(in, "cpu"));
	assert_non_null(json_object_get(in, "berthScheduling"));
	assert_non_null(json_object_get(in, "topUnknown")); /* the operation ignores it */
	json_t *c = json_array_get(json_object_get(in, "containerDefinitions"), 0);
	assert_null(json_object_get(c, "healthCheck"));
	assert_null(json_object_get(c, "foo"));
	assert_non_null(json_object_get(c, "berthX"));
	assert_int_equal(json_object_size(json_object_get(c, "dockerLabels")), 1);
	json_decref(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_enums_and_required),
		cmocka_unit_test(test_normalized),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
