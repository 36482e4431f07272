/*
 * containers.c - /containers/... routes: parse docker's query and body,
 * call the engine, format docker's responses.
 */
#include <signal.h>
#include <sys/socket.h>

#include "host/host.h"
#include "api/filters.h"
#include "api/routes.h"
#include "common/json.h"
#include "common/util.h"

#define CALL_ERR(c, r, err) api_error((c)->req, (r), (err))

/* ?filters= (NULL when absent); on failure *ret < 0 and a 400 has been sent. */
static json_t *query_filters(struct api_call *c, int *ret)
{
	const char *f = http_request_query(c->req, "filters");
	json_t *j = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	*ret = api_filters_parse(f, NULL, &j, &err);
	if (*ret < 0)
		http_respond_error(c->req, 400, "invalid filter '%s'", f);
	return j;
}

void api_containers_list(struct api_call *c)
{
	bool all = http_query_bool(c->req, "all", false);
	const char *lim = http_request_query(c->req, "limit");
	int64_t limit = -1;
	if (lim && *lim && (util_parse_int64(lim, &limit) < 0)) {
		http_respond_error(c->req, 400, "invalid limit '%s'", lim);
		return;
	}
	if (limit > 0)
		all = true;
	struct engine_container_info **list = NULL;
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_list(c->api->engine, true, &list, &n, &err);
	if (r < 0) {
		CALL_ERR(c, r, err);
		return;
	}
	struct api_ps_filter *f = NULL;
	r = api_ps_filter_new(http_request_query(c->req, "filters"), c->api->images, list, n, &f, &err);
	if (r < 0) {
		engine_container_info_list_free(list, n);
		CALL_ERR(c, r, err);
		return;
	}
	/* without all, running containers only: a status filter implies all (dockerd) */
	if (api_ps_filter_has(f, "status"))
		all = true;
	json_t *out = json_array();
	for (size_t i = 0; i < n && (limit <= 0 || (int64_t)json_array_size(out) < limit); i++) {
		if (!all && list[i]->state != ENGINE_RUNNING && list[i]->state != ENGINE_PAUSED &&
		    list[i]->state != ENGINE_RESTARTING)
			continue;
		json_t *s = host_container_summary(c->api->host, list[i], api_container_summary(list[i]));
		if (api_ps_filter_match(f, list[i], s))
			json_array_append_new(out, s);
		else
			json_decref(s);
	}
	api_ps_filter_free(f);
	engine_container_info_list_free(list, n);
	http_respond_json(c->req, 200, out);
}

void api_container_create(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	if (!json_is_object(body)) {
		http_respond_error(c->req, 400, "request body: expected object, got %s",
				   json_type_name(body));
		return;
	}
	_cleanup_json_ json_t *cfg = json_deep_copy(body);
	_cleanup_json_ json_t *hc = json_incref(json_object_get(cfg, "HostConfig"));
	json_object_del(cfg, "HostConfig");
	_cleanup_json_ json_t *nc = json_incref(json_object_get(cfg, "NetworkingConfig"));
	json_object_del(cfg, "NetworkingConfig");
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *id = NULL;
	int r =
	    host_container_create(c->api->host, http_request_query(c->req, "name"), cfg, hc, nc, &id, &err);
	if (r < 0) {
		CALL_ERR(c, r, err);
		return;
	}
	http_respond_json(c->req, 201, json_pack("{s:s,s:[]}", "Id", id, "Warnings"));
}

void api_container_inspect(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_container_info_ struct engine_container_info *i = NULL;
	int r = engine_container_inspect(c->api->engine, c->param[0], &i, &err);
	if (r < 0) {
		CALL_ERR(c, r, err);
		return;
	}
	http_respond_json(c->req, 200, host_container_json(c->api->host, i, api_container_json(i)));
}

void api_container_start(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_start(c->api->engine, c->param[0], &err);
	if (r < 0 && api_status_of(r) == 500)
		r = -EINVAL; /* docker reports runtime start failures as 400 */
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 204);
}

static int query_timeout(struct api_call *c, int *ret)
{
	const char *t = http_request_query(c->req, "t");
	if (!t || !*t)
		t = http_request_query(c->req, "timeout");
	int64_t v = -1;
	if (t && *t && (util_parse_int64(t, &v) < 0 || v < -1 || v > 1000000)) {
		http_respond_error(c->req, 400, "invalid timeout '%s'", t);
		return -EINVAL;
	}
	*ret = (int)v;
	return 0;
}

void api_container_stop(struct api_call *c)
{
	int t;
	if (query_timeout(c, &t) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_stop(c->api->engine, c->param[0], t, &err);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 204);
}

void api_container_restart(struct api_call *c)
{
	int t;
	if (query_timeout(c, &t) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_restart(c->api->engine, c->param[0], t, &err);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 204);
}

void api_container_kill(struct api_call *c)
{
	const char *s = http_request_query(c->req, "signal");
	int sig = s && *s ? engine_signal_parse(s) : SIGKILL;
	if (sig < 0) {
		http_respond_error(c->req, 400, "Invalid signal: %s", s);
		return;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_kill(c->api->engine, c->param[0], sig, &err);
	if (r < 0) { /* dockerd's words: "Cannot kill container: NAME: No such container: NAME" */
		r = berth_error_wrap(&err, r, "Cannot kill container: %s", c->param[0]);
		CALL_ERR(c, r, err);
	} else
		http_respond_empty(c->req, 204);
}

static void pause_op(struct api_call *c, bool pause)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_pause(c->api->engine, c->param[0], pause, &err);
	if (r == -EALREADY)
		r = -EBUSY;
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 204);
}

