/*
 * series.h - the server's in-memory metrics: the latest samples of every
 * task (as agents report them) and, per service and per cluster, a short
 * history of fixed-length periods (CloudWatch's datapoints; 60 s by
 * default) holding Container Insights' CPUUtilization and
 * MemoryUtilization (% of the tasks' reservations) and load balancer
 * request counts. Nothing is persisted: a restarted server starts empty and
 * fills again within one agent interval (docs/metrics.md).
 *
 * Utilization, as ECS computes it for a service: the CPU the tasks used
 * over a period divided by the CPU they reserve (task-level `cpu` in units of
 * 1/1024 vCPU; a task without one counts as 1024), and the memory they use
 * divided by the memory they reserve (task `memory` in MiB; without one,
 * the task cgroup's limit). Sums over the tasks' samples, so a task sampled
 * twice in a period weighs twice in both.
 *
 * Thread safety: every call takes the store's own lock.
 */
#ifndef BERTH_METRICS_SERIES_H
#define BERTH_METRICS_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/strbuf.h"

#define METRICS_DEFAULT_PERIOD  60
#define METRICS_DEFAULT_HISTORY 30 /* periods kept: 30 minutes at the default period */

/* What a task is, from its record (copied by the store). */
struct metrics_task_meta {
	const char *cluster, *service; /* service: "" for a task outside a service */
	const char *family, *node;     /* task definition family; container instance id */
	int64_t cpu_units;             /* reserved CPU (1024 = 1 vCPU); 0: none */
	int64_t memory_mib;            /* reserved memory; 0: none */
};

/* One reading of a task's cgroup and network namespace (counters are cumulative). */
struct metrics_sample {
	double time; /* epoch seconds when it was read */
	uint64_t cpu_ns, mem_bytes, mem_limit;
	uint64_t rx_bytes, tx_bytes, read_bytes, write_bytes;
};

/*
 * A sample in the agent protocol's shape (POST /agent/v1/metrics):
 * {"time", "cpuNs", "memoryBytes", "memoryLimitBytes", "rxBytes", "txBytes",
 * "readBytes", "writeBytes"}; the caller adds "taskArn".
 */
json_t *metrics_sample_json(const struct metrics_sample *s);
/* Parse it; -EINVAL when a field is missing, negative or of the wrong type. */
int metrics_sample_parse(const json_t *j, struct metrics_sample *ret);

/* A task as the store sees it; valid inside the callback only. */
struct metrics_task_view {
	const char *arn, *id;
	const struct metrics_task_meta *meta;
	struct metrics_sample last;
	double cpu_pct; /* of its reservation over its last two samples; -1 before the second */
	double mem_pct; /* of its reservation; -1 when it has none and no limit */
};

/* One period of a service or cluster; utilizations are -1 without samples. */
struct metrics_point {
	double start; /* epoch seconds */
	double cpu_pct, mem_pct;
	double requests; /* load balancer requests counted in the period */
	unsigned samples;
};

/* Task counts of a service (service non-NULL) or cluster, for the exposition. */
struct metrics_counts {
	const char *cluster, *service;
	long running, pending, desired; /* desired -1: not a service */
};

struct metrics_store;

/* period: seconds of one datapoint (>= 1); history: datapoints kept per service and cluster (>= 1). */
struct metrics_store *metrics_store_new(int period, int history);
struct metrics_store *metrics_store_free(struct metrics_store *m);
int metrics_store_period(const struct metrics_store *m);

/* Whether the store knows the task (a caller then needs no meta for it). */
bool metrics_store_known(struct metrics_store *m, const char *arn);
/*
 * Record a sample. meta is required for a task the store does not know yet
 * and ignored afterwards. A sample not newer than the last one is ignored
 * (0); counters going backwards (a restarted container) restart the rate.
 * -EINVAL without meta for an unknown task or with an arn without '/'.
 */
int metrics_store_add(struct metrics_store *m, const char *arn, const struct metrics_task_meta *meta,
		      const struct metrics_sample *s);
/* Count load balancer requests that reached the service's targets at time. */
void metrics_store_add_requests(struct metrics_store *m, const char *cluster, const char *service,
				double time, double count);
void metrics_store_forget(struct metrics_store *m, const char *arn);
/* Forget tasks whose last sample is older than before; returns how many. */
size_t metrics_store_expire(struct metrics_store *m, double before);

typedef void (*metrics_task_fn)(void *userdata, const struct metrics_task_view *t);
/* Call fn for each task (of cluster / service when not NULL) in ARN order; returns how many. */
size_t metrics_store_tasks(struct metrics_store *m, const char *cluster, const char *service,
			   metrics_task_fn fn, void *userdata);
/*
 * The last n complete periods before now of a service (service NULL: the
 * cluster), oldest first, into out[n] (periods without data have samples 0
 * and utilizations -1). Returns n.
 */
size_t metrics_store_points(struct metrics_store *m, const char *cluster, const char *service, double now,
			    struct metrics_point *out, size_t n);
/*
 * The exposition (prom.h) of every task, and of every service and cluster
 * named in counts (plus those with samples), at now: tasks' latest values,
 * services' and clusters' utilization over their tasks' latest samples, and
 * the counts. Appended to sb.
 */
void metrics_store_render(struct metrics_store *m, double now, const struct metrics_counts *counts, size_t n,
			  struct strbuf *sb);
/* Only the tasks' series (an agent's own exposition: its services' aggregates would be partial). */
void metrics_store_render_tasks(struct metrics_store *m, struct strbuf *sb);

#endif
