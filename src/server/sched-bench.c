/*
 * sched-bench.c - `berth bench-scheduler --store sqlite:PATH|etcd://HOST:PORT`:
 * the scheduler through the server's real durable bind path.
 *
 * `--store none` (the default) is the compute-only bench of the library
 * (src/sched/bench.c, which may not call the server). With a store, this file
 * builds a `struct server` over that store (no HTTP, no SigV4: what a request
 * costs after its body was parsed), creates a cluster, registers 10 task
 * definitions (the library bench's 10 request kinds: ECS strategies and
 * constraints, berthScheduling selectors, affinity, tolerations, topology
 * spread) and N container instances as agents' registrations write them, and
 * then calls server_ecs_run_task() -- the RunTask handler: task definition and cluster
 * reads, the scheduler cache's catch-up from the store's watch stream, the
 * decision, the task records and the placement token written in one store
 * transaction -- from K client threads at once, as the server's HTTP workers
 * would. Every placed task is durable in the store when its call returns.
 *
 * The cluster fills (no tasks stop): keep --tasks at or below ~8 per node.
 * Prints one JSON object: placements_per_s (wall clock: the store's fsyncs
 * are the cost), p50_us/p99_us per RunTask call (1-B tasks), rss_kib.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/opttab.h"
#include "common/process.h"
#include "common/util.h"
#include "server/internal.h"
#include "server/server.h"

#define BENCH_KINDS       10
#define BENCH_SERVICES    20
#define BENCH_MAX_CLIENTS 256

struct dbench {
	struct server srv;
	const char *cluster;
	uint64_t nodes, tasks, seed, batch, clients;
	atomic_uint_fast64_t next; /* tasks handed out to clients */
	atomic_uint_fast64_t placed, unplaced, calls, errors;
	uint64_t *lat; /* ns per call, [calls] */
	pthread_mutex_t lat_lock;
};

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* CPU seconds of the whole process (every thread: clients and the store's writer). */
static double process_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Bytes this process caused to be written to storage (/proc/self/io write_bytes), or -1. */
static long long written_bytes(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/io", "re");
	char line[128];
	long long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "write_bytes: %lld", &v) == 1)
			break;
	return v;
}

/* One operation: -1 on an error (printed), else the tasks RunTask placed (0 for others). */
static int call(struct dbench *b, ecs_op_fn fn, json_t *in, json_t **out)
{
	struct ecs_call c = { .srv = &b->srv };
	json_t *o = NULL;
	int r = fn(&c, in, &o);
	if (r < 0) {
		fprintf(stderr, "berth bench-scheduler: %s: %s\n", c.type ? c.type : "error",
			c.msg ? c.msg : "failed");
		free(c.msg);
		return -1;
	}
	if (out)
		*out = o;
	else
		json_decref(o);
	free(c.body); /* (RunTask's answer as the HTTP layer would send it) */
	return (int)MIN(c.n_tasks, INT_MAX);
}

/* The library bench's request kinds as task definitions (berthScheduling for the Kubernetes parts). */
static json_t *kind_taskdef(int kind)
{
	char family[32];
	snprintf(family, sizeof(family), "bench-k%d", kind);
	json_t *port = kind == 0   ? json_pack("[{s:i,s:i}]", "containerPort", 80, "hostPort", 0)
		       : kind == 7 ? json_pack("[{s:i,s:i}]", "containerPort", 80, "hostPort", 8080)
				   : json_array();
	json_t *c = json_pack("{s:s,s:s,s:i,s:i,s:b,s:o}", "name", "app", "image", "busybox", "cpu",
			      kind == 0 ? 256 : 128, "memory", kind == 0 ? 512 : 256, "essential", 1,
			      "portMappings", port);
	if (kind == 3)
		json_object_set_new(c, "memoryReservation", json_integer(128));
	json_t *td = json_pack("{s:s,s:s,s:[o]}", "family", family, "networkMode", "bridge",
			       "containerDefinitions", c);
	json_t *ext = NULL;
	if (kind == 5)
		ext = json_pack(
		    "{s:[{s:s,s:s,s:s,s:s}],s:{s:[{s:[{s:s,s:s,s:[s]}]}],s:[{s:i,s:[{s:s,s:s,s:[s]}]}]}}",
		    "tolerations", "key", "dedicated", "operator", "Equal", "value", "gpu", "effect",
		    "NoSchedule", "nodeAffinity", "required", "matchExpressions", "key", "disk", "operator",
		    "In", "values", "ssd", "preferred", "weight", 50, "matchExpressions", "key", "tier",
		    "operator", "In", "values", "batch");
	else if (kind == 6)
		ext = json_pack("{s:[{s:i,s:s,s:s}]}", "topologySpreadConstraints", "maxSkew", 1,
				"topologyKey", "ecs.availability-zone", "whenUnsatisfiable", "DoNotSchedule");
	else if (kind == 8)
		ext = json_pack("{s:{s:s}}", "nodeSelector", "tier", "web");
	if (ext)
		json_object_set_new(td, "berthScheduling", ext);
	return td;
}

