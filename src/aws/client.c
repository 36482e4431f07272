/*
 * client.c - awsJson1_1 calls, SigV4-signed, over http/'s libcurl client
 * (see client.h). One http_client per aws_client: libcurl keeps the TLS
 * connection alive between the calls of a paginated walk.
 *
 * The Host header is set by us, not by libcurl, because it is signed: it is
 * the URL's authority without a default port, which is what botocore signs.
 */
#include <ctype.h>
#include <openssl/x509.h>
#include <time.h>

#include "aws/client.h"
#include "aws/sigv4.h"
#include "common/json.h"
#include "http/http.h"

/* A call that takes longer than this is a hung server (RunTask places synchronously). */
#define AWS_CALL_TIMEOUT_MS (120 * 1000)

struct aws_client {
	struct http_client *http;
	struct aws_config cfg;
	char *service, *target_prefix;
	char *host_header; /* "host[:port]" as signed */
	char *path;        /* request path, "/" unless the endpoint has one */
	char *endpoint;    /* for messages */
};

struct endpoint {
	bool tls;
	char *authority; /* host[:port], port kept only when not the scheme's default */
	char *tcp;       /* "tcp://host:port" for http_client_new */
	char *path;
};

static void endpoint_done(struct endpoint *e)
{
	free(e->authority);
	free(e->tcp);
	free(e->path);
}

