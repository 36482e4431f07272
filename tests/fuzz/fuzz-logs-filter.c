/*
 * fuzz-logs-filter.c - the CloudWatch Logs filter pattern parser must never
 * crash, leak or loop: the input's first line is the pattern; when it parses,
 * it is matched against the rest (and against fixed messages: JSON, text and
 * a space-delimited line) so the matchers are fuzzed too.
 */
#include <string.h>

#include "common/macro.h"
#include "logs/filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > LOGS_FILTER_MAX + 4096)
		return 0;
	const char *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - (const char *)data) : size;
	_cleanup_free_ char *pattern = xstrndup((const char *)data, plen);
	struct logs_filter *f = NULL;
	struct berth_error *e = NULL;
	if (logs_filter_parse(pattern, &f, &e) == 0) {
		static const char *const msgs[] = {
			"{\"level\":\"error\",\"n\":5,\"a\":{\"b\":[1,\"x\",null,true]}}",
			"ERROR disk full \"quoted\" [bracket] -x ?y",
			"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326",
		};
		for (size_t i = 0; i < ARRAY_SIZE(msgs); i++)
			(void)logs_filter_match(f, msgs[i], strlen(msgs[i]));
		if (nl)
			(void)logs_filter_match(f, nl + 1, size - plen - 1);
		logs_filter_free(f);
	}
	berth_error_free(e);
	return 0;
}
