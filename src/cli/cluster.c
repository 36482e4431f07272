/*
 * cluster.c - `berth cluster ls|create|rm|inspect` over ListClusters,
 * DescribeClusters, CreateCluster and DeleteCluster.
 */
#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

static json_t *cluster_row(const json_t *c)
{
	return json_pack("[s,s,I,I,I]", json_string_value(json_object_get(c, "clusterName")) ?: "",
			 json_string_value(json_object_get(c, "status")) ?: "",
			 json_integer_value(json_object_get(c, "registeredContainerInstancesCount")),
			 json_integer_value(json_object_get(c, "runningTasksCount")),
			 json_integer_value(json_object_get(c, "pendingTasksCount")));
}

/* cli_print_table wants strings. */
static json_t *stringify(json_t *row)
{
	size_t i;
	json_t *v;
	json_t *out = json_array();
	json_array_foreach (row, i, v) {
		if (json_is_string(v))
			json_array_append(out, v);
		else
			json_array_append_new(out, json_sprintf("%lld", (long long)json_integer_value(v)));
	}
	json_decref(row);
	return out;
}

static json_t *cluster_row_str(const json_t *c)
{
	return stringify(cluster_row(c));
}

static int cluster_ls(int argc, char **argv)
{
	static const char *text =
	    "cluster ls [OPTIONS]\n\nList clusters\n\nOptions:\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *arns = NULL, *clusters = NULL;
	rc = 1;
	if (cli_ecs_list(&e, "ListClusters", NULL, false, "clusterArns", &arns) < 0)
		goto out;
	if (cli_ecs_json(&e)) {
		_cleanup_json_ json_t *o = json_pack("{s:O}", "clusterArns", arns);
		cli_ecs_print_json(o);
		rc = 0;
		goto out;
	}
	if (cli_ecs_describe(&e, "DescribeClusters", "clusters", "clusters", arns, NULL, &clusters, NULL) < 0)
		goto out;
	static const char *const heads[] = { "NAME", "STATUS", "NODES", "RUNNING", "PENDING" };
	cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), clusters, cluster_row_str);
	rc = 0;
out:
	cli_ecs_close(&e);
	return rc;
}

/* --tag KEY=VALUE -> tags += {key, value} */
static int add_tag(void *tags, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "berth: invalid --tag '%s': expected KEY=VALUE\n", arg);
		return -1;
	}
	json_array_append_new(tags, json_pack("{s:s%,s:s}", "key", arg, (size_t)(eq - arg), "value", eq + 1));
	return 0;
}

static int cluster_create(int argc, char **argv)
{
	static const char *text =
	    "cluster create [OPTIONS] NAME\n\nCreate a cluster (an existing ACTIVE "
	    "cluster is returned unchanged, as ECS does)\n\nOptions:\n"
	    "      --tag KEY=VALUE     tag the cluster (repeatable)\n"
	    "      --format FORMAT     'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *tags = json_array();
	const struct cli_opt t[] = { { "tag", 0, CLI_OPT_CALL, tags, .fn = add_tag, .has_arg = true },
				     { NULL } };
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth cluster create\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:s}", "clusterName", argv[optind]), *out = NULL;
	if (json_array_size(tags))
		json_object_set(in, "tags", tags);
	rc = 1;
	if (cli_ecs_call(&e, "CreateCluster", in, false, &out) == 0) {
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", json_string_value(
					   json_object_get(json_object_get(out, "cluster"), "clusterArn"))
					   ?: "");
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static int cluster_rm(int argc, char **argv)
{
	static const char *text =
	    "cluster rm [OPTIONS] CLUSTER [CLUSTER...]\n\nDelete clusters (they must "
	    "have no nodes and no active tasks)\n\nOptions:\n"
	    "      --format FORMAT     'json': print the API's responses\n" ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth cluster rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in = json_pack("{s:s}", "cluster", argv[i]), *out = NULL;
		if (cli_ecs_call(&e, "DeleteCluster", in, false, &out) < 0) {
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

static void print_cluster(const json_t *c)
{
	printf("Name:            %s\n", json_string_value(json_object_get(c, "clusterName")) ?: "");
	printf("ARN:             %s\n", json_string_value(json_object_get(c, "clusterArn")) ?: "");
	printf("Status:          %s\n", json_string_value(json_object_get(c, "status")) ?: "");
	printf("Nodes:           %lld\n",
	       (long long)json_integer_value(json_object_get(c, "registeredContainerInstancesCount")));
	printf("Running tasks:   %lld\n",
	       (long long)json_integer_value(json_object_get(c, "runningTasksCount")));
	printf("Pending tasks:   %lld\n",
	       (long long)json_integer_value(json_object_get(c, "pendingTasksCount")));
	size_t i;
	json_t *t;
	json_t *tags = json_object_get(c, "tags");
	if (json_array_size(tags))
		printf("Tags:\n");
	json_array_foreach (tags, i, t)
		printf("  %s=%s\n", json_string_value(json_object_get(t, "key")) ?: "",
		       json_string_value(json_object_get(t, "value")) ?: "");
}

static int cluster_inspect(int argc, char **argv)
{
	static const char *text =
	    "cluster inspect [OPTIONS] CLUSTER [CLUSTER...]\n\nShow clusters: "
	    "status, nodes and task counts, tags\n\nOptions:\n" ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	static const struct ecs_inspect how = { "cluster inspect", "DescribeClusters", "clusters", false,
						print_cluster };
	return cli_ecs_inspect(argc, argv, text, &how);
}

int cli_cluster(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "create", cluster_create, "Create a cluster" },
		{ "inspect", cluster_inspect, "Show details of clusters" },
		{ "ls", cluster_ls, "List clusters" },
		{ "list", cluster_ls, NULL },
		{ "rm", cluster_rm, "Delete clusters" },
		{ "top", cli_cluster_top, "Show CPU and memory of the cluster's services and tasks" },
		{ "remove", cluster_rm, NULL },
	};
	return cli_ecs_group("cluster", "Manage clusters (ECS clusters on a berth server)", verbs,
			     ARRAY_SIZE(verbs), argc, argv);
}
