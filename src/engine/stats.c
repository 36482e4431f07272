/*
 * stats.c - Docker's stats object for one container, from its cgroup
 * (/berth/<id>, v1 or v2, through the runtime's cgroup managers and
 * readers) and the network devices of its network namespace
 * (/proc/<pid>/net/dev shows the namespace of that process, no setns needed).
 *
 * Trade-off: a sample is computed on demand (no per-container collector
 * thread like dockerd's); the API paces streams. Memory limits above the
 * host's memory (unlimited) report the host's memory, as docker does.
 */
#include <fcntl.h>
#include <sys/sysinfo.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "engine/fsops.h"
#include "runtime/cgroups.h"

#define STATS_ZERO_TIME "0001-01-01T00:00:00Z"

struct stats_target {
	char *id, *name, *cgroup; /* cgroup: /<parent>/<id> */
	pid_t pid;
	bool running, host_net;
};

/* "key value" lines (memory.stat) into an object of integers. */
json_t *engine_stats_parse_keyed(const char *text)
{
	json_t *o = json_object();
	for (const char *l = text; l && *l;) {
		const char *nl = strchrnul(l, '\n');
		char key[64];
		unsigned long long v;
		_cleanup_free_ char *line = xstrndup(l, (size_t)(nl - l));
		if (sscanf(line, "%63s %llu", key, &v) == 2 && v <= INT64_MAX)
			json_object_set_new(o, key, json_integer((json_int_t)v));
		l = *nl ? nl + 1 : nl;
	}
	return o;
}

/*
 * /proc/net/dev into {"eth0": {rx_bytes, rx_packets, rx_errors, rx_dropped,
 * tx_bytes, tx_packets, tx_errors, tx_dropped}}, loopback left out.
 */
json_t *engine_stats_parse_netdev(const char *text)
{
	json_t *o = json_object();
	for (const char *l = text; l && *l;) {
		const char *nl = strchrnul(l, '\n');
		_cleanup_free_ char *line = xstrndup(l, (size_t)(nl - l));
		l = *nl ? nl + 1 : nl;
		char *colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		char *name = line + strspn(line, " ");
		unsigned long long f[16];
		if (!*name || strlen(name) > 15 || streq(name, "lo") ||
		    sscanf(colon + 1,
			   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10],
			   &f[11], &f[12], &f[13], &f[14], &f[15]) != 16)
			continue;
		json_object_set_new(o, name,
				    json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "rx_bytes",
					      (json_int_t)f[0], "rx_packets", (json_int_t)f[1], "rx_errors",
					      (json_int_t)f[2], "rx_dropped", (json_int_t)f[3], "tx_bytes",
					      (json_int_t)f[8], "tx_packets", (json_int_t)f[9], "tx_errors",
					      (json_int_t)f[10], "tx_dropped", (json_int_t)f[11]));
	}
	return o;
}

/* Sum of the "cpu" line of /proc/stat in nanoseconds (docker's system_cpu_usage). */
static uint64_t system_cpu_ns(void)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, "/proc/stat", 4096, &sb, NULL) < 0 || !startswith(sb.buf, "cpu "))
		return 0;
	uint64_t total = 0;
	const char *p = sb.buf + 4;
	for (int i = 0; i < 8; i++) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			break;
		total += v;
		p = end;
	}
	long hz = sysconf(_SC_CLK_TCK);
	return total * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
}

static uint64_t host_memory(void)
{
	struct sysinfo si;
	return sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit : 0;
}

static json_t *percpu(enum cgroup_kind kind, const char *cg)
{
	json_t *a = json_array();
	if (kind != CGROUP_V1)
		return a; /* v2 has no per-CPU counters (docker leaves them out too) */
	_cleanup_free_ char *dir = xasprintf("%s/cpuacct%s", runtime_cgroup_root(), cg);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(dir, "cpuacct.usage_percpu", &sb) < 0)
		return a;
	for (char *p = sb.buf, *end; *p; p = end) {
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p)
			break;
		json_array_append_new(a, json_integer((json_int_t)v));
	}
	return a;
}

