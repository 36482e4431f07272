/*
 * cachefrom.c - `docker build --cache-from IMAGE`: images (pulled, loaded
 * from `docker save`, built elsewhere) as cache sources for steps this daemon
 * has no cache entry for.
 *
 * moby's classic builder (image/cache) takes a source image T for a step on
 * parent P when T's history and diff_ids begin with P's and T's next history
 * entry was created by the step's command; the step's result is then an image
 * of P's layers plus T's next layer. berth's history texts are BuildKit's
 * ("COPY a /b", no content digest), so a text match would reuse a COPY of
 * changed files: berth matches the step's cache key instead (the plan's key
 * covers the parent chain, the instruction and the files it reads), which
 * its builds record in the image config (BUILD_CACHE_KEYS). The layer rule is
 * moby's: P's diff_ids must be T's first ones.
 *
 * A hit is a small intermediate image (P's history and config plus one
 * entry) on T's first layers; its config is a function of P and T, so a
 * rebuild finds the same image. The final commit gives the source image
 * itself when config and layers are the source's (same image ID, as dockerd).
 */
#include "buildexec/internal.h"
#include "common/json.h"
#include "common/util.h"

/* Most --cache-from images one build takes. */
#define CACHE_FROM_MAX 64

struct bx_source {
	char *id;
	json_t *config; /* the whole image config */
	size_t n_layers, first_key_layer;
	json_t *keys; /* borrowed from config */
};

static void sources_free(struct bx_source *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].id);
		json_decref(s[i].config);
	}
	free(s);
}

/* Resolve the --cache-from names once; names that are not images (or not berth builds) are skipped,
 * as dockerd skips a source it cannot find. */
