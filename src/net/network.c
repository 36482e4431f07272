/*
 * network.c - the context, the state lock and network CRUD. Networks are
 * small JSON files under <root>/net/networks/<id>.json; they are few, so
 * every operation simply loads them all under the lock (no index to corrupt).
 */
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strv.h"
#include "common/util.h"
#include "net/internal.h"

struct cni_exec net_cni_exec(const struct net_ctx *ctx)
{
	return (struct cni_exec){ .cni_path = ctx->cni_path,
				  .timeout_ms = ctx->timeout_ms,
				  .path_prepend = ctx->shim_dir };
}

int net_lock(struct net_ctx *ctx, struct berth_error **err)
{
	pthread_mutex_lock(&ctx->mutex);
	if (flock(ctx->lock_fd, LOCK_EX) < 0) {
		int r = berth_error_errno(err, "lock network state");
		pthread_mutex_unlock(&ctx->mutex);
		return r;
	}
	return 0;
}

void net_relock(struct net_ctx *ctx)
{
	pthread_mutex_lock(&ctx->mutex);
	while (flock(ctx->lock_fd, LOCK_EX) < 0 && errno == EINTR)
		;
}

void net_unlock(struct net_ctx *ctx)
{
	flock(ctx->lock_fd, LOCK_UN);
	pthread_mutex_unlock(&ctx->mutex);
}

struct net_network *net_network_free(struct net_network *n)
{
	if (!n)
		return NULL;
	free(n->id);
	free(n->name);
	free(n->driver);
	free(n->bridge);
	free(n->subnet);
	free(n->gateway);
	free(n->ip_range);
	free(n->subnet6);
	free(n->gateway6);
	free(n->ip_range6);
	strv_free(n->labels);
	strv_free(n->options);
	strv_free(n->aux);
	free(n->created);
	free(n);
	return NULL;
}

void net_network_list_free(struct net_network **v)
{
	for (size_t i = 0; v && v[i]; i++)
		net_network_free(v[i]);
	free(v);
}

static void network_list_freep(struct net_network ***v)
{
	net_network_list_free(*v);
}
#define _cleanup_netlist_ _cleanup_(network_list_freep)

static void network_freep(struct net_network **n)
{
	*n = net_network_free(*n);
}
#define _cleanup_network_ _cleanup_(network_freep)

bool net_network_is_user(const struct net_network *n)
{
	return streq(n->driver, "bridge") && !streq(n->name, NET_DEFAULT_NETWORK);
}

static json_t *network_to_json(const struct net_network *n)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:s}", "id", n->id, "name", n->name, "driver",
			      n->driver, "internal", n->internal, "labels", strv_kv_to_json(n->labels),
			      "options", strv_kv_to_json(n->options), "created", n->created);
	if (n->bridge)
		json_object_set_new(j, "bridge", json_string(n->bridge));
	if (n->subnet)
		json_object_set_new(j, "subnet", json_string(n->subnet));
	if (n->gateway)
		json_object_set_new(j, "gateway", json_string(n->gateway));
	if (n->ip_range)
		json_object_set_new(j, "ip_range", json_string(n->ip_range));
	if (n->aux && n->aux[0])
		json_object_set_new(j, "aux_addresses", strv_kv_to_json(n->aux));
	if (n->ipv6)
		json_object_set_new(j, "ipv6",
				    json_pack("{s:s,s:s}", "subnet", n->subnet6, "gateway", n->gateway6));
	if (n->ip_range6)
		json_object_set_new(json_object_get(j, "ipv6"), "ip_range", json_string(n->ip_range6));
	return j;
}

static int dup_opt(const json_t *j, const char *path, const char *key, int flags, char **ret,
		   struct berth_error **err)
{
	const char *s = NULL;
	int r = json_get_string(j, path, key, flags, &s, err);
	if (r < 0)
		return r;
	*ret = s ? xstrdup(s) : NULL;
	return 0;
}

static int network_from_json(const json_t *j, const char *path, struct net_network **ret,
			     struct berth_error **err)
{
	_cleanup_network_ struct net_network *n = xcalloc(1, sizeof(*n));
	int r;
	if ((r = dup_opt(j, path, "id", JSON_REQUIRED, &n->id, err)) < 0 ||
	    (r = dup_opt(j, path, "name", JSON_REQUIRED, &n->name, err)) < 0 ||
	    (r = dup_opt(j, path, "driver", JSON_REQUIRED, &n->driver, err)) < 0 ||
	    (r = dup_opt(j, path, "created", JSON_REQUIRED, &n->created, err)) < 0 ||
	    (r = dup_opt(j, path, "bridge", 0, &n->bridge, err)) < 0 ||
	    (r = dup_opt(j, path, "subnet", 0, &n->subnet, err)) < 0 ||
	    (r = dup_opt(j, path, "gateway", 0, &n->gateway, err)) < 0 ||
	    (r = dup_opt(j, path, "ip_range", 0, &n->ip_range, err)) < 0 ||
	    (r = json_get_bool(j, path, "internal", 0, &n->internal, err)) < 0 ||
	    (r = json_get_string_map(j, path, "labels", 0, &n->labels, err)) < 0 ||
	    (r = json_get_string_map(j, path, "options", 0, &n->options, err)) < 0 ||
	    (r = json_get_string_map(j, path, "aux_addresses", 0, &n->aux, err)) < 0)
		return r;
	if (!n->aux)
		n->aux = xcalloc(1, sizeof(char *));
	json_t *v6 = json_object_get(j, "ipv6");
	if (v6) {
		if ((r = dup_opt(v6, path, "subnet", JSON_REQUIRED, &n->subnet6, err)) < 0 ||
		    (r = dup_opt(v6, path, "gateway", JSON_REQUIRED, &n->gateway6, err)) < 0 ||
		    (r = dup_opt(v6, path, "ip_range", 0, &n->ip_range6, err)) < 0)
			return r;
		n->ipv6 = true;
	}
	if (!n->labels)
		n->labels = xcalloc(1, sizeof(char *));
	if (!n->options)
		n->options = xcalloc(1, sizeof(char *));
	if (streq(n->driver, "bridge") && (!n->bridge || !n->subnet || !n->gateway))
		return berth_error_msg(err, EINVAL, "'%s': bridge network without bridge, subnet or gateway",
				       path);
	*ret = TAKE_PTR(n);
	return 0;
}

