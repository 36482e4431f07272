/*
 * network.h - private to cli/: the networking flags of `berth run/create`
 * (run.c hands them over) and the `berth network` / `berth port` commands.
 */
#ifndef BERTH_CLI_NETWORK_H
#define BERTH_CLI_NETWORK_H

#include <jansson.h>

/* The networking flags of run/create: table entries (cli/opttab.h) over ctx (struct cli_net_run_ctx *). */
struct cli_net_run_ctx {
	json_t *cfg, *hc; /* the create body's Config and HostConfig */
};
struct cli_opt;
/*
 * Apply one networking flag (o->name) of run/create to Config/HostConfig: 0
 * done, -EINVAL bad value (message printed). --network-alias and --ip are
 * kept in cfg["NetworkingConfig"] (sent as the create body's
 * NetworkingConfig) under the network cli_net_run_finish names.
 */
int cli_net_run_entry(const struct cli_opt *o, const char *v);
#define CLI_NET_RUN_ENTRY(name, short_name, ctx, has_arg_)                                 \
	{                                                                                  \
		(name), (short_name), CLI_OPT_ENTRY, (ctx), .entry_fn = cli_net_run_entry, \
							    .has_arg = (has_arg_)          \
	}
#define CLI_NET_RUN_OPTS(ctx)                                                                             \
	CLI_NET_RUN_ENTRY("publish", 'p', ctx, true), CLI_NET_RUN_ENTRY("publish-all", 'P', ctx, false),  \
	    CLI_NET_RUN_ENTRY("expose", 0, ctx, true), CLI_NET_RUN_ENTRY("network-alias", 0, ctx, true),  \
	    CLI_NET_RUN_ENTRY("ip", 0, ctx, true), CLI_NET_RUN_ENTRY("dns", 0, ctx, true),                \
	    CLI_NET_RUN_ENTRY("dns-search", 0, ctx, true), CLI_NET_RUN_ENTRY("dns-option", 0, ctx, true), \
	    CLI_NET_RUN_ENTRY("dns-opt", 0, ctx, true)
#define CLI_NET_RUN_USAGE                                                                       \
	"  -p, --publish [IP:][HOST:]PORT[/PROTO]  Publish a container port (ranges allowed)\n" \
	"  -P, --publish-all          Publish every exposed port on a random host port\n"       \
	"      --expose PORT[/PROTO], --network-alias NAME, --ip ADDR\n"                        \
	"      --dns IP, --dns-search DOMAIN, --dns-option OPT\n"

void cli_net_run_finish(json_t *cfg, json_t *hc);

int cli_network(int argc, char **argv);
int cli_port(int argc, char **argv);

#endif
