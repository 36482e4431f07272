/*
 * tasks.c - placed tasks: resources, ports and group counts on their node.
 *
 * A task is a slot in one array; its node keeps the slot in a small array
 * (the task remembers its position, so removal is O(1) by swapping with the
 * last). Adding or removing a task updates its node's usage and its group's
 * counting indexes; nothing is ever recomputed from scratch.
 */
#include <errno.h>
#include <string.h>

#include "sched/internal.h"

void sched_snapshot_reserve(struct sched_snapshot *s, size_t nodes, size_t tasks)
{
	if (nodes > s->cap_nodes && nodes < UINT32_MAX / 2) {
		s->cap_nodes = (uint32_t)nodes;
		s->nodes = xrealloc(s->nodes, s->cap_nodes * sizeof(*s->nodes));
		s->free_nodes = xrealloc(s->free_nodes, s->cap_nodes * sizeof(*s->free_nodes));
		for (uint32_t c = 0; c < s->n_cols; c++)
			s->cols[c] = xrealloc(s->cols[c], (s->cap_nodes + 1) * sizeof(**s->cols));
		sched_strmap_reserve(&s->node_ids, (uint32_t)nodes);
	}
	if (tasks > s->cap_tasks && tasks < UINT32_MAX / 2) {
		s->cap_tasks = (uint32_t)tasks;
		s->tasks = xrealloc(s->tasks, s->cap_tasks * sizeof(*s->tasks));
		s->free_tasks = xrealloc(s->free_tasks, s->cap_tasks * sizeof(*s->free_tasks));
		sched_strmap_reserve(&s->task_ids, (uint32_t)tasks);
	}
}

size_t sched_task_count(const struct sched_snapshot *s)
{
	return s->n_tasks;
}

const char *sched_task_node(const struct sched_snapshot *s, const char *task_id)
{
	uint32_t slot;
	if (!task_id || !sched_strmap_get(&s->task_ids, task_id, &slot))
		return NULL;
	return s->nodes[s->tasks[slot].node].id;
}

void sched_group_set_budget(struct sched_snapshot *s, const char *group, int32_t allowed)
{
	uint32_t g = sched_intern(&s->in, group);
	if (!g)
		return;
	if (allowed < 0)
		sched_u32map_del(&s->budgets, g);
	else
		sched_u32map_set(&s->budgets, g, (uint32_t)allowed + 1);
}

int32_t sched_group_budget(const struct sched_snapshot *s, const char *group)
{
	uint32_t g = sched_intern_find(&s->in, group);
	return g && sched_u32map_has(&s->budgets, g) ? (int32_t)sched_u32map_get(&s->budgets, g) - 1 : -1;
}

uint32_t sched_tolerations_intern(struct sched_snapshot *s, const struct sched_toleration *in, size_t n,
				  struct itol *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (struct itol){ .key = in[i].key && *in[i].key ? sched_intern(&s->in, in[i].key) : 0,
					.val = in[i].op == SCHED_TOL_EQUAL
						   ? sched_intern(&s->in, in[i].value ? in[i].value : "")
						   : 0,
					.op = (uint8_t)in[i].op,
					.effect = (int8_t)in[i].effect,
					.seconds = in[i].seconds };
	return (uint32_t)n;
}

/* Kubernetes' ToleratesTaint: effect, key (empty key + Exists = all), operator. */
bool sched_toleration_matches(const struct itol *t, const struct itaint *taint)
{
	if (t->effect >= 0 && t->effect != taint->effect)
		return false;
	if (t->key && t->key != taint->key)
		return false;
	if (!t->key && t->op != SCHED_TOL_EXISTS)
		return false;
	if (t->op == SCHED_TOL_EXISTS)
		return true;
	/* Equal: a taint without value equals the empty value. */
	uint32_t tv = t->val, xv = taint->val;
	return tv == xv || ((tv == 0 || xv == 0) && (tv | xv) == 1 /* "" is symbol 1 */);
}

static uint32_t task_slot_new(struct sched_snapshot *s)
{
	if (s->n_free_tasks)
		return s->free_tasks[--s->n_free_tasks];
	if (s->n_task_slots == s->cap_tasks) {
		s->cap_tasks = s->cap_tasks ? s->cap_tasks * 2 : 256;
		s->tasks = xrealloc(s->tasks, s->cap_tasks * sizeof(*s->tasks));
		s->free_tasks = xrealloc(s->free_tasks, s->cap_tasks * sizeof(*s->free_tasks));
	}
	s->tasks[s->n_task_slots] = (struct stask){ 0 };
	return s->n_task_slots++;
}

