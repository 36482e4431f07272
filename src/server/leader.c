/*
 * leader.c - leader election and the controllers only the leader runs.
 *
 * Election: put /berth/leader = our id, bound to a lease of leader_ttl
 * seconds, only if the key does not exist (compare create revision 0); keep
 * the lease alive every second. A leader that dies stops keeping it alive, so
 * the key vanishes within leader_ttl seconds and the others, who wait on a
 * watch of that key, campaign at once. With SQLite there is one server and it
 * wins at start; the code path is the same.
 *
 * Controllers (on the leader, after every store change and at least every
 * second): services (deploy.c) and node liveness; once a second: NoExecute
 * evictions (sched-evict.c) and the services' rebalancer (rebalance.c); the
 * retention sweep (retention.c) every server_retention_sweep_interval(). A container
 * instance whose alive key (the agent's lease, agent.c) is gone gets disconnectedAt;
 * once that is older than the lost-node timeout its tasks are STOPPED with
 * "node lost". The timestamps live in the store, so a new leader continues
 * where the old one left off.
 */
#include <time.h>

#include "common/log.h"
#include "common/process.h"
#include "server/internal.h"
#include "server/retention.h"

#define LEADER_KEY   "/berth/leader"
#define ALIVE_PREFIX "/berth/alive/"

static pthread_t leader_thread;
static bool leader_started;

static void lost_node_tasks(struct server *s, const char *cluster, const char *arn)
{
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	json_t *tasks = NULL;
	if (server_record_list(s, tp, &tasks, NULL) < 0)
		return;
	size_t i;
	json_t *t;
	_cleanup_free_ char *why =
	    xasprintf("Task stopped: node lost (no heartbeat for %d s)", s->lost_node_timeout);
	json_array_foreach (tasks, i, t) {
		if (!server_task_active(t) ||
		    !streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn))
			continue;
		_cleanup_free_ char *key =
		    xasprintf("/berth/tasks/%s/%s", cluster,
			      server_arn_tail(json_string_value(json_object_get(t, "taskArn"))));
		if (server_task_stop_now(s, key, t, "TerminationNotice", why, NULL) == 0)
			log_fields(LOG_LEVEL_INFO, "task stopped: node lost", "task",
				   json_string_value(json_object_get(t, "taskArn")), NULL);
	}
	json_decref(tasks);
}

static int alive_cmp(const void *key, const void *elem)
{
	const struct store_kv *kv = elem;
	return strcmp(key, kv->key + strlen(ALIVE_PREFIX));
}

/*
 * Every instance whose alive key is gone gets disconnectedAt, and its tasks
 * are stopped once that is older than the lost-node timeout. Runs every
 * second over every instance: the alive keys are read first (one range) and
 * the instances that have one are passed over without parsing their records,
 * so a cluster of 1,000 connected nodes costs two range reads, not 1,000 JSON
 * parses and lookups. The others are checked one by one as before.
 */
static void check_nodes(struct server *s)
{
	struct store_kv_list alive = { 0 }, raw = { 0 };
	if (store_range(s->store, ALIVE_PREFIX, NULL, 0, &alive, NULL) < 0)
		return;
	if (store_range(s->store, "/berth/instances/", NULL, 0, &raw, NULL) < 0) {
		store_kv_list_done(&alive);
		return;
	}
	json_t *insts = json_array();
	for (size_t k = 0; k < raw.n; k++) {
		const char *slash = strrchr(raw.kvs[k].key, '/');
		if (slash && alive.n && bsearch(slash + 1, alive.kvs, alive.n, sizeof(*alive.kvs), alive_cmp))
			continue; /* connected (keys are in byte order) */
		json_t *j = json_loadb(raw.kvs[k].value, raw.kvs[k].value_len, 0, NULL);
		if (j)
			json_array_append_new(insts, j);
	}
	store_kv_list_done(&raw);
	store_kv_list_done(&alive);
	double now = server_record_now();
	size_t i;
	json_t *inst;
	json_array_foreach (insts, i, inst) {
		const char *id = json_string_value(json_object_get(inst, "nodeId"));
		const char *cluster = json_string_value(json_object_get(inst, "clusterName"));
		if (!id || !cluster ||
		    streq_ptr(json_string_value(json_object_get(inst, "status")), "INACTIVE"))
			continue;
		bool connected = server_instance_connected(s, id);
		json_t *since = json_object_get(inst, "disconnectedAt");
		_cleanup_free_ char *key = xasprintf("/berth/instances/%s/%s", cluster, id);
		if (connected || (since && now - json_real_value(since) < s->lost_node_timeout))
			continue;
		if (!since) {
			json_object_set_new(inst, "disconnectedAt", json_real(now));
			(void)server_record_put(s, key, inst, NULL);
			continue;
		}
		lost_node_tasks(s, cluster, json_string_value(json_object_get(inst, "containerInstanceArn")));
	}
	json_decref(insts);
}

