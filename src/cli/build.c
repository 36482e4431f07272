/*
 * build.c - `berth build [OPTIONS] PATH|-` over POST /build (docker's classic
 * builder API): the context directory is sent as a tar (owners 0:0, like
 * docker's CLI; the daemon applies .dockerignore), the JSON stream is printed
 * as it comes. `berth builder prune` over POST /build/prune.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build/flags.h"
#include "build/ignore.h"
#include "cli/cli-build.h"
#include "cli/opttab.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "common/strv.h"
#include "common/util.h"

struct build_opts {
	char **tags, **args, **labels, **secrets, **ssh, **hosts, **cache_from;
	char *secrets_json, *ssh_json; /* berth extensions of POST /build */
	const char *file, *target, *iidfile, *output, *network, *platform, *host;
	bool no_cache, pull, quiet;
};

/* .dockerignore applied before sending, exactly as the daemon will (it applies it again). */
struct ctx_filter {
	struct ignore *ig;
	char *keep[3]; /* never excluded: the Dockerfile and the ignore files */
};

static bool excluded(const struct ctx_filter *f, const char *rel, bool is_dir)
{
	if (!f->ig || !build_ignore_matches(f->ig, rel))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(f->keep); i++)
		if (f->keep[i] && (streq(f->keep[i], rel) ||
				   (is_dir && startswith(f->keep[i], rel) && f->keep[i][strlen(rel)] == '/')))
			return false;
	/* with `!` exceptions something below an excluded directory may come back */
	return !is_dir || !build_ignore_has_exceptions(f->ig);
}

static int tar_add(struct archive *a, struct archive *disk, const char *dir, const struct ctx_filter *f)
{
	struct archive_entry *e;
	int rc;
	while ((rc = archive_read_next_header2(disk, (e = archive_entry_new()))) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		/* paths are "dir/x": strip the directory prefix */
		const char *rel = p + strlen(dir);
		while (*rel == '/')
			rel++;
		bool is_dir = archive_entry_filetype(e) == AE_IFDIR;
		if (*rel && excluded(f, rel, is_dir)) {
			archive_entry_free(e);
			continue;
		}
		archive_read_disk_descend(disk);
		if (!*rel) {
			archive_entry_free(e);
			continue;
		}
		archive_entry_copy_pathname(e, rel);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		archive_entry_set_uname(e, "");
		archive_entry_set_gname(e, "");
		const char *src = archive_entry_sourcepath(e);
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			archive_entry_free(e);
			return -1;
		}
		if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
			_cleanup_close_ int fd = open(src ? src : p, O_RDONLY | O_CLOEXEC);
			char buf[65536];
			ssize_t n;
			while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
				archive_write_data(a, buf, (size_t)n);
		}
		archive_entry_free(e);
	}
	archive_entry_free(e);
	return rc == ARCHIVE_EOF ? 0 : -1;
}

/* The daemon's choice: "<dockerfile>.dockerignore" when it exists in the context, else ".dockerignore". */
static void filter_open(const char *dir, const char *dockerfile, struct ctx_filter *f)
{
	const char *df = dockerfile ? dockerfile : "Dockerfile";
	f->keep[0] = xstrdup(df);
	f->keep[1] = xasprintf("%s.dockerignore", df);
	f->keep[2] = xstrdup(".dockerignore");
	struct strbuf text = STRBUF_INIT;
	_cleanup_free_ char *specific = xasprintf("%s/%s", dir, f->keep[1]);
	_cleanup_free_ char *generic = xasprintf("%s/.dockerignore", dir);
	if (fs_read_file_at(AT_FDCWD, specific, 4u << 20, &text, NULL) >= 0 ||
	    fs_read_file_at(AT_FDCWD, generic, 4u << 20, &text, NULL) >= 0)
		(void)build_ignore_parse(text.buf, text.len, &f->ig,
					 NULL); /* the daemon reports bad patterns */
	strbuf_release(&text);
}

static void filter_done(struct ctx_filter *f)
{
	build_ignore_free(f->ig);
	for (size_t i = 0; i < ARRAY_SIZE(f->keep); i++)
		free(f->keep[i]);
}

