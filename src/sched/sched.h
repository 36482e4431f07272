/*
 * sched.h - the cluster scheduler: a pure library over an in-memory snapshot.
 *
 * No I/O, no threads, no globals: everything lives in a `struct sched_snapshot`
 * that the control plane keeps up to date incrementally (nodes and placed
 * tasks come and go in O(1) amortised / O(attributes) each; nothing is ever
 * rebuilt). A placement request is first *prepared* (expressions parsed,
 * strings interned, strategies validated: errors name the field and, for the
 * cluster query language, the position) and then placed any number of times.
 *
 * Semantics: Amazon ECS placement (binpack/spread/random strategies as ordered
 * keys, distinctInstance and memberOf constraints with the cluster query
 * language) and Kubernetes scheduling on the same nodes (node attributes are
 * the labels): node selectors, required/preferred node affinity, task-group
 * affinity and anti-affinity, taints and tolerations, topology spread
 * constraints, priority and preemption. docs/scheduler.md is the reference.
 *
 * Determinism: every random choice comes from the snapshot's seed and a
 * counter, so the same sequence of calls gives the same answers.
 *
 * Threads: a snapshot and the prepared requests made from it are used by one
 * thread at a time (the caller locks).
 *
 * Errors: functions return >= 0 or -errno and fill `err` (may be NULL) as
 * common/error.h describes; outputs (`ret_*`) are untouched on failure.
 * "Cannot place" is not an error: it is a result with an explanation.
 */
#ifndef BERTH_SCHED_SCHED_H
#define BERTH_SCHED_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Limits on user-controlled sizes (validated in sched_node_put/sched_prepare). */
#define SCHED_MAX_STRATEGIES  5    /* ECS allows 5 placementStrategy entries */
#define SCHED_MAX_CONSTRAINTS 10   /* ECS allows 10 placementConstraints */
#define SCHED_MAX_EXPRESSION  2000 /* ECS: an expression has at most 2000 characters */
#define SCHED_MAX_ATTRS       128  /* attributes (labels) per node */
#define SCHED_MAX_TAINTS      32
#define SCHED_MAX_PORTS       100  /* host ports per task */
#define SCHED_MAX_TERMS       32   /* affinity terms, tolerations, spread constraints each */
#define SCHED_MAX_COUNT       1000 /* tasks per sched_place call */

struct sched_snapshot;
struct sched_prepared;

/* ---- nodes ------------------------------------------------------------ */

enum sched_node_status {
	SCHED_NODE_ACTIVE = 0,
	SCHED_NODE_DRAINING,
	SCHED_NODE_INACTIVE,
};

enum sched_taint_effect {
	SCHED_NO_SCHEDULE = 0,
	SCHED_PREFER_NO_SCHEDULE,
	SCHED_NO_EXECUTE,
};

/* One attribute (ECS) / label (Kubernetes). value NULL: a name-only attribute. */
struct sched_attr {
	const char *name;
	const char *value;
};

struct sched_taint {
	const char *key;
	const char *value; /* may be NULL */
	enum sched_taint_effect effect;
	int64_t added_at; /* unix seconds; NoExecute tolerationSeconds count from here */
};

struct sched_node_spec {
	const char *id;                 /* container instance id, unique, required (subject `instanceId`) */
	const char *ec2_instance_id;    /* NULL: same as id */
	int32_t cpu;                    /* registered cpu units (1024 per core) */
	int32_t memory;                 /* registered memory, MiB */
	uint32_t max_tasks;             /* 0: no per-node task limit */
	uint16_t port_min, port_max;    /* dynamic host port range; 0,0: 49153-65535 (ECS) */
	const uint16_t *reserved_ports; /* never handed out (ECS: 22, 2375, 2376, 51678, 51679) */
	size_t n_reserved_ports;
	enum sched_node_status status;
	bool agent_connected;
	const char *agent_version; /* may be NULL */
	int64_t registered_at;     /* unix seconds */
	const struct sched_attr *attrs;
	size_t n_attrs;
	const struct sched_taint *taints;
	size_t n_taints;
};

