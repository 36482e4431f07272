/*
 * upload.c - upload sessions: streamed to a per-session data file while a
 * digest runs over the same bytes, persisted so they survive restarts.
 *
 * Trade-off: we persist only the data and re-hash it after a restart instead
 * of serializing the hash state (OpenSSL's EVP contexts are opaque). Resuming
 * costs one read of the partial file, once.
 */
#include "registry/upload.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/process.h"
#include "common/util.h"
#include "registry/route.h"

/* Bytes between asynchronous writeback requests (sync_file_range). */
#define UPLOAD_WRITEBACK_STEP (8u << 20)

/*
 * How long a request waits for a session another request holds: the request that
 * held it may be finishing after its client went away (the client's next request
 * can arrive before that request's worker has seen the hangup and released it).
 */
#define UPLOAD_BUSY_WAIT_MS 2000

void registry_upload_table_init(struct upload_table *t, struct registry_store *store, size_t max)
{
	pthread_mutex_init(&t->lock, NULL);
	proc_cond_init_monotonic(&t->released);
	t->head = NULL;
	t->count = 0;
	t->max = max;
	t->store = store;
}

static void upload_free(struct upload *u)
{
	if (!u)
		return;
	safe_close(u->fd);
	digester_free(u->dg);
	free(u->repo);
	free(u);
}

void registry_upload_table_done(struct upload_table *t)
{
	while (t->head) {
		struct upload *u = t->head;
		t->head = u->next;
		upload_free(u);
	}
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->released);
}

static void unlink_locked(struct upload_table *t, struct upload *u)
{
	for (struct upload **p = &t->head; *p; p = &(*p)->next) {
		if (*p == u) {
			*p = u->next;
			t->count--;
			return;
		}
	}
}

static void remove_files(struct registry_store *s, const char *uuid)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "uploads/%s", uuid);
	fs_rm_rf_at(s->rootfd, path, NULL);
}

static int upload_create_files(struct upload_table *t, const char *uuid, const char *repo,
			       struct upload **ret, struct berth_error **err)
{
	char path[PATH_MAX];
	int rootfd = t->store->rootfd;
	snprintf(path, sizeof(path), "uploads/%s/info", uuid);
	_cleanup_free_ char *info = xasprintf("%s\n%lld\n", repo, (long long)time(NULL));
	/*
	 * No fsync here: a session lost in a crash is only a restart for the client
	 * (404 BLOB_UPLOAD_UNKNOWN), while two fsyncs per blob are a visible cost on
	 * a busy disk. upload_load() refuses a truncated info file.
	 */
	_cleanup_close_ int ifd = openat(rootfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ifd < 0 || fs_write_all(ifd, info, strlen(info)) < 0)
		return berth_error_errno(err, "write upload session info");
	snprintf(path, sizeof(path), "uploads/%s/data", uuid);
	int fd = openat(rootfd, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "create upload data");
	struct upload *u = xcalloc(1, sizeof(*u));
	memcpy(u->uuid, uuid, 33);
	u->repo = xstrdup(repo);
	u->fd = fd;
	u->dg = digester_new(DIGEST_SHA256);
	u->hash_valid = true;
	u->durable = t->store->fsync;
	u->busy = true;
	u->touched = time(NULL);
	pthread_mutex_lock(&t->lock);
	u->next = t->head;
	t->head = u;
	t->count++;
	pthread_mutex_unlock(&t->lock);
	*ret = u;
	return 0;
}

int registry_upload_create(struct upload_table *t, const char *repo, struct upload **ret,
			   struct berth_error **err)
{
	char path[PATH_MAX];
	pthread_mutex_lock(&t->lock);
	bool full = t->count >= t->max;
	pthread_mutex_unlock(&t->lock);
	if (full)
		return berth_error_msg(err, EAGAIN, "too many upload sessions");
	_cleanup_free_ char *uuid = util_random_hex(16);
	int rootfd = t->store->rootfd;
	snprintf(path, sizeof(path), "uploads/%s", uuid);
	if (mkdirat(rootfd, path, 0700) < 0)
		return berth_error_errno(err, "create upload session");
	int r = upload_create_files(t, uuid, repo, ret, err);
	if (r < 0) /* a full disk: no half-made session stays behind */
		remove_files(t->store, uuid);
	return r;
}

