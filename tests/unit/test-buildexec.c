/* test-buildexec.c - the builder backend's pieces that need no engine: the
 * build cache table (hits, misses, entries whose image is gone, prune), the
 * final commit (image_compose on scratch, cached by config, --no-cache makes
 * a new image) and its bad input. RUN, COPY and the rest run in the
 * integration tests (tests/integration/test_build_exec.py). */
#include "unit.h"

#include <stdlib.h>

#include "buildexec/buildexec.h"
#include "buildexec/internal.h"
#include "common/fs.h"
#include "common/json.h"

struct env {
	char root[64];
	struct image_store *images;
	struct buildexec bx;
	struct build_backend be;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	snprintf(e->root, sizeof(e->root), "/tmp/test-buildexec-XXXXXX");
	assert_non_null(mkdtemp(e->root));
	unit_tmp_track(e->root);
	assert_int_equal(image_store_open(e->root, &e->images, NULL), 0);
	e->bx = (struct buildexec){ .images = e->images, .root = e->root };
	buildexec_backend(&e->bx, &e->be);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	buildexec_done(&e->bx);
	image_store_free(e->images);
	fs_rm_rf(e->root, NULL);
	free(e);
	return 0;
}

static void test_cache_miss_hit_and_forgotten_entry(void **state)
{
	struct env *e = *state;
	char *got = NULL;
	assert_int_equal(e->be.ops->cache_get(e->be.data, "sha256:k1", &got, NULL), 0);
	assert_int_equal(e->be.ops->cache_put(e->be.data, "sha256:k1", "scratch", NULL), 0);
	assert_int_equal(e->be.ops->cache_get(e->be.data, "sha256:k1", &got, NULL), 1);
	assert_string_equal(got, "scratch");
	free(got);
	got = NULL;
	/* an entry naming an image that is not in the store is a miss, and is dropped */
	const char *gone = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
	assert_int_equal(e->be.ops->cache_put(e->be.data, "sha256:k2", gone, NULL), 0);
	assert_int_equal(e->be.ops->cache_get(e->be.data, "sha256:k2", &got, NULL), 0);
	assert_null(got);
}

static json_t *config(const char *cmd)
{
	return json_pack("{s:s, s:s, s:{s:[s]}, s:[{s:s, s:b}]}", "os", "linux", "architecture", "amd64",
			 "config", "Cmd", cmd, "history", "created_by", "CMD", "empty_layer", 1);
}

static void test_commit_is_cached_by_config(void **state)
{
	struct env *e = *state;
	_cleanup_json_ json_t *c1 = config("a"), *c2 = config("b");
	char *id1 = NULL, *id1b = NULL, *id2 = NULL, *id3 = NULL;
	assert_int_equal(e->be.ops->commit(e->be.data, "scratch", c1, &id1, NULL), 0);
	assert_int_equal(e->be.ops->commit(e->be.data, "scratch", c1, &id1b, NULL), 0);
	assert_string_equal(id1, id1b);
	assert_int_equal(e->be.ops->commit(e->be.data, "scratch", c2, &id2, NULL), 0);
	assert_string_not_equal(id1, id2);
	e->bx.no_cache = true;
	assert_int_equal(e->be.ops->commit(e->be.data, "scratch", c1, &id3, NULL), 0);
	assert_string_not_equal(id1, id3);
	e->bx.no_cache = false;
	_cleanup_json_ json_t *img = NULL;
	assert_int_equal(image_get_config(e->images, id1, &img, NULL), 0);
	assert_int_equal(json_array_size(json_object_get(json_object_get(img, "rootfs"), "diff_ids")), 0);
	assert_non_null(json_object_get(json_array_get(json_object_get(img, "history"), 0), "created"));
	free(id1);
	free(id1b);
	free(id2);
	free(id3);
}

static void test_compose_rejects_bad_input(void **state)
{
	struct env *e = *state;
	_cleanup_json_ json_t *arr = json_array();
	struct berth_error *err = NULL;
	char *id = NULL;
	assert_int_equal(image_compose(e->images, NULL, arr, NULL, &id, &err), -EINVAL);
	berth_error_free(err);
	err = NULL;
	_cleanup_json_ json_t *c = config("x");
	assert_int_equal(image_compose(e->images, "no-such-image", c, NULL, &id, &err), -ENOENT);
	berth_error_free(err);
	assert_null(id);
}

static void test_prune_forgets_entries(void **state)
{
	struct env *e = *state;
	char *got = NULL;
	assert_int_equal(e->be.ops->cache_put(e->be.data, "sha256:p", "scratch", NULL), 0);
	_cleanup_json_ json_t *out = NULL;
	assert_int_equal(buildexec_prune(e->images, e->root, &out, NULL), 0);
	assert_true(json_is_array(json_object_get(out, "CachesDeleted")));
	assert_int_equal(e->be.ops->cache_get(e->be.data, "sha256:p", &got, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache_miss_hit_and_forgotten_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_is_cached_by_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compose_rejects_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prune_forgets_entries, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
