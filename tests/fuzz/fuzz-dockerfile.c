/* fuzz-dockerfile.c - the Dockerfile parser and expander must never crash. */
#include "build/dockerfile.h"
#include "build/plan.h"
#include "build/shlex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	struct dockerfile *df = NULL;
	struct berth_error *err = NULL;
	if (build_dockerfile_parse((const char *)data, size, "fuzz", &df, &err) == 0) {
		char *env[] = { (char *)"A=1", (char *)"B=", NULL };
		for (size_t i = 0; i < df->n_instrs; i++)
			for (char **a = df->instrs[i].args; *a; a++) {
				char *out = NULL;
				char **words = NULL;
				struct berth_error *e = NULL;
				if (build_shlex_process_word(*a, df->escape, env, 0, &out, &e) == 0)
					free(out);
				if (build_shlex_process_words(*a, df->escape, env, 0, &words, &e) == 0)
					strv_free(words);
				berth_error_free(e);
			}
		/* the planner (expansion, scoping, stage graph) without a context */
		char *args[] = { (char *)"A=x", (char *)"HTTP_PROXY=p", NULL };
		struct build_plan_opts o = { .build_args = args };
		struct build_plan *plan = NULL;
		struct berth_error *pe = NULL;
		if (build_plan_new(df, NULL, &o, &plan, &pe) == 0) {
			json_t *j = build_plan_to_json(plan);
			json_decref(j);
			build_plan_free(plan);
		}
		free(berth_error_string(pe));
		berth_error_free(pe);
		json_decref(build_dockerfile_to_json(df));
	}
	free(berth_error_string(err));
	berth_error_free(err);
	build_dockerfile_free(df);
	return 0;
}
