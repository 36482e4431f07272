/*
 * pki.c - the cluster CA (see pki.h). EC P-256 keys, SHA-256 signatures,
 * random 128-bit serials. Certificates carry the extensions that OpenSSL's,
 * Python's and botocore's verifiers insist on (basicConstraints, keyUsage,
 * extendedKeyUsage, subjectAltName, key identifiers).
 */
#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/strbuf.h"
#include "pki/pki.h"

static int ossl_fail(struct berth_error **err, const char *what)
{
	char buf[256] = "unknown error";
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return berth_error_msg(err, EINVAL, "%s: %s", what, buf);
}

static EVP_PKEY *key_new(void)
{
	return EVP_EC_gen("P-256");
}

static char *bio_string(BIO *b)
{
	char *data = NULL;
	long n = BIO_get_mem_data(b, &data);
	return xstrndup(data ? data : "", n > 0 ? (size_t)n : 0);
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	char *s = bio_string(b);
	BIO_free(b);
	return s;
}

static char *cert_pem(X509 *c)
{
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, c);
	char *s = bio_string(b);
	BIO_free(b);
	return s;
}

static X509 *cert_load(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return c;
}

static EVP_PKEY *key_load(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ex) {
		X509_add_ext(cert, ex, -1);
		X509_EXTENSION_free(ex);
	}
}

/* A certificate for pub with subject cn, valid for days, not yet signed. */
static X509 *cert_skeleton(EVP_PKEY *pub, const char *cn, int days)
{
	X509 *c = X509_new();
	X509_set_version(c, 2);
	unsigned char serial[16];
	RAND_bytes(serial, sizeof(serial));
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400);
	X509_set_pubkey(c, pub);
	X509_NAME *name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"berth", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	return c;
}

int pki_ca_create(const char *cn, char **ret_cert, char **ret_key, struct berth_error **err)
{
	EVP_PKEY *k = key_new();
	if (!k)
		return ossl_fail(err, "generate CA key");
	X509 *c = cert_skeleton(k, cn, PKI_CA_DAYS);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
	add_ext(c, c, NID_subject_key_identifier, "hash");
	add_ext(c, c, NID_authority_key_identifier, "keyid:always");
	int r = 0;
	if (X509_sign(c, k, EVP_sha256()) <= 0)
		r = ossl_fail(err, "sign CA certificate");
	if (r == 0) {
		*ret_cert = cert_pem(c);
		*ret_key = key_pem(k);
	}
	X509_free(c);
	EVP_PKEY_free(k);
	return r;
}

/* Sign c as the CA; on success *ret is its PEM. */
static int issue(X509 *c, const char *ca_cert, const char *ca_key, char **ret, struct berth_error **err)
{
	X509 *ca = cert_load(ca_cert);
	EVP_PKEY *cak = key_load(ca_key);
	int r = 0;
	if (!ca || !cak) {
		r = ossl_fail(err, "load CA");
	} else {
		X509_set_issuer_name(c, X509_get_subject_name(ca));
		add_ext(c, ca, NID_subject_key_identifier, "hash");
		add_ext(c, ca, NID_authority_key_identifier, "keyid:always");
		if (X509_sign(c, cak, EVP_sha256()) <= 0)
			r = ossl_fail(err, "sign certificate");
		else
			*ret = cert_pem(c);
	}
	X509_free(ca);
	EVP_PKEY_free(cak);
	return r;
}

int pki_server_cert(const char *ca_cert, const char *ca_key, const char *host, char **ret_cert,
		    char **ret_key, struct berth_error **err)
{
	EVP_PKEY *k = key_new();
	if (!k)
		return ossl_fail(err, "generate server key");
	X509 *c = cert_skeleton(k, "berth-server", PKI_CERT_DAYS);
	struct strbuf san = STRBUF_INIT;
	strbuf_addstr(&san, "DNS:localhost,IP:127.0.0.1,IP:::1");
	if (host && *host && !streq(host, "localhost") && !streq(host, "127.0.0.1") && !streq(host, "::1") &&
	    !streq(host, "0.0.0.0") && !streq(host, "::")) {
		unsigned char buf[16];
		bool ip = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
		strbuf_addf(&san, ",%s:%s", ip ? "IP" : "DNS", host);
	}
	add_ext(c, NULL, NID_basic_constraints, "critical,CA:FALSE");
	add_ext(c, NULL, NID_key_usage, "critical,digitalSignature,keyEncipherment");
	add_ext(c, NULL, NID_ext_key_usage, "serverAuth");
	add_ext(c, NULL, NID_subject_alt_name, san.buf);
	strbuf_release(&san);
	char *pem = NULL;
	int r = issue(c, ca_cert, ca_key, &pem, err);
	if (r == 0) {
		*ret_cert = pem;
		*ret_key = key_pem(k);
	}
	X509_free(c);
	EVP_PKEY_free(k);
	return r;
}

