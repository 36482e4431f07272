/*
 * plan.c - desired vs current stack objects -> ordered steps (see plan.h).
 *
 * Whether a task definition changed is decided by the hash the file's
 * mapping gives (stored as a tag on each registered revision), not by
 * comparing with what the server stores: the server fills in defaults, and
 * a comparison that knew all of them would break with every new one. The
 * field-by-field diff is for people; the hash is for deciding.
 */
#include "common/json.h"
#include "common/strbuf.h"
#include "stack/compose.h"
#include "stack/plan.h"

/* The first object of list whose field is value, or NULL. Borrowed. */
static json_t *find_by(const json_t *list, const char *field, const char *value)
{
	size_t i;
	json_t *x;
	json_array_foreach (list, i, x)
		if (streq_ptr(json_string_value(json_object_get(x, field)), value))
			return x;
	return NULL;
}

const char *stack_tag_value(const json_t *tags, const char *key)
{
	return json_string_value(json_object_get(find_by(tags, "key", key), "value"));
}

static void add_change(json_t *changes, const char *field, const json_t *old, const json_t *new)
{
	json_array_append_new(changes, json_pack("{s:s,s:O,s:O}", "field", field, "old",
						 old ? old : json_null(), "new", new ? new : json_null()));
}

static bool in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (streq(*list, s))
			return true;
	return false;
}

/* Integers and reals that are equal numbers, strings "256" and 256: the server may normalise either way. */
static bool same_scalar(const json_t *a, const json_t *b)
{
	if (json_equal((json_t *)a, (json_t *)b))
		return true;
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return false;
}

void stack_diff(const char *path, const json_t *want, const json_t *have, const char *const *managed,
		json_t *changes)
{
	if (json_is_object(want) && json_is_object(have)) {
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)want, k, v) {
			_cleanup_free_ char *p = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
			stack_diff(p, v, json_object_get(have, k), managed, changes);
		}
		json_object_foreach ((json_t *)have, k, v) {
			if (json_object_get(want, k) || !in_list(managed, k))
				continue;
			_cleanup_free_ char *p = *path ? xasprintf("%s.%s", path, k) : xstrdup(k);
			add_change(changes, p, v, NULL);
		}
		return;
	}
	if (json_is_array(want) && json_is_array(have) && json_array_size(want) == json_array_size(have)) {
		for (size_t i = 0; i < json_array_size(want); i++) {
			_cleanup_free_ char *p = xasprintf("%s[%zu]", path, i);
			stack_diff(p, json_array_get(want, i), json_array_get(have, i), managed, changes);
		}
		return;
	}
	if (!have && (json_is_array(want) && json_array_size(want) == 0))
		return; /* an empty list is the server's absent list */
	if (!have || !same_scalar(want, have))
		add_change(changes, path, have, want);
}

/* What the mapping may set and a server would not add by itself: its absence is a change. */
static const char *const TASKDEF_MANAGED[] = {
	"command",
	"entryPoint",
	"healthCheck",
	"dockerLabels",
	"stopTimeout",
	"workingDirectory",
	"user",
	"pseudoTerminal",
	"interactive",
	"readonlyRootFilesystem",
	"privileged",
	"linuxParameters",
	"dnsServers",
	"dnsSearchDomains",
	"systemControls",
	"extraHosts",
	"ulimits",
	"logConfiguration",
	"memory",
	"memoryReservation",
	"cpu",
	NULL,
};

struct planner {
	const json_t *desired, *current;
	const struct stack_plan_opts *o;
	json_t *taskdefs, *lb_creates, *services, *jobs, *deletes, *lb_deletes, *warnings;
	struct berth_error **err;
};

static json_t *find_lb(const json_t *lbs, const char *name)
{
	return find_by(lbs, "loadBalancerName", name);
}

static const char *lb_name_of_tg(const json_t *lbs, const char *tg)
{
	return json_string_value(json_object_get(find_by(lbs, "targetGroupArn", tg), "loadBalancerName"));
}

