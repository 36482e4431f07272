/*
 * endpoint.c - one container on one network: building its CNI call, running
 * ADD/DEL with the record kept current, host port allocation, and the files
 * (hosts, resolv.conf, hostname) derived from all records.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "net/internal.h"
#include "net/record.h"

struct cni_runtime net_ep_runtime(const json_t *rec, const json_t *ep)
{
	const char *ns = net_rec_str(rec, "netns");
	return (struct cni_runtime){
		.container_id = net_rec_str(rec, "id"),
		.netns = ns ? ns : "",
		.ifname = net_rec_str(ep, "ifname"),
		.args = net_rec_str(ep, "cni_args"),
		.capability_args = json_object_get(ep, "capability_args"),
	};
}

struct cni_exec net_ep_cni_exec(const struct net_ctx *ctx, const json_t *ep)
{
	struct cni_exec x = net_cni_exec(ctx);
	if (json_is_true(json_object_get(ep, "ipv6")))
		x.path_prepend = NULL;
	return x;
}

int net_ep_add(struct net_ctx *ctx, json_t *rec, json_t *ep, bool concurrent, struct berth_error **err)
{
	json_object_set_new(ep, "state", json_string("adding"));
	int r = net_rec_save(ctx, rec, err);
	if (r < 0)
		return r;
	struct cni_exec x = net_ep_cni_exec(ctx, ep);
	struct cni_runtime rt = net_ep_runtime(rec, ep);
	json_t *res = NULL;
	/* a kept address: its placeholder lease goes so that host-local can hand it out again */
	if (net_rec_str(ep, "ipv4_reserved"))
		net_reserve_take(ctx, rt.container_id, ep);
	if (concurrent) {
		_cleanup_free_ char *d = net_rec_dir(ctx, rt.container_id);
		struct berth_error *e = NULL;
		net_unlock(ctx);
		r = net_cni_list_add(&x, json_object_get(ep, "conflist"), &rt, &res, &e);
		net_relock(ctx);
		if (access(d, F_OK) != 0) { /* torn down meanwhile: undo what this ADD made */
			berth_error_free(e);
			e = NULL;
			if (r >= 0) {
				json_object_set_new(ep, "result", res);
				(void)net_ep_del(ctx, rec, ep, &e);
				berth_error_free(e);
			}
			return berth_error_msg(err, ECANCELED,
					       "network of container '%s' torn down while it was set up",
					       rt.container_id);
		}
		if (r < 0) {
			/* the plugins' shared state (portmap's and firewall's top-level iptables chains) is
			 * made on first use, and two first uses at once fail ("chain exists"): once more,
			 * alone (the failed ADD undid itself) */
			log_fields(LOG_LEVEL_DEBUG, "CNI ADD failed beside another; retried under the lock",
				   "error", e ? e->msg : "", NULL);
			r = net_cni_list_add(&x, json_object_get(ep, "conflist"), &rt, &res, err);
		}
		berth_error_free(e);
	} else {
		r = net_cni_list_add(&x, json_object_get(ep, "conflist"), &rt, &res, err);
	}
	if (r < 0) {
		(void)net_reserve_hold(ctx, rt.container_id, NULL); /* still kept: block it again */
		return berth_error_wrap(err, r, "attach to network '%s'", net_rec_str(ep, "network_name"));
	}
	uint32_t a;
	int prefix;
	char gw[IP4_STR_MAX], mac[18];
	r = net_cni_result_ipv4(res, &a, &prefix, gw, mac, err);
	json_object_set_new(ep, "result", res);
	if (r < 0) {
		/* the chain succeeded but gave us nothing usable: undo it now, callers only forget the
		 * endpoint */
		struct berth_error *e = NULL;
		net_ep_del(ctx, rec, ep, &e);
		berth_error_free(e);
		(void)net_reserve_hold(ctx, rt.container_id, NULL);
		json_object_del(ep, "result");
		json_object_set_new(ep, "state", json_string("new"));
		return berth_error_wrap(err, r, "attach to network '%s'", net_rec_str(ep, "network_name"));
	}
	json_object_set_new(ep, "state", json_string("ready"));
	return net_rec_save(ctx, rec, err);
}

