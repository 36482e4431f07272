/* test-content.c - blob store, metadata db, tags, resolution, remove ref counting. */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "image/store.h"

static void test_writer_verifies(void **state)
{
	char *root = unit_tmpdir();
	struct image_store *s = NULL;
	assert_int_equal(image_store_open(root, &s, NULL), 0);
	char dg[DIGEST_STRING_MAX];
	assert_int_equal(image_content_write_buffer(s, "hello", 5, NULL, dg, NULL), 0);
	assert_string_equal(dg, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	uint64_t size = 0;
	assert_int_equal(image_content_has(s, dg, &size), 1);
	assert_int_equal(size, 5);

	struct berth_error *err = NULL;
	assert_int_equal(image_content_write_buffer(
			     s, "world", 5,
			     "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", NULL,
			     &err),
			 -EBADMSG);
	berth_error_free(err);

	struct content_writer w;
	assert_int_equal(image_content_writer_open(s, &w, NULL), 0);
	assert_int_equal(image_content_writer_write(&w, "abc", 3, NULL), 0);
	assert_int_equal(image_content_writer_commit(&w, NULL, 4, NULL, NULL), -EBADMSG);
	image_content_writer_done(&w);
	/* nothing left behind in ingest */
	char *ingest = xasprintf("%s/content/ingest", root);
	DIR *d = opendir(ingest);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 0);
	free(ingest);
	assert_int_equal(image_content_has(s, "sha256:zz", NULL), 0);
	assert_int_equal(image_content_open(s, "sha256:../../etc/passwd", NULL), -EINVAL);
	image_store_free(s);
	fs_rm_rf(root, NULL);
	free(root);
}

static void add_image(struct image_store *s, const char *cfg, const char *tag, char out_id[DIGEST_STRING_MAX])
{
	assert_int_equal(image_content_write_buffer(s, cfg, strlen(cfg), NULL, out_id, NULL), 0);
	struct store_image img = { 0 };
	snprintf(img.id, sizeof(img.id), "%s", out_id);
	img.created = 100;
	sqlite3 *db = NULL;
	assert_int_equal(image_store_db_open(s, &db, NULL), 0);
	img.manifest_digest = NULL;
	assert_int_equal(image_store_image_finish(s, &img, (const char *const[]){ tag, NULL }, NULL, NULL),
			 0);
	free(img.manifest_digest);
	free(img.manifest_media_type);
	sqlite3_close(db);
}

static void test_tags_resolve_and_remove(void **state)
{
	char *root = unit_tmpdir();
	struct image_store *s = NULL;
	assert_int_equal(image_store_open(root, &s, NULL), 0);
	char id[DIGEST_STRING_MAX];
	add_image(s, "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", "docker.io/library/a:latest", id);
	char *got = NULL;
	assert_int_equal(image_resolve(s, "a", &got, NULL), 0);
	assert_string_equal(got, id);
	free(got);
	got = NULL;
	assert_int_equal(image_resolve(s, id + 7, &got, NULL), 0); /* bare hex */
	free(got);
	got = NULL;
	char *prefix = xstrndup(id + 7, 12);
	assert_int_equal(image_resolve(s, prefix, &got, NULL), 0);
	free(got);
	free(prefix);
	assert_int_equal(image_resolve(s, "nope", &got, NULL), -ENOENT);
	assert_int_equal(image_resolve(s, "Bad Name", &got, NULL), -EINVAL);

	assert_int_equal(image_tag(s, "a", "b:1", NULL), 0);
	json_t *out = NULL;
	assert_int_equal(image_remove(s, "a", 0, NULL, NULL, &out, NULL), 0);
	assert_int_equal(json_array_size(out), 1); /* untag only */
	json_decref(out);
	assert_int_equal(image_remove(s, "b:1", 0, NULL, NULL, &out, NULL), 0);
	assert_int_equal(json_array_size(out), 2); /* untag + delete */
	json_decref(out);
	assert_int_equal(image_content_has(s, id, NULL), 0);
	image_store_free(s);
	fs_rm_rf(root, NULL);
	free(root);
}

static bool always_in_use(const char *image_id, char **ret_container, void *ud)
{
	*ret_container = xstrdup("c0ffee");
	return true;
}

