/* test-cli-progress.c - the JSON message stream renderer and the filter encoding. */
#include <stdio.h>

#include "unit.h"
#include "cli/verbs.h"
#include "common/json.h"

static char *render(const char *const *chunks, bool tty, bool quiet, char **ret_error)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct cli_progress p;
	cli_progress_init(&p, f, tty, quiet);
	for (const char *const *c = chunks; *c; c++)
		assert_int_equal(cli_progress_feed(&p, *c, strlen(*c)), 0);
	cli_progress_finish(&p);
	if (ret_error)
		*ret_error = p.error ? xstrdup(p.error) : NULL;
	cli_progress_done(&p);
	fclose(f);
	return buf;
}

static void test_non_tty_lines(void **state)
{
	static const char *const in[] = {
		"{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}\r\n{\"status\":\"Pulling "
		"fs ",
		"layer\",\"id\":\"abc\",\"progressDetail\":{}}\r\n",
		"{\"status\":\"Downloading\",\"id\":\"abc\",\"progressDetail\":{\"current\":1,\"total\":10}}"
		"\n",
		"{\"status\":\"Downloading\",\"id\":\"abc\",\"progressDetail\":{\"current\":5,\"total\":10}}"
		"\n",
		"{\"status\":\"Pull complete\",\"id\":\"abc\",\"progressDetail\":{}}\n",
		"{\"stream\":\"Loaded image: x:1\\n\"}\n",
		"{\"status\":\"Digest: sha256:00\"}",
		NULL
	};
	char *err = NULL;
	char *out = render(in, false, false, &err);
	assert_string_equal(out,
			    "latest: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Downloading\n"
			    "abc: Pull complete\nLoaded image: x:1\nDigest: sha256:00\n");
	assert_null(err);
	free(out);
}

static void test_errors_quiet_and_garbage(void **state)
{
	static const char *const in[] = { "{\"status\":\"x\"}\n",
					  "not json\n",
					  "[1,2]\n",
					  "\n\r\n",
					  "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}\n",
					  "{\"error\":\"second\"}\n",
					  "{\"status\":7,\"id\":[],\"stream\":{}}\n",
					  NULL };
	char *err = NULL;
	char *out = render(in, false, true, &err);
	assert_string_equal(out, "");
	assert_string_equal(err, "boom");
	free(out);
	free(err);
	out = render(in, false, false, &err);
	assert_string_equal(out, "x\nnot json\n[1,2]\n");
	free(out);
	free(err);
}

static void test_tty_redraws_in_place(void **state)
{
	static const char *const in[] = {
		"{\"status\":\"Pushing\",\"id\":\"a\",\"progressDetail\":{\"current\":5,\"total\":10}}\n",
		"{\"status\":\"Pushing\",\"id\":\"b\",\"progressDetail\":{}}\n",
		"{\"status\":\"Pushed\",\"id\":\"a\",\"progressDetail\":{}}\n", NULL
	};
	char *out = render(in, true, false, NULL);
	assert_non_null(strstr(out, "a: Pushing [=========================>"));
	assert_non_null(strstr(out, "5B/10B"));
	assert_non_null(strstr(out, "\033[2A\r\033[2Ka: Pushed\r\033[2B"));
	free(out);
}

static void test_filters_encoding(void **state)
{
	json_t *f = json_object();
	char *q = cli_filters_query(f);
	assert_string_equal(q, "");
	free(q);
	cli_filter_add(f, "label=a=b");
	cli_filter_add(f, "dangling=true");
	cli_filter_add(f, "label=c");
	q = cli_filters_query(f);
	assert_string_equal(q, "?filters=%7B%22dangling%22%3A%7B%22true%22%3Atrue%7D%2C%22label%22%3A%7B%22a%"
			       "3Db%22%3Atrue%2C%22c%22%3Atrue%7D%7D");
	free(q);
	json_decref(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_non_tty_lines),
		cmocka_unit_test(test_errors_quiet_and_garbage),
		cmocka_unit_test(test_tty_redraws_in_place),
		cmocka_unit_test(test_filters_encoding),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
