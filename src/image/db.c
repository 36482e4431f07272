/*
 * db.c - the store handle and its SQLite metadata (image.db).
 *
 * A connection per operation, never shared between threads at once; the
 * connections live long: an operation borrows an idle one from the store's
 * pool and gives it back (image_store_db_release, through _cleanup_db_), so
 * the run path pays no open, PRAGMAs and schema parse per call (issue 17).
 * WAL lets readers run beside a writer; writers use BEGIN IMMEDIATE and a busy
 * timeout, so two processes on one root serialise instead of failing.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "image/store.h"

#define DB_BUSY_TIMEOUT_MS 30000
#define STALE_SECONDS      (24 * 3600)
#define SCHEMA_VERSION     2 /* PRAGMA user_version written by the schema below */

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS images ("
    "  id TEXT PRIMARY KEY, manifest_digest TEXT, manifest_media_type TEXT,"
    "  config_media_type TEXT, created INTEGER NOT NULL, size INTEGER NOT NULL,"
    "  added INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS image_layers ("
    "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
    "  diff_id TEXT NOT NULL, chain_id TEXT NOT NULL, blob TEXT, media_type TEXT,"
    "  blob_size INTEGER NOT NULL, size INTEGER NOT NULL, tar_size INTEGER NOT NULL,"
    "  PRIMARY KEY (image_id, idx));"
    "CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);"
    "CREATE INDEX IF NOT EXISTS image_layers_blob ON image_layers(blob);"
    "CREATE TABLE IF NOT EXISTS tags ("
    "  ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);"
    "CREATE TABLE IF NOT EXISTS digests ("
    "  ref TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE);"
    "CREATE INDEX IF NOT EXISTS digests_image ON digests(image_id);"
    "CREATE TABLE IF NOT EXISTS layers ("
    "  chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, size INTEGER NOT NULL, tar_size INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshots ("
    "  id TEXT PRIMARY KEY, image_id TEXT, created INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS snapshots_image ON snapshots(image_id);"
    /* version 2: docker's image parent (commit, build steps); not a foreign key: a parent may be
     * removed before its children (it then reads as none) */
    "CREATE TABLE IF NOT EXISTS parents ("
    "  image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE, parent TEXT NOT NULL);"
    "PRAGMA user_version = 2;";

int image_store_db_error(sqlite3 *db, struct berth_error **err, const char *what)
{
	int code = sqlite3_extended_errcode(db);
	int e = (code & 0xff) == SQLITE_BUSY ? EBUSY : (code & 0xff) == SQLITE_FULL ? ENOSPC : EIO;
	return berth_error_msg(err, e, "%s: %s", what, sqlite3_errmsg(db));
}

int image_store_db_exec(sqlite3 *db, const char *sql, struct berth_error **err)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = berth_error_msg(err, EIO, "database: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

int image_store_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct berth_error **err)
{
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK)
		return image_store_db_error(db, err, "prepare statement");
	return 0;
}

int image_store_db_begin(sqlite3 *db, struct berth_error **err)
{
	return image_store_db_exec(db, "BEGIN IMMEDIATE", err);
}

int image_store_db_commit(sqlite3 *db, struct berth_error **err)
{
	return image_store_db_exec(db, "COMMIT", err);
}

