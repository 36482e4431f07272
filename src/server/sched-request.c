/*
 * sched-request.c - from ECS JSON to a scheduler request (src/sched/): the
 * RunTask/StartTask input (placementConstraints, placementStrategy, group),
 * the task definition (size, host ports, placementConstraints) and berth's
 * scheduling extensions ("berthScheduling", Kubernetes-shaped: priority,
 * preempt, nodeSelector, nodeAffinity, taskAffinity, taskAntiAffinity,
 * tolerations, topologySpreadConstraints), which aws-CLI and boto3 users set
 * as `berth:*` tags of the task definition (docs/scheduler.md).
 *
 * The request borrows strings from the JSON it was built from; the arrays
 * it points to live in the sreq's arena until server_sreq_done(). Only the shapes
 * are checked here; sched_prepare() checks the meaning (weights, operators,
 * the cluster query language) and names the field and position.
 * Pure (jansson and src/sched/ only; in server-core): unit-tested by
 * tests/unit/test-server-sched.c.
 */
#include <time.h>

#include "server/internal.h"
#include "server/taskdef.h"

/* Tag name -> berthScheduling field. */
static const char *const TAG_FIELDS[][2] = {
	{ "berth:priority", "priority" },         { "berth:preempt", "preempt" },
	{ "berth:nodeSelector", "nodeSelector" }, { "berth:nodeAffinity", "nodeAffinity" },
	{ "berth:taskAffinity", "taskAffinity" }, { "berth:taskAntiAffinity", "taskAntiAffinity" },
	{ "berth:tolerations", "tolerations" },   { "berth:topologySpread", "topologySpreadConstraints" },
};

static void *arena(struct sreq *r, size_t n, size_t size)
{
	void *p = xcalloc(n ? n : 1, size);
	r->blocks = xrealloc(r->blocks, (r->n_blocks + 1) * sizeof(*r->blocks));
	r->blocks[r->n_blocks++] = p;
	return p;
}

void server_sreq_done(struct sreq *r)
{
	for (size_t i = 0; i < r->n_blocks; i++)
		free(r->blocks[i]);
	free(r->blocks);
	free(r->msg);
	*r = (struct sreq){ 0 };
}

static int bad(struct sreq *r, const char *what, const char *fmt, ...) _printf_(3, 4);
static int bad(struct sreq *r, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		abort();
	va_end(ap);
	free(r->msg);
	r->msg = xasprintf("%s%s%s", what, m[0] == '[' ? "" : ": ", m);
	return -EINVAL;
}

/* An array of strings (NULL: none) into a borrowed vector. */
static int strings(struct sreq *r, json_t *a, const char *what, const char *const **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > 64)
		return bad(r, what, "expected a list of at most 64 strings");
	const char **v = arena(r, json_array_size(a), sizeof(*v));
	size_t i;
	json_t *x;
	json_array_foreach (a, i, x) {
		if (!json_is_string(x))
			return bad(r, what, "item %zu: expected a string", i);
		v[i] = json_string_value(x);
	}
	*ret = v;
	*ret_n = json_array_size(a);
	return 0;
}

static int list(struct sreq *r, json_t *v, const char *what, size_t max)
{
	if (!json_is_array(v))
		return bad(r, what, "expected a list");
	if (json_array_size(v) > max)
		return bad(r, what, "at most %zu items", max);
	return 0;
}

static int ext_selector(struct sreq *r, json_t *v, const char *what)
{
	if (!json_is_object(v) || json_object_size(v) > SCHED_MAX_TERMS)
		return bad(r, what, "expected an object of at most %d string values", SCHED_MAX_TERMS);
	struct sched_attr *a = arena(r, json_object_size(v), sizeof(*a));
	const char *k;
	json_t *x;
	size_t n = 0;
	json_object_foreach (v, k, x) {
		if (!json_is_string(x))
			return bad(r, what, "'%s': expected a string", k);
		a[n++] = (struct sched_attr){ k, json_string_value(x) };
	}
	r->req.node_selector = a;
	r->req.n_node_selector = n;
	return 0;
}

