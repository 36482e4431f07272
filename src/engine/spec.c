/*
 * spec.c - the OCI runtime spec (config.json) for a container, built from its
 * Docker Config/HostConfig with docker's defaults: its capability set,
 * masked and read-only /proc paths, a device allowlist, a private cgroup
 * under /berth/<id>. Privileged containers get all of these lifted: every
 * capability in the daemon's own bounding set (asking for more makes the
 * runtime fail with EPERM: that was the `--privileged` hang, the failed
 * start of an --rm container never being removed), every host device, no
 * seccomp, writable /sys.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/options.h"
#include "runtime/spec.h"

static const char *const default_caps[] = {
	"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
	"CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
	"CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
	"CAP_KILL",    "CAP_AUDIT_WRITE",
};

static const char *const masked_paths[] = {
	"/proc/asound",     "/proc/acpi",        "/proc/kcore",       "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
};

static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static json_t *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

void engine_spec_default_paths(json_t *hc)
{
	if (json_is_true(json_object_get(hc, "Privileged")))
		return;
	if (!json_is_array(json_object_get(hc, "MaskedPaths")))
		json_object_set_new(hc, "MaskedPaths", strv_json(masked_paths, ARRAY_SIZE(masked_paths)));
	if (!json_is_array(json_object_get(hc, "ReadonlyPaths")))
		json_object_set_new(hc, "ReadonlyPaths",
				    strv_json(readonly_paths, ARRAY_SIZE(readonly_paths)));
}

/* "net_admin" / "CAP_NET_ADMIN" / "ALL" -> canonical name (static or owned by ret). */
static char *cap_name(const char *s)
{
	char *n = startswith(s, "CAP_") || startswith(s, "cap_") ? xstrdup(s) : xasprintf("CAP_%s", s);
	for (char *p = n; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return n;
}

/* The capabilities the daemon itself can pass on. */
static json_t *bounding_caps(void)
{
	json_t *a = json_array();
	for (int i = 0; i <= RUNTIME_CAP_LAST; i++)
		if (prctl(PR_CAPBSET_READ, (unsigned long)i, 0, 0, 0) == 1)
			json_array_append_new(a, json_string(runtime_cap_name(i)));
	return a;
}

static int cap_number(const char *canonical)
{
	for (int i = 0; i <= RUNTIME_CAP_LAST; i++)
		if (streq(runtime_cap_name(i), canonical))
			return i;
	return -1;
}

int engine_spec_caps_check(const json_t *hc, struct berth_error **err)
{
	const char *keys[] = { "CapAdd", "CapDrop" };
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		size_t i;
		json_t *el;
		json_array_foreach (json_object_get(hc, keys[k]), i, el) {
			const char *v = json_string_value(el);
			if (!v) /* docker: json: cannot unmarshal number into ... CapAdd of type string */
				return berth_error_msg(err, EINVAL, "invalid %s: expected a list of strings",
						       keys[k]);
			if (!strcasecmp(v, "ALL"))
				continue;
			_cleanup_free_ char *n = cap_name(v);
			int nr = cap_number(n);
			if (nr < 0)
				return berth_error_msg(err, EINVAL, "invalid %s: unknown capability: \"%s\"",
						       keys[k], n);
			if (k == 0 && prctl(PR_CAPBSET_READ, (unsigned long)nr, 0, 0, 0) != 1)
				return berth_error_msg(err, EPERM,
						       "invalid CapAdd: capability %s is not in the daemon's "
						       "bounding set, it cannot be granted",
						       n);
		}
	}
	return 0;
}

static json_t *capabilities(const json_t *hc)
{
	if (json_is_true(json_object_get(hc, "Privileged")))
		return bounding_caps();
	json_t *caps = json_array();
	const json_t *add = json_object_get(hc, "CapAdd"), *drop = json_object_get(hc, "CapDrop");
	bool drop_all = json_strv_find(drop, "ALL", true) >= 0;
	bool add_all = json_strv_find(add, "ALL", true) >= 0;
	size_t i;
	json_t *el;
	_cleanup_json_ json_t *base =
	    add_all ? bounding_caps() : strv_json(default_caps, ARRAY_SIZE(default_caps));
	size_t k;
	json_t *b;
	json_array_foreach (base, k, b) {
		bool dropped = drop_all;
		json_array_foreach (drop, i, el) {
			if (!json_is_string(el))
				continue;
			_cleanup_free_ char *n = cap_name(json_string_value(el));
			dropped = dropped || streq(n, json_string_value(b));
		}
		if (!dropped)
			json_array_append(caps, b);
	}
	json_array_foreach (add, i, el) {
		if (!json_is_string(el))
			continue;
		_cleanup_free_ char *n = cap_name(json_string_value(el));
		if (!streq(n, "CAP_ALL") && !json_strv_contains(caps, n))
			json_array_append_new(caps, json_string(n));
	}
	return caps;
}

