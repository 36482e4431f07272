/*
 * sched-cache.c - the scheduler's view of the store: one sched_snapshot per
 * cluster, built from the store on first use and then kept current
 * incrementally from the store's watch stream (etcd's model: every change is
 * an event with a revision).
 *
 * The cache remembers the revision it has applied. Each placement locks the
 * cache and first applies the events since then (a watch from that revision
 * with no wait), so a decision always sees every write the store had when it
 * started, whichever replica made it. Events touch the snapshot as follows:
 * an instance record is a node put (status, resources, attributes and labels,
 * taints) or, INACTIVE, a node removal; the node's alive key (its agent's
 * lease) is agentConnected; a task record adds its task while it holds
 * resources and removes it once STOPPED or preempted.
 *
 * Trade-off: applying an event is idempotent (a put replaces, adding a known
 * task or removing an unknown one does nothing), so a cluster loaded with
 * range reads while the cache's revision is older simply replays a few
 * events it already saw, and the end state is the store's. A revision the
 * store compacted away (-ERANGE) drops every snapshot and reloads.
 * One lock for every cluster: placements on one replica run one at a time.
 *
 * Read-your-writes: server_sched_cache_lock_fresh() may skip the catch-up read
 * (SQLite: it waits for the commit in progress), but only when no write the
 * snapshot may be missing was acknowledged since the last catch-up began.
 * The store tells server_sched_cache_note_write() of every write made through this
 * process's handle once it is durable and before its caller answers; writes
 * that matter (an instance record, an agent's alive key, a lease revoke, a
 * task deleted or (being) stopped) bump a counter, and a catch-up remembers
 * the counter's value read before it read the store. Equal values: every
 * acknowledged change is in the snapshot. The placements' own binds (new
 * task records, already in the snapshot as tentative placements) and the
 * agents' progress reports do not count, so concurrent RunTask calls keep
 * sharing one commit. Other replicas' writes (etcd) are never told here:
 * that path always catches up under the lock.
 */
#include <stdatomic.h>
#include <time.h>

#include "common/log.h"
#include "common/process.h"
#include "server/internal.h"

#define WATCH_PREFIX "/berth/"

struct sched_cluster {
	char *name;
	struct sched_snapshot *snap;
};

struct sched_cache {
	pthread_mutex_t lock;
	int64_t rev; /* every event up to here applied; 0: nothing loaded */
	struct sched_cluster *clusters;
	size_t n_clusters;
	json_t *alive;               /* node id -> true: agent connected (every cluster) */
	json_t *nodes;               /* node id -> {"cluster", "status"}, nodes of loaded clusters */
	int64_t caught_up_ms;        /* monotonic time of the last complete catch-up */
	atomic_uint_fast64_t writes; /* relevant writes told by the store (server_sched_cache_note_write) */
	uint_fast64_t writes_seen;   /* writes when the last complete catch-up began */
};

struct sched_cache *server_sched_cache_new(void)
{
	struct sched_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->alive = json_object();
	c->nodes = json_object();
	return c;
}

static void reset(struct sched_cache *c)
{
	for (size_t i = 0; i < c->n_clusters; i++) {
		free(c->clusters[i].name);
		sched_snapshot_free(c->clusters[i].snap);
	}
	free(c->clusters);
	c->clusters = NULL;
	c->n_clusters = 0;
	c->rev = 0;
	json_object_clear(c->alive);
	json_object_clear(c->nodes);
}

