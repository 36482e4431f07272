/*
 * metrics.c - `berth cluster top` (also `berth top` without a container)
 * and `berth service stats SERVICE`: thin clients of BerthDescribeMetrics
 * (server/metrics.c, docs/metrics.md), the cluster's CPU and memory per
 * service and task as the server's in-memory metrics hold them.
 */
#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

static char *pct_text(const json_t *v)
{
	return json_is_number(v) ? xasprintf("%.1f%%", json_number_value(v)) : xstrdup("-");
}

static char *count_text(const json_t *o, const char *key)
{
	return xasprintf("%lld", (long long)json_integer_value(json_object_get(o, key)));
}

static json_t *service_row(const json_t *s)
{
	_cleanup_free_ char *cpu = pct_text(json_object_get(s, "cpuUtilization"));
	_cleanup_free_ char *mem = pct_text(json_object_get(s, "memoryUtilization"));
	_cleanup_free_ char *d = count_text(s, "desiredCount"), *r = count_text(s, "runningCount"),
			    *p = count_text(s, "pendingCount");
	return json_pack("[s,s,s,s,s,s]", json_string_value(json_object_get(s, "serviceName")) ?: "", d, r, p,
			 cpu, mem);
}

static json_t *task_row(const json_t *t)
{
	_cleanup_free_ char *cpu = pct_text(json_object_get(t, "cpuUtilization"));
	_cleanup_free_ char *mem = pct_text(json_object_get(t, "memoryUtilization"));
	_cleanup_free_ char *used =
	    cli_human_size((double)json_integer_value(json_object_get(t, "memoryBytes")));
	_cleanup_free_ char *rx =
	    cli_human_size((double)json_integer_value(json_object_get(t, "networkRxBytes")));
	_cleanup_free_ char *tx =
	    cli_human_size((double)json_integer_value(json_object_get(t, "networkTxBytes")));
	_cleanup_free_ char *net = xasprintf("%s / %s", rx, tx);
	const char *node = json_string_value(json_object_get(t, "containerInstanceId")) ?: "";
	_cleanup_free_ char *short_node = xstrndup(node, 12);
	return json_pack(
	    "[s,s,s,s,s,s,s,s]", cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn"))),
	    json_string_value(json_object_get(t, "serviceName")) ?: "",
	    json_string_value(json_object_get(t, "family")) ?: "", short_node, cpu, mem, used, net);
}

static json_t *point_row(const json_t *p)
{
	_cleanup_free_ char *at = cli_ecs_time(json_object_get(p, "timestamp"));
	_cleanup_free_ char *cpu = pct_text(json_object_get(p, "cpuUtilization"));
	_cleanup_free_ char *mem = pct_text(json_object_get(p, "memoryUtilization"));
	_cleanup_free_ char *req = xasprintf("%.0f", json_number_value(json_object_get(p, "requestCount")));
	return json_pack("[s,s,s,s]", at, cpu, mem, req);
}

static const char *const SERVICE_HEADERS[] = { "SERVICE", "DESIRED", "RUNNING", "PENDING", "CPU", "MEMORY" };
static const char *const TASK_HEADERS[] = { "TASK", "SERVICE", "FAMILY",    "NODE",
					    "CPU",  "MEMORY",  "MEM USAGE", "NET RX / TX" };

/* --format json: the answer; another --format: the template per task. false: print the tables. */
static bool print_formatted(const struct ecs_cli *e, const json_t *out)
{
	if (cli_ecs_json(e))
		cli_ecs_print_json(out);
	else if (e->format)
		cli_ecs_print_items(e, TASK_HEADERS, ARRAY_SIZE(TASK_HEADERS), json_object_get(out, "tasks"),
				    task_row);
	return cli_ecs_json(e) || e->format;
}

static int describe(struct ecs_cli *e, json_t *in, json_t **out)
{
	if (cli_ecs_open(e) < 0)
		return -1;
	int r = cli_ecs_call(e, "BerthDescribeMetrics", in, true, out);
	return r;
}

int cli_cluster_top(int argc, char **argv)
{
	static const char *text =
	    "cluster top [OPTIONS]\n\nShow CPU and memory of the cluster, its services and "
	    "tasks (utilization in percent of their reservations, from the agents' latest "
	    "samples)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	_cleanup_json_ json_t *in = json_object(), *out = NULL;
	rc = 1;
	if (describe(&e, in, &out) == 0) {
		rc = 0;
		if (!print_formatted(&e, out)) {
			json_t *cm = json_object_get(out, "clusterMetrics");
			_cleanup_free_ char *cpu = pct_text(json_object_get(cm, "cpuUtilization"));
			_cleanup_free_ char *mem = pct_text(json_object_get(cm, "memoryUtilization"));
			printf("CLUSTER %s  CPU %s  MEMORY %s  RUNNING %lld  PENDING %lld\n\n",
			       json_string_value(json_object_get(out, "cluster")) ?: "", cpu, mem,
			       (long long)json_integer_value(json_object_get(cm, "runningCount")),
			       (long long)json_integer_value(json_object_get(cm, "pendingCount")));
			if (json_array_size(json_object_get(out, "services"))) {
				cli_ecs_print_items(&e, SERVICE_HEADERS, ARRAY_SIZE(SERVICE_HEADERS),
						    json_object_get(out, "services"), service_row);
				printf("\n");
			}
			cli_ecs_print_items(&e, TASK_HEADERS, ARRAY_SIZE(TASK_HEADERS),
					    json_object_get(out, "tasks"), task_row);
		}
	}
	cli_ecs_close(&e);
	return rc;
}

int cli_service_stats(int argc, char **argv)
{
	static const char *text =
	    "service stats [OPTIONS] SERVICE\n\nShow a service's CPU and memory utilization (percent of its "
	    "tasks' "
	    "reservations): now, per task, and the datapoints of the last periods (the server's "
	    "--metrics-period)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --periods N         datapoints to show (default 10, at most 30)\n" ECS_CLI_HELP_FORMAT
		ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_pack("{s:i}", "periods", 10), *out = NULL;
	const struct cli_opt t[] = { { "periods", 0, CLI_OPT_JSON_INT, in, "periods", 1, 30 }, { NULL } };
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth service stats\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	json_object_set_new(in, "service", json_string(argv[optind]));
	rc = 1;
	if (describe(&e, in, &out) == 0) {
		rc = 0;
		json_t *svc = json_array_get(json_object_get(out, "services"), 0);
		if (!print_formatted(&e, out)) {
			static const char *const ph[] = { "PERIOD START", "CPU", "MEMORY", "REQUESTS" };
			_cleanup_json_ json_t *one = json_pack("[O]", svc);
			cli_ecs_print_items(&e, SERVICE_HEADERS, ARRAY_SIZE(SERVICE_HEADERS), one,
					    service_row);
			printf("\n");
			cli_ecs_print_items(&e, TASK_HEADERS, ARRAY_SIZE(TASK_HEADERS),
					    json_object_get(out, "tasks"), task_row);
			printf("\n");
			cli_ecs_print_items(&e, ph, ARRAY_SIZE(ph), json_object_get(svc, "datapoints"),
					    point_row);
		}
	}
	cli_ecs_close(&e);
	return rc;
}
