/*
 * test-sigv4.c - SigV4 verification against AWS's published Signature
 * Version 4 test suite (context: AKIDEXAMPLE, us-east-1, service "service",
 * 20150830T123600Z), plus the header parser's refusals, and the signing
 * side (aws_sigv4_sign_request) against the same vectors.
 */
#include "unit.h"

#include "aws/sigv4.h"

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
		assert_int_equal(aws_sigv4_parse_authorization(authz, &a, NULL), 0);
		assert_string_equal(a.access_key, "AKIDEXAMPLE");
		assert_string_equal(a.service, "service");
		struct hdrs h = { v->headers };
		_cleanup_free_ char *canonical = NULL;
		assert_int_equal(aws_sigv4_canonical_request(v->method, v->path, v->query, &a, lookup, &h,
							     EMPTY_SHA, &canonical, NULL),
				 0);
		if (v->canonical)
			assert_string_equal(canonical, v->canonical);
		_cleanup_free_ char *sts = aws_sigv4_string_to_sign(DATE, a.scope, canonical);
		char sig[65];
		aws_sigv4_sign(SECRET, a.date, a.region, a.service, sts, sig);
		if (!streq(sig, v->signature))
			fail_msg("%s: signature %s, want %s", v->name, sig, v->signature);
		assert_true(aws_sigv4_signature_equal(sig, a.signature));
		/* a wrong secret gives another signature */
		aws_sigv4_sign("wrong", a.date, a.region, a.service, sts, sig);
		assert_false(aws_sigv4_signature_equal(sig, a.signature));
		aws_sigv4_auth_done(&a);
	}
}

static void test_string_to_sign(void **state)
{
	(void)state;
	_cleanup_free_ char *sts = aws_sigv4_string_to_sign(
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
		if (aws_sigv4_parse_authorization(h, &a, &err) != -EINVAL)
			fail_msg("accepted '%s'", h);
		assert_non_null(err);
	}
	assert_int_equal(aws_sigv4_parse_authorization(NULL, NULL, NULL), -EINVAL);
}

static void test_amz_date(void **state)
{
	(void)state;
	time_t t;
	assert_int_equal(aws_sigv4_parse_amz_date(DATE, &t), 0);
	assert_int_equal(t, 1440938160);
	assert_int_equal(aws_sigv4_parse_amz_date("20150830T123600", &t), -EINVAL);
	assert_int_equal(aws_sigv4_parse_amz_date("2015-08-30T12:36:00Z", &t), -EINVAL);
	assert_int_equal(aws_sigv4_parse_amz_date("20151330T123600Z", &t), -EINVAL);
}

static void test_missing_signed_header(void **state)
{
	(void)state;
	struct sigv4_auth a;
	assert_int_equal(
	    aws_sigv4_parse_authorization("AWS4-HMAC-SHA256 Credential=A/20150830/us-east-1/ecs/"
					  "aws4_request, SignedHeaders=host;x-amz-target, Signature="
					  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
					  &a, NULL),
	    0);
	struct hdrs h = { H_VANILLA };
	char *c = NULL;
	assert_int_equal(aws_sigv4_canonical_request("POST", "/", "", &a, lookup, &h, EMPTY_SHA, &c, NULL),
			 -ENOENT);
	assert_null(c);
	aws_sigv4_auth_done(&a);
}

/* The vector's headers without X-Amz-Date and X-Amz-Security-Token (the signer adds those). */
static const char **signing_headers(const char *const *kv, const char **token)
{
	size_t n = 0;
	while (kv[2 * n])
		n++;
	const char **out = xcalloc(2 * n + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!strcasecmp(kv[2 * i], "X-Amz-Date"))
			continue;
		if (!strcasecmp(kv[2 * i], "X-Amz-Security-Token")) {
			*token = kv[2 * i + 1];
			continue;
		}
		out[k++] = kv[2 * i];
		out[k++] = kv[2 * i + 1];
	}
	return out;
}

static void test_sign_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(VECTORS); i++) {
		const struct vector *v = &VECTORS[i];
		const char *token = NULL;
		_cleanup_free_ const char **hdrs = signing_headers(v->headers, &token);
		struct sigv4_signer s = { "AKIDEXAMPLE", SECRET, token, "us-east-1", "service" };
		_cleanup_strv_ char **out = NULL;
		assert_int_equal(aws_sigv4_sign_request(&s, v->method, v->path, v->query, hdrs, NULL, 0,
							1440938160, &out, NULL),
				 0);
		_cleanup_free_ char *want =
		    xasprintf("Authorization: AWS4-HMAC-SHA256 "
			      "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
			      "SignedHeaders=%s, Signature=%s",
			      v->signed_headers, v->signature);
		assert_string_equal(out[0], "X-Amz-Date: " DATE);
		size_t last = token ? 2 : 1;
		if (token) {
			_cleanup_free_ char *t = xasprintf("X-Amz-Security-Token: %s", token);
			assert_string_equal(out[1], t);
		}
		if (!streq(out[last], want))
			fail_msg("%s: %s, want %s", v->name, out[last], want);
		assert_null(out[last + 1]);
	}
}

