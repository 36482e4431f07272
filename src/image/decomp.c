/*
 * decomp.c - streaming decompression (gzip, zstd or none, by magic bytes)
 * with a sha256 over the uncompressed bytes, so a layer's diff_id is checked
 * in the same pass that unpacks it. Multi-member gzip streams are supported
 * (pigz and some registries produce them). A stream that ends inside a
 * compressed frame is reported as truncated.
 */
#include <zlib.h>
#include <zstd.h>

#include "image/unpack.h"

#define DECOMP_IN_SIZE (128u << 10)

enum decomp_kind {
	DECOMP_NONE,
	DECOMP_GZIP,
	DECOMP_ZSTD,
};

struct decomp {
	int fd;
	enum decomp_kind kind;
	unsigned char *in;
	size_t in_len, in_pos;
	bool in_eof;
	uint64_t consumed, produced;
	z_stream z;
	bool z_init, z_member_done;
	ZSTD_DStream *zs;
	bool zs_frame_done;
	struct digester *d;
};

static int fill(struct decomp *d, struct berth_error **err)
{
	if (d->in_pos < d->in_len || d->in_eof)
		return 0;
	ssize_t n;
	do
		n = read(d->fd, d->in, DECOMP_IN_SIZE);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return berth_error_errno(err, "read layer");
	d->in_len = (size_t)n;
	d->in_pos = 0;
	d->consumed += (uint64_t)n;
	if (n == 0)
		d->in_eof = true;
	return 0;
}

int image_decomp_new(int in_fd, struct decomp **ret, struct berth_error **err)
{
	struct decomp *d = xcalloc(1, sizeof(*d));
	d->fd = in_fd;
	d->in = xmalloc(DECOMP_IN_SIZE);
	d->d = digester_new(DIGEST_SHA256);
	/* Read until we have 4 bytes or EOF, to sniff the magic. */
	while (d->in_len < 4 && !d->in_eof) {
		ssize_t n = read(in_fd, d->in + d->in_len, DECOMP_IN_SIZE - d->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = berth_error_errno(err, "read layer");
			image_decomp_free(d);
			return r;
		}
		if (n == 0)
			d->in_eof = true;
		d->in_len += (size_t)n;
		d->consumed += (uint64_t)n;
	}
	const unsigned char *m = d->in;
	if (d->in_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
		d->kind = DECOMP_GZIP;
		if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) {
			image_decomp_free(d);
			return berth_error_msg(err, ENOMEM, "initialise gzip decoder");
		}
		d->z_init = true;
	} else if (d->in_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
		d->kind = DECOMP_ZSTD;
		d->zs = ZSTD_createDStream();
		if (!d->zs || ZSTD_isError(ZSTD_initDStream(d->zs))) {
			image_decomp_free(d);
			return berth_error_msg(err, ENOMEM, "initialise zstd decoder");
		}
	}
	*ret = d;
	return 0;
}

static ssize_t read_gzip(struct decomp *d, void *buf, size_t len, struct berth_error **err)
{
	while (true) {
		int r = fill(d, err);
		if (r < 0)
			return r;
		if (d->z_member_done) {
			if (d->in_pos == d->in_len && d->in_eof)
				return 0;
			/* another gzip member follows */
			if (inflateReset(&d->z) != Z_OK)
				return berth_error_msg(err, EBADMSG, "corrupt gzip stream");
			d->z_member_done = false;
		}
		if (d->in_pos == d->in_len && d->in_eof)
			return berth_error_msg(err, EBADMSG,
					       "truncated gzip stream (unexpected end of data)");
		d->z.next_in = d->in + d->in_pos;
		d->z.avail_in = (uInt)(d->in_len - d->in_pos);
		d->z.next_out = buf;
		d->z.avail_out = (uInt)MIN(len, (size_t)UINT32_MAX);
		int zr = inflate(&d->z, Z_NO_FLUSH);
		d->in_pos = d->in_len - d->z.avail_in;
		size_t out = (size_t)(d->z.next_out - (Bytef *)buf);
		if (zr == Z_STREAM_END)
			d->z_member_done = true;
		else if (zr != Z_OK && zr != Z_BUF_ERROR)
			return berth_error_msg(err, EBADMSG, "corrupt gzip stream: %s",
					       d->z.msg ? d->z.msg : "error");
		if (out > 0)
			return (ssize_t)out;
	}
}

static ssize_t read_zstd(struct decomp *d, void *buf, size_t len, struct berth_error **err)
{
	while (true) {
		int r = fill(d, err);
		if (r < 0)
			return r;
		if (d->in_pos == d->in_len && d->in_eof) {
			if (!d->zs_frame_done)
				return berth_error_msg(err, EBADMSG,
						       "truncated zstd stream (unexpected end of data)");
			return 0;
		}
		ZSTD_inBuffer in = { d->in, d->in_len, d->in_pos };
		ZSTD_outBuffer out = { buf, len, 0 };
		size_t zr = ZSTD_decompressStream(d->zs, &out, &in);
		d->in_pos = in.pos;
		if (ZSTD_isError(zr))
			return berth_error_msg(err, EBADMSG, "corrupt zstd stream: %s",
					       ZSTD_getErrorName(zr));
		d->zs_frame_done = zr == 0;
		if (out.pos > 0)
			return (ssize_t)out.pos;
	}
}

ssize_t image_decomp_read(struct decomp *d, void *buf, size_t len, struct berth_error **err)
{
	ssize_t n;
	if (len == 0)
		return 0;
	switch (d->kind) {
	case DECOMP_GZIP: n = read_gzip(d, buf, len, err); break;
	case DECOMP_ZSTD: n = read_zstd(d, buf, len, err); break;
	default: {
		int r = fill(d, err);
		if (r < 0)
			return r;
		n = (ssize_t)MIN(len, d->in_len - d->in_pos);
		memcpy(buf, d->in + d->in_pos, (size_t)n);
		d->in_pos += (size_t)n;
		break;
	}
	}
	if (n > 0) {
		digester_update(d->d, buf, (size_t)n);
		d->produced += (uint64_t)n;
	}
	return n;
}

void image_decomp_digest(struct decomp *d, char out[DIGEST_STRING_MAX])
{
	digester_final(d->d, out);
}

uint64_t image_decomp_consumed(const struct decomp *d)
{
	return d->consumed;
}

uint64_t image_decomp_produced(const struct decomp *d)
{
	return d->produced;
}

struct decomp *image_decomp_free(struct decomp *d)
{
	if (!d)
		return NULL;
	if (d->z_init)
		inflateEnd(&d->z);
	if (d->zs)
		ZSTD_freeDStream(d->zs);
	digester_free(d->d);
	free(d->in);
	free(d);
	return NULL;
}
