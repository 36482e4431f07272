/*
 * retention-plan.c - which finished records are old enough to go (retention.h).
 */
#include <string.h>

#include "common/macro.h"
#include "server/retention.h"

static bool str_is(const json_t *o, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v && !strcmp(v, want);
}

double server_retention_task_finished_at(const json_t *task)
{
	static const char *const keys[] = { "stoppedAt", "executionStoppedAt", "stoppingAt", "createdAt" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(task, keys[i]);
		if (json_is_number(v) && json_number_value(v) > 0)
			return json_number_value(v);
	}
	return 0;
}

bool server_retention_task_expired(const json_t *task, double now, int retention)
{
	if (!str_is(task, "lastStatus", "STOPPED") || !str_is(task, "desiredStatus", "STOPPED"))
		return false;
	double at = server_retention_task_finished_at(task);
	return at > 0 && now - at >= retention;
}

bool server_retention_service_expired(const json_t *svc, double now, int retention)
{
	json_t *at = json_object_get(svc, "berthInactiveAt");
	return str_is(svc, "status", "INACTIVE") && json_is_number(at) && json_number_value(at) > 0 &&
	       now - json_number_value(at) >= retention;
}

int server_retention_sweep_interval(int retention)
{
	int n = retention / 4;
	return n < 1 ? 1 : n > 60 ? 60 : n;
}
