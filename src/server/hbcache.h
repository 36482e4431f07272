/*
 * hbcache.h - the agents' heartbeat answers kept in memory, so that a
 * heartbeat of a node whose records did not change costs no store read:
 * berth server answers it on the TLS event loop's thread (the HTTP fast
 * path, http_server_opts.quick) with a lease keepalive and the remembered
 * body. docs/cluster.md "Heartbeats".
 *
 * An entry is made by a full heartbeat (agent.c, on a worker) from what it
 * read: the node's certificate identity, its alive key's lease and the
 * answer. Any write to the node's record (/berth/nodes/ID), instance record
 * (/berth/instances/CLUSTER/ID) or alive key (/berth/alive/ID), and every
 * lease revoke, drops it (server_hb_cache_note_write, from the store's write
 * observer). A generation read before the full heartbeat's reads keeps an
 * entry built from records a concurrent write changed out of the cache.
 * Only for a store this process is the only writer of, whose lease
 * keepalive is a memory operation (SQLite).
 */
#ifndef BERTH_SERVER_HBCACHE_H
#define BERTH_SERVER_HBCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct hb_cache;

struct hb_cache *server_hb_cache_new(void);
struct hb_cache *server_hb_cache_free(struct hb_cache *c);
/* Read before reading the records an entry is built from; hand it to server_hb_cache_put(). */
uint64_t server_hb_cache_gen(struct hb_cache *c);
/* Remember node_id's answer for its certificate identity peer ("ID sha256:HEX"); nothing when a write that
 * matters came after gen. */
void server_hb_cache_put(struct hb_cache *c, uint64_t gen, const char *node_id, const char *peer,
			 int64_t lease, const char *body);
/* The entry of the node peer names, when peer is the identity it was made for: true, *ret_lease and
 * *ret_body (malloc'd). */
bool server_hb_cache_get(struct hb_cache *c, const char *peer, int64_t *ret_lease, char **ret_body);
/* Forget node_id (its lease lapsed). */
void server_hb_cache_drop(struct hb_cache *c, const char *node_id);
/* A store_write_fn: the writes above drop their node's entry; ops NULL (a lease revoke) drops all. */
void server_hb_cache_note_write(struct hb_cache *c, const struct store_op *ops, size_t n_ops);
size_t server_hb_cache_size(struct hb_cache *c);

#endif
