/*
 * fuzz-registry-token.c - Bearer token verification must never crash, and never accept a
 * token the fuzzer could forge without the key. The input is either a token as is, or
 * "header\nclaims" JSON texts that the target signs with the registry's own key, so the
 * claim checks and the access-claim parser behind the signature get fuzzed too.
 */
#include <openssl/ecdsa.h>

#include "common/base64.h"
#include "common/strbuf.h"
#include "registry/auth-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct registry_config cfg;
static struct registry_auth *auth;

static char *sign(const char *header, size_t hn, const char *claims, size_t cn)
{
	struct strbuf tok = STRBUF_INIT;
	char *h = base64url_encode(header, hn, false), *c = base64url_encode(claims, cn, false);
	strbuf_addf(&tok, "%s.%s", h, c);
	free(h);
	free(c);
	unsigned char der[128], raw[64];
	size_t dlen = sizeof(der);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, auth->key) != 1 ||
	    EVP_DigestSign(ctx, der, &dlen, (const unsigned char *)tok.buf, tok.len) != 1)
		__builtin_trap();
	EVP_MD_CTX_free(ctx);
	const unsigned char *p = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(sig, &r, &s);
	BN_bn2binpad(r, raw, 32);
	BN_bn2binpad(s, raw + 32, 32);
	ECDSA_SIG_free(sig);
	char *sb = base64url_encode(raw, sizeof(raw), false);
	strbuf_addf(&tok, ".%s", sb);
	free(sb);
	return strbuf_detach(&tok, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	if (!auth) {
		registry_config_init(&cfg);
		cfg.token_enabled = true;
		if (registry_auth_new(&cfg, &auth, NULL) < 0)
			__builtin_trap();
	}
	char *s = xstrndup((const char *)data, size);
	struct auth_identity id;
	const char *nl = memchr(data, '\n', size);
	if (!nl) {
		/* unsigned by our key: whatever it says, it must be refused */
		if (registry_auth_verify_token(auth, s, &id) == 0)
			__builtin_trap();
	} else {
		size_t hn = (size_t)(nl - (const char *)data);
		char *tok = sign((const char *)data, hn, (const char *)data + hn + 1, size - hn - 1);
		if (registry_auth_verify_token(auth, tok, &id) == 0) {
			if (id.n_grants > AUTH_GRANTS_MAX || !id.bearer)
				__builtin_trap();
			for (size_t i = 0; i < id.n_grants; i++)
				registry_auth_allowed(auth, &id, id.grants[i].repo, REGISTRY_PULL);
		}
		free(tok);
	}
	free(s);
	return 0;
}
