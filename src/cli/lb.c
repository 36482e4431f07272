/*
 * lb.c - `berth lb create|ls|inspect|rm|attach|detach|drain|targets`: thin
 * clients of the server's load balancer operations (berth's own targets on
 * the ECS endpoint: BerthCreateLoadBalancer ... BerthDrainTargets; server/lb.c,
 * docs/lb.md).
 */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/fs.h"
#include "common/json.h"

#define HELP_CLUSTER "      --cluster NAME      the cluster whose nodes listen (default \"default\")\n"

static int pem_arg(const char *flag, const char *path, json_t *in, const char *key)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	if (fs_read_file_at(AT_FDCWD, path, 64 << 10, &sb, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fprintf(stderr, "berth: %s: %s\n", flag, m);
		return -1;
	}
	json_object_set_new(in, key, json_stringn(sb.buf, sb.len));
	return 0;
}

static int cert_arg(void *in, const char *path)
{
	return pem_arg("--tls-cert", path, in, "certificate");
}

static int key_arg(void *in, const char *path)
{
	return pem_arg("--tls-key", path, in, "privateKey");
}

static int lb_create(int argc, char **argv)
{
	static const char *text =
	    "lb create [OPTIONS] NAME --port PORT\n\nCreate a load balancer: a listener on PORT on every "
	    "node "
	    "of the cluster\nand its target group; prints the target group ARN (for CreateService\n"
	    "--load-balancers targetGroupArn=ARN,containerName=C,containerPort=P)\n\nOptions:\n"
	    "      --port PORT         listener port on every node (required)\n"
	    "      --protocol P        http (default) or tcp\n"
	    "      --health-path PATH  HTTP health check path (default /)\n"
	    "      --health-interval S seconds between health checks (default 5)\n"
	    "      --deregistration-delay S  seconds a target drains before its task stops (default 10)\n"
	    "      --tls-cert FILE     terminate TLS with this PEM certificate (needs --tls-key)\n"
	    "      --tls-key FILE      its PEM private key (stored by the server, never shown)\n" HELP_CLUSTER
	    "      --format FORMAT     'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_object(), *out = NULL;
	const struct cli_opt opts[] = {
		{ "port", 0, CLI_OPT_JSON_INT, in, "port", 1, 65535 },
		{ "protocol", 0, CLI_OPT_JSON_STR, in, "protocol" },
		{ "health-path", 0, CLI_OPT_JSON_STR, in, "healthCheckPath" },
		{ "health-interval", 0, CLI_OPT_JSON_INT, in, "healthCheckIntervalSeconds", 1, 300 },
		{ "deregistration-delay", 0, CLI_OPT_JSON_INT, in, "deregistrationDelay", 0, 3600 },
		{ "tls-cert", 0, CLI_OPT_CALL, in, .fn = cert_arg, .has_arg = true },
		{ "tls-key", 0, CLI_OPT_CALL, in, .fn = key_arg, .has_arg = true },
		{ 0 },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, opts, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth lb create\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	if (!json_object_get(in, "port")) {
		fprintf(stderr, "berth: --port is required\n");
		return cli_usage(text, false);
	}
	json_object_set_new(in, "name", json_string(argv[optind]));
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (cli_ecs_call(&e, "BerthCreateLoadBalancer", in, true, &out) == 0) {
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", json_string_value(json_object_get(json_object_get(out, "targetGroup"),
									 "targetGroupArn"))
					   ?: "");
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static json_t *lb_row(const json_t *l)
{
	char port[16];
	snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(json_object_get(l, "port")));
	return json_pack("[s,s,s,s,s,s]", json_string_value(json_object_get(l, "loadBalancerName")) ?: "",
			 json_string_value(json_object_get(l, "cluster")) ?: "", port,
			 json_string_value(json_object_get(l, "protocol")) ?: "",
			 json_is_true(json_object_get(l, "tls")) ? "yes" : "no",
			 json_string_value(json_object_get(l, "targetGroupArn")) ?: "");
}

