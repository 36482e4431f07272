/*
 * api.c - Docker Engine API JSON shapes for networks and container
 * NetworkSettings, as jansson objects the engine serves unchanged. Field
 * names and null-vs-empty choices follow what dockerd 20.10 returns.
 */
#include <time.h>

#include "common/json.h"
#include "common/util.h"
#include "net/internal.h"
#include "net/record.h"

static json_t *network_containers(struct net_ctx *ctx, const struct net_network *n)
{
	json_t *out = json_object();
	if (net_lock(ctx, NULL) < 0)
		return out;
	json_auto_t *all = NULL;
	if (net_rec_load_all(ctx, &all, NULL) < 0) {
		net_unlock(ctx);
		return out;
	}
	net_unlock(ctx);
	size_t i;
	json_t *rec;
	json_array_foreach (all, i, rec) {
		_cleanup_(net_container_freep) struct net_container *c = net_rec_to_container(ctx, rec);
		for (size_t k = 0; k < c->n_endpoints; k++) {
			struct net_endpoint *e = &c->endpoints[k];
			if (!streq(e->network_id, n->id) || !e->ipv4)
				continue;
			_cleanup_free_ char *addr = xasprintf("%s/%d", e->ipv4, e->prefix_len);
			_cleanup_free_ char *addr6 =
			    e->ipv6 ? xasprintf("%s/%d", e->ipv6, e->prefix_len6) : xstrdup("");
			const char *name = net_rec_str(rec, "name");
			json_object_set_new(out, c->id,
					    json_pack("{s:s,s:s,s:s,s:s,s:s}", "Name", name ? name : c->id,
						      "EndpointID", e->endpoint_id, "MacAddress",
						      e->mac ? e->mac : "", "IPv4Address", addr,
						      "IPv6Address", addr6));
		}
	}
	return out;
}

json_t *net_api_network(struct net_ctx *ctx, const struct net_network *n, bool with_containers)
{
	json_t *config = json_array();
	if (n->subnet) {
		json_t *c = json_pack("{s:s,s:s}", "Subnet", n->subnet, "Gateway", n->gateway);
		if (n->ip_range)
			json_object_set_new(c, "IPRange", json_string(n->ip_range));
		if (n->aux && n->aux[0])
			json_object_set_new(c, "AuxiliaryAddresses", strv_kv_to_json(n->aux));
		json_array_append_new(config, c);
	}
	if (n->ipv6) {
		json_t *c = json_pack("{s:s,s:s}", "Subnet", n->subnet6, "Gateway", n->gateway6);
		if (n->ip_range6)
			json_object_set_new(c, "IPRange", json_string(n->ip_range6));
		json_array_append_new(config, c);
	}
	json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:{s:s,s:n,s:o},s:b,s:b,s:b,s:{s:s},s:b,s:o,s:o}",
			      "Name", n->name, "Id", n->id, "Created", n->created, "Scope", "local", "Driver",
			      n->driver, "EnableIPv6", n->ipv6, "IPAM", "Driver", "default", "Options",
			      "Config", config, "Internal", n->internal, "Attachable", 0, "Ingress", 0,
			      "ConfigFrom", "Network", "", "ConfigOnly", 0, "Options",
			      strv_kv_to_json(n->options), "Labels", strv_kv_to_json(n->labels));
	json_object_set_new(j, "Containers", with_containers ? network_containers(ctx, n) : json_object());
	return j;
}

static int labels_from(const json_t *body, const char *path, const char *key, const char ***ret,
		       struct berth_error **err)
{
	json_t *o = NULL;
	int r = json_get_object(body, path, key, 0, &o, err);
	if (r < 0)
		return r;
	size_t n = r ? json_object_size(o) : 0, i = 0;
	char **v = xcalloc(n + 1, sizeof(char *));
	const char *k;
	json_t *val;
	json_object_foreach (o, k, val) {
		if (!json_is_string(val)) {
			strv_free(v);
			return json_type_error(key, k, "string", val, err);
		}
		v[i++] = xasprintf("%s=%s", k, json_string_value(val));
	}
	*ret = (const char **)v;
	return 0;
}

