/*
 * engine.h - the container engine as a library: containers, their shims,
 * logs, restart policies and events, with state in SQLite.
 *
 * Front ends: the Docker Engine API (src/api/) and, later, the cluster node
 * agent, which drives this API in-process. Container configuration uses the
 * Docker Engine API v1.41 data model (the `Config` and `HostConfig` objects of
 * POST /containers/create) because that is the vocabulary every client speaks;
 * everything else is C.
 *
 * Model: every running container has one shim process (`berth shim`, see
 * shim/shim.h) that outlives the daemon: it holds the container's stdio,
 * writes the json-file log, reaps the init and records the exit status in a
 * file. The engine watches shims through pidfds; on open it reattaches to the
 * shims of containers recorded as running and records exits that happened
 * while no engine was running.
 *
 * Pluggable steps: images (struct engine_image_ops) and networks (struct
 * engine_network_ops) are vtables given at open time. Network modes "none",
 * "host" and "container:<id>" are built in; other modes go to the network ops.
 *
 * Threads: every function may be called from any thread. Blocking calls
 * (wait, stop, log reads) block only the calling thread.
 *
 * Errors: 0 / -errno with *err set. -ENOENT: no such container/exec/image;
 * -EEXIST: name in use; -EINVAL: bad config; -EBUSY/-EALREADY/-ENOTCONN:
 * conflicts with the container's state (the API maps these to 409).
 */
#ifndef BERTH_ENGINE_ENGINE_H
#define BERTH_ENGINE_ENGINE_H

#include <jansson.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"

struct runtime_registry; /* runtime/registry.h */

struct engine;

/* A commit as the image ops see it: the new image's Config, history fields, tag. All borrowed. */
struct engine_image_commit {
	const char *ref;              /* tag (may be NULL) */
	const json_t *config;         /* the new image's "config" object */
	const char *author, *comment; /* may be NULL */
	const char *created_by;       /* history entry */
	const char *const *exclude;   /* upper-dir paths to leave out ("etc/hosts"), NULL-terminated */
};

/* Images as the engine needs them: a config to derive defaults from, a rootfs per container. */
struct engine_image_ops {
	/* Resolve name; *ret_id "sha256:...", *ret_config the image config blob (with "config"). */
	int (*resolve)(void *ctx, const char *name, char **ret_id, json_t **ret_config,
		       struct berth_error **err);
	/* Create and mount a writable rootfs for container cid from image_id; *ret_rootfs its path. */
	int (*prepare)(void *ctx, const char *cid, const char *image_id, char **ret_rootfs,
		       struct berth_error **err);
	/* Mount an existing container rootfs again (after unmount or reboot). */
	int (*mount)(void *ctx, const char *cid, char **ret_rootfs, struct berth_error **err);
	int (*unmount)(void *ctx, const char *cid, struct berth_error **err);
	int (*remove)(void *ctx, const char *cid, struct berth_error **err);
	/* Optional (NULL: -ENOTSUP), see engine_container_commit/export/changes. */
	int (*commit)(void *ctx, const char *cid, const struct engine_image_commit *req, char **ret_id,
		      struct berth_error **err);
	int (*export)(void *ctx, const char *cid, int out_fd, struct berth_error **err);
	/* The snapshot's upper dir and its lower dirs (topmost first, NULL-terminated), without mounting. */
	int (*layers)(void *ctx, const char *cid, char **ret_upper, char ***ret_lowers,
		      struct berth_error **err);
	/* Optional: ids of every container rootfs (NULL-terminated), for the sweep of orphans at start. */
	int (*snapshots)(void *ctx, char ***ret_ids, struct berth_error **err);
};

/*
 * Network setup, called for network modes other than none/host/container:.
 * attach() runs before the container starts and returns the path of a network
 * namespace to join (e.g. /run/netns/x); detach() after it stopped (the
 * container may keep its addresses for its next start); release() (optional)
 * when it is removed: nothing of it may stay. detach() and release() run
 * without the engine's lock (they may block) but must not call back into the
 * engine.
 */
struct engine_network_ops {
	int (*attach)(void *ctx, const char *cid, const char *mode, const json_t *hostconfig,
		      char **ret_netns, struct berth_error **err);
	int (*detach)(void *ctx, const char *cid, const char *mode, struct berth_error **err);
	int (*release)(void *ctx, const char *cid, const char *mode, struct berth_error **err);
};

