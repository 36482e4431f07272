/*
 * test-server-lb.c - the pure rules of load balancing and discovery (lb.h):
 * names and health paths, target membership (service record or attachment,
 * RUNNING, health, draining, awsvpc and bridge addresses) and the discovery
 * table.
 */
#include "unit.h"

#include "common/json.h"
#include "server/lb.h"

#define TG "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"

static json_t *task(const char *id, const char *group, const char *last, const char *desired, const char *ip)
{
	_cleanup_free_ char *arn = xasprintf("arn:aws:ecs:us-east-1:1:task/default/%s", id);
	json_t *t =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "taskArn", arn, "group", group, "lastStatus", last,
		      "desiredStatus", desired, "taskDefinitionArn", "td", "containerInstanceArn", "ci1");
	if (ip)
		json_object_set_new(t, "attachments",
				    json_pack("[{s:s,s:[{s:s,s:s}]}]", "type", "ElasticNetworkInterface",
					      "details", "name", "privateIPv4Address", "value", ip));
	return t;
}

static bool no_checks(void *ud, const char *arn)
{
	(void)ud;
	(void)arn;
	return false;
}

static bool with_checks(void *ud, const char *arn)
{
	(void)ud;
	(void)arn;
	return true;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(server_lb_name_valid("web"));
	assert_true(server_lb_name_valid("a-1"));
	assert_true(server_lb_name_valid("abcdefghijklmnopqrstuvwxyz012345"));
	const char *bad[] = { "", "-a", "a-", "a_b", "a.b", "abcdefghijklmnopqrstuvwxyz0123456", "a b" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(server_lb_name_valid(bad[i]));
	assert_false(server_lb_name_valid(NULL));
	assert_true(server_lb_health_path_valid("/"));
	assert_true(server_lb_health_path_valid("/healthz?x=1"));
	assert_false(server_lb_health_path_valid("healthz"));
	assert_false(server_lb_health_path_valid("/a b"));
	assert_false(server_lb_health_path_valid("/a\nb"));
	assert_false(server_lb_health_path_valid(""));
}

static json_t *run_targets(json_t *tasks, json_t *services, json_t *attachments, lb_has_checks_fn checks,
			   bool all)
{
	_cleanup_json_ json_t *nodes = json_pack("[{s:s,s:s}]", "nodeId", "n1", "address", "192.168.77.11");
	_cleanup_json_ json_t *insts =
	    json_pack("[{s:s,s:s}]", "containerInstanceArn", "ci1", "nodeId", "n1");
	struct lb_membership m = { .cluster = "default",
				   .tg_arn = TG,
				   .services = services,
				   .attachments = attachments,
				   .nodes = nodes,
				   .instances = insts,
				   .has_checks = checks };
	return server_lb_targets(&m, tasks, all);
}

static const char *state_of(json_t *targets, const char *id)
{
	size_t i;
	json_t *t;
	json_array_foreach (targets, i, t)
		if (streq(json_string_value(json_object_get(t, "id")), id))
			return json_string_value(json_object_get(t, "state"));
	return NULL;
}

static void test_membership_from_service_record(void **state)
{
	(void)state;
	_cleanup_json_ json_t *services =
	    json_pack("[{s:s,s:s,s:[{s:s,s:s,s:i}]},{s:s,s:[]}]", "serviceName", "web", "status", "ACTIVE",
		      "loadBalancers", "targetGroupArn", TG, "containerName", "app", "containerPort", 8080,
		      "serviceName", "other", "loadBalancers");
	_cleanup_json_ json_t *tasks = json_array();
	json_array_append_new(tasks, task("t1", "service:web", "RUNNING", "RUNNING", "10.1.0.2"));
	json_array_append_new(tasks, task("t2", "service:web", "PENDING", "RUNNING", NULL));
	json_array_append_new(tasks, task("t3", "service:web", "RUNNING", "RUNNING", "10.1.0.3"));
	json_object_set_new(json_array_get(tasks, 2), "drainingAt", json_real(1.5));
	json_array_append_new(tasks, task("t4", "service:other", "RUNNING", "RUNNING", "10.1.0.4"));
	json_array_append_new(tasks, task("t5", "family:web", "RUNNING", "RUNNING", "10.1.0.5"));
	json_array_append_new(tasks, task("t6", "service:web", "STOPPED", "STOPPED", "10.1.0.6"));
	json_array_append_new(tasks, task("t7", "service:web", "RUNNING", "RUNNING", "10.1.0.7"));
	json_object_set_new(json_array_get(tasks, 6), "healthStatus", json_string("UNHEALTHY"));
	json_array_append_new(tasks, task("t8", "service:web", "RUNNING", "STOPPED", "10.1.0.8"));

	_cleanup_json_ json_t *live = run_targets(tasks, services, NULL, no_checks, false);
	assert_int_equal(json_array_size(live), 3);
	json_t *t1 = json_array_get(live, 0);
	assert_string_equal(json_string_value(json_object_get(t1, "address")), "10.1.0.2");
	assert_int_equal(json_integer_value(json_object_get(t1, "port")), 8080);
	assert_string_equal(json_string_value(json_object_get(t1, "serviceName")), "web");
	assert_string_equal(state_of(live, "t1"), "healthy");
	assert_string_equal(state_of(live, "t3"), "draining");
	assert_string_equal(state_of(live, "t8"), "draining"); /* being stopped: drains too */
	assert_null(state_of(live, "t2"));
	assert_null(state_of(live, "t4"));
	assert_null(state_of(live, "t5"));
	assert_null(state_of(live, "t6"));
	assert_null(state_of(live, "t7"));

	_cleanup_json_ json_t *all = run_targets(tasks, services, NULL, no_checks, true);
	assert_string_equal(state_of(all, "t2"), "initial");
	assert_string_equal(state_of(all, "t7"), "unhealthy");
	assert_null(json_object_get(json_array_get(all, 1), "address"));

	/* with health checks in the definition, UNKNOWN health is not enough */
	_cleanup_json_ json_t *checked = run_targets(tasks, services, NULL, with_checks, true);
	assert_string_equal(state_of(checked, "t1"), "initial");
	json_object_set_new(json_array_get(tasks, 0), "healthStatus", json_string("HEALTHY"));
	_cleanup_json_ json_t *healthy = run_targets(tasks, services, NULL, with_checks, false);
	assert_string_equal(state_of(healthy, "t1"), "healthy");
}

static void test_membership_from_attachment_and_bridge_address(void **state)
{
	(void)state;
	_cleanup_json_ json_t *att = json_pack(
	    "[{s:s,s:s,s:s,s:i},{s:s,s:s,s:i}]", "serviceName", "api", "cluster", "default", "containerName",
	    "app", "containerPort", 80, "serviceName", "api2", "cluster", "elsewhere", "containerPort", 80);
	_cleanup_json_ json_t *tasks = json_array();
	json_t *b = task("b1", "service:api", "RUNNING", "RUNNING", NULL);
	json_object_set_new(b, "containers",
			    json_pack("[{s:s,s:[{s:i,s:i}]}]", "name", "app", "networkBindings",
				      "containerPort", 80, "hostPort", 32768));
	json_array_append_new(tasks, b);
	json_array_append_new(tasks, task("a1", "service:api", "RUNNING", "RUNNING", "10.1.0.9"));
	json_array_append_new(tasks, task("c1", "service:api2", "RUNNING", "RUNNING", "10.1.0.10"));
	_cleanup_json_ json_t *live = run_targets(tasks, NULL, att, no_checks, false);
	assert_int_equal(json_array_size(live), 2);
	json_t *t = json_array_get(live, 0);
	assert_string_equal(json_string_value(json_object_get(t, "address")), "192.168.77.11");
	assert_int_equal(json_integer_value(json_object_get(t, "port")), 32768);
	assert_string_equal(json_string_value(json_object_get(json_array_get(live, 1), "address")),
			    "10.1.0.9");
	/* a bridge task whose port is not bound yet is not a target */
	json_object_set_new(b, "containers", json_array());
	_cleanup_json_ json_t *again = run_targets(tasks, NULL, att, no_checks, false);
	assert_int_equal(json_array_size(again), 1);
}

static void test_discovery(void **state)
{
	(void)state;
	_cleanup_json_ json_t *tasks = json_array();
	json_array_append_new(tasks, task("t1", "service:web", "RUNNING", "RUNNING", "10.1.0.3"));
	json_array_append_new(tasks, task("t2", "service:web", "RUNNING", "RUNNING", "10.1.0.2"));
	json_array_append_new(tasks, task("t3", "service:web", "RUNNING", "RUNNING", "10.1.0.4"));
	json_object_set_new(json_array_get(tasks, 2), "drainingAt", json_real(2));
	json_array_append_new(tasks, task("t4", "service:db", "RUNNING", "RUNNING", "10.1.0.5"));
	json_object_set_new(json_array_get(tasks, 3), "healthStatus", json_string("UNHEALTHY"));
	json_array_append_new(tasks, task("t5", "service:api", "PENDING", "RUNNING", "10.1.0.6"));
	json_array_append_new(tasks, task("t6", "family:x", "RUNNING", "RUNNING", "10.1.0.7"));
	json_array_append_new(tasks, task("t7", "service:bad", "RUNNING", "RUNNING", "not-an-ip"));
	json_array_append_new(tasks, task("t8", "service:", "RUNNING", "RUNNING", "10.1.0.8"));
	_cleanup_json_ json_t *d = server_lb_discovery(tasks, no_checks, NULL);
	_cleanup_json_ json_t *want = json_pack("{s:[s,s]}", "web", "10.1.0.2", "10.1.0.3");
	assert_true(json_equal(d, want));
	_cleanup_json_ json_t *none = server_lb_discovery(tasks, with_checks, NULL);
	assert_int_equal(json_object_size(none), 0);
}

/* Tasks of definition "td-st" are in stack st; "td-x" in none. */
static const char *test_stack_of(void *userdata, const char *arn)
{
	(void)userdata;
	return arn && streq(arn, "td-st") ? "st" : NULL;
}

static void test_discovery_stack_names(void **state)
{
	(void)state;
	_cleanup_json_ json_t *tasks = json_array();
	const char *rows[][3] = { { "s1", "service:st_cache", "td-st" },    /* cache.st */
				  { "s2", "service:other_cache", "td-st" }, /* not STACK_ */
				  { "s3", "service:st_web", "td-x" },       /* not in a stack */
				  { "s4", "service:st_", "td-st" } };       /* no short name */
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		json_t *t = task(rows[i][0], rows[i][1], "RUNNING", "RUNNING", "10.1.0.9");
		json_object_set_new(t, "taskDefinitionArn", json_string(rows[i][2]));
		json_array_append_new(tasks, t);
	}
	_cleanup_json_ json_t *names = server_lb_discovery(tasks, no_checks, NULL);
	server_lb_discovery_stack_names(names, tasks, test_stack_of, NULL);
	_cleanup_json_ json_t *want =
	    json_pack("{s:[s],s:[s],s:[s],s:[s],s:[s]}", "st_cache", "10.1.0.9", "other_cache", "10.1.0.9",
		      "st_web", "10.1.0.9", "st_", "10.1.0.9", "cache.st", "10.1.0.9");
	if (!json_equal(names, want)) {
		_cleanup_free_ char *got = json_dumps(names, JSON_COMPACT | JSON_SORT_KEYS);
		fail_msg("got %s", got);
	}
}

