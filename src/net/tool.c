/*
 * tool.c - `berth net-tool`: a hidden, low-level front end to src/net/ for
 * integration tests and for humans debugging (like cnitool). See docs/net.md.
 * It owns no logic: parse arguments, call net.h, print JSON or a table.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "common/json.h"
#include "common/opttab.h"
#include "common/strv.h"
#include "common/util.h"
#include "net/net.h"

static const char usage_text[] =
    "Usage: berth net-tool [--root DIR] [--exec-root DIR] [--cni-path PATH] [--bridge NAME]\n"
    "                      [--bridge-subnet CIDR] COMMAND [ARG...]\n\n"
    "Commands:\n"
    "  create NAME [--subnet CIDR] [--gateway IP] [--ip-range CIDR] [--internal]\n"
    "              [--ipv6 --subnet6 CIDR [--gateway6 IP]]\n"
    "              [--label K=V]... [--opt K=V]... [--driver bridge]\n"
    "  rm NAME...             remove networks\n"
    "  ls [--json] [--filter K=V]...  list networks (docker filters)\n"
    "  inspect NAME           docker's network JSON\n"
    "  prune [--filter K=V]...        remove unused user networks (label, label!, until)\n"
    "  status NAME            CNI STATUS of the network's plugins\n"
    "  attach ID [--name N] [--hostname H] [--domainname D] [--network NET|none|host|container:ID]...\n"
    "            [--alias A]... [--ip IP] [-p SPEC]... [-P --expose PORT[/PROTO]...]\n"
    "            [--dns IP]... [--dns-search D]... [--dns-option O]... [--add-host NAME:IP]...\n"
    "            [--embedded-dns]\n"
    "  detach ID              tear down a container's network (its addresses are freed)\n"
    "  stop ID                tear down, keeping its addresses for its next attach\n"
    "  release ID [NET]       free the addresses kept for a container (on one network)\n"
    "  connect NET ID [--alias A]... [--ip IP]\n"
    "  disconnect NET ID\n"
    "  show ID                paths and docker NetworkSettings of a container\n"
    "  check ID               CNI CHECK of a container's endpoints\n"
    "  ls-containers          ids with network state\n"
    "  gc [--keep ID]... [--reserve ID]...\n"
    "                         tear down every container not kept (--reserve: as stop), drop stale\n"
    "                         leases and the kept addresses of containers in neither list\n"
    "  dns [--port 53]        run the embedded resolver in the foreground (SIGTERM stops it)\n"
    "  port-proxy PROTO IP PORT  forward the socket on fd 3 to IP:PORT in a background process\n"
    "                         (prints its pid; the daemon's [::1] publishes, as docker-proxy)\n";

static int fail(struct berth_error *e)
{
	berth_error_print(e, "berth net-tool");
	berth_error_free(e);
	return 1;
}

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

/* A verb's options (operands may come between them): true to go on; false after getopt's message
 * or the value's. */
static bool parse(const struct cli_opt *t, int argc, char **argv)
{
	return opttab_scan(t, argc, argv, NULL, 0) == CLI_OPTTAB_OK;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	printf("%s\n", s);
	free(s);
	json_decref(j);
}