/* engine_image_ops over the image library; ctx is a struct image_store * (image/image.h). */
extern const struct engine_image_ops engine_image_store_ops;

struct engine_config {
	const char *root;      /* state: berth.db, containers/<id>/ (logs), volumes */
	const char *exec_root; /* runtime state: shim sockets, bundles */
	/* The named runtimes containers choose from (HostConfig.Runtime; copied). NULL: berth, and runc
	 * as berth. */
	const struct runtime_registry *runtimes;
	const char *shim_path; /* the berth binary to run as `berth shim`; NULL: /proc/self/exe */
	const struct engine_image_ops *images; /* required, e.g. &engine_image_store_ops */
	void *images_ctx;
	const struct engine_network_ops *net; /* NULL: only none/host/container: */
	void *net_ctx;
	const char *init_path;         /* --init binary; NULL: ENGINE_DEFAULT_INIT_PATH */
	const json_t *default_ulimits; /* Docker Ulimits array applied to every container; NULL: none */
	const char *cgroup_parent;     /* containers' cgroups are /<parent>/<id>; NULL: "berth" */
};

/* Debian's static tini (package tini): works in any image, no libc needed there. */
#define ENGINE_DEFAULT_INIT_PATH "/usr/bin/tini-static"

int engine_open(const struct engine_config *cfg, struct engine **ret, struct berth_error **err);
/*
 * Begin shutting down: blocked waits, event and log-follow readers return
 * (with -ESHUTDOWN / end of stream) so front ends can finish their requests.
 */
void engine_shutdown(struct engine *e);
/* Stop watching (shims and containers keep running) and free. Accepts NULL. */
struct engine *engine_close(struct engine *e);

/* ---- containers ---- */

enum engine_state {
	ENGINE_CREATED = 0,
	ENGINE_RUNNING,
	ENGINE_PAUSED,
	ENGINE_RESTARTING,
	ENGINE_REMOVING,
	ENGINE_EXITED,
	ENGINE_DEAD,
};
/* Docker's names: "created", "running", ... */
const char *engine_state_name(enum engine_state s);

/*
 * A snapshot of one container, detached from the engine (safe to use after
 * the container changed or went away). Free with engine_container_info_free().
 */
struct engine_container_info {
	char *id, *name; /* name without the leading '/' */
	char *image;     /* as the user gave it */
	char *image_id;
	char *created;      /* RFC 3339 */
	json_t *config;     /* Docker Config (image defaults applied) */
	json_t *hostconfig; /* Docker HostConfig */
	json_t *mounts;     /* Docker's Mounts of inspect (array) */
	enum engine_state state;
	bool oom_killed, dead;
	pid_t pid;
	int exit_code;
	char *started_at, *finished_at, *error;
	int restart_count;
	char *health; /* "starting", "healthy", "unhealthy" or NULL */
	int health_failing_streak;
	json_t *health_log;
	char *log_path, *rootfs, *resolv_conf_path, *hostname_path, *hosts_path;
	char **exec_ids;
};
struct engine_container_info *engine_container_info_free(struct engine_container_info *c);
static inline void engine_container_info_freep(struct engine_container_info **c)
{
	*c = engine_container_info_free(*c);
}
#define _cleanup_container_info_ _cleanup_(engine_container_info_freep)

/*
 * Create a container from Docker-shaped config (Image required; Cmd, Env, ...)
 * and hostconfig (may be NULL). name may be NULL (a random name is chosen).
 * Both JSON objects are borrowed. *ret_id: the 64-hex id, caller frees.
 */
int engine_container_create(struct engine *e, const char *name, const json_t *config,
			    const json_t *hostconfig, char **ret_id, struct berth_error **err);

/*
 * Validate Config/HostConfig as create does (types, restart policy, log
 * driver, network mode) without an engine: no image or container lookups.
 */
int engine_container_config_check(const json_t *config, const json_t *hostconfig, struct berth_error **err);

/* Look up by full id, unique id prefix or name. */
int engine_container_inspect(struct engine *e, const char *ref, struct engine_container_info **ret,
			     struct berth_error **err);
/* All containers (running only unless all), newest first. */
int engine_container_list(struct engine *e, bool all, struct engine_container_info ***ret, size_t *ret_n,
			  struct berth_error **err);
void engine_container_info_list_free(struct engine_container_info **list, size_t n);

