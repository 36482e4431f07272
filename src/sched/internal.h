/*
 * internal.h - the scheduler's private data structures.
 *
 * Everything is indices and interned symbols: node and task records live in
 * slot arrays (free-listed, so an index stays valid while its object lives),
 * every attribute name and value, group, id and taint string becomes a
 * uint32_t symbol (0 = none), so filters compare integers. Counting indexes
 * are kept up to date on every change instead of being recomputed:
 *   - per task group: tasks per node and, for each topology key somebody
 *     asked about, tasks per attribute value (spread, affinity, skew);
 *   - per topology key: schedulable nodes per value (the domains).
 * Maps are open-addressing hash tables with linear probing and backward-shift
 * deletion (no tombstones, so churn never degrades them).
 */
#ifndef BERTH_SCHED_INTERNAL_H
#define BERTH_SCHED_INTERNAL_H

#include <assert.h>
#include <regex.h>

#include "common/macro.h"
#include "common/util.h"
#include "sched/sched.h"

/* ---- maps (index.c) ---- */

/* uint32 -> uint32; a missing key reads as 0. */
struct u32map {
	uint32_t *keys; /* key + 1; 0 = empty slot */
	uint32_t *vals;
	uint32_t cap; /* power of two, or 0 */
	uint32_t n;
};

uint32_t sched_u32map_get(const struct u32map *m, uint32_t key);
bool sched_u32map_has(const struct u32map *m, uint32_t key);
void sched_u32map_set(struct u32map *m, uint32_t key, uint32_t val);
void sched_u32map_del(struct u32map *m, uint32_t key);
/* Add delta to the value; a result of 0 deletes the entry. Returns the new value. */
uint32_t sched_u32map_add(struct u32map *m, uint32_t key, int32_t delta);
void sched_u32map_done(struct u32map *m);
/* Iterate: for (uint32_t i = 0; sched_u32map_next(m, &i, &k, &v);) */
bool sched_u32map_next(const struct u32map *m, uint32_t *iter, uint32_t *ret_key, uint32_t *ret_val);

/* string -> uint32; keys are borrowed from their owner (who outlives the entry). */
struct strmap {
	const char **keys;
	uint32_t *hashes;
	uint32_t *vals;
	uint32_t cap;
	uint32_t n;
};

bool sched_strmap_get(const struct strmap *m, const char *key, uint32_t *ret_val);
void sched_strmap_set(struct strmap *m, const char *key, uint32_t val);
void sched_strmap_del(struct strmap *m, const char *key);
void sched_strmap_done(struct strmap *m);
/* Make room for n entries without growing again. */
void sched_strmap_reserve(struct strmap *m, uint32_t n);

/* Interned strings: symbol i (1-based) is strs[i - 1]; never freed before the snapshot. */
struct interner {
	struct strmap map;
	char **strs;
	uint32_t n, cap;
};

uint32_t sched_intern(struct interner *in, const char *s);
uint32_t sched_intern_find(const struct interner *in, const char *s); /* 0 if unknown */
static inline const char *sym_str(const struct interner *in, uint32_t sym)
{
	return sym ? in->strs[sym - 1] : "";
}
void sched_interner_done(struct interner *in);

uint64_t sched_hash64(uint64_t x); /* splitmix64 finaliser */

/* ---- snapshot (snapshot.c, tasks.c) ---- */

struct apair {
	uint32_t key, val;
};

struct itaint {
	uint32_t key, val;
	uint8_t effect;
	int64_t added_at;
};

struct itol {
	uint32_t key; /* 0: any key (EXISTS only) */
	uint32_t val;
	uint8_t op;
	int8_t effect; /* -1: any */
	int64_t seconds;
};

struct snode {
	char *id;
	uint32_t id_sym, ec2_sym, version_sym;
	int32_t cpu_total, cpu_used, mem_total, mem_used;
	uint32_t max_tasks;
	uint16_t port_min, port_max, port_cursor;
	uint8_t status;
	bool connected, alive;
	int64_t registered_at;
	struct apair *attrs; /* sorted by key */
	uint16_t n_attrs;
	uint16_t n_taints;
	struct itaint *taints;
	uint16_t *reserved; /* sorted */
	uint16_t n_reserved;
	uint16_t *ports; /* used host ports, sorted, reserved included */
	uint32_t n_ports, cap_ports;
	uint32_t n_dyn_used; /* of them inside [port_min, port_max] */
	uint32_t *tasks;     /* task slots */
	uint32_t n_tasks, cap_tasks;
};

struct stask {
	char *id;
	uint32_t node;
	uint32_t group; /* symbol or 0 */
	uint32_t pos;   /* index in its node's tasks[] */
	int32_t cpu, mem, priority;
	int64_t started_at;
	uint16_t *ports;
	uint16_t n_ports;
	uint16_t n_tols;
	struct itol *tols;
	uint32_t *rules; /* anti-affinity rules it carries (their member groups) */
	uint16_t n_rules;
	bool alive;
};