static json_t *caps_object(const json_t *hc)
{
	json_t *c = capabilities(hc);
	json_t *o = json_pack("{s:O,s:O,s:O}", "bounding", c, "effective", c, "permitted", c);
	json_decref(c);
	return o;
}

/* Find name (or numeric id) in an /etc/passwd-style file inside rootfs; field 2 and 3 are ids. */
static int lookup_db(int rootfd, const char *file, const char *name, uint32_t *ret_id, uint32_t *ret_gid)
{
	_cleanup_close_ int fd = fs_open_in_root(rootfd, file, O_RDONLY, 0, 0, NULL);
	if (fd < 0)
		return -ENOENT;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (strbuf_read_fd(&sb, fd, 4 << 20) < 0)
		return -EIO;
	char *save = NULL;
	for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = { 0 };
		char *p = line;
		for (int i = 0; i < 4 && p; i++) {
			f[i] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		if (!f[2] || !streq(f[0], name))
			continue;
		uint64_t v;
		if (util_parse_uint64(f[2], &v) < 0 || v > UINT32_MAX)
			return -EINVAL;
		*ret_id = (uint32_t)v;
		if (ret_gid && f[3] && util_parse_uint64(f[3], &v) == 0 && v <= UINT32_MAX)
			*ret_gid = (uint32_t)v;
		return 0;
	}
	return -ENOENT;
}

int engine_spec_resolve_user(const char *rootfs, const char *user, uint32_t *uid, uint32_t *gid,
			     struct berth_error **err)
{
	*uid = *gid = 0;
	if (!user || !*user)
		return 0;
	_cleanup_free_ char *u = xstrdup(user);
	char *g = strchr(u, ':');
	if (g)
		*g++ = '\0';
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	uint64_t v;
	if (util_parse_uint64(u, &v) == 0 && v <= UINT32_MAX) {
		*uid = (uint32_t)v;
	} else if (rootfd < 0 || lookup_db(rootfd, "/etc/passwd", u, uid, gid) < 0) {
		return berth_error_msg(err, EINVAL,
				       "unable to find user %s: no matching entries in passwd file", u);
	}
	if (g && *g) {
		if (util_parse_uint64(g, &v) == 0 && v <= UINT32_MAX)
			*gid = (uint32_t)v;
		else if (rootfd < 0 || lookup_db(rootfd, "/etc/group", g, gid, NULL) < 0)
			return berth_error_msg(err, EINVAL,
					       "unable to find group %s: no matching entries in group "
					       "file",
					       g);
	}
	return 0;
}