static const char *const OPS[] = { "In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt" };

static int ext_terms(struct sreq *r, json_t *v, const char *what, bool preferred,
		     struct sched_node_term **ret, size_t *ret_n)
{
	if (list(r, v, what, SCHED_MAX_TERMS) < 0)
		return -EINVAL;
	struct sched_node_term *t = arena(r, json_array_size(v), sizeof(*t));
	size_t i, k;
	json_t *x, *e;
	json_array_foreach (v, i, x) {
		json_t *me = json_object_get(x, "matchExpressions");
		if (!json_is_object(x) || list(r, me, what, SCHED_MAX_TERMS) < 0)
			return bad(r, what, "[%zu]: expected {\"matchExpressions\": [...]%s}", i,
				   preferred ? ", \"weight\": 1-100" : "");
		if (preferred && !json_is_integer(json_object_get(x, "weight")))
			return bad(r, what, "[%zu].weight: expected an integer 1-100", i);
		struct sched_match_expr *ex = arena(r, json_array_size(me), sizeof(*ex));
		json_array_foreach (me, k, e) {
			const char *key = json_string_value(json_object_get(e, "key"));
			const char *op = json_string_value(json_object_get(e, "operator"));
			size_t o = ARRAY_SIZE(OPS);
			for (size_t j = 0; op && j < ARRAY_SIZE(OPS); j++)
				if (streq(op, OPS[j]))
					o = j;
			if (!key || o == ARRAY_SIZE(OPS))
				return bad(
				    r, what,
				    "[%zu].matchExpressions[%zu]: needs 'key' and 'operator' (In, NotIn, "
				    "Exists, DoesNotExist, Gt, Lt)",
				    i, k);
			_cleanup_free_ char *w =
			    xasprintf("%s[%zu].matchExpressions[%zu].values", what, i, k);
			ex[k] = (struct sched_match_expr){ .key = key, .op = (enum sched_match_op)o };
			if (strings(r, json_object_get(e, "values"), w, &ex[k].values, &ex[k].n_values) < 0)
				return -EINVAL;
		}
		t[i] = (struct sched_node_term){ ex, json_array_size(me),
						 (int32_t)json_integer_value(json_object_get(x, "weight")) };
	}
	*ret = t;
	*ret_n = json_array_size(v);
	return 0;
}

static int ext_affinity(struct sreq *r, json_t *v, const char *what)
{
	if (!json_is_object(v))
		return bad(r, what, "expected {\"required\": [...], \"preferred\": [...]}");
	const char *k;
	json_t *x;
	json_object_foreach (v, k, x)
		if (!streq(k, "required") && !streq(k, "preferred"))
			return bad(r, what, "unknown field '%s' (required, preferred)", k);
	_cleanup_free_ char *wr = xasprintf("%s.required", what), *wp = xasprintf("%s.preferred", what);
	struct sched_node_term *t;
	x = json_object_get(v, "required");
	if (x) {
		if (ext_terms(r, x, wr, false, &t, &r->req.n_required_terms) < 0)
			return -EINVAL;
		r->req.required_terms = t;
	}
	x = json_object_get(v, "preferred");
	if (x) {
		if (ext_terms(r, x, wp, true, &t, &r->req.n_preferred_terms) < 0)
			return -EINVAL;
		r->req.preferred_terms = t;
	}
	return 0;
}

