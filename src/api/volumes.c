/*
 * volumes.c - /volumes routes (local driver, engine/volumes.c).
 */
#include "api/filters.h"
#include "api/routes.h"
#include "common/json.h"

static bool labels_match(const json_t *labels, char **filters);

static bool any_substring(const char *name, char **vals)
{
	if (!vals)
		return true;
	for (char **v = vals; *v; v++)
		if (strstr(name, *v))
			return true;
	return false;
}

/* Keep the volumes matching docker's name/label/driver/dangling filters. */
static int filter_volumes(struct api_call *c, json_t *list, const json_t *f, struct berth_error **err)
{
	_cleanup_strv_ char **names = api_filter_values(f, "name");
	_cleanup_strv_ char **labels = api_filter_values(f, "label");
	_cleanup_strv_ char **drivers = api_filter_values(f, "driver");
	_cleanup_strv_ char **dangling = api_filter_values(f, "dangling");
	int want_dangling = -1;
	if (dangling && dangling[0]) {
		if (!strcasecmp(dangling[0], "true") || streq(dangling[0], "1"))
			want_dangling = 1;
		else if (!strcasecmp(dangling[0], "false") || streq(dangling[0], "0"))
			want_dangling = 0;
		else
			return berth_error_msg(err, EINVAL, "Invalid filter 'dangling=[%s]'", dangling[0]);
	}
	struct engine_container_info **cs = NULL;
	size_t n = 0;
	if (want_dangling >= 0) {
		int r = engine_container_list(c->api->engine, true, &cs, &n, err);
		if (r < 0)
			return r;
	}
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *v = json_array_get(list, i);
		const char *name = json_string_value(json_object_get(v, "Name")) ?: "";
		bool keep = (!names || api_filter_match(names, name)) &&
			    labels_match(json_object_get(v, "Labels"), labels) &&
			    any_substring("local", drivers);
		if (keep && want_dangling >= 0)
			keep = (api_volume_refcount(cs, n, name) == 0) == (want_dangling == 1);
		if (!keep)
			json_array_remove(list, i);
	}
	engine_container_info_list_free(cs, n);
	return 0;
}

void api_volumes_list(struct api_call *c)
{
	static const char *const keys[] = { "name", "label", "driver", "dangling", NULL };
	json_t *list = NULL;
	_cleanup_json_ json_t *f = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = api_filters_parse(http_request_query(c->req, "filters"), keys, &f, &err);
	if (r >= 0)
		r = engine_volume_list(c->api->engine, &list, &err);
	if (r >= 0 && f)
		r = filter_volumes(c, list, f, &err);
	if (r < 0) {
		json_decref(list);
		api_error(c->req, r, err);
	} else {
		http_respond_json(c->req, 200, json_pack("{s:o,s:[]}", "Volumes", list, "Warnings"));
	}
}

void api_volume_create(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, false) < 0)
		return;
	if (body && !json_is_object(body)) {
		http_respond_error(c->req, 400, "request body: expected object, got %s",
				   json_type_name(body));
		return;
	}
	json_t *name = json_object_get(body, "Name");
	if (name && !json_is_string(name)) {
		http_respond_error(c->req, 400, "'Name': expected string, got %s", json_type_name(name));
		return;
	}
	const char *driver = json_string_value(json_object_get(body, "Driver"));
	if (driver && *driver && !streq(driver, "local")) {
		http_respond_error(c->req, 404, "plugin \"%s\" not found", driver);
		return;
	}
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_volume_create_opts(c->api->engine, json_string_value(name),
					  json_object_get(body, "Labels"),
					  json_object_get(body, "DriverOpts"), &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 201, out);
}

void api_volume_inspect(struct api_call *c)
{
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_volume_inspect(c->api->engine, c->param[0], &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_volume_remove(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r =
	    engine_volume_remove(c->api->engine, c->param[0], http_query_bool(c->req, "force", false), &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_empty(c->req, 204);
}

static bool bind_uses(const char *bind, const char *name)
{
	size_t n = strlen(name);
	return bind && strncmp(bind, name, n) == 0 && bind[n] == ':';
}

unsigned api_volume_refcount(struct engine_container_info *const *list, size_t n, const char *name)
{
	unsigned refs = 0;
	for (size_t i = 0; i < n; i++) {
		bool used = false;
		size_t k;
		json_t *el;
		json_array_foreach (json_object_get(list[i]->hostconfig, "Binds"), k, el)
			used = used || bind_uses(json_string_value(el), name);
		json_array_foreach (json_object_get(list[i]->hostconfig, "Mounts"), k, el) {
			const char *type = json_string_value(json_object_get(el, "Type"));
			const char *src = json_string_value(json_object_get(el, "Source"));
			used = used || (type && streq(type, "volume") && src && streq(src, name));
		}
		refs += used;
	}
	return refs;
}

/* Every "k" / "k=v" label filter matches the volume's labels. */
static bool labels_match(const json_t *labels, char **filters)
{
	for (char **f = filters; f && *f; f++) {
		const char *eq = strchr(*f, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*f, (size_t)(eq - *f)) : xstrdup(*f);
		const char *v = json_string_value(json_object_get(labels, k));
		if (!v || (eq && !streq(v, eq + 1)))
			return false;
	}
	return true;
}

void api_volumes_prune(struct api_call *c)
{
	static const char *const keys[] = { "label", "all", NULL };
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *f = NULL, *list = NULL;
	if (api_filters_parse(http_request_query(c->req, "filters"), keys, &f, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	_cleanup_strv_ char **labels = api_filter_values(f, "label");
	int r = engine_volume_list(c->api->engine, &list, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	json_t *deleted = json_array();
	int64_t reclaimed = 0;
	size_t i;
	json_t *v;
	json_array_foreach (list, i, v) {
		const char *name = json_string_value(json_object_get(v, "Name"));
		if (!name || !labels_match(json_object_get(v, "Labels"), labels))
			continue;
		int64_t size = api_dir_usage(json_string_value(json_object_get(v, "Mountpoint")) ?: "");
		_cleanup_error_ struct berth_error *rm_err = NULL;
		if (engine_volume_remove(c->api->engine, name, false, &rm_err) < 0)
			continue; /* in use (-EBUSY) or gone meanwhile */
		json_array_append_new(deleted, json_string(name));
		reclaimed += size;
	}
	http_respond_json(
	    c->req, 200,
	    json_pack("{s:o,s:I}", "VolumesDeleted", deleted, "SpaceReclaimed", (json_int_t)reclaimed));
}
