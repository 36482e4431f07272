/*
 * remote.c - registry sessions: scheme, TLS, credentials and auth.
 *
 * Scheme: HTTPS always; plain HTTP only for loopback hosts and hosts listed as
 * insecure, and then only after HTTPS failed to connect (docker's behaviour).
 * For those insecure hosts HTTPS is not verified either (dockerd: newTLSConfig's
 * InsecureSkipVerify = !isSecure), so a loopback registry with a self-signed
 * certificate works without certs.d, as with dockerd.
 * Auth: a request that gets 401 is answered according to WWW-Authenticate:
 * Bearer -> fetch a token from the realm (with Basic credentials if we have
 * them) for the session's scope; Basic -> send credentials. Credentials come
 * from the caller, else from $DOCKER_CONFIG/config.json or ~/.docker/config.json.
 */
#include <arpa/inet.h>
#include <sys/stat.h>

#include "common/base64.h"
#include "common/json.h"
#include "image/remote.h"

#define REMOTE_CONNECT_TIMEOUT 15L /* seconds */
#define TOKEN_MAX              (1u << 20)
#define ERROR_BODY_MAX         (64u << 10)

void image_http_req_done(struct http_req *q)
{
	free(q->location);
	free(q->resp_type);
	free(q->resp_digest);
	free(q->www_auth);
	q->location = q->resp_type = q->resp_digest = q->www_auth = NULL;
}

static bool host_is_loopback(const char *host)
{
	_cleanup_free_ char *h = NULL;
	if (host[0] == '[') {
		const char *e = strchr(host, ']');
		h = e ? xstrndup(host + 1, (size_t)(e - host - 1)) : xstrdup(host);
	} else {
		const char *c = strchr(host, ':');
		h = c ? xstrndup(host, (size_t)(c - host)) : xstrdup(host);
	}
	if (streq(h, "localhost"))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* Host part of a config.json "auths" key ("https://host/v1/" -> "host"). */
static char *auth_key_host(const char *key)
{
	const char *p = strstr(key, "://");
	p = p ? p + 3 : key;
	return xstrndup(p, strcspn(p, "/"));
}

static void load_docker_config(struct remote *rm)
{
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	_cleanup_free_ char *path = dir ? xasprintf("%s/config.json", dir)
					: xasprintf("%s/.docker/config.json", home ? home : "/root");
	_cleanup_json_ json_t *doc = NULL;
	if (json_load_path(path, 1u << 20, &doc, NULL) < 0)
		return;
	json_t *auths = json_object_get(doc, "auths");
	const char *key;
	json_t *v;
	const char *want = streq(rm->ref->domain, "docker.io") ? "index.docker.io" : rm->ref->domain;
	json_object_foreach (auths, key, v) {
		_cleanup_free_ char *h = auth_key_host(key);
		if (!streq(h, want) && !streq(h, rm->host))
			continue;
		const char *a = json_string_value(json_object_get(v, "auth"));
		const char *it = json_string_value(json_object_get(v, "identitytoken"));
		_cleanup_free_ void *raw = NULL;
		size_t rawlen;
		_cleanup_free_ char *dec =
		    a && base64_decode(a, &raw, &rawlen) == 0 ? xstrndup(raw, rawlen) : NULL;
		char *colon = dec ? strchr(dec, ':') : NULL;
		if (colon) {
			rm->user = xstrndup(dec, (size_t)(colon - dec));
			rm->pass = xstrdup(colon + 1);
		} else {
			const char *u = json_string_value(json_object_get(v, "username"));
			const char *pw = json_string_value(json_object_get(v, "password"));
			if (u && pw) {
				rm->user = xstrdup(u);
				rm->pass = xstrdup(pw);
			}
		}
		if (it)
			rm->identity_token = xstrdup(it);
		return;
	}
}

static void load_certs(struct remote *rm)
{
	const char *dir = rm->o && rm->o->certs_dir ? rm->o->certs_dir : "/etc/docker/certs.d";
	_cleanup_free_ char *ca = xasprintf("%s/%s/ca.crt", dir, rm->host);
	_cleanup_free_ char *cert = xasprintf("%s/%s/client.cert", dir, rm->host);
	_cleanup_free_ char *key = xasprintf("%s/%s/client.key", dir, rm->host);
	if (access(ca, R_OK) == 0)
		rm->ca_file = TAKE_PTR(ca);
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0) {
		rm->client_cert = TAKE_PTR(cert);
		rm->client_key = TAKE_PTR(key);
	}
}

