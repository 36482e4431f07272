/*
 * run.c - `berth create`, `run`, `start` and `exec`: docker's flags turned
 * into the Engine API's Config/HostConfig, and the attach dance of docker
 * run (attach and wait registered before start, so no output and no exit is
 * missed).
 */
#include <fcntl.h>
#include <getopt.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "cli/cli.h"
#include "cli/network.h"
#include "cli/runopts.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"

struct run_opts {
	bool detach, interactive, tty, rm, privileged, read_only, help;
	const char *name, *host;
	json_t *config, *hostconfig;
	const char *detach_keys; /* --detach-keys */
	bool no_sig_proxy;       /* --sig-proxy=false */
};

/* Stream flags (cli/attach.c), numbered apart from the flag enum below. */
enum { OPT_DETACH_KEYS = 400, OPT_SIG_PROXY };

enum {
	OPT_RM = 256,
	OPT_NAME,
	OPT_ENV_FILE,
	OPT_ENTRYPOINT,
	OPT_NETWORK,
	OPT_TMPFS,
	OPT_CAP_ADD,
	OPT_CAP_DROP,
	OPT_PRIVILEGED,
	OPT_READ_ONLY,
	OPT_SECURITY_OPT,
	OPT_CPUS,
	OPT_CPU_SHARES,
	OPT_CPUSET,
	OPT_PIDS,
	OPT_STOP_SIGNAL,
	OPT_STOP_TIMEOUT,
	OPT_RESTART,
	OPT_HEALTH_CMD,
	OPT_HEALTH_INTERVAL,
	OPT_HEALTH_TIMEOUT,
	OPT_HEALTH_RETRIES,
	OPT_HEALTH_START,
	OPT_NO_HEALTH,
	OPT_LOG_DRIVER,
	OPT_LOG_OPT,
	OPT_MOUNT,
	OPT_ADD_HOST,
	OPT_ULIMIT,
	OPT_INIT,
	OPT_VOLUMES_FROM,
	OPT_CPU_QUOTA,
	OPT_CPU_PERIOD,
	OPT_CPUSET_MEMS,
	OPT_BLKIO_WEIGHT,
	OPT_MEMORY_SWAP,
	OPT_CGROUP_PARENT,
};