void image_store_db_rollback(sqlite3 *db)
{
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * The pool: connections lent out are listed with their store, so the release
 * (which has only the connection) finds the pool to return to; a store that
 * is freed first disowns them (they are closed when given back).
 */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lent {
	sqlite3 *db;
	struct image_store *s;
} * lent;
static size_t n_lent, cap_lent;

static void lend_locked(struct image_store *s, sqlite3 *db)
{
	if (n_lent == cap_lent) {
		cap_lent = cap_lent ? cap_lent * 2 : 16;
		lent = xrealloc(lent, cap_lent * sizeof(*lent));
	}
	lent[n_lent++] = (struct lent){ db, s };
}

void image_store_db_release(sqlite3 *db)
{
	if (!db)
		return;
	bool clean = sqlite3_get_autocommit(db) && !sqlite3_next_stmt(db, NULL);
	pthread_mutex_lock(&pool_lock);
	struct image_store *s = NULL;
	for (size_t i = 0; i < n_lent; i++)
		if (lent[i].db == db) {
			s = lent[i].s;
			lent[i] = lent[--n_lent];
			break;
		}
	bool kept = clean && s && s->n_idle < ARRAY_SIZE(s->idle);
	if (kept)
		s->idle[s->n_idle++] = db;
	pthread_mutex_unlock(&pool_lock);
	if (!kept)
		sqlite3_close_v2(db);
}

int image_store_db_open(struct image_store *s, sqlite3 **ret, struct berth_error **err)
{
	pthread_mutex_lock(&pool_lock);
	sqlite3 *idle = s->n_idle ? s->idle[--s->n_idle] : NULL;
	if (idle)
		lend_locked(s, idle);
	pthread_mutex_unlock(&pool_lock);
	if (idle) {
		*ret = idle;
		return 0;
	}
	_cleanup_free_ char *path = xasprintf("%s/image.db", s->root);
	_cleanup_db_ sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		if (!db)
			return berth_error_msg(err, ENOMEM, "open database '%s'", path);
		return image_store_db_error(db, err, "open database");
	}
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	int r = image_store_db_exec(db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;", err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&pool_lock);
	lend_locked(s, db);
	pthread_mutex_unlock(&pool_lock);
	*ret = TAKE_PTR(db);
	return 0;
}

/*
 * Remove leftovers of crashed writers: ingest files and unpack directories
 * untouched for a day (a live writer keeps its file fresh; a day is far
 * beyond any single unpack).
 */
static void remove_stale(struct image_store *s, const char *sub)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", s->root, sub);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	time_t limit = time(NULL) - STALE_SECONDS;
	while (d && (de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    st.st_mtime > limit)
			continue;
		(void)fs_rm_rf_at(dirfd(d), de->d_name, NULL);
	}
}

static int schema_version(sqlite3 *db)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_prepare(db, "PRAGMA user_version", &st, NULL) < 0 ||
	    sqlite3_step(st) != SQLITE_ROW)
		return -1;
	return sqlite3_column_int(st, 0);
}

static int store_init(struct image_store *s, struct berth_error **err)
{
	static const char *const dirs[] = { "content/blobs/sha256", "content/ingest", "snapshots", "tmp" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", s->root, dirs[i]);
		int r = fs_mkdir_p(p, 0700, err);
		if (r < 0)
			return r;
	}
	_cleanup_db_ sqlite3 *db = NULL;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	/* An initialised store needs no write: readers and writers of other processes are not held up. */
	if (schema_version(db) == SCHEMA_VERSION) {
		remove_stale(s, "content/ingest");
		remove_stale(s, "tmp");
		return 0;
	}
	/* journal_mode needs no transaction; schema creation is idempotent. */
	r = image_store_db_exec(db, "PRAGMA journal_mode = WAL;", err);
	if (r < 0)
		return r;
	r = image_store_db_begin(db, err);
	if (r < 0)
		return r;
	r = image_store_db_exec(db, schema, err);
	if (r < 0) {
		image_store_db_rollback(db);
		return r;
	}
	r = image_store_db_commit(db, err);
	if (r >= 0) {
		remove_stale(s, "content/ingest");
		remove_stale(s, "tmp");
	}
	return r;
}

int image_store_open(const char *root, struct image_store **ret, struct berth_error **err)
{
	if (!root || !*root)
		return berth_error_msg(err, EINVAL, "image store root must not be empty");
	int r = fs_mkdir_p(root, 0700, err);
	if (r < 0)
		return berth_error_wrap(err, r, "open image store '%s'", root);
	_cleanup_free_ char *db = xasprintf("%s/image.db", root);
	if ((r = fs_private_db(db, err)) < 0)
		return berth_error_wrap(err, r, "open image store '%s'", root);
	struct image_store *s = xcalloc(1, sizeof(*s));
	s->root = xstrdup(root);
	r = store_init(s, err);
	if (r >= 0)
		r = image_store_db_open(s, &s->keeper, err);
	if (r >= 0) /* a read maps the WAL index; the connection then keeps it */
		r = schema_version(s->keeper) == SCHEMA_VERSION
			? 0
			: berth_error_msg(err, EIO, "read database: %s", sqlite3_errmsg(s->keeper));
	if (r < 0) {
		image_store_free(s);
		return berth_error_wrap(err, r, "open image store '%s'", root);
	}
	*ret = s;
	return 0;
}

struct image_store *image_store_free(struct image_store *s)
{
	if (!s)
		return NULL;
	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < n_lent; i++)
		if (lent[i].s == s)
			lent[i].s = NULL; /* closed when given back */
	pthread_mutex_unlock(&pool_lock);
	for (size_t i = 0; i < s->n_idle; i++)
		sqlite3_close_v2(s->idle[i]);
	if (s->keeper)
		image_store_db_release(s->keeper);
	free(s->root);
	free(s);
	return NULL;
}

const char *image_store_root(const struct image_store *s)
{
	return s->root;
}

