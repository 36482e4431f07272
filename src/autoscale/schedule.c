/*
 * schedule.c - schedule expressions (schedule.h). The cron fields become
 * bit sets; the next time is found by walking years, months and days that
 * match (at most a few thousand steps for any expression until 2199), then
 * the first matching hour and minute.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale/schedule.h"
#include "common/macro.h"

static const char *const MONTHS[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
				      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const WEEKDAYS[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* names[i] is the value lo + i */
	size_t n_names;
};

static const struct field FIELDS[6] = {
	{ "minutes", 0, 59, NULL, 0 },        { "hours", 0, 23, NULL, 0 },
	{ "day-of-month", 1, 31, NULL, 0 },   { "month", 1, 12, MONTHS, 12 },
	{ "day-of-week", 1, 7, WEEKDAYS, 7 }, { "year", SCHEDULE_YEAR_MIN, SCHEDULE_YEAR_MAX, NULL, 0 },
};

static int _printf_(2, 3) fail(char *msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, SCHEDULE_MSG_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A number or name of field f at *p (advanced); -1 when there is none. */
static int value(const struct field *f, const char **p)
{
	if (isdigit((unsigned char)**p)) {
		char *end;
		long v = strtol(*p, &end, 10);
		if (end - *p > 4)
			return -1;
		*p = end;
		return v >= f->lo && v <= f->hi ? (int)v : -1;
	}
	for (size_t i = 0; i < f->n_names; i++)
		if (strncasecmp(*p, f->names[i], 3) == 0) {
			*p += 3;
			return f->lo + (int)i;
		}
	return -1;
}

static void set_bit(uint8_t *bits, int i)
{
	bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* One cron field (text without spaces) into bits (indexed by value - lo). */
static int parse_field(const struct field *f, const char *text, uint8_t *bits, bool *any, bool *last,
		       char *msg)
{
	if (strcmp(text, "?") == 0) {
		if (!any)
			return fail(msg, "cron %s: '?' is only allowed in day-of-month or day-of-week",
				    f->name);
		*any = true;
		return 0;
	}
	if (strcmp(text, "L") == 0) {
		if (!last)
			return fail(msg, "cron %s: 'L' is only supported in day-of-month", f->name);
		*last = true;
		return 0;
	}
	if (strpbrk(text, "W#L"))
		return fail(msg, "cron %s: '%s': W, # and L with a value are not supported", f->name, text);
	const char *p = text;
	for (;;) {
		int a, b, step = 1;
		if (*p == '*') {
			a = f->lo, b = f->hi;
			p++;
		} else {
			if ((a = value(f, &p)) < 0)
				return fail(msg, "cron %s: '%s': expected a value in range", f->name, text);
			b = a;
			if (*p == '-') {
				p++;
				if ((b = value(f, &p)) < 0 || b < a)
					return fail(msg, "cron %s: '%s': bad range", f->name, text);
			}
		}
		if (*p == '/') {
			p++;
			char *end;
			long st = strtol(p, &end, 10);
			if (end == p || st < 1 || st > f->hi - f->lo + 1)
				return fail(msg, "cron %s: '%s': bad step", f->name, text);
			step = (int)st;
			p = end;
			if (a == b)
				b = f->hi; /* "5/15": from 5 on */
		}
		for (int v = a; v <= b; v += step)
			set_bit(bits, v - f->lo);
		if (*p == 0)
			return 0;
		if (*p != ',')
			return fail(msg, "cron %s: '%s': unexpected character", f->name, text);
		p++;
	}
}

static uint64_t bits_u64(const uint8_t *bits, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v |= (uint64_t)(bits[i / 8] >> (i % 8) & 1) << i;
	return v;
}

static int parse_cron(const char *body, struct schedule *s, char *msg)
{
	char copy[SCHEDULE_MAX_LEN];
	snprintf(copy, sizeof(copy), "%s", body);
	char *fields[7], *save = NULL;
	size_t n = 0;
	for (char *t = strtok_r(copy, " ", &save); t && n < 7; t = strtok_r(NULL, " ", &save))
		fields[n++] = t;
	if (n != 6)
		return fail(
		    msg, "cron expression must have 6 fields (minutes hours day-of-month month day-of-week "
			 "year)");
	uint8_t bits[6][(SCHEDULE_YEAR_MAX - SCHEDULE_YEAR_MIN) / 8 + 1];
	memset(bits, 0, sizeof(bits));
	int r = 0;
	for (size_t i = 0; i < 6 && r == 0; i++)
		r = parse_field(&FIELDS[i], fields[i], bits[i],
				i == 2   ? &s->any_dom
				: i == 4 ? &s->any_dow
					 : NULL,
				i == 2 ? &s->last_day : NULL, msg);
	if (r < 0)
		return r;
	if (s->any_dom == s->any_dow)
		return fail(msg, "cron: exactly one of day-of-month and day-of-week must be '?'");
	s->minutes = bits_u64(bits[0], 60);
	s->hours = (uint32_t)bits_u64(bits[1], 24);
	s->days = (uint32_t)bits_u64(bits[2], 31) << 1; /* bit 0 was day 1 */
	s->months = (uint16_t)(bits_u64(bits[3], 12) << 1);
	s->weekdays = (uint8_t)bits_u64(bits[4], 7); /* bit 0 was 1 = Sunday */
	memcpy(s->years, bits[5], sizeof(s->years));
	return 0;
}

static int parse_rate(const char *body, struct schedule *s, char *msg)
{
	char *end = (char *)body;
	long long n = isdigit((unsigned char)body[0]) ? strtoll(body, &end, 10) : 0;
	const char *unit = n ? end + 1 : "";
	if (n < 1 || n > 100000 || *end != ' ' || !islower((unsigned char)*unit))
		return fail(msg, "rate expression must be 'rate(N unit)' with a positive N");
	static const struct {
		const char *one, *many;
		int64_t seconds;
	} units[] = { { "minute", "minutes", 60 }, { "hour", "hours", 3600 }, { "day", "days", 86400 } };
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(unit, n == 1 ? units[i].one : units[i].many) == 0) {
			s->period = n * units[i].seconds;
			return 0;
		}
	return fail(msg, "rate unit '%s': expected minute(s), hour(s) or day(s) (singular for 1)", unit);
}

static int parse_at(const char *body, struct schedule *s, char *msg)
{
	struct tm tm = { 0 };
	int used = 0;
	if (strlen(body) != 19 ||
	    sscanf(body, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &used) != 6 ||
	    used != 19 || tm.tm_year < SCHEDULE_YEAR_MIN || tm.tm_year > SCHEDULE_YEAR_MAX || tm.tm_mon < 1 ||
	    tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 59)
		return fail(msg, "at expression must be 'at(yyyy-mm-ddThh:mm:ss)': '%s'", body);
	int mday = tm.tm_mday;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	s->at = timegm(&tm);
	struct tm back;
	gmtime_r(&s->at, &back);
	if (back.tm_mday != mday)
		return fail(msg, "at expression: no such day '%s'", body);
	return 0;
}

int autoscale_schedule_parse(const char *expr, struct schedule *ret, char msg[SCHEDULE_MSG_MAX])
{
	struct schedule s = { 0 };
	size_t len = expr ? strlen(expr) : 0;
	if (!expr || len < 4 || len >= SCHEDULE_MAX_LEN || expr[len - 1] != ')')
		return fail(msg, "schedule must be at(...), rate(...) or cron(...)");
	char body[SCHEDULE_MAX_LEN];
	const char *open = strchr(expr, '(');
	if (!open || strchr(open + 1, '(') || memchr(open + 1, ')', (size_t)(expr + len - 1 - (open + 1))))
		return fail(msg, "schedule must be at(...), rate(...) or cron(...)");
	snprintf(body, sizeof(body), "%.*s", (int)(expr + len - 1 - (open + 1)), open + 1);
	size_t kind_len = (size_t)(open - expr);
	int r;
	if (kind_len == 2 && strncmp(expr, "at", 2) == 0)
		s.kind = SCHEDULE_AT, r = parse_at(body, &s, msg);
	else if (kind_len == 4 && strncmp(expr, "rate", 4) == 0)
		s.kind = SCHEDULE_RATE, r = parse_rate(body, &s, msg);
	else if (kind_len == 4 && strncmp(expr, "cron", 4) == 0)
		s.kind = SCHEDULE_CRON, r = parse_cron(body, &s, msg);
	else
		r = fail(msg, "schedule must be at(...), rate(...) or cron(...)");
	if (r < 0)
		return r;
	*ret = s;
	return 0;
}

static bool year_ok(const struct schedule *s, int year)
{
	int i = year - SCHEDULE_YEAR_MIN;
	return i >= 0 && year <= SCHEDULE_YEAR_MAX && (s->years[i / 8] >> (i % 8) & 1);
}

static int days_in(int year, int month)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : d[month - 1];
}

