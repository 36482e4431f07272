/*
 * test-server-sched-cache.c - the scheduler cache's read-your-writes rule
 * (sched-cache.c) on a real SQLite store: server_sched_cache_lock_fresh() may skip
 * the catch-up read only while no write that matters to placement was
 * acknowledged since the last one. A drain, an attribute change, a
 * deregistration or a stopped task is seen by the very next placement; a
 * placement's own bind (a new task record) does not force a read; neither
 * does a change nobody was told about (a lease expiry), which the next full
 * catch-up applies. Disruption budgets the leader publishes in the store
 * reach every replica's cache, and preemptions use them up atomically.
 */
#include <limits.h>

#include "unit.h"

#include "common/json.h"
#include "server-store-fixture.h"

static void put(struct fixture *f, const char *key, json_t *v)
{
	_cleanup_free_ char *s = json_dumps(v, JSON_COMPACT);
	assert_int_equal(store_put(f->srv.store, key, s, strlen(s), 0, NULL, NULL), 0);
	json_decref(v);
}

static void instance(struct fixture *f, const char *id, const char *status, const char *zone)
{
	_cleanup_free_ char *arn =
	    xasprintf("arn:aws:ecs:us-east-1:000000000000:container-instance/c1/%s", id);
	_cleanup_free_ char *key = xasprintf("/berth/instances/c1/%s", id);
	put(f, key,
	    json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:i},{s:s,s:i}],s:[{s:s,s:s}],s:i}", "containerInstanceArn",
		      arn, "ec2InstanceId", id, "status", status, "clusterName", "c1", "registeredResources",
		      "name", "CPU", "integerValue", 4096, "name", "MEMORY", "integerValue", 8192,
		      "attributes", "name", "ecs.availability-zone", "value", zone, "registeredAt", 1));
	_cleanup_free_ char *alive = xasprintf("/berth/alive/%s", id);
	assert_int_equal(store_put(f->srv.store, alive, "1", 1, 0, NULL, NULL), 0);
}

/* A task of `group` holding every cpu unit and all the memory of its node (priority 0). */
static void task_of(struct fixture *f, const char *id, const char *node, const char *last, const char *group)
{
	_cleanup_free_ char *key = xasprintf("/berth/tasks/c1/%s", id);
	_cleanup_free_ char *arn = xasprintf("arn:aws:ecs:us-east-1:000000000000:task/c1/%s", id);
	_cleanup_free_ char *inst =
	    xasprintf("arn:aws:ecs:us-east-1:000000000000:container-instance/c1/%s", node);
	put(f, key,
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "taskArn", arn, "containerInstanceArn", inst,
		      "lastStatus", last, "desiredStatus", streq(last, "STOPPED") ? "STOPPED" : "RUNNING",
		      "group", group, "cpu", "4096", "memory", "8192"));
}

static void task(struct fixture *f, const char *id, const char *node, const char *last)
{
	task_of(f, id, node, last, "family:f");
}

/* The nodes a 1-task placement may use: how many are feasible (distinct ones, one placement each). */
static size_t feasible(struct fixture *f, bool fresh)
{
	struct sched_snapshot *snap = NULL;
	if (fresh)
		assert_int_equal(server_sched_cache_lock_fresh(&f->srv, "c1", INT_MAX, &snap, NULL), 0);
	else
		assert_int_equal(server_sched_cache_lock(&f->srv, "c1", &snap, NULL), 0);
	json_t *td = json_pack("{s:s,s:[{s:s,s:s,s:i}]}", "family", "f", "containerDefinitions", "name",
			       "app", "image", "busybox", "memory", 64);
	json_t *cons = json_pack("[{s:s}]", "type", "distinctInstance");
	struct sreq rq;
	struct sreq_input in = { td, cons, NULL, "probe", 0, 64 };
	struct sched_prepared *p = NULL;
	struct sched_result *res = NULL;
	const char *ids[] = { "p1", "p2", "p3" };
	assert_int_equal(server_sreq_build(&rq, &in), 0);
	assert_int_equal(server_sreq_prepare(&rq, snap, &p), 0);
	assert_int_equal(sched_place(snap, p, ids, 3, &res, NULL), 0);
	size_t n = res->n_placed;
	for (size_t i = 0; i < n; i++) /* a probe: take the tentative placements back */
		assert_int_equal(sched_task_remove(snap, res->placements[i].task_id, NULL), 0);
	sched_result_free(res);
	sched_prepared_free(p);
	server_sreq_done(&rq);
	json_decref(td);
	json_decref(cons);
	server_sched_cache_unlock(&f->srv);
	return n;
}