/* Does the comma-separated member list of an /etc/group line name user? */
static bool group_lists(const char *members, const char *user)
{
	for (const char *p = members; p && *p;) {
		size_t n = strcspn(p, ",");
		if (n == strlen(user) && !strncmp(p, user, n))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

/* Append the gid of every /etc/group entry (inside rootfd) that lists user as a member. */
static void member_gids(int rootfd, const char *user, json_t *gids)
{
	_cleanup_close_ int fd = fs_open_in_root(rootfd, "/etc/group", O_RDONLY, 0, 0, NULL);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fd < 0 || strbuf_read_fd(&sb, fd, 4 << 20) < 0)
		return;
	char *save = NULL;
	for (char *line = strtok_r(sb.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = { 0 };
		char *p = line;
		for (int i = 0; i < 4 && p; i++) {
			f[i] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		uint64_t v;
		if (f[3] && group_lists(f[3], user) && util_parse_uint64(f[2], &v) == 0 && v <= UINT32_MAX)
			json_array_append_new(gids, json_integer((json_int_t)v));
	}
}

/*
 * Supplementary groups, as dockerd and runc compute them: the primary group
 * (dockerd lists it since 20.10.18), the /etc/group entries that list the user (by name, and only when User
 * names no group), then HostConfig.GroupAdd (numbers, or names in the container's /etc/group).
 */
static int additional_gids(const char *rootfs, const char *user, uint32_t gid_primary, const json_t *hc,
			   json_t **ret, struct berth_error **err)
{
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_json_ json_t *gids = json_pack("[I]", (json_int_t)gid_primary);
	uint64_t v;
	if (user && *user && !strchr(user, ':') && util_parse_uint64(user, &v) < 0 && rootfd >= 0)
		member_gids(rootfd, user, gids);
	size_t i;
	json_t *g;
	json_array_foreach (json_object_get(hc, "GroupAdd"), i, g) {
		const char *s = json_string_value(g);
		uint32_t gid;
		if (!s || !*s)
			return berth_error_msg(err, EINVAL, "invalid GroupAdd entry");
		if (util_parse_uint64(s, &v) == 0 && v <= UINT32_MAX)
			gid = (uint32_t)v;
		else if (rootfd < 0 || lookup_db(rootfd, "/etc/group", s, &gid, NULL) < 0)
			return berth_error_msg(
			    err, EINVAL, "unable to find group %s: no matching entries in group file", s);
		json_array_append_new(gids, json_integer(gid));
	}
	*ret = TAKE_PTR(gids);
	return 0;
}

/* process.user.additionalGids. */
static int set_additional_gids(const char *rootfs, const char *user, const json_t *hc, json_t *process,
			       struct berth_error **err)
{
	_cleanup_json_ json_t *gids = NULL;
	json_t *u = json_object_get(process, "user");
	int r = additional_gids(rootfs, user, (uint32_t)json_integer_value(json_object_get(u, "gid")), hc,
				&gids, err);
	if (r < 0)
		return r;
	json_object_set(u, "additionalGids", gids);
	return 0;
}

static json_t *args_of(const json_t *cfg)
{
	json_t *args = json_array();
	json_array_extend(args, json_object_get(cfg, "Entrypoint"));
	json_array_extend(args, json_object_get(cfg, "Cmd"));
	return args;
}

static json_t *env_of(const json_t *cfg, const json_t *extra, bool tty)
{
	json_t *env = json_array();
	bool has_path = false, has_host = false, has_term = false;
	const json_t *lists[] = { json_object_get(cfg, "Env"), extra };
	for (size_t l = 0; l < 2; l++) {
		size_t i;
		json_t *el;
		json_array_foreach (lists[l], i, el) {
			const char *s = json_string_value(el);
			if (!s || !strchr(s, '='))
				continue; /* "KEY" without value: unset, like docker */
			has_path |= startswith(s, "PATH=");
			has_host |= startswith(s, "HOSTNAME=");
			has_term |= startswith(s, "TERM=");
			json_array_append(env, el);
		}
	}
	if (!has_path)
		json_array_insert_new(env, 0,
				      json_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
						  "/sbin:/bin"));
	if (!has_host && json_string_value(json_object_get(cfg, "Hostname")))
		json_array_append_new(
		    env, json_sprintf("HOSTNAME=%s", json_string_value(json_object_get(cfg, "Hostname"))));
	if (tty && !has_term)
		json_array_append_new(env, json_string("TERM=xterm"));
	return env;
}

static bool no_new_privs(const json_t *hc)
{
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(hc, "SecurityOpt"), i, el) {
		const char *s = json_string_value(el);
		if (s && (streq(s, "no-new-privileges") || streq(s, "no-new-privileges:true") ||
			  streq(s, "no-new-privileges=true")))
			return true;
	}
	return false;
}

static bool unconfined_seccomp(const json_t *hc)
{
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(hc, "SecurityOpt"), i, el) {
		const char *s = json_string_value(el);
		if (s && (streq(s, "seccomp=unconfined") || streq(s, "seccomp:unconfined")))
			return true;
	}
	return false;
}

static json_t *process_of(const json_t *cfg, const json_t *hc, const json_t *args, const json_t *extra_env,
			  bool tty, const char *cwd, uint32_t uid, uint32_t gid)
{
	return json_pack("{s:b,s:{s:I,s:I},s:O,s:o,s:s,s:o,s:b}", "terminal", tty, "user", "uid",
			 (json_int_t)uid, "gid", (json_int_t)gid, "args", args, "env",
			 env_of(cfg, extra_env, tty), "cwd", cwd && *cwd ? cwd : "/", "capabilities",
			 caps_object(hc), "noNewPrivileges", no_new_privs(hc));
}

static void add_mount(json_t *mounts, const char *dst, const char *type, const char *src, const char *opts)
{
	json_t *o = json_array();
	_cleanup_free_ char *copy = xstrdup(opts);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(o, json_string(t));
	json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type,
						"source", src, "options", o));
}

/* Mount points (volumes, binds, --mount tmpfs) then HostConfig.Tmpfs. */
static int user_mounts(struct engine *e, struct container *c, const char *rootfs, json_t *mounts,
		       struct berth_error **err)
{
	int r;
	if (!c->mounts) { /* a container created before mount points were recorded */
		json_t *plan = NULL;
		if ((r = engine_mounts_plan(e, c->config, c->hostconfig, &plan, err)) < 0)
			return r;
		pthread_mutex_lock(&e->lock);
		c->mounts = plan;
		engine_container_save(e, c, NULL);
		pthread_mutex_unlock(&e->lock);
	}
	bool changed = false;
	r = engine_mounts_to_oci(e, c, rootfs, mounts, &changed, err);
	if (changed) { /* copy-up done: never again for this container */
		pthread_mutex_lock(&e->lock);
		engine_container_save(e, c, NULL);
		pthread_mutex_unlock(&e->lock);
	}
	if (r < 0)
		return r;
	const char *k;
	json_t *v;
	json_object_foreach (json_object_get(c->hostconfig, "Tmpfs"), k, v) {
		const char *o = json_string_value(v);
		_cleanup_free_ char *opts =
		    xasprintf("nosuid,nodev,noexec%s%s", o && *o ? "," : "", o ? o : "");
		add_mount(mounts, k, "tmpfs", "tmpfs", opts);
	}
	return 0;
}

