/* test-build-context.c - build context: directory walk, .dockerignore,
 * context tars, COPY source resolution and content hashes. */
#include "unit.h"

#include <archive.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "build/context.h"
#include "unit-tar.h"
#include "common/fs.h"

static char *tmp;

static void put(const char *rel, const char *content, mode_t mode)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", tmp, rel);
	_cleanup_free_ char *dir = xstrdup(p);
	*strrchr(dir, '/') = '\0';
	assert_int_equal(fs_mkdir_p(dir, 0755, NULL), 0);
	assert_int_equal(fs_write_file_atomic(p, content, strlen(content), mode, NULL), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state)
{
	tmp = unit_tmpdir();
	put("Dockerfile", "FROM scratch\n", 0644);
	put(".dockerignore", "*.log\nsecret/\nDockerfile\n.dockerignore\n!keep/x.log\n", 0644);
	put("a.txt", "A", 0644);
	put("b.txt", "B", 0600);
	put("run.sh", "#!/bin/sh\n", 0755);
	put("debug.log", "noise", 0644);
	put("keep/x.log", "kept", 0644);
	put("secret/key", "k", 0600);
	put("src/main.c", "int main;", 0644);
	put("src/lib/util.c", "util", 0644);
	put("src/lib/util.h", "h", 0644);
	put("src-other/x", "x", 0644);
	_cleanup_free_ char *l = xasprintf("%s/link", tmp);
	assert_int_equal(symlink("a.txt", l), 0);
	_cleanup_free_ char *l2 = xasprintf("%s/srclink", tmp), *l3 = xasprintf("%s/src/up", tmp);
	assert_int_equal(symlink("/src/lib", l2), 0);
	assert_int_equal(symlink("../../../../a.txt", l3), 0);
	return 0;
}

static int teardown(void **state)
{
	fs_rm_rf(tmp, NULL);
	free(tmp);
	return 0;
}