static json_t *memory_stat(enum cgroup_kind kind, const char *cg)
{
	_cleanup_free_ char *dir = kind == CGROUP_V1 ? xasprintf("%s/memory%s", runtime_cgroup_root(), cg)
						     : xasprintf("%s%s", runtime_cgroup_root(), cg);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(dir, "memory.stat", &sb) < 0)
		return json_object();
	return engine_stats_parse_keyed(sb.buf);
}

static uint64_t cpu_periods(enum cgroup_kind kind, const char *cg)
{
	_cleanup_free_ char *dir = kind == CGROUP_V1 ? xasprintf("%s/cpu%s", runtime_cgroup_root(), cg)
						     : xasprintf("%s%s", runtime_cgroup_root(), cg);
	return runtime_cg_read_key_u64(dir, "cpu.stat", "nr_periods");
}

static json_t *cpu_json(const struct runtime_stats *st, json_t *per, uint64_t sys, uint64_t periods)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	return json_pack("{s:{s:I, s:o, s:I, s:I}, s:I, s:i, s:{s:I, s:I, s:I}}", "cpu_usage", "total_usage",
			 (json_int_t)st->cpu_usage_ns, "percpu_usage", per, "usage_in_kernelmode",
			 (json_int_t)st->cpu_system_ns, "usage_in_usermode", (json_int_t)st->cpu_user_ns,
			 "system_cpu_usage", (json_int_t)sys, "online_cpus", (int)(online > 0 ? online : 1),
			 "throttling_data", "periods", (json_int_t)periods, "throttled_periods",
			 (json_int_t)st->cpu_throttled_periods, "throttled_time",
			 (json_int_t)st->cpu_throttled_ns);
}

static json_t *blkio_json(const struct runtime_stats *st)
{
	/* per-device lines are summed by the runtime's readers: one pseudo device 0:0 */
	json_t *b =
	    json_pack("{s:[{s:i,s:i,s:s,s:I},{s:i,s:i,s:s,s:I}], s:[{s:i,s:i,s:s,s:I},{s:i,s:i,s:s,s:I}]}",
		      "io_service_bytes_recursive", "major", 0, "minor", 0, "op", "read", "value",
		      (json_int_t)st->blkio_read_bytes, "major", 0, "minor", 0, "op", "write", "value",
		      (json_int_t)st->blkio_write_bytes, "io_serviced_recursive", "major", 0, "minor", 0,
		      "op", "read", "value", (json_int_t)st->blkio_read_ios, "major", 0, "minor", 0, "op",
		      "write", "value", (json_int_t)st->blkio_write_ios);
	/* dockerd's other lists, null where the kernel keeps none (clients index them) */
	static const char *const nulls[] = { "io_queue_recursive",     "io_service_time_recursive",
					     "io_wait_time_recursive", "io_merged_recursive",
					     "io_time_recursive",      "sectors_recursive" };
	for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
		json_object_set_new(b, nulls[i], json_null());
	return b;
}

static json_t *zero_sample(const struct stats_target *t, const char *now)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:{}, s:{s:{s:I}, s:{}}, s:{s:{s:I}, s:{}}, s:{}, s:{}}",
			 "read", now, "preread", STATS_ZERO_TIME, "name", t->name, "id", t->id, "pids_stats",
			 "cpu_stats", "cpu_usage", "total_usage", (json_int_t)0, "throttling_data",
			 "precpu_stats", "cpu_usage", "total_usage", (json_int_t)0, "throttling_data",
			 "memory_stats", "blkio_stats");
}

