/*
 * test-aws-config.c - the aws CLI's credentials/config files and the
 * precedence of flags, environment and files (aws/config.h), including the
 * refusals: malformed files, duplicates, partial credentials, unknown profiles.
 */
#include "unit.h"

#include <fcntl.h>

#include "aws/config.h"
#include "common/fs.h"

static struct aws_ini *parse_ok(const char *text)
{
	struct aws_ini *ini = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (aws_ini_parse(text, strlen(text), &ini, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("refused '%s': %s", text, m);
	}
	return ini;
}

static void test_ini_parse(void **state)
{
	(void)state;
	struct aws_ini *ini = parse_ok("# comment\n"
				       "; another\n"
				       "[default]\n"
				       "aws_access_key_id = AKID\n"
				       "AWS_Secret_Access_Key=  s3cr/et+=  \r\n"
				       "\n"
				       "[profile dev]\n"
				       "region: eu-west-1\n"
				       "s3 =\n"
				       "    max_concurrent_requests = 10\n"
				       "    addressing_style = path\n"
				       "endpoint_url = https://127.0.0.1:7443\n"
				       "[ spaced ]\n"
				       "empty =\n");
	assert_string_equal(aws_ini_get(ini, "default", "aws_access_key_id"), "AKID");
	/* keys are lowercased, values trimmed (inner '=' kept), CRLF accepted */
	assert_string_equal(aws_ini_get(ini, "default", "aws_secret_access_key"), "s3cr/et+=");
	assert_string_equal(aws_ini_get(ini, "profile dev", "region"), "eu-west-1");
	assert_string_equal(aws_ini_get(ini, "profile dev", "s3"),
			    "max_concurrent_requests = 10\naddressing_style = path");
	assert_string_equal(aws_ini_get(ini, "profile dev", "endpoint_url"), "https://127.0.0.1:7443");
	assert_true(aws_ini_has_section(ini, "spaced"));
	assert_string_equal(aws_ini_get(ini, "spaced", "empty"), "");
	assert_null(aws_ini_get(ini, "default", "region"));
	assert_null(aws_ini_get(ini, "nope", "region"));
	assert_false(aws_ini_has_section(ini, "dev"));
	aws_ini_free(ini);
	/* no trailing newline, empty file */
	ini = parse_ok("[a]\nk=v");
	assert_string_equal(aws_ini_get(ini, "a", "k"), "v");
	aws_ini_free(ini);
	ini = parse_ok("");
	assert_false(aws_ini_has_section(ini, "default"));
	aws_ini_free(ini);
	assert_null(aws_ini_free(NULL));
}

static void test_ini_refusals(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"aws_access_key_id = A\n", /* key before any section */
		"[default]\njust words\n", /* neither key nor section */
		"[default\nk = v\n",       /* unterminated section */
		"[]\n",                    /* empty section name */
		"[ ]\n",                   /* blank section name */
		"[default]\n= v\n",        /* empty key */
		"[a]\nk = 1\n[a]\n",       /* repeated section (configparser strict) */
		"[a]\nk = 1\nK = 2\n",     /* repeated key, case-insensitively */
		"  k = v\n",               /* indented, nothing to continue, no section */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct aws_ini *ini = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (aws_ini_parse(bad[i], strlen(bad[i]), &ini, &err) != -EINVAL)
			fail_msg("accepted '%s'", bad[i]);
		assert_null(ini);
		_cleanup_free_ char *m = berth_error_string(err);
		assert_non_null(strstr(m, "line "));
	}
	struct aws_ini *ini = NULL;
	assert_int_equal(aws_ini_parse("[a]\nk=\0v\n", 8, &ini, NULL), -EINVAL);
	_cleanup_free_ char *longline = xmalloc(AWS_INI_MAX_LINE + 16);
	memset(longline, 'x', AWS_INI_MAX_LINE + 15);
	memcpy(longline, "[a]\nk=", 6);
	longline[AWS_INI_MAX_LINE + 15] = '\0';
	assert_int_equal(aws_ini_parse(longline, strlen(longline), &ini, NULL), -EINVAL);
	assert_int_equal(aws_ini_parse("", AWS_INI_MAX_SIZE + 1, &ini, NULL), -EFBIG);
	assert_null(ini);
}

