/*
 * place.c - one decision per task: filter -> score -> pick, then commit.
 *
 * A decision walks the nodes from a rotating cursor, runs the filters, scores
 * the feasible ones and keeps the best; it stops after `want` feasible nodes
 * (kube-scheduler's percentageOfNodesToScore; every node on small clusters).
 * The trade-off: on large clusters a strategy picks the best node of a
 * sample, not of the whole cluster; filters (constraints, resources, skew)
 * are always exact, and a task is only reported unplaceable after every node
 * was examined, so the explanation counts every node.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "sched/internal.h"

#define SAMPLE_MIN_FEASIBLE 100 /* kube-scheduler's minFeasibleNodesToFind */

static const struct {
	const char *text, *ecs;
} reasons[SCHED_R__MAX] = {
	[SCHED_R_INACTIVE] = { "INACTIVE", "INACTIVE" },
	[SCHED_R_DRAINING] = { "DRAINING", "DRAINING" },
	[SCHED_R_DISCONNECTED] = { "agent disconnected", "AGENT" },
	[SCHED_R_TAINT] = { "taint not tolerated", "berth:Taint" },
	[SCHED_R_NODE_SELECTOR] = { "node selector mismatch", "ATTRIBUTE" },
	[SCHED_R_NODE_AFFINITY] = { "node affinity mismatch", "ATTRIBUTE" },
	[SCHED_R_MEMBER_OF] = { "memberOf constraint unsatisfied",
				"MemberOf placement constraint unsatisfied." },
	[SCHED_R_TASK_LIMIT] = { "task limit reached", "berth:TaskLimit" },
	[SCHED_R_CPU] = { "insufficient cpu", "RESOURCE:CPU" },
	[SCHED_R_MEMORY] = { "insufficient memory", "RESOURCE:MEMORY" },
	[SCHED_R_PORTS] = { "host ports unavailable", "RESOURCE:PORTS" },
	[SCHED_R_DISTINCT_INSTANCE] = { "distinctInstance: group already on node",
					"DistinctInstance placement constraint unsatisfied." },
	[SCHED_R_TASK_AFFINITY] = { "task affinity unsatisfied", "berth:TaskAffinity" },
	[SCHED_R_TASK_ANTI_AFFINITY] = { "task anti-affinity", "berth:TaskAntiAffinity" },
	[SCHED_R_TOPOLOGY_SPREAD] = { "topology spread maxSkew exceeded", "berth:TopologySpread" },
};

const char *sched_reason_text(enum sched_reason r)
{
	return (unsigned)r < SCHED_R__MAX ? reasons[r].text : "?";
}

const char *sched_reason_ecs(enum sched_reason r)
{
	return (unsigned)r < SCHED_R__MAX ? reasons[r].ecs : "?";
}

uint32_t sched_sample_kube(size_t nodes)
{
	int64_t adaptive = 50 - (int64_t)nodes / 125;
	return adaptive < 5 ? 5 : (uint32_t)adaptive;
}

static uint32_t sample_want(const struct sched_snapshot *s)
{
	uint32_t n = s->n_nodes;
	uint32_t min = s->sample_min ? s->sample_min : SAMPLE_MIN_FEASIBLE;
	if (n <= min || s->sample_pct >= 100)
		return UINT32_MAX;
	return MAX(min, (uint32_t)((uint64_t)n * s->sample_pct / 100));
}

static void note_taint(struct decision *d, const struct itaint *t)
{
	for (uint32_t i = 0; i < d->n_taints; i++)
		if (d->taints[i].key == t->key && d->taints[i].val == t->val &&
		    d->taints[i].effect == t->effect) {
			d->taints[i].count++;
			return;
		}
	if (d->n_taints < SCHED_MAX_DETAILS)
		d->taints[d->n_taints++] = (__typeof__(d->taints[0])){ t->key, t->val, t->effect, 1 };
	else
		d->taints[SCHED_MAX_DETAILS - 1]
		    .count++; /* NEEDSWORK: the 16th slot absorbs further taint kinds */
}