static int parse_endpoint(const char *url, struct endpoint *e, struct berth_error **err)
{
	const char *rest;
	if (startswith(url, "https://"))
		e->tls = true, rest = url + 8;
	else if (startswith(url, "http://"))
		e->tls = false, rest = url + 7;
	else
		return berth_error_msg(err, EINVAL, "invalid endpoint '%s': expected https://HOST[:PORT]",
				       url);
	size_t alen = strcspn(rest, "/?#");
	if (rest[alen] == '?' || rest[alen] == '#' || alen == 0 || memchr(rest, '@', alen))
		return berth_error_msg(err, EINVAL, "invalid endpoint '%s'", url);
	_cleanup_free_ char *auth = xstrndup(rest, alen);
	for (char *p = auth; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	/* host and port: "[v6]:port", "[v6]", "name:port", "name" */
	const char *colon = auth[0] == '[' ? strstr(auth, "]:") : strrchr(auth, ':');
	if (auth[0] == '[' && !strchr(auth, ']'))
		return berth_error_msg(err, EINVAL, "invalid endpoint '%s'", url);
	if (colon && auth[0] == '[')
		colon++;
	const char *def = e->tls ? "443" : "80";
	const char *port = colon ? colon + 1 : def;
	size_t hlen = colon ? (size_t)(colon - auth) : strlen(auth);
	if (!*port || strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 || atoi(port) > 65535 ||
	    hlen == 0)
		return berth_error_msg(err, EINVAL, "invalid endpoint '%s': bad host or port", url);
	e->authority = streq(port, def) ? xstrndup(auth, hlen) : xstrdup(auth);
	e->tcp = xasprintf("tcp://%.*s:%s", (int)hlen, auth, port);
	e->path = xstrdup(rest[alen] ? rest + alen : "/");
	return 0;
}

struct aws_client *aws_client_free(struct aws_client *c)
{
	if (!c)
		return NULL;
	http_client_free(c->http);
	aws_config_done(&c->cfg);
	free(c->service);
	free(c->target_prefix);
	free(c->host_header);
	free(c->path);
	free(c->endpoint);
	free(c);
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int aws_client_new(const struct aws_config *cfg, const char *service, const char *target_prefix,
		   struct aws_client **ret, struct berth_error **err)
{
	struct endpoint e = { 0 };
	int r = parse_endpoint(cfg->endpoint, &e, err);
	if (r < 0) {
		endpoint_done(&e);
		return r;
	}
	_cleanup_(aws_client_freep) struct aws_client *c = xcalloc(1, sizeof(*c));
	c->cfg = (struct aws_config){
		.profile = dup_or_null(cfg->profile),
		.access_key = dup_or_null(cfg->access_key),
		.secret_key = dup_or_null(cfg->secret_key),
		.session_token = dup_or_null(cfg->session_token),
		.region = dup_or_null(cfg->region),
		.endpoint = dup_or_null(cfg->endpoint),
		.ca_bundle = dup_or_null(cfg->ca_bundle),
		.credentials_source = cfg->credentials_source,
	};
	c->service = xstrdup(service);
	c->target_prefix = xstrdup(target_prefix);
	c->host_header = TAKE_PTR(e.authority);
	c->path = TAKE_PTR(e.path);
	c->endpoint = xstrdup(cfg->endpoint);
	r = http_client_new(e.tcp, &c->http, err);
	if (r == 0 && e.tls) {
		/* http/ verifies against a CA file: without a bundle, OpenSSL's default one (the system's) */
		const char *sys = getenv(X509_get_default_cert_file_env());
		struct http_tls_files f = { .ca = cfg->ca_bundle ? cfg->ca_bundle
						  : sys && *sys  ? sys
								 : X509_get_default_cert_file() };
		r = http_client_set_tls(c->http, &f, true, err);
	}
	endpoint_done(&e);
	if (r < 0)
		return berth_error_wrap(err, r, "endpoint '%s'", cfg->endpoint);
	*ret = TAKE_PTR(c);
	return 0;
}

static void strip_type(char *t)
{
	char *hash = strrchr(t, '#');
	if (hash)
		memmove(t, hash + 1, strlen(hash + 1) + 1);
	t[strcspn(t, ":")] = '\0';
}

/* The value of header name (case-insensitive) in "Key: value\r\n" lines, or NULL. */
static char *header_value(const char *headers, const char *name)
{
	size_t nl = strlen(name);
	for (const char *p = headers; p && *p;) {
		size_t len = strcspn(p, "\r\n");
		if (len > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return xstrndup(v, len - (size_t)(v - p));
		}
		p += len;
		p += strspn(p, "\r\n");
	}
	return NULL;
}

void aws_parse_error(long status, const char *body, size_t len, const char *headers, char **ret_type,
		     char **ret_message)
{
	json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *t = json_string_value(json_object_get(j, "__type"));
	if (!t)
		t = json_string_value(json_object_get(j, "code"));
	const char *m = json_string_value(json_object_get(j, "message"));
	if (!m)
		m = json_string_value(json_object_get(j, "Message"));
	char *type = t ? xstrdup(t) : header_value(headers, "x-amzn-ErrorType");
	if (type)
		strip_type(type);
	if (!type || !*type) {
		free(type);
		type = xasprintf("HTTP %ld", status);
	}
	char *msg;
	if (m)
		msg = xstrdup(m);
	else if (!json_is_object(j) && len)
		msg = xstrndup(body, MIN(strcspn(body, "\r\n"), MIN(len, (size_t)512)));
	else
		msg = xstrdup("");
	json_decref(j);
	*ret_type = type;
	*ret_message = msg;
}

struct sink {
	struct strbuf *out;
	bool too_big;
};

static int on_body(void *ctx, const char *data, size_t len)
{
	struct sink *s = ctx;
	if (s->out->len + len > AWS_MAX_RESPONSE) {
		s->too_big = true;
		return 1;
	}
	strbuf_add(s->out, data, len);
	return 0;
}

/* Build the signed header lines of one call; *ret NULL-terminated, caller frees. */
static int sign(struct aws_client *c, const char *target, const char *body, size_t len, char ***ret,
		struct berth_error **err)
{
	const char *hdrs[] = {
		"host", c->host_header, "content-type", "application/x-amz-json-1.1", "x-amz-target", target,
		NULL
	};
	struct sigv4_signer s = { c->cfg.access_key, c->cfg.secret_key, c->cfg.session_token, c->cfg.region,
				  c->service };
	_cleanup_strv_ char **auth = NULL;
	int r = aws_sigv4_sign_request(&s, "POST", c->path, "", hdrs, body, len, time(NULL), &auth, err);
	if (r < 0)
		return r;
	size_t n = 0;
	while (auth[n])
		n++;
	char **all = xcalloc(n + 3, sizeof(char *));
	all[0] = xasprintf("Host: %s", c->host_header);
	all[1] = xasprintf("X-Amz-Target: %s", target);
	for (size_t i = 0; i < n; i++)
		all[2 + i] = TAKE_PTR(auth[i]);
	*ret = all;
	return 0;
}

int aws_client_call(struct aws_client *c, const char *op, const json_t *in, json_t **ret,
		    struct berth_error **err)
{
	_cleanup_free_ char *body = in ? json_dumps(in, JSON_COMPACT) : xstrdup("{}");
	if (!body)
		return berth_error_msg(err, EINVAL, "%s: cannot encode the request", op);
	size_t len = strlen(body);
	_cleanup_free_ char *target = xasprintf("%s.%s", c->target_prefix, op);
	_cleanup_strv_ char **headers = NULL;
	int r = sign(c, target, body, len, &headers, err);
	if (r < 0)
		return berth_error_wrap(err, r, "%s", op);
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT, resp_headers = STRBUF_INIT;
	struct sink sink = { &out, false };
	struct http_client_request req = {
		.method = "POST",
		.path = c->path,
		.content_type = "application/x-amz-json-1.1",
		.body = body,
		.body_len = len,
		.body_fd = -1,
		.on_body = on_body,
		.on_body_ctx = &sink,
		.timeout_ms = AWS_CALL_TIMEOUT_MS,
		.resp_headers = &resp_headers,
		.headers = (const char *const *)headers,
	};
	long status = 0;
	_cleanup_error_ struct berth_error *herr = NULL;
	r = http_client_do(c->http, &req, &status, NULL, &herr);
	if (r == -ECONNREFUSED)
		return berth_error_msg(err, ECONNREFUSED, "%s: cannot connect to '%s': connection refused",
				       op, c->endpoint);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(herr);
		return berth_error_msg(err, -r, "%s: %s: %s", op, c->endpoint, m);
	}
	if (sink.too_big)
		return berth_error_msg(err, EFBIG, "%s: response larger than %u bytes", op, AWS_MAX_RESPONSE);
	if (status < 200 || status > 299) {
		_cleanup_free_ char *type = NULL, *msg = NULL;
		aws_parse_error(status, out.buf, out.len, resp_headers.buf, &type, &msg);
		return berth_error_msg(err, EREMOTEIO, "%s: %s", type, msg);
	}
	json_t *j = json_loadb(out.buf, out.len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return berth_error_msg(err, EPROTO, "%s: the response is not a JSON object", op);
	}
	*ret = j;
	return 0;
}

int aws_client_paginate(struct aws_client *c, const char *op, const json_t *in, const char *result_key,
			json_t **ret, struct berth_error **err)
{
	_cleanup_json_ json_t *req = in ? json_deep_copy(in) : json_object();
	_cleanup_json_ json_t *all = json_array();
	for (int page = 0; page < AWS_MAX_PAGES; page++) {
		json_t *resp = NULL;
		int r = aws_client_call(c, op, req, &resp, err);
		if (r < 0)
			return r;
		json_t *items = json_object_get(resp, result_key);
		if (items && !json_is_array(items)) {
			json_decref(resp);
			return berth_error_msg(err, EPROTO, "%s: '%s' is not a list", op, result_key);
		}
		json_array_extend(all, items);
		const char *next = json_string_value(json_object_get(resp, "nextToken"));
		const char *prev = json_string_value(json_object_get(req, "nextToken"));
		if (!next || !*next) {
			json_decref(resp);
			*ret = TAKE_PTR(all);
			return 0;
		}
		if (prev && streq(prev, next)) {
			json_decref(resp);
			return berth_error_msg(err, EPROTO, "%s: the server repeated nextToken", op);
		}
		json_object_set_new(req, "nextToken", json_string(next));
		json_decref(resp);
	}
	return berth_error_msg(err, EPROTO, "%s: more than %d pages", op, AWS_MAX_PAGES);
}
