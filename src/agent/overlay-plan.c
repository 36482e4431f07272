/*
 * overlay-plan.c - the pure half of the overlay (overlay.h): which routes,
 * neighbours and fdb entries the peers want, what the kernel has (parsed from
 * iproute2's JSON), the diff between the two, and the command of each
 * operation. Everything here is data in, data out, so it is unit-tested
 * without a kernel.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <strings.h>

#include "agent/overlay.h"
#include "common/json.h"
#include "common/strv.h"
#include "common/util.h"

static void state_add(struct overlay_state *s, enum overlay_kind kind, const char *key, const char *value)
{
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = (struct overlay_entry){ kind, xstrdup(key), xstrdup(value) };
}

void agent_overlay_state_done(struct overlay_state *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].value);
	}
	free(s->v);
	*s = (struct overlay_state){ 0 };
}

static bool ipv4_valid(const char *s)
{
	struct in_addr a;
	return s && inet_pton(AF_INET, s, &a) == 1;
}

/* "A.B.C.D/N" -> network address and bits; false when it is not one. */
static bool cidr_parse(const char *s, uint32_t *net, int *bits)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || slash - s > 15)
		return false;
	char ip[16];
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = 0;
	char *end;
	long b = strtol(slash + 1, &end, 10);
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1 || *end || end == slash + 1 || b < 0 || b > 32)
		return false;
	uint32_t mask = b == 0 ? 0 : ~((1u << (32 - b)) - 1);
	*net = ntohl(a.s_addr) & mask;
	*bits = (int)b;
	return true;
}

/* Lowercase "xx:xx:xx:xx:xx:xx" into out (18 bytes); false when not a MAC. */
static bool mac_norm(const char *s, char out[18])
{
	if (!s || strlen(s) != 17)
		return false;
	for (size_t i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[17] = 0;
	return true;
}

static bool overlaps(uint32_t a, int abits, uint32_t b, int bbits)
{
	int bits = MIN(abits, bbits);
	uint32_t mask = bits == 0 ? 0 : ~((1u << (32 - bits)) - 1);
	return (a & mask) == (b & mask);
}

void agent_overlay_desired(const json_t *peers, const char *own_subnet, struct overlay_state *ret,
			   size_t *ret_skipped)
{
	*ret = (struct overlay_state){ 0 };
	size_t skipped = 0, i;
	uint32_t own = 0;
	int own_bits = -1;
	if (!cidr_parse(own_subnet, &own, &own_bits))
		own_bits = -1;
	json_t *p;
	json_array_foreach (peers, i, p) {
		const char *addr = json_string_value(json_object_get(p, "address"));
		const char *subnet = json_string_value(json_object_get(p, "taskSubnet"));
		char mac[18];
		uint32_t net;
		int bits;
		if (!ipv4_valid(addr) || !mac_norm(json_string_value(json_object_get(p, "vtepMac")), mac) ||
		    !cidr_parse(subnet, &net, &bits) ||
		    (own_bits >= 0 && overlaps(net, bits, own, own_bits))) {
			skipped++;
			continue;
		}
		char vtep[16], dst[20];
		snprintf(vtep, sizeof(vtep), "%u.%u.%u.%u", net >> 24, (net >> 16) & 0xff, (net >> 8) & 0xff,
			 net & 0xff);
		snprintf(dst, sizeof(dst), "%s/%d", vtep, bits);
		state_add(ret, OVERLAY_ROUTE, dst, vtep);
		state_add(ret, OVERLAY_NEIGH, vtep, mac);
		state_add(ret, OVERLAY_FDB, mac, addr);
	}
	if (ret_skipped)
		*ret_skipped = skipped;
}

static bool has_flag(json_t *flags, const char *f)
{
	if (json_is_string(flags))
		return strcasecmp(json_string_value(flags), f) == 0;
	return json_strv_find(flags, f, true) >= 0;
}

static void parse_routes(const char *text, struct overlay_state *s)
{
	_cleanup_json_ json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	size_t i;
	json_t *r;
	json_array_foreach (j, i, r) {
		const char *dst = json_string_value(json_object_get(r, "dst"));
		const char *gw = json_string_value(json_object_get(r, "gateway"));
		const char *proto = json_string_value(json_object_get(r, "protocol"));
		if (!dst || !ipv4_valid(gw) || (proto && streq(proto, "kernel")))
			continue;
		_cleanup_free_ char *full = strchr(dst, '/') ? xstrdup(dst) : xasprintf("%s/32", dst);
		uint32_t net;
		int bits;
		if (cidr_parse(full, &net, &bits))
			state_add(s, OVERLAY_ROUTE, full, gw);
	}
}

static void parse_neighs(const char *text, struct overlay_state *s)
{
	_cleanup_json_ json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	size_t i;
	json_t *n;
	json_array_foreach (j, i, n) {
		const char *dst = json_string_value(json_object_get(n, "dst"));
		char mac[18];
		if (ipv4_valid(dst) && mac_norm(json_string_value(json_object_get(n, "lladdr")), mac) &&
		    has_flag(json_object_get(n, "state"), "PERMANENT"))
			state_add(s, OVERLAY_NEIGH, dst, mac);
	}
}

static void parse_fdbs(const char *text, struct overlay_state *s)
{
	_cleanup_json_ json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	size_t i;
	json_t *f;
	json_array_foreach (j, i, f) {
		const char *dst = json_string_value(json_object_get(f, "dst"));
		char mac[18];
		if (ipv4_valid(dst) && mac_norm(json_string_value(json_object_get(f, "mac")), mac) &&
		    strcmp(mac, "00:00:00:00:00:00") != 0)
			state_add(s, OVERLAY_FDB, mac, dst);
	}
}

void agent_overlay_parse_kernel(const char *routes, const char *neighs, const char *fdbs,
				struct overlay_state *ret)
{
	*ret = (struct overlay_state){ 0 };
	parse_routes(routes, ret);
	parse_neighs(neighs, ret);
	parse_fdbs(fdbs, ret);
}

static const struct overlay_entry *find(const struct overlay_state *s, enum overlay_kind kind,
					const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].kind == kind && streq(s->v[i].key, key))
			return &s->v[i];
	return NULL;
}

