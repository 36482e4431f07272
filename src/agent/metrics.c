/*
 * metrics.c - the agent's sampler and exposition (metrics.h).
 *
 * One thread: every interval it asks the agent for the running tasks, reads
 * each one's task cgroup through the runtime's cgroup manager (the same
 * readers as `berth runtime events --stats` and the engine's stats API) and
 * its network namespace's /proc/PID/net/dev (parsed by the engine's stats
 * parser), records the samples in a local series store (for the node's own
 * /metrics) and posts them to the server. A failed post keeps the latest
 * sample per task for the next round; nothing older is worth resending.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/metrics.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "engine/fsops.h"
#include "http/http.h"
#include "metrics/prom.h"
#include "runtime/cgroups.h"

struct agent_metrics {
	struct agent_metrics_config cfg;
	char *listen, *node, *address;
	pthread_t thread;
	bool running, stopping, server_lacks_call;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct metrics_store *local; /* this node's tasks, for its exposition */
	json_t *unsent;              /* taskArn -> latest sample not yet accepted */
	size_t n_tasks;
	double last_round_s; /* seconds the last sampling round took */
	struct http_server *http;
	struct http_tcp_listener *listener;
};

static double now_epoch(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Add the rx/tx bytes of every non-loopback device of pid's network namespace. */
static void net_of(int pid, uint64_t *rx, uint64_t *tx)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/net/dev", pid);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, path, 1 << 20, &sb, NULL) < 0)
		return;
	_cleanup_json_ json_t *devs = engine_stats_parse_netdev(sb.buf);
	const char *k;
	json_t *d;
	json_object_foreach (devs, k, d) {
		*rx += (uint64_t)json_integer_value(json_object_get(d, "rx_bytes"));
		*tx += (uint64_t)json_integer_value(json_object_get(d, "tx_bytes"));
	}
}

int agent_metrics_sample_task(const char *cgroup, const int *pids, size_t n, struct metrics_sample *ret,
			      struct berth_error **err)
{
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(runtime_cgroup_detect());
	if (!ops)
		return berth_error_msg(err, ENOTSUP, "no cgroup hierarchy to read metrics from");
	_cleanup_free_ char *path = xasprintf("/%s", cgroup + (*cgroup == '/'));
	struct runtime_stats st;
	int r = ops->stats(path, &st, err);
	if (r < 0)
		return berth_error_wrap(err, r, "read the metrics of cgroup '%s'", path);
	struct metrics_sample s = {
		.time = now_epoch(),
		.cpu_ns = st.cpu_usage_ns,
		/* the working set, as docker stats and Container Insights count it: page cache left out */
		.mem_bytes = st.mem_cache <= st.mem_usage ? st.mem_usage - st.mem_cache : st.mem_usage,
		.mem_limit = st.mem_limit,
		.read_bytes = st.blkio_read_bytes,
		.write_bytes = st.blkio_write_bytes,
	};
	for (size_t i = 0; i < n; i++)
		net_of(pids[i], &s.rx_bytes, &s.tx_bytes);
	*ret = s;
	return 0;
}

/* ---- node series ---- */

static uint64_t meminfo_kib(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

void agent_metrics_render_node(struct strbuf *sb, const char *node, size_t n_tasks)
{
	const char *labels[] = { "container_instance", node ? node : "", NULL, NULL, NULL };
	_cleanup_strbuf_ struct strbuf f = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, "/proc/stat", 1 << 16, &f, NULL) >= 0 && startswith(f.buf, "cpu ")) {
		/* user nice system idle iowait irq softirq steal, in clock ticks */
		static const char *const modes[] = { "user",   "nice", "system",  "idle",
						     "iowait", "irq",  "softirq", "steal" };
		long hz = sysconf(_SC_CLK_TCK);
		metrics_prom_family(sb, "berth_node_cpu_seconds_total", "counter",
				    "CPU time of the node by mode");
		const char *p = f.buf + 4;
		for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
			char *end;
			unsigned long long v = strtoull(p, &end, 10);
			if (end == p)
				break;
			p = end;
			labels[2] = "mode", labels[3] = modes[i];
			metrics_prom_sample(sb, "berth_node_cpu_seconds_total", labels,
					    (double)v / (double)(hz > 0 ? hz : 100));
		}
		labels[2] = NULL;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	metrics_prom_family(sb, "berth_node_cpus", "gauge", "Online CPUs of the node");
	metrics_prom_sample(sb, "berth_node_cpus", labels, (double)(cpus > 0 ? cpus : 1));
	strbuf_reset(&f);
	if (fs_read_file_at(AT_FDCWD, "/proc/meminfo", 1 << 16, &f, NULL) >= 0) {
		metrics_prom_family(sb, "berth_node_memory_total_bytes", "gauge", "Memory of the node");
		metrics_prom_sample(sb, "berth_node_memory_total_bytes", labels,
				    1024.0 * (double)meminfo_kib(f.buf, "MemTotal:"));
		metrics_prom_family(sb, "berth_node_memory_available_bytes", "gauge",
				    "Memory available for new work");
		metrics_prom_sample(sb, "berth_node_memory_available_bytes", labels,
				    1024.0 * (double)meminfo_kib(f.buf, "MemAvailable:"));
	}
	strbuf_reset(&f);
	if (fs_read_file_at(AT_FDCWD, "/proc/loadavg", 4096, &f, NULL) >= 0) {
		metrics_prom_family(sb, "berth_node_load1", "gauge", "One-minute load average of the node");
		metrics_prom_sample(sb, "berth_node_load1", labels, strtod(f.buf, NULL));
	}
	metrics_prom_family(sb, "berth_node_running_tasks", "gauge", "Tasks RUNNING on the node");
	metrics_prom_sample(sb, "berth_node_running_tasks", labels, (double)n_tasks);
}

