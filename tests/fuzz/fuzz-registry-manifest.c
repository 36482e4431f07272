/* fuzz-registry-manifest.c - manifest validation must never crash; first line = Content-Type. */
#include "registry/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	const char *nl = memchr(data, '\n', size);
	_cleanup_free_ char *ct = nl ? xstrndup((const char *)data, (size_t)(nl - (const char *)data)) : NULL;
	const char *body = nl ? nl + 1 : (const char *)data;
	size_t len = size - (size_t)(body - (const char *)data);
	struct manifest_info m;
	struct berth_error *err = NULL;
	if (registry_manifest_parse(ct, body, len, &m, &err) == 0)
		registry_manifest_info_done(&m);
	free(berth_error_string(err));
	berth_error_free(err);
	return 0;
}
