/*
 * spec-resources.c - linux.resources (also the input of `update`): memory,
 * cpu, pids, blockIO, hugepageLimits, devices, unified. Presence is recorded
 * in `set` so that update only touches what was given.
 */
#include "runtime/spec-internal.h"

static int get_limit(const json_t *o, const char *p, const char *k, uint32_t bit, int64_t *dst,
		     struct runtime_resources *r, struct berth_error **err)
{
	int ret = json_get_int64(o, p, k, 0, dst, err);
	if (ret < 0)
		return ret;
	if (ret > 0) {
		if (*dst < -1)
			return runtime_spec_error(err, p, k, "negative limit %lld", (long long)*dst);
		r->set |= bit;
	}
	return 0;
}

static int parse_memory(const json_t *res, const char *path, struct runtime_resources *r,
			struct berth_error **err)
{
	json_t *m;
	int ret = json_get_object(res, path, "memory", 0, &m, err);
	if (ret <= 0)
		return ret;
	_cleanup_free_ char *mp = json_path_join(path, "memory");
	if ((ret = get_limit(m, mp, "limit", RES_MEM_LIMIT, &r->mem_limit, r, err)) < 0 ||
	    (ret = get_limit(m, mp, "reservation", RES_MEM_RESERVATION, &r->mem_reservation, r, err)) < 0 ||
	    (ret = get_limit(m, mp, "swap", RES_MEM_SWAP, &r->mem_swap, r, err)) < 0 ||
	    (ret = get_limit(m, mp, "kernel", RES_MEM_KERNEL, &r->mem_kernel, r, err)) < 0 ||
	    (ret = get_limit(m, mp, "kernelTCP", RES_MEM_KERNEL_TCP, &r->mem_kernel_tcp, r, err)) < 0)
		return ret;
	uint64_t sw;
	if ((ret = json_get_uint64(m, mp, "swappiness", 0, &sw, err)) < 0) {
		int64_t neg; /* -1 means unset (docker, runc) */
		berth_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		if (json_get_int_range(m, mp, "swappiness", 0, -1, -1, &neg, err) < 0)
			return -EINVAL;
		ret = 0;
	}
	if (ret > 0 && sw != UINT64_MAX) {
		if (sw > 100)
			return runtime_spec_error(err, mp, "swappiness", "%llu out of range 0..100",
						  (unsigned long long)sw);
		r->mem_swappiness = sw;
		r->set |= RES_MEM_SWAPPINESS;
	}
	if ((ret = json_get_bool(m, mp, "disableOOMKiller", 0, &r->disable_oom_killer, err)) < 0)
		return ret;
	if (ret > 0)
		r->set |= RES_MEM_DISABLE_OOM;
	if ((r->set & RES_MEM_LIMIT) && (r->set & RES_MEM_SWAP) && r->mem_swap > 0 && r->mem_limit > 0 &&
	    r->mem_swap < r->mem_limit)
		return runtime_spec_error(err, mp, "swap", "memory+swap limit %lld below memory limit %lld",
					  (long long)r->mem_swap, (long long)r->mem_limit);
	return 0;
}

static int set_if(int ret, struct runtime_resources *r, uint32_t bit)
{
	if (ret > 0)
		r->set |= bit;
	return ret < 0 ? ret : 0;
}

