/*
 * fs.h - file system helpers, including resolution confined to a root.
 *
 * Anything that touches a path inside a container or image root goes through
 * fs_open_in_root() and friends: the path is resolved as if `rootfd` were "/"
 * (absolute symlinks and ".." stay inside), magic links (/proc/self/fd/...) are
 * refused. openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) is used when the
 * kernel has it; otherwise a component-by-component walk with O_NOFOLLOW and
 * symlink expansion done by us, with the same semantics.
 */
#ifndef BERTH_COMMON_FS_H
#define BERTH_COMMON_FS_H

#include <sys/stat.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/strbuf.h"

/* Most symlinks followed in one resolution, like the kernel's MAXSYMLINKS. */
#define FS_MAX_SYMLINKS 40

enum fs_resolve_flags {
	FS_RESOLVE_DEFAULT = 0,
	FS_RESOLVE_NO_FOLLOW = 1 << 0,  /* do not follow a symlink in the last component */
	FS_RESOLVE_NO_XDEV = 1 << 1,    /* refuse crossing mount points */
	FS_RESOLVE_FORCE_WALK = 1 << 2, /* use the fallback walk even if openat2 exists (tests) */
};

/*
 * Open `path` inside the tree at rootfd. `flags` are open(2) flags (O_CLOEXEC is
 * always added); with O_CREAT the last component is created inside the root.
 * Returns the fd or -errno; -EXDEV/-ELOOP on escapes the kernel refuses.
 */
int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, int rflags,
		    struct berth_error **err);

/*
 * Create every missing directory of `path` inside rootfd (like mkdir -p, mode
 * for new ones) and return an O_PATH|O_DIRECTORY fd to the last one, or -errno.
 * A symlink in the way is followed only within the root.
 */
int fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, struct berth_error **err);

/*
 * A SQLite database file, private: created empty with mode 0600 when missing
 * (SQLite then gives its -wal, -shm and -journal files the same mode), or
 * tightened to 0600 when it exists, with those companions (installs made
 * before state files were private). Call before sqlite3_open. 0 or -errno.
 */
int fs_private_db(const char *path, struct berth_error **err);

/* mkdir -p on a host path. 0 or -errno. */
int fs_mkdir_p(const char *path, mode_t mode, struct berth_error **err);

/* Remove a tree without following symlinks and without crossing mounts. ENOENT is success. */
int fs_rm_rf_at(int dirfd, const char *path, struct berth_error **err);
int fs_rm_rf(const char *path, struct berth_error **err);

/* Read a whole file (at most max bytes, 0 = no limit) into sb (appended). */
int fs_read_file_at(int dirfd, const char *path, size_t max, struct strbuf *sb, struct berth_error **err);

/*
 * Write data to dirfd/path atomically: temp file in the same directory, write,
 * fsync, rename, fsync the directory. Mode applies to the new file.
 */
int fs_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
			    struct berth_error **err);
int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			 struct berth_error **err);
/*
 * The same without the fsyncs: readers see the old or the new file, never a
 * part, and a crashed writer leaves one of them; for files of the exec root
 * (a tmpfs: gone at a reboot anyway), where a flush buys nothing.
 */
int fs_write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
			  struct berth_error **err);

/* write(2)/read(2) loops handling EINTR and short counts. 0 or -errno; read_full: -EIO on EOF. */
int fs_write_all(int fd, const void *data, size_t len);
int fs_read_full(int fd, void *data, size_t len);

enum fs_copy_flags {
	FS_COPY_DEFAULT = 0,
	FS_COPY_NO_RANGE = 1 << 0,    /* skip copy_file_range(2) (tests) */
	FS_COPY_NO_SENDFILE = 1 << 1, /* skip sendfile(2) (tests) */
};

/* fs_copy_fd()'s max for "up to the end of in". */
#define FS_COPY_ALL INT64_MAX

/*
 * Copy the bytes of `in` from its file offset to its end, or the first `max`
 * of them, to `out` at its offset (both offsets move on, as read(2) and
 * write(2) move them). The kernel copies when it can: copy_file_range(2)
 * (which shares extents on file systems that can), else sendfile(2) (any out,
 * an in the page cache holds), else read(2)/write(2) through a buffer, which
 * takes pipes, sockets and /proc files (whose size is 0 to copy_file_range
 * on kernels 5.3 to 5.18: a first copy of 0 bytes is checked with a read,
 * which costs an empty file one read). EINTR and short counts are
 * retried. Holes are not kept (written as zeros unless copy_file_range shares
 * the extents). `flags`: enum fs_copy_flags.
 *
 * Returns the number of bytes copied (less than max only at the end of in) or
 * -errno, with the failing call in err ("read", "write", "copy_file_range",
 * "sendfile"; callers wrap it with what they copy). On failure some bytes may
 * have been written to out.
 */
int64_t fs_copy_fd(int in, int out, int64_t max, unsigned flags, struct berth_error **err);

/*
 * Append to sb what fd carries up to and including the first delim (a
 * protocol head: "\r\n\r\n", a "\n"-ended line), never consuming a byte
 * after it, so what follows stays in fd for its next reader (a hijacked
 * stream). On a socket: a MSG_PEEK, then a read of exactly the bytes that
 * belong (2 system calls when the head arrives whole); on anything else one
 * byte per read(). 0 when found; -EIO at EOF first; -EMSGSIZE past max bytes
 * without it; -errno on errors (-EAGAIN on a receive timeout).
 */
int fs_read_until(int fd, const char *delim, size_t max, struct strbuf *sb);

/* Normalise "a//b/./c/../d" lexically (no FS access) into "a/b/d"; result never escapes "/". */
char *fs_path_clean(const char *path);

/* True if the kernel supports openat2(2) (checked once). */
bool fs_have_openat2(void);

#endif
