/*
 * sqlite.c - the embedded store backend: one SQLite database (WAL,
 * synchronous=FULL: every acknowledged write survives a power loss) with
 * group commit; three connections: the writer's, the readers' (read-only)
 * and the checkpointer's.
 *
 * Writers do not commit themselves: they queue their request and wait; one
 * writer thread takes every queued request, runs them in one transaction
 * (each inside a savepoint, so one failing request does not undo the others),
 * commits once (one fsync for the whole batch) and wakes the writers of
 * that batch (each waits on its own condition variable: a broadcast woke
 * every queued writer, those of the next batch too, at each commit). Under
 * load that turns N fsyncs into one; alone, a write costs one commit as
 * before. The same thread expires leases: it sleeps on its condition variable
 * until the earliest lease deadline or the next request.
 *
 * Every value is written once. The `log` table holds each key's versions in
 * revision order (id = revision << SEQ_BITS | position in the transaction:
 * appends, so a batch dirties few pages), and `keys` maps a key to its
 * current version (a small row: key, version id, create revision, lease).
 * A read joins the two; a watch reads the log from a revision, each event
 * with its value as of that revision. Compaction (every SQLITE_EVENTS_KEEP
 * revisions) deletes the versions superseded before the last
 * SQLITE_EVENTS_KEEP revisions (each version names the one it replaced) and
 * the deletes, never a key's current version; a watch from before that gets
 * -ERANGE. The first schema stored each value twice (a kv table and the
 * events history): a 1-2 KB task record was two overflowing B-tree cells at
 * random places, about 35 KB of WAL and checkpoint writes per placement.
 * store_sqlite_open() migrates such a file in one transaction.
 *
 * Readers see committed state only: the revision and the compaction point
 * they are told move when the batch's commit succeeded (s->committed,
 * s->compacted), never the writer's running s->revision; a failed commit
 * puts the writer's back, and the next batch reuses its revisions.
 *
 * Reads (get, range, watch) go through a second, read-only connection: in WAL
 * mode a reader sees the last committed state and does not wait while the
 * writer holds its connection for a batch and its commit (the fsync). They
 * used to share the one connection, so every read - the RunTask handler's,
 * the scheduler cache's catch-up under its lock - waited out each commit, and
 * the writer, taking its mutex again at once, got most of them: concurrent
 * RunTask calls shared few commits. Readers see committed state only, so the
 * revision they report is the committed one (s->committed, moved after the
 * commit), never the writer's running s->revision.
 *
 * Leases: the table records which leases exist and their TTL (durable, one
 * commit per grant and revoke); their deadlines live in memory, so a
 * keepalive - one per node heartbeat, the commonest request of a cluster -
 * is a lookup under a mutex, not a commit and an fsync, and wakes no
 * watcher. At open every lease gets a full TTL from now, as etcd renews its
 * leases when a leader takes over: a holder that is still alive keeps its
 * keys through a restart of the store.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/process.h"
#include "store/store.h"

#define SQLITE_EVENTS_KEEP 10000
/* Low bits of a log id: an operation's position in its transaction (the SQL below says 20 too). */
#define SEQ_BITS           20
#define SEQ_MAX            ((int64_t)1 << SEQ_BITS)
#define LOG_ID(rev, seq)   ((int64_t)(rev) << SEQ_BITS | (int64_t)(seq))
/* Schema version (PRAGMA user_version): 0 the first (kv + events), 2 log + keys. */
#define SCHEMA_VERSION     2

enum wreq_kind { WREQ_TXN, WREQ_GRANT, WREQ_REVOKE };

