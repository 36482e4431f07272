/*
 * autoscaling.c - Application Auto Scaling for ECS services (X-Amz-Target
 * AnyScaleFrontendService.<Op>, SigV4 service "application-autoscaling",
 * docs/autoscaling.md): scalable targets, scaling policies (target tracking
 * and step scaling), scheduled actions and scaling activities, kept in the
 * store; and the scaler the leader runs every second (server_autoscale_tick), which
 * evaluates policies against the server's metrics (metrics/series.h) and
 * scheduled actions against the clock, and changes a service's desiredCount
 * through the same edit UpdateService makes.
 *
 * Store layout (R = CLUSTER/SERVICE of the resource id service/CLUSTER/SERVICE):
 *   /berth/autoscaling/targets/R                 ScalableTarget
 *   /berth/autoscaling/policies/R/NAME           ScalingPolicy (+ berthState: lastOut, lastIn, alarm)
 *   /berth/autoscaling/scheduled/R/NAME          ScheduledAction (+ berthLastRun)
 *   /berth/autoscaling/activities/R/%016x-ID     ScalingActivity (the latest AUTOSCALE_MAX_ACTIVITIES)
 */
#include <math.h>
#include <time.h>

#include "autoscale/policy.h"
#include "autoscale/schedule.h"
#include "common/json.h"
#include "common/log.h"
#include "metrics/series.h"
#include "server/internal.h"

#define AS_PREFIX                "/berth/autoscaling/"
#define NAMESPACE                "ecs"
#define DIMENSION                "ecs:service:DesiredCount"
#define AUTOSCALE_MAX_ACTIVITIES 100
#define AUTOSCALE_MAX_RESULTS    50
#define POLICY_NAME_MAX          256

static int fail(struct ecs_call *c, const char *type, const char *fmt, ...) _printf_(3, 4);
static int fail(struct ecs_call *c, const char *type, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	return server_ecs_fail(c, type, "%s", m ? m : "");
}

/* ---- resource ids ---- */

struct resource {
	char cluster[256], service[256];
	const char *id; /* as given: service/CLUSTER/SERVICE */
};

/* ServiceNamespace, ResourceId and ScalableDimension of a request (each may be optional). */
static int resource_of(struct ecs_call *c, json_t *in, bool need_id, struct resource *r)
{
	const char *ns, *id, *dim;
	if (server_ecs_str(c, in, "ServiceNamespace", true, &ns) < 0 ||
	    server_ecs_str(c, in, "ResourceId", need_id, &id) < 0 ||
	    server_ecs_str(c, in, "ScalableDimension", need_id, &dim) < 0)
		return -1;
	if (!streq(ns, NAMESPACE))
		return fail(c, "ValidationException",
			    "Unsupported service namespace '%s': berth scales ECS services (namespace 'ecs')",
			    ns);
	if (dim && !streq(dim, DIMENSION))
		return fail(c, "ValidationException",
			    "Unsupported scalable dimension '%s' for namespace ecs: expected " DIMENSION,
			    dim);
	r->id = id;
	if (!id)
		return 0;
	const char *a = startswith(id, "service/") ? id + 8 : NULL, *slash = a ? strchr(a, '/') : NULL;
	if (!slash || slash == a || !slash[1] || strchr(slash + 1, '/') ||
	    (size_t)(slash - a) >= sizeof(r->cluster) || strlen(slash + 1) >= sizeof(r->service))
		return fail(c, "ValidationException",
			    "Unsupported resource ID '%s': expected service/CLUSTER/SERVICE", id);
	snprintf(r->cluster, sizeof(r->cluster), "%.*s", (int)(slash - a), a);
	snprintf(r->service, sizeof(r->service), "%s", slash + 1);
	if (!server_name_valid(r->cluster, 255) || !server_name_valid(r->service, 255))
		return fail(c, "ValidationException", "Unsupported resource ID '%s'", id);
	return 0;
}

static char *target_key(const struct resource *r)
{
	return xasprintf(AS_PREFIX "targets/%s/%s", r->cluster, r->service);
}

static char *policy_key(const struct resource *r, const char *name)
{
	return xasprintf(AS_PREFIX "policies/%s/%s/%s", r->cluster, r->service, name ? name : "");
}

static char *scheduled_key(const struct resource *r, const char *name)
{
	return xasprintf(AS_PREFIX "scheduled/%s/%s/%s", r->cluster, r->service, name ? name : "");
}

static int no_target(struct ecs_call *c, const struct resource *r)
{
	return fail(c, "ObjectNotFoundException",
		    "No scalable target registered for service namespace: ecs, resource ID: %s, scalable "
		    "dimension: " DIMENSION,
		    r->id);
}

/* The registered target of r, or an ObjectNotFoundException. */
static int target_get(struct ecs_call *c, const struct resource *r, json_t **ret, int64_t *ret_rev)
{
	_cleanup_free_ char *key = target_key(r);
	_cleanup_error_ struct berth_error *err = NULL;
	int rr = server_record_get(c->srv, key, ret, ret_rev, &err);
	if (rr == -ENOENT)
		return no_target(c, r);
	return rr < 0 ? server_ecs_internal(c, err) : 0;
}

/* A name (policy, scheduled action): 1-256 characters without ':' or '/' (they live in keys and ARNs). */
static int check_name(struct ecs_call *c, const char *what, const char *v)
{
	size_t n = strlen(v);
	if (n < 1 || n > POLICY_NAME_MAX || strpbrk(v, ":/\n") || strchr(v, '\t'))
		return fail(c, "ValidationException", "Invalid %s '%s': 1 to 256 characters, no ':' or '/'",
			    what, v);
	return 0;
}

static int number(struct ecs_call *c, json_t *o, const char *key, bool integer, double min, double max,
		  bool *has, double *ret)
{
	json_t *v = json_object_get(o, key);
	*has = v && !json_is_null(v);
	if (!*has)
		return 0;
	if (integer ? !json_is_integer(v) : !json_is_number(v))
		return fail(c, "ValidationException", "'%s' must be %s", key,
			    integer ? "an integer" : "a number");
	double d = json_number_value(v);
	if (d < min || d > max)
		return fail(c, "ValidationException", "'%s' must be between %g and %g", key, min, max);
	*ret = d;
	return 0;
}

