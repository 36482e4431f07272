/*
 * connlimit.h - when a server connection has held its slot too long: the
 * deadlines every HTTP server of ours applies to slow clients (slow loris).
 * Pure; the servers track phases and byte counts and ask.
 */
#ifndef BERTH_COMMON_CONNLIMIT_H
#define BERTH_COMMON_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

enum conn_phase {
	CONN_PHASE_HEAD, /* waiting for a request's headers (new or keep-alive connection) */
	CONN_PHASE_BODY, /* headers done, the request body is arriving */
	CONN_PHASE_BUSY, /* the server has the turn: handler, response, stream, hijack */
};

struct conn_limits {
	unsigned header_timeout_s; /* a request's headers complete within this, counted from the
				      connection's start or the end of the previous request */
	unsigned body_min_rate;    /* bytes/s a body must average once header_timeout_s has passed */
};

/*
 * true when the connection is overdue and should be closed: elapsed_ms in
 * its phase, of which stalled_ms were the server's doing (it held the body
 * back), bytes of body received so far.
 */
bool connlimit_overdue(const struct conn_limits *l, enum conn_phase phase, int64_t elapsed_ms,
		       int64_t stalled_ms, uint64_t bytes);

#endif
