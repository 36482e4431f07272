/*
 * update.c - `berth update [OPTIONS] CONTAINER...`: docker update's flags
 * into POST /containers/{id}/update (zero fields mean unchanged).
 */
#include <getopt.h>

#include "cli/cli.h"
#include "common/json.h"
#include "common/util.h"

static void usage_update(FILE *f)
{
	fprintf(f, "Usage: berth update [OPTIONS] CONTAINER [CONTAINER...]\n\n"
		   "Update configuration of one or more containers (live for running ones)\n\nOptions:\n"
		   "  -m, --memory BYTES        Memory limit (e.g. 256m)\n"
		   "      --memory-swap BYTES   Memory + swap limit (-1: unlimited)\n"
		   "      --cpus N              Number of CPUs\n"
		   "      --cpu-shares N        CPU shares (relative weight)\n"
		   "      --cpu-quota N, --cpu-period N  CFS quota and period (microseconds)\n"
		   "      --cpuset-cpus LIST, --cpuset-mems LIST\n"
		   "      --pids-limit N        Process limit (-1: unlimited)\n"
		   "      --blkio-weight N      Block I/O weight (10-1000)\n"
		   "      --restart POLICY      no, always, on-failure[:N], unless-stopped\n");
}

static int set_num(json_t *o, const char *key, const char *v, bool bytes)
{
	int64_t n;
	if ((bytes && !streq(v, "-1") ? parse_bytes(v, &n) : parse_int64(v, &n)) < 0) {
		fprintf(stderr, "berth update: invalid value '%s' for %s\n", v, key);
		return -EINVAL;
	}
	json_object_set_new(o, key, json_integer(n));
	return 0;
}

static int set_opt(json_t *u, int ch, const char *v)
{
	switch (ch) {
	case 'm': return set_num(u, "Memory", v, true);
	case 1: return set_num(u, "MemorySwap", v, true);
	case 2: {
		char *end;
		double d = strtod(v, &end);
		if (*end || d <= 0) {
			fprintf(stderr, "berth update: invalid cpus '%s'\n", v);
			return -EINVAL;
		}
		json_object_set_new(u, "NanoCpus", json_integer((json_int_t)(d * 1e9)));
		return 0;
	}
	case 3: return set_num(u, "CpuShares", v, false);
	case 4: return set_num(u, "CpuQuota", v, false);
	case 5: return set_num(u, "CpuPeriod", v, false);
	case 6: json_object_set_new(u, "CpusetCpus", json_string(v)); return 0;
	case 7: json_object_set_new(u, "CpusetMems", json_string(v)); return 0;
	case 8: return set_num(u, "PidsLimit", v, false);
	case 9: return set_num(u, "BlkioWeight", v, false);
	case 10: {
		_cleanup_free_ char *name = xstrdup(v);
		char *n = strchr(name, ':');
		int64_t max = 0;
		if (n) {
			*n++ = '\0';
			if (parse_int64(n, &max) < 0 || max < 0) {
				fprintf(stderr, "berth update: invalid restart policy '%s'\n", v);
				return -EINVAL;
			}
		}
		json_object_set_new(
		    u, "RestartPolicy",
		    json_pack("{s:s,s:I}", "Name", name, "MaximumRetryCount", (json_int_t)max));
		return 0;
	}
	default: return -EINVAL;
	}
}

int cli_update(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "memory", required_argument, NULL, 'm' },
		{ "memory-swap", required_argument, NULL, 1 },
		{ "cpus", required_argument, NULL, 2 },
		{ "cpu-shares", required_argument, NULL, 3 },
		{ "cpu-quota", required_argument, NULL, 4 },
		{ "cpu-period", required_argument, NULL, 5 },
		{ "cpuset-cpus", required_argument, NULL, 6 },
		{ "cpuset-mems", required_argument, NULL, 7 },
		{ "pids-limit", required_argument, NULL, 8 },
		{ "blkio-weight", required_argument, NULL, 9 },
		{ "restart", required_argument, NULL, 10 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	_cleanup_json_ json_t *u = json_object();
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "+m:h", longopts, NULL)) != -1) {
		if (ch == 'h') {
			usage_update(stdout);
			return 0;
		}
		if (ch == '?' || set_opt(u, ch, optarg) < 0) {
			fprintf(stderr, "See 'berth update --help'.\n");
			return 1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "berth update: requires at least 1 argument.\nSee 'berth update --help'.\n");
		return 1;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	int rc = 0;
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
