/*
 * seccomp.c - the default seccomp profile of containers and docker's
 * profile format.
 *
 * The default is an allowlist equivalent to moby's current
 * profiles/seccomp/default.json, kept here as our own table in docker's rule
 * model (names, action, argument filters, includes/excludes on capabilities,
 * architectures and minimum kernel), built into docker's JSON shape and
 * translated by the same code as custom profiles, so the conditional rules
 * are evaluated once, in one place. Anything not in the table fails with
 * EPERM (defaultErrnoRet 1); syscalls newer than every one the table names
 * fail with ENOSYS, so that libc falls back (the runtime adds that stub to
 * the compiled filter, as runc does). Notable rules: ptrace and
 * process_vm_* on kernels >= 4.8 (strace and gdb work), clock_adjtime
 * allowed, personality only with the few safe personas, clone without
 * namespace flags unless CAP_SYS_ADMIN, clone3 ENOSYS unless CAP_SYS_ADMIN
 * (libc falls back to clone, whose flags can be filtered), socket(AF_VSOCK)
 * refused, the capability-guarded groups (CAP_SYS_ADMIN, CAP_SYS_PTRACE,
 * CAP_SYS_NICE, CAP_SYS_TIME, ...).
 *
 * Custom profiles (--security-opt seccomp=FILE; docker's CLI sends the
 * file's content) are docker's JSON format, translated here to the OCI
 * linux.seccomp object: archMap resolved for this machine, includes/excludes
 * (capabilities, arches, minKernel) applied, everything type-checked with
 * errors that name the JSON path.
 */
#include <assert.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/utsname.h>

#include "common/fs.h"
#include "common/json.h"
#include "engine/internal.h"
#include "engine/options.h"

#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* One argument condition, docker's {index, value, valueTwo, op}. */
struct sc_arg {
	unsigned index;
	uint64_t value, value_two;
	const char *op;
};

/* One rule of the default profile; NULL/0 members are absent. Lists are comma-separated. */
struct sc_rule {
	const char *const *names;
	const char *action; /* NULL: SCMP_ACT_ALLOW */
	int errno_ret;
	struct sc_arg arg;                      /* used when arg.op is set */
	const char *caps, *arches, *min_kernel; /* includes */
	const char *no_caps, *no_arches;        /* excludes */
};

/* CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET */
#define CLONE_NS_FLAGS 0x7E020000ULL
#define AF_VSOCK_NR    40
#define PERSONA(v)                                                                 \
	{                                                                          \
		.names = NAMES("personality"), .arg = { 0, (v), 0, "SCMP_CMP_EQ" } \
	}

