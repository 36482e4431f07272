/* fuzz-dns-query.c - DNS queries from containers are hostile input for the embedded resolver. */
#include <netinet/in.h>

#include "net/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	struct dns_query q;
	struct berth_error *e = NULL;
	if (net_dns_parse_query(data, size, &q, &e) == 0) {
		uint8_t out[1232];
		uint32_t addrs[3] = { 1, 2, 3 };
		net_dns_build_reply(data, &q, 0, addrs, 3, out, sizeof(out));
		net_dns_build_reply(data, &q, 3, NULL, 0, out, 16);
		struct in6_addr a6[2] = { IN6ADDR_LOOPBACK_INIT, IN6ADDR_ANY_INIT };
		net_dns_build_reply6(data, &q, a6, 2, out, sizeof(out));
	}
	berth_error_free(e);
	return 0;
}
