/* test-sched-place.c - resources, ECS strategies and constraints, explanations, snapshot updates. */
#include "sched-fixture.h"

/* ---- resources ---- */

static const struct {
	const char *name;
	int32_t cpu, mem, res; /* request: cpu, memory hard, reservation */
	int32_t node_cpu, node_mem, used_cpu, used_mem;
	bool fits;
	const char *ecs;
} resource_cases[] = {
	{ "fits exactly", 1024, 512, 0, 1024, 512, 0, 0, true, NULL },
	{ "cpu short by one", 1025, 512, 0, 1024, 4096, 0, 0, false, "RESOURCE:CPU" },
	{ "memory short", 256, 600, 0, 1024, 4096, 0, 3600, false, "RESOURCE:MEMORY" },
	{ "reservation fits where the hard limit would not", 256, 2048, 256, 1024, 4096, 0, 3584, true,
	  NULL },
	{ "hard limit above the node's memory", 256, 8192, 256, 1024, 4096, 0, 0, false, "RESOURCE:MEMORY" },
	{ "zero-size task on a full node", 0, 0, 0, 1024, 1024, 1024, 1024, true, NULL },
	{ "cpu checked before memory", 2048, 8192, 0, 1024, 1024, 0, 0, false, "RESOURCE:CPU" },
};

static void test_resources_table(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(resource_cases); i++) {
		const __typeof__(resource_cases[0]) *c = &resource_cases[i];
		struct sched_snapshot *s = sched_snapshot_new(1);
		fx_node(s, "n1", c->node_cpu, c->node_mem, "a");
		if (c->used_cpu || c->used_mem)
			fx_task(s, "old", "n1", "other", c->used_cpu, c->used_mem, 0);
		struct sched_request r = { .cpu = c->cpu, .memory = c->mem, .memory_reservation = c->res };
		struct sched_result *res = fx_run(s, &r, "t", 1);
		if ((res->n_placed == 1) != c->fits)
			fail_msg("%s: placed %zu", c->name, res->n_placed);
		if (c->ecs)
			assert_string_equal(res->ecs_reason, c->ecs);
		else
			assert_null(res->message);
		sched_result_free(res);
		sched_snapshot_free(s);
	}
}

static void test_resources_accumulate_and_release(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 2048, 2048, "a");
	struct sched_request r = { .cpu = 512, .memory = 512 };
	struct sched_result *res = fx_run(s, &r, "t", 5);
	assert_int_equal(res->n_placed, 4); /* the fifth does not fit */
	assert_string_equal(res->message, "0/1 nodes: 1 insufficient cpu");
	sched_result_free(res);
	assert_int_equal(sched_task_count(s), 4);
	assert_int_equal(sched_task_remove(s, "t-2", NULL), 0);
	assert_int_equal(sched_task_remove(s, "t-2", NULL), -ENOENT);
	res = fx_run(s, &r, "u", 1);
	assert_int_equal(res->n_placed, 1);
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* StartTask: one task on a named node, explained for that node alone. */
static void test_place_on_named_node(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "big", 4096, 4096, "a");
	fx_node(s, "small", 1024, 256, "b");
	struct sched_request r = { .cpu = 512, .memory = 512 };
	struct sched_prepared *p = fx_prepare(s, &r);
	struct sched_result *res = NULL;
	assert_int_equal(sched_place_on(s, p, "small", "t1", &res, NULL), 0);
	assert_int_equal(res->n_placed, 0);
	assert_string_equal(res->message, "0/1 nodes: 1 insufficient memory");
	assert_string_equal(res->ecs_reason, "RESOURCE:MEMORY");
	res = sched_result_free(res);
	assert_int_equal(sched_place_on(s, p, "big", "t1", &res, NULL), 0);
	assert_int_equal(res->n_placed, 1);
	assert_string_equal(res->placements[0].node_id, "big");
	assert_string_equal(sched_task_node(s, "t1"), "big");
	res = sched_result_free(res);
	assert_int_equal(sched_place_on(s, p, "big", "t1", &res, NULL), -EEXIST);
	assert_int_equal(sched_place_on(s, p, "nope", "t2", &res, NULL), -ENOENT);
	assert_int_equal(sched_node_set_status(s, "big", SCHED_NODE_DRAINING, true, NULL), 0);
	assert_int_equal(sched_place_on(s, p, "big", "t3", &res, NULL), 0);
	assert_string_equal(res->message, "0/1 nodes: 1 DRAINING");
	sched_result_free(res);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

