/* test-lazylib.c - a lazily bound library (libzstd here) is loaded by its first call, once. */
#include "unit.h"

#include <zstd.h>

#include "common/lazylib.h"

static void test_loaded_on_first_call_only(void **state)
{
	assert_int_equal(lazylib_loaded_count(), 0); /* nothing called yet: nothing mapped */
	assert_int_equal(ZSTD_versionNumber(), ZSTD_VERSION_NUMBER);
	assert_int_equal(lazylib_loaded_count(), 1);
	/* later calls (and other functions of the same library) jump straight there */
	assert_string_equal(ZSTD_versionString(), ZSTD_VERSION_STRING);
	assert_int_equal(ZSTD_versionNumber(), ZSTD_VERSION_NUMBER);
	assert_int_equal(lazylib_loaded_count(), 1);
	/* several arguments reach the real function and its results come back */
	char src[] = "lazy lazy lazy lazy lazy lazy", dst[256], back[64];
	size_t n = ZSTD_compress(dst, sizeof(dst), src, sizeof(src), 3);
	assert_false(ZSTD_isError(n));
	assert_int_equal(ZSTD_decompress(back, sizeof(back), dst, n), sizeof(src));
	assert_string_equal(back, src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded_on_first_call_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