int net_ep_del(struct net_ctx *ctx, const json_t *rec, const json_t *ep, struct berth_error **err)
{
	struct cni_exec x = net_ep_cni_exec(ctx, ep);
	struct cni_runtime rt = net_ep_runtime(rec, ep);
	/* a netns file that is gone or unmounted (crash, reboot, someone's umount) means the
	 * namespace and its veth end died with it: DEL without it, for IPAM and iptables */
	if (rt.netns[0] && !net_netns_is_mounted(rt.netns))
		rt.netns = "";
	int r =
	    net_cni_list_del(&x, json_object_get(ep, "conflist"), &rt, json_object_get(ep, "result"), err);
	if (r < 0)
		return berth_error_wrap(err, r, "detach from network '%s'", net_rec_str(ep, "network_name"));
	return 0;
}

static char *free_ifname(const json_t *rec)
{
	for (int i = 0; i < NET_MAX_ENDPOINTS; i++) {
		_cleanup_free_ char *name = xasprintf("eth%d", i);
		bool used = false;
		size_t k;
		json_t *ep;
		json_array_foreach (json_object_get(rec, "endpoints"), k, ep)
			used = used || streq_ptr(net_rec_str(ep, "ifname"), name);
		if (!used)
			return TAKE_PTR(name);
	}
	return NULL;
}

/* ip is inside n's subnet, not its gateway/network/broadcast, not used (or kept) by another container. */
static int ip_available(struct net_ctx *ctx, const char *self_id, const struct net_network *n, const char *ip,
			const json_t *all_recs, struct berth_error **err)
{
	uint32_t a, gw;
	struct ip4net sn;
	int r = net_ip4_parse(ip, "IP address", &a, err);
	if (r < 0)
		return r;
	if (net_ip4net_parse(n->subnet, "subnet", false, &sn, NULL, err) < 0 ||
	    net_ip4_parse(n->gateway, "gateway", &gw, err) < 0)
		return -EINVAL;
	if (!net_ip4net_contains(&sn, a) || a == sn.addr || a == (sn.addr | ~ip4_mask(sn.prefix)) || a == gw)
		return berth_error_msg(err, EADDRNOTAVAIL,
				       "address '%s' is not available in network '%s' (%s)", ip, n->name,
				       n->subnet);
	size_t i, k;
	json_t *rec, *ep;
	json_array_foreach (all_recs, i, rec)
		json_array_foreach (json_object_get(rec, "endpoints"), k, ep) {
			if (!streq_ptr(net_rec_str(ep, "network_id"), n->id))
				continue;
			uint32_t b;
			int p;
			char g[IP4_STR_MAX], m[18];
			json_t *res = json_object_get(ep, "result");
			if (streq_ptr(net_rec_str(rec, "id"), self_id))
				continue;
			if (streq_ptr(net_rec_str(ep, "ipv4_request"), ip) ||
			    (res && net_cni_result_ipv4(res, &b, &p, g, m, NULL) == 0 && b == a))
				return berth_error_msg(err, EADDRNOTAVAIL,
						       "address '%s' is already in use in network '%s'", ip,
						       n->name);
		}
	_cleanup_free_ char *ipam_name = net_network_ipam_name(n);
	if (net_reserve_lease_taken(ctx, ipam_name, ip, self_id))
		return berth_error_msg(err, EADDRNOTAVAIL, "address '%s' is already in use in network '%s'",
				       ip, n->name);
	return 0;
}

