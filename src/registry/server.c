/*
 * server.c - the registry on the shared HTTP server (http/http.h): routing,
 * responses in the distribution spec's shapes, access log, graceful shutdown.
 *
 * Every request runs on one of the server's workers from start to end:
 * manifest PUT bodies arrive buffered (bounded by storage.manifest_max_size),
 * upload bodies are read as they arrive and go straight to the session's
 * data file (body_stream routes), blob and manifest GETs are sent from the
 * file with sendfile (http_respond_fd). Connection limits, header/idle/body
 * timeouts (slow loris) and TLS are the server's (docs/engine.md "Limits").
 */
#include "registry/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"

#define API_VERSION_HEADER  "Docker-Distribution-API-Version"
/*
 * Per-connection memory (request head, read buffer for bodies: upload bodies
 * are read in pieces of about half of it). Measured with bench/registry.sh:
 * 1 MiB cut the server's CPU per pushed byte by ~15% but raised peak RSS from
 * ~40 MB to ~300 MB at 256 connections and let 300 KB request headers
 * through; 256 KiB gained nothing measurable. 128 KiB stays.
 */
#define CONNECTION_MEMORY   (128u << 10)
#define MAX_UPLOAD_SESSIONS 4096
/* Handler threads by default: uploads hold one for as long as their body takes. */
#define REGISTRY_WORKERS    64

const char *registry_req_header(struct req *r, const char *name)
{
	return http_request_header(r->hr, name);
}

const char *registry_req_arg(struct req *r, const char *name)
{
	return http_request_query(r->hr, name);
}

/*
 * Release the upload session before the answer is queued: the client may read our response and
 * send its next request on another connection before this one is over (a spurious 409 "busy").
 */
void registry_req_prepare(struct req *r, unsigned status, const char *const *headers)
{
	http_response_header(r->hr, API_VERSION_HEADER, "registry/2.0");
	for (const char *const *h = headers; h && h[0]; h += 2)
		if (h[1])
			http_response_header(r->hr, h[0], h[1]);
	r->status = status;
	r->responded = true;
	if (r->up) {
		registry_upload_release(&r->reg->uploads, r->up);
		r->up = NULL;
	}
	/* counted now, not on completion, so a client sees its request in the next scrape */
	atomic_fetch_add(&r->reg->metrics.requests[r->route.kind][status / 100 < 6 ? status / 100 : 0], 1);
}

int registry_req_respond_fd(struct req *r, unsigned status, const char *content_type, int fd, uint64_t offset,
			    uint64_t len, const char *const *headers)
{
	registry_req_prepare(r, status, headers);
	if (r->method != M_HEAD)
		r->bytes_out += len;
	http_respond_fd(r->hr, status, content_type, fd, offset, len);
	return 0;
}

int registry_req_respond(struct req *r, unsigned status, const char *content_type, const void *body,
			 size_t len, const char *const *headers)
{
	registry_req_prepare(r, status, headers);
	if (r->method != M_HEAD)
		r->bytes_out += len;
	char *copy = NULL;
	if (len) {
		copy = xmalloc(len);
		memcpy(copy, body, len);
	}
	http_respond(r->hr, status, content_type, copy, len);
	return 0;
}

int registry_req_store_error(struct req *r, int rr, const char *what, const struct berth_error *err)
{
	_cleanup_free_ char *why = err ? berth_error_string(err) : NULL;
	_cleanup_free_ char *msg = xasprintf("%s: %s", what, why ? why : strerror(-rr));
	/* strerror's "No space left on device" reads the same in every message */
	unsigned status = rr == -ENOSPC ? 507 : 500;
	return registry_req_error(r, status, "UNKNOWN", msg, NULL);
}

char *registry_error_json(const char *code, const char *message, const char *detail)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "{\"errors\":[{\"code\":");
	strbuf_add_json_string(&sb, code);
	strbuf_addstr(&sb, ",\"message\":");
	strbuf_add_json_string(&sb, message);
	if (detail) {
		strbuf_addstr(&sb, ",\"detail\":");
		strbuf_add_json_string(&sb, detail);
	}
	strbuf_addstr(&sb, "}]}\n");
	return strbuf_detach(&sb, NULL);
}

