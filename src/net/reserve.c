/*
 * reserve.c - the addresses a container keeps between its runs.
 *
 * docker keeps a container's address across stop/start, restart policies and
 * daemon restarts until the container is removed or disconnected, so peers
 * that resolved it once (nginx in front of an app) keep reaching it. CNI knows
 * no stopped containers: DEL frees the host-local lease. So berth keeps the
 * addresses itself:
 *
 *   <root>/net/reserved/<id>.json
 *       {"<network id>": {"network": "app", "ipv4": "10.1.0.2", "ipv6": "fd00::2", "mac": "..",
 *                         "ifname": "eth0"}}          ("ipv6" on dual-stack networks only)
 *
 * ("network" is net_network_ipam_name(): the name, or the id for names that are no file names),
 *
 * is written from the endpoints' CNI results before their DEL (net_container_stop),
 * and, while the container is not attached, a placeholder lease
 * <root>/net/ipam/<network>/<ip> whose owner line is "berth-reserved:<id>"
 * keeps host-local from handing the address to anyone else: host-local takes
 * every lease file as taken and only deletes leases whose owner is the id it
 * is called for. The next ADD removes the placeholder and asks for the same
 * address and MAC (CNI_ARGS IP= and MAC=, as a static --ip does).
 *
 * Trade-off: writing into host-local's data directory couples us to its file
 * format (file name = address, first line = owner), which has been stable
 * since the plugins' 0.x releases; the alternative, our own IPAM plugin, is far
 * more code. host-local runs only under our state lock, so its own flock is
 * not needed here. Lock held for every call.
 */
#include <ctype.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/strv.h"
#include "net/internal.h"
#include "net/record.h"

#define RESERVED_OWNER "berth-reserved:"

static char *reserve_path(struct net_ctx *ctx, const char *id)
{
	return xasprintf("%s/reserved/%s.json", ctx->root_dir, id);
}

static char *lease_path(struct net_ctx *ctx, const char *network, const char *ip)
{
	return xasprintf("%s/ipam/%s/%s", ctx->root_dir, network, ip);
}

json_t *net_reserve_load(struct net_ctx *ctx, const char *id)
{
	json_t *j = NULL;
	if (net_id_valid(id)) {
		_cleanup_free_ char *p = reserve_path(ctx, id);
		if (access(p, F_OK) == 0 && json_load_path(p, 1 << 20, &j, NULL) < 0)
			j = NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		j = json_object();
	}
	return j;
}

static int reserve_save(struct net_ctx *ctx, const char *id, const json_t *res, struct berth_error **err)
{
	_cleanup_free_ char *p = reserve_path(ctx, id);
	if (json_object_size(res) == 0) {
		if (unlink(p) < 0 && errno != ENOENT)
			return berth_error_errno(err, "remove '%s'", p);
		return 0;
	}
	_cleanup_free_ char *d = xasprintf("%s/reserved", ctx->root_dir);
	int r = fs_mkdir_p(d, 0700, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *s = json_dumps(res, JSON_INDENT(1));
	return fs_write_file_atomic(p, s, strlen(s), 0600, err);
}

/* A MAC safe to pass in CNI_ARGS. */
#define mac_valid net_mac_valid

/* The network's directory name under ipam/ as the endpoint's conflist names it. */
static const char *ep_ipam_name(const json_t *ep)
{
	return json_string_value(json_object_get(json_object_get(ep, "conflist"), "name"));
}

/* An entry we can use: a valid address (and, if any, a valid MAC). */
static bool entry_valid(const json_t *e)
{
	uint32_t a;
	const char *mac = net_rec_str(e, "mac");
	uint8_t a6[16];
	const char *v6 = net_rec_str(e, "ipv6");
	return net_rec_str(e, "network") && net_name_valid(net_rec_str(e, "network")) &&
	       net_rec_str(e, "ipv4") && net_ip4_parse(net_rec_str(e, "ipv4"), "address", &a, NULL) == 0 &&
	       (!mac || mac_valid(mac)) && (!v6 || net_ip6_parse(v6, "address", a6, NULL) == 0);
}

/* The owner line of a lease file (NULL: no such lease). */
static char *lease_owner(struct net_ctx *ctx, const char *network, const char *ip)
{
	_cleanup_free_ char *p = lease_path(ctx, network, ip);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, p, 4096, &sb, NULL) < 0)
		return NULL;
	sb.buf[strcspn(sb.buf, "\r\n")] = '\0';
	return strbuf_detach(&sb, NULL);
}

static bool owner_is_placeholder_of(const char *owner, const char *id)
{
	return owner && startswith(owner, RESERVED_OWNER) && streq(owner + strlen(RESERVED_OWNER), id);
}