struct wreq {
	enum wreq_kind kind;
	const struct store_cmp *cmps;
	size_t n_cmps;
	const struct store_op *ops;
	size_t n_ops;
	int64_t lease, ttl;
	/* results */
	bool ok, done;
	pthread_cond_t woken; /* its own: a commit wakes the writers of its batch, not every waiting one */
	int64_t revision;
	int rc;
	struct berth_error *err;
	struct wreq *next;
};

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t db_lock; /* the connection */
	sqlite3_stmt *st_get;    /* kv_read's, prepared once (under db_lock, like every use) */
	struct cached_stmt {
		const char *sql; /* by address: one per call site */
		sqlite3_stmt *st;
	} cache[16];             /* the writer's statements, prepared once (under db_lock) */
	sqlite3 *rdb;            /* the readers' connection (read-only) */
	pthread_mutex_t rd_lock; /* rdb, st_rget and st_events */
	sqlite3_stmt *st_rget;
	sqlite3_stmt
	    *st_events;       /* read_events', prepared once (the scheduler's catch-up runs it per RunTask) */
	pthread_mutex_t lock; /* queue, revision, stop */
	pthread_cond_t wake;  /* writer: work or stop */
	pthread_cond_t changed; /* watchers: the revision moved */
	struct wreq *head, **tail;
	int64_t revision, compact_revision; /* the writer's (db_lock) */
	int64_t committed, compacted;       /* what readers see (under lock): moved after a commit */
	bool stop, started;
	pthread_t thread;
	/* checkpoints, off the writer's path (see checkpoint_thread) */
	sqlite3 *cdb;
	pthread_t ckpt_thread;
	pthread_cond_t ckpt_wake; /* under lock */
	bool ckpt_due, ckpt_started;
	/* lease deadlines, sorted by id (ids only grow, so a grant appends) */
	pthread_mutex_t lease_lock;
	struct lease_clock {
		int64_t id, ttl, expires; /* expires: wall-clock ms */
	} * leases;
	size_t n_leases;
	/* lease changes of the running batch, applied to the clocks once it commits */
	struct lease_change {
		int64_t id, ttl; /* ttl 0: the lease is gone */
	} * changes;
	size_t n_changes;
};

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The clock of lease id, or NULL; the caller holds lease_lock. */
static struct lease_clock *clock_find(struct sqlite_store *s, int64_t id)
{
	size_t lo = 0, hi = s->n_leases;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->leases[mid].id == id)
			return &s->leases[mid];
		if (s->leases[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Add (ttl > 0, deadline a full TTL from now) or remove (ttl 0) the clock of a lease. */
static void clock_set(struct sqlite_store *s, int64_t id, int64_t ttl)
{
	pthread_mutex_lock(&s->lease_lock);
	struct lease_clock *c = clock_find(s, id);
	if (ttl > 0 && !c) {
		size_t at = s->n_leases;
		while (at > 0 && s->leases[at - 1].id > id)
			at--;
		s->leases = xrealloc(s->leases, (s->n_leases + 1) * sizeof(*s->leases));
		memmove(&s->leases[at + 1], &s->leases[at], (s->n_leases - at) * sizeof(*s->leases));
		s->n_leases++;
		c = &s->leases[at];
	}
	if (ttl > 0) {
		*c = (struct lease_clock){ id, ttl, wall_ms() + ttl * 1000 };
	} else if (c) {
		size_t at = (size_t)(c - s->leases);
		memmove(c, c + 1, (s->n_leases - at - 1) * sizeof(*s->leases));
		s->n_leases--;
	}
	pthread_mutex_unlock(&s->lease_lock);
}

/* Note a lease change of the running batch (the writer thread holds db_lock). */
static void change_note(struct sqlite_store *s, int64_t id, int64_t ttl)
{
	s->changes = xrealloc(s->changes, (s->n_changes + 1) * sizeof(*s->changes));
	s->changes[s->n_changes++] = (struct lease_change){ id, ttl };
}

static int db_fail(struct sqlite_store *s, struct berth_error **err, const char *what)
{
	return berth_error_msg(err, EIO, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int db_exec(struct sqlite_store *s, const char *sql, struct berth_error **err)
{
	char *msg = NULL;
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int r = berth_error_msg(err, EIO, "store: '%s': %s", sql, msg ? msg : "error");
		sqlite3_free(msg);
		return r;
	}
	return 0;
}

static sqlite3_stmt *prep_on(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	return st;
}

static sqlite3_stmt *prep(struct sqlite_store *s, const char *sql)
{
	return prep_on(s->db, sql);
}

static void finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

/*
 * A statement of the writer's connection prepared once per call site (sql
 * is a string literal, told apart by its address), db_lock held. The
 * writer runs a few statements per key and a savepoint per request: parsing
 * them each time took a fifth of its time. Reset by _cleanup_reset_.
 */
static sqlite3_stmt *cached(struct sqlite_store *s, const char *sql)
{
	size_t i;
	for (i = 0; i < ARRAY_SIZE(s->cache) && s->cache[i].sql; i++)
		if (s->cache[i].sql == sql)
			return s->cache[i].st;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return NULL;
	if (i < ARRAY_SIZE(s->cache))
		s->cache[i] = (struct cached_stmt){ sql, st };
	else
		abort(); /* more call sites than slots: a programming error */
	return st;
}

static void resetp(sqlite3_stmt **st)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
}
#define _cleanup_reset_ _cleanup_(resetp)

/* Run a cached statement without results (SAVEPOINT, RELEASE...). */
static int run_cached(struct sqlite_store *s, const char *sql)
{
	_cleanup_reset_ sqlite3_stmt *st = cached(s, sql);
	return st && sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
}

/*
 * The store's revision: every revision wrote at least one log row, and the
 * newest revision's rows are never compacted, so it is the newest log id's
 * (no row to rewrite per commit). A first-schema store kept it in meta,
 * which still counts after its migration.
 */
static const char REVISION_SQL[] = "SELECT max(coalesce((SELECT max(id) >> 20 FROM log), 0),"
				   " coalesce((SELECT value FROM meta WHERE name = 'revision'), 0))";

static int64_t meta_get(struct sqlite_store *s, const char *name)
{
	_cleanup_stmt_ sqlite3_stmt *st = prep(s, "SELECT value FROM meta WHERE name = ?");
	if (!st)
		return 0;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

static int meta_set(struct sqlite_store *s, const char *name, int64_t v)
{
	_cleanup_reset_ sqlite3_stmt *st =
	    cached(s, "INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
}

static void row_to_kv(sqlite3_stmt *st, int col, struct store_kv *kv)
{
	/* columns: key, value, create_rev, mod_rev, lease */
	const char *k = (const char *)sqlite3_column_text(st, col);
	const void *v = sqlite3_column_blob(st, col + 1);
	size_t n = (size_t)sqlite3_column_bytes(st, col + 1);
	kv->key = xstrdup(k ? k : "");
	kv->value = xmalloc(n + 1);
	if (n)
		memcpy(kv->value, v, n);
	kv->value[n] = '\0';
	kv->value_len = n;
	kv->create_revision = sqlite3_column_int64(st, col + 2);
	kv->mod_revision = sqlite3_column_int64(st, col + 3);
	kv->lease = sqlite3_column_int64(st, col + 4);
}

/*
 * Read one key on db with its lock held (the writer's: db_lock, st_get; the
 * readers': rd_lock, st_rget). 1 found, 0 absent. The statement is prepared
 * once: a heartbeat reads three keys, and preparing (parsing the SQL) cost
 * more than the lookup.
 */
static int kv_read_on(sqlite3 *db, sqlite3_stmt **slot, const char *key, struct store_kv *ret)
{
	if (!*slot)
		*slot = prep_on(db, "SELECT k.key, l.value, k.create_rev, k.id >> 20, k.lease FROM keys k "
				    "JOIN log l ON l.id = k.id WHERE k.key = ?");
	sqlite3_stmt *st = *slot;
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st), found = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
	if (found > 0 && ret)
		row_to_kv(st, 0, ret);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return found;
}

static int kv_read(struct sqlite_store *s, const char *key, struct store_kv *ret)
{
	return kv_read_on(s->db, &s->st_get, key, ret);
}

static int log_add(struct sqlite_store *s, int64_t rev, int seq, int type, const char *key, const char *value,
		   size_t len, int64_t create_rev, int64_t lease, int64_t prev)
{
	_cleanup_reset_ sqlite3_stmt *st = cached(
	    s, "INSERT INTO log(id, type, key, value, create_rev, lease, prev) VALUES (?,?,?,?,?,?,?)");
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, LOG_ID(rev, seq));
	sqlite3_bind_int(st, 2, type);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
	if (type == STORE_EVENT_PUT)
		sqlite3_bind_blob(st, 4, value ? value : "", (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, create_rev);
	sqlite3_bind_int64(st, 6, lease);
	sqlite3_bind_int64(st, 7, prev);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
}

/* A key's current version: 1 found (*create, *id set), 0 absent. */
static int key_find(struct sqlite_store *s, const char *key, int64_t *create, int64_t *id)
{
	_cleanup_reset_ sqlite3_stmt *q = cached(s, "SELECT create_rev, id FROM keys WHERE key = ?");
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*create = sqlite3_column_int64(q, 0);
		*id = sqlite3_column_int64(q, 1);
		return 1;
	}
	return rc == SQLITE_DONE ? 0 : -EIO;
}

static int apply_put(struct sqlite_store *s, const struct store_op *op, int64_t rev, int seq)
{
	int64_t create = rev, prev = 0;
	if (key_find(s, op->key, &create, &prev) < 0)
		return -EIO;
	if (log_add(s, rev, seq, STORE_EVENT_PUT, op->key, op->value, op->value_len, create, op->lease,
		    prev) < 0)
		return -EIO;
	_cleanup_reset_ sqlite3_stmt *st =
	    cached(s, "INSERT OR REPLACE INTO keys(key, id, create_rev, lease) VALUES (?,?,?,?)");
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, LOG_ID(rev, seq));
	sqlite3_bind_int64(st, 3, create);
	sqlite3_bind_int64(st, 4, op->lease);
	return sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
}

/* 1 deleted, 0 absent. */
static int apply_delete(struct sqlite_store *s, const char *key, int64_t rev, int seq)
{
	int64_t prev = 0;
	{
		_cleanup_reset_ sqlite3_stmt *st = cached(s, "DELETE FROM keys WHERE key = ? RETURNING id");
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW)
			return -EIO;
		prev = sqlite3_column_int64(st, 0);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -EIO;
	}
	int r = log_add(s, rev, seq, STORE_EVENT_DELETE, key, NULL, 0, 0, 0, prev);
	return r < 0 ? r : 1;
}

