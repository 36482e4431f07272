/*
 * ecs.c - the ECS API front door: awsJson1_1 (POST /, X-Amz-Target names the
 * operation, JSON body), SigV4 authentication against the cluster's access
 * key, dispatch to one function per operation, and ECS-shaped errors
 * ({"__type": "...", "message": "..."} with ECS's status codes).
 *
 * Order of checks, as AWS does it: authentication first (a request with a bad
 * signature learns nothing about operations), then the operation name, then
 * the body.
 */
#include <time.h>

#include "common/log.h"
#include "http/http.h"
#include "server/internal.h"
#include "server/server.h"
#include "aws/sigv4.h"
#include "server/ecs-shape.h"

/*
 * X-Amz-Date may be this far from the server's clock, in minutes: ECS allows 5
 * ("Signature expired: ... (... - 5 min.)" from ECS's endpoints), ECR and most
 * other services 15.
 */
static int max_skew_min(const char *service)
{
	return streq(service, "ecs") ? 5 : 15;
}

/* AWS's basic ISO 8601 form of a time, as X-Amz-Date: 20261207T211430Z. */
static void amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

struct ecs_op {
	const char *name;
	ecs_op_fn fn;
};

static const struct ecs_op OPS[] = {
	{ "CreateCluster", server_ecs_create_cluster },
	{ "DescribeClusters", server_ecs_describe_clusters },
	{ "ListClusters", server_ecs_list_clusters },
	{ "ListAccountSettings", server_ecs_list_account_settings },
	{ "DeleteCluster", server_ecs_delete_cluster },
	{ "RegisterTaskDefinition", server_ecs_register_task_definition },
	{ "DescribeTaskDefinition", server_ecs_describe_task_definition },
	{ "DeregisterTaskDefinition", server_ecs_deregister_task_definition },
	{ "ListTaskDefinitions", server_ecs_list_task_definitions },
	{ "ListTaskDefinitionFamilies", server_ecs_list_task_definition_families },
	{ "ListContainerInstances", server_ecs_list_container_instances },
	{ "DescribeContainerInstances", server_ecs_describe_container_instances },
	{ "UpdateContainerInstancesState", server_ecs_update_container_instances_state },
	{ "DeregisterContainerInstance", server_ecs_deregister_container_instance },
	{ "PutAttributes", server_ecs_put_attributes },
	{ "ListAttributes", server_ecs_list_attributes },
	{ "DeleteAttributes", server_ecs_delete_attributes },
	{ "TagResource", server_ecs_tag_resource },
	{ "UntagResource", server_ecs_untag_resource },
	{ "ListTagsForResource", server_ecs_list_tags_for_resource },
	{ "RunTask", server_ecs_run_task },
	{ "StartTask", server_ecs_start_task },
	{ "StopTask", server_ecs_stop_task },
	{ "DescribeTasks", server_ecs_describe_tasks },
	{ "ListTasks", server_ecs_list_tasks },
	{ "CreateService", server_ecs_create_service },
	{ "UpdateService", server_ecs_update_service },
	{ "DeleteService", server_ecs_delete_service },
	{ "DescribeServices", server_ecs_describe_services },
	{ "ListServices", server_ecs_list_services },
	{ "ListServicesByNamespace", server_ecs_list_services_by_namespace },
	{ "CreateTaskSet", server_ecs_create_task_set },
	{ "UpdateTaskSet", server_ecs_update_task_set },
	{ "UpdateServicePrimaryTaskSet", server_ecs_update_service_primary_task_set },
	{ "DeleteTaskSet", server_ecs_delete_task_set },
	{ "DescribeTaskSets", server_ecs_describe_task_sets },
	{ "BerthExplainPlacement", server_ecs_berth_explain_placement }, /* berth's own (docs/cluster.md) */
	/* berth's load balancers (lb.c, docs/lb.md) */
	{ "BerthCreateLoadBalancer", server_ecs_berth_create_load_balancer },
	{ "BerthDescribeLoadBalancers", server_ecs_berth_describe_load_balancers },
	{ "BerthDeleteLoadBalancer", server_ecs_berth_delete_load_balancer },
	{ "BerthDescribeTargetHealth", server_ecs_berth_describe_target_health },
	{ "BerthAttachLoadBalancer", server_ecs_berth_attach_load_balancer },
	{ "BerthDetachLoadBalancer", server_ecs_berth_detach_load_balancer },
	{ "BerthDrainTargets", server_ecs_berth_drain_targets },
	{ "BerthDescribeMetrics", server_ecs_berth_describe_metrics }, /* metrics.c, docs/metrics.md */
};