struct sched_cache *server_sched_cache_free(struct sched_cache *c)
{
	if (!c)
		return NULL;
	reset(c);
	json_decref(c->alive);
	json_decref(c->nodes);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

bool server_task_holds_resources(json_t *task)
{
	return server_task_active(task) &&
	       !streq_ptr(json_string_value(json_object_get(task, "stopCode")), TASK_STOP_CODE_PREEMPTED);
}

static struct sched_snapshot *find(struct sched_cache *c, const char *cluster)
{
	for (size_t i = 0; i < c->n_clusters; i++)
		if (streq(c->clusters[i].name, cluster))
			return c->clusters[i].snap;
	return NULL;
}

static int64_t resource(json_t *inst, const char *name, json_t **ret_set)
{
	size_t i;
	json_t *x;
	json_array_foreach (json_object_get(inst, "registeredResources"), i, x)
		if (streq_ptr(json_string_value(json_object_get(x, "name")), name)) {
			if (ret_set)
				*ret_set = json_object_get(x, "stringSetValue");
			return json_integer_value(json_object_get(x, "integerValue"));
		}
	return 0;
}

static bool attr_seen(const struct sched_attr *a, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(a[i].name, name))
			return true;
	return false;
}

/*
 * Taints from registration (--taint: {key, value, effect, addedAt}) and from
 * `berth:taint:KEY` attributes set with PutAttributes (value "VALUE:EFFECT",
 * docs/scheduler.md; when each was set: the record's taintAddedAt), as one
 * new array. NoExecute tolerationSeconds count from addedAt.
 */
static json_t *taints_json(json_t *inst)
{
	json_t *out = json_deep_copy(json_object_get(inst, "taints")) ?: json_array();
	size_t i;
	json_t *x;
	json_array_foreach (json_object_get(inst, "attributes"), i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		const char *value = json_string_value(json_object_get(x, "value"));
		const char *colon = value ? strrchr(value, ':') : NULL;
		if (!name || !startswith(name, "berth:taint:") || !colon)
			continue;
		json_t *t = json_pack("{s:s,s:s%,s:s}", "key", name + strlen("berth:taint:"), "value", value,
				      (size_t)(colon - value), "effect", colon + 1);
		json_t *at = json_object_get(json_object_get(inst, "taintAddedAt"), name);
		if (json_is_number(at))
			json_object_set(t, "addedAt", at);
		json_array_append_new(out, t);
	}
	return out;
}

/*
 * A time in whole seconds, rounded up: the scheduler counts taints' ages in
 * whole seconds from these against a rounded-down now, so a NoExecute
 * toleration is never cut short (it may last up to a second longer).
 */
static int64_t ceil_seconds(double t)
{
	int64_t v = (int64_t)t;
	return (double)v < t ? v + 1 : v;
}

static size_t taints_of(json_t *list_, struct sched_taint *t, int64_t added)
{
	size_t n = 0, i;
	json_t *x;
	json_array_foreach (list_, i, x) {
		const char *eff = json_string_value(json_object_get(x, "effect"));
		int e = streq_ptr(eff, "NoSchedule")         ? SCHED_NO_SCHEDULE
			: streq_ptr(eff, "PreferNoSchedule") ? SCHED_PREFER_NO_SCHEDULE
			: streq_ptr(eff, "NoExecute")        ? SCHED_NO_EXECUTE
							     : -1;
		const char *key = json_string_value(json_object_get(x, "key"));
		if (e < 0 || !key || !*key || n == SCHED_MAX_TAINTS)
			continue;
		json_t *at = json_object_get(x, "addedAt");
		t[n++] =
		    (struct sched_taint){ key, json_string_value(json_object_get(x, "value")), e,
					  json_is_number(at) ? ceil_seconds(json_number_value(at)) : added };
	}
	return n;
}

