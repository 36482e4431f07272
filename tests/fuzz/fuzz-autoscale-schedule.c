/*
 * fuzz-autoscale-schedule.c - PutScheduledAction's schedule expressions
 * (at/rate/cron) must never crash or loop: parse the input and, when it
 * parses, ask for the next few times after a fixed instant.
 */
#include <string.h>

#include "autoscale/schedule.h"
#include "common/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > SCHEDULE_MAX_LEN + 16)
		return 0;
	_cleanup_free_ char *expr = xstrndup((const char *)data, size);
	struct schedule s;
	char msg[SCHEDULE_MSG_MAX];
	if (autoscale_schedule_parse(expr, &s, msg) < 0)
		return 0;
	time_t t = 1700000000, next;
	for (int i = 0; i < 3 && autoscale_schedule_next(&s, 1690000000, t, &next) == 0; i++) {
		if (next <= t)
			__builtin_trap();
		t = next;
	}
	return 0;
}
