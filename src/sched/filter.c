/*
 * filter.c - may this task go on this node? One function per filter, run in
 * a fixed order; a decision records the first failing one per node (as
 * kube-scheduler does), explain records them all.
 *
 * Order: node state, taints, node selector, node affinity, memberOf, task
 * limit, cpu, memory, ports, distinctInstance, task affinity, anti-affinity,
 * topology spread. Cheap integer checks come first; the ones that consult the
 * counting indexes come last.
 */
#include <stdio.h>
#include <string.h>

#include "sched/internal.h"

const char *sched_effect_name(int effect)
{
	switch (effect) {
	case SCHED_NO_SCHEDULE: return "NoSchedule";
	case SCHED_PREFER_NO_SCHEDULE: return "PreferNoSchedule";
	case SCHED_NO_EXECUTE: return "NoExecute";
	}
	return "?";
}

static bool tolerated(const struct sched_prepared *p, const struct itaint *t)
{
	for (size_t i = 0; i < p->n_tols; i++)
		if (sched_toleration_matches(&p->tols[i], t))
			return true;
	return false;
}

/* The first NoSchedule/NoExecute taint the request does not tolerate, or NULL. */
static const struct itaint *untolerated(const struct sched_prepared *p, const struct snode *n)
{
	for (uint16_t i = 0; i < n->n_taints; i++)
		if (n->taints[i].effect != SCHED_PREFER_NO_SCHEDULE && !tolerated(p, &n->taints[i]))
			return &n->taints[i];
	return NULL;
}

bool sched_pexpr_match(const struct sched_snapshot *s, const struct pexpr *e, const struct snode *n)
{
	uint32_t v = node_value(s, n, e->key);
	int64_t num;
	switch (e->op) {
	case SCHED_OP_EXISTS: return v != 0;
	case SCHED_OP_DOES_NOT_EXIST: return v == 0;
	case SCHED_OP_IN:
	case SCHED_OP_NOT_IN: {
		bool in = false;
		for (size_t i = 0; i < e->n_vals && !in; i++)
			in = v == e->vals[i];
		/* NotIn holds on nodes without the key (Kubernetes' NodeSelectorRequirement). */
		return e->op == SCHED_OP_IN ? in : !in;
	}
	case SCHED_OP_GT:
	case SCHED_OP_LT:
		if (!v || util_parse_int64(sym_str(&s->in, v), &num) < 0)
			return false;
		return e->op == SCHED_OP_GT ? num > e->num : num < e->num;
	}
	return false;
}

bool sched_pterm_match(const struct sched_snapshot *s, const struct pterm *t, const struct snode *n)
{
	for (size_t i = 0; i < t->n_exprs; i++)
		if (!sched_pexpr_match(s, &t->exprs[i], n))
			return false;
	return true;
}

/* Node selector, required node affinity: the nodes a task may use at all. */
static bool selector_ok(const struct sched_snapshot *s, const struct sched_prepared *p, const struct snode *n)
{
	for (size_t i = 0; i < p->n_selector; i++)
		if (node_value(s, n, p->selector[i].key) != p->selector[i].val)
			return false;
	return true;
}

static bool affinity_ok(const struct sched_snapshot *s, const struct sched_prepared *p, const struct snode *n)
{
	if (!p->n_required)
		return true;
	for (size_t i = 0; i < p->n_required; i++)
		if (sched_pterm_match(s, &p->required[i], n))
			return true;
	return false;
}

bool sched_node_static_ok(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	return node_schedulable(n) && selector_ok(s, p, n) && affinity_ok(s, p, n);
}

bool sched_filter_resources(const struct sched_prepared *p, const struct snode *n, int *ret_reason)
{
	if (n->max_tasks && n->n_tasks >= n->max_tasks)
		*ret_reason = SCHED_R_TASK_LIMIT;
	else if (n->cpu_total - n->cpu_used < p->cpu)
		*ret_reason = SCHED_R_CPU;
	else if (n->mem_total - n->mem_used < p->mem || p->mem_hard > n->mem_total)
		*ret_reason = SCHED_R_MEMORY;
	else
		return true;
	return false;
}

static bool ports_ok(const struct sched_prepared *p, const struct snode *n)
{
	for (size_t i = 0; i < p->n_static; i++)
		if (sched_node_port_used(n, p->static_ports[i]))
			return false;
	if (!p->n_dynamic)
		return true;
	/* Static ports inside the dynamic range take dynamic capacity too. */
	uint32_t need = p->n_dynamic;
	for (size_t i = 0; i < p->n_static; i++)
		need += p->static_ports[i] >= n->port_min && p->static_ports[i] <= n->port_max;
	return sched_node_free_dynamic(n) >= need;
}

static bool groups_exist(struct sched_snapshot *s, const uint32_t *groups, size_t n_groups)
{
	for (size_t i = 0; i < n_groups; i++) {
		struct gindex *g = sched_group_find(s, groups[i]);
		if (g && g->total)
			return true;
	}
	return false;
}

