/*
 * exe.c - CVE-2019-5736 protection. A container process is a clone of the
 * runtime until it execs, so a container that makes its program a
 * "#!/proc/self/exe" script could get a handle on the runtime's binary and
 * overwrite it. The runtime therefore only ever runs from a binary that
 * cannot be written through that handle:
 *
 *  1. a detached read-only bind mount of the slim `berth-shim` binary
 *     (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY)):
 *     opening /proc/<pid>/exe for writing fails with EROFS whatever the
 *     container's privileges, the mount is attached nowhere (nothing to
 *     unmount, no leak), nothing is copied and the text pages are the page
 *     cache's, shared by every process;
 *  2. where that is not allowed (no CAP_SYS_ADMIN in our mount namespace,
 *     old kernel) or BERTH_EXE_PROTECT=memfd is set: a sealed memfd copy of
 *     that binary (runc's historical scheme; costs a copy and private shmem).
 *
 * Either way it is one execve per CLI invocation that creates a container
 * process, into the slim binary (static: no shared library to load). The
 * engine spawns shims from such a handle directly (runtime_exe_open_ro), so
 * they never re-exec.
 */
#include <elf.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/mman.h>

#include "common/fs.h"
#include "runtime/runtime.h"

extern char **environ;

/*
 * Safe as is: a sealed memfd, or a binary on a read-only mount (opening
 * /proc/<pid>/exe for writing then fails with EROFS, whatever the
 * container's privileges), e.g. a `mount --bind -o ro` of it or the detached
 * read-only mount runtime_exe_open_ro() makes.
 */
static bool exe_is_protected(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int seals = fcntl(fd, F_GET_SEALS);
	struct statvfs sv;
	bool ro = fstatvfs(fd, &sv) == 0 && (sv.f_flag & ST_RDONLY);
	close(fd);
	return ro || (seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_SEAL)) == (F_SEAL_WRITE | F_SEAL_SEAL));
}

char *runtime_slim_exe_path(void)
{
	char *self = realpath("/proc/self/exe", NULL);
	if (!self)
		return NULL;
	char *dir = dirname(self);
	char *slim = xasprintf("%s/berth-shim", dir);
	free(self);
	if (access(slim, X_OK) < 0) {
		free(slim);
		return NULL;
	}
	return slim;
}

int runtime_exe_open_ro(const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd = open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "clone a mount of '%s'", path);
	struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
	if (mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return berth_error_errno(err, "make the mount of '%s' read-only", path);
	struct statvfs sv;
	if (fstatvfs(fd, &sv) < 0 || !(sv.f_flag & ST_RDONLY))
		return berth_error_msg(err, EROFS, "mount of '%s' is not read-only", path);
	return TAKE_FD(fd);
}

/*
 * How much of the binary exec needs: up to the end of the last segment the
 * program headers describe. Section headers and debug info (most of the file
 * in a -g build) are left out of the copy. Sanitizer builds copy everything:
 * their symbolizer reads /proc/self/exe.
 */
static off_t exec_size(int fd, off_t file_size)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
	return file_size;
#else
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 128)
		return file_size;
	Elf64_Phdr ph[128];
	size_t len = (size_t)eh.e_phnum * sizeof(Elf64_Phdr);
	if (pread(fd, ph, len, (off_t)eh.e_phoff) != (ssize_t)len)
		return file_size;
	uint64_t end = eh.e_phoff + len;
	for (size_t i = 0; i < eh.e_phnum; i++)
		end = MAX(end, ph[i].p_offset + ph[i].p_filesz);
	return end > 0 && end <= (uint64_t)file_size ? (off_t)end : file_size;
#endif
}

static int reexec_memfd(const char *path, char **argv, struct berth_error **err)
{
	_cleanup_close_ int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return berth_error_errno(err, "open '%s'", path);
	struct stat st;
	if (fstat(src, &st) < 0)
		return berth_error_errno(err, "stat '%s'", path);
	_cleanup_close_ int mfd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return berth_error_errno(err, "memfd_create");
	off_t size = exec_size(src, st.st_size);
	int64_t n = fs_copy_fd(src, mfd, size, 0, err);
	if (n >= 0 && n < size)
		n = berth_error_msg(err, EIO, "'%s' ends before its %lld bytes", path, (long long)size);
	if (n < 0)
		return berth_error_wrap(err, (int)n, "copy the runtime binary to a memfd");
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return berth_error_errno(err, "seal the runtime memfd");
	fexecve(mfd, argv, environ);
	return berth_error_errno(err, "re-exec from the sealed memfd");
}

int runtime_protect_exe(char **argv, struct berth_error **err)
{
	if (exe_is_protected())
		return 0;
	_cleanup_free_ char *slim = runtime_slim_exe_path();
	const char *target = slim ? slim : "/proc/self/exe";
	const char *how = getenv("BERTH_EXE_PROTECT");
	if (!how || !streq(how, "memfd")) {
		_cleanup_close_ int fd = runtime_exe_open_ro(target, NULL);
		if (fd >= 0)
			execveat(fd, "", argv, environ, AT_EMPTY_PATH);
		/* not allowed here (or exec failed): the copy below still protects */
	}
	return reexec_memfd(target, argv, err);
}