static void test_acknowledged_node_changes_are_seen(void **state)
{
	struct fixture *f = *state;
	instance(f, "n1", "ACTIVE", "a");
	instance(f, "n2", "ACTIVE", "a");
	instance(f, "n3", "ACTIVE", "b");
	assert_int_equal(feasible(f, false), 3);
	/* many rounds: the old rule (skip when the last read is < 10 ms old) lost most of them */
	for (int round = 0; round < 20; round++) {
		instance(f, "n1", "DRAINING", "a"); /* UpdateContainerInstancesState */
		assert_int_equal(feasible(f, true), 2);
		instance(f, "n1", "ACTIVE", "a");
		assert_int_equal(feasible(f, true), 3);
	}
	/* deregistration: INACTIVE and the alive key removed */
	instance(f, "n3", "INACTIVE", "b");
	assert_int_equal(feasible(f, true), 2);
	assert_int_equal(store_remove(f->srv.store, "/berth/alive/n2", NULL, NULL), 0);
	assert_int_equal(feasible(f, true), 1);
}

static void test_stops_matter_binds_do_not(void **state)
{
	struct fixture *f = *state;
	instance(f, "n1", "ACTIVE", "a");
	instance(f, "n2", "ACTIVE", "b");
	task(f, "big", "n1", "RUNNING"); /* every cpu unit of n1 */
	assert_int_equal(feasible(f, false), 1);
	task(f, "big", "n1", "STOPPED"); /* StopTask, or the agent's report */
	assert_int_equal(feasible(f, true), 2);
	/*
	 * A change the observer is not told of (as a lease expiry) followed by
	 * a bind: the fresh path keeps the snapshot (no read for a bind), the
	 * next full catch-up applies both.
	 */
	store_on_write(f->srv.store, NULL, NULL);
	instance(f, "n2", "DRAINING", "b");
	store_on_write(f->srv.store, server_note_write, &f->srv);
	task(f, "bind", "n1", "PROVISIONING");
	assert_int_equal(feasible(f, true), 2);
	assert_int_equal(feasible(f, false), 0); /* n1 full again, n2 draining */
}

/* The leader's published budget reaches every replica's cache: another cache on the same store here. */
static void test_budgets_are_shared(void **state)
{
	struct fixture *f = *state;
	instance(f, "n1", "ACTIVE", "a");
	struct server other = f->srv;
	other.sched = server_sched_cache_new();
	struct sched_snapshot *snap = NULL;
	assert_int_equal(server_sched_cache_lock(&other, "c1", &snap, NULL),
			 0); /* loaded before the budget */
	assert_int_equal(sched_group_budget(snap, "service:web"), -1);
	server_sched_cache_unlock(&other);
	const char *v = "{\"allowed\":2}";
	assert_int_equal(
	    store_put(f->srv.store, "/berth/budgets/c1/service:web", v, strlen(v), 0, NULL, NULL), 0);
	assert_int_equal(server_sched_cache_lock(&other, "c1", &snap, NULL), 0); /* from the event */
	assert_int_equal(sched_group_budget(snap, "service:web"), 2);
	server_sched_cache_unlock(&other);
	assert_int_equal(server_sched_cache_lock(&f->srv, "c1", &snap, NULL), 0); /* from the load */
	assert_int_equal(sched_group_budget(snap, "service:web"), 2);
	server_sched_cache_unlock(&f->srv);
	assert_int_equal(store_remove(f->srv.store, "/berth/budgets/c1/service:web", NULL, NULL), 0);
	assert_int_equal(server_sched_cache_lock(&other, "c1", &snap, NULL), 0);
	assert_int_equal(sched_group_budget(snap, "service:web"), -1);
	server_sched_cache_unlock(&other);
	other.sched = server_sched_cache_free(other.sched);
}

/* RunTask of one full-node task at priority 1000 that may preempt, on replica srv: how many were placed. */
static size_t run_preempting(struct server *srv)
{
	_cleanup_json_ json_t *td =
	    json_pack("{s:s,s:s,s:s,s:[{s:s,s:s,s:i,s:i}],s:{s:i,s:b}}", "family", "urgent",
		      "taskDefinitionArn", "arn:aws:ecs:us-east-1:000000000000:task-definition/urgent:1",
		      "networkMode", "bridge", "containerDefinitions", "name", "app", "image", "busybox",
		      "cpu", 4096, "memory", 64, "berthScheduling", "priority", 1000, "preempt", 1);
	_cleanup_json_ json_t *cl =
	    json_pack("{s:s}", "clusterArn", "arn:aws:ecs:us-east-1:000000000000:cluster/c1");
	_cleanup_json_ json_t *tasks = json_array(), *failures = json_array();
	_cleanup_json_ json_t *overrides = json_object();
	struct task_run_args a = { .td = td, .overrides = overrides, .group = "family:urgent", .count = 1 };
	struct ecs_call c = { .srv = srv };
	assert_int_equal(server_task_place(&c, "c1", cl, &a, tasks, failures), 0);
	free(c.msg);
	assert_int_equal(json_array_size(tasks) + json_array_size(failures), 1);
	return json_array_size(tasks);
}

