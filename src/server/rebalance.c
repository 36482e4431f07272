/*
 * rebalance.c - services' scheduling extensions: the rebalancer and the
 * disruption budget (docs/scheduler.md, "Rebalancing").
 *
 * A service's `berthScheduling` (CreateService/UpdateService field, or at
 * CreateService the tags `berth:rebalance` and `berth:disruptionBudget` whose
 * values are the JSON of one field, for aws-CLI/boto3 users):
 *   "rebalance":        {"enabled": true, "maxMoves": 2}   (off by default)
 *   "disruptionBudget": {"maxUnavailable": 1}
 *
 * Both run on the leader once a second, on the service controller's pass
 * (server_deploy_run: its service records and task lists, no reads of their own).
 *
 * Rebalancer: a REPLICA service at rest (the pass changed nothing, one
 * deployment, COMPLETED, every wanted task RUNNING, none moving or draining)
 * asks the scheduler for a move plan (sched_rebalance over the cluster's
 * snapshot with the service's own request: strategies with ECS's AZ-first
 * default, constraints, berthScheduling of the task definition) that strictly
 * improves its spread (every spread key) or binpack, at most maxMoves tasks.
 * Each task to move gets `berthRebalanceAt`; the service controller
 * (deploy.c) treats such a task as one on a leaving node: it starts a
 * replacement where the scheduler puts it, and stops the old task only once
 * the replacement is healthy and minimumHealthyPercent allows (start before
 * stop). The next plan waits until those moves are done. After node joins,
 * drains and scale-ins the service thus returns to balance.
 *
 * Disruption budget: every second the leader computes each service's
 * disruptionsAllowed = maxUnavailable - (desired - healthy running), at least
 * 0, and publishes it when it changed at /berth/budgets/CLUSTER/service:NAME,
 * which every replica's scheduler cache applies: preemption never stops more
 * of the service's tasks than that in one decision, on any replica. A
 * preemption uses the budget in its own transaction (tasks.c, budget_bind):
 * its victims stop being counted as running in the same write, so this
 * count agrees. The leader writes only when the budget did not change after
 * the task records it counted were read (a compare on the key's revision):
 * a preemption in between is never undone by an older count.
 */
#include "common/log.h"
#include "common/json.h"
#include "server/internal.h"
#include "server/taskdef.h"

#define REBALANCE_MAX_MOVES 100
#define REBALANCE_GIVE_UP   300.0 /* seconds: a move whose replacement never got healthy is dropped */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* ---- validation (CreateService / UpdateService) ---- */

static int bad_int(json_t *v, int64_t min, int64_t max)
{
	return !json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max;
}