static bool shm_mounted(const char *path)
{
	struct stat a, b;
	_cleanup_free_ char *parent = xasprintf("%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

char *engine_shm_path(struct engine *e, const char *id)
{
	_cleanup_free_ char *dir = engine_container_dir(e, id);
	return xasprintf("%s/shm", dir);
}

void engine_shm_unmount(struct engine *e, const char *id)
{
	_cleanup_free_ char *path = engine_shm_path(e, id);
	if (shm_mounted(path) && umount2(path, MNT_DETACH) < 0)
		log_fields(LOG_LEVEL_WARN, "unmounting a container's shm failed", "path", path, "error",
			   strerror(errno), NULL);
}

/*
 * dockerd's /dev/shm of an IPC-sharing container: a shareable one's is a tmpfs on the host
 * (<container dir>/shm, mounted at its start, unmounted when it exits or is removed) bound into it
 * and into every container that joins its IPC namespace, so POSIX shm is shared as well;
 * --ipc host binds the host's. *ret stays NULL for a private tmpfs of the container's own.
 */
static int shm_source(struct engine *e, struct container *c, char **ret, struct berth_error **err)
{
	*ret = NULL;
	const char *ipc = json_string_value(json_object_get(c->hostconfig, "IpcMode"));
	if (ipc && streq(ipc, "shareable")) {
		_cleanup_free_ char *path = engine_shm_path(e, c->id);
		int r = fs_mkdir_p(path, 0700, err);
		if (r < 0)
			return r;
		if (!shm_mounted(path)) {
			json_int_t shm = json_integer_value(json_object_get(c->hostconfig, "ShmSize"));
			_cleanup_free_ char *o =
			    xasprintf("mode=1777,size=%lld", (long long)(shm > 0 ? shm : 64LL << 20));
			if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, o) < 0)
				return berth_error_errno(err, "mount shm on %s", path);
		}
		*ret = TAKE_PTR(path);
		return 0;
	}
	/* a joiner: its donor's (a joiner itself: the donor's donor, as dockerd's ShmPath) */
	pthread_mutex_lock(&e->lock);
	for (int depth = 0; depth < 8 && ipc && startswith(ipc, "container:"); depth++) {
		struct container *t;
		if (engine_container_find_locked(e, ipc + strlen("container:"), &t, NULL) < 0)
			break;
		const char *tipc = json_string_value(json_object_get(t->hostconfig, "IpcMode"));
		if (tipc && streq(tipc, "shareable"))
			*ret = engine_shm_path(e, t->id);
		else if (tipc && streq(tipc, "host"))
			*ret = xstrdup("/dev/shm");
		ipc = tipc && startswith(tipc, "container:") && !*ret ? tipc : NULL;
		engine_container_unref(t);
	}
	pthread_mutex_unlock(&e->lock);
	return 0;
}

static json_t *mounts_of(struct engine *e, struct container *c, bool privileged, const char *shm_src)
{
	json_t *m = json_array();
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	add_mount(m, "/proc", "proc", "proc", "nosuid,noexec,nodev");
	add_mount(m, "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k");
	add_mount(m, "/dev/pts", "devpts", "devpts",
		  "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5");
	/* /dev/shm: HostConfig.ShmSize bytes (0: docker's 64 MiB); the host's with --ipc host, none with
	 * --ipc none */
	const char *ipc = json_string_value(json_object_get(c->hostconfig, "IpcMode"));
	json_int_t shm = json_integer_value(json_object_get(c->hostconfig, "ShmSize"));
	if (ipc && streq(ipc, "host")) {
		add_mount(m, "/dev/shm", "bind", "/dev/shm", "rbind,rprivate");
	} else if (shm_src) {
		add_mount(m, "/dev/shm", "bind", shm_src, "rbind,rprivate");
	} else if (!ipc || !streq(ipc, "none")) {
		_cleanup_free_ char *o = xasprintf("nosuid,noexec,nodev,mode=1777,size=%lld",
						   (long long)(shm > 0 ? shm : 64LL << 20));
		add_mount(m, "/dev/shm", "tmpfs", "shm", o);
	}
	add_mount(m, "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev");
	add_mount(m, "/sys", "sysfs", "sysfs", privileged ? "nosuid,noexec,nodev" : "nosuid,noexec,nodev,ro");
	add_mount(m, "/sys/fs/cgroup", "cgroup", "cgroup",
		  privileged ? "nosuid,noexec,nodev,relatime" : "nosuid,noexec,nodev,relatime,ro");
	const char *files[] = { "hostname", "hosts", "resolv.conf" };
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		_cleanup_free_ char *src = xasprintf("%s/%s", dir, files[i]);
		_cleanup_free_ char *dst = xasprintf("/etc/%s", files[i]);
		add_mount(m, dst, "bind", src, "rbind,rprivate");
	}
	return m;
}

