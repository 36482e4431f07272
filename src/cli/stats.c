/*
 * stats.c - `berth stats`, plus the small parsers cp and stats share
 * (path stat header, cp arguments, one stats row computed like docker's
 * CLI: CPU % from the usage delta over the host's delta times online CPUs,
 * memory without the inactive page cache).
 *
 * Sampling: one one-shot sample per container per second; the CPU delta is
 * taken between two of our own samples, so `--no-stream` costs one second
 * whatever the number of containers.
 */
#include <time.h>

#include "cli/cli.h"
#include "cli/fsops.h"
#include "cli/opttab.h"
#include "common/base64.h"
#include "common/json.h"

#define STATS_INTERVAL 1 /* seconds between samples */

int cli_path_stat_parse(const char *value, struct cli_path_stat *ret, struct berth_error **err)
{
	void *raw = NULL;
	size_t len;
	if (!value || strlen(value) > 64 * 1024 || base64_decode(value, &raw, &len) < 0)
		return berth_error_msg(err, EINVAL, "invalid container path stat header");
	json_error_t je;
	_cleanup_json_ json_t *j = json_loadb(raw, len, 0, &je);
	free(raw);
	json_t *name = json_object_get(j, "name"), *size = json_object_get(j, "size"),
	       *mode = json_object_get(j, "mode"), *lt = json_object_get(j, "linkTarget");
	if (!json_is_object(j) || !json_is_string(name) || !json_is_integer(size) || !json_is_integer(mode) ||
	    (lt && !json_is_string(lt)) || json_integer_value(mode) < 0 ||
	    json_integer_value(mode) > UINT32_MAX)
		return berth_error_msg(err, EINVAL, "invalid container path stat: %s",
				       j ? "missing or mistyped field" : je.text);
	*ret = (struct cli_path_stat){ .name = xstrdup(json_string_value(name)),
				       .link_target = xstrdup(lt ? json_string_value(lt) : ""),
				       .size = json_integer_value(size),
				       .mode = (uint32_t)json_integer_value(mode) };
	return 0;
}

void cli_path_stat_done(struct cli_path_stat *st)
{
	free(st->name);
	free(st->link_target);
	*st = (struct cli_path_stat){ 0 };
}

void cli_cp_split(const char *arg, char **ret_container, char **ret_path)
{
	const char *colon = strchr(arg, ':');
	if (arg[0] == '/' || arg[0] == '.' || !colon || colon == arg) {
		*ret_container = NULL;
		*ret_path = xstrdup(arg);
		return;
	}
	*ret_container = xstrndup(arg, (size_t)(colon - arg));
	*ret_path = xstrdup(colon + 1);
}

