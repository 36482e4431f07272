/*
 * system.c - `berth info`, `berth events` and `berth system df|prune|info|events`.
 */

#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* /info's Runtimes as docker info prints them: the names, sorted, space-separated (caller frees). */
static char *runtime_names(const json_t *runtimes)
{
	size_t n = json_object_size(runtimes), i = 0;
	const char **names = xcalloc(n ? n : 1, sizeof(*names));
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)runtimes, k, v)
		names[i++] = k;
	qsort(names, n, sizeof(*names), cmp_str);
	struct strbuf sb = STRBUF_INIT;
	for (i = 0; i < n; i++)
		strbuf_addf(&sb, "%s%s", i ? " " : "", names[i]);
	free(names);
	return strbuf_detach(&sb, NULL);
}

int cli_info(int argc, char **argv)
{
	if (cli_is_help(argc, argv)) {
		printf("Usage: berth info [--format T]\n\nDisplay system-wide information\n");
		return 0;
	}
	const char *format = argc == 3 && streq(argv[1], "--format") ? argv[2] : NULL;
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	json_t *j = NULL;
	long st = cli_call(&cli, "GET", NULL, &j, "/v1.41/info");
	cli_close(&cli);
	if (st != 200) {
		if (st > 0)
			cli_print_daemon_error(j, st);
		json_decref(j);
		return 1;
	}
	if (format) {
		_cleanup_free_ char *s = cli_format(format, j);
		printf("%s\n", s);
	} else {
		_cleanup_free_ char *runtimes = runtime_names(json_object_get(j, "Runtimes"));
		printf("Server:\n Containers: %lld\n  Running: %lld\n  Paused: %lld\n  Stopped: %lld\n "
		       "Images: %lld\n"
		       " Server Version: %s\n Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n"
		       " Runtimes: %s\n Default Runtime: %s\n Kernel Version: %s\n Docker Root Dir: %s\n",
		       (long long)json_integer_value(json_object_get(j, "Containers")),
		       (long long)json_integer_value(json_object_get(j, "ContainersRunning")),
		       (long long)json_integer_value(json_object_get(j, "ContainersPaused")),
		       (long long)json_integer_value(json_object_get(j, "ContainersStopped")),
		       (long long)json_integer_value(json_object_get(j, "Images")),
		       json_string_value(json_object_get(j, "ServerVersion")) ?: "",
		       json_string_value(json_object_get(j, "Driver")) ?: "",
		       json_string_value(json_object_get(j, "LoggingDriver")) ?: "",
		       json_string_value(json_object_get(j, "CgroupDriver")) ?: "", runtimes,
		       json_string_value(json_object_get(j, "DefaultRuntime")) ?: "",
		       json_string_value(json_object_get(j, "KernelVersion")) ?: "",
		       json_string_value(json_object_get(j, "DockerRootDir")) ?: "");
	}
	json_decref(j);
	return 0;
}

static int on_event(void *ctx, const char *data, size_t len)
{
	const char *format = ctx;
	struct strbuf *pending = (struct strbuf *)((const char **)ctx)[1];
	(void)format;
	strbuf_add(pending, data, len);
	char *nl;
	while ((nl = memchr(pending->buf, '\n', pending->len))) {
		size_t n = (size_t)(nl - pending->buf);
		json_t *ev = json_loadb(pending->buf, n, 0, NULL);
		const char *fmt = ((const char **)ctx)[0];
		if (ev && fmt) {
			_cleanup_free_ char *s = cli_format(fmt, ev);
			printf("%s\n", s);
		} else if (ev) {
			printf("%s %s %s %s\n", json_string_value(json_object_get(ev, "Type")) ?: "",
			       json_string_value(json_object_get(ev, "Action")) ?: "",
			       json_string_value(json_object_get(json_object_get(ev, "Actor"), "ID")) ?: "",
			       json_string_value(json_object_get(
				   json_object_get(json_object_get(ev, "Actor"), "Attributes"), "name"))
				   ?: "");
		}
		fflush(stdout);
		json_decref(ev);
		memmove(pending->buf, nl + 1, pending->len - n - 1);
		strbuf_setlen(pending, pending->len - n - 1);
	}
	return 0;
}