bool net_reserve_lease_taken(struct net_ctx *ctx, const char *network, const char *ip, const char *self_id)
{
	_cleanup_free_ char *owner = lease_owner(ctx, network, ip);
	return owner && !streq(owner, self_id) && !owner_is_placeholder_of(owner, self_id);
}

int net_reserve_record(struct net_ctx *ctx, const json_t *rec, struct berth_error **err)
{
	const char *id = net_rec_str(rec, "id");
	json_auto_t *res = net_reserve_load(ctx, id);
	bool changed = false;
	size_t i;
	json_t *ep;
	json_array_foreach (json_object_get(rec, "endpoints"), i, ep) {
		json_t *result = json_object_get(ep, "result");
		uint32_t a;
		int prefix;
		char gw[IP4_STR_MAX], mac[18], ip[IP4_STR_MAX];
		if (!streq_ptr(net_rec_str(ep, "state"), "ready") || !result ||
		    net_cni_result_ipv4(result, &a, &prefix, gw, mac, NULL) < 0 ||
		    !net_rec_str(ep, "network_id"))
			continue;
		net_ip4_format(a, ip);
		json_t *e = json_pack("{s:s?,s:s,s:s?}", "network", ep_ipam_name(ep), "ipv4", ip, "ifname",
				      net_rec_str(ep, "ifname"));
		if (mac_valid(mac))
			json_object_set_new(e, "mac", json_string(mac));
		char ip6[IP6_STR_MAX], gw6[IP6_STR_MAX];
		if (net_cni_result_ipv6(result, ip6, &prefix, gw6) == 0)
			json_object_set_new(e, "ipv6", json_string(ip6));
		json_object_set_new(res, net_rec_str(ep, "network_id"), e);
		changed = true;
	}
	return changed ? reserve_save(ctx, id, res, err) : 0;
}

/* Write the placeholder lease of entry e: 1 held, 0 another owner has the address, -errno when the
 * lease cannot be written (disk full). */
static int hold_addr(struct net_ctx *ctx, const char *id, const json_t *e, const char *ip,
		     struct berth_error **err)
{
	const char *net = net_rec_str(e, "network");
	_cleanup_free_ char *dir = xasprintf("%s/ipam/%s", ctx->root_dir, net);
	int r = fs_mkdir_p(dir, 0755, err);
	if (r < 0)
		return berth_error_wrap(err, r, "keep address %s on network '%s'", ip, net);
	/* host-local's own lock (its disk store flocks DIR/lock): a CNI ADD of another container may run
	 * beside us (net_ep_add releases net_lock), and must not hand out the address between the look and
	 * the write */
	_cleanup_free_ char *lp = xasprintf("%s/lock", dir);
	_cleanup_close_ int lk = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	while (lk >= 0 && flock(lk, LOCK_EX) < 0 && errno == EINTR)
		;
	_cleanup_free_ char *owner = lease_owner(ctx, net, ip);
	if (owner)
		return streq(owner, id) || owner_is_placeholder_of(owner, id);
	_cleanup_free_ char *p = lease_path(ctx, net, ip);
	_cleanup_free_ char *body = xasprintf(RESERVED_OWNER "%s\r\n%s", id,
					      net_rec_str(e, "ifname") ? net_rec_str(e, "ifname") : "eth0");
	r = fs_write_file_atomic(p, body, strlen(body), 0644, err);
	if (r < 0)
		return berth_error_wrap(err, r, "keep address %s on network '%s'", ip, net);
	return 1;
}

/* Both addresses of entry e (the IPv6 one on dual-stack networks). */
static int hold_one(struct net_ctx *ctx, const char *id, const json_t *e, struct berth_error **err)
{
	int r = hold_addr(ctx, id, e, net_rec_str(e, "ipv4"), err);
	if (r > 0 && net_rec_str(e, "ipv6"))
		r = hold_addr(ctx, id, e, net_rec_str(e, "ipv6"), err);
	return r;
}

static void network_list_freep(struct net_network ***v)
{
	net_network_list_free(*v);
}

/* Does network `id` still exist under the name the entry recorded? */
static bool network_exists(struct net_network *const *nets, const char *id, const json_t *e)
{
	for (size_t i = 0; nets && nets[i]; i++)
		if (streq(nets[i]->id, id)) {
			_cleanup_free_ char *name = net_network_ipam_name(nets[i]);
			return streq_ptr(net_rec_str(e, "network"), name);
		}
	return false;
}

/* Forget every reservation of id at once: removing a file needs no space on a full disk. */
static void forget_all(struct net_ctx *ctx, const char *id, const json_t *res);

