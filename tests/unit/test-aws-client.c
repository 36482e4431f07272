/*
 * test-aws-client.c - the awsJson1_1 client (aws/client.h): error bodies as
 * AWS services write them, endpoint URLs, and calls against an in-process
 * HTTP server that verifies each request's SigV4 signature with the
 * verifying side of aws/sigv4.h, pages with nextToken and fails on demand.
 */
#include "unit.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include "aws/client.h"
#include "aws/sigv4.h"
#include "common/json.h"
#include "http/http.h"

#define AKID   "AKIDTEST"
#define SECRET "testsecret"

static void check_error(long status, const char *body, const char *headers, const char *type, const char *msg)
{
	char *t = NULL, *m = NULL;
	aws_parse_error(status, body, strlen(body), headers, &t, &m);
	if (!streq(t, type) || !streq(m, msg))
		fail_msg("'%s': got '%s' '%s', want '%s' '%s'", body, t, m, type, msg);
	free(t);
	free(m);
}

static void test_parse_error(void **state)
{
	(void)state;
	check_error(400, "{\"__type\":\"ClusterNotFoundException\",\"message\":\"Cluster not found.\"}", NULL,
		    "ClusterNotFoundException", "Cluster not found.");
	/* namespaced types (ECS, most awsJson services), "Message" spelling */
	check_error(400, "{\"__type\":\"com.amazonaws.ecs#InvalidParameterException\",\"Message\":\"bad\"}",
		    NULL, "InvalidParameterException", "bad");
	/* the type only in x-amzn-ErrorType, with its ":http://..." suffix */
	check_error(403, "{\"message\":\"no\"}",
		    "HTTP/1.1 403 Forbidden\r\nx-amzn-ErrorType: "
		    "AccessDeniedException:http://internal.amazon.com/\r\n\r\n",
		    "AccessDeniedException", "no");
	check_error(400, "{\"code\":\"ThrottlingException\"}", NULL, "ThrottlingException", "");
	/* not JSON: the status and the body's first line */
	check_error(502, "Bad Gateway\nupstream", NULL, "HTTP 502", "Bad Gateway");
	check_error(500, "", NULL, "HTTP 500", "");
	check_error(500, "[1,2]", NULL, "HTTP 500", "[1,2]");
	check_error(400, "{\"__type\":\"\",\"message\":\"m\"}", NULL, "HTTP 400", "m");
	check_error(400, "{\"__type\":5}", NULL, "HTTP 400", "");
}

static struct aws_config config(const char *endpoint)
{
	return (struct aws_config){ .profile = (char *)"default",
				    .access_key = (char *)AKID,
				    .secret_key = (char *)SECRET,
				    .region = (char *)"us-east-1",
				    .endpoint = (char *)endpoint };
}

