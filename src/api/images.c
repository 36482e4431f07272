/*
 * images.c - /images/... routes over the engine's built-in image store
 * (import, list, inspect, tag, remove). Image names contain '/', so these
 * routes are matched by suffix rather than by the segment router.
 *
 * NEEDSWORK: route to the image library (src/image/: pull, push, load, save,
 * history, prune) once it is merged; the engine side is already behind
 * struct engine_image_ops.
 */
#include "api/routes.h"
#include "common/json.h"
#include "engine/images.h"

static struct engine_images *store(struct api_call *c)
{
	return engine_builtin_images(c->api->engine);
}

static bool no_store(struct api_call *c)
{
	if (store(c))
		return false;
	http_respond_error(c->req, 501, "image routes are served by the image library in this configuration");
	return true;
}

void api_images_list(struct api_call *c)
{
	if (no_store(c))
		return;
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_images_list(store(c), &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_image_inspect(struct api_call *c)
{
	if (no_store(c))
		return;
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_images_inspect(store(c), c->param[0], &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_image_history(struct api_call *c)
{
	if (no_store(c))
		return;
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_images_inspect(store(c), c->param[0], &out, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	json_t *h = json_pack("[{s:O,s:I,s:s,s:O,s:I,s:s}]", "Id", json_object_get(out, "Id"), "Created", (json_int_t)0,
			      "CreatedBy", "", "Tags", json_object_get(out, "RepoTags"), "Size",
			      json_integer_value(json_object_get(out, "Size")), "Comment", "Imported from -");
	json_decref(out);
	http_respond_json(c->req, 200, h);
}

void api_image_tag(struct api_call *c)
{
	if (no_store(c))
		return;
	const char *repo = http_request_query(c->req, "repo");
	const char *tag = http_request_query(c->req, "tag");
	if (!repo || !*repo) {
		http_respond_error(c->req, 400, "repository name must be given");
		return;
	}
	_cleanup_free_ char *ref = tag && *tag ? xasprintf("%s:%s", repo, tag) : xstrdup(repo);
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_images_tag(store(c), c->param[0], ref, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_empty(c->req, 201);
}

static bool image_in_use(void *ctx, const char *id)
{
	struct engine *e = ctx;
	struct engine_container_info **list = NULL;
	size_t n = 0;
	bool used = false;
	engine_container_list(e, true, &list, &n, NULL);
	for (size_t i = 0; i < n; i++)
		used = used || streq(list[i]->image_id, id);
	engine_container_info_list_free(list, n);
	return used;
}

void api_image_remove(struct api_call *c)
{
	if (no_store(c))
		return;
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_images_remove(store(c), c->param[0], http_query_bool(c->req, "force", false), image_in_use,
				     c->api->engine, &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

/* Docker's "changes" (Dockerfile-like lines) for import: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL. */
static int apply_change(json_t *cfg, const char *line, struct berth_error **err)
{
	const char *sp = strchr(line, ' ');
	if (!sp)
		return berth_error_msg(err, EINVAL, "invalid change '%s'", line);
	_cleanup_free_ char *kw = xstrndup(line, (size_t)(sp - line));
	const char *arg = sp + strspn(sp, " ");
	json_t *j = arg[0] == '[' ? json_loads(arg, 0, NULL) : NULL;
	if (!strcasecmp(kw, "CMD") || !strcasecmp(kw, "ENTRYPOINT")) {
		const char *key = !strcasecmp(kw, "CMD") ? "Cmd" : "Entrypoint";
		json_object_set_new(cfg, key, json_is_array(j) ? j : json_pack("[s,s,s]", "/bin/sh", "-c", arg));
		return 0;
	}
	json_decref(j);
	if (!strcasecmp(kw, "WORKDIR") || !strcasecmp(kw, "USER")) {
		json_object_set_new(cfg, !strcasecmp(kw, "USER") ? "User" : "WorkingDir", json_string(arg));
	} else if (!strcasecmp(kw, "ENV")) {
		json_t *env = json_object_get(cfg, "Env");
		if (!env)
			json_object_set_new(cfg, "Env", env = json_array());
		json_array_append_new(env, strchr(arg, '=') ? json_string(arg) : json_sprintf("%s=", arg));
	} else if (!strcasecmp(kw, "LABEL")) {
		const char *eq = strchr(arg, '=');
		if (!eq)
			return berth_error_msg(err, EINVAL, "invalid LABEL '%s'", arg);
		json_t *labels = json_object_get(cfg, "Labels");
		if (!labels)
			json_object_set_new(cfg, "Labels", labels = json_object());
		_cleanup_free_ char *k = xstrndup(arg, (size_t)(eq - arg));
		json_object_set_new(labels, k, json_string(eq + 1));
	} else {
		return berth_error_msg(err, EINVAL, "%s is not a valid change command", kw);
	}
	return 0;
}

/* POST /images/create?fromSrc=-: the body is the rootfs tarball (already in memory, bounded). */
void api_images_create(struct api_call *c)
{
	if (no_store(c))
		return;
	const char *src = http_request_query(c->req, "fromSrc");
	const char *from = http_request_query(c->req, "fromImage");
	if (!src || !streq(src, "-")) {
		http_respond_error(c->req, 404, "pull access denied for %s: pulling images is not available in this "
						"build of the berth daemon (use 'docker import' or 'docker load')",
				   from ? from : (src ? src : "image"));
		return;
	}
	_cleanup_json_ json_t *cfg = json_object();
	_cleanup_error_ struct berth_error *err = NULL;
	const char *changes = http_request_query(c->req, "changes");
	if (changes && *changes && apply_change(cfg, changes, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	const char *repo = http_request_query(c->req, "repo");
	const char *tag = http_request_query(c->req, "tag");
	_cleanup_free_ char *ref = repo && *repo ? (tag && *tag ? xasprintf("%s:%s", repo, tag) : xstrdup(repo)) : NULL;
	size_t len;
	const char *body = http_request_body(c->req, &len);
	_cleanup_free_ char *id = NULL;
	int r = engine_images_import_buffer(store(c), body, len, ref, cfg, &id, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	_cleanup_free_ char *line = xasprintf("{\"status\":\"%s\"}\r\n", id);
	http_respond(c->req, 200, "application/json", xstrdup(line), strlen(line));
}

api_route_fn api_images_route(const char *method, const char *path, char *name)
{
	static const struct {
		const char *m, *suffix;
		api_route_fn fn;
	} rs[] = {
		{ "GET", "/json", api_image_inspect },
		{ "POST", "/tag", api_image_tag },
		{ "GET", "/history", api_image_history },
		{ "DELETE", "", api_image_remove },
	};
	const char *rest = path + strlen("/images/");
	for (size_t i = 0; i < ARRAY_SIZE(rs); i++) {
		if (!streq(method, rs[i].m) || !endswith(rest, rs[i].suffix))
			continue;
		size_t n = strlen(rest) - strlen(rs[i].suffix);
		if (n == 0 || n >= API_PARAM_MAX)
			continue;
		memcpy(name, rest, n);
		name[n] = '\0';
		return rs[i].fn;
	}
	return NULL;
}

/* ---- volumes ---- */

void api_volumes_list(struct api_call *c)
{
	json_t *list = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_volume_list(c->api->engine, &list, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, json_pack("{s:o,s:[]}", "Volumes", list, "Warnings"));
}

void api_volume_create(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, false) < 0)
		return;
	if (body && !json_is_object(body)) {
		http_respond_error(c->req, 400, "request body: expected object, got %s", json_type_name(body));
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
	int r = engine_volume_create(c->api->engine, json_string_value(name), json_object_get(body, "Labels"), &out,
				     &err);
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
	int r = engine_volume_remove(c->api->engine, c->param[0], http_query_bool(c->req, "force", false), &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_empty(c->req, 204);
}