static int network_save(struct net_ctx *ctx, const struct net_network *n, struct berth_error **err)
{
	json_auto_t *j = network_to_json(n);
	_cleanup_free_ char *s = json_dumps(j, JSON_INDENT(2));
	_cleanup_free_ char *p = xasprintf("%s/networks/%s.json", ctx->root_dir, n->id);
	return fs_write_file_atomic(p, s, strlen(s), 0600, err);
}

static int cmp_network(const void *a, const void *b)
{
	return strcmp((*(struct net_network *const *)a)->name, (*(struct net_network *const *)b)->name);
}

int net_network_load_all(struct net_ctx *ctx, struct net_network ***ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/networks", ctx->root_dir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return berth_error_errno(err, "open '%s'", dir);
	_cleanup_netlist_ struct net_network **v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !endswith(de->d_name, ".json"))
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
		json_auto_t *j = NULL;
		struct net_network *nw = NULL;
		int r = json_load_path(p, 1 << 20, &j, err);
		if (r >= 0)
			r = network_from_json(j, de->d_name, &nw, err);
		if (r < 0)
			return berth_error_wrap(err, r, "load network '%s'", p);
		v = xrealloc(v, (n + 2) * sizeof(*v));
		v[n++] = nw;
		v[n] = NULL;
	}
	qsort(v, n, sizeof(*v), cmp_network);
	*ret = TAKE_PTR(v);
	return 0;
}

int net_network_find(struct net_network *const *all, const char *name_or_id, struct net_network **ret,
		     struct berth_error **err)
{
	struct net_network *found = NULL;
	size_t len = name_or_id ? strlen(name_or_id) : 0;
	for (size_t i = 0; len && all[i]; i++)
		if (streq(all[i]->name, name_or_id) || streq(all[i]->id, name_or_id)) {
			*ret = all[i];
			return 0;
		}
	for (size_t i = 0; len && all[i]; i++) {
		if (strncmp(all[i]->id, name_or_id, len) != 0)
			continue;
		if (found)
			return berth_error_msg(err, EINVAL, "network '%s' is ambiguous", name_or_id);
		found = all[i];
	}
	if (!found)
		return berth_error_msg(err, ENOENT, "network '%s' not found", name_or_id ? name_or_id : "");
	*ret = found;
	return 0;
}

static char *now_rfc3339(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char buf[RFC3339_MAX];
	util_format_rfc3339(&ts, buf);
	return xstrdup(buf);
}

static struct net_network *pseudo_network(const char *name, const char *driver)
{
	struct net_network *n = xcalloc(1, sizeof(*n));
	n->id = util_random_hex(32);
	n->name = xstrdup(name);
	n->driver = xstrdup(driver);
	n->labels = xcalloc(1, sizeof(char *));
	n->options = xcalloc(1, sizeof(char *));
	n->aux = xcalloc(1, sizeof(char *));
	n->created = now_rfc3339();
	return n;
}

char *net_network_ipam_name(const struct net_network *n)
{
	return xstrdup(net_name_valid(n->name) ? n->name : n->id);
}

/* Does the subnet clash with a network or a route (routes on our own bridges excepted)? */
static int subnet_clash(struct net_network *const *all, const struct ip4net *sn, const char *self_bridge,
			struct berth_error **err)
{
	for (size_t i = 0; all[i]; i++) {
		struct ip4net o;
		if (!all[i]->subnet || net_ip4net_parse(all[i]->subnet, "subnet", false, &o, NULL, NULL) < 0)
			continue;
		if (net_ip4net_overlap(sn, &o)) {
			_cleanup_free_ char *s = net_ip4net_format(sn);
			return berth_error_msg(err, EEXIST, "subnet '%s' overlaps with network '%s' (%s)", s,
					       all[i]->name, all[i]->subnet);
		}
	}
	_cleanup_free_ struct route4 *routes = NULL;
	size_t nr = 0;
	int r = net_routes4_read(&routes, &nr, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < nr; i++) {
		bool ours = self_bridge && streq(routes[i].ifname, self_bridge);
		for (size_t k = 0; all[k] && !ours; k++)
			ours = all[k]->bridge && streq(all[k]->bridge, routes[i].ifname);
		if (!ours && net_ip4net_overlap(sn, &routes[i].dst)) {
			_cleanup_free_ char *s = net_ip4net_format(sn),
					    *d = net_ip4net_format(&routes[i].dst);
			return berth_error_msg(err, EEXIST, "subnet '%s' overlaps with route '%s' on '%s'", s,
					       d, routes[i].ifname);
		}
	}
	return 0;
}

/* First free subnet of docker's default pools: 172.17-31.0.0/16, then 192.168.0-240.0/20. */
static int subnet_pick(struct net_network *const *all, const char *self_bridge, struct ip4net *ret,
		       struct berth_error **err)
{
	for (int i = 0; i < 15 + 16; i++) {
		struct ip4net c =
		    i < 15 ? (struct ip4net){ (172u << 24) | ((17u + (uint32_t)i) << 16), 16 }
			   : (struct ip4net){ (192u << 24) | (168u << 16) | ((uint32_t)(i - 15) << 12), 20 };
		struct berth_error *e = NULL;
		int r = subnet_clash(all, &c, self_bridge, &e);
		berth_error_free(e);
		if (r == 0) {
			*ret = c;
			return 0;
		}
		if (r != -EEXIST)
			return berth_error_set(err, r, "read routing table");
	}
	return berth_error_msg(err, ENOSPC, "no free subnet left in the default address pools");
}

static const char *opt_value(const char *const *v, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; v && v[i]; i++)
		if (strncmp(v[i], key, kl) == 0 && v[i][kl] == '=')
			return v[i] + kl + 1;
	return NULL;
}