/* RunTask's placementStrategy/placementConstraints per kind (and its group). */
static json_t *kind_run(struct dbench *b, int kind, int svc, uint64_t count)
{
	char td[32], group[48];
	snprintf(td, sizeof(td), "bench-k%d:1", kind); /* as services do: a revision, no range read */
	snprintf(group, sizeof(group), "service:k%d-%d", kind, svc);
	json_t *in = json_pack("{s:s,s:s,s:I,s:s}", "cluster", b->cluster, "taskDefinition", td, "count",
			       (json_int_t)count, "group", group);
	json_t *az = json_pack("{s:s,s:s}", "type", "spread", "field", "attribute:ecs.availability-zone");
	json_t *strat = NULL, *cons = NULL;
	switch (kind) {
	case 0:
	case 4:
		strat = json_pack("[O,{s:s,s:s}]", az, "type", "spread", "field", "instanceId");
		if (kind == 4)
			cons = json_pack("[{s:s}]", "type", "distinctInstance");
		break;
	case 1:
		strat = json_pack("[O,{s:s,s:s}]", az, "type", "binpack", "field", "memory");
		cons = json_pack("[{s:s,s:s}]", "type", "memberOf", "expression",
				 "attribute:ecs.instance-type =~ '(m5|r5)\\..*' and agentVersion >= 1.61.0");
		break;
	case 2:
	case 5: strat = json_pack("[{s:s,s:s}]", "type", "binpack", "field", "cpu"); break;
	case 3: strat = json_pack("[{s:s}]", "type", "random"); break;
	case 7: strat = json_pack("[{s:s,s:s}]", "type", "spread", "field", "instanceId"); break;
	case 8: strat = json_pack("[{s:s,s:s}]", "type", "binpack", "field", "memory"); break;
	case 9: strat = json_pack("[O]", az); break;
	default: break;
	}
	json_decref(az);
	if (strat)
		json_object_set_new(in, "placementStrategy", strat);
	if (cons)
		json_object_set_new(in, "placementConstraints", cons);
	return in;
}

