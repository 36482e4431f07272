/*
 * runtimes.h - the runtime options of every front end that runs containers
 * (`berth daemon`, `berth agent`), parsed one way into the registry the host's
 * engine resolves container runtimes in (runtime/registry.h):
 *
 *   --add-runtime NAME=PATH  a runc-compatible runtime (repeatable)
 *   --default-runtime NAME   the runtime of containers that name none
 *   --runtime-path PATH      legacy: --add-runtime runc=PATH ("berth": nothing)
 *
 * A front end puts HOST_RUNTIME_OPTIONS(&opts) in its option table
 * (common/opttab.h) and HOST_RUNTIME_USAGE in its --help, may add definitions
 * of its own (the daemon's config file: runtime_registry_add_json into
 * opts.runtimes), then calls host_runtime_opts_finish() before host_open()
 * and passes &opts.runtimes as host_config.runtimes.
 */
#ifndef BERTH_HOST_RUNTIMES_H
#define BERTH_HOST_RUNTIMES_H

#include "common/error.h"
#include "common/opttab.h"
#include "runtime/registry.h"

struct host_runtime_opts {
	const char *who;                  /* the front end in messages ("berth agent"); NULL: "berth" */
	struct runtime_registry runtimes; /* the definitions (owned) */
	char *default_runtime;            /* --default-runtime (owned); NULL: runc */
	char *runtime_path;               /* --runtime-path (owned); NULL: none */
};

/* The three options' table entries (CLI_OPT_CALL/CLI_OPT_STRDUP into *o). */
/* clang-format off */
#define HOST_RUNTIME_OPTIONS(o) \
	{ "add-runtime", 0, CLI_OPT_CALL, (o), .fn = host_runtime_opt_add, .has_arg = true }, \
	{ "default-runtime", 0, CLI_OPT_STRDUP, &(o)->default_runtime }, \
	{ "runtime-path", 0, CLI_OPT_STRDUP, &(o)->runtime_path }
/* clang-format on */

/* Their --help lines. */
#define HOST_RUNTIME_USAGE                                                                             \
	"      --add-runtime NAME=PATH  an OCI runtime with runc's CLI that containers may choose\n"   \
	"                           (docker run --runtime NAME), repeatable; always defined: berth\n"  \
	"                           (the in-process runtime library) and runc (berth until defined;\n" \
	"                           io.containerd.runc.v2 is another name for it)\n"                   \
	"      --default-runtime NAME  runtime of containers that name none (default runc)\n"          \
	"      --runtime-path PATH  same as --add-runtime runc=PATH (berth: nothing)\n"

/*
 * --add-runtime's CLI_OPT_CALL callback (dest: the struct host_runtime_opts):
 * runtime_registry_add_opt; a refused definition is printed as
 * "WHO: --add-runtime: MESSAGE" and fails.
 */
int host_runtime_opt_add(void *dest, const char *arg);

/*
 * Once every definition is in: --runtime-path defines runc (an error names
 * --runtime-path), --default-runtime becomes the default, which must exist.
 */
int host_runtime_opts_finish(struct host_runtime_opts *o, struct berth_error **err);

/* Free the members (o->who stays); o is empty afterwards. */
void host_runtime_opts_done(struct host_runtime_opts *o);

#endif
