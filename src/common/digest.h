/*
 * digest.h - content digests ("sha256:<64 hex>", "sha512:<128 hex>") per the
 * OCI image spec, computed with OpenSSL's EVP API, streaming.
 */
#ifndef BERTH_COMMON_DIGEST_H
#define BERTH_COMMON_DIGEST_H

#include "common/error.h"

enum digest_algo {
	DIGEST_SHA256 = 0,
	DIGEST_SHA512,
};

/* "sha512:" + 128 hex digits + NUL */
#define DIGEST_STRING_MAX (7 + 128 + 1)

struct digester;

/* Name ("sha256") and hex length (64) of an algorithm. */
const char *digest_algo_name(enum digest_algo algo);
size_t digest_algo_hex_len(enum digest_algo algo);

/*
 * Validate a digest string: a registered algorithm, ':' and exactly the right
 * number of lowercase hex digits. On success fills *ret_algo and *ret_hex
 * (points into s), either may be NULL. -EINVAL with a message otherwise.
 */
int digest_parse(const char *s, enum digest_algo *ret_algo, const char **ret_hex, struct berth_error **err);
static inline bool digest_valid(const char *s)
{
	return digest_parse(s, NULL, NULL, NULL) == 0;
}

/* Streaming. digester_new aborts on allocation failure. */
struct digester *digester_new(enum digest_algo algo);
void digester_update(struct digester *d, const void *data, size_t len);
/* Write "algo:hex" into out (DIGEST_STRING_MAX bytes). The digester can be reused after reset. */
void digester_final(struct digester *d, char out[DIGEST_STRING_MAX]);
void digester_reset(struct digester *d);
struct digester *digester_free(struct digester *d);
static inline void digester_freep(struct digester **d)
{
	*d = digester_free(*d);
}
#define _cleanup_digester_ _cleanup_(digester_freep)

/* One-shot helpers. */
void digest_buffer(enum digest_algo algo, const void *data, size_t len, char out[DIGEST_STRING_MAX]);
/* Digest everything readable from fd; returns bytes read in *ret_size (may be NULL). */
int digest_fd(enum digest_algo algo, int fd, char out[DIGEST_STRING_MAX], uint64_t *ret_size,
	      struct berth_error **err);

#endif
