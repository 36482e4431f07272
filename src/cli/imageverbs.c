/*
 * imageverbs.c - `berth pull`, `push`, `save`, `load`, `history` and
 * `image prune` over the Engine API.
 */
#include <fcntl.h>
#include <time.h>

#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "image/image.h"

struct stream_sink {
	struct cli_progress p;
	struct strbuf raw; /* the first bytes, for an error body */
};

static int sink_feed(void *ctx, const char *data, size_t len)
{
	struct stream_sink *s = ctx;
	if (s->raw.len < 64 * 1024)
		strbuf_add(&s->raw, data, MIN(len, 64 * 1024 - s->raw.len));
	return cli_progress_feed(&s->p, data, len);
}

/* Stream a request's JSON messages through the progress renderer; 0 or the exit code. */
static int stream_messages(struct cli *cli, struct http_client_request *r, bool quiet, json_t **ret_aux)
{
	struct stream_sink s;
	cli_progress_init(&s.p, stdout, isatty(STDOUT_FILENO), quiet);
	strbuf_init(&s.raw, 0);
	r->on_body = sink_feed;
	r->on_body_ctx = &s;
	_cleanup_error_ struct berth_error *err = NULL;
	long st = 0;
	int rc = http_client_do(cli->http, r, &st, NULL, &err);
	if (rc < 0)
		berth_error_print(err, NULL);
	if (rc >= 0 && st != 200) {
		_cleanup_json_ json_t *j = json_loadb(s.raw.buf, s.raw.len, 0, NULL);
		cli_print_daemon_error(j, st);
	}
	if (rc < 0 || st != 200) {
		cli_progress_done(&s.p);
		strbuf_release(&s.raw);
		return 1;
	}
	cli_progress_finish(&s.p);
	if (s.p.error)
		fprintf(stderr, "%s\n", s.p.error);
	rc = s.p.error ? 1 : 0;
	if (ret_aux)
		*ret_aux = json_incref(s.p.aux);
	cli_progress_done(&s.p);
	strbuf_release(&s.raw);
	return rc;
}

