/*
 * services.c - the ECS service API: Create/Update/Describe/List/DeleteService
 * and ListServicesByNamespace (docs/services.md). The calls only validate and
 * write the service record at /berth/services/CLUSTER/NAME; the leader's
 * controller (deploy.c) starts and stops the tasks. UpdateService creates the
 * new PRIMARY deployment itself, so a DescribeServices right after it already
 * shows two deployments (boto3's services_stable waiter must not see a stale
 * steady state).
 *
 * Every write is a compare-and-swap on the record's revision: the API and
 * the controller (possibly on another replica) never lose each other's
 * changes. Counts (runningCount, pendingCount) are computed from the task
 * records when described, so they are never stale.
 */
#include "server/deploy-plan.h"
#include "common/json.h"
#include "server/internal.h"
#include "server/taskdef.h"

#define SERVICES_DESCRIBE_MAX 10
#define SERVICE_MAX_LBS       5
#define SERVICE_MAX_PERCENT   2000 /* ECS has no documented upper bound; this keeps the arithmetic small */

char *server_service_key(const char *cluster, const char *name)
{
	return xasprintf("/berth/services/%s/%s", cluster, name);
}

char *server_deployment_id_new(void)
{
	_cleanup_free_ char *hex = server_uuid_new();
	char id[28];
	hex[16] = '\0';
	server_deploy_id_format(strtoull(hex, NULL, 16), id);
	return xstrdup(id);
}

json_t *server_deployment_new(const char *id, json_t *svc, const char *td_arn, int64_t desired)
{
	double now = server_record_now();
	_cleanup_free_ char *reason = xasprintf("ECS deployment %s in progress.", id);
	json_t *d =
	    json_pack("{s:s,s:s,s:s,s:I,s:i,s:i,s:i,s:f,s:f,s:s,s:s,s:s}", "id", id, "status", "PRIMARY",
		      "taskDefinition", td_arn, "desiredCount", (json_int_t)desired, "pendingCount", 0,
		      "runningCount", 0, "failedTasks", 0, "createdAt", now, "updatedAt", now, "launchType",
		      "EC2", "rolloutState", "IN_PROGRESS", "rolloutStateReason", reason);
	json_t *net = json_object_get(svc, "networkConfiguration");
	if (net)
		json_object_set(d, "networkConfiguration", net);
	return d;
}

void server_service_event_at(json_t *svc, double at, const char *msg)
{
	json_t *events = json_object_get(svc, "events");
	if (!json_is_array(events)) {
		events = json_array();
		json_object_set_new(svc, "events", events);
	}
	_cleanup_free_ char *id = server_uuid_new();
	json_array_insert_new(events, 0,
			      json_pack("{s:s,s:f,s:s}", "id", id, "createdAt", at, "message", msg));
	while (json_array_size(events) > SERVICE_MAX_EVENTS)
		json_array_remove(events, json_array_size(events) - 1);
}

void server_service_event(json_t *svc, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	server_service_event_at(svc, server_record_now(), sb.buf);
	strbuf_release(&sb);
}

bool server_service_is_daemon(json_t *svc)
{
	return streq_ptr(json_string_value(json_object_get(svc, "schedulingStrategy")), "DAEMON");
}

bool server_service_is_external(json_t *svc)
{
	return streq_ptr(
	    json_string_value(json_object_get(json_object_get(svc, "deploymentController"), "type")),
	    "EXTERNAL");
}

/* Resolve a service name or ARN in cluster: ServiceNotFoundException when absent or INACTIVE. */
int server_service_resolve(struct ecs_call *c, const char *cluster, const char *ref, bool any_status,
			   json_t **ret, int64_t *ret_rev)
{
	const char *name = server_arn_tail(ref);
	_cleanup_free_ char *key = server_name_valid(name, 255) ? server_service_key(cluster, name) : NULL;
	json_t *svc = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = key ? server_record_get(c->srv, key, &svc, ret_rev, &err) : -ENOENT;
	if (r == -ENOENT || (r == 0 && !any_status &&
			     streq_ptr(json_string_value(json_object_get(svc, "status")), "INACTIVE"))) {
		json_decref(svc);
		return server_ecs_fail(c, "ServiceNotFoundException", "Service not found.");
	}
	if (r < 0)
		return server_ecs_internal(c, err);
	*ret = svc;
	return 0;
}

/* ---- validation ---- */

