/*
 * fuzz-runtime-registry.c - the daemon's runtime definitions (runtime/registry.h):
 * the input as a config file's "runtimes" object and, line by line, as
 * --add-runtime values, then the default's check and /info's map; never a
 * crash or a leak, and a failed call adds nothing.
 */
#include "common/json.h"
#include "runtime/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 14)
		return 0;
	struct runtime_registry r;
	runtime_registry_init(&r);
	_cleanup_json_ json_t *j = NULL;
	if (json_parse((const char *)data, size, "fuzz", &j, NULL) == 0) {
		struct berth_error *err = NULL;
		size_t n = r.n;
		if (runtime_registry_add_json(&r, j, &err) < 0 && r.n != n)
			__builtin_trap();
		berth_error_free(err);
	}
	_cleanup_free_ char *text = xstrndup((const char *)data, size);
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct berth_error *err = NULL;
		size_t n = r.n;
		if (runtime_registry_add_opt(&r, line, &err) < 0 && r.n != n)
			__builtin_trap();
		berth_error_free(err);
		if (!runtime_registry_find(&r, "berth"))
			__builtin_trap();
	}
	runtime_registry_set_default(&r, text);
	struct berth_error *err = NULL;
	runtime_registry_check(&r, &err);
	berth_error_free(err);
	json_decref(runtime_registry_info(&r));
	runtime_registry_done(&r);
	return 0;
}