/* Paginate an array of objects: MaxResults (1..50), NextToken = the next offset. */
static int paginate(struct ecs_call *c, json_t *in, json_t *all, const char *key, json_t *out)
{
	bool has;
	double max = AUTOSCALE_MAX_RESULTS, off = 0;
	const char *tok;
	if (number(c, in, "MaxResults", true, 1, AUTOSCALE_MAX_RESULTS, &has, &max) < 0 ||
	    server_ecs_str(c, in, "NextToken", false, &tok) < 0)
		return -1;
	if (tok) {
		char *end;
		off = (double)strtoul(tok, &end, 10);
		if (!*tok || *end || off > (double)json_array_size(all))
			return fail(c, "InvalidNextTokenException", "Invalid NextToken");
	}
	json_t *page = json_array();
	for (size_t i = (size_t)off; i < json_array_size(all) && json_array_size(page) < (size_t)max; i++)
		json_array_append(page, json_array_get(all, i));
	size_t next = (size_t)off + json_array_size(page);
	if (next < json_array_size(all)) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%zu", next);
		json_object_set_new(out, "NextToken", json_string(buf));
	}
	json_object_set_new(out, key, page);
	return 0;
}

/* Every record under prefix (a resource's or the namespace's), minus the berth* fields. */
static int list_public(struct ecs_call *c, const char *prefix, json_t **ret)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *all = NULL;
	if (server_record_list(c->srv, prefix, &all, &err) < 0)
		return server_ecs_internal(c, err);
	size_t i;
	json_t *v;
	json_array_foreach (all, i, v) {
		json_object_del(v, "berthState");
		json_object_del(v, "berthLastRun");
	}
	*ret = all;
	return 0;
}

/* Keep items whose string field key is in names (an array; NULL keeps all). */
static void filter_names(json_t *items, const char *key, json_t *names)
{
	if (!json_is_array(names) || !json_array_size(names))
		return;
	for (size_t i = json_array_size(items); i-- > 0;) {
		const char *v = json_string_value(json_object_get(json_array_get(items, i), key));
		if (!json_strv_contains(names, v))
			json_array_remove(items, i);
	}
}

/* ---- scalable targets ---- */

int server_as_register_scalable_target(struct ecs_call *c, json_t *in, json_t **out)
{
	struct resource r;
	bool has_min, has_max;
	double min = 0, max = 0;
	if (resource_of(c, in, true, &r) < 0 ||
	    number(c, in, "MinCapacity", true, 0, 1e9, &has_min, &min) < 0 ||
	    number(c, in, "MaxCapacity", true, 0, 1e9, &has_max, &max) < 0)
		return -1;
	json_t *susp = json_object_get(in, "SuspendedState");
	if (susp && !json_is_object(susp))
		return fail(c, "ValidationException", "'SuspendedState' must be an object");
	_cleanup_free_ char *skey = xasprintf("/berth/services/%s/%s", r.cluster, r.service);
	_cleanup_json_ json_t *svc = NULL;
	if (server_record_get(c->srv, skey, &svc, NULL, NULL) < 0 ||
	    streq_ptr(json_string_value(json_object_get(svc, "status")), "INACTIVE"))
		return fail(c, "ValidationException", "ECS service doesn't exist: %s", r.id);
	_cleanup_free_ char *key = target_key(&r);
	for (int attempt = 0; attempt < 5; attempt++) {
		_cleanup_json_ json_t *t = NULL;
		int64_t rev = 0;
		bool exists = server_record_get(c->srv, key, &t, &rev, NULL) == 0;
		if (!exists) {
			if (!has_min || !has_max)
				return fail(c, "ValidationException",
					    "MinCapacity and MaxCapacity are required to register a new "
					    "scalable target");
			t = json_pack("{s:s,s:s,s:s,s:s,s:f,s:{s:b,s:b,s:b}}", "ServiceNamespace", NAMESPACE,
				      "ResourceId", r.id, "ScalableDimension", DIMENSION, "RoleARN", "",
				      "CreationTime", server_record_now(), "SuspendedState",
				      "DynamicScalingInSuspended", 0, "DynamicScalingOutSuspended", 0,
				      "ScheduledScalingSuspended", 0);
			_cleanup_free_ char *role = xasprintf(
			    "arn:aws:iam::%s:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
			    "AWSServiceRoleForApplicationAutoScaling_ECSService",
			    c->srv->account);
			json_object_set_new(t, "RoleARN", json_string(role));
		}
		if (has_min)
			json_object_set_new(t, "MinCapacity", json_integer((json_int_t)min));
		if (has_max)
			json_object_set_new(t, "MaxCapacity", json_integer((json_int_t)max));
		if (json_integer_value(json_object_get(t, "MinCapacity")) >
		    json_integer_value(json_object_get(t, "MaxCapacity")))
			return fail(c, "ValidationException",
				    "Minimum capacity cannot be greater than maximum capacity");
		const char *flags[] = { "DynamicScalingInSuspended", "DynamicScalingOutSuspended",
					"ScheduledScalingSuspended" };
		for (size_t i = 0; susp && i < ARRAY_SIZE(flags); i++) {
			json_t *v = json_object_get(susp, flags[i]);
			if (v && !json_is_boolean(v))
				return fail(c, "ValidationException", "'%s' must be a boolean", flags[i]);
			if (v)
				json_object_set(json_object_get(t, "SuspendedState"), flags[i], v);
		}
		bool ok = false;
		_cleanup_error_ struct berth_error *err = NULL;
		if (server_record_cas(c->srv, key, t, exists ? rev : 0, &ok, &err) < 0)
			return server_ecs_internal(c, err);
		if (ok) {
			_cleanup_free_ char *arn =
			    xasprintf("arn:aws:application-autoscaling:%s:%s:scalable-target/%s",
				      c->srv->region, c->srv->account, r.id);
			*out = json_pack("{s:s}", "ScalableTargetARN", arn);
			return 0;
		}
	}
	return fail(c, "ConcurrentUpdateException", "Concurrent update on the scalable target; retry");
}

