/*
 * images.c - name resolution, inspect, history, list, tag.
 *
 * Output shapes are docker's Engine API bodies so the daemon can return them
 * unchanged. Names are stored normalised ("docker.io/library/busybox:latest")
 * and shown familiar ("busybox:latest").
 */
#include <fnmatch.h>
#include <time.h>

#include "common/json.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/store.h"

static bool is_hex(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int lookup_one(sqlite3 *db, const char *sql, const char *arg, char **ret)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_prepare(db, sql, &st, NULL) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
	int found = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (found++) {
			free(*ret);
			*ret = NULL;
			return -ENOTUNIQ;
		}
		*ret = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	return found;
}

static int resolve_ref(sqlite3 *db, const struct image_ref *ref, char **ret)
{
	if (ref->digest) {
		_cleanup_free_ char *name = image_ref_name(ref);
		_cleanup_free_ char *key = xasprintf("%s@%s", name, ref->digest);
		int r = lookup_one(db, "SELECT image_id FROM digests WHERE ref = ?", key, ret);
		if (r != 0)
			return r;
		return lookup_one(db, "SELECT id FROM images WHERE id = ?", ref->digest, ret);
	}
	_cleanup_free_ char *full = image_ref_string(ref);
	return lookup_one(db, "SELECT image_id FROM tags WHERE ref = ?", full, ret);
}

static int resolve_db(sqlite3 *db, const char *name, char **ret, struct berth_error **err)
{
	char *id = NULL;
	int r = 0;
	const char *hex = startswith(name, "sha256:") ? name + 7 : NULL;
	if (hex && is_hex(hex, 64)) {
		_cleanup_free_ char *pat = xasprintf("sha256:%s%%", hex);
		r = lookup_one(db, "SELECT id FROM images WHERE id LIKE ?", pat, &id);
	} else {
		_cleanup_image_ref_ struct image_ref *ref = NULL;
		if (image_ref_parse(name, IMAGE_REF_DEFAULT_TAG, &ref, NULL) == 0)
			r = resolve_ref(db, ref, &id);
		else if (!is_hex(name, 64))
			return image_ref_parse(name, IMAGE_REF_DEFAULT_TAG, &ref, err);
		if (r == 0 && is_hex(name, 64)) {
			_cleanup_free_ char *pat = xasprintf("sha256:%s%%", name);
			r = lookup_one(db, "SELECT id FROM images WHERE id LIKE ?", pat, &id);
		}
	}
	if (r == -ENOTUNIQ)
		return berth_error_msg(err, ENOTUNIQ, "image id prefix '%s' is ambiguous", name);
	if (r < 0)
		return image_store_db_error(db, err, "resolve image");
	if (r == 0)
		return berth_error_msg(err, ENOENT, "no such image: '%s'", name);
	*ret = id;
	return 0;
}

int image_resolve(struct image_store *s, const char *name, char **ret_id, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	if (!name || !*name)
		return berth_error_msg(err, EINVAL, "image name must not be empty");
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	return resolve_db(db, name, ret_id, err);
}

static int load_config(struct image_store *s, const char *id, json_t **ret, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = image_content_read(s, id, IMAGE_MANIFEST_MAX, &sb, err);
	if (r < 0)
		return r;
	return json_parse(sb.buf, sb.len, "image config", ret, err);
}

int image_get_config(struct image_store *s, const char *name, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = image_resolve(s, name, &id, err);
	if (r < 0)
		return r;
	return load_config(s, id, ret, err);
}

/* Familiar names of an image's tags (table "tags") or digests ("digests"). */
static json_t *refs_of(sqlite3 *db, const char *table, const char *id)
{
	json_t *arr = json_array();
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *sql = xasprintf("SELECT ref FROM %s WHERE image_id = ? ORDER BY ref", table);
	if (image_store_db_prepare(db, sql, &st, NULL) < 0)
		return arr;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	while (sqlite3_step(st) == SQLITE_ROW) {
		_cleanup_image_ref_ struct image_ref *ref = NULL;
		const char *txt = (const char *)sqlite3_column_text(st, 0);
		if (image_ref_parse(txt, 0, &ref, NULL) < 0)
			continue;
		_cleanup_free_ char *f = image_ref_familiar(ref);
		json_array_append_new(arr, json_string(f));
	}
	return arr;
}

static json_t *jstr_or_empty(json_t *cfg, const char *key)
{
	json_t *v = json_object_get(cfg, key);
	return json_is_string(v) ? json_incref(v) : json_string("");
}

