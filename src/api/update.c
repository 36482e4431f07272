/*
 * update.c - POST /containers/{id}/update (docker update): the body is
 * docker's UpdateConfig (resource fields of HostConfig + RestartPolicy);
 * semantics live in engine/update.c.
 */
#include "api/routes.h"
#include "common/json.h"

void api_container_update(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *warnings = NULL;
	int r = engine_container_update(c->api->engine, c->param[0], body, &warnings, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	http_respond_json(c->req, 200, json_pack("{s:o}", "Warnings", warnings));
}
