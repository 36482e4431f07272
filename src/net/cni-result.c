/*
 * cni-result.c - strict validation of CNI 1.0 results (ADD output): every
 * member that the spec defines must have the right type and a valid value,
 * interface indexes must point into "interfaces". Unknown members are
 * tolerated (newer plugins may add some). Fuzzed by fuzz-cni-result.
 */
#include "common/json.h"
#include "common/util.h"
#include "net/internal.h"

/* Bounds far above anything real, so hostile output cannot make us work hard. */
#define CNI_RESULT_MAX_ENTRIES 1024

static int check_ip(const json_t *o, const char *path, const char *key, bool required, bool cidr,
		    struct berth_error **err)
{
	const char *s = NULL;
	int r = json_get_string(o, path, key, required ? JSON_REQUIRED : JSON_OPTIONAL, &s, err);
	if (r <= 0)
		return r;
	if (cidr ? !net_ip_cidr_valid(s) : !net_ip_valid(s))
		return berth_error_msg(err, EINVAL, "'%s.%s': invalid %s '%s'", path, key,
				       cidr ? "CIDR" : "IP address", s);
	return 0;
}

static int get_list(const json_t *res, const char *key, json_t **ret, struct berth_error **err)
{
	*ret = NULL;
	int r = json_get_array(res, NULL, key, JSON_OPTIONAL, ret, err);
	if (r < 0)
		return r;
	if (*ret && json_array_size(*ret) > CNI_RESULT_MAX_ENTRIES)
		return berth_error_msg(err, E2BIG, "'%s': too many entries", key);
	return 0;
}

static int check_interfaces(const json_t *list, struct berth_error **err)
{
	size_t i;
	json_t *e;
	json_array_foreach (list, i, e) {
		_cleanup_free_ char *p = json_path_index("interfaces", i);
		const char *name, *s;
		if (!json_is_object(e))
			return json_type_error(NULL, p, "object", e, err);
		int r = json_get_string(e, p, "name", JSON_REQUIRED, &name, err);
		if (r < 0)
			return r;
		if (!*name || strlen(name) > 15)
			return berth_error_msg(err, EINVAL, "'%s.name': invalid interface name '%s'", p,
					       name);
		if ((r = json_get_string(e, p, "mac", JSON_OPTIONAL, &s, err)) < 0 ||
		    (r = json_get_string(e, p, "sandbox", JSON_OPTIONAL, &s, err)) < 0)
			return r;
		int64_t mtu;
		if ((r = json_get_int_range(e, p, "mtu", JSON_OPTIONAL, 0, 65535, &mtu, err)) < 0)
			return r;
	}
	return 0;
}

static int check_ips(const json_t *list, size_t n_ifaces, struct berth_error **err)
{
	size_t i;
	json_t *e;
	json_array_foreach (list, i, e) {
		_cleanup_free_ char *p = json_path_index("ips", i);
		if (!json_is_object(e))
			return json_type_error(NULL, p, "object", e, err);
		int r;
		if ((r = check_ip(e, p, "address", true, true, err)) < 0 ||
		    (r = check_ip(e, p, "gateway", false, false, err)) < 0)
			return r;
		int64_t idx;
		r = json_get_int_range(e, p, "interface", JSON_OPTIONAL, 0, INT32_MAX, &idx, err);
		if (r < 0)
			return r;
		if (r > 0 && (size_t)idx >= n_ifaces)
			return berth_error_msg(err, EINVAL,
					       "'%s.interface': index %lld out of range (%zu interfaces)", p,
					       (long long)idx, n_ifaces);
	}
	return 0;
}

static int check_routes(const json_t *list, struct berth_error **err)
{
	size_t i;
	json_t *e;
	json_array_foreach (list, i, e) {
		_cleanup_free_ char *p = json_path_index("routes", i);
		if (!json_is_object(e))
			return json_type_error(NULL, p, "object", e, err);
		int r;
		if ((r = check_ip(e, p, "dst", true, true, err)) < 0 ||
		    (r = check_ip(e, p, "gw", false, false, err)) < 0)
			return r;
	}
	return 0;
}

