/*
 * handlers-misc.c - the token endpoint and Prometheus /metrics.
 */
#include <inttypes.h>

#include "registry/server.h"

#define SCOPES_MAX 16

struct scope_collect {
	char *v[SCOPES_MAX];
	size_t n;
};

static enum MHD_Result collect_scope(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct scope_collect *sc = cls;
	if (!key || !value || !streq(key, "scope"))
		return MHD_YES;
	/* one parameter may hold several space-separated scopes */
	const char *p = value;
	while (*p && sc->n < SCOPES_MAX) {
		size_t len = strcspn(p, " ");
		if (len)
			sc->v[sc->n++] = xstrndup(p, len);
		p += len;
		while (*p == ' ')
			p++;
	}
	return MHD_YES;
}

enum MHD_Result reg_handle_token(struct req *r)
{
	if (!reg_auth_token_mode(r->reg->auth))
		return reg_req_error(r, MHD_HTTP_NOT_FOUND, "UNSUPPORTED", "token auth is not enabled", NULL);
	if (r->method != M_GET)
		return reg_req_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED", "method not allowed",
				     NULL);
	if (r->id.bearer) /* a token does not buy a token */
		r->id = (struct auth_identity){ 0 };
	struct scope_collect sc = { .n = 0 };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_scope, &sc);
	_cleanup_free_ char *body =
	    reg_auth_issue_token(r->reg->auth, &r->id, (const char *const *)sc.v, sc.n);
	for (size_t i = 0; i < sc.n; i++)
		free(sc.v[i]);
	if (!body)
		return reg_req_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "UNKNOWN", "cannot sign token", NULL);
	return reg_req_respond(r, MHD_HTTP_OK, "application/json", body, strlen(body), NULL);
}

enum MHD_Result reg_handle_metrics(struct req *r)
{
	struct registry *reg = r->reg;
	struct registry_metrics *m = &reg->metrics;
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "# HELP berth_registry_requests_total Requests by route and status class.\n"
			   "# TYPE berth_registry_requests_total counter\n");
	static const char *const classes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	for (int k = 0; k < _ROUTE_MAX; k++)
		for (int c = 0; c < 6; c++) {
			uint64_t v = atomic_load(&m->requests[k][c]);
			if (v)
				strbuf_addf(
				    &sb,
				    "berth_registry_requests_total{route=\"%s\",status=\"%s\"} %" PRIu64 "\n",
				    reg_route_kind_name((enum route_kind)k), classes[c], v);
		}
	strbuf_addf(
	    &sb,
	    "# TYPE berth_registry_bytes_received_total counter\nberth_registry_bytes_received_total %" PRIu64
	    "\n# TYPE berth_registry_bytes_sent_total counter\nberth_registry_bytes_sent_total %" PRIu64
	    "\n# TYPE berth_registry_requests_in_flight gauge\nberth_registry_requests_in_flight %" PRIu64
	    "\n# TYPE berth_registry_upload_sessions gauge\nberth_registry_upload_sessions %zu"
	    "\n# TYPE berth_registry_storage_bytes gauge\nberth_registry_storage_bytes %" PRId64
	    "\n# TYPE berth_registry_proxy_fetches_total counter\nberth_registry_proxy_fetches_total %" PRIu64
	    "\n",
	    atomic_load(&m->bytes_in), atomic_load(&m->bytes_out), atomic_load(&m->in_flight),
	    reg_upload_count(&reg->uploads), atomic_load(&reg->store->bytes), atomic_load(&m->proxy_fetches));
	enum MHD_Result ret =
	    reg_req_respond(r, MHD_HTTP_OK, "text/plain; version=0.0.4", sb.buf, sb.len, NULL);
	strbuf_release(&sb);
	return ret;
}