static int check_field(struct ecs_call *c, const char *what, const char *k, json_t *v, json_t **ret)
{
	const char *f;
	json_t *x;
	if (!streq(k, "rebalance") && !streq(k, "disruptionBudget"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "%s.%s: unknown field (rebalance, disruptionBudget)", what, k);
	if (!json_is_object(v))
		return server_ecs_fail(c, "InvalidParameterException", "%s.%s: expected an object", what, k);
	if (streq(k, "rebalance")) {
		json_object_foreach (v, f, x) {
			if (streq(f, "enabled") && !json_is_boolean(x))
				return server_ecs_fail(c, "InvalidParameterException",
						       "%s.rebalance.enabled: expected true or false", what);
			if (streq(f, "maxMoves") && bad_int(x, 1, REBALANCE_MAX_MOVES))
				return server_ecs_fail(
				    c, "InvalidParameterException",
				    "%s.rebalance.maxMoves: expected an integer from 1 to %d", what,
				    REBALANCE_MAX_MOVES);
			if (!streq(f, "enabled") && !streq(f, "maxMoves"))
				return server_ecs_fail(c, "InvalidParameterException",
						       "%s.rebalance.%s: unknown field (enabled, maxMoves)",
						       what, f);
		}
		json_t *en = json_object_get(v, "enabled"), *mm = json_object_get(v, "maxMoves");
		*ret = json_pack("{s:b,s:I}", "enabled", en ? json_is_true(en) : true, "maxMoves",
				 mm ? json_integer_value(mm) : (json_int_t)1);
		return 0;
	}
	{ /* disruptionBudget */
		json_object_foreach (v, f, x)
			if (!streq(f, "maxUnavailable") || bad_int(x, 0, 1000000))
				return server_ecs_fail(
				    c, "InvalidParameterException",
				    "%s.disruptionBudget.%s: expected maxUnavailable, an integer >= 0", what,
				    f);
		if (!json_object_get(v, "maxUnavailable"))
			return server_ecs_fail(c, "InvalidParameterException",
					       "%s.disruptionBudget.maxUnavailable: required", what);
	}
	*ret = json_deep_copy(v);
	return 0;
}

int server_service_sched_ext(struct ecs_call *c, json_t *in, json_t *svc)
{
	json_t *ext = json_object_get(in, "berthScheduling");
	if (ext && !json_is_object(ext))
		return server_ecs_fail(c, "InvalidParameterException", "berthScheduling: expected an object");
	_cleanup_json_ json_t *merged =
	    json_deep_copy(json_object_get(svc, "berthScheduling")) ?: json_object();
	const char *k;
	json_t *v;
	json_object_foreach (ext, k, v) {
		json_t *norm = NULL;
		if (check_field(c, "berthScheduling", k, v, &norm) < 0)
			return -1;
		json_object_set_new(merged, k, norm);
	}
	size_t i;
	json_t *t;
	json_array_foreach (json_object_get(in, "tags"), i, t) {
		const char *key = jstr(t, "key"), *value = jstr(t, "value");
		const char *field = streq_ptr(key, "berth:rebalance")          ? "rebalance"
				    : streq_ptr(key, "berth:disruptionBudget") ? "disruptionBudget"
									       : NULL;
		if (!field || json_object_get(ext, field))
			continue;
		_cleanup_json_ json_t *j = value ? json_loads(value, JSON_DECODE_ANY, NULL) : NULL;
		_cleanup_free_ char *what = xasprintf("tag '%s'", key);
		json_t *norm = NULL;
		if (!j)
			return server_ecs_fail(c, "InvalidParameterException", "%s: the value must be JSON",
					       what);
		if (check_field(c, what, field, j, &norm) < 0)
			return -1;
		json_object_set_new(merged, field, norm);
	}
	if (json_object_size(merged))
		json_object_set(svc, "berthScheduling", merged);
	return 0;
}

static const char *tag_field(const char *key)
{
	return streq_ptr(key, "berth:rebalance")          ? "rebalance"
	       : streq_ptr(key, "berth:disruptionBudget") ? "disruptionBudget"
							  : NULL;
}

int server_service_sched_tags(struct ecs_call *c, const char *arn, json_t *add, json_t *remove_keys)
{
	_cleanup_free_ char *prefix =
	    xasprintf("arn:aws:ecs:%s:%s:service/", c->srv->region, c->srv->account);
	if (!startswith(arn, prefix))
		return 0;
	bool any = false;
	size_t i;
	json_t *x;
	json_array_foreach (add, i, x)
		any |= tag_field(jstr(x, "key")) != NULL;
	json_array_foreach (remove_keys, i, x)
		any |= tag_field(json_string_value(x)) != NULL;
	if (!any)
		return 0;
	_cleanup_free_ char *key = xasprintf("/berth/services/%s", arn + strlen(prefix));
	_cleanup_json_ json_t *in = json_pack("{s:o}", "tags", add ? json_incref(add) : json_array());
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		_cleanup_json_ json_t *svc = NULL;
		int64_t rev = 0;
		int r = server_record_get(c->srv, key, &svc, &rev, &err);
		if (r == -ENOENT)
			return 0; /* resource_exists() answers for a missing service */
		if (r < 0)
			return server_ecs_internal(c, err);
		json_t *ext = json_object_get(svc, "berthScheduling");
		json_array_foreach (remove_keys, i, x)
			if (tag_field(json_string_value(x)) && ext)
				json_object_del(ext, tag_field(json_string_value(x)));
		if (ext && !json_object_size(ext))
			json_object_del(svc, "berthScheduling");
		/* the tags are the newer request: they win over the field (at CreateService it is the other
		 * way) */
		if (server_service_sched_ext(c, in, svc) < 0)
			return -1;
		bool ok = false;
		if (server_record_cas(c->srv, key, svc, rev, &ok, &err) < 0)
			return server_ecs_internal(c, err);
		if (ok)
			return 0;
	}
	return server_ecs_fail(c, "ServerException", "service '%s' is being changed concurrently; retry",
			       arn);
}

