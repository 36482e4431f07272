/* test-detachkeys.c - docker's detach key specs (valid and invalid) and the stdin filter. */
#include "unit.h"
#include "common/detachkeys.h"

static void test_detach_keys_parse(void **state)
{
	unsigned char k[DETACH_KEYS_MAX];
	size_t n = 0;
	assert_int_equal(detachkeys_parse("ctrl-p,ctrl-q", k, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(k[0], 16);
	assert_int_equal(k[1], 17);
	assert_int_equal(detachkeys_parse("ctrl-@,a,ctrl-_,ctrl-[,,", k, &n, NULL) < 0, 1);
	assert_int_equal(detachkeys_parse("ctrl-@,a,ctrl-_,ctrl-[", k, &n, NULL), 0);
	assert_int_equal(n, 4);
	assert_int_equal(k[0], 0);
	assert_int_equal(k[1], 'a');
	assert_int_equal(k[2], 31);
	assert_int_equal(k[3], 27);
	static const char *const bad[] = { "",       "ctrl-",   "ctrl-1",
					   "ctrl-A", "ab",      "a,",
					   ",a",     "ctrl-pq", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_error_ struct berth_error *e = NULL;
		n = 99;
		assert_int_equal(detachkeys_parse(bad[i], k, &n, &e), -EINVAL);
		assert_int_equal(n, 99);
		assert_non_null(e);
	}
	_cleanup_error_ struct berth_error *e = NULL;
	detachkeys_parse("ctrl-1", k, &n, &e);
	_cleanup_free_ char *m = berth_error_string(e);
	assert_string_equal(m, "Unknown character: 'ctrl-1'");
}

static void test_detach_matcher(void **state)
{
	struct detach_matcher m = { .keys = { 16, 17 }, .n = 2 };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	assert_false(detachkeys_matcher_feed(&m, "ab\x10", 3, &out));
	assert_int_equal(out.len, 2); /* ctrl-p held back */
	assert_false(detachkeys_matcher_feed(&m, "c", 1, &out));
	assert_memory_equal(out.buf,
			    "ab\x10"
			    "c",
			    4);
	strbuf_reset(&out);
	assert_false(detachkeys_matcher_feed(&m, "\x10", 1, &out));
	assert_true(detachkeys_matcher_feed(&m, "\x11zz", 3, &out));
	assert_int_equal(out.len, 0);
	struct detach_matcher none = { .n = 0 };
	assert_false(detachkeys_matcher_feed(&none, "\x10\x11", 2, &out));
	assert_int_equal(out.len, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detach_keys_parse),
		cmocka_unit_test(test_detach_matcher),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