/* One container instance as an agent's registration writes it (agent.c), with its alive key. */
static void gen_instance(struct dbench *b, uint64_t i, uint32_t zones, struct store_op *ops, char **bufs)
{
	static const int cores[] = { 2, 4, 8, 16 };
	static const char *families[] = { "m5", "c5", "r5", "t3" };
	static const char *sizes[] = { "large", "xlarge", "2xlarge", "4xlarge" };
	static const int mem_per_core[] = { 4096, 2048, 8192, 4096 };
	uint64_t r = mix(b->seed * 1000003 + i);
	int sz = (int)(r % 4), fam = (int)((r >> 8) % 4);
	char id[40], zone[32], type[32], ver[32];
	snprintf(id, sizeof(id), "%08llx%024llx", (unsigned long long)b->seed, (unsigned long long)i);
	snprintf(zone, sizeof(zone), "us-east-1%c", (char)('a' + (r >> 16) % zones));
	snprintf(type, sizeof(type), "%s.%s", families[fam], sizes[sz]);
	snprintf(ver, sizeof(ver), "1.%d.0", 60 + (int)((r >> 24) % 10));
	_cleanup_free_ char *tail = xasprintf("%s/%s", b->cluster, id);
	_cleanup_free_ char *arn = server_arn_make(&b->srv, "container-instance", tail);
	json_t *res =
	    json_pack("[{s:s,s:s,s:i},{s:s,s:s,s:i},{s:s,s:s,s:[s,s,s,s,s]}]", "name", "CPU", "type",
		      "INTEGER", "integerValue", cores[sz] * 1024, "name", "MEMORY", "type", "INTEGER",
		      "integerValue", cores[sz] * mem_per_core[fam], "name", "PORTS", "type", "STRINGSET",
		      "stringSetValue", "22", "2375", "2376", "51678", "51679");
	json_t *attrs =
	    json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "name", "ecs.availability-zone",
		      "value", zone, "name", "ecs.instance-type", "value", type, "name", "ecs.os-type",
		      "value", "linux", "name", "disk", "value", (r >> 32) % 3 ? "ssd" : "hdd", "name",
		      "tier", "value", (r >> 36) % 2 ? "web" : "batch");
	json_t *taints = json_array();
	if ((r >> 40) % 100 < 3)
		json_array_append_new(taints, json_pack("{s:s,s:s,s:s}", "key", "dedicated", "value", "gpu",
							"effect", "NoSchedule"));
	else if ((r >> 40) % 100 < 5)
		json_array_append_new(taints, json_pack("{s:s,s:s,s:s}", "key", "maintenance", "value", "",
							"effect", "PreferNoSchedule"));
	json_t *inst = json_pack(
	    "{s:s,s:s%,s:s,s:s,s:s,s:o,s:o,s:o,s:{s:s},s:f,s:i}", "containerInstanceArn", arn,
	    "ec2InstanceId", id, (size_t)19, "status", (r >> 48) % 100 == 0 ? "DRAINING" : "ACTIVE", "nodeId",
	    id, "clusterName", b->cluster, "registeredResources", res, "attributes", attrs, "taints", taints,
	    "versionInfo", "agentVersion", ver, "registeredAt", server_record_now(), "version", 1);
	bufs[0] = xasprintf("/berth/instances/%s/%s", b->cluster, id);
	bufs[1] = json_dumps(inst, JSON_COMPACT);
	bufs[2] = xasprintf("/berth/alive/%s", id);
	json_decref(inst);
	ops[0] = (struct store_op){ STORE_OP_PUT, bufs[0], bufs[1], strlen(bufs[1]), 0 };
	ops[1] = (struct store_op){ STORE_OP_PUT, bufs[2], "1", 1, 0 };
}

static int setup(struct dbench *b, uint32_t zones)
{
	_cleanup_json_ json_t *cl = json_pack("{s:s}", "clusterName", b->cluster);
	if (call(b, server_ecs_create_cluster, cl, NULL) < 0)
		return -1;
	for (int k = 0; k < BENCH_KINDS; k++) {
		_cleanup_json_ json_t *td = kind_taskdef(k);
		if (call(b, server_ecs_register_task_definition, td, NULL) < 0)
			return -1;
	}
	/* instances in transactions of 50 (etcd allows 128 operations in one) */
	enum { PER_TXN = 50 };
	for (uint64_t i = 0; i < b->nodes; i += PER_TXN) {
		struct store_op ops[PER_TXN * 2];
		char *bufs[PER_TXN * 3];
		size_t n = 0;
		for (; n < PER_TXN && i + n < b->nodes; n++)
			gen_instance(b, i + n, zones, ops + 2 * n, bufs + 3 * n);
		bool ok = false;
		_cleanup_error_ struct berth_error *err = NULL;
		int r = store_txn(b->srv.store, NULL, 0, ops, 2 * n, &ok, NULL, &err);
		for (size_t k = 0; k < 3 * n; k++)
			free(bufs[k]);
		if (r < 0) {
			berth_error_print(err, "berth bench-scheduler: register instances");
			return -1;
		}
	}
	return 0;
}

