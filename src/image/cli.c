/*
 * cli.c - `berth image-store`: a low-level tool over the image library, like
 * containerd's `ctr`. Hidden from `berth --help`; documented in docs/image.md.
 * It exists so the library is usable and testable before the daemon, and for
 * debugging a store by hand. Output: human lines, or JSON where noted.
 */
#include <fcntl.h>
#include "common/json.h"
#include "common/opttab.h"
#include "common/strbuf.h"
#include "image/image.h"

#define DEFAULT_ROOT "/var/lib/berth"

struct cli {
	const char *root;
	struct image_store *store;
	bool quiet;
};

static int fail(struct berth_error *e, const char *what)
{
	_cleanup_free_ char *m = berth_error_string(e);
	fprintf(stderr, "berth image-store %s: %s\n", what, m);
	berth_error_free(e);
	return 1;
}

static void print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	printf("%s\n", s);
	free(s);
}

static void on_progress(const struct image_progress *p, void *ud)
{
	struct cli *c = ud;
	if (c->quiet)
		return;
	if (!p->id)
		fprintf(stderr, "%s\n", p->status);
	else if (p->total)
		fprintf(stderr, "%s: %s %llu/%llu\n", p->id, p->status, (unsigned long long)p->current,
			(unsigned long long)p->total);
	else
		fprintf(stderr, "%s: %s\n", p->id, p->status);
}

static int usage(FILE *f)
{
	fprintf(f, "Usage: berth image-store [--root DIR] COMMAND [ARGS]\n\n"
		   "Low-level image store tool (see docs/image.md).\n\n"
		   "Commands:\n"
		   "  pull [--platform P] [--insecure-registry HOST]... [--certs-dir DIR] REF\n"
		   "  push [--insecure-registry HOST]... [--certs-dir DIR] REF\n"
		   "  ls [--filter KEY=VALUE]... [--json] [-q]\n"
		   "  inspect NAME...            docker's image inspect JSON\n"
		   "  history NAME               docker's image history JSON\n"
		   "  rm [-f] NAME...\n"
		   "  tag SOURCE TARGET\n"
		   "  save [--format docker|oci] [-o FILE] NAME...\n"
		   "  load [-i FILE] [--tag REF]\n"
		   "  import [--message MSG] FILE|- [REF]\n"
		   "  export [-o FILE] SNAPSHOT\n"
		   "  mount [--image NAME] SNAPSHOT   prepare (if new) and mount; prints the rootfs path\n"
		   "  unmount [--rm] SNAPSHOT\n"
		   "  commit [-m MSG] [-a AUTHOR] [--config JSON] [--empty-layer] SNAPSHOT [REF]\n"
		   "  prune [-a]\n"
		   "  login -u USER (-p PASS | --password-stdin) REGISTRY\n"
		   "  logout REGISTRY\n");
	return f == stdout ? 0 : 2;
}

/* Scan a verb's options with t (options before operands): 0 to go on, else its exit code. A bad
 * value's callback printed its message; an unknown option or a missing value gets getopt's and the
 * usage. */
static int parse(const struct cli_opt *t, int argc, char **argv)
{
	int r = opttab_scan(t, argc, argv, "+", 0);
	if (r == CLI_OPTTAB_OK)
		return 0;
	return r == CLI_OPTTAB_BAD_VALUE ? 2 : usage(stderr);
}