/* --ip6: a dual-stack user network, inside its IPv6 subnet, not its gateway, not used by another. */
static int static_ip6_check(struct net_ctx *ctx, const char *self_id, const struct net_network *n,
			    const char *ip, const json_t *all_recs, char canon[IP6_STR_MAX],
			    struct berth_error **err)
{
	struct ip6net sn;
	uint8_t a[16], gw[16];
	if (!net_network_is_user(n) || !n->ipv6)
		return berth_error_msg(
		    err, EINVAL,
		    "user specified IPv6 address is supported on user defined IPv6 networks only");
	int r = net_ip6_parse(ip, "IPv6 address", a, err);
	if (r < 0 || (r = net_ip6net_parse(n->subnet6, "subnet", &sn, err)) < 0 ||
	    (r = net_ip6_parse(n->gateway6, "gateway", gw, err)) < 0)
		return r;
	if (!net_ip6net_contains(&sn, a) || !memcmp(a, sn.addr, 16) || !memcmp(a, gw, 16))
		return berth_error_msg(err, EADDRNOTAVAIL,
				       "address '%s' is not available in network '%s' (%s)", ip, n->name,
				       n->subnet6);
	net_ip6_format(a, canon);
	size_t i, k;
	json_t *rec, *ep;
	json_array_foreach (all_recs, i, rec)
		json_array_foreach (json_object_get(rec, "endpoints"), k, ep) {
			char other[IP6_STR_MAX] = "", gw6[IP6_STR_MAX];
			int p;
			json_t *res = json_object_get(ep, "result");
			if (streq_ptr(net_rec_str(rec, "id"), self_id) ||
			    !streq_ptr(net_rec_str(ep, "network_id"), n->id))
				continue;
			if (res)
				(void)net_cni_result_ipv6(res, other, &p, gw6);
			if (streq(other, canon) || streq_ptr(net_rec_str(ep, "ipv6_request"), canon))
				return berth_error_msg(err, EADDRNOTAVAIL,
						       "address '%s' is already in use in network '%s'", ip,
						       n->name);
		}
	_cleanup_free_ char *ipam_name = net_network_ipam_name(n);
	if (net_reserve_lease_taken(ctx, ipam_name, canon, self_id)) /* kept by a stopped container */
		return berth_error_msg(err, EADDRNOTAVAIL, "address '%s' is already in use in network '%s'",
				       ip, n->name);
	return 0;
}

/* --ip: user networks only, and available. */
static int static_ip_check(struct net_ctx *ctx, const char *self_id, const struct net_network *n,
			   const char *ip, const json_t *all_recs, struct berth_error **err)
{
	if (!net_network_is_user(n))
		return berth_error_msg(
		    err, EINVAL, "user specified IP address is supported on user defined networks only");
	return ip_available(ctx, self_id, n, ip, all_recs, err);
}

static json_t *aliases_json(const json_t *rec, const struct net_network *n, const struct net_endpoint_opts *o)
{
	json_t *a = json_array();
	if (!net_network_is_user(n))
		return a; /* docker: no name resolution on the default bridge */
	const char *name = net_rec_str(rec, "name"), *id = net_rec_str(rec, "id");
	if (name)
		json_array_append_new(a, json_string(name));
	for (size_t i = 0; o && o->aliases && o->aliases[i]; i++)
		json_array_append_new(a, json_string(o->aliases[i]));
	_cleanup_free_ char *short_id = xstrndup(id, 12);
	json_array_append_new(a, json_string(short_id));
	return a;
}