int server_as_describe_scalable_targets(struct ecs_call *c, json_t *in, json_t **out)
{
	struct resource r;
	json_t *ids = json_object_get(in, "ResourceIds");
	if (resource_of(c, in, false, &r) < 0)
		return -1;
	if (ids && !json_is_array(ids))
		return fail(c, "ValidationException", "'ResourceIds' must be a list");
	_cleanup_json_ json_t *all = NULL;
	if (list_public(c, AS_PREFIX "targets/", &all) < 0)
		return -1;
	filter_names(all, "ResourceId", ids);
	*out = json_object();
	return paginate(c, in, all, "ScalableTargets", *out);
}

/* Delete every record under prefix. */
static int delete_prefix(struct server *s, const char *prefix, struct berth_error **err)
{
	struct store_kv_list l;
	int r = store_range(s->store, prefix, NULL, 0, &l, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < l.n; i++)
		r = store_remove(s->store, l.kvs[i].key, NULL, err);
	store_kv_list_done(&l);
	return r < 0 ? r : 0;
}

int server_as_deregister_scalable_target(struct ecs_call *c, json_t *in, json_t **out)
{
	struct resource r;
	_cleanup_json_ json_t *t = NULL;
	if (resource_of(c, in, true, &r) < 0 || target_get(c, &r, &t, NULL) < 0)
		return -1;
	_cleanup_free_ char *key = target_key(&r), *pp = policy_key(&r, NULL), *sp = scheduled_key(&r, NULL);
	_cleanup_error_ struct berth_error *err = NULL;
	/* its policies and scheduled actions go with it, as in AWS */
	if (delete_prefix(c->srv, pp, &err) < 0 || delete_prefix(c->srv, sp, &err) < 0 ||
	    store_remove(c->srv->store, key, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_object();
	return 0;
}

/* ---- scaling policies ---- */

static const char *const METRIC_TYPES[] = { "ECSServiceAverageCPUUtilization",
					    "ECSServiceAverageMemoryUtilization",
					    "ALBRequestCountPerTarget" };

static char *alarm_arn(struct server *s, const char *name)
{
	return xasprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", s->region, s->account, name);
}

/* The target group NAME of a ResourceLabel app/LB/ID/targetgroup/NAME/ID, listed by the service. */
static int check_resource_label(struct ecs_call *c, const struct resource *r, const char *label)
{
	const char *tg = label ? strstr(label, "/targetgroup/") : NULL;
	if (!label || !startswith(label, "app/") || !tg)
		return fail(c, "ValidationException",
			    "ALBRequestCountPerTarget needs ResourceLabel "
			    "app/LOAD-BALANCER/ID/targetgroup/TARGET-GROUP/ID");
	const char *name = tg + strlen("/targetgroup/"), *end = strchr(name, '/');
	_cleanup_free_ char *tg_name = end ? xstrndup(name, (size_t)(end - name)) : xstrdup(name);
	_cleanup_free_ char *skey = xasprintf("/berth/services/%s/%s", r->cluster, r->service);
	_cleanup_json_ json_t *svc = NULL;
	if (server_record_get(c->srv, skey, &svc, NULL, NULL) < 0)
		return fail(c, "ValidationException", "ECS service doesn't exist: %s", r->id);
	size_t i;
	json_t *lb;
	json_array_foreach (json_object_get(svc, "loadBalancers"), i, lb) {
		const char *arn = json_string_value(json_object_get(lb, "targetGroupArn"));
		const char *t = arn ? strstr(arn, ":targetgroup/") : NULL;
		if (t && startswith(t + 13, tg_name) && t[13 + strlen(tg_name)] == '/')
			return 0;
	}
	return fail(c, "ValidationException", "ResourceLabel '%s': service %s has no target group '%s'",
		    label, r->id, tg_name);
}

static int check_target_tracking(struct ecs_call *c, const struct resource *r, json_t *tt)
{
	bool has;
	double v;
	if (!json_is_object(tt))
		return fail(c, "ValidationException",
			    "TargetTrackingScaling needs TargetTrackingScalingPolicyConfiguration");
	if (number(c, tt, "TargetValue", false, 8.515920e-109, 6.147292e+109, &has, &v) < 0)
		return -1;
	if (!has)
		return fail(c, "ValidationException", "TargetValue is required");
	if (number(c, tt, "ScaleOutCooldown", true, 0, 86400, &has, &v) < 0 ||
	    number(c, tt, "ScaleInCooldown", true, 0, 86400, &has, &v) < 0)
		return -1;
	json_t *dis = json_object_get(tt, "DisableScaleIn");
	if (dis && !json_is_boolean(dis))
		return fail(c, "ValidationException", "'DisableScaleIn' must be a boolean");
	if (json_object_get(tt, "CustomizedMetricSpecification"))
		return fail(c, "ValidationException",
			    "CustomizedMetricSpecification is not supported by berth: use a "
			    "PredefinedMetricSpecification");
	json_t *spec = json_object_get(tt, "PredefinedMetricSpecification");
	const char *type = json_string_value(json_object_get(spec, "PredefinedMetricType"));
	if (!type)
		return fail(c, "ValidationException",
			    "PredefinedMetricSpecification.PredefinedMetricType is required");
	size_t i = 0;
	while (i < ARRAY_SIZE(METRIC_TYPES) && !streq(type, METRIC_TYPES[i]))
		i++;
	if (i == ARRAY_SIZE(METRIC_TYPES))
		return fail(c, "ValidationException",
			    "Unsupported PredefinedMetricType '%s' for namespace ecs: "
			    "ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or "
			    "ALBRequestCountPerTarget",
			    type);
	if (i == 2)
		return check_resource_label(c, r, json_string_value(json_object_get(spec, "ResourceLabel")));
	return 0;
}

static const char *const ADJUSTMENTS[] = { "ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity" };
static const char *const COMPARES[] = { "GreaterThanOrEqualToThreshold", "GreaterThanThreshold",
					"LessThanThreshold", "LessThanOrEqualToThreshold" };
static const char *const ALARM_METRICS[] = { "CPUUtilization", "MemoryUtilization", "RequestCountPerTarget" };

static ssize_t index_of(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (streq(v[i], s))
			return (ssize_t)i;
	return -1;
}

/* A step policy's configuration (and its berth alarm) as the library's struct; -1 with an error in c. */
static int steps_of(struct ecs_call *c, json_t *sp, json_t *alarm, struct autoscale_steps *ret,
		    int *ret_metric)
{
	*ret = (struct autoscale_steps){ .compare = AUTOSCALE_GE, .periods = 1 };
	*ret_metric = 0;
	if (!json_is_object(sp))
		return fail(c, "ValidationException", "StepScaling needs StepScalingPolicyConfiguration");
	ssize_t adj = index_of(ADJUSTMENTS, ARRAY_SIZE(ADJUSTMENTS),
			       json_string_value(json_object_get(sp, "AdjustmentType")));
	if (adj < 0)
		return fail(
		    c, "ValidationException",
		    "AdjustmentType must be ChangeInCapacity, PercentChangeInCapacity or ExactCapacity");
	ret->type = (enum autoscale_adjustment)adj;
	bool has;
	double v = 0;
	if (number(c, sp, "Cooldown", true, 0, 86400, &has, &v) < 0)
		return -1;
	ret->cooldown = (int)v;
	if (number(c, sp, "MinAdjustmentMagnitude", true, 1, 1e6, &has, &v) < 0)
		return -1;
	if (has && ret->type != AUTOSCALE_PERCENT)
		return fail(c, "ValidationException",
			    "MinAdjustmentMagnitude is only for PercentChangeInCapacity");
	ret->min_magnitude = has ? (int64_t)v : 0;
	const char *agg = json_string_value(json_object_get(sp, "MetricAggregationType"));
	if (agg && !streq(agg, "Average") && !streq(agg, "Minimum") && !streq(agg, "Maximum"))
		return fail(c, "ValidationException",
			    "MetricAggregationType must be Average, Minimum or Maximum");
	json_t *steps = json_object_get(sp, "StepAdjustments"), *st;
	if (!json_is_array(steps) || json_array_size(steps) > AUTOSCALE_MAX_STEPS)
		return fail(c, "ValidationException", "StepAdjustments must be a list of 1 to 20 steps");
	size_t i;
	json_array_foreach (steps, i, st) {
		struct autoscale_step *x = &ret->steps[ret->n++];
		double a = 0;
		if (number(c, st, "MetricIntervalLowerBound", false, -1e300, 1e300, &x->has_lower,
			   &x->lower) < 0 ||
		    number(c, st, "MetricIntervalUpperBound", false, -1e300, 1e300, &x->has_upper,
			   &x->upper) < 0 ||
		    number(c, st, "ScalingAdjustment", true, -1e9, 1e9, &has, &a) < 0)
			return -1;
		if (!has)
			return fail(c, "ValidationException",
				    "StepAdjustments[%zu].ScalingAdjustment is required", i);
		x->adjustment = (int64_t)a;
	}
	char msg[160];
	if (autoscale_steps_check(ret, msg) < 0)
		return fail(c, "ValidationException", "%s", msg);
	if (!alarm)
		return 0;
	/* BerthAlarm (raw API): the alarm CloudWatch would hold */
	if (!json_is_object(alarm))
		return fail(c, "ValidationException", "'BerthAlarm' must be an object");
	ssize_t m = index_of(ALARM_METRICS, ARRAY_SIZE(ALARM_METRICS),
			     json_string_value(json_object_get(alarm, "MetricName")));
	ssize_t cmp = index_of(COMPARES, ARRAY_SIZE(COMPARES),
			       json_string_value(json_object_get(alarm, "ComparisonOperator")));
	if (m < 0 || cmp < 0)
		return fail(
		    c, "ValidationException",
		    "BerthAlarm needs MetricName (CPUUtilization, MemoryUtilization, RequestCountPerTarget) "
		    "and ComparisonOperator (GreaterThanOrEqualToThreshold, GreaterThanThreshold, "
		    "LessThanThreshold, LessThanOrEqualToThreshold)");
	if (number(c, alarm, "Threshold", false, -1e300, 1e300, &has, &ret->threshold) < 0)
		return -1;
	if (!has)
		return fail(c, "ValidationException", "BerthAlarm.Threshold is required");
	if (number(c, alarm, "EvaluationPeriods", true, 1, AUTOSCALE_LOW_POINTS, &has, &v) < 0)
		return -1;
	ret->periods = has ? (int)v : 1;
	ret->compare = (enum autoscale_compare)cmp;
	*ret_metric = (int)m;
	return 0;
}

static json_t *policy_alarms(struct server *s, const struct resource *r, const char *name, bool tracking,
			     const char *uid)
{
	json_t *alarms = json_array();
	const char *which[] = { "AlarmHigh", "AlarmLow" };
	for (size_t i = 0; i < (tracking ? 2 : 1); i++) {
		_cleanup_free_ char *an = tracking
					      ? xasprintf("TargetTracking-%s-%s-%.8s", r->id, which[i], uid)
					      : xasprintf("StepScaling-%s-%s", r->id, name);
		_cleanup_free_ char *aa = alarm_arn(s, an);
		json_array_append_new(alarms, json_pack("{s:s,s:s}", "AlarmName", an, "AlarmARN", aa));
	}
	return alarms;
}

static json_t *tracking_config(json_t *tt)
{
	json_t *cfg = json_deep_copy(tt);
	/* ECS's defaults */
	if (!json_object_get(cfg, "ScaleOutCooldown"))
		json_object_set_new(cfg, "ScaleOutCooldown", json_integer(300));
	if (!json_object_get(cfg, "ScaleInCooldown"))
		json_object_set_new(cfg, "ScaleInCooldown", json_integer(300));
	if (!json_object_get(cfg, "DisableScaleIn"))
		json_object_set_new(cfg, "DisableScaleIn", json_false());
	return cfg;
}

int server_as_put_scaling_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	struct resource r;
	const char *name, *type;
	_cleanup_json_ json_t *target = NULL, *old = NULL;
	if (server_ecs_str(c, in, "PolicyName", true, &name) < 0 ||
	    server_ecs_str(c, in, "PolicyType", false, &type) < 0 || resource_of(c, in, true, &r) < 0 ||
	    check_name(c, "PolicyName", name) < 0)
		return -1;
	type = type ? type : "StepScaling";
	bool tracking = streq(type, "TargetTrackingScaling");
	if (!tracking && !streq(type, "StepScaling"))
		return fail(c, "ValidationException",
			    "PolicyType must be StepScaling or TargetTrackingScaling");
	json_t *tt = json_object_get(in, "TargetTrackingScalingPolicyConfiguration");
	json_t *sp = json_object_get(in, "StepScalingPolicyConfiguration");
	json_t *alarm = json_object_get(in, "BerthAlarm");
	if ((tracking && sp) || (!tracking && tt))
		return fail(c, "ValidationException", "A %s policy takes only its own configuration", type);
	struct autoscale_steps steps;
	int metric;
	if (tracking ? check_target_tracking(c, &r, tt) < 0 : steps_of(c, sp, alarm, &steps, &metric) < 0)
		return -1;
	if (target_get(c, &r, &target, NULL) < 0)
		return -1;
	_cleanup_free_ char *key = policy_key(&r, name);
	bool exists = server_record_get(c->srv, key, &old, NULL, NULL) == 0;
	const char *old_arn = json_string_value(json_object_get(old, "PolicyARN"));
	_cleanup_free_ char *id = server_uuid_new();
	_cleanup_free_ char *arn =
	    exists && old_arn
		? xstrdup(old_arn)
		: xasprintf("arn:aws:autoscaling:%s:%s:scalingPolicy:%s:resource/ecs/%s:policyName/%s",
			    c->srv->region, c->srv->account, id, r.id, name);
	const char *uid = strstr(arn, ":scalingPolicy:") + strlen(":scalingPolicy:");
	json_t *p = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:f}", "PolicyARN", arn, "PolicyName", name, "ServiceNamespace",
	    NAMESPACE, "ResourceId", r.id, "ScalableDimension", DIMENSION, "PolicyType", type, "Alarms",
	    policy_alarms(c->srv, &r, name, tracking, uid), "CreationTime",
	    exists ? json_number_value(json_object_get(old, "CreationTime")) : server_record_now());
	if (tracking) {
		json_object_set_new(p, "TargetTrackingScalingPolicyConfiguration", tracking_config(tt));
	} else {
		json_object_set(p, "StepScalingPolicyConfiguration", sp);
		if (alarm)
			json_object_set(p, "BerthAlarm", alarm);
	}
	json_t *state = json_object_get(old, "berthState");
	json_object_set_new(p, "berthState", state ? json_incref(state) : json_object());
	_cleanup_error_ struct berth_error *err = NULL;
	int rr = server_record_put(c->srv, key, p, &err);
	if (rr >= 0)
		*out = json_pack("{s:s,s:O}", "PolicyARN", arn, "Alarms", json_object_get(p, "Alarms"));
	json_decref(p);
	return rr < 0 ? server_ecs_internal(c, err) : 0;
}