static int ext_task_affinity(struct sreq *r, json_t *v, const char *what, bool anti)
{
	if (list(r, v, what, SCHED_MAX_TERMS) < 0)
		return -EINVAL;
	size_t n = r->req.n_affinities + json_array_size(v);
	struct sched_task_affinity *a = arena(r, n, sizeof(*a));
	if (r->req.n_affinities)
		memcpy(a, r->req.affinities, r->req.n_affinities * sizeof(*a));
	size_t i;
	json_t *x;
	json_array_foreach (v, i, x) {
		struct sched_task_affinity *t = &a[r->req.n_affinities + i];
		json_t *req = json_object_get(x, "required"), *w = json_object_get(x, "weight");
		t->topology_key = json_string_value(json_object_get(x, "topologyKey"));
		_cleanup_free_ char *wg = xasprintf("%s[%zu].groups", what, i);
		if (!json_is_object(x) || !t->topology_key || (req && !json_is_boolean(req)) ||
		    (w && !json_is_integer(w)) || !json_object_get(x, "groups"))
			return bad(r, what,
				   "[%zu]: expected {\"groups\": [...], \"topologyKey\": KEY, \"required\": "
				   "true|false, \"weight\": 1-100}",
				   i);
		if (strings(r, json_object_get(x, "groups"), wg, &t->groups, &t->n_groups) < 0)
			return -EINVAL;
		t->anti = anti;
		t->required = !req || json_is_true(req);
		t->weight = (int32_t)json_integer_value(w);
	}
	r->req.affinities = a;
	r->req.n_affinities = n;
	return 0;
}

static int effect_of(const char *s)
{
	if (!s)
		return -1;
	if (streq(s, "NoSchedule"))
		return SCHED_NO_SCHEDULE;
	if (streq(s, "PreferNoSchedule"))
		return SCHED_PREFER_NO_SCHEDULE;
	if (streq(s, "NoExecute"))
		return SCHED_NO_EXECUTE;
	return -2;
}

static int ext_tolerations(struct sreq *r, json_t *v, const char *what)
{
	if (list(r, v, what, SCHED_MAX_TERMS) < 0)
		return -EINVAL;
	struct sched_toleration *t = arena(r, json_array_size(v), sizeof(*t));
	size_t i;
	json_t *x;
	json_array_foreach (v, i, x) {
		const char *op = json_string_value(json_object_get(x, "operator"));
		json_t *sec = json_object_get(x, "tolerationSeconds");
		json_t *eff = json_object_get(x, "effect");
		int e = effect_of(json_string_value(eff));
		if (!json_is_object(x) || (op && !streq(op, "Equal") && !streq(op, "Exists")) ||
		    (eff && e < 0) || (sec && !json_is_integer(sec)))
			return bad(
			    r, what,
			    "[%zu]: expected {\"key\": K, \"operator\": \"Equal\"|\"Exists\", \"value\": V, "
			    "\"effect\": \"NoSchedule\"|\"PreferNoSchedule\"|\"NoExecute\", "
			    "\"tolerationSeconds\": N}",
			    i);
		t[i] = (struct sched_toleration){
			.key = json_string_value(json_object_get(x, "key")),
			.op = op && streq(op, "Exists") ? SCHED_TOL_EXISTS : SCHED_TOL_EQUAL,
			.value = json_string_value(json_object_get(x, "value")),
			.effect = eff ? e : -1,
			.seconds = sec ? json_integer_value(sec) : -1,
		};
	}
	r->req.tolerations = t;
	r->req.n_tolerations = json_array_size(v);
	return 0;
}

