/*
 * containers.c - container verbs other than run/create: ps, logs, inspect,
 * exec, start, stop, restart, kill, rm, pause, unpause, wait, rename, top.
 */
#include <limits.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/opttab.h"
#include "cli/ecs.h"
#include "common/json.h"
#include "common/util.h"

/* Per-verb settings of the "act on each named container" commands. */
struct multi {
	const char *verb, *usage, *method, *suffix; /* path: /containers/<id><suffix><query> */
	unsigned ok_status;
};

static int help_or_usage(const char *verb, const char *usage, bool help)
{
	fprintf(help ? stdout : stderr, "Usage: berth %s\n", usage);
	return help ? 0 : CLI_EXIT_DAEMON;
}

/* Generic: flags -H, -t/--time, -s/--signal, -f/--force, -v; one request per container. */
static int multi(int argc, char **argv, const struct multi *m)
{
	const char *host = NULL, *t = NULL, *sig = NULL;
	bool force = false, vols = false;
	const struct cli_opt opts[] = {
		{ "host", 'H', CLI_OPT_STRING, &host },  { "time", 't', CLI_OPT_STRING, &t },
		{ "signal", 's', CLI_OPT_STRING, &sig }, { "force", 'f', CLI_OPT_FLAG, &force },
		{ "volumes", 'v', CLI_OPT_FLAG, &vols }, { NULL },
	};
	int rc;
	if (!cli_opttab_parse(opts, argc, argv, "+", m->usage, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "berth %s: requires at least 1 argument.\n", m->verb);
		return help_or_usage(m->verb, m->usage, false);
	}
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	_cleanup_strbuf_ struct strbuf q = STRBUF_INIT;
	if (t)
		strbuf_addf(&q, "?t=%s", t);
	if (sig)
		strbuf_addf(&q, "?signal=%s", sig);
	if (force || vols)
		strbuf_addf(&q, "?force=%d&v=%d", force, vols);
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *id = cli_escape(argv[i]);
		json_t *resp = NULL;
		long st =
		    cli_call(&cli, m->method, NULL, &resp, "/v1.41/containers/%s%s%s", id, m->suffix, q.buf);
		if (st == m->ok_status || st == 304) {
			printf("%s\n", argv[i]);
		} else {
			if (st > 0)
				cli_print_daemon_error(resp, st);
			rc = 1;
		}
		json_decref(resp);
	}
	cli_close(&cli);
	return rc;
}

int cli_stop(int argc, char **argv)
{
	static const struct multi m = { "stop", "stop [-t SECONDS] CONTAINER...\n\nStop running containers",
					"POST", "/stop", 204 };
	return multi(argc, argv, &m);
}

int cli_restart(int argc, char **argv)
{
	static const struct multi m = { "restart", "restart [-t SECONDS] CONTAINER...\n\nRestart containers",
					"POST", "/restart", 204 };
	return multi(argc, argv, &m);
}

int cli_kill(int argc, char **argv)
{
	static const struct multi m = { "kill", "kill [-s SIGNAL] CONTAINER...\n\nKill running containers",
					"POST", "/kill", 204 };
	return multi(argc, argv, &m);
}

int cli_rm(int argc, char **argv)
{
	static const struct multi m = { "rm", "rm [-f] [-v] CONTAINER...\n\nRemove containers", "DELETE", "",
					204 };
	return multi(argc, argv, &m);
}

int cli_pause(int argc, char **argv)
{
	static const struct multi m = { "pause", "pause CONTAINER...\n\nPause all processes in containers",
					"POST", "/pause", 204 };
	return multi(argc, argv, &m);
}

int cli_unpause(int argc, char **argv)
{
	static const struct multi m = { "unpause", "unpause CONTAINER...\n\nUnpause containers", "POST",
					"/unpause", 204 };
	return multi(argc, argv, &m);
}

int cli_start(int argc, char **argv)
{
	static const struct multi m = { "start", "start CONTAINER...\n\nStart stopped containers", "POST",
					"/start", 204 };
	return multi(argc, argv, &m);
}

