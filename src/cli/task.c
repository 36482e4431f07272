/*
 * task.c - `berth task run|ls|inspect|stop|logs` over RunTask, ListTasks,
 * DescribeTasks and StopTask.
 *
 * `task run --wait` polls DescribeTasks until every task is RUNNING or
 * STOPPED, with a deadline: the ECS API has no watch, so polling a remote API
 * with backoff is the one place the CLI waits this way.
 */
#include <time.h>

#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

#define RUN_MAX_COUNT        10  /* RunTask's own limit */
#define WAIT_DEFAULT_SECONDS 300 /* --wait's default deadline */
#define WAIT_MAX_INTERVAL_MS 1000

struct run_opts {
	json_t *in; /* the RunTask request being built */
	const char *container;
	json_t *env;     /* [{name, value}] */
	json_t *command; /* NULL or [string] */
	bool wait;
	long wait_seconds;
};

static void run_opts_done(struct run_opts *o)
{
	json_decref(o->command);
	o->command = NULL;
}

static int append_kv(json_t *in, const char *key, const char *flag, const char *arg,
		     const char *const *allowed)
{
	json_t *o = cli_ecs_parse_kv(flag, arg, allowed);
	if (!o || !json_object_get(o, "type")) {
		if (o)
			fprintf(stderr, "berth: invalid %s '%s': type= is required\n", flag, arg);
		json_decref(o);
		return -1;
	}
	cli_ecs_append(in, key, o);
	return 0;
}

/* --placement-constraint, --placement-strategy: o->dest[o->key] += the K=V list (type= required). */
static int run_kv(const struct cli_opt *o, const char *arg)
{
	static const char *const constraint_keys[] = { "type", "expression", NULL };
	static const char *const strategy_keys[] = { "type", "field", NULL };
	bool constraint = streq(o->key, "placementConstraints");
	return append_kv(o->dest, o->key, constraint ? "--placement-constraint" : "--placement-strategy", arg,
			 constraint ? constraint_keys : strategy_keys);
}

/* -e NAME=VALUE -> env += {name, value} */
static int run_env(void *env, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "berth: invalid --env '%s': expected NAME=VALUE\n", arg);
		return -1;
	}
	json_array_append_new(env, json_pack("{s:s%,s:s}", "name", arg, (size_t)(eq - arg), "value", eq + 1));
	return 0;
}

static int run_command(void *command, const char *arg)
{
	json_t **c = command;
	json_decref(*c);
	*c = cli_ecs_parse_command(arg);
	return *c ? 0 : -1;
}

static int run_wait_timeout(void *seconds, const char *arg)
{
	return cli_ecs_parse_long("--wait-timeout", arg, 1, 86400, seconds);
}

/* The one container of the task definition, for overrides without --container; NULL (printed) otherwise. */
static char *sole_container(struct ecs_cli *e, const char *taskdef)
{
	_cleanup_json_ json_t *in = json_pack("{s:s}", "taskDefinition", taskdef), *out = NULL;
	if (cli_ecs_call(e, "DescribeTaskDefinition", in, false, &out) < 0)
		return NULL;
	json_t *cs = json_object_get(json_object_get(out, "taskDefinition"), "containerDefinitions");
	if (json_array_size(cs) != 1) {
		fprintf(stderr, "berth: task definition '%s' has %zu containers: name one with --container\n",
			taskdef, json_array_size(cs));
		return NULL;
	}
	return xstrdup(json_string_value(json_object_get(json_array_get(cs, 0), "name")) ?: "");
}

static int add_overrides(struct ecs_cli *e, struct run_opts *o, const char *taskdef)
{
	if (!json_array_size(o->env) && !o->command && !o->container)
		return 0;
	_cleanup_free_ char *name = o->container ? xstrdup(o->container) : sole_container(e, taskdef);
	if (!name)
		return -1;
	json_t *co = json_pack("{s:s}", "name", name);
	if (json_array_size(o->env))
		json_object_set(co, "environment", o->env);
	if (o->command)
		json_object_set(co, "command", o->command);
	json_object_set_new(o->in, "overrides", json_pack("{s:[o]}", "containerOverrides", co));
	return 0;
}

