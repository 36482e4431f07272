/*
 * spec-linux.c - the "linux" section of config.json: namespaces, id mappings,
 * devices, resources, sysctl, seccomp, paths, personality, time offsets.
 *
 * Seccomp names (actions, architectures, operators) are translated to
 * libseccomp values here, so the container side only loads numbers. Unknown
 * syscall names are kept (and skipped at load time, as runc does) because
 * profiles list syscalls of newer kernels.
 */
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mount.h>
#include <sys/personality.h>

#include "runtime/spec-internal.h"

int runtime_spec_parse_propagation(const char *s, unsigned long *ret);

static const struct {
	const char *name, *proc;
	int flag;
} ns_table[RUNTIME_NS_MAX] = {
	[RUNTIME_NS_PID] = { "pid", "pid", CLONE_NEWPID },
	[RUNTIME_NS_NET] = { "network", "net", CLONE_NEWNET },
	[RUNTIME_NS_MNT] = { "mount", "mnt", CLONE_NEWNS },
	[RUNTIME_NS_IPC] = { "ipc", "ipc", CLONE_NEWIPC },
	[RUNTIME_NS_UTS] = { "uts", "uts", CLONE_NEWUTS },
	[RUNTIME_NS_USER] = { "user", "user", CLONE_NEWUSER },
	[RUNTIME_NS_CGROUP] = { "cgroup", "cgroup", CLONE_NEWCGROUP },
	[RUNTIME_NS_TIME] = { "time", "time", 0x00000080 /* CLONE_NEWTIME */ },
};

int runtime_ns_clone_flag(enum runtime_ns_type t)
{
	return ns_table[t].flag;
}

const char *runtime_ns_name(enum runtime_ns_type t)
{
	return ns_table[t].name;
}

const char *runtime_ns_proc_name(enum runtime_ns_type t)
{
	return ns_table[t].proc;
}

static int parse_namespaces(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(lx, "linux", "namespaces", &a, &n, err);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index("linux.namespaces", i);
		json_t *e = json_array_get(a, i);
		const char *type, *path = NULL;
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((r = json_get_string(e, ep, "type", JSON_REQUIRED, &type, err)) < 0 ||
		    (r = json_get_string(e, ep, "path", 0, &path, err)) < 0)
			return r;
		int t = -1;
		for (int k = 0; k < RUNTIME_NS_MAX; k++)
			if (streq(type, ns_table[k].name))
				t = k;
		if (t < 0)
			return runtime_spec_error(err, ep, "type", "unknown namespace '%s'", type);
		if (s->ns[t].enabled)
			return runtime_spec_error(err, ep, "type", "duplicate namespace '%s'", type);
		if (path && path[0] != '/')
			return runtime_spec_error(err, ep, "path", "must be an absolute path, got '%s'",
						  path);
		s->ns[t].enabled = true;
		s->ns[t].path = path && *path ? path : NULL;
	}
	return 0;
}

static int parse_idmaps(const json_t *lx, const char *key, struct runtime_id_map **ret, size_t *ret_n,
			struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(lx, "linux", key, &a, &n, err);
	if (r <= 0)
		return r;
	if (n > 340)
		return runtime_spec_error(err, "linux", key, "too many mappings (%zu, at most 340)", n);
	_cleanup_free_ char *kp = json_path_join("linux", key);
	*ret = xcalloc(n ? n : 1, sizeof(**ret));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(kp, i);
		json_t *e = json_array_get(a, i);
		struct runtime_id_map *m = &(*ret)[i];
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((r = json_get_uint32(e, ep, "containerID", JSON_REQUIRED, &m->container_id, err)) < 0 ||
		    (r = json_get_uint32(e, ep, "hostID", JSON_REQUIRED, &m->host_id, err)) < 0 ||
		    (r = json_get_uint32(e, ep, "size", JSON_REQUIRED, &m->size, err)) < 0)
			return r;
		if (m->size == 0)
			return runtime_spec_error(err, ep, "size", "must be positive");
		*ret_n = i + 1;
	}
	return 0;
}

