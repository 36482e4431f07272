/*
 * filter.h - CloudWatch Logs filter patterns (FilterLogEvents'
 * filterPattern), parsed once and matched against each event's message.
 *
 * Three syntaxes, chosen by the pattern's first non-blank character:
 *
 *   text            ERROR                   every term, case-sensitive substring
 *                   "Out of memory" ERROR   quoted phrases (\" and \\ escapes)
 *                   ERROR -healthcheck      '-' excludes a term or phrase
 *                   ?ERROR ?WARN            '?' terms: at least one must match
 *                   (empty pattern)         everything
 *   JSON  '{'       { $.level = "error" }   selectors $.a.b, $.a[0]; values
 *                   { $.latency > 100 }     "strings" (with * wildcards), bare
 *                   { ($.a = 1) && ($.b != "x" || $.c IS NULL) }
 *                                           words, numbers; = != for strings,
 *                                           = != < > <= >= for numbers; IS TRUE,
 *                                           IS FALSE, IS NULL, EXISTS, NOT EXISTS;
 *                                           && binds tighter than ||; parentheses
 *   space '['       [ip, user, ..., status = 4*, bytes > 1000]
 *                                           fields split on blanks ("..." and
 *                                           [...] group); '...' matches any
 *                                           number of fields; each named field may
 *                                           carry one comparison as in JSON
 *
 * A JSON pattern never matches a message that is not a JSON object; a
 * space-delimited pattern matches when the message has exactly as many fields
 * as the pattern (ellipses aside). Patterns are at most LOGS_FILTER_MAX bytes
 * (CloudWatch's limit is 1024).
 */
#ifndef BERTH_LOGS_FILTER_H
#define BERTH_LOGS_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define LOGS_FILTER_MAX 1024

struct logs_filter;

/*
 * Parse pattern (NUL-terminated). -EINVAL with a message naming the position
 * ("invalid filter pattern: position 12: expected a value") on a bad pattern;
 * *ret untouched then.
 */
int logs_filter_parse(const char *pattern, struct logs_filter **ret, struct berth_error **err);
/* Whether msg (len bytes, need not be NUL-terminated) matches. */
bool logs_filter_match(const struct logs_filter *f, const char *msg, size_t len);
/* Accepts NULL; returns NULL. */
struct logs_filter *logs_filter_free(struct logs_filter *f);

/* '*' matches any run of characters (none included); everything else literally. */
bool logs_glob_match(const char *pat, const char *s, size_t len);

#endif