static bool settled(const json_t *tasks)
{
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *s = json_string_value(json_object_get(t, "lastStatus"));
		if (!streq_ptr(s, "RUNNING") && !streq_ptr(s, "STOPPED"))
			return false;
	}
	return true;
}

/* Poll DescribeTasks until every task settles; *ret the last description. -1 on error or timeout. */
static int wait_tasks(struct ecs_cli *e, json_t *arns, long seconds, json_t **ret)
{
	double deadline = cli_ecs_now_mono() + (double)seconds;
	long interval = 100;
	for (;;) {
		json_t *tasks = NULL, *failures = NULL;
		if (cli_ecs_describe(e, "DescribeTasks", "tasks", "tasks", arns, NULL, &tasks, &failures) < 0)
			return -1;
		size_t nf = cli_ecs_print_failures(failures);
		json_decref(failures);
		if (nf || settled(tasks)) {
			*ret = tasks;
			return nf ? -1 : 0;
		}
		json_decref(tasks);
		if (cli_ecs_now_mono() + (double)interval / 1000 > deadline) {
			fprintf(stderr, "berth: tasks did not reach RUNNING or STOPPED within %ld s\n",
				seconds);
			return -1;
		}
		cli_ecs_sleep_ms(interval);
		interval = MIN(interval * 2, WAIT_MAX_INTERVAL_MS);
	}
}

/* A stopped task that failed: prints why; true when it counts as a failure. */
static bool report_stopped(const json_t *t)
{
	if (!streq_ptr(json_string_value(json_object_get(t, "lastStatus")), "STOPPED"))
		return false;
	const char *id = cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn")));
	const char *code = json_string_value(json_object_get(t, "stopCode"));
	const char *reason = json_string_value(json_object_get(t, "stoppedReason"));
	bool failed = streq_ptr(code, "TaskFailedToStart");
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(t, "containers"), i, c) {
		json_t *x = json_object_get(c, "exitCode");
		if (json_is_integer(x) && json_integer_value(x) != 0)
			failed = true;
	}
	fprintf(stderr, "berth: task %s stopped: %s%s%s\n", id, code ? code : "", reason ? ": " : "",
		reason ? reason : "");
	return failed;
}

