/*
 * service.c - `berth service create|update|ls|inspect|ps|rm` over the ECS
 * service calls (CreateService, UpdateService, ListServices,
 * DescribeServices, ListTasks, DeleteService). Thin: the server's controller
 * does the work; `--wait` polls DescribeServices until the service is stable
 * as boto3's services_stable waiter defines it (one deployment, runningCount
 * == desiredCount).
 */
#include <time.h>

#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

#define WAIT_DEFAULT_SECONDS 600
#define WAIT_INTERVAL_MS     500

struct svc_opts {
	json_t *in;
	json_t *dc; /* deploymentConfiguration */
	bool wait;
};

static int add_kv(json_t *in, const char *key, const char *flag, const char *arg, const char *const *allowed)
{
	json_t *o = cli_ecs_parse_kv(flag, arg, allowed);
	if (!o)
		return -1;
	json_t *port = json_object_get(o, "containerPort");
	if (port) {
		long p;
		if (cli_ecs_parse_long("containerPort", json_string_value(port), 1, 65535, &p) < 0) {
			json_decref(o);
			return -1;
		}
		json_object_set_new(o, "containerPort", json_integer(p));
	}
	cli_ecs_append(in, key, o);
	return 0;
}

static int svc_daemon(void *in, const char *arg)
{
	json_object_set_new(in, "schedulingStrategy", json_string("DAEMON"));
	return 0;
}

static int svc_circuit_breaker(void *dc, const char *arg)
{
	if (arg && !streq(arg, "rollback") && !streq(arg, "no-rollback")) {
		fprintf(stderr, "berth: invalid --circuit-breaker '%s': rollback or no-rollback\n", arg);
		return -1;
	}
	json_object_set_new(dc, "deploymentCircuitBreaker",
			    json_pack("{s:b,s:b}", "enable", 1, "rollback", !arg || streq(arg, "rollback")));
	return 0;
}

/* --placement-constraint, --placement-strategy, --load-balancer: K=V lists appended to o->dest[o->key]. */
static int svc_kv(const struct cli_opt *o, const char *arg)
{
	static const char *const constraint_keys[] = { "type", "expression", NULL };
	static const char *const strategy_keys[] = { "type", "field", NULL };
	static const char *const lb_keys[] = { "targetGroupArn", "containerName", "containerPort", NULL };
	const char *const *allowed = streq(o->key, "placementConstraints") ? constraint_keys
				     : streq(o->key, "placementStrategy")  ? strategy_keys
									   : lb_keys;
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	return add_kv(o->dest, o->key, flag, arg, allowed);
}

/* berth's extensions (docs/scheduler.md): in["berthScheduling"] */
static int svc_scheduling(const struct cli_opt *o, const char *arg)
{
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	long n;
	if (cli_ecs_parse_long(flag, arg, o->min, o->max, &n) < 0)
		return -1;
	bool rebalance = streq(o->key, "rebalance");
	if (!json_object_get(o->dest, "berthScheduling"))
		json_object_set_new(o->dest, "berthScheduling", json_object());
	json_object_set_new(
	    json_object_get(o->dest, "berthScheduling"), o->key,
	    rebalance ? json_pack("{s:b,s:I}", "enabled", n > 0, "maxMoves", (json_int_t)(n > 0 ? n : 1))
		      : json_pack("{s:I}", "maxUnavailable", (json_int_t)n));
	return 0;
}

#define SVC_ENTRY(name, dest, key, fn, min, max)                                                         \
	{                                                                                                \
		(name), 0, CLI_OPT_ENTRY, (dest), (key), (min), (max), .entry_fn = (fn), .has_arg = true \
	}
/* The options create and update share, over struct svc_opts o; ends without the { NULL } entry. */
#define SVC_OPTIONS(o)                                                                                       \
	{ "task-definition", 0, CLI_OPT_JSON_STR, (o).in, "taskDefinition" },                                \
	    SVC_ENTRY("desired-count", (o).in, "desiredCount", cli_ecs_opt_long, 0, 100000),                 \
	    SVC_ENTRY("max-percent", (o).dc, "maximumPercent", cli_ecs_opt_long, 0, 2000),                   \
	    SVC_ENTRY("min-healthy-percent", (o).dc, "minimumHealthyPercent", cli_ecs_opt_long, 0, 2000),    \
	    { "circuit-breaker", 0, CLI_OPT_CALL, (o).dc, .fn = svc_circuit_breaker, .optional_arg = true }, \
	    SVC_ENTRY("placement-constraint", (o).in, "placementConstraints", svc_kv, 0, 0),                 \
	    SVC_ENTRY("placement-strategy", (o).in, "placementStrategy", svc_kv, 0, 0),                      \
	    SVC_ENTRY("load-balancer", (o).in, "loadBalancers", svc_kv, 0, 0),                               \
	    SVC_ENTRY("health-check-grace-period", (o).in, "healthCheckGracePeriodSeconds",                  \
		      cli_ecs_opt_long, 0, 2147483647),                                                      \
	    SVC_ENTRY("rebalance", (o).in, "rebalance", svc_scheduling, 0, 100),                             \
	    SVC_ENTRY("disruption-budget", (o).in, "disruptionBudget", svc_scheduling, 0, 1000000),          \
	{                                                                                                    \
		"wait", 0, CLI_OPT_FLAG, &(o).wait                                                           \
	}

