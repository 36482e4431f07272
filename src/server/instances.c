/*
 * instances.c - container instances (nodes registered by agents, see
 * agent.c): List/Describe/UpdateContainerInstancesState/Deregister, and
 * Put/List/DeleteAttributes on them. Computed fields (agentConnected,
 * remainingResources, task counts) are derived at read time from the
 * node's lease key and the cluster's tasks, so they are never stale.
 */
#include "server/internal.h"

bool server_instance_connected(struct server *s, const char *id)
{
	_cleanup_free_ char *key = xasprintf("/berth/alive/%s", id);
	struct store_kv kv;
	if (store_get(s->store, key, &kv, NULL) < 0)
		return false;
	store_kv_done(&kv);
	return true;
}

static json_t *resource(const char *name, int64_t v)
{
	return json_pack("{s:s,s:s,s:f,s:I,s:I}", "name", name, "type", "INTEGER", "doubleValue", 0.0,
			 "longValue", (json_int_t)0, "integerValue", (json_int_t)v);
}

static int64_t registered(json_t *inst, const char *name)
{
	size_t i;
	json_t *x;
	json_array_foreach (json_object_get(inst, "registeredResources"), i, x)
		if (streq(json_string_value(json_object_get(x, "name")), name))
			return json_integer_value(json_object_get(x, "integerValue"));
	return 0;
}

json_t *server_instance_view(struct server *s, json_t *inst, json_t *tasks)
{
	json_t *v = json_deep_copy(inst);
	const char *arn = json_string_value(json_object_get(inst, "containerInstanceArn"));
	int64_t cpu = registered(inst, "CPU"), mem = registered(inst, "MEMORY");
	int running = 0, pending = 0;
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		if (!streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn) ||
		    !server_task_holds_resources(t))
			continue;
		const char *ls = json_string_value(json_object_get(t, "lastStatus"));
		running += streq(ls, "RUNNING");
		pending += !streq(ls, "RUNNING");
		cpu -= strtoll(json_string_value(json_object_get(t, "cpu")) ?: "0", NULL, 10);
		mem -= strtoll(json_string_value(json_object_get(t, "memory")) ?: "0", NULL, 10);
	}
	json_t *remaining = json_array();
	json_array_append_new(remaining, resource("CPU", cpu));
	json_array_append_new(remaining, resource("MEMORY", mem));
	json_array_foreach (json_object_get(inst, "registeredResources"), i, t) {
		const char *n = json_string_value(json_object_get(t, "name"));
		if (!streq(n, "CPU") && !streq(n, "MEMORY"))
			json_array_append(remaining, t);
	}
	json_object_set_new(v, "remainingResources", remaining);
	json_object_set_new(v, "runningTasksCount", json_integer(running));
	json_object_set_new(v, "pendingTasksCount", json_integer(pending));
	const char *id = json_string_value(json_object_get(inst, "nodeId"));
	json_object_set_new(v, "agentConnected", json_boolean(id && server_instance_connected(s, id)));
	json_object_del(v, "nodeId");
	json_object_del(v, "clusterName");
	json_object_del(v, "disconnectedAt");
	json_object_del(v, "labels");
	json_object_del(v, "taints");
	json_object_del(v, "taintAddedAt");
	return v;
}

/* The key of an instance given by ID or ARN within cluster. */
static char *instance_key(const char *cluster, const char *ref)
{
	const char *id = server_arn_tail(ref);
	if (!server_name_valid(id, 64))
		return NULL;
	return xasprintf("/berth/instances/%s/%s", cluster, id);
}

static int load_cluster_lists(struct ecs_call *c, const char *cluster, json_t **insts, json_t **tasks)
{
	_cleanup_free_ char *ip = xasprintf("/berth/instances/%s/", cluster);
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	_cleanup_error_ struct berth_error *err = NULL;
	*insts = NULL;
	if (tasks)
		*tasks = NULL;
	if (server_record_list(c->srv, ip, insts, &err) < 0 ||
	    (tasks && server_record_list(c->srv, tp, tasks, &err) < 0)) {
		json_decref(*insts);
		return server_ecs_internal(c, err);
	}
	return 0;
}

