/*
 * volume.c - `berth volume create|ls|inspect|rm|prune` over /volumes.
 */

#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"
#include "common/strv.h"

static int vol_create(struct cli *cli, int argc, char **argv)
{
	static const char *text = "volume create [OPTIONS] [VOLUME]\n\nCreate a volume\n\n"
				  "Options:\n"
				  "  -d, --driver string   Specify volume driver name (default \"local\")\n"
				  "      --label list      Set metadata for a volume\n"
				  "      --name string     Specify volume name\n"
				  "  -o, --opt map         Set driver specific options\n";
	_cleanup_json_ json_t *body = json_pack("{s:s,s:{},s:{}}", "Driver", "local", "Labels", "DriverOpts");
	const char *name = NULL;
	const struct cli_opt t[] = {
		{ "name", 0, CLI_OPT_STRING, &name },
		{ "driver", 'd', CLI_OPT_JSON_STR, body, "Driver" },
		CLI_OPT_KV("label", 0, json_object_get(body, "Labels")),
		CLI_OPT_KV("opt", 'o', json_object_get(body, "DriverOpts")),
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind + 1 < argc) {
		fprintf(stderr, "\"berth volume create\" requires at most 1 argument.\n");
		return cli_usage(text, false);
	}
	if (optind < argc) {
		if (name && !streq(name, argv[optind])) {
			fprintf(stderr,
				"conflicting options: either specify --name or provide positional arg, "
				"not both\n");
			return CLI_EXIT_DAEMON;
		}
		name = argv[optind];
	}
	if (name)
		json_object_set_new(body, "Name", json_string(name));
	json_t *resp = NULL;
	if (cli_expect(cli, "POST", body, &resp, 201, "/v1.41/volumes/create") < 0)
		return 1;
	printf("%s\n", json_string_value(json_object_get(resp, "Name")) ?: "");
	json_decref(resp);
	return 0;
}

static int vol_ls(struct cli *cli, int argc, char **argv)
{
	static const char *text =
	    "volume ls [OPTIONS]\n\nList volumes\n\n"
	    "Options:\n"
	    "  -f, --filter filter   Provide filter values (e.g. 'dangling=true', 'label=k=v',\n"
	    "                        'name=x', 'driver=local')\n"
	    "      --format string   Pretty-print volumes using a Go template\n"
	    "  -q, --quiet           Only display volume names\n";
	bool quiet = false;
	const char *format = NULL;
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		CLI_OPT_FILTER("filter", 'f', filters),
		{ "format", 0, CLI_OPT_STRING, &format },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (format && streq(format, "table"))
		format = NULL;
	_cleanup_free_ char *q = cli_filters_query(filters);
	_cleanup_free_ char *path = xasprintf("/v1.41/volumes%s", q);
	json_t *resp = NULL;
	if (cli_expect(cli, "GET", NULL, &resp, 200, path) < 0)
		return 1;
	static const char *const keys[] = { "Driver", "Name" };
	static const char *const heads[] = { "DRIVER", "VOLUME NAME" };
	_cleanup_json_ json_t *rows = json_array();
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(resp, "Volumes"), i, v) {
		if (quiet) {
			printf("%s\n", json_string_value(json_object_get(v, "Name")) ?: "");
			continue;
		}
		cli_emit_row(format, v, rows, keys, ARRAY_SIZE(keys));
	}
	json_decref(resp);
	if (!quiet && !format)
		cli_print_table(heads, ARRAY_SIZE(heads), rows);
	return 0;
}

