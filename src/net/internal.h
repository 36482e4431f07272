/*
 * internal.h - private helpers of src/net/, shared between its files. Nothing
 * outside src/net/ (and its unit tests) includes this.
 */
#ifndef BERTH_NET_INTERNAL_H
#define BERTH_NET_INTERNAL_H

#include <jansson.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "net/net.h"

/* ---- ipnet.c: IPv4 addresses and prefixes ---- */

/* "255.255.255.255" + NUL */
#define IP4_STR_MAX 16

struct ip4net {
	uint32_t addr; /* host byte order, host bits zero */
	int prefix;    /* 0..32 */
};

static inline uint32_t ip4_mask(int prefix)
{
	return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

/* Dotted quad -> host order. -EINVAL with a message naming `what`. */
int net_ip4_parse(const char *s, const char *what, uint32_t *ret, struct berth_error **err);
void net_ip4_format(uint32_t a, char out[IP4_STR_MAX]);
/* "a.b.c.d/n"; host bits must be zero unless allow_host (then *ret_host gets the address). */
int net_ip4net_parse(const char *s, const char *what, bool allow_host, struct ip4net *ret, uint32_t *ret_host,
		     struct berth_error **err);
/* Canonical "a.b.c.d/n", caller frees. */
char *net_ip4net_format(const struct ip4net *n);
bool net_ip4net_overlap(const struct ip4net *a, const struct ip4net *b);
bool net_ip4net_contains(const struct ip4net *n, uint32_t a);
/* True if s parses as an IPv4 or IPv6 address (no prefix). */
bool net_ip_valid(const char *s);

/* ---- ipnet.c: IPv6 prefixes (dual-stack networks) ---- */

#define IP6_STR_MAX 46
struct ip6net {
	uint8_t addr[16]; /* network order, host bits zero */
	int prefix;       /* 0..128 */
};
/* "x::/n", host bits zero; -EINVAL naming `what`. */
int net_ip6net_parse(const char *s, const char *what, struct ip6net *ret, struct berth_error **err);
/* An IPv6 address (no prefix); -EINVAL naming `what`. */
int net_ip6_parse(const char *s, const char *what, uint8_t ret[16], struct berth_error **err);
void net_ip6_format(const uint8_t a[16], char out[IP6_STR_MAX]);
/* Canonical "x::/n", caller frees. */
char *net_ip6net_format(const struct ip6net *n);
bool net_ip6net_overlap(const struct ip6net *a, const struct ip6net *b);
bool net_ip6net_contains(const struct ip6net *n, const uint8_t a[16]);
/* True if s is "addr/prefix" with a valid IPv4 or IPv6 address and prefix. */
bool net_ip_cidr_valid(const char *s);

struct route4 {
	struct ip4net dst;
	char ifname[16];
};
/* Non-default IPv4 routes of the calling thread's netns (/proc/thread-self/net/route). */
int net_routes4_read(struct route4 **ret, size_t *ret_n, struct berth_error **err);
/* The first IPv4 address of interface ifname in the calling thread's netns: 1 found (*addr, *prefix
 * set), 0 no such interface or no IPv4 address on it, -errno. */
int net_iface_addr4(const char *ifname, uint32_t *addr, int *prefix);
/*
 * Make bridge `ifname` (if missing), give it addr/prefix and bring it up, as dockerd does with
 * docker0 at start: its route then shows the subnet as taken. A bridge with an IPv4 address
 * already is left alone. 0 or -errno.
 */
int net_bridge_ensure4(const char *ifname, uint32_t addr, int prefix);
/* Bring interface ifname up (SIOCSIFFLAGS): 0 or -errno. */
int net_iface_set_up(const char *ifname);

/* ---- cni.c: the CNI 1.0 executor ---- */

#define CNI_VERSION "1.0.0"

struct cni_exec {
	const char *cni_path; /* ':'-separated */
	int timeout_ms;
	const char *path_prepend; /* directory put first in the plugins' PATH, or NULL */
};

struct cni_runtime {
	const char *container_id;
	const char *netns; /* path, may be "" for DEL/GC */
	const char *ifname;
	const char *args;        /* CNI_ARGS, may be NULL */
	json_t *capability_args; /* {"portMappings": [...], "ips": [...], ...}, may be NULL (borrowed) */
};

/* Check a network configuration list: cniVersion, name, non-empty plugins each with a safe "type". */
int net_cni_conflist_validate(const json_t *conflist, struct berth_error **err);
/*
 * Run ADD through the chain. On success *ret is the last plugin's validated
 * result. On failure DEL is run for every plugin already called, in reverse
 * order (the failed one included), and the first error is returned.
 */
int net_cni_list_add(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		     json_t **ret, struct berth_error **err);
/* DEL in reverse order with prevResult (may be NULL). Continues past failures; first error returned. */
int net_cni_list_del(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		     const json_t *prev_result, struct berth_error **err);
/* CHECK in order with the cached result. */
int net_cni_list_check(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		       const json_t *prev_result, struct berth_error **err);
/*
 * STATUS: plugins that speak CNI 1.1 get a STATUS call; older ones (Debian 12
 * ships 1.0) must at least answer VERSION. 0 when every plugin is ready.
 */
int net_cni_list_status(const struct cni_exec *x, const json_t *conflist, struct berth_error **err);
/*
 * GC with cni.dev/valid-attachments ([{containerID, ifname}]). -EOPNOTSUPP
 * when a plugin of the chain does not speak CNI 1.1 (the caller then DELs
 * stale attachments one by one, which is what it has records for anyway).
 */
int net_cni_list_gc(const struct cni_exec *x, const json_t *conflist, const json_t *valid_attachments,
		    struct berth_error **err);
/*
 * Parse and strictly validate a CNI 1.0 success result (stdout of ADD). The
 * cniVersion must equal want_version. Fuzzed by tests/fuzz/fuzz-cni-result.c.
 */
int net_cni_result_parse(const char *buf, size_t len, const char *want_version, json_t **ret,
			 struct berth_error **err);
/* Validate an already parsed result object. */
int net_cni_result_validate(const json_t *res, const char *want_version, struct berth_error **err);
/* First IPv4 address of a result: address, prefix, gateway ("" if none), mac of its interface ("" if none).
 */
int net_cni_result_ipv4(const json_t *res, uint32_t *ret_addr, int *ret_prefix, char gw[IP4_STR_MAX],
			char mac[18], struct berth_error **err);
/* First IPv6 address of a result: "x::2", its prefix length, gateway ("" if none); -ENOENT when none. */
int net_cni_result_ipv6(const json_t *res, char addr[IP6_STR_MAX], int *ret_prefix, char gw[IP6_STR_MAX]);

/* ---- netns.c ---- */

/* Create a new netns with lo up and bind-mount it at path (must not exist). */
int net_netns_create(const char *path, struct berth_error **err);
/* Is path an nsfs mount (a live netns handle)? */
bool net_netns_is_mounted(const char *path);
/* Unmount and unlink; missing is success. */
int net_netns_remove(const char *path, struct berth_error **err);

/* ---- hosts.c: /etc/hosts, /etc/resolv.conf ---- */

struct hosts_entry {
	const char *ip;
	const char *names; /* space-separated */
};
/* Render a hosts file: the standard localhost lines, then entries. */
void net_hosts_render(struct strbuf *sb, const struct hosts_entry *e, size_t n);
/* Rewrite a file in place (same inode): write from offset 0 then truncate. */
int net_file_rewrite_in_place(const char *path, const char *data, size_t len, struct berth_error **err);
/*
 * Render resolv.conf: host_conf is the host's resolv.conf text (may be NULL).
 * Nameservers on loopback are dropped (unreachable from a container); with no
 * nameserver left, 8.8.8.8 and 8.8.4.4 are used (docker's behaviour). dns,
 * search, options (NULL-terminated, may be NULL) replace the host's values.
 */
void net_resolv_conf_render(struct strbuf *sb, const char *host_conf, const char *const *dns,
			    const char *const *search, const char *const *options);
/* --add-host "name:ip" (ip may be IPv6 or "host-gateway"). Splits into fresh strings. */
int net_extra_host_parse(const char *s, char **ret_name, char **ret_ip, struct berth_error **err);

/* ---- firewall.c: isolation chains ---- */

struct fw_net {
	const char *bridge;
	const char *subnet; /* canonical CIDR */
	bool internal;
	const char *subnet6; /* dual-stack networks: the IPv6 prefix, else NULL */
};
/* A daemon's tag in its chain names: hex digits of a hash of its root. */
#define FW_TAG_LEN   8
/* iptables' chain name limit (XT_EXTENSION_MAXNAMELEN, with the NUL) */
#define FW_CHAIN_MAX 29
/* One daemon's chains: BERTH-ISOLATION-1-<tag>, BERTH-ISOLATION-2-<tag>, BERTH-POSTROUTING-<tag>. */
struct fw_chains {
	char iso1[FW_CHAIN_MAX], iso2[FW_CHAIN_MAX], nat[FW_CHAIN_MAX];
};
/* Name the chains of the daemon tagged tag (FW_TAG_LEN characters are used). */
void net_fw_chains_init(struct fw_chains *c, const char *tag);
/*
 * Rebuild the daemon's isolation chains (filter) and its NAT chain (nat: one
 * MASQUERADE rule per non-internal network, as docker does, instead of the
 * bridge plugin's ipMasq, which costs ~9 iptables execs per container ADD)
 * from its networks, and make sure FORWARD and POSTROUTING jump to them.
 * Other daemons' chains are never touched. v6: the same chains with
 * ip6tables too (MASQUERADE for the networks' subnet6), as dockerd with
 * ip6tables: once a daemon had a dual-stack network, so that removing the last
 * one empties them.
 */
int net_fw_sync(const struct fw_chains *c, const struct fw_net *nets, size_t n, bool v6, int timeout_ms,
		struct berth_error **err);
/*
 * Remove the chains shared by every daemon in versions before fw_chains
 * (BERTH-ISOLATION-1/2, BERTH-POSTROUTING) and the jumps to them; nothing
 * to do when they are gone.
 */
int net_fw_migrate_legacy(int timeout_ms, struct berth_error **err);
/*
 * Remove the daemon's own chains (and the jumps to them; with ip6tables too when v6),
 * as a daemon stopping cleanly with no container left running does. The shared
 * NET_FW_SETMARK_CHAIN stays: other daemons' containers' CNI configs name it.
 */
int net_fw_remove(const struct fw_chains *c, bool v6, int timeout_ms, struct berth_error **err);
/* portmap's externalSetMarkChain, maintained by net_fw_sync (see firewall.c). */
#define NET_FW_SETMARK_CHAIN "BERTH-HOSTPORT-SETMARK"
/* The iptables-restore input net_fw_sync feeds (exposed for unit tests). */
void net_fw_render(struct strbuf *sb, const struct fw_chains *c, const struct fw_net *nets, size_t n);
/* The same for one family (v6: ip6tables-restore input, MASQUERADE of subnet6). */
void net_fw_render_family(struct strbuf *sb, const struct fw_chains *c, const struct fw_net *nets, size_t n,
			  bool v6);

/* ---- ports.c ---- */

/* Port mappings as CNI portMappings capability args (new reference). */
json_t *net_ports_to_cni(const struct net_port *p, size_t n);
/* Docker "Ports" key: "80/tcp". */
char *net_port_key(uint16_t port, const char *proto);

/* ---- dns-msg.c: DNS messages for the embedded resolver ---- */

/* Longest name in dotted form (RFC 1035: 255 octets on the wire). */
#define DNS_NAME_MAX       254
#define DNS_HEADER_LEN     12
#define DNS_TYPE_A         1
#define DNS_TYPE_AAAA      28
#define DNS_CLASS_IN       1
#define DNS_TTL            60
#define DNS_RCODE_OK       0
#define DNS_RCODE_FORMERR  1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_MAX_ANSWERS    16 /* addresses of one type in one answer */

struct dns_query {
	uint16_t id;
	bool rd;
	char name[DNS_NAME_MAX + 1]; /* lowercase, no trailing dot */
	uint16_t qtype, qclass;
	size_t end; /* offset just past the question */
};
/* Parse a query with exactly one question (no compression in it). */
int net_dns_parse_query(const uint8_t *buf, size_t len, struct dns_query *q, struct berth_error **err);
/* Reply = header + question of `query` + n A records (at most DNS_MAX_ANSWERS, host order); 0 when
 * cap is too small. */
size_t net_dns_build_reply(const uint8_t *query, const struct dns_query *q, int rcode, const uint32_t *addrs,
			   size_t n, uint8_t *out, size_t cap);
/* The same with n AAAA records, rcode NOERROR. */
struct in6_addr;
size_t net_dns_build_reply6(const uint8_t *query, const struct dns_query *q, const struct in6_addr *addrs,
			    size_t n, uint8_t *out, size_t cap);

/* ---- dns-records.c: the resolver's extra record source ---- */

#define DNS_RECORDS_MAX_ADDRS 64
#define DNS_RECORDS_MAX_BYTES (4u << 20)
struct dns_records;
/*
 * Parse "NAME IPV4 [IPV4...]" lines (blank lines and '#' comments skipped;
 * names case-insensitive, a trailing dot ignored; a name may have no
 * address). -EINVAL naming the line on anything else. *ret: net_dns_records_free.
 */
int net_dns_records_parse(const char *text, size_t len, struct dns_records **ret, struct berth_error **err);
/*
 * The addresses of name (host byte order, unique, at most cap); *ret_known
 * (may be NULL) tells whether the name is listed at all (listed without an
 * address: NOERROR with no answer rather than forwarding).
 */
size_t net_dns_records_lookup(const struct dns_records *r, const char *name, uint32_t *out, size_t cap,
			      bool *ret_known);
struct dns_records *net_dns_records_free(struct dns_records *r);

/* ---- names ---- */

/* Network names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most NET_NAME_MAX. */
bool net_name_valid(const char *s);
/* User network names as docker takes them: 1..NET_NAME_MAX bytes, no control characters (spaces,
 * '/', ':' and UTF-8 allowed: never used as a file name, see net_network_ipam_name). */
bool net_network_name_valid(const char *s);
/* Container ids as file names: [a-zA-Z0-9_.-]{1,128}, not "." or "..". */
bool net_id_valid(const char *s);
/* DNS names for hosts files: [a-zA-Z0-9_.-]{1,253}, no leading '-' or '.'. */
bool net_hostname_valid(const char *s);

/* ---- network.c / container.c: the context and the stores ---- */

#include <pthread.h>

struct net_ctx {
	char *root_dir;  /* <root>/net */
	char *netns_dir; /* <exec_root>/net/netns */
	char *cni_path;
	char *bridge_name;
	char *bridge_subnet;  /* requested, may be NULL */
	char *bridge_subnet6; /* requested IPv6 subnet of the default network, may be NULL */
	char *shim_dir; /* <exec_root>/net/cni-shim: "ip6tables" -> /bin/false, first in plugins' PATH */
	int timeout_ms;
	struct fw_chains fw;   /* this daemon's iptables chains (firewall.c) */
	int lock_fd;           /* <root>/net/lock, flock'd by net_lock() */
	pthread_mutex_t mutex; /* flock does not exclude threads sharing the fd */
};

/* Exclusive lock over the whole state (threads and processes). */
int net_lock(struct net_ctx *ctx, struct berth_error **err);
void net_unlock(struct net_ctx *ctx);
/* net_lock() again after a net_unlock() in the middle of an operation: retries an interrupted flock; a
 * flock that fails otherwise leaves only this process's mutex held, as when there is no lock file. */
void net_relock(struct net_ctx *ctx);

/* Networks, lock held. */
int net_network_load_all(struct net_ctx *ctx, struct net_network ***ret, struct berth_error **err);
int net_network_find(struct net_network *const *all, const char *name_or_id, struct net_network **ret,
		     struct berth_error **err);
bool net_network_is_user(const struct net_network *n);
/*
 * CNI network configuration list of a network; portmap is added when with_ports.
 * whole4/whole6: that family's IPAM range = the whole subnet, ignoring ip_range/ip_range6
 * (docker lets a static --ip/--ip6 sit outside --ip-range; host-local only hands out in-range ones).
 */
json_t *net_network_conflist(struct net_ctx *ctx, const struct net_network *n, bool with_ports, bool whole4,
			     bool whole6);
/* The network's name in CNI and on disk (conflist "name", host-local's <root>/net/ipam/<it>/):
 * its name when that is a file-safe [a-zA-Z0-9][a-zA-Z0-9_.-]* (every network before names with
 * spaces were allowed), else its id. Caller frees. */
char *net_network_ipam_name(const struct net_network *n);
/* A lease owner line of an IPAM auxiliary address (never handed out, never gc'd). */
#define NET_AUX_OWNER "berth-aux:"
/* Rebuild the isolation chains from all networks. */
int net_network_fw_sync(struct net_ctx *ctx, struct net_network *const *all, struct berth_error **err);
/* Is any container attached to the network with this id? (container.c) */
int net_container_uses_network(struct net_ctx *ctx, const char *network_id, bool *ret,
			       struct berth_error **err);
struct cni_exec net_cni_exec(const struct net_ctx *ctx);

#endif