/* CloudWatch Logs, same endpoint, SigV4 service "logs" (logs.c). */
static const struct ecs_op LOGS_OPS[] = {
	{ "CreateLogGroup", server_logs_create_log_group },
	{ "DeleteLogGroup", server_logs_delete_log_group },
	{ "DescribeLogGroups", server_logs_describe_log_groups },
	{ "CreateLogStream", server_logs_create_log_stream },
	{ "DeleteLogStream", server_logs_delete_log_stream },
	{ "DescribeLogStreams", server_logs_describe_log_streams },
	{ "PutLogEvents", server_logs_put_log_events },
	{ "GetLogEvents", server_logs_get_log_events },
	{ "FilterLogEvents", server_logs_filter_log_events },
	{ "PutRetentionPolicy", server_logs_put_retention_policy },
	{ "DeleteRetentionPolicy", server_logs_delete_retention_policy },
	/* between replicas (replicas.c): with "berthLocal" only */
	{ "BerthLogStreamStats", server_logs_berth_stream_stats },
	{ "BerthDeleteLogStreamFiles", server_logs_berth_delete_files },
	{ "BerthAgentLogEvents", server_logs_berth_agent_events },
};

/* Application Auto Scaling, same endpoint, SigV4 service "application-autoscaling" (autoscaling.c). */
static const struct ecs_op AUTOSCALING_OPS[] = {
	{ "RegisterScalableTarget", server_as_register_scalable_target },
	{ "DescribeScalableTargets", server_as_describe_scalable_targets },
	{ "DeregisterScalableTarget", server_as_deregister_scalable_target },
	{ "PutScalingPolicy", server_as_put_scaling_policy },
	{ "DescribeScalingPolicies", server_as_describe_scaling_policies },
	{ "DeleteScalingPolicy", server_as_delete_scaling_policy },
	{ "PutScheduledAction", server_as_put_scheduled_action },
	{ "DescribeScheduledActions", server_as_describe_scheduled_actions },
	{ "DeleteScheduledAction", server_as_delete_scheduled_action },
	{ "DescribeScalingActivities", server_as_describe_scaling_activities },
};

/* One API on the endpoint: its X-Amz-Target prefix, SigV4 service name and operations. */
struct api {
	const char *prefix, *service;
	const struct ecs_op *ops;
	size_t n_ops;
};

static const struct api APIS[] = {
	{ ECS_TARGET_PREFIX, "ecs", OPS, ARRAY_SIZE(OPS) },
	{ LOGS_TARGET_PREFIX, "logs", LOGS_OPS, ARRAY_SIZE(LOGS_OPS) },
	{ ECR_TARGET_PREFIX, "ecr", NULL, 0 }, /* server_ecr_find_op() */
	{ AUTOSCALING_TARGET_PREFIX, "application-autoscaling", AUTOSCALING_OPS,
	  ARRAY_SIZE(AUTOSCALING_OPS) },
};

static const char *req_header(void *ctx, const char *name)
{
	return http_request_header(ctx, name);
}

