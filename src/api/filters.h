/*
 * filters.h - private to api/: docker's ?filters= query parameter.
 *
 * Docker sends {"key": {"value": true, ...}} (current clients) or
 * {"key": ["value", ...]} (old ones); both are accepted.
 */
#ifndef BERTH_API_FILTERS_H
#define BERTH_API_FILTERS_H

#include <jansson.h>

#include "common/error.h"

/*
 * Parse a filters value (may be NULL or "": *ret = NULL). -EINVAL when it
 * is not an object of string arrays / objects of booleans, or when a key is
 * not in `allowed` (NULL-terminated; NULL: any key) ("invalid filter 'k'").
 */
int api_filters_parse(const char *q, const char *const *allowed, json_t **ret, struct berth_error **err);
/*
 * The values of one key (NULL-terminated, caller frees with strv_free); NULL when absent.
 * In the object form every member's name is a value, true or false: {"label":{"a=b":false}}
 * filters on a=b, as dockerd (its filters.Args.Get ignores the booleans).
 */
char **api_filter_values(const json_t *filters, const char *key);

/*
 * dockerd's filters.Args.Match: does any of vals, an unanchored regular
 * expression, match source? (name and id filters: "^web", "db$")
 */
bool api_filter_match(char **vals, const char *source);

#endif
