/*
 * executor.h - the step loop of a build and the seam to the engine.
 *
 * build_execute() walks a plan wave by wave, stage by stage, step by step.
 * For every filesystem-changing step it first asks the backend's cache for
 * the step's key; on a miss it performs the step through the backend and
 * stores the result under the key. Config-only steps (ENV, LABEL, CMD, ...)
 * never touch the backend. At the end the target stage's state is committed
 * as an image with the plan's config and a docker-style history, then
 * tagged. On any failure nothing is committed or tagged, every state the
 * build created and did not put into the cache is released, and the error
 * is returned (and reported as an errorDetail event).
 *
 * A *state* is an immutable root filesystem (a layer chain) named by an
 * opaque string the backend allocates; the executor owns the strings it
 * receives and gives each state back exactly once with release(), after
 * the last step that reads it. The real backend (overlay snapshots, runtime
 * containers, layer tars, the image store) comes with the engine; the unit
 * tests drive this loop with an in-memory backend.
 */
#ifndef BERTH_BUILD_EXECUTOR_H
#define BERTH_BUILD_EXECUTOR_H

#include <jansson.h>
#include <stdatomic.h>

#include "build/plan.h"

/* Progress: docker's classic builder lines ("Step 1/5 : FROM busybox\n",
 * " ---> Using cache\n", " ---> <short ID of the step's state>\n"), the image ID,
 * and the final error. A step that changes only the config has no state of its
 * own: its line names the short form of its cache key. */
enum build_event { BUILD_EVENT_STREAM, BUILD_EVENT_AUX_ID, BUILD_EVENT_ERROR };
typedef void (*build_event_fn)(void *userdata, enum build_event ev, const char *text);

/* One line of the POST /build JSON stream for an event (caller frees), e.g.
 * {"stream":"Step 1/2 : FROM scratch\n"}, {"aux":{"ID":"sha256:..."}},
 * {"errorDetail":{"message":"..."},"error":"..."}; ends with "\n". */
char *build_event_json(enum build_event ev, const char *text);

/* Output of a RUN for progress: whole lines with their newline, sent to the client as they are
 * (stderr lines wrapped in docker's "\033[91m" ... "\033[0m", as the classic builder sends them). */
typedef void (*build_output_fn)(void *userdata, const char *text);

struct build_copy_req {
	const struct plan_copy *copy;    /* what to copy (plan.h) */
	const struct build_context *ctx; /* SRC_CONTEXT: build_context_extract(), then ctx->rootfd */
	const char *src_state;           /* SRC_STAGE: the source stage's final state */
};

