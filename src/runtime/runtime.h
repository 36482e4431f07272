/*
 * runtime.h - the berth OCI runtime as a library.
 *
 * Two front ends use this API: `berth runtime` (runc's CLI, cli.c) and the
 * engine's per-container shim, which calls it IN-PROCESS: no runtime binary is
 * executed on the hot path. Everything the CLI can do is a function here.
 *
 * Model (OCI runtime spec): a container is identified by an id unique within
 * a state root (ctx->state_root, e.g. /run/berth/runtime). runtime_create()
 * builds the container (namespaces, cgroup, mounts, pivot_root, ...) and
 * leaves its init process blocked just before exec of the user's program;
 * runtime_start() releases it. The init process is a child of the process that
 * called runtime_create(): an in-process caller (the shim) can reap it (use
 * the returned pidfd); the CLI exits and the init is reparented to the nearest
 * subreaper, as with runc.
 *
 * State lives in <state_root>/<id>/: state.json (pid, pid start time, bundle,
 * cgroup path, created time, annotations), exec.fifo (present while
 * "created"), hooks.json (poststart/poststop hooks, when the spec has any) and
 * config.json only when the spec came from memory and the bundle has none;
 * otherwise exec reads <bundle>/config.json.
 *
 * Errors: every function returns 0 (or a documented non-negative value) on
 * success and -errno on failure, filling *err (may be NULL) with a message
 * that names the failing step and the user value: "create container 'web':
 * mount 'proc' on '/proc': Operation not permitted". Failure of create/run
 * leaves nothing behind: no state directory, cgroup, process or mount.
 *
 * Processes: the library never installs signal handlers, never calls exit(),
 * and only logs at debug level (through common/log.h: the caller chooses the
 * fd and format). runtime_create/run/exec clone3() a fork-like child that
 * keeps using libc (malloc): call them from a single-threaded process (or
 * one whose other threads cannot hold libc locks). Output parameters are
 * untouched on failure.
 *
 * Security (CVE-2019-5736): until it execs the user's program, a container
 * process is a clone of the caller, so /proc/self/exe inside the container
 * names the caller's binary. A process that may end up in a container must
 * therefore run from a sealed, read-only memfd copy of itself: call
 * runtime_protect_exe() first thing in main() of any program that calls
 * runtime_create/run/exec (the CLI does; the shim must). Every host fd except
 * stdio and the preserved ones is closed before exec (close_range), and
 * process.cwd is resolved inside the new root after pivot_root
 * (CVE-2024-21626).
 */
#ifndef BERTH_RUNTIME_RUNTIME_H
#define BERTH_RUNTIME_RUNTIME_H

#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"
#include "runtime/spec.h"

/* Longest container id; ids are [A-Za-z0-9][A-Za-z0-9_.+-]* (no '/', no "..") */
#define RUNTIME_ID_MAX 1024

/* Default state root of `berth runtime` when --root is not given. */
#define RUNTIME_DEFAULT_STATE_ROOT "/run/berth/runtime"

/*
 * Per-caller settings. Plain data; fill it with RUNTIME_CTX_INIT and assign.
 * Strings are borrowed and must outlive every call that uses the context.
 */
struct runtime_ctx {
	const char *state_root; /* NULL: RUNTIME_DEFAULT_STATE_ROOT */
	bool systemd_cgroup; /* cgroupsPath is "slice:prefix:name" managed via systemd (refused: see docs) */
	bool timings;        /* log per-phase monotonic timings at debug level ("phase=mounts us=123") */
};

#define RUNTIME_CTX_INIT \
	{                \
		NULL     \
	}

/* Validate a container id (see RUNTIME_ID_MAX). 0 or -EINVAL with a message. */
int runtime_id_validate(const char *id, struct berth_error **err);

