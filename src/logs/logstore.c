/*
 * logstore.c - segment files of checksummed batches per stream (logstore.h).
 *
 * The index is the list of frame headers, rebuilt on a stream's first use by
 * reading only the headers (one pread each) and verifying the last frame's
 * CRC; it is what makes time-range and sequence reads skip whole batches.
 * Trade-off: a stream of many tiny batches has a large index until
 * compaction merges them (the agent batches, so this is rare).
 *
 * Compaction writes NAME.seg.new files, then a marker file, then replaces the
 * old segments; an interrupted compaction is rolled back (no marker) or
 * finished (marker) by the next load.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/strbuf.h"
#include "logs/logstore.h"

#define FRAME_MAGIC           0x31474c42u /* "BLG1" */
#define EV_HDR                20          /* i64 timestamp, i64 ingestion, u32 length */
#define N_BUCKETS             1024
#define FRAME_SPARES          4         /* frame buffers kept for appends */
#define FRAME_SPARE_MAX       (2 << 20) /* ... when no larger than this */
#define COMPACT_MARK          "compact.done"
/* Sealed segments holding more batches than this per segment get merged. */
#define SMALL_BATCHES_PER_SEG 64

struct frame_hdr {
	uint32_t magic, len, crc, count; /* len: payload bytes; crc over count..token and the payload */
	uint64_t first_seq;
	int64_t min_ts, max_ts, ingest;
	uint64_t token;
};
_Static_assert(sizeof(struct frame_hdr) == 56, "frame header layout");

struct batch {
	uint64_t first_seq, seg, off, token;
	uint32_t count, len;
	int64_t min_ts, max_ts, ingest;
};

struct lstream {
	char *group, *name, *dir;
	pthread_mutex_t lock;
	bool loaded;
	uint64_t *segs; /* first seq of each segment, ascending */
	uint64_t *seg_size;
	size_t n_segs;
	struct batch *b;
	size_t n_b, cap_b;
	uint64_t next_seq;
	uint64_t gen; /* bumped when files are rewritten or removed */
	struct lstream *next;
};

struct logs_store {
	char *dir;
	size_t segment_bytes;
	bool fsync;
	pthread_mutex_t lock;
	struct lstream *buckets[N_BUCKETS];
	/* frame buffers kept between appends (a fresh 1 MiB buffer per append cost its page faults) */
	struct strbuf *spare[FRAME_SPARES];
	size_t n_spare;
};

/* ---- the table ---- */

static char *stream_dirname(const char *group, const char *stream)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, group);
	strbuf_addch(&sb, '\0');
	strbuf_addstr(&sb, stream);
	char hex[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, sb.buf, sb.len, hex);
	return xstrndup(hex + strlen("sha256:"), 32);
}

static struct lstream *get_stream(struct logs_store *s, const char *group, const char *stream)
{
	_cleanup_free_ char *dn = stream_dirname(group, stream);
	unsigned h = (unsigned)strtoul((char[9]){ dn[0], dn[1], dn[2], dn[3], dn[4], dn[5], dn[6], dn[7], 0 },
				       NULL, 16) %
		     N_BUCKETS;
	pthread_mutex_lock(&s->lock);
	struct lstream *st = s->buckets[h];
	while (st && !(streq(st->group, group) && streq(st->name, stream)))
		st = st->next;
	if (!st) {
		st = xcalloc(1, sizeof(*st));
		st->group = xstrdup(group);
		st->name = xstrdup(stream);
		st->dir = xasprintf("%s/%s", s->dir, dn);
		pthread_mutex_init(&st->lock, NULL);
		st->next = s->buckets[h];
		s->buckets[h] = st;
	}
	pthread_mutex_unlock(&s->lock);
	return st;
}

static void stream_reset(struct lstream *st)
{
	free(st->segs), free(st->seg_size), free(st->b);
	st->segs = st->seg_size = NULL;
	st->b = NULL;
	st->n_segs = st->n_b = st->cap_b = 0;
	st->next_seq = 0;
	st->gen++;
}

int logs_store_open(const char *dir, const struct logs_store_opts *opts, struct logs_store **ret,
		    struct berth_error **err)
{
	int r = fs_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	struct logs_store *s = xcalloc(1, sizeof(*s));
	s->dir = xstrdup(dir);
	s->segment_bytes = opts && opts->segment_bytes ? opts->segment_bytes : LOGS_DEFAULT_SEGMENT;
	s->fsync = opts && opts->fsync;
	pthread_mutex_init(&s->lock, NULL);
	*ret = s;
	return 0;
}

