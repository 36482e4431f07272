/*
 * logship.h - the agent's awslogs driver: ships the output of task
 * containers whose definition says `logConfiguration.logDriver: awslogs` to
 * the server's logs API (POST /agent/v1/logs), one stream per container
 * named AWSLOGS-STREAM-PREFIX/CONTAINER/TASK-ID as ECS names them.
 *
 * The engine keeps writing the container's json-file log (so `docker logs`
 * on the node works); the shipper tails that file and is its own disk
 * buffer: its state per container (DIR/KEY.json: group, stream, the byte
 * offset the server acknowledged) is written after every accepted batch
 * (flushed at most once a second: a lost update only resends batches the
 * server drops), and
 * before the runner removes a container its log is hard-linked to DIR/KEY.log,
 * so nothing is lost while the server is unreachable, across agent restarts
 * or after the task is gone. Every event carries its byte offset and the
 * server appends only what lies past the stream's last acknowledged offset
 * (logs_append_from), so a batch resent after a crash is never duplicated.
 * Order is the file's order.
 *
 * One thread ships every stream, a batch (at most 1 MiB / 10,000 events) per
 * stream in turn; it waits on inotify for the files to grow.
 */
#ifndef BERTH_AGENT_LOGSHIP_H
#define BERTH_AGENT_LOGSHIP_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

struct logship;

/*
 * Send one batch (from shipper thread `thread`): POST /agent/v1/logs with body (len bytes, Content-Type
 * LOGS_WIRE_TYPE, logs/wire.h); *ret the answer object ({"token"}). -ENOENT
 * when the group does not exist (and the batch did not ask to create it),
 * other negative values for a failure worth retrying.
 */
typedef int (*logship_send_fn)(void *userdata, unsigned thread, const char *body, size_t len, json_t **ret,
			       struct berth_error **err);
/* The shipper's threads: send is called from each with its index (0..LOGSHIP_THREADS-1), concurrently,
 * so each needs its own connection. */
#define LOGSHIP_THREADS 2

struct logship_config {
	const char *dir; /* required: state and kept logs */
	logship_send_fn send;
	void *userdata;
};

/* Load the states in dir and start the thread. */
int agent_logship_open(const struct logship_config *cfg, struct logship **ret, struct berth_error **err);
/* Stop the thread (states stay for the next open) and free. Accepts NULL. */
struct logship *agent_logship_close(struct logship *l);

/*
 * Ship a container's log if its definition (ECS containerDefinition) asks
 * for awslogs: log_path is the engine's json-file log of the container.
 * Idempotent; 0 also when the container does not use awslogs; -EINVAL for
 * awslogs without awslogs-group.
 */
int agent_logship_watch(struct logship *l, const char *task_id, const json_t *container_def,
			const char *engine_id, const char *log_path, struct berth_error **err);
/*
 * The container is about to be removed: keep its log (a hard link under
 * dir) until everything in it is shipped; then the state and the link go.
 */
int agent_logship_seal(struct logship *l, const char *task_id, const json_t *container_def,
		       const char *engine_id, const char *log_path, struct berth_error **err);

/* The stream name for a container: PREFIX/NAME/TASK-ID, or the engine id without a prefix. New string. */
char *agent_logship_stream_name(const char *prefix, const char *container, const char *task_id,
				const char *engine_id);

/* `berth bench-logs` (logs-bench.c; bench/logs.sh). */
int agent_logs_bench_main(int argc, char **argv);

#endif
