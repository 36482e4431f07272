/*
 * deploy.c - the service controller the leader runs after every store
 * change (and at least every second): it compares each service's record
 * with its tasks and starts or stops tasks until they match
 * (docs/services.md).
 *
 * One pass per service, in two phases:
 *   1. state: count failed tasks since the deployment's mark (launch backoff,
 *      circuit breaker, rollback), drop deployments whose tasks are gone,
 *      mark the rollout COMPLETED, the steady-state event, DRAINING ->
 *      INACTIVE. Written by compare-and-swap; a conflict (an UpdateService
 *      in between) skips the service until the next pass.
 *   2. actions: place and stop tasks (REPLICA rolling step, DAEMON per node,
 *      EXTERNAL task sets) and then append the events they produced.
 * Nothing is remembered in memory between passes: the counts come from the
 * task records, the marks and timestamps from the service record, so a new
 * leader continues a deployment where the old one stopped.
 *
 * Trade-off: a pass lists the cluster's tasks and instances once for all its
 * services (simple, consistent; O(tasks) per pass).
 */
#include "common/log.h"
#include "server/deploy-plan.h"
#include "common/json.h"
#include "server/internal.h"
#include "server/lb.h"
#include "server/taskdef.h"

#define STOP_CODE         "ServiceSchedulerInitiated"
#define UNHEALTHY_REASON  "Task failed container health checks"
#define ELB_REASON        "Task failed ELB health checks in (target-group "
#define PLACE_EVENT_QUIET 60.0 /* seconds before the same placement failure is reported again */

struct pass {
	struct server *s;
	const char *cluster;
	json_t *cl;
	json_t *tasks;                   /* every task record of the cluster */
	int64_t tasks_rev;               /* the store revision they were read at */
	json_t *insts;                   /* node id -> instance record */
	json_t *alive;                   /* node id -> bool */
	json_t *tds;                     /* taskDefinitionArn -> record (cache) */
	json_t *elb_reports, *elb_alive; /* the nodes' HAProxy views (server_lb_health_reports) */
	json_t *elb;                     /* load balancer name -> server_lb_health_merge (cache) */
	double now;
};

struct stask {
	json_t *t;
	const char *id, *dep, *node, *zone;
	double created;
	bool active;                       /* lastStatus is not STOPPED */
	bool wanted;                       /* desiredStatus RUNNING */
	bool healthy;                      /* wanted, not draining, DEPLOY_HEALTHY */
	enum deploy_readiness readiness;   /* when wanted and not draining */
	bool draining_lb;                  /* drainingAt set: leaving its target groups */
	bool node_leaving;                 /* its container instance is not ACTIVE */
	bool unhealthy;                    /* UNHEALTHY past the grace period: replace it */
	const char *keys[DEPLOY_MAX_KEYS]; /* its node's values of the service's other spread attributes */
	json_t *elb_failed; /* the load balancers' merged view when they find it unhealthy (borrowed) */
	bool elb_served;    /* a node alive serves one of its load balancers (HAProxy checks it) */
	bool elb_pending;   /* not healthy in each of those target groups yet (initial, not checked) */
	const char *elb_tg; /* ... in this target group (ARN) */
};

struct svc {
	struct pass *p;
	json_t *rec; /* working copy of the service record */
	const char *name;
	char *group, *key;
	struct stask *tasks;
	size_t n;
	json_t *events; /* messages to append after the actions */
	double drain_delay;
	bool has_lb;
	int64_t daemon_desired; /* DAEMON: nodes running or given the task this pass; -1 otherwise */
	const char *spread[DEPLOY_MAX_KEYS]; /* spread attributes besides zone and instance (scale-in) */
	size_t n_spread;
};

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_t *td_get(struct pass *p, const char *arn)
{
	json_t *td = json_object_get(p->tds, arn);
	if (td || !arn)
		return td;
	struct ecs_call c = { .srv = p->s };
	if (server_taskdef_resolve(&c, arn, &td) < 0) {
		free(c.msg);
		return NULL;
	}
	json_object_set_new(p->tds, arn, td);
	return td;
}

static bool td_health_checked(json_t *td)
{
	size_t i;
	json_t *cd;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, cd)
		if (!json_is_false(json_object_get(cd, "essential")) && json_object_get(cd, "healthCheck"))
			return true;
	return false;
}

static const char *task_id(json_t *t)
{
	return server_arn_tail(jstr(t, "taskArn") ? jstr(t, "taskArn") : "");
}

static bool is_failure(json_t *t)
{
	const char *code = jstr(t, "stopCode"), *why = jstr(t, "stoppedReason");
	return streq_ptr(code, "EssentialContainerExited") || streq_ptr(code, "TaskFailedToStart") ||
	       (why && (startswith(why, UNHEALTHY_REASON) || startswith(why, ELB_REASON)));
}

/*
 * HAProxy's merged view of load balancer name's targets (cached per pass);
 * NULL when no node alive serves that load balancer (nothing checks it).
 */
static json_t *elb_view(struct pass *p, const char *name)
{
	json_t *v = json_object_get(p->elb, name);
	if (!v) {
		v = server_lb_health_served(p->elb_reports, p->elb_alive, name)
			? server_lb_health_merge(p->elb_reports, p->elb_alive, name)
			: json_null();
		json_object_set_new(p->elb, name, v);
	}
	return json_is_null(v) ? NULL : v;
}

/* The first of the service's target groups whose health checks the task fails on most nodes, and
 * whether it is not healthy in each of them yet (ECS waits for that before counting it healthy). */
