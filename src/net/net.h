/*
 * net.h - container networking: the whole public API of src/net/.
 *
 * berth networks are CNI network configuration lists (bridge + host-local IPAM,
 * portmap when ports are published) executed per the CNI 1.0 protocol by our
 * own executor (net/cni.h, private). On top of it this module keeps:
 *
 *   - networks: a default "bridge" network (bridge berth0, a subnet that does
 *     not clash with a route of the host) plus user-defined ones, persisted as
 *     JSON under <root>/net/networks/; "host" and "none" are pseudo networks;
 *   - attachments: one record per (container, network) under
 *     <root>/net/attachments/, written BEFORE the CNI ADD runs, so that after a
 *     crash net_gc() can DEL whatever was half made (veths, iptables rules,
 *     host-local leases live in <root>/net/ipam/);
 *   - a network namespace per container: a bind-mounted nsfs file
 *     <exec_root>/netns/<container id>, created and deleted here;
 *   - name resolution by hosts files: <root>/net/containers/<id>/hosts lists
 *     every container (name, hostname, aliases) on the user networks the
 *     container shares; the files are rewritten IN PLACE (same inode, so a
 *     bind mount into the container sees the change) on connect/disconnect.
 *     resolv.conf and hostname files are generated beside it; optionally an
 *     embedded resolver (net_dns_*) answers on each user network's gateway;
 *   - isolation between networks and --internal: iptables chains
 *     BERTH-ISOLATION-1/2-<tag> (tag: a hash of the daemon's root)
 *     rebuilt from the network list (one iptables-restore call).
 *
 * Every call that changes state takes an exclusive flock on <root>/net/lock,
 * so several processes (daemon, `berth net-tool`) may share a root. The calls
 * change the network namespace of the CALLING THREAD only briefly (creating a
 * netns, checking a port) and restore it before returning.
 *
 * Conventions: 0 / -errno, `err` last (may be NULL), outputs untouched on
 * failure. Every "free" function accepts NULL and returns NULL. Strings in the
 * structs below are owned by the struct they sit in.
 *
 * Typical engine use:
 *
 *     struct net_ctx *net;                  // once, at daemon start
 *     net_ctx_open(&(struct net_config){ .root = r, .exec_root = x }, &net, &err);
 *     net_gc(net, live_ids, stopped_ids, NULL, &err); // after a restart
 *
 *     struct net_container_opts o = { .container_id = id, .name = "web", ... };
 *     struct net_container *c;
 *     net_container_prepare(net, &o, &c, &err);      // before the runtime starts
 *     // spec: linux.namespaces net path = c->netns_path (NULL: host network);
 *     // bind mounts c->hosts_path, c->resolv_conf_path, c->hostname_path
 *     ...
 *     net_container_stop(net, id, &err);            // after the container exited
 *     net_container_teardown(net, id, &err);        // when it is removed
 */
#ifndef BERTH_NET_NET_H
#define BERTH_NET_NET_H

#include <jansson.h>

#include "common/error.h"

/* Default location of the CNI plugins (Debian's containernetworking-plugins). */
#define NET_DEFAULT_CNI_PATH "/usr/lib/cni"
/* Name and bridge device of the default network. */
#define NET_DEFAULT_NETWORK  "bridge"
#define NET_DEFAULT_BRIDGE   "berth0"
/* Longest network name we accept (docker has no limit; we keep files sane). */
#define NET_NAME_MAX         128
/* Most published ports (after range expansion) for one container. */
#define NET_MAX_PORTS        4096
/* "aa:bb:cc:dd:ee:ff" (hex digits of either case). */
bool net_mac_valid(const char *s);
/* Most networks a container can be attached to at once (eth0..eth31). */
#define NET_MAX_ENDPOINTS 32

struct net_ctx;

struct net_config {
	const char *root;           /* persistent state, e.g. /var/lib/berth (required) */
	const char *exec_root;      /* runtime state, e.g. /run/berth (required) */
	const char *cni_path;       /* ':'-separated plugin dirs; NULL: NET_DEFAULT_CNI_PATH */
	const char *bridge_name;    /* default network's bridge; NULL: NET_DEFAULT_BRIDGE */
	const char *bridge_subnet;  /* default network's subnet; NULL: first free of the pool */
	const char *bridge_subnet6; /* default network dual stack with this IPv6 subnet (dockerd's
				       --ipv6 --fixed-cidr-v6); NULL: IPv4 only */
	int plugin_timeout_ms;      /* per plugin call; 0: 10000 */
};

