/*
 * netops.c - the engine's network vtable over net/ (see netops.h): which
 * networks a container joins, its published ports and DNS settings come from
 * its Docker HostConfig/Config and its recorded NetworkingConfig; net/ does
 * the rest. The hosts, resolv.conf and hostname files of net/ become the
 * container's (the engine's copies are symlinks to them), so connect and
 * disconnect update a running container's /etc/hosts in place.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>

#include "host/netops.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"

struct netops {
	struct net_ctx *net;
	struct engine *engine;
	char *dir; /* <root>/netops */
	pthread_mutex_t lock;
};

struct net_ctx *host_netops_net(struct netops *n)
{
	return n->net;
}

void host_netops_set_engine(struct netops *n, struct engine *e)
{
	n->engine = e;
}

int host_netops_open(const char *root, const char *exec_root, const char *bridge, const char *subnet6,
		     struct netops **ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/netops", root);
	int r = fs_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	struct net_ctx *net = NULL;
	if ((r = net_ctx_open(
		 &(struct net_config){
		     .root = root, .exec_root = exec_root, .bridge_name = bridge, .bridge_subnet6 = subnet6 },
		 &net, err)) < 0)
		return berth_error_wrap(err, r, "open networking");
	struct netops *n = xcalloc(1, sizeof(*n));
	n->net = net;
	n->dir = TAKE_PTR(dir);
	pthread_mutex_init(&n->lock, NULL);
	*ret = n;
	return 0;
}

struct netops *host_netops_free(struct netops *n)
{
	if (!n)
		return NULL;
	net_ctx_free(n->net);
	pthread_mutex_destroy(&n->lock);
	free(n->dir);
	free(n);
	return NULL;
}

int host_netops_remove_firewall(struct netops *n, struct berth_error **err)
{
	return net_ctx_remove_firewall(n->net, err);
}

/* ---- per-container records ---- */

static bool valid_id(const char *cid)
{
	return cid && *cid && strlen(cid) <= 128 && strspn(cid, "0123456789abcdef") == strlen(cid);
}

json_t *host_netops_record_load(struct netops *n, const char *cid)
{
	json_t *j = NULL;
	if (valid_id(cid)) {
		_cleanup_free_ char *p = xasprintf("%s/%s.json", n->dir, cid);
		if (json_load_path(p, 1 << 20, &j, NULL) < 0 ||
		    !json_is_array(json_object_get(j, "Networks"))) {
			json_decref(j);
			j = NULL;
		}
	}
	return j ? j : json_pack("{s:[],s:b}", "Networks", "Missing", 1);
}

int host_netops_record_save(struct netops *n, const char *cid, const json_t *rec, struct berth_error **err)
{
	if (!valid_id(cid))
		return berth_error_msg(err, EINVAL, "invalid container id '%s'", cid ? cid : "");
	_cleanup_json_ json_t *copy = json_deep_copy(rec);
	json_object_del(copy, "Missing");
	_cleanup_free_ char *text = json_dumps(copy, JSON_COMPACT);
	_cleanup_free_ char *p = xasprintf("%s/%s.json", n->dir, cid);
	return fs_write_file_atomic(p, text, strlen(text), 0600, err);
}

/* "default"/"bridge" -> the default network, a user network's name otherwise; NULL for built-in modes. */
static const char *mode_network(const char *mode)
{
	if (!mode || !*mode || streq(mode, "default") || streq(mode, "bridge"))
		return NET_DEFAULT_NETWORK;
	if (streq(mode, "none") || streq(mode, "host") || startswith(mode, "container:"))
		return NULL;
	return mode;
}

bool host_netops_is_running_mode(const struct engine_container_info *i)
{
	return mode_network(json_string_value(json_object_get(i->hostconfig, "NetworkMode"))) != NULL;
}

