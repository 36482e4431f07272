/*
 * cli.c - `berth registry serve|gc|--help`: flags over the YAML config, then
 * hand off to registry_serve() / registry_gc().
 */
#include "common/log.h"
#include "common/opttab.h"
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

static int opt_addr(void *dest, const char *arg)
{
	struct registry_config *c = dest;
	free(c->host);
	c->host = NULL;
	if (registry_parse_addr(arg, &c->host, &c->port) < 0) {
		fprintf(stderr, "berth registry: invalid address '%s'\n", arg);
		return -1;
	}
	return 0;
}

static int opt_threads(void *dest, const char *arg)
{
	uint64_t n;
	if (util_parse_uint64(arg, &n) < 0 || n == 0 || n > 4096) {
		fprintf(stderr, "berth registry: invalid thread count '%s'\n", arg);
		return -1;
	}
	*(unsigned *)dest = (unsigned)n;
	return 0;
}

/* --no-delete, --no-fsync, --no-access-log */
static int opt_off(void *dest, const char *arg)
{
	*(bool *)dest = false;
	return 0;
}

#define N_FLAGS 19
/* The flags as a table over c (flags override the config file: they are applied after it). */
static void flags_table(struct cli_opt t[N_FLAGS], struct registry_config *c, const char **config,
			bool *dry_run)
{
#define OFF(name, field)                                          \
	{                                                         \
		(name), 0, CLI_OPT_CALL, &c->field, .fn = opt_off \
	}
	const struct cli_opt flags[N_FLAGS] = {
		{ "config", 'c', CLI_OPT_STRING, config },
		{ "root", 0, CLI_OPT_STRDUP, &c->root },
		{ "addr", 'a', CLI_OPT_CALL, c, .fn = opt_addr, .has_arg = true },
		{ "port-file", 0, CLI_OPT_STRDUP, &c->port_file },
		{ "tls-cert", 0, CLI_OPT_STRDUP, &c->tls_cert },
		{ "tls-key", 0, CLI_OPT_STRDUP, &c->tls_key },
		{ "htpasswd", 0, CLI_OPT_STRDUP, &c->htpasswd },
		{ "token", 0, CLI_OPT_FLAG, &c->token_enabled },
		{ "token-key", 0, CLI_OPT_STRDUP, &c->token_key },
		OFF("no-delete", delete_enabled),
		OFF("no-fsync", fsync),
		{ "proxy", 0, CLI_OPT_STRDUP, &c->proxy_url },
		{ "threads", 0, CLI_OPT_CALL, &c->threads, .fn = opt_threads, .has_arg = true },
		OFF("no-access-log", access_log),
		{ "log-level", 0, CLI_OPT_CALL, "berth registry", .fn = opttab_log_level, .has_arg = true },
		{ "dry-run", 0, CLI_OPT_FLAG, dry_run },
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
#undef OFF
	memcpy(t, flags, sizeof(flags));
}

/*
 * Two passes over the flags: the first (into a scratch config) finds --config, --help and any bad
 * flag before the config file is read; the second applies the flags over the loaded config.
 */
static int parse_flags(int argc, char **argv, struct registry_config *cfg, bool *dry_run)
{
	struct registry_config scratch;
	registry_config_init(&scratch);
	const char *config = NULL;
	bool dry = false;
	struct cli_opt t[N_FLAGS];
	flags_table(t, &scratch, &config, &dry);
	int r = opttab_scan_usage(t, argc, argv, "+", usage);
	registry_config_done(&scratch);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 0 : 2;
	if (!config && optind < argc)
		config = argv[optind++]; /* like `registry serve config.yml` */
	if (optind < argc) {
		fprintf(stderr, "berth registry: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	if (config && registry_config_load(cfg, config, &err) < 0) {
		berth_error_print(err, "berth registry");
		return 1;
	}
	flags_table(t, cfg, &config, dry_run);
	return opttab_scan(t, argc, argv, "+", 0) == CLI_OPTTAB_OK ? -1 : 2;
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
	int rc = parse_flags(argc, argv, &cfg, &dry_run);
	if (rc >= 0) {
		registry_config_done(&cfg);
		return rc;
	}
	rc = 0;
	if (streq(verb, "gc")) {
		struct registry_gc_stats st;
		if (registry_gc(&cfg, dry_run, &st, &err) < 0)
			rc = 1;
		else
			print_gc(&st, dry_run);
	} else if (registry_serve(&cfg, &err) < 0) {
		rc = 1;
	}
	if (err)
		berth_error_print(err, "berth registry");
	registry_config_done(&cfg);
	return rc;
}
