/*
 * tool.c - `berth net-tool`: a hidden, low-level front end to src/net/ for
 * integration tests and for humans debugging (like cnitool). See docs/net.md.
 * It owns no logic: parse arguments, call net.h, print JSON or a table.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "common/json.h"
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

struct strv_builder {
	char **v;
	size_t n;
};

static void sv_push(struct strv_builder *b, const char *s)
{
	strv_add(&b->v, s);
	b->n++;
}

static void sv_done(struct strv_builder *b)
{
	strv_free(b->v);
	b->v = NULL;
	b->n = 0;
}

static int fail(struct berth_error *e)
{
	berth_error_print(e, "berth net-tool");
	berth_error_free(e);
	return 1;
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
	static const struct option opts[] = { { "subnet", 1, 0, 's' },
					      { "gateway", 1, 0, 'g' },
					      { "ip-range", 1, 0, 'r' },
					      { "internal", 0, 0, 'i' },
					      { "label", 1, 0, 'l' },
					      { "opt", 1, 0, 'o' },
					      { "driver", 1, 0, 'd' },
					      { "ipv6", 0, 0, '6' },
					      { "subnet6", 1, 0, 'S' },
					      { "gateway6", 1, 0, 'G' },
					      { 0, 0, 0, 0 } };
	struct net_create_opts o = { 0 };
	struct strv_builder labels = { 0 }, options = { 0 };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': o.subnet = optarg; break;
		case 'g': o.gateway = optarg; break;
		case 'r': o.ip_range = optarg; break;
		case 'i': o.internal = true; break;
		case 'l': sv_push(&labels, optarg); break;
		case 'o': sv_push(&options, optarg); break;
		case 'd': o.driver = optarg; break;
		case '6': o.ipv6 = true; break;
		case 'S': o.subnet6 = optarg; break;
		case 'G': o.gateway6 = optarg; break;
		default:
			sv_done(&labels);
			sv_done(&options);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "berth net-tool create: exactly one network name expected\n");
		sv_done(&labels);
		sv_done(&options);
		return 2;
	}
	o.name = argv[optind];
	o.labels = (const char *const *)labels.v;
	o.options = (const char *const *)options.v;
	struct berth_error *e = NULL;
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	int r = net_network_create(ctx, &o, &n, &e);
	sv_done(&labels);
	sv_done(&options);
	if (r < 0)
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

/* --json and --filter KEY=VALUE (repeatable) -> *as_json, filters object {"KEY": ["VALUE", ...]}. */
static int parse_filters(int argc, char **argv, bool *as_json, json_t **ret)
{
	static const struct option opts[] = { { "json", 0, 0, 'j' },
					      { "filter", 1, 0, 'f' },
					      { 0, 0, 0, 0 } };
	json_t *f = json_object();
	int c;
	while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
		const char *eq = c == 'f' ? strchr(optarg, '=') : NULL;
		if (c == 'j' && as_json) {
			*as_json = true;
			continue;
		}
		if (!eq || eq == optarg) {
			fprintf(stderr, "berth net-tool: invalid filter '%s': expected KEY=VALUE\n",
				c == 'f' ? optarg : "");
			json_decref(f);
			return 2;
		}
		_cleanup_free_ char *k = xstrndup(optarg, (size_t)(eq - optarg));
		json_t *list = json_object_get(f, k);
		if (!list) {
			list = json_array();
			json_object_set_new(f, k, list);
		}
		json_array_append_new(list, json_string(eq + 1));
	}
	if (optind != argc) {
		fprintf(stderr, "berth net-tool: unexpected argument '%s'\n", argv[optind]);
		json_decref(f);
		return 2;
	}
	*ret = f;
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
	struct strv_builder aliases[NET_MAX_ENDPOINTS];
	struct strv_builder dns, search, dopts, hosts, expose;
	struct net_port *ports;
	size_t n_ports;
	bool publish_all;
};