int cli_events(int argc, char **argv)
{
	const char *since = "", *until = "", *format = NULL;
	const struct cli_opt opts[] = {
		{ "since", 0, CLI_OPT_STRING, &since },
		{ "until", 0, CLI_OPT_STRING, &until },
		{ "format", 0, CLI_OPT_STRING, &format },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(opts, argc, argv, NULL,
			      "events [--since T] [--until T] [--format T]\n\nGet real time events\n", &rc))
		return rc;
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *qs = cli_escape(since), *qu = cli_escape(until);
	_cleanup_free_ char *path = xasprintf("/v1.41/events?since=%s&until=%s", qs, qu);
	struct strbuf pending = STRBUF_INIT;
	const void *ctx[2] = { format, &pending };
	struct http_client_request r = {
		.method = "GET", .path = path, .body_fd = -1, .on_body = on_event, .on_body_ctx = (void *)ctx
	};
	_cleanup_error_ struct berth_error *err = NULL;
	long st = 0;
	rc = http_client_do(cli.http, &r, &st, NULL, &err);
	strbuf_release(&pending);
	cli_close(&cli);
	if (rc < 0) {
		berth_error_print(err, NULL);
		return 1;
	}
	return st == 200 ? 0 : 1;
}

/* ---- system df ---- */

struct df_line {
	const char *type;
	int64_t total, active, size, reclaimable;
	bool pct;
};

static void df_count(const json_t *list, const char *size_key, struct df_line *l,
		     bool (*active)(const json_t *))
{
	size_t i;
	json_t *o;
	json_array_foreach (list, i, o) {
		int64_t sz = json_integer_value(size_key[0] == 'U'
						    ? json_object_get(json_object_get(o, "UsageData"), "Size")
						    : json_object_get(o, size_key));
		l->total++;
		l->size += sz;
		if (active(o))
			l->active++;
		else
			l->reclaimable += sz;
	}
}

static bool image_active(const json_t *o)
{
	return json_integer_value(json_object_get(o, "Containers")) > 0;
}

static bool container_active(const json_t *o)
{
	const char *s = json_string_value(json_object_get(o, "State"));
	return s && (streq(s, "running") || streq(s, "paused") || streq(s, "restarting"));
}

static bool volume_active(const json_t *o)
{
	return json_integer_value(json_object_get(json_object_get(o, "UsageData"), "RefCount")) > 0;
}

/*
 * Images share layers: the total is the daemon's LayersSize (each layer once)
 * and what removing the unused images frees is that minus the unshared part
 * of the images in use, as the docker CLI computes it.
 */
static void df_images_dedup(const json_t *df, struct df_line *l)
{
	json_t *total = json_object_get(df, "LayersSize");
	if (!json_is_integer(total))
		return;
	int64_t used = 0;
	size_t i;
	json_t *o;
	json_array_foreach (json_object_get(df, "Images"), i, o) {
		int64_t size = json_integer_value(json_object_get(o, "Size"));
		int64_t shared = json_integer_value(json_object_get(o, "SharedSize"));
		if (image_active(o) && size >= 0 && shared >= 0)
			used += size - shared;
	}
	l->size = json_integer_value(total);
	l->reclaimable = l->size > used ? l->size - used : 0;
}

static json_t *df_object(const struct df_line *l)
{
	_cleanup_free_ char *size = cli_human_size((double)l->size);
	_cleanup_free_ char *rec = cli_human_size((double)l->reclaimable);
	_cleanup_free_ char *r =
	    l->pct ? xasprintf("%s (%lld%%)", rec, (long long)(l->size ? l->reclaimable * 100 / l->size : 0))
		   : xstrdup(rec);
	_cleanup_free_ char *total = xasprintf("%lld", (long long)l->total);
	_cleanup_free_ char *active = xasprintf("%lld", (long long)l->active);
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "Type", l->type, "TotalCount", total, "Active", active,
			 "Size", size, "Reclaimable", r);
}

static void df_table(const char *title, const json_t *list, const char *const *heads, size_t n,
		     json_t *(*row)(const json_t *))
{
	printf("\n%s:\n", title);
	_cleanup_json_ json_t *rows = json_array();
	size_t i;
	json_t *o;
	json_array_foreach (list, i, o)
		json_array_append_new(rows, row(o));
	cli_print_table(heads, n, rows);
}

