/*
 * ecsutil.c - what the cluster verbs share (see ecs.h): AWS options, the
 * client, printing API errors and failures, tables/JSON/templates, ARN and
 * resource helpers, and the verb-group dispatch.
 *
 * Every verb resolves the configuration itself (no global state), so a verb
 * is testable by running the binary with a different environment.
 */
#include <time.h>

#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"
#include "common/strbuf.h"

/* DescribeTasks / DescribeContainerInstances / DescribeClusters take at most this many. */
#define ECS_DESCRIBE_BATCH 100

/* --format: 'table' is the default (NULL). */
static int format_opt(void *dest, const char *arg)
{
	*(const char **)dest = streq(arg, "table") ? NULL : arg;
	return 0;
}

bool cli_ecs_parse_table(struct ecs_cli *e, int argc, char **argv, const struct cli_opt *t, const char *usage,
			 int *rc)
{
	const struct cli_opt shared[] = {
		{ "endpoint", 0, CLI_OPT_STRING, &e->flags.endpoint },
		{ "endpoint-url", 0, CLI_OPT_STRING, &e->flags.endpoint },
		{ "ca-bundle", 0, CLI_OPT_STRING, &e->flags.ca_bundle },
		{ "region", 0, CLI_OPT_STRING, &e->flags.region },
		{ "profile", 0, CLI_OPT_STRING, &e->flags.profile },
		{ "cluster", 0, CLI_OPT_STRING, &e->cluster },
		{ "format", 0, CLI_OPT_CALL, &e->format, .fn = format_opt, .has_arg = true },
	};
	size_t n = 0;
	while (t && t[n].name)
		n++;
	/* the shared options first, then the verb's own, then the end */
	_cleanup_free_ struct cli_opt *all = xcalloc(ARRAY_SIZE(shared) + n + 1, sizeof(*all));
	memcpy(all, shared, sizeof(shared));
	if (n)
		memcpy(all + ARRAY_SIZE(shared), t, n * sizeof(*t));
	opterr = 1;
	return cli_opttab_parse(all, argc, argv, NULL, usage, rc); /* options may follow operands */
}

bool cli_ecs_parse(struct ecs_cli *e, int argc, char **argv, const char *usage, int *rc)
{
	return cli_ecs_parse_table(e, argc, argv, NULL, usage, rc);
}

static const char *real_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

int cli_ecs_error(struct berth_error *err)
{
	berth_error_print(err, "berth");
	return 1;
}

int cli_ecs_client(struct ecs_cli *e, const char *env, const char *service, const char *prefix,
		   struct aws_client **ret)
{
	struct aws_config cfg;
	_cleanup_error_ struct berth_error *err = NULL;
	if (aws_config_resolve(&e->flags, env, real_getenv, NULL, &cfg, &err) < 0) {
		cli_ecs_error(err);
		return -1;
	}
	int r = aws_client_new(&cfg, service, prefix, ret, &err);
	aws_config_done(&cfg);
	if (r < 0) {
		cli_ecs_error(err);
		return -1;
	}
	return 0;
}

int cli_ecs_open(struct ecs_cli *e)
{
	return cli_ecs_client(e, "ECS", AWS_ECS_SERVICE, AWS_ECS_TARGET_PREFIX, &e->aws);
}

void cli_ecs_close(struct ecs_cli *e)
{
	e->aws = aws_client_free(e->aws);
}

static json_t *with_cluster_field(struct ecs_cli *e, json_t *in, bool with_cluster)
{
	json_t *req = in ? json_deep_copy(in) : json_object();
	if (with_cluster && e->cluster && !json_object_get(req, "cluster"))
		json_object_set_new(req, "cluster", json_string(e->cluster));
	return req;
}

int cli_ecs_call(struct ecs_cli *e, const char *op, json_t *in, bool with_cluster, json_t **ret)
{
	_cleanup_json_ json_t *req = with_cluster_field(e, in, with_cluster);
	_cleanup_error_ struct berth_error *err = NULL;
	if (aws_client_call(e->aws, op, req, ret, &err) < 0) {
		cli_ecs_error(err);
		return -1;
	}
	return 0;
}

int cli_ecs_list(struct ecs_cli *e, const char *op, json_t *in, bool with_cluster, const char *key,
		 json_t **ret)
{
	_cleanup_json_ json_t *req = with_cluster_field(e, in, with_cluster);
	_cleanup_error_ struct berth_error *err = NULL;
	if (aws_client_paginate(e->aws, op, req, key, ret, &err) < 0) {
		cli_ecs_error(err);
		return -1;
	}
	return 0;
}

