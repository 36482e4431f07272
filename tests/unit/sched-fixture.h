/* sched-fixture.h - small builders shared by the scheduler's unit tests. */
#ifndef BERTH_TESTS_SCHED_FIXTURE_H
#define BERTH_TESTS_SCHED_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "sched/sched.h"

/* A node with a zone attribute (when zone != NULL) plus `extra` attributes. */
static inline void fx_node_full(struct sched_snapshot *s, const char *id, int32_t cpu, int32_t mem,
				const char *zone, const struct sched_attr *extra, size_t n_extra,
				const struct sched_taint *taints, size_t n_taints,
				enum sched_node_status status)
{
	struct sched_attr attrs[16];
	size_t n = 0;
	if (zone)
		attrs[n++] = (struct sched_attr){ "ecs.availability-zone", zone };
	for (size_t i = 0; i < n_extra && n < 16; i++)
		attrs[n++] = extra[i];
	struct sched_node_spec spec = { .id = id,
					.cpu = cpu,
					.memory = mem,
					.status = status,
					.agent_connected = true,
					.agent_version = "1.70.0",
					.attrs = attrs,
					.n_attrs = n,
					.taints = taints,
					.n_taints = n_taints };
	struct berth_error *e = NULL;
	int r = sched_node_put(s, &spec, &e);
	if (r < 0)
		berth_error_print(e, "fx_node");
	berth_error_free(e);
	assert_int_equal(r, 0);
}

static inline void fx_node(struct sched_snapshot *s, const char *id, int32_t cpu, int32_t mem,
			   const char *zone)
{
	fx_node_full(s, id, cpu, mem, zone, NULL, 0, NULL, 0, SCHED_NODE_ACTIVE);
}

static inline void fx_task(struct sched_snapshot *s, const char *id, const char *node, const char *group,
			   int32_t cpu, int32_t mem, int32_t priority)
{
	struct sched_task_spec t = {
		.id = id, .node_id = node, .group = group, .cpu = cpu, .memory = mem, .priority = priority
	};
	assert_int_equal(sched_task_add(s, &t, NULL), 0);
}

static inline struct sched_prepared *fx_prepare(struct sched_snapshot *s, const struct sched_request *r)
{
	struct sched_prepared *p = NULL;
	struct berth_error *e = NULL;
	int ret = sched_prepare(s, r, &p, &e);
	if (ret < 0)
		berth_error_print(e, "fx_prepare");
	berth_error_free(e);
	assert_int_equal(ret, 0);
	return p;
}

/* Place `count` tasks named PREFIX-0.. and return the result (caller frees). */
static inline struct sched_result *fx_place(struct sched_snapshot *s, struct sched_prepared *p,
					    const char *prefix, size_t count)
{
	char names[64][48];
	const char *ids[64];
	assert_true(count <= 64);
	for (size_t i = 0; i < count; i++) {
		snprintf(names[i], sizeof(names[i]), "%s-%zu", prefix, i);
		ids[i] = names[i];
	}
	struct sched_result *r = NULL;
	assert_int_equal(sched_place(s, p, ids, count, &r, NULL), 0);
	return r;
}

/* How many of r's placements went to node. */
static inline size_t fx_on(const struct sched_result *r, const char *node)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_placed; i++)
		n += strcmp(r->placements[i].node_id, node) == 0;
	return n;
}

/* Prepare, place `count`, free the prepared request; returns the result. */
static inline struct sched_result *fx_run(struct sched_snapshot *s, const struct sched_request *req,
					  const char *prefix, size_t count)
{
	struct sched_prepared *p = fx_prepare(s, req);
	struct sched_result *r = fx_place(s, p, prefix, count);
	sched_prepared_free(p);
	return r;
}

#endif