static int check_dns(const json_t *res, struct berth_error **err)
{
	json_t *dns;
	int r = json_get_object(res, NULL, "dns", JSON_OPTIONAL, &dns, err);
	if (r <= 0)
		return r;
	const char *keys[] = { "nameservers", "search", "options" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		_cleanup_strv_ char **v = NULL;
		if ((r = json_get_strv(dns, "dns", keys[k], JSON_OPTIONAL, &v, err)) < 0)
			return r;
	}
	const char *domain;
	r = json_get_string(dns, "dns", "domain", JSON_OPTIONAL, &domain, err);
	return r < 0 ? r : 0;
}

int net_cni_result_validate(const json_t *res, const char *want_version, struct berth_error **err)
{
	if (!json_is_object(res))
		return json_type_error(NULL, "result", "object", res, err);
	const char *v;
	int r = json_get_string(res, NULL, "cniVersion", JSON_REQUIRED, &v, err);
	if (r < 0)
		return r;
	if (want_version && !streq(v, want_version))
		return berth_error_msg(err, EINVAL, "'cniVersion': expected '%s', got '%s'", want_version, v);
	json_t *ifaces, *ips, *routes;
	if ((r = get_list(res, "interfaces", &ifaces, err)) < 0 ||
	    (r = get_list(res, "ips", &ips, err)) < 0 || (r = get_list(res, "routes", &routes, err)) < 0)
		return r;
	if ((r = check_interfaces(ifaces, err)) < 0 ||
	    (r = check_ips(ips, json_array_size(ifaces), err)) < 0 || (r = check_routes(routes, err)) < 0 ||
	    (r = check_dns(res, err)) < 0)
		return r;
	return 0;
}

int net_cni_result_parse(const char *buf, size_t len, const char *want_version, json_t **ret,
			 struct berth_error **err)
{
	json_auto_t *j = NULL;
	int r = json_parse(buf, len, "cni result", &j, err);
	if (r < 0)
		return r;
	r = net_cni_result_validate(j, want_version, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(j);
	return 0;
}

int net_cni_result_ipv4(const json_t *res, uint32_t *ret_addr, int *ret_prefix, char gw[IP4_STR_MAX],
			char mac[18], struct berth_error **err)
{
	json_t *ips = json_object_get(res, "ips");
	size_t i;
	json_t *e;
	json_array_foreach (ips, i, e) {
		struct ip4net net;
		uint32_t host;
		const char *addr = json_string_value(json_object_get(e, "address"));
		if (!addr || net_ip4net_parse(addr, "address", true, &net, &host, NULL) < 0)
			continue;
		const char *g = json_string_value(json_object_get(e, "gateway"));
		snprintf(gw, IP4_STR_MAX, "%s", g && strchr(g, '.') ? g : "");
		mac[0] = '\0';
		json_t *idx = json_object_get(e, "interface");
		if (json_is_integer(idx)) {
			json_t *itf = json_array_get(json_object_get(res, "interfaces"),
						     (size_t)json_integer_value(idx));
			const char *m = json_string_value(json_object_get(itf, "mac"));
			snprintf(mac, 18, "%s", m ? m : "");
		}
		*ret_addr = host;
		*ret_prefix = net.prefix;
		return 0;
	}
	return berth_error_msg(err, EADDRNOTAVAIL, "cni result has no IPv4 address");
}

int net_cni_result_ipv6(const json_t *res, char addr[IP6_STR_MAX], int *ret_prefix, char gw[IP6_STR_MAX])
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(res, "ips"), i, e) {
		const char *a = json_string_value(json_object_get(e, "address"));
		const char *slash = a ? strrchr(a, '/') : NULL;
		int64_t prefix;
		uint8_t bin[16];
		char buf[IP6_STR_MAX];
		if (!slash || slash - a >= IP6_STR_MAX || util_parse_int64(slash + 1, &prefix) < 0 ||
		    prefix < 0 || prefix > 128)
			continue;
		memcpy(buf, a, (size_t)(slash - a));
		buf[slash - a] = '\0';
		if (net_ip6_parse(buf, "address", bin, NULL) < 0)
			continue;
		net_ip6_format(bin, addr);
		*ret_prefix = (int)prefix;
		const char *g = json_string_value(json_object_get(e, "gateway"));
		uint8_t gbin[16];
		if (g && net_ip6_parse(g, "gateway", gbin, NULL) == 0)
			net_ip6_format(gbin, gw);
		else
			gw[0] = '\0';
		return 0;
	}
	return -ENOENT;
}
