/*
 * series.c - the server's in-memory metrics (series.h).
 *
 * Tasks live in an array sorted by ARN (bsearch to find, memmove to insert:
 * a few thousand tasks cost less than a hash table's bookkeeping, and the
 * exposition wants a stable order anyway). Services and clusters ("groups")
 * live in a second sorted array, each with a ring of `history` periods: the
 * period starting at k*period sits in slot k % history and is reset when a
 * newer k claims the slot.
 */
#include <pthread.h>
#include <stdlib.h>

#include "common/macro.h"
#include "common/util.h"
#include "metrics/prom.h"
#include "metrics/series.h"

#define MIB (1024.0 * 1024.0)

struct bucket {
	int64_t k; /* period index: start = k * period */
	double cpu_used, cpu_res, mem_used, mem_res, requests;
	unsigned samples;
};

struct group {
	char *key; /* first (sorted_find()): "CLUSTER\tSERVICE" or "CLUSTER\t" for the cluster */
	char *cluster, *service; /* service NULL for the cluster */
	struct bucket *ring;
	/* the latest-sample sums of one render */
	double now_cpu_used, now_cpu_res, now_mem_used, now_mem_res;
};

struct mtask {
	char *arn;                     /* first: sorted_find() */
	const char *id;                /* into arn */
	struct metrics_task_meta meta; /* strings owned */
	struct metrics_sample last, prev;
	bool has_prev;
};

struct metrics_store {
	pthread_mutex_t lock;
	int period, history;
	struct mtask **tasks;
	size_t n_tasks, cap_tasks;
	struct group **groups;
	size_t n_groups, cap_groups;
};

struct metrics_store *metrics_store_new(int period, int history)
{
	struct metrics_store *m = xcalloc(1, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->period = period < 1 ? 1 : period;
	m->history = history < 1 ? 1 : history;
	return m;
}

static void mtask_free(struct mtask *t)
{
	if (!t)
		return;
	free(t->arn);
	free((char *)t->meta.cluster);
	free((char *)t->meta.service);
	free((char *)t->meta.family);
	free((char *)t->meta.node);
	free(t);
}

struct metrics_store *metrics_store_free(struct metrics_store *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_tasks; i++)
		mtask_free(m->tasks[i]);
	for (size_t i = 0; i < m->n_groups; i++) {
		free(m->groups[i]->key);
		free(m->groups[i]->cluster);
		free(m->groups[i]->service);
		free(m->groups[i]->ring);
		free(m->groups[i]);
	}
	free(m->tasks);
	free(m->groups);
	pthread_mutex_destroy(&m->lock);
	free(m);
	return NULL;
}

int metrics_store_period(const struct metrics_store *m)
{
	return m->period;
}

/*
 * Index of key in a sorted array of structs whose first member is their
 * char * key (mtask, group), or -(insertion point) - 1.
 */
static ssize_t sorted_find(void *const *v, size_t n, const char *key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(*(char *const *)v[mid], key);
		if (c == 0)
			return (ssize_t)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(ssize_t)lo - 1;
}

static ssize_t task_find(struct metrics_store *m, const char *arn)
{
	return sorted_find((void *const *)m->tasks, m->n_tasks, arn);
}

static char *group_key(const char *cluster, const char *service)
{
	return xasprintf("%s\t%s", cluster, service ? service : "");
}

static ssize_t group_find(struct metrics_store *m, const char *key)
{
	return sorted_find((void *const *)m->groups, m->n_groups, key);
}

/* The group of a service (service non-NULL and not "") or cluster; created when create. */
static struct group *group_get(struct metrics_store *m, const char *cluster, const char *service, bool create)
{
	if (service && !*service)
		return NULL;
	_cleanup_free_ char *key = group_key(cluster, service);
	ssize_t i = group_find(m, key);
	if (i >= 0)
		return m->groups[i];
	if (!create)
		return NULL;
	size_t at = (size_t)(-i - 1);
	if (m->n_groups == m->cap_groups) {
		m->cap_groups = m->cap_groups ? m->cap_groups * 2 : 16;
		m->groups = xrealloc(m->groups, m->cap_groups * sizeof(*m->groups));
	}
	struct group *g = xcalloc(1, sizeof(*g));
	g->key = TAKE_PTR(key);
	g->cluster = xstrdup(cluster);
	g->service = service ? xstrdup(service) : NULL;
	g->ring = xcalloc((size_t)m->history, sizeof(*g->ring));
	for (int k = 0; k < m->history; k++)
		g->ring[k].k = -1;
	memmove(m->groups + at + 1, m->groups + at, (m->n_groups - at) * sizeof(*m->groups));
	m->groups[at] = g;
	m->n_groups++;
	return g;
}

