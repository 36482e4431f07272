/*
 * cli.c - `berth build-tool`, a hidden debugging command: prints the parsed
 * Dockerfile, the build plan or the build context as JSON. The real
 * `berth build` lives in the CLI module once the engine exists.
 */
#include <fcntl.h>

#include "build/build.h"
#include "build/build-internal.h"
#include "common/fs.h"
#include "common/opttab.h"
#include "common/strbuf.h"

struct tool_opts {
	const char *file;
	const char *target;
	const char *platform;
	char **build_args;
	char **labels;
	char **images; /* "REF=config.json" */
	const char *context;
};

static void tool_usage(FILE *f)
{
	fprintf(f, "Usage: berth build-tool parse [-f] DOCKERFILE\n"
		   "       berth build-tool plan [OPTIONS] CONTEXT\n"
		   "       berth build-tool context [-f DOCKERFILE] CONTEXT|-\n\n"
		   "Print the parsed Dockerfile, the build plan or the build context as JSON.\n"
		   "CONTEXT '-' reads a context tar from stdin.\n\n"
		   "Options:\n"
		   "  -f, --file PATH          Dockerfile (default: CONTEXT/Dockerfile)\n"
		   "      --build-arg K=V      Set a build-time variable\n"
		   "      --target STAGE       Build only up to STAGE\n"
		   "      --platform P         Target platform (default: the host's)\n"
		   "      --label K=V          Set a label on the final image\n"
		   "      --image REF=FILE     Use FILE (an image config JSON) for base image REF\n");
}

static int tool_fail(struct berth_error *err)
{
	berth_error_print(err, "berth build-tool");
	berth_error_free(err);
	return 1;
}

static int opt_build_arg(void *dest, const char *a)
{
	struct tool_opts *o = dest;
	if (strchr(a, '=')) {
		strv_add(&o->build_args, a);
		return 0;
	}
	const char *v = getenv(a); /* docker: --build-arg NAME takes the value from the environment */
	if (v) {
		_cleanup_free_ char *kv = xasprintf("%s=%s", a, v);
		strv_add(&o->build_args, kv);
	}
	return 0;
}

static int opt_image(void *dest, const char *a)
{
	if (!strchr(a, '=')) {
		fprintf(stderr, "berth build-tool: --image expects REF=FILE, got '%s'\n", a);
		return -1;
	}
	strv_add(dest, a);
	return 0;
}

