/*
 * network.h - private to cli/: the networking flags of `berth run/create`
 * (run.c hands them over) and the `berth network` / `berth port` commands.
 */
#ifndef BERTH_CLI_NETWORK_H
#define BERTH_CLI_NETWORK_H

#include <getopt.h>
#include <jansson.h>

enum {
	CLI_NET_OPT_EXPOSE = 600,
	CLI_NET_OPT_ALIAS,
	CLI_NET_OPT_IP,
	CLI_NET_OPT_DNS,
	CLI_NET_OPT_DNS_SEARCH,
	CLI_NET_OPT_DNS_OPTION,
};

/* Short options and long options of run/create handled here. */
#define CLI_NET_RUN_SHORTOPTS "p:P"
#define CLI_NET_RUN_LONGOPTS                                                                    \
	{ "publish", required_argument, NULL, 'p' }, { "publish-all", no_argument, NULL, 'P' }, \
	    { "expose", required_argument, NULL, CLI_NET_OPT_EXPOSE },                          \
	    { "network-alias", required_argument, NULL, CLI_NET_OPT_ALIAS },                    \
	    { "ip", required_argument, NULL, CLI_NET_OPT_IP },                                  \
	    { "dns", required_argument, NULL, CLI_NET_OPT_DNS },                                \
	    { "dns-search", required_argument, NULL, CLI_NET_OPT_DNS_SEARCH },                  \
	    { "dns-option", required_argument, NULL, CLI_NET_OPT_DNS_OPTION },                  \
	{                                                                                       \
		"dns-opt", required_argument, NULL, CLI_NET_OPT_DNS_OPTION                      \
	}
#define CLI_NET_RUN_USAGE                                                                       \
	"  -p, --publish [IP:][HOST:]PORT[/PROTO]  Publish a container port (ranges allowed)\n" \
	"  -P, --publish-all          Publish every exposed port on a random host port\n"       \
	"      --expose PORT[/PROTO], --network-alias NAME, --ip ADDR\n"                        \
	"      --dns IP, --dns-search DOMAIN, --dns-option OPT\n"

/*
 * Apply one networking flag of run/create to Config/HostConfig: 0 done,
 * -EINVAL bad value (message printed), -ENOENT not a networking flag.
 * --network-alias and --ip are kept in cfg["NetworkingConfig"] (sent as the
 * create body's NetworkingConfig) under the network cli_net_run_finish names.
 */
int cli_net_run_opt(json_t *cfg, json_t *hc, int ch, const char *v);
void cli_net_run_finish(json_t *cfg, json_t *hc);

int cli_network(int argc, char **argv);
int cli_port(int argc, char **argv);

#endif
