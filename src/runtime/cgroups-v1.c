/*
 * cgroups-v1.c - the cgroup v1 manager (also used on hybrid hosts): one
 * directory per controller hierarchy, limits written file by file. The
 * devices controller gets the spec's rules followed by the allowlist for the
 * default devices, as runc does, so a "deny all" spec still has /dev/null.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/process.h"
#include "runtime/cgroups.h"

/*
 * Every v1 hierarchy mounted under the cgroup root: its real directories
 * ("memory", "cpu,cpuacct", "systemd", and the hybrid "unified"), found once
 * with readdir. Co-mount aliases ("cpu" -> "cpu,cpuacct") are symlinks: they
 * are not listed, paths through them still resolve.
 */
#define CG_MAX_HIERARCHIES 32
const char *const *runtime_cgroup_v1_controllers(void)
{
	static char names[CG_MAX_HIERARCHIES][64];
	static const char *present[CG_MAX_HIERARCHIES + 1];
	static char done_for[4096]; /* the root the list was made for (tests move it) */
	/* the engine's threads call the library (runtime/ops.h, stats): one fills the list, none reads
	 * it half-made */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	if (streq(done_for, runtime_cgroup_root())) {
		pthread_mutex_unlock(&lock);
		return present;
	}
	size_t n = 0;
	_cleanup_closedir_ DIR *d = opendir(runtime_cgroup_root());
	/* On the real root, only mount points are hierarchies: a stray directory on the
	 * tmpfs (another tool's "cpusetfoo") is not a controller. Tests use plain dirs. */
	bool mounts_only = streq(runtime_cgroup_root(), "/sys/fs/cgroup");
	struct stat rst, st;
	if (d && fstat(dirfd(d), &rst) < 0)
		mounts_only = false;
	struct dirent *de;
	while (d && (de = readdir(d)) && n < CG_MAX_HIERARCHIES) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(names[0]))
			continue;
		if (mounts_only && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    st.st_dev == rst.st_dev)
			continue;
		snprintf(names[n], sizeof(names[n]), "%s", de->d_name);
		present[n] = names[n];
		n++;
	}
	present[n] = NULL;
	snprintf(done_for, sizeof(done_for), "%s", runtime_cgroup_root());
	pthread_mutex_unlock(&lock);
	return present;
}

static char *ctrl_dir(const char *ctrl, const char *path)
{
	return xasprintf("%s/%s%s", runtime_cgroup_root(), ctrl, path);
}

static bool has_ctrl(const char *ctrl)
{
	for (const char *const *c = runtime_cgroup_v1_controllers(); *c; c++)
		if (streq(*c, ctrl))
			return true;
	return false;
}

/* cpuset: a new cgroup starts with empty cpus/mems; copy them down level by level. */
static int cpuset_init(const char *path, struct berth_error **err)
{
	_cleanup_free_ char *full = ctrl_dir("cpuset", path);
	size_t base = strlen(runtime_cgroup_root()) + strlen("/cpuset");
	for (size_t i = base + 1; i <= strlen(full); i++) {
		if (full[i] != '/' && full[i] != 0)
			continue;
		char save = full[i];
		full[i] = 0;
		_cleanup_free_ char *parent = xstrndup(full, strrchr(full, '/') - full);
		for (int k = 0; k < 2; k++) {
			const char *f = k ? "cpuset.mems" : "cpuset.cpus";
			_cleanup_strbuf_ struct strbuf cur = STRBUF_INIT, up = STRBUF_INIT;
			runtime_cg_read(full, f, &cur);
			strbuf_trim_trailing(&cur);
			if (cur.len)
				continue;
			runtime_cg_read(parent, f, &up);
			strbuf_trim_trailing(&up);
			int r = runtime_cg_write(full, f, up.buf, err);
			if (r < 0)
				return r;
		}
		full[i] = save;
	}
	return 0;
}

/* The leaf first: its parents usually exist (one syscall instead of one per level). */
static int mkdir_leaf_first(const char *d, struct berth_error **err)
{
	if (mkdir(d, 0755) == 0 || errno == EEXIST)
		return 0;
	return fs_mkdir_p(d, 0755, err);
}

