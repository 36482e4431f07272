/* test-metrics-series.c - the Prometheus writer and the in-memory series (metrics/). */
#include <math.h>

#include "unit.h"
#include "metrics/prom.h"
#include "metrics/series.h"

static void test_prom_escape_and_values(void **state)
{
	(void)state;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	metrics_prom_family(&sb, "x_total", "counter", "a \\ b\nc");
	const char *labels[] = { "a", "q\"uo\\te\nd", "b", NULL, NULL };
	metrics_prom_sample(&sb, "x_total", labels, 1.5);
	metrics_prom_sample(&sb, "x_total", NULL, NAN);
	metrics_prom_sample(&sb, "x_total", NULL, -INFINITY);
	metrics_prom_sample(&sb, "x_total", NULL, 123456789012.0);
	assert_string_equal(sb.buf, "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n"
				    "x_total{a=\"q\\\"uo\\\\te\\nd\",b=\"\"} 1.5\n"
				    "x_total NaN\nx_total -Inf\nx_total 123456789012\n");
}

static struct metrics_sample sample(double t, double cpu_s, uint64_t mem_mib)
{
	return (struct metrics_sample){ .time = t,
					.cpu_ns = (uint64_t)(cpu_s * 1e9),
					.mem_bytes = mem_mib << 20,
					.mem_limit = 512ull << 20,
					.rx_bytes = 10,
					.tx_bytes = 20 };
}

static void count_task(void *ud, const struct metrics_task_view *v)
{
	double *sum = ud;
	*sum += v->cpu_pct;
}

static void test_task_utilization(void **state)
{
	(void)state;
	struct metrics_store *m = metrics_store_new(10, 6);
	struct metrics_task_meta meta = { .cluster = "c",
					  .service = "web",
					  .family = "web",
					  .node = "n1",
					  .cpu_units = 512,
					  .memory_mib = 256 };
	struct metrics_sample s = sample(1000, 0, 64);
	assert_int_equal(metrics_store_add(m, "arn:aws:ecs:r:1:task/c/t1", NULL, &s),
			 -EINVAL); /* unknown, no meta */
	assert_int_equal(metrics_store_add(m, "no-slash", &meta, &s), -EINVAL);
	assert_int_equal(metrics_store_add(m, "arn:aws:ecs:r:1:task/c/t1", &meta, &s), 0);
	assert_true(metrics_store_known(m, "arn:aws:ecs:r:1:task/c/t1"));
	double sum = 0;
	assert_int_equal(metrics_store_tasks(m, "c", NULL, count_task, &sum), 1);
	assert_true(sum < 0); /* no rate before the second sample */
	/* half a vCPU over 2 s = 512 units = 100% of 512 reserved */
	s = sample(1002, 1.0, 128);
	assert_int_equal(metrics_store_add(m, "arn:aws:ecs:r:1:task/c/t1", NULL, &s), 0);
	sum = 0;
	metrics_store_tasks(m, "c", "web", count_task, &sum);
	assert_true(fabs(sum - 100.0) < 1e-6);
	/* an older sample is ignored; another cluster filters it out */
	s = sample(1001, 5.0, 1);
	assert_int_equal(metrics_store_add(m, "arn:aws:ecs:r:1:task/c/t1", NULL, &s), 0);
	assert_int_equal(metrics_store_tasks(m, "other", NULL, count_task, &sum), 0);
	metrics_store_forget(m, "arn:aws:ecs:r:1:task/c/t1");
	assert_false(metrics_store_known(m, "arn:aws:ecs:r:1:task/c/t1"));
	metrics_store_free(m);
}

