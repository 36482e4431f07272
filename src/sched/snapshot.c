/*
 * snapshot.c - nodes of the in-memory cluster snapshot.
 *
 * A node is a slot in one array (free-listed) with its attributes as a sorted
 * (name, value) symbol array and its used host ports as a sorted uint16_t
 * array: small and contiguous, so a 10,000-node snapshot stays well under a
 * KiB per node and a filter pass walks memory linearly.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

#define ECS_PORT_MIN 49153
#define ECS_PORT_MAX 65535

struct sched_snapshot *sched_snapshot_new(uint64_t seed)
{
	struct sched_snapshot *s = xcalloc(1, sizeof(*s));
	s->seed = seed;
	s->sym_empty = sched_intern(&s->in, "");
	s->sym_instance = sched_intern(&s->in, "instanceId");
	s->sym_host = sched_intern(&s->in, "host");
	s->sym_az = sched_intern(&s->in, "ecs.availability-zone");
	return s;
}

static void node_done(struct snode *n)
{
	free(n->id);
	free(n->attrs);
	free(n->taints);
	free(n->reserved);
	free(n->ports);
	free(n->tasks);
	*n = (struct snode){ 0 };
}

struct sched_snapshot *sched_snapshot_free(struct sched_snapshot *s)
{
	if (!s)
		return NULL;
	sched_tasks_done(s);
	for (uint32_t i = 0; i < s->n_slots; i++)
		node_done(&s->nodes[i]);
	free(s->nodes);
	free(s->free_nodes);
	sched_strmap_done(&s->node_ids);
	sched_groups_done(s);
	sched_u32map_done(&s->budgets);
	for (uint32_t c = 0; c < s->n_cols; c++)
		free(s->cols[c]);
	free(s->cols);
	free(s->col_keys);
	free(s->colmap);
	sched_interner_done(&s->in);
	free(s);
	return NULL;
}

size_t sched_node_count(const struct sched_snapshot *s)
{
	return s->n_nodes;
}

void sched_set_sample(struct sched_snapshot *s, uint32_t percent, uint32_t min_feasible)
{
	s->sample_pct = MIN(percent, 100u);
	s->sample_min = min_feasible;
}

uint32_t sched_node_attr_find(const struct snode *n, uint32_t key)
{
	size_t lo = 0, hi = n->n_attrs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (n->attrs[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->n_attrs && n->attrs[lo].key == key ? n->attrs[lo].val : 0;
}

void sched_column_want(struct sched_snapshot *s, uint32_t key)
{
	if (!key || key == s->sym_instance || key == s->sym_host || s->n_cols >= SCHED_MAX_COLUMNS)
		return;
	if (key < s->colmap_len && s->colmap[key])
		return;
	if (key >= s->colmap_len) {
		uint32_t len = MAX(key + 1, s->colmap_len * 2);
		s->colmap = xrealloc(s->colmap, len);
		memset(s->colmap + s->colmap_len, 0, len - s->colmap_len);
		s->colmap_len = len;
	}
	s->cols = xrealloc(s->cols, (s->n_cols + 1) * sizeof(*s->cols));
	s->col_keys = xrealloc(s->col_keys, (s->n_cols + 1) * sizeof(*s->col_keys));
	uint32_t *col = xcalloc(s->cap_nodes + 1, sizeof(*col));
	for (uint32_t i = 0; i < s->n_slots; i++)
		col[i] = s->nodes[i].alive ? sched_node_attr_find(&s->nodes[i], key) : 0;
	s->cols[s->n_cols] = col;
	s->col_keys[s->n_cols++] = key;
	s->colmap[key] = (uint8_t)s->n_cols;
}

static void columns_update(struct sched_snapshot *s, uint32_t slot)
{
	const struct snode *n = &s->nodes[slot];
	for (uint32_t c = 0; c < s->n_cols; c++)
		s->cols[c][slot] = n->alive ? sched_node_attr_find(n, s->col_keys[c]) : 0;
}

bool sched_node_has_key(const struct sched_snapshot *s, const struct snode *n, uint32_t key)
{
	return node_value(s, n, key) != 0;
}

static size_t port_lower_bound(const uint16_t *v, size_t n, uint32_t port)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool sched_node_port_used(const struct snode *n, uint16_t port)
{
	size_t i = port_lower_bound(n->ports, n->n_ports, port);
	return i < n->n_ports && n->ports[i] == port;
}

uint32_t sched_node_free_dynamic(const struct snode *n)
{
	return (uint32_t)(n->port_max - n->port_min + 1) - n->n_dyn_used;
}

static bool in_dynamic(const struct snode *n, uint16_t port)
{
	return port >= n->port_min && port <= n->port_max;
}

int sched_node_port_add(struct snode *n, uint16_t port)
{
	size_t i = port_lower_bound(n->ports, n->n_ports, port);
	if (i < n->n_ports && n->ports[i] == port)
		return -EADDRINUSE;
	if (n->n_ports == n->cap_ports) {
		n->cap_ports = n->cap_ports ? n->cap_ports * 2 : 8;
		n->ports = xrealloc(n->ports, n->cap_ports * sizeof(*n->ports));
	}
	memmove(n->ports + i + 1, n->ports + i, (n->n_ports - i) * sizeof(*n->ports));
	n->ports[i] = port;
	n->n_ports++;
	n->n_dyn_used += in_dynamic(n, port);
	return 0;
}

void sched_node_port_del(struct snode *n, uint16_t port)
{
	size_t i = port_lower_bound(n->ports, n->n_ports, port);
	if (i >= n->n_ports || n->ports[i] != port)
		return;
	/* Reserved ports stay taken. */
	size_t r = port_lower_bound(n->reserved, n->n_reserved, port);
	if (r < n->n_reserved && n->reserved[r] == port)
		return;
	memmove(n->ports + i, n->ports + i + 1, (n->n_ports - i - 1) * sizeof(*n->ports));
	n->n_ports--;
	n->n_dyn_used -= in_dynamic(n, port);
}

