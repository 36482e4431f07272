/*
 * prepare.c - validate a placement request and compile it against a snapshot.
 *
 * Done once per task definition / service revision, not per placement: every
 * string becomes a symbol, every memberOf expression a compiled query, every
 * strategy field a key. Errors name the request field ("strategies[0]: ...",
 * "placementConstraints[1]: position 17: ...").
 */
#include <errno.h>
#include <string.h>

#include "sched/internal.h"

/* A key requests look up on every node: give it a dense column. */
uint32_t sched_topology_key(struct sched_snapshot *s, const char *field)
{
	if (startswith(field, "attribute:"))
		field += strlen("attribute:");
	if (streq(field, "host"))
		return s->sym_instance;
	uint32_t key = sched_intern(&s->in, field);
	sched_column_want(s, key);
	return key;
}

static void query_columns(struct sched_snapshot *s, const struct qnode *q)
{
	if (!q)
		return;
	if (q->kind == QK_CMP && q->subject == QS_ATTRIBUTE)
		sched_column_want(s, q->key);
	query_columns(s, q->a);
	query_columns(s, q->b);
}

static int prep_strategies(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
			   struct berth_error **err)
{
	if (r->n_strategies > SCHED_MAX_STRATEGIES)
		return berth_error_msg(err, E2BIG, "strategies: at most %d", SCHED_MAX_STRATEGIES);
	for (size_t i = 0; i < r->n_strategies; i++) {
		const struct sched_strategy *st = &r->strategies[i];
		const char *f = st->field ? st->field : "";
		struct pstrat *ps = &p->strat[p->n_strat++];
		switch (st->type) {
		case SCHED_BINPACK:
			if (!streq(f, "cpu") && !streq(f, "memory") && !streq(f, "CPU") &&
			    !streq(f, "MEMORY"))
				return berth_error_msg(
				    err, EINVAL,
				    "strategies[%zu]: binpack field must be cpu or memory, not '%s'", i, f);
			ps->kind = (f[0] == 'c' || f[0] == 'C') ? PS_BINPACK_CPU : PS_BINPACK_MEM;
			break;
		case SCHED_SPREAD:
			if (!*f || streq(f, "attribute:"))
				return berth_error_msg(err, EINVAL, "strategies[%zu]: spread needs a field",
						       i);
			ps->kind = PS_SPREAD;
			ps->key = sched_topology_key(s, f);
			ps->cnt = (struct counter){ .group = p->group, .key = ps->key };
			break;
		case SCHED_RANDOM: ps->kind = PS_RANDOM; break;
		default: return berth_error_msg(err, EINVAL, "strategies[%zu]: unknown type", i);
		}
	}
	return 0;
}

static int prep_constraints(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
			    struct berth_error **err)
{
	if (r->n_constraints > SCHED_MAX_CONSTRAINTS)
		return berth_error_msg(err, E2BIG, "placementConstraints: at most %d", SCHED_MAX_CONSTRAINTS);
	p->member_of = xcalloc(r->n_constraints + 1, sizeof(*p->member_of));
	for (size_t i = 0; i < r->n_constraints; i++) {
		const struct sched_constraint *c = &r->constraints[i];
		if (c->type == SCHED_DISTINCT_INSTANCE) {
			if (c->expression && *c->expression)
				return berth_error_msg(
				    err, EINVAL,
				    "placementConstraints[%zu]: distinctInstance takes no expression", i);
			p->distinct = true;
			p->c_distinct = (struct counter){ .group = p->group, .key = s->sym_instance };
			continue;
		}
		if (c->type != SCHED_MEMBER_OF)
			return berth_error_msg(err, EINVAL, "placementConstraints[%zu]: unknown type", i);
		int ret = sched_query_parse(&s->in, c->expression, &p->member_of[p->n_member_of], err);
		if (ret < 0)
			return berth_error_wrap(err, ret, "placementConstraints[%zu]: memberOf", i);
		query_columns(s, p->member_of[p->n_member_of]->root);
		p->n_member_of++;
	}
	return 0;
}

