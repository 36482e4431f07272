/*
 * digest.c - streaming digests over OpenSSL EVP; short SHA-256 inputs
 * (digest_buffer: chain ids, names) are hashed here, so a process that only
 * hashes a few strings never loads libcrypto (3 MB resident; common/lazylib.h).
 */
#include <openssl/evp.h>

#include "common/digest.h"

struct digester {
	enum digest_algo algo;
	EVP_MD_CTX *ctx;
};

static const struct {
	const char *name;
	size_t hex_len;
} algos[] = {
	[DIGEST_SHA256] = { "sha256", 64 },
	[DIGEST_SHA512] = { "sha512", 128 },
};

const char *digest_algo_name(enum digest_algo algo)
{
	return algos[algo].name;
}

size_t digest_algo_hex_len(enum digest_algo algo)
{
	return algos[algo].hex_len;
}

int digest_parse(const char *s, enum digest_algo *ret_algo, const char **ret_hex, struct berth_error **err)
{
	if (!s)
		return berth_error_msg(err, EINVAL, "invalid digest: empty");
	const char *colon = strchr(s, ':');
	if (!colon)
		return berth_error_msg(err, EINVAL, "invalid digest '%s': missing algorithm", s);
	for (size_t i = 0; i < ARRAY_SIZE(algos); i++) {
		size_t nl = strlen(algos[i].name);
		if ((size_t)(colon - s) != nl || memcmp(s, algos[i].name, nl) != 0)
			continue;
		const char *hex = colon + 1;
		size_t n = strlen(hex);
		if (n != algos[i].hex_len)
			return berth_error_msg(err, EINVAL,
					       "invalid digest '%s': %s needs %zu hex digits, got %zu", s,
					       algos[i].name, algos[i].hex_len, n);
		for (size_t k = 0; k < n; k++)
			if (!((hex[k] >= '0' && hex[k] <= '9') || (hex[k] >= 'a' && hex[k] <= 'f')))
				return berth_error_msg(err, EINVAL, "invalid digest '%s': not lowercase hex",
						       s);
		if (ret_algo)
			*ret_algo = (enum digest_algo)i;
		if (ret_hex)
			*ret_hex = hex;
		return 0;
	}
	return berth_error_msg(err, EINVAL, "invalid digest '%.*s': unsupported algorithm",
			       (int)MIN(strlen(s), 200), s);
}

static const EVP_MD *md_of(enum digest_algo algo)
{
	return algo == DIGEST_SHA512 ? EVP_sha512() : EVP_sha256();
}

struct digester *digester_new(enum digest_algo algo)
{
	struct digester *d = xcalloc(1, sizeof(*d));
	d->algo = algo;
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || EVP_DigestInit_ex(d->ctx, md_of(algo), NULL) != 1)
		abort();
	return d;
}

void digester_update(struct digester *d, const void *data, size_t len)
{
	if (len && EVP_DigestUpdate(d->ctx, data, len) != 1)
		abort();
}

void digester_reset(struct digester *d)
{
	if (EVP_DigestInit_ex(d->ctx, md_of(d->algo), NULL) != 1)
		abort();
}

void digester_final(struct digester *d, char out[DIGEST_STRING_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (EVP_DigestFinal_ex(d->ctx, md, &n) != 1)
		abort();
	size_t off = (size_t)snprintf(out, DIGEST_STRING_MAX, "%s:", algos[d->algo].name);
	for (unsigned i = 0; i < n && off + 2 < DIGEST_STRING_MAX; i++) {
		out[off++] = hex[md[i] >> 4];
		out[off++] = hex[md[i] & 15];
	}
	out[off] = '\0';
	digester_reset(d);
}

struct digester *digester_free(struct digester *d)
{
	if (d) {
		EVP_MD_CTX_free(d->ctx);
		free(d);
	}
	return NULL;
}

/* ---- SHA-256 (FIPS 180-4) for short inputs ---- */

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 =
		    k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + sha256_k[i] + w[i];
		uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		k = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

/* "sha256:<hex>" of data, without OpenSSL. */
static void sha256_small(const unsigned char *data, size_t len, char out[DIGEST_STRING_MAX])
{
	static const char hex[] = "0123456789abcdef";
	uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
			  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	size_t i = 0;
	for (; len - i >= 64; i += 64)
		sha256_block(h, data + i);
	unsigned char tail[128] = { 0 };
	size_t rest = len - i, n = rest + 9 <= 64 ? 64 : 128;
	memcpy(tail, data + i, rest);
	tail[rest] = 0x80;
	uint64_t bits = (uint64_t)len * 8;
	for (int b = 0; b < 8; b++)
		tail[n - 1 - b] = (unsigned char)(bits >> (8 * b));
	sha256_block(h, tail);
	if (n == 128)
		sha256_block(h, tail + 64);
	memcpy(out, "sha256:", 7);
	for (int w = 0; w < 8; w++)
		for (int b = 0; b < 4; b++) {
			unsigned char byte = (unsigned char)(h[w] >> (24 - 8 * b));
			out[7 + 8 * w + 2 * b] = hex[byte >> 4];
			out[7 + 8 * w + 2 * b + 1] = hex[byte & 15];
		}
	out[7 + 64] = '\0';
}

/* Inputs up to this size are hashed without OpenSSL (its SHA-NI code wins on blobs). */
#define DIGEST_SMALL_MAX (64 * 1024)

void digest_buffer(enum digest_algo algo, const void *data, size_t len, char out[DIGEST_STRING_MAX])
{
	if (algo == DIGEST_SHA256 && len <= DIGEST_SMALL_MAX) {
		sha256_small(data, len, out);
		return;
	}
	_cleanup_digester_ struct digester *d = digester_new(algo);
	digester_update(d, data, len);
	digester_final(d, out);
}

int digest_fd(enum digest_algo algo, int fd, char out[DIGEST_STRING_MAX], uint64_t *ret_size,
	      struct berth_error **err)
{
	_cleanup_digester_ struct digester *d = digester_new(algo);
	_cleanup_free_ char *buf = xmalloc(1 << 16);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 16);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_errno(err, "read for digest");
		}
		if (n == 0)
			break;
		digester_update(d, buf, (size_t)n);
		total += (uint64_t)n;
	}
	digester_final(d, out);
	if (ret_size)
		*ret_size = total;
	return 0;
}
