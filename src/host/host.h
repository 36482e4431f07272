/*
 * host.h - one container host, assembled the same way for every front end:
 * the image store, container networking (netops.h over net/) and the engine,
 * with the host's default log configuration.
 *
 * `berth daemon` serves the Docker Engine API over a host; `berth agent`
 * runs the cluster's tasks through one and serves the same API on the node.
 * A container created with host_container_create() is the same whichever
 * front end asked: its networks are checked and recorded and the host's
 * default log driver applies where the request names none.
 *
 * Layering: host/ sits on engine/, image/ and net/; api/, the agent and the
 * CLI sit on host/.
 */
#ifndef BERTH_HOST_HOST_H
#define BERTH_HOST_HOST_H

#include <jansson.h>

#include "common/error.h"
#include "engine/engine.h"

struct image_store;
struct netops;

struct host_config {
	const char *root;      /* required: state (images, containers, networks, volumes) */
	const char *exec_root; /* required: sockets, shim state */
	/* named runtimes (runtime/registry.h; host/runtimes.h parses the options); NULL: berth, runc */
	const struct runtime_registry *runtimes;
	const char *bridge;            /* default network's bridge; NULL: berth0; "none": no networking */
	const char *bridge_subnet6;    /* default network's IPv6 subnet (--fixed-cidr-v6); NULL: IPv4 only */
	const char *init_path;         /* --init binary; NULL: the engine's default */
	const json_t *default_ulimits; /* Docker Ulimits array for every container; NULL: none */
	const char *log_driver;        /* default log driver; NULL: json-file */
	const json_t *log_opts;        /* its options (object), may be NULL */
	const char *cgroup_parent;     /* containers' cgroups: /<parent>/<id>; NULL: berth */
};

/* Borrow the members; they live until host_close(). */
struct host {
	struct engine *engine;
	struct image_store *images;
	struct netops *net; /* NULL when the bridge is "none" */
	char *root, *exec_root;
	char *log_driver; /* NULL: json-file */
	json_t *log_opts; /* NULL: none */
	int lock_fd;      /* flock on ROOT/host.lock: one daemon or agent per root */
};

/*
 * Check the log defaults (driver and options) before anything is opened, so a
 * front end can refuse a bad flag at start. Accepts NULLs.
 */
int host_check_log_defaults(const char *driver, const json_t *opts, struct berth_error **err);

/*
 * Create root and exec root (0711), lock the root (-EBUSY while another
 * daemon or agent holds it), open the image store, networking (unless
 * bridge "none") and the engine; tear down network state of containers that
 * are not running. On failure nothing stays open and *ret is untouched.
 */
int host_open(const struct host_config *cfg, struct host **ret, struct berth_error **err);
/* Begin shutting down: the engine's blocked waits and followers return. */
void host_shutdown(struct host *h);
/* Close everything (containers keep running under their shims). Accepts NULL; returns NULL. */
struct host *host_close(struct host *h);

/*
 * Create a container from Docker's shapes: config (Config fields), hostconfig
 * and networking_config (NULL for none). The host's default log config fills
 * a missing HostConfig.LogConfig; the network mode, NetworkingConfig and
 * published ports are validated (-ENOENT unknown network, -EINVAL bad ports
 * or --ip) before the engine creates anything, and recorded after. *ret_id is
 * the new container's id (caller frees).
 */
int host_container_create(struct host *h, const char *name, const json_t *config, const json_t *hostconfig,
			  const json_t *networking_config, char **ret_id, struct berth_error **err);

/* Docker's NetworkSettings for an inspect body j (returned, consumed). */
json_t *host_container_json(struct host *h, const struct engine_container_info *i, json_t *j);
/* Ports and NetworkSettings.Networks for a GET /containers/json entry j (returned, consumed). */
json_t *host_container_summary(struct host *h, const struct engine_container_info *i, json_t *j);

/*
 * A task cgroup (/<path> in every hierarchy; path with or without the leading '/', the parent of the task's
 * containers): cpu_units (ECS: 1024 per core; 0: unlimited) becomes a CFS
 * quota and a weight, memory_bytes (0: unlimited) the hard limit. Only cpu
 * and memory are written, so device rules stay the containers' own.
 */
int host_cgroup_create(const char *name, int64_t cpu_units, int64_t memory_bytes, struct berth_error **err);
/* Remove the task cgroup (its containers' cgroups must be gone); a missing one is success. */
int host_cgroup_remove(const char *name, struct berth_error **err);

#endif
