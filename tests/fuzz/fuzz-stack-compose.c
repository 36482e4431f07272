/* fuzz-stack-compose.c - a compose file never crashes the parser or the mapping; a success is a plan input.
 */
#include "stack/compose.h"
#include "stack/plan.h"
#include "stack/ytree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_env(const char *name, void *ctx)
{
	(void)ctx;
	return name[0] == 'A' ? "value" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 << 10)
		return 0;
	struct compose_opts o = {
		.stack = "fz", .file = "fuzz.yml", .dir = "/nonexistent", .getenv = fuzz_env
	};
	json_t *out = NULL;
	struct berth_error *err = NULL;
	if (stack_compose_load((const char *)data, size, &o, &out, &err) == 0) {
		if (!out)
			__builtin_trap();
		json_t *cur = json_pack("{s:{},s:{},s:[]}", "services", "jobs", "loadBalancers"),
		       *plan = NULL;
		struct stack_plan_opts po = { .prune = true, .cluster = "default" };
		if (stack_plan(out, cur, &po, &plan, &err) == 0) {
			FILE *f = fopen("/dev/null", "w");
			if (f) {
				stack_plan_print(plan, f);
				fclose(f);
			}
			json_decref(plan);
		}
		json_decref(cur);
		json_decref(out);
	}
	berth_error_free(err);
	struct ytree *t = NULL;
	if (stack_ytree_parse((const char *)data, size, &t, NULL) == 0)
		stack_ytree_free(t);
	return 0;
}
