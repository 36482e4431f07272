/* fuzz-yaml-json.c - YAML to JSON never crashes; what it returns is valid JSON. */
#include "cli/yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > YAMLJSON_MAX_SIZE)
		return 0;
	json_t *j = NULL;
	if (cli_yaml_to_json((const char *)data, size, &j, NULL) == 0) {
		if (!j)
			__builtin_trap();
		char *s = json_dumps(j, JSON_ENCODE_ANY);
		if (!s)
			__builtin_trap();
		free(s);
		json_decref(j);
	}
	(void)cli_yamljson_looks_like_json((const char *)data, size);
	return 0;
}