static void elb_check(struct svc *x, struct stask *st)
{
	size_t i;
	json_t *lb;
	json_array_foreach (json_object_get(x->rec, "loadBalancers"), i, lb) {
		const char *arn = jstr(lb, "targetGroupArn");
		_cleanup_free_ char *name = server_target_group_name(arn);
		json_t *view = name ? elb_view(x->p, name) : NULL;
		if (!view)
			continue; /* no data plane (yet): only the membership rules apply */
		st->elb_served = true;
		json_t *h = json_object_get(view, st->id);
		if (streq_ptr(jstr(h, "state"), "unhealthy")) {
			st->elb_failed = h;
			st->elb_tg = arn;
			return;
		}
		if (!streq_ptr(jstr(h, "state"), "healthy"))
			st->elb_pending = true;
	}
}

static void classify(struct svc *x, struct stask *st, json_t *t)
{
	struct pass *p = x->p;
	const char *cia = jstr(t, "containerInstanceArn");
	st->t = t;
	st->id = task_id(t);
	st->dep = jstr(t, "startedBy");
	st->node = cia ? server_arn_tail(cia) : NULL;
	st->zone = jstr(t, "availabilityZone");
	st->created = json_number_value(json_object_get(t, "createdAt"));
	st->active = server_task_active(t);
	st->wanted = st->active && streq_ptr(jstr(t, "desiredStatus"), "RUNNING");
	st->draining_lb = json_object_get(t, "drainingAt") != NULL;
	json_t *inst = st->node ? json_object_get(p->insts, st->node) : NULL;
	for (size_t k = 0; k < x->n_spread; k++) /* scale-in balances every spread key */
		st->keys[k] = server_instance_attribute(inst, x->spread[k]);
	st->node_leaving = !inst || !streq_ptr(jstr(inst, "status"), "ACTIVE") ||
			   json_object_get(t, "berthRebalanceAt"); /* moved by the rebalancer (rebalance.c) */
	double started = json_number_value(json_object_get(t, "startedAt"));
	struct deploy_task_facts f = {
		.running = streq_ptr(jstr(t, "lastStatus"), "RUNNING"),
		.checked = td_health_checked(td_get(p, jstr(t, "taskDefinitionArn"))),
		.health = jstr(t, "healthStatus"),
		.running_for = p->now - started,
	};
	/* the load balancers' health checks (HAProxy on the nodes): out of rotation is not healthy; past
	 * the grace period it is replaced, as ECS does with ELB health checks */
	if (x->has_lb && st->wanted && f.running && !st->draining_lb) {
		elb_check(x, st);
		f.load_balanced = st->elb_served;
		f.elb_failed = st->elb_failed != NULL;
		f.elb_pending = st->elb_pending;
	}
	st->readiness = server_deploy_readiness(&f);
	st->healthy = st->wanted && !st->draining_lb && st->readiness == DEPLOY_HEALTHY;
	double grace = (double)json_integer_value(json_object_get(x->rec, "healthCheckGracePeriodSeconds"));
	st->unhealthy = st->wanted && st->readiness == DEPLOY_FAILING && p->now - started >= grace;
}

/* The target groups' longest deregistrationDelay (lb's records; a missing one counts 0). */
static double drain_delay(struct pass *p, json_t *lbs)
{
	double d = 0;
	size_t i;
	json_t *lb;
	json_array_foreach (lbs, i, lb) {
		_cleanup_free_ char *name = server_target_group_name(jstr(lb, "targetGroupArn"));
		_cleanup_free_ char *key = name ? xasprintf("/berth/lb/targetgroups/%s", name) : NULL;
		json_t *tg = NULL;
		if (key && server_record_get(p->s, key, &tg, NULL, NULL) == 0) {
			json_t *v = json_object_get(tg, "deregistrationDelay");
			double x = json_is_number(v) ? json_number_value(v) : 300;
			d = x > d ? x : d;
			json_decref(tg);
		}
	}
	return d;
}

static void svc_init(struct svc *x, struct pass *p, json_t *rec)
{
	*x = (struct svc){ .p = p, .rec = json_deep_copy(rec), .daemon_desired = -1 };
	x->name = jstr(x->rec, "serviceName");
	x->group = xasprintf("service:%s", x->name);
	x->key = server_service_key(p->cluster, x->name);
	x->events = json_array();
	json_t *lbs = json_object_get(x->rec, "loadBalancers");
	x->has_lb = json_array_size(lbs) > 0;
	x->drain_delay = x->has_lb ? drain_delay(p, lbs) : 0;
	size_t i;
	json_t *t;
	x->n_spread = server_service_spread_attributes(x->rec, x->spread, DEPLOY_MAX_KEYS);
	x->tasks = xcalloc(json_array_size(p->tasks) + 1, sizeof(*x->tasks));
	json_array_foreach (p->tasks, i, t)
		if (streq_ptr(jstr(t, "group"), x->group))
			classify(x, &x->tasks[x->n++], t);
}

static void svc_done(struct svc *x)
{
	json_decref(x->rec);
	json_decref(x->events);
	free(x->group);
	free(x->key);
	free(x->tasks);
}

static void event(struct svc *x, const char *fmt, ...) _printf_(2, 3);
static void event(struct svc *x, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "(service %s) ", x->name);
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	json_array_append_new(x->events, json_string(sb.buf));
	strbuf_release(&sb);
}

/* ---- phase 1: state ---- */