int cli_ecs_describe(struct ecs_cli *e, const char *op, const char *in_key, const char *out_key, json_t *arns,
		     json_t *extra, json_t **ret, json_t **ret_failures)
{
	_cleanup_json_ json_t *items = json_array(), *failures = json_array();
	for (size_t at = 0; at < json_array_size(arns); at += ECS_DESCRIBE_BATCH) {
		json_t *req = extra ? json_deep_copy(extra) : json_object();
		json_t *batch = json_array();
		for (size_t i = at; i < MIN(at + ECS_DESCRIBE_BATCH, json_array_size(arns)); i++)
			json_array_append(batch, json_array_get(arns, i));
		json_object_set_new(req, in_key, batch);
		json_t *resp = NULL;
		int r = cli_ecs_call(e, op, req, true, &resp);
		json_decref(req);
		if (r < 0)
			return -1;
		json_array_extend(items, json_object_get(resp, out_key));
		json_array_extend(failures, json_object_get(resp, "failures"));
		json_decref(resp);
	}
	*ret = TAKE_PTR(items);
	if (ret_failures)
		*ret_failures = TAKE_PTR(failures);
	return 0;
}

size_t cli_ecs_print_failures(const json_t *failures)
{
	size_t i;
	json_t *f;
	json_array_foreach (failures, i, f) {
		const char *arn = json_string_value(json_object_get(f, "arn"));
		const char *reason = json_string_value(json_object_get(f, "reason"));
		const char *detail = json_string_value(json_object_get(f, "detail"));
		fprintf(stderr, "berth: %s%s%s%s%s%s\n", arn ? arn : "", arn ? ": " : "",
			reason ? reason : "failure", detail ? " (" : "", detail ? detail : "",
			detail ? ")" : "");
	}
	return json_array_size(failures);
}

int cli_ecs_print_described(const struct ecs_cli *e, const json_t *out, const char *key,
			    void (*print_one)(const json_t *item))
{
	const json_t *items = json_object_get(out, key);
	size_t i;
	json_t *it;
	if (cli_ecs_json(e))
		cli_ecs_print_json(out);
	else if (e->format)
		cli_ecs_print_items(e, NULL, 0, items, NULL);
	else
		json_array_foreach (items, i, it) {
			if (i)
				printf("\n");
			print_one(it);
		}
	return cli_ecs_print_failures(json_object_get(out, "failures")) ? 1 : 0;
}

int cli_ecs_inspect(int argc, char **argv, const char *text, const struct ecs_inspect *how)
{
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth %s\" requires at least 1 argument.\n", how->verb);
		return cli_usage(text, false);
	}
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *in = json_pack("{s:[],s:[s]}", how->key, "include", "TAGS"), *out = NULL;
	for (int i = optind; i < argc; i++)
		json_array_append_new(json_object_get(in, how->key), json_string(argv[i]));
	rc = 1;
	if (cli_ecs_call(&e, how->op, in, how->with_cluster, &out) == 0)
		rc = cli_ecs_print_described(&e, out, how->key, how->print_one);
	cli_ecs_close(&e);
	return rc;
}

int cli_ecs_opt_long(const struct cli_opt *o, const char *arg)
{
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	long n;
	if (cli_ecs_parse_long(flag, arg, o->min, o->max, &n) < 0)
		return -1;
	json_object_set_new(o->dest, o->key, json_integer(n));
	return 0;
}

int cli_ecs_parse_long(const char *flag, const char *arg, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < min || v > max) {
		fprintf(stderr, "berth: invalid %s '%s': expected a number from %ld to %ld\n", flag, arg, min,
			max);
		return -1;
	}
	*ret = v;
	return 0;
}

void cli_ecs_append(json_t *in, const char *key, json_t *item)
{
	json_t *list = json_object_get(in, key);
	if (!list)
		json_object_set_new(in, key, list = json_array());
	json_array_append_new(list, item);
}

bool cli_ecs_json(const struct ecs_cli *e)
{
	return e->format && streq(e->format, "json");
}

void cli_ecs_print_json(const json_t *v)
{
	_cleanup_free_ char *s =
	    json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
	printf("%s\n", s ? s : "null");
}

void cli_ecs_print_items(const struct ecs_cli *e, const char *const *headers, size_t ncols,
			 const json_t *items, ecs_row_fn row_fn)
{
	size_t i;
	json_t *it;
	if (e->format) {
		json_array_foreach (items, i, it) {
			_cleanup_free_ char *line = cli_format(e->format, it);
			printf("%s\n", line);
		}
		return;
	}
	_cleanup_json_ json_t *rows = json_array();
	json_array_foreach (items, i, it)
		json_array_append_new(rows, row_fn(it));
	cli_print_table(headers, ncols, rows);
}

void cli_ecs_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

double cli_ecs_now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *cli_ecs_arn_id(const char *arn)
{
	if (!arn)
		return "";
	if (!startswith(arn, "arn:"))
		return arn;
	const char *slash = strrchr(arn, '/');
	return slash ? slash + 1 : arn;
}

char *cli_ecs_taskdef_name(const char *arn)
{
	if (!arn)
		return xstrdup("");
	const char *p = strstr(arn, ":task-definition/");
	return xstrdup(p ? p + strlen(":task-definition/") : arn);
}

long long cli_ecs_resource(const json_t *resources, const char *name)
{
	size_t i;
	json_t *r;
	json_array_foreach (resources, i, r)
		if (streq_ptr(json_string_value(json_object_get(r, "name")), name))
			return (long long)json_integer_value(json_object_get(r, "integerValue"));
	return -1;
}

