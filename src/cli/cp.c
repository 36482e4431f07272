/*
 * cp.c - `berth cp`, `berth diff`, `berth export` and `berth commit`.
 *
 * cp follows docker's rules: copying into an existing directory puts the
 * source inside it, to a missing path renames it, "SRC/." copies the
 * contents, "-" streams a tar on stdin/stdout. Host-side extraction uses
 * libarchive's secure flags (no "..", no absolute names, never through a
 * symlink), because the tar's content comes from inside a container.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/fsops.h"
#include "cli/opttab.h"
#include "common/fs.h"
#include "common/json.h"

#define CP_BUF (64u << 10)

static int usage(const char *text, bool help)
{
	fprintf(help ? stdout : stderr, "Usage: berth %s\n", text);
	return help ? 0 : CLI_EXIT_DAEMON;
}

/* Value of a header in "Key: value\r\n" lines (new string) or NULL. */
static char *find_header(const char *headers, const char *key)
{
	size_t kl = strlen(key);
	for (const char *l = headers; l && *l;) {
		if (!strncasecmp(l, key, kl) && l[kl] == ':') {
			const char *v = l + kl + 1 + strspn(l + kl + 1, " ");
			return xstrndup(v, strcspn(v, "\r\n"));
		}
		l = strchr(l, '\n');
		l = l ? l + 1 : NULL;
	}
	return NULL;
}

/* Replace the first path component ("old/x" -> "new/x"). */
static char *rebase(const char *path, const char *old, const char *new)
{
	size_t ol = strlen(old);
	if (!new || strncmp(path, old, ol) || (path[ol] && path[ol] != '/'))
		return xstrdup(path);
	return xasprintf("%s%s", new, path + ol);
}

static int extract(const char *tar, size_t len, const char *dir, const char *old, const char *new)
{
	struct archive *in = archive_read_new(), *out = archive_write_disk_new();
	archive_read_support_format_tar(in);
	archive_read_support_format_empty(in);
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_UNLINK;
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	archive_write_disk_set_options(out, flags);
	int r = archive_read_open_memory(in, tar, len) == ARCHIVE_OK ? 0 : -1;
	struct archive_entry *e;
	while (r == 0 && archive_read_next_header(in, &e) == ARCHIVE_OK) {
		const char *p = archive_entry_pathname(e);
		if (!p || p[0] == '/') {
			r = -1;
			break;
		}
		_cleanup_free_ char *rel = rebase(p, old, new), *full = xasprintf("%s/%s", dir, rel);
		archive_entry_set_pathname(e, full);
		if (archive_entry_hardlink(e)) {
			_cleanup_free_ char *hl = rebase(archive_entry_hardlink(e), old, new);
			_cleanup_free_ char *hfull = xasprintf("%s/%s", dir, hl);
			archive_entry_set_hardlink(e, hfull);
		}
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			fprintf(stderr, "berth cp: %s\n", archive_error_string(out));
			r = 1;
			break;
		}
		const void *buf;
		size_t sz;
		la_int64_t off;
		while (archive_read_data_block(in, &buf, &sz, &off) == ARCHIVE_OK)
			if (archive_write_data_block(out, buf, sz, off) != ARCHIVE_OK) {
				fprintf(stderr, "berth cp: %s\n", archive_error_string(out));
				r = 1;
				break;
			}
		archive_write_finish_entry(out);
	}
	if (r < 0)
		fprintf(stderr, "berth cp: invalid archive from the daemon: %s\n", archive_error_string(in));
	archive_write_close(out);
	archive_write_free(out);
	archive_read_free(in);
	return r ? 1 : 0;
}

/* Where a copy from the container lands: *ret_dir and the new top-level name (NULL: keep it). */
static int cp_dest(const char *dst, const struct cli_path_stat *st, char **ret_dir, char **ret_name)
{
	struct stat ls;
	bool src_dir = st->mode & CLI_MODE_DIR;
	if (stat(dst, &ls) == 0 && S_ISDIR(ls.st_mode)) {
		*ret_dir = xstrdup(dst);
		*ret_name = NULL;
		return 0;
	}
	if (errno != ENOENT || endswith(dst, "/")) {
		fprintf(
		    stderr, "berth cp: %s '%s'\n",
		    src_dir ? "cannot copy a directory to" : "destination directory does not exist:", dst);
		if (errno == ENOENT || src_dir)
			return 1;
	}
	_cleanup_free_ char *a = xstrdup(dst), *b = xstrdup(dst);
	*ret_dir = xstrdup(dirname(a));
	*ret_name = xstrdup(basename(b));
	return 0;
}

