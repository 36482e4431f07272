/*
 * metrics.h - the agent's metrics: every interval (--metrics-interval, 1 to
 * 10 s, default 10) one thread reads each running task's cgroup (CPU time,
 * memory usage without page cache, memory limit, block I/O; v1, v2 and
 * hybrid through the runtime's cgroup readers) and its network namespace's
 * devices (/proc/PID/net/dev of the pause container, or of every container
 * of a bridge-mode task), sends the batch to the server (POST
 * /agent/v1/metrics, docs/cluster.md) and keeps it for its own Prometheus
 * exposition on --metrics-listen (plain HTTP): node series (CPU, memory,
 * load, tasks) and per-task series of this node.
 *
 * While the server is unreachable only the latest sample of each task is
 * kept (counters are cumulative: the server's rates resume from it).
 */
#ifndef BERTH_AGENT_METRICS_H
#define BERTH_AGENT_METRICS_H

#include <jansson.h>

#include "common/error.h"
#include "metrics/series.h"

#define AGENT_METRICS_DEFAULT_INTERVAL 10
#define AGENT_METRICS_MAX_INTERVAL     10 /* the server hears from every task at least this often */

struct agent_metrics;

struct agent_metrics_config {
	int interval;       /* seconds between samples, 1..AGENT_METRICS_MAX_INTERVAL */
	const char *listen; /* HOST:PORT of the exposition, or NULL for none */
	const char *node;   /* this node's id, for labels (may be NULL until registered) */
	/* The tasks to sample, as agent_runner_metrics_targets() returns them, plus each task's labels
	   {cluster, service, family, cpu, memory}; a new reference. */
	json_t *(*targets)(void *userdata);
	/* Requests per load balancer of this node so far ({"NAME": N}, lb.h), or NULL; may be NULL. */
	json_t *(*lb_counts)(void *userdata);
	/* POST /agent/v1/metrics with body; -ENOENT: the server does not know the call (stop sending). */
	int (*send)(void *userdata, const json_t *body, struct berth_error **err);
	void *userdata;
};

/* Start the sampler thread (and the listener when cfg->listen). */
int agent_metrics_start(const struct agent_metrics_config *cfg, struct agent_metrics **ret,
			struct berth_error **err);
/* Stop and free. Accepts NULL. */
struct agent_metrics *agent_metrics_stop(struct agent_metrics *m);
/* The address the exposition listens on (port resolved), or NULL. */
const char *agent_metrics_address(const struct agent_metrics *m);

/*
 * Read one task: cgroup (hierarchy-relative, with or without the leading
 * '/') and the network devices of pids (n may be 0). *ret.time is now.
 */
int agent_metrics_sample_task(const char *cgroup, const int *pids, size_t n, struct metrics_sample *ret,
			      struct berth_error **err);
/* Node series (CPU, memory, load of this host) appended to sb. */
void agent_metrics_render_node(struct strbuf *sb, const char *node, size_t n_tasks);

/* `berth bench-metrics` (metrics-bench.c, bench/metrics.sh). */
int agent_metrics_bench_main(int argc, char **argv);

#endif
