/* unit-tar.h - context tars for the build context tests, written with libarchive. */
#ifndef BERTH_TESTS_UNIT_TAR_H
#define BERTH_TESTS_UNIT_TAR_H

#include <archive.h>
#include <archive_entry.h>
#include <string.h>
#include <unistd.h>

struct tar_entry {
	const char *name;
	mode_t type;      /* AE_IFREG, AE_IFDIR, AE_IFLNK, 0: a hard link to data */
	const char *data; /* content, link target */
	unsigned uid;     /* also the gid */
	mode_t perm;      /* 0: 0640 for files, 0755 for directories */
	size_t len;       /* of data; 0: strlen */
};

static inline size_t unit_tar_len(const struct tar_entry *e)
{
	return e->len ? e->len : e->data ? strlen(e->data) : 0;
}

/* The entries as a pax tar (gzip-compressed if asked) in an unlinked file, at offset 0. */
static inline int unit_write_tar(const struct tar_entry *e, size_t n, bool gzip)
{
	char path[] = "/tmp/berth-unit-tar-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e[i].name);
		archive_entry_set_uid(ae, e[i].uid);
		archive_entry_set_gid(ae, e[i].uid);
		if (e[i].type == AE_IFLNK) {
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e[i].data);
		} else if (e[i].type == 0) {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e[i].data);
		} else {
			archive_entry_set_filetype(ae, e[i].type);
			archive_entry_set_perm(ae, e[i].perm               ? e[i].perm
						   : e[i].type == AE_IFDIR ? 0755
									   : 0640);
			archive_entry_set_size(ae, (la_int64_t)unit_tar_len(&e[i]));
		}
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (e[i].type == AE_IFREG && e[i].data)
			archive_write_data(a, e[i].data, unit_tar_len(&e[i]));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

#endif
