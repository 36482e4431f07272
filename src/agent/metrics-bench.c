/*
 * metrics-bench.c - `berth bench-metrics` (bench/metrics.sh drives it):
 *
 *   sample CGROUP_PARENT ROUNDS   sample every child cgroup of CGROUP_PARENT
 *                                 (hierarchy-relative) ROUNDS times with the
 *                                 agent's sampler; prints the CPU seconds
 *                                 (user + system) per round per 100 cgroups
 *   render TASKS ROUNDS FILE      fill the server's series with TASKS tasks in
 *                                 10 services, render the exposition ROUNDS
 *                                 times; prints ms per render and writes one
 *                                 render to FILE (the anchor serves it)
 */
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>

#include "agent/metrics.h"
#include "common/fs.h"
#include "runtime/cgroups.h"

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_sample(const char *parent, int rounds)
{
	/* the children, from the cpuacct (v1) or unified (v2) hierarchy */
	enum cgroup_kind k = runtime_cgroup_detect();
	_cleanup_free_ char *dir = k == CGROUP_V1 ? xasprintf("%s/cpuacct/%s", runtime_cgroup_root(), parent)
						  : xasprintf("%s/%s", runtime_cgroup_root(), parent);
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "bench-metrics: cannot open '%s'\n", dir);
		return 1;
	}
	char *names[4096];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < ARRAY_SIZE(names))
		if (de->d_type == DT_DIR && de->d_name[0] != '.')
			names[n++] = xasprintf("%s/%s", parent, de->d_name);
	closedir(d);
	double c0 = cpu_seconds(), t0 = mono();
	size_t ok = 0;
	for (int r = 0; r < rounds; r++)
		for (size_t i = 0; i < n; i++) {
			struct metrics_sample s;
			int self = getpid();
			ok += agent_metrics_sample_task(names[i], &self, 1, &s, NULL) == 0;
		}
	double cpu = cpu_seconds() - c0, wall = mono() - t0;
	printf("{\"cgroups\": %zu, \"rounds\": %d, \"ok\": %zu, \"cpu_s_per_round_per_100\": %.6f, "
	       "\"wall_s\": %.3f}\n",
	       n, rounds, ok, n ? cpu / rounds * 100.0 / (double)n : 0, wall);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	return 0;
}

static int bench_render(int tasks, int rounds, const char *file)
{
	struct metrics_store *m = metrics_store_new(60, 30);
	double now = 1700000000;
	for (int i = 0; i < tasks; i++) {
		char arn[128], svc[32], node[40];
		snprintf(arn, sizeof(arn), "arn:aws:ecs:us-east-1:123456789012:task/default/%032x", i);
		snprintf(svc, sizeof(svc), "service-%d", i % 10);
		snprintf(node, sizeof(node), "%032x", i % 50);
		struct metrics_task_meta meta = { "default", svc, svc, node, 256, 512 };
		for (int k = 0; k < 2; k++) {
			struct metrics_sample s = { .time = now - 10 + 10 * k,
						    .cpu_ns = (uint64_t)k * 1000000000ull,
						    .mem_bytes = 100 << 20,
						    .mem_limit = 512 << 20 };
			metrics_store_add(m, arn, k ? NULL : &meta, &s);
		}
	}
	struct metrics_counts counts[11];
	char names[10][32];
	for (int i = 0; i < 10; i++) {
		snprintf(names[i], sizeof(names[i]), "service-%d", i);
		counts[i] = (struct metrics_counts){ "default", names[i], tasks / 10, 0, tasks / 10 };
	}
	counts[10] = (struct metrics_counts){ "default", NULL, tasks, 0, -1 };
	struct strbuf sb = STRBUF_INIT;
	double t0 = mono();
	for (int r = 0; r < rounds; r++) {
		strbuf_reset(&sb);
		metrics_store_render(m, now + 1, counts, ARRAY_SIZE(counts), &sb);
	}
	double per = (mono() - t0) / rounds;
	int rc = fs_write_file_atomic(file, sb.buf, sb.len, 0644, NULL) < 0;
	printf("{\"tasks\": %d, \"bytes\": %zu, \"render_ms\": %.3f}\n", tasks, sb.len, per * 1000.0);
	strbuf_release(&sb);
	metrics_store_free(m);
	return rc;
}

int agent_metrics_bench_main(int argc, char **argv)
{
	if (argc == 4 && streq(argv[1], "sample"))
		return bench_sample(argv[2], atoi(argv[3]) > 0 ? atoi(argv[3]) : 1);
	if (argc == 5 && streq(argv[1], "render"))
		return bench_render(atoi(argv[2]) > 0 ? atoi(argv[2]) : 1000,
				    atoi(argv[3]) > 0 ? atoi(argv[3]) : 1, argv[4]);
	fprintf(stderr,
		"Usage: berth bench-metrics sample CGROUP_PARENT ROUNDS | render TASKS ROUNDS FILE\n");
	return 2;
}