int cli_pull(int argc, char **argv)
{
	static const char *text =
	    "pull [OPTIONS] NAME[:TAG|@DIGEST]\n\nDownload an image from a registry\n\n"
	    "Options:\n"
	    "      --platform string   Set platform if server is multi-platform capable\n"
	    "  -q, --quiet             Suppress verbose output\n";
	const char *platform = NULL;
	bool quiet = false, all_tags = false, no_trust = false;
	const struct cli_opt t[] = {
		{ "platform", 0, CLI_OPT_STRING, &platform },
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ "all-tags", 'a', CLI_OPT_FLAG, &all_tags },
		{ "disable-content-trust", 0, CLI_OPT_FLAG, &no_trust }, /* accepted, as docker's */
		{ NULL },
	};
	int prc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &prc))
		return prc;
	if (all_tags) {
		fprintf(stderr, "berth pull: --all-tags is not supported\n");
		return CLI_EXIT_DAEMON;
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth pull\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	if (image_ref_parse(argv[optind], IMAGE_REF_DEFAULT, &ref, &err) < 0) {
		berth_error_print(err, NULL);
		return 1;
	}
	if (!ref->tag && !ref->digest) {
		if (!quiet)
			printf("Using default tag: latest\n");
		ref->tag = xstrdup("latest");
	}
	_cleanup_free_ char *name = image_ref_name(ref), *full = image_ref_string(ref);
	_cleanup_free_ char *qn = cli_escape(name), *qt = cli_escape(ref->digest ? ref->digest : ref->tag);
	_cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
	strbuf_addf(&path, "/v1.41/images/create?fromImage=%s&tag=%s", qn, qt);
	if (platform) {
		_cleanup_free_ char *qp = cli_escape(platform);
		strbuf_addf(&path, "&platform=%s", qp);
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *auth = cli_registry_auth_header(ref->domain);
	const char *hdrs[] = { auth, NULL };
	struct http_client_request r = { .method = "POST", .path = path.buf, .body_fd = -1, .headers = hdrs };
	int rc = stream_messages(&cli, &r, quiet, NULL);
	cli_close(&cli);
	if (rc == 0)
		printf("%s\n", full);
	return rc;
}

/* The local tags of repository `name` ("reg:5000/x"), for a push without a tag. */
static char **repo_tags(struct cli *cli, const char *repo)
{
	json_t *list = NULL;
	if (cli_expect(cli, "GET", NULL, &list, 200, "/v1.41/images/json") < 0)
		return NULL;
	struct strbuf tags = STRBUF_INIT;
	size_t n = 0, i, k;
	char **out = xcalloc(1, sizeof(char *));
	json_t *img, *t;
	json_array_foreach (list, i, img)
		json_array_foreach (json_object_get(img, "RepoTags"), k, t) {
			const char *s = json_string_value(t);
			const char *colon = s ? strrchr(s, ':') : NULL;
			if (!colon || strchr(colon, '/') || (size_t)(colon - s) != strlen(repo) ||
			    strncmp(s, repo, strlen(repo)))
				continue;
			out = xrealloc(out, (n + 2) * sizeof(char *));
			out[n++] = xstrdup(colon + 1);
			out[n] = NULL;
		}
	strbuf_release(&tags);
	json_decref(list);
	return out;
}

static int push_one(struct cli *cli, const char *repo, const char *tag, const char *auth, bool quiet)
{
	_cleanup_free_ char *qt = cli_escape(tag);
	_cleanup_free_ char *path = xasprintf("/v1.41/images/%s/push?tag=%s", repo, qt);
	const char *hdrs[] = { auth, NULL };
	struct http_client_request r = { .method = "POST", .path = path, .body_fd = -1, .headers = hdrs };
	_cleanup_json_ json_t *aux = NULL;
	int rc = stream_messages(cli, &r, quiet, &aux);
	if (rc == 0 && quiet)
		printf("%s:%s\n", repo, tag);
	return rc;
}

int cli_push_image(const char *repo, const char *tag, const char *user, const char *password,
		   const char *host)
{
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *auth = cli_registry_auth_header_for(user, password, host);
	int rc = push_one(&cli, repo, tag, auth, true);
	cli_close(&cli);
	return rc;
}

int cli_tag_image(const char *id, const char *repo, const char *tag)
{
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *qi = cli_escape(id), *qr = cli_escape(repo), *qt = cli_escape(tag);
	_cleanup_free_ char *path = xasprintf("/v1.41/images/%s/tag?repo=%s&tag=%s", qi, qr, qt);
	long st = cli_expect(&cli, "POST", NULL, NULL, 201, path);
	cli_close(&cli);
	return st < 0 ? 1 : 0;
}

int cli_push(int argc, char **argv)
{
	static const char *text = "push [OPTIONS] NAME[:TAG]\n\nUpload an image to a registry\n\n"
				  "Without a tag, every local tag of the repository is pushed.\n\n"
				  "Options:\n"
				  "  -a, --all-tags   Push all tagged images in the repository\n"
				  "  -q, --quiet      Suppress verbose output\n";
	bool quiet = false, all = false, no_trust = false; /* content trust: accepted, ignored */
	const struct cli_opt t[] = {
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ "all-tags", 'a', CLI_OPT_FLAG, &all },
		{ "disable-content-trust", 0, CLI_OPT_FLAG, &no_trust },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth push\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	if (image_ref_parse(argv[optind], IMAGE_REF_NO_DIGEST, &ref, &err) < 0) {
		berth_error_print(err, NULL);
		return 1;
	}
	if (all && ref->tag) {
		fprintf(stderr, "tag can't be used with --all-tags/-a\n");
		return CLI_EXIT_DAEMON;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *auth = cli_registry_auth_header(ref->domain);
	_cleanup_image_ref_ struct image_ref *bare = image_ref_dup(ref);
	free(bare->tag);
	bare->tag = NULL;
	_cleanup_free_ char *repo = image_ref_familiar(bare);
	rc = 0;
	if (ref->tag) {
		rc = push_one(&cli, repo, ref->tag, auth, quiet);
	} else {
		_cleanup_strv_ char **tags = repo_tags(&cli, repo);
		if (!tags || !tags[0]) {
			fprintf(stderr, "An image does not exist locally with the tag: %s\n", repo);
			rc = 1;
		}
		for (char **tg = tags; tg && *tg && rc == 0; tg++)
			rc = push_one(&cli, repo, *tg, auth, quiet);
	}
	cli_close(&cli);
	return rc;
}

static int write_fd(void *ctx, const char *data, size_t len)
{
	return fs_write_all(*(int *)ctx, data, len) < 0 ? 1 : 0;
}

/* Check the images before a save so an error body never lands in the archive. */
static bool images_exist(struct cli *cli, int n, char **names)
{
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *ip = xasprintf("/v1.41/images/%s/json", names[i]);
		if (cli_expect(cli, "GET", NULL, NULL, 200, ip) < 0)
			return false;
	}
	return true;
}

int cli_save(int argc, char **argv)
{
	static const char *text =
	    "save [OPTIONS] IMAGE [IMAGE...]\n\n"
	    "Save one or more images to a tar archive (streamed to STDOUT by default)\n\n"
	    "Options:\n"
	    "  -o, --output string   Write to a file, instead of STDOUT\n";
	const char *output = NULL;
	const struct cli_opt t[] = { { "output", 'o', CLI_OPT_STRING, &output }, { NULL } };
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind >= argc) {
		fprintf(stderr, "\"berth save\" requires at least 1 argument.\n");
		return cli_usage(text, false);
	}
	if (!output && isatty(STDOUT_FILENO)) {
		fprintf(stderr, "cowardly refusing to save to a terminal. Use the -o flag or redirect\n");
		return 1;
	}
	_cleanup_strbuf_ struct strbuf path = STRBUF_INIT;
	strbuf_addstr(&path, "/v1.41/images/get");
	for (int i = optind; i < argc; i++) {
		_cleanup_free_ char *q = cli_escape(argv[i]);
		strbuf_addf(&path, "%cnames=%s", i == optind ? '?' : '&', q);
	}
	_cleanup_free_ char *tmp = output ? xasprintf("%s.tmp-berth", output) : NULL;
	_cleanup_close_ int fd = output ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
					: fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "failed to save image: open '%s': %s\n", output ? output : "-",
			strerror(errno));
		return 1;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	long st = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	struct http_client_request h = {
		.method = "GET", .path = path.buf, .body_fd = -1, .on_body = write_fd, .on_body_ctx = &fd
	};
	rc = images_exist(&cli, argc - optind, argv + optind) ? http_client_do(cli.http, &h, &st, NULL, &err)
							      : -ENOENT;
	if (rc == -ENOENT) {
		cli_close(&cli);
		if (tmp)
			unlink(tmp);
		return 1;
	}
	cli_close(&cli);
	if (rc < 0 || st != 200) {
		if (rc < 0)
			berth_error_print(err, NULL);
		else
			fprintf(stderr, "Error response from daemon: HTTP status %ld\n", st);
		if (tmp)
			unlink(tmp);
		return 1;
	}
	if (tmp && (fsync(fd) < 0 || rename(tmp, output) < 0)) {
		fprintf(stderr, "failed to save image: write '%s': %s\n", output, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

int cli_load(int argc, char **argv)
{
	static const char *text = "load [OPTIONS]\n\nLoad an image from a tar archive or STDIN\n\n"
				  "Options:\n"
				  "  -i, --input string   Read from tar archive file, instead of STDIN\n"
				  "  -q, --quiet          Suppress the load output\n";
	const char *input = NULL;
	bool quiet = false;
	const struct cli_opt t[] = {
		{ "input", 'i', CLI_OPT_STRING, &input },
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind != argc) {
		fprintf(stderr, "\"berth load\" accepts no arguments.\n");
		return cli_usage(text, false);
	}
	if (!input && isatty(STDIN_FILENO)) {
		fprintf(stderr, "requested load from stdin, but stdin is empty\n");
		return 1;
	}
	_cleanup_close_ int fd =
	    input ? open(input, O_RDONLY | O_CLOEXEC) : fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", input, strerror(errno));
		return 1;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *path = xasprintf("/v1.41/images/load?quiet=%d", quiet);
	struct http_client_request r = {
		.method = "POST", .path = path, .body_fd = fd, .content_type = "application/x-tar"
	};
	/* "Loaded image: x" lines are the result, not progress: docker prints them with -q too */
	rc = stream_messages(&cli, &r, false, NULL);
	cli_close(&cli);
	return rc;
}

static char *history_created_by(const char *s, bool trunc)
{
	/* docker shows "/bin/sh -c #(nop) " prefixes as is; newlines and tabs become spaces */
	_cleanup_free_ char *flat = xstrdup(s ? s : "");
	for (char *c = flat; *c; c++)
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	if (trunc && strlen(flat) > 45)
		return xasprintf("%.44s…", flat);
	return TAKE_PTR(flat);
}

static json_t *history_row(const json_t *h, bool trunc, bool human)
{
	const char *id = json_string_value(json_object_get(h, "Id")) ?: "<missing>";
	if (streq(id, "") || streq(id, "<missing>"))
		id = "<missing>";
	else if (trunc && startswith(id, "sha256:"))
		id += 7;
	_cleanup_free_ char *by =
	    history_created_by(json_string_value(json_object_get(h, "CreatedBy")), trunc);
	int64_t created = json_integer_value(json_object_get(h, "Created"));
	int64_t size = json_integer_value(json_object_get(h, "Size"));
	_cleanup_free_ char *since = cli_human_ago(created);
	_cleanup_free_ char *hsize =
	    human ? cli_human_size((double)size) : xasprintf("%lld", (long long)size);
	char at[RFC3339_MAX];
	struct timespec ts = { .tv_sec = created };
	util_format_rfc3339(&ts, at);
	return json_pack("{s:s%,s:s,s:s,s:s,s:s,s:s}", "ID", id,
			 strcmp(id, "<missing>") && trunc ? (size_t)12 : strlen(id), "CreatedSince",
			 human ? since : at, "CreatedAt", at, "CreatedBy", by, "Size", hsize, "Comment",
			 json_string_value(json_object_get(h, "Comment")) ?: "");
}

int cli_history(int argc, char **argv)
{
	static const char *text =
	    "history [OPTIONS] IMAGE\n\nShow the history of an image\n\n"
	    "Options:\n"
	    "      --format string   Pretty-print images using a Go template\n"
	    "  -H, --human[=false]   Print sizes and dates in human readable format (default true)\n"
	    "      --no-trunc        Don't truncate output\n"
	    "  -q, --quiet           Only show image IDs\n";
	bool no_trunc = false, quiet = false, human = true;
	const char *format = NULL;
	const struct cli_opt t[] = {
		{ "no-trunc", 0, CLI_OPT_FLAG, &no_trunc },
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ "format", 0, CLI_OPT_STRING, &format },
		{ "human", 'H', CLI_OPT_BOOL, &human },
		{ NULL },
	};
	int prc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &prc))
		return prc;
	bool trunc = !no_trunc;
	if (optind + 1 != argc) {
		fprintf(stderr, "\"berth history\" requires exactly 1 argument.\n");
		return cli_usage(text, false);
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *path = xasprintf("/v1.41/images/%s/history", argv[optind]);
	json_t *list = NULL;
	long st = cli_expect(&cli, "GET", NULL, &list, 200, path);
	cli_close(&cli);
	if (st < 0)
		return 1;
	static const char *const keys[] = { "ID", "CreatedSince", "CreatedBy", "Size", "Comment" };
	static const char *const heads[] = { "IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT" };
	_cleanup_json_ json_t *rows = json_array();
	if (format && streq(format, "table"))
		format = NULL;
	size_t i;
	json_t *h;
	json_array_foreach (list, i, h) {
		_cleanup_json_ json_t *o = history_row(h, trunc, human);
		const char *id = json_string_value(json_object_get(o, "ID"));
		if (quiet) {
			if (!streq(id, "<missing>"))
				printf("%s\n", id);
			continue;
		}
		cli_emit_row(format, o, rows, keys, ARRAY_SIZE(keys));
	}
	json_decref(list);
	if (!quiet && !format)
		cli_print_table(heads, ARRAY_SIZE(heads), rows);
	return 0;
}

int cli_image_prune(int argc, char **argv)
{
	static const char *text = "image prune [OPTIONS]\n\nRemove unused images\n\n"
				  "Options:\n"
				  "  -a, --all             Remove all unused images, not just dangling ones\n"
				  "      --filter filter   Provide filter values (e.g. 'until=<timestamp>', "
				  "'label=k=v')\n"
				  "  -f, --force           Do not prompt for confirmation\n";
	bool all = false, force = false;
	_cleanup_json_ json_t *filters = json_object();
	const struct cli_opt t[] = {
		{ "all", 'a', CLI_OPT_FLAG, &all },
		{ "force", 'f', CLI_OPT_FLAG, &force },
		CLI_OPT_FILTER("filter", 0, filters),
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (!force &&
	    !cli_confirm(all ? "WARNING! This will remove all images without at least one container "
			       "associated to them.\nAre you sure you want to continue?"
			     : "WARNING! This will remove all dangling images.\n"
			       "Are you sure you want to continue?"))
		return 0;
	cli_filter_add(filters, all ? "dangling=false" : "dangling=true");
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	rc = cli_prune_post(&cli, "images", filters, "ImagesDeleted", "Images", true);
	cli_close(&cli);
	return rc;
}