static struct bucket *bucket_at(struct metrics_store *m, struct group *g, double time)
{
	int64_t k = (int64_t)(time / m->period);
	struct bucket *b = &g->ring[k % m->history];
	if (b->k != k) {
		if (b->k > k)
			return NULL; /* older than the history */
		*b = (struct bucket){ .k = k };
	}
	return b;
}

bool metrics_store_known(struct metrics_store *m, const char *arn)
{
	pthread_mutex_lock(&m->lock);
	bool known = task_find(m, arn) >= 0;
	pthread_mutex_unlock(&m->lock);
	return known;
}

static double cpu_reserved(const struct mtask *t)
{
	return t->meta.cpu_units > 0 ? (double)t->meta.cpu_units : 1024.0;
}

/* Reserved memory in MiB: the task's, else its cgroup limit; 0 when neither. */
static double mem_reserved(const struct mtask *t)
{
	if (t->meta.memory_mib > 0)
		return (double)t->meta.memory_mib;
	/* a limit near 2^63 is "unlimited" (v1 reports PAGE_COUNTER_MAX pages) */
	if (t->last.mem_limit && t->last.mem_limit < (1ull << 50))
		return (double)t->last.mem_limit / MIB;
	return 0;
}

/* CPU units used between the last two samples, or -1. */
static double cpu_used(const struct mtask *t)
{
	if (!t->has_prev || t->last.time <= t->prev.time || t->last.cpu_ns < t->prev.cpu_ns)
		return -1;
	return (double)(t->last.cpu_ns - t->prev.cpu_ns) / 1e9 / (t->last.time - t->prev.time) * 1024.0;
}

static void account(struct metrics_store *m, struct mtask *t)
{
	double used = cpu_used(t), mres = mem_reserved(t);
	struct group *gs[2] = { group_get(m, t->meta.cluster, NULL, true),
				group_get(m, t->meta.cluster, t->meta.service, true) };
	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct bucket *b = gs[i] ? bucket_at(m, gs[i], t->last.time) : NULL;
		if (!b)
			continue;
		if (used >= 0) {
			b->cpu_used += used;
			b->cpu_res += cpu_reserved(t);
		}
		if (mres > 0) {
			b->mem_used += (double)t->last.mem_bytes / MIB;
			b->mem_res += mres;
		}
		b->samples++;
	}
}

static void meta_copy(struct metrics_task_meta *dst, const struct metrics_task_meta *src)
{
	dst->cluster = xstrdup(src->cluster ? src->cluster : "");
	dst->service = xstrdup(src->service ? src->service : "");
	dst->family = xstrdup(src->family ? src->family : "");
	dst->node = xstrdup(src->node ? src->node : "");
	dst->cpu_units = src->cpu_units;
	dst->memory_mib = src->memory_mib;
}

