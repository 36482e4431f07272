/*
 * network.c - `berth network create|ls|inspect|rm|prune|connect|disconnect`,
 * `berth port`, and the networking flags of `berth run/create` (-p, -P,
 * --expose, --network-alias, --ip, --dns*), as docker's CLI sends them.
 */
#include "cli/cli.h"
#include "cli/network.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"
#include "common/macro.h"
#include "common/strv.h"
#include "net/net.h"

/* Placeholder endpoint key until the network is known (--network may come after --ip). */
#define PENDING_EP ""

static json_t *arr_of(json_t *obj, const char *key)
{
	json_t *a = json_object_get(obj, key);
	if (!json_is_array(a))
		json_object_set_new(obj, key, a = json_array());
	return a;
}

static json_t *obj_of(json_t *obj, const char *key)
{
	json_t *o = json_object_get(obj, key);
	if (!json_is_object(o))
		json_object_set_new(obj, key, o = json_object());
	return o;
}

static json_t *pending_endpoint(json_t *cfg)
{
	return obj_of(obj_of(obj_of(cfg, "NetworkingConfig"), "EndpointsConfig"), PENDING_EP);
}

/* -p: every mapping (ranges expanded) becomes a PortBindings entry and an exposed port. */
static int publish(json_t *cfg, json_t *hc, const char *spec)
{
	_cleanup_free_ struct net_port *ports = NULL;
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	if (net_port_parse(spec, &ports, &n, &err) < 0) {
		berth_error_print(err, "berth: invalid argument for -p");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = xasprintf("%u/%s", ports[i].container_port, ports[i].proto);
		_cleanup_free_ char *hp =
		    ports[i].host_port ? xasprintf("%u", ports[i].host_port) : xstrdup("");
		json_object_set_new(obj_of(cfg, "ExposedPorts"), key, json_object());
		json_array_append_new(arr_of(obj_of(hc, "PortBindings"), key),
				      json_pack("{s:s,s:s}", "HostIp", ports[i].host_ip, "HostPort", hp));
	}
	return 0;
}

static int expose(json_t *cfg, const char *spec)
{
	_cleanup_free_ struct net_port *ports = NULL;
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	if (net_port_expose(spec, &ports, &n, &err) < 0) {
		berth_error_print(err, "berth: invalid argument for --expose");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *key = xasprintf("%u/%s", ports[i].container_port, ports[i].proto);
		json_object_set_new(obj_of(cfg, "ExposedPorts"), key, json_object());
	}
	return 0;
}

int cli_net_run_entry(const struct cli_opt *o, const char *v)
{
	const struct cli_net_run_ctx *c = o->dest;
	const char *n = o->name;
	if (streq(n, "publish"))
		return publish(c->cfg, c->hc, v);
	if (streq(n, "publish-all"))
		json_object_set_new(c->hc, "PublishAllPorts", json_true());
	else if (streq(n, "expose"))
		return expose(c->cfg, v);
	else if (streq(n, "network-alias"))
		json_array_append_new(arr_of(pending_endpoint(c->cfg), "Aliases"), json_string(v));
	else if (streq(n, "ip"))
		json_object_set_new(obj_of(pending_endpoint(c->cfg), "IPAMConfig"), "IPv4Address",
				    json_string(v));
	else if (streq(n, "dns"))
		json_array_append_new(arr_of(c->hc, "Dns"), json_string(v));
	else if (streq(n, "dns-search"))
		json_array_append_new(arr_of(c->hc, "DnsSearch"), json_string(v));
	else if (streq(n, "dns-option") || streq(n, "dns-opt"))
		json_array_append_new(arr_of(c->hc, "DnsOptions"), json_string(v));
	else
		return -EINVAL;
	return 0;
}

void cli_net_run_finish(json_t *cfg, json_t *hc)
{
	json_t *eps = json_object_get(json_object_get(cfg, "NetworkingConfig"), "EndpointsConfig");
	json_t *ep = json_object_get(eps, PENDING_EP);
	if (!ep)
		return;
	const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
	json_object_set(eps, mode && *mode ? mode : "default", ep);
	json_object_del(eps, PENDING_EP);
}

/* ---- berth network ---- */

