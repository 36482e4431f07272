/*
 * lb.h - load balancers and service discovery, the control-plane half
 * (docs/lb.md). The server keeps load balancer objects in the store and
 * computes, from the task and service records, which tasks are targets of a
 * load balancer and which names resolve to which addresses; agents get both
 * through the dataplane long poll (GET /agent/v1/dataplane) and run HAProxy
 * and the resolver from it.
 *
 * Store records (every value JSON):
 *   /berth/lb/loadbalancers/NAME          the load balancer (listener, cluster, its target group)
 *   /berth/lb/targetgroups/NAME           the target group (ARN, port, protocol, health check,
 *                                         deregistrationDelay); svc reads it to validate
 *                                         CreateService loadBalancers
 *   /berth/lb/certs/NAME                  the listener's TLS certificate and key (never described)
 *   /berth/lb/ports/CLUSTER/PORT          claim of a listener port in a cluster
 *   /berth/lb/attachments/NAME/CLUSTER/SERVICE   a service's tasks are targets (berth lb attach)
 *   /berth/targethealth/CLUSTER/NODEID    the node's HAProxy view of its targets (agent reports;
 *                                         outside /berth/lb/ so a report never recomputes the
 *                                         dataplane)
 *
 * The pure parts below (validation, membership, discovery) take records as
 * JSON and are unit-tested in tests/unit/test-server-lb.c.
 */
#ifndef BERTH_SERVER_LB_H
#define BERTH_SERVER_LB_H

#include <jansson.h>
#include <stdbool.h>

#define LB_PREFIX              "/berth/lb/"
#define LB_DEFAULT_DEREG_DELAY 10
#define LB_DEFAULT_INTERVAL    5
#define LB_DEFAULT_HEALTHY     2
#define LB_DEFAULT_UNHEALTHY   2
#define LB_NAME_MAX            32 /* ELB's limit for load balancer and target group names */
#define LB_PEM_MAX             (64 << 10)

/* ELB's rule: 1-32 letters, digits and hyphens, not starting or ending with a hyphen. */
bool server_lb_name_valid(const char *s);
/* A health check path: starts with '/', at most 1024 printable characters, no blanks. */
bool server_lb_health_path_valid(const char *s);

/*
 * Whether a task's definition has an essential container with a health check
 * (then a target must be HEALTHY, not just not UNHEALTHY). arn is the task's
 * taskDefinitionArn.
 */
typedef bool (*lb_has_checks_fn)(void *userdata, const char *taskdef_arn);

struct lb_membership {
	const char *cluster;       /* the load balancer's cluster */
	const char *tg_arn;        /* its target group */
	const json_t *services;    /* service records of the cluster (array, may be NULL) */
	const json_t *attachments; /* attachment records of this target group (array, may be NULL) */
	const json_t *nodes;       /* node records (array: nodeId, address) for bridge/host targets */
	const json_t *instances;   /* instance records of the cluster (containerInstanceArn, nodeId) */
	lb_has_checks_fn has_checks;
	void *userdata;
};

/*
 * The targets of the target group among tasks (records of the cluster), in
 * task-id order: [{"id": TASKID, "taskArn", "serviceName", "address",
 * "port", "state"}], state "healthy" (in rotation), "draining" (drainingAt
 * set, still running: no new connections) or, with all_states, also
 * "initial" (not yet RUNNING, or health checks not yet passing) and
 * "unhealthy". A task is a member when its group is service:NAME and the
 * service record of NAME lists tg_arn in loadBalancers, or an attachment
 * names NAME; the port is the containerPort (awsvpc: the task's address) or
 * the matching hostPort (bridge/host: the node's address). Tasks without an
 * address yet are "initial" (skipped unless all_states).
 */
json_t *server_lb_targets(const struct lb_membership *m, const json_t *tasks, bool all_states);

/*
 * Service discovery of a cluster: {"SERVICE": ["IP", ...]} for every awsvpc
 * task whose group is service:SERVICE, RUNNING (last and desired), not
 * UNHEALTHY (HEALTHY when it has checks), without drainingAt. Addresses are
 * sorted and unique; services without one are absent.
 */
json_t *server_lb_discovery(const json_t *tasks, lb_has_checks_fn has_checks, void *userdata);

/*
 * Stacks (docs/stack.md): the namespace a task's definition puts its
 * containers in (the label com.docker.stack.namespace, as Swarm labels a
 * stack's containers), or NULL. arn is the task's taskDefinitionArn.
 */
typedef const char *(*lb_stack_fn)(void *userdata, const char *taskdef_arn);
#define LB_STACK_LABEL "com.docker.stack.namespace"

/*
 * Add to names (server_lb_discovery's answer) the short names of stack services,
 * as a stack's network gives them in Swarm: the service STACK_X whose tasks
 * are in namespace STACK also answers as X.STACK (the stack's tasks search
 * STACK, so `X` finds it; other stacks' X do not collide).
 */
void server_lb_discovery_stack_names(json_t *names, const json_t *tasks, lb_stack_fn stack_of,
				     void *userdata);

#define LB_HEALTH_PREFIX "/berth/targethealth/"
#define LB_HEALTH_MAX    4096 /* targets in one node's report */

/*
 * Check an agent's target health report {"loadBalancers": {NAME: {TASKID:
 * {"state", "reason"?, "description"?}}}}: names and ids valid, state one of
 * healthy, unhealthy, initial, draining, strings short. NULL when fine, else
 * what is wrong (static).
 */
const char *server_lb_health_report_invalid(const json_t *report);

/*
 * The targets of load balancer NAME as HAProxy sees them, from the node
 * reports (records {"nodeId", "loadBalancers"}) of the nodes alive (nodeId ->
 * true): {TASKID: {"state", "reason"?, "description"?, "nodes": {NODEID:
 * state}}}. state: "unhealthy" when more than half of the nodes reporting the
 * target fail its checks (its reason and description are the first such
 * node's), "draining" when one drains it, "healthy" when one passes it,
 * else "initial".
 */
json_t *server_lb_health_merge(const json_t *reports, const json_t *alive, const char *name);
/* Whether a node alive reports load balancer NAME at all (it runs its data plane, which checks targets). */
bool server_lb_health_served(const json_t *reports, const json_t *alive, const char *name);

/* The awsvpc IPv4 address of a task record, or NULL (borrowed). */
const char *server_lb_task_address(const json_t *task);

#endif