int net_ep_new(struct net_ctx *ctx, json_t *rec, const struct net_network *n,
	       const struct net_endpoint_opts *o, bool with_ports, json_t *all_recs, json_t **ret,
	       struct berth_error **err)
{
	if (!n->bridge)
		return berth_error_msg(err, EINVAL,
				       "network '%s' (driver '%s') cannot be joined by endpoints", n->name,
				       n->driver);
	if (net_rec_on_network(rec, n->id))
		return berth_error_msg(err, EEXIST, "container is already attached to network '%s'", n->name);
	for (size_t i = 0; o && o->aliases && o->aliases[i]; i++)
		if (!net_hostname_valid(o->aliases[i]))
			return berth_error_msg(err, EINVAL, "invalid alias '%s'", o->aliases[i]);
	if (o && o->mac && !net_mac_valid(o->mac))
		return berth_error_msg(err, EINVAL, "invalid MAC address '%s'", o->mac);
	_cleanup_free_ char *ifname = free_ifname(rec);
	if (!ifname)
		return berth_error_msg(err, E2BIG, "too many networks for one container");
	int r;
	const char *id = net_rec_str(rec, "id");
	const char *static_ip = o && o->ipv4 ? o->ipv4 : NULL;
	if (static_ip && (r = static_ip_check(ctx, id, n, static_ip, all_recs, err)) < 0)
		return r;
	char ip6[IP6_STR_MAX] = "";
	if (o && o->ipv6 && (r = static_ip6_check(ctx, id, n, o->ipv6, all_recs, ip6, err)) < 0)
		return r;
	/* the address (and MAC) this container had on n before it stopped, if it still may */
	json_auto_t *res = net_reserve_load(ctx, id);
	const json_t *kept = net_reserve_find(res, n);
	if (kept && static_ip && !streq(net_rec_str(kept, "ipv4"), static_ip)) {
		/* a new --ip replaces what it had */
		if ((r = net_reserve_drop(ctx, id, n->id, err)) < 0)
			return r;
		kept = NULL;
	}
	if (kept && !static_ip && ip_available(ctx, id, n, net_rec_str(kept, "ipv4"), all_recs, NULL) < 0)
		kept = NULL; /* no longer available here (e.g. the subnet changed) */
	const char *want = static_ip ? static_ip : kept ? net_rec_str(kept, "ipv4") : NULL;
	/* its IPv6 address too, unless --ip6 says otherwise or someone has it now */
	char kept6[IP6_STR_MAX] = "";
	if (kept && !ip6[0] && net_rec_str(kept, "ipv6") &&
	    static_ip6_check(ctx, id, n, net_rec_str(kept, "ipv6"), all_recs, kept6, NULL) == 0)
		snprintf(ip6, sizeof(ip6), "%s", kept6);
	else
		kept6[0] = '\0';
	_cleanup_free_ char *epid = util_random_hex(32);
	json_auto_t *ep =
	    json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s}", "network_id", n->id, "network_name", n->name,
		      "endpoint_id", epid, "ifname", ifname, "aliases", aliases_json(rec, n, o), "conflist",
		      net_network_conflist(ctx, n, with_ports, want != NULL, ip6[0] != '\0'), "state", "new");
	json_object_set_new(ep, "user", json_boolean(net_network_is_user(n)));
	if (n->ipv6)
		json_object_set_new(ep, "ipv6", json_true());
	json_t *caps = json_object();
	if (with_ports)
		json_object_set(caps, "portMappings", json_object_get(rec, "cni_ports"));
	json_object_set_new(ep, "capability_args", caps);
	if (static_ip)
		json_object_set_new(ep, "ipv4_request", json_string(static_ip));
	if (kept)
		json_object_set_new(ep, "ipv4_reserved", json_string(want));
	/* the placeholder of the kept IPv6 address goes at ADD, whichever address is asked for */
	if (kept && net_rec_str(kept, "ipv6"))
		json_object_set_new(ep, "ipv6_reserved", json_string(net_rec_str(kept, "ipv6")));
	/* a requested MAC wins over the one it had (docker applies --mac-address at every start) */
	const char *mac = o && o->mac ? o->mac : kept ? net_rec_str(kept, "mac") : NULL;
	if (ip6[0] && !kept6[0])
		json_object_set_new(ep, "ipv6_request", json_string(ip6));
	/* CNI_ARGS IP= takes one address: the IPv6 one goes in the plugin config's args.cni.ips,
	 * which the bridge plugin hands to host-local with the rest of its config */
	if (ip6[0])
		json_object_set_new(
		    json_array_get(json_object_get(json_object_get(ep, "conflist"), "plugins"), 0), "args",
		    json_pack("{s:{s:[s]}}", "cni", "ips", ip6));
	if (want || mac) {
		_cleanup_strbuf_ struct strbuf args = STRBUF_INIT;
		strbuf_addstr(&args, "IgnoreUnknown=1");
		if (want)
			strbuf_addf(&args, ";IP=%s", want);
		if (mac)
			strbuf_addf(&args, ";MAC=%s", mac);
		json_object_set_new(ep, "cni_args", json_string(args.buf));
	}
	*ret = TAKE_PTR(ep);
	return 0;
}

