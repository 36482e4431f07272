/*
 * overlay.c - the agent's VXLAN dataplane (overlay.h): the device, the
 * firewall chains, and a thread that long-polls the server's peer list and
 * reconciles the kernel with it through iproute2 (proc_run; no shell).
 *
 * Trade-off: every reconcile re-reads the device's routes, neighbours and fdb
 * from the kernel (three short `ip -j` runs) instead of trusting a cache, so a
 * restarted agent, an operator's `ip route del`, or a half-applied earlier
 * reconcile are all repaired the same way. Peer changes are rare; the cost is
 * a few milliseconds each.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/overlay.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "host/host.h"
#include "host/netops.h"
#include "net/net.h"

#define TOOL_TIMEOUT_MS 10000
#define RETRY_MS        1000
/*
 * A long poll that answers with the peers already applied does not re-run the
 * tools (eight processes: device, firewall, kernel state) unless this long has
 * passed since the last full pass, which repairs what someone changed by hand.
 */
#define RESYNC_MS       (5 * 60 * 1000)
/* iproute2 JSON of one device stays far below this. */
#define TOOL_MAX_OUTPUT (4 << 20)

struct overlay {
	char *dev, *subnet, *cidr, *local, *mac, *vtep;
	int vni;
	overlay_fetch_fn fetch;
	void *userdata;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
};

/* Run a tool; stdout into out (may be NULL). -EIO with its stderr when it exits non-zero. */
static int tool(const char *const *argv, const char *input, struct strbuf *out, struct berth_error **err)
{
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_strbuf_ struct strbuf errout = STRBUF_INIT;
	int status = 0;
	int r = proc_run(&o, input, input ? strlen(input) : 0, out, &errout, TOOL_MAX_OUTPUT, TOOL_TIMEOUT_MS,
			 &status, err);
	if (r < 0)
		return berth_error_wrap(err, r, "run '%s'", argv[0]);
	if (proc_exit_code(status) != 0) {
		strbuf_trim_trailing(&errout);
		_cleanup_strbuf_ struct strbuf cmd = STRBUF_INIT;
		for (size_t i = 0; argv[i]; i++)
			strbuf_addf(&cmd, "%s%s", i ? " " : "", argv[i]);
		return berth_error_msg(err, EIO, "'%s' failed: %s", cmd.buf, errout.buf);
	}
	return 0;
}

/* ---- device ---- */

/* The interface holding addr (for the vxlan's lower device and MTU), or NULL. */
static char *iface_of(const char *addr)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	if (tool((const char *[]){ "ip", "-j", "-4", "addr", "show", NULL }, NULL, &out, NULL) < 0)
		return NULL;
	_cleanup_json_ json_t *links = json_loads(out.buf, 0, NULL);
	size_t i, k;
	json_t *l, *a;
	json_array_foreach (links, i, l)
		json_array_foreach (json_object_get(l, "addr_info"), k, a)
			if (streq_ptr(json_string_value(json_object_get(a, "local")), addr))
				return xstrdup(json_string_value(json_object_get(l, "ifname")));
	return NULL;
}

/* Whether the existing device (JSON of `ip -d -j link show`) is the one we want. */
static bool device_matches(struct overlay *o, json_t *link)
{
	json_t *info = json_object_get(json_object_get(link, "linkinfo"), "info_data");
	const char *kind = json_string_value(json_object_get(json_object_get(link, "linkinfo"), "info_kind"));
	const char *mac = json_string_value(json_object_get(link, "address"));
	return streq_ptr(kind, "vxlan") && json_integer_value(json_object_get(info, "id")) == o->vni &&
	       streq_ptr(json_string_value(json_object_get(info, "local")), o->local) &&
	       json_integer_value(json_object_get(info, "port")) == OVERLAY_PORT && mac &&
	       strcasecmp(mac, o->mac) == 0;
}

