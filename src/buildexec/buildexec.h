/*
 * buildexec.h - the builder's real backend: struct build_backend_ops
 * (build/executor.h) over the engine (RUN steps run as engine containers)
 * and the image library (states are images; every filesystem step is an
 * overlay snapshot of its parent committed as an intermediate image, like
 * docker's classic builder).
 *
 * Layering: common <- image, build <- engine <- buildexec <- api, cli.
 * build/ never includes engine or image headers; this module glues them.
 *
 * States are image IDs ("sha256:...") or "scratch" (the empty rootfs).
 * The build cache is a small SQLite table <root>/builder/cache.db mapping
 * a step's plan key (or a final commit's key) to an image ID; it survives
 * daemon restarts. Its connection is opened once per process and root. An entry whose image was removed is a
 * miss. RUN
 * --mount=type=cache directories live under <root>/builder/mounts/.
 *
 * Thread safety: one struct buildexec serves one build; several builds may
 * run at once on the same root (the cache table is one SQLite transaction
 * per change).
 */
#ifndef BERTH_BUILDEXEC_BUILDEXEC_H
#define BERTH_BUILDEXEC_BUILDEXEC_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "build/executor.h"
#include "engine/engine.h"
#include "image/image.h"

struct bx_source; /* cachefrom.c */

struct buildexec {
	struct engine *engine;      /* borrowed */
	struct image_store *images; /* borrowed */
	const char *root;           /* the daemon's root (borrowed) */
	const char *network;        /* RUN's network unless the step says none/host: NULL or "default" (the
				       default bridge), "bridge", "none", "host" or a user network's name */
	char *const *extra_hosts;   /* --add-host "name:ip" for RUN's /etc/hosts (may be NULL) */
	bool no_cache;              /* final commits are not looked up either */
	char *const *cache_from;    /* --cache-from image names (may be NULL), see cachefrom.c */
	struct build_context *ctx;  /* for RUN --mount=type=bind without from= (may be NULL) */
	char *const *secrets;       /* "id=path": files for RUN --mount=type=secret (may be NULL) */
	char *const *ssh;           /* "id=socket": agents for RUN --mount=type=ssh (may be NULL) */

	/* Cancellation (buildexec_cancel). Zero-initialised fields; pass &cancelled as the
	 * build's cancel flag (build_request.cancel). */
	atomic_bool cancelled;
	pthread_mutex_t lock;      /* guards running[] */
	char *running[8];          /* RUN containers alive now */
	struct bx_source *sources; /* cache_from resolved on first use (under lock) */
	size_t n_sources;
	bool sources_loaded;
};

/* Release what the build kept (resolved --cache-from sources). b stays reusable. */
void buildexec_done(struct buildexec *b);

/* Cancel the build from any thread: the flag is set and every RUN container of the build
 * that is running is killed (the step fails, its container is removed, nothing is cached). */
void buildexec_cancel(struct buildexec *b);

/* The backend vtable over b (b must outlive the build). */
void buildexec_backend(struct buildexec *b, struct build_backend *ret);

/*
 * `docker builder prune`: forget every cache entry, remove the intermediate
 * images nothing else uses (tagged and in-use images stay) and the cache
 * mount directories. *ret (may be NULL): {"CachesDeleted": [...], "SpaceReclaimed": 0}.
 */
int buildexec_prune(struct image_store *images, const char *root, json_t **ret, struct berth_error **err);

#endif
