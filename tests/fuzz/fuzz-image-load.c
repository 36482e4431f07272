/* fuzz-image-load.c - `berth image load` on hostile archives: tar reading,
 * manifest.json / index.json interpretation, config and layer lookups, unpack.
 * One store in a temp directory serves every run (removed at exit). */
#include <sys/mman.h>

#include "common/fs.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct image_store *store;
static char root[] = "/tmp/berth-fuzz-load-XXXXXX";

static void cleanup(void)
{
	store = image_store_free(store);
	fs_rm_rf(root, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	if (!store) {
		if (!mkdtemp(root) || image_store_open(root, &store, NULL) < 0)
			abort();
		atexit(cleanup);
	}
	int fd = memfd_create("fuzz-load", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fs_write_all(fd, data, size) == 0 && lseek(fd, 0, SEEK_SET) == 0) {
		char **loaded = NULL;
		struct berth_error *err = NULL;
		if (image_load(store, fd, "fuzz:latest", NULL, NULL, &loaded, &err) == 0)
			strv_free(loaded);
		free(berth_error_string(err));
		berth_error_free(err);
	}
	close(fd);
	return 0;
}
