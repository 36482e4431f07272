/* fuzz-build-flags.c - --chmod, --secret and --ssh values must never crash. */
#include "build/flags.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = xstrndup((const char *)data, size);
	struct berth_error *err = NULL;
	if (build_chmod_check(s, &err) == 0) {
		(void)build_chmod_apply(s, 0644, false);
		(void)build_chmod_apply(s, 0755, true);
	}
	struct build_secret_spec sp;
	if (build_secret_spec_parse(s, &sp, &err) == 0)
		build_secret_spec_done(&sp);
	char *id = NULL, *sock = NULL;
	if (build_ssh_spec_parse(s, "/s", &id, &sock, &err) == 0) {
		free(id);
		free(sock);
	}
	berth_error_free(err);
	free(s);
	return 0;
}