static void *client(void *arg)
{
	struct dbench *b = arg;
	for (uint64_t req = 0;; req++) {
		uint64_t r = mix(b->seed ^ ((uint64_t)proc_now_ns() * 31 + req));
		uint64_t count = 1 + r % b->batch;
		uint64_t first = atomic_fetch_add(&b->next, count);
		if (first >= b->tasks)
			break;
		count = MIN(count, b->tasks - first);
		int svc = (int)((r >> 16) % (BENCH_KINDS * BENCH_SERVICES));
		_cleanup_json_ json_t *in = kind_run(b, svc % BENCH_KINDS, svc / BENCH_KINDS, count);
		json_t *out = NULL;
		uint64_t t0 = (uint64_t)proc_now_ns();
		int rc = call(b, server_ecs_run_task, in, &out);
		uint64_t dt = (uint64_t)proc_now_ns() - t0;
		uint64_t got = rc > 0 ? (uint64_t)rc : 0;
		json_decref(out);
		if (rc < 0)
			atomic_fetch_add(&b->errors, 1);
		atomic_fetch_add(&b->placed, got);
		atomic_fetch_add(&b->unplaced, count - got);
		uint64_t at = atomic_fetch_add(&b->calls, 1);
		b->lat[at] = dt;
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: berth bench-scheduler --store sqlite:PATH|etcd://HOST:PORT [--nodes N] [--tasks M]\n"
		"                             [--seed S] [--batch B] [--clients K]\n\n"
		"Place M tasks through the server's RunTask handler and its durable bind path: every\n"
		"placement is a store transaction (task records + placement token). Prints one JSON\n"
		"object (placements_per_s over wall time, p50_us/p99_us per RunTask of 1-B tasks).\n"
		"Without --store (or --store none): the compute-only bench (see --help there).\n\n"
		"  --store SPEC   sqlite:PATH (a new file) or etcd://HOST:PORT (a fresh cluster is used)\n"
		"  --nodes N      container instances registered (default 1000)\n"
		"  --tasks M      tasks to place (default 10000; the cluster fills, ~8 per node at most)\n"
		"  --seed S       seed of the cluster and the workload (default 1)\n"
		"  --batch B      at most B tasks per RunTask (1-10, default 10)\n"
		"  --clients K    concurrent RunTask callers, as HTTP workers (default 8)\n");
}

/*
 * Which bench runs: this one with --store sqlite:PATH or etcd://HOST:PORT, else the compute-only
 * one. A look at argv for the one option that routes (each bench then parses its own table).
 */
static bool store_given(int argc, char **argv, const char **ret)
{
	*ret = NULL;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--store") && i + 1 < argc)
			*ret = argv[i + 1];
		else if (startswith(argv[i], "--store="))
			*ret = argv[i] + strlen("--store=");
	}
	return *ret && !streq(*ret, "none");
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

static int parse(struct dbench *b, int argc, char **argv, const char **spec)
{
	b->nodes = 1000, b->tasks = 10000, b->seed = 1, b->batch = 10, b->clients = 8;
#define COUNT(name, field)                                                           \
	{                                                                            \
		(name), 0, CLI_OPT_CALL, &b->field, .fn = opt_count, .has_arg = true \
	}
	const struct cli_opt t[] = {
		COUNT("nodes", nodes),         COUNT("tasks", tasks),
		COUNT("seed", seed),           COUNT("batch", batch),
		COUNT("clients", clients),     { "store", 0, CLI_OPT_STRING, spec },
		{ "help", 'h', CLI_OPT_HELP }, { NULL },
	};
#undef COUNT
	int r = opttab_scan_usage(t, argc, argv, NULL, usage);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 1 : -EINVAL;
	if (optind != argc || !b->nodes || !b->tasks || !b->batch || b->batch > 10 || !b->clients ||
	    b->clients > BENCH_MAX_CLIENTS || b->nodes > 1000000) {
		fprintf(stderr, "berth bench-scheduler: --nodes (1-1000000), --tasks, --batch (1-10) and "
				"--clients (1-256) must be positive\n");
		return -EINVAL;
	}
	return 0;
}

static int open_store(const char *spec, struct store **ret, struct berth_error **err)
{
	if (startswith(spec, "sqlite:")) {
		const char *path = spec + strlen("sqlite:");
		if (!*path)
			return berth_error_msg(err, EINVAL, "--store sqlite:PATH needs a path");
		if (access(path, F_OK) == 0)
			return berth_error_msg(err, EEXIST, "'%s' exists: the bench needs a new store file",
					       path);
		return store_sqlite_open(path, ret, err);
	}
	if (startswith(spec, "etcd://"))
		return store_etcd_open(spec + strlen("etcd://"), ret, err);
	return berth_error_msg(err, EINVAL, "invalid --store '%s': none, sqlite:PATH or etcd://HOST:PORT",
			       spec);
}

