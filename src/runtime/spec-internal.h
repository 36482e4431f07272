/*
 * spec-internal.h - helpers shared by spec.c and spec-linux.c (not public).
 */
#ifndef BERTH_RUNTIME_SPEC_INTERNAL_H
#define BERTH_RUNTIME_SPEC_INTERNAL_H

#include "common/json.h"
#include "runtime/spec.h"

/* Fail with "'path.key': msg" (printf-style msg). Returns -EINVAL. */
int runtime_spec_error(struct berth_error **err, const char *path, const char *key, const char *fmt, ...)
    _printf_(4, 5);

/* Array of strings -> NULL-terminated vector of borrowed strings (vector owned). */
int runtime_spec_get_strv(const json_t *obj, const char *path, const char *key, int flags, const char ***ret,
			  struct berth_error **err);

/* Array member checked for type and size; *ret_n its length. */
int runtime_spec_get_array(const json_t *obj, const char *path, const char *key, json_t **ret, size_t *ret_n,
			   struct berth_error **err);

/* Linux section of config.json: spec.c calls it after the generic parts. */
int runtime_spec_parse_linux(const json_t *linux_obj, struct runtime_spec *s, struct berth_error **err);
void runtime_spec_linux_done(struct runtime_spec *s);

#endif