static void load_sources(struct buildexec *b)
{
	size_t n = 0;
	struct bx_source *s = xcalloc(CACHE_FROM_MAX, sizeof(*s));
	for (char *const *name = b->cache_from; name && *name && n < CACHE_FROM_MAX; name++) {
		_cleanup_free_ char *id = NULL;
		_cleanup_json_ json_t *cfg = NULL;
		if (image_resolve(b->images, *name, &id, NULL) < 0 ||
		    image_get_config(b->images, id, &cfg, NULL) < 0)
			continue;
		json_t *keys = json_object_get(cfg, BUILD_CACHE_KEYS);
		size_t nl = json_array_size(json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"));
		if (!json_is_array(keys) || json_array_size(keys) > nl)
			continue;
		s[n] = (struct bx_source){ .id = TAKE_PTR(id),
					   .n_layers = nl,
					   .first_key_layer = nl - json_array_size(keys),
					   .keys = keys,
					   .config = TAKE_PTR(cfg) };
		n++;
	}
	b->sources = s;
	b->n_sources = n;
	b->sources_loaded = true;
}

void buildexec_sources_free(struct buildexec *b)
{
	sources_free(b->sources, b->n_sources);
	b->sources = NULL;
	b->n_sources = 0;
	b->sources_loaded = false;
}

static json_t *diff_ids_of(const json_t *cfg)
{
	return json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
}

/* Index of the layer the step `key` made in source src, or SIZE_MAX. */
static size_t key_layer(const struct bx_source *src, const char *key)
{
	ssize_t i = json_strv_find(src->keys, key, false);
	return i < 0 ? SIZE_MAX : src->first_key_layer + (size_t)i;
}

/* moby's isValidParent on layers: the parent's diff_ids are the source's first n. */
static bool layers_prefix(const json_t *parent_diffs, const json_t *src_diffs, size_t n)
{
	if (json_array_size(parent_diffs) != n || json_array_size(src_diffs) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!json_equal(json_array_get(parent_diffs, i), json_array_get(src_diffs, i)))
			return false;
	return true;
}

/* The source's history entry of layer n (docker: one entry per layer, in order, without
 * empty_layer), or NULL. */
static const json_t *layer_entry(const struct bx_source *src, size_t n)
{
	size_t i, k = 0;
	json_t *h;
	json_array_foreach (json_object_get(src->config, "history"), i, h) {
		if (json_is_true(json_object_get(h, "empty_layer")))
			continue;
		if (k++ == n)
			return h;
	}
	return NULL;
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : dflt;
}

/* The restored step's image: P's history and container config, one entry for the step, dated
 * by the source (a function of P and the source: the same image when restored again). */
static json_t *restored_config(const json_t *parent_cfg, const struct bx_source *src, size_t layer,
			       const char *key)
{
	const json_t *e = layer_entry(src, layer);
	const char *created = str_or(e, "created", str_or(src->config, "created", ""));
	json_t *hist = json_deep_copy(json_object_get(parent_cfg, "history"));
	if (!json_is_array(hist)) {
		json_decref(hist);
		hist = json_array();
	}
	json_array_append_new(hist, json_pack("{s:s,s:s,s:s}", "created", created, "created_by",
					      str_or(e, "created_by", key), "comment", BX_INTERMEDIATE));
	json_t *cc = json_object_get(parent_cfg, "config");
	return json_pack("{s:s,s:s,s:o,s:o,s:s}", "architecture", str_or(src->config, "architecture", ""),
			 "os", str_or(src->config, "os", "linux"), "config",
			 json_is_object(cc) ? json_deep_copy(cc) : json_object(), "history", hist, "created",
			 created);
}

static int restore(struct buildexec *b, const char *state, const struct bx_source *src, size_t layer,
		   const char *key, char **ret_state, struct berth_error **err)
{
	_cleanup_json_ json_t *pcfg = NULL;
	bool scratch = streq(state, BX_SCRATCH);
	if (!scratch && image_get_config(b->images, state, &pcfg, err) < 0)
		return 0; /* the parent is gone: no hit */
	if (!layers_prefix(scratch ? NULL : diff_ids_of(pcfg), diff_ids_of(src->config), layer))
		return 0;
	_cleanup_json_ json_t *cfg = restored_config(pcfg, src, layer, key);
	int r = image_compose_prefix(b->images, src->id, layer + 1, scratch ? NULL : state, cfg, NULL,
				     ret_state, err);
	return r < 0 ? berth_error_wrap(err, r, "restore cached step from '%s'", src->id) : 1;
}

int buildexec_cache_source(void *be, const char *state, const char *key, char **ret_state,
			   struct berth_error **err)
{
	struct buildexec *b = be;
	if (!b->cache_from || !b->cache_from[0])
		return 0;
	pthread_mutex_lock(&b->lock);
	if (!b->sources_loaded)
		load_sources(b);
	pthread_mutex_unlock(&b->lock);
	for (size_t i = 0; i < b->n_sources; i++) {
		size_t layer = key_layer(&b->sources[i], key);
		if (layer == SIZE_MAX)
			continue;
		int r = restore(b, state, &b->sources[i], layer, key, ret_state, err);
		if (r != 0)
			return r;
	}
	return 0;
}

/* Equal image configs but for the times ("created" of the image and of each history entry). */
static bool same_but_times(const json_t *a, const json_t *b)
{
	_cleanup_json_ json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
	json_t *both[] = { x, y };
	for (size_t k = 0; k < 2; k++) {
		json_object_del(both[k], "created");
		size_t i;
		json_t *h;
		json_array_foreach (json_object_get(both[k], "history"), i, h)
			json_object_del(h, "created");
	}
	return json_equal(x, y);
}

int buildexec_cache_source_image(struct buildexec *b, const char *state, const json_t *config, char **ret_id)
{
	_cleanup_json_ json_t *scfg = NULL;
	if (!b->sources_loaded || !b->n_sources || streq(state, BX_SCRATCH) ||
	    image_get_config(b->images, state, &scfg, NULL) < 0)
		return 0;
	const json_t *diffs = diff_ids_of(scfg);
	for (size_t i = 0; i < b->n_sources; i++) {
		const struct bx_source *src = &b->sources[i];
		if (!layers_prefix(diffs, diff_ids_of(src->config), src->n_layers))
			continue;
		_cleanup_json_ json_t *mine = json_deep_copy(config);
		json_object_set(mine, "rootfs", json_object_get(src->config, "rootfs"));
		if (same_but_times(mine, src->config)) {
			*ret_id = xstrdup(src->id);
			return 1;
		}
	}
	return 0;
}