static int open_out(const char *path)
{
	if (!path || streq(path, "-"))
		return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

static int open_in(const char *path)
{
	if (!path || streq(path, "-"))
		return fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Options common to pull/push. */
struct remote_args {
	const char *platform;
	const char *certs_dir;
	const char *insecure[16];
	size_t n_insecure;
};

static int add_insecure(void *dest, const char *arg)
{
	struct remote_args *ra = dest;
	if (ra->n_insecure == ARRAY_SIZE(ra->insecure) - 1) {
		fprintf(stderr, "berth image-store: at most %zu --insecure-registry\n",
			ARRAY_SIZE(ra->insecure) - 1);
		return -1;
	}
	ra->insecure[ra->n_insecure++] = arg;
	return 0;
}

/* 0 with optind at the reference, else the exit code. */
static int parse_remote(struct cli *c, int argc, char **argv, struct remote_args *ra)
{
	const struct cli_opt t[] = {
		{ "platform", 0, CLI_OPT_STRING, &ra->platform },
		{ "insecure-registry", 0, CLI_OPT_CALL, ra, .fn = add_insecure, .has_arg = true },
		{ "certs-dir", 0, CLI_OPT_STRING, &ra->certs_dir },
		{ "quiet", 'q', CLI_OPT_FLAG, &c->quiet },
		{ NULL },
	};
	int r = parse(t, argc, argv);
	return r ? r : optind < argc ? 0 : usage(stderr);
}

/* Pull's and push's options: the registries and certificates given, progress to the terminal. */
static struct image_remote_opts remote_opts(struct cli *c, const struct remote_args *ra)
{
	return (struct image_remote_opts){ .insecure_registries = ra->insecure,
					   .certs_dir = ra->certs_dir,
					   .progress = on_progress,
					   .progress_data = c };
}

static int cmd_pull(struct cli *c, int argc, char **argv)
{
	struct remote_args ra = { 0 };
	int r = parse_remote(c, argc, argv, &ra);
	if (r)
		return r;
	struct image_remote_opts o = remote_opts(c, &ra);
	struct berth_error *e = NULL;
	_cleanup_free_ char *id = NULL;
	if (image_pull(c->store, argv[optind], ra.platform, &o, &id, &e) < 0)
		return fail(e, "pull");
	printf("%s\n", id);
	return 0;
}

static int cmd_push(struct cli *c, int argc, char **argv)
{
	struct remote_args ra = { 0 };
	int r = parse_remote(c, argc, argv, &ra);
	if (r)
		return r;
	struct image_remote_opts o = remote_opts(c, &ra);
	struct berth_error *e = NULL;
	_cleanup_free_ char *dg = NULL;
	if (image_push(c->store, argv[optind], &o, &dg, &e) < 0)
		return fail(e, "push");
	printf("%s\n", dg);
	return 0;
}

/* ls --filter KEY=VALUE: docker's reference, label, dangling, before and since. */
struct ls_filters {
	struct image_list_filters f;
	const char *refs[16], *labels[16];
	size_t nr, nl;
};

static int add_filter(struct ls_filters *lf, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq)
		return -1;
	size_t k = (size_t)(eq - arg);
	const char *v = eq + 1;
	if (k == 9 && !strncmp(arg, "reference", k) && lf->nr < 15)
		lf->refs[lf->nr++] = v;
	else if (k == 5 && !strncmp(arg, "label", k) && lf->nl < 15)
		lf->labels[lf->nl++] = v;
	else if (k == 8 && !strncmp(arg, "dangling", k)) {
		if (!streq(v, "true") && !streq(v, "1") && !streq(v, "false") && !streq(v, "0"))
			return -1; /* docker: "invalid filter 'dangling=maybe'" */
		lf->f.dangling_set = true, lf->f.dangling = streq(v, "true") || streq(v, "1");
	} else if (k == 6 && !strncmp(arg, "before", k))
		lf->f.before = v;
	else if (k == 5 && !strncmp(arg, "since", k))
		lf->f.since = v;
	else
		return -1;
	return 0;
}

static int opt_filter(void *dest, const char *arg)
{
	if (add_filter(dest, arg) == 0)
		return 0;
	fprintf(stderr, "berth image-store ls: invalid filter '%s'\n", arg);
	return -1;
}

static void print_table(json_t *list, bool quiet)
{
	size_t i;
	json_t *e;
	if (!quiet)
		printf("%-40s %-20s %-14s %s\n", "REPOSITORY:TAG", "IMAGE ID", "CREATED", "SIZE");
	json_array_foreach (list, i, e) {
		const char *id = json_string_value(json_object_get(e, "Id"));
		if (quiet) {
			printf("%.12s\n", id + 7);
			continue;
		}
		json_t *tags = json_object_get(e, "RepoTags");
		const char *tag =
		    json_array_size(tags) ? json_string_value(json_array_get(tags, 0)) : "<none>:<none>";
		printf("%-40s %-20.12s %-14lld %lld\n", tag, id + 7,
		       (long long)json_integer_value(json_object_get(e, "Created")),
		       (long long)json_integer_value(json_object_get(e, "Size")));
	}
}

static int cmd_ls(struct cli *c, int argc, char **argv)
{
	struct ls_filters lf = { 0 };
	bool as_json = false, quiet = false;
	const struct cli_opt t[] = {
		{ "filter", 'f', CLI_OPT_CALL, &lf, .fn = opt_filter, .has_arg = true },
		{ "json", 0, CLI_OPT_FLAG, &as_json },
		{ "quiet", 'q', CLI_OPT_FLAG, &quiet },
		{ NULL },
	};
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind < argc)
		return usage(stderr);
	struct image_list_filters f = lf.f;
	f.reference = lf.nr ? lf.refs : NULL;
	f.label = lf.nl ? lf.labels : NULL;
	struct berth_error *e = NULL;
	_cleanup_json_ json_t *list = NULL;
	if (image_list(c->store, &f, &list, &e) < 0)
		return fail(e, "ls");
	if (as_json)
		print_json(list);
	else
		print_table(list, quiet);
	return 0;
}