/* deploymentConfiguration: merge `in` into `cur` (a new object), checking ECS's rules. */
static int deployment_config(struct ecs_call *c, json_t *in, json_t *cur, bool daemon, json_t **ret)
{
	json_t *dc = cur ? json_deep_copy(cur) : json_object();
	if (!json_object_get(dc, "maximumPercent"))
		json_object_set_new(
		    dc, "maximumPercent",
		    json_integer(daemon ? DEPLOY_DAEMON_MAX_PERCENT : DEPLOY_DEFAULT_MAX_PERCENT));
	if (!json_object_get(dc, "minimumHealthyPercent"))
		json_object_set_new(
		    dc, "minimumHealthyPercent",
		    json_integer(daemon ? DEPLOY_DAEMON_MIN_HEALTHY : DEPLOY_DEFAULT_MIN_HEALTHY));
	if (!json_object_get(dc, "deploymentCircuitBreaker"))
		json_object_set_new(dc, "deploymentCircuitBreaker",
				    json_pack("{s:b,s:b}", "enable", 0, "rollback", 0));
	if (in && !json_is_object(in)) {
		json_decref(dc);
		return server_ecs_fail(c, "SerializationException",
				       "'deploymentConfiguration': expected an object");
	}
	int64_t max = json_integer_value(json_object_get(dc, "maximumPercent"));
	int64_t min = json_integer_value(json_object_get(dc, "minimumHealthyPercent"));
	json_t *cb = json_object_get(in, "deploymentCircuitBreaker");
	if ((in && (server_ecs_int(c, in, "maximumPercent", INT32_MIN, INT32_MAX, &max) < 0 ||
		    server_ecs_int(c, in, "minimumHealthyPercent", INT32_MIN, INT32_MAX, &min) < 0)) ||
	    (cb && (!json_is_object(cb) || !json_is_boolean(json_object_get(cb, "enable")) ||
		    !json_is_boolean(json_object_get(cb, "rollback"))))) {
		json_decref(dc);
		if (!c->type)
			server_ecs_fail(c, "SerializationException",
					"'deploymentCircuitBreaker': expected {enable, rollback} booleans");
		return -1;
	}
	int r = 0;
	if (max < 100 || max > SERVICE_MAX_PERCENT)
		r = server_ecs_fail(
		    c, "InvalidParameterException",
		    "deploymentConfiguration.maximumPercent must be between 100 and %d (got %lld).",
		    SERVICE_MAX_PERCENT, (long long)max);
	else if (min < 0 || min > 100)
		r = server_ecs_fail(
		    c, "InvalidParameterException",
		    "deploymentConfiguration.minimumHealthyPercent must be between 0 and 100 (got %lld).",
		    (long long)min);
	else if (min > max)
		r = server_ecs_fail(
		    c, "InvalidParameterException",
		    "deploymentConfiguration.minimumHealthyPercent (%lld) must not be greater than "
		    "maximumPercent (%lld).",
		    (long long)min, (long long)max);
	if (r < 0) {
		json_decref(dc);
		return r;
	}
	json_object_set_new(dc, "maximumPercent", json_integer(max));
	json_object_set_new(dc, "minimumHealthyPercent", json_integer(min));
	if (cb)
		json_object_set_new(dc, "deploymentCircuitBreaker",
				    json_pack("{s:O,s:O}", "enable", json_object_get(cb, "enable"),
					      "rollback", json_object_get(cb, "rollback")));
	*ret = dc;
	return 0;
}

/* A container port of the task definition's container `name`. */
static bool td_has_port(json_t *td, const char *name, int64_t port)
{
	size_t i, k;
	json_t *cd, *pm;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, cd) {
		if (!streq_ptr(json_string_value(json_object_get(cd, "name")), name))
			continue;
		json_array_foreach (json_object_get(cd, "portMappings"), k, pm)
			if (json_integer_value(json_object_get(pm, "containerPort")) == port)
				return true;
	}
	return false;
}

static bool td_has_container(json_t *td, const char *name)
{
	size_t i;
	json_t *cd;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, cd)
		if (streq_ptr(json_string_value(json_object_get(cd, "name")), name))
			return true;
	return false;
}

char *server_target_group_name(const char *arn)
{
	const char *p = arn ? strstr(arn, ":targetgroup/") : NULL;
	if (!startswith(arn ? arn : "", "arn:aws:elasticloadbalancing:") || !p)
		return NULL;
	p += strlen(":targetgroup/");
	const char *slash = strchr(p, '/');
	if (!slash || slash == p)
		return NULL;
	char *name = xstrndup(p, (size_t)(slash - p));
	if (!server_name_valid(name, 32)) {
		free(name);
		return NULL;
	}
	return name;
}

/* loadBalancers: each target group must exist (helper lb's record), container and port in td. */
static int check_load_balancers(struct ecs_call *c, json_t *lbs, json_t *td)
{
	if (!lbs || json_is_null(lbs))
		return 0;
	if (!json_is_array(lbs))
		return server_ecs_fail(c, "SerializationException", "'loadBalancers': expected a list");
	if (json_array_size(lbs) > SERVICE_MAX_LBS)
		return server_ecs_fail(c, "InvalidParameterException",
				       "loadBalancers can have at most %d items.", SERVICE_MAX_LBS);
	size_t i;
	json_t *lb;
	json_array_foreach (lbs, i, lb) {
		const char *tg = json_string_value(json_object_get(lb, "targetGroupArn"));
		const char *cname = json_string_value(json_object_get(lb, "containerName"));
		json_t *port = json_object_get(lb, "containerPort");
		if (json_object_get(lb, "loadBalancerName"))
			return server_ecs_fail(
			    c, "InvalidParameterException",
			    "Classic load balancers (loadBalancerName) are not supported; use "
			    "targetGroupArn.");
		if (!tg || !cname || !json_is_integer(port))
			return server_ecs_fail(
			    c, "InvalidParameterException",
			    "loadBalancers[%zu] needs targetGroupArn, containerName and containerPort.", i);
		_cleanup_free_ char *name = server_target_group_name(tg);
		_cleanup_free_ char *key = name ? xasprintf("/berth/lb/targetgroups/%s", name) : NULL;
		json_t *rec = NULL;
		if (!key || server_record_get(c->srv, key, &rec, NULL, NULL) < 0 ||
		    !streq_ptr(json_string_value(json_object_get(rec, "targetGroupArn")), tg)) {
			json_decref(rec);
			return server_ecs_fail(c, "InvalidParameterException",
					       "The target group %s does not exist.", tg);
		}
		json_decref(rec);
		if (td && !td_has_container(td, cname))
			return server_ecs_fail(c, "InvalidParameterException",
					       "The container %s does not exist in the task definition.",
					       cname);
		if (td && !td_has_port(td, cname, json_integer_value(port)))
			return server_ecs_fail(c, "InvalidParameterException",
					       "The container %s did not have a container port %lld defined.",
					       cname, (long long)json_integer_value(port));
	}
	return 0;
}