static int parse_cpu(const json_t *res, const char *path, struct runtime_resources *r,
		     struct berth_error **err)
{
	json_t *c;
	int ret = json_get_object(res, path, "cpu", 0, &c, err);
	if (ret <= 0)
		return ret;
	_cleanup_free_ char *cp = json_path_join(path, "cpu");
	if ((ret = set_if(json_get_uint64(c, cp, "shares", 0, &r->cpu_shares, err), r, RES_CPU_SHARES)) < 0 ||
	    (ret = set_if(json_get_int64(c, cp, "quota", 0, &r->cpu_quota, err), r, RES_CPU_QUOTA)) < 0 ||
	    (ret = set_if(json_get_uint64(c, cp, "period", 0, &r->cpu_period, err), r, RES_CPU_PERIOD)) < 0 ||
	    (ret = set_if(json_get_int64(c, cp, "realtimeRuntime", 0, &r->cpu_rt_runtime, err), r,
			  RES_CPU_RT_RUNTIME)) < 0 ||
	    (ret = set_if(json_get_uint64(c, cp, "realtimePeriod", 0, &r->cpu_rt_period, err), r,
			  RES_CPU_RT_PERIOD)) < 0 ||
	    (ret = set_if(json_get_int64(c, cp, "idle", 0, &r->cpu_idle, err), r, RES_CPU_IDLE)) < 0 ||
	    (ret = set_if(json_get_string(c, cp, "cpus", 0, &r->cpus, err), r, RES_CPU_CPUS)) < 0 ||
	    (ret = set_if(json_get_string(c, cp, "mems", 0, &r->mems, err), r, RES_CPU_MEMS)) < 0)
		return ret;
	if ((r->set & RES_CPU_PERIOD) && r->cpu_period && (r->cpu_period < 1000 || r->cpu_period > 1000000))
		return runtime_spec_error(err, cp, "period", "%llu out of range 1000..1000000",
					  (unsigned long long)r->cpu_period);
	if ((r->set & RES_CPU_QUOTA) && r->cpu_quota > 0 && r->cpu_quota < 1000)
		return runtime_spec_error(err, cp, "quota", "%lld below 1000", (long long)r->cpu_quota);
	for (const char *s = (r->set & RES_CPU_CPUS) ? r->cpus : ""; *s; s++)
		if (!strchr("0123456789,-", *s))
			return runtime_spec_error(err, cp, "cpus", "invalid cpu list '%s'", r->cpus);
	for (const char *s = (r->set & RES_CPU_MEMS) ? r->mems : ""; *s; s++)
		if (!strchr("0123456789,-", *s))
			return runtime_spec_error(err, cp, "mems", "invalid node list '%s'", r->mems);
	return 0;
}

static int parse_blkio_devs(const json_t *b, const char *bp, const char *key, bool weight,
			    struct runtime_blkio_dev **ret, size_t *ret_n, struct berth_error **err)
{
	json_t *a;
	size_t n;
	int r = runtime_spec_get_array(b, bp, key, &a, &n, err);
	if (r <= 0)
		return r;
	_cleanup_free_ char *kp = json_path_join(bp, key);
	*ret = xcalloc(n ? n : 1, sizeof(**ret));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(kp, i);
		json_t *e = json_array_get(a, i);
		struct runtime_blkio_dev *d = &(*ret)[i];
		*ret_n = i + 1;
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((r = json_get_int_range(e, ep, "major", JSON_REQUIRED, 0, 0xfff, &d->major, err)) < 0 ||
		    (r = json_get_int_range(e, ep, "minor", JSON_REQUIRED, 0, 0xfffff, &d->minor, err)) < 0)
			return r;
		if (weight) {
			int64_t w = 0, lw = 0;
			if ((r = json_get_int_range(e, ep, "weight", 0, 0, 1000, &w, err)) < 0 ||
			    (r = json_get_int_range(e, ep, "leafWeight", 0, 0, 1000, &lw, err)) < 0)
				return r;
			d->value = (uint64_t)w;
			d->leaf_weight = (uint64_t)lw;
		} else if ((r = json_get_uint64(e, ep, "rate", JSON_REQUIRED, &d->value, err)) < 0)
			return r;
	}
	return 0;
}

static int parse_blkio(const json_t *res, const char *path, struct runtime_resources *r,
		       struct berth_error **err)
{
	json_t *b;
	int64_t w;
	int ret = json_get_object(res, path, "blockIO", 0, &b, err);
	if (ret <= 0)
		return ret;
	_cleanup_free_ char *bp = json_path_join(path, "blockIO");
	if ((ret = json_get_int_range(b, bp, "weight", 0, 0, 1000, &w, err)) < 0)
		return ret;
	if (ret > 0 && w != 0) { /* 0: unset (docker sends it) */
		if (w < 10)
			return runtime_spec_error(err, bp, "weight", "%lld out of range 10..1000",
						  (long long)w);
		r->blkio_weight = (uint16_t)w;
		r->set |= RES_BLKIO_WEIGHT;
	}
	if ((ret = parse_blkio_devs(b, bp, "weightDevice", true, &r->blkio_weight_devices,
				    &r->n_blkio_weight_devices, err)) < 0 ||
	    (ret = parse_blkio_devs(b, bp, "throttleReadBpsDevice", false, &r->throttle_read_bps,
				    &r->n_throttle_read_bps, err)) < 0 ||
	    (ret = parse_blkio_devs(b, bp, "throttleWriteBpsDevice", false, &r->throttle_write_bps,
				    &r->n_throttle_write_bps, err)) < 0 ||
	    (ret = parse_blkio_devs(b, bp, "throttleReadIOPSDevice", false, &r->throttle_read_iops,
				    &r->n_throttle_read_iops, err)) < 0 ||
	    (ret = parse_blkio_devs(b, bp, "throttleWriteIOPSDevice", false, &r->throttle_write_iops,
				    &r->n_throttle_write_iops, err)) < 0)
		return ret;
	return 0;
}