/* Fill subnet, gateway, ip_range of n from the options, validated. */
static int network_addressing(struct net_network *const *all, const struct net_create_opts *o,
			      struct net_network *n, struct berth_error **err)
{
	struct ip4net sn, range;
	int r;
	if (o->subnet) {
		if ((r = net_ip4net_parse(o->subnet, "subnet", false, &sn, NULL, err)) < 0)
			return r;
		if (sn.prefix > 30)
			return berth_error_msg(err, EINVAL, "invalid subnet '%s': prefix must be at most /30",
					       o->subnet);
		if ((r = subnet_clash(all, &sn, n->bridge, err)) < 0)
			return r;
	} else {
		if (o->gateway || o->ip_range)
			return berth_error_msg(err, EINVAL, "--gateway and --ip-range need --subnet");
		if ((r = subnet_pick(all, n->bridge, &sn, err)) < 0)
			return r;
	}
	uint32_t gw = sn.addr + 1, bcast = sn.addr | ~ip4_mask(sn.prefix);
	if (o->gateway) {
		if ((r = net_ip4_parse(o->gateway, "gateway", &gw, err)) < 0)
			return r;
		if (!net_ip4net_contains(&sn, gw) || gw == sn.addr || gw == bcast)
			return berth_error_msg(err, EINVAL,
					       "invalid gateway '%s': not a host address of subnet '%s'",
					       o->gateway, o->subnet);
	}
	if (o->ip_range) {
		if ((r = net_ip4net_parse(o->ip_range, "ip-range", false, &range, NULL, err)) < 0)
			return r;
		if (range.prefix < sn.prefix || !net_ip4net_contains(&sn, range.addr))
			return berth_error_msg(err, EINVAL, "invalid ip-range '%s': not inside subnet '%s'",
					       o->ip_range, o->subnet);
		n->ip_range = net_ip4net_format(&range);
	}
	for (size_t i = 0; o->aux && o->aux[i]; i++) {
		const char *eq = strchr(o->aux[i], '=');
		uint32_t a;
		if (!eq || eq == o->aux[i] || !o->subnet)
			return berth_error_msg(err, EINVAL, "invalid auxiliary address '%s'%s", o->aux[i],
					       o->subnet ? ": expected name=ip" : ": needs --subnet");
		if ((r = net_ip4_parse(eq + 1, "auxiliary address", &a, err)) < 0)
			return r;
		if (!net_ip4net_contains(&sn, a))
			return berth_error_msg(err, EINVAL,
					       "invalid auxiliary address '%s': not inside subnet '%s'",
					       o->aux[i], o->subnet);
	}
	char g[IP4_STR_MAX];
	net_ip4_format(gw, g);
	n->subnet = net_ip4net_format(&sn);
	n->gateway = xstrdup(g);
	return 0;
}

/* Fill subnet6/gateway6 of a dual-stack network from the options, validated. */
static int network_addressing6(struct net_network *const *all, const struct net_create_opts *o,
			       struct net_network *n, struct berth_error **err)
{
	if (!o->ipv6) {
		if (o->subnet6 || o->gateway6 || o->ip_range6)
			return berth_error_msg(err, EINVAL, "an IPv6 subnet needs IPv6 enabled (--ipv6)");
		return 0;
	}
	if (!o->subnet6)
		return berth_error_msg(
		    err, EINVAL, "IPv6 networks need an IPv6 subnet (e.g. --ipv6 --subnet fd00:db8::/64)");
	struct ip6net sn;
	int r = net_ip6net_parse(o->subnet6, "IPv6 subnet", &sn, err);
	if (r < 0)
		return r;
	if (sn.prefix > 126)
		return berth_error_msg(err, EINVAL, "invalid IPv6 subnet '%s': prefix must be at most /126",
				       o->subnet6);
	for (size_t i = 0; all[i]; i++) {
		struct ip6net other;
		if (all[i]->subnet6 && net_ip6net_parse(all[i]->subnet6, "subnet", &other, NULL) == 0 &&
		    net_ip6net_overlap(&sn, &other))
			return berth_error_msg(err, EEXIST,
					       "IPv6 subnet '%s' overlaps with network '%s' (%s)", o->subnet6,
					       all[i]->name, all[i]->subnet6);
	}
	uint8_t gw[16];
	memcpy(gw, sn.addr, 16);
	gw[15] |= 1;
	if (o->gateway6) {
		if ((r = net_ip6_parse(o->gateway6, "IPv6 gateway", gw, err)) < 0)
			return r;
		if (!net_ip6net_contains(&sn, gw) || !memcmp(gw, sn.addr, 16))
			return berth_error_msg(err, EINVAL, "invalid IPv6 gateway '%s': not in subnet '%s'",
					       o->gateway6, o->subnet6);
	}
	if (o->ip_range6) {
		struct ip6net range;
		if ((r = net_ip6net_parse(o->ip_range6, "IPv6 ip-range", &range, err)) < 0)
			return r;
		if (range.prefix < sn.prefix || !net_ip6net_contains(&sn, range.addr))
			return berth_error_msg(err, EINVAL, "invalid ip-range '%s': not inside subnet '%s'",
					       o->ip_range6, o->subnet6);
		n->ip_range6 = net_ip6net_format(&range);
	}
	char g[IP6_STR_MAX];
	net_ip6_format(gw, g);
	n->ipv6 = true;
	n->subnet6 = net_ip6net_format(&sn);
	n->gateway6 = xstrdup(g);
	return 0;
}

/* Lease files that keep host-local (and static --ip checks) off the auxiliary addresses. */
static int aux_hold(struct net_ctx *ctx, const struct net_network *n, struct berth_error **err)
{
	_cleanup_free_ char *name = net_network_ipam_name(n);
	_cleanup_free_ char *dir = xasprintf("%s/ipam/%s", ctx->root_dir, name);
	for (size_t i = 0; n->aux[i]; i++) {
		const char *eq = strchr(n->aux[i], '=');
		_cleanup_free_ char *key = xstrndup(n->aux[i], (size_t)(eq - n->aux[i]));
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, eq + 1);
		_cleanup_free_ char *body = xasprintf(NET_AUX_OWNER "%s\r\naux", key);
		int r = fs_mkdir_p(dir, 0755, err);
		if (r >= 0)
			r = fs_write_file_atomic(p, body, strlen(body), 0644, err);
		if (r < 0)
			return berth_error_wrap(err, r, "reserve auxiliary address '%s'", n->aux[i]);
	}
	return 0;
}

