/*
 * hbcache.c - heartbeat answers kept in memory (hbcache.h).
 */
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "common/util.h"
#include "server/hbcache.h"

struct hb_cache {
	pthread_mutex_t lock;
	uint64_t gen;  /* bumped by every write that drops an entry */
	json_t *nodes; /* node id -> {"peer", "lease", "body"} */
};

struct hb_cache *server_hb_cache_new(void)
{
	struct hb_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->nodes = json_object();
	return c;
}

struct hb_cache *server_hb_cache_free(struct hb_cache *c)
{
	if (!c)
		return NULL;
	json_decref(c->nodes);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

uint64_t server_hb_cache_gen(struct hb_cache *c)
{
	pthread_mutex_lock(&c->lock);
	uint64_t g = c->gen;
	pthread_mutex_unlock(&c->lock);
	return g;
}

void server_hb_cache_put(struct hb_cache *c, uint64_t gen, const char *node_id, const char *peer,
			 int64_t lease, const char *body)
{
	json_t *e = json_pack("{s:s,s:I,s:s}", "peer", peer, "lease", (json_int_t)lease, "body", body);
	pthread_mutex_lock(&c->lock);
	if (e && gen == c->gen)
		json_object_set_new(c->nodes, node_id, e);
	else
		json_decref(e);
	pthread_mutex_unlock(&c->lock);
}

bool server_hb_cache_get(struct hb_cache *c, const char *peer, int64_t *ret_lease, char **ret_body)
{
	const char *sp = peer ? strchr(peer, ' ') : NULL;
	char id[128];
	if (!sp || (size_t)(sp - peer) >= sizeof(id))
		return false;
	memcpy(id, peer, (size_t)(sp - peer));
	id[sp - peer] = '\0';
	bool hit = false;
	pthread_mutex_lock(&c->lock);
	json_t *e = json_object_get(c->nodes, id);
	if (e && streq_ptr(json_string_value(json_object_get(e, "peer")), peer)) {
		*ret_lease = (int64_t)json_integer_value(json_object_get(e, "lease"));
		*ret_body = xstrdup(json_string_value(json_object_get(e, "body")));
		hit = true;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

void server_hb_cache_drop(struct hb_cache *c, const char *node_id)
{
	pthread_mutex_lock(&c->lock);
	(void)json_object_del(c->nodes, node_id);
	pthread_mutex_unlock(&c->lock);
}

/* The node id a key names, or NULL: /berth/nodes/ID, /berth/alive/ID, /berth/instances/CLUSTER/ID. */
static const char *key_node(const char *key)
{
	const char *rest = startswith(key, "/berth/nodes/")       ? key + strlen("/berth/nodes/")
			   : startswith(key, "/berth/alive/")     ? key + strlen("/berth/alive/")
			   : startswith(key, "/berth/instances/") ? key + strlen("/berth/instances/")
								  : NULL;
	if (!rest)
		return NULL;
	const char *sl = strchr(rest, '/');
	if (key[7] == 'i') /* instances: CLUSTER/ID */
		return sl && !strchr(sl + 1, '/') ? sl + 1 : NULL;
	return sl ? NULL : rest;
}

void server_hb_cache_note_write(struct hb_cache *c, const struct store_op *ops, size_t n_ops)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (!ops) {
		c->gen++;
		json_object_clear(c->nodes);
	}
	for (size_t i = 0; ops && i < n_ops; i++) {
		const char *id = ops[i].key ? key_node(ops[i].key) : NULL;
		if (id) {
			c->gen++;
			(void)json_object_del(c->nodes, id);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

size_t server_hb_cache_size(struct hb_cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = json_object_size(c->nodes);
	pthread_mutex_unlock(&c->lock);
	return n;
}
