/*
 * fsops.h - private to engine/: what archive.c, changes.c and commit.c share.
 *
 * An fsop pins one container's root filesystem for the duration of a call:
 * a running container's rootfs is already mounted (the fd we open keeps it
 * reachable even if the container stops meanwhile and the mount is detached);
 * a created or exited one is mounted (prepared first if it never ran) with
 * the container's op_lock held, so it cannot start or be removed under us,
 * and unmounted again at the end.
 */
#ifndef BERTH_ENGINE_FSOPS_H
#define BERTH_ENGINE_FSOPS_H

#include "engine/internal.h"

struct fsop {
	struct engine *e;
	struct container *c;
	bool locked;                 /* c->op_lock held */
	bool mounted;                /* we mounted the rootfs: unmount at the end */
	bool running;                /* running or paused when the op began */
	int rootfd;                  /* O_PATH fd of the merged rootfs, or -1 */
	char *rootfs;                /* its path in the daemon's mount namespace */
	json_t *config, *hostconfig; /* copies */
	char *id;
	const char *ref; /* as the caller named the container (borrowed) */
};

/* Find ref and pin its rootfs (mount it when need_rootfs). Always call fsop_end(). */
int fsop_begin(struct engine *e, const char *ref, bool need_rootfs, struct fsop *op,
	       struct berth_error **err);
void fsop_end(struct fsop *op);

/* Mount points the engine adds to every container (without the leading '/'), NULL-terminated. */
extern const char *const fsop_engine_mountpoints[];

/* Go's os.FileMode bits for a st_mode (Docker's path stat "mode"). */
uint32_t fsop_go_mode(mode_t m);

/* stats.c parsers (exposed for tests): memory.stat-like "key value" lines; /proc/net/dev. */
json_t *engine_stats_parse_keyed(const char *text);
json_t *engine_stats_parse_netdev(const char *text);

#endif