/* AWS's post-x-www-form-urlencoded vector: the body is hashed into the signature. */
static void test_sign_body(void **state)
{
	(void)state;
	const char *hdrs[] = { "Content-Type", "application/x-www-form-urlencoded", "Host",
			       "example.amazonaws.com", NULL };
	struct sigv4_signer s = { "AKIDEXAMPLE", SECRET, NULL, "us-east-1", "service" };
	_cleanup_strv_ char **out = NULL;
	assert_int_equal(
	    aws_sigv4_sign_request(&s, "POST", "/", "", hdrs, "Param1=value1", 13, 1440938160, &out, NULL),
	    0);
	assert_string_equal(out[1],
			    "Authorization: AWS4-HMAC-SHA256 "
			    "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
			    "SignedHeaders=content-type;host;x-amz-date, "
			    "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

/*
 * An ECS call as berth's client makes it, signed identically by botocore 1.29
 * (SigV4Auth, service "ecs", host with a port): header names in any case are
 * lowercased and sorted; the signature verifies with the verifying side.
 */
static void test_sign_ecs_like_botocore(void **state)
{
	(void)state;
	const char *hdrs[] = { "X-Amz-Target",
			       "AmazonEC2ContainerServiceV20141113.ListClusters",
			       "host",
			       "127.0.0.1:7443",
			       "Content-Type",
			       "application/x-amz-json-1.1",
			       NULL };
	struct sigv4_signer s = { "AKIDEXAMPLE", SECRET, NULL, "us-east-1", "ecs" };
	_cleanup_strv_ char **out = NULL;
	assert_int_equal(aws_sigv4_sign_request(&s, "POST", "/", "", hdrs, "{}", 2, 1440938160, &out, NULL),
			 0);
	const char *authz = out[1] + strlen("Authorization: ");
	assert_string_equal(authz,
			    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecs/aws4_request, "
			    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
			    "Signature=608bc3e99f7f538da1ac2b5ee3997753074006b089484d6b1fac45cbdedfa12f");
	/* round trip through the verifier */
	struct sigv4_auth a;
	assert_int_equal(aws_sigv4_parse_authorization(authz, &a, NULL), 0);
	const char *const rx[] = { "Host",
				   "127.0.0.1:7443",
				   "Content-Type",
				   "application/x-amz-json-1.1",
				   "X-Amz-Date",
				   DATE,
				   "X-Amz-Target",
				   "AmazonEC2ContainerServiceV20141113.ListClusters",
				   NULL };
	struct hdrs h = { rx };
	char payload[65], sig[65];
	aws_sigv4_sha256_hex("{}", 2, payload);
	_cleanup_free_ char *canonical = NULL;
	assert_int_equal(
	    aws_sigv4_canonical_request("POST", "/", "", &a, lookup, &h, payload, &canonical, NULL), 0);
	_cleanup_free_ char *sts = aws_sigv4_string_to_sign(DATE, a.scope, canonical);
	aws_sigv4_sign(SECRET, a.date, a.region, a.service, sts, sig);
	assert_true(aws_sigv4_signature_equal(sig, a.signature));
	aws_sigv4_auth_done(&a);
}

static void test_sign_refusals(void **state)
{
	(void)state;
	const char *no_host[] = { "content-type", "x", NULL };
	const char *dup[] = { "Host", "a", "host", "b", NULL };
	const char *bad_name[] = { "Host", "a", "bad header", "x", NULL };
	const char *preset[] = { "Host", "a", "X-Amz-Date", DATE, NULL };
	const char *ok[] = { "Host", "a", NULL };
	const char *const *cases[] = { no_host, dup, bad_name, preset };
	struct sigv4_signer s = { "AKID", SECRET, NULL, "us-east-1", "ecs" };
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char **out = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		assert_int_equal(
		    aws_sigv4_sign_request(&s, "POST", "/", "", cases[i], NULL, 0, 0, &out, &err), -EINVAL);
		assert_null(out);
		assert_non_null(err);
	}
	struct sigv4_signer bad[] = {
		{ "", SECRET, NULL, "us-east-1", "ecs" },   { "AK/ID", SECRET, NULL, "us-east-1", "ecs" },
		{ "AKID", "", NULL, "us-east-1", "ecs" },   { "AKID", SECRET, NULL, "", "ecs" },
		{ "AKID", SECRET, NULL, "us/east", "ecs" }, { "AK ID", SECRET, NULL, "us-east-1", "ecs" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char **out = NULL;
		assert_int_equal(aws_sigv4_sign_request(&bad[i], "POST", "/", "", ok, NULL, 0, 0, &out, NULL),
				 -EINVAL);
		assert_null(out);
	}
}

static void test_format_amz_date(void **state)
{
	(void)state;
	char d[17];
	aws_sigv4_format_amz_date(1440938160, d);
	assert_string_equal(d, DATE);
	time_t t;
	assert_int_equal(aws_sigv4_parse_amz_date(d, &t), 0);
	assert_int_equal(t, 1440938160);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_vectors),
		cmocka_unit_test(test_sign_body),
		cmocka_unit_test(test_sign_ecs_like_botocore),
		cmocka_unit_test(test_sign_refusals),
		cmocka_unit_test(test_format_amz_date),
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_string_to_sign),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_amz_date),
		cmocka_unit_test(test_missing_signed_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