/* Options of create, run and exec. Initialise with RUNTIME_CREATE_OPTS_INIT. */
struct runtime_create_opts {
	/* Parsed spec to use instead of <bundle>/config.json (borrowed; saves a parse). */
	const struct runtime_spec *spec;
	const char *pid_file; /* write the init's host pid here (atomically); NULL: none */
	/*
	 * process.terminal: the pty master is sent with SCM_RIGHTS over a unix
	 * socket, as runc's --console-socket: either connect to this path, or use
	 * the already-connected socket console_socket_fd (>= 0; borrowed).
	 */
	const char *console_socket;
	int console_socket_fd;
	/*
	 * Fds that become the container's 0, 1, 2 (borrowed; -1: the caller's own
	 * 0/1/2). Ignored for the slots a terminal replaces.
	 */
	int stdio[3];
	/*
	 * Extra fds passed to the container process as 3, 4, ... (runc
	 * --preserve-fds N passes the caller's 3..3+N-1: the CLI fills this with
	 * those). Borrowed. Every other fd is closed before exec.
	 */
	const int *preserve_fds;
	size_t n_preserve_fds;
	bool no_pivot;       /* MS_MOVE + chroot instead of pivot_root (rootfs on ramfs) */
	bool no_new_keyring; /* do not create a session keyring */
	/* run only: return after start instead of waiting for the exit (ret_status untouched). */
	bool detach;
	/* exec only: the process object to run, parsed (borrowed). */
	const struct runtime_process *process;
	/*
	 * Non-fatal findings, one line each ("'process.apparmorProfile': AppArmor
	 * is not enabled on this host, ignoring"), appended when not NULL; the
	 * caller decides whether to show them (the library does not log them).
	 */
	struct strbuf *warnings;
};

#define RUNTIME_CREATE_OPTS_INIT                                 \
	{                                                        \
		.console_socket_fd = -1, .stdio = { -1, -1, -1 } \
	}

/*
 * Create container `id` from the bundle directory (config.json + rootfs).
 * Runs prestart/createRuntime hooks (runtime namespace) and createContainer
 * hooks (container namespace) and returns once the init is blocked before
 * exec: state "created". *ret_pid (may be NULL) is its host pid; *ret_pidfd
 * (may be NULL) a pidfd the caller owns (for waiting/signalling without pid
 * reuse races). On failure everything created is undone and the init killed.
 */
int runtime_create(const struct runtime_ctx *ctx, const char *id, const char *bundle,
		   const struct runtime_create_opts *opts, pid_t *ret_pid, int *ret_pidfd,
		   struct berth_error **err);

/*
 * Start a created container: release its init, which runs startContainer
 * hooks and execs process.args; then run poststart hooks here. -EINVAL if the
 * container is not in state "created".
 */
int runtime_start(const struct runtime_ctx *ctx, const char *id, struct berth_error **err);

/*
 * create + start in one call, without the exec fifo round trip. Unless
 * opts->detach, waits for the init to exit, forwarding nothing (the CLI
 * forwards signals), runs poststop hooks, deletes the container and stores the
 * wait status in *ret_status (may be NULL). With detach, returns after start
 * like create+start (*ret_pid and *ret_pidfd as in runtime_create).
 */
int runtime_run(const struct runtime_ctx *ctx, const char *id, const char *bundle,
		const struct runtime_create_opts *opts, pid_t *ret_pid, int *ret_pidfd, int *ret_status,
		struct berth_error **err);

enum runtime_status {
	RUNTIME_STATUS_CREATING = 0,
	RUNTIME_STATUS_CREATED,
	RUNTIME_STATUS_RUNNING,
	RUNTIME_STATUS_PAUSED,
	RUNTIME_STATUS_STOPPED,
};

/* "creating", "created", "running", "paused", "stopped". */
const char *runtime_status_name(enum runtime_status s);

/* The OCI state of a container (runtime-spec "state"), plus what list/ps need. */
struct runtime_state {
	char *id; /* owned */
	enum runtime_status status;
	pid_t pid;           /* host pid of init; 0 when stopped */
	char *bundle;        /* owned, absolute */
	char *rootfs;        /* owned, absolute */
	char *created;       /* owned, RFC 3339 */
	char *owner;         /* owned, user name of the creator ("root") */
	json_t *annotations; /* owned reference, may be NULL */
};

void runtime_state_done(struct runtime_state *s);

/* Load the state of one container. -ENOENT: "container 'x' does not exist". */
int runtime_state(const struct runtime_ctx *ctx, const char *id, struct runtime_state *ret,
		  struct berth_error **err);

/* OCI state JSON ({"ociVersion","id","status","pid","bundle","annotations"}) appended to sb. */
void runtime_state_to_json(const struct runtime_state *s, struct strbuf *sb);

/* All containers under the state root (unsorted); *ret is an owned array of *ret_n states. */
int runtime_list(const struct runtime_ctx *ctx, struct runtime_state **ret, size_t *ret_n,
		 struct berth_error **err);
void runtime_state_list_free(struct runtime_state *list, size_t n);

