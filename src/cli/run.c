/*
 * run.c - `berth create`, `run`, `start` and `exec`: docker's flags turned
 * into the Engine API's Config/HostConfig, and the attach dance of docker
 * run (attach and wait registered before start, so no output and no exit is
 * missed).
 */
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "cli/cli.h"
#include "cli/network.h"
#include "cli/opttab.h"
#include "cli/runopts.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"

struct run_opts {
	bool detach, interactive, tty, rm;
	const char *name, *host;
	json_t *config, *hostconfig;
	const char *detach_keys; /* --detach-keys */
	bool sig_proxy;          /* --sig-proxy[=BOOL], default true */
};

/* --help of run/create (after "Usage: berth "; caller frees). */
static char *usage_run(const char *verb)
{
	return xasprintf(
	    "%s [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n%s\n\nOptions:\n"
	    "  -d, --detach               Run in the background and print the container ID\n"
	    "  -i, --interactive          Keep STDIN open\n"
	    "  -t, --tty                  Allocate a pseudo-TTY\n"
	    "      --rm                   Remove the container when it exits\n"
	    "      --name NAME            Name the container\n"
	    "  -e, --env KEY=VALUE        Set environment variables; --env-file FILE reads them from a file\n"
	    "  -w, --workdir DIR          Working directory inside the container\n"
	    "  -u, --user USER[:GROUP]    User to run as\n"
	    "      --entrypoint CMD       Override the image's entrypoint\n"
	    "  -h, --hostname NAME        Container host name\n"
	    "  -l, --label KEY=VALUE      Set metadata\n"
	    "      --network MODE         bridge (default), a network name, none, host, container:<id>\n"
	    "  -v, --volume [SRC:]DST[:MODE]  Bind mount a host path, a named volume, or (DST only) a\n"
	    "                             new anonymous volume; MODE: ro|rw, z|Z, nocopy, private|\n"
	    "                             rprivate|shared|rshared|slave|rslave\n"
	    "      --mount SPEC           type=bind|volume|tmpfs,source=..,target=..[,readonly]\n"
	    "                             [,bind-propagation=P][,bind-nonrecursive][,volume-nocopy]\n"
	    "                             "
	    "[,volume-opt=K=V][,volume-label=K=V][,tmpfs-size=B][,tmpfs-mode=M]\n"
	    "      --volumes-from C[:ro|rw]  Mount the volumes and binds of container C\n"
	    "      --tmpfs DST[:OPTS]     Mount a tmpfs\n"
	    "      --init                 Run an init (tini) as PID 1: forwards signals, reaps zombies\n"
	    "      --ulimit NAME=SOFT[:HARD]  Set a ulimit (e.g. nofile=1024:2048)\n"
	    "      --cap-add/--cap-drop   Add or drop capabilities\n"
	    "      --privileged           Give extended privileges\n"
	    "      --read-only            Mount the root file system read-only\n"
	    "      --security-opt OPT     no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json\n"
	    "  -m, --memory BYTES         Memory limit (e.g. 512m); --memory-swap BYTES (-1: unlimited)\n"
	    "      --cpus N, --cpu-shares N, --cpuset-cpus LIST, --cpuset-mems LIST, --pids-limit N\n"
	    "      --cpu-quota N, --cpu-period N, --blkio-weight N (10-1000)\n"
	    "      --cgroup-parent PATH   Parent cgroup of the container (default: the daemon's, berth)\n"
	    "      --runtime NAME         OCI runtime of the container: berth, runc or one the daemon\n"
	    "                             defines (--add-runtime); default: the daemon's default\n"
	    "      --stop-signal SIG, --stop-timeout SECONDS\n"
	    "      --restart POLICY       no, always, on-failure[:N], unless-stopped\n"
	    "      --health-cmd CMD, --health-interval D, --health-timeout D, --health-retries N,\n"
	    "      --health-start-period D, --no-healthcheck\n"
	    "      --log-driver json-file|local|none, --log-opt max-size=10m, max-file=3, compress=true\n"
	    "      --add-host HOST:IP     Add a line to /etc/hosts\n"
	    "      --detach-keys KEYS     Key sequence that detaches from a TTY (default ctrl-p,ctrl-q)\n"
	    "      --sig-proxy[=BOOL]     Forward received signals to the container (default true, no "
	    "TTY)\n" CLI_NET_RUN_USAGE "  -H, --host URL             Daemon socket (default $BERTH_HOST)",
	    verb,
	    streq(verb, "run") ? "Create and run a new container from an image" : "Create a new container");
}

