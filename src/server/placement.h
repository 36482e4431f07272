/*
 * placement.h - where tasks go: the small built-in placement step of berth
 * server, behind the interface the full scheduler library (src/sched/) will
 * implement later. Filters: ACTIVE status (DRAINING nodes take nothing),
 * agent connected, cpu/memory fit, distinctInstance, memberOf with
 * "attribute:NAME == VALUE" / "!= VALUE". Order: the request's strategies in
 * turn (spread by instanceId or attribute:NAME, binpack by cpu or memory,
 * random); without any, spread by instanceId.
 * Pure (jansson only): unit-tested without a server.
 */
#ifndef BERTH_SERVER_PLACEMENT_H
#define BERTH_SERVER_PLACEMENT_H

#include <jansson.h>

#include "common/macro.h"

struct placement_node {
	const char *id;
	bool active;         /* status ACTIVE (not DRAINING/INACTIVE) */
	bool connected;      /* agentConnected */
	int64_t cpu, memory; /* remaining units / MiB; updated as tasks are placed */
	json_t *attributes;  /* ECS [{name, value}] (borrowed) */
	int group_tasks;     /* active tasks of the request's group already here; updated */
};

struct placement_request {
	int64_t cpu, memory; /* per task */
	int count;
	json_t *constraints; /* ECS placementConstraints (borrowed, may be NULL) */
	json_t *strategies;  /* ECS placementStrategy (borrowed, may be NULL) */
};

struct placement_result {
	int node;           /* index into nodes, -1: not placed */
	const char *reason; /* ECS failure reason when not placed ("RESOURCE:MEMORY", ...) */
};

/*
 * Check constraints and strategies: 0, or -EINVAL with a message in *ret_msg
 * (caller frees) naming what is wrong.
 */
int placement_check(const struct placement_request *rq, char **ret_msg);

/*
 * Place rq->count tasks on nodes; out has rq->count entries. Nodes' cpu,
 * memory and group_tasks are updated for the placed tasks. *ret_detail (may
 * be NULL) gets a summary of why nodes were refused for the first unplaced
 * task ("3 nodes: 2 insufficient memory, 1 DRAINING"), or NULL.
 */
void placement_place(const struct placement_request *rq, struct placement_node *nodes, size_t n,
		     struct placement_result *out, char **ret_detail);

#endif