/* The task definition step of s when its hash differs from the current revision's; NULL when unchanged. */
static void plan_taskdef(struct planner *p, const json_t *s, const json_t *cur)
{
	const char *hash = json_string_value(json_object_get(s, "hash"));
	const json_t *ctags = json_object_get(cur, "tags");
	if (cur && streq_ptr(stack_tag_value(ctags, STACK_TAG_HASH), hash))
		return;
	json_t *req = json_deep_copy(json_object_get(s, "taskDefinition"));
	json_t *tags =
	    json_pack("[{s:s,s:s},{s:s,s:O},{s:s,s:O},{s:s,s:O}]", "key", STACK_TAG_NAMESPACE, "value",
		      json_string_value(json_object_get(p->desired, "stack")), "key", STACK_TAG_SERVICE,
		      "value", json_object_get(s, "name"), "key", STACK_TAG_HASH, "value",
		      json_object_get(s, "hash"), "key", STACK_TAG_KIND, "value", json_object_get(s, "kind"));
	json_object_set_new(req, "tags", tags);
	json_t *changes = json_array();
	if (cur)
		stack_diff("", json_object_get(s, "taskDefinition"), json_object_get(cur, "taskDefinition"),
			   TASKDEF_MANAGED, changes);
	json_array_append_new(p->taskdefs,
			      json_pack("{s:s,s:s,s:O,s:O,s:o,s:o}", "op", cur ? "update" : "create", "kind",
					"taskdef", "name", json_object_get(s, "ecsName"), "service",
					json_object_get(s, "name"), "request", req, "changes", changes));
}

/* Load balancers of s: create the missing ones; the service's loadBalancers refer to them by name. */
static int plan_lbs(struct planner *p, const json_t *s, json_t *want_lbs)
{
	const json_t *all = json_object_get(p->current, "loadBalancers");
	size_t i;
	json_t *port;
	json_array_foreach (json_object_get(s, "ports"), i, port) {
		const char *name = json_string_value(json_object_get(port, "lb"));
		json_int_t pub = json_integer_value(json_object_get(port, "published"));
		const json_t *have = find_lb(all, name);
		size_t k;
		json_t *l;
		json_array_foreach (all, k, l) {
			if (l == have || json_integer_value(json_object_get(l, "port")) != pub ||
			    (p->o->cluster &&
			     !streq_ptr(json_string_value(json_object_get(l, "cluster")), p->o->cluster)))
				continue;
			/* a listener of this stack that moves to another service is freed by this apply: no
			 */
			return berth_error_msg(
			    p->err, EEXIST,
			    "line %lld: service '%s' publishes port %lld, the listener of load "
			    "balancer '%s'",
			    (long long)json_integer_value(json_object_get(port, "line")),
			    json_string_value(json_object_get(s, "name")), (long long)pub,
			    json_string_value(json_object_get(l, "loadBalancerName")));
		}
		if (have && json_integer_value(json_object_get(have, "port")) != pub)
			return berth_error_msg(p->err, EEXIST, "load balancer '%s' exists with port %lld",
					       name,
					       (long long)json_integer_value(json_object_get(have, "port")));
		if (!have)
			json_array_append_new(p->lb_creates,
					      json_pack("{s:s,s:s,s:s,s:O,s:{s:s,s:I,s:s,s:O}}", "op",
							"create", "kind", "lb", "name", name, "service",
							json_object_get(s, "name"), "request", "name", name,
							"port", pub, "protocol", "tcp", "deregistrationDelay",
							json_object_get(port, "deregistrationDelay")));
		json_array_append_new(want_lbs, json_pack("{s:s,s:O,s:O}", "lb", name, "containerName",
							  json_object_get(s, "name"), "containerPort",
							  json_object_get(port, "target")));
	}
	return 0;
}

