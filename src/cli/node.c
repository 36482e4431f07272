/*
 * node.c - `berth node ls|inspect|drain|activate|rm`: the cluster's
 * container instances (ListContainerInstances, DescribeContainerInstances,
 * UpdateContainerInstancesState, DeregisterContainerInstance).
 */
#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/verbs.h"
#include "common/json.h"

static char *used_of(const json_t *n, const char *res)
{
	long long reg = ecs_resource(json_object_get(n, "registeredResources"), res);
	long long rem = ecs_resource(json_object_get(n, "remainingResources"), res);
	return xasprintf("%lld/%lld", rem, reg);
}

static json_t *node_row(const json_t *n)
{
	_cleanup_free_ char *cpu = used_of(n, "CPU"), *mem = used_of(n, "MEMORY");
	const char *az = ecs_attribute(json_object_get(n, "attributes"), "ecs.availability-zone");
	_cleanup_free_ char *running =
	    xasprintf("%lld", (long long)json_integer_value(json_object_get(n, "runningTasksCount")));
	return json_pack("[s,s,s,s,s,s,s]",
			 ecs_arn_id(json_string_value(json_object_get(n, "containerInstanceArn"))),
			 json_string_value(json_object_get(n, "status")) ?: "",
			 json_is_true(json_object_get(n, "agentConnected")) ? "true" : "false", running, cpu,
			 mem, az ? az : "");
}

struct ls_opts {
	json_t *in;
};

static int ls_opt(void *ctx, int ch, const char *arg)
{
	struct ls_opts *o = ctx;
	if (ch == 's')
		json_object_set_new(o->in, "status", json_string(arg));
	else if (ch == 'f')
		json_object_set_new(o->in, "filter", json_string(arg));
	else
		return -1;
	return 0;
}