static int ext_spread(struct sreq *r, json_t *v, const char *what)
{
	if (list(r, v, what, SCHED_MAX_TERMS) < 0)
		return -EINVAL;
	struct sched_spread_constraint *sp = arena(r, json_array_size(v), sizeof(*sp));
	size_t i;
	json_t *x;
	json_array_foreach (v, i, x) {
		const char *when = json_string_value(json_object_get(x, "whenUnsatisfiable"));
		json_t *skew = json_object_get(x, "maxSkew"), *md = json_object_get(x, "minDomains");
		sp[i].topology_key = json_string_value(json_object_get(x, "topologyKey"));
		if (!json_is_object(x) || !json_is_integer(skew) || !sp[i].topology_key ||
		    (when && !streq(when, "DoNotSchedule") && !streq(when, "ScheduleAnyway")) ||
		    (md && !json_is_integer(md)))
			return bad(
			    r, what,
			    "[%zu]: expected {\"maxSkew\": N, \"topologyKey\": KEY, \"whenUnsatisfiable\": "
			    "\"DoNotSchedule\"|\"ScheduleAnyway\", \"minDomains\": N, \"groups\": [...]}",
			    i);
		sp[i].max_skew = (int32_t)json_integer_value(skew);
		sp[i].do_not_schedule = !when || streq(when, "DoNotSchedule");
		sp[i].min_domains = (int32_t)json_integer_value(md);
		_cleanup_free_ char *wg = xasprintf("%s[%zu].groups", what, i);
		if (strings(r, json_object_get(x, "groups"), wg, &sp[i].groups, &sp[i].n_groups) < 0)
			return -EINVAL;
	}
	r->req.spread = sp;
	r->req.n_spread = json_array_size(v);
	return 0;
}

/* One berthScheduling field into r->req; `what` names it in errors. */
static int ext_field(struct sreq *r, const char *name, json_t *v, const char *what)
{
	if (streq(name, "priority")) {
		if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
		    json_integer_value(v) > INT32_MAX)
			return bad(r, what, "expected a 32-bit integer");
		r->req.priority = (int32_t)json_integer_value(v);
		return 0;
	}
	if (streq(name, "preempt")) {
		if (!json_is_boolean(v))
			return bad(r, what, "expected true or false");
		r->req.preempt = json_is_true(v);
		return 0;
	}
	if (streq(name, "nodeSelector"))
		return ext_selector(r, v, what);
	if (streq(name, "nodeAffinity"))
		return ext_affinity(r, v, what);
	if (streq(name, "taskAffinity") || streq(name, "taskAntiAffinity"))
		return ext_task_affinity(r, v, what, streq(name, "taskAntiAffinity"));
	if (streq(name, "tolerations"))
		return ext_tolerations(r, v, what);
	if (streq(name, "topologySpreadConstraints"))
		return ext_spread(r, v, what);
	return bad(r, what,
		   "unknown field (priority, preempt, nodeSelector, nodeAffinity, taskAffinity, "
		   "taskAntiAffinity, tolerations, topologySpreadConstraints)");
}

int server_sreq_ext(struct sreq *r, json_t *ext)
{
	const char *k;
	json_t *v;
	json_object_foreach (ext, k, v) {
		_cleanup_free_ char *w = xasprintf("berthScheduling.%s", k);
		if (ext_field(r, k, v, w) < 0)
			return -EINVAL;
	}
	return 0;
}

