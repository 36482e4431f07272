/*
 * fs.c - file system helpers. The in-root resolver prefers openat2(2); the
 * fallback walks one component at a time with O_NOFOLLOW, keeping a stack of
 * directory fds so ".." never leaves the root and never races a rename.
 */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "common/fs.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static int sys_openat2(int dirfd, const char *path, struct open_how *how)
{
	return (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
}

bool fs_have_openat2(void)
{
	static int cached = -1;
	if (cached < 0) {
		struct open_how how = { .flags = O_PATH | O_CLOEXEC };
		int fd = sys_openat2(AT_FDCWD, "/", &how);
		cached = fd >= 0 || errno != ENOSYS;
		safe_close(fd);
	}
	return cached;
}

int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_read_full(int fd, void *data, size_t len)
{
	char *p = data;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The ways fs_copy_fd() copies, best first. */
enum copy_way { COPY_RANGE, COPY_SENDFILE, COPY_RW };

/* An errno of copy_file_range(2) or sendfile(2) that says "not for these fds": take the next way. */
static bool copy_way_refused(int e)
{
	/* EXDEV: another file system; EINVAL: not regular files (pipes), or an out with O_APPEND
	 * (sendfile); EBADF: copy_file_range's out with O_APPEND; EPERM: an immutable or swap file.
	 * A real EBADF or EPERM fails the read or write that follows, which then names it. */
	return e == EXDEV || e == EINVAL || e == ENOSYS || e == EOPNOTSUPP || e == EBADF || e == EPERM;
}

/* Block size of the read/write way. */
#define COPY_BUF_SIZE (64 * 1024)
/* Most bytes asked of one copy_file_range or sendfile (sendfile copies at most 0x7ffff000). */
#define COPY_CHUNK    (1 << 30)

static ssize_t copy_step(enum copy_way way, int in, int out, size_t n, char *buf, int *ret_werr)
{
	if (way == COPY_RANGE)
		return copy_file_range(in, NULL, out, NULL, n, 0);
	if (way == COPY_SENDFILE)
		return sendfile(out, in, NULL, n);
	ssize_t got = read(in, buf, MIN(n, (size_t)COPY_BUF_SIZE));
	if (got > 0)
		*ret_werr = fs_write_all(out, buf, (size_t)got);
	return got;
}

int64_t fs_copy_fd(int in, int out, int64_t max, unsigned flags, struct berth_error **err)
{
	static const char *const names[] = { "copy_file_range", "sendfile", "read" };
	_cleanup_free_ char *buf = NULL;
	enum copy_way way = !(flags & FS_COPY_NO_RANGE)      ? COPY_RANGE
			    : !(flags & FS_COPY_NO_SENDFILE) ? COPY_SENDFILE
							     : COPY_RW;
	int64_t done = 0;
	while (done < max) {
		if (way == COPY_RW && !buf)
			buf = xmalloc(COPY_BUF_SIZE);
		int werr = 0;
		ssize_t n = copy_step(way, in, out, (size_t)MIN(max - done, COPY_CHUNK), buf, &werr);
		if (werr < 0)
			return berth_error_set(err, -werr, "write");
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && way != COPY_RW && copy_way_refused(errno)) {
			way = way == COPY_RANGE && !(flags & FS_COPY_NO_SENDFILE) ? COPY_SENDFILE : COPY_RW;
			continue;
		}
		if (n < 0)
			return berth_error_errno(err, "%s", names[way]);
		if (n == 0 && way != COPY_RW && done == 0) {
			way = COPY_RW; /* a /proc file on kernels 5.3-5.18, or empty: read says which */
			continue;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

int fs_read_until(int fd, const char *delim, size_t max, struct strbuf *sb)
{
	size_t dlen = strlen(delim), start = sb->len;
	bool peek = true;
	if (!dlen)
		return -EINVAL;
	for (;;) {
		size_t used = sb->len - start, want = peek ? 4096 : 1;
		if (used > max)
			return -EMSGSIZE;
		want = MIN(want, max - used + dlen);
		size_t old = sb->len;
		strbuf_grow(sb, want);
		ssize_t n = peek ? recv(fd, sb->buf + old, want, MSG_PEEK) : read(fd, sb->buf + old, want);
		if (n < 0 && errno == ENOTSOCK && peek) {
			peek = false;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negative_errno();
		if (n == 0)
			return -EIO;
		strbuf_setlen(sb, old + (size_t)n);
		/* the delimiter may straddle what was there and what came */
		size_t from = old - start >= dlen - 1 ? old - (dlen - 1) : start;
		char *hit = memmem(sb->buf + from, sb->len - from, delim, dlen);
		size_t take = hit ? (size_t)(hit + dlen - (sb->buf + old)) : (size_t)n;
		strbuf_setlen(sb, old + take);
		if (peek) { /* consume exactly what was kept: it is queued, so this does not block */
			char scratch[4096];
			int r = fs_read_full(fd, scratch, take);
			if (r < 0)
				return r;
		}
		if (hit)
			return 0;
	}
}

/* --- fallback resolver ------------------------------------------------- */

struct walk {
	int *fds; /* fds[0] is the root (not owned), fds[1..n-1] owned */
	size_t n, alloc;
	int symlinks;
};

static int walk_top(struct walk *w)
{
	return w->fds[w->n - 1];
}

static void walk_push(struct walk *w, int fd)
{
	if (w->n == w->alloc) {
		w->alloc = w->alloc ? w->alloc * 2 : 16;
		w->fds = xrealloc(w->fds, w->alloc * sizeof(int));
	}
	w->fds[w->n++] = fd;
}

static void walk_to_root(struct walk *w)
{
	while (w->n > 1)
		close(w->fds[--w->n]);
}

static void walk_done(struct walk *w)
{
	walk_to_root(w);
	free(w->fds);
}

/* Replace the remaining path with target + "/" + rest. */
static int expand_symlink(struct walk *w, int fd, struct strbuf *rest, size_t rest_off)
{
	char target[PATH_MAX];
	if (++w->symlinks > FS_MAX_SYMLINKS)
		return -ELOOP;
	ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
	if (n < 0)
		return negative_errno();
	target[n] = '\0';
	struct strbuf nb = STRBUF_INIT;
	strbuf_addstr(&nb, target);
	if (rest_off < rest->len) {
		strbuf_addch(&nb, '/');
		strbuf_addstr(&nb, rest->buf + rest_off);
	}
	strbuf_release(rest);
	*rest = nb;
	if (target[0] == '/')
		walk_to_root(w);
	return 0;
}

static int open_walk(int rootfd, const char *path, int flags, mode_t mode, int rflags)
{
	struct walk w = { 0 };
	struct strbuf rest = STRBUF_INIT;
	int r;

	walk_push(&w, rootfd);
	strbuf_addstr(&rest, path);
	size_t off = 0;
	for (;;) {
		while (off < rest.len && rest.buf[off] == '/')
			off++;
		if (off >= rest.len) {
			/* path ends at a directory (or is empty): reopen it with the flags */
			if (flags & O_CREAT && !(flags & O_DIRECTORY)) {
				r = -EISDIR;
				break;
			}
			r = openat(walk_top(&w), ".", (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC);
			r = r < 0 ? negative_errno() : r;
			break;
		}
		size_t end = off;
		while (end < rest.len && rest.buf[end] != '/')
			end++;
		_cleanup_free_ char *name = xstrndup(rest.buf + off, end - off);
		size_t next = end;
		while (next < rest.len && rest.buf[next] == '/')
			next++;
		bool last = next >= rest.len;
		bool trailing_slash = end < rest.len;
		off = next;

		if (streq(name, "."))
			continue;
		if (streq(name, "..")) {
			if (w.n > 1)
				close(w.fds[--w.n]);
			continue;
		}
		int pfd = openat(walk_top(&w), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0 && errno == ENOENT && last && !trailing_slash && flags & O_CREAT) {
			r = openat(walk_top(&w), name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			r = r < 0 ? negative_errno() : r;
			break;
		}
		if (pfd < 0) {
			r = negative_errno();
			break;
		}
		struct stat st;
		if (fstat(pfd, &st) < 0) {
			r = negative_errno();
			close(pfd);
			break;
		}
		if (rflags & FS_RESOLVE_NO_XDEV) {
			struct stat rst;
			if (fstat(walk_top(&w), &rst) == 0 && rst.st_dev != st.st_dev) {
				close(pfd);
				r = -EXDEV;
				break;
			}
		}
		if (S_ISLNK(st.st_mode)) {
			if (last && !trailing_slash &&
			    (rflags & FS_RESOLVE_NO_FOLLOW || flags & O_NOFOLLOW)) {
				if (flags & O_PATH) {
					r = pfd;
					break;
				}
				close(pfd);
				r = -ELOOP;
				break;
			}
			r = expand_symlink(&w, pfd, &rest, off);
			close(pfd);
			if (r < 0)
				break;
			off = 0;
			continue;
		}
		if (last && !trailing_slash) {
			if ((flags & O_PATH) && !(flags & O_DIRECTORY)) {
				r = pfd;
				break;
			}
			/* O_NOFOLLOW: a symlink swapped in since fstat gives ELOOP */
			r = openat(walk_top(&w), name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
			r = r < 0 ? negative_errno() : r;
			close(pfd);
			break;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(pfd);
			r = -ENOTDIR;
			break;
		}
		walk_push(&w, pfd);
	}
	walk_done(&w);
	strbuf_release(&rest);
	return r;
}

int fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode, int rflags,
		    struct berth_error **err)
{
	int fd;
	if (!(flags & (O_CREAT | O_TMPFILE)))
		mode = 0;
	if (fs_have_openat2() && !(rflags & FS_RESOLVE_FORCE_WALK)) {
		struct open_how how = {
			.flags =
			    (uint64_t)(flags | O_CLOEXEC | (rflags & FS_RESOLVE_NO_FOLLOW ? O_NOFOLLOW : 0)),
			.mode = mode,
			.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
				   (rflags & FS_RESOLVE_NO_XDEV ? RESOLVE_NO_XDEV : 0),
		};
		int tries = 0;
		do
			fd = sys_openat2(rootfd, path, &how);
		while (fd < 0 && errno == EAGAIN && ++tries < 64);
		if (fd < 0)
			fd = negative_errno();
	} else {
		fd = open_walk(rootfd, path, flags, mode, rflags);
	}
	if (fd < 0)
		return berth_error_set(err, -fd, "open '%s' in root", path);
	return fd;
}

int fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf prefix = STRBUF_INIT;
	_cleanup_close_ int cur = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return berth_error_errno(err, "open root");
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		_cleanup_free_ char *name = xstrndup(p, (size_t)(e - p));
		strbuf_addch(&prefix, '/');
		strbuf_add(&prefix, p, (size_t)(e - p));
		p = e;
		for (int attempt = 0;; attempt++) {
			int fd = fs_open_in_root(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0, 0, NULL);
			if (fd >= 0) {
				close(cur);
				cur = fd;
				break;
			}
			if (fd != -ENOENT || attempt > 2)
				return berth_error_set(err, -fd, "mkdir '%s' in root", prefix.buf);
			/* cur is the resolved parent; name is a plain component here */
			if (mkdirat(cur, name, mode) < 0 && errno != EEXIST)
				return berth_error_errno(err, "mkdir '%s' in root", prefix.buf);
		}
	}
	return TAKE_FD(cur);
}

int fs_mkdir_p(const char *path, mode_t mode, struct berth_error **err)
{
	_cleanup_free_ char *p = xstrdup(path);
	size_t len = strlen(p);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char saved = p[i];
		p[i] = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return berth_error_errno(err, "mkdir '%s'", p);
		p[i] = saved;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return berth_error_errno(err, "stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return berth_error_set(err, ENOTDIR, "mkdir '%s'", path);
	return 0;
}

/*
 * NEEDSWORK: recursion holds one fd per level; a tree deeper than the fd
 * limit fails with EMFILE rather than being removed.
 */
static int rm_children(int dfd, dev_t dev)
{
	int fd2 = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fd2 < 0)
		return negative_errno();
	_cleanup_closedir_ DIR *d = fdopendir(fd2);
	if (!d) {
		close(fd2);
		return negative_errno();
	}
	int ret = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && !ret)
				ret = negative_errno();
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				if (!ret)
					ret = -EBUSY;
				continue;
			}
			int cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				if (errno != ENOENT && !ret)
					ret = negative_errno();
				continue;
			}
			int r = rm_children(cfd, dev);
			close(cfd);
			if (r < 0 && !ret)
				ret = r;
			if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && !ret)
				ret = negative_errno();
		} else if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT && !ret) {
			ret = negative_errno();
		}
	}
	if (errno && !ret)
		ret = negative_errno();
	return ret;
}

