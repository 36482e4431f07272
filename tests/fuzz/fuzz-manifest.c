/* fuzz-manifest.c - manifest/index and image config parsers. */
#include "image/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	struct manifest m;
	struct berth_error *err = NULL;
	if (image_manifest_parse((const char *)data, size, NULL, &m, &err) == 0) {
		if (m.kind == MANIFEST_INDEX) {
			struct image_platform p;
			const struct manifest_desc *d = NULL;
			image_platform_parse(NULL, &p, NULL);
			(void)image_manifest_select(&m, &p, &d, NULL);
			image_platform_done(&p);
		}
		image_manifest_done(&m);
	}
	err = berth_error_free(err);
	struct config_info c;
	if (image_config_parse((const char *)data, size, &c, &err) == 0)
		image_config_info_done(&c);
	berth_error_free(err);
	return 0;
}
