/*
 * rebalance.c - scale-in selection and the rebalancer's move plans.
 *
 * Scale-in narrows the candidates key by key: the fullest domain of the
 * first spread key, within it the fullest domain of the next, and so on,
 * ending with the fullest node; removing from the fullest domain at every
 * level keeps every key balanced at once (ECS balances only the first).
 *
 * The rebalancer simulates moves on the snapshot itself (start the
 * replacement, then stop the old task, as the deployment will) and undoes
 * them all before returning, so the snapshot is unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

#define SCALE_IN_MAX_KEYS 8

struct cands {
	uint32_t *v; /* task slots of the group still running */
	size_t n;
};

static void group_tasks(struct sched_snapshot *s, uint32_t group, struct cands *c)
{
	struct gindex *g = sched_group_find(s, group);
	c->n = 0;
	c->v = xcalloc((g ? g->total : 0) + 1, sizeof(*c->v));
	if (!g)
		return;
	uint32_t it = 0, node, cnt;
	while (sched_u32map_next(&g->per_node, &it, &node, &cnt)) {
		const struct snode *n = &s->nodes[node];
		for (uint32_t i = 0; i < n->n_tasks; i++)
			if (s->tasks[n->tasks[i]].group == group)
				c->v[c->n++] = n->tasks[i];
	}
}

/* Keep only the candidates whose value under key has the most tasks among `all`. */
static size_t narrow(struct sched_snapshot *s, const struct cands *all, uint32_t *sel, size_t n_sel,
		     uint32_t key)
{
	struct u32map counts = { 0 };
	for (size_t i = 0; i < all->n; i++)
		sched_u32map_add(&counts, node_value(s, &s->nodes[s->tasks[all->v[i]].node], key), 1);
	uint32_t max = 0;
	for (size_t i = 0; i < n_sel; i++)
		max =
		    MAX(max, sched_u32map_get(&counts, node_value(s, &s->nodes[s->tasks[sel[i]].node], key)));
	size_t k = 0;
	for (size_t i = 0; i < n_sel; i++)
		if (sched_u32map_get(&counts, node_value(s, &s->nodes[s->tasks[sel[i]].node], key)) == max)
			sel[k++] = sel[i];
	sched_u32map_done(&counts);
	return k;
}

static bool stop_first(const struct stask *a, const struct stask *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority;
	if (a->started_at != b->started_at)
		return a->started_at > b->started_at;
	return strcmp(a->id, b->id) < 0;
}

/* Index in c of the next task to stop. */
static size_t scale_in_pick(struct sched_snapshot *s, const struct cands *c, const uint32_t *keys,
			    size_t n_keys)
{
	_cleanup_free_ uint32_t *sel = xmalloc((c->n + 1) * sizeof(*sel));
	memcpy(sel, c->v, c->n * sizeof(*sel));
	size_t n = c->n;
	for (size_t k = 0; k < n_keys; k++)
		n = narrow(s, c, sel, n, keys[k]);
	n = narrow(s, c, sel, n, s->sym_instance);
	size_t best = 0;
	for (size_t i = 1; i < n; i++)
		if (stop_first(&s->tasks[sel[i]], &s->tasks[sel[best]]))
			best = i;
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i] == sel[best])
			return i;
	return 0;
}

static size_t scale_in_keys(struct sched_snapshot *s, const char *const *keys, size_t n_keys, uint32_t *out)
{
	if (!keys) {
		out[0] = s->sym_az;
		out[1] = s->sym_instance;
		return 2;
	}
	size_t n = 0;
	for (size_t i = 0; i < n_keys && n < SCALE_IN_MAX_KEYS; i++) {
		const char *k = keys[i];
		if (startswith(k, "attribute:"))
			k += strlen("attribute:");
		out[n++] = streq(k, "host") ? s->sym_instance : sched_intern(&s->in, k);
	}
	return n;
}

