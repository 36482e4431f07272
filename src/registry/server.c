/*
 * server.c - the registry's HTTP plumbing on libmicrohttpd: daemon setup,
 * request dispatch, responses, access log, graceful shutdown.
 *
 * Threading trade-off (measured with bench/registry.sh): an epoll thread pool
 * (MHD_USE_EPOLL_INTERNAL_THREAD + THREAD_POOL_SIZE) beats thread-per-
 * connection for many small requests (manifest GET, blob HEAD) and keeps
 * slow clients from costing a thread each; handlers do short blocking disk
 * I/O. Request bodies stream straight to the upload's data file, blob GETs use
 * MHD_create_response_from_fd_at_offset64 (sendfile on plain HTTP).
 */
#include "registry/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/connlimit.h"
#include "common/log.h"
#include "common/util.h"

#define API_VERSION_HEADER  "Docker-Distribution-API-Version"
/*
 * Per-connection memory pool: request headers plus the read buffer for bodies
 * (MHD reads bodies in pieces of about half of it). Measured with
 * bench/registry.sh: 1 MiB cut the server's CPU per pushed byte by ~15% but
 * raised peak RSS from ~40 MB to ~300 MB at 256 connections (MHD touches the
 * pool) and let 300 KB request headers through; 256 KiB gained nothing
 * measurable. 128 KiB stays.
 */
#define CONNECTION_MEMORY   (128u << 10)
#define MAX_UPLOAD_SESSIONS 4096

const char *reg_req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *reg_req_arg(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

enum MHD_Result reg_req_respond_with(struct req *r, unsigned status, struct MHD_Response *resp,
				     const char *const *headers)
{
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, API_VERSION_HEADER, "registry/2.0");
	for (const char *const *h = headers; h && h[0]; h += 2)
		if (h[1])
			MHD_add_response_header(resp, h[0], h[1]);
	r->status = status;
	r->responded = true;
	/* counted now, not on completion, so a client sees its request in the next scrape */
	atomic_fetch_add(&r->reg->metrics.requests[r->route.kind][status / 100 < 6 ? status / 100 : 0], 1);
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result reg_req_respond(struct req *r, unsigned status, const char *content_type, const void *body,
				size_t len, const char *const *headers)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    len, (void *)body, len ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
	if (resp && content_type)
		MHD_add_response_header(resp, "Content-Type", content_type);
	if (r->method != M_HEAD)
		r->bytes_out += len;
	return reg_req_respond_with(r, status, resp, headers);
}

enum MHD_Result reg_req_store_error(struct req *r, int rr, const char *what, const struct berth_error *err)
{
	_cleanup_free_ char *why = err ? berth_error_string(err) : NULL;
	_cleanup_free_ char *msg = xasprintf("%s: %s", what, why ? why : strerror(-rr));
	/* strerror's "No space left on device" reads the same in every message */
	unsigned status = rr == -ENOSPC ? MHD_HTTP_INSUFFICIENT_STORAGE : MHD_HTTP_INTERNAL_SERVER_ERROR;
	return reg_req_error(r, status, "UNKNOWN", msg, NULL);
}

enum MHD_Result reg_req_error(struct req *r, unsigned status, const char *code, const char *message,
			      const char *detail)
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
	enum MHD_Result ret = reg_req_respond(r, status, "application/json", sb.buf, sb.len, NULL);
	strbuf_release(&sb);
	return ret;
}

static char *realm_base(struct req *r)
{
	const char *host = reg_req_header(r, "Host");
	bool tls = r->reg->cfg->tls_cert != NULL;
	if (!host || strpbrk(host, "\"\\ \r\n"))
		return xasprintf("%s://%s:%u", tls ? "https" : "http", r->reg->cfg->host, r->reg->port);
	return xasprintf("%s://%s", tls ? "https" : "http", host);
}

enum MHD_Result reg_req_unauthorized(struct req *r, const char *repo, unsigned actions)
{
	_cleanup_free_ char *base = realm_base(r);
	_cleanup_free_ char *chal = reg_auth_challenge(r->reg->auth, base, repo, actions);
	const char *hdrs[] = { "WWW-Authenticate", chal, NULL };
	static const char body[] =
	    "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}\n";
	return reg_req_respond(r, MHD_HTTP_UNAUTHORIZED, "application/json", body, sizeof(body) - 1, hdrs);
}