/* The context directory as a tar in a memfd; an outside Dockerfile is added as `extra_name`. */
static int context_tar(const char *dir, const char *dockerfile, const char *extra_name, const char *extra,
		       size_t extra_len)
{
	int fd = memfd_create("berth-build-context", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	struct ctx_filter f = { 0 };
	filter_open(dir, dockerfile, &f);
	struct archive *a = archive_write_new(), *disk = archive_read_disk_new();
	archive_write_set_format_pax_restricted(a);
	/* like docker's CLI: no ACLs, file flags or sparse maps (the daemon uses none of them) and no
	 * xattrs (docker keeps only security.capability; COPY never copies xattrs from the context) */
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
						 ARCHIVE_READDISK_NO_FFLAGS | ARCHIVE_READDISK_NO_SPARSE);
	archive_read_disk_set_symlink_physical(disk);
	int r = archive_write_open_fd(a, fd) == ARCHIVE_OK && archive_read_disk_open(disk, dir) == ARCHIVE_OK
		    ? tar_add(a, disk, dir, &f)
		    : -1;
	filter_done(&f);
	if (r == 0 && extra_name) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, extra_name);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_size(e, (la_int64_t)extra_len);
		r = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1;
		if (r == 0)
			archive_write_data(a, extra, extra_len);
		archive_entry_free(e);
	}
	if (r < 0)
		fprintf(stderr, "berth build: read context '%s': %s\n", dir,
			archive_error_string(disk) ? archive_error_string(disk) : archive_error_string(a));
	archive_read_free(disk);
	if (archive_write_close(a) != ARCHIVE_OK)
		r = -1;
	archive_write_free(a);
	if (r < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct stream_state {
	struct strbuf line;
	char *id;
	bool failed, quiet;
};

static void stream_line(struct stream_state *s, const char *buf, size_t len)
{
	_cleanup_json_ json_t *j = json_loadb(buf, len, 0, NULL);
	if (!j)
		return;
	const char *text = json_string_value(json_object_get(j, "stream"));
	const char *id = json_string_value(json_object_get(json_object_get(j, "aux"), "ID"));
	const char *error = json_string_value(json_object_get(j, "error"));
	if (text && !s->quiet) {
		fputs(text, stdout);
		fflush(stdout);
	}
	if (id) {
		free(s->id);
		s->id = xstrdup(id);
	}
	const char *msg = json_string_value(json_object_get(j, "message"));
	if (msg && !error) {
		fprintf(stderr, "Error response from daemon: %s\n", msg);
		s->failed = true;
	}
	if (error) {
		fprintf(stderr, "%s\n", error);
		s->failed = true;
	}
}

static int on_stream(void *ctx, const char *data, size_t len)
{
	struct stream_state *s = ctx;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			strbuf_addch(&s->line, data[i]);
			continue;
		}
		stream_line(s, s->line.buf, s->line.len);
		strbuf_reset(&s->line);
	}
	return 0;
}

static void add_kv(struct strbuf *path, const char *key, char **kvs)
{
	if (!kvs || !kvs[0])
		return;
	_cleanup_json_ json_t *o = json_object();
	for (char **kv = kvs; *kv; kv++) {
		const char *eq = strchr(*kv, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*kv, (size_t)(eq - *kv)) : xstrdup(*kv);
		const char *v =
		    eq ? eq + 1 : getenv(k); /* docker: --build-arg K takes K from the environment */
		if (v)
			json_object_set_new(o, k, json_string(v));
	}
	_cleanup_free_ char *s = json_dumps(o, JSON_COMPACT);
	_cleanup_free_ char *e = cli_escape(s);
	strbuf_addf(path, "&%s=%s", key, e);
}

static void add_param(struct strbuf *path, const char *key, const char *v)
{
	if (!v)
		return;
	_cleanup_free_ char *e = cli_escape(v);
	strbuf_addf(path, "&%s=%s", key, e);
}

static char *build_path(const struct build_opts *o, const char *dockerfile)
{
	struct strbuf p = STRBUF_INIT;
	strbuf_addstr(&p, "/v1.41/build?rm=1");
	add_param(&p, "t", o->tags ? o->tags[0] : NULL);
	add_param(&p, "dockerfile", dockerfile);
	add_param(&p, "target", o->target);
	add_param(&p, "platform", o->platform);
	add_param(&p, "networkmode", o->network);
	if (o->no_cache)
		strbuf_addstr(&p, "&nocache=1");
	if (o->pull)
		strbuf_addstr(&p, "&pull=1");
	if (o->quiet)
		strbuf_addstr(&p, "&q=1");
	add_kv(&p, "buildargs", o->args);
	add_kv(&p, "labels", o->labels);
	add_param(&p, "secrets", o->secrets_json);
	add_param(&p, "ssh", o->ssh_json);
	for (char **t = o->tags; t && *t; t++)
		if (t != o->tags)
			add_param(&p, "t", *t);
	for (char **h = o->hosts; h && *h; h++)
		add_param(&p, "extrahosts", *h);
	if (o->cache_from) { /* docker's CLI: cachefrom=["a","b"] */
		_cleanup_json_ json_t *cf = json_array();
		for (char **c = o->cache_from; *c; c++)
			json_array_append_new(cf, json_string(*c));
		_cleanup_free_ char *j = json_dumps(cf, JSON_COMPACT);
		add_param(&p, "cachefrom", j);
	}
	return strbuf_detach(&p, NULL);
}