/* ---- scale-in keys (deploy.c) ---- */

size_t server_service_spread_attributes(json_t *svc, const char **out, size_t max)
{
	size_t n = 0, i;
	json_t *st;
	json_array_foreach (json_object_get(svc, "placementStrategy"), i, st) {
		const char *f = jstr(st, "field");
		if (!streq_ptr(jstr(st, "type"), "spread") || !f || n == max)
			continue;
		if (startswith(f, "attribute:"))
			f += strlen("attribute:");
		if (!streq(f, "ecs.availability-zone") && !streq(f, "instanceId") && !streq(f, "host"))
			out[n++] = f;
	}
	return n;
}

const char *server_instance_attribute(json_t *inst, const char *name)
{
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(inst, "attributes"), i, a)
		if (streq_ptr(jstr(a, "name"), name))
			return jstr(a, "value");
	return json_string_value(json_object_get(json_object_get(inst, "labels"), name));
}

/* ---- the leader's tick ---- */

struct rb_service {
	json_t *svc;
	const char *name, *cluster;
	char *group;
	json_t *tasks; /* the service's tasks with desiredStatus RUNNING */
	int64_t desired, running;
	bool moving; /* a task is being moved or drained */
};

static void gather(struct rb_service *x, json_t *all)
{
	x->tasks = json_array();
	size_t i;
	json_t *t;
	json_array_foreach (all, i, t) {
		if (!streq_ptr(jstr(t, "group"), x->group) ||
		    !streq_ptr(jstr(t, "desiredStatus"), "RUNNING") || !server_task_active(t))
			continue;
		json_array_append(x->tasks, t);
		x->running += streq_ptr(jstr(t, "lastStatus"), "RUNNING");
		x->moving |= json_object_get(t, "berthRebalanceAt") || json_object_get(t, "drainingAt");
	}
}

/* One service at rest: one COMPLETED deployment, every wanted task RUNNING, nothing moving. */
static bool at_rest(struct rb_service *x)
{
	json_t *deps = json_object_get(x->svc, "deployments");
	return streq_ptr(jstr(x->svc, "status"), "ACTIVE") && !server_service_is_daemon(x->svc) &&
	       !server_service_is_external(x->svc) && json_array_size(deps) == 1 &&
	       streq_ptr(jstr(json_array_get(deps, 0), "rolloutState"), "COMPLETED") && !x->moving &&
	       x->running == x->desired && (int64_t)json_array_size(x->tasks) == x->desired && x->desired > 0;
}

