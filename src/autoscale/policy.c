/*
 * policy.c - scaling decisions (policy.h). Arithmetic only; the caller owns
 * the clock, the metrics and the store.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autoscale/policy.h"

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Every datapoint among the last k satisfies cmp against x, and at least half
 * of them exist: a period an agent's sample missed (clock jitter puts two in
 * the next one) neither breaks a breach nor makes one.
 */
static bool last_all(const double *pts, size_t n, size_t k, bool (*cmp)(double, double), double x)
{
	if (n < k || k == 0)
		return false;
	size_t present = 0;
	for (size_t i = n - k; i < n; i++) {
		if (isnan(pts[i]))
			continue;
		if (!cmp(pts[i], x))
			return false;
		present++;
	}
	return 2 * present >= k;
}

/* The latest datapoint that exists (NAN when none does). */
static double latest(const double *pts, size_t n)
{
	for (size_t i = n; i-- > 0;)
		if (!isnan(pts[i]))
			return pts[i];
	return NAN;
}

static bool gt(double a, double b)
{
	return a > b;
}
static bool ge(double a, double b)
{
	return a >= b;
}
static bool lt(double a, double b)
{
	return a < b;
}
static bool le(double a, double b)
{
	return a <= b;
}

/* ceil(capacity * value / target) without libm's ceil (integers suffice). */
static int64_t proportional(int64_t capacity, double value, double target)
{
	double want = (double)(capacity > 0 ? capacity : 1) * value / target;
	int64_t w = (int64_t)want;
	return (double)w < want ? w + 1 : w;
}

void autoscale_target_tracking(const struct autoscale_target *p, const double *points, size_t n,
			       const struct autoscale_state *st, struct autoscale_decision *ret)
{
	*ret = (struct autoscale_decision){ .capacity = st->capacity };
	if (p->target <= 0)
		return;
	bool high = last_all(points, n, AUTOSCALE_HIGH_POINTS, gt, p->target);
	bool low = !high && last_all(points, n, AUTOSCALE_LOW_POINTS, lt, p->target * 0.9);
	if (!high && !low)
		return;
	ret->alarm = true;
	ret->high = high;
	ret->value = latest(points, n);
	int64_t want = clamp(proportional(st->capacity, ret->value, p->target), st->min, st->max);
	if (high && st->capacity < st->min)
		want = st->min;
	if (high ? want <= st->capacity : want >= st->capacity) {
		ret->held_by = "bounds";
		return;
	}
	if (!high && p->disable_scale_in) {
		ret->held_by = "scale-in disabled";
		return;
	}
	double last_any = st->last_out > st->last_in ? st->last_out : st->last_in;
	if (high ? st->last_out && st->now - st->last_out < p->scale_out_cooldown
		 : last_any && st->now - last_any < p->scale_in_cooldown) {
		ret->held_by = "cooldown";
		return;
	}
	ret->act = true;
	ret->capacity = want;
}

static bool compare(enum autoscale_compare c, double v, double threshold)
{
	switch (c) {
	case AUTOSCALE_GE: return ge(v, threshold);
	case AUTOSCALE_GT: return gt(v, threshold);
	case AUTOSCALE_LT: return lt(v, threshold);
	case AUTOSCALE_LE: return le(v, threshold);
	}
	return false;
}

void autoscale_step_scaling(const struct autoscale_steps *p, const double *points, size_t n,
			    const struct autoscale_state *st, struct autoscale_decision *ret)
{
	*ret = (struct autoscale_decision){ .capacity = st->capacity };
	size_t k = p->periods > 0 ? (size_t)p->periods : 1;
	if (n < k)
		return;
	size_t present = 0;
	for (size_t i = n - k; i < n; i++) {
		if (isnan(points[i]))
			continue;
		if (!compare(p->compare, points[i], p->threshold))
			return;
		present++;
	}
	if (2 * present < k || !present)
		return;
	ret->alarm = true;
	ret->value = latest(points, n);
	double rel = ret->value - p->threshold;
	const struct autoscale_step *step = NULL;
	for (size_t i = 0; i < p->n && !step; i++)
		if ((!p->steps[i].has_lower || rel >= p->steps[i].lower) &&
		    (!p->steps[i].has_upper || rel < p->steps[i].upper))
			step = &p->steps[i];
	if (!step) {
		ret->held_by = "no step for the value";
		return;
	}
	int64_t want = st->capacity;
	if (p->type == AUTOSCALE_EXACT) {
		want = step->adjustment;
	} else if (p->type == AUTOSCALE_CHANGE) {
		want = st->capacity + step->adjustment;
	} else {
		int64_t delta = st->capacity * step->adjustment / 100;
		if (step->adjustment && llabs(delta) < p->min_magnitude)
			delta = step->adjustment > 0 ? p->min_magnitude : -p->min_magnitude;
		if (!delta && step->adjustment)
			delta = step->adjustment > 0 ? 1 : -1;
		want = st->capacity + delta;
	}
	want = clamp(want, st->min, st->max);
	ret->high = want > st->capacity;
	if (want == st->capacity) {
		ret->held_by = step->adjustment || p->type == AUTOSCALE_EXACT ? "bounds" : "no change";
		return;
	}
	double last = st->last_out > st->last_in ? st->last_out : st->last_in;
	if (last && st->now - last < p->cooldown) {
		ret->held_by = "cooldown";
		return;
	}
	ret->act = true;
	ret->capacity = want;
}

int autoscale_steps_check(const struct autoscale_steps *p, char msg[160])
{
	if (p->n == 0) {
		snprintf(msg, 160, "StepAdjustments must contain at least one step");
		return -EINVAL;
	}
	/* sort a copy by lower bound (open below first), then require each upper = next lower */
	struct autoscale_step s[AUTOSCALE_MAX_STEPS];
	size_t n = p->n;
	for (size_t i = 0; i < n; i++)
		s[i] = p->steps[i];
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--) {
			bool before = !s[j].has_lower || (s[j - 1].has_lower && s[j].lower < s[j - 1].lower);
			if (!before)
				break;
			struct autoscale_step t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		if (!s[i].has_lower && !s[i].has_upper && n > 1) {
			snprintf(msg, 160, "Step adjustments with both bounds null overlap the others");
			return -EINVAL;
		}
		if (s[i].has_lower && s[i].has_upper && s[i].upper <= s[i].lower) {
			snprintf(msg, 160,
				 "MetricIntervalUpperBound must be greater than MetricIntervalLowerBound");
			return -EINVAL;
		}
		if (i + 1 < n && (!s[i].has_upper || !s[i + 1].has_lower || s[i].upper != s[i + 1].lower)) {
			snprintf(msg, 160, "Step adjustment intervals must not overlap or leave gaps");
			return -EINVAL;
		}
		if (i > 0 && !s[i].has_lower) {
			snprintf(msg, 160, "Only one step adjustment may have a null lower bound");
			return -EINVAL;
		}
	}
	return 0;
}
