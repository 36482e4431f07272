/* fuzz-loglocal.c - the local log format reader and the detach-key parser never crash. */
#include "common/util.h"
#include "common/detachkeys.h"
#include "shim/loglocal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	size_t off = 0;
	struct loglocal_entry e;
	ssize_t n;
	while (off < size && (n = shim_loglocal_decode(data + off, size - off, &e)) > 0) {
		if (e.len > 0 && (const uint8_t *)e.line + e.len > data + size)
			__builtin_trap();
		off += (size_t)n;
	}
	_cleanup_free_ char *spec = xstrndup((const char *)data, size < 256 ? size : 256);
	unsigned char keys[DETACH_KEYS_MAX];
	size_t nk;
	struct berth_error *err = NULL;
	(void)detachkeys_parse(spec, keys, &nk, &err);
	berth_error_free(err);
	return 0;
}