struct build_backend_ops {
	/* Resolve (and with `pull`, fetch) a base image: its ID and docker "config" object.
	 * Same contract as build_resolve_fn (plan.h). */
	int (*resolve_image)(void *be, const char *ref, const char *platform, bool pull, char **ret_id,
			     json_t **ret_config, struct berth_error **err);
	/* A state holding an image's root filesystem (image_id NULL: empty, for scratch). */
	int (*state_from_image)(void *be, const char *image_id, char **ret_state, struct berth_error **err);
	/* Run a command in a container on a copy of `state`; the result is a new state. mount_states[i]
	 * is the state for run->mounts[i] when it has from= a stage, else NULL. A non-zero exit is an
	 * error naming the exit code; `out` receives the output lines. */
	int (*run)(void *be, const char *state, const struct plan_run *run, const char *const *mount_states,
		   build_output_fn out, void *out_ud, char **ret_state, struct berth_error **err);
	/* Apply a COPY/ADD (ADD extracts local tars) to `state`. */
	int (*copy)(void *be, const char *state, const struct build_copy_req *req, char **ret_state,
		    struct berth_error **err);
	/* mkdir -p inside `state` (WORKDIR). */
	int (*mkdir)(void *be, const char *state, const char *path, char **ret_state,
		     struct berth_error **err);
	/* Fetch remote ADD sources (NULL: not supported by this backend). */
	int (*fetch_urls)(void *be, const char *state, const struct build_copy_req *req, char **ret_state,
			  struct berth_error **err);
	/* Build cache: 1 and a new reference to the state on a hit, 0 on a miss. */
	int (*cache_get)(void *be, const char *key, char **ret_state, struct berth_error **err);
	/* Optional (NULL: none): the cache sources given with --cache-from, asked before cache_get.
	 * 1 and the state of the step with this key on top of `state` when a source image was built
	 * with the same steps (key) on the same layers (state), 0 otherwise. A build records its
	 * steps' keys in the image config (BUILD_CACHE_KEYS) for this. */
	int (*cache_source)(void *be, const char *state, const char *key, char **ret_state,
			    struct berth_error **err);
	int (*cache_put)(void *be, const char *key, const char *state, struct berth_error **err);
	/* Commit `state` as an image with this config (docker image config: "config", "history", ...
	 * without "rootfs", which the backend fills in). Atomic: all or nothing. */
	int (*commit)(void *be, const char *state, json_t *image_config, char **ret_image_id,
		      struct berth_error **err);
	int (*tag)(void *be, const char *image_id, const char *ref, struct berth_error **err);
	/* A new reference to an existing state (a stage used as another's base). */
	int (*retain)(void *be, const char *state, char **ret_state, struct berth_error **err);
	/* Drop the executor's reference to a state. */
	void (*release)(void *be, const char *state);
	/* All operations may be called from several threads at once (parallel stages). */
	bool thread_safe;
};

/* Image config member listing the keys of the filesystem steps (in order) that made the image's
 * last layers: one layer per key, the image's last len(keys) layers. */
#define BUILD_CACHE_KEYS "berth.build.cache.v0"

struct build_backend {
	const struct build_backend_ops *ops;
	void *data;
};

struct build_exec_opts {
	bool no_cache;
	char *const *tags;    /* NULL-terminated, may be NULL */
	build_event_fn event; /* may be NULL */
	void *event_userdata;
	unsigned jobs; /* stages of a wave built at once (needs a thread-safe backend); 0, 1: one */
	/* May be NULL. Once true (set from any thread), no further step starts, nothing is committed
	 * or tagged and the build fails with -ECANCELED ("build cancelled"); a step in progress is
	 * the backend's to stop (buildexec_cancel() kills a running RUN). */
	const atomic_bool *cancel;
};

/* Execute the plan; *ret_image_id is the committed image's ID (caller frees). */
int build_execute(const struct build_plan *plan, const struct build_context *ctx,
		  const struct build_backend *be, const struct build_exec_opts *opts, char **ret_image_id,
		  struct berth_error **err);

/* Everything `docker build` / POST /build asks for, once the context is open. */
struct build_request {
	struct build_context *ctx;   /* may be NULL for a Dockerfile without COPY/ADD from it */
	const char *dockerfile;      /* path of the Dockerfile inside the context ("Dockerfile") */
	const char *dockerfile_text; /* or its text (-f -, a file outside the context); NULL: read from ctx */
	char *const *build_args;     /* "K=V" */
	const char *target;
	const char *platform;
	char *const *labels;
	char *const *tags;
	bool no_cache;
	bool pull;                 /* resolve base images with pull = true */
	unsigned jobs;             /* stages of a wave built at once (build_exec_opts.jobs) */
	const atomic_bool *cancel; /* build_exec_opts.cancel */
	build_event_fn event;
	void *event_userdata;
};

/*
 * The whole build: read and parse the Dockerfile, plan it (base images
 * resolved through the backend), report parser warnings and unused build
 * args as stream events like docker ("[WARNING]: ..."), execute. The engine's
 * POST /build handler and `berth build` call this once the backend exists.
 */
int build_image(const struct build_request *req, const struct build_backend *be, char **ret_image_id,
		struct berth_error **err);

#endif
