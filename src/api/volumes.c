/*
 * volumes.c - /volumes routes (local driver, engine/volumes.c).
 */
#include "api/routes.h"
#include "common/json.h"

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