static const struct sc_rule default_rules[] = {
	{ .names = NAMES(
	      "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
	      "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
	      "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
	      "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
	      "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	      "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
	      "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	      "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl",
	      "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
	      "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
	      "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents",
	      "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
	      "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	      "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
	      "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
	      "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
	      "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
	      "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
	      "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill", "landlock_add_rule",
	      "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link",
	      "linkat", "listen", "listxattr", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr",
	      "lstat", "lstat64", "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
	      "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
	      "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
	      "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv",
	      "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
	      "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
	      "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
	      "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
	      "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
	      "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
	      "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
	      "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
	      "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	      "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
	      "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
	      "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
	      "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
	      "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
	      "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
	      "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
	      "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
	      "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
	      "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
	      "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
	      "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
	      "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
	      "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
	      "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
	      "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
	      "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
	      "wait4", "waitid", "waitpid", "write", "writev") },
	{ .names = NAMES("process_vm_readv", "process_vm_writev", "ptrace"), .min_kernel = "4.8" },
	{ .names = NAMES("socket"), .arg = { 0, AF_VSOCK_NR, 0, "SCMP_CMP_NE" } },
	PERSONA(0x0),
	PERSONA(0x0008),
	PERSONA(0x20000),
	PERSONA(0x20008),
	PERSONA(0xffffffff),
	{ .names = NAMES("sync_file_range2", "swapcontext"), .arches = "ppc64le" },
	{ .names = NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
			 "cacheflush", "set_tls"),
	  .arches = "arm,arm64" },
	{ .names = NAMES("arch_prctl"), .arches = "amd64,x32" },
	{ .names = NAMES("modify_ldt"), .arches = "amd64,x32,x86" },
	{ .names = NAMES("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"),
	  .arches = "s390,s390x" },
	{ .names = NAMES("riscv_flush_icache"), .arches = "riscv64" },
	{ .names = NAMES("open_by_handle_at"), .caps = "CAP_DAC_READ_SEARCH" },
	{ .names = NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
			 "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
			 "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
			 "setns", "syslog", "umount", "umount2", "unshare"),
	  .caps = "CAP_SYS_ADMIN" },
	{ .names = NAMES("clone"),
	  .arg = { 0, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ" },
	  .no_caps = "CAP_SYS_ADMIN",
	  .no_arches = "s390,s390x" },
	{ .names = NAMES("clone"), /* s390 orders clone's parameters differently */
	  .arg = { 1, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ" },
	  .arches = "s390,s390x",
	  .no_caps = "CAP_SYS_ADMIN" },
	{ .names = NAMES("clone3"),
	  .action = "SCMP_ACT_ERRNO",
	  .errno_ret = ENOSYS,
	  .no_caps = "CAP_SYS_ADMIN" },
	{ .names = NAMES("reboot"), .caps = "CAP_SYS_BOOT" },
	{ .names = NAMES("chroot"), .caps = "CAP_SYS_CHROOT" },
	{ .names = NAMES("delete_module", "init_module", "finit_module"), .caps = "CAP_SYS_MODULE" },
	{ .names = NAMES("acct"), .caps = "CAP_SYS_PACCT" },
	{ .names = NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
			 "ptrace"),
	  .caps = "CAP_SYS_PTRACE" },
	{ .names = NAMES("iopl", "ioperm"), .caps = "CAP_SYS_RAWIO" },
	{ .names = NAMES("settimeofday", "stime", "clock_settime", "clock_settime64"),
	  .caps = "CAP_SYS_TIME" },
	{ .names = NAMES("vhangup"), .caps = "CAP_SYS_TTY_CONFIG" },
	{ .names = NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
	  .caps = "CAP_SYS_NICE" },
	{ .names = NAMES("syslog"), .caps = "CAP_SYSLOG" },
	{ .names = NAMES("bpf"), .caps = "CAP_BPF" },
	{ .names = NAMES("perf_event_open"), .caps = "CAP_PERFMON" },
};

static json_t *csv_json(const char *csv)
{
	json_t *a = json_array();
	for (const char *p = csv; p && *p;) {
		size_t n = strcspn(p, ",");
		json_array_append_new(a, json_stringn(p, n));
		p += n + (p[n] == ',');
	}
	return a;
}

static json_t *filter_json(const char *caps, const char *arches, const char *min_kernel)
{
	json_t *f = json_object();
	if (caps)
		json_object_set_new(f, "caps", csv_json(caps));
	if (arches)
		json_object_set_new(f, "arches", csv_json(arches));
	if (min_kernel)
		json_object_set_new(f, "minKernel", json_string(min_kernel));
	return f;
}

static json_t *rule_json(const struct sc_rule *r)
{
	json_t *names = json_array();
	for (size_t k = 0; r->names[k]; k++)
		json_array_append_new(names, json_string(r->names[k]));
	json_t *o =
	    json_pack("{s:o,s:s}", "names", names, "action", r->action ? r->action : "SCMP_ACT_ALLOW");
	if (r->errno_ret)
		json_object_set_new(o, "errnoRet", json_integer(r->errno_ret));
	if (r->arg.op)
		json_object_set_new(o, "args",
				    json_pack("[{s:I,s:I,s:I,s:s}]", "index", (json_int_t)r->arg.index,
					      "value", (json_int_t)r->arg.value, "valueTwo",
					      (json_int_t)r->arg.value_two, "op", r->arg.op));
	if (r->caps || r->arches || r->min_kernel)
		json_object_set_new(o, "includes", filter_json(r->caps, r->arches, r->min_kernel));
	if (r->no_caps || r->no_arches)
		json_object_set_new(o, "excludes", filter_json(r->no_caps, r->no_arches, NULL));
	return o;
}

