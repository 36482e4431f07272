/*
 * taskdefs.c - Register/Describe/DeregisterTaskDefinition,
 * ListTaskDefinitions, ListTaskDefinitionFamilies. Revisions are immutable
 * records under /berth/taskdefs/FAMILY/%010d (so key order is revision
 * order); a new revision is written with put-if-absent and retried when two
 * registrations race for the same number.
 */
#include "server/internal.h"
#include "server/taskdef.h"

static char *td_key(const char *family, int64_t rev)
{
	return xasprintf("/berth/taskdefs/%s/%010lld", family, (long long)rev);
}

static int64_t latest_revision(struct server *s, const char *family)
{
	_cleanup_free_ char *prefix = xasprintf("/berth/taskdefs/%s/", family);
	struct store_kv_list l;
	if (store_range(s->store, prefix, NULL, 0, &l, NULL) < 0)
		return -1;
	int64_t rev = l.n ? strtoll(l.kvs[l.n - 1].key + strlen(prefix), NULL, 10) : 0;
	store_kv_list_done(&l);
	return rev;
}

/*
 * berth's scheduling extensions (berthScheduling and berth:* tags) and the
 * placementConstraints, checked by preparing a request against an empty
 * snapshot: a malformed memberOf is refused here, naming its position.
 * Stored in the revision as "berthScheduling" (revisions are immutable:
 * later tag changes do not alter how a revision is placed).
 */
static int taskdef_scheduling(struct ecs_call *c, json_t *in, json_t *td)
{
	json_t *ext = NULL;
	_cleanup_free_ char *msg = NULL;
	if (server_sreq_collect_ext(in, &ext, &msg) < 0)
		return server_ecs_fail(c, "ClientException", "%s", msg);
	if (json_object_size(ext))
		json_object_set(td, "berthScheduling", ext);
	json_decref(ext);
	struct sreq rq;
	struct sreq_input si = {
		td, NULL, NULL, "family:x", server_taskdef_cpu(td), server_taskdef_memory(td)
	};
	struct sched_snapshot *snap = sched_snapshot_new(1);
	struct sched_prepared *p = NULL;
	int r = 0;
	if (server_sreq_build(&rq, &si) < 0 || server_sreq_prepare(&rq, snap, &p) < 0)
		r = server_ecs_fail(c, "ClientException", "%s", rq.msg);
	sched_prepared_free(p);
	sched_snapshot_free(snap);
	server_sreq_done(&rq);
	return r;
}

int server_ecs_register_task_definition(struct ecs_call *c, json_t *in, json_t **out)
{
	json_t *td = NULL;
	struct taskdef_error te;
	if (server_taskdef_validate(in, &td, &te) < 0) {
		server_ecs_fail(c, te.type, "%s", te.msg);
		free(te.msg);
		return -1;
	}
	json_t *tags = json_object_get(in, "tags");
	/* tags checked before anything is written: a refused request leaves no revision behind */
	if ((tags && server_tags_check(c, tags) < 0) || taskdef_scheduling(c, in, td) < 0) {
		json_decref(td);
		return -1;
	}
	const char *family = json_string_value(json_object_get(td, "family"));
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 20; attempt++) {
		int64_t rev = latest_revision(c->srv, family);
		if (rev < 0)
			break;
		rev++;
		_cleanup_free_ char *tail = xasprintf("%s:%lld", family, (long long)rev);
		_cleanup_free_ char *arn = server_arn_make(c->srv, "task-definition", tail);
		json_object_set_new(td, "taskDefinitionArn", json_string(arn));
		json_object_set_new(td, "revision", json_integer(rev));
		json_object_set_new(td, "status", json_string("ACTIVE"));
		json_object_set_new(td, "registeredAt", json_real(server_record_now()));
		json_object_set_new(td, "compatibilities", json_pack("[s]", "EC2"));
		json_object_set_new(td, "requiresAttributes", json_array());
		_cleanup_free_ char *by = xasprintf("arn:aws:iam::%s:root", c->srv->account);
		json_object_set_new(td, "registeredBy", json_string(by));
		_cleanup_free_ char *key = td_key(family, rev);
		bool ok = false;
		if (server_record_cas(c->srv, key, td, 0, &ok, &err) < 0)
			break;
		if (!ok)
			continue;
		if (server_tags_set(c, arn, tags) < 0) {
			json_decref(td);
			return -1;
		}
		*out = json_pack("{s:o,s:o}", "taskDefinition", td, "tags", server_tags_get(c->srv, arn));
		return 0;
	}
	json_decref(td);
	return err ? server_ecs_internal(c, err)
		   : server_ecs_fail(c, "ServerException", "could not allocate a revision");
}

