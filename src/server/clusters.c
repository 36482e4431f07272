/*
 * clusters.c - Create/Describe/List/DeleteCluster. A deleted cluster stays
 * as an INACTIVE record (DescribeClusters shows it, as ECS does for a while);
 * CreateCluster on an existing ACTIVE name returns it unchanged (ECS is
 * idempotent here) and revives an INACTIVE one.
 */
#include "common/json.h"
#include "server/internal.h"

static char *cluster_key(const char *name)
{
	return xasprintf("/berth/clusters/%s", name);
}

static int resolve(struct ecs_call *c, const char *ref, json_t **ret, char **ret_name, bool shared)
{
	const char *name = ref && *ref ? server_arn_tail(ref) : "default";
	if (ref && startswith(ref, "arn:") && !strstr(ref, ":cluster/"))
		return server_ecs_fail(c, "InvalidParameterException", "'%s' is not a cluster ARN.", ref);
	_cleanup_free_ char *key = cluster_key(name);
	json_t *j = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = !server_name_valid(name, 255) ? -ENOENT
		: shared                      ? server_record_get_shared(c->srv, key, &j, &err)
					      : server_record_get(c->srv, key, &j, NULL, &err);
	if (r == -ENOENT || (r == 0 && !streq(json_string_value(json_object_get(j, "status")), "ACTIVE"))) {
		json_decref(j);
		return server_ecs_fail(c, "ClusterNotFoundException", "Cluster not found.");
	}
	if (r < 0)
		return server_ecs_internal(c, err);
	if (ret)
		*ret = j;
	else
		json_decref(j);
	if (ret_name)
		*ret_name = xstrdup(name);
	return 0;
}

int server_cluster_resolve(struct ecs_call *c, const char *ref, json_t **ret, char **ret_name)
{
	return resolve(c, ref, ret, ret_name, false);
}

int server_cluster_resolve_shared(struct ecs_call *c, const char *ref, json_t **ret, char **ret_name)
{
	return resolve(c, ref, ret, ret_name, true);
}

/* ECS's statistics (DescribeClusters include STATISTICS): the counts by launch type, as strings; berth's
 * tasks and services are all EC2's. */