/* "attribute:NAME == VALUE", "attribute:NAME != VALUE", "attribute:NAME exists"; NULL matches all. */
int server_instance_filter_match(json_t *inst, const char *filter);
int server_instance_filter_match(json_t *inst, const char *filter)
{
	if (!filter || !*filter)
		return 1;
	char name[129], op[8], value[129] = "";
	int n = sscanf(filter, " attribute:%128s %7s %128s", name, op, value);
	if (n < 2 || (n == 2 && strcmp(op, "exists")) || (n == 3 && strcmp(op, "==") && strcmp(op, "!=")))
		return -1;
	const char *have = NULL;
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(inst, "attributes"), i, a)
		if (streq(json_string_value(json_object_get(a, "name")), name))
			have = json_string_value(json_object_get(a, "value")) ?: "";
	if (n == 2)
		return have != NULL;
	bool eq = have && streq(have, value);
	return streq(op, "==") ? eq : !eq;
}

int server_ecs_list_container_instances(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *filter, *status;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "filter", false, &filter) < 0 ||
	    server_ecs_str(c, in, "status", false, &status) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (status && !streq(status, "ACTIVE") && !streq(status, "DRAINING") &&
	    !streq(status, "REGISTERING") && !streq(status, "DEREGISTERING") &&
	    !streq(status, "REGISTRATION_FAILED"))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid status '%s'.", status);
	json_t *insts;
	if (load_cluster_lists(c, cluster, &insts, NULL) < 0)
		return -1;
	json_t *arns = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (insts, i, x) {
		const char *st = json_string_value(json_object_get(x, "status"));
		if (streq(st, "INACTIVE") || (status && !streq(st, status)))
			continue;
		int m = server_instance_filter_match(x, filter);
		if (m < 0) {
			json_decref(insts);
			json_decref(arns);
			return server_ecs_fail(
			    c, "InvalidParameterException",
			    "Unsupported filter '%s' (supported: attribute:NAME == VALUE, != VALUE, exists).",
			    filter);
		}
		if (m)
			json_array_append(arns, json_object_get(x, "containerInstanceArn"));
	}
	json_decref(insts);
	*out = json_object();
	int r = server_ecs_paginate(c, in, arns, 100, "containerInstanceArns", *out);
	json_decref(arns);
	return r;
}

int server_ecs_describe_container_instances(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	json_t *refs;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_strv(c, in, "containerInstances", &refs) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!refs || json_array_size(refs) == 0 || json_array_size(refs) > 100)
		return server_ecs_fail(c, "InvalidParameterException",
				       "containerInstances must have 1 to 100 items.");
	json_t *tasks = NULL;
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, tp, &tasks, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *list = json_array(), *failures = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (refs, i, x) {
		_cleanup_free_ char *key = instance_key(cluster, json_string_value(x));
		json_t *inst = NULL;
		if (key && server_record_get(c->srv, key, &inst, NULL, NULL) == 0) {
			json_t *v = server_instance_view(c->srv, inst, tasks);
			json_object_set_new(v, "tags",
					    server_tags_get(c->srv, json_string_value(json_object_get(
									inst, "containerInstanceArn"))));
			json_array_append_new(list, v);
			json_decref(inst);
		} else {
			json_array_append_new(failures,
					      json_pack("{s:O,s:s}", "arn", x, "reason", "MISSING"));
		}
	}
	json_decref(tasks);
	*out = json_pack("{s:o,s:o}", "containerInstances", list, "failures", failures);
	return 0;
}

/* Read-modify-write one instance with compare-and-swap; fn edits the record (returns <0 to abort). */
static int instance_update(struct ecs_call *c, const char *key,
			   int (*fn)(struct ecs_call *, json_t *, void *), void *ctx, json_t **ret)
{
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *inst = NULL;
		int64_t rev;
		int r = server_record_get(c->srv, key, &inst, &rev, &err);
		if (r == -ENOENT)
			return 1; /* missing */
		if (r < 0)
			return server_ecs_internal(c, err);
		if (fn(c, inst, ctx) < 0) {
			json_decref(inst);
			return -1;
		}
		bool ok = false;
		if (server_record_cas(c->srv, key, inst, rev, &ok, &err) < 0) {
			json_decref(inst);
			return server_ecs_internal(c, err);
		}
		if (ok) {
			if (ret)
				*ret = inst;
			else
				json_decref(inst);
			return 0;
		}
		json_decref(inst);
	}
	return server_ecs_fail(c, "ServerException", "container instance changed concurrently; retry");
}

static int set_status(struct ecs_call *c, json_t *inst, void *ctx)
{
	const char *cur = json_string_value(json_object_get(inst, "status"));
	if (streq(cur, "INACTIVE"))
		return server_ecs_fail(c, "InvalidParameterException", "Container instance is INACTIVE.");
	json_object_set_new(inst, "status", json_string(ctx));
	return 0;
}

