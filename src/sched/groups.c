/*
 * groups.c - counting indexes kept current on every change.
 *
 * Spread strategies, distinctInstance, task affinity and topology spread all
 * ask "how many tasks of group G are in the domain of node N under key K".
 * The first time a (G, K) pair is asked about, its value -> count table is
 * built from G's per-node counts (O(nodes with G's tasks)); from then on
 * every task add/remove and node change updates it in O(1), so the question
 * costs one hash lookup per node examined.
 */
#include <string.h>

#include "sched/internal.h"

struct gindex *sched_group_find(const struct sched_snapshot *s, uint32_t group)
{
	if (!group || !sched_u32map_has(&s->group_of, group))
		return NULL;
	return &s->groups[sched_u32map_get(&s->group_of, group)];
}

struct gindex *sched_group_get(struct sched_snapshot *s, uint32_t group)
{
	struct gindex *g = sched_group_find(s, group);
	if (g)
		return g;
	s->groups = xrealloc(s->groups, (s->n_groups + 1) * sizeof(*s->groups));
	g = &s->groups[s->n_groups];
	*g = (struct gindex){ .group = group };
	sched_u32map_set(&s->group_of, group, s->n_groups++);
	s->index_gen++;
	return g;
}

static bool key_is_instance(const struct sched_snapshot *s, uint32_t key)
{
	return key == s->sym_instance || key == s->sym_host;
}

static struct domcount *dom_find(struct gindex *g, uint32_t key)
{
	for (uint32_t i = 0; i < g->n_doms; i++)
		if (g->doms[i].key == key)
			return &g->doms[i];
	return NULL;
}

static struct domcount *dom_get(struct sched_snapshot *s, struct gindex *g, uint32_t key)
{
	struct domcount *d = dom_find(g, key);
	if (d)
		return d;
	g->doms = xrealloc(g->doms, (g->n_doms + 1) * sizeof(*g->doms));
	d = &g->doms[g->n_doms++];
	*d = (struct domcount){ .key = key };
	s->index_gen++;
	uint32_t it = 0, node, cnt;
	while (sched_u32map_next(&g->per_node, &it, &node, &cnt))
		sched_u32map_add(&d->counts, node_value(s, &s->nodes[node], key), (int32_t)cnt);
	return d;
}

static void counter_ensure(struct sched_snapshot *s, struct counter *c)
{
	struct gindex *g = sched_group_find(s, c->group);
	c->instance = key_is_instance(s, c->key);
	if (g && !c->instance)
		dom_get(s, g, c->key);
}

static void counter_resolve(struct sched_snapshot *s, struct counter *c)
{
	struct gindex *g = sched_group_find(s, c->group);
	c->instance = key_is_instance(s, c->key);
	c->map = !g ? NULL : c->instance ? &g->per_node : &dom_find(g, c->key)->counts;
}

/* Two passes: creating tables moves them, so pointers are taken after all exist. */
/* Counters for the anti-affinity rules of running tasks that target p's group. */
static void rules_against(struct sched_snapshot *s, struct sched_prepared *p)
{
	free(p->c_rules);
	p->c_rules = xcalloc(s->n_rules + 1, sizeof(*p->c_rules));
	p->n_c_rules = 0;
	for (uint32_t i = 0; i < s->n_rules && p->group; i++)
		if (s->rules[i].target == p->group)
			p->c_rules[p->n_c_rules++] =
			    (struct counter){ .group = s->rules[i].sym, .key = s->rules[i].key };
}

void sched_counters_refresh(struct sched_snapshot *s, struct sched_prepared *p)
{
	if (p->counters_gen == s->index_gen + 1)
		return;
	rules_against(s, p);
	for (int pass = 0; pass < 2; pass++) {
		void (*fn)(struct sched_snapshot *, struct counter *) =
		    pass ? counter_resolve : counter_ensure;
		if (p->distinct)
			fn(s, &p->c_distinct);
		for (size_t i = 0; i < p->n_strat; i++)
			if (p->strat[i].kind == PS_SPREAD)
				fn(s, &p->strat[i].cnt);
		for (size_t i = 0; i < p->n_aff; i++)
			for (size_t j = 0; j < p->aff[i].n_groups; j++)
				fn(s, &p->aff[i].cnt[j]);
		for (size_t i = 0; i < p->n_spread; i++)
			for (size_t j = 0; j < p->spread[i].n_groups; j++)
				fn(s, &p->spread[i].cnt[j]);
		for (size_t i = 0; i < p->n_c_rules; i++)
			fn(s, &p->c_rules[i]);
	}
	p->counters_gen = s->index_gen + 1;
}

