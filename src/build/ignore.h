/*
 * ignore.h - .dockerignore with the semantics of moby/patternmatcher and
 * moby/buildkit's ignorefile: comments, `!` exceptions (last match wins),
 * leading `/` dropped, trailing `/` cleaned away, `**` across directories,
 * a path is excluded when it or one of its parent directories matches.
 */
#ifndef BERTH_BUILD_IGNORE_H
#define BERTH_BUILD_IGNORE_H

#include "common/error.h"

/* Upper bound on patterns in one .dockerignore. */
#define IGNORE_MAX_PATTERNS    10000
/* Longest pattern accepted; longer than any path a context can hold. */
#define IGNORE_MAX_PATTERN_LEN 4096

struct ignore;

/* ignorefile.ReadAll: the cleaned pattern lines of a .dockerignore text. */
char **build_ignore_read_patterns(const char *text, size_t len);

/* patternmatcher.New: compile patterns; -EINVAL on a malformed pattern. */
int build_ignore_new(char *const *patterns, struct ignore **ret, struct berth_error **err);

/* Parse and compile a .dockerignore text in one go. */
int build_ignore_parse(const char *text, size_t len, struct ignore **ret, struct berth_error **err);

/* MatchesOrParentMatches: true if `path` (relative, "/"-separated) is excluded. */
bool build_ignore_matches(const struct ignore *ig, const char *path);

/* True if any pattern is an exception (`!`): ignored directories must then
 * still be walked. */
bool build_ignore_has_exceptions(const struct ignore *ig);

struct ignore *build_ignore_free(struct ignore *ig);
static inline void ignore_freep(struct ignore **ig)
{
	*ig = build_ignore_free(*ig);
}
#define _cleanup_ignore_ _cleanup_(ignore_freep)

#endif
