/*
 * netops.h - container networking of a host (used through host.h by the
 * daemon and the agent; the API's network routes use it directly).
 *
 * Glue between the engine (struct engine_network_ops) and the networking
 * library (net/net.h): the daemon opens one `struct netops`, hands
 * host_netops_engine_ops + it to engine_open, and the API's network routes
 * (api/networks.c) use the same context.
 *
 * Which networks a container belongs to (docker's NetworkingConfig plus later
 * connect/disconnect of a stopped container) is kept per container in
 * <root>/netops/<id>.json: {"Networks": {"<name>": {"Aliases": [..],
 * "IPAMConfig": {"IPv4Address": ".."}}, ...}, "Order": ["<name>", ...]}.
 * The network state of a running container lives in net/ alone.
 */
#ifndef BERTH_HOST_NETOPS_H
#define BERTH_HOST_NETOPS_H

#include <jansson.h>

#include "common/error.h"
#include "engine/engine.h"
#include "net/net.h"

struct netops;

extern const struct engine_network_ops host_netops_engine_ops;

/* Open net/ under <root>/net and <exec_root>/net; bridge: the default network's device (NULL: berth0);
 * subnet6: its IPv6 subnet (NULL: IPv4 only). */
int host_netops_open(const char *root, const char *exec_root, const char *bridge, const char *subnet6,
		     struct netops **ret, struct berth_error **err);
/* The engine the ops read container configs from (set once, after engine_open). */
void host_netops_set_engine(struct netops *n, struct engine *e);
/* After engine_open: tear down network state of containers not running, drop stale records. */
int host_netops_gc(struct netops *n, struct berth_error **err);
struct net_ctx *host_netops_net(struct netops *n);
struct netops *host_netops_free(struct netops *n);
/* The daemon stops cleanly and no container runs: remove its firewall chains (net_ctx_remove_firewall). */
int host_netops_remove_firewall(struct netops *n, struct berth_error **err);

/*
 * POST /containers/create hook, before the engine creates anything: validate
 * the network mode, NetworkingConfig and published ports (-ENOENT unknown
 * network, -EINVAL bad ports/--ip). host_netops_create_commit records the
 * networks once the engine returned the id (a record that cannot be written,
 * e.g. on a full disk, fails: the caller removes the container).
 */
int host_netops_create_check(struct netops *n, const json_t *config, const json_t *hostconfig,
			     const json_t *networking_config, struct berth_error **err);
/* The record's entry for network `name` from an EndpointSettings object ep (may be NULL): Aliases,
 * IPAMConfig, Links, DriverOpts and MacAddress as given; mac: the container's Config.MacAddress
 * (used when ep has none; may be NULL). */
json_t *host_netops_endpoint_entry(const char *name, const json_t *ep, const char *mac);
int host_netops_create_commit(struct netops *n, const char *cid, const json_t *config,
			      const json_t *hostconfig, const json_t *networking_config,
			      struct berth_error **err);
/* Fill Ports and NetworkSettings.Networks of a GET /containers/json entry j (returned). */
json_t *host_netops_container_summary(struct netops *n, const struct engine_container_info *i, json_t *j);
/* Replace NetworkSettings in a container inspect body j (returned). */
json_t *host_netops_container_json(struct netops *n, const struct engine_container_info *i, json_t *j);

/* Used by networks.c: the container's recorded networks (new reference, never NULL). */
json_t *host_netops_record_load(struct netops *n, const char *cid);
int host_netops_record_save(struct netops *n, const char *cid, const json_t *rec, struct berth_error **err);
/* Names of containers (id -> name) attached to network `name` for inspect (new ref). */
bool host_netops_is_running_mode(const struct engine_container_info *i);

#endif
