/*
 * tasksets.c - task sets of services with the EXTERNAL deployment controller
 * (blue/green driven by an outside tool): Create/Update/Delete/DescribeTaskSets
 * and UpdateServicePrimaryTaskSet. A task set lives inside its service record
 * ("taskSets"), so one compare-and-swap covers the service and its sets; the
 * controller (deploy.c) keeps each set at computedDesiredCount =
 * ceil(service desiredCount * scale / 100) and drops a DRAINING set once its
 * tasks are gone.
 */
#include "common/json.h"
#include "server/internal.h"

static json_t *task_set_find(json_t *svc, const char *ref, size_t *ret_i)
{
	size_t i;
	json_t *ts;
	json_array_foreach (json_object_get(svc, "taskSets"), i, ts) {
		const char *id = json_string_value(json_object_get(ts, "id"));
		const char *arn = json_string_value(json_object_get(ts, "taskSetArn"));
		if (streq_ptr(ref, id) || streq_ptr(ref, arn) ||
		    (id && streq_ptr(ref, strchr(id, '/') ? strchr(id, '/') + 1 : id))) {
			if (ret_i)
				*ret_i = i;
			return ts;
		}
	}
	return NULL;
}

int64_t server_task_set_count(json_t *svc, json_t *ts)
{
	double pct = json_number_value(json_object_get(json_object_get(ts, "scale"), "value"));
	double x = (double)json_integer_value(json_object_get(svc, "desiredCount")) * pct / 100.0 - 1e-9;
	int64_t n = (int64_t)x; /* ceil without libm */
	if ((double)n < x)
		n++;
	return n < 0 ? 0 : n;
}

static int parse_scale(struct ecs_call *c, json_t *in, json_t **ret)
{
	json_t *scale = json_object_get(in, "scale");
	if (!scale) {
		*ret = json_pack("{s:f,s:s}", "value", 100.0, "unit", "PERCENT");
		return 0;
	}
	json_t *v = json_object_get(scale, "value");
	const char *unit = json_string_value(json_object_get(scale, "unit"));
	if (!json_is_object(scale) || (v && !json_is_number(v)))
		return server_ecs_fail(c, "SerializationException",
				       "'scale': expected {value: number, unit}");
	double x = v ? json_number_value(v) : 100.0;
	if (x < 0 || x > 100)
		return server_ecs_fail(c, "InvalidParameterException",
				       "scale.value must be between 0 and 100.");
	if (unit && !streq(unit, "PERCENT"))
		return server_ecs_fail(c, "InvalidParameterException", "scale.unit must be PERCENT.");
	*ret = json_pack("{s:f,s:s}", "value", x, "unit", "PERCENT");
	return 0;
}

static json_t *task_set_view(struct server *s, json_t *svc, json_t *ts)
{
	_cleanup_json_ json_t *v = server_service_view(s, svc, NULL, false);
	json_t *x = task_set_find(v, json_string_value(json_object_get(ts, "id")), NULL);
	return json_incref(x ? x : ts);
}

typedef int (*task_set_edit_fn)(struct ecs_call *c, json_t *svc, json_t *in, json_t **ret_ts);

struct task_set_call {
	json_t *in;
	task_set_edit_fn edit;
	json_t *ts; /* borrowed from the edited record */
};

/* Task-set calls need an ACTIVE service with the EXTERNAL deployment controller. */
static int check_external(struct ecs_call *c, json_t *svc)
{
	if (!streq_ptr(json_string_value(json_object_get(svc, "status")), "ACTIVE"))
		return server_ecs_fail(c, "ServiceNotActiveException", "Service was not ACTIVE.");
	if (!server_service_is_external(svc))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Amazon ECS only supports task set management on services configured to use "
		    "external deployment controllers.");
	return 0;
}

static int task_set_edit(struct ecs_call *c, const char *cluster, json_t *svc, void *ctx)
{
	struct task_set_call *t = ctx;
	(void)cluster;
	if (check_external(c, svc) < 0 || t->edit(c, svc, t->in, &t->ts) < 0)
		return -1;
	json_object_set_new(t->ts, "updatedAt", json_real(server_record_now()));
	return 0;
}