/* Failed tasks of deployment d since its mark: failedTasks, backoff. True when d changed. */
static bool count_failures(struct svc *x, json_t *d)
{
	const char *id = jstr(d, "id");
	json_t *mark = json_object_get(d, "berthFailMark"); /* [stoppedAt, task id] of the last one counted */
	double mt = json_number_value(json_array_get(mark, 0));
	const char *mid = json_string_value(json_array_get(mark, 1));
	double best_t = mt;
	const char *best_id = mid;
	int64_t n = 0;
	bool any_healthy = false;
	for (size_t i = 0; i < x->n; i++) {
		struct stask *st = &x->tasks[i];
		if (!streq_ptr(st->dep, id))
			continue;
		any_healthy |= st->healthy;
		if (st->active || !is_failure(st->t))
			continue;
		double t = json_number_value(json_object_get(st->t, "stoppedAt"));
		if (t < mt || (t == mt && mid && strcmp(st->id, mid) <= 0))
			continue;
		n++;
		if (t > best_t || (t == best_t && (!best_id || strcmp(st->id, best_id) > 0))) {
			best_t = t;
			best_id = st->id;
		}
	}
	int64_t streak = json_integer_value(json_object_get(d, "berthStreak"));
	if (n == 0) {
		if (!any_healthy || streak == 0)
			return false;
		json_object_set_new(d, "berthStreak", json_integer(0));
		return true;
	}
	streak += n;
	json_object_set_new(d, "failedTasks",
			    json_integer(json_integer_value(json_object_get(d, "failedTasks")) + n));
	json_object_set_new(d, "berthStreak", json_integer(streak));
	json_object_set_new(d, "berthLaunchAfter", json_real(x->p->now + server_deploy_backoff(streak)));
	json_object_set_new(d, "berthFailMark", json_pack("[f,s]", best_t, best_id));
	json_object_set_new(d, "updatedAt", json_real(x->p->now));
	return true;
}

static size_t tasks_of(struct svc *x, const char *dep, bool (*pred)(const struct stask *))
{
	size_t n = 0;
	for (size_t i = 0; i < x->n; i++)
		n += (!dep || streq_ptr(x->tasks[i].dep, dep)) && pred(&x->tasks[i]);
	return n;
}

static bool p_active(const struct stask *t)
{
	return t->active;
}
static bool p_running(const struct stask *t)
{
	return t->active && streq_ptr(jstr(t->t, "lastStatus"), "RUNNING");
}
static bool p_healthy_staying(const struct stask *t)
{
	return t->healthy && !t->node_leaving;
}

/* Circuit breaker tripped on the primary: FAILED, and with rollback the last completed deployment again. */
static void trip(struct svc *x, json_t *deps)
{
	json_t *primary = json_array_get(deps, 0);
	const char *id = jstr(primary, "id");
	bool rollback = json_is_true(json_object_get(
	    json_object_get(json_object_get(x->rec, "deploymentConfiguration"), "deploymentCircuitBreaker"),
	    "rollback"));
	json_object_set_new(primary, "rolloutState", json_string("FAILED"));
	json_object_set_new(primary, "rolloutStateReason",
			    json_string("ECS deployment circuit breaker: tasks failed to start."));
	json_object_set_new(primary, "updatedAt", json_real(x->p->now));
	event(x, "(deployment %s) deployment failed: tasks failed to start.", id);
	json_t *last = json_object_get(x->rec, "berthLastCompleted");
	const char *last_id = jstr(last, "id"), *last_td = jstr(last, "taskDefinition");
	if (!rollback || !last_id || streq_ptr(last_id, id))
		return;
	int64_t desired = json_integer_value(json_object_get(x->rec, "desiredCount"));
	json_object_set_new(primary, "status", json_string("ACTIVE"));
	size_t i, found = SIZE_MAX;
	json_t *d;
	json_array_foreach (deps, i, d)
		if (streq_ptr(jstr(d, "id"), last_id))
			found = i;
	json_t *back;
	if (found != SIZE_MAX) { /* its tasks still run: make it primary again */
		back = json_incref(json_array_get(deps, found));
		json_array_remove(deps, found);
		json_object_set_new(back, "status", json_string("PRIMARY"));
		json_object_set_new(back, "desiredCount", json_integer(desired));
		json_object_set_new(back, "failedTasks", json_integer(0));
		json_object_set_new(back, "berthStreak", json_integer(0));
		json_object_set_new(back, "rolloutState", json_string("IN_PROGRESS"));
	} else {
		back = server_deployment_new(last_id, x->rec, last_td, desired);
	}
	_cleanup_free_ char *why =
	    xasprintf("ECS deployment circuit breaker: rolling back to deploymentId %s.", last_id);
	json_object_set_new(back, "rolloutStateReason", json_string(why));
	json_object_set_new(back, "updatedAt", json_real(x->p->now));
	json_array_insert_new(deps, 0, back);
	json_object_set_new(x->rec, "taskDefinition", json_string(last_td));
	event(x, "rolling back to deployment %s.", last_id);
}

static bool task_sets_state(struct svc *x)
{
	bool changed = false;
	json_t *sets = json_object_get(x->rec, "taskSets");
	for (size_t i = json_array_size(sets); i > 0; i--) {
		json_t *ts = json_array_get(sets, i - 1);
		const char *id = jstr(ts, "id");
		bool draining = streq_ptr(jstr(ts, "status"), "DRAINING");
		if (draining && tasks_of(x, id, p_active) == 0) {
			json_array_remove(sets, i - 1);
			changed = true;
			continue;
		}
		int64_t want = draining ? 0 : server_task_set_count(x->rec, ts);
		if (want != json_integer_value(json_object_get(ts, "computedDesiredCount"))) {
			json_object_set_new(ts, "computedDesiredCount", json_integer(want));
			changed = true;
		}
		bool steady =
		    (int64_t)tasks_of(x, id, p_running) == want && (int64_t)tasks_of(x, id, p_active) == want;
		const char *st = steady ? "STEADY_STATE" : "STABILIZING";
		if (!streq_ptr(jstr(ts, "stabilityStatus"), st)) {
			json_object_set_new(ts, "stabilityStatus", json_string(st));
			json_object_set_new(ts, "stabilityStatusAt", json_real(x->p->now));
			changed = true;
		}
	}
	return changed;
}