static void test_in_use_refused(void **state)
{
	char *root = unit_tmpdir();
	struct image_store *s = NULL;
	assert_int_equal(image_store_open(root, &s, NULL), 0);
	char id[DIGEST_STRING_MAX];
	add_image(s, "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"x\":1}",
		  "docker.io/library/u:latest", id);
	struct berth_error *err = NULL;
	assert_int_equal(image_remove(s, "u", 0, always_in_use, NULL, NULL, &err), -EBUSY);
	char *m = berth_error_string(err);
	assert_non_null(strstr(m, "c0ffee"));
	free(m);
	berth_error_free(err);
	json_t *out = NULL;
	assert_int_equal(image_prune(s, true, 0, NULL, always_in_use, NULL, &out, NULL), 0);
	assert_int_equal(json_array_size(json_object_get(out, "ImagesDeleted")), 0);
	json_decref(out);
	assert_int_equal(image_content_has(s, id, NULL), 1);
	image_store_free(s);
	fs_rm_rf(root, NULL);
	free(root);
}

static void test_stale_leftovers_removed(void **state)
{
	char *root = unit_tmpdir();
	struct image_store *s = NULL;
	assert_int_equal(image_store_open(root, &s, NULL), 0);
	image_store_free(s);
	char *old = xasprintf("%s/content/ingest/old", root);
	char *fresh = xasprintf("%s/content/ingest/fresh", root);
	assert_int_equal(fs_write_file_atomic(old, "x", 1, 0600, NULL), 0);
	assert_int_equal(fs_write_file_atomic(fresh, "y", 1, 0600, NULL), 0);
	struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, old, ts, 0), 0);
	assert_int_equal(image_store_open(root, &s, NULL), 0);
	assert_int_equal(access(old, F_OK), -1);
	assert_int_equal(access(fresh, F_OK), 0);
	image_store_free(s);
	free(old);
	free(fresh);
	fs_rm_rf(root, NULL);
	free(root);
}

/* A config.json that is valid JSON but not an object used to be freed twice
 * (load_config freed it, the caller's cleanup freed it again). */
static void test_credentials_config_not_object(void **state)
{
	char *dir = unit_tmpdir();
	char *path = xasprintf("%s/config.json", dir);
	assert_int_equal(fs_write_file_atomic(path, "[1]", 3, 0600, NULL), 0);
	assert_int_equal(setenv("DOCKER_CONFIG", dir, 1), 0);
	struct berth_error *err = NULL;
	assert_int_equal(image_credentials_erase("localhost:5000", &err), -EINVAL);
	err = berth_error_free(err);
	assert_int_equal(image_credentials_store("localhost:5000", "u", "p", &err), -EINVAL);
	err = berth_error_free(err);
	unsetenv("DOCKER_CONFIG");
	fs_rm_rf(dir, NULL);
	free(path);
	free(dir);
}

/* The metadata connections are pooled: handed out again when clean, closed when not. */
static void test_db_connection_pool(void **state)
{
	char *root = unit_tmpdir();
	struct image_store *s = NULL;
	assert_int_equal(image_store_open(root, &s, NULL), 0);
	sqlite3 *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(image_store_db_open(s, &a, NULL), 0);
	assert_int_equal(image_store_db_open(s, &b, NULL), 0);
	assert_ptr_not_equal(a, b); /* two at once: two connections */
	image_store_db_release(b);
	assert_int_equal(image_store_db_open(s, &c, NULL), 0);
	assert_ptr_equal(c, b); /* the idle one comes back */
	/* one left inside a transaction is not pooled (its next user would inherit it) */
	assert_int_equal(image_store_db_begin(c, NULL), 0);
	image_store_db_release(c);
	assert_int_equal(image_store_db_open(s, &c, NULL), 0);
	assert_true(sqlite3_get_autocommit(c));
	assert_int_equal(image_store_db_exec(c, "SELECT count(*) FROM images", NULL), 0);
	image_store_db_release(c);
	/* a connection given back after its store is gone is closed (ASan: no use after free) */
	image_store_free(s);
	image_store_db_release(a);
	fs_rm_rf(root, NULL);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_verifies),
		cmocka_unit_test(test_db_connection_pool),
		cmocka_unit_test(test_tags_resolve_and_remove),
		cmocka_unit_test(test_in_use_refused),
		cmocka_unit_test(test_stale_leftovers_removed),
		cmocka_unit_test(test_credentials_config_not_object),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