struct sched_snapshot *sched_snapshot_new(uint64_t seed);
/*
 * Size the tables for this many nodes and tasks (a server loading its store
 * knows): growth doubles them, and a doubling of a 100,000-task table costs
 * one decision a few milliseconds. Optional; never shrinks.
 */
void sched_snapshot_reserve(struct sched_snapshot *s, size_t nodes, size_t tasks);
/* Frees everything, also prepared requests' cached data (not the prepared objects). NULL ok. */
struct sched_snapshot *sched_snapshot_free(struct sched_snapshot *s);

/*
 * Add a node, or replace the node with the same id (its placed tasks stay and
 * keep their resources; a node made smaller than its tasks is over-committed
 * and gets nothing new). All strings are copied. -EINVAL on invalid specs.
 */
int sched_node_put(struct sched_snapshot *s, const struct sched_node_spec *spec, struct berth_error **err);
/* Change status and agent connection only (O(1) plus index updates). -ENOENT if unknown. */
int sched_node_set_status(struct sched_snapshot *s, const char *id, enum sched_node_status status,
			  bool agent_connected, struct berth_error **err);
/* Remove a node and every task placed on it. -ENOENT if unknown. */
int sched_node_remove(struct sched_snapshot *s, const char *id, struct berth_error **err);
size_t sched_node_count(const struct sched_snapshot *s);

/* ---- placed tasks ----------------------------------------------------- */

enum sched_toleration_op {
	SCHED_TOL_EQUAL = 0,
	SCHED_TOL_EXISTS,
};

struct sched_toleration {
	const char *key; /* NULL or "" with EXISTS: tolerates every taint */
	enum sched_toleration_op op;
	const char *value; /* EQUAL only */
	int effect;        /* an enum sched_taint_effect, or -1 for every effect */
	int64_t seconds;   /* NoExecute: tolerate for this long after the taint was added; -1: forever */
};

/* A task bound to a node (running, or placed and not yet running). */
struct sched_task_spec {
	const char *id;        /* unique, required */
	const char *node_id;   /* required, must exist */
	const char *group;     /* ECS task group ("service:web", "family:web"); NULL: none */
	int32_t cpu;           /* cpu units held */
	int32_t memory;        /* MiB held (the reservation when one is set, else the hard limit) */
	const uint16_t *ports; /* host ports held */
	size_t n_ports;
	int32_t priority;
	int64_t started_at; /* unix seconds; preemption prefers the newest among equals */
	const struct sched_toleration *tolerations; /* for NoExecute evictions */
	size_t n_tolerations;
	/* Its required anti-affinity terms (others are ignored): tasks placed later keep away. */
	const struct sched_task_affinity *anti_affinity;
	size_t n_anti_affinity;
};

/* Account a task on its node. -EEXIST for a known id, -ENOENT for an unknown node. */
int sched_task_add(struct sched_snapshot *s, const struct sched_task_spec *t, struct berth_error **err);
/* Release a task's resources. -ENOENT if unknown. */
int sched_task_remove(struct sched_snapshot *s, const char *id, struct berth_error **err);
size_t sched_task_count(const struct sched_snapshot *s);
/* The node a task is on (borrowed, valid until the node is removed), or NULL. */
const char *sched_task_node(const struct sched_snapshot *s, const char *task_id);

/*
 * Disruption budget of a task group, as Kubernetes' PodDisruptionBudget
 * status.disruptionsAllowed: preemption never stops more than `allowed` tasks
 * of `group` in one decision. allowed < 0 removes the budget.
 */
void sched_group_set_budget(struct sched_snapshot *s, const char *group, int32_t allowed);
/* The group's budget, or -1 without one. */
int32_t sched_group_budget(const struct sched_snapshot *s, const char *group);

/* ---- requests --------------------------------------------------------- */

enum sched_strategy_type {
	SCHED_BINPACK = 0, /* field "cpu" or "memory": least remaining first */
	SCHED_SPREAD,      /* field "instanceId"/"host", "attribute:NAME" or a bare attribute name */
	SCHED_RANDOM,
};