/* The default profile in docker's format (what `docker info` would call builtin). */
static json_t *default_profile_docker(void)
{
	json_t *rules = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(default_rules); i++)
		json_array_append_new(rules, rule_json(&default_rules[i]));
	return json_pack("{s:s,s:i,s:[{s:s,s:[s,s]},{s:s,s:[s]}],s:o}", "defaultAction", "SCMP_ACT_ERRNO",
			 "defaultErrnoRet", EPERM, "archMap", "architecture", "SCMP_ARCH_X86_64",
			 "subArchitectures", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "architecture",
			 "SCMP_ARCH_AARCH64", "subArchitectures", "SCMP_ARCH_ARM", "syscalls", rules);
}

static int profile_to_oci(const json_t *prof, const json_t *caps, json_t **ret, struct berth_error **err);

json_t *engine_seccomp_default_profile(const json_t *caps)
{
	_cleanup_json_ json_t *prof = default_profile_docker();
	json_t *oci = NULL;
	int r = profile_to_oci(prof, caps, &oci, NULL);
	assert(r >= 0); /* our own table: a failure is our bug */
	(void)r;
	return oci;
}

/* ---- custom profiles (docker's seccomp JSON) ---- */

static const char *const seccomp_actions[] = {
	"SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
	"SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
	"SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY",
};
static const char *const seccomp_ops[] = {
	"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
	"SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

/* Bounds on a profile (it comes from users). */
#define SECCOMP_MAX_RULES 4096
#define SECCOMP_MAX_NAMES 4096

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s && i < n; i++)
		if (streq(s, list[i]))
			return true;
	return false;
}

/* This machine's architecture: libseccomp's name and Go's (used by includes.arches). */
static const char *native_arch(const char **ret_go)
{
	switch (seccomp_arch_native()) {
	case SCMP_ARCH_AARCH64: *ret_go = "arm64"; return "SCMP_ARCH_AARCH64";
	case SCMP_ARCH_X86: *ret_go = "386"; return "SCMP_ARCH_X86";
	default: *ret_go = "amd64"; return "SCMP_ARCH_X86_64";
	}
}

static int check_action(const json_t *o, const char *path, const char *key, bool required, const char **ret,
			struct berth_error **err)
{
	const char *a = NULL;
	int r = json_get_string(o, path, key, required ? JSON_REQUIRED : 0, &a, err);
	if (r < 0)
		return r;
	if (a && !in_list(a, seccomp_actions, ARRAY_SIZE(seccomp_actions)))
		return berth_error_msg(err, EINVAL, "'%s.%s': unknown seccomp action '%.64s'", path, key, a);
	*ret = a;
	return 0;
}

static int strv_check(const json_t *o, const char *path, const char *key, json_t **ret,
		      struct berth_error **err)
{
	json_t *a = NULL;
	int r = json_get_array(o, path, key, 0, &a, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *el;
	json_array_foreach (a, i, el)
		if (!json_is_string(el)) {
			_cleanup_free_ char *p = json_path_join(path, key);
			_cleanup_free_ char *pi = json_path_index(p, i);
			return json_type_error(NULL, pi, "string", el, err);
		}
	*ret = a;
	return 0;
}

/* "5.4.0-1" >= "4.8"? Compares major.minor numerically. */
static bool kernel_at_least(const char *min)
{
	struct utsname u;
	unsigned a = 0, b = 0, x = 0, y = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &a, &b) < 1 || sscanf(min, "%u.%u", &x, &y) < 1)
		return true;
	return a > x || (a == x && b >= y);
}

/* includes/excludes filter: *ret_keep false when the rule does not apply here. */
static int filter_rule(const json_t *rule, const char *path, const json_t *caps, bool *ret_keep,
		       struct berth_error **err)
{
	const char *go;
	native_arch(&go);
	*ret_keep = true;
	for (int inc = 1; inc >= 0; inc--) {
		const char *key = inc ? "includes" : "excludes";
		json_t *f = NULL, *fcaps = NULL, *farch = NULL;
		const char *minkernel = NULL;
		_cleanup_free_ char *p = json_path_join(path, key);
		int r;
		if ((r = json_get_object(rule, path, key, 0, &f, err)) < 0 ||
		    (r = strv_check(f, p, "caps", &fcaps, err)) < 0 ||
		    (r = strv_check(f, p, "arches", &farch, err)) < 0 ||
		    (r = json_get_string(f, p, "minKernel", 0, &minkernel, err)) < 0)
			return r;
		size_t i;
		json_t *el;
		json_array_foreach (fcaps, i, el) {
			bool has = json_strv_contains(caps, json_string_value(el));
			if ((inc && !has) || (!inc && has))
				*ret_keep = false;
		}
		if (json_array_size(farch) && json_strv_contains(farch, go) != inc)
			*ret_keep = false;
		if (minkernel && inc && !kernel_at_least(minkernel))
			*ret_keep = false;
	}
	return 0;
}

