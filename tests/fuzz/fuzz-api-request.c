/*
 * fuzz-api-request.c - Docker API request parsing: the input is
 * "METHOD PATH\nBODY"; the path goes through the router, the body through
 * the JSON loader and container config validation (create's checks).
 */
#include <stdint.h>

#include "api/api.h"
#include "common/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	const char *nl = memchr(data, '\n', size);
	size_t head = nl ? (size_t)(nl - (const char *)data) : size;
	_cleanup_free_ char *line = xstrndup((const char *)data, head);
	char *sp = strchr(line, ' ');
	if (sp) {
		*sp = '\0';
		(void)api_route_exists(line, sp + 1);
	}
	if (!nl)
		return 0;
	json_t *body = NULL;
	struct berth_error *err = NULL;
	if (json_parse(nl + 1, size - head - 1, "body", &body, &err) == 0) {
		(void)engine_container_config_check(body, json_object_get(body, "HostConfig"), &err);
		json_decref(body);
	}
	berth_error_free(err);
	return 0;
}
