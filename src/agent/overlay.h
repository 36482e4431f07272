/*
 * overlay.h - the agent's VXLAN dataplane: awsvpc tasks on different hosts
 * reach each other by IP (docs/cluster.md "Overlay").
 *
 * flannel's vxlan backend is the model. Each node holds a subnet of the
 * cluster CIDR (the server hands it out at register) for its task network.
 * The agent keeps one kernel vxlan device (VNI from the server, UDP 4789,
 * `local` = the node's underlay address, no learning) whose address is the
 * subnet's network address (the node's VTEP address, a /32), and for every
 * peer node:
 *
 *     route  PEER_SUBNET via PEER_VTEP dev DEV onlink
 *     neigh  PEER_VTEP lladdr PEER_MAC dev DEV nud permanent
 *     fdb    PEER_MAC dev DEV dst PEER_ADDRESS self permanent
 *
 * The peer list comes from the server's long poll GET /agent/v1/peers; on
 * every answer the agent reads what the kernel has on the device, diffs it
 * with what the peers want (agent_overlay_plan) and applies only the difference with
 * iproute2, so a restarted agent reconciles whatever the last one left.
 * Firewall: two chains of our own (filter BERTH-OVERLAY, nat BERTH-OVERLAY-NAT,
 * jumped to first from FORWARD and POSTROUTING) accept cluster CIDR -> cluster
 * CIDR traffic before the task network's isolation and masquerade rules, so
 * peers see tasks' real source addresses.
 *
 * The dataplane outlives the agent: tasks keep running while it is down, so
 * agent_overlay_stop() leaves the device, routes and rules in place.
 */
#ifndef BERTH_AGENT_OVERLAY_H
#define BERTH_AGENT_OVERLAY_H

#include <jansson.h>

#include "common/error.h"

#define OVERLAY_DEVICE    "berth.vxlan"
#define OVERLAY_PORT      4789
#define OVERLAY_FW_FILTER "BERTH-OVERLAY"
#define OVERLAY_FW_NAT    "BERTH-OVERLAY-NAT"
/* A peers long poll waits this long on the server. */
#define OVERLAY_POLL_SEC  20

struct host;
struct overlay;

/*
 * One agent call: GET path, *ret the JSON object answered (caller owns).
 * -EACCES when the server refused the node (the agent is ending anyway).
 */
typedef int (*overlay_fetch_fn)(void *userdata, const char *path, long timeout_ms, json_t **ret,
				struct berth_error **err);

struct overlay_config {
	struct host *host;         /* required, borrowed: its networking holds the task network */
	const char *device;        /* NULL: OVERLAY_DEVICE */
	const char *task_network;  /* required: the awsvpc network's name */
	const char *task_subnet;   /* required: this node's subnet (IPv4 CIDR) */
	const char *cluster_cidr;  /* required */
	const char *local_address; /* required: underlay IPv4 address */
	const char *vtep_mac;      /* required: the device's MAC, as the server told peers */
	int vni;                   /* 1 .. 2^24-1 */
	overlay_fetch_fn fetch;    /* required */
	void *userdata;
};

/*
 * Set up the device, firewall chains and the task network's subnet (a task
 * network with another subnet and no task attached is removed, so it is made
 * again with the right one), then start the thread that follows the peers.
 * Strings are copied. On failure nothing runs (what was made stays: it is
 * reconciled at the next start).
 */
int agent_overlay_start(const struct overlay_config *cfg, struct overlay **ret, struct berth_error **err);
/* Stop following peers (the dataplane stays up) and free. Accepts NULL; returns NULL. */
struct overlay *agent_overlay_stop(struct overlay *o);

/*
 * The local IPv4 address this host uses to reach host:port ("HOST:PORT",
 * "[V6]:PORT" is refused): getsockname() of a UDP socket connected to it, no
 * packet sent. *ret: caller frees.
 */
int agent_overlay_source_address(const char *host_port, char **ret, struct berth_error **err);

/* ---- pure parts (unit-tested) ---- */

enum overlay_kind { OVERLAY_ROUTE, OVERLAY_NEIGH, OVERLAY_FDB };

/* route: key subnet CIDR, value gateway; neigh: key IP, value MAC; fdb: key MAC, value underlay IP */
struct overlay_entry {
	enum overlay_kind kind;
	char *key, *value;
};

struct overlay_state {
	struct overlay_entry *v;
	size_t n;
};

struct overlay_op {
	bool add; /* add or replace; else delete */
	struct overlay_entry e;
};

void agent_overlay_state_done(struct overlay_state *s);
/*
 * The entries the peers ([{nodeId, address, taskSubnet, vtepMac}], as the
 * server answers) want. Peers with an invalid field, or whose subnet overlaps
 * own_subnet, are skipped (counted in *ret_skipped, may be NULL).
 */
void agent_overlay_desired(const json_t *peers, const char *own_subnet, struct overlay_state *ret,
			   size_t *ret_skipped);
/*
 * What the kernel has on the device, from the JSON of `ip -j route show dev
 * D`, `ip -j neigh show dev D` and `bridge -j fdb show dev D` (NULL or
 * unparsable: none). Only entries the agent could have made are kept:
 * non-kernel routes with a gateway, permanent neighbours with a MAC, fdb
 * entries with a dst.
 */
void agent_overlay_parse_kernel(const char *routes, const char *neighs, const char *fdbs,
				struct overlay_state *ret);
/*
 * The operations that turn cur into want: deletions first (routes, then
 * neighbours, then fdb entries), then additions in the reverse order. An
 * entry whose value changed is one add (the commands replace). *ret_ops:
 * caller frees (entries borrow strings from cur and want).
 */
void agent_overlay_plan(const struct overlay_state *cur, const struct overlay_state *want,
			struct overlay_op **ret_ops, size_t *ret_n);
/* The iproute2 command line of one operation on device dev (NULL-terminated; strv_free). */
char **agent_overlay_op_argv(const struct overlay_op *op, const char *dev);

#endif
