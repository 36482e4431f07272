/*
 * logship.c - the agent's awslogs shipper (logship.h). One thread; per
 * source a state file and, once sealed, a hard link keeping the log. The
 * thread sleeps in poll() on an inotify descriptor (a watched log grew) and
 * an eventfd (a source was added or sealed, or we are closing); after a
 * failed send it retries after RETRY_MS.
 *
 * LOGSHIP_THREADS threads, each with its own inotify and eventfd, share the
 * sources by a hash of their key (a source is only ever touched by its
 * thread, so it can be dropped without reference counts): while one waits
 * for the server's answer, another reads and encodes its next batch.
 *
 * Trade-off: one batch of one stream per turn keeps streams fair and the
 * code simple; a very chatty container shares its thread with others.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/logship.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "logs/logstore.h"
#include "logs/wire.h"

#define RETRY_MS     1000
#define MISSING_MS   5000 /* the group does not exist (yet): try again this often */
#define SYNC_MS      1000 /* a source's acknowledged offset is flushed at least this often */
/* Bytes of messages in one batch (the server's 4 MiB request limit is far). */
#define BATCH_BYTES  (LOGS_MAX_BATCH_BYTES - 64 * 1024)
#define BATCH_EVENTS LOGS_MAX_BATCH_EVENTS
/* Bytes of the json-file read per batch: its escaping and keys roughly double the messages. */
#define BATCH_READ   (2 * LOGS_MAX_BATCH_BYTES + 4096)
/* Longest message: CloudWatch's event limit minus its 26 bytes of overhead; longer lines are cut. */
#define MAX_MESSAGE  (LOGS_MAX_EVENT_BYTES - 26)

struct source {
	char *key;         /* TASKID-CONTAINER: file names under dir */
	unsigned worker;   /* the thread that ships it */
	json_t *st;        /* {group, stream, createGroup, path, offset, sealed} */
	int wd;            /* inotify watch, -1 */
	int64_t retry_at;  /* monotonic ms; 0: now */
	int64_t synced_at; /* monotonic ms of the last durable save */
	struct source *next;
};

struct worker {
	struct logship *l;
	unsigned idx;
	int ino, efd;
	pthread_t thread;
	bool running;
	struct strbuf raw, body; /* the batch being read and built, kept */
};

struct logship {
	struct logship_config cfg;
	char *dir;
	pthread_mutex_t lock;
	struct source *sources;
	bool closing;
	struct worker w[LOGSHIP_THREADS];
};

