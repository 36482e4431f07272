/* test-sched-ops.c - preemption, NoExecute evictions, scale-in selection, rebalancing. */
#include "sched-fixture.h"

static void task_at(struct sched_snapshot *s, const char *id, const char *node, const char *group,
		    int32_t cpu, int32_t priority, int64_t started)
{
	struct sched_task_spec t = { .id = id,
				     .node_id = node,
				     .group = group,
				     .cpu = cpu,
				     .priority = priority,
				     .started_at = started };
	assert_int_equal(sched_task_add(s, &t, NULL), 0);
}

static struct sched_result *preempt(struct sched_snapshot *s, int32_t cpu, int32_t priority)
{
	struct sched_request r = { .cpu = cpu, .priority = priority, .preempt = true };
	return fx_run(s, &r, "hi", 1);
}

static bool has_victim(const struct sched_result *r, const char *id)
{
	for (size_t i = 0; i < r->n_victims; i++)
		if (streq(r->victims[i].task_id, id))
			return true;
	return false;
}

/* ---- preemption ---- */

static void test_preempt_lowest_priority_first(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 3072, 8192, "a");
	task_at(s, "low", "n1", "g", 1024, 1, 10);
	task_at(s, "mid", "n1", "g", 1024, 5, 10);
	task_at(s, "top", "n1", "g", 1024, 20, 10); /* above the request: never a victim */
	struct sched_result *r = preempt(s, 1024, 10);
	assert_int_equal(r->n_placed, 0);
	assert_string_equal(r->nominated_node, "n1");
	assert_int_equal(r->n_victims, 1);
	assert_string_equal(r->victims[0].task_id, "low");
	assert_string_equal(r->victims[0].group, "g");
	assert_int_equal(r->victims[0].priority, 1);
	sched_result_free(r);
	/* stopping the victims makes room on the nominated node */
	assert_int_equal(sched_task_remove(s, "low", NULL), 0);
	r = preempt(s, 1024, 10);
	assert_int_equal(r->n_placed, 1);
	assert_string_equal(r->placements[0].node_id, "n1");
	assert_int_equal(r->n_victims, 0);
	sched_result_free(r);
	sched_snapshot_free(s);
}

/* Among equal priorities the newest goes first; reprieve keeps whoever is not needed. */
static void test_preempt_newest_and_reprieve(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 2560, 8192, "a");
	task_at(s, "small", "n1", "g", 512, 1, 100);
	task_at(s, "large", "n1", "g", 2048, 2, 100);
	struct sched_result *r = preempt(s, 2048, 10);
	/* removal order small, large; then small is reprieved: only large must go */
	assert_int_equal(r->n_victims, 1);
	assert_string_equal(r->victims[0].task_id, "large");
	sched_result_free(r);
	sched_snapshot_free(s);

	s = sched_snapshot_new(1);
	fx_node(s, "n1", 2048, 8192, "a");
	task_at(s, "old", "n1", "g", 1024, 1, 100);
	task_at(s, "new", "n1", "g", 1024, 1, 200);
	r = preempt(s, 1024, 10);
	assert_int_equal(r->n_victims, 1);
	assert_string_equal(r->victims[0].task_id, "new");
	sched_result_free(r);
	sched_snapshot_free(s);
}

