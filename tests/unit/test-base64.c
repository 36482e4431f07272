#include "unit.h"
#include "common/base64.h"

static void check(const char *plain, const char *encoded)
{
	_cleanup_free_ char *e = base64_encode(plain, strlen(plain));
	assert_string_equal(e, encoded);
	_cleanup_free_ void *d = NULL;
	size_t n;
	assert_int_equal(base64_decode(encoded, &d, &n), 0);
	assert_int_equal(n, strlen(plain));
	assert_memory_equal(d, plain, n);
}

static void test_rfc4648_vectors(void **state)
{
	check("", "");
	check("f", "Zg==");
	check("fo", "Zm8=");
	check("foo", "Zm9v");
	check("foob", "Zm9vYg==");
	check("fooba", "Zm9vYmE=");
	check("foobar", "Zm9vYmFy");
}

static void test_decode_without_padding_and_url_alphabet(void **state)
{
	_cleanup_free_ void *d = NULL;
	size_t n;
	assert_int_equal(base64_decode("Zm8", &d, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(d, "fo", 2);
	free(d);
	d = NULL;
	assert_int_equal(base64_decode("-_8", &d, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(((unsigned char *)d)[0], 0xfb);
}

static void test_decode_rejects_garbage(void **state)
{
	void *d = NULL;
	size_t n;
	assert_int_equal(base64_decode("Zm9v!", &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Z", &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Zg===", &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Zm 9v", &d, &n), -EINVAL);
	assert_null(d);
}

static void test_url_encode(void **state)
{
	static const unsigned char bin[] = { 0xfb, 0xff, 0xbf };
	_cleanup_free_ char *a = base64url_encode(bin, sizeof(bin), true);
	assert_string_equal(a, "-_-_");
	_cleanup_free_ char *std = base64_encode(bin, sizeof(bin));
	assert_string_equal(std, "+/+/");
	/* docker's X-Registry-Auth: Go's base64.URLEncoding keeps the padding. */
	_cleanup_free_ char *p = base64url_encode("{\"a\":1}?", 8, true);
	assert_string_equal(p, "eyJhIjoxfT8=");
	_cleanup_free_ char *r = base64url_encode("{\"a\":1}?", 8, false);
	assert_string_equal(r, "eyJhIjoxfT8");
	_cleanup_free_ char *r1 = base64url_encode("f", 1, false);
	assert_string_equal(r1, "Zg");
	_cleanup_free_ char *e = base64url_encode("", 0, true);
	assert_string_equal(e, "");
	_cleanup_free_ void *d = NULL;
	size_t n;
	assert_int_equal(base64_decode(a, &d, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(d, bin, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_decode_without_padding_and_url_alphabet),
		cmocka_unit_test(test_decode_rejects_garbage),
		cmocka_unit_test(test_url_encode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