/* want_lbs with the target group ARNs of existing load balancers (new ones stay by name). */
static json_t *resolved_lbs(struct planner *p, const json_t *want_lbs)
{
	json_t *out = json_array();
	size_t i;
	json_t *w;
	json_array_foreach (want_lbs, i, w) {
		const json_t *have = find_lb(json_object_get(p->current, "loadBalancers"),
					     json_string_value(json_object_get(w, "lb")));
		json_t *x =
		    json_pack("{s:O,s:O,s:O}", "targetGroupArn",
			      have ? json_object_get(have, "targetGroupArn") : json_object_get(w, "lb"),
			      "containerName", json_object_get(w, "containerName"), "containerPort",
			      json_object_get(w, "containerPort"));
		json_array_append_new(out, x);
	}
	return out;
}

/* Delete the load balancers a service used that the file no longer gives it. */
static void plan_lb_deletes(struct planner *p, const json_t *cur_svc, const json_t *want_lbs,
			    const char *after)
{
	size_t i;
	json_t *l;
	json_array_foreach (json_object_get(cur_svc, "loadBalancers"), i, l) {
		const char *name = lb_name_of_tg(json_object_get(p->current, "loadBalancers"),
						 json_string_value(json_object_get(l, "targetGroupArn")));
		bool kept = false;
		size_t k;
		json_t *w;
		json_array_foreach (want_lbs, k, w)
			kept |= streq_ptr(json_string_value(json_object_get(w, "lb")), name);
		if (name && !kept)
			json_array_append_new(p->lb_deletes,
					      json_pack("{s:s,s:s,s:s,s:s?}", "op", "delete", "kind", "lb",
							"name", name, "after", after));
	}
}

static const char *const SERVICE_FIELDS[] = { "desiredCount", "deploymentConfiguration",
					      "placementConstraints", "placementStrategy" };

static int plan_service(struct planner *p, const json_t *s)
{
	const char *ecs = json_string_value(json_object_get(s, "ecsName"));
	const json_t *cur = json_object_get(json_object_get(p->current, "services"), ecs);
	const json_t *csvc = json_object_get(cur, "service");
	const json_t *want = json_object_get(s, "service");
	const char *strategy = json_string_value(json_object_get(want, "schedulingStrategy"));
	if (csvc && !streq_ptr(json_string_value(json_object_get(csvc, "schedulingStrategy")), strategy))
		return berth_error_msg(
		    p->err, EINVAL,
		    "line %lld: service '%s' can not change its mode (%s to %s): remove it from "
		    "the file and apply with --prune first",
		    (long long)json_integer_value(json_object_get(s, "line")),
		    json_string_value(json_object_get(s, "name")),
		    json_string_value(json_object_get(csvc, "schedulingStrategy")), strategy);
	plan_taskdef(p, s, cur);
	_cleanup_json_ json_t *want_lbs = json_array();
	int r = plan_lbs(p, s, want_lbs);
	if (r < 0)
		return r;
	json_t *req = json_deep_copy(want);
	json_object_set_new(req, "loadBalancers", resolved_lbs(p, want_lbs));
	bool td_changed =
	    json_array_size(p->taskdefs) &&
	    streq_ptr(json_string_value(json_object_get(
			  json_array_get(p->taskdefs, json_array_size(p->taskdefs) - 1), "name")),
		      ecs);
	if (!csvc) {
		json_object_set_new(req, "tags", json_deep_copy(json_object_get(s, "tags")));
		json_array_append_new(p->services,
				      json_pack("{s:s,s:s,s:s,s:O,s:o,s:O}", "op", "create", "kind",
						"service", "name", ecs, "service", json_object_get(s, "name"),
						"request", req, "line", json_object_get(s, "line")));
		return 0;
	}
	json_t *changes = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(SERVICE_FIELDS); i++)
		if (json_object_get(req, SERVICE_FIELDS[i]))
			stack_diff(SERVICE_FIELDS[i], json_object_get(req, SERVICE_FIELDS[i]),
				   json_object_get(csvc, SERVICE_FIELDS[i]), NULL, changes);
	json_t *cl = json_object_get(csvc, "loadBalancers");
	if (!json_equal(json_object_get(req, "loadBalancers"), cl ? cl : json_array()) &&
	    (json_array_size(cl) || json_array_size(json_object_get(req, "loadBalancers"))))
		add_change(changes, "loadBalancers", cl, json_object_get(req, "loadBalancers"));
	if (td_changed) {
		_cleanup_free_ char *next = xasprintf("%s (new revision)", ecs);
		json_t *nv = json_string(next);
		add_change(changes, "taskDefinition", json_object_get(csvc, "taskDefinition"), nv);
		json_decref(nv);
	}
	if (json_array_size(changes)) {
		json_object_set_new(req, "service", json_string(ecs));
		json_object_del(req, "serviceName");
		json_object_del(req, "schedulingStrategy");
		if (!td_changed) /* keep the revision the service runs */
			json_object_set(req, "taskDefinition", json_object_get(csvc, "taskDefinition"));
		json_array_append_new(
		    p->services, json_pack("{s:s,s:s,s:s,s:O,s:o,s:o,s:O}", "op", "update", "kind", "service",
					   "name", ecs, "service", json_object_get(s, "name"), "request", req,
					   "changes", changes, "line", json_object_get(s, "line")));
	} else {
		json_decref(changes);
		json_decref(req);
	}
	plan_lb_deletes(p, csvc, want_lbs, NULL);
	return 0;
}

