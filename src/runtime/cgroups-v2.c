/*
 * cgroups-v2.c - the unified hierarchy manager. Controllers are enabled in
 * cgroup.subtree_control of every ancestor; runc's v1-style values are
 * converted (cpu.shares -> cpu.weight, memory swap = memsw - memory). Freezing
 * waits for cgroup.events "frozen 1" with poll(POLLPRI), not a sleep loop.
 *
 * Device rules become an eBPF program (cgroups-devices.c). NEEDSWORK: `update`
 * with device rules attaches one more program instead of replacing it.
 */
#include <fcntl.h>
#include <poll.h>

#include "common/fs.h"
#include "common/process.h"
#include "runtime/cgroups.h"

static char *dir_of(const char *path)
{
	return xasprintf("%s%s", runtime_cgroup_root(), path);
}

/* Enable the controllers the parent offers in each ancestor's subtree_control. */
static void enable_controllers(const char *path)
{
	_cleanup_free_ char *full = dir_of(path);
	size_t base = strlen(runtime_cgroup_root());
	for (size_t i = base; i < strlen(full); i++) {
		if (full[i] != '/')
			continue;
		full[i] = 0;
		const char *dir = i == base ? runtime_cgroup_root() : full;
		_cleanup_strbuf_ struct strbuf avail = STRBUF_INIT, want = STRBUF_INIT;
		if (runtime_cg_read(dir, "cgroup.controllers", &avail) == 0) {
			strbuf_trim_trailing(&avail);
			for (char *c = avail.buf, *sp; c && *c; c = sp) {
				sp = strchr(c, ' ');
				if (sp)
					*sp++ = 0;
				strbuf_addf(&want, "%s+%s", want.len ? " " : "", c);
			}
			if (want.len)
				runtime_cg_write(dir, "cgroup.subtree_control", want.buf, NULL);
		}
		full[i] = '/';
	}
}

static int v2_create(const char *path, struct berth_error **err)
{
	_cleanup_free_ char *d = dir_of(path);
	int r = fs_mkdir_p(d, 0755, err);
	if (r < 0)
		return r;
	enable_controllers(path);
	return 0;
}

static int v2_destroy(const char *path, struct berth_error **err)
{
	_cleanup_free_ char *d = dir_of(path);
	if (rmdir(d) < 0 && errno != ENOENT)
		return berth_error_errno(err, "remove cgroup '%s'", d);
	return 0;
}

static int v2_add_pid(const char *path, pid_t pid, struct berth_error **err)
{
	char buf[32];
	_cleanup_free_ char *d = dir_of(path);
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	return runtime_cg_write(d, "cgroup.procs", buf, err);
}

static int wnum(const char *d, const char *f, long long v, bool max_if_neg, struct berth_error **err)
{
	char buf[32];
	if (max_if_neg && v < 0)
		snprintf(buf, sizeof(buf), "max");
	else
		snprintf(buf, sizeof(buf), "%lld", v);
	return runtime_cg_write(d, f, buf, err);
}

