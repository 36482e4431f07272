/*
 * tasks.c - RunTask, StartTask, StopTask, DescribeTasks, ListTasks.
 *
 * Placement happens inside the API call so RunTask can answer with the
 * placed tasks and the failures at once (as ECS does). Any replica may place:
 * it reads the cluster's placement token (/berth/placement/CLUSTER), plans
 * from the instances and tasks it read, and writes the new tasks together
 * with a bumped token in one transaction that compares the token's revision;
 * a concurrent placement makes the comparison fail and the call re-plans. So
 * two replicas never overcommit a node.
 *
 * Task records then move PROVISIONING -> PENDING -> RUNNING -> STOPPED as the
 * node's agent reports (agent.c); the leader's controllers (leader.c) stop the
 * tasks of nodes that stay away too long.
 */
#include "common/json.h"
#include "server/internal.h"
#include <limits.h>

#include "server/taskdef.h"

#define TASKS_MAX_COUNT 10

bool server_task_active(json_t *task)
{
	return !streq_ptr(json_string_value(json_object_get(task, "lastStatus")), "STOPPED");
}

static void set_containers(json_t *task, const char *status)
{
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(task, "containers"), i, c)
		if (!streq_ptr(json_string_value(json_object_get(c, "lastStatus")), "STOPPED"))
			json_object_set_new(c, "lastStatus", json_string(status));
}

int server_task_stop_now(struct server *s, const char *key, json_t *task, const char *code,
			 const char *reason, struct berth_error **err)
{
	double now = server_record_now();
	json_object_set_new(task, "lastStatus", json_string("STOPPED"));
	json_object_set_new(task, "desiredStatus", json_string("STOPPED"));
	if (!json_object_get(task, "stopCode"))
		json_object_set_new(task, "stopCode", json_string(code));
	if (!json_object_get(task, "stoppedReason"))
		json_object_set_new(task, "stoppedReason", json_string(reason));
	if (!json_object_get(task, "stoppingAt"))
		json_object_set_new(task, "stoppingAt", json_real(now));
	json_object_set_new(task, "stoppedAt", json_real(now));
	json_object_set_new(task, "executionStoppedAt", json_real(now));
	set_containers(task, "STOPPED");
	json_object_set_new(task, "version",
			    json_integer(json_integer_value(json_object_get(task, "version")) + 1));
	return server_record_put(s, key, task, err);
}

#define run_args task_run_args

/*
 * What every task record of one RunTask shares, serialized once: the ARN
 * prefixes and the constant fields (cluster, task definition, statuses,
 * size, group, overrides, tags) as `"k":v,...` without braces, and each
 * container's. task_record() then writes a record as a string: the tree
 * of objects built and dumped for each task was most of a placement's
 * CPU after the decision.
 */
struct record_tmpl {
	char *task_arn, *inst_arn, *container_arn; /* "arn:aws:ecs:REGION:ACCOUNT:KIND/CLUSTER/" */
	char *shared;
	char *placement_head; /* server_sreq_extra_head() */
	char **containers;
	size_t n_containers;
};

/* `"name":` then a JSON string (NULL: null), a member of the template text (comma first unless it starts). */
static void member_str(struct strbuf *sb, const char *name, const char *value)
{
	if (sb->len)
		strbuf_addch(sb, ',');
	strbuf_add_json_string(sb, name);
	strbuf_addch(sb, ':');
	if (value)
		strbuf_add_json_string(sb, value);
	else
		strbuf_addstr(sb, "null");
}

/* `"name":` then any JSON value, as text. */
static void member_raw(struct strbuf *sb, const char *name, const char *text)
{
	if (sb->len)
		strbuf_addch(sb, ',');
	strbuf_add_json_string(sb, name);
	strbuf_addch(sb, ':');
	strbuf_addstr(sb, text);
}

static void member_json(struct strbuf *sb, const char *name, json_t *v)
{
	_cleanup_free_ char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	member_raw(sb, name, text ? text : "null");
}

/* An integer as ECS writes task and container sizes: a string. */
static void member_num_str(struct strbuf *sb, const char *name, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	member_str(sb, name, buf);
}

static void tmpl_init(struct record_tmpl *t, struct server *s, const char *cluster, json_t *cl,
		      struct run_args *a, int64_t cpu, int64_t mem)
{
	t->task_arn = xasprintf("arn:aws:ecs:%s:%s:task/%s/", s->region, s->account, cluster);
	t->inst_arn = xasprintf("arn:aws:ecs:%s:%s:container-instance/%s/", s->region, s->account, cluster);
	t->container_arn = xasprintf("arn:aws:ecs:%s:%s:container/%s/", s->region, s->account, cluster);
	struct strbuf sb = STRBUF_INIT;
	member_str(&sb, "clusterArn", json_string_value(json_object_get(cl, "clusterArn")));
	member_str(&sb, "taskDefinitionArn", json_string_value(json_object_get(a->td, "taskDefinitionArn")));
	member_str(&sb, "lastStatus", "PROVISIONING");
	member_str(&sb, "desiredStatus", "RUNNING");
	member_num_str(&sb, "cpu", cpu);
	member_num_str(&sb, "memory", mem);
	member_str(&sb, "group", a->group);
	member_raw(&sb, "version", "1");
	member_str(&sb, "launchType", "EC2");
	member_raw(&sb, "attachments", "[]");
	if (a->tags)
		member_json(&sb, "tags", a->tags);
	else
		member_raw(&sb, "tags", "[]");
	member_json(&sb, "overrides", a->overrides);
	if (a->started_by)
		member_str(&sb, "startedBy", a->started_by);
	t->shared = strbuf_detach(&sb, NULL);
	t->placement_head = server_sreq_extra_head(a->td);
	json_t *defs = json_object_get(a->td, "containerDefinitions");
	t->containers = xcalloc(json_array_size(defs) + 1, sizeof(*t->containers));
	size_t i;
	json_t *c;
	json_array_foreach (defs, i, c) {
		member_str(&sb, "name", json_string_value(json_object_get(c, "name")));
		member_str(&sb, "image", json_string_value(json_object_get(c, "image")));
		member_str(&sb, "lastStatus", "PENDING");
		member_raw(&sb, "networkBindings", "[]");
		member_raw(&sb, "networkInterfaces", "[]");
		member_num_str(&sb, "cpu", json_integer_value(json_object_get(c, "cpu")));
		if (json_object_get(c, "memory"))
			member_num_str(&sb, "memory", json_integer_value(json_object_get(c, "memory")));
		t->containers[t->n_containers++] = strbuf_detach(&sb, NULL);
	}
}