static int get_archive(struct cli *cli, const char *ctr, const char *path, struct strbuf *body,
		       struct cli_path_stat *st)
{
	_cleanup_free_ char *id = cli_escape(ctr), *p = cli_escape(path);
	_cleanup_free_ char *url = xasprintf("/v1.41/containers/%s/archive?path=%s", id, p);
	_cleanup_strbuf_ struct strbuf hdrs = STRBUF_INIT;
	struct http_client_request r = { .method = "GET", .path = url, .body_fd = -1, .resp_headers = &hdrs };
	_cleanup_error_ struct berth_error *err = NULL;
	long status = 0;
	if (http_client_do(cli->http, &r, &status, body, &err) < 0) {
		berth_error_print(err, "berth cp");
		return 1;
	}
	if (status != 200) {
		_cleanup_json_ json_t *j = json_loadb(body->buf, body->len, 0, NULL);
		cli_print_daemon_error(j, status);
		return 1;
	}
	_cleanup_free_ char *hv = find_header(hdrs.buf, "X-Docker-Container-Path-Stat");
	if (cli_path_stat_parse(hv, st, &err) < 0) {
		berth_error_print(err, "berth cp");
		return 1;
	}
	return 0;
}

static int cp_from(struct cli *cli, const char *ctr, const char *path, const char *dst, bool follow)
{
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	struct cli_path_stat st = { 0 };
	int r = get_archive(cli, ctr, path, &body, &st);
	if (r == 0 && follow && (st.mode & CLI_MODE_SYMLINK) && *st.link_target) {
		_cleanup_free_ char *target = xstrdup(st.link_target);
		_cleanup_free_ char *want = xstrdup(st.name);
		cli_path_stat_done(&st);
		strbuf_reset(&body);
		r = get_archive(cli, ctr, target, &body, &st);
		if (r == 0) { /* keep the link's name, as docker does */
			free(st.name);
			st.name = TAKE_PTR(want);
		}
	}
	if (r == 0 && streq(dst, "-")) {
		r = fs_write_all(STDOUT_FILENO, body.buf, body.len) < 0 ? 1 : 0;
	} else if (r == 0) {
		_cleanup_free_ char *dir = NULL, *newname = NULL;
		r = cp_dest(dst, &st, &dir, &newname);
		if (r == 0)
			r = extract(body.buf, body.len, dir, st.name, newname);
	}
	cli_path_stat_done(&st);
	return r;
}

/* Tar the host path src into fd with its top-level entry named `name`. */
static int tar_source(const char *src, const char *name, bool follow, int fd)
{
	struct archive *disk = archive_read_disk_new(), *out = archive_write_new();
	if (follow)
		archive_read_disk_set_symlink_logical(disk);
	else
		archive_read_disk_set_symlink_hybrid(disk);
	archive_read_disk_set_standard_lookup(disk);
	archive_write_set_format_pax_restricted(out);
	int r =
	    archive_write_open_fd(out, fd) == ARCHIVE_OK && archive_read_disk_open(disk, src) == ARCHIVE_OK
		? 0
		: 1;
	size_t sl = strlen(src);
	struct archive_entry *e;
	_cleanup_free_ char *buf = xmalloc(CP_BUF);
	while (r == 0 && archive_read_next_header(disk, (e = NULL, &e)) == ARCHIVE_OK) {
		archive_read_disk_descend(disk);
		const char *p = archive_entry_pathname(e);
		_cleanup_free_ char *rel = xasprintf("%s%s", name, p + MIN(strlen(p), sl));
		archive_entry_set_pathname(e, rel);
		if (archive_write_header(out, e) != ARCHIVE_OK) {
			r = 1;
			break;
		}
		ssize_t n;
		while ((n = archive_read_data(disk, buf, CP_BUF)) > 0)
			archive_write_data(out, buf, (size_t)n);
	}
	if (r)
		fprintf(stderr, "berth cp: '%s': %s\n", src,
			archive_error_string(disk) ?: archive_error_string(out) ?: "cannot archive");
	archive_write_close(out);
	archive_write_free(out);
	archive_read_free(disk);
	return r;
}

