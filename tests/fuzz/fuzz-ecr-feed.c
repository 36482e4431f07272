/*
 * fuzz-ecr-feed.c - the OSV feed, dpkg status, apk db and os-release parsers
 * and the matcher never crash on hostile bytes. The input is split at the
 * first NUL: the part before it is the OSV document, the rest is fed to every
 * inventory parser.
 */
#include <string.h>

#include "ecr/ecr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	const char *buf = (const char *)data;
	const char *nul = memchr(buf, '\0', size);
	size_t osv_len = nul ? (size_t)(nul - buf) : size;
	const char *rest = nul ? nul + 1 : "";
	size_t rest_len = nul ? size - osv_len - 1 : 0;
	struct ecr_feed *f = ecr_feed_new();
	char *msg = NULL;
	if (ecr_feed_add(f, buf, osv_len, &msg) < 0 && !msg)
		__builtin_trap();
	free(msg);
	struct ecr_inventory inv = { 0 };
	msg = NULL;
	if (ecr_parse_dpkg_status(&inv, rest, rest_len, &msg) < 0 && !msg)
		__builtin_trap();
	free(msg);
	msg = NULL;
	if (ecr_parse_apk_installed(&inv, rest, rest_len, &msg) < 0 && !msg)
		__builtin_trap();
	free(msg);
	msg = NULL;
	if (ecr_parse_os_release(&inv, rest, rest_len, &msg) < 0 && !msg)
		__builtin_trap();
	free(msg);
	json_decref(ecr_feed_match(f, &inv));
	ecr_inventory_done(&inv);
	ecr_feed_free(f);
	return 0;
}