static json_t *arr(json_t *obj, const char *key)
{
	json_t *a = json_object_get(obj, key);
	if (!a)
		json_object_set_new(obj, key, a = json_array());
	return a;
}

static json_t *obj_of(json_t *obj, const char *key)
{
	json_t *o = json_object_get(obj, key);
	if (!o)
		json_object_set_new(obj, key, o = json_object());
	return o;
}

static int add_env(void *cfg, const char *kv)
{
	if (!strchr(kv, '=')) {
		const char *v = getenv(kv);
		if (v)
			json_array_append_new(arr(cfg, "Env"), json_sprintf("%s=%s", kv, v));
		return 0;
	}
	json_array_append_new(arr(cfg, "Env"), json_string(kv));
	return 0;
}

static int add_env_file(void *cfg, const char *path)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	if (fs_read_file_at(AT_FDCWD, path, 1 << 20, &sb, &err) < 0) {
		berth_error_print(err, "berth: open env file");
		return -EINVAL;
	}
	char *save = NULL;
	for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " \t");
		size_t n = strlen(line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		if (*line && *line != '#')
			add_env(cfg, line);
	}
	return 0;
}

static int duration_ns(const char *flag, const char *v, json_t *obj, const char *key)
{
	int64_t ns;
	if (util_parse_duration_ns(v, &ns) < 0) {
		fprintf(stderr, "berth: invalid argument \"%s\" for \"--%s\": invalid duration\n", v, flag);
		return -EINVAL;
	}
	json_object_set_new(obj, key, json_integer(ns));
	return 0;
}

static int add_mount(void *hc, const char *spec)
{
	json_t *m = NULL;
	_cleanup_free_ char *msg = NULL;
	if (cli_mount_parse(spec, &m, &msg) < 0) {
		fprintf(stderr, "berth: invalid argument \"%s\" for \"--mount\" flag: %s\n", spec, msg);
		return -EINVAL;
	}
	json_array_append_new(arr(hc, "Mounts"), m);
	return 0;
}

static int add_ulimit(void *hc, const char *spec)
{
	json_t *u = NULL;
	_cleanup_free_ char *msg = NULL;
	if (cli_ulimit_parse(spec, &u, &msg) < 0) {
		fprintf(stderr, "berth: invalid argument \"%s\" for \"--ulimit\" flag: %s\n", spec, msg);
		return -EINVAL;
	}
	json_array_append_new(arr(hc, "Ulimits"), u);
	return 0;
}

/* seccomp=FILE is sent as the file's content, like docker's CLI (the daemon may be elsewhere). */
static int add_security_opt(void *hc, const char *v)
{
	const char *p = startswith(v, "seccomp=") || startswith(v, "seccomp:") ? v + 8 : NULL;
	if (!p || streq(p, "unconfined") || p[0] == '{') {
		json_array_append_new(arr(hc, "SecurityOpt"), json_string(v));
		return 0;
	}
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	if (fs_read_file_at(AT_FDCWD, p, 1 << 20, &sb, &err) < 0) {
		berth_error_print(err, "berth: opening seccomp profile failed");
		return -EINVAL;
	}
	json_array_append_new(arr(hc, "SecurityOpt"), json_sprintf("seccomp=%s", sb.buf));
	return 0;
}

static int set_bytes(json_t *hc, const char *key, const char *v)
{
	int64_t b;
	if (util_parse_bytes(v, &b) < 0) {
		fprintf(stderr, "berth: invalid size: '%s'\n", v);
		return -EINVAL;
	}
	json_object_set_new(hc, key, json_integer(b));
	return 0;
}