static void tmpl_done(struct record_tmpl *t)
{
	free(t->task_arn);
	free(t->inst_arn);
	free(t->container_arn);
	free(t->shared);
	free(t->placement_head);
	for (size_t i = 0; i < t->n_containers; i++)
		free(t->containers[i]);
	free(t->containers);
	*t = (struct record_tmpl){ 0 };
}

/* An ARN, prefix and tail, as a JSON string. */
static void add_arn(struct strbuf *sb, const char *prefix, const char *tail)
{
	char buf[512];
	size_t a = strlen(prefix), b = strlen(tail);
	if (a + b < sizeof(buf)) {
		memcpy(buf, prefix, a);
		memcpy(buf + a, tail, b + 1);
		strbuf_add_json_string(sb, buf);
	} else {
		_cleanup_free_ char *arn = xasprintf("%s%s", prefix, tail);
		strbuf_add_json_string(sb, arn);
	}
}

/* A real as jansson writes it (JSON_COMPACT's 17 digits; ".0" on integral values). */
static void add_real(struct strbuf *sb, double v)
{
	char buf[40];
	int n = snprintf(buf, sizeof(buf) - 2, "%.17g", v);
	if (!strpbrk(buf, ".eE")) {
		buf[n++] = '.';
		buf[n++] = '0';
		buf[n] = '\0';
	}
	strbuf_addstr(sb, buf);
}

/* A placement decided under the scheduler lock, its task record built after (placed_records). */
struct decided {
	const char *task_id; /* borrowed, as bind.placed */
	char *node_id, *az;
	struct sched_placement why; /* its counts; ports a copy, node_id unused */
};

/* A new task record (PROVISIONING on its node) as a JSON object's text, appended to sb. */
static void task_record(struct strbuf *sb, const struct record_tmpl *t, const struct sreq *rq,
			const struct decided *d)
{
	const char *id = d->task_id;
	strbuf_addstr(sb, "{\"taskArn\":");
	add_arn(sb, t->task_arn, id);
	strbuf_addstr(sb, ",\"containerInstanceArn\":");
	add_arn(sb, t->inst_arn, d->node_id);
	strbuf_addstr(sb, ",\"createdAt\":");
	add_real(sb, server_record_now());
	if (d->az) {
		strbuf_addstr(sb, ",\"availabilityZone\":");
		strbuf_add_json_string(sb, d->az);
	}
	strbuf_addch(sb, ',');
	strbuf_addstr(sb, t->shared);
	strbuf_addstr(sb, ",\"containers\":[");
	for (size_t i = 0; i < t->n_containers; i++) {
		char ctail[128];
		char cid[ID_HEX_LEN + 1];
		server_id_hex_fill(cid);
		snprintf(ctail, sizeof(ctail), "%s/%s", id, cid);
		strbuf_addstr(sb, i ? ",{\"containerArn\":" : "{\"containerArn\":");
		add_arn(sb, t->container_arn, ctail);
		strbuf_addstr(sb, ",\"taskArn\":");
		add_arn(sb, t->task_arn, id);
		if (*t->containers[i])
			strbuf_addch(sb, ',');
		strbuf_addstr(sb, t->containers[i]);
		strbuf_addch(sb, '}');
	}
	strbuf_addch(sb, ']');
	strbuf_addstr(sb, ",\"berthPlacement\":");
	server_sreq_task_extra_text(rq, t->placement_head, &d->why, sb);
	strbuf_addch(sb, '}');
}

/* Task cpu/memory after overrides. */
static void task_size(struct run_args *a, int64_t *cpu, int64_t *mem)
{
	*cpu = server_taskdef_cpu(a->td);
	*mem = server_taskdef_memory(a->td);
	const char *oc = json_string_value(json_object_get(a->overrides, "cpu"));
	const char *om = json_string_value(json_object_get(a->overrides, "memory"));
	if (oc)
		*cpu = strtoll(oc, NULL, 10);
	if (om)
		*mem = strtoll(om, NULL, 10);
}

/* A disruption budget a placement's preemptions use: the value read and the one left. */
struct budget_use {
	char *group;
	int32_t before, after;
};

/* The writes of one placement: task records, preempted victims, budgets, the token; one transaction. */
struct bind {
	struct store_op *ops;
	struct store_cmp *cmps;
	char **bufs;
	size_t n_ops, n_cmps, n_bufs;
	const char **placed; /* task ids added to the snapshot */
	size_t n_placed;
	bool preempted; /* victims were removed from the snapshot */
	struct budget_use *budgets;
	size_t n_budgets;
};