static int usage(const char *text, bool help)
{
	fprintf(help ? stdout : stderr, "Usage: berth network %s\n", text);
	return help ? 0 : CLI_EXIT_DAEMON;
}

/* --subnet/--gateway/--ip-range: o->key of the IPv6 IPAM config when the value has a ':', else IPv4's. */
static int ipam_set(const struct cli_opt *o, const char *arg)
{
	json_t *const *pair = o->dest; /* { ipam, ipam6 } */
	json_object_set_new(pair[strchr(arg, ':') ? 1 : 0], o->key, json_string(arg));
	return 0;
}

static int aux_address_add(void *ipam, const char *arg)
{
	if (!json_object_get(ipam, "AuxiliaryAddresses"))
		json_object_set_new(ipam, "AuxiliaryAddresses", json_object());
	strv_kv_set(json_object_get(ipam, "AuxiliaryAddresses"), arg);
	return 0;
}

static int net_create(struct cli *cli, int argc, char **argv)
{
	static const struct cli_usage u = {
		CLI_USAGE_PLAIN,
		"network create [--driver bridge] [--subnet CIDR] [--gateway IP] [--ip-range CIDR] "
		"[--aux-address NAME=IP] [--ipv6 --subnet IPV6-CIDR [--gateway IPV6] [--ip-range IPV6-CIDR]] "
		"[--internal] [--label K=V] [-o K=V] NETWORK\n\nCreate a network "
		"(--subnet, --gateway and --ip-range with an IPv6 value set the IPv6 half of a "
		"dual-stack one)",
	};
	_cleanup_json_ json_t *body = json_pack("{s:{},s:{}}", "Labels", "Options");
	json_t *ipam = json_object(), *ipam6 = json_object();
	json_object_set_new(body, "IPAM",
			    json_pack("{s:s,s:[o,o]}", "Driver", "default", "Config", ipam, ipam6));
	json_t *pair[2] = { ipam, ipam6 };
	const struct cli_opt t[] = {
		{ "driver", 'd', CLI_OPT_JSON_STR, body, "Driver" },
		{ "subnet", 0, CLI_OPT_ENTRY, pair, "Subnet", .entry_fn = ipam_set, .has_arg = true },
		{ "gateway", 0, CLI_OPT_ENTRY, pair, "Gateway", .entry_fn = ipam_set, .has_arg = true },
		{ "ip-range", 0, CLI_OPT_ENTRY, pair, "IPRange", .entry_fn = ipam_set, .has_arg = true },
		{ "internal", 0, CLI_OPT_JSON_TRUE, body, "Internal" },
		{ "ipv6", 0, CLI_OPT_JSON_TRUE, body, "EnableIPv6" },
		{ "aux-address", 0, CLI_OPT_CALL, ipam, .fn = aux_address_add, .has_arg = true },
		CLI_OPT_KV("label", 0, json_object_get(body, "Labels")),
		CLI_OPT_KV("opt", 'o', json_object_get(body, "Options")),
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse_usage(t, argc, argv, NULL, &u, &rc))
		return rc;
	const char *text = u.help + strlen("network ");
	if (optind + 1 != argc)
		return usage(text, false);
	json_t *config = json_object_get(json_object_get(body, "IPAM"), "Config");
	if (!json_object_size(ipam6))
		json_array_remove(config, 1);
	if (!json_object_size(ipam))
		json_array_remove(config, 0);
	json_object_set_new(body, "Name", json_string(argv[optind]));
	json_t *resp = NULL;
	if (cli_expect(cli, "POST", body, &resp, 201, "/v1.41/networks/create") < 0)
		return 1;
	printf("%s\n", json_string_value(json_object_get(resp, "Id")));
	json_decref(resp);
	return 0;
}

