/* test-registry-manifest.c - manifest validation and config parsing, with negative cases. */
#include "unit.h"

#include "registry/config.h"
#include "registry/manifest.h"

#define D1 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D2 "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

static int parse(const char *ct, const char *doc, struct manifest_info *m)
{
	struct berth_error *err = NULL;
	int r = registry_manifest_parse(ct, doc, strlen(doc), m, &err);
	berth_error_free(err);
	return r;
}

static void test_oci_manifest(void **state)
{
	struct manifest_info m;
	const char *doc =
	    "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D1
	    "\",\"size\":0},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
	    "\"digest\":\"" D2 "\",\"size\":2}],\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST
	    "\",\"digest\":\"" D2 "\",\"size\":3},\"annotations\":{\"a\":\"b\"}}";
	assert_int_equal(parse(MT_OCI_MANIFEST, doc, &m), 0);
	assert_string_equal(m.media_type, MT_OCI_MANIFEST);
	assert_false(m.is_index);
	assert_int_equal(m.n_refs, 2);
	assert_string_equal(m.refs[0].digest, D1);
	assert_string_equal(m.subject, D2);
	assert_string_equal(m.artifact_type, "application/vnd.oci.image.config.v1+json");
	registry_manifest_info_done(&m);
	/* no Content-Type: the document decides */
	assert_int_equal(parse(NULL, doc, &m), 0);
	registry_manifest_info_done(&m);
}

static void test_index(void **state)
{
	struct manifest_info m;
	const char *doc =
	    "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST
	    "\",\"manifests\":[{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":7}]}";
	assert_int_equal(parse(MT_DOCKER_LIST, doc, &m), 0);
	assert_true(m.is_index);
	assert_int_equal(m.n_refs, 1);
	assert_true(m.refs[0].is_manifest);
	registry_manifest_info_done(&m);
}

static void test_invalid(void **state)
{
	struct manifest_info m;
	assert_int_equal(parse(MT_OCI_MANIFEST, "not json", &m), -EINVAL);
	assert_int_equal(parse(MT_OCI_MANIFEST, "[]", &m), -EINVAL);
	assert_int_equal(parse(MT_OCI_MANIFEST, "{\"schemaVersion\":1}", &m), -EINVAL);
	assert_int_equal(parse(MT_OCI_MANIFEST, "{\"schemaVersion\":2}", &m), -EINVAL);
	assert_int_equal(
	    parse("application/x-unknown", "{\"schemaVersion\":2,\"config\":{},\"layers\":[]}", &m), -EINVAL);
	assert_int_equal(parse("application/vnd.docker.distribution.manifest.v1+prettyjws",
			       "{\"schemaVersion\":1,\"fsLayers\":[]}", &m),
			 -EPROTONOSUPPORT);
	assert_int_equal(parse(NULL, "{\"schemaVersion\":1,\"fsLayers\":[]}", &m), -EPROTONOSUPPORT);
	/* bad digest in a descriptor */
	assert_int_equal(
	    parse(MT_OCI_MANIFEST,
		  "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:xyz\","
		  "\"size\":1},\"layers\":[]}",
		  &m),
	    -EINVAL);
	/* negative size */
	assert_int_equal(parse(MT_OCI_MANIFEST,
			       "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" D1 "\","
			       "\"size\":-1},\"layers\":[]}",
			       &m) < 0,
			 true);
	/* Content-Type disagrees with mediaType */
	assert_int_equal(parse(MT_DOCKER_MANIFEST,
			       "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST
			       "\",\"config\":{\"mediaType\":\"x\","
			       "\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
			       &m),
			 -EINVAL);
}

static void test_config(void **state)
{
	struct registry_config c;
	struct berth_error *err = NULL;
	registry_config_init(&c);
	const char *y =
	    "version: 0.1\nhttp:\n  addr: 127.0.0.1:0\n  threads: 3\nstorage:\n  delete: false\n"
	    "  upload_expiry: 2h\n  manifest_max_size: 1m\nauth:\n  htpasswd: /x\n  token:\n"
	    "    enabled: true\n  access:\n    - user: alice\n      repository: \"team/*\"\n"
	    "      actions: [pull, push]\nrepositories:\n  - name: \"pub/*\"\n    public: true\n"
	    "    immutable_tags: true\n    lifecycle:\n      expire_untagged_days: 3\n"
	    "      keep_tags: {pattern: \"v*\", count: 2}\nproxy:\n  remoteurl: http://127.0.0.1:1\n";
	assert_int_equal(registry_config_parse(&c, y, strlen(y), &err), 0);
	assert_int_equal(c.port, 0);
	assert_int_equal(c.threads, 3);
	assert_false(c.delete_enabled);
	assert_int_equal(c.upload_expiry_s, 7200);
	assert_int_equal(c.manifest_max, 1 << 20);
	assert_true(c.token_enabled);
	assert_int_equal(c.n_acl, 1);
	assert_int_equal(c.acl[0].actions, REGISTRY_PULL | REGISTRY_PUSH);
	const struct registry_repo_rule *r = registry_config_rule(&c, "pub/x");
	assert_non_null(r);
	assert_true(r->public_pull && r->immutable_tags);
	assert_int_equal(r->keep_tags_count, 2);
	assert_null(registry_config_rule(&c, "other"));
	registry_config_done(&c);

	const char *bad[] = { "http:\n  nope: 1\n",
			      "http: [1]\n",
			      "storage:\n  delete: maybe\n",
			      "http:\n  addr: host\n",
			      "repositories:\n  - public: true\n",
			      "{{{",
			      "auth:\n  access:\n    - actions: [fly]\n" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		registry_config_init(&c);
		assert_int_equal(registry_config_parse(&c, bad[i], strlen(bad[i]), &err), -EINVAL);
		err = berth_error_free(err);
		registry_config_done(&c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oci_manifest),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