static const char *keep(struct bind *b, char *s)
{
	b->bufs = xrealloc(b->bufs, (b->n_bufs + 1) * sizeof(*b->bufs));
	return b->bufs[b->n_bufs++] = s;
}

static void bind_op(struct bind *b, char *key, char *value)
{
	b->ops = xrealloc(b->ops, (b->n_ops + 1) * sizeof(*b->ops));
	const char *v = keep(b, value);
	b->ops[b->n_ops++] = (struct store_op){ STORE_OP_PUT, keep(b, key), v, strlen(v), 0 };
}

static void bind_put(struct bind *b, char *key, json_t *value)
{
	bind_op(b, key, json_dumps(value, JSON_COMPACT));
}

static void bind_cmp(struct bind *b, const char *key, enum store_cmp_target target, int64_t rev)
{
	b->cmps = xrealloc(b->cmps, (b->n_cmps + 1) * sizeof(*b->cmps));
	b->cmps[b->n_cmps++] = (struct store_cmp){ key, target, STORE_CMP_EQUAL, rev };
}

static void bind_cmp_value(struct bind *b, const char *key, const char *value)
{
	b->cmps = xrealloc(b->cmps, (b->n_cmps + 1) * sizeof(*b->cmps));
	b->cmps[b->n_cmps++] = (struct store_cmp){
		.key = key, .target = STORE_CMP_VALUE, .value = value, .value_len = strlen(value)
	};
}

static void bind_done(struct bind *b)
{
	for (size_t i = 0; i < b->n_budgets; i++)
		free(b->budgets[i].group);
	free(b->budgets);
	for (size_t i = 0; i < b->n_bufs; i++)
		free(b->bufs[i]);
	free(b->bufs);
	free(b->ops);
	free(b->cmps);
	free(b->placed);
}

struct placing {
	struct ecs_call *c;
	const char *cluster;
	json_t *cl;
	struct run_args *a;
	struct sreq *rq;
	int64_t cpu, mem;
	struct sched_snapshot *snap;
	struct strbuf tasks; /* the records written, as a JSON array's items */
	json_t *failures;
	struct bind b;
	struct decided *decided;
	size_t n_decided;
};

/*
 * Under the lock: what the task record needs from the decision and the
 * cache; the record itself (JSON built and dumped, most of a placement's
 * CPU after the decision) is made by placed_records(), after the lock when
 * the bind is.
 */
static void placed(struct placing *pl, const struct sched_placement *p)
{
	const char *az = server_sched_cache_node_zone(pl->c->srv, p->node_id);
	pl->decided = xrealloc(pl->decided, (pl->n_decided + 1) * sizeof(*pl->decided));
	struct decided *d = &pl->decided[pl->n_decided++];
	*d = (struct decided){ p->task_id, xstrdup(p->node_id), az ? xstrdup(az) : NULL, *p };
	d->why.node_id = NULL;
	d->why.ports = NULL;
	if (p->n_ports) {
		d->why.ports = xmalloc(p->n_ports * sizeof(*p->ports));
		memcpy(d->why.ports, p->ports, p->n_ports * sizeof(*p->ports));
	}
	pl->b.placed = xrealloc(pl->b.placed, (pl->b.n_placed + 1) * sizeof(*pl->b.placed));
	pl->b.placed[pl->b.n_placed++] = p->task_id;
}

static void placed_records(struct placing *pl)
{
	struct record_tmpl t = { 0 };
	tmpl_init(&t, pl->c->srv, pl->cluster, pl->cl, pl->a, pl->cpu, pl->mem);
	for (size_t i = 0; i < pl->n_decided; i++) {
		struct decided *d = &pl->decided[i];
		struct strbuf sb = STRBUF_INIT;
		task_record(&sb, &t, pl->rq, d);
		if (pl->tasks.len)
			strbuf_addch(&pl->tasks, ',');
		strbuf_add(&pl->tasks, sb.buf, sb.len);
		bind_op(&pl->b, xasprintf("/berth/tasks/%s/%s", pl->cluster, d->task_id),
			strbuf_detach(&sb, NULL));
	}
	tmpl_done(&t);
}

static void decided_done(struct placing *pl)
{
	for (size_t i = 0; i < pl->n_decided; i++) {
		free(pl->decided[i].node_id);
		free(pl->decided[i].az);
		free(pl->decided[i].why.ports);
	}
	free(pl->decided);
}

static void failed(struct placing *pl, json_t *arn, const char *reason, const char *detail)
{
	json_t *f = json_pack("{s:s}", "reason", reason);
	if (arn)
		json_object_set(f, "arn", arn);
	if (detail)
		json_object_set_new(f, "detail", json_string(detail));
	json_array_append_new(pl->failures, f);
}

/*
 * A victim of a group with a disruption budget uses one disruption of it:
 * in the snapshot now (the next decision of this replica sees what is
 * left) and in the store with the bind (budget_bind).
 */
static void budget_take(struct placing *pl, const char *group)
{
	int32_t allowed = group ? sched_group_budget(pl->snap, group) : -1;
	if (allowed < 0)
		return;
	struct bind *b = &pl->b;
	struct budget_use *u = NULL;
	for (size_t i = 0; i < b->n_budgets; i++)
		if (streq(b->budgets[i].group, group))
			u = &b->budgets[i];
	if (!u) {
		b->budgets = xrealloc(b->budgets, (b->n_budgets + 1) * sizeof(*b->budgets));
		u = &b->budgets[b->n_budgets++];
		*u = (struct budget_use){ xstrdup(group), allowed, allowed };
	}
	u->after = MAX(0, allowed - 1);
	sched_group_set_budget(pl->snap, group, u->after);
}

