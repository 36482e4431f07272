/*
 * lb-core.c - the pure parts of load balancing and discovery (lb.h): names,
 * target membership and the discovery table, computed from task, service
 * and attachment records. No store, no I/O: the server's lb.c reads the
 * records and hands them in, so the rules are unit-tested on plain JSON.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "common/json.h"
#include "common/macro.h"
#include "server/lb.h"

bool server_lb_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > LB_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

bool server_lb_health_path_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 1024 || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *server_lb_task_address(const json_t *task)
{
	size_t i, k;
	json_t *a, *d, *c, *ni;
	json_array_foreach (json_object_get(task, "attachments"), i, a)
		json_array_foreach (json_object_get(a, "details"), k, d)
			if (streq_ptr(str(d, "name"), "privateIPv4Address") && str(d, "value") &&
			    *str(d, "value"))
				return str(d, "value");
	json_array_foreach (json_object_get(task, "containers"), i, c)
		json_array_foreach (json_object_get(c, "networkInterfaces"), k, ni)
			if (str(ni, "privateIpv4Address") && *str(ni, "privateIpv4Address"))
				return str(ni, "privateIpv4Address");
	return NULL;
}

/* The service name of a task's group "service:NAME", or NULL. */
static const char *service_of(const json_t *task)
{
	const char *g = str(task, "group");
	return g && startswith(g, "service:") && g[8] ? g + 8 : NULL;
}

enum state { S_NONE, S_INITIAL, S_HEALTHY, S_DRAINING, S_UNHEALTHY };

/* Where a running task stands for the load balancer and discovery. */
static enum state task_state(const json_t *t, lb_has_checks_fn has_checks, void *ud)
{
	const char *last = str(t, "lastStatus"), *desired = str(t, "desiredStatus");
	if (streq_ptr(last, "STOPPED") || !desired)
		return S_NONE;
	if (!streq_ptr(last, "RUNNING"))
		return streq(desired, "RUNNING") ? S_INITIAL : S_NONE;
	if (json_object_get(t, "drainingAt") || !streq(desired, "RUNNING"))
		return S_DRAINING;
	const char *h = str(t, "healthStatus");
	if (streq_ptr(h, "UNHEALTHY"))
		return S_UNHEALTHY;
	if (!streq_ptr(h, "HEALTHY") && has_checks && has_checks(ud, str(t, "taskDefinitionArn")))
		return S_INITIAL;
	return S_HEALTHY;
}

/* containerName/containerPort of the association between service and the target group, or false. */
static bool association(const struct lb_membership *m, const char *service, const char **ret_container,
			int *ret_port)
{
	size_t i, k;
	json_t *s, *lb, *a;
	json_array_foreach (m->services, i, s) {
		if (!streq_ptr(str(s, "serviceName"), service) || streq_ptr(str(s, "status"), "INACTIVE"))
			continue;
		json_array_foreach (json_object_get(s, "loadBalancers"), k, lb)
			if (streq_ptr(str(lb, "targetGroupArn"), m->tg_arn)) {
				*ret_container = str(lb, "containerName");
				*ret_port = (int)json_integer_value(json_object_get(lb, "containerPort"));
				return true;
			}
	}
	json_array_foreach (m->attachments, i, a)
		if (streq_ptr(str(a, "serviceName"), service) && streq_ptr(str(a, "cluster"), m->cluster)) {
			*ret_container = str(a, "containerName");
			*ret_port = (int)json_integer_value(json_object_get(a, "containerPort"));
			return true;
		}
	return false;
}

/* The node address of a task's container instance (bridge/host targets), or NULL. */
static const char *node_address(const struct lb_membership *m, const json_t *task)
{
	const char *arn = str(task, "containerInstanceArn");
	size_t i, k;
	json_t *inst, *n;
	json_array_foreach (m->instances, i, inst) {
		if (!streq_ptr(str(inst, "containerInstanceArn"), arn))
			continue;
		json_array_foreach (m->nodes, k, n)
			if (streq_ptr(str(n, "nodeId"), str(inst, "nodeId")))
				return str(n, "address");
	}
	return NULL;
}