static const struct option run_longopts[] = {
	{ "detach", no_argument, NULL, 'd' },
	{ "interactive", no_argument, NULL, 'i' },
	{ "tty", no_argument, NULL, 't' },
	{ "rm", no_argument, NULL, OPT_RM },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "env", required_argument, NULL, 'e' },
	{ "env-file", required_argument, NULL, OPT_ENV_FILE },
	{ "workdir", required_argument, NULL, 'w' },
	{ "user", required_argument, NULL, 'u' },
	{ "entrypoint", required_argument, NULL, OPT_ENTRYPOINT },
	{ "hostname", required_argument, NULL, 'h' },
	{ "label", required_argument, NULL, 'l' },
	{ "network", required_argument, NULL, OPT_NETWORK },
	{ "net", required_argument, NULL, OPT_NETWORK },
	{ "volume", required_argument, NULL, 'v' },
	{ "mount", required_argument, NULL, OPT_MOUNT },
	{ "tmpfs", required_argument, NULL, OPT_TMPFS },
	{ "cap-add", required_argument, NULL, OPT_CAP_ADD },
	{ "cap-drop", required_argument, NULL, OPT_CAP_DROP },
	{ "privileged", no_argument, NULL, OPT_PRIVILEGED },
	{ "read-only", no_argument, NULL, OPT_READ_ONLY },
	{ "security-opt", required_argument, NULL, OPT_SECURITY_OPT },
	{ "memory", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "cpu-shares", required_argument, NULL, OPT_CPU_SHARES },
	{ "cpuset-cpus", required_argument, NULL, OPT_CPUSET },
	{ "pids-limit", required_argument, NULL, OPT_PIDS },
	{ "stop-signal", required_argument, NULL, OPT_STOP_SIGNAL },
	{ "stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT },
	{ "restart", required_argument, NULL, OPT_RESTART },
	{ "health-cmd", required_argument, NULL, OPT_HEALTH_CMD },
	{ "health-interval", required_argument, NULL, OPT_HEALTH_INTERVAL },
	{ "health-timeout", required_argument, NULL, OPT_HEALTH_TIMEOUT },
	{ "health-retries", required_argument, NULL, OPT_HEALTH_RETRIES },
	{ "health-start-period", required_argument, NULL, OPT_HEALTH_START },
	{ "no-healthcheck", no_argument, NULL, OPT_NO_HEALTH },
	{ "log-driver", required_argument, NULL, OPT_LOG_DRIVER },
	{ "log-opt", required_argument, NULL, OPT_LOG_OPT },
	{ "add-host", required_argument, NULL, OPT_ADD_HOST },
	{ "ulimit", required_argument, NULL, OPT_ULIMIT },
	{ "init", no_argument, NULL, OPT_INIT },
	{ "volumes-from", required_argument, NULL, OPT_VOLUMES_FROM },
	{ "cpu-quota", required_argument, NULL, OPT_CPU_QUOTA },
	{ "cpu-period", required_argument, NULL, OPT_CPU_PERIOD },
	{ "cpuset-mems", required_argument, NULL, OPT_CPUSET_MEMS },
	{ "blkio-weight", required_argument, NULL, OPT_BLKIO_WEIGHT },
	{ "memory-swap", required_argument, NULL, OPT_MEMORY_SWAP },
	{ "cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT },
	{ "host", required_argument, NULL, 'H' },
	{ "detach-keys", required_argument, NULL, OPT_DETACH_KEYS },
	{ "sig-proxy", optional_argument, NULL, OPT_SIG_PROXY },
	{ "help", no_argument, NULL, 256 + 100 },
	CLI_NET_RUN_LONGOPTS,
	{ NULL, 0, NULL, 0 },
};

static void usage_run(FILE *f, const char *verb)
{
	fprintf(
	    f,
	    "Usage: berth %s [OPTIONS] IMAGE [COMMAND] [ARG...]\n\n%s\n\nOptions:\n"
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
	    "      --stop-signal SIG, --stop-timeout SECONDS\n"
	    "      --restart POLICY       no, always, on-failure[:N], unless-stopped\n"
	    "      --health-cmd CMD, --health-interval D, --health-timeout D, --health-retries N,\n"
	    "      --health-start-period D, --no-healthcheck\n"
	    "      --log-driver json-file|local|none, --log-opt max-size=10m, max-file=3, compress=true\n"
	    "      --add-host HOST:IP     Add a line to /etc/hosts\n"
	    "      --detach-keys KEYS     Key sequence that detaches from a TTY (default ctrl-p,ctrl-q)\n"
	    "      --sig-proxy[=BOOL]     Forward received signals to the container (default true, no "
	    "TTY)\n" CLI_NET_RUN_USAGE "  -H, --host URL             Daemon socket (default $BERTH_HOST)\n",
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

static void add_env(json_t *cfg, const char *kv)
{
	if (!strchr(kv, '=')) {
		const char *v = getenv(kv);
		if (!v)
			return;
		json_array_append_new(arr(cfg, "Env"), json_sprintf("%s=%s", kv, v));
		return;
	}
	json_array_append_new(arr(cfg, "Env"), json_string(kv));
}

static int add_env_file(json_t *cfg, const char *path)
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
	if (parse_duration_ns(v, &ns) < 0) {
		fprintf(stderr, "berth: invalid argument \"%s\" for \"--%s\": invalid duration\n", v, flag);
		return -EINVAL;
	}
	json_object_set_new(obj, key, json_integer(ns));
	return 0;
}

static int add_mount(json_t *hc, const char *spec)
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

static int add_ulimit(json_t *hc, const char *spec)
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
static int add_security_opt(json_t *hc, const char *v)
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

static int set_restart(json_t *hc, const char *v)
{
	_cleanup_free_ char *name = xstrdup(v);
	char *n = strchr(name, ':');
	int64_t max = 0;
	if (n) {
		*n++ = '\0';
		if (parse_int64(n, &max) < 0 || max < 0) {
			fprintf(stderr, "berth: invalid restart policy '%s'\n", v);
			return -EINVAL;
		}
	}
	json_object_set_new(hc, "RestartPolicy",
			    json_pack("{s:s,s:I}", "Name", name, "MaximumRetryCount", (json_int_t)max));
	return 0;
}

static int set_bytes(json_t *hc, const char *key, const char *v)
{
	int64_t b;
	if (parse_bytes(v, &b) < 0) {
		fprintf(stderr, "berth: invalid size: '%s'\n", v);
		return -EINVAL;
	}
	json_object_set_new(hc, key, json_integer(b));
	return 0;
}

static int set_int(json_t *obj, const char *key, const char *v)
{
	int64_t n;
	if (parse_int64(v, &n) < 0) {
		fprintf(stderr, "berth: invalid number: '%s'\n", v);
		return -EINVAL;
	}
	json_object_set_new(obj, key, json_integer(n));
	return 0;
}

static int set_log_opt(json_t *hc, const char *v)
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

static int set_cpus(json_t *hc, const char *v)
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

static int parse_opt(struct run_opts *o, int ch, const char *v)
{
	json_t *cfg = o->config, *hc = o->hostconfig;
	switch (ch) {
	case 'd': o->detach = true; return 0;
	case 'i': o->interactive = true; return 0;
	case 't': o->tty = true; return 0;
	case OPT_RM: o->rm = true; return 0;
	case OPT_NAME: o->name = v; return 0;
	case 'e': add_env(cfg, v); return 0;
	case OPT_ENV_FILE: return add_env_file(cfg, v);
	case 'w': json_object_set_new(cfg, "WorkingDir", json_string(v)); return 0;
	case 'u': json_object_set_new(cfg, "User", json_string(v)); return 0;
	case OPT_ENTRYPOINT:
		json_object_set_new(cfg, "Entrypoint", *v ? json_pack("[s]", v) : json_array());
		return 0;
	case 'h': json_object_set_new(cfg, "Hostname", json_string(v)); return 0;
	case 'l': {
		const char *eq = strchr(v, '=');
		_cleanup_free_ char *k = eq ? xstrndup(v, (size_t)(eq - v)) : xstrdup(v);
		json_object_set_new(obj_of(cfg, "Labels"), k, json_string(eq ? eq + 1 : ""));
		return 0;
	}
	case OPT_NETWORK: json_object_set_new(hc, "NetworkMode", json_string(v)); return 0;
	case 'v': json_array_append_new(arr(hc, "Binds"), json_string(v)); return 0;
	case OPT_MOUNT: return add_mount(hc, v);
	case OPT_TMPFS: {
		const char *colon = strchr(v, ':');
		_cleanup_free_ char *dst = colon ? xstrndup(v, (size_t)(colon - v)) : xstrdup(v);
		json_object_set_new(obj_of(hc, "Tmpfs"), dst, json_string(colon ? colon + 1 : ""));
		return 0;
	}
	case OPT_CAP_ADD: json_array_append_new(arr(hc, "CapAdd"), json_string(v)); return 0;
	case OPT_CAP_DROP: json_array_append_new(arr(hc, "CapDrop"), json_string(v)); return 0;
	case OPT_PRIVILEGED: json_object_set_new(hc, "Privileged", json_true()); return 0;
	case OPT_READ_ONLY: json_object_set_new(hc, "ReadonlyRootfs", json_true()); return 0;
	case OPT_SECURITY_OPT: return add_security_opt(hc, v);
	case 'm': return set_bytes(hc, "Memory", v);
	case OPT_CPUS: return set_cpus(hc, v);
	case OPT_CPU_SHARES: return set_int(hc, "CpuShares", v);
	case OPT_CPUSET: json_object_set_new(hc, "CpusetCpus", json_string(v)); return 0;
	case OPT_PIDS: return set_int(hc, "PidsLimit", v);
	case OPT_STOP_SIGNAL: json_object_set_new(cfg, "StopSignal", json_string(v)); return 0;
	case OPT_STOP_TIMEOUT: return set_int(cfg, "StopTimeout", v);
	case OPT_RESTART: return set_restart(hc, v);
	case OPT_HEALTH_CMD:
		json_object_set_new(obj_of(cfg, "Healthcheck"), "Test", json_pack("[s,s]", "CMD-SHELL", v));
		return 0;
	case OPT_HEALTH_INTERVAL:
		return duration_ns("health-interval", v, obj_of(cfg, "Healthcheck"), "Interval");
	case OPT_HEALTH_TIMEOUT:
		return duration_ns("health-timeout", v, obj_of(cfg, "Healthcheck"), "Timeout");
	case OPT_HEALTH_START:
		return duration_ns("health-start-period", v, obj_of(cfg, "Healthcheck"), "StartPeriod");
	case OPT_HEALTH_RETRIES: return set_int(obj_of(cfg, "Healthcheck"), "Retries", v);
	case OPT_NO_HEALTH:
		json_object_set_new(obj_of(cfg, "Healthcheck"), "Test", json_pack("[s]", "NONE"));
		return 0;
	case OPT_LOG_DRIVER: json_object_set_new(obj_of(hc, "LogConfig"), "Type", json_string(v)); return 0;
	case OPT_LOG_OPT: return set_log_opt(hc, v);
	case OPT_ADD_HOST: json_array_append_new(arr(hc, "ExtraHosts"), json_string(v)); return 0;
	case OPT_ULIMIT: return add_ulimit(hc, v);
	case OPT_INIT: json_object_set_new(hc, "Init", json_true()); return 0;
	case OPT_VOLUMES_FROM: json_array_append_new(arr(hc, "VolumesFrom"), json_string(v)); return 0;
	case OPT_CPU_QUOTA: return set_int(hc, "CpuQuota", v);
	case OPT_CPU_PERIOD: return set_int(hc, "CpuPeriod", v);
	case OPT_CPUSET_MEMS: json_object_set_new(hc, "CpusetMems", json_string(v)); return 0;
	case OPT_BLKIO_WEIGHT: return set_int(hc, "BlkioWeight", v);
	case OPT_MEMORY_SWAP:
		if (streq(v, "-1")) {
			json_object_set_new(hc, "MemorySwap", json_integer(-1));
			return 0;
		}
		return set_bytes(hc, "MemorySwap", v);
	case OPT_CGROUP_PARENT: json_object_set_new(hc, "CgroupParent", json_string(v)); return 0;
	case 'H': o->host = v; return 0;
	case OPT_DETACH_KEYS: o->detach_keys = v; return 0;
	case OPT_SIG_PROXY: {
		bool on = true;
		if (cli_parse_bool_flag("sig-proxy", v, &on) < 0)
			return -EINVAL;
		o->no_sig_proxy = !on;
		return 0;
	}
	case 256 + 100: o->help = true; return 0;
	default: return cli_net_run_opt(cfg, hc, ch, v) == 0 ? 0 : -EINVAL;
	}
}

/* Parse flags and IMAGE [CMD...]; returns the index of IMAGE or -1 (message printed). */
static int parse_run(int argc, char **argv, struct run_opts *o, const char *verb)
{
	o->config = json_object();
	o->hostconfig = json_object();
	int ch;
	optind = 1;
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "+dite:w:u:h:l:v:m:H:" CLI_NET_RUN_SHORTOPTS, run_longopts,
				 NULL)) != -1) {
		if (ch == '?' || parse_opt(o, ch, optarg) < 0) {
			fprintf(stderr, "See 'berth %s --help'.\n", verb);
			return -1;
		}
		if (o->help)
			return -2;
	}
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
	if (r == -2)
		usage_run(stdout, "create");
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
	if (!o->tty && !o->no_sig_proxy)
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
	if (r == -2)
		usage_run(stdout, "run");
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