int registry_req_error(struct req *r, unsigned status, const char *code, const char *message,
		       const char *detail)
{
	char *body = registry_error_json(code, message, detail);
	registry_req_prepare(r, status, NULL);
	if (r->method != M_HEAD)
		r->bytes_out += strlen(body);
	http_respond(r->hr, status, "application/json", body, strlen(body));
	return 0;
}

static char *realm_base(struct req *r)
{
	const char *host = registry_req_header(r, "Host");
	bool tls = r->reg->cfg->tls_cert != NULL;
	if (!host || strpbrk(host, "\"\\ \r\n"))
		return xasprintf("%s://%s:%u", tls ? "https" : "http", r->reg->cfg->host, r->reg->port);
	return xasprintf("%s://%s", tls ? "https" : "http", host);
}

int registry_req_unauthorized(struct req *r, const char *repo, unsigned actions)
{
	_cleanup_free_ char *base = realm_base(r);
	_cleanup_free_ char *chal = registry_auth_challenge(r->reg->auth, base, repo, actions);
	const char *hdrs[] = { "WWW-Authenticate", chal, NULL };
	static const char body[] =
	    "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}\n";
	return registry_req_respond(r, 401, "application/json", body, sizeof(body) - 1, hdrs);
}

bool registry_req_authorize(struct req *r, const char *repo, unsigned actions, int *ret)
{
	struct registry_auth *a = r->reg->auth;
	if (registry_auth_allowed(a, &r->id, repo, actions))
		return true;
	/* Anonymous callers and tokens lacking the scope get a challenge; known users without rights get 403.
	 */
	if (!r->id.authenticated || r->id.bearer)
		*ret = registry_req_unauthorized(r, repo, actions);
	else
		*ret =
		    registry_req_error(r, 403, "DENIED", "requested access to the resource is denied", NULL);
	return false;
}

bool registry_req_push_check(struct req *r, int *ret)
{
	const struct registry_hooks *h = r->reg->cfg->hooks;
	if (!h || !h->push_check || h->push_check(r->reg->cfg->hooks_data, r->route.name) == 0)
		return true;
	_cleanup_free_ char *msg =
	    xasprintf("The repository with name '%s' does not exist in the registry", r->route.name);
	*ret = registry_req_error(r, 404, "NAME_UNKNOWN", msg, r->route.name);
	return false;
}

bool registry_tags_immutable(struct registry *reg, const char *repo)
{
	const struct registry_repo_rule *rule = registry_config_rule(reg->cfg, repo);
	const struct registry_hooks *h = reg->cfg->hooks;
	return (rule && rule->immutable_tags) ||
	       (h && h->tag_immutable && h->tag_immutable(reg->cfg->hooks_data, repo));
}

int registry_req_paginated_list(struct req *r, const char *key, const char *name, char **items,
				const char *link_base)
{
	const char *ns = registry_req_arg(r, "n"), *last = registry_req_arg(r, "last");
	uint64_t n = UINT64_MAX;
	if (ns && (util_parse_uint64(ns, &n) < 0))
		return registry_req_error(r, 400, "PAGINATION_NUMBER_INVALID", "invalid number of results",
					  ns);
	struct strbuf sb = STRBUF_INIT;
	strbuf_addch(&sb, '{');
	if (name) {
		strbuf_addstr(&sb, "\"name\":");
		strbuf_add_json_string(&sb, name);
		strbuf_addch(&sb, ',');
	}
	strbuf_addf(&sb, "\"%s\":[", key);
	uint64_t count = 0;
	const char *last_out = NULL;
	bool more = false;
	for (char **it = items; *it; it++) {
		if (last && strcmp(*it, last) <= 0)
			continue;
		if (count == n) {
			more = true;
			break;
		}
		if (count++)
			strbuf_addch(&sb, ',');
		strbuf_add_json_string(&sb, *it);
		last_out = *it;
	}
	strbuf_addstr(&sb, "]}\n");
	_cleanup_free_ char *link = NULL;
	if (more && last_out)
		link = xasprintf("<%s?n=%llu&last=%s>; rel=\"next\"", link_base, (unsigned long long)n,
				 last_out);
	const char *hdrs[] = { "Link", link, NULL };
	int ret = registry_req_respond(r, 200, "application/json", sb.buf, sb.len, hdrs);
	strbuf_release(&sb);
	return ret;
}

