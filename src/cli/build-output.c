/*
 * build-output.c - `berth build --output type=docker|oci|local,dest=PATH`:
 * the built image fetched with GET /images/get (docker save; with berth's
 * format=oci extension an OCI image layout for type=oci) and, for
 * type=local, its layers applied in order into the destination directory
 * (whiteouts honoured).
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli-build.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"

static int to_fd(void *ctx, const char *data, size_t len)
{
	return fs_write_all(*(int *)ctx, data, len) < 0 ? -1 : 0;
}

static int fetch_image(struct cli *cli, const char *id, bool oci, int fd)
{
	_cleanup_free_ char *e = cli_escape(id);
	_cleanup_free_ char *path = xasprintf("/v1.41/images/get?names=%s%s", e, oci ? "&format=oci" : "");
	struct http_client_request r = {
		.method = "GET", .path = path, .body_fd = -1, .on_body = to_fd, .on_body_ctx = &fd
	};
	_cleanup_error_ struct berth_error *err = NULL;
	long st = 0;
	if (http_client_do(cli->http, &r, &st, NULL, &err) < 0) {
		berth_error_print(err, "berth build: --output");
		return -1;
	}
	if (st != 200) {
		fprintf(stderr, "berth build: --output: fetching the image failed with status %ld\n", st);
		return -1;
	}
	return 0;
}

/* Apply one layer tar (fd) onto dest: ".wh.x" removes x, ".wh..wh..opq" empties the directory. */
static int apply_layer(struct archive *in, const char *dest)
{
	struct archive *w = archive_write_disk_new();
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
					      ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
					      ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	struct archive_entry *e;
	int r = 0;
	while (r == 0 && archive_read_next_header(in, &e) == ARCHIVE_OK) {
		_cleanup_free_ char *p = fs_path_clean(archive_entry_pathname(e));
		char *slash = strrchr(p, '/');
		const char *base = slash ? slash + 1 : p;
		if (strncmp(base, ".wh.", 4) == 0) {
			if (slash)
				*slash = '\0';
			const char *dir = slash ? p : "";
			_cleanup_free_ char *d = xasprintf("%s/%s", dest, dir);
			if (streq(base, ".wh..wh..opq")) {
				(void)fs_rm_rf(d, NULL);
				(void)fs_mkdir_p(d, 0755, NULL);
			} else {
				_cleanup_free_ char *victim = xasprintf("%s/%s", d, base + 4);
				(void)fs_rm_rf(victim, NULL);
			}
			continue;
		}
		_cleanup_free_ char *full = xasprintf("%s/%s", dest, p);
		/* a later layer replaces what is there, except that directories merge */
		struct stat st;
		bool is_dir = archive_entry_filetype(e) == AE_IFDIR;
		if (lstat(full, &st) == 0 && !(is_dir && S_ISDIR(st.st_mode)))
			(void)fs_rm_rf(full, NULL);
		archive_entry_set_pathname(e, full);
		if (archive_entry_hardlink(e)) {
			_cleanup_free_ char *h = xasprintf("%s/%s", dest, archive_entry_hardlink(e));
			archive_entry_set_hardlink(e, h);
		}
		if (archive_write_header(w, e) < ARCHIVE_WARN)
			r = -1;
		const void *buf;
		size_t len;
		int64_t off;
		while (r == 0 && archive_read_data_block(in, &buf, &len, &off) == ARCHIVE_OK)
			if (archive_write_data_block(w, buf, len, off) < ARCHIVE_OK)
				r = -1;
		archive_write_finish_entry(w);
	}
	archive_write_free(w);
	return r;
}

static int open_tar(const char *path, struct archive **ret)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
		archive_read_free(a);
		return -1;
	}
	*ret = a;
	return 0;
}

/* Unpack the docker save archive (fd) into tmp, then apply manifest.json's layers onto dest. */
static int output_local(int fd, const char *dest)
{
	char tmp[] = "/tmp/berth-output-XXXXXX";
	if (!mkdtemp(tmp) || fs_mkdir_p(dest, 0755, NULL) < 0) {
		fprintf(stderr, "berth build: --output: prepare '%s': %s\n", dest, strerror(errno));
		return -1;
	}
	_cleanup_free_ char *arch = xasprintf("/proc/self/fd/%d", fd);
	struct archive *a = NULL;
	int r = open_tar(arch, &a) < 0 ? -1 : 0;
	if (r == 0) {
		_cleanup_free_ char *d = xasprintf("%s", tmp);
		struct archive_entry *e;
		struct archive *w = archive_write_disk_new();
		archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						      ARCHIVE_EXTRACT_SECURE_SYMLINKS);
		while (r == 0 && archive_read_next_header(a, &e) == ARCHIVE_OK) {
			_cleanup_free_ char *full = xasprintf("%s/%s", d, archive_entry_pathname(e));
			archive_entry_set_pathname(e, full);
			const void *buf;
			size_t len;
			int64_t off;
			if (archive_write_header(w, e) < ARCHIVE_WARN)
				r = -1;
			while (r == 0 && archive_read_data_block(a, &buf, &len, &off) == ARCHIVE_OK)
				if (archive_write_data_block(w, buf, len, off) < ARCHIVE_OK)
					r = -1;
			archive_write_finish_entry(w);
		}
		archive_write_free(w);
		archive_read_free(a);
	}
	_cleanup_free_ char *mpath = xasprintf("%s/manifest.json", tmp);
	_cleanup_json_ json_t *m = r == 0 ? json_load_file(mpath, 0, NULL) : NULL;
	size_t i;
	json_t *l;
	if (!json_is_array(json_object_get(json_array_get(m, 0), "Layers")))
		r = -1;
	json_array_foreach (json_object_get(json_array_get(m, 0), "Layers"), i, l) {
		_cleanup_free_ char *lp = xasprintf("%s/%s", tmp, json_string_value(l));
		struct archive *la = NULL;
		if (r == 0 && (r = open_tar(lp, &la)) == 0) {
			r = apply_layer(la, dest);
			archive_read_free(la);
		}
	}
	(void)fs_rm_rf(tmp, NULL);
	if (r < 0)
		fprintf(stderr, "berth build: --output: unpacking the image into '%s' failed\n", dest);
	return r;
}

int cli_build_output(struct cli *cli, const char *spec, const char *image_id)
{
	_cleanup_free_ char *type = NULL, *dest = NULL;
	_cleanup_free_ char *copy = xstrdup(spec);
	char *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		if (strncmp(kv, "type=", 5) == 0)
			free(type), type = xstrdup(kv + 5);
		else if (strncmp(kv, "dest=", 5) == 0)
			free(dest), dest = xstrdup(kv + 5);
		else {
			fprintf(stderr, "berth build: --output: unknown key in '%s' (type=, dest=)\n", kv);
			return 1;
		}
	}
	if (!type && dest)
		type = xstrdup("local");
	if (!type || !dest || !(streq(type, "docker") || streq(type, "oci") || streq(type, "local"))) {
		fprintf(stderr, "berth build: --output: expected type=docker|oci|local,dest=PATH, got '%s'\n",
			spec);
		return 1;
	}
	bool local = streq(type, "local");
	int fd = local              ? memfd_create("berth-output", MFD_CLOEXEC)
		 : streq(dest, "-") ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0)
				    : open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "berth build: --output: open '%s': %s\n", dest, strerror(errno));
		return 1;
	}
	int r = fetch_image(cli, image_id, streq(type, "oci"), fd);
	if (r == 0 && local)
		r = output_local(fd, dest);
	close(fd);
	return r < 0 ? 1 : 0;
}
