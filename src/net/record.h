/*
 * record.h - per-container network records (private to src/net/). See record.c.
 * Lock (net_lock) held for every call.
 */
#ifndef BERTH_NET_RECORD_H
#define BERTH_NET_RECORD_H

#include "common/strv.h"
#include "net/internal.h"

/* <root>/net/containers/<id> and a file in it; caller frees. */
char *net_rec_dir(struct net_ctx *ctx, const char *id);
char *net_rec_file(struct net_ctx *ctx, const char *id, const char *name);
/* -ENOENT "container 'x' has no network state" when missing. */
int net_rec_load(struct net_ctx *ctx, const char *id, json_t **ret, struct berth_error **err);
int net_rec_save(struct net_ctx *ctx, const json_t *rec, struct berth_error **err);
/* Ids that have a record directory. */
int net_rec_list(struct net_ctx *ctx, char ***ret, struct berth_error **err);
/* Every readable record, as a JSON array. */
int net_rec_load_all(struct net_ctx *ctx, json_t **ret, struct berth_error **err);
/* Borrowed string member or NULL. */
const char *net_rec_str(const json_t *o, const char *key);
/* String-array member as a vector kept in *store (caller frees *store); NULL when absent. */
const char *const *net_rec_strv(const json_t *o, const char *key, char ***store);
bool net_rec_on_network(const json_t *rec, const char *network_id);

/* ---- endpoint.c ---- */

/* The plugin executor for ep: without the ip6tables shim on dual-stack networks (portmap then
 * publishes over IPv6 too). */
struct cni_exec net_ep_cni_exec(const struct net_ctx *ctx, const json_t *ep);
/* CNI runtime parameters of an endpoint of rec (borrowed pointers into rec/ep). */
struct cni_runtime net_ep_runtime(const json_t *rec, const json_t *ep);
/*
 * Save ep as "adding", run ADD, store the result and "ready", save again. concurrent: net_lock is
 * released while the CNI chain runs (the slow part), so that other containers' setups proceed:
 * everything others decide from (the record with its ports, static addresses and this endpoint)
 * is saved before, the plugins serialise their own state (host-local's IPAM store, iptables -w),
 * and a teardown of this container meanwhile is noticed (ECANCELED, the ADD undone).
 */
int net_ep_add(struct net_ctx *ctx, json_t *rec, json_t *ep, bool concurrent, struct berth_error **err);
/* DEL with the cached result (best effort when the netns is gone). */
int net_ep_del(struct net_ctx *ctx, const json_t *rec, const json_t *ep, struct berth_error **err);
/* A new endpoint object for network n (ifname, aliases, static IP, conflist). */
int net_ep_new(struct net_ctx *ctx, json_t *rec, const struct net_network *n,
	       const struct net_endpoint_opts *o, bool with_ports, json_t *all_recs, json_t **ret,
	       struct berth_error **err);
/* Allocate host ports (0 -> free one) and refuse ports in use. ports: rec "ports" array. */
int net_ports_allocate(json_t *ports, const json_t *all_recs, const char *self_id, struct berth_error **err);
/* Rewrite the hosts files of every container (peers of user networks change together). */
int net_hosts_refresh_all(struct net_ctx *ctx, struct berth_error **err);
/* Write hosts (via refresh), resolv.conf and hostname of a new record. */
int net_rec_write_files(struct net_ctx *ctx, const json_t *rec, struct berth_error **err);
/* Public struct from a record. */
struct net_container *net_rec_to_container(struct net_ctx *ctx, const json_t *rec);

/* ---- reserve.c: addresses kept between a container's runs ---- */

/* The reservations of a container: {"<network id>": {"network", "ipv4", "mac", "ifname"}}, never NULL. */
json_t *net_reserve_load(struct net_ctx *ctx, const char *id);
/* The usable entry of res for network n (borrowed), or NULL. */
const json_t *net_reserve_find(const json_t *res, const struct net_network *n);
/* Add the addresses of rec's ready endpoints to its reservations (before their DEL). */
int net_reserve_record(struct net_ctx *ctx, const json_t *rec, struct berth_error **err);
/* Block every reserved address of id with a placeholder lease (unless id's own lease is there);
 * entries whose network is gone or whose address another container has now are forgotten. A
 * placeholder that cannot be written (disk full) forgets every reservation of id and fails: never
 * a kept address that nothing holds. */
int net_reserve_hold(struct net_ctx *ctx, const char *id, struct berth_error **err);
/* Remove the placeholder of endpoint ep ("ipv4_reserved" on "network_name") before its ADD. */
void net_reserve_take(struct net_ctx *ctx, const char *id, const json_t *ep);
/* Forget id's reservation on network (id or name; NULL: all) and remove its placeholders. The
 * reservation is rewritten first: when that fails (disk full) nothing changed. */
int net_reserve_drop(struct net_ctx *ctx, const char *id, const char *network, struct berth_error **err);
/* Does a lease file at ipam/<network>/<ip> (owned by another container than self_id) exist? */
bool net_reserve_lease_taken(struct net_ctx *ctx, const char *network, const char *ip, const char *self_id);
/* Is owner (a lease's first line) a placeholder that a reservation still stands behind? */
bool net_reserve_owns_lease(struct net_ctx *ctx, const char *owner, const char *network, const char *ip);
/* gc: reservations of ids in neither keep nor reserve go; the others lose entries of removed
 * networks and get their placeholders back. */
void net_reserve_gc(struct net_ctx *ctx, const char *const *keep, const char *const *reserve);

#endif
