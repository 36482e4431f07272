/*
 * test-sigv4.c - SigV4 verification against AWS's published Signature
 * Version 4 test suite (context: AKIDEXAMPLE, us-east-1, service "service",
 * 20150830T123600Z), plus the header parser's refusals.
 */
#include "unit.h"

#include "server/sigv4.h"

#define SECRET    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define DATE      "20150830T123600Z"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct hdrs {
	const char *const *kv; /* name, value, ..., NULL */
};

static const char *lookup(void *ctx, const char *name)
{
	struct hdrs *h = ctx;
	for (const char *const *p = h->kv; *p; p += 2)
		if (!strcasecmp(p[0], name))
			return p[1];
	return NULL;
}

struct vector {
	const char *name, *method, *path, *query;
	const char *const *headers;
	const char *signed_headers;
	const char *canonical; /* NULL: not checked */
	const char *signature;
};

static const char *const H_VANILLA[] = { "Host", "example.amazonaws.com", "X-Amz-Date", DATE, NULL };
static const char *const H_CASE[] = {
	"Host", "example.amazonaws.com", "My-Header1", "VALUE1", "X-Amz-Date", DATE, NULL
};
static const char *const H_TRIM[] = { "Host",       "example.amazonaws.com", "My-Header1", " value1",
				      "My-Header2", " \"a   b   c\"",        "X-Amz-Date", DATE,
				      NULL };
static const char *const H_STS[] = {
	"Host",
	"example.amazonaws.com",
	"X-Amz-Date",
	DATE,
	"X-Amz-Security-Token",
	"AQoDYXdzEPT//////////"
	"wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTfl"
	"fKD8YUuwthAx7mSEI/qkPpKPi/"
	"kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvl"
	"Rd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
	"scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4r"
	"vx3iSIlTJabIQwj2ICCR/oLxBA==",
	NULL
};

static const struct vector VECTORS[] = {
	{ "get-vanilla", "GET", "/", "", H_VANILLA, "host;x-amz-date",
	  "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA,
	  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31" },
	{ "post-vanilla", "POST", "/", NULL, H_VANILLA, "host;x-amz-date",
	  "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA,
	  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b" },
	{ "get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1", H_VANILLA,
	  "host;x-amz-date",
	  "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:" DATE
	  "\n\nhost;x-amz-date\n" EMPTY_SHA,
	  "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500" },
	{ "post-header-value-case", "POST", "/", "", H_CASE, "host;my-header1;x-amz-date", NULL,
	  "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d" },
	{ "get-header-value-trim", "GET", "/", "", H_TRIM, "host;my-header1;my-header2;x-amz-date",
	  "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:" DATE
	  "\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA,
	  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736" },
	{ "get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "",
	  H_VANILLA, "host;x-amz-date", NULL,
	  "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f" },
	{ "post-sts-header-before", "POST", "/", "", H_STS, "host;x-amz-date;x-amz-security-token", NULL,
	  "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead" },
};

static void test_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(VECTORS); i++) {
		const struct vector *v = &VECTORS[i];
		_cleanup_free_ char *authz = xasprintf(
		    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
		    "SignedHeaders=%s, Signature=%s",
		    v->signed_headers, v->signature);
		struct sigv4_auth a;
		assert_int_equal(sigv4_parse_authorization(authz, &a, NULL), 0);
		assert_string_equal(a.access_key, "AKIDEXAMPLE");
		assert_string_equal(a.service, "service");
		struct hdrs h = { v->headers };
		_cleanup_free_ char *canonical = NULL;
		assert_int_equal(sigv4_canonical_request(v->method, v->path, v->query, &a, lookup, &h,
							 EMPTY_SHA, &canonical, NULL),
				 0);
		if (v->canonical)
			assert_string_equal(canonical, v->canonical);
		_cleanup_free_ char *sts = sigv4_string_to_sign(DATE, a.scope, canonical);
		char sig[65];
		sigv4_sign(SECRET, a.date, a.region, a.service, sts, sig);
		if (!streq(sig, v->signature))
			fail_msg("%s: signature %s, want %s", v->name, sig, v->signature);
		assert_true(sigv4_signature_equal(sig, a.signature));
		/* a wrong secret gives another signature */
		sigv4_sign("wrong", a.date, a.region, a.service, sts, sig);
		assert_false(sigv4_signature_equal(sig, a.signature));
		sigv4_auth_done(&a);
	}
}

static void test_string_to_sign(void **state)
{
	(void)state;
	_cleanup_free_ char *sts = sigv4_string_to_sign(
	    DATE, "20150830/us-east-1/service/aws4_request",
	    "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA);
	assert_string_equal(sts, "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/service/aws4_request\n"
				 "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87");
}

static void test_parse_refusals(void **state)
{
	(void)state;
	const char *sig = "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
	const char *bad[] = {
		"AWS4-HMAC-SHA1 Credential=A/20150830/us-east-1/ecs/aws4_request, SignedHeaders=host, x",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=A/2015083/us-east-1/ecs/aws4_request, SignedHeaders=host, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws5_request, SignedHeaders=host, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/aws4_request, SignedHeaders=host, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request/x, SignedHeaders=host, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, "
		"SignedHeaders=x-amz-date;host, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, SignedHeaders=host;host, "
		"%s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, SignedHeaders=Host, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, SignedHeaders=, %s",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, SignedHeaders=host, "
		"Signature=XYZ",
		"AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/aws4_request, Credential=B, %s",
		"Basic dXNlcjpwYXNz",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
		_cleanup_free_ char *h = xasprintf(bad[i], sig);
#pragma GCC diagnostic pop
		struct sigv4_auth a;
		_cleanup_error_ struct berth_error *err = NULL;
		if (sigv4_parse_authorization(h, &a, &err) != -EINVAL)
			fail_msg("accepted '%s'", h);
		assert_non_null(err);
	}
	assert_int_equal(sigv4_parse_authorization(NULL, NULL, NULL), -EINVAL);
}

static void test_amz_date(void **state)
{
	(void)state;
	time_t t;
	assert_int_equal(sigv4_parse_amz_date(DATE, &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(sigv4_parse_amz_date("20150830T123600", &t), -EINVAL);
	assert_int_equal(sigv4_parse_amz_date("2015-08-30T12:36:00Z", &t), -EINVAL);
	assert_int_equal(sigv4_parse_amz_date("20151330T123600Z", &t), -EINVAL);
}

static void test_missing_signed_header(void **state)
{
	(void)state;
	struct sigv4_auth a;
	assert_int_equal(
	    sigv4_parse_authorization("AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/"
				      "aws4_request, SignedHeaders=host;x-amz-target, Signature="
				      "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
				      &a, NULL),
	    0);
	struct hdrs h = { H_VANILLA };
	char *c = NULL;
	assert_int_equal(sigv4_canonical_request("POST", "/", "", &a, lookup, &h, EMPTY_SHA, &c, NULL),
			 -ENOENT);
	assert_null(c);
	sigv4_auth_done(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_string_to_sign),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_amz_date),
		cmocka_unit_test(test_missing_signed_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