static int node_put(struct sched_cache *c, struct sched_snapshot *snap, json_t *inst,
		    struct berth_error **err)
{
	const char *id =
	    server_arn_tail(json_string_value(json_object_get(inst, "containerInstanceArn")) ?: "");
	const char *status = json_string_value(json_object_get(inst, "status"));
	if (streq_ptr(status, "INACTIVE")) {
		(void)sched_node_remove(snap, id, NULL);
		json_object_del(c->nodes, id);
		return 0;
	}
	struct sched_attr attrs[SCHED_MAX_ATTRS];
	struct sched_taint taints[SCHED_MAX_TAINTS];
	size_t na = 0, i, nt;
	int64_t registered = (int64_t)json_number_value(json_object_get(inst, "registeredAt"));
	json_t *tj = taints_json(inst);
	nt = taints_of(tj, taints, ceil_seconds(json_number_value(json_object_get(inst, "registeredAt"))));
	json_t *x;
	json_array_foreach (json_object_get(inst, "attributes"), i, x) {
		const char *name = json_string_value(json_object_get(x, "name"));
		if (name && na < SCHED_MAX_ATTRS && !startswith(name, "berth:taint:") &&
		    !attr_seen(attrs, na, name))
			attrs[na++] =
			    (struct sched_attr){ name, json_string_value(json_object_get(x, "value")) };
	}
	const char *k;
	json_object_foreach (json_object_get(inst, "labels"), k, x)
		if (json_is_string(x) && na < SCHED_MAX_ATTRS && !attr_seen(attrs, na, k))
			attrs[na++] = (struct sched_attr){ k, json_string_value(x) };
	json_t *ports = NULL;
	int64_t cpu = resource(inst, "CPU", &ports), mem = resource(inst, "MEMORY", NULL);
	resource(inst, "PORTS", &ports);
	uint16_t reserved[SCHED_MAX_PORTS];
	size_t nr = 0;
	json_array_foreach (ports, i, x) {
		long p = strtol(json_string_value(x) ?: "0", NULL, 10);
		if (p > 0 && p < 65536 && nr < SCHED_MAX_PORTS)
			reserved[nr++] = (uint16_t)p;
	}
	const char *ver =
	    json_string_value(json_object_get(json_object_get(inst, "versionInfo"), "agentVersion"));
	struct sched_node_spec spec = {
		.id = id,
		.ec2_instance_id = json_string_value(json_object_get(inst, "ec2InstanceId")),
		.cpu = (int32_t)MIN(cpu, INT32_MAX),
		.memory = (int32_t)MIN(mem, INT32_MAX),
		.reserved_ports = reserved,
		.n_reserved_ports = nr,
		.status = streq_ptr(status, "DRAINING") ? SCHED_NODE_DRAINING : SCHED_NODE_ACTIVE,
		.agent_connected = json_object_get(c->alive, id) != NULL,
		.agent_version = ver && *ver ? ver : NULL,
		.registered_at = registered,
		.attrs = attrs,
		.n_attrs = na,
		.taints = taints,
		.n_taints = nt,
	};
	int r = sched_node_put(snap, &spec, err);
	json_decref(tj);
	if (r < 0)
		return r;
	json_t *info =
	    json_pack("{s:s,s:b}", "cluster", json_string_value(json_object_get(inst, "clusterName")) ?: "",
		      "draining", spec.status == SCHED_NODE_DRAINING);
	for (i = 0; i < na; i++)
		if (streq(attrs[i].name, "ecs.availability-zone") && attrs[i].value)
			json_object_set_new(info, "az", json_string(attrs[i].value));
	json_object_set_new(c->nodes, id, info);
	return 0;
}

static void task_put(struct sched_snapshot *snap, json_t *task)
{
	const char *id = server_arn_tail(json_string_value(json_object_get(task, "taskArn")) ?: "");
	if (!server_task_holds_resources(task)) {
		(void)sched_task_remove(snap, id, NULL);
		return;
	}
	if (sched_task_node(snap, id))
		return; /* known: a task's resources never change while it runs */
	struct sreq r;
	struct sched_task_spec spec;
	if (server_sreq_task_spec(&r, task, &spec) == 0)
		(void)sched_task_add(snap, &spec, NULL); /* -ENOENT: its node is gone */
	server_sreq_done(&r);
}

static void alive_changed(struct sched_cache *c, const char *id, bool alive)
{
	if (alive)
		json_object_set_new(c->alive, id, json_true());
	else
		json_object_del(c->alive, id);
	json_t *n = json_object_get(c->nodes, id);
	struct sched_snapshot *snap = n ? find(c, json_string_value(json_object_get(n, "cluster"))) : NULL;
	if (snap)
		(void)sched_node_set_status(snap, id,
					    json_is_true(json_object_get(n, "draining")) ? SCHED_NODE_DRAINING
											 : SCHED_NODE_ACTIVE,
					    alive, NULL);
}