/* One IPAM.Config entry: an IPv6 one (Subnet with ':') fills subnet6/gateway6, an IPv4 one the rest. */
static int ipam_entry(const json_t *c, size_t i, struct net_create_opts *o, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("IPAM.Config[%zu]", i);
	const char *subnet = NULL, *gw = NULL, *range = NULL;
	if (!json_is_object(c))
		return json_type_error("IPAM", path, "object", c, err);
	int r;
	if ((r = json_get_string(c, path, "Subnet", 0, &subnet, err)) < 0 ||
	    (r = json_get_string(c, path, "Gateway", 0, &gw, err)) < 0 ||
	    (r = json_get_string(c, path, "IPRange", 0, &range, err)) < 0)
		return r;
	if (subnet && strchr(subnet, ':')) {
		if (o->subnet6)
			return berth_error_msg(err, EOPNOTSUPP,
					       "only one IPv6 subnet per network is supported");
		if (json_object_size(json_object_get(c, "AuxiliaryAddresses")))
			return berth_error_msg(err, EOPNOTSUPP, "IPv6 auxiliary addresses are not supported");
		o->subnet6 = subnet;
		o->gateway6 = gw && *gw ? gw : NULL;
		o->ip_range6 = range && *range ? range : NULL;
		return 0;
	}
	if (o->subnet || o->aux)
		return berth_error_msg(err, EOPNOTSUPP, "only one IPv4 subnet per network is supported");
	o->subnet = subnet;
	o->gateway = gw;
	o->ip_range = range;
	return labels_from(c, path, "AuxiliaryAddresses", (const char ***)&o->aux, err);
}

static int ipam_from(const json_t *body, struct net_create_opts *o, struct berth_error **err)
{
	json_t *ipam, *config;
	int r = json_get_object(body, NULL, "IPAM", 0, &ipam, err);
	if (r <= 0)
		return r;
	if ((r = json_get_array(ipam, "IPAM", "Config", 0, &config, err)) <= 0)
		return r;
	if (json_array_size(config) > 2)
		return berth_error_msg(err, EOPNOTSUPP,
				       "at most one IPv4 and one IPv6 IPAM config per network");
	size_t i;
	json_t *c;
	json_array_foreach (config, i, c)
		if ((r = ipam_entry(c, i, o, err)) < 0) {
			strv_free((char **)o->aux);
			o->aux = NULL;
			return r;
		}
	return 0;
}

int net_api_parse_create(const json_t *body, struct net_create_opts *opts, struct berth_error **err)
{
	struct net_create_opts o = { 0 };
	int r;
	if (!json_is_object(body))
		return json_type_error(NULL, "body", "object", body, err);
	if ((r = json_get_string(body, NULL, "Name", JSON_REQUIRED, &o.name, err)) < 0 ||
	    (r = json_get_string(body, NULL, "Driver", 0, &o.driver, err)) < 0 ||
	    (r = json_get_bool(body, NULL, "Internal", 0, &o.internal, err)) < 0 ||
	    (r = json_get_bool(body, NULL, "EnableIPv6", 0, &o.ipv6, err)) < 0)
		return r;
	if ((r = ipam_from(body, &o, err)) < 0)
		return r;
	if ((r = labels_from(body, NULL, "Labels", (const char ***)&o.labels, err)) < 0) {
		strv_free((char **)o.aux);
		return r;
	}
	if ((r = labels_from(body, NULL, "Options", (const char ***)&o.options, err)) < 0) {
		strv_free((char **)o.labels);
		strv_free((char **)o.aux);
		return r;
	}
	*opts = o;
	return 0;
}

void net_api_create_opts_done(struct net_create_opts *opts)
{
	strv_free((char **)opts->labels);
	strv_free((char **)opts->options);
	strv_free((char **)opts->aux);
	opts->labels = opts->options = opts->aux = NULL;
}

json_t *net_api_create_response(const struct net_network *n)
{
	return json_pack("{s:s,s:s}", "Id", n->id, "Warning", "");
}