static void test_periods(void **state)
{
	(void)state;
	struct metrics_store *m = metrics_store_new(10, 4);
	struct metrics_task_meta a = {
		.cluster = "c", .service = "web", .family = "web", .cpu_units = 1024, .memory_mib = 100
	};
	struct metrics_task_meta b = a;
	b.service = "";
	/* period [1000,1010): task a uses 1 vCPU (100%), task b (no service) 0.5 vCPU */
	for (int i = 0; i <= 4; i++) {
		struct metrics_sample sa = sample(1000 + 2 * i, 2.0 * i, 50);
		struct metrics_sample sb2 = sample(1000 + 2 * i, 1.0 * i, 25);
		metrics_store_add(m, "arn/t-a", &a, &sa);
		metrics_store_add(m, "arn/t-b", &b, &sb2);
	}
	metrics_store_add_requests(m, "c", "web", 1005, 42);
	struct metrics_point p[3];
	assert_int_equal(metrics_store_points(m, "c", "web", 1015, p, 3), 3);
	assert_int_equal(p[2].start, 1000);
	assert_int_equal(p[2].samples, 5);
	assert_true(fabs(p[2].cpu_pct - 100.0) < 1e-6);
	assert_true(fabs(p[2].mem_pct - 50.0) < 1e-6);
	assert_true(fabs(p[2].requests - 42) < 1e-9);
	assert_int_equal(p[1].samples, 0); /* no data before */
	assert_true(p[1].cpu_pct < 0);
	/* the cluster: (4 x 1024 + 4 x 512) / (8 x 1024) = 75% */
	metrics_store_points(m, "c", NULL, 1015, p, 1);
	assert_true(fabs(p[0].cpu_pct - 75.0) < 1e-6);
	assert_true(fabs(p[0].mem_pct - 37.5) < 1e-6);
	/* the current period is not complete: not reported */
	metrics_store_points(m, "c", "web", 1009, p, 1);
	assert_int_equal(p[0].samples, 0);
	/* a period older than the ring is gone */
	struct metrics_sample late = sample(1040, 100, 50);
	metrics_store_add(m, "arn/t-a", NULL, &late);
	metrics_store_points(m, "c", "web", 1050, p, 1);
	assert_int_equal(p[0].samples, 1);
	assert_int_equal(metrics_store_points(m, "c", "web", 1015, p, 1), 1);
	assert_int_equal(p[0].samples, 0); /* period 1000 was overwritten by 1040's (same slot) */
	assert_int_equal(metrics_store_expire(m, 1040), 1); /* t-b's last sample is at 1008 */
	metrics_store_free(m);
}

static void test_render(void **state)
{
	(void)state;
	struct metrics_store *m = metrics_store_new(10, 4);
	struct metrics_task_meta a = { .cluster = "c",
				       .service = "web",
				       .family = "fam",
				       .node = "n1",
				       .cpu_units = 1024,
				       .memory_mib = 100 };
	struct metrics_sample s1 = sample(1000, 0, 50), s2 = sample(1002, 1, 50);
	metrics_store_add(m, "arn:aws:ecs:r:1:task/c/abc", &a, &s1);
	metrics_store_add(m, "arn:aws:ecs:r:1:task/c/abc", NULL, &s2);
	struct metrics_counts counts[] = { { "c", "web", 1, 2, 3 },
					   { "c", NULL, 4, 5, -1 },
					   { "d", "idle", 0, 0, 1 } };
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	metrics_store_render(m, 1003, counts, ARRAY_SIZE(counts), &sb);
	const char *want[] = {
		"# TYPE berth_task_cpu_utilization_percent gauge\n",
		"berth_task_cpu_utilization_percent{cluster=\"c\",service=\"web\",task_definition_family="
		"\"fam\","
		"task=\"abc\",container_instance=\"n1\"} 50\n",
		"berth_task_memory_bytes{cluster=\"c\",service=\"web\",task_definition_family=\"fam\",task="
		"\"abc\","
		"container_instance=\"n1\"} 52428800\n",
		"berth_service_cpu_utilization_percent{cluster=\"c\",service=\"web\"} 50\n",
		"berth_service_memory_utilization_percent{cluster=\"c\",service=\"web\"} 50\n",
		"berth_service_running_tasks{cluster=\"c\",service=\"web\"} 1\n",
		"berth_service_pending_tasks{cluster=\"c\",service=\"web\"} 2\n",
		"berth_service_desired_tasks{cluster=\"c\",service=\"web\"} 3\n",
		"berth_service_desired_tasks{cluster=\"d\",service=\"idle\"} 1\n",
		"berth_cluster_cpu_utilization_percent{cluster=\"c\"} 50\n",
		"berth_cluster_running_tasks{cluster=\"c\"} 4\n",
		"berth_cluster_pending_tasks{cluster=\"c\"} 5\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		if (!strstr(sb.buf, want[i]))
			fail_msg("missing %s in:\n%s", want[i], sb.buf);
	assert_null(strstr(sb.buf, "berth_cluster_desired_tasks"));
	/* a stale task (older than two periods) no longer counts in the aggregates */
	strbuf_reset(&sb);
	metrics_store_render(m, 1100, counts, 1, &sb);
	assert_null(strstr(sb.buf, "berth_service_cpu_utilization_percent"));
	assert_non_null(strstr(sb.buf, "berth_task_cpu_seconds_total"));
	metrics_store_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prom_escape_and_values),
		cmocka_unit_test(test_task_utilization),
		cmocka_unit_test(test_periods),
		cmocka_unit_test(test_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