static int network_bridge_name(struct net_network *const *all, const struct net_create_opts *o,
			       struct net_network *n, struct berth_error **err)
{
	const char *br = opt_value(o->options, "com.docker.network.bridge.name");
	if (!br) {
		n->bridge = xasprintf("br-%.12s", n->id);
		return 0;
	}
	if (strlen(br) > 15 || !net_name_valid(br))
		return berth_error_msg(err, EINVAL, "invalid bridge name '%s'", br);
	for (size_t i = 0; all[i]; i++)
		if (all[i]->bridge && streq(all[i]->bridge, br))
			return berth_error_msg(err, EEXIST, "bridge '%s' is already used by network '%s'", br,
					       all[i]->name);
	n->bridge = xstrdup(br);
	return 0;
}

static int network_create_locked(struct net_ctx *ctx, const struct net_create_opts *o,
				 struct net_network **ret, struct berth_error **err)
{
	if (!o->name || !net_network_name_valid(o->name))
		return berth_error_msg(err, EINVAL,
				       "invalid network name '%s': 1 to %d characters, no control characters",
				       o->name ? o->name : "", NET_NAME_MAX);
	if (o->driver && *o->driver && !streq(o->driver, "bridge"))
		return berth_error_msg(err, EOPNOTSUPP,
				       "network driver '%s' is not supported (only 'bridge')", o->driver);
	if (streq(o->name, "bridge") || streq(o->name, "host") || streq(o->name, "none"))
		return berth_error_msg(err, EPERM, "network name '%s' is reserved", o->name);
	for (size_t i = 0; o->labels && o->labels[i]; i++)
		if (!strchr(o->labels[i], '=') || o->labels[i][0] == '=')
			return berth_error_msg(err, EINVAL, "invalid label '%s': expected key=value",
					       o->labels[i]);
	_cleanup_netlist_ struct net_network **all = NULL;
	int r = net_network_load_all(ctx, &all, err);
	if (r < 0)
		return r;
	for (size_t i = 0; all[i]; i++)
		if (streq(all[i]->name, o->name))
			return berth_error_msg(err, EEXIST, "network with name '%s' already exists", o->name);
	_cleanup_network_ struct net_network *n = pseudo_network(o->name, "bridge");
	strv_free(n->labels);
	strv_free(n->options);
	n->labels = strv_dup(o->labels);
	n->options = strv_dup(o->options);
	strv_free(n->aux);
	n->aux = strv_dup(o->aux);
	n->internal = o->internal;
	if ((r = network_bridge_name(all, o, n, err)) < 0 || (r = network_addressing(all, o, n, err)) < 0 ||
	    (r = network_addressing6(all, o, n, err)) < 0)
		return r;
	_cleanup_free_ char *ipam_name = net_network_ipam_name(n);
	_cleanup_free_ char *ipam_dir = xasprintf("%s/ipam/%s", ctx->root_dir, ipam_name);
	fs_rm_rf(ipam_dir, NULL); /* leftovers of a network of that name removed by hand */
	if ((r = aux_hold(ctx, n, err)) < 0 || (r = network_save(ctx, n, err)) < 0) {
		fs_rm_rf(ipam_dir, NULL);
		return r;
	}
	/* isolation rules must cover the new network before anything attaches to it */
	size_t cnt = 0;
	while (all[cnt])
		cnt++;
	all = xrealloc(all, (cnt + 2) * sizeof(*all));
	all[cnt] = n;
	all[cnt + 1] = NULL;
	r = net_network_fw_sync(ctx, all, err);
	all[cnt] = NULL;
	if (r < 0) {
		_cleanup_free_ char *p = xasprintf("%s/networks/%s.json", ctx->root_dir, n->id);
		unlink(p);
		fs_rm_rf(ipam_dir, NULL);
		return r;
	}
	if (ret)
		*ret = TAKE_PTR(n);
	return 0;
}

int net_network_create(struct net_ctx *ctx, const struct net_create_opts *opts, struct net_network **ret,
		       struct berth_error **err)
{
	int r = net_lock(ctx, err);
	if (r < 0)
		return r;
	r = network_create_locked(ctx, opts, ret, err);
	net_unlock(ctx);
	if (r < 0)
		return berth_error_wrap(err, r, "create network '%s'", opts->name ? opts->name : "");
	return r;
}

static struct net_network *network_dup(const struct net_network *s)
{
	json_auto_t *j = network_to_json(s);
	struct net_network *n = NULL;
	if (network_from_json(j, "network", &n, NULL) < 0)
		abort(); /* round trip of our own serialisation: a bug if it fails */
	return n;
}

int net_network_get(struct net_ctx *ctx, const char *name_or_id, struct net_network **ret,
		    struct berth_error **err)
{
	_cleanup_netlist_ struct net_network **all = NULL;
	struct net_network *n;
	int r = net_lock(ctx, err);
	if (r < 0)
		return r;
	r = net_network_load_all(ctx, &all, err);
	net_unlock(ctx);
	if (r < 0)
		return r;
	if ((r = net_network_find(all, name_or_id, &n, err)) < 0)
		return r;
	*ret = network_dup(n);
	return 0;
}

int net_network_list(struct net_ctx *ctx, struct net_network ***ret, struct berth_error **err)
{
	int r = net_lock(ctx, err);
	if (r < 0)
		return r;
	r = net_network_load_all(ctx, ret, err);
	net_unlock(ctx);
	return r;
}

static int run_quiet(const char *const *argv, int timeout_ms)
{
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	int status = 0;
	int r = proc_run(&o, NULL, 0, NULL, NULL, 0, timeout_ms, &status, NULL);
	return r < 0 ? r : proc_exit_code(status);
}