/*
 * Describe* of policies or scheduled actions: every record of kind ("policies", "scheduled") of the
 * request's resource (or all), filtered by the names in names_key, paginated under out_key.
 */
static int describe_named(struct ecs_call *c, json_t *in, const char *kind, const char *names_key,
			  const char *name_field, const char *out_key, json_t **out)
{
	struct resource r;
	json_t *names = json_object_get(in, names_key);
	if (resource_of(c, in, false, &r) < 0)
		return -1;
	if (names && !json_is_array(names))
		return fail(c, "ValidationException", "'%s' must be a list", names_key);
	_cleanup_free_ char *prefix = r.id ? xasprintf(AS_PREFIX "%s/%s/%s/", kind, r.cluster, r.service)
					   : xasprintf(AS_PREFIX "%s/", kind);
	_cleanup_json_ json_t *all = NULL;
	if (list_public(c, prefix, &all) < 0)
		return -1;
	size_t i;
	json_t *p;
	json_array_foreach (all, i, p)
		json_object_del(p, "BerthAlarm");
	filter_names(all, name_field, names);
	*out = json_object();
	return paginate(c, in, all, out_key, *out);
}

/* Delete* of a policy or scheduled action (kind as above); what: its name in the not-found message. */
static int delete_named(struct ecs_call *c, json_t *in, const char *kind, const char *name_key,
			const char *what, json_t **out)
{
	struct resource r;
	const char *name;
	if (server_ecs_str(c, in, name_key, true, &name) < 0 || resource_of(c, in, true, &r) < 0)
		return -1;
	_cleanup_free_ char *key = xasprintf(AS_PREFIX "%s/%s/%s/%s", kind, r.cluster, r.service, name);
	_cleanup_json_ json_t *p = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_get(c->srv, key, &p, NULL, NULL) < 0)
		return fail(
		    c, "ObjectNotFoundException",
		    "No %s found for service namespace: ecs, resource ID: %s, scalable dimension: " DIMENSION
		    ", %s name: %s",
		    what, r.id, what, name);
	if (store_remove(c->srv->store, key, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_object();
	return 0;
}

int server_as_describe_scaling_policies(struct ecs_call *c, json_t *in, json_t **out)
{
	return describe_named(c, in, "policies", "PolicyNames", "PolicyName", "ScalingPolicies", out);
}

int server_as_delete_scaling_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	return delete_named(c, in, "policies", "PolicyName", "scaling policy", out);
}