/* placementConstraints/placementStrategy: compile them as the controller will (errors name the field). */
static int check_placement(struct ecs_call *c, const char *cluster, json_t *td, json_t *constraints,
			   json_t *strategies)
{
	if ((constraints && !json_is_array(constraints)) || (strategies && !json_is_array(strategies)))
		return server_ecs_fail(c, "SerializationException",
				       "placementConstraints and placementStrategy must be lists.");
	if (!td)
		return 0;
	_cleanup_json_ json_t *strat = server_service_strategies(strategies);
	struct sreq rq;
	struct sreq_input in = {
		td, constraints, strat, "service:check", server_taskdef_cpu(td), server_taskdef_memory(td)
	};
	struct sched_snapshot *snap = NULL;
	struct sched_prepared *p = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_sched_cache_lock(c->srv, cluster, &snap, &err) < 0)
		return server_ecs_internal(c, err);
	int r = 0;
	if (server_sreq_build(&rq, &in) < 0 || server_sreq_prepare(&rq, snap, &p) < 0)
		r = server_ecs_fail(c, "InvalidParameterException", "%s", rq.msg);
	server_sched_cache_unlock(c->srv);
	sched_prepared_free(p);
	server_sreq_done(&rq);
	return r;
}

json_t *server_service_strategies(json_t *user)
{
	json_t *out = json_array();
	json_t *first = json_array_get(user, 0);
	bool az_first =
	    first && streq_ptr(json_string_value(json_object_get(first, "type")), "spread") &&
	    streq_ptr(json_string_value(json_object_get(first, "field")), "attribute:ecs.availability-zone");
	if (!az_first)
		json_array_append_new(out, json_pack("{s:s,s:s}", "type", "spread", "field",
						     "attribute:ecs.availability-zone"));
	if (json_array_size(user))
		json_array_extend(out, user);
	else
		json_array_append_new(out, json_pack("{s:s,s:s}", "type", "spread", "field", "instanceId"));
	while (json_array_size(out) > SCHED_MAX_STRATEGIES)
		json_array_remove(out, json_array_size(out) - 1);
	return out;
}

/* ---- CreateService ---- */

struct create_in {
	const char *name, *tdref, *strategy, *controller, *launch;
	int64_t desired, grace;
	bool has_desired;
	json_t *lbs, *constraints, *strategies, *dc, *tags;
};

static int create_parse(struct ecs_call *c, json_t *in, struct create_in *a)
{
	json_t *ctl = json_object_get(in, "deploymentController");
	a->desired = -1;
	a->grace = 0;
	if (server_ecs_str(c, in, "serviceName", true, &a->name) < 0 ||
	    server_ecs_str(c, in, "taskDefinition", false, &a->tdref) < 0 ||
	    server_ecs_str(c, in, "schedulingStrategy", false, &a->strategy) < 0 ||
	    server_ecs_str(c, in, "launchType", false, &a->launch) < 0 ||
	    server_ecs_int(c, in, "desiredCount", INT32_MIN, INT32_MAX, &a->desired) < 0 ||
	    server_ecs_int(c, in, "healthCheckGracePeriodSeconds", INT32_MIN, INT32_MAX, &a->grace) < 0 ||
	    (ctl && server_ecs_str(c, ctl, "type", true, &a->controller) < 0))
		return -1;
	a->has_desired = json_is_integer(json_object_get(in, "desiredCount"));
	a->strategy = a->strategy ? a->strategy : "REPLICA";
	a->controller = a->controller ? a->controller : "ECS";
	if (!server_name_valid(a->name, 255))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Service names can have up to 255 letters, numbers, hyphens and underscores.");
	if (!streq(a->strategy, "REPLICA") && !streq(a->strategy, "DAEMON"))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid schedulingStrategy '%s'.",
				       a->strategy);
	if (!streq(a->controller, "ECS") && !streq(a->controller, "EXTERNAL"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "Deployment controller type '%s' is not supported (ECS, EXTERNAL).",
				       a->controller);
	if (a->launch && !streq(a->launch, "EC2") && !streq(a->launch, "EXTERNAL"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "launchType '%s' is not supported (EC2).", a->launch);
	if (a->has_desired && a->desired < 0)
		return server_ecs_fail(c, "InvalidParameterException", "desiredCount can not be negative.");
	if (a->grace < 0 || a->grace > 2147483647)
		return server_ecs_fail(c, "InvalidParameterException",
				       "healthCheckGracePeriodSeconds can not be negative.");
	bool daemon = streq(a->strategy, "DAEMON");
	if (daemon && a->has_desired)
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "The DAEMON scheduling strategy does not support a desired count for services.");
	if (daemon && streq(a->controller, "EXTERNAL"))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "The DAEMON scheduling strategy requires the ECS deployment controller.");
	if (!daemon && !a->has_desired && streq(a->controller, "ECS"))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "desiredCount is required for services with the REPLICA scheduling strategy.");
	if (!a->tdref && streq(a->controller, "ECS"))
		return server_ecs_fail(c, "InvalidParameterException", "TaskDefinition can not be blank.");
	a->lbs = json_object_get(in, "loadBalancers");
	a->constraints = json_object_get(in, "placementConstraints");
	a->strategies = json_object_get(in, "placementStrategy");
	if (daemon && json_array_size(a->strategies))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Placement strategies are not supported with DAEMON scheduling strategy.");
	a->tags = json_object_get(in, "tags");
	if (a->tags && server_tags_check(c, a->tags) < 0)
		return -1;
	return deployment_config(c, json_object_get(in, "deploymentConfiguration"), NULL, daemon, &a->dc);
}

