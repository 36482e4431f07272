/* test-sched-k8s.c - Kubernetes semantics on ECS nodes: selectors, affinity, taints, topology spread. */
#include "sched-fixture.h"

static bool feasible(struct sched_snapshot *s, struct sched_prepared *p, const char *node)
{
	bool ok = false;
	char *text = NULL;
	assert_int_equal(sched_explain_node(s, p, node, &ok, &text, NULL), 0);
	free(text);
	return ok;
}

/* Which of n1..n4 a prepared request may use, as "1010". */
static void feasible_set(struct sched_snapshot *s, const struct sched_request *r, char out[5])
{
	struct sched_prepared *p = fx_prepare(s, r);
	for (int i = 0; i < 4; i++) {
		char id[16];
		snprintf(id, sizeof(id), "n%d", i + 1);
		out[i] = feasible(s, p, id) ? '1' : '0';
	}
	out[4] = 0;
	sched_prepared_free(p);
}

/* n1 disk=ssd cores=8; n2 disk=hdd cores=4; n3 cores=16 (no disk); n4 disk=nvme cores=x */
static struct sched_snapshot *label_fixture(void)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_attr l1[] = { { "disk", "ssd" }, { "cores", "8" } };
	struct sched_attr l2[] = { { "disk", "hdd" }, { "cores", "4" } };
	struct sched_attr l3[] = { { "cores", "16" } };
	struct sched_attr l4[] = { { "disk", "nvme" }, { "cores", "x" }, { "tier", "web" } };
	fx_node_full(s, "n1", 4096, 4096, "a", l1, 2, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "n2", 4096, 4096, "a", l2, 2, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "n3", 4096, 4096, "b", l3, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "n4", 4096, 4096, "b", l4, 3, NULL, 0, SCHED_NODE_ACTIVE);
	return s;
}

static void test_node_selector(void **state)
{
	struct sched_snapshot *s = label_fixture();
	char got[5];
	struct sched_attr sel[] = { { "disk", "ssd" } };
	struct sched_request r = { .cpu = 1, .node_selector = sel, .n_node_selector = 1 };
	feasible_set(s, &r, got);
	assert_string_equal(got, "1000");
	struct sched_attr sel2[] = { { "ecs.availability-zone", "b" }, { "tier", "web" } };
	r.node_selector = sel2;
	r.n_node_selector = 2;
	feasible_set(s, &r, got);
	assert_string_equal(got, "0001");
	struct sched_attr none[] = { { "disk", "tape" } };
	r.node_selector = none;
	r.n_node_selector = 1;
	struct sched_result *res = fx_run(s, &r, "t", 1);
	assert_string_equal(res->message, "0/4 nodes: 4 node selector mismatch");
	assert_string_equal(res->ecs_reason, "ATTRIBUTE");
	sched_result_free(res);
	sched_snapshot_free(s);
}

#define V(...) ((const char *const[]){ __VA_ARGS__ })
#define E(k, o, ...)                                                          \
	{                                                                     \
		k, o, V(__VA_ARGS__), sizeof(V(__VA_ARGS__)) / sizeof(char *) \
	}
#define E0(k, o)              \
	{                     \
		k, o, NULL, 0 \
	}