static int cmd_create(struct net_ctx *ctx, int argc, char **argv)
{
	struct net_create_opts o = { 0 };
	_cleanup_strv_ char **labels = NULL, **options = NULL;
	const struct cli_opt t[] = {
		{ "subnet", 0, CLI_OPT_STRING, &o.subnet },
		{ "gateway", 0, CLI_OPT_STRING, &o.gateway },
		{ "ip-range", 0, CLI_OPT_STRING, &o.ip_range },
		{ "internal", 0, CLI_OPT_FLAG, &o.internal },
		{ "label", 0, CLI_OPT_STRV, &labels },
		{ "opt", 0, CLI_OPT_STRV, &options },
		{ "driver", 0, CLI_OPT_STRING, &o.driver },
		{ "ipv6", 0, CLI_OPT_FLAG, &o.ipv6 },
		{ "subnet6", 0, CLI_OPT_STRING, &o.subnet6 },
		{ "gateway6", 0, CLI_OPT_STRING, &o.gateway6 },
		{ NULL },
	};
	if (!parse(t, argc, argv))
		return 2;
	if (optind != argc - 1) {
		fprintf(stderr, "berth net-tool create: exactly one network name expected\n");
		return 2;
	}
	o.name = argv[optind];
	o.labels = (const char *const *)labels;
	o.options = (const char *const *)options;
	struct berth_error *e = NULL;
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	if (net_network_create(ctx, &o, &n, &e) < 0)
		return fail(e);
	printf("%s\n", n->id);
	return 0;
}

static int cmd_rm(struct net_ctx *ctx, int argc, char **argv)
{
	int rc = 0;
	if (argc < 2) {
		fprintf(stderr, "berth net-tool rm: network name expected\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct berth_error *e = NULL;
		if (net_network_remove(ctx, argv[i], &e) < 0)
			rc = fail(e);
		else
			printf("%s\n", argv[i]);
	}
	return rc;
}

/* --filter KEY=VALUE into the filters object dest: {"KEY": ["VALUE", ...]}. */
static int opt_filter(void *dest, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "berth net-tool: invalid filter '%s': expected KEY=VALUE\n", arg);
		return -1;
	}
	_cleanup_free_ char *k = xstrndup(arg, (size_t)(eq - arg));
	json_t *list = json_object_get(dest, k);
	if (!list) {
		list = json_array();
		json_object_set_new(dest, k, list);
	}
	json_array_append_new(list, json_string(eq + 1));
	return 0;
}

/* --filter KEY=VALUE (repeatable) and, with as_json, --json -> *as_json and the filters object. */
static int parse_filters(int argc, char **argv, bool *as_json, json_t **ret)
{
	json_auto_t *f = json_object();
	const struct cli_opt t[] = {
		{ "filter", 'f', CLI_OPT_CALL, f, .fn = opt_filter, .has_arg = true },
		{ as_json ? "json" : NULL, 0, CLI_OPT_FLAG, as_json }, /* a NULL name ends the table */
		{ NULL },
	};
	if (!parse(t, argc, argv))
		return 2;
	if (optind != argc) {
		fprintf(stderr, "berth net-tool: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	*ret = TAKE_PTR(f);
	return 0;
}

static int cmd_ls(struct net_ctx *ctx, int argc, char **argv)
{
	bool as_json = false;
	json_auto_t *filters = NULL;
	if (parse_filters(argc, argv, &as_json, &filters) != 0)
		return 2;
	struct net_network **v = NULL;
	struct berth_error *e = NULL;
	if (net_network_list(ctx, &v, &e) < 0)
		return fail(e);
	json_t *a = json_array();
	int rc = 0;
	for (size_t i = 0; v[i]; i++) {
		bool match = false;
		if (net_api_network_match(ctx, v[i], filters, &match, &e) < 0) {
			rc = fail(e);
			break;
		}
		if (match)
			json_array_append_new(a, net_api_network(ctx, v[i], false));
	}
	net_network_list_free(v);
	if (rc == 0 && as_json) {
		print_json(a);
		return 0;
	}
	if (rc == 0)
		printf("%-14s %-24s %-8s %s\n", "NETWORK ID", "NAME", "DRIVER", "SUBNET");
	size_t i;
	json_t *n;
	json_array_foreach (a, i, n) {
		json_t *cfg = json_array_get(json_object_get(json_object_get(n, "IPAM"), "Config"), 0);
		const char *subnet = json_string_value(json_object_get(cfg, "Subnet"));
		printf("%-14.12s %-24s %-8s %s\n", json_string_value(json_object_get(n, "Id")),
		       json_string_value(json_object_get(n, "Name")),
		       json_string_value(json_object_get(n, "Driver")), subnet ? subnet : "");
	}
	json_decref(a);
	return rc;
}

static int cmd_inspect(struct net_ctx *ctx, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "berth net-tool inspect: one network expected\n");
		return 2;
	}
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	struct berth_error *e = NULL;
	if (net_network_get(ctx, argv[1], &n, &e) < 0)
		return fail(e);
	print_json(net_api_network(ctx, n, true));
	return 0;
}

