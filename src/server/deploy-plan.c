/*
 * deploy-plan.c - deployment arithmetic (see deploy-plan.h). Pure: the
 * controller in deploy.c does the counting and the store writes.
 *
 * Scale-in is a greedy choice: after each pick the counts change, so a long
 * scale-in keeps the zones level all the way down. O(count * n) with small n
 * (one service's tasks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "server/deploy-plan.h"

int64_t server_deploy_failure_threshold(int64_t desired)
{
	int64_t half = (desired + 1) / 2; /* ceil(0.5 * desired) */
	return half < 3 ? 3 : half > 200 ? 200 : half;
}

double server_deploy_backoff(int64_t failures)
{
	if (failures <= 0)
		return 0;
	double d = 1;
	for (int64_t i = 1; i < failures && d < DEPLOY_BACKOFF_MAX_SEC; i++)
		d *= 2;
	return d > DEPLOY_BACKOFF_MAX_SEC ? DEPLOY_BACKOFF_MAX_SEC : d;
}

int64_t server_deploy_max_total(int64_t desired, int64_t max_percent)
{
	return desired * max_percent / 100;
}

int64_t server_deploy_min_healthy(int64_t desired, int64_t min_percent)
{
	return (desired * min_percent + 99) / 100;
}

void server_deploy_rolling_step(const struct deploy_counts *in, struct deploy_step *out)
{
	int64_t want = in->desired - in->primary_active;
	int64_t room = server_deploy_max_total(in->desired, in->max_percent) - in->total;
	int64_t start = want < room ? want : room;
	int64_t budget = in->healthy - server_deploy_min_healthy(in->desired, in->min_percent);
	out->start = start > 0 ? start : 0;
	out->stop_budget = budget > 0 ? budget : 0;
	out->floor_met = budget >= 0;
}

enum deploy_readiness server_deploy_readiness(const struct deploy_task_facts *f)
{
	if (!f->running)
		return DEPLOY_NOT_RUNNING;
	if (f->elb_failed || (f->checked && f->health && strcmp(f->health, "UNHEALTHY") == 0))
		return DEPLOY_FAILING;
	if (f->elb_pending)
		return DEPLOY_WARMING; /* ECS: a load-balanced task is healthy once its targets are */
	if (f->checked ? f->health && strcmp(f->health, "HEALTHY") == 0
		       : f->load_balanced || f->running_for >= DEPLOY_MONITOR_SEC)
		return DEPLOY_HEALTHY;
	return DEPLOY_WARMING;
}

const char *server_deploy_readiness_name(enum deploy_readiness r)
{
	switch (r) {
	case DEPLOY_NOT_RUNNING: return "not running yet";
	case DEPLOY_WARMING: return "running, health not known yet";
	case DEPLOY_HEALTHY: return "healthy";
	case DEPLOY_FAILING: return "failing health checks";
	}
	return "?";
}

bool server_deploy_free_stop(enum deploy_readiness r, const struct deploy_step *step)
{
	switch (r) {
	case DEPLOY_NOT_RUNNING:
	case DEPLOY_FAILING: return true;
	case DEPLOY_WARMING: return step->floor_met;
	case DEPLOY_HEALTHY: break;
	}
	return false;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

#define LEVELS (DEPLOY_MAX_KEYS + 2) /* zone, keys..., node */

static const char *level_value(const struct deploy_task *t, size_t level)
{
	return level == 0 ? t->zone : level <= DEPLOY_MAX_KEYS ? t->keys[level - 1] : t->node;
}

/* Remaining tasks (not yet chosen) sharing t's domain at each level: zone, zone+keys[0], ..., node. */
static void load_of(const struct deploy_task *tasks, size_t n, const bool *gone, size_t i,
		    size_t load[LEVELS])
{
	memset(load, 0, LEVELS * sizeof(*load));
	for (size_t k = 0; k < n; k++) {
		if (gone[k])
			continue;
		for (size_t l = 0; l < LEVELS && same(level_value(&tasks[k], l), level_value(&tasks[i], l));
		     l++)
			load[l]++;
	}
}

size_t server_deploy_scale_in(const struct deploy_task *tasks, size_t n, size_t count, size_t *ret_idx)
{
	_cleanup_free_ bool *gone = xcalloc(n ? n : 1, sizeof(*gone));
	size_t picked = 0;
	while (picked < count) {
		size_t best = n, bl[LEVELS] = { 0 };
		for (size_t i = 0; i < n; i++) {
			if (gone[i] || !tasks[i].candidate)
				continue;
			size_t l[LEVELS];
			load_of(tasks, n, gone, i, l);
			int c = best == n ? 1 : 0;
			for (size_t k = 0; c == 0 && k < LEVELS; k++)
				c = l[k] > bl[k] ? 1 : l[k] < bl[k] ? -1 : 0;
			if (c > 0 || (c == 0 && tasks[i].created > tasks[best].created)) {
				best = i;
				memcpy(bl, l, sizeof(bl));
			}
		}
		if (best == n)
			break;
		gone[best] = true;
		ret_idx[picked++] = best;
	}
	return picked;
}

void server_deploy_id_format(uint64_t r, char out[28])
{
	/* 19 digits: 10^18 .. 10^19-1 */
	uint64_t v = 1000000000000000000ULL + r % 9000000000000000000ULL;
	snprintf(out, 28, "ecs-svc/%019llu", (unsigned long long)v);
}