int engine_container_start(struct engine *e, const char *ref, struct berth_error **err);
/* SIGTERM (or the StopSignal), then SIGKILL after timeout_s (< 0: the container's StopTimeout or 10). */
int engine_container_stop(struct engine *e, const char *ref, int timeout_s, struct berth_error **err);
int engine_container_restart(struct engine *e, const char *ref, int timeout_s, struct berth_error **err);
int engine_container_kill(struct engine *e, const char *ref, int sig, struct berth_error **err);
int engine_container_pause(struct engine *e, const char *ref, bool pause, struct berth_error **err);
int engine_container_remove(struct engine *e, const char *ref, bool force, bool volumes,
			    struct berth_error **err);
/*
 * Wait, at most timeout_ms, until removals already reported done have freed their resources: an
 * --rm container leaves the list (and its wait returns) before its snapshot is unmounted and
 * removed, and that snapshot still holds its image. For image removal and prune.
 */
void engine_removals_wait(struct engine *e, int timeout_ms);
/*
 * docker update: resource fields of HostConfig (Memory, MemorySwap, CpuShares,
 * CpuQuota, CpuPeriod, NanoCpus, CpusetCpus, CpusetMems, PidsLimit,
 * BlkioWeight) and RestartPolicy; zero/empty = unchanged. Applied live to a
 * running container's cgroup, then persisted. *ret_warnings: array.
 */
int engine_container_update(struct engine *e, const char *ref, const json_t *update, json_t **ret_warnings,
			    struct berth_error **err);
int engine_container_rename(struct engine *e, const char *ref, const char *name, struct berth_error **err);

enum engine_wait_condition {
	ENGINE_WAIT_NOT_RUNNING = 0,
	ENGINE_WAIT_NEXT_EXIT,
	ENGINE_WAIT_REMOVED,
};
/* Block until the condition holds; *ret_exit_code the last exit code. */
int engine_container_wait(struct engine *e, const char *ref, enum engine_wait_condition cond,
			  int *ret_exit_code, struct berth_error **err);
/*
 * The same in two steps: begin takes the container and the point the
 * condition counts from (the exit generation) at once, so an exit or a
 * removal between begin and finish is not missed (the API answers a wait's
 * head only after begin: a client that saw it may start the container);
 * finish blocks, then frees the handle. engine_wait_free drops an unfinished one.
 */
struct engine_wait;
int engine_container_wait_begin(struct engine *e, const char *ref, enum engine_wait_condition cond,
				struct engine_wait **ret, struct berth_error **err);
int engine_container_wait_finish(struct engine_wait *w, int *ret_exit_code, struct berth_error **err);
void engine_wait_free(struct engine_wait *w);

/* docker top: {Titles, Processes} of `ps PS_ARGS` (NULL/"": -ef) for the container's processes. */
int engine_container_top(struct engine *e, const char *ref, const char *ps_args, json_t **ret,
			 struct berth_error **err);

/* ---- attach / exec streams ---- */

/* Longest detach key sequence (shim/detachkeys.h DETACH_KEYS_MAX). */
#define ENGINE_DETACH_KEYS_MAX 16

struct engine_stream_opts {
	bool in, out, err; /* which streams the client wants */
	bool logs;         /* replay the log first (attach?logs=1; done by the front end) */
	/* Bytes that detach a TTY client (stdin is filtered); 0 keys: never. */
	unsigned char detach_keys[ENGINE_DETACH_KEYS_MAX];
	size_t n_detach_keys;
};

/*
 * Connect a stream to the container's stdio. Before the container (re)starts
 * (created or exited: `docker start -a`), the connection is parked and joined
 * to the shim at start. Returns an fd: write
 * stdin to it (shutdown(SHUT_WR) closes stdin when StdinOnce), read the
 * container's output: raw bytes with a TTY, otherwise Docker's multiplexed
 * frames (8-byte header: stream, 0, 0, 0, big-endian length). *ret_tty tells
 * which.
 */
int engine_container_attach(struct engine *e, const char *ref, const struct engine_stream_opts *opts,
			    int *ret_fd, bool *ret_tty, struct berth_error **err);

/* Resize the TTY of a container (ref) or of an exec (exec_id). -ENOTTY when there is none. */
int engine_resize(struct engine *e, const char *ref, const char *exec_id, int height, int width,
		  struct berth_error **err);

