/*
 * fuzz-http-quick.c - the HTTP fast path's framing (http/quick.c) on raw
 * client bytes. Oracle: a READY request is a complete HTTP/1.1 request whose
 * body ends exactly at the end of the input, with a plain path (starting
 * with '/', no '%', '?' or control bytes) and an upper-case method; MORE
 * only while no head ended within the limit; nothing reads past the input
 * (ASan).
 */
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "http/quick.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = xmalloc(size ? size : 1); /* exactly the input: ASan sees any overread */
	memcpy(buf, data, size);
	struct http_quick_req q;
	enum http_quick_parse r = http_quick_parse(buf, size, &q);
	if (r == HTTP_QUICK_READY) {
		if (q.body + q.body_len != buf + size || q.path[0] != '/' || !q.method[0])
			__builtin_trap();
		for (const char *p = q.path; *p; p++)
			if (*p <= ' ' || *p == '%' || *p == '?' || *p == 0x7f)
				__builtin_trap();
		for (const char *p = q.method; *p; p++)
			if (*p < 'A' || *p > 'Z')
				__builtin_trap();
	} else if (r == HTTP_QUICK_MORE && size >= HTTP_QUICK_MAX) {
		__builtin_trap();
	}
	free(buf);
	return 0;
}