static enum req_method parse_method(const char *m)
{
	static const struct {
		const char *name;
		enum req_method m;
	} t[] = { { "GET", M_GET },   { "HEAD", M_HEAD },   { "PUT", M_PUT },
		  { "POST", M_POST }, { "PATCH", M_PATCH }, { "DELETE", M_DELETE } };
	for (size_t i = 0; i < ARRAY_SIZE(t); i++)
		if (streq(m, t[i].name))
			return t[i].m;
	return M_OTHER;
}

static int handle_base(struct req *r)
{
	if (r->method != M_GET && r->method != M_HEAD)
		return registry_req_error(r, 405, "UNSUPPORTED", "method not allowed", NULL);
	if (registry_auth_enabled(r->reg->auth) && !r->id.authenticated && !r->id.bearer)
		return registry_req_unauthorized(r, NULL, 0);
	return registry_req_respond(r, 200, "application/json", "{}", 2, NULL);
}

/* Route, authenticate, run the handler. */
static int dispatch(struct req *r)
{
	struct route *rt = &r->route;
	if (rt->kind == ROUTE_NONE)
		return registry_req_error(r, 404, "NOT_FOUND", "no such route", NULL);
	if (rt->kind == ROUTE_NAME_INVALID)
		return registry_req_error(r, 400, "NAME_INVALID", "invalid repository name", NULL);
	if (rt->kind == ROUTE_REF_INVALID) {
		if (rt->ref_is_digest || rt->ref == NULL)
			return registry_req_error(r, 400, "DIGEST_INVALID", "invalid digest", rt->ref);
		if (strstr(r->url, "/blobs/uploads/"))
			return registry_req_error(r, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown", NULL);
		return registry_req_error(r, 400, "TAG_INVALID", "invalid tag", NULL);
	}
	if (rt->kind == ROUTE_METRICS)
		return registry_handle_metrics(r);
	if (registry_auth_identify(r->reg->auth, registry_req_header(r, "Authorization"), &r->id) < 0)
		return registry_req_unauthorized(r, rt->name, REGISTRY_PULL);
	switch (rt->kind) {
	case ROUTE_BASE: return handle_base(r);
	case ROUTE_TOKEN: return registry_handle_token(r);
	case ROUTE_CATALOG: return registry_handle_catalog(r);
	case ROUTE_TAGS: return registry_handle_tags(r);
	case ROUTE_REFERRERS: return registry_handle_referrers(r);
	case ROUTE_BLOB: return registry_handle_blob(r);
	case ROUTE_MANIFEST: return registry_handle_manifest(r);
	case ROUTE_UPLOAD_START:
	case ROUTE_UPLOAD: return registry_handle_upload(r);
	default: return registry_req_error(r, 404, "NOT_FOUND", "no such route", NULL);
	}
}

static void access_log(struct req *r, bool completed)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double ms =
	    (double)(now.tv_sec - r->start.tv_sec) * 1e3 + (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
	char status[8], dur[32], in[24], out[24];
	snprintf(status, sizeof(status), "%u", r->status);
	snprintf(dur, sizeof(dur), "%.3f", ms);
	snprintf(in, sizeof(in), "%llu", (unsigned long long)r->bytes_in);
	snprintf(out, sizeof(out), "%llu", (unsigned long long)r->bytes_out);
	log_fields(LOG_LEVEL_INFO, "request", "method", r->method_name, "path", r->url, "route",
		   registry_route_kind_name(r->route.kind), "status", status, "duration_ms", dur, "bytes_in",
		   in, "bytes_out", out, "remote", http_request_remote(r->hr), "user",
		   r->id.user[0] ? r->id.user : "-", "completed", completed ? "true" : "false", NULL);
}

/* The request is over (the answer sent or the client gone, the handler returned). */
static void req_done(struct http_request *hr, bool completed, void *ctx)
{
	struct req *r = ctx;
	struct registry *reg = r->reg;
	(void)hr;
	atomic_fetch_add(&reg->metrics.bytes_in, r->bytes_in);
	atomic_fetch_add(&reg->metrics.bytes_out, r->bytes_out);
	if (reg->cfg->access_log && log_enabled(LOG_LEVEL_INFO))
		access_log(r, completed);
	free(r);
	pthread_mutex_lock(&reg->drain_lock);
	if (atomic_fetch_sub(&reg->metrics.in_flight, 1) == 1)
		pthread_cond_broadcast(&reg->drain_cond);
	pthread_mutex_unlock(&reg->drain_lock);
}

static void handle(struct http_request *hr, void *userdata)
{
	struct registry *reg = userdata;
	struct req *r = xcalloc(1, sizeof(*r));
	r->reg = reg;
	r->hr = hr;
	r->url = http_request_path(hr);
	r->method_name = http_request_method(hr);
	r->method = parse_method(r->method_name);
	r->range_end = -1;
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	atomic_fetch_add(&reg->metrics.in_flight, 1);
	http_request_on_done(hr, req_done, r);
	registry_route_parse(r->url, &r->route);
	if (!http_request_body_streamed(hr)) {
		r->data = http_request_body(hr, &r->data_len);
		r->bytes_in = r->data_len;
	}
	if (strlen(r->url) > ROUTE_PATH_MAX)
		registry_req_error(r, 414, "NAME_INVALID", "request path too long", NULL);
	else
		dispatch(r);
	if (!r->responded)
		registry_req_error(r, 500, "UNKNOWN", "request not answered", NULL);
}

/* Uploads (POST, PATCH, PUT of /blobs/uploads/) read their body as it arrives. */
static bool body_stream(const char *method, const char *path, void *userdata)
{
	(void)userdata;
	if (!streq(method, "POST") && !streq(method, "PATCH") && !streq(method, "PUT"))
		return false;
	struct route rt;
	registry_route_parse(path, &rt);
	return rt.kind == ROUTE_UPLOAD_START || rt.kind == ROUTE_UPLOAD;
}

static size_t body_limit(const char *method, const char *path, void *userdata)
{
	struct registry *reg = userdata;
	/* uploads check storage.blob_max_size against the session's offset themselves */
	if (body_stream(method, path, userdata))
		return SIZE_MAX;
	return (size_t)reg->cfg->manifest_max;
}

/*
 * Reads that only stat and open files run on the server's I/O thread, as they did
 * before the registry moved onto http/ (a worker handoff costs ~1/3 of the request
 * rate): not in pull-through mode (a fetch waits for the upstream), not with Basic
 * credentials (a bcrypt check the cache has not seen takes ~50 ms) nor an embedder's
 * credential hook.
 */
static bool run_inline(struct http_request *hr, void *userdata)
{
	struct registry *reg = userdata;
	const char *m = http_request_method(hr);
	if ((!streq(m, "GET") && !streq(m, "HEAD")) || reg->cfg->proxy_url)
		return false;
	const char *auth = http_request_header(hr, "Authorization");
	if (auth && !startswith(auth, "Bearer "))
		return false;
	struct route rt;
	registry_route_parse(http_request_path(hr), &rt);
	return rt.kind == ROUTE_BASE || rt.kind == ROUTE_MANIFEST || rt.kind == ROUTE_BLOB ||
	       rt.kind == ROUTE_TAGS;
}

/* The server's own errors (bad framing, a manifest over the limit) in the spec's shape. */
static char *error_body(unsigned status, const char *message, void *userdata)
{
	(void)userdata;
	const char *code = status == 413 ? "SIZE_INVALID" : status == 400 ? "UNSUPPORTED" : "UNKNOWN";
	return registry_error_json(code, message, NULL);
}

int registry_start_http(struct registry *reg, struct berth_error **err)
{
	struct registry_config *c = reg->cfg;
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		return berth_error_msg(err, EINVAL, "tls needs both a certificate and a key");
	_cleanup_free_ char *addr =
	    xasprintf(strchr(c->host, ':') ? "[%s]:%u" : "%s:%u", c->host, (unsigned)c->port);
	int fd = http_listen_tcp(addr, err);
	if (fd < 0)
		return fd;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	reg->port = c->port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		reg->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	struct http_limits lim = {
		.max_connections = c->max_connections,
		.workers = c->threads ? c->threads : REGISTRY_WORKERS,
		.header_timeout_s = c->timeout_s,
		.idle_timeout_s = c->timeout_s,
		.body_min_rate = c->body_min_rate,
		.conn_memory = CONNECTION_MEMORY,
	};
	bool tls = c->tls_cert != NULL;
	struct http_server_opts o = {
		.listen_fd = tls ? -1 : fd,
		.body_limit = body_limit,
		.body_stream = body_stream,
		.error_body = error_body,
		.run_inline = run_inline,
		.limits = &lim,
		.handler = handle,
		.userdata = reg,
	};
	int r = http_server_start(&o, &reg->http, err);
	if (r < 0) {
		if (tls)
			close(fd);
		return r;
	}
	if (tls) {
		struct http_tls_files f = { .cert = c->tls_cert, .key = c->tls_key };
		r = http_tcp_listener_start(reg->http, fd, &f, false, &reg->tls, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int registry_init(struct registry *reg, struct registry_config *cfg, struct berth_error **err)
{
	*reg = (struct registry){ .cfg = cfg };
	int r = registry_store_open(cfg->root, &reg->store, err);
	if (r < 0)
		return r;
	reg->store->fsync = cfg->fsync;
	registry_upload_table_init(&reg->uploads, reg->store, MAX_UPLOAD_SESSIONS);
	pthread_mutex_init(&reg->drain_lock, NULL);
	proc_cond_init_monotonic(&reg->drain_cond);
	return registry_auth_new(cfg, &reg->auth, err);
}

void registry_done(struct registry *reg)
{
	reg->tls = http_tcp_listener_stop(reg->tls);
	reg->http = http_server_stop(reg->http);
	registry_upload_table_done(&reg->uploads);
	registry_auth_free(reg->auth);
	registry_store_free(reg->store);
	pthread_mutex_destroy(&reg->drain_lock);
	pthread_cond_destroy(&reg->drain_cond);
}

/* Stop accepting, wait for in-flight requests (bounded), then stop. */
void registry_drain(struct registry *reg)
{
	/* new connections are refused from now on; established ones go on */
	reg->tls = http_tcp_listener_stop(reg->tls);
	if (reg->http)
		http_server_quiesce(reg->http);
	int64_t wait_ms = (int64_t)reg->cfg->shutdown_timeout_s * 1000;
	struct timespec deadline = proc_deadline(CLOCK_MONOTONIC, wait_ms); /* drain_cond is monotonic */
	pthread_mutex_lock(&reg->drain_lock);
	while (atomic_load(&reg->metrics.in_flight) > 0)
		if (pthread_cond_timedwait(&reg->drain_cond, &reg->drain_lock, &deadline) != 0)
			break;
	pthread_mutex_unlock(&reg->drain_lock);
}

int registry_serve(struct registry_config *cfg, struct berth_error **err)
{
	struct registry reg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the server starts threads: they inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	int r = registry_init(&reg, cfg, err);
	if (r == 0)
		r = registry_start_http(&reg, err);
	if (r < 0) {
		registry_done(&reg);
		return r;
	}
	/* Expire sessions that aged while no server ran before announcing the port (tests wait for it). */
	registry_upload_expire(&reg.uploads, cfg->upload_expiry_s);
	char port[8];
	snprintf(port, sizeof(port), "%u", reg.port);
	if (cfg->port_file)
		fs_write_file_atomic(cfg->port_file, port, strlen(port), 0644, NULL);
	log_fields(LOG_LEVEL_INFO, "registry listening", "addr", cfg->host, "port", port, "root", cfg->root,
		   "tls", cfg->tls_cert ? "true" : "false", "auth",
		   registry_auth_enabled(reg.auth) ? "true" : "false", NULL);
	for (;;) {
		struct timespec tick = { .tv_sec = 60 };
		int sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		size_t n = registry_upload_expire(&reg.uploads, cfg->upload_expiry_s);
		if (n)
			log_fields(LOG_LEVEL_INFO, "expired upload sessions", NULL);
	}
	log_fields(LOG_LEVEL_INFO, "registry shutting down", NULL);
	registry_drain(&reg);
	registry_done(&reg);
	log_fields(LOG_LEVEL_INFO, "registry stopped", NULL);
	return 0;
}
