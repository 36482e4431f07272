/*
 * test-http-quick.c - the fast path's framing (http/quick.c): a plain
 * complete request is READY with its method, path and body; a partial one
 * waits (MORE); anything the fast path does not handle exactly like
 * libmicrohttpd is PASSed on: other versions, queries and escapes, chunked
 * or doubled lengths, Expect, Upgrade, Connection: close, folded or broken
 * header lines, pipelined requests, oversize heads and bodies.
 */
#include "unit.h"

#include "http/quick.h"

static enum http_quick_parse parse(const char *s, struct http_quick_req *q)
{
	return http_quick_parse(s, strlen(s), q);
}

static void test_ready(void **state)
{
	(void)state;
	struct http_quick_req q;
	assert_int_equal(
	    parse("POST /agent/v1/heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &q),
	    HTTP_QUICK_READY);
	assert_string_equal(q.method, "POST");
	assert_string_equal(q.path, "/agent/v1/heartbeat");
	assert_int_equal(q.body_len, 0);
	assert_int_equal(
	    parse("POST /a HTTP/1.1\r\ncontent-length:  3 \r\nConnection: keep-alive\r\nhost: y\r\n\r\nabc",
		  &q),
	    HTTP_QUICK_READY);
	assert_int_equal(q.body_len, 3);
	assert_memory_equal(q.body, "abc", 3);
	assert_int_equal(parse("GET /x HTTP/1.1\r\nHost: x\r\n\r\n", &q), HTTP_QUICK_READY); /* no body */
	assert_int_equal(q.body_len, 0);
}

static void test_more(void **state)
{
	(void)state;
	struct http_quick_req q;
	assert_int_equal(parse("", &q), HTTP_QUICK_MORE);
	assert_int_equal(parse("POST /a HTTP/1.1\r\nContent-Le", &q), HTTP_QUICK_MORE);
	assert_int_equal(parse("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nab", &q),
			 HTTP_QUICK_MORE);
}

static void test_pass(void **state)
{
	(void)state;
	struct http_quick_req q;
	const char *pass[] = {
		"POST /a HTTP/1.0\r\n\r\n",
		"POST /a?x=1 HTTP/1.1\r\n\r\n",
		"POST /a%00 HTTP/1.1\r\n\r\n",
		"post /a HTTP/1.1\r\n\r\n",
		"POST a HTTP/1.1\r\n\r\n",
		"POST  /a HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1 \r\n\r\n",
		"POST /a HTTP/1.1\n\r\n\r\n",
		"VERYLONGMETHOD /a HTTP/1.1\r\n\r\n",
		"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
		"POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length:\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
		"POST /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
		"GET /a HTTP/1.1\r\nUpgrade: tcp\r\n\r\n",
		"GET /a HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
		"GET /a HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
		"GET /a HTTP/1.1\r\nX a\r\n\r\n",
		"GET /a HTTP/1.1\r\nX: a\rb\r\n\r\n",
		"GET /a HTTP/1.1\r\nX\x01: a\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", /* pipelined */
		"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nxy",
		"POST /a HTTP/1.1\r\nContent-Length: 5000\r\n\r\n",
		"GET /a HTTP/1.1\r\n\r\n",                        /* no Host: the server's 400 */
		"GET /a HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n",  /* two */
		"GET /a HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n", /* DEL in a value */
		"GET /a HTTP/1.1\r\nHost : x\r\n\r\n",            /* space before the colon */
	};
	for (size_t i = 0; i < ARRAY_SIZE(pass); i++) {
		if (parse(pass[i], &q) != HTTP_QUICK_PASS)
			fail_msg("not passed on: %s", pass[i]);
	}
	/* a head that never ends within the limit */
	char big[HTTP_QUICK_MAX + 16];
	memset(big, 'a', sizeof(big));
	assert_int_equal(http_quick_parse(big, sizeof(big), &q), HTTP_QUICK_PASS);
	assert_int_equal(http_quick_parse(big, 100, &q), HTTP_QUICK_MORE);
}

static void test_format(void **state)
{
	(void)state;
	size_t n = 0;
	_cleanup_free_ char *out = http_quick_format(200, "application/json", "{}\n", 3, &n);
	_cleanup_free_ char *s = xstrndup(out, n);
	assert_true(startswith(s, "HTTP/1.1 200 OK\r\nServer: berth/"));
	assert_non_null(strstr(s, "\r\nDate: "));
	assert_non_null(strstr(s, "\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{}\n"));
	struct http_quick_req q;
	(void)q;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready),
		cmocka_unit_test(test_more),
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
