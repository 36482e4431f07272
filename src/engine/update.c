/*
 * update.c - POST /containers/{id}/update (docker update): new resource
 * limits and restart policy. Docker's rule: a zero (or empty) field means
 * "unchanged". A running container gets the new limits live through the
 * runtime's `update --resources` (its cgroup), and only when that worked
 * are they recorded, so the record never claims limits the cgroup lacks.
 */
#include "common/fs.h"
#include "common/json.h"
#include "engine/internal.h"

static const char *const int_fields[] = { "Memory",    "MemorySwap", "CpuShares",   "CpuQuota",
					  "CpuPeriod", "NanoCpus",   "BlkioWeight", "MemoryReservation" };
static const char *const str_fields[] = { "CpusetCpus", "CpusetMems" };

#define MIN_MEMORY (6 << 20) /* docker's minimum memory limit */

static int check_types(const json_t *u, struct berth_error **err)
{
	if (!json_is_object(u))
		return json_type_error(NULL, "body", "object", u, err);
	for (size_t i = 0; i < ARRAY_SIZE(int_fields); i++) {
		json_t *v = json_object_get(u, int_fields[i]);
		if (v && !json_is_null(v) && !json_is_integer(v))
			return json_type_error(NULL, int_fields[i], "integer", v, err);
	}
	for (size_t i = 0; i < ARRAY_SIZE(str_fields); i++) {
		json_t *v = json_object_get(u, str_fields[i]);
		if (v && !json_is_null(v) && !json_is_string(v))
			return json_type_error(NULL, str_fields[i], "string", v, err);
	}
	json_t *p = json_object_get(u, "PidsLimit");
	if (p && !json_is_null(p) && !json_is_integer(p))
		return json_type_error(NULL, "PidsLimit", "integer", p, err);
	json_t *rp = json_object_get(u, "RestartPolicy");
	if (rp && !json_is_null(rp) && !json_is_object(rp))
		return json_type_error(NULL, "RestartPolicy", "object", rp, err);
	return 0;
}