static int net_ls(struct cli *cli, int argc, char **argv)
{
	bool quiet = false;
	const char *format = NULL;
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		CLI_OPT_FILTER("filter", 'f', filters),
		{ "format", 0, CLI_OPT_STRING, &format },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, NULL,
			      "network ls [-q] [--filter K=V] [--format T]\n\nList networks", &rc))
		return rc;
	_cleanup_free_ char *q = cli_filters_query(filters);
	_cleanup_free_ char *path = xasprintf("/v1.41/networks%s", q);
	json_t *resp = NULL;
	if (cli_expect(cli, "GET", NULL, &resp, 200, path) < 0)
		return 1;
	_cleanup_json_ json_t *rows = json_array();
	size_t i;
	json_t *n;
	json_array_foreach (resp, i, n) {
		const char *id = json_string_value(json_object_get(n, "Id")) ?: "";
		_cleanup_json_ json_t *o = json_pack(
		    "{s:s%,s:O,s:O,s:O}", "ID", id, strnlen(id, 12), "Name", json_object_get(n, "Name"),
		    "Driver", json_object_get(n, "Driver"), "Scope", json_object_get(n, "Scope"));
		if (quiet) {
			printf("%s\n", json_string_value(json_object_get(o, "ID")));
		} else if (format) {
			_cleanup_free_ char *line = cli_format(format, o);
			printf("%s\n", line);
		} else {
			json_array_append_new(
			    rows, json_pack("[O,O,O,O]", json_object_get(o, "ID"), json_object_get(o, "Name"),
					    json_object_get(o, "Driver"), json_object_get(o, "Scope")));
		}
	}
	json_decref(resp);
	if (!quiet && !format) {
		static const char *const headers[] = { "NETWORK ID", "NAME", "DRIVER", "SCOPE" };
		cli_print_table(headers, 4, rows);
	}
	return 0;
}

static int net_inspect(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argc, argv))
		return usage("inspect NETWORK [NETWORK...]\n\nDisplay detailed information on networks",
			     cli_is_help(argc, argv));
	_cleanup_json_ json_t *out = json_array();
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		_cleanup_free_ char *e = cli_escape(argv[i]);
		_cleanup_free_ char *path = xasprintf("/v1.41/networks/%s", e);
		json_t *resp = NULL;
		if (cli_expect(cli, "GET", NULL, &resp, 200, path) < 0)
			rc = 1;
		else
			json_array_append_new(out, resp);
	}
	_cleanup_free_ char *s = json_dumps(out, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	return rc;
}

static int net_rm(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argc, argv))
		return usage("rm NETWORK [NETWORK...]\n\nRemove networks", cli_is_help(argc, argv));
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		_cleanup_free_ char *e = cli_escape(argv[i]);
		_cleanup_free_ char *path = xasprintf("/v1.41/networks/%s", e);
		if (cli_expect(cli, "DELETE", NULL, NULL, 204, path) < 0)
			rc = 1;
		else
			printf("%s\n", argv[i]);
	}
	return rc;
}

static int net_prune(struct cli *cli, int argc, char **argv)
{
	bool force = false; /* there is no prompt to skip */
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "force", 'f', CLI_OPT_FLAG, &force },
		CLI_OPT_FILTER("filter", 0, filters),
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, NULL,
			      "network prune [-f] [--filter K=V]\n\nRemove all unused networks", &rc))
		return rc;
	return cli_prune_post(cli, "networks", filters, "NetworksDeleted", "Networks", false);
}

static int endpoint_ip(void *ep, const char *arg)
{
	json_object_set_new(obj_of(ep, "IPAMConfig"), "IPv4Address", json_string(arg));
	return 0;
}

static int net_connect(struct cli *cli, int argc, char **argv, bool connect)
{
	static const struct cli_usage uc = {
		CLI_USAGE_PLAIN, "network connect [--alias NAME] [--ip ADDR] NETWORK CONTAINER\n\n"
				 "Connect a container to a network"
	};
	static const struct cli_usage ud = {
		CLI_USAGE_PLAIN,
		"network disconnect [-f] NETWORK CONTAINER\n\nDisconnect a container from a network"
	};
	const char *text = (connect ? uc.help : ud.help) + strlen("network ");
	json_t *ep = json_object();
	_cleanup_json_ json_t *body = json_pack("{s:o}", "EndpointConfig", ep);
	const struct cli_opt tc[] = {
		{ "alias", 0, CLI_OPT_JSON_APPEND, ep, "Aliases" },
		{ "ip", 0, CLI_OPT_CALL, ep, .fn = endpoint_ip, .has_arg = true },
		{ NULL },
	};
	const struct cli_opt td[] = { { "force", 'f', CLI_OPT_JSON_TRUE, body, "Force" }, { NULL } };
	int rc;
	if (!cli_opttab_parse_usage(connect ? tc : td, argc, argv, NULL, connect ? &uc : &ud, &rc))
		return rc;
	if (optind + 2 != argc)
		return usage(text, false);
	if (!connect)
		json_object_del(body, "EndpointConfig");
	json_object_set_new(body, "Container", json_string(argv[optind + 1]));
	_cleanup_free_ char *e = cli_escape(argv[optind]);
	_cleanup_free_ char *path = xasprintf("/v1.41/networks/%s/%s", e, connect ? "connect" : "disconnect");
	return cli_expect(cli, "POST", body, NULL, 200, path) < 0 ? 1 : 0;
}

