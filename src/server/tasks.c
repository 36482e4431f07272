/*
 * tasks.c - RunTask, StartTask, StopTask, DescribeTasks, ListTasks.
 *
 * Placement happens inside the API call so RunTask can answer with the
 * placed tasks and the failures at once (as ECS does). Any replica may place:
 * it reads the cluster's placement token (/berth/placement/CLUSTER), plans
 * from the instances and tasks it read, and writes the new tasks together
 * with a bumped token in one transaction that compares the token's revision;
 * a concurrent placement makes the comparison fail and the call re-plans. So
 * two replicas never overcommit a node.
 *
 * Task records then move PROVISIONING -> PENDING -> RUNNING -> STOPPED as the
 * node's agent reports (agent.c); the leader's controllers (leader.c) stop the
 * tasks of nodes that stay away too long.
 */
#include "server/internal.h"
#include "server/placement.h"
#include "server/taskdef.h"

#define TASKS_MAX_COUNT 10

bool task_active(json_t *task)
{
	return !streq_ptr(json_string_value(json_object_get(task, "lastStatus")), "STOPPED");
}

static void set_containers(json_t *task, const char *status)
{
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(task, "containers"), i, c)
		if (!streq_ptr(json_string_value(json_object_get(c, "lastStatus")), "STOPPED"))
			json_object_set_new(c, "lastStatus", json_string(status));
}

int task_stop_now(struct server *s, const char *key, json_t *task, const char *code, const char *reason,
		  struct berth_error **err)
{
	double now = record_now();
	json_object_set_new(task, "lastStatus", json_string("STOPPED"));
	json_object_set_new(task, "desiredStatus", json_string("STOPPED"));
	if (!json_object_get(task, "stopCode"))
		json_object_set_new(task, "stopCode", json_string(code));
	if (!json_object_get(task, "stoppedReason"))
		json_object_set_new(task, "stoppedReason", json_string(reason));
	if (!json_object_get(task, "stoppingAt"))
		json_object_set_new(task, "stoppingAt", json_real(now));
	json_object_set_new(task, "stoppedAt", json_real(now));
	json_object_set_new(task, "executionStoppedAt", json_real(now));
	set_containers(task, "STOPPED");
	json_object_set_new(task, "version",
			    json_integer(json_integer_value(json_object_get(task, "version")) + 1));
	return record_put(s, key, task, err);
}

struct run_args {
	json_t *td, *overrides, *constraints, *strategies;
	const char *group, *started_by;
	int64_t count;
	json_t *explicit_instances; /* StartTask: instance refs, one task each */
	json_t *tags;
};

static json_t *new_task(struct server *s, const char *cluster, json_t *cl, json_t *inst, struct run_args *a,
			int64_t cpu, int64_t mem)
{
	_cleanup_free_ char *id = uuid_new();
	_cleanup_free_ char *tail = xasprintf("%s/%s", cluster, id);
	_cleanup_free_ char *arn = arn_make(s, "task", tail);
	char cpus[32], mems[32];
	snprintf(cpus, sizeof(cpus), "%lld", (long long)cpu);
	snprintf(mems, sizeof(mems), "%lld", (long long)mem);
	json_t *t = json_pack("{s:s,s:O,s:O,s:O,s:s,s:s,s:s,s:s,s:s,s:I,s:f,s:s,s:[],s:[],s:O}", "taskArn",
			      arn, "clusterArn", json_object_get(cl, "clusterArn"), "taskDefinitionArn",
			      json_object_get(a->td, "taskDefinitionArn"), "containerInstanceArn",
			      json_object_get(inst, "containerInstanceArn"), "lastStatus", "PROVISIONING",
			      "desiredStatus", "RUNNING", "cpu", cpus, "memory", mems, "group", a->group,
			      "version", (json_int_t)1, "createdAt", record_now(), "launchType", "EC2",
			      "attachments", "tags", "overrides", a->overrides);
	if (a->started_by)
		json_object_set_new(t, "startedBy", json_string(a->started_by));
	if (a->tags)
		json_object_set(t, "tags", a->tags);
	size_t i;
	json_t *a2;
	json_array_foreach (json_object_get(inst, "attributes"), i, a2)
		if (streq_ptr(json_string_value(json_object_get(a2, "name")), "ecs.availability-zone"))
			json_object_set(t, "availabilityZone", json_object_get(a2, "value"));
	json_t *containers = json_array();
	json_t *c;
	json_array_foreach (json_object_get(a->td, "containerDefinitions"), i, c) {
		_cleanup_free_ char *cid = uuid_new();
		_cleanup_free_ char *ctail = xasprintf("%s/%s/%s", cluster, id, cid);
		_cleanup_free_ char *carn = arn_make(s, "container", ctail);
		json_t *ct =
		    json_pack("{s:s,s:s,s:O,s:O,s:s,s:[],s:[]}", "containerArn", carn, "taskArn", arn, "name",
			      json_object_get(c, "name"), "image", json_object_get(c, "image"), "lastStatus",
			      "PENDING", "networkBindings", "networkInterfaces");
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(json_object_get(c, "cpu")));
		json_object_set_new(ct, "cpu", json_string(buf));
		if (json_object_get(c, "memory")) {
			snprintf(buf, sizeof(buf), "%lld",
				 (long long)json_integer_value(json_object_get(c, "memory")));
			json_object_set_new(ct, "memory", json_string(buf));
		}
		json_object_set(ct, "essential", json_object_get(c, "essential"));
		json_array_append_new(containers, ct);
	}
	json_object_set_new(t, "containers", containers);
	return t;
}