/* The host port bound for container:port in bridge/host mode, 0 when none. */
static int host_port(const json_t *task, const char *container, int port)
{
	size_t i, k;
	json_t *c, *b;
	json_array_foreach (json_object_get(task, "containers"), i, c) {
		if (container && !streq_ptr(str(c, "name"), container))
			continue;
		json_array_foreach (json_object_get(c, "networkBindings"), k, b)
			if (json_integer_value(json_object_get(b, "containerPort")) == port)
				return (int)json_integer_value(json_object_get(b, "hostPort"));
	}
	return 0;
}

static const char *state_name(enum state s)
{
	switch (s) {
	case S_HEALTHY: return "healthy";
	case S_DRAINING: return "draining";
	case S_UNHEALTHY: return "unhealthy";
	default: return "initial";
	}
}

json_t *server_lb_targets(const struct lb_membership *m, const json_t *tasks, bool all_states)
{
	json_t *out = json_array();
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *svc = service_of(t), *container = NULL;
		int port = 0;
		if (!svc || !association(m, svc, &container, &port) || port <= 0 || port > 65535)
			continue;
		enum state st = task_state(t, m->has_checks, m->userdata);
		if (st == S_NONE)
			continue;
		const char *addr = server_lb_task_address(t);
		if (!addr) {
			addr = node_address(m, t);
			port = addr ? host_port(t, container, port) : 0;
		}
		if (!addr || port <= 0)
			st = st == S_HEALTHY ? S_INITIAL : st;
		if (!all_states && (st == S_INITIAL || st == S_UNHEALTHY || !addr || port <= 0))
			continue;
		const char *arn = str(t, "taskArn");
		const char *slash = arn ? strrchr(arn, '/') : NULL;
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id",
				      slash ? slash + 1
				      : arn ? arn
					    : "",
				      "taskArn", arn ? arn : "", "serviceName", svc, "state", state_name(st));
		if (addr && port > 0) {
			json_object_set_new(o, "address", json_string(addr));
			json_object_set_new(o, "port", json_integer(port));
		}
		json_array_append_new(out, o);
	}
	return out;
}

static int cmp_ip(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

json_t *server_lb_discovery(const json_t *tasks, lb_has_checks_fn has_checks, void *userdata)
{
	json_t *out = json_object();
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *svc = service_of(t), *addr = server_lb_task_address(t);
		struct in_addr a;
		if (!svc || !addr || inet_pton(AF_INET, addr, &a) != 1 ||
		    task_state(t, has_checks, userdata) != S_HEALTHY)
			continue;
		json_t *list = json_object_get(out, svc);
		if (!list) {
			list = json_array();
			json_object_set_new(out, svc, list);
		}
		if (!json_strv_contains(list, addr))
			json_array_append_new(list, json_string(addr));
	}
	const char *k;
	json_t *list;
	json_object_foreach (out, k, list) {
		size_t n = json_array_size(list);
		json_t **v = xcalloc(n ? n : 1, sizeof(*v));
		for (size_t j = 0; j < n; j++)
			v[j] = json_incref(json_array_get(list, j));
		qsort(v, n, sizeof(*v), cmp_ip);
		json_array_clear(list);
		for (size_t j = 0; j < n; j++)
			json_array_append_new(list, v[j]);
		free(v);
	}
	return out;
}

void server_lb_discovery_stack_names(json_t *names, const json_t *tasks, lb_stack_fn stack_of, void *userdata)
{
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *svc = service_of(t);
		const char *stack =
		    svc ? stack_of(userdata, json_string_value(json_object_get(t, "taskDefinitionArn")))
			: NULL;
		size_t n = stack ? strlen(stack) : 0;
		json_t *ips = svc ? json_object_get(names, svc) : NULL;
		if (!stack || !ips || strncmp(svc, stack, n) || svc[n] != '_' || !svc[n + 1])
			continue;
		_cleanup_free_ char *alias = xasprintf("%s.%s", svc + n + 1, stack);
		if (!json_object_get(names, alias))
			json_object_set_new(names, alias, json_deep_copy(ips));
	}
}