static const struct {
	const char *name;
	struct sched_match_expr exprs[3];
	size_t n_exprs;
	struct sched_match_expr or_exprs[2]; /* a second term, ORed */
	size_t n_or;
	const char *want;
} affinity_cases[] = {
	{ "In", { E("disk", SCHED_OP_IN, "ssd", "nvme") }, 1, { { 0 } }, 0, "1001" },
	{ "NotIn holds without the key", { E("disk", SCHED_OP_NOT_IN, "ssd") }, 1, { { 0 } }, 0, "0111" },
	{ "Exists", { E0("disk", SCHED_OP_EXISTS) }, 1, { { 0 } }, 0, "1101" },
	{ "DoesNotExist", { E0("disk", SCHED_OP_DOES_NOT_EXIST) }, 1, { { 0 } }, 0, "0010" },
	{ "Gt is numeric", { E("cores", SCHED_OP_GT, "4") }, 1, { { 0 } }, 0, "1010" },
	{ "Lt", { E("cores", SCHED_OP_LT, "8") }, 1, { { 0 } }, 0, "0100" },
	{ "Gt on a non-number never holds", { E("cores", SCHED_OP_GT, "-100") }, 1, { { 0 } }, 0, "1110" },
	{ "expressions are ANDed",
	  { E0("disk", SCHED_OP_EXISTS), E("cores", SCHED_OP_LT, "6") },
	  2,
	  { { 0 } },
	  0,
	  "0100" },
	{ "terms are ORed",
	  { E("disk", SCHED_OP_IN, "ssd") },
	  1,
	  { E("cores", SCHED_OP_GT, "10") },
	  1,
	  "1010" },
	{ "instanceId as a key", { E("instanceId", SCHED_OP_NOT_IN, "n1", "n2") }, 1, { { 0 } }, 0, "0011" },
};

static void test_required_node_affinity_table(void **state)
{
	struct sched_snapshot *s = label_fixture();
	for (size_t i = 0; i < ARRAY_SIZE(affinity_cases); i++) {
		struct sched_node_term terms[2] = { { affinity_cases[i].exprs, affinity_cases[i].n_exprs, 0 },
						    { affinity_cases[i].or_exprs, affinity_cases[i].n_or,
						      0 } };
		struct sched_request r = { .cpu = 1,
					   .required_terms = terms,
					   .n_required_terms = affinity_cases[i].n_or ? 2 : 1 };
		char got[5];
		feasible_set(s, &r, got);
		if (strcmp(got, affinity_cases[i].want) != 0)
			fail_msg("%s: got %s, want %s", affinity_cases[i].name, got, affinity_cases[i].want);
	}
	/* invalid requirements are refused at prepare time */
	struct sched_match_expr bad[] = { E("cores", SCHED_OP_GT, "4", "5") };
	struct sched_node_term t[] = { { bad, 1, 0 } };
	struct sched_request r = { .required_terms = t, .n_required_terms = 1 };
	struct sched_prepared *p = NULL;
	struct berth_error *e = NULL;
	assert_int_equal(sched_prepare(s, &r, &p, &e), -EINVAL);
	assert_true(
	    startswith(e->msg, "required node affinity[0].matchExpressions[0]: In/NotIn need values"));
	berth_error_free(e);
	sched_snapshot_free(s);
}

static void test_preferred_node_affinity_weights(void **state)
{
	struct sched_snapshot *s = label_fixture();
	struct sched_match_expr ssd[] = { E("disk", SCHED_OP_IN, "ssd") };
	struct sched_match_expr web[] = { E("tier", SCHED_OP_IN, "web") };
	struct sched_match_expr nvme[] = { E("disk", SCHED_OP_IN, "nvme") };
	struct sched_node_term terms[] = { { ssd, 1, 10 }, { web, 1, 20 }, { nvme, 1, 5 } };
	struct sched_request r = { .cpu = 1, .preferred_terms = terms, .n_preferred_terms = 3 };
	struct sched_result *res = fx_run(s, &r, "t", 2);
	assert_int_equal(fx_on(res, "n4"), 2); /* 25 beats 10 */
	sched_result_free(res);
	terms[0].weight = 30;
	res = fx_run(s, &r, "u", 1);
	assert_string_equal(res->placements[0].node_id, "n1"); /* 30 beats 25 */
	sched_result_free(res);
	/* preferences come before ECS strategies: binpack would choose the fuller n2 */
	fx_task(s, "fill", "n2", NULL, 4000, 0, 0);
	struct sched_strategy bp[] = { { SCHED_BINPACK, "cpu" } };
	r.strategies = bp;
	r.n_strategies = 1;
	res = fx_run(s, &r, "v", 1);
	assert_string_equal(res->placements[0].node_id, "n1");
	sched_result_free(res);
	terms[0].weight = 0;
	struct sched_prepared *p = NULL;
	assert_int_equal(sched_prepare(s, &r, &p, NULL), -EINVAL);
	sched_snapshot_free(s);
}