/* Rebuild a session from disk after a restart. */
static struct upload *upload_load(struct registry_store *s, const char *uuid)
{
	char path[PATH_MAX], info[512];
	struct stat st;
	snprintf(path, sizeof(path), "uploads/%s/info", uuid);
	_cleanup_close_ int ifd = openat(s->rootfd, path, O_RDONLY | O_CLOEXEC);
	if (ifd < 0)
		return NULL;
	ssize_t n = read(ifd, info, sizeof(info) - 1);
	if (n <= 0)
		return NULL;
	info[n] = '\0';
	char *nl = strchr(info, '\n');
	if (!nl)
		return NULL;
	*nl = '\0';
	snprintf(path, sizeof(path), "uploads/%s/data", uuid);
	int fd = openat(s->rootfd, path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return NULL;
	}
	struct upload *u = xcalloc(1, sizeof(*u));
	memcpy(u->uuid, uuid, 33);
	u->repo = xstrdup(info);
	u->fd = fd;
	u->offset = (uint64_t)st.st_size;
	u->flushed = u->offset;
	u->dg = digester_new(DIGEST_SHA256);
	u->hash_valid = false;
	u->durable = s->fsync;
	u->touched = time(NULL);
	return u;
}

/* The session uuid of the table, loaded from disk when not in memory; NULL. Under t->lock. */
static struct upload *find_locked(struct upload_table *t, const char *uuid)
{
	struct upload *u = t->head;
	while (u && !streq(u->uuid, uuid))
		u = u->next;
	if (!u) {
		u = upload_load(t->store, uuid);
		if (u) {
			u->next = t->head;
			t->head = u;
			t->count++;
		}
	}
	return u;
}

