/* test-reference.c - docker reference parsing and normalisation. */
#include "unit.h"

#include "image/image.h"

static void check(const char *in, int flags, const char *full, const char *familiar)
{
	struct image_ref *r = NULL;
	struct berth_error *err = NULL;
	int rc = image_ref_parse(in, flags, &r, &err);
	if (rc < 0) {
		char *m = berth_error_string(err);
		fail_msg("parse '%s' failed: %s", in, m);
	}
	char *s = image_ref_string(r);
	char *f = image_ref_familiar(r);
	assert_string_equal(s, full);
	assert_string_equal(f, familiar);
	free(s);
	free(f);
	image_ref_free(r);
}

static void bad(const char *in, const char *needle)
{
	struct image_ref *r = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(image_ref_parse(in, IMAGE_REF_DEFAULT_TAG, &r, &err), -EINVAL);
	assert_null(r);
	char *m = berth_error_string(err);
	if (!strstr(m, needle))
		fail_msg("error for '%s' is '%s', expected to contain '%s'", in, m, needle);
	free(m);
	berth_error_free(err);
}

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_normalise(void **state)
{
	check("busybox", IMAGE_REF_DEFAULT_TAG, "docker.io/library/busybox:latest", "busybox:latest");
	check("busybox", 0, "docker.io/library/busybox", "busybox");
	check("busybox:1.36", 0, "docker.io/library/busybox:1.36", "busybox:1.36");
	check("user/app", IMAGE_REF_DEFAULT_TAG, "docker.io/user/app:latest", "user/app:latest");
	check("index.docker.io/library/busybox", 0, "docker.io/library/busybox", "busybox");
	check("docker.io/busybox", 0, "docker.io/library/busybox", "busybox");
	check("localhost/foo", 0, "localhost/foo", "localhost/foo");
	check("localhost:5000/a/b/c:v1", 0, "localhost:5000/a/b/c:v1", "localhost:5000/a/b/c:v1");
	check("reg.example.com/x", 0, "reg.example.com/x", "reg.example.com/x");
	check("127.0.0.1:5000/x:y", 0, "127.0.0.1:5000/x:y", "127.0.0.1:5000/x:y");
	check("[::1]:5000/x", 0, "[::1]:5000/x", "[::1]:5000/x");
	check("busybox@" D64, IMAGE_REF_DEFAULT_TAG, "docker.io/library/busybox@" D64, "busybox@" D64);
	check("busybox:1@" D64, 0, "docker.io/library/busybox:1@" D64, "busybox:1@" D64);
	check("x/a_b__c-d---e.f", 0, "docker.io/x/a_b__c-d---e.f", "x/a_b__c-d---e.f");
	bad("a_b.com/x", "invalid reference format");
	check("Foo.com/bar", 0, "Foo.com/bar", "Foo.com/bar");
	check("busybox:Latest_1.2-x", 0, "docker.io/library/busybox:Latest_1.2-x", "busybox:Latest_1.2-x");
}

static void test_invalid(void **state)
{
	bad("", "at least one component");
	bad("Busybox", "must be lowercase");
	bad("user/App", "must be lowercase");
	bad("busybox:", "invalid tag");
	bad("busybox:-x", "invalid tag");
	bad("busy box", "invalid reference format");
	bad("a//b", "invalid reference format");
	bad("a/", "invalid reference format");
	bad("-a", "invalid reference format");
	bad("a-", "invalid reference format");
	bad("a..b", "invalid reference format");
	bad("a___b", "invalid reference format");
	bad("busybox@sha256:abc", "sha256");
	bad("busybox@md5:0123456789abcdef0123456789abcdef", "invalid reference format");
	bad("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "64-byte hexadecimal");
	bad("host:/x", "invalid reference format");
	bad("host:port/x", "invalid reference format");
	bad("-host.com/x", "invalid reference format");
	bad("[zz]:5000/x", "invalid reference format");

	char tag[200];
	memset(tag, 'a', sizeof(tag));
	memcpy(tag, "x:", 2);
	tag[2 + IMAGE_REF_TAG_MAX + 1] = '\0';
	bad(tag, "invalid tag");
	char name[300];
	memset(name, 'a', sizeof(name));
	name[sizeof(name) - 1] = '\0';
	bad(name, "not be more than 255");
}

static void test_no_digest_flag(void **state)
{
	struct image_ref *r = NULL;
	assert_int_equal(image_ref_parse("busybox@" D64, IMAGE_REF_NO_DIGEST, &r, NULL), -EINVAL);
	assert_null(r);
}

static void test_platform(void **state)
{
	struct image_platform p;
	assert_int_equal(image_platform_parse(NULL, &p, NULL), 0);
	assert_string_equal(p.os, "linux");
	assert_string_equal(p.arch, "amd64");
	assert_null(p.variant);
	image_platform_done(&p);
	assert_int_equal(image_platform_parse("Linux/ARM64/v8", &p, NULL), 0);
	assert_string_equal(p.arch, "arm64");
	assert_string_equal(p.variant, "v8");
	image_platform_done(&p);
	assert_int_equal(image_platform_parse("linux/x86_64", &p, NULL), 0);
	assert_string_equal(p.arch, "amd64");
	image_platform_done(&p);
	assert_int_equal(image_platform_parse("linux/a/b/c", &p, NULL), -EINVAL);
	assert_int_equal(image_platform_parse("linux//", &p, NULL), -EINVAL);
	assert_int_equal(image_platform_parse("lin ux", &p, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalise),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_no_digest_flag),
		cmocka_unit_test(test_platform),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