/* Task cpu/memory after overrides. */
static void task_size(struct run_args *a, int64_t *cpu, int64_t *mem)
{
	*cpu = taskdef_cpu(a->td);
	*mem = taskdef_memory(a->td);
	const char *oc = json_string_value(json_object_get(a->overrides, "cpu"));
	const char *om = json_string_value(json_object_get(a->overrides, "memory"));
	if (oc)
		*cpu = strtoll(oc, NULL, 10);
	if (om)
		*mem = strtoll(om, NULL, 10);
}

/* One placement attempt: 1 done, 0 conflict (retry), -1 error. */
static int place_once(struct ecs_call *c, const char *cluster, json_t *cl, struct run_args *a,
		      json_t *out_tasks, json_t *out_failures)
{
	_cleanup_free_ char *token_key = xasprintf("/berth/placement/%s", cluster);
	struct store_kv tok = { 0 };
	int64_t tok_rev = store_get(c->srv->store, token_key, &tok, NULL) == 0 ? tok.mod_revision : 0;
	store_kv_done(&tok);
	_cleanup_free_ char *ip = xasprintf("/berth/instances/%s/", cluster);
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	json_t *insts = NULL, *tasks = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (record_list(c->srv, ip, &insts, &err) < 0 || record_list(c->srv, tp, &tasks, &err) < 0) {
		json_decref(insts);
		return ecs_internal(c, err);
	}
	/* candidate nodes: every registered instance (explicit ones for StartTask) */
	json_t *chosen = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (insts, i, x) {
		const char *st = json_string_value(json_object_get(x, "status"));
		if (!streq(st, "INACTIVE"))
			json_array_append(chosen, x);
	}
	int r = 0;
	if (json_array_size(chosen) == 0) {
		r = ecs_fail(c, "InvalidParameterException",
			     "No Container Instances were found in your cluster.");
		goto out;
	}
	int64_t cpu, mem;
	task_size(a, &cpu, &mem);
	size_t n = json_array_size(chosen);
	struct placement_node *nodes = xcalloc(n, sizeof(*nodes));
	json_array_foreach (chosen, i, x) {
		json_t *v = instance_view(c->srv, x, tasks);
		json_t *rem = json_object_get(v, "remainingResources");
		nodes[i].id = json_string_value(json_object_get(x, "containerInstanceArn"));
		nodes[i].active = streq(json_string_value(json_object_get(x, "status")), "ACTIVE");
		nodes[i].connected = json_is_true(json_object_get(v, "agentConnected"));
		nodes[i].cpu = json_integer_value(json_object_get(json_array_get(rem, 0), "integerValue"));
		nodes[i].memory = json_integer_value(json_object_get(json_array_get(rem, 1), "integerValue"));
		nodes[i].attributes = json_object_get(x, "attributes");
		size_t k;
		json_t *t;
		json_array_foreach (tasks, k, t)
			nodes[i].group_tasks +=
			    task_active(t) &&
			    streq_ptr(json_string_value(json_object_get(t, "group")), a->group) &&
			    streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")),
				      nodes[i].id);
		json_decref(v);
	}
	size_t want = a->explicit_instances ? json_array_size(a->explicit_instances) : (size_t)a->count;
	struct placement_result *res = xcalloc(want, sizeof(*res));
	char *detail = NULL;
	if (a->explicit_instances) {
		/* StartTask: each listed instance gets one task if it can hold it */
		json_array_foreach (a->explicit_instances, i, x) {
			const char *ref = arn_tail(json_string_value(x));
			res[i].node = -1;
			res[i].reason = "MISSING";
			for (size_t k = 0; k < n; k++)
				if (streq(arn_tail(nodes[k].id), ref)) {
					struct placement_request one = { cpu, mem, 1, NULL, NULL };
					placement_place(&one, &nodes[k], 1, &res[i], detail ? NULL : &detail);
					if (res[i].node == 0)
						res[i].node = (int)k;
				}
		}
	} else {
		struct placement_request rq = { cpu, mem, (int)a->count, a->constraints, a->strategies };
		placement_place(&rq, nodes, n, res, &detail);
	}
	struct store_op *ops = xcalloc(want + 1, sizeof(*ops));
	char **vals = xcalloc(want + 1, sizeof(char *)), **keys = xcalloc(want + 1, sizeof(char *));
	size_t nops = 0;
	json_t *placed = json_array();
	for (i = 0; i < want; i++) {
		if (res[i].node < 0) {
			json_t *f = json_pack("{s:s}", "reason", res[i].reason);
			if (a->explicit_instances)
				json_object_set(f, "arn", json_array_get(a->explicit_instances, i));
			if (detail)
				json_object_set_new(f, "detail", json_string(detail));
			json_array_append_new(out_failures, f);
			continue;
		}
		json_t *t =
		    new_task(c->srv, cluster, cl, json_array_get(chosen, (size_t)res[i].node), a, cpu, mem);
		keys[nops] = xasprintf("/berth/tasks/%s/%s", cluster,
				       arn_tail(json_string_value(json_object_get(t, "taskArn"))));
		vals[nops] = json_dumps(t, JSON_COMPACT);
		ops[nops] = (struct store_op){ STORE_OP_PUT, keys[nops], vals[nops], strlen(vals[nops]), 0 };
		nops++;
		json_array_append_new(placed, t);
	}
	ops[nops++] = (struct store_op){ STORE_OP_PUT, token_key, "x", 1, 0 };
	struct store_cmp cmp = { token_key, tok_rev ? STORE_CMP_MOD : STORE_CMP_CREATE, STORE_CMP_EQUAL,
				 tok_rev };
	bool ok = false;
	if (store_txn(c->srv->store, &cmp, 1, ops, nops, &ok, NULL, &err) < 0) {
		r = ecs_internal(c, err);
	} else if (ok) {
		json_array_extend(out_tasks, placed);
		r = 1;
	} else {
		json_array_clear(out_failures);
	}
	json_decref(placed);
	for (i = 0; i < nops; i++) {
		free(keys[i]);
		free(vals[i]);
	}
	free(keys);
	free(vals);
	free(ops);
	free(res);
	free(detail);
	free(nodes);