struct logs_store *logs_store_close(struct logs_store *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < N_BUCKETS; i++)
		for (struct lstream *st = s->buckets[i], *n; st; st = n) {
			n = st->next;
			stream_reset(st);
			pthread_mutex_destroy(&st->lock);
			free(st->group), free(st->name), free(st->dir);
			free(st);
		}
	for (size_t i = 0; i < s->n_spare; i++) {
		strbuf_release(s->spare[i]);
		free(s->spare[i]);
	}
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
	return NULL;
}

static struct strbuf *frame_take(struct logs_store *s)
{
	pthread_mutex_lock(&s->lock);
	struct strbuf *sb = s->n_spare ? s->spare[--s->n_spare] : NULL;
	pthread_mutex_unlock(&s->lock);
	if (!sb) {
		sb = xmalloc(sizeof(*sb));
		strbuf_init(sb, 0);
	}
	strbuf_reset(sb);
	return sb;
}

static void frame_give(struct logs_store *s, struct strbuf *sb)
{
	pthread_mutex_lock(&s->lock);
	if (sb->alloc <= FRAME_SPARE_MAX && s->n_spare < FRAME_SPARES) {
		s->spare[s->n_spare++] = sb;
		sb = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (sb) {
		strbuf_release(sb);
		free(sb);
	}
}

/* ---- frames ---- */

static uint32_t frame_crc(const struct frame_hdr *h, const void *payload, size_t len)
{
	uLong c = crc32(0L, Z_NULL, 0);
	c = crc32(c, (const Bytef *)&h->count, sizeof(*h) - offsetof(struct frame_hdr, count));
	c = crc32(c, payload, (uInt)len);
	return (uint32_t)c;
}

static char *seg_path(const struct lstream *st, uint64_t seg, const char *suffix)
{
	return xasprintf("%s/%016llx.seg%s", st->dir, (unsigned long long)seg, suffix);
}

/* The index entry of frame h at off in segment seg. */
static struct batch batch_of(const struct frame_hdr *h, uint64_t seg, uint64_t off)
{
	return (struct batch){ .first_seq = h->first_seq,
			       .seg = seg,
			       .off = off,
			       .token = h->token,
			       .count = h->count,
			       .len = h->len,
			       .min_ts = h->min_ts,
			       .max_ts = h->max_ts,
			       .ingest = h->ingest };
}

static void index_add(struct lstream *st, const struct frame_hdr *h, uint64_t seg, uint64_t off)
{
	if (st->n_b == st->cap_b) {
		st->cap_b = st->cap_b ? st->cap_b * 2 : 16;
		st->b = xrealloc(st->b, st->cap_b * sizeof(*st->b));
	}
	st->b[st->n_b++] = batch_of(h, seg, off);
	st->next_seq = h->first_seq + h->count;
}

static void seg_add(struct lstream *st, uint64_t seg, uint64_t size)
{
	st->segs = xrealloc(st->segs, (st->n_segs + 1) * sizeof(*st->segs));
	st->seg_size = xrealloc(st->seg_size, (st->n_segs + 1) * sizeof(*st->seg_size));
	st->segs[st->n_segs] = seg;
	st->seg_size[st->n_segs++] = size;
}

/* Read the frame headers of one segment into the index; truncate a torn or corrupt tail. */
static int load_segment(struct lstream *st, uint64_t seg, bool last, struct berth_error **err)
{
	_cleanup_free_ char *p = seg_path(st, seg, "");
	_cleanup_close_ int fd = open(p, O_RDWR | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0)
		return berth_error_errno(err, "open '%s'", p);
	uint64_t off = 0, size = (uint64_t)sb.st_size;
	while (off + sizeof(struct frame_hdr) <= size) {
		struct frame_hdr h;
		if (pread(fd, &h, sizeof(h), (off_t)off) != (ssize_t)sizeof(h))
			break;
		if (h.magic != FRAME_MAGIC || off + sizeof(h) + h.len > size || h.first_seq < st->next_seq ||
		    h.count > LOGS_MAX_BATCH_EVENTS)
			break;
		bool tail = off + sizeof(h) + h.len == size;
		if (last && tail) {
			_cleanup_free_ char *payload = xmalloc(h.len ? h.len : 1);
			if (pread(fd, payload, h.len, (off_t)(off + sizeof(h))) != (ssize_t)h.len ||
			    frame_crc(&h, payload, h.len) != h.crc)
				break;
		}
		index_add(st, &h, seg, off);
		off += sizeof(h) + h.len;
	}
	if (off != size && ftruncate(fd, (off_t)off) < 0)
		return berth_error_errno(err, "truncate '%s'", p);
	seg_add(st, seg, off);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Finish (marker present) or roll back an interrupted compaction. */
static void recover_compaction(struct lstream *st, DIR *d)
{
	_cleanup_free_ char *mark = xasprintf("%s/%s", st->dir, COMPACT_MARK);
	bool finish = access(mark, F_OK) == 0;
	struct dirent *de;
	rewinddir(d);
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		_cleanup_free_ char *p = xasprintf("%s/%s", st->dir, de->d_name);
		if (finish && n > 4 && streq(de->d_name + n - 4, ".seg"))
			unlink(p);
		else if (!finish && n > 8 && streq(de->d_name + n - 8, ".seg.new"))
			unlink(p);
	}
	if (finish) {
		rewinddir(d);
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name);
			if (n <= 8 || !streq(de->d_name + n - 8, ".seg.new"))
				continue;
			_cleanup_free_ char *p = xasprintf("%s/%s", st->dir, de->d_name);
			_cleanup_free_ char *q = xstrndup(p, strlen(p) - 4);
			rename(p, q);
		}
		unlink(mark);
	}
	rewinddir(d);
}

