/* fuzz-path-stat.c - the X-Docker-Container-Path-Stat header parser (berth cp) must never crash or leak. */
#include "cli/fsops.h"
#include "common/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	char *s = xstrndup((const char *)data, size);
	struct cli_path_stat st;
	struct berth_error *err = NULL;
	/* raw (as the header arrives) and as base64 of the bytes (reaches the JSON checks) */
	if (cli_path_stat_parse(s, &st, &err) == 0)
		cli_path_stat_done(&st);
	err = berth_error_free(err);
	char *b = base64_encode(data, size);
	if (cli_path_stat_parse(b, &st, &err) == 0)
		cli_path_stat_done(&st);
	berth_error_free(err);
	free(b);
	free(s);
	return 0;
}