static int plan_job(struct planner *p, const json_t *s)
{
	const char *ecs = json_string_value(json_object_get(s, "ecsName"));
	const json_t *cur = json_object_get(json_object_get(p->current, "jobs"), ecs);
	const json_t *csvc =
	    json_object_get(json_object_get(json_object_get(p->current, "services"), ecs), "service");
	if (json_array_size(json_object_get(s, "ports")))
		return berth_error_msg(p->err, EINVAL,
				       "line %lld: the one-off job '%s' can not publish ports",
				       (long long)json_integer_value(json_object_get(s, "line")),
				       json_string_value(json_object_get(s, "name")));
	if (csvc) { /* it was a service: that goes first */
		json_array_append_new(p->deletes,
				      json_pack("{s:s,s:s,s:s,s:O}", "op", "delete", "kind", "service",
						"name", ecs, "service", json_object_get(s, "name")));
		plan_lb_deletes(p, csvc, NULL, ecs);
	}
	size_t before = json_array_size(p->taskdefs);
	plan_taskdef(p, s, cur);
	if (json_array_size(p->taskdefs) == before)
		return 0;
	json_array_append_new(p->jobs, json_pack("{s:s,s:s,s:s,s:O,s:O}", "op", "run", "kind", "job", "name",
						 ecs, "service", json_object_get(s, "name"), "count",
						 json_object_get(json_object_get(s, "service"), "count")));
	return 0;
}

static bool desired_has(const json_t *desired, const char *ecs, const char *kind)
{
	size_t i;
	json_t *s;
	json_array_foreach (json_object_get(desired, "services"), i, s)
		if (streq_ptr(json_string_value(json_object_get(s, "ecsName")), ecs) &&
		    (!kind || streq_ptr(json_string_value(json_object_get(s, "kind")), kind)))
			return true;
	return false;
}