static json_t *graph_driver(struct image_store *s, const struct store_image *img)
{
	struct strbuf lower = STRBUF_INIT;
	_cleanup_free_ char *upper = NULL;
	for (size_t i = img->n_layers; i > 0; i--) {
		_cleanup_free_ char *d = image_store_snapshot_dir(s, img->layers[i - 1].chain_id);
		if (i == img->n_layers)
			upper = xasprintf("%s/fs", d);
		else
			strbuf_addf(&lower, "%s%s/fs", lower.len ? ":" : "", d);
	}
	json_t *data = json_object();
	if (lower.len)
		json_object_set_new(data, "LowerDir", json_string(lower.buf));
	if (upper)
		json_object_set_new(data, "UpperDir", json_string(upper));
	strbuf_release(&lower);
	return json_pack("{s:s, s:o}", "Name", "overlay2", "Data", data);
}

/* The database, ID, record and config of the image name names (inspect, history). */
static int open_image(struct image_store *s, const char *name, sqlite3 **ret_db, char **ret_id,
		      struct store_image *ret_img, json_t **ret_cfg, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_free_ char *id = NULL;
	struct store_image img = { 0 };
	int r = image_store_db_open(s, &db, err);
	if (r < 0 || (r = resolve_db(db, name, &id, err)) < 0 ||
	    (r = image_store_image_get(db, id, &img, err)) < 0)
		return r;
	r = load_config(s, id, ret_cfg, err);
	if (r < 0) {
		image_store_image_done(&img);
		return r;
	}
	*ret_db = TAKE_PTR(db);
	*ret_id = TAKE_PTR(id);
	*ret_img = img;
	return 0;
}

int image_inspect(struct image_store *s, const char *name, json_t **ret, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_free_ char *id = NULL;
	_cleanup_json_ json_t *cfg = NULL;
	struct store_image img = { 0 };
	int r = open_image(s, name, &db, &id, &img, &cfg, err);
	if (r < 0)
		return r;
	json_t *diff_ids = json_array();
	for (size_t i = 0; i < img.n_layers; i++)
		json_array_append_new(diff_ids, json_string(img.layers[i].diff_id));
	json_t *config = json_object_get(cfg, "config");
	json_t *o = json_object();
	json_object_set_new(o, "Id", json_string(id));
	json_object_set_new(o, "RepoTags", refs_of(db, "tags", id));
	json_object_set_new(o, "RepoDigests", refs_of(db, "digests", id));
	char parent[DIGEST_STRING_MAX];
	(void)image_store_parent_get(db, id, parent);
	json_object_set_new(o, "Parent", json_string(parent));
	json_object_set_new(o, "Comment", jstr_or_empty(cfg, "comment"));
	json_object_set_new(o, "Created", jstr_or_empty(cfg, "created"));
	json_object_set_new(o, "Container", jstr_or_empty(cfg, "container"));
	json_object_set_new(o, "ContainerConfig", json_object());
	json_object_set_new(o, "DockerVersion", jstr_or_empty(cfg, "docker_version"));
	json_object_set_new(o, "Author", jstr_or_empty(cfg, "author"));
	json_object_set_new(o, "Config", json_is_object(config) ? json_incref(config) : json_object());
	json_object_set_new(o, "Architecture", jstr_or_empty(cfg, "architecture"));
	if (json_is_string(json_object_get(cfg, "variant")))
		json_object_set_new(o, "Variant", jstr_or_empty(cfg, "variant"));
	json_object_set_new(o, "Os", jstr_or_empty(cfg, "os"));
	json_object_set_new(o, "Size", json_integer((json_int_t)img.size));
	json_object_set_new(o, "VirtualSize", json_integer((json_int_t)img.size));
	json_object_set_new(o, "GraphDriver", graph_driver(s, &img));
	json_object_set_new(o, "RootFS", json_pack("{s:s, s:o}", "Type", "layers", "Layers", diff_ids));
	json_object_set_new(o, "Metadata", json_pack("{s:s}", "LastTagTime", "0001-01-01T00:00:00Z"));
	image_store_image_done(&img);
	*ret = o;
	return 0;
}

static int64_t created_unix(json_t *entry)
{
	struct timespec ts = { 0 };
	const char *c = json_string_value(json_object_get(entry, "created"));
	if (c)
		(void)util_parse_rfc3339(c, &ts);
	return ts.tv_sec;
}