static int resolve(struct ecs_call *c, const char *ref, json_t **ret, bool shared)
{
	const char *s = ref;
	if (startswith(ref, "arn:")) {
		const char *p = strstr(ref, ":task-definition/");
		if (!p)
			return server_ecs_fail(c, "InvalidParameterException",
					       "'%s' is not a task definition ARN.", ref);
		s = p + strlen(":task-definition/");
	}
	_cleanup_free_ char *family = xstrdup(s);
	char *colon = strchr(family, ':');
	int64_t rev = 0;
	if (colon) {
		*colon = '\0';
		char *end;
		rev = strtoll(colon + 1, &end, 10);
		if (*end || rev <= 0)
			return server_ecs_fail(c, "ClientException", "Invalid revision number. Number: %s",
					       colon + 1);
	}
	if (!server_name_valid(family, 255))
		return server_ecs_fail(c, "ClientException", "Unable to describe task definition.");
	json_t *td = NULL;
	if (rev == 0) {
		/* the latest ACTIVE revision */
		_cleanup_free_ char *prefix = xasprintf("/berth/taskdefs/%s/", family);
		json_t *all = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (server_record_list(c->srv, prefix, &all, &err) < 0)
			return server_ecs_internal(c, err);
		for (size_t i = json_array_size(all); i > 0 && !td; i--) {
			json_t *x = json_array_get(all, i - 1);
			if (streq(json_string_value(json_object_get(x, "status")), "ACTIVE"))
				td = json_incref(x);
		}
		json_decref(all);
	} else {
		_cleanup_free_ char *key = td_key(family, rev);
		if ((shared ? server_record_get_shared(c->srv, key, &td, NULL)
			    : server_record_get(c->srv, key, &td, NULL, NULL)) < 0)
			td = NULL;
	}
	if (!td)
		return server_ecs_fail(c, "ClientException", "Unable to describe task definition.");
	*ret = td;
	return 0;
}

int server_taskdef_resolve(struct ecs_call *c, const char *ref, json_t **ret)
{
	return resolve(c, ref, ret, false);
}

int server_taskdef_resolve_shared(struct ecs_call *c, const char *ref, json_t **ret)
{
	return resolve(c, ref, ret, true);
}

int server_taskdef_check_launchable(struct ecs_call *c, const json_t *td)
{
	if (streq_ptr(json_string_value(json_object_get(td, "status")), "INACTIVE"))
		return server_ecs_fail(c, "InvalidParameterException", "TaskDefinition is inactive");
	return 0;
}

int server_taskdef_check_network_config(struct ecs_call *c, const json_t *td, const json_t *in)
{
	const json_t *net = json_object_get(in, "networkConfiguration");
	const char *mode = json_string_value(json_object_get(td, "networkMode"));
	if (net && !json_is_null(net) && !streq(mode ? mode : "bridge", "awsvpc"))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "Network Configuration is not valid for the given networkMode of this task "
		    "definition.");
	return 0;
}

int server_ecs_describe_task_definition(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	if (server_ecs_str(c, in, "taskDefinition", true, &ref) < 0)
		return -1;
	json_t *td;
	if (server_taskdef_resolve(c, ref, &td) < 0)
		return -1;
	json_t *tags = server_tags_get(c->srv, json_string_value(json_object_get(td, "taskDefinitionArn")));
	*out = json_pack("{s:o,s:o}", "taskDefinition", td, "tags", tags);
	return 0;
}

int server_ecs_deregister_task_definition(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	if (server_ecs_str(c, in, "taskDefinition", true, &ref) < 0)
		return -1;
	const char *tail = strstr(ref, ":task-definition/");
	if (!strchr(tail ? tail + strlen(":task-definition/") : ref, ':'))
		return server_ecs_fail(c, "ClientException", "Invalid revision number. Number: %s", ref);
	json_t *td;
	if (server_taskdef_resolve(c, ref, &td) < 0)
		return -1;
	const char *family = json_string_value(json_object_get(td, "family"));
	_cleanup_free_ char *key = td_key(family, json_integer_value(json_object_get(td, "revision")));
	json_object_set_new(td, "status", json_string("INACTIVE"));
	json_object_set_new(td, "deregisteredAt", json_real(server_record_now()));
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_put(c->srv, key, td, &err) < 0) {
		json_decref(td);
		return server_ecs_internal(c, err);
	}
	*out = json_pack("{s:o}", "taskDefinition", td);
	return 0;
}

