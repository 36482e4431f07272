/*
 * cgroups.h - cgroup managers behind one vtable: v1 (one directory per
 * controller hierarchy under /sys/fs/cgroup/<ctrl>), v2 (unified). A hybrid
 * host (v1 controllers + an empty cgroup2 at /sys/fs/cgroup/unified) uses v1
 * for every controller; the container is also placed in the unified
 * hierarchy's matching directory when it is writable (as systemd expects).
 *
 * A container's cgroup is named by a path relative to each hierarchy's root
 * ("/berth/web"), computed from cgroupsPath by runtime_cgroup_path_resolve().
 */
#ifndef BERTH_RUNTIME_CGROUPS_H
#define BERTH_RUNTIME_CGROUPS_H

#include <sys/types.h>

#include "runtime/runtime.h"

enum cgroup_kind {
	CGROUP_NONE = 0,
	CGROUP_V1 = 1, /* also hybrid */
	CGROUP_V2 = 2,
};

struct cgroup_ops {
	const char *name;
	/* mkdir the cgroup (and missing parents); fail with -EEXIST if exclusive and it exists. */
	int (*create)(const char *path, struct berth_error **err);
	int (*apply)(const char *path, const struct runtime_resources *r, struct berth_error **err);
	int (*add_pid)(const char *path, pid_t pid, struct berth_error **err);
	/* rmdir; ENOENT is success. */
	int (*destroy)(const char *path, struct berth_error **err);
	int (*freeze)(const char *path, bool frozen, struct berth_error **err);
	/* 1 frozen, 0 not, -errno. */
	int (*is_frozen)(const char *path);
	int (*pids)(const char *path, pid_t **ret, size_t *ret_n, struct berth_error **err);
	int (*stats)(const char *path, struct runtime_stats *st, struct berth_error **err);
};

/* Mount root of all hierarchies, "/sys/fs/cgroup" (tests may point elsewhere via BERTH_CGROUP_ROOT). */
const char *runtime_cgroup_root(void);
enum cgroup_kind runtime_cgroup_detect(void);
const struct cgroup_ops *runtime_cgroup_ops_for(enum cgroup_kind k);

/*
 * Turn cgroupsPath into a hierarchy-relative path. "/a/b" is used as is; "a/b"
 * is relative to the caller's own cgroup; "slice:prefix:name" (systemd
 * syntax) becomes "/<expanded slice>/<prefix>-<name>.scope". NULL: no cgroup
 * unless resources other than device rules are set, then "/berth/<id>".
 * *ret is NULL when no cgroup is to be used.
 */
int runtime_cgroup_path_resolve(const char *cgroups_path, const char *id, const struct runtime_resources *res,
				bool has_resources, bool systemd, char **ret, struct berth_error **err);

/* Shared helpers for managers. */
int runtime_cg_write(const char *dir, const char *file, const char *value, struct berth_error **err);
int runtime_cg_read(const char *dir, const char *file, struct strbuf *sb);
int runtime_cg_read_u64(const char *dir, const char *file, uint64_t *ret);
/* Value of the "key N" line of a flat keyed file (memory.stat, cpu.stat ...); 0 if absent or unreadable. */
uint64_t runtime_cg_read_key_u64(const char *dir, const char *file, const char *key);
int runtime_cg_read_pids(const char *dir, pid_t **ret, size_t *ret_n, struct berth_error **err);

/* runc's allowlist for the default devices, applied after the spec's rules (v1 and v2). */
const struct runtime_device_rule *runtime_cgroup_default_device_rules(size_t *n);

struct bpf_insn;
/*
 * v2 device controller: compile rules (then extra) to a BPF_PROG_TYPE_CGROUP_DEVICE
 * program (*ret owned, *ret_n instructions) and attach it to a cgroup directory.
 */
int runtime_cgroup_devices_program(const struct runtime_device_rule *rules, size_t n,
				   const struct runtime_device_rule *extra, size_t n_extra,
				   struct bpf_insn **ret, size_t *ret_n);
int runtime_cgroup_devices_attach(const char *dir, const struct bpf_insn *insn, size_t n,
				  struct berth_error **err);

/* The v1 controllers mounted on this host (names under runtime_cgroup_root()), NULL-terminated, static. */
const char *const *runtime_cgroup_v1_controllers(void);

#endif
