/*
 * copyup.c - docker's volume copy-up: the first time a container mounts an
 * empty volume over a directory of its image, the directory's content is
 * copied into the volume, with owners, modes, timestamps and symlinks kept.
 *
 * Safety: the source is the container's rootfs (image content, untrusted).
 * It is opened with fs_open_in_root() and walked with O_NOFOLLOW relative
 * fds only, so a symlink in the image is copied as a symlink and never
 * followed out of the rootfs. Entry count and depth are bounded.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/fs.h"
#include "engine/internal.h"

/* Bounds on what one copy-up may do (image content is untrusted). */
#define COPYUP_MAX_DEPTH   128
#define COPYUP_MAX_ENTRIES (1 << 20)

struct copyup {
	size_t entries;
	struct berth_error **err;
};

static void copy_meta(int dfd, const char *name, int fd, const struct stat *st)
{
	/* Ownership first: chown clears set-id bits, the chmod after restores them. */
	if (fd >= 0) {
		(void)!fchown(fd, st->st_uid, st->st_gid);
		(void)!fchmod(fd, st->st_mode & 07777);
		struct timespec ts[2] = { st->st_atim, st->st_mtim };
		futimens(fd, ts);
		return;
	}
	(void)!fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int copy_file(int sdir, int ddir, const char *name, const struct stat *st, struct berth_error **err)
{
	_cleanup_close_ int in = openat(sdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return berth_error_errno(err, "copy-up: open '%s'", name);
	_cleanup_close_ int out =
	    openat(ddir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return berth_error_errno(err, "copy-up: create '%s'", name);
	int64_t r = fs_copy_fd(in, out, st->st_size, 0, err);
	if (r < 0)
		return berth_error_wrap(err, (int)r, "copy-up: copy '%s'", name);
	copy_meta(ddir, name, out, st);
	return 0;
}

static int copy_dir(struct copyup *cu, int sfd, int dfd, int depth);

static int copy_entry(struct copyup *cu, int sfd, int dfd, const char *name, int depth)
{
	struct stat st;
	if (fstatat(sfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_errno(cu->err, "copy-up: stat '%s'", name);
	if (++cu->entries > COPYUP_MAX_ENTRIES)
		return berth_error_msg(cu->err, E2BIG, "copy-up: more than %d entries", COPYUP_MAX_ENTRIES);
	switch (st.st_mode & S_IFMT) {
	case S_IFDIR: {
		if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
			return berth_error_errno(cu->err, "copy-up: mkdir '%s'", name);
		_cleanup_close_ int s = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		_cleanup_close_ int d = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (s < 0 || d < 0)
			return berth_error_errno(cu->err, "copy-up: open directory '%s'", name);
		int r = copy_dir(cu, s, d, depth + 1);
		if (r < 0)
			return r;
		copy_meta(dfd, name, d, &st);
		return 0;
	}
	case S_IFREG: return copy_file(sfd, dfd, name, &st, cu->err);
	case S_IFLNK: {
		char target[PATH_MAX];
		ssize_t n = readlinkat(sfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return berth_error_errno(cu->err, "copy-up: readlink '%s'", name);
		target[n] = '\0';
		if (symlinkat(target, dfd, name) < 0)
			return berth_error_errno(cu->err, "copy-up: symlink '%s'", name);
		copy_meta(dfd, name, -1, &st);
		return 0;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (mknodat(dfd, name, st.st_mode, st.st_rdev) < 0)
			return berth_error_errno(cu->err, "copy-up: mknod '%s'", name);
		copy_meta(dfd, name, -1, &st);
		(void)!fchmodat(dfd, name, st.st_mode & 07777, 0);
		return 0;
	default: return 0;
	}
}

static int copy_dir(struct copyup *cu, int sfd, int dfd, int depth)
{
	if (depth > COPYUP_MAX_DEPTH)
		return berth_error_msg(cu->err, ELOOP, "copy-up: directories nested deeper than %d",
				       COPYUP_MAX_DEPTH);
	int dup_fd = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return berth_error_errno(cu->err, "copy-up: dup");
	_cleanup_closedir_ DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return berth_error_errno(cu->err, "copy-up: read directory");
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		int r = copy_entry(cu, sfd, dfd, de->d_name, depth);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool dir_is_empty(int fd)
{
	int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return false;
	_cleanup_closedir_ DIR *d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return false;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			return false;
	return true;
}

int engine_copyup_volume(const char *rootfs, const char *path, const char *volume_dir,
			 struct berth_error **err)
{
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return berth_error_errno(err, "copy-up: open rootfs '%s'", rootfs);
	_cleanup_close_ int src = fs_open_in_root(rootfd, path, O_RDONLY | O_DIRECTORY, 0, 0, NULL);
	if (src < 0)
		return 0; /* nothing (or no directory) at the mount point in the image */
	_cleanup_close_ int dst = open(volume_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dst < 0)
		return berth_error_errno(err, "copy-up: open volume '%s'", volume_dir);
	if (!dir_is_empty(dst))
		return 0;
	struct copyup cu = { .err = err };
	int r = copy_dir(&cu, src, dst, 0);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(src, &st) == 0)
		copy_meta(-1, NULL, dst, &st);
	return 0;
}