static int parse_device(const json_t *e, const char *ep, struct runtime_device *d, struct berth_error **err)
{
	const char *type;
	uint32_t mode;
	int r;
	if (!json_is_object(e))
		return json_type_error(ep, NULL, "object", e, err);
	if ((r = json_get_string(e, ep, "path", JSON_REQUIRED, &d->path, err)) < 0 ||
	    (r = json_get_string(e, ep, "type", JSON_REQUIRED, &type, err)) < 0)
		return r;
	if (d->path[0] != '/')
		return runtime_spec_error(err, ep, "path", "must be an absolute path, got '%s'", d->path);
	if (strlen(type) != 1 || !strchr("cbup", type[0]))
		return runtime_spec_error(err, ep, "type", "unknown device type '%s'", type);
	d->type = type[0];
	int flags = d->type == 'p' ? 0 : JSON_REQUIRED;
	if ((r = json_get_int_range(e, ep, "major", flags, 0, 0xfff, &d->major, err)) < 0 ||
	    (r = json_get_int_range(e, ep, "minor", flags, 0, 0xfffff, &d->minor, err)) < 0)
		return r;
	if ((r = json_get_uint32(e, ep, "fileMode", 0, &mode, err)) < 0)
		return r;
	d->has_mode = r > 0;
	d->mode = mode & 07777;
	if ((r = json_get_uint32(e, ep, "uid", 0, &d->uid, err)) < 0)
		return r;
	d->has_uid = r > 0;
	if ((r = json_get_uint32(e, ep, "gid", 0, &d->gid, err)) < 0)
		return r;
	d->has_gid = r > 0;
	return 0;
}

static int parse_devices(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(lx, "linux", "devices", &a, &n, err);
	if (r <= 0)
		return r;
	s->devices = xcalloc(n ? n : 1, sizeof(*s->devices));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index("linux.devices", i);
		if ((r = parse_device(json_array_get(a, i), ep, &s->devices[i], err)) < 0)
			return r;
		s->n_devices = i + 1;
	}
	return 0;
}

/* sysctl: object of strings -> borrowed key, value pairs. */
static int parse_sysctl(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	json_t *o, *v;
	const char *k;
	int r = json_get_object(lx, "linux", "sysctl", 0, &o, err);
	if (r <= 0)
		return r;
	if (json_object_size(o) > RUNTIME_SPEC_MAX_ITEMS)
		return runtime_spec_error(err, "linux", "sysctl", "too many entries");
	s->sysctl = xcalloc(2 * json_object_size(o) + 1, sizeof(char *));
	size_t i = 0;
	json_object_foreach ((json_t *)o, k, v) {
		if (!json_is_string(v))
			return json_type_error("linux.sysctl", k, "string", v, err);
		if (!*k || strstr(k, "..") || k[0] == '/' || k[0] == '.')
			return runtime_spec_error(err, "linux.sysctl", k, "invalid sysctl name");
		s->sysctl[i++] = k;
		s->sysctl[i++] = json_string_value(v);
	}
	return 0;
}

/* ---- seccomp ---- */

static int parse_seccomp_action(const char *name, uint32_t errno_ret, uint32_t *ret)
{
	static const struct {
		const char *name;
		uint32_t act;
	} acts[] = {
		{ "SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD },
		{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD },
		{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS },
		{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP },
		{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW },
		{ "SCMP_ACT_LOG", SCMP_ACT_LOG },
	};
	if (streq(name, "SCMP_ACT_ERRNO")) {
		*ret = SCMP_ACT_ERRNO(errno_ret);
		return 0;
	}
	if (streq(name, "SCMP_ACT_TRACE")) {
		*ret = SCMP_ACT_TRACE(errno_ret);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(acts); i++)
		if (streq(name, acts[i].name)) {
			*ret = acts[i].act;
			return 0;
		}
	return -EINVAL;
}

static int parse_seccomp_args(const json_t *sc, const char *sp, struct runtime_seccomp_rule *rule,
			      struct berth_error **err)
{
	static const char *const ops[] = {
		[SCMP_CMP_NE] = "SCMP_CMP_NE",
		[SCMP_CMP_LT] = "SCMP_CMP_LT",
		[SCMP_CMP_LE] = "SCMP_CMP_LE",
		[SCMP_CMP_EQ] = "SCMP_CMP_EQ",
		[SCMP_CMP_GE] = "SCMP_CMP_GE",
		[SCMP_CMP_GT] = "SCMP_CMP_GT",
		[SCMP_CMP_MASKED_EQ] = "SCMP_CMP_MASKED_EQ",
	};
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(sc, sp, "args", &a, &n, err);
	if (r <= 0)
		return r;
	if (n > 6)
		return runtime_spec_error(err, sp, "args", "at most 6 argument conditions, got %zu", n);
	_cleanup_free_ char *ap = json_path_join(sp, "args");
	rule->args = xcalloc(n ? n : 1, sizeof(*rule->args));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(ap, i);
		json_t *e = json_array_get(a, i);
		struct runtime_seccomp_arg *arg = &rule->args[i];
		const char *op;
		uint32_t idx;
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((r = json_get_uint32(e, ep, "index", JSON_REQUIRED, &idx, err)) < 0 ||
		    (r = json_get_uint64(e, ep, "value", JSON_REQUIRED, &arg->value, err)) < 0 ||
		    (r = json_get_uint64(e, ep, "valueTwo", 0, &arg->value_two, err)) < 0 ||
		    (r = json_get_string(e, ep, "op", JSON_REQUIRED, &op, err)) < 0)
			return r;
		if (idx > 5)
			return runtime_spec_error(err, ep, "index", "argument index %u out of range 0..5",
						  idx);
		arg->index = idx;
		arg->op = 0;
		for (size_t k = 0; k < ARRAY_SIZE(ops); k++)
			if (ops[k] && streq(op, ops[k]))
				arg->op = (int)k;
		if (!arg->op)
			return runtime_spec_error(err, ep, "op", "unknown operator '%s'", op);
		rule->n_args = i + 1;
	}
	return 0;
}