static json_t *service_record(struct ecs_call *c, const char *cluster, json_t *cl, const struct create_in *a,
			      json_t *in, json_t *td)
{
	_cleanup_free_ char *tail = xasprintf("%s/%s", cluster, a->name);
	_cleanup_free_ char *arn = server_arn_make(c->srv, "service", tail);
	bool daemon = streq(a->strategy, "DAEMON");
	/* the principal, as ECS names it (and as RegisterTaskDefinition's registeredBy) */
	_cleanup_free_ char *by = xasprintf("arn:aws:iam::%s:root", c->srv->account);
	json_t *svc = json_pack(
	    "{s:s,s:s,s:O,s:s,s:I,s:i,s:i,s:s,s:s,s:f,s:s,s:{s:s},s:O,s:[],s:[],s:s,s:b,s:b}", "serviceArn",
	    arn, "serviceName", a->name, "clusterArn", json_object_get(cl, "clusterArn"), "status", "ACTIVE",
	    "desiredCount", (json_int_t)(daemon || !a->has_desired ? 0 : a->desired), "runningCount", 0,
	    "pendingCount", 0, "launchType", a->launch ? a->launch : "EC2", "schedulingStrategy", a->strategy,
	    "createdAt", server_record_now(), "createdBy", by, "deploymentController", "type", a->controller,
	    "deploymentConfiguration", a->dc, "events", "taskSets", "berthCluster", cluster,
	    "enableECSManagedTags", json_is_true(json_object_get(in, "enableECSManagedTags")),
	    "enableExecuteCommand", json_is_true(json_object_get(in, "enableExecuteCommand")));
	json_object_set_new(svc, "loadBalancers", a->lbs ? json_deep_copy(a->lbs) : json_array());
	json_object_set_new(svc, "serviceRegistries",
			    json_is_array(json_object_get(in, "serviceRegistries"))
				? json_deep_copy(json_object_get(in, "serviceRegistries"))
				: json_array());
	json_object_set_new(svc, "placementConstraints",
			    a->constraints ? json_deep_copy(a->constraints) : json_array());
	json_object_set_new(svc, "placementStrategy",
			    daemon          ? json_array()
			    : a->strategies ? json_deep_copy(a->strategies)
					    : json_pack("[{s:s,s:s},{s:s,s:s}]", "type", "spread", "field",
							"attribute:ecs.availability-zone", "type", "spread",
							"field", "instanceId"));
	const char *copy[] = { "networkConfiguration", "propagateTags", "serviceConnectConfiguration" };
	for (size_t i = 0; i < ARRAY_SIZE(copy); i++)
		if (json_object_get(in, copy[i]))
			json_object_set(svc, copy[i], json_object_get(in, copy[i]));
	if (json_object_get(in, "healthCheckGracePeriodSeconds"))
		json_object_set_new(svc, "healthCheckGracePeriodSeconds", json_integer(a->grace));
	json_t *deps = json_array();
	if (td) {
		json_object_set(svc, "taskDefinition", json_object_get(td, "taskDefinitionArn"));
		if (!streq(a->controller, "EXTERNAL")) {
			_cleanup_free_ char *id = server_deployment_id_new();
			json_array_append_new(
			    deps, server_deployment_new(
				      id, svc, json_string_value(json_object_get(td, "taskDefinitionArn")),
				      json_integer_value(json_object_get(svc, "desiredCount"))));
		}
	}
	json_object_set_new(svc, "deployments", deps);
	return svc;
}

/*
 * A DAEMON service's desiredCount from the start: its ACTIVE, connected
 * nodes (the controller then counts the nodes that really run it), so a
 * services_stable waiter right after CreateService does not see 0 == 0.
 */
static void daemon_initial_count(struct server *s, const char *cluster, json_t *svc)
{
	_cleanup_free_ char *ip = xasprintf("/berth/instances/%s/", cluster);
	_cleanup_json_ json_t *insts = NULL;
	if (server_record_list(s, ip, &insts, NULL) < 0)
		return;
	int64_t n = 0;
	size_t i;
	json_t *inst;
	json_array_foreach (insts, i, inst) {
		const char *id = json_string_value(json_object_get(inst, "nodeId"));
		n += id && streq_ptr(json_string_value(json_object_get(inst, "status")), "ACTIVE") &&
		     server_instance_connected(s, id);
	}
	json_object_set_new(svc, "desiredCount", json_integer(n));
	json_t *d = json_array_get(json_object_get(svc, "deployments"), 0);
	if (d)
		json_object_set_new(d, "desiredCount", json_integer(n));
}