static long put_archive(struct cli *cli, const char *ctr, const char *path, int fd, bool copy_uid)
{
	_cleanup_free_ char *id = cli_escape(ctr), *p = cli_escape(path);
	_cleanup_free_ char *url =
	    xasprintf("/v1.41/containers/%s/archive?path=%s&noOverwriteDirNonDir=true%s", id, p,
		      copy_uid ? "&copyUIDGID=true" : "");
	struct http_client_request r = {
		.method = "PUT", .path = url, .body_fd = fd, .content_type = "application/x-tar"
	};
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	long status = 0;
	if (lseek(fd, 0, SEEK_SET) < 0 || http_client_do(cli->http, &r, &status, &out, &err) < 0) {
		berth_error_print(err, "berth cp");
		return -1;
	}
	if (status != 200) {
		_cleanup_json_ json_t *j = json_loadb(out.buf, out.len, 0, NULL);
		cli_print_daemon_error(j, status);
	}
	return status;
}

/* HEAD the container path: the HTTP status (-1 on transport errors), *st filled on 200. */
static long head_stat(struct cli *cli, const char *ctr, const char *path, struct cli_path_stat *st)
{
	_cleanup_free_ char *id = cli_escape(ctr), *p = cli_escape(path);
	_cleanup_free_ char *url = xasprintf("/v1.41/containers/%s/archive?path=%s", id, p);
	_cleanup_strbuf_ struct strbuf hdrs = STRBUF_INIT, body = STRBUF_INIT;
	struct http_client_request r = {
		.method = "HEAD", .path = url, .body_fd = -1, .resp_headers = &hdrs
	};
	_cleanup_error_ struct berth_error *err = NULL;
	long status = 0;
	int rc = http_client_do(cli->http, &r, &status, &body, &err);
	_cleanup_free_ char *hv = rc >= 0 ? find_header(hdrs.buf, "X-Docker-Container-Path-Stat") : NULL;
	if (rc < 0 || (status == 200 && cli_path_stat_parse(hv, st, &err) < 0)) {
		berth_error_print(err, "berth cp");
		return -1;
	}
	if (status != 200 && status != 404)
		fprintf(stderr, "Error response from daemon: HEAD '%s' failed with status %ld\n", path,
			status);
	return status;
}

/* Where a host source goes in the container: the directory to extract in and the top-level name. */
static int cp_target(struct cli *cli, const char *ctr, const char *path, const char *src, bool src_dir,
		     char **ret_dir, char **ret_name)
{
	struct cli_path_stat st = { 0 };
	long status = head_stat(cli, ctr, path, &st);
	bool is_dir = st.mode & CLI_MODE_DIR;
	cli_path_stat_done(&st);
	_cleanup_free_ char *a = xstrdup(src), *b = xstrdup(path), *c = xstrdup(path);
	if (status == 200 && is_dir) { /* an existing directory: put the source inside it */
		bool contents = endswith(src, "/.") || streq(src, ".");
		*ret_dir = xstrdup(path);
		*ret_name = xstrdup(contents ? "." : basename(a));
		return 0;
	}
	if (status == 200 && src_dir) {
		fprintf(stderr, "berth cp: cannot copy a directory to the file '%s'\n", path);
		return 1;
	}
	if (status != 200 && status != 404)
		return 1;
	*ret_dir = xstrdup(dirname(b));
	*ret_name = xstrdup(basename(c));
	return 0;
}

static int cp_to(struct cli *cli, const char *src, const char *ctr, const char *path, bool follow,
		 bool copy_uid)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *dir = NULL, *name = NULL;
	if (streq(src, "-")) {
		fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
		dir = xstrdup(path);
	} else {
		struct stat ls;
		if ((follow ? stat(src, &ls) : lstat(src, &ls)) < 0) {
			fprintf(stderr, "berth cp: stat '%s': %s\n", src, strerror(errno));
			return 1;
		}
		if (cp_target(cli, ctr, path, src, S_ISDIR(ls.st_mode), &dir, &name) != 0)
			return 1;
		fd = memfd_create("berth-cp", MFD_CLOEXEC);
		_cleanup_free_ char *s = endswith(src, "/.") ? xstrndup(src, strlen(src) - 2) : xstrdup(src);
		if (fd < 0 || tar_source(s, name, follow, fd) != 0)
			return 1;
	}
	long st = put_archive(cli, ctr, dir, fd, copy_uid);
	return st == 200 ? 0 : 1;
}