static int cmd_prune(struct net_ctx *ctx, int argc, char **argv)
{
	_cleanup_strv_ char **removed = NULL;
	struct berth_error *e = NULL;
	json_auto_t *filters = NULL;
	if (parse_filters(argc, argv, NULL, &filters) != 0)
		return 2;
	if (net_network_prune_filtered(ctx, filters, &removed, &e) < 0)
		return fail(e);
	print_json(net_api_prune_response(removed));
	return 0;
}

static int cmd_status(struct net_ctx *ctx, int argc, char **argv)
{
	struct berth_error *e = NULL;
	if (argc != 2) {
		fprintf(stderr, "berth net-tool status: one network expected\n");
		return 2;
	}
	if (net_network_status(ctx, argv[1], &e) < 0)
		return fail(e);
	printf("ready\n");
	return 0;
}

static json_t *show_json(const struct net_container *c)
{
	json_t *j =
	    json_pack("{s:s,s:s?,s:s,s:s,s:s}", "Id", c->id, "NetnsPath", c->netns_path, "HostsPath",
		      c->hosts_path, "ResolvConfPath", c->resolv_conf_path, "HostnamePath", c->hostname_path);
	json_object_set_new(j, "NetworkSettings", net_api_network_settings(c, NULL));
	return j;
}

static int cmd_show(struct net_ctx *ctx, int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "berth net-tool show: one container id expected\n");
		return 2;
	}
	_cleanup_(net_container_freep) struct net_container *c = NULL;
	struct berth_error *e = NULL;
	if (net_container_get(ctx, argv[1], &c, &e) < 0)
		return fail(e);
	print_json(show_json(c));
	return 0;
}

struct attach_args {
	struct net_container_opts o;
	struct net_endpoint_opts eps[NET_MAX_ENDPOINTS];
	char **aliases[NET_MAX_ENDPOINTS];
	char **dns, **search, **dopts, **hosts, **expose;
	struct net_port *ports;
	size_t n_ports;
	bool publish_all;
	struct berth_error *err; /* why an option's value was refused */
};

static void attach_args_done(struct attach_args *a)
{
	for (size_t i = 0; i < NET_MAX_ENDPOINTS; i++)
		strv_free(a->aliases[i]);
	strv_free(a->dns);
	strv_free(a->search);
	strv_free(a->dopts);
	strv_free(a->hosts);
	strv_free(a->expose);
	free(a->ports);
	berth_error_free(a->err);
}

/* --network NET|none|host|container:ID */
static int opt_network(void *dest, const char *net)
{
	struct attach_args *a = dest;
	if (streq(net, "none") || streq(net, "host") || startswith(net, "container:")) {
		if (a->o.n_endpoints)
			return berth_error_msg(&a->err, EINVAL,
					       "network mode '%s' cannot be combined with networks", net);
		a->o.mode = streq(net, "none")   ? NET_MODE_NONE
			    : streq(net, "host") ? NET_MODE_HOST
						 : NET_MODE_CONTAINER;
		if (a->o.mode == NET_MODE_CONTAINER)
			a->o.share_with = net + strlen("container:");
		return 0;
	}
	if (a->o.mode != NET_MODE_BRIDGE)
		return berth_error_msg(&a->err, EINVAL, "network '%s' cannot be combined with a network mode",
				       net);
	if (a->o.n_endpoints >= NET_MAX_ENDPOINTS)
		return berth_error_msg(&a->err, E2BIG, "too many networks");
	a->eps[a->o.n_endpoints++].network = net;
	return 0;
}