static int parse_opts(int argc, char **argv, struct tool_opts *o)
{
	const struct cli_opt t[] = {
		{ "file", 'f', CLI_OPT_STRING, &o->file },
		{ "build-arg", 0, CLI_OPT_CALL, o, .fn = opt_build_arg, .has_arg = true },
		{ "target", 0, CLI_OPT_STRING, &o->target },
		{ "platform", 0, CLI_OPT_STRING, &o->platform },
		{ "label", 0, CLI_OPT_STRV, &o->labels },
		{ "help", 'h', CLI_OPT_HELP },
		{ "image", 0, CLI_OPT_CALL, &o->images, .fn = opt_image, .has_arg = true },
		{ NULL },
	};
	int r = opttab_scan_usage(t, argc, argv, "+", tool_usage);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 0 : 2;
	o->context = optind < argc ? argv[optind++] : NULL;
	if (optind < argc) {
		fprintf(stderr, "berth build-tool: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return -1;
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(j);
	if (!s)
		return 1;
	puts(s);
	free(s);
	return 0;
}

static int load_dockerfile(const char *path, struct dockerfile **ret, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, path, DF_MAX_SIZE + 1, &sb, err);
	if (r < 0)
		return r;
	const char *base = strrchr(path, '/');
	return build_dockerfile_parse(sb.buf, sb.len, base ? base + 1 : path, ret, err);
}

/* The Dockerfile's path relative to the context directory, when inside it. */
static const char *dockerfile_in_context(const char *file, const char *context)
{
	size_t l = strlen(context);
	if (strncmp(file, context, l) == 0 && file[l] == '/')
		return file + l + 1;
	return "Dockerfile";
}

static int open_context(const char *dir, const char *df_rel, struct build_context **ret,
			struct berth_error **err)
{
	if (streq(dir, "-"))
		return build_context_open_tar(STDIN_FILENO, getenv("TMPDIR"), df_rel, ret, err);
	return build_context_open_dir(dir, df_rel, ret, err);
}

static json_t *context_json(struct build_context *ctx, struct berth_error **err)
{
	json_t *entries = json_array();
	for (size_t i = 0; i < ctx->n; i++) {
		struct ctx_entry *e = &ctx->e[i];
		const char *type = S_ISDIR(e->mode) ? "dir" : S_ISLNK(e->mode) ? "symlink" : "file";
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", (unsigned)(e->mode & 07777));
		json_t *j =
		    json_pack("{s:s,s:s,s:s,s:i,s:i,s:I}", "path", e->path, "type", type, "mode", mode, "uid",
			      (int)e->uid, "gid", (int)e->gid, "size", (json_int_t)e->size);
		if (e->link)
			json_object_set_new(j, "link", json_string(e->link));
		if (e->build_only)
			json_object_set_new(j, "build_only", json_true());
		if (S_ISREG(e->mode) && build_context_entry_digest(ctx, e, err) >= 0)
			json_object_set_new(j, "digest", json_string(e->digest));
		json_array_append_new(entries, j);
	}
	return json_pack("{s:o}", "entries", entries);
}

/*
 * Base images for `plan` come from --image REF=FILE: FILE is an image config
 * (docker inspect's Config, or an OCI/docker image config with a "config"
 * member); the image ID is the sha256 of the file. Other references resolve to
 * themselves with an empty config.
 */
static int tool_resolve(void *userdata, const char *ref, const char *platform, char **ret_id,
			json_t **ret_config, struct berth_error **err)
{
	char *const *images = userdata;
	size_t rl = strlen(ref);
	for (char *const *i = images; i && *i; i++) {
		if (strncmp(*i, ref, rl) != 0 || (*i)[rl] != '=')
			continue;
		const char *file = *i + rl + 1;
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		int r = fs_read_file_at(AT_FDCWD, file, JSON_DEFAULT_MAX_SIZE, &sb, err);
		if (r < 0)
			return r;
		json_t *j = NULL;
		if ((r = json_parse(sb.buf, sb.len, file, &j, err)) < 0)
			return r;
		json_t *cfg = json_object_get(j, "config");
		if (!json_is_object(cfg))
			cfg = json_object_get(j, "Config");
		*ret_config = json_incref(json_is_object(cfg) ? cfg : j);
		json_decref(j);
		char d[DIGEST_STRING_MAX];
		digest_buffer(DIGEST_SHA256, sb.buf, sb.len, d);
		*ret_id = xstrdup(d);
		return 0;
	}
	*ret_id = xstrdup(ref);
	*ret_config = json_object();
	return 0;
}

static int tool_run(const char *verb, struct tool_opts *o)
{
	struct berth_error *err = NULL;
	_cleanup_dockerfile_ struct dockerfile *df = NULL;
	_cleanup_context_ struct build_context *ctx = NULL;
	_cleanup_free_ char *file = NULL;
	if (streq(verb, "parse")) {
		const char *path = o->file ? o->file : o->context;
		if (!path) {
			tool_usage(stderr);
			return 2;
		}
		if (load_dockerfile(path, &df, &err) < 0)
			return tool_fail(err);
		return print_json(build_dockerfile_to_json(df));
	}
	if (!o->context) {
		tool_usage(stderr);
		return 2;
	}
	file = o->file ? xstrdup(o->file) : xasprintf("%s/Dockerfile", o->context);
	const char *df_rel = o->file ? dockerfile_in_context(o->file, o->context) : "Dockerfile";
	if (open_context(o->context, df_rel, &ctx, &err) < 0)
		return tool_fail(err);
	if (streq(verb, "context")) {
		json_t *j = context_json(ctx, &err);
		if (err)
			return tool_fail(err);
		return print_json(j);
	}
	if (streq(o->context, "-") && !o->file) {
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		if (build_context_read(ctx, df_rel, DF_MAX_SIZE + 1, &sb, &err) < 0 ||
		    build_dockerfile_parse(sb.buf, sb.len, df_rel, &df, &err) < 0)
			return tool_fail(err);
	} else if (load_dockerfile(file, &df, &err) < 0) {
		return tool_fail(err);
	}
	struct build_plan_opts po = {
		.build_args = o->build_args,
		.target = o->target,
		.platform = o->platform,
		.labels = o->labels,
		.resolve = tool_resolve,
		.userdata = o->images,
	};
	_cleanup_plan_ struct build_plan *plan = NULL;
	if (build_plan_new(df, ctx, &po, &plan, &err) < 0)
		return tool_fail(err);
	return print_json(build_plan_to_json(plan));
}

int build_tool_main(int argc, char **argv)
{
	if (argc < 2 || streq(argv[1], "--help") || streq(argv[1], "-h")) {
		tool_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	const char *verb = argv[1];
	if (!streq(verb, "parse") && !streq(verb, "plan") && !streq(verb, "context")) {
		fprintf(stderr, "berth build-tool: unknown verb '%s'\n", verb);
		return 2;
	}
	struct tool_opts o = { 0 };
	int r = parse_opts(argc - 1, argv + 1, &o);
	if (r < 0)
		r = tool_run(verb, &o);
	strv_free(o.build_args);
	strv_free(o.labels);
	strv_free(o.images);
	return r;
}
