/*
 * fuzz-aws-config.c - the aws CLI credentials/config parser never crashes,
 * and what it accepts answers lookups consistently.
 */
#include "aws/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > AWS_INI_MAX_SIZE + 16)
		return 0;
	struct aws_ini *ini = NULL;
	if (aws_ini_parse((const char *)data, size, &ini, NULL) == 0) {
		const char *v = aws_ini_get(ini, "default", "aws_access_key_id");
		if (v && !aws_ini_has_section(ini, "default"))
			__builtin_trap();
		(void)aws_ini_get(ini, "profile x", "region");
		aws_ini_free(ini);
	}
	return 0;
}
