/*
 * backend.c - the vtable: base images, states, cache, final commit, tags.
 * States are image IDs; a filesystem step is an overlay snapshot of its
 * parent state, changed, committed as an intermediate image and removed.
 */
#include "buildexec/internal.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/util.h"

#include <time.h>

static int be_resolve(void *be, const char *ref, const char *platform, bool pull, char **ret_id,
		      json_t **ret_config, struct berth_error **err)
{
	struct buildexec *b = be;
	_cleanup_free_ char *id = NULL;
	int r = pull ? -ENOENT : image_resolve(b->images, ref, &id, NULL);
	if (r == -ENOENT) {
		struct berth_error *perr = NULL;
		r = image_pull(b->images, ref, platform, NULL, &id, &perr);
		if (r < 0) {
			_cleanup_free_ char *why = berth_error_string(perr);
			int rr = berth_error_msg(err, ENOENT, "pull access denied or no such image '%s': %s",
						 ref, why);
			berth_error_free(perr);
			return rr;
		}
	} else if (r < 0) {
		return image_resolve(b->images, ref, &id, err);
	}
	_cleanup_json_ json_t *cfg = NULL;
	if ((r = image_get_config(b->images, id, &cfg, err)) < 0)
		return r;
	const char *arch = json_string_value(json_object_get(cfg, "architecture"));
	const char *slash = platform ? strchr(platform, '/') : NULL;
	if (slash && arch && *arch) {
		const char *end = strchr(slash + 1, '/');
		size_t n = end ? (size_t)(end - slash - 1) : strlen(slash + 1);
		if (strlen(arch) != n || strncmp(arch, slash + 1, n) != 0)
			return berth_error_msg(err, EINVAL,
					       "image with reference '%s' was found but does not match the "
					       "specified platform: wanted %s, actual: %s/%s",
					       ref, platform, json_string_value(json_object_get(cfg, "os")),
					       arch);
	}
	json_t *c = json_object_get(cfg, "config");
	*ret_config = json_is_object(c) ? json_incref(c) : json_object();
	*ret_id = TAKE_PTR(id);
	return 0;
}

static int be_state_from_image(void *be, const char *image_id, char **ret_state, struct berth_error **err)
{
	(void)be;
	(void)err;
	*ret_state = xstrdup(image_id ? image_id : BX_SCRATCH);
	return 0;
}

int buildexec_snapshot(struct buildexec *b, const char *state, char **ret_id, struct image_snapshot **ret,
		       struct berth_error **err)
{
	_cleanup_free_ char *hex = util_random_hex(16);
	_cleanup_free_ char *id = xasprintf("build-%s", hex);
	int r = image_snapshot_prepare(b->images, id, streq(state, BX_SCRATCH) ? NULL : state, ret, err);
	if (r < 0)
		return berth_error_wrap(err, r, "prepare build snapshot");
	*ret_id = TAKE_PTR(id);
	return 0;
}

int buildexec_commit_snapshot(struct buildexec *b, const char *id, const char *created_by, char **ret_state,
			      struct berth_error **err)
{
	struct image_commit_opts o = { .created_by = created_by, .comment = BX_INTERMEDIATE };
	(void)image_snapshot_unmount(b->images, id, NULL);
	int r = image_commit(b->images, id, &o, ret_state, err);
	(void)image_snapshot_remove(b->images, id, NULL);
	return r;
}

static int be_cache_get(void *be, const char *key, char **ret_state, struct berth_error **err)
{
	return buildexec_cache_get(be, key, ret_state, err);
}

static int be_cache_put(void *be, const char *key, const char *state, struct berth_error **err)
{
	return buildexec_cache_put(be, key, state, err);
}

static int be_commit(void *be, const char *state, json_t *image_config, char **ret_image_id,
		     struct berth_error **err)
{
	struct buildexec *b = be;
	const char *layers = streq(state, BX_SCRATCH) ? NULL : state;
	_cleanup_json_ json_t *cfg = json_deep_copy(image_config);
	/* prepend the base image's history (image_config's is the Dockerfile's) */
	_cleanup_json_ json_t *base = NULL;
	json_t *hist = json_array();
	if (layers && image_get_config(b->images, layers, &base, NULL) >= 0) {
		size_t i;
		json_t *h;
		json_array_foreach (json_object_get(base, "history"), i, h) {
			const char *c = json_string_value(json_object_get(h, "comment"));
			if (!c || !streq(c, BX_INTERMEDIATE))
				json_array_append(hist, h);
		}
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	char created[RFC3339_MAX];
	util_format_rfc3339(&now, created);
	size_t i;
	json_t *h;
	json_array_foreach (json_object_get(cfg, "history"), i, h) {
		if (!json_object_get(h, "created"))
			json_object_set_new(h, "created", json_string(created));
		json_array_append(hist, h);
	}
	json_object_set_new(cfg, "history", hist);
	/* the cache key leaves out the times */
	_cleanup_json_ json_t *keycfg = json_deep_copy(image_config);
	_cleanup_free_ char *txt = json_dumps(keycfg, JSON_COMPACT | JSON_SORT_KEYS);
	struct strbuf kb = STRBUF_INIT;
	strbuf_addf(&kb, "commit\n%s\n%s", state, txt);
	char dg[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, kb.buf, kb.len, dg);
	strbuf_release(&kb);
	_cleanup_free_ char *key = xasprintf("commit:%s", dg);
	int r;
	if (!b->no_cache && (r = buildexec_cache_get(b, key, ret_image_id, NULL)) > 0)
		return 0;
	if (!b->no_cache && buildexec_cache_source_image(b, state, cfg, ret_image_id) > 0)
		return 0;
	if ((r = image_compose(b->images, layers, cfg, NULL, ret_image_id, err)) < 0)
		return r;
	(void)buildexec_cache_put(b, key, *ret_image_id, NULL);
	return 0;
}

static int be_tag(void *be, const char *image_id, const char *ref, struct berth_error **err)
{
	struct buildexec *b = be;
	/* a cached rebuild: the tag already names this image, no database write (and fsync) */
	_cleanup_free_ char *cur = NULL;
	if (image_resolve(b->images, ref, &cur, NULL) >= 0 && streq(cur, image_id))
		return 0;
	return image_tag(b->images, image_id, ref, err);
}

static int be_retain(void *be, const char *state, char **ret_state, struct berth_error **err)
{
	(void)be;
	(void)err;
	*ret_state = xstrdup(state);
	return 0;
}

static void be_release(void *be, const char *state)
{
	/* states are image IDs kept by the store (and the cache); the executor frees the string */
	(void)be;
	(void)state;
}

static const struct build_backend_ops ops = {
	.resolve_image = be_resolve,
	.state_from_image = be_state_from_image,
	.run = buildexec_run,
	.copy = buildexec_copy,
	.mkdir = buildexec_mkdir,
	.fetch_urls = buildexec_fetch_urls,
	.cache_get = be_cache_get,
	.cache_put = be_cache_put,
	.cache_source = buildexec_cache_source,
	.commit = be_commit,
	.tag = be_tag,
	.retain = be_retain,
	.release = be_release,
	.thread_safe = true,
};

void buildexec_backend(struct buildexec *b, struct build_backend *ret)
{
	ret->ops = &ops;
	ret->data = b;
}