int server_ecs_create_service(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	struct create_in a = { 0 };
	_cleanup_free_ char *cluster = NULL;
	_cleanup_json_ json_t *cl = NULL, *td = NULL, *dc = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 || create_parse(c, in, &a) < 0)
		return -1;
	dc = a.dc;
	if (server_cluster_resolve(c, ref, &cl, &cluster) < 0 ||
	    (a.tdref && server_taskdef_resolve(c, a.tdref, &td) < 0) ||
	    (td && (server_taskdef_check_launchable(c, td) < 0 ||
		    server_taskdef_check_network_config(c, td, in) < 0)) ||
	    check_load_balancers(c, a.lbs, td) < 0 ||
	    check_placement(c, cluster, td, a.constraints,
			    streq(a.strategy, "DAEMON") ? NULL : a.strategies) < 0)
		return -1;
	_cleanup_free_ char *key = server_service_key(cluster, a.name);
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *old = NULL;
	int64_t rev = 0;
	int r = server_record_get(c->srv, key, &old, &rev, &err);
	if (r < 0 && r != -ENOENT)
		return server_ecs_internal(c, err);
	bool taken = r == 0 && !streq_ptr(json_string_value(json_object_get(old, "status")), "INACTIVE");
	json_decref(old);
	if (taken)
		return server_ecs_fail(c, "InvalidParameterException",
				       "Creation of service was not idempotent.");
	json_t *svc = service_record(c, cluster, cl, &a, in, td);
	if (server_service_sched_ext(c, in, svc) < 0) { /* berthScheduling: rebalance.c */
		json_decref(svc);
		return -1;
	}
	if (streq(a.strategy, "DAEMON"))
		daemon_initial_count(c->srv, cluster, svc);
	/*
	 * The record and its tags in one transaction: the deployer launches the
	 * first tasks as soon as it sees the record, and propagateTags SERVICE
	 * copies the tags it finds then. A service re-created under the name of
	 * an INACTIVE one does not inherit that one's tags.
	 */
	const char *arn = json_string_value(json_object_get(svc, "serviceArn"));
	_cleanup_free_ char *tkey = xasprintf("/berth/tags/%s", arn);
	_cleanup_json_ json_t *tobj = json_object();
	size_t i;
	json_t *t;
	json_array_foreach (a.tags, i, t)
		json_object_set(tobj, json_string_value(json_object_get(t, "key")),
				json_object_get(t, "value"));
	_cleanup_free_ char *v = json_dumps(svc, JSON_COMPACT), *tv = json_dumps(tobj, JSON_COMPACT);
	struct store_cmp cmp = {
		key, r == 0 ? STORE_CMP_MOD : STORE_CMP_CREATE, STORE_CMP_EQUAL, r == 0 ? rev : 0, NULL, 0
	};
	struct store_op ops[2] = { { STORE_OP_PUT, key, v, strlen(v), 0 },
				   json_object_size(tobj)
				       ? (struct store_op){ STORE_OP_PUT, tkey, tv, strlen(tv), 0 }
				       : (struct store_op){ STORE_OP_DELETE, tkey, NULL, 0, 0 } };
	bool ok = false;
	if (store_txn(c->srv->store, &cmp, 1, ops, 2, &ok, NULL, &err) < 0) {
		json_decref(svc);
		return server_ecs_internal(c, err);
	}
	if (!ok) {
		json_decref(svc);
		return server_ecs_fail(c, "InvalidParameterException",
				       "Creation of service was not idempotent.");
	}
	*out = json_pack("{s:o}", "service", server_service_view(c->srv, svc, NULL, a.tags != NULL));
	json_decref(svc);
	return 0;
}

/* ---- views ---- */

static void strip_internal(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe (o, tmp, k, v)
		if (startswith(k, "berth"))
			json_object_del(o, k);
}

/* runningCount/pendingCount (and desiredCount of an ACTIVE deployment) of one deployment or task set. */
static void count_into(json_t *d, json_t *tasks, const char *group, bool live_desired)
{
	const char *id = json_string_value(json_object_get(d, "id"));
	int64_t running = 0, pending = 0, desired = 0;
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		if (!streq_ptr(json_string_value(json_object_get(t, "group")), group) ||
		    !streq_ptr(json_string_value(json_object_get(t, "startedBy")), id) ||
		    !server_task_active(t))
			continue;
		const char *last = json_string_value(json_object_get(t, "lastStatus"));
		running += streq_ptr(last, "RUNNING");
		pending += streq_ptr(last, "PROVISIONING") || streq_ptr(last, "PENDING") ||
			   streq_ptr(last, "ACTIVATING");
		desired += streq_ptr(json_string_value(json_object_get(t, "desiredStatus")), "RUNNING");
	}
	json_object_set_new(d, "runningCount", json_integer(running));
	json_object_set_new(d, "pendingCount", json_integer(pending));
	if (live_desired)
		json_object_set_new(d, "desiredCount", json_integer(desired));
	strip_internal(d);
}

json_t *server_service_view(struct server *s, json_t *svc, json_t *tasks, bool with_tags)
{
	json_t *v = json_deep_copy(svc);
	_cleanup_json_ json_t *own = NULL;
	if (!tasks) {
		_cleanup_free_ char *tp =
		    xasprintf("/berth/tasks/%s/", json_string_value(json_object_get(svc, "berthCluster")));
		if (server_record_list(s, tp, &own, NULL) < 0)
			own = json_array();
		tasks = own;
	}
	_cleanup_free_ char *group =
	    xasprintf("service:%s", json_string_value(json_object_get(svc, "serviceName")));
	int64_t running = 0, pending = 0;
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(v, "deployments"), i, d)
		count_into(d, tasks, group,
			   !streq_ptr(json_string_value(json_object_get(d, "status")), "PRIMARY"));
	json_array_foreach (json_object_get(v, "taskSets"), i, d)
		count_into(d, tasks, group, false);
	json_t *t;
	json_array_foreach (tasks, i, t) {
		if (!streq_ptr(json_string_value(json_object_get(t, "group")), group) ||
		    !server_task_active(t))
			continue;
		const char *last = json_string_value(json_object_get(t, "lastStatus"));
		running += streq_ptr(last, "RUNNING");
		pending += streq_ptr(last, "PROVISIONING") || streq_ptr(last, "PENDING") ||
			   streq_ptr(last, "ACTIVATING");
	}
	json_object_set_new(v, "runningCount", json_integer(running));
	json_object_set_new(v, "pendingCount", json_integer(pending));
	strip_internal(v);
	if (json_object_get(svc, "berthScheduling")) /* berth's extension, shown (rebalance.c) */
		json_object_set(v, "berthScheduling", json_object_get(svc, "berthScheduling"));
	if (with_tags)
		json_object_set_new(
		    v, "tags", server_tags_get(s, json_string_value(json_object_get(svc, "serviceArn"))));
	return v;
}