static int parse_device_rule(const json_t *e, const char *ep, struct runtime_device_rule *d,
			     struct berth_error **err)
{
	const char *type = "a", *access = "rwm";
	int r;
	if (!json_is_object(e))
		return json_type_error(ep, NULL, "object", e, err);
	d->major = d->minor = -1;
	if ((r = json_get_bool(e, ep, "allow", JSON_REQUIRED, &d->allow, err)) < 0 ||
	    (r = json_get_string(e, ep, "type", 0, &type, err)) < 0 ||
	    (r = json_get_string(e, ep, "access", 0, &access, err)) < 0 ||
	    (r = json_get_int_range(e, ep, "major", 0, -1, 0xfff, &d->major, err)) < 0 ||
	    (r = json_get_int_range(e, ep, "minor", 0, -1, 0xfffff, &d->minor, err)) < 0)
		return r;
	if (strlen(type) != 1 || !strchr("acb", type[0]))
		return runtime_spec_error(err, ep, "type", "unknown device type '%s'", type);
	d->type = type[0];
	size_t n = strlen(access);
	if (n > 3 || strspn(access, "rwm") != n)
		return runtime_spec_error(err, ep, "access",
					  "invalid access '%s', expected a subset of 'rwm'", access);
	memcpy(d->access, access, n + 1);
	if (!n)
		memcpy(d->access, "rwm", 4);
	return 0;
}

static int parse_misc(const json_t *res, const char *path, struct runtime_resources *r,
		      struct berth_error **err)
{
	json_t *o, *a;
	size_t n;
	int ret;
	if ((ret = json_get_object(res, path, "pids", 0, &o, err)) < 0)
		return ret;
	if (ret > 0) {
		_cleanup_free_ char *pp = json_path_join(path, "pids");
		if ((ret = set_if(json_get_int64(o, pp, "limit", JSON_REQUIRED, &r->pids_limit, err), r,
				  RES_PIDS_LIMIT)) < 0)
			return ret;
	}
	if ((ret = runtime_spec_get_array(res, path, "hugepageLimits", &a, &n, err)) < 0)
		return ret;
	_cleanup_free_ char *hp = json_path_join(path, "hugepageLimits");
	r->hugepages = xcalloc(n ? n : 1, sizeof(*r->hugepages));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(hp, i);
		json_t *e = json_array_get(a, i);
		struct runtime_hugepage *h = &r->hugepages[i];
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((ret = json_get_string(e, ep, "pageSize", JSON_REQUIRED, &h->page_size, err)) < 0 ||
		    (ret = json_get_uint64(e, ep, "limit", JSON_REQUIRED, &h->limit, err)) < 0)
			return ret;
		if (strchr(h->page_size, '/') || strchr(h->page_size, '.'))
			return runtime_spec_error(err, ep, "pageSize", "invalid page size '%s'",
						  h->page_size);
		r->n_hugepages = i + 1;
	}
	if ((ret = runtime_spec_get_array(res, path, "devices", &a, &n, err)) < 0)
		return ret;
	_cleanup_free_ char *dp = json_path_join(path, "devices");
	r->devices = xcalloc(n ? n : 1, sizeof(*r->devices));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(dp, i);
		if ((ret = parse_device_rule(json_array_get(a, i), ep, &r->devices[i], err)) < 0)
			return ret;
		r->n_devices = i + 1;
	}
	return 0;
}

