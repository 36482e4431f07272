/*
 * tags.c - Tag/Untag/ListTagsForResource. Tags of any resource but a task live
 * in one record per ARN (/berth/tags/ARN) as a {key: value} object, so tagging
 * never rewrites the resource itself; a task's are its record's "tags" (those
 * RunTask was given, which DescribeTasks shows), so both APIs see the same
 * ones. The resource must exist (ECS checks too).
 */
#include <strings.h>

#include "common/json.h"
#include "server/internal.h"

#define TAGS_MAX 50

/*
 * A task's tags live in its record ("tags", as RunTask/StartTask wrote them, so DescribeTasks shows them):
 * the record's key for a task ARN, else NULL (other resources' tags are /berth/tags/ARN records).
 */
static char *task_record_key(struct server *s, const char *arn)
{
	_cleanup_free_ char *prefix = xasprintf("arn:aws:ecs:%s:%s:task/", s->region, s->account);
	if (!startswith(arn, prefix) || strstr(arn, ".."))
		return NULL;
	return xasprintf("/berth/tasks/%s", arn + strlen(prefix));
}

static json_t *tags_object(json_t *list)
{
	json_t *obj = json_object(), *x;
	size_t i;
	json_array_foreach (list, i, x)
		if (json_is_string(json_object_get(x, "key")))
			json_object_set_new(obj, json_string_value(json_object_get(x, "key")),
					    json_object_get(x, "value")
						? json_incref(json_object_get(x, "value"))
						: json_string(""));
	return obj;
}

static json_t *tags_list(json_t *obj)
{
	json_t *list = json_array(), *v;
	const char *k;
	json_object_foreach (obj, k, v)
		json_array_append_new(list, json_pack("{s:s,s:O}", "key", k, "value", v));
	return list;
}

json_t *server_tags_get(struct server *s, const char *arn)
{
	_cleanup_free_ char *tkey = task_record_key(s, arn);
	_cleanup_free_ char *key = tkey ? NULL : xasprintf("/berth/tags/%s", arn);
	json_t *rec = NULL;
	if (server_record_get(s, tkey ? tkey : key, &rec, NULL, NULL) < 0)
		return json_array();
	json_t *obj = tkey ? tags_object(json_object_get(rec, "tags")) : json_incref(rec);
	json_t *list = tags_list(obj);
	json_decref(obj);
	json_decref(rec);
	return list;
}

static int tags_update(struct ecs_call *c, const char *arn, json_t *add, json_t *remove)
{
	_cleanup_free_ char *tkey = task_record_key(c->srv, arn);
	_cleanup_free_ char *key = tkey ? xstrdup(tkey) : xasprintf("/berth/tags/%s", arn);
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *rec = NULL;
		int64_t rev = 0;
		int r = server_record_get(c->srv, key, &rec, &rev, &err);
		if (r == -ENOENT && tkey)
			return server_ecs_fail(c, "ResourceNotFoundException",
					       "The specified resource could not be found.");
		if (r == -ENOENT)
			rec = json_object();
		else if (r < 0)
			return server_ecs_internal(c, err);
		json_t *obj = tkey ? tags_object(json_object_get(rec, "tags")) : json_incref(rec);
		size_t i;
		json_t *x;
		json_array_foreach (add, i, x)
			json_object_set(obj, json_string_value(json_object_get(x, "key")),
					json_object_get(x, "value"));
		json_array_foreach (remove, i, x)
			json_object_del(obj, json_string_value(x));
		if (json_object_size(obj) > TAGS_MAX) {
			json_decref(obj);
			json_decref(rec);
			return server_ecs_fail(c, "InvalidParameterException",
					       "A resource can have at most %d tags.", TAGS_MAX);
		}
		if (tkey)
			json_object_set_new(rec, "tags", tags_list(obj));
		json_decref(obj);
		bool ok = false;
		r = server_record_cas(c->srv, key, rec, rev, &ok, &err);
		json_decref(rec);
		if (r < 0)
			return server_ecs_internal(c, err);
		if (ok)
			return 0;
	}
	return server_ecs_fail(c, "ServerException", "tags of '%s' are being changed concurrently; retry",
			       arn);
}

int server_tags_check(struct ecs_call *c, json_t *tags)
{
	if (!json_is_array(tags))
		return server_ecs_fail(c, "SerializationException", "'tags': expected a list");
	size_t i;
	json_t *x;
	json_array_foreach (tags, i, x) {
		const char *k = json_string_value(json_object_get(x, "key"));
		json_t *v = json_object_get(x, "value");
		if (!json_is_object(x) || (v && !json_is_string(v)))
			return server_ecs_fail(c, "SerializationException",
					       "'tags[%zu]': expected {key, value} strings", i);
		if (!k || !*k || strlen(k) > 128 || (v && strlen(json_string_value(v)) > 256))
			return server_ecs_fail(c, "InvalidParameterException",
					       "Invalid 'tags[%zu]': key 1-128 characters, value up to 256.",
					       i);
		if (!strncasecmp(k, "aws:", 4))
			return server_ecs_fail(
			    c, "InvalidParameterException",
			    "Invalid 'tags[%zu]': keys beginning with 'aws:' are reserved.", i);
		if (!v)
			json_object_set_new(x, "value", json_string(""));
	}
	if (json_array_size(tags) > TAGS_MAX)
		return server_ecs_fail(c, "InvalidParameterException",
				       "Invalid 'tags': at most %d tags per resource.", TAGS_MAX);
	return 0;
}