/* --alias and --ip apply to the last --network given (the default network before any). */
static size_t current_ep(struct attach_args *a)
{
	if (a->o.n_endpoints == 0) {
		a->eps[0].network = NET_DEFAULT_NETWORK;
		a->o.n_endpoints = 1;
	}
	return a->o.n_endpoints - 1;
}

static int opt_alias(void *dest, const char *arg)
{
	struct attach_args *a = dest;
	strv_add(&a->aliases[current_ep(a)], arg);
	return 0;
}

static int opt_ip(void *dest, const char *arg)
{
	struct attach_args *a = dest;
	a->eps[current_ep(a)].ipv4 = arg;
	return 0;
}

static int opt_publish(void *dest, const char *arg)
{
	struct attach_args *a = dest;
	return net_port_parse(arg, &a->ports, &a->n_ports, &a->err);
}

static int attach_parse(struct attach_args *a, int argc, char **argv, struct berth_error **err)
{
#define ATTACH_CALL(name, short_name, f)                                          \
	{                                                                         \
		(name), (short_name), CLI_OPT_CALL, a, .fn = (f), .has_arg = true \
	}
	const struct cli_opt t[] = {
		{ "name", 0, CLI_OPT_STRING, &a->o.name },
		{ "hostname", 0, CLI_OPT_STRING, &a->o.hostname },
		{ "domainname", 0, CLI_OPT_STRING, &a->o.domainname },
		ATTACH_CALL("network", 0, opt_network),
		ATTACH_CALL("alias", 0, opt_alias),
		ATTACH_CALL("ip", 0, opt_ip),
		ATTACH_CALL("publish", 'p', opt_publish),
		{ "publish-all", 'P', CLI_OPT_FLAG, &a->publish_all },
		{ "expose", 0, CLI_OPT_STRV, &a->expose },
		{ "dns", 0, CLI_OPT_STRV, &a->dns },
		{ "dns-search", 0, CLI_OPT_STRV, &a->search },
		{ "dns-option", 0, CLI_OPT_STRV, &a->dopts },
		{ "add-host", 0, CLI_OPT_STRV, &a->hosts },
		{ "embedded-dns", 0, CLI_OPT_FLAG, &a->o.embedded_dns },
		{ NULL },
	};
#undef ATTACH_CALL
	int r = opttab_scan(t, argc, argv, NULL, 0);
	if (r == CLI_OPTTAB_BAD_VALUE) {
		*err = TAKE_PTR(a->err);
		return -EINVAL;
	}
	if (r != CLI_OPTTAB_OK)
		return berth_error_msg(err, EINVAL, "invalid option (see 'berth net-tool --help')");
	if (optind != argc - 1)
		return berth_error_msg(err, EINVAL, "exactly one container id expected");
	for (size_t i = 0; a->publish_all && a->expose && a->expose[i]; i++)
		if ((r = net_port_expose(a->expose[i], &a->ports, &a->n_ports, err)) < 0)
			return r;
	a->o.container_id = argv[optind];
	for (size_t i = 0; i < a->o.n_endpoints; i++)
		a->eps[i].aliases = (const char *const *)a->aliases[i];
	if (a->o.mode == NET_MODE_BRIDGE)
		a->o.endpoints = a->eps;
	a->o.ports = a->ports;
	a->o.n_ports = a->n_ports;
	a->o.dns = (const char *const *)a->dns;
	a->o.dns_search = (const char *const *)a->search;
	a->o.dns_options = (const char *const *)a->dopts;
	a->o.extra_hosts = (const char *const *)a->hosts;
	return 0;
}

static int cmd_attach(struct net_ctx *ctx, int argc, char **argv)
{
	struct attach_args a = { 0 };
	struct berth_error *e = NULL;
	_cleanup_(net_container_freep) struct net_container *c = NULL;
	int r = attach_parse(&a, argc, argv, &e);
	if (r >= 0)
		r = net_container_prepare(ctx, &a.o, &c, &e);
	attach_args_done(&a);
	if (r < 0)
		return fail(e);
	print_json(show_json(c));
	return 0;
}

