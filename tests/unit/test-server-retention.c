/*
 * test-server-retention.c - which finished records the leader deletes
 * (retention.h): STOPPED tasks and INACTIVE services past the retention.
 */
#include "unit.h"

#include "server/retention.h"

#define parse(s) json_loads((s), 0, NULL)

static bool task_expired(const char *body, double now, int retention)
{
	json_t *t = parse(body);
	assert_non_null(t);
	bool r = server_retention_task_expired(t, now, retention);
	json_decref(t);
	return r;
}

static void test_tasks(void **state)
{
	(void)state;
	const char *stopped = "{\"lastStatus\":\"STOPPED\",\"desiredStatus\":\"STOPPED\",\"createdAt\":100.0,"
			      "\"stoppingAt\":150.0,\"stoppedAt\":200.5}";
	assert_false(task_expired(stopped, 200.5 + 3599, 3600));
	assert_true(task_expired(stopped, 200.5 + 3600, 3600));
	assert_true(task_expired(stopped, 205.5, 5));
	/* running, stopping (desired STOPPED, not yet stopped), pending: never */
	assert_false(task_expired(
	    "{\"lastStatus\":\"RUNNING\",\"desiredStatus\":\"RUNNING\",\"createdAt\":1.0}", 1e9, 1));
	assert_false(task_expired(
	    "{\"lastStatus\":\"RUNNING\",\"desiredStatus\":\"STOPPED\",\"stoppingAt\":1.0}", 1e9, 1));
	assert_false(task_expired("{\"lastStatus\":\"PENDING\",\"desiredStatus\":\"RUNNING\"}", 1e9, 1));
	/* without stoppedAt: the next best time; without any time: kept */
	assert_true(task_expired(
	    "{\"lastStatus\":\"STOPPED\",\"desiredStatus\":\"STOPPED\",\"createdAt\":10}", 20, 10));
	assert_false(task_expired("{\"lastStatus\":\"STOPPED\",\"desiredStatus\":\"STOPPED\"}", 1e9, 1));
	assert_false(task_expired(
	    "{\"lastStatus\":\"STOPPED\",\"desiredStatus\":\"STOPPED\",\"stoppedAt\":\"x\"}", 1e9, 1));
	json_t *t = parse("{\"executionStoppedAt\":7,\"createdAt\":3}");
	assert_true(server_retention_task_finished_at(t) == 7);
	json_decref(t);
}

static void test_services_and_interval(void **state)
{
	(void)state;
	json_t *a = parse("{\"status\":\"INACTIVE\",\"berthInactiveAt\":1000.0}");
	json_t *b = parse("{\"status\":\"ACTIVE\",\"berthInactiveAt\":1000.0}");
	json_t *c = parse("{\"status\":\"INACTIVE\"}");
	assert_false(server_retention_service_expired(a, 1000 + 59, 60));
	assert_true(server_retention_service_expired(a, 1000 + 60, 60));
	assert_false(server_retention_service_expired(b, 1e9, 1));
	assert_false(server_retention_service_expired(c, 1e9, 1)); /* no time: kept */
	json_decref(a);
	json_decref(b);
	json_decref(c);
	assert_int_equal(server_retention_sweep_interval(1), 1);
	assert_int_equal(server_retention_sweep_interval(10), 2);
	assert_int_equal(server_retention_sweep_interval(3600), 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tasks),
		cmocka_unit_test(test_services_and_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