static void attach_args_done(struct attach_args *a)
{
	for (size_t i = 0; i < NET_MAX_ENDPOINTS; i++)
		sv_done(&a->aliases[i]);
	sv_done(&a->dns);
	sv_done(&a->search);
	sv_done(&a->dopts);
	sv_done(&a->hosts);
	sv_done(&a->expose);
	free(a->ports);
}

static int attach_network(struct attach_args *a, const char *net, struct berth_error **err)
{
	if (streq(net, "none") || streq(net, "host") || startswith(net, "container:")) {
		if (a->o.n_endpoints)
			return berth_error_msg(err, EINVAL,
					       "network mode '%s' cannot be combined with networks", net);
		a->o.mode = streq(net, "none")   ? NET_MODE_NONE
			    : streq(net, "host") ? NET_MODE_HOST
						 : NET_MODE_CONTAINER;
		if (a->o.mode == NET_MODE_CONTAINER)
			a->o.share_with = net + strlen("container:");
		return 0;
	}
	if (a->o.mode != NET_MODE_BRIDGE)
		return berth_error_msg(err, EINVAL, "network '%s' cannot be combined with a network mode",
				       net);
	if (a->o.n_endpoints >= NET_MAX_ENDPOINTS)
		return berth_error_msg(err, E2BIG, "too many networks");
	a->eps[a->o.n_endpoints++].network = net;
	return 0;
}

/* --alias and --ip apply to the last --network given (the default network before any). */
static struct net_endpoint_opts *current_ep(struct attach_args *a, size_t *idx)
{
	if (a->o.n_endpoints == 0) {
		a->eps[0].network = NET_DEFAULT_NETWORK;
		a->o.n_endpoints = 1;
	}
	*idx = a->o.n_endpoints - 1;
	return &a->eps[*idx];
}

