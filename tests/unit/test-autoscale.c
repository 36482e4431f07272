/* test-autoscale.c - schedule expressions and scaling decisions (autoscale/). */
#include <math.h>
#include <string.h>

#include "unit.h"
#include "autoscale/policy.h"
#include "autoscale/schedule.h"

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s
	};
	return timegm(&tm);
}

static time_t next_of(const char *expr, time_t origin, time_t after)
{
	struct schedule s;
	char msg[SCHEDULE_MSG_MAX];
	if (autoscale_schedule_parse(expr, &s, msg) < 0)
		fail_msg("%s: %s", expr, msg);
	time_t t = 0;
	if (autoscale_schedule_next(&s, origin, after, &t) < 0)
		return -1;
	return t;
}

static void test_schedule_next(void **state)
{
	(void)state;
	time_t now = utc(2026, 3, 10, 10, 7, 30); /* a Tuesday */
	assert_int_equal(next_of("at(2026-03-10T10:08:00)", 0, now), utc(2026, 3, 10, 10, 8, 0));
	assert_int_equal(next_of("at(2026-03-10T10:07:00)", 0, now), -1);
	assert_int_equal(next_of("rate(5 minutes)", now - 60, now), now + 240);
	assert_int_equal(next_of("rate(1 hour)", now + 10, now), now + 10);
	assert_int_equal(next_of("rate(2 days)", now, now), now + 2 * 86400);
	assert_int_equal(next_of("cron(0 12 * * ? *)", 0, now), utc(2026, 3, 10, 12, 0, 0));
	assert_int_equal(next_of("cron(*/15 * * * ? *)", 0, now), utc(2026, 3, 10, 10, 15, 0));
	assert_int_equal(next_of("cron(0 8 ? * MON-FRI *)", 0, utc(2026, 3, 13, 9, 0, 0)),
			 utc(2026, 3, 16, 8, 0, 0));
	assert_int_equal(next_of("cron(0 8 ? * 1 *)", 0, now), utc(2026, 3, 15, 8, 0, 0)); /* 1 = Sunday */
	assert_int_equal(next_of("cron(30 2 L * ? *)", 0, now), utc(2026, 3, 31, 2, 30, 0));
	assert_int_equal(next_of("cron(0 0 29 FEB ? *)", 0, now), utc(2028, 2, 29, 0, 0, 0));
	assert_int_equal(next_of("cron(5,10 3 1 jan,jul ? 2027)", 0, now), utc(2027, 1, 1, 3, 5, 0));
	assert_int_equal(next_of("cron(0 0 1 1 ? 2020)", 0, now), -1);
	assert_int_equal(next_of("cron(7 10 10 3 ? 2026)", 0, now), -1); /* the same minute is not after */
}

static void test_schedule_errors(void **state)
{
	(void)state;
	const char *bad[] = {
		"",
		"cron",
		"cron()",
		"rate(5 minute)",
		"rate(1 minutes)",
		"rate(0 minutes)",
		"rate(-1 hours)",
		"rate(5 weeks)",
		"rate(5minutes)",
		"rate( 5 minutes)",
		"at(2026-02-30T00:00:00)",
		"at(2026-13-01T00:00:00)",
		"at(2026-01-01 00:00:00)",
		"at(2026-01-01T00:00:00Z)",
		"cron(0 12 * * * *)",
		"cron(0 12 ? * ? *)",
		"cron(0 12 * * ?)",
		"cron(0 12 * * ? * *)",
		"cron(60 12 * * ? *)",
		"cron(0 24 * * ? *)",
		"cron(0 12 32 * ? *)",
		"cron(0 12 ? * 8 *)",
		"cron(0 12 ? * MON#2 *)",
		"cron(0 12 15W * ? *)",
		"cron(0 12 5-3 * ? *)",
		"cron(0/0 12 * * ? *)",
		"cron(0 12 * FOO ? *)",
		"cron(0 12 * * ? 1969)",
		"cron(0 12 * * ? 2200)",
		"cron(0,,1 12 * * ? *)",
		"cron((0 12 * * ? *)",
		"every(5 minutes)",
		"cron(0 12 * * ? *) ",
		"rate(5 minutes))",
		"cron(? 12 * * ? *)",
		"cron(L 12 * * ? *)",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct schedule s;
		char msg[SCHEDULE_MSG_MAX] = "";
		if (autoscale_schedule_parse(bad[i], &s, msg) != -EINVAL)
			fail_msg("'%s' parsed", bad[i]);
		assert_true(strlen(msg) > 10);
	}
	char msg[SCHEDULE_MSG_MAX];
	struct schedule s;
	assert_int_equal(autoscale_schedule_parse("cron(0 12 * * ? *)x", &s, msg), -EINVAL);
	assert_int_equal(autoscale_schedule_parse("cron(0 12 ? * MON#2 *)", &s, msg), -EINVAL);
	assert_non_null(strstr(msg, "day-of-week"));
}

