/* test-registry-config.c - the registry's YAML config: values, and hostile configs get errors. */
#include "unit.h"

#include "common/error.h"
#include "registry/config.h"

static int parse(struct registry_config *c, const char *yaml, struct berth_error **err)
{
	registry_config_init(c);
	return registry_config_parse(c, yaml, strlen(yaml), err);
}

static void test_values(void **state)
{
	struct registry_config c;
	struct berth_error *err = NULL;
	assert_int_equal(parse(&c,
			       "http: {addr: '127.0.0.1:5001'}\n"
			       "storage: {root: /srv/reg, delete: false}\n"
			       "auth: {token: {enabled: true, issuer: me, service: svc, expiration: 2m}}\n",
			       &err),
			 0);
	assert_int_equal(c.port, 5001);
	assert_string_equal(c.root, "/srv/reg");
	assert_false(c.delete_enabled);
	assert_true(c.fsync); /* durable unless told otherwise */
	assert_true(c.token_enabled);
	assert_string_equal(c.token_issuer, "me");
	assert_string_equal(c.token_service, "svc");
	assert_int_equal(c.token_ttl_s, 120);
	registry_config_done(&c);
}

/* An empty storage root, token issuer or service used to become NULL and crash
 * the server (strdup(NULL) in registry_store_open, json_pack of the claims); an empty
 * ACL user/repository silently became "*". */
static void test_fsync_policy(void **state)
{
	struct registry_config c;
	struct berth_error *err = NULL;
	assert_int_equal(parse(&c, "storage: {fsync: false}\n", &err), 0);
	assert_false(c.fsync);
	registry_config_done(&c);
	assert_int_equal(parse(&c, "storage: {fsync: true}\n", &err), 0);
	assert_true(c.fsync);
	registry_config_done(&c);
	assert_true(parse(&c, "storage: {fsync: sometimes}\n", &err) < 0);
	assert_non_null(err);
	berth_error_free(err);
	registry_config_done(&c);
}

static void test_empty_required_strings(void **state)
{
	const char *bad[] = {
		"storage: {root: ''}\n",
		"auth: {token: {issuer: \"\"}}\n",
		"auth: {token: {service: ''}}\n",
		/* an empty ACL user or repository used to widen to "*" (everyone / every repository) */
		"auth: {access: [{user: '', repository: 'a/*', actions: [pull]}]}\n",
		"auth: {access: [{user: bob, repository: '', actions: [push]}]}\n",
		"repositories: [{name: '', public: true}]\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct registry_config c;
		struct berth_error *err = NULL;
		assert_int_equal(parse(&c, bad[i], &err), -EINVAL);
		char *msg = berth_error_string(err);
		assert_non_null(strstr(msg, "must not be empty"));
		free(msg);
		assert_non_null(c.root);
		assert_non_null(c.token_issuer);
		assert_non_null(c.token_service);
		berth_error_free(err);
		registry_config_done(&c);
	}
}

static void test_hostile(void **state)
{
	const char *bad[] = {
		"[1, 2]\n",
		"http: 3\n",
		"nope: 1\n",
		"http: {addr: 'x:99999'}\n",
		"storage: {delete: maybe}\n",
		"{a: [\n",
		"? [a]\n: b\n",
		"storage: &a {root: *a}\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct registry_config c;
		struct berth_error *err = NULL;
		assert_true(parse(&c, bad[i], &err) < 0);
		assert_non_null(err);
		berth_error_free(err);
		registry_config_done(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_fsync_policy),
		cmocka_unit_test(test_empty_required_strings),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
