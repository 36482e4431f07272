#include <fcntl.h>

#include "unit.h"
#include "common/digest.h"

#define EMPTY256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void test_known_vectors(void **state)
{
	char out[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, "", 0, out);
	assert_string_equal(out, EMPTY256);
	digest_buffer(DIGEST_SHA256, "abc", 3, out);
	assert_string_equal(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	digest_buffer(DIGEST_SHA512, "abc", 3, out);
	assert_true(startswith(out, "sha512:ddaf35a193617aba"));
	assert_int_equal(strlen(out), 7 + 128);
}

static void test_streaming_equals_oneshot(void **state)
{
	_cleanup_digester_ struct digester *d = digester_new(DIGEST_SHA256);
	digester_update(d, "a", 1);
	digester_update(d, "bc", 2);
	char a[DIGEST_STRING_MAX], b[DIGEST_STRING_MAX];
	digester_final(d, a);
	digest_buffer(DIGEST_SHA256, "abc", 3, b);
	assert_string_equal(a, b);
	/* reusable after final */
	digester_final(d, a);
	assert_string_equal(a, EMPTY256);
}

/* The built-in SHA-256 of short inputs (no OpenSSL) agrees with OpenSSL's at every padding boundary. */
static void test_builtin_sha256_matches_openssl(void **state)
{
	unsigned char buf[300];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	_cleanup_digester_ struct digester *d = digester_new(DIGEST_SHA256);
	for (size_t len = 0; len <= sizeof(buf); len++) {
		char a[DIGEST_STRING_MAX], b[DIGEST_STRING_MAX];
		digester_update(d, buf, len);
		digester_final(d, a);
		digest_buffer(DIGEST_SHA256, buf, len, b);
		assert_string_equal(a, b);
	}
	/* "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" (FIPS 180-2 example, 2 blocks) */
	char out[DIGEST_STRING_MAX];
	const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	digest_buffer(DIGEST_SHA256, m, strlen(m), out);
	assert_string_equal(out, "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_parse_valid_and_invalid(void **state)
{
	enum digest_algo algo;
	const char *hex;
	assert_int_equal(digest_parse(EMPTY256, &algo, &hex, NULL), 0);
	assert_int_equal(algo, DIGEST_SHA256);
	assert_int_equal(strlen(hex), 64);
	static const char *bad[] = {
		"",
		"sha256",
		"sha256:",
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
		"sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		":e3b0",
		"sha256:../../../../etc/passwd",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		assert_int_equal(digest_parse(bad[i], NULL, NULL, &err), -EINVAL);
		assert_non_null(err);
		assert_false(digest_valid(bad[i]));
	}
	assert_int_equal(digest_parse(NULL, NULL, NULL, NULL), -EINVAL);
}

static void test_digest_fd(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	close(p[1]);
	char out[DIGEST_STRING_MAX];
	uint64_t n = 0;
	assert_int_equal(digest_fd(DIGEST_SHA256, p[0], out, &n, NULL), 0);
	assert_int_equal(n, 3);
	assert_string_equal(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	close(p[0]);
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(digest_fd(DIGEST_SHA256, -1, out, NULL, &err), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vectors),
		cmocka_unit_test(test_streaming_equals_oneshot),
		cmocka_unit_test(test_builtin_sha256_matches_openssl),
		cmocka_unit_test(test_parse_valid_and_invalid),
		cmocka_unit_test(test_digest_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