/* Docker's ExecConfig (Cmd, Env, User, WorkingDir, Tty, AttachStdin, ...) borrowed. */
int engine_exec_create(struct engine *e, const char *ref, const json_t *config, char **ret_id,
		       struct berth_error **err);
/*
 * Start an exec: with detach, *ret_fd is -1; otherwise a stream fd as for
 * attach. so (may be NULL) gives the detach keys of the stream. raw: the
 * stream carries the output unframed (the start request's Tty, which dockerd
 * follows whatever the exec's own Tty, which alone decides on a terminal);
 * *ret_tty = raw. -ENOEXEC: the runtime could not start the command (not
 * found: exit code 127, not executable: 126, as exec inspect then reports);
 * err holds the runtime's message, which dockerd writes into the stream.
 */
int engine_exec_start(struct engine *e, const char *exec_id, bool detach, bool raw,
		      const struct engine_stream_opts *so, int *ret_fd, bool *ret_tty,
		      struct berth_error **err);
/* Docker's exec inspect body. */
int engine_exec_inspect(struct engine *e, const char *exec_id, json_t **ret, struct berth_error **err);

/* ---- logs ---- */

struct engine_log_opts {
	bool out, err, follow, timestamps;
	bool details;               /* each line after its record's attrs ("k=v,..." and a space) */
	int64_t tail;               /* < 0: all */
	int64_t since_ns, until_ns; /* unix ns; 0: unbounded */
};
struct engine_log_reader;
int engine_logs_open(struct engine *e, const char *ref, const struct engine_log_opts *opts,
		     struct engine_log_reader **ret, bool *ret_tty, struct berth_error **err);
/*
 * Append the next log records to out: raw with a TTY, else multiplexed frames.
 * Blocks while following. Returns 0 to continue, 1 at the end, -errno on error.
 */
int engine_logs_read(struct engine_log_reader *r, struct strbuf *out, struct berth_error **err);
struct engine_log_reader *engine_logs_close(struct engine_log_reader *r);

/* ---- events ---- */

/*
 * Record an event of an object the engine does not own (Docker's "image",
 * "network" events) in the same stream as the engine's own: `id` is the
 * Actor's ID, `attributes` (may be NULL) are copied.
 */
void engine_event_log(struct engine *e, const char *type, const char *action, const char *id,
		      const json_t *attributes);

/*
 * Events since `since_ns` (unix ns; 0: only new ones) until `until_ns`
 * (0: follow forever). Each is Docker's event object.
 */
struct engine_event_reader;
int engine_events_open(struct engine *e, int64_t since_ns, int64_t until_ns, struct engine_event_reader **ret,
		       struct berth_error **err);
/* Next event (owned by caller) or NULL at the end; blocks while following. */
int engine_events_next(struct engine_event_reader *r, json_t **ret, struct berth_error **err);
struct engine_event_reader *engine_events_close(struct engine_event_reader *r);

/* ---- volumes (local driver) ---- */

/* Create (or return the existing) volume; name NULL/"" makes an anonymous one. *ret: Docker's Volume. */
int engine_volume_create(struct engine *e, const char *name, const json_t *labels, json_t **ret,
			 struct berth_error **err);
/* The same with the local driver's options (type, device, o: mounted on _data at first use). */
int engine_volume_create_opts(struct engine *e, const char *name, const json_t *labels,
			      const json_t *driver_opts, json_t **ret, struct berth_error **err);
int engine_volume_inspect(struct engine *e, const char *name, json_t **ret, struct berth_error **err);
int engine_volume_list(struct engine *e, json_t **ret, struct berth_error **err);
/* -EBUSY while a container refers to it; force: a missing volume is not an error. */
int engine_volume_remove(struct engine *e, const char *name, bool force, struct berth_error **err);

/* ---- filesystem and resource observation (stats.c, archive.c, changes.c, commit.c) ---- */

/*
 * One sample of Docker's stats object (GET /containers/{id}/stats): read,
 * preread, name, id, pids_stats, cpu_stats (cpu_usage.total_usage,
 * percpu_usage, usage_in_kernelmode, usage_in_usermode, system_cpu_usage,
 * online_cpus, throttling_data), precpu_stats, memory_stats (usage,
 * max_usage, limit, stats), blkio_stats, networks (per interface of the
 * container's network namespace; absent with host networking). `prev` (may
 * be NULL) is the previous sample: its cpu_stats become precpu_stats. A
 * container that is not running gives the zero sample docker sends.
 */