struct sched_strategy {
	enum sched_strategy_type type;
	const char *field;
};

enum sched_constraint_type {
	SCHED_DISTINCT_INSTANCE = 0,
	SCHED_MEMBER_OF,
};

struct sched_constraint {
	enum sched_constraint_type type;
	const char *expression; /* memberOf: cluster query language */
};

enum sched_match_op {
	SCHED_OP_IN = 0,
	SCHED_OP_NOT_IN,
	SCHED_OP_EXISTS,
	SCHED_OP_DOES_NOT_EXIST,
	SCHED_OP_GT, /* one value, integers */
	SCHED_OP_LT,
};

/* A Kubernetes NodeSelectorRequirement over node attributes. */
struct sched_match_expr {
	const char *key;
	enum sched_match_op op;
	const char *const *values;
	size_t n_values;
};

/* A node selector term: its expressions ANDed. Required terms are ORed. */
struct sched_node_term {
	const struct sched_match_expr *exprs;
	size_t n_exprs;
	int32_t weight; /* preferred terms only: 1-100 */
};

/*
 * Task-group (inter-pod) affinity: the tasks it refers to are those of
 * `groups` (berth selects tasks by their ECS group, not by free labels).
 */
struct sched_task_affinity {
	const char *const *groups;
	size_t n_groups;
	const char *topology_key; /* "instanceId", or an attribute name */
	bool anti;
	bool required;
	int32_t weight; /* preferred only: 1-100 */
};

struct sched_spread_constraint {
	int32_t max_skew;          /* >= 1 */
	const char *topology_key;  /* "instanceId", or an attribute name */
	bool do_not_schedule;      /* whenUnsatisfiable: DoNotSchedule (true) / ScheduleAnyway */
	int32_t min_domains;       /* 0: unset; DoNotSchedule only */
	const char *const *groups; /* the tasks counted; none: the request's own group */
	size_t n_groups;
};

struct sched_request {
	const char *group;            /* ECS task group of the new tasks; NULL: "family:<family>" */
	const char *family;           /* task definition family; may be NULL */
	int32_t cpu;                  /* cpu units */
	int32_t memory;               /* hard limit, MiB (0: none) */
	int32_t memory_reservation;   /* soft, MiB (0: none); what is accounted when set */
	const uint16_t *static_ports; /* host ports the task must get */
	size_t n_static_ports;
	uint32_t n_dynamic_ports; /* host ports to assign from the node's dynamic range */
	const struct sched_strategy *strategies;
	size_t n_strategies;
	const struct sched_constraint *constraints;
	size_t n_constraints;
	const struct sched_attr *node_selector; /* every pair must match */
	size_t n_node_selector;
	const struct sched_node_term *required_terms;
	size_t n_required_terms;
	const struct sched_node_term *preferred_terms;
	size_t n_preferred_terms;
	const struct sched_task_affinity *affinities;
	size_t n_affinities;
	const struct sched_toleration *tolerations;
	size_t n_tolerations;
	const struct sched_spread_constraint *spread;
	size_t n_spread;
	int32_t priority;
	bool preempt; /* may stop lower-priority tasks when nothing fits */
	int64_t now;  /* unix seconds: the placed tasks' started_at */
};

/*
 * Validate and compile a request against a snapshot. The prepared request
 * copies what it needs from `req`, stays valid while the snapshot lives, and
 * adapts to later snapshot changes. -EINVAL with a message naming the field
 * (for memberOf: "placementConstraints[1]: position 17: expected ..."),
 * -E2BIG past the limits above.
 */
int sched_prepare(struct sched_snapshot *s, const struct sched_request *req, struct sched_prepared **ret,
		  struct berth_error **err);
struct sched_prepared *sched_prepared_free(struct sched_prepared *p);

/*
 * ECS service default: spread over attribute:ecs.availability-zone first, then
 * the user's strategies, or spread(instanceId) when there are none ("AZ
 * balanced spread"). Writes at most SCHED_MAX_STRATEGIES entries to out (which
 * borrows the strings of `user`) and returns how many.
 */