static unsigned worker_of(const char *key)
{
	unsigned h = 5381;
	for (const char *p = key; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h % LOGSHIP_THREADS;
}

static char *path_of(struct logship *l, const char *key, const char *ext)
{
	return xasprintf("%s/%s.%s", l->dir, key, ext);
}

/*
 * Write s's state. durable: flushed (fsync) before returning; else replaced
 * atomically but flushed at most every SYNC_MS: an offset a machine crash
 * takes back only resends batches the server already has, which it drops
 * (logs_append_from), while an fsync per batch cost the shipper half its rate.
 */
static int save(struct logship *l, struct source *s, bool durable, struct berth_error **err)
{
	_cleanup_free_ char *p = path_of(l, s->key, "json");
	_cleanup_free_ char *text = json_dumps(s->st, JSON_COMPACT);
	int64_t now = proc_now_ms();
	if (!durable && now - s->synced_at < SYNC_MS)
		return fs_write_file_replace(p, text, strlen(text), 0600, err);
	s->synced_at = now;
	return fs_write_file_atomic(p, text, strlen(text), 0600, err);
}

static void kick(struct logship *l)
{
	uint64_t one = 1;
	for (size_t i = 0; i < LOGSHIP_THREADS; i++)
		if (l->w[i].efd >= 0 && write(l->w[i].efd, &one, sizeof(one)) < 0) {
			/* the counter is saturated: the thread is awake anyway */
		}
}

static struct source *find_locked(struct logship *l, const char *key)
{
	for (struct source *s = l->sources; s; s = s->next)
		if (streq(s->key, key))
			return s;
	return NULL;
}

static void source_free(struct source *s)
{
	free(s->key);
	json_decref(s->st);
	free(s);
}

/* The file to read: the kept link once sealed (and linked), else the engine's. New string. */
static char *read_path(struct logship *l, const char *key, const json_t *st)
{
	_cleanup_free_ char *kept = path_of(l, key, "log");
	if (access(kept, F_OK) == 0)
		return TAKE_PTR(kept);
	return xstrdup(json_string_value(json_object_get(st, "path")));
}

char *agent_logship_stream_name(const char *prefix, const char *container, const char *task_id,
				const char *engine_id)
{
	if (prefix && *prefix)
		return xasprintf("%s/%s/%s", prefix, container, task_id);
	return xstrdup(engine_id);
}

/* The awslogs settings of a container definition: NULL when it does not use awslogs. */
static json_t *settings_of(const char *task_id, const json_t *def, const char *engine_id,
			   const char *log_path, struct berth_error **err, int *ret)
{
	*ret = 0;
	const json_t *lc = json_object_get(def, "logConfiguration");
	const char *drv = json_string_value(json_object_get(lc, "logDriver"));
	if (!drv || !streq(drv, "awslogs"))
		return NULL;
	const json_t *o = json_object_get(lc, "options");
	const char *group = json_string_value(json_object_get(o, "awslogs-group"));
	const char *prefix = json_string_value(json_object_get(o, "awslogs-stream-prefix"));
	const char *create = json_string_value(json_object_get(o, "awslogs-create-group"));
	const char *name = json_string_value(json_object_get(def, "name"));
	if (!group || !*group || !name) {
		*ret =
		    berth_error_msg(err, EINVAL, "logConfiguration: awslogs needs the option awslogs-group");
		return NULL;
	}
	_cleanup_free_ char *stream = agent_logship_stream_name(prefix, name, task_id, engine_id);
	return json_pack("{s:s,s:s,s:b,s:s,s:I,s:b}", "group", group, "stream", stream, "createGroup",
			 create && streq(create, "true"), "path", log_path, "offset", (json_int_t)0, "sealed",
			 false);
}

static int add(struct logship *l, const char *task_id, const json_t *def, const char *engine_id,
	       const char *log_path, bool seal, struct berth_error **err)
{
	int r;
	_cleanup_json_ json_t *st = settings_of(task_id, def, engine_id, log_path, err, &r);
	if (!st)
		return r;
	_cleanup_free_ char *key =
	    xasprintf("%s-%s", task_id, json_string_value(json_object_get(def, "name")));
	pthread_mutex_lock(&l->lock);
	struct source *s = find_locked(l, key);
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->key = xstrdup(key);
		s->worker = worker_of(key);
		s->st = json_incref(st);
		s->wd = -1;
		s->next = l->sources;
		l->sources = s;
		r = save(l, s, true, err);
	}
	if (r >= 0 && seal && !json_is_true(json_object_get(s->st, "sealed"))) {
		_cleanup_free_ char *kept = path_of(l, key, "log");
		if (link(log_path, kept) < 0 && errno != EEXIST && errno != ENOENT)
			r = berth_error_errno(err, "keep the log '%s' as '%s'", log_path, kept);
		if (r >= 0) {
			json_object_set_new(s->st, "sealed", json_true());
			r = save(l, s, true, err);
		}
	}
	pthread_mutex_unlock(&l->lock);
	kick(l);
	return r;
}

int agent_logship_watch(struct logship *l, const char *task_id, const json_t *container_def,
			const char *engine_id, const char *log_path, struct berth_error **err)
{
	return add(l, task_id, container_def, engine_id, log_path, false, err);
}

int agent_logship_seal(struct logship *l, const char *task_id, const json_t *container_def,
		       const char *engine_id, const char *log_path, struct berth_error **err)
{
	return add(l, task_id, container_def, engine_id, log_path, true, err);
}

/* ---- one batch ---- */

/*
 * json-file line -> event appended to events: the message is unescaped in
 * place after the event's header (logs_wire_begin), no copy. *bytes grows by
 * the message's length; false (events unchanged) for a line without a message.
 */