static void budget_is(struct fixture *f, const char *want)
{
	struct store_kv kv = { 0 };
	assert_int_equal(store_get(f->srv.store, "/berth/budgets/c1/service:web", &kv, NULL), 0);
	assert_string_equal(kv.value, want);
	store_kv_done(&kv);
}

/*
 * Two preemptions, on one replica or on two, use one disruption budget
 * between them: the first uses the one allowed disruption (in the same
 * write as its victim's stop), the second finds none left. Before, each
 * used the whole allowance until the leader's next count, a second later.
 * The leader's count from task records read before the first preemption
 * does not give the allowance back either.
 */
static void test_preemptions_share_one_disruption_budget(void **state)
{
	struct fixture *f = *state;
	instance(f, "n1", "ACTIVE", "a");
	instance(f, "n2", "ACTIVE", "b");
	instance(f, "n3", "ACTIVE", "c");
	task_of(f, "web1", "n1", "RUNNING", "service:web");
	task_of(f, "web2", "n2", "RUNNING", "service:web");
	task_of(f, "web3", "n3", "RUNNING", "service:web");
	const char *v = "{\"allowed\":1}";
	assert_int_equal(
	    store_put(f->srv.store, "/berth/budgets/c1/service:web", v, strlen(v), 0, NULL, NULL), 0);
	/* the leader's view before any preemption: 3 running of 3, maxUnavailable 1 */
	json_t *stale = NULL;
	int64_t stale_rev = 0;
	assert_int_equal(server_record_list_at(&f->srv, "/berth/tasks/c1/", &stale, &stale_rev, NULL), 0);
	struct server other = f->srv; /* a second replica on the same store */
	other.sched = server_sched_cache_new();
	struct sched_snapshot *snap = NULL;
	assert_int_equal(server_sched_cache_lock(&other, "c1", &snap, NULL), 0); /* loaded with allowed 1 */
	assert_int_equal(sched_group_budget(snap, "service:web"), 1);
	server_sched_cache_unlock(&other);

	assert_int_equal(run_preempting(&f->srv), 1);
	budget_is(f, "{\"allowed\":0}");
	assert_int_equal(run_preempting(&f->srv), 0); /* the same replica */
	assert_int_equal(run_preempting(&other), 0);  /* another one */
	json_t *all = NULL;
	assert_int_equal(server_record_list(&f->srv, "/berth/tasks/c1/", &all, NULL), 0);
	size_t stopping = 0, i;
	json_t *t;
	json_array_foreach (all, i, t)
		stopping += streq_ptr(json_string_value(json_object_get(t, "desiredStatus")), "STOPPED");
	assert_int_equal(stopping, 1);
	json_decref(all);

	/* the leader's pass with the stale count would say allowed 1 again: not written */
	json_t *svc =
	    json_pack("{s:s,s:s,s:i,s:{s:{s:i}}}", "serviceName", "web", "status", "ACTIVE", "desiredCount",
		      3, "berthScheduling", "disruptionBudget", "maxUnavailable", 1);
	server_rebalance_service(&f->srv, "c1", svc, stale, stale_rev, false);
	budget_is(f, "{\"allowed\":0}");
	assert_int_equal(run_preempting(&other), 0);
	/* a fresh count agrees (the victim is not running any more); once it runs again, 1 */
	int64_t rev = 0;
	assert_int_equal(server_record_list_at(&f->srv, "/berth/tasks/c1/", &all, &rev, NULL), 0);
	server_rebalance_service(&f->srv, "c1", svc, all, rev, false);
	budget_is(f, "{\"allowed\":0}");
	json_decref(all);
	task_of(f, "web4", "n1", "RUNNING", "service:web"); /* (where it runs does not matter to the count) */
	assert_int_equal(server_record_list_at(&f->srv, "/berth/tasks/c1/", &all, &rev, NULL), 0);
	server_rebalance_service(&f->srv, "c1", svc, all, rev, false);
	budget_is(f, "{\"allowed\":1}");
	json_decref(all);
	json_decref(stale);
	json_decref(svc);
	other.sched = server_sched_cache_free(other.sched);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acknowledged_node_changes_are_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stops_matter_binds_do_not, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budgets_are_shared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preemptions_share_one_disruption_budget, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