static bool cmp_holds(const struct store_cmp *c, const struct store_kv *kv, bool found)
{
	int d;
	if (c->target == STORE_CMP_VALUE) {
		if (!found)
			return false;
		size_t n = MIN(kv->value_len, c->value_len);
		d = memcmp(kv->value, c->value, n);
		if (d == 0)
			d = kv->value_len < c->value_len ? -1 : kv->value_len > c->value_len;
	} else {
		int64_t have = !found                       ? 0
			       : c->target == STORE_CMP_MOD ? kv->mod_revision
							    : kv->create_revision;
		d = have < c->revision ? -1 : have > c->revision;
	}
	switch (c->result) {
	case STORE_CMP_EQUAL: return d == 0;
	case STORE_CMP_NOT_EQUAL: return d != 0;
	case STORE_CMP_LESS: return d < 0;
	case STORE_CMP_GREATER: return d > 0;
	}
	return false;
}

static bool lease_exists(struct sqlite_store *s, int64_t id)
{
	_cleanup_reset_ sqlite3_stmt *st = cached(s, "SELECT 1 FROM leases WHERE id = ?");
	if (!st)
		return false;
	sqlite3_bind_int64(st, 1, id);
	return sqlite3_step(st) == SQLITE_ROW;
}

static int run_txn(struct sqlite_store *s, struct wreq *w)
{
	w->ok = true;
	for (size_t i = 0; i < w->n_cmps && w->ok; i++) {
		struct store_kv kv = { 0 };
		int found = kv_read(s, w->cmps[i].key, &kv);
		if (found < 0)
			return berth_error_msg(&w->err, EIO, "store: read '%s'", w->cmps[i].key);
		w->ok = cmp_holds(&w->cmps[i], &kv, found);
		store_kv_done(&kv);
	}
	if (!w->ok) {
		w->revision = s->revision;
		return 0;
	}
	if ((int64_t)w->n_ops >= SEQ_MAX)
		return berth_error_msg(&w->err, E2BIG, "store: at most %lld operations in one transaction",
				       (long long)SEQ_MAX - 1);
	int64_t rev = s->revision + 1;
	int changed = 0;
	for (size_t i = 0; i < w->n_ops; i++) {
		const struct store_op *op = &w->ops[i];
		int r;
		if (op->type == STORE_OP_PUT) {
			if (op->lease && !lease_exists(s, op->lease))
				return berth_error_msg(&w->err, ENOENT, "store: lease %lld not found",
						       (long long)op->lease);
			r = apply_put(s, op, rev, (int)i);
			changed += r == 0;
		} else {
			r = apply_delete(s, op->key, rev, (int)i);
			changed += r > 0;
		}
		if (r < 0)
			return berth_error_msg(&w->err, EIO, "store: write '%s': %s", op->key,
					       sqlite3_errmsg(s->db));
	}
	if (changed)
		s->revision = rev; /* stored as the newest log id (see REVISION_SQL) */
	w->revision = s->revision;
	return 0;
}

