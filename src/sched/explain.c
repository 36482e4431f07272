/*
 * explain.c - "why not this node": every filter that rejects one node, with
 * the numbers behind it, or its score keys when it is feasible. Slow path
 * (strings, all filters); decisions never call it.
 */
#include <errno.h>
#include <stdio.h>

#include "common/strbuf.h"
#include "sched/internal.h"

static void add(struct strbuf *sb, const char *fmt, ...) _printf_(2, 3);
static void add(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	if (sb->len)
		strbuf_addstr(sb, "; ");
	va_start(ap, fmt);
	strbuf_vaddf(sb, fmt, ap);
	va_end(ap);
}

static void explain_state(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
			  struct strbuf *sb)
{
	if (n->status == SCHED_NODE_INACTIVE)
		add(sb, "INACTIVE");
	if (n->status == SCHED_NODE_DRAINING)
		add(sb, "DRAINING");
	if (!n->connected)
		add(sb, "agent disconnected");
	for (uint16_t i = 0; i < n->n_taints; i++) {
		const struct itaint *t = &n->taints[i];
		bool ok = t->effect == SCHED_PREFER_NO_SCHEDULE;
		for (size_t j = 0; j < p->n_tols && !ok; j++)
			ok = sched_toleration_matches(&p->tols[j], t);
		if (!ok) {
			char buf[512];
			sched_explain_taint(s, t, buf, sizeof(buf));
			add(sb, "taint %s not tolerated", buf);
		}
	}
	for (size_t i = 0; i < p->n_selector; i++)
		if (node_value(s, n, p->selector[i].key) != p->selector[i].val)
			add(sb, "node selector %s=%s mismatch", sym_str(&s->in, p->selector[i].key),
			    sym_str(&s->in, p->selector[i].val));
	bool any = !p->n_required;
	for (size_t i = 0; i < p->n_required && !any; i++)
		any = sched_pterm_match(s, &p->required[i], n);
	if (!any)
		add(sb, "node affinity mismatch (none of %zu required terms match)", p->n_required);
	for (size_t i = 0; i < p->n_member_of; i++)
		if (!sched_query_eval(s, p->member_of[i], n))
			add(sb, "memberOf constraint unsatisfied: %s", p->member_of[i]->text);
}

static void explain_resources(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
			      struct strbuf *sb)
{
	if (n->max_tasks && n->n_tasks >= n->max_tasks)
		add(sb, "task limit reached (%u tasks)", n->n_tasks);
	if (n->cpu_total - n->cpu_used < p->cpu)
		add(sb, "insufficient cpu (needs %d units, %d free)", p->cpu, n->cpu_total - n->cpu_used);
	if (n->mem_total - n->mem_used < p->mem)
		add(sb, "insufficient memory (needs %d MiB, %d free)", p->mem, n->mem_total - n->mem_used);
	if (p->mem_hard > n->mem_total)
		add(sb, "insufficient memory (hard limit %d MiB above the node's %d)", p->mem_hard,
		    n->mem_total);
	for (size_t i = 0; i < p->n_static; i++)
		if (sched_node_port_used(n, p->static_ports[i]))
			add(sb, "host port %u in use", p->static_ports[i]);
	if (p->n_dynamic && sched_node_free_dynamic(n) < p->n_dynamic)
		add(sb, "%u dynamic host ports needed, %u free", p->n_dynamic, sched_node_free_dynamic(n));
	if (p->distinct && sched_group_count_at(s, p->group, s->sym_instance, n))
		add(sb, "distinctInstance: a task of group '%s' is on this node", sym_str(&s->in, p->group));
}

static void explain_tasks(struct sched_snapshot *s, struct sched_prepared *p, const struct snode *n,
			  struct strbuf *sb)
{
	for (size_t i = 0; i < p->n_aff; i++) {
		const struct paff *a = &p->aff[i];
		if (!a->required)
			continue;
		if (sched_aff_term_ok(s, p, a, n))
			continue;
		uint32_t c = 0;
		for (size_t j = 0; j < a->n_groups && sched_node_has_key(s, n, a->key); j++)
			c += sched_group_count_at(s, a->groups[j], a->key, n);
		if (!sched_node_has_key(s, n, a->key))
			add(sb, "task affinity: node has no '%s'", sym_str(&s->in, a->key));
		else if (a->anti)
			add(sb, "task anti-affinity: %u matching tasks in %s=%s", c, sym_str(&s->in, a->key),
			    sym_str(&s->in, node_value(s, n, a->key)));
		else
			add(sb, "task affinity: no matching task in %s=%s", sym_str(&s->in, a->key),
			    sym_str(&s->in, node_value(s, n, a->key)));
	}
	for (size_t i = 0; i < p->n_c_rules; i++) {
		const struct counter *c = &p->c_rules[i];
		uint32_t k = sched_node_has_key(s, n, c->key) ? counter_at(s, c, n) : 0;
		if (k)
			add(sb, "anti-affinity of %u running tasks against group '%s' in %s=%s", k,
			    sym_str(&s->in, p->group), sym_str(&s->in, c->key),
			    sym_str(&s->in, node_value(s, n, c->key)));
	}
	for (size_t i = 0; i < p->n_spread; i++) {
		struct pspread *sp = &p->spread[i];
		if (!sp->dns)
			continue;
		if (!sched_node_has_key(s, n, sp->key)) {
			add(sb, "topology spread: node has no '%s'", sym_str(&s->in, sp->key));
			continue;
		}
		int64_t c = sched_spread_count(s, sp, n), min = sched_spread_min(s, p, sp);
		if (c + sp->self - min > sp->max_skew)
			add(sb, "topology spread: skew %lld > maxSkew %d in %s=%s",
			    (long long)(c + sp->self - min), sp->max_skew, sym_str(&s->in, sp->key),
			    sym_str(&s->in, node_value(s, n, sp->key)));
	}
}

int sched_explain_node(struct sched_snapshot *s, struct sched_prepared *p, const char *node_id,
		       bool *ret_feasible, char **ret_text, struct berth_error **err)
{
	uint32_t slot;
	if (!node_id || !sched_strmap_get(&s->node_ids, node_id, &slot))
		return berth_error_msg(err, ENOENT, "node '%s' not found", node_id ? node_id : "");
	const struct snode *n = &s->nodes[slot];
	sched_counters_refresh(s, p);
	struct strbuf sb;
	strbuf_init(&sb, 128);
	explain_state(s, p, n, &sb);
	explain_resources(s, p, n, &sb);
	explain_tasks(s, p, n, &sb);
	bool feasible = !sb.len;
	const struct itaint *t = NULL;
	assert(feasible == (sched_filter_node(s, p, n, &t) < 0)); /* explain and decide agree */
	if (feasible) {
		int64_t keys[SCHED_NKEYS];
		sched_score_node(s, p, n, s->counter, keys);
		strbuf_addf(&sb,
			    "feasible; score keys (lower is better): taints %lld, preference %lld, skew %lld",
			    (long long)keys[0], (long long)keys[1], (long long)keys[2]);
		for (size_t i = 0; i < p->n_strat; i++)
			strbuf_addf(&sb, ", strategy[%zu] %lld", i, (long long)keys[3 + i]);
	}
	if (ret_feasible)
		*ret_feasible = feasible;
	*ret_text = strbuf_detach(&sb, NULL);
	return 0;
}