static int cmd_inspect(struct cli *c, int argc, char **argv, bool history)
{
	if (argc < 2)
		return usage(stderr);
	_cleanup_json_ json_t *all = json_array();
	for (int i = 1; i < argc; i++) {
		struct berth_error *e = NULL;
		json_t *j = NULL;
		int r = history ? image_history(c->store, argv[i], &j, &e)
				: image_inspect(c->store, argv[i], &j, &e);
		if (r < 0)
			return fail(e, history ? "history" : "inspect");
		if (history) {
			print_json(j);
			json_decref(j);
			return 0;
		}
		json_array_append_new(all, j);
	}
	print_json(all);
	return 0;
}

static int cmd_rm(struct cli *c, int argc, char **argv)
{
	bool force = false;
	const struct cli_opt t[] = { { "force", 'f', CLI_OPT_FLAG, &force }, { NULL } };
	int rc = parse(t, argc, argv);
	if (rc)
		return rc;
	if (optind >= argc)
		return usage(stderr);
	int flags = force ? IMAGE_REMOVE_FORCE : 0;
	for (int i = optind; i < argc; i++) {
		struct berth_error *e = NULL;
		_cleanup_json_ json_t *out = NULL;
		if (image_remove(c->store, argv[i], flags, NULL, NULL, &out, &e) < 0) {
			rc = fail(e, "rm");
			continue;
		}
		size_t k;
		json_t *x;
		json_array_foreach (out, k, x) {
			const char *key = json_object_get(x, "Untagged") ? "Untagged" : "Deleted";
			printf("%s: %s\n", key, json_string_value(json_object_get(x, key)));
		}
	}
	return rc;
}

static int cmd_tag(struct cli *c, int argc, char **argv)
{
	if (argc != 3)
		return usage(stderr);
	struct berth_error *e = NULL;
	if (image_tag(c->store, argv[1], argv[2], &e) < 0)
		return fail(e, "tag");
	return 0;
}

static int cmd_save(struct cli *c, int argc, char **argv)
{
	const char *out = NULL, *format = "docker";
	const struct cli_opt t[] = {
		{ "output", 'o', CLI_OPT_STRING, &out },
		{ "format", 0, CLI_OPT_STRING, &format },
		{ NULL },
	};
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind >= argc || (!streq(format, "docker") && !streq(format, "oci")))
		return usage(stderr);
	enum image_archive_format fmt = streq(format, "oci") ? IMAGE_ARCHIVE_OCI : IMAGE_ARCHIVE_DOCKER;
	_cleanup_close_ int fd = open_out(out);
	if (fd < 0) {
		fprintf(stderr, "berth image-store save: open '%s': %s\n", out, strerror(errno));
		return 1;
	}
	struct berth_error *e = NULL;
	if (image_save(c->store, (const char *const *)argv + optind, fmt, fd, &e) < 0)
		return fail(e, "save");
	return 0;
}