bool reg_req_authorize(struct req *r, const char *repo, unsigned actions, enum MHD_Result *ret)
{
	struct registry_auth *a = r->reg->auth;
	if (reg_auth_allowed(a, &r->id, repo, actions))
		return true;
	/* Anonymous callers and tokens lacking the scope get a challenge; known users without rights get 403.
	 */
	if (!r->id.authenticated || r->id.bearer)
		*ret = reg_req_unauthorized(r, repo, actions);
	else
		*ret = reg_req_error(r, MHD_HTTP_FORBIDDEN, "DENIED",
				     "requested access to the resource is denied", NULL);
	return false;
}

bool reg_req_push_check(struct req *r, enum MHD_Result *ret)
{
	const struct registry_hooks *h = r->reg->cfg->hooks;
	if (!h || !h->push_check || h->push_check(r->reg->cfg->hooks_data, r->route.name) == 0)
		return true;
	_cleanup_free_ char *msg =
	    xasprintf("The repository with name '%s' does not exist in the registry", r->route.name);
	*ret = reg_req_error(r, MHD_HTTP_NOT_FOUND, "NAME_UNKNOWN", msg, r->route.name);
	return false;
}

bool reg_tags_immutable(struct registry *reg, const char *repo)
{
	const struct registry_repo_rule *rule = registry_config_rule(reg->cfg, repo);
	const struct registry_hooks *h = reg->cfg->hooks;
	return (rule && rule->immutable_tags) ||
	       (h && h->tag_immutable && h->tag_immutable(reg->cfg->hooks_data, repo));
}

enum MHD_Result reg_req_paginated_list(struct req *r, const char *key, const char *name, char **items,
				       const char *link_base)
{
	const char *ns = reg_req_arg(r, "n"), *last = reg_req_arg(r, "last");
	uint64_t n = UINT64_MAX;
	if (ns && (parse_uint64(ns, &n) < 0))
		return reg_req_error(r, MHD_HTTP_BAD_REQUEST, "PAGINATION_NUMBER_INVALID",
				     "invalid number of results", ns);
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
	enum MHD_Result ret = reg_req_respond(r, MHD_HTTP_OK, "application/json", sb.buf, sb.len, hdrs);
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

static enum MHD_Result handle_base(struct req *r)
{
	if (r->method != M_GET && r->method != M_HEAD)
		return reg_req_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "UNSUPPORTED", "method not allowed",
				     NULL);
	if (reg_auth_enabled(r->reg->auth) && !r->id.authenticated && !r->id.bearer)
		return reg_req_unauthorized(r, NULL, 0);
	return reg_req_respond(r, MHD_HTTP_OK, "application/json", "{}", 2, NULL);
}

/* First callback of a request: route, authenticate, dispatch. */
static enum MHD_Result dispatch_begin(struct req *r)
{
	struct route *rt = &r->route;
	if (rt->kind == ROUTE_NONE)
		return reg_req_error(r, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such route", NULL);
	if (rt->kind == ROUTE_NAME_INVALID)
		return reg_req_error(r, MHD_HTTP_BAD_REQUEST, "NAME_INVALID", "invalid repository name",
				     NULL);
	if (rt->kind == ROUTE_REF_INVALID) {
		if (rt->ref_is_digest || rt->ref == NULL)
			return reg_req_error(r, MHD_HTTP_BAD_REQUEST, "DIGEST_INVALID", "invalid digest",
					     rt->ref);
		if (strstr(r->url, "/blobs/uploads/"))
			return reg_req_error(r, MHD_HTTP_NOT_FOUND, "BLOB_UPLOAD_UNKNOWN",
					     "blob upload unknown", NULL);
		return reg_req_error(r, MHD_HTTP_BAD_REQUEST, "TAG_INVALID", "invalid tag", NULL);
	}
	if (rt->kind == ROUTE_METRICS)
		return reg_handle_metrics(r);
	if (reg_auth_identify(r->reg->auth, reg_req_header(r, "Authorization"), &r->id) < 0)
		return reg_req_unauthorized(r, rt->name, REGISTRY_PULL);
	switch (rt->kind) {
	case ROUTE_BASE: return handle_base(r);
	case ROUTE_TOKEN: return reg_handle_token(r);
	case ROUTE_CATALOG: return reg_handle_catalog(r);
	case ROUTE_TAGS: return reg_handle_tags(r);
	case ROUTE_REFERRERS: return reg_handle_referrers(r);
	case ROUTE_BLOB: return reg_handle_blob(r);
	case ROUTE_MANIFEST: return reg_handle_manifest_begin(r);
	case ROUTE_UPLOAD_START:
	case ROUTE_UPLOAD: return reg_handle_upload_begin(r);
	default: return reg_req_error(r, MHD_HTTP_NOT_FOUND, "NOT_FOUND", "no such route", NULL);
	}
}

static enum MHD_Result dispatch_end(struct req *r)
{
	if (r->route.kind == ROUTE_MANIFEST)
		return reg_handle_manifest_end(r);
	if (r->route.kind == ROUTE_UPLOAD || r->route.kind == ROUTE_UPLOAD_START)
		return reg_handle_upload_end(r);
	return reg_req_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "UNKNOWN", "request not answered", NULL);
}