/* status filter: "ACTIVE" (default), "INACTIVE", or "ALL" (families only). */
static int status_arg(struct ecs_call *c, json_t *in, bool allow_all, const char **ret)
{
	if (server_ecs_str(c, in, "status", false, ret) < 0)
		return -1;
	if (!*ret)
		*ret = "ACTIVE";
	if (!streq(*ret, "ACTIVE") && !streq(*ret, "INACTIVE") && !(allow_all && streq(*ret, "ALL")))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid status '%s'.", *ret);
	return 0;
}

int server_ecs_list_task_definitions(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *prefix, *status, *sort;
	if (server_ecs_str(c, in, "familyPrefix", false, &prefix) < 0 ||
	    status_arg(c, in, false, &status) < 0 || server_ecs_str(c, in, "sort", false, &sort) < 0)
		return -1;
	if (sort && !streq(sort, "ASC") && !streq(sort, "DESC"))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid sort '%s' (ASC or DESC).",
				       sort);
	json_t *all = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, "/berth/taskdefs/", &all, &err) < 0)
		return server_ecs_internal(c, err);
	/* page over "family\x01%010d" sort keys, hand out ARNs */
	json_t *keys = json_array(), *map = json_object();
	size_t i;
	json_t *x;
	json_array_foreach (all, i, x) {
		const char *fam = json_string_value(json_object_get(x, "family"));
		if (!streq(json_string_value(json_object_get(x, "status")), status) ||
		    (prefix && !startswith(fam, prefix)))
			continue;
		int64_t rev = json_integer_value(json_object_get(x, "revision"));
		_cleanup_free_ char *k = xasprintf("%s\x01%010lld", fam, (long long)rev);
		json_array_append_new(keys, json_string(k));
		json_object_set(map, k, json_object_get(x, "taskDefinitionArn"));
	}
	json_decref(all);
	if (sort && streq(sort, "DESC")) {
		/* reverse order: negate revision and family order by paging over complemented keys */
		json_t *rev = json_array();
		for (i = json_array_size(keys); i > 0; i--) {
			const char *k = json_string_value(json_array_get(keys, i - 1));
			_cleanup_free_ char *rk = xasprintf("%08zu\x02%s", json_array_size(keys) - i, k);
			json_array_append_new(rev, json_string(rk));
			json_object_set(map, rk, json_object_get(map, k));
		}
		json_decref(keys);
		keys = rev;
	}
	json_t *page = json_object();
	int r = server_ecs_paginate(c, in, keys, 100, "taskDefinitionArns", page);
	json_decref(keys);
	if (r == 0) {
		json_t *arns = json_array();
		json_array_foreach (json_object_get(page, "taskDefinitionArns"), i, x)
			json_array_append(arns, json_object_get(map, json_string_value(x)));
		json_object_set_new(page, "taskDefinitionArns", arns);
		*out = page;
	} else {
		json_decref(page);
	}
	json_decref(map);
	return r;
}

int server_ecs_list_task_definition_families(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *prefix, *status;
	if (server_ecs_str(c, in, "familyPrefix", false, &prefix) < 0 || status_arg(c, in, true, &status) < 0)
		return -1;
	json_t *all = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_list(c->srv, "/berth/taskdefs/", &all, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *active = json_object(), *seen = json_object();
	size_t i;
	json_t *x;
	json_array_foreach (all, i, x) {
		const char *fam = json_string_value(json_object_get(x, "family"));
		json_object_set_new(seen, fam, json_true());
		if (streq(json_string_value(json_object_get(x, "status")), "ACTIVE"))
			json_object_set_new(active, fam, json_true());
	}
	json_decref(all);
	json_t *fams = json_array();
	const char *fam;
	json_t *v;
	json_object_foreach (seen, fam, v) {
		bool is_active = json_object_get(active, fam) != NULL;
		if ((prefix && !startswith(fam, prefix)) || (streq(status, "ACTIVE") && !is_active) ||
		    (streq(status, "INACTIVE") && is_active))
			continue;
		json_array_append_new(fams, json_string(fam));
	}
	json_decref(active);
	json_decref(seen);
	/* json objects are unordered: sort */
	size_t n = json_array_size(fams);
	const char **names = xcalloc(n ? n : 1, sizeof(char *));
	for (i = 0; i < n; i++)
		names[i] = json_string_value(json_array_get(fams, i));
	for (size_t a = 1; a < n; a++)
		for (size_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
			const char *t = names[b];
			names[b] = names[b - 1];
			names[b - 1] = t;
		}
	json_t *sorted = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(sorted, json_string(names[i]));
	free(names);
	json_decref(fams);
	*out = json_object();
	int r = server_ecs_paginate(c, in, sorted, 100, "families", *out);
	json_decref(sorted);
	return r;
}
