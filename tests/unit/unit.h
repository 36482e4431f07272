/* unit.h - includes every cmocka test needs, in the order cmocka wants. */
#ifndef BERTH_TESTS_UNIT_H
#define BERTH_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <ftw.h>
#include <stdlib.h>

#include "common/macro.h"

/*
 * Temporary paths of this test process, removed when it exits: a failed assertion jumps over the
 * test's own cleanup (cmocka goes on with the next test), and the process's exit still removes
 * them. Only by the process that made them (a forked child's exit leaves its parent's alone).
 */
struct unit_tmp_path {
	char *path;
	pid_t owner;
};
static struct unit_tmp_path *unit_tmp_paths _unused_;
static size_t unit_n_tmp_paths _unused_;

static inline int unit_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static inline void unit_remove_tmp_paths(void)
{
	for (size_t i = 0; i < unit_n_tmp_paths; i++)
		if (unit_tmp_paths[i].owner == getpid())
			nftw(unit_tmp_paths[i].path, unit_remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* Remove path (a file or a tree, not following symlinks) when this process exits. */
static inline void unit_tmp_track(const char *path)
{
	if (!unit_tmp_paths)
		atexit(unit_remove_tmp_paths);
	unit_tmp_paths = xrealloc(unit_tmp_paths, (unit_n_tmp_paths + 1) * sizeof(*unit_tmp_paths));
	unit_tmp_paths[unit_n_tmp_paths++] = (struct unit_tmp_path){ xstrdup(path), getpid() };
}

/* Make a fresh temporary directory; caller removes it with fs_rm_rf (else the exit does). */
static inline char *unit_tmpdir(void)
{
	char tmpl[] = "/tmp/berth-unit-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	unit_tmp_track(d);
	return xstrdup(d);
}

/* What the code under test writes to fd 1 or 2, from unit_capture_begin to unit_capture_end. */
struct unit_capture {
	int fd, saved;
	FILE *f;
};

static inline struct unit_capture unit_capture_begin(int fd)
{
	fflush(fd == 1 ? stdout : stderr);
	struct unit_capture c = { fd, dup(fd), tmpfile() };
	assert_non_null(c.f);
	dup2(fileno(c.f), fd);
	return c;
}

/* Restore the fd; what was written (at most n - 1 bytes, NUL-terminated) into out. */
static inline void unit_capture_end(struct unit_capture *c, char *out, size_t n)
{
	fflush(c->fd == 1 ? stdout : stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	memset(out, 0, n);
	rewind(c->f);
	size_t got = fread(out, 1, n - 1, c->f);
	(void)got;
	fclose(c->f);
}

#endif
