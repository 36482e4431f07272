/*
 * ipnet.c - IPv4 addresses and prefixes, overlap tests, the routing table,
 * and the name rules shared by the module. IPv4 only: berth networks are
 * IPv4 (IPv6 addresses are only validated, e.g. in CNI results).
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <fcntl.h>
#include <ctype.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/fs.h"
#include "common/util.h"
#include "net/internal.h"

int net_ip4_parse(const char *s, const char *what, uint32_t *ret, struct berth_error **err)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		return berth_error_msg(err, EINVAL, "invalid %s '%s': expected an IPv4 address", what,
				       s ? s : "");
	*ret = ntohl(a.s_addr);
	return 0;
}

void net_ip4_format(uint32_t a, char out[IP4_STR_MAX])
{
	struct in_addr in = { .s_addr = htonl(a) };
	if (!inet_ntop(AF_INET, &in, out, IP4_STR_MAX))
		out[0] = '\0';
}

int net_ip4net_parse(const char *s, const char *what, bool allow_host, struct ip4net *ret, uint32_t *ret_host,
		     struct berth_error **err)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || slash - s >= IP4_STR_MAX)
		return berth_error_msg(err, EINVAL, "invalid %s '%s': expected CIDR notation a.b.c.d/n", what,
				       s ? s : "");
	char ip[IP4_STR_MAX];
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	int64_t prefix;
	uint32_t a;
	if (net_ip4_parse(ip, what, &a, NULL) < 0 || !isdigit((unsigned char)slash[1]) ||
	    util_parse_int64(slash + 1, &prefix) < 0 || prefix < 0 || prefix > 32)
		return berth_error_msg(err, EINVAL, "invalid %s '%s': expected CIDR notation a.b.c.d/n", what,
				       s);
	uint32_t net = a & ip4_mask((int)prefix);
	if (!allow_host && net != a) {
		struct ip4net want = { net, (int)prefix };
		_cleanup_free_ char *w = net_ip4net_format(&want);
		return berth_error_msg(err, EINVAL, "invalid %s '%s': host bits set, did you mean '%s'", what,
				       s, w);
	}
	ret->addr = net;
	ret->prefix = (int)prefix;
	if (ret_host)
		*ret_host = a;
	return 0;
}

char *net_ip4net_format(const struct ip4net *n)
{
	char a[IP4_STR_MAX];
	net_ip4_format(n->addr, a);
	return xasprintf("%s/%d", a, n->prefix);
}

bool net_ip4net_overlap(const struct ip4net *a, const struct ip4net *b)
{
	int p = MIN(a->prefix, b->prefix);
	return (a->addr & ip4_mask(p)) == (b->addr & ip4_mask(p));
}

bool net_ip4net_contains(const struct ip4net *n, uint32_t a)
{
	return (a & ip4_mask(n->prefix)) == n->addr;
}

bool net_ip_valid(const char *s)
{
	unsigned char buf[16];
	return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

bool net_ip_cidr_valid(const char *s)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || slash - s >= 46 || !isdigit((unsigned char)slash[1]))
		return false;
	char ip[46];
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	int64_t prefix;
	if (util_parse_int64(slash + 1, &prefix) < 0 || prefix < 0)
		return false;
	unsigned char buf[16];
	if (inet_pton(AF_INET, ip, buf) == 1)
		return prefix <= 32;
	return inet_pton(AF_INET6, ip, buf) == 1 && prefix <= 128;
}

static uint32_t hex_le32(const char *s, bool *ok)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 16);
	if (errno || end == s || *end || v > 0xffffffffUL) {
		*ok = false;
		return 0;
	}
	/* /proc/net/route prints the in-memory (network order) word in host order */
	return ntohl((uint32_t)v);
}

int net_routes4_read(struct route4 **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, "/proc/thread-self/net/route", 1 << 20, &sb, err);
	if (r < 0)
		return r;
	struct route4 *v = NULL;
	size_t n = 0;
	char *save = NULL;
	bool first = true;
	for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (first) { /* header */
			first = false;
			continue;
		}
		char ifname[16], dst[16], gw[16], flags[16], refcnt[16], use[16], metric[16], mask[16];
		if (sscanf(line, "%15s %15s %15s %15s %15s %15s %15s %15s", ifname, dst, gw, flags, refcnt,
			   use, metric, mask) != 8)
			continue;
		bool ok = true;
		uint32_t d = hex_le32(dst, &ok), m = hex_le32(mask, &ok);
		if (!ok || m == 0)
			continue;
		int prefix = __builtin_popcount(m);
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n].dst.prefix = prefix;
		v[n].dst.addr = d & ip4_mask(prefix);
		snprintf(v[n].ifname, sizeof(v[n].ifname), "%s", ifname);
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool name_chars(const char *s, size_t max)
{
	size_t n = 0;
	for (const char *p = s; *p; p++, n++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return n >= 1 && n <= max;
}

bool net_name_valid(const char *s)
{
	return s && isalnum((unsigned char)s[0]) && name_chars(s, NET_NAME_MAX);
}

bool net_network_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > NET_NAME_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return false;
	return true;
}