int image_history(struct image_store *s, const char *name, json_t **ret, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_free_ char *id = NULL;
	_cleanup_json_ json_t *cfg = NULL;
	struct store_image img = { 0 };
	int r = open_image(s, name, &db, &id, &img, &cfg, err);
	if (r < 0)
		return r;
	json_t *hist = json_object_get(cfg, "history");
	json_t *out = json_array();
	size_t layer = 0;
	for (size_t i = 0; i < json_array_size(hist); i++) {
		json_t *h = json_array_get(hist, i);
		bool empty = json_is_true(json_object_get(h, "empty_layer"));
		uint64_t size = 0;
		if (!empty && layer < img.n_layers)
			size = img.layers[layer++].size;
		json_t *e = json_pack("{s:s, s:I, s:o, s:o, s:I, s:o}", "Id", "<missing>", "Created",
				      (json_int_t)created_unix(h), "CreatedBy",
				      jstr_or_empty(h, "created_by"), "Tags", json_null(), "Size",
				      (json_int_t)size, "Comment", jstr_or_empty(h, "comment"));
		json_array_insert_new(out, 0, e);
	}
	if (json_array_size(out) > 0) {
		json_t *top = json_array_get(out, 0);
		json_object_set_new(top, "Id", json_string(id));
		json_object_set_new(top, "Tags", refs_of(db, "tags", id));
	}
	image_store_image_done(&img);
	*ret = out;
	return 0;
}

int image_tag(struct image_store *s, const char *source, const char *target, struct berth_error **err)
{
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	int r = image_ref_parse(target, IMAGE_REF_DEFAULT_TAG | IMAGE_REF_NO_DIGEST, &ref, err);
	if (r < 0)
		return r;
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_free_ char *id = NULL;
	r = image_store_db_open(s, &db, err);
	if (r < 0 || (r = resolve_db(db, source, &id, err)) < 0)
		return r;
	_cleanup_free_ char *full = image_ref_string(ref);
	return image_store_tag_put(db, full, id, err);
}

/* ---- list ---- */

static bool labels_match(json_t *labels, const char *const *want)
{
	for (size_t i = 0; want && want[i]; i++) {
		const char *eq = strchr(want[i], '=');
		_cleanup_free_ char *k = eq ? xstrndup(want[i], (size_t)(eq - want[i])) : xstrdup(want[i]);
		json_t *v = json_object_get(labels, k);
		if (!json_is_string(v) || (eq && !streq(json_string_value(v), eq + 1)))
			return false;
	}
	return true;
}

/* docker's reference.FamiliarMatch: the glob on the whole familiar reference, or on its name alone. */
static bool reference_match_one(const char *full, const char *const *patterns)
{
	const char *at = strchr(full, '@');
	const char *colon = strrchr(full, ':');
	const char *slash = strrchr(full, '/');
	_cleanup_free_ char *name = at ? xstrndup(full, (size_t)(at - full))
				    : colon && (!slash || colon > slash)
					? xstrndup(full, (size_t)(colon - full))
					: xstrdup(full);
	for (size_t p = 0; patterns[p]; p++)
		if (fnmatch(patterns[p], full, FNM_PATHNAME) == 0 ||
		    fnmatch(patterns[p], name, FNM_PATHNAME) == 0)
			return true;
	return false;
}

/*
 * With reference patterns, keep in RepoTags and RepoDigests only the
 * references that match (dockerd lists only those); false when none is left.
 */
static bool reference_filter(json_t *summary, const char *const *patterns)
{
	if (!patterns || !patterns[0])
		return true;
	bool any = false;
	const char *keys[] = { "RepoTags", "RepoDigests" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		json_t *refs = json_object_get(summary, keys[k]);
		for (size_t i = 0; i < json_array_size(refs);) {
			if (reference_match_one(json_string_value(json_array_get(refs, i)), patterns))
				i++;
			else
				json_array_remove(refs, i);
		}
		any = any || json_array_size(refs) > 0;
	}
	return any;
}

static int created_of(sqlite3 *db, const char *name, int64_t *ret, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = resolve_db(db, name, &id, err);
	if (r < 0)
		return r;
	struct store_image img = { 0 };
	r = image_store_image_get(db, id, &img, err);
	if (r < 0)
		return r;
	*ret = img.created;
	image_store_image_done(&img);
	return 0;
}