int server_ecs_update_container_instances_state(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *status;
	json_t *refs;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_strv(c, in, "containerInstances", &refs) < 0 ||
	    server_ecs_str(c, in, "status", true, &status) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!streq(status, "ACTIVE") && !streq(status, "DRAINING"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "Container instances status should be one of "
				       "[ACTIVE,DRAINING]");
	if (!refs || json_array_size(refs) == 0 || json_array_size(refs) > 10)
		return server_ecs_fail(c, "InvalidParameterException",
				       "containerInstances must have 1 to 10 items.");
	json_t *list = json_array(), *failures = json_array(), *tasks = NULL;
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	server_record_list(c->srv, tp, &tasks, NULL);
	size_t i;
	json_t *x;
	json_array_foreach (refs, i, x) {
		_cleanup_free_ char *key = instance_key(cluster, json_string_value(x));
		json_t *inst = NULL;
		int r = key ? instance_update(c, key, set_status, (void *)status, &inst) : 1;
		if (r < 0) {
			json_decref(list);
			json_decref(failures);
			json_decref(tasks);
			return -1;
		}
		if (r > 0) {
			json_array_append_new(failures,
					      json_pack("{s:O,s:s}", "arn", x, "reason", "MISSING"));
			continue;
		}
		json_array_append_new(list, server_instance_view(c->srv, inst, tasks));
		json_decref(inst);
	}
	json_decref(tasks);
	*out = json_pack("{s:o,s:o}", "containerInstances", list, "failures", failures);
	return 0;
}

int server_ecs_deregister_container_instance(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *iref;
	json_t *force = json_object_get(in, "force");
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "containerInstance", true, &iref) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (force && !json_is_boolean(force))
		return server_ecs_fail(c, "SerializationException", "'force': expected a boolean");
	_cleanup_free_ char *key = instance_key(cluster, iref);
	json_t *inst = NULL, *tasks = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (!key || server_record_get(c->srv, key, &inst, NULL, NULL) < 0 ||
	    streq(json_string_value(json_object_get(inst, "status")), "INACTIVE")) {
		json_decref(inst);
		return server_ecs_fail(c, "InvalidParameterException", "Container instance '%s' not found.",
				       iref);
	}
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	server_record_list(c->srv, tp, &tasks, NULL);
	const char *arn = json_string_value(json_object_get(inst, "containerInstanceArn"));
	size_t i;
	json_t *t;
	int active = 0;
	json_array_foreach (tasks, i, t)
		active += server_task_active(t) &&
			  streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn);
	if (active && !json_is_true(force)) {
		json_decref(inst);
		json_decref(tasks);
		return server_ecs_fail(c, "InvalidParameterException",
				       "Found %d running tasks on the instance; stop them or use force.",
				       active);
	}
	json_array_foreach (tasks, i, t) {
		if (!server_task_active(t) ||
		    !streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn))
			continue;
		_cleanup_free_ char *tkey =
		    xasprintf("/berth/tasks/%s/%s", cluster,
			      server_arn_tail(json_string_value(json_object_get(t, "taskArn"))));
		(void)server_task_stop_now(c->srv, tkey, t, "TaskFailedToStart",
					   "Container instance deregistered", NULL);
	}
	json_decref(tasks);
	const char *node = json_string_value(json_object_get(inst, "nodeId"));
	_cleanup_free_ char *nkey = xasprintf("/berth/nodes/%s", node ? node : "");
	_cleanup_free_ char *akey = xasprintf("/berth/alive/%s", node ? node : "");
	json_t *nrec = NULL;
	if (node && server_record_get(c->srv, nkey, &nrec, NULL, NULL) == 0) {
		json_object_set_new(nrec, "revoked", json_true());
		if (server_record_put(c->srv, nkey, nrec, &err) < 0 ||
		    server_overlay_release(c->srv, node, &err) < 0) {
			json_decref(nrec);
			json_decref(inst);
			return server_ecs_internal(c, err);
		}
		json_decref(nrec);
	}
	json_object_set_new(inst, "status", json_string("INACTIVE"));
	if (server_record_put(c->srv, key, inst, &err) < 0 ||
	    store_remove(c->srv->store, akey, NULL, &err) < 0) {
		json_decref(inst);
		return server_ecs_internal(c, err);
	}
	*out = json_pack("{s:o}", "containerInstance", server_instance_view(c->srv, inst, NULL));
	json_decref(inst);
	return 0;
}

/* ---- attributes (container instances are the only target type) ---- */

