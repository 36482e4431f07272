/*
 * base64.h - standard base64 (RFC 4648 alphabet, '=' padding), as Docker's
 * headers use it (X-Docker-Container-Path-Stat, X-Registry-Auth).
 */
#ifndef BERTH_COMMON_BASE64_H
#define BERTH_COMMON_BASE64_H

#include "common/macro.h"

/* Encode len bytes; returns a new NUL-terminated string (padded). */
char *base64_encode(const void *data, size_t len);

/*
 * URL-safe alphabet ('-' and '_' for '+' and '/'), RFC 4648 section 5: Go's
 * base64.URLEncoding when pad (docker's X-Registry-Auth), RawURLEncoding
 * (JWT segments) when not.
 */
char *base64url_encode(const void *data, size_t len, bool pad);

/*
 * Decode s (padding optional; URL-safe '-' and '_' accepted too; no
 * whitespace). *ret is a new NUL-terminated buffer of *ret_len bytes.
 * -EINVAL on a character outside the alphabet or a bad length.
 */
int base64_decode(const char *s, void **ret, size_t *ret_len);

#endif
