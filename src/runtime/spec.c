/*
 * spec.c - parse and validate config.json into struct runtime_spec.
 *
 * Everything is checked up front (types, ranges, names of namespaces,
 * capabilities, rlimits, mount options) so that create fails before it has
 * touched the system. Strings are borrowed from the jansson document, which
 * the spec keeps a reference to: parsing allocates only the arrays.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "common/fs.h"
#include "common/strbuf.h"
#include "runtime/spec-internal.h"

int runtime_spec_error(struct berth_error **err, const char *path, const char *key, const char *fmt, ...)
{
	_cleanup_free_ char *p = json_path_join(path, key);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	return berth_error_msg(err, EINVAL, "'%s': %s", p, sb.buf);
}

int runtime_spec_get_array(const json_t *obj, const char *path, const char *key, json_t **ret, size_t *ret_n,
			   struct berth_error **err)
{
	json_t *a = NULL;
	int r = json_get_array(obj, path, key, JSON_OPTIONAL, &a, err);
	if (r < 0)
		return r;
	size_t n = a ? json_array_size(a) : 0;
	if (n > RUNTIME_SPEC_MAX_ITEMS)
		return runtime_spec_error(err, path, key, "too many entries (%zu, at most %d)", n,
					  RUNTIME_SPEC_MAX_ITEMS);
	*ret = a;
	*ret_n = n;
	return r;
}

int runtime_spec_get_strv(const json_t *obj, const char *path, const char *key, int flags, const char ***ret,
			  struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(obj, path, key, &a, &n, err);
	if (r < 0)
		return r;
	if (r == 0) {
		if (flags & JSON_REQUIRED)
			return runtime_spec_error(err, path, key, "required member missing");
		return 0;
	}
	_cleanup_free_ const char **v = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		if (!json_is_string(e)) {
			_cleanup_free_ char *p = json_path_join(path, key);
			_cleanup_free_ char *pi = json_path_index(p, i);
			return json_type_error(pi, NULL, "string", e, err);
		}
		v[i] = json_string_value(e);
	}
	*ret = TAKE_PTR(v);
	return 1;
}

/* ---- process ---- */