size_t sched_service_strategies(const struct sched_strategy *user, size_t n_user,
				struct sched_strategy out[SCHED_MAX_STRATEGIES]);

/* ---- placing ---------------------------------------------------------- */

/* Why a node was rejected: the first failing filter, in this order. */
enum sched_reason {
	SCHED_R_INACTIVE = 0,
	SCHED_R_DRAINING,
	SCHED_R_DISCONNECTED,
	SCHED_R_TAINT,
	SCHED_R_NODE_SELECTOR,
	SCHED_R_NODE_AFFINITY,
	SCHED_R_MEMBER_OF,
	SCHED_R_TASK_LIMIT,
	SCHED_R_CPU,
	SCHED_R_MEMORY,
	SCHED_R_PORTS,
	SCHED_R_DISTINCT_INSTANCE,
	SCHED_R_TASK_AFFINITY,
	SCHED_R_TASK_ANTI_AFFINITY,
	SCHED_R_TOPOLOGY_SPREAD,
	SCHED_R__MAX,
};

/* Human text ("insufficient memory") and ECS failure reason ("RESOURCE:MEMORY"). */
const char *sched_reason_text(enum sched_reason r);
const char *sched_reason_ecs(enum sched_reason r);

struct sched_reason_count {
	enum sched_reason reason;
	const char *detail; /* SCHED_R_TAINT: "dedicated=gpu:NoSchedule"; else NULL */
	uint32_t nodes;
};

struct sched_placement {
	const char *task_id; /* the caller's string given to sched_place */
	const char *node_id; /* the snapshot's: valid until that node is removed */
	uint16_t *ports;     /* static ports in request order, then the dynamic ones */
	size_t n_ports;
	/* Why here: the decision examined this many nodes and scored the feasible
	 * ones (a sample on large clusters); the others, per first failing filter. */
	uint32_t examined, feasible;
	uint32_t rejected[SCHED_R__MAX];
};

/* Strings owned by the result. */
struct sched_victim {
	const char *task_id;
	const char *group; /* may be NULL */
	int32_t priority;
};

struct sched_result {
	size_t n_placed; /* placements[0..n_placed) */
	struct sched_placement *placements;
	/* When n_placed < the count asked: why the next task did not fit. */
	uint32_t nodes_total;
	struct sched_reason_count *reasons; /* most nodes first */
	size_t n_reasons;
	const char *ecs_reason; /* reason of most nodes, ECS spelling; NULL when all placed */
	char *message;          /* "0/10 nodes: 6 insufficient memory, 3 DRAINING"; NULL when all placed */
	/* Preemption (request.preempt): stop these, then place again (on `nominated_node`, owned). */
	const char *nominated_node;
	struct sched_victim *victims;
	size_t n_victims;
};

struct sched_result *sched_result_free(struct sched_result *r);

/*
 * Place up to `count` tasks with ids task_ids[0..count). Each placed task is
 * added to the snapshot at once (as sched_task_add would), so later tasks of
 * the same call, and later calls, see it; the caller removes it with
 * sched_task_remove if it cannot bind it. Placement stops at the first task
 * that does not fit: the result then explains why and, when the request may
 * preempt, names victims. Always returns a result unless the arguments are
 * invalid (-EINVAL: count 0 or > SCHED_MAX_COUNT, duplicate ids).
 *
 * For speed on large clusters a decision scores a rotating sample of the
 * feasible nodes (kube-scheduler's percentageOfNodesToScore): see
 * sched_set_sample().
 * Filters are always exact and a failure is only reported after every node
 * was examined, so explanations are complete.
 */
int sched_place(struct sched_snapshot *s, struct sched_prepared *p, const char *const *task_ids, size_t count,
		struct sched_result **ret, struct berth_error **err);

/*
 * Place one task on the node `node_id` if every filter passes there (ECS
 * StartTask: the caller names the instance). Otherwise the result explains
 * that node alone ("0/1 nodes: 1 insufficient memory"); no preemption.
 * -ENOENT for an unknown node, -EINVAL/-EEXIST as sched_place.
 */