static int cmd_connect(struct net_ctx *ctx, int argc, char **argv)
{
	struct net_endpoint_opts ep = { 0 };
	_cleanup_strv_ char **aliases = NULL;
	const struct cli_opt t[] = {
		{ "alias", 0, CLI_OPT_STRV, &aliases },
		{ "ip", 0, CLI_OPT_STRING, &ep.ipv4 },
		{ NULL },
	};
	if (!parse(t, argc, argv))
		return 2;
	if (optind != argc - 2) {
		fprintf(stderr, "berth net-tool connect: NETWORK and CONTAINER expected\n");
		return 2;
	}
	ep.network = argv[optind];
	ep.aliases = (const char *const *)aliases;
	struct berth_error *e = NULL;
	return net_container_connect(ctx, argv[optind + 1], &ep, &e) < 0 ? fail(e) : 0;
}

static int cmd_two(struct net_ctx *ctx, int argc, char **argv)
{
	struct berth_error *e = NULL;
	int r;
	if (streq(argv[0], "disconnect")) {
		if (argc != 3) {
			fprintf(stderr, "berth net-tool disconnect: NETWORK and CONTAINER expected\n");
			return 2;
		}
		r = net_container_disconnect(ctx, argv[2], argv[1], &e);
	} else if (streq(argv[0], "release")) {
		if (argc != 2 && argc != 3) {
			fprintf(stderr, "berth net-tool release: CONTAINER [NETWORK] expected\n");
			return 2;
		}
		r = net_container_release(ctx, argv[1], argc == 3 ? argv[2] : NULL, &e);
	} else {
		if (argc != 2) {
			fprintf(stderr, "berth net-tool %s: one container id expected\n", argv[0]);
			return 2;
		}
		r = streq(argv[0], "detach") ? net_container_teardown(ctx, argv[1], &e)
		    : streq(argv[0], "stop") ? net_container_stop(ctx, argv[1], &e)
					     : net_container_check(ctx, argv[1], &e);
	}
	return r < 0 ? fail(e) : 0;
}

static int cmd_gc(struct net_ctx *ctx, int argc, char **argv)
{
	_cleanup_strv_ char **keep = NULL, **reserve = NULL;
	const struct cli_opt t[] = {
		{ "keep", 0, CLI_OPT_STRV, &keep },
		{ "reserve", 0, CLI_OPT_STRV, &reserve },
		{ NULL },
	};
	if (!parse(t, argc, argv))
		return 2;
	_cleanup_strv_ char **removed = NULL;
	struct berth_error *e = NULL;
	if (net_gc(ctx, (const char *const *)keep, (const char *const *)reserve, &removed, &e) < 0)
		return fail(e);
	for (size_t i = 0; removed[i]; i++)
		printf("%s\n", removed[i]);
	return 0;
}

static int opt_port(void *dest, const char *arg)
{
	int64_t v;
	if (util_parse_int64(arg, &v) < 0 || v < 1 || v > 65535) {
		fprintf(stderr, "berth net-tool dns: invalid port\n");
		return -1;
	}
	*(uint16_t *)dest = (uint16_t)v;
	return 0;
}

static int cmd_dns(struct net_ctx *ctx, int argc, char **argv)
{
	uint16_t port = 53;
	const struct cli_opt t[] = { { "port", 0, CLI_OPT_CALL, &port, .fn = opt_port, .has_arg = true },
				     { NULL } };
	if (!parse(t, argc, argv))
		return 2;
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	_cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	struct net_dns *d = NULL;
	struct berth_error *e = NULL;
	if (sfd < 0 || net_dns_open(ctx, port, &d, &e) < 0)
		return fail(e);
	printf("ready\n");
	fflush(stdout);
	int r = net_dns_serve(d, sfd, &e);
	net_dns_free(d);
	return r < 0 ? fail(e) : 0;
}