/* The parser reads len bytes only (the fuzzer found strcspn() running past an unterminated line). */
static void test_ini_unterminated_buffer(void **state)
{
	(void)state;
	static const char *const inputs[] = { "[a]\nk", "[a]\nk = v", "[a]", "[a]\n  x", "k", "[" };
	for (size_t i = 0; i < ARRAY_SIZE(inputs); i++) {
		size_t n = strlen(inputs[i]);
		char *exact = xmalloc(n); /* no NUL: ASan flags any read past it */
		memcpy(exact, inputs[i], n);
		struct aws_ini *ini = NULL;
		if (aws_ini_parse(exact, n, &ini, NULL) == 0)
			aws_ini_free(ini);
		free(exact);
	}
	char *exact = xmalloc(9);
	memcpy(exact, "[a]\nk = v", 9);
	struct aws_ini *ini = NULL;
	assert_int_equal(aws_ini_parse(exact, 9, &ini, NULL), 0);
	assert_string_equal(aws_ini_get(ini, "a", "k"), "v");
	aws_ini_free(ini);
	free(exact);
}

/* ---- resolution ---- */

struct env {
	const char *kv[32]; /* name, value, ..., NULL */
};

static const char *env_get(const char *name, void *ctx)
{
	struct env *e = ctx;
	for (size_t i = 0; e->kv[i]; i += 2)
		if (streq(e->kv[i], name))
			return e->kv[i + 1];
	return NULL;
}