static bool complete_rollout(struct svc *x, json_t *deps, int64_t desired)
{
	json_t *primary = json_array_get(deps, 0);
	const char *id = jstr(primary, "id");
	if (json_array_size(deps) != 1 || !streq_ptr(jstr(primary, "rolloutState"), "IN_PROGRESS") ||
	    (int64_t)tasks_of(x, id, p_healthy_staying) != desired ||
	    (int64_t)tasks_of(x, NULL, p_active) != desired)
		return false;
	_cleanup_free_ char *why = xasprintf("ECS deployment %s completed.", id);
	json_object_set_new(primary, "rolloutState", json_string("COMPLETED"));
	json_object_set_new(primary, "rolloutStateReason", json_string(why));
	json_object_set_new(primary, "updatedAt", json_real(x->p->now));
	json_object_set_new(
	    x->rec, "berthLastCompleted",
	    json_pack("{s:s,s:s?}", "id", id, "taskDefinition", jstr(primary, "taskDefinition")));
	event(x, "(deployment %s) deployment completed.", id);
	return true;
}

/* Phase 1 on x->rec; true when it changed. */
static bool update_state(struct svc *x)
{
	bool changed = false;
	json_t *deps = json_object_get(x->rec, "deployments");
	size_t i;
	json_t *d;
	json_array_foreach (deps, i, d)
		changed |= count_failures(x, d);
	if (streq_ptr(jstr(x->rec, "status"), "DRAINING")) {
		if (tasks_of(x, NULL, p_active) == 0) {
			/* its deployments reached their (zero) tasks: ECS shows them COMPLETED */
			json_array_foreach (deps, i, d)
				if (streq_ptr(jstr(d, "rolloutState"), "IN_PROGRESS")) {
					_cleanup_free_ char *why =
					    xasprintf("ECS deployment %s completed.", jstr(d, "id"));
					json_object_set_new(d, "rolloutState", json_string("COMPLETED"));
					json_object_set_new(d, "rolloutStateReason", json_string(why));
					json_object_set_new(d, "updatedAt", json_real(x->p->now));
				}
			json_object_set_new(x->rec, "status", json_string("INACTIVE"));
			json_object_set_new(x->rec, "berthInactiveAt", json_real(server_record_now()));
			changed = true;
		}
		return changed;
	}
	if (server_service_is_external(x->rec))
		return task_sets_state(x) || changed;
	json_t *primary = json_array_get(deps, 0);
	if (!primary)
		return changed;
	int64_t desired = json_integer_value(json_object_get(x->rec, "desiredCount"));
	json_t *cb =
	    json_object_get(json_object_get(x->rec, "deploymentConfiguration"), "deploymentCircuitBreaker");
	if (!server_service_is_daemon(x->rec) && json_is_true(json_object_get(cb, "enable")) &&
	    streq_ptr(jstr(primary, "rolloutState"), "IN_PROGRESS") &&
	    json_integer_value(json_object_get(primary, "failedTasks")) >=
		server_deploy_failure_threshold(desired)) {
		trip(x, deps);
		changed = true;
		primary = json_array_get(deps, 0);
	}
	for (size_t k = json_array_size(deps); k > 1; k--)
		if (tasks_of(x, jstr(json_array_get(deps, k - 1), "id"), p_active) == 0) {
			json_array_remove(deps, k - 1);
			changed = true;
		}
	changed |= complete_rollout(x, deps, desired);
	primary = json_array_get(deps, 0);
	json_t *last = json_array_get(json_object_get(x->rec, "events"), 0);
	_cleanup_free_ char *steady = xasprintf("(service %s) has reached a steady state.", x->name);
	if (json_array_size(deps) == 1 && !streq_ptr(jstr(primary, "rolloutState"), "IN_PROGRESS") &&
	    (int64_t)tasks_of(x, NULL, p_running) == desired &&
	    (int64_t)tasks_of(x, NULL, p_active) == desired && !streq_ptr(jstr(last, "message"), steady) &&
	    json_array_size(x->events) == 0) {
		json_array_append_new(x->events, json_string(steady));
	}
	return changed;
}

/* ---- phase 2: actions ---- */

static void list_ids(struct strbuf *sb, json_t *ids)
{
	size_t i;
	json_t *id;
	json_array_foreach (ids, i, id)
		strbuf_addf(sb, "%s(task %s)", i ? " " : "", json_string_value(id));
}

struct stops {
	json_t *stopped, *draining;
};

/* Stop (or start draining) one task; reason goes into stoppedReason, cause (the rule) into the debug log. */
static void stop_task(struct svc *x, struct stask *st, const char *cause, const char *reason,
		      struct stops *out)
{
	if (!st->wanted)
		return;
	bool running = streq_ptr(jstr(st->t, "lastStatus"), "RUNNING");
	bool drain = x->has_lb && running && !st->draining_lb && !st->unhealthy && x->drain_delay > 0;
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		_cleanup_free_ char *nodes =
		    st->elb_failed ? json_dumps(json_object_get(st->elb_failed, "nodes"), JSON_COMPACT)
				   : NULL;
		log_fields(LOG_LEVEL_DEBUG, drain ? "service drains task" : "service stops task", "service",
			   x->name, "task", st->id, "deployment", st->dep, "cause", cause, "readiness",
			   server_deploy_readiness_name(st->readiness), "elb_nodes", nodes, NULL);
	}
	st->wanted = false;
	st->healthy = false;
	_cleanup_free_ char *key = xasprintf("/berth/tasks/%s/%s", x->p->cluster, st->id);
	_cleanup_error_ struct berth_error *err = NULL;
	if (drain) {
		for (int attempt = 0; attempt < 5; attempt++) {
			json_t *t = NULL;
			int64_t rev;
			bool ok = false;
			if (server_record_get(x->p->s, key, &t, &rev, NULL) < 0)
				return;
			if (!json_object_get(t, "drainingAt"))
				json_object_set_new(t, "drainingAt", json_real(x->p->now));
			json_object_set_new(
			    t, "version",
			    json_integer(json_integer_value(json_object_get(t, "version")) + 1));
			int r = server_record_cas(x->p->s, key, t, rev, &ok, NULL);
			json_decref(t);
			if (r < 0)
				return;
			if (ok) {
				json_array_append_new(out->draining, json_string(st->id));
				st->draining_lb = true;
				return;
			}
		}
		return;
	}
	if (server_task_request_stop(x->p->s, key, STOP_CODE, reason, NULL, &err) == 1 && running)
		json_array_append_new(out->stopped, json_string(st->id));
}