/* Send the context, print the stream; *ret_id the image ID on success. */
static int send_build(struct cli *cli, const struct build_opts *o, int fd, const char *dockerfile,
		      char **ret_id)
{
	_cleanup_free_ char *path = build_path(o, dockerfile);
	struct stream_state s = { .line = STRBUF_INIT, .quiet = o->quiet };
	struct http_client_request r = { .method = "POST",
					 .path = path,
					 .body_fd = fd,
					 .content_type = "application/x-tar",
					 .on_body = on_stream,
					 .on_body_ctx = &s };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	long st = 0;
	int rc = http_client_do(cli->http, &r, &st, &out, &err);
	if (s.line.len)
		stream_line(&s, s.line.buf, s.line.len);
	strbuf_release(&s.line);
	if (rc < 0) {
		berth_error_print(err, "berth build");
		free(s.id);
		return 1;
	}
	if (st != 200) {
		if (!s.failed) {
			_cleanup_json_ json_t *j = json_loadb(out.buf, out.len, 0, NULL);
			cli_print_daemon_error(j, st);
		}
		free(s.id);
		return 1;
	}
	if (s.failed || !s.id) {
		if (!s.failed)
			fprintf(stderr, "berth build: the daemon reported no image ID\n");
		free(s.id);
		return 1;
	}
	*ret_id = s.id;
	return 0;
}

/* -f: a path inside the context is sent as is; "-" or a file outside it is added to the tar. */
static int dockerfile_of(const char *ctxdir, const char *file, char **ret_name, struct strbuf *ret_text)
{
	*ret_name = NULL;
	if (!file)
		return 0;
	if (streq(file, "-")) {
		char buf[65536];
		ssize_t n;
		while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
			strbuf_add(ret_text, buf, (size_t)n);
	} else {
		_cleanup_free_ char *rc = realpath(ctxdir, NULL), *rf = realpath(file, NULL);
		if (!rf) {
			fprintf(stderr,
				"berth build: unable to prepare context: unable to evaluate symlinks in "
				"Dockerfile path: lstat '%s': %s\n",
				file, strerror(errno));
			return -1;
		}
		size_t n = rc ? strlen(rc) : 0;
		if (rc && strncmp(rf, rc, n) == 0 && rf[n] == '/') {
			*ret_name = xstrdup(rf + n + 1);
			return 0;
		}
		if (fs_read_file_at(AT_FDCWD, rf, 4u << 20, ret_text, NULL) < 0) {
			fprintf(stderr, "berth build: read '%s': %s\n", file, strerror(errno));
			return -1;
		}
	}
	_cleanup_free_ char *hex = util_random_hex(8);
	*ret_name = xasprintf(".dockerfile.%s", hex);
	return 1;
}