static int cmd_load(struct cli *c, int argc, char **argv)
{
	const char *in = NULL, *tag = NULL;
	const struct cli_opt t[] = {
		{ "input", 'i', CLI_OPT_STRING, &in },
		{ "tag", 0, CLI_OPT_STRING, &tag },
		{ "quiet", 'q', CLI_OPT_FLAG, &c->quiet },
		{ NULL },
	};
	int r = parse(t, argc, argv);
	if (r)
		return r;
	_cleanup_close_ int fd = open_in(in);
	if (fd < 0) {
		fprintf(stderr, "berth image-store load: open '%s': %s\n", in, strerror(errno));
		return 1;
	}
	struct berth_error *e = NULL;
	_cleanup_strv_ char **loaded = NULL;
	if (image_load(c->store, fd, tag, on_progress, c, &loaded, &e) < 0)
		return fail(e, "load");
	for (char **l = loaded; *l; l++)
		printf("%s\n", *l);
	return 0;
}

static int cmd_mount(struct cli *c, int argc, char **argv)
{
	const char *image = NULL;
	const struct cli_opt t[] = { { "image", 0, CLI_OPT_STRING, &image }, { NULL } };
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind + 1 != argc)
		return usage(stderr);
	struct berth_error *e = NULL;
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	r = image_snapshot_mount(c->store, argv[optind], &sn, &e);
	if (r == -ENOENT) {
		e = berth_error_free(e);
		r = image_snapshot_prepare(c->store, argv[optind], image, &sn, &e);
	}
	if (r < 0)
		return fail(e, "mount");
	printf("%s\n", sn->rootfs);
	return 0;
}

static int cmd_unmount(struct cli *c, int argc, char **argv)
{
	bool rm = false;
	const struct cli_opt t[] = { { "rm", 0, CLI_OPT_FLAG, &rm }, { NULL } };
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind + 1 != argc)
		return usage(stderr);
	struct berth_error *e = NULL;
	r = rm ? image_snapshot_remove(c->store, argv[optind], &e)
	       : image_snapshot_unmount(c->store, argv[optind], &e);
	if (r < 0)
		return fail(e, "unmount");
	return 0;
}

static int cmd_prune(struct cli *c, int argc, char **argv)
{
	bool all = false;
	const struct cli_opt t[] = { { "all", 'a', CLI_OPT_FLAG, &all }, { NULL } };
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind < argc)
		return usage(stderr);
	struct berth_error *e = NULL;
	_cleanup_json_ json_t *out = NULL;
	if (image_prune(c->store, all, 0, NULL, NULL, NULL, &out, &e) < 0)
		return fail(e, "prune");
	print_json(out);
	return 0;
}

static int cmd_import(struct cli *c, int argc, char **argv)
{
	const char *msg = NULL;
	const struct cli_opt t[] = { { "message", 'm', CLI_OPT_STRING, &msg }, { NULL } };
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind >= argc || argc - optind > 2)
		return usage(stderr);
	_cleanup_close_ int fd = open_in(argv[optind]);
	if (fd < 0) {
		fprintf(stderr, "berth image-store import: open '%s': %s\n", argv[optind], strerror(errno));
		return 1;
	}
	struct berth_error *e = NULL;
	_cleanup_free_ char *id = NULL;
	if (image_import(c->store, fd, optind + 1 < argc ? argv[optind + 1] : NULL, NULL, msg, &id, &e) < 0)
		return fail(e, "import");
	printf("%s\n", id);
	return 0;
}

static int cmd_export(struct cli *c, int argc, char **argv)
{
	const char *out = NULL;
	const struct cli_opt t[] = { { "output", 'o', CLI_OPT_STRING, &out }, { NULL } };
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind + 1 != argc)
		return usage(stderr);
	_cleanup_close_ int fd = open_out(out);
	if (fd < 0) {
		fprintf(stderr, "berth image-store export: open '%s': %s\n", out, strerror(errno));
		return 1;
	}
	struct berth_error *e = NULL;
	if (image_snapshot_export(c->store, argv[optind], fd, &e) < 0)
		return fail(e, "export");
	return 0;
}