static int run_lease(struct sqlite_store *s, struct wreq *w)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	switch (w->kind) {
	case WREQ_GRANT: {
		int64_t id = meta_get(s, "next_lease") + 1;
		if (id < 1000)
			id = 1000 + (wall_ms() & 0xffff);
		st = prep(s, "INSERT INTO leases(id, ttl, expires) VALUES (?,?,?)");
		if (!st)
			return db_fail(s, &w->err, "grant lease");
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, w->ttl);
		sqlite3_bind_int64(st, 3, wall_ms() + w->ttl * 1000);
		if (sqlite3_step(st) != SQLITE_DONE || meta_set(s, "next_lease", id) < 0)
			return db_fail(s, &w->err, "grant lease");
		w->lease = id;
		change_note(s, id, w->ttl);
		return 0;
	}
	default: return 0;
	}
}

/* Delete a lease and its keys as one revision. -ENOENT when there was no such lease. */
static int drop_lease(struct sqlite_store *s, int64_t id, struct berth_error **err)
{
	if (!lease_exists(s, id))
		return -ENOENT;
	_cleanup_stmt_ sqlite3_stmt *st = prep(s, "SELECT key FROM keys WHERE lease = ? ORDER BY key");
	if (!st)
		return db_fail(s, err, "revoke lease");
	sqlite3_bind_int64(st, 1, id);
	int64_t rev = s->revision + 1;
	int seq = 0, deleted = 0;
	_cleanup_strv_ char **keys = xcalloc(1, sizeof(char *));
	while (seq < SEQ_MAX - 1 && sqlite3_step(st) == SQLITE_ROW) { /* (more: the next expiry) */
		keys = xrealloc(keys, (size_t)(seq + 2) * sizeof(char *));
		keys[seq++] = xstrdup((const char *)sqlite3_column_text(st, 0));
		keys[seq] = NULL;
	}
	for (int i = 0; i < seq; i++) {
		int r = apply_delete(s, keys[i], rev, i);
		if (r < 0)
			return db_fail(s, err, "revoke lease");
		deleted += r;
	}
	sqlite3_finalize(st);
	st = prep(s, "DELETE FROM leases WHERE id = ?");
	if (!st)
		return db_fail(s, err, "revoke lease");
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(s, err, "revoke lease");
	if (deleted)
		s->revision = rev;
	change_note(s, id, 0);
	return 0;
}

static void expire_leases(struct sqlite_store *s)
{
	int64_t ids[64], now = wall_ms();
	size_t n = 0;
	pthread_mutex_lock(&s->lease_lock);
	for (size_t i = 0; i < s->n_leases && n < ARRAY_SIZE(ids); i++)
		if (s->leases[i].expires <= now)
			ids[n++] = s->leases[i].id;
	pthread_mutex_unlock(&s->lease_lock);
	for (size_t i = 0; i < n; i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (drop_lease(s, ids[i], &err) == -ENOENT)
			change_note(s, ids[i], 0); /* no such lease in the table: forget its clock */
	}
}

/*
 * Forget the history before the last SQLITE_EVENTS_KEEP revisions: the
 * versions superseded by a write between the previous compaction point and
 * the new one, and that span's deletes. Versions still current stay (their
 * ids are below the point: a watch never reads there). The new point is
 * published to readers only once the batch commits (run_batch).
 */
static void compact(struct sqlite_store *s)
{
	if (s->revision - s->compact_revision < 2 * SQLITE_EVENTS_KEEP)
		return;
	int64_t keep_from = s->revision - SQLITE_EVENTS_KEEP;
	_cleanup_stmt_ sqlite3_stmt *old = prep(
	    s, "DELETE FROM log WHERE id IN (SELECT prev FROM log WHERE id >= ?1 AND id < ?2 AND prev != 0)");
	_cleanup_stmt_ sqlite3_stmt *dels =
	    prep(s, "DELETE FROM log WHERE id >= ?1 AND id < ?2 AND type = 1");
	if (!old || !dels)
		return;
	for (sqlite3_stmt **st = (sqlite3_stmt *[]){ old, dels, NULL }; *st; st++) {
		sqlite3_bind_int64(*st, 1, LOG_ID(s->compact_revision + 1, 0));
		sqlite3_bind_int64(*st, 2, LOG_ID(keep_from, 0));
	}
	if (run_cached(s, "SAVEPOINT c") < 0)
		return;
	/* readers get -ERANGE from the new point at once: a watch that started before would
	 * otherwise read a history with holes once this commits */
	pthread_mutex_lock(&s->lock);
	s->compacted = keep_from - 1;
	pthread_mutex_unlock(&s->lock);
	if (sqlite3_step(old) == SQLITE_DONE && sqlite3_step(dels) == SQLITE_DONE &&
	    meta_set(s, "compact_revision", keep_from - 1) == 0)
		s->compact_revision = keep_from - 1;
	else
		(void)run_cached(s, "ROLLBACK TO c");
	(void)run_cached(s, "RELEASE c");
}

