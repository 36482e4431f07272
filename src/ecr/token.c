/*
 * token.c - registry passwords for GetAuthorizationToken: an HMAC over the
 * expiry and the account, with a key derived from the cluster's secret
 * access key, so every server replica issues tokens the registry accepts and
 * nothing needs to be stored per token.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/util.h"
#include "ecr/ecr.h"

#define TOKEN_VERSION "b1"

void ecr_token_key(const char *secret, unsigned char key[ECR_TOKEN_KEY_SIZE])
{
	static const char label[] = "berth ecr registry token v1";
	unsigned n = ECR_TOKEN_KEY_SIZE;
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)label, sizeof(label) - 1, key,
	     &n);
}

static void mac_hex(const unsigned char key[ECR_TOKEN_KEY_SIZE], const char *msg, size_t len, char out[65])
{
	unsigned char mac[32];
	unsigned n = sizeof(mac);
	HMAC(EVP_sha256(), key, ECR_TOKEN_KEY_SIZE, (const unsigned char *)msg, len, mac, &n);
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

char *ecr_token_issue(const unsigned char key[ECR_TOKEN_KEY_SIZE], const char *account, int64_t expires)
{
	_cleanup_free_ char *msg = xasprintf(TOKEN_VERSION ".%" PRId64 ".%s", expires, account);
	char mac[65];
	mac_hex(key, msg, strlen(msg), mac);
	return xasprintf("%s.%s", msg, mac);
}

int ecr_token_verify(const unsigned char key[ECR_TOKEN_KEY_SIZE], const char *account, const char *password,
		     int64_t now)
{
	if (!password || strlen(password) > 256 || !startswith(password, TOKEN_VERSION "."))
		return -EACCES;
	const char *dot = strrchr(password, '.');
	if (strlen(dot + 1) != 64)
		return -EACCES;
	char mac[65];
	mac_hex(key, password, (size_t)(dot - password), mac);
	if (CRYPTO_memcmp(mac, dot + 1, 64) != 0)
		return -EACCES;
	/* authentic: the fields are ours */
	const char *p = password + strlen(TOKEN_VERSION) + 1;
	char *end;
	errno = 0;
	long long expires = strtoll(p, &end, 10);
	if (errno || *end != '.' || strncmp(end + 1, account, strlen(account)) ||
	    end + 1 + strlen(account) != dot)
		return -EACCES;
	return now < expires ? 0 : -ETIME;
}