/* Open (and on first use initialise) the state under cfg->root. Creates the
 * default "bridge" network record if missing. Caller frees with net_ctx_free. */
int net_ctx_open(const struct net_config *cfg, struct net_ctx **ret, struct berth_error **err);
struct net_ctx *net_ctx_free(struct net_ctx *ctx);
/*
 * For a daemon stopping cleanly with no container left running: remove its own
 * BERTH-ISOLATION-1/2-<tag> and BERTH-POSTROUTING-<tag> chains and the jumps to them
 * (ip6tables too once it had a dual-stack network), and forget that they were built,
 * so the next net_ctx_open() rebuilds them. The bridges stay, as dockerd keeps docker0.
 */
int net_ctx_remove_firewall(struct net_ctx *ctx, struct berth_error **err);

/* ---- networks ---------------------------------------------------------- */

struct net_network {
	char *id;        /* 64 hex */
	char *name;      /* unique */
	char *driver;    /* "bridge", or "host"/"null" for the pseudo networks */
	char *bridge;    /* device name, NULL for pseudo networks */
	char *subnet;    /* "10.1.0.0/24" (canonical), NULL for pseudo networks */
	char *gateway;   /* "10.1.0.1" */
	char *ip_range;  /* sub-range containers get addresses from, or NULL */
	bool ipv6;       /* dual stack: containers get an address of subnet6 too */
	char *subnet6;   /* "fd00:db8::/64" (canonical) when ipv6, else NULL */
	char *gateway6;  /* "fd00:db8::1" when ipv6 */
	char *ip_range6; /* sub-range of subnet6 containers get addresses from, or NULL */
	bool internal;   /* no outbound NAT, no default route, no traffic off the bridge */
	char **labels;   /* NULL-terminated "key=value", never NULL */
	char **options;  /* NULL-terminated "key=value" driver options, never NULL */
	char **aux;    /* NULL-terminated "name=ip" IPAM auxiliary addresses (never handed out), never NULL */
	char *created; /* RFC 3339 */
};

struct net_network *net_network_free(struct net_network *n);
void net_network_list_free(struct net_network **v); /* NULL-terminated vector */
static inline void net_network_freep(struct net_network **n)
{
	*n = net_network_free(*n);
}

struct net_create_opts {
	const char *name;      /* required: 1..NET_NAME_MAX bytes, no control characters (as docker) */
	const char *driver;    /* NULL or "bridge" (others refused with -EOPNOTSUPP) */
	const char *subnet;    /* CIDR; NULL: next free /24 of 10.89.0.0/16 .. */
	const char *gateway;   /* NULL: first host address of the subnet */
	const char *ip_range;  /* CIDR inside subnet, or NULL */
	bool ipv6;             /* dual stack (docker --ipv6): subnet6 required */
	const char *subnet6;   /* IPv6 prefix, e.g. a ULA fd00:db8::/64 */
	const char *gateway6;  /* NULL: the first address of subnet6 */
	const char *ip_range6; /* IPv6 CIDR inside subnet6, or NULL */
	bool internal;
	const char *const *labels;  /* "k=v", NULL-terminated, may be NULL */
	const char *const *options; /* "k=v"; com.docker.network.bridge.name is honoured */
	const char *const *aux;     /* "name=ip" IPAM AuxiliaryAddresses: inside the subnet, kept free */
};

/*
 * Create a user-defined network. Refused with a clear message: a duplicate
 * name (-EEXIST), a reserved name (bridge/host/none), an invalid CIDR or
 * gateway (-EINVAL), a subnet overlapping another network's or a host route
 * (-EEXIST). Nothing is left behind on failure. *ret (may be NULL) gets the
 * new network.
 */
int net_network_create(struct net_ctx *ctx, const struct net_create_opts *opts, struct net_network **ret,
		       struct berth_error **err);
/* Find by exact name, full id or unique id prefix. -ENOENT "network 'x' not found". */
int net_network_get(struct net_ctx *ctx, const char *name_or_id, struct net_network **ret,
		    struct berth_error **err);
/* All networks including the pseudo ones, sorted by name. */
int net_network_list(struct net_ctx *ctx, struct net_network ***ret, struct berth_error **err);
/*
 * CNI STATUS of a network's plugin chain: plugins that speak CNI 1.1 are asked
 * STATUS, older ones (Debian 12's 1.1.1 plugins speak CNI 1.0) must answer VERSION.
 */
