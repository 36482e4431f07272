/* fuzz-registry-route.c - the router and name/tag matchers must never crash on any path. */
#include "registry/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = xstrndup((const char *)data, size);
	struct route r;
	registry_route_parse(s, &r);
	if (r.name && !registry_name_valid(r.name) && r.kind != ROUTE_NAME_INVALID)
		__builtin_trap();
	if (r.name && strstr(r.name, "..") && r.kind != ROUTE_NAME_INVALID)
		__builtin_trap();
	registry_tag_valid(s);
	registry_uuid_valid(s);
	registry_route_kind_name(r.kind);
	free(s);
	return 0;
}
