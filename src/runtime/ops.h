/*
 * ops.h - one interface to "the OCI runtime", whichever it is. The shim
 * (create/start/exec/delete of its container) and the engine (pause, resume,
 * ps, update, kill, delete, state of any container) call through it and never
 * ask which runtime runs underneath.
 *
 * Two implementations:
 *   runtime_ops_builtin  berth's own runtime library (runtime.h), called
 *                        in-process: no process is executed for an operation;
 *   runtime_ops_cli      an external runtime with runc's command line (runc,
 *                        crun, `berth runtime`): one execution of the binary
 *                        per operation, with --root and, when log_path is
 *                        set, --log FILE --log-format json.
 * runtime_oci_init() picks one from the runtime a container runs on: "berth"
 * (RUNTIME_OCI_BUILTIN) or the path of a binary (see registry.h for the
 * daemon's named runtimes, which the engine resolves per container).
 *
 * Errors read the same from both: "OCI runtime <op> failed: <why>", where why
 * is the library's message, or the external runtime's last "error" line in
 * its JSON log, else its stderr.
 *
 * Threads: everything but create and exec may be called from any thread of
 * a multi-threaded process (the engine). create and exec clone the
 * container's processes: the builtin one needs a single-threaded caller that
 * is a child subreaper and reaps what they return (the shim; see runtime.h).
 */
#ifndef BERTH_RUNTIME_OPS_H
#define BERTH_RUNTIME_OPS_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/runtime.h"

/* Runtime name selecting the in-process library instead of a binary. */
#define RUNTIME_OCI_BUILTIN "berth"

struct runtime_ops;

/* One configured runtime. Plain data, strings borrowed; fill with runtime_oci_init(). */
struct runtime_oci {
	const struct runtime_ops *ops;
	const char *path;       /* the external binary (runtime_ops_cli) */
	char *const *args;      /* runtime_ops_cli: global options first on every command line (dockerd's
				 * runtimeArgs; NULL-terminated), or NULL */
	const char *state_root; /* its --root / the library's state root */
	const char *log_path;   /* runtime_ops_cli: its --log file (JSON), read back for errors; NULL: none */
	int timeout_ms;         /* runtime_ops_cli: longest run of a short operation (not create/exec) */
};

/* The stdio of a container process: fds that become its 0, 1, 2 (borrowed), or a console socket. */
struct runtime_io {
	int stdio[3];
	const char *console; /* --console-socket path (process.terminal) or NULL */
};

struct runtime_ops {
	const char *name; /* "builtin", "cli" */
	/* Create container id from bundle (config.json + rootfs); its init blocks before exec. *ret_pid: the
	 * init's host pid (a child of the caller, or reparented to it: the caller reaps it). */
	int (*create)(const struct runtime_oci *rt, const char *id, const char *bundle,
		      const struct runtime_io *io, pid_t *ret_pid, struct berth_error **err);
	int (*start)(const struct runtime_oci *rt, const char *id, struct berth_error **err);
	/* Run the OCI process in process_file in container id. *ret_pid: a process the caller reaps whose
	 * exit status is the exec'd process's (the process itself, or a runtime that waits for it). */
	int (*exec)(const struct runtime_oci *rt, const char *id, const char *process_file,
		    const struct runtime_io *io, pid_t *ret_pid, struct berth_error **err);
	/* sig to the init, or (all) to every process of the container. */
	int (*kill)(const struct runtime_oci *rt, const char *id, int sig, bool all,
		    struct berth_error **err);
	/* force: a running or paused container is killed first. */
	int (*delete)(const struct runtime_oci *rt, const char *id, bool force, struct berth_error **err);
	int (*pause)(const struct runtime_oci *rt, const char *id, struct berth_error **err);
	int (*resume)(const struct runtime_oci *rt, const char *id, struct berth_error **err);
	/* Host pids of the container's processes (*ret owned by the caller). */
	int (*ps)(const struct runtime_oci *rt, const char *id, pid_t **ret, size_t *ret_n,
		  struct berth_error **err);
	/* New limits for a live container: resources is an OCI linux.resources object. */
	int (*update)(const struct runtime_oci *rt, const char *id, const json_t *resources,
		      struct berth_error **err);
	/* The OCI state (id, status, pid, bundle, annotations; *ret filled, runtime_state_done() it). */
	int (*state)(const struct runtime_oci *rt, const char *id, struct runtime_state *ret,
		     struct berth_error **err);
};

extern const struct runtime_ops runtime_ops_builtin;
extern const struct runtime_ops runtime_ops_cli;

/*
 * rt for runtime (RUNTIME_OCI_BUILTIN or NULL: the library; else the path of
 * a runc-compatible binary) with state root state_root. log_path: see struct
 * runtime_oci. timeout_ms 0: 60 s. rt->args is NULL (set it after).
 */
void runtime_oci_init(struct runtime_oci *rt, const char *runtime, const char *state_root,
		      const char *log_path, int timeout_ms);

/* Does the runtime name (shim.json's "runtime", the daemon's --runtime-path) select the library? */
static inline bool runtime_oci_is_builtin(const char *runtime)
{
	return !runtime || streq(runtime, RUNTIME_OCI_BUILTIN);
}

#endif