static int task_run(int argc, char **argv)
{
	static const char *text =
	    "task run [OPTIONS] TASKDEF\n\nRun tasks of a task definition (FAMILY[:REVISION] or ARN); prints "
	    "their ids\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --count N                 how many tasks (1-10, default 1)\n"
	    "      --group NAME              task group (default family:FAMILY)\n"
	    "      --started-by TEXT         the task's startedBy\n"
	    "      --placement-constraint type=distinctInstance|memberOf[,expression=EXPR]  (repeatable)\n"
	    "      --placement-strategy type=spread|binpack|random[,field=FIELD]            (repeatable)\n"
	    "      --container NAME          the container --env and --command apply to (needed when the\n"
	    "                                task definition has several)\n"
	    "  -e, --env NAME=VALUE          set an environment variable (repeatable)\n"
	    "      --command CMD             the container's command: words (with '...' or \"...\" quoting)\n"
	    "                                or a JSON array\n"
	    "      --wait                    wait until every task is RUNNING or STOPPED; exit 1 when one\n"
	    "                                failed to start or a container exited non-zero\n"
	    "      --wait-timeout SECONDS    give up waiting after this long (default 300)\n"
	    "      --format FORMAT           'json': print the API's response\n" ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_object(), *env = json_array();
	_cleanup_(
	    run_opts_done) struct run_opts o = { .in = in, .env = env, .wait_seconds = WAIT_DEFAULT_SECONDS };
	const struct cli_opt opts[] = {
		{ "count", 0, CLI_OPT_ENTRY, in, "count", 1, RUN_MAX_COUNT, .entry_fn = cli_ecs_opt_long,
		  .has_arg = true },
		{ "group", 0, CLI_OPT_JSON_STR, in, "group" },
		{ "started-by", 0, CLI_OPT_JSON_STR, in, "startedBy" },
		{ "placement-constraint", 0, CLI_OPT_ENTRY, in, "placementConstraints", .entry_fn = run_kv,
		  .has_arg = true },
		{ "placement-strategy", 0, CLI_OPT_ENTRY, in, "placementStrategy", .entry_fn = run_kv,
		  .has_arg = true },
		{ "container", 0, CLI_OPT_STRING, &o.container },
		{ "env", 'e', CLI_OPT_CALL, env, .fn = run_env, .has_arg = true },
		{ "command", 0, CLI_OPT_CALL, &o.command, .fn = run_command, .has_arg = true },
		{ "wait", 0, CLI_OPT_FLAG, &o.wait },
		{ "wait-timeout", 0, CLI_OPT_CALL, &o.wait_seconds, .fn = run_wait_timeout, .has_arg = true },
		{ NULL },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, opts, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth task run\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	json_object_set_new(in, "taskDefinition", json_string(argv[optind]));
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *out = NULL, *waited = NULL, *arns = json_array();
	size_t i;
	json_t *t;
	rc = 1;
	if (add_overrides(&e, &o, argv[optind]) < 0 || cli_ecs_call(&e, "RunTask", in, true, &out) < 0)
		goto done;
	json_t *tasks = json_object_get(out, "tasks");
	size_t nfail = cli_ecs_print_failures(json_object_get(out, "failures"));
	json_array_foreach (tasks, i, t)
		json_array_append(arns, json_object_get(t, "taskArn"));
	if (o.wait && json_array_size(arns) && wait_tasks(&e, arns, o.wait_seconds, &waited) < 0)
		goto done;
	rc = json_array_size(arns) == 0 ? 1 : 0;
	if (waited) {
		json_object_set(out, "tasks", waited);
		json_array_foreach (waited, i, t)
			if (report_stopped(t))
				rc = 1;
	}
	if (cli_ecs_json(&e))
		cli_ecs_print_json(out);
	else
		json_array_foreach (json_object_get(out, "tasks"), i, t)
			printf("%s\n", cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn"))));
	if (json_array_size(arns) == 0 && nfail == 0)
		fprintf(stderr, "berth: no task was started\n");
done:
	cli_ecs_close(&e);
	return rc;
}

static json_t *task_row(const json_t *t)
{
	_cleanup_free_ char *td =
	    cli_ecs_taskdef_name(json_string_value(json_object_get(t, "taskDefinitionArn")));
	_cleanup_free_ char *created = cli_ecs_time(json_object_get(t, "createdAt"));
	return json_pack("[s,s,s,s,s,s]", cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn"))),
			 td, json_string_value(json_object_get(t, "lastStatus")) ?: "",
			 json_string_value(json_object_get(t, "desiredStatus")) ?: "",
			 cli_ecs_arn_id(json_string_value(json_object_get(t, "containerInstanceArn"))),
			 created);
}

static int task_ls(int argc, char **argv)
{
	static const char *text =
	    "task ls [OPTIONS]\n\nList the tasks of a cluster\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --family FAMILY           only tasks of this task definition family\n"
	    "      --desired-status STATUS   RUNNING (default), PENDING or STOPPED\n"
	    "      --node NODE               only tasks on this node (id or ARN)\n"
	    "      --started-by TEXT         only tasks with this startedBy\n" ECS_CLI_HELP_FORMAT
		ECS_CLI_HELP_COMMON;
	_cleanup_json_ json_t *in = json_object(), *arns = NULL, *tasks = NULL;
	const struct cli_opt t[] = {
		{ "family", 0, CLI_OPT_JSON_STR, in, "family" },
		{ "desired-status", 0, CLI_OPT_JSON_STR, in, "desiredStatus" },
		{ "node", 0, CLI_OPT_JSON_STR, in, "containerInstance" },
		{ "started-by", 0, CLI_OPT_JSON_STR, in, "startedBy" },
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
	if (cli_ecs_list(&e, "ListTasks", in, true, "taskArns", &arns) < 0)
		goto out;
	if (cli_ecs_json(&e)) {
		_cleanup_json_ json_t *o = json_pack("{s:O}", "taskArns", arns);
		cli_ecs_print_json(o);
		rc = 0;
		goto out;
	}
	if (cli_ecs_describe(&e, "DescribeTasks", "tasks", "tasks", arns, NULL, &tasks, NULL) < 0)
		goto out;
	static const char *const heads[] = { "TASK ID", "TASK DEFINITION", "LAST STATUS", "DESIRED STATUS",
					     "NODE",    "CREATED" };
	cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), tasks, task_row);
	rc = 0;
out:
	cli_ecs_close(&e);
	return rc;
}

static const char *task_ip(const json_t *t)
{
	size_t i, j;
	json_t *a, *d;
	json_array_foreach (json_object_get(t, "attachments"), i, a)
		json_array_foreach (json_object_get(a, "details"), j, d)
			if (streq_ptr(json_string_value(json_object_get(d, "name")), "privateIPv4Address"))
				return json_string_value(json_object_get(d, "value"));
	return NULL;
}

static void print_task(const json_t *t)
{
	static const struct {
		const char *label, *key;
	} fields[] = { { "ARN", "taskArn" },
		       { "Cluster", "clusterArn" },
		       { "Last status", "lastStatus" },
		       { "Desired status", "desiredStatus" },
		       { "Group", "group" },
		       { "Started by", "startedBy" },
		       { "CPU", "cpu" },
		       { "Memory", "memory" },
		       { "Stop code", "stopCode" },
		       { "Stopped reason", "stoppedReason" } };
	printf("%-16s %s\n", "ID:", cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn"))));
	_cleanup_free_ char *td =
	    cli_ecs_taskdef_name(json_string_value(json_object_get(t, "taskDefinitionArn")));
	printf("%-16s %s\n", "Task definition:", td);
	printf("%-16s %s\n",
	       "Node:", cli_ecs_arn_id(json_string_value(json_object_get(t, "containerInstanceArn"))));
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *v = json_string_value(json_object_get(t, fields[i].key));
		if (v) {
			_cleanup_free_ char *label = xasprintf("%s:", fields[i].label);
			printf("%-16s %s\n", label, v);
		}
	}
	const char *ip = task_ip(t);
	if (ip)
		printf("%-16s %s\n", "IP address:", ip);
	const char *why =
	    json_string_value(json_object_get(json_object_get(t, "berthPlacement"), "explanation"));
	if (why)
		printf("%-16s %s\n", "Placement:", why);
	static const char *const times[][2] = { { "Created:", "createdAt" },
						{ "Started:", "startedAt" },
						{ "Stopped:", "stoppedAt" } };
	for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
		_cleanup_free_ char *v = cli_ecs_time(json_object_get(t, times[i][1]));
		if (*v)
			printf("%-16s %s\n", times[i][0], v);
	}
	printf("Containers:\n");
	static const char *const heads[] = { "  NAME", "LAST STATUS", "EXIT CODE", "REASON" };
	_cleanup_json_ json_t *rows = json_array();
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(t, "containers"), i, c) {
		json_t *x = json_object_get(c, "exitCode");
		_cleanup_free_ char *name =
		    xasprintf("  %s", json_string_value(json_object_get(c, "name")) ?: "");
		_cleanup_free_ char *code =
		    json_is_integer(x) ? xasprintf("%lld", (long long)json_integer_value(x)) : xstrdup("");
		json_array_append_new(rows,
				      json_pack("[s,s,s,s]", name,
						json_string_value(json_object_get(c, "lastStatus")) ?: "",
						code, json_string_value(json_object_get(c, "reason")) ?: ""));
	}
	cli_print_table(heads, ARRAY_SIZE(heads), rows);
}