int server_ecs_authenticate(struct ecs_call *c, struct http_request *req, const char *body, size_t len,
			    const char *service)
{
	struct server *s = c->srv;
	const char *authz = http_request_header(req, "Authorization");
	if (!authz)
		return server_ecs_fail(c, "MissingAuthenticationTokenException",
				       "Missing Authentication Token");
	struct sigv4_auth a;
	_cleanup_error_ struct berth_error *err = NULL;
	if (aws_sigv4_parse_authorization(authz, &a, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		return server_ecs_fail(c, "IncompleteSignatureException", "%s", m);
	}
	int r = 0;
	time_t t;
	const char *date = http_request_header(req, "X-Amz-Date");
	if (!streq(a.access_key, s->access_key)) {
		r = server_ecs_fail(c, "UnrecognizedClientException",
				    "The security token included in the request is invalid.");
	} else if (!date || aws_sigv4_parse_amz_date(date, &t) < 0) {
		r = server_ecs_fail(c, "IncompleteSignatureException",
				    "Authorization header requires existence of a valid X-Amz-Date header.");
	} else if (llabs((long long)(t - time(NULL))) > max_skew_min(service) * 60LL) {
		/* AWS's words and status (400, as every awsJson authentication error but the missing
		 * token): a request signed too long ago, or too far ahead */
		time_t now = time(NULL);
		int skew = max_skew_min(service);
		char now_s[17], edge[17];
		amz_date(now, now_s);
		bool past = t < now;
		amz_date(past ? now - skew * 60 : now + skew * 60, edge);
		r = server_ecs_fail(
		    c, "InvalidSignatureException",
		    past ? "Signature expired: %s is now earlier than %s (%s - %d min.)"
			 : "Signature not yet current: %s is still later than %s (%s + %d min.)",
		    date, edge, now_s, skew);
	} else if (strncmp(date, a.date, 8) || !streq(a.region, s->region) || !streq(a.service, service)) {
		r = server_ecs_fail(
		    c, "InvalidSignatureException",
		    "Credential should be scoped to a valid region and service: expected '%.8s/%s/%s', "
		    "got '%s'.",
		    date, s->region, service, a.scope);
	} else {
		bool has_host = false, has_date = false;
		for (char **h = a.signed_headers; *h; h++) {
			has_host |= streq(*h, "host");
			has_date |= streq(*h, "x-amz-date");
		}
		char payload[65], sig[65];
		aws_sigv4_sha256_hex(body ? body : "", len, payload);
		_cleanup_free_ char *canonical = NULL;
		if (!has_host || !has_date ||
		    aws_sigv4_canonical_request(http_request_method(req), "/", "", &a, req_header, req,
						payload, &canonical, NULL) < 0) {
			r = server_ecs_fail(
			    c, "InvalidSignatureException",
			    "The request must sign the host and x-amz-date headers, and every signed "
			    "header must be present.");
		} else {
			_cleanup_free_ char *sts = aws_sigv4_string_to_sign(date, a.scope, canonical);
			aws_sigv4_sign(s->secret, a.date, a.region, a.service, sts, sig);
			if (!aws_sigv4_signature_equal(sig, a.signature))
				r = server_ecs_fail(
				    c, "InvalidSignatureException",
				    "The request signature we calculated does not match the signature you "
				    "provided. Check your AWS Secret Access Key and signing method. Consult "
				    "the service documentation for details.");
		}
	}
	aws_sigv4_auth_done(&a);
	return r;
}

static int dispatch(struct ecs_call *c, struct http_request *req, json_t **out)
{
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	const char *target = http_request_header(req, "X-Amz-Target");
	const struct api *api = NULL;
	for (size_t i = 0; target && i < ARRAY_SIZE(APIS) && !api; i++)
		if (startswith(target, APIS[i].prefix))
			api = &APIS[i];
	/* authentication first; a request without a known target is checked as an ECS one */
	if (server_ecs_authenticate(c, req, body, len, api ? api->service : "ecs") < 0)
		return -1;
	if (!api)
		return server_ecs_fail(c, "UnknownOperationException", "missing or unknown X-Amz-Target");
	const char *op = target + strlen(api->prefix);
	bool ecr = streq(api->service, "ecr"); /* its table lives in ecr.c */
	ecs_op_fn fn = ecr ? server_ecr_find_op(op) : NULL;
	for (size_t i = 0; i < api->n_ops && !fn; i++)
		if (streq(api->ops[i].name, op))
			fn = api->ops[i].fn;
	if (!fn)
		return server_ecs_fail(c, "UnknownOperationException", "Operation '%s' is not supported.",
				       op);
	json_error_t jerr;
	json_t *in = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : json_object();
	if (!in)
		return server_ecs_fail(c, "SerializationException", "Invalid JSON at line %d, column %d: %s",
				       jerr.line, jerr.column, jerr.text);
	if (!json_is_object(in)) {
		json_decref(in);
		return server_ecs_fail(c, "SerializationException", "Request body must be a JSON object.");
	}
	/* another replica asking for what this one holds (replicas.c); the caller signed with the cluster's
	 * key */
	c->local = json_is_true(json_object_get(in, "berthLocal"));
	json_object_del(in, "berthLocal");
	if (!c->local && startswith(op, "Berth") && streq(api->service, "logs")) {
		json_decref(in);
		return server_ecs_fail(c, "UnknownOperationException", "Operation '%s' is not supported.",
				       op);
	}
	/* ECS operations: the body against botocore's input shape first (ecs-shape.h), as ECS's
	 * deserializer does; the operations then only see the types the model has */
	const struct ecs_shape *shape = api->ops == OPS ? server_ecs_shape_input(op) : NULL;
	_cleanup_free_ char *why = NULL;
	enum ecs_shape_problem p = shape ? server_ecs_shape_check(shape, in, &why) : ECS_SHAPE_OK;
	if (p != ECS_SHAPE_OK) {
		json_decref(in);
		return server_ecs_fail(c,
				       p == ECS_SHAPE_SERIALIZATION          ? "SerializationException"
				       : streq(op, "RegisterTaskDefinition") ? "ClientException"
									     : "InvalidParameterException",
				       "%s", why);
	}
	int r = ecr ? server_ecr_call(c, op, in, out) : fn(c, in, out);
	json_decref(in);
	if (r >= 0 && !*out)
		*out = json_object();
	log_fields(LOG_LEVEL_DEBUG, "ecs call", "op", op, "error", c->type ? c->type : "", NULL);
	return r;
}

static void ecs_handle(struct server *s, struct http_request *req)
{
	struct ecs_call c = { .srv = s };
	json_t *out = NULL;
	/* as AWS: every answer names its request (boto3's ResponseMetadata.RequestId) */
	char rid[ID_HEX_LEN + 1];
	server_id_hex_fill(rid);
	_cleanup_free_ char *request_id =
	    xasprintf("%.8s-%.4s-%.4s-%.4s-%.12s", rid, rid + 8, rid + 12, rid + 16, rid + 20);
	http_response_header(req, "x-amzn-RequestId", request_id);
	if (!streq(http_request_method(req), "POST")) {
		server_ecs_fail(&c, "UnknownOperationException", "the ECS API takes POST /");
		c.status = 405;
	} else if (dispatch(&c, req, &out) >= 0) {
		char *body = c.body ? c.body : json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(15));
		json_decref(out);
		http_respond(req, 200, "application/x-amz-json-1.1", body, strlen(body));
		return;
	}
	json_decref(out);
	http_response_header(req, "x-amzn-ErrorType", c.type);
	json_t *err = json_pack("{s:s,s:s}", "__type", c.type, "message", c.msg ? c.msg : "");
	char *body = json_dumps(err, JSON_COMPACT);
	json_decref(err);
	http_respond(req, c.status, "application/x-amz-json-1.1", body, strlen(body));
	free(c.msg);
	free(c.body);
}

void server_http_handler(struct http_request *req, void *userdata)
{
	struct server *s = userdata;
	const char *path = http_request_path(req);
	if (startswith(path, AGENT_PREFIX)) {
		server_agent_handle(s, req);
		return;
	}
	if (streq(path, "/") && server_elbv2_request(req) && streq(http_request_method(req), "POST")) {
		server_elbv2_handle(s, req); /* ELBv2's query protocol (form body, no X-Amz-Target) */
		return;
	}
	if (streq(path, "/")) {
		ecs_handle(s, req);
		return;
	}
	if (streq(path, "/metrics")) {
		server_metrics_handle_scrape(s, req);
		return;
	}
	if (streq(path, "/healthz")) {
		http_respond(req, 200, "text/plain", xstrdup("ok\n"), 3);
		return;
	}
	http_respond_error(req, 404, "no such endpoint '%s'", path);
}