static json_t *df_image_row(const json_t *o)
{
	const char *id = json_string_value(json_object_get(o, "Id")) ?: "sha256:";
	const char *tag =
	    json_string_value(json_array_get(json_object_get(o, "RepoTags"), 0)) ?: "<none>:<none>";
	const char *colon = strrchr(tag, ':');
	_cleanup_free_ char *size = cli_human_size((double)json_integer_value(json_object_get(o, "Size")));
	_cleanup_free_ char *ago = cli_human_ago(json_integer_value(json_object_get(o, "Created")));
	_cleanup_free_ char *n =
	    xasprintf("%lld", (long long)json_integer_value(json_object_get(o, "Containers")));
	return json_pack("[s%,s,s%,s,s,s]", tag, (size_t)(colon ? colon - tag : (ptrdiff_t)strlen(tag)),
			 colon ? colon + 1 : "<none>", startswith(id, "sha256:") ? id + 7 : id,
			 strnlen(startswith(id, "sha256:") ? id + 7 : id, 12), ago, size, n);
}

static json_t *df_container_row(const json_t *o)
{
	const char *id = json_string_value(json_object_get(o, "Id")) ?: "";
	const char *name = json_string_value(json_array_get(json_object_get(o, "Names"), 0)) ?: "/";
	_cleanup_free_ char *size = cli_human_size((double)json_integer_value(json_object_get(o, "SizeRw")));
	return json_pack(
	    "[s%,s,s,s,s]", id, strnlen(id, 12), json_string_value(json_object_get(o, "Image")) ?: "", size,
	    json_string_value(json_object_get(o, "Status")) ?: "", name[0] == '/' ? name + 1 : name);
}

static json_t *df_volume_row(const json_t *o)
{
	const json_t *u = json_object_get(o, "UsageData");
	_cleanup_free_ char *size = cli_human_size((double)json_integer_value(json_object_get(u, "Size")));
	_cleanup_free_ char *links =
	    xasprintf("%lld", (long long)json_integer_value(json_object_get(u, "RefCount")));
	return json_pack("[s,s,s]", json_string_value(json_object_get(o, "Name")) ?: "", links, size);
}

static void df_verbose(const json_t *df)
{
	static const char *const ih[] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "CONTAINERS" };
	static const char *const ch[] = { "CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES" };
	static const char *const vh[] = { "VOLUME NAME", "LINKS", "SIZE" };
	df_table("Images space usage", json_object_get(df, "Images"), ih, ARRAY_SIZE(ih), df_image_row);
	df_table("Containers space usage", json_object_get(df, "Containers"), ch, ARRAY_SIZE(ch),
		 df_container_row);
	df_table("Local Volumes space usage", json_object_get(df, "Volumes"), vh, ARRAY_SIZE(vh),
		 df_volume_row);
}

int cli_system_df(int argc, char **argv)
{
	static const char *text = "system df [OPTIONS]\n\nShow docker disk usage\n\n"
				  "Options:\n"
				  "      --format string   Pretty-print images using a Go template\n"
				  "  -v, --verbose         Show detailed information on space usage\n";
	const char *format = NULL;
	bool verbose = false;
	const struct cli_opt t[] = {
		{ "format", 0, CLI_OPT_STRING, &format },
		{ "verbose", 'v', CLI_OPT_FLAG, &verbose },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	json_t *df = NULL;
	long st = cli_expect(&cli, "GET", NULL, &df, 200, "/v1.41/system/df");
	cli_close(&cli);
	if (st < 0)
		return 1;
	struct df_line lines[4] = { { "Images", .pct = true },
				    { "Containers", .pct = true },
				    { "Local Volumes", .pct = true },
				    { "Build Cache" } };
	df_count(json_object_get(df, "Images"), "Size", &lines[0], image_active);
	df_images_dedup(df, &lines[0]);
	df_count(json_object_get(df, "Containers"), "SizeRw", &lines[1], container_active);
	df_count(json_object_get(df, "Volumes"), "UsageData", &lines[2], volume_active);
	if (format && streq(format, "table"))
		format = NULL;
	static const char *const keys[] = { "Type", "TotalCount", "Active", "Size", "Reclaimable" };
	static const char *const heads[] = { "TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE" };
	_cleanup_json_ json_t *rows = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(lines); i++) {
		_cleanup_json_ json_t *o = df_object(&lines[i]);
		cli_emit_row(format, o, rows, keys, ARRAY_SIZE(keys));
	}
	if (!format)
		cli_print_table(heads, ARRAY_SIZE(heads), rows);
	if (verbose)
		df_verbose(df);
	json_decref(df);
	return 0;
}