bool net_mac_valid(const char *s)
{
	if (!s || strlen(s) != 17)
		return false;
	for (size_t i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

bool net_id_valid(const char *s)
{
	return s && name_chars(s, 128) && !streq(s, ".") && !streq(s, "..");
}

bool net_hostname_valid(const char *s)
{
	return s && s[0] != '-' && s[0] != '.' && name_chars(s, 253);
}

int net_iface_addr4(const char *ifname, uint32_t *addr, int *prefix)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		return negative_errno();
	int found = 0;
	for (struct ifaddrs *i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !streq(i->ifa_name, ifname))
			continue;
		uint32_t mask = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
		*addr = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
		*prefix = __builtin_popcount(mask);
		found = 1;
	}
	freeifaddrs(ifa);
	return found;
}

int net_bridge_ensure4(const char *ifname, uint32_t addr, int prefix)
{
	uint32_t have;
	int have_prefix;
	if (net_iface_addr4(ifname, &have, &have_prefix) > 0)
		return 0; /* addressed already (adopted, or by an earlier start) */
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return negative_errno();
	char name[IFNAMSIZ] = { 0 };
	snprintf(name, sizeof(name), "%s", ifname);
	if (ioctl(s, SIOCBRADDBR, name) < 0 && errno != EEXIST)
		return negative_errno();
	struct ifreq ifr = { 0 };
	memcpy(ifr.ifr_name, name, sizeof(name));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(addr);
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
		return negative_errno();
	sin->sin_addr.s_addr = htonl(ip4_mask(prefix));
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
		return negative_errno();
	sin->sin_addr.s_addr = htonl((addr & ip4_mask(prefix)) | ~ip4_mask(prefix));
	if (ioctl(s, SIOCSIFBRDADDR, &ifr) < 0)
		return negative_errno();
	return net_iface_set_up(name);
}

int net_iface_set_up(const char *ifname)
{
	_cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return negative_errno();
	struct ifreq ifr = { 0 };
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return negative_errno();
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return negative_errno();
	return 0;
}

int net_ip6_parse(const char *s, const char *what, uint8_t ret[16], struct berth_error **err)
{
	if (!s || !strchr(s, ':') || inet_pton(AF_INET6, s, ret) != 1)
		return berth_error_msg(err, EINVAL, "invalid %s '%s': not an IPv6 address", what, s ? s : "");
	return 0;
}

void net_ip6_format(const uint8_t a[16], char out[IP6_STR_MAX])
{
	inet_ntop(AF_INET6, a, out, IP6_STR_MAX);
}

static bool ip6_bit(const uint8_t a[16], int i)
{
	return (a[i / 8] >> (7 - i % 8)) & 1;
}

int net_ip6net_parse(const char *s, const char *what, struct ip6net *ret, struct berth_error **err)
{
	const char *slash = s ? strrchr(s, '/') : NULL;
	int64_t prefix;
	if (!slash || slash - s >= IP6_STR_MAX || util_parse_int64(slash + 1, &prefix) < 0 || prefix < 0 ||
	    prefix > 128)
		return berth_error_msg(err, EINVAL, "invalid %s '%s': expected an IPv6 prefix like fd00::/64",
				       what, s ? s : "");
	char buf[IP6_STR_MAX];
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	struct ip6net n = { .prefix = (int)prefix };
	int r = net_ip6_parse(buf, what, n.addr, err);
	if (r < 0)
		return r;
	for (int i = n.prefix; i < 128; i++)
		if (ip6_bit(n.addr, i))
			return berth_error_msg(err, EINVAL, "invalid %s '%s': host bits set", what, s);
	*ret = n;
	return 0;
}

char *net_ip6net_format(const struct ip6net *n)
{
	char a[IP6_STR_MAX];
	net_ip6_format(n->addr, a);
	return xasprintf("%s/%d", a, n->prefix);
}

static bool ip6_prefix_eq(const uint8_t a[16], const uint8_t b[16], int prefix)
{
	for (int i = 0; i < prefix; i++)
		if (ip6_bit(a, i) != ip6_bit(b, i))
			return false;
	return true;
}

bool net_ip6net_overlap(const struct ip6net *a, const struct ip6net *b)
{
	return ip6_prefix_eq(a->addr, b->addr, a->prefix < b->prefix ? a->prefix : b->prefix);
}

bool net_ip6net_contains(const struct ip6net *n, const uint8_t a[16])
{
	return ip6_prefix_eq(n->addr, a, n->prefix);
}