static int set_int(json_t *obj, const char *key, const char *v)
{
	int64_t n;
	if (util_parse_int64(v, &n) < 0) {
		fprintf(stderr, "berth: invalid number: '%s'\n", v);
		return -EINVAL;
	}
	json_object_set_new(obj, key, json_integer(n));
	return 0;
}

static int set_log_opt(void *hc, const char *v)
{
	const char *eq = strchr(v, '=');
	if (!eq) {
		fprintf(stderr, "berth: invalid log-opt '%s': expected key=value\n", v);
		return -EINVAL;
	}
	_cleanup_free_ char *k = xstrndup(v, (size_t)(eq - v));
	json_object_set_new(obj_of(obj_of(hc, "LogConfig"), "Config"), k, json_string(eq + 1));
	return 0;
}

static int set_cpus(void *hc, const char *v)
{
	char *end;
	double d = strtod(v, &end);
	if (*end || d <= 0) {
		fprintf(stderr, "berth: invalid cpus '%s'\n", v);
		return -EINVAL;
	}
	json_object_set_new(hc, "NanoCpus", json_integer((json_int_t)(d * 1e9)));
	return 0;
}

/* CLI_OPT_ENTRY callbacks: o->dest[o->key] from the value (health ones: under "Healthcheck"). */
static int opt_bytes(const struct cli_opt *o, const char *v)
{
	if (o->min < 0 && streq(v, "-1")) { /* --memory-swap -1: unlimited */
		json_object_set_new(o->dest, o->key, json_integer(-1));
		return 0;
	}
	return set_bytes(o->dest, o->key, v);
}

static int opt_int(const struct cli_opt *o, const char *v)
{
	return set_int(o->dest, o->key, v);
}

static int opt_health_int(const struct cli_opt *o, const char *v)
{
	return set_int(obj_of(o->dest, "Healthcheck"), o->key, v);
}

static int opt_health_duration(const struct cli_opt *o, const char *v)
{
	return duration_ns(o->name, v, obj_of(o->dest, "Healthcheck"), o->key);
}

static int opt_entrypoint(void *cfg, const char *v)
{
	json_object_set_new(cfg, "Entrypoint", *v ? json_pack("[s]", v) : json_array());
	return 0;
}

static int opt_label(void *cfg, const char *v)
{
	const char *eq = strchr(v, '=');
	_cleanup_free_ char *k = eq ? xstrndup(v, (size_t)(eq - v)) : xstrdup(v);
	json_object_set_new(obj_of(cfg, "Labels"), k, json_string(eq ? eq + 1 : ""));
	return 0;
}

static int opt_tmpfs(void *hc, const char *v)
{
	const char *colon = strchr(v, ':');
	_cleanup_free_ char *dst = colon ? xstrndup(v, (size_t)(colon - v)) : xstrdup(v);
	json_object_set_new(obj_of(hc, "Tmpfs"), dst, json_string(colon ? colon + 1 : ""));
	return 0;
}

static int opt_health_cmd(void *cfg, const char *v)
{
	json_object_set_new(obj_of(cfg, "Healthcheck"), "Test", json_pack("[s,s]", "CMD-SHELL", v));
	return 0;
}

static int opt_no_health(void *cfg, const char *v)
{
	json_object_set_new(obj_of(cfg, "Healthcheck"), "Test", json_pack("[s]", "NONE"));
	return 0;
}

static int opt_log_driver(void *hc, const char *v)
{
	json_object_set_new(obj_of(hc, "LogConfig"), "Type", json_string(v));
	return 0;
}

#define RUN_CALL(name, short_name, obj, f)                                            \
	{                                                                             \
		(name), (short_name), CLI_OPT_CALL, (obj), .fn = (f), .has_arg = true \
	}
#define RUN_ENTRY(name, obj, key, f)                                                     \
	{                                                                                \
		(name), 0, CLI_OPT_ENTRY, (obj), (key), .entry_fn = (f), .has_arg = true \
	}