static const struct {
	const char *name;
	struct sched_taint taint;
	struct sched_toleration tol;
	bool has_tol, schedulable;
} taint_cases[] = {
	{ "NoSchedule, no toleration", { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 }, { 0 }, false, false },
	{ "Equal key, value and effect",
	  { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 },
	  { "dedicated", SCHED_TOL_EQUAL, "gpu", SCHED_NO_SCHEDULE, -1 },
	  true,
	  true },
	{ "Equal with another value",
	  { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 },
	  { "dedicated", SCHED_TOL_EQUAL, "cpu", SCHED_NO_SCHEDULE, -1 },
	  true,
	  false },
	{ "Exists on the key, every effect",
	  { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 },
	  { "dedicated", SCHED_TOL_EXISTS, NULL, -1, -1 },
	  true,
	  true },
	{ "empty key with Exists tolerates everything",
	  { "anything", "x", SCHED_NO_EXECUTE, 0 },
	  { NULL, SCHED_TOL_EXISTS, NULL, -1, -1 },
	  true,
	  true },
	{ "effect must match",
	  { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 },
	  { "dedicated", SCHED_TOL_EQUAL, "gpu", SCHED_NO_EXECUTE, -1 },
	  true,
	  false },
	{ "NoExecute with tolerationSeconds still schedules",
	  { "node.kubernetes.io/unreachable", NULL, SCHED_NO_EXECUTE, 0 },
	  { "node.kubernetes.io/unreachable", SCHED_TOL_EXISTS, NULL, SCHED_NO_EXECUTE, 300 },
	  true,
	  true },
	{ "NoExecute without toleration", { "evict", NULL, SCHED_NO_EXECUTE, 0 }, { 0 }, false, false },
	{ "PreferNoSchedule never filters",
	  { "soft", "1", SCHED_PREFER_NO_SCHEDULE, 0 },
	  { 0 },
	  false,
	  true },
	{ "a taint without value equals the empty value",
	  { "flag", NULL, SCHED_NO_SCHEDULE, 0 },
	  { "flag", SCHED_TOL_EQUAL, "", SCHED_NO_SCHEDULE, -1 },
	  true,
	  true },
};

static void test_taints_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(taint_cases); i++) {
		struct sched_snapshot *s = sched_snapshot_new(1);
		fx_node_full(s, "n1", 1024, 1024, "a", NULL, 0, &taint_cases[i].taint, 1, SCHED_NODE_ACTIVE);
		struct sched_request r = { .cpu = 1,
					   .tolerations = &taint_cases[i].tol,
					   .n_tolerations = taint_cases[i].has_tol };
		struct sched_prepared *p = fx_prepare(s, &r);
		if (feasible(s, p, "n1") != taint_cases[i].schedulable)
			fail_msg("%s", taint_cases[i].name);
		sched_prepared_free(p);
		sched_snapshot_free(s);
	}
}