static int lb_ls(int argc, char **argv)
{
	static const char *text =
	    "lb ls [OPTIONS]\n\nList load balancers\n\nOptions:\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_object(), *out = NULL;
	rc = 1;
	if (cli_ecs_call(&e, "BerthDescribeLoadBalancers", in, false, &out) == 0) {
		static const char *const heads[] = { "NAME",     "CLUSTER", "PORT",
						     "PROTOCOL", "TLS",     "TARGET GROUP" };
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads),
					    json_object_get(out, "loadBalancers"), lb_row);
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static void print_lb(const json_t *l)
{
	const json_t *tg = json_object_get(l, "targetGroup");
	printf("Name:                  %s\n",
	       json_string_value(json_object_get(l, "loadBalancerName")) ?: "");
	printf("ARN:                   %s\n", json_string_value(json_object_get(l, "loadBalancerArn")) ?: "");
	printf("Cluster:               %s\n", json_string_value(json_object_get(l, "cluster")) ?: "");
	printf("Listener:              %s :%lld%s\n", json_string_value(json_object_get(l, "protocol")) ?: "",
	       (long long)json_integer_value(json_object_get(l, "port")),
	       json_is_true(json_object_get(l, "tls")) ? " (TLS)" : "");
	printf("Target group:          %s\n", json_string_value(json_object_get(tg, "targetGroupArn")) ?: "");
	if (json_object_get(tg, "healthCheckPath"))
		printf("Health check:          GET %s every %llds\n",
		       json_string_value(json_object_get(tg, "healthCheckPath")),
		       (long long)json_integer_value(json_object_get(tg, "healthCheckIntervalSeconds")));
	printf("Deregistration delay:  %llds\n",
	       (long long)json_integer_value(json_object_get(tg, "deregistrationDelay")));
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(l, "attachments"), i, a)
		printf("Attached:              service %s (cluster %s) container %s port %lld\n",
		       json_string_value(json_object_get(a, "serviceName")) ?: "",
		       json_string_value(json_object_get(a, "cluster")) ?: "",
		       json_string_value(json_object_get(a, "containerName")) ?: "-",
		       (long long)json_integer_value(json_object_get(a, "containerPort")));
}

static int lb_inspect(int argc, char **argv)
{
	static const char *text =
	    "lb inspect [OPTIONS] NAME [NAME...]\n\nShow load balancers: listener, target "
	    "group, attached services\n\nOptions:\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth lb inspect\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:[]}", "names"), *out = NULL;
	for (int i = optind; i < argc; i++)
		json_array_append_new(json_object_get(in, "names"), json_string(argv[i]));
	rc = 1;
	if (cli_ecs_call(&e, "BerthDescribeLoadBalancers", in, false, &out) == 0)
		rc = cli_ecs_print_described(&e, out, "loadBalancers", print_lb);
	cli_ecs_close(&e);
	return rc;
}

static int lb_rm(int argc, char **argv)
{
	static const char *text = "lb rm [OPTIONS] NAME [NAME...]\n\nDelete load balancers (refused while a "
				  "service uses the target group)\n\nOptions:\n" ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth lb rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in = json_pack("{s:s}", "name", argv[i]), *out = NULL;
		if (cli_ecs_call(&e, "BerthDeleteLoadBalancer", in, false, &out) < 0)
			rc = 1;
		else
			printf("%s\n", argv[i]);
	}
	cli_ecs_close(&e);
	return rc;
}

/* attach, detach and drain: NAME plus flags (and tasks for drain). */
static int lb_simple(int argc, char **argv, const char *op, const char *text, bool tasks)
{
	_cleanup_json_ json_t *in = json_object(), *out = NULL;
	const struct cli_opt opts[] = {
		{ "service", 0, CLI_OPT_JSON_STR, in, "serviceName" },
		{ "container", 0, CLI_OPT_JSON_STR, in, "containerName" },
		{ "port", 0, CLI_OPT_JSON_INT, in, "containerPort", 1, 65535 },
		{ "stop", 0, CLI_OPT_JSON_TRUE, in, "stop" },
		{ 0 },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, opts, text, &rc))
		return rc;
	if (tasks ? optind + 2 > argc : optind + 1 != argc) {
		fprintf(stderr, "\"berth lb %s\" requires %s.\n", argv[0],
			tasks ? "a load balancer and tasks" : "exactly 1 argument");
		return cli_usage(text, false);
	}
	if (!tasks && !json_object_get(in, "serviceName")) {
		fprintf(stderr, "berth: --service is required\n");
		return cli_usage(text, false);
	}
	bool stop = json_is_true(json_object_get(in, "stop"));
	json_object_del(in, "stop");
	json_object_set_new(in, "name", json_string(argv[optind]));
	if (tasks) {
		json_t *list = json_array();
		for (int i = optind + 1; i < argc; i++)
			json_array_append_new(list, json_string(argv[i]));
		json_object_set_new(in, "tasks", list);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (cli_ecs_call(&e, op, in, true, &out) == 0) {
		rc = 0;
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else if (!tasks)
			printf("%s\n", json_string_value(
					   json_object_get(json_object_get(out, "attachment"), "serviceName"))
					   ?: "");
	}
	if (rc == 0 && tasks) {
		/* the deregistration delay, then StopTask: what the service controller does */
		json_int_t delay = json_integer_value(json_object_get(out, "deregistrationDelay"));
		size_t i;
		json_t *t;
		if (stop && delay > 0) {
			struct timespec ts = { .tv_sec = (time_t)delay };
			nanosleep(&ts, NULL);
		}
		json_array_foreach (json_object_get(out, "tasks"), i, t) {
			const char *arn = json_string_value(json_object_get(t, "taskArn"));
			if (!cli_ecs_json(&e))
				printf("%s\n", arn ?: "");
			_cleanup_json_ json_t *sin = json_pack("{s:s,s:s}", "task", arn ?: "", "reason",
							       "Drained from load balancer"),
					      *sout = NULL;
			if (stop && cli_ecs_call(&e, "StopTask", sin, true, &sout) < 0)
				rc = 1;
		}
	}
	cli_ecs_close(&e);
	return rc;
}