static int task_inspect(int argc, char **argv)
{
	static const char *text =
	    "task inspect [OPTIONS] TASK [TASK...]\n\nShow tasks: status, node, "
	    "why the scheduler put it there, containers and exit codes, stop "
	    "reason\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	static const struct ecs_inspect how = { "task inspect", "DescribeTasks", "tasks", true, print_task };
	return cli_ecs_inspect(argc, argv, text, &how);
}

static int task_stop(int argc, char **argv)
{
	static const char *text =
	    "task stop [OPTIONS] TASK [TASK...]\n\nStop tasks (their containers get "
	    "SIGTERM, then SIGKILL after the stop timeout)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --reason TEXT       the stoppedReason (default \"Task stopped by user\")\n"
	    "      --format FORMAT     'json': print the API's responses\n" ECS_CLI_HELP_COMMON;
	const char *reason = NULL;
	const struct cli_opt t[] = { { "reason", 0, CLI_OPT_STRING, &reason }, { NULL } };
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth task stop\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *in = json_pack("{s:s}", "task", argv[i]), *out = NULL;
		if (reason)
			json_object_set_new(in, "reason", json_string(reason));
		if (cli_ecs_call(&e, "StopTask", in, true, &out) < 0) {
			rc = 1;
			continue;
		}
		if (cli_ecs_json(&e))
			cli_ecs_print_json(out);
		else
			printf("%s\n", cli_ecs_arn_id(json_string_value(
					   json_object_get(json_object_get(out, "task"), "taskArn"))));
	}
	cli_ecs_close(&e);
	return rc;
}

