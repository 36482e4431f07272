/*
 * elbv2.c - DescribeTargetGroups and DescribeTargetHealth in ELBv2's query
 * protocol on the cluster endpoint (elbv2.h, docs/lb.md). The answers come
 * from berth's own load balancer calls (lb.c): a target group is the one
 * `berth lb create NAME` made, its targets the service tasks in it, their
 * health what the nodes' HAProxy report.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "common/json.h"
#include "common/log.h"
#include "http/http.h"
#include "server/elbv2.h"
#include "server/internal.h"

struct q {
	struct server *s;
	struct http_request *req;
	char *request_id;
};

static void respond_error(struct q *q, unsigned status, const char *code, const char *fmt, ...)
    _printf_(4, 5);
static void respond_error(struct q *q, unsigned status, const char *code, const char *fmt, ...)
{
	va_list ap;
	struct strbuf msg = STRBUF_INIT;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	char *xml = server_elbv2_error_xml(code, msg.buf, q->request_id);
	strbuf_release(&msg);
	http_respond(q->req, status, "text/xml", xml, strlen(xml));
}

/* <ActionResponse><ActionResult>result</ActionResult><ResponseMetadata>...</ActionResponse> */
static void respond(struct q *q, const char *action, struct strbuf *result)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "<%sResponse xmlns=\"" ELBV2_XMLNS "\"><%sResult>", action, action);
	strbuf_add(&sb, result->buf, result->len);
	strbuf_addf(&sb, "</%sResult><ResponseMetadata>", action);
	server_elbv2_xml_elem(&sb, "RequestId", q->request_id);
	strbuf_addf(&sb, "</ResponseMetadata></%sResponse>", action);
	size_t n = sb.len;
	http_respond(q->req, 200, "text/xml", strbuf_detach(&sb, NULL), n);
}

/* An lb.c call failed: its error as ELB's (a missing load balancer is a missing target group). */
static void call_failed(struct q *q, struct ecs_call *c)
{
	if (streq_ptr(c->type, "LoadBalancerNotFoundException"))
		respond_error(q, 400, "TargetGroupNotFound", "One or more target groups not found");
	else if (streq_ptr(c->type, "ServerException"))
		respond_error(q, 500, "InternalFailure", "%s", c->msg ? c->msg : "internal error");
	else
		respond_error(q, 400, "ValidationError", "%s", c->msg ? c->msg : "invalid request");
	free(c->msg);
}