int pki_sign_csr(const char *ca_cert, const char *ca_key, const char *csr, const char *cn, char **ret_cert,
		 struct berth_error **err)
{
	BIO *b = BIO_new_mem_buf(csr, -1);
	X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!req)
		return ossl_fail(err, "parse CSR");
	EVP_PKEY *pub = X509_REQ_get_pubkey(req);
	int r = 0;
	if (!pub || X509_REQ_verify(req, pub) != 1) {
		r = ossl_fail(err, "verify CSR signature");
	} else {
		X509 *c = cert_skeleton(pub, cn, PKI_CERT_DAYS);
		add_ext(c, NULL, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(c, NULL, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		add_ext(c, NULL, NID_ext_key_usage, "clientAuth");
		r = issue(c, ca_cert, ca_key, ret_cert, err);
		X509_free(c);
	}
	EVP_PKEY_free(pub);
	X509_REQ_free(req);
	return r;
}

int pki_csr_create(const char *cn, char **ret_csr, char **ret_key, struct berth_error **err)
{
	EVP_PKEY *k = key_new();
	if (!k)
		return ossl_fail(err, "generate key");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_REQ_get_subject_name(req);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_pubkey(req, k);
	int r = 0;
	if (X509_REQ_sign(req, k, EVP_sha256()) <= 0) {
		r = ossl_fail(err, "sign CSR");
	} else {
		BIO *b = BIO_new(BIO_s_mem());
		PEM_write_bio_X509_REQ(b, req);
		*ret_csr = bio_string(b);
		BIO_free(b);
		*ret_key = key_pem(k);
	}
	X509_REQ_free(req);
	EVP_PKEY_free(k);
	return r;
}

int pki_cert_fingerprint(const char *cert, char **ret, struct berth_error **err)
{
	X509 *c = cert_load(cert);
	if (!c)
		return ossl_fail(err, "parse certificate");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	X509_digest(c, EVP_sha256(), md, &n);
	X509_free(c);
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "sha256:");
	for (unsigned int i = 0; i < n; i++)
		strbuf_addf(&sb, "%02x", md[i]);
	*ret = strbuf_detach(&sb, NULL);
	return 0;
}

int pki_cert_verify(const char *ca_cert, const char *cert, struct berth_error **err)
{
	X509 *ca = cert_load(ca_cert), *c = cert_load(cert);
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r = 0;
	if (!ca || !c) {
		r = ossl_fail(err, "parse certificate");
	} else {
		X509_STORE_add_cert(st, ca);
		X509_STORE_CTX_init(ctx, st, c, NULL);
		if (X509_verify_cert(ctx) != 1)
			r = berth_error_msg(err, EINVAL, "certificate does not verify: %s",
					    X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	}
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(ca);
	X509_free(c);
	return r;
}

char *pki_random_string(const char *alphabet, size_t n)
{
	size_t k = strlen(alphabet);
	char *s = xmalloc(n + 1);
	/* bytes in batches: each RAND_bytes call costs a getpid() (OpenSSL's fork check) */
	unsigned char buf[64];
	size_t have = 0, used = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char b;
		do {
			if (used == have) {
				have = MIN(sizeof(buf), n - i + 8);
				RAND_bytes(buf, (int)have);
				used = 0;
			}
			b = buf[used++];
		} while (b >= 256 - 256 % k); /* no modulo bias */
		s[i] = alphabet[b % k];
	}
	explicit_bzero(buf, sizeof(buf));
	s[n] = '\0';
	return s;
}

char *pki_random_hex(size_t n)
{
	return pki_random_string("0123456789abcdef", 2 * n);
}

char *pki_sha256_hex(const void *data, size_t len)
{
	unsigned char md[32];
	unsigned int n = 0;
	char *hex = xmalloc(65);
	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		abort(); /* only out of memory makes a one-shot SHA-256 fail */
	for (size_t i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return hex;
}

char *pki_join_token(const char *ca_cert, const char *secret)
{
	_cleanup_free_ char *h = pki_sha256_hex(ca_cert, strlen(ca_cert));
	return xasprintf("K10%s::%s", h, secret);
}

int pki_join_token_parse(const char *token, char **ret_ca_hash, char **ret_secret)
{
	if (!token || !startswith(token, "K10") || strlen(token) < 3 + 64 + 2 + 1 ||
	    strncmp(token + 67, "::", 2))
		return -EINVAL;
	for (size_t i = 3; i < 67; i++)
		if (!strchr("0123456789abcdef", token[i]))
			return -EINVAL;
	*ret_ca_hash = xstrndup(token + 3, 64);
	*ret_secret = xstrdup(token + 69);
	return 0;
}