void api_container_pause(struct api_call *c)
{
	pause_op(c, true);
}

void api_container_unpause(struct api_call *c)
{
	pause_op(c, false);
}

static int wait_read(void *ctx, struct strbuf *out)
{
	struct engine_wait **w = ctx;
	int code = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_wait_finish(*w, &code, &err);
	*w = NULL;
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		strbuf_addf(out, "{\"Error\":{\"Message\":");
		strbuf_add_json_string(out, m);
		strbuf_addstr(out, "},\"StatusCode\":-1}\n");
	} else {
		strbuf_addf(out, "{\"Error\":null,\"StatusCode\":%d}\n", code);
	}
	return 1;
}

static void wait_done(void *ctx)
{
	struct engine_wait **w = ctx;
	engine_wait_free(*w); /* the client left before the answer */
	free(w);
}

/*
 * The waiter is registered before the answer's head (engine_container_wait_begin):
 * a client that read the head may start the container, and its exit or
 * removal is not missed. A missing container is a 404, not a stream error.
 */
void api_container_wait(struct api_call *c)
{
	const char *cond = http_request_query(c->req, "condition");
	enum engine_wait_condition wc = ENGINE_WAIT_NOT_RUNNING;
	if (cond && streq(cond, "next-exit"))
		wc = ENGINE_WAIT_NEXT_EXIT;
	else if (cond && streq(cond, "removed"))
		wc = ENGINE_WAIT_REMOVED;
	else if (cond && *cond && !streq(cond, "not-running")) {
		http_respond_error(c->req, 400, "invalid condition: \"%s\"", cond);
		return;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	struct engine_wait **w = xcalloc(1, sizeof(*w));
	int r = engine_container_wait_begin(c->api->engine, c->param[0], wc, w, &err);
	if (r < 0) {
		free(w);
		CALL_ERR(c, r, err);
		return;
	}
	http_respond_stream(c->req, 200, "application/json", wait_read, wait_done, w);
}

void api_container_rename(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r =
	    engine_container_rename(c->api->engine, c->param[0], http_request_query(c->req, "name"), &err);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 204);
}

static int query_uint(struct api_call *c, const char *key, int64_t *ret)
{
	const char *v = http_request_query(c->req, key);
	if (!v || util_parse_int64(v, ret) < 0 || *ret < 0 || *ret > 65535) {
		http_respond_error(c->req, 400, "invalid %s '%s'", key, v ? v : "");
		return -EINVAL;
	}
	return 0;
}

void api_container_resize(struct api_call *c)
{
	int64_t h, w;
	if (query_uint(c, "h", &h) < 0 || query_uint(c, "w", &w) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_resize(c->api->engine, c->param[0], NULL, (int)h, (int)w, &err);
	if (r < 0 && r != -ENOTTY)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 200);
}

void api_exec_resize(struct api_call *c)
{
	int64_t h, w;
	if (query_uint(c, "h", &h) < 0 || query_uint(c, "w", &w) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_resize(c->api->engine, NULL, c->param[0], (int)h, (int)w, &err);
	if (r < 0 && r != -ENOTTY)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 200);
}

void api_container_remove(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_remove(c->api->engine, c->param[0], http_query_bool(c->req, "force", false),
					http_query_bool(c->req, "v", false), &err);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_empty(c->req, 204);
}

void api_container_top(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *out = NULL;
	int r = engine_container_top(c->api->engine, c->param[0], http_request_query(c->req, "ps_args"), &out,
				     &err);
	if (r < 0)
		CALL_ERR(c, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_containers_prune(struct api_call *c)
{
	int r;
	_cleanup_json_ json_t *filters = query_filters(c, &r);
	if (r < 0)
		return;
	struct engine_container_info **list = NULL;
	size_t n = 0;
	engine_container_list(c->api->engine, true, &list, &n, NULL);
	json_t *deleted = json_array();
	int64_t reclaimed = 0;
	for (size_t i = 0; i < n; i++) {
		if (list[i]->state != ENGINE_EXITED && list[i]->state != ENGINE_CREATED &&
		    list[i]->state != ENGINE_DEAD)
			continue;
		json_t *labels = json_object_get(filters, "label");
		if (labels && !api_container_filter(list[i], filters))
			continue;
		/* dockerd reports the writable layers' size (SizeRw) of what it removed */
		int64_t rw = api_container_rw_usage(list[i]);
		if (engine_container_remove(c->api->engine, list[i]->id, false, false, NULL) >= 0) {
			json_array_append_new(deleted, json_string(list[i]->id));
			reclaimed += rw;
		}
	}
	engine_container_info_list_free(list, n);
	http_respond_json(
	    c->req, 200,
	    json_pack("{s:o,s:I}", "ContainersDeleted", deleted, "SpaceReclaimed", (json_int_t)reclaimed));
}
