/*
 * remote.h - private to api/: docker's X-Registry-Auth header and progress lines.
 */
#ifndef BERTH_API_REMOTE_H
#define BERTH_API_REMOTE_H

#include <jansson.h>

#include "common/error.h"

/*
 * Decode an X-Registry-Auth value (base64url of a JSON object whose members
 * are strings). NULL or "" gives *ret = NULL (no credentials). -EINVAL for
 * bad base64, bad JSON or a non-string member. *ret owned by the caller.
 */
int api_registry_auth_parse(const char *hdr, json_t **ret, struct berth_error **err);

struct image_auth;
/* Credentials of a parsed header into *a (pointers borrowed from j); false when there are none. */
bool api_registry_auth_of(const json_t *j, struct image_auth *a);

struct image_progress;
/* Docker's progress JSON line ({"status","id","progressDetail"}) of a pull/push progress event. */
json_t *api_progress_json(const struct image_progress *p);

#endif