void agent_overlay_plan(const struct overlay_state *cur, const struct overlay_state *want,
			struct overlay_op **ret_ops, size_t *ret_n)
{
	struct overlay_op *ops = xcalloc(cur->n + want->n + 1, sizeof(*ops));
	size_t n = 0;
	static const enum overlay_kind del_order[] = { OVERLAY_ROUTE, OVERLAY_NEIGH, OVERLAY_FDB };
	static const enum overlay_kind add_order[] = { OVERLAY_FDB, OVERLAY_NEIGH, OVERLAY_ROUTE };
	for (size_t k = 0; k < ARRAY_SIZE(del_order); k++)
		for (size_t i = 0; i < cur->n; i++)
			if (cur->v[i].kind == del_order[k] && !find(want, cur->v[i].kind, cur->v[i].key))
				ops[n++] = (struct overlay_op){ false, cur->v[i] };
	for (size_t k = 0; k < ARRAY_SIZE(add_order); k++)
		for (size_t i = 0; i < want->n; i++) {
			if (want->v[i].kind != add_order[k])
				continue;
			const struct overlay_entry *have = find(cur, want->v[i].kind, want->v[i].key);
			if (!have || !streq(have->value, want->v[i].value))
				ops[n++] = (struct overlay_op){ true, want->v[i] };
		}
	*ret_ops = ops;
	*ret_n = n;
}

char **agent_overlay_op_argv(const struct overlay_op *op, const char *dev)
{
	const char *k = op->e.key, *v = op->e.value;
	switch (op->e.kind) {
	case OVERLAY_ROUTE:
		if (op->add)
			return strv_dup((const char *[]){ "ip", "route", "replace", k, "via", v, "dev", dev,
							  "onlink", NULL });
		return strv_dup((const char *[]){ "ip", "route", "del", k, "dev", dev, NULL });
	case OVERLAY_NEIGH:
		if (op->add)
			return strv_dup((const char *[]){ "ip", "neigh", "replace", k, "lladdr", v, "dev",
							  dev, "nud", "permanent", NULL });
		return strv_dup((const char *[]){ "ip", "neigh", "del", k, "dev", dev, NULL });
	case OVERLAY_FDB:
		if (op->add)
			return strv_dup((const char *[]){ "bridge", "fdb", "replace", k, "dev", dev, "dst", v,
							  "self", "permanent", NULL });
		return strv_dup(
		    (const char *[]){ "bridge", "fdb", "del", k, "dev", dev, "dst", v, "self", NULL });
	}
	return NULL;
}