static int prep_expr(struct sched_snapshot *s, struct pexpr *pe, const struct sched_match_expr *e,
		     const char *what, struct berth_error **err)
{
	if (!e->key || !*e->key)
		return berth_error_msg(err, EINVAL, "%s: key is required", what);
	if ((unsigned)e->op > SCHED_OP_LT)
		return berth_error_msg(err, EINVAL, "%s: unknown operator", what);
	if (e->n_values > SCHED_MAX_ATTRS)
		return berth_error_msg(err, E2BIG, "%s: too many values", what);
	bool in = e->op == SCHED_OP_IN || e->op == SCHED_OP_NOT_IN;
	bool num = e->op == SCHED_OP_GT || e->op == SCHED_OP_LT;
	if ((in && !e->n_values) || (num && e->n_values != 1) || (!in && !num && e->n_values))
		return berth_error_msg(err, EINVAL,
				       "%s: In/NotIn need values, Gt/Lt exactly one, Exists none", what);
	if (num && util_parse_int64(e->values[0], &pe->num) < 0)
		return berth_error_msg(err, EINVAL, "%s: '%s' is not an integer", what, e->values[0]);
	pe->key = sched_topology_key(s, e->key);
	pe->op = (uint8_t)e->op;
	pe->n_vals = e->n_values;
	pe->vals = xcalloc(e->n_values + 1, sizeof(*pe->vals));
	for (size_t i = 0; i < e->n_values; i++)
		pe->vals[i] = sched_intern(&s->in, e->values[i] ? e->values[i] : "");
	return 0;
}