uint32_t sched_group_count_val(struct sched_snapshot *s, uint32_t group, uint32_t key, uint32_t val)
{
	struct gindex *g = sched_group_find(s, group);
	if (!g)
		return 0;
	if (key_is_instance(s, key)) {
		uint32_t slot;
		if (!sched_strmap_get(&s->node_ids, sym_str(&s->in, val), &slot))
			return 0;
		return sched_u32map_get(&g->per_node, slot);
	}
	return sched_u32map_get(&dom_get(s, g, key)->counts, val);
}

uint32_t sched_group_count_at(struct sched_snapshot *s, uint32_t group, uint32_t key, const struct snode *n)
{
	struct gindex *g = sched_group_find(s, group);
	if (!g)
		return 0;
	if (key_is_instance(s, key))
		return sched_u32map_get(&g->per_node, (uint32_t)(n - s->nodes));
	return sched_u32map_get(&dom_get(s, g, key)->counts, node_value(s, n, key));
}

/*
 * A task enters (delta +1) or leaves (-1) its group's indexes. Node
 * attribute changes call this with -1 before and +1 after, so the domain
 * tables follow the node's new values.
 */
static void member_doms(struct sched_snapshot *s, uint32_t group, const struct snode *n, int32_t delta)
{
	struct gindex *g = sched_group_get(s, group);
	for (uint32_t i = 0; i < g->n_doms; i++)
		sched_u32map_add(&g->doms[i].counts, node_value(s, n, g->doms[i].key), delta);
}

void sched_groups_task_changed(struct sched_snapshot *s, const struct stask *t, int32_t delta)
{
	const struct snode *n = &s->nodes[t->node];
	if (t->group)
		member_doms(s, t->group, n, delta);
	for (uint16_t i = 0; i < t->n_rules; i++)
		member_doms(s, t->rules[i], n, delta);
}

static void member(struct sched_snapshot *s, uint32_t group, const struct stask *t, int32_t delta)
{
	struct gindex *g = sched_group_get(s, group);
	sched_u32map_add(&g->per_node, t->node, delta);
	g->total += delta;
	member_doms(s, group, &s->nodes[t->node], delta);
}

void sched_groups_membership(struct sched_snapshot *s, const struct stask *t, int32_t delta)
{
	if (t->group)
		member(s, t->group, t, delta);
	for (uint16_t i = 0; i < t->n_rules; i++)
		member(s, t->rules[i], t, delta);
}

uint32_t sched_antirule(struct sched_snapshot *s, uint32_t target, uint32_t key)
{
	for (uint32_t i = 0; i < s->n_rules; i++)
		if (s->rules[i].target == target && s->rules[i].key == key)
			return s->rules[i].sym;
	_cleanup_free_ char *name =
	    xasprintf("berth:anti-affinity:%s@%s", sym_str(&s->in, target), sym_str(&s->in, key));
	s->rules = xrealloc(s->rules, (s->n_rules + 1) * sizeof(*s->rules));
	s->rules[s->n_rules++] = (struct antirule){ sched_intern(&s->in, name), target, key };
	s->index_gen++; /* requests against `target` gain a counter */
	return s->rules[s->n_rules - 1].sym;
}

struct keyidx *sched_keyidx_get(struct sched_snapshot *s, uint32_t key)
{
	for (uint32_t i = 0; i < s->n_keys; i++)
		if (s->keys[i].key == key)
			return &s->keys[i];
	s->keys = xrealloc(s->keys, (s->n_keys + 1) * sizeof(*s->keys));
	struct keyidx *k = &s->keys[s->n_keys++];
	*k = (struct keyidx){ .key = key };
	for (uint32_t i = 0; i < s->n_slots; i++) {
		const struct snode *n = &s->nodes[i];
		uint32_t v = node_value(s, n, key);
		if (node_schedulable(n) && v)
			sched_u32map_add(&k->nodes, v, 1);
	}
	return k;
}

void sched_keys_node_changed(struct sched_snapshot *s, const struct snode *n, int32_t delta)
{
	if (!node_schedulable(n))
		return;
	for (uint32_t i = 0; i < s->n_keys; i++) {
		uint32_t v = node_value(s, n, s->keys[i].key);
		if (v)
			sched_u32map_add(&s->keys[i].nodes, v, delta);
	}
}

void sched_groups_done(struct sched_snapshot *s)
{
	for (uint32_t i = 0; i < s->n_groups; i++) {
		struct gindex *g = &s->groups[i];
		sched_u32map_done(&g->per_node);
		for (uint32_t j = 0; j < g->n_doms; j++)
			sched_u32map_done(&g->doms[j].counts);
		free(g->doms);
	}
	free(s->groups);
	sched_u32map_done(&s->group_of);
	for (uint32_t i = 0; i < s->n_keys; i++)
		sched_u32map_done(&s->keys[i].nodes);
	free(s->keys);
	free(s->rules);
}
