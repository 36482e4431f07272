/*
 * api.h - the Docker Engine API (v1.41 shapes) over the engine library.
 *
 * Every route is a small function: parse the request, call engine/ (or the
 * image store), format Docker's JSON. Errors become {"message": ...} with
 * docker's status codes (see api_status_of()).
 */
#ifndef BERTH_API_API_H
#define BERTH_API_API_H

#include "engine/engine.h"
#include "http/http.h"

/* Highest and lowest API versions served (what /_ping and /version report). */
#define API_VERSION             "1.41"
#define API_MIN_VERSION         "1.24"
/*
 * Highest version a request may name: dockerd refuses any above its own (API_VERSION), but berth
 * also reads 1.44's per-endpoint MacAddress (docs/net.md), which clients pinned to 1.44 send. A
 * client that negotiates (the docker CLI, docker-py's "auto") uses API_VERSION.
 */
#define API_MAX_REQUEST_VERSION "1.44"

struct host;
struct image_store;
struct netops;

/* The API over one host (host/host.h); engine, images, netops and root are the host's. */
struct api {
	struct host *host;
	struct engine *engine;
	struct image_store *images;
	struct netops *netops; /* container networking (host/netops.h); NULL without */
	const char *root;
	int64_t started_ns;
	const char *detach_keys; /* daemon default (config "detach-keys"); NULL: ctrl-p,ctrl-q */
};

/* Fill an api over host h (borrowed). */
void api_init(struct api *a, struct host *h, const char *detach_keys);

/* The server's request handler (userdata: struct api *). */
void api_handle(struct http_request *req, void *userdata);

/* Is there a route for method and (unversioned) path? */
bool api_route_exists(const char *method, const char *path);
/*
 * Does the request (method, unversioned path, version prefix or NULL) run on the HTTP server's
 * I/O thread? Routes that answer at once from memory (ping, version, a wait's head, exec
 * inspect, the swarm stubs) and answers given before any route (404, 405, a client too old).
 */
bool api_route_inline(const char *method, const char *path, const char *version);
/* The same as the server's run_inline hook (http_server_opts; userdata: struct api *). */
bool api_run_inline(struct http_request *req, void *userdata);

/* HTTP status for an engine error code (negative errno). */
unsigned api_status_of(int r);

/* Answer with the error chain as docker's error body. */
void api_error(struct http_request *req, int r, struct berth_error *err);

/* `berth daemon` */
int api_daemon_main(int argc, char **argv);

#endif