static int service_of(struct ecs_call *c, json_t *in, char **ret_cluster, const char **ret_sref)
{
	const char *ref;
	return server_ecs_str(c, in, "cluster", true, &ref) < 0 ||
		       server_ecs_str(c, in, "service", true, ret_sref) < 0 ||
		       server_cluster_resolve(c, ref, NULL, ret_cluster) < 0
		   ? -1
		   : 0;
}

/* One task set change inside a read-modify-write of its service record; answers {"taskSet": ...}. */
static int task_set_txn(struct ecs_call *c, json_t *in, task_set_edit_fn edit, json_t **out)
{
	_cleanup_free_ char *cluster = NULL;
	_cleanup_json_ json_t *svc = NULL;
	const char *sref;
	struct task_set_call t = { in, edit, NULL };
	if (service_of(c, in, &cluster, &sref) < 0 ||
	    server_service_edit(c, cluster, sref, task_set_edit, &t, &svc) < 0)
		return -1;
	*out = json_pack("{s:o}", "taskSet", task_set_view(c->srv, svc, t.ts));
	return 0;
}

static int create_edit(struct ecs_call *c, json_t *svc, json_t *in, json_t **ret_ts)
{
	const char *tdref, *external_id, *launch;
	_cleanup_json_ json_t *td = NULL, *scale = NULL;
	if (server_ecs_str(c, in, "taskDefinition", true, &tdref) < 0 ||
	    server_ecs_str(c, in, "externalId", false, &external_id) < 0 ||
	    server_ecs_str(c, in, "launchType", false, &launch) < 0 || parse_scale(c, in, &scale) < 0 ||
	    server_taskdef_resolve(c, tdref, &td) < 0 || server_taskdef_check_launchable(c, td) < 0)
		return -1;
	if (launch && !streq(launch, "EC2") && !streq(launch, "EXTERNAL"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "launchType '%s' is not supported (EC2).", launch);
	json_t *lbs = json_object_get(in, "loadBalancers");
	if (lbs && !json_is_array(lbs))
		return server_ecs_fail(c, "SerializationException", "'loadBalancers': expected a list");
	json_t *sets = json_object_get(svc, "taskSets");
	if (json_array_size(sets) >= 5)
		return server_ecs_fail(c, "InvalidParameterException",
				       "A service can have at most 5 task sets.");
	_cleanup_free_ char *id = server_deployment_id_new();
	const char *svc_arn = json_string_value(json_object_get(svc, "serviceArn"));
	_cleanup_free_ char *tail =
	    xasprintf("%s/%s/%s", json_string_value(json_object_get(svc, "berthCluster")),
		      json_string_value(json_object_get(svc, "serviceName")), id);
	_cleanup_free_ char *arn = server_arn_make(c->srv, "task-set", tail);
	double now = server_record_now();
	json_t *ts =
	    json_pack("{s:s,s:s,s:s,s:O,s:s,s:O,s:i,s:i,s:i,s:f,s:f,s:s,s:O,s:s,s:f}", "id", id, "taskSetArn",
		      arn, "serviceArn", svc_arn, "clusterArn", json_object_get(svc, "clusterArn"), "status",
		      "ACTIVE", "taskDefinition", json_object_get(td, "taskDefinitionArn"),
		      "computedDesiredCount", 0, "pendingCount", 0, "runningCount", 0, "createdAt", now,
		      "updatedAt", now, "launchType", launch ? launch : "EC2", "scale", scale,
		      "stabilityStatus", "STABILIZING", "stabilityStatusAt", now);
	if (external_id)
		json_object_set_new(ts, "externalId", json_string(external_id));
	json_object_set_new(ts, "loadBalancers", lbs ? json_deep_copy(lbs) : json_array());
	json_object_set_new(ts, "serviceRegistries", json_array());
	json_object_set_new(ts, "computedDesiredCount", json_integer(server_task_set_count(svc, ts)));
	json_array_append_new(sets, ts);
	if (!json_object_get(svc, "taskDefinition"))
		json_object_set(svc, "taskDefinition", json_object_get(td, "taskDefinitionArn"));
	*ret_ts = ts;
	return 0;
}

static int find_edit(struct ecs_call *c, json_t *svc, const char *ref, json_t **ret_ts)
{
	json_t *ts = task_set_find(svc, ref, NULL);
	if (!ts || streq_ptr(json_string_value(json_object_get(ts, "status")), "DRAINING"))
		return server_ecs_fail(c, "TaskSetNotFoundException",
				       "The specified task set does not exist.");
	*ret_ts = ts;
	return 0;
}

static int update_edit(struct ecs_call *c, json_t *svc, json_t *in, json_t **ret_ts)
{
	const char *ref;
	_cleanup_json_ json_t *scale = NULL;
	if (server_ecs_str(c, in, "taskSet", true, &ref) < 0 || !json_object_get(in, "scale"))
		return c->type ? -1
			       : server_ecs_fail(c, "InvalidParameterException", "scale can not be blank.");
	if (parse_scale(c, in, &scale) < 0 || find_edit(c, svc, ref, ret_ts) < 0)
		return -1;
	json_object_set(*ret_ts, "scale", scale);
	json_object_set_new(*ret_ts, "computedDesiredCount",
			    json_integer(server_task_set_count(svc, *ret_ts)));
	return 0;
}

static int primary_edit(struct ecs_call *c, json_t *svc, json_t *in, json_t **ret_ts)
{
	const char *ref;
	if (server_ecs_str(c, in, "primaryTaskSet", true, &ref) < 0 || find_edit(c, svc, ref, ret_ts) < 0)
		return -1;
	size_t i;
	json_t *ts;
	json_array_foreach (json_object_get(svc, "taskSets"), i, ts)
		if (streq_ptr(json_string_value(json_object_get(ts, "status")), "PRIMARY"))
			json_object_set_new(ts, "status", json_string("ACTIVE"));
	json_object_set_new(*ret_ts, "status", json_string("PRIMARY"));
	json_object_set(svc, "taskDefinition", json_object_get(*ret_ts, "taskDefinition"));
	return 0;
}

static int delete_edit(struct ecs_call *c, json_t *svc, json_t *in, json_t **ret_ts)
{
	const char *ref;
	json_t *force = json_object_get(in, "force");
	if (server_ecs_str(c, in, "taskSet", true, &ref) < 0 || find_edit(c, svc, ref, ret_ts) < 0)
		return -1;
	if (streq_ptr(json_string_value(json_object_get(*ret_ts, "status")), "PRIMARY") &&
	    !json_is_true(force))
		return server_ecs_fail(c, "InvalidParameterException",
				       "The primary task set cannot be deleted unless force is set.");
	json_object_set_new(*ret_ts, "status", json_string("DRAINING"));
	json_object_set_new(*ret_ts, "computedDesiredCount", json_integer(0));
	return 0;
}

int server_ecs_create_task_set(struct ecs_call *c, json_t *in, json_t **out)
{
	return task_set_txn(c, in, create_edit, out);
}

int server_ecs_update_task_set(struct ecs_call *c, json_t *in, json_t **out)
{
	return task_set_txn(c, in, update_edit, out);
}

int server_ecs_update_service_primary_task_set(struct ecs_call *c, json_t *in, json_t **out)
{
	return task_set_txn(c, in, primary_edit, out);
}

int server_ecs_delete_task_set(struct ecs_call *c, json_t *in, json_t **out)
{
	return task_set_txn(c, in, delete_edit, out);
}

int server_ecs_describe_task_sets(struct ecs_call *c, json_t *in, json_t **out)
{
	json_t *refs;
	const char *sref;
	_cleanup_free_ char *cluster = NULL;
	_cleanup_json_ json_t *svc = NULL;
	if (server_ecs_strv(c, in, "taskSets", &refs) < 0 || service_of(c, in, &cluster, &sref) < 0 ||
	    server_service_resolve(c, cluster, sref, false, &svc, NULL) < 0 || check_external(c, svc) < 0)
		return -1;
	_cleanup_json_ json_t *v = server_service_view(c->srv, svc, NULL, false);
	json_t *list = json_array(), *failures = json_array();
	size_t i;
	json_t *x;
	if (!refs) {
		json_array_extend(list, json_object_get(v, "taskSets"));
	} else {
		json_array_foreach (refs, i, x) {
			json_t *ts = task_set_find(v, json_string_value(x), NULL);
			if (ts)
				json_array_append(list, ts);
			else
				json_array_append_new(failures,
						      json_pack("{s:O,s:s}", "arn", x, "reason", "MISSING"));
		}
	}
	*out = json_pack("{s:o,s:o}", "taskSets", list, "failures", failures);
	return 0;
}
