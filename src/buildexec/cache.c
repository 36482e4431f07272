/*
 * cache.c - the build cache: plan key -> image ID in <root>/builder/cache.db
 * (SQLite, WAL). Entries whose image is gone are misses (and forgotten).
 * One connection per root for the life of the process, shared by its builds
 * (serialized mode): opening it per build made every cached rebuild create
 * and, at the close, checkpoint and delete the WAL and its index.
 */
#include <sqlite3.h>
#include <time.h>

#include "buildexec/internal.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"

static void db_closep(sqlite3 **db)
{
	if (*db)
		sqlite3_close_v2(*db);
}
static void st_finalizep(sqlite3_stmt **st)
{
	if (*st)
		sqlite3_finalize(*st);
}

static int db_fail(sqlite3 *db, struct berth_error **err, const char *what)
{
	return berth_error_msg(err, EIO, "build cache: %s: %s", what,
			       db ? sqlite3_errmsg(db) : "out of memory");
}

static int db_open(const char *root, sqlite3 **ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/builder", root);
	int r = fs_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = xasprintf("%s/cache.db", dir);
	if ((r = fs_private_db(path, err)) < 0)
		return r;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK) {
		r = db_fail(db, err, "open");
		sqlite3_close_v2(db);
		return r;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL;"
			 "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, image TEXT NOT NULL, "
			 "created INTEGER NOT NULL)",
			 NULL, NULL, NULL) != SQLITE_OK) {
		r = db_fail(db, err, "create table");
		sqlite3_close_v2(db);
		return r;
	}
	*ret = db;
	return 0;
}

static int exec1(sqlite3 *db, const char *sql, const char *a, const char *b, struct berth_error **err)
{
	_cleanup_(st_finalizep) sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(db, err, "prepare");
	sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(db, err, "write");
	return 0;
}

/* The process's connections, one per root, never closed (a daemon has one root). */
struct shared_db {
	struct shared_db *next;
	char *root;
	sqlite3 *db;
};
static struct shared_db *shared;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

/* The root's connection: opened on first use, shared by every build's threads (SQLITE_OPEN_FULLMUTEX). */
static int build_db(struct buildexec *b, sqlite3 **ret, struct berth_error **err)
{
	pthread_mutex_lock(&shared_lock);
	struct shared_db *s = shared;
	while (s && !streq(s->root, b->root))
		s = s->next;
	int r = 0;
	if (!s) {
		sqlite3 *db = NULL;
		if ((r = db_open(b->root, &db, err)) >= 0) {
			s = xcalloc(1, sizeof(*s));
			s->root = xstrdup(b->root);
			s->db = db;
			s->next = shared;
			shared = s;
		}
	}
	pthread_mutex_unlock(&shared_lock);
	if (r < 0)
		return r;
	*ret = s->db;
	return 0;
}

void buildexec_done(struct buildexec *b)
{
	buildexec_sources_free(b); /* the cache's connection is the process's, kept open */
}

int buildexec_cache_get(struct buildexec *b, const char *key, char **ret_image, struct berth_error **err)
{
	sqlite3 *db = NULL;
	int r = build_db(b, &db, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *image = NULL;
	{
		_cleanup_(st_finalizep) sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, "SELECT image FROM cache WHERE key = ?", -1, &st, NULL) !=
		    SQLITE_OK)
			return db_fail(db, err, "prepare");
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return db_fail(db, err, "read");
		image = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	_cleanup_free_ char *id = NULL;
	if (streq(image, BX_SCRATCH)) {
		*ret_image = TAKE_PTR(image);
		return 1;
	}
	if (image_resolve(b->images, image, &id, NULL) < 0) {
		(void)exec1(db, "DELETE FROM cache WHERE key = ?", key, NULL, NULL);
		return 0;
	}
	*ret_image = TAKE_PTR(id);
	return 1;
}

int buildexec_cache_put(struct buildexec *b, const char *key, const char *image, struct berth_error **err)
{
	sqlite3 *db = NULL;
	int r = build_db(b, &db, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *sql = xasprintf(
	    "INSERT OR REPLACE INTO cache (key, image, created) VALUES (?, ?, %lld)", (long long)time(NULL));
	return exec1(db, sql, key, image, err);
}

static int list_images(sqlite3 *db, json_t *out, struct berth_error **err)
{
	_cleanup_(st_finalizep) sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT DISTINCT image FROM cache WHERE key NOT LIKE 'commit:%'", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(db, err, "prepare");
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		json_array_append_new(out, json_string((const char *)sqlite3_column_text(st, 0)));
	return rc == SQLITE_DONE ? 0 : db_fail(db, err, "read");
}

int buildexec_prune(struct image_store *images, const char *root, json_t **ret, struct berth_error **err)
{
	_cleanup_(db_closep) sqlite3 *db = NULL;
	int r = db_open(root, &db, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *ids = json_array();
	if ((r = list_images(db, ids, err)) < 0)
		return r;
	if (sqlite3_exec(db, "DELETE FROM cache", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(db, err, "delete");
	json_t *deleted = json_array();
	size_t i;
	json_t *v;
	json_array_foreach (ids, i, v) {
		const char *id = json_string_value(v);
		_cleanup_free_ char *full = NULL;
		if (streq(id, BX_SCRATCH) || image_resolve(images, id, &full, NULL) < 0)
			continue;
		/* tagged (a build's result): kept */
		_cleanup_json_ json_t *info = NULL;
		if (image_inspect(images, id, &info, NULL) < 0 ||
		    json_array_size(json_object_get(info, "RepoTags")) > 0)
			continue;
		if (image_remove(images, id, IMAGE_REMOVE_DEFAULT, NULL, NULL, NULL, NULL) >= 0)
			json_array_append_new(deleted, json_string(id));
	}
	_cleanup_free_ char *mounts = xasprintf("%s/builder/mounts", root);
	(void)fs_rm_rf(mounts, NULL);
	if (ret)
		*ret = json_pack("{s:o, s:i}", "CachesDeleted", deleted, "SpaceReclaimed", 0);
	else
		json_decref(deleted);
	return 0;
}