static json_t *devices_rules(void)
{
	return json_pack("[{s:b,s:s},{s:b,s:s,s:s},{s:b,s:s,s:s},"
			 "{s:b,s:s,s:i,s:i,s:s},{s:b,s:s,s:i,s:i,s:s},{s:b,s:s,s:i,s:i,s:s},"
			 "{s:b,s:s,s:i,s:i,s:s},{s:b,s:s,s:i,s:i,s:s},{s:b,s:s,s:i,s:i,s:s},"
			 "{s:b,s:s,s:i,s:s},{s:b,s:s,s:i,s:i,s:s}]",
			 "allow", 0, "access", "rwm", "allow", 1, "type", "c", "access", "m", "allow", 1,
			 "type", "b", "access", "m", "allow", 1, "type", "c", "major", 1, "minor", 3,
			 "access", "rwm", "allow", 1, "type", "c", "major", 1, "minor", 5, "access", "rwm",
			 "allow", 1, "type", "c", "major", 1, "minor", 7, "access", "rwm", "allow", 1, "type",
			 "c", "major", 1, "minor", 8, "access", "rwm", "allow", 1, "type", "c", "major", 1,
			 "minor", 9, "access", "rwm", "allow", 1, "type", "c", "major", 5, "minor", 0,
			 "access", "rwm", "allow", 1, "type", "c", "major", 136, "access", "rwm", "allow", 1,
			 "type", "c", "major", 5, "minor", 2, "access", "rwm");
}

static void set_int_if(json_t *o, const char *key, json_int_t v)
{
	if (v != 0)
		json_object_set_new(o, key, json_integer(v));
}

json_t *engine_spec_resources(const json_t *hc)
{
	json_t *r = json_object();
	json_int_t mem = json_integer_value(json_object_get(hc, "Memory"));
	json_int_t swap = json_integer_value(json_object_get(hc, "MemorySwap"));
	if (mem > 0) {
		json_t *m = json_pack("{s:I}", "limit", mem);
		set_int_if(m, "swap", swap);
		json_object_set_new(r, "memory", m);
	}
	json_t *cpu = json_object();
	json_int_t nano = json_integer_value(json_object_get(hc, "NanoCpus"));
	set_int_if(cpu, "shares", json_integer_value(json_object_get(hc, "CpuShares")));
	if (nano > 0) {
		json_object_set_new(cpu, "period", json_integer(100000));
		json_object_set_new(cpu, "quota", json_integer(nano / 10000));
	} else {
		set_int_if(cpu, "period", json_integer_value(json_object_get(hc, "CpuPeriod")));
		set_int_if(cpu, "quota", json_integer_value(json_object_get(hc, "CpuQuota")));
	}
	const char *keys[][2] = { { "CpusetCpus", "cpus" }, { "CpusetMems", "mems" } };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = json_string_value(json_object_get(hc, keys[i][0]));
		if (v && *v)
			json_object_set_new(cpu, keys[i][1], json_string(v));
	}
	if (json_object_size(cpu))
		json_object_set_new(r, "cpu", cpu);
	else
		json_decref(cpu);
	json_int_t pids = json_integer_value(json_object_get(hc, "PidsLimit"));
	if (pids != 0)
		json_object_set_new(r, "pids", json_pack("{s:I}", "limit", pids > 0 ? pids : (json_int_t)-1));
	json_int_t blkio = json_integer_value(json_object_get(hc, "BlkioWeight"));
	if (blkio > 0)
		json_object_set_new(r, "blockIO", json_pack("{s:I}", "weight", blkio));
	return r;
}

static json_t *resources_of(const json_t *hc, bool privileged)
{
	json_t *r = engine_spec_resources(hc);
	json_object_set_new(r, "devices",
			    privileged ? json_pack("[{s:b,s:s}]", "allow", 1, "access", "rwm")
				       : devices_rules());
	return r;
}

/* Host device nodes under dir (docker's privileged /dev), skipping pseudo-fs directories. */
static void host_devices(const char *dir, int depth, json_t *out)
{
	static const char *const skip[] = { "pts", "shm", "fd", "mqueue", "console", ".lxc", ".udev" };
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && depth < 4 && (de = readdir(d)) && json_array_size(out) < 4096) {
		bool skipped = de->d_name[0] == '.' && (!de->d_name[1] || de->d_name[1] == '.');
		for (size_t i = 0; i < ARRAY_SIZE(skip) && depth == 0; i++)
			skipped = skipped || streq(de->d_name, skip[i]);
		if (skipped)
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			host_devices(p, depth + 1, out);
		else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
			json_array_append_new(out,
					      json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "path", p, "type",
							S_ISCHR(st.st_mode) ? "c" : "b", "major",
							(json_int_t)major(st.st_rdev), "minor",
							(json_int_t)minor(st.st_rdev), "fileMode",
							(json_int_t)(st.st_mode & 0777), "uid",
							(json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid));
	}
}

