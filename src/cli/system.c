/*
 * system.c - `berth info` and `berth events`.
 */
#include <getopt.h>

#include "cli/cli.h"
#include "common/json.h"

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
		printf("Server:\n Containers: %lld\n  Running: %lld\n  Paused: %lld\n  Stopped: %lld\n "
		       "Images: %lld\n"
		       " Server Version: %s\n Storage Driver: %s\n Logging Driver: %s\n Cgroup Driver: %s\n"
		       " Default Runtime: %s\n Kernel Version: %s\n Docker Root Dir: %s\n",
		       (long long)json_integer_value(json_object_get(j, "Containers")),
		       (long long)json_integer_value(json_object_get(j, "ContainersRunning")),
		       (long long)json_integer_value(json_object_get(j, "ContainersPaused")),
		       (long long)json_integer_value(json_object_get(j, "ContainersStopped")),
		       (long long)json_integer_value(json_object_get(j, "Images")),
		       json_string_value(json_object_get(j, "ServerVersion")) ?: "",
		       json_string_value(json_object_get(j, "Driver")) ?: "",
		       json_string_value(json_object_get(j, "LoggingDriver")) ?: "",
		       json_string_value(json_object_get(j, "CgroupDriver")) ?: "",
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
	static const struct option lo[] = { { "since", required_argument, NULL, 's' },
					    { "until", required_argument, NULL, 'u' },
					    { "format", required_argument, NULL, 'f' },
					    { "help", no_argument, NULL, 'h' },
					    { NULL, 0, NULL, 0 } };
	const char *since = "", *until = "", *format = NULL;
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == 's')
			since = optarg;
		else if (ch == 'u')
			until = optarg;
		else if (ch == 'f')
			format = optarg;
		else {
			fprintf(ch == 'h' ? stdout : stderr, "Usage: berth events [--since T] [--until T] "
							     "[--format T]\n\nGet real time events\n");
			return ch == 'h' ? 0 : CLI_EXIT_DAEMON;
		}
	}
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
	int rc = http_client_do(cli.http, &r, &st, NULL, &err);
	strbuf_release(&pending);
	cli_close(&cli);
	if (rc < 0) {
		berth_error_print(err, NULL);
		return 1;
	}
	return st == 200 ? 0 : 1;
}
