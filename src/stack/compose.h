/*
 * compose.h - a compose file (compose spec, the v3 keys `docker stack
 * deploy` reads) mapped onto berth's cluster objects: one ECS task
 * definition (awsvpc) and one ECS service per compose service, one berth
 * load balancer per published port, and one-off tasks for jobs. Pure: no
 * I/O except env_file reads, relative to the compose file's directory.
 * docs/stack.md has the mapping table.
 *
 * Every problem names the file, line, column and key path:
 *   stack.yml:12:9: services.web.ports[0]: invalid port '80:abc'
 * Unknown keys and keys berth cannot honour are errors; keys berth accepts
 * but cannot give Swarm's exact meaning (secrets, update_config.delay, ...)
 * are warnings with the same location.
 */
#ifndef BERTH_STACK_COMPOSE_H
#define BERTH_STACK_COMPOSE_H

#include <jansson.h>

#include "common/error.h"

/* Swarm's label for the stack an object belongs to; berth stores it as an ECS tag. */
#define STACK_TAG_NAMESPACE "com.docker.stack.namespace"
#define STACK_TAG_IMAGE     "com.docker.stack.image"
#define STACK_TAG_SERVICE   "berth.stack.service" /* the compose service's name */
#define STACK_TAG_HASH      "berth.stack.hash"    /* of the task definition the file asks for */
#define STACK_TAG_KIND      "berth.stack.kind"    /* "service" or "job" */

#define STACK_NAME_MAX                   32
#define STACK_MAX_SERVICES               200
#define STACK_DEFAULT_MEMORY_RESERVATION 64 /* MiB, when the file gives no memory at all */

struct compose_opts {
	const char *stack; /* the stack's name (stack_compose_stack_name_valid) */
	const char *file;  /* for messages */
	const char *dir;   /* env_file paths are relative to it (NULL: ".") */
	/* ${VAR} interpolation; NULL: nothing is set */
	const char *(*getenv)(const char *name, void *ctx);
	void *env_ctx;
};

/*
 * Parse and map. On success *ret is
 *   {"stack": S, "name": top-level name or null,
 *    "services": [ {"name", "ecsName" (S_name), "line", "kind": "service"|"job",
 *                   "image" (absent for a service built from "build"),
 *                   "build"?: {"context" (relative to the file's directory), "dockerfile"?,
 *                              "target"?, "args"?: {K: V}, "labels"?: {K: V}, "cacheFrom"?: [..],
 *                              "line"},
 *                   "dependsOn": [names],
 *                   "taskDefinition": RegisterTaskDefinition request (tags excluded),
 *                   "hash": hex SHA-256 of the canonical task definition,
 *                   "service": CreateService fields except cluster, taskDefinition,
 *                              loadBalancers, tags (REPLICA/DAEMON),
 *                   "ports": [{"published", "target", "protocol": "tcp", "lb": NAME}],
 *                   "tags": [{key, value}]} ... ],          (dependencies first)
 *    "warnings": ["FILE:LINE:COL: PATH: message", ...]}
 * Fails with -EINVAL and every error found (one per line) in err.
 */
int stack_compose_load(const char *text, size_t len, const struct compose_opts *o, json_t **ret,
		       struct berth_error **err);

/*
 * Set the image of a mapped service (an element of "services" above), e.g. the
 * reference apply built and pushed for a "build" service: its task definition,
 * image tag and hash follow. -EINVAL if service is not one.
 */
int stack_compose_set_image(json_t *service, const char *image);

/* Stack names: 1-STACK_NAME_MAX of [a-z0-9_-], starting with a letter or digit. */
bool stack_compose_stack_name_valid(const char *s);
/* The default stack name for a directory (its basename, lowercased, other characters dropped); new string. */
char *stack_compose_default_stack_name(const char *dir);
/* The load balancer name of a published port: STACK-SERVICE-PORT in ELB's alphabet, at most 32; new string.
 */
char *stack_compose_lb_name(const char *stack, const char *service, long port);

#endif
