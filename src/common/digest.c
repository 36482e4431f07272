/* digest.c - streaming digests over OpenSSL EVP. */
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

void digest_buffer(enum digest_algo algo, const void *data, size_t len, char out[DIGEST_STRING_MAX])
{
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