int cli_wait(int argc, char **argv)
{
	if (cli_is_help(argc, argv) || argc < 2)
		return help_or_usage(
		    "wait", "wait CONTAINER...\n\nBlock until containers stop, print exit codes", argc >= 2);
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		_cleanup_free_ char *id = cli_escape(argv[i]);
		json_t *resp = NULL;
		long st = cli_call(&cli, "POST", NULL, &resp, "/v1.41/containers/%s/wait", id);
		if (st == 200)
			printf("%lld\n", (long long)json_integer_value(json_object_get(resp, "StatusCode")));
		else {
			if (st > 0)
				cli_print_daemon_error(resp, st);
			rc = 1;
		}
		json_decref(resp);
	}
	cli_close(&cli);
	return rc;
}

int cli_rename(int argc, char **argv)
{
	if (cli_is_help(argc, argv) || argc != 3)
		return help_or_usage("rename", "rename CONTAINER NEW_NAME\n\nRename a container",
				     argc != 3 ? false : true);
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *id = cli_escape(argv[1]), *name = cli_escape(argv[2]);
	json_t *resp = NULL;
	long st = cli_call(&cli, "POST", NULL, &resp, "/v1.41/containers/%s/rename?name=%s", id, name);
	if (st != 204 && st > 0)
		cli_print_daemon_error(resp, st);
	json_decref(resp);
	cli_close(&cli);
	return st == 204 ? 0 : 1;
}

int cli_top(int argc, char **argv)
{
	/* without a container (or with only options): the cluster view, `berth cluster top` */
	if (argc == 1 || (argv[1][0] == '-' && !cli_is_help(argc, argv)))
		return cli_cluster_top(argc, argv);
	if (cli_is_help(argc, argv) || argc != 2)
		return help_or_usage(
		    "top",
		    "top CONTAINER\n\nDisplay the running processes of a container\n\n"
		    "Without CONTAINER (`berth top [--cluster NAME]`): CPU and memory of a cluster's "
		    "services and tasks, as `berth cluster top`",
		    argc == 2);
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *id = cli_escape(argv[1]);
	json_t *resp = NULL;
	long st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/containers/%s/top", id);
	if (st == 200) {
		json_t *titles = json_object_get(resp, "Titles");
		size_t n = json_array_size(titles);
		const char **h = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			h[i] = json_string_value(json_array_get(titles, i));
		cli_print_table(h, n, json_object_get(resp, "Processes"));
		free(h);
	} else if (st > 0) {
		cli_print_daemon_error(resp, st);
	}
	json_decref(resp);
	cli_close(&cli);
	return st == 200 ? 0 : 1;
}

static json_t *ps_row_object(const json_t *c, bool trunc)
{
	const char *id = json_string_value(json_object_get(c, "Id")) ?: "";
	const char *name = json_string_value(json_array_get(json_object_get(c, "Names"), 0)) ?: "/";
	const char *cmd = json_string_value(json_object_get(c, "Command")) ?: "";
	_cleanup_free_ char *q =
	    trunc && strlen(cmd) > 20 ? xasprintf("\"%.19s…\"", cmd) : xasprintf("\"%s\"", cmd);
	_cleanup_free_ char *ago = cli_human_ago(json_integer_value(json_object_get(c, "Created")));
	return json_pack("{s:s%,s:s,s:s,s:s,s:s,s:O,s:s,s:s,s:O}", "ID", id, (size_t)(trunc ? 12 : 64),
			 "Image", json_string_value(json_object_get(c, "Image")) ?: "", "Command", q,
			 "RunningFor", ago, "Status", json_string_value(json_object_get(c, "Status")) ?: "",
			 "State", json_object_get(c, "State"), "Ports", "", "Names", name + 1, "Labels",
			 json_object_get(c, "Labels") ?: json_null());
}

static const char *const ps_headers[] = { "CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
					  "STATUS",       "PORTS", "NAMES" };
static const char *const ps_keys[] = { "ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names" };