int net_api_parse_connect(const json_t *body, const char **ret_container, struct net_endpoint_opts *ep,
			  struct berth_error **err)
{
	const char *ctr;
	json_t *cfg = NULL, *ipam = NULL;
	struct net_endpoint_opts o = { 0 };
	int r;
	if (!json_is_object(body))
		return json_type_error(NULL, "body", "object", body, err);
	if ((r = json_get_string(body, NULL, "Container", JSON_REQUIRED, &ctr, err)) < 0 ||
	    (r = json_get_object(body, NULL, "EndpointConfig", 0, &cfg, err)) < 0)
		return r;
	if (cfg &&
	    ((r = json_get_string(cfg, "EndpointConfig", "MacAddress", 0, &o.mac, err)) < 0 ||
	     (r = json_get_object(cfg, "EndpointConfig", "IPAMConfig", 0, &ipam, err)) < 0 ||
	     (ipam &&
	      (r = json_get_string(ipam, "EndpointConfig.IPAMConfig", "IPv4Address", 0, &o.ipv4, err)) < 0) ||
	     (ipam &&
	      (r = json_get_string(ipam, "EndpointConfig.IPAMConfig", "IPv6Address", 0, &o.ipv6, err)) < 0)))
		return r;
	if (o.ipv6 && !*o.ipv6)
		o.ipv6 = NULL;
	if (o.ipv4 && !*o.ipv4)
		o.ipv4 = NULL;
	if (o.mac && !*o.mac)
		o.mac = NULL;
	if (o.mac && !net_mac_valid(o.mac))
		return berth_error_msg(err, EINVAL, "invalid MAC address '%s'", o.mac);
	char **aliases = NULL;
	if (cfg && (r = json_get_strv(cfg, "EndpointConfig", "Aliases", 0, &aliases, err)) < 0)
		return r;
	o.aliases = (const char *const *)aliases;
	*ret_container = ctr;
	*ep = o;
	return 0;
}

void net_api_endpoint_opts_done(struct net_endpoint_opts *ep)
{
	strv_free((char **)ep->aliases);
	ep->aliases = NULL;
}

json_t *net_api_prune_response(char *const *removed)
{
	json_t *a = json_array();
	for (size_t i = 0; removed && removed[i]; i++)
		json_array_append_new(a, json_string(removed[i]));
	return json_pack("{s:o}", "NetworksDeleted", a);
}

static json_t *api_ports(const struct net_container *c, const char *const *exposed)
{
	json_t *ports = json_object();
	for (size_t i = 0; exposed && exposed[i]; i++)
		json_object_set_new(ports, exposed[i], json_null());
	for (size_t i = 0; c && i < c->n_ports; i++) {
		_cleanup_free_ char *k = net_port_key(c->ports[i].container_port, c->ports[i].proto);
		_cleanup_free_ char *hp = xasprintf("%u", c->ports[i].host_port);
		json_t *list = json_object_get(ports, k);
		if (!json_is_array(list)) {
			list = json_array();
			json_object_set_new(ports, k, list);
		}
		json_array_append_new(list,
				      json_pack("{s:s,s:s}", "HostIp",
						c->ports[i].host_ip[0] ? c->ports[i].host_ip : "0.0.0.0",
						"HostPort", hp));
		/* published on every address: over IPv6 too when the (first) endpoint is dual-stack,
		 * listed as dockerd lists its [::] binding */
		if (!c->ports[i].host_ip[0] && c->n_endpoints && c->endpoints[0].ipv6)
			json_array_append_new(list, json_pack("{s:s,s:s}", "HostIp", "::", "HostPort", hp));
	}
	return ports;
}