static int load(struct lstream *st, struct berth_error **err)
{
	if (st->loaded)
		return 0;
	DIR *d = opendir(st->dir);
	if (!d) {
		if (errno != ENOENT)
			return berth_error_errno(err, "open '%s'", st->dir);
		st->loaded = true;
		return 0;
	}
	recover_compaction(st, d);
	uint64_t *segs = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		unsigned long long v = strtoull(de->d_name, &end, 16);
		if (end != de->d_name + 16 || !streq(end, ".seg"))
			continue;
		segs = xrealloc(segs, (n + 1) * sizeof(*segs));
		segs[n++] = v;
	}
	closedir(d);
	if (n > 1)
		qsort(segs, n, sizeof(*segs), cmp_u64);
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++)
		r = load_segment(st, segs[i], i + 1 == n, err);
	free(segs);
	if (r < 0) {
		stream_reset(st);
		return r;
	}
	st->loaded = true;
	return 0;
}

/* ---- append ---- */

static void put_event(struct strbuf *sb, int64_t ts, int64_t ingest, const char *msg, size_t len)
{
	uint32_t l = (uint32_t)len;
	strbuf_add(sb, &ts, 8);
	strbuf_add(sb, &ingest, 8);
	strbuf_add(sb, &l, 4);
	strbuf_add(sb, msg, len);
}

/* Write one frame (header at sb->buf, payload after it) to the stream's current segment. */
static int write_frame(struct logs_store *s, struct lstream *st, struct strbuf *sb, struct berth_error **err)
{
	struct frame_hdr *h = (struct frame_hdr *)sb->buf;
	h->magic = FRAME_MAGIC;
	h->len = (uint32_t)(sb->len - sizeof(*h));
	h->crc = frame_crc(h, sb->buf + sizeof(*h), h->len);
	int r;
	if (st->n_segs == 0) {
		if ((r = fs_mkdir_p(st->dir, 0700, err)) < 0)
			return r;
		_cleanup_free_ char *np = xasprintf("%s/name", st->dir);
		_cleanup_free_ char *nm = xasprintf("%s\n%s\n", st->group, st->name);
		if ((r = fs_write_file_atomic(np, nm, strlen(nm), 0600, err)) < 0)
			return r;
	}
	if (st->n_segs == 0 || st->seg_size[st->n_segs - 1] >= s->segment_bytes)
		seg_add(st, h->first_seq, 0);
	uint64_t seg = st->segs[st->n_segs - 1], off = st->seg_size[st->n_segs - 1];
	_cleanup_free_ char *p = seg_path(st, seg, "");
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "open '%s'", p);
	if ((r = (int)pwrite(fd, sb->buf, sb->len, (off_t)off)) != (int)sb->len) {
		int e = r < 0 ? errno : ENOSPC;
		if (ftruncate(fd, (off_t)off) < 0) {
			/* the torn frame is dropped by the next load */
		}
		return berth_error_set(err, e, "write '%s'", p);
	}
	if (s->fsync && fdatasync(fd) < 0) {
		int e = errno;
		if (ftruncate(fd, (off_t)off) < 0) {
			/* the frame may or may not be on disk: the next load checks it */
		}
		return berth_error_set(err, e, "fdatasync '%s'", p);
	}
	if (s->fsync && off == 0) { /* a new segment: its directory entry too */
		_cleanup_close_ int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0)
			return berth_error_errno(err, "fsync '%s'", st->dir);
	}
	st->seg_size[st->n_segs - 1] = off + sb->len;
	index_add(st, h, seg, off);
	return 0;
}