int cli_cp(int argc, char **argv)
{
	static const char text[] = "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
				   "       berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH\n\n"
				   "Copy files/folders between a container and the local filesystem\n\n"
				   "Options:\n"
				   "  -a, --archive       Archive mode (copy all uid/gid information)\n"
				   "  -L, --follow-link   Always follow symbol link in SRC_PATH";
	bool archive = false, follow = false;
	const char *host = NULL;
	const struct cli_opt t[] = {
		{ "archive", 'a', CLI_OPT_FLAG, &archive },
		{ "follow-link", 'L', CLI_OPT_FLAG, &follow },
		{ "host", 'H', CLI_OPT_STRING, &host },
		{ NULL },
	};
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (argc - optind != 2)
		return usage(text, false);
	_cleanup_free_ char *sc = NULL, *sp = NULL, *dc = NULL, *dp = NULL;
	cli_cp_split(argv[optind], &sc, &sp);
	cli_cp_split(argv[optind + 1], &dc, &dp);
	if ((sc && dc) || (!sc && !dc)) {
		fprintf(stderr, "berth cp: %s\n",
			sc ? "copying between containers is not supported"
			   : "must specify at least one container source");
		return 1;
	}
	struct cli cli;
	if (cli_open(&cli, host) < 0)
		return 1;
	int r = sc ? cp_from(&cli, sc, sp, dp, follow) : cp_to(&cli, sp, dc, dp, follow, archive);
	cli_close(&cli);
	return r;
}

int cli_diff(int argc, char **argv)
{
	static const char text[] =
	    "diff CONTAINER\n\nInspect changes to files or directories on a container's "
	    "filesystem (A added, C changed, D deleted)";
	if (cli_is_help(argc, argv) || argc != 2)
		return usage(text, cli_is_help(argc, argv));
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *id = cli_escape(argv[1]);
	json_t *resp = NULL;
	long st = cli_call(&cli, "GET", NULL, &resp, "/v1.41/containers/%s/changes", id);
	size_t i;
	json_t *c;
	if (st == 200)
		json_array_foreach (resp, i, c) {
			json_int_t k = json_integer_value(json_object_get(c, "Kind"));
			printf("%c %s\n",
			       k == 1   ? 'A'
			       : k == 2 ? 'D'
					: 'C',
			       json_string_value(json_object_get(c, "Path")) ?: "");
		}
	else if (st > 0)
		cli_print_daemon_error(resp, st);
	json_decref(resp);
	cli_close(&cli);
	return st == 200 ? 0 : 1;
}

int cli_export(int argc, char **argv)
{
	static const char text[] =
	    "export [-o FILE] CONTAINER\n\nExport a container's filesystem as a tar archive\n\n"
	    "Options:\n  -o, --output string   Write to a file, instead of STDOUT";
	const char *output = NULL;
	const struct cli_opt t[] = { { "output", 'o', CLI_OPT_STRING, &output }, { NULL } };
	int rc;
	if (!cli_opttab_parse(t, argc, argv, "+", text, &rc))
		return rc;
	if (argc - optind != 1)
		return usage(text, false);
	if (!output && isatty(STDOUT_FILENO)) {
		fprintf(
		    stderr,
		    "berth export: cowardly refusing to save to a terminal. Use the -o flag or redirect\n");
		return 1;
	}
	_cleanup_free_ char *tmp = output ? xasprintf("%s.berth-tmp", output) : NULL;
	_cleanup_close_ int fd = output ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
					: fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "berth export: open '%s': %s\n", output ? output : "stdout", strerror(errno));
		return 1;
	}
	struct cli cli;
	if (cli_open(&cli, NULL) < 0)
		return 1;
	_cleanup_free_ char *id = cli_escape(argv[optind]);
	_cleanup_free_ char *url = xasprintf("/v1.41/containers/%s/export", id);
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	struct http_client_request r = { .method = "GET", .path = url, .body_fd = -1 };
	_cleanup_error_ struct berth_error *err = NULL;
	long status = 0;
	/* buffered: only a complete 200 body may reach the file */
	rc = http_client_do(cli.http, &r, &status, &body, &err);
	if (rc < 0) {
		berth_error_print(err, "berth export");
	} else if (status != 200) {
		_cleanup_json_ json_t *j = json_loadb(body.buf, body.len, 0, NULL);
		cli_print_daemon_error(j, status);
	} else if ((rc = fs_write_all(fd, body.buf, body.len)) < 0) {
		fprintf(stderr, "berth export: write: %s\n", strerror(-rc));
	}
	cli_close(&cli);
	bool ok = rc >= 0 && status == 200;
	if (output && ok && rename(tmp, output) < 0) {
		fprintf(stderr, "berth export: rename '%s': %s\n", output, strerror(errno));
		ok = false;
	}
	if (output && !ok)
		unlink(tmp);
	return ok ? 0 : 1;
}