/*
 * Send `sig` to the init (all == false) or to every process in the
 * container's cgroup (all == true; the freezer is thawed for SIGKILL). Fails
 * with -ESRCH when the container is stopped (except with all).
 */
int runtime_kill(const struct runtime_ctx *ctx, const char *id, int sig, bool all, struct berth_error **err);

/*
 * Delete a stopped (or created, which is killed) container: poststop hooks,
 * cgroup removal, state removal. With force, a running/paused container is
 * SIGKILLed first. Deleting a missing container is -ENOENT.
 */
int runtime_delete(const struct runtime_ctx *ctx, const char *id, bool force, struct berth_error **err);

/*
 * Run an extra process in a running container: joins all its namespaces and
 * its cgroup, applies opts->process (required: user, cwd resolved inside the
 * container, env, capabilities, rlimits, noNewPrivileges, terminal); the
 * container's seccomp profile applies unless the process is privileged in
 * the sense of runc (it always applies here). Returns the host pid; with
 * !opts->detach, waits and stores the wait status in *ret_status.
 */
int runtime_exec(const struct runtime_ctx *ctx, const char *id, const struct runtime_create_opts *opts,
		 pid_t *ret_pid, int *ret_pidfd, int *ret_status, struct berth_error **err);

/* Freeze/thaw every process of the container (freezer v1 / cgroup.freeze v2). */
int runtime_pause(const struct runtime_ctx *ctx, const char *id, struct berth_error **err);
int runtime_resume(const struct runtime_ctx *ctx, const char *id, struct berth_error **err);

/* Apply new resource limits (the members set in *res) to a live container's cgroup. */
int runtime_update(const struct runtime_ctx *ctx, const char *id, const struct runtime_resources *res,
		   struct berth_error **err);

/* Cgroup counters; a value the controller does not expose is 0 and its `has_*` false. */
struct runtime_stats {
	uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
	uint64_t cpu_throttled_periods, cpu_throttled_ns;
	bool has_memory;
	uint64_t mem_usage, mem_limit, mem_max_usage, mem_cache, mem_failcnt;
	uint64_t swap_usage, swap_limit;
	bool has_pids;
	uint64_t pids_current, pids_limit; /* limit 0: unlimited */
	uint64_t blkio_read_bytes, blkio_write_bytes, blkio_read_ios, blkio_write_ios;
};

int runtime_stats(const struct runtime_ctx *ctx, const char *id, struct runtime_stats *ret,
		  struct berth_error **err);
/* runc's `events --stats` JSON ({"type":"stats","id":...,"data":{cpu,memory,pids,blkio}}). */
void runtime_stats_to_json(const char *id, const struct runtime_stats *st, struct strbuf *sb);

/* Host pids of every process in the container's cgroup (owned array). */
int runtime_pids(const struct runtime_ctx *ctx, const char *id, pid_t **ret, size_t *ret_n,
		 struct berth_error **err);

/* runtime-spec "features" document (JSON) appended to sb. */
void runtime_features_json(struct strbuf *sb);

/*
 * Make /proc/self/exe unwritable from containers (CVE-2019-5736, exe.c):
 * unless the running binary is already a sealed memfd or lives on a
 * read-only mount, re-exec with the same argv and environment into the slim
 * `berth-shim` sibling binary (or ourselves when there is none) through a
 * detached read-only bind mount of it, or, where mounts are not allowed or
 * BERTH_EXE_PROTECT=memfd, through a sealed memfd copy. Returns only on
 * failure (-errno) or when nothing had to be done (0). Call it before any
 * thread is started. argv must be one of berth-shim's vectors ("berth
 * runtime ...", "berth-runtime ...", "berth shim DIR").
 */
int runtime_protect_exe(char **argv, struct berth_error **err);

/* `berth-shim` next to the running binary (owned path), or NULL when there is none. */
char *runtime_slim_exe_path(void);

/*
 * An O_PATH fd (close-on-exec) of path on a detached, read-only bind mount:
 * a process executed from it (execveat AT_EMPTY_PATH, /proc/self/fd/N) has a
 * /proc/self/exe nobody can open for writing, so it needs no re-exec. -errno
 * where cloning mounts is not allowed.
 */
int runtime_exe_open_ro(const char *path, struct berth_error **err);

/* CLI entry point: `berth runtime ...` / `berth-runtime ...` (cli.c). */
int runtime_main(int argc, char **argv);

#endif