static int check_batch(const struct logs_in_event *ev, size_t n, struct berth_error **err)
{
	if (n > LOGS_MAX_BATCH_EVENTS)
		return berth_error_msg(err, EINVAL, "a batch holds at most %d events", LOGS_MAX_BATCH_EVENTS);
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].len == 0 || ev[i].len > LOGS_MAX_EVENT_BYTES)
			return berth_error_msg(err, EINVAL, "event %zu: message of %zu bytes (1 to %d)", i,
					       ev[i].len, LOGS_MAX_EVENT_BYTES);
		total += ev[i].len;
	}
	if (total > LOGS_MAX_BATCH_BYTES)
		return berth_error_msg(err, EINVAL, "batch of %zu bytes (at most %d)", total,
				       LOGS_MAX_BATCH_BYTES);
	return 0;
}

/* One frame of ev[0..n) (n may be 0: the token alone). Locked, loaded. */
static int append_locked(struct logs_store *s, struct lstream *st, const struct logs_in_event *ev, size_t n,
			 int64_t ingest_ms, uint64_t token, struct berth_error **err)
{
	size_t total = sizeof(struct frame_hdr);
	for (size_t i = 0; i < n; i++)
		total += EV_HDR + ev[i].len;
	struct strbuf *sb = frame_take(s);
	strbuf_grow(sb, total);
	struct frame_hdr h = {
		.count = (uint32_t)n, .ingest = ingest_ms, .token = token, .first_seq = st->next_seq
	};
	for (size_t i = 0; i < n; i++) {
		h.min_ts = i == 0 || ev[i].timestamp < h.min_ts ? ev[i].timestamp : h.min_ts;
		h.max_ts = i == 0 || ev[i].timestamp > h.max_ts ? ev[i].timestamp : h.max_ts;
	}
	char *p = sb->buf;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	for (size_t i = 0; i < n; i++) { /* put_event's layout, filled in place */
		uint32_t l = (uint32_t)ev[i].len;
		memcpy(p, &ev[i].timestamp, 8);
		memcpy(p + 8, &ingest_ms, 8);
		memcpy(p + 16, &l, 4);
		memcpy(p + EV_HDR, ev[i].message, l);
		p += EV_HDR + l;
	}
	strbuf_setlen(sb, total);
	int r = write_frame(s, st, sb, err);
	frame_give(s, sb);
	return r;
}

int logs_append(struct logs_store *s, const char *group, const char *stream, const struct logs_in_event *ev,
		size_t n, int64_t ingest_ms, uint64_t token, uint64_t *ret_first_seq,
		struct berth_error **err)
{
	int r = check_batch(ev, n, err);
	if (r < 0)
		return r;
	if (n == 0)
		return berth_error_msg(err, EINVAL, "a batch holds at least one event");
	struct lstream *st = get_stream(s, group, stream);
	pthread_mutex_lock(&st->lock);
	uint64_t first = st->next_seq;
	if ((r = load(st, err)) >= 0) {
		first = st->next_seq;
		r = append_locked(s, st, ev, n, ingest_ms, token, err);
	}
	pthread_mutex_unlock(&st->lock);
	if (r >= 0 && ret_first_seq)
		*ret_first_seq = first;
	return r;
}