/*
 * A required anti-affinity term of running tasks against tasks of `target`
 * in domains of `key`. Its carriers are members of the synthetic group
 * `sym`, so "is a carrier in this node's domain" is a counter lookup
 * (Kubernetes checks existing pods' anti-affinity against incoming pods).
 */
struct antirule {
	uint32_t sym, target, key;
};

/* Tasks of one group per value of one key (value 0: nodes without the key). */
struct domcount {
	uint32_t key;
	struct u32map counts;
};

struct gindex {
	uint32_t group;
	uint32_t total;
	struct u32map per_node; /* node slot -> tasks */
	struct domcount *doms;
	uint32_t n_doms;
};

/* Schedulable (ACTIVE and connected) nodes per value of one key. */
struct keyidx {
	uint32_t key;
	struct u32map nodes; /* value -> nodes */
};

struct sched_snapshot {
	uint64_t seed, counter;
	struct interner in;
	uint32_t sym_instance, sym_host, sym_empty, sym_az;

	struct snode *nodes;
	uint32_t n_slots, cap_nodes, n_nodes;
	uint32_t *free_nodes;
	uint32_t n_free_nodes;
	struct strmap node_ids;

	struct stask *tasks;
	uint32_t n_task_slots, cap_tasks, n_tasks;
	uint32_t *free_tasks;
	uint32_t n_free_tasks;
	struct strmap task_ids;

	struct gindex *groups;
	uint32_t n_groups;
	struct u32map group_of; /* group symbol -> index in groups */

	struct keyidx *keys;
	uint32_t n_keys;

	struct antirule *rules;
	uint32_t n_rules;

	struct u32map budgets; /* group symbol -> allowed + 1 */

	/*
	 * Dense columns for the attribute keys that requests use: colmap[key]
	 * is 1 + the column, cols[c][node slot] the node's value symbol. A
	 * filter pass then reads one array instead of searching each node.
	 */
	uint8_t *colmap;
	uint32_t colmap_len;
	uint32_t **cols;
	uint32_t *col_keys;
	uint32_t n_cols;

	uint64_t node_gen;  /* bumped on any node change that can alter domains */
	uint64_t index_gen; /* bumped when a group or domain table is created (counters move) */
	uint64_t task_gen;
	uint32_t sample_pct, sample_min;
	uint32_t cursor;
};

static inline struct snode *snode_at(struct sched_snapshot *s, uint32_t i)
{
	return &s->nodes[i];
}

static inline bool node_schedulable(const struct snode *n)
{
	return n->alive && n->status == SCHED_NODE_ACTIVE && n->connected;
}

#define SCHED_MAX_COLUMNS 255 /* colmap entries are uint8_t; further keys use the search */

uint32_t sched_node_attr_find(const struct snode *n, uint32_t key);
/* Give `key` a dense column (requests call this for every key they use). */
void sched_column_want(struct sched_snapshot *s, uint32_t key);

/* Value symbol of key on a node: instanceId/host give the node's id; 0 if absent. */
static inline uint32_t node_value(const struct sched_snapshot *s, const struct snode *n, uint32_t key)
{
	if (key == s->sym_instance || key == s->sym_host)
		return n->id_sym;
	if (key < s->colmap_len && s->colmap[key])
		return s->cols[s->colmap[key] - 1][n - s->nodes];
	return sched_node_attr_find(n, key);
}
bool sched_node_has_key(const struct sched_snapshot *s, const struct snode *n, uint32_t key);
bool sched_node_port_used(const struct snode *n, uint16_t port);
uint32_t sched_node_free_dynamic(const struct snode *n);
int sched_node_port_add(struct snode *n, uint16_t port);
void sched_node_port_del(struct snode *n, uint16_t port);

/* Group indexes (groups.c). */
struct gindex *sched_group_find(const struct sched_snapshot *s, uint32_t group);
struct gindex *sched_group_get(struct sched_snapshot *s, uint32_t group);
/* Tasks of `group` in the domain of node n under key (instanceId: on n). */
uint32_t sched_group_count_at(struct sched_snapshot *s, uint32_t group, uint32_t key, const struct snode *n);
uint32_t sched_group_count_val(struct sched_snapshot *s, uint32_t group, uint32_t key, uint32_t val);
void sched_groups_task_changed(struct sched_snapshot *s, const struct stask *t, int32_t delta);
/* A task joins (+1) or leaves (-1) its group and its rules' groups entirely. */
void sched_groups_membership(struct sched_snapshot *s, const struct stask *t, int32_t delta);
/* The synthetic group of carriers of an anti-affinity against target on key (created on demand). */
uint32_t sched_antirule(struct sched_snapshot *s, uint32_t target, uint32_t key);
struct keyidx *sched_keyidx_get(struct sched_snapshot *s, uint32_t key);
void sched_keys_node_changed(struct sched_snapshot *s, const struct snode *n, int32_t delta);
void sched_groups_done(struct sched_snapshot *s);

