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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_decode_without_padding_and_url_alphabet),
		cmocka_unit_test(test_decode_rejects_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