/* ---- the sampling round ---- */

static void meta_of(const json_t *t, const char *node, struct metrics_task_meta *meta)
{
	*meta = (struct metrics_task_meta){
		.cluster = json_string_value(json_object_get(t, "cluster")),
		.service = json_string_value(json_object_get(t, "service")),
		.family = json_string_value(json_object_get(t, "family")),
		.node = node,
		.cpu_units = json_integer_value(json_object_get(t, "cpu")),
		.memory_mib = json_integer_value(json_object_get(t, "memory")),
	};
}

/* Sample every target; returns the batch {taskArn -> sample JSON}. */
static json_t *sample_round(struct agent_metrics *m, json_t *targets)
{
	json_t *batch = json_object(), *t;
	size_t i;
	json_array_foreach (targets, i, t) {
		const char *arn = json_string_value(json_object_get(t, "taskArn"));
		const char *cg = json_string_value(json_object_get(t, "cgroup"));
		json_t *jp = json_object_get(t, "netPids"), *p;
		int pids[16];
		size_t n = 0, k;
		json_array_foreach (jp, k, p)
			if (n < ARRAY_SIZE(pids))
				pids[n++] = (int)json_integer_value(p);
		struct metrics_sample s;
		if (!arn || !cg || agent_metrics_sample_task(cg, pids, n, &s, NULL) < 0)
			continue; /* a task stopping under us */
		struct metrics_task_meta meta;
		meta_of(t, m->node, &meta);
		metrics_store_add(m->local, arn, &meta, &s);
		json_object_set_new(batch, arn, metrics_sample_json(&s));
	}
	return batch;
}

static void send_batch(struct agent_metrics *m)
{
	pthread_mutex_lock(&m->lock);
	bool skip = m->server_lacks_call || json_object_size(m->unsent) == 0;
	json_t *tasks = json_array(), *v;
	const char *k;
	json_object_foreach (m->unsent, k, v) {
		json_t *one = json_deep_copy(v);
		json_object_set_new(one, "taskArn", json_string(k));
		json_array_append_new(tasks, one);
	}
	pthread_mutex_unlock(&m->lock);
	_cleanup_json_ json_t *body = json_pack("{s:o}", "tasks", tasks);
	json_t *lbs = m->cfg.lb_counts ? m->cfg.lb_counts(m->cfg.userdata) : NULL;
	if (json_object_size(lbs)) /* cumulative: the server counts the difference */
		json_object_set(body, "loadBalancers", lbs), skip = m->server_lacks_call;
	json_decref(lbs);
	if (skip)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = m->cfg.send(m->cfg.userdata, body, &err);
	pthread_mutex_lock(&m->lock);
	if (r == 0) {
		size_t i;
		json_t *sent;
		json_array_foreach (tasks, i, sent) { /* drop what went unless a newer sample replaced it */
			const char *arn = json_string_value(json_object_get(sent, "taskArn"));
			json_t *cur = json_object_get(m->unsent, arn);
			if (cur && json_equal(json_object_get(cur, "time"), json_object_get(sent, "time")))
				json_object_del(m->unsent, arn);
		}
	} else if (r == -ENOENT) {
		m->server_lacks_call = true;
		log_fields(LOG_LEVEL_WARN,
			   "the server does not take metrics (older server); not sending them", NULL);
	} else {
		log_fields(LOG_LEVEL_DEBUG, "metrics not sent; keeping the latest samples", "error",
			   err ? err->msg : "", NULL);
	}
	pthread_mutex_unlock(&m->lock);
}

static bool wait_next(struct agent_metrics *m, double deadline_mono)
{
	double left = deadline_mono - now_mono();
	struct timespec ts = proc_deadline(CLOCK_MONOTONIC, left > 0 ? (int64_t)(left * 1000) + 1 : 0);
	pthread_mutex_lock(&m->lock);
	while (!m->stopping && left > 0 && pthread_cond_timedwait(&m->cond, &m->lock, &ts) == 0)
		;
	bool go = !m->stopping;
	pthread_mutex_unlock(&m->lock);
	return go;
}

