/* fuzz-ecs-shape.c - the ECS request-shape checker never crashes, explains every refusal, and what it
 * passes holds no null below the top (the first input byte picks the operation). */
#include <stdint.h>
#include <stdlib.h>

#include "server/ecs-shape.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_null(json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;
	if (json_is_null(v))
		return true;
	if (json_is_object(v))
		json_object_foreach (v, k, x)
			if (has_null(x))
				return true;
	if (json_is_array(v))
		json_array_foreach (v, i, x)
			if (has_null(x))
				return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	const struct ecs_shape *s = server_ecs_model_ops[data[0] % server_ecs_model_n_ops].input;
	json_t *in = json_loadb((const char *)data + 1, size - 1, 0, NULL);
	if (!json_is_object(in)) {
		json_decref(in);
		return 0;
	}
	char *msg = NULL;
	enum ecs_shape_problem p = server_ecs_shape_check(s, in, &msg);
	if (p == ECS_SHAPE_OK ? msg != NULL || has_null(in) : msg == NULL)
		__builtin_trap();
	free(msg);
	json_decref(in);
	return 0;
}
