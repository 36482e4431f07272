/* fuzz-unpack.c - layer unpack (decompression + tar + whiteouts) on hostile input.
 * Each run unpacks into a fresh temp directory that is removed afterwards. */
#include <fcntl.h>

#include "common/fs.h"
#include "image/unpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	char in_tmpl[] = "/tmp/berth-fuzz-in-XXXXXX";
	char dir_tmpl[] = "/tmp/berth-fuzz-root-XXXXXX";
	int fd = mkstemp(in_tmpl);
	if (fd < 0)
		return 0;
	unlink(in_tmpl);
	if (fs_write_all(fd, data, size) < 0 || lseek(fd, 0, SEEK_SET) < 0 || !mkdtemp(dir_tmpl)) {
		close(fd);
		return 0;
	}
	int root = open(dir_tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct berth_error *err = NULL;
	struct unpack_result res;
	if (root >= 0)
		(void)image_unpack_layer(fd, root, NULL, NULL, NULL, &res, &err);
	berth_error_free(err);
	if (root >= 0)
		close(root);
	close(fd);
	fs_rm_rf(dir_tmpl, NULL);
	return 0;
}
