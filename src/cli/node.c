/*
 * node.c - `berth node ls|inspect|drain|activate|rm|taint`: the cluster's
 * container instances (ListContainerInstances, DescribeContainerInstances,
 * UpdateContainerInstancesState, DeregisterContainerInstance; taints as
 * berth:taint:KEY attributes with Put/DeleteAttributes; `inspect --why`
 * with BerthExplainPlacement).
 */
#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

static char *used_of(const json_t *n, const char *res)
{
	long long reg = cli_ecs_resource(json_object_get(n, "registeredResources"), res);
	long long rem = cli_ecs_resource(json_object_get(n, "remainingResources"), res);
	return xasprintf("%lld/%lld", rem, reg);
}

static json_t *node_row(const json_t *n)
{
	_cleanup_free_ char *cpu = used_of(n, "CPU"), *mem = used_of(n, "MEMORY");
	const char *az = cli_ecs_attribute(json_object_get(n, "attributes"), "ecs.availability-zone");
	_cleanup_free_ char *running =
	    xasprintf("%lld", (long long)json_integer_value(json_object_get(n, "runningTasksCount")));
	return json_pack("[s,s,s,s,s,s,s]",
			 cli_ecs_arn_id(json_string_value(json_object_get(n, "containerInstanceArn"))),
			 json_string_value(json_object_get(n, "status")) ?: "",
			 json_is_true(json_object_get(n, "agentConnected")) ? "true" : "false", running, cpu,
			 mem, az ? az : "");
}

static int node_ls(int argc, char **argv)
{
	static const char *text =
	    "node ls [OPTIONS]\n\nList the nodes (container instances) of a "
	    "cluster\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --status STATUS     ACTIVE or DRAINING (default: both)\n"
	    "      --filter EXPR       cluster query, e.g. 'attribute:ecs.availability-zone == "
	    "az1'\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_object();
	const struct cli_opt opts[] = {
		{ "status", 0, CLI_OPT_JSON_STR, in, "status" },
		{ "filter", 0, CLI_OPT_JSON_STR, in, "filter" },
		{ 0 },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, opts, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *arns = NULL, *nodes = NULL;
	rc = 1;
	if (cli_ecs_list(&e, "ListContainerInstances", in, true, "containerInstanceArns", &arns) < 0)
		goto out;
	if (cli_ecs_json(&e)) {
		_cleanup_json_ json_t *j = json_pack("{s:O}", "containerInstanceArns", arns);
		cli_ecs_print_json(j);
		rc = 0;
		goto out;
	}
	if (cli_ecs_describe(&e, "DescribeContainerInstances", "containerInstances", "containerInstances",
			     arns, NULL, &nodes, NULL) < 0)
		goto out;
	static const char *const heads[] = { "ID",         "STATUS",        "AGENT", "RUNNING",
					     "CPU (free)", "MEMORY (free)", "ZONE" };
	cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), nodes, node_row);
	rc = 0;
out:
	cli_ecs_close(&e);
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
			       cli_ecs_resource(rem, name));
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
	       cli_ecs_arn_id(json_string_value(json_object_get(n, "containerInstanceArn"))));
	printf("ARN:             %s\n", json_string_value(json_object_get(n, "containerInstanceArn")) ?: "");
	printf("Instance:        %s\n", json_string_value(json_object_get(n, "ec2InstanceId")) ?: "");
	printf("Status:          %s\n", json_string_value(json_object_get(n, "status")) ?: "");
	printf("Agent connected: %s\n",
	       json_is_true(json_object_get(n, "agentConnected")) ? "true" : "false");
	printf("Running tasks:   %lld\n",
	       (long long)json_integer_value(json_object_get(n, "runningTasksCount")));
	printf("Pending tasks:   %lld\n",
	       (long long)json_integer_value(json_object_get(n, "pendingTasksCount")));
	_cleanup_free_ char *at = cli_ecs_time(json_object_get(n, "registeredAt"));
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

struct inspect_opts {
	const char *why, *group;
};