static int vol_inspect(struct cli *cli, int argc, char **argv)
{
	static const char *text = "volume inspect [OPTIONS] VOLUME [VOLUME...]\n\n"
				  "Display detailed information on one or more volumes\n\n"
				  "Options:\n"
				  "  -f, --format string   Format the output using the given Go template\n";
	const char *format = NULL;
	const struct cli_opt t[] = { { "format", 'f', CLI_OPT_STRING, &format }, { NULL } };
	int rc = 0;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth volume inspect\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	_cleanup_json_ json_t *all = json_array();
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *e = cli_escape(argv[i]);
		_cleanup_free_ char *path = xasprintf("/v1.41/volumes/%s", e);
		json_t *resp = NULL;
		long st = cli_call(cli, "GET", NULL, &resp, "%s", path);
		if (st == 200) {
			json_array_append_new(all, resp);
			continue;
		}
		if (st == 404)
			fprintf(stderr, "Error: No such volume: %s\n", argv[i]);
		else if (st > 0)
			cli_print_daemon_error(resp, st);
		json_decref(resp);
		rc = 1;
	}
	size_t i;
	json_t *o;
	if (format) {
		json_array_foreach (all, i, o) {
			_cleanup_free_ char *line = cli_format(format, o);
			printf("%s\n", line);
		}
	} else if (json_array_size(all) || rc == 0) {
		_cleanup_free_ char *s = json_dumps(all, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
	}
	return rc;
}

static int vol_rm(struct cli *cli, int argc, char **argv)
{
	static const char *text =
	    "volume rm [OPTIONS] VOLUME [VOLUME...]\n\n"
	    "Remove one or more volumes. You cannot remove a volume that is in use by a "
	    "container.\n\n"
	    "Options:\n"
	    "  -f, --force   Force the removal of one or more volumes\n";
	bool force = false;
	const struct cli_opt t[] = { { "force", 'f', CLI_OPT_FLAG, &force }, { NULL } };
	int rc = 0;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth volume rm\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *e = cli_escape(argv[i]);
		_cleanup_free_ char *path = xasprintf("/v1.41/volumes/%s?force=%d", e, force);
		if (cli_expect(cli, "DELETE", NULL, NULL, 204, path) < 0)
			rc = 1;
		else
			printf("%s\n", argv[i]);
	}
	return rc;
}

static int vol_prune(struct cli *cli, int argc, char **argv)
{
	static const char *text = "volume prune [OPTIONS]\n\nRemove all unused local volumes\n\n"
				  "Options:\n"
				  "      --filter filter   Provide filter values (e.g. 'label=<label>')\n"
				  "  -f, --force           Do not prompt for confirmation\n";
	bool force = false;
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "force", 'f', CLI_OPT_FLAG, &force },
		CLI_OPT_FILTER("filter", 0, filters),
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (!force && !cli_confirm("WARNING! This will remove all local volumes not used by at least one "
				   "container.\nAre you sure you want to continue?"))
		return 0;
	return cli_prune_post(cli, "volumes", filters, "VolumesDeleted", "Volumes", true);
}

int cli_volume(int argc, char **argv)
{
	static const char *text = "volume COMMAND\n\nManage volumes\n\nCommands:\n"
				  "  create      Create a volume\n"
				  "  inspect     Display detailed information on one or more volumes\n"
				  "  ls          List volumes\n"
				  "  prune       Remove all unused local volumes\n"
				  "  rm          Remove one or more volumes\n\n"
				  "Run 'berth volume COMMAND --help' for more information on a command.\n";
	if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h"))
		return cli_usage(text, argc >= 2);
	static const struct {
		const char *name;
		int (*fn)(struct cli *, int, char **);
	} verbs[] = { { "create", vol_create },   { "ls", vol_ls }, { "list", vol_ls },
		      { "inspect", vol_inspect }, { "rm", vol_rm }, { "remove", vol_rm },
		      { "prune", vol_prune } };
	for (size_t v = 0; v < ARRAY_SIZE(verbs); v++) {
		if (!streq(verbs[v].name, argv[1]))
			continue;
		if (cli_is_help(argc - 1, argv + 1)) {
			char *sub[] = { argv[1], (char *)"--help", NULL };
			return verbs[v].fn(NULL, 2, sub);
		}
		struct cli cli;
		if (cli_open(&cli, NULL) < 0)
			return 1;
		int rc = verbs[v].fn(&cli, argc - 1, argv + 1);
		cli_close(&cli);
		return rc;
	}
	fprintf(stderr, "berth volume: '%s' is not a berth volume command.\n", argv[1]);
	return cli_usage(text, false);
}
