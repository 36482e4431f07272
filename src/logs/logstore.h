/*
 * logstore.h - log events on disk: one directory per (group, stream) holding
 * append-only segment files of checksummed batches, an in-memory index of
 * the batches for sequence and time-range reads, retention and compaction.
 * The server's CloudWatch Logs API (server/logs.c) keeps group and stream
 * metadata in its store and the events here. See docs/logs.md.
 *
 * Layout: DIR/<32 hex of sha256(group NUL stream)>/
 *           name                     "group\nstream"
 *           <16 hex first seq>.seg   segments, rolled at opts.segment_bytes
 * A batch (one append) is one frame: a header (magic, lengths, CRC-32 of the
 * rest, first sequence number, count, min/max timestamp, the caller's token)
 * then per event: timestamp, ingestion time (ms), length, bytes. One write()
 * per append, so a crash leaves at most a torn last frame, which the next
 * open of the stream truncates.
 *
 * Sequence numbers: every event of a stream gets the next number (0, 1, ...)
 * in append order; they never change (expiry and compaction only remove
 * events), so they make stable read positions (GetLogEvents' tokens).
 *
 * Token: an opaque 64-bit value stored with each batch; logs_stream_stat()
 * returns the last batch's. The server keeps the agent's byte offset there,
 * so deduplication of retried batches is atomic with the append.
 *
 * Threads: any number; one mutex per stream (appends, reads of one batch at a
 * time, expiry and compaction of that stream serialise), one for the table.
 * Events are in the page cache when append returns (a process crash loses
 * nothing, a machine crash may lose the last seconds), or on disk with
 * opts.fsync (one fdatasync per append: concurrent appends to different
 * streams share the file system's journal commit).
 */
#ifndef BERTH_LOGS_LOGSTORE_H
#define BERTH_LOGS_LOGSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Largest event message (CloudWatch: 256 KiB including 26 bytes of overhead). */
#define LOGS_MAX_EVENT_BYTES  (256 * 1024)
/* Largest batch accepted by logs_append (CloudWatch: 10,000 events, 1 MiB). */
#define LOGS_MAX_BATCH_EVENTS 10000
#define LOGS_MAX_BATCH_BYTES  (1 << 20)
#define LOGS_DEFAULT_SEGMENT  (64 << 20)

struct logs_store;

struct logs_store_opts {
	size_t segment_bytes; /* roll a segment past this size; 0: LOGS_DEFAULT_SEGMENT */
	bool fsync;           /* appends return once their frame is on disk (fdatasync) */
};

/* Open (creating) dir. */
int logs_store_open(const char *dir, const struct logs_store_opts *opts, struct logs_store **ret,
		    struct berth_error **err);
/* Accepts NULL; returns NULL. No call may be in flight. */
struct logs_store *logs_store_close(struct logs_store *s);

struct logs_in_event {
	int64_t timestamp; /* ms since the epoch */
	const char *message;
	size_t len; /* 1..LOGS_MAX_EVENT_BYTES */
};

/*
 * Append n (1..LOGS_MAX_BATCH_EVENTS, at most LOGS_MAX_BATCH_BYTES of
 * messages) events with ingestion time ingest_ms and token; *ret_first_seq
 * (may be NULL) the first one's sequence number. -EINVAL for a bad batch.
 */
int logs_append(struct logs_store *s, const char *group, const char *stream, const struct logs_in_event *ev,
		size_t n, int64_t ingest_ms, uint64_t token, uint64_t *ret_first_seq,
		struct berth_error **err);

/*
 * Exactly-once append for a source that numbers its events (the agent: byte
 * offsets in a container's log). offsets[i] is event i's position, end the
 * position after the batch. Under the stream's lock: with T the stream's
 * last token, nothing happens when end <= T (a retried batch); otherwise the
 * events with offsets[i] >= T are appended (none is fine) with token end.
 * *ret_taken: events appended; *ret_token: the stream's token after the call.
 */
int logs_append_from(struct logs_store *s, const char *group, const char *stream,
		     const struct logs_in_event *ev, const uint64_t *offsets, size_t n, int64_t ingest_ms,
		     uint64_t end, size_t *ret_taken, uint64_t *ret_token, struct berth_error **err);

struct logs_event {
	uint64_t seq;
	int64_t timestamp, ingestion;
	const char *message; /* not NUL-terminated; valid during the callback */
	size_t len;
};

/* Return 0 to go on, 1 to stop (the event was taken), 2 to stop (it was not). */
typedef int (*logs_event_fn)(void *userdata, const struct logs_event *ev);

struct logs_read {
	uint64_t seq;             /* forward: first seq read; backward: read before it (UINT64_MAX: end) */
	bool backward;            /* newest first */
	int64_t start_ms, end_ms; /* timestamp >= start (0: any) and < end (0: any) */
	int64_t expired_before;   /* events with timestamp < this are gone (retention); 0: none */
};

/*
 * Call fn for each event of the stream in seq order (or reverse) within the
 * bounds until it returns nonzero or the stream ends. *ret_seq: for forward
 * reads the seq after the last event taken (q->seq when none), for backward
 * reads the seq of the last event taken (q->seq when none). A stream never
 * written reads as empty.
 */
int logs_read_stream(struct logs_store *s, const char *group, const char *stream, const struct logs_read *q,
		     logs_event_fn fn, void *userdata, uint64_t *ret_seq, struct berth_error **err);

struct logs_stream_stat {
	uint64_t next_seq; /* events ever appended */
	uint64_t token;    /* the last batch's token (0 when none) */
	uint64_t stored_bytes;
	int64_t first_ts, last_ts, last_ingest; /* 0 when empty */
	bool time_ordered;                      /* every batch's timestamps >= the previous batch's */
};
int logs_stream_stat(struct logs_store *s, const char *group, const char *stream,
		     struct logs_stream_stat *ret, struct berth_error **err);

/* Remove the stream's events and directory (a later append starts at seq 0 again). */
int logs_stream_delete(struct logs_store *s, const char *group, const char *stream, struct berth_error **err);

/*
 * Retention: drop every segment whose events are all older than before_ms,
 * then, when more than half of the remaining sealed bytes are expired or the
 * sealed segments hold more than 64 small batches per segment, rewrite the
 * sealed segments without expired events and with batches merged (up to
 * LOGS_MAX_BATCH_BYTES each). Sequence numbers are kept. *ret_freed: bytes
 * removed (may be NULL).
 */
int logs_stream_expire(struct logs_store *s, const char *group, const char *stream, int64_t before_ms,
		       uint64_t *ret_freed, struct berth_error **err);
/* Rewrite the sealed segments now (as expire does when it decides to). */
int logs_stream_compact(struct logs_store *s, const char *group, const char *stream, int64_t before_ms,
			struct berth_error **err);

#endif
