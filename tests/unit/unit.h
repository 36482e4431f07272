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

#include "common/macro.h"

/* Make a fresh temporary directory; caller removes it with fs_rm_rf. */
static inline char *unit_tmpdir(void)
{
	char tmpl[] = "/tmp/berth-unit-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
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