/* ps's --filter k=v: filters[k] += [v] (the list encoding of docker's filters). */
static int ps_filter(void *dest, const char *arg)
{
	const char *eq = strchr(arg, '=');
	_cleanup_free_ char *k = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
	json_t *a = json_object_get(dest, k);
	if (!a)
		json_object_set_new(dest, k, a = json_array());
	json_array_append_new(a, json_string(eq ? eq + 1 : ""));
	return 0;
}

int cli_ps(int argc, char **argv)
{
	static const struct cli_usage u = {
		CLI_USAGE_PLAIN,
		"ps [OPTIONS]\n\nList containers\n\n  -a, --all\n  -q, --quiet\n"
		"  -f, --filter KEY=VALUE (status, name, id, label, exited, ancestor)\n"
		"      --format TEMPLATE|json|table\n      --no-trunc\n  -n, --last N\n",
		"ps [OPTIONS]",
	};
	bool all = false, quiet = false, no_trunc = false, latest = false;
	const char *format = NULL, *host = NULL;
	long last = 0;
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "all", 'a', CLI_OPT_FLAG, &all },
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ "filter", 'f', CLI_OPT_CALL, filters, .fn = ps_filter, .has_arg = true },
		{ "format", 0, CLI_OPT_STRING, &format },
		{ "no-trunc", 0, CLI_OPT_FLAG, &no_trunc },
		{ "last", 'n', CLI_OPT_LONG, &last, NULL, -1, INT_MAX },
		{ "latest", 'l', CLI_OPT_FLAG, &latest },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse_usage(t, argc, argv, NULL, &u, &rc))
		return rc;
	bool trunc = !no_trunc;
	if (latest)
		last = 1;
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	_cleanup_free_ char *ftext = json_dumps(filters, JSON_COMPACT);
	_cleanup_free_ char *fq = cli_escape(ftext);
	json_t *resp = NULL;
	long st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/containers/json?all=%d&limit=%ld&filters=%s",
			   all, last, fq);
	cli_close(&cli);
	if (st != 200) {
		if (st > 0)
			cli_print_daemon_error(resp, st);
		json_decref(resp);
		return 1;
	}
	json_t *rows = json_array();
	size_t i;
	json_t *c;
	json_array_foreach (resp, i, c) {
		_cleanup_json_ json_t *o = ps_row_object(c, trunc);
		if (quiet) {
			printf("%s\n", json_string_value(json_object_get(o, "ID")));
		} else if (format && !startswith(format, "table")) {
			_cleanup_free_ char *line = cli_format(format, o);
			printf("%s\n", line);
		} else {
			json_t *row = json_array();
			for (size_t k = 0; k < ARRAY_SIZE(ps_keys); k++)
				json_array_append(row, json_object_get(o, ps_keys[k]));
			json_array_append_new(rows, row);
		}
	}
	if (!quiet && (!format || startswith(format, "table")))
		cli_print_table(ps_headers, ARRAY_SIZE(ps_headers), rows);
	json_decref(rows);
	json_decref(resp);
	return 0;
}

struct logs_sink {
	bool tty;
	struct strbuf pending;
};

static int on_logs(void *ctx, const char *data, size_t len)
{
	struct logs_sink *s = ctx;
	if (s->tty) {
		fwrite(data, 1, len, stdout);
		fflush(stdout);
		return 0;
	}
	strbuf_add(&s->pending, data, len);
	size_t i = 0;
	while (s->pending.len - i >= 8) {
		const unsigned char *h = (const unsigned char *)s->pending.buf + i;
		size_t n = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
		if (s->pending.len - i - 8 < n)
			break;
		FILE *f = h[0] == 2 ? stderr : stdout;
		fwrite(s->pending.buf + i + 8, 1, n, f);
		fflush(f);
		i += 8 + n;
	}
	memmove(s->pending.buf, s->pending.buf + i, s->pending.len - i);
	strbuf_setlen(&s->pending, s->pending.len - i);
	return 0;
}