out:
	json_decref(chosen);
	json_decref(insts);
	json_decref(tasks);
	return r;
}

static int run_common(struct ecs_call *c, json_t *in, bool start, json_t **out)
{
	const char *ref, *tdref, *group, *started_by, *launch;
	struct run_args a = { .count = 1 };
	_cleanup_free_ char *cluster = NULL;
	json_t *cl = NULL;
	if (ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    ecs_str(c, in, "taskDefinition", true, &tdref) < 0 ||
	    ecs_str(c, in, "group", false, &group) < 0 ||
	    ecs_str(c, in, "startedBy", false, &started_by) < 0 ||
	    ecs_str(c, in, "launchType", false, &launch) < 0 ||
	    ecs_int(c, in, "count", 1, TASKS_MAX_COUNT, &a.count) < 0)
		return -1;
	if (start && (ecs_strv(c, in, "containerInstances", &a.explicit_instances) < 0))
		return -1;
	if (start &&
	    (json_array_size(a.explicit_instances) == 0 || json_array_size(a.explicit_instances) > 10))
		return ecs_fail(c, "InvalidParameterException",
				"containerInstances must have 1 to 10 items.");
	if (launch && !streq(launch, "EC2") && !streq(launch, "EXTERNAL"))
		return ecs_fail(c, "InvalidParameterException", "launchType '%s' is not supported (EC2).",
				launch);
	if (started_by && strlen(started_by) > 128)
		return ecs_fail(c, "InvalidParameterException", "startedBy can be at most 128 characters.");
	a.overrides = json_object_get(in, "overrides");
	a.constraints = json_object_get(in, "placementConstraints");
	a.strategies = json_object_get(in, "placementStrategy");
	a.tags = json_object_get(in, "tags");
	if ((a.overrides && !json_is_object(a.overrides)) ||
	    (a.constraints && !json_is_array(a.constraints)) ||
	    (a.strategies && !json_is_array(a.strategies)) || (a.tags && !json_is_array(a.tags)))
		return ecs_fail(
		    c, "SerializationException",
		    "overrides must be an object; placementConstraints, placementStrategy and tags lists.");
	struct placement_request check = { 0, 0, 0, a.constraints, a.strategies };
	_cleanup_free_ char *pmsg = NULL;
	if (placement_check(&check, &pmsg) < 0)
		return ecs_fail(c, "InvalidParameterException", "%s", pmsg);
	if (cluster_resolve(c, ref, &cl, &cluster) < 0)
		return -1;
	if (taskdef_resolve(c, tdref, &a.td) < 0) {
		json_decref(cl);
		return -1;
	}
	_cleanup_free_ char *def_group =
	    xasprintf("family:%s", json_string_value(json_object_get(a.td, "family")));
	a.group = group ? group : def_group;
	a.started_by = started_by;
	json_t *ov = a.overrides ? json_deep_copy(a.overrides) : json_object();
	if (!json_object_get(ov, "containerOverrides"))
		json_object_set_new(ov, "containerOverrides", json_array());
	if (!json_object_get(ov, "inferenceAcceleratorOverrides"))
		json_object_set_new(ov, "inferenceAcceleratorOverrides", json_array());
	a.overrides = ov;
	json_t *tasks = json_array(), *failures = json_array();
	int r = 0;
	for (int attempt = 0; attempt < 50 && r == 0; attempt++)
		r = place_once(c, cluster, cl, &a, tasks, failures);
	if (r == 0)
		r = ecs_fail(c, "ServerException",
			     "placement kept conflicting with concurrent placements; retry");
	json_decref(ov);
	json_decref(a.td);
	json_decref(cl);
	if (r < 0) {
		json_decref(tasks);
		json_decref(failures);
		return -1;
	}
	*out = json_pack("{s:o,s:o}", "tasks", tasks, "failures", failures);
	return 0;
}