/*
 * Replace a task failing its health checks: the container's (healthStatus
 * UNHEALTHY) or the load balancers' (HAProxy on most nodes), ECS's reasons
 * and, for the latter, ECS's event naming the target group. No draining: no
 * load balancer sends it anything.
 */
static void stop_unhealthy(struct svc *x, struct stask *st, struct stops *out)
{
	if (!st->elb_failed) {
		stop_task(x, st, "container health checks failed",
			  UNHEALTHY_REASON " (replaced by the service scheduler).", out);
		return;
	}
	_cleanup_free_ char *tg = server_target_group_name(st->elb_tg);
	_cleanup_free_ char *why = xasprintf(ELB_REASON "%s)", st->elb_tg);
	const char *desc = jstr(st->elb_failed, "description");
	json_t *lb = NULL;
	size_t i;
	json_array_foreach (json_object_get(x->rec, "loadBalancers"), i, lb)
		if (streq_ptr(jstr(lb, "targetGroupArn"), st->elb_tg))
			break;
	event(x, "(task %s) (port %lld) is unhealthy in target-group %s due to (reason %s).", st->id,
	      (long long)json_integer_value(json_object_get(lb, "containerPort")), tg ? tg : "",
	      desc ? desc : "Health checks failed");
	stop_task(x, st, "target group health checks failed", why, out);
}

/* Tasks that were draining long enough: stop them now. */
static void finish_draining(struct svc *x, struct stops *out)
{
	for (size_t i = 0; i < x->n; i++) {
		struct stask *st = &x->tasks[i];
		if (!st->wanted || !st->draining_lb)
			continue;
		double at = json_number_value(json_object_get(st->t, "drainingAt"));
		if (x->p->now - at < x->drain_delay)
			continue;
		_cleanup_free_ char *key = xasprintf("/berth/tasks/%s/%s", x->p->cluster, st->id);
		_cleanup_free_ char *why =
		    xasprintf("Scaling activity initiated by (deployment %s)", st->dep ? st->dep : "unknown");
		log_fields(LOG_LEVEL_DEBUG, "service stops task", "service", x->name, "task", st->id,
			   "deployment", st->dep, "cause", "drained for the deregistration delay", NULL);
		if (server_task_request_stop(x->p->s, key, STOP_CODE, why, NULL, NULL) == 1)
			json_array_append_new(out->stopped, json_string(st->id));
		st->wanted = false;
	}
}

typedef bool (*cand_fn)(struct svc *x, const struct stask *t, const void *arg);

/* Stop up to count tasks among cand, keeping zones and nodes balanced; returns how many. */
static int64_t stop_balanced(struct svc *x, cand_fn cand, const void *arg, int64_t count, const char *cause,
			     const char *reason, struct stops *out)
{
	if (count <= 0)
		return 0;
	_cleanup_free_ struct deploy_task *dt = xcalloc(x->n + 1, sizeof(*dt));
	_cleanup_free_ size_t *idx = xcalloc((size_t)count, sizeof(*idx));
	size_t *map = xcalloc(x->n + 1, sizeof(*map));
	size_t m = 0;
	for (size_t i = 0; i < x->n; i++) {
		struct stask *st = &x->tasks[i];
		if (!st->wanted || st->draining_lb)
			continue;
		dt[m] = (struct deploy_task){ st->zone, st->node, st->created, cand(x, st, arg), { NULL } };
		memcpy(dt[m].keys, st->keys, sizeof(dt[m].keys));
		map[m++] = i;
	}
	size_t k = server_deploy_scale_in(dt, m, (size_t)count, idx);
	for (size_t i = 0; i < k; i++)
		stop_task(x, &x->tasks[map[idx[i]]], cause, reason, out);
	free(map);
	return (int64_t)k;
}

static bool c_old_healthy(struct svc *x, const struct stask *t, const void *primary)
{
	(void)x;
	return t->healthy && (!streq_ptr(t->dep, primary) || t->node_leaving);
}

static bool c_dep(struct svc *x, const struct stask *t, const void *dep)
{
	(void)x;
	return streq_ptr(t->dep, dep) && !t->node_leaving;
}

static bool c_dep_unhealthy(struct svc *x, const struct stask *t, const void *dep)
{
	return c_dep(x, t, dep) && !t->healthy;
}

static bool c_dep_healthy(struct svc *x, const struct stask *t, const void *dep)
{
	return c_dep(x, t, dep) && t->healthy;
}

static bool recently_said(struct svc *x, const char *msg)
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(x->rec, "events"), i, e) {
		if (x->p->now - json_number_value(json_object_get(e, "createdAt")) > PLACE_EVENT_QUIET)
			break;
		if (streq_ptr(jstr(e, "message"), msg))
			return true;
	}
	return false;
}

static void place_failed(struct svc *x, const char *detail)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb,
		    "(service %s) was unable to place a task because no container instance met all of its "
		    "requirements. Reason: %s. For more information, see the Troubleshooting section of the "
		    "Amazon ECS Developer Guide.",
		    x->name, detail);
	if (!recently_said(x, sb.buf))
		json_array_append_new(x->events, json_string(sb.buf));
	strbuf_release(&sb);
}