/*
 * A disruption budget the leader published (/berth/budgets/CLUSTER/GROUP =
 * {"allowed": N}; NULL: removed): every replica's snapshot holds it, so a
 * RunTask on any replica preempts within it.
 */
static void budget_put(struct sched_snapshot *snap, const char *group, const char *value, size_t len)
{
	json_t *v = value ? json_loadb(value, len, 0, NULL) : NULL;
	json_t *a = json_object_get(v, "allowed");
	sched_group_set_budget(
	    snap, group, json_is_integer(a) ? (int32_t)MAX(0, MIN(json_integer_value(a), INT32_MAX)) : -1);
	json_decref(v);
}

/* "/berth/KIND/CLUSTER/ID" -> the cluster's snapshot when loaded. */
static struct sched_snapshot *cluster_of(struct sched_cache *c, const char *key, const char *kind)
{
	const char *rest = key + strlen(kind), *slash = strchr(rest, '/');
	if (!slash)
		return NULL;
	_cleanup_free_ char *name = xstrndup(rest, (size_t)(slash - rest));
	return find(c, name);
}

/*
 * A known task that does not stop: nothing to do (a running task's
 * resources never change), without parsing it. Most task events are this
 * replica's own placements and the agents' progress reports.
 */
static bool task_unchanged(struct sched_snapshot *snap, const char *id, const char *value, size_t len)
{
	return sched_task_node(snap, id) && !memmem(value, len, "STOPPED", 7) &&
	       !memmem(value, len, TASK_STOP_CODE_PREEMPTED, strlen(TASK_STOP_CODE_PREEMPTED));
}

/*
 * The catch-up's store_watch_values() filter: the values apply() would skip
 * are not even copied out of the store (on SQLite; ~1.3 KB per placement
 * read back under the scheduler lock). Called under the lock, before the
 * batch is applied: a task it leaves out is known now, and a batch never
 * removes a task and puts it back (task ids are not reused).
 */
static bool want_value(void *arg, const char *key, const char *value, size_t len)
{
	struct sched_cache *c = arg;
	if (!value)
		value = ""; /* an empty value (memmem's arguments are nonnull) */
	if (!startswith(key, "/berth/tasks/"))
		return true;
	struct sched_snapshot *snap = cluster_of(c, key, "/berth/tasks/");
	return snap && !task_unchanged(snap, strrchr(key, '/') + 1, value, len);
}

static void apply(struct sched_cache *c, const struct store_event *e)
{
	const char *key = e->kv.key;
	bool put = e->type == STORE_EVENT_PUT;
	if (put && !e->kv.value)
		return; /* left out by want_value(): nothing to do */
	if (startswith(key, "/berth/alive/")) {
		alive_changed(c, key + strlen("/berth/alive/"), put);
		return;
	}
	if (startswith(key, "/berth/budgets/")) {
		struct sched_snapshot *snap = cluster_of(c, key, "/berth/budgets/");
		if (snap)
			budget_put(snap, strrchr(key, '/') + 1, put ? e->kv.value : NULL,
				   put ? e->kv.value_len : 0);
		return;
	}
	bool inst = startswith(key, "/berth/instances/");
	if (!inst && !startswith(key, "/berth/tasks/"))
		return;
	struct sched_snapshot *snap = cluster_of(c, key, inst ? "/berth/instances/" : "/berth/tasks/");
	if (!snap)
		return;
	const char *id = strrchr(key, '/') + 1;
	if (!put) {
		if (inst)
			(void)sched_node_remove(snap, id, NULL);
		else
			(void)sched_task_remove(snap, id, NULL);
		return;
	}
	if (!inst && task_unchanged(snap, id, e->kv.value, e->kv.value_len))
		return;
	json_t *v = json_loadb(e->kv.value, e->kv.value_len, 0, NULL);
	if (!v)
		return;
	if (inst) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (node_put(c, snap, v, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			log_fields(LOG_LEVEL_WARN, "scheduler: node ignored", "key", key, "error", m, NULL);
		}
	} else {
		task_put(snap, v);
	}
	json_decref(v);
}

