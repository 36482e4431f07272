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
 * Custom profiles (--security-opt seccomp=FILE; docker's CLI sends the
 * file's content) are docker's JSON format, translated here to the OCI
 * linux.seccomp object: archMap resolved for this machine, includes/excludes
 * (capabilities, arches, minKernel) applied, everything type-checked with
 * errors that name the JSON path.
 *
 * Trade-off: generated from libseccomp's syscall table (an allowlist by
 * construction) instead of a hand-kept list, so new kernels' syscalls are
 * allowed once libseccomp knows them unless listed here.
 */
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/utsname.h>

#include "common/fs.h"
#include "common/json.h"
#include "engine/internal.h"
#include "engine/options.h"

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

static bool strv_json_has(const json_t *a, const char *s)
{
	size_t i;
	json_t *el;
	json_array_foreach (a, i, el)
		if (streq(json_string_value(el), s))
			return true;
	return false;
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
			bool has = strv_json_has(caps, json_string_value(el));
			if ((inc && !has) || (!inc && has))
				*ret_keep = false;
		}
		if (json_array_size(farch) && strv_json_has(farch, go) != inc)
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

int seccomp_custom_profile(const json_t *hc, const json_t *caps, json_t **ret, struct berth_error **err)
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
