/*
 * placement.c - the built-in placement step (see placement.h). Linear in
 * nodes per task, which is fine for the cluster sizes one server runs until
 * the scheduler library replaces it.
 */
#include <openssl/rand.h>

#include "common/strbuf.h"
#include "server/placement.h"

enum refusal { R_NONE, R_DRAINING, R_AGENT, R_ATTRIBUTE, R_DISTINCT, R_CPU, R_MEMORY, R_COUNT };

static const char *const REASONS[R_COUNT] = {
	[R_DRAINING] = "DRAINING",
	[R_AGENT] = "AGENT",
	[R_ATTRIBUTE] = "MemberOf placement constraint unsatisfied.",
	[R_DISTINCT] = "DistinctInstance placement constraint unsatisfied.",
	[R_CPU] = "RESOURCE:CPU",
	[R_MEMORY] = "RESOURCE:MEMORY",
};
static const char *const DETAILS[R_COUNT] = {
	[R_DRAINING] = "not ACTIVE",
	[R_AGENT] = "agent disconnected",
	[R_ATTRIBUTE] = "memberOf unsatisfied",
	[R_DISTINCT] = "already running a task of the group",
	[R_CPU] = "insufficient CPU",
	[R_MEMORY] = "insufficient memory",
};

static const char *attr_value(json_t *attrs, const char *name)
{
	size_t i;
	json_t *a;
	json_array_foreach (attrs, i, a)
		if (streq_ptr(json_string_value(json_object_get(a, "name")), name))
			return json_string_value(json_object_get(a, "value")) ?: "";
	return NULL;
}

/* Parse "attribute:NAME OP VALUE" (OP == or !=). */
static bool parse_member_of(const char *expr, char name[129], bool *eq, char value[129])
{
	char op[4];
	if (!expr || sscanf(expr, " attribute:%128s %3s %128s", name, op, value) != 3)
		return false;
	if (streq(op, "==") || streq(op, "!=")) {
		*eq = streq(op, "==");
		return true;
	}
	return false;
}

int placement_check(const struct placement_request *rq, char **ret_msg)
{
	size_t i;
	json_t *x;
	json_array_foreach (rq->constraints, i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		const char *e = json_string_value(json_object_get(x, "expression"));
		char n[129], v[129];
		bool eq;
		if (t && streq(t, "distinctInstance"))
			continue;
		if (t && streq(t, "memberOf") && parse_member_of(e, n, &eq, v))
			continue;
		*ret_msg =
		    xasprintf("Invalid 'placementConstraints[%zu]': type distinctInstance, or memberOf with "
			      "'attribute:NAME == VALUE' or '!= VALUE'.",
			      i);
		return -EINVAL;
	}
	json_array_foreach (rq->strategies, i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		const char *f = json_string_value(json_object_get(x, "field"));
		bool ok =
		    t && ((streq(t, "random") && !f) ||
			  (streq(t, "spread") && f &&
			   (streq(f, "instanceId") || streq(f, "host") || startswith(f, "attribute:"))) ||
			  (streq(t, "binpack") && f && (!strcasecmp(f, "cpu") || !strcasecmp(f, "memory"))));
		if (!ok) {
			*ret_msg = xasprintf(
			    "Invalid 'placementStrategy[%zu]': spread (instanceId or attribute:NAME), "
			    "binpack (cpu or memory) or random.",
			    i);
			return -EINVAL;
		}
	}
	return 0;
}

static enum refusal refuse(const struct placement_request *rq, const struct placement_node *nd)
{
	if (!nd->active)
		return R_DRAINING;
	if (!nd->connected)
		return R_AGENT;
	size_t i;
	json_t *x;
	json_array_foreach (rq->constraints, i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		char n[129], v[129];
		bool eq;
		if (streq_ptr(t, "distinctInstance") && nd->group_tasks > 0)
			return R_DISTINCT;
		if (streq_ptr(t, "memberOf") &&
		    parse_member_of(json_string_value(json_object_get(x, "expression")), n, &eq, v)) {
			const char *have = attr_value(nd->attributes, n);
			if ((have && streq(have, v)) != eq)
				return R_ATTRIBUTE;
		}
	}
	if (nd->memory < rq->memory)
		return R_MEMORY;
	if (nd->cpu < rq->cpu)
		return R_CPU;
	return R_NONE;
}

