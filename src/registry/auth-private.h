/*
 * auth-private.h - shared by auth.c (Basic, permissions) and auth-token.c
 * (JWT issue/verify). Not part of the registry's API.
 */
#ifndef BERTH_REGISTRY_AUTH_PRIVATE_H
#define BERTH_REGISTRY_AUTH_PRIVATE_H

#include <openssl/evp.h>
#include <pthread.h>

#include "common/digest.h"
#include "common/strbuf.h"
#include "registry/auth.h"

#define CRED_CACHE_SLOTS 1024

struct htpasswd_entry {
	char *user;
	char *hash;
};

struct registry_auth {
	const struct registry_config *cfg;
	struct htpasswd_entry *users;
	size_t n_users;
	EVP_PKEY *key;
	pthread_mutex_t lock;
	char cache[CRED_CACHE_SLOTS][DIGEST_STRING_MAX];
	size_t n_cache;
};

/* Append base64url (no padding) of in. */
void registry_b64url_add(struct strbuf *sb, const unsigned char *in, size_t n);
/* Decode base64 (url-safe when url) with optional padding. -EINVAL on bad input. */
int registry_b64_decode(const char *in, size_t n, bool url, struct strbuf *sb);
/* "pull,push,delete" for flags. */
void registry_auth_add_actions(struct strbuf *sb, unsigned actions);

#endif