int sched_scale_in(struct sched_snapshot *s, const char *group, const char *const *keys, size_t n_keys,
		   size_t count, char ***ret_ids, size_t *ret_n, struct berth_error **err)
{
	if (!group || !*group)
		return berth_error_msg(err, EINVAL, "scale-in: group is required");
	if (n_keys > SCALE_IN_MAX_KEYS)
		return berth_error_msg(err, E2BIG, "scale-in: at most %d keys", SCALE_IN_MAX_KEYS);
	uint32_t k[SCALE_IN_MAX_KEYS];
	size_t nk = scale_in_keys(s, keys, n_keys, k);
	struct cands c;
	group_tasks(s, sched_intern(&s->in, group), &c);
	size_t n = MIN(count, c.n);
	char **ids = xcalloc(n + 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		size_t at = scale_in_pick(s, &c, k, nk);
		ids[i] = xstrdup(s->tasks[c.v[at]].id);
		c.v[at] = c.v[--c.n];
	}
	free(c.v);
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}

/* ---- rebalancing ---- */

/* Imbalance of the group under p's strategies, one number per strategy (lower is better). */
static void balance_metric(struct sched_snapshot *s, struct sched_prepared *p, int64_t *m)
{
	struct gindex *g = sched_group_find(s, p->group);
	for (size_t i = 0; i < p->n_strat; i++) {
		const struct pstrat *st = &p->strat[i];
		m[i] = 0;
		if (st->kind == PS_BINPACK_CPU || st->kind == PS_BINPACK_MEM) {
			m[i] = g ? g->per_node.n : 0;
			continue;
		}
		if (st->kind != PS_SPREAD)
			continue;
		int64_t lo = INT64_MAX, hi = 0;
		for (uint32_t k = 0; k < s->n_slots; k++) {
			const struct snode *n = &s->nodes[k];
			if (!node_value(s, n, st->key) || !sched_node_static_ok(s, p, n))
				continue;
			bool member = true;
			for (size_t q = 0; q < p->n_member_of && member; q++)
				member = sched_query_eval(s, p->member_of[q], n);
			if (!member)
				continue;
			int64_t c = sched_group_count_at(s, p->group, st->key, n);
			lo = MIN(lo, c);
			hi = MAX(hi, c);
		}
		m[i] = lo == INT64_MAX ? 0 : hi - lo;
	}
}

static bool metric_less(const int64_t *a, const int64_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i];
	return false;
}

/* A removed task, to put back afterwards. */
struct saved {
	char *id;
	uint32_t node, group;
	int32_t cpu, mem, priority;
	int64_t started_at;
	uint16_t *ports;
	uint16_t n_ports, n_tols;
	struct itol *tols;
	uint32_t *rules;
	uint16_t n_rules;
};

static void save_and_delete(struct sched_snapshot *s, uint32_t slot, struct saved *v)
{
	const struct stask *t = &s->tasks[slot];
	*v = (struct saved){ xstrdup(t->id), t->node, t->group,   t->cpu,    t->mem, t->priority,
			     t->started_at,  NULL,    t->n_ports, t->n_tols, NULL };
	v->ports = xmalloc((t->n_ports + 1) * sizeof(*v->ports));
	memcpy(v->ports, t->ports, t->n_ports * sizeof(*v->ports));
	v->tols = xmalloc((t->n_tols + 1) * sizeof(*v->tols));
	memcpy(v->tols, t->tols, t->n_tols * sizeof(*v->tols));
	v->rules = xmalloc((t->n_rules + 1) * sizeof(*v->rules));
	memcpy(v->rules, t->rules, t->n_rules * sizeof(*v->rules));
	v->n_rules = t->n_rules;
	sched_task_delete(s, slot);
}

static void restore(struct sched_snapshot *s, struct saved *v)
{
	int r = sched_task_insert(s, v->id, v->node, v->group, v->cpu, v->mem, v->ports, v->n_ports,
				  v->priority, v->started_at, v->tols, v->n_tols, v->rules, v->n_rules, NULL);
	assert(r >= 0); /* its resources were freed for it */
	(void)r;
	free(v->id);
	free(v->ports);
	free(v->tols);
	free(v->rules);
}