int server_tags_set(struct ecs_call *c, const char *arn, json_t *tags)
{
	if (!tags || json_is_null(tags))
		return 0;
	if (server_tags_check(c, tags) < 0)
		return -1;
	return tags_update(c, arn, tags, NULL);
}

/* 0 when arn names an existing cluster, task definition, container instance or task. */
static int resource_exists(struct ecs_call *c, const char *arn)
{
	_cleanup_free_ char *prefix = xasprintf("arn:aws:ecs:%s:%s:", c->srv->region, c->srv->account);
	if (!startswith(arn, prefix))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid resource ARN '%s'.", arn);
	const char *rest = arn + strlen(prefix);
	_cleanup_free_ char *key = NULL;
	if (startswith(rest, "cluster/")) {
		key = xasprintf("/berth/clusters/%s", rest + 8);
	} else if (startswith(rest, "task-definition/")) {
		json_t *td;
		if (server_taskdef_resolve(c, arn, &td) < 0)
			return server_ecs_fail(c, "ResourceNotFoundException",
					       "The specified resource could not be found.");
		json_decref(td);
		return 0;
	} else if (startswith(rest, "container-instance/")) {
		key = xasprintf("/berth/instances/%s", rest + strlen("container-instance/"));
	} else if (startswith(rest, "service/")) {
		key = xasprintf("/berth/services/%s", rest + strlen("service/"));
	} else if (startswith(rest, "task/")) {
		key = xasprintf("/berth/tasks/%s", rest + strlen("task/"));
	} else {
		return server_ecs_fail(c, "InvalidParameterException", "Invalid resource ARN '%s'.", arn);
	}
	struct store_kv kv;
	int r = strstr(key, "..") ? -ENOENT : store_get(c->srv->store, key, &kv, NULL);
	if (r < 0)
		return server_ecs_fail(c, "ResourceNotFoundException",
				       "The specified resource could not be found.");
	store_kv_done(&kv);
	return 0;
}

int server_ecs_tag_resource(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *arn;
	json_t *tags = json_object_get(in, "tags");
	if (server_ecs_str(c, in, "resourceArn", true, &arn) < 0)
		return -1;
	if (!tags)
		return server_ecs_fail(c, "InvalidParameterException", "tags can not be blank.");
	if (server_tags_check(c, tags) < 0 || resource_exists(c, arn) < 0 ||
	    server_service_sched_tags(c, arn, tags, NULL) < 0) /* berth:rebalance...: rebalance.c */
		return -1;
	return tags_update(c, arn, tags, NULL);
}

int server_ecs_untag_resource(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *arn;
	json_t *keys;
	if (server_ecs_str(c, in, "resourceArn", true, &arn) < 0 ||
	    server_ecs_strv(c, in, "tagKeys", &keys) < 0)
		return -1;
	if (!keys)
		return server_ecs_fail(c, "InvalidParameterException", "tagKeys can not be blank.");
	if (resource_exists(c, arn) < 0 || server_service_sched_tags(c, arn, NULL, keys) < 0)
		return -1;
	return tags_update(c, arn, NULL, keys);
}

int server_ecs_list_tags_for_resource(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *arn;
	if (server_ecs_str(c, in, "resourceArn", true, &arn) < 0 || resource_exists(c, arn) < 0)
		return -1;
	*out = json_pack("{s:o}", "tags", server_tags_get(c->srv, arn));
	return 0;
}

/* Append key=value to list unless the key is there already (the caller's own tags win). */
static void tags_add_missing(json_t *list, const char *key, json_t *value)
{
	size_t i;
	json_t *x;
	json_array_foreach (list, i, x)
		if (streq_ptr(json_string_value(json_object_get(x, "key")), key))
			return;
	json_array_append_new(list, json_pack("{s:s,s:O}", "key", key, "value", value));
}

static void tags_add_from(json_t *list, json_t *from)
{
	size_t i;
	json_t *x;
	json_array_foreach (from, i, x)
		tags_add_missing(list, json_string_value(json_object_get(x, "key")),
				 json_object_get(x, "value"));
}

json_t *server_task_tags(struct server *s, const char *cluster, json_t *own, json_t *td, json_t *svc,
			 const char *propagate, bool managed)
{
	json_t *tags = own ? json_deep_copy(own) : json_array();
	if (streq_ptr(propagate, "TASK_DEFINITION") && td) {
		_cleanup_json_ json_t *t =
		    server_tags_get(s, json_string_value(json_object_get(td, "taskDefinitionArn")));
		tags_add_from(tags, t);
	}
	if (streq_ptr(propagate, "SERVICE") && svc) {
		_cleanup_json_ json_t *t =
		    server_tags_get(s, json_string_value(json_object_get(svc, "serviceArn")));
		tags_add_from(tags, t);
	}
	if (managed) {
		_cleanup_json_ json_t *cn = json_string(cluster);
		tags_add_missing(tags, "aws:ecs:clusterName", cn);
		if (svc)
			tags_add_missing(tags, "aws:ecs:serviceName", json_object_get(svc, "serviceName"));
	}
	if (json_array_size(tags) > TAGS_MAX) /* the caller's own first: keep as many as a task may have */
		while (json_array_size(tags) > TAGS_MAX)
			json_array_remove(tags, json_array_size(tags) - 1);
	return tags;
}