static void xml_int(struct strbuf *sb, const char *tag, json_t *v)
{
	if (json_is_integer(v))
		strbuf_addf(sb, "<%s>%lld</%s>", tag, (long long)json_integer_value(v), tag);
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void target_group_xml(struct strbuf *sb, json_t *lb)
{
	json_t *tg = json_object_get(lb, "targetGroup");
	bool http = streq_ptr(jstr(tg, "protocol"), "HTTP");
	strbuf_addstr(sb, "<member>");
	server_elbv2_xml_elem(sb, "TargetGroupArn", jstr(tg, "targetGroupArn"));
	server_elbv2_xml_elem(sb, "TargetGroupName", jstr(tg, "targetGroupName"));
	server_elbv2_xml_elem(sb, "Protocol", jstr(tg, "protocol"));
	xml_int(sb, "Port", json_object_get(tg, "port"));
	server_elbv2_xml_elem(sb, "HealthCheckProtocol", jstr(tg, "protocol"));
	server_elbv2_xml_elem(sb, "HealthCheckPort", "traffic-port");
	server_elbv2_xml_elem(sb, "HealthCheckEnabled", "true");
	xml_int(sb, "HealthCheckIntervalSeconds", json_object_get(tg, "healthCheckIntervalSeconds"));
	server_elbv2_xml_elem(sb, "HealthCheckTimeoutSeconds", "2"); /* the agents' `timeout check 2s` */
	xml_int(sb, "HealthyThresholdCount", json_object_get(tg, "healthyThresholdCount"));
	xml_int(sb, "UnhealthyThresholdCount", json_object_get(tg, "unhealthyThresholdCount"));
	if (http) {
		server_elbv2_xml_elem(sb, "HealthCheckPath", jstr(tg, "healthCheckPath"));
		strbuf_addstr(sb, "<Matcher><HttpCode>200-399</HttpCode></Matcher>");
	}
	strbuf_addstr(sb, "<LoadBalancerArns>");
	if (jstr(lb, "loadBalancerArn")) {
		strbuf_addstr(sb, "<member>");
		server_elbv2_xml_text(sb, jstr(lb, "loadBalancerArn"));
		strbuf_addstr(sb, "</member>");
	}
	strbuf_addstr(sb, "</LoadBalancerArns>");
	server_elbv2_xml_elem(sb, "TargetType", jstr(tg, "targetType") ? jstr(tg, "targetType") : "ip");
	server_elbv2_xml_elem(sb, "IpAddressType", "ipv4");
	strbuf_addstr(sb, "</member>");
}

static void describe_target_groups(struct q *q, json_t *form)
{
	_cleanup_json_ json_t *arns = server_elbv2_form_list(form, "TargetGroupArns"),
			      *names = server_elbv2_form_list(form, "Names"), *in = json_object(),
			      *out = NULL;
	const char *lb_arn = jstr(form, "LoadBalancerArn");
	struct ecs_call c = { .srv = q->s };
	if (server_ecs_berth_describe_load_balancers(&c, in, &out) < 0)
		return call_failed(q, &c);
	struct strbuf sb = STRBUF_INIT;
	size_t found = 0, i;
	json_t *lb;
	strbuf_addstr(&sb, "<TargetGroups>");
	json_array_foreach (json_object_get(out, "loadBalancers"), i, lb) {
		json_t *tg = json_object_get(lb, "targetGroup");
		if (!tg || (json_array_size(arns) && !json_strv_contains(arns, jstr(tg, "targetGroupArn"))) ||
		    (json_array_size(names) && !json_strv_contains(names, jstr(tg, "targetGroupName"))) ||
		    (lb_arn && !streq_ptr(lb_arn, jstr(lb, "loadBalancerArn"))))
			continue;
		target_group_xml(&sb, lb);
		found++;
	}
	strbuf_addstr(&sb, "</TargetGroups>");
	if (found < json_array_size(arns) + json_array_size(names)) {
		strbuf_release(&sb);
		return respond_error(q, 400, "TargetGroupNotFound", "One or more target groups not found");
	}
	if (lb_arn && !found) {
		strbuf_release(&sb);
		return respond_error(q, 400, "LoadBalancerNotFound", "One or more load balancers not found");
	}
	respond(q, "DescribeTargetGroups", &sb);
	strbuf_release(&sb);
}

static void health_xml(struct strbuf *sb, const char *id, json_t *port, const json_t *th)
{
	strbuf_addstr(sb, "<member><Target>");
	server_elbv2_xml_elem(sb, "Id", id);
	xml_int(sb, "Port", port);
	strbuf_addstr(sb, "</Target>");
	if (json_is_integer(port))
		strbuf_addf(sb, "<HealthCheckPort>%lld</HealthCheckPort>",
			    (long long)json_integer_value(port));
	strbuf_addstr(sb, "<TargetHealth>");
	server_elbv2_xml_elem(sb, "State", jstr(th, "state"));
	server_elbv2_xml_elem(sb, "Reason", jstr(th, "reason"));
	server_elbv2_xml_elem(sb, "Description", jstr(th, "description"));
	strbuf_addstr(sb, "</TargetHealth></member>");
}

static void describe_target_health(struct q *q, json_t *form)
{
	const char *arn = jstr(form, "TargetGroupArn");
	if (!arn)
		return respond_error(q, 400, "ValidationError",
				     "1 validation error detected: Value null at 'targetGroupArn' failed to "
				     "satisfy constraint: Member must not be null");
	if (!strstr(arn, ":targetgroup/"))
		return respond_error(q, 400, "ValidationError", "'%s' is not a valid target group ARN", arn);
	_cleanup_json_ json_t *in = json_pack("{s:s}", "name", arn), *out = NULL;
	_cleanup_json_ json_t *only = json_array();
	for (size_t i = 1; i <= ELBV2_MAX_PARAMS; i++) {
		char k[64], kp[64];
		snprintf(k, sizeof(k), "Targets.member.%zu.Id", i);
		snprintf(kp, sizeof(kp), "Targets.member.%zu.Port", i);
		if (!json_object_get(form, k))
			break;
		json_array_append_new(
		    only, json_pack("{s:O,s:s?}", "id", json_object_get(form, k), "port", jstr(form, kp)));
	}
	struct ecs_call c = { .srv = q->s };
	if (server_ecs_berth_describe_target_health(&c, in, &out) < 0)
		return call_failed(q, &c);
	if (!streq_ptr(jstr(out, "targetGroupArn"), arn)) /* same name, another target group */
		return respond_error(q, 400, "TargetGroupNotFound", "One or more target groups not found");
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "<TargetHealthDescriptions>");
	size_t i, k;
	json_t *d, *o;
	json_array_foreach (json_object_get(out, "targetHealthDescriptions"), i, d) {
		json_t *t = json_object_get(d, "target");
		const char *ip = jstr(t, "ip");
		if (!ip)
			continue; /* not yet placed: never registered */
		bool want = !json_array_size(only);
		json_array_foreach (only, k, o) {
			char port[24];
			snprintf(port, sizeof(port), "%lld",
				 (long long)json_integer_value(json_object_get(t, "port")));
			want |= streq_ptr(jstr(o, "id"), ip) &&
				(!jstr(o, "port") || streq(jstr(o, "port"), port));
		}
		if (want)
			health_xml(&sb, ip, json_object_get(t, "port"), json_object_get(d, "targetHealth"));
	}
	/* asked-for targets that are not registered: unused, as ELB answers */
	json_array_foreach (only, k, o) {
		bool known = false;
		json_array_foreach (json_object_get(out, "targetHealthDescriptions"), i, d)
			known |= streq_ptr(jstr(json_object_get(d, "target"), "ip"), jstr(o, "id"));
		if (known)
			continue;
		_cleanup_json_ json_t *th =
		    json_pack("{s:s,s:s,s:s}", "state", "unused", "reason", "Target.NotRegistered",
			      "description", "Target is not registered to the target group");
		_cleanup_json_ json_t *port = jstr(o, "port") ? json_integer(atoll(jstr(o, "port"))) : NULL;
		health_xml(&sb, jstr(o, "id"), port, th);
	}
	strbuf_addstr(&sb, "</TargetHealthDescriptions>");
	respond(q, "DescribeTargetHealth", &sb);
	strbuf_release(&sb);
}

