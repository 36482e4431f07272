/* fuzz-spec.c - the config.json parser must never crash, leak or misbehave on any input. */
#include "common/json.h"
#include "runtime/container.h"
#include "runtime/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *j = NULL;
	if (json_parse((const char *)data, size, "fuzz", &j, &err) < 0)
		return 0;
	_cleanup_spec_ struct runtime_spec *s = NULL;
	if (runtime_spec_parse(j, "/bundle", &s, &err) < 0) {
		free(berth_error_string(err));
		return 0;
	}
	/* The process object alone and resources alone, as exec --process and update see them. */
	json_t *p = json_object_get(j, "process");
	if (p) {
		struct runtime_process proc;
		struct berth_error *e = NULL;
		if (runtime_process_parse(p, "process", &proc, &e) == 0)
			runtime_process_done(&proc);
		berth_error_free(e);
	}
	/* The seccomp section as the runtime compiles it (libseccomp, in the parent). */
	if (s->seccomp) {
		struct sock_fprog *prog = NULL;
		struct berth_error *e = NULL;
		if (runtime_seccomp_compile(s->seccomp, NULL, &prog, &e) == 0)
			runtime_seccomp_prog_free(prog);
		free(berth_error_string(e));
		berth_error_free(e);
	}
	/* linux.resources alone, as `update --resources` reads it. */
	json_t *res = json_object_get(json_object_get(j, "linux"), "resources");
	if (res) {
		struct runtime_resources rr;
		struct berth_error *e = NULL;
		if (runtime_resources_parse(res, "resources", &rr, &e) == 0)
			runtime_resources_done(&rr);
		berth_error_free(e);
	}
	return 0;
}
