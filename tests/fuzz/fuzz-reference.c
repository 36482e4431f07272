/* fuzz-reference.c - the image reference parser must never crash or leak. */
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = xstrndup((const char *)data, size);
	struct image_ref *r = NULL;
	struct berth_error *err = NULL;
	if (image_ref_parse(s, IMAGE_REF_DEFAULT_TAG, &r, &err) == 0) {
		char *a = image_ref_string(r), *b = image_ref_familiar(r);
		struct image_ref *again = NULL;
		/* Normalised output must parse back to itself. */
		if (image_ref_parse(a, 0, &again, NULL) != 0)
			abort();
		char *c = image_ref_string(again);
		if (strcmp(a, c) != 0)
			abort();
		free(a);
		free(b);
		free(c);
		image_ref_free(again);
	}
	image_ref_free(r);
	berth_error_free(err);
	struct image_platform p;
	if (image_platform_parse(s, &p, NULL) == 0)
		image_platform_done(&p);
	free(s);
	return 0;
}