static bool day_ok(const struct schedule *s, int year, int month, int day, int wday)
{
	if (s->any_dom)
		return s->weekdays >> wday & 1;
	if (s->last_day)
		return day == days_in(year, month);
	return s->days >> day & 1;
}

/* First (hour, minute) >= (h0, m0) of the cron sets; false when none that day. */
static bool time_in_day(const struct schedule *s, int h0, int m0, int *rh, int *rm)
{
	for (int h = h0; h < 24; h++) {
		if (!(s->hours >> h & 1))
			continue;
		for (int m = h == h0 ? m0 : 0; m < 60; m++)
			if (s->minutes >> m & 1) {
				*rh = h, *rm = m;
				return true;
			}
	}
	return false;
}

static int cron_next(const struct schedule *s, time_t after, time_t *ret)
{
	time_t t = after - after % 60 + 60; /* the next whole minute */
	struct tm tm;
	gmtime_r(&t, &tm);
	int year = tm.tm_year + 1900, month = tm.tm_mon + 1, day = tm.tm_mday;
	int h0 = tm.tm_hour, m0 = tm.tm_min;
	for (; year <= SCHEDULE_YEAR_MAX; year++, month = 1, day = 1, h0 = m0 = 0) {
		if (!year_ok(s, year))
			continue;
		for (; month <= 12; month++, day = 1, h0 = m0 = 0) {
			if (!(s->months >> month & 1))
				continue;
			for (; day <= days_in(year, month); day++, h0 = m0 = 0) {
				struct tm d = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day };
				time_t midnight = timegm(&d);
				struct tm w;
				gmtime_r(&midnight, &w);
				int h, m;
				if (!day_ok(s, year, month, day, w.tm_wday) ||
				    !time_in_day(s, h0, m0, &h, &m))
					continue;
				*ret = midnight + h * 3600 + m * 60;
				return 0;
			}
		}
	}
	return -ENOENT;
}

int autoscale_schedule_next(const struct schedule *s, time_t origin, time_t after, time_t *ret)
{
	switch (s->kind) {
	case SCHEDULE_AT:
		if (s->at <= after)
			return -ENOENT;
		*ret = s->at;
		return 0;
	case SCHEDULE_RATE:
		if (after < origin) {
			*ret = origin;
			return 0;
		}
		*ret = origin + ((after - origin) / s->period + 1) * s->period;
		return 0;
	case SCHEDULE_CRON: return cron_next(s, after, ret);
	}
	return -EINVAL;
}