/* A body trickling in below http.body_min_rate once http.timeout has passed (slow loris). */
static bool body_too_slow(const struct req *r)
{
	const struct conn_limits l = { .header_timeout_s = r->reg->cfg->timeout_s,
				       .body_min_rate = r->reg->cfg->body_min_rate };
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (now.tv_sec - r->start.tv_sec) * 1000 + (now.tv_nsec - r->start.tv_nsec) / 1000000;
	return conn_overdue(&l, CONN_PHASE_BODY, ms, 0, r->bytes_in);
}

static enum MHD_Result on_body(struct req *r, const char *data, size_t len)
{
	r->bytes_in += len;
	if (body_too_slow(r)) {
		log_fields(LOG_LEVEL_INFO, "request body below http.body_min_rate: connection closed", "path",
			   r->url, NULL);
		return MHD_NO;
	}
	if (r->body == BODY_UPLOAD)
		return reg_handle_upload_data(r, data, len);
	if (r->body == BODY_BUFFER) {
		if (r->buf.len + len > r->buf_max) {
			r->overflow = true;
			return MHD_NO; /* drop the connection: the client ignored our limit */
		}
		strbuf_add(&r->buf, data, len);
	}
	return MHD_YES;
}

/*
 * Release the upload session as soon as the request is answered, not in on_completed: the
 * client may read our response and send its next request on another connection before MHD
 * reports this one complete (a spurious 409 "busy"). The response is only sent after we return.
 */
static enum MHD_Result release_if_answered(struct registry *reg, struct req *r, enum MHD_Result ret)
{
	if (r->responded && r->up) {
		reg_upload_release(&reg->uploads, r->up);
		r->up = NULL;
	}
	return ret;
}

/* con_cls marker set by on_uri: the raw request-target encodes a NUL byte. */
static char bad_target;

/* Called with the raw request-target before MHD decodes it; the result becomes con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls, (void)conn;
	return http_target_check(uri) < 0 ? &bad_target : NULL;
}

struct framing {
	size_t n_cl;
	const char *cl[2];
	bool te;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;
	(void)kind;
	if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		if (f->n_cl < 2)
			f->cl[f->n_cl] = value;
		f->n_cl++;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->te = true;
	}
	return MHD_YES;
}

/* NUL in the target, conflicting lengths, length with chunking: 400 and close, before routing. */
static enum MHD_Result refuse_framing(struct req *r, bool nul_target)
{
	struct framing f = { 0 };
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_framing, &f);
	const char *why = NULL;
	if (nul_target)
		why = "the path or query contains a NUL byte (%00)";
	else if (http_framing_check(f.n_cl, f.cl[0], f.cl[1], f.te) < 0)
		why = f.te ? "Content-Length together with Transfer-Encoding"
			   : "conflicting Content-Length headers";
	if (!why)
		return MHD_YES;
	r->route.kind = ROUTE_NONE;
	r->framing_refused = true;
	return reg_req_error(r, MHD_HTTP_BAD_REQUEST, "UNSUPPORTED", why, NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct registry *reg = cls;
	struct req *r = *con_cls;
	if (!r || r == (void *)&bad_target) {
		bool nul_target = r != NULL;
		r = xcalloc(1, sizeof(*r));
		*con_cls = r;
		r->reg = reg;
		r->conn = conn;
		r->url = url;
		r->method_name = method;
		r->method = parse_method(method);
		r->range_end = -1;
		strbuf_init(&r->buf, 0);
		clock_gettime(CLOCK_MONOTONIC, &r->start);
		atomic_fetch_add(&reg->metrics.in_flight, 1);
		reg_route_parse(url, &r->route);
		enum MHD_Result fr = refuse_framing(r, nul_target);
		if (r->framing_refused)
			return fr;
		if (strlen(url) > ROUTE_PATH_MAX)
			return reg_req_error(r, MHD_HTTP_URI_TOO_LONG, "NAME_INVALID",
					     "request path too long", NULL);
		/*
		 * Answering in this first callback makes MHD close the connection (the body
		 * might be unread), so body-less methods are answered on the next callback
		 * and keep-alive survives. Methods with bodies check headers now: an error
		 * then closes the connection instead of reading a body we refuse.
		 */
		r->begin_deferred = r->method == M_GET || r->method == M_HEAD || r->method == M_DELETE ||
				    r->method == M_OTHER;
		if (r->begin_deferred)
			return MHD_YES;
		return release_if_answered(reg, r, dispatch_begin(r));
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->responded)
			return MHD_YES; /* already answered (error): discard the rest */
		return release_if_answered(reg, r, on_body(r, upload_data, n));
	}
	if (r->responded)
		return MHD_YES;
	enum MHD_Result ret;
	if (r->begin_deferred) {
		r->begin_deferred = false;
		ret = dispatch_begin(r);
	} else {
		ret = dispatch_end(r);
	}
	return release_if_answered(reg, r, ret);
}