static int v1_create(const char *path, struct berth_error **err)
{
	if (path[0] != '/') /* a relative path would create directories beside the hierarchies */
		return berth_error_msg(err, EINVAL, "cgroup path '%s' is not absolute", path);
	for (const char *const *c = runtime_cgroup_v1_controllers(); *c; c++) {
		_cleanup_free_ char *d = ctrl_dir(*c, path);
		int r = mkdir_leaf_first(d, err);
		if (r < 0) {
			if (streq(*c, "unified") || streq(*c, "systemd"))
				continue;
			return r;
		}
		if (streq(*c, "cpuset") && (r = cpuset_init(path, err)) < 0)
			return r;
	}
	return 0;
}

static int v1_destroy(const char *path, struct berth_error **err)
{
	int ret = 0;
	for (const char *const *c = runtime_cgroup_v1_controllers(); *c; c++) {
		_cleanup_free_ char *d = ctrl_dir(*c, path);
		if (rmdir(d) < 0 && errno != ENOENT && ret == 0)
			ret = berth_error_errno(err, "remove cgroup '%s'", d);
	}
	return ret;
}

static int v1_add_pid(const char *path, pid_t pid, struct berth_error **err)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (const char *const *c = runtime_cgroup_v1_controllers(); *c; c++) {
		_cleanup_free_ char *d = ctrl_dir(*c, path);
		int r = runtime_cg_write(d, "cgroup.procs", buf, streq(*c, "unified") ? NULL : err);
		if (r < 0 && !streq(*c, "unified"))
			return r;
	}
	return 0;
}

static int write_num(const char *ctrl, const char *path, const char *file, long long v,
		     struct berth_error **err)
{
	char buf[32];
	_cleanup_free_ char *d = ctrl_dir(ctrl, path);
	snprintf(buf, sizeof(buf), "%lld", v);
	return runtime_cg_write(d, file, buf, err);
}

static int write_str(const char *ctrl, const char *path, const char *file, const char *v,
		     struct berth_error **err)
{
	_cleanup_free_ char *d = ctrl_dir(ctrl, path);
	return runtime_cg_write(d, file, v, err);
}

static int apply_memory(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	int ret;
	if (!(r->set & (RES_MEM_LIMIT | RES_MEM_SWAP | RES_MEM_RESERVATION | RES_MEM_SWAPPINESS |
			RES_MEM_DISABLE_OOM)))
		return 0;
	if (!has_ctrl("memory"))
		return berth_error_msg(err, ENOTSUP, "'linux.resources.memory': no memory cgroup controller");
	if (r->set & RES_MEM_LIMIT) {
		ret = write_num("memory", path, "memory.limit_in_bytes", r->mem_limit, NULL);
		/* raising limit above the current memsw limit: raise memsw first */
		if (ret == -EINVAL && (r->set & RES_MEM_SWAP)) {
			if ((ret = write_num("memory", path, "memory.memsw.limit_in_bytes", r->mem_swap,
					     err)) < 0)
				return ret;
			ret = write_num("memory", path, "memory.limit_in_bytes", r->mem_limit, err);
		} else if (ret < 0)
			ret = write_num("memory", path, "memory.limit_in_bytes", r->mem_limit, err);
		if (ret < 0)
			return ret;
	}
	if ((r->set & RES_MEM_SWAP) && r->mem_swap != 0 &&
	    (ret = write_num("memory", path, "memory.memsw.limit_in_bytes", r->mem_swap, err)) < 0)
		return ret;
	if ((r->set & RES_MEM_RESERVATION) &&
	    (ret = write_num("memory", path, "memory.soft_limit_in_bytes", r->mem_reservation, err)) < 0)
		return ret;
	if ((r->set & RES_MEM_SWAPPINESS) &&
	    (ret = write_num("memory", path, "memory.swappiness", (long long)r->mem_swappiness, err)) < 0)
		return ret;
	if ((r->set & RES_MEM_DISABLE_OOM) && r->disable_oom_killer &&
	    (ret = write_num("memory", path, "memory.oom_control", 1, err)) < 0)
		return ret;
	return 0;
}

