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

/* One ?scope= parameter may hold several space-separated scopes. */
static void collect_scopes(struct scope_collect *sc, char **values)
{
	for (char **v = values; *v; v++) {
		const char *p = *v;
		while (*p && sc->n < SCOPES_MAX) {
			size_t len = strcspn(p, " ");
			if (len)
				sc->v[sc->n++] = xstrndup(p, len);
			p += len;
			while (*p == ' ')
				p++;
		}
	}
}

int registry_handle_token(struct req *r)
{
	if (!registry_auth_token_mode(r->reg->auth))
		return registry_req_error(r, 404, "UNSUPPORTED", "token auth is not enabled", NULL);
	if (r->method != M_GET)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if (r->id.bearer) /* a token does not buy a token */
		r->id = (struct auth_identity){ 0 };
	struct scope_collect sc = { .n = 0 };
	_cleanup_strv_ char **values = http_request_query_all(r->hr, "scope");
	collect_scopes(&sc, values);
	_cleanup_free_ char *body =
	    registry_auth_issue_token(r->reg->auth, &r->id, (const char *const *)sc.v, sc.n);
	for (size_t i = 0; i < sc.n; i++)
		free(sc.v[i]);
	if (!body)
		return registry_req_error(r, 500, "UNKNOWN", "cannot sign token", NULL);
	return registry_req_respond(r, 200, "application/json", body, strlen(body), NULL);
}

int registry_handle_metrics(struct req *r)
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
				    registry_route_kind_name((enum route_kind)k), classes[c], v);
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
	    registry_upload_count(&reg->uploads), atomic_load(&reg->store->bytes),
	    atomic_load(&m->proxy_fetches));
	int ret = registry_req_respond(r, 200, "text/plain; version=0.0.4", sb.buf, sb.len, NULL);
	strbuf_release(&sb);
	return ret;
}