static void run_request(struct sqlite_store *s, struct wreq *w)
{
	if (run_cached(s, "SAVEPOINT w") < 0) {
		w->rc = db_fail(s, &w->err, "savepoint");
		return;
	}
	int64_t rev_before = s->revision;
	if (w->kind == WREQ_TXN)
		w->rc = run_txn(s, w);
	else if (w->kind == WREQ_REVOKE)
		w->rc = drop_lease(s, w->lease, &w->err);
	else
		w->rc = run_lease(s, w);
	if (w->rc < 0) {
		s->revision = rev_before;
		(void)run_cached(s, "ROLLBACK TO w");
	}
	(void)run_cached(s, "RELEASE w");
}

static void run_batch(struct sqlite_store *s, struct wreq *batch)
{
	pthread_mutex_lock(&s->db_lock);
	int64_t rev_before = s->revision, compact_before = s->compact_revision;
	bool began = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
	if (began) {
		expire_leases(s);
		for (struct wreq *w = batch; w; w = w->next)
			run_request(s, w);
		compact(s);
	}
	bool committed = began && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK;
	for (size_t i = 0; committed && i < s->n_changes; i++)
		clock_set(s, s->changes[i].id, s->changes[i].ttl);
	s->n_changes = 0;
	if (!committed) {
		_cleanup_free_ char *msg = xstrdup(sqlite3_errmsg(s->db));
		if (began)
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		s->revision = rev_before;
		s->compact_revision = compact_before;
		for (struct wreq *w = batch; w; w = w->next) {
			w->err = berth_error_free(w->err);
			w->rc = berth_error_msg(&w->err, EIO, "store: commit: %s", msg);
		}
	}
	pthread_mutex_unlock(&s->db_lock);
}

/* Milliseconds until the earliest lease deadline, or -1 without leases. */
static int64_t next_expiry_ms(struct sqlite_store *s)
{
	pthread_mutex_lock(&s->lease_lock);
	int64_t first = -1;
	for (size_t i = 0; i < s->n_leases; i++)
		if (first < 0 || s->leases[i].expires < first)
			first = s->leases[i].expires;
	pthread_mutex_unlock(&s->lease_lock);
	return first < 0 ? -1 : MAX(0, first - wall_ms());
}

static void *writer_thread(void *arg)
{
	struct sqlite_store *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		if (!s->head) {
			pthread_mutex_unlock(&s->lock);
			int64_t wait = next_expiry_ms(s);
			pthread_mutex_lock(&s->lock);
			if (!s->head && !s->stop && wait != 0) {
				if (wait < 0) {
					pthread_cond_wait(&s->wake, &s->lock);
				} else {
					struct timespec ts = proc_deadline(CLOCK_MONOTONIC, wait);
					pthread_cond_timedwait(&s->wake, &s->lock, &ts);
				}
			}
			if (s->stop)
				break;
		}
		struct wreq *batch = s->head;
		s->head = NULL;
		s->tail = &s->head;
		pthread_mutex_unlock(&s->lock);
		run_batch(s, batch); /* also expires due leases when the batch is empty */
		pthread_mutex_lock(&s->lock);
		s->committed = s->revision; /* run_batch put them back if the commit failed */
		s->compacted = s->compact_revision;
		for (struct wreq *w = batch; w; w = w->next) {
			w->done = true;
			pthread_cond_signal(&w->woken);
		}
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int submit(struct sqlite_store *s, struct wreq *w, struct berth_error **err)
{
	pthread_cond_init(&w->woken, NULL);
	pthread_mutex_lock(&s->lock);
	w->next = NULL;
	*s->tail = w;
	s->tail = &w->next;
	pthread_cond_signal(&s->wake);
	while (!w->done)
		pthread_cond_wait(&w->woken, &s->lock);
	pthread_mutex_unlock(&s->lock);
	pthread_cond_destroy(&w->woken);
	if (w->rc < 0 && w->err) {
		if (err) {
			berth_error_free(*err);
			*err = w->err;
		} else {
			berth_error_free(w->err);
		}
	}
	return w->rc;
}

#define SQ(st) ((struct sqlite_store *)(st))

/*
 * Checkpoints (copying the WAL's pages into the database file, then an
 * fsync of it) run on a thread of their own with a connection of their own,
 * PASSIVE: the writer goes on appending to the WAL meanwhile, and restarts
 * it from its start on the next batch after a complete checkpoint. SQLite's
 * automatic checkpoint ran them on the writer, after the commit of the batch
 * that crossed the threshold: every RunTask waiting for the next batch waited
 * for a copy of 4 MB and a second fsync.
 */
#define CHECKPOINT_PAGES 1000 /* SQLite's default threshold (4 MB of WAL) */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct sqlite_store *s = arg;
	(void)db, (void)name;
	if (pages >= CHECKPOINT_PAGES) {
		pthread_mutex_lock(&s->lock);
		s->ckpt_due = true;
		pthread_cond_signal(&s->ckpt_wake);
		pthread_mutex_unlock(&s->lock);
	}
	return SQLITE_OK;
}

static void *checkpoint_thread(void *arg)
{
	struct sqlite_store *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->ckpt_due && !s->stop)
			pthread_cond_wait(&s->ckpt_wake, &s->lock);
		if (s->stop)
			break;
		s->ckpt_due = false;
		pthread_mutex_unlock(&s->lock);
		(void)sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int sq_get(struct store *st, const char *key, struct store_kv *ret, struct berth_error **err)
{
	struct sqlite_store *s = SQ(st);
	pthread_mutex_lock(&s->rd_lock);
	struct store_kv kv = { 0 };
	int r = kv_read_on(s->rdb, &s->st_rget, key, &kv);
	if (r < 0)
		r = berth_error_msg(err, EIO, "store: read: %s", sqlite3_errmsg(s->rdb));
	pthread_mutex_unlock(&s->rd_lock);
	if (r == 0)
		return -ENOENT;
	if (r > 0)
		*ret = kv;
	return r < 0 ? r : 0;
}