static json_t *api_endpoint(const struct net_endpoint *e)
{
	json_t *al = json_array();
	for (size_t i = 0; e->aliases && e->aliases[i]; i++)
		json_array_append_new(al, json_string(e->aliases[i]));
	if (json_array_size(al) == 0) {
		json_decref(al);
		al = json_null();
	}
	return json_pack("{s:n,s:n,s:o,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s,s:n}", "IPAMConfig", "Links",
			 "Aliases", al, "NetworkID", e->network_id, "EndpointID", e->endpoint_id, "Gateway",
			 e->gateway ? e->gateway : "", "IPAddress", e->ipv4 ? e->ipv4 : "", "IPPrefixLen",
			 e->prefix_len, "IPv6Gateway", e->gateway6 ? e->gateway6 : "", "GlobalIPv6Address",
			 e->ipv6 ? e->ipv6 : "", "GlobalIPv6PrefixLen", e->ipv6 ? e->prefix_len6 : 0,
			 "MacAddress", e->mac ? e->mac : "", "DriverOpts");
}

json_t *net_api_network_settings(const struct net_container *c, const char *const *exposed)
{
	json_t *nets = json_object();
	const struct net_endpoint *primary = NULL;
	for (size_t i = 0; c && i < c->n_endpoints; i++) {
		json_object_set_new(nets, c->endpoints[i].network_name, api_endpoint(&c->endpoints[i]));
		if (streq(c->endpoints[i].network_name, NET_DEFAULT_NETWORK))
			primary = &c->endpoints[i];
	}
	if (c && c->mode == NET_MODE_HOST)
		json_object_set_new(nets, "host",
				    json_pack("{s:n,s:n,s:n,s:s,s:s}", "IPAMConfig", "Links", "Aliases",
					      "NetworkID", "", "EndpointID", ""));
	if (c && c->mode == NET_MODE_NONE)
		json_object_set_new(nets, "none",
				    json_pack("{s:n,s:n,s:n,s:s,s:s}", "IPAMConfig", "Links", "Aliases",
					      "NetworkID", "", "EndpointID", ""));
	json_t *j =
	    json_pack("{s:s,s:s,s:b,s:s,s:i,s:o,s:s,s:n,s:n}", "Bridge", "", "SandboxID", c ? c->id : "",
		      "HairpinMode", 0, "LinkLocalIPv6Address", "", "LinkLocalIPv6PrefixLen", 0, "Ports",
		      api_ports(c, exposed), "SandboxKey", c && c->netns_path ? c->netns_path : "",
		      "SecondaryIPAddresses", "SecondaryIPv6Addresses");
	json_object_set_new(j, "EndpointID", json_string(primary ? primary->endpoint_id : ""));
	json_object_set_new(j, "Gateway", json_string(primary && primary->gateway ? primary->gateway : ""));
	json_object_set_new(j, "GlobalIPv6Address",
			    json_string(primary && primary->ipv6 ? primary->ipv6 : ""));
	json_object_set_new(j, "GlobalIPv6PrefixLen",
			    json_integer(primary && primary->ipv6 ? primary->prefix_len6 : 0));
	json_object_set_new(j, "IPAddress", json_string(primary && primary->ipv4 ? primary->ipv4 : ""));
	json_object_set_new(j, "IPPrefixLen", json_integer(primary ? primary->prefix_len : 0));
	json_object_set_new(j, "IPv6Gateway",
			    json_string(primary && primary->gateway6 ? primary->gateway6 : ""));
	json_object_set_new(j, "MacAddress", json_string(primary && primary->mac ? primary->mac : ""));
	json_object_set_new(j, "Networks", nets);
	return j;
}

/* Values of one filter key as a NULL-terminated vector (borrowed strings in a new array). */
static int filter_values(const char *key, const json_t *v, const char ***ret, struct berth_error **err)
{
	size_t n = json_is_array(v) ? json_array_size(v) : json_is_object(v) ? json_object_size(v) : 0;
	if (!json_is_array(v) && !json_is_object(v))
		return berth_error_msg(err, EINVAL, "invalid filter '%s': expected a list of strings", key);
	const char **out = xcalloc(n + 1, sizeof(char *));
	size_t i = 0, k;
	json_t *e;
	const char *name;
	if (json_is_array(v)) {
		json_array_foreach (v, k, e) {
			if (!json_is_string(e)) {
				free(out);
				return berth_error_msg(
				    err, EINVAL, "invalid filter '%s': expected a list of strings", key);
			}
			out[i++] = json_string_value(e);
		}
	} else {
		json_object_foreach ((json_t *)v, name, e)
			out[i++] = name;
	}
	*ret = out;
	return 0;
}

