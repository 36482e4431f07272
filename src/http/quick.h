/*
 * quick.h - the framing of the HTTP fast path (http_server_opts.quick): a
 * strict reader of one small HTTP/1.1 request that answers "complete",
 * "wait for more" or "not for the fast path", and the writer of its answer.
 *
 * Only the plainest requests qualify, everything else goes to
 * libmicrohttpd untouched: HTTP/1.1, an upper-case method token, a target
 * of visible ASCII without '%' or '?' (nothing to decode, no query), header
 * lines "Name: value" without folding or control bytes, one Host, at most one
 * Content-Length (digits only) and no Transfer-Encoding, Expect, Upgrade or
 * "Connection: close";
 * head and body within HTTP_QUICK_MAX bytes, nothing sent behind the body.
 */
#ifndef BERTH_HTTP_QUICK_H
#define BERTH_HTTP_QUICK_H

#include <stddef.h>

#define HTTP_QUICK_MAX 4096u

enum http_quick_parse { HTTP_QUICK_MORE, HTTP_QUICK_PASS, HTTP_QUICK_READY };

struct http_quick_req {
	char method[8];
	char path[512];
	const char *body; /* into the parsed buffer */
	size_t body_len;
};

/* Read buf[0..len) (everything the client sent since the previous answer). */
enum http_quick_parse http_quick_parse(const char *buf, size_t len, struct http_quick_req *ret);
/* "HTTP/1.1 STATUS ..." with Server, Date, Content-Type and Content-Length, then body (malloc'd). */
char *http_quick_format(unsigned status, const char *content_type, const char *body, size_t len,
			size_t *ret_len);

#endif
