/* unit.h - includes every cmocka test needs, in the order cmocka wants. */
#ifndef BERTH_TESTS_UNIT_H
#define BERTH_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

#endif