int metrics_store_add(struct metrics_store *m, const char *arn, const struct metrics_task_meta *meta,
		      const struct metrics_sample *s)
{
	const char *slash = arn ? strrchr(arn, '/') : NULL;
	if (!slash || !slash[1])
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	ssize_t i = task_find(m, arn);
	struct mtask *t;
	if (i >= 0) {
		t = m->tasks[i];
		if (s->time <= t->last.time) {
			pthread_mutex_unlock(&m->lock);
			return 0;
		}
		t->prev = t->last;
		t->has_prev = s->cpu_ns >= t->last.cpu_ns;
	} else {
		if (!meta) {
			pthread_mutex_unlock(&m->lock);
			return -EINVAL;
		}
		size_t at = (size_t)(-i - 1);
		if (m->n_tasks == m->cap_tasks) {
			m->cap_tasks = m->cap_tasks ? m->cap_tasks * 2 : 64;
			m->tasks = xrealloc(m->tasks, m->cap_tasks * sizeof(*m->tasks));
		}
		t = xcalloc(1, sizeof(*t));
		t->arn = xstrdup(arn);
		t->id = t->arn + (slash - arn) + 1;
		meta_copy(&t->meta, meta);
		memmove(m->tasks + at + 1, m->tasks + at, (m->n_tasks - at) * sizeof(*m->tasks));
		m->tasks[at] = t;
		m->n_tasks++;
	}
	t->last = *s;
	account(m, t);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void metrics_store_add_requests(struct metrics_store *m, const char *cluster, const char *service,
				double time, double count)
{
	pthread_mutex_lock(&m->lock);
	struct group *gs[2] = { group_get(m, cluster, NULL, true), group_get(m, cluster, service, true) };
	for (size_t i = 0; i < ARRAY_SIZE(gs); i++) {
		struct bucket *b = gs[i] ? bucket_at(m, gs[i], time) : NULL;
		if (b)
			b->requests += count;
	}
	pthread_mutex_unlock(&m->lock);
}

static void task_remove_at(struct metrics_store *m, size_t i)
{
	mtask_free(m->tasks[i]);
	memmove(m->tasks + i, m->tasks + i + 1, (m->n_tasks - i - 1) * sizeof(*m->tasks));
	m->n_tasks--;
}

void metrics_store_forget(struct metrics_store *m, const char *arn)
{
	pthread_mutex_lock(&m->lock);
	ssize_t i = task_find(m, arn);
	if (i >= 0)
		task_remove_at(m, (size_t)i);
	pthread_mutex_unlock(&m->lock);
}

size_t metrics_store_expire(struct metrics_store *m, double before)
{
	pthread_mutex_lock(&m->lock);
	size_t gone = 0;
	for (size_t i = m->n_tasks; i-- > 0;)
		if (m->tasks[i]->last.time < before) {
			task_remove_at(m, i);
			gone++;
		}
	pthread_mutex_unlock(&m->lock);
	return gone;
}

static void view_of(const struct mtask *t, struct metrics_task_view *v)
{
	double used = cpu_used(t), mres = mem_reserved(t);
	*v = (struct metrics_task_view){
		.arn = t->arn,
		.id = t->id,
		.meta = &t->meta,
		.last = t->last,
		.cpu_pct = used < 0 ? -1 : used / cpu_reserved(t) * 100.0,
		.mem_pct = mres > 0 ? (double)t->last.mem_bytes / MIB / mres * 100.0 : -1,
	};
}

size_t metrics_store_tasks(struct metrics_store *m, const char *cluster, const char *service,
			   metrics_task_fn fn, void *userdata)
{
	size_t n = 0;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_tasks; i++) {
		const struct mtask *t = m->tasks[i];
		if ((cluster && !streq(cluster, t->meta.cluster)) ||
		    (service && !streq(service, t->meta.service)))
			continue;
		struct metrics_task_view v;
		view_of(t, &v);
		fn(userdata, &v);
		n++;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

static double ratio(double used, double res)
{
	return res > 0 ? used / res * 100.0 : -1;
}

size_t metrics_store_points(struct metrics_store *m, const char *cluster, const char *service, double now,
			    struct metrics_point *out, size_t n)
{
	pthread_mutex_lock(&m->lock);
	struct group *g = group_get(m, cluster, service, false);
	int64_t last = (int64_t)(now / m->period) - 1; /* the last complete period */
	for (size_t i = 0; i < n; i++) {
		int64_t k = last - (int64_t)(n - 1 - i);
		struct metrics_point *p = &out[i];
		*p = (struct metrics_point){ .start = (double)k * m->period, .cpu_pct = -1, .mem_pct = -1 };
		const struct bucket *b = g && k >= 0 ? &g->ring[k % m->history] : NULL;
		if (!b || b->k != k)
			continue;
		p->cpu_pct = ratio(b->cpu_used, b->cpu_res);
		p->mem_pct = ratio(b->mem_used, b->mem_res);
		p->requests = b->requests;
		p->samples = b->samples;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ---- the protocol's JSON ---- */

static const char *const SAMPLE_KEYS[] = { "cpuNs",   "memoryBytes", "memoryLimitBytes", "rxBytes",
					   "txBytes", "readBytes",   "writeBytes" };

static uint64_t *sample_field(struct metrics_sample *s, size_t i)
{
	uint64_t *f[] = { &s->cpu_ns,   &s->mem_bytes,  &s->mem_limit,  &s->rx_bytes,
			  &s->tx_bytes, &s->read_bytes, &s->write_bytes };
	return f[i];
}

json_t *metrics_sample_json(const struct metrics_sample *s)
{
	struct metrics_sample c = *s;
	json_t *j = json_pack("{s:f}", "time", s->time);
	for (size_t i = 0; i < ARRAY_SIZE(SAMPLE_KEYS); i++) /* JSON integers are signed: cap at 2^63-1 */
		json_object_set_new(j, SAMPLE_KEYS[i],
				    json_integer((json_int_t)MIN(*sample_field(&c, i), (uint64_t)INT64_MAX)));
	return j;
}

int metrics_sample_parse(const json_t *j, struct metrics_sample *ret)
{
	struct metrics_sample s = { 0 };
	json_t *t = json_object_get(j, "time");
	if (!json_is_number(t) || json_number_value(t) <= 0)
		return -EINVAL;
	s.time = json_number_value(t);
	for (size_t i = 0; i < ARRAY_SIZE(SAMPLE_KEYS); i++) {
		json_t *v = json_object_get(j, SAMPLE_KEYS[i]);
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -EINVAL;
		*sample_field(&s, i) = (uint64_t)json_integer_value(v);
	}
	*ret = s;
	return 0;
}

/* ---- exposition ---- */

struct family {
	const char *name, *type, *help;
};

enum {
	F_CPU_PCT,
	F_CPU_SEC,
	F_MEM,
	F_MEM_LIMIT,
	F_MEM_PCT,
	F_CPU_RES,
	F_MEM_RES,
	F_RX,
	F_TX,
	F_RD,
	F_WR,
	F_N
};

static const struct family TASK_FAMILIES[F_N] = {
	[F_CPU_PCT] = { "berth_task_cpu_utilization_percent", "gauge",
			"CPU used over the last two samples, in percent of the task's CPU reservation" },
	[F_CPU_SEC] = { "berth_task_cpu_seconds_total", "counter", "CPU time used by the task's cgroup" },
	[F_MEM] = { "berth_task_memory_bytes", "gauge", "Memory used by the task's cgroup" },
	[F_MEM_LIMIT] = { "berth_task_memory_limit_bytes", "gauge", "Memory limit of the task's cgroup" },
	[F_MEM_PCT] = { "berth_task_memory_utilization_percent", "gauge",
			"Memory used, in percent of the task's memory reservation" },
	[F_CPU_RES] = { "berth_task_cpu_reserved_units", "gauge",
			"CPU reserved by the task (1024 units = 1 vCPU)" },
	[F_MEM_RES] = { "berth_task_memory_reserved_bytes", "gauge", "Memory reserved by the task" },
	[F_RX] = { "berth_task_network_receive_bytes_total", "counter",
		   "Bytes received in the task's network namespace" },
	[F_TX] = { "berth_task_network_transmit_bytes_total", "counter",
		   "Bytes sent from the task's network namespace" },
	[F_RD] = { "berth_task_storage_read_bytes_total", "counter", "Bytes read from block devices" },
	[F_WR] = { "berth_task_storage_write_bytes_total", "counter", "Bytes written to block devices" },
};

static bool task_value(const struct mtask *t, int f, double *v)
{
	struct metrics_task_view w;
	view_of(t, &w);
	switch (f) {
	case F_CPU_PCT: *v = w.cpu_pct; return w.cpu_pct >= 0;
	case F_CPU_SEC: *v = (double)t->last.cpu_ns / 1e9; return true;
	case F_MEM: *v = (double)t->last.mem_bytes; return true;
	case F_MEM_LIMIT: *v = (double)t->last.mem_limit; return t->last.mem_limit < (1ull << 50);
	case F_MEM_PCT: *v = w.mem_pct; return w.mem_pct >= 0;
	case F_CPU_RES: *v = cpu_reserved(t); return true;
	case F_MEM_RES: *v = mem_reserved(t) * MIB; return mem_reserved(t) > 0;
	case F_RX: *v = (double)t->last.rx_bytes; return true;
	case F_TX: *v = (double)t->last.tx_bytes; return true;
	case F_RD: *v = (double)t->last.read_bytes; return true;
	case F_WR: *v = (double)t->last.write_bytes; return true;
	}
	return false;
}

static void render_tasks(struct metrics_store *m, struct strbuf *sb)
{
	for (int f = 0; f < F_N && m->n_tasks; f++) {
		metrics_prom_family(sb, TASK_FAMILIES[f].name, TASK_FAMILIES[f].type, TASK_FAMILIES[f].help);
		for (size_t i = 0; i < m->n_tasks; i++) {
			const struct mtask *t = m->tasks[i];
			double v;
			if (!task_value(t, f, &v))
				continue;
			const char *labels[] = { "cluster",
						 t->meta.cluster,
						 "service",
						 t->meta.service,
						 "task_definition_family",
						 t->meta.family,
						 "task",
						 t->id,
						 "container_instance",
						 t->meta.node,
						 NULL };
			metrics_prom_sample(sb, TASK_FAMILIES[f].name, labels, v);
		}
	}
}

/* The latest-sample sums of every group, from the tasks sampled since fresh_after. */
static void sum_now(struct metrics_store *m, double fresh_after)
{
	for (size_t i = 0; i < m->n_groups; i++) {
		struct group *g = m->groups[i];
		g->now_cpu_used = g->now_cpu_res = g->now_mem_used = g->now_mem_res = 0;
	}
	for (size_t i = 0; i < m->n_tasks; i++) {
		const struct mtask *t = m->tasks[i];
		if (t->last.time < fresh_after)
			continue;
		double used = cpu_used(t), mres = mem_reserved(t);
		struct group *gs[2] = { group_get(m, t->meta.cluster, NULL, true),
					group_get(m, t->meta.cluster, t->meta.service, true) };
		for (size_t k = 0; k < ARRAY_SIZE(gs); k++) {
			if (!gs[k])
				continue;
			if (used >= 0)
				gs[k]->now_cpu_used += used, gs[k]->now_cpu_res += cpu_reserved(t);
			if (mres > 0)
				gs[k]->now_mem_used += (double)t->last.mem_bytes / MIB,
				    gs[k]->now_mem_res += mres;
		}
	}
}

static const struct metrics_counts *counts_of(const struct group *g, const struct metrics_counts *counts,
					      size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (streq(counts[i].cluster, g->cluster) && streq_ptr(counts[i].service, g->service))
			return &counts[i];
	return NULL;
}

static void render_groups(struct metrics_store *m, bool services, const struct metrics_counts *counts,
			  size_t n, struct strbuf *sb)
{
	const char *what = services ? "service" : "cluster";
	const char *fam[] = { "cpu_utilization_percent", "memory_utilization_percent", "running_tasks",
			      "pending_tasks", "desired_tasks" };
	const char *help[] = { "CPU used by the running tasks, in percent of the CPU they reserve",
			       "Memory used by the running tasks, in percent of the memory they reserve",
			       "Tasks whose lastStatus is RUNNING",
			       "Tasks not yet RUNNING (PROVISIONING to ACTIVATING)",
			       "The service's desiredCount" };
	for (size_t f = 0; f < ARRAY_SIZE(fam); f++) {
		if (!services && f == 4)
			continue;
		_cleanup_free_ char *name = xasprintf("berth_%s_%s", what, fam[f]);
		bool header = false;
		for (size_t i = 0; i < m->n_groups; i++) {
			const struct group *g = m->groups[i];
			if ((g->service != NULL) != services)
				continue;
			const struct metrics_counts *c = counts_of(g, counts, n);
			double v = f == 0   ? ratio(g->now_cpu_used, g->now_cpu_res)
				   : f == 1 ? ratio(g->now_mem_used, g->now_mem_res)
				   : !c     ? -1
				   : f == 2 ? (double)c->running
				   : f == 3 ? (double)c->pending
					    : (double)c->desired;
			if (v < 0)
				continue;
			if (!header)
				metrics_prom_family(sb, name, "gauge", help[f]), header = true;
			const char *labels[] = { "cluster", g->cluster, services ? "service" : NULL,
						 g->service, NULL };
			metrics_prom_sample(sb, name, labels, v);
		}
	}
}

void metrics_store_render(struct metrics_store *m, double now, const struct metrics_counts *counts, size_t n,
			  struct strbuf *sb)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) /* every counted service and cluster has a group */
		(void)group_get(m, counts[i].cluster, counts[i].service, true);
	/* a task counts while its sample is younger than two periods */
	sum_now(m, now - 2.0 * m->period);
	render_tasks(m, sb);
	render_groups(m, true, counts, n, sb);
	render_groups(m, false, counts, n, sb);
	pthread_mutex_unlock(&m->lock);
}

void metrics_store_render_tasks(struct metrics_store *m, struct strbuf *sb)
{
	pthread_mutex_lock(&m->lock);
	render_tasks(m, sb);
	pthread_mutex_unlock(&m->lock);
}