int net_network_status(struct net_ctx *ctx, const char *name_or_id, struct berth_error **err);
/* Remove a user network; -EBUSY while containers are attached; predefined ones -EPERM. */
int net_network_remove(struct net_ctx *ctx, const char *name_or_id, struct berth_error **err);
/* Remove every user network without attachments; *ret_removed (may be NULL) gets their names. */
int net_network_prune(struct net_ctx *ctx, char ***ret_removed, struct berth_error **err);
/* Same, only networks matching docker prune filters (see net_api_network_match; may be NULL). */
int net_network_prune_filtered(struct net_ctx *ctx, const json_t *filters, char ***ret_removed,
			       struct berth_error **err);

/* ---- ports ------------------------------------------------------------- */

/*
 * portproxy.c: publishes the kernel cannot DNAT (an IPv6 loopback host address, "[::1]:8080:80")
 * go through a userland forwarder process per mapping, as dockerd's docker-proxy.
 */
bool net_port_needs_proxy(const char *host_ip);
/* Bind (and for tcp listen on) [host_ip]:port; EADDRINUSE with dockerd's message when taken. */
int net_port_proxy_listen(const char *proto, const char *host_ip, uint16_t port, int *ret_fd,
			  struct berth_error **err);
/* Forward what arrives on fd (from net_port_proxy_listen) to to_ip:to_port; returns only on error. */
int net_port_proxy_serve(int fd, const char *proto, const char *to_ip, uint16_t to_port,
			 struct berth_error **err);

struct net_port {
	char host_ip[46];   /* "" = all addresses */
	uint16_t host_port; /* 0 before allocation for -P / "-p 80" */
	uint16_t container_port;
	char proto[5]; /* "tcp" | "udp" | "sctp" */
};

/*
 * Parse one docker -p spec and append the mappings to *v / *n (realloc'd):
 * "80", "8080:80", "8080-8081:80-81", "127.0.0.1:8080:80", "127.0.0.1::80",
 * "[::1]:8080:80", each with an optional "/udp" | "/tcp" | "/sctp". Ranges
 * must have equal lengths (or a host range with a single container port).
 */
int net_port_parse(const char *spec, struct net_port **v, size_t *n, struct berth_error **err);
/* For -P: append one mapping with host_port 0 per exposed "80/tcp" | "53/udp" | "80". */
int net_port_expose(const char *exposed, struct net_port **v, size_t *n, struct berth_error **err);

/* ---- containers -------------------------------------------------------- */

enum net_mode {
	NET_MODE_BRIDGE = 0, /* endpoints below (default: the "bridge" network) */
	NET_MODE_NONE,       /* own netns with only lo */
	NET_MODE_HOST,       /* no netns: the daemon's */
	NET_MODE_CONTAINER,  /* join another container's netns (share_with) */
};

struct net_endpoint_opts {
	const char *network;        /* name or id */
	const char *const *aliases; /* extra DNS names on this network, NULL-terminated, may be NULL */
	const char *ipv4;           /* static address (user networks with a subnet only), or NULL */
	const char *mac;            /* "02:42:..." MAC address of the interface, or NULL (random / kept) */
	const char *ipv6;           /* static IPv6 address (dual-stack user networks), or NULL */
};

struct net_container_opts {
	const char *container_id; /* required, [a-zA-Z0-9_.-]{1,128} */
	const char *name;         /* container name (DNS name on user networks), may be NULL */
	const char *hostname;     /* NULL: first 12 chars of the id */
	const char *domainname;   /* may be NULL */
	enum net_mode mode;
	const char *share_with; /* NET_MODE_CONTAINER: the other container's id (must be prepared) */
	const struct net_endpoint_opts *endpoints; /* NET_MODE_BRIDGE; n == 0: the default network */
	size_t n_endpoints;
	const struct net_port *ports; /* published ports (host_port 0 = pick a free one) */
	size_t n_ports;
	const char *const *dns;         /* --dns servers; NULL: from the host's resolv.conf */
	const char *const *dns_search;  /* --dns-search */
	const char *const *dns_options; /* --dns-option */
	const char *const
	    *extra_hosts;  /* --add-host "name:ip" ("host-gateway" = gateway of the first network) */
	bool embedded_dns; /* resolv.conf -> the embedded resolver (net_dns) on the first user network,
			      unless --dns is given; the hosts files are kept either way */
};

