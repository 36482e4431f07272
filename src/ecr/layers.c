/*
 * layers.c - read the few files an inventory needs out of an image's layers
 * (tar streams, gzip or zstd compressed) with libarchive, applying the layers
 * in order: a later layer's copy replaces an earlier one, an OCI whiteout
 * (".wh.<name>") deletes it.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>

#include "common/strbuf.h"
#include "common/util.h"
#include "ecr/ecr.h"

#define INVENTORY_FILE_MAX (64u << 20)

enum { F_OS_RELEASE, F_USR_OS_RELEASE, F_DPKG, F_APK, F_COUNT };
static const char *const FILES[F_COUNT] = { "etc/os-release", "usr/lib/os-release", "var/lib/dpkg/status",
					    "lib/apk/db/installed" };

/* "./etc/os-release", "/etc/os-release" -> "etc/os-release". */
static const char *clean(const char *p)
{
	while (*p == '/' || (p[0] == '.' && p[1] == '/'))
		p += *p == '/' ? 1 : 2;
	return p;
}

/* Index of the file an entry (or its whiteout) names, or -1. */
static int which(const char *path, bool *whiteout)
{
	path = clean(path);
	*whiteout = false;
	for (int i = 0; i < F_COUNT; i++) {
		if (streq(path, FILES[i]))
			return i;
		const char *slash = strrchr(FILES[i], '/');
		size_t dir = (size_t)(slash - FILES[i]) + 1;
		if (!strncmp(path, FILES[i], dir) && startswith(path + dir, ".wh.") &&
		    streq(path + dir + 4, slash + 1)) {
			*whiteout = true;
			return i;
		}
	}
	return -1;
}

static int read_layer(int fd, struct strbuf files[F_COUNT], bool present[F_COUNT], size_t idx,
		      struct berth_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int r = 0;
	if (archive_read_open_fd(a, fd, 1 << 16) != ARCHIVE_OK) {
		r = berth_error_msg(err, EBADMSG, "layer %zu: %s", idx, archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	struct archive_entry *e;
	int ar;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		bool wh;
		int i = which(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", &wh);
		if (i < 0)
			continue;
		strbuf_reset(&files[i]);
		present[i] = false;
		if (wh || archive_entry_filetype(e) != AE_IFREG)
			continue; /* deleted, or a symlink/dir: not something we read */
		if (archive_entry_size(e) > INVENTORY_FILE_MAX) {
			r = berth_error_msg(err, EFBIG, "layer %zu: %s is larger than %u bytes", idx,
					    FILES[i], INVENTORY_FILE_MAX);
			break;
		}
		char buf[65536];
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
			strbuf_add(&files[i], buf, (size_t)n);
		if (n < 0) {
			r = berth_error_msg(err, EBADMSG, "layer %zu: %s", idx, archive_error_string(a));
			break;
		}
		present[i] = true;
	}
	if (r == 0 && ar != ARCHIVE_EOF)
		r = berth_error_msg(err, EBADMSG, "layer %zu: %s", idx, archive_error_string(a));
	archive_read_free(a);
	return r;
}

int ecr_inventory_from_layers(const int *fds, size_t n, struct ecr_inventory *inv, struct berth_error **err)
{
	struct strbuf files[F_COUNT];
	bool present[F_COUNT] = { false };
	for (int i = 0; i < F_COUNT; i++)
		strbuf_init(&files[i], 0);
	int r = 0;
	for (size_t l = 0; l < n && r == 0; l++)
		r = read_layer(fds[l], files, present, l, err);
	char *msg = NULL;
	int os = present[F_OS_RELEASE] ? F_OS_RELEASE : F_USR_OS_RELEASE;
	if (r == 0 && present[os] && ecr_parse_os_release(inv, files[os].buf, files[os].len, &msg) < 0)
		r = berth_error_msg(err, EINVAL, "%s", msg);
	if (r == 0 && present[F_DPKG] &&
	    ecr_parse_dpkg_status(inv, files[F_DPKG].buf, files[F_DPKG].len, &msg) < 0)
		r = berth_error_msg(err, EINVAL, "%s", msg);
	if (r == 0 && present[F_APK] &&
	    ecr_parse_apk_installed(inv, files[F_APK].buf, files[F_APK].len, &msg) < 0)
		r = berth_error_msg(err, EINVAL, "%s", msg);
	free(msg);
	for (int i = 0; i < F_COUNT; i++)
		strbuf_release(&files[i]);
	return r;
}