/* The move plan for a service (caller frees with sched_moves_free). */
static int plan(struct server *s, struct rb_service *x, size_t max_moves, struct sched_move **ret,
		size_t *ret_n)
{
	json_t *primary = json_array_get(json_object_get(x->svc, "deployments"), 0);
	struct ecs_call c = { .srv = s };
	_cleanup_json_ json_t *td = NULL;
	if (server_taskdef_resolve(&c, jstr(primary, "taskDefinition"), &td) < 0) {
		free(c.msg);
		return -1;
	}
	_cleanup_json_ json_t *strat =
	    server_service_strategies(json_object_get(x->svc, "placementStrategy"));
	struct sreq rq;
	struct sreq_input in = { td,
				 json_object_get(x->svc, "placementConstraints"),
				 strat,
				 x->group,
				 server_taskdef_cpu(td),
				 server_taskdef_memory(td) };
	struct sched_snapshot *snap = NULL;
	struct sched_prepared *p = NULL;
	if (server_sched_cache_lock(s, x->cluster, &snap, NULL) < 0)
		return -1;
	int r = -1;
	if (server_sreq_build(&rq, &in) == 0 && server_sreq_prepare(&rq, snap, &p) == 0)
		r = sched_rebalance(snap, p, max_moves, ret, ret_n, NULL);
	server_sched_cache_unlock(s);
	sched_prepared_free(p);
	server_sreq_done(&rq);
	return r < 0 ? -1 : 0;
}

/*
 * Mark a task for the service controller to replace (start before stop), or
 * (to_node NULL) take the mark back.
 */
static bool mark(struct server *s, const char *cluster, const char *task_id, const char *to_node, double now)
{
	_cleanup_free_ char *key = xasprintf("/berth/tasks/%s/%s", cluster, task_id);
	for (int attempt = 0; attempt < 5; attempt++) {
		_cleanup_json_ json_t *t = NULL;
		int64_t rev;
		if (server_record_get(s, key, &t, &rev, NULL) < 0 ||
		    !streq_ptr(jstr(t, "desiredStatus"), "RUNNING"))
			return false;
		if (to_node) {
			json_object_set_new(t, "berthRebalanceAt", json_real(now));
			json_object_set_new(t, "berthRebalanceTo", json_string(to_node));
		} else {
			json_object_del(t, "berthRebalanceAt");
			json_object_del(t, "berthRebalanceTo");
		}
		json_object_set_new(t, "version",
				    json_integer(json_integer_value(json_object_get(t, "version")) + 1));
		bool ok = false;
		if (server_record_cas(s, key, t, rev, &ok, NULL) < 0)
			return false;
		if (ok)
			return true;
	}
	return false;
}

static void note(struct server *s, struct rb_service *x, const char *msg)
{
	_cleanup_free_ char *key = server_service_key(x->cluster, x->name);
	for (int attempt = 0; attempt < 5; attempt++) {
		_cleanup_json_ json_t *rec = NULL;
		int64_t rev;
		bool ok = false;
		if (server_record_get(s, key, &rec, &rev, NULL) < 0)
			return;
		server_service_event(rec, "%s", msg);
		if (server_record_cas(s, key, rec, rev, &ok, NULL) < 0 || ok)
			return;
	}
}

/* Moves that did not finish in REBALANCE_GIVE_UP seconds (the replacement never fit or got healthy). */
static void give_up_stale(struct server *s, struct rb_service *x, double now)
{
	size_t i;
	json_t *t;
	json_array_foreach (x->tasks, i, t) {
		json_t *at = json_object_get(t, "berthRebalanceAt");
		if (at && now - json_number_value(at) > REBALANCE_GIVE_UP &&
		    mark(s, x->cluster, server_arn_tail(jstr(t, "taskArn") ?: ""), NULL, now))
			log_fields(LOG_LEVEL_WARN, "rebalance move given up", "service", x->name, "task",
				   jstr(t, "taskArn"), NULL);
	}
}