/* Internal task add with symbols; returns the task slot or -errno. */
int sched_task_insert(struct sched_snapshot *s, const char *id, uint32_t node, uint32_t group, int32_t cpu,
		      int32_t mem, const uint16_t *ports, size_t n_ports, int32_t priority,
		      int64_t started_at, const struct itol *tols, size_t n_tols, const uint32_t *rules,
		      size_t n_rules, struct berth_error **err);
void sched_task_delete(struct sched_snapshot *s, uint32_t slot);
void sched_tasks_done(struct sched_snapshot *s);
uint32_t sched_tolerations_intern(struct sched_snapshot *s, const struct sched_toleration *in, size_t n,
				  struct itol *out);
bool sched_toleration_matches(const struct itol *t, const struct itaint *taint);

/* ---- query language (query.c, query-eval.c) ---- */

enum qsubject {
	QS_ATTRIBUTE = 0,
	QS_TASK_GROUP,
	QS_INSTANCE_ID,
	QS_EC2_INSTANCE_ID,
	QS_RUNNING_TASKS,
	QS_REGISTERED_AT,
	QS_AGENT_CONNECTED,
	QS_AGENT_VERSION,
};

enum qop {
	QO_EQ = 0,
	QO_NE,
	QO_GT,
	QO_GE,
	QO_LT,
	QO_LE,
	QO_EXISTS,
	QO_NOT_EXISTS,
	QO_IN,
	QO_NOT_IN,
	QO_MATCHES,
	QO_NOT_MATCHES,
};

enum qkind {
	QK_AND = 0,
	QK_OR,
	QK_NOT,
	QK_CMP,
};

struct qnode {
	enum qkind kind;
	struct qnode *a, *b; /* AND/OR: both; NOT: a */
	/* CMP */
	enum qsubject subject;
	enum qop op;
	uint32_t key;   /* QS_ATTRIBUTE: attribute name symbol */
	char **args;    /* raw arguments */
	uint32_t *syms; /* their symbols */
	int64_t *nums;  /* numeric form (counts, dates, booleans) */
	size_t n_args;
	regex_t *re;
	struct u32map memo; /* value symbol -> 1 + result (regex and ordered string compares) */
};

struct sched_query {
	struct qnode *root;
	char *text;
};

/*
 * Parse and compile a cluster query language expression. Errors are
 * "position N: ..." (1-based byte column). The query borrows `in` for symbols.
 */
int sched_query_parse(struct interner *in, const char *text, struct sched_query **ret,
		      struct berth_error **err);
struct sched_query *sched_query_free(struct sched_query *q);
bool sched_query_eval(struct sched_snapshot *s, struct sched_query *q, const struct snode *n);
int sched_version_cmp(const char *a, const char *b);
int sched_parse_date(const char *s, int64_t *ret);

/* ---- prepared requests (prepare.c) ---- */

/* A strategy field or topology key as a symbol ("attribute:" dropped, host = instanceId), with a column. */
uint32_t sched_topology_key(struct sched_snapshot *s, const char *field);

/*
 * Tasks of one group per domain of one key, resolved to the table once per
 * decision (sched_counters_refresh) so that a node costs one hash lookup.
 */
struct counter {
	uint32_t group, key;
	bool instance;
	const struct u32map *map; /* NULL: the group has no tasks yet */
};

static inline uint32_t counter_at(const struct sched_snapshot *s, const struct counter *c,
				  const struct snode *n)
{
	if (!c->map)
		return 0;
	return sched_u32map_get(c->map, c->instance ? (uint32_t)(n - s->nodes) : node_value(s, n, c->key));
}

static inline uint32_t counters_at(const struct sched_snapshot *s, const struct counter *c, size_t n_c,
				   const struct snode *n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n_c; i++)
		sum += counter_at(s, &c[i], n);
	return sum;
}

struct pexpr {
	uint32_t key;
	uint8_t op;
	uint32_t *vals;
	size_t n_vals;
	int64_t num;
};

struct pterm {
	struct pexpr *exprs;
	size_t n_exprs;
	int32_t weight;
};

struct paff {
	uint32_t *groups;
	struct counter *cnt; /* one per group */
	size_t n_groups;
	uint32_t key;
	bool anti, required;
	int32_t weight;
};

