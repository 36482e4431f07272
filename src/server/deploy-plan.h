/*
 * deploy-plan.h - the arithmetic of ECS service deployments, pure (no I/O,
 * no store): rolling-update budgets from minimumHealthyPercent and
 * maximumPercent, the circuit breaker's failure threshold, the launch backoff
 * of crash-looping tasks and the scale-in choice that keeps a service's tasks
 * balanced over zones and nodes. The controller (deploy.c) counts tasks and
 * asks these functions what to do; tests/unit/test-server-deploy.c checks
 * them against ECS's documented numbers.
 */
#ifndef BERTH_SERVER_DEPLOY_PLAN_H
#define BERTH_SERVER_DEPLOY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ECS's defaults (REPLICA; DAEMON uses 0 and 100). */
#define DEPLOY_DEFAULT_MAX_PERCENT 200
#define DEPLOY_DEFAULT_MIN_HEALTHY 100
#define DEPLOY_DAEMON_MAX_PERCENT  100
#define DEPLOY_DAEMON_MIN_HEALTHY  0
/*
 * A task without health checks counts as healthy once it has been RUNNING
 * this long (Swarm's update monitor): a task that crashes right after its
 * start never replaces a working one.
 */
#define DEPLOY_MONITOR_SEC         3.0
/* Launch backoff: 1 s after the first failure, doubling, at most this long. */
#define DEPLOY_BACKOFF_MAX_SEC     30

/* Circuit breaker: clamp(ceil(0.5 * desired), 3, 200) failed tasks trip it (ECS's documented rule). */
int64_t server_deploy_failure_threshold(int64_t desired);

/* Seconds to wait before the next launch after `failures` consecutive failed tasks (0: none). */
double server_deploy_backoff(int64_t failures);

/* The most tasks that may exist during a deployment: floor(desired * max% / 100) (ECS rounds down). */
int64_t server_deploy_max_total(int64_t desired, int64_t max_percent);
/* The fewest healthy tasks to keep: ceil(desired * min% / 100) (ECS rounds up). */
int64_t server_deploy_min_healthy(int64_t desired, int64_t min_percent);

/* What one controller pass may do for a REPLICA service. */
struct deploy_counts {
	int64_t desired;     /* service desiredCount */
	int64_t max_percent; /* deploymentConfiguration */
	int64_t min_percent;
	int64_t total;          /* tasks that will run: desired RUNNING, not draining, every deployment */
	int64_t healthy;        /* of those: RUNNING and (health-checked ? HEALTHY : any) */
	int64_t primary_active; /* tasks of the primary deployment that stay (not on a DRAINING node) */
};
struct deploy_step {
	int64_t start;       /* new tasks for the primary deployment */
	int64_t stop_budget; /* healthy tasks that may be stopped (old, surplus, drained) */
	bool floor_met;      /* healthy >= min_healthy: the floor holds without the tasks not yet healthy */
};
/*
 * One rolling step: start = min(desired - primary_active, max_total - total)
 * (never negative), stop_budget = healthy - min_healthy (never negative).
 * Which tasks of old deployments may be stopped outside the budget is
 * server_deploy_free_stop's business.
 */
void server_deploy_rolling_step(const struct deploy_counts *in, struct deploy_step *out);

/* Where a wanted, not draining task stands (server_deploy_readiness). */
enum deploy_readiness {
	DEPLOY_NOT_RUNNING, /* not RUNNING yet (PROVISIONING, PENDING, ACTIVATING): never served */
	DEPLOY_WARMING,     /* RUNNING, health not known yet: inside the monitor time, or a container
			     * health check that has not passed yet (UNKNOWN: not run, or not reported yet) */
	DEPLOY_HEALTHY,     /* RUNNING, HEALTHY when health-checked, and healthy in its target groups
			     * when it has any (as ECS); else RUNNING for DEPLOY_MONITOR_SEC */
	DEPLOY_FAILING,     /* RUNNING, failing its container health checks or the load balancers' */
};
struct deploy_task_facts {
	bool running;       /* lastStatus RUNNING */
	bool checked;       /* an essential container of its definition has a healthCheck */
	const char *health; /* healthStatus: "HEALTHY", "UNHEALTHY", "UNKNOWN" or NULL */
	double running_for; /* seconds since startedAt */
	bool elb_failed;    /* most connected nodes' load balancers fail its target */
	bool load_balanced; /* in its service's target groups (not draining), checked by a load balancer */
	bool elb_pending;   /* ... and it is not healthy in each of them yet (initial, or not checked yet) */
};
enum deploy_readiness server_deploy_readiness(const struct deploy_task_facts *f);
const char *server_deploy_readiness_name(enum deploy_readiness r);
/*
 * Whether a task of a replaced deployment (or on a leaving node) may be
 * stopped outside step's stop budget: when it is no capacity (not RUNNING
 * yet, or failing); while it warms up only when the healthy tasks already
 * meet minimumHealthyPercent without it (a task whose health is merely not
 * known yet, e.g. late reports under load, may be serving: stopping it
 * could empty the service before any new task is healthy); a healthy one
 * never (the budget decides).
 */
bool server_deploy_free_stop(enum deploy_readiness r, const struct deploy_step *step);

#define DEPLOY_MAX_KEYS 4 /* spread attributes besides zone and node */

/* A task as the scale-in choice sees it. */
struct deploy_task {
	const char *zone; /* ecs.availability-zone of its node; NULL: none */
	const char *node;
	double created; /* newer first among equals */
	bool candidate; /* may be chosen */
	/* the node's values of the service's other spread attributes, in strategy order (NULL: none) */
	const char *keys[DEPLOY_MAX_KEYS];
};
/*
 * Choose `count` candidates to stop so that the remaining tasks (every task
 * counts, candidates or not) stay balanced on every spread key: each pick is
 * a candidate in the zone with the most remaining tasks, within it in the
 * domain of keys[0] with the most, ..., then on the node with the most, then
 * the newest. Writes the chosen indexes to ret_idx (room for count) and
 * returns how many (fewer when there are fewer candidates).
 */
size_t server_deploy_scale_in(const struct deploy_task *tasks, size_t n, size_t count, size_t *ret_idx);

/* "ecs-svc/" and 19 digits from the 64-bit random value r (ECS's deployment and task set ids). */
void server_deploy_id_format(uint64_t r, char out[28]);

#endif
