/*
 * ytree.h - a YAML document as a tree of nodes that remember where they
 * were written (line and column), for error messages that point into the
 * user's file ("stack.yml:12:7: services.web.ports[0]: ...").
 *
 * Anchors, aliases and merge keys (`<<: *defaults`, common in compose
 * files) are supported: an alias shares the anchored node (no copy), and
 * the document's size after expansion is bounded by YTREE_MAX_NODES, so an
 * alias bomb is refused instead of expanded. Mapping keys must be unique
 * scalars. One document per stream.
 */
#ifndef BERTH_STACK_YTREE_H
#define BERTH_STACK_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define YTREE_MAX_SIZE  (4u << 20) /* bytes of YAML */
#define YTREE_MAX_DEPTH 64
#define YTREE_MAX_NODES 200000 /* nodes after alias expansion */

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_kind kind;
	size_t line, col; /* 1-based */
	/* scalars: the text (NUL-free, UTF-8); plain is false for quoted and block scalars */
	char *str;
	bool plain;
	/* maps: keys[i] -> vals[i] (keys are scalars); sequences: vals[i] */
	size_t n;
	struct ynode **keys, **vals;
	size_t size; /* nodes in the subtree after alias expansion (saturating) */
};

/* The document: owns every node (nodes may be shared through aliases). */
struct ytree {
	struct ynode *root;
	struct ynode **all;
	size_t nall, capall;
};

/*
 * Parse len bytes. -EINVAL with "LINE:COL: problem" on a syntax error or a
 * refused construct (duplicate key, non-scalar key, unknown alias, alias
 * bomb, more than one document); -EFBIG beyond YTREE_MAX_SIZE. An empty
 * document gives a NULL root. *ret only on success.
 */
int stack_ytree_parse(const char *text, size_t len, struct ytree **ret, struct berth_error **err);
struct ytree *stack_ytree_free(struct ytree *t);

/* The value of key in map m, or NULL (also when m is not a map). Borrowed. */
struct ynode *stack_ynode_get(const struct ynode *m, const char *key);
/* A plain scalar null (~, null, empty) or no node at all. */
bool stack_ynode_is_null(const struct ynode *n);
/* "mapping", "sequence" or "scalar" for messages. */
const char *stack_ynode_kind_name(const struct ynode *n);

#endif
