/*
 * usage.c - disk usage of a directory tree (st_blocks, hard links counted
 * once per walk, not crossing mount points), for /system/df and prunes.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "api/routes.h"

/* Deep enough for any real tree; deeper parts are not counted. */
#define USAGE_MAX_DEPTH 128

static int64_t usage_at(int dfd, dev_t dev, unsigned depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	int64_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
			continue;
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
			total += (int64_t)st.st_blocks * 512 / (int64_t)st.st_nlink;
		else
			total += (int64_t)st.st_blocks * 512;
		if (S_ISDIR(st.st_mode) && depth < USAGE_MAX_DEPTH) {
			int fd =
			    openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				total += usage_at(fd, dev, depth + 1);
		}
	}
	closedir(d);
	return total;
}

int64_t api_dir_usage(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return 0;
	}
	return usage_at(fd, st.st_dev, 0);
}

int64_t api_container_rw_usage(const struct engine_container_info *i)
{
	if (!i->rootfs)
		return 0;
	/* the snapshot's upper dir is the rootfs' sibling "fs" (image.h) */
	const char *slash = strrchr(i->rootfs, '/');
	if (!slash)
		return 0;
	_cleanup_free_ char *dir = xasprintf("%.*s/fs", (int)(slash - i->rootfs), i->rootfs);
	return api_dir_usage(dir);
}
