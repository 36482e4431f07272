/*
 * lazylib.c - load a lazily bound library on its first call (lazylib.h).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/lazylib.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dev_t root_dev;
static ino_t root_ino;
static int root_known, loaded;

__attribute__((constructor)) static void remember_root(void)
{
	struct stat st;
	if (stat("/", &st) == 0) {
		root_dev = st.st_dev;
		root_ino = st.st_ino;
		root_known = 1;
	}
}

static void check_root(const char *soname)
{
	struct stat st;
	if (!root_known || (stat("/", &st) == 0 && st.st_dev == root_dev && st.st_ino == root_ino))
		return;
	fprintf(stderr,
		"berth: refusing to load %s after the root directory changed (a bug: load it before)\n",
		soname);
	abort();
}

void *lazylib_resolve(struct lazylib *l, size_t i)
{
	void *p = __atomic_load_n(&l->tab[i], __ATOMIC_ACQUIRE);
	if (p)
		return p;
	const char *name = l->names + l->offsets[i];
	pthread_mutex_lock(&lock);
	if (!l->handle) {
		check_root(l->soname);
		l->handle = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
		if (!l->handle) {
			fprintf(stderr, "berth: cannot load %s: %s\n", l->soname, dlerror());
			exit(127);
		}
		loaded++;
	}
	p = dlsym(l->handle, name);
	if (p)
		__atomic_store_n(&l->tab[i], p, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	if (!p) {
		fprintf(stderr, "berth: %s has no function %s\n", l->soname, name);
		exit(127);
	}
	return p;
}

int lazylib_loaded_count(void)
{
	pthread_mutex_lock(&lock);
	int n = loaded;
	pthread_mutex_unlock(&lock);
	return n;
}
