/*
 * store.h - the cluster state store: a revisioned key-value store behind a
 * vtable, with an embedded SQLite backend (one server) and an etcd 3 backend
 * (several servers sharing the state).
 *
 * The model is etcd's: keys and values are byte strings (keys are C strings
 * here, values carry a length); every successful write (put, delete, a
 * transaction that changed something) bumps one global revision, and each key
 * remembers the revision that last modified it (mod_revision) and created it
 * (create_revision). Transactions compare keys against revisions or values and
 * apply their operations atomically only when every comparison holds. Watches
 * resume from a revision: the caller asks for the events on a prefix at or
 * after revision R and gets them (or waits up to a timeout for the first one).
 * Leases expire keys: a key put with a lease is deleted (a DELETE event with
 * its own revision) when the lease is revoked or not kept alive within its TTL.
 *
 * Ownership: every struct store_kv / engine_store_event returned belongs to the
 * caller (store_kv_list_done(), store_event_list_done()). Errors follow the
 * project's conventions: >= 0 on success, -errno on failure with *err set;
 * -ENOENT for a missing key or lease, -ERANGE for a watch revision that was
 * compacted away, -ECONNREFUSED/-EIO when the backend is unreachable.
 *
 * Thread safety: one struct store is shared by every thread of the server;
 * every operation may be called concurrently.
 */
#ifndef BERTH_STORE_STORE_H
#define BERTH_STORE_STORE_H

#include "common/error.h"

/* Limits on what callers may store (etcd's default request limit is 1.5 MiB). */
#define STORE_MAX_KEY   1024
#define STORE_MAX_VALUE (1024 * 1024)
/* Most results one range returns when the caller passes limit 0. */
#define STORE_RANGE_MAX 100000

struct store;

struct store_kv {
	char *key;
	char *value; /* NUL-terminated for convenience; value_len excludes the NUL */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t lease; /* 0: none */
};

struct store_kv_list {
	struct store_kv *kvs;
	size_t n;
	bool more;        /* the range stopped at its limit; more keys follow */
	int64_t revision; /* store revision the range was read at */
};

enum store_event_type { STORE_EVENT_PUT, STORE_EVENT_DELETE };

struct store_event {
	enum store_event_type type;
	struct store_kv kv; /* for DELETE: key and mod_revision (the delete's revision) only */
};

struct store_event_list {
	struct store_event *events;
	size_t n;
	int64_t revision; /* the store's revision when the watch returned; with no events, every
			     revision up to it was examined (a caller may resume after it) */
};

/* Transaction comparisons, etcd's subset. */
enum store_cmp_target { STORE_CMP_MOD, STORE_CMP_CREATE, STORE_CMP_VALUE };
enum store_cmp_result { STORE_CMP_EQUAL, STORE_CMP_NOT_EQUAL, STORE_CMP_LESS, STORE_CMP_GREATER };

struct store_cmp {
	const char *key;
	enum store_cmp_target target;
	enum store_cmp_result result;
	int64_t revision;  /* STORE_CMP_MOD / STORE_CMP_CREATE; a missing key has revision 0 */
	const char *value; /* STORE_CMP_VALUE (a missing key never compares equal) */
	size_t value_len;
};

enum store_op_type { STORE_OP_PUT, STORE_OP_DELETE };

struct store_op {
	enum store_op_type type;
	const char *key;
	const char *value;
	size_t value_len;
	int64_t lease; /* PUT only; 0: none */
};

/* Whether a watch's caller needs a PUT event's value (borrowed for the call only): store_watch_values(). */
typedef bool store_value_fn(void *arg, const char *key, const char *value, size_t value_len);

struct store_ops {
	const char *name;
	int (*get)(struct store *s, const char *key, struct store_kv *ret, struct berth_error **err);
	int (*txn)(struct store *s, const struct store_cmp *cmps, size_t n_cmps, const struct store_op *ops,
		   size_t n_ops, bool *ret_ok, int64_t *ret_revision, struct berth_error **err);
	int (*range)(struct store *s, const char *prefix, const char *start_after, size_t limit,
		     struct store_kv_list *ret, struct berth_error **err);
	int (*watch)(struct store *s, const char *prefix, int64_t from_revision, int timeout_ms,
		     struct store_event_list *ret, struct berth_error **err);
	/* optional: store_watch_values() without copying the values left out (else: watch, then drop) */
	int (*watch_values)(struct store *s, const char *prefix, int64_t from_revision, int timeout_ms,
			    store_value_fn *want, void *want_arg, struct store_event_list *ret,
			    struct berth_error **err);
	int (*revision)(struct store *s, int64_t *ret, struct berth_error **err);
	int (*lease_grant)(struct store *s, int64_t ttl_sec, int64_t *ret_id, struct berth_error **err);
	int (*lease_keepalive)(struct store *s, int64_t id, int64_t *ret_ttl, struct berth_error **err);
	int (*lease_revoke)(struct store *s, int64_t id, struct berth_error **err);
	void (*free)(struct store *s);
};

