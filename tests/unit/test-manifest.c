/* test-manifest.c - manifest/index/config parsing, platform selection, refusals. */
#include "unit.h"

#include "image/manifest.h"
#include "image/store.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static const char oci_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:" H1
    "\",\"size\":12},"
    "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:" H2
    "\",\"size\":34}]}";

static const char docker_list[] =
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.list.v2+json\","
    "\"manifests\":["
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"sha256:" H1
    "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
    "{\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"digest\":\"sha256:" H2
    "\",\"size\":2,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";

static void expect_fail(const char *doc, const char *ct, int code, const char *needle)
{
	struct manifest m;
	struct berth_error *err = NULL;
	assert_int_equal(image_manifest_parse(doc, strlen(doc), ct, &m, &err), -code);
	char *s = berth_error_string(err);
	if (!strstr(s, needle))
		fail_msg("error '%s' lacks '%s'", s, needle);
	free(s);
	berth_error_free(err);
}

static void test_oci_manifest(void **state)
{
	struct manifest m;
	assert_int_equal(image_manifest_parse(oci_manifest, strlen(oci_manifest), NULL, &m, NULL), 0);
	assert_int_equal(m.kind, MANIFEST_IMAGE);
	assert_string_equal(m.config.digest, "sha256:" H1);
	assert_int_equal(m.n_layers, 1);
	assert_int_equal(m.layers[0].size, 34);
	image_manifest_done(&m);
}

static void test_index_select(void **state)
{
	struct manifest m;
	struct image_platform p;
	const struct manifest_desc *d = NULL;
	assert_int_equal(image_manifest_parse(docker_list, strlen(docker_list), NULL, &m, NULL), 0);
	assert_int_equal(m.kind, MANIFEST_INDEX);
	assert_int_equal(image_platform_parse(NULL, &p, NULL), 0);
	assert_int_equal(image_manifest_select(&m, &p, &d, NULL), 0);
	assert_string_equal(d->digest, "sha256:" H2);
	image_platform_done(&p);
	assert_int_equal(image_platform_parse("linux/arm64", &p, NULL), 0);
	assert_int_equal(image_manifest_select(&m, &p, &d, NULL), 0);
	assert_string_equal(d->digest, "sha256:" H1);
	image_platform_done(&p);
	assert_int_equal(image_platform_parse("linux/s390x", &p, NULL), 0);
	assert_int_equal(image_manifest_select(&m, &p, &d, NULL), -ENOENT);
	image_platform_done(&p);
	image_manifest_done(&m);
}

static void test_refusals(void **state)
{
	expect_fail("{\"schemaVersion\":1,\"name\":\"x\"}", NULL, EPROTONOSUPPORT, "schema 1");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"text/html\"}", NULL, EPROTONOSUPPORT,
		    "'text/html'");
	expect_fail("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}",
		    NULL, EINVAL, "config");
	expect_fail("[]", NULL, EINVAL, "expected object");
	expect_fail("{", NULL, EINVAL, "manifest");
	expect_fail(
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:zz\",\"size\":1},"
	    "\"layers\":[]}",
	    NULL, EINVAL, "config.digest");
	expect_fail("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H1
		    "\",\"size\":-1},"
		    "\"layers\":[]}",
		    NULL, ERANGE, "config.size");
	expect_fail(
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:" H1 "\",\"size\":1},"
	    "\"layers\":[{\"mediaType\":\"application/x-bad\",\"digest\":\"sha256:" H2 "\",\"size\":1}]}",
	    NULL, EPROTONOSUPPORT, "unsupported layer media type");
	/* oversized */
	size_t n = IMAGE_MANIFEST_MAX + 1;
	char *big = xmalloc(n + 1);
	memset(big, ' ', n);
	big[n] = '\0';
	expect_fail(big, NULL, EFBIG, "too large");
	free(big);
}

static void test_config(void **state)
{
	static const char cfg[] =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2026-01-01T00:00:00Z\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" H1 "\"]}}";
	struct config_info c;
	assert_int_equal(image_config_parse(cfg, strlen(cfg), &c, NULL), 0);
	assert_int_equal(c.n_diff_ids, 1);
	assert_int_equal(c.created, 1767225600);
	assert_string_equal(c.arch, "amd64");
	image_config_info_done(&c);
	static const char bad1[] = "{\"rootfs\":{\"diff_ids\":[\"md5:1\"]}}";
	assert_int_equal(image_config_parse(bad1, strlen(bad1), &c, NULL), -EINVAL);
	static const char bad2[] = "{\"rootfs\":{}}";
	assert_int_equal(image_config_parse(bad2, strlen(bad2), &c, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_index_select),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
