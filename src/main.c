/*
 * main.c - argv dispatch for the multi-call berth binary. Nothing else lives
 * here: each role's entry point is in its module (runtime/cli.c, ...).
 *
 * Invoked as "berth-runtime" (symlink), it behaves as "berth runtime".
 */
#include <jansson.h>
#include <libgen.h>
#include <sys/random.h>

#include "build/build.h"
#include "api/api.h"
#include "cli/cli.h"
#include "cli/network.h"
#include "cli/cli-build.h"
#include "cli/ecs.h"
#include "cli/verbs.h"
#include "common/log.h"
#include "shim/shim.h"
#include "runtime/runtime.h"
#include "image/image.h"
#include "net/net.h"
#include "registry/registry.h"
#include "agent/agent.h"
#include "agent/logship.h"
#include "agent/metrics.h"
#include "sched/sched.h"
#include "server/server.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* Commands, one line each. Hidden ones have a NULL summary. */
static const struct command commands[] = {
	{ "version", cmd_version, "Show the berth version information" },
	{ "help", cmd_help, "Show help for berth" },
	{ "runtime", runtime_main, "OCI runtime with runc's command line (also as berth-runtime)" },
	{ "image-store", image_store_main, NULL },
	{ "net-tool", net_tool_main, NULL },
	{ "registry", registry_main, "Run an OCI distribution registry (serve, gc)" },
	{ "server", server_main, "Run the cluster control plane (ECS-compatible API, agent protocol)" },
	{ "agent", agent_main, "Join a cluster as a node: run its tasks, serve the host's Docker API" },
	{ "build-tool", build_tool_main, NULL },
	{ "daemon", api_daemon_main, "Run the berth engine (Docker Engine API on a unix socket)" },
	{ "shim", shim_main, NULL },
	{ "run", cli_run, "Create and run a new container from an image" },
	{ "create", cli_create, "Create a new container" },
	{ "start", cli_start, "Start stopped containers" },
	{ "stop", cli_stop, "Stop running containers" },
	{ "restart", cli_restart, "Restart containers" },
	{ "kill", cli_kill, "Kill running containers" },
	{ "rm", cli_rm, "Remove containers" },
	{ "ps", cli_ps, "List containers" },
	{ "logs", cli_logs, "Fetch the logs of a container" },
	{ "inspect", cli_inspect, "Return low-level information on containers and images" },
	{ "exec", cli_exec, "Run a command in a running container" },
	{ "attach", cli_attach,
	  "Attach local standard input, output, and error streams to a running container" },
	{ "wait", cli_wait, "Block until containers stop, then print their exit codes" },
	{ "pause", cli_pause, "Pause all processes within containers" },
	{ "unpause", cli_unpause, "Unpause all processes within containers" },
	{ "rename", cli_rename, "Rename a container" },
	{ "update", cli_update, "Update resource limits and restart policy of containers" },
	{ "top", cli_top, "Display the running processes of a container" },
	{ "images", cli_images, "List images" },
	{ "import", cli_import, "Import a rootfs tarball as an image" },
	{ "rmi", cli_rmi, "Remove images" },
	{ "tag", cli_tag, "Tag an image" },
	{ "info", cli_info, "Display system-wide information" },
	{ "events", cli_events, "Get real time events from the daemon" },
	{ "stats", cli_stats, "Display a live stream of container(s) resource usage statistics" },
	{ "cp", cli_cp, "Copy files/folders between a container and the local filesystem" },
	{ "diff", cli_diff, "Inspect changes to files or directories on a container's filesystem" },
	{ "export", cli_export, "Export a container's filesystem as a tar archive" },
	{ "commit", cli_commit, "Create a new image from a container's changes" },
	{ "network", cli_network, "Manage networks" },
	{ "port", cli_port, "List port mappings or a specific mapping for the container" },
	{ "build", cli_build, "Build an image from a Dockerfile" },
	{ "builder", cli_builder, "Manage builds (prune the build cache)" },
	{ "pull", cli_pull, "Download an image from a registry" },
	{ "push", cli_push, "Upload an image to a registry" },
	{ "save", cli_save, "Save one or more images to a tar archive" },
	{ "load", cli_load, "Load an image from a tar archive or STDIN" },
	{ "history", cli_history, "Show the history of an image" },
	{ "login", cli_login, "Log in to a registry" },
	{ "logout", cli_logout, "Log out from a registry" },
	{ "volume", cli_volume, "Manage volumes" },
	{ "system", cli_system, "Manage berth (df, prune, info, events)" },
	{ "container", cli_container, "Manage containers" },
	{ "image", cli_image, "Manage images" },
	{ "bench-scheduler", server_bench_scheduler_main, "Benchmark the scheduler on a generated cluster" },
	{ "bench-metrics", agent_metrics_bench_main, "Benchmark the metrics sampler and exposition" },
	{ "bench-logs", agent_logs_bench_main, "Benchmark the agent's log shipping into a server" },
	{ "cluster", cli_cluster, "Manage clusters on a berth server (ECS API)" },
	{ "node", cli_node, "Manage the nodes of a cluster" },
	{ "taskdef", cli_taskdef, "Manage task definitions" },
	{ "task", cli_task, "Run and manage tasks on a cluster" },
	{ "lb", cli_lb, "Manage load balancers of a cluster" },
	{ "service", cli_service, "Run and deploy services on a cluster" },
	{ "apply", cli_apply, "Deploy a compose file (stack) to a cluster" },
	{ "stack", cli_stack, "Manage stacks on a cluster" },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: berth [OPTIONS] COMMAND [ARG...]\n\n"
		   "A self-hosted container platform: OCI runtime, image store, registry,\n"
		   "Docker-compatible engine and builder in one binary.\n\n"
		   "Options:\n"
		   "  -h, --help       Show this help\n"
		   "  -v, --version    Print version information and quit\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].summary)
			fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'berth COMMAND --help' for more information on a command.\n");
}

static int cmd_help(int argc, char **argv)
{
	if (argc > 1) {
		const struct command *c = find_command(argv[1]);
		if (!c) {
			fprintf(stderr, "berth: unknown help topic '%s'\n", argv[1]);
			return 2;
		}
		char *sub[] = { argv[1], (char *)"--help", NULL };
		return c->run(2, sub);
	}
	usage(stdout);
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
		printf("Usage: berth version\n\nShow the berth version information\n");
		return 0;
	}
	printf("berth version %s\n", BERTH_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	const char *self = argc > 0 ? basename(argv[0]) : "berth";

	if (streq(self, "berth-runtime")) {
		const struct command *c = find_command("runtime");
		if (c)
			return c->run(argc, argv);
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *arg = argv[1];
	if (streq(arg, "-h") || streq(arg, "--help")) {
		usage(stdout);
		return 0;
	}
	if (streq(arg, "-v") || streq(arg, "--version")) {
		printf("berth version %s\n", BERTH_VERSION);
		return 0;
	}
	/* jansson's hash seed from one getrandom() (its own: open, read, close of /dev/urandom) */
	uint32_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed) && seed)
		json_object_seed(seed);
	const struct command *c = find_command(arg);
	if (!c) {
		fprintf(stderr, "berth: '%s' is not a berth command.\nSee 'berth --help'.\n", arg);
		return 2;
	}
	return c->run(argc - 1, argv + 1);
}
