/*
 * pathmatch.h - Go's path/filepath semantics that Docker's behaviour is
 * defined by: Clean() and Match() (used for COPY/ADD wildcards and to
 * validate .dockerignore patterns).
 */
#ifndef BERTH_BUILD_PATHMATCH_H
#define BERTH_BUILD_PATHMATCH_H

#include "common/macro.h"

/* filepath.Clean: lexical normalisation; "" becomes "."; keeps leading "..". */
char *build_go_path_clean(const char *path);

/*
 * filepath.Match: 1 if name matches, 0 if not, -EINVAL if the pattern is
 * malformed (ErrBadPattern; the whole pattern is checked).
 */
int build_go_path_match(const char *pattern, const char *name);

/* True if the pattern has unescaped wildcard characters (* ? [). */
bool build_go_has_wildcards(const char *pattern);

/* Decode one UTF-8 rune at s (n bytes available): returns its length (1 for
 * invalid bytes, with *rune = 0xFFFD). */
size_t build_utf8_decode(const char *s, size_t n, uint32_t *rune);

/* The class at `chunk` ("[...]"): sets *len to its length including the
 * brackets and returns 1 if rune r is in it, 0 if not, -EINVAL if malformed. */
int build_go_match_class(const char *chunk, size_t n, uint32_t r, size_t *len);

#endif
