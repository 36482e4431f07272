/*
 * test-server-sched.c - ECS JSON to scheduler requests (sched-request.c):
 * what the old built-in placement step's test checked (zone spread, distinct
 * instance, DRAINING nodes, memory/cpu reasons, bad strategies), now through
 * the request builder and the scheduler library; berth's scheduling tags.
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

static void node(struct sched_snapshot *s, const char *id, const char *az, enum sched_node_status st)
{
	struct sched_attr a[] = { { "ecs.availability-zone", az } };
	struct sched_node_spec spec = { .id = id,
					.cpu = 1024,
					.memory = 1000,
					.status = st,
					.agent_connected = true,
					.attrs = a,
					.n_attrs = 1 };
	assert_int_equal(sched_node_put(s, &spec, NULL), 0);
}

/* Place count tasks of td with the request's constraints/strategies (JSON or NULL); returns the result. */
static struct sched_result *run(struct sched_snapshot *s, const char *td_json, const char *constraints,
				const char *strategies, int64_t cpu, int64_t mem, size_t count,
				char **ret_msg)
{
	json_t *td = parse(td_json), *c = constraints ? parse(constraints) : NULL;
	json_t *st = strategies ? parse(strategies) : NULL;
	struct sreq rq;
	struct sreq_input in = { td, c, st, "family:f", cpu, mem };
	struct sched_prepared *p = NULL;
	struct sched_result *res = NULL;
	static int serial;
	char ids[10][16];
	const char *idv[10];
	for (size_t i = 0; i < count; i++) {
		snprintf(ids[i], sizeof(ids[i]), "t%d", serial++);
		idv[i] = ids[i];
	}
	if (server_sreq_build(&rq, &in) == 0 && server_sreq_prepare(&rq, s, &p) == 0)
		assert_int_equal(sched_place(s, p, idv, count, &res, NULL), 0);
	if (ret_msg)
		*ret_msg = rq.msg ? xstrdup(rq.msg) : NULL;
	sched_prepared_free(p);
	server_sreq_done(&rq);
	json_decref(td);
	json_decref(c);
	json_decref(st);
	return res;
}

#define TD "{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\"}]}"

static void test_spread_distinct_resources(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	node(s, "n1", "a", SCHED_NODE_ACTIVE);
	node(s, "n2", "a", SCHED_NODE_ACTIVE);
	node(s, "n3", "b", SCHED_NODE_ACTIVE);
	node(s, "n4", "b", SCHED_NODE_DRAINING);
	struct sched_result *res = run(s, TD, NULL,
				       "[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"},"
				       "{\"type\":\"spread\",\"field\":\"instanceId\"}]",
				       0, 100, 4, NULL);
	assert_int_equal(res->n_placed, 4);
	int on_b = 0;
	for (size_t i = 0; i < 4; i++) {
		assert_string_not_equal(res->placements[i].node_id, "n4"); /* DRAINING gets nothing */
		on_b += streq(res->placements[i].node_id, "n3");
	}
	assert_int_equal(on_b, 2); /* two zones, four tasks: two each */
	sched_result_free(res);

	/* distinctInstance: three usable nodes already hold the group; a new group gets three */
	res = run(s, TD, "[{\"type\":\"distinctInstance\"}]", NULL, 0, 10, 4, NULL);
	assert_int_equal(res->n_placed, 0);
	assert_string_equal(res->ecs_reason, "DistinctInstance placement constraint unsatisfied.");
	assert_string_equal(res->message, "0/4 nodes: 3 distinctInstance: group already on node, 1 DRAINING");
	sched_result_free(res);

	res = run(s, TD, NULL, NULL, 0, 100000, 1, NULL);
	assert_int_equal(res->n_placed, 0);
	assert_string_equal(res->ecs_reason, "RESOURCE:MEMORY");
	sched_result_free(res);
	res = run(s, TD, NULL, NULL, 5000, 1, 1, NULL);
	assert_string_equal(res->ecs_reason, "RESOURCE:CPU");
	sched_result_free(res);

	char *msg = NULL;
	assert_null(run(s, TD, NULL, "[{\"type\":\"spread\",\"field\":\"\"}]", 0, 1, 1, &msg));
	assert_non_null(strstr(msg, "strategies[0]"));
	free(msg);
	assert_null(run(s, TD, NULL, "[{\"type\":\"pack\"}]", 0, 1, 1, &msg));
	assert_string_equal(msg, "placementStrategy[0].type: expected binpack, spread or random");
	free(msg);
	sched_snapshot_free(s);
}

