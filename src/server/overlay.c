/*
 * overlay.c - the server's half of the VXLAN overlay (docs/cluster.md
 * "Overlay"): every node holds a subnet of the cluster CIDR for its awsvpc
 * tasks, and GET /agent/v1/peers tells each agent where the others' subnets
 * live (underlay address, VTEP MAC) so it can program its VXLAN device.
 *
 * Allocation is compare-and-swap on the store, safe with several replicas:
 * each block of the cluster CIDR a node holds is a claim key
 * /berth/subnets/<block address> ({"nodeId", "subnet"}); one transaction
 * creates the claims (each compared absent), deletes the node's stale ones and
 * writes the node record with its taskSubnet (compared on its revision). A
 * conflicting replica makes the loser re-read and pick again. The subnet lives
 * in the node record, so re-registering (agent restart) and server restarts
 * keep it; DeregisterContainerInstance frees it (server_overlay_release).
 */
#include <arpa/inet.h>

#include "common/json.h"
#include "common/log.h"
#include "http/http.h"
#include "server/internal.h"
#include "server/netalloc.h"

#define SUBNETS_PREFIX  "/berth/subnets/"
#define NODES_PREFIX    "/berth/nodes/"
#define PEERS_MAX_WAIT  60
#define ASSIGN_ATTEMPTS 16
#define CLAIM_KEY_MAX   (sizeof(SUBNETS_PREFIX) + NETALLOC_CIDR_MAX)

char *server_overlay_vtep_mac(const char *node_id)
{
	/* locally administered unicast (02:...), stable per node: from its random id */
	char hex[11] = "0000000000";
	size_t n = strlen(node_id);
	memcpy(hex, node_id, MIN(n, (size_t)10));
	return xasprintf("02:%.2s:%.2s:%.2s:%.2s:%.2s", hex, hex + 2, hex + 4, hex + 6, hex + 8);
}

struct claims {
	uint32_t *others; /* blocks held by other nodes */
	size_t n_others;
	struct store_kv_list l; /* every claim; mine are those with our nodeId */
	json_t **parsed;        /* each claim's value, for its nodeId */
};

static void claims_done(struct claims *c)
{
	for (size_t i = 0; i < c->l.n; i++)
		json_decref(c->parsed[i]);
	free(c->parsed);
	free(c->others);
	store_kv_list_done(&c->l);
}

static const char *claim_owner(const struct claims *c, size_t i)
{
	return json_string_value(json_object_get(c->parsed[i], "nodeId"));
}

static int claims_load(struct server *s, const char *id, struct claims *c, struct berth_error **err)
{
	*c = (struct claims){ 0 };
	int r = store_range(s->store, SUBNETS_PREFIX, NULL, 0, &c->l, err);
	if (r < 0)
		return r;
	c->parsed = xcalloc(c->l.n + 1, sizeof(*c->parsed));
	c->others = xcalloc(c->l.n + 1, sizeof(*c->others));
	for (size_t i = 0; i < c->l.n; i++) {
		c->parsed[i] = json_loadb(c->l.kvs[i].value, c->l.kvs[i].value_len, 0, NULL);
		struct in_addr a;
		if (streq_ptr(claim_owner(c, i), id) ||
		    inet_pton(AF_INET, c->l.kvs[i].key + strlen(SUBNETS_PREFIX), &a) != 1)
			continue;
		c->others[c->n_others++] = ntohl(a.s_addr);
	}
	return 0;
}

/* Index of my claim of block b, or -1. */
static ssize_t claims_mine(const struct claims *c, const char *id, const char *key)
{
	for (size_t i = 0; i < c->l.n; i++)
		if (streq(c->l.kvs[i].key, key) && streq_ptr(claim_owner(c, i), id))
			return (ssize_t)i;
	return -1;
}

/* The blocks of the subnet wanted: the requested one (checked) or a free one. */
static int choose(struct server *s, const struct claims *c, const struct netalloc_cidr *pool,
		  const struct netalloc_cidr *req, struct netalloc_cidr *ret, uint32_t *blocks, size_t *n,
		  struct berth_error **err)
{
	char a[NETALLOC_CIDR_MAX], b[NETALLOC_CIDR_MAX];
	if (req) {
		if (server_netalloc_blocks(req, s->node_subnet_bits, blocks, n) < 0)
			return berth_error_msg(
			    err, EINVAL, "task subnet '%s' is too large: at most %d blocks of /%d",
			    server_netalloc_format(req, a), NETALLOC_MAX_BLOCKS, s->node_subnet_bits);
		for (size_t i = 0; i < *n; i++)
			for (size_t k = 0; k < c->n_others; k++)
				if (c->others[k] == blocks[i])
					return berth_error_msg(
					    err, EEXIST,
					    "task subnet '%s' overlaps another node's (block %s)",
					    server_netalloc_format(req, a),
					    server_netalloc_format_addr(blocks[i], b));
		*ret = *req;
		return 0;
	}
	uint32_t pick;
	if (server_netalloc_pick(pool, s->node_subnet_bits, c->others, c->n_others, &pick) < 0)
		return berth_error_msg(
		    err, ENOSPC,
		    "no free /%d left in the cluster CIDR '%s' (%u nodes hold all of them): "
		    "deregister a node or run the server with a larger --cluster-cidr",
		    s->node_subnet_bits, s->cluster_cidr,
		    server_netalloc_block_count(pool, s->node_subnet_bits));
	*ret = (struct netalloc_cidr){ pick, s->node_subnet_bits };
	blocks[0] = pick;
	*n = 1;
	return 0;
}

