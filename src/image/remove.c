/*
 * remove.c - image_remove() and image_prune(): untag vs delete, and freeing
 * exactly the blobs and layer snapshots nothing else references.
 *
 * Reference counting is done by queries, not counters: a blob or a layer is
 * garbage when no row of images / image_layers names it. Metadata changes
 * happen in one transaction; files are deleted after it commits, so a crash
 * leaves at worst unreferenced files (never a row pointing at nothing).
 * Images used by snapshots (running or stopped containers) are never deleted,
 * whatever the caller's in_use callback says.
 */
#include "common/fs.h"
#include "common/json.h"
#include "image/store.h"

struct garbage {
	char **blobs, **chains;
	size_t n_blobs, n_chains;
	uint64_t reclaimed;
};

static void garbage_add(char ***v, size_t *n, const char *s)
{
	if (!s)
		return;
	*v = xrealloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

static void garbage_done(struct garbage *g)
{
	strv_free(g->blobs);
	strv_free(g->chains);
}

static bool image_has_snapshot(sqlite3 *db, const char *id)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_prepare(db, "SELECT 1 FROM snapshots WHERE image_id = ?", &st, NULL) < 0)
		return true;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	return sqlite3_step(st) == SQLITE_ROW;
}

static int count_rows(sqlite3 *db, const char *sql, const char *arg)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_prepare(db, sql, &st, NULL) < 0)
		return -EIO;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
}