/*
 * The budgets the victims used, written with the bind and compared on the
 * value read: two preemptions, on this replica or another, never both use
 * one allowance (the second one's comparison fails and it decides again,
 * with what is left). The leader's recount (rebalance.c) agrees once the
 * victims are stopping, and never overwrites a newer value with an older
 * count. The values are the leader's format (budget_publish).
 */
static void budget_bind(struct placing *pl)
{
	for (size_t i = 0; i < pl->b.n_budgets; i++) {
		struct budget_use *u = &pl->b.budgets[i];
		char *key = xasprintf("/berth/budgets/%s/%s", pl->cluster, u->group);
		const char *before = keep(&pl->b, xasprintf("{\"allowed\":%d}", u->before));
		bind_cmp_value(&pl->b, key, before);
		bind_op(&pl->b, key, xasprintf("{\"allowed\":%d}", u->after));
	}
}

/*
 * Preemption: mark the victims STOPPED (desired) in the same transaction,
 * compared on their revisions, and release them in the snapshot so the new
 * task fits on the nominated node; their groups' disruption budgets are
 * used (budget_take).
 */
static int preempt(struct placing *pl, const struct sched_result *res, const char *for_id)
{
	_cleanup_free_ char *tail = xasprintf("%s/%s", pl->cluster, for_id);
	_cleanup_free_ char *arn = server_arn_make(pl->c->srv, "task", tail);
	_cleanup_free_ char *why = xasprintf("Preempted by task %s", arn);
	for (size_t i = 0; i < res->n_victims; i++) {
		char *key = xasprintf("/berth/tasks/%s/%s", pl->cluster, res->victims[i].task_id);
		json_t *t = NULL;
		int64_t rev = 0;
		if (server_record_get(pl->c->srv, key, &t, &rev, NULL) < 0) {
			free(key);
			return -1;
		}
		json_object_set_new(t, "desiredStatus", json_string("STOPPED"));
		json_object_set_new(t, "stopCode", json_string(TASK_STOP_CODE_PREEMPTED));
		json_object_set_new(t, "stoppedReason", json_string(why));
		json_object_set_new(t, "stoppingAt", json_real(server_record_now()));
		json_object_set_new(t, "version",
				    json_integer(json_integer_value(json_object_get(t, "version")) + 1));
		bind_put(&pl->b, key, t);
		json_decref(t);
		bind_cmp(&pl->b, key, STORE_CMP_MOD, rev);
		budget_take(pl, res->victims[i].group);
		(void)sched_task_remove(pl->snap, res->victims[i].task_id, NULL);
		pl->b.preempted = true;
	}
	return 0;
}

static void place_start(struct placing *pl, struct sched_prepared *p, char **ids)
{
	json_t *x;
	size_t i;
	json_array_foreach (pl->a->explicit_instances, i, x) {
		struct sched_result *res = NULL;
		if (sched_place_on(pl->snap, p, server_arn_tail(json_string_value(x)), ids[i], &res, NULL) <
		    0)
			failed(pl, x, "MISSING", NULL);
		else if (res->n_placed)
			placed(pl, &res->placements[0]);
		else
			failed(pl, x, res->ecs_reason, res->message);
		sched_result_free(res);
	}
}

static void place_run(struct placing *pl, struct sched_prepared *p, char **ids, size_t want)
{
	size_t done = 0, rounds = 0;
	while (done < want) {
		struct sched_result *res = NULL;
		if (sched_place(pl->snap, p, (const char *const *)ids + done, want - done, &res, NULL) < 0)
			break;
		for (size_t i = 0; i < res->n_placed; i++)
			placed(pl, &res->placements[i]);
		done += res->n_placed;
		if (done < want && res->n_victims && rounds++ < want && preempt(pl, res, ids[done]) == 0) {
			struct sched_result *on = NULL;
			if (sched_place_on(pl->snap, p, res->nominated_node, ids[done], &on, NULL) == 0 &&
			    on->n_placed) {
				placed(pl, &on->placements[0]);
				done++;
				sched_result_free(on);
				sched_result_free(res);
				continue;
			}
			sched_result_free(on);
		}
		for (; done < want; done++)
			failed(pl, NULL, res->ecs_reason ? res->ecs_reason : "RESOURCE:NODES", res->message);
		sched_result_free(res);
	}
}

/*
 * Whether placements may bind after releasing the scheduler lock. With SQLite
 * one server owns the store (server.lock), so every placement goes through
 * this process's scheduler cache, whose snapshot already holds the tentative
 * placements of binds still in flight: no placement token is needed, and
 * binds of concurrent RunTask calls share the store's group commit (one
 * fsync for a batch). Replicas sharing etcd compare the token's revision
 * instead, which requires binding under the lock.
 */
static bool bind_outside_lock(struct server *s)
{
	return streq(s->store->ops->name, "sqlite");
}

/* How stale (ms) the snapshot may be on a first attempt: see server_sched_cache_lock_fresh(). */
#define PLACE_FRESH_MS 10

