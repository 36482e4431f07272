/*
 * ecs.h - the cluster verbs of the `berth` CLI (cluster.c, node.c,
 * taskdef.c, task.c) and what they share (ecsutil.c): the AWS options every
 * verb takes, opening an aws/ client, calling it with errors printed as
 * `berth: <Type>: <message>`, output in tables, JSON or a template, and the
 * subcommand dispatch. The verbs are clients of the ECS API only (aws/client.h).
 */
#ifndef BERTH_CLI_ECS_H
#define BERTH_CLI_ECS_H

#include <jansson.h>

#include "aws/client.h"

/* Help text of the shared options (without --cluster / --format, which verbs describe). */
#define ECS_CLI_HELP_COMMON                                                                  \
	"      --endpoint URL      API endpoint (AWS_ENDPOINT_URL_ECS, AWS_ENDPOINT_URL;\n"  \
	"                          default " AWS_DEFAULT_ENDPOINT ")\n"                      \
	"      --ca-bundle FILE    CA certificates to verify the endpoint (AWS_CA_BUNDLE)\n" \
	"      --region REGION     region (AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config)\n" \
	"      --profile NAME      profile in ~/.aws/credentials and ~/.aws/config (AWS_PROFILE)\n"
#define ECS_CLI_HELP_CLUSTER "      --cluster NAME      cluster name or ARN (default \"default\")\n"
#define ECS_CLI_HELP_FORMAT                                                                        \
	"      --format FORMAT     'table' (default), 'json' (the API's response; timestamps in\n" \
	"                          epoch seconds) or a Go template applied to each item\n"

struct ecs_cli {
	struct aws_config_flags flags;
	const char *cluster; /* NULL: the server's default cluster */
	const char *format;  /* NULL: table */
	struct aws_client *aws;
};

/*
 * Parse argv (argv[0] is the verb) with the shared options (--endpoint,
 * --endpoint-url, --ca-bundle, --region, --profile, --cluster, --format) and
 * the verb's own table t (cli/opttab.h; NULL for none); options may follow
 * operands. usage: the text after "Usage: berth ". Returns true to go on with
 * optind at the first operand; false with *rc the exit code (0 after --help,
 * 125 on a usage error).
 */
struct cli_opt;
bool cli_ecs_parse_table(struct ecs_cli *e, int argc, char **argv, const struct cli_opt *t, const char *usage,
			 int *rc);
/* cli_ecs_parse_table without options of the verb's own. */
bool cli_ecs_parse(struct ecs_cli *e, int argc, char **argv, const char *usage, int *rc);
/* Resolve the configuration and open the client; prints the error and returns -1 on failure. */
int cli_ecs_open(struct ecs_cli *e);
void cli_ecs_close(struct ecs_cli *e);
/* A client of another service on the same configuration (env: "LOGS" for AWS_ENDPOINT_URL_LOGS). */
int cli_ecs_client(struct ecs_cli *e, const char *env, const char *service, const char *prefix,
		   struct aws_client **ret);
/* Print "berth: <chain>" and return 1. */
int cli_ecs_error(struct berth_error *err);

/*
 * One call; the request's "cluster" is set from --cluster when with_cluster.
 * On failure prints the error and returns -1. in is borrowed.
 */
int cli_ecs_call(struct ecs_cli *e, const char *op, json_t *in, bool with_cluster, json_t **ret);
/* Follow nextToken; *ret is every page's key array. Same error handling. */
int cli_ecs_list(struct ecs_cli *e, const char *op, json_t *in, bool with_cluster, const char *key,
		 json_t **ret);
/*
 * Describe arns (an array of strings) in batches of 100 with op, whose request
 * key is in_key and answer keys out_key and "failures"; returns the described
 * items in order in *ret and the failures in *ret_failures (may be NULL).
 * extra: more request fields (borrowed, may be NULL).
 */
int cli_ecs_describe(struct ecs_cli *e, const char *op, const char *in_key, const char *out_key, json_t *arns,
		     json_t *extra, json_t **ret, json_t **ret_failures);
/* Print each failure as "berth: <arn>: <reason>[ (<detail>)]" to stderr; returns how many. */
size_t cli_ecs_print_failures(const json_t *failures);