static void access_log(struct req *r, enum MHD_RequestTerminationCode toe)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double ms =
	    (double)(now.tv_sec - r->start.tv_sec) * 1e3 + (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
	char status[8], dur[32], in[24], out[24], addr[INET6_ADDRSTRLEN] = "-";
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
				  sizeof(addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
				  sizeof(addr));
	}
	snprintf(status, sizeof(status), "%u", r->status);
	snprintf(dur, sizeof(dur), "%.3f", ms);
	snprintf(in, sizeof(in), "%llu", (unsigned long long)r->bytes_in);
	snprintf(out, sizeof(out), "%llu", (unsigned long long)r->bytes_out);
	log_fields(LOG_LEVEL_INFO, "request", "method", r->method_name, "path", r->url, "route",
		   reg_route_kind_name(r->route.kind), "status", status, "duration_ms", dur, "bytes_in", in,
		   "bytes_out", out, "remote", addr, "user", r->id.user[0] ? r->id.user : "-", "completed",
		   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false", NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct registry *reg = cls;
	struct req *r = *con_cls;
	if (!r || r == (void *)&bad_target)
		return;
	*con_cls = NULL;
	if (r->up) {
		reg_upload_release(&reg->uploads, r->up);
		r->up = NULL;
	}
	atomic_fetch_add(&reg->metrics.bytes_in, r->bytes_in);
	atomic_fetch_add(&reg->metrics.bytes_out, r->bytes_out);
	if (reg->cfg->access_log && log_enabled(LOG_LEVEL_INFO))
		access_log(r, toe);
	strbuf_release(&r->buf);
	free(r);
	pthread_mutex_lock(&reg->drain_lock);
	if (atomic_fetch_sub(&reg->metrics.in_flight, 1) == 1)
		pthread_cond_broadcast(&reg->drain_cond);
	pthread_mutex_unlock(&reg->drain_lock);
}

static int read_pem(const char *path, char **ret, struct berth_error **err)
{
	struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, path, 1 << 20, &sb, err);
	if (r < 0) {
		strbuf_release(&sb);
		return r;
	}
	*ret = strbuf_detach(&sb, NULL);
	return 0;
}