static bool build_step_image(json_t *cfg)
{
	json_t *hist = json_object_get(cfg, "history");
	size_t n = json_array_size(hist);
	const char *c = n ? json_string_value(json_object_get(json_array_get(hist, n - 1), "comment")) : NULL;
	return c && streq(c, IMAGE_COMMENT_BUILD_STEP);
}

static json_t *summary(struct image_store *s, sqlite3 *db, const char *id, int64_t created, int64_t size,
		       bool *ret_build_step)
{
	_cleanup_json_ json_t *cfg = NULL;
	(void)load_config(s, id, &cfg, NULL);
	*ret_build_step = build_step_image(cfg);
	json_t *labels = json_object_get(json_object_get(cfg, "config"), "Labels");
	char parent[DIGEST_STRING_MAX];
	(void)image_store_parent_get(db, id, parent);
	return json_pack("{s:s, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:I}", "Id", id, "ParentId", parent,
			 "RepoTags", refs_of(db, "tags", id), "RepoDigests", refs_of(db, "digests", id),
			 "Created", (json_int_t)created, "Size", (json_int_t)size, "SharedSize",
			 (json_int_t)-1, "VirtualSize", (json_int_t)size, "Labels",
			 json_is_object(labels) ? json_incref(labels) : json_object(), "Containers",
			 (json_int_t)-1);
}

int image_list(struct image_store *s, const struct image_list_filters *f, json_t **ret,
	       struct berth_error **err)
{
	static const struct image_list_filters none = { 0 };
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int64_t before = INT64_MAX, since = INT64_MIN;
	if (!f)
		f = &none;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	if (f->before && (r = created_of(db, f->before, &before, err)) < 0)
		return berth_error_wrap(err, r, "filter 'before'");
	if (f->since && (r = created_of(db, f->since, &since, err)) < 0)
		return berth_error_wrap(err, r, "filter 'since'");
	r = image_store_db_prepare(
	    db, "SELECT id, created, size FROM images ORDER BY created DESC, added DESC, id", &st, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *out = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		int64_t created = sqlite3_column_int64(st, 1);
		if (created >= before || created <= since)
			continue;
		bool step;
		json_t *e = summary(s, db, id, created, sqlite3_column_int64(st, 2), &step);
		json_t *tags = json_object_get(e, "RepoTags");
		bool dangling = json_array_size(tags) == 0;
		if ((dangling && step && !f->all) || (f->dangling_set && dangling != f->dangling) ||
		    !reference_filter(e, f->reference) ||
		    !labels_match(json_object_get(e, "Labels"), f->label)) {
			json_decref(e);
			continue;
		}
		json_array_append_new(out, e);
	}
	*ret = TAKE_PTR(out);
	return 0;
}

/*
 * dockerd counts a layer (chain ID) once however many images use it: SharedSize
 * is the part of an image's Size that another image holds too, LayersSize the
 * sum over distinct layers. One row per chain ID with the number of images.
 */
#define LAYER_REFS                                                                                \
	"SELECT chain_id, MAX(size) AS size, COUNT(DISTINCT image_id) AS refs FROM image_layers " \
	"GROUP BY chain_id"

int image_disk_usage(struct image_store *s, json_t *images, int64_t *ret_layers_size,
		     struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_stmt_ sqlite3_stmt *total = NULL, *shared = NULL;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	r = image_store_db_prepare(db, "SELECT COALESCE(SUM(size), 0) FROM (" LAYER_REFS ")", &total, err);
	if (r < 0)
		return r;
	if (sqlite3_step(total) != SQLITE_ROW)
		return image_store_db_error(db, err, "sum layer sizes");
	int64_t layers = sqlite3_column_int64(total, 0);
	r = image_store_db_prepare(db,
				   "SELECT COALESCE(SUM(l.size), 0) FROM (SELECT DISTINCT chain_id FROM "
				   "image_layers WHERE image_id = ?1) AS mine JOIN (" LAYER_REFS
				   ") AS l ON l.chain_id = mine.chain_id WHERE l.refs > 1",
				   &shared, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *img;
	json_array_foreach (images, i, img) {
		const char *id = json_string_value(json_object_get(img, "Id"));
		if (!id)
			continue;
		sqlite3_reset(shared);
		sqlite3_bind_text(shared, 1, id, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(shared) != SQLITE_ROW)
			return image_store_db_error(db, err, "sum shared layer sizes");
		json_object_set_new(img, "SharedSize", json_integer(sqlite3_column_int64(shared, 0)));
	}
	*ret_layers_size = layers;
	return 0;
}
