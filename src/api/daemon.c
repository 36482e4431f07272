/*
 * daemon.c - `berth daemon`: flags and config file, the engine, the API
 * server on a unix socket, and a graceful shutdown on SIGTERM/SIGINT that
 * leaves containers running (their shims keep them; the next daemon
 * reattaches).
 */
#include <signal.h>
#include <sys/stat.h>

#include "api/listen.h"
#include "api/serve.h"
#include "api/routes.h"
#include "host/host.h"
#include "host/runtimes.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "engine/options.h"
#include "image/image.h"
#include "runtime/registry.h"
#include "common/detachkeys.h"
#include "shim/shim.h"

#define DEFAULT_ROOT      "/var/lib/berth"
#define DEFAULT_EXEC_ROOT "/run/berth"

struct daemon_opts {
	char *root, *exec_root, *host, *pidfile, *config_file, *log_level;
	char *bridge;        /* default network's bridge device; "none": no container networking */
	char *fixed_cidr_v6; /* the default network's IPv6 subnet, with ipv6 */
	int ipv6;            /* -1: not given */
	char *init_path;
	json_t *ulimits;                /* --default-ulimit / "default-ulimits": Docker Ulimits array */
	char *detach_keys, *log_driver; /* stream and log defaults (config-file keys) */
	json_t *log_opts;
	char *tlscacert, *tlscert, *tlskey;
	char *hosts[API_MAX_HOSTS]; /* -H (repeatable) or the config's "hosts" */
	size_t n_hosts;
	int tls, tlsverify, insecure_tcp; /* -1: not given */
	struct http_limits limits;
	struct host_runtime_opts rt; /* --add-runtime, the config's "runtimes", --default-runtime... */
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: berth daemon [OPTIONS]\n\n"
	    "Run the berth engine: the Docker Engine API on a unix socket.\n\n"
	    "Options:\n"
	    "      --config-file FILE   JSON config (keys: root, exec-root, host, hosts, runtime-path,\n"
	    "                           runtimes {\"NAME\": {\"path\", \"runtimeArgs\"}}, default-runtime,\n"
	    "                           pidfile, log-level, bridge, ipv6, fixed-cidr-v6, tls, tlsverify,\n"
	    "                           tlscacert, tlscert,\n"
	    "                           tlskey, allow-insecure-tcp, init-path, detach-keys, log-driver,\n"
	    "                           log-opts, default-ulimits {\"nofile\": {\"Name\", \"Soft\", "
	    "\"Hard\"}})\n"
	    "      --root DIR           state directory (default $BERTH_ROOT or " DEFAULT_ROOT ")\n"
	    "      --exec-root DIR      runtime directory (default $BERTH_EXEC_ROOT or " DEFAULT_EXEC_ROOT
	    ")\n"
	    "  -H, --host URL           socket to listen on, repeatable: unix:///path or tcp://ADDR:PORT\n"
	    "                           (default unix://EXEC_ROOT/berth.sock)\n"
	    "      --tlsverify          TLS on tcp:// hosts; clients must present a certificate\n"
	    "                           signed by --tlscacert (required for tcp:// hosts)\n"
	    "      --tls                TLS on tcp:// hosts without client authentication (needs\n"
	    "                           --allow-insecure-tcp)\n"
	    "      --tlscacert FILE     CA of client certificates (default $DOCKER_CERT_PATH/ca.pem)\n"
	    "      --tlscert FILE       server certificate (default $DOCKER_CERT_PATH/cert.pem)\n"
	    "      --tlskey FILE        server key (default $DOCKER_CERT_PATH/key.pem)\n"
	    "      --allow-insecure-tcp listen on tcp:// without client certificates: anyone who\n"
	    "                           reaches the port controls this host as root\n" HOST_RUNTIME_USAGE
	    "  -p, --pidfile FILE       write the daemon's pid here\n"
	    "  -b, --bridge NAME|none   bridge of the default network (default berth0); none: no\n"
	    "                           container networking (containers get a namespace with lo only)\n"
	    "      --ipv6               dual stack on the default network (needs --fixed-cidr-v6)\n"
	    "      --fixed-cidr-v6 CIDR IPv6 subnet of the default network, e.g. fd00:1::/64\n"
	    "      --init-path PATH     init binary for --init (default " ENGINE_DEFAULT_INIT_PATH ")\n"
	    "      --default-ulimit NAME=SOFT[:HARD]  ulimit of every container (repeatable)\n"
	    "  -l, --log-level LEVEL    error, warn, info, debug, trace (default info)\n"
	    "      --log-driver NAME    default log driver of containers: json-file, local, none\n"
	    "      --detach-keys KEYS   default detach keys of attached TTYs (default "
	    "ctrl-p,ctrl-q)\n" HTTP_LIMITS_USAGE "  -h, --help               show this help\n");
}