int reg_start_daemon(struct registry *reg, struct berth_error **err)
{
	struct registry_config *c = reg->cfg;
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_TURBO | MHD_USE_ITC;
	/*
	 * A pull-through fetch blocks its thread for as long as the upstream takes;
	 * in the epoll pool that would stall every connection sharing the thread.
	 */
	if (c->proxy_url)
		c->thread_per_connection = true;
	if (c->thread_per_connection)
		flags |= MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	else
		flags |= MHD_USE_EPOLL_INTERNAL_THREAD;
	if (inet_pton(AF_INET, c->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(c->port);
	} else if (inet_pton(AF_INET6, c->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(c->port);
		flags |= MHD_USE_IPv6;
	} else {
		return berth_error_msg(err, EINVAL, "invalid listen address '%s' (expected an IP address)",
				       c->host);
	}
	_cleanup_free_ char *cert = NULL, *key = NULL;
	if (c->tls_cert || c->tls_key) {
		int r;
		if (!c->tls_cert || !c->tls_key)
			return berth_error_msg(err, EINVAL, "tls needs both a certificate and a key");
		if ((r = read_pem(c->tls_cert, &cert, err)) < 0 || (r = read_pem(c->tls_key, &key, err)) < 0)
			return r;
		flags |= MHD_USE_TLS;
	}
	struct MHD_OptionItem opts[] = {
		{ MHD_OPTION_SOCK_ADDR, 0, &ss },
		{ c->thread_per_connection ? MHD_OPTION_CONNECTION_LIMIT : MHD_OPTION_THREAD_POOL_SIZE,
		  c->thread_per_connection ? c->max_connections : c->threads, NULL },
		{ MHD_OPTION_CONNECTION_LIMIT, c->max_connections, NULL },
		{ MHD_OPTION_CONNECTION_TIMEOUT, c->timeout_s, NULL },
		{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, NULL },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, reg },
		{ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, reg },
		{ MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL },
		{ cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert },
		{ key ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key },
		{ MHD_OPTION_END, 0, NULL },
	};
	reg->daemon =
	    MHD_start_daemon(flags, 0, NULL, NULL, on_request, reg, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!reg->daemon)
		return berth_error_msg(err, EADDRNOTAVAIL, "start http server on '%s:%u' failed", c->host,
				       c->port);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(reg->daemon, MHD_DAEMON_INFO_BIND_PORT);
	reg->port = di ? di->port : c->port;
	return 0;
}

int registry_init(struct registry *reg, struct registry_config *cfg, struct berth_error **err)
{
	*reg = (struct registry){ .cfg = cfg };
	int r = reg_store_open(cfg->root, &reg->store, err);
	if (r < 0)
		return r;
	reg->store->fsync = cfg->fsync;
	reg_upload_table_init(&reg->uploads, reg->store, MAX_UPLOAD_SESSIONS);
	pthread_mutex_init(&reg->drain_lock, NULL);
	pthread_cond_init(&reg->drain_cond, NULL);
	return reg_auth_new(cfg, &reg->auth, err);
}

void registry_done(struct registry *reg)
{
	if (reg->daemon)
		MHD_stop_daemon(reg->daemon);
	reg_upload_table_done(&reg->uploads);
	reg_auth_free(reg->auth);
	reg_store_free(reg->store);
	pthread_mutex_destroy(&reg->drain_lock);
	pthread_cond_destroy(&reg->drain_cond);
}

/* Stop accepting, wait for in-flight requests (bounded), then stop. */
void reg_drain(struct registry *reg)
{
	MHD_socket lfd = MHD_quiesce_daemon(reg->daemon);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd); /* ours after quiescing: new connections are refused from now on */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += reg->cfg->shutdown_timeout_s;
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
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before MHD starts threads: they inherit the mask */
	signal(SIGPIPE, SIG_IGN);
	int r = registry_init(&reg, cfg, err);
	if (r == 0)
		r = reg_start_daemon(&reg, err);
	if (r < 0) {
		registry_done(&reg);
		return r;
	}
	/* Expire sessions that aged while no server ran before announcing the port (tests wait for it). */
	reg_upload_expire(&reg.uploads, cfg->upload_expiry_s);
	char port[8];
	snprintf(port, sizeof(port), "%u", reg.port);
	if (cfg->port_file)
		fs_write_file_atomic(cfg->port_file, port, strlen(port), 0644, NULL);
	log_fields(LOG_LEVEL_INFO, "registry listening", "addr", cfg->host, "port", port, "root", cfg->root,
		   "tls", cfg->tls_cert ? "true" : "false", "auth",
		   reg_auth_enabled(reg.auth) ? "true" : "false", NULL);
	for (;;) {
		struct timespec tick = { .tv_sec = 60 };
		int sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		size_t n = reg_upload_expire(&reg.uploads, cfg->upload_expiry_s);
		if (n)
			log_fields(LOG_LEVEL_INFO, "expired upload sessions", NULL);
	}
	log_fields(LOG_LEVEL_INFO, "registry shutting down", NULL);
	reg_drain(&reg);
	registry_done(&reg);
	log_fields(LOG_LEVEL_INFO, "registry stopped", NULL);
	return 0;
}
