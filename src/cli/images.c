/*
 * images.c - `berth images`, `import`, `rmi`, `tag`.
 */
#include <fcntl.h>

#include "cli/cli.h"
#include "cli/opttab.h"
#include "common/json.h"

int cli_images(int argc, char **argv)
{
	static const struct cli_usage u = { CLI_USAGE_PLAIN, "images [-q] [--format T]\n\nList images" };
	bool quiet = false;
	const char *format = NULL, *host = NULL;
	const struct cli_opt opts[] = {
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ "format", 0, CLI_OPT_STRING, &format },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse_usage(opts, argc, argv, NULL, &u, &rc))
		return rc;
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	json_t *resp = NULL;
	long st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/images/json");
	cli_close(&cli);
	if (st != 200) {
		if (st > 0)
			cli_print_daemon_error(resp, st);
		json_decref(resp);
		return 1;
	}
	json_t *rows = json_array();
	size_t i;
	json_t *img;
	json_array_foreach (resp, i, img) {
		const char *id = json_string_value(json_object_get(img, "Id")) ?: "sha256:";
		json_t *tags = json_object_get(img, "RepoTags");
		size_t nt = json_array_size(tags) ? json_array_size(tags) : 1;
		for (size_t t = 0; t < nt; t++) {
			const char *tag = json_string_value(json_array_get(tags, t)) ?: "<none>:<none>";
			const char *colon = strrchr(tag, ':');
			_cleanup_free_ char *repo =
			    colon ? xstrndup(tag, (size_t)(colon - tag)) : xstrdup(tag);
			_cleanup_free_ char *ago =
			    cli_human_ago(json_integer_value(json_object_get(img, "Created")));
			_cleanup_free_ char *size =
			    cli_human_size((double)json_integer_value(json_object_get(img, "Size")));
			_cleanup_json_ json_t *o = json_pack(
			    "{s:s,s:s,s:s%,s:s,s:s}", "Repository", repo, "Tag", colon ? colon + 1 : "<none>",
			    "ID", id + 7, (size_t)12, "CreatedSince", ago, "Size", size);
			if (quiet) {
				printf("%s\n", json_string_value(json_object_get(o, "ID")));
			} else if (format) {
				_cleanup_free_ char *line = cli_format(format, o);
				printf("%s\n", line);
			} else {
				json_array_append_new(
				    rows, json_pack("[O,O,O,O,O]", json_object_get(o, "Repository"),
						    json_object_get(o, "Tag"), json_object_get(o, "ID"),
						    json_object_get(o, "CreatedSince"),
						    json_object_get(o, "Size")));
			}
		}
	}
	static const char *const h[] = { "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE" };
	if (!quiet && !format)
		cli_print_table(h, ARRAY_SIZE(h), rows);
	json_decref(rows);
	json_decref(resp);
	return 0;
}

int cli_import(int argc, char **argv)
{
	static const struct cli_usage u = {
		CLI_USAGE_PLAIN, "import [-c CHANGE] FILE|- [REPOSITORY[:TAG]]\n\n"
				 "Import the contents from a tarball to create a filesystem image"
	};
	const char *change = NULL, *host = NULL;
	const struct cli_opt t[] = {
		{ "change", 'c', CLI_OPT_STRING, &change },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int prc;
	if (!cli_opttab_parse_usage(t, argc, argv, NULL, &u, &prc))
		return prc;
	if (optind >= argc || optind + 2 < argc) {
		fprintf(stderr, "berth import: requires 1 or 2 arguments\n");
		return CLI_EXIT_DAEMON;
	}
	_cleanup_close_ int fd = streq(argv[optind], "-") ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0)
							  : open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "berth import: open '%s': %s\n", argv[optind], strerror(errno));
		return 1;
	}
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	_cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
	strbuf_addstr(&path, "/v1.41/images/create?fromSrc=-");
	if (optind + 1 < argc) {
		const char *ref = argv[optind + 1];
		const char *slash = strrchr(ref, '/');
		const char *colon = strrchr(slash ? slash : ref, ':');
		_cleanup_free_ char *repo = cli_escape(colon ? xstrndup(ref, (size_t)(colon - ref)) : ref);
		strbuf_addf(&path, "&repo=%s", repo);
		if (colon) {
			_cleanup_free_ char *tag = cli_escape(colon + 1);
			strbuf_addf(&path, "&tag=%s", tag);
		}
	}
	if (change) {
		_cleanup_free_ char *c = cli_escape(change);
		strbuf_addf(&path, "&changes=%s", c);
	}
	struct http_client_request r = {
		.method = "POST", .path = path.buf, .body_fd = fd, .content_type = "application/x-tar"
	};
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	long st = 0;
	int rc = http_client_do(cli.http, &r, &st, &out, &err);
	cli_close(&cli);
	if (rc < 0) {
		berth_error_print(err, NULL);
		return 1;
	}
	_cleanup_json_ json_t *j = json_loadb(out.buf, out.len, JSON_DISABLE_EOF_CHECK, NULL);
	if (st != 200) {
		cli_print_daemon_error(j, st);
		return 1;
	}
	printf("%s\n", json_string_value(json_object_get(j, "status")) ?: "");
	return 0;
}

int cli_rmi(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argc, argv)) {
		fprintf(argc < 2 ? stderr : stdout, "Usage: berth rmi [-f] IMAGE...\n\nRemove images\n");
		return argc < 2 ? CLI_EXIT_DAEMON : 0;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	bool force = false;
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-f") || streq(argv[i], "--force")) {
			force = true;
			continue;
		}
		json_t *resp = NULL;
		long st = cli_call(&cli, "DELETE", NULL, &resp, "/v1.41/images/%s?force=%d", argv[i], force);
		if (st == 200) {
			size_t k;
			json_t *e;
			json_array_foreach (resp, k, e) {
				const char *u = json_string_value(json_object_get(e, "Untagged"));
				const char *d = json_string_value(json_object_get(e, "Deleted"));
				printf(u ? "Untagged: %s\n" : "Deleted: %s\n", u ? u : d);
			}
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

int cli_tag(int argc, char **argv)
{
	if (argc != 3 || cli_is_help(argc, argv)) {
		fprintf(argc != 3 ? stderr : stdout, "Usage: berth tag SOURCE_IMAGE TARGET_IMAGE[:TAG]\n");
		return argc != 3 ? CLI_EXIT_DAEMON : 0;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	const char *ref = argv[2];
	const char *slash = strrchr(ref, '/');
	const char *colon = strrchr(slash ? slash : ref, ':');
	_cleanup_free_ char *repo_raw = colon ? xstrndup(ref, (size_t)(colon - ref)) : xstrdup(ref);
	_cleanup_free_ char *repo = cli_escape(repo_raw), *tag = cli_escape(colon ? colon + 1 : "latest");
	json_t *resp = NULL;
	long st =
	    cli_call(&cli, "POST", NULL, &resp, "/v1.41/images/%s/tag?repo=%s&tag=%s", argv[1], repo, tag);
	if (st != 201 && st > 0)
		cli_print_daemon_error(resp, st);
	json_decref(resp);
	cli_close(&cli);
	return st == 201 ? 0 : 1;
}
