/*
 * json.h - typed access to JSON documents (jansson) with precise errors.
 *
 * Every getter takes the object, the JSON path of that object (for messages,
 * e.g. "process.user"; "" or NULL for the root) and a key. On a type mismatch
 * or a missing required member it fails with -EINVAL and an error such as
 *
 *     'process.user.uid': expected unsigned 32-bit integer, got string
 *
 * Return values: 1 when the member is present and valid, 0 when it is absent
 * (or JSON null) and flags lack JSON_REQUIRED (the output is untouched then),
 * negative errno on failure (output untouched). Borrowed pointers (strings,
 * objects, arrays) live as long as the document.
 */
#ifndef BERTH_COMMON_JSON_H
#define BERTH_COMMON_JSON_H

#include <jansson.h>

#include "common/error.h"

enum json_get_flags {
	JSON_OPTIONAL = 0,
	JSON_REQUIRED = 1 << 0,
};

/* Upper bound on documents we load from files or the network by default. */
#define JSON_DEFAULT_MAX_SIZE (16u << 20)

/* json_decrefp() comes from jansson >= 2.9 */
#define _cleanup_json_ _cleanup_(json_decrefp)

/* Parse a buffer (need not be NUL-terminated). Error names line and column. */
int json_parse(const char *buf, size_t len, const char *what, json_t **ret, struct berth_error **err);
/* Read and parse a file of at most max bytes (0 = JSON_DEFAULT_MAX_SIZE). */
int json_load_path(const char *path, size_t max, json_t **ret, struct berth_error **err);
/* Like json_load_path(), relative to dirfd. */
int json_load_at(int dirfd, const char *path, size_t max, json_t **ret, struct berth_error **err);

/* Name of a JSON type for messages ("string", "object", ...). */
const char *json_type_name(const json_t *j);
/* Join parent path and key: ("a.b", "c") -> "a.b.c", (NULL, "c") -> "c". Caller frees. */
char *json_path_join(const char *parent, const char *key);
/* Path of an array element: ("a.b", 3) -> "a.b[3]". Caller frees. */
char *json_path_index(const char *parent, size_t index);

/* Fail with "'path': expected <what>, got <type>". Always returns -EINVAL. */
int json_type_error(const char *parent, const char *key, const char *expected, const json_t *got,
		    struct berth_error **err);

int json_get_string(const json_t *obj, const char *path, const char *key, int flags, const char **ret,
		    struct berth_error **err);
int json_get_bool(const json_t *obj, const char *path, const char *key, int flags, bool *ret,
		  struct berth_error **err);
int json_get_int64(const json_t *obj, const char *path, const char *key, int flags, int64_t *ret,
		   struct berth_error **err);
/* Integer within [min, max]; JSON reals with an integral value are refused. */
int json_get_int_range(const json_t *obj, const char *path, const char *key, int flags, int64_t min,
		       int64_t max, int64_t *ret, struct berth_error **err);
int json_get_uint32(const json_t *obj, const char *path, const char *key, int flags, uint32_t *ret,
		    struct berth_error **err);
int json_get_uint64(const json_t *obj, const char *path, const char *key, int flags, uint64_t *ret,
		    struct berth_error **err);
int json_get_double(const json_t *obj, const char *path, const char *key, int flags, double *ret,
		    struct berth_error **err);
int json_get_object(const json_t *obj, const char *path, const char *key, int flags, json_t **ret,
		    struct berth_error **err);
int json_get_array(const json_t *obj, const char *path, const char *key, int flags, json_t **ret,
		   struct berth_error **err);

/*
 * Array of strings -> newly allocated NULL-terminated vector (free with
 * strv_free). Each element must be a string; the error names its index.
 */
int json_get_strv(const json_t *obj, const char *path, const char *key, int flags, char ***ret,
		  struct berth_error **err);

/* Object of string values -> NULL-terminated "k=v" vector (e.g. labels). */
int json_get_string_map(const json_t *obj, const char *path, const char *key, int flags, char ***ret,
			struct berth_error **err);

/* Serialize compactly with sorted keys off (insertion order). Caller frees. */
char *json_dump_compact(const json_t *j);

/*
 * Index of the first string member of array a equal to s (ASCII case-insensitively when
 * icase), or -1: none, a not an array (NULL included), or s NULL. Members that are not
 * strings never match.
 */
ssize_t json_strv_find(const json_t *a, const char *s, bool icase);
/* Whether array a holds the string s (see json_strv_find). */
bool json_strv_contains(const json_t *a, const char *s);

#endif
