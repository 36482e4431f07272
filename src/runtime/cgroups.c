/*
 * cgroups.c - detection of the cgroup layout, cgroupsPath resolution, and the
 * file helpers the v1/v2 managers share. Detection costs one statfs.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "common/fs.h"
#include "runtime/cgroups.h"

const char *runtime_cgroup_root(void)
{
	const char *r = getenv("BERTH_CGROUP_ROOT");
	return r && *r ? r : "/sys/fs/cgroup";
}

enum cgroup_kind runtime_cgroup_detect(void)
{
	struct statfs fs;
	if (statfs(runtime_cgroup_root(), &fs) < 0)
		return CGROUP_NONE;
	if (fs.f_type == CGROUP2_SUPER_MAGIC)
		return CGROUP_V2;
	return CGROUP_V1;
}

extern const struct cgroup_ops runtime_cgroup_v1_ops, runtime_cgroup_v2_ops;

const struct cgroup_ops *runtime_cgroup_ops_for(enum cgroup_kind k)
{
	switch (k) {
	case CGROUP_V1: return &runtime_cgroup_v1_ops;
	case CGROUP_V2: return &runtime_cgroup_v2_ops;
	default: return NULL;
	}
}

/* "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice" (systemd's slice nesting). */
static int expand_slice(const char *slice, struct strbuf *out, struct berth_error **err)
{
	if (!endswith(slice, ".slice") || strchr(slice, '/'))
		return berth_error_msg(err, EINVAL, "'linux.cgroupsPath': invalid slice '%s'", slice);
	if (streq(slice, "-.slice"))
		return 0;
	size_t n = strlen(slice) - 6;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || slice[i] == '-') {
			if (i == 0 || slice[i - 1] == '-')
				return berth_error_msg(err, EINVAL, "'linux.cgroupsPath': invalid slice '%s'",
						       slice);
			strbuf_addch(out, '/');
			strbuf_add(out, slice, i);
			strbuf_addstr(out, ".slice");
		}
	}
	return 0;
}

static int systemd_path(const char *p, struct strbuf *out, struct berth_error **err)
{
	_cleanup_free_ char *copy = xstrdup(p);
	char *prefix = strchr(copy, ':');
	char *name = prefix ? strchr(prefix + 1, ':') : NULL;
	if (!prefix || !name || strchr(name + 1, ':') || !name[1])
		return berth_error_msg(err, EINVAL,
				       "'linux.cgroupsPath': expected 'slice:prefix:name', got '%s'", p);
	*prefix++ = 0;
	*name++ = 0;
	int r = expand_slice(*copy ? copy : "system.slice", out, err);
	if (r < 0)
		return r;
	if (strchr(prefix, '/') || strchr(name, '/'))
		return berth_error_msg(err, EINVAL, "'linux.cgroupsPath': invalid systemd unit in '%s'", p);
	if (endswith(name, ".slice"))
		strbuf_addf(out, "/%s", name);
	else
		strbuf_addf(out, "/%s%s%s.scope", prefix, *prefix ? "-" : "", name);
	return 0;
}

/* The caller's own cgroup path in the v1 "memory" hierarchy or the v2 hierarchy. */
static int own_cgroup(struct strbuf *out)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 16, &sb, NULL) < 0)
		return -EIO;
	bool v2 = runtime_cgroup_detect() == CGROUP_V2;
	for (char *line = sb.buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = 0;
		if ((v2 && streq(c1 + 1, "")) || (!v2 && streq(c1 + 1, "pids"))) {
			strbuf_addstr(out, streq(c2 + 1, "/") ? "" : c2 + 1);
			return 0;
		}
	}
	return 0;
}

static bool resources_need_cgroup(const struct runtime_resources *r)
{
	return r->set || r->n_hugepages || r->unified || r->n_blkio_weight_devices ||
	       r->n_throttle_read_bps || r->n_throttle_write_bps || r->n_throttle_read_iops ||
	       r->n_throttle_write_iops;
}

int runtime_cgroup_path_resolve(const char *cgroups_path, const char *id, const struct runtime_resources *res,
				bool has_resources, bool systemd, char **ret, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r;
	if (systemd)
		return berth_error_msg(
		    err, EOPNOTSUPP,
		    "--systemd-cgroup: the systemd cgroup manager (D-Bus) is not supported; "
		    "omit the flag: 'slice:prefix:name' paths are managed directly via cgroupfs");
	if (!cgroups_path) {
		if (!has_resources || !resources_need_cgroup(res)) {
			*ret = NULL;
			return 0;
		}
		*ret = xasprintf("/berth/%s", id);
		return 0;
	}
	if (cgroups_path[0] == '/')
		strbuf_addstr(&sb, cgroups_path);
	else if (strchr(cgroups_path, ':')) {
		if ((r = systemd_path(cgroups_path, &sb, err)) < 0)
			return r;
	} else {
		own_cgroup(&sb);
		strbuf_addf(&sb, "/%s", cgroups_path);
	}
	_cleanup_free_ char *clean = fs_path_clean(sb.buf);
	if (streq(clean, "/") || streq(clean, ""))
		return berth_error_msg(err, EINVAL, "'linux.cgroupsPath': refusing the root cgroup");
	*ret = TAKE_PTR(clean);
	return 0;
}

int runtime_cg_write(const char *dir, const char *file, const char *value, struct berth_error **err)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return berth_error_errno(err, "open '%s'", p);
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	if (n < 0)
		return berth_error_errno(err, "write '%s' to '%s'", value, p);
	if ((size_t)n != len)
		return berth_error_set(err, EIO, "short write to '%s'", p);
	return 0;
}

int runtime_cg_read(const char *dir, const char *file, struct strbuf *sb)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
	return fs_read_file_at(AT_FDCWD, p, 1 << 20, sb, NULL);
}

uint64_t runtime_cg_read_key_u64(const char *dir, const char *file, const char *key)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(dir, file, &sb) < 0)
		return 0;
	size_t kl = strlen(key);
	for (char *l = sb.buf; l && *l;) {
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ')
			return strtoull(l + kl + 1, NULL, 10);
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return 0;
}

int runtime_cg_read_u64(const char *dir, const char *file, uint64_t *ret)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = runtime_cg_read(dir, file, &sb);
	if (r < 0)
		return r;
	strbuf_trim_trailing(&sb);
	if (streq(sb.buf, "max")) {
		*ret = 0;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(sb.buf, &end, 10);
	if (errno || end == sb.buf)
		return -EINVAL;
	*ret = v;
	return 0;
}

int runtime_cg_read_pids(const char *dir, pid_t **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = runtime_cg_read(dir, "cgroup.procs", &sb);
	if (r < 0)
		return berth_error_set(err, r, "read '%s/cgroup.procs'", dir);
	size_t n = 0, cap = 16;
	_cleanup_free_ pid_t *v = xcalloc(cap, sizeof(pid_t));
	for (char *s = sb.buf; *s;) {
		char *end;
		long p = strtol(s, &end, 10);
		if (end == s)
			break;
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(pid_t));
		v[n++] = (pid_t)p;
		s = end;
		while (*s == '\n')
			s++;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}