static void test_target_tracking(void **state)
{
	(void)state;
	struct autoscale_target p = { .target = 50, .scale_out_cooldown = 60, .scale_in_cooldown = 120 };
	struct autoscale_state st = { .capacity = 2, .min = 1, .max = 6, .now = 1000 };
	struct autoscale_decision d;
	double high[] = { NAN, 90, 95, 100 };
	autoscale_target_tracking(&p, high, 4, &st, &d);
	assert_true(d.act && d.alarm && d.high);
	assert_int_equal(d.capacity, 4); /* ceil(2 * 100 / 50) */
	double two[] = { 40, 95, 100 };  /* only two above: no alarm */
	autoscale_target_tracking(&p, two, 3, &st, &d);
	assert_false(d.alarm);
	st.last_out = 970; /* within the scale-out cooldown */
	autoscale_target_tracking(&p, high, 4, &st, &d);
	assert_true(d.alarm && !d.act);
	assert_string_equal(d.held_by, "cooldown");
	st.last_out = 0;
	st.capacity = 6;
	autoscale_target_tracking(&p, high, 4, &st, &d);
	assert_string_equal(d.held_by, "bounds");
	double low[AUTOSCALE_LOW_POINTS];
	for (size_t i = 0; i < ARRAY_SIZE(low); i++)
		low[i] = 10;
	st.capacity = 4;
	autoscale_target_tracking(&p, low, ARRAY_SIZE(low), &st, &d);
	assert_true(d.act && !d.high);
	assert_int_equal(d.capacity, 1); /* ceil(4 * 10 / 50) */
	st.last_out = 950;               /* scale-in waits its cooldown after any activity */
	autoscale_target_tracking(&p, low, ARRAY_SIZE(low), &st, &d);
	assert_string_equal(d.held_by, "cooldown");
	st.last_out = 0;
	p.disable_scale_in = true;
	autoscale_target_tracking(&p, low, ARRAY_SIZE(low), &st, &d);
	assert_false(d.act);
	low[3] = NAN; /* a missing datapoint neither breaks the breach ... */
	p.disable_scale_in = false;
	autoscale_target_tracking(&p, low, ARRAY_SIZE(low), &st, &d);
	assert_true(d.alarm && d.act);
	for (size_t i = 0; i < 8; i++) /* ... nor makes one when most are missing */
		low[i] = NAN;
	autoscale_target_tracking(&p, low, ARRAY_SIZE(low), &st, &d);
	assert_false(d.alarm);
}

static void test_step_scaling(void **state)
{
	(void)state;
	struct autoscale_steps p = { .type = AUTOSCALE_CHANGE,
				     .n = 2,
				     .cooldown = 30,
				     .threshold = 70,
				     .compare = AUTOSCALE_GE,
				     .periods = 2 };
	p.steps[0] = (struct autoscale_step){
		.has_lower = true, .lower = 0, .has_upper = true, .upper = 20, .adjustment = 1
	};
	p.steps[1] = (struct autoscale_step){ .has_lower = true, .lower = 20, .adjustment = 3 };
	char msg[160];
	assert_int_equal(autoscale_steps_check(&p, msg), 0);
	struct autoscale_state st = { .capacity = 2, .min = 1, .max = 10, .now = 1000 };
	struct autoscale_decision d;
	double pts[] = { 75, 80 };
	autoscale_step_scaling(&p, pts, 2, &st, &d);
	assert_true(d.act);
	assert_int_equal(d.capacity, 3);
	double big[] = { 95, 99 };
	autoscale_step_scaling(&p, big, 2, &st, &d);
	assert_int_equal(d.capacity, 5);
	double one[] = { 10, 99 }; /* one datapoint breaching of two: OK state */
	autoscale_step_scaling(&p, one, 2, &st, &d);
	assert_false(d.alarm);
	p.type = AUTOSCALE_PERCENT;
	p.steps[1].adjustment = 50;
	p.min_magnitude = 2;
	autoscale_step_scaling(&p, big, 2, &st, &d);
	assert_int_equal(d.capacity, 4); /* 50% of 2 is 1, at least 2 */
	p.type = AUTOSCALE_EXACT;
	autoscale_step_scaling(&p, big, 2, &st, &d);
	assert_int_equal(d.capacity, 10); /* 50 clamped to max */
	st.last_in = 990;
	autoscale_step_scaling(&p, big, 2, &st, &d);
	assert_string_equal(d.held_by, "cooldown");
	/* bad step sets */
	p.steps[1].lower = 30; /* a gap */
	assert_int_equal(autoscale_steps_check(&p, msg), -EINVAL);
	p.steps[1].lower = 10; /* an overlap */
	assert_int_equal(autoscale_steps_check(&p, msg), -EINVAL);
	p.steps[1] = (struct autoscale_step){ .adjustment = 1 };
	assert_int_equal(autoscale_steps_check(&p, msg), -EINVAL);
	p.n = 0;
	assert_int_equal(autoscale_steps_check(&p, msg), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule_next),
		cmocka_unit_test(test_schedule_errors),
		cmocka_unit_test(test_target_tracking),
		cmocka_unit_test(test_step_scaling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