/*
 * /proc/PID/ns/TYPE of the running container that `mode` ("container:NAME")
 * names, for --pid/--ipc container:NAME (what: "PID", "IPC", dockerd's words).
 */
static int joined_ns(struct engine *e, const char *mode, const char *type, const char *what, char **ret,
		     struct berth_error **err)
{
	struct container *t;
	pthread_mutex_lock(&e->lock);
	int r = engine_container_find_locked(e, mode + strlen("container:"), &t, err);
	if (r >= 0) {
		const char *tipc = json_string_value(json_object_get(t->hostconfig, "IpcMode"));
		if (streq(type, "ipc") && (t->state != ENGINE_RUNNING || t->pid <= 0))
			r = berth_error_msg(err, EINVAL,
					    "can't join IPC of container %s: Container %s is not running",
					    t->id, t->id);
		else if (t->state != ENGINE_RUNNING || t->pid <= 0)
			r = berth_error_msg(err, EINVAL, "cannot join %s of a non running container: %s",
					    what, t->id);
		/* dockerd: only a donor with a /dev/shm of its own on the host (shareable; host's,
		 * or one it joined) may be joined; the default, private, may not */
		else if (streq(type, "ipc") && !(tipc && (streq(tipc, "shareable") || streq(tipc, "host") ||
							  startswith(tipc, "container:"))))
			r = berth_error_msg(err, EINVAL,
					    "can't join IPC of container %s: non-shareable IPC (hint: use "
					    "IpcMode:shareable for the donor container)",
					    t->id);
		else
			*ret = xasprintf("/proc/%d/ns/%s", (int)t->pid, type);
		engine_container_unref(t);
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

/*
 * linux.namespaces: pid, ipc and uts follow PidMode, IpcMode and UTSMode
 * ("host": the host's, none of our own; "container:NAME": that container's),
 * a cgroup one CgroupnsMode "private", the network one NetworkMode (netns: a
 * path to join).
 */
static int namespaces_of(struct engine *e, const json_t *hc, const char *netns, json_t **ret,
			 struct berth_error **err)
{
	static const struct {
		const char *key, *type, *what;
	} modes[] = { { "PidMode", "pid", "PID" }, { "IpcMode", "ipc", "IPC" }, { "UTSMode", "uts", NULL } };
	_cleanup_json_ json_t *ns = json_pack("[{s:s}]", "type", "mount");
	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		const char *mode = json_string_value(json_object_get(hc, modes[i].key));
		if (mode && streq(mode, "host"))
			continue;
		if (mode && modes[i].what && startswith(mode, "container:")) {
			_cleanup_free_ char *path = NULL;
			int r = joined_ns(e, mode, modes[i].type, modes[i].what, &path, err);
			if (r < 0)
				return r;
			json_array_append_new(ns,
					      json_pack("{s:s,s:s}", "type", modes[i].type, "path", path));
			continue;
		}
		json_array_append_new(ns, json_pack("{s:s}", "type", modes[i].type));
	}
	const char *cgns = json_string_value(json_object_get(hc, "CgroupnsMode"));
	if (cgns && streq(cgns, "private"))
		json_array_append_new(ns, json_pack("{s:s}", "type", "cgroup"));
	const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
	if (!mode || !streq(mode, "host"))
		json_array_append_new(ns, netns ? json_pack("{s:s,s:s}", "type", "network", "path", netns)
						: json_pack("{s:s}", "type", "network"));
	*ret = TAKE_PTR(ns);
	return 0;
}

/*
 * HostConfig.Devices ({PathOnHost, PathInContainer, CgroupPermissions}): the
 * host's device node (every node under it for a directory, as dockerd) in
 * linux.devices and allowed in the device cgroup.
 */
static int add_device(const char *host, const char *ctr, const char *perms, json_t *devs, json_t *rules,
		      int depth, struct berth_error **err)
{
	struct stat st;
	if (stat(host, &st) < 0) {
		int e = errno;
		_cleanup_free_ char *why =
		    xstrdup(strerror(e)); /* Go's spelling: "no such file or directory" */
		why[0] = (char)tolower((unsigned char)why[0]);
		return berth_error_msg(err, e == ENOENT ? ENOENT : EINVAL,
				       "error gathering device information while adding custom device "
				       "\"%s\": %s",
				       host, why);
	}
	if (S_ISDIR(st.st_mode)) {
		_cleanup_closedir_ DIR *d = opendir(host);
		struct dirent *de;
		while (d && depth < 8 && (de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			_cleanup_free_ char *h = xasprintf("%s/%s", host, de->d_name);
			_cleanup_free_ char *c = xasprintf("%s/%s", ctr, de->d_name);
			struct stat sub;
			if (lstat(h, &sub) < 0 ||
			    !(S_ISDIR(sub.st_mode) || S_ISCHR(sub.st_mode) || S_ISBLK(sub.st_mode)))
				continue;
			int r = add_device(h, c, perms, devs, rules, depth + 1, err);
			if (r < 0)
				return r;
		}
		return 0;
	}
	if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) {
		if (depth > 0)
			return 0;
		return berth_error_msg(err, EINVAL,
				       "error gathering device information while adding custom device "
				       "\"%s\": not a device node",
				       host);
	}
	const char *type = S_ISCHR(st.st_mode) ? "c" : "b";
	json_array_append_new(devs,
			      json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "path", ctr, "type", type, "major",
					(json_int_t)major(st.st_rdev), "minor", (json_int_t)minor(st.st_rdev),
					"fileMode", (json_int_t)(st.st_mode & 0777), "uid",
					(json_int_t)st.st_uid, "gid", (json_int_t)st.st_gid));
	json_array_append_new(rules, json_pack("{s:b,s:s,s:I,s:I,s:s}", "allow", 1, "type", type, "major",
					       (json_int_t)major(st.st_rdev), "minor",
					       (json_int_t)minor(st.st_rdev), "access", perms));
	return 0;
}

