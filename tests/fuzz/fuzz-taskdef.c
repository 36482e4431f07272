/* fuzz-taskdef.c - the task-definition validator never crashes and always explains a refusal. */
#include "server/taskdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	json_t *in = json_loadb((const char *)data, size, 0, NULL);
	if (!in)
		return 0;
	json_t *out = NULL;
	struct taskdef_error e;
	if (server_taskdef_validate(in, &out, &e) == 0) {
		if (!json_is_object(out) || !json_object_get(out, "containerDefinitions"))
			__builtin_trap();
		server_taskdef_cpu(out);
		server_taskdef_memory(out);
		json_decref(out);
	} else {
		if (!e.type || !e.msg)
			__builtin_trap();
		free(e.msg);
	}
	json_decref(in);
	return 0;
}
