/*
 * cli.c - `berth runtime` / `berth-runtime`: runc's command line over the
 * runtime library, so dockerd (--add-runtime), containerd (runc shim
 * BinaryName) and people typing runc commands can use berth unchanged.
 * Global flags come before the verb, as with runc: --root, --log,
 * --log-format, --debug, --systemd-cgroup. Each verb parses its flags, calls
 * one library function and formats the result.
 */
#include <fcntl.h>
#include <libgen.h>
#include <seccomp.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strv.h"
#include "common/util.h"
#include "runtime/cli.h"

struct cli_globals runtime_cli_g;
static int log_fd = -1;
static bool log_json;

int runtime_cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "berth-runtime: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 2;
}

void runtime_cli_error(const struct berth_error *err)
{
	_cleanup_free_ char *s = berth_error_string(err);
	fprintf(stderr, "berth-runtime: %s\n", s);
	if (log_fd < 0)
		return;
	char ts[RFC3339_MAX];
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	util_format_rfc3339(&now, ts);
	struct strbuf sb = STRBUF_INIT;
	if (log_json) {
		strbuf_addstr(&sb, "{\"level\":\"error\",\"msg\":");
		strbuf_add_json_string(&sb, s);
		strbuf_addf(&sb, ",\"time\":\"%s\"}\n", ts);
	} else {
		strbuf_addf(&sb, "time=\"%s\" level=error msg=", ts);
		strbuf_add_json_string(&sb, s);
		strbuf_addch(&sb, '\n');
	}
	fs_write_all(log_fd, sb.buf, sb.len);
	strbuf_release(&sb);
}

int runtime_cli_parse(const char *verb, int argc, char **argv, const struct cli_opt *opts)
{
	_cleanup_free_ char *who = xasprintf("berth-runtime: %s", verb);
	return opttab_scan_go(opts, argc, argv, who);
}

static int need_id(const char *verb, int argc, char **argv, int idx, const char **id)
{
	if (idx < 0)
		return 2;
	if (idx >= argc)
		return runtime_cli_usage_error("%s: requires a container id", verb);
	*id = argv[idx];
	return 0;
}

