/*
 * bench.c - `berth bench-scheduler`: the real library on a generated cluster.
 *
 * The only file of src/sched/ that does I/O (argument parsing, /proc for the
 * RSS, one JSON line on stdout); the library itself never calls it. The
 * cluster: random resources, 3-6 zones, instance types, labels, a few taints,
 * a few DRAINING nodes. The workload: RunTask-sized requests (1-10 tasks)
 * from 10 kinds of service x 20 services each, mixing ECS strategies and
 * constraints with Kubernetes-style rules; tasks are stopped oldest first to
 * hold the cluster at about 8 tasks per node, so the run measures a steady
 * state rather than a cluster filling up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/opttab.h"
#include "common/util.h"
#include "sched/internal.h"

#define KINDS          10
#define SERVICES       20 /* per kind */
#define TASKS_PER_NODE 8  /* live tasks held per node before the oldest stop */
#define ID_LEN         24 /* "t" + 20 digits + NUL fits */

struct bench_opts {
	uint64_t nodes, tasks, seed, batch;
	uint32_t sample;
	bool kube, explain;
};

static uint64_t rng_next(uint64_t *st)
{
	*st += 0x9e3779b97f4a7c15ULL;
	return sched_hash64(*st);
}

/*
 * CPU time of this thread: the machine is shared, and wall time would charge
 * the scheduler for the time other processes held the cores. The wall time
 * of the whole run is printed beside it.
 */
static uint64_t cpu_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

long sched_bench_rss_kib(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	return v;
}

static void gen_node(struct sched_snapshot *s, uint64_t i, uint32_t zones, uint64_t *rng)
{
	static const int cores[] = { 2, 4, 8, 16 };
	static const char *families[] = { "m5", "c5", "r5", "t3" };
	static const char *sizes[] = { "large", "xlarge", "2xlarge", "4xlarge" };
	static const int mem_per_core[] = { 4096, 2048, 8192, 4096 };
	uint64_t r = rng_next(rng);
	int sz = (int)(r % 4), fam = (int)((r >> 8) % 4);
	char id[32], zone[32], type[32], ver[32];
	snprintf(id, sizeof(id), "i-%08llx", (unsigned long long)i);
	snprintf(zone, sizeof(zone), "us-east-1%c", (char)('a' + (r >> 16) % zones));
	snprintf(type, sizeof(type), "%s.%s", families[fam], sizes[sz]);
	snprintf(ver, sizeof(ver), "1.%d.0", 60 + (int)((r >> 24) % 10));
	struct sched_attr attrs[] = {
		{ "ecs.availability-zone", zone },
		{ "ecs.instance-type", type },
		{ "ecs.os-type", "linux" },
		{ "disk", (r >> 32) % 3 ? "ssd" : "hdd" },
		{ "tier", (r >> 36) % 2 ? "web" : "batch" },
		{ "ecs.capability.docker-remote-api.1.44", NULL },
	};
	struct sched_taint taints[1];
	size_t nt = 0;
	if ((r >> 40) % 100 < 3)
		taints[nt++] = (struct sched_taint){ "dedicated", "gpu", SCHED_NO_SCHEDULE, 0 };
	else if ((r >> 40) % 100 < 5)
		taints[nt++] = (struct sched_taint){ "maintenance", NULL, SCHED_PREFER_NO_SCHEDULE, 0 };
	static const uint16_t reserved[] = { 22, 2375, 2376, 51678, 51679 };
	struct sched_node_spec spec = {
		.id = id,
		.cpu = cores[sz] * 1024,
		.memory = cores[sz] * mem_per_core[fam],
		.reserved_ports = reserved,
		.n_reserved_ports = ARRAY_SIZE(reserved),
		.status = (r >> 48) % 100 == 0 ? SCHED_NODE_DRAINING : SCHED_NODE_ACTIVE,
		.agent_connected = true,
		.agent_version = ver,
		.registered_at = 1700000000 + (int64_t)i,
		.attrs = attrs,
		.n_attrs = ARRAY_SIZE(attrs),
		.taints = taints,
		.n_taints = nt,
	};
	int ret = sched_node_put(s, &spec, NULL);
	assert(ret >= 0);
	(void)ret;
}

