/*
 * netalloc.h - IPv4 CIDR arithmetic for the overlay's subnet allocator (pure:
 * no store, no I/O; the allocation itself is in overlay.c).
 *
 * The cluster CIDR (--cluster-cidr, e.g. 10.42.0.0/16) is cut into blocks of
 * one prefix length (--node-subnet-size, e.g. 24); every node holds blocks.
 * A node's subnet is normally exactly one block; an explicit --task-subnet of
 * the agent may be smaller (it holds the block around it) or larger (it holds
 * every block it covers). Addresses are host byte order.
 */
#ifndef BERTH_SERVER_NETALLOC_H
#define BERTH_SERVER_NETALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text of an IPv4 CIDR, with its NUL. */
#define NETALLOC_CIDR_MAX   sizeof("255.255.255.255/32")
/* Most blocks one explicit subnet may cover (a bigger one is refused: etcd caps a transaction at 128
 * operations). */
#define NETALLOC_MAX_BLOCKS 32

struct netalloc_cidr {
	uint32_t addr; /* network address (host bits cleared) */
	int bits;      /* prefix length 0..32 */
};

/*
 * Parse "A.B.C.D/N". strict: host bits must be zero (-EINVAL otherwise);
 * otherwise they are cleared. -EINVAL for anything that is not an IPv4 CIDR.
 */
int server_netalloc_parse(const char *s, bool strict, struct netalloc_cidr *ret);
/* Format into buf (at least NETALLOC_CIDR_MAX bytes); returns buf. */
char *server_netalloc_format(const struct netalloc_cidr *c, char *buf);
/* Format an address alone ("10.42.3.0"). buf: at least NETALLOC_CIDR_MAX bytes. */
char *server_netalloc_format_addr(uint32_t addr, char *buf);
/* Whether inner lies entirely inside outer. */
bool server_netalloc_contains(const struct netalloc_cidr *outer, const struct netalloc_cidr *inner);
/*
 * The block addresses (prefix length block_bits) that subnet overlaps, into
 * ret[0..*ret_n) (room for NETALLOC_MAX_BLOCKS). -E2BIG when more.
 */
int server_netalloc_blocks(const struct netalloc_cidr *subnet, int block_bits, uint32_t *ret, size_t *ret_n);
/* Number of blocks of block_bits in pool (saturates at UINT32_MAX). */
uint32_t server_netalloc_block_count(const struct netalloc_cidr *pool, int block_bits);
/*
 * The first block of pool (prefix block_bits) whose address is not in used
 * (n addresses, any order). -ENOSPC when every block is used; *ret untouched.
 */
int server_netalloc_pick(const struct netalloc_cidr *pool, int block_bits, const uint32_t *used, size_t n,
			 uint32_t *ret);

#endif