/*
 * Told after each write made through this handle that may have changed keys:
 * a store_txn whose comparisons held (or whose outcome is unknown: an error),
 * with its operations, or a lease revoke (ops NULL: the lease's keys are
 * unknown). It runs on the writer's thread after the write is durable and
 * before the writer's caller sees the result, so a reader that checks what it
 * was told before reading the store sees every write acknowledged to anyone
 * before that. Not told: lease expiries (nobody was acknowledged). Must be
 * quick and must not call the store.
 */
typedef void store_write_fn(void *arg, const struct store_op *ops, size_t n_ops);

struct store {
	const struct store_ops *ops;
	store_write_fn *on_write; /* store_on_write() */
	void *on_write_arg;
};

/*
 * Open a store from its spec: "sqlite" (ROOT/store.db, created mode 0600) or
 * "etcd://HOST:PORT[,HOST:PORT...]" (endpoints tried in order, failing over).
 * root: the server root (used by sqlite). *ret is owned by the caller
 * (store_free()).
 */
int store_connect(const char *spec, const char *root, struct store **ret, struct berth_error **err);
/* Set the write observer (one per handle; NULL: none). Before the handle is shared between threads. */
void store_on_write(struct store *s, store_write_fn *fn, void *arg);
int store_sqlite_open(const char *path, struct store **ret, struct berth_error **err);
int store_etcd_open(const char *endpoints, struct store **ret, struct berth_error **err);
struct store *store_free(struct store *s);
static inline void store_freep(struct store **s)
{
	*s = store_free(*s);
}
#define _cleanup_store_ _cleanup_(store_freep)

/* Read one key; -ENOENT (no error message set) when absent. */
int store_get(struct store *s, const char *key, struct store_kv *ret, struct berth_error **err);
/* Put a key; *ret_revision (may be NULL) is the write's revision. */
int store_put(struct store *s, const char *key, const char *value, size_t value_len, int64_t lease,
	      int64_t *ret_revision, struct berth_error **err);
/* Delete a key; 0 also when it was absent (then no revision is used). */
int store_remove(struct store *s, const char *key, int64_t *ret_revision, struct berth_error **err);
/*
 * Apply ops atomically if every comparison holds; *ret_ok tells which. The
 * revision is the store's revision after the transaction (one bump when any
 * op ran, none for a failed comparison or a transaction of deletes of absent
 * keys).
 */
int store_txn(struct store *s, const struct store_cmp *cmps, size_t n_cmps, const struct store_op *ops,
	      size_t n_ops, bool *ret_ok, int64_t *ret_revision, struct berth_error **err);
/*
 * Keys starting with prefix, in byte order, after start_after (NULL: from the
 * first), at most limit (0: STORE_RANGE_MAX).
 */
int store_range(struct store *s, const char *prefix, const char *start_after, size_t limit,
		struct store_kv_list *ret, struct berth_error **err);
/*
 * Events on keys starting with prefix with revision >= from_revision, oldest
 * first. Returns at once when there are some; otherwise waits up to
 * timeout_ms for the first batch and returns an empty list on timeout.
 * timeout_ms 0: history only (etcd: when the store's revision is at or past
 * from_revision it waits for that history up to its call timeout, so the
 * prefix should cover what was written since).
 * -ERANGE: from_revision was compacted (resync with a range).
 */
int store_watch(struct store *s, const char *prefix, int64_t from_revision, int timeout_ms,
		struct store_event_list *ret, struct berth_error **err);
/*
 * store_watch(), asking want() about each PUT event's value as it is read:
 * false leaves it out (the event's kv.value NULL, value_len 0; its key and
 * revisions are there). The scheduler cache's catch-up skips its own
 * placements' task records this way. want runs on the caller's thread.
 */
int store_watch_values(struct store *s, const char *prefix, int64_t from_revision, int timeout_ms,
		       store_value_fn *want, void *want_arg, struct store_event_list *ret,
		       struct berth_error **err);
int store_revision(struct store *s, int64_t *ret, struct berth_error **err);
int store_lease_grant(struct store *s, int64_t ttl_sec, int64_t *ret_id, struct berth_error **err);
/* -ENOENT when the lease expired or never existed. */
int store_lease_keepalive(struct store *s, int64_t id, int64_t *ret_ttl, struct berth_error **err);
int store_lease_revoke(struct store *s, int64_t id, struct berth_error **err);

void store_kv_done(struct store_kv *kv);
void store_kv_list_done(struct store_kv_list *l);
void store_event_list_done(struct store_event_list *l);

/* The smallest key greater than every key with this prefix ("" when none: the prefix is all 0xff). */
char *store_prefix_end(const char *prefix);

#endif
