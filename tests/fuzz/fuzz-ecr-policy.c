/* fuzz-ecr-policy.c - lifecycle policy parsing never crashes, explains every refusal, and evaluates. */
#include "ecr/ecr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	struct ecr_policy *p = NULL;
	char *msg = NULL;
	if (ecr_policy_parse((const char *)data, size, &p, &msg) == 0) {
		static const char *const t1[] = { "v1", "prod-2" };
		const struct ecr_image imgs[] = { { "sha256:a", t1, 2, 100.0 },
						  { "sha256:b", NULL, 0, 50.0 },
						  { "sha256:c", t1 + 1, 1, 1e9 } };
		int64_t rule[3];
		ecr_policy_evaluate(p, imgs, 3, 2e9, rule);
		ecr_policy_free(p);
	} else if (!msg) {
		__builtin_trap();
	}
	free(msg);
	return 0;
}