static bool campaign(struct server *s, int64_t *lease)
{
	if (store_lease_grant(s->store, s->leader_ttl, lease, NULL) < 0)
		return false;
	struct store_cmp cmp = { LEADER_KEY, STORE_CMP_CREATE, STORE_CMP_EQUAL, 0 };
	struct store_op op = { STORE_OP_PUT, LEADER_KEY, s->id, strlen(s->id), *lease };
	bool ok = false;
	if (store_txn(s->store, &cmp, 1, &op, 1, &ok, NULL, NULL) < 0 || !ok) {
		(void)store_lease_revoke(s->store, *lease, NULL);
		return false;
	}
	return true;
}

static void set_leader(struct server *s, bool v)
{
	pthread_mutex_lock(&s->lock);
	if (s->leader != v)
		log_fields(LOG_LEVEL_INFO, v ? "became leader" : "lost leadership", "id", s->id, NULL);
	s->leader = v;
	pthread_mutex_unlock(&s->lock);
}

/* Wait up to ms for stop; true when stopping. */
static bool wait_stop(struct server *s, int ms)
{
	struct timespec ts = proc_deadline(CLOCK_MONOTONIC, ms); /* stop_cond is monotonic */
	pthread_mutex_lock(&s->lock);
	if (!s->stopping)
		pthread_cond_timedwait(&s->stop_cond, &s->lock, &ts);
	bool stop = s->stopping;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/*
 * Wait up to ms for a change in the store (any key under /berth/ after
 * *seen) so the controllers react at once to task reports and API writes;
 * true when stopping. Changes come in bursts (an agent's report, a
 * placement): a short pause lets one pass handle a burst.
 */
static bool wait_change(struct server *s, int64_t *seen, int ms)
{
	if (ms < 10)
		ms = 10;
	struct store_event_list ev = { 0 };
	if (*seen == 0 && store_revision(s->store, seen, NULL) < 0)
		return wait_stop(s, ms);
	int r = store_watch(s->store, "/berth/", *seen + 1, ms, &ev, NULL);
	if (r < 0) {
		*seen = 0; /* compacted or failed: start from the current revision */
		return wait_stop(s, ms);
	}
	bool any = ev.n > 0;
	if (ev.revision > *seen)
		*seen = ev.revision;
	store_event_list_done(&ev);
	return wait_stop(s, any ? 20 : 0);
}

static void *leader_main(void *arg)
{
	struct server *s = arg;
	int64_t lease = 0, seen = 0, kept = proc_now_ms(), swept = 0;
	bool leading = false, tick = true;
	while (!s->stopping) {
		if (!leading) {
			leading = campaign(s, &lease);
			set_leader(s, leading);
			if (!leading) {
				/* wait for the leader key to change (its lease expiring), a second at most */
				int64_t rev = 0;
				struct store_event_list ev;
				if (store_revision(s->store, &rev, NULL) == 0 &&
				    store_watch(s->store, LEADER_KEY, rev + 1, 1000, &ev, NULL) == 0)
					store_event_list_done(&ev);
				else
					wait_stop(s, 1000);
				continue;
			}
		}
		/* node liveness once a second (it reads every instance: heavy with many nodes); the
		 * services after every change */
		bool ticked = tick;
		if (tick) {
			check_nodes(s);
			server_autoscale_tick(s);
			server_sched_evict_tick(s);
			if (proc_now_ms() - swept >=
			    server_retention_sweep_interval(s->task_retention) * 1000LL) {
				server_retention_sweep(s);
				swept = proc_now_ms();
			}
			tick = false;
		}
		server_deploy_run(s, ticked); /* on a tick also the rebalancer and disruption budgets */
		if (wait_change(s, &seen, 1000 - (int)(proc_now_ms() - kept)))
			break;
		if (proc_now_ms() - kept < 1000)
			continue;
		kept = proc_now_ms();
		tick = true;
		int64_t ttl;
		if (store_lease_keepalive(s->store, lease, &ttl, NULL) < 0) {
			leading = false;
			set_leader(s, false);
		}
	}
	if (leading)
		(void)store_lease_revoke(s->store, lease, NULL); /* hand over at once on a clean stop */
	return NULL;
}

int server_leader_start(struct server *s, struct berth_error **err)
{
	if (pthread_create(&leader_thread, NULL, leader_main, s) != 0)
		return berth_error_set(err, EAGAIN, "start leader election thread");
	leader_started = true;
	return 0;
}

void server_leader_stop(struct server *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->stop_cond);
	pthread_mutex_unlock(&s->lock);
	if (leader_started)
		pthread_join(leader_thread, NULL);
	leader_started = false;
}