/* Apply every event after c->rev. -ERANGE when the store compacted them. */
static int catch_up(struct server *s, struct sched_cache *c, struct berth_error **err)
{
	/* before the first read: a write told after this is seen on the next catch-up */
	uint_fast64_t writes = atomic_load(&c->writes);
	for (;;) {
		struct store_event_list ev;
		int r = store_watch_values(s->store, WATCH_PREFIX, c->rev + 1, 0, want_value, c, &ev, err);
		if (r < 0)
			return r;
		if (ev.n == 0) {
			c->rev = MAX(c->rev, ev.revision);
			store_event_list_done(&ev);
			c->writes_seen = writes;
			return 0;
		}
		/*
		 * A store may cut a batch inside one revision (a transaction's
		 * events): apply whole revisions only, unless there is just one.
		 */
		int64_t first = ev.events[0].kv.mod_revision, last = ev.events[ev.n - 1].kv.mod_revision;
		int64_t upto = first == last ? last : last - 1;
		for (size_t i = 0; i < ev.n; i++)
			if (ev.events[i].kv.mod_revision <= upto)
				apply(c, &ev.events[i]);
		c->rev = upto;
		store_event_list_done(&ev);
	}
}

static int load_alive(struct server *s, struct sched_cache *c, struct berth_error **err)
{
	if (store_revision(s->store, &c->rev, err) < 0)
		return -EIO;
	struct store_kv_list l;
	const char *after = NULL;
	_cleanup_free_ char *last = NULL;
	do {
		if (store_range(s->store, "/berth/alive/", after, 0, &l, err) < 0)
			return -EIO;
		for (size_t i = 0; i < l.n; i++)
			json_object_set_new(c->alive, l.kvs[i].key + strlen("/berth/alive/"), json_true());
		free(last);
		last = l.n ? xstrdup(l.kvs[l.n - 1].key) : NULL;
		after = last;
		bool more = l.more;
		store_kv_list_done(&l);
		if (!more)
			break;
	} while (after);
	return 0;
}

static int load_cluster(struct server *s, struct sched_cache *c, const char *cluster,
			struct sched_snapshot **ret, struct berth_error **err)
{
	_cleanup_free_ char *ip = xasprintf("/berth/instances/%s/", cluster);
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	json_t *insts = NULL, *tasks = NULL;
	if (server_record_list(s, ip, &insts, err) < 0)
		return -EIO;
	if (server_record_list(s, tp, &tasks, err) < 0) {
		json_decref(insts);
		return -EIO;
	}
	struct sched_snapshot *snap = sched_snapshot_new((uint64_t)time(NULL) ^ (uintptr_t)c);
	sched_snapshot_reserve(snap, json_array_size(insts), json_array_size(tasks));
	size_t i;
	json_t *x;
	json_array_foreach (insts, i, x) {
		_cleanup_error_ struct berth_error *e2 = NULL;
		if (node_put(c, snap, x, &e2) < 0) {
			_cleanup_free_ char *m = berth_error_string(e2);
			log_fields(LOG_LEVEL_WARN, "scheduler: node ignored", "error", m, NULL);
		}
	}
	json_array_foreach (tasks, i, x)
		task_put(snap, x);
	json_decref(insts);
	json_decref(tasks);
	_cleanup_free_ char *bp = xasprintf("/berth/budgets/%s/", cluster);
	struct store_kv_list bl;
	if (store_range(s->store, bp, NULL, 0, &bl, NULL) == 0) {
		for (size_t k = 0; k < bl.n; k++)
			budget_put(snap, strrchr(bl.kvs[k].key, '/') + 1, bl.kvs[k].value,
				   bl.kvs[k].value_len);
		store_kv_list_done(&bl);
	}
	c->clusters = xrealloc(c->clusters, (c->n_clusters + 1) * sizeof(*c->clusters));
	c->clusters[c->n_clusters++] = (struct sched_cluster){ xstrdup(cluster), snap };
	*ret = snap;
	return 0;
}