static int device_create(struct overlay *o, struct berth_error **err)
{
	char vni[16], port[8];
	snprintf(vni, sizeof(vni), "%d", o->vni);
	snprintf(port, sizeof(port), "%d", OVERLAY_PORT);
	_cleanup_free_ char *lower = iface_of(o->local);
	const char *argv[24];
	size_t n = 0;
	const char *head[] = { "ip", "link", "add", o->dev, "address", o->mac };
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		argv[n++] = head[i];
	if (!lower) { /* then the kernel's MTU is 1500: leave room for the 50-byte VXLAN header */
		argv[n++] = "mtu";
		argv[n++] = "1450";
	}
	const char *vx[] = { "type", "vxlan", "id", vni, "local", o->local, "dstport", port, "nolearning" };
	for (size_t i = 0; i < ARRAY_SIZE(vx); i++)
		argv[n++] = vx[i];
	if (lower) { /* the kernel derives the MTU from the lower device */
		argv[n++] = "dev";
		argv[n++] = lower;
	}
	argv[n] = NULL;
	return tool(argv, NULL, NULL, err);
}

/* Make the device exist with our VNI, local address and MAC, carry the VTEP /32, and be up. */
static int device_ensure(struct overlay *o, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	struct berth_error *ignored = NULL;
	bool exists = tool((const char *[]){ "ip", "-d", "-j", "addr", "show", "dev", o->dev, NULL }, NULL,
			   &out, &ignored) == 0;
	berth_error_free(ignored);
	_cleanup_json_ json_t *j = exists ? json_loads(out.buf, 0, NULL) : NULL;
	json_t *link = json_array_get(j, 0);
	int r;
	if (exists && !device_matches(o, link)) {
		log_fields(LOG_LEVEL_INFO, "overlay: recreating the vxlan device", "device", o->dev, NULL);
		if ((r = tool((const char *[]){ "ip", "link", "del", o->dev, NULL }, NULL, NULL, err)) < 0)
			return r;
		exists = false;
		link = NULL;
	}
	if (!exists && (r = device_create(o, err)) < 0)
		return r;
	/* exactly one address: the VTEP's (a changed subnet leaves an old one behind) */
	bool have = false, other = false;
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(link, "addr_info"), i, a) {
		bool mine = streq_ptr(json_string_value(json_object_get(a, "local")), o->vtep) &&
			    json_integer_value(json_object_get(a, "prefixlen")) == 32;
		have |= mine;
		other |= !mine && streq_ptr(json_string_value(json_object_get(a, "family")), "inet");
	}
	if (other && (r = tool((const char *[]){ "ip", "-4", "addr", "flush", "dev", o->dev, NULL }, NULL,
			       NULL, err)) < 0)
		return r;
	_cleanup_free_ char *cidr = xasprintf("%s/32", o->vtep);
	if ((!have || other) &&
	    (r = tool((const char *[]){ "ip", "addr", "replace", cidr, "dev", o->dev, NULL }, NULL, NULL,
		      err)) < 0)
		return r;
	return tool((const char *[]){ "ip", "link", "set", o->dev, "up", NULL }, NULL, NULL, err);
}

/* ---- firewall ---- */