char *image_store_snapshot_dir(struct image_store *s, const char *id)
{
	const char *colon = strchr(id, ':');
	return xasprintf("%s/snapshots/%s", s->root, colon ? colon + 1 : id);
}

void image_store_chain_id(const char *parent_chain, const char *diff_id, char out[DIGEST_STRING_MAX])
{
	if (!parent_chain || !*parent_chain) {
		memcpy(out, diff_id, strlen(diff_id) + 1);
		return;
	}
	_cleanup_free_ char *s = xasprintf("%s %s", parent_chain, diff_id);
	digest_buffer(DIGEST_SHA256, s, strlen(s), out);
}

void image_store_image_done(struct store_image *img)
{
	free(img->manifest_digest);
	free(img->manifest_media_type);
	free(img->config_media_type);
	for (size_t i = 0; i < img->n_layers; i++)
		free(img->layers[i].media_type);
	free(img->layers);
	memset(img, 0, sizeof(*img));
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, struct berth_error **err, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return image_store_db_error(db, err, what);
	return 0;
}

static int put_layers(sqlite3 *db, const struct store_image *img, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *del = NULL, *ins = NULL;
	int r = image_store_db_prepare(db, "DELETE FROM image_layers WHERE image_id = ?", &del, err);
	if (r < 0)
		return r;
	bind_text(del, 1, img->id);
	r = step_done(db, del, err, "delete layers");
	if (r < 0)
		return r;
	r = image_store_db_prepare(
	    db,
	    "INSERT INTO image_layers (image_id, idx, diff_id, chain_id, blob, media_type,"
	    " blob_size, size, tar_size) VALUES (?,?,?,?,?,?,?,?,?)",
	    &ins, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct store_layer *l = &img->layers[i];
		sqlite3_reset(ins);
		bind_text(ins, 1, img->id);
		sqlite3_bind_int64(ins, 2, (int64_t)i);
		bind_text(ins, 3, l->diff_id);
		bind_text(ins, 4, l->chain_id);
		bind_text(ins, 5, l->blob[0] ? l->blob : NULL);
		bind_text(ins, 6, l->media_type);
		sqlite3_bind_int64(ins, 7, (int64_t)l->blob_size);
		sqlite3_bind_int64(ins, 8, (int64_t)l->size);
		sqlite3_bind_int64(ins, 9, (int64_t)l->tar_size);
		r = step_done(db, ins, err, "insert layer");
		if (r < 0)
			return r;
	}
	return 0;
}

/* The image's parent (an image put again without one keeps the parent it had). */
static int put_parent(sqlite3 *db, const struct store_image *img, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(db, "INSERT OR REPLACE INTO parents (image_id, parent) VALUES (?, ?)",
				       &st, err);
	if (r < 0)
		return r;
	bind_text(st, 1, img->id);
	bind_text(st, 2, img->parent);
	return step_done(db, st, err, "insert image parent");
}

int image_store_image_put(sqlite3 *db, const struct store_image *img, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(
	    db,
	    "INSERT INTO images (id, manifest_digest, manifest_media_type, config_media_type,"
	    " created, size, added) VALUES (?,?,?,?,?,?,strftime('%s','now'))"
	    " ON CONFLICT(id) DO UPDATE SET"
	    " manifest_digest = coalesce(excluded.manifest_digest, manifest_digest),"
	    " manifest_media_type = coalesce(excluded.manifest_media_type, manifest_media_type)",
	    &st, err);
	if (r < 0)
		return r;
	bind_text(st, 1, img->id);
	bind_text(st, 2, img->manifest_digest);
	bind_text(st, 3, img->manifest_media_type);
	bind_text(st, 4, img->config_media_type);
	sqlite3_bind_int64(st, 5, img->created);
	sqlite3_bind_int64(st, 6, (int64_t)img->size);
	r = step_done(db, st, err, "insert image");
	if (r >= 0 && img->parent[0])
		r = put_parent(db, img, err);
	if (r < 0)
		return r;
	return put_layers(db, img, err);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? xstrdup((const char *)t) : NULL;
}

static void col_copy(sqlite3_stmt *st, int i, char out[DIGEST_STRING_MAX])
{
	const unsigned char *t = sqlite3_column_text(st, i);
	size_t n = t ? strlen((const char *)t) : 0;
	if (n >= DIGEST_STRING_MAX)
		n = 0;
	memcpy(out, t ? (const char *)t : "", n);
	out[n] = '\0';
}

