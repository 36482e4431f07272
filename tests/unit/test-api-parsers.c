/* test-api-parsers.c - X-Registry-Auth, ?filters=, "until", the daemon's listener policy. */
#include "unit.h"
#include "api/filters.h"
#include "api/listen.h"
#include "api/remote.h"
#include "api/routes.h"
#include "common/json.h"
#include "image/image.h"

static void auth_ok(const char *hdr, const char *user, const char *pass)
{
	json_t *j = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(api_registry_auth_parse(hdr, &j, &err), 0);
	struct image_auth a;
	assert_true(api_registry_auth_of(j, &a));
	assert_string_equal(a.username, user);
	assert_string_equal(a.password, pass);
	json_decref(j);
}

static void auth_bad(const char *hdr)
{
	json_t *j = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(api_registry_auth_parse(hdr, &j, &err), -EINVAL);
	assert_null(j);
	assert_non_null(err);
	berth_error_free(err);
}

static void test_registry_auth(void **state)
{
	/* {"username":"alice","password":"pw"} in base64url with and without padding */
	auth_ok("eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJwdyJ9", "alice", "pw");
	auth_ok("eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJwdyJ9===", "alice", "pw");
	/* {"username":"a?","password":"b>"}: '_' and '-' of the URL alphabet */
	auth_ok("eyJ1c2VybmFtZSI6ImE_IiwicGFzc3dvcmQiOiJiPiJ9", "a?", "b>");
	json_t *j = (json_t *)1;
	struct berth_error *err = NULL;
	assert_int_equal(api_registry_auth_parse(NULL, &j, &err), 0);
	assert_null(j);
	assert_int_equal(api_registry_auth_parse("e30=", &j, &err), 0); /* {} */
	struct image_auth a;
	assert_false(api_registry_auth_of(j, &a));
	json_decref(j);
	auth_bad("!!!!");
	auth_bad("eyJ1c2VybmFtZSI6MX0"); /* {"username":1} */
	auth_bad("WzFd");                /* [1] */
	auth_bad("bm90IGpzb24");         /* not json */
	auth_bad("a");                   /* impossible length */
	char *huge = xmalloc(20000);
	memset(huge, 'A', 19999);
	huge[19999] = '\0';
	auth_bad(huge);
	free(huge);
}