static int cmd_commit(struct cli *c, int argc, char **argv)
{
	struct image_commit_opts co = { 0 };
	_cleanup_json_ json_t *cfg = NULL;
	const char *config = NULL;
	const struct cli_opt t[] = {
		{ "message", 'm', CLI_OPT_STRING, &co.comment },
		{ "author", 'a', CLI_OPT_STRING, &co.author },
		{ "config", 0, CLI_OPT_STRING, &config },
		{ "empty-layer", 0, CLI_OPT_FLAG, &co.empty_layer },
		{ NULL },
	};
	int r = parse(t, argc, argv);
	if (r)
		return r;
	struct berth_error *e = NULL;
	if (config && json_parse(config, strlen(config), "--config", &cfg, &e) < 0)
		return fail(e, "commit");
	if (optind >= argc || argc - optind > 2)
		return usage(stderr);
	co.ref = optind + 1 < argc ? argv[optind + 1] : NULL;
	co.config = cfg;
	_cleanup_free_ char *id = NULL;
	if (image_commit(c->store, argv[optind], &co, &id, &e) < 0)
		return fail(e, "commit");
	printf("%s\n", id);
	return 0;
}

static int cmd_login(struct cli *c, int argc, char **argv)
{
	const char *user = NULL, *pass = NULL;
	bool stdin_pass = false;
	const struct cli_opt t[] = {
		{ "username", 'u', CLI_OPT_STRING, &user },
		{ "password", 'p', CLI_OPT_STRING, &pass },
		{ "password-stdin", 0, CLI_OPT_FLAG, &stdin_pass },
		{ NULL },
	};
	int r = parse(t, argc, argv);
	if (r)
		return r;
	if (optind + 1 != argc || !user)
		return usage(stderr);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (stdin_pass) {
		if (strbuf_read_fd(&sb, STDIN_FILENO, 4096) < 0) {
			fprintf(stderr, "berth image-store login: cannot read the password from stdin\n");
			return 1;
		}
		strbuf_trim_trailing(&sb);
		pass = sb.buf;
	}
	if (!pass)
		return usage(stderr);
	struct image_auth auth = { .username = user, .password = pass };
	struct berth_error *e = NULL;
	if (image_login(c->store, argv[optind], &auth, NULL, &e) < 0 ||
	    image_credentials_store(argv[optind], user, pass, &e) < 0)
		return fail(e, "login");
	printf("Login Succeeded\n");
	return 0;
}

static int cmd_logout(struct cli *c, int argc, char **argv)
{
	if (argc != 2)
		return usage(stderr);
	struct berth_error *e = NULL;
	if (image_credentials_erase(argv[1], &e) < 0)
		return fail(e, "logout");
	printf("Removing login credentials for %s\n", argv[1]);
	return 0;
}

struct verb {
	const char *name;
	int (*run)(struct cli *c, int argc, char **argv);
};

static int cmd_inspect1(struct cli *c, int argc, char **argv)
{
	return cmd_inspect(c, argc, argv, false);
}

static int cmd_history(struct cli *c, int argc, char **argv)
{
	return cmd_inspect(c, argc, argv, true);
}

static const struct verb verbs[] = {
	{ "pull", cmd_pull },        { "push", cmd_push },       { "ls", cmd_ls },
	{ "inspect", cmd_inspect1 }, { "history", cmd_history }, { "rm", cmd_rm },
	{ "tag", cmd_tag },          { "save", cmd_save },       { "load", cmd_load },
	{ "import", cmd_import },    { "export", cmd_export },   { "mount", cmd_mount },
	{ "unmount", cmd_unmount },  { "commit", cmd_commit },   { "prune", cmd_prune },
	{ "login", cmd_login },      { "logout", cmd_logout },
};

int image_store_main(int argc, char **argv)
{
	struct cli c = { .root = getenv("BERTH_ROOT") };
	const struct cli_opt t[] = {
		{ "root", 0, CLI_OPT_STRING, &c.root },
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
	int r = opttab_scan(t, argc, argv, "+", 0);
	if (r != CLI_OPTTAB_OK || optind >= argc)
		return usage(r == CLI_OPTTAB_HELP ? stdout : stderr);
	int i = optind;
	if (!c.root || !*c.root)
		c.root = DEFAULT_ROOT;
	for (size_t v = 0; v < ARRAY_SIZE(verbs); v++) {
		if (!streq(verbs[v].name, argv[i]))
			continue;
		struct berth_error *e = NULL;
		if (image_store_open(c.root, &c.store, &e) < 0)
			return fail(e, argv[i]);
		int rc = verbs[v].run(&c, argc - i, argv + i);
		image_store_free(c.store);
		return rc;
	}
	fprintf(stderr, "berth image-store: unknown command '%s'\n", argv[i]);
	return 2;
}