static void test_prefer_no_schedule_scores(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_taint soft[] = { { "maintenance", NULL, SCHED_PREFER_NO_SCHEDULE, 0 } };
	fx_node_full(s, "tainted", 4096, 4096, "a", NULL, 0, soft, 1, SCHED_NODE_ACTIVE);
	fx_node(s, "clean", 1024, 4096, "a");
	struct sched_request r = { .cpu = 512 };
	struct sched_result *res = fx_run(s, &r, "t", 3);
	assert_int_equal(fx_on(res, "clean"), 2); /* until it is full */
	assert_string_equal(res->placements[2].node_id, "tainted");
	sched_result_free(res);
	/* binpack alone prefers the fuller tainted node only when the taint is tolerated */
	assert_int_equal(sched_task_remove(s, "t-0", NULL), 0); /* clean: 512 free */
	fx_task(s, "big", "tainted", NULL, 3200, 0, 0);         /* tainted: 384 free */
	struct sched_strategy bp[] = { { SCHED_BINPACK, "cpu" } };
	struct sched_request rb = { .cpu = 1, .strategies = bp, .n_strategies = 1 };
	res = fx_run(s, &rb, "u", 1);
	assert_string_equal(res->placements[0].node_id, "clean");
	sched_result_free(res);
	struct sched_toleration tol[] = { { "maintenance", SCHED_TOL_EXISTS, NULL, -1, -1 } };
	rb.tolerations = tol;
	rb.n_tolerations = 1;
	res = fx_run(s, &rb, "v", 1);
	assert_string_equal(res->placements[0].node_id, "tainted");
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* ---- task affinity ---- */

static struct sched_snapshot *zones_fixture(void)
{
	struct sched_snapshot *s = sched_snapshot_new(3);
	fx_node(s, "a1", 8192, 8192, "a");
	fx_node(s, "a2", 8192, 8192, "a");
	fx_node(s, "b1", 8192, 8192, "b");
	fx_node(s, "c1", 8192, 8192, "c");
	return s;
}

static void test_task_affinity_required(void **state)
{
	struct sched_snapshot *s = zones_fixture();
	const char *cache[] = { "service:cache" };
	struct sched_task_affinity aff[] = { { cache, 1, "ecs.availability-zone", false, true, 0 } };
	struct sched_request r = { .group = "service:web", .cpu = 1, .affinities = aff, .n_affinities = 1 };
	/* nothing of cache runs: nowhere to go (the group is not itself) */
	struct sched_result *res = fx_run(s, &r, "t", 1);
	assert_string_equal(res->message, "0/4 nodes: 4 task affinity unsatisfied");
	sched_result_free(res);
	fx_task(s, "cache0", "a2", "service:cache", 0, 0, 0);
	struct sched_strategy sp[] = { { SCHED_SPREAD, "instanceId" } };
	r.strategies = sp;
	r.n_strategies = 1;
	res = fx_run(s, &r, "u", 4);
	assert_int_equal(fx_on(res, "a1") + fx_on(res, "a2"), 4); /* zone a only */
	assert_int_equal(fx_on(res, "a1"), 2);
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* Kubernetes: the first task of a group with affinity to itself may go anywhere, the rest follow. */
static void test_task_affinity_self_first(void **state)
{
	struct sched_snapshot *s = zones_fixture();
	const char *self[] = { "service:pack" };
	struct sched_task_affinity aff[] = { { self, 1, "ecs.availability-zone", false, true, 0 } };
	struct sched_strategy sp[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = { .group = "service:pack",
				   .cpu = 1,
				   .affinities = aff,
				   .n_affinities = 1,
				   .strategies = sp,
				   .n_strategies = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 3);
	assert_int_equal(res->n_placed, 3);
	const char *z = res->placements[0].node_id;
	char zone = z[0];
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(res->placements[i].node_id[0], zone); /* spread is overruled */
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_task_anti_affinity(void **state)
{
	struct sched_snapshot *s = zones_fixture();
	const char *self[] = { "service:db" };
	/* required anti-affinity to itself on instanceId = one per node */
	struct sched_task_affinity one_per_node[] = { { self, 1, "instanceId", true, true, 0 } };
	struct sched_request r = {
		.group = "service:db", .cpu = 1, .affinities = one_per_node, .n_affinities = 1
	};
	struct sched_result *res = fx_run(s, &r, "t", 5);
	assert_int_equal(res->n_placed, 4);
	assert_string_equal(res->message, "0/4 nodes: 4 task anti-affinity");
	assert_string_equal(res->ecs_reason, "berth:TaskAntiAffinity");
	sched_result_free(res);
	/* required anti-affinity to db on zones: no zone is free of db */
	const char *db[] = { "service:db" };
	struct sched_task_affinity away[] = { { db, 1, "ecs.availability-zone", true, true, 0 } };
	struct sched_request rw = { .group = "service:web", .cpu = 1, .affinities = away, .n_affinities = 1 };
	assert_int_equal(sched_task_remove(s, "t-0", NULL), 0);
	assert_int_equal(sched_task_remove(s, "t-1", NULL), 0);
	assert_int_equal(sched_task_remove(s, "t-2", NULL), 0);
	assert_int_equal(sched_task_remove(s, "t-3", NULL), 0);
	fx_task(s, "db-a", "a1", "service:db", 0, 0, 0);
	fx_task(s, "db-c", "c1", "service:db", 0, 0, 0);
	res = fx_run(s, &rw, "w", 2);
	assert_int_equal(fx_on(res, "b1"), 2);
	sched_result_free(res);
	/* preferred anti-affinity only steers */
	struct sched_task_affinity soft[] = { { db, 1, "ecs.availability-zone", true, false, 50 } };
	struct sched_strategy bp[] = { { SCHED_BINPACK, "memory" } };
	fx_task(s, "fat", "a2", NULL, 0, 8000, 0); /* binpack alone would pick a2 */
	struct sched_request rs = { .group = "service:x",
				    .cpu = 1,
				    .memory = 1,
				    .affinities = soft,
				    .n_affinities = 1,
				    .strategies = bp,
				    .n_strategies = 1 };
	res = fx_run(s, &rs, "x", 1);
	assert_string_equal(res->placements[0].node_id, "b1");
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* Kubernetes' symmetry: running tasks' required anti-affinity keeps later tasks away. */
static void test_task_anti_affinity_of_running_tasks(void **state)
{
	struct sched_snapshot *s = zones_fixture();
	const char *web[] = { "service:web" };
	struct sched_task_affinity away[] = { { web, 1, "ecs.availability-zone", true, true, 0 } };
	struct sched_attr in_a[] = { { "ecs.availability-zone", "a" } };
	struct sched_request db = { .group = "service:db",
				    .cpu = 1,
				    .affinities = away,
				    .n_affinities = 1,
				    .node_selector = in_a,
				    .n_node_selector = 1 };
	sched_result_free(fx_run(s, &db, "db", 1)); /* db in zone a, repelling web */
	struct sched_request w = { .group = "service:web", .cpu = 1 };
	struct sched_result *res = fx_run(s, &w, "w", 4);
	assert_int_equal(fx_on(res, "a1") + fx_on(res, "a2"), 0);
	assert_int_equal(fx_on(res, "b1") + fx_on(res, "c1"), 4);
	sched_result_free(res);
	struct sched_prepared *p = fx_prepare(s, &w);
	char *text = NULL;
	assert_int_equal(sched_explain_node(s, p, "a1", NULL, &text, NULL), 0);
	assert_string_equal(text, "anti-affinity of 1 running tasks against group 'service:web' in "
				  "ecs.availability-zone=a");
	free(text);
	sched_prepared_free(p);
	/* the same from a task the server loads from its store */
	struct sched_task_spec t = { .id = "db-b",
				     .node_id = "b1",
				     .group = "service:db",
				     .anti_affinity = away,
				     .n_anti_affinity = 1 };
	assert_int_equal(sched_task_add(s, &t, NULL), 0);
	res = fx_run(s, &w, "x", 2);
	assert_int_equal(fx_on(res, "c1"), 2); /* zones a and b hold db now */
	sched_result_free(res);
	/* stopping the carriers lifts it */
	assert_int_equal(sched_task_remove(s, "db-0", NULL), 0);
	assert_int_equal(sched_task_remove(s, "db-b", NULL), 0);
	struct sched_attr in_b[] = { { "ecs.availability-zone", "b" } };
	w.node_selector = in_b;
	w.n_node_selector = 1;
	res = fx_run(s, &w, "y", 1);
	assert_string_equal(res->placements[0].node_id, "b1");
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* ---- topology spread ---- */

static void test_topology_spread_max_skew(void **state)
{
	struct sched_snapshot *s = zones_fixture();
	struct sched_spread_constraint c[] = { { 1, "ecs.availability-zone", true, 0, NULL, 0 } };
	struct sched_strategy bp[] = { { SCHED_BINPACK, "memory" } };
	struct sched_request r = { .group = "service:web",
				   .cpu = 1,
				   .memory = 100,
				   .spread = c,
				   .n_spread = 1,
				   .strategies = bp,
				   .n_strategies = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 6);
	assert_int_equal(fx_on(res, "a1") + fx_on(res, "a2"), 2);
	assert_int_equal(fx_on(res, "b1"), 2);
	assert_int_equal(fx_on(res, "c1"), 2);
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* The unsatisfiable case: a domain is full, DoNotSchedule stops, ScheduleAnyway goes on. */
static void test_topology_spread_unsatisfiable(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "a1", 8192, 8192, "a");
	fx_node(s, "b1", 1024, 8192, "b"); /* room for one */
	struct sched_spread_constraint dns[] = { { 1, "ecs.availability-zone", true, 0, NULL, 0 } };
	struct sched_request r = { .group = "service:web", .cpu = 1024, .spread = dns, .n_spread = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 4);
	assert_int_equal(res->n_placed, 3); /* a, b, a */
	assert_string_equal(res->message,
			    "0/2 nodes: 1 insufficient cpu, 1 topology spread maxSkew exceeded");
	assert_string_equal(res->ecs_reason, "RESOURCE:CPU");
	sched_result_free(res);
	struct sched_spread_constraint any[] = { { 1, "ecs.availability-zone", false, 0, NULL, 0 } };
	r.spread = any;
	r.group = "service:batch";
	res = fx_run(s, &r, "u", 4);
	assert_int_equal(res->n_placed, 4);
	assert_int_equal(fx_on(res, "a1"), 4); /* b is full: skew is only a preference */
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_topology_spread_min_domains(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "a1", 8192, 8192, "a");
	fx_node(s, "b1", 8192, 8192, "b");
	struct sched_spread_constraint c[] = { { 1, "ecs.availability-zone", true, 3, NULL, 0 } };
	struct sched_request r = { .group = "g", .cpu = 1, .spread = c, .n_spread = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 3);
	/* 2 domains < minDomains 3: the global minimum counts as 0, so 1 per domain */
	assert_int_equal(res->n_placed, 2);
	sched_result_free(res);
	c[0].min_domains = 2;
	r.group = "h";
	res = fx_run(s, &r, "u", 3);
	assert_int_equal(res->n_placed, 3);
	sched_result_free(res);
	c[0].do_not_schedule = false;
	struct sched_prepared *p = NULL;
	assert_int_equal(sched_prepare(s, &r, &p, NULL), -EINVAL); /* minDomains needs DoNotSchedule */
	sched_snapshot_free(s);
}

static void test_topology_spread_domains_follow_selector(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_attr ssd[] = { { "disk", "ssd" } };
	struct sched_attr hdd[] = { { "disk", "hdd" } };
	fx_node_full(s, "a1", 8192, 8192, "a", ssd, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "b1", 8192, 8192, "b", ssd, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "c1", 8192, 8192, "c", hdd, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node(s, "nozone", 8192, 8192, NULL);
	struct sched_spread_constraint c[] = { { 1, "ecs.availability-zone", true, 0, NULL, 0 } };
	struct sched_attr sel[] = { { "disk", "ssd" } };
	struct sched_request r = {
		.group = "g", .cpu = 1, .spread = c, .n_spread = 1, .node_selector = sel, .n_node_selector = 1
	};
	struct sched_result *res = fx_run(s, &r, "t", 4);
	/* zone c is not a domain of this task (its nodes fail the selector): 2 and 2 */
	assert_int_equal(res->n_placed, 4);
	assert_int_equal(fx_on(res, "a1"), 2);
	sched_result_free(res);
	/* without the selector zone c (0 tasks) holds the minimum down; a node without the key is out */
	struct sched_request r2 = { .group = "g", .cpu = 1, .spread = c, .n_spread = 1 };
	res = fx_run(s, &r2, "u", 1);
	assert_string_equal(res->placements[0].node_id, "c1");
	sched_result_free(res);
	struct sched_prepared *p = fx_prepare(s, &r2);
	char *text = NULL;
	assert_int_equal(sched_explain_node(s, p, "nozone", NULL, &text, NULL), 0);
	assert_string_equal(text, "topology spread: node has no 'ecs.availability-zone'");
	free(text);
	assert_int_equal(sched_explain_node(s, p, "a1", NULL, &text, NULL), 0);
	assert_string_equal(text, "topology spread: skew 2 > maxSkew 1 in ecs.availability-zone=a");
	free(text);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

/* ECS strategy, K8s anti-affinity and a toleration together. */
static void test_combination(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(2);
	struct sched_taint gpu[] = { { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 } };
	fx_node_full(s, "g1", 8192, 8192, "a", NULL, 0, gpu, 1, SCHED_NODE_ACTIVE);
	fx_node_full(s, "g2", 8192, 8192, "b", NULL, 0, gpu, 1, SCHED_NODE_ACTIVE);
	fx_node(s, "c1", 8192, 8192, "a");
	fx_node(s, "c2", 8192, 8192, "b");
	const char *self[] = { "service:train" };
	struct sched_task_affinity one[] = { { self, 1, "instanceId", true, true, 0 } };
	struct sched_toleration tol[] = { { "dedicated", SCHED_TOL_EQUAL, "gpu", SCHED_NO_SCHEDULE, -1 } };
	struct sched_match_expr only_gpu_e[] = { E("instanceId", SCHED_OP_IN, "g1", "g2") };
	struct sched_node_term only_gpu[] = { { only_gpu_e, 1, 0 } };
	struct sched_strategy st[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = { .group = "service:train",
				   .cpu = 1,
				   .affinities = one,
				   .n_affinities = 1,
				   .tolerations = tol,
				   .n_tolerations = 1,
				   .required_terms = only_gpu,
				   .n_required_terms = 1,
				   .strategies = st,
				   .n_strategies = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 3);
	assert_int_equal(res->n_placed, 2);
	assert_int_equal(fx_on(res, "g1"), 1);
	assert_int_equal(fx_on(res, "g2"), 1);
	assert_string_equal(res->message, "0/4 nodes: 2 node affinity mismatch, 2 task anti-affinity");
	sched_result_free(res);
	sched_snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_node_selector),
		cmocka_unit_test(test_required_node_affinity_table),
		cmocka_unit_test(test_preferred_node_affinity_weights),
		cmocka_unit_test(test_taints_table),
		cmocka_unit_test(test_prefer_no_schedule_scores),
		cmocka_unit_test(test_task_affinity_required),
		cmocka_unit_test(test_task_affinity_self_first),
		cmocka_unit_test(test_task_anti_affinity),
		cmocka_unit_test(test_task_anti_affinity_of_running_tasks),
		cmocka_unit_test(test_topology_spread_max_skew),
		cmocka_unit_test(test_topology_spread_unsatisfiable),
		cmocka_unit_test(test_topology_spread_min_domains),
		cmocka_unit_test(test_topology_spread_domains_follow_selector),
		cmocka_unit_test(test_combination),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