static json_t *statistics(int running, int pending, int active, int draining)
{
	json_t *st = json_array();
	const struct {
		const char *name;
		int n;
	} kv[] = {
		{ "runningEC2TasksCount", running },     { "runningFargateTasksCount", 0 },
		{ "pendingEC2TasksCount", pending },     { "pendingFargateTasksCount", 0 },
		{ "activeEC2ServiceCount", active },     { "activeFargateServiceCount", 0 },
		{ "drainingEC2ServiceCount", draining }, { "drainingFargateServiceCount", 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(kv); i++) {
		char n[16];
		snprintf(n, sizeof(n), "%d", kv[i].n);
		json_array_append_new(st, json_pack("{s:s,s:s}", "name", kv[i].name, "value", n));
	}
	return st;
}

/* DescribeClusters' include: the members ECS adds only when asked. */
enum {
	CL_TAGS = 1 << 0,
	CL_STATS = 1 << 1,
	CL_SETTINGS = 1 << 2,
	CL_CONFIG = 1 << 3,
	CL_ATTACH = 1 << 4,
};

/* The cluster with its counts (computed from instances and tasks); `with` (CL_*) says which of the
 * include-gated members it carries: ECS's DescribeClusters leaves settings, configuration and
 * attachments out unless asked, and statistics empty. */
static json_t *cluster_view(struct server *s, json_t *cl, unsigned with)
{
	bool with_tags = with & CL_TAGS, with_stats = with & CL_STATS;
	json_t *v = json_deep_copy(cl);
	const char *name = json_string_value(json_object_get(cl, "clusterName"));
	_cleanup_free_ char *ip = xasprintf("/berth/instances/%s/", name);
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", name);
	json_t *insts = NULL, *tasks = NULL;
	int n_inst = 0, running = 0, pending = 0;
	if (server_record_list(s, ip, &insts, NULL) == 0) {
		size_t i;
		json_t *x;
		json_array_foreach (insts, i, x) {
			const char *st = json_string_value(json_object_get(x, "status"));
			n_inst += st && (streq(st, "ACTIVE") || streq(st, "DRAINING"));
		}
	}
	if (server_record_list(s, tp, &tasks, NULL) == 0) {
		size_t i;
		json_t *x;
		json_array_foreach (tasks, i, x) {
			const char *st = json_string_value(json_object_get(x, "lastStatus"));
			running += st && streq(st, "RUNNING");
			pending += st && (streq(st, "PENDING") || streq(st, "PROVISIONING"));
		}
	}
	json_decref(insts);
	json_decref(tasks);
	_cleanup_free_ char *sp = xasprintf("/berth/services/%s/", name);
	json_t *svcs = NULL;
	int n_svc = 0, n_draining = 0;
	if (server_record_list(s, sp, &svcs, NULL) == 0) {
		size_t i;
		json_t *x;
		json_array_foreach (svcs, i, x) {
			n_svc += streq_ptr(json_string_value(json_object_get(x, "status")), "ACTIVE");
			n_draining += streq_ptr(json_string_value(json_object_get(x, "status")), "DRAINING");
		}
	}
	json_decref(svcs);
	json_object_set_new(v, "registeredContainerInstancesCount", json_integer(n_inst));
	json_object_set_new(v, "runningTasksCount", json_integer(running));
	json_object_set_new(v, "pendingTasksCount", json_integer(pending));
	json_object_set_new(v, "activeServicesCount", json_integer(n_svc));
	json_object_set_new(v, "statistics",
			    with_stats ? statistics(running, pending, n_svc, n_draining) : json_array());
	json_object_del(v, "createdAt");
	if (!(with & CL_SETTINGS))
		json_object_del(v, "settings");
	if (!(with & CL_CONFIG))
		json_object_del(v, "configuration");
	if (!(with & CL_ATTACH)) {
		json_object_del(v, "attachments");
		json_object_del(v, "attachmentsStatus");
	}
	if (with_tags)
		json_object_set_new(v, "tags",
				    server_tags_get(s, json_string_value(json_object_get(cl, "clusterArn"))));
	return v;
}

int server_ecs_create_cluster(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	if (server_ecs_str(c, in, "clusterName", false, &name) < 0)
		return -1;
	if (!name)
		name = "default";
	if (!server_name_valid(name, 255))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Cluster name must be 1-255 letters, numbers, hyphens and underscores.");
	json_t *settings = json_object_get(in, "settings");
	if (settings && !json_is_array(settings))
		return server_ecs_fail(c, "SerializationException", "'settings': expected a list");
	_cleanup_free_ char *key = cluster_key(name);
	_cleanup_free_ char *arn = server_arn_make(c->srv, "cluster", name);
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *old = NULL;
		int64_t rev = 0;
		int r = server_record_get(c->srv, key, &old, &rev, &err);
		if (r < 0 && r != -ENOENT)
			return server_ecs_internal(c, err);
		if (r == 0 && streq(json_string_value(json_object_get(old, "status")), "ACTIVE")) {
			*out =
			    json_pack("{s:o}", "cluster", cluster_view(c->srv, old, CL_SETTINGS | CL_CONFIG));
			json_decref(old);
			return 0;
		}
		json_decref(old);
		json_t *cl = json_pack("{s:s,s:s,s:s,s:f}", "clusterArn", arn, "clusterName", name, "status",
				       "ACTIVE", "createdAt", server_record_now());
		json_object_set_new(
		    cl, "settings",
		    settings ? json_incref(settings)
			     : json_pack("[{s:s,s:s}]", "name", "containerInsights", "value", "disabled"));
		if (server_tags_set(c, arn, json_object_get(in, "tags")) < 0) {
			json_decref(cl);
			return -1;
		}
		bool ok = false;
		r = server_record_cas(c->srv, key, cl, r == 0 ? rev : 0, &ok, &err);
		if (r < 0) {
			json_decref(cl);
			return server_ecs_internal(c, err);
		}
		if (ok) {
			*out = json_pack("{s:o}", "cluster",
					 cluster_view(c->srv, cl, CL_TAGS | CL_SETTINGS | CL_CONFIG));
			json_decref(cl);
			return 0;
		}
		json_decref(cl);
	}
	return server_ecs_fail(c, "ServerException", "cluster '%s' is being changed concurrently; retry",
			       name);
}

static bool include_has(json_t *in, const char *what)
{
	return json_strv_contains(json_object_get(in, "include"), what);
}

int server_ecs_describe_clusters(struct ecs_call *c, json_t *in, json_t **out)
{
	json_t *refs;
	if (server_ecs_strv(c, in, "clusters", &refs) < 0)
		return -1;
	if (json_array_size(refs) > 100)
		return server_ecs_fail(c, "InvalidParameterException",
				       "clusters can have at most 100 items.");
	json_t *clusters = json_array(), *failures = json_array();
	json_t *def = json_pack("[s]", "default");
	if (!refs || json_array_size(refs) == 0)
		refs = def;
	unsigned with = (include_has(in, "TAGS") ? CL_TAGS : 0) |
			(include_has(in, "STATISTICS") ? CL_STATS : 0) |
			(include_has(in, "SETTINGS") ? CL_SETTINGS : 0) |
			(include_has(in, "CONFIGURATIONS") ? CL_CONFIG : 0) |
			(include_has(in, "ATTACHMENTS") ? CL_ATTACH : 0);
	size_t i;
	json_t *x;
	json_array_foreach (refs, i, x) {
		const char *ref = json_string_value(x);
		const char *name = server_arn_tail(ref);
		_cleanup_free_ char *key = cluster_key(name);
		json_t *cl = NULL;
		if (server_name_valid(name, 255) && server_record_get(c->srv, key, &cl, NULL, NULL) == 0) {
			json_array_append_new(clusters, cluster_view(c->srv, cl, with));
			json_decref(cl);
		} else {
			_cleanup_free_ char *arn =
			    startswith(ref, "arn:") ? xstrdup(ref) : server_arn_make(c->srv, "cluster", name);
			json_array_append_new(failures,
					      json_pack("{s:s,s:s}", "arn", arn, "reason", "MISSING"));
		}
	}
	json_decref(def);
	*out = json_pack("{s:o,s:o}", "clusters", clusters, "failures", failures);
	return 0;
}

