/*
 * groups.c - docker's management groups: `berth container <verb>` and
 * `berth image <verb>` dispatch to the top-level verbs (docker's aliases
 * included: ls/list/ps, rm/remove), plus `container prune`.
 */
#include "cli/cli-build.h"
#include "cli/network.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/json.h"

struct group_verb {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
};

static int container_prune(int argc, char **argv)
{
	static const char *text = "container prune [OPTIONS]\n\nRemove all stopped containers\n\n"
				  "Options:\n"
				  "      --filter filter   Provide filter values (e.g. 'until=<timestamp>')\n"
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
	if (!force && !cli_confirm("WARNING! This will remove all stopped containers.\n"
				   "Are you sure you want to continue?"))
		return 0;
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	rc = cli_prune_post(&cli, "containers", filters, "ContainersDeleted", "Containers", true);
	cli_close(&cli);
	return rc;
}

/* `inspect` restricted to one object type: insert "--type T" after the verb. */
static int inspect_typed(int argc, char **argv, const char *type)
{
	char **v = xcalloc((size_t)argc + 3, sizeof(char *));
	v[0] = argv[0];
	v[1] = (char *)"--type";
	v[2] = (char *)type;
	for (int i = 1; i < argc; i++)
		v[i + 2] = argv[i];
	int rc = cli_inspect(argc + 2, v);
	free(v);
	return rc;
}

static int container_inspect(int argc, char **argv)
{
	return inspect_typed(argc, argv, "container");
}

static int image_inspect(int argc, char **argv)
{
	return inspect_typed(argc, argv, "image");
}

static const struct group_verb container_verbs[] = {
	{ "attach", cli_attach,
	  "Attach local standard input, output, and error streams to a running container" },
	{ "commit", cli_commit, "Create a new image from a container's changes" },
	{ "cp", cli_cp, "Copy files/folders between a container and the local filesystem" },
	{ "create", cli_create, "Create a new container" },
	{ "diff", cli_diff, "Inspect changes to files or directories on a container's filesystem" },
	{ "exec", cli_exec, "Run a command in a running container" },
	{ "export", cli_export, "Export a container's filesystem as a tar archive" },
	{ "inspect", container_inspect, "Display detailed information on one or more containers" },
	{ "kill", cli_kill, "Kill one or more running containers" },
	{ "logs", cli_logs, "Fetch the logs of a container" },
	{ "ls", cli_ps, "List containers" },
	{ "list", cli_ps, NULL },
	{ "ps", cli_ps, NULL },
	{ "pause", cli_pause, "Pause all processes within one or more containers" },
	{ "port", cli_port, "List port mappings or a specific mapping for the container" },
	{ "prune", container_prune, "Remove all stopped containers" },
	{ "rename", cli_rename, "Rename a container" },
	{ "restart", cli_restart, "Restart one or more containers" },
	{ "rm", cli_rm, "Remove one or more containers" },
	{ "remove", cli_rm, NULL },
	{ "run", cli_run, "Run a command in a new container" },
	{ "start", cli_start, "Start one or more stopped containers" },
	{ "stats", cli_stats, "Display a live stream of container(s) resource usage statistics" },
	{ "stop", cli_stop, "Stop one or more running containers" },
	{ "top", cli_top, "Display the running processes of a container" },
	{ "unpause", cli_unpause, "Unpause all processes within one or more containers" },
	{ "update", cli_update, "Update configuration of one or more containers" },
	{ "wait", cli_wait, "Block until one or more containers stop, then print their exit codes" },
};

static const struct group_verb image_verbs[] = {
	{ "build", cli_build, "Build an image from a Dockerfile" },
	{ "history", cli_history, "Show the history of an image" },
	{ "import", cli_import, "Import the contents from a tarball to create a filesystem image" },
	{ "inspect", image_inspect, "Display detailed information on one or more images" },
	{ "load", cli_load, "Load an image from a tar archive or STDIN" },
	{ "ls", cli_images, "List images" },
	{ "list", cli_images, NULL },
	{ "prune", cli_image_prune, "Remove unused images" },
	{ "pull", cli_pull, "Download an image from a registry" },
	{ "push", cli_push, "Upload an image to a registry" },
	{ "rm", cli_rmi, "Remove one or more images" },
	{ "remove", cli_rmi, NULL },
	{ "save", cli_save, "Save one or more images to a tar archive" },
	{ "tag", cli_tag, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE" },
};

static int group(const char *name, const char *what, const struct group_verb *verbs, size_t n, int argc,
		 char **argv)
{
	bool help = argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"));
	if (argc >= 2 && !help) {
		for (size_t i = 0; i < n; i++)
			if (streq(verbs[i].name, argv[1]))
				return verbs[i].fn(argc - 1, argv + 1);
		fprintf(stderr, "berth %s: '%s' is not a berth %s command.\n", name, argv[1], name);
	}
	FILE *f = help ? stdout : stderr;
	fprintf(f, "Usage: berth %s COMMAND\n\nManage %s\n\nCommands:\n", name, what);
	for (size_t i = 0; i < n; i++)
		if (verbs[i].summary)
			fprintf(f, "  %-10s  %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\nRun 'berth %s COMMAND --help' for more information on a command.\n", name);
	return help ? 0 : CLI_EXIT_DAEMON;
}

int cli_container(int argc, char **argv)
{
	return group("container", "containers", container_verbs, ARRAY_SIZE(container_verbs), argc, argv);
}

int cli_image(int argc, char **argv)
{
	return group("image", "images", image_verbs, ARRAY_SIZE(image_verbs), argc, argv);
}