static bool attr_name_valid(const char *s)
{
	if (startswith(s, TAINT_ATTR_PREFIX) && s[strlen(TAINT_ATTR_PREFIX)])
		s += strlen(TAINT_ATTR_PREFIX); /* berth's taints (docs/scheduler.md) */
	size_t n = strlen(s);
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("-_./\\@", s[i])))
			return false;
	return true;
}

struct attr_edit {
	json_t *attr; /* {name, value} */
	bool remove;
};

static void taint_attr_times(json_t *inst, const char *name, bool remove);

static int edit_attr(struct ecs_call *c, json_t *inst, void *ctx)
{
	struct attr_edit *e = ctx;
	json_t *attrs = json_object_get(inst, "attributes");
	if (!json_is_array(attrs)) {
		attrs = json_array();
		json_object_set_new(inst, "attributes", attrs);
	}
	const char *name = json_string_value(json_object_get(e->attr, "name"));
	for (size_t i = 0; i < json_array_size(attrs); i++)
		if (streq_ptr(json_string_value(json_object_get(json_array_get(attrs, i), "name")), name)) {
			json_array_remove(attrs, i);
			break;
		}
	if (!e->remove) {
		json_t *a = json_pack("{s:s}", "name", name);
		json_t *v = json_object_get(e->attr, "value");
		if (v)
			json_object_set(a, "value", v);
		json_array_append_new(attrs, a);
	}
	if (startswith(name, TAINT_ATTR_PREFIX))
		taint_attr_times(inst, name, e->remove);
	return 0;
}

/*
 * When each `berth:taint:KEY` attribute was set (taintAddedAt: name -> epoch
 * seconds): NoExecute tolerationSeconds count from there. Setting the same
 * value and effect again keeps the time.
 */
static void taint_attr_times(json_t *inst, const char *name, bool remove)
{
	json_t *times = json_object_get(inst, "taintAddedAt");
	if (!json_is_object(times)) {
		times = json_object();
		json_object_set_new(inst, "taintAddedAt", times);
	}
	if (remove)
		json_object_del(times, name);
	else
		json_object_set_new(times, name, json_real(server_record_now()));
}

/* "VALUE:EFFECT" of a berth:taint:KEY attribute. */
static bool taint_value_valid(const char *v)
{
	const char *colon = v ? strrchr(v, ':') : NULL;
	return colon && (streq(colon + 1, "NoSchedule") || streq(colon + 1, "PreferNoSchedule") ||
			 streq(colon + 1, "NoExecute"));
}

/* Check one attribute of a Put/Delete call; *ret_key is the instance's record key. */
static int attr_target(struct ecs_call *c, const char *cluster, json_t *a, size_t i, bool put, char **ret_key)
{
	if (!json_is_object(a))
		return server_ecs_fail(c, "SerializationException", "'attributes[%zu]': expected an object",
				       i);
	const char *name = json_string_value(json_object_get(a, "name"));
	json_t *value = json_object_get(a, "value");
	const char *type = json_string_value(json_object_get(a, "targetType"));
	const char *target = json_string_value(json_object_get(a, "targetId"));
	if (!name || !attr_name_valid(name))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Invalid 'attributes[%zu].name': 1-128 letters, numbers, '-', '_', '.', '/', '\\' "
		    "or '@'.",
		    i);
	if (value &&
	    (!json_is_string(value) || strlen(json_string_value(value)) > 128 || !*json_string_value(value)))
		return server_ecs_fail(c, "InvalidParameterException",
				       "Invalid 'attributes[%zu].value': 1 to 128 characters.", i);
	if (type && !streq(type, "container-instance"))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Invalid 'attributes[%zu].targetType': only container-instance is supported.", i);
	if (put && startswith(name, TAINT_ATTR_PREFIX) && !taint_value_valid(json_string_value(value)))
		return server_ecs_fail(c, "InvalidParameterException",
				       "Invalid 'attributes[%zu].value': a taint is VALUE:EFFECT with EFFECT "
				       "NoSchedule, PreferNoSchedule or NoExecute.",
				       i);
	if (!target)
		return server_ecs_fail(c, "InvalidParameterException",
				       "Invalid 'attributes[%zu].targetId': required.", i);
	_cleanup_free_ char *key = instance_key(cluster, target);
	json_t *inst = NULL;
	if (!key || server_record_get(c->srv, key, &inst, NULL, NULL) < 0)
		return server_ecs_fail(c, "TargetNotFoundException",
				       "Could not find container instance '%s'.", target);
	json_decref(inst);
	*ret_key = TAKE_PTR(key);
	(void)put;
	return 0;
}

