/*
 * policy.h - the decisions of Application Auto Scaling's policies, pure:
 * given a metric's recent datapoints (one per period, oldest first; NAN
 * where the period had no data), the current capacity, its bounds and the
 * times of the last scaling activities, what capacity to set and which
 * alarm said so. The server (server/autoscaling.c) feeds it the service's
 * utilization from its metrics and applies the answer.
 *
 * Target tracking follows what AWS creates for such a policy: a high alarm
 * (the last AUTOSCALE_HIGH_POINTS datapoints all above the target) scales
 * out to ceil(capacity * value / target), and a low alarm (the last
 * AUTOSCALE_LOW_POINTS all below 90% of the target) scales in to the same
 * formula; scale-out waits ScaleOutCooldown after the last scale-out,
 * scale-in waits ScaleInCooldown after any activity, DisableScaleIn turns
 * scale-in off.
 *
 * Step scaling has an alarm of its own: the metric compared with a
 * threshold over some datapoints (berth has no CloudWatch alarms; see
 * docs/autoscaling.md); while it is in ALARM the step whose interval
 * (relative to the threshold) holds the value adjusts the capacity, at most
 * once per Cooldown.
 */
#ifndef BERTH_AUTOSCALE_POLICY_H
#define BERTH_AUTOSCALE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTOSCALE_HIGH_POINTS 3
#define AUTOSCALE_LOW_POINTS  15
#define AUTOSCALE_MAX_STEPS   20

struct autoscale_target {
	double target;
	int scale_out_cooldown, scale_in_cooldown; /* seconds */
	bool disable_scale_in;
};

enum autoscale_adjustment { AUTOSCALE_CHANGE, AUTOSCALE_PERCENT, AUTOSCALE_EXACT };
enum autoscale_compare { AUTOSCALE_GE, AUTOSCALE_GT, AUTOSCALE_LT, AUTOSCALE_LE };

struct autoscale_step {
	bool has_lower, has_upper;
	double lower, upper; /* relative to the alarm's threshold: lower <= value - threshold < upper */
	int64_t adjustment;
};

struct autoscale_steps {
	enum autoscale_adjustment type;
	struct autoscale_step steps[AUTOSCALE_MAX_STEPS];
	size_t n;
	int64_t min_magnitude; /* PercentChangeInCapacity: at least this many tasks */
	int cooldown;          /* seconds */
	/* the alarm */
	double threshold;
	enum autoscale_compare compare;
	int periods; /* datapoints that must all breach */
};

struct autoscale_state {
	int64_t capacity, min, max;
	double now, last_out, last_in; /* epoch seconds; 0: never */
};

struct autoscale_decision {
	bool act;         /* a new capacity (differs from the current one) */
	int64_t capacity; /* the new capacity, within [min, max] */
	bool alarm;       /* an alarm is in ALARM (act may still be false: cooldown, bounds) */
	bool high;        /* which one (target tracking: AlarmHigh vs AlarmLow) */
	double value;     /* the datapoint that decided */
	const char
	    *held_by; /* why an alarm did not act: "cooldown", "bounds", "scale-in disabled", or NULL */
};

/* points[n], oldest first (NAN: no data). */
void autoscale_target_tracking(const struct autoscale_target *p, const double *points, size_t n,
			       const struct autoscale_state *st, struct autoscale_decision *ret);
void autoscale_step_scaling(const struct autoscale_steps *p, const double *points, size_t n,
			    const struct autoscale_state *st, struct autoscale_decision *ret);
/*
 * Check step adjustments as Application Auto Scaling does: intervals must not
 * overlap or leave gaps, only one may be open below and one above, and a
 * null bound only at the ends. -EINVAL with msg.
 */
int autoscale_steps_check(const struct autoscale_steps *p, char msg[160]);

#endif