static void rebalance_moves(struct server *s, struct rb_service *x, json_t *cfg)
{
	if (!json_is_true(json_object_get(cfg, "enabled")) || !at_rest(x))
		return;
	json_int_t max = json_integer_value(json_object_get(cfg, "maxMoves"));
	struct sched_move *moves = NULL;
	size_t n = 0;
	if (plan(s, x, (size_t)(max > 0 ? max : 1), &moves, &n) < 0 || n == 0) {
		sched_moves_free(moves, n);
		return;
	}
	double now = server_record_now();
	struct strbuf sb = STRBUF_INIT;
	size_t marked = 0;
	for (size_t i = 0; i < n; i++)
		if (mark(s, x->cluster, moves[i].task_id, moves[i].to_node, now))
			strbuf_addf(&sb, "%s(task %s) from %s to %s", marked++ ? ", " : "", moves[i].task_id,
				    moves[i].from_node, moves[i].to_node);
	if (marked) {
		_cleanup_free_ char *msg =
		    xasprintf("(service %s) is rebalancing %zu tasks (start before stop): %s.", x->name,
			      marked, sb.buf);
		note(s, x, msg);
		log_fields(LOG_LEVEL_INFO, "service rebalancing", "service", x->name, "moves", sb.buf, NULL);
	}
	strbuf_release(&sb);
	sched_moves_free(moves, n);
}

/*
 * Publish a group's budget (allowed < 0: none) in the store when it differs
 * from the one the scheduler snapshots hold: every replica's cache applies
 * /berth/budgets/CLUSTER/GROUP (sched-cache.c), so a RunTask on any replica
 * preempts within it.
 */
static void budget_publish(struct server *s, const char *cluster, const char *group, int64_t allowed,
			   int64_t counted_at)
{
	struct sched_snapshot *snap = NULL;
	if (server_sched_cache_lock_fresh(s, cluster, 1000, &snap, NULL) < 0)
		return;
	int32_t cur = sched_group_budget(snap, group);
	server_sched_cache_unlock(s);
	if (cur == (allowed < 0 ? -1 : allowed))
		return;
	_cleanup_free_ char *key = xasprintf("/berth/budgets/%s/%s", cluster, group);
	if (allowed < 0) {
		(void)store_remove(s->store, key, NULL, NULL);
		return;
	}
	_cleanup_free_ char *v = xasprintf("{\"allowed\":%lld}", (long long)allowed);
	struct store_cmp cmp = { key, STORE_CMP_MOD, STORE_CMP_LESS, counted_at + 1 };
	struct store_op op = { STORE_OP_PUT, key, v, strlen(v), 0 };
	bool ok;
	(void)store_txn(s->store, &cmp, 1, &op, 1, &ok, NULL, NULL); /* !ok: the next pass counts again */
}

static void budget(struct server *s, struct rb_service *x, json_t *cfg, int64_t counted_at)
{
	int64_t max = json_integer_value(json_object_get(cfg, "maxUnavailable"));
	int64_t allowed = max - MAX(0, x->desired - x->running);
	budget_publish(s, x->cluster, x->group, MAX(0, MIN(allowed, INT32_MAX)), counted_at);
}

void server_rebalance_service(struct server *s, const char *cluster, json_t *svc, json_t *tasks,
			      int64_t tasks_rev, bool quiet)
{
	json_t *ext = json_object_get(svc, "berthScheduling");
	struct rb_service x = { .svc = svc, .name = jstr(svc, "serviceName"), .cluster = cluster };
	if (!x.name)
		return;
	bool active = streq_ptr(jstr(svc, "status"), "ACTIVE");
	if (!active || !json_object_get(ext, "disruptionBudget")) { /* a budget taken away */
		_cleanup_free_ char *group = xasprintf("service:%s", x.name);
		budget_publish(s, cluster, group, -1, tasks_rev);
	}
	if (!json_object_size(ext) || !active)
		return;
	x.group = xasprintf("service:%s", x.name);
	x.desired = json_integer_value(json_object_get(svc, "desiredCount"));
	gather(&x, tasks);
	if (json_object_get(ext, "disruptionBudget"))
		budget(s, &x, json_object_get(ext, "disruptionBudget"), tasks_rev);
	if (json_object_get(ext, "rebalance")) {
		give_up_stale(s, &x, server_record_now());
		if (quiet)
			rebalance_moves(s, &x, json_object_get(ext, "rebalance"));
	}
	json_decref(x.tasks);
	free(x.group);
}
