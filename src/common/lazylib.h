/*
 * lazylib.h - the run-time half of lazily bound shared libraries.
 *
 * scripts/lazylib.py turns a library's exported functions into stubs of the
 * same names plus one `struct lazylib`; the build links those stubs instead
 * of -lNAME (meson option lazy_libs). A stub's first call lands here: the
 * library is dlopen()ed by its SONAME (once per process, RTLD_NOW |
 * RTLD_LOCAL) and that one function is looked up; later calls jump straight
 * to it. So a process loads libcurl, libarchive, OpenSSL, SQLite, ... (and
 * their ~40 dependencies) only if it calls them: `berth ps` maps 5 libraries
 * instead of 50 (docs/ARCHITECTURE.md, "Process start").
 *
 * Guard: a library is never loaded after the process's root directory
 * changed (chroot, pivot_root, joining another mount namespace with another
 * root): the library would come from that root, a container's file system.
 * Such a load is a bug; it aborts with a message instead.
 */
#ifndef BERTH_COMMON_LAZYLIB_H
#define BERTH_COMMON_LAZYLIB_H

#include <stddef.h>

struct lazylib {
	const char *soname;
	const char *names;       /* NUL-separated function names */
	const unsigned *offsets; /* offsets[i]: function i's name in names */
	size_t n;
	void **tab; /* the stubs' jump table: NULL until resolved */
	void *handle;
};

/* Function i of l (loading l if needed); never returns NULL (exits with a message). */
void *lazylib_resolve(struct lazylib *l, size_t i);

/* How many lazily bound libraries this process has loaded so far (tests). */
int lazylib_loaded_count(void);

#endif