char *cli_ecs_time(const json_t *v)
{
	if (!json_is_number(v))
		return xstrdup("");
	time_t t = (time_t)json_number_value(v);
	struct tm tm;
	char buf[32];
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return xstrdup(buf);
}

const char *cli_ecs_attribute(const json_t *attrs, const char *name)
{
	size_t i;
	json_t *a;
	json_array_foreach (attrs, i, a)
		if (streq_ptr(json_string_value(json_object_get(a, "name")), name))
			return json_string_value(json_object_get(a, "value")) ?: "";
	return NULL;
}

/* The allowed key that s starts with, followed by '=', or NULL. */
static const char *kv_key_at(const char *s, const char *const *allowed)
{
	for (const char *const *a = allowed; *a; a++)
		if (startswith(s, *a) && s[strlen(*a)] == '=')
			return *a;
	return NULL;
}

json_t *cli_ecs_parse_kv(const char *flag, const char *s, const char *const *allowed)
{
	_cleanup_json_ json_t *o = json_object();
	const char *p = s;
	while (*p) {
		const char *key = kv_key_at(p, allowed);
		if (!key || json_object_get(o, key)) {
			fprintf(stderr, "berth: invalid %s '%s': expected ", flag, s);
			for (const char *const *a = allowed; *a; a++)
				fprintf(stderr, "%s%s=VALUE", a == allowed ? "" : ",", *a);
			fprintf(stderr, "\n");
			return NULL;
		}
		/* a value runs to the next ",KEY=" (values may hold commas: "attribute:x in [a, b]") */
		const char *v = p + strlen(key) + 1, *end = v;
		while (*end && !(*end == ',' && kv_key_at(end + 1, allowed)))
			end++;
		json_object_set_new(o, key, json_stringn(v, (size_t)(end - v)));
		p = *end ? end + 1 : end;
	}
	return TAKE_PTR(o);
}

/* Split s shell-like (quotes, backslashes, no expansion) into a JSON array; NULL when unterminated. */
static json_t *split_words(const char *s)
{
	_cleanup_json_ json_t *words = json_array();
	_cleanup_strbuf_ struct strbuf w = STRBUF_INIT;
	bool in_word = false;
	char quote = 0;
	for (const char *p = s; *p; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
			else if (*p == '\\' && quote == '"' && (p[1] == '"' || p[1] == '\\'))
				strbuf_addch(&w, *++p);
			else
				strbuf_addch(&w, *p);
		} else if (*p == '\'' || *p == '"') {
			quote = *p;
			in_word = true;
		} else if (*p == '\\' && p[1]) {
			strbuf_addch(&w, *++p);
			in_word = true;
		} else if (*p == ' ' || *p == '\t' || *p == '\n') {
			if (in_word)
				json_array_append_new(words, json_string(w.buf));
			strbuf_setlen(&w, 0);
			in_word = false;
		} else {
			strbuf_addch(&w, *p);
			in_word = true;
		}
	}
	if (quote)
		return NULL;
	if (in_word)
		json_array_append_new(words, json_string(w.buf));
	return TAKE_PTR(words);
}

json_t *cli_ecs_parse_command(const char *s)
{
	if (s[strspn(s, " \t")] == '[') {
		json_t *j = json_loads(s, 0, NULL);
		bool ok = json_is_array(j) && json_array_size(j) > 0;
		size_t i;
		json_t *x;
		json_array_foreach (j, i, x)
			ok = ok && json_is_string(x);
		if (ok)
			return j;
		json_decref(j);
		fprintf(stderr, "berth: invalid --command '%s': expected a JSON array of strings\n", s);
		return NULL;
	}
	json_t *words = split_words(s);
	if (!words || json_array_size(words) == 0) {
		json_decref(words);
		fprintf(stderr, "berth: invalid --command '%s': empty or unterminated quote\n", s);
		return NULL;
	}
	return words;
}

int cli_ecs_group(const char *group, const char *what, const struct ecs_verb *verbs, size_t n, int argc,
		  char **argv)
{
	bool help = argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"));
	if (argc >= 2 && !help) {
		for (size_t i = 0; i < n; i++)
			if (streq(verbs[i].name, argv[1]))
				return verbs[i].fn(argc - 1, argv + 1);
		fprintf(stderr, "berth %s: '%s' is not a berth %s command.\n", group, argv[1], group);
	}
	FILE *f = help ? stdout : stderr;
	fprintf(f, "Usage: berth %s COMMAND\n\n%s\n\nCommands:\n", group, what);
	for (size_t i = 0; i < n; i++)
		if (verbs[i].summary)
			fprintf(f, "  %-10s  %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f,
		"\nThe commands talk to a berth server's ECS-compatible API, configured like the aws CLI\n"
		"(--endpoint or AWS_ENDPOINT_URL, AWS_CA_BUNDLE, AWS_* keys, ~/.aws/credentials).\n"
		"Run 'berth %s COMMAND --help' for more information on a command.\n",
		group);
	return help ? 0 : CLI_EXIT_DAEMON;
}