int sched_task_insert(struct sched_snapshot *s, const char *id, uint32_t node, uint32_t group, int32_t cpu,
		      int32_t mem, const uint16_t *ports, size_t n_ports, int32_t priority,
		      int64_t started_at, const struct itol *tols, size_t n_tols, const uint32_t *rules,
		      size_t n_rules, struct berth_error **err)
{
	uint32_t slot;
	if (sched_strmap_get(&s->task_ids, id, &slot))
		return berth_error_msg(err, EEXIST, "task '%s' is already placed", id);
	struct snode *n = &s->nodes[node];
	for (size_t i = 0; i < n_ports; i++)
		if (sched_node_port_used(n, ports[i]))
			return berth_error_msg(err, EADDRINUSE,
					       "task '%s': host port %u is taken on node '%s'", id, ports[i],
					       n->id);
	for (size_t i = 0; i < n_ports; i++)
		if (sched_node_port_add(n, ports[i]) < 0) { /* the same port twice in one task */
			for (size_t j = 0; j < i; j++)
				sched_node_port_del(n, ports[j]);
			return berth_error_msg(err, EINVAL, "task '%s': host port %u given twice", id,
					       ports[i]);
		}
	slot = task_slot_new(s);
	struct stask *t = &s->tasks[slot];
	*t = (struct stask){ .id = xstrdup(id),
			     .node = node,
			     .group = group,
			     .cpu = cpu,
			     .mem = mem,
			     .priority = priority,
			     .started_at = started_at,
			     .n_ports = (uint16_t)n_ports,
			     .n_tols = (uint16_t)n_tols,
			     .alive = true };
	t->ports = xmalloc((n_ports + 1) * sizeof(*t->ports));
	if (n_ports)
		memcpy(t->ports, ports, n_ports * sizeof(*ports));
	t->tols = xmalloc((n_tols + 1) * sizeof(*t->tols));
	if (n_tols)
		memcpy(t->tols, tols, n_tols * sizeof(*tols));
	t->rules = xmalloc((n_rules + 1) * sizeof(*t->rules));
	if (n_rules)
		memcpy(t->rules, rules, n_rules * sizeof(*rules));
	t->n_rules = (uint16_t)n_rules;
	if (n->n_tasks == n->cap_tasks) {
		n->cap_tasks = n->cap_tasks ? n->cap_tasks * 2 : 4;
		n->tasks = xrealloc(n->tasks, n->cap_tasks * sizeof(*n->tasks));
	}
	t->pos = n->n_tasks;
	n->tasks[n->n_tasks++] = slot;
	n->cpu_used += cpu;
	n->mem_used += mem;
	sched_strmap_set(&s->task_ids, t->id, slot);
	sched_groups_membership(s, t, +1);
	s->n_tasks++;
	s->task_gen++;
	return (int)slot;
}

void sched_task_delete(struct sched_snapshot *s, uint32_t slot)
{
	struct stask *t = &s->tasks[slot];
	struct snode *n = &s->nodes[t->node];
	sched_groups_membership(s, t, -1);
	for (uint16_t i = 0; i < t->n_ports; i++)
		sched_node_port_del(n, t->ports[i]);
	n->cpu_used -= t->cpu;
	n->mem_used -= t->mem;
	uint32_t last = n->tasks[--n->n_tasks];
	n->tasks[t->pos] = last;
	s->tasks[last].pos = t->pos;
	sched_strmap_del(&s->task_ids, t->id);
	free(t->id);
	free(t->ports);
	free(t->tols);
	free(t->rules);
	*t = (struct stask){ 0 };
	s->free_tasks[s->n_free_tasks++] = slot;
	s->n_tasks--;
	s->task_gen++;
}

void sched_tasks_done(struct sched_snapshot *s)
{
	for (uint32_t i = 0; i < s->n_task_slots; i++) {
		free(s->tasks[i].id);
		free(s->tasks[i].ports);
		free(s->tasks[i].tols);
		free(s->tasks[i].rules);
	}
	free(s->tasks);
	free(s->free_tasks);
	sched_strmap_done(&s->task_ids);
}

int sched_task_add(struct sched_snapshot *s, const struct sched_task_spec *spec, struct berth_error **err)
{
	uint32_t node;
	if (!spec->id || !*spec->id)
		return berth_error_msg(err, EINVAL, "task: id is required");
	if (!spec->node_id || !sched_strmap_get(&s->node_ids, spec->node_id, &node))
		return berth_error_msg(err, ENOENT, "task '%s': node '%s' not found", spec->id,
				       spec->node_id ? spec->node_id : "");
	if (spec->cpu < 0 || spec->memory < 0)
		return berth_error_msg(err, EINVAL, "task '%s': negative cpu or memory", spec->id);
	if (spec->n_ports > SCHED_MAX_PORTS || spec->n_tolerations > SCHED_MAX_TERMS)
		return berth_error_msg(err, E2BIG, "task '%s': too many ports or tolerations", spec->id);
	if (spec->n_anti_affinity > SCHED_MAX_TERMS)
		return berth_error_msg(err, E2BIG, "task '%s': too many anti-affinity terms", spec->id);
	struct itol tols[SCHED_MAX_TERMS];
	sched_tolerations_intern(s, spec->tolerations, spec->n_tolerations, tols);
	uint32_t rules[SCHED_MAX_TERMS * 4];
	size_t n_rules = 0;
	for (size_t i = 0; i < spec->n_anti_affinity; i++) {
		const struct sched_task_affinity *a = &spec->anti_affinity[i];
		if (!a->anti || !a->required || !a->topology_key)
			continue;
		uint32_t key = sched_topology_key(s, a->topology_key);
		for (size_t j = 0; j < a->n_groups && n_rules < ARRAY_SIZE(rules); j++)
			rules[n_rules++] = sched_antirule(s, sched_intern(&s->in, a->groups[j]), key);
	}
	int r = sched_task_insert(s, spec->id, node, sched_intern(&s->in, spec->group), spec->cpu,
				  spec->memory, spec->ports, spec->n_ports, spec->priority, spec->started_at,
				  tols, spec->n_tolerations, rules, n_rules, err);
	return r < 0 ? r : 0;
}

int sched_task_remove(struct sched_snapshot *s, const char *id, struct berth_error **err)
{
	uint32_t slot;
	if (!id || !sched_strmap_get(&s->task_ids, id, &slot))
		return berth_error_msg(err, ENOENT, "task '%s' not found", id ? id : "");
	sched_task_delete(s, slot);
	return 0;
}
