/* test-registry-route.c - name/tag grammar and the path router, incl. hostile paths. */
#include "unit.h"

#include "registry/route.h"

static void test_names(void **state)
{
	const char *good[] = { "a",        "library/busybox", "a/b/c",     "foo.bar", "foo_bar",
			       "foo__bar", "foo-bar",         "foo---bar", "0x/1y",   "a1.b2-c3_d4" };
	const char *bad[] = { "",     "A",    "-a",   "a-",   "a..b", "a___b", "a_-b", "/a",  "a/",
			      "a//b", "../a", "a/..", "a/.b", ".",    "a b",   "a%2e", "a:b", "é" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_true(registry_name_valid(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(registry_name_valid(bad[i]));
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(registry_name_valid(long_name));
	long_name[255] = '\0';
	assert_true(registry_name_valid(long_name));
}

static void test_tags(void **state)
{
	assert_true(registry_tag_valid("latest"));
	assert_true(registry_tag_valid("_x.Y-1"));
	assert_false(registry_tag_valid(""));
	assert_false(registry_tag_valid(".x"));
	assert_false(registry_tag_valid("-x"));
	assert_false(registry_tag_valid("a/b"));
	assert_false(registry_tag_valid("a:b"));
	char t[200];
	memset(t, 'a', sizeof(t) - 1);
	t[sizeof(t) - 1] = '\0';
	assert_false(registry_tag_valid(t));
	t[128] = '\0';
	assert_true(registry_tag_valid(t));
	t[129 - 1] = 'a';
}

#define D "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_routes(void **state)
{
	struct route r;
	registry_route_parse("/v2/", &r);
	assert_int_equal(r.kind, ROUTE_BASE);
	registry_route_parse("/v2/_catalog", &r);
	assert_int_equal(r.kind, ROUTE_CATALOG);
	registry_route_parse("/v2/a/b/tags/list", &r);
	assert_int_equal(r.kind, ROUTE_TAGS);
	assert_string_equal(r.name, "a/b");
	registry_route_parse("/v2/a/manifests/latest", &r);
	assert_int_equal(r.kind, ROUTE_MANIFEST);
	assert_string_equal(r.name, "a");
	assert_string_equal(r.ref, "latest");
	assert_false(r.ref_is_digest);
	registry_route_parse("/v2/x/manifests/manifests/" D, &r);
	assert_int_equal(r.kind, ROUTE_MANIFEST);
	assert_string_equal(r.name, "x/manifests");
	assert_true(r.ref_is_digest);
	registry_route_parse("/v2/a/blobs/" D, &r);
	assert_int_equal(r.kind, ROUTE_BLOB);
	registry_route_parse("/v2/a/blobs/uploads/", &r);
	assert_int_equal(r.kind, ROUTE_UPLOAD_START);
	assert_string_equal(r.name, "a");
	registry_route_parse("/v2/a/blobs/uploads/0123456789abcdef0123456789abcdef", &r);
	assert_int_equal(r.kind, ROUTE_UPLOAD);
	assert_string_equal(r.ref, "0123456789abcdef0123456789abcdef");
	registry_route_parse("/v2/a/referrers/" D, &r);
	assert_int_equal(r.kind, ROUTE_REFERRERS);
	registry_route_parse("/metrics", &r);
	assert_int_equal(r.kind, ROUTE_METRICS);
	registry_route_parse("/auth/token", &r);
	assert_int_equal(r.kind, ROUTE_TOKEN);
}

static void test_routes_hostile(void **state)
{
	struct route r;
	registry_route_parse("/v2/../etc/manifests/latest", &r);
	assert_int_equal(r.kind, ROUTE_NAME_INVALID);
	registry_route_parse("/v2/a/../../manifests/latest", &r);
	assert_int_equal(r.kind, ROUTE_NAME_INVALID);
	registry_route_parse("/v2/a/blobs/sha256:zz", &r);
	assert_int_equal(r.kind, ROUTE_REF_INVALID);
	registry_route_parse("/v2/a/blobs/latest", &r);
	assert_int_equal(r.kind, ROUTE_REF_INVALID);
	registry_route_parse("/v2/a/manifests/..", &r);
	assert_int_equal(r.kind, ROUTE_REF_INVALID);
	registry_route_parse("/v2/a/blobs/uploads/../../x", &r);
	assert_int_not_equal(r.kind, ROUTE_UPLOAD);
	registry_route_parse("/v2/a/blobs/uploads/nothex", &r);
	assert_int_equal(r.kind, ROUTE_REF_INVALID);
	registry_route_parse("/v2/manifests/latest", &r);
	assert_int_equal(r.kind, ROUTE_NONE);
	registry_route_parse("/v2//manifests/latest", &r);
	assert_int_equal(r.kind, ROUTE_NAME_INVALID);
	registry_route_parse("/v3/a/manifests/latest", &r);
	assert_int_equal(r.kind, ROUTE_NONE);
	registry_route_parse("/v2/a/unknown/x", &r);
	assert_int_equal(r.kind, ROUTE_NONE);
	registry_route_parse("", &r);
	assert_int_equal(r.kind, ROUTE_NONE);
	registry_route_parse(NULL, &r);
	assert_int_equal(r.kind, ROUTE_NONE);
	char big[2000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "/v2/", 4);
	registry_route_parse(big, &r);
	assert_int_equal(r.kind, ROUTE_NONE);
}

static void test_content_range(void **state)
{
	uint64_t a = 7, b = 7;
	assert_int_equal(registry_content_range_parse(NULL, &a, &b), 0);
	assert_int_equal(registry_content_range_parse("0-1023", &a, &b), 1);
	assert_true(a == 0 && b == 1023);
	assert_int_equal(registry_content_range_parse("bytes=5-9/10", &a, &b), 1);
	assert_true(a == 5 && b == 9);
	assert_int_equal(registry_content_range_parse("bytes 5-5", &a, &b), 1);
	const char *bad[] = { "",
			      "5",
			      "9-5",
			      "-5",
			      "5-",
			      "a-b",
			      "0-18446744073709551616",
			      "1-2-3",
			      "0-0123456789012345678901234567890123456789012345678901234567890123" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(registry_content_range_parse(bad[i], &a, &b), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),         cmocka_unit_test(test_tags),
		cmocka_unit_test(test_routes),        cmocka_unit_test(test_routes_hostile),
		cmocka_unit_test(test_content_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
