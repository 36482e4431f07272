/*
 * spec.h - the parsed OCI runtime configuration (config.json, runtime-spec 1.1,
 * Linux), part of the runtime's public API (included by runtime/runtime.h).
 *
 * A spec is parsed and validated completely before any container state is
 * created, so that a bad config.json fails early with a message naming the JSON
 * path ("'linux.namespaces[2].type': unknown namespace 'foo'") and leaves
 * nothing behind.
 *
 * Ownership: a struct runtime_spec holds a reference to the jansson document it
 * was parsed from (`doc`). Every `const char *` in it, and every string in its
 * `const char **` vectors, is borrowed from that document and lives as long as
 * the spec. Arrays (the vectors and the struct arrays) are owned by the spec.
 * runtime_spec_free() releases everything.
 */
#ifndef BERTH_RUNTIME_SPEC_H
#define BERTH_RUNTIME_SPEC_H

#include <jansson.h>
#include <sys/types.h>

#include "common/error.h"

/* Limits on hostile input: entries per array in config.json. */
#define RUNTIME_SPEC_MAX_ITEMS 4096

struct runtime_id_map {
	uint32_t container_id, host_id, size;
};

struct runtime_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

/* Capability sets as bitmasks of CAP_* numbers. */
struct runtime_caps {
	uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct runtime_process {
	bool terminal;
	unsigned console_height, console_width; /* 0 when absent */
	uint32_t uid, gid;
	bool has_umask;
	mode_t umask;
	uint32_t *additional_gids;
	size_t n_additional_gids;
	const char **args; /* NULL-terminated, at least one element */
	const char **env;  /* NULL-terminated, may be empty */
	const char *cwd;   /* absolute; "/" when absent */
	bool has_caps;     /* false: the process keeps the runtime's capabilities */
	struct runtime_caps caps;
	struct runtime_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	bool has_oom_score_adj;
	int oom_score_adj;
	const char *apparmor_profile; /* NULL when absent */
	const char *selinux_label;
	bool has_io_priority;
	int io_priority_class, io_priority; /* IOPRIO_CLASS_* (1..3), 0..7 */
	bool has_scheduler;
	int sched_policy, sched_nice, sched_priority;
};

enum runtime_ns_type {
	RUNTIME_NS_PID = 0,
	RUNTIME_NS_NET,
	RUNTIME_NS_MNT,
	RUNTIME_NS_IPC,
	RUNTIME_NS_UTS,
	RUNTIME_NS_USER,
	RUNTIME_NS_CGROUP,
	RUNTIME_NS_TIME,
	RUNTIME_NS_MAX,
};

/* CLONE_NEW* flag and config.json name ("pid", "network", "mount", ...) of a type. */
int runtime_ns_clone_flag(enum runtime_ns_type t);
const char *runtime_ns_name(enum runtime_ns_type t);
/* "/proc/<pid>/ns/<file>" name: "pid", "net", "mnt", ... */
const char *runtime_ns_proc_name(enum runtime_ns_type t);

struct runtime_namespace {
	bool enabled;     /* listed in linux.namespaces */
	const char *path; /* join this namespace; NULL: create a new one */
};

struct runtime_mount {
	const char *destination;   /* absolute, cleaned (owned copy, see `owned`) */
	const char *type;          /* NULL for bind mounts */
	const char *source;        /* may be NULL (tmpfs, proc) */
	unsigned long flags;       /* MS_* set by options */
	unsigned long clear;       /* MS_* cleared by options ("rw", "dev", ...), for remounts */
	unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE (| MS_REC) or 0 */
	bool bind, rbind;
	char *data; /* fs-specific options joined by ',', owned, may be NULL */
};

struct runtime_device {
	const char *path;
	char type; /* 'c', 'b', 'u' (same as 'c'), 'p' */
	int64_t major, minor;
	bool has_mode;
	mode_t mode;
	bool has_uid, has_gid;
	uint32_t uid, gid;
};

struct runtime_device_rule {
	bool allow;
	char type;            /* 'a', 'c', 'b' */
	int64_t major, minor; /* -1: wildcard */
	char access[4];       /* subset of "rwm" */
};

struct runtime_blkio_dev {
	int64_t major, minor;
	uint64_t value;       /* rate (throttle) or weight */
	uint64_t leaf_weight; /* weight devices only, 0 when absent */
};

struct runtime_net_prio {
	const char *name; /* interface */
	uint32_t priority;
};

struct runtime_hugepage {
	const char *page_size; /* "2MB", "1GB" */
	uint64_t limit;
};

/* Which members of struct runtime_resources are set. */
enum runtime_res_flags {
	RES_MEM_LIMIT = 1u << 0,
	RES_MEM_RESERVATION = 1u << 1,
	RES_MEM_SWAP = 1u << 2,
	RES_MEM_SWAPPINESS = 1u << 3,
	RES_MEM_DISABLE_OOM = 1u << 4,
	RES_CPU_SHARES = 1u << 5,
	RES_CPU_QUOTA = 1u << 6,
	RES_CPU_PERIOD = 1u << 7,
	RES_CPU_CPUS = 1u << 8,
	RES_CPU_MEMS = 1u << 9,
	RES_PIDS_LIMIT = 1u << 10,
	RES_BLKIO_WEIGHT = 1u << 11,
	RES_CPU_RT_RUNTIME = 1u << 12,
	RES_CPU_RT_PERIOD = 1u << 13,
	RES_MEM_KERNEL = 1u << 14,
	RES_MEM_KERNEL_TCP = 1u << 15,
	RES_CPU_IDLE = 1u << 16,
};

struct runtime_resources {
	uint32_t set;                                                             /* enum runtime_res_flags */
	int64_t mem_limit, mem_reservation, mem_swap, mem_kernel, mem_kernel_tcp; /* -1: unlimited */
	uint64_t mem_swappiness;
	bool disable_oom_killer;
	uint64_t cpu_shares, cpu_period, cpu_rt_period;
	int64_t cpu_quota, cpu_rt_runtime, cpu_idle;
	const char *cpus, *mems;
	int64_t pids_limit; /* <= 0: unlimited */
	uint16_t blkio_weight;
	struct runtime_blkio_dev *blkio_weight_devices, *throttle_read_bps, *throttle_write_bps,
	    *throttle_read_iops, *throttle_write_iops;
	size_t n_blkio_weight_devices, n_throttle_read_bps, n_throttle_write_bps, n_throttle_read_iops,
	    n_throttle_write_iops;
	struct runtime_hugepage *hugepages;
	size_t n_hugepages;
	struct runtime_device_rule *devices;
	size_t n_devices;
	const char **unified; /* NULL-terminated "file", "value" pairs (cgroup v2 only), may be NULL */
	bool has_net_classid; /* linux.resources.network (cgroup v1 net_cls / net_prio only) */
	uint32_t net_classid;
	struct runtime_net_prio *net_prios;
	size_t n_net_prios;
};

struct runtime_seccomp_arg {
	unsigned index;
	uint64_t value, value_two;
	int op; /* enum scmp_compare */
};

struct runtime_seccomp_rule {
	const char **names; /* NULL-terminated */
	uint32_t action;    /* SCMP_ACT_* (errno filled in) */
	struct runtime_seccomp_arg *args;
	size_t n_args;
};

struct runtime_seccomp {
	uint32_t default_action; /* SCMP_ACT_* */
	uint32_t *archs;         /* SCMP_ARCH_* */
	size_t n_archs;
	unsigned flags; /* SECCOMP_FILTER_FLAG_* */
	struct runtime_seccomp_rule *rules;
	size_t n_rules;
};

struct runtime_hook {
	const char *path;
	const char **args; /* NULL-terminated; NULL when absent (then argv = { path }) */
	const char **env;  /* NULL-terminated; NULL when absent */
	int timeout;       /* seconds, 0: none */
};

enum runtime_hook_kind {
	RUNTIME_HOOK_PRESTART = 0,
	RUNTIME_HOOK_CREATE_RUNTIME,
	RUNTIME_HOOK_CREATE_CONTAINER,
	RUNTIME_HOOK_START_CONTAINER,
	RUNTIME_HOOK_POSTSTART,
	RUNTIME_HOOK_POSTSTOP,
	RUNTIME_HOOK_MAX,
};

/* The spec's name of a kind of hook ("prestart", "createRuntime", ...): its key under "hooks". */
const char *runtime_hook_kind_name(enum runtime_hook_kind k);

struct runtime_hooks {
	struct runtime_hook *list;
	size_t n;
};

struct runtime_spec {
	json_t *doc; /* owned reference: the document everything borrows from */
	const char *oci_version;
	char *bundle;    /* absolute bundle path (owned), NULL when parsed from memory */
	char *root_path; /* absolute rootfs path (owned): bundle-relative paths resolved */
	bool root_readonly;
	const char *hostname, *domainname; /* NULL when absent */
	json_t *annotations;               /* borrowed object, may be NULL */
	struct runtime_process process;
	bool has_process;
	struct runtime_mount *mounts;
	size_t n_mounts;
	struct runtime_hooks hooks[RUNTIME_HOOK_MAX];
	/* linux */
	struct runtime_namespace ns[RUNTIME_NS_MAX];
	struct runtime_id_map *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct runtime_device *devices;
	size_t n_devices;
	const char *cgroups_path; /* NULL when absent */
	bool has_resources;
	struct runtime_resources resources;
	const char **sysctl;                         /* NULL-terminated key, value pairs */
	struct runtime_seccomp *seccomp;             /* NULL when absent (owned) */
	unsigned long rootfs_propagation;            /* MS_* or 0 (default: MS_SLAVE|MS_REC) */
	const char **masked_paths, **readonly_paths; /* NULL-terminated, may be empty */
	const char *mount_label;
	bool has_personality;
	unsigned long personality; /* PER_LINUX or PER_LINUX32 | flags */
	bool has_time_offsets;
	int64_t time_offset_monotonic[2], time_offset_boottime[2]; /* secs, nanosecs */
};

/*
 * Parse and validate a config document. `doc` is borrowed (a reference is
 * taken). `bundle` (may be NULL) is the directory relative paths (root.path)
 * are resolved against; NULL means the current directory. On failure *ret is
 * untouched and err names the offending JSON path.
 */
int runtime_spec_parse(json_t *doc, const char *bundle, struct runtime_spec **ret, struct berth_error **err);
/* Read <bundle>/config.json (size-limited) and parse it. */
int runtime_spec_load(const char *bundle, struct runtime_spec **ret, struct berth_error **err);
/* Parse the linux.resources object (also the input of `update`); path is for messages. */
int runtime_resources_parse(const json_t *obj, const char *path, struct runtime_resources *ret,
			    struct berth_error **err);
void runtime_resources_done(struct runtime_resources *r);
/*
 * Parse a process object (config.json "process", or an `exec --process` file).
 * Strings borrow from obj, which must outlive *ret. Free with runtime_process_done().
 */
int runtime_process_parse(const json_t *obj, const char *path, struct runtime_process *ret,
			  struct berth_error **err);
void runtime_process_done(struct runtime_process *p);

/* Accepts NULL; returns NULL. */
struct runtime_spec *runtime_spec_free(struct runtime_spec *s);
static inline void runtime_spec_freep(struct runtime_spec **s)
{
	*s = runtime_spec_free(*s);
}
#define _cleanup_spec_ _cleanup_(runtime_spec_freep)

/* Signal by name ("SIGTERM", "TERM", "term") or number ("15"). 0 or -EINVAL. */
int runtime_parse_signal(const char *s, int *ret);
/* Capability by name ("CAP_SYS_ADMIN"), -EINVAL when unknown. */
/* Capabilities by number as the runtime spec names them ("CAP_CHOWN" is 0), up to RUNTIME_CAP_LAST; NULL
 * beyond. */
#define RUNTIME_CAP_LAST 40
const char *runtime_cap_name(int cap);
int runtime_parse_cap(const char *s, int *ret);

/* The default config.json of `spec` (same shape as `runc spec`). Caller frees. */
char *runtime_spec_default_json(bool rootless);

#endif