/* ---- UpdateService ---- */

/* Apply the request to a copy of svc; the new record in *ret. */
static int update_apply(struct ecs_call *c, const char *cluster, json_t *svc, json_t *in, json_t **ret)
{
	const char *tdref;
	int64_t desired = -1, grace = -1;
	bool daemon = server_service_is_daemon(svc), external = server_service_is_external(svc);
	json_t *force = json_object_get(in, "forceNewDeployment");
	if (server_ecs_str(c, in, "taskDefinition", false, &tdref) < 0 ||
	    server_ecs_int(c, in, "desiredCount", INT32_MIN, INT32_MAX, &desired) < 0 ||
	    server_ecs_int(c, in, "healthCheckGracePeriodSeconds", INT32_MIN, INT32_MAX, &grace) < 0)
		return -1;
	if (force && !json_is_boolean(force))
		return server_ecs_fail(c, "SerializationException",
				       "'forceNewDeployment': expected a boolean");
	if (server_service_sched_ext(c, in, svc) < 0) /* berthScheduling: rebalance.c */
		return -1;
	bool has_desired = json_is_integer(json_object_get(in, "desiredCount"));
	if (has_desired && desired < 0)
		return server_ecs_fail(c, "InvalidParameterException", "desiredCount can not be negative.");
	if (has_desired && daemon)
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "The DAEMON scheduling strategy does not support a desired count for services.");
	if (json_object_get(in, "healthCheckGracePeriodSeconds") && grace < 0)
		return server_ecs_fail(c, "InvalidParameterException",
				       "healthCheckGracePeriodSeconds can not be negative.");
	if (external && (tdref || json_is_true(force)))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Unable to update task definition on services with a EXTERNAL deployment "
		    "controller. Use task sets instead.");
	json_t *strategies = json_object_get(in, "placementStrategy");
	if (daemon && json_array_size(strategies))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Placement strategies are not supported with DAEMON scheduling strategy.");
	_cleanup_json_ json_t *td = NULL, *dc = NULL;
	const char *cur_td = json_string_value(json_object_get(svc, "taskDefinition"));
	if ((tdref && server_taskdef_resolve(c, tdref, &td) < 0) ||
	    (td && server_taskdef_check_launchable(c, td) < 0) ||
	    (!td && cur_td && server_taskdef_resolve(c, cur_td, &td) < 0))
		return -1;
	/* CreateService's check: a given networkConfiguration against the (new or current) task
	 * definition, or the service's own against a new task definition */
	json_t *net = json_object_get(in, "networkConfiguration");
	if (td && ((net && !json_is_null(net)) || tdref) &&
	    server_taskdef_check_network_config(c, td, net && !json_is_null(net) ? in : svc) < 0)
		return -1;
	json_t *lbs = json_object_get(in, "loadBalancers");
	json_t *constraints = json_object_get(in, "placementConstraints");
	if (deployment_config(c, json_object_get(in, "deploymentConfiguration"),
			      json_object_get(svc, "deploymentConfiguration"), daemon, &dc) < 0 ||
	    /* given ones, or the current ones against a new task definition (a target group deleted
	     * since then must not block a scale) */
	    ((lbs || tdref) &&
	     check_load_balancers(c, lbs ? lbs : json_object_get(svc, "loadBalancers"), td) < 0) ||
	    check_placement(
		c, cluster, td, constraints ? constraints : json_object_get(svc, "placementConstraints"),
		strategies ? strategies : (daemon ? NULL : json_object_get(svc, "placementStrategy"))) < 0)
		return -1;
	json_t *n = json_deep_copy(svc);
	json_object_set(n, "deploymentConfiguration", dc);
	if (has_desired)
		json_object_set_new(n, "desiredCount", json_integer(desired));
	if (json_object_get(in, "healthCheckGracePeriodSeconds"))
		json_object_set_new(n, "healthCheckGracePeriodSeconds", json_integer(grace));
	const char *copy[] = { "placementConstraints", "placementStrategy",
			       "networkConfiguration", "serviceRegistries",
			       "propagateTags",        "enableExecuteCommand",
			       "enableECSManagedTags", "serviceConnectConfiguration" };
	for (size_t i = 0; i < ARRAY_SIZE(copy); i++)
		if (json_object_get(in, copy[i]) && !json_is_null(json_object_get(in, copy[i])))
			json_object_set(n, copy[i], json_object_get(in, copy[i]));
	bool lbs_changed = lbs && !json_equal(lbs, json_object_get(svc, "loadBalancers"));
	if (lbs)
		json_object_set(n, "loadBalancers", lbs);
	const char *new_td = td ? json_string_value(json_object_get(td, "taskDefinitionArn")) : NULL;
	json_t *deps = json_object_get(n, "deployments");
	json_t *primary = json_array_get(deps, 0);
	bool redeploy = !external && new_td &&
			(!streq_ptr(new_td, cur_td) || json_is_true(force) || lbs_changed || !primary);
	int64_t want = json_integer_value(json_object_get(n, "desiredCount"));
	if (redeploy) {
		size_t i;
		json_t *d;
		json_array_foreach (deps, i, d)
			json_object_set_new(d, "status", json_string("ACTIVE"));
		_cleanup_free_ char *id = server_deployment_id_new();
		json_array_insert_new(deps, 0, server_deployment_new(id, n, new_td, want));
		json_object_set_new(n, "taskDefinition", json_string(new_td));
	} else if (primary) {
		json_object_set_new(primary, "desiredCount", json_integer(want));
		json_object_set_new(primary, "updatedAt", json_real(server_record_now()));
		/* a scale of a completed deployment is a small deployment of its own in ECS */
		if (has_desired && desired != json_integer_value(json_object_get(svc, "desiredCount")) &&
		    streq_ptr(json_string_value(json_object_get(primary, "rolloutState")), "COMPLETED")) {
			json_object_set_new(primary, "rolloutState", json_string("IN_PROGRESS"));
			/* the reason follows the state (it said "completed" until the next completion) */
			json_object_set_new(primary, "rolloutStateReason",
					    json_sprintf("ECS deployment %s in progress.",
							 json_string_value(json_object_get(primary, "id"))));
		}
	}
	*ret = n;
	return 0;
}