static void test_bad_endpoints(void **state)
{
	(void)state;
	static const char *const bad[] = { "ftp://127.0.0.1", "127.0.0.1:7443",  "https://",
					   "https://:443",    "https://h:99999", "https://h:12a",
					   "https://u@h:1/",  "https://h:1?x=1", "https://[::1",
					   "https://h:" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct aws_config c = config(bad[i]);
		struct aws_client *cl = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (aws_client_new(&c, "ecs", "P", &cl, &err) >= 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_null(cl);
	}
	static const char *const good[] = { "https://127.0.0.1:7443", "https://h", "http://127.0.0.1:80/",
					    "https://[::1]:7443", "https://ecs.us-east-1.amazonaws.com/" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct aws_config c = config(good[i]);
		struct aws_client *cl = NULL;
		if (aws_client_new(&c, "ecs", "P", &cl, NULL) < 0)
			fail_msg("refused '%s'", good[i]);
		aws_client_free(cl);
	}
}

/* ---- against a local server ---- */

struct fake {
	struct http_server *srv;
	char *endpoint;
	int calls;
	char *last_host;
};

static const char *req_header(void *ctx, const char *name)
{
	return http_request_header(ctx, name);
}

/* NULL when the request is signed correctly, else why not. */
static const char *verify(struct http_request *req)
{
	struct sigv4_auth a;
	if (aws_sigv4_parse_authorization(http_request_header(req, "Authorization"), &a, NULL) < 0)
		return "unparsable Authorization";
	size_t len;
	const char *body = http_request_body(req, &len);
	char payload[65], sig[65];
	aws_sigv4_sha256_hex(body ? body : "", len, payload);
	_cleanup_free_ char *canonical = NULL;
	const char *why = NULL;
	const char *date = http_request_header(req, "X-Amz-Date");
	if (!streq(a.access_key, AKID) || !streq(a.service, "ecs") || !streq(a.region, "us-east-1") || !date)
		why = "wrong scope";
	else if (aws_sigv4_canonical_request("POST", "/", "", &a, req_header, req, payload, &canonical,
					     NULL) < 0)
		why = "missing signed header";
	if (!why) {
		_cleanup_free_ char *sts = aws_sigv4_string_to_sign(date, a.scope, canonical);
		aws_sigv4_sign(SECRET, a.date, a.region, a.service, sts, sig);
		if (!aws_sigv4_signature_equal(sig, a.signature))
			why = "signature mismatch";
	}
	aws_sigv4_auth_done(&a);
	return why;
}

static void reply(struct http_request *req, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	http_respond(req, status, "application/x-amz-json-1.1", s, strlen(s));
}

static void handler(struct http_request *req, void *userdata)
{
	struct fake *f = userdata;
	f->calls++;
	free(f->last_host);
	f->last_host = xstrdup(http_request_header(req, "Host") ?: "");
	const char *why = verify(req);
	if (why)
		return reply(req, 403,
			     json_pack("{s:s,s:s}", "__type", "InvalidSignatureException", "message", why));
	const char *target = http_request_header(req, "X-Amz-Target") ?: "";
	const char *ct = http_request_header(req, "Content-Type") ?: "";
	if (!streq(ct, "application/x-amz-json-1.1") || !startswith(target, "Svc."))
		return reply(
		    req, 400,
		    json_pack("{s:s,s:s}", "__type", "UnknownOperationException", "message", target));
	size_t len;
	const char *body = http_request_body(req, &len);
	json_t *in = json_loadb(body, len, 0, NULL);
	const char *tok = json_string_value(json_object_get(in, "nextToken"));
	const char *op = target + 4;
	json_t *out;
	unsigned status = 200;
	if (streq(op, "List") && !tok)
		out = json_pack("{s:[s,s],s:s}", "items", "a", "b", "nextToken", "t1");
	else if (streq(op, "List") && streq(tok, "t1"))
		out = json_pack("{s:[s],s:s}", "items", "c", "nextToken", "t2");
	else if (streq(op, "List") && streq(tok, "t2"))
		out = json_pack("{s:[s],s:n}", "items", "d", "nextToken");
	else if (streq(op, "Loop"))
		out = json_pack("{s:[],s:s}", "items", "nextToken", "same");
	else if (streq(op, "Echo"))
		out = json_pack("{s:O}", "got", in);
	else if (streq(op, "Fail"))
		out = json_pack("{s:s,s:s}", "__type", "com.amazonaws.ecs#ClusterNotFoundException",
				"message", "Cluster not found."),
		status = 400;
	else {
		json_decref(in);
		char *s = xstrdup("not json");
		return http_respond(req, 200, "text/plain", s, strlen(s));
	}
	json_decref(in);
	reply(req, status, out);
}

static int fake_setup(void **state)
{
	struct fake *f = xcalloc(1, sizeof(*f));
	int fd = http_listen_tcp("127.0.0.1:0", NULL);
	assert_true(fd >= 0);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	struct http_server_opts o = { .listen_fd = fd, .handler = handler, .userdata = f };
	assert_int_equal(http_server_start(&o, &f->srv, NULL), 0);
	f->endpoint = xasprintf("http://127.0.0.1:%d", ntohs(a.sin_port));
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;
	http_server_stop(f->srv);
	free(f->endpoint);
	free(f->last_host);
	free(f);
	return 0;
}

static struct aws_client *client(struct fake *f, const char *secret)
{
	struct aws_config c = config(f->endpoint);
	c.secret_key = (char *)secret;
	struct aws_client *cl = NULL;
	assert_int_equal(aws_client_new(&c, "ecs", "Svc", &cl, NULL), 0);
	return cl;
}

static void test_call_signed(void **state)
{
	struct fake *f = *state;
	_cleanup_(aws_client_freep) struct aws_client *c = client(f, SECRET);
	_cleanup_json_ json_t *in = json_pack("{s:s,s:i}", "cluster", "default", "n", 3), *out = NULL;
	assert_int_equal(aws_client_call(c, "Echo", in, &out, NULL), 0);
	assert_true(json_equal(json_object_get(out, "got"), in));
	/* the signed Host is the URL's authority with its port */
	assert_string_equal(f->last_host, f->endpoint + strlen("http://"));
	json_t *empty = NULL;
	assert_int_equal(aws_client_call(c, "Echo", NULL, &empty, NULL), 0);
	assert_int_equal(json_object_size(json_object_get(empty, "got")), 0);
	json_decref(empty);
}

static void test_call_errors(void **state)
{
	struct fake *f = *state;
	_cleanup_(aws_client_freep) struct aws_client *c = client(f, SECRET);
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(aws_client_call(c, "Fail", NULL, &out, &err), -EREMOTEIO);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "ClusterNotFoundException: Cluster not found.");
	assert_null(out);
	_cleanup_error_ struct berth_error *err2 = NULL;
	assert_int_equal(aws_client_call(c, "Garbage", NULL, &out, &err2), -EPROTO);
	/* a wrong secret is refused by the verifying side */
	_cleanup_(aws_client_freep) struct aws_client *bad = client(f, "wrong");
	_cleanup_error_ struct berth_error *err3 = NULL;
	assert_int_equal(aws_client_call(bad, "Echo", NULL, &out, &err3), -EREMOTEIO);
	_cleanup_free_ char *m3 = berth_error_string(err3);
	assert_string_equal(m3, "InvalidSignatureException: signature mismatch");
}