static void test_filters(void **state)
{
	static const char *const allowed[] = { "label", "dangling", NULL };
	json_t *f = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(api_filters_parse("{\"label\":{\"a=b\":true,\"c\":true},\"dangling\":[\"true\"]}",
					   allowed, &f, &err),
			 0);
	char **v = api_filter_values(f, "label");
	assert_non_null(v);
	assert_string_equal(v[0], "a=b");
	assert_string_equal(v[1], "c");
	assert_null(v[2]);
	strv_free(v);
	v = api_filter_values(f, "dangling");
	assert_string_equal(v[0], "true");
	strv_free(v);
	assert_null(api_filter_values(f, "until"));
	json_decref(f);
	/* a false member is a value too, as in dockerd */
	assert_int_equal(api_filters_parse("{\"label\":{\"a=b\":false,\"c\":true}}", allowed, &f, &err), 0);
	v = api_filter_values(f, "label");
	assert_string_equal(v[0], "a=b");
	assert_string_equal(v[1], "c");
	assert_null(v[2]);
	strv_free(v);
	json_decref(f);
	assert_int_equal(api_filters_parse("", allowed, &f, &err), 0);
	assert_null(f);
	static const struct {
		const char *q, *msg;
	} bad[] = {
		{ "{", NULL },
		{ "[]", "invalid filters: expected an object" },
		{ "null", NULL },
		{ "\"label\"", NULL },
		{ "{\"label\":1}", "invalid filter 'label': expected an array or object" },
		{ "{\"label\":\"a=b\"}", "invalid filter 'label': expected an array or object" },
		{ "{\"label\":[1]}", "invalid filter 'label': expected strings" },
		{ "{\"label\":[\"a\",null]}", "invalid filter 'label': expected strings" },
		{ "{\"label\":{\"x\":1}}", "invalid filter 'label': expected booleans" },
		{ "{\"nope\":[\"x\"]}", "Invalid filter 'nope'" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(api_filters_parse(bad[i].q, allowed, &f, &err), -EINVAL);
		assert_null(f);
		assert_non_null(err);
		if (bad[i].msg) {
			_cleanup_free_ char *m = berth_error_string(err);
			assert_string_equal(m, bad[i].msg);
		}
		berth_error_free(err);
		err = NULL;
	}
	/* Any key when allowed is NULL (ps, events, networks); the value shapes still apply. */
	assert_int_equal(api_filters_parse("{\"whatever\":[\"x\"]}", NULL, &f, &err), 0);
	assert_non_null(f);
	json_decref(f);
	f = NULL;
	assert_int_equal(api_filters_parse("{\"status\":\"running\"}", NULL, &f, &err), -EINVAL);
	assert_null(f);
	berth_error_free(err);
	err = NULL;
	char *huge = xmalloc((64u << 10) + 16);
	memset(huge, ' ', (64u << 10) + 15);
	huge[(64u << 10) + 15] = '\0';
	huge[0] = '{';
	huge[(64u << 10) + 14] = '}';
	assert_int_equal(api_filters_parse(huge, NULL, &f, &err), -EINVAL);
	assert_null(f);
	berth_error_free(err);
	err = NULL;
	free(huge);
}

static void test_until(void **state)
{
	int64_t t;
	assert_int_equal(api_parse_until("1700000000", &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(api_parse_until("2023-11-14T22:13:20Z", &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(api_parse_until("24h", &t), 0);
	assert_true(t > 1700000000);
	assert_int_equal(api_parse_until("yesterday", &t), -EINVAL);
	assert_int_equal(api_parse_until("-5", &t), -EINVAL);
	assert_int_equal(api_parse_until("", &t), -EINVAL);
}

static int check(struct api_listen_opts *o, bool *insecure)
{
	struct berth_error *err = NULL;
	int r = api_listen_check(o, insecure, &err);
	berth_error_free(err);
	return r;
}

static void test_listen_policy(void **state)
{
	bool insecure;
	struct api_listen_opts o = { .hosts = { "unix:///run/x.sock" }, .n_hosts = 1 };
	assert_int_equal(check(&o, &insecure), 0);
	assert_false(insecure);
	o.hosts[1] = "tcp://127.0.0.1:2376";
	o.n_hosts = 2;
	assert_int_equal(check(&o, &insecure), -EPERM); /* TCP without --tlsverify */
	o.tls = true;
	o.tlscert = "c.pem";
	o.tlskey = "k.pem";
	assert_int_equal(check(&o, &insecure), -EPERM); /* --tls alone authenticates nobody */
	o.allow_insecure_tcp = true;
	assert_int_equal(check(&o, &insecure), 0);
	assert_true(insecure);
	o.allow_insecure_tcp = false;
	o.tlsverify = true;
	assert_int_equal(check(&o, &insecure), -EINVAL); /* no CA */
	o.tlscacert = "ca.pem";
	assert_int_equal(check(&o, &insecure), 0);
	assert_false(insecure);
	o.tlskey = NULL;
	assert_int_equal(check(&o, &insecure), -EINVAL);
	static const char *const bad[] = { "http://x:1",     "tcp://",     "tcp://nohostport",
					   "tcp://a:1/path", "unix://rel", "" };
	struct api_listen_opts b = { .n_hosts = 1, .allow_insecure_tcp = true };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		b.hosts[0] = bad[i];
		assert_int_equal(check(&b, &insecure), -EINVAL);
	}
	b.n_hosts = 0;
	assert_int_equal(check(&b, &insecure), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_auth),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_until),
		cmocka_unit_test(test_listen_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