/* docker's go-units: "%.4g" binary (MiB) or "%.3g" decimal (kB) sizes. */
static char *size_str(double v, bool binary)
{
	static const char *const bin[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	static const char *const dec[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	double base = binary ? 1024.0 : 1000.0;
	size_t i = 0;
	while (v >= base && i + 1 < ARRAY_SIZE(bin)) {
		v /= base;
		i++;
	}
	return xasprintf(binary ? "%.4g%s" : "%.3g%s", v, binary ? bin[i] : dec[i]);
}

static double num(const json_t *o, const char *a, const char *b)
{
	const json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static double cpu_percent(const json_t *cur, const json_t *prev)
{
	const json_t *cpu = json_object_get(cur, "cpu_stats");
	const json_t *pre = prev ? json_object_get(prev, "cpu_stats") : json_object_get(cur, "precpu_stats");
	double d_cpu = num(json_object_get(cpu, "cpu_usage"), "total_usage", NULL) -
		       num(json_object_get(pre, "cpu_usage"), "total_usage", NULL);
	double d_sys = num(cpu, "system_cpu_usage", NULL) - num(pre, "system_cpu_usage", NULL);
	double online = num(cpu, "online_cpus", NULL);
	if (online <= 0)
		online = (double)json_array_size(
		    json_object_get(json_object_get(cpu, "cpu_usage"), "percpu_usage"));
	return d_cpu > 0 && d_sys > 0 ? d_cpu / d_sys * online * 100.0 : 0.0;
}

/* Usage without the inactive page cache (v1: total_inactive_file, v2: inactive_file). */
static double mem_usage(const json_t *mem)
{
	double usage = num(mem, "usage", NULL);
	const json_t *st = json_object_get(mem, "stats");
	const json_t *inactive = json_object_get(st, "total_inactive_file");
	if (!inactive)
		inactive = json_object_get(st, "inactive_file");
	double in = json_is_number(inactive) ? json_number_value(inactive) : 0;
	return in < usage ? usage - in : usage;
}

static void io_sums(const json_t *s, double *net_rx, double *net_tx, double *blk_r, double *blk_w)
{
	const char *k;
	json_t *v;
	*net_rx = *net_tx = *blk_r = *blk_w = 0;
	json_object_foreach (json_object_get(s, "networks"), k, v) {
		*net_rx += num(v, "rx_bytes", NULL);
		*net_tx += num(v, "tx_bytes", NULL);
	}
	size_t i;
	json_array_foreach (json_object_get(json_object_get(s, "blkio_stats"), "io_service_bytes_recursive"),
			    i, v) {
		const char *op = json_string_value(json_object_get(v, "op"));
		if (op && !strcasecmp(op, "read"))
			*blk_r += num(v, "value", NULL);
		else if (op && !strcasecmp(op, "write"))
			*blk_w += num(v, "value", NULL);
	}
}

json_t *cli_stats_row(const json_t *cur, const json_t *prev, bool trunc)
{
	const json_t *mem = json_object_get(cur, "memory_stats");
	const char *id = json_string_value(json_object_get(cur, "id")) ?: "";
	const char *name = json_string_value(json_object_get(cur, "name")) ?: "";
	double usage = mem_usage(mem), limit = num(mem, "limit", NULL), rx, tx, br, bw;
	io_sums(cur, &rx, &tx, &br, &bw);
	_cleanup_free_ char *u = size_str(usage, true), *l = size_str(limit, true),
			    *srx = size_str(rx, false), *stx = size_str(tx, false),
			    *sbr = size_str(br, false), *sbw = size_str(bw, false);
	char cpu[32], memp[32], pids[32];
	snprintf(cpu, sizeof(cpu), "%.2f%%", cpu_percent(cur, prev));
	snprintf(memp, sizeof(memp), "%.2f%%", limit > 0 ? usage / limit * 100.0 : 0.0);
	snprintf(pids, sizeof(pids), "%.0f", num(cur, "pids_stats", "current"));
	return json_pack("{s:s, s:s%, s:s, s:s, s:s+++, s:s, s:s, s:s+++, s:s+++, s:s}", "Container",
			 trunc ? name + (*name == '/') : id, "ID", id,
			 trunc ? MIN(strlen(id), (size_t)12) : strlen(id), "Name", name + (*name == '/'),
			 "CPUPerc", cpu, "MemUsage", u, " / ", l, "", "MemLimit", l, "MemPerc", memp, "NetIO",
			 srx, " / ", stx, "", "BlockIO", sbr, " / ", sbw, "", "PIDs", pids);
}

/* ---- the command ---- */

struct stats_opts {
	bool all, no_stream, no_trunc;
	const char *format, *host;
};

static const char *const stats_headers[] = { "CONTAINER ID", "NAME",    "CPU %",     "MEM USAGE / LIMIT",
					     "MEM %",        "NET I/O", "BLOCK I/O", "PIDS" };
static const char *const stats_keys[] = { "ID",      "Name",  "CPUPerc", "MemUsage",
					  "MemPerc", "NetIO", "BlockIO", "PIDs" };

static const char stats_usage[] =
    "stats [OPTIONS] [CONTAINER...]\n\n"
    "Display a live stream of container(s) resource usage statistics\n\n"
    "Options:\n"
    "  -a, --all             Show all containers (default shows just running)\n"
    "      --format string   Pretty-print stats using a Go template ({{.Name}} {{.CPUPerc}} ...)\n"
    "      --no-stream       Disable streaming stats and only pull the first result\n"
    "      --no-trunc        Do not truncate output\n";

/* The containers to show: the named ones, or every (running unless all) container. */
static char **stats_targets(struct cli *cli, const struct stats_opts *o, char **names, int n)
{
	char **v = xcalloc((size_t)n + 1, sizeof(char *));
	for (int i = 0; i < n; i++)
		v[i] = xstrdup(names[i]);
	if (n > 0)
		return v;
	json_t *list = NULL;
	if (cli_call(cli, "GET", NULL, &list, "/v1.41/containers/json%s", o->all ? "?all=1" : "") == 200) {
		size_t i, k = json_array_size(list);
		json_t *c;
		v = xrealloc(v, (k + 1) * sizeof(char *));
		json_array_foreach (list, i, c)
			v[i] = xstrdup(json_string_value(json_object_get(c, "Id")) ?: "");
		v[k] = NULL;
	}
	json_decref(list);
	return v;
}

/* One one-shot sample per target into samples[] (NULL where it failed; errors printed once). */
static int sample_all(struct cli *cli, char **targets, json_t **samples, bool report)
{
	int failed = 0;
	for (size_t i = 0; targets[i]; i++) {
		_cleanup_free_ char *id = cli_escape(targets[i]);
		json_t *s = NULL;
		long st = cli_call(cli, "GET", NULL, &s,
				   "/v1.41/containers/%s/stats?stream=false&one-shot=true", id);
		if (st != 200) {
			if (report && st > 0)
				cli_print_daemon_error(s, st);
			json_decref(s);
			s = NULL;
			failed = 1;
		}
		samples[i] = s;
	}
	return failed;
}

static void print_stats(const struct stats_opts *o, char **targets, json_t **cur, json_t **prev)
{
	json_t *rows = json_array();
	for (size_t i = 0; targets[i]; i++) {
		if (!cur[i])
			continue;
		_cleanup_json_ json_t *row = cli_stats_row(cur[i], prev ? prev[i] : NULL, !o->no_trunc);
		if (o->format && !streq(o->format, "table")) {
			_cleanup_free_ char *line = cli_format(o->format, row);
			printf("%s\n", line ? line : "");
			continue;
		}
		json_t *r = json_array();
		for (size_t k = 0; k < ARRAY_SIZE(stats_keys); k++)
			json_array_append(r, json_object_get(row, stats_keys[k]));
		json_array_append_new(rows, r);
	}
	if (!o->format || streq(o->format, "table"))
		cli_print_table(stats_headers, ARRAY_SIZE(stats_headers), rows);
	json_decref(rows);
	fflush(stdout);
}

static void free_samples(json_t **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = (json_decref(s[i]), NULL);
}

static int stats_loop(struct cli *cli, const struct stats_opts *o, char **targets)
{
	size_t n = 0;
	while (targets[n])
		n++;
	_cleanup_free_ json_t **prev = xcalloc(n + 1, sizeof(json_t *));
	_cleanup_free_ json_t **cur = xcalloc(n + 1, sizeof(json_t *));
	int failed = sample_all(cli, targets, prev, true);
	for (bool first = true;; first = false) {
		struct timespec ts = { STATS_INTERVAL, 0 };
		nanosleep(&ts, NULL); /* the CPU % needs an interval between two samples */
		failed |= sample_all(cli, targets, cur, false);
		if (!o->no_stream && isatty(STDOUT_FILENO))
			fputs("\033[2J\033[H", stdout);
		print_stats(o, targets, cur, prev);
		free_samples(prev, n);
		memcpy(prev, cur, n * sizeof(json_t *));
		memset(cur, 0, n * sizeof(json_t *));
		if (o->no_stream || (first && failed && n == 1))
			break;
	}
	free_samples(prev, n);
	return failed;
}

int cli_stats(int argc, char **argv)
{
	struct stats_opts o = { 0 };
	const struct cli_opt opts[] = {
		{ "all", 'a', CLI_OPT_FLAG, &o.all },         { "no-stream", 0, CLI_OPT_FLAG, &o.no_stream },
		{ "no-trunc", 0, CLI_OPT_FLAG, &o.no_trunc }, { "format", 0, CLI_OPT_STRING, &o.format },
		{ "host", 'H', CLI_OPT_STRING, &o.host },     { NULL },
	};
	int rc;
	if (!cli_opttab_parse(opts, argc, argv, "+", stats_usage, &rc))
		return rc;
	struct cli cli;
	if (cli_open(&cli, o.host) < 0)
		return 1;
	_cleanup_strv_ char **targets = stats_targets(&cli, &o, argv + optind, argc - optind);
	int r = stats_loop(&cli, &o, targets);
	cli_close(&cli);
	return r ? 1 : 0;
}