bool server_elbv2_request(struct http_request *req)
{
	const char *ct = http_request_header(req, "Content-Type");
	return ct && startswith(ct, "application/x-www-form-urlencoded") &&
	       !http_request_header(req, "X-Amz-Target");
}

/* AWS's query-protocol names of the authentication errors server_ecs_authenticate() reports. */
static const char *auth_code(const char *type)
{
	static const char *const map[][2] = {
		{ "UnrecognizedClientException", "InvalidClientTokenId" },
		{ "InvalidSignatureException", "SignatureDoesNotMatch" },
		{ "MissingAuthenticationTokenException", "MissingAuthenticationToken" },
		{ "IncompleteSignatureException", "IncompleteSignature" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (streq_ptr(type, map[i][0]))
			return map[i][1];
	return type ? type : "AccessDenied";
}

void server_elbv2_handle(struct server *s, struct http_request *req)
{
	struct q q = { s, req, server_uuid_new() };
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	struct ecs_call c = { .srv = s };
	_cleanup_json_ json_t *form = NULL;
	const char *action = NULL;
	if (server_ecs_authenticate(&c, req, body, len, "elasticloadbalancing") < 0) {
		respond_error(&q, 403, auth_code(c.type), "%s", c.msg ? c.msg : "");
		free(c.msg);
	} else if (!(form = server_elbv2_form_parse(body, len))) {
		respond_error(&q, 400, "MalformedQueryString",
			      "The request body is not a valid query string.");
	} else if (!(action = jstr(form, "Action"))) {
		respond_error(&q, 400, "MissingAction", "The request must contain the parameter Action.");
	} else if (jstr(form, "Version") && !streq(jstr(form, "Version"), ELBV2_VERSION)) {
		respond_error(&q, 400, "InvalidAction", "Version '%s' is not supported (%s is).",
			      jstr(form, "Version"), ELBV2_VERSION);
	} else if (streq(action, "DescribeTargetHealth")) {
		describe_target_health(&q, form);
	} else if (streq(action, "DescribeTargetGroups")) {
		describe_target_groups(&q, form);
	} else {
		respond_error(&q, 400, "InvalidAction", "The action %s is not valid for this web service.",
			      action);
	}
	log_fields(LOG_LEVEL_DEBUG, "elbv2 call", "action", action ? action : "", NULL);
	free(q.request_id);
}
