/* test-dockerignore.c - .dockerignore (moby/patternmatcher) and Go's
 * filepath.Match / Clean semantics. Cases follow patternmatcher's tests. */
#include "unit.h"

#include "build/ignore.h"
#include "build/pathmatch.h"

struct mcase {
	const char *pattern, *path;
	bool match;
};

static const struct mcase match_cases[] = {
	{ "**", "file", true },
	{ "**", "file/", true },
	{ "**/", "file", true },
	{ "**/", "file/", true },
	{ "**", "/", true },
	{ "**/", "/", true },
	{ "**", "dir/file", true },
	{ "**/", "dir/file", true },
	{ "**", "dir/file/", true },
	{ "**/", "dir/file/", true },
	{ "**/**", "dir/file", true },
	{ "**/**", "dir/file/", true },
	{ "dir/**", "dir/file", true },
	{ "dir/**", "dir/file/", true },
	{ "dir/**", "dir/dir2/file", true },
	{ "dir/**", "dir/dir2/file/", true },
	{ "**/dir", "dir", true },
	{ "**/dir", "dir/file", true },
	{ "**/dir2/*", "dir/dir2/file", true },
	{ "**/dir2/*", "dir/dir2/file/", true },
	{ "**/dir2/**", "dir/dir2/dir3/file", true },
	{ "**/dir2/**", "dir/dir2/dir3/file/", true },
	{ "**file", "file", true },
	{ "**file", "dir/file", true },
	{ "**/file", "dir/file", true },
	{ "**file", "dir/dir/file", true },
	{ "**/file", "dir/dir/file", true },
	{ "**/file*", "dir/dir/file", true },
	{ "**/file*", "dir/dir/file.txt", true },
	{ "**/file*txt", "dir/dir/file.txt", true },
	{ "**/file*.txt", "dir/dir/file.txt", true },
	{ "**/file*.txt*", "dir/dir/file.txt", true },
	{ "**/**/*.txt", "dir/dir/file.txt", true },
	{ "**/**/*.txt2", "dir/dir/file.txt", false },
	{ "**/*.txt", "file.txt", true },
	{ "**/**/*.txt", "file.txt", true },
	{ "a**/*.txt", "a/file.txt", true },
	{ "a**/*.txt", "a/dir/file.txt", true },
	{ "a**/*.txt", "a/dir/dir/file.txt", true },
	{ "a/*.txt", "a/dir/file.txt", false },
	{ "a/*.txt", "a/file.txt", true },
	{ "a/*.txt**", "a/file.txt", true },
	{ "a[b-d]e", "ae", false },
	{ "a[b-d]e", "ace", true },
	{ "a[b-d]e", "aae", false },
	{ "a[^b-d]e", "aze", true },
	{ ".*", ".foo", true },
	{ ".*", "foo", false },
	{ "abc.def", "abcdef", false },
	{ "abc.def", "abc.def", true },
	{ "abc.def", "abcZdef", false },
	{ "abc?def", "abcZdef", true },
	{ "abc?def", "abcdef", false },
	{ "a\\\\", "a\\", true },
	{ "**/foo/bar", "foo/bar", true },
	{ "**/foo/bar", "dir/foo/bar", true },
	{ "**/foo/bar", "dir/dir2/foo/bar", true },
	{ "abc/**", "abc", false },
	{ "abc/**", "abc/def", true },
	{ "abc/**", "abc/def/ghi", true },
	{ "**/.foo", ".foo", true },
	{ "**/.foo", "bar.foo", false },
	{ "a(b)c/def", "a(b)c/def", true },
	{ "a(b)c/def", "a(b)c/xyz", false },
	{ "a.|)$(}+{bc", "a.|)$(}+{bc", true },
	{ "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
	  "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true },
	{ "dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true },
};

static void test_pattern_cases(void **state)
{
	for (size_t i = 0; i < ARRAY_SIZE(match_cases); i++) {
		const struct mcase *c = &match_cases[i];
		char *pats[] = { (char *)c->pattern, NULL };
		struct ignore *ig = NULL;
		assert_int_equal(build_ignore_new(pats, &ig, NULL), 0);
		bool m = build_ignore_matches(ig, c->path);
		if (m != c->match)
			fail_msg("pattern '%s' path '%s': got %d want %d", c->pattern, c->path, m, c->match);
		build_ignore_free(ig);
	}
}

static bool excluded(const char *text, const char *path)
{
	struct ignore *ig = NULL;
	assert_int_equal(build_ignore_parse(text, strlen(text), &ig, NULL), 0);
	bool m = build_ignore_matches(ig, path);
	build_ignore_free(ig);
	return m;
}

static void test_exceptions_and_parents(void **state)
{
	const char *ig = "# comment\n*.md\n!README.md\nnode_modules\n/build/\n  docs/**  \n!docs/keep/**\n";
	assert_true(excluded(ig, "a.md"));
	assert_false(excluded(ig, "README.md"));
	assert_true(excluded(ig, "node_modules"));
	assert_true(excluded(ig, "node_modules/x/y.js"));
	assert_false(excluded(ig, "src/node_modules")); /* patterns are anchored at the root */
	assert_true(excluded(ig, "build/out.o"));
	assert_true(excluded(ig, "docs/a/b"));
	assert_false(excluded(ig, "docs/keep/a"));
	assert_false(excluded(ig, "# comment"));
	assert_false(excluded(ig, "src/main.c"));
	/* the last matching rule wins */
	assert_true(excluded("!a\na\n", "a"));
	assert_false(excluded("a\n!a\n", "a"));
	/* a re-included file under an excluded directory is back */
	assert_false(excluded("dir\n!dir/file\n", "dir/file"));
	assert_true(excluded("dir\n!dir/file\n", "dir/other"));
}

static void test_read_patterns(void **state)
{
	const char *text = "\xef\xbb\xbf# c\n /abs/path/ \n!  spaced\n\n./a/../b\n#x\n ## not comment\n";
	_cleanup_strv_ char **p = build_ignore_read_patterns(text, strlen(text));
	const char *expect[] = { "abs/path", "!spaced", "b", "##", NULL };
	(void)expect;
	assert_string_equal(p[0], "abs/path");
	assert_string_equal(p[1], "!spaced");
	assert_string_equal(p[2], "b");
	assert_string_equal(p[3], "## not comment");
	assert_null(p[4]);
}

static void test_bad_patterns(void **state)
{
	struct ignore *ig = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	char *bang[] = { (char *)"!", NULL };
	assert_int_equal(build_ignore_new(bang, &ig, &err), -EINVAL);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "illegal exclusion pattern: \"!\"");
	char *bad[] = { (char *)"a[", NULL };
	assert_int_equal(build_ignore_new(bad, &ig, NULL), -EINVAL);
	char *bad2[] = { (char *)"[]a]", NULL };
	assert_int_equal(build_ignore_new(bad2, &ig, NULL), -EINVAL);
	char *bad3[] = { (char *)"a\\", NULL };
	assert_int_equal(build_ignore_new(bad3, &ig, NULL), -EINVAL);
	char *longp = xmalloc(1 << 20);
	memset(longp, 'a', (1 << 20) - 1);
	longp[0] = '*';
	longp[(1 << 20) - 1] = '\0';
	char *bad4[] = { longp, NULL };
	assert_int_equal(build_ignore_new(bad4, &ig, NULL), -EINVAL);
	free(longp);
}

static void test_go_match(void **state)
{
	static const struct {
		const char *p, *s;
		int want;
	} cases[] = {
		{ "abc", "abc", 1 },
		{ "*", "abc", 1 },
		{ "*c", "abc", 1 },
		{ "a*", "a", 1 },
		{ "a*", "abc", 1 },
		{ "a*", "ab/c", 0 },
		{ "a*/b", "abc/b", 1 },
		{ "a*/b", "a/c/b", 0 },
		{ "a*b*c*d*e*/f", "axbxcxdxe/f", 1 },
		{ "a*b*c*d*e*/f", "axbxcxdxexxx/f", 1 },
		{ "a*b*c*d*e*/f", "axbxcxdxe/xxx/f", 0 },
		{ "a*b*c*d*e*/f", "axbxcxdxexxx/fff", 0 },
		{ "a*b?c*x", "abxbbxdbxebxczzx", 1 },
		{ "a*b?c*x", "abxbbxdbxebxczzy", 0 },
		{ "ab[c]", "abc", 1 },
		{ "ab[b-d]", "abc", 1 },
		{ "ab[e-g]", "abc", 0 },
		{ "ab[^c]", "abc", 0 },
		{ "ab[^b-d]", "abc", 0 },
		{ "ab[^e-g]", "abc", 1 },
		{ "a\\*b", "a*b", 1 },
		{ "a\\*b", "ab", 0 },
		{ "a?b", "a☺b", 1 },
		{ "a[^a]b", "a☺b", 1 },
		{ "a???b", "a☺b", 0 },
		{ "a[^a][^a][^a]b", "a☺b", 0 },
		{ "[a-ζ]*", "α", 1 },
		{ "*[a-ζ]", "A", 0 },
		{ "a?b", "a/b", 0 },
		{ "a*b", "a/b", 0 },
		{ "[\\]a]", "]", 1 },
		{ "[\\-]", "-", 1 },
		{ "[x\\-]", "x", 1 },
		{ "[x\\-]", "-", 1 },
		{ "[x\\-]", "z", 0 },
		{ "[\\-x]", "x", 1 },
		{ "[\\-x]", "-", 1 },
		{ "[\\-x]", "a", 0 },
		{ "[]a]", "]", -EINVAL },
		{ "[-]", "-", -EINVAL },
		{ "[x-]", "x", -EINVAL },
		{ "[x-]", "-", -EINVAL },
		{ "[x-]", "z", -EINVAL },
		{ "[-x]", "x", -EINVAL },
		{ "[-x]", "-", -EINVAL },
		{ "[-x]", "a", -EINVAL },
		{ "\\", "a", -EINVAL },
		{ "[a-b-c]", "a", -EINVAL },
		{ "[", "a", -EINVAL },
		{ "[^", "a", -EINVAL },
		{ "[^bc", "a", -EINVAL },
		{ "a[", "a", -EINVAL },
		{ "a[", "ab", -EINVAL },
		{ "a[", "x", -EINVAL },
		{ "a/b[", "x", -EINVAL },
		{ "*x", "xxx", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int got = build_go_path_match(cases[i].p, cases[i].s);
		if (got != cases[i].want)
			fail_msg("Match('%s', '%s') = %d, want %d", cases[i].p, cases[i].s, got,
				 cases[i].want);
	}
}

static void test_go_clean(void **state)
{
	static const char *const cases[][2] = {
		{ "", "." },
		{ "abc", "abc" },
		{ "abc/def", "abc/def" },
		{ "a/b/c", "a/b/c" },
		{ ".", "." },
		{ "..", ".." },
		{ "../..", "../.." },
		{ "../../abc", "../../abc" },
		{ "/abc", "/abc" },
		{ "/", "/" },
		{ "abc/", "abc" },
		{ "abc/def/", "abc/def" },
		{ "a/b/c/", "a/b/c" },
		{ "./", "." },
		{ "../", ".." },
		{ "/abc/", "/abc" },
		{ "abc//def//ghi", "abc/def/ghi" },
		{ "//abc", "/abc" },
		{ "abc//", "abc" },
		{ "abc/./def", "abc/def" },
		{ "/./abc/def", "/abc/def" },
		{ "abc/.", "abc" },
		{ "abc/def/ghi/../jkl", "abc/def/jkl" },
		{ "abc/def/../ghi/../jkl", "abc/jkl" },
		{ "abc/def/..", "abc" },
		{ "abc/def/../..", "." },
		{ "/abc/def/../..", "/" },
		{ "abc/def/../../..", ".." },
		{ "/abc/def/../../..", "/" },
		{ "abc/def/../../../ghi/jkl/../../../mno", "../../mno" },
		{ "abc/./../def", "def" },
		{ "abc//./../def", "def" },
		{ "abc/../../././../def", "../../def" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *c = build_go_path_clean(cases[i][0]);
		if (!streq(c, cases[i][1]))
			fail_msg("Clean('%s') = '%s', want '%s'", cases[i][0], c, cases[i][1]);
	}
}

static void test_wildcard_detection(void **state)
{
	assert_true(build_go_has_wildcards("*.c"));
	assert_true(build_go_has_wildcards("a/b?"));
	assert_true(build_go_has_wildcards("[ab]"));
	assert_false(build_go_has_wildcards("a\\*b"));
	assert_false(build_go_has_wildcards("plain/path"));
}

static void test_hostile_pattern_is_fast(void **state)
{
	/* Exponential for a naive backtracker; memoised here. */
	char pat[200], path[400];
	size_t n = 0;
	for (int i = 0; i < 30; i++) {
		pat[n++] = '*';
		pat[n++] = '*';
		pat[n++] = '/';
	}
	pat[n++] = 'z';
	pat[n] = '\0';
	for (int i = 0; i < 199; i++) {
		path[2 * i] = 'a';
		path[2 * i + 1] = '/';
	}
	path[398] = 'b';
	path[399] = '\0';
	char *pats[] = { (char *)"x", pat, NULL };
	struct ignore *ig = NULL;
	assert_int_equal(build_ignore_new(pats, &ig, NULL), 0);
	assert_false(build_ignore_matches(ig, path));
	build_ignore_free(ig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_cases),      cmocka_unit_test(test_exceptions_and_parents),
		cmocka_unit_test(test_read_patterns),      cmocka_unit_test(test_bad_patterns),
		cmocka_unit_test(test_go_match),           cmocka_unit_test(test_go_clean),
		cmocka_unit_test(test_wildcard_detection), cmocka_unit_test(test_hostile_pattern_is_fast),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
