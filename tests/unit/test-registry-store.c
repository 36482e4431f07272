/* test-registry-store.c - storage, upload sessions (incl. resume after "restart") and tokens. */
#include "unit.h"

#include "common/fs.h"
#include "registry/auth.h"
#include "registry/storage.h"
#include "registry/upload.h"

static void test_upload_resume(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	struct registry_store *s = NULL;
	assert_int_equal(registry_store_open(dir, &s, NULL), 0);
	struct upload_table t;
	registry_upload_table_init(&t, s, 8);
	struct upload *u;
	assert_int_equal(registry_upload_create(&t, "a/b", &u, NULL), 0);
	assert_int_equal(registry_upload_write(u, "hello ", 6), 0);
	char uuid[33];
	memcpy(uuid, u->uuid, 33);
	registry_upload_release(&t, u);
	assert_int_equal(registry_upload_acquire(&t, "a/b", uuid, &u), 0);
	assert_int_equal(registry_upload_acquire(&t, "a/b", uuid, &u), -EBUSY);
	registry_upload_release(&t, u);
	registry_upload_table_done(&t);

	/* a new table simulates a restart: the session is reloaded and re-hashed */
	registry_upload_table_init(&t, s, 8);
	assert_int_equal(registry_upload_acquire(&t, "other", uuid, &u), -ENOENT);
	assert_int_equal(registry_upload_acquire(&t, "a/b", uuid, &u), 0);
	assert_int_equal(u->offset, 6);
	assert_int_equal(registry_upload_write(u, "world", 5), 0);
	char d[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, "hello world", 11, d);
	struct berth_error *err = NULL;
	assert_int_equal(
	    registry_upload_finish(
		&t, u, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &err),
	    -EBADMSG);
	err = berth_error_free(err);
	assert_int_equal(registry_upload_finish(&t, u, d, NULL), 0);
	uint64_t size;
	assert_true(registry_store_repo_has_blob(s, "a/b", d, &size));
	assert_int_equal(size, 11);
	assert_false(registry_store_repo_has_blob(s, "a/c", d, NULL));
	registry_upload_table_done(&t);
	registry_store_free(s);
	fs_rm_rf(dir, NULL);
}

static void test_tags_and_catalog(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	struct registry_store *s = NULL;
	assert_int_equal(registry_store_open(dir, &s, NULL), 0);
	char d[DIGEST_STRING_MAX], got[DIGEST_STRING_MAX + 2];
	const char *doc = "{}";
	digest_buffer(DIGEST_SHA256, doc, 2, d);
	const char *v1[] = { "v1", NULL }, *v0[] = { "v0", NULL };
	struct manifest_put p = { .repo = "x/y",
				  .tags = v1,
				  .digest = d,
				  .media_type = "m",
				  .data = doc,
				  .len = 2,
				  .immutable_tags = true };
	assert_int_equal(registry_store_manifest_put(s, &p, NULL), 0);
	p.tags = v0;
	assert_int_equal(registry_store_manifest_put(s, &p, NULL), 0);
	assert_int_equal(registry_store_resolve_tag(s, "x/y", "v1", got), 0);
	assert_string_equal(got, d);
	/* immutable: the same tag cannot move */
	char d2[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, "[]", 2, d2);
	struct manifest_put q = p;
	q.digest = d2;
	q.data = "[]";
	struct berth_error *err = NULL;
	assert_int_equal(registry_store_manifest_put(s, &q, &err), -EEXIST);
	err = berth_error_free(err);
	/* several tags: one would move, none is written (nor the revision) */
	const char *several[] = { "new", "v1", NULL };
	q.tags = several;
	assert_int_equal(registry_store_manifest_put(s, &q, &err), -EEXIST);
	err = berth_error_free(err);
	assert_int_equal(registry_store_resolve_tag(s, "x/y", "new", got), -ENOENT);
	char mt[16];
	assert_int_equal(registry_store_manifest_info(s, "x/y", d2, mt, sizeof(mt), NULL), -ENOENT);
	_cleanup_strv_ char **tags = NULL, **repos = NULL;
	assert_int_equal(registry_store_tags_list(s, "x/y", &tags), 0);
	assert_string_equal(tags[0], "v0");
	assert_string_equal(tags[1], "v1");
	assert_null(tags[2]);
	assert_int_equal(registry_store_catalog(s, &repos), 0);
	assert_string_equal(repos[0], "x/y");
	assert_null(repos[1]);
	assert_int_equal(registry_store_manifest_delete(s, "x/y", d), 0);
	assert_int_equal(registry_store_resolve_tag(s, "x/y", "v1", got), -ENOENT);
	registry_store_free(s);
	fs_rm_rf(dir, NULL);
}