static int exec1(sqlite3 *db, const char *sql, const char *arg, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(db, sql, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		return image_store_db_error(db, err, "update database");
	return 0;
}

/* Delete the image row (inside the caller's transaction) and collect garbage. */
static int delete_image_rows(sqlite3 *db, const char *id, struct garbage *g, struct berth_error **err)
{
	struct store_image img = { 0 };
	int r = image_store_image_get(db, id, &img, err);
	if (r < 0)
		return r;
	r = exec1(db, "DELETE FROM images WHERE id = ?", id, err);
	for (size_t i = 0; r >= 0 && i < img.n_layers; i++) {
		const struct store_layer *l = &img.layers[i];
		if (l->blob[0] &&
		    count_rows(db, "SELECT count(*) FROM image_layers WHERE blob = ?", l->blob) == 0)
			garbage_add(&g->blobs, &g->n_blobs, l->blob);
		if (count_rows(db, "SELECT count(*) FROM image_layers WHERE chain_id = ?", l->chain_id) ==
		    0) {
			garbage_add(&g->chains, &g->n_chains, l->chain_id);
			g->reclaimed += l->size;
			r = exec1(db, "DELETE FROM layers WHERE chain_id = ?", l->chain_id, err);
		}
	}
	if (r >= 0 && img.manifest_digest &&
	    count_rows(db, "SELECT count(*) FROM images WHERE manifest_digest = ?", img.manifest_digest) == 0)
		garbage_add(&g->blobs, &g->n_blobs, img.manifest_digest);
	if (r >= 0)
		garbage_add(&g->blobs, &g->n_blobs, id);
	image_store_image_done(&img);
	return r;
}

static void collect_garbage(struct image_store *s, struct garbage *g)
{
	for (size_t i = 0; i < g->n_blobs; i++)
		(void)image_content_delete(s, g->blobs[i]);
	for (size_t i = 0; i < g->n_chains; i++) {
		_cleanup_free_ char *d = image_store_snapshot_dir(s, g->chains[i]);
		(void)fs_rm_rf(d, NULL);
	}
}

static void add_untagged(json_t *out, const char *full)
{
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	if (image_ref_parse(full, 0, &ref, NULL) < 0)
		return;
	_cleanup_free_ char *f = image_ref_familiar(ref);
	json_array_append_new(out, json_pack("{s:s}", "Untagged", f));
}

/* Untag every reference of id. */
static int untag_all(sqlite3 *db, const char *id, json_t *out, struct berth_error **err)
{
	static const char *const tables[] = { "tags", "digests" };
	for (size_t t = 0; t < ARRAY_SIZE(tables); t++) {
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		_cleanup_free_ char *sql = xasprintf("SELECT ref FROM %s WHERE image_id = ?", tables[t]);
		int r = image_store_db_prepare(db, sql, &st, err);
		if (r < 0)
			return r;
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		while (sqlite3_step(st) == SQLITE_ROW)
			add_untagged(out, (const char *)sqlite3_column_text(st, 0));
		free(sql);
		sql = xasprintf("DELETE FROM %s WHERE image_id = ?", tables[t]);
		r = exec1(db, sql, id, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool check_in_use(sqlite3 *db, const char *id, image_in_use_fn in_use, void *ud, char **ret_cid)
{
	if (in_use && in_use(id, ret_cid, ud))
		return true;
	return image_has_snapshot(db, id);
}

struct remove_req {
	const char *name;
	int flags;
	image_in_use_fn in_use;
	void *ud;
};

/* The decision part of image_remove(), inside a transaction. */
static int remove_locked(sqlite3 *db, const struct remove_req *q, const char *id, json_t *out,
			 struct garbage *g, struct berth_error **err)
{
	bool force = q->flags & IMAGE_REMOVE_FORCE;
	char sid[13];
	image_store_short_id(id, sid);
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	_cleanup_free_ char *full = NULL;
	bool by_ref = !startswith(q->name, "sha256:") &&
		      image_ref_parse(q->name, IMAGE_REF_DEFAULT_TAG, &ref, NULL) == 0;
	if (by_ref) {
		full = image_ref_string(ref);
		const char *table = ref->digest ? "digests" : "tags";
		_cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM %s WHERE ref = ?", table);
		by_ref = count_rows(db, sql, full) > 0;
	}
	int refs = count_rows(db, "SELECT count(*) FROM tags WHERE image_id = ?", id) +
		   count_rows(db, "SELECT count(*) FROM digests WHERE image_id = ?", id);
	_cleanup_free_ char *cid = NULL;
	if (by_ref) {
		_cleanup_free_ char *sql =
		    xasprintf("DELETE FROM %s WHERE ref = ?", ref->digest ? "digests" : "tags");
		if (refs > 1) {
			add_untagged(out, full);
			return exec1(db, sql, full, err);
		}
		if (check_in_use(db, id, q->in_use, q->ud, &cid)) {
			if (!force)
				return berth_error_msg(
				    err, EBUSY,
				    "conflict: unable to remove repository reference '%s' (must force)"
				    " - container %s is using its referenced image %s",
				    q->name, cid ? cid : "(snapshot)", sid);
			add_untagged(out, full);
			return exec1(db, sql, full, err);
		}
	} else {
		if (refs > 1 && !force)
			return berth_error_msg(
			    err, EBUSY,
			    "conflict: unable to delete %s (must be forced) - image is referenced in"
			    " multiple repositories",
			    sid);
		if (check_in_use(db, id, q->in_use, q->ud, &cid)) {
			if (!force)
				return berth_error_msg(
				    err, EBUSY,
				    "conflict: unable to delete %s (must be forced) - image is being used"
				    " by stopped container %s",
				    sid, cid ? cid : "(snapshot)");
			return untag_all(db, id, out, err);
		}
	}
	int r = untag_all(db, id, out, err);
	if (r < 0)
		return r;
	r = delete_image_rows(db, id, g, err);
	if (r < 0)
		return r;
	json_array_append_new(out, json_pack("{s:s}", "Deleted", id));
	return 0;
}

int image_remove(struct image_store *s, const char *name, int flags, image_in_use_fn in_use, void *userdata,
		 json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = image_resolve(s, name, &id, err);
	if (r < 0)
		return r;
	_cleanup_db_ sqlite3 *db = NULL;
	r = image_store_db_open(s, &db, err);
	if (r < 0 || (r = image_store_db_begin(db, err)) < 0)
		return r;
	_cleanup_json_ json_t *out = json_array();
	struct garbage g = { 0 };
	struct remove_req q = { name, flags, in_use, userdata };
	r = remove_locked(db, &q, id, out, &g, err);
	if (r >= 0)
		r = image_store_db_commit(db, err);
	else
		image_store_db_rollback(db);
	if (r >= 0)
		collect_garbage(s, &g);
	garbage_done(&g);
	if (r < 0)
		return r;
	if (ret)
		*ret = TAKE_PTR(out);
	return 0;
}

static bool prune_candidate(struct image_store *s, sqlite3 *db, const char *id, int64_t created, bool all,
			    int64_t until, const char *const *labels)
{
	if (!all && count_rows(db, "SELECT count(*) FROM tags WHERE image_id = ?", id) > 0)
		return false;
	if (until > 0 && created >= until)
		return false;
	if (!labels || !labels[0])
		return true;
	_cleanup_json_ json_t *cfg = NULL;
	if (image_get_config(s, id, &cfg, NULL) < 0)
		return false;
	json_t *l = json_object_get(json_object_get(cfg, "config"), "Labels");
	for (size_t i = 0; labels[i]; i++) {
		const char *eq = strchr(labels[i], '=');
		_cleanup_free_ char *k =
		    eq ? xstrndup(labels[i], (size_t)(eq - labels[i])) : xstrdup(labels[i]);
		json_t *v = json_object_get(l, k);
		if (!json_is_string(v) || (eq && !streq(json_string_value(v), eq + 1)))
			return false;
	}
	return true;
}

int image_prune(struct image_store *s, bool all, int64_t until_unix, const char *const *labels,
		image_in_use_fn in_use, void *userdata, json_t **ret, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_strv_ char **ids = xcalloc(1, sizeof(char *));
	size_t n = 0;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	{
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		r = image_store_db_prepare(db, "SELECT id, created FROM images", &st, err);
		if (r < 0)
			return r;
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			if (prune_candidate(s, db, id, sqlite3_column_int64(st, 1), all, until_unix, labels))
				garbage_add(&ids, &n, id);
		}
	}
	_cleanup_json_ json_t *deleted = json_array();
	struct garbage g = { 0 };
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *cid = NULL;
		if (check_in_use(db, ids[i], in_use, userdata, &cid))
			continue;
		if ((r = image_store_db_begin(db, err)) < 0)
			break;
		r = untag_all(db, ids[i], deleted, err);
		if (r >= 0)
			r = delete_image_rows(db, ids[i], &g, err);
		if (r >= 0)
			r = image_store_db_commit(db, err);
		if (r < 0) {
			image_store_db_rollback(db);
			break;
		}
		json_array_append_new(deleted, json_pack("{s:s}", "Deleted", ids[i]));
	}
	collect_garbage(s, &g);
	uint64_t reclaimed = g.reclaimed;
	garbage_done(&g);
	if (r < 0)
		return r;
	if (ret)
		*ret = json_pack("{s:O, s:I}", "ImagesDeleted", deleted, "SpaceReclaimed",
				 (json_int_t)reclaimed);
	return 0;
}