int fs_rm_rf_at(int dirfd, const char *path, struct berth_error **err)
{
	struct stat st;
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return berth_error_errno(err, "stat '%s'", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(dirfd, path, 0) < 0 && errno != ENOENT)
			return berth_error_errno(err, "remove '%s'", path);
		return 0;
	}
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "open '%s'", path);
	int r = rm_children(fd, st.st_dev);
	if (r < 0)
		return berth_error_set(err, -r, "remove contents of '%s'", path);
	if (unlinkat(dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return berth_error_errno(err, "remove '%s'", path);
	return 0;
}

int fs_rm_rf(const char *path, struct berth_error **err)
{
	return fs_rm_rf_at(AT_FDCWD, path, err);
}

int fs_read_file_at(int dirfd, const char *path, size_t max, struct strbuf *sb, struct berth_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return berth_error_errno(err, "open '%s'", path);
	ssize_t n = strbuf_read_fd(sb, fd, max);
	if (n == -EFBIG)
		return berth_error_set(err, EFBIG, "read '%s': larger than %zu bytes", path, max);
	if (n < 0)
		return berth_error_set(err, (int)-n, "read '%s'", path);
	return 0;
}

static int write_replace_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode, bool sync,
			    struct berth_error **err)
{
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir =
	    slash ? xstrndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
	const char *base = slash ? slash + 1 : path;
	_cleanup_close_ int dfd = openat(dirfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_errno(err, "open directory of '%s'", path);
	uint64_t rnd;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&rnd;
	_cleanup_free_ char *tmp = xasprintf(".tmp-%s-%016llx", base, (unsigned long long)rnd);
	_cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", path);
	int r = fs_write_all(fd, data, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = negative_errno();
	if (r == 0 && sync && fsync(fd) < 0)
		r = negative_errno();
	if (r == 0 && renameat(dfd, tmp, dfd, base) < 0)
		r = negative_errno();
	if (r < 0) {
		unlinkat(dfd, tmp, 0);
		return berth_error_set(err, -r, "write '%s'", path);
	}
	if (sync)
		fsync(dfd);
	return 0;
}

int fs_write_file_atomic_at(int dirfd, const char *path, const void *data, size_t len, mode_t mode,
			    struct berth_error **err)
{
	return write_replace_at(dirfd, path, data, len, mode, true, err);
}

int fs_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
			 struct berth_error **err)
{
	return write_replace_at(AT_FDCWD, path, data, len, mode, true, err);
}

int fs_write_file_replace(const char *path, const void *data, size_t len, mode_t mode,
			  struct berth_error **err)
{
	return write_replace_at(AT_FDCWD, path, data, len, mode, false, err);
}

char *fs_path_clean(const char *path)
{
	struct strbuf out = STRBUF_INIT;
	bool abs = path[0] == '/';
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 1 && p[0] == '.') {
			/* skip */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *s = out.len ? memrchr(out.buf, '/', out.len) : NULL;
			strbuf_setlen(&out, s ? (size_t)(s - out.buf) : 0);
		} else {
			strbuf_addch(&out, '/');
			strbuf_add(&out, p, n);
		}
		p = e;
	}
	if (!abs) {
		/* drop the leading '/' we added */
		char *s = xstrdup(out.len ? out.buf + 1 : ".");
		strbuf_release(&out);
		return s;
	}
	if (!out.len)
		strbuf_addch(&out, '/');
	return strbuf_detach(&out, NULL);
}

int fs_private_db(const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berth_error_errno(err, "stat '%s'", path);
	if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) < 0)
		return berth_error_errno(err, "chmod '%s'", path);
	static const char *const companions[] = { "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < ARRAY_SIZE(companions); i++) {
		_cleanup_free_ char *p = xasprintf("%s%s", path, companions[i]);
		if (chmod(p, 0600) < 0 && errno != ENOENT)
			return berth_error_errno(err, "chmod '%s'", p);
	}
	return 0;
}