int net_reserve_hold(struct net_ctx *ctx, const char *id, struct berth_error **err)
{
	json_auto_t *res = net_reserve_load(ctx, id);
	if (json_object_size(res) == 0)
		return 0;
	_cleanup_(network_list_freep) struct net_network **nets = NULL;
	int r = net_network_load_all(ctx, &nets, err);
	if (r < 0)
		return r;
	const char *key;
	json_t *e;
	void *tmp;
	bool changed = false;
	json_object_foreach_safe (res, tmp, key, e) {
		/* a removed network took its leases along; an address someone has now is lost (the
		 * next start gets a new one) */
		if (!entry_valid(e) || !network_exists(nets, key, e) ||
		    (r = hold_one(ctx, id, e, err)) == 0) {
			json_object_del(res, key);
			changed = true;
		} else if (r < 0) {
			/* a reservation without its placeholder would let host-local hand the address to
			 * someone else while we still claim it: keep none rather than half of one */
			forget_all(ctx, id, res);
			return r;
		}
	}
	if (changed && (r = reserve_save(ctx, id, res, err)) < 0) {
		forget_all(ctx, id, res);
		return r;
	}
	return 0;
}

static void unhold(struct net_ctx *ctx, const char *id, const json_t *e)
{
	if (!entry_valid(e))
		return;
	const char *keys[] = { "ipv4", "ipv6" };
	for (size_t i = 0; i < 2; i++) {
		const char *ip = net_rec_str(e, keys[i]);
		_cleanup_free_ char *owner = ip ? lease_owner(ctx, net_rec_str(e, "network"), ip) : NULL;
		if (owner_is_placeholder_of(owner, id)) {
			_cleanup_free_ char *p = lease_path(ctx, net_rec_str(e, "network"), ip);
			(void)unlink(p);
		}
	}
}

const json_t *net_reserve_find(const json_t *res, const struct net_network *n)
{
	const json_t *e = json_object_get(res, n->id);
	_cleanup_free_ char *name = net_network_ipam_name(n);
	return e && entry_valid(e) && streq_ptr(net_rec_str(e, "network"), name) ? e : NULL;
}

void net_reserve_take(struct net_ctx *ctx, const char *id, const json_t *ep)
{
	json_auto_t *e =
	    json_pack("{s:s?,s:s?,s:s?}", "network", ep_ipam_name(ep), "ipv4",
		      net_rec_str(ep, "ipv4_reserved"), "ipv6", net_rec_str(ep, "ipv6_reserved"));
	unhold(ctx, id, e);
}

int net_reserve_drop(struct net_ctx *ctx, const char *id, const char *network, struct berth_error **err)
{
	json_auto_t *res = net_reserve_load(ctx, id), *dropped = json_object();
	const char *key;
	json_t *e;
	void *tmp;
	json_object_foreach_safe (res, tmp, key, e) {
		if (network && !streq(key, network) && !streq_ptr(net_rec_str(e, "network"), network))
			continue;
		json_object_set(dropped, key, e);
		json_object_del(res, key);
	}
	if (json_object_size(dropped) == 0)
		return 0;
	/* the reservation first: if it cannot be written, the placeholders still match it */
	int r = reserve_save(ctx, id, res, err);
	if (r < 0)
		return berth_error_wrap(err, r, "forget the kept address of container '%s'", id);
	json_object_foreach (dropped, key, e)
		unhold(ctx, id, e);
	return 0;
}

static void forget_all(struct net_ctx *ctx, const char *id, const json_t *res)
{
	_cleanup_free_ char *p = reserve_path(ctx, id);
	(void)unlink(p);
	const char *key;
	json_t *e;
	json_object_foreach ((json_t *)res, key, e)
		unhold(ctx, id, e);
}

bool net_reserve_owns_lease(struct net_ctx *ctx, const char *owner, const char *network, const char *ip)
{
	if (!owner || !startswith(owner, RESERVED_OWNER))
		return false;
	const char *id = owner + strlen(RESERVED_OWNER);
	json_auto_t *res = net_reserve_load(ctx, id);
	const char *key;
	json_t *e;
	json_object_foreach (res, key, e)
		if (entry_valid(e) && streq(net_rec_str(e, "network"), network) &&
		    (streq(net_rec_str(e, "ipv4"), ip) || streq_ptr(net_rec_str(e, "ipv6"), ip)))
			return true;
	return false;
}

void net_reserve_gc(struct net_ctx *ctx, const char *const *keep, const char *const *reserve)
{
	_cleanup_free_ char *dir = xasprintf("%s/reserved", ctx->root_dir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!endswith(de->d_name, ".json"))
			continue;
		_cleanup_free_ char *id = xstrndup(de->d_name, strlen(de->d_name) - 5);
		if (!net_id_valid(id)) {
			(void)unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (!strv_contains(keep, id) && !strv_contains(reserve, id))
			(void)net_reserve_drop(ctx, id, NULL, NULL);
		else
			(void)net_reserve_hold(
			    ctx, id, NULL); /* placeholders back, entries of removed networks gone */
	}
}