struct commit_args {
	const char *author, *message, *host;
	bool pause;
	struct strbuf changes; /* "&changes=..." for each -c */
};

/* -c: "&changes=<escaped>" onto the query. */
static int commit_change(void *dest, const char *arg)
{
	_cleanup_free_ char *e = cli_escape(arg);
	strbuf_addf(dest, "&changes=%s", e);
	return 0;
}

/* false: the verb ends with *ret_rc (--help, a bad option, a wrong operand count). */
static bool commit_parse(int argc, char **argv, struct commit_args *a, const char *text, int *ret_rc)
{
	const struct cli_opt t[] = {
		{ "author", 'a', CLI_OPT_STRING, &a->author },
		{ "change", 'c', CLI_OPT_CALL, &a->changes, .fn = commit_change, .has_arg = true },
		{ "message", 'm', CLI_OPT_STRING, &a->message },
		{ "pause", 'p', CLI_OPT_BOOL, &a->pause },
		{ "host", 'H', CLI_OPT_STRING, &a->host },
		{ NULL },
	};
	const struct cli_usage u = { CLI_USAGE_PLAIN, text };
	if (!cli_opttab_parse_usage(t, argc, argv, "+", &u, ret_rc))
		return false;
	if (argc - optind < 1 || argc - optind > 2) {
		*ret_rc = usage(text, false);
		return false;
	}
	return true;
}

int cli_commit(int argc, char **argv)
{
	static const char text[] =
	    "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]\n\n"
	    "Create a new image from a container's changes\n\n"
	    "Options:\n"
	    "  -a, --author string    Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")\n"
	    "  -c, --change list      Apply Dockerfile instruction to the created image\n"
	    "  -m, --message string   Commit message\n"
	    "  -p, --pause            Pause container during commit (default true)";
	struct commit_args a = { .pause = true, .changes = STRBUF_INIT };
	int r;
	if (!commit_parse(argc, argv, &a, text, &r)) {
		strbuf_release(&a.changes);
		return r;
	}
	_cleanup_strbuf_ struct strbuf q = STRBUF_INIT;
	_cleanup_free_ char *ctr = cli_escape(argv[optind]);
	strbuf_addf(&q, "/v1.41/commit?container=%s&pause=%d%s", ctr, a.pause, a.changes.buf);
	strbuf_release(&a.changes);
	if (optind + 1 < argc) {
		const char *ref = argv[optind + 1], *slash = strrchr(ref, '/');
		const char *colon = strrchr(slash ? slash : ref, ':');
		_cleanup_free_ char *repo = colon ? xstrndup(ref, (size_t)(colon - ref)) : xstrdup(ref);
		_cleanup_free_ char *er = cli_escape(repo), *et = colon ? cli_escape(colon + 1) : NULL;
		strbuf_addf(&q, "&repo=%s%s%s", er, et ? "&tag=" : "", et ? et : "");
	}
	const char *kv[][2] = { { "author", a.author }, { "comment", a.message } };
	for (size_t i = 0; i < ARRAY_SIZE(kv); i++)
		if (kv[i][1]) {
			_cleanup_free_ char *e = cli_escape(kv[i][1]);
			strbuf_addf(&q, "&%s=%s", kv[i][0], e);
		}
	struct cli cli;
	if (cli_open(&cli, a.host) < 0)
		return 1;
	json_t *resp = NULL;
	long st = cli_call(&cli, "POST", NULL, &resp, "%s", q.buf);
	if (st == 201)
		printf("%s\n", json_string_value(json_object_get(resp, "Id")) ?: "");
	else if (st > 0)
		cli_print_daemon_error(resp, st);
	json_decref(resp);
	cli_close(&cli);
	return st == 201 ? 0 : 1;
}