static int parse_network(const json_t *res, const char *path, struct runtime_resources *r,
			 struct berth_error **err)
{
	json_t *o, *a;
	size_t n;
	int ret = json_get_object(res, path, "network", 0, &o, err);
	if (ret <= 0)
		return ret;
	_cleanup_free_ char *np = json_path_join(path, "network");
	uint64_t classid;
	if ((ret = json_get_uint64(o, np, "classID", 0, &classid, err)) < 0)
		return ret;
	if (ret > 0) {
		if (classid > UINT32_MAX)
			return runtime_spec_error(err, np, "classID", "out of range (32 bits)");
		r->has_net_classid = true;
		r->net_classid = (uint32_t)classid;
	}
	if ((ret = runtime_spec_get_array(o, np, "priorities", &a, &n, err)) < 0)
		return ret;
	_cleanup_free_ char *pp = json_path_join(np, "priorities");
	r->net_prios = xcalloc(n ? n : 1, sizeof(*r->net_prios));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ep = json_path_index(pp, i);
		json_t *e = json_array_get(a, i);
		struct runtime_net_prio *p = &r->net_prios[i];
		uint64_t prio;
		if (!json_is_object(e))
			return json_type_error(ep, NULL, "object", e, err);
		if ((ret = json_get_string(e, ep, "name", JSON_REQUIRED, &p->name, err)) < 0 ||
		    (ret = json_get_uint64(e, ep, "priority", JSON_REQUIRED, &prio, err)) < 0)
			return ret;
		if (!*p->name || strlen(p->name) >= 16 || strpbrk(p->name, " /\n"))
			return runtime_spec_error(err, ep, "name", "invalid interface name '%s'", p->name);
		if (prio > UINT32_MAX)
			return runtime_spec_error(err, ep, "priority", "out of range (32 bits)");
		p->priority = (uint32_t)prio;
		r->n_net_prios = i + 1;
	}
	return 0;
}

static int parse_unified(const json_t *res, const char *path, struct runtime_resources *r,
			 struct berth_error **err)
{
	json_t *o, *v;
	const char *k;
	int ret = json_get_object(res, path, "unified", 0, &o, err);
	if (ret <= 0)
		return ret;
	_cleanup_free_ char *up = json_path_join(path, "unified");
	if (json_object_size(o) > RUNTIME_SPEC_MAX_ITEMS)
		return runtime_spec_error(err, path, "unified", "too many entries");
	r->unified = xcalloc(2 * json_object_size(o) + 1, sizeof(char *));
	size_t i = 0;
	json_object_foreach ((json_t *)o, k, v) {
		if (!json_is_string(v))
			return json_type_error(up, k, "string", v, err);
		if (!*k || strchr(k, '/') || k[0] == '.')
			return runtime_spec_error(err, up, k, "invalid cgroup file name");
		r->unified[i++] = k;
		r->unified[i++] = json_string_value(v);
	}
	return 0;
}

int runtime_resources_parse(const json_t *obj, const char *path, struct runtime_resources *ret,
			    struct berth_error **err)
{
	struct runtime_resources r = { 0 };
	int rc;
	if (!json_is_object(obj))
		return json_type_error(path, NULL, "object", obj, err);
	if ((rc = parse_memory(obj, path, &r, err)) < 0 || (rc = parse_cpu(obj, path, &r, err)) < 0 ||
	    (rc = parse_blkio(obj, path, &r, err)) < 0 || (rc = parse_misc(obj, path, &r, err)) < 0 ||
	    (rc = parse_network(obj, path, &r, err)) < 0 || (rc = parse_unified(obj, path, &r, err)) < 0) {
		runtime_resources_done(&r);
		return rc;
	}
	*ret = r;
	return 0;
}

void runtime_resources_done(struct runtime_resources *r)
{
	free(r->blkio_weight_devices);
	free(r->throttle_read_bps);
	free(r->throttle_write_bps);
	free(r->throttle_read_iops);
	free(r->throttle_write_iops);
	free(r->hugepages);
	free(r->devices);
	free(r->unified);
	free(r->net_prios);
	memset(r, 0, sizeof(*r));
}