int image_store_parent_get(sqlite3 *db, const char *id, char out[DIGEST_STRING_MAX])
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	out[0] = '\0';
	if (image_store_db_prepare(db,
				   "SELECT p.parent FROM parents p JOIN images i ON i.id = p.parent"
				   " WHERE p.image_id = ?",
				   &st, NULL) < 0)
		return -EIO;
	bind_text(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW)
		return 0;
	col_copy(st, 0, out);
	return 0;
}

static int get_layers(sqlite3 *db, struct store_image *img, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(
	    db,
	    "SELECT diff_id, chain_id, blob, media_type, blob_size, size, tar_size FROM image_layers"
	    " WHERE image_id = ? ORDER BY idx",
	    &st, err);
	if (r < 0)
		return r;
	bind_text(st, 1, img->id);
	size_t alloc = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (img->n_layers == alloc) {
			alloc = alloc ? alloc * 2 : 8;
			img->layers = xrealloc(img->layers, alloc * sizeof(*img->layers));
		}
		struct store_layer *l = &img->layers[img->n_layers++];
		memset(l, 0, sizeof(*l));
		col_copy(st, 0, l->diff_id);
		col_copy(st, 1, l->chain_id);
		col_copy(st, 2, l->blob);
		l->media_type = col_dup(st, 3);
		l->blob_size = (uint64_t)sqlite3_column_int64(st, 4);
		l->size = (uint64_t)sqlite3_column_int64(st, 5);
		l->tar_size = (uint64_t)sqlite3_column_int64(st, 6);
	}
	if (rc != SQLITE_DONE)
		return image_store_db_error(db, err, "read layers");
	return 0;
}

int image_store_image_get(sqlite3 *db, const char *id, struct store_image *ret, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(
	    db,
	    "SELECT manifest_digest, manifest_media_type, config_media_type, created, size"
	    " FROM images WHERE id = ?",
	    &st, err);
	if (r < 0)
		return r;
	bind_text(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return berth_error_msg(err, ENOENT, "no such image: '%s'", id);
	if (rc != SQLITE_ROW)
		return image_store_db_error(db, err, "read image");
	struct store_image img = { 0 };
	snprintf(img.id, sizeof(img.id), "%s", id);
	img.manifest_digest = col_dup(st, 0);
	img.manifest_media_type = col_dup(st, 1);
	img.config_media_type = col_dup(st, 2);
	img.created = sqlite3_column_int64(st, 3);
	img.size = (uint64_t)sqlite3_column_int64(st, 4);
	r = get_layers(db, &img, err);
	if (r < 0) {
		image_store_image_done(&img);
		return r;
	}
	*ret = img;
	return 0;
}

static int put_ref(sqlite3 *db, const char *table, const char *ref, const char *id, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *sql = xasprintf("INSERT INTO %s (ref, image_id) VALUES (?, ?)"
					     " ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id",
					     table);
	int r = image_store_db_prepare(db, sql, &st, err);
	if (r < 0)
		return r;
	bind_text(st, 1, ref);
	bind_text(st, 2, id);
	return step_done(db, st, err, "store tag");
}

int image_store_tag_put(sqlite3 *db, const char *ref, const char *id, struct berth_error **err)
{
	return put_ref(db, "tags", ref, id, err);
}

int image_store_digest_put(sqlite3 *db, const char *ref, const char *id, struct berth_error **err)
{
	return put_ref(db, "digests", ref, id, err);
}

int image_store_layer_get(sqlite3 *db, const char *chain_id, uint64_t *ret_size, uint64_t *ret_tar_size)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_prepare(db, "SELECT size, tar_size FROM layers WHERE chain_id = ?", &st, NULL) < 0)
		return 0;
	bind_text(st, 1, chain_id);
	if (sqlite3_step(st) != SQLITE_ROW)
		return 0;
	if (ret_size)
		*ret_size = (uint64_t)sqlite3_column_int64(st, 0);
	if (ret_tar_size)
		*ret_tar_size = (uint64_t)sqlite3_column_int64(st, 1);
	return 1;
}

int image_store_layer_put(sqlite3 *db, const char *chain_id, const char *diff_id, uint64_t size,
			  uint64_t tar_size, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(
	    db, "INSERT OR IGNORE INTO layers (chain_id, diff_id, size, tar_size) VALUES (?,?,?,?)", &st,
	    err);
	if (r < 0)
		return r;
	bind_text(st, 1, chain_id);
	bind_text(st, 2, diff_id);
	sqlite3_bind_int64(st, 3, (int64_t)size);
	sqlite3_bind_int64(st, 4, (int64_t)tar_size);
	return step_done(db, st, err, "store layer");
}