static int convert_args(const json_t *rule, const char *path, json_t *out, struct berth_error **err)
{
	json_t *args = NULL;
	int r = json_get_array(rule, path, "args", 0, &args, err);
	if (r < 0 || !args)
		return r;
	json_t *oargs = json_array();
	json_object_set_new(out, "args", oargs);
	size_t i;
	json_t *a;
	json_array_foreach (args, i, a) {
		_cleanup_free_ char *ap = json_path_join(path, "args");
		_cleanup_free_ char *p = json_path_index(ap, i);
		int64_t index = 0;
		uint64_t value = 0, two = 0;
		const char *op = NULL;
		if (!json_is_object(a))
			return json_type_error(NULL, p, "object", a, err);
		if ((r = json_get_int_range(a, p, "index", JSON_REQUIRED, 0, 5, &index, err)) < 0 ||
		    (r = json_get_uint64(a, p, "value", 0, &value, err)) < 0 ||
		    (r = json_get_uint64(a, p, "valueTwo", 0, &two, err)) < 0 ||
		    (r = json_get_string(a, p, "op", JSON_REQUIRED, &op, err)) < 0)
			return r;
		if (!in_list(op, seccomp_ops, ARRAY_SIZE(seccomp_ops)))
			return berth_error_msg(err, EINVAL, "'%s.op': unknown seccomp operator '%.64s'", p,
					       op);
		json_array_append_new(oargs,
				      json_pack("{s:I,s:I,s:I,s:s}", "index", (json_int_t)index, "value",
						(json_int_t)value, "valueTwo", (json_int_t)two, "op", op));
	}
	return 0;
}

static int convert_rule(const json_t *rule, const char *path, const json_t *caps, json_t *rules,
			struct berth_error **err)
{
	if (!json_is_object(rule))
		return json_type_error(NULL, path, "object", rule, err);
	const char *name = NULL, *action = NULL;
	json_t *names = NULL;
	int64_t errno_ret = -1;
	int r;
	if ((r = json_get_string(rule, path, "name", 0, &name, err)) < 0 ||
	    (r = strv_check(rule, path, "names", &names, err)) < 0 ||
	    (r = check_action(rule, path, "action", true, &action, err)) < 0 ||
	    (r = json_get_int_range(rule, path, "errnoRet", 0, 0, 4095, &errno_ret, err)) < 0)
		return r;
	if (name && *name && json_array_size(names))
		return berth_error_msg(err, EINVAL,
				       "'name' and 'names' were specified in the seccomp profile, use either "
				       "'name' or 'names'");
	if ((!name || !*name) && !json_array_size(names))
		return berth_error_msg(err, EINVAL, "'%s': a syscall rule needs 'name' or 'names'", path);
	if (json_array_size(names) > SECCOMP_MAX_NAMES)
		return berth_error_msg(err, E2BIG, "'%s.names': more than %d names", path, SECCOMP_MAX_NAMES);
	bool keep;
	if ((r = filter_rule(rule, path, caps, &keep, err)) < 0)
		return r;
	_cleanup_json_ json_t *out = json_pack(
	    "{s:o,s:s}", "names", names ? json_copy(names) : json_pack("[s]", name), "action", action);
	if (errno_ret >= 0 && json_object_get(rule, "errnoRet"))
		json_object_set_new(out, "errnoRet", json_integer(errno_ret));
	if ((r = convert_args(rule, path, out, err)) < 0)
		return r;
	if (keep)
		json_array_append(rules, out);
	return 0;
}