static bool label_match(char *const *labels, const char *want)
{
	const char *eq = strchr(want, '=');
	size_t kl = eq ? (size_t)(eq - want) : strlen(want);
	for (size_t i = 0; labels && labels[i]; i++)
		if (strncmp(labels[i], want, kl) == 0 && labels[i][kl] == '=' &&
		    (!eq || streq(labels[i] + kl + 1, eq + 1)))
			return true;
	return false;
}

static int until_match(const struct net_network *n, const char *v, bool *ret, struct berth_error **err)
{
	struct timespec created, limit;
	int64_t x;
	if (util_parse_rfc3339(n->created, &created) < 0)
		return berth_error_msg(err, EINVAL, "network '%s' has an invalid creation time", n->name);
	if (util_parse_rfc3339(v, &limit) == 0) {
	} else if (util_parse_int64(v, &x) == 0) {
		limit = (struct timespec){ .tv_sec = (time_t)x };
	} else if (util_parse_duration_ns(v, &x) == 0) {
		clock_gettime(CLOCK_REALTIME, &limit);
		limit.tv_sec -= (time_t)(x / 1000000000);
	} else {
		return berth_error_msg(err, EINVAL, "invalid filter 'until': '%s' is not a time or duration",
				       v);
	}
	*ret = created.tv_sec < limit.tv_sec ||
	       (created.tv_sec == limit.tv_sec && created.tv_nsec < limit.tv_nsec);
	return 0;
}

/* One key: true when any value matches (docker ORs values of one key, ANDs keys). */
static int filter_key_match(struct net_ctx *ctx, const struct net_network *n, const char *key,
			    const char *const *vals, bool *ret, struct berth_error **err)
{
	bool any = false, builtin = !net_network_is_user(n);
	for (size_t i = 0; vals[i] && !any; i++) {
		const char *v = vals[i];
		if (streq(key, "name"))
			any = strstr(n->name, v) != NULL;
		else if (streq(key, "id"))
			any = startswith(n->id, v);
		else if (streq(key, "driver"))
			any = streq(n->driver, v);
		else if (streq(key, "label"))
			any = label_match(n->labels, v);
		else if (streq(key, "label!"))
			any = !label_match(n->labels, v);
		else if (streq(key, "scope"))
			any = streq(v, "local");
		else if (streq(key, "type")) {
			if (!streq(v, "custom") && !streq(v, "builtin"))
				return berth_error_msg(err, EINVAL, "invalid filter 'type': '%s'", v);
			any = streq(v, "builtin") == builtin;
		} else if (streq(key, "dangling")) {
			bool used = false, want = streq(v, "true") || streq(v, "1");
			if (!want && !streq(v, "false") && !streq(v, "0"))
				return berth_error_msg(err, EINVAL, "invalid filter 'dangling': '%s'", v);
			json_auto_t *c = network_containers(ctx, n);
			used = json_object_size(c) > 0;
			any = !builtin && used != want;
		} else if (streq(key, "until")) {
			int r = until_match(n, v, &any, err);
			if (r < 0)
				return r;
		} else
			return berth_error_msg(err, EINVAL, "invalid filter '%s'", key);
	}
	*ret = any;
	return 0;
}

int net_api_network_match(struct net_ctx *ctx, const struct net_network *n, const json_t *filters, bool *ret,
			  struct berth_error **err)
{
	if (filters && !json_is_object(filters))
		return berth_error_msg(err, EINVAL, "invalid filters: expected an object");
	const char *key;
	json_t *v;
	bool all = true;
	json_object_foreach ((json_t *)filters, key, v) {
		const char **vals = NULL;
		int r = filter_values(key, v, &vals, err);
		if (r < 0)
			return r;
		bool m = false;
		r = vals[0] ? filter_key_match(ctx, n, key, vals, &m, err) : 0;
		if (!vals[0])
			m = true;
		free(vals);
		if (r < 0)
			return r;
		all = all && m;
	}
	*ret = all;
	return 0;
}