struct logs_opts {
	const char *container;
	bool follow;
};

struct log_stream {
	const char *container;
	char *group, *stream, *token;
};

/* The awslogs streams of a task's containers (ECS names: PREFIX/CONTAINER/TASK-ID). */
static int task_streams(const json_t *task, const json_t *td, const char *only, struct log_stream **ret,
			size_t *ret_n)
{
	const char *id = cli_ecs_arn_id(json_string_value(json_object_get(task, "taskArn")));
	struct log_stream *v = NULL;
	size_t n = 0;
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, d) {
		const char *name = json_string_value(json_object_get(d, "name"));
		if (!name || (only && !streq(only, name)))
			continue;
		const json_t *lc = json_object_get(d, "logConfiguration");
		const json_t *o = json_object_get(lc, "options");
		const char *drv = json_string_value(json_object_get(lc, "logDriver"));
		const char *group = json_string_value(json_object_get(o, "awslogs-group"));
		const char *prefix = json_string_value(json_object_get(o, "awslogs-stream-prefix"));
		if (!drv || !streq(drv, "awslogs") || !group || !prefix) {
			fprintf(
			    stderr,
			    "berth: container '%s' does not send its logs to the server (logConfiguration "
			    "awslogs with awslogs-group and awslogs-stream-prefix); read them on its node "
			    "with "
			    "`docker -H unix://EXEC_ROOT/berth.sock logs`\n",
			    name);
			continue;
		}
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = (struct log_stream){ name, xstrdup(group), xasprintf("%s/%s/%s", prefix, name, id),
					      NULL };
	}
	if (only && n == 0 && !v) {
		bool exists = false;
		json_array_foreach (json_object_get(td, "containerDefinitions"), i, d)
			exists |= streq(json_string_value(json_object_get(d, "name")), only);
		if (!exists)
			fprintf(stderr, "berth: task has no container '%s'\n", only);
	}
	*ret = v;
	*ret_n = n;
	return n ? 0 : -1;
}

/* Print the stream's events after its token; 1 when some were printed, 0 none, -1 error. */
static int print_stream(struct aws_client *logs, struct log_stream *ls, bool label)
{
	int printed = 0;
	for (;;) {
		_cleanup_json_ json_t *in = json_pack("{s:s,s:s,s:b}", "logGroupName", ls->group,
						      "logStreamName", ls->stream, "startFromHead", true);
		if (ls->token)
			json_object_set_new(in, "nextToken", json_string(ls->token));
		_cleanup_json_ json_t *out = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (aws_client_call(logs, "GetLogEvents", in, &out, &err) < 0) {
			if (err && startswith(err->msg, "ResourceNotFoundException"))
				return printed; /* no output yet */
			cli_ecs_error(err);
			return -1;
		}
		size_t i;
		json_t *ev;
		json_array_foreach (json_object_get(out, "events"), i, ev) {
			if (label)
				printf("%s | ", ls->container);
			fputs(json_string_value(json_object_get(ev, "message")), stdout);
			putchar('\n');
			printed = 1;
		}
		const char *next = json_string_value(json_object_get(out, "nextForwardToken"));
		bool same = !next || (ls->token && streq(next, ls->token));
		free(ls->token);
		ls->token = next ? xstrdup(next) : NULL;
		if (same || json_array_size(json_object_get(out, "events")) == 0)
			break;
	}
	fflush(stdout);
	return printed;
}