/* One attempt: read, choose, write in one transaction; *ok false when another writer won. */
static int assign_once(struct server *s, const char *id, const struct netalloc_cidr *pool,
		       const struct netalloc_cidr *req, json_t *fields, char **ret, bool *ok,
		       struct berth_error **err)
{
	_cleanup_free_ char *nkey = xasprintf(NODES_PREFIX "%s", id);
	_cleanup_json_ json_t *node = NULL;
	int64_t nrev = 0;
	int r = server_record_get(s, nkey, &node, &nrev, err);
	if (r < 0)
		return r;
	char want_s[NETALLOC_CIDR_MAX];
	const char *cur = json_string_value(json_object_get(node, "taskSubnet"));
	if (cur && (!req || streq(cur, server_netalloc_format(req, want_s)))) {
		*ret = xstrdup(cur);
		*ok = true;
		return 0;
	}
	struct claims c;
	if ((r = claims_load(s, id, &c, err)) < 0)
		return r;
	uint32_t blocks[NETALLOC_MAX_BLOCKS];
	size_t n = 0;
	struct netalloc_cidr got;
	if ((r = choose(s, &c, pool, req, &got, blocks, &n, err)) < 0) {
		claims_done(&c);
		return r;
	}
	server_netalloc_format(&got, want_s);
	json_object_set_new(node, "taskSubnet", json_string(want_s));
	if (fields) /* the node's other overlay fields land with the subnet: peers see it whole */
		json_object_update(node, fields);
	_cleanup_free_ char *nval = json_dumps(node, JSON_COMPACT);
	_cleanup_json_ json_t *cj = json_pack("{s:s,s:s}", "nodeId", id, "subnet", want_s);
	_cleanup_free_ char *claim = json_dumps(cj, JSON_COMPACT);
	size_t max = 2 * NETALLOC_MAX_BLOCKS + c.l.n + 2;
	struct store_cmp *cmps = xcalloc(max, sizeof(*cmps));
	struct store_op *ops = xcalloc(max, sizeof(*ops));
	char(*keys)[CLAIM_KEY_MAX] = xcalloc(n, CLAIM_KEY_MAX);
	size_t nc = 0, no = 0;
	cmps[nc++] = (struct store_cmp){ nkey, STORE_CMP_MOD, STORE_CMP_EQUAL, nrev };
	for (size_t i = 0; i < n; i++) {
		char a[NETALLOC_CIDR_MAX];
		snprintf(keys[i], CLAIM_KEY_MAX, SUBNETS_PREFIX "%s",
			 server_netalloc_format_addr(blocks[i], a));
		ssize_t mine = claims_mine(&c, id, keys[i]);
		cmps[nc++] = mine >= 0 ? (struct store_cmp){ keys[i], STORE_CMP_MOD, STORE_CMP_EQUAL,
							     c.l.kvs[mine].mod_revision }
				       : (struct store_cmp){ keys[i], STORE_CMP_CREATE, STORE_CMP_EQUAL, 0 };
		ops[no++] = (struct store_op){ STORE_OP_PUT, keys[i], claim, strlen(claim), 0 };
	}
	for (size_t i = 0; i < c.l.n; i++) { /* my stale claims (an earlier subnet) go */
		bool keep = false;
		for (size_t k = 0; k < n && !keep; k++)
			keep = streq(c.l.kvs[i].key, keys[k]);
		if (!keep && streq_ptr(claim_owner(&c, i), id))
			ops[no++] = (struct store_op){ STORE_OP_DELETE, c.l.kvs[i].key, NULL, 0, 0 };
	}
	ops[no++] = (struct store_op){ STORE_OP_PUT, nkey, nval, strlen(nval), 0 };
	r = store_txn(s->store, cmps, nc, ops, no, ok, NULL, err);
	free(keys);
	free(ops);
	free(cmps);
	claims_done(&c);
	if (r >= 0 && *ok)
		*ret = xstrdup(want_s);
	return r;
}

int server_overlay_assign(struct server *s, const char *id, const char *requested, json_t *fields, char **ret,
			  struct berth_error **err)
{
	struct netalloc_cidr pool, req;
	if (server_netalloc_parse(s->cluster_cidr, true, &pool) < 0)
		return berth_error_msg(err, EINVAL, "invalid cluster CIDR '%s'", s->cluster_cidr);
	if (requested) {
		if (server_netalloc_parse(requested, false, &req) < 0)
			return berth_error_msg(
			    err, EINVAL,
			    "invalid task subnet '%s': expected an IPv4 CIDR such as 10.42.7.0/24",
			    requested);
		if (!server_netalloc_contains(&pool, &req))
			return berth_error_msg(
			    err, EINVAL,
			    "task subnet '%s' is outside the cluster CIDR '%s': peers would "
			    "not route to it",
			    requested, s->cluster_cidr);
	}
	for (int attempt = 0; attempt < ASSIGN_ATTEMPTS; attempt++) {
		bool ok = false;
		int r = assign_once(s, id, &pool, requested ? &req : NULL, fields, ret, &ok, err);
		if (r < 0 || ok)
			return r;
	}
	return berth_error_msg(err, EAGAIN, "allocate a task subnet: the store is busy, register again");
}

