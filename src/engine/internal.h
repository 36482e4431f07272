/*
 * internal.h - the engine's private data model, shared by its files.
 *
 * Locking: one mutex (e->lock) guards the container table and every
 * container's fields; e->cond is broadcast on every state change (waiters
 * re-check their condition). Long operations (spawning a shim, waiting for a
 * stop) run with the lock released, serialised per container by c->op_lock,
 * which is always taken before e->lock. e->lock is never held across
 * blocking work (runtime commands, shim requests, unmounts, network
 * teardown, rm -rf): such work marks the container under the lock (state
 * removing, c->exiting), runs unlocked, and finishes under the lock.
 *
 * Persistence: every change of a container's fields is saved with
 * engine_container_save(). A save that fails (disk full, database busy) leaves the
 * container dirty: the monitor retries it every second and logs the failure
 * and the recovery; operations that create or remove a record report it.
 */
#ifndef BERTH_ENGINE_INTERNAL_H
#define BERTH_ENGINE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "engine/engine.h"
#include "engine/options.h"
#include "runtime/ops.h"
#include "runtime/registry.h"

#define ENGINE_MAX_CONTAINERS 4096

struct parked_attach {
	int fd;      /* our end of a socketpair handed to the caller */
	int shim_fd; /* while starting: its attach request sent to the shim, reply not yet read */
	struct engine_stream_opts opts;
	struct parked_attach *next;
};

struct exec_instance {
	char *id, *container_id;
	json_t *config;  /* Docker ExecConfig */
	json_t *process; /* OCI process */
	bool running, started, finished;
	bool die_logged; /* its exec_die event was logged */
	int exit_code;
	pid_t pid;
	struct exec_instance *next;
};

struct container {
	unsigned refs;
	struct engine *engine;
	pthread_mutex_t op_lock;
	char *id, *name, *image, *image_id, *created;
	json_t *config, *hostconfig;
	json_t *mounts; /* mount points (engine/mounts.c), resolved at create */
	enum engine_state state;
	pid_t pid;
	int pidfd;
	pid_t shim_pid;
	/*
	 * The shim's pidfd stays open after the exit is recorded (the shim still deletes the
	 * runtime's state): a new start or the removal waits for it (engine_shim_wait_gone).
	 */
	int shim_pidfd;
	int exit_fd;  /* read end of the shim's readiness pipe: hangs up once exit.json is written */
	bool watched; /* exit_fd (or, without it, shim_pidfd) is in the monitor's epoll set, with a ref */
	int exit_code;
	bool oom_killed, manual_stop, removed, has_started;
	bool dirty;   /* the record in berth.db is older than these fields: retried by the monitor */
	bool exiting; /* its exit is being cleaned up (unlocked); recorded when that ends */
	char *started_at, *finished_at, *error;
	int restart_count;
	int64_t restart_due_ms; /* monotonic; 0: none scheduled */
	int64_t backoff_ms;
	uint64_t exit_gen; /* bumped on every recorded exit */
	char *rootfs;
	char *health;
	int health_streak;
	json_t *health_log;
	int64_t health_next_ms;
	bool health_running;
	struct parked_attach *parked;
	/* The runtime of its current (or last) run, as its shim.json names it (runtimes.c): NULL
	 * when it was not started since the daemon started and is not running. */
	json_t *rt_used;
};

struct engine {
	char *root, *exec_root, *shim_path;
	/* The daemon's named OCI runtimes (a container's HostConfig.Runtime names one; runtimes.c)
	 * and the built-in runtime's state root rt_root (<exec root>/runc). */
	struct runtime_registry runtimes;
	char *rt_root;
	const struct engine_image_ops *img;
	void *img_ctx;
	const struct engine_network_ops *net;
	void *net_ctx;
	sqlite3 *db;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *init_path;         /* --init binary */
	char *cgroup_parent;     /* containers' cgroups: /<cgroup_parent>/<id> */
	json_t *default_ulimits; /* Docker Ulimits array, merged at start */
	struct container **cs;
	size_t n_cs;
	struct exec_instance *execs;
	/* monitor thread: epoll over shim pidfds, eventfd to wake it */
	int epfd, wakefd;
	/* inotify on the exec dirs of containers with started execs: the shim's exec-<id>.json
	 * landing is an exec's exit (exec_die), -1 without inotify */
	int inofd;
	pthread_t monitor;
	bool stopping;
	bool closing; /* engine_shutdown() was called */
	uint64_t event_seq;
	/* engine_spawn_thread() threads still running (engine_close() waits for them) */
	unsigned n_threads;
	/* removals whose container is already gone from the list (--rm) while its snapshot, network
	 * and files are still being freed (engine_removals_wait()) */
	unsigned n_hidden_removals;
};