static int sq_txn(struct store *st, const struct store_cmp *cmps, size_t n_cmps, const struct store_op *ops,
		  size_t n_ops, bool *ret_ok, int64_t *ret_revision, struct berth_error **err)
{
	struct wreq w = { .kind = WREQ_TXN, .cmps = cmps, .n_cmps = n_cmps, .ops = ops, .n_ops = n_ops };
	int r = submit(SQ(st), &w, err);
	if (r < 0)
		return r;
	*ret_ok = w.ok;
	*ret_revision = w.revision;
	return 0;
}

static int sq_range(struct store *st, const char *prefix, const char *start_after, size_t limit,
		    struct store_kv_list *ret, struct berth_error **err)
{
	struct sqlite_store *s = SQ(st);
	_cleanup_free_ char *end = store_prefix_end(prefix);
	pthread_mutex_lock(&s->rd_lock);
	/* one read transaction: the revision stored with the data it returns */
	sqlite3_stmt *q = NULL, *m = NULL;
	if (sqlite3_exec(s->rdb, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    !(m = prep_on(s->rdb, REVISION_SQL)) ||
	    !(q = prep_on(s->rdb, "SELECT k.key, l.value, k.create_rev, k.id >> 20, k.lease FROM keys k "
				  "JOIN log l ON l.id = k.id WHERE k.key >= ? AND (? = '' OR k.key < ?) "
				  "AND k.key > ? ORDER BY k.key LIMIT ?"))) {
		int r = berth_error_msg(err, EIO, "store: range: %s", sqlite3_errmsg(s->rdb));
		sqlite3_finalize(m);
		sqlite3_exec(s->rdb, "ROLLBACK", NULL, NULL, NULL);
		pthread_mutex_unlock(&s->rd_lock);
		return r;
	}
	ret->revision = sqlite3_step(m) == SQLITE_ROW ? sqlite3_column_int64(m, 0) : 0;
	sqlite3_finalize(m);
	sqlite3_bind_text(q, 1, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, end, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, end, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, start_after ? start_after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (int64_t)limit + 1);
	size_t cap = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (ret->n == limit) {
			ret->more = true;
			break;
		}
		if (ret->n == cap) {
			cap = cap ? cap * 2 : 16;
			ret->kvs = xrealloc(ret->kvs, cap * sizeof(*ret->kvs));
		}
		row_to_kv(q, 0, &ret->kvs[ret->n++]);
	}
	sqlite3_finalize(q);
	sqlite3_exec(s->rdb, "COMMIT", NULL, NULL, NULL);
	pthread_mutex_unlock(&s->rd_lock);
	return 0;
}

static int read_events(struct sqlite_store *s, const char *prefix, int64_t from, store_value_fn *want,
		       void *want_arg, struct store_event_list *ret)
{
	_cleanup_free_ char *end = store_prefix_end(prefix);
	if (!s->st_events &&
	    sqlite3_prepare_v3(s->rdb,
			       "SELECT type, key, value, create_rev, id >> 20, lease FROM log "
			       "WHERE id >= ? AND key >= ? AND (? = '' OR key < ?) ORDER BY id LIMIT 10000",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->st_events, NULL) != SQLITE_OK)
		return -EIO;
	_cleanup_reset_ sqlite3_stmt *q = s->st_events;
	sqlite3_bind_int64(q, 1, LOG_ID(from, 0));
	sqlite3_bind_text(q, 2, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, end, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, end, -1, SQLITE_STATIC);
	size_t cap = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (ret->n == cap) {
			cap = cap ? cap * 2 : 16;
			ret->events = xrealloc(ret->events, cap * sizeof(*ret->events));
		}
		struct store_event *e = &ret->events[ret->n++];
		*e = (struct store_event){ .type = sqlite3_column_int(q, 0) };
		if (want && e->type == STORE_EVENT_PUT &&
		    !want(want_arg, (const char *)sqlite3_column_text(q, 1), sqlite3_column_blob(q, 2),
			  (size_t)sqlite3_column_bytes(q, 2))) {
			/* left out: the key and revisions only, no copy of the value */
			const char *k = (const char *)sqlite3_column_text(q, 1);
			e->kv = (struct store_kv){ .key = xstrdup(k ? k : ""),
						   .create_revision = sqlite3_column_int64(q, 3),
						   .mod_revision = sqlite3_column_int64(q, 4),
						   .lease = sqlite3_column_int64(q, 5) };
			continue;
		}
		row_to_kv(q, 1, &e->kv);
	}
	return 0;
}