#define SVC_HELP                                                                                           \
	"      --task-definition TD          FAMILY[:REVISION] or ARN\n"                                   \
	"      --desired-count N             tasks to keep running\n"                                      \
	"      --max-percent P               at most P% of the desired count during a deployment (200)\n"  \
	"      --min-healthy-percent P       at least P%% kept healthy during a deployment (100)\n"        \
	"      --circuit-breaker[=rollback|no-rollback]  fail (and roll back) crash-looping deployments\n" \
	"      --placement-constraint type=distinctInstance|memberOf[,expression=EXPR]  (repeatable)\n"    \
	"      --placement-strategy type=spread|binpack|random[,field=FIELD]            (repeatable)\n"    \
	"      --load-balancer targetGroupArn=ARN,containerName=C,containerPort=P       (repeatable)\n"    \
	"      --health-check-grace-period SEC  ignore failing health checks this long after a start\n"    \
	"      --rebalance N                 restore spread/binpack after joins, drains, scale-ins,\n"     \
	"                                    moving at most N tasks at a time (0: off, the default)\n"     \
	"      --disruption-budget N         preemption stops at most N of its tasks (maxUnavailable)\n"   \
	"      --wait                        wait until the service is stable\n"

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Poll until one deployment and runningCount == desiredCount (boto3's services_stable). */
static int wait_stable(struct ecs_cli *e, const char *name)
{
	double deadline = now_mono() + WAIT_DEFAULT_SECONDS;
	while (now_mono() < deadline) {
		_cleanup_json_ json_t *in = json_pack("{s:[s]}", "services", name), *out = NULL;
		if (cli_ecs_call(e, "DescribeServices", in, true, &out) < 0)
			return -1;
		json_t *s = json_array_get(json_object_get(out, "services"), 0);
		const char *status = json_string_value(json_object_get(s, "status"));
		if (!s || !streq_ptr(status, "ACTIVE")) {
			fprintf(stderr, "berth: service '%s' is %s\n", name, s ? status : "MISSING");
			return -1;
		}
		if (json_array_size(json_object_get(s, "deployments")) == 1 &&
		    json_integer_value(json_object_get(s, "runningCount")) ==
			json_integer_value(json_object_get(s, "desiredCount")))
			return 0;
		struct timespec ts = { 0, WAIT_INTERVAL_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "berth: service '%s' was not stable within %d s\n", name, WAIT_DEFAULT_SECONDS);
	return -1;
}

/* create/update: build the request, call op, print the service name (or JSON), --wait. */
static int svc_write(int argc, char **argv, bool create, const char *text)
{
	_cleanup_json_ json_t *in = json_object(), *dc = json_object(), *out = NULL;
	struct svc_opts o = { .in = in, .dc = dc };
	const struct cli_opt t_create[] = {
		SVC_OPTIONS(o),
		{ "daemon", 0, CLI_OPT_CALL, in, .fn = svc_daemon },
		{ NULL },
	};
	const struct cli_opt t_update[] = {
		SVC_OPTIONS(o),
		{ "force-new-deployment", 0, CLI_OPT_JSON_TRUE, in, "forceNewDeployment" },
		{ NULL },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, create ? t_create : t_update, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth service %s\" requires exactly 1 argument.\n",
			create ? "create" : "update");
		return cli_usage(text, false);
	}
	const char *name = argv[optind];
	json_object_set_new(in, create ? "serviceName" : "service", json_string(name));
	if (json_object_size(dc))
		json_object_set(in, "deploymentConfiguration", dc);
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (cli_ecs_call(&e, create ? "CreateService" : "UpdateService", in, true, &out) == 0 &&
	    (!o.wait || wait_stable(&e, name) == 0)) {
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", name);
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static int service_create(int argc, char **argv)
{
	static const char *text =
	    "service create [OPTIONS] NAME\n\nCreate a service: keep tasks of a task "
	    "definition running, spread over zones and nodes\n\nOptions:\n" ECS_CLI_HELP_CLUSTER SVC_HELP
	    "      --daemon                      one task on every node (DAEMON)\n"
	    "      --format FORMAT               'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	return svc_write(argc, argv, true, text);
}

static int service_update(int argc, char **argv)
{
	static const char *text =
	    "service update [OPTIONS] NAME\n\nScale a service or roll it out to a new task definition\n\n"
	    "Options:\n" ECS_CLI_HELP_CLUSTER SVC_HELP
	    "      --force-new-deployment        replace every task even without a change\n"
	    "      --format FORMAT               'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	return svc_write(argc, argv, false, text);
}

static json_t *service_row(const json_t *s)
{
	_cleanup_free_ char *td =
	    cli_ecs_taskdef_name(json_string_value(json_object_get(s, "taskDefinition")) ?: "");
	_cleanup_free_ char *counts =
	    xasprintf("%lld/%lld", (long long)json_integer_value(json_object_get(s, "runningCount")),
		      (long long)json_integer_value(json_object_get(s, "desiredCount")));
	json_t *d = json_array_get(json_object_get(s, "deployments"), 0);
	return json_pack("[s,s,s,s,s,s]", json_string_value(json_object_get(s, "serviceName")) ?: "",
			 json_string_value(json_object_get(s, "status")) ?: "",
			 json_string_value(json_object_get(s, "schedulingStrategy")) ?: "", counts, td,
			 json_string_value(json_object_get(d, "rolloutState")) ?: "");
}

/* DescribeServices of arns in batches of 10 (its limit). */
static int describe_all(struct ecs_cli *e, json_t *arns, json_t **ret)
{
	json_t *all = json_array();
	for (size_t i = 0; i < json_array_size(arns); i += 10) {
		_cleanup_json_ json_t *in = json_pack("{s:[]}", "services"), *out = NULL;
		for (size_t k = i; k < i + 10 && k < json_array_size(arns); k++)
			json_array_append(json_object_get(in, "services"), json_array_get(arns, k));
		if (cli_ecs_call(e, "DescribeServices", in, true, &out) < 0) {
			json_decref(all);
			return -1;
		}
		json_array_extend(all, json_object_get(out, "services"));
	}
	*ret = all;
	return 0;
}

static int service_ls(int argc, char **argv)
{
	static const char *text =
	    "service ls [OPTIONS]\n\nList the services of a cluster\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
		ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_object(), *arns = NULL, *svcs = NULL;
	rc = 1;
	if (cli_ecs_list(&e, "ListServices", in, true, "serviceArns", &arns) == 0) {
		if (cli_ecs_json(&e)) {
			_cleanup_json_ json_t *o = json_pack("{s:O}", "serviceArns", arns);
			cli_ecs_print_json(o);
			rc = 0;
		} else if (describe_all(&e, arns, &svcs) == 0) {
			static const char *const heads[] = { "NAME",  "STATUS",          "MODE",
							     "TASKS", "TASK DEFINITION", "ROLLOUT" };
			cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), svcs, service_row);
			rc = 0;
		}
	}
	cli_ecs_close(&e);
	return rc;
}

static void print_service(const json_t *s)
{
	static const char *const keys[][2] = {
		{ "Name:", "serviceName" },
		{ "ARN:", "serviceArn" },
		{ "Status:", "status" },
		{ "Mode:", "schedulingStrategy" },
		{ "Task definition:", "taskDefinition" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		printf("%-16s %s\n", keys[i][0], json_string_value(json_object_get(s, keys[i][1])) ?: "");
	printf("%-16s %lld desired, %lld running, %lld pending\n",
	       "Tasks:", (long long)json_integer_value(json_object_get(s, "desiredCount")),
	       (long long)json_integer_value(json_object_get(s, "runningCount")),
	       (long long)json_integer_value(json_object_get(s, "pendingCount")));
	json_t *ext = json_object_get(s, "berthScheduling"), *rb = json_object_get(ext, "rebalance");
	if (json_is_true(json_object_get(rb, "enabled")))
		printf("%-16s on, at most %lld tasks at a time\n",
		       "Rebalance:", (long long)json_integer_value(json_object_get(rb, "maxMoves")));
	if (json_object_get(ext, "disruptionBudget"))
		printf("%-16s maxUnavailable %lld\n", "Disruption:",
		       (long long)json_integer_value(
			   json_object_get(json_object_get(ext, "disruptionBudget"), "maxUnavailable")));
	printf("Deployments:\n");
	static const char *const heads[] = { "  ID",    "STATUS", "TASK DEFINITION", "DESIRED",
					     "RUNNING", "FAILED", "ROLLOUT" };
	_cleanup_json_ json_t *rows = json_array();
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(s, "deployments"), i, d) {
		_cleanup_free_ char *id =
		    xasprintf("  %s", json_string_value(json_object_get(d, "id")) ?: "");
		_cleanup_free_ char *td =
		    cli_ecs_taskdef_name(json_string_value(json_object_get(d, "taskDefinition")) ?: "");
		_cleanup_free_ char *n1 =
		    xasprintf("%lld", (long long)json_integer_value(json_object_get(d, "desiredCount")));
		_cleanup_free_ char *n2 =
		    xasprintf("%lld", (long long)json_integer_value(json_object_get(d, "runningCount")));
		_cleanup_free_ char *n3 =
		    xasprintf("%lld", (long long)json_integer_value(json_object_get(d, "failedTasks")));
		json_array_append_new(
		    rows,
		    json_pack("[s,s,s,s,s,s,s]", id, json_string_value(json_object_get(d, "status")) ?: "",
			      td, n1, n2, n3, json_string_value(json_object_get(d, "rolloutState")) ?: ""));
	}
	cli_print_table(heads, ARRAY_SIZE(heads), rows);
	printf("Events:\n");
	json_array_foreach (json_object_get(s, "events"), i, d) {
		if (i == 5)
			break;
		_cleanup_free_ char *t = cli_ecs_time(json_object_get(d, "createdAt"));
		printf("  %s  %s\n", t, json_string_value(json_object_get(d, "message")) ?: "");
	}
}

static int service_inspect(int argc, char **argv)
{
	static const char *text =
	    "service inspect [OPTIONS] NAME [NAME...]\n\nShow services (at most 10): "
	    "counts, deployments, the latest events\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT
		ECS_CLI_HELP_COMMON;
	static const struct ecs_inspect how = { "service inspect", "DescribeServices", "services", true,
						print_service };
	return cli_ecs_inspect(argc, argv, text, &how);
}

static json_t *task_row(const json_t *t)
{
	_cleanup_free_ char *td =
	    cli_ecs_taskdef_name(json_string_value(json_object_get(t, "taskDefinitionArn")) ?: "");
	return json_pack("[s,s,s,s,s,s]", cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn"))),
			 td, json_string_value(json_object_get(t, "lastStatus")) ?: "",
			 json_string_value(json_object_get(t, "healthStatus")) ?: "",
			 json_string_value(json_object_get(t, "availabilityZone")) ?: "",
			 cli_ecs_arn_id(json_string_value(json_object_get(t, "containerInstanceArn"))));
}

static int service_ps(int argc, char **argv)
{
	static const char *text =
	    "service ps [OPTIONS] NAME\n\nList the running tasks of a "
	    "service\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth service ps\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:s}", "serviceName", argv[optind]), *arns = NULL,
			      *tasks = NULL;
	rc = 1;
	if (cli_ecs_list(&e, "ListTasks", in, true, "taskArns", &arns) == 0 &&
	    cli_ecs_describe(&e, "DescribeTasks", "tasks", "tasks", arns, NULL, &tasks, NULL) == 0) {
		static const char *const heads[] = { "TASK ID",     "TASK DEFINITION",
						     "LAST STATUS", "HEALTH",
						     "ZONE",        "NODE" };
		if (cli_ecs_json(&e)) {
			_cleanup_json_ json_t *o = json_pack("{s:O}", "tasks", tasks);
			cli_ecs_print_json(o);
		} else {
			cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), tasks, task_row);
		}
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static int service_rm(int argc, char **argv)
{
	static const char *text =
	    "service rm [OPTIONS] NAME [NAME...]\n\nDelete services (their tasks are "
	    "stopped)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "  -f, --force               delete even when scaled above 0\n" ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *opts = json_object();
	const struct cli_opt t[] = { { "force", 'f', CLI_OPT_JSON_TRUE, opts, "force" }, { NULL } };
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth service rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in = json_deep_copy(opts), *out = NULL;
		json_object_set_new(in, "service", json_string(argv[i]));
		if (cli_ecs_call(&e, "DeleteService", in, true, &out) < 0)
			rc = 1;
		else
			printf("%s\n", argv[i]);
	}
	cli_ecs_close(&e);
	return rc;
}

int cli_service(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "create", service_create, "Create a service" },
		{ "inspect", service_inspect, "Show details of services" },
		{ "ls", service_ls, "List services" },
		{ "list", service_ls, NULL },
		{ "ps", service_ps, "List the tasks of a service" },
		{ "rm", service_rm, "Delete services" },
		{ "stats", cli_service_stats, "Show the CPU and memory of a service and its tasks" },
		{ "update", service_update, "Scale or redeploy a service" },
	};
	return cli_ecs_group("service", "Manage services (tasks kept running, deployed and scaled)", verbs,
			     ARRAY_SIZE(verbs), argc, argv);
}