/* Is one required task (anti-)affinity term satisfied on n? */
bool sched_aff_term_ok(struct sched_snapshot *s, const struct sched_prepared *p, const struct paff *a,
		       const struct snode *n)
{
	bool has_key = sched_node_has_key(s, n, a->key);
	uint32_t c = has_key ? counters_at(s, a->cnt, a->n_groups, n) : 0;
	if (a->anti)
		return !c;
	if (c)
		return true;
	/* Kubernetes: the first task of a group with affinity to itself may go anywhere. */
	bool self = false;
	for (size_t j = 0; j < a->n_groups; j++)
		self |= a->groups[j] == p->group;
	return has_key && self && !groups_exist(s, a->groups, a->n_groups);
}

/* Required task affinity / anti-affinity; returns the failing reason or -1. */
static int affinity_tasks(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	for (size_t i = 0; i < p->n_aff; i++) {
		const struct paff *a = &p->aff[i];
		if (a->required && !sched_aff_term_ok(s, p, a, n))
			return a->anti ? SCHED_R_TASK_ANTI_AFFINITY : SCHED_R_TASK_AFFINITY;
	}
	return -1;
}

uint32_t sched_spread_count(struct sched_snapshot *s, const struct pspread *sp, const struct snode *n)
{
	return counters_at(s, sp->cnt, sp->n_groups, n);
}

static void spread_cache_domains(struct sched_snapshot *s, struct sched_prepared *p, struct pspread *sp)
{
	struct u32map seen = { 0 };
	for (uint32_t i = 0; i < s->n_slots; i++) {
		const struct snode *n = &s->nodes[i];
		uint32_t v = node_value(s, n, sp->key);
		if (v && sched_node_static_ok(s, p, n))
			sched_u32map_set(&seen, v, 1);
	}
	free(sp->doms);
	sp->doms = xcalloc(seen.n + 1, sizeof(*sp->doms));
	sp->n_doms = 0;
	uint32_t it = 0, k, v;
	while (sched_u32map_next(&seen, &it, &k, &v))
		sp->doms[sp->n_doms++] = k;
	sched_u32map_done(&seen);
	sp->gen = s->node_gen;
	sp->cached = true;
}

static uint32_t domain_count(struct sched_snapshot *s, const struct pspread *sp, uint32_t val)
{
	uint32_t c = 0;
	for (size_t i = 0; i < sp->n_groups; i++)
		c += sched_group_count_val(s, sp->groups[i], sp->key, val);
	return c;
}

/*
 * The global minimum of matching tasks over the eligible domains (values of
 * the key on schedulable nodes that pass the node selector and required node
 * affinity, Kubernetes' nodeAffinityPolicy=Honor). Fewer domains than
 * minDomains: 0. Stops early at 0.
 */
uint32_t sched_spread_min(struct sched_snapshot *s, struct sched_prepared *p, struct pspread *sp)
{
	if (sp->min_valid && sp->min_task_gen == s->task_gen && sp->min_node_gen == s->node_gen)
		return sp->min;
	uint32_t min = UINT32_MAX, n_doms = 0;
	if (!p->n_selector && !p->n_required) {
		struct keyidx *k = sched_keyidx_get(s, sp->key);
		uint32_t it = 0, val, cnt;
		n_doms = k->nodes.n;
		while (min && sched_u32map_next(&k->nodes, &it, &val, &cnt))
			min = MIN(min, domain_count(s, sp, val));
	} else {
		if (!sp->cached || sp->gen != s->node_gen)
			spread_cache_domains(s, p, sp);
		n_doms = sp->n_doms;
		for (uint32_t i = 0; i < sp->n_doms && min; i++)
			min = MIN(min, domain_count(s, sp, sp->doms[i]));
	}
	if (min == UINT32_MAX || (sp->min_domains && n_doms < (uint32_t)sp->min_domains))
		min = 0;
	sp->min = min;
	sp->min_valid = true;
	sp->min_task_gen = s->task_gen;
	sp->min_node_gen = s->node_gen;
	return min;
}

static int spread_filter(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	for (size_t i = 0; i < p->n_spread; i++) {
		struct pspread *sp = &p->spread[i];
		if (!sp->dns)
			continue;
		if (!sched_node_has_key(s, n, sp->key))
			return SCHED_R_TOPOLOGY_SPREAD;
		int64_t skew = (int64_t)sched_spread_count(s, sp, n) + sp->self - sched_spread_min(s, p, sp);
		if (skew > sp->max_skew)
			return SCHED_R_TOPOLOGY_SPREAD;
	}
	return -1;
}