static int v2_apply_mem_cpu(const char *d, const struct runtime_resources *r, struct berth_error **err)
{
	int ret;
	if ((r->set & RES_MEM_LIMIT) && (ret = wnum(d, "memory.max", r->mem_limit, true, err)) < 0)
		return ret;
	if ((r->set & RES_MEM_SWAP) && r->mem_swap) {
		long long sw =
		    r->mem_swap < 0 ? -1 : r->mem_swap - ((r->set & RES_MEM_LIMIT) ? r->mem_limit : 0);
		if ((ret = wnum(d, "memory.swap.max", sw, true, err)) < 0)
			return ret;
	}
	if ((r->set & RES_MEM_RESERVATION) &&
	    (ret = wnum(d, "memory.low", r->mem_reservation, true, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_SHARES) && r->cpu_shares) {
		unsigned long long w = 1 + ((r->cpu_shares - 2) * 9999) / 262142;
		if ((ret = wnum(d, "cpu.weight", (long long)w, false, err)) < 0)
			return ret;
	}
	if (r->set & (RES_CPU_QUOTA | RES_CPU_PERIOD)) {
		char buf[64];
		unsigned long long period =
		    (r->set & RES_CPU_PERIOD) && r->cpu_period ? r->cpu_period : 100000;
		if ((r->set & RES_CPU_QUOTA) && r->cpu_quota > 0)
			snprintf(buf, sizeof(buf), "%lld %llu", (long long)r->cpu_quota, period);
		else
			snprintf(buf, sizeof(buf), "max %llu", period);
		if ((ret = runtime_cg_write(d, "cpu.max", buf, err)) < 0)
			return ret;
	}
	if ((r->set & RES_CPU_IDLE) && (ret = wnum(d, "cpu.idle", r->cpu_idle, false, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_CPUS) && *r->cpus &&
	    (ret = runtime_cg_write(d, "cpuset.cpus", r->cpus, err)) < 0)
		return ret;
	if ((r->set & RES_CPU_MEMS) && *r->mems &&
	    (ret = runtime_cg_write(d, "cpuset.mems", r->mems, err)) < 0)
		return ret;
	return 0;
}

static int v2_apply(const char *path, const struct runtime_resources *r, struct berth_error **err)
{
	_cleanup_free_ char *d = dir_of(path);
	int ret;
	if (r->has_net_classid || r->n_net_prios)
		return berth_error_msg(err, ENOTSUP,
				       "'linux.resources.network': net_cls and net_prio are cgroup v1 "
				       "controllers; cgroup v2 has no equivalent");
	if ((ret = v2_apply_mem_cpu(d, r, err)) < 0)
		return ret;
	if ((r->set & RES_PIDS_LIMIT) &&
	    (ret = wnum(d, "pids.max", r->pids_limit > 0 ? r->pids_limit : -1, true, err)) < 0)
		return ret;
	if ((r->set & RES_BLKIO_WEIGHT) && (ret = wnum(d, "io.weight", r->blkio_weight, false, err)) < 0)
		return ret;
	static const char *const keys[] = { "rbps", "wbps", "riops", "wiops" };
	const struct runtime_blkio_dev *lists[] = { r->throttle_read_bps, r->throttle_write_bps,
						    r->throttle_read_iops, r->throttle_write_iops };
	size_t ns[] = { r->n_throttle_read_bps, r->n_throttle_write_bps, r->n_throttle_read_iops,
			r->n_throttle_write_iops };
	for (int k = 0; k < 4; k++)
		for (size_t i = 0; i < ns[k]; i++) {
			char buf[96];
			snprintf(buf, sizeof(buf), "%lld:%lld %s=%llu", (long long)lists[k][i].major,
				 (long long)lists[k][i].minor, keys[k],
				 (unsigned long long)lists[k][i].value);
			if ((ret = runtime_cg_write(d, "io.max", buf, err)) < 0)
				return ret;
		}
	for (size_t i = 0; i < r->n_hugepages; i++) {
		_cleanup_free_ char *f = xasprintf("hugetlb.%s.max", r->hugepages[i].page_size);
		if ((ret = wnum(d, f, (long long)r->hugepages[i].limit, false, err)) < 0)
			return ret;
	}
	if (r->n_devices) {
		size_t n_def, n_insn;
		const struct runtime_device_rule *def = runtime_cgroup_default_device_rules(&n_def);
		_cleanup_free_ struct bpf_insn *prog = NULL;
		if (runtime_cgroup_devices_program(r->devices, r->n_devices, def, n_def, &prog, &n_insn) < 0)
			return berth_error_msg(err, E2BIG, "'linux.resources.devices': too many rules");
		if ((ret = runtime_cgroup_devices_attach(d, prog, n_insn, err)) < 0)
			return ret;
	}
	for (size_t i = 0; r->unified && r->unified[i]; i += 2)
		if ((ret = runtime_cg_write(d, r->unified[i], r->unified[i + 1], err)) < 0)
			return ret;
	return 0;
}

static int v2_is_frozen(const char *path)
{
	_cleanup_free_ char *d = dir_of(path);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(d, "cgroup.events", &sb) < 0)
		return -ENOENT;
	return strstr(sb.buf, "frozen 1") ? 1 : 0;
}

static int v2_freeze(const char *path, bool frozen, struct berth_error **err)
{
	_cleanup_free_ char *d = dir_of(path);
	_cleanup_free_ char *ev = xasprintf("%s/cgroup.events", d);
	_cleanup_close_ int fd = open(ev, O_RDONLY | O_CLOEXEC);
	int r = runtime_cg_write(d, "cgroup.freeze", frozen ? "1" : "0", err);
	if (r < 0)
		return r;
	int64_t deadline = proc_now_ms() + 5000;
	while (fd >= 0 && v2_is_frozen(path) != (frozen ? 1 : 0)) {
		struct pollfd p = { .fd = fd, .events = POLLPRI };
		int left = (int)(deadline - proc_now_ms());
		if (left <= 0)
			return berth_error_msg(err, ETIMEDOUT, "%s '%s': timed out",
					       frozen ? "freeze" : "thaw", d);
		poll(&p, 1, left);
	}
	return 0;
}

static int v2_pids(const char *path, pid_t **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_free_ char *d = dir_of(path);
	return runtime_cg_read_pids(d, ret, ret_n, err);
}

static void io_sum(const char *d, struct runtime_stats *st)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (runtime_cg_read(d, "io.stat", &sb) < 0)
		return;
	for (char *tok = sb.buf; *tok;) {
		unsigned long long v;
		char key[16];
		if (sscanf(tok, "%15[a-z]=%llu", key, &v) == 2) {
			if (streq(key, "rbytes"))
				st->blkio_read_bytes += v;
			else if (streq(key, "wbytes"))
				st->blkio_write_bytes += v;
			else if (streq(key, "rios"))
				st->blkio_read_ios += v;
			else if (streq(key, "wios"))
				st->blkio_write_ios += v;
		}
		tok += strcspn(tok, " \n");
		tok += strspn(tok, " \n");
	}
}