int ecs_run_task(struct ecs_call *c, json_t *in, json_t **out)
{
	return run_common(c, in, false, out);
}

int ecs_start_task(struct ecs_call *c, json_t *in, json_t **out)
{
	return run_common(c, in, true, out);
}

static char *task_key(const char *cluster, const char *ref)
{
	const char *id = arn_tail(ref);
	return name_valid(id, 64) ? xasprintf("/berth/tasks/%s/%s", cluster, id) : NULL;
}

int ecs_stop_task(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *tref, *reason;
	_cleanup_free_ char *cluster = NULL;
	if (ecs_str(c, in, "cluster", false, &ref) < 0 || ecs_str(c, in, "task", true, &tref) < 0 ||
	    ecs_str(c, in, "reason", false, &reason) < 0 || cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (reason && strlen(reason) > 255)
		return ecs_fail(c, "InvalidParameterException", "reason can be at most 255 characters.");
	_cleanup_free_ char *key = task_key(cluster, tref);
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *t = NULL;
		int64_t rev;
		if (!key || record_get(c->srv, key, &t, &rev, NULL) < 0)
			return ecs_fail(c, "InvalidParameterException", "The referenced task was not found.");
		if (streq_ptr(json_string_value(json_object_get(t, "desiredStatus")), "STOPPED")) {
			*out = json_pack("{s:o}", "task", t);
			return 0;
		}
		json_object_set_new(t, "desiredStatus", json_string("STOPPED"));
		json_object_set_new(t, "stopCode", json_string("UserInitiated"));
		json_object_set_new(t, "stoppedReason",
				    json_string(reason ? reason : "Task stopped by user"));
		json_object_set_new(t, "stoppingAt", json_real(record_now()));
		json_object_set_new(t, "version",
				    json_integer(json_integer_value(json_object_get(t, "version")) + 1));
		bool ok = false;
		if (record_cas(c->srv, key, t, rev, &ok, &err) < 0) {
			json_decref(t);
			return ecs_internal(c, err);
		}
		if (ok) {
			*out = json_pack("{s:o}", "task", t);
			return 0;
		}
		json_decref(t);
	}
	return ecs_fail(c, "ServerException", "task changed concurrently; retry");
}

