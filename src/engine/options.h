/*
 * options.h - pure parsers for container run options the engine accepts in
 * Docker's HostConfig: `-v` specs (Binds), `--mount` objects (Mounts),
 * ulimits and seccomp profiles. No engine, no I/O (except where noted), so
 * they are unit-tested and fuzzed on their own.
 *
 * Mount points are JSON objects with Docker's inspect keys (Type, Name,
 * Source, Destination, Driver, Mode, RW, Propagation) plus private
 * lowercase keys the engine uses and engine_mounts_public() strips: "copy" (copy
 * image content into the volume when empty), "anonymous", "nonrecursive",
 * "tmpfs" (mount options), "labels" and "options" (for a new volume).
 */
#ifndef BERTH_ENGINE_OPTIONS_H
#define BERTH_ENGINE_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

/*
 * Parse one `-v` spec: "DST" (anonymous volume), "SRC:DST" or
 * "SRC:DST:MODE" where SRC is an absolute host path (bind) or a volume name
 * and MODE a comma list of ro|rw, z|Z, nocopy (volumes only) and one of
 * private|rprivate|shared|rshared|slave|rslave (binds only). *ret: a new
 * mount point (Source of a volume is empty until the volume is resolved).
 */
int engine_bind_parse(const char *spec, json_t **ret, struct berth_error **err);

/*
 * Validate one HostConfig.Mounts entry (Type bind|volume|tmpfs, Source,
 * Target, ReadOnly, BindOptions, VolumeOptions, TmpfsOptions) and turn it
 * into a mount point. path names the entry in errors ("HostConfig.Mounts[0]").
 * Bind sources must exist (checked with stat, as docker does).
 */
int engine_mount_parse(const json_t *m, const char *path, json_t **ret, struct berth_error **err);

/* Docker's inspect view of mount points: private keys dropped. NULL -> []. */
json_t *engine_mounts_public(const json_t *mounts);

/*
 * Validate HostConfig.Ulimits ([{Name, Soft, Hard}]): known names, soft <=
 * hard, and hard limits the daemon may set (raising a hard limit above the
 * daemon's own needs CAP_SYS_RESOURCE). *ret_rlimits: OCI process.rlimits
 * (may be NULL to only validate). -1 means unlimited.
 */
int engine_ulimits_check(const json_t *ulimits, const char *path, json_t **ret_rlimits,
			 struct berth_error **err);
/* "nofile=1024[:2048]" -> {Name, Soft, Hard}; docker's --ulimit syntax ("unlimited" or -1). */
int engine_ulimit_parse(const char *s, json_t **ret, struct berth_error **err);

/*
 * Translate a Docker seccomp profile (JSON text: defaultAction,
 * defaultErrnoRet, architectures or archMap, syscalls with name/names,
 * action, errnoRet, args, includes/excludes of caps/arches/minKernel) into
 * the OCI linux.seccomp object for a container with these capabilities
 * (JSON array of "CAP_*" names) on this machine's architecture.
 */
int engine_seccomp_profile_to_oci(const char *text, size_t len, const json_t *caps, json_t **ret,
				  struct berth_error **err);

#endif