static int parse_seccomp_rule(const json_t *e, const char *ep, struct runtime_seccomp_rule *rule,
			      struct berth_error **err)
{
	const char *act;
	uint32_t eret = 1; /* EPERM, runc's default for SCMP_ACT_ERRNO */
	int r;
	if (!json_is_object(e))
		return json_type_error(ep, NULL, "object", e, err);
	if ((r = runtime_spec_get_strv(e, ep, "names", JSON_REQUIRED, &rule->names, err)) < 0 ||
	    (r = json_get_string(e, ep, "action", JSON_REQUIRED, &act, err)) < 0 ||
	    (r = json_get_uint32(e, ep, "errnoRet", 0, &eret, err)) < 0)
		return r;
	if (eret > 0xffff)
		return runtime_spec_error(err, ep, "errnoRet", "errno %u out of range", eret);
	if (parse_seccomp_action(act, eret, &rule->action) < 0)
		return runtime_spec_error(err, ep, "action", "unknown action '%s'", act);
	return parse_seccomp_args(e, ep, rule, err);
}

static int parse_seccomp_archs(const json_t *sc, struct runtime_seccomp *out, struct berth_error **err)
{
	_cleanup_free_ const char **archs = NULL;
	int r = runtime_spec_get_strv(sc, "linux.seccomp", "architectures", 0, &archs, err);
	if (r <= 0)
		return r;
	size_t n = 0;
	while (archs[n])
		n++;
	out->archs = xcalloc(n ? n : 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++) {
		char lower[32];
		const char *a = archs[i];
		if (!startswith(a, "SCMP_ARCH_") || strlen(a) - 10 >= sizeof(lower))
			goto unknown;
		size_t k = 0;
		for (const char *c = a + 10; *c; c++)
			lower[k++] = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
		lower[k] = 0;
		uint32_t v = seccomp_arch_resolve_name(lower);
		if (!v)
			goto unknown;
		out->archs[out->n_archs++] = v;
		continue;
	unknown:;
		_cleanup_free_ char *ep = json_path_index("linux.seccomp.architectures", i);
		return berth_error_msg(err, EINVAL, "'%s': unknown architecture '%s'", ep, a);
	}
	return 0;
}