int server_ecs_list_clusters(struct ecs_call *c, json_t *in, json_t **out)
{
	json_t *all = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, "/berth/clusters/", &all, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *arns = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (all, i, x)
		if (streq(json_string_value(json_object_get(x, "status")), "ACTIVE"))
			json_array_append(arns, json_object_get(x, "clusterArn"));
	json_decref(all);
	*out = json_object();
	int r = server_ecs_paginate(c, in, arns, 100, "clusterArns", *out);
	json_decref(arns);
	return r;
}

int server_ecs_delete_cluster(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	if (server_ecs_str(c, in, "cluster", true, &ref) < 0)
		return -1;
	json_t *cl = NULL;
	_cleanup_free_ char *name = NULL;
	if (server_cluster_resolve(c, ref, &cl, &name) < 0)
		return -1;
	json_t *view = cluster_view(c->srv, cl, 0);
	int64_t insts = json_integer_value(json_object_get(view, "registeredContainerInstancesCount"));
	int64_t svcs = json_integer_value(json_object_get(view, "activeServicesCount"));
	int64_t tasks = json_integer_value(json_object_get(view, "runningTasksCount")) +
			json_integer_value(json_object_get(view, "pendingTasksCount"));
	json_decref(view);
	if (svcs > 0) {
		json_decref(cl);
		return server_ecs_fail(c, "ClusterContainsServicesException",
				       "The Cluster cannot be deleted while Services are active.");
	}
	if (insts > 0) {
		json_decref(cl);
		return server_ecs_fail(
		    c, "ClusterContainsContainerInstancesException",
		    "The Cluster cannot be deleted while Container Instances are active or draining.");
	}
	if (tasks > 0) {
		json_decref(cl);
		return server_ecs_fail(c, "ClusterContainsTasksException",
				       "The Cluster cannot be deleted while Tasks are active.");
	}
	json_object_set_new(cl, "status", json_string("INACTIVE"));
	_cleanup_free_ char *key = cluster_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_put(c->srv, key, cl, &err) < 0) {
		json_decref(cl);
		return server_ecs_internal(c, err);
	}
	*out = json_pack("{s:o}", "cluster", cluster_view(c->srv, cl, CL_SETTINGS | CL_CONFIG));
	json_decref(cl);
	return 0;
}

/*
 * ListAccountSettings: the account's settings as berth has them, fixed (no PutAccountSetting): the long
 * ARN formats are what berth's ARNs are (cluster name inside), trunking and Container Insights' account
 * default are off. Filters name and value; principalArn is echoed (every principal has the same).
 */
int server_ecs_list_account_settings(struct ecs_call *c, json_t *in, json_t **out)
{
	static const char *const settings[][2] = {
		{ "awsvpcTrunking", "disabled" },
		{ "containerInsights", "disabled" },
		{ "containerInstanceLongArnFormat", "enabled" },
		{ "serviceLongArnFormat", "enabled" },
		{ "taskLongArnFormat", "enabled" },
	}; /* in strcmp order: the pages follow it */
	const char *name, *value, *principal;
	if (server_ecs_str(c, in, "name", false, &name) < 0 ||
	    server_ecs_str(c, in, "value", false, &value) < 0 ||
	    server_ecs_str(c, in, "principalArn", false, &principal) < 0)
		return -1;
	_cleanup_free_ char *root = xasprintf("arn:aws:iam::%s:root", c->srv->account);
	_cleanup_json_ json_t *names = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(settings); i++)
		if ((!name || streq(name, settings[i][0])) && (!value || streq(value, settings[i][1])))
			json_array_append_new(names, json_string(settings[i][0]));
	*out = json_object();
	if (server_ecs_paginate(c, in, names, 10, "settings", *out) < 0)
		return -1;
	json_t *page = json_object_get(*out, "settings");
	size_t i;
	json_t *n;
	json_array_foreach (page, i, n)
		for (size_t k = 0; k < ARRAY_SIZE(settings); k++)
			if (streq(json_string_value(n), settings[k][0])) {
				json_array_set_new(page, i,
						   json_pack("{s:s,s:s,s:s}", "name", settings[k][0], "value",
							     settings[k][1], "principalArn",
							     principal ? principal : root));
				break;
			}
	return 0;
}