static void test_task_limit(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_node_spec spec = {
		.id = "n1", .cpu = 10240, .memory = 10240, .max_tasks = 2, .agent_connected = true
	};
	assert_int_equal(sched_node_put(s, &spec, NULL), 0);
	struct sched_request r = { .cpu = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 3);
	assert_int_equal(res->n_placed, 2);
	assert_string_equal(res->message, "0/1 nodes: 1 task limit reached");
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_ports_static_and_dynamic(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	static const uint16_t reserved[] = { 22, 8081 };
	struct sched_node_spec spec = { .id = "n1",
					.cpu = 10240,
					.memory = 10240,
					.agent_connected = true,
					.port_min = 40000,
					.port_max = 40002,
					.reserved_ports = reserved,
					.n_reserved_ports = 2 };
	assert_int_equal(sched_node_put(s, &spec, NULL), 0);
	uint16_t p8080 = 8080, p8081 = 8081, p40001 = 40001;
	/* A static port: once per node. */
	struct sched_request r = { .cpu = 1, .static_ports = &p8080, .n_static_ports = 1 };
	struct sched_result *res = fx_run(s, &r, "web", 2);
	assert_int_equal(res->n_placed, 1);
	assert_int_equal(res->placements[0].n_ports, 1);
	assert_int_equal(res->placements[0].ports[0], 8080);
	assert_string_equal(res->ecs_reason, "RESOURCE:PORTS");
	sched_result_free(res);
	/* A reserved port is never handed out. */
	struct sched_request rr = { .cpu = 1, .static_ports = &p8081, .n_static_ports = 1 };
	res = fx_run(s, &rr, "res", 1);
	assert_int_equal(res->n_placed, 0);
	sched_result_free(res);
	/* A static port inside the dynamic range takes one of its three ports. */
	struct sched_request rs = {
		.cpu = 1, .static_ports = &p40001, .n_static_ports = 1, .n_dynamic_ports = 1
	};
	res = fx_run(s, &rs, "mix", 1);
	assert_int_equal(res->n_placed, 1);
	assert_int_equal(res->placements[0].ports[0], 40001);
	assert_int_equal(res->placements[0].ports[1], 40000);
	sched_result_free(res);
	/* One dynamic port left (40002). */
	struct sched_request rd = { .cpu = 1, .n_dynamic_ports = 1 };
	res = fx_run(s, &rd, "dyn", 2);
	assert_int_equal(res->n_placed, 1);
	assert_int_equal(res->placements[0].ports[0], 40002);
	assert_string_equal(res->message, "0/1 nodes: 1 host ports unavailable");
	sched_result_free(res);
	/* Stopping a task gives its ports back. */
	assert_int_equal(sched_task_remove(s, "mix-0", NULL), 0);
	res = fx_run(s, &rd, "dyn2", 2);
	assert_int_equal(res->n_placed, 2);
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_excluded_nodes_and_message(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_taint gpu[] = { { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 } };
	char id[24];
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "small%d", i);
		fx_node(s, id, 4096, 256, "a");
	}
	for (int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "drain%d", i);
		fx_node_full(s, id, 4096, 8192, "a", NULL, 0, NULL, 0, SCHED_NODE_DRAINING);
	}
	fx_node_full(s, "gpu0", 4096, 8192, "a", NULL, 0, gpu, 1, SCHED_NODE_ACTIVE);
	struct sched_request r = { .cpu = 256, .memory = 512 };
	struct sched_result *res = fx_run(s, &r, "t", 1);
	assert_int_equal(res->n_placed, 0);
	assert_string_equal(
	    res->message,
	    "0/10 nodes: 6 insufficient memory, 3 DRAINING, 1 taint dedicated=gpu:NoSchedule not tolerated");
	assert_string_equal(res->ecs_reason, "RESOURCE:MEMORY");
	assert_int_equal(res->nodes_total, 10);
	assert_int_equal(res->n_reasons, 3);
	assert_int_equal(res->reasons[0].reason, SCHED_R_MEMORY);
	assert_int_equal(res->reasons[0].nodes, 6);
	assert_int_equal(res->reasons[2].reason, SCHED_R_TAINT);
	assert_string_equal(res->reasons[2].detail, "dedicated=gpu:NoSchedule");
	sched_result_free(res);
	/* Disconnected and INACTIVE nodes are excluded too; status changes are incremental. */
	assert_int_equal(sched_node_set_status(s, "drain0", SCHED_NODE_ACTIVE, false, NULL), 0);
	assert_int_equal(sched_node_set_status(s, "drain1", SCHED_NODE_INACTIVE, true, NULL), 0);
	res = fx_run(s, &r, "u", 1);
	assert_string_equal(res->message,
			    "0/10 nodes: 6 insufficient memory, 1 INACTIVE, 1 DRAINING, "
			    "1 agent disconnected, 1 taint dedicated=gpu:NoSchedule not tolerated");
	sched_result_free(res);
	assert_int_equal(sched_node_set_status(s, "drain2", SCHED_NODE_ACTIVE, true, NULL), 0);
	res = fx_run(s, &r, "v", 1);
	assert_int_equal(res->n_placed, 1);
	assert_string_equal(res->placements[0].node_id, "drain2");
	sched_result_free(res);
	assert_int_equal(sched_node_set_status(s, "nope", SCHED_NODE_ACTIVE, true, NULL), -ENOENT);
	sched_snapshot_free(s);
}