static int node_ls(int argc, char **argv)
{
	static const struct option lo[] = { { "status", required_argument, NULL, 's' },
					    { "filter", required_argument, NULL, 'f' },
					    { NULL, 0, NULL, 0 } };
	static const char *text =
	    "node ls [OPTIONS]\n\nList the nodes (container instances) of a "
	    "cluster\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --status STATUS     ACTIVE or DRAINING (default: both)\n"
	    "      --filter EXPR       cluster query, e.g. 'attribute:ecs.availability-zone == "
	    "az1'\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_object();
	struct ls_opts o = { in };
	struct ecs_cli e = { 0 };
	int rc;
	if (!ecs_cli_parse(&e, argc, argv, NULL, lo, text, ls_opt, &o, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (ecs_cli_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *arns = NULL, *nodes = NULL;
	rc = 1;
	if (ecs_cli_list(&e, "ListContainerInstances", in, true, "containerInstanceArns", &arns) < 0)
		goto out;
	if (ecs_cli_json(&e)) {
		_cleanup_json_ json_t *j = json_pack("{s:O}", "containerInstanceArns", arns);
		ecs_cli_print_json(j);
		rc = 0;
		goto out;
	}
	if (ecs_cli_describe(&e, "DescribeContainerInstances", "containerInstances", "containerInstances",
			     arns, NULL, &nodes, NULL) < 0)
		goto out;
	static const char *const heads[] = { "ID",         "STATUS",        "AGENT", "RUNNING",
					     "CPU (free)", "MEMORY (free)", "ZONE" };
	ecs_cli_print_items(&e, heads, ARRAY_SIZE(heads), nodes, node_row);
	rc = 0;
out:
	ecs_cli_close(&e);
	return rc;
}

static void print_resources(const char *title, const json_t *n)
{
	printf("%s\n", title);
	const json_t *reg = json_object_get(n, "registeredResources");
	const json_t *rem = json_object_get(n, "remainingResources");
	size_t i;
	json_t *r;
	json_array_foreach (reg, i, r) {
		const char *name = json_string_value(json_object_get(r, "name")) ?: "";
		const char *type = json_string_value(json_object_get(r, "type")) ?: "";
		if (streq(type, "INTEGER"))
			printf("  %-10s %lld registered, %lld remaining\n", name,
			       (long long)json_integer_value(json_object_get(r, "integerValue")),
			       ecs_resource(rem, name));
		else if (streq(type, "STRINGSET")) {
			_cleanup_free_ char *s =
			    json_dumps(json_object_get(r, "stringSetValue"), JSON_COMPACT | JSON_ENCODE_ANY);
			printf("  %-10s %s\n", name, s ? s : "[]");
		}
	}
}

static void print_node(const json_t *n)
{
	printf("ID:              %s\n",
	       ecs_arn_id(json_string_value(json_object_get(n, "containerInstanceArn"))));
	printf("ARN:             %s\n", json_string_value(json_object_get(n, "containerInstanceArn")) ?: "");
	printf("Instance:        %s\n", json_string_value(json_object_get(n, "ec2InstanceId")) ?: "");
	printf("Status:          %s\n", json_string_value(json_object_get(n, "status")) ?: "");
	printf("Agent connected: %s\n",
	       json_is_true(json_object_get(n, "agentConnected")) ? "true" : "false");
	printf("Running tasks:   %lld\n",
	       (long long)json_integer_value(json_object_get(n, "runningTasksCount")));
	printf("Pending tasks:   %lld\n",
	       (long long)json_integer_value(json_object_get(n, "pendingTasksCount")));
	_cleanup_free_ char *at = ecs_time(json_object_get(n, "registeredAt"));
	printf("Registered at:   %s\n", at);
	print_resources("Resources:", n);
	printf("Attributes:\n");
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(n, "attributes"), i, a) {
		const char *v = json_string_value(json_object_get(a, "value"));
		printf("  %s%s%s\n", json_string_value(json_object_get(a, "name")) ?: "", v ? "=" : "",
		       v ? v : "");
	}
}

static int node_inspect(int argc, char **argv)
{
	static const char *text =
	    "node inspect [OPTIONS] NODE [NODE...]\n\nShow nodes: resources "
	    "(registered/remaining), attributes, agent connection, tasks\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
		ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!ecs_cli_parse(&e, argc, argv, NULL, NULL, text, NULL, NULL, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth node inspect\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (ecs_cli_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:[]}", "containerInstances"), *out = NULL;
	for (int i = optind; i < argc; i++)
		json_array_append_new(json_object_get(in, "containerInstances"), json_string(argv[i]));
	rc = 1;
	if (ecs_cli_call(&e, "DescribeContainerInstances", in, true, &out) == 0)
		rc = ecs_cli_print_described(&e, out, "containerInstances", print_node);
	ecs_cli_close(&e);
	return rc;
}

static int set_state(int argc, char **argv, const char *status, const char *text)
{
	struct ecs_cli e = { 0 };
	int rc;
	if (!ecs_cli_parse(&e, argc, argv, NULL, NULL, text, NULL, NULL, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth node %s\" requires at least 1 argument.\n", argv[0]);
		return cli_usage(text, false);
	}
	if (ecs_cli_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:[],s:s}", "containerInstances", "status", status),
			      *out = NULL;
	for (int i = optind; i < argc; i++)
		json_array_append_new(json_object_get(in, "containerInstances"), json_string(argv[i]));
	rc = 1;
	if (ecs_cli_call(&e, "UpdateContainerInstancesState", in, true, &out) == 0) {
		size_t i;
		json_t *n;
		if (ecs_cli_json(&e))
			ecs_cli_print_json(out);
		else
			json_array_foreach (json_object_get(out, "containerInstances"), i, n)
				printf("%s\n", ecs_arn_id(json_string_value(
						   json_object_get(n, "containerInstanceArn"))));
		rc = ecs_cli_print_failures(json_object_get(out, "failures")) ? 1 : 0;
	}
	ecs_cli_close(&e);
	return rc;
}

static int node_drain(int argc, char **argv)
{
	static const char *text =
	    "node drain [OPTIONS] NODE [NODE...]\n\nSet nodes DRAINING: no new tasks are "
	    "placed on them\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --format FORMAT     'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	return set_state(argc, argv, "DRAINING", text);
}

static int node_activate(int argc, char **argv)
{
	static const char *text =
	    "node activate [OPTIONS] NODE [NODE...]\n\nSet nodes ACTIVE again\n\n"
	    "Options:\n" ECS_CLI_HELP_CLUSTER
	    "      --format FORMAT     'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	return set_state(argc, argv, "ACTIVE", text);
}

static int rm_opt(void *ctx, int ch, const char *arg)
{
	(void)arg;
	if (ch != 'f')
		return -1;
	*(bool *)ctx = true;
	return 0;
}

static int node_rm(int argc, char **argv)
{
	static const struct option lo[] = { { "force", no_argument, NULL, 'f' }, { NULL, 0, NULL, 0 } };
	static const char *text =
	    "node rm [OPTIONS] NODE [NODE...]\n\nDeregister nodes from the cluster (their "
	    "certificates stop working)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "  -f, --force             deregister even with tasks running on the node\n"
	    "      --format FORMAT     'json': print the API's responses\n" ECS_CLI_HELP_COMMON;
	bool force = false;
	struct ecs_cli e = { 0 };
	int rc;
	if (!ecs_cli_parse(&e, argc, argv, "f", lo, text, rm_opt, &force, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth node rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (ecs_cli_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in =
		    json_pack("{s:s,s:b}", "containerInstance", argv[i], "force", force);
		_cleanup_json_ json_t *out = NULL;
		if (ecs_cli_call(&e, "DeregisterContainerInstance", in, true, &out) < 0) {
			rc = 1;
			continue;
		}
		if (ecs_cli_json(&e))
			ecs_cli_print_json(out);
		else
			printf("%s\n", argv[i]);
	}
	ecs_cli_close(&e);
	return rc;
}

int cli_node(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "activate", node_activate, "Set nodes ACTIVE" },
		{ "drain", node_drain, "Set nodes DRAINING (no new tasks)" },
		{ "inspect", node_inspect, "Show details of nodes" },
		{ "ls", node_ls, "List the nodes of a cluster" },
		{ "list", node_ls, NULL },
		{ "rm", node_rm, "Deregister nodes" },
		{ "remove", node_rm, NULL },
	};
	return ecs_cli_group("node", "Manage the nodes (container instances) of a cluster", verbs,
			     ARRAY_SIZE(verbs), argc, argv);
}