/* engine.c: a cgroup parent path ("a/b" or "/a/b"): names of [A-Za-z0-9_.-], no "." or "..". */
bool engine_cgroup_parent_valid(const char *p);
/* The container's cgroup: /<HostConfig.CgroupParent or the engine's>/<id> (caller frees). */
char *engine_container_cgroup_path(const struct engine *e, const struct container *c);

/* store.c */
int engine_store_open(struct engine *e, struct berth_error **err);
void engine_store_close(struct engine *e);
/* Persist c (under e->lock): -ENOSPC (SQLITE_FULL), -EAGAIN (busy), -EIO. Use engine_container_save(). */
int engine_store_save(struct engine *e, const struct container *c, struct berth_error **err);
/*
 * Group the saves and events that follow (under e->lock) into one transaction,
 * one WAL commit. A statement that fails inside it reports its error as
 * usual; a commit that fails rolls back and returns -EIO: the caller saves
 * again what it held (a failed save is then logged and retried).
 */
void engine_store_begin(struct engine *e);
int engine_store_commit(struct engine *e);
/* scrub: also checkpoint and truncate the WAL, so that no copy of the record's bytes is left
 * (build step containers, whose Env may hold RUN --mount=type=secret,env= values). */
int engine_store_delete(struct engine *e, const char *id, bool scrub, struct berth_error **err);
int engine_store_load(struct engine *e, struct berth_error **err);
void engine_store_event(struct engine *e, const char *type, const char *action, const char *id,
			const json_t *attributes);
int engine_store_events_since(struct engine *e, int64_t since_ns, int64_t after_rowid, json_t **ret_list,
			      int64_t *ret_last_rowid);

/* container.c */
struct container *engine_container_ref(struct container *c);
void engine_container_unref(struct container *c);
/* Find by id, id prefix or name; takes a reference. Call with e->lock held. */
int engine_container_find_locked(struct engine *e, const char *ref, struct container **ret,
				 struct berth_error **err);
int engine_container_find(struct engine *e, const char *ref, struct container **ret,
			  struct berth_error **err);
void engine_container_table_add(struct engine *e, struct container *c);
struct container *engine_container_alloc(void);
/* Name it (validated, unique; random when NULL), persist, add to the table, emit "create". */
int engine_container_register(struct engine *e, struct container *c, const char *name,
			      struct berth_error **err);
void engine_container_table_remove(struct engine *e, struct container *c);
json_t *engine_container_to_json(const struct container *c);
struct container *engine_container_from_json(const json_t *j);
char *engine_container_dir(const struct engine *e, const char *id);
char *engine_container_exec_dir(const struct engine *e, const char *id);
/*
 * Persist c (under e->lock). On failure c stays dirty (the monitor retries every
 * second, the first failure and the recovery are logged) and the error is
 * returned for callers that report it.
 */
int engine_container_save(struct engine *e, struct container *c, struct berth_error **err);
/* Save the dirty containers again (under e->lock); true while some are still dirty. */
bool engine_container_save_dirty(struct engine *e);
/* Set the state, engine_container_save() it and wake waiters. */
int engine_container_set_state(struct engine *e, struct container *c, enum engine_state s);
void engine_container_event(struct engine *e, const struct container *c, const char *action, json_t *extra);

/* spec.c: write <exec dir>/config.json for the runtime. */
int engine_spec_write(struct engine *e, struct container *c, const char *rootfs, const char *netns,
		      struct berth_error **err);
/* The OCI process object of an exec from Docker's ExecConfig. */
int engine_spec_exec_process(struct engine *e, struct container *c, const json_t *exec_config, json_t **ret,
			     struct berth_error **err);
/* Numeric uid/gid for "user[:group]" looked up in the container's /etc/passwd. */
int engine_spec_resolve_user(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
			     struct berth_error **err);

/* Unknown capability names, or CapAdd beyond the daemon's bounding set: EINVAL/EPERM. */
int engine_spec_caps_check(const json_t *hostconfig, struct berth_error **err);
/*
 * HostConfig.MaskedPaths / ReadonlyPaths: docker's defaults when absent or
 * null on a container that is not privileged (dockerd stores them at create;
 * the CLI's --security-opt systempaths=unconfined sends [] for none).
 */
