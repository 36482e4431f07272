/*
 * netalloc.c - IPv4 CIDR arithmetic for the subnet allocator (netalloc.h).
 * server_netalloc_pick sorts a copy of the used list and walks the pool once: the
 * pool holds at most 2^(block_bits - pool bits) blocks, a few thousand in
 * practice, so a linear walk is cheaper than anything cleverer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "server/netalloc.h"

static uint32_t mask_of(int bits)
{
	return bits <= 0 ? 0 : bits >= 32 ? 0xffffffffu : ~((1u << (32 - bits)) - 1);
}

int server_netalloc_parse(const char *s, bool strict, struct netalloc_cidr *ret)
{
	const char *slash = s ? strchr(s, '/') : NULL;
	if (!slash || slash == s || (size_t)(slash - s) >= NETALLOC_CIDR_MAX)
		return -EINVAL;
	char ip[NETALLOC_CIDR_MAX];
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, ip, &a) != 1)
		return -EINVAL;
	const char *p = slash + 1;
	if (!*p || strlen(p) > 2 || (p[0] == '0' && p[1]))
		return -EINVAL;
	int bits = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		bits = bits * 10 + (*p - '0');
	}
	if (bits > 32)
		return -EINVAL;
	uint32_t addr = ntohl(a.s_addr);
	if (strict && (addr & ~mask_of(bits)))
		return -EINVAL;
	ret->addr = addr & mask_of(bits);
	ret->bits = bits;
	return 0;
}

char *server_netalloc_format_addr(uint32_t addr, char *buf)
{
	snprintf(buf, NETALLOC_CIDR_MAX, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
		 addr & 0xff);
	return buf;
}

char *server_netalloc_format(const struct netalloc_cidr *c, char *buf)
{
	char a[NETALLOC_CIDR_MAX];
	snprintf(buf, NETALLOC_CIDR_MAX, "%s/%d", server_netalloc_format_addr(c->addr, a), c->bits);
	return buf;
}

bool server_netalloc_contains(const struct netalloc_cidr *outer, const struct netalloc_cidr *inner)
{
	return inner->bits >= outer->bits && (inner->addr & mask_of(outer->bits)) == outer->addr;
}

int server_netalloc_blocks(const struct netalloc_cidr *subnet, int block_bits, uint32_t *ret, size_t *ret_n)
{
	if (subnet->bits >= block_bits) {
		ret[0] = subnet->addr & mask_of(block_bits);
		*ret_n = 1;
		return 0;
	}
	if (block_bits - subnet->bits > 8)
		return -E2BIG;
	size_t n = (size_t)1 << (block_bits - subnet->bits);
	if (n > NETALLOC_MAX_BLOCKS)
		return -E2BIG;
	uint32_t step = block_bits >= 32 ? 1 : 1u << (32 - block_bits);
	for (size_t i = 0; i < n; i++)
		ret[i] = subnet->addr + (uint32_t)i * step;
	*ret_n = n;
	return 0;
}

uint32_t server_netalloc_block_count(const struct netalloc_cidr *pool, int block_bits)
{
	int d = block_bits - pool->bits;
	return d < 0 ? 0 : d >= 32 ? UINT32_MAX : 1u << d;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int server_netalloc_pick(const struct netalloc_cidr *pool, int block_bits, const uint32_t *used, size_t n,
			 uint32_t *ret)
{
	if (block_bits < pool->bits || block_bits > 32)
		return -EINVAL;
	uint32_t *sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	if (n)
		memcpy(sorted, used, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u32);
	uint64_t step = (uint64_t)1 << (32 - block_bits);
	uint64_t end = (uint64_t)pool->addr + ((uint64_t)1 << (32 - pool->bits));
	size_t k = 0;
	int r = -ENOSPC;
	for (uint64_t b = pool->addr; b < end; b += step) {
		while (k < n && sorted[k] < b)
			k++;
		if (k < n && sorted[k] == b)
			continue;
		*ret = (uint32_t)b;
		r = 0;
		break;
	}
	free(sorted);
	return r;
}
