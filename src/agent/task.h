/*
 * task.h - ECS task definitions on one host: how a task's containers become
 * engine containers (names, labels, Docker Config/HostConfig), the pure part
 * of the agent, with no I/O, so it is unit-tested and fuzzed on its own.
 *
 * A task is its containers sharing one network namespace: with networkMode
 * awsvpc a "pause" container owns the namespace (and the task's IP) and every
 * container joins it (NetworkMode container:<pause>), as the ECS agent does;
 * bridge, host and none map to Docker's modes. A task cgroup (task-level
 * cpu/memory) is every container's CgroupParent.
 */
#ifndef BERTH_AGENT_TASK_H
#define BERTH_AGENT_TASK_H

#include <jansson.h>

#include "common/error.h"

/* Labels the ECS agent puts on task containers (docker ps / inspect on a node). */
#define AGENT_LABEL_TASK_ARN  "com.amazonaws.ecs.task-arn"
#define AGENT_LABEL_CONTAINER "com.amazonaws.ecs.container-name"
#define AGENT_LABEL_CLUSTER   "com.amazonaws.ecs.cluster"
#define AGENT_LABEL_FAMILY    "com.amazonaws.ecs.task-definition-family"
#define AGENT_LABEL_VERSION   "com.amazonaws.ecs.task-definition-version"
/* berth's own: which engine containers are the agent's (and the pause container's role). */
#define AGENT_LABEL_MANAGED   "io.berth.agent.task"
#define AGENT_LABEL_PAUSE     "io.berth.agent.pause"

/* Limits on what one task may ask of a host (hostile input is bounded, not trusted). */
#define AGENT_MAX_CONTAINERS 10   /* ECS: 10 container definitions per task definition */
#define AGENT_MAX_ITEMS      1024 /* env vars, ports, mounts, ulimits... per container */

struct agent_task_ctx {
	const char *task_arn;        /* required */
	const char *task_id;         /* required: 32 hex (the ARN's last component) */
	const char *cluster;         /* cluster name (label value is the cluster ARN, as ECS) */
	const char *cluster_arn;     /* required */
	const char *family;          /* required */
	int64_t revision;            /* >= 1 */
	const char *network_mode;    /* awsvpc, bridge, host, none; NULL: bridge (ECS on Linux) */
	const char *pause_id;        /* awsvpc: the namespace owner's container id (required there) */
	const char *cgroup_parent;   /* the task cgroup, NULL: the host's default */
	const json_t *volumes;       /* task volume name -> {"Bind": PATH} | {"Volume": NAME} */
	const json_t *container_ids; /* container name -> engine id of the task's created ones */
};

/*
 * The engine name of a task's container: ecs-FAMILY-REV-NAME-<first 20 hex of
 * the task id>, as the ECS agent names them (it uses 20 random hex). Caller frees.
 */
char *agent_container_name(const struct agent_task_ctx *ctx, const char *container);

/*
 * Translate one containerDefinitions entry (def) with its containerOverrides
 * entry (override, may be NULL: command, environment, cpu, memory,
 * memoryReservation) into Docker's Config (with Image, Labels, ExposedPorts,
 * Healthcheck, StopTimeout) and HostConfig (CpuShares, Memory,
 * MemoryReservation, PortBindings, NetworkMode, Binds, Mounts, VolumesFrom,
 * Ulimits, CapAdd/CapDrop, Init, ShmSize, Tmpfs, Devices, ReadonlyRootfs,
 * Privileged, Dns, DnsSearch, ExtraHosts, LogConfig, Sysctls, SecurityOpt,
 * CgroupParent). Every field is type-checked: -EINVAL with the field named
 * ("containerDefinitions[web].portMappings[1].containerPort: ...").
 * On success both outputs are new references.
 */
int agent_container_spec(const struct agent_task_ctx *ctx, const json_t *def, const json_t *override,
			 json_t **ret_config, json_t **ret_hostconfig, struct berth_error **err);

/*
 * Start order of a task's containers by dependsOn (START, COMPLETE, SUCCESS,
 * HEALTHY): *ret is an array of container names, dependencies first, ties in
 * definition order. -EINVAL on an unknown container, a cycle, a bad condition.
 */
int agent_task_order(const json_t *container_defs, json_t **ret, struct berth_error **err);

/* Is the container definition essential (ECS default: true)? */
bool agent_container_essential(const json_t *def);

#endif