struct net_endpoint {
	char *network_id, *network_name;
	char *endpoint_id; /* 64 hex */
	char *ifname;      /* "eth0" */
	char *mac;         /* "aa:bb:..." */
	char *ipv4;        /* "10.1.0.2" */
	int prefix_len;    /* 24 */
	char *gateway;     /* "10.1.0.1" or NULL (internal) */
	char *ipv6;        /* "fd00:db8::2" on dual-stack networks, else NULL */
	int prefix_len6;   /* 64 */
	char *gateway6;    /* "fd00:db8::1" or NULL */
	char **aliases; /* NULL-terminated, never NULL (user networks: name, hostname, short id, --alias) */
	json_t *cni_result; /* the validated CNI result of the chain, owned */
};

struct net_container {
	char *id;
	enum net_mode mode;
	char *netns_path;       /* NULL in host mode */
	char *hosts_path;       /* bind-mount to /etc/hosts */
	char *resolv_conf_path; /* bind-mount to /etc/resolv.conf */
	char *hostname_path;    /* bind-mount to /etc/hostname */
	char *hostname;
	struct net_port *ports; /* as published (host ports allocated), n_ports entries */
	size_t n_ports;
	struct net_endpoint *endpoints;
	size_t n_endpoints;
};

struct net_container *net_container_free(struct net_container *c);
static inline void net_container_freep(struct net_container **c)
{
	*c = net_container_free(*c);
}

/*
 * Make the network of a container ready before its process starts: create the
 * netns (not for host/container modes), bring lo up, run the CNI chain for
 * each endpoint (eth0, eth1, ...), publish ports on the first endpoint, write
 * hosts/resolv.conf/hostname and refresh the hosts files of the other
 * containers on the same user networks. On any failure everything done so
 * far is undone (CNI DEL in reverse order, netns removed) and the error says
 * which step failed: unknown network (-ENOENT), a host port already in use
 * (-EADDRINUSE), an address taken or outside the subnet (-EADDRNOTAVAIL).
 * Calling it again for a prepared id fails with -EEXIST.
 */
int net_container_prepare(struct net_ctx *ctx, const struct net_container_opts *opts,
			  struct net_container **ret, struct berth_error **err);
/* Current state of a prepared container. -ENOENT if unknown. */
int net_container_get(struct net_ctx *ctx, const char *container_id, struct net_container **ret,
		      struct berth_error **err);
/* Ids of every container with network state, NULL-terminated. */
int net_container_list(struct net_ctx *ctx, char ***ret, struct berth_error **err);
/*
 * Undo net_container_prepare: CNI DEL of every endpoint (reverse order), remove
 * the netns, the files, and this container from other containers' hosts files.
 * Best effort: continues past failures and reports the first one; unknown id
 * is success (idempotent). Addresses kept by net_container_stop are released
 * too: call it when the container is removed.
 */
int net_container_teardown(struct net_ctx *ctx, const char *container_id, struct berth_error **err);
/*
 * net_container_teardown for a container that stopped but still exists: the
 * IPv4 address and MAC of each endpoint stay reserved for it (no other
 * container gets them, also across a restart of the daemon given the id in
 * net_gc's `reserve`), and its next net_container_prepare gets them again on
 * those networks, as docker keeps a container's address across stop/start and
 * restart policies. A static --ip that differs replaces the kept address.
 * Reservations end with net_container_teardown, net_container_release,
 * net_container_disconnect, the network's removal, or net_gc without the id.
 */
int net_container_stop(struct net_ctx *ctx, const char *container_id, struct berth_error **err);
/*
 * Forget the addresses kept for a container on `network` (name or id; NULL: on
 * every network), e.g. when a stopped container is disconnected. Idempotent.
 */
int net_container_release(struct net_ctx *ctx, const char *container_id, const char *network,
			  struct berth_error **err);
/* CNI CHECK of every endpoint with its cached result: -EIO naming the plugin when it drifted. */
int net_container_check(struct net_ctx *ctx, const char *container_id, struct berth_error **err);
/* Attach a prepared (bridge-mode) container to one more network (docker network connect). */
int net_container_connect(struct net_ctx *ctx, const char *container_id, const struct net_endpoint_opts *ep,
			  struct berth_error **err);
/* Detach from a network (docker network disconnect); -ENOENT if not attached. */
int net_container_disconnect(struct net_ctx *ctx, const char *container_id, const char *network,
			     struct berth_error **err);

/*
 * Garbage-collect after a crash: every container with network state whose id
 * is not in `keep` (NULL-terminated, may be NULL = keep nothing) is torn down,
 * including half-made attachments (record written, ADD never finished): as
 * net_container_stop when the id is in `reserve` (stopped containers that
 * still exist; may be NULL), else as net_container_teardown. Reservations of
 * ids in neither list are released. Afterwards leftover host-local leases of
 * unknown containers are deleted and the isolation chains rebuilt.
 * *ret_removed (may be NULL) gets the ids torn down.
 */
