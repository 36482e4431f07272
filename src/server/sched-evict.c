/*
 * sched-evict.c - NoExecute taints on the leader (Kubernetes' taint manager):
 * once a second, every task on a node with a NoExecute taint it does not
 * tolerate is stopped; one that tolerates it for tolerationSeconds is stopped
 * that long after the taint was added (the instance record keeps when:
 * taints[].addedAt for `berth agent --taint`, taintAddedAt for
 * `berth node taint` / PutAttributes `berth:taint:KEY`).
 *
 * The scheduler snapshot (sched-cache.c) already knows every node's taints
 * and every task's tolerations, so the check is sched_noexecute_evictions()
 * under the cache lock; the stops are ordinary desiredStatus STOPPED writes
 * (stopCode TerminationNotice, stoppedReason naming the taint), made after
 * the lock is released. A service's task is then replaced by the service
 * controller like any stopped task, on a node the taint does not exclude; a
 * RunTask task stays stopped. Nothing is kept in memory: a new leader
 * recomputes the same deadlines from the records.
 */
#include "common/log.h"
#include "common/json.h"
#include "server/internal.h"

#define EVICT_STOP_CODE "TerminationNotice"

static void evict_cluster(struct server *s, const char *cluster, int64_t now)
{
	struct sched_snapshot *snap = NULL;
	struct sched_eviction *ev = NULL;
	size_t n = 0;
	if (server_sched_cache_lock(s, cluster, &snap, NULL) < 0)
		return;
	int r = sched_noexecute_evictions(snap, NULL, now, &ev, &n, NULL);
	server_sched_cache_unlock(s);
	if (r < 0)
		return;
	for (size_t i = 0; i < n && ev[i].evict_at <= now; i++) {
		_cleanup_free_ char *key = xasprintf("/berth/tasks/%s/%s", cluster, ev[i].task_id);
		_cleanup_free_ char *why =
		    ev[i].tolerated < 0 ? xasprintf("Task evicted: node taint %s not tolerated", ev[i].taint)
					: xasprintf("Task evicted: node taint %s tolerated for %lld s",
						    ev[i].taint, (long long)ev[i].tolerated);
		if (server_task_request_stop(s, key, EVICT_STOP_CODE, why, NULL, NULL) == 1)
			log_fields(LOG_LEVEL_INFO, "task evicted", "task", ev[i].task_id, "node",
				   ev[i].node_id, "taint", ev[i].taint, NULL);
	}
	sched_evictions_free(ev, n);
}

void server_sched_evict_tick(struct server *s)
{
	_cleanup_json_ json_t *clusters = NULL;
	if (server_record_list(s, "/berth/clusters/", &clusters, NULL) < 0)
		return;
	int64_t now = (int64_t)server_record_now();
	size_t i;
	json_t *cl;
	json_array_foreach (clusters, i, cl) {
		const char *name = json_string_value(json_object_get(cl, "clusterName"));
		if (name && streq_ptr(json_string_value(json_object_get(cl, "status")), "ACTIVE"))
			evict_cluster(s, name, now);
	}
}
