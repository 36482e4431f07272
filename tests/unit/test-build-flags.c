/* test-build-flags.c - --chmod (octal and symbolic), --secret and --ssh specs. */
#include "unit.h"

#include "build/flags.h"

static void check_mode(const char *spec, mode_t old, bool is_dir, mode_t want)
{
	_cleanup_error_ struct berth_error *err = NULL;
	if (build_chmod_check(spec, &err) < 0)
		fail_msg("'%s' rejected", spec);
	mode_t got = build_chmod_apply(spec, old, is_dir);
	if (got != want)
		fail_msg("'%s' on %04o -> %04o, expected %04o", spec, (unsigned)old, (unsigned)got,
			 (unsigned)want);
}

static void test_chmod_octal_and_symbolic(void **state)
{
	(void)state;
	check_mode("755", 0600, false, 0755);
	check_mode("0644", 0777, false, 0644);
	check_mode("4755", 0, false, 04755);
	check_mode("u+x", 0644, false, 0744);
	check_mode("u+x,g-w", 0664, false, 0744);
	check_mode("+x", 0644, false, 0755);
	check_mode("a=r", 0777, false, 0444);
	check_mode("go=", 0755, false, 0700);
	check_mode("o=u", 0640, false, 0646);
	check_mode("g+X", 0644, false, 0644);
	check_mode("g+X", 0644, true, 0654);
	check_mode("g+X", 0744, false, 0754);
	check_mode("u+s,+t", 0755, false, 05755);
	check_mode("ug+rw-x", 0751, false, 0661);
	check_mode("u=rwx,g=rx,o=", 0, false, 0750);
}

static void test_chmod_rejects_bad_values(void **state)
{
	(void)state;
	static const char *const bad[] = { "",      "8",    "77777", "017777",   "u",   "u+z",
					   "x+u",   "u+x,", ",u+x",  "u+x,,g+w", "rwx", "u-x g+w",
					   "0x755", "-1",   "uu",    NULL };
	for (const char *const *b = bad; *b; b++) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (build_chmod_check(*b, &err) != -EINVAL)
			fail_msg("'%s' accepted", *b);
		_cleanup_free_ char *m = berth_error_string(err);
		assert_non_null(strstr(m, "invalid chmod parameter"));
	}
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_chmod_check(NULL, &err), -EINVAL);
	char big[BUILD_CHMOD_MAX + 8];
	memset(big, 0, sizeof(big));
	for (size_t i = 0; i + 4 < sizeof(big); i += 4)
		memcpy(big + i, "u+x,", 4);
	big[sizeof(big) - 5] = 'x';
	big[sizeof(big) - 4] = '\0';
	assert_int_equal(build_chmod_check(big, NULL), -EINVAL);
}

static void test_secret_specs(void **state)
{
	(void)state;
	struct build_secret_spec s;
	assert_int_equal(build_secret_spec_parse("id=tok,src=/tmp/t", &s, NULL), 0);
	assert_string_equal(s.id, "tok");
	assert_string_equal(s.src, "/tmp/t");
	assert_null(s.env);
	build_secret_spec_done(&s);
	assert_int_equal(build_secret_spec_parse("source=f,id=a,type=file", &s, NULL), 0);
	assert_string_equal(s.src, "f");
	build_secret_spec_done(&s);
	assert_int_equal(build_secret_spec_parse("id=a,env=HOME", &s, NULL), 0);
	assert_string_equal(s.env, "HOME");
	build_secret_spec_done(&s);
	assert_int_equal(build_secret_spec_parse("id=a,type=env", &s, NULL), 0);
	assert_string_equal(s.env, "a");
	assert_null(s.src);
	build_secret_spec_done(&s);
	assert_int_equal(build_secret_spec_parse("id=only", &s, NULL), 0);
	assert_null(s.src);
	assert_null(s.env);
	build_secret_spec_done(&s);
	static const char *const bad[] = {
		"",   "src=f", "id=", "id", "id=a,foo=b", "id=a,type=ssh", "id=a,src=f,env=E", "id=a,,src=f",
		"=x", NULL
	};
	for (const char *const *b = bad; *b; b++) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (build_secret_spec_parse(*b, &s, &err) != -EINVAL)
			fail_msg("'%s' accepted", *b);
	}
}

static void test_ssh_specs(void **state)
{
	(void)state;
	_cleanup_free_ char *id = NULL, *sock = NULL;
	assert_int_equal(build_ssh_spec_parse("default", "/run/agent.sock", &id, &sock, NULL), 0);
	assert_string_equal(id, "default");
	assert_string_equal(sock, "/run/agent.sock");
	free(id);
	free(sock);
	assert_int_equal(build_ssh_spec_parse("gh=/tmp/s", NULL, &id, &sock, NULL), 0);
	assert_string_equal(id, "gh");
	assert_string_equal(sock, "/tmp/s");
	_cleanup_error_ struct berth_error *err = NULL;
	char *x = NULL, *y = NULL;
	assert_int_equal(build_ssh_spec_parse("default", NULL, &x, &y, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(strstr(m, "SSH_AUTH_SOCK"));
	assert_int_equal(build_ssh_spec_parse("", "/s", &x, &y, NULL), -EINVAL);
	assert_int_equal(build_ssh_spec_parse("a=/x,/y", NULL, &x, &y, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chmod_octal_and_symbolic),
		cmocka_unit_test(test_chmod_rejects_bad_values),
		cmocka_unit_test(test_secret_specs),
		cmocka_unit_test(test_ssh_specs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