/* Tasks of the group on nodes sharing nd's value of the spread field. */
static int spread_count(const char *field, struct placement_node *nodes, size_t n, size_t k)
{
	if (streq(field, "instanceId") || streq(field, "host"))
		return nodes[k].group_tasks;
	const char *name = field + strlen("attribute:");
	const char *mine = attr_value(nodes[k].attributes, name);
	int sum = 0;
	for (size_t i = 0; i < n; i++)
		if (streq_ptr(attr_value(nodes[i].attributes, name), mine))
			sum += nodes[i].group_tasks;
	return sum;
}

/* <0 when node a is better than b under the strategies. */
static int64_t compare(const struct placement_request *rq, struct placement_node *nodes, size_t n, size_t a,
		       size_t b, const unsigned *rnd)
{
	json_t *strategies = rq->strategies;
	size_t i;
	json_t *x;
	json_array_foreach (strategies, i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		const char *f = json_string_value(json_object_get(x, "field"));
		int64_t d = 0;
		if (streq(t, "spread"))
			d = spread_count(f, nodes, n, a) - spread_count(f, nodes, n, b);
		else if (streq(t, "binpack"))
			d = !strcasecmp(f, "cpu") ? nodes[a].cpu - nodes[b].cpu
						  : nodes[a].memory - nodes[b].memory;
		else
			d = (int64_t)rnd[a] - (int64_t)rnd[b];
		if (d)
			return d;
	}
	if (json_array_size(strategies) == 0 && nodes[a].group_tasks != nodes[b].group_tasks)
		return nodes[a].group_tasks - nodes[b].group_tasks;
	return strcmp(nodes[a].id, nodes[b].id);
}

static char *summarize(const int *counts, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "0/%zu nodes available", n);
	const char *sep = ": ";
	for (int r = R_COUNT - 1; r > R_NONE; r--)
		if (counts[r]) {
			strbuf_addf(&sb, "%s%d %s", sep, counts[r], DETAILS[r]);
			sep = ", ";
		}
	return strbuf_detach(&sb, NULL);
}

void placement_place(const struct placement_request *rq, struct placement_node *nodes, size_t n,
		     struct placement_result *out, char **ret_detail)
{
	unsigned *rnd = xcalloc(n ? n : 1, sizeof(unsigned));
	if (n)
		RAND_bytes((unsigned char *)rnd, (int)(n * sizeof(unsigned)));
	if (ret_detail)
		*ret_detail = NULL;
	for (int t = 0; t < rq->count; t++) {
		int best = -1;
		int counts[R_COUNT] = { 0 };
		for (size_t k = 0; k < n; k++) {
			enum refusal r = refuse(rq, &nodes[k]);
			counts[r]++;
			if (r == R_NONE && (best < 0 || compare(rq, nodes, n, k, (size_t)best, rnd) < 0))
				best = (int)k;
		}
		out[t].node = best;
		out[t].reason = NULL;
		if (best < 0) {
			int worst = R_NONE;
			for (int r = R_COUNT - 1; r > R_NONE && worst == R_NONE; r--)
				if (counts[r])
					worst = r;
			out[t].reason = worst == R_NONE ? "No Container Instances were found in your cluster."
							: REASONS[worst];
			if (ret_detail && !*ret_detail)
				*ret_detail = summarize(counts, n);
			continue;
		}
		nodes[best].cpu -= rq->cpu;
		nodes[best].memory -= rq->memory;
		nodes[best].group_tasks++;
	}
	free(rnd);
}