static const struct {
	const char *name;
	int res;
} rlimit_names[] = {
	{ "RLIMIT_AS", RLIMIT_AS },
	{ "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU },
	{ "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },
	{ "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
	{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_STACK", RLIMIT_STACK },
};

static int parse_rlimits(const json_t *proc, const char *path, struct runtime_process *p,
			 struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(proc, path, "rlimits", &a, &n, err);
	if (r <= 0)
		return r;
	_cleanup_free_ char *ap = json_path_join(path, "rlimits");
	p->rlimits = xcalloc(n ? n : 1, sizeof(*p->rlimits));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(ap, i);
		json_t *e = json_array_get(a, i);
		const char *type;
		struct runtime_rlimit *rl = &p->rlimits[i];
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((r = json_get_string(e, ep, "type", JSON_REQUIRED, &type, err)) < 0 ||
		    (r = json_get_uint64(e, ep, "soft", JSON_REQUIRED, &rl->soft, err)) < 0 ||
		    (r = json_get_uint64(e, ep, "hard", JSON_REQUIRED, &rl->hard, err)) < 0)
			return r;
		rl->resource = -1;
		for (size_t k = 0; k < ARRAY_SIZE(rlimit_names); k++)
			if (streq(type, rlimit_names[k].name))
				rl->resource = rlimit_names[k].res;
		if (rl->resource < 0)
			return runtime_spec_error(err, ep, "type", "unknown rlimit '%s'", type);
		for (size_t k = 0; k < i; k++)
			if (p->rlimits[k].resource == rl->resource)
				return runtime_spec_error(err, ep, "type", "duplicate rlimit '%s'", type);
		if (rl->soft > rl->hard)
			return runtime_spec_error(err, ep, "soft", "soft limit %llu above hard limit %llu",
						  (unsigned long long)rl->soft, (unsigned long long)rl->hard);
		p->n_rlimits++;
	}
	return 0;
}

static const char *const cap_names[RUNTIME_CAP_LAST + 1] = {
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_DAC_READ_SEARCH",
	"CAP_FOWNER",
	"CAP_FSETID",
	"CAP_KILL",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",
	"CAP_NET_RAW",
	"CAP_IPC_LOCK",
	"CAP_IPC_OWNER",
	"CAP_SYS_MODULE",
	"CAP_SYS_RAWIO",
	"CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",
	"CAP_SYS_ADMIN",
	"CAP_SYS_BOOT",
	"CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",
	"CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG",
	"CAP_MKNOD",
	"CAP_LEASE",
	"CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL",
	"CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN",
	"CAP_SYSLOG",
	"CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",
	"CAP_AUDIT_READ",
	"CAP_PERFMON",
	"CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

const char *runtime_cap_name(int cap)
{
	return cap >= 0 && cap <= RUNTIME_CAP_LAST ? cap_names[cap] : NULL;
}

int runtime_parse_cap(const char *s, int *ret)
{
	cap_value_t c;
	if (!startswith(s, "CAP_") || cap_from_name(s, &c) < 0)
		return -EINVAL;
	*ret = c;
	return 0;
}

static int parse_capset(const json_t *caps, const char *path, const char *key, uint64_t *ret,
			struct berth_error **err)
{
	_cleanup_free_ const char **v = NULL;
	int r = runtime_spec_get_strv(caps, path, key, JSON_OPTIONAL, &v, err);
	if (r <= 0)
		return r;
	uint64_t mask = 0;
	for (size_t i = 0; v[i]; i++) {
		int c;
		if (runtime_parse_cap(v[i], &c) < 0) {
			_cleanup_free_ char *p = json_path_join(path, key);
			_cleanup_free_ char *pi = json_path_index(p, i);
			return berth_error_msg(err, EINVAL, "'%s': unknown capability '%s'", pi, v[i]);
		}
		mask |= 1ull << c;
	}
	*ret = mask;
	return 0;
}

static int parse_caps(const json_t *proc, const char *path, struct runtime_process *p,
		      struct berth_error **err)
{
	json_t *caps;
	int r = json_get_object(proc, path, "capabilities", JSON_OPTIONAL, &caps, err);
	if (r <= 0)
		return r;
	_cleanup_free_ char *cp = json_path_join(path, "capabilities");
	p->has_caps = true;
	if ((r = parse_capset(caps, cp, "bounding", &p->caps.bounding, err)) < 0 ||
	    (r = parse_capset(caps, cp, "effective", &p->caps.effective, err)) < 0 ||
	    (r = parse_capset(caps, cp, "inheritable", &p->caps.inheritable, err)) < 0 ||
	    (r = parse_capset(caps, cp, "permitted", &p->caps.permitted, err)) < 0 ||
	    (r = parse_capset(caps, cp, "ambient", &p->caps.ambient, err)) < 0)
		return r;
	return 0;
}

static int parse_user(const json_t *proc, const char *path, struct runtime_process *p,
		      struct berth_error **err)
{
	json_t *u;
	int r = json_get_object(proc, path, "user", JSON_OPTIONAL, &u, err);
	if (r <= 0)
		return r;
	_cleanup_free_ char *up = json_path_join(path, "user");
	uint32_t umask_v;
	if ((r = json_get_uint32(u, up, "uid", JSON_OPTIONAL, &p->uid, err)) < 0 ||
	    (r = json_get_uint32(u, up, "gid", JSON_OPTIONAL, &p->gid, err)) < 0)
		return r;
	if ((r = json_get_uint32(u, up, "umask", JSON_OPTIONAL, &umask_v, err)) < 0)
		return r;
	if (r > 0) {
		if (umask_v > 0777)
			return runtime_spec_error(err, up, "umask", "umask %o out of range", umask_v);
		p->has_umask = true;
		p->umask = umask_v;
	}
	json_t *a;
	size_t n;
	if ((r = runtime_spec_get_array(u, up, "additionalGids", &a, &n, err)) <= 0)
		return r;
	_cleanup_free_ char *gp = json_path_join(up, "additionalGids");
	p->additional_gids = xcalloc(n ? n : 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(a, i);
		if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > UINT32_MAX) {
			_cleanup_free_ char *ep = json_path_index(gp, i);
			return json_type_error(ep, NULL, "unsigned 32-bit integer", e, err);
		}
		p->additional_gids[p->n_additional_gids++] = (uint32_t)json_integer_value(e);
	}
	return 0;
}

static int parse_process_misc(const json_t *proc, const char *path, struct runtime_process *p,
			      struct berth_error **err)
{
	int64_t v;
	json_t *o;
	int r;
	if ((r = json_get_bool(proc, path, "noNewPrivileges", 0, &p->no_new_privileges, err)) < 0)
		return r;
	if ((r = json_get_int_range(proc, path, "oomScoreAdj", 0, -1000, 1000, &v, err)) < 0)
		return r;
	if (r > 0) {
		p->has_oom_score_adj = true;
		p->oom_score_adj = (int)v;
	}
	if ((r = json_get_string(proc, path, "apparmorProfile", 0, &p->apparmor_profile, err)) < 0 ||
	    (r = json_get_string(proc, path, "selinuxLabel", 0, &p->selinux_label, err)) < 0)
		return r;
	if ((r = json_get_object(proc, path, "ioPriority", 0, &o, err)) < 0)
		return r;
	if (r > 0) {
		_cleanup_free_ char *ip = json_path_join(path, "ioPriority");
		const char *cls;
		if ((r = json_get_string(o, ip, "class", JSON_REQUIRED, &cls, err)) < 0 ||
		    (r = json_get_int_range(o, ip, "priority", 0, 0, 7, &v, err)) < 0)
			return r;
		p->io_priority = r > 0 ? (int)v : 0;
		if (streq(cls, "IOPRIO_CLASS_RT"))
			p->io_priority_class = 1;
		else if (streq(cls, "IOPRIO_CLASS_BE"))
			p->io_priority_class = 2;
		else if (streq(cls, "IOPRIO_CLASS_IDLE"))
			p->io_priority_class = 3;
		else
			return runtime_spec_error(err, ip, "class", "unknown I/O priority class '%s'", cls);
		p->has_io_priority = true;
	}
	return 0;
}

static int parse_scheduler(const json_t *proc, const char *path, struct runtime_process *p,
			   struct berth_error **err)
{
	static const struct {
		const char *name;
		int policy;
	} policies[] = {
		{ "SCHED_OTHER", 0 }, { "SCHED_FIFO", 1 }, { "SCHED_RR", 2 },
		{ "SCHED_BATCH", 3 }, { "SCHED_IDLE", 5 }, { "SCHED_DEADLINE", 6 },
	};
	json_t *o;
	const char *pol;
	int64_t v;
	int r = json_get_object(proc, path, "scheduler", 0, &o, err);
	if (r <= 0)
		return r;
	_cleanup_free_ char *sp = json_path_join(path, "scheduler");
	if ((r = json_get_string(o, sp, "policy", JSON_REQUIRED, &pol, err)) < 0)
		return r;
	p->sched_policy = -1;
	for (size_t i = 0; i < ARRAY_SIZE(policies); i++)
		if (streq(pol, policies[i].name))
			p->sched_policy = policies[i].policy;
	if (p->sched_policy < 0)
		return runtime_spec_error(err, sp, "policy", "unknown scheduling policy '%s'", pol);
	if ((r = json_get_int_range(o, sp, "nice", 0, -20, 19, &v, err)) < 0)
		return r;
	p->sched_nice = r > 0 ? (int)v : 0;
	if ((r = json_get_int_range(o, sp, "priority", 0, 0, 99, &v, err)) < 0)
		return r;
	p->sched_priority = r > 0 ? (int)v : 0;
	p->has_scheduler = true;
	return 0;
}

static int parse_console(const json_t *proc, const char *path, struct runtime_process *p,
			 struct berth_error **err)
{
	json_t *cs;
	uint32_t h = 0, w = 0;
	int r = json_get_bool(proc, path, "terminal", 0, &p->terminal, err);
	if (r < 0)
		return r;
	if ((r = json_get_object(proc, path, "consoleSize", 0, &cs, err)) <= 0)
		return r;
	_cleanup_free_ char *cp = json_path_join(path, "consoleSize");
	if ((r = json_get_uint32(cs, cp, "height", JSON_REQUIRED, &h, err)) < 0 ||
	    (r = json_get_uint32(cs, cp, "width", JSON_REQUIRED, &w, err)) < 0)
		return r;
	if (h > 65535 || w > 65535)
		return runtime_spec_error(err, cp, NULL, "console size %ux%u out of range", w, h);
	p->console_height = h;
	p->console_width = w;
	return 0;
}

static int check_env(const char **env, const char *path, struct berth_error **err)
{
	for (size_t i = 0; env[i]; i++)
		if (!strchr(env[i], '=') || env[i][0] == '=') {
			_cleanup_free_ char *p = json_path_join(path, "env");
			_cleanup_free_ char *pi = json_path_index(p, i);
			return berth_error_msg(err, EINVAL, "'%s': expected 'KEY=value', got '%s'", pi,
					       env[i]);
		}
	return 0;
}

int runtime_process_parse(const json_t *proc, const char *path, struct runtime_process *ret,
			  struct berth_error **err)
{
	struct runtime_process p = { 0 };
	int r;
	if (!json_is_object(proc))
		return json_type_error(path, NULL, "object", proc, err);
	if ((r = runtime_spec_get_strv(proc, path, "args", JSON_REQUIRED, &p.args, err)) < 0)
		goto fail;
	if (!p.args[0] || !*p.args[0]) {
		r = runtime_spec_error(err, path, "args", "must name a program");
		goto fail;
	}
	if ((r = runtime_spec_get_strv(proc, path, "env", 0, &p.env, err)) < 0)
		goto fail;
	if (!p.env)
		p.env = xcalloc(1, sizeof(char *));
	if ((r = check_env(p.env, path, err)) < 0)
		goto fail;
	p.cwd = "/";
	if ((r = json_get_string(proc, path, "cwd", 0, &p.cwd, err)) < 0)
		goto fail;
	if (p.cwd[0] != '/') {
		r = runtime_spec_error(err, path, "cwd", "must be an absolute path, got '%s'", p.cwd);
		goto fail;
	}
	if ((r = parse_console(proc, path, &p, err)) < 0 || (r = parse_user(proc, path, &p, err)) < 0 ||
	    (r = parse_caps(proc, path, &p, err)) < 0 || (r = parse_rlimits(proc, path, &p, err)) < 0 ||
	    (r = parse_process_misc(proc, path, &p, err)) < 0 ||
	    (r = parse_scheduler(proc, path, &p, err)) < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	runtime_process_done(&p);
	return r;
}

void runtime_process_done(struct runtime_process *p)
{
	free(p->args);
	free(p->env);
	free(p->additional_gids);
	free(p->rlimits);
	memset(p, 0, sizeof(*p));
}

/* ---- mounts ---- */

static const struct {
	const char *name;
	bool clear;
	unsigned long flag;
} mount_flags[] = {
	{ "ro", false, MS_RDONLY },
	{ "rw", true, MS_RDONLY },
	{ "nosuid", false, MS_NOSUID },
	{ "suid", true, MS_NOSUID },
	{ "nodev", false, MS_NODEV },
	{ "dev", true, MS_NODEV },
	{ "noexec", false, MS_NOEXEC },
	{ "exec", true, MS_NOEXEC },
	{ "sync", false, MS_SYNCHRONOUS },
	{ "async", true, MS_SYNCHRONOUS },
	{ "dirsync", false, MS_DIRSYNC },
	{ "remount", false, MS_REMOUNT },
	{ "mand", false, MS_MANDLOCK },
	{ "nomand", true, MS_MANDLOCK },
	{ "atime", true, MS_NOATIME },
	{ "noatime", false, MS_NOATIME },
	{ "diratime", true, MS_NODIRATIME },
	{ "nodiratime", false, MS_NODIRATIME },
	{ "relatime", false, MS_RELATIME },
	{ "norelatime", true, MS_RELATIME },
	{ "strictatime", false, MS_STRICTATIME },
	{ "nostrictatime", true, MS_STRICTATIME },
	{ "silent", false, MS_SILENT },
	{ "loud", true, MS_SILENT },
	{ "defaults", false, 0 },
};

static const struct {
	const char *name;
	unsigned long flag;
} propagation_flags[] = {
	{ "private", MS_PRIVATE },       { "rprivate", MS_PRIVATE | MS_REC },
	{ "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE },           { "rslave", MS_SLAVE | MS_REC },
	{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static bool parse_propagation(const char *s, unsigned long *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(propagation_flags); i++)
		if (streq(s, propagation_flags[i].name)) {
			*ret = propagation_flags[i].flag;
			return true;
		}
	return false;
}

int runtime_spec_parse_propagation(const char *s, unsigned long *ret);
int runtime_spec_parse_propagation(const char *s, unsigned long *ret)
{
	return parse_propagation(s, ret) ? 0 : -EINVAL;
}

static void mount_option(struct runtime_mount *m, const char *o, struct strbuf *data)
{
	for (size_t i = 0; i < ARRAY_SIZE(mount_flags); i++)
		if (streq(o, mount_flags[i].name)) {
			if (mount_flags[i].clear) {
				m->flags &= ~mount_flags[i].flag;
				m->clear |= mount_flags[i].flag;
			} else {
				m->flags |= mount_flags[i].flag;
				m->clear &= ~mount_flags[i].flag;
			}
			return;
		}
	unsigned long prop;
	if (parse_propagation(o, &prop)) {
		m->propagation = prop;
		return;
	}
	if (streq(o, "bind")) {
		m->bind = true;
		return;
	}
	if (streq(o, "rbind")) {
		m->bind = m->rbind = true;
		return;
	}
	/* idmap/ridmap, recursive attributes (rro, ...) and tmpcopyup are not ours: fs data. */
	if (data->len)
		strbuf_addch(data, ',');
	strbuf_addstr(data, o);
}

static int parse_mount(const json_t *e, const char *ep, struct runtime_mount *m, struct berth_error **err)
{
	_cleanup_free_ const char **opts = NULL;
	_cleanup_strbuf_ struct strbuf data = STRBUF_INIT;
	const char *dest;
	int r;
	if (!json_is_object(e))
		return json_type_error(ep, NULL, "object", e, err);
	if ((r = json_get_string(e, ep, "destination", JSON_REQUIRED, &dest, err)) < 0 ||
	    (r = json_get_string(e, ep, "type", 0, &m->type, err)) < 0 ||
	    (r = json_get_string(e, ep, "source", 0, &m->source, err)) < 0 ||
	    (r = runtime_spec_get_strv(e, ep, "options", 0, &opts, err)) < 0)
		return r;
	if (dest[0] != '/')
		return runtime_spec_error(err, ep, "destination", "must be an absolute path, got '%s'", dest);
	if (m->type && !*m->type)
		m->type = NULL;
	for (size_t i = 0; opts && opts[i]; i++) {
		if (streq(opts[i], "idmap") || streq(opts[i], "ridmap")) {
			_cleanup_free_ char *op = json_path_join(ep, "options");
			_cleanup_free_ char *oi = json_path_index(op, i);
			return berth_error_msg(
			    err, EOPNOTSUPP, "'%s': id-mapped mounts ('%s') are not supported", oi, opts[i]);
		}
		mount_option(m, opts[i], &data);
	}
	if (m->type && streq(m->type, "bind"))
		m->bind = true;
	if (m->bind && !m->source)
		return runtime_spec_error(err, ep, "source", "bind mount needs a source");
	if (!m->bind && !m->type)
		return runtime_spec_error(err, ep, "type", "required for a mount that is not a bind mount");
	if (m->type && strchr(m->type, '/'))
		return runtime_spec_error(err, ep, "type", "invalid file system type '%s'", m->type);
	m->data = data.len ? strbuf_detach(&data, NULL) : NULL;
	m->destination = fs_path_clean(dest);
	return 0;
}

static int parse_mounts(const json_t *doc, struct runtime_spec *s, struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(doc, "", "mounts", &a, &n, err);
	if (r <= 0)
		return r;
	s->mounts = xcalloc(n ? n : 1, sizeof(*s->mounts));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index("mounts", i);
		r = parse_mount(json_array_get(a, i), ep, &s->mounts[i], err);
		if (s->mounts[i].destination)
			s->n_mounts = i + 1;
		if (r < 0) {
			free(s->mounts[i].data);
			s->mounts[i].data = NULL;
			return r;
		}
	}
	return 0;
}

/* ---- hooks ---- */

static int parse_hook(const json_t *e, const char *ep, struct runtime_hook *h, struct berth_error **err)
{
	int64_t t;
	int r;
	if (!json_is_object(e))
		return json_type_error(ep, NULL, "object", e, err);
	if ((r = json_get_string(e, ep, "path", JSON_REQUIRED, &h->path, err)) < 0 ||
	    (r = runtime_spec_get_strv(e, ep, "args", 0, &h->args, err)) < 0 ||
	    (r = runtime_spec_get_strv(e, ep, "env", 0, &h->env, err)) < 0 ||
	    (r = json_get_int_range(e, ep, "timeout", 0, 1, INT32_MAX, &t, err)) < 0)
		return r;
	h->timeout = r > 0 ? (int)t : 0;
	if (h->path[0] != '/')
		return runtime_spec_error(err, ep, "path", "must be an absolute path, got '%s'", h->path);
	return 0;
}

static int parse_hooks(const json_t *doc, struct runtime_spec *s, struct berth_error **err)
{
	json_t *hooks;
	int r = json_get_object(doc, "", "hooks", 0, &hooks, err);
	if (r <= 0)
		return r;
	for (int k = 0; k < RUNTIME_HOOK_MAX; k++) {
		json_t *a;
		size_t n;
		_cleanup_free_ char *kp = json_path_join("hooks", runtime_hook_kind_name(k));
		if ((r = runtime_spec_get_array(hooks, "hooks", runtime_hook_kind_name(k), &a, &n, err)) < 0)
			return r;
		if (r == 0)
			continue;
		s->hooks[k].list = xcalloc(n ? n : 1, sizeof(struct runtime_hook));
		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *ep = json_path_index(kp, i);
			struct runtime_hook *h = &s->hooks[k].list[i];
			s->hooks[k].n = i + 1;
			if ((r = parse_hook(json_array_get(a, i), ep, h, err)) < 0)
				return r;
		}
	}
	return 0;
}

/* ---- top level ---- */

static int parse_root(const json_t *doc, const char *bundle, struct runtime_spec *s, struct berth_error **err)
{
	json_t *root;
	const char *path;
	int r;
	if ((r = json_get_object(doc, "", "root", JSON_REQUIRED, &root, err)) < 0 ||
	    (r = json_get_string(root, "root", "path", JSON_REQUIRED, &path, err)) < 0 ||
	    (r = json_get_bool(root, "root", "readonly", 0, &s->root_readonly, err)) < 0)
		return r;
	if (!*path)
		return runtime_spec_error(err, "root", "path", "must not be empty");
	if (path[0] == '/')
		s->root_path = fs_path_clean(path);
	else {
		_cleanup_free_ char *joined = xasprintf("%s/%s", bundle ? bundle : ".", path);
		s->root_path = fs_path_clean(joined);
	}
	return 0;
}

static int parse_top(const json_t *doc, const char *bundle, struct runtime_spec *s, struct berth_error **err)
{
	json_t *proc;
	int r;
	if (!json_is_object(doc))
		return json_type_error(NULL, NULL, "object", doc, err);
	if ((r = json_get_string(doc, "", "ociVersion", JSON_REQUIRED, &s->oci_version, err)) < 0)
		return r;
	if (!startswith(s->oci_version, "1."))
		return runtime_spec_error(err, NULL, "ociVersion", "unsupported version '%s', expected 1.x",
					  s->oci_version);
	if ((r = parse_root(doc, bundle, s, err)) < 0)
		return r;
	if ((r = json_get_string(doc, "", "hostname", 0, &s->hostname, err)) < 0 ||
	    (r = json_get_string(doc, "", "domainname", 0, &s->domainname, err)) < 0 ||
	    (r = json_get_object(doc, "", "annotations", 0, &s->annotations, err)) < 0)
		return r;
	if (s->hostname && strlen(s->hostname) > 64)
		return runtime_spec_error(err, NULL, "hostname", "longer than 64 bytes");
	if (s->domainname && strlen(s->domainname) > 64)
		return runtime_spec_error(err, NULL, "domainname", "longer than 64 bytes");
	if ((r = json_get_object(doc, "", "process", 0, &proc, err)) < 0)
		return r;
	if (r > 0) {
		if ((r = runtime_process_parse(proc, "process", &s->process, err)) < 0)
			return r;
		s->has_process = true;
	}
	return 0;
}

int runtime_spec_parse(json_t *doc, const char *bundle, struct runtime_spec **ret, struct berth_error **err)
{
	_cleanup_spec_ struct runtime_spec *s = xcalloc(1, sizeof(*s));
	json_t *linux_obj = NULL;
	int r;
	s->doc = json_incref(doc);
	if (bundle)
		s->bundle = xstrdup(bundle);
	if ((r = parse_top(doc, bundle, s, err)) < 0 || (r = parse_mounts(doc, s, err)) < 0 ||
	    (r = parse_hooks(doc, s, err)) < 0)
		return r;
	if ((r = json_get_object(doc, "", "linux", 0, &linux_obj, err)) < 0)
		return r;
	if ((r = runtime_spec_parse_linux(linux_obj, s, err)) < 0)
		return r;
	if (s->hostname && !s->ns[RUNTIME_NS_UTS].enabled)
		return runtime_spec_error(err, NULL, "hostname", "needs a new UTS namespace");
	*ret = TAKE_PTR(s);
	return 0;
}

int runtime_spec_load(const char *bundle, struct runtime_spec **ret, struct berth_error **err)
{
	_cleanup_json_ json_t *doc = NULL;
	_cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
	int r = json_load_path(path, 0, &doc, err);
	if (r < 0)
		return r;
	return runtime_spec_parse(doc, bundle, ret, err);
}

struct runtime_spec *runtime_spec_free(struct runtime_spec *s)
{
	if (!s)
		return NULL;
	runtime_process_done(&s->process);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free((char *)s->mounts[i].destination);
		free(s->mounts[i].data);
	}
	free(s->mounts);
	for (int k = 0; k < RUNTIME_HOOK_MAX; k++) {
		for (size_t i = 0; i < s->hooks[k].n; i++) {
			free(s->hooks[k].list[i].args);
			free(s->hooks[k].list[i].env);
		}
		free(s->hooks[k].list);
	}
	runtime_spec_linux_done(s);
	free(s->bundle);
	free(s->root_path);
	json_decref(s->doc);
	free(s);
	return NULL;
}

/* ---- signals ---- */

static const struct {
	const char *name;
	int sig;
} signal_names[] = {
	{ "ABRT", SIGABRT },     { "ALRM", SIGALRM },     { "BUS", SIGBUS },   { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT },     { "FPE", SIGFPE },       { "HUP", SIGHUP },   { "ILL", SIGILL },
	{ "INT", SIGINT },       { "IO", SIGIO },         { "IOT", SIGIOT },   { "KILL", SIGKILL },
	{ "PIPE", SIGPIPE },     { "PROF", SIGPROF },     { "PWR", SIGPWR },   { "QUIT", SIGQUIT },
	{ "SEGV", SIGSEGV },     { "STKFLT", SIGSTKFLT }, { "STOP", SIGSTOP }, { "SYS", SIGSYS },
	{ "TERM", SIGTERM },     { "TRAP", SIGTRAP },     { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU },     { "URG", SIGURG },       { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 },
	{ "VTALRM", SIGVTALRM }, { "WINCH", SIGWINCH },   { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

int runtime_parse_signal(const char *s, int *ret)
{
	if (!s || !*s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		char *end;
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || *end || v <= 0 || v > SIGRTMAX)
			return -EINVAL;
		*ret = (int)v;
		return 0;
	}
	const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (strcasecmp(n, signal_names[i].name) == 0) {
			*ret = signal_names[i].sig;
			return 0;
		}
	if (strncasecmp(n, "RTMIN", 5) == 0 || strncasecmp(n, "RTMAX", 5) == 0) {
		bool min = strncasecmp(n, "RTMIN", 5) == 0;
		int off = 0;
		const char *rest = n + 5;
		if (*rest) {
			char *end;
			long v = strtol(rest, &end, 10);
			if (*end || (min && v < 0) || (!min && v > 0) || v < -32 || v > 32)
				return -EINVAL;
			off = (int)v;
		}
		int sig = (min ? SIGRTMIN : SIGRTMAX) + off;
		if (sig < SIGRTMIN || sig > SIGRTMAX)
			return -EINVAL;
		*ret = sig;
		return 0;
	}
	return -EINVAL;
}
