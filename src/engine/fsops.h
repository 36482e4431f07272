/*
 * fsops.h - private to engine/: what archive.c, fsview.c, changes.c and
 * commit.c share.
 *
 * An fsop pins one container's root filesystem for the duration of a call:
 * a running container's rootfs is already mounted (the fd we open keeps it
 * reachable even if the container stops meanwhile and the mount is detached);
 * a created or exited one is mounted (prepared first if it never ran) with
 * the container's op_lock held, so it cannot start or be removed under us,
 * and unmounted again at the end.
 *
 * The archive API works on an fsview instead of the bare rootfs: the rootfs
 * with the container's volumes, binds, tmpfs mounts and /etc files mounted on
 * it, in a mount namespace private to one thread (fsview.c). changes, export
 * and commit keep using the rootfs alone, as docker does.
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
	json_t *mounts;              /* copy of the container's mount points (engine/mounts.c) */
	int pidfd;                   /* the init's pidfd (dup) when running, else -1 */
	char *id;
	const char *ref; /* as the caller named the container (borrowed) */
};

/* Find ref and pin its rootfs (mount it when need_rootfs). Always call engine_fsop_end(). */
int engine_fsop_begin(struct engine *e, const char *ref, bool need_rootfs, struct fsop *op,
		      struct berth_error **err);
void engine_fsop_end(struct fsop *op);

/* ---- fsview.c ---- */

/* Most mounts a view assembles (each holds an fd while the view is built). */
#define FSVIEW_MAX_MOUNTS 512

enum fsview_kind {
	FSVIEW_BIND,  /* a host path: volume data, bind source, engine file */
	FSVIEW_TMPFS, /* the container's tmpfs (running) or an empty one (stopped) */
};

struct fsview_mount {
	char *dst;  /* cleaned absolute container path */
	char *src;  /* host path (FSVIEW_BIND), NULL for tmpfs */
	char *opts; /* tmpfs options ("size=..,mode=.."), or NULL */
	enum fsview_kind kind;
	bool ro;        /* mounted read-only in the container */
	bool recursive; /* rbind (binds); false for bind-nonrecursive */
	bool optional;  /* an engine file: left out when the source does not exist yet */
	bool create;    /* -v bind: a missing source directory is created (as at start) */
};

struct fsview_plan {
	struct fsview_mount *m;
	size_t n;
};

/*
 * The view's mounts, in the order the container gets them (engine/spec.c):
 * the engine's /etc/hostname, /etc/hosts, /etc/resolv.conf from cdir (NULL:
 * none), the mount points (stored sorted by depth), then HostConfig.Tmpfs.
 * Later mounts cover earlier ones at the same place, as in the container.
 * Pure. -E2BIG past FSVIEW_MAX_MOUNTS. *ret is set on success only.
 */
int engine_fsview_plan_build(const json_t *mounts, const json_t *hostconfig, const char *cdir,
			     struct fsview_plan *ret, struct berth_error **err);
void engine_fsview_plan_done(struct fsview_plan *p);

/* The value of option `key` in a "k=v,k2,k3=v3" mount options string (new string), or NULL. */
char *engine_fsview_mount_option(const char *opts, const char *key);

/* An assembled view, valid inside an fsview_fn only. */
struct fsview {
	struct fsop *op;
	int rootfd; /* the view's "/" (resolve everything with fs_open_in_root()) */
	struct fsview_plan plan;
	uint64_t root_mnt_id;
	uint64_t *mnt_ids; /* per plan entry: the id of the mount attached for it, 0: none */
	bool
	    *placeholder; /* per plan entry: an empty read-only tmpfs standing in for a stopped container's */
};

/* Where engine_fsview_mount_of() found a file, besides a plan index. */
#define FSVIEW_ROOTFS   (-1) /* the container's own root filesystem */
#define FSVIEW_SUBMOUNT (-2) /* a mount below a recursive bind (its source's submounts) */

/* *ret_where: the plan index of the mount holding fd, FSVIEW_ROOTFS or FSVIEW_SUBMOUNT. 0 or -errno. */
int engine_fsview_mount_of(const struct fsview *v, int fd, int *ret_where);

typedef int (*fsview_fn)(struct fsview *v, void *arg, struct berth_error **err);

/*
 * Assemble op's view on a dedicated thread in a mount namespace of its own
 * and run fn there; everything is unmounted (the namespace is left and dies)
 * before this returns. op must come from engine_fsop_begin(..., need_rootfs=true).
 * Returns fn's result, or -errno when the view cannot be assembled.
 */
int engine_fsview_run(struct fsop *op, fsview_fn fn, void *arg, struct berth_error **err);

/* Mount points the engine adds to every container (without the leading '/'), NULL-terminated. */
extern const char *const engine_fsop_engine_mountpoints[];

/* Go's os.FileMode bits for a st_mode (Docker's path stat "mode"). */
uint32_t engine_fsop_go_mode(mode_t m);

/* stats.c parsers (exposed for tests): memory.stat-like "key value" lines; /proc/net/dev. */
json_t *engine_stats_parse_keyed(const char *text);
json_t *engine_stats_parse_netdev(const char *text);

#endif
