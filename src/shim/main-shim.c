/*
 * main-shim.c - `berth-shim`, the slim executable of the per-container
 * shim and of the OCI runtime CLI. It links only the shim and runtime
 * libraries (libc, jansson, libseccomp, libcap): no curl, sqlite, openssl,
 * libarchive or libmicrohttpd, so it starts faster and maps less than the
 * multi-call berth binary. Invocations (the same vectors as berth's):
 *
 *   berth-shim shim DIR           what `berth shim DIR` does
 *   berth-shim runtime ARGS...    what `berth runtime ARGS...` does
 *   argv[0] named berth-runtime   what `berth-runtime ARGS...` does
 *
 * The daemon starts shims from it, and runtime_protect_exe() re-executes
 * into it (runtime/exe.c).
 */
#include <libgen.h>
#include <stdio.h>

#include "common/util.h"
#include "runtime/runtime.h"
#include "shim/shim.h"

int main(int argc, char **argv)
{
	if (argc > 0 && streq(basename(argv[0]), "berth-runtime"))
		return runtime_main(argc, argv);
	if (argc >= 2 && streq(argv[1], "shim"))
		return shim_main(argc - 1, argv + 1);
	if (argc >= 2 && streq(argv[1], "runtime"))
		return runtime_main(argc - 1, argv + 1);
	fprintf(stderr, "Usage: berth-shim shim DIR | berth-shim runtime ARGS... (internal; see berth(1))\n");
	return 2;
}
