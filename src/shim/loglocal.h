/*
 * loglocal.h - docker's `local` log driver file format: a sequence of frames
 *
 *     uint32 big-endian N | N bytes protobuf LogEntry | uint32 big-endian N
 *
 * LogEntry { string source = 1; int64 time_nano = 2; bytes line = 3;
 * bool partial = 4; ... } (docker's api/types/plugins/logdriver). Lines are
 * stored without their newline; partial is set for pieces of a longer line
 * (16 KiB split) and a last line without a newline. Readers add the newline
 * back to complete lines. Rotated files are <path>.1 ... and, with compress,
 * <path>.1.gz ... (gzip).
 *
 * A hand-rolled codec: the format has four fields; unknown fields are
 * skipped on read (proto3 rules), so files written by dockerd also decode.
 */
#ifndef BERTH_SHIM_LOGLOCAL_H
#define BERTH_SHIM_LOGLOCAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/strbuf.h"

/* Largest frame payload accepted on read (docker's local driver writes at most 1 MB). */
#define LOGLOCAL_MAX_FRAME (1 << 20)

/* Defaults of docker's local driver. */
#define LOGLOCAL_DEFAULT_MAX_SIZE (20LL << 20)
#define LOGLOCAL_DEFAULT_MAX_FILE 5

struct loglocal_entry {
	int stream;       /* 1 stdout, 2 stderr (anything but "stderr" reads as stdout) */
	int64_t time_ns;  /* unix ns */
	const char *line; /* points into the decoded buffer; not NUL-terminated */
	size_t len;
	bool partial;
};

/* Append one frame to sb. */
void shim_loglocal_encode(struct strbuf *sb, int stream, int64_t time_ns, const char *line, size_t len,
			  bool partial);

/*
 * Decode the frame at buf[0..len). Returns the frame's size (> 0) and fills
 * *ret (pointing into buf), 0 when buf holds only part of a frame, or
 * -EBADMSG for a corrupt frame (bad lengths, bad protobuf, trailer mismatch).
 */
ssize_t shim_loglocal_decode(const void *buf, size_t len, struct loglocal_entry *ret);

/*
 * gzip src into dst (written to dst.tmp, renamed) and unlink src. Runs in a
 * forked child of the single-threaded shim; returns 0 or -errno.
 */
int shim_loglocal_compress_file(const char *src, const char *dst);

#endif
