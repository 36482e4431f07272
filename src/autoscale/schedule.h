/*
 * schedule.h - Application Auto Scaling's schedule expressions, as
 * PutScheduledAction takes them (UTC; the only Timezone berth accepts):
 *
 *   at(yyyy-mm-ddThh:mm:ss)      once
 *   rate(N unit)                 every N minutes/hours/days ("minute",
 *                                "hour", "day" when N is 1, plural otherwise),
 *                                counted from the action's StartTime (or its
 *                                creation)
 *   cron(Min Hour DoM Mon DoW Year)  six fields; each a star, a value, a
 *                                range a-b, a step x/n (also star/n), lists
 *                                with ',';
 *                                months JAN-DEC or 1-12, days of week SUN-SAT
 *                                or 1-7 (1 = Sunday); one of DoM and DoW must
 *                                be '?'; L in DoM is its last day; years
 *                                1970-2199. W and # are refused.
 *
 * Pure (no clock, no allocation); parse errors say what and where.
 */
#ifndef BERTH_AUTOSCALE_SCHEDULE_H
#define BERTH_AUTOSCALE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SCHEDULE_MAX_LEN  256
#define SCHEDULE_MSG_MAX  160
#define SCHEDULE_YEAR_MIN 1970
#define SCHEDULE_YEAR_MAX 2199

enum schedule_kind { SCHEDULE_AT, SCHEDULE_RATE, SCHEDULE_CRON };

struct schedule {
	enum schedule_kind kind;
	time_t at;      /* SCHEDULE_AT */
	int64_t period; /* SCHEDULE_RATE: seconds */
	/* SCHEDULE_CRON: bit sets */
	uint64_t minutes;
	uint32_t hours;
	uint32_t days;         /* bit d: day of month d (1..31) */
	bool last_day;         /* L */
	bool any_dom, any_dow; /* '?' */
	uint16_t months;       /* bit m: month m (1..12) */
	uint8_t weekdays;      /* bit w: 0 = Sunday .. 6 = Saturday */
	uint8_t years[(SCHEDULE_YEAR_MAX - SCHEDULE_YEAR_MIN) / 8 + 1];
};

/* Parse expr; -EINVAL with msg (a sentence naming the field) when it is not one. */
int autoscale_schedule_parse(const char *expr, struct schedule *ret, char msg[SCHEDULE_MSG_MAX]);
/*
 * The first time the schedule fires strictly after `after` (origin: the
 * start of a rate schedule). -ENOENT when it never fires again.
 */
int autoscale_schedule_next(const struct schedule *s, time_t origin, time_t after, time_t *ret);

#endif
