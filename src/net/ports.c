/*
 * ports.c - docker's -p / -P syntax and its mapping to CNI portMappings.
 */
#include <arpa/inet.h>

#include "common/util.h"
#include "net/internal.h"

struct range {
	uint32_t lo, hi; /* inclusive; 0/0 = empty */
};

static int parse_range(const char *s, const char *spec, bool allow_empty, struct range *ret,
		       struct berth_error **err)
{
	if (!*s) {
		if (!allow_empty)
			return berth_error_msg(err, EINVAL, "invalid port spec '%s': missing port", spec);
		*ret = (struct range){ 0, 0 };
		return 0;
	}
	const char *dash = strchr(s, '-');
	_cleanup_free_ char *a = dash ? xstrndup(s, (size_t)(dash - s)) : xstrdup(s);
	int64_t lo, hi;
	if (util_parse_int64(a, &lo) < 0 || (dash && util_parse_int64(dash + 1, &hi) < 0))
		return berth_error_msg(err, EINVAL, "invalid port spec '%s': invalid port '%s'", spec, s);
	if (!dash)
		hi = lo;
	if (lo < 1 || hi > 65535 || hi < lo)
		return berth_error_msg(err, EINVAL, "invalid port spec '%s': port '%s' out of range 1-65535",
				       spec, s);
	*ret = (struct range){ (uint32_t)lo, (uint32_t)hi };
	return 0;
}

/* Split "[ip:][host:]container" from the right; IPv6 in brackets. */
static int split_spec(char *s, const char *spec, char **ip, char **host, char **ctr, struct berth_error **err)
{
	char *last = strrchr(s, ':');
	if (!last) {
		*ip = NULL;
		*host = NULL;
		*ctr = s;
		return 0;
	}
	*last = '\0';
	*ctr = last + 1;
	char *prev = strrchr(s, ':');
	if (s[0] == '[') {
		char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return berth_error_msg(err, EINVAL, "invalid port spec '%s'", spec);
		*close = '\0';
		*ip = s + 1;
		*host = close + 2;
		return 0;
	}
	if (!prev) {
		*ip = NULL;
		*host = s;
		return 0;
	}
	*prev = '\0';
	*ip = s;
	*host = prev + 1;
	return 0;
}

static void push(struct net_port **v, size_t *n, const char *ip, uint32_t hp, uint32_t cp, const char *proto)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	struct net_port *p = &(*v)[(*n)++];
	memset(p, 0, sizeof(*p));
	snprintf(p->host_ip, sizeof(p->host_ip), "%s", ip ? ip : "");
	p->host_port = (uint16_t)hp;
	p->container_port = (uint16_t)cp;
	snprintf(p->proto, sizeof(p->proto), "%s", proto);
}

static int split_proto(char *s, const char *spec, const char **ret, struct berth_error **err)
{
	char *slash = strrchr(s, '/');
	*ret = "tcp";
	if (!slash)
		return 0;
	*slash = '\0';
	const char *p = slash + 1;
	if (!streq(p, "tcp") && !streq(p, "udp") && !streq(p, "sctp"))
		return berth_error_msg(err, EINVAL, "invalid port spec '%s': unknown protocol '%s'", spec, p);
	*ret = p;
	return 0;
}

int net_port_parse(const char *spec, struct net_port **v, size_t *n, struct berth_error **err)
{
	if (!spec || !*spec)
		return berth_error_msg(err, EINVAL, "invalid port spec '': empty");
	_cleanup_free_ char *s = xstrdup(spec);
	const char *proto, *ipaddr;
	char *ip = NULL, *host = NULL, *ctr = NULL;
	int r;
	if ((r = split_proto(s, spec, &proto, err)) < 0 ||
	    (r = split_spec(s, spec, &ip, &host, &ctr, err)) < 0)
		return r;
	ipaddr = ip && *ip ? ip : NULL;
	if (ipaddr && !net_ip_valid(ipaddr))
		return berth_error_msg(err, EINVAL, "invalid port spec '%s': invalid IP address '%s'", spec,
				       ipaddr);
	struct range hr, cr;
	if ((r = parse_range(host ? host : "", spec, true, &hr, err)) < 0 ||
	    (r = parse_range(ctr, spec, false, &cr, err)) < 0)
		return r;
	uint32_t clen = cr.hi - cr.lo + 1, hlen = hr.hi - hr.lo + 1;
	if (hr.lo && hlen != clen && clen != 1)
		return berth_error_msg(
		    err, EINVAL, "invalid port spec '%s': host and container ranges differ in size", spec);
	if (*n + clen > NET_MAX_PORTS)
		return berth_error_msg(err, E2BIG, "invalid port spec '%s': more than %d ports", spec,
				       NET_MAX_PORTS);
	if (hr.lo && clen == 1 && hlen > 1) {
		/* docker: a host range with one container port picks one free port of the range; we take the
		 * first */
		push(v, n, ipaddr, hr.lo, cr.lo, proto);
		return 0;
	}
	for (uint32_t i = 0; i < clen; i++)
		push(v, n, ipaddr, hr.lo ? hr.lo + i : 0, cr.lo + i, proto);
	return 0;
}

int net_port_expose(const char *exposed, struct net_port **v, size_t *n, struct berth_error **err)
{
	if (!exposed || !*exposed || strchr(exposed, ':'))
		return berth_error_msg(err, EINVAL, "invalid exposed port '%s'", exposed ? exposed : "");
	return net_port_parse(exposed, v, n, err);
}

json_t *net_ports_to_cni(const struct net_port *p, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (net_port_needs_proxy(p[i].host_ip))
			continue; /* forwarded in user space (portproxy.c) */
		json_t *m = json_pack("{s:i,s:i,s:s}", "hostPort", p[i].host_port, "containerPort",
				      p[i].container_port, "protocol", p[i].proto);
		if (p[i].host_ip[0])
			json_object_set_new(m, "hostIP", json_string(p[i].host_ip));
		json_array_append_new(a, m);
	}
	return a;
}

char *net_port_key(uint16_t port, const char *proto)
{
	return xasprintf("%u/%s", port, proto);
}
