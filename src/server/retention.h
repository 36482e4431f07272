/*
 * retention.h - how long finished records stay: STOPPED tasks and INACTIVE
 * services are kept `--task-retention` seconds (default 3600, as ECS keeps a
 * stopped task visible for at least an hour) after they finished, then the
 * leader deletes them. Without it every task a service ever started stays in
 * the store and every controller pass and dataplane answer lists it.
 *
 * The predicates are pure (server-core, tests/unit/test-server-retention.c);
 * server_retention_sweep() is the leader's I/O half (retention.c).
 */
#ifndef BERTH_SERVER_RETENTION_H
#define BERTH_SERVER_RETENTION_H

#include <jansson.h>
#include <stdbool.h>

#define RETENTION_DEFAULT_SEC 3600
/* At most this many records are deleted per sweep (a backlog is worked off over several sweeps). */
#define RETENTION_SWEEP_MAX   256

/* When the task finished: stoppedAt, else executionStoppedAt, else stoppingAt, else createdAt; 0 if none. */
double server_retention_task_finished_at(const json_t *task);
/* A task record to delete: lastStatus and desiredStatus STOPPED, finished at least retention s before now. */
bool server_retention_task_expired(const json_t *task, double now, int retention);
/* A service record to delete: status INACTIVE since (berthInactiveAt) at least retention s before now. */
bool server_retention_service_expired(const json_t *svc, double now, int retention);
/* Seconds between sweeps: a quarter of the retention, 1 to 60. */
int server_retention_sweep_interval(int retention);

struct server;
/* Delete what expired (compare-and-delete on each record's revision, with its tags); the leader's tick. */
void server_retention_sweep(struct server *s);

#endif
