/*
 * test-server-deploy.c - deployment arithmetic (server/deploy-plan.h): the
 * circuit breaker threshold ECS documents, rounding of minimumHealthyPercent
 * and maximumPercent, rolling steps, which tasks of a replaced deployment
 * may go outside the stop budget, the launch backoff, the balanced
 * scale-in choice and the deployment id shape.
 */
#include "unit.h"

#include <string.h>

#include "server/deploy-plan.h"

static void test_failure_threshold(void **state)
{
	(void)state;
	/* clamp(ceil(0.5 * desired), 3, 200) */
	assert_int_equal(server_deploy_failure_threshold(0), 3);
	assert_int_equal(server_deploy_failure_threshold(1), 3);
	assert_int_equal(server_deploy_failure_threshold(6), 3);
	assert_int_equal(server_deploy_failure_threshold(7), 4);
	assert_int_equal(server_deploy_failure_threshold(10), 5);
	assert_int_equal(server_deploy_failure_threshold(399), 200);
	assert_int_equal(server_deploy_failure_threshold(401), 200);
	assert_int_equal(server_deploy_failure_threshold(100000), 200);
}

static void test_percent_rounding(void **state)
{
	(void)state;
	assert_int_equal(server_deploy_max_total(3, 150), 4);  /* 4.5 rounds down */
	assert_int_equal(server_deploy_min_healthy(3, 50), 2); /* 1.5 rounds up */
	assert_int_equal(server_deploy_min_healthy(4, 0), 0);
	assert_int_equal(server_deploy_max_total(4, 200), 8);
	assert_int_equal(server_deploy_min_healthy(0, 100), 0);
}

static void test_rolling_steps(void **state)
{
	(void)state;
	struct deploy_step st;
	/* 4 old healthy, min 100 max 200: start 4 new, stop nothing yet */
	struct deploy_counts c = {
		.desired = 4, .max_percent = 200, .min_percent = 100, .total = 4, .healthy = 4
	};
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 4);
	assert_int_equal(st.stop_budget, 0);
	/* the new ones healthy: 8 healthy, stop 4 */
	c = (struct deploy_counts){ .desired = 4,
				    .max_percent = 200,
				    .min_percent = 100,
				    .total = 8,
				    .healthy = 8,
				    .primary_active = 4 };
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 0);
	assert_int_equal(st.stop_budget, 4);
	/* min 50 max 100: no room, stop 2 first */
	c = (struct deploy_counts){
		.desired = 4, .max_percent = 100, .min_percent = 50, .total = 4, .healthy = 4
	};
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 0);
	assert_int_equal(st.stop_budget, 2);
	/* after those 2 stopped: start 2 */
	c.total = 2;
	c.healthy = 2;
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 2);
	assert_int_equal(st.stop_budget, 0);
	/* scale-in: 6 running, desired 2 */
	c = (struct deploy_counts){ .desired = 2,
				    .max_percent = 200,
				    .min_percent = 100,
				    .total = 6,
				    .healthy = 6,
				    .primary_active = 6 };
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 0);
	assert_int_equal(st.stop_budget, 4);
	/* below min healthy (crash loop): never a negative budget */
	c = (struct deploy_counts){ .desired = 4,
				    .max_percent = 200,
				    .min_percent = 100,
				    .total = 6,
				    .healthy = 3,
				    .primary_active = 2 };
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 2);
	assert_int_equal(st.stop_budget, 0);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_true(server_deploy_backoff(0) == 0);
	assert_true(server_deploy_backoff(1) == 1);
	assert_true(server_deploy_backoff(2) == 2);
	assert_true(server_deploy_backoff(4) == 8);
	assert_true(server_deploy_backoff(50) == DEPLOY_BACKOFF_MAX_SEC);
}

static void test_scale_in_balanced(void **state)
{
	(void)state;
	/* zone a: 3 tasks (n1 x2, n2), zone b: 1 task; stopping 2 leaves 1 + 1 */
	struct deploy_task t[] = {
		{ "a", "n1", 1, true },
		{ "a", "n1", 2, true },
		{ "a", "n2", 3, true },
		{ "b", "n3", 4, true },
	};
	size_t idx[4];
	assert_int_equal(server_deploy_scale_in(t, 4, 2, idx), 2);
	/* first from n1 (most loaded node of the most loaded zone), newest there: index 1 */
	assert_int_equal(idx[0], 1);
	/* then zone a has 2 (n1, n2: one each), b has 1: the newest of a, index 2 */
	assert_int_equal(idx[1], 2);
	/* only candidates are chosen; the others still count for the balance */
	struct deploy_task u[] = {
		{ "a", "n1", 1, false },
		{ "a", "n1", 2, false },
		{ "b", "n3", 3, true },
		{ "b", "n4", 4, true },
	};
	assert_int_equal(server_deploy_scale_in(u, 4, 3, idx), 2);
	assert_int_equal(idx[0], 3);
	assert_int_equal(idx[1], 2);
	assert_int_equal(server_deploy_scale_in(u, 0, 3, idx), 0);
	/* every spread key: zones are even (2/2), rack r1 holds 3 of zone a's... */
	struct deploy_task v[] = {
		{ "a", "n1", 1, true, { "r1" } }, { "a", "n2", 2, true, { "r1" } },
		{ "a", "n3", 3, true, { "r2" } }, { "b", "n4", 4, true, { "r3" } },
		{ "b", "n5", 5, true, { "r4" } }, { "a", "n1", 6, true, { "r1" } },
	};
	/* zone a (4) first; within it rack r1 (3 tasks) before r2 (1); within r1 node n1 (2): the newest
	 * there */
	assert_int_equal(server_deploy_scale_in(v, 6, 1, idx), 1);
	assert_int_equal(idx[0], 5);
	/* then zones 3/2: a again; racks r1 2 (n1, n2: one each), r2 1: the newest of r1, n2 */
	assert_int_equal(server_deploy_scale_in(v, 6, 2, idx), 2);
	assert_int_equal(idx[1], 1);
}