static bool parse_line(const char *line, size_t len, uint64_t off, struct strbuf *events, size_t *bytes)
{
	int64_t ts = 0;
	size_t start = logs_wire_begin(events), msg = start + LOGS_WIRE_EVENT_HDR;
	int r = logs_jsonfile_append(line, len, events, &ts);
	if (r < 0) { /* not the plain shape: the full parser decides */
		_cleanup_json_ json_t *j = json_loadb(line, len, 0, NULL);
		json_t *logv = json_object_get(j, "log");
		if (json_is_string(logv)) {
			strbuf_add(events, json_string_value(logv), json_string_length(logv));
			struct timespec t;
			const char *tv = json_string_value(json_object_get(j, "time"));
			ts = tv && util_parse_rfc3339(tv, &t) == 0
				 ? (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000
				 : 0;
			r = 1;
		}
	}
	size_t n = events->len - msg;
	const char *m = events->buf + msg;
	if (n && m[n - 1] == '\n')
		n--;
	if (n && m[n - 1] == '\r')
		n--;
	if (r != 1 || n == 0) {
		strbuf_setlen(events, start);
		return false;
	}
	if (n > MAX_MESSAGE)
		n = MAX_MESSAGE;
	strbuf_setlen(events, msg + n);
	if (!ts) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	}
	logs_wire_end(events, start, off, ts);
	*bytes += n;
	return true;
}

/* The batch's head line (logs/wire.h), with a newline; new string. */
static char *batch_head(const json_t *st, uint64_t end)
{
	_cleanup_json_ json_t *head =
	    json_pack("{s:O,s:O,s:b,s:I}", "logGroupName", json_object_get(st, "group"), "logStreamName",
		      json_object_get(st, "stream"), "createGroup",
		      json_is_true(json_object_get(st, "createGroup")), "end", (json_int_t)end);
	_cleanup_free_ char *h = json_dumps(head, JSON_COMPACT);
	return xasprintf("%s\n", h);
}

/*
 * Read complete lines from offset into a batch body (logs/wire.h) built in
 * w's buffers (kept from batch to batch: no allocation, no page faults per
 * batch). *ret_body / *ret_len: the body, valid until the next call;
 * *ret_end: the offset after the last line taken (== offset: nothing new);
 * *ret_events: how many. A sealed source's unterminated last line counts as
 * complete.
 */
static int read_batch(struct worker *w, const char *key, const json_t *st, const char **ret_body,
		      size_t *ret_len, size_t *ret_events, uint64_t *ret_end, bool *ret_gone)
{
	uint64_t off = (uint64_t)json_integer_value(json_object_get(st, "offset"));
	bool sealed = json_is_true(json_object_get(st, "sealed"));
	_cleanup_free_ char *p = read_path(w->l, key, st);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
	*ret_gone = false;
	*ret_end = off;
	*ret_events = 0;
	*ret_len = 0;
	if (fd < 0) {
		*ret_gone = errno == ENOENT && sealed;
		return errno == ENOENT ? 0 : -errno;
	}
	struct strbuf *buf = &w->raw, *events = &w->body;
	size_t want = BATCH_READ;
	strbuf_reset(buf);
	strbuf_grow(buf, want);
	ssize_t n = pread(fd, buf->buf, want, (off_t)off);
	if (n < 0)
		return -errno;
	strbuf_setlen(buf, (size_t)n);
	bool eof = (size_t)n < want;
	/* the head line goes in front of the events once their end is known: room for the longest one */
	_cleanup_free_ char *longest = batch_head(st, INT64_MAX);
	size_t room = strlen(longest);
	strbuf_reset(events);
	strbuf_grow(events, room + BATCH_BYTES + BATCH_EVENTS * LOGS_WIRE_EVENT_HDR);
	strbuf_setlen(events, room);
	size_t bytes = 0, pos = 0, count = 0;
	while (pos < buf->len && count < BATCH_EVENTS && bytes < BATCH_BYTES) {
		const char *nl = memchr(buf->buf + pos, '\n', buf->len - pos);
		if (!nl && !(sealed && eof))
			break;
		size_t len = nl ? (size_t)(nl - buf->buf) - pos : buf->len - pos;
		size_t before = events->len;
		count += parse_line(buf->buf + pos, len, off + pos, events, &bytes);
		if (bytes > BATCH_BYTES && count > 1) { /* this line would overflow the batch: next time */
			strbuf_setlen(events, before);
			count--;
			break;
		}
		pos += len + (nl ? 1 : 0);
	}
	if (pos == 0 && buf->len == want) {
		/* one line longer than a batch: skip it rather than stall the stream */
		const char *nl = memchr(buf->buf, '\n', buf->len);
		pos = nl ? (size_t)(nl - buf->buf) + 1 : buf->len;
	}
	*ret_end = off + pos;
	*ret_gone = sealed && eof && pos == buf->len;
	*ret_events = count;
	_cleanup_free_ char *h = batch_head(st, off + pos);
	size_t hl = strlen(h); /* <= room: the same keys, an end of fewer digits */
	memcpy(events->buf + room - hl, h, hl);
	*ret_body = events->buf + room - hl;
	*ret_len = events->len - (room - hl);
	return 0;
}