/* Make "-j target" the first rule of table/chain (the net module inserts its own jumps at 1 too). */
static int jump_first(const char *table, const char *chain, const char *target, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r =
	    tool((const char *[]){ "iptables", "-w", "5", "-t", table, "-S", chain, NULL }, NULL, &out, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *want = xasprintf("-A %s -j %s", chain, target);
	_cleanup_free_ char *prefix = xasprintf("-A %s ", chain);
	const char *first = strstr(out.buf, prefix);
	if (first && startswith(first, want) && (first[strlen(want)] == '\n' || !first[strlen(want)]))
		return 0;
	for (int i = 0; i < 8; i++) { /* drop our jumps wherever they are, then put one first */
		struct berth_error *e = NULL;
		int d = tool(
		    (const char *[]){ "iptables", "-w", "5", "-t", table, "-D", chain, "-j", target, NULL },
		    NULL, NULL, &e);
		berth_error_free(e);
		if (d < 0)
			break;
	}
	return tool(
	    (const char *[]){ "iptables", "-w", "5", "-t", table, "-I", chain, "1", "-j", target, NULL },
	    NULL, NULL, err);
}

/*
 * Traffic between task subnets of the cluster is neither dropped nor
 * masqueraded: ACCEPT in our filter chain (ahead of a DROP policy) and in our
 * nat chain (ACCEPT in nat POSTROUTING ends NAT for the packet, before the
 * task network's MASQUERADE). The chains are rebuilt whole by one
 * iptables-restore --noflush: declaring a chain flushes it.
 */
static int firewall_ensure(struct overlay *o, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf in = STRBUF_INIT;
	strbuf_addf(&in,
		    "*filter\n:" OVERLAY_FW_FILTER " - [0:0]\n-A " OVERLAY_FW_FILTER
		    " -s %s -d %s -j ACCEPT\nCOMMIT\n"
		    "*nat\n:" OVERLAY_FW_NAT " - [0:0]\n-A " OVERLAY_FW_NAT
		    " -s %s -d %s -j ACCEPT\nCOMMIT\n",
		    o->cidr, o->cidr, o->cidr, o->cidr);
	int r = tool((const char *[]){ "iptables-restore", "-w", "5", "--noflush", NULL }, in.buf, NULL, err);
	if (r < 0)
		return berth_error_wrap(err, r, "overlay firewall chains");
	if ((r = jump_first("filter", "FORWARD", OVERLAY_FW_FILTER, err)) < 0)
		return r;
	return jump_first("nat", "POSTROUTING", OVERLAY_FW_NAT, err);
}

/* ---- reconcile ---- */

static int kernel_state(struct overlay *o, struct overlay_state *ret, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf routes = STRBUF_INIT, neighs = STRBUF_INIT, fdbs = STRBUF_INIT;
	int r;
	if ((r = tool((const char *[]){ "ip", "-4", "-j", "route", "show", "dev", o->dev, NULL }, NULL,
		      &routes, err)) < 0 ||
	    (r = tool((const char *[]){ "ip", "-4", "-j", "neigh", "show", "dev", o->dev, NULL }, NULL,
		      &neighs, err)) < 0 ||
	    (r = tool((const char *[]){ "bridge", "-j", "fdb", "show", "dev", o->dev, NULL }, NULL, &fdbs,
		      err)) < 0)
		return r;
	agent_overlay_parse_kernel(routes.buf, neighs.buf, fdbs.buf, ret);
	return 0;
}

/* Bring the device's routes/neighbours/fdb to what peers want; every failed op is retried next time. */
static int reconcile(struct overlay *o, const json_t *peers, struct berth_error **err)
{
	int r = device_ensure(o, err);
	if (r >= 0)
		r = firewall_ensure(o, err);
	if (r < 0)
		return r;
	struct overlay_state want, cur;
	size_t skipped = 0;
	agent_overlay_desired(peers, o->subnet, &want, &skipped);
	if (skipped)
		log_fields(LOG_LEVEL_WARN, "overlay: peers with invalid or overlapping subnets ignored",
			   NULL);
	if ((r = kernel_state(o, &cur, err)) < 0) {
		agent_overlay_state_done(&want);
		return r;
	}
	struct overlay_op *ops = NULL;
	size_t n = 0, failed = 0;
	agent_overlay_plan(&cur, &want, &ops, &n);
	for (size_t i = 0; i < n; i++) {
		_cleanup_strv_ char **argv = agent_overlay_op_argv(&ops[i], o->dev);
		struct berth_error *e = NULL;
		if (tool((const char *const *)argv, NULL, NULL, &e) < 0) {
			_cleanup_free_ char *m = berth_error_string(e);
			log_fields(LOG_LEVEL_WARN, "overlay: operation failed", "error", m, NULL);
			failed++;
		}
		berth_error_free(e);
	}
	if (n) {
		char ops_s[24];
		snprintf(ops_s, sizeof(ops_s), "%zu", n);
		log_fields(LOG_LEVEL_INFO, "overlay: peers applied", "operations", ops_s, NULL);
	}
	free(ops);
	agent_overlay_state_done(&want);
	agent_overlay_state_done(&cur);
	return failed ? berth_error_msg(err, EIO, "%zu of %zu overlay operations failed", failed, n) : 0;
}

static bool wait_retry(struct overlay *o)
{
	struct timespec ts = proc_deadline(CLOCK_MONOTONIC, RETRY_MS);
	pthread_mutex_lock(&o->lock);
	while (!o->stopping && pthread_cond_timedwait(&o->cond, &o->lock, &ts) == 0)
		;
	bool go = !o->stopping;
	pthread_mutex_unlock(&o->lock);
	return go;
}

static bool stopping(struct overlay *o)
{
	pthread_mutex_lock(&o->lock);
	bool s = o->stopping;
	pthread_mutex_unlock(&o->lock);
	return s;
}

static void *overlay_main(void *arg)
{
	struct overlay *o = arg;
	int64_t since = 0;
	bool dirty = false; /* the last reconcile failed: do it again without waiting for a change */
	_cleanup_json_ json_t *applied = NULL; /* the peers of the last successful reconcile */
	uint64_t applied_at = 0;
	while (!stopping(o)) {
		_cleanup_free_ char *path = xasprintf("/agent/v1/peers?since=%lld&wait=%d", (long long)since,
						      since && !dirty ? OVERLAY_POLL_SEC : 0);
		_cleanup_json_ json_t *resp = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		int r = o->fetch(o->userdata, path, (OVERLAY_POLL_SEC + 10) * 1000L, &resp, &err);
		if (r == -EACCES)
			break;
		if (r >= 0) {
			json_t *peers = json_object_get(resp, "peers");
			json_t *rev = json_object_get(resp, "revision");
			bool same = !dirty && applied && json_equal(applied, peers) &&
				    proc_now_ms() - applied_at < RESYNC_MS;
			if (same || (r = reconcile(o, peers, &err)) >= 0) {
				since = json_is_integer(rev) ? json_integer_value(rev) : 0;
				dirty = false;
				if (!same) {
					json_decref(applied);
					applied = json_incref(peers);
					applied_at = proc_now_ms();
				}
				continue;
			}
			dirty = true;
		}
		if (stopping(o))
			break;
		_cleanup_free_ char *m = berth_error_string(err);
		log_fields(LOG_LEVEL_WARN, "overlay: peers not applied, retrying", "error", m, NULL);
		if (!wait_retry(o))
			break;
	}
	return NULL;
}

/* ---- task network ---- */

/* A task network made with another subnet (before the server assigned this one) goes, if unused. */
static int task_network_check(struct host *h, const char *name, const char *subnet, struct berth_error **err)
{
	if (!h->net)
		return 0;
	struct net_ctx *nc = host_netops_net(h->net);
	struct net_network *n = NULL;
	if (net_network_get(nc, name, &n, NULL) < 0)
		return 0;
	bool same = n->subnet && streq(n->subnet, subnet);
	_cleanup_free_ char *had = n->subnet ? xstrdup(n->subnet) : NULL;
	net_network_free(n);
	if (same)
		return 0;
	struct berth_error *e = NULL;
	int r = net_network_remove(nc, name, &e);
	if (r == -EBUSY) {
		log_fields(LOG_LEVEL_WARN,
			   "overlay: the task network has another subnet and running tasks; peers reach "
			   "its new tasks once it is empty and the agent restarts",
			   "network", name, "subnet", had ? had : "", "assigned", subnet, NULL);
		berth_error_free(e);
		return 0;
	}
	if (r < 0) {
		if (err)
			*err = e;
		else
			berth_error_free(e);
		return berth_error_wrap(err, r, "replace task network '%s'", name);
	}
	log_fields(LOG_LEVEL_INFO, "overlay: task network removed to take the assigned subnet", "network",
		   name, "old", had ? had : "", "subnet", subnet, NULL);
	return 0;
}

/* ---- lifecycle ---- */

static struct overlay *overlay_free(struct overlay *o)
{
	if (!o)
		return NULL;
	free(o->dev);
	free(o->subnet);
	free(o->cidr);
	free(o->local);
	free(o->mac);
	free(o->vtep);
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	free(o);
	return NULL;
}

int agent_overlay_start(const struct overlay_config *cfg, struct overlay **ret, struct berth_error **err)
{
	if (!cfg->task_subnet || !cfg->cluster_cidr || !cfg->local_address || !cfg->vtep_mac || !cfg->fetch ||
	    cfg->vni < 1 || cfg->vni > 16777215)
		return berth_error_msg(err, EINVAL, "overlay: the server gave no subnet, VNI or VTEP MAC");
	const char *slash = strchr(cfg->task_subnet, '/');
	if (!slash)
		return berth_error_msg(err, EINVAL, "overlay: invalid task subnet '%s'", cfg->task_subnet);
	struct overlay *o = xcalloc(1, sizeof(*o));
	o->dev = xstrdup(cfg->device ? cfg->device : OVERLAY_DEVICE);
	o->subnet = xstrdup(cfg->task_subnet);
	o->cidr = xstrdup(cfg->cluster_cidr);
	o->local = xstrdup(cfg->local_address);
	o->mac = xstrdup(cfg->vtep_mac);
	o->vtep = xstrndup(cfg->task_subnet, (size_t)(slash - cfg->task_subnet));
	o->vni = cfg->vni;
	o->fetch = cfg->fetch;
	o->userdata = cfg->userdata;
	pthread_mutex_init(&o->lock, NULL);
	proc_cond_init_monotonic(&o->cond);
	int r = task_network_check(cfg->host, cfg->task_network, cfg->task_subnet, err);
	if (r >= 0)
		r = device_ensure(o, err);
	if (r >= 0)
		r = firewall_ensure(o, err);
	if (r >= 0 && (r = -pthread_create(&o->thread, NULL, overlay_main, o)) < 0)
		berth_error_set(err, -r, "start overlay thread");
	if (r < 0) {
		overlay_free(o);
		return berth_error_wrap(err, r, "overlay");
	}
	o->running = true;
	log_fields(LOG_LEVEL_INFO, "overlay up", "device", o->dev, "subnet", o->subnet, "local", o->local,
		   NULL);
	*ret = o;
	return 0;
}

struct overlay *agent_overlay_stop(struct overlay *o)
{
	if (!o)
		return NULL;
	pthread_mutex_lock(&o->lock);
	o->stopping = true;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
	if (o->running)
		pthread_join(o->thread, NULL);
	return overlay_free(o);
}

int agent_overlay_source_address(const char *host_port, char **ret, struct berth_error **err)
{
	const char *colon = strrchr(host_port, ':');
	if (!colon || colon == host_port || host_port[0] == '[')
		return berth_error_msg(err, EINVAL, "'%s': expected an IPv4 HOST:PORT", host_port);
	_cleanup_free_ char *host = xstrndup(host_port, (size_t)(colon - host_port));
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *ai = NULL;
	int g = getaddrinfo(host, colon + 1, &hints, &ai);
	if (g != 0)
		return berth_error_msg(err, EHOSTUNREACH, "resolve '%s': %s", host, gai_strerror(g));
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = 0;
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		r = berth_error_errno(err, "route to '%s'", host);
	freeaddrinfo(ai);
	if (r < 0)
		return r;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char buf[INET_ADDRSTRLEN];
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
	    !inet_ntop(AF_INET, &sa.sin_addr, buf, sizeof(buf)))
		return berth_error_errno(err, "source address towards '%s'", host);
	*ret = xstrdup(buf);
	return 0;
}