/* -1, 0, 1 as a is better, tied, worse than b. */
static int keys_cmp(const int64_t *a, const int64_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* One decision: the best node's slot, or -1 with d filled. */
static int64_t decide(struct sched_snapshot *s, struct sched_prepared *p, struct decision *d)
{
	int64_t best = -1, keys[SCHED_NKEYS], best_keys[SCHED_NKEYS], best_tie = -1;
	size_t nk = sched_score_nkeys(p);
	uint32_t want = sample_want(s), found = 0, slots = s->n_slots;
	if (!slots)
		return -1;
	uint32_t start = s->cursor % slots, k;
	d->nonce = ++s->counter;
	sched_counters_refresh(s, p);
	for (k = 0; k < slots; k++) {
		uint32_t i = start + k < slots ? start + k : start + k - slots;
		const struct snode *n = &s->nodes[i];
		if (!n->alive)
			continue;
		const struct itaint *taint = NULL;
		int r = sched_filter_node(s, p, n, &taint);
		d->examined++;
		if (r >= 0) {
			d->counts[r]++;
			if (taint)
				note_taint(d, taint);
			continue;
		}
		sched_score_node(s, p, n, d->nonce, keys);
		int c = best < 0 ? -1 : keys_cmp(keys, best_keys, nk);
		if (c == 0) { /* the coin is only thrown on ties */
			if (best_tie < 0)
				best_tie = sched_score_tiebreak(s, &s->nodes[best], d->nonce);
			int64_t tie = sched_score_tiebreak(s, n, d->nonce);
			if (tie < best_tie) {
				best = i;
				best_tie = tie;
			}
		} else if (c < 0) {
			best = i;
			best_tie = -1;
			memcpy(best_keys, keys, nk * sizeof(*keys));
		}
		if (++found >= want)
			break;
	}
	d->feasible = found;
	s->cursor = (start + k + 1) % slots;
	return best;
}

static uint16_t next_dynamic(struct snode *n)
{
	uint32_t span = (uint32_t)n->port_max - n->port_min + 1;
	for (uint32_t i = 0; i < span; i++) {
		uint16_t port = n->port_cursor;
		n->port_cursor = port >= n->port_max ? n->port_min : port + 1;
		if (!sched_node_port_used(n, port))
			return port;
	}
	return 0; /* the filter checked the capacity: not reached */
}

int sched_place_commit(struct sched_snapshot *s, struct sched_prepared *p, uint32_t node, const char *id,
		       struct sched_placement *out, struct berth_error **err)
{
	struct snode *n = &s->nodes[node];
	size_t np = p->n_static + p->n_dynamic;
	_cleanup_free_ uint16_t *ports = xcalloc(np + 1, sizeof(*ports));
	memcpy(ports, p->static_ports, p->n_static * sizeof(*ports));
	/* Reserve the static ones first so that the dynamic walk skips them. */
	for (size_t i = 0; i < p->n_static; i++)
		(void)sched_node_port_add(n, ports[i]);
	for (size_t i = p->n_static; i < np; i++) {
		ports[i] = next_dynamic(n);
		(void)sched_node_port_add(n, ports[i]);
	}
	for (size_t i = 0; i < np; i++)
		sched_node_port_del(n, ports[i]);
	int r = sched_task_insert(s, id, node, p->group, p->cpu, p->mem, ports, np, p->priority, p->now,
				  p->tols, p->n_tols, p->my_rules, p->n_my_rules, err);
	if (r < 0)
		return r;
	if (out) {
		out->task_id = id;
		out->node_id = s->nodes[node].id;
		out->ports = TAKE_PTR(ports);
		out->n_ports = np;
	}
	return r;
}

int sched_place_one(struct sched_snapshot *s, struct sched_prepared *p, const char *id, uint32_t *ret_node)
{
	struct decision d = { 0 };
	int64_t node = decide(s, p, &d);
	if (node < 0)
		return -ENOSPC;
	int r = sched_place_commit(s, p, (uint32_t)node, id, NULL, NULL);
	if (r < 0)
		return r;
	*ret_node = (uint32_t)node;
	return 0;
}

static int cmp_reason(const void *a, const void *b)
{
	const struct sched_reason_count *x = a, *y = b;
	if (x->nodes != y->nodes)
		return x->nodes > y->nodes ? -1 : 1;
	return (int)x->reason - (int)y->reason;
}

static void explain_result(struct sched_snapshot *s, const struct decision *d, uint32_t total,
			   struct sched_result *r)
{
	r->nodes_total = total;
	r->reasons = xcalloc(SCHED_R__MAX + SCHED_MAX_DETAILS, sizeof(*r->reasons));
	for (int i = 0; i < SCHED_R__MAX; i++)
		if (d->counts[i] && i != SCHED_R_TAINT)
			r->reasons[r->n_reasons++] = (struct sched_reason_count){ i, NULL, d->counts[i] };
	for (uint32_t i = 0; i < d->n_taints; i++) {
		char buf[512];
		struct itaint t = { .key = d->taints[i].key,
				    .val = d->taints[i].val,
				    .effect = (uint8_t)d->taints[i].effect };
		sched_explain_taint(s, &t, buf, sizeof(buf));
		r->reasons[r->n_reasons++] =
		    (struct sched_reason_count){ SCHED_R_TAINT, xstrdup(buf), d->taints[i].count };
	}
	qsort(r->reasons, r->n_reasons, sizeof(*r->reasons), cmp_reason);
	struct strbuf sb;
	strbuf_init(&sb, 128);
	strbuf_addf(&sb, "0/%u nodes", total);
	for (size_t i = 0; i < r->n_reasons; i++) {
		const struct sched_reason_count *c = &r->reasons[i];
		strbuf_addstr(&sb, i ? ", " : ": ");
		if (c->reason == SCHED_R_TAINT)
			strbuf_addf(&sb, "%u taint %s not tolerated", c->nodes, c->detail);
		else
			strbuf_addf(&sb, "%u %s", c->nodes, sched_reason_text(c->reason));
	}
	if (!total)
		strbuf_addstr(&sb, ": no nodes registered");
	r->message = strbuf_detach(&sb, NULL);
	r->ecs_reason = r->n_reasons ? sched_reason_ecs(r->reasons[0].reason) : "RESOURCE:NODES";
}

static int check_ids(const struct sched_snapshot *s, const char *const *ids, size_t count,
		     struct berth_error **err)
{
	if (!count || count > SCHED_MAX_COUNT)
		return berth_error_msg(err, EINVAL, "count must be 1-%d", SCHED_MAX_COUNT);
	uint32_t slot;
	for (size_t i = 0; i < count; i++) {
		if (!ids[i] || !*ids[i])
			return berth_error_msg(err, EINVAL, "task %zu has no id", i);
		if (sched_strmap_get(&s->task_ids, ids[i], &slot))
			return berth_error_msg(err, EEXIST, "task '%s' is already placed", ids[i]);
		for (size_t j = 0; j < i; j++)
			if (streq(ids[i], ids[j]))
				return berth_error_msg(err, EINVAL, "task id '%s' given twice", ids[i]);
	}
	return 0;
}

int sched_place(struct sched_snapshot *s, struct sched_prepared *p, const char *const *task_ids, size_t count,
		struct sched_result **ret, struct berth_error **err)
{
	/* Duplicate checks are O(count^2): fine for RunTask's 10, bounded by SCHED_MAX_COUNT. */
	int r = check_ids(s, task_ids, count, err);
	if (r < 0)
		return r;
	if (p->s != s)
		return berth_error_msg(err, EINVAL, "prepared request belongs to another snapshot");
	struct sched_result *res = xcalloc(1, sizeof(*res));
	res->placements = xcalloc(count, sizeof(*res->placements));
	for (size_t i = 0; i < count; i++) {
		struct decision d = { 0 };
		int64_t node = decide(s, p, &d);
		if (node < 0) {
			explain_result(s, &d, s->n_nodes, res);
			if (p->preempt)
				sched_preempt_find(s, p, res);
			break;
		}
		r = sched_place_commit(s, p, (uint32_t)node, task_ids[i], &res->placements[i], err);
		assert(r >= 0); /* ids were checked, the filters passed */
		struct sched_placement *pl = &res->placements[i];
		pl->examined = d.examined;
		pl->feasible = d.feasible;
		memcpy(pl->rejected, d.counts, sizeof(pl->rejected));
		res->n_placed++;
	}
	*ret = res;
	return 0;
}

int sched_place_on(struct sched_snapshot *s, struct sched_prepared *p, const char *node_id,
		   const char *task_id, struct sched_result **ret, struct berth_error **err)
{
	uint32_t slot;
	int r = check_ids(s, &task_id, 1, err);
	if (r < 0)
		return r;
	if (p->s != s)
		return berth_error_msg(err, EINVAL, "prepared request belongs to another snapshot");
	if (!node_id || !sched_strmap_get(&s->node_ids, node_id, &slot))
		return berth_error_msg(err, ENOENT, "node '%s' not found", node_id ? node_id : "");
	struct sched_result *res = xcalloc(1, sizeof(*res));
	res->placements = xcalloc(1, sizeof(*res->placements));
	struct decision d = { .nonce = ++s->counter };
	sched_counters_refresh(s, p);
	const struct itaint *taint = NULL;
	int why = sched_filter_node(s, p, &s->nodes[slot], &taint);
	if (why >= 0) {
		d.counts[why]++;
		if (taint)
			note_taint(&d, taint);
		explain_result(s, &d, 1, res);
	} else {
		r = sched_place_commit(s, p, slot, task_id, &res->placements[0], err);
		assert(r >= 0); /* the id was checked, the filters passed */
		res->placements[0].examined = res->placements[0].feasible = 1;
		res->n_placed = 1;
	}
	*ret = res;
	return 0;
}

struct sched_result *sched_result_free(struct sched_result *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < r->n_placed; i++)
		free(r->placements[i].ports);
	free(r->placements);
	for (size_t i = 0; i < r->n_reasons; i++)
		free((char *)r->reasons[i].detail);
	free(r->reasons);
	free(r->message);
	for (size_t i = 0; i < r->n_victims; i++) {
		free((char *)r->victims[i].task_id);
		free((char *)r->victims[i].group);
	}
	free(r->victims);
	free((char *)r->nominated_node);
	free(r);
	return NULL;
}