static int prep_terms(struct sched_snapshot *s, const struct sched_node_term *in, size_t n, bool preferred,
		      struct pterm **ret, struct berth_error **err)
{
	if (n > SCHED_MAX_TERMS)
		return berth_error_msg(err, E2BIG, "node affinity: at most %d terms", SCHED_MAX_TERMS);
	struct pterm *t = *ret = xcalloc(n + 1, sizeof(*t));
	for (size_t i = 0; i < n; i++) {
		if (preferred && (in[i].weight < 1 || in[i].weight > 100))
			return berth_error_msg(err, EINVAL,
					       "preferred node affinity[%zu]: weight must be 1-100", i);
		if (in[i].n_exprs > SCHED_MAX_TERMS)
			return berth_error_msg(err, E2BIG, "node affinity[%zu]: too many expressions", i);
		t[i].weight = in[i].weight;
		t[i].exprs = xcalloc(in[i].n_exprs + 1, sizeof(*t[i].exprs));
		t[i].n_exprs = in[i].n_exprs;
		for (size_t j = 0; j < in[i].n_exprs; j++) {
			_cleanup_free_ char *what = xasprintf("%s node affinity[%zu].matchExpressions[%zu]",
							      preferred ? "preferred" : "required", i, j);
			int r = prep_expr(s, &t[i].exprs[j], &in[i].exprs[j], what, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static uint32_t *intern_groups(struct sched_snapshot *s, const char *const *g, size_t n)
{
	uint32_t *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = sched_intern(&s->in, g[i]);
	return v;
}

static struct counter *counters_new(const uint32_t *groups, size_t n, uint32_t key)
{
	struct counter *c = xcalloc(n + 1, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = (struct counter){ .group = groups[i], .key = key };
	return c;
}

static int prep_selector(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
			 struct berth_error **err)
{
	p->selector = xcalloc(r->n_node_selector + 1, sizeof(*p->selector));
	for (size_t i = 0; i < r->n_node_selector; i++) {
		if (!r->node_selector[i].name || !*r->node_selector[i].name)
			return berth_error_msg(err, EINVAL, "nodeSelector[%zu]: name is required", i);
		p->selector[i].key = sched_topology_key(s, r->node_selector[i].name);
		p->selector[i].val =
		    sched_intern(&s->in, r->node_selector[i].value ? r->node_selector[i].value : "");
	}
	p->n_selector = r->n_node_selector;
	int ret = prep_terms(s, r->required_terms, r->n_required_terms, false, &p->required, err);
	if (ret < 0)
		return ret;
	p->n_required = r->n_required_terms;
	ret = prep_terms(s, r->preferred_terms, r->n_preferred_terms, true, &p->preferred, err);
	if (ret < 0)
		return ret;
	p->n_preferred = r->n_preferred_terms;
	return 0;
}

static int prep_affinities(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
			   struct berth_error **err)
{
	p->aff = xcalloc(r->n_affinities + 1, sizeof(*p->aff));
	for (size_t i = 0; i < r->n_affinities; i++) {
		const struct sched_task_affinity *a = &r->affinities[i];
		if (!a->n_groups || !a->topology_key || !*a->topology_key)
			return berth_error_msg(err, EINVAL,
					       "affinity[%zu]: groups and topologyKey are required", i);
		if (!a->required && (a->weight < 1 || a->weight > 100))
			return berth_error_msg(err, EINVAL, "affinity[%zu]: weight must be 1-100", i);
		struct paff *pa = &p->aff[p->n_aff++];
		*pa = (struct paff){ .groups = intern_groups(s, a->groups, a->n_groups),
				     .n_groups = a->n_groups,
				     .key = sched_topology_key(s, a->topology_key),
				     .anti = a->anti,
				     .required = a->required,
				     .weight = a->weight };
		pa->cnt = counters_new(pa->groups, a->n_groups, pa->key);
		/* Placed tasks carry required anti-affinity, so later tasks of those groups keep away. */
		for (size_t j = 0; a->anti && a->required && j < a->n_groups; j++) {
			p->my_rules = xrealloc(p->my_rules, (p->n_my_rules + 1) * sizeof(*p->my_rules));
			p->my_rules[p->n_my_rules++] = sched_antirule(s, pa->groups[j], pa->key);
		}
	}
	return 0;
}

static int prep_tolerations(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
			    struct berth_error **err)
{
	p->tols = xcalloc(r->n_tolerations + 1, sizeof(*p->tols));
	for (size_t i = 0; i < r->n_tolerations; i++) {
		const struct sched_toleration *t = &r->tolerations[i];
		if ((unsigned)t->op > SCHED_TOL_EXISTS || t->effect < -1 || t->effect > SCHED_NO_EXECUTE)
			return berth_error_msg(err, EINVAL, "tolerations[%zu]: invalid operator or effect",
					       i);
		if ((!t->key || !*t->key) && t->op != SCHED_TOL_EXISTS)
			return berth_error_msg(err, EINVAL,
					       "tolerations[%zu]: an empty key needs operator Exists", i);
	}
	p->n_tols = sched_tolerations_intern(s, r->tolerations, r->n_tolerations, p->tols);
	return 0;
}

static int prep_spread(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
		       struct berth_error **err)
{
	p->spread = xcalloc(r->n_spread + 1, sizeof(*p->spread));
	for (size_t i = 0; i < r->n_spread; i++) {
		const struct sched_spread_constraint *c = &r->spread[i];
		if (c->max_skew < 1 || !c->topology_key || !*c->topology_key || c->min_domains < 0)
			return berth_error_msg(
			    err, EINVAL,
			    "topologySpreadConstraints[%zu]: maxSkew >= 1 and topologyKey required", i);
		if (c->min_domains && !c->do_not_schedule)
			return berth_error_msg(
			    err, EINVAL, "topologySpreadConstraints[%zu]: minDomains needs DoNotSchedule", i);
		struct pspread *ps = &p->spread[p->n_spread++];
		ps->max_skew = c->max_skew;
		ps->min_domains = c->min_domains;
		ps->key = sched_topology_key(s, c->topology_key);
		ps->dns = c->do_not_schedule;
		/* Kubernetes selects pods by labels; berth by groups, the request's own by default. */
		ps->n_groups = c->n_groups ? c->n_groups : 1;
		ps->groups = intern_groups(s, c->groups, c->n_groups);
		if (!c->n_groups)
			ps->groups[0] = p->group; /* intern_groups left room for one */
		for (size_t j = 0; j < ps->n_groups; j++)
			ps->self |= ps->groups[j] == p->group;
		ps->cnt = counters_new(ps->groups, ps->n_groups, ps->key);
	}
	return 0;
}

static int prep_k8s(struct sched_snapshot *s, struct sched_prepared *p, const struct sched_request *r,
		    struct berth_error **err)
{
	if (r->n_node_selector > SCHED_MAX_ATTRS || r->n_affinities > SCHED_MAX_TERMS ||
	    r->n_tolerations > SCHED_MAX_TERMS || r->n_spread > SCHED_MAX_TERMS)
		return berth_error_msg(err, E2BIG,
				       "too many selectors, affinities, tolerations or spread constraints");
	int ret = prep_selector(s, p, r, err);
	if (ret >= 0)
		ret = prep_affinities(s, p, r, err);
	if (ret >= 0)
		ret = prep_tolerations(s, p, r, err);
	if (ret >= 0)
		ret = prep_spread(s, p, r, err);
	return ret;
}

static int prep_resources(struct sched_prepared *p, const struct sched_request *r, struct berth_error **err)
{
	if (r->cpu < 0 || r->memory < 0 || r->memory_reservation < 0)
		return berth_error_msg(err, EINVAL, "cpu and memory must not be negative");
	if (r->memory && r->memory_reservation > r->memory)
		return berth_error_msg(err, EINVAL, "memoryReservation %d is above the memory limit %d",
				       r->memory_reservation, r->memory);
	if (r->n_static_ports + r->n_dynamic_ports > SCHED_MAX_PORTS)
		return berth_error_msg(err, E2BIG, "at most %d host ports per task", SCHED_MAX_PORTS);
	p->cpu = r->cpu;
	p->mem_hard = r->memory;
	p->mem = r->memory_reservation ? r->memory_reservation : r->memory;
	p->static_ports = xcalloc(r->n_static_ports + 1, sizeof(*p->static_ports));
	for (size_t i = 0; i < r->n_static_ports; i++) {
		if (!r->static_ports[i])
			return berth_error_msg(err, EINVAL, "host port 0 is not a static port");
		for (size_t j = 0; j < i; j++)
			if (r->static_ports[j] == r->static_ports[i])
				return berth_error_msg(err, EINVAL, "host port %u given twice",
						       r->static_ports[i]);
		p->static_ports[i] = r->static_ports[i];
	}
	p->n_static = r->n_static_ports;
	p->n_dynamic = r->n_dynamic_ports;
	return 0;
}

int sched_prepare(struct sched_snapshot *s, const struct sched_request *r, struct sched_prepared **ret,
		  struct berth_error **err)
{
	_cleanup_(sched_prepared_freep) struct sched_prepared *p = xcalloc(1, sizeof(*p));
	p->s = s;
	p->family = sched_intern(&s->in, r->family);
	if (r->group && *r->group) {
		p->group = sched_intern(&s->in, r->group);
	} else if (r->family && *r->family) {
		_cleanup_free_ char *g = xasprintf("family:%s", r->family);
		p->group = sched_intern(&s->in, g);
	}
	int ret_ = prep_resources(p, r, err);
	if (ret_ >= 0)
		ret_ = prep_strategies(s, p, r, err);
	if (ret_ >= 0)
		ret_ = prep_constraints(s, p, r, err);
	if (ret_ >= 0)
		ret_ = prep_k8s(s, p, r, err);
	if (ret_ < 0)
		return ret_;
	p->priority = r->priority;
	p->preempt = r->preempt;
	p->soft = p->n_preferred || p->n_aff || p->n_spread;
	p->now = r->now;
	*ret = TAKE_PTR(p);
	return 0;
}

struct sched_prepared *sched_prepared_free(struct sched_prepared *p)
{
	if (!p)
		return NULL;
	free(p->static_ports);
	for (size_t i = 0; i < p->n_member_of; i++)
		sched_query_free(p->member_of[i]);
	free(p->member_of);
	free(p->selector);
	for (size_t i = 0; p->required && p->required[i].exprs; i++) {
		for (size_t j = 0; j < p->required[i].n_exprs; j++)
			free(p->required[i].exprs[j].vals);
		free(p->required[i].exprs);
	}
	free(p->required);
	for (size_t i = 0; p->preferred && p->preferred[i].exprs; i++) {
		for (size_t j = 0; j < p->preferred[i].n_exprs; j++)
			free(p->preferred[i].exprs[j].vals);
		free(p->preferred[i].exprs);
	}
	free(p->preferred);
	for (size_t i = 0; p->aff && p->aff[i].groups; i++) {
		free(p->aff[i].groups);
		free(p->aff[i].cnt);
	}
	free(p->aff);
	free(p->tols);
	free(p->my_rules);
	free(p->c_rules);
	for (size_t i = 0; p->spread && p->spread[i].groups; i++) {
		free(p->spread[i].groups);
		free(p->spread[i].cnt);
		free(p->spread[i].doms);
	}
	free(p->spread);
	free(p);
	return NULL;
}

size_t sched_service_strategies(const struct sched_strategy *user, size_t n_user,
				struct sched_strategy out[SCHED_MAX_STRATEGIES])
{
	static const struct sched_strategy az = { SCHED_SPREAD, "attribute:ecs.availability-zone" };
	static const struct sched_strategy inst = { SCHED_SPREAD, "instanceId" };
	size_t n = 0;
	bool az_first = n_user && user[0].type == SCHED_SPREAD && user[0].field &&
			(streq(user[0].field, az.field) || streq(user[0].field, "ecs.availability-zone"));
	if (!az_first)
		out[n++] = az;
	if (!n_user) {
		out[n++] = inst;
		return n;
	}
	for (size_t i = 0; i < n_user && n < SCHED_MAX_STRATEGIES; i++)
		out[n++] = user[i];
	return n;
}