/* ---- scheduled actions ---- */

static bool timezone_ok(const char *tz)
{
	return !tz || streq(tz, "UTC") || streq(tz, "Etc/UTC") || streq(tz, "Etc/GMT") || streq(tz, "GMT");
}

int server_as_put_scheduled_action(struct ecs_call *c, json_t *in, json_t **out)
{
	struct resource r;
	const char *name, *sched, *tz;
	_cleanup_json_ json_t *target = NULL, *old = NULL;
	if (server_ecs_str(c, in, "ScheduledActionName", true, &name) < 0 ||
	    server_ecs_str(c, in, "Schedule", false, &sched) < 0 ||
	    server_ecs_str(c, in, "Timezone", false, &tz) < 0 || resource_of(c, in, true, &r) < 0 ||
	    check_name(c, "ScheduledActionName", name) < 0)
		return -1;
	if (!timezone_ok(tz))
		return fail(c, "ValidationException",
			    "Unsupported Timezone '%s': berth evaluates schedules in UTC", tz);
	struct schedule s;
	char msg[SCHEDULE_MSG_MAX];
	if (sched && autoscale_schedule_parse(sched, &s, msg) < 0)
		return fail(c, "ValidationException", "Invalid Schedule '%s': %s", sched, msg);
	json_t *act = json_object_get(in, "ScalableTargetAction");
	bool has_min = false, has_max = false;
	double min = 0, max = 0, start = 0, end = 0;
	bool has_start, has_end;
	if (act && (!json_is_object(act) || number(c, act, "MinCapacity", true, 0, 1e9, &has_min, &min) < 0 ||
		    number(c, act, "MaxCapacity", true, 0, 1e9, &has_max, &max) < 0))
		return act && !json_is_object(act)
			   ? fail(c, "ValidationException", "'ScalableTargetAction' must be an object")
			   : -1;
	if (number(c, in, "StartTime", false, 0, 1e11, &has_start, &start) < 0 ||
	    number(c, in, "EndTime", false, 0, 1e11, &has_end, &end) < 0)
		return -1;
	if (has_min && has_max && min > max)
		return fail(c, "ValidationException",
			    "Minimum capacity cannot be greater than maximum capacity");
	if (has_start && has_end && end <= start)
		return fail(c, "ValidationException", "EndTime must be after StartTime");
	if (target_get(c, &r, &target, NULL) < 0)
		return -1;
	_cleanup_free_ char *key = scheduled_key(&r, name);
	bool exists = server_record_get(c->srv, key, &old, NULL, NULL) == 0;
	if (!exists && !sched)
		return fail(c, "ValidationException", "Schedule is required to create a scheduled action");
	if (!exists && !has_min && !has_max)
		return fail(c, "ValidationException",
			    "ScalableTargetAction needs MinCapacity or MaxCapacity");
	json_t *a = exists ? json_incref(old) : NULL;
	if (!a) {
		_cleanup_free_ char *id = server_uuid_new();
		_cleanup_free_ char *arn = xasprintf(
		    "arn:aws:autoscaling:%s:%s:scheduledAction:%s:resource/ecs/%s:scheduledActionName/%s",
		    c->srv->region, c->srv->account, id, r.id, name);
		a = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:{}}", "ScheduledActionName", name,
			      "ScheduledActionARN", arn, "ServiceNamespace", NAMESPACE, "ResourceId", r.id,
			      "ScalableDimension", DIMENSION, "CreationTime", server_record_now(),
			      "ScalableTargetAction");
	}
	if (sched) {
		json_object_set_new(a, "Schedule", json_string(sched));
		json_object_del(a, "berthLastRun"); /* a new schedule starts from now */
	}
	json_object_set_new(a, "Timezone", json_string(tz ? tz : "UTC"));
	json_t *ta = json_object_get(a, "ScalableTargetAction");
	if (has_min)
		json_object_set_new(ta, "MinCapacity", json_integer((json_int_t)min));
	if (has_max)
		json_object_set_new(ta, "MaxCapacity", json_integer((json_int_t)max));
	if (has_start)
		json_object_set_new(a, "StartTime", json_real(start));
	if (has_end)
		json_object_set_new(a, "EndTime", json_real(end));
	_cleanup_error_ struct berth_error *err = NULL;
	int rr = server_record_put(c->srv, key, a, &err);
	json_decref(a);
	if (rr < 0)
		return server_ecs_internal(c, err);
	*out = json_object();
	return 0;
}