static void *sampler_main(void *arg)
{
	struct agent_metrics *m = arg;
	double next = now_mono();
	for (;;) {
		next += m->cfg.interval;
		double t0 = now_mono();
		_cleanup_json_ json_t *targets = m->cfg.targets(m->cfg.userdata);
		_cleanup_json_ json_t *batch = sample_round(m, targets);
		/* tasks gone from this node leave the local exposition after two intervals */
		metrics_store_expire(m->local, now_epoch() - 2.0 * m->cfg.interval);
		pthread_mutex_lock(&m->lock);
		json_object_update(m->unsent, batch);
		m->n_tasks = json_array_size(targets);
		m->last_round_s = now_mono() - t0;
		pthread_mutex_unlock(&m->lock);
		send_batch(m);
		if (now_mono() > next) /* a round longer than the interval: start the next one now */
			next = now_mono();
		if (!wait_next(m, next))
			break;
	}
	return NULL;
}

/* ---- exposition ---- */

static void handle(struct http_request *req, void *userdata)
{
	struct agent_metrics *m = userdata;
	if (!streq(http_request_path(req), "/metrics"))
		return http_respond_error(req, 404, "no such endpoint: this listener serves GET /metrics");
	if (!streq(http_request_method(req), "GET"))
		return http_respond_error(req, 405, "GET /metrics only");
	struct strbuf sb = STRBUF_INIT;
	pthread_mutex_lock(&m->lock);
	size_t n = m->n_tasks;
	double took = m->last_round_s;
	pthread_mutex_unlock(&m->lock);
	agent_metrics_render_node(&sb, m->node, n);
	const char *labels[] = { "container_instance", m->node ? m->node : "", NULL };
	metrics_prom_family(&sb, "berth_agent_sample_duration_seconds", "gauge",
			    "Time the last sampling round took");
	metrics_prom_sample(&sb, "berth_agent_sample_duration_seconds", labels, took);
	metrics_store_render_tasks(m->local, &sb);
	size_t len = sb.len;
	http_respond(req, 200, PROM_CONTENT_TYPE, strbuf_detach(&sb, NULL), len);
}

static int listen_up(struct agent_metrics *m, struct berth_error **err)
{
	int fd = http_listen_tcp(m->listen, err);
	if (fd < 0)
		return berth_error_wrap(err, fd, "--metrics-listen '%s'", m->listen);
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	char host[64] = "";
	int port = 0;
	if (getsockname(fd, (struct sockaddr *)&a, &len) == 0 && a.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in *)&a)->sin_port);
	} else if (a.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, host, sizeof(host));
		port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
	}
	m->address = xasprintf(strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
	struct http_server_opts o = { .listen_fd = -1, .max_body = 4096, .handler = handle, .userdata = m };
	int r = http_server_start(&o, &m->http, err);
	if (r >= 0)
		r = http_tcp_listener_start(m->http, fd, NULL, false, &m->listener, err);
	else
		close(fd);
	return r;
}

int agent_metrics_start(const struct agent_metrics_config *cfg, struct agent_metrics **ret,
			struct berth_error **err)
{
	if (cfg->interval < 1 || cfg->interval > AGENT_METRICS_MAX_INTERVAL)
		return berth_error_msg(err, EINVAL, "invalid metrics interval %d: 1 to %d seconds",
				       cfg->interval, AGENT_METRICS_MAX_INTERVAL);
	struct agent_metrics *m = xcalloc(1, sizeof(*m));
	m->cfg = *cfg;
	m->listen = cfg->listen ? xstrdup(cfg->listen) : NULL;
	m->node = cfg->node ? xstrdup(cfg->node) : NULL;
	m->cfg.listen = m->listen;
	m->cfg.node = m->node;
	m->local = metrics_store_new(cfg->interval, 2);
	m->unsent = json_object();
	pthread_mutex_init(&m->lock, NULL);
	proc_cond_init_monotonic(&m->cond);
	int r = m->listen ? listen_up(m, err) : 0;
	if (r >= 0 && (r = -pthread_create(&m->thread, NULL, sampler_main, m)) < 0)
		berth_error_set(err, -r, "start the metrics thread");
	if (r < 0) {
		agent_metrics_stop(m);
		return r;
	}
	m->running = true;
	if (m->address)
		log_fields(LOG_LEVEL_INFO, "metrics listening", "address", m->address, NULL);
	*ret = m;
	return 0;
}

const char *agent_metrics_address(const struct agent_metrics *m)
{
	return m ? m->address : NULL;
}

struct agent_metrics *agent_metrics_stop(struct agent_metrics *m)
{
	if (!m)
		return NULL;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->running)
		pthread_join(m->thread, NULL);
	m->listener = http_tcp_listener_stop(m->listener);
	m->http = http_server_stop(m->http);
	m->local = metrics_store_free(m->local);
	json_decref(m->unsent);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m->listen);
	free(m->node);
	free(m->address);
	free(m);
	return NULL;
}