/* Place count tasks (or one per node of `nodes`) for deployment/task set dep; returns how many started. */
static int64_t launch(struct svc *x, const char *dep, const char *td_arn, int64_t count, json_t *nodes)
{
	json_t *td = td_get(x->p, td_arn);
	if (!td || (count <= 0 && !json_array_size(nodes)))
		return 0;
	if (count > SCHED_MAX_COUNT)
		count = SCHED_MAX_COUNT;
	_cleanup_json_ json_t *ov =
	    json_pack("{s:[],s:[]}", "containerOverrides", "inferenceAcceleratorOverrides");
	_cleanup_json_ json_t *strat =
	    nodes ? NULL : server_service_strategies(json_object_get(x->rec, "placementStrategy"));
	_cleanup_json_ json_t *tasks = json_array(), *failures = json_array();
	struct task_run_args a = { .td = td,
				   .overrides = ov,
				   .constraints = json_object_get(x->rec, "placementConstraints"),
				   .strategies = strat,
				   .group = x->group,
				   .started_by = dep,
				   .count = count,
				   .explicit_instances = nodes };
	/* ECS's propagateTags / enableECSManagedTags of the service */
	const char *propagate = jstr(x->rec, "propagateTags");
	bool managed = json_is_true(json_object_get(x->rec, "enableECSManagedTags"));
	_cleanup_json_ json_t *tags =
	    (propagate && !streq(propagate, "NONE")) || managed
		? server_task_tags(x->p->s, x->p->cluster, NULL, td, x->rec, propagate, managed)
		: NULL;
	a.tags = json_array_size(tags) ? tags : NULL;
	struct ecs_call c = { .srv = x->p->s };
	if (server_task_place(&c, x->p->cluster, x->p->cl, &a, tasks, failures) < 0) {
		if (!nodes)
			place_failed(x, c.msg ? c.msg : "placement failed");
		free(c.msg);
		return 0;
	}
	if (json_array_size(tasks)) {
		_cleanup_json_ json_t *ids = json_array();
		size_t i;
		json_t *t;
		json_array_foreach (tasks, i, t)
			json_array_append_new(ids, json_string(task_id(t)));
		struct strbuf sb = STRBUF_INIT;
		list_ids(&sb, ids);
		event(x, "has started %zu tasks: %s.", json_array_size(ids), sb.buf);
		strbuf_release(&sb);
	}
	json_t *f = json_array_get(failures, 0);
	if (f && !nodes)
		place_failed(x, jstr(f, "detail") ? jstr(f, "detail") : jstr(f, "reason"));
	return (int64_t)json_array_size(tasks);
}

static void replica_act(struct svc *x, struct stops *out)
{
	json_t *primary = json_array_get(json_object_get(x->rec, "deployments"), 0);
	const char *pid = jstr(primary, "id");
	json_t *dc = json_object_get(x->rec, "deploymentConfiguration");
	struct deploy_counts in = {
		.desired = json_integer_value(json_object_get(x->rec, "desiredCount")),
		.max_percent = json_integer_value(json_object_get(dc, "maximumPercent")),
		.min_percent = json_integer_value(json_object_get(dc, "minimumHealthyPercent")),
		.total = (int64_t)tasks_of(x, NULL, p_active),
	};
	for (size_t i = 0; i < x->n; i++) {
		struct stask *st = &x->tasks[i];
		in.healthy += st->healthy;
		in.primary_active +=
		    st->wanted && !st->draining_lb && !st->node_leaving && streq_ptr(st->dep, pid);
	}
	struct deploy_step step;
	server_deploy_rolling_step(&in, &step);
	size_t acted = json_array_size(out->stopped) + json_array_size(out->draining);
	_cleanup_free_ char *why = xasprintf("Scaling activity initiated by (deployment %s)", pid);
	/* free stops: unhealthy tasks; tasks of old deployments or leaving nodes that are no capacity
	 * (not running, failing) or, once the floor holds without them, not yet healthy */
	for (size_t i = 0; i < x->n; i++) {
		struct stask *st = &x->tasks[i];
		if (!st->wanted || st->draining_lb)
			continue;
		if (st->unhealthy)
			stop_unhealthy(x, st, out);
		else if ((!streq_ptr(st->dep, pid) || st->node_leaving) &&
			 server_deploy_free_stop(st->readiness, &step))
			stop_task(x, st, "old deployment or leaving node, not healthy", why, out);
	}
	/* the primary's surplus (scale-in): not yet healthy first, then balanced within the budget */
	int64_t surplus = in.primary_active - in.desired;
	surplus -= stop_balanced(x, c_dep_unhealthy, pid, surplus, "scale-in, not healthy", why, out);
	step.stop_budget -=
	    stop_balanced(x, c_dep_healthy, pid, surplus < step.stop_budget ? surplus : step.stop_budget,
			  "scale-in within the stop budget", why, out);
	/* old deployments and leaving nodes, within what minimumHealthyPercent allows; none while the
	 * new tasks keep failing */
	if (json_integer_value(json_object_get(primary, "berthStreak")) == 0)
		stop_balanced(x, c_old_healthy, pid, step.stop_budget, "replaced within the stop budget", why,
			      out);
	bool failed = streq_ptr(jstr(primary, "rolloutState"), "FAILED");
	double after = json_number_value(json_object_get(primary, "berthLaunchAfter"));
	int64_t started = 0;
	if (!failed && x->p->now >= after && step.start > 0)
		started = launch(x, pid, jstr(primary, "taskDefinition"), step.start, NULL);
	if (log_enabled(LOG_LEVEL_DEBUG) &&
	    (started || json_array_size(out->stopped) + json_array_size(out->draining) > acted)) {
		char buf[192];
		snprintf(buf, sizeof(buf),
			 "desired=%lld total=%lld healthy=%lld primary=%lld start=%lld (started %lld) "
			 "stop_budget_left=%lld "
			 "floor_met=%d",
			 (long long)in.desired, (long long)in.total, (long long)in.healthy,
			 (long long)in.primary_active, (long long)step.start, (long long)started,
			 (long long)step.stop_budget, step.floor_met);
		log_fields(LOG_LEVEL_DEBUG, "service rolling step", "service", x->name, "deployment", pid,
			   "counts", buf, NULL);
	}
}

