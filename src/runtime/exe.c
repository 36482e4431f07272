/*
 * exe.c - CVE-2019-5736 protection. A container process is a clone of the
 * runtime until it execs, so a container that makes its program a
 * "#!/proc/self/exe" script could get a handle on the runtime's binary and
 * overwrite it. Running from a sealed memfd copy makes that handle point at
 * an anonymous, write-sealed file: the host binary is never reachable.
 *
 * Cost: one copy of the binary (page cache to memfd, copy_file_range) and
 * one execve per CLI invocation that creates a container process.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "runtime/runtime.h"

extern char **environ;

static bool exe_is_sealed(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	int seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	return seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_SEAL)) == (F_SEAL_WRITE | F_SEAL_SEAL);
}

int runtime_protect_exe(char **argv, struct berth_error **err)
{
	if (exe_is_sealed())
		return 0;
	_cleanup_close_ int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return berth_error_errno(err, "open '/proc/self/exe'");
	struct stat st;
	if (fstat(src, &st) < 0)
		return berth_error_errno(err, "stat '/proc/self/exe'");
	_cleanup_close_ int mfd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return berth_error_errno(err, "memfd_create");
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(src, NULL, mfd, NULL, (size_t)left, 0);
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS))
			n = sendfile(mfd, src, NULL, (size_t)left);
		if (n <= 0)
			return berth_error_errno(err, "copy the runtime binary to a memfd");
		left -= n;
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return berth_error_errno(err, "seal the runtime memfd");
	fexecve(mfd, argv, environ);
	return berth_error_errno(err, "re-exec from the sealed memfd");
}