/* Parse flags and IMAGE [CMD...]; returns the index of IMAGE, -1 (message printed, exit 125) or -2 (--help
 * printed, exit 0). */
static int parse_run(int argc, char **argv, struct run_opts *o, const char *verb)
{
	json_t *cfg = o->config = json_object(), *hc = o->hostconfig = json_object();
	o->sig_proxy = true;
	struct cli_net_run_ctx net = { cfg, hc };
	const struct cli_opt t[] = {
		{ "detach", 'd', CLI_OPT_FLAG, &o->detach },
		{ "interactive", 'i', CLI_OPT_FLAG, &o->interactive },
		{ "tty", 't', CLI_OPT_FLAG, &o->tty },
		{ "rm", 0, CLI_OPT_FLAG, &o->rm },
		{ "name", 0, CLI_OPT_STRING, &o->name },
		RUN_CALL("env", 'e', cfg, add_env),
		RUN_CALL("env-file", 0, cfg, add_env_file),
		{ "workdir", 'w', CLI_OPT_JSON_STR, cfg, "WorkingDir" },
		{ "user", 'u', CLI_OPT_JSON_STR, cfg, "User" },
		RUN_CALL("entrypoint", 0, cfg, opt_entrypoint),
		{ "hostname", 'h', CLI_OPT_JSON_STR, cfg, "Hostname" },
		RUN_CALL("label", 'l', cfg, opt_label),
		{ "network", 0, CLI_OPT_JSON_STR, hc, "NetworkMode" },
		{ "net", 0, CLI_OPT_JSON_STR, hc, "NetworkMode" },
		{ "volume", 'v', CLI_OPT_JSON_APPEND, hc, "Binds" },
		RUN_CALL("mount", 0, hc, add_mount),
		RUN_CALL("tmpfs", 0, hc, opt_tmpfs),
		{ "cap-add", 0, CLI_OPT_JSON_APPEND, hc, "CapAdd" },
		{ "cap-drop", 0, CLI_OPT_JSON_APPEND, hc, "CapDrop" },
		{ "privileged", 0, CLI_OPT_JSON_TRUE, hc, "Privileged" },
		{ "read-only", 0, CLI_OPT_JSON_TRUE, hc, "ReadonlyRootfs" },
		RUN_CALL("security-opt", 0, hc, add_security_opt),
		{ "memory", 'm', CLI_OPT_ENTRY, hc, "Memory", .entry_fn = opt_bytes, .has_arg = true },
		RUN_CALL("cpus", 0, hc, set_cpus),
		RUN_ENTRY("cpu-shares", hc, "CpuShares", opt_int),
		{ "cpuset-cpus", 0, CLI_OPT_JSON_STR, hc, "CpusetCpus" },
		RUN_ENTRY("pids-limit", hc, "PidsLimit", opt_int),
		{ "stop-signal", 0, CLI_OPT_JSON_STR, cfg, "StopSignal" },
		RUN_ENTRY("stop-timeout", cfg, "StopTimeout", opt_int),
		RUN_CALL("restart", 0, hc, cli_opt_restart),
		RUN_CALL("health-cmd", 0, cfg, opt_health_cmd),
		RUN_ENTRY("health-interval", cfg, "Interval", opt_health_duration),
		RUN_ENTRY("health-timeout", cfg, "Timeout", opt_health_duration),
		RUN_ENTRY("health-retries", cfg, "Retries", opt_health_int),
		RUN_ENTRY("health-start-period", cfg, "StartPeriod", opt_health_duration),
		{ "no-healthcheck", 0, CLI_OPT_CALL, cfg, .fn = opt_no_health },
		RUN_CALL("log-driver", 0, hc, opt_log_driver),
		RUN_CALL("log-opt", 0, hc, set_log_opt),
		{ "add-host", 0, CLI_OPT_JSON_APPEND, hc, "ExtraHosts" },
		RUN_CALL("ulimit", 0, hc, add_ulimit),
		{ "init", 0, CLI_OPT_JSON_TRUE, hc, "Init" },
		{ "volumes-from", 0, CLI_OPT_JSON_APPEND, hc, "VolumesFrom" },
		RUN_ENTRY("cpu-quota", hc, "CpuQuota", opt_int),
		RUN_ENTRY("cpu-period", hc, "CpuPeriod", opt_int),
		{ "cpuset-mems", 0, CLI_OPT_JSON_STR, hc, "CpusetMems" },
		RUN_ENTRY("blkio-weight", hc, "BlkioWeight", opt_int),
		/* min -1: "-1" is unlimited */
		{ "memory-swap", 0, CLI_OPT_ENTRY, hc, "MemorySwap", -1, .entry_fn = opt_bytes,
		  .has_arg = true },
		{ "cgroup-parent", 0, CLI_OPT_JSON_STR, hc, "CgroupParent" },
		{ "runtime", 0, CLI_OPT_JSON_STR, hc, "Runtime" },
		{ "host", 'H', CLI_OPT_STRING, &o->host },
		{ "detach-keys", 0, CLI_OPT_STRING, &o->detach_keys },
		{ "sig-proxy", 0, CLI_OPT_BOOL, &o->sig_proxy },
		CLI_NET_RUN_OPTS(&net),
		{ NULL },
	};
	_cleanup_free_ char *help = usage_run(verb);
	const struct cli_usage u = { CLI_USAGE_SEE, help, .verb = verb };
	int rc;
	if (!cli_opttab_parse_usage(t, argc, argv, "+", &u, &rc))
		return rc == 0 ? -2 : -1;
	if (optind >= argc) {
		fprintf(stderr, "berth %s: requires at least 1 argument.\nSee 'berth %s --help'.\n", verb,
			verb);
		return -1;
	}
	json_object_set_new(o->config, "Image", json_string(argv[optind]));
	if (optind + 1 < argc) {
		json_t *cmd = json_array();
		for (int i = optind + 1; i < argc; i++)
			json_array_append_new(cmd, json_string(argv[i]));
		json_object_set_new(o->config, "Cmd", cmd);
	}
	json_object_set_new(o->config, "Tty", json_boolean(o->tty));
	json_object_set_new(o->config, "OpenStdin", json_boolean(o->interactive));
	json_object_set_new(o->config, "StdinOnce", json_boolean(o->interactive && !o->detach));
	json_object_set_new(o->config, "AttachStdin", json_boolean(o->interactive && !o->detach));
	json_object_set_new(o->config, "AttachStdout", json_boolean(!o->detach));
	json_object_set_new(o->config, "AttachStderr", json_boolean(!o->detach));
	json_object_set_new(o->hostconfig, "AutoRemove", json_boolean(o->rm));
	cli_net_run_finish(o->config, o->hostconfig);
	return optind;
}