static void test_preempt_picks_the_cheapest_node(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "many", 2048, 8192, "a");
	fx_node(s, "one", 2048, 8192, "a");
	fx_node(s, "pricey", 2048, 8192, "a");
	for (int i = 0; i < 4; i++) {
		char id[16];
		snprintf(id, sizeof(id), "m%d", i);
		task_at(s, id, "many", "g", 512, 1, 0);
	}
	task_at(s, "o", "one", "g", 2048, 1, 0);
	task_at(s, "p", "pricey", "g", 2048, 0, 0);
	task_at(s, "p2", "pricey", "g", 0, 7, 0); /* not needed, not a victim */
	struct sched_result *r = preempt(s, 2048, 10);
	/* lowest highest-victim priority first: pricey's victim has priority 0 */
	assert_string_equal(r->nominated_node, "pricey");
	assert_int_equal(r->n_victims, 1);
	assert_true(has_victim(r, "p"));
	sched_result_free(r);
	/* at equal priority, fewest victims: one beats many */
	assert_int_equal(sched_task_remove(s, "p", NULL), 0);
	task_at(s, "p3", "pricey", "g", 2048, 9, 0);
	r = preempt(s, 2048, 10);
	assert_string_equal(r->nominated_node, "one");
	sched_result_free(r);
	sched_snapshot_free(s);
}

static void test_preempt_respects_budget(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 1024, 8192, "a");
	fx_node(s, "n2", 1024, 8192, "a");
	task_at(s, "db", "n1", "service:db", 1024, 1, 0);
	task_at(s, "web", "n2", "service:web", 1024, 2, 0);
	sched_group_set_budget(s, "service:db", 0);
	struct sched_result *r = preempt(s, 1024, 10);
	assert_string_equal(r->nominated_node, "n2"); /* db would be cheaper but has no budget */
	assert_true(has_victim(r, "web"));
	sched_result_free(r);
	sched_group_set_budget(s, "service:web", 0);
	r = preempt(s, 1024, 10);
	assert_null(r->nominated_node);
	assert_string_equal(r->message,
			    "0/2 nodes: 2 insufficient cpu; preemption: no victim set is enough on any node");
	sched_result_free(r);
	sched_group_set_budget(s, "service:db", -1); /* removed */
	r = preempt(s, 1024, 10);
	assert_string_equal(r->nominated_node, "n1");
	sched_result_free(r);
	sched_snapshot_free(s);
}

static void test_preempt_no_victim_set_is_enough(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_taint t[] = { { "dedicated", "x", SCHED_NO_SCHEDULE, 0 } };
	fx_node(s, "small", 1024, 8192, "a"); /* too small even empty */
	fx_node_full(s, "tainted", 4096, 8192, "a", NULL, 0, t, 1, SCHED_NODE_ACTIVE); /* not relievable */
	fx_node(s, "higher", 4096, 8192, "a");
	task_at(s, "s", "small", "g", 512, 1, 0);
	task_at(s, "h", "higher", "g", 4096, 50, 0); /* outranks the request */
	struct sched_result *r = preempt(s, 2048, 10);
	assert_int_equal(r->n_placed, 0);
	assert_int_equal(r->n_victims, 0);
	assert_string_equal(r->message,
			    "0/3 nodes: 2 insufficient cpu, 1 taint dedicated=x:NoSchedule not tolerated; "
			    "preemption: no victim set is enough on any node");
	sched_result_free(r);
	/* without preempt no victims are looked for at all */
	struct sched_request plain = { .cpu = 2048, .priority = 10 };
	r = fx_run(s, &plain, "p", 1);
	assert_string_equal(r->message,
			    "0/3 nodes: 2 insufficient cpu, 1 taint dedicated=x:NoSchedule not tolerated");
	sched_result_free(r);
	sched_snapshot_free(s);
}

/* A static port held by a lower-priority task can be preempted too. */
static void test_preempt_ports(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 4096, 8192, "a");
	uint16_t port = 80;
	struct sched_task_spec t = {
		.id = "lb", .node_id = "n1", .group = "g", .ports = &port, .n_ports = 1
	};
	assert_int_equal(sched_task_add(s, &t, NULL), 0);
	struct sched_request r = {
		.cpu = 1, .static_ports = &port, .n_static_ports = 1, .priority = 5, .preempt = true
	};
	struct sched_result *res = fx_run(s, &r, "x", 1);
	assert_true(has_victim(res, "lb"));
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* ---- NoExecute ---- */