int ecs_describe_tasks(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	json_t *refs;
	_cleanup_free_ char *cluster = NULL;
	if (ecs_str(c, in, "cluster", false, &ref) < 0 || ecs_strv(c, in, "tasks", &refs) < 0 ||
	    cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!refs || json_array_size(refs) == 0 || json_array_size(refs) > 100)
		return ecs_fail(c, "InvalidParameterException", "tasks must have 1 to 100 items.");
	json_t *list = json_array(), *failures = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (refs, i, x) {
		_cleanup_free_ char *key = task_key(cluster, json_string_value(x));
		json_t *t = NULL;
		if (key && record_get(c->srv, key, &t, NULL, NULL) == 0)
			json_array_append_new(list, t);
		else
			json_array_append_new(failures,
					      json_pack("{s:O,s:s}", "arn", x, "reason", "MISSING"));
	}
	*out = json_pack("{s:o,s:o}", "tasks", list, "failures", failures);
	return 0;
}

int ecs_list_tasks(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *inst, *family, *started_by, *service, *desired, *launch;
	_cleanup_free_ char *cluster = NULL;
	if (ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    ecs_str(c, in, "containerInstance", false, &inst) < 0 ||
	    ecs_str(c, in, "family", false, &family) < 0 ||
	    ecs_str(c, in, "startedBy", false, &started_by) < 0 ||
	    ecs_str(c, in, "serviceName", false, &service) < 0 ||
	    ecs_str(c, in, "desiredStatus", false, &desired) < 0 ||
	    ecs_str(c, in, "launchType", false, &launch) < 0 || cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!desired)
		desired = "RUNNING";
	if (!streq(desired, "RUNNING") && !streq(desired, "PENDING") && !streq(desired, "STOPPED"))
		return ecs_fail(c, "InvalidParameterException", "Invalid desiredStatus '%s'.", desired);
	if (family && startswith(family, "arn:"))
		return ecs_fail(c, "InvalidParameterException", "family must be a family name.");
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	json_t *tasks = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (record_list(c->srv, tp, &tasks, &err) < 0)
		return ecs_internal(c, err);
	_cleanup_free_ char *fam_group = family ? xasprintf(":task-definition/%s:", family) : NULL;
	json_t *arns = json_array();
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *cia = json_string_value(json_object_get(t, "containerInstanceArn"));
		const char *tda = json_string_value(json_object_get(t, "taskDefinitionArn"));
		if (!streq_ptr(json_string_value(json_object_get(t, "desiredStatus")), desired) ||
		    (inst && !streq(arn_tail(cia ? cia : ""), arn_tail(inst))) ||
		    (family && !strstr(tda ? tda : "", fam_group)) ||
		    (started_by &&
		     !streq_ptr(json_string_value(json_object_get(t, "startedBy")), started_by)) ||
		    service)
			continue;
		json_array_append(arns, json_object_get(t, "taskArn"));
	}
	json_decref(tasks);
	/* record keys are cluster/id, so ARNs come sorted already */
	*out = json_object();
	int r = ecs_paginate(c, in, arns, 100, "taskArns", *out);
	json_decref(arns);
	return r;
}
