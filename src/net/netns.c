/*
 * netns.c - named network namespaces: a new netns bind-mounted on a file (as
 * `ip netns add` does, but anywhere, e.g. <exec_root>/net/netns/<id>).
 *
 * The calling thread unshares its netns, brings lo up, bind-mounts
 * /proc/thread-self/ns/net and returns to its original netns with setns().
 * Only the calling thread is affected (CLONE_NEWNET is per thread), so this is
 * safe in the multi-threaded daemon; no fork is needed.
 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#include "net/internal.h"

static int enter_new_and_mount(const char *path, struct berth_error **err)
{
	if (unshare(CLONE_NEWNET) < 0)
		return berth_error_errno(err, "unshare network namespace");
	int r = net_iface_set_up("lo");
	if (r < 0)
		return berth_error_set(err, r, "bring up 'lo' in the new network namespace");
	if (mount("/proc/thread-self/ns/net", path, NULL, MS_BIND, NULL) < 0)
		return berth_error_errno(err, "bind-mount network namespace on '%s'", path);
	return 0;
}

int net_netns_create(const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", path);
	fd = safe_close(fd);
	_cleanup_close_ int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (orig < 0) {
		int r = berth_error_errno(err, "open current network namespace");
		unlink(path);
		return r;
	}
	int r = enter_new_and_mount(path, err);
	if (setns(orig, CLONE_NEWNET) < 0) {
		/* we cannot leave this thread in the wrong netns: that is a bug-level failure */
		int q = berth_error_errno(err, "return to the original network namespace");
		umount2(path, MNT_DETACH);
		unlink(path);
		return q;
	}
	if (r < 0) {
		umount2(path, MNT_DETACH);
		unlink(path);
		return r;
	}
	return 0;
}

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

bool net_netns_is_mounted(const char *path)
{
	struct statfs sfs;
	return statfs(path, &sfs) == 0 && (unsigned long)sfs.f_type == NSFS_MAGIC;
}

int net_netns_remove(const char *path, struct berth_error **err)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return berth_error_errno(err, "unmount '%s'", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return berth_error_errno(err, "remove '%s'", path);
	return 0;
}
