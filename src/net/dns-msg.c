/*
 * dns-msg.c - the little of RFC 1035 the embedded resolver needs: parse one
 * question of a query, build an answer with A or AAAA records (name
 * compressed as a pointer to the question), or an empty/error reply. Hostile packets get
 * -EINVAL, never a read past the buffer. Fuzzed by fuzz-dns-query.
 */
#include <arpa/inet.h>
#include <ctype.h>

#include "net/internal.h"

#define DNS_HEADER DNS_HEADER_LEN

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int net_dns_parse_query(const uint8_t *buf, size_t len, struct dns_query *q, struct berth_error **err)
{
	if (len < DNS_HEADER + 5)
		return berth_error_msg(err, EINVAL, "dns query too short");
	if (buf[2] & 0x80)
		return berth_error_msg(err, EINVAL, "dns packet is a response");
	if (((buf[2] >> 3) & 0xf) != 0)
		return berth_error_msg(err, EINVAL, "dns opcode %d not supported", (buf[2] >> 3) & 0xf);
	if (rd16(buf + 4) != 1)
		return berth_error_msg(err, EINVAL, "dns query must have exactly one question");
	size_t off = DNS_HEADER, n = 0;
	while (off < len && buf[off] != 0) {
		size_t l = buf[off];
		if (l > 63)
			return berth_error_msg(err, EINVAL, "dns label too long or compressed");
		if (off + 1 + l >= len || n + l + 1 > DNS_NAME_MAX)
			return berth_error_msg(err, EINVAL, "dns name truncated or too long");
		if (n)
			q->name[n++] = '.';
		for (size_t i = 0; i < l; i++) {
			unsigned char c = buf[off + 1 + i];
			if (c <= ' ' || c > '~')
				return berth_error_msg(err, EINVAL, "dns name has invalid characters");
			q->name[n++] = (char)tolower(c);
		}
		off += 1 + l;
	}
	if (off + 5 > len)
		return berth_error_msg(err, EINVAL, "dns question truncated");
	q->name[n] = '\0';
	q->id = rd16(buf);
	q->rd = buf[2] & 1;
	q->qtype = rd16(buf + off + 1);
	q->qclass = rd16(buf + off + 3);
	q->end = off + 5;
	return 0;
}

/* Header + question of query + n records of type (rdata of rdlen bytes each, network order). */
static size_t build(const uint8_t *query, const struct dns_query *q, int rcode, uint16_t type,
		    const uint8_t *rdata, size_t rdlen, size_t n, uint8_t *out, size_t cap)
{
	size_t need = q->end + n * (12 + rdlen);
	if (need > cap || q->end > cap)
		return 0;
	memcpy(out, query, q->end);
	out[2] = (uint8_t)(0x80 | 0x04 | (q->rd ? 1 : 0)); /* QR, AA, RD copied */
	out[3] = (uint8_t)(0x80 | (rcode & 0xf));          /* RA */
	wr16(out + 4, 1);
	wr16(out + 6, (uint16_t)n);
	wr16(out + 8, 0);
	wr16(out + 10, 0);
	size_t off = q->end;
	for (size_t i = 0; i < n; i++) {
		wr16(out + off, 0xc000 | DNS_HEADER); /* name: pointer to the question */
		wr16(out + off + 2, type);
		wr16(out + off + 4, DNS_CLASS_IN);
		uint32_t ttl = htonl(DNS_TTL);
		memcpy(out + off + 6, &ttl, 4);
		wr16(out + off + 10, (uint16_t)rdlen);
		memcpy(out + off + 12, rdata + i * rdlen, rdlen);
		off += 12 + rdlen;
	}
	return off;
}

size_t net_dns_build_reply(const uint8_t *query, const struct dns_query *q, int rcode, const uint32_t *addrs,
			   size_t n, uint8_t *out, size_t cap)
{
	uint32_t be[DNS_MAX_ANSWERS];
	if (n > DNS_MAX_ANSWERS)
		n = DNS_MAX_ANSWERS;
	for (size_t i = 0; i < n; i++)
		be[i] = htonl(addrs[i]);
	return build(query, q, rcode, DNS_TYPE_A, (const uint8_t *)be, 4, n, out, cap);
}

size_t net_dns_build_reply6(const uint8_t *query, const struct dns_query *q, const struct in6_addr *addrs,
			    size_t n, uint8_t *out, size_t cap)
{
	return build(query, q, DNS_RCODE_OK, DNS_TYPE_AAAA, (const uint8_t *)addrs, 16, n, out, cap);
}