static int sq_watch_values(struct store *st, const char *prefix, int64_t from, int timeout_ms,
			   store_value_fn *want, void *want_arg, struct store_event_list *ret,
			   struct berth_error **err)
{
	struct sqlite_store *s = SQ(st);
	struct timespec deadline = proc_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&s->lock);
	if (from <= 0)
		from = s->committed + 1;
	for (;;) {
		if (from <= s->compacted) {
			int64_t oldest = s->compacted + 1;
			pthread_mutex_unlock(&s->lock);
			return berth_error_msg(err, ERANGE,
					       "watch from revision %lld: compacted (oldest %lld)",
					       (long long)from, (long long)oldest);
		}
		int64_t rev = s->committed;
		if (rev >= from) {
			pthread_mutex_unlock(&s->lock);
			pthread_mutex_lock(&s->rd_lock);
			int r = read_events(s, prefix, from, want, want_arg, ret);
			if (r < 0)
				r = berth_error_msg(err, EIO, "store: read events: %s",
						    sqlite3_errmsg(s->rdb));
			pthread_mutex_unlock(&s->rd_lock);
			if (r < 0)
				return r;
			pthread_mutex_lock(&s->lock);
			bool compacted = from <= s->compacted; /* while we read: holes possible */
			pthread_mutex_unlock(&s->lock);
			if (compacted) {
				store_event_list_done(ret);
				*ret = (struct store_event_list){ 0 };
				pthread_mutex_lock(&s->lock);
				continue; /* -ERANGE above */
			}
			ret->revision = rev;
			if (ret->n > 0)
				return 0;
			from = rev + 1;
			pthread_mutex_lock(&s->lock);
			continue;
		}
		if (s->stop || pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == ETIMEDOUT) {
			/* what was examined, not s->committed: the writer may move it before its
			 * wake-up reaches us, and a caller resuming after it would skip those events */
			ret->revision = from - 1;
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
	}
}

static int sq_watch(struct store *st, const char *prefix, int64_t from, int timeout_ms,
		    struct store_event_list *ret, struct berth_error **err)
{
	return sq_watch_values(st, prefix, from, timeout_ms, NULL, NULL, ret, err);
}

static int sq_revision(struct store *st, int64_t *ret, struct berth_error **err)
{
	struct sqlite_store *s = SQ(st);
	pthread_mutex_lock(&s->lock);
	*ret = s->committed; /* what a read after this sees at least */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sq_lease_grant(struct store *st, int64_t ttl, int64_t *ret_id, struct berth_error **err)
{
	struct wreq w = { .kind = WREQ_GRANT, .ttl = ttl };
	int r = submit(SQ(st), &w, err);
	if (r >= 0)
		*ret_id = w.lease;
	return r;
}

/* A keepalive touches only the lease's clock: no commit, no wakeup of watchers. */
static int sq_lease_keepalive(struct store *st, int64_t id, int64_t *ret_ttl, struct berth_error **err)
{
	struct sqlite_store *s = SQ(st);
	int64_t now = wall_ms();
	pthread_mutex_lock(&s->lease_lock);
	struct lease_clock *c = clock_find(s, id);
	bool alive = c && c->expires > now;
	if (alive) {
		c->expires = now + c->ttl * 1000;
		*ret_ttl = c->ttl;
	}
	pthread_mutex_unlock(&s->lease_lock);
	(void)err;
	return alive ? 0 : -ENOENT;
}

static int sq_lease_revoke(struct store *st, int64_t id, struct berth_error **err)
{
	struct wreq w = { .kind = WREQ_REVOKE, .lease = id };
	return submit(SQ(st), &w, err);
}

static void sq_free(struct store *st)
{
	struct sqlite_store *s = SQ(st);
	if (s->started) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_broadcast(&s->wake);
		pthread_cond_broadcast(&s->changed);
		pthread_cond_broadcast(&s->ckpt_wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	if (s->ckpt_started)
		pthread_join(s->ckpt_thread, NULL);
	sqlite3_finalize(s->st_get);
	sqlite3_finalize(s->st_rget);
	sqlite3_finalize(s->st_events);
	for (size_t i = 0; i < ARRAY_SIZE(s->cache); i++)
		sqlite3_finalize(s->cache[i].st);
	sqlite3_close(s->cdb);
	sqlite3_close(s->rdb);
	sqlite3_close(s->db); /* the last: it checkpoints and removes the WAL */
	pthread_mutex_destroy(&s->db_lock);
	pthread_mutex_destroy(&s->rd_lock);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->lease_lock);
	free(s->leases);
	free(s->changes);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->changed);
	pthread_cond_destroy(&s->ckpt_wake);
	free(s);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.get = sq_get,
	.txn = sq_txn,
	.range = sq_range,
	.watch = sq_watch,
	.watch_values = sq_watch_values,
	.revision = sq_revision,
	.lease_grant = sq_lease_grant,
	.lease_keepalive = sq_lease_keepalive,
	.lease_revoke = sq_lease_revoke,
	.free = sq_free,
};

/* Every lease of the table gets a clock with a full TTL from now (see the top comment). */
static int load_leases(struct sqlite_store *s, struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = prep(s, "SELECT id, ttl FROM leases ORDER BY id");
	if (!st)
		return db_fail(s, err, "read leases");
	while (sqlite3_step(st) == SQLITE_ROW)
		clock_set(s, sqlite3_column_int64(st, 0), MAX(1, sqlite3_column_int64(st, 1)));
	return 0;
}

/*
 * One process owns the file (ROOT/server.lock keeps a second server away),
 * with two connections: the writer's and the readers' (see the top). Normal
 * locking, which a second connection needs: the WAL index is shared memory
 * (the -shm file) and each read transaction takes and drops a POSIX lock.
 */
static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "PRAGMA cache_size=-16384;"           /* KiB: the writer's B-tree pages (default 2 MiB) */
    "PRAGMA journal_size_limit=67108864;" /* a WAL that grew past 64 MiB is cut back after a restart */
    "CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, expires INTEGER NOT "
    "NULL);"
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/* The value log and the key index (see the top); type 0 put, 1 delete; prev: the version replaced. */
static const char SCHEMA_LOG[] =
    "CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, type INTEGER NOT NULL, key TEXT NOT NULL,"
    " value BLOB, create_rev INTEGER NOT NULL DEFAULT 0, lease INTEGER NOT NULL DEFAULT 0,"
    " prev INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS keys (key TEXT PRIMARY KEY, id INTEGER NOT NULL,"
    " create_rev INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS keys_lease ON keys(lease) WHERE lease != 0;";