/* One placement attempt: 1 done, 0 conflict (retry), -1 error. */
static int place_once(struct ecs_call *c, const char *cluster, json_t *cl, struct run_args *a,
		      struct strbuf *out_tasks, size_t *out_n, json_t *out_failures, bool first)
{
	_cleanup_free_ char *token_key = xasprintf("/berth/placement/%s", cluster);
	_cleanup_error_ struct berth_error *err = NULL;
	bool outside = bind_outside_lock(c->srv);
	int64_t tok_rev = 0;
	struct placing pl = { .c = c, .cluster = cluster, .cl = cl, .a = a };
	if (server_sched_cache_lock_fresh(c->srv, cluster, outside ? (first ? PLACE_FRESH_MS : 0) : INT_MAX,
					  &pl.snap, &err) < 0)
		return server_ecs_internal(c, err);
	if (!outside) {
		/*
		 * Under the lock (so this replica's placements never conflict with
		 * each other), the token first, then the events up to it: every
		 * placement after this read makes our comparison fail, every one
		 * before it is in the snapshot.
		 */
		struct store_kv tok = { 0 };
		tok_rev = store_get(c->srv->store, token_key, &tok, NULL) == 0 ? tok.mod_revision : 0;
		store_kv_done(&tok);
		int cr = server_sched_cache_catch_up(c->srv, &err);
		if (cr < 0) {
			server_sched_cache_unlock(c->srv);
			return cr == -ERANGE ? 0 : server_ecs_internal(c, err);
		}
	}
	if (sched_node_count(pl.snap) == 0) {
		server_sched_cache_unlock(c->srv);
		return server_ecs_fail(c, "InvalidParameterException",
				       "No Container Instances were found in your cluster.");
	}
	task_size(a, &pl.cpu, &pl.mem);
	struct sreq rq;
	struct sreq_input in = { a->td, a->constraints, a->strategies, a->group, pl.cpu, pl.mem };
	struct sched_prepared *p = NULL;
	if (server_sreq_build(&rq, &in) < 0 || server_sreq_prepare(&rq, pl.snap, &p) < 0) {
		server_sched_cache_unlock(c->srv);
		server_ecs_fail(c, "InvalidParameterException", "%s", rq.msg);
		server_sreq_done(&rq);
		return -1;
	}
	pl.rq = &rq;
	pl.tasks = (struct strbuf)STRBUF_INIT;
	pl.failures = json_array();
	size_t want = a->explicit_instances ? json_array_size(a->explicit_instances) : (size_t)a->count;
	char *ids[SCHED_MAX_COUNT];
	for (size_t i = 0; i < want; i++)
		ids[i] = server_task_id_new();
	if (a->explicit_instances)
		place_start(&pl, p, ids);
	else
		place_run(&pl, p, ids, want);
	sched_prepared_free(p);
	budget_bind(&pl);
	if (!outside) {
		bind_op(&pl.b, xstrdup(token_key), xstrdup("x"));
		bind_cmp(&pl.b, token_key, tok_rev ? STORE_CMP_MOD : STORE_CMP_CREATE, tok_rev);
	}
	bool ok = false, locked = true;
	int r = 0;
	if (pl.b.n_placed == 0 && !pl.b.preempted) {
		r = 1; /* nothing to bind: no write (the service controller retries failed placements) */
	} else {
		/*
		 * A preemption binds under the lock (they are rare): a later
		 * decision of this replica that uses the same budget must not
		 * reach the store first, or its comparison fails.
		 */
		if (outside && !pl.b.preempted) {
			server_sched_cache_unlock(c->srv);
			locked = false;
		}
		placed_records(&pl);
		if (store_txn(c->srv->store, pl.b.cmps, pl.b.n_cmps, pl.b.ops, pl.b.n_ops, &ok, NULL, &err) <
		    0)
			r = server_ecs_internal(c, err);
		else if (ok)
			r = 1;
	}
	if (r != 1) { /* not bound: take the tentative placements back */
		if (!locked && server_sched_cache_lock_fresh(c->srv, cluster, INT_MAX, &pl.snap, NULL) == 0)
			locked = true;
		for (size_t i = 0; locked && i < pl.b.n_placed; i++)
			(void)sched_task_remove(pl.snap, pl.b.placed[i], NULL);
		if (locked && pl.b.preempted)
			server_sched_cache_drop(c->srv, cluster);
	} else {
		if (pl.n_decided && *out_n)
			strbuf_addch(out_tasks, ',');
		strbuf_add(out_tasks, pl.tasks.buf, pl.tasks.len);
		*out_n += pl.n_decided;
		json_array_extend(out_failures, pl.failures);
	}
	if (locked)
		server_sched_cache_unlock(c->srv);
	server_sreq_done(&rq);
	bind_done(&pl.b);
	decided_done(&pl);
	strbuf_release(&pl.tasks);
	json_decref(pl.failures);
	for (size_t i = 0; i < want; i++)
		free(ids[i]);
	return r;
}

int server_task_place_text(struct ecs_call *c, const char *cluster, json_t *cl, struct task_run_args *a,
			   struct strbuf *tasks, size_t *n_tasks, json_t *failures)
{
	int r = 0;
	for (int attempt = 0; attempt < 50 && r == 0; attempt++)
		r = place_once(c, cluster, cl, a, tasks, n_tasks, failures, attempt == 0);
	if (r == 0)
		r = server_ecs_fail(c, "ServerException",
				    "placement kept conflicting with concurrent placements; retry");
	return r < 0 ? -1 : 0;
}

