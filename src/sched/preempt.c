/*
 * preempt.c - priority preemption and NoExecute evictions.
 *
 * Preemption follows kube-scheduler's DefaultPreemption: on every node where
 * only resources (cpu, memory, ports, task limit) stand in the way, remove
 * lower-priority tasks lowest priority first (newest first among equals)
 * until the task fits, then reprieve victims from the highest priority down
 * while it still fits. Departure: a disruption budget is a hard limit here
 * (kube treats PodDisruptionBudgets as best effort), so a node whose minimal
 * victim set would exceed a budget is not a candidate. Among candidates: the
 * lowest highest-victim priority, then the fewest victims, then the lowest
 * priority sum, then node order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

struct vset {
	uint32_t *v; /* task slots */
	size_t n;
	bool *on; /* parallel: still a victim */
};

static int cmp_victim_order(const void *a, const void *b, void *arg)
{
	const struct sched_snapshot *s = arg;
	const struct stask *x = &s->tasks[*(const uint32_t *)a], *y = &s->tasks[*(const uint32_t *)b];
	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->started_at != y->started_at)
		return x->started_at > y->started_at ? -1 : 1; /* newest first */
	return strcmp(x->id, y->id);
}

static bool port_held(const struct sched_snapshot *s, const struct vset *vs, uint16_t port)
{
	for (size_t i = 0; i < vs->n; i++) {
		if (!vs->on[i])
			continue;
		const struct stask *t = &s->tasks[vs->v[i]];
		for (uint16_t j = 0; j < t->n_ports; j++)
			if (t->ports[j] == port)
				return true;
	}
	return false;
}

/* Would the request fit on n once the victims that are `on` are gone? */
static bool fits_without(const struct sched_snapshot *s, const struct sched_prepared *p,
			 const struct snode *n, const struct vset *vs)
{
	int64_t cpu = n->cpu_total - n->cpu_used, mem = n->mem_total - n->mem_used;
	uint32_t tasks = n->n_tasks, dyn = 0;
	for (size_t i = 0; i < vs->n; i++) {
		if (!vs->on[i])
			continue;
		const struct stask *t = &s->tasks[vs->v[i]];
		cpu += t->cpu;
		mem += t->mem;
		tasks--;
		for (uint16_t j = 0; j < t->n_ports; j++)
			dyn += t->ports[j] >= n->port_min && t->ports[j] <= n->port_max;
	}
	if (cpu < p->cpu || mem < p->mem || p->mem_hard > n->mem_total ||
	    (n->max_tasks && tasks >= n->max_tasks))
		return false;
	uint32_t need = p->n_dynamic;
	for (size_t i = 0; i < p->n_static; i++) {
		uint16_t port = p->static_ports[i];
		if (sched_node_port_used(n, port) && !port_held(s, vs, port))
			return false;
		need += p->n_dynamic && port >= n->port_min && port <= n->port_max;
	}
	return !p->n_dynamic || sched_node_free_dynamic(n) + dyn >= need;
}

static bool budget_ok(struct sched_snapshot *s, const struct vset *vs, uint32_t group)
{
	if (!group || !sched_u32map_has(&s->budgets, group))
		return true;
	uint32_t allowed = sched_u32map_get(&s->budgets, group) - 1, n = 0;
	for (size_t i = 0; i < vs->n; i++)
		n += vs->on[i] && s->tasks[vs->v[i]].group == group;
	return n <= allowed;
}

static bool budgets_ok(struct sched_snapshot *s, const struct vset *vs)
{
	for (size_t i = 0; i < vs->n; i++)
		if (vs->on[i] && !budget_ok(s, vs, s->tasks[vs->v[i]].group))
			return false;
	return true;
}

/* Reprieve: budget breakers first, then everyone, highest priority first. */
static void reprieve(struct sched_snapshot *s, const struct sched_prepared *p, const struct snode *n,
		     struct vset *vs)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = vs->n; k-- > 0;) {
			if (!vs->on[k])
				continue;
			if (pass == 0 && budget_ok(s, vs, s->tasks[vs->v[k]].group))
				continue;
			vs->on[k] = false;
			if (!fits_without(s, p, n, vs))
				vs->on[k] = true;
		}
}

/* Does n pass every filter that evicting tasks cannot change? */
static bool preemptible_node(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	const struct itaint *t = NULL;
	int r = sched_filter_node(s, p, n, &t);
	if (r != SCHED_R_TASK_LIMIT && r != SCHED_R_CPU && r != SCHED_R_MEMORY && r != SCHED_R_PORTS)
		return false;
	/* The filters after resources were not run: run them on the node as it is. */
	return sched_filter_tail(s, p, n) < 0;
}

struct pick {
	int64_t node;
	int32_t max_prio;
	size_t n;
	int64_t sum;
};

static bool pick_better(const struct pick *a, const struct pick *b)
{
	if (b->node < 0)
		return true;
	if (a->max_prio != b->max_prio)
		return a->max_prio < b->max_prio;
	if (a->n != b->n)
		return a->n < b->n;
	return a->sum < b->sum;
}

static bool node_victims(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
			 struct vset *vs)
{
	vs->n = 0;
	for (uint32_t i = 0; i < n->n_tasks; i++)
		if (s->tasks[n->tasks[i]].priority < p->priority)
			vs->v[vs->n++] = n->tasks[i];
	qsort_r(vs->v, vs->n, sizeof(*vs->v), cmp_victim_order, s);
	memset(vs->on, 0, vs->n * sizeof(*vs->on));
	size_t k = 0;
	while (!fits_without(s, p, n, vs) && k < vs->n)
		vs->on[k++] = true;
	if (!fits_without(s, p, n, vs))
		return false; /* no victim set is enough here */
	reprieve(s, p, n, vs);
	return budgets_ok(s, vs);
}