void image_remote_xfer_req(struct remote *rm, const char *url, const char **hdrs, size_t n,
			   struct http_xfer_req *ret)
{
	if (rm->auth)
		hdrs[n++] = rm->auth;
	hdrs[n] = NULL;
	*ret = (struct http_xfer_req){
		.url = url,
		.headers = hdrs,
		.connect_timeout_ms = REMOTE_CONNECT_TIMEOUT * 1000,
		.low_speed_limit = 1,
		.low_speed_time_s = 60,
		.max_redirs = 5,
		.protocols = "http,https",
		.redir_protocols = rm->insecure ? "http,https" : "https",
		.user_agent = "berth/" BERTH_VERSION,
		.ca_file = rm->ca_file,
		/* docker's insecure registries (loopback ones by default): HTTPS unverified, then HTTP */
		.tls_no_verify = rm->insecure,
		.cert_file = rm->client_cert,
		.key_file = rm->client_cert ? rm->client_key : NULL,
	};
}

char *image_remote_url(struct remote *rm, const char *kind, const char *what)
{
	return xasprintf("%s/v2/%s/%s/%s", rm->base, rm->ref->path, kind, what);
}

/* ---- one request ---- */

static char *header_value(const char *line, size_t len, const char *name)
{
	size_t nl = strlen(name);
	if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	return xstrndup(v, (size_t)(end - v));
}

static int on_header(void *ud, const char *line, size_t len)
{
	struct http_req *q = ud;
	char *v;
	if (len >= 5 && !strncmp(line, "HTTP/", 5)) { /* new response (redirect): reset */
		image_http_req_done(q);
		return 0;
	}
	if ((v = header_value(line, len, "Location")))
		free(q->location), q->location = v;
	else if ((v = header_value(line, len, "Content-Type")))
		free(q->resp_type), q->resp_type = v;
	else if ((v = header_value(line, len, "Docker-Content-Digest")))
		free(q->resp_digest), q->resp_digest = v;
	else if ((v = header_value(line, len, "WWW-Authenticate")))
		free(q->www_auth), q->www_auth = v;
	return 0;
}

static ssize_t on_read(void *ud, char *buf, size_t want)
{
	struct http_req *q = ud;
	if (q->in_buf) {
		size_t k = MIN(want, q->in_len - q->in_sent);
		memcpy(buf, q->in_buf + q->in_sent, k);
		q->in_sent += k;
		return (ssize_t)k;
	}
	uint64_t left = q->in_size - q->in_sent;
	size_t k = (size_t)MIN((uint64_t)want, left);
	ssize_t r = pread(q->in_fd, buf, k, (off_t)(q->in_off + q->in_sent));
	if (r < 0)
		return -errno;
	q->in_sent += (uint64_t)r;
	return r;
}

static int perform(struct remote *rm, struct http_req *q, struct berth_error **err)
{
	_cleanup_free_ char *acc = q->accept ? xasprintf("Accept: %s", q->accept) : NULL;
	_cleanup_free_ char *ct = q->content_type ? xasprintf("Content-Type: %s", q->content_type) : NULL;
	_cleanup_free_ char *cr = q->content_range ? xasprintf("Content-Range: %s", q->content_range) : NULL;
	const char *hdrs[5];
	size_t n = 0;
	if (acc)
		hdrs[n++] = acc;
	if (ct)
		hdrs[n++] = ct;
	if (cr)
		hdrs[n++] = cr;
	struct http_xfer_req r;
	image_remote_xfer_req(rm, q->url, hdrs, n, &r);
	r.method = q->method;
	r.out = q->body;
	r.out_max = q->body_max;
	r.on_header = on_header;
	r.header_ctx = q;
	q->in_sent = 0;
	if (streq(q->method, "PUT") || streq(q->method, "PATCH") || streq(q->method, "POST")) {
		bool upload = q->in_buf || q->in_size > 0;
		r.read = on_read;
		r.read_ctx = q;
		r.body_size = upload ? (int64_t)(q->in_buf ? q->in_len : q->in_size) : 0;
	}
	if (q->body)
		strbuf_reset(q->body);
	image_http_req_done(q);
	_cleanup_http_xfer_ struct http_xfer *x = http_xfer_new();
	struct http_xfer_res res;
	int k = http_xfer_perform(x, &r, &res, NULL);
	q->status = res.status;
	if (k >= 0)
		return 0;
	if (res.fail == HTTP_XFER_TOO_LARGE)
		return berth_error_msg(err, EFBIG, "%s '%s': response larger than %zu bytes", q->method,
				       q->url, q->body_max);
	return berth_error_msg(err, res.fail == HTTP_XFER_TIMEOUT ? ETIMEDOUT : ECONNREFUSED, "%s '%s': %s",
			       q->method, q->url, res.reason);
}