int server_task_place(struct ecs_call *c, const char *cluster, json_t *cl, struct task_run_args *a,
		      json_t *tasks, json_t *failures)
{
	struct strbuf sb = STRBUF_INIT;
	size_t n = 0;
	strbuf_addch(&sb, '[');
	int r = server_task_place_text(c, cluster, cl, a, &sb, &n, failures);
	strbuf_addch(&sb, ']');
	if (r == 0) {
		json_t *list = json_loadb(sb.buf, sb.len, 0, NULL);
		if (!list) /* (our own text) */
			abort();
		json_array_extend(tasks, list);
		json_decref(list);
	}
	strbuf_release(&sb);
	return r;
}

/* Every containerOverrides entry must name a container of the task definition (ECS's check). */
static int check_container_overrides(struct ecs_call *c, const json_t *td, const json_t *overrides)
{
	const json_t *list = json_object_get(overrides, "containerOverrides");
	if (list && !json_is_array(list))
		return server_ecs_fail(c, "SerializationException",
				       "overrides.containerOverrides must be a list.");
	size_t i, k;
	json_t *o, *d;
	json_array_foreach (list, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		bool found = false;
		json_array_foreach (json_object_get(td, "containerDefinitions"), k, d)
			found |= name && streq_ptr(json_string_value(json_object_get(d, "name")), name);
		if (!found)
			return server_ecs_fail(
			    c, "InvalidParameterException",
			    "Override for container named %s is not a container in the TaskDefinition.",
			    name ? name : "(none)");
	}
	return 0;
}

static int run_common(struct ecs_call *c, json_t *in, bool start, json_t **out)
{
	const char *ref, *tdref, *group, *started_by, *launch;
	struct run_args a = { .count = 1 };
	_cleanup_free_ char *cluster = NULL;
	json_t *cl = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "taskDefinition", true, &tdref) < 0 ||
	    server_ecs_str(c, in, "group", false, &group) < 0 ||
	    server_ecs_str(c, in, "startedBy", false, &started_by) < 0 ||
	    server_ecs_str(c, in, "launchType", false, &launch) < 0 ||
	    server_ecs_int(c, in, "count", 1, TASKS_MAX_COUNT, &a.count) < 0)
		return -1;
	if (start && (server_ecs_strv(c, in, "containerInstances", &a.explicit_instances) < 0))
		return -1;
	if (start &&
	    (json_array_size(a.explicit_instances) == 0 || json_array_size(a.explicit_instances) > 10))
		return server_ecs_fail(c, "InvalidParameterException",
				       "containerInstances must have 1 to 10 items.");
	if (launch && !streq(launch, "EC2") && !streq(launch, "EXTERNAL"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "launchType '%s' is not supported (EC2).", launch);
	if (started_by && strlen(started_by) > 128)
		return server_ecs_fail(c, "InvalidParameterException",
				       "startedBy can be at most 128 characters.");
	if (group && (!*group || strlen(group) > 255))
		return server_ecs_fail(c, "InvalidParameterException",
				       "group must have 1 to 255 characters.");
	a.overrides = json_object_get(in, "overrides");
	a.constraints = json_object_get(in, "placementConstraints");
	a.strategies = json_object_get(in, "placementStrategy");
	a.tags = json_object_get(in, "tags");
	if ((a.overrides && !json_is_object(a.overrides)) ||
	    (a.constraints && !json_is_array(a.constraints)) ||
	    (a.strategies && !json_is_array(a.strategies)) || (a.tags && !json_is_array(a.tags)))
		return server_ecs_fail(
		    c, "SerializationException",
		    "overrides must be an object; placementConstraints, placementStrategy and tags lists.");
	if (a.tags && server_tags_check(c, a.tags) < 0)
		return -1;
	const char *propagate;
	if (server_ecs_str(c, in, "propagateTags", false, &propagate) < 0)
		return -1;
	if (streq_ptr(propagate, "SERVICE"))
		return server_ecs_fail(c, "InvalidParameterException",
				       "propagateTags SERVICE is only valid for a service's tasks.");
	/* (both read only here: shared with other calls while nobody writes them) */
	if (server_cluster_resolve_shared(c, ref, &cl, &cluster) < 0)
		return -1;
	if (server_taskdef_resolve_shared(c, tdref, &a.td) < 0) {
		json_decref(cl);
		return -1;
	}
	if (server_taskdef_check_launchable(c, a.td) < 0 ||
	    server_taskdef_check_network_config(c, a.td, in) < 0) {
		json_decref(a.td);
		json_decref(cl);
		return -1;
	}
	if (check_container_overrides(c, a.td, a.overrides) < 0) {
		json_decref(a.td);
		json_decref(cl);
		return -1;
	}
	_cleanup_free_ char *def_group =
	    xasprintf("family:%s", json_string_value(json_object_get(a.td, "family")));
	a.group = group ? group : def_group;
	a.started_by = started_by;
	json_t *ov = a.overrides ? json_deep_copy(a.overrides) : json_object();
	if (!json_object_get(ov, "containerOverrides"))
		json_object_set_new(ov, "containerOverrides", json_array());
	if (!json_object_get(ov, "inferenceAcceleratorOverrides"))
		json_object_set_new(ov, "inferenceAcceleratorOverrides", json_array());
	a.overrides = ov;
	_cleanup_json_ json_t *tags =
	    server_task_tags(c->srv, cluster, a.tags, a.td, NULL, propagate,
			     json_is_true(json_object_get(in, "enableECSManagedTags")));
	a.tags = json_array_size(tags) ? tags : NULL;
	json_t *failures = json_array();
	struct strbuf body = STRBUF_INIT;
	size_t n = 0;
	strbuf_addstr(&body, "{\"tasks\":[");
	int r = server_task_place_text(c, cluster, cl, &a, &body, &n, failures);
	json_decref(ov);
	json_decref(a.td);
	json_decref(cl);
	if (r < 0) {
		strbuf_release(&body);
		json_decref(failures);
		return -1;
	}
	/* the records as written, not parsed back into a tree to be dumped again */
	_cleanup_free_ char *f = json_dumps(failures, JSON_COMPACT);
	json_decref(failures);
	strbuf_addstr(&body, "],\"failures\":");
	strbuf_addstr(&body, f);
	strbuf_addch(&body, '}');
	free(c->body);
	c->body = strbuf_detach(&body, NULL);
	c->n_tasks = n;
	*out = NULL;
	return 0;
}