void engine_spec_default_paths(json_t *hostconfig);

/* resources.c: dockerd's create-time checks of a HostConfig's resources and of Config.WorkingDir
 * (EINVAL with dockerd's message). */
int engine_resources_check(const json_t *hostconfig, struct berth_error **err);
int engine_working_dir_check(const json_t *config, struct berth_error **err);
/* OCI linux.resources (no devices) from HostConfig's resource fields, as update applies them. */
json_t *engine_spec_resources(const json_t *hostconfig);

/* seccomp.c: the default profile (OCI linux.seccomp) for a container with these capabilities. */
json_t *engine_seccomp_default_profile(const json_t *caps);

/* volumes.c: create (or keep) a volume with local driver options (type/device/o). */
int engine_volume_create_full(struct engine *e, const char *name, const json_t *labels, const json_t *opts,
			      json_t **ret, struct berth_error **err);
/* Mount a volume's driver file system on its _data (no-op without options or when mounted). */
int engine_volume_mount_driver(struct engine *e, const char *name, struct berth_error **err);

/* mounts.c: mount points of a new container (volumes created); e NULL: parse only. */
int engine_mounts_plan(struct engine *e, const json_t *cfg, const json_t *hc, json_t **ret,
		       struct berth_error **err);
/* Append c's mount points to the OCI mounts (copy-up into empty volumes); *ret_changed: persist c. */
int engine_mounts_to_oci(struct engine *e, struct container *c, const char *rootfs, json_t *oci,
			 bool *ret_changed, struct berth_error **err);
/* Names of c's anonymous volumes (new array). */
json_t *engine_mounts_anonymous(const struct container *c);
/* Remove these volumes; one still in use elsewhere is kept. Call without e->lock. */
void engine_mounts_remove_volumes(struct engine *e, const json_t *names);

/* copyup.c: copy rootfs:path into volume_dir when that is empty (owners, modes kept). */
int engine_copyup_volume(const char *rootfs, const char *path, const char *volume_dir,
			 struct berth_error **err);

/* ulimits.c: the container's Ulimits plus the daemon's defaults it does not set (new array). */
json_t *engine_ulimits_effective(const json_t *defaults, const json_t *own);

/* seccomp.c: a custom profile (SecurityOpt seccomp={json}) or NULL; NULL *ret: none given. */
int engine_seccomp_custom_profile(const json_t *hc, const json_t *caps, json_t **ret,
				  struct berth_error **err);

/*
 * runtimes.c: the runtime a container runs on (see the file's comment). The
 * shim.json members {"runtime_name", "runtime", "runtime_args", "runtime_root"}
 * describe one.
 */
/* For a start of c (under e->lock): HostConfig.Runtime resolved (none: the default); EINVAL
 * "unknown or invalid runtime name: N" when the daemon does not define it. */
int engine_runtime_for_start(struct engine *e, const struct container *c, json_t **ret,
			     struct berth_error **err);
/* The members of an exec dir's shim.json (new object), or NULL when it has none. */
json_t *engine_runtime_from_exec_dir(const char *xdir);
/* A runtime to call (runtime/ops.h) and the strings it borrows. */
struct engine_rt {
	struct runtime_oci oci;
	json_t *used;
	char **args;
};
/* rt for the members used (NULL: the built-in runtime on e->rt_root); engine_rt_done() it. */
void engine_rt_from(struct engine *e, const json_t *used, struct engine_rt *ret);
/* The runtime c's run uses (c->rt_used; copied: call under e->lock, use after it). */
void engine_rt_of(struct engine *e, const struct container *c, struct engine_rt *ret);
void engine_rt_done(struct engine_rt *rt);
/* EINVAL "Unknown runtime specified N" (dockerd's create error) unless the daemon defines name. */
int engine_runtime_check(const struct engine *e, const char *name, struct berth_error **err);

/* lifecycle.c */
int engine_monitor_start(struct engine *e, struct berth_error **err);
void engine_monitor_stop(struct engine *e);
void engine_monitor_watch(struct engine *e, struct container *c);
void engine_monitor_wake(struct engine *e);
/* The monitor read inotify events on exec dirs from fd: record the execs that exited. Call with
 * e->lock held. */