static void set(char **slot, const char *v)
{
	free(*slot);
	*slot = v ? xstrdup(v) : NULL;
}

/* "runtimes" (merged with --add-runtime's: a name defined twice is refused), "default-runtime". */
static int load_config_runtimes(struct daemon_opts *o, const json_t *j, struct berth_error **err)
{
	const char *d = NULL;
	int r = json_get_string(j, NULL, "default-runtime", 0, &d, err);
	if (r < 0)
		return r;
	if (d && !o->rt.default_runtime)
		set(&o->rt.default_runtime, d);
	if ((r = runtime_registry_add_json(&o->rt.runtimes, json_object_get(j, "runtimes"), err)) < 0)
		return berth_error_wrap(err, r, "config key 'runtimes'");
	return 0;
}

static int load_config_file(struct daemon_opts *o, struct berth_error **err)
{
	_cleanup_json_ json_t *j = NULL;
	int r = json_load_path(o->config_file, 1 << 20, &j, err);
	if (r < 0)
		return r;
	static const char *const keys[] = { "root",        "exec-root",    "host",      "runtime-path",
					    "pidfile",     "log-level",    "bridge",    "init-path",
					    "detach-keys", "log-driver",   "tlscacert", "tlscert",
					    "tlskey",      "fixed-cidr-v6" };
	char **slots[] = { &o->root,      &o->exec_root, &o->host,      &o->rt.runtime_path, &o->pidfile,
			   &o->log_level, &o->bridge,    &o->init_path, &o->detach_keys,     &o->log_driver,
			   &o->tlscacert, &o->tlscert,   &o->tlskey,    &o->fixed_cidr_v6 };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = NULL;
		if ((r = json_get_string(j, NULL, keys[i], 0, &v, err)) < 0)
			return r;
		if (v && !*slots[i])
			set(slots[i], v);
	}
	json_t *ul =
	    NULL; /* docker's daemon.json shape: {"nofile": {"Name": ..., "Soft": ..., "Hard": ...}} */
	if ((r = json_get_object(j, NULL, "default-ulimits", 0, &ul, err)) < 0)
		return r;
	const char *k;
	json_t *v;
	json_object_foreach (ul, k, v) {
		if (!o->ulimits)
			o->ulimits = json_array();
		json_t *u = json_is_object(v) ? json_deep_copy(v) : json_incref(v);
		if (json_is_object(u) && !json_object_get(u, "Name"))
			json_object_set_new(u, "Name", json_string(k));
		json_array_append_new(o->ulimits, u);
	}
	if ((r = load_config_runtimes(o, j, err)) < 0)
		return r;
	json_t *lo = json_object_get(j, "log-opts");
	if (lo && !json_is_object(lo))
		return berth_error_msg(err, EINVAL, "config key 'log-opts': expected an object");
	o->log_opts = json_incref(lo);
	static const char *const bkeys[] = { "tls", "tlsverify", "allow-insecure-tcp", "ipv6" };
	int *bslots[] = { &o->tls, &o->tlsverify, &o->insecure_tcp, &o->ipv6 };
	for (size_t i = 0; i < ARRAY_SIZE(bkeys); i++) {
		bool b = false;
		json_t *bv = json_object_get(j, bkeys[i]);
		if (bv && (r = json_get_bool(j, NULL, bkeys[i], 0, &b, err)) < 0)
			return r;
		if (bv && *bslots[i] < 0)
			*bslots[i] = b;
	}
	_cleanup_strv_ char **hosts = NULL;
	if ((r = json_get_strv(j, NULL, "hosts", 0, &hosts, err)) < 0)
		return r;
	if (o->n_hosts == 0)
		for (char **h = hosts; h && *h && o->n_hosts < API_MAX_HOSTS; h++)
			o->hosts[o->n_hosts++] = xstrdup(*h);
	return 0;
}

