/*
 * yamljson.h - a YAML document as JSON (jansson), for inputs the CLI takes in
 * either form (`berth taskdef register -f web.yaml`).
 *
 * YAML 1.2's core schema decides plain scalars: null (~, null, empty), bool
 * (true/false in three spellings), int (decimal, 0o octal, 0x hex), float
 * (decimal with fraction or exponent, .inf, .nan); quoted and block scalars
 * are strings. Mapping keys must be scalars and unique. Aliases and anchors
 * are refused (no expansion bombs), as are streams of several documents and
 * nesting deeper than YAMLJSON_MAX_DEPTH.
 */
#ifndef BERTH_CLI_YAMLJSON_H
#define BERTH_CLI_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

#define YAMLJSON_MAX_DEPTH 64
#define YAMLJSON_MAX_SIZE  (1u << 20)

/*
 * Convert len bytes of YAML. -EINVAL with "line N, column M: ..." on a
 * syntax error or a refused construct; -EFBIG beyond YAMLJSON_MAX_SIZE.
 * *ret (a new reference) only on success; an empty document is an error.
 */
int cli_yaml_to_json(const char *text, size_t len, json_t **ret, struct berth_error **err);

/* Whether text is JSON rather than YAML: its first non-blank, non-comment byte is '{' or '['. */
bool cli_yamljson_looks_like_json(const char *text, size_t len);

#endif
