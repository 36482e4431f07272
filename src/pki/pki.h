/*
 * pki.h - the cluster's small certificate authority (OpenSSL 3, EC P-256),
 * shared by the server and the agent: the CA itself, server certificates for each replica, node certificates
 * signed from agents' CSRs, fingerprints and the join token that pins the CA.
 *
 * Everything is PEM strings in and out (the CA lives in the store, files are
 * written by the caller). Returned strings belong to the caller.
 */
#ifndef BERTH_PKI_PKI_H
#define BERTH_PKI_PKI_H

#include "common/error.h"

#define PKI_CA_DAYS   3650
#define PKI_CERT_DAYS 825

/* A new self-signed CA: certificate and private key (PKCS#8) as PEM. */
int pki_ca_create(const char *cn, char **ret_cert, char **ret_key, struct berth_error **err);

/*
 * A server certificate for this replica, signed by the CA: CN "berth-server",
 * SANs: DNS localhost, IP 127.0.0.1, ::1 and `host` (a name or an address,
 * may be NULL). New key each time.
 */
int pki_server_cert(const char *ca_cert, const char *ca_key, const char *host, char **ret_cert,
		    char **ret_key, struct berth_error **err);

/*
 * Sign an agent's CSR (PEM): the CSR's own signature must verify; the issued
 * certificate takes only its public key: subject CN = cn, client-auth usage.
 */
int pki_sign_csr(const char *ca_cert, const char *ca_key, const char *csr, const char *cn, char **ret_cert,
		 struct berth_error **err);

/* A new key and a CSR for cn (what an agent does; used by tests and tools). */
int pki_csr_create(const char *cn, char **ret_csr, char **ret_key, struct berth_error **err);

/* "sha256:<hex>" of a certificate's DER encoding (matches http_request_peer()). */
int pki_cert_fingerprint(const char *cert, char **ret, struct berth_error **err);

/* 0 when cert is signed by ca_cert and valid now. */
int pki_cert_verify(const char *ca_cert, const char *cert, struct berth_error **err);

/* Random lowercase hex string of n bytes of entropy (2n characters). */
char *pki_random_hex(size_t n);
/* Random string of n characters from alphabet. */
char *pki_random_string(const char *alphabet, size_t n);

/* Lowercase hex SHA-256 of data (caller frees). */
char *pki_sha256_hex(const void *data, size_t len);

/* The join token: "K10" + sha256 hex of the CA PEM + "::" + secret. */
char *pki_join_token(const char *ca_cert, const char *secret);
/* Split a join token; -EINVAL when malformed. */
int pki_join_token_parse(const char *token, char **ret_ca_hash, char **ret_secret);

#endif