/* Lock held; n is an element of all. */
static int network_remove_locked(struct net_ctx *ctx, struct net_network **all, struct net_network *n,
				 struct berth_error **err)
{
	if (!net_network_is_user(n))
		return berth_error_msg(err, EPERM, "'%s' is a pre-defined network and cannot be removed",
				       n->name);
	bool used = false;
	int r = net_container_uses_network(ctx, n->id, &used, err);
	if (r < 0)
		return r;
	if (used)
		return berth_error_msg(err, EBUSY, "network '%s' has active endpoints", n->name);
	_cleanup_free_ char *p = xasprintf("%s/networks/%s.json", ctx->root_dir, n->id);
	if (unlink(p) < 0)
		return berth_error_errno(err, "remove '%s'", p);
	_cleanup_free_ char *ipam_name = net_network_ipam_name(n);
	_cleanup_free_ char *ipam = xasprintf("%s/ipam/%s", ctx->root_dir, ipam_name);
	fs_rm_rf(ipam, NULL);
	/* the bridge plugin never deletes its bridge; docker removes it with the network */
	const char *argv[] = { "ip", "link", "delete", n->bridge, "type", "bridge", NULL };
	run_quiet(argv, ctx->timeout_ms);
	size_t k = 0;
	for (size_t i = 0; all[i]; i++)
		if (all[i] != n)
			all[k++] = all[i];
	all[k] = NULL;
	r = net_network_fw_sync(ctx, all, err);
	net_network_free(n);
	return r;
}

int net_network_remove(struct net_ctx *ctx, const char *name_or_id, struct berth_error **err)
{
	_cleanup_netlist_ struct net_network **all = NULL;
	struct net_network *n;
	int r = net_lock(ctx, err);
	if (r < 0)
		return r;
	r = net_network_load_all(ctx, &all, err);
	if (r >= 0)
		r = net_network_find(all, name_or_id, &n, err);
	if (r >= 0)
		r = network_remove_locked(ctx, all, n, err);
	net_unlock(ctx);
	if (r < 0)
		return berth_error_wrap(err, r, "remove network '%s'", name_or_id ? name_or_id : "");
	return 0;
}

int net_network_prune(struct net_ctx *ctx, char ***ret_removed, struct berth_error **err)
{
	return net_network_prune_filtered(ctx, NULL, ret_removed, err);
}

/* Lock held. Prunable: a user network without endpoints that matches the filters. */
static int prunable(struct net_ctx *ctx, const struct net_network *n, const json_t *filters, bool *ret,
		    struct berth_error **err)
{
	bool used = false, match = true;
	*ret = false;
	if (!net_network_is_user(n))
		return 0;
	int r = net_container_uses_network(ctx, n->id, &used, err);
	if (r < 0 || used)
		return r;
	/* net_api_network_match locks for "dangling": prune filters are label/until only, like docker */
	if (filters) {
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)filters, k, v)
			if (!streq(k, "label") && !streq(k, "label!") && !streq(k, "until"))
				return berth_error_msg(err, EINVAL, "invalid filter '%s' for prune", k);
		if ((r = net_api_network_match(ctx, n, filters, &match, err)) < 0)
			return r;
	}
	*ret = match;
	return 0;
}

int net_network_prune_filtered(struct net_ctx *ctx, const json_t *filters, char ***ret_removed,
			       struct berth_error **err)
{
	_cleanup_netlist_ struct net_network **all = NULL;
	_cleanup_strv_ char **removed = xcalloc(1, sizeof(char *));
	size_t nr = 0;
	int r = net_lock(ctx, err);
	if (r < 0)
		return r;
	r = net_network_load_all(ctx, &all, err);
	for (size_t i = 0; r >= 0 && all[i];) {
		bool prune = false;
		if ((r = prunable(ctx, all[i], filters, &prune, err)) < 0 || !prune) {
			i++;
			continue;
		}
		_cleanup_free_ char *name = xstrdup(all[i]->name);
		r = network_remove_locked(ctx, all, all[i], err); /* shifts all[] down */
		if (r >= 0) {
			removed = xrealloc(removed, (nr + 2) * sizeof(char *));
			removed[nr++] = TAKE_PTR(name);
			removed[nr] = NULL;
		}
	}
	net_unlock(ctx);
	if (r < 0)
		return berth_error_wrap(err, r, "prune networks");
	if (ret_removed)
		*ret_removed = TAKE_PTR(removed);
	return 0;
}

/*
 * The IPv6 range set of a dual-stack network: ip_range6's addresses when given (its first
 * one skipped when it is the subnet's own, the subnet-router anycast address), unless a
 * static address asks for the whole subnet (as for IPv4).
 */
static json_t *range6_of(const struct net_network *n, bool whole_subnet)
{
	json_t *range = json_pack("{s:s,s:s}", "subnet", n->subnet6, "gateway", n->gateway6);
	struct ip6net sn, r;
	if (!n->ip_range6 || whole_subnet || net_ip6net_parse(n->subnet6, "subnet", &sn, NULL) < 0 ||
	    net_ip6net_parse(n->ip_range6, "ip-range", &r, NULL) < 0)
		return range;
	uint8_t lo[16], hi[16];
	memcpy(lo, r.addr, 16);
	memcpy(hi, r.addr, 16);
	for (int bit = r.prefix; bit < 128; bit++)
		hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
	if (!memcmp(lo, sn.addr, 16) && r.prefix < 128)
		lo[15] |= 1;
	char a[IP6_STR_MAX], b[IP6_STR_MAX];
	net_ip6_format(lo, a);
	net_ip6_format(hi, b);
	json_object_set_new(range, "rangeStart", json_string(a));
	json_object_set_new(range, "rangeEnd", json_string(b));
	return range;
}

