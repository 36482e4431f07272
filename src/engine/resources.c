/*
 * resources.c - what dockerd refuses in a HostConfig at create
 * (daemon_unix.go's verifyPlatformContainerResources and
 * verifyPlatformContainerSettings), with dockerd's messages, so that a
 * negative or nonsensical limit is a 400 at create instead of "unlimited" or
 * a failure at start. Values dockerd accepts stay accepted: a negative
 * CpuShares, MemoryReservation or KernelMemory, MemorySwap -1 or below and
 * PidsLimit <= 0 (unlimited) are not errors there, and a CpuQuota of -1 is
 * "no quota".
 */
#include <sched.h>

#include "common/json.h"
#include "engine/internal.h"

#define MIN_MEMORY (6 << 20) /* dockerd's linuxMinMemory */

static json_int_t ival(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* Go's runtime.NumCPU(): the CPUs this process may run on. */
static long num_cpu(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

static int check_memory(const json_t *hc, struct berth_error **err)
{
	json_int_t mem = ival(hc, "Memory"), swap = ival(hc, "MemorySwap");
	json_int_t res = ival(hc, "MemoryReservation"), kmem = ival(hc, "KernelMemory");
	if (mem != 0 && mem < MIN_MEMORY)
		return berth_error_msg(err, EINVAL, "Minimum memory limit allowed is 6MB");
	if (mem > 0 && swap > 0 && swap < mem)
		return berth_error_msg(
		    err, EINVAL, "Minimum memoryswap limit should be larger than memory limit, see usage");
	if (mem == 0 && swap > 0)
		return berth_error_msg(
		    err, EINVAL,
		    "You should always set the Memory limit when using Memoryswap limit, see usage");
	json_t *sw = json_object_get(hc, "MemorySwappiness");
	if (json_is_integer(sw) && json_integer_value(sw) != -1 &&
	    (json_integer_value(sw) < 0 || json_integer_value(sw) > 100))
		return berth_error_msg(err, EINVAL,
				       "Invalid value: %lld, valid memory swappiness range is 0-100",
				       (long long)json_integer_value(sw));
	if (res > 0 && res < MIN_MEMORY)
		return berth_error_msg(err, EINVAL, "Minimum memory reservation allowed is 6MB");
	if (mem > 0 && res > 0 && mem < res)
		return berth_error_msg(
		    err, EINVAL,
		    "Minimum memory limit can not be less than memory reservation limit, see usage");
	if (kmem > 0 && kmem < MIN_MEMORY)
		return berth_error_msg(err, EINVAL, "Minimum kernel memory limit allowed is 6MB");
	if (ival(hc, "ShmSize") < 0)
		return berth_error_msg(err, EINVAL, "SHM size can not be less than 0");
	return 0;
}

static int check_cpu(const json_t *hc, struct berth_error **err)
{
	json_int_t nano = ival(hc, "NanoCpus"), period = ival(hc, "CpuPeriod"), quota = ival(hc, "CpuQuota");
	if (nano > 0 && period > 0)
		return berth_error_msg(err, EINVAL,
				       "Conflicting options: Nano CPUs and CPU Period cannot both be set");
	if (nano > 0 && quota > 0)
		return berth_error_msg(err, EINVAL,
				       "Conflicting options: Nano CPUs and CPU Quota cannot both be set");
	long n = num_cpu();
	if (nano < 0 || nano > (json_int_t)n * 1000000000LL)
		return berth_error_msg(
		    err, EINVAL, "Range of CPUs is from 0.01 to %ld.00, as there are only %ld CPUs available",
		    n, n);
	if (period != 0 && (period < 1000 || period > 1000000))
		return berth_error_msg(
		    err, EINVAL,
		    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
	if (quota > 0 && quota < 1000)
		return berth_error_msg(err, EINVAL, "CPU cfs quota can not be less than 1ms (i.e. 1000)");
	return 0;
}

/* BlkioWeight is a uint16 in dockerd: a negative one does not even decode there. */
static int check_blkio(const json_t *hc, struct berth_error **err)
{
	json_int_t bw = ival(hc, "BlkioWeight");
	if (bw != 0 && (bw < 10 || bw > 1000))
		return berth_error_msg(err, EINVAL, "Range of blkio weight is from 10 to 1000");
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(hc, "BlkioWeightDevice"), i, d) {
		json_int_t w = ival(d, "Weight");
		if (w != 0 && (w < 10 || w > 1000))
			return berth_error_msg(err, EINVAL, "Range of blkio weight is from 10 to 1000");
	}
	return 0;
}

int engine_resources_check(const json_t *hc, struct berth_error **err)
{
	static const char *const ints[] = { "MemoryReservation", "KernelMemory", "MemorySwappiness",
					    "OomScoreAdj" };
	for (size_t i = 0; i < ARRAY_SIZE(ints); i++) {
		json_t *v = json_object_get(hc, ints[i]);
		if (v && !json_is_null(v) && !json_is_integer(v))
			return json_type_error("HostConfig", ints[i], "integer", v, err);
	}
	int r;
	if ((r = check_memory(hc, err)) < 0 || (r = check_cpu(hc, err)) < 0 || (r = check_blkio(hc, err)) < 0)
		return r;
	json_int_t oom = ival(hc, "OomScoreAdj");
	if (oom < -1000 || oom > 1000)
		return berth_error_msg(err, EINVAL,
				       "Invalid value %lld, range for oom score adj is [-1000, 1000]",
				       (long long)oom);
	return 0;
}

int engine_working_dir_check(const json_t *cfg, struct berth_error **err)
{
	const char *wd = json_string_value(json_object_get(cfg, "WorkingDir"));
	if (wd && *wd && wd[0] != '/')
		return berth_error_msg(
		    err, EINVAL, "the working directory '%s' is invalid, it needs to be an absolute path",
		    wd);
	return 0;
}