void sched_preempt_find(struct sched_snapshot *s, struct sched_prepared *p, struct sched_result *r)
{
	uint32_t cap = 1;
	for (uint32_t i = 0; i < s->n_slots; i++)
		cap = MAX(cap, s->nodes[i].n_tasks);
	struct vset vs = { .v = xcalloc(cap, sizeof(uint32_t)), .on = xcalloc(cap, sizeof(bool)) };
	struct vset best = { .v = xcalloc(cap, sizeof(uint32_t)), .on = xcalloc(cap, sizeof(bool)) };
	struct pick bp = { .node = -1 };
	sched_counters_refresh(s, p);
	for (uint32_t i = 0; i < s->n_slots; i++) {
		const struct snode *n = &s->nodes[i];
		if (!n->alive || !preemptible_node(s, p, n) || !node_victims(s, p, n, &vs))
			continue;
		struct pick c = { .node = i, .max_prio = INT32_MIN };
		for (size_t k = 0; k < vs.n; k++)
			if (vs.on[k]) {
				const struct stask *t = &s->tasks[vs.v[k]];
				c.max_prio = MAX(c.max_prio, t->priority);
				c.n++;
				c.sum += t->priority;
			}
		if (pick_better(&c, &bp)) {
			bp = c;
			best.n = vs.n;
			memcpy(best.v, vs.v, vs.n * sizeof(*vs.v));
			memcpy(best.on, vs.on, vs.n * sizeof(*vs.on));
		}
	}
	if (bp.node >= 0) {
		r->nominated_node = xstrdup(s->nodes[bp.node].id);
		r->victims = xcalloc(bp.n + 1, sizeof(*r->victims));
		for (size_t k = 0; k < best.n; k++)
			if (best.on[k]) {
				const struct stask *t = &s->tasks[best.v[k]];
				r->victims[r->n_victims++] = (struct sched_victim){
					xstrdup(t->id), t->group ? xstrdup(sym_str(&s->in, t->group)) : NULL,
					t->priority
				};
			}
	} else {
		char *m = xasprintf("%s; preemption: no victim set is enough on any node", r->message);
		free(r->message);
		r->message = m;
	}
	free(vs.v);
	free(vs.on);
	free(best.v);
	free(best.on);
}

/* ---- NoExecute ---- */

/*
 * When must task t leave a node with NoExecute taint x: INT64_MAX never, else
 * the time; *ret_secs: the tolerationSeconds that decided (-1: not tolerated).
 */
static int64_t evict_time(const struct stask *t, const struct itaint *x, int64_t now, int64_t *ret_secs)
{
	bool matched = false;
	int64_t best = INT64_MAX;
	*ret_secs = -1;
	for (uint16_t i = 0; i < t->n_tols; i++) {
		if (!sched_toleration_matches(&t->tols[i], x))
			continue;
		if (t->tols[i].seconds < 0)
			return INT64_MAX;
		matched = true;
		if (x->added_at + t->tols[i].seconds < best) {
			best = x->added_at + t->tols[i].seconds;
			*ret_secs = t->tols[i].seconds;
		}
	}
	return matched ? best : now;
}

static int cmp_eviction(const void *a, const void *b)
{
	const struct sched_eviction *x = a, *y = b;
	if (x->evict_at != y->evict_at)
		return x->evict_at < y->evict_at ? -1 : 1;
	return strcmp(x->task_id, y->task_id);
}

int sched_noexecute_evictions(struct sched_snapshot *s, const char *node_id, int64_t now,
			      struct sched_eviction **ret, size_t *ret_n, struct berth_error **err)
{
	uint32_t first = 0, last = s->n_slots, slot;
	if (node_id) {
		if (!sched_strmap_get(&s->node_ids, node_id, &slot))
			return berth_error_msg(err, ENOENT, "node '%s' not found", node_id);
		first = slot;
		last = slot + 1;
	}
	struct sched_eviction *v = NULL;
	size_t n = 0, cap = 0;
	for (uint32_t i = first; i < last; i++) {
		const struct snode *nd = &s->nodes[i];
		for (uint32_t k = 0; nd->alive && k < nd->n_tasks; k++) {
			const struct stask *t = &s->tasks[nd->tasks[k]];
			int64_t at = INT64_MAX, secs = -1;
			const struct itaint *why = NULL;
			for (uint16_t j = 0; j < nd->n_taints; j++) {
				int64_t sj;
				int64_t aj = nd->taints[j].effect == SCHED_NO_EXECUTE
						 ? evict_time(t, &nd->taints[j], now, &sj)
						 : INT64_MAX;
				if (aj < at) {
					at = aj;
					secs = sj;
					why = &nd->taints[j];
				}
			}
			if (!why)
				continue;
			char taint[512];
			sched_explain_taint(s, why, taint, sizeof(taint));
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n++] = (struct sched_eviction){ xstrdup(t->id), xstrdup(nd->id), at, xstrdup(taint),
							  secs };
		}
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_eviction);
	*ret = v;
	*ret_n = n;
	return 0;
}

void sched_evictions_free(struct sched_eviction *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].task_id);
		free(v[i].node_id);
		free(v[i].taint);
	}
	free(v);
}
