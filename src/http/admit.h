/*
 * admit.h - private to http/: the accept loop in front of libmicrohttpd that
 * answers non-HTTP clients "400 Bad Request" (admit.c).
 */
#ifndef BERTH_HTTP_ADMIT_H
#define BERTH_HTTP_ADMIT_H

#include "http/http.h"

/* Longest method token we wait for; real ones are at most 7 ("OPTIONS"). */
#define HTTP_METHOD_MAX 32

enum http_first_bytes {
	HTTP_FIRST_NEED_MORE, /* only token characters so far: cannot tell yet */
	HTTP_FIRST_HTTP,      /* a method token and a space */
	HTTP_FIRST_NOT_HTTP,  /* anything else */
};

/* Classify the first len bytes a client sent. Pure; never reads beyond len. */
enum http_first_bytes http_first_bytes_classify(const void *buf, size_t len);

struct http_admit;

/*
 * Accept on listen_fd (taken over only on success) and feed srv through
 * http_server_add_connection; a connection silent for timeout_s is closed.
 */
int http_admit_start(struct http_server *srv, int listen_fd, unsigned timeout_s, struct http_admit **ret,
		     struct berth_error **err);
/* Stop the thread, close connections still waiting for their first bytes. Accepts NULL. */
struct http_admit *http_admit_stop(struct http_admit *a);

/* Answer "HTTP/1.1 <status>" with body (may be NULL) and close fd, without a reset. */
void http_refuse_fd(int fd, const char *status, const char *ctype, const char *body);

#endif
