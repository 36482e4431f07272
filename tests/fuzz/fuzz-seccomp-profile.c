/* fuzz-seccomp-profile.c - docker seccomp profiles, -v specs and --mount objects must never crash or leak. */
#include "common/json.h"
#include "engine/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	struct berth_error *err = NULL;
	json_t *caps = json_pack("[s,s]", "CAP_CHOWN", "CAP_SYS_ADMIN");
	json_t *oci = NULL;
	if (engine_seccomp_profile_to_oci((const char *)data, size, caps, &oci, &err) == 0)
		json_decref(oci);
	free(berth_error_string(err));
	berth_error_free(err);
	json_decref(caps);
	/* the same bytes as a -v spec */
	char *spec = xstrndup((const char *)data, size);
	json_t *m = NULL;
	err = NULL;
	if (engine_bind_parse(spec, &m, &err) == 0)
		json_decref(m);
	berth_error_free(err);
	free(spec);
	/* and as a --mount object (bind sources are stat()ed: harmless) */
	json_t *j = json_loadb((const char *)data, size, 0, NULL);
	if (j) {
		err = NULL;
		m = NULL;
		if (engine_mount_parse(j, "m", &m, &err) == 0)
			json_decref(m);
		berth_error_free(err);
		json_decref(j);
	}
	return 0;
}