/* Forget a fully shipped, sealed source: its state and kept log go. */
static void drop(struct logship *l, struct source *s)
{
	pthread_mutex_lock(&l->lock);
	for (struct source **pp = &l->sources; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	pthread_mutex_unlock(&l->lock);
	if (s->wd >= 0)
		inotify_rm_watch(l->w[s->worker].ino, s->wd);
	_cleanup_free_ char *st = path_of(l, s->key, "json");
	_cleanup_free_ char *lk = path_of(l, s->key, "log");
	unlink(lk);
	unlink(st);
	source_free(s);
}

/* Ship one batch of s; true when there was something to do (so the caller loops again). */
static bool ship_one(struct logship *l, struct source *s)
{
	if (s->retry_at && proc_now_ms() < s->retry_at)
		return false;
	s->retry_at = 0;
	pthread_mutex_lock(&l->lock);
	_cleanup_json_ json_t *st = json_deep_copy(s->st); /* add() may change it meanwhile */
	pthread_mutex_unlock(&l->lock);
	if (s->wd < 0) {
		_cleanup_free_ char *p = read_path(l, s->key, st);
		s->wd = inotify_add_watch(l->w[s->worker].ino, p, IN_MODIFY | IN_CLOSE_WRITE);
	}
	const char *body = NULL;
	uint64_t end = 0;
	size_t count = 0, len = 0;
	bool gone = false;
	uint64_t off = (uint64_t)json_integer_value(json_object_get(st, "offset"));
	if (read_batch(&l->w[s->worker], s->key, st, &body, &len, &count, &end, &gone) < 0) {
		s->retry_at = proc_now_ms() + RETRY_MS;
		return false;
	}
	if (end == off) {
		if (gone)
			drop(l, s);
		else if (s->wd < 0) /* no file to watch yet */
			s->retry_at = proc_now_ms() + RETRY_MS;
		return gone;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *resp = NULL;
	int r = count ? l->cfg.send(l->cfg.userdata, s->worker, body, len, &resp, &err) : 0;
	if (r < 0) {
		s->retry_at = proc_now_ms() + (r == -ENOENT ? MISSING_MS : RETRY_MS);
		log_fields(LOG_LEVEL_DEBUG, "log batch not delivered", "stream",
			   json_string_value(json_object_get(st, "stream")), "error", err ? err->msg : "",
			   NULL);
		return false;
	}
	json_t *tok = json_object_get(resp, "token");
	uint64_t next = json_is_integer(tok) && (uint64_t)json_integer_value(tok) > end
			    ? (uint64_t)json_integer_value(tok)
			    : end;
	pthread_mutex_lock(&l->lock);
	json_object_set_new(s->st, "offset", json_integer((json_int_t)next));
	save(l, s, false, NULL);
	pthread_mutex_unlock(&l->lock);
	if (gone)
		drop(l, s);
	return true;
}

static void *ship_main(void *arg)
{
	struct worker *w = arg;
	struct logship *l = w->l;
	for (;;) {
		pthread_mutex_lock(&l->lock);
		bool closing = l->closing;
		size_t n = 0;
		for (struct source *s = l->sources; s; s = s->next)
			n++;
		struct source **list = xcalloc(n + 1, sizeof(*list));
		n = 0;
		for (struct source *s = l->sources; s; s = s->next)
			if (s->worker == w->idx)
				list[n++] = s;
		pthread_mutex_unlock(&l->lock);
		if (closing) {
			free(list);
			break;
		}
		bool busy = false;
		int64_t wake = -1;
		for (size_t i = 0; i < n; i++) {
			struct source *s = list[i];
			busy |= ship_one(l, s); /* s may be freed now */
		}
		pthread_mutex_lock(&l->lock);
		for (struct source *s = l->sources; s; s = s->next)
			if (s->worker == w->idx && s->retry_at && (wake < 0 || s->retry_at < wake))
				wake = s->retry_at;
		pthread_mutex_unlock(&l->lock);
		free(list);
		if (busy)
			continue;
		int timeout = wake < 0 ? -1 : (int)(wake - proc_now_ms() > 0 ? wake - proc_now_ms() : 0);
		struct pollfd pf[2] = { { w->ino, POLLIN, 0 }, { w->efd, POLLIN, 0 } };
		if (poll(pf, 2, timeout) > 0) {
			char buf[4096];
			if (pf[0].revents && read(w->ino, buf, sizeof(buf)) < 0) {
				/* drained enough: the loop re-reads every file anyway */
			}
			uint64_t v;
			if (pf[1].revents && read(w->efd, &v, sizeof(v)) < 0) {
				/* nothing to do */
			}
		}
	}
	return NULL;
}

/* ---- open / close ---- */

static void load(struct logship *l)
{
	DIR *d = opendir(l->dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n <= 5 || !streq(de->d_name + n - 5, ".json"))
			continue;
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		_cleanup_free_ char *p = xasprintf("%s/%s", l->dir, de->d_name);
		if (fs_read_file_at(AT_FDCWD, p, 1 << 20, &sb, NULL) < 0)
			continue;
		json_t *st = json_loadb(sb.buf, sb.len, 0, NULL);
		if (!json_is_string(json_object_get(st, "group")) ||
		    !json_is_string(json_object_get(st, "stream")) ||
		    !json_is_string(json_object_get(st, "path")) ||
		    !json_is_integer(json_object_get(st, "offset"))) {
			json_decref(st);
			continue;
		}
		struct source *s = xcalloc(1, sizeof(*s));
		s->key = xstrndup(de->d_name, n - 5);
		s->worker = worker_of(s->key);
		s->st = st;
		s->wd = -1;
		s->next = l->sources;
		l->sources = s;
	}
	closedir(d);
}

int agent_logship_open(const struct logship_config *cfg, struct logship **ret, struct berth_error **err)
{
	int r = fs_mkdir_p(cfg->dir, 0700, err);
	if (r < 0)
		return r;
	struct logship *l = xcalloc(1, sizeof(*l));
	l->cfg = *cfg;
	l->dir = xstrdup(cfg->dir);
	pthread_mutex_init(&l->lock, NULL);
	for (unsigned i = 0; i < LOGSHIP_THREADS; i++)
		l->w[i] = (struct worker){
			.l = l, .idx = i, .ino = -1, .efd = -1, .raw = STRBUF_INIT, .body = STRBUF_INIT
		};
	for (unsigned i = 0; i < LOGSHIP_THREADS; i++) {
		l->w[i].ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		l->w[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (l->w[i].ino < 0 || l->w[i].efd < 0) {
			r = berth_error_errno(err, "inotify/eventfd for the log shipper");
			agent_logship_close(l);
			return r;
		}
	}
	load(l);
	for (unsigned i = 0; i < LOGSHIP_THREADS; i++) {
		if ((r = pthread_create(&l->w[i].thread, NULL, ship_main, &l->w[i])) != 0) {
			agent_logship_close(l);
			return berth_error_set(err, r, "start the log shipper");
		}
		l->w[i].running = true;
	}
	*ret = l;
	return 0;
}

struct logship *agent_logship_close(struct logship *l)
{
	if (!l)
		return NULL;
	pthread_mutex_lock(&l->lock);
	l->closing = true;
	pthread_mutex_unlock(&l->lock);
	kick(l);
	for (size_t i = 0; i < LOGSHIP_THREADS; i++)
		if (l->w[i].running)
			pthread_join(l->w[i].thread, NULL);
	for (struct source *s = l->sources, *n; s; s = n) {
		n = s->next;
		source_free(s);
	}
	for (size_t i = 0; i < LOGSHIP_THREADS; i++) {
		if (l->w[i].ino >= 0)
			close(l->w[i].ino);
		if (l->w[i].efd >= 0)
			close(l->w[i].efd);
		strbuf_release(&l->w[i].raw);
		strbuf_release(&l->w[i].body);
	}
	pthread_mutex_destroy(&l->lock);
	free(l->dir);
	free(l);
	return NULL;
}