/* The filters that consult the counting indexes (after resources). */
int sched_filter_tail(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	int r;
	if (p->distinct && counter_at(s, &p->c_distinct, n))
		return SCHED_R_DISTINCT_INSTANCE;
	if (p->n_aff && (r = affinity_tasks(s, p, n)) >= 0)
		return r;
	for (size_t i = 0; i < p->n_c_rules; i++) /* running tasks' anti-affinity against us */
		if (sched_node_has_key(s, n, p->c_rules[i].key) && counter_at(s, &p->c_rules[i], n))
			return SCHED_R_TASK_ANTI_AFFINITY;
	if (p->n_spread && (r = spread_filter(s, p, n)) >= 0)
		return r;
	return -1;
}

int sched_filter_node(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
		      const struct itaint **ret_taint)
{
	int r;
	if (n->status == SCHED_NODE_INACTIVE)
		return SCHED_R_INACTIVE;
	if (n->status == SCHED_NODE_DRAINING)
		return SCHED_R_DRAINING;
	if (!n->connected)
		return SCHED_R_DISCONNECTED;
	if (n->n_taints && (*ret_taint = untolerated(p, n)))
		return SCHED_R_TAINT;
	if (!selector_ok(s, p, n))
		return SCHED_R_NODE_SELECTOR;
	if (!affinity_ok(s, p, n))
		return SCHED_R_NODE_AFFINITY;
	for (size_t i = 0; i < p->n_member_of; i++)
		if (!sched_query_eval(s, p->member_of[i], n))
			return SCHED_R_MEMBER_OF;
	if (!sched_filter_resources(p, n, &r))
		return r;
	if ((p->n_static || p->n_dynamic) && !ports_ok(p, n))
		return SCHED_R_PORTS;
	return sched_filter_tail(s, p, n);
}

/* ---- scores: keys compared in order, lower is better ---- */

size_t sched_score_nkeys(const struct sched_prepared *p)
{
	return 3 + p->n_strat;
}

int64_t sched_score_tiebreak(const struct sched_snapshot *s, const struct snode *n, uint64_t nonce)
{
	return (int64_t)(sched_hash64(s->seed * 31 + nonce * 0x9e37 + n->id_sym) >> 1);
}

static int64_t prefer_no_schedule(const struct sched_prepared *p, const struct snode *n)
{
	int64_t c = 0;
	for (uint16_t i = 0; i < n->n_taints; i++)
		c += n->taints[i].effect == SCHED_PREFER_NO_SCHEDULE && !tolerated(p, &n->taints[i]);
	return c;
}

/* Preferred node affinity weights plus preferred task (anti-)affinity weights. */
static int64_t preference(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	int64_t w = 0;
	for (size_t i = 0; i < p->n_preferred; i++)
		if (sched_pterm_match(s, &p->preferred[i], n))
			w += p->preferred[i].weight;
	for (size_t i = 0; i < p->n_aff; i++) {
		const struct paff *a = &p->aff[i];
		if (a->required || !sched_node_has_key(s, n, a->key))
			continue;
		if (counters_at(s, a->cnt, a->n_groups, n))
			w += a->anti ? -a->weight : a->weight;
	}
	return w;
}

#define SKEW_NO_KEY (1 << 20) /* ScheduleAnyway: a node without the key scores below any skew */

static int64_t soft_skew(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n)
{
	int64_t sum = 0;
	for (size_t i = 0; i < p->n_spread; i++) {
		struct pspread *sp = &p->spread[i];
		if (sp->dns)
			continue;
		if (!sched_node_has_key(s, n, sp->key))
			sum += SKEW_NO_KEY;
		else
			sum += (int64_t)sched_spread_count(s, sp, n) + sp->self - sched_spread_min(s, p, sp);
	}
	return sum;
}

void sched_score_node(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
		      uint64_t nonce, int64_t keys[SCHED_NKEYS])
{
	size_t k = 0;
	keys[k++] = n->n_taints ? prefer_no_schedule(p, n) : 0;
	keys[k++] = p->soft ? -preference(s, p, n) : 0;
	keys[k++] = p->soft ? soft_skew(s, p, n) : 0;
	for (size_t i = 0; i < p->n_strat; i++) {
		const struct pstrat *st = &p->strat[i];
		switch (st->kind) {
		case PS_BINPACK_CPU: keys[k++] = n->cpu_total - n->cpu_used - p->cpu; break;
		case PS_BINPACK_MEM: keys[k++] = n->mem_total - n->mem_used - p->mem; break;
		case PS_SPREAD: keys[k++] = counter_at(s, &st->cnt, n); break;
		case PS_RANDOM:
			keys[k++] =
			    (int64_t)(sched_hash64(s->seed ^ nonce ^ ((uint64_t)n->id_sym << 32)) >> 1);
			break;
		}
	}
}

int sched_explain_taint(struct sched_snapshot *s, const struct itaint *t, char *buf, size_t len)
{
	const char *v = sym_str(&s->in, t->val);
	return snprintf(buf, len, "%s%s%s:%s", sym_str(&s->in, t->key), *v ? "=" : "", v,
			sched_effect_name(t->effect));
}