/* ---- system prune ---- */

/* POST a prune, print "Deleted <title>:" and the items of key; adds the reclaimed bytes. */
static int prune_one(struct cli *cli, const char *what, const char *query, const char *title, const char *key,
		     int64_t *reclaimed)
{
	_cleanup_free_ char *path = xasprintf("/v1.41/%s/prune%s", what, query);
	json_t *resp = NULL;
	if (cli_expect(cli, "POST", NULL, &resp, 200, path) < 0)
		return 1;
	json_t *del = json_object_get(resp, key);
	if (json_array_size(del))
		printf("Deleted %s:\n", title);
	size_t i;
	json_t *d;
	json_array_foreach (del, i, d) {
		const char *s = json_string_value(d);
		const char *u = json_string_value(json_object_get(d, "Untagged"));
		const char *x = json_string_value(json_object_get(d, "Deleted"));
		if (s)
			printf("%s\n", s);
		else
			printf(u ? "untagged: %s\n" : "deleted: %s\n", u ? u : x ? x : "");
	}
	if (json_array_size(del))
		printf("\n");
	*reclaimed += json_integer_value(json_object_get(resp, "SpaceReclaimed"));
	json_decref(resp);
	return 0;
}

int cli_system_prune(int argc, char **argv)
{
	static const char *text =
	    "system prune [OPTIONS]\n\nRemove unused data\n\n"
	    "Options:\n"
	    "  -a, --all             Remove all unused images not just dangling ones\n"
	    "      --filter filter   Provide filter values (e.g. 'label=<key>=<value>')\n"
	    "  -f, --force           Do not prompt for confirmation\n"
	    "      --volumes         Prune volumes\n";
	bool all = false, force = false, volumes = false;
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "all", 'a', CLI_OPT_FLAG, &all },
		{ "force", 'f', CLI_OPT_FLAG, &force },
		{ "volumes", 0, CLI_OPT_FLAG, &volumes },
		CLI_OPT_FILTER("filter", 0, filters),
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (!force) {
		fprintf(stderr,
			"WARNING! This will remove:\n  - all stopped containers\n"
			"  - all networks not used by at least one container\n%s%s"
			"  - all dangling build cache\n\n",
			volumes ? "  - all volumes not used by at least one container\n" : "",
			all ? "  - all images without at least one container associated to them\n"
			    : "  - all dangling images\n");
		if (!cli_confirm("Are you sure you want to continue?"))
			return 0;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *q = cli_filters_query(filters);
	cli_filter_add(filters, all ? "dangling=false" : "dangling=true");
	_cleanup_free_ char *qi = cli_filters_query(filters);
	int64_t reclaimed = 0;
	rc = prune_one(&cli, "containers", q, "Containers", "ContainersDeleted", &reclaimed);
	rc |= prune_one(&cli, "networks", q, "Networks", "NetworksDeleted", &reclaimed);
	if (volumes)
		rc |= prune_one(&cli, "volumes", q, "Volumes", "VolumesDeleted", &reclaimed);
	rc |= prune_one(&cli, "images", qi, "Images", "ImagesDeleted", &reclaimed);
	rc |= prune_one(&cli, "build", "", "build cache objects", "CachesDeleted", &reclaimed);
	cli_close(&cli);
	_cleanup_free_ char *sz = cli_human_size((double)reclaimed);
	printf("Total reclaimed space: %s\n", sz);
	return rc;
}

int cli_system(int argc, char **argv)
{
	static const char *text = "system COMMAND\n\nManage berth\n\nCommands:\n"
				  "  df          Show docker disk usage\n"
				  "  events      Get real time events from the server\n"
				  "  info        Display system-wide information\n"
				  "  prune       Remove unused data\n\n"
				  "Run 'berth system COMMAND --help' for more information on a command.\n";
	if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h"))
		return cli_usage(text, argc >= 2);
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} verbs[] = { { "df", cli_system_df },
		      { "prune", cli_system_prune },
		      { "info", cli_info },
		      { "events", cli_events } };
	for (size_t v = 0; v < ARRAY_SIZE(verbs); v++)
		if (streq(verbs[v].name, argv[1]))
			return verbs[v].fn(argc - 1, argv + 1);
	fprintf(stderr, "berth system: '%s' is not a berth system command.\n", argv[1]);
	return cli_usage(text, false);
}