int engine_container_stats(struct engine *e, const char *ref, const json_t *prev, json_t **ret,
			   struct berth_error **err);

/* Wait ms between stream samples; -ESHUTDOWN (at once) when engine_shutdown() was called. */
int engine_stats_pace(struct engine *e, int64_t ms);

/*
 * Docker's container path stat (the X-Docker-Container-Path-Stat header):
 * {"name", "size", "mode" (Go os.FileMode bits), "mtime" (RFC 3339),
 * "linkTarget"}. The path is absolute in the container (relative means
 * from "/"); every component but the last is resolved inside the container
 * root (symlinks included, never leaving it), the last one is not followed.
 * -ENOENT: "Could not find the file PATH in container REF".
 * Works for created, running and exited containers (a stopped container's
 * rootfs is mounted for the call) on the container's view: its volumes, bind
 * mounts, tmpfs mounts (a running container's own; empty when stopped) and
 * /etc files mounted on the rootfs, as the container sees them.
 */
int engine_archive_stat(struct engine *e, const char *ref, const char *path, json_t **ret,
			struct berth_error **err);
/* Write an uncompressed tar of path (entries named from its base name) to out_fd; *ret_stat as above. */
int engine_archive_get(struct engine *e, const char *ref, const char *path, int out_fd, json_t **ret_stat,
		       struct berth_error **err);

struct engine_archive_put_opts {
	bool no_overwrite_dir_nondir; /* refuse to replace a directory by a non-directory or back */
	bool copy_uid_gid; /* owner from the container's User; otherwise root (docker's defaults) */
};
/*
 * Extract the tar stream on in_fd (plain, gzip, zstd) into the directory path
 * (resolved in the container root; must exist: -ENOENT, be a directory:
 * -ENOTDIR). Entries can never leave the destination (see
 * image_extract_tar()). Invalid tar: -EBADMSG. A destination on the rootfs
 * of a ReadonlyRootfs container or on a read-only mount: -EACCES (docker's
 * messages); an entry reaching a read-only mount below it: -EROFS; on a
 * stopped container's tmpfs (which starts empty): -ENOTCONN.
 */
int engine_archive_put(struct engine *e, const char *ref, const char *path, int in_fd,
		       const struct engine_archive_put_opts *opts, struct berth_error **err);

/*
 * docker diff: [{"Path": "/x", "Kind": 0 modified | 1 added | 2 deleted}],
 * sorted by path, from the overlay upper dir (whiteouts are deletions),
 * leaving out the mount points the engine adds (/etc/hosts, ...).
 */
int engine_container_changes(struct engine *e, const char *ref, json_t **ret, struct berth_error **err);

/* docker export: the merged root filesystem as an uncompressed tar on out_fd. */
int engine_container_export(struct engine *e, const char *ref, int out_fd, struct berth_error **err);

struct engine_commit_opts {
	const char *repo, *tag;       /* both may be NULL (untagged image); tag defaults to "latest" */
	const char *comment, *author; /* may be NULL */
	bool pause;                   /* pause a running container while its upper dir is read */
	const char *const *changes;   /* Dockerfile lines: CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD
				       * STOPSIGNAL USER VOLUME WORKDIR; NULL-terminated, may be NULL */
	const json_t *config;         /* Config fields overriding the container's (may be NULL) */
};
/* docker commit: parent layers + the container's upper dir; *ret_id "sha256:...". */
int engine_container_commit(struct engine *e, const char *ref, const struct engine_commit_opts *opts,
			    char **ret_id, struct berth_error **err);
/* Apply docker commit/import "changes" lines to a Config object (env: for $VAR expansion). */
int engine_config_apply_changes(json_t *config, const char *const *changes, struct berth_error **err);

/* "SIGTERM", "TERM", "term" or "15" -> 15; -EINVAL when unknown. */
int engine_signal_parse(const char *s);

/* ---- system ---- */

struct engine_counts {
	unsigned containers, running, paused, stopped, images;
};
void engine_counts(struct engine *e, struct engine_counts *ret);
const char *engine_root(const struct engine *e);
/* GET /info's Runtimes (a new object) and DefaultRuntime. */
json_t *engine_runtimes_info(const struct engine *e);
const char *engine_runtime_default(const struct engine *e);

#endif
