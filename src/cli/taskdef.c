/*
 * taskdef.c - `berth taskdef register|ls|inspect|rm`: task definitions
 * (RegisterTaskDefinition from a file in the aws CLI's --cli-input-json
 * shape as JSON or YAML, ListTaskDefinitions, DescribeTaskDefinition, DeregisterTaskDefinition).
 * The server validates; the CLI only checks that the file is a JSON object.
 */
#include <fcntl.h>

#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "cli/yamljson.h"
#include "common/fs.h"
#include "common/json.h"

/* Largest task definition file (the server takes 1 MiB requests). */
#define TASKDEF_FILE_MAX (1u << 20)

static int load_input(const char *path, json_t **ret)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = fs_read_file_at(AT_FDCWD, streq(path, "-") ? "/dev/stdin" : path, TASKDEF_FILE_MAX + 1, &sb,
				&err);
	if (r < 0)
		return berth_error_wrap(&err, r, "read '%s'", path), cli_ecs_error(err), -1;
	if (sb.len > TASKDEF_FILE_MAX) {
		fprintf(stderr, "berth: '%s' is larger than %u bytes\n", path, TASKDEF_FILE_MAX);
		return -1;
	}
	json_t *j = NULL;
	if (cli_yamljson_looks_like_json(sb.buf, sb.len) ? json_parse(sb.buf, sb.len, "JSON", &j, &err) < 0
							 : cli_yaml_to_json(sb.buf, sb.len, &j, &err) < 0) {
		berth_error_wrap(&err, -EINVAL, "parse '%s'", path);
		return cli_ecs_error(err), -1;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		fprintf(stderr, "berth: '%s': expected an object (the RegisterTaskDefinition input)\n", path);
		return -1;
	}
	*ret = j;
	return 0;
}

static int taskdef_register(int argc, char **argv)
{
	static const char *text =
	    "taskdef register [OPTIONS] -f FILE\n\nRegister a task definition (a new revision of its "
	    "family)\n\n"
	    "Options:\n"
	    "  -f, --file FILE         the RegisterTaskDefinition input, the shape of the aws CLI's\n"
	    "                          --cli-input-json, as JSON or YAML ('-': standard input)\n"
	    "      --format FORMAT     'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	const char *file = NULL;
	const struct cli_opt t[] = { { "file", 'f', CLI_OPT_STRING, &file }, { NULL } };
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind != argc || !file) {
		if (!file)
			fprintf(stderr, "\"berth taskdef register\" requires -f FILE.\n");
		return cli_usage(text, false);
	}
	_cleanup_json_ json_t *in = NULL, *out = NULL;
	if (load_input(file, &in) < 0)
		return 1;
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (cli_ecs_call(&e, "RegisterTaskDefinition", in, false, &out) == 0) {
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", json_string_value(json_object_get(
					   json_object_get(out, "taskDefinition"), "taskDefinitionArn"))
					   ?: "");
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static json_t *taskdef_row(const json_t *arn)
{
	_cleanup_free_ char *name = cli_ecs_taskdef_name(json_string_value(arn));
	char *colon = strrchr(name, ':');
	json_t *row = json_pack("[s,s,s]", name, colon ? colon + 1 : "", json_string_value(arn) ?: "");
	if (colon)
		*colon = '\0';
	json_array_set_new(row, 0, json_string(name));
	return row;
}