static int attrs_apply(struct ecs_call *c, json_t *in, bool remove, json_t **out)
{
	const char *ref;
	_cleanup_free_ char *cluster = NULL;
	json_t *attrs = json_object_get(in, "attributes");
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!json_is_array(attrs) || json_array_size(attrs) == 0 || json_array_size(attrs) > 10)
		return server_ecs_fail(c, "InvalidParameterException", "attributes must have 1 to 10 items.");
	size_t i;
	json_t *a;
	/* validate everything before changing anything */
	json_array_foreach (attrs, i, a) {
		_cleanup_free_ char *key = NULL;
		if (attr_target(c, cluster, a, i, !remove, &key) < 0)
			return -1;
	}
	json_t *result = json_array();
	json_array_foreach (attrs, i, a) {
		_cleanup_free_ char *key = NULL;
		attr_target(c, cluster, a, i, !remove, &key);
		_cleanup_free_ char *ikey = xstrdup(key);
		struct attr_edit e = { a, remove };
		json_t *inst = NULL;
		int r = instance_update(c, ikey, edit_attr, &e, &inst);
		if (r != 0) {
			json_decref(result);
			return r < 0 ? -1
				     : server_ecs_fail(c, "TargetNotFoundException",
						       "Could not find the target.");
		}
		json_t *ra = json_pack("{s:O,s:s,s:O}", "name", json_object_get(a, "name"), "targetType",
				       "container-instance", "targetId",
				       json_object_get(inst, "containerInstanceArn"));
		if (json_object_get(a, "value"))
			json_object_set(ra, "value", json_object_get(a, "value"));
		json_array_append_new(result, ra);
		json_decref(inst);
	}
	*out = json_pack("{s:o}", "attributes", result);
	return 0;
}

int server_ecs_put_attributes(struct ecs_call *c, json_t *in, json_t **out)
{
	return attrs_apply(c, in, false, out);
}

int server_ecs_delete_attributes(struct ecs_call *c, json_t *in, json_t **out)
{
	return attrs_apply(c, in, true, out);
}

int server_ecs_list_attributes(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *type, *name, *value;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "targetType", true, &type) < 0 ||
	    server_ecs_str(c, in, "attributeName", false, &name) < 0 ||
	    server_ecs_str(c, in, "attributeValue", false, &value) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!streq(type, "container-instance"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "targetType must be container-instance.");
	if (value && !name)
		return server_ecs_fail(c, "InvalidParameterException", "attributeValue needs attributeName.");
	json_t *insts;
	if (load_cluster_lists(c, cluster, &insts, NULL) < 0)
		return -1;
	/* page over "arn\x01name" keys */
	json_t *keys = json_array(), *map = json_object();
	size_t i, k;
	json_t *x, *a;
	json_array_foreach (insts, i, x) {
		if (streq(json_string_value(json_object_get(x, "status")), "INACTIVE"))
			continue;
		const char *arn = json_string_value(json_object_get(x, "containerInstanceArn"));
		json_array_foreach (json_object_get(x, "attributes"), k, a) {
			const char *n = json_string_value(json_object_get(a, "name"));
			const char *v = json_string_value(json_object_get(a, "value"));
			if ((name && !streq(n, name)) || (value && !streq_ptr(v, value)))
				continue;
			_cleanup_free_ char *key = xasprintf("%s\x01%s", arn, n);
			json_t *ra = json_pack("{s:s,s:s,s:s}", "name", n, "targetType", "container-instance",
					       "targetId", arn);
			if (v)
				json_object_set_new(ra, "value", json_string(v));
			json_array_append_new(keys, json_string(key));
			json_object_set_new(map, key, ra);
		}
	}
	json_decref(insts);
	/* sort keys (insertion sort: lists are small) */
	for (i = 1; i < json_array_size(keys); i++)
		for (k = i; k > 0 && strcmp(json_string_value(json_array_get(keys, k - 1)),
					    json_string_value(json_array_get(keys, k))) > 0;
		     k--) {
			json_t *t = json_incref(json_array_get(keys, k));
			json_array_set(keys, k, json_array_get(keys, k - 1));
			json_array_set_new(keys, k - 1, t);
		}
	json_t *page = json_object();
	int r = server_ecs_paginate(c, in, keys, 100, "attributes", page);
	if (r == 0) {
		json_t *list = json_array();
		json_array_foreach (json_object_get(page, "attributes"), i, x)
			json_array_append(list, json_object_get(map, json_string_value(x)));
		json_object_set_new(page, "attributes", list);
		*out = page;
	} else {
		json_decref(page);
	}
	json_decref(keys);
	json_decref(map);
	return r;
}