int cli_network(int argc, char **argv)
{
	static const char *text = "COMMAND\n\nManage networks\n\nCommands:\n"
				  "  connect     Connect a container to a network\n"
				  "  create      Create a network\n"
				  "  disconnect  Disconnect a container from a network\n"
				  "  inspect     Display detailed information on one or more networks\n"
				  "  ls          List networks\n"
				  "  prune       Remove all unused networks\n"
				  "  rm          Remove one or more networks\n";
	if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h"))
		return usage(text, argc >= 2);
	static const char *const verbs[] = { "create", "ls",    "list",    "inspect",   "rm",
					     "remove", "prune", "connect", "disconnect" };
	size_t v = 0;
	while (v < ARRAY_SIZE(verbs) && !streq(verbs[v], argv[1]))
		v++;
	if (v == ARRAY_SIZE(verbs)) {
		fprintf(stderr, "berth network: unknown command '%s'\n", argv[1]);
		return usage(text, false);
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	int rc;
	argc--, argv++;
	switch (v) {
	case 0: rc = net_create(&cli, argc, argv); break;
	case 1:
	case 2: rc = net_ls(&cli, argc, argv); break;
	case 3: rc = net_inspect(&cli, argc, argv); break;
	case 4:
	case 5: rc = net_rm(&cli, argc, argv); break;
	case 6: rc = net_prune(&cli, argc, argv); break;
	default: rc = net_connect(&cli, argc, argv, v == 7); break;
	}
	cli_close(&cli);
	return rc;
}

/* ---- berth port ---- */

static void print_bindings(const char *key, const json_t *list, bool with_key)
{
	size_t i;
	json_t *b;
	json_array_foreach (list, i, b) {
		const char *ip = json_string_value(json_object_get(b, "HostIp")) ?: "";
		const char *hp = json_string_value(json_object_get(b, "HostPort")) ?: "";
		bool v6 = strchr(ip, ':') != NULL;
		printf("%s%s%s%s%s:%s\n", with_key ? key : "", with_key ? " -> " : "", v6 ? "[" : "",
		       *ip ? ip : "0.0.0.0", v6 ? "]" : "", hp);
	}
}

int cli_port(int argc, char **argv)
{
	if (argc < 2 || argc > 3 || cli_is_help(argc, argv)) {
		fprintf(cli_is_help(argc, argv) ? stdout : stderr,
			"Usage: berth port CONTAINER [PRIVATE_PORT[/PROTO]]\n\n"
			"List port mappings or a specific mapping for the container\n");
		return cli_is_help(argc, argv) ? 0 : CLI_EXIT_DAEMON;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *e = cli_escape(argv[1]);
	_cleanup_free_ char *path = xasprintf("/v1.41/containers/%s/json", e);
	json_t *resp = NULL;
	long st = cli_expect(&cli, "GET", NULL, &resp, 200, path);
	cli_close(&cli);
	if (st < 0)
		return 1;
	json_t *ports = json_object_get(json_object_get(resp, "NetworkSettings"), "Ports");
	int rc = 0;
	if (argc == 3) {
		_cleanup_free_ char *key =
		    strchr(argv[2], '/') ? xstrdup(argv[2]) : xasprintf("%s/tcp", argv[2]);
		json_t *list = json_object_get(ports, key);
		if (json_array_size(list)) {
			print_bindings(key, list, false);
		} else {
			fprintf(stderr, "Error: No public port '%s' published for %s\n", key, argv[1]);
			rc = 1;
		}
	} else {
		const char *key;
		json_t *list;
		json_object_foreach (ports, key, list)
			print_bindings(key, list, true);
	}
	json_decref(resp);
	return rc;
}