int cli_logs(int argc, char **argv)
{
	static const struct cli_usage u = {
		CLI_USAGE_PLAIN,
		"logs [-f] [--tail N] [-t] [--since T] [--until T] CONTAINER\n\nFetch the logs of a "
		"container",
		"logs [OPTIONS] CONTAINER",
	};
	bool follow = false, ts = false;
	const char *tail = "all", *since = "", *until = "", *host = NULL;
	const struct cli_opt t[] = {
		{ "follow", 'f', CLI_OPT_FLAG, &follow },
		{ "tail", 'n', CLI_OPT_STRING, &tail },
		{ "timestamps", 't', CLI_OPT_FLAG, &ts },
		{ "since", 0, CLI_OPT_STRING, &since },
		{ "until", 0, CLI_OPT_STRING, &until },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int prc;
	if (!cli_opttab_parse_usage(t, argc, argv, NULL, &u, &prc))
		return prc;
	if (optind + 1 != argc)
		return help_or_usage("logs", "logs [OPTIONS] CONTAINER", false);
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	_cleanup_free_ char *id = cli_escape(argv[optind]);
	json_t *info = NULL;
	long st = cli_call(&cli, "GET", NULL, &info, "/v1.41/containers/%s/json", id);
	if (st != 200) {
		if (st > 0)
			cli_print_daemon_error(info, st);
		json_decref(info);
		cli_close(&cli);
		return 1;
	}
	struct logs_sink sink = { json_is_true(json_object_get(json_object_get(info, "Config"), "Tty")),
				  STRBUF_INIT };
	json_decref(info);
	_cleanup_free_ char *qs = cli_escape(since), *qu = cli_escape(until), *qt = cli_escape(tail);
	_cleanup_free_ char *path =
	    xasprintf("/v1.41/containers/%s/logs?stdout=1&stderr=1&follow=%d&timestamps=%d"
		      "&tail=%s&since=%s&until=%s",
		      id, follow, ts, qt, qs, qu);
	_cleanup_strbuf_ struct strbuf errbody = STRBUF_INIT;
	struct http_client_request r = {
		.method = "GET", .path = path, .body_fd = -1, .on_body = on_logs, .on_body_ctx = &sink
	};
	_cleanup_error_ struct berth_error *err = NULL;
	int rc = http_client_do(cli.http, &r, &st, NULL, &err);
	strbuf_release(&sink.pending);
	cli_close(&cli);
	if (rc < 0) {
		berth_error_print(err, NULL);
		return 1;
	}
	return st == 200 ? 0 : 1;
}

int cli_inspect(int argc, char **argv)
{
	static const struct cli_usage u = {
		CLI_USAGE_PLAIN,
		"inspect [-f TEMPLATE] [--type container|image] NAME...\n\n"
		"Return low-level information on containers or images",
		"inspect [OPTIONS] NAME...",
	};
	const char *format = NULL, *type = NULL, *host = NULL;
	const struct cli_opt t[] = {
		{ "format", 'f', CLI_OPT_STRING, &format },
		{ "type", 0, CLI_OPT_STRING, &type },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int prc;
	if (!cli_opttab_parse_usage(t, argc, argv, NULL, &u, &prc))
		return prc;
	if (optind >= argc)
		return help_or_usage("inspect", "inspect [OPTIONS] NAME...", false);
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	json_t *all = json_array();
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *id = cli_escape(argv[i]);
		json_t *resp = NULL;
		long st = 404;
		if (!type || streq(type, "container"))
			st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/containers/%s/json", id);
		if (st == 404 && (!type || streq(type, "image"))) {
			json_decref(resp);
			st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/images/%s/json", argv[i]);
		}
		if (st == 200) {
			json_array_append(all, resp);
		} else {
			if (st > 0)
				fprintf(stderr, "Error: No such object: %s\n", argv[i]);
			rc = 1;
		}
		json_decref(resp);
	}
	cli_close(&cli);
	if (format) {
		size_t i;
		json_t *o;
		json_array_foreach (all, i, o) {
			_cleanup_free_ char *line = cli_format(format, o);
			printf("%s\n", line);
		}
	} else {
		char *s = json_dumps(all, JSON_INDENT(4));
		printf("%s\n", s);
		free(s);
	}
	json_decref(all);
	return rc;
}

int cli_exec(int argc, char **argv)
{
	static const struct cli_usage u = {
		CLI_USAGE_PLAIN,
		"exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] [--detach-keys KEYS] CONTAINER "
		"COMMAND [ARG...]\n\nRun a command in a running container\n"
		"(--detach-keys: key sequence that detaches from a TTY, default ctrl-p,ctrl-q)",
		"exec [OPTIONS] CONTAINER COMMAND [ARG...]",
	};
	bool d = false, in = false, tty = false, priv = false;
	const char *host = NULL;
	_cleanup_json_ json_t *cfg = json_object();
	json_object_set_new(cfg, "Env", json_array());
	const struct cli_opt t[] = {
		{ "detach", 'd', CLI_OPT_FLAG, &d },
		{ "interactive", 'i', CLI_OPT_FLAG, &in },
		{ "tty", 't', CLI_OPT_FLAG, &tty },
		{ "env", 'e', CLI_OPT_JSON_APPEND, cfg, "Env" },
		{ "user", 'u', CLI_OPT_JSON_STR, cfg, "User" },
		{ "workdir", 'w', CLI_OPT_JSON_STR, cfg, "WorkingDir" },
		{ "privileged", 0, CLI_OPT_FLAG, &priv },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ "detach-keys", 0, CLI_OPT_JSON_STR, cfg, "DetachKeys" },
		{ NULL },
	};
	int prc;
	if (!cli_opttab_parse_usage(t, argc, argv, "+", &u, &prc))
		return prc;
	if (optind + 2 > argc) {
		fprintf(stderr, "berth exec: requires at least 2 arguments.\n");
		return help_or_usage("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", false);
	}
	json_t *cmd = json_array();
	for (int i = optind + 1; i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	json_object_set_new(cfg, "Cmd", cmd);
	json_object_set_new(cfg, "Tty", json_boolean(tty));
	json_object_set_new(cfg, "Privileged", json_boolean(priv));
	json_object_set_new(cfg, "AttachStdin", json_boolean(in && !d));
	json_object_set_new(cfg, "AttachStdout", json_boolean(!d));
	json_object_set_new(cfg, "AttachStderr", json_boolean(!d));
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	_cleanup_free_ char *cid = cli_escape(argv[optind]);
	json_t *resp = NULL;
	long st = cli_call(&cli, "POST", cfg, &resp, "/v1.41/containers/%s/exec", cid);
	if (st != 201) {
		if (st > 0)
			cli_print_daemon_error(resp, st);
		json_decref(resp);
		cli_close(&cli);
		return CLI_EXIT_DAEMON;
	}
	_cleanup_free_ char *xid = xstrdup(json_string_value(json_object_get(resp, "Id")) ?: "");
	json_decref(resp);
	_cleanup_free_ char *path = xasprintf("/v1.41/exec/%s/start", xid);
	_cleanup_free_ char *body =
	    xasprintf("{\"Detach\":%s,\"Tty\":%s}", d ? "true" : "false", tty ? "true" : "false");
	int code = 0;
	if (d) {
		_cleanup_json_ json_t *b = json_loads(body, 0, NULL);
		st = cli_call(&cli, "POST", b, &resp, "%s", path);
		code = st == 200 || st == 204 ? 0 : CLI_EXIT_DAEMON;
		json_decref(resp);
	} else {
		int fd = -1;
		if (cli_hijack(&cli, path, body, &fd) < 0) {
			cli_close(&cli);
			return CLI_EXIT_DAEMON;
		}
		struct termios saved;
		bool raw = tty && in && cli_raw_terminal(&saved);
		bool detached = false;
		cli_attach_session(fd, in, tty, json_string_value(json_object_get(cfg, "DetachKeys")),
				   &detached);
		if (raw)
			tcsetattr(STDIN_FILENO, TCSANOW, &saved);
		close(fd);
		st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/exec/%s/json", xid);
		json_t *ec = json_object_get(resp, "ExitCode");
		detached = detached || (tty && in && json_is_true(json_object_get(resp, "Running")));
		code = json_is_integer(ec) ? (int)json_integer_value(ec)
		       : detached          ? 0
					   : CLI_EXIT_CANNOT_INVOKE;
		json_decref(resp);
	}
	cli_close(&cli);
	return code;
}
