/* connlimit.c - see connlimit.h. */
#include "common/connlimit.h"

bool connlimit_overdue(const struct conn_limits *l, enum conn_phase phase, int64_t elapsed_ms,
		       int64_t stalled_ms, uint64_t bytes)
{
	int64_t grace = (int64_t)l->header_timeout_s * 1000;
	switch (phase) {
	case CONN_PHASE_HEAD: return elapsed_ms > grace;
	case CONN_PHASE_BODY: {
		int64_t active = elapsed_ms - (stalled_ms > 0 ? stalled_ms : 0);
		if (active <= grace)
			return false;
		/* bytes < rate * active / 1000, without overflow for any sane rate and age */
		return (double)bytes < (double)l->body_min_rate * (double)active / 1000.0;
	}
	case CONN_PHASE_BUSY: break;
	}
	return false;
}