/* `node inspect --why TASKDEF`: BerthExplainPlacement per node. */
static int explain_nodes(struct ecs_cli *e, const struct inspect_opts *o, int argc, char **argv)
{
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in = json_pack("{s:s,s:s}", "taskDefinition", o->why,
						      "containerInstance", argv[i]),
				      *out = NULL;
		if (o->group)
			json_object_set_new(in, "group", json_string(o->group));
		if (cli_ecs_call(e, "BerthExplainPlacement", in, true, &out) < 0) {
			rc = 1;
			continue;
		}
		if (cli_ecs_json(e)) {
			cli_ecs_print_json(out);
			continue;
		}
		bool ok = json_is_true(json_object_get(out, "feasible"));
		printf("%s: %s%s\n", argv[i], ok ? "" : "not feasible: ",
		       json_string_value(json_object_get(out, "explanation")) ?: "");
	}
	return rc;
}

static int node_inspect(int argc, char **argv)
{
	static const char *text =
	    "node inspect [OPTIONS] NODE [NODE...]\n\nShow nodes: resources "
	    "(registered/remaining), attributes, agent connection, tasks; with --why, whether\n"
	    "a task definition could be placed on each node and, if not, every filter that\n"
	    "rejects it (\"why not this node\")\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --why TASKDEF       explain the placement of TASKDEF (family[:revision] or ARN)\n"
	    "      --group GROUP       the task group --why places (default family:FAMILY; a service's\n"
	    "                          is service:NAME)\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct inspect_opts o = { 0 };
	const struct cli_opt opts[] = {
		{ "why", 0, CLI_OPT_STRING, &o.why },
		{ "group", 0, CLI_OPT_STRING, &o.group },
		{ 0 },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, opts, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth node inspect\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (o.group && !o.why) {
		fprintf(stderr, "berth: --group needs --why\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (o.why) {
		rc = explain_nodes(&e, &o, argc, argv);
		cli_ecs_close(&e);
		return rc;
	}
	_cleanup_json_ json_t *in = json_pack("{s:[]}", "containerInstances"), *out = NULL;
	for (int i = optind; i < argc; i++)
		json_array_append_new(json_object_get(in, "containerInstances"), json_string(argv[i]));
	if (cli_ecs_call(&e, "DescribeContainerInstances", in, true, &out) == 0)
		rc = cli_ecs_print_described(&e, out, "containerInstances", print_node);
	cli_ecs_close(&e);
	return rc;
}

/*
 * One `node taint` operand: KEY=VALUE:EFFECT or KEY:EFFECT (set), KEY- or
 * KEY:EFFECT- (remove). Fills the attribute; false with a message when bad.
 */
static bool taint_attr(const char *arg, const char *node, json_t **ret, bool *ret_remove)
{
	size_t n = strlen(arg);
	bool remove = n > 0 && arg[n - 1] == '-';
	_cleanup_free_ char *s = xstrndup(arg, remove ? n - 1 : n);
	char *colon = strrchr(s, ':'), *eq = strchr(s, '=');
	const char *effect = colon ? colon + 1 : NULL;
	if (colon)
		*colon = '\0';
	if (eq)
		*eq = '\0';
	bool effect_ok = effect && (streq(effect, "NoSchedule") || streq(effect, "PreferNoSchedule") ||
				    streq(effect, "NoExecute"));
	if (!*s || (effect && !effect_ok) || (!remove && !effect) || (remove && eq)) {
		fprintf(stderr,
			"berth: invalid taint '%s': expected KEY=VALUE:EFFECT or KEY:EFFECT to set, KEY- to "
			"remove (EFFECT: NoSchedule, PreferNoSchedule, NoExecute)\n",
			arg);
		return false;
	}
	_cleanup_free_ char *name = xasprintf("berth:taint:%s", s);
	*ret = json_pack("{s:s,s:s,s:s}", "name", name, "targetType", "container-instance", "targetId", node);
	if (!remove) {
		_cleanup_free_ char *value = xasprintf("%s:%s", eq ? eq + 1 : "", effect);
		json_object_set_new(*ret, "value", json_string(value));
	}
	*ret_remove = remove;
	return true;
}

static int node_taint(int argc, char **argv)
{
	static const char *text =
	    "node taint [OPTIONS] NODE TAINT [TAINT...]\n\nSet or remove taints of a node (Kubernetes' "
	    "kubectl taint): KEY=VALUE:EFFECT or\nKEY:EFFECT sets, KEY- removes. EFFECT: NoSchedule (new "
	    "tasks must tolerate it),\nPreferNoSchedule (avoided when possible), NoExecute (running tasks "
	    "that do not\ntolerate it are stopped; tolerationSeconds delay that). Stored as the attribute\n"
	    "berth:taint:KEY = VALUE:EFFECT (aws ecs put-attributes does the "
	    "same)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --format FORMAT     'json': print the API's responses\n" ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (argc - optind < 2) {
		fprintf(stderr, "\"berth node taint\" requires a node and at least 1 taint.\n");
		return cli_usage(text, false);
	}
	const char *node = argv[optind];
	_cleanup_json_ json_t *put = json_array(), *del = json_array();
	for (int i = optind + 1; i < argc; i++) {
		json_t *a = NULL;
		bool remove = false;
		if (!taint_attr(argv[i], node, &a, &remove))
			return 125;
		json_array_append_new(remove ? del : put, a);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	const char *ops[] = { "PutAttributes", "DeleteAttributes" };
	json_t *lists[] = { put, del };
	for (size_t k = 0; k < 2 && rc == 0; k++) {
		if (!json_array_size(lists[k]))
			continue;
		_cleanup_json_ json_t *in = json_pack("{s:O}", "attributes", lists[k]), *out = NULL;
		if (cli_ecs_call(&e, ops[k], in, true, &out) < 0)
			rc = 1;
		else if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
	}
	if (rc == 0 && !cli_ecs_json(&e))
		printf("%s\n", node);
	cli_ecs_close(&e);
	return rc;
}

static int set_state(int argc, char **argv, const char *status, const char *text)
{
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth node %s\" requires at least 1 argument.\n", argv[0]);
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:[],s:s}", "containerInstances", "status", status),
			      *out = NULL;
	for (int i = optind; i < argc; i++)
		json_array_append_new(json_object_get(in, "containerInstances"), json_string(argv[i]));
	rc = 1;
	if (cli_ecs_call(&e, "UpdateContainerInstancesState", in, true, &out) == 0) {
		size_t i;
		json_t *n;
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			json_array_foreach (json_object_get(out, "containerInstances"), i, n)
				printf("%s\n", cli_ecs_arn_id(json_string_value(
						   json_object_get(n, "containerInstanceArn"))));
		rc = cli_ecs_print_failures(json_object_get(out, "failures")) ? 1 : 0;
	}
	cli_ecs_close(&e);
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

static int node_rm(int argc, char **argv)
{
	static const char *text =
	    "node rm [OPTIONS] NODE [NODE...]\n\nDeregister nodes from the cluster (their "
	    "certificates stop working)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "  -f, --force             deregister even with tasks running on the node\n"
	    "      --format FORMAT     'json': print the API's responses\n" ECS_CLI_HELP_COMMON;
	bool force = false;
	const struct cli_opt opts[] = { { "force", 'f', CLI_OPT_FLAG, &force }, { 0 } };
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, opts, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth node rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in =
		    json_pack("{s:s,s:b}", "containerInstance", argv[i], "force", force);
		_cleanup_json_ json_t *out = NULL;
		if (cli_ecs_call(&e, "DeregisterContainerInstance", in, true, &out) < 0) {
			rc = 1;
			continue;
		}
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", argv[i]);
	}
	cli_ecs_close(&e);
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
		{ "taint", node_taint, "Set or remove taints of a node" },
		{ "remove", node_rm, NULL },
	};
	return cli_ecs_group("node", "Manage the nodes (container instances) of a cluster", verbs,
			     ARRAY_SIZE(verbs), argc, argv);
}