struct pspread {
	int32_t max_skew, min_domains;
	uint32_t key;
	bool dns;
	bool self; /* the request's own group is counted */
	uint32_t *groups;
	struct counter *cnt; /* one per group */
	size_t n_groups;
	/* cached domain list of eligible nodes, valid for node_gen */
	uint64_t gen;
	bool cached;
	uint32_t *doms;
	uint32_t n_doms;
	/* the global minimum, valid for (task_gen, node_gen) */
	bool min_valid;
	uint32_t min;
	uint64_t min_task_gen, min_node_gen;
};

enum pstrat_kind {
	PS_BINPACK_CPU = 0,
	PS_BINPACK_MEM,
	PS_SPREAD,
	PS_RANDOM,
};

struct pstrat {
	enum pstrat_kind kind;
	uint32_t key;
	struct counter cnt; /* PS_SPREAD */
};

struct sched_prepared {
	struct sched_snapshot *s;
	uint32_t group, family;
	int32_t cpu, mem, mem_hard;
	uint16_t *static_ports;
	size_t n_static;
	uint32_t n_dynamic;
	struct pstrat strat[SCHED_MAX_STRATEGIES];
	size_t n_strat;
	bool distinct;
	struct counter c_distinct;
	uint32_t *my_rules; /* anti-affinity rules the placed tasks carry */
	size_t n_my_rules;
	struct counter *c_rules; /* rules of running tasks against this request's group */
	size_t n_c_rules;
	uint64_t counters_gen; /* s->index_gen + 1 when the counters were resolved */
	struct sched_query **member_of;
	size_t n_member_of;
	struct apair *selector;
	size_t n_selector;
	struct pterm *required;
	size_t n_required;
	struct pterm *preferred;
	size_t n_preferred;
	struct paff *aff;
	size_t n_aff;
	struct itol *tols;
	size_t n_tols;
	struct pspread *spread;
	size_t n_spread;
	int32_t priority;
	int64_t now;
	bool preempt;
	bool soft; /* preferred affinities or ScheduleAnyway spread to score */
};

static inline void sched_prepared_freep(struct sched_prepared **p)
{
	*p = sched_prepared_free(*p);
}

/* ---- filters and scores (filter.c, score.c) ---- */

#define SCHED_NKEYS (SCHED_MAX_STRATEGIES + 4)

/* Per-decision scratch: reason counters and taint details. */
#define SCHED_MAX_DETAILS 16
struct decision {
	uint32_t counts[SCHED_R__MAX];
	struct {
		uint32_t key, val, effect, count;
	} taints[SCHED_MAX_DETAILS];
	uint32_t n_taints;
	uint64_t nonce;
	uint32_t examined, feasible; /* nodes filtered, and found feasible (scored) */
};

/* Resolve every counter of p against the snapshot's current tables (cheap when nothing moved). */
void sched_counters_refresh(struct sched_snapshot *s, struct sched_prepared *p);
bool sched_pexpr_match(const struct sched_snapshot *s, const struct pexpr *e, const struct snode *n);
bool sched_pterm_match(const struct sched_snapshot *s, const struct pterm *t, const struct snode *n);
bool sched_node_static_ok(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n);
/*
 * First failing filter for node n, or -1 when n is feasible. With `all`,
 * every failing reason is appended to `text` (explain).
 */
int sched_filter_node(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
		      const struct itaint **ret_taint);
bool sched_aff_term_ok(struct sched_snapshot *s, const struct sched_prepared *p, const struct paff *a,
		       const struct snode *n);
int sched_filter_tail(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n);
uint32_t sched_spread_min(struct sched_snapshot *s, struct sched_prepared *p, struct pspread *sp);
uint32_t sched_spread_count(struct sched_snapshot *s, const struct pspread *sp, const struct snode *n);
bool sched_filter_resources(const struct sched_prepared *p, const struct snode *n, int *ret_reason);
void sched_score_node(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
		      uint64_t nonce, int64_t keys[SCHED_NKEYS]);
size_t sched_score_nkeys(const struct sched_prepared *p);
/* Ties on every key: a seeded coin, so equal nodes share the load but runs repeat. */
int64_t sched_score_tiebreak(const struct sched_snapshot *s, const struct snode *n, uint64_t nonce);
int sched_explain_taint(struct sched_snapshot *s, const struct itaint *t, char *buf, size_t len);
const char *sched_effect_name(int effect);

/* Place one task on node slot `node`; returns the task slot or -errno. */
int sched_place_commit(struct sched_snapshot *s, struct sched_prepared *p, uint32_t node, const char *id,
		       struct sched_placement *out, struct berth_error **err);

/* One decision and commit with the request's semantics; -ENOSPC when nothing fits. */
int sched_place_one(struct sched_snapshot *s, struct sched_prepared *p, const char *id, uint32_t *ret_node);

/* Preemption (preempt.c): fills r->victims and r->nominated_node when possible. */
void sched_preempt_find(struct sched_snapshot *s, struct sched_prepared *p, struct sched_result *r);

#endif