static void plan_prune(struct planner *p)
{
	const char *k;
	json_t *v;
	json_object_foreach (json_object_get(p->current, "services"), k, v) {
		if (desired_has(p->desired, k, NULL))
			continue;
		if (!p->o->prune) {
			_cleanup_free_ char *w =
			    xasprintf("service %s is not in the file: apply with --prune to delete it", k);
			json_array_append_new(p->warnings, json_string(w));
			continue;
		}
		json_array_append_new(
		    p->deletes, json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", "service", "name", k));
		plan_lb_deletes(p, json_object_get(v, "service"), NULL, k);
	}
	json_object_foreach (json_object_get(p->current, "jobs"), k, v) {
		if (desired_has(p->desired, k, "job"))
			continue;
		if (!p->o->prune) {
			_cleanup_free_ char *w =
			    xasprintf("job %s is not in the file: apply with --prune to delete it", k);
			json_array_append_new(p->warnings, json_string(w));
			continue;
		}
		json_array_append_new(p->deletes,
				      json_pack("{s:s,s:s,s:s}", "op", "delete", "kind", "job", "name", k));
	}
}

int stack_plan(const json_t *desired, const json_t *current, const struct stack_plan_opts *o, json_t **ret,
	       struct berth_error **err)
{
	struct planner p = { desired,      current,      o,
			     json_array(), json_array(), json_array(),
			     json_array(), json_array(), json_array(),
			     json_array(), err };
	int r = 0;
	size_t i;
	json_t *s;
	json_array_foreach (json_object_get(desired, "services"), i, s) {
		bool job = streq_ptr(json_string_value(json_object_get(s, "kind")), "job");
		if ((r = job ? plan_job(&p, s) : plan_service(&p, s)) < 0)
			break;
	}
	if (r == 0)
		plan_prune(&p);
	json_t *steps = json_array();
	json_array_extend(steps, p.taskdefs);
	json_array_extend(steps, p.lb_creates);
	json_array_extend(steps, p.services);
	json_array_extend(steps, p.jobs);
	json_array_extend(steps, p.deletes);
	json_array_extend(steps, p.lb_deletes);
	json_t *parts[] = { p.taskdefs, p.lb_creates, p.services, p.jobs, p.deletes, p.lb_deletes };
	for (size_t k = 0; k < ARRAY_SIZE(parts); k++)
		json_decref(parts[k]);
	if (r < 0) {
		json_decref(steps);
		json_decref(p.warnings);
		return r;
	}
	*ret = json_pack("{s:o,s:o}", "steps", steps, "warnings", p.warnings);
	return 0;
}

size_t stack_plan_changes(const json_t *plan)
{
	return json_array_size(json_object_get(plan, "steps"));
}

static void print_value(FILE *f, const json_t *v)
{
	if (!v || json_is_null(v)) {
		fputs("(none)", f);
		return;
	}
	_cleanup_free_ char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	fputs(s ? s : "?", f);
}

void stack_plan_print(const json_t *plan, FILE *f)
{
	size_t i;
	json_t *st;
	json_array_foreach (json_object_get(plan, "steps"), i, st) {
		const char *op = json_string_value(json_object_get(st, "op"));
		const char *kind = json_string_value(json_object_get(st, "kind"));
		char sign = streq(op, "create") || streq(op, "run") ? '+' : streq(op, "delete") ? '-' : '~';
		fprintf(f, "%c %-8s %s", sign, streq(op, "run") ? "run job" : kind,
			json_string_value(json_object_get(st, "name")));
		const json_t *req = json_object_get(st, "request");
		if (streq(kind, "lb") && req)
			fprintf(f, " (port %lld)",
				(long long)json_integer_value(json_object_get(req, "port")));
		else if (streq(kind, "service") && streq(op, "create") &&
			 json_object_get(req, "desiredCount"))
			fprintf(f, " (%lld replica%s)",
				(long long)json_integer_value(json_object_get(req, "desiredCount")),
				json_integer_value(json_object_get(req, "desiredCount")) == 1 ? "" : "s");
		else if (streq(kind, "service") && streq(op, "create"))
			fputs(" (global)", f);
		else if (streq(op, "run"))
			fprintf(f, " (%lld task%s)",
				(long long)json_integer_value(json_object_get(st, "count")),
				json_integer_value(json_object_get(st, "count")) == 1 ? "" : "s");
		fputc('\n', f);
		size_t k;
		json_t *ch;
		json_array_foreach (json_object_get(st, "changes"), k, ch) {
			fprintf(f, "    %s: ", json_string_value(json_object_get(ch, "field")));
			print_value(f, json_object_get(ch, "old"));
			fputs(" -> ", f);
			print_value(f, json_object_get(ch, "new"));
			fputc('\n', f);
		}
	}
}