int server_service_edit(struct ecs_call *c, const char *cluster, const char *sref, service_edit_fn edit,
			void *ctx, json_t **ret)
{
	_cleanup_free_ char *key = server_service_key(cluster, server_arn_tail(sref));
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *svc = NULL;
		int64_t rev = 0;
		if (server_service_resolve(c, cluster, sref, false, &svc, &rev) < 0)
			return -1;
		int r = edit(c, cluster, svc, ctx);
		bool ok = r > 0;
		_cleanup_error_ struct berth_error *err = NULL;
		if (r == 0 && server_record_cas(c->srv, key, svc, rev, &ok, &err) < 0)
			r = server_ecs_internal(c, err);
		if (r < 0 || ok) {
			if (r < 0)
				json_decref(svc);
			else
				*ret = svc;
			return r < 0 ? -1 : 0;
		}
		json_decref(svc);
	}
	return server_ecs_fail(c, "ServerException", "service changed concurrently; retry");
}

static int update_edit(struct ecs_call *c, const char *cluster, json_t *svc, void *in)
{
	_cleanup_json_ json_t *n = NULL;
	if (!streq_ptr(json_string_value(json_object_get(svc, "status")), "ACTIVE"))
		return server_ecs_fail(c, "ServiceNotActiveException", "Service was not ACTIVE.");
	if (update_apply(c, cluster, svc, in, &n) < 0)
		return -1;
	json_object_clear(svc);
	json_object_update(svc, n);
	return 0;
}

static int delete_edit(struct ecs_call *c, const char *cluster, json_t *svc, void *in)
{
	json_t *force = json_object_get(in, "force");
	if (streq_ptr(json_string_value(json_object_get(svc, "status")), "DRAINING"))
		return 1; /* already being deleted: answer as it is */
	if (!server_service_is_daemon(svc) && json_integer_value(json_object_get(svc, "desiredCount")) > 0 &&
	    !json_is_true(force))
		return server_ecs_fail(c, "InvalidParameterException",
				       "The service cannot be stopped while it is scaled above 0.");
	json_object_set_new(svc, "status", json_string("DRAINING"));
	json_object_set_new(svc, "desiredCount", json_integer(0));
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(svc, "deployments"), i, d)
		json_object_set_new(d, "desiredCount", json_integer(0));
	return 0;
}

/* Application Auto Scaling's change (autoscaling.c): UpdateService's edit with only desiredCount. */
struct scale_ctx {
	json_t *in;
	int64_t from;
};

static int scale_edit(struct ecs_call *c, const char *cluster, json_t *svc, void *ctx)
{
	struct scale_ctx *x = ctx;
	x->from = json_integer_value(json_object_get(svc, "desiredCount"));
	return update_edit(c, cluster, svc, x->in);
}

int server_service_set_desired_count(struct server *s, const char *cluster, const char *name, int64_t n,
				     const char *why, int64_t *ret_from, char **ret_msg)
{
	struct ecs_call c = { .srv = s };
	_cleanup_json_ json_t *in = json_pack("{s:I}", "desiredCount", (json_int_t)n), *svc = NULL;
	struct scale_ctx x = { in, 0 };
	if (server_service_edit(&c, cluster, name, scale_edit, &x, &svc) < 0) {
		*ret_msg = c.msg ? c.msg : xstrdup(c.type ? c.type : "error");
		return streq_ptr(c.type, "ServiceNotFoundException") ||
			       streq_ptr(c.type, "ServiceNotActiveException")
			   ? -ENOENT
			   : -EIO;
	}
	free(c.msg);
	(void)why; /* the scaler logs and records it as a scaling activity */
	*ret_from = x.from;
	return 0;
}