static bool ip_overlaps(const char *a, const char *b)
{
	bool any_a = !a || !*a || streq(a, "0.0.0.0") || streq(a, "::");
	bool any_b = !b || !*b || streq(b, "0.0.0.0") || streq(b, "::");
	return any_a || any_b || streq(a, b);
}

/* Is the port published by another container of ours? */
static bool port_taken_by_peer(const json_t *all_recs, const char *self_id, const char *ip, json_int_t port,
			       const char *proto)
{
	size_t i, k;
	json_t *rec, *p;
	json_array_foreach (all_recs, i, rec) {
		if (streq_ptr(net_rec_str(rec, "id"), self_id))
			continue;
		json_array_foreach (json_object_get(rec, "ports"), k, p)
			if (json_integer_value(json_object_get(p, "host_port")) == port &&
			    streq_ptr(net_rec_str(p, "proto"), proto) &&
			    ip_overlaps(net_rec_str(p, "host_ip"), ip))
				return true;
	}
	return false;
}

/* Bind ip:port (port 0: any) to test it is free here; returns the port bound, or -errno. */
static int port_try_bind(const char *ip, int port, const char *proto)
{
	bool v6 = ip && strchr(ip, ':');
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (ip && *ip && inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
			return -EINVAL;
		len = sizeof(*s4);
	}
	int type = streq(proto, "udp") ? SOCK_DGRAM : SOCK_STREAM;
	_cleanup_close_ int fd = socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	/* as the listener would: connections of a port forwarder that just stopped linger in
	 * TIME_WAIT on it (a restart of a [::1] publish) without the port being taken */
	int one = 1;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return negative_errno();
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return negative_errno();
	return ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

static int port_pick(const json_t *all_recs, const char *self_id, const char *ip, const char *proto,
		     struct berth_error **err)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		int p = port_try_bind(ip, 0, streq(proto, "sctp") ? "tcp" : proto);
		if (p < 0)
			return berth_error_set(err, p, "allocate a host port on '%s'",
					       ip && *ip ? ip : "0.0.0.0");
		if (!port_taken_by_peer(all_recs, self_id, ip, p, proto))
			return p;
	}
	return berth_error_msg(err, EADDRINUSE, "no free host port found");
}

int net_ports_allocate(json_t *ports, const json_t *all_recs, const char *self_id, struct berth_error **err)
{
	size_t i;
	json_t *p;
	json_array_foreach (ports, i, p) {
		const char *ip = net_rec_str(p, "host_ip"), *proto = net_rec_str(p, "proto");
		json_int_t port = json_integer_value(json_object_get(p, "host_port"));
		if (port == 0) {
			int q = port_pick(all_recs, self_id, ip, proto, err);
			if (q < 0)
				return q;
			json_object_set_new(p, "host_port", json_integer(q));
			continue;
		}
		const char *shown = ip && *ip ? ip : "0.0.0.0";
		if (port_taken_by_peer(all_recs, self_id, ip, port, proto))
			return berth_error_msg(err, EADDRINUSE,
					       "bind for %s:%lld/%s failed: port is already allocated", shown,
					       (long long)port, proto);
		for (size_t k = 0; k < i; k++) {
			json_t *o = json_array_get(ports, k);
			if (json_integer_value(json_object_get(o, "host_port")) == port &&
			    streq_ptr(net_rec_str(o, "proto"), proto) &&
			    ip_overlaps(net_rec_str(o, "host_ip"), ip))
				return berth_error_msg(err, EADDRINUSE,
						       "host port %s:%lld/%s is published twice", shown,
						       (long long)port, proto);
		}
		int b = streq(proto, "sctp") ? 0 : port_try_bind(ip, (int)port, proto);
		if (b == -EADDRINUSE)
			return berth_error_msg(err, EADDRINUSE,
					       "bind for %s:%lld/%s failed: port is already allocated", shown,
					       (long long)port, proto);
		if (b < 0 && b != -EADDRNOTAVAIL)
			return berth_error_set(err, b, "check host port %s:%lld/%s", shown, (long long)port,
					       proto);
		if (b == -EADDRNOTAVAIL)
			return berth_error_msg(err, EADDRNOTAVAIL, "host address '%s' is not configured here",
					       shown);
	}
	return 0;
}