/*
 * BerthExplainPlacement (berth's own operation, docs/cluster.md): why a task
 * definition can or cannot go on one container instance, with the same
 * request RunTask would build (group, placementConstraints and
 * placementStrategy may be given). Nothing is placed.
 */
int server_ecs_berth_explain_placement(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *tdref, *iref, *group;
	struct run_args a = { 0 };
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "taskDefinition", true, &tdref) < 0 ||
	    server_ecs_str(c, in, "containerInstance", true, &iref) < 0 ||
	    server_ecs_str(c, in, "group", false, &group) < 0)
		return -1;
	a.overrides = json_object_get(in, "overrides");
	a.constraints = json_object_get(in, "placementConstraints");
	a.strategies = json_object_get(in, "placementStrategy");
	if ((a.overrides && !json_is_object(a.overrides)) ||
	    (a.constraints && !json_is_array(a.constraints)) ||
	    (a.strategies && !json_is_array(a.strategies)))
		return server_ecs_fail(
		    c, "SerializationException",
		    "overrides must be an object; placementConstraints and placementStrategy lists.");
	if (server_cluster_resolve(c, ref, NULL, &cluster) < 0 || server_taskdef_resolve(c, tdref, &a.td) < 0)
		return -1;
	if (server_taskdef_check_launchable(c, a.td) < 0 ||
	    server_taskdef_check_network_config(c, a.td, in) < 0) {
		json_decref(a.td);
		return -1;
	}
	_cleanup_free_ char *def_group =
	    xasprintf("family:%s", json_string_value(json_object_get(a.td, "family")));
	int64_t cpu, mem;
	task_size(&a, &cpu, &mem);
	struct sreq rq = { 0 };
	struct sreq_input si = { a.td, a.constraints, a.strategies, group ? group : def_group, cpu, mem };
	struct sched_snapshot *snap = NULL;
	struct sched_prepared *p = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *text = NULL;
	bool feasible = false;
	int r = 0;
	if (server_sched_cache_lock(c->srv, cluster, &snap, &err) < 0) {
		server_sreq_done(&rq);
		json_decref(a.td);
		return server_ecs_internal(c, err);
	}
	if (server_sreq_build(&rq, &si) < 0 || server_sreq_prepare(&rq, snap, &p) < 0)
		r = server_ecs_fail(c, "InvalidParameterException", "%s", rq.msg);
	else if (sched_explain_node(snap, p, server_arn_tail(iref), &feasible, &text, NULL) < 0)
		r = server_ecs_fail(c, "InvalidParameterException", "Container instance '%s' not found.",
				    iref);
	server_sched_cache_unlock(c->srv);
	sched_prepared_free(p);
	server_sreq_done(&rq);
	if (r == 0) {
		_cleanup_free_ char *tail = xasprintf("%s/%s", cluster, server_arn_tail(iref));
		_cleanup_free_ char *arn = server_arn_make(c->srv, "container-instance", tail);
		*out = json_pack("{s:s,s:O,s:b,s:s}", "containerInstanceArn", arn, "taskDefinitionArn",
				 json_object_get(a.td, "taskDefinitionArn"), "feasible", feasible,
				 "explanation", text);
	}
	json_decref(a.td);
	return r;
}

int server_ecs_run_task(struct ecs_call *c, json_t *in, json_t **out)
{
	return run_common(c, in, false, out);
}

int server_ecs_start_task(struct ecs_call *c, json_t *in, json_t **out)
{
	return run_common(c, in, true, out);
}

static char *task_key(const char *cluster, const char *ref)
{
	const char *id = server_arn_tail(ref);
	return server_name_valid(id, 64) ? xasprintf("/berth/tasks/%s/%s", cluster, id) : NULL;
}

int server_task_request_stop(struct server *s, const char *key, const char *code, const char *reason,
			     json_t **ret_task, struct berth_error **err)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *t = NULL;
		int64_t rev;
		if (server_record_get(s, key, &t, &rev, NULL) < 0)
			return -ENOENT;
		if (streq_ptr(json_string_value(json_object_get(t, "desiredStatus")), "STOPPED")) {
			if (ret_task)
				*ret_task = t;
			else
				json_decref(t);
			return 0;
		}
		json_object_set_new(t, "desiredStatus", json_string("STOPPED"));
		json_object_set_new(t, "stopCode", json_string(code));
		json_object_set_new(t, "stoppedReason", json_string(reason));
		json_object_set_new(t, "stoppingAt", json_real(server_record_now()));
		json_object_set_new(t, "version",
				    json_integer(json_integer_value(json_object_get(t, "version")) + 1));
		bool ok = false;
		if (server_record_cas(s, key, t, rev, &ok, err) < 0) {
			json_decref(t);
			return -EIO;
		}
		if (ok) {
			if (ret_task)
				*ret_task = t;
			else
				json_decref(t);
			return 1;
		}
		json_decref(t);
	}
	return berth_error_msg(err, EAGAIN, "task '%s' changed concurrently; retry", key);
}

