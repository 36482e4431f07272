/*
 * fuzz-api-params.c - request parameters the daemon decodes itself: the
 * X-Registry-Auth header, ?filters= and the "until" filter value. The input
 * is used as each of them.
 */
#include <stdint.h>

#include "api/filters.h"
#include "api/remote.h"
#include "api/routes.h"
#include "common/json.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	_cleanup_free_ char *s = xstrndup((const char *)data, size);
	struct berth_error *err = NULL;
	json_t *j = NULL;
	if (api_registry_auth_parse(s, &j, &err) == 0) {
		struct image_auth a;
		(void)api_registry_auth_of(j, &a);
		json_decref(j);
	}
	berth_error_free(err);
	err = NULL;
	if (api_filters_parse(s, NULL, &j, &err) == 0) {
		char **v = api_filter_values(j, "label");
		strv_free(v);
		json_decref(j);
	}
	berth_error_free(err);
	int64_t t;
	(void)api_parse_until(s, &t);
	return 0;
}