static int sample(const struct stats_target *t, const char *now, json_t **ret, struct berth_error **err)
{
	enum cgroup_kind kind = runtime_cgroup_detect();
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(kind);
	if (!ops)
		return berth_error_msg(err, ENOTSUP, "no cgroup hierarchy to read statistics from");
	struct runtime_stats st;
	int r = ops->stats(t->cgroup, &st, err);
	if (r < 0)
		return berth_error_wrap(err, r, "read statistics of '%s'", t->id);
	uint64_t host = host_memory(), limit = st.mem_limit;
	if (limit == 0 || (host && limit > host))
		limit = host;
	json_t *s = json_pack(
	    "{s:s, s:s, s:s, s:s, s:{s:I}, s:o, s:o}", "read", now, "preread", STATS_ZERO_TIME, "name",
	    t->name, "id", t->id, "pids_stats", "current", (json_int_t)st.pids_current, "cpu_stats",
	    cpu_json(&st, percpu(kind, t->cgroup), system_cpu_ns(), cpu_periods(kind, t->cgroup)),
	    "blkio_stats", blkio_json(&st));
	/* dockerd's Windows-only members, present (zero) on Linux too */
	json_object_set_new(s, "num_procs", json_integer(0));
	json_object_set_new(s, "storage_stats", json_object());
	if (st.pids_limit)
		json_object_set_new(json_object_get(s, "pids_stats"), "limit",
				    json_integer((json_int_t)st.pids_limit));
	json_object_set_new(s, "memory_stats",
			    st.has_memory
				? json_pack("{s:I, s:I, s:I, s:I, s:o}", "usage", (json_int_t)st.mem_usage,
					    "max_usage", (json_int_t)st.mem_max_usage, "failcnt",
					    (json_int_t)st.mem_failcnt, "limit", (json_int_t)limit, "stats",
					    memory_stat(kind, t->cgroup))
				: json_object());
	if (!t->host_net && t->pid > 0) {
		_cleanup_free_ char *dev = xasprintf("/proc/%d/net/dev", (int)t->pid);
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		if (fs_read_file_at(AT_FDCWD, dev, 1 << 20, &sb, NULL) >= 0) {
			json_t *n = engine_stats_parse_netdev(sb.buf);
			if (json_object_size(n))
				json_object_set_new(s, "networks", n);
			else
				json_decref(n);
		}
	}
	*ret = s;
	return 0;
}

static int target_of(struct engine *e, const char *ref, struct stats_target *t, struct berth_error **err)
{
	struct container *c;
	pthread_mutex_lock(&e->lock);
	int r = engine_container_find_locked(e, ref, &c, err);
	if (r >= 0) {
		const char *mode = json_string_value(json_object_get(c->hostconfig, "NetworkMode"));
		t->id = xstrdup(c->id);
		t->cgroup = engine_container_cgroup_path(e, c);
		t->name = xasprintf("/%s", c->name);
		t->pid = c->pid;
		t->running = c->state == ENGINE_RUNNING || c->state == ENGINE_PAUSED;
		t->host_net = mode && streq(mode, "host");
		engine_container_unref(c);
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

int engine_container_stats(struct engine *e, const char *ref, const json_t *prev, json_t **ret,
			   struct berth_error **err)
{
	struct stats_target t = { 0 };
	int r = target_of(e, ref, &t, err);
	if (r < 0)
		return r;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char now[RFC3339_MAX];
	util_format_rfc3339(&ts, now);
	json_t *s = NULL;
	if (t.running)
		r = sample(&t, now, &s, err);
	else
		s = zero_sample(&t, now);
	if (r >= 0 && prev) {
		json_t *pcpu = json_object_get(prev, "cpu_stats"), *pread = json_object_get(prev, "read");
		if (pcpu)
			json_object_set(s, "precpu_stats", pcpu);
		if (json_is_string(pread))
			json_object_set(s, "preread", pread);
	}
	if (r >= 0 && !json_object_get(s, "precpu_stats"))
		json_object_set_new(s, "precpu_stats",
				    json_pack("{s:{s:I}, s:{}}", "cpu_usage", "total_usage", (json_int_t)0,
					      "throttling_data"));
	free(t.id);
	free(t.name);
	free(t.cgroup);
	if (r >= 0)
		*ret = s;
	return r;
}

int engine_stats_pace(struct engine *e, int64_t ms)
{
	struct timespec dl = proc_deadline(CLOCK_MONOTONIC, ms); /* e->cond runs on the monotonic clock */
	int r = 0;
	pthread_mutex_lock(&e->lock);
	while (!e->closing && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&e->cond, &e->lock, &dl);
	bool closing = e->closing;
	pthread_mutex_unlock(&e->lock);
	return closing ? -ESHUTDOWN : 0;
}