int server_sreq_collect_ext(json_t *in, json_t **ret, char **ret_msg)
{
	json_t *top = json_object_get(in, "berthScheduling");
	if (top && !json_is_object(top)) {
		*ret_msg = xstrdup("berthScheduling: expected an object");
		return -EINVAL;
	}
	struct sreq r = { 0 };
	if (top && server_sreq_ext(&r, top) < 0) {
		*ret_msg = TAKE_PTR(r.msg);
		server_sreq_done(&r);
		return -EINVAL;
	}
	server_sreq_done(&r);
	json_t *ext = top ? json_deep_copy(top) : json_object();
	size_t i;
	json_t *t;
	json_array_foreach (json_object_get(in, "tags"), i, t) {
		const char *key = json_string_value(json_object_get(t, "key"));
		const char *val = json_string_value(json_object_get(t, "value"));
		if (!key || !startswith(key, "berth:"))
			continue;
		const char *field = NULL;
		for (size_t k = 0; k < ARRAY_SIZE(TAG_FIELDS); k++)
			if (streq(key, TAG_FIELDS[k][0]))
				field = TAG_FIELDS[k][1];
		if (!field) {
			*ret_msg = xasprintf("tag '%s': unknown berth scheduling tag (berth:priority, "
					     "berth:preempt, berth:nodeSelector, berth:nodeAffinity, "
					     "berth:taskAffinity, berth:taskAntiAffinity, berth:tolerations, "
					     "berth:topologySpread)",
					     key);
			json_decref(ext);
			return -EINVAL;
		}
		json_error_t je;
		json_t *v = json_loads(val ? val : "", JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
		if (!v) {
			*ret_msg = xasprintf("tag '%s': value is not JSON: %s at position %d", key, je.text,
					     je.position);
			json_decref(ext);
			return -EINVAL;
		}
		_cleanup_free_ char *what = xasprintf("tag '%s'", key);
		int rr = ext_field(&r, field, v, what);
		json_object_set_new(ext, field, v);
		if (rr < 0) {
			*ret_msg = TAKE_PTR(r.msg);
			server_sreq_done(&r);
			json_decref(ext);
			return -EINVAL;
		}
		server_sreq_done(&r);
	}
	*ret = ext;
	return 0;
}

/* Host ports the task definition binds statically (bridge: hostPort > 0; host: hostPort or containerPort). */
static int host_ports(struct sreq *r, json_t *td)
{
	const char *mode = json_string_value(json_object_get(td, "networkMode"));
	bool host = streq_ptr(mode, "host");
	if (!host && mode && !streq(mode, "bridge"))
		return 0;
	size_t i, k, n = 0;
	json_t *c, *pm;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, c)
		json_array_foreach (json_object_get(c, "portMappings"), k, pm) {
			json_int_t p = json_integer_value(json_object_get(pm, "hostPort"));
			if (!p && host)
				p = json_integer_value(json_object_get(pm, "containerPort"));
			if (p <= 0 || p > 65535)
				continue;
			bool dup = false;
			for (size_t j = 0; j < n; j++)
				dup |= r->ports[j] == p;
			if (dup)
				continue; /* tcp and udp of one port: one slot (docs/scheduler.md) */
			if (n == SCHED_MAX_PORTS)
				return bad(r, "portMappings", "at most %d host ports per task",
					   SCHED_MAX_PORTS);
			r->ports[n++] = (uint16_t)p;
		}
	r->req.static_ports = r->ports;
	r->req.n_static_ports = n;
	return 0;
}

static int constraints(struct sreq *r, json_t *list_, const char *what)
{
	size_t i;
	json_t *x;
	json_array_foreach (list_, i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		const char *e = json_string_value(json_object_get(x, "expression"));
		if (r->n_constraints == SCHED_MAX_CONSTRAINTS)
			return bad(r, what, "at most %d placement constraints in all", SCHED_MAX_CONSTRAINTS);
		struct sched_constraint *c = &r->constraints[r->n_constraints++];
		if (streq_ptr(t, "distinctInstance")) {
			*c = (struct sched_constraint){ SCHED_DISTINCT_INSTANCE, NULL };
		} else if (streq_ptr(t, "memberOf")) {
			if (!e)
				return bad(r, what, "[%zu]: memberOf needs an expression", i);
			*c = (struct sched_constraint){ SCHED_MEMBER_OF, e };
		} else {
			return bad(r, what, "[%zu].type: expected distinctInstance or memberOf", i);
		}
	}
	return 0;
}