int sched_place_on(struct sched_snapshot *s, struct sched_prepared *p, const char *node_id,
		   const char *task_id, struct sched_result **ret, struct berth_error **err);

/*
 * How many feasible nodes a decision scores before it stops looking:
 * max(min_feasible, nodes * percent / 100); min_feasible 0 means 100
 * (kube-scheduler's minFeasibleNodesToFind). The default, percent 0, scores
 * 100 feasible nodes however large the cluster; percent 100 scores every
 * feasible node (exact ECS semantics, always the case up to 100 nodes);
 * sched_sample_kube(nodes) is kube-scheduler's adaptive percentage
 * (50 - nodes/125, at least 5).
 */
uint32_t sched_sample_kube(size_t nodes);
void sched_set_sample(struct sched_snapshot *s, uint32_t percent, uint32_t min_feasible);

/*
 * Why not this node: every filter that rejects it for `p` (not only the
 * first) as "; "-joined text, or "feasible" plus its score keys. Caller frees
 * *ret_text. ret_feasible may be NULL. -ENOENT for an unknown node.
 */
int sched_explain_node(struct sched_snapshot *s, struct sched_prepared *p, const char *node_id,
		       bool *ret_feasible, char **ret_text, struct berth_error **err);

/* ---- NoExecute, scale-in, rebalancing --------------------------------- */

struct sched_eviction {
	char *task_id;
	char *node_id;
	int64_t evict_at;  /* unix seconds: <= now means at once */
	char *taint;       /* the taint that decides: "dedicated=gpu:NoExecute" */
	int64_t tolerated; /* the tolerationSeconds that decide, -1: not tolerated at all */
};

/*
 * Tasks that NoExecute taints evict: for every task on a node with a
 * NoExecute taint it does not tolerate forever, when it must go (the earliest
 * over the taints: taint.added_at + tolerationSeconds, or `now` when not
 * tolerated at all). node_id NULL: every node. Sorted by evict_at, then id.
 */
int sched_noexecute_evictions(struct sched_snapshot *s, const char *node_id, int64_t now,
			      struct sched_eviction **ret, size_t *ret_n, struct berth_error **err);
void sched_evictions_free(struct sched_eviction *v, size_t n);

/*
 * Scale-in: which `count` tasks of `group` to stop so that every spread key
 * stays balanced: for each task, the domain with the most tasks of the group
 * under keys[0], within it under keys[1], ... then the node with the most,
 * then the lowest priority, then the newest. keys NULL: the group's ECS
 * default (availability zone, then instanceId). Returns the ids (caller frees
 * the array and each id); fewer than count if the group is smaller. The
 * snapshot is unchanged.
 */
int sched_scale_in(struct sched_snapshot *s, const char *group, const char *const *keys, size_t n_keys,
		   size_t count, char ***ret_ids, size_t *ret_n, struct berth_error **err);

struct sched_move {
	char *task_id; /* stop this task ... */
	char *from_node;
	char *to_node; /* ... after a replacement started here (start-before-stop) */
};

/*
 * Rebalance a group placed with `p`: at most max_moves moves, each of which
 * strictly improves the group's balance (spread keys: max-min tasks per
 * domain; binpack: fewer nodes used). Each replacement is placed with the
 * full request semantics while the old task still holds its resources (start
 * before stop). The snapshot is unchanged afterwards.
 */
int sched_rebalance(struct sched_snapshot *s, struct sched_prepared *p, size_t max_moves,
		    struct sched_move **ret, size_t *ret_n, struct berth_error **err);
void sched_moves_free(struct sched_move *m, size_t n);

/* `berth bench-scheduler` (src/sched/bench.c; with --store, server/sched-bench.c). */
int sched_bench_main(int argc, char **argv);
/* Shared with the durable bench: this process's RSS (KiB, -1 unknown), a qsort comparator of uint64_t. */
long sched_bench_rss_kib(void);
int sched_bench_cmp_u64(const void *a, const void *b);

#endif