static int cmd_start(int argc, char **argv)
{
	const char *id = NULL;
	int r = need_id("start", argc, argv, runtime_cli_parse("start", argc, argv, NULL), &id);
	if (r)
		return r;
	_cleanup_error_ struct berth_error *err = NULL;
	if (runtime_start(&runtime_cli_g.ctx, id, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static int cmd_state(int argc, char **argv)
{
	const char *id = NULL;
	int r = need_id("state", argc, argv, runtime_cli_parse("state", argc, argv, NULL), &id);
	if (r)
		return r;
	_cleanup_error_ struct berth_error *err = NULL;
	struct runtime_state st;
	if (runtime_state(&runtime_cli_g.ctx, id, &st, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	runtime_state_to_json(&st, &sb);
	printf("%s\n", sb.buf);
	runtime_state_done(&st);
	return 0;
}

static int cmd_kill(int argc, char **argv)
{
	bool all = false;
	const struct cli_opt opts[] = { { "all", 'a', CLI_OPT_BOOL, &all }, { NULL } };
	const char *id = NULL;
	int idx = runtime_cli_parse("kill", argc, argv, opts);
	int r = need_id("kill", argc, argv, idx, &id);
	if (r)
		return r;
	int sig = 15;
	/* signal 0 only checks that the container runs (runc accepts it) */
	if (idx + 1 < argc && streq(argv[idx + 1], "0"))
		sig = 0;
	else if (idx + 1 < argc && runtime_parse_signal(argv[idx + 1], &sig) < 0)
		return runtime_cli_usage_error("kill: invalid signal '%s'", argv[idx + 1]), 1;
	_cleanup_error_ struct berth_error *err = NULL;
	if (runtime_kill(&runtime_cli_g.ctx, id, sig, all, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static int cmd_delete(int argc, char **argv)
{
	bool force = false;
	const struct cli_opt opts[] = { { "force", 'f', CLI_OPT_BOOL, &force }, { NULL } };
	const char *id = NULL;
	int r = need_id("delete", argc, argv, runtime_cli_parse("delete", argc, argv, opts), &id);
	if (r)
		return r;
	_cleanup_error_ struct berth_error *err = NULL;
	r = runtime_delete(&runtime_cli_g.ctx, id, force, &err);
	/* runc: deleting a container that does not exist with --force is not an error */
	if (r == -ENOENT && force)
		return 0;
	if (r < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static int cmd_pause_resume(int argc, char **argv)
{
	bool pause = streq(argv[0], "pause");
	const char *id = NULL;
	int r = need_id(argv[0], argc, argv, runtime_cli_parse(argv[0], argc, argv, NULL), &id);
	if (r)
		return r;
	_cleanup_error_ struct berth_error *err = NULL;
	if ((pause ? runtime_pause : runtime_resume)(&runtime_cli_g.ctx, id, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	const char *format = "table";
	bool quiet = false;
	const struct cli_opt opts[] = { { "format", 'f', CLI_OPT_STRING, &format },
					{ "quiet", 'q', CLI_OPT_BOOL, &quiet },
					{ NULL } };
	if (runtime_cli_parse("list", argc, argv, opts) < 0)
		return 2;
	if (!streq(format, "table") && !streq(format, "json"))
		return runtime_cli_usage_error("invalid --format '%s': expected table or json", format);
	_cleanup_error_ struct berth_error *err = NULL;
	struct runtime_state *list;
	size_t n;
	if (runtime_list(&runtime_cli_g.ctx, &list, &n, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	if (streq(format, "json")) {
		struct strbuf sb = STRBUF_INIT;
		strbuf_addch(&sb, '[');
		for (size_t i = 0; i < n; i++) {
			if (i)
				strbuf_addch(&sb, ',');
			runtime_state_to_json(&list[i], &sb);
		}
		strbuf_addch(&sb, ']');
		printf("%s\n", n ? sb.buf : "null");
		strbuf_release(&sb);
	} else if (quiet) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", list[i].id);
	} else {
		printf("%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
		       "OWNER");
		for (size_t i = 0; i < n; i++)
			printf("%-12s %-8d %-10s %-40s %-30s %s\n", list[i].id, (int)list[i].pid,
			       runtime_status_name(list[i].status), list[i].bundle, list[i].created,
			       list[i].owner);
	}
	runtime_state_list_free(list, n);
	return 0;
}

static bool pid_in(pid_t p, const pid_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == p)
			return true;
	return false;
}

static int cmd_ps(int argc, char **argv)
{
	const char *format = "table";
	const struct cli_opt opts[] = { { "format", 'f', CLI_OPT_STRING, &format }, { NULL } };
	const char *id = NULL;
	int idx = runtime_cli_parse("ps", argc, argv, opts);
	int r = need_id("ps", argc, argv, idx, &id);
	if (r)
		return r;
	if (!streq(format, "table") && !streq(format, "json"))
		return runtime_cli_usage_error("invalid --format '%s': expected table or json", format);
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (runtime_pids(&runtime_cli_g.ctx, id, &pids, &n, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	if (streq(format, "json")) {
		printf("[");
		for (size_t i = 0; i < n; i++)
			printf("%s%d", i ? "," : "", (int)pids[i]);
		printf("]\n");
		return 0;
	}
	const char *ps_argv[64] = { "ps" };
	size_t k = 1;
	for (int i = idx + 1; i < argc && k < ARRAY_SIZE(ps_argv) - 1; i++)
		ps_argv[k++] = argv[i];
	if (k == 1)
		ps_argv[k++] = "-ef";
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = ps_argv;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int status;
	if (proc_run(&o, NULL, 0, &out, NULL, 16 << 20, 30000, &status, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	/* Keep the header and the lines whose PID column names a container process. */
	char *line = out.buf, *next;
	int pid_col = -1;
	for (bool header = true; line && *line; line = next, header = false) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char copy[1024];
		snprintf(copy, sizeof(copy), "%s", line);
		int col = 0;
		bool keep = header;
		for (char *save = NULL, *tok = strtok_r(copy, " \t", &save); tok;
		     tok = strtok_r(NULL, " \t", &save), col++) {
			if (header && streq(tok, "PID"))
				pid_col = col;
			else if (!header && col == pid_col)
				keep = pid_in((pid_t)atoi(tok), pids, n);
		}
		if (keep)
			printf("%s\n", line);
	}
	return 0;
}

static void add_int(json_t *o, const char *k, const char *v, bool *bad)
{
	int64_t n;
	if (!v)
		return;
	if (util_parse_bytes(v, &n) < 0 && util_parse_int64(v, &n) < 0) {
		runtime_cli_usage_error("update: invalid value '%s' for '%s'", v, k);
		*bad = true;
		return;
	}
	json_object_set_new(o, k, json_integer(n));
}

static json_t *subobj(json_t *o, const char *k)
{
	json_t *s = json_object_get(o, k);
	if (!s) {
		s = json_object();
		json_object_set_new(o, k, s);
	}
	return s;
}

static int update_flags_json(char **argv, int argc, json_t **ret)
{
	const char *res = NULL, *mem = NULL, *swap = NULL, *resv = NULL, *shares = NULL, *quota = NULL,
		   *period = NULL, *cpus = NULL, *mems = NULL, *pids = NULL, *blkio = NULL;
	const struct cli_opt opts[] = {
		{ "resources", 'r', CLI_OPT_STRING, &res },
		{ "memory", 'm', CLI_OPT_STRING, &mem },
		{ "memory-swap", 0, CLI_OPT_STRING, &swap },
		{ "memory-reservation", 0, CLI_OPT_STRING, &resv },
		{ "cpu-shares", 0, CLI_OPT_STRING, &shares },
		{ "cpu-quota", 0, CLI_OPT_STRING, &quota },
		{ "cpu-period", 0, CLI_OPT_STRING, &period },
		{ "cpuset-cpus", 0, CLI_OPT_STRING, &cpus },
		{ "cpuset-mems", 0, CLI_OPT_STRING, &mems },
		{ "pids-limit", 0, CLI_OPT_STRING, &pids },
		{ "blkio-weight", 0, CLI_OPT_STRING, &blkio },
		{ NULL },
	};
	int idx = runtime_cli_parse("update", argc, argv, opts);
	if (idx < 0)
		return -1;
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *o = NULL;
	if (res) {
		if ((streq(res, "-") ? json_load_path("/dev/stdin", 1 << 20, &o, &err)
				     : json_load_path(res, 1 << 20, &o, &err)) < 0) {
			runtime_cli_error(err);
			return -1;
		}
	} else
		o = json_object();
	bool bad = false;
	if (mem || swap || resv) {
		json_t *m = subobj(o, "memory");
		add_int(m, "limit", mem, &bad);
		add_int(m, "swap", swap, &bad);
		add_int(m, "reservation", resv, &bad);
	}
	if (shares || quota || period || cpus || mems) {
		json_t *c = subobj(o, "cpu");
		add_int(c, "shares", shares, &bad);
		add_int(c, "quota", quota, &bad);
		add_int(c, "period", period, &bad);
		if (cpus)
			json_object_set_new(c, "cpus", json_string(cpus));
		if (mems)
			json_object_set_new(c, "mems", json_string(mems));
	}
	if (pids)
		add_int(subobj(o, "pids"), "limit", pids, &bad);
	if (blkio)
		add_int(subobj(o, "blockIO"), "weight", blkio, &bad);
	if (bad) {
		json_decref(o);
		return -1;
	}
	*ret = o;
	return idx;
}

static int cmd_update(int argc, char **argv)
{
	_cleanup_json_ json_t *o = NULL;
	int idx = update_flags_json(argv, argc, &o);
	const char *id = NULL;
	int r = need_id("update", argc, argv, idx, &id);
	if (r)
		return r;
	_cleanup_error_ struct berth_error *err = NULL;
	struct runtime_resources res;
	if (runtime_resources_parse(o, "resources", &res, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	r = runtime_update(&runtime_cli_g.ctx, id, &res, &err);
	runtime_resources_done(&res);
	if (r < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static int cmd_events(int argc, char **argv)
{
	bool stats = false;
	const char *interval = "5s";
	const struct cli_opt opts[] = { { "stats", 0, CLI_OPT_BOOL, &stats },
					{ "interval", 0, CLI_OPT_STRING, &interval },
					{ NULL } };
	const char *id = NULL;
	int r = need_id("events", argc, argv, runtime_cli_parse("events", argc, argv, opts), &id);
	if (r)
		return r;
	int64_t ns;
	if (util_parse_duration_ns(interval, &ns) < 0 || ns <= 0)
		return runtime_cli_usage_error("events: invalid interval '%s'", interval);
	for (;;) {
		_cleanup_error_ struct berth_error *err = NULL;
		struct runtime_stats st;
		if (runtime_stats(&runtime_cli_g.ctx, id, &st, &err) < 0) {
			runtime_cli_error(err);
			return 1;
		}
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		runtime_stats_to_json(id, &st, &sb);
		printf("%s\n", sb.buf);
		fflush(stdout);
		if (stats)
			return 0;
		struct timespec ts = { ns / 1000000000, ns % 1000000000 };
		nanosleep(&ts, NULL);
		struct runtime_state s;
		if (runtime_state(&runtime_cli_g.ctx, id, &s, NULL) < 0)
			return 0;
		bool stopped = s.status == RUNTIME_STATUS_STOPPED;
		runtime_state_done(&s);
		if (stopped)
			return 0;
	}
}

static int cmd_spec(int argc, char **argv)
{
	const char *bundle = ".";
	bool rootless = false;
	const struct cli_opt opts[] = { { "bundle", 'b', CLI_OPT_STRING, &bundle },
					{ "rootless", 0, CLI_OPT_BOOL, &rootless },
					{ NULL } };
	if (runtime_cli_parse("spec", argc, argv, opts) < 0)
		return 2;
	_cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
	if (access(path, F_OK) == 0)
		return runtime_cli_usage_error("spec: '%s' exists, remove it first", path), 1;
	_cleanup_free_ char *text = runtime_spec_default_json(rootless);
	_cleanup_error_ struct berth_error *err = NULL;
	if (fs_write_file_atomic(path, text, strlen(text), 0644, &err) < 0) {
		runtime_cli_error(err);
		return 1;
	}
	return 0;
}

static int cmd_features(int argc, char **argv)
{
	if (runtime_cli_parse("features", argc, argv, NULL) < 0)
		return 2;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	runtime_features_json(&sb);
	fputs(sb.buf, stdout);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} verbs[] = {
	{ "create", runtime_cli_cmd_create, "create a container" },
	{ "start", cmd_start, "start a created container" },
	{ "run", runtime_cli_cmd_run, "create and start a container" },
	{ "state", cmd_state, "output the state of a container" },
	{ "kill", cmd_kill, "send a signal to the container's init (or all processes with --all)" },
	{ "delete", cmd_delete, "delete a container and its resources" },
	{ "exec", runtime_cli_cmd_exec, "run a new process inside a container" },
	{ "ps", cmd_ps, "list processes in a container" },
	{ "list", cmd_list, "list containers" },
	{ "pause", cmd_pause_resume, "suspend all processes of a container" },
	{ "resume", cmd_pause_resume, "resume a paused container" },
	{ "update", cmd_update, "update resource limits of a container" },
	{ "events", cmd_events, "container statistics (--stats: once)" },
	{ "spec", cmd_spec, "write a default config.json" },
	{ "features", cmd_features, "show the runtime-spec features document" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: berth runtime [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS\n\n"
		   "OCI runtime with runc's command line (also invoked as 'berth-runtime').\n\n"
		   "Global options:\n"
		   "  --root DIR          state directory (default " RUNTIME_DEFAULT_STATE_ROOT ")\n"
		   "  --log FILE          write errors to FILE as well\n"
		   "  --log-format FMT    text or json\n"
		   "  --debug             debug logging and per-phase timings\n"
		   "  --systemd-cgroup    use systemd's cgroup manager (refused: not supported)\n"
		   "  -v, --version       print the version\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
}

static int parse_globals(int argc, char **argv, int *idx)
{
	const char *log = NULL, *fmt = "text", *rootless = NULL, *criu = NULL;
	bool debug = false, systemd = false, version = false, help = false;
	const struct cli_opt opts[] = {
		{ "root", 0, CLI_OPT_STRING, &runtime_cli_g.ctx.state_root },
		{ "log", 0, CLI_OPT_STRING, &log },
		{ "log-format", 0, CLI_OPT_STRING, &fmt },
		{ "debug", 0, CLI_OPT_BOOL, &debug },
		{ "systemd-cgroup", 0, CLI_OPT_BOOL, &systemd },
		{ "rootless", 0, CLI_OPT_STRING, &rootless },
		{ "criu", 0, CLI_OPT_STRING, &criu },
		{ "version", 'v', CLI_OPT_BOOL, &version },
		{ "help", 'h', CLI_OPT_BOOL, &help },
		{ NULL },
	};
	*idx = runtime_cli_parse("runtime", argc, argv, opts);
	if (*idx < 0)
		return 2;
	if (version) {
		const struct scmp_version *v = seccomp_version();
		printf("berth-runtime version %s\nspec: 1.1.0\nlibseccomp: %u.%u.%u\n", BERTH_VERSION,
		       v->major, v->minor, v->micro);
		return 0;
	}
	if (help || *idx >= argc) {
		usage(help ? stdout : stderr);
		return help ? 0 : 2;
	}
	if (!streq(fmt, "text") && !streq(fmt, "json"))
		return runtime_cli_usage_error("invalid --log-format '%s': expected text or json", fmt);
	log_json = streq(fmt, "json");
	if (log) {
		log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (log_fd < 0)
			return runtime_cli_usage_error("open --log '%s': %s", log, strerror(errno));
		log_set_fd(log_fd);
		log_set_format(log_json ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);
	}
	const char *t = getenv("BERTH_RUNTIME_TIMINGS");
	if (debug || (t && *t && !streq(t, "0"))) {
		log_set_level(LOG_LEVEL_DEBUG);
		runtime_cli_g.ctx.timings = true;
	}
	runtime_cli_g.ctx.systemd_cgroup = systemd;
	return -1;
}

int runtime_main(int argc, char **argv)
{
	const char *self = argc > 0 ? basename(argv[0]) : "runtime";
	/* main passes argv + 1 for "berth runtime"; the full vector is needed for the re-exec */
	runtime_cli_g.argv_full = streq(self, "berth-runtime") ? argv : argv - 1;
	runtime_cli_g.ctx = (struct runtime_ctx)RUNTIME_CTX_INIT;
	int idx;
	int r = parse_globals(argc, argv, &idx);
	if (r >= 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if (streq(argv[idx], verbs[i].name)) {
			if (idx + 1 < argc &&
			    (streq(argv[idx + 1], "--help") || streq(argv[idx + 1], "-h"))) {
				printf("Usage: berth runtime %s [OPTIONS] ...\n\n%s\n", verbs[i].name,
				       verbs[i].summary);
				return 0;
			}
			return verbs[i].run(argc - idx, argv + idx);
		}
	return runtime_cli_usage_error("'%s' is not a runtime command; see 'berth runtime --help'",
				       argv[idx]);
}