static int prepare_kind(struct sched_snapshot *s, int kind, int svc, struct sched_prepared **ret)
{
	char group[64], web[64];
	snprintf(group, sizeof(group), "service:k%d-%d", kind, svc);
	snprintf(web, sizeof(web), "service:k0-%d", svc);
	const char *web_groups[] = { web };
	const char *self[] = { group };
	const char *ssd[] = { "ssd" };
	const char *batch[] = { "batch" };
	struct sched_strategy az_inst[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" },
					    { SCHED_SPREAD, "instanceId" } };
	struct sched_strategy az_mem[] = { { SCHED_SPREAD, "attribute:ecs.availability-zone" },
					   { SCHED_BINPACK, "memory" } };
	struct sched_strategy cpu[] = { { SCHED_BINPACK, "cpu" } };
	struct sched_strategy rnd[] = { { SCHED_RANDOM, NULL } };
	struct sched_strategy inst[] = { { SCHED_SPREAD, "instanceId" } };
	struct sched_constraint m5[] = {
		{ SCHED_MEMBER_OF,
		  "attribute:ecs.instance-type =~ '(m5|r5)\\..*' and agentVersion >= 1.61.0" }
	};
	struct sched_constraint distinct[] = { { SCHED_DISTINCT_INSTANCE, NULL } };
	struct sched_toleration gpu[] = { { "dedicated", SCHED_TOL_EQUAL, "gpu", SCHED_NO_SCHEDULE, -1 } };
	struct sched_match_expr ssd_expr[] = { { "disk", SCHED_OP_IN, ssd, 1 } };
	struct sched_match_expr batch_expr[] = { { "tier", SCHED_OP_IN, batch, 1 } };
	struct sched_node_term req_ssd[] = { { ssd_expr, 1, 0 } };
	struct sched_node_term pref_batch[] = { { batch_expr, 1, 50 } };
	struct sched_spread_constraint zone_skew[] = { { 1, "ecs.availability-zone", true, 0, NULL, 0 } };
	struct sched_task_affinity anti_self[] = { { self, 1, "instanceId", true, false, 10 } };
	struct sched_task_affinity with_web[] = { { web_groups, 1, "ecs.availability-zone", false, false,
						    50 } };
	struct sched_attr tier_web[] = { { "tier", "web" } };
	uint16_t port = (uint16_t)(8000 + svc);
	struct sched_request r = { .group = group, .cpu = 128, .memory = 256 };
	switch (kind) {
	case 0:
		r.strategies = az_inst, r.n_strategies = 2, r.cpu = 256, r.memory = 512,
		r.n_dynamic_ports = 1;
		break;
	case 1: r.strategies = az_mem, r.n_strategies = 2, r.constraints = m5, r.n_constraints = 1; break;
	case 2: r.strategies = cpu, r.n_strategies = 1; break;
	case 3: r.strategies = rnd, r.n_strategies = 1, r.memory_reservation = 128; break;
	case 4:
		r.strategies = az_inst, r.n_strategies = 2, r.constraints = distinct, r.n_constraints = 1;
		break;
	case 5:
		r.tolerations = gpu, r.n_tolerations = 1, r.required_terms = req_ssd, r.n_required_terms = 1;
		r.preferred_terms = pref_batch, r.n_preferred_terms = 1, r.strategies = cpu,
		r.n_strategies = 1;
		break;
	case 6: r.spread = zone_skew, r.n_spread = 1, r.affinities = anti_self, r.n_affinities = 1; break;
	case 7: r.static_ports = &port, r.n_static_ports = 1, r.strategies = inst, r.n_strategies = 1; break;
	case 8:
		r.node_selector = tier_web, r.n_node_selector = 1, r.strategies = az_mem + 1,
		r.n_strategies = 1;
		break;
	default:
		r.affinities = with_web, r.n_affinities = 1, r.strategies = az_inst, r.n_strategies = 1;
		break;
	}
	struct berth_error *e = NULL;
	int ret_ = sched_prepare(s, &r, ret, &e);
	if (ret_ < 0)
		berth_error_print(e, "berth bench-scheduler: prepare");
	berth_error_free(e);
	return ret_;
}