/* UpdateService and DeleteService: read-modify-write of the record; the answer is its view. */
static int service_call(struct ecs_call *c, json_t *in, service_edit_fn edit, json_t **out)
{
	const char *ref, *sref;
	_cleanup_free_ char *cluster = NULL;
	_cleanup_json_ json_t *svc = NULL;
	json_t *force = json_object_get(in, "force");
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "service", true, &sref) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (force && !json_is_boolean(force))
		return server_ecs_fail(c, "SerializationException", "'force': expected a boolean");
	if (server_service_edit(c, cluster, sref, edit, in, &svc) < 0)
		return -1;
	*out = json_pack("{s:o}", "service", server_service_view(c->srv, svc, NULL, false));
	return 0;
}

int server_ecs_update_service(struct ecs_call *c, json_t *in, json_t **out)
{
	return service_call(c, in, update_edit, out);
}

int server_ecs_delete_service(struct ecs_call *c, json_t *in, json_t **out)
{
	return service_call(c, in, delete_edit, out);
}

/* ---- DescribeServices, ListServices, ListServicesByNamespace ---- */

int server_ecs_describe_services(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	json_t *refs, *include;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_strv(c, in, "services", &refs) < 0 ||
	    server_ecs_strv(c, in, "include", &include) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!refs || json_array_size(refs) == 0 || json_array_size(refs) > SERVICES_DESCRIBE_MAX)
		return server_ecs_fail(c, "InvalidParameterException", "services must have 1 to %d items.",
				       SERVICES_DESCRIBE_MAX);
	bool with_tags = json_strv_contains(include, "TAGS");
	size_t i;
	json_t *x;
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	_cleanup_json_ json_t *tasks = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, tp, &tasks, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *list = json_array(), *failures = json_array();
	json_array_foreach (refs, i, x) {
		const char *name = server_arn_tail(json_string_value(x));
		_cleanup_free_ char *key =
		    server_name_valid(name, 255) ? server_service_key(cluster, name) : NULL;
		json_t *svc = NULL;
		if (key && server_record_get(c->srv, key, &svc, NULL, NULL) == 0) {
			json_array_append_new(list, server_service_view(c->srv, svc, tasks, with_tags));
			json_decref(svc);
			continue;
		}
		_cleanup_free_ char *tail = xasprintf("%s/%s", cluster, name);
		_cleanup_free_ char *arn = startswith(json_string_value(x), "arn:")
					       ? xstrdup(json_string_value(x))
					       : server_arn_make(c->srv, "service", tail);
		json_array_append_new(failures, json_pack("{s:s,s:s}", "arn", arn, "reason", "MISSING"));
	}
	*out = json_pack("{s:o,s:o}", "services", list, "failures", failures);
	return 0;
}

/* ARNs of the non-INACTIVE services of a cluster that pass the filters. */
static int service_arns(struct ecs_call *c, const char *cluster, const char *strategy, const char *launch,
			const char *ns, json_t **ret)
{
	_cleanup_free_ char *prefix = xasprintf("/berth/services/%s/", cluster);
	_cleanup_json_ json_t *all = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, prefix, &all, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *arns = json_array();
	size_t i;
	json_t *svc;
	json_array_foreach (all, i, svc) {
		const char *scns = json_string_value(
		    json_object_get(json_object_get(svc, "serviceConnectConfiguration"), "namespace"));
		if (streq_ptr(json_string_value(json_object_get(svc, "status")), "INACTIVE") ||
		    (strategy &&
		     !streq_ptr(json_string_value(json_object_get(svc, "schedulingStrategy")), strategy)) ||
		    (launch && !streq_ptr(json_string_value(json_object_get(svc, "launchType")), launch)) ||
		    (ns && !streq_ptr(scns, ns)))
			continue;
		json_array_append(arns, json_object_get(svc, "serviceArn"));
	}
	*ret = arns;
	return 0;
}

int server_ecs_list_services(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *strategy, *launch;
	_cleanup_free_ char *cluster = NULL;
	_cleanup_json_ json_t *arns = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "schedulingStrategy", false, &strategy) < 0 ||
	    server_ecs_str(c, in, "launchType", false, &launch) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0 ||
	    service_arns(c, cluster, strategy, launch, NULL, &arns) < 0)
		return -1;
	*out = json_object();
	return server_ecs_paginate(c, in, arns, 100, "serviceArns", *out);
}

/*
 * Namespaces: every cluster NAME has the automatic namespace "NAME.local"
 * (service discovery answers SERVICE.NAME.local); a serviceConnectConfiguration
 * namespace names another one.
 */
int server_ecs_list_services_by_namespace(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ns;
	if (server_ecs_str(c, in, "namespace", true, &ns) < 0)
		return -1;
	const char *name = server_arn_tail(ns);
	_cleanup_json_ json_t *clusters = NULL, *arns = json_array();
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, "/berth/clusters/", &clusters, &err) < 0)
		return server_ecs_internal(c, err);
	bool found = false;
	size_t i;
	json_t *cl;
	json_array_foreach (clusters, i, cl) {
		const char *cname = json_string_value(json_object_get(cl, "clusterName"));
		if (!cname || !streq_ptr(json_string_value(json_object_get(cl, "status")), "ACTIVE"))
			continue;
		_cleanup_free_ char *local = xasprintf("%s.local", cname);
		json_t *part = NULL;
		if (service_arns(c, cname, NULL, NULL, streq(local, name) ? NULL : name, &part) < 0)
			return -1;
		found |= streq(local, name) || json_array_size(part) > 0;
		json_array_extend(arns, part);
		json_decref(part);
	}
	if (!found)
		return server_ecs_fail(c, "NamespaceNotFoundException", "Namespace not found.");
	*out = json_object();
	return server_ecs_paginate(c, in, arns, 100, "serviceArns", *out);
}