static void test_readiness(void **state)
{
	(void)state;
	struct deploy_task_facts f = { .running = false, .running_for = 100 };
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_NOT_RUNNING);
	/* no health checks: the monitor time */
	f = (struct deploy_task_facts){ .running = true, .running_for = DEPLOY_MONITOR_SEC - 0.5 };
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_WARMING);
	f.running_for = DEPLOY_MONITOR_SEC;
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_HEALTHY);
	f.elb_failed = true;
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_FAILING);
	/* container health checks: UNKNOWN or not reported yet is not known yet, whatever the time */
	f = (struct deploy_task_facts){
		.running = true, .checked = true, .health = "UNKNOWN", .running_for = 600
	};
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_WARMING);
	f.health = NULL;
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_WARMING);
	f.health = "HEALTHY";
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_HEALTHY);
	f.health = "UNHEALTHY";
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_FAILING);
	assert_string_equal(server_deploy_readiness_name(DEPLOY_WARMING), "running, health not known yet");
	/* load-balanced: healthy once its targets are, not by the monitor time */
	f = (struct deploy_task_facts){
		.running = true, .load_balanced = true, .elb_pending = true, .running_for = 600
	};
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_WARMING);
	f.elb_pending = false;
	f.running_for = 0.1;
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_HEALTHY);
	/* ... and its container health checks too */
	f.checked = true;
	f.health = "UNKNOWN";
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_WARMING);
	f.health = "HEALTHY";
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_HEALTHY);
	f.elb_pending = true;
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_WARMING);
	f.elb_failed = true;
	assert_int_equal(server_deploy_readiness(&f), DEPLOY_FAILING);
}

static void test_free_stops(void **state)
{
	(void)state;
	struct deploy_step st;
	/*
	 * The issue 14 bug: UpdateService while the 6 old tasks are RUNNING but not yet counted healthy
	 * (inside the monitor time, or their health reports late under load). healthy 0 < 6: not one
	 * of them may go before new tasks are healthy (they serve: the load balancers have them).
	 */
	struct deploy_counts c = { .desired = 6, .max_percent = 200, .min_percent = 100, .total = 6 };
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.start, 6);
	assert_int_equal(st.stop_budget, 0);
	assert_false(st.floor_met);
	assert_false(server_deploy_free_stop(DEPLOY_WARMING, &st));
	assert_false(server_deploy_free_stop(DEPLOY_HEALTHY, &st));
	/* no capacity: always */
	assert_true(server_deploy_free_stop(DEPLOY_NOT_RUNNING, &st));
	assert_true(server_deploy_free_stop(DEPLOY_FAILING, &st));
	/* the 6 new ones healthy: the floor holds without the old ones, which go even if still warming
	 * (a health check that never reports does not stall the rollout) */
	c = (struct deploy_counts){ .desired = 6,
				    .max_percent = 200,
				    .min_percent = 100,
				    .total = 12,
				    .healthy = 6,
				    .primary_active = 6 };
	server_deploy_rolling_step(&c, &st);
	assert_int_equal(st.stop_budget, 0);
	assert_true(st.floor_met);
	assert_true(server_deploy_free_stop(DEPLOY_WARMING, &st));
	assert_false(server_deploy_free_stop(DEPLOY_HEALTHY, &st)); /* healthy ones: the budget */
	/* minimumHealthyPercent 0 (DAEMON's default): stop-then-start, nothing is kept */
	c = (struct deploy_counts){ .desired = 3, .max_percent = 100, .min_percent = 0, .total = 3 };
	server_deploy_rolling_step(&c, &st);
	assert_true(st.floor_met);
	assert_true(server_deploy_free_stop(DEPLOY_WARMING, &st));
	/* 50%: 2 of 4 healthy is the floor exactly; below it a warming one stays */
	c = (struct deploy_counts){
		.desired = 4, .max_percent = 100, .min_percent = 50, .total = 4, .healthy = 2
	};
	server_deploy_rolling_step(&c, &st);
	assert_true(st.floor_met);
	assert_int_equal(st.stop_budget, 0);
	c.healthy = 1;
	server_deploy_rolling_step(&c, &st);
	assert_false(st.floor_met);
	assert_false(server_deploy_free_stop(DEPLOY_WARMING, &st));
}

static void test_id_format(void **state)
{
	(void)state;
	char id[28];
	server_deploy_id_format(0, id);
	assert_string_equal(id, "ecs-svc/1000000000000000000");
	server_deploy_id_format(UINT64_MAX, id);
	assert_int_equal(strlen(id), 8 + 19);
	assert_true(strncmp(id, "ecs-svc/", 8) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_threshold), cmocka_unit_test(test_percent_rounding),
		cmocka_unit_test(test_rolling_steps),     cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_scale_in_balanced), cmocka_unit_test(test_id_format),
		cmocka_unit_test(test_readiness),         cmocka_unit_test(test_free_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