static bool health_state_valid(const char *s)
{
	return s &&
	       (streq(s, "healthy") || streq(s, "unhealthy") || streq(s, "initial") || streq(s, "draining"));
}

static bool short_string_or_absent(const json_t *v)
{
	return !v || (json_is_string(v) && strlen(json_string_value(v)) <= 256);
}

static bool task_id_valid(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

const char *server_lb_health_report_invalid(const json_t *report)
{
	json_t *lbs = json_object_get(report, "loadBalancers");
	if (!json_is_object(lbs))
		return "expected {\"loadBalancers\": {NAME: {TASKID: {\"state\": ...}}}}";
	size_t total = 0;
	const char *name, *id;
	json_t *targets, *h;
	json_object_foreach (lbs, name, targets) {
		if (!server_lb_name_valid(name))
			return "invalid load balancer name";
		if (!json_is_object(targets))
			return "a load balancer's targets must be an object";
		json_object_foreach (targets, id, h) {
			if (++total > LB_HEALTH_MAX)
				return "too many targets";
			if (!task_id_valid(id))
				return "invalid task id";
			if (!json_is_object(h) ||
			    !health_state_valid(json_string_value(json_object_get(h, "state"))))
				return "state must be healthy, unhealthy, initial or draining";
			if (!short_string_or_absent(json_object_get(h, "reason")) ||
			    !short_string_or_absent(json_object_get(h, "description")))
				return "reason and description must be strings of at most 256 bytes";
		}
	}
	return NULL;
}

bool server_lb_health_served(const json_t *reports, const json_t *alive, const char *name)
{
	size_t i;
	json_t *r;
	json_array_foreach (reports, i, r) {
		const char *node = json_string_value(json_object_get(r, "nodeId"));
		if (node && json_is_true(json_object_get(alive, node)) &&
		    json_is_object(json_object_get(json_object_get(r, "loadBalancers"), name)))
			return true;
	}
	return false;
}

json_t *server_lb_health_merge(const json_t *reports, const json_t *alive, const char *name)
{
	json_t *out = json_object();
	size_t i;
	json_t *r;
	/* per target: the nodes' states */
	json_array_foreach (reports, i, r) {
		const char *node = json_string_value(json_object_get(r, "nodeId"));
		json_t *targets = json_object_get(json_object_get(r, "loadBalancers"), name);
		if (!node || !json_is_true(json_object_get(alive, node)) || !json_is_object(targets))
			continue;
		const char *id;
		json_t *h;
		json_object_foreach (targets, id, h) {
			const char *st = json_string_value(json_object_get(h, "state"));
			if (!health_state_valid(st))
				continue;
			json_t *o = json_object_get(out, id);
			if (!o) {
				o = json_pack("{s:{}}", "nodes");
				json_object_set_new(out, id, o);
			}
			json_object_set_new(json_object_get(o, "nodes"), node, json_string(st));
			if (streq(st, "unhealthy") && !json_object_get(o, "reason")) {
				json_object_set(o, "reason", json_object_get(h, "reason"));
				json_object_set(o, "description", json_object_get(h, "description"));
			}
		}
	}
	const char *id;
	json_t *o;
	json_object_foreach (out, id, o) {
		size_t n = 0, bad = 0, up = 0, drain = 0;
		const char *node;
		json_t *st;
		json_object_foreach (json_object_get(o, "nodes"), node, st) {
			n++;
			bad += streq(json_string_value(st), "unhealthy");
			up += streq(json_string_value(st), "healthy");
			drain += streq(json_string_value(st), "draining");
		}
		const char *state = 2 * bad > n ? "unhealthy"
				    : drain     ? "draining"
				    : up        ? "healthy"
						: "initial";
		json_object_set_new(o, "state", json_string(state));
		if (!streq(state, "unhealthy")) {
			json_object_del(o, "reason");
			json_object_del(o, "description");
		}
		if (streq(state, "initial")) {
			json_object_set_new(o, "reason", json_string("Elb.InitialHealthChecking"));
			json_object_set_new(o, "description",
					    json_string("Initial health checks in progress"));
		}
	}
	return out;
}