static json_int_t ival(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static int check_cpu(const json_t *u, const json_t *hc, struct berth_error **err)
{
	bool nano = ival(u, "NanoCpus") > 0, quota = ival(u, "CpuQuota") > 0 || ival(u, "CpuPeriod") > 0;
	if (ival(u, "NanoCpus") < 0 || ival(u, "CpuQuota") < -1 || ival(u, "CpuPeriod") < 0 ||
	    ival(u, "CpuShares") < 0 || ival(u, "BlkioWeight") < 0)
		return berth_error_msg(err, EINVAL,
				       "invalid update: CPU and block I/O values must not be negative");
	if (nano && quota)
		return berth_error_msg(err, EINVAL,
				       "Conflicting options: Nano CPUs and CPU Period cannot both be set");
	if (quota && ival(hc, "NanoCpus") > 0)
		return berth_error_msg(
		    err, EINVAL,
		    "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
	if (nano && (ival(hc, "CpuQuota") > 0 || ival(hc, "CpuPeriod") > 0))
		return berth_error_msg(
		    err, EINVAL,
		    "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
	json_int_t bw = ival(u, "BlkioWeight");
	if (bw && (bw < 10 || bw > 1000))
		return berth_error_msg(err, EINVAL, "Range of blkio weight is from 10 to 1000");
	json_int_t period = ival(u, "CpuPeriod");
	if (period && (period < 1000 || period > 1000000))
		return berth_error_msg(
		    err, EINVAL,
		    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
	return 0;
}

static int check_memory(const json_t *u, const json_t *hc, struct berth_error **err)
{
	json_int_t mem = ival(u, "Memory"), swap = ival(u, "MemorySwap");
	if (mem && mem < MIN_MEMORY)
		return berth_error_msg(err, EINVAL, "Minimum memory limit allowed is 6MB");
	json_int_t new_mem = mem ? mem : ival(hc, "Memory");
	json_int_t new_swap = swap ? swap : ival(hc, "MemorySwap");
	if (swap > 0 && new_mem > 0 && swap < new_mem)
		return berth_error_msg(
		    err, EINVAL, "Minimum memoryswap limit should be larger than memory limit, see usage");
	if (mem && !swap && new_swap > 0 && mem > new_swap)
		return berth_error_msg(
		    err, EINVAL,
		    "Memory limit should be smaller than already set memoryswap limit, update the "
		    "memoryswap at the same time");
	if (swap && !new_mem)
		return berth_error_msg(
		    err, EINVAL,
		    "You should always set the Memory limit when using Memoryswap limit, see usage");
	return 0;
}

static int check_restart(const json_t *u, const json_t *hc, struct berth_error **err)
{
	json_t *rp = json_object_get(u, "RestartPolicy");
	const char *name = NULL;
	int64_t max = 0;
	int r;
	if ((r = json_get_string(rp, "RestartPolicy", "Name", 0, &name, err)) < 0 ||
	    (r = json_get_int_range(rp, "RestartPolicy", "MaximumRetryCount", 0, 0, 1 << 30, &max, err)) < 0)
		return r;
	if (!name || !*name)
		return 0;
	if (!streq(name, "no") && !streq(name, "always") && !streq(name, "on-failure") &&
	    !streq(name, "unless-stopped"))
		return berth_error_msg(err, EINVAL, "invalid restart policy '%s'", name);
	if (max > 0 && !streq(name, "on-failure"))
		return berth_error_msg(err, EINVAL,
				       "maximum retry count cannot be used with restart policy '%s'", name);
	if (!streq(name, "no") && json_is_true(json_object_get(hc, "AutoRemove")))
		return berth_error_msg(
		    err, EINVAL,
		    "Restart policy cannot be updated because AutoRemove is enabled for the container");
	return 0;
}

/* The container's HostConfig with the update merged in (docker: zero = unchanged). */
static json_t *merged(const json_t *hc, const json_t *u)
{
	json_t *n = json_deep_copy(hc);
	for (size_t i = 0; i < ARRAY_SIZE(int_fields); i++)
		if (ival(u, int_fields[i]) != 0)
			json_object_set(n, int_fields[i], json_object_get(u, int_fields[i]));
	for (size_t i = 0; i < ARRAY_SIZE(str_fields); i++) {
		const char *v = json_string_value(json_object_get(u, str_fields[i]));
		if (v && *v)
			json_object_set_new(n, str_fields[i], json_string(v));
	}
	json_t *p = json_object_get(u, "PidsLimit");
	if (json_is_integer(p))
		json_object_set_new(n, "PidsLimit",
				    json_integer(json_integer_value(p) > 0 ? json_integer_value(p) : -1));
	json_t *rp = json_object_get(u, "RestartPolicy");
	const char *name = json_string_value(json_object_get(rp, "Name"));
	if (name && *name)
		json_object_set_new(
		    n, "RestartPolicy",
		    json_pack("{s:s,s:I}", "Name", name, "MaximumRetryCount", ival(rp, "MaximumRetryCount")));
	return n;
}

static int apply_live(struct engine *e, struct container *c, const json_t *hc, struct berth_error **err)
{
	_cleanup_json_ json_t *res = engine_spec_resources(hc);
	if (json_object_get(res, "pids") == NULL && json_integer_value(json_object_get(hc, "PidsLimit")) < 0)
		json_object_set_new(res, "pids", json_pack("{s:i}", "limit", -1));
	struct engine_rt rt;
	pthread_mutex_lock(&e->lock);
	engine_rt_of(e, c, &rt);
	pthread_mutex_unlock(&e->lock);
	int r = rt.oci.ops->update(&rt.oci, c->id, res, err);
	engine_rt_done(&rt);
	return r < 0 ? berth_error_wrap(err, r, "Cannot update container %s", c->id) : 0;
}

int engine_container_update(struct engine *e, const char *ref, const json_t *update, json_t **ret_warnings,
			    struct berth_error **err)
{
	int r = check_types(update, err);
	if (r < 0)
		return r;
	struct container *c;
	if ((r = engine_container_find(e, ref, &c, err)) < 0)
		return r;
	pthread_mutex_lock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	_cleanup_json_ json_t *hc = json_deep_copy(c->hostconfig);
	bool running = c->state == ENGINE_RUNNING || c->state == ENGINE_PAUSED;
	pthread_mutex_unlock(&e->lock);
	_cleanup_json_ json_t *n = NULL;
	if ((r = check_cpu(update, hc, err)) >= 0 && (r = check_memory(update, hc, err)) >= 0 &&
	    (r = check_restart(update, hc, err)) >= 0) {
		n = merged(hc, update);
		if (running)
			r = apply_live(e, c, n, err);
	}
	if (r >= 0) {
		pthread_mutex_lock(&e->lock);
		json_decref(c->hostconfig);
		c->hostconfig = json_incref(n);
		engine_container_save(e, c, NULL);
		engine_container_event(e, c, "update", NULL);
		pthread_mutex_unlock(&e->lock);
		*ret_warnings = json_array();
	}
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return r;
}
