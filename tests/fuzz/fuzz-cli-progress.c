/*
 * fuzz-cli-progress.c - the CLI's renderer of docker's JSON message stream
 * (pull/push/load output from a daemon), fed in two chunks, both on a
 * "terminal" and not.
 */
#include <stdint.h>
#include <stdio.h>

#include "cli/verbs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	for (int tty = 0; tty < 2; tty++) {
		FILE *f = fopen("/dev/null", "w");
		if (!f)
			return 0;
		struct cli_progress p;
		cli_progress_init(&p, f, tty, false);
		size_t half = size / 2;
		cli_progress_feed(&p, (const char *)data, half);
		cli_progress_feed(&p, (const char *)data + half, size - half);
		cli_progress_finish(&p);
		cli_progress_done(&p);
		fclose(f);
	}
	return 0;
}