int net_gc(struct net_ctx *ctx, const char *const *keep, const char *const *reserve, char ***ret_removed,
	   struct berth_error **err);

/* ---- embedded DNS ------------------------------------------------------ */

/*
 * A resolver for user networks, for the daemon to run in a thread: UDP on
 * <network gateway>:port (53 when 0) for every user network, following
 * network create/remove by itself. Names (container name, --alias, short id)
 * of containers on the network the query arrived on get A records; other
 * names are forwarded to the resolvers of the daemon's /etc/resolv.conf
 * (SERVFAIL when none answers; internal networks: NXDOMAIN, no forwarding).
 * Containers use it when prepared with embedded_dns (their resolv.conf then
 * names the gateway of their first user network).
 */
struct net_dns;
int net_dns_open(struct net_ctx *ctx, uint16_t port, struct net_dns **ret, struct berth_error **err);
/*
 * An extra record source for queries arriving on network (name or id; it
 * need not exist yet): a
 * file of "NAME IPV4 [IPV4...]" lines (dns-records.c) that its writer
 * replaces atomically (rename). The resolver checks the file's identity on
 * every query and re-reads it when it changed, so an update is visible to the
 * next query; a missing file means no names, a malformed one keeps the last
 * good content. These names are answered before container names. One source
 * per resolver; call before net_dns_serve. Strings are copied.
 */
int net_dns_set_records_file(struct net_dns *d, const char *network, const char *path,
			     struct berth_error **err);
/* Serve until stop_fd becomes readable (returns 0) or a fatal error. */
int net_dns_serve(struct net_dns *d, int stop_fd, struct berth_error **err);
struct net_dns *net_dns_free(struct net_dns *d);

/* ---- Docker Engine API shapes (jansson, new references) ---------------- */

/* One element of GET /networks and the body of GET /networks/{id}
 * (with_containers: fill "Containers" as docker's inspect does). */
json_t *net_api_network(struct net_ctx *ctx, const struct net_network *n, bool with_containers);
/* POST /networks/create body -> opts. The strings in *opts point into `body` (keep it alive);
 * free the arrays with net_api_create_opts_done. Unknown driver -> -EOPNOTSUPP. */
int net_api_parse_create(const json_t *body, struct net_create_opts *opts, struct berth_error **err);
void net_api_create_opts_done(struct net_create_opts *opts);
/* Response of POST /networks/create: {"Id": ..., "Warning": ""}. */
json_t *net_api_create_response(const struct net_network *n);
/* POST /networks/{id}/connect body {"Container":..,"EndpointConfig":{"Aliases":[..],
 * "IPAMConfig":{"IPv4Address":..}}} -> container id (borrowed) and endpoint opts;
 * free with net_api_endpoint_opts_done. */
int net_api_parse_connect(const json_t *body, const char **ret_container, struct net_endpoint_opts *ep,
			  struct berth_error **err);
void net_api_endpoint_opts_done(struct net_endpoint_opts *ep);
/*
 * Docker's ?filters= for GET /networks and POST /networks/prune, parsed JSON:
 * {"name":["web"]} (substring), "id" (prefix), "driver", "label" ("k" or "k=v"),
 * "label!" , "type" ("custom"|"builtin"), "scope" ("local"|"swarm"|"global"),
 * "dangling" ("true"|"false": no containers attached), "until" (RFC 3339,
 * unix seconds or a Go duration ago). Values may also be docker's older
 * {"web": true} form. *ret is true when n matches all of them; unknown keys
 * or bad values -> -EINVAL "invalid filter ...".
 */
int net_api_network_match(struct net_ctx *ctx, const struct net_network *n, const json_t *filters, bool *ret,
			  struct berth_error **err);
/* POST /networks/prune response: {"NetworksDeleted": [...]}. */
json_t *net_api_prune_response(char *const *removed);
/* Container inspect "NetworkSettings" (Networks, Ports, SandboxKey, IPAddress, ...). c may be NULL
 * (container not running: docker's empty shape). exposed: "80/tcp", NULL-terminated, may be NULL. */
json_t *net_api_network_settings(const struct net_container *c, const char *const *exposed);

/* ---- hidden CLI: berth net-tool ---------------------------------------- */

/* Entry point of `berth net-tool` (docs/net.md). argv[0] is "net-tool". */
int net_tool_main(int argc, char **argv);

#endif