/*
 * From the first schema (kv: every key with its value; events: the history
 * since the compaction point, values included) to log + keys, in one
 * transaction: the history's events keep their revisions and values, a
 * current value older than the history gets a version of its own (at its
 * mod revision, after that revision's positions), and each version learns
 * the one it replaced.
 */
static const char MIGRATE_V0[] =
    "INSERT INTO log(id, type, key, value, create_rev, lease)"
    " SELECT rev << 20 | seq, type, key, value, coalesce(create_rev, 0), coalesce(lease, 0) FROM events;"
    "INSERT INTO log(id, type, key, value, create_rev, lease)"
    " SELECT mod_rev << 20 | (524288 + row_number() OVER (PARTITION BY mod_rev ORDER BY key)), 0, key,"
    " value, create_rev, lease FROM kv WHERE NOT EXISTS"
    " (SELECT 1 FROM events e WHERE e.rev = kv.mod_rev AND e.key = kv.key AND e.type = 0);"
    "CREATE INDEX migrate_log_key ON log(key);"
    "INSERT INTO keys(key, id, create_rev, lease) SELECT kv.key, (SELECT max(l.id) FROM log l"
    " WHERE l.key = kv.key AND l.id >> 20 = kv.mod_rev AND l.type = 0), kv.create_rev, kv.lease FROM kv;"
    "UPDATE log SET prev = coalesce((SELECT max(p.id) FROM log p WHERE p.key = log.key AND p.id < log.id),"
    " 0);"
    "DROP INDEX migrate_log_key;"
    "DROP TABLE kv;"
    "DROP TABLE events;";

static int schema_version(struct sqlite_store *s)
{
	_cleanup_stmt_ sqlite3_stmt *st = prep(s, "PRAGMA user_version");
	return st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
}

/* Create or migrate the tables of the value log and the key index. */
static int schema_upgrade(struct sqlite_store *s, struct berth_error **err)
{
	int v = schema_version(s);
	if (v < 0)
		return db_fail(s, err, "read schema version");
	if (v == SCHEMA_VERSION)
		return 0;
	if (v > SCHEMA_VERSION)
		return berth_error_msg(err, EPROTO, "store schema version %d is newer than this berth's (%d)",
				       v, SCHEMA_VERSION);
	sqlite3_stmt *old = prep(s, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kv'");
	bool migrate = old && sqlite3_step(old) == SQLITE_ROW;
	sqlite3_finalize(old); /* (an active statement would keep DROP TABLE from running) */
	_cleanup_free_ char *sql = xasprintf("BEGIN IMMEDIATE;%s%sPRAGMA user_version = %d;COMMIT;",
					     SCHEMA_LOG, migrate ? MIGRATE_V0 : "", SCHEMA_VERSION);
	int r = db_exec(s, sql, err);
	if (r < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return berth_error_wrap(
		    err, r, migrate ? "migrate the store to schema %d" : "create schema %d", SCHEMA_VERSION);
	}
	return 0;
}

int store_sqlite_open(const char *path, struct store **ret, struct berth_error **err)
{
	struct sqlite_store *s = xcalloc(1, sizeof(*s));
	s->base.ops = &sqlite_ops;
	pthread_mutex_init(&s->db_lock, NULL);
	pthread_mutex_init(&s->rd_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->lease_lock, NULL);
	proc_cond_init_monotonic(&s->wake);    /* timed: the writer's next lease expiry */
	proc_cond_init_monotonic(&s->changed); /* timed: watches */
	pthread_cond_init(&s->ckpt_wake, NULL);
	s->tail = &s->head;
	_cleanup_store_ struct store *owner = &s->base;
	/* create the file 0600 before SQLite opens it (and its -wal/-shm inherit the mode) */
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "open store '%s'", path);
	(void)fchmod(fd, 0600);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return berth_error_msg(err, EIO, "open store '%s': %s", path, sqlite3_errmsg(s->db));
	sqlite3_busy_timeout(s->db, 10000);
	int r = db_exec(s, SCHEMA, err);
	if (r >= 0)
		r = schema_upgrade(s, err);
	if (r < 0)
		return berth_error_wrap(err, r, "open store '%s'", path);
	{
		_cleanup_stmt_ sqlite3_stmt *st = prep(s, REVISION_SQL);
		s->revision = s->committed =
		    st && sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	}
	s->compact_revision = s->compacted = meta_get(s, "compact_revision");
	if (sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return berth_error_msg(err, EIO, "open store '%s' for reading: %s", path,
				       sqlite3_errmsg(s->rdb));
	sqlite3_busy_timeout(s->rdb, 10000);
	if (sqlite3_open_v2(path, &s->cdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return berth_error_msg(err, EIO, "open store '%s' for checkpoints: %s", path,
				       sqlite3_errmsg(s->cdb));
	sqlite3_wal_hook(s->db, wal_hook, s); /* (replaces SQLite's automatic checkpoint) */
	r = load_leases(s, err);
	if (r < 0)
		return berth_error_wrap(err, r, "open store '%s'", path);
	if (pthread_create(&s->thread, NULL, writer_thread, s) != 0)
		return berth_error_set(err, EAGAIN, "start store writer thread");
	s->started = true;
	if (pthread_create(&s->ckpt_thread, NULL, checkpoint_thread, s) != 0)
		return berth_error_set(err, EAGAIN, "start store checkpoint thread");
	s->ckpt_started = true;
	*ret = TAKE_PTR(owner);
	return 0;
}