/* The nodes' HAProxy reports: validation and the majority merge. */
static void test_health_reports(void **state)
{
	(void)state;
	json_t *ok = json_pack("{s:{s:{s:{s:s},s:{s:s,s:s,s:s}}}}", "loadBalancers", "web", "t1", "state",
			       "healthy", "t2", "state", "unhealthy", "reason", "Target.Timeout",
			       "description", "Request timed out");
	assert_null(server_lb_health_report_invalid(ok));
	const char *bad[] = { "{}",
			      "{\"loadBalancers\":[]}",
			      "{\"loadBalancers\":{\"bad name\":{}}}",
			      "{\"loadBalancers\":{\"web\":{\"t/1\":{\"state\":\"healthy\"}}}}",
			      "{\"loadBalancers\":{\"web\":{\"t1\":{\"state\":\"up\"}}}}",
			      "{\"loadBalancers\":{\"web\":{\"t1\":{\"state\":\"healthy\",\"reason\":7}}}}" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *j = json_loads(bad[i], 0, NULL);
		if (!server_lb_health_report_invalid(j))
			fail_msg("accepted %s", bad[i]);
		json_decref(j);
	}
	/* three nodes; n3 is not connected (its report is stale) */
	json_t *reports = json_pack("[{s:s,s:{s:{s:{s:s},s:{s:s,s:s,s:s},s:{s:s},s:{s:s}}}},"
				    " {s:s,s:{s:{s:{s:s},s:{s:s,s:s,s:s},s:{s:s},s:{s:s}}}},"
				    " {s:s,s:{s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s}}}}]",
				    "nodeId", "n1", "loadBalancers", "web", "t1", "state", "healthy", "t2",
				    "state", "unhealthy", "reason", "Target.ResponseCodeMismatch",
				    "description", "Health checks failed with these codes: [404]", "t3",
				    "state", "unhealthy", "t4", "state", "initial", /* */
				    "nodeId", "n2", "loadBalancers", "web", "t1", "state", "healthy", "t2",
				    "state", "unhealthy", "reason", "Target.Timeout", "description",
				    "Request timed out", "t3", "state", "healthy", "t4", "state", "initial",
				    /* */
				    "nodeId", "n3", "loadBalancers", "web", "t1", "state", "unhealthy", "t2",
				    "state", "healthy", "t3", "state", "unhealthy", "t4", "state", "healthy");
	json_t *alive = json_pack("{s:b,s:b,s:b}", "n1", 1, "n2", 1, "n3", 0);
	json_t *m = server_lb_health_merge(reports, alive, "web");
	assert_int_equal(json_object_size(m), 4);
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "t1"), "state")), "healthy");
	json_t *t2 = json_object_get(m, "t2");
	assert_string_equal(json_string_value(json_object_get(t2, "state")), "unhealthy");
	assert_string_equal(json_string_value(json_object_get(t2, "description")),
			    "Health checks failed with these codes: [404]");
	assert_int_equal(json_object_size(json_object_get(t2, "nodes")), 2);
	/* one of two failing is not a majority: still in rotation somewhere */
	json_t *t3 = json_object_get(m, "t3");
	assert_string_equal(json_string_value(json_object_get(t3, "state")), "healthy");
	assert_null(json_object_get(t3, "reason"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(m, "t4"), "reason")),
			    "Elb.InitialHealthChecking");
	json_decref(m);
	m = server_lb_health_merge(reports, alive, "other");
	assert_int_equal(json_object_size(m), 0);
	json_decref(m);
	/* served: an alive node reports the load balancer (even without targets) */
	assert_true(server_lb_health_served(reports, alive, "web"));
	assert_false(server_lb_health_served(reports, alive, "other"));
	json_object_set_new(alive, "n1", json_false());
	json_object_set_new(alive, "n2", json_false());
	assert_false(server_lb_health_served(reports, alive, "web")); /* only n3, which is not connected */
	json_decref(reports);
	json_decref(alive);
	json_decref(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_health_reports),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_membership_from_service_record),
		cmocka_unit_test(test_membership_from_attachment_and_bridge_address),
		cmocka_unit_test(test_discovery),
		cmocka_unit_test(test_discovery_stack_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
