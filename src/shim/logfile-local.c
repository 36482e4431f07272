/*
 * logfile-local.c - the `local` log driver's frame codec (see loglocal.h)
 * and the gzip step of its rotation. Decoding is defensive: every length is
 * checked against the buffer before use, so truncated or corrupt files give
 * 0 / -EBADMSG, never an overread.
 */
#include <fcntl.h>
#include <zlib.h>

#include "common/fs.h"
#include "common/util.h"
#include "shim/loglocal.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static void put_varint(struct strbuf *sb, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;
	do {
		b[n] = (unsigned char)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	strbuf_add(sb, b, n);
}

static void put_be32(struct strbuf *sb, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
			       (unsigned char)v };
	strbuf_add(sb, b, 4);
}

static uint32_t get_be32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void shim_loglocal_encode(struct strbuf *sb, int stream, int64_t time_ns, const char *line, size_t len,
			  bool partial)
{
	const char *src = stream == 2 ? "stderr" : "stdout";
	_cleanup_strbuf_ struct strbuf m = STRBUF_INIT;
	put_varint(&m, (1 << 3) | WT_LEN);
	put_varint(&m, strlen(src));
	strbuf_addstr(&m, src);
	put_varint(&m, (2 << 3) | WT_VARINT);
	put_varint(&m, (uint64_t)time_ns);
	put_varint(&m, (3 << 3) | WT_LEN);
	put_varint(&m, len);
	strbuf_add(&m, line, len);
	if (partial) {
		put_varint(&m, (4 << 3) | WT_VARINT);
		put_varint(&m, 1);
	}
	put_be32(sb, (uint32_t)m.len);
	strbuf_add(sb, m.buf, m.len);
	put_be32(sb, (uint32_t)m.len);
}

/* Read a varint at *p (< end); -EBADMSG when truncated or longer than 10 bytes. */
static int get_varint(const unsigned char **p, const unsigned char *end, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 70; shift += 7) {
		if (*p >= end)
			return -EBADMSG;
		unsigned char b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Parse one LogEntry message of n bytes. */
static int decode_entry(const unsigned char *p, size_t n, struct loglocal_entry *e)
{
	const unsigned char *end = p + n;
	*e = (struct loglocal_entry){ .stream = 1, .line = "" };
	while (p < end) {
		uint64_t key, v;
		if (get_varint(&p, end, &key) < 0)
			return -EBADMSG;
		unsigned field = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
		switch (wt) {
		case WT_VARINT:
			if (get_varint(&p, end, &v) < 0)
				return -EBADMSG;
			if (field == 2)
				e->time_ns = (int64_t)v;
			else if (field == 4)
				e->partial = v != 0;
			break;
		case WT_LEN:
			if (get_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			if (field == 1)
				e->stream = v == 6 && !memcmp(p, "stderr", 6) ? 2 : 1;
			else if (field == 3)
				e->line = (const char *)p, e->len = (size_t)v;
			p += v;
			break;
		case WT_I64:
		case WT_I32: {
			size_t skip = wt == WT_I64 ? 8 : 4;
			if ((size_t)(end - p) < skip)
				return -EBADMSG;
			p += skip;
			break;
		}
		default: return -EBADMSG;
		}
		if (field == 0)
			return -EBADMSG;
	}
	return 0;
}

ssize_t shim_loglocal_decode(const void *buf, size_t len, struct loglocal_entry *ret)
{
	const unsigned char *p = buf;
	if (len < 4)
		return 0;
	uint32_t n = get_be32(p);
	if (n > LOGLOCAL_MAX_FRAME)
		return -EBADMSG;
	if (len < (size_t)n + 8)
		return 0;
	if (get_be32(p + 4 + n) != n)
		return -EBADMSG;
	struct loglocal_entry e;
	if (decode_entry(p + 4, n, &e) < 0)
		return -EBADMSG;
	*ret = e;
	return (ssize_t)n + 8;
}

int shim_loglocal_compress_file(const char *src, const char *dst)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return negative_errno();
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", dst);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0)
		return negative_errno();
	gzFile gz = gzdopen(out, "wb6");
	if (!gz) {
		close(out);
		(void)unlink(tmp);
		return -ENOMEM;
	}
	char buf[64 * 1024];
	ssize_t n;
	int r = 0;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (gzwrite(gz, buf, (unsigned)n) != (int)n) {
			r = -EIO;
			break;
		}
	if (n < 0)
		r = negative_errno();
	if (gzclose(gz) != Z_OK && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, dst) < 0)
		r = negative_errno();
	if (r < 0) {
		(void)unlink(tmp);
		return r;
	}
	(void)unlink(src);
	return 0;
}
