/*
 * wire.h - the agent side of log ingest, without JSON per event:
 *
 *  - the body of POST /agent/v1/logs with Content-Type LOGS_WIRE_TYPE: one
 *    JSON object on the first line (logGroupName, logStreamName,
 *    createGroup, end), then the events back to back until the end of the
 *    body, each a 20-byte little-endian header (u64 byte offset in the
 *    source, i64 timestamp in ms, u32 length) and the message bytes. The
 *    server reads the messages in place (no unescaping, no copy);
 *  - a reader of the engine's json-file lines ({"log":"...","stream":...,
 *    "time":"..."}) that unescapes "log" into a buffer without building a
 *    JSON tree (the shipper's per-line cost).
 *
 * Both are pure; tests/unit/test-logs-wire.c, tests/fuzz/fuzz-logs-wire.c.
 */
#ifndef BERTH_LOGS_WIRE_H
#define BERTH_LOGS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "logs/logstore.h"

#define LOGS_WIRE_TYPE      "application/x-berth-logs"
#define LOGS_WIRE_EVENT_HDR 20

/* Append one event (len <= UINT32_MAX) to a body being built. */
void logs_wire_add(struct strbuf *sb, uint64_t offset, int64_t timestamp, const char *msg, size_t len);
/*
 * The same without copying a message built elsewhere: logs_wire_begin
 * reserves an event's header and returns where it starts; the caller
 * appends the message to sb (e.g. logs_jsonfile_append), trims it as it
 * likes, then logs_wire_end fills the header (the message is what lies past
 * the header up to sb->len).
 */
size_t logs_wire_begin(struct strbuf *sb);
void logs_wire_end(struct strbuf *sb, size_t start, uint64_t offset, int64_t timestamp);

struct logs_wire_batch {
	const char *head; /* the first line (JSON text, not NUL-terminated) */
	size_t head_len;
	struct logs_in_event *ev; /* messages point into the body */
	uint64_t *offsets;
	size_t n;
};

/*
 * Split body (len bytes) into its head line and at most max_events events
 * (allocated into b; free with logs_wire_batch_done). NULL when well formed,
 * else a message saying what is wrong (b is then empty). Empty messages are
 * refused, as PutLogEvents does.
 */
const char *logs_wire_parse(const char *body, size_t len, size_t max_events, struct logs_wire_batch *b);
void logs_wire_batch_done(struct logs_wire_batch *b);

/*
 * One json-file line (without its newline): the "log" string unescaped into
 * msg (reset first) and "time" as ms since the epoch in *ret_ts (0 when
 * absent). 1: parsed; 0: the line has no "log" string; -1: not the plain
 * shape this reader takes (nested values, \u0000, bad escapes, trailing
 * bytes...): the caller falls back to a full JSON parser.
 */
int logs_jsonfile_line(const char *line, size_t len, struct strbuf *msg, int64_t *ret_ts);
/* The same appending the message to msg (left as it was unless 1 is returned). */
int logs_jsonfile_append(const char *line, size_t len, struct strbuf *msg, int64_t *ret_ts);

#endif
