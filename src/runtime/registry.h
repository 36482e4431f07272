/*
 * registry.h - a daemon's named OCI runtimes, as dockerd's: `--add-runtime
 * NAME=PATH` (repeatable), the config file's "runtimes" {NAME: {"path",
 * "runtimeArgs"}} and `--default-runtime NAME`. A container names one
 * (docker run --runtime NAME, HostConfig.Runtime); the engine resolves the
 * name to a struct runtime_def when it starts the container.
 *
 * Names:
 *   berth  the built-in runtime (the in-process library, ops.h's
 *          RUNTIME_OCI_BUILTIN); always defined, reserved ("runtime name
 *          'berth' is reserved"), as dockerd reserves "runc";
 *   runc   dockerd's stock name: the built-in runtime until a runc binary
 *          is defined under that name (--add-runtime runc=/usr/sbin/runc,
 *          the config file, or the legacy --runtime-path PATH). So `docker
 *          run --runtime runc` works against any berth daemon, and "runc" is
 *          the default runtime's name (DefaultRuntime, HostConfig.Runtime)
 *          unless --default-runtime names another;
 *   io.containerd.runc.v2
 *          dockerd's other name for its stock runtime (containerd's runc
 *          shim): whatever runc is, the built-in runtime or the defined
 *          binary, also as --default-runtime; a container keeps the name it
 *          chose (HostConfig.Runtime) and shares runc's state root. Not
 *          reserved: a definition under this name wins, as with dockerd 24+;
 *   other  lower case [a-z0-9_.-], at most RUNTIME_NAME_MAX bytes (a state
 *          directory is named after it); dockerd lower-cases a definition's
 *          name and trims spaces around NAME and PATH, so does this.
 *
 * A PATH of "berth" names the built-in runtime too (the legacy
 * --runtime-path berth). A path without '/' is looked up in $PATH when the
 * runtime runs, as dockerd does.
 *
 * Errors read as dockerd's: "invalid runtime argument: V", "runtime 'N' was
 * already defined", "runtime name 'berth' is reserved", "specified default
 * runtime 'N' does not exist". Nothing is added by a call that fails.
 */
#ifndef BERTH_RUNTIME_REGISTRY_H
#define BERTH_RUNTIME_REGISTRY_H

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

#define RUNTIME_REGISTRY_STOCK   "runc"                  /* dockerd's default runtime name */
#define RUNTIME_REGISTRY_RUNC_V2 "io.containerd.runc.v2" /* dockerd's alias of runc */
#define RUNTIME_REGISTRY_MAX     32 /* defined runtimes (besides berth and the runc alias) */
#define RUNTIME_NAME_MAX         64
#define RUNTIME_ARGS_MAX         32 /* runtimeArgs of one runtime */

struct runtime_def {
	char *name;
	char *path;  /* NULL: the built-in runtime */
	char **args; /* runtimeArgs: global options before the verb (NULL-terminated), or NULL */
};

/* Plain data; zero-initialised (or runtime_registry_init) is empty: berth and runc as berth. */
struct runtime_registry {
	struct runtime_def *defs;
	size_t n;
	char *default_name; /* NULL: RUNTIME_REGISTRY_STOCK */
};

void runtime_registry_init(struct runtime_registry *r);
void runtime_registry_done(struct runtime_registry *r);
/* dst: a deep copy of src (dst's old contents are not freed). */
void runtime_registry_copy(struct runtime_registry *dst, const struct runtime_registry *src);

/* Define name (trimmed, lower-cased) as path (trimmed) with args (may be NULL). */
int runtime_registry_add(struct runtime_registry *r, const char *name, const char *path, char *const *args,
			 struct berth_error **err);
/* `--add-runtime NAME=PATH`. */
int runtime_registry_add_opt(struct runtime_registry *r, const char *arg, struct berth_error **err);
/*
 * The config file's "runtimes": {"NAME": {"path": P, "runtimeArgs": [..]}}.
 * runtimeType/options (containerd shims) are refused. On error, none of them
 * is added.
 */
int runtime_registry_add_json(struct runtime_registry *r, const json_t *runtimes, struct berth_error **err);
/* `--default-runtime NAME` (checked by runtime_registry_check, once every definition is in). */
void runtime_registry_set_default(struct runtime_registry *r, const char *name);
/* The default runtime must exist. */
int runtime_registry_check(const struct runtime_registry *r, struct berth_error **err);

/* The default runtime's name. */
const char *runtime_registry_default(const struct runtime_registry *r);
/*
 * The runtime named name (berth, runc as berth while undefined,
 * io.containerd.runc.v2 as runc while undefined), or NULL. Valid until r
 * changes.
 */
const struct runtime_def *runtime_registry_find(const struct runtime_registry *r, const char *name);
/*
 * GET /info's "Runtimes": {"NAME": {"path": P[, "runtimeArgs": [..]]}}: berth
 * (path "berth"), runc (path "berth" while it names the built-in runtime),
 * then the definitions in the order they were made, then io.containerd.runc.v2
 * (runc's path and arguments) unless it is one of them.
 */
json_t *runtime_registry_info(const struct runtime_registry *r);

#endif