json_t *net_network_conflist(struct net_ctx *ctx, const struct net_network *n, bool with_ports, bool whole4,
			     bool whole6)
{
	json_t *range = json_pack("{s:s,s:s}", "subnet", n->subnet, "gateway", n->gateway);
	if (n->ip_range && !whole4) {
		struct ip4net r;
		if (net_ip4net_parse(n->ip_range, "ip-range", false, &r, NULL, NULL) == 0) {
			char lo[IP4_STR_MAX], hi[IP4_STR_MAX];
			net_ip4_format(r.prefix >= 31 ? r.addr : r.addr + 1, lo);
			net_ip4_format(r.prefix >= 31 ? r.addr | ~ip4_mask(r.prefix)
						      : (r.addr | ~ip4_mask(r.prefix)) - 1,
				       hi);
			json_object_set_new(range, "rangeStart", json_string(lo));
			json_object_set_new(range, "rangeEnd", json_string(hi));
		}
	}
	_cleanup_free_ char *data_dir = xasprintf("%s/ipam", ctx->root_dir);
	json_t *ipam =
	    json_pack("{s:s,s:[[o]],s:s}", "type", "host-local", "ranges", range, "dataDir", data_dir);
	/* dual stack: a second range set, host-local gives one address of each */
	if (n->ipv6)
		json_array_append_new(json_object_get(ipam, "ranges"),
				      json_pack("[o]", range6_of(n, whole6)));
	if (!n->internal)
		json_object_set_new(ipam, "routes", json_pack("[{s:s}]", "dst", "0.0.0.0/0"));
	if (!n->internal && n->ipv6)
		json_array_append_new(json_object_get(ipam, "routes"), json_pack("{s:s}", "dst", "::/0"));
	json_t *bridge = json_pack("{s:s,s:s,s:b,s:b,s:b,s:o}", "type", "bridge", "bridge", n->bridge,
				   "isGateway", 1, "ipMasq", 0, "hairpinMode", 1, "ipam", ipam);
	json_t *plugins = json_pack("[o]", bridge);
	if (with_ports)
		json_array_append_new(plugins, json_pack("{s:s,s:{s:b},s:b,s:s}", "type", "portmap",
							 "capabilities", "portMappings", 1, "snat", 1,
							 "externalSetMarkChain", NET_FW_SETMARK_CHAIN));
	_cleanup_free_ char *name = net_network_ipam_name(n);
	return json_pack("{s:s,s:s,s:o}", "cniVersion", CNI_VERSION, "name", name, "plugins", plugins);
}