int server_overlay_release(struct server *s, const char *id, struct berth_error **err)
{
	_cleanup_free_ char *nkey = xasprintf(NODES_PREFIX "%s", id);
	for (int attempt = 0; attempt < ASSIGN_ATTEMPTS; attempt++) {
		_cleanup_json_ json_t *node = NULL;
		int64_t nrev = 0;
		int r = server_record_get(s, nkey, &node, &nrev, err);
		if (r < 0)
			return r == -ENOENT ? 0 : r;
		struct claims c;
		if ((r = claims_load(s, id, &c, err)) < 0)
			return r;
		json_object_del(node, "taskSubnet");
		_cleanup_free_ char *nval = json_dumps(node, JSON_COMPACT);
		struct store_op *ops = xcalloc(c.l.n + 1, sizeof(*ops));
		size_t no = 0;
		for (size_t i = 0; i < c.l.n; i++)
			if (streq_ptr(claim_owner(&c, i), id))
				ops[no++] = (struct store_op){ STORE_OP_DELETE, c.l.kvs[i].key, NULL, 0, 0 };
		ops[no++] = (struct store_op){ STORE_OP_PUT, nkey, nval, strlen(nval), 0 };
		struct store_cmp cmp = { nkey, STORE_CMP_MOD, STORE_CMP_EQUAL, nrev };
		bool ok = false;
		r = store_txn(s->store, &cmp, 1, ops, no, &ok, NULL, err);
		free(ops);
		claims_done(&c);
		if (r < 0 || ok)
			return r;
	}
	return berth_error_msg(err, EAGAIN, "release the task subnet of node '%s': the store is busy", id);
}

/* Wait until a node record changes after since (or the deadline). */
static json_t *peer_of(json_t *node)
{
	const char *keys[] = { "nodeId", "address", "taskSubnet", "vtepMac" };
	json_t *p = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(node, keys[i]);
		if (!json_is_string(v)) {
			json_decref(p);
			return NULL;
		}
		json_object_set(p, keys[i], v);
	}
	return p;
}

static void answer_peers(struct server *s, struct http_request *req, json_t *self)
{
	const char *me = json_string_value(json_object_get(self, "nodeId"));
	struct store_kv_list l;
	_cleanup_error_ struct berth_error *err = NULL;
	if (store_range(s->store, NODES_PREFIX, NULL, 0, &l, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		http_respond_json(req, 500, json_pack("{s:s,s:s}", "error", m, "code", "ServerError"));
		return;
	}
	json_t *peers = json_array();
	for (size_t i = 0; i < l.n; i++) {
		_cleanup_json_ json_t *n = json_loadb(l.kvs[i].value, l.kvs[i].value_len, 0, NULL);
		if (!n || json_is_true(json_object_get(n, "revoked")) ||
		    streq_ptr(json_string_value(json_object_get(n, "nodeId")), me))
			continue;
		json_t *p = peer_of(n);
		if (p)
			json_array_append_new(peers, p);
	}
	int64_t rev = l.revision;
	store_kv_list_done(&l);
	http_respond_json(req, 200,
			  json_pack("{s:I,s:s,s:i,s:o}", "revision", (json_int_t)rev, "clusterCidr",
				    s->cluster_cidr, "vxlanId", s->vxlan_id, "peers", peers));
}

struct peers_poll {
	struct server *s;
	json_t *self;
};

static void peers_poll_answer(struct http_request *req, void *ctx)
{
	struct peers_poll *p = ctx;
	answer_peers(p->s, req, p->self);
	json_decref(p->self);
	free(p);
}

/* since > 0 and wait > 0: a long poll, parked without a thread until a node record changes (longpoll.c). */
void server_overlay_handle_peers(struct server *s, struct http_request *req, json_t *self)
{
	const char *q_since = http_request_query(req, "since"), *q_wait = http_request_query(req, "wait");
	int64_t since = q_since ? strtoll(q_since, NULL, 10) : 0;
	int wait = q_wait ? atoi(q_wait) : 0;
	wait = MAX(0, MIN(wait, PEERS_MAX_WAIT));
	if (since > 0 && wait > 0) {
		struct peers_poll *p = xcalloc(1, sizeof(*p));
		*p = (struct peers_poll){ s, json_incref(self) };
		if (server_longpoll_park(s, req, NODES_PREFIX, NULL, since, wait, peers_poll_answer, p))
			return;
		json_decref(p->self);
		free(p);
	}
	answer_peers(s, req, self);
}