int server_as_describe_scheduled_actions(struct ecs_call *c, json_t *in, json_t **out)
{
	return describe_named(c, in, "scheduled", "ScheduledActionNames", "ScheduledActionName",
			      "ScheduledActions", out);
}

int server_as_delete_scheduled_action(struct ecs_call *c, json_t *in, json_t **out)
{
	return delete_named(c, in, "scheduled", "ScheduledActionName", "scheduled action", out);
}

/* ---- scaling activities ---- */

int server_as_describe_scaling_activities(struct ecs_call *c, json_t *in, json_t **out)
{
	struct resource r;
	if (resource_of(c, in, false, &r) < 0)
		return -1;
	_cleanup_free_ char *prefix = r.id ? xasprintf(AS_PREFIX "activities/%s/%s/", r.cluster, r.service)
					   : xstrdup(AS_PREFIX "activities/");
	_cleanup_json_ json_t *all = NULL, *newest = json_array();
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, prefix, &all, &err) < 0)
		return server_ecs_internal(c, err);
	for (size_t i = json_array_size(all); i-- > 0;) /* keys sort oldest first */
		json_array_append(newest, json_array_get(all, i));
	*out = json_object();
	return paginate(c, in, newest, "ScalingActivities", *out);
}

static void activity_add(struct server *s, const struct resource *r, const char *description,
			 const char *cause, bool ok, const char *message)
{
	double now = server_record_now();
	_cleanup_free_ char *id = server_uuid_new();
	_cleanup_free_ char *key = xasprintf(AS_PREFIX "activities/%s/%s/%016llx-%s", r->cluster, r->service,
					     (unsigned long long)(now * 1000), id);
	_cleanup_json_ json_t *a =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:f,s:s,s:s}", "ActivityId", id, "ServiceNamespace",
		      NAMESPACE, "ResourceId", r->id, "ScalableDimension", DIMENSION, "Description",
		      description, "Cause", cause, "StartTime", now, "EndTime", now, "StatusCode",
		      ok ? "Successful" : "Failed", "StatusMessage", message);
	(void)server_record_put(s, key, a, NULL);
	/* keep the latest AUTOSCALE_MAX_ACTIVITIES of the resource */
	_cleanup_free_ char *prefix = xasprintf(AS_PREFIX "activities/%s/%s/", r->cluster, r->service);
	struct store_kv_list l;
	if (store_range(s->store, prefix, NULL, 0, &l, NULL) < 0)
		return;
	for (size_t i = 0; l.n > AUTOSCALE_MAX_ACTIVITIES && i < l.n - AUTOSCALE_MAX_ACTIVITIES; i++)
		(void)store_remove(s->store, l.kvs[i].key, NULL, NULL);
	store_kv_list_done(&l);
}

