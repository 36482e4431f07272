/*
 * seccomp.c - the default seccomp profile of containers, docker's in effect:
 * every syscall libseccomp knows for x86_64 is allowed except the ones
 * docker's default profile withholds (kernel modules, kexec, reboot, clock
 * setting, keyrings, bpf, perf, ptrace and process_vm_*, namespace creation
 * and mounting, handle-based opens, swap, NUMA policy, userfaultfd, ...).
 * Some come back with the capability that guards them (CAP_SYS_ADMIN,
 * CAP_SYS_PTRACE, ...), as in docker. clone is allowed only without
 * namespace flags unless CAP_SYS_ADMIN; clone3 fails with ENOSYS so libc
 * falls back to clone. Denied calls fail with EPERM.
 *
 * Trade-off: generated from libseccomp's syscall table (an allowlist by
 * construction) instead of a hand-kept list, so new kernels' syscalls are
 * allowed once libseccomp knows them unless listed here.
 */
#include <seccomp.h>

#include "engine/internal.h"

/* Withheld unless the container has the capability in .cap (NULL: always withheld). */
static const struct {
	const char *name, *cap;
} withheld[] = {
	{ "acct", "CAP_SYS_PACCT" },
	{ "add_key", NULL },
	{ "bpf", "CAP_SYS_ADMIN" },
	{ "clock_adjtime", "CAP_SYS_TIME" },
	{ "clock_settime", "CAP_SYS_TIME" },
	{ "create_module", "CAP_SYS_MODULE" },
	{ "delete_module", "CAP_SYS_MODULE" },
	{ "finit_module", "CAP_SYS_MODULE" },
	{ "fsconfig", "CAP_SYS_ADMIN" },
	{ "fsmount", "CAP_SYS_ADMIN" },
	{ "fsopen", "CAP_SYS_ADMIN" },
	{ "fspick", "CAP_SYS_ADMIN" },
	{ "get_kernel_syms", "CAP_SYS_MODULE" },
	{ "get_mempolicy", "CAP_SYS_NICE" },
	{ "init_module", "CAP_SYS_MODULE" },
	{ "ioperm", "CAP_SYS_RAWIO" },
	{ "iopl", "CAP_SYS_RAWIO" },
	{ "kcmp", "CAP_SYS_PTRACE" },
	{ "kexec_file_load", "CAP_SYS_BOOT" },
	{ "kexec_load", "CAP_SYS_BOOT" },
	{ "keyctl", NULL },
	{ "lookup_dcookie", "CAP_SYS_ADMIN" },
	{ "mbind", "CAP_SYS_NICE" },
	{ "mount", "CAP_SYS_ADMIN" },
	{ "mount_setattr", "CAP_SYS_ADMIN" },
	{ "move_mount", "CAP_SYS_ADMIN" },
	{ "move_pages", "CAP_SYS_NICE" },
	{ "name_to_handle_at", "CAP_SYS_ADMIN" },
	{ "nfsservctl", NULL },
	{ "open_by_handle_at", "CAP_DAC_READ_SEARCH" },
	{ "open_tree", "CAP_SYS_ADMIN" },
	{ "perf_event_open", "CAP_PERFMON" },
	{ "pivot_root", "CAP_SYS_ADMIN" },
	{ "process_vm_readv", "CAP_SYS_PTRACE" },
	{ "process_vm_writev", "CAP_SYS_PTRACE" },
	{ "ptrace", "CAP_SYS_PTRACE" },
	{ "query_module", "CAP_SYS_MODULE" },
	{ "quotactl", "CAP_SYS_ADMIN" },
	{ "reboot", "CAP_SYS_BOOT" },
	{ "request_key", NULL },
	{ "set_mempolicy", "CAP_SYS_NICE" },
	{ "setns", "CAP_SYS_ADMIN" },
	{ "settimeofday", "CAP_SYS_TIME" },
	{ "stime", "CAP_SYS_TIME" },
	{ "swapoff", "CAP_SYS_ADMIN" },
	{ "swapon", "CAP_SYS_ADMIN" },
	{ "syslog", "CAP_SYSLOG" },
	{ "_sysctl", NULL },
	{ "sysfs", NULL },
	{ "umount", "CAP_SYS_ADMIN" },
	{ "umount2", "CAP_SYS_ADMIN" },
	{ "unshare", "CAP_SYS_ADMIN" },
	{ "uselib", NULL },
	{ "userfaultfd", "CAP_SYS_PTRACE" },
	{ "ustat", NULL },
	{ "vm86", NULL },
	{ "vm86old", NULL },
	{ "clone", NULL },  /* re-added below with a flags filter */
	{ "clone3", NULL }, /* ENOSYS below */
};

/* CLONE_NEWNS|CLONE_NEWCGROUP|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWNET */
#define CLONE_NS_FLAGS 0x7E020000

/* Highest syscall number probed in libseccomp's table. */
#define SECCOMP_MAX_NR 1024

static bool has_cap(const json_t *caps, const char *cap)
{
	size_t i;
	json_t *el;
	json_array_foreach (caps, i, el)
		if (json_is_string(el) && streq(json_string_value(el), cap))
			return true;
	return false;
}

static bool is_withheld(const char *name, const json_t *caps)
{
	for (size_t i = 0; i < ARRAY_SIZE(withheld); i++)
		if (streq(withheld[i].name, name))
			return !withheld[i].cap || !has_cap(caps, withheld[i].cap);
	return false;
}

json_t *seccomp_default_profile(const json_t *caps)
{
	json_t *allow = json_array();
	for (int nr = 0; nr < SECCOMP_MAX_NR; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
		if (name && !is_withheld(name, caps))
			json_array_append_new(allow, json_string(name));
		free(name);
	}
	json_t *rules = json_pack("[{s:o,s:s}]", "names", allow, "action", "SCMP_ACT_ALLOW");
	if (has_cap(caps, "CAP_SYS_ADMIN"))
		json_array_append_new(rules,
				      json_pack("{s:[s],s:s}", "names", "clone", "action", "SCMP_ACT_ALLOW"));
	else
		json_array_append_new(rules, json_pack("{s:[s],s:s,s:[{s:i,s:I,s:I,s:s}]}", "names", "clone",
						       "action", "SCMP_ACT_ALLOW", "args", "index", 0,
						       "value", (json_int_t)CLONE_NS_FLAGS, "valueTwo",
						       (json_int_t)0, "op", "SCMP_CMP_MASKED_EQ"));
	json_array_append_new(rules, json_pack("{s:[s],s:s,s:i}", "names", "clone3", "action",
					       "SCMP_ACT_ERRNO", "errnoRet", ENOSYS));
	return json_pack("{s:s,s:i,s:[s,s,s],s:o}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet",
			 EPERM, "architectures", "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
			 "syscalls", rules);
}