/* true for --format json. */
bool cli_ecs_json(const struct ecs_cli *e);
/* Print v as the aws CLI does (4-space indent, keys in the server's order). */
void cli_ecs_print_json(const json_t *v);
/*
 * Print items as a table (columns from row_fn: one array of strings per item),
 * or, with a template format, the template for each item. Not for json.
 */
typedef json_t *(*ecs_row_fn)(const json_t *item);
void cli_ecs_print_items(const struct ecs_cli *e, const char *const *headers, size_t ncols,
			 const json_t *items, ecs_row_fn row_fn);

/*
 * Print a Describe* answer: the whole response for --format json, each item
 * through the template for another --format, else print_one per item with a
 * blank line between them; then the failures. Returns 1 when any failed, else 0.
 */
int cli_ecs_print_described(const struct ecs_cli *e, const json_t *out, const char *key,
			    void (*print_one)(const json_t *item));

/* For the verbs that poll (the ECS API has no watch): sleep, and a monotonic clock in seconds. */
void cli_ecs_sleep_ms(long ms);
double cli_ecs_now_mono(void);
/*
 * `berth GROUP inspect NAME...`: Describe<op> of the operands (request and
 * answer key `key`, with TAGS), printed by cli_ecs_print_described().
 */
struct ecs_inspect {
	const char *verb; /* "task inspect", for the usage error */
	const char *op, *key;
	bool with_cluster;
	void (*print_one)(const json_t *item);
};
int cli_ecs_inspect(int argc, char **argv, const char *text, const struct ecs_inspect *how);

/* "abc" from "arn:...:task/cluster/abc"; the string itself when not an ARN. Borrowed. */
const char *cli_ecs_arn_id(const char *arn);
/* "family:rev" from a task definition ARN (new string). */
char *cli_ecs_taskdef_name(const char *arn);
/* The integerValue of resource name in a resources array, or -1. */
long long cli_ecs_resource(const json_t *resources, const char *name);
/* A JSON number of epoch seconds as RFC 3339 UTC ("" when absent); new string. */
char *cli_ecs_time(const json_t *v);
/* Value of attribute name in an attributes array, or NULL. */
const char *cli_ecs_attribute(const json_t *attrs, const char *name);

/*
 * "k1=v1,k2=v2" -> {"k1": "v1", "k2": "v2"} (keys from allowed, NULL-terminated);
 * a value runs to the next ",KEY=" of an allowed key, so it may hold commas.
 * NULL with a message on stderr on an unknown or repeated key.
 */
json_t *cli_ecs_parse_kv(const char *flag, const char *s, const char *const *allowed);
/* A decimal in [min, max] for flag; -1 with a message on stderr otherwise. */
int cli_ecs_parse_long(const char *flag, const char *arg, long min, long max, long *ret);
/* A CLI_OPT_ENTRY callback (cli/opttab.h): o->dest[o->key] = the number, cli_ecs_parse_long's range
 * [o->min, o->max] and message. */
int cli_ecs_opt_long(const struct cli_opt *o, const char *arg);
/* Append item (reference stolen) to the list in[key], creating it. */
void cli_ecs_append(json_t *in, const char *key, json_t *item);
/*
 * A command for --command: a JSON array of strings, or words split on blanks
 * with '...' and "..." quoting and backslash escapes. NULL (message printed) when malformed.
 */
json_t *cli_ecs_parse_command(const char *s);

/* Dispatch `berth <group> <verb> ...` (docker's shape: help, unknown verb = 125). */
struct ecs_verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary; /* NULL: an alias, not listed */
};
int cli_ecs_group(const char *group, const char *what, const struct ecs_verb *verbs, size_t n, int argc,
		  char **argv);

/* The verb groups (main.c's table). */
int cli_cluster(int argc, char **argv);
int cli_node(int argc, char **argv);
int cli_taskdef(int argc, char **argv);
int cli_task(int argc, char **argv);
int cli_lb(int argc, char **argv);    /* lb.c: berth's load balancers */
int cli_apply(int argc, char **argv); /* stack.c: berth apply -f compose.yml */
int cli_stack(int argc, char **argv); /* stack.c: berth stack ls|ps|services|rm */
int cli_service(int argc, char **argv);
/* metrics.c: `berth cluster top` (and `berth top` without a container), `berth service stats` */
int cli_cluster_top(int argc, char **argv);
int cli_service_stats(int argc, char **argv);

#endif