static int apply_cpu(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	int ret;
	if ((r->set & RES_CPU_SHARES) && r->cpu_shares &&
	    (ret = write_num("cpu", path, "cpu.shares", (long long)r->cpu_shares, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_PERIOD) && r->cpu_period &&
	    (ret = write_num("cpu", path, "cpu.cfs_period_us", (long long)r->cpu_period, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_QUOTA) && r->cpu_quota &&
	    (ret = write_num("cpu", path, "cpu.cfs_quota_us", r->cpu_quota, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_RT_PERIOD) && r->cpu_rt_period &&
	    (ret = write_num("cpu", path, "cpu.rt_period_us", (long long)r->cpu_rt_period, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_RT_RUNTIME) && r->cpu_rt_runtime &&
	    (ret = write_num("cpu", path, "cpu.rt_runtime_us", r->cpu_rt_runtime, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_CPUS) && *r->cpus &&
	    (ret = write_str("cpuset", path, "cpuset.cpus", r->cpus, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_MEMS) && *r->mems &&
	    (ret = write_str("cpuset", path, "cpuset.mems", r->mems, err)) < 0)
		return ret;
	if ((r->set & RES_PIDS_LIMIT)) {
		if (r->pids_limit > 0)
			ret = write_num("pids", path, "pids.max", r->pids_limit, err);
		else
			ret = write_str("pids", path, "pids.max", "max", err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int apply_blkio_devs(const char *path, const char *file, const struct runtime_blkio_dev *d, size_t n,
			    struct berth_error **err)
{
	for (size_t i = 0; i < n; i++) {
		char buf[96];
		snprintf(buf, sizeof(buf), "%lld:%lld %llu", (long long)d[i].major, (long long)d[i].minor,
			 (unsigned long long)d[i].value);
		int r = write_str("blkio", path, file, buf, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int apply_blkio(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	int ret;
	if (r->set & RES_BLKIO_WEIGHT) {
		_cleanup_free_ char *d = ctrl_dir("blkio", path);
		_cleanup_free_ char *wf = xasprintf("%s/blkio.weight", d);
		const char *f = access(wf, F_OK) == 0 ? "blkio.weight" : "blkio.bfq.weight";
		if ((ret = write_num("blkio", path, f, r->blkio_weight, err)) < 0)
			return ret;
	}
	if ((ret = apply_blkio_devs(path, "blkio.weight_device", r->blkio_weight_devices,
				    r->n_blkio_weight_devices, err)) < 0 ||
	    (ret = apply_blkio_devs(path, "blkio.throttle.read_bps_device", r->throttle_read_bps,
				    r->n_throttle_read_bps, err)) < 0 ||
	    (ret = apply_blkio_devs(path, "blkio.throttle.write_bps_device", r->throttle_write_bps,
				    r->n_throttle_write_bps, err)) < 0 ||
	    (ret = apply_blkio_devs(path, "blkio.throttle.read_iops_device", r->throttle_read_iops,
				    r->n_throttle_read_iops, err)) < 0 ||
	    (ret = apply_blkio_devs(path, "blkio.throttle.write_iops_device", r->throttle_write_iops,
				    r->n_throttle_write_iops, err)) < 0)
		return ret;
	for (size_t i = 0; i < r->n_hugepages; i++) {
		_cleanup_free_ char *f = xasprintf("hugetlb.%s.limit_in_bytes", r->hugepages[i].page_size);
		if ((ret = write_num("hugetlb", path, f, (long long)r->hugepages[i].limit, err)) < 0)
			return ret;
	}
	return 0;
}

static void device_rule_string(const struct runtime_device_rule *d, char *buf, size_t len)
{
	char maj[24], min[24];
	if (d->major < 0)
		snprintf(maj, sizeof(maj), "*");
	else
		snprintf(maj, sizeof(maj), "%lld", (long long)d->major);
	if (d->minor < 0)
		snprintf(min, sizeof(min), "*");
	else
		snprintf(min, sizeof(min), "%lld", (long long)d->minor);
	if (d->type == 'a')
		snprintf(buf, len, "a");
	else
		snprintf(buf, len, "%c %s:%s %s", d->type, maj, min, d->access);
}

/* Always allowed, after the spec's rules (runc's AllowedDevices). */
static const struct runtime_device_rule default_allow[] = {
	{ true, 'c', -1, -1, "m" }, { true, 'b', -1, -1, "m" }, { true, 'c', 1, 3, "rwm" },
	{ true, 'c', 1, 8, "rwm" }, { true, 'c', 1, 7, "rwm" }, { true, 'c', 5, 0, "rwm" },
	{ true, 'c', 1, 5, "rwm" }, { true, 'c', 1, 9, "rwm" }, { true, 'c', 136, -1, "rwm" },
	{ true, 'c', 5, 2, "rwm" }, { true, 'c', 5, 1, "rwm" }, { true, 'c', 10, 200, "rwm" },
};

const struct runtime_device_rule *runtime_cgroup_default_device_rules(size_t *n)
{
	*n = ARRAY_SIZE(default_allow);
	return default_allow;
}

static int apply_devices(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	if (!r->n_devices || !has_ctrl("devices"))
		return 0;
	_cleanup_free_ char *d = ctrl_dir("devices", path);
	/* each write() is one rule: devices.allow and devices.deny are opened once each, not per rule */
	static const char *const names[2] = { "devices.deny", "devices.allow" };
	int fds[2] = { -1, -1 }, ret = 0;
	for (size_t i = 0; i < r->n_devices + ARRAY_SIZE(default_allow) && ret >= 0; i++) {
		const struct runtime_device_rule *rule =
		    i < r->n_devices ? &r->devices[i] : &default_allow[i - r->n_devices];
		char buf[80];
		device_rule_string(rule, buf, sizeof(buf));
		int k = rule->allow ? 1 : 0;
		_cleanup_free_ char *p = xasprintf("%s/%s", d, names[k]);
		if (fds[k] < 0 && (fds[k] = open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			ret = berth_error_errno(err, "open '%s'", p);
			break;
		}
		ssize_t n = write(fds[k], buf, strlen(buf));
		if (n < 0)
			ret = berth_error_errno(err, "write '%s' to '%s'", buf, p);
		else if ((size_t)n != strlen(buf))
			ret = berth_error_set(err, EIO, "short write to '%s'", p);
	}
	safe_close(fds[0]);
	safe_close(fds[1]);
	return ret;
}

/* net_cls / net_prio: refused, naming the field, where the host has not mounted the controller (as runc). */
static int apply_network(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	int ret;
	if (r->has_net_classid) {
		_cleanup_free_ char *d = ctrl_dir("net_cls", "");
		if (access(d, F_OK) < 0)
			return berth_error_msg(
			    err, ENOTSUP,
			    "'linux.resources.network.classID': the net_cls cgroup controller "
			    "is not mounted on this host");
		if ((ret = write_num("net_cls", path, "net_cls.classid", r->net_classid, err)) < 0)
			return ret;
	}
	if (r->n_net_prios) {
		_cleanup_free_ char *d = ctrl_dir("net_prio", "");
		if (access(d, F_OK) < 0)
			return berth_error_msg(err, ENOTSUP,
					       "'linux.resources.network.priorities': the net_prio cgroup "
					       "controller is not mounted on this host");
	}
	for (size_t i = 0; i < r->n_net_prios; i++) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%s %u", r->net_prios[i].name, r->net_prios[i].priority);
		if ((ret = write_str("net_prio", path, "net_prio.ifpriomap", buf, err)) < 0)
			return ret;
	}
	return 0;
}

static int v1_apply(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	int ret;
	if (r->unified && r->unified[0])
		return berth_error_msg(err, ENOTSUP,
				       "'linux.resources.unified': needs cgroup v2, this host uses v1");
	if ((ret = apply_memory(path, r, err)) < 0 || (ret = apply_cpu(path, r, err)) < 0 ||
	    (ret = apply_blkio(path, r, err)) < 0 || (ret = apply_devices(path, r, err)) < 0 ||
	    (ret = apply_network(path, r, err)) < 0)
		return ret;
	return 0;
}

static int v1_is_frozen(const char *path)
{
	_cleanup_free_ char *d = ctrl_dir("freezer", path);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(d, "freezer.state", &sb) < 0)
		return -ENOENT;
	return startswith(sb.buf, "FROZEN") ? 1 : 0;
}

static int v1_freeze(const char *path, bool frozen, struct berth_error **err)
{
	if (!has_ctrl("freezer"))
		return berth_error_msg(err, ENOTSUP, "no freezer cgroup controller");
	_cleanup_free_ char *d = ctrl_dir("freezer", path);
	int r = runtime_cg_write(d, "freezer.state", frozen ? "FROZEN" : "THAWED", err);
	if (r < 0 || !frozen)
		return r;
	/*
	 * NEEDSWORK: the v1 freezer has no completion event; it reads FREEZING
	 * until every task stopped. Re-write and re-read (each write retries the
	 * freeze), bounded to about a second.
	 */
	int64_t deadline = proc_now_ms() + 1000;
	while (v1_is_frozen(path) != 1) {
		if (proc_now_ms() > deadline)
			return berth_error_msg(err, EBUSY, "freeze '%s': still FREEZING after 1s", d);
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
		runtime_cg_write(d, "freezer.state", "FROZEN", NULL);
	}
	return 0;
}

static int v1_pids(const char *path, pid_t **ret, size_t *ret_n, struct berth_error **err)
{
	static const char *const prefer[] = { "pids", "memory", "freezer", "devices", "cpu" };
	for (size_t i = 0; i < ARRAY_SIZE(prefer); i++)
		if (has_ctrl(prefer[i])) {
			_cleanup_free_ char *d = ctrl_dir(prefer[i], path);
			return runtime_cg_read_pids(d, ret, ret_n, err);
		}
	return berth_error_msg(err, ENOTSUP, "no cgroup controller to list processes");
}

/* Sum "maj:min Read N" / "Write N" lines. */
static void blkio_sum(const char *dir, const char *file, uint64_t *rd, uint64_t *wr)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(dir, file, &sb) < 0)
		return;
	for (char *l = sb.buf; l && *l;) {
		char op[16];
		unsigned long long v;
		if (sscanf(l, "%*s %15s %llu", op, &v) == 2) {
			if (streq(op, "Read"))
				*rd += v;
			else if (streq(op, "Write"))
				*wr += v;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
}

static int v1_stats(const char *path, struct runtime_stats *st, struct berth_error **err)
{
	_cleanup_free_ char *cpuacct = ctrl_dir("cpuacct", path), *cpu = ctrl_dir("cpu", path),
			    *mem = ctrl_dir("memory", path), *pids = ctrl_dir("pids", path),
			    *blkio = ctrl_dir("blkio", path);
	long hz = sysconf(_SC_CLK_TCK);
	memset(st, 0, sizeof(*st));
	runtime_cg_read_u64(cpuacct, "cpuacct.usage", &st->cpu_usage_ns);
	st->cpu_user_ns =
	    runtime_cg_read_key_u64(cpuacct, "cpuacct.stat", "user") * (1000000000ull / (hz > 0 ? hz : 100));
	st->cpu_system_ns = runtime_cg_read_key_u64(cpuacct, "cpuacct.stat", "system") *
			    (1000000000ull / (hz > 0 ? hz : 100));
	st->cpu_throttled_periods = runtime_cg_read_key_u64(cpu, "cpu.stat", "nr_throttled");
	st->cpu_throttled_ns = runtime_cg_read_key_u64(cpu, "cpu.stat", "throttled_time");
	if (runtime_cg_read_u64(mem, "memory.usage_in_bytes", &st->mem_usage) == 0) {
		st->has_memory = true;
		runtime_cg_read_u64(mem, "memory.limit_in_bytes", &st->mem_limit);
		runtime_cg_read_u64(mem, "memory.max_usage_in_bytes", &st->mem_max_usage);
		runtime_cg_read_u64(mem, "memory.failcnt", &st->mem_failcnt);
		st->mem_cache = runtime_cg_read_key_u64(mem, "memory.stat", "cache");
		runtime_cg_read_u64(mem, "memory.memsw.usage_in_bytes", &st->swap_usage);
		runtime_cg_read_u64(mem, "memory.memsw.limit_in_bytes", &st->swap_limit);
	}
	if (runtime_cg_read_u64(pids, "pids.current", &st->pids_current) == 0) {
		st->has_pids = true;
		runtime_cg_read_u64(pids, "pids.max", &st->pids_limit);
	}
	/* the _recursive files count the cgroup's descendants too (a task cgroup holds its containers'
	   cgroups; for a leaf they are equal); kernels before 4.x have only the plain ones */
	_cleanup_free_ char *rec = xasprintf("%s/blkio.throttle.io_service_bytes_recursive", blkio);
	bool recursive = access(rec, R_OK) == 0;
	blkio_sum(blkio,
		  recursive ? "blkio.throttle.io_service_bytes_recursive" : "blkio.throttle.io_service_bytes",
		  &st->blkio_read_bytes, &st->blkio_write_bytes);
	blkio_sum(blkio, recursive ? "blkio.throttle.io_serviced_recursive" : "blkio.throttle.io_serviced",
		  &st->blkio_read_ios, &st->blkio_write_ios);
	return 0;
}

const struct cgroup_ops runtime_cgroup_v1_ops = {
	.name = "v1",
	.create = v1_create,
	.apply = v1_apply,
	.add_pid = v1_add_pid,
	.destroy = v1_destroy,
	.freeze = v1_freeze,
	.is_frozen = v1_is_frozen,
	.pids = v1_pids,
	.stats = v1_stats,
};