int server_ecs_stop_task(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *tref, *reason;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "task", true, &tref) < 0 ||
	    server_ecs_str(c, in, "reason", false, &reason) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (reason && strlen(reason) > 255)
		return server_ecs_fail(c, "InvalidParameterException",
				       "reason can be at most 255 characters.");
	_cleanup_free_ char *key = task_key(cluster, tref);
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *t = NULL;
	int r = key ? server_task_request_stop(c->srv, key, "UserInitiated",
					       reason ? reason : "Task stopped by user", &t, &err)
		    : -ENOENT;
	if (r == -ENOENT)
		return server_ecs_fail(c, "InvalidParameterException", "The referenced task was not found.");
	if (r == -EAGAIN)
		return server_ecs_fail(c, "ServerException", "task changed concurrently; retry");
	if (r < 0)
		return server_ecs_internal(c, err);
	*out = json_pack("{s:o}", "task", t);
	return 0;
}

int server_ecs_describe_tasks(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	json_t *refs;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 || server_ecs_strv(c, in, "tasks", &refs) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!refs || json_array_size(refs) == 0 || json_array_size(refs) > 100)
		return server_ecs_fail(c, "InvalidParameterException", "tasks must have 1 to 100 items.");
	json_t *list = json_array(), *failures = json_array();
	size_t i;
	json_t *x;
	json_array_foreach (refs, i, x) {
		_cleanup_free_ char *key = task_key(cluster, json_string_value(x));
		json_t *t = NULL;
		if (key && server_record_get(c->srv, key, &t, NULL, NULL) == 0)
			json_array_append_new(list, t);
		else
			json_array_append_new(failures,
					      json_pack("{s:O,s:s}", "arn", x, "reason", "MISSING"));
	}
	*out = json_pack("{s:o,s:o}", "tasks", list, "failures", failures);
	return 0;
}

int server_ecs_list_tasks(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *inst, *family, *started_by, *service, *desired, *launch;
	_cleanup_free_ char *cluster = NULL;
	if (server_ecs_str(c, in, "cluster", false, &ref) < 0 ||
	    server_ecs_str(c, in, "containerInstance", false, &inst) < 0 ||
	    server_ecs_str(c, in, "family", false, &family) < 0 ||
	    server_ecs_str(c, in, "startedBy", false, &started_by) < 0 ||
	    server_ecs_str(c, in, "serviceName", false, &service) < 0 ||
	    server_ecs_str(c, in, "desiredStatus", false, &desired) < 0 ||
	    server_ecs_str(c, in, "launchType", false, &launch) < 0 ||
	    server_cluster_resolve(c, ref, NULL, &cluster) < 0)
		return -1;
	if (!desired)
		desired = "RUNNING";
	if (!streq(desired, "RUNNING") && !streq(desired, "PENDING") && !streq(desired, "STOPPED"))
		return server_ecs_fail(c, "InvalidParameterException", "Invalid desiredStatus '%s'.",
				       desired);
	if (family && startswith(family, "arn:"))
		return server_ecs_fail(c, "InvalidParameterException", "family must be a family name.");
	_cleanup_error_ struct berth_error *err = NULL;
	if (service) { /* ECS: a service that does not exist (INACTIVE ones do, until retention) */
		_cleanup_free_ char *skey = server_service_key(cluster, server_arn_tail(service));
		json_t *svc = NULL;
		int r = server_name_valid(server_arn_tail(service), 255)
			    ? server_record_get(c->srv, skey, &svc, NULL, &err)
			    : -ENOENT;
		json_decref(svc);
		if (r == -ENOENT)
			return server_ecs_fail(c, "ServiceNotFoundException", "Service not found.");
		if (r < 0)
			return server_ecs_internal(c, err);
	}
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	json_t *tasks = NULL;
	if (server_record_list(c->srv, tp, &tasks, &err) < 0)
		return server_ecs_internal(c, err);
	_cleanup_free_ char *fam_group = family ? xasprintf(":task-definition/%s:", family) : NULL;
	_cleanup_free_ char *service_group =
	    service ? xasprintf("service:%s", server_arn_tail(service)) : NULL;
	json_t *arns = json_array();
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *cia = json_string_value(json_object_get(t, "containerInstanceArn"));
		const char *tda = json_string_value(json_object_get(t, "taskDefinitionArn"));
		if (!streq_ptr(json_string_value(json_object_get(t, "desiredStatus")), desired) ||
		    (inst && !streq(server_arn_tail(cia ? cia : ""), server_arn_tail(inst))) ||
		    (family && !strstr(tda ? tda : "", fam_group)) ||
		    (started_by &&
		     !streq_ptr(json_string_value(json_object_get(t, "startedBy")), started_by)) ||
		    (service_group &&
		     !streq_ptr(json_string_value(json_object_get(t, "group")), service_group)) ||
		    (launch && !streq_ptr(json_string_value(json_object_get(t, "launchType")), launch)))
			continue;
		json_array_append(arns, json_object_get(t, "taskArn"));
	}
	json_decref(tasks);
	/* record keys are cluster/id, so ARNs come sorted already */
	*out = json_object();
	int r = server_ecs_paginate(c, in, arns, 100, "taskArns", *out);
	json_decref(arns);
	return r;
}
