/*
 * update.c - `berth update [OPTIONS] CONTAINER...`: docker update's flags
 * into POST /containers/{id}/update (zero fields mean unchanged).
 */
#include "cli/cli.h"
#include "cli/opttab.h"
#include "cli/runopts.h"
#include "common/json.h"
#include "common/util.h"

static const struct cli_usage update_usage = {
	CLI_USAGE_SEE,
	"update [OPTIONS] CONTAINER [CONTAINER...]\n\n"
	"Update configuration of one or more containers (live for running ones)\n\nOptions:\n"
	"  -m, --memory BYTES        Memory limit (e.g. 256m)\n"
	"      --memory-swap BYTES   Memory + swap limit (-1: unlimited)\n"
	"      --cpus N              Number of CPUs\n"
	"      --cpu-shares N        CPU shares (relative weight)\n"
	"      --cpu-quota N, --cpu-period N  CFS quota and period (microseconds)\n"
	"      --cpuset-cpus LIST, --cpuset-mems LIST\n"
	"      --pids-limit N        Process limit (-1: unlimited)\n"
	"      --blkio-weight N      Block I/O weight (10-1000)\n"
	"      --restart POLICY      no, always, on-failure[:N], unless-stopped",
	.verb = "update",
	.short_help = true,
};

/* dest[o->key] = the integer (bytes: a size like 256m, or -1) */
static int set_num(const struct cli_opt *o, const char *v, bool bytes)
{
	int64_t n;
	if ((bytes && !streq(v, "-1") ? util_parse_bytes(v, &n) : util_parse_int64(v, &n)) < 0) {
		fprintf(stderr, "berth update: invalid value '%s' for %s\n", v, o->key);
		return -EINVAL;
	}
	json_object_set_new(o->dest, o->key, json_integer(n));
	return 0;
}

static int opt_bytes(const struct cli_opt *o, const char *v)
{
	return set_num(o, v, true);
}

static int opt_int(const struct cli_opt *o, const char *v)
{
	return set_num(o, v, false);
}

static int opt_cpus(void *u, const char *v)
{
	char *end;
	double d = strtod(v, &end);
	if (*end || d <= 0) {
		fprintf(stderr, "berth update: invalid cpus '%s'\n", v);
		return -EINVAL;
	}
	json_object_set_new(u, "NanoCpus", json_integer((json_int_t)(d * 1e9)));
	return 0;
}

#define UPDATE_NUM(name, short_name, u, key, fn)                                                   \
	{                                                                                          \
		(name), (short_name), CLI_OPT_ENTRY, (u), (key), .entry_fn = (fn), .has_arg = true \
	}

int cli_update(int argc, char **argv)
{
	_cleanup_json_ json_t *u = json_object();
	const struct cli_opt t[] = {
		UPDATE_NUM("memory", 'm', u, "Memory", opt_bytes),
		UPDATE_NUM("memory-swap", 0, u, "MemorySwap", opt_bytes),
		{ "cpus", 0, CLI_OPT_CALL, u, .fn = opt_cpus, .has_arg = true },
		UPDATE_NUM("cpu-shares", 0, u, "CpuShares", opt_int),
		UPDATE_NUM("cpu-quota", 0, u, "CpuQuota", opt_int),
		UPDATE_NUM("cpu-period", 0, u, "CpuPeriod", opt_int),
		{ "cpuset-cpus", 0, CLI_OPT_JSON_STR, u, "CpusetCpus" },
		{ "cpuset-mems", 0, CLI_OPT_JSON_STR, u, "CpusetMems" },
		UPDATE_NUM("pids-limit", 0, u, "PidsLimit", opt_int),
		UPDATE_NUM("blkio-weight", 0, u, "BlkioWeight", opt_int),
		{ "restart", 0, CLI_OPT_CALL, u, .fn = cli_opt_restart, .has_arg = true },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse_usage(t, argc, argv, "+", &update_usage, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "berth update: requires at least 1 argument.\n");
		return cli_usage_print(&update_usage, false);
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *id = cli_escape(argv[i]);
		json_t *resp = NULL;
		long st = cli_call(&cli, "POST", u, &resp, "/v1.41/containers/%s/update", id);
		if (st == 200) {
			printf("%s\n", argv[i]);
		} else {
			if (st > 0)
				cli_print_daemon_error(resp, st);
			rc = 1;
		}
		json_decref(resp);
	}
	cli_close(&cli);
	return rc;
}