/* Why a task went where it went: examined/feasible/rejected counts and the strategies, as text. */
static void test_placement_explanation(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	node(s, "n1", "a", SCHED_NODE_ACTIVE);
	node(s, "n2", "b", SCHED_NODE_ACTIVE);
	node(s, "n3", "b", SCHED_NODE_DRAINING);
	json_t *td = parse(TD),
	       *st = parse("[{\"type\":\"spread\",\"field\":\"attribute:ecs.availability-zone\"},"
			   "{\"type\":\"binpack\",\"field\":\"memory\"}]");
	struct sreq rq;
	struct sreq_input in = { td, NULL, st, "family:f", 0, 100 };
	struct sched_prepared *p = NULL;
	struct sched_result *res = NULL;
	const char *ids[] = { "x1" };
	assert_int_equal(server_sreq_build(&rq, &in), 0);
	assert_int_equal(server_sreq_prepare(&rq, s, &p), 0);
	assert_int_equal(sched_place(s, p, ids, 1, &res, NULL), 0);
	assert_int_equal(res->n_placed, 1);
	assert_int_equal(res->placements[0].examined, 3);
	assert_int_equal(res->placements[0].feasible, 2);
	assert_int_equal(res->placements[0].rejected[SCHED_R_DRAINING], 1);
	char *text = server_sreq_placement_text(&rq, &res->placements[0]);
	assert_string_equal(text, "best of 2 feasible nodes by spread(attribute:ecs.availability-zone), then "
				  "binpack(memory); 3 nodes examined, 1 rejected: 1 DRAINING");
	free(text);
	json_t *extra = server_sreq_task_extra(&rq, td, &res->placements[0]);
	assert_non_null(strstr(json_string_value(json_object_get(extra, "explanation")), "best of 2"));
	json_decref(extra);
	sched_result_free(res);
	/* StartTask names the node */
	assert_int_equal(sched_place_on(s, p, "n2", "x2", &res, NULL), 0);
	text = server_sreq_placement_text(&rq, &res->placements[0]);
	assert_string_equal(text, "the node asked for (every filter passed)");
	free(text);
	sched_result_free(res);
	sched_prepared_free(p);
	server_sreq_done(&rq);
	json_decref(td);
	json_decref(st);
	sched_snapshot_free(s);
}

