/*
 * registry.h - `berth registry`: an OCI distribution-spec v1.1 server.
 *
 * The whole public API is the command entry point and the two long-running
 * operations it exposes; everything else is private to src/registry/.
 */
#ifndef BERTH_REGISTRY_REGISTRY_H
#define BERTH_REGISTRY_REGISTRY_H

#include "common/error.h"
#include "registry/config.h"

/* `berth registry ...` (argv[0] is "registry"). Returns the process exit code. */
int registry_main(int argc, char **argv);

/* Serve until SIGTERM/SIGINT, then drain in-flight requests. */
int registry_serve(struct registry_config *cfg, struct berth_error **err);

struct registry_gc_stats {
	size_t manifests_marked, blobs_marked;
	size_t blobs_deleted, manifests_deleted, tags_deleted, links_deleted;
	int64_t bytes_freed;
};

/* Lifecycle rules then mark-and-sweep. dry_run reports without deleting. */
int registry_gc(struct registry_config *cfg, bool dry_run, struct registry_gc_stats *ret,
		struct berth_error **err);

#endif