static int v2_stats(const char *path, struct runtime_stats *st, struct berth_error **err)
{
	_cleanup_free_ char *d = dir_of(path);
	memset(st, 0, sizeof(*st));
	st->cpu_usage_ns = runtime_cg_read_key_u64(d, "cpu.stat", "usage_usec") * 1000;
	st->cpu_user_ns = runtime_cg_read_key_u64(d, "cpu.stat", "user_usec") * 1000;
	st->cpu_system_ns = runtime_cg_read_key_u64(d, "cpu.stat", "system_usec") * 1000;
	st->cpu_throttled_periods = runtime_cg_read_key_u64(d, "cpu.stat", "nr_throttled");
	st->cpu_throttled_ns = runtime_cg_read_key_u64(d, "cpu.stat", "throttled_usec") * 1000;
	if (runtime_cg_read_u64(d, "memory.current", &st->mem_usage) == 0) {
		st->has_memory = true;
		runtime_cg_read_u64(d, "memory.max", &st->mem_limit);
		runtime_cg_read_u64(d, "memory.peak", &st->mem_max_usage);
		st->mem_cache = runtime_cg_read_key_u64(d, "memory.stat", "file");
		runtime_cg_read_u64(d, "memory.swap.current", &st->swap_usage);
		runtime_cg_read_u64(d, "memory.swap.max", &st->swap_limit);
	}
	if (runtime_cg_read_u64(d, "pids.current", &st->pids_current) == 0) {
		st->has_pids = true;
		runtime_cg_read_u64(d, "pids.max", &st->pids_limit);
	}
	io_sum(d, st);
	return 0;
}

const struct cgroup_ops runtime_cgroup_v2_ops = {
	.name = "v2",
	.create = v2_create,
	.apply = v2_apply,
	.add_pid = v2_add_pid,
	.destroy = v2_destroy,
	.freeze = v2_freeze,
	.is_frozen = v2_is_frozen,
	.pids = v2_pids,
	.stats = v2_stats,
};
