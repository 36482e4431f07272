/*
 * route.h - the distribution spec's grammar: repository names, tags,
 * references, and the mapping of a request path to a route.
 *
 * The matchers are hand-written equivalents of the spec's regular expressions
 * (no backtracking, no allocation); registry_route_parse() splits "/v2/<name>/..." from
 * the right, because names may contain '/'. All functions are pure and safe on
 * any input (fuzzed by tests/fuzz/fuzz-registry-route.c).
 */
#ifndef BERTH_REGISTRY_ROUTE_H
#define BERTH_REGISTRY_ROUTE_H

#include <stdint.h>

#include "common/macro.h"

/* The spec bounds a repository name (with registry host) to 255 characters. */
#define REGISTRY_NAME_MAX 255
#define REGISTRY_TAG_MAX  128

enum route_kind {
	ROUTE_NONE = 0,     /* not a registry path: 404 */
	ROUTE_BASE,         /* /v2/ */
	ROUTE_CATALOG,      /* /v2/_catalog */
	ROUTE_TAGS,         /* /v2/<name>/tags/list */
	ROUTE_MANIFEST,     /* /v2/<name>/manifests/<reference> */
	ROUTE_BLOB,         /* /v2/<name>/blobs/<digest> */
	ROUTE_UPLOAD_START, /* /v2/<name>/blobs/uploads/ */
	ROUTE_UPLOAD,       /* /v2/<name>/blobs/uploads/<uuid> */
	ROUTE_REFERRERS,    /* /v2/<name>/referrers/<digest> */
	ROUTE_TOKEN,        /* the built-in token endpoint (/auth/token) */
	ROUTE_METRICS,      /* /metrics */
	ROUTE_NAME_INVALID, /* a registry route whose <name> fails validation */
	ROUTE_REF_INVALID,  /* a registry route whose reference/digest/uuid is malformed */
	_ROUTE_MAX,
};

/*
 * A parsed path. `name` and `ref` point into `buf` (a copy of the path with
 * separators replaced by NULs); they are NULL when the route has none.
 */
struct route {
	enum route_kind kind;
	const char *name;
	const char *ref; /* tag or digest, blob digest, upload uuid, subject digest */
	bool ref_is_digest;
	char buf[512];
};

/* Longest path registry_route_parse() accepts; longer paths are ROUTE_NONE (414 at the HTTP layer). */
#define ROUTE_PATH_MAX (sizeof(((struct route *)0)->buf) - 1)

bool registry_name_valid(const char *name);
bool registry_tag_valid(const char *tag);
/* An upload session id as we mint them: 32 lowercase hex digits. */
bool registry_uuid_valid(const char *uuid);

/* Parse an already percent-decoded path into *r. Never fails: see r->kind. */
void registry_route_parse(const char *path, struct route *r);

/*
 * A chunk's Content-Range (PATCH .../blobs/uploads/<uuid>): "a-b", also "bytes a-b" and
 * "bytes=a-b/total", inclusive. 1 with *a <= *b, 0 when h is NULL, -1 when malformed.
 */
int registry_content_range_parse(const char *h, uint64_t *a, uint64_t *b);

/* Short stable label of a route for metrics and logs ("manifest", "blob", ...). */
const char *registry_route_kind_name(enum route_kind kind);

#endif