static struct build_context *open_ctx(void)
{
	struct build_context *ctx = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (build_context_open_dir(tmp, "Dockerfile", &ctx, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("open context: %s", m);
	}
	return ctx;
}

static void test_walk_applies_dockerignore(void **state)
{
	_cleanup_context_ struct build_context *ctx = open_ctx();
	assert_non_null(build_context_lookup(ctx, "a.txt", true));
	assert_null(build_context_lookup(ctx, "debug.log", false));
	assert_null(build_context_lookup(ctx, "secret", false));
	assert_null(build_context_lookup(ctx, "secret/key", false));
	assert_non_null(build_context_lookup(ctx, "keep/x.log", true));
	struct ctx_entry *l = build_context_lookup(ctx, "link", true);
	assert_non_null(l);
	assert_true(S_ISLNK(l->mode));
	assert_string_equal(l->link, "a.txt");
	/* ignored build files are kept for the builder but hidden from COPY */
	struct ctx_entry *d = build_context_lookup(ctx, "Dockerfile", false);
	assert_non_null(d);
	assert_true(d->build_only);
	assert_null(build_context_lookup(ctx, "Dockerfile", true));
	assert_non_null(build_context_lookup(ctx, ".dockerignore", false));
	assert_int_equal(build_context_lookup(ctx, "b.txt", true)->mode & 07777, 0600);
	assert_int_equal(build_context_lookup(ctx, "b.txt", true)->uid, 0);
	for (size_t i = 1; i < ctx->n; i++)
		assert_true(strcmp(ctx->e[i - 1].path, ctx->e[i].path) < 0);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_int_equal(build_context_read(ctx, "Dockerfile", 1024, &sb, NULL), 0);
	assert_string_equal(sb.buf, "FROM scratch\n");
}

static size_t resolve(struct build_context *ctx, const char *const *srcs, const char *const *excl,
		      struct ctx_match **m, const char *want_err)
{
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = build_context_resolve(ctx, (char *const *)srcs, (char *const *)excl, m, &n, &err);
	_cleanup_free_ char *msg = berth_error_string(err);
	if (want_err) {
		assert_true(r < 0);
		if (!strstr(msg, want_err))
			fail_msg("error '%s' lacks '%s'", msg, want_err);
		return 0;
	}
	if (r < 0)
		fail_msg("resolve: %s", msg);
	return n;
}

static bool has(struct ctx_match *m, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (streq(m[i].path, path))
			return true;
	return false;
}

static void test_resolve_sources(void **state)
{
	_cleanup_context_ struct build_context *ctx = open_ctx();
	struct ctx_match *m = NULL;
	size_t n = resolve(ctx, (const char *[]){ "src", NULL }, NULL, &m, NULL);
	assert_int_equal(n, 6); /* src, src/lib, src/lib/util.c, src/lib/util.h, src/main.c, src/up */
	assert_string_equal(m[0].rel, "");
	assert_true(has(m, n, "src/lib/util.h"));
	assert_false(has(m, n, "src-other/x"));
	build_ctx_matches_free(m, n);
	n = resolve(ctx, (const char *[]){ "/src/lib/../main.c", "*.txt", NULL }, NULL, &m, NULL);
	assert_int_equal(n, 3);
	assert_true(has(m, n, "src/main.c") && has(m, n, "a.txt") && has(m, n, "b.txt"));
	assert_int_equal(m[2].source, 1);
	build_ctx_matches_free(m, n);
	n = resolve(ctx, (const char *[]){ "src", NULL }, (const char *[]){ "**/*.h", NULL }, &m, NULL);
	assert_int_equal(n, 5);
	assert_false(has(m, n, "src/lib/util.h"));
	build_ctx_matches_free(m, n);
	n = resolve(ctx, (const char *[]){ ".", NULL }, NULL, &m, NULL);
	assert_false(has(m, n, "Dockerfile"));
	assert_false(has(m, n, "debug.log"));
	assert_true(has(m, n, "keep/x.log"));
	build_ctx_matches_free(m, n);
	n = resolve(ctx, (const char *[]){ "s?c/*/util.?", NULL }, NULL, &m, NULL);
	assert_int_equal(n, 2);
	build_ctx_matches_free(m, n);
	resolve(ctx, (const char *[]){ "../etc/passwd", NULL }, NULL, &m,
		"forbidden path outside the build context: '../etc/passwd'");
	resolve(ctx, (const char *[]){ "a/../../x", NULL }, NULL, &m,
		"forbidden path outside the build context");
	resolve(ctx, (const char *[]){ "nope", NULL }, NULL, &m, "'nope': not found in build context");
	resolve(ctx, (const char *[]){ "*.none", NULL }, NULL, &m, "no source files were specified");
	resolve(ctx, (const char *[]){ "Dockerfile", NULL }, NULL, &m, "not found");
	resolve(ctx, (const char *[]){ "secret/key", NULL }, NULL, &m, "not found");
	resolve(ctx, (const char *[]){ "[", NULL }, NULL, &m, "syntax error in pattern");
	/* symlinks in sources are followed inside the context */
	n = resolve(ctx, (const char *[]){ "srclink/util.c", "link", "src/up", NULL }, NULL, &m, NULL);
	assert_int_equal(n, 3);
	assert_string_equal(m[0].path, "src/lib/util.c");
	assert_string_equal(m[1].path, "a.txt");
	assert_string_equal(m[2].path, "a.txt"); /* ".." stops at the context root */
	build_ctx_matches_free(m, n);
	n = resolve(ctx, (const char *[]){ "srclink", NULL }, NULL, &m, NULL);
	assert_int_equal(n, 3);
	assert_true(has(m, n, "src/lib/util.h"));
	build_ctx_matches_free(m, n);
}

static void hash_of(struct build_context *ctx, const char *src, char out[DIGEST_STRING_MAX])
{
	struct ctx_match *m = NULL;
	size_t n = resolve(ctx, (const char *[]){ src, NULL }, NULL, &m, NULL);
	assert_int_equal(build_context_hash(ctx, m, n, out, NULL), 0);
	build_ctx_matches_free(m, n);
}

static void test_content_hash(void **state)
{
	char h1[DIGEST_STRING_MAX], h2[DIGEST_STRING_MAX], h3[DIGEST_STRING_MAX], h4[DIGEST_STRING_MAX];
	{
		_cleanup_context_ struct build_context *ctx = open_ctx();
		hash_of(ctx, "src", h1);
		hash_of(ctx, "src", h2);
		assert_string_equal(h1, h2);
	}
	/* mtime does not count */
	_cleanup_free_ char *p = xasprintf("%s/src/main.c", tmp);
	struct timespec ts[2] = { { 1, 0 }, { 1, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	{
		_cleanup_context_ struct build_context *ctx = open_ctx();
		hash_of(ctx, "src", h3);
		assert_string_equal(h1, h3);
	}
	/* mode and content do */
	assert_int_equal(chmod(p, 0600), 0);
	{
		_cleanup_context_ struct build_context *ctx = open_ctx();
		hash_of(ctx, "src", h4);
		assert_string_not_equal(h1, h4);
	}
	assert_int_equal(chmod(p, 0644), 0);
	put("src/main.c", "int main2;", 0644);
	{
		_cleanup_context_ struct build_context *ctx = open_ctx();
		hash_of(ctx, "src", h4);
		assert_string_not_equal(h1, h4);
	}
	put("src/main.c", "int main;", 0644);
	{
		_cleanup_context_ struct build_context *ctx = open_ctx();
		hash_of(ctx, "src", h4);
		assert_string_equal(h1, h4);
		hash_of(ctx, "src-other", h4);
		assert_string_not_equal(h1, h4);
	}
}

static void test_tar_context(void **state)
{
	const struct tar_entry entries[] = {
		{ "./Dockerfile", AE_IFREG, "FROM scratch\nCOPY . /\n", 0 },
		{ ".dockerignore", AE_IFREG, "**/*.tmp\n", 0 },
		{ "dir/", AE_IFDIR, NULL, 0 },
		{ "dir/file", AE_IFREG, "hello", 1000 },
		{ "dir/junk.tmp", AE_IFREG, "x", 0 },
		{ "/abs/file", AE_IFREG, "abs", 0 },
		{ "dir/link", AE_IFLNK, "/etc/passwd", 0 },
		{ "dir/hard", 0, "dir/file", 0 },
	};
	for (int gz = 0; gz < 2; gz++) {
		_cleanup_close_ int fd = unit_write_tar(entries, ARRAY_SIZE(entries), gz);
		struct build_context *ctx = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (build_context_open_tar(fd, NULL, "Dockerfile", &ctx, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			fail_msg("tar: %s", m);
		}
		_cleanup_free_ char *root = xstrdup(ctx->root);
		struct ctx_entry *f = build_context_lookup(ctx, "dir/file", true);
		assert_non_null(f);
		assert_int_equal(f->uid, 1000);
		assert_int_equal(f->mode & 07777, 0640);
		assert_null(build_context_lookup(ctx, "dir/junk.tmp", false));
		assert_non_null(build_context_lookup(ctx, "abs/file", true));
		assert_string_equal(build_context_lookup(ctx, "dir/link", true)->link, "/etc/passwd");
		assert_int_equal(build_context_lookup(ctx, "dir/hard", true)->size, 5);
		ctx = build_context_free(ctx);
		assert_int_equal(access(root, F_OK), -1); /* the private extraction is removed */
	}
}

static void expect_digest(struct build_context *ctx, const char *path, const char *content, bool precomputed)
{
	struct ctx_entry *e = build_context_lookup(ctx, path, false);
	assert_non_null(e);
	if (precomputed)
		assert_true(e->digest[0]); /* taken while extracting: not read again */
	assert_int_equal(build_context_entry_digest(ctx, e, NULL), 0);
	char want[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, content, strlen(content), want);
	assert_string_equal(e->digest, want);
	assert_int_equal(e->size, strlen(content));
}

/*
 * The digests a cache key is made of are those of the files as they end up
 * in the extraction: a path written twice, a file written through a symlinked
 * directory, a hard link. On a tmpfs they are taken while extracting.
 */
static void test_tar_digests(void **state)
{
	const struct tar_entry entries[] = {
		{ "d/", AE_IFDIR, NULL, 0 },     { "d/a", AE_IFREG, "one", 0 },
		{ "d/b", AE_IFREG, "first", 0 }, { "d/a", AE_IFREG, "two", 0 },
		{ "l", AE_IFLNK, "d", 0 },       { "l/b", AE_IFREG, "second", 0 },
		{ "top", AE_IFREG, "", 0 },      { "h", 0, "d/a", 0 },
		{ "d/c", AE_IFREG, "after", 0 },
	};
	struct statfs sfs;
	bool shm = statfs("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
	for (int tmpfs = 0; tmpfs <= (shm ? 1 : 0); tmpfs++)
		for (size_t n = ARRAY_SIZE(entries) - 2; n <= ARRAY_SIZE(entries); n += 2) {
			bool hardlink = n == ARRAY_SIZE(entries);
			_cleanup_close_ int fd = unit_write_tar(entries, n, false);
			_cleanup_context_ struct build_context *ctx = NULL;
			assert_int_equal(
			    build_context_open_tar(fd, tmpfs ? "/dev/shm" : NULL, NULL, &ctx, NULL), 0);
			/* no digest survives a hard link entry: they are read when hashed */
			bool pre = tmpfs && !hardlink;
			expect_digest(ctx, "d/a", "two", pre);
			expect_digest(ctx, "d/b", "second", false); /* written through the link: a new file */
			expect_digest(ctx, "top", "", pre);
			if (hardlink) {
				expect_digest(ctx, "h", "two", false);
				expect_digest(ctx, "d/c", "after", false);
			}
		}
}

static void test_tar_escape_is_rejected(void **state)
{
	const struct tar_entry evil[] = { { "a/../../evil", AE_IFREG, "x", 0 } };
	_cleanup_close_ int fd = unit_write_tar(evil, 1, false);
	struct build_context *ctx = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_context_open_tar(fd, NULL, NULL, &ctx, &err), -EPERM);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(strstr(m, "escapes the build context"));
	assert_int_equal(access("/tmp/evil", F_OK), -1);
	/* a symlink may point anywhere, but writing through it stays inside */
	const struct tar_entry through[] = { { "l", AE_IFLNK, "/tmp", 0 },
					     { "l/berth-unit-through", AE_IFREG, "x", 0 } };
	unit_tmp_track("/tmp/berth-unit-through"); /* should it be written after all */
	_cleanup_close_ int fd2 = unit_write_tar(through, 2, false);
	_cleanup_context_ struct build_context *ctx2 = NULL;
	build_context_open_tar(fd2, NULL, NULL, &ctx2, NULL);
	assert_int_equal(access("/tmp/berth-unit-through", F_OK), -1);
}

static void test_garbage_tar(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "this is not a tar archive at all, just text\n", 44), 44);
	close(p[1]);
	struct build_context *ctx = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(build_context_open_tar(p[0], NULL, NULL, &ctx, &err) < 0);
	close(p[0]);
	assert_null(ctx);
}

static void test_dockerfile_specific_ignore_file(void **state)
{
	put("sub/app.Dockerfile", "FROM scratch\n", 0644);
	put("sub/app.Dockerfile.dockerignore", "a.txt\n", 0644);
	_cleanup_context_ struct build_context *ctx = NULL;
	assert_int_equal(build_context_open_dir(tmp, "sub/app.Dockerfile", &ctx, NULL), 0);
	assert_null(build_context_lookup(ctx, "a.txt", false));         /* from the specific file */
	assert_non_null(build_context_lookup(ctx, "debug.log", false)); /* .dockerignore is not used */
	_cleanup_free_ char *p1 = xasprintf("%s/sub", tmp);
	fs_rm_rf(p1, NULL);
}

static bool in_view(const char *view, const char *rel, mode_t type)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", view, rel);
	struct stat st;
	return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

/*
 * What a RUN --mount=type=bind of the context shows (BuildKit's filtered context): the kept
 * entries with their modes, neither an ignored file nor an ignored Dockerfile or .dockerignore.
 */
static void test_view_hides_what_dockerignore_excludes(void **state)
{
	_cleanup_free_ char *vtmp = xasprintf("%s-views", tmp);
	assert_int_equal(fs_mkdir_p(vtmp, 0700, NULL), 0);
	unit_tmp_track(vtmp);
	_cleanup_free_ char *view = NULL;
	{
		_cleanup_context_ struct build_context *ctx = open_ctx();
		const char *v = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (build_context_view(ctx, vtmp, &v, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			fail_msg("view: %s", m);
		}
		assert_string_not_equal(v, ctx->root);
		view = xstrdup(v);
		const char *again = NULL;
		assert_int_equal(build_context_view(ctx, vtmp, &again, NULL), 0);
		assert_ptr_equal(again, v); /* made once */
		assert_true(in_view(v, "a.txt", S_IFREG) && in_view(v, "keep/x.log", S_IFREG));
		assert_true(in_view(v, "src/lib/util.h", S_IFREG) && in_view(v, "link", S_IFLNK));
		assert_false(in_view(v, "debug.log", S_IFREG) || in_view(v, "secret", S_IFDIR));
		assert_false(in_view(v, "Dockerfile", S_IFREG) || in_view(v, ".dockerignore", S_IFREG));
		_cleanup_free_ char *b = xasprintf("%s/b.txt", v);
		struct stat st;
		assert_int_equal(stat(b, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0600);
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		assert_int_equal(fs_read_file_at(AT_FDCWD, b, 16, &sb, NULL), 0);
		assert_string_equal(sb.buf, "B");
	}
	assert_int_equal(access(view, F_OK), -1); /* removed with the context */
	fs_rm_rf(vtmp, NULL);

	/* a tar's private extraction: the view is beside it, its files are links to the extraction's */
	const struct tar_entry entries[] = {
		{ "Dockerfile", AE_IFREG, "FROM scratch\n", 0 },
		{ ".dockerignore", AE_IFREG, "d/*.tmp\n", 0 },
		{ "d/", AE_IFDIR, NULL, 0 },
		{ "d/f", AE_IFREG, "f", 1000 },
		{ "d/x.tmp", AE_IFREG, "x", 0 },
	};
	_cleanup_close_ int fd = unit_write_tar(entries, ARRAY_SIZE(entries), false);
	_cleanup_context_ struct build_context *ctx = NULL;
	assert_int_equal(build_context_open_tar(fd, NULL, "Dockerfile", &ctx, NULL), 0);
	const char *v = NULL;
	assert_int_equal(build_context_view(ctx, NULL, &v, NULL), 0);
	assert_true(in_view(v, "Dockerfile", S_IFREG) && in_view(v, ".dockerignore", S_IFREG));
	assert_false(in_view(v, "d/x.tmp", S_IFREG));
	_cleanup_free_ char *f = xasprintf("%s/d/f", v), *orig = xasprintf("%s/d/f", ctx->root);
	struct stat a, b;
	assert_int_equal(stat(f, &a), 0);
	assert_int_equal(stat(orig, &b), 0);
	assert_true(a.st_ino == b.st_ino && a.st_uid == 1000);

	/* nothing to filter: the root itself */
	const struct tar_entry plain[] = { { "x", AE_IFREG, "x", 0 } };
	_cleanup_close_ int fd2 = unit_write_tar(plain, 1, false);
	_cleanup_context_ struct build_context *ctx2 = NULL;
	assert_int_equal(build_context_open_tar(fd2, NULL, NULL, &ctx2, NULL), 0);
	assert_int_equal(build_context_view(ctx2, NULL, &v, NULL), 0);
	assert_string_equal(v, ctx2->root);
}

/* A view on another file system than the context (hard links fail EXDEV): its files are copies. */
static void test_view_across_file_systems_copies(void **state)
{
	struct stat tst, sst;
	if (stat(tmp, &tst) < 0 || stat("/dev/shm", &sst) < 0 || tst.st_dev == sst.st_dev ||
	    access("/dev/shm", W_OK) < 0)
		skip();
	char vtmpl[] = "/dev/shm/berth-unit-views-XXXXXX";
	assert_non_null(mkdtemp(vtmpl));
	unit_tmp_track(vtmpl);
	put("big.bin", "", 0640);
	_cleanup_free_ char *big = xasprintf("%s/big.bin", tmp);
	struct strbuf data = STRBUF_INIT;
	for (int i = 0; data.len < 200 * 1024; i++)
		strbuf_addf(&data, "line %d\n", i);
	assert_int_equal(fs_write_file_atomic(big, data.buf, data.len, 0640, NULL), 0);
	struct timespec ts[2] = { { 1000000000, 5 }, { 1200000000, 7 } };
	assert_int_equal(utimensat(AT_FDCWD, big, ts, 0), 0);
	_cleanup_error_ struct berth_error *err = NULL;
	struct build_context *ctx = open_ctx();
	const char *v = NULL;
	int r = build_context_view(ctx, vtmpl, &v, &err);
	_cleanup_free_ char *copy = r < 0 ? NULL : xasprintf("%s/big.bin", v);
	struct stat a, b;
	bool copied = r == 0 && stat(copy, &a) == 0 && stat(big, &b) == 0 && a.st_ino != b.st_ino &&
		      a.st_dev == sst.st_dev && (a.st_mode & 07777) == 0640 && a.st_size == b.st_size &&
		      a.st_mtim.tv_sec == 1200000000 && a.st_mtim.tv_nsec == 7;
	_cleanup_strbuf_ struct strbuf got = STRBUF_INIT;
	if (copied)
		copied = fs_read_file_at(AT_FDCWD, copy, 0, &got, NULL) == 0 && got.len == data.len &&
			 memcmp(got.buf, data.buf, data.len) == 0;
	bool kept = r == 0 && in_view(v, "a.txt", S_IFREG) && !in_view(v, "debug.log", S_IFREG);
	/* clean up before asserting: a failed assertion leaves nothing behind */
	ctx = build_context_free(ctx);
	fs_rm_rf(vtmpl, NULL);
	unlink(big);
	strbuf_release(&data);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("view: %s", m);
	}
	assert_true(copied);
	assert_true(kept);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_applies_dockerignore),
		cmocka_unit_test(test_resolve_sources),
		cmocka_unit_test(test_content_hash),
		cmocka_unit_test(test_tar_context),
		cmocka_unit_test(test_tar_digests),
		cmocka_unit_test(test_tar_escape_is_rejected),
		cmocka_unit_test(test_garbage_tar),
		cmocka_unit_test(test_dockerfile_specific_ignore_file),
		cmocka_unit_test(test_view_hides_what_dockerignore_excludes),
		cmocka_unit_test(test_view_across_file_systems_copies),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