/*
 * DAEMON's floor: minimumHealthyPercent (ECS's default 0) of the ACTIVE nodes
 * that run the service, counting those whose task is being replaced (or the
 * stored desiredCount if higher: a node between its old task's stop and the
 * new one's placement), and the nodes with a healthy task.
 */
static void daemon_step(struct svc *x, struct deploy_step *step)
{
	json_t *dc = json_object_get(x->rec, "deploymentConfiguration");
	struct deploy_counts in = { .max_percent = DEPLOY_DAEMON_MAX_PERCENT,
				    .min_percent =
					json_integer_value(json_object_get(dc, "minimumHealthyPercent")) };
	const char *node;
	json_t *inst;
	json_object_foreach (x->p->insts, node, inst) {
		if (!streq_ptr(jstr(inst, "status"), "ACTIVE"))
			continue;
		bool runs = false, healthy = false;
		for (size_t i = 0; i < x->n; i++) {
			struct stask *st = &x->tasks[i];
			if (streq_ptr(st->node, node) && st->active) {
				runs = true;
				healthy |= st->healthy;
			}
		}
		in.desired += runs;
		in.healthy += healthy;
	}
	int64_t stored = json_integer_value(json_object_get(x->rec, "desiredCount"));
	in.desired = stored > in.desired ? stored : in.desired;
	in.total = in.primary_active = in.desired; /* one per node: nothing to start beyond it */
	server_deploy_rolling_step(&in, step);
}

static void daemon_act(struct svc *x, struct stops *out)
{
	json_t *primary = json_array_get(json_object_get(x->rec, "deployments"), 0);
	const char *pid = jstr(primary, "id");
	_cleanup_free_ char *why = xasprintf("Scaling activity initiated by (deployment %s)", pid);
	_cleanup_json_ json_t *candidates = json_array();
	struct deploy_step step;
	daemon_step(x, &step);
	int64_t desired = 0;
	const char *node;
	json_t *inst;
	json_object_foreach (x->p->insts, node, inst) {
		bool active = streq_ptr(jstr(inst, "status"), "ACTIVE");
		size_t mine = 0, any = 0;
		for (size_t i = 0; i < x->n; i++) {
			struct stask *st = &x->tasks[i];
			if (!streq_ptr(st->node, node) || !st->active)
				continue;
			any++;
			if (!st->wanted || st->draining_lb)
				continue;
			if (!active)
				stop_task(x, st, "node not ACTIVE",
					  "Container instance is not ACTIVE: daemon task stopped", out);
			else if (st->unhealthy)
				stop_unhealthy(x, st, out);
			else if (streq_ptr(st->dep, pid)) {
				if (mine++ > 0)
					stop_task(x, st, "second copy on the node", why, out);
			}
			/* an old deployment's task: stop-then-start per node, within minimumHealthyPercent */
			else if (server_deploy_free_stop(st->readiness, &step))
				stop_task(x, st, "old deployment, not healthy", why, out);
			else if (st->healthy && step.stop_budget > 0) {
				step.stop_budget--;
				stop_task(x, st, "old deployment, within the stop budget", why, out);
			}
		}
		/* a node counts while it runs a task of the service (also an old one being replaced) */
		desired += active && any > 0;
		if (active && any == 0 && json_is_true(json_object_get(x->p->alive, node)))
			json_array_append_new(candidates, json_string(node));
	}
	double after = json_number_value(json_object_get(primary, "berthLaunchAfter"));
	if (json_array_size(candidates) && x->p->now >= after)
		desired += launch(x, pid, jstr(primary, "taskDefinition"), 0, candidates);
	x->daemon_desired = desired;
}

static void external_act(struct svc *x, struct stops *out)
{
	size_t i;
	json_t *ts;
	json_array_foreach (json_object_get(x->rec, "taskSets"), i, ts) {
		const char *id = jstr(ts, "id");
		int64_t want = json_integer_value(json_object_get(ts, "computedDesiredCount"));
		int64_t have = 0;
		for (size_t k = 0; k < x->n; k++)
			have +=
			    x->tasks[k].wanted && !x->tasks[k].draining_lb && streq_ptr(x->tasks[k].dep, id);
		_cleanup_free_ char *why = xasprintf("Scaling activity initiated by (task set %s)", id);
		if (have > want) {
			int64_t extra = have - want;
			extra -= stop_balanced(x, c_dep_unhealthy, id, extra,
					       "task set scale-in, not healthy", why, out);
			stop_balanced(x, c_dep_healthy, id, extra, "task set scale-in", why, out);
		} else if (have < want) {
			launch(x, id, jstr(ts, "taskDefinition"), want - have, NULL);
		}
	}
}

static void act(struct svc *x)
{
	struct stops out = { json_array(), json_array() };
	finish_draining(x, &out);
	if (streq_ptr(jstr(x->rec, "status"), "DRAINING")) {
		for (size_t i = 0; i < x->n; i++)
			stop_task(x, &x->tasks[i], "service deleted", "Service is being deleted", &out);
	} else if (server_service_is_external(x->rec)) {
		external_act(x, &out);
	} else if (json_array_size(json_object_get(x->rec, "deployments"))) {
		if (server_service_is_daemon(x->rec))
			daemon_act(x, &out);
		else
			replica_act(x, &out);
	}
	struct strbuf sb = STRBUF_INIT;
	if (json_array_size(out.draining))
		event(x, "has begun draining connections on %zu tasks.", json_array_size(out.draining));
	if (json_array_size(out.stopped)) {
		list_ids(&sb, out.stopped);
		event(x, "has stopped %zu running tasks: %s.", json_array_size(out.stopped), sb.buf);
	}
	strbuf_release(&sb);
	json_decref(out.stopped);
	json_decref(out.draining);
}