static int taskdef_ls(int argc, char **argv)
{
	static const char *text =
	    "taskdef ls [OPTIONS]\n\nList task definitions\n\nOptions:\n"
	    "      --family-prefix P   only families starting with P\n"
	    "      --status STATUS     ACTIVE (default), INACTIVE or ALL\n" ECS_CLI_HELP_FORMAT
		ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_object(), *arns = NULL;
	const struct cli_opt t[] = {
		{ "family-prefix", 0, CLI_OPT_JSON_STR, in, "familyPrefix" },
		{ "status", 0, CLI_OPT_JSON_STR, in, "status" },
		{ NULL },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (cli_ecs_list(&e, "ListTaskDefinitions", in, false, "taskDefinitionArns", &arns) == 0) {
		if (cli_ecs_json(&e)) {
			_cleanup_json_ json_t *o = json_pack("{s:O}", "taskDefinitionArns", arns);
			cli_ecs_print_json(o);
		} else {
			static const char *const heads[] = { "FAMILY", "REVISION", "ARN" };
			cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), arns, taskdef_row);
		}
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static json_t *container_row(const json_t *c)
{
	_cleanup_free_ char *cpu =
	    xasprintf("%lld", (long long)json_integer_value(json_object_get(c, "cpu")));
	json_t *m = json_object_get(c, "memory");
	if (!m)
		m = json_object_get(c, "memoryReservation");
	_cleanup_free_ char *mem = m ? xasprintf("%lld", (long long)json_integer_value(m)) : xstrdup("");
	json_t *ess = json_object_get(c, "essential");
	return json_pack("[s,s,s,s,s]", json_string_value(json_object_get(c, "name")) ?: "",
			 json_string_value(json_object_get(c, "image")) ?: "", cpu, mem,
			 !ess || json_is_true(ess) ? "true" : "false");
}

static void print_taskdef(const json_t *td)
{
	printf("ARN:             %s\n", json_string_value(json_object_get(td, "taskDefinitionArn")) ?: "");
	printf("Family:          %s\n", json_string_value(json_object_get(td, "family")) ?: "");
	printf("Revision:        %lld\n", (long long)json_integer_value(json_object_get(td, "revision")));
	printf("Status:          %s\n", json_string_value(json_object_get(td, "status")) ?: "");
	printf("Network mode:    %s\n", json_string_value(json_object_get(td, "networkMode")) ?: "");
	printf("CPU:             %s\n", json_string_value(json_object_get(td, "cpu")) ?: "");
	printf("Memory:          %s\n", json_string_value(json_object_get(td, "memory")) ?: "");
	_cleanup_free_ char *at = cli_ecs_time(json_object_get(td, "registeredAt"));
	printf("Registered at:   %s\n", at);
	printf("Containers:\n");
	static const char *const heads[] = { "  NAME", "IMAGE", "CPU", "MEMORY", "ESSENTIAL" };
	_cleanup_json_ json_t *rows = json_array();
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, c) {
		json_t *row = container_row(c);
		_cleanup_free_ char *indented = xasprintf("  %s", json_string_value(json_array_get(row, 0)));
		json_array_set_new(row, 0, json_string(indented));
		json_array_append_new(rows, row);
	}
	cli_print_table(heads, ARRAY_SIZE(heads), rows);
}

static int taskdef_inspect(int argc, char **argv)
{
	static const char *text =
	    "taskdef inspect [OPTIONS] FAMILY[:REVISION]|ARN\n\nShow a task definition "
	    "(the latest ACTIVE revision of a family without :REVISION)\n\nOptions:\n" ECS_CLI_HELP_FORMAT
		ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth taskdef inspect\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in =
	    json_pack("{s:s,s:[s]}", "taskDefinition", argv[optind], "include", "TAGS");
	_cleanup_json_ json_t *out = NULL;
	rc = 1;
	if (cli_ecs_call(&e, "DescribeTaskDefinition", in, false, &out) == 0) {
		json_t *td = json_object_get(out, "taskDefinition");
		if (cli_ecs_json(&e)) {
			cli_ecs_print_json(out);
		} else if (e.format) {
			_cleanup_free_ char *line = cli_format(e.format, td);
			printf("%s\n", line);
		} else {
			print_taskdef(td);
		}
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static int taskdef_rm(int argc, char **argv)
{
	static const char *text =
	    "taskdef rm [OPTIONS] FAMILY:REVISION|ARN [...]\n\nDeregister task definition "
	    "revisions (they become INACTIVE)\n\nOptions:\n"
	    "      --format FORMAT     'json': print the API's responses\n" ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth taskdef rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	for (int i = optind; i < argc; i++)
		if (!strchr(argv[i], ':')) {
			fprintf(stderr, "berth: '%s': give a revision (FAMILY:REVISION) or an ARN\n",
				argv[i]);
			return CLI_EXIT_DAEMON;
		}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in = json_pack("{s:s}", "taskDefinition", argv[i]), *out = NULL;
		if (cli_ecs_call(&e, "DeregisterTaskDefinition", in, false, &out) < 0) {
			rc = 1;
			continue;
		}
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", json_string_value(json_object_get(
					   json_object_get(out, "taskDefinition"), "taskDefinitionArn"))
					   ?: argv[i]);
	}
	cli_ecs_close(&e);
	return rc;
}

int cli_taskdef(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "inspect", taskdef_inspect, "Show a task definition" },
		{ "ls", taskdef_ls, "List task definitions" },
		{ "list", taskdef_ls, NULL },
		{ "register", taskdef_register, "Register a task definition from a file" },
		{ "rm", taskdef_rm, "Deregister task definition revisions" },
		{ "remove", taskdef_rm, NULL },
	};
	return cli_ecs_group("taskdef", "Manage task definitions", verbs, ARRAY_SIZE(verbs), argc, argv);
}