int net_network_fw_sync(struct net_ctx *ctx, struct net_network *const *all, struct berth_error **err)
{
	size_t n = 0, k = 0;
	while (all[n])
		n++;
	_cleanup_free_ struct fw_net *v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		if (all[i]->bridge)
			v[k++] = (struct fw_net){ all[i]->bridge, all[i]->subnet, all[i]->internal,
						  all[i]->subnet6 };
	/* IPv6 chains once a dual-stack network existed (the marker lives in the exec root, as the
	 * rules do), so that the last one's removal empties them */
	_cleanup_free_ char *marker6 = xasprintf("%s/../fw6-used", ctx->netns_dir);
	bool v6 = access(marker6, F_OK) == 0;
	for (size_t i = 0; i < k && !v6; i++)
		v6 = v[i].subnet6 != NULL;
	int r = net_fw_sync(&ctx->fw, v, k, v6, ctx->timeout_ms, err);
	if (r >= 0 && v6) {
		int fd = open(marker6, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	return r;
}

/*
 * berth's networks are IPv4 only, yet portmap's DEL tears down its chains with
 * ip6tables too (8 of its 18 execs) and its CHECK fails for IPv4-only
 * containers whenever ip6tables works (containernetworking/plugins#819).
 * portmap skips a family whose iptables binary does not answer `--version`,
 * so the plugins find an "ip6tables" that is /bin/false first in their PATH.
 * When networks get IPv6, drop this shim.
 */
static int ctx_shim(struct net_ctx *ctx, struct berth_error **err)
{
	int r = fs_mkdir_p(ctx->shim_dir, 0700, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *link = xasprintf("%s/ip6tables", ctx->shim_dir);
	if (symlink("/bin/false", link) < 0 && errno != EEXIST)
		return berth_error_errno(err, "create '%s'", link);
	return 0;
}

static int ctx_dirs(struct net_ctx *ctx, struct berth_error **err)
{
	const char *subs[] = { "networks", "containers", "ipam", "reserved" };
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", ctx->root_dir, subs[i]);
		if ((r = fs_mkdir_p(p, 0700, err)) < 0)
			return r;
	}
	if ((r = fs_mkdir_p(ctx->netns_dir, 0700, err)) < 0)
		return r;
	return ctx_shim(ctx, err);
}

/* ".2": per-daemon chains; a daemon of an earlier version left "fw-synced" */
static char *fw_marker(struct net_ctx *ctx)
{
	return xasprintf("%s/../fw-synced.2", ctx->netns_dir);
}

/* The daemon's chains are named from a hash of its root (realpath when it resolves). */
static void ctx_fw_names(struct net_ctx *ctx, const char *root)
{
	_cleanup_free_ char *real = realpath(root, NULL);
	const char *p = real ? real : root;
	char hex[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, p, strlen(p), hex); /* "sha256:<hex>" */
	net_fw_chains_init(&ctx->fw, hex + strlen("sha256:"));
}

/*
 * Rebuild the chains from every network, then mark it done in the exec root:
 * that is a tmpfs, so after a reboot (rules gone) the first open rebuilds them,
 * and later opens cost one stat instead of an iptables-restore. portmap needs
 * NET_FW_SETMARK_CHAIN to exist. Lock held.
 */
static int ctx_fw_sync(struct net_ctx *ctx, struct berth_error **err)
{
	_cleanup_netlist_ struct net_network **all = NULL;
	int r = net_fw_migrate_legacy(ctx->timeout_ms, err);
	if (r < 0)
		return r;
	r = net_network_load_all(ctx, &all, err);
	if (r < 0 || (r = net_network_fw_sync(ctx, all, err)) < 0)
		return r;
	_cleanup_free_ char *marker = fw_marker(ctx);
	int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) /* without the marker the next open just syncs again */
		close(fd);
	return 0;
}

/*
 * The default bridge may already exist with an address: left by an earlier daemon on another root
 * (or another subnet), or made by hand. The bridge plugin refuses to give a bridge a second IPv4
 * address, so every container start would fail. As dockerd does with docker0, the default network
 * takes the bridge's address (gateway = the address, subnet = its network) unless a subnet was
 * asked for or containers are attached with the old one: then the daemon does not start, and the
 * message names the bridge and the fix. Lock held; *n: the default network (a record, or new).
 */
static int adopt_bridge_addr(struct net_ctx *ctx, struct net_network *n, bool is_new, bool *changed,
			     struct berth_error **err)
{
	uint32_t addr;
	int prefix;
	*changed = false;
	if (net_iface_addr4(n->bridge, &addr, &prefix) <= 0 || prefix < 1 || prefix > 30)
		return 0;
	struct ip4net have = { addr & ip4_mask(prefix), prefix };
	_cleanup_free_ char *subnet = net_ip4net_format(&have);
	char gw[IP4_STR_MAX];
	net_ip4_format(addr, gw);
	if (streq_ptr(n->subnet, subnet) && streq_ptr(n->gateway, gw))
		return 0;
	bool used = false;
	int r = is_new ? 0 : net_container_uses_network(ctx, n->id, &used, err);
	if (r < 0)
		return r;
	if (ctx->bridge_subnet || used)
		return berth_error_msg(
		    err, EEXIST,
		    "bridge '%s' already has address %s/%d, not the default network's %s "
		    "(%s): delete the bridge (ip link delete %s), or use another bridge name "
		    "(--bridge)%s",
		    n->bridge, gw, prefix, n->subnet ? n->subnet : "", n->gateway ? n->gateway : "",
		    n->bridge, used ? "" : " or that subnet");
	free(n->subnet);
	free(n->gateway);
	free(n->ip_range);
	n->subnet = TAKE_PTR(subnet);
	n->gateway = xstrdup(gw);
	n->ip_range = NULL;
	*changed = true;
	return 0;
}

/*
 * The default network's IPv6 subnet follows the daemon's flags (--ipv6 --fixed-cidr-v6) from one
 * start to the next, as long as no container is attached (their addresses would not match).
 */
static int default_network_ipv6(struct net_ctx *ctx, struct net_network *const *all, struct net_network *n,
				bool *changed, struct berth_error **err)
{
	*changed = false;
	struct ip6net want;
	_cleanup_free_ char *canon = NULL;
	if (ctx->bridge_subnet6) {
		int r = net_ip6net_parse(ctx->bridge_subnet6, "IPv6 subnet", &want, err);
		if (r < 0)
			return r;
		canon = net_ip6net_format(&want);
	}
	if (streq_ptr(canon, n->ipv6 ? n->subnet6 : NULL))
		return 0;
	bool used = false;
	int r = net_container_uses_network(ctx, n->id, &used, err);
	if (r < 0)
		return r;
	if (used)
		return berth_error_msg(
		    err, EBUSY,
		    "the IPv6 subnet of the default network would change from %s to %s while "
		    "containers are attached: remove them, or start with the previous "
		    "--ipv6/--fixed-cidr-v6",
		    n->ipv6 ? n->subnet6 : "none", canon ? canon : "none");
	size_t k = 0;
	while (all[k])
		k++;
	_cleanup_free_ struct net_network **others = xcalloc(k + 1, sizeof(*others));
	for (size_t i = 0, j = 0; i < k; i++)
		if (all[i] != n)
			others[j++] = all[i];
	struct net_network tmp = { 0 };
	struct net_create_opts o = { .ipv6 = canon != NULL, .subnet6 = canon };
	if ((r = network_addressing6(others, &o, &tmp, err)) < 0)
		return r;
	free(n->subnet6);
	free(n->gateway6);
	n->ipv6 = tmp.ipv6;
	n->subnet6 = tmp.subnet6;
	n->gateway6 = tmp.gateway6;
	*changed = true;
	log_fields(LOG_LEVEL_INFO, "default network IPv6 subnet changed", "bridge", n->bridge, "subnet6",
		   canon ? canon : "none", NULL);
	return 0;
}

/*
 * The default bridge exists with its address from the daemon's start, as docker0 does: a second
 * daemon in the same netns (another root and bridge) then sees its route and picks another subnet,
 * where it would take the same one while the bridge waited for its first container.
 */
static int default_bridge_up(const struct net_network *n, struct berth_error **err)
{
	struct ip4net sn;
	uint32_t gw;
	if (!n->subnet || !n->gateway || net_ip4net_parse(n->subnet, "subnet", false, &sn, NULL, NULL) < 0 ||
	    net_ip4_parse(n->gateway, "gateway", &gw, NULL) < 0)
		return berth_error_msg(err, EINVAL, "default network: bad subnet '%s' or gateway '%s'",
				       n->subnet ? n->subnet : "", n->gateway ? n->gateway : "");
	int r = net_bridge_ensure4(n->bridge, gw, sn.prefix);
	if (r < 0)
		return berth_error_set(err, r, "create the default bridge '%s' with %s/%d", n->bridge,
				       n->gateway, sn.prefix);
	return 0;
}

/* First open: bridge, host and none networks. Lock held. */
static int ctx_default_networks(struct net_ctx *ctx, struct berth_error **err)
{
	_cleanup_netlist_ struct net_network **all = NULL;
	int r = net_network_load_all(ctx, &all, err);
	if (r < 0)
		return r;
	struct net_network *n;
	if (net_network_find(all, "host", &n, NULL) < 0) {
		_cleanup_network_ struct net_network *h = pseudo_network("host", "host");
		if ((r = network_save(ctx, h, err)) < 0)
			return r;
	}
	if (net_network_find(all, "none", &n, NULL) < 0) {
		_cleanup_network_ struct net_network *h = pseudo_network("none", "null");
		if ((r = network_save(ctx, h, err)) < 0)
			return r;
	}
	bool changed = false, changed6 = false;
	if (net_network_find(all, NET_DEFAULT_NETWORK, &n, NULL) == 0) {
		if (!streq_ptr(n->bridge, ctx->bridge_name))
			return 0;
		if ((r = adopt_bridge_addr(ctx, n, false, &changed, err)) < 0 ||
		    (r = default_network_ipv6(ctx, all, n, &changed6, err)) < 0)
			return berth_error_wrap(err, r, "default network");
		if (changed)
			log_fields(LOG_LEVEL_INFO, "default network takes the existing bridge's address",
				   "bridge", n->bridge, "subnet", n->subnet, NULL);
		if ((changed || changed6) &&
		    ((r = network_save(ctx, n, err)) < 0 || (r = ctx_fw_sync(ctx, err)) < 0))
			return r;
		return default_bridge_up(n, err);
	}
	_cleanup_network_ struct net_network *b = pseudo_network(NET_DEFAULT_NETWORK, "bridge");
	b->bridge = xstrdup(ctx->bridge_name);
	strv_free(b->options);
	b->options = xcalloc(2, sizeof(char *));
	b->options[0] = xasprintf("com.docker.network.bridge.name=%s", ctx->bridge_name);
	struct net_create_opts o = { .subnet = ctx->bridge_subnet };
	if ((r = adopt_bridge_addr(ctx, b, true, &changed, err)) < 0)
		return berth_error_wrap(err, r, "default network");
	_cleanup_free_ char *subnet = TAKE_PTR(b->subnet), *gateway = TAKE_PTR(b->gateway);
	if (changed) {
		o.subnet = subnet; /* checked against the other networks and routes below */
		o.gateway = gateway;
	}
	o.ipv6 = ctx->bridge_subnet6 != NULL;
	o.subnet6 = ctx->bridge_subnet6;
	if ((r = network_addressing(all, &o, b, err)) < 0 || (r = network_addressing6(all, &o, b, err)) < 0)
		return berth_error_wrap(err, r, "default network");
	if ((r = network_save(ctx, b, err)) < 0)
		return r;
	/* the default bridge joins the isolation chains */
	if ((r = ctx_fw_sync(ctx, err)) < 0)
		return r;
	return default_bridge_up(b, err);
}

int net_ctx_open(const struct net_config *cfg, struct net_ctx **ret, struct berth_error **err)
{
	if (!cfg || !cfg->root || !cfg->exec_root)
		return berth_error_msg(err, EINVAL, "network state needs a root and an exec root");
	const char *br = cfg->bridge_name ? cfg->bridge_name : NET_DEFAULT_BRIDGE;
	if (strlen(br) > 15 || !net_name_valid(br))
		return berth_error_msg(err, EINVAL, "invalid bridge name '%s'", br);
	struct net_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->lock_fd = -1;
	pthread_mutex_init(&ctx->mutex, NULL);
	ctx->root_dir = xasprintf("%s/net", cfg->root);
	ctx->netns_dir = xasprintf("%s/net/netns", cfg->exec_root);
	ctx->shim_dir = xasprintf("%s/net/cni-shim", cfg->exec_root);
	ctx->cni_path = xstrdup(cfg->cni_path ? cfg->cni_path : NET_DEFAULT_CNI_PATH);
	ctx->bridge_name = xstrdup(br);
	ctx->bridge_subnet = cfg->bridge_subnet ? xstrdup(cfg->bridge_subnet) : NULL;
	ctx->bridge_subnet6 = cfg->bridge_subnet6 ? xstrdup(cfg->bridge_subnet6) : NULL;
	ctx->timeout_ms = cfg->plugin_timeout_ms > 0 ? cfg->plugin_timeout_ms : 10000;
	ctx_fw_names(ctx, cfg->root);
	int r = ctx_dirs(ctx, err);
	if (r >= 0) {
		_cleanup_free_ char *lock = xasprintf("%s/lock", ctx->root_dir);
		ctx->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (ctx->lock_fd < 0)
			r = berth_error_errno(err, "open '%s'", lock);
	}
	if (r >= 0 && (r = net_lock(ctx, err)) >= 0) {
		r = ctx_default_networks(ctx, err);
		_cleanup_free_ char *marker = fw_marker(ctx);
		if (r >= 0 && access(marker, F_OK) < 0)
			r = ctx_fw_sync(ctx, err);
		net_unlock(ctx);
	}
	if (r < 0) {
		net_ctx_free(ctx);
		return berth_error_wrap(err, r, "open network state");
	}
	*ret = ctx;
	return 0;
}

int net_ctx_remove_firewall(struct net_ctx *ctx, struct berth_error **err)
{
	int r = net_lock(ctx, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *marker = fw_marker(ctx);
	_cleanup_free_ char *marker6 = xasprintf("%s/../fw6-used", ctx->netns_dir);
	/* the marker first: a failure half-way must not make the next start skip the rebuild */
	(void)unlink(marker);
	r = net_fw_remove(&ctx->fw, access(marker6, F_OK) == 0, ctx->timeout_ms, err);
	if (r >= 0)
		(void)unlink(marker6);
	net_unlock(ctx);
	return r < 0 ? berth_error_wrap(err, r, "remove the firewall chains") : 0;
}

struct net_ctx *net_ctx_free(struct net_ctx *ctx)
{
	if (!ctx)
		return NULL;
	free(ctx->root_dir);
	free(ctx->netns_dir);
	free(ctx->shim_dir);
	free(ctx->cni_path);
	free(ctx->bridge_name);
	free(ctx->bridge_subnet);
	free(ctx->bridge_subnet6);
	safe_close(ctx->lock_fd);
	pthread_mutex_destroy(&ctx->mutex);
	free(ctx);
	return NULL;
}

int net_network_status(struct net_ctx *ctx, const char *name_or_id, struct berth_error **err)
{
	_cleanup_(net_network_freep) struct net_network *n = NULL;
	int r = net_network_get(ctx, name_or_id, &n, err);
	if (r < 0)
		return r;
	if (!n->bridge)
		return 0; /* host and none need no plugin */
	json_auto_t *conf = net_network_conflist(ctx, n, true, false, false);
	struct cni_exec x = net_cni_exec(ctx);
	r = net_cni_list_status(&x, conf, err);
	if (r < 0)
		return berth_error_wrap(err, r, "network '%s' is not ready", n->name);
	return 0;
}