static int devices_of(const json_t *hc, json_t *linux_, struct berth_error **err)
{
	json_t *devs = json_object_get(linux_, "devices");
	json_t *rules = json_object_get(json_object_get(linux_, "resources"), "devices");
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(hc, "Devices"), i, d) {
		const char *host = json_string_value(json_object_get(d, "PathOnHost"));
		const char *ctr = json_string_value(json_object_get(d, "PathInContainer"));
		const char *perms = json_string_value(json_object_get(d, "CgroupPermissions"));
		if (!host || !*host)
			return berth_error_msg(err, EINVAL, "invalid device: PathOnHost must be set");
		if (!devs) {
			devs = json_array();
			json_object_set_new(linux_, "devices", devs);
		}
		int r = add_device(host, ctr && *ctr ? ctr : host, perms && *perms ? perms : "rwm", devs,
				   rules, 0, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* linux.seccomp: none (privileged, unconfined), the user's profile or the default. */
static int linux_seccomp_of(const json_t *hc, bool privileged, json_t *linux_, struct berth_error **err)
{
	if (privileged || unconfined_seccomp(hc))
		return 0;
	_cleanup_json_ json_t *caps = capabilities(hc);
	json_t *custom = NULL;
	int r = engine_seccomp_custom_profile(hc, caps, &custom, err);
	if (r < 0)
		return r;
	json_object_set_new(linux_, "seccomp", custom ? custom : engine_seccomp_default_profile(caps));
	return 0;
}

/* --init: the init binary bound read-only at /sbin/docker-init, in front of the command. */
static int init_of(struct engine *e, const json_t *hc, json_t *mounts, json_t *args, struct berth_error **err)
{
	if (!json_is_true(json_object_get(hc, "Init")))
		return 0;
	if (access(e->init_path, X_OK) < 0)
		return berth_error_errno(err, "--init: init binary '%s'", e->init_path);
	add_mount(mounts, "/sbin/docker-init", "bind", e->init_path, "bind,ro");
	json_array_insert_new(args, 0, json_string("--"));
	json_array_insert_new(args, 0, json_string("/sbin/docker-init"));
	return 0;
}

static int linux_of(struct engine *e, struct container *c, const char *netns, bool privileged, json_t **ret,
		    struct berth_error **err)
{
	const json_t *hc = c->hostconfig;
	_cleanup_free_ char *cg = engine_container_cgroup_path(e, c);
	json_t *ns = NULL;
	int r = namespaces_of(e, hc, netns, &ns, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *linux_ = json_pack("{s:o,s:o,s:s}", "namespaces", ns, "resources",
						  resources_of(hc, privileged), "cgroupsPath", cg);
	if ((r = linux_seccomp_of(hc, privileged, linux_, err)) < 0)
		return r;
	if (!privileged) { /* the container's own lists (a copy: containers made before they were stored lack
			      them) */
		_cleanup_json_ json_t *paths =
		    json_pack("{s:O?,s:O?}", "MaskedPaths", json_object_get(hc, "MaskedPaths"),
			      "ReadonlyPaths", json_object_get(hc, "ReadonlyPaths"));
		engine_spec_default_paths(paths);
		json_object_set(linux_, "maskedPaths", json_object_get(paths, "MaskedPaths"));
		json_object_set(linux_, "readonlyPaths", json_object_get(paths, "ReadonlyPaths"));
	} else {
		json_t *devs = json_array();
		host_devices("/dev", 0, devs);
		json_object_set_new(linux_, "devices", devs);
	}
	if ((r = devices_of(hc, linux_, err)) < 0)
		return r;
	*ret = TAKE_PTR(linux_);
	return 0;
}

static int rlimits_of(struct engine *e, const json_t *hc, json_t *process, struct berth_error **err)
{
	_cleanup_json_ json_t *all =
	    engine_ulimits_effective(e->default_ulimits, json_object_get(hc, "Ulimits"));
	if (!json_array_size(all))
		return 0;
	json_t *rl = NULL;
	int r = engine_ulimits_check(all, "HostConfig.Ulimits", &rl, err);
	if (r < 0)
		return r;
	json_object_set_new(process, "rlimits", rl);
	return 0;
}

int engine_spec_write(struct engine *e, struct container *c, const char *rootfs, const char *netns,
		      struct berth_error **err)
{
	const json_t *cfg = c->config, *hc = c->hostconfig;
	bool privileged = json_is_true(json_object_get(hc, "Privileged"));
	bool tty = json_is_true(json_object_get(cfg, "Tty"));
	uint32_t uid, gid;
	int r = engine_spec_resolve_user(rootfs, json_string_value(json_object_get(cfg, "User")), &uid, &gid,
					 err);
	if (r < 0)
		return r;
	_cleanup_free_ char *shm_src = NULL;
	if ((r = shm_source(e, c, &shm_src, err)) < 0)
		return r;
	_cleanup_json_ json_t *mounts = mounts_of(e, c, privileged, shm_src);
	_cleanup_json_ json_t *args = args_of(cfg);
	_cleanup_json_ json_t *linux_ = NULL;
	if ((r = user_mounts(e, c, rootfs, mounts, err)) < 0 || (r = init_of(e, hc, mounts, args, err)) < 0 ||
	    (r = linux_of(e, c, netns, privileged, &linux_, err)) < 0)
		return r;
	_cleanup_json_ json_t *process = process_of(
	    cfg, hc, args, NULL, tty, json_string_value(json_object_get(cfg, "WorkingDir")), uid, gid);
	if (!process)
		return berth_error_msg(err, EINVAL, "build runtime spec: invalid process");
	if ((r = rlimits_of(e, hc, process, err)) < 0 ||
	    (r = set_additional_gids(rootfs, json_string_value(json_object_get(cfg, "User")), hc, process,
				     err)) < 0)
		return r;
	json_int_t oom = json_integer_value(json_object_get(hc, "OomScoreAdj"));
	if (oom != 0)
		json_object_set_new(process, "oomScoreAdj", json_integer(oom));
	_cleanup_json_ json_t *spec =
	    json_pack("{s:s,s:O,s:{s:s,s:b},s:O,s:O}", "ociVersion", "1.0.2", "process", process, "root",
		      "path", rootfs, "readonly", json_is_true(json_object_get(hc, "ReadonlyRootfs")),
		      "mounts", mounts, "linux", linux_);
	if (!spec)
		return berth_error_msg(err, EINVAL, "build runtime spec: invalid configuration");
	/* no hostname of our own in the host's UTS namespace (the runtime refuses one) */
	const char *uts = json_string_value(json_object_get(hc, "UTSMode"));
	if (!uts || !streq(uts, "host"))
		json_object_set(spec, "hostname", json_object_get(cfg, "Hostname"));
	_cleanup_free_ char *text = json_dumps(spec, JSON_COMPACT);
	_cleanup_free_ char *dir = engine_container_exec_dir(e, c->id);
	_cleanup_free_ char *path = xasprintf("%s/config.json", dir);
	return fs_write_file_replace(path, text, strlen(text), 0600, err);
}

int engine_spec_exec_process(struct engine *e, struct container *c, const json_t *xc, json_t **ret,
			     struct berth_error **err)
{
	const json_t *cmd = json_object_get(xc, "Cmd");
	if (!json_is_array(cmd) || json_array_size(cmd) == 0)
		return berth_error_msg(err, EINVAL, "No exec command specified");
	const char *user = json_string_value(json_object_get(xc, "User"));
	if (!user || !*user)
		user = json_string_value(json_object_get(c->config, "User"));
	uint32_t uid, gid;
	int r = engine_spec_resolve_user(c->rootfs ? c->rootfs : "/nonexistent", user, &uid, &gid, err);
	if (r < 0)
		return r;
	const char *cwd = json_string_value(json_object_get(xc, "WorkingDir"));
	if (!cwd || !*cwd)
		cwd = json_string_value(json_object_get(c->config, "WorkingDir"));
	_cleanup_json_ json_t *hc = json_deep_copy(c->hostconfig);
	if (json_is_true(json_object_get(xc, "Privileged")))
		json_object_set_new(hc, "Privileged", json_true());
	json_t *p = process_of(c->config, hc, cmd, json_object_get(xc, "Env"),
			       json_is_true(json_object_get(xc, "Tty")), cwd, uid, gid);
	if (!p)
		return berth_error_msg(err, EINVAL, "build exec process: invalid configuration");
	r = set_additional_gids(c->rootfs ? c->rootfs : "/nonexistent", user, hc, p, err);
	if (r < 0) {
		json_decref(p);
		return r;
	}
	*ret = p;
	return 0;
}
