/*
 * plan.h - what `berth apply` must do to make a cluster match a compose
 * file: the difference between the desired objects (stack_compose_load) and the
 * stack's current objects (read from the ECS API by the caller), as an
 * ordered list of steps, printable as a diff. Pure: no I/O.
 *
 * The current state, as the caller gathers it:
 *   {"services": {ECSNAME: {"service": DescribeServices item (with tags),
 *                           "taskDefinition": DescribeTaskDefinition's taskDefinition,
 *                           "tags": that task definition's tags}},
 *    "jobs": {ECSNAME: {"taskDefinition", "tags"}},     (latest revision of the job's family)
 *    "loadBalancers": [BerthDescribeLoadBalancers items, every stack's]}
 *
 * Each step: {"op": "create"|"update"|"delete"|"run",
 *             "kind": "taskdef"|"service"|"lb"|"job",
 *             "name", "service" (compose name),
 *             "changes": [{"field", "old", "new"}]   (update: what differs)
 *             ... and what executing it needs ("request", "lb", "deps")}
 * in execution order: task definitions, new load balancers, services in
 * dependency order (creates and updates), jobs, then deletions (services
 * before the load balancers they use). A step "delete lb" of a pruned
 * service carries "after" = the service's name: it runs once that service
 * is gone.
 */
#ifndef BERTH_STACK_PLAN_H
#define BERTH_STACK_PLAN_H

#include <stdio.h>

#include <jansson.h>

#include "common/error.h"

struct stack_plan_opts {
	bool prune;          /* delete services (and their load balancers, jobs) not in the file */
	const char *cluster; /* the cluster's name, for conflicting listeners */
};

/*
 * Compute the plan. -EINVAL with a message when the file cannot be applied
 * at all (a published port another load balancer listens on, a service
 * whose mode changed: Swarm refuses both too). *ret: {"steps": [...],
 * "warnings": [...]} (what --prune would remove when not given, ...).
 */
int stack_plan(const json_t *desired, const json_t *current, const struct stack_plan_opts *o, json_t **ret,
	       struct berth_error **err);

/* The value of key in an ECS tags list [{key, value}], or NULL. Borrowed. */
const char *stack_tag_value(const json_t *tags, const char *key);

/* Number of steps that change something (0: "no changes"). */
size_t stack_plan_changes(const json_t *plan);

/* Print the plan as a diff: "+ service st_web", "~ service st_web" with "    field: old -> new" lines. */
void stack_plan_print(const json_t *plan, FILE *f);

/*
 * The differences between want and have as {"field", "old", "new"} items
 * appended to changes (path prefixes field names). Objects compare by
 * want's keys (server-side defaults in have are not differences) plus the
 * keys in managed that have has and want lacks; arrays compare whole.
 */
void stack_diff(const char *path, const json_t *want, const json_t *have, const char *const *managed,
		json_t *changes);

#endif