static int stdin_tar(void)
{
	int fd = memfd_create("berth-build-context", MFD_CLOEXEC);
	char buf[65536];
	ssize_t n;
	while (fd >= 0 && (n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
		if (fs_write_all(fd, buf, (size_t)n) < 0)
			return safe_close(fd);
	if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0)
		return safe_close(fd);
	return fd;
}

static int finish(struct cli *cli, const struct build_opts *o, const char *id)
{
	if (o->iidfile && fs_write_file_atomic(o->iidfile, id, strlen(id), 0644, NULL) < 0) {
		fprintf(stderr, "berth build: write iidfile '%s': %s\n", o->iidfile, strerror(errno));
		return 1;
	}
	if (o->output && cli_build_output(cli, o->output, id) != 0)
		return 1;
	if (o->quiet)
		printf("%s\n", id);
	return 0;
}

/* --secret values (file or environment) hex-encoded into {"id": "..."}; --ssh into {"id": "socket"}. */
static int secret_values(struct build_opts *o)
{
	_cleanup_json_ json_t *sec = json_object(), *ssh = json_object();
	for (char **sp = o->secrets; sp && *sp; sp++) {
		struct build_secret_spec spec;
		_cleanup_error_ struct berth_error *err = NULL;
		if (build_secret_spec_parse(*sp, &spec, &err) < 0) {
			berth_error_print(err, "berth build");
			return -1;
		}
		_cleanup_strbuf_ struct strbuf v = STRBUF_INIT;
		const char *env = spec.env ? getenv(spec.env) : !spec.src ? getenv(spec.id) : NULL;
		int r = 0;
		if (env)
			strbuf_addstr(&v, env);
		else if (spec.env)
			r = berth_error_msg(&err, ENOENT, "secret '%s': environment variable '%s' is not set",
					    spec.id, spec.env);
		else
			r = fs_read_file_at(AT_FDCWD, spec.src ? spec.src : spec.id, 512u << 10, &v, &err);
		if (r < 0) {
			berth_error_print(err, "berth build: secret");
			build_secret_spec_done(&spec);
			return -1;
		}
		struct strbuf hex = STRBUF_INIT;
		for (size_t i = 0; i < v.len; i++)
			strbuf_addf(&hex, "%02x", (unsigned char)v.buf[i]);
		json_object_set_new(sec, spec.id, json_string(hex.buf));
		explicit_bzero(hex.buf, hex.len);
		explicit_bzero(v.buf, v.len);
		strbuf_release(&hex);
		build_secret_spec_done(&spec);
	}
	for (char **sp = o->ssh; sp && *sp; sp++) {
		_cleanup_free_ char *id = NULL, *sock = NULL, *abs = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (build_ssh_spec_parse(*sp, getenv("SSH_AUTH_SOCK"), &id, &sock, &err) < 0) {
			berth_error_print(err, "berth build");
			return -1;
		}
		/* the daemon bind-mounts the socket: an absolute path on this host */
		abs = realpath(sock, NULL);
		if (!abs) {
			fprintf(stderr, "berth build: ssh agent socket '%s': %s\n", sock, strerror(errno));
			return -1;
		}
		json_object_set_new(ssh, id, json_string(abs));
	}
	if (json_object_size(sec))
		o->secrets_json = json_dumps(sec, JSON_COMPACT);
	if (json_object_size(ssh))
		o->ssh_json = json_dumps(ssh, JSON_COMPACT);
	return 0;
}

/* Send ctxdir's context (or stdin's for "-") to the daemon; *ret_id the image ID. 0 or 1 (printed). */
static int build_context(struct build_opts *o, const char *ctxdir, struct cli *cli, char **ret_id)
{
	_cleanup_free_ char *name = NULL;
	_cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
	bool from_stdin = streq(ctxdir, "-");
	int extra = from_stdin ? 0 : dockerfile_of(ctxdir, o->file, &name, &text);
	if (extra < 0)
		return 1;
	if (from_stdin && o->file)
		name = xstrdup(o->file);
	_cleanup_close_ int fd =
	    from_stdin ? stdin_tar() : context_tar(ctxdir, name, extra ? name : NULL, text.buf, text.len);
	if (fd < 0) {
		fprintf(stderr, "berth build: unable to prepare context '%s'\n", ctxdir);
		return 1;
	}
	return send_build(cli, o, fd, name, ret_id);
}

int cli_build_image(const struct cli_build_spec *spec, char **ret_id)
{
	struct build_opts o = { .tags = spec->tags,
				.args = spec->args,
				.labels = spec->labels,
				.cache_from = spec->cache_from,
				.file = spec->dockerfile,
				.target = spec->target,
				.quiet = true };
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	int rc = build_context(&o, spec->context, &cli, ret_id);
	cli_close(&cli);
	return rc;
}

static int do_build(struct build_opts *o, const char *ctxdir)
{
	if (secret_values(o) < 0)
		return 1;
	struct cli cli;
	if (cli_open(&cli, o->host) < 0)
		return 1;
	_cleanup_free_ char *id = NULL;
	int rc = build_context(o, ctxdir, &cli, &id);
	if (rc == 0)
		rc = finish(&cli, o, id);
	cli_close(&cli);
	return rc;
}

/* --help (after "Usage: berth "): docker's wording */
static const char build_usage[] =
    "build [OPTIONS] PATH | -\n\n"
    "Build an image from a Dockerfile\n\n"
    "Options:\n"
    "      --add-host list      Add a custom host-to-IP mapping (host:ip) to RUN's /etc/hosts\n"
    "      --build-arg list     Set build-time variables\n"
    "      --cache-from strings Images to consider as cache sources\n"
    "  -f, --file string        Name of the Dockerfile (default: 'PATH/Dockerfile')\n"
    "      --iidfile string     Write the image ID to the file\n"
    "      --label list         Set metadata for an image\n"
    "      --network string     Network for the RUN instructions: default (the bridge), bridge,\n"
    "                           host, none or a network's name (default \"default\")\n"
    "      --no-cache           Do not use cache when building the image\n"
    "  -o, --output string      Also write the image: type=docker|oci|local,dest=PATH\n"
    "      --platform string    Set platform\n"
    "      --pull               Always attempt to pull a newer version of the image\n"
    "  -q, --quiet              Suppress the build output and print image ID on success\n"
    "      --secret stringArray Secret for RUN --mount=type=secret: id=ID[,src=FILE|,env=VAR]\n"
    "      --ssh stringArray    SSH agent for RUN --mount=type=ssh: default|ID[=SOCKET]\n"
    "  -t, --tag list           Name and optionally a tag in the 'name:tag' format\n"
    "      --target string      Set the target build stage to build";

int cli_build(int argc, char **argv)
{
	static const struct cli_usage u = { CLI_USAGE_PLAIN, build_usage };
	struct build_opts o = { 0 };
	bool rm = true; /* --rm, --force-rm: intermediate containers are always removed */
	const struct cli_opt t[] = {
		{ "add-host", 0, CLI_OPT_STRV, &o.hosts },
		{ "build-arg", 0, CLI_OPT_STRV, &o.args },
		{ "cache-from", 0, CLI_OPT_STRV, &o.cache_from },
		{ "file", 'f', CLI_OPT_STRING, &o.file },
		{ "iidfile", 0, CLI_OPT_STRING, &o.iidfile },
		{ "label", 0, CLI_OPT_STRV, &o.labels },
		{ "network", 0, CLI_OPT_STRING, &o.network },
		{ "no-cache", 0, CLI_OPT_FLAG, &o.no_cache },
		{ "output", 'o', CLI_OPT_STRING, &o.output },
		{ "platform", 0, CLI_OPT_STRING, &o.platform },
		{ "pull", 0, CLI_OPT_FLAG, &o.pull },
		{ "quiet", 'q', CLI_OPT_FLAG, &o.quiet },
		{ "tag", 't', CLI_OPT_STRV, &o.tags },
		{ "target", 0, CLI_OPT_STRING, &o.target },
		{ "rm", 0, CLI_OPT_BOOL, &rm },
		{ "secret", 0, CLI_OPT_STRV, &o.secrets },
		{ "ssh", 0, CLI_OPT_STRV, &o.ssh },
		{ "force-rm", 0, CLI_OPT_BOOL, &rm },
		{ "host", 'H', CLI_OPT_STRING, &o.host },
		{ NULL },
	};
	int rc = 0;
	if (!cli_opttab_parse_usage(t, argc, argv, NULL, &u, &rc))
		goto out;
	if (optind + 1 != argc) {
		fprintf(stderr, "berth build: requires exactly 1 argument (the context: a directory or -)\n");
		rc = CLI_EXIT_DAEMON;
		goto out;
	}
	rc = do_build(&o, argv[optind]);
out:
	strv_free(o.args);
	strv_free(o.labels);
	strv_free(o.tags);
	strv_free(o.secrets);
	strv_free(o.ssh);
	strv_free(o.hosts);
	strv_free(o.cache_from);
	if (o.secrets_json)
		explicit_bzero(o.secrets_json, strlen(o.secrets_json));
	free(o.secrets_json);
	free(o.ssh_json);
	return rc;
}

int cli_builder(int argc, char **argv)
{
	if (argc < 2 || !streq(argv[1], "prune")) {
		fprintf(argc < 2 || cli_is_help(argc, argv) ? stdout : stderr,
			"Usage: berth builder prune [-f] [-a]\n\nRemove build cache\n");
		return argc >= 2 && cli_is_help(argc, argv) ? 0 : CLI_EXIT_DAEMON;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_json_ json_t *resp = NULL;
	long st = cli_call(&cli, "POST", NULL, &resp, "/v1.41/build/prune");
	cli_close(&cli);
	if (st != 200) {
		cli_print_daemon_error(resp, st);
		return 1;
	}
	size_t i;
	json_t *v;
	json_t *del = json_object_get(resp, "CachesDeleted");
	if (json_array_size(del))
		printf("Deleted build cache objects:\n");
	json_array_foreach (del, i, v)
		printf("%s\n", json_string_value(v));
	printf("Deleted %zu build cache entries\n", json_array_size(del));
	return 0;
}