static void run_opts_done(struct run_opts *o)
{
	json_decref(o->config);
	json_decref(o->hostconfig);
}

/* POST /containers/create; prints the daemon's error. Returns the id or NULL. */
static char *create(struct cli *cli, struct run_opts *o)
{
	_cleanup_json_ json_t *body = json_deep_copy(o->config);
	json_object_set(body, "HostConfig", o->hostconfig);
	_cleanup_free_ char *q = o->name ? cli_escape(o->name) : NULL;
	json_t *resp = NULL;
	long st =
	    cli_call(cli, "POST", body, &resp, "/v1.41/containers/create%s%s", q ? "?name=" : "", q ? q : "");
	char *id = NULL;
	if (st == 201)
		id = xstrdup(json_string_value(json_object_get(resp, "Id")) ?: "");
	else if (st > 0)
		cli_print_daemon_error(resp, st);
	json_decref(resp);
	return id;
}

int cli_create(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct cli cli = { 0 };
	int r = parse_run(argc, argv, &o, "create");
	if (r < 0 || cli_open(&cli, o.host) < 0) {
		run_opts_done(&o);
		return r == -2 ? 0 : CLI_EXIT_DAEMON;
	}
	_cleanup_free_ char *id = create(&cli, &o);
	if (id)
		printf("%s\n", id);
	run_opts_done(&o);
	cli_close(&cli);
	return id ? 0 : CLI_EXIT_DAEMON;
}