static int opt_default_ulimit(void *dest, const char *v)
{
	struct daemon_opts *o = dest;
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *u = NULL;
	if (engine_ulimit_parse(v, &u, &err) < 0) {
		berth_error_print(err, "berth daemon: --default-ulimit");
		return -EINVAL;
	}
	if (!o->ulimits)
		o->ulimits = json_array();
	json_array_append_new(o->ulimits, u);
	return 0;
}

static int opt_host(void *dest, const char *v)
{
	struct daemon_opts *o = dest;
	if (o->n_hosts == API_MAX_HOSTS) {
		fprintf(stderr, "berth daemon: at most %d hosts\n", API_MAX_HOSTS);
		return -EINVAL;
	}
	o->hosts[o->n_hosts++] = xstrdup(v);
	return 0;
}

/* --tls, --tlsverify, --allow-insecure-tcp, --ipv6: given (the config file's value is -1's) */
static int opt_on(void *dest, const char *v)
{
	*(int *)dest = 1;
	return 0;
}

static int parse_args(int argc, char **argv, struct daemon_opts *o)
{
#define STR(name, short_name, field)                            \
	{                                                       \
		(name), (short_name), CLI_OPT_STRDUP, &o->field \
	}
#define ON(name, field)                                          \
	{                                                        \
		(name), 0, CLI_OPT_CALL, &o->field, .fn = opt_on \
	}
	const struct cli_opt t[] = {
		STR("root", 0, root),
		STR("exec-root", 0, exec_root),
		{ "host", 'H', CLI_OPT_CALL, o, .fn = opt_host, .has_arg = true },
		HOST_RUNTIME_OPTIONS(&o->rt),
		STR("pidfile", 'p', pidfile),
		STR("config-file", 0, config_file),
		STR("log-level", 'l', log_level),
		STR("bridge", 'b', bridge),
		STR("init-path", 0, init_path),
		{ "default-ulimit", 0, CLI_OPT_CALL, o, .fn = opt_default_ulimit, .has_arg = true },
		STR("log-driver", 0, log_driver),
		STR("detach-keys", 0, detach_keys),
		ON("tls", tls),
		ON("tlsverify", tlsverify),
		STR("tlscacert", 0, tlscacert),
		STR("tlscert", 0, tlscert),
		STR("tlskey", 0, tlskey),
		ON("allow-insecure-tcp", insecure_tcp),
		ON("ipv6", ipv6),
		STR("fixed-cidr-v6", 0, fixed_cidr_v6),
		HTTP_LIMITS_OPTS(&o->limits, "berth daemon"),
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
#undef STR
#undef ON
	int r = opttab_scan_usage(t, argc, argv, NULL, usage);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 1 : -EINVAL;
	if (optind < argc) {
		fprintf(stderr, "berth daemon: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static void fill_defaults(struct daemon_opts *o)
{
	if (!o->root)
		set(&o->root, getenv("BERTH_ROOT") ? getenv("BERTH_ROOT") : DEFAULT_ROOT);
	if (!o->exec_root)
		set(&o->exec_root, getenv("BERTH_EXEC_ROOT") ? getenv("BERTH_EXEC_ROOT") : DEFAULT_EXEC_ROOT);
	if (o->n_hosts == 0)
		o->hosts[o->n_hosts++] =
		    o->host ? xstrdup(o->host) : xasprintf("unix://%s/berth.sock", o->exec_root);
	if (o->tlsverify > 0 || o->tls > 0) {
		/* docker's defaults: $DOCKER_CERT_PATH or ~/.docker, files ca.pem, cert.pem, key.pem */
		const char *home = getenv("HOME");
		_cleanup_free_ char *dir = getenv("DOCKER_CERT_PATH")
					       ? xstrdup(getenv("DOCKER_CERT_PATH"))
					       : xasprintf("%s/.docker", home ? home : "/root");
		char **slots[] = { &o->tlscacert, &o->tlscert, &o->tlskey };
		static const char *const names[] = { "ca.pem", "cert.pem", "key.pem" };
		for (size_t i = 0; i < ARRAY_SIZE(slots); i++)
			if (!*slots[i])
				*slots[i] = xasprintf("%s/%s", dir, names[i]);
	}
}

/* The daemon's detach keys and default log driver must be valid before anything starts. */
static int check_stream_defaults(const struct daemon_opts *o, struct berth_error **err)
{
	unsigned char keys[DETACH_KEYS_MAX];
	size_t n;
	int r;
	if (o->detach_keys && (r = detachkeys_parse(o->detach_keys, keys, &n, err)) < 0)
		return berth_error_wrap(err, r, "invalid detach-keys '%s'", o->detach_keys);
	if (o->ipv6 > 0 && !o->fixed_cidr_v6)
		return berth_error_msg(err, EINVAL,
				       "--ipv6 needs --fixed-cidr-v6 (the default network's IPv6 "
				       "subnet, e.g. fd00:1::/64)");
	if (o->fixed_cidr_v6 && o->ipv6 <= 0)
		return berth_error_msg(err, EINVAL, "--fixed-cidr-v6 needs --ipv6");
	return host_check_log_defaults(o->log_driver, o->log_opts, err);
}

static int serve(struct daemon_opts *o, struct berth_error **err)
{
	struct api_serve_opts so = { .host = { .root = o->root,
					       .exec_root = o->exec_root,
					       .runtimes = &o->rt.runtimes,
					       .bridge = o->bridge,
					       .bridge_subnet6 = o->ipv6 > 0 ? o->fixed_cidr_v6 : NULL,
					       .init_path = o->init_path,
					       .default_ulimits = o->ulimits,
					       .log_driver = o->log_driver,
					       .log_opts = o->log_opts },
				     .listen = { .n_hosts = o->n_hosts,
						 .tls = o->tls > 0,
						 .tlsverify = o->tlsverify > 0,
						 .allow_insecure_tcp = o->insecure_tcp > 0,
						 .tlscacert = o->tlscacert,
						 .tlscert = o->tlscert,
						 .tlskey = o->tlskey },
				     .pidfile = o->pidfile,
				     .detach_keys = o->detach_keys,
				     .limits = o->limits,
				     .role = "daemon" };
	for (size_t i = 0; i < o->n_hosts; i++)
		so.listen.hosts[i] = o->hosts[i];
	return api_serve(&so, err);
}

int api_daemon_main(int argc, char **argv)
{
	struct daemon_opts o = {
		.tls = -1, .tlsverify = -1, .insecure_tcp = -1, .ipv6 = -1, .rt = { .who = "berth daemon" }
	};
	_cleanup_error_ struct berth_error *err = NULL;
	int r = parse_args(argc, argv, &o);
	if (r == 0 && o.config_file)
		r = load_config_file(&o, &err);
	if (r == 0) {
		fill_defaults(&o);
		enum log_level lvl;
		if (o.log_level && log_parse_level(o.log_level, &lvl) < 0)
			r = berth_error_msg(&err, EINVAL, "invalid log level '%s'", o.log_level);
		else if (o.log_level)
			log_set_level(lvl);
	}
	if (r == 0)
		r = check_stream_defaults(&o, &err);
	if (r == 0)
		r = host_runtime_opts_finish(&o.rt, &err);
	if (r == 0) {
		log_set_global_field("component", "daemon");
		r = serve(&o, &err);
	}
	if (r < 0 && err)
		berth_error_print(err, "berth daemon");
	char **slots[] = { &o.root,        &o.exec_root, &o.host,   &o.pidfile,
			   &o.config_file, &o.log_level, &o.bridge, &o.init_path };
	for (size_t i = 0; i < ARRAY_SIZE(slots); i++)
		free(*slots[i]);
	json_decref(o.ulimits);
	host_runtime_opts_done(&o.rt);
	free(o.fixed_cidr_v6);
	free(o.detach_keys);
	free(o.log_driver);
	json_decref(o.log_opts);
	free(o.tlscacert);
	free(o.tlscert);
	free(o.tlskey);
	for (size_t i = 0; i < o.n_hosts; i++)
		free(o.hosts[i]);
	return r < 0 ? 1 : 0;
}