void engine_exec_reap_locked(struct engine *e, int fd);
/* A shareable container's /dev/shm on the host (<container dir>/shm); unmounted at exit and removal. */
char *engine_shm_path(struct engine *e, const char *id);
void engine_shm_unmount(struct engine *e, const char *id);
/* dockerd's action of an exec event ("exec_create: sh -c exit 3"), also for health probes. */
char *engine_exec_action(const char *what, const json_t *cmd);
/* Reconcile containers loaded from the store with their shims. */
void engine_lifecycle_recover(struct engine *e);
int engine_lifecycle_start_locked_op(struct engine *e, struct container *c, struct berth_error **err);
/*
 * Record the exit of c's shim in three steps: exit_begin (under e->lock:
 * c->exiting, what the cleanup needs), exit_cleanup (without the lock:
 * unmount, network teardown, an orphaned init's runtime delete) and
 * exit_finish (under e->lock: state, events, restart policy). NULL: already
 * exiting. engine_exit_cleanup_and_finish() takes e->lock itself.
 */
struct exit_job;
struct exit_job *engine_exit_begin_locked(struct engine *e, struct container *c);
void engine_exit_cleanup_and_finish(struct exit_job *job);
/*
 * All three inline with e->lock held: only while nothing else runs
 * (engine_lifecycle_recover). An --rm container's removal is begun and
 * returned, to be finished without e->lock (engine_ops_autoremove_finish).
 */
struct autoremove;
struct autoremove *engine_lifecycle_record_exit(struct engine *e, struct container *c);
/* Network ops detach / release (the container is being removed) for a container's hostconfig. */
void engine_network_teardown(struct engine *e, const char *id, const json_t *hostconfig);
void engine_network_release(struct engine *e, const char *id, const json_t *hostconfig);
/* The shim request attaching a stream with these options. */
json_t *engine_attach_request(const struct engine_stream_opts *o);
/* Add "detach_keys" of o to a shim request. */
void engine_request_detach_keys(json_t *req, const struct engine_stream_opts *o);
/* Relay between a and b in a detached thread, closing both at the end. */
void engine_spawn_relay(int a, int b);
/*
 * Run fn(arg) in a detached thread (inline if no thread can be made), counted
 * in e->n_threads until it returns. May be called with e->lock held.
 */
void engine_spawn_thread(struct engine *e, void *(*fn)(void *), void *arg);

/* ops.c: remove an exited --rm container in the background (under e->lock). */
void engine_ops_remove_async(struct engine *e, struct container *c);
/*
 * Remove c and everything it holds, record last. c->op_lock held, e->lock not
 * held (it is taken for the state changes only). On failure c is left "dead"
 * (a later removal finishes it) and the error says what failed.
 */
int engine_ops_remove(struct engine *e, struct container *c, bool hide_first, struct berth_error **err);
/*
 * An --rm container's removal in two steps: begin under e->lock with c->op_lock
 * held (the record says "removing", the container leaves the table), finish
 * without e->lock (resources, record; releases c->op_lock).
 */
struct autoremove;
struct autoremove *engine_ops_autoremove_begin_locked(struct engine *e, struct container *c);
void engine_ops_autoremove_finish(struct engine *e, struct autoremove *a);
/* Wait (bounded) for the exited shim of a container that is not running; without e->lock. */
void engine_shim_wait_gone(struct engine *e, struct container *c);

/* logs.c: a container's log driver settings from HostConfig.LogConfig. */
struct log_settings {
	char *path; /* the live log file; NULL for the "none" driver */
	bool local, compress;
	int64_t max_size, max_file;
};
/* Validate LogConfig (driver and its options, docker's messages); ret may be NULL. */
int engine_log_settings_get(const json_t *logconfig, const char *cdir, const char *cid,
			    struct log_settings *ret, struct berth_error **err);
void engine_log_settings_done(struct log_settings *s);
/*
 * The json-file records' "attrs" of a container (moby's logger.Info.ExtraAttributes): the labels
 * named by the log option labels= (comma-separated) or matching labels-regex=, the environment
 * variables named by env= or matching env-regex=. Returns the object's JSON text (keys sorted, as
 * Go marshals a map; free it) or NULL when there are none or the driver is not json-file.
 * -EINVAL for a bad regular expression.
 */
int engine_log_attrs(const json_t *config, const json_t *logconfig, char **ret, struct berth_error **err);

/* health.c: start a due check; ms until the next one or -1 (under e->lock). */
int64_t engine_health_due(struct engine *e, struct container *c, int64_t now);

#endif