static int parse_seccomp_flags(const json_t *sc, struct runtime_seccomp *out, struct berth_error **err)
{
	_cleanup_free_ const char **flags = NULL;
	int r = runtime_spec_get_strv(sc, "linux.seccomp", "flags", 0, &flags, err);
	if (r <= 0)
		return r;
	for (size_t i = 0; flags[i]; i++) {
		if (streq(flags[i], "SECCOMP_FILTER_FLAG_TSYNC"))
			out->flags |= SECCOMP_FILTER_FLAG_TSYNC;
		else if (streq(flags[i], "SECCOMP_FILTER_FLAG_LOG"))
			out->flags |= SECCOMP_FILTER_FLAG_LOG;
		else if (streq(flags[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW"))
			out->flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
		else {
			_cleanup_free_ char *ep = json_path_index("linux.seccomp.flags", i);
			return berth_error_msg(err, EINVAL, "'%s': unknown seccomp flag '%s'", ep, flags[i]);
		}
	}
	return 0;
}

static int parse_seccomp(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	json_t *sc, *a;
	const char *def, *listener = NULL;
	uint32_t eret = 1;
	size_t n;
	int r = json_get_object(lx, "linux", "seccomp", 0, &sc, err);
	if (r <= 0)
		return r;
	const char *sp = "linux.seccomp";
	s->seccomp = xcalloc(1, sizeof(*s->seccomp));
	if ((r = json_get_string(sc, sp, "defaultAction", JSON_REQUIRED, &def, err)) < 0 ||
	    (r = json_get_uint32(sc, sp, "defaultErrnoRet", 0, &eret, err)) < 0 ||
	    (r = json_get_string(sc, sp, "listenerPath", 0, &listener, err)) < 0)
		return r;
	if (parse_seccomp_action(def, eret, &s->seccomp->default_action) < 0)
		return runtime_spec_error(err, sp, "defaultAction", "unknown action '%s'", def);
	if (listener && *listener)
		return runtime_spec_error(err, sp, "listenerPath",
					  "seccomp notify listeners are not supported");
	if ((r = parse_seccomp_archs(sc, s->seccomp, err)) < 0 ||
	    (r = parse_seccomp_flags(sc, s->seccomp, err)) < 0)
		return r;
	if ((r = runtime_spec_get_array(sc, sp, "syscalls", &a, &n, err)) <= 0)
		return r;
	s->seccomp->rules = xcalloc(n ? n : 1, sizeof(struct runtime_seccomp_rule));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index("linux.seccomp.syscalls", i);
		s->seccomp->n_rules = i + 1;
		if ((r = parse_seccomp_rule(json_array_get(a, i), ep, &s->seccomp->rules[i], err)) < 0)
			return r;
	}
	return 0;
}

static void runtime_seccomp_done(struct runtime_seccomp *sc)
{
	if (!sc)
		return;
	for (size_t i = 0; i < sc->n_rules; i++) {
		free(sc->rules[i].names);
		free(sc->rules[i].args);
	}
	free(sc->rules);
	free(sc->archs);
	free(sc);
}

/* ---- the rest ---- */

static int parse_personality(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	json_t *o;
	const char *domain;
	_cleanup_free_ const char **flags = NULL;
	int r = json_get_object(lx, "linux", "personality", 0, &o, err);
	if (r <= 0)
		return r;
	if ((r = json_get_string(o, "linux.personality", "domain", JSON_REQUIRED, &domain, err)) < 0 ||
	    (r = runtime_spec_get_strv(o, "linux.personality", "flags", 0, &flags, err)) < 0)
		return r;
	if (streq(domain, "LINUX"))
		s->personality = PER_LINUX;
	else if (streq(domain, "LINUX32"))
		s->personality = PER_LINUX32;
	else
		return runtime_spec_error(err, "linux.personality", "domain", "unknown domain '%s'", domain);
	if (flags && flags[0])
		return runtime_spec_error(err, "linux.personality", "flags",
					  "personality flags are not supported");
	s->has_personality = true;
	return 0;
}

static int parse_time_offsets(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	static const char *const clocks[] = { "monotonic", "boottime" };
	json_t *o, *c;
	int r = json_get_object(lx, "linux", "timeOffsets", 0, &o, err);
	if (r <= 0)
		return r;
	for (int i = 0; i < 2; i++) {
		int64_t *dst = i == 0 ? s->time_offset_monotonic : s->time_offset_boottime;
		int64_t ns = 0;
		_cleanup_free_ char *cp = json_path_join("linux.timeOffsets", clocks[i]);
		if ((r = json_get_object(o, "linux.timeOffsets", clocks[i], 0, &c, err)) < 0)
			return r;
		if (r == 0)
			continue;
		if ((r = json_get_int64(c, cp, "secs", 0, &dst[0], err)) < 0 ||
		    (r = json_get_int_range(c, cp, "nanosecs", 0, 0, 999999999, &ns, err)) < 0)
			return r;
		dst[1] = ns;
	}
	s->has_time_offsets = true;
	if (!s->ns[RUNTIME_NS_TIME].enabled || s->ns[RUNTIME_NS_TIME].path)
		return runtime_spec_error(err, "linux", "timeOffsets", "needs a new time namespace");
	return 0;
}

static int parse_linux_misc(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	const char *prop = NULL;
	json_t *rdt;
	int r;
	if ((r = json_get_string(lx, "linux", "cgroupsPath", 0, &s->cgroups_path, err)) < 0 ||
	    (r = json_get_string(lx, "linux", "rootfsPropagation", 0, &prop, err)) < 0 ||
	    (r = json_get_string(lx, "linux", "mountLabel", 0, &s->mount_label, err)) < 0 ||
	    (r = runtime_spec_get_strv(lx, "linux", "maskedPaths", 0, &s->masked_paths, err)) < 0 ||
	    (r = runtime_spec_get_strv(lx, "linux", "readonlyPaths", 0, &s->readonly_paths, err)) < 0)
		return r;
	if (s->cgroups_path && !*s->cgroups_path)
		s->cgroups_path = NULL;
	if (s->cgroups_path && strstr(s->cgroups_path, ".."))
		return runtime_spec_error(err, "linux", "cgroupsPath", "must not contain '..', got '%s'",
					  s->cgroups_path);
	if (prop && *prop && runtime_spec_parse_propagation(prop, &s->rootfs_propagation) < 0)
		return runtime_spec_error(err, "linux", "rootfsPropagation", "unknown propagation '%s'",
					  prop);
	for (const char **p = s->masked_paths; p && *p; p++)
		if ((*p)[0] != '/')
			return runtime_spec_error(err, "linux", "maskedPaths", "'%s' is not an absolute path",
						  *p);
	for (const char **p = s->readonly_paths; p && *p; p++)
		if ((*p)[0] != '/')
			return runtime_spec_error(err, "linux", "readonlyPaths",
						  "'%s' is not an absolute path", *p);
	if ((r = json_get_object(lx, "linux", "intelRdt", 0, &rdt, err)) < 0)
		return r;
	if (r > 0)
		return runtime_spec_error(err, "linux", "intelRdt",
					  "Intel RDT is not supported on this host");
	return 0;
}

static int check_userns(struct runtime_spec *s, struct berth_error **err)
{
	bool userns = s->ns[RUNTIME_NS_USER].enabled && !s->ns[RUNTIME_NS_USER].path;
	if (userns && (!s->n_uid_mappings || !s->n_gid_mappings))
		return runtime_spec_error(err, "linux", "uidMappings",
					  "a new user namespace needs uidMappings and gidMappings");
	if (!userns && (s->n_uid_mappings || s->n_gid_mappings))
		return runtime_spec_error(err, "linux", "uidMappings", "mappings need a new user namespace");
	return 0;
}

int runtime_spec_parse_linux(const json_t *lx, struct runtime_spec *s, struct berth_error **err)
{
	json_t *res;
	int r;
	if (!lx)
		return 0;
	if ((r = parse_namespaces(lx, s, err)) < 0 ||
	    (r = parse_idmaps(lx, "uidMappings", &s->uid_mappings, &s->n_uid_mappings, err)) < 0 ||
	    (r = parse_idmaps(lx, "gidMappings", &s->gid_mappings, &s->n_gid_mappings, err)) < 0 ||
	    (r = check_userns(s, err)) < 0 || (r = parse_devices(lx, s, err)) < 0 ||
	    (r = parse_sysctl(lx, s, err)) < 0 || (r = parse_seccomp(lx, s, err)) < 0 ||
	    (r = parse_linux_misc(lx, s, err)) < 0 || (r = parse_personality(lx, s, err)) < 0 ||
	    (r = parse_time_offsets(lx, s, err)) < 0)
		return r;
	if ((r = json_get_object(lx, "linux", "resources", 0, &res, err)) < 0)
		return r;
	if (r > 0) {
		if ((r = runtime_resources_parse(res, "linux.resources", &s->resources, err)) < 0)
			return r;
		s->has_resources = true;
	}
	return 0;
}

void runtime_spec_linux_done(struct runtime_spec *s)
{
	free(s->uid_mappings);
	free(s->gid_mappings);
	free(s->devices);
	free(s->sysctl);
	free(s->masked_paths);
	free(s->readonly_paths);
	runtime_seccomp_done(s->seccomp);
	runtime_resources_done(&s->resources);
}
