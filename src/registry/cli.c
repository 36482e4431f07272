/*
 * cli.c - `berth registry serve|gc|--help`: flags over the YAML config, then
 * hand off to registry_serve() / registry_gc().
 */
#include <getopt.h>

#include "common/log.h"
#include "common/util.h"
#include "registry/registry.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: berth registry serve [OPTIONS] [CONFIG]\n"
		   "       berth registry gc [--dry-run] [OPTIONS] [CONFIG]\n\n"
		   "An OCI distribution-spec v1.1 registry.\n\n"
		   "Options:\n"
		   "  -c, --config FILE      YAML configuration (see docs/registry.md)\n"
		   "      --root DIR         storage root (default $BERTH_ROOT/registry)\n"
		   "  -a, --addr HOST:PORT   listen address (default 127.0.0.1:5000; port 0 picks one)\n"
		   "      --port-file FILE   write the bound port to FILE once listening\n"
		   "      --tls-cert FILE    serve HTTPS with this PEM certificate\n"
		   "      --tls-key FILE     ... and this PEM key\n"
		   "      --htpasswd FILE    require Basic auth (bcrypt htpasswd)\n"
		   "      --token            enable the built-in token endpoint (/auth/token)\n"
		   "      --token-key FILE   PEM EC P-256 key for tokens (created when missing)\n"
		   "      --no-delete        refuse manifest and blob deletes (405 UNSUPPORTED)\n"
		   "      --no-fsync         do not fsync stored blobs and manifests (storage.fsync: false)\n"
		   "      --proxy URL        pull-through cache of the upstream registry at URL\n"
		   "      --threads N        threads running requests; an upload holds one while its\n"
		   "                         body arrives, more wait in a queue (default 64)\n"
		   "      --no-access-log    do not log one line per request\n"
		   "      --log-level LEVEL  error, warn, info, debug\n"
		   "      --dry-run          (gc) report what would be deleted\n"
		   "  -h, --help             show this help\n");
}

enum {
	OPT_ROOT = 256,
	OPT_PORT_FILE,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_HTPASSWD,
	OPT_TOKEN,
	OPT_TOKEN_KEY,
	OPT_NO_DELETE,
	OPT_NO_FSYNC,
	OPT_PROXY,
	OPT_THREADS,
	OPT_NO_ACCESS_LOG,
	OPT_LOG_LEVEL,
	OPT_DRY_RUN,
};

static const struct option options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "addr", required_argument, NULL, 'a' },
	{ "port-file", required_argument, NULL, OPT_PORT_FILE },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "htpasswd", required_argument, NULL, OPT_HTPASSWD },
	{ "token", no_argument, NULL, OPT_TOKEN },
	{ "token-key", required_argument, NULL, OPT_TOKEN_KEY },
	{ "no-delete", no_argument, NULL, OPT_NO_DELETE },
	{ "no-fsync", no_argument, NULL, OPT_NO_FSYNC },
	{ "proxy", required_argument, NULL, OPT_PROXY },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "no-access-log", no_argument, NULL, OPT_NO_ACCESS_LOG },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = xstrdup(v);
}

/* Apply one flag. Returns 0, or 2 (usage error) with a message printed. */
static int apply_flag(struct registry_config *c, int opt, const char *arg, bool *dry_run)
{
	uint64_t n;
	enum log_level lvl;
	switch (opt) {
	case OPT_ROOT: set_str(&c->root, arg); break;
	case 'a':
		free(c->host);
		c->host = NULL;
		if (registry_parse_addr(arg, &c->host, &c->port) < 0) {
			fprintf(stderr, "berth registry: invalid address '%s'\n", arg);
			return 2;
		}
		break;
	case OPT_PORT_FILE: set_str(&c->port_file, arg); break;
	case OPT_TLS_CERT: set_str(&c->tls_cert, arg); break;
	case OPT_TLS_KEY: set_str(&c->tls_key, arg); break;
	case OPT_HTPASSWD: set_str(&c->htpasswd, arg); break;
	case OPT_TOKEN: c->token_enabled = true; break;
	case OPT_TOKEN_KEY: set_str(&c->token_key, arg); break;
	case OPT_NO_DELETE: c->delete_enabled = false; break;
	case OPT_NO_FSYNC: c->fsync = false; break;
	case OPT_PROXY: set_str(&c->proxy_url, arg); break;
	case OPT_NO_ACCESS_LOG: c->access_log = false; break;
	case OPT_DRY_RUN: *dry_run = true; break;
	case OPT_THREADS:
		if (util_parse_uint64(arg, &n) < 0 || n == 0 || n > 4096) {
			fprintf(stderr, "berth registry: invalid thread count '%s'\n", arg);
			return 2;
		}
		c->threads = (unsigned)n;
		break;
	case OPT_LOG_LEVEL:
		if (log_parse_level(arg, &lvl) < 0) {
			fprintf(stderr, "berth registry: invalid log level '%s'\n", arg);
			return 2;
		}
		log_set_level(lvl);
		break;
	default: return 2;
	}
	return 0;
}

/* Two passes: find the config file first, so that flags override it. */
static const char *find_config(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if ((streq(argv[i], "-c") || streq(argv[i], "--config")) && i + 1 < argc)
			path = argv[++i];
		else if (startswith(argv[i], "--config="))
			path = argv[i] + 9;
	}
	return path;
}

static int print_gc(const struct registry_gc_stats *s, bool dry_run)
{
	printf("%s: marked %zu manifests; %s %zu blobs (%lld bytes), %zu manifests, %zu tags; pruned %zu "
	       "links\n",
	       dry_run ? "gc (dry run)" : "gc", s->manifests_marked, dry_run ? "would delete" : "deleted",
	       s->blobs_deleted, (long long)s->bytes_freed, s->manifests_deleted, s->tags_deleted,
	       s->links_deleted);
	return 0;
}

int registry_main(int argc, char **argv)
{
	const char *verb = "serve";
	if (argc > 1 && (streq(argv[1], "serve") || streq(argv[1], "gc"))) {
		verb = argv[1];
		argc--;
		argv++;
	}
	struct registry_config cfg;
	registry_config_init(&cfg);
	_cleanup_error_ struct berth_error *err = NULL;
	bool dry_run = false;
	const char *config = find_config(argc, argv);
	int opt, rc = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:a:h", options, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			registry_config_done(&cfg);
			return 0;
		}
		if (opt == '?') {
			usage(stderr);
			registry_config_done(&cfg);
			return 2;
		}
	}
	if (!config && optind < argc)
		config = argv[optind]; /* like `registry serve config.yml` */
	if (config && registry_config_load(&cfg, config, &err) < 0) {
		berth_error_print(err, "berth registry");
		registry_config_done(&cfg);
		return 1;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:a:h", options, NULL)) != -1 && rc == 0)
		if (opt != 'c')
			rc = apply_flag(&cfg, opt, optarg, &dry_run);
	if (rc == 0 && streq(verb, "gc")) {
		struct registry_gc_stats st;
		if (registry_gc(&cfg, dry_run, &st, &err) < 0)
			rc = 1;
		else
			print_gc(&st, dry_run);
	} else if (rc == 0 && registry_serve(&cfg, &err) < 0) {
		rc = 1;
	}
	if (err)
		berth_error_print(err, "berth registry");
	registry_config_done(&cfg);
	return rc;
}