int server_sreq_build(struct sreq *r, const struct sreq_input *in)
{
	*r = (struct sreq){ 0 };
	json_t *td = in->td;
	r->req.group = in->group;
	r->req.family = json_string_value(json_object_get(td, "family"));
	r->req.cpu = (int32_t)in->cpu;
	r->req.memory = (int32_t)in->memory;
	r->req.now = (int64_t)time(NULL);
	if (in->strategies && list(r, in->strategies, "placementStrategy", SCHED_MAX_STRATEGIES) < 0)
		return -EINVAL;
	size_t i;
	json_t *x;
	json_array_foreach (in->strategies, i, x) {
		const char *t = json_string_value(json_object_get(x, "type"));
		const char *f = json_string_value(json_object_get(x, "field"));
		struct sched_strategy *s = &r->strategies[i];
		if (streq_ptr(t, "binpack"))
			*s = (struct sched_strategy){ SCHED_BINPACK, f };
		else if (streq_ptr(t, "spread"))
			*s = (struct sched_strategy){ SCHED_SPREAD, f };
		else if (streq_ptr(t, "random"))
			*s = (struct sched_strategy){ SCHED_RANDOM, f };
		else
			return bad(r, "placementStrategy", "[%zu].type: expected binpack, spread or random",
				   i);
		if (s->field && !*s->field)
			s->field = NULL;
	}
	r->req.strategies = r->strategies;
	r->req.n_strategies = json_array_size(in->strategies);
	if (!r->req.n_strategies) { /* berth's RunTask default (as before): spread over instances */
		r->strategies[0] = (struct sched_strategy){ SCHED_SPREAD, "instanceId" };
		r->req.n_strategies = 1;
	}
	/* the request's first, so that errors name its own indexes */
	if ((in->constraints &&
	     list(r, in->constraints, "placementConstraints", SCHED_MAX_CONSTRAINTS) < 0) ||
	    constraints(r, in->constraints, "placementConstraints") < 0 ||
	    constraints(r, json_object_get(td, "placementConstraints"),
			"taskDefinition.placementConstraints") < 0)
		return -EINVAL;
	r->req.constraints = r->constraints;
	r->req.n_constraints = r->n_constraints;
	if (host_ports(r, td) < 0)
		return -EINVAL;
	json_t *ext = json_object_get(td, "berthScheduling");
	return ext ? server_sreq_ext(r, ext) : 0;
}

int server_sreq_prepare(struct sreq *r, struct sched_snapshot *snap, struct sched_prepared **ret)
{
	_cleanup_error_ struct berth_error *err = NULL;
	if (sched_prepare(snap, &r->req, ret, &err) < 0) {
		free(r->msg);
		r->msg = berth_error_string(err);
		return -EINVAL;
	}
	return 0;
}

char *server_sreq_extra_head(json_t *td)
{
	json_t *o = json_object(), *ext = json_object_get(td, "berthScheduling");
	if (json_object_get(ext, "tolerations"))
		json_object_set(o, "tolerations", json_object_get(ext, "tolerations"));
	if (json_object_get(ext, "taskAntiAffinity"))
		json_object_set(o, "taskAntiAffinity", json_object_get(ext, "taskAntiAffinity"));
	_cleanup_free_ char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	size_t n = strlen(s);
	return xstrndup(s + 1, n >= 2 ? n - 2 : 0); /* the members, without the braces */
}

void server_sreq_task_extra_text(const struct sreq *r, const char *head, const struct sched_placement *pl,
				 struct strbuf *sb)
{
	strbuf_addch(sb, '{');
	strbuf_addstr(sb, head);
	if (*head)
		strbuf_addch(sb, ',');
	if (pl->n_ports) {
		strbuf_addstr(sb, "\"hostPorts\":[");
		for (size_t i = 0; i < pl->n_ports; i++)
			strbuf_addf(sb, "%s%u", i ? "," : "", pl->ports[i]);
		strbuf_addstr(sb, "],");
	}
	if (r->req.priority)
		strbuf_addf(sb, "\"priority\":%d,", r->req.priority);
	_cleanup_free_ char *why = server_sreq_placement_text(r, pl);
	strbuf_addstr(sb, "\"explanation\":");
	strbuf_add_json_string(sb, why);
	strbuf_addch(sb, '}');
}

json_t *server_sreq_task_extra(const struct sreq *r, json_t *td, const struct sched_placement *pl)
{
	_cleanup_free_ char *head = server_sreq_extra_head(td);
	struct strbuf sb = STRBUF_INIT;
	server_sreq_task_extra_text(r, head, pl, &sb);
	json_t *o = json_loadb(sb.buf, sb.len, 0, NULL);
	strbuf_release(&sb);
	return o;
}

