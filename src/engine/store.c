/*
 * store.c - the engine's SQLite state (WAL): containers as JSON documents,
 * an append-only event log, and the built-in image store's tables.
 *
 * One connection, used under e->lock (SQLITE_OPEN_FULLMUTEX as a second
 * guard). A container row is rewritten whole on every state change: rows
 * are small and writes are rare next to container start cost.
 */
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "engine/internal.h"

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    /* a removed container's config (its Env: secrets) is zeroed, not left in free pages */
    "PRAGMA secure_delete=ON;"
    "CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, name TEXT UNIQUE, doc TEXT);"
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ns INTEGER, doc TEXT);";

/* Events kept in the log; older ones are trimmed on open. */
#define STORE_MAX_EVENTS 10000

int engine_store_open(struct engine *e, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("%s/berth.db", e->root);
	int r0 = fs_private_db(path, err);
	if (r0 < 0)
		return r0;
	int rc = sqlite3_open_v2(path, &e->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK)
		return berth_error_msg(err, EIO, "open database '%s': %s", path, sqlite3_errstr(rc));
	sqlite3_busy_timeout(e->db, 5000);
	char *msg = NULL;
	rc = sqlite3_exec(e->db, schema, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		int r = berth_error_msg(err, EIO, "initialise database '%s': %s", path, msg ? msg : "?");
		sqlite3_free(msg);
		return r;
	}
	_cleanup_free_ char *trim = xasprintf(
	    "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - %d;", STORE_MAX_EVENTS);
	sqlite3_exec(e->db, trim, NULL, NULL, NULL);
	return 0;
}

void engine_store_begin(struct engine *e)
{
	if (sqlite3_get_autocommit(e->db))
		sqlite3_exec(e->db, "BEGIN", NULL, NULL, NULL);
}

int engine_store_commit(struct engine *e)
{
	if (sqlite3_get_autocommit(e->db)) /* none open, or a failed statement rolled it back */
		return 0;
	if (sqlite3_exec(e->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	sqlite3_exec(e->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

void engine_store_close(struct engine *e)
{
	if (e->db)
		sqlite3_close(e->db);
	e->db = NULL;
}

/* SQLite's result as -errno with its message: SQLITE_FULL is ENOSPC, BUSY/LOCKED EAGAIN, others EIO. */
static int store_error(struct engine *e, int rc, struct berth_error **err, const char *what, const char *id)
{
	int code = (rc & 0xff) == SQLITE_FULL                                   ? ENOSPC
		   : (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? EAGAIN
										: EIO;
	return berth_error_msg(err, code, "%s '%.12s': %s", what, id, sqlite3_errmsg(e->db));
}

int engine_store_save(struct engine *e, const struct container *c, struct berth_error **err)
{
	_cleanup_json_ json_t *j = engine_container_to_json(c);
	_cleanup_free_ char *doc = json_dumps(j, JSON_COMPACT);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
	    e->db, "INSERT OR REPLACE INTO containers (id, name, doc) VALUES (?, ?, ?)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, doc, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_error(e, rc, err, "save container", c->id);
}

int engine_store_delete(struct engine *e, const char *id, bool scrub, struct berth_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(e->db, "DELETE FROM containers WHERE id = ?", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_error(e, rc, err, "delete container", id);
	/* secure_delete zeroed the row in the database's pages; the WAL still holds the frames
	 * that wrote it until it is checkpointed and truncated */
	if (scrub)
		sqlite3_exec(e->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	return 0;
}

int engine_store_load(struct engine *e, struct berth_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(e->db, "SELECT doc FROM containers", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return berth_error_msg(err, EIO, "load containers: %s", sqlite3_errmsg(e->db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *doc = (const char *)sqlite3_column_text(st, 0);
		json_t *j = doc ? json_loads(doc, 0, NULL) : NULL;
		struct container *c = j ? engine_container_from_json(j) : NULL;
		json_decref(j);
		if (c)
			engine_container_table_add(e, c);
	}
	sqlite3_finalize(st);
	return 0;
}

void engine_store_event(struct engine *e, const char *type, const char *action, const char *id,
			const json_t *attributes)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	_cleanup_json_ json_t *ev = json_pack(
	    "{s:s,s:s,s:s,s:{s:s,s:o},s:s,s:I,s:I}", "Type", type, "Action", action, "id", id, "Actor", "ID",
	    id, "Attributes", attributes ? json_deep_copy(attributes) : json_object(), "scope", "local",
	    "time", (json_int_t)ts.tv_sec, "timeNano", (json_int_t)ns);
	if (streq(type, "container")) {
		json_object_set_new(ev, "status", json_string(action));
		json_t *img = attributes ? json_object_get(attributes, "image") : NULL;
		if (img)
			json_object_set(ev, "from", img);
	}
	_cleanup_free_ char *doc = json_dumps(ev, JSON_COMPACT);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(e->db, "INSERT INTO events (time_ns, doc) VALUES (?, ?)", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, ns);
		sqlite3_bind_text(st, 2, doc, -1, SQLITE_STATIC);
		sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (++e->event_seq % 1000 == 0) {
		_cleanup_free_ char *trim = xasprintf(
		    "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - %d;", STORE_MAX_EVENTS);
		sqlite3_exec(e->db, trim, NULL, NULL, NULL);
	}
	pthread_cond_broadcast(&e->cond);
}

int engine_store_events_since(struct engine *e, int64_t since_ns, int64_t after_rowid, json_t **ret_list,
			      int64_t *ret_last_rowid)
{
	sqlite3_stmt *st = NULL;
	json_t *list = json_array();
	int64_t last = after_rowid;
	if (sqlite3_prepare_v2(e->db,
			       "SELECT seq, doc FROM events WHERE seq > ? AND time_ns >= ? ORDER BY seq", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, after_rowid);
		sqlite3_bind_int64(st, 2, since_ns);
		while (sqlite3_step(st) == SQLITE_ROW) {
			last = sqlite3_column_int64(st, 0);
			const char *doc = (const char *)sqlite3_column_text(st, 1);
			json_t *j = doc ? json_loads(doc, 0, NULL) : NULL;
			if (j)
				json_array_append_new(list, j);
		}
	}
	sqlite3_finalize(st);
	*ret_list = list;
	*ret_last_rowid = last;
	return 0;
}