/* Append the pass's events (and a DAEMON's desired count) to the stored record. */
static void post(struct svc *x)
{
	if (!json_array_size(x->events) && x->daemon_desired < 0)
		return;
	for (int attempt = 0; attempt < 5; attempt++) {
		_cleanup_json_ json_t *rec = NULL;
		int64_t rev;
		if (server_record_get(x->p->s, x->key, &rec, &rev, NULL) < 0)
			return;
		bool changed = false;
		size_t i;
		json_t *m;
		json_array_foreach (x->events, i, m) { /* dated when the pass decided (e.g. drainingAt) */
			server_service_event_at(rec, x->p->now, json_string_value(m));
			changed = true;
		}
		json_t *primary = json_array_get(json_object_get(rec, "deployments"), 0);
		if (x->daemon_desired >= 0 &&
		    json_integer_value(json_object_get(rec, "desiredCount")) != x->daemon_desired) {
			json_object_set_new(rec, "desiredCount", json_integer(x->daemon_desired));
			if (primary)
				json_object_set_new(primary, "desiredCount", json_integer(x->daemon_desired));
			changed = true;
		}
		bool ok = false;
		if (!changed || server_record_cas(x->p->s, x->key, rec, rev, &ok, NULL) < 0 || ok)
			return;
	}
}

/* True when the pass left the service alone (no state change, no action). */
static bool reconcile(struct pass *p, json_t *rec, int64_t rev)
{
	struct svc x;
	svc_init(&x, p, rec);
	bool changed = update_state(&x);
	if (changed) {
		/* the state's events go in the same write: no reader sees a rollback or a completion
		 * before its event */
		size_t i;
		json_t *m;
		json_array_foreach (x.events, i, m)
			server_service_event(x.rec, "%s", json_string_value(m));
		json_array_clear(x.events);
		bool ok = false;
		if (server_record_cas(p->s, x.key, x.rec, rev, &ok, NULL) < 0 || !ok) {
			svc_done(&x);
			return false; /* changed meanwhile: next pass */
		}
	}
	act(&x);
	post(&x);
	bool quiet = !changed && !json_array_size(x.events);
	svc_done(&x);
	return quiet;
}

static void cluster_pass(struct server *s, const char *cluster, json_t *svcs, bool tick)
{
	struct pass p = { .s = s, .cluster = cluster, .now = server_record_now() };
	struct ecs_call c = { .srv = s };
	if (server_cluster_resolve(&c, cluster, &p.cl, NULL) < 0) {
		free(c.msg);
		return;
	}
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	_cleanup_free_ char *ip = xasprintf("/berth/instances/%s/", cluster);
	_cleanup_json_ json_t *insts = NULL;
	if (server_record_list_at(s, tp, &p.tasks, &p.tasks_rev, NULL) < 0 ||
	    server_record_list(s, ip, &insts, NULL) < 0) {
		json_decref(p.tasks);
		json_decref(p.cl);
		return;
	}
	p.insts = json_object();
	p.alive = json_object();
	p.tds = json_object();
	p.elb = json_object();
	if (server_lb_health_reports(s, cluster, &p.elb_reports, &p.elb_alive, NULL) < 0) {
		p.elb_reports = json_array();
		p.elb_alive = json_object();
	}
	size_t i;
	json_t *inst;
	json_array_foreach (insts, i, inst) {
		const char *id = jstr(inst, "nodeId");
		if (!id || streq_ptr(jstr(inst, "status"), "INACTIVE"))
			continue;
		json_object_set(p.insts, id, inst);
		json_object_set_new(p.alive, id, json_boolean(server_instance_connected(s, id)));
	}
	json_t *svc;
	json_array_foreach (svcs, i, svc) {
		_cleanup_free_ char *key = server_service_key(cluster, jstr(svc, "serviceName"));
		json_t *fresh = NULL;
		int64_t rev = 0;
		if (server_record_get(s, key, &fresh, &rev, NULL) < 0)
			continue;
		if (!streq_ptr(jstr(fresh, "status"), "INACTIVE")) {
			bool quiet = reconcile(&p, fresh, rev);
			if (tick) /* the scheduling extensions on this pass's records (rebalance.c) */
				server_rebalance_service(s, cluster, fresh, p.tasks, p.tasks_rev, quiet);
		}
		json_decref(fresh);
	}
	json_decref(p.tasks);
	json_decref(p.insts);
	json_decref(p.alive);
	json_decref(p.tds);
	json_decref(p.elb);
	json_decref(p.elb_reports);
	json_decref(p.elb_alive);
	json_decref(p.cl);
}

void server_deploy_run(struct server *s, bool tick)
{
	_cleanup_json_ json_t *all = NULL, *by_cluster = json_object();
	if (server_record_list(s, "/berth/services/", &all, NULL) < 0)
		return;
	size_t i;
	json_t *svc;
	json_array_foreach (all, i, svc) {
		const char *cluster = jstr(svc, "berthCluster");
		if (!cluster || streq_ptr(jstr(svc, "status"), "INACTIVE"))
			continue;
		json_t *list = json_object_get(by_cluster, cluster);
		if (!list) {
			list = json_array();
			json_object_set_new(by_cluster, cluster, list);
		}
		json_array_append(list, svc);
	}
	const char *cluster;
	json_t *list;
	json_object_foreach (by_cluster, cluster, list)
		cluster_pass(s, cluster, list, tick);
}