static void test_empty_cluster(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_request r = { .cpu = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 1);
	assert_int_equal(res->n_placed, 0);
	assert_string_equal(res->message, "0/0 nodes: no nodes registered");
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* ---- strategies ---- */

static void test_binpack_memory_and_cpu(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "big", 8192, 16384, "a");
	fx_node(s, "mid", 4096, 8192, "a");
	fx_node(s, "small", 2048, 4096, "a");
	struct sched_strategy mem[] = { { SCHED_BINPACK, "memory" } };
	struct sched_request r = { .cpu = 128, .memory = 1024, .strategies = mem, .n_strategies = 1 };
	struct sched_result *res = fx_run(s, &r, "m", 4);
	/* least memory left first: small fills (4 x 1024) before mid gets anything */
	assert_int_equal(fx_on(res, "small"), 4);
	sched_result_free(res);
	res = fx_run(s, &r, "m2", 1);
	assert_string_equal(res->placements[0].node_id, "mid");
	sched_result_free(res);
	/* binpack(cpu) looks at cpu only: big has the least cpu left after a big cpu task */
	fx_task(s, "hog", "big", "x", 7168, 0, 0);
	struct sched_strategy cpu[] = { { SCHED_BINPACK, "cpu" } };
	struct sched_request rc = { .cpu = 512, .memory = 128, .strategies = cpu, .n_strategies = 1 };
	res = fx_run(s, &rc, "c", 2);
	assert_int_equal(fx_on(res, "big"), 2);
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* Binpack ties are broken by the next key, else by a seeded coin: same seed, same choice. */
static void test_binpack_ties(void **state)
{
	bool picked_a1 = false, picked_a2 = false;
	for (uint64_t seed = 1; seed <= 16; seed++) {
		char prev[8] = "";
		for (int run = 0; run < 2; run++) {
			struct sched_snapshot *s = sched_snapshot_new(seed);
			fx_node(s, "a1", 4096, 4096, "a");
			fx_node(s, "a2", 4096, 4096, "b");
			struct sched_strategy st[] = { { SCHED_BINPACK, "memory" } };
			struct sched_request r = {
				.cpu = 1, .memory = 1024, .strategies = st, .n_strategies = 1
			};
			struct sched_result *res = fx_run(s, &r, "t", 3);
			const char *node = res->placements[0].node_id;
			/* once a node is chosen binpack keeps filling it */
			assert_int_equal(fx_on(res, node), 3);
			if (run == 0)
				snprintf(prev, sizeof(prev), "%s", node);
			else
				assert_string_equal(prev, node); /* deterministic */
			picked_a1 |= streq(node, "a1");
			picked_a2 |= streq(node, "a2");
			sched_result_free(res);
			sched_snapshot_free(s);
		}
	}
	assert_true(picked_a1 && picked_a2); /* the coin is fair enough to pick both */
	/* ... and with a spread key after binpack the tie goes to the emptier zone */
	struct sched_snapshot *s = sched_snapshot_new(3);
	fx_node(s, "a1", 4096, 4096, "a");
	fx_node(s, "b1", 4096, 4096, "b");
	fx_task(s, "z", "a1", "family:web", 0, 0, 0);
	struct sched_strategy st[] = { { SCHED_BINPACK, "memory" },
				       { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = {
		.family = "web", .cpu = 1, .memory = 1024, .strategies = st, .n_strategies = 2
	};
	struct sched_result *res = fx_run(s, &r, "t", 1);
	assert_string_equal(res->placements[0].node_id, "b1");
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_spread_zone_3_3_3(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(7);
	fx_node(s, "n1", 8192, 16384, "us-east-1a");
	fx_node(s, "n2", 8192, 16384, "us-east-1b");
	fx_node(s, "n3", 8192, 16384, "us-east-1c");
	struct sched_strategy st[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = {
		.group = "service:web", .cpu = 256, .memory = 256, .strategies = st, .n_strategies = 1
	};
	struct sched_result *res = fx_run(s, &r, "t", 9);
	assert_int_equal(res->n_placed, 9);
	assert_int_equal(fx_on(res, "n1"), 3);
	assert_int_equal(fx_on(res, "n2"), 3);
	assert_int_equal(fx_on(res, "n3"), 3);
	sched_result_free(res);
	sched_snapshot_free(s);
}

/* Ordered keys: AZ first, then instance: 2 zones x 2 nodes, 8 tasks -> 2 on each node. */
static void test_spread_zone_then_instance(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(5);
	fx_node(s, "a1", 8192, 16384, "a");
	fx_node(s, "a2", 8192, 16384, "a");
	fx_node(s, "b1", 8192, 16384, "b");
	fx_node(s, "b2", 8192, 16384, "b");
	fx_node(s, "c1", 8192, 16384, "c");
	fx_task(s, "pre1", "c1", "service:api", 0, 0, 0);
	fx_task(s, "pre2", "c1", "service:api", 0, 0, 0);
	struct sched_strategy user[] = { { SCHED_SPREAD, "instanceId" } };
	struct sched_strategy st[SCHED_MAX_STRATEGIES];
	size_t n = sched_service_strategies(user, 1, st);
	assert_int_equal(n, 2);
	struct sched_request r = { .group = "service:api", .cpu = 1, .strategies = st, .n_strategies = n };
	struct sched_result *res = fx_run(s, &r, "t", 4);
	/* zone c already has 2: a and b get 2 each, one per node */
	assert_int_equal(fx_on(res, "a1"), 1);
	assert_int_equal(fx_on(res, "a2"), 1);
	assert_int_equal(fx_on(res, "b1"), 1);
	assert_int_equal(fx_on(res, "b2"), 1);
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_service_default_strategies(void **state)
{
	struct sched_strategy out[SCHED_MAX_STRATEGIES];
	size_t n = sched_service_strategies(NULL, 0, out);
	assert_int_equal(n, 2);
	assert_string_equal(out[0].field, "attribute:ecs.availability-zone");
	assert_string_equal(out[1].field, "instanceId");
	struct sched_strategy bp[] = { { SCHED_BINPACK, "memory" } };
	n = sched_service_strategies(bp, 1, out);
	assert_int_equal(n, 2);
	assert_int_equal(out[1].type, SCHED_BINPACK);
	struct sched_strategy az[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" },
				       { SCHED_RANDOM, NULL } };
	n = sched_service_strategies(az, 2, out);
	assert_int_equal(n, 2); /* not doubled */
	struct sched_strategy five[5] = { { SCHED_RANDOM, NULL },
					  { SCHED_RANDOM, NULL },
					  { SCHED_RANDOM, NULL },
					  { SCHED_RANDOM, NULL },
					  { SCHED_RANDOM, NULL } };
	assert_int_equal(sched_service_strategies(five, 5, out), SCHED_MAX_STRATEGIES);
}

static void test_random_is_seeded(void **state)
{
	char a[64] = "", b[64] = "", c[64] = "";
	char *outs[] = { a, b, c };
	uint64_t seeds[] = { 11, 11, 12 };
	for (int k = 0; k < 3; k++) {
		struct sched_snapshot *s = sched_snapshot_new(seeds[k]);
		char id[24];
		for (int i = 0; i < 8; i++) {
			snprintf(id, sizeof(id), "n%d", i);
			fx_node(s, id, 4096, 4096, "a");
		}
		struct sched_strategy st[] = { { SCHED_RANDOM, NULL } };
		struct sched_request r = { .cpu = 1, .strategies = st, .n_strategies = 1 };
		struct sched_result *res = fx_run(s, &r, "t", 12);
		for (size_t i = 0; i < res->n_placed; i++)
			outs[k][i] = res->placements[i].node_id[1]; /* 12 one-digit ids fit in 64 */
		sched_result_free(res);
		sched_snapshot_free(s);
	}
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
}

/* ---- constraints ---- */

static void test_distinct_instance(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 8192, 8192, "a");
	fx_node(s, "n2", 8192, 8192, "b");
	fx_node(s, "n3", 8192, 8192, "c");
	fx_task(s, "other", "n1", "service:other", 0, 0, 0); /* other groups do not count */
	struct sched_constraint c[] = { { SCHED_DISTINCT_INSTANCE, NULL } };
	struct sched_request r = { .group = "service:db", .cpu = 1, .constraints = c, .n_constraints = 1 };
	struct sched_result *res = fx_run(s, &r, "t", 4);
	assert_int_equal(res->n_placed, 3);
	assert_int_equal(fx_on(res, "n1"), 1);
	assert_int_equal(fx_on(res, "n2"), 1);
	assert_int_equal(fx_on(res, "n3"), 1);
	assert_string_equal(res->message, "0/3 nodes: 3 distinctInstance: group already on node");
	assert_string_equal(res->ecs_reason, "DistinctInstance placement constraint unsatisfied.");
	sched_result_free(res);
	sched_snapshot_free(s);
}

static void test_member_of(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_attr t2[] = { { "ecs.instance-type", "t2.micro" } };
	struct sched_attr m5[] = { { "ecs.instance-type", "m5.large" } };
	fx_node_full(s, "t2a", 4096, 4096, "a", t2, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "m5a", 4096, 4096, "a", m5, 1, NULL, 0, SCHED_NODE_ACTIVE);
	fx_node_full(s, "m5b", 4096, 4096, "b", m5, 1, NULL, 0, SCHED_NODE_ACTIVE);
	struct sched_constraint c[] = {
		{ SCHED_MEMBER_OF, "attribute:ecs.instance-type =~ m5.*" },
		{ SCHED_MEMBER_OF, "attribute:ecs.availability-zone == b or task:group == service:cache" },
	};
	struct sched_request r = { .cpu = 1, .constraints = c, .n_constraints = 2 };
	struct sched_result *res = fx_run(s, &r, "t", 2);
	assert_int_equal(fx_on(res, "m5b"), 2);
	sched_result_free(res);
	/* the second expression also admits nodes running the cache group */
	fx_task(s, "cache", "m5a", "service:cache", 0, 0, 0);
	struct sched_strategy spread[] = { { SCHED_SPREAD, "instanceId" } };
	r.strategies = spread;
	r.n_strategies = 1;
	r.group = "service:x";
	res = fx_run(s, &r, "u", 2);
	assert_int_equal(fx_on(res, "m5a"), 1);
	assert_int_equal(fx_on(res, "m5b"), 1);
	sched_result_free(res);
	/* nothing matches: ECS's reason */
	struct sched_constraint none[] = { { SCHED_MEMBER_OF, "attribute:ecs.instance-type == p3.2xlarge" } };
	struct sched_request rn = { .cpu = 1, .constraints = none, .n_constraints = 1 };
	res = fx_run(s, &rn, "v", 1);
	assert_string_equal(res->message, "0/3 nodes: 3 memberOf constraint unsatisfied");
	assert_string_equal(res->ecs_reason, "MemberOf placement constraint unsatisfied.");
	sched_result_free(res);
	sched_snapshot_free(s);
}

static const struct {
	const char *name;
	struct sched_request req;
	const char *msg;
} prepare_errors[] = {
	{ "binpack field",
	  { .strategies = (struct sched_strategy[]){ { SCHED_BINPACK, "disk" } }, .n_strategies = 1 },
	  "strategies[0]: binpack field must be cpu or memory, not 'disk'" },
	{ "spread field",
	  { .strategies = (struct sched_strategy[]){ { SCHED_SPREAD, NULL } }, .n_strategies = 1 },
	  "strategies[0]: spread needs a field" },
	{ "distinct with expression",
	  { .constraints = (struct sched_constraint[]){ { SCHED_DISTINCT_INSTANCE, "x" } },
	    .n_constraints = 1 },
	  "placementConstraints[0]: distinctInstance takes no expression" },
	{ "memberOf without expression",
	  { .constraints = (struct sched_constraint[]){ { SCHED_MEMBER_OF, NULL } }, .n_constraints = 1 },
	  "placementConstraints[0]: memberOf: expression is required" },
	{ "reservation above limit",
	  { .memory = 100, .memory_reservation = 200 },
	  "memoryReservation 200 is above the memory limit 100" },
	{ "port twice",
	  { .static_ports = (uint16_t[]){ 80, 80 }, .n_static_ports = 2 },
	  "host port 80 given twice" },
	{ "too many strategies", { .n_strategies = 6 }, "strategies: at most 5" },
};

static void test_prepare_errors(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	for (size_t i = 0; i < ARRAY_SIZE(prepare_errors); i++) {
		struct sched_prepared *p = NULL;
		struct berth_error *e = NULL;
		assert_true(sched_prepare(s, &prepare_errors[i].req, &p, &e) < 0);
		assert_null(p);
		_cleanup_free_ char *m = berth_error_string(e);
		if (!streq(m, prepare_errors[i].msg))
			fail_msg("%s: got '%s'", prepare_errors[i].name, m);
		berth_error_free(e);
	}
	sched_snapshot_free(s);
}

static void test_place_argument_errors(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 1024, 1024, "a");
	fx_task(s, "old", "n1", NULL, 0, 0, 0);
	struct sched_request r = { .cpu = 1 };
	struct sched_prepared *p = fx_prepare(s, &r);
	struct sched_result *res = NULL;
	const char *dup[] = { "x", "x" };
	const char *taken[] = { "old" };
	assert_int_equal(sched_place(s, p, dup, 2, &res, NULL), -EINVAL);
	assert_int_equal(sched_place(s, p, taken, 1, &res, NULL), -EEXIST);
	assert_int_equal(sched_place(s, p, dup, 0, &res, NULL), -EINVAL);
	assert_null(res);
	struct sched_snapshot *other = sched_snapshot_new(1);
	assert_int_equal(sched_place(other, p, dup, 1, &res, NULL), -EINVAL);
	sched_snapshot_free(other);
	sched_prepared_free(p);
	struct sched_task_spec t = { .id = "y", .node_id = "missing" };
	assert_int_equal(sched_task_add(s, &t, NULL), -ENOENT);
	t.node_id = "n1";
	t.id = "old";
	assert_int_equal(sched_task_add(s, &t, NULL), -EEXIST);
	sched_snapshot_free(s);
}

/* ---- explain one node ---- */

static void test_explain_node(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	struct sched_taint gpu[] = { { "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 } };
	fx_node_full(s, "n1", 1024, 1024, "a", NULL, 0, gpu, 1, SCHED_NODE_DRAINING);
	fx_node(s, "n2", 4096, 4096, "b");
	fx_task(s, "db0", "n1", "service:db", 512, 512, 0);
	struct sched_constraint c[] = { { SCHED_DISTINCT_INSTANCE, NULL },
					{ SCHED_MEMBER_OF, "attribute:ecs.availability-zone == b" } };
	struct sched_request r = {
		.group = "service:db", .cpu = 768, .memory = 768, .constraints = c, .n_constraints = 2
	};
	struct sched_prepared *p = fx_prepare(s, &r);
	char *text = NULL;
	bool ok = true;
	assert_int_equal(sched_explain_node(s, p, "n1", &ok, &text, NULL), 0);
	assert_false(ok);
	assert_string_equal(
	    text, "DRAINING; taint dedicated=gpu:NoSchedule not tolerated; memberOf constraint "
		  "unsatisfied: attribute:ecs.availability-zone == b; insufficient cpu (needs 768 "
		  "units, 512 free); insufficient memory (needs 768 MiB, 512 free); distinctInstance: "
		  "a task of group 'service:db' is on this node");
	free(text);
	assert_int_equal(sched_explain_node(s, p, "n2", &ok, &text, NULL), 0);
	assert_true(ok);
	assert_true(startswith(text, "feasible; score keys"));
	free(text);
	assert_int_equal(sched_explain_node(s, p, "n9", &ok, &text, NULL), -ENOENT);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

/* ---- incremental snapshot ---- */

/* Replacing a node's attributes moves its tasks between spread domains. */
static void test_node_put_reindexes(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 8192, 8192, "a");
	fx_node(s, "n2", 8192, 8192, "b");
	fx_task(s, "w1", "n1", "service:web", 0, 0, 0);
	fx_task(s, "w2", "n1", "service:web", 0, 0, 0);
	struct sched_strategy st[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" } };
	struct sched_request r = { .group = "service:web", .cpu = 1, .strategies = st, .n_strategies = 1 };
	struct sched_prepared *p = fx_prepare(s, &r);
	struct sched_result *res = fx_place(s, p, "t", 1);
	assert_string_equal(res->placements[0].node_id, "n2"); /* zone a has 2 */
	sched_result_free(res);
	/* n1 moves to zone c, n2 has 1 in zone b; add n3 in b: zone c (2) vs b (1): b wins */
	fx_node(s, "n1", 8192, 8192, "c");
	fx_node(s, "n3", 8192, 8192, "b");
	res = fx_place(s, p, "u", 1);
	assert_true(strcmp(res->placements[0].node_id, "n1") != 0);
	sched_result_free(res);
	/* b now has 2, c has 2; make n1 zone d with nobody else: its 2 tasks go along */
	fx_node(s, "n1", 8192, 8192, "d");
	fx_node(s, "n4", 8192, 8192, "e");
	res = fx_place(s, p, "v", 1);
	assert_string_equal(res->placements[0].node_id, "n4");
	sched_result_free(res);
	/* a node put that fails leaves the node as it was */
	struct sched_attr dup[] = { { "x", "1" }, { "x", "2" } };
	struct sched_node_spec bad = { .id = "n4", .cpu = 1, .memory = 1, .attrs = dup, .n_attrs = 2 };
	struct berth_error *e = NULL;
	assert_int_equal(sched_node_put(s, &bad, &e), -EINVAL);
	assert_string_equal(e->msg, "node 'n4': attribute 'x' given twice");
	berth_error_free(e);
	res = fx_place(s, p, "w", 1);
	assert_string_equal(res->placements[0].node_id, "n4"); /* still zone e, 1 task: least */
	sched_result_free(res);
	/* removing a node removes its tasks */
	size_t before = sched_task_count(s);
	assert_int_equal(sched_node_remove(s, "n1", NULL), 0);
	assert_int_equal(sched_task_count(s), before - 2);
	assert_null(sched_task_node(s, "w1"));
	assert_int_equal(sched_node_remove(s, "n1", NULL), -ENOENT);
	assert_int_equal(sched_node_count(s), 3);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

/* A removed node's slot and column entries are reused by the next node; reserving keeps them right. */
static void test_slot_reuse_and_reserve(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(1);
	fx_node(s, "n1", 1024, 1024, "a");
	fx_node(s, "n2", 1024, 1024, "b");
	struct sched_attr in_a[] = { { "ecs.availability-zone", "a" } };
	struct sched_request r = { .cpu = 1, .node_selector = in_a, .n_node_selector = 1 };
	struct sched_prepared *p = fx_prepare(s, &r); /* gives the zone key a column */
	assert_int_equal(sched_node_remove(s, "n1", NULL), 0);
	struct sched_result *res = fx_place(s, p, "t", 1);
	assert_string_equal(res->message, "0/1 nodes: 1 node selector mismatch");
	sched_result_free(res);
	fx_node(s, "n3", 1024, 1024, "c"); /* takes n1's slot */
	res = fx_place(s, p, "u", 1);
	assert_string_equal(res->message, "0/2 nodes: 2 node selector mismatch");
	sched_result_free(res);
	sched_snapshot_reserve(s, 1000, 5000);
	char id[24];
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		fx_node(s, id, 1024, 1024, i == 150 ? "a" : "d");
	}
	res = fx_place(s, p, "v", 2);
	assert_int_equal(res->n_placed, 2);
	assert_int_equal(fx_on(res, "m150"), 2);
	sched_result_free(res);
	assert_int_equal(sched_node_count(s), 202);
	sched_prepared_free(p);
	sched_snapshot_free(s);
}

/* Sampling large clusters never changes what is feasible, and failures count every node. */
static void test_sampling_keeps_filters_exact(void **state)
{
	struct sched_snapshot *s = sched_snapshot_new(9);
	char id[24];
	for (int i = 0; i < 600; i++) {
		snprintf(id, sizeof(id), "n%03d", i);
		fx_node(s, id, 1024, 1024, i % 100 == 7 ? "gold" : "plain");
	}
	struct sched_constraint c[] = { { SCHED_DISTINCT_INSTANCE, NULL },
					{ SCHED_MEMBER_OF, "attribute:ecs.availability-zone == gold" } };
	struct sched_request r = { .group = "g", .cpu = 1, .constraints = c, .n_constraints = 2 };
	struct sched_result *res = fx_run(s, &r, "t", 7);
	assert_int_equal(res->n_placed, 6); /* the 6 gold nodes, found wherever the cursor is */
	assert_string_equal(res->message, "0/600 nodes: 594 memberOf constraint unsatisfied, "
					  "6 distinctInstance: group already on node");
	sched_result_free(res);
	sched_set_sample(s, 100, 0);
	struct sched_strategy bp[] = { { SCHED_BINPACK, "memory" } };
	fx_task(s, "fat", "n300", NULL, 0, 1000, 0);
	struct sched_request rb = { .cpu = 1, .memory = 10, .strategies = bp, .n_strategies = 1 };
	res = fx_run(s, &rb, "b", 1);
	assert_string_equal(res->placements[0].node_id, "n300"); /* exact: the fullest of all 600 */
	sched_result_free(res);
	sched_snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resources_table),
		cmocka_unit_test(test_resources_accumulate_and_release),
		cmocka_unit_test(test_task_limit),
		cmocka_unit_test(test_ports_static_and_dynamic),
		cmocka_unit_test(test_excluded_nodes_and_message),
		cmocka_unit_test(test_empty_cluster),
		cmocka_unit_test(test_binpack_memory_and_cpu),
		cmocka_unit_test(test_binpack_ties),
		cmocka_unit_test(test_spread_zone_3_3_3),
		cmocka_unit_test(test_spread_zone_then_instance),
		cmocka_unit_test(test_service_default_strategies),
		cmocka_unit_test(test_random_is_seeded),
		cmocka_unit_test(test_distinct_instance),
		cmocka_unit_test(test_member_of),
		cmocka_unit_test(test_prepare_errors),
		cmocka_unit_test(test_place_argument_errors),
		cmocka_unit_test(test_explain_node),
		cmocka_unit_test(test_place_on_named_node),
		cmocka_unit_test(test_node_put_reindexes),
		cmocka_unit_test(test_slot_reuse_and_reserve),
		cmocka_unit_test(test_sampling_keeps_filters_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