/* The endpoint config NetworkingConfig gives for network `name` (borrowed or NULL). */
static json_t *endpoint_config(const json_t *networking_config, const char *name)
{
	json_t *eps = json_object_get(networking_config, "EndpointsConfig");
	json_t *ep = json_object_get(eps, name);
	if (!ep && streq(name, NET_DEFAULT_NETWORK))
		ep = json_object_get(eps, "default");
	return json_is_object(ep) ? ep : NULL;
}

/* The IPAMConfig docker echoes: the object given with its non-empty members, or null. */
static json_t *ipam_config_of(const json_t *ep)
{
	json_t *ipam = json_object_get(ep, "IPAMConfig");
	if (!json_is_object(ipam))
		return json_null();
	json_t *out = json_object();
	const char *keys[] = { "IPv4Address", "IPv6Address", NULL };
	for (size_t i = 0; keys[i]; i++) {
		const char *v = json_string_value(json_object_get(ipam, keys[i]));
		if (v && *v)
			json_object_set_new(out, keys[i], json_string(v));
	}
	json_t *ll = json_object_get(ipam, "LinkLocalIPs");
	if (json_is_array(ll) && json_array_size(ll))
		json_object_set(out, "LinkLocalIPs", ll);
	return out;
}

json_t *host_netops_endpoint_entry(const char *name, const json_t *ep, const char *mac)
{
	json_t *aliases = json_object_get(ep, "Aliases");
	json_t *ipam = ipam_config_of(ep);
	const char *ip = json_string_value(json_object_get(ipam, "IPv4Address"));
	const char *ep_mac = json_string_value(json_object_get(ep, "MacAddress"));
	json_t *links = json_object_get(ep, "Links"), *opts = json_object_get(ep, "DriverOpts");
	json_t *e = json_pack(
	    "{s:s,s:O,s:o,s:O,s:O}", "Name", name, "Aliases",
	    json_is_array(aliases) && json_array_size(aliases) ? aliases : json_null(), "IPAMConfig", ipam,
	    "Links", json_is_array(links) && json_array_size(links) ? links : json_null(), "DriverOpts",
	    json_is_object(opts) && json_object_size(opts) ? opts : json_null());
	if (ip && *ip)
		json_object_set_new(e, "IPv4Address", json_string(ip));
	const char *ip6 = json_string_value(json_object_get(ipam, "IPv6Address"));
	if (ip6 && *ip6)
		json_object_set_new(e, "IPv6Address", json_string(ip6));
	/* EndpointSettings.MacAddress (API 1.44) or the container's Config.MacAddress */
	if (ep_mac && *ep_mac)
		json_object_set_new(e, "MacAddress", json_string(ep_mac));
	else if (mac && *mac)
		json_object_set_new(e, "ConfigMacAddress", json_string(mac));
	return e;
}

/* The MAC requested for an endpoint entry of the record (NULL: none). */
static const char *entry_mac(const json_t *e)
{
	const char *m = json_string_value(json_object_get(e, "MacAddress"));
	return m ? m : json_string_value(json_object_get(e, "ConfigMacAddress"));
}

/* ---- ports ---- */

