/* internal.h - shared by the files of src/ecr; not part of its API (ecr.h is). */
#ifndef BERTH_ECR_INTERNAL_H
#define BERTH_ECR_INTERNAL_H

#include "common/macro.h"

/* Set *ret_msg (caller frees) from the format; returns -EINVAL. */
int ecr_fail(char **ret_msg, const char *fmt, ...) _printf_(2, 3);

#endif
