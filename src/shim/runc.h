/*
 * runc.h - OCI runtime backend of the shim (an external runc-compatible CLI).
 * All strings borrowed. Errors carry the runtime's own message.
 */
#ifndef BERTH_SHIM_RUNC_H
#define BERTH_SHIM_RUNC_H

#include <sys/types.h>

#include "common/error.h"

/* Runtime name selecting the in-process berth runtime library instead of a binary. */
#define SHIM_BUILTIN_RUNTIME "berth"

struct runc {
	const char *runtime;    /* path of the runtime binary, or SHIM_BUILTIN_RUNTIME */
	const char *state_root; /* its --root */
	const char *dir;        /* bundle directory (config.json) and shim files */
	const char *id;
};

/* `create`: the init blocks before exec; *ret_pid is its host pid. console: --console-socket path or NULL. */
int runc_create(const struct runc *rc, const int stdio[3], const char *console, pid_t *ret_pid,
		struct berth_error **err);
int runc_start(const struct runc *rc, struct berth_error **err);
int runc_delete(const struct runc *rc, struct berth_error **err);
/* Spawn `exec` (foreground unless detach); *ret_pid is the runtime process, whose exit status is the
 * process's. */
int runc_exec(const struct runc *rc, const char *process_file, const int stdio[3], const char *console,
	      bool detach, pid_t *ret_pid, struct berth_error **err);

/* The same operations over the in-process runtime library (builtin.c). */
int builtin_create(const struct runc *rc, const int stdio[3], const char *console, pid_t *ret_pid,
		   struct berth_error **err);
int builtin_start(const struct runc *rc, struct berth_error **err);
int builtin_delete(const struct runc *rc, struct berth_error **err);
int builtin_exec(const struct runc *rc, const char *process_file, const int stdio[3], const char *console,
		 pid_t *ret_pid, struct berth_error **err);

static inline bool runc_is_builtin(const struct runc *rc)
{
	return rc->runtime && streq(rc->runtime, SHIM_BUILTIN_RUNTIME);
}

#endif