static void test_noexecute_evictions(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_taint t[] = { { "k", NULL, SCHED_NO_EXECUTE, 1000 },
				   { "soft", NULL, SCHED_NO_SCHEDULE, 0 } };
	fx_node_full(s, "n1", 8192, 8192, "a", NULL, 0, t, 2, SCHED_NODE_ACTIVE);
	fx_node(s, "n2", 8192, 8192, "a");
	struct sched_toleration forever[] = { { "k", SCHED_TOL_EXISTS, NULL, -1, -1 } };
	struct sched_toleration t300[] = { { "k", SCHED_TOL_EXISTS, NULL, SCHED_NO_EXECUTE, 300 } };
	struct sched_toleration two[] = { { "k", SCHED_TOL_EXISTS, NULL, -1, 600 },
					  { NULL, SCHED_TOL_EXISTS, NULL, -1, 100 } };
	struct sched_toleration other[] = { { "x", SCHED_TOL_EXISTS, NULL, -1, -1 } };
	struct sched_task_spec tasks[] = {
		{ .id = "t1", .node_id = "n1", .tolerations = other, .n_tolerations = 1 },
		{ .id = "t2", .node_id = "n1", .tolerations = forever, .n_tolerations = 1 },
		{ .id = "t3", .node_id = "n1", .tolerations = t300, .n_tolerations = 1 },
		{ .id = "t4", .node_id = "n1", .tolerations = two, .n_tolerations = 2 },
		{ .id = "t5", .node_id = "n2" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(tasks); i++)
		assert_int_equal(sched_task_add(s, &tasks[i], NULL), 0);
	struct sched_eviction *ev = NULL;
	size_t n = 0;
	assert_int_equal(sched_noexecute_evictions(s, NULL, 5000, &ev, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(ev[0].task_id, "t4"); /* the shortest matching toleration wins: 1000 + 100 */
	assert_int_equal(ev[0].evict_at, 1100);
	assert_int_equal(ev[0].tolerated, 100);
	assert_string_equal(ev[0].taint, "k:NoExecute");
	assert_string_equal(ev[1].task_id, "t3");
	assert_int_equal(ev[1].evict_at, 1300);
	assert_int_equal(ev[1].tolerated, 300);
	assert_string_equal(ev[2].task_id, "t1"); /* not tolerated: now */
	assert_int_equal(ev[2].evict_at, 5000);
	assert_int_equal(ev[2].tolerated, -1);
	assert_string_equal(ev[2].taint, "k:NoExecute");
	assert_string_equal(ev[2].node_id, "n1");
	sched_evictions_free(ev, n);
	assert_int_equal(sched_noexecute_evictions(s, "n2", 5000, &ev, &n, NULL), 0);
	assert_int_equal(n, 0);
	sched_evictions_free(ev, n);
	assert_int_equal(sched_noexecute_evictions(s, "n9", 0, &ev, &n, NULL), -ENOENT);
	sched_snapshot_free(s);
}

/* A task placed by the scheduler keeps its request's tolerations for later taints. */
static void test_noexecute_after_placement(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 8192, 8192, "a");
	struct sched_toleration tol[] = { { "unreachable", SCHED_TOL_EXISTS, NULL, SCHED_NO_EXECUTE, 60 } };
	struct sched_request r = { .cpu = 1, .tolerations = tol, .n_tolerations = 1 };
	sched_result_free(fx_run(s, &r, "tol", 1));
	struct sched_request plain = { .cpu = 1 };
	sched_result_free(fx_run(s, &plain, "plain", 1));
	struct sched_taint t[] = { { "unreachable", NULL, SCHED_NO_EXECUTE, 2000 } };
	fx_node_full(s, "n1", 8192, 8192, "a", NULL, 0, t, 1, SCHED_NODE_ACTIVE);
	struct sched_eviction *ev = NULL;
	size_t n = 0;
	assert_int_equal(sched_noexecute_evictions(s, "n1", 2010, &ev, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ev[0].task_id, "plain-0"); /* not tolerated: now */
	assert_int_equal(ev[0].evict_at, 2010);
	assert_string_equal(ev[1].task_id, "tol-0"); /* taint added at 2000 + 60 s */
	assert_int_equal(ev[1].evict_at, 2060);
	assert_string_equal(ev[1].taint, "unreachable:NoExecute");
	assert_int_equal(ev[1].tolerated, 60);
	sched_evictions_free(ev, n);
	sched_snapshot_free(s);
}

/* ---- scale-in ---- */

/* Tasks of `group` per node, for the nodes given, as "a1:1 a2:0 ...". */
static void counts(struct sched_snapshot *s, const char *const *nodes, size_t n, char *out, size_t len)
{
	out[0] = 0;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		size_t c = 0;
		char id[16];
		for (int k = 0; k < 32; k++) {
			snprintf(id, sizeof(id), "w%d", k);
			const char *node = sched_task_node(s, id);
			c += node && streq(node, nodes[i]);
		}
		off += (size_t)snprintf(out + off, len - off, "%s%s:%zu", i ? " " : "", nodes[i], c);
	}
}

static void test_scale_in_balances_every_key(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "a1", 8192, 8192, "a");
	fx_node(s, "a2", 8192, 8192, "a");
	fx_node(s, "b1", 8192, 8192, "b");
	fx_node(s, "c1", 8192, 8192, "c");
	const char *place[] = { "a1", "a1", "a1", "a2", "b1", "b1", "c1" };
	char id[16];
	for (size_t i = 0; i < ARRAY_SIZE(place); i++) {
		snprintf(id, sizeof(id), "w%zu", i);
		task_at(s, id, place[i], "service:web", 1, 0, (int64_t)i);
	}
	fx_task(s, "other", "a1", "service:other", 1, 1, 0);
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(sched_scale_in(s, "service:web", NULL, 0, 4, &ids, &n, NULL), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++) {
		assert_true(startswith(ids[i], "w"));
		assert_int_equal(sched_task_remove(s, ids[i], NULL), 0);
		free(ids[i]);
	}
	free(ids);
	/* 3 left, one per zone; zone a keeps one task on one node */
	const char *nodes[] = { "a1", "a2", "b1", "c1" };
	char buf[128];
	counts(s, nodes, 4, buf, sizeof(buf));
	assert_true(streq(buf, "a1:1 a2:0 b1:1 c1:1") || streq(buf, "a1:0 a2:1 b1:1 c1:1"));
	/* asking for more than there is returns what there is; an unknown group nothing */
	assert_int_equal(sched_scale_in(s, "service:web", NULL, 0, 10, &ids, &n, NULL), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	assert_int_equal(sched_task_count(s), 4); /* scale-in does not change the snapshot */
	assert_int_equal(sched_scale_in(s, "service:none", NULL, 0, 1, &ids, &n, NULL), 0);
	assert_int_equal(n, 0);
	free(ids);
	sched_snapshot_free(s);
}

static void test_scale_in_custom_keys_and_ties(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_attr r1[] = { { "rack", "r1" } };
	struct sched_attr r2[] = { { "rack", "r2" } };
	fx_node_full(s, "a1", 8192, 8192, "a", r1, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "a2", 8192, 8192, "a", r2, 1, NULL, 0, SCHED_NODE_ACTIVE);
	/* the same node: priority decides, then the newest */
	task_at(s, "w0", "a1", "g", 1, 5, 100);
	task_at(s, "w1", "a1", "g", 1, 1, 100);
	task_at(s, "w2", "a1", "g", 1, 1, 200);
	task_at(s, "w3", "a2", "g", 1, 0, 300);
	const char *keys[] = { "attribute:rack" };
	char **ids = NULL;
	size_t n = 0;
	assert_int_equal(sched_scale_in(s, "g", keys, 1, 2, &ids, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "w2"); /* rack r1 has 3; lowest priority 1, newest */
	assert_string_equal(ids[1], "w1");
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	sched_snapshot_free(s);
}

/* ---- rebalancing ---- */

static void test_rebalance_after_node_join(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "a1", 8192, 8192, "a");
	struct sched_strategy st[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = { .group = "service:web", .cpu = 1024, .strategies = st, .n_strategies = 1 };
	struct sched_prepared *p = fx_prepare(s, &r);
	sched_result_free(fx_place(s, p, "w", 4));
	fx_node(s, "b1", 8192, 8192, "b"); /* joins late: all 4 are in a */
	struct sched_move *m = NULL;
	size_t n = 0;
	assert_int_equal(sched_rebalance(s, p, 10, &m, &n, NULL), 0);
	assert_int_equal(n, 2); /* 2/2 is balanced: no third move */
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(m[i].from_node, "a1");
		assert_string_equal(m[i].to_node, "b1");
		assert_true(startswith(m[i].task_id, "w-"));
	}
	assert_string_not_equal(m[0].task_id, m[1].task_id);
	sched_moves_free(m, n);
	/* the snapshot is unchanged */
	assert_int_equal(sched_task_count(s), 4);
	assert_string_equal(sched_task_node(s, "w-0"), "a1");
	/* at most N moves */
	assert_int_equal(sched_rebalance(s, p, 1, &m, &n, NULL), 0);
	assert_int_equal(n, 1);
	sched_moves_free(m, n);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

/* Start before stop: a move needs room for the replacement while the old task still runs. */
static void test_rebalance_needs_room_to_start(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "a1", 4096, 8192, "a");
	struct sched_strategy st[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = { .group = "g", .cpu = 1024, .strategies = st, .n_strategies = 1 };
	struct sched_prepared *p = fx_prepare(s, &r);
	sched_result_free(fx_place(s, p, "w", 4));
	fx_node(s, "b1", 512, 8192, "b"); /* too small for one */
	struct sched_move *m = NULL;
	size_t n = 0;
	assert_int_equal(sched_rebalance(s, p, 10, &m, &n, NULL), 0);
	assert_int_equal(n, 0);
	sched_moves_free(m, n);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

static void test_rebalance_binpack_consolidates(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 4096, 4096, "a");
	fx_node(s, "n2", 4096, 4096, "a");
	task_at(s, "x1", "n1", "g", 1024, 0, 0);
	task_at(s, "x2", "n2", "g", 1024, 0, 0);
	fx_task(s, "filler", "n1", "other", 1024, 1024, 0); /* n1 is the fuller node */
	struct sched_strategy st[] = { { SCHED_BINPACK, "cpu" } };
	struct sched_request r = { .group = "g", .cpu = 1024, .strategies = st, .n_strategies = 1 };
	struct sched_prepared *p = fx_prepare(s, &r);
	struct sched_move *m = NULL;
	size_t n = 0;
	assert_int_equal(sched_rebalance(s, p, 5, &m, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].task_id, "x2");
	assert_string_equal(m[0].to_node, "n1");
	sched_moves_free(m, n);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preempt_lowest_priority_first),
		cmocka_unit_test(test_preempt_newest_and_reprieve),
		cmocka_unit_test(test_preempt_picks_the_cheapest_node),
		cmocka_unit_test(test_preempt_respects_budget),
		cmocka_unit_test(test_preempt_no_victim_set_is_enough),
		cmocka_unit_test(test_preempt_ports),
		cmocka_unit_test(test_noexecute_evictions),
		cmocka_unit_test(test_noexecute_after_placement),
		cmocka_unit_test(test_scale_in_balances_every_key),
		cmocka_unit_test(test_scale_in_custom_keys_and_ties),
		cmocka_unit_test(test_rebalance_after_node_join),
		cmocka_unit_test(test_rebalance_needs_room_to_start),
		cmocka_unit_test(test_rebalance_binpack_consolidates),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