int registry_upload_acquire(struct upload_table *t, const char *repo, const char *uuid, struct upload **ret)
{
	struct timespec deadline = proc_deadline(CLOCK_MONOTONIC, UPLOAD_BUSY_WAIT_MS);
	bool timed_out = false;
	int r;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		/* looked up again after every wait: the holder may have finished or cancelled it */
		struct upload *u = find_locked(t, uuid);
		if (!u || !streq(u->repo, repo)) {
			r = -ENOENT;
			break;
		}
		if (!u->busy) {
			u->busy = true;
			u->touched = time(NULL);
			*ret = u;
			r = 0;
			break;
		}
		if (timed_out) {
			r = -EBUSY;
			break;
		}
		timed_out = pthread_cond_timedwait(&t->released, &t->lock, &deadline) == ETIMEDOUT;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

void registry_upload_release(struct upload_table *t, struct upload *u)
{
	pthread_mutex_lock(&t->lock);
	u->busy = false;
	u->touched = time(NULL);
	pthread_cond_broadcast(&t->released);
	pthread_mutex_unlock(&t->lock);
}

/* Re-hash the data file so the digester covers [0, offset). */
static int upload_rehash(struct registry_store *s, struct upload *u, enum digest_algo algo)
{
	char path[PATH_MAX], buf[1 << 16];
	snprintf(path, sizeof(path), "uploads/%s/data", u->uuid);
	_cleanup_close_ int fd = openat(s->rootfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	digester_free(u->dg);
	u->dg = digester_new(algo);
	uint64_t left = u->offset;
	while (left > 0) {
		ssize_t n = read(fd, buf, MIN(sizeof(buf), left));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? negative_errno() : -EIO;
		digester_update(u->dg, buf, (size_t)n);
		left -= (uint64_t)n;
	}
	u->hash_valid = algo == DIGEST_SHA256;
	return 0;
}

void registry_upload_rollback(struct upload *u)
{
	u->flushed = MIN(u->flushed, u->offset);
	u->failed = ftruncate(u->fd, (off_t)u->offset) != 0;
	u->hash_valid = false;
}

int registry_upload_write(struct upload *u, const void *data, size_t len)
{
	if (u->failed) {
		/* an earlier truncate failed: appending now would land past the offset */
		registry_upload_rollback(u);
		if (u->failed)
			return -EIO;
	}
	int r = fs_write_all(u->fd, data, len);
	if (r < 0) {
		u->failed = true;
		registry_upload_rollback(u);
		return r;
	}
	if (u->hash_valid)
		digester_update(u->dg, data, len);
	u->offset += len;
	/*
	 * Start writeback every few MiB so that the fsync before commit finds little
	 * left to flush: disk writes overlap the network transfer instead of following it.
	 */
	if (u->durable && u->offset - u->flushed >= UPLOAD_WRITEBACK_STEP) {
		sync_file_range(u->fd, (off_t)u->flushed, (off_t)(u->offset - u->flushed),
				SYNC_FILE_RANGE_WRITE);
		u->flushed = u->offset;
	}
	return 0;
}

int registry_upload_finish(struct upload_table *t, struct upload *u, const char *digest,
			   struct berth_error **err)
{
	struct registry_store *s = t->store;
	char actual[DIGEST_STRING_MAX], tmp[PATH_MAX];
	enum digest_algo algo;
	int r = digest_parse(digest, &algo, NULL, err);
	if (r < 0)
		return r;
	if (u->failed)
		registry_upload_rollback(u);
	if (u->failed) /* the data file is longer than what was accepted: never commit it */
		return berth_error_msg(err, EIO, "upload '%s' has unrecoverable data", u->uuid);
	if (!u->hash_valid || algo != DIGEST_SHA256) {
		r = upload_rehash(s, u, algo);
		if (r < 0)
			return berth_error_set(err, r, "re-hash upload '%s'", u->uuid);
	}
	digester_final(u->dg, actual);
	u->hash_valid = false; /* the digester was finalized */
	if (!streq(actual, digest))
		return berth_error_msg(err, EBADMSG, "digest mismatch: computed '%s', expected '%s'", actual,
				       digest);
	if (u->durable && fsync(u->fd) < 0)
		return berth_error_errno(err, "fsync upload '%s'", u->uuid);
	int lock = registry_store_lock(s, false, err);
	if (lock < 0)
		return lock;
	snprintf(tmp, sizeof(tmp), "uploads/%s/data", u->uuid);
	r = registry_store_blob_commit(s, tmp, digest, u->offset, err);
	if (r == 0)
		r = registry_store_repo_link_blob(s, u->repo, digest, err);
	close(lock);
	if (r < 0)
		return r;
	registry_upload_cancel(t, u);
	return 0;
}

void registry_upload_cancel(struct upload_table *t, struct upload *u)
{
	pthread_mutex_lock(&t->lock);
	unlink_locked(t, u);
	pthread_mutex_unlock(&t->lock);
	remove_files(t->store, u->uuid);
	upload_free(u);
}

size_t registry_upload_count(struct upload_table *t)
{
	pthread_mutex_lock(&t->lock);
	size_t n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static bool session_stale(struct registry_store *s, const char *uuid, time_t cutoff)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "uploads/%s", uuid);
	if (fstatat(s->rootfd, path, &st, 0) < 0)
		return false;
	time_t newest = st.st_mtime;
	snprintf(path, sizeof(path), "uploads/%s/data", uuid);
	if (fstatat(s->rootfd, path, &st, 0) == 0 && st.st_mtime > newest)
		newest = st.st_mtime;
	return newest < cutoff;
}

size_t registry_upload_expire(struct upload_table *t, int64_t max_age)
{
	time_t cutoff = time(NULL) - (time_t)max_age;
	size_t removed = 0;
	int fd = openat(t->store->rootfd, "uploads", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (startswith(de->d_name, "proxy-")) {
			/* a pull-through download that died with the process */
			struct stat st;
			if (fstatat(fd, de->d_name, &st, 0) == 0 && st.st_mtime < cutoff)
				unlinkat(fd, de->d_name, 0);
			continue;
		}
		if (!registry_uuid_valid(de->d_name))
			continue;
		pthread_mutex_lock(&t->lock);
		struct upload *u = t->head;
		while (u && !streq(u->uuid, de->d_name))
			u = u->next;
		bool expire =
		    u ? (!u->busy && u->touched < cutoff) : session_stale(t->store, de->d_name, cutoff);
		if (expire && u) {
			unlink_locked(t, u);
			upload_free(u);
		}
		pthread_mutex_unlock(&t->lock);
		if (expire) {
			remove_files(t->store, de->d_name);
			removed++;
		}
	}
	return removed;
}