/* Free amount of the first binpack dimension on a task's node. */
static int64_t node_free(const struct sched_snapshot *s, const struct sched_prepared *p,
			 const struct stask *t)
{
	const struct snode *n = &s->nodes[t->node];
	for (size_t i = 0; i < p->n_strat; i++) {
		if (p->strat[i].kind == PS_BINPACK_CPU)
			return n->cpu_total - n->cpu_used;
		if (p->strat[i].kind == PS_BINPACK_MEM)
			return n->mem_total - n->mem_used;
	}
	return 0;
}

/* Binpack: move first from the node with the fewest tasks of the group, then the emptiest, then by id. */
static bool binpack_move_first(struct sched_snapshot *s, const struct sched_prepared *p,
			       const struct stask *a, const struct stask *b)
{
	const struct gindex *g = sched_group_find(s, p->group);
	uint32_t ca = sched_u32map_get(&g->per_node, a->node), cb = sched_u32map_get(&g->per_node, b->node);
	if (ca != cb)
		return ca < cb;
	int64_t fa = node_free(s, p, a), fb = node_free(s, p, b);
	if (fa != fb)
		return fa > fb;
	return strcmp(a->id, b->id) < 0;
}

/* The task to move: scale-in's choice under the spread keys, or for binpack the emptiest node's. */
static int64_t move_candidate(struct sched_snapshot *s, struct sched_prepared *p)
{
	uint32_t keys[SCHED_MAX_STRATEGIES];
	size_t nk = 0;
	for (size_t i = 0; i < p->n_strat; i++)
		if (p->strat[i].kind == PS_SPREAD)
			keys[nk++] = p->strat[i].key;
	struct cands c;
	group_tasks(s, p->group, &c);
	int64_t slot = -1;
	if (c.n && nk) {
		slot = c.v[scale_in_pick(s, &c, keys, nk)];
	} else if (c.n) {
		for (size_t i = 0; i < c.n; i++)
			if (slot < 0 || binpack_move_first(s, p, &s->tasks[c.v[i]], &s->tasks[slot]))
				slot = c.v[i];
	}
	free(c.v);
	return slot;
}

int sched_rebalance(struct sched_snapshot *s, struct sched_prepared *p, size_t max_moves,
		    struct sched_move **ret, size_t *ret_n, struct berth_error **err)
{
	if (p->s != s)
		return berth_error_msg(err, EINVAL, "prepared request belongs to another snapshot");
	struct sched_move *moves = xcalloc(max_moves + 1, sizeof(*moves));
	struct saved *saved = xcalloc(max_moves + 1, sizeof(*saved));
	char **temp = xcalloc(max_moves + 1, sizeof(*temp));
	size_t n = 0;
	int64_t before[SCHED_MAX_STRATEGIES], after[SCHED_MAX_STRATEGIES];
	while (n < max_moves) {
		balance_metric(s, p, before);
		int64_t victim = move_candidate(s, p);
		if (victim < 0)
			break;
		uint32_t from = s->tasks[victim].node, to = from;
		temp[n] = xasprintf("berth-rebalance-%zu-%llu", n, (unsigned long long)s->counter);
		int r = sched_place_one(s, p, temp[n], &to);
		if (r < 0 || to == from) {
			if (r >= 0)
				sched_task_remove(s, temp[n], NULL);
			free(temp[n]);
			temp[n] = NULL;
			break;
		}
		save_and_delete(s, (uint32_t)victim, &saved[n]);
		balance_metric(s, p, after);
		if (!metric_less(after, before, p->n_strat)) {
			sched_task_remove(s, temp[n], NULL);
			restore(s, &saved[n]);
			free(temp[n]);
			temp[n] = NULL;
			break;
		}
		moves[n] = (struct sched_move){ xstrdup(saved[n].id), xstrdup(s->nodes[from].id),
						xstrdup(s->nodes[to].id) };
		n++;
	}
	for (size_t i = n; i-- > 0;) {
		sched_task_remove(s, temp[i], NULL);
		restore(s, &saved[i]);
		free(temp[i]);
	}
	free(temp);
	free(saved);
	*ret = moves;
	*ret_n = n;
	return 0;
}

void sched_moves_free(struct sched_move *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++) {
		free(m[i].task_id);
		free(m[i].from_node);
		free(m[i].to_node);
	}
	free(m);
}
