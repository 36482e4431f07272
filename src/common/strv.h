/*
 * strv.h - NULL-terminated string vectors (char **), the shape argv, envp
 * and the json_get_strv() results have. strv_free and _cleanup_strv_ live in
 * common/macro.h.
 *
 * Readers take `const char *const *`; STRV_CONST() lets callers pass any of
 * char **, char *const *, const char ** or const char *const * without a cast
 * (and refuses anything else at compile time). The one-vector macros are
 * variadic so that a compound literal ((const char *[]){ "a", "b", NULL })
 * passes through. A NULL vector is empty.
 */
#ifndef BERTH_COMMON_STRV_H
#define BERTH_COMMON_STRV_H

#include <jansson.h>

#include "common/macro.h"

/* clang-format off */
#ifdef __CPPCHECK__ /* cppcheck 2.10 does not parse _Generic (scripts/lint.sh defines it) */
#define STRV_CONST(v) ((const char *const *)(v))
#else
#define STRV_CONST(v)                                        \
	_Generic((v),                                        \
		char **: (const char *const *)(v),           \
		char *const *: (const char *const *)(v),     \
		const char **: (const char *const *)(v),     \
		const char *const *: (const char *const *)(v))
#endif
/* clang-format on */

size_t strv_length_(const char *const *v);
#define strv_length(...) strv_length_(STRV_CONST((__VA_ARGS__)))

/* Append a copy of s to *v (*v may be NULL: a new vector). */
void strv_add(char ***v, const char *s);

/* A deep copy; an empty vector (never NULL) for NULL. */
char **strv_dup_(const char *const *v);
#define strv_dup(...) strv_dup_(STRV_CONST((__VA_ARGS__)))

bool strv_contains_(const char *const *v, const char *s);
#define strv_contains(v, s) strv_contains_(STRV_CONST(v), s)

/* A new JSON array of the strings (empty for NULL). */
json_t *strv_to_json_(const char *const *v);
#define strv_to_json(...) strv_to_json_(STRV_CONST((__VA_ARGS__)))

/* "KEY=VALUE" -> o[KEY] = "VALUE" (a bare "KEY" sets ""), as docker's --label/--opt. */
void strv_kv_set(json_t *o, const char *kv);

/* A vector of "KEY=VALUE" as a new JSON object (a later KEY wins). */
json_t *strv_kv_to_json_(const char *const *v);
#define strv_kv_to_json(...) strv_kv_to_json_(STRV_CONST((__VA_ARGS__)))

#endif