static int lb_attach(int argc, char **argv)
{
	static const char *text =
	    "lb attach [OPTIONS] NAME --service SERVICE --port PORT\n\nMake the tasks of a service (group "
	    "service:SERVICE) targets of the load balancer\n(as CreateService --load-balancers "
	    "does)\n\nOptions:\n"
	    "      --service NAME      the service (tasks run with --group service:NAME)\n"
	    "      --container NAME    the container receiving the traffic\n"
	    "      --port PORT         its containerPort\n" HELP_CLUSTER
	    "      --format FORMAT     'json'\n" ECS_CLI_HELP_COMMON;
	return lb_simple(argc, argv, "BerthAttachLoadBalancer", text, false);
}

static int lb_detach(int argc, char **argv)
{
	static const char *text = "lb detach [OPTIONS] NAME --service SERVICE\n\nUndo lb attach\n\nOptions:\n"
				  "      --service NAME      the service\n" HELP_CLUSTER ECS_CLI_HELP_COMMON;
	return lb_simple(argc, argv, "BerthDetachLoadBalancer", text, false);
}

static int lb_drain(int argc, char **argv)
{
	static const char *text =
	    "lb drain [OPTIONS] NAME TASK [TASK...]\n\nTake tasks out of the load balancer's rotation (no "
	    "new "
	    "connections; open\nones finish) and out of service discovery\n\nOptions:\n"
	    "      --stop              then wait the deregistration delay and stop them\n" HELP_CLUSTER
	    "      --format FORMAT     'json'\n" ECS_CLI_HELP_COMMON;
	return lb_simple(argc, argv, "BerthDrainTargets", text, true);
}

static json_t *target_row(const json_t *d)
{
	const json_t *t = json_object_get(d, "target");
	char port[16] = "";
	if (json_object_get(t, "port"))
		snprintf(port, sizeof(port), "%lld",
			 (long long)json_integer_value(json_object_get(t, "port")));
	const json_t *th = json_object_get(d, "targetHealth");
	return json_pack("[s,s,s,s,s,s]", cli_ecs_arn_id(json_string_value(json_object_get(t, "id")) ?: ""),
			 json_string_value(json_object_get(d, "serviceName")) ?: "",
			 json_string_value(json_object_get(t, "ip")) ?: "", port,
			 json_string_value(json_object_get(th, "state")) ?: "",
			 json_string_value(json_object_get(th, "description")) ?: "");
}

static int lb_targets(int argc, char **argv)
{
	static const char *text =
	    "lb targets [OPTIONS] NAME\n\nList the load balancer's targets: tasks, "
	    "addresses, state (healthy, draining,\ninitial, unhealthy) as the nodes' HAProxy health checks "
	    "see them, and why\n\nOptions:\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth lb targets\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:s}", "name", argv[optind]), *out = NULL;
	rc = 1;
	if (cli_ecs_call(&e, "BerthDescribeTargetHealth", in, false, &out) == 0) {
		static const char *const heads[] = { "TASK", "SERVICE", "IP", "PORT", "STATE", "REASON" };
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads),
					    json_object_get(out, "targetHealthDescriptions"), target_row);
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

int cli_lb(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "create", lb_create, "Create a load balancer (prints its target group ARN)" },
		{ "inspect", lb_inspect, "Show details of load balancers" },
		{ "ls", lb_ls, "List load balancers" },
		{ "list", lb_ls, NULL },
		{ "rm", lb_rm, "Delete load balancers" },
		{ "remove", lb_rm, NULL },
		{ "attach", lb_attach, "Make a service's tasks targets" },
		{ "detach", lb_detach, "Undo attach" },
		{ "drain", lb_drain, "Drain tasks out of rotation (and stop them with --stop)" },
		{ "targets", lb_targets, "List targets and their state" },
	};
	return cli_ecs_group("lb", "Manage load balancers (HAProxy on every node of a cluster)", verbs,
			     ARRAY_SIZE(verbs), argc, argv);
}