static void test_member_of_positions_and_task_definition_constraints(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	node(s, "n1", "a", SCHED_NODE_ACTIVE);
	node(s, "n2", "b", SCHED_NODE_ACTIVE);
	char *msg = NULL;
	assert_null(run(s, TD,
			"[{\"type\":\"memberOf\",\"expression\":\"attribute:ecs.availability-zone ==\"}]",
			NULL, 0, 1, 1, &msg));
	assert_non_null(strstr(msg, "placementConstraints[0]"));
	assert_non_null(strstr(msg, "position"));
	free(msg);
	/* the definition's constraints apply after the request's */
	struct sched_result *res =
	    run(s,
		"{\"family\":\"f\",\"containerDefinitions\":[{\"name\":\"a\"}],\"placementConstraints\":[{"
		"\"type\":"
		"\"memberOf\",\"expression\":\"attribute:ecs.availability-zone == b\"}]}",
		NULL, NULL, 0, 1, 3, NULL);
	assert_int_equal(res->n_placed, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(res->placements[i].node_id, "n2");
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_host_ports_from_the_definition(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	node(s, "n1", "a", SCHED_NODE_ACTIVE);
	const char *td =
	    "{\"family\":\"f\",\"networkMode\":\"bridge\",\"containerDefinitions\":[{\"name\":\"a\","
	    "\"portMappings\":[{\"containerPort\":80,\"hostPort\":8080},{\"containerPort\":81}]}]}";
	struct sched_result *res = run(s, td, NULL, NULL, 0, 1, 2, NULL);
	assert_int_equal(res->n_placed, 1);
	assert_int_equal(res->placements[0].n_ports, 1);
	assert_int_equal(res->placements[0].ports[0], 8080);
	assert_string_equal(res->ecs_reason, "RESOURCE:PORTS");
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void expect_ext_refusal(const char *in_json, const char *needle)
{
	json_t *in = parse(in_json), *ext = NULL;
	char *msg = NULL;
	if (server_sreq_collect_ext(in, &ext, &msg) == 0)
		fail_msg("accepted %s", in_json);
	if (!strstr(msg, needle))
		fail_msg("message '%s' does not mention '%s'", msg, needle);
	free(msg);
	json_decref(in);
}

static void test_berth_tags(void **state)
{
	json_t *in = parse(
	    "{\"tags\":[{\"key\":\"berth:priority\",\"value\":\"100\"},"
	    "{\"key\":\"team\",\"value\":\"x\"},"
	    "{\"key\":\"berth:tolerations\",\"value\":\"[{\\\"key\\\":\\\"dedicated\\\","
	    "\\\"operator\\\":\\\"Equal\\\",\\\"value\\\":\\\"gpu\\\",\\\"effect\\\":\\\"NoSchedule\\\"}]\"},"
	    "{\"key\":\"berth:nodeSelector\",\"value\":\"{\\\"disk\\\":\\\"ssd\\\"}\"}]}");
	json_t *ext = NULL;
	char *msg = NULL;
	assert_int_equal(server_sreq_collect_ext(in, &ext, &msg), 0);
	assert_int_equal(json_integer_value(json_object_get(ext, "priority")), 100);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ext, "nodeSelector"), "disk")),
			    "ssd");
	assert_int_equal(json_array_size(json_object_get(ext, "tolerations")), 1);
	struct sreq r = { 0 };
	assert_int_equal(server_sreq_ext(&r, ext), 0);
	assert_int_equal(r.req.n_tolerations, 1);
	assert_int_equal(r.req.tolerations[0].effect, SCHED_NO_SCHEDULE);
	assert_int_equal(r.req.n_node_selector, 1);
	server_sreq_done(&r);
	json_decref(ext);
	json_decref(in);

	expect_ext_refusal("{\"tags\":[{\"key\":\"berth:bogus\",\"value\":\"1\"}]}",
			   "tag 'berth:bogus': unknown");
	expect_ext_refusal("{\"tags\":[{\"key\":\"berth:priority\",\"value\":\"{\"}]}",
			   "tag 'berth:priority': value is not JSON");
	expect_ext_refusal("{\"tags\":[{\"key\":\"berth:preempt\",\"value\":\"1\"}]}",
			   "expected true or false");
	expect_ext_refusal(
	    "{\"tags\":[{\"key\":\"berth:tolerations\",\"value\":\"[{\\\"effect\\\":\\\"Never\\\"}]\"}]}",
	    "tag 'berth:tolerations'[0]: expected");
	expect_ext_refusal(
	    "{\"berthScheduling\":{\"nodeAffinity\":{\"required\":[{\"matchExpressions\":[{\"key\":"
	    "\"a\",\"operator\":\"Near\"}]}]}}}",
	    "nodeAffinity.required[0].matchExpressions[0]: needs 'key' and 'operator'");
	expect_ext_refusal("{\"berthScheduling\":{\"topologySpreadConstraints\":[{\"topologyKey\":\"z\"}]}}",
			   "berthScheduling.topologySpreadConstraints");
	expect_ext_refusal("{\"berthScheduling\":[]}", "berthScheduling: expected an object");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spread_distinct_resources),
		cmocka_unit_test(test_placement_explanation),
		cmocka_unit_test(test_member_of_positions_and_task_definition_constraints),
		cmocka_unit_test(test_host_ports_from_the_definition),
		cmocka_unit_test(test_berth_tags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