/* Parse `key="value"` pairs of a challenge. */
static char *challenge_param(const char *ch, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = ch; (p = strcasestr(p, key)); p += kl) {
		if (p != ch && p[-1] != ' ' && p[-1] != ',')
			continue;
		if (p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		if (*v == '"') {
			const char *e = strchr(v + 1, '"');
			return e ? xstrndup(v + 1, (size_t)(e - v - 1)) : NULL;
		}
		return xstrndup(v, strcspn(v, ", "));
	}
	return NULL;
}

static int fetch_token(struct remote *rm, const char *challenge, struct berth_error **err)
{
	_cleanup_free_ char *realm = challenge_param(challenge, "realm");
	_cleanup_free_ char *service = challenge_param(challenge, "service");
	if (!realm)
		return berth_error_msg(err, EPROTO, "bearer challenge without realm");
	_cleanup_free_ char *esvc = http_url_escape(service ? service : "");
	_cleanup_free_ char *escope = http_url_escape(rm->scope ? rm->scope : "");
	_cleanup_free_ char *url = xasprintf("%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?",
					     esvc, rm->scope ? "&scope=" : "", rm->scope ? escope : "");
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	struct http_req q = { .method = "GET", .url = url, .body = &body, .body_max = TOKEN_MAX };
	free(rm->auth);
	rm->auth = NULL;
	if (rm->user && rm->pass) {
		_cleanup_free_ char *up = xasprintf("%s:%s", rm->user, rm->pass);
		_cleanup_free_ char *b = base64_encode(up, strlen(up));
		rm->auth = xasprintf("Authorization: Basic %s", b);
	}
	_cleanup_free_ char *form = NULL;
	if (rm->identity_token && !(rm->user && rm->pass)) {
		/* OAuth2 refresh token: POST the form to the realm (docker's identitytoken) */
		_cleanup_free_ char *etok = http_url_escape(rm->identity_token);
		form =
		    xasprintf("grant_type=refresh_token&client_id=berth&service=%s&scope=%s&refresh_token=%s",
			      esvc, escope, etok);
		q.method = "POST";
		q.url = realm;
		q.in_buf = form;
		q.in_len = strlen(form);
		q.content_type = "application/x-www-form-urlencoded";
	}
	int r = perform(rm, &q, err);
	free(rm->auth);
	rm->auth = NULL;
	if (r < 0)
		return berth_error_wrap(err, r, "get registry token");
	if (q.status != 200) {
		r = image_remote_status_error(&q, "get registry token", err);
		image_http_req_done(&q);
		return r;
	}
	image_http_req_done(&q);
	_cleanup_json_ json_t *doc = NULL;
	r = json_parse(body.buf, body.len, "token response", &doc, err);
	if (r < 0)
		return r;
	const char *tok = json_string_value(json_object_get(doc, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(doc, "access_token"));
	if (!tok || !*tok)
		return berth_error_msg(err, EPROTO, "token response without a token");
	rm->auth = xasprintf("Authorization: Bearer %s", tok);
	return 0;
}

static int authenticate(struct remote *rm, const char *challenge, struct berth_error **err)
{
	if (rm->o && rm->o->auth && rm->o->auth->registry_token) {
		free(rm->auth);
		rm->auth = xasprintf("Authorization: Bearer %s", rm->o->auth->registry_token);
		return 0;
	}
	if (challenge && !strncasecmp(challenge, "Bearer", 6))
		return fetch_token(rm, challenge, err);
	if (!rm->user || !rm->pass)
		return berth_error_msg(err, EACCES, "unauthorized: authentication required for '%s'",
				       rm->host);
	_cleanup_free_ char *up = xasprintf("%s:%s", rm->user, rm->pass);
	_cleanup_free_ char *b = base64_encode(up, strlen(up));
	free(rm->auth);
	rm->auth = xasprintf("Authorization: Basic %s", b);
	return 0;
}

int image_remote_do(struct remote *rm, struct http_req *q, struct berth_error **err)
{
	for (int attempt = 0;; attempt++) {
		int r = perform(rm, q, err);
		if (r < 0)
			return r;
		if (q->status != 401 || attempt > 0)
			return 0;
		_cleanup_free_ char *ch = q->www_auth ? xstrdup(q->www_auth) : NULL;
		r = authenticate(rm, ch, err);
		if (r < 0)
			return r;
	}
}

int image_remote_status_error(struct http_req *q, const char *what, struct berth_error **err)
{
	const char *msg = NULL;
	_cleanup_json_ json_t *doc = NULL;
	if (q->body && q->body->len && json_parse(q->body->buf, q->body->len, "error", &doc, NULL) == 0) {
		json_t *e0 = json_array_get(json_object_get(doc, "errors"), 0);
		msg = json_string_value(json_object_get(e0, "message"));
		if (!msg)
			msg = json_string_value(json_object_get(doc, "details"));
	}
	int code = q->status == 401 || q->status == 403 ? EACCES : q->status == 404 ? ENOENT : EPROTO;
	if (q->status == 401)
		return berth_error_msg(err, code, "%s: unauthorized: %s", what,
				       msg ? msg : "authentication required");
	if (q->status == 404)
		return berth_error_msg(err, code, "%s: not found%s%s", what, msg ? ": " : "", msg ? msg : "");
	return berth_error_msg(err, code, "%s: registry returned HTTP %ld%s%s", what, q->status,
			       msg ? ": " : "", msg ? msg : "");
}

void image_remote_emit(const struct image_remote_opts *o, const char *id, const char *status, uint64_t cur,
		       uint64_t total)
{
	if (!o || !o->progress)
		return;
	struct image_progress p = { id, status, cur, total };
	o->progress(&p, o->progress_data);
}

static bool insecure_listed(const struct image_remote_opts *o, const char *host)
{
	for (size_t i = 0; o && o->insecure_registries && o->insecure_registries[i]; i++)
		if (streq(o->insecure_registries[i], host))
			return true;
	return false;
}

/* GET /v2/ over https, falling back to http when allowed. Authenticates early. */
static int probe(struct remote *rm, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	for (int pass = 0; pass < 2; pass++) {
		free(rm->base);
		rm->base = xasprintf("%s://%s", pass == 0 ? "https" : "http", rm->host);
		_cleanup_free_ char *url = xasprintf("%s/v2/", rm->base);
		struct http_req q = {
			.method = "GET", .url = url, .body = &body, .body_max = ERROR_BODY_MAX
		};
		_cleanup_error_ struct berth_error *e = NULL;
		int r = perform(rm, &q, &e);
		if (r < 0 && pass == 0 && rm->insecure) {
			image_http_req_done(&q);
			continue;
		}
		if (r < 0) {
			image_http_req_done(&q);
			if (err) {
				berth_error_free(*err);
				*err = TAKE_PTR(e);
			}
			return berth_error_wrap(err, r, "ping registry '%s'", rm->host);
		}
		if (q.status == 401)
			r = authenticate(rm, q.www_auth, err);
		image_http_req_done(&q);
		return r;
	}
	return berth_error_msg(err, ECONNREFUSED, "ping registry '%s': no usable scheme", rm->host);
}

int image_remote_open(struct image_store *s, const struct image_ref *ref, const struct image_remote_opts *o,
		      bool push, struct remote *ret, struct berth_error **err)
{
	struct remote rm = { .s = s, .o = o, .ref = image_ref_dup(ref) };
	rm.host = xstrdup(streq(ref->domain, "docker.io") ? "registry-1.docker.io" : ref->domain);
	rm.insecure =
	    host_is_loopback(rm.host) || insecure_listed(o, rm.host) || insecure_listed(o, ref->domain);
	rm.scope = *ref->path ? xasprintf("repository:%s:%s", ref->path, push ? "pull,push" : "pull") : NULL;
	if (o && o->auth && o->auth->username && o->auth->password) {
		rm.user = xstrdup(o->auth->username);
		rm.pass = xstrdup(o->auth->password);
	} else if (o && o->auth && o->auth->identity_token) {
		rm.identity_token = xstrdup(o->auth->identity_token);
	} else {
		load_docker_config(&rm);
	}
	load_certs(&rm);
	int r = probe(&rm, err);
	if (r < 0) {
		image_remote_done(&rm);
		return r;
	}
	*ret = rm;
	return 0;
}

void image_remote_done(struct remote *rm)
{
	image_ref_free(rm->ref);
	free(rm->host);
	free(rm->base);
	free(rm->scope);
	free(rm->auth);
	free(rm->user);
	free(rm->pass);
	free(rm->identity_token);
	free(rm->ca_file);
	free(rm->client_cert);
	free(rm->client_key);
	memset(rm, 0, sizeof(*rm));
}
