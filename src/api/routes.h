/*
 * routes.h - private to api/: the route table's handler type and helpers.
 */
#ifndef BERTH_API_ROUTES_H
#define BERTH_API_ROUTES_H

#include <jansson.h>

#include "api/api.h"

#define API_MAX_PARAMS 2
/* Longest path parameter (container names are <= 255, image names <= 255 + tag). */
#define API_PARAM_MAX  512

struct api_call {
	struct api *api;
	struct http_request *req;
	const char *param[API_MAX_PARAMS];
};

typedef void (*api_route_fn)(struct api_call *call);

struct api_route {
	const char *method, *pattern;
	api_route_fn fn;
	/*
	 * API_IO_THREAD: the handler answers at once from memory (at most a lookup under the
	 * engine's lock, which is never held across blocking work, or a read of a small local
	 * file) and never blocks for long, so it runs on the HTTP server's I/O thread that read
	 * the request, without the handoff to a worker and back (http_server_opts.run_inline).
	 * A stream it answers with is still pumped by a thread of its own.
	 */
	bool io_thread;
};
#define API_IO_THREAD true

/* Parse the body as JSON; on failure a 400 has been sent. *ret NULL when empty and !required. */
int api_body_json(struct http_request *req, json_t **ret, bool required);
/*
 * A body_stream route's body (load, import, build contexts, archive uploads),
 * read as it arrives into an unlinked file under the root: a seekable fd at
 * offset 0 the caller closes, or -1 after answering the error (413 over the
 * limit; 500 with the reason, a full disk included, once the rest of the
 * body was read so the client sees the answer).
 */
int api_body_spool(struct api_call *c);
/* An unlinked file under the root for an archive assembled before it is sent (never a memfd:
 * that is RAM); -1 after answering 500. */
int api_tmpfile(struct api_call *c);
/* The "changes" lines of commit and import (?changes= repeated, each value one line or several
 * joined with '\n'): a NULL-terminated vector the caller frees, empty lines dropped. */
char **api_query_changes(struct api_call *c);
/* Route /images/<name with slashes>[/json|/tag|/history]; copies the name into name (API_PARAM_MAX). */
api_route_fn api_images_route(const char *method, const char *path, char *name);

void api_ping(struct api_call *c);
void api_version(struct api_call *c);
void api_info(struct api_call *c);
void api_events(struct api_call *c);

void api_containers_list(struct api_call *c);
void api_container_create(struct api_call *c);
void api_containers_prune(struct api_call *c);
void api_container_inspect(struct api_call *c);
void api_container_start(struct api_call *c);
void api_container_stop(struct api_call *c);
void api_container_restart(struct api_call *c);
void api_container_kill(struct api_call *c);
void api_container_pause(struct api_call *c);
void api_container_unpause(struct api_call *c);
void api_container_wait(struct api_call *c);
void api_container_rename(struct api_call *c);
void api_container_update(struct api_call *c);
void api_container_resize(struct api_call *c);
void api_container_attach(struct api_call *c);
void api_container_remove(struct api_call *c);
void api_container_logs(struct api_call *c);
void api_container_top(struct api_call *c);

/* Network routes (networks.c; networking itself is host/netops.h). */
void api_networks_list(struct api_call *c);
void api_network_inspect(struct api_call *c);
void api_network_create(struct api_call *c);
void api_network_remove(struct api_call *c);
void api_network_connect(struct api_call *c);
void api_network_disconnect(struct api_call *c);
void api_networks_prune(struct api_call *c);

/* fsops.c */
void api_container_stats(struct api_call *c);
void api_container_archive_head(struct api_call *c);
void api_container_archive_get(struct api_call *c);
void api_container_archive_put(struct api_call *c);
void api_container_changes(struct api_call *c);
void api_container_export(struct api_call *c);
void api_commit(struct api_call *c);

/* swarm.c: swarm routes answer 503 as dockerd does outside a swarm */
void api_swarm_not_member(struct api_call *c);
void api_swarm_not_manager(struct api_call *c);
void api_swarm_unsupported(struct api_call *c);

void api_exec_create(struct api_call *c);
void api_exec_start(struct api_call *c);
void api_exec_resize(struct api_call *c);
void api_exec_inspect(struct api_call *c);

void api_images_list(struct api_call *c);
void api_images_create(struct api_call *c);
void api_image_inspect(struct api_call *c);
void api_image_tag(struct api_call *c);
void api_image_history(struct api_call *c);
void api_image_remove(struct api_call *c);
void api_image_get(struct api_call *c);
void api_images_get(struct api_call *c);
void api_images_load(struct api_call *c);
void api_images_prune(struct api_call *c);
void api_image_push(struct api_call *c);
/*
 * dockerd's image event: Actor ID `id` (the image ID; the reference for pull
 * and push), attributes the image's labels and "name" (what the action named).
 */
void api_image_event(struct api *a, const char *action, const char *id, const char *name);
/* The events of an image removal's answer ([{"Untagged": ref}, {"Deleted": id}]) of image `id`;
 * labels (NULL: none) its labels read before the removal. */
void api_image_removal_events(struct api *a, const char *id, const json_t *labels, const json_t *answer);
/* Pull ref (POST /images/create?fromImage=), streaming docker's progress messages. */
void api_image_pull(struct api_call *c, const char *ref);
void api_auth(struct api_call *c);
void api_system_df(struct api_call *c);
void api_volumes_prune(struct api_call *c);
/* Docker's "until" filter value -> unix seconds (a duration counts back from now). */
int api_parse_until(const char *s, int64_t *ret);
/* Bytes used by the tree at path (0 when unreadable); does not cross mount points. */
int64_t api_dir_usage(const char *path);
/* Bytes in a container's writable layer (its snapshot's upper dir), 0 when it has none. */
int64_t api_container_rw_usage(const struct engine_container_info *i);
/* How many containers mount volume `name` (from their HostConfig binds and mounts). */
unsigned api_volume_refcount(struct engine_container_info *const *list, size_t n, const char *name);

void api_build(struct api_call *c);
void api_build_prune(struct api_call *c);

void api_volumes_list(struct api_call *c);
void api_volume_create(struct api_call *c);
void api_volume_inspect(struct api_call *c);
void api_volume_remove(struct api_call *c);

/* Docker's container JSON shapes (shapes.c). */
/* Add the members of docker's container.Config that cfg lacks, with their zero values. */
void api_config_defaults(json_t *cfg);
json_t *api_container_json(const struct engine_container_info *i);
json_t *api_container_summary(const struct engine_container_info *i);
/* Does the container match docker's ps filters ({"status":[..],"name":[..],"label":[..],"id":[..]})? */
bool api_container_filter(const struct engine_container_info *i, const json_t *filters);

/*
 * `docker ps` filters (psfilter.c): api_ps_filter_new parses ?filters= q
 * (NULL/"": *ret NULL, every container matches) against dockerd's keys and
 * values, resolving ancestor images in `images` and before/since containers
 * in list (-ENOENT "no such container X"); -EINVAL for a bad key or value.
 */
struct api_ps_filter;
struct image_store;
int api_ps_filter_new(const char *q, struct image_store *images, struct engine_container_info *const *list,
		      size_t n, struct api_ps_filter **ret, struct berth_error **err);
/* Does container i (summary: its GET /containers/json entry) pass f (NULL: yes)? */
bool api_ps_filter_match(const struct api_ps_filter *f, const struct engine_container_info *i,
			 const json_t *summary);
void api_ps_filter_free(struct api_ps_filter *f);
/* Does f filter on key? */
bool api_ps_filter_has(const struct api_ps_filter *f, const char *key);

#endif
