/*
 * tags.c - Tag/Untag/ListTagsForResource. Tags of any resource live in one
 * record per ARN (/berth/tags/ARN) as a {key: value} object, so tagging never
 * rewrites the resource itself. The resource must exist (ECS checks too).
 */
#include <strings.h>

#include "server/internal.h"

#define TAGS_MAX 50

json_t *server_tags_get(struct server *s, const char *arn)
{
	_cleanup_free_ char *key = xasprintf("/berth/tags/%s", arn);
	json_t *obj = NULL, *list = json_array();
	if (server_record_get(s, key, &obj, NULL, NULL) < 0)
		return list;
	const char *k;
	json_t *v;
	json_object_foreach (obj, k, v)
		json_array_append_new(list, json_pack("{s:s,s:O}", "key", k, "value", v));
	json_decref(obj);
	return list;
}

static int tags_update(struct ecs_call *c, const char *arn, json_t *add, json_t *remove)
{
	_cleanup_free_ char *key = xasprintf("/berth/tags/%s", arn);
	_cleanup_error_ struct berth_error *err = NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *obj = NULL;
		int64_t rev = 0;
		int r = server_record_get(c->srv, key, &obj, &rev, &err);
		if (r == -ENOENT)
			obj = json_object();
		else if (r < 0)
			return server_ecs_internal(c, err);
		size_t i;
		json_t *x;
		json_array_foreach (add, i, x)
			json_object_set(obj, json_string_value(json_object_get(x, "key")),
					json_object_get(x, "value"));
		json_array_foreach (remove, i, x)
			json_object_del(obj, json_string_value(x));
		if (json_object_size(obj) > TAGS_MAX) {
			json_decref(obj);
			return server_ecs_fail(c, "InvalidParameterException",
					"A resource can have at most %d tags.", TAGS_MAX);
		}
		bool ok = false;
		r = server_record_cas(c->srv, key, obj, rev, &ok, &err);
		json_decref(obj);
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
					"Invalid 'tags[%zu]': key 1-128 characters, value up to 256.", i);
		if (!strncasecmp(k, "aws:", 4))
			return server_ecs_fail(c, "InvalidParameterException",
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