static int cmd_ls_containers(struct net_ctx *ctx, int argc, char **argv)
{
	_cleanup_strv_ char **ids = NULL;
	struct berth_error *e = NULL;
	if (net_container_list(ctx, &ids, &e) < 0)
		return fail(e);
	for (size_t i = 0; ids[i]; i++)
		printf("%s\n", ids[i]);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(struct net_ctx *ctx, int argc, char **argv);
} subcommands[] = {
	{ "create", cmd_create },   { "rm", cmd_rm },       { "ls", cmd_ls },
	{ "inspect", cmd_inspect }, { "prune", cmd_prune }, { "status", cmd_status },
	{ "attach", cmd_attach },   { "detach", cmd_two },  { "connect", cmd_connect },
	{ "disconnect", cmd_two },  { "check", cmd_two },   { "show", cmd_show },
	{ "gc", cmd_gc },           { "dns", cmd_dns },     { "ls-containers", cmd_ls_containers },
	{ "stop", cmd_two },        { "release", cmd_two },
};

static int parse_globals(int argc, char **argv, struct net_config *cfg)
{
	const struct cli_opt t[] = {
		{ "root", 0, CLI_OPT_STRING, &cfg->root },
		{ "exec-root", 0, CLI_OPT_STRING, &cfg->exec_root },
		{ "cni-path", 0, CLI_OPT_STRING, &cfg->cni_path },
		{ "bridge", 0, CLI_OPT_STRING, &cfg->bridge_name },
		{ "bridge-subnet", 0, CLI_OPT_STRING, &cfg->bridge_subnet },
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
	int r = opttab_scan_usage(t, argc, argv, "+", usage);
	return r == CLI_OPTTAB_OK ? -1 : r == CLI_OPTTAB_HELP ? 0 : 2;
}

/*
 * port-proxy PROTO IP PORT: serve the socket the daemon bound (fd 3) from a detached
 * process, print its pid, and return at once. Needs no network state.
 */
static int port_proxy(int argc, char **argv)
{
	int64_t port;
	if (argc != 4 || util_parse_int64(argv[3], &port) < 0 || port < 1 || port > 65535) {
		fputs("Usage: berth net-tool port-proxy PROTO IP PORT (the socket on fd 3)\n", stderr);
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("berth net-tool port-proxy: fork");
		return 1;
	}
	if (pid > 0) {
		printf("%d\n", (int)pid);
		return 0;
	}
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd < 3 && null >= 0; fd++)
		dup2(null, fd);
	struct berth_error *e = NULL;
	net_port_proxy_serve(3, argv[1], argv[2], (uint16_t)port, &e);
	berth_error_free(e);
	_exit(1);
}

int net_tool_main(int argc, char **argv)
{
	struct net_config cfg = { .root = getenv("BERTH_ROOT"), .exec_root = getenv("BERTH_EXEC_ROOT") };
	int rc = parse_globals(argc, argv, &cfg);
	if (rc >= 0)
		return rc;
	if (!cfg.root)
		cfg.root = "/var/lib/berth";
	if (!cfg.exec_root)
		cfg.exec_root = "/run/berth";
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (streq(argv[optind], "port-proxy"))
		return port_proxy(argc - optind, argv + optind);
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++) {
		if (!streq(subcommands[i].name, argv[optind]))
			continue;
		struct net_ctx *ctx = NULL;
		struct berth_error *e = NULL;
		if (net_ctx_open(&cfg, &ctx, &e) < 0)
			return fail(e);
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		rc = subcommands[i].run(ctx, sub_argc, sub_argv);
		net_ctx_free(ctx);
		return rc;
	}
	fprintf(stderr, "berth net-tool: unknown command '%s'\n%s", argv[optind], usage_text);
	return 2;
}