static int attach_parse(struct attach_args *a, int argc, char **argv, struct berth_error **err)
{
	static const struct option opts[] = {
		{ "name", 1, 0, 'n' },     { "hostname", 1, 0, 'h' },     { "domainname", 1, 0, 'D' },
		{ "network", 1, 0, 'N' },  { "alias", 1, 0, 'a' },        { "ip", 1, 0, 'i' },
		{ "publish", 1, 0, 'p' },  { "publish-all", 0, 0, 'P' },  { "expose", 1, 0, 'e' },
		{ "dns", 1, 0, 'd' },      { "dns-search", 1, 0, 's' },   { "dns-option", 1, 0, 'o' },
		{ "add-host", 1, 0, 'H' }, { "embedded-dns", 0, 0, 'E' }, { 0, 0, 0, 0 }
	};
	int c, r;
	size_t idx;
	while ((c = getopt_long(argc, argv, "p:P", opts, NULL)) != -1) {
		switch (c) {
		case 'n': a->o.name = optarg; break;
		case 'h': a->o.hostname = optarg; break;
		case 'D': a->o.domainname = optarg; break;
		case 'N':
			if ((r = attach_network(a, optarg, err)) < 0)
				return r;
			break;
		case 'a':
			current_ep(a, &idx);
			sv_push(&a->aliases[idx], optarg);
			break;
		case 'i': current_ep(a, &idx)->ipv4 = optarg; break;
		case 'p':
			if ((r = net_port_parse(optarg, &a->ports, &a->n_ports, err)) < 0)
				return r;
			break;
		case 'P': a->publish_all = true; break;
		case 'e': sv_push(&a->expose, optarg); break;
		case 'd': sv_push(&a->dns, optarg); break;
		case 's': sv_push(&a->search, optarg); break;
		case 'o': sv_push(&a->dopts, optarg); break;
		case 'H': sv_push(&a->hosts, optarg); break;
		case 'E': a->o.embedded_dns = true; break;
		default: return berth_error_msg(err, EINVAL, "invalid option (see 'berth net-tool --help')");
		}
	}
	if (optind != argc - 1)
		return berth_error_msg(err, EINVAL, "exactly one container id expected");
	for (size_t i = 0; a->publish_all && i < a->expose.n; i++)
		if ((r = net_port_expose(a->expose.v[i], &a->ports, &a->n_ports, err)) < 0)
			return r;
	a->o.container_id = argv[optind];
	for (size_t i = 0; i < a->o.n_endpoints; i++)
		a->eps[i].aliases = (const char *const *)a->aliases[i].v;
	if (a->o.mode == NET_MODE_BRIDGE)
		a->o.endpoints = a->eps;
	a->o.ports = a->ports;
	a->o.n_ports = a->n_ports;
	a->o.dns = (const char *const *)a->dns.v;
	a->o.dns_search = (const char *const *)a->search.v;
	a->o.dns_options = (const char *const *)a->dopts.v;
	a->o.extra_hosts = (const char *const *)a->hosts.v;
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
	static const struct option opts[] = { { "alias", 1, 0, 'a' }, { "ip", 1, 0, 'i' }, { 0, 0, 0, 0 } };
	struct net_endpoint_opts ep = { 0 };
	struct strv_builder aliases = { 0 };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'a')
			sv_push(&aliases, optarg);
		else if (c == 'i')
			ep.ipv4 = optarg;
		else {
			sv_done(&aliases);
			return 2;
		}
	}
	if (optind != argc - 2) {
		fprintf(stderr, "berth net-tool connect: NETWORK and CONTAINER expected\n");
		sv_done(&aliases);
		return 2;
	}
	ep.network = argv[optind];
	ep.aliases = (const char *const *)aliases.v;
	struct berth_error *e = NULL;
	int r = net_container_connect(ctx, argv[optind + 1], &ep, &e);
	sv_done(&aliases);
	return r < 0 ? fail(e) : 0;
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
	static const struct option opts[] = { { "keep", 1, 0, 'k' },
					      { "reserve", 1, 0, 'r' },
					      { 0, 0, 0, 0 } };
	struct strv_builder keep = { 0 }, reserve = { 0 };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'k' && c != 'r') {
			sv_done(&keep);
			sv_done(&reserve);
			return 2;
		}
		sv_push(c == 'k' ? &keep : &reserve, optarg);
	}
	_cleanup_strv_ char **removed = NULL;
	struct berth_error *e = NULL;
	int r = net_gc(ctx, (const char *const *)keep.v, (const char *const *)reserve.v, &removed, &e);
	sv_done(&keep);
	sv_done(&reserve);
	if (r < 0)
		return fail(e);
	for (size_t i = 0; removed[i]; i++)
		printf("%s\n", removed[i]);
	return 0;
}

static int cmd_dns(struct net_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = { { "port", 1, 0, 'p' }, { 0, 0, 0, 0 } };
	uint16_t port = 53;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int64_t v;
		if (c != 'p' || util_parse_int64(optarg, &v) < 0 || v < 1 || v > 65535) {
			fprintf(stderr, "berth net-tool dns: invalid port\n");
			return 2;
		}
		port = (uint16_t)v;
	}
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
	static const struct option opts[] = {
		{ "root", 1, 0, 'r' },   { "exec-root", 1, 0, 'x' },     { "cni-path", 1, 0, 'c' },
		{ "bridge", 1, 0, 'b' }, { "bridge-subnet", 1, 0, 's' }, { "help", 0, 0, 'h' },
		{ 0, 0, 0, 0 }
	};
	int c;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': cfg->root = optarg; break;
		case 'x': cfg->exec_root = optarg; break;
		case 'c': cfg->cni_path = optarg; break;
		case 'b': cfg->bridge_name = optarg; break;
		case 's': cfg->bridge_subnet = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return 2;
		}
	}
	return -1;
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
	optind = 1;
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
		optind = 0; /* full reinitialisation of GNU getopt (it permutes) */
		rc = subcommands[i].run(ctx, sub_argc, sub_argv);
		net_ctx_free(ctx);
		return rc;
	}
	fprintf(stderr, "berth net-tool: unknown command '%s'\n%s", argv[optind], usage_text);
	return 2;
}