/* ---- the scaler (leader) ---- */

/*
 * Set the service's desiredCount, as UpdateService does (server_service_set_desired_count). *ret_from:
 * the count before. -ENOENT when the service is gone or not ACTIVE.
 */
static int set_desired(struct server *s, const struct resource *r, int64_t n, const char *why,
		       int64_t *ret_from, char **ret_msg)
{
	return server_service_set_desired_count(s, r->cluster, r->service, n, why, ret_from, ret_msg);
}

/* The service's desiredCount and runningCount (from its record and tasks); false when it is gone. */
static bool service_counts(struct server *s, const struct resource *r, int64_t *desired, int64_t *running)
{
	_cleanup_free_ char *key = xasprintf("/berth/services/%s/%s", r->cluster, r->service);
	_cleanup_json_ json_t *svc = NULL;
	if (server_record_get(s, key, &svc, NULL, NULL) < 0 ||
	    !streq_ptr(json_string_value(json_object_get(svc, "status")), "ACTIVE"))
		return false;
	*desired = json_integer_value(json_object_get(svc, "desiredCount"));
	/* the targets of ALBRequestCountPerTarget: the service's RUNNING tasks */
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", r->cluster);
	_cleanup_json_ json_t *tasks = NULL;
	*running = 0;
	size_t i;
	json_t *t;
	if (server_record_list(s, tp, &tasks, NULL) == 0)
		json_array_foreach (tasks, i, t)
			*running += streq_ptr(server_task_service_name(t), r->service) &&
				    streq_ptr(json_string_value(json_object_get(t, "lastStatus")), "RUNNING");
	return true;
}

/* The metric of a policy for the last n periods (NAN: no data). which: 0 cpu, 1 memory, 2 requests per
 * target. */
static void metric_points(struct server *s, const struct resource *r, int which, int64_t targets, double now,
			  double *out, size_t n)
{
	struct metrics_point p[AUTOSCALE_LOW_POINTS];
	n = MIN(n, ARRAY_SIZE(p));
	metrics_store_points(s->metrics, r->cluster, r->service, now, p, n);
	for (size_t i = 0; i < n; i++) {
		double v = which == 0 ? p[i].cpu_pct : which == 1 ? p[i].mem_pct : -1;
		if (which == 2 && p[i].samples)
			v = p[i].requests / (double)(targets > 0 ? targets : 1);
		out[i] = v < 0 ? NAN : v;
	}
}

static void scaled(struct server *s, const struct resource *r, const char *cause, int64_t from, int64_t to,
		   int rr, const char *msg)
{
	_cleanup_free_ char *desc = xasprintf("Setting desired count to %lld.", (long long)to);
	_cleanup_free_ char *ok =
	    xasprintf("Successfully set desired count to %lld. Change successfully fulfilled "
		      "by ecs.",
		      (long long)to);
	activity_add(s, r, desc, cause, rr >= 0, rr >= 0 ? ok : msg ? msg : "failed");
	char f[24], t[24];
	snprintf(f, sizeof(f), "%lld", (long long)from);
	snprintf(t, sizeof(t), "%lld", (long long)to);
	log_fields(LOG_LEVEL_INFO, "autoscaling", "resource", r->id, "from", f, "to", t, "cause", cause,
		   NULL);
}

/* Evaluate one policy; true when it changed the capacity. */
static bool run_policy(struct server *s, const struct resource *r, json_t *target, json_t *p, const char *key,
		       double now, int64_t *capacity, int64_t running)
{
	bool tracking =
	    streq_ptr(json_string_value(json_object_get(p, "PolicyType")), "TargetTrackingScaling");
	json_t *susp = json_object_get(target, "SuspendedState");
	json_t *state = json_object_get(p, "berthState");
	struct autoscale_state st = {
		.capacity = *capacity,
		.min = json_integer_value(json_object_get(target, "MinCapacity")),
		.max = json_integer_value(json_object_get(target, "MaxCapacity")),
		.now = now,
		.last_out = json_number_value(json_object_get(state, "lastOut")),
		.last_in = json_number_value(json_object_get(state, "lastIn")),
	};
	double pts[AUTOSCALE_LOW_POINTS];
	struct autoscale_decision d;
	const char *alarm = NULL;
	json_t *alarms = json_object_get(p, "Alarms");
	if (tracking) {
		json_t *cfg = json_object_get(p, "TargetTrackingScalingPolicyConfiguration");
		const char *type = json_string_value(json_object_get(
		    json_object_get(cfg, "PredefinedMetricSpecification"), "PredefinedMetricType"));
		struct autoscale_target t = {
			.target = json_number_value(json_object_get(cfg, "TargetValue")),
			.scale_out_cooldown =
			    (int)json_integer_value(json_object_get(cfg, "ScaleOutCooldown")),
			.scale_in_cooldown = (int)json_integer_value(json_object_get(cfg, "ScaleInCooldown")),
			.disable_scale_in = json_is_true(json_object_get(cfg, "DisableScaleIn")),
		};
		int which = (int)index_of(METRIC_TYPES, ARRAY_SIZE(METRIC_TYPES), type);
		metric_points(s, r, which < 0 ? 0 : which, running, now, pts, ARRAY_SIZE(pts));
		autoscale_target_tracking(&t, pts, ARRAY_SIZE(pts), &st, &d);
		alarm =
		    json_string_value(json_object_get(json_array_get(alarms, d.high ? 0 : 1), "AlarmName"));
	} else {
		struct ecs_call c = { .srv = s };
		struct autoscale_steps steps;
		int which = 0;
		if (steps_of(&c, json_object_get(p, "StepScalingPolicyConfiguration"),
			     json_object_get(p, "BerthAlarm"), &steps, &which) < 0) {
			free(c.msg);
			return false;
		}
		size_t k = (size_t)steps.periods;
		metric_points(s, r, which, running, now, pts, k);
		autoscale_step_scaling(&steps, pts, k, &st, &d);
		alarm = json_string_value(json_object_get(json_array_get(alarms, 0), "AlarmName"));
	}
	const char *was = json_string_value(json_object_get(state, "alarm"));
	const char *is = d.alarm ? (d.high ? "ALARM-HIGH" : "ALARM-LOW") : "OK";
	bool changed_state = !streq_ptr(was, is);
	bool suspended = json_is_true(
	    json_object_get(susp, d.high ? "DynamicScalingOutSuspended" : "DynamicScalingInSuspended"));
	bool acted = false;
	if (d.act && !suspended) {
		const char *name = json_string_value(json_object_get(p, "PolicyName"));
		_cleanup_free_ char *cause = xasprintf("monitor alarm %s in state ALARM triggered policy %s",
						       alarm ? alarm : "", name ? name : "");
		int64_t from = *capacity;
		_cleanup_free_ char *msg = NULL;
		int rr = set_desired(s, r, d.capacity, cause, &from, &msg);
		scaled(s, r, cause, from, d.capacity, rr, msg);
		if (rr >= 0) {
			*capacity = d.capacity;
			json_object_set_new(state, d.capacity > from ? "lastOut" : "lastIn", json_real(now));
			acted = true;
		}
	}
	if (acted || changed_state) {
		json_object_set_new(state, "alarm", json_string(is));
		(void)server_record_put(s, key, p, NULL);
	}
	return acted;
}