int sched_bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: berth bench-scheduler [--nodes N] [--tasks M] [--seed S] [--batch B] [--sample PCT]\n"
		"                             [--store none]\n\n"
		"Run the scheduler library on a generated cluster and print one JSON object\n"
		"(placements_per_s, p50_us, p99_us per request of 1-B tasks, rss_kib).\n\n"
		"  --nodes N      nodes in the generated cluster (default 1000)\n"
		"  --tasks M      tasks to place (default 100000)\n"
		"  --seed S       seed of the cluster, the workload and the scheduler (default 1)\n"
		"  --batch B      at most B tasks per request, like RunTask's count (default 10)\n"
		"  --sample PCT   score max(100, PCT%% of the nodes) feasible nodes per decision\n"
		"                 (default 0: 100 nodes; 100: all; 'kube': kube-scheduler's adaptive %%)\n"
		"  --explain      print why each unplaced task did not fit (stderr)\n"
		"  --store none   compute only (the default); --store sqlite:PATH|etcd://HOST:PORT runs\n"
		"                 the server's durable RunTask path instead (berth bench-scheduler --store X "
		"--help)\n");
}

/* A count into the uint64_t dest; a bad one prints the usage. */
static int opt_count(void *dest, const char *arg)
{
	if (util_parse_uint64(arg, dest) < 0) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* --sample PCT (at most 100) or 'kube' */
static int opt_sample(void *dest, const char *arg)
{
	struct bench_opts *o = dest;
	uint64_t v;
	if (streq(arg, "kube"))
		o->kube = true;
	else if (opt_count(&v, arg) < 0)
		return -1;
	else
		o->sample = (uint32_t)MIN(v, 100);
	return 0;
}

static int opt_store(void *dest, const char *arg)
{
	if (streq(arg, "none"))
		return 0;
	fprintf(
	    stderr,
	    "berth bench-scheduler: --store '%s': the library bench is compute only (berth bench-scheduler "
	    "routes other stores to the server's path)\n",
	    arg);
	return -1;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	*o = (struct bench_opts){ 1000, 100000, 1, 10, 0, false, false };
#define COUNT(name, field)                                                           \
	{                                                                            \
		(name), 0, CLI_OPT_CALL, &o->field, .fn = opt_count, .has_arg = true \
	}
	const struct cli_opt t[] = {
		COUNT("nodes", nodes),
		COUNT("tasks", tasks),
		COUNT("seed", seed),
		COUNT("batch", batch),
		{ "sample", 0, CLI_OPT_CALL, o, .fn = opt_sample, .has_arg = true },
		{ "store", 0, CLI_OPT_CALL, NULL, .fn = opt_store, .has_arg = true },
		{ "help", 'h', CLI_OPT_HELP },
		{ "explain", 0, CLI_OPT_FLAG, &o->explain },
		{ NULL },
	};
#undef COUNT
	int r = opttab_scan_usage(t, argc, argv, NULL, usage);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 1 : -EINVAL;
	if (optind < argc) {
		fprintf(stderr, "berth bench-scheduler: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (o->kube)
		o->sample = sched_sample_kube(o->nodes);
	if (!o->nodes || !o->tasks || !o->batch || o->batch > SCHED_MAX_COUNT || o->nodes > 10000000) {
		fprintf(stderr, "berth bench-scheduler: --nodes, --tasks and --batch must be positive\n");
		return -EINVAL;
	}
	return 0;
}

struct run {
	uint64_t placed, unplaced, calls, ns;
	uint64_t *lat;
};

static void run_workload(struct sched_snapshot *s, struct sched_prepared **preps, const struct bench_opts *o,
			 struct run *run)
{
	uint64_t rng = o->seed * 7919, next_id = 0, oldest = 0, cap = o->nodes * TASKS_PER_NODE;
	char ids[SCHED_MAX_COUNT][ID_LEN];
	const char *idp[SCHED_MAX_COUNT];
	run->lat = xcalloc(o->tasks + 1, sizeof(*run->lat));
	while (run->placed + run->unplaced < o->tasks) {
		uint64_t r = rng_next(&rng);
		size_t count = 1 + r % o->batch, left = o->tasks - run->placed - run->unplaced;
		count = MIN(count, left);
		for (size_t i = 0; i < count; i++) {
			snprintf(ids[i], ID_LEN, "t%llu", (unsigned long long)next_id + i);
			idp[i] = ids[i];
		}
		struct sched_result *res = NULL;
		uint64_t t0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		int ret = sched_place(s, preps[(r >> 16) % (KINDS * SERVICES)], idp, count, &res, NULL);
		uint64_t dt = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
		assert(ret >= 0);
		(void)ret;
		run->ns += dt;
		run->lat[run->calls++] = dt;
		run->placed += res->n_placed;
		if (res->message && o->explain)
			fprintf(stderr, "kind %d: %s\n", (int)(((r >> 16) % (KINDS * SERVICES)) % KINDS),
				res->message);
		run->unplaced += count - res->n_placed;
		next_id += count;
		sched_result_free(res);
		/* Hold the steady state: stop the oldest tasks (not timed). */
		while (sched_task_count(s) > cap && oldest < next_id) {
			char id[ID_LEN];
			snprintf(id, sizeof(id), "t%llu", (unsigned long long)oldest++);
			(void)sched_task_remove(s, id, NULL);
		}
	}
}

int sched_bench_main(int argc, char **argv)
{
	struct bench_opts o;
	int r = parse_opts(argc, argv, &o);
	if (r != 0)
		return r > 0 ? 0 : 2;
	long rss0 = sched_bench_rss_kib();
	struct sched_snapshot *s = sched_snapshot_new(o.seed);
	sched_set_sample(s, o.sample, 0);
	/* As a server sizes the snapshot from its store: no table doubles during the run. */
	sched_snapshot_reserve(s, o.nodes, o.nodes * TASKS_PER_NODE + SCHED_MAX_COUNT);
	uint64_t rng = o.seed;
	uint32_t zones = 3 + (uint32_t)(rng_next(&rng) % 4);
	for (uint64_t i = 0; i < o.nodes; i++)
		gen_node(s, i, zones, &rng);
	long rss_nodes = sched_bench_rss_kib();
	struct sched_prepared *preps[KINDS * SERVICES];
	for (int i = 0; i < KINDS * SERVICES; i++) {
		r = prepare_kind(s, i % KINDS, i / KINDS, &preps[i]);
		if (r < 0)
			return 1;
	}
	struct run run = { 0 };
	uint64_t wall0 = cpu_ns(CLOCK_MONOTONIC);
	run_workload(s, preps, &o, &run);
	double wall = (double)(cpu_ns(CLOCK_MONOTONIC) - wall0) / 1e9;
	qsort(run.lat, run.calls, sizeof(*run.lat), sched_bench_cmp_u64);
	double secs = (double)run.ns / 1e9;
	printf("{\"nodes\": %llu, \"zones\": %u, \"tasks\": %llu, \"placed\": %llu, \"unplaced\": %llu, "
	       "\"requests\": %llu, \"store\": \"none\", \"sample_pct\": %u, \"cpu_seconds\": %.3f, "
	       "\"wall_seconds\": %.3f, "
	       "\"placements_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
	       "\"latency_per\": \"request of 1-%llu tasks\", \"rss_kib\": %ld, \"snapshot_bytes_per_node\": "
	       "%.0f, "
	       "\"live_tasks\": %zu}\n",
	       (unsigned long long)o.nodes, zones, (unsigned long long)o.tasks,
	       (unsigned long long)run.placed, (unsigned long long)run.unplaced,
	       (unsigned long long)run.calls, o.sample, secs, wall,
	       secs > 0 ? (double)run.placed / secs : 0.0, run.lat[run.calls / 2] / 1e3,
	       run.lat[run.calls * 99 / 100] / 1e3, run.lat[run.calls - 1] / 1e3, (unsigned long long)o.batch,
	       sched_bench_rss_kib(), (double)(rss_nodes - rss0) * 1024.0 / (double)o.nodes,
	       sched_task_count(s));
	free(run.lat);
	for (int i = 0; i < KINDS * SERVICES; i++)
		sched_prepared_free(preps[i]);
	sched_snapshot_free(s);
	return 0;
}