/* architectures, or the archMap entry of this machine (with its sub-architectures). */
static int convert_arches(const json_t *prof, json_t *out, struct berth_error **err)
{
	json_t *arches = NULL, *map = NULL;
	int r;
	if ((r = strv_check(prof, NULL, "architectures", &arches, err)) < 0 ||
	    (r = json_get_array(prof, NULL, "archMap", 0, &map, err)) < 0)
		return r;
	if (arches && map)
		return berth_error_msg(
		    err, EINVAL,
		    "'architectures' and 'archMap' were specified in the seccomp profile, use "
		    "either 'architectures' or 'archMap'");
	const char *go, *native = native_arch(&go);
	json_t *list = arches ? json_copy(arches) : json_array();
	json_object_set_new(out, "architectures", list);
	size_t i;
	json_t *m;
	json_array_foreach (map, i, m) {
		_cleanup_free_ char *p = json_path_index("archMap", i);
		const char *arch = NULL;
		json_t *subs = NULL;
		if (!json_is_object(m))
			return json_type_error(NULL, p, "object", m, err);
		if ((r = json_get_string(m, p, "architecture", JSON_REQUIRED, &arch, err)) < 0 ||
		    (r = strv_check(m, p, "subArchitectures", &subs, err)) < 0)
			return r;
		if (!streq(arch, native))
			continue;
		json_array_append_new(list, json_string(arch));
		json_array_extend(list, subs);
	}
	return 0;
}

int engine_seccomp_profile_to_oci(const char *text, size_t len, const json_t *caps, json_t **ret,
				  struct berth_error **err)
{
	_cleanup_json_ json_t *prof = NULL;
	int r = json_parse(text, len, "seccomp profile", &prof, err);
	if (r < 0)
		return r;
	return profile_to_oci(prof, caps, ret, err);
}

static int profile_to_oci(const json_t *prof, const json_t *caps, json_t **ret, struct berth_error **err)
{
	int r;
	if (!json_is_object(prof))
		return json_type_error(NULL, "profile", "object", prof, err);
	const char *def = NULL, *listener = NULL;
	int64_t def_errno = -1;
	json_t *syscalls = NULL, *flags = NULL;
	if ((r = check_action(prof, "profile", "defaultAction", true, &def, err)) < 0 ||
	    (r = json_get_int_range(prof, NULL, "defaultErrnoRet", 0, 0, 4095, &def_errno, err)) < 0 ||
	    (r = json_get_array(prof, NULL, "syscalls", 0, &syscalls, err)) < 0 ||
	    (r = strv_check(prof, NULL, "flags", &flags, err)) < 0 ||
	    (r = json_get_string(prof, NULL, "listenerPath", 0, &listener, err)) < 0)
		return r;
	if (json_array_size(syscalls) > SECCOMP_MAX_RULES)
		return berth_error_msg(err, E2BIG, "'syscalls': more than %d rules", SECCOMP_MAX_RULES);
	_cleanup_json_ json_t *out = json_pack("{s:s}", "defaultAction", def);
	if (def_errno >= 0 && json_object_get(prof, "defaultErrnoRet"))
		json_object_set_new(out, "defaultErrnoRet", json_integer(def_errno));
	if ((r = convert_arches(prof, out, err)) < 0)
		return r;
	if (flags)
		json_object_set(out, "flags", flags);
	if (listener)
		json_object_set_new(out, "listenerPath", json_string(listener));
	json_t *rules = json_array();
	json_object_set_new(out, "syscalls", rules);
	size_t i;
	json_t *rule;
	json_array_foreach (syscalls, i, rule) {
		_cleanup_free_ char *p = json_path_index("syscalls", i);
		if ((r = convert_rule(rule, p, caps, rules, err)) < 0)
			return r;
	}
	*ret = TAKE_PTR(out);
	return 0;
}

int engine_seccomp_custom_profile(const json_t *hc, const json_t *caps, json_t **ret,
				  struct berth_error **err)
{
	*ret = NULL;
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(hc, "SecurityOpt"), i, el) {
		const char *s = json_string_value(el);
		if (!s || (!startswith(s, "seccomp=") && !startswith(s, "seccomp:")) ||
		    streq(s + 8, "unconfined"))
			continue;
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		const char *v = s + 8;
		if (v[0] == '/') {
			int r = fs_read_file_at(AT_FDCWD, v, 1 << 20, &sb, err);
			if (r < 0)
				return r;
			v = sb.buf;
		}
		json_decref(*ret);
		*ret = NULL;
		int r = engine_seccomp_profile_to_oci(v, strlen(v), caps, ret, err);
		if (r < 0)
			return berth_error_wrap(err, r, "decoding seccomp profile failed");
	}
	return 0;
}