/* Append the bindings of PortBindings (and -P's exposed ports) to *v and *n. */
static int ports_of(const json_t *hc, const json_t *cfg, struct net_port **v, size_t *n,
		    struct berth_error **err)
{
	const char *key;
	json_t *list, *exp = json_object_get(cfg, "ExposedPorts");
	json_t *pb = json_object_get(hc, "PortBindings");
	if (pb && !json_is_null(pb) && !json_is_object(pb))
		return berth_error_msg(err, EINVAL, "invalid PortBindings: expected an object");
	json_object_foreach (pb, key, list) {
		size_t k;
		json_t *b;
		_cleanup_free_ char *cport = xstrdup(key);
		char *proto = strchr(cport, '/');
		if (proto)
			*proto++ = '\0';
		if (!*cport || strspn(cport, "0123456789-") != strlen(cport))
			return berth_error_msg(err, EINVAL, "invalid port '%s'", key);
		json_array_foreach (list, k, b) {
			const char *ip = json_string_value(json_object_get(b, "HostIp"));
			const char *hp = json_string_value(json_object_get(b, "HostPort"));
			ip = ip ? ip : "", hp = hp ? hp : "";
			bool v6 = strchr(ip, ':') != NULL;
			_cleanup_free_ char *spec =
			    xasprintf("%s%s%s%s%s%s%s/%s", v6 ? "[" : "", ip, v6 ? "]" : "", *ip ? ":" : "",
				      hp, *ip || *hp ? ":" : "", cport, proto ? proto : "tcp");
			int r = net_port_parse(spec, v, n, err);
			if (r < 0)
				return r;
		}
	}
	if (!json_is_true(json_object_get(hc, "PublishAllPorts")))
		return 0;
	json_object_foreach (exp, key, list) {
		if (json_object_get(pb, key))
			continue;
		int r = net_port_expose(key, v, n, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Borrowed strings of a JSON array of strings as a NULL-terminated vector (NULL when absent/empty). */
static const char **strv_of(const json_t *a)
{
	if (!json_is_array(a) || json_array_size(a) == 0)
		return NULL;
	const char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
	size_t i, k = 0;
	json_t *s;
	json_array_foreach (a, i, s)
		if (json_is_string(s))
			v[k++] = json_string_value(s);
	return v;
}

/* ---- create hook ---- */

static int mac_check(const char *mac, struct berth_error **err)
{
	if (mac && *mac && !net_mac_valid(mac))
		return berth_error_msg(err, EINVAL, "invalid MAC address '%s'", mac);
	return 0;
}

int host_netops_create_check(struct netops *n, const json_t *cfg, const json_t *hc, const json_t *nc,
			     struct berth_error **err)
{
	const char *name = mode_network(json_string_value(json_object_get(hc, "NetworkMode")));
	_cleanup_free_ struct net_port *ports = NULL;
	size_t np = 0;
	int r = ports_of(hc, NULL, &ports, &np, err);
	if (r < 0 || (r = mac_check(json_string_value(json_object_get(cfg, "MacAddress")), err)) < 0 || !name)
		return r;
	/* 400, not 404: docker clients take a 404 from create for a missing image and pull */
	_cleanup_(net_network_freep) struct net_network *net = NULL;
	if ((r = net_network_get(n->net, name, &net, err)) < 0)
		return r == -ENOENT ? -EINVAL : r;
	const char *key;
	json_t *ep;
	json_object_foreach (json_object_get(nc, "EndpointsConfig"), key, ep) {
		_cleanup_(net_network_freep) struct net_network *other = NULL;
		const char *nn = mode_network(key);
		if (!nn)
			continue;
		if ((r = net_network_get(n->net, nn, &other, err)) < 0)
			return r == -ENOENT ? -EINVAL : r;
		const char *ip =
		    json_string_value(json_object_get(json_object_get(ep, "IPAMConfig"), "IPv4Address"));
		if (ip && *ip && streq(other->name, NET_DEFAULT_NETWORK))
			return berth_error_msg(err, EINVAL,
					       "user specified IP address is supported on user defined "
					       "networks only");
		if ((r = mac_check(json_string_value(json_object_get(ep, "MacAddress")), err)) < 0)
			return r;
		const char *ip6 =
		    json_string_value(json_object_get(json_object_get(ep, "IPAMConfig"), "IPv6Address"));
		if (ip6 && *ip6 && !other->ipv6)
			return berth_error_msg(
			    err, EINVAL,
			    "user specified IPv6 address is supported on user defined IPv6 "
			    "networks only ('%s' is not)",
			    other->name);
	}
	return 0;
}

/* A network's name for one given by name, id or id prefix (caller frees). */
static char *canonical_name(struct netops *n, const char *name)
{
	_cleanup_(net_network_freep) struct net_network *net = NULL;
	return xstrdup(net_network_get(n->net, name, &net, NULL) == 0 ? net->name : name);
}

int host_netops_create_commit(struct netops *n, const char *cid, const json_t *cfg, const json_t *hc,
			      const json_t *nc, struct berth_error **err)
{
	/* docker applies Config.MacAddress to the endpoint of the network mode's network */
	const char *mac = json_string_value(json_object_get(cfg, "MacAddress"));
	const char *name = mode_network(json_string_value(json_object_get(hc, "NetworkMode")));
	/*
	 * none, host, container:X join no network: no record reads as an empty list
	 * (networks_of), so none is written (two fsyncs off every such create).
	 */
	if (!name)
		return 0;
	_cleanup_json_ json_t *rec = json_pack("{s:[]}", "Networks");
	json_t *list = json_object_get(rec, "Networks");
	_cleanup_free_ char *first = name ? canonical_name(n, name) : NULL;
	if (name)
		json_array_append_new(list,
				      host_netops_endpoint_entry(first, endpoint_config(nc, name), mac));
	const char *key;
	json_t *ep;
	json_object_foreach (json_object_get(nc, "EndpointsConfig"), key, ep) {
		_cleanup_free_ char *nn = mode_network(key) ? canonical_name(n, mode_network(key)) : NULL;
		if (nn && name && !streq(nn, first))
			json_array_append_new(list, host_netops_endpoint_entry(nn, ep, NULL));
	}
	int r = host_netops_record_save(n, cid, rec, err);
	return r < 0 ? berth_error_wrap(err, r, "record the networks of container %s", cid) : 0;
}

/* ---- the engine's vtable ---- */

/* The networks a container joins: its record, or (no record) its network mode alone. */
static json_t *networks_of(struct netops *n, const char *cid, const char *mode)
{
	json_t *rec = host_netops_record_load(n, cid);
	json_t *list = json_incref(json_object_get(rec, "Networks"));
	if (json_is_true(json_object_get(rec, "Missing")) && mode_network(mode))
		json_array_append_new(list, host_netops_endpoint_entry(mode_network(mode), NULL, NULL));
	json_decref(rec);
	return list;
}

/* Point the engine's /etc file (path) at net/'s (target), atomically. */
static int link_file(const char *target, const char *path, struct berth_error **err)
{
	if (!target || !path)
		return 0;
	_cleanup_free_ char *tmp = xasprintf("%s.netops", path);
	(void)unlink(tmp);
	if (symlink(target, tmp) < 0 || rename(tmp, path) < 0) {
		int r = berth_error_errno(err, "link '%s' to '%s'", path, target);
		(void)unlink(tmp);
		return r;
	}
	return 0;
}

struct attach_args {
	struct net_endpoint_opts *eps;
	const char ***aliases;
	size_t n_eps;
	struct net_port *ports;
	size_t n_ports;
	const char **dns, **search, **options, **hosts;
};

static void attach_args_done(struct attach_args *a)
{
	for (size_t i = 0; i < a->n_eps; i++)
		free(a->aliases[i]);
	free(a->aliases);
	free(a->eps);
	free(a->ports);
	free(a->dns);
	free(a->search);
	free(a->options);
	free(a->hosts);
}

static int attach_args_of(const json_t *nets, const json_t *hc, const json_t *cfg, struct attach_args *a,
			  struct berth_error **err)
{
	size_t i;
	json_t *ep;
	a->n_eps = json_array_size(nets);
	a->eps = xcalloc(a->n_eps + 1, sizeof(*a->eps));
	a->aliases = xcalloc(a->n_eps + 1, sizeof(*a->aliases));
	json_array_foreach (nets, i, ep) {
		a->aliases[i] = strv_of(json_object_get(ep, "Aliases"));
		a->eps[i] = (struct net_endpoint_opts){
			.network = json_string_value(json_object_get(ep, "Name")),
			.aliases = a->aliases[i],
			.ipv4 = json_string_value(json_object_get(ep, "IPv4Address")),
			.mac = entry_mac(ep),
			.ipv6 = json_string_value(json_object_get(ep, "IPv6Address")),
		};
	}
	a->dns = strv_of(json_object_get(hc, "Dns"));
	a->search = strv_of(json_object_get(hc, "DnsSearch"));
	a->options = strv_of(json_object_get(hc, "DnsOptions"));
	a->hosts = strv_of(json_object_get(hc, "ExtraHosts"));
	return ports_of(hc, cfg, &a->ports, &a->n_ports, err);
}

/* dockerd's network events for a container's start (connect) and exit (disconnect) on each of
 * its networks: Actor the network's ID; its name and driver, the container's ID. */
static void endpoint_events(struct netops *n, const struct net_container *c, const char *action)
{
	/* Before host_netops_set_engine: the engine's recovery inside engine_open (e->lock held)
	 * records exits that happened while no daemon ran; those log no network event. */
	if (!n->engine)
		return;
	for (size_t i = 0; c && i < c->n_endpoints; i++) {
		const struct net_endpoint *ep = &c->endpoints[i];
		_cleanup_(net_network_freep) struct net_network *nw = NULL;
		(void)net_network_get(n->net, ep->network_id, &nw, NULL);
		_cleanup_json_ json_t *attrs =
		    json_pack("{s:s,s:s,s:s}", "container", c->id, "name", nw ? nw->name : ep->network_name,
			      "type", nw && nw->driver ? nw->driver : "bridge");
		engine_event_log(n->engine, "network", action, ep->network_id, attrs);
	}
}

static int op_attach(void *ctx, const char *cid, const char *mode, const json_t *hc, char **ret_netns,
		     struct berth_error **err)
{
	struct netops *n = ctx;
	_cleanup_container_info_ struct engine_container_info *i = NULL;
	int r = engine_container_inspect(n->engine, cid, &i, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *nets = networks_of(n, cid, mode);
	struct attach_args a = { 0 };
	if ((r = attach_args_of(nets, hc, i->config, &a, err)) < 0) {
		attach_args_done(&a);
		return r;
	}
	const char *hostname = json_string_value(json_object_get(i->config, "Hostname"));
	struct net_container_opts o = {
		.container_id = cid,
		.name = i->name,
		.hostname = hostname && *hostname ? hostname : NULL,
		.domainname = json_string_value(json_object_get(i->config, "Domainname")),
		.mode = a.n_eps ? NET_MODE_BRIDGE : NET_MODE_NONE,
		.endpoints = a.eps,
		.n_endpoints = a.n_eps,
		.ports = a.ports,
		.n_ports = a.n_ports,
		.dns = a.dns,
		.dns_search = a.search,
		.dns_options = a.options,
		.extra_hosts = a.hosts,
	};
	/* State left by a start that failed later, or by a crash: start afresh (same addresses). */
	(void)net_container_stop(n->net, cid, NULL);
	_cleanup_(net_container_freep) struct net_container *c = NULL;
	r = net_container_prepare(n->net, &o, &c, err);
	attach_args_done(&a);
	if (r < 0)
		return r;
	if ((r = link_file(c->hosts_path, i->hosts_path, err)) < 0 ||
	    (r = link_file(c->resolv_conf_path, i->resolv_conf_path, err)) < 0 ||
	    (r = link_file(c->hostname_path, i->hostname_path, err)) < 0) {
		(void)net_container_stop(n->net, cid, NULL);
		return r;
	}
	*ret_netns = c->netns_path ? xstrdup(c->netns_path) : NULL;
	endpoint_events(n, c, "connect");
	return 0;
}

/* Stopped: its addresses stay its own until it is removed (docker keeps them across restarts). */
static int op_detach(void *ctx, const char *cid, const char *mode, struct berth_error **err)
{
	struct netops *n = ctx;
	/* its record goes with the stop: one that is there was connected (no event after a start
	 * that failed before its network was ready) */
	_cleanup_(net_container_freep) struct net_container *c = NULL;
	if (net_container_get(n->net, cid, &c, NULL) < 0)
		c = NULL;
	int r = net_container_stop(n->net, cid, err);
	endpoint_events(n, c, "disconnect");
	return r;
}

static int op_release(void *ctx, const char *cid, const char *mode, struct berth_error **err)
{
	struct netops *n = ctx;
	return net_container_teardown(n->net, cid, err);
}

const struct engine_network_ops host_netops_engine_ops = { .attach = op_attach,
							   .detach = op_detach,
							   .release = op_release };

static bool is_live(const struct engine_container_info *i)
{
	return i->state == ENGINE_RUNNING || i->state == ENGINE_PAUSED || i->state == ENGINE_RESTARTING;
}

/* Delete the records of containers the engine does not know. */
static void gc_records(struct netops *n, struct engine_container_info **list, size_t cnt)
{
	_cleanup_closedir_ DIR *d = opendir(n->dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!endswith(de->d_name, ".json"))
			continue;
		bool known = false;
		for (size_t k = 0; k < cnt && !known; k++)
			known = strlen(list[k]->id) + 5 == strlen(de->d_name) &&
				!strncmp(list[k]->id, de->d_name, strlen(list[k]->id));
		if (!known)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
}

int host_netops_gc(struct netops *n, struct berth_error **err)
{
	struct engine_container_info **list = NULL;
	size_t cnt = 0;
	int r = engine_container_list(n->engine, true, &list, &cnt, err);
	if (r < 0)
		return r;
	const char **keep = xcalloc(cnt + 1, sizeof(char *)), **reserve = xcalloc(cnt + 1, sizeof(char *));
	size_t k = 0, s = 0;
	for (size_t i = 0; i < cnt; i++)
		if (is_live(list[i]))
			keep[k++] = list[i]->id;
		else
			reserve[s++] = list[i]->id; /* stopped: keeps its addresses until removed */
	char **removed = NULL;
	r = net_gc(n->net, keep, reserve, &removed, err);
	free(reserve);
	for (size_t i = 0; removed && removed[i]; i++)
		log_fields(LOG_LEVEL_INFO, "removed stale network state", "container", removed[i], NULL);
	strv_free(removed);
	free(keep);
	gc_records(n, list, cnt);
	engine_container_info_list_free(list, cnt);
	return r;
}

/* ---- container inspect ---- */

static char **exposed_of(const struct engine_container_info *i)
{
	json_t *exp = json_object_get(i->config, "ExposedPorts");
	char **v = xcalloc(json_object_size(exp) + 1, sizeof(char *));
	size_t k = 0;
	const char *key;
	json_t *x;
	json_object_foreach (exp, key, x)
		v[k++] = xstrdup(key);
	return v;
}

static void endpoint_config_view(json_t *e, const json_t *ep, const char *cid, bool user);

/* Docker's Networks entry of a container that is not running: its configuration only. */
static json_t *configured_endpoint(const json_t *ep)
{
	const char *mac = json_string_value(json_object_get(ep, "MacAddress"));
	json_t *e = json_pack("{s:n,s:n,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s,s:n}", "IPAMConfig", "Links",
			      "NetworkID", "", "EndpointID", "", "Gateway", "", "IPAddress", "",
			      "IPPrefixLen", 0, "IPv6Gateway", "", "GlobalIPv6Address", "",
			      "GlobalIPv6PrefixLen", 0, "MacAddress", mac ? mac : "", "DriverOpts");
	endpoint_config_view(e, ep, NULL, false);
	return e;
}

/*
 * A running container's Networks entry e (from net/) with what its configuration says as docker
 * shows it: IPAMConfig, Links, DriverOpts as given, and Aliases the given ones plus the short id on
 * user networks (dockerd 20.10; net/'s own alias list also has the name, for name resolution).
 */
static void endpoint_config_view(json_t *e, const json_t *ep, const char *cid, bool user)
{
	json_t *aliases = json_deep_copy(json_object_get(ep, "Aliases"));
	if (user) {
		if (!json_is_array(aliases)) {
			json_decref(aliases);
			aliases = json_array();
		}
		bool has = false;
		size_t k;
		json_t *a;
		json_array_foreach (aliases, k, a)
			has = has ||
			      (strlen(json_string_value(a)) == 12 && !strncmp(json_string_value(a), cid, 12));
		if (!has)
			json_array_append_new(aliases, json_stringn(cid, 12));
	}
	json_object_set_new(e, "Aliases", aliases ? aliases : json_null());
	const char *keys[] = { "IPAMConfig", "Links", "DriverOpts", NULL };
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(ep, keys[i]);
		json_object_set(e, keys[i], v ? v : json_null());
	}
	/* records written before IPAMConfig was kept */
	const char *ip = json_string_value(json_object_get(ep, "IPv4Address"));
	if (!json_object_get(ep, "IPAMConfig") && ip)
		json_object_set_new(e, "IPAMConfig", json_pack("{s:s}", "IPv4Address", ip));
}

json_t *host_netops_container_json(struct netops *n, const struct engine_container_info *i, json_t *j)
{
	if (!n || !j || !host_netops_is_running_mode(i))
		return j;
	char **exposed = exposed_of(i);
	_cleanup_(net_container_freep) struct net_container *c = NULL;
	json_t *ns;
	if (is_live(i) && net_container_get(n->net, i->id, &c, NULL) == 0) {
		ns = net_api_network_settings(c, (const char *const *)exposed);
		_cleanup_json_ json_t *rec = host_netops_record_load(n, i->id);
		json_t *nets = json_object_get(ns, "Networks");
		size_t k;
		json_t *ep;
		json_array_foreach (json_object_get(rec, "Networks"), k, ep) {
			const char *name = json_string_value(json_object_get(ep, "Name"));
			json_t *e = name ? json_object_get(nets, name) : NULL;
			if (e)
				endpoint_config_view(e, ep, i->id, !streq(name, NET_DEFAULT_NETWORK));
		}
	} else {
		ns = net_api_network_settings(NULL, (const char *const *)exposed);
		json_t *nets = json_object_get(ns, "Networks");
		_cleanup_json_ json_t *list =
		    networks_of(n, i->id, json_string_value(json_object_get(i->hostconfig, "NetworkMode")));
		size_t k;
		json_t *ep;
		json_array_foreach (list, k, ep)
			json_object_set_new(nets, json_string_value(json_object_get(ep, "Name")),
					    configured_endpoint(ep));
	}
	strv_free(exposed);
	json_object_set_new(j, "NetworkSettings", ns);
	return j;
}

json_t *host_netops_container_summary(struct netops *n, const struct engine_container_info *i, json_t *j)
{
	if (!n || !j || !host_netops_is_running_mode(i))
		return j;
	_cleanup_json_ json_t *full = host_netops_container_json(n, i, json_object());
	json_t *ns = json_object_get(full, "NetworkSettings");
	json_object_set_new(j, "NetworkSettings",
			    json_pack("{s:O}", "Networks", json_object_get(ns, "Networks")));
	json_t *ports = json_array();
	const char *key;
	json_t *list;
	json_object_foreach (json_object_get(ns, "Ports"), key, list) {
		unsigned port = 0;
		char proto[8] = "tcp";
		if (sscanf(key, "%u/%7s", &port, proto) < 1)
			continue;
		size_t k;
		json_t *b;
		if (!json_array_size(list))
			json_array_append_new(ports,
					      json_pack("{s:i,s:s}", "PrivatePort", port, "Type", proto));
		json_array_foreach (list, k, b) {
			const char *ip = json_string_value(json_object_get(b, "HostIp"));
			const char *hp = json_string_value(json_object_get(b, "HostPort"));
			int64_t pub = 0;
			if (!hp || util_parse_int64(hp, &pub) < 0)
				pub = 0;
			json_array_append_new(ports,
					      json_pack("{s:s,s:i,s:I,s:s}", "IP", ip && *ip ? ip : "0.0.0.0",
							"PrivatePort", port, "PublicPort", (json_int_t)pub,
							"Type", proto));
		}
	}
	json_object_set_new(j, "Ports", ports);
	return j;
}
