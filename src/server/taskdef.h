/*
 * taskdef.h - the task-definition validator: checks a RegisterTaskDefinition
 * request the way ECS does and returns the stored shape (defaults filled in).
 * Pure (jansson only); fuzzed by tests/fuzz/fuzz-taskdef.c.
 */
#ifndef BERTH_SERVER_TASKDEF_H
#define BERTH_SERVER_TASKDEF_H

#include <jansson.h>

#include "common/macro.h"

#define TASKDEF_MAX_CONTAINERS 10
/* ECS's limit on a task definition's JSON (64 KiB). */
#define TASKDEF_MAX_BYTES      (64 * 1024)
/* EC2 limits: task cpu units (10 vCPU), memory MiB (120 GiB), container memory floor (ECS: 6 MiB). */
#define TASKDEF_MAX_CPU        10240
#define TASKDEF_MAX_MEMORY     (120 * 1024)
#define TASKDEF_MIN_MEMORY     6

struct taskdef_error {
	const char *type; /* "ClientException" or "SerializationException" */
	char *msg;        /* names the field, e.g. "containerDefinitions[1].image" */
};

/*
 * Validate `in` (the request body). On success *ret is a new object with
 * family, containerDefinitions (essential defaulted to true, names checked),
 * networkMode (default "bridge"), volumes, placementConstraints, cpu/memory
 * as strings of integers when given, requiresCompatibilities, pidMode,
 * ipcMode, taskRoleArn, executionRoleArn. On failure returns -EINVAL and
 * fills *e (caller frees e->msg).
 */
int server_taskdef_validate(json_t *in, json_t **ret, struct taskdef_error *e);

/* Task-level cpu units / memory MiB of a stored definition: the task value, else the sum of containers. */
int64_t server_taskdef_cpu(json_t *td);
int64_t server_taskdef_memory(json_t *td);

#endif