int logs_append_from(struct logs_store *s, const char *group, const char *stream,
		     const struct logs_in_event *ev, const uint64_t *offsets, size_t n, int64_t ingest_ms,
		     uint64_t end, size_t *ret_taken, uint64_t *ret_token, struct berth_error **err)
{
	int r = check_batch(ev, n, err);
	if (r < 0)
		return r;
	struct lstream *st = get_stream(s, group, stream);
	pthread_mutex_lock(&st->lock);
	size_t k = 0;
	uint64_t token = 0;
	if ((r = load(st, err)) >= 0) {
		token = st->n_b ? st->b[st->n_b - 1].token : 0;
		if (end > token) {
			while (k < n && offsets[k] < token)
				k++;
			r = append_locked(s, st, ev + k, n - k, ingest_ms, end, err);
			if (r >= 0)
				token = end;
			k = n - k;
		} else {
			k = 0;
		}
	}
	pthread_mutex_unlock(&st->lock);
	if (r >= 0) {
		if (ret_taken)
			*ret_taken = k;
		if (ret_token)
			*ret_token = token;
	}
	return r;
}

/* ---- reads ---- */

/* Index of the first batch whose range ends after seq (n_b when none). Locked. */
static size_t batch_at(const struct lstream *st, uint64_t seq)
{
	size_t lo = 0, hi = st->n_b;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st->b[mid].first_seq + st->b[mid].count <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* How many batches start before seq. Locked. */
static size_t batches_before(const struct lstream *st, uint64_t seq)
{
	size_t lo = 0, hi = st->n_b;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st->b[mid].first_seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct reader {
	struct lstream *st;
	uint64_t gen, seg;
	int fd;
};

/* The payload of batch i into buf. Locked. */
static int read_batch(struct reader *rd, size_t i, struct strbuf *buf, struct berth_error **err)
{
	struct lstream *st = rd->st;
	const struct batch *b = &st->b[i];
	if (rd->fd < 0 || rd->gen != st->gen || rd->seg != b->seg) {
		if (rd->fd >= 0)
			close(rd->fd);
		_cleanup_free_ char *p = seg_path(st, b->seg, "");
		rd->fd = open(p, O_RDONLY | O_CLOEXEC);
		if (rd->fd < 0)
			return berth_error_errno(err, "open '%s'", p);
		rd->gen = st->gen, rd->seg = b->seg;
	}
	strbuf_reset(buf);
	strbuf_grow(buf, b->len);
	if (pread(rd->fd, buf->buf, b->len, (off_t)(b->off + sizeof(struct frame_hdr))) != (ssize_t)b->len)
		return berth_error_msg(err, EIO, "read segment %016llx of '%s': short read",
				       (unsigned long long)b->seg, st->dir);
	strbuf_setlen(buf, b->len);
	return 0;
}

/* Decode the events of a payload; NULL-terminated positions into ev (count entries). */
static int decode(const struct strbuf *buf, uint32_t count, uint64_t first, struct logs_event *ev)
{
	size_t off = 0;
	for (uint32_t i = 0; i < count; i++) {
		if (off + EV_HDR > buf->len)
			return -EIO;
		uint32_t l;
		memcpy(&ev[i].timestamp, buf->buf + off, 8);
		memcpy(&ev[i].ingestion, buf->buf + off + 8, 8);
		memcpy(&l, buf->buf + off + 16, 4);
		off += EV_HDR;
		if (off + l > buf->len)
			return -EIO;
		ev[i].message = buf->buf + off;
		ev[i].len = l;
		ev[i].seq = first + i;
		off += l;
	}
	return 0;
}

static bool in_bounds(const struct logs_read *q, int64_t ts)
{
	return ts >= q->start_ms && (!q->end_ms || ts < q->end_ms) && ts >= q->expired_before;
}

static bool batch_skippable(const struct logs_read *q, const struct batch *b)
{
	return b->count == 0 || b->max_ts < q->start_ms || (q->end_ms && b->min_ts >= q->end_ms) ||
	       b->max_ts < q->expired_before;
}

int logs_read_stream(struct logs_store *s, const char *group, const char *stream, const struct logs_read *q,
		     logs_event_fn fn, void *userdata, uint64_t *ret_seq, struct berth_error **err)
{
	struct lstream *st = get_stream(s, group, stream);
	struct reader rd = { .st = st, .fd = -1 };
	_cleanup_strbuf_ struct strbuf buf = STRBUF_INIT;
	struct logs_event *ev = NULL;
	size_t ev_cap = 0;
	uint64_t pos = q->seq;
	uint64_t result = pos;
	int r = 0;
	bool stop = false;
	while (!stop) {
		pthread_mutex_lock(&st->lock);
		if ((r = load(st, err)) < 0) {
			pthread_mutex_unlock(&st->lock);
			break;
		}
		size_t i;
		if (!q->backward) {
			for (i = batch_at(st, pos); i < st->n_b && batch_skippable(q, &st->b[i]); i++)
				;
			if (i == st->n_b) {
				pthread_mutex_unlock(&st->lock);
				break;
			}
		} else {
			i = batches_before(st, pos);
			i = i == 0 ? SIZE_MAX : i - 1;
			while (i != SIZE_MAX && batch_skippable(q, &st->b[i]))
				i = i == 0 ? SIZE_MAX : i - 1;
			if (i == SIZE_MAX) {
				pthread_mutex_unlock(&st->lock);
				break;
			}
		}
		struct batch b = st->b[i];
		r = read_batch(&rd, i, &buf, err);
		pthread_mutex_unlock(&st->lock);
		if (r < 0)
			break;
		if (b.count > ev_cap)
			ev = xrealloc(ev, (ev_cap = b.count) * sizeof(*ev));
		if (decode(&buf, b.count, b.first_seq, ev) < 0) {
			r = berth_error_msg(err, EIO, "corrupt batch at seq %llu in '%s'",
					    (unsigned long long)b.first_seq, st->dir);
			break;
		}
		for (uint32_t k = 0; k < b.count && !stop; k++) {
			const struct logs_event *e = &ev[q->backward ? b.count - 1 - k : k];
			if ((!q->backward && e->seq < pos) || (q->backward && e->seq >= pos) ||
			    !in_bounds(q, e->timestamp))
				continue;
			int c = fn(userdata, e);
			if (c == 0 || c == 1)
				result = q->backward ? e->seq : e->seq + 1;
			stop = c != 0;
		}
		pos = q->backward ? b.first_seq : b.first_seq + b.count;
		if (q->backward && pos == 0)
			break;
	}
	if (rd.fd >= 0)
		close(rd.fd);
	free(ev);
	if (r >= 0 && ret_seq)
		*ret_seq = result;
	return r;
}

int logs_stream_stat(struct logs_store *s, const char *group, const char *stream,
		     struct logs_stream_stat *ret, struct berth_error **err)
{
	struct lstream *st = get_stream(s, group, stream);
	pthread_mutex_lock(&st->lock);
	int r = load(st, err);
	if (r >= 0) {
		struct logs_stream_stat o = { .next_seq = st->next_seq, .time_ordered = true };
		bool any = false;
		for (size_t i = 0; i < st->n_b; i++) {
			const struct batch *b = &st->b[i];
			o.stored_bytes += b->len + sizeof(struct frame_hdr);
			o.token = b->token;
			if (b->count == 0)
				continue;
			if (any && b->min_ts < o.last_ts)
				o.time_ordered = false;
			o.first_ts = !any || b->min_ts < o.first_ts ? b->min_ts : o.first_ts;
			o.last_ts = !any || b->max_ts > o.last_ts ? b->max_ts : o.last_ts;
			o.last_ingest = b->ingest > o.last_ingest ? b->ingest : o.last_ingest;
			any = true;
		}
		*ret = o;
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

int logs_stream_delete(struct logs_store *s, const char *group, const char *stream, struct berth_error **err)
{
	struct lstream *st = get_stream(s, group, stream);
	pthread_mutex_lock(&st->lock);
	int r = fs_rm_rf(st->dir, err);
	stream_reset(st);
	st->loaded = true;
	pthread_mutex_unlock(&st->lock);
	return r == -ENOENT ? 0 : r;
}

/* ---- retention and compaction ---- */

/* Drop the segments (all but the last) whose batches are all older than before. Locked. */
static uint64_t drop_expired_segments(struct lstream *st, int64_t before)
{
	uint64_t freed = 0;
	while (st->n_segs > 1) {
		uint64_t seg = st->segs[0];
		size_t k = 0;
		bool all_old = true;
		for (; k < st->n_b && st->b[k].seg == seg; k++)
			all_old &= st->b[k].count == 0 || st->b[k].max_ts < before;
		if (!all_old)
			break;
		_cleanup_free_ char *p = seg_path(st, seg, "");
		unlink(p);
		freed += st->seg_size[0];
		memmove(st->b, st->b + k, (st->n_b - k) * sizeof(*st->b));
		st->n_b -= k;
		memmove(st->segs, st->segs + 1, (st->n_segs - 1) * sizeof(*st->segs));
		memmove(st->seg_size, st->seg_size + 1, (st->n_segs - 1) * sizeof(*st->seg_size));
		st->n_segs--;
		st->gen++;
	}
	return freed;
}

struct compactor {
	struct logs_store *s;
	struct lstream *st;
	struct strbuf frame; /* header + payload being built */
	struct frame_hdr h;
	uint64_t seg, seg_size; /* output segment being written */
	int fd;
	uint64_t *segs, *sizes; /* output segments */
	size_t n_segs;
	struct batch *b; /* output index */
	size_t n_b, cap_b;
};

static int compactor_flush(struct compactor *c, struct berth_error **err)
{
	if (c->frame.len == 0)
		return 0;
	struct frame_hdr *h = (struct frame_hdr *)c->frame.buf;
	*h = c->h;
	h->magic = FRAME_MAGIC;
	h->len = (uint32_t)(c->frame.len - sizeof(*h));
	h->crc = frame_crc(h, c->frame.buf + sizeof(*h), h->len);
	if (c->fd < 0 || c->seg_size >= c->s->segment_bytes) {
		if (c->fd >= 0 && (fsync(c->fd) < 0 || close(c->fd) < 0))
			return berth_error_errno(err, "write compacted segment");
		c->seg = h->first_seq, c->seg_size = 0;
		_cleanup_free_ char *p = seg_path(c->st, c->seg, ".new");
		c->fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (c->fd < 0)
			return berth_error_errno(err, "open '%s'", p);
		c->segs = xrealloc(c->segs, (c->n_segs + 1) * sizeof(*c->segs));
		c->sizes = xrealloc(c->sizes, (c->n_segs + 1) * sizeof(*c->sizes));
		c->segs[c->n_segs] = c->seg;
		c->sizes[c->n_segs++] = 0;
	}
	if (fs_write_all(c->fd, c->frame.buf, c->frame.len) < 0)
		return berth_error_errno(err, "write compacted segment of '%s'", c->st->dir);
	if (c->n_b == c->cap_b)
		c->b = xrealloc(c->b, (c->cap_b = c->cap_b ? 2 * c->cap_b : 64) * sizeof(*c->b));
	c->b[c->n_b++] = batch_of(h, c->seg, c->seg_size);
	c->seg_size += c->frame.len;
	c->sizes[c->n_segs - 1] = c->seg_size;
	strbuf_reset(&c->frame);
	return 0;
}

static void compactor_start(struct compactor *c, uint64_t seq)
{
	c->h = (struct frame_hdr){ .first_seq = seq };
	strbuf_add(&c->frame, &c->h, sizeof(c->h));
}

static void compactor_add(struct compactor *c, const struct logs_event *e)
{
	struct frame_hdr *h = &c->h;
	h->min_ts = h->count == 0 || e->timestamp < h->min_ts ? e->timestamp : h->min_ts;
	h->max_ts = h->count == 0 || e->timestamp > h->max_ts ? e->timestamp : h->max_ts;
	h->ingest = e->ingestion > h->ingest ? e->ingestion : h->ingest;
	h->count++;
	put_event(&c->frame, e->timestamp, e->ingestion, e->message, e->len);
}

/* Copy every batch into new segments, merged, without events older than before. Locked. */
static int compact_locked(struct logs_store *s, struct lstream *st, int64_t before, struct berth_error **err)
{
	struct compactor c = { .s = s, .st = st, .frame = STRBUF_INIT, .fd = -1 };
	struct reader rd = { .st = st, .fd = -1 };
	_cleanup_strbuf_ struct strbuf buf = STRBUF_INIT;
	struct logs_event *ev = NULL;
	int r = 0;
	for (size_t i = 0; i < st->n_b && r >= 0; i++) {
		const struct batch *b = &st->b[i];
		if ((r = read_batch(&rd, i, &buf, err)) < 0)
			break;
		ev = xrealloc(ev, (b->count ? b->count : 1) * sizeof(*ev));
		if (decode(&buf, b->count, b->first_seq, ev) < 0) {
			r = berth_error_msg(err, EIO, "corrupt batch in '%s'", st->dir);
			break;
		}
		for (uint32_t k = 0; k < b->count && r >= 0; k++) {
			if (ev[k].timestamp < before)
				continue;
			bool contiguous = c.frame.len && c.h.first_seq + c.h.count == ev[k].seq;
			if (c.frame.len &&
			    (!contiguous || c.frame.len + ev[k].len + EV_HDR > LOGS_MAX_BATCH_BYTES ||
			     c.h.count >= LOGS_MAX_BATCH_EVENTS))
				r = compactor_flush(&c, err);
			if (r >= 0 && !c.frame.len)
				compactor_start(&c, ev[k].seq);
			if (r >= 0)
				compactor_add(&c, &ev[k]);
		}
		if (r >= 0 && i + 1 == st->n_b) {
			/* the last batch's token survives even when all its events expired */
			if (!c.frame.len)
				compactor_start(&c, b->first_seq + b->count);
			c.h.token = b->token;
			r = compactor_flush(&c, err);
		}
	}
	free(ev);
	if (rd.fd >= 0)
		close(rd.fd);
	if (c.fd >= 0 && (fsync(c.fd) < 0 || close(c.fd) < 0) && r >= 0)
		r = berth_error_errno(err, "write compacted segment of '%s'", st->dir);
	strbuf_release(&c.frame);
	_cleanup_free_ char *mark = xasprintf("%s/%s", st->dir, COMPACT_MARK);
	if (r >= 0)
		r = fs_write_file_atomic(mark, "", 0, 0600, err);
	DIR *d = opendir(st->dir);
	if (d) {
		recover_compaction(st, d); /* finishes with the marker, rolls back without */
		closedir(d);
	}
	if (r >= 0) {
		uint64_t next = st->next_seq;
		stream_reset(st);
		st->segs = c.segs, st->seg_size = c.sizes, st->n_segs = c.n_segs;
		st->b = c.b, st->n_b = c.n_b, st->cap_b = c.cap_b;
		st->next_seq = next;
	} else {
		free(c.segs), free(c.sizes), free(c.b);
	}
	return r;
}

int logs_stream_compact(struct logs_store *s, const char *group, const char *stream, int64_t before_ms,
			struct berth_error **err)
{
	struct lstream *st = get_stream(s, group, stream);
	pthread_mutex_lock(&st->lock);
	int r = load(st, err);
	if (r >= 0 && st->n_b)
		r = compact_locked(s, st, before_ms, err);
	pthread_mutex_unlock(&st->lock);
	return r;
}

int logs_stream_expire(struct logs_store *s, const char *group, const char *stream, int64_t before_ms,
		       uint64_t *ret_freed, struct berth_error **err)
{
	struct lstream *st = get_stream(s, group, stream);
	pthread_mutex_lock(&st->lock);
	int r = load(st, err);
	uint64_t freed = 0;
	if (r >= 0) {
		freed = drop_expired_segments(st, before_ms);
		uint64_t total = 0, expired = 0;
		for (size_t i = 0; i < st->n_b; i++) {
			total += st->b[i].len;
			if (st->b[i].count && st->b[i].max_ts < before_ms)
				expired += st->b[i].len;
		}
		bool many_small = st->n_b > SMALL_BATCHES_PER_SEG * st->n_segs &&
				  total / (st->n_b ? st->n_b : 1) < LOGS_MAX_BATCH_BYTES / 16;
		if (st->n_b && (expired * 2 > total || many_small)) {
			uint64_t before_bytes = 0, after_bytes = 0;
			for (size_t i = 0; i < st->n_segs; i++)
				before_bytes += st->seg_size[i];
			r = compact_locked(s, st, before_ms, err);
			for (size_t i = 0; r >= 0 && i < st->n_segs; i++)
				after_bytes += st->seg_size[i];
			if (r >= 0 && before_bytes > after_bytes)
				freed += before_bytes - after_bytes;
		}
	}
	pthread_mutex_unlock(&st->lock);
	if (r >= 0 && ret_freed)
		*ret_freed = freed;
	return r;
}
