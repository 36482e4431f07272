/*
 * fuzz-registry-target.c - a raw request-target through the registry's path
 * handling: the framing check (common/util.h), percent-decoding as
 * libmicrohttpd does it, then the router. Oracle: a target that passes the
 * check decodes without a NUL byte, so the router sees the whole path.
 */
#include <stdint.h>

#include "common/util.h"
#include "common/macro.h"
#include "registry/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* MHD_http_unescape: "%HH" decoded, anything else copied. Returns the decoded length. */
static size_t unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		int a, b;
		if (r[0] == '%' && (a = hex_digit_value(r[1])) >= 0 && (b = hex_digit_value(r[2])) >= 0) {
			*w++ = (char)(a * 16 + b);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096 || memchr(data, '\0', size))
		return 0;
	_cleanup_free_ char *s = xstrndup((const char *)data, size);
	if (util_http_target_check(s) < 0)
		return 0;
	char *q = strchr(s, '?');
	if (q)
		*q++ = '\0';
	size_t n = unescape(s);
	if (strlen(s) != n)
		__builtin_trap(); /* the path decoded to something with a NUL in it */
	while (q && *q) {
		char *amp = strchr(q, '&');
		if (amp)
			*amp = '\0';
		size_t qn = unescape(q);
		if (strlen(q) != qn)
			__builtin_trap(); /* a query value decoded to something with a NUL in it */
		q = amp ? amp + 1 : NULL;
	}
	struct route r;
	registry_route_parse(s, &r);
	if (r.name && !registry_name_valid(r.name) && r.kind != ROUTE_NAME_INVALID)
		__builtin_trap();
	return 0;
}
