/*
 * retention.c - the leader deletes STOPPED tasks and INACTIVE services once
 * they are older than --task-retention (retention.h). Each delete compares
 * the record's revision, so a record changed since the range (a late agent
 * report, a service re-created under the same name) is left for the next
 * sweep; the task's or service's tags go with it.
 */
#include "common/log.h"
#include "server/internal.h"
#include "server/retention.h"

/* Delete key at exactly mod_revision, and its ARN's tags; true when deleted. */
static bool delete_at(struct server *s, const char *key, int64_t rev, const char *arn)
{
	_cleanup_free_ char *tags = arn ? xasprintf("/berth/tags/%s", arn) : NULL;
	struct store_cmp cmp = { key, STORE_CMP_MOD, STORE_CMP_EQUAL, rev, NULL, 0 };
	struct store_op ops[2] = { { STORE_OP_DELETE, key, NULL, 0, 0 },
				   { STORE_OP_DELETE, tags, NULL, 0, 0 } };
	bool ok = false;
	_cleanup_error_ struct berth_error *err = NULL;
	if (store_txn(s->store, &cmp, 1, ops, tags ? 2 : 1, &ok, NULL, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		log_fields(LOG_LEVEL_WARN, "retention: delete failed", "key", key, "error", m, NULL);
		return false;
	}
	return ok;
}

/* One pass over prefix; returns how many records were deleted (at most budget). */
static size_t sweep_prefix(struct server *s, const char *prefix, bool tasks, double now, size_t budget)
{
	size_t deleted = 0;
	_cleanup_free_ char *after = NULL;
	for (bool more = true; more && deleted < budget;) {
		struct store_kv_list l = { 0 };
		if (store_range(s->store, prefix, after, 1000, &l, NULL) < 0)
			break;
		more = l.more && l.n > 0;
		for (size_t i = 0; i < l.n && deleted < budget; i++) {
			json_t *v = json_loadb(l.kvs[i].value, l.kvs[i].value_len, 0, NULL);
			bool expired =
			    v && (tasks ? server_retention_task_expired(v, now, s->task_retention)
					: server_retention_service_expired(v, now, s->task_retention));
			const char *arn =
			    json_string_value(json_object_get(v, tasks ? "taskArn" : "serviceArn"));
			if (expired && delete_at(s, l.kvs[i].key, l.kvs[i].mod_revision, arn))
				deleted++;
			json_decref(v);
		}
		if (l.n) {
			free(after);
			after = xstrdup(l.kvs[l.n - 1].key);
		}
		store_kv_list_done(&l);
	}
	return deleted;
}

void server_retention_sweep(struct server *s)
{
	double now = server_record_now();
	size_t tasks = sweep_prefix(s, "/berth/tasks/", true, now, RETENTION_SWEEP_MAX);
	size_t svcs = sweep_prefix(s, "/berth/services/", false, now, RETENTION_SWEEP_MAX);
	if (tasks || svcs) {
		char a[24], b[24];
		snprintf(a, sizeof(a), "%zu", tasks);
		snprintf(b, sizeof(b), "%zu", svcs);
		log_fields(LOG_LEVEL_INFO, "retention: deleted expired records", "tasks", a, "services", b,
			   NULL);
	}
}