static void test_paginate(void **state)
{
	struct fake *f = *state;
	_cleanup_(aws_client_freep) struct aws_client *c = client(f, SECRET);
	_cleanup_json_ json_t *all = NULL;
	int before = f->calls;
	assert_int_equal(aws_client_paginate(c, "List", NULL, "items", &all, NULL), 0);
	_cleanup_json_ json_t *want = json_pack("[s,s,s,s]", "a", "b", "c", "d");
	assert_true(json_equal(all, want));
	assert_int_equal(f->calls - before, 3);
	/* starting from a token */
	_cleanup_json_ json_t *in = json_pack("{s:s}", "nextToken", "t2"), *rest = NULL;
	assert_int_equal(aws_client_paginate(c, "List", in, "items", &rest, NULL), 0);
	assert_int_equal(json_array_size(rest), 1);
	/* a server that repeats its token is an error, not an endless loop */
	json_t *loop = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(aws_client_paginate(c, "Loop", NULL, "items", &loop, &err), -EPROTO);
	assert_null(loop);
	/* an error on any page fails the walk */
	_cleanup_error_ struct berth_error *err2 = NULL;
	assert_int_equal(aws_client_paginate(c, "Fail", NULL, "items", &loop, &err2), -EREMOTEIO);
}

static void test_connection_refused(void **state)
{
	(void)state;
	/* a port nothing listens on: bind one, note it, close it */
	int fd = http_listen_tcp("127.0.0.1:0", NULL);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	_cleanup_free_ char *ep = xasprintf("http://127.0.0.1:%d", ntohs(a.sin_port));
	struct aws_config cfg = config(ep);
	_cleanup_(aws_client_freep) struct aws_client *c = NULL;
	assert_int_equal(aws_client_new(&cfg, "ecs", "Svc", &c, NULL), 0);
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(aws_client_call(c, "Echo", NULL, &out, &err), -ECONNREFUSED);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(strstr(m, ep));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_error),
		cmocka_unit_test(test_bad_endpoints),
		cmocka_unit_test_setup_teardown(test_call_signed, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_call_errors, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_paginate, fake_setup, fake_teardown),
		cmocka_unit_test(test_connection_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