/* ---- files ---- */

static void add_entry(struct strbuf *sb, const char *ip, const char *names)
{
	strbuf_addf(sb, "%s\t%s\n", ip, names);
}

static void ep_ip(const json_t *ep, char out[IP4_STR_MAX])
{
	uint32_t a;
	int p;
	char gw[IP4_STR_MAX], mac[18];
	out[0] = '\0';
	json_t *res = json_object_get(ep, "result");
	if (res && streq_ptr(net_rec_str(ep, "state"), "ready") &&
	    net_cni_result_ipv4(res, &a, &p, gw, mac, NULL) == 0)
		net_ip4_format(a, out);
}

/* The IPv6 address of a ready dual-stack endpoint, or "". */
static void ep_ip6(const json_t *ep, char out[IP6_STR_MAX])
{
	int p;
	char gw[IP6_STR_MAX];
	json_t *res = json_object_get(ep, "result");
	if (!res || !streq_ptr(net_rec_str(ep, "state"), "ready") ||
	    net_cni_result_ipv6(res, out, &p, gw) < 0)
		out[0] = '\0';
}

/* Own addresses, --add-host, then peers on the user networks we share. */
static void hosts_for(const json_t *rec, const json_t *all, struct strbuf *sb)
{
	net_hosts_render(sb, NULL, 0);
	size_t i, k, m;
	json_t *h, *ep, *o, *oep;
	json_array_foreach (json_object_get(rec, "extra_hosts"), i, h) {
		const char *ip = net_rec_str(h, "ip");
		if (streq(ip, "host-gateway")) {
			/* docker's special value: the host as seen from the container (first network's
			 * gateway) */
			json_t *res =
			    json_object_get(json_array_get(json_object_get(rec, "endpoints"), 0), "result");
			uint32_t a;
			int p;
			char gw[IP4_STR_MAX], mac[18];
			if (!res || net_cni_result_ipv4(res, &a, &p, gw, mac, NULL) < 0 || !gw[0])
				continue;
			add_entry(sb, gw, net_rec_str(h, "name"));
			continue;
		}
		add_entry(sb, ip, net_rec_str(h, "name"));
	}
	const char *hostname = net_rec_str(rec, "hostname"), *domain = net_rec_str(rec, "domainname");
	json_array_foreach (json_object_get(rec, "endpoints"), i, ep) {
		char ip[IP4_STR_MAX], ip6[IP6_STR_MAX];
		ep_ip(ep, ip);
		ep_ip6(ep, ip6);
		if (!ip[0])
			continue;
		_cleanup_free_ char *names =
		    domain && *domain ? xasprintf("%s.%s %s", hostname, domain, hostname) : xstrdup(hostname);
		add_entry(sb, ip, names);
		if (ip6[0])
			add_entry(sb, ip6, names);
	}
	json_array_foreach (json_object_get(rec, "endpoints"), i, ep) {
		json_array_foreach (all, k, o) {
			if (streq_ptr(net_rec_str(o, "id"), net_rec_str(rec, "id")))
				continue;
			json_array_foreach (json_object_get(o, "endpoints"), m, oep) {
				char ip[IP4_STR_MAX];
				if (!streq_ptr(net_rec_str(oep, "network_id"), net_rec_str(ep, "network_id")))
					continue;
				ep_ip(oep, ip);
				json_t *al = json_object_get(oep, "aliases");
				if (!ip[0] || json_array_size(al) == 0)
					continue;
				_cleanup_strbuf_ struct strbuf names = STRBUF_INIT;
				size_t z;
				json_t *a;
				json_array_foreach (al, z, a)
					strbuf_addf(&names, "%s%s", z ? " " : "", json_string_value(a));
				add_entry(sb, ip, names.buf);
				char ip6[IP6_STR_MAX];
				ep_ip6(oep, ip6);
				if (ip6[0])
					add_entry(sb, ip6, names.buf);
			}
		}
	}
}