/* Exit code for a failed start, from the daemon's message (docker's mapping). */
static int start_error_code(const json_t *resp)
{
	const char *m = json_string_value(json_object_get(resp, "message"));
	if (m && (strstr(m, "executable file not found") || strstr(m, "no such file or directory")))
		return CLI_EXIT_NOT_FOUND;
	if (m && strstr(m, "permission denied"))
		return CLI_EXIT_CANNOT_INVOKE;
	return CLI_EXIT_DAEMON;
}

static int attach_and_start(struct cli *cli, struct run_opts *o, const char *id)
{
	_cleanup_free_ char *kq = o->detach_keys ? cli_escape(o->detach_keys) : NULL;
	_cleanup_free_ char *apath =
	    xasprintf("/v1.41/containers/%s/attach?stream=1&stdin=%d&stdout=1&stderr=1%s%s", id,
		      o->interactive, kq ? "&detachKeys=" : "", kq ? kq : "");
	int afd = -1;
	if (cli_hijack(cli, apath, NULL, &afd) < 0)
		return CLI_EXIT_DAEMON;
	_cleanup_free_ char *wpath =
	    xasprintf("/v1.41/containers/%s/wait?condition=%s", id, o->rm ? "removed" : "next-exit");
	_cleanup_strbuf_ struct strbuf whead = STRBUF_INIT;
	int wfd = cli_wait_begin(cli, wpath, &whead);
	if (wfd < 0) {
		safe_close(afd);
		if (o->rm)
			cli_call(cli, "DELETE", NULL, NULL, "/v1.41/containers/%s?force=1", id);
		return CLI_EXIT_DAEMON;
	}
	json_t *resp = NULL;
	long st = cli_call(cli, "POST", NULL, &resp, "/v1.41/containers/%s/start", id);
	if (st != 204) {
		if (st > 0)
			cli_print_daemon_error(resp, st);
		int code = start_error_code(resp);
		json_decref(resp);
		safe_close(afd);
		safe_close(wfd);
		if (o->rm)
			cli_call(cli, "DELETE", NULL, NULL, "/v1.41/containers/%s?force=1", id);
		return code;
	}
	json_decref(resp);
	struct termios saved;
	bool raw = o->tty && o->interactive && cli_raw_terminal(&saved);
	if (o->tty)
		cli_resize(cli, "containers", id);
	if (!o->tty && o->sig_proxy)
		(void)cli_sig_proxy_start(o->host, id);
	bool detached = false;
	cli_attach_session(afd, o->interactive, o->tty, o->detach_keys, &detached);
	if (raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	close(afd);
	if (detached || (o->tty && o->interactive && cli_detached_by_daemon(cli, id, wfd))) {
		safe_close(wfd); /* detached: the container goes on */
		return 0;
	}
	int code = cli_wait_response(wfd, whead.buf);
	safe_close(wfd);
	return code;
}

int cli_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct cli cli = { 0 };
	int r = parse_run(argc, argv, &o, "run");
	if (r < 0 || cli_open(&cli, o.host) < 0) {
		run_opts_done(&o);
		return r == -2 ? 0 : CLI_EXIT_DAEMON;
	}
	int code = CLI_EXIT_DAEMON;
	_cleanup_free_ char *id = create(&cli, &o);
	if (id && o.detach) {
		json_t *resp = NULL;
		long st = cli_call(&cli, "POST", NULL, &resp, "/v1.41/containers/%s/start", id);
		if (st == 204) {
			printf("%s\n", id);
			code = 0;
		} else {
			if (st > 0)
				cli_print_daemon_error(resp, st);
			code = start_error_code(resp);
		}
		json_decref(resp);
	} else if (id) {
		code = attach_and_start(&cli, &o, id);
	}
	run_opts_done(&o);
	cli_close(&cli);
	return code;
}