struct fixture {
	char *dir, *creds, *conf;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = unit_tmpdir();
	f->creds = xasprintf("%s/credentials", f->dir);
	f->conf = xasprintf("%s/config", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	fs_rm_rf(f->dir, NULL);
	free(f->dir);
	free(f->creds);
	free(f->conf);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	assert_int_equal(fs_write_file_atomic(path, text, strlen(text), 0600, NULL), 0);
}

static int resolve(struct env *e, const struct aws_config_flags *flags, struct aws_config *c, char **ret_msg)
{
	_cleanup_error_ struct berth_error *err = NULL;
	struct aws_config_flags none = { 0 };
	int r = aws_config_resolve(flags ? flags : &none, "ECS", env_get, e, c, &err);
	if (ret_msg)
		*ret_msg = err ? berth_error_string(err) : NULL;
	return r;
}

static const char CREDS[] = "[default]\n"
			    "aws_access_key_id = FILEKEY\n"
			    "aws_secret_access_key = filesecret\n"
			    "[dev]\n"
			    "aws_access_key_id = DEVKEY\n"
			    "aws_secret_access_key = devsecret\n"
			    "aws_session_token = devtoken\n";
static const char CONF[] = "[default]\n"
			   "region = eu-central-1\n"
			   "[profile dev]\n"
			   "region = ap-south-1\n"
			   "endpoint_url = https://127.0.0.1:9999\n"
			   "ca_bundle = /conf/ca.pem\n"
			   "[profile confonly]\n"
			   "aws_access_key_id = CONFKEY\n"
			   "aws_secret_access_key = confsecret\n";

static void test_files_default_profile(void **state)
{
	struct fixture *f = *state;
	write_file(f->creds, CREDS);
	write_file(f->conf, CONF);
	struct env e = { { "AWS_SHARED_CREDENTIALS_FILE", f->creds, "AWS_CONFIG_FILE", f->conf, NULL } };
	struct aws_config c;
	assert_int_equal(resolve(&e, NULL, &c, NULL), 0);
	assert_string_equal(c.profile, "default");
	assert_string_equal(c.access_key, "FILEKEY");
	assert_string_equal(c.secret_key, "filesecret");
	assert_null(c.session_token);
	assert_string_equal(c.region, "eu-central-1");
	assert_string_equal(c.endpoint, AWS_DEFAULT_ENDPOINT);
	assert_null(c.ca_bundle);
	assert_string_equal(c.credentials_source, "shared credentials file");
	aws_config_done(&c);
}

static void test_home_files(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *aws = xasprintf("%s/.aws", f->dir);
	_cleanup_free_ char *creds = xasprintf("%s/.aws/credentials", f->dir);
	assert_int_equal(mkdir(aws, 0700), 0);
	write_file(creds, CREDS);
	struct env e = { { "HOME", f->dir, NULL } };
	struct aws_config c;
	assert_int_equal(resolve(&e, NULL, &c, NULL), 0);
	assert_string_equal(c.access_key, "FILEKEY");
	assert_string_equal(c.region, AWS_DEFAULT_REGION); /* no config file: the built-in default */
	aws_config_done(&c);
}

static void test_profile_precedence(void **state)
{
	struct fixture *f = *state;
	write_file(f->creds, CREDS);
	write_file(f->conf, CONF);
	/* AWS_PROFILE picks the profile; its config section gives region, endpoint, CA */
	struct env e = { { "AWS_SHARED_CREDENTIALS_FILE", f->creds, "AWS_CONFIG_FILE", f->conf, "AWS_PROFILE",
			   "dev", "AWS_DEFAULT_PROFILE", "confonly", NULL } };
	struct aws_config c;
	assert_int_equal(resolve(&e, NULL, &c, NULL), 0);
	assert_string_equal(c.profile, "dev");
	assert_string_equal(c.access_key, "DEVKEY");
	assert_string_equal(c.session_token, "devtoken");
	assert_string_equal(c.region, "ap-south-1");
	assert_string_equal(c.endpoint, "https://127.0.0.1:9999");
	assert_string_equal(c.ca_bundle, "/conf/ca.pem");
	aws_config_done(&c);
	/* --profile beats AWS_PROFILE; credentials only in the config file are found there */
	struct aws_config_flags fl = { .profile = "confonly" };
	assert_int_equal(resolve(&e, &fl, &c, NULL), 0);
	assert_string_equal(c.access_key, "CONFKEY");
	assert_string_equal(c.credentials_source, "config file");
	aws_config_done(&c);
}

static void test_env_precedence(void **state)
{
	struct fixture *f = *state;
	write_file(f->creds, CREDS);
	write_file(f->conf, CONF);
	struct env e = { { "AWS_SHARED_CREDENTIALS_FILE",
			   f->creds,
			   "AWS_CONFIG_FILE",
			   f->conf,
			   "AWS_PROFILE",
			   "dev",
			   "AWS_ACCESS_KEY_ID",
			   "ENVKEY",
			   "AWS_SECRET_ACCESS_KEY",
			   "envsecret",
			   "AWS_SESSION_TOKEN",
			   "envtoken",
			   "AWS_REGION",
			   "us-west-2",
			   "AWS_DEFAULT_REGION",
			   "us-west-1",
			   "AWS_ENDPOINT_URL",
			   "https://127.0.0.1:1",
			   "AWS_ENDPOINT_URL_ECS",
			   "https://127.0.0.1:2",
			   "AWS_CA_BUNDLE",
			   "/env/ca.pem",
			   NULL } };
	struct aws_config c;
	/* env keys beat AWS_PROFILE's; the service endpoint beats the global one */
	assert_int_equal(resolve(&e, NULL, &c, NULL), 0);
	assert_string_equal(c.access_key, "ENVKEY");
	assert_string_equal(c.secret_key, "envsecret");
	assert_string_equal(c.session_token, "envtoken");
	assert_string_equal(c.credentials_source, "env");
	assert_string_equal(c.region, "us-west-2");
	assert_string_equal(c.endpoint, "https://127.0.0.1:2");
	assert_string_equal(c.ca_bundle, "/env/ca.pem");
	aws_config_done(&c);
	/* flags beat everything; an explicit --profile ignores env keys (botocore) */
	struct aws_config_flags fl = { .profile = "dev",
				       .region = "sa-east-1",
				       .endpoint = "http://127.0.0.1:3",
				       .ca_bundle = "/flag/ca.pem" };
	assert_int_equal(resolve(&e, &fl, &c, NULL), 0);
	assert_string_equal(c.access_key, "DEVKEY");
	assert_string_equal(c.region, "sa-east-1");
	assert_string_equal(c.endpoint, "http://127.0.0.1:3");
	assert_string_equal(c.ca_bundle, "/flag/ca.pem");
	aws_config_done(&c);
	/* AWS_DEFAULT_REGION when AWS_REGION is unset; AWS_ENDPOINT_URL without the service's */
	struct env e2 = { { "AWS_ACCESS_KEY_ID", "K", "AWS_SECRET_ACCESS_KEY", "S", "AWS_DEFAULT_REGION",
			    "us-west-1", "AWS_ENDPOINT_URL", "https://127.0.0.1:1", "AWS_REGION", "",
			    NULL } };
	assert_int_equal(resolve(&e2, NULL, &c, NULL), 0);
	assert_string_equal(c.region, "us-west-1");
	assert_string_equal(c.endpoint, "https://127.0.0.1:1");
	assert_null(c.session_token);
	aws_config_done(&c);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct aws_config c = { 0 };
	char *msg = NULL;
	/* no credentials anywhere */
	struct env none = { { "HOME", f->dir, NULL } };
	assert_int_equal(resolve(&none, NULL, &c, &msg), -ENOENT);
	assert_non_null(strstr(msg, "unable to locate credentials"));
	free(msg);
	/* partial env credentials name what is missing */
	struct env partial = { { "HOME", f->dir, "AWS_SECRET_ACCESS_KEY", "s", NULL } };
	assert_int_equal(resolve(&partial, NULL, &c, &msg), -EINVAL);
	assert_non_null(strstr(msg, "AWS_ACCESS_KEY_ID"));
	free(msg);
	/* partial file credentials */
	write_file(f->creds, "[default]\naws_access_key_id = A\n");
	struct env e = { { "AWS_SHARED_CREDENTIALS_FILE", f->creds, "AWS_CONFIG_FILE", f->conf, NULL } };
	assert_int_equal(resolve(&e, NULL, &c, &msg), -EINVAL);
	assert_non_null(strstr(msg, "aws_secret_access_key"));
	free(msg);
	/* a profile named explicitly that no file has */
	write_file(f->creds, CREDS);
	struct env p = { { "AWS_SHARED_CREDENTIALS_FILE", f->creds, "AWS_CONFIG_FILE", f->conf, "AWS_PROFILE",
			   "ghost", NULL } };
	assert_int_equal(resolve(&p, NULL, &c, &msg), -ENOENT);
	assert_non_null(strstr(msg, "ghost"));
	free(msg);
	/* a malformed file is an error naming the file, not silently empty */
	write_file(f->conf, "[default]\nthis is not ini\n");
	assert_int_equal(resolve(&e, NULL, &c, &msg), -EINVAL);
	assert_non_null(strstr(msg, f->conf));
	assert_non_null(strstr(msg, "line 2"));
	free(msg);
	/* nothing was filled */
	assert_null(c.access_key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini_parse),
		cmocka_unit_test(test_ini_refusals),
		cmocka_unit_test(test_ini_unterminated_buffer),
		cmocka_unit_test_setup_teardown(test_files_default_profile, setup, teardown),
		cmocka_unit_test_setup_teardown(test_home_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profile_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