char *server_sreq_placement_text(const struct sreq *r, const struct sched_placement *pl)
{
	struct strbuf sb = STRBUF_INIT;
	if (pl->examined <= 1 && pl->feasible == 1) {
		strbuf_addstr(&sb, "the node asked for (every filter passed)");
		return strbuf_detach(&sb, NULL);
	}
	strbuf_addf(&sb, "best of %u feasible node%s", pl->feasible, pl->feasible == 1 ? "" : "s");
	for (size_t i = 0; i < r->req.n_strategies; i++) {
		const struct sched_strategy *st = &r->req.strategies[i];
		strbuf_addstr(&sb, i ? ", then " : " by ");
		strbuf_addf(&sb, "%s%s%s%s",
			    st->type == SCHED_BINPACK  ? "binpack"
			    : st->type == SCHED_SPREAD ? "spread"
						       : "random",
			    st->field ? "(" : "", st->field ? st->field : "", st->field ? ")" : "");
	}
	uint32_t rejected = pl->examined - pl->feasible;
	strbuf_addf(&sb, "; %u node%s examined", pl->examined, pl->examined == 1 ? "" : "s");
	if (rejected) {
		strbuf_addf(&sb, ", %u rejected:", rejected);
		bool first = true;
		for (int i = 0; i < SCHED_R__MAX; i++)
			if (pl->rejected[i]) {
				strbuf_addf(&sb, "%s %u %s", first ? "" : ",", pl->rejected[i],
					    sched_reason_text((enum sched_reason)i));
				first = false;
			}
	}
	return strbuf_detach(&sb, NULL);
}

/* The last '/'-separated part of an ARN (records.c's server_arn_tail, which needs the store). */
static const char *tail_of(const char *arn)
{
	const char *slash = arn ? strrchr(arn, '/') : NULL;
	return slash ? slash + 1 : arn ? arn : "";
}

int server_sreq_task_spec(struct sreq *r, json_t *task, struct sched_task_spec *ret)
{
	*r = (struct sreq){ 0 };
	json_t *extra = json_object_get(task, "berthPlacement");
	size_t i, n = 0;
	json_t *x;
	json_array_foreach (json_object_get(extra, "hostPorts"), i, x)
		if (json_is_integer(x) && n < SCHED_MAX_PORTS)
			r->ports[n++] = (uint16_t)json_integer_value(x);
	json_t *t = json_object_get(extra, "tolerations");
	json_t *a = json_object_get(extra, "taskAntiAffinity");
	if ((t && ext_tolerations(r, t, "tolerations") < 0) ||
	    (a && ext_task_affinity(r, a, "taskAntiAffinity", true) < 0))
		return -EINVAL;
	size_t n_anti = 0;
	struct sched_task_affinity *anti = arena(r, r->req.n_affinities, sizeof(*anti));
	for (i = 0; i < r->req.n_affinities; i++)
		if (r->req.affinities[i].required)
			anti[n_anti++] = r->req.affinities[i];
	const char *cpu = json_string_value(json_object_get(task, "cpu"));
	const char *mem = json_string_value(json_object_get(task, "memory"));
	*ret = (struct sched_task_spec){
		.id = tail_of(json_string_value(json_object_get(task, "taskArn"))),
		.node_id = tail_of(json_string_value(json_object_get(task, "containerInstanceArn"))),
		.group = json_string_value(json_object_get(task, "group")),
		.cpu = (int32_t)strtol(cpu ? cpu : "0", NULL, 10),
		.memory = (int32_t)strtol(mem ? mem : "0", NULL, 10),
		.ports = r->ports,
		.n_ports = n,
		.priority = (int32_t)json_integer_value(json_object_get(extra, "priority")),
		.started_at = (int64_t)json_number_value(json_object_get(task, "createdAt")),
		.tolerations = r->req.tolerations,
		.n_tolerations = r->req.n_tolerations,
		.anti_affinity = anti,
		.n_anti_affinity = n_anti,
	};
	return 0;
}
