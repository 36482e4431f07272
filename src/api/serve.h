/*
 * serve.h - a host served over the Docker Engine API until a signal: what
 * `berth daemon` is, and what `berth agent` runs beside its cluster loop
 * (the agent passes hooks that start and stop its own work around the
 * serving). Listeners (listen.h), pidfile and shutdown order live here once.
 */
#ifndef BERTH_API_SERVE_H
#define BERTH_API_SERVE_H

#include <signal.h>

#include "api/listen.h"
#include "host/host.h"

struct api_serve_opts {
	struct host_config host;
	struct api_listen_opts listen;
	const char *pidfile;       /* may be NULL */
	const char *detach_keys;   /* NULL: ctrl-p,ctrl-q */
	const char *role;          /* for the log: "daemon", "agent" */
	struct http_limits limits; /* the API server's (0 members: defaults) */
	/* After the host and the listeners are up: start the front end's own work. */
	int (*started)(void *userdata, struct host *h, struct berth_error **err);
	/* On the stop signal, before the host closes: stop that work (containers keep running). */
	void (*stopping)(void *userdata);
	void *userdata;
};

/*
 * Block SIGTERM, SIGINT and SIGHUP (before any thread exists, so every thread
 * inherits the mask) and ignore SIGPIPE; open the host, listen, call started,
 * wait for SIGTERM or SIGINT (SIGHUP is ignored), call stopping, close.
 */
int api_serve(const struct api_serve_opts *o, struct berth_error **err);

/* Largest request body of a route: image uploads and archives may be large, JSON is not. */
size_t api_body_limit(const char *method, const char *path, void *userdata);
/* Routes whose handler reads the body as it arrives (image load and import: spooled to disk). */
bool api_body_stream(const char *method, const char *path, void *userdata);

#endif
