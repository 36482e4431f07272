/*
 * sigv4.h - AWS Signature Version 4, both sides. Verifying (berth server):
 * parse the Authorization header, rebuild the canonical request from what
 * the server received (hashing the body itself, never trusting a
 * client-sent hash), derive the signing key and compare signatures in
 * constant time. Signing (aws/client.c): the same canonical request and key
 * derivation, producing the headers a client adds.
 *
 * Pure functions over strings; nothing here knows about HTTP. The caller
 * supplies headers through a lookup callback (verifying) or a name/value
 * list (signing), so the same code serves libmicrohttpd requests, libcurl
 * requests and the unit tests (AWS's published test suite).
 */
#ifndef BERTH_AWS_SIGV4_H
#define BERTH_AWS_SIGV4_H

#include <time.h>

#include "common/error.h"

/* Bounds on what a client may send (the header parser is fuzzed). */
#define SIGV4_MAX_HEADER         8192
#define SIGV4_MAX_SIGNED_HEADERS 64

struct sigv4_auth {
	char *access_key;
	char *date;            /* YYYYMMDD of the credential scope */
	char *region;          /* scope region */
	char *service;         /* scope service */
	char *scope;           /* "date/region/service/aws4_request" */
	char **signed_headers; /* lowercase, in the client's order (which must be sorted), NULL-terminated */
	char *signature;       /* 64 lowercase hex digits */
};

/*
 * Parse "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ecs/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<hex>". -EINVAL with a message
 * on anything else (wrong algorithm, missing or repeated parts, a scope that
 * is not 5 parts ending in aws4_request, bad hex, too many headers).
 * *ret is filled only on success; free with aws_sigv4_auth_done().
 */
int aws_sigv4_parse_authorization(const char *header, struct sigv4_auth *ret, struct berth_error **err);
void aws_sigv4_auth_done(struct sigv4_auth *a);

/* Parse an X-Amz-Date ("20150830T123600Z") into seconds since the epoch. */
int aws_sigv4_parse_amz_date(const char *s, time_t *ret);

typedef const char *(*sigv4_header_fn)(void *ctx, const char *name);

/*
 * The canonical request: method, canonical URI (path, URI-encoded per
 * segment), canonical query (raw query string, may be NULL or ""), canonical
 * headers (each signed header looked up by name, value trimmed with inner
 * runs of spaces collapsed), signed header list, payload hash (hex). A
 * signed header the request lacks gives -ENOENT.
 */
int aws_sigv4_canonical_request(const char *method, const char *path, const char *query,
				const struct sigv4_auth *a, sigv4_header_fn get_header, void *ctx,
				const char *payload_sha256_hex, char **ret, struct berth_error **err);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256 of canonical>". */
char *aws_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical);

/* Lowercase hex HMAC signature (65 bytes with the NUL) of string_to_sign with the derived key. */
void aws_sigv4_sign(const char *secret, const char *date, const char *region, const char *service,
		    const char *string_to_sign, char out[65]);

/* Lowercase hex SHA-256 of data. */
void aws_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Constant-time comparison of two hex signatures. */
bool aws_sigv4_signature_equal(const char *a, const char *b);

/* ---- signing ---- */

struct sigv4_signer {
	const char *access_key, *secret;
	const char *session_token; /* NULL: none; else sent and signed as X-Amz-Security-Token */
	const char *region, *service;
};

/*
 * Sign a request. headers: "name", "value" pairs (NULL-terminated) that the
 * request carries and that are all signed; they must include "host" and must
 * not include the headers added here. path and query as in
 * aws_sigv4_canonical_request(). now: the signing time (X-Amz-Date).
 *
 * On success *ret is a NULL-terminated vector of "Name: value" lines to add
 * to the request (X-Amz-Date, X-Amz-Security-Token when there is a token,
 * Authorization), caller frees with strv_free(). -EINVAL without host, with
 * a header name that is empty or not a token, with too many headers, or when
 * a credential field is empty or holds a '/' where the scope needs none.
 */
int aws_sigv4_sign_request(const struct sigv4_signer *s, const char *method, const char *path,
			   const char *query, const char *const *headers, const void *body, size_t body_len,
			   time_t now, char ***ret, struct berth_error **err);

/* "YYYYMMDDTHHMMSSZ" (17 bytes with the NUL) for t, in UTC. */
void aws_sigv4_format_amz_date(time_t t, char out[17]);

#endif