int server_bench_scheduler_main(int argc, char **argv)
{
	const char *spec = NULL;
	if (!store_given(argc, argv, &spec))
		return sched_bench_main(argc, argv);
	struct dbench b = { 0 };
	int r = parse(&b, argc, argv, &spec);
	if (r != 0)
		return r > 0 ? 0 : 2;
	_cleanup_error_ struct berth_error *err = NULL;
	if (open_store(spec, &b.srv.store, &err) < 0) {
		berth_error_print(err, "berth bench-scheduler");
		return 1;
	}
	b.srv.region = xstrdup(SERVER_DEFAULT_REGION);
	b.srv.account = xstrdup("000000000000");
	b.srv.sched = server_sched_cache_new();
	if (streq(b.srv.store->ops->name, "sqlite")) /* as the server (cli.c) */
		b.srv.records = server_record_cache_new();
	store_on_write(b.srv.store, server_note_write, &b.srv);
	pthread_mutex_init(&b.srv.lock, NULL);
	_cleanup_free_ char *cluster =
	    xasprintf("bench-%llu-%llx", (unsigned long long)b.seed,
		      (unsigned long long)((uint64_t)proc_now_ns() & 0xffffffffff));
	b.cluster = cluster;
	b.lat = xcalloc(b.tasks + 1, sizeof(*b.lat));
	uint32_t zones = 3 + (uint32_t)(mix(b.seed) % 4);
	long rss0 = sched_bench_rss_kib();
	uint64_t s0 = (uint64_t)proc_now_ns();
	int rc = 1;
	if (setup(&b, zones) < 0)
		goto out;
	double setup_s = (double)((uint64_t)proc_now_ns() - s0) / 1e9;
	/* load the snapshot once, as a running server has it */
	struct sched_snapshot *snap = NULL;
	if (server_sched_cache_lock(&b.srv, b.cluster, &snap, &err) < 0) {
		berth_error_print(err, "berth bench-scheduler: load");
		goto out;
	}
	sched_snapshot_reserve(snap, b.nodes, b.tasks + SCHED_MAX_COUNT);
	server_sched_cache_unlock(&b.srv);
	pthread_t th[BENCH_MAX_CLIENTS];
	double cpu0 = process_cpu_s();
	long long wb0 = written_bytes();
	uint64_t w0 = (uint64_t)proc_now_ns();
	for (uint64_t i = 0; i < b.clients; i++)
		if (pthread_create(&th[i], NULL, client, &b) != 0)
			abort();
	for (uint64_t i = 0; i < b.clients; i++)
		pthread_join(th[i], NULL);
	double wall = (double)((uint64_t)proc_now_ns() - w0) / 1e9;
	double cpu = process_cpu_s() - cpu0;
	long long wb = written_bytes() - wb0;
	uint64_t calls = atomic_load(&b.calls);
	qsort(b.lat, calls, sizeof(*b.lat), sched_bench_cmp_u64);
	uint64_t placed = atomic_load(&b.placed);
	printf(
	    "{\"nodes\": %llu, \"zones\": %u, \"tasks\": %llu, \"placed\": %llu, \"unplaced\": %llu, "
	    "\"requests\": %llu, \"errors\": %llu, \"store\": \"%s\", \"clients\": %llu, "
	    "\"setup_seconds\": %.3f, \"wall_seconds\": %.3f, \"placements_per_s\": %.0f, "
	    "\"cpu_seconds\": %.3f, \"placements_per_cpu_s\": %.0f, \"written_bytes_per_placement\": %.0f, "
	    "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"latency_per\": \"RunTask of 1-%llu "
	    "tasks\", \"rss_kib\": %ld, \"rss_growth_kib\": %ld}\n",
	    (unsigned long long)b.nodes, zones, (unsigned long long)b.tasks, (unsigned long long)placed,
	    (unsigned long long)atomic_load(&b.unplaced), (unsigned long long)calls,
	    (unsigned long long)atomic_load(&b.errors), b.srv.store->ops->name, (unsigned long long)b.clients,
	    setup_s, wall, wall > 0 ? (double)placed / wall : 0.0, cpu, cpu > 0 ? (double)placed / cpu : 0.0,
	    placed && wb0 >= 0 ? (double)wb / (double)placed : 0.0, calls ? b.lat[calls / 2] / 1e3 : 0.0,
	    calls ? b.lat[calls * 99 / 100] / 1e3 : 0.0, calls ? b.lat[calls - 1] / 1e3 : 0.0,
	    (unsigned long long)b.batch, sched_bench_rss_kib(), sched_bench_rss_kib() - rss0);
	rc = atomic_load(&b.errors) ? 1 : 0;
out:
	free(b.lat);
	b.srv.sched = server_sched_cache_free(b.srv.sched);
	b.srv.records = server_record_cache_free(b.srv.records);
	b.srv.store = store_free(b.srv.store);
	free(b.srv.region);
	free(b.srv.account);
	pthread_mutex_destroy(&b.srv.lock);
	return rc;
}