static bool task_stopped(struct ecs_cli *e, const char *arn)
{
	_cleanup_json_ json_t *in = json_pack("{s:[s]}", "tasks", arn), *out = NULL;
	if (cli_ecs_call(e, "DescribeTasks", in, true, &out) < 0)
		return true;
	const char *st = json_string_value(
	    json_object_get(json_array_get(json_object_get(out, "tasks"), 0), "lastStatus"));
	return !st || streq(st, "STOPPED");
}

static int show_logs(struct ecs_cli *e, struct aws_client *logs, const char *ref, const struct logs_opts *o)
{
	_cleanup_json_ json_t *in = json_pack("{s:[s]}", "tasks", ref), *out = NULL, *tdo = NULL;
	if (cli_ecs_call(e, "DescribeTasks", in, true, &out) < 0)
		return 1;
	json_t *task = json_array_get(json_object_get(out, "tasks"), 0);
	if (!task) {
		fprintf(stderr, "berth: task '%s' not found\n", ref);
		return 1;
	}
	const char *arn = json_string_value(json_object_get(task, "taskArn"));
	_cleanup_json_ json_t *tdin =
	    json_pack("{s:O}", "taskDefinition", json_object_get(task, "taskDefinitionArn"));
	if (cli_ecs_call(e, "DescribeTaskDefinition", tdin, false, &tdo) < 0)
		return 1;
	struct log_stream *v = NULL;
	size_t n = 0;
	int rc = 0;
	if (task_streams(task, json_object_get(tdo, "taskDefinition"), o->container, &v, &n) < 0)
		return 1;
	for (bool last = false;;) {
		bool any = false;
		for (size_t i = 0; i < n && rc == 0; i++) {
			int r = print_stream(logs, &v[i], n > 1);
			rc = r < 0 ? 1 : 0;
			any |= r > 0;
		}
		if (rc || !o->follow || (last && !any))
			break;
		/* the agent ships within a second or so of the task's end: one more round after STOPPED */
		last = task_stopped(e, arn);
		struct timespec ts = { 1, 0 };
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].group), free(v[i].stream), free(v[i].token);
	free(v);
	return rc;
}

static int task_logs(int argc, char **argv)
{
	static const char *text =
	    "task logs [OPTIONS] TASK\n\nFetch the logs of a task's containers from the server's CloudWatch\n"
	    "Logs API (containers whose logConfiguration is awslogs with awslogs-group and\n"
	    "awslogs-stream-prefix; streams PREFIX/CONTAINER/TASK-ID)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER
	    "      --container NAME    one container of the task\n"
	    "  -f, --follow            follow the output until the task has stopped\n" ECS_CLI_HELP_COMMON
	    "\nThe logs endpoint is AWS_ENDPOINT_URL_LOGS, else the one of the ECS API.\n";
	struct ecs_cli e = { 0 };
	struct logs_opts o = { 0 };
	const struct cli_opt t[] = {
		{ "container", 0, CLI_OPT_STRING, &o.container },
		{ "follow", 'f', CLI_OPT_FLAG, &o.follow },
		{ NULL },
	};
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth task logs\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	struct aws_client *logs = NULL;
	if (cli_ecs_client(&e, "LOGS", AWS_LOGS_SERVICE, AWS_LOGS_TARGET_PREFIX, &logs) < 0) {
		cli_ecs_close(&e);
		return 1;
	}
	rc = show_logs(&e, logs, argv[optind], &o);
	aws_client_free(logs);
	cli_ecs_close(&e);
	return rc;
}

int cli_task(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "inspect", task_inspect, "Show details of tasks" },
		{ "logs", task_logs, "Fetch the logs of a task" },
		{ "ls", task_ls, "List tasks" },
		{ "list", task_ls, NULL },
		{ "run", task_run, "Run tasks from a task definition" },
		{ "stop", task_stop, "Stop tasks" },
	};
	return cli_ecs_group("task", "Manage tasks (groups of containers placed on the cluster's nodes)",
			     verbs, ARRAY_SIZE(verbs), argc, argv);
}
