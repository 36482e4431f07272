/*
 * fuzz-registry-range.c - the byte ranges a registry client sends: a chunk's
 * Content-Range (PATCH .../blobs/uploads/<uuid>) and a blob GET's Range header.
 * The input's first 8 bytes are the blob size (little-endian), the rest the
 * header value. Oracle: an accepted Content-Range has a <= b; an accepted Range
 * lies inside the blob (start <= end < size).
 */
#include "http/http.h"
#include "registry/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 8 || size > 4096)
		return 0;
	uint64_t blob = 0;
	memcpy(&blob, data, 8);
	if (data[0] & 1)
		blob &= 0xffff; /* small blobs too */
	char *s = xstrndup((const char *)data + 8, size - 8);
	uint64_t a = 0, b = 0;
	int r = registry_content_range_parse(s, &a, &b);
	if (r < -1 || r > 1 || (r == 1 && a > b))
		__builtin_trap();
	r = http_range_parse(s, blob, &a, &b);
	if (r < -1 || r > 1 || (r == 1 && (a > b || b >= blob)))
		__builtin_trap();
	free(s);
	return 0;
}