static int cmp_apair(const void *a, const void *b)
{
	const struct apair *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

static int cmp_u16(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

static int node_spec_check(const struct sched_node_spec *spec, struct berth_error **err)
{
	if (!spec->id || !*spec->id)
		return berth_error_msg(err, EINVAL, "node: id is required");
	if (spec->cpu < 0 || spec->memory < 0)
		return berth_error_msg(err, EINVAL, "node '%s': negative cpu or memory", spec->id);
	if (spec->n_attrs > SCHED_MAX_ATTRS || spec->n_taints > SCHED_MAX_TAINTS ||
	    spec->n_reserved_ports > SCHED_MAX_PORTS)
		return berth_error_msg(err, E2BIG, "node '%s': too many attributes, taints or reserved ports",
				       spec->id);
	if (spec->port_min > spec->port_max)
		return berth_error_msg(err, EINVAL, "node '%s': port range %u-%u is empty", spec->id,
				       spec->port_min, spec->port_max);
	if ((unsigned)spec->status > SCHED_NODE_INACTIVE)
		return berth_error_msg(err, EINVAL, "node '%s': invalid status", spec->id);
	for (size_t i = 0; i < spec->n_attrs; i++)
		if (!spec->attrs[i].name || !*spec->attrs[i].name)
			return berth_error_msg(err, EINVAL, "node '%s': attribute %zu has no name", spec->id,
					       i);
	for (size_t i = 0; i < spec->n_taints; i++)
		if (!spec->taints[i].key || !*spec->taints[i].key || (unsigned)spec->taints[i].effect > 2)
			return berth_error_msg(err, EINVAL, "node '%s': taint %zu needs a key and an effect",
					       spec->id, i);
	return 0;
}

/* Fill everything of n that the spec describes (not its tasks). */
static int node_fill(struct sched_snapshot *s, struct snode *n, const struct sched_node_spec *spec,
		     struct berth_error **err)
{
	struct apair *attrs = xcalloc(spec->n_attrs + 1, sizeof(*attrs));
	for (size_t i = 0; i < spec->n_attrs; i++) {
		attrs[i].key = sched_intern(&s->in, spec->attrs[i].name);
		attrs[i].val = sched_intern(&s->in, spec->attrs[i].value ? spec->attrs[i].value : "");
	}
	qsort(attrs, spec->n_attrs, sizeof(*attrs), cmp_apair);
	for (size_t i = 1; i < spec->n_attrs; i++)
		if (attrs[i].key == attrs[i - 1].key) {
			uint32_t dup = attrs[i].key;
			free(attrs);
			return berth_error_msg(err, EINVAL, "node '%s': attribute '%s' given twice", spec->id,
					       sym_str(&s->in, dup));
		}
	free(n->attrs);
	n->attrs = attrs;
	n->n_attrs = (uint16_t)spec->n_attrs;

	free(n->taints);
	n->taints = xcalloc(spec->n_taints + 1, sizeof(*n->taints));
	for (size_t i = 0; i < spec->n_taints; i++)
		n->taints[i] = (struct itaint){ .key = sched_intern(&s->in, spec->taints[i].key),
						.val = sched_intern(&s->in, spec->taints[i].value),
						.effect = (uint8_t)spec->taints[i].effect,
						.added_at = spec->taints[i].added_at };
	n->n_taints = (uint16_t)spec->n_taints;

	free(n->reserved);
	n->reserved = xcalloc(spec->n_reserved_ports + 1, sizeof(*n->reserved));
	if (spec->n_reserved_ports)
		memcpy(n->reserved, spec->reserved_ports, spec->n_reserved_ports * sizeof(uint16_t));
	qsort(n->reserved, spec->n_reserved_ports, sizeof(uint16_t), cmp_u16);
	n->n_reserved = (uint16_t)spec->n_reserved_ports;

	n->id_sym = sched_intern(&s->in, spec->id);
	n->ec2_sym = sched_intern(&s->in, spec->ec2_instance_id ? spec->ec2_instance_id : spec->id);
	n->version_sym = sched_intern(&s->in, spec->agent_version);
	n->cpu_total = spec->cpu;
	n->mem_total = spec->memory;
	n->max_tasks = spec->max_tasks;
	n->port_min = spec->port_max ? spec->port_min : ECS_PORT_MIN;
	n->port_max = spec->port_max ? spec->port_max : ECS_PORT_MAX;
	if (n->port_cursor < n->port_min || n->port_cursor > n->port_max)
		n->port_cursor = n->port_min;
	n->status = (uint8_t)spec->status;
	n->connected = spec->agent_connected;
	n->registered_at = spec->registered_at;
	return 0;
}

/* Used ports = reserved ports + the ports of the node's tasks. */
static void node_rebuild_ports(struct sched_snapshot *s, struct snode *n)
{
	n->n_ports = 0;
	n->n_dyn_used = 0;
	for (uint16_t i = 0; i < n->n_reserved; i++)
		(void)sched_node_port_add(n, n->reserved[i]);
	for (uint32_t i = 0; i < n->n_tasks; i++) {
		const struct stask *t = &s->tasks[n->tasks[i]];
		for (uint16_t j = 0; j < t->n_ports; j++)
			(void)sched_node_port_add(n, t->ports[j]);
	}
}

static uint32_t node_slot_new(struct sched_snapshot *s)
{
	if (s->n_free_nodes)
		return s->free_nodes[--s->n_free_nodes];
	if (s->n_slots == s->cap_nodes) {
		s->cap_nodes = s->cap_nodes ? s->cap_nodes * 2 : 64;
		s->nodes = xrealloc(s->nodes, s->cap_nodes * sizeof(*s->nodes));
		s->free_nodes = xrealloc(s->free_nodes, s->cap_nodes * sizeof(*s->free_nodes));
		for (uint32_t c = 0; c < s->n_cols; c++)
			s->cols[c] = xrealloc(s->cols[c], (s->cap_nodes + 1) * sizeof(**s->cols));
	}
	s->nodes[s->n_slots] = (struct snode){ 0 };
	return s->n_slots++;
}

/* Take n's tasks out of (delta -1) or back into (+1) the attribute-keyed indexes. */
static void node_tasks_reindex(struct sched_snapshot *s, struct snode *n, int32_t delta)
{
	for (uint32_t i = 0; i < n->n_tasks; i++)
		sched_groups_task_changed(s, &s->tasks[n->tasks[i]], delta);
}

int sched_node_put(struct sched_snapshot *s, const struct sched_node_spec *spec, struct berth_error **err)
{
	int r = node_spec_check(spec, err);
	if (r < 0)
		return r;
	uint32_t slot;
	if (sched_strmap_get(&s->node_ids, spec->id, &slot)) {
		struct snode *n = &s->nodes[slot];
		struct snode saved_attrs = *n;
		node_tasks_reindex(s, n, -1);
		sched_keys_node_changed(s, n, -1);
		n->attrs = NULL; /* node_fill frees these; keep the old ones on failure */
		r = node_fill(s, n, spec, err);
		if (r < 0) {
			n->attrs = saved_attrs.attrs;
			sched_keys_node_changed(s, n, +1);
			node_tasks_reindex(s, n, +1);
			return r;
		}
		free(saved_attrs.attrs);
		columns_update(s, slot);
		node_rebuild_ports(s, n);
		sched_keys_node_changed(s, n, +1);
		node_tasks_reindex(s, n, +1);
		s->node_gen++;
		return 0;
	}
	slot = node_slot_new(s);
	struct snode *n = &s->nodes[slot];
	r = node_fill(s, n, spec, err);
	if (r < 0) {
		node_done(n);
		s->free_nodes[s->n_free_nodes++] = slot;
		return r;
	}
	n->id = xstrdup(spec->id);
	n->alive = true;
	columns_update(s, slot);
	node_rebuild_ports(s, n);
	sched_strmap_set(&s->node_ids, n->id, slot);
	s->n_nodes++;
	sched_keys_node_changed(s, n, +1);
	s->node_gen++;
	return 0;
}

int sched_node_set_status(struct sched_snapshot *s, const char *id, enum sched_node_status status,
			  bool agent_connected, struct berth_error **err)
{
	uint32_t slot;
	if (!id || !sched_strmap_get(&s->node_ids, id, &slot))
		return berth_error_msg(err, ENOENT, "node '%s' not found", id ? id : "");
	if ((unsigned)status > SCHED_NODE_INACTIVE)
		return berth_error_msg(err, EINVAL, "node '%s': invalid status", id);
	struct snode *n = &s->nodes[slot];
	sched_keys_node_changed(s, n, -1);
	n->status = (uint8_t)status;
	n->connected = agent_connected;
	sched_keys_node_changed(s, n, +1);
	s->node_gen++;
	return 0;
}

int sched_node_remove(struct sched_snapshot *s, const char *id, struct berth_error **err)
{
	uint32_t slot;
	if (!id || !sched_strmap_get(&s->node_ids, id, &slot))
		return berth_error_msg(err, ENOENT, "node '%s' not found", id ? id : "");
	struct snode *n = &s->nodes[slot];
	while (n->n_tasks)
		sched_task_delete(s, n->tasks[n->n_tasks - 1]);
	sched_keys_node_changed(s, n, -1);
	sched_strmap_del(&s->node_ids, n->id);
	node_done(n);
	columns_update(s, slot);
	s->free_nodes[s->n_free_nodes++] = slot;
	s->n_nodes--;
	s->node_gen++;
	return 0;
}