int server_sched_cache_lock_fresh(struct server *s, const char *cluster, int max_age_ms,
				  struct sched_snapshot **ret, struct berth_error **err)
{
	struct sched_cache *c = s->sched;
	pthread_mutex_lock(&c->lock);
	struct sched_snapshot *known = c->rev ? find(c, cluster) : NULL;
	if (known && max_age_ms > 0 && proc_now_ms() - c->caught_up_ms < max_age_ms &&
	    atomic_load(&c->writes) == c->writes_seen) {
		*ret = known;
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	return server_sched_cache_lock(s, cluster, ret, err);
}

int server_sched_cache_lock(struct server *s, const char *cluster, struct sched_snapshot **ret,
			    struct berth_error **err)
{
	struct sched_cache *c = s->sched;
	pthread_mutex_lock(&c->lock);
	for (int attempt = 0; attempt < 3; attempt++) {
		int r = c->rev ? 0 : load_alive(s, c, err);
		if (r == 0)
			r = catch_up(s, c, err);
		if (r == -ERANGE) {
			if (err)
				*err = berth_error_free(*err);
			reset(c);
			continue;
		}
		if (r < 0)
			break;
		struct sched_snapshot *snap = find(c, cluster);
		if (!snap && load_cluster(s, c, cluster, &snap, err) < 0)
			break;
		/* what changed while the cluster loaded (replayed: idempotent) */
		r = catch_up(s, c, err);
		if (r == -ERANGE) {
			if (err)
				*err = berth_error_free(*err);
			reset(c);
			continue;
		}
		if (r < 0)
			break;
		c->caught_up_ms = proc_now_ms();
		*ret = snap;
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	return -EIO;
}

int server_sched_cache_catch_up(struct server *s, struct berth_error **err)
{
	struct sched_cache *c = s->sched;
	int r = catch_up(s, c, err);
	if (r == -ERANGE)
		reset(c); /* the next server_sched_cache_lock reloads */
	else if (r == 0)
		c->caught_up_ms = proc_now_ms();
	return r;
}

void server_sched_cache_drop(struct server *s, const char *cluster)
{
	struct sched_cache *c = s->sched;
	for (size_t i = 0; i < c->n_clusters; i++)
		if (streq(c->clusters[i].name, cluster)) {
			free(c->clusters[i].name);
			sched_snapshot_free(c->clusters[i].snap);
			c->clusters[i] = c->clusters[--c->n_clusters];
			return;
		}
}

/* Whether a write of these operations may change what a placement must see (see the top). */
static bool write_matters(const struct store_op *ops, size_t n_ops)
{
	if (!ops)
		return true; /* a lease revoke: its keys (an agent's alive key) are unknown */
	for (size_t i = 0; i < n_ops; i++) {
		const struct store_op *op = &ops[i];
		if (startswith(op->key, "/berth/instances/") || startswith(op->key, "/berth/alive/") ||
		    startswith(op->key, "/berth/budgets/"))
			return true;
		if (!startswith(op->key, "/berth/tasks/"))
			continue;
		if (op->type == STORE_OP_DELETE || memmem(op->value, op->value_len, "STOPPED", 7) ||
		    memmem(op->value, op->value_len, TASK_STOP_CODE_PREEMPTED,
			   strlen(TASK_STOP_CODE_PREEMPTED)))
			return true;
	}
	return false;
}

void server_sched_cache_note_write(void *cache, const struct store_op *ops, size_t n_ops)
{
	struct sched_cache *c = cache;
	if (write_matters(ops, n_ops))
		atomic_fetch_add(&c->writes, 1);
}

const char *server_sched_cache_node_zone(struct server *s, const char *node_id)
{
	return json_string_value(json_object_get(json_object_get(s->sched->nodes, node_id), "az"));
}

void server_sched_cache_unlock(struct server *s)
{
	pthread_mutex_unlock(&s->sched->lock);
}
