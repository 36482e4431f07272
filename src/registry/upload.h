/*
 * upload.h - blob upload sessions.
 *
 * A session is uploads/<uuid>/data (the bytes received so far) and
 * uploads/<uuid>/info ("<repo>\n<start time>\n"). The running digest lives in
 * memory; after a restart (or a failed write) it is rebuilt by re-hashing the
 * data file, so sessions survive restarts and the offset reported to clients
 * is always the data file's size. Sessions untouched for `expiry` seconds are
 * removed by registry_upload_expire().
 *
 * Thread safety: the table has a mutex; a session is used by one request at
 * a time (registry_upload_acquire() waits briefly, then returns -EBUSY).
 */
#ifndef BERTH_REGISTRY_UPLOAD_H
#define BERTH_REGISTRY_UPLOAD_H

#include <pthread.h>

#include "registry/storage.h"

struct upload {
	char uuid[33];
	char *repo;
	int fd;           /* data file, O_WRONLY|O_APPEND */
	uint64_t offset;  /* bytes in data file */
	uint64_t flushed; /* writeback requested up to here */
	struct digester *dg;
	bool hash_valid; /* dg covers exactly [0, offset) */
	bool busy;
	bool failed;  /* a write failed in this request: the data file may be longer than offset */
	bool durable; /* storage.fsync: start writeback while receiving, fsync before commit */
	time_t touched;
	struct upload *next;
};

struct upload_table {
	pthread_mutex_t lock;
	pthread_cond_t released; /* a session became free (registry_upload_release) */
	struct upload *head;
	size_t count;
	size_t max;
	struct registry_store *store;
};

void registry_upload_table_init(struct upload_table *t, struct registry_store *store, size_t max);
void registry_upload_table_done(struct upload_table *t);

/* New session for repo, acquired. -EAGAIN when too many sessions are open. */
int registry_upload_create(struct upload_table *t, const char *repo, struct upload **ret,
			   struct berth_error **err);
/*
 * Find (or reload from disk) session uuid of repo and acquire it. -ENOENT;
 * -EBUSY when another request still holds it after a short wait (2 s).
 */
int registry_upload_acquire(struct upload_table *t, const char *repo, const char *uuid, struct upload **ret);
void registry_upload_release(struct upload_table *t, struct upload *u);

/* Append data, hashing it. On failure the session is marked for re-hash. */
int registry_upload_write(struct upload *u, const void *data, size_t len);
/* Truncate the data file back to u->offset after a failed or aborted chunk. */
void registry_upload_rollback(struct upload *u);

/*
 * Verify digest over the data, fsync, commit into the blob store and link it
 * into the session's repository; the session is then removed (u is freed).
 * -EBADMSG on a digest mismatch (the session stays, acquired).
 */
int registry_upload_finish(struct upload_table *t, struct upload *u, const char *digest,
			   struct berth_error **err);
/* Remove an acquired session and its files (u is freed). */
void registry_upload_cancel(struct upload_table *t, struct upload *u);

/* Remove sessions idle for longer than max_age seconds (memory and disk). Returns how many. */
size_t registry_upload_expire(struct upload_table *t, int64_t max_age);

size_t registry_upload_count(struct upload_table *t);

#endif
