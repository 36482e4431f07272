/* fuzz-dns-records.c - the resolver's records file is written by another process: hostile input. */
#include "net/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct dns_records *r = NULL;
	struct berth_error *e = NULL;
	if (net_dns_records_parse((const char *)data, size, &r, &e) == 0) {
		uint32_t out[8];
		bool known;
		net_dns_records_lookup(r, "web", out, 8, &known);
		net_dns_records_lookup(r, "web.default.local", out, 8, NULL);
	}
	net_dns_records_free(r);
	berth_error_free(e);
	return 0;
}