int net_hosts_refresh_all(struct net_ctx *ctx, struct berth_error **err)
{
	json_auto_t *all = NULL;
	int r = net_rec_load_all(ctx, &all, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *rec;
	json_array_foreach (all, i, rec) {
		const char *mode = net_rec_str(rec, "mode");
		if (streq(mode, "container"))
			continue; /* uses the files of the container it joins */
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		hosts_for(rec, all, &sb);
		_cleanup_free_ char *p = net_rec_file(ctx, net_rec_str(rec, "id"), "hosts");
		if ((r = net_file_rewrite_in_place(p, sb.buf, sb.len, err)) < 0)
			return r;
	}
	return 0;
}

/* Gateway of the first user network endpoint: where net_dns answers for it. */
static void embedded_dns_server(const json_t *rec, char gw[IP4_STR_MAX])
{
	size_t i;
	json_t *ep;
	json_array_foreach (json_object_get(rec, "endpoints"), i, ep) {
		uint32_t a;
		int p;
		char mac[18];
		json_t *res = json_object_get(ep, "result");
		if (json_is_true(json_object_get(ep, "user")) && res &&
		    net_cni_result_ipv4(res, &a, &p, gw, mac, NULL) == 0 && gw[0])
			return;
		gw[0] = '\0';
	}
}

int net_rec_write_files(struct net_ctx *ctx, const json_t *rec, struct berth_error **err)
{
	const char *id = net_rec_str(rec, "id");
	_cleanup_strbuf_ struct strbuf host = STRBUF_INIT, sb = STRBUF_INIT;
	fs_read_file_at(AT_FDCWD, "/etc/resolv.conf", 64 << 10, &host, NULL);
	_cleanup_strv_ char **dns = NULL, **search = NULL, **opts = NULL;
	const char *const *d = net_rec_strv(rec, "dns", &dns);
	const char *const *s = net_rec_strv(rec, "dns_search", &search);
	const char *const *o = net_rec_strv(rec, "dns_options", &opts);
	char gw[IP4_STR_MAX] = "";
	const char *embedded[] = { gw, NULL };
	if (json_is_true(json_object_get(rec, "embedded_dns")) && !(d && d[0])) {
		embedded_dns_server(rec, gw);
		if (gw[0])
			d = embedded;
	}
	bool host_mode = streq(net_rec_str(rec, "mode"), "host");
	/* host network: the host's file as it is, loopback resolvers work there */
	if (host_mode && !(d && d[0]) && !(s && s[0]) && !(o && o[0]) && host.len)
		strbuf_add(&sb, host.buf, host.len);
	else
		net_resolv_conf_render(&sb, host.len ? host.buf : NULL, d, s, o);
	_cleanup_free_ char *rp = net_rec_file(ctx, id, "resolv.conf"),
			    *hp = net_rec_file(ctx, id, "hostname");
	int r = net_file_rewrite_in_place(rp, sb.buf, sb.len, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *hn = xasprintf("%s\n", net_rec_str(rec, "hostname"));
	if ((r = net_file_rewrite_in_place(hp, hn, strlen(hn), err)) < 0)
		return r;
	return net_hosts_refresh_all(ctx, err);
}