static void test_token_roundtrip(void **state)
{
	struct registry_config c;
	registry_config_init(&c);
	c.token_enabled = true;
	struct registry_auth *a = NULL;
	assert_int_equal(registry_auth_new(&c, &a, NULL), 0);
	struct auth_identity id = { .authenticated = true };
	snprintf(id.user, sizeof(id.user), "alice");
	const char *scopes[] = { "repository:team/app:pull,push", "repository:BAD:pull" };
	_cleanup_free_ char *body = registry_auth_issue_token(a, &id, scopes, 2);
	assert_non_null(body);
	char *tok = strstr(body, "\"token\":\"");
	assert_non_null(tok);
	tok += 9;
	*strchr(tok, '"') = '\0';
	struct auth_identity got;
	assert_int_equal(registry_auth_verify_token(a, tok, &got), 0);
	assert_string_equal(got.user, "alice");
	assert_true(registry_auth_allowed(a, &got, "team/app", REGISTRY_PULL | REGISTRY_PUSH));
	assert_false(registry_auth_allowed(a, &got, "team/app", REGISTRY_DELETE));
	assert_false(registry_auth_allowed(a, &got, "other", REGISTRY_PULL));
	/* tampering breaks the signature */
	tok[strlen(tok) - 2] ^= 1;
	assert_int_equal(registry_auth_verify_token(a, tok, &got), -EACCES);
	assert_int_equal(registry_auth_verify_token(a, "a.b", &got), -EACCES);
	assert_int_equal(registry_auth_verify_token(a, "", &got), -EACCES);
	assert_int_equal(registry_auth_identify(a, "Basic !!!", &got), -EACCES);
	assert_int_equal(registry_auth_identify(a, "Digest x", &got), -EACCES);
	registry_auth_free(a);
	registry_config_done(&c);
}

static void test_basic_auth_and_permissions(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/htpasswd", dir);
	const char *line = "# comment\nalice:$2y$05$9c4DHbmso5eiQ8sbsUYouuresIInNv3n5KUqVUN0T92s0pdynORNW\n";
	assert_int_equal(fs_write_file_atomic(path, line, strlen(line), 0600, NULL), 0);
	struct registry_config c;
	registry_config_init(&c);
	c.htpasswd = xstrdup(path);
	c.rules = xcalloc(1, sizeof(*c.rules));
	c.rules[0] = (struct registry_repo_rule){ .pattern = xstrdup("pub/*"),
						  .public_pull = true,
						  .expire_untagged_days = -1,
						  .keep_tags_count = -1 };
	c.n_rules = 1;
	c.acl = xcalloc(1, sizeof(*c.acl));
	c.acl[0] = (struct registry_acl){ .user = xstrdup("alice"),
					  .repository = xstrdup("team/*"),
					  .actions = REGISTRY_PULL | REGISTRY_PUSH };
	c.n_acl = 1;
	struct registry_auth *a = NULL;
	assert_int_equal(registry_auth_new(&c, &a, NULL), 0);
	struct auth_identity id;
	/* "alice:secret", twice (second from the cache), wrong password, unknown user, empty */
	assert_int_equal(registry_auth_identify(a, "Basic YWxpY2U6c2VjcmV0", &id), 0);
	assert_true(id.authenticated);
	assert_int_equal(registry_auth_identify(a, "Basic YWxpY2U6c2VjcmV0", &id), 0);
	assert_int_equal(registry_auth_identify(a, "Basic YWxpY2U6d3Jvbmc=", &id), -EACCES);
	assert_int_equal(registry_auth_identify(a, "Basic Ym9iOnNlY3JldA==", &id), -EACCES);
	assert_int_equal(registry_auth_identify(a, "Basic Og==", &id), 0);
	assert_false(id.authenticated);
	assert_true(registry_auth_allowed(a, &id, "pub/x", REGISTRY_PULL));
	assert_false(registry_auth_allowed(a, &id, "pub/x", REGISTRY_PUSH));
	assert_false(registry_auth_allowed(a, &id, "team/x", REGISTRY_PULL));
	assert_int_equal(registry_auth_identify(a, "Basic YWxpY2U6c2VjcmV0", &id), 0);
	assert_true(registry_auth_allowed(a, &id, "team/x", REGISTRY_PULL | REGISTRY_PUSH));
	assert_false(registry_auth_allowed(a, &id, "team/x", REGISTRY_DELETE));
	assert_false(registry_auth_allowed(a, &id, "other", REGISTRY_PULL));
	_cleanup_free_ char *chal = registry_auth_challenge(a, "http://h", "team/x", REGISTRY_PULL);
	assert_string_equal(chal, "Basic realm=\"berth-registry\"");
	registry_auth_free(a);
	registry_config_done(&c);

	/* a non-bcrypt entry is refused at load */
	line = "bob:{SHA}abc\n";
	assert_int_equal(fs_write_file_atomic(path, line, strlen(line), 0600, NULL), 0);
	registry_config_init(&c);
	c.htpasswd = xstrdup(path);
	struct berth_error *err = NULL;
	assert_int_equal(registry_auth_new(&c, &a, &err), -EINVAL);
	berth_error_free(err);
	registry_config_done(&c);
	fs_rm_rf(dir, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upload_resume),
		cmocka_unit_test(test_tags_and_catalog),
		cmocka_unit_test(test_token_roundtrip),
		cmocka_unit_test(test_basic_auth_and_permissions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
