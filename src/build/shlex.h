/*
 * shlex.h - Dockerfile variable substitution, like BuildKit's shell lexer.
 *
 * Supports $v, ${v}, ${v:-d}, ${v-d}, ${v:+a}, ${v+a}, ${v:?msg}, ${v?msg},
 * ${v#pat} ${v##pat} ${v%pat} ${v%%pat}, the escape character, single quotes
 * (literal) and double quotes (only ", $ and the escape char can be escaped).
 * Quotes are removed from the result unless SHLEX_RAW_QUOTES.
 *
 * The environment is a NULL-terminated "KEY=value" vector; a later entry
 * overrides an earlier one with the same key.
 */
#ifndef BERTH_BUILD_SHLEX_H
#define BERTH_BUILD_SHLEX_H

#include "common/error.h"

enum shlex_flags {
	SHLEX_RAW_QUOTES = 1 << 0,  /* keep quote characters in the output */
	SHLEX_RAW_ESCAPES = 1 << 1, /* keep escape characters in the output */
	SHLEX_SKIP_UNSET = 1 << 2,  /* leave references to unset variables as written */
};

/* Expand one word (no field splitting). *ret is a new string. */
int build_shlex_process_word(const char *word, char escape, char *const *env, int flags, char **ret,
			     struct berth_error **err);

/* Expand and split into words on unquoted blanks (of the text and of
 * unquoted expansions), like EXPOSE does. *ret is a NULL-terminated vector. */
int build_shlex_process_words(const char *word, char escape, char *const *env, int flags, char ***ret,
			      struct berth_error **err);

/* Value of key in env (last wins) or NULL. */
const char *build_shlex_env_get(char *const *env, const char *key);

#endif