/* Run the scheduled actions of r that are due; adjusts the target's bounds and the capacity. */
static void run_scheduled(struct server *s, const struct resource *r, json_t *target, const char *tkey,
			  double now, int64_t *capacity)
{
	_cleanup_free_ char *prefix = scheduled_key(r, NULL);
	_cleanup_json_ json_t *actions = NULL;
	if (server_record_list(s, prefix, &actions, NULL) < 0)
		return;
	size_t i;
	json_t *a;
	json_array_foreach (actions, i, a) {
		struct schedule sch;
		char msg[SCHEDULE_MSG_MAX];
		const char *name = json_string_value(json_object_get(a, "ScheduledActionName"));
		double created = json_number_value(json_object_get(a, "CreationTime"));
		double start = json_number_value(json_object_get(a, "StartTime"));
		double end = json_number_value(json_object_get(a, "EndTime"));
		json_t *last = json_object_get(a, "berthLastRun");
		time_t next;
		if (!name || autoscale_schedule_parse(json_string_value(json_object_get(a, "Schedule")), &sch,
						      msg) < 0)
			continue;
		double after = last ? json_number_value(last) : (start > created ? start - 1 : created);
		if (autoscale_schedule_next(&sch, (time_t)(start ? start : created), (time_t)after, &next) <
			0 ||
		    next > now || (end && next > end))
			continue;
		json_t *ta = json_object_get(a, "ScalableTargetAction");
		json_t *mn = json_object_get(ta, "MinCapacity"), *mx = json_object_get(ta, "MaxCapacity");
		if (mn)
			json_object_set(target, "MinCapacity", mn);
		if (mx)
			json_object_set(target, "MaxCapacity", mx);
		(void)server_record_put(s, tkey, target, NULL);
		json_object_set_new(a, "berthLastRun", json_real((double)next));
		_cleanup_free_ char *akey = scheduled_key(r, name);
		(void)server_record_put(s, akey, a, NULL);
		_cleanup_free_ char *cause = xasprintf("scheduled action name %s was triggered", name);
		int64_t lo = json_integer_value(json_object_get(target, "MinCapacity"));
		int64_t hi = json_integer_value(json_object_get(target, "MaxCapacity"));
		int64_t want = *capacity < lo ? lo : *capacity > hi ? hi : *capacity;
		if (want != *capacity) {
			int64_t from = *capacity;
			_cleanup_free_ char *m = NULL;
			int rr = set_desired(s, r, want, cause, &from, &m);
			scaled(s, r, cause, from, want, rr, m);
			if (rr >= 0)
				*capacity = want;
		} else {
			_cleanup_free_ char *desc =
			    xasprintf("Setting min capacity to %lld and max capacity to %lld", (long long)lo,
				      (long long)hi);
			activity_add(s, r, desc, cause, true, "Successfully set min and max capacity.");
		}
	}
}

void server_autoscale_tick(struct server *s)
{
	_cleanup_json_ json_t *targets = NULL;
	if (server_record_list(s, AS_PREFIX "targets/", &targets, NULL) < 0)
		return;
	double now = server_record_now();
	size_t i;
	json_t *t;
	json_array_foreach (targets, i, t) {
		struct ecs_call c = { .srv = s };
		struct resource r;
		_cleanup_json_ json_t *in =
		    json_pack("{s:s,s:O,s:s}", "ServiceNamespace", NAMESPACE, "ResourceId",
			      json_object_get(t, "ResourceId"), "ScalableDimension", DIMENSION);
		int64_t capacity = 0, running = 0;
		if (resource_of(&c, in, true, &r) < 0 || !service_counts(s, &r, &capacity, &running)) {
			free(c.msg);
			continue;
		}
		_cleanup_free_ char *tkey = target_key(&r);
		if (!json_is_true(
			json_object_get(json_object_get(t, "SuspendedState"), "ScheduledScalingSuspended")))
			run_scheduled(s, &r, t, tkey, now, &capacity);
		_cleanup_free_ char *prefix = policy_key(&r, NULL);
		_cleanup_json_ json_t *policies = NULL;
		if (server_record_list(s, prefix, &policies, NULL) < 0)
			continue;
		size_t k;
		json_t *p;
		/* scale-out wins: every policy is evaluated, the first that acts sets the count this tick */
		json_array_foreach (policies, k, p) {
			_cleanup_free_ char *key =
			    policy_key(&r, json_string_value(json_object_get(p, "PolicyName")));
			if (run_policy(s, &r, t, p, key, now, &capacity, running))
				break;
		}
	}
}
