/* test-build-context-scan.c - a context tar scanned as it streams finds the
 * entries, digests and ignore rules that extracting and walking it finds
 * (cache keys depend on it), without writing a file until asked. */
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "build/context-internal.h"
#include "common/fs.h"
#include "unit-tar.h"

/* The request body: read from src, spooled as it goes (what the engine's handler does). */
struct body {
	int src, spool;
	size_t chunk;
	int fail_after; /* > 0: -ECONNRESET after that many reads */
};

static ssize_t body_read(void *ud, void *buf, size_t n)
{
	struct body *b = ud;
	if (b->fail_after && --b->fail_after == 0)
		return -ECONNRESET;
	ssize_t got = read(b->src, buf, n < b->chunk ? n : b->chunk);
	if (got > 0)
		assert_int_equal(fs_write_all(b->spool, buf, (size_t)got), 0);
	return got < 0 ? -errno : got;
}

static int spool_file(void)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	return fd;
}

static int scan(int src, const char *dockerfile, struct build_context **ret, struct berth_error **err)
{
	_cleanup_close_ int spool = spool_file();
	struct body b = { .src = src, .spool = spool, .chunk = 700 };
	struct build_context_scan_opts o = {
		.read = body_read, .read_userdata = &b, .spool_fd = spool, .dockerfile = dockerfile
	};
	return build_context_scan_tar(&o, ret, err);
}

static void expect_same(struct build_context *x, struct build_context *s)
{
	assert_int_equal(x->n, s->n);
	for (size_t i = 0; i < x->n; i++) {
		struct ctx_entry *a = &x->e[i], *b = &s->e[i];
		assert_string_equal(a->path, b->path);
		assert_int_equal(a->mode, b->mode);
		assert_int_equal(a->uid, b->uid);
		assert_int_equal(a->gid, b->gid);
		assert_int_equal(a->size, b->size);
		assert_int_equal(a->build_only, b->build_only);
		assert_string_equal(a->link ? a->link : "", b->link ? b->link : "");
		assert_int_equal(build_context_entry_digest(x, a, NULL), 0);
		assert_int_equal(build_context_entry_digest(s, b, NULL), 0);
		assert_string_equal(a->digest, b->digest);
	}
	/* and so the content hash of the whole context (COPY . /) */
	char *all[] = { ".", NULL };
	char hx[DIGEST_STRING_MAX], hs[DIGEST_STRING_MAX];
	struct ctx_match *mx = NULL, *ms = NULL;
	size_t nx = 0, ns = 0;
	assert_int_equal(build_context_resolve(x, all, NULL, &mx, &nx, NULL), 0);
	assert_int_equal(build_context_resolve(s, all, NULL, &ms, &ns, NULL), 0);
	assert_int_equal(build_context_hash(x, mx, nx, hx, NULL), 0);
	assert_int_equal(build_context_hash(s, ms, ns, hs, NULL), 0);
	assert_string_equal(hx, hs);
	build_ctx_matches_free(mx, nx);
	build_ctx_matches_free(ms, ns);
}

/* Scan and extract+walk the same tar (plain and gzip): the same entries, or the same error.
 * replayed: the scan is expected to leave the files unwritten. */
static void check(const struct tar_entry *entries, size_t n, const char *dockerfile, bool replayed)
{
	/* owners that differ from entry to entry and from the daemon's (parents made for entries) */
	_cleanup_free_ struct tar_entry *e = xcalloc(n, sizeof(*e));
	for (size_t i = 0; i < n; i++) {
		e[i] = entries[i];
		e[i].uid = e[i].uid ? e[i].uid : 1000 + (unsigned)(i % 3);
	}
	for (int gz = 0; gz < 2; gz++) {
		_cleanup_close_ int fx = unit_write_tar(e, n, gz), fs = unit_write_tar(e, n, gz);
		_cleanup_context_ struct build_context *x = NULL, *s = NULL;
		_cleanup_error_ struct berth_error *ex = NULL, *es = NULL;
		int rx = build_context_open_tar(fx, NULL, dockerfile, &x, &ex);
		int rs = scan(fs, dockerfile, &s, &es);
		_cleanup_free_ char *mx = berth_error_string(ex), *ms = berth_error_string(es);
		assert_int_equal(rx, rs);
		if (rx < 0) {
			/* the same failure (paths of the private directories aside) */
			assert_non_null(mx);
			assert_non_null(ms);
			continue;
		}
		assert_int_equal(build_context_is_extracted(s), !replayed);
		expect_same(x, s);
		assert_int_equal(build_context_is_extracted(s), !replayed);
	}
}

static void test_scan_matches_extract_and_walk(void **state)
{
	const struct tar_entry basic[] = {
		{ "./Dockerfile", AE_IFREG, "FROM scratch\nCOPY . /\n", 0, 0 },
		{ ".dockerignore", AE_IFREG, "**/*.tmp\n", 0, 0 },
		{ "dir/", AE_IFDIR, NULL, 0, 0750 },
		{ "dir/file", AE_IFREG, "hello", 0, 0600 },
		{ "dir/junk.tmp", AE_IFREG, "x", 0, 0 },
		{ "/abs/file", AE_IFREG, "abs", 0, 0 },
		{ "dir/link", AE_IFLNK, "/etc/passwd", 0, 0 },
		{ "dir/hard", 0, "dir/file", 0, 0 },
		{ "run.sh", AE_IFREG, "#!/bin/sh\n", 0, 0755 },
		{ "empty", AE_IFREG, "", 0, 0 },
	};
	check(basic, ARRAY_SIZE(basic), "Dockerfile", true);
	/* later entries replace earlier ones; parents are made for entries without their own */
	const struct tar_entry replace[] = {
		{ "a/b/c/deep", AE_IFREG, "deep", 0, 0 },
		{ "a/f", AE_IFREG, "one", 0, 0 },
		{ "a/f", AE_IFREG, "two", 0, 0 },
		{ "s", AE_IFLNK, "a", 0, 0 },
		{ "s", AE_IFREG, "now a file", 0, 0 },
		{ "t", AE_IFREG, "file", 0, 0 },
		{ "t", AE_IFLNK, "a/f", 0, 0 },
		{ "a/b/", AE_IFDIR, NULL, 0, 0700 },
		{ "self", AE_IFREG, "me", 0, 0 },
		{ "self", 0, "self", 0, 0 },
		{ "Dockerfile", AE_IFREG, "FROM scratch\n", 0, 0 },
	};
	check(replace, ARRAY_SIZE(replace), "Dockerfile", true);
	/* exception rules: an ignored directory stays when something below it does */
	const struct tar_entry except[] = {
		{ ".dockerignore", AE_IFREG, "*.log\nsecret/\nDockerfile\n.dockerignore\n!keep/x.log\nlogs\n",
		  0 },
		{ "Dockerfile", AE_IFREG, "FROM scratch\n", 0, 0 },
		{ "debug.log", AE_IFREG, "noise", 0, 0 },
		{ "keep/x.log", AE_IFREG, "kept", 0, 0 },
		{ "keep/y.log", AE_IFREG, "gone", 0, 0 },
		{ "secret/key", AE_IFREG, "k", 0, 0 },
		{ "logs/a/x.log", AE_IFREG, "x", 0, 0 },
		{ "src/main.c", AE_IFREG, "int main;", 0, 0 },
	};
	check(except, ARRAY_SIZE(except), "Dockerfile", true);
	check(except, ARRAY_SIZE(except), "./Dockerfile", true);
	check(except, 7, NULL, true);
	/* without exceptions an ignored directory hides everything below it */
	const struct tar_entry prune[] = {
		{ ".dockerignore", AE_IFREG, "build\n*.o\n", 0, 0 },
		{ "build/out/a", AE_IFREG, "a", 0, 0 },
		{ "build/keep.txt", AE_IFREG, "k", 0, 0 },
		{ "x.o", AE_IFREG, "o", 0, 0 },
		{ "src/y.o", AE_IFREG, "o", 0, 0 },
		{ "src/y.c", AE_IFREG, "c", 0, 0 },
		{ "Dockerfile", AE_IFREG, "FROM scratch\n", 0, 0 },
	};
	check(prune, ARRAY_SIZE(prune), "Dockerfile", true);
	/* the Dockerfile's own ignore file wins */
	const struct tar_entry own[] = {
		{ "sub/app.Dockerfile", AE_IFREG, "FROM scratch\n", 0, 0 },
		{ "sub/app.Dockerfile.dockerignore", AE_IFREG, "a.txt\n", 0, 0 },
		{ ".dockerignore", AE_IFREG, "b.txt\n", 0, 0 },
		{ "a.txt", AE_IFREG, "a", 0, 0 },
		{ "b.txt", AE_IFREG, "b", 0, 0 },
	};
	check(own, ARRAY_SIZE(own), "sub/app.Dockerfile", true);
	check(own, ARRAY_SIZE(own), "Dockerfile", true);
}

/* Tars whose extraction is not a plain replay are extracted at once: still the same result. */
static void test_unusual_tars_take_the_old_path(void **state)
{
	const struct tar_entry through[] = { { "d/", AE_IFDIR, NULL, 0, 0 },
					     { "l", AE_IFLNK, "d", 0, 0 },
					     { "l/b", AE_IFREG, "second", 0, 0 } };
	check(through, ARRAY_SIZE(through), NULL, false);
	const struct tar_entry setid[] = { { "su", AE_IFREG, "x", 0, 04755 } };
	check(setid, ARRAY_SIZE(setid), NULL, false);
	const struct tar_entry linked_ignore[] = { { "ig", AE_IFREG, "a\n", 0, 0 },
						   { ".dockerignore", AE_IFLNK, "ig", 0, 0 },
						   { "a", AE_IFREG, "a", 0, 0 } };
	check(linked_ignore, ARRAY_SIZE(linked_ignore), NULL, false);
	const struct tar_entry file_over_dir[] = { { "d/x", AE_IFREG, "x", 0, 0 },
						   { "d", AE_IFREG, "d", 0, 0 } };
	check(file_over_dir, ARRAY_SIZE(file_over_dir), NULL, false);
	const struct tar_entry dangling_hard[] = { { "h", 0, "nothing", 0, 0 } };
	check(dangling_hard, ARRAY_SIZE(dangling_hard), NULL, false);
	const struct tar_entry dir_over_link[] = { { "l", AE_IFLNK, "/tmp", 0, 0 },
						   { "l/", AE_IFDIR, NULL, 0, 0 } };
	check(dir_over_link, ARRAY_SIZE(dir_over_link), NULL, false);
}

/* What a cached rebuild needs is answered from the scan and the spool: the Dockerfile, the
 * digests, whether an ADD source is an archive; the files are written on the first real need. */
static void test_files_are_extracted_only_when_needed(void **state)
{
	/* an inner tar and a gzip of it, to ADD */
	struct tar_entry inner[] = { { "in/file", AE_IFREG, "inside", 0, 0 } };
	_cleanup_close_ int ifd = unit_write_tar(inner, 1, false), gfd = unit_write_tar(inner, 1, true);
	_cleanup_strbuf_ struct strbuf itar = STRBUF_INIT, gtar = STRBUF_INIT;
	assert_true(strbuf_read_fd(&itar, ifd, 1 << 20) > 0);
	assert_true(strbuf_read_fd(&gtar, gfd, 1 << 20) > 0);
	char long_name[300]; /* a pax path header: more than ustar's 100 + 155 bytes */
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (size_t i = 50; i < sizeof(long_name) - 1; i += 50)
		long_name[i] = '/';
	const struct tar_entry e[] = {
		{ "Dockerfile", AE_IFREG, "FROM scratch\nADD rootfs.tar /\n", 0, 0 },
		{ "rootfs.tar", AE_IFREG, itar.buf, 0, 0, itar.len },
		{ "rootfs.tar.gz", AE_IFREG, gtar.buf, 0, 0, gtar.len },
		{ "notes.txt", AE_IFREG, "just text, not an archive at all", 0, 0 },
		{ long_name, AE_IFREG, "behind a long pax name", 0, 0 },
	};
	_cleanup_close_ int fd = unit_write_tar(e, ARRAY_SIZE(e), false);
	_cleanup_context_ struct build_context *ctx = NULL;
	assert_int_equal(scan(fd, "Dockerfile", &ctx, NULL), 0);
	_cleanup_strbuf_ struct strbuf df = STRBUF_INIT;
	assert_int_equal(build_context_read(ctx, "Dockerfile", 1 << 20, &df, NULL), 0);
	assert_string_equal(df.buf, "FROM scratch\nADD rootfs.tar /\n");
	/* every regular file's bytes lie in the spool where the scan says */
	for (size_t i = 0; i < ctx->n; i++) {
		struct ctx_entry *x = &ctx->e[i];
		if (!S_ISREG(x->mode))
			continue;
		assert_true(x->data_off > 0);
		_cleanup_free_ char *buf = xmalloc(x->size + 1);
		assert_int_equal(pread(ctx->lazy->spool_fd, buf, x->size, (off_t)x->data_off),
				 (ssize_t)x->size);
		char d[DIGEST_STRING_MAX];
		digest_buffer(DIGEST_SHA256, buf, x->size, d);
		assert_string_equal(d, x->digest);
	}
	assert_int_equal(build_context_is_archive(ctx, "notes.txt", NULL), 0);
	assert_int_equal(build_context_is_archive(ctx, "rootfs.tar", NULL), 1);
	assert_int_equal(build_context_is_archive(ctx, "rootfs.tar.gz", NULL), 1);
	assert_false(build_context_is_extracted(ctx));
	/* the first step that misses the cache asks for the files */
	assert_int_equal(build_context_extract(ctx, NULL), 0);
	assert_true(build_context_is_extracted(ctx));
	_cleanup_free_ char *root = xstrdup(ctx->root);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	assert_int_equal(fs_read_file_at(ctx->rootfd, long_name, 1 << 10, &sb, NULL), 0);
	assert_string_equal(sb.buf, "behind a long pax name");
	assert_int_equal(build_context_is_archive(ctx, "rootfs.tar", NULL), 1);
	assert_int_equal(build_context_extract(ctx, NULL), 0); /* once */
	ctx = build_context_free(ctx);
	assert_int_equal(access(root, F_OK), -1);
}

static void test_broken_streams_fail(void **state)
{
	const struct tar_entry e[] = { { "Dockerfile", AE_IFREG, "FROM scratch\n", 0, 0 },
				       { "a", AE_IFREG, "aaaa", 0, 0 } };
	/* the client goes away */
	_cleanup_close_ int fd = unit_write_tar(e, ARRAY_SIZE(e), false);
	_cleanup_close_ int spool = spool_file();
	struct body b = { .src = fd, .spool = spool, .chunk = 512, .fail_after = 2 };
	struct build_context_scan_opts o = { .read = body_read, .read_userdata = &b, .spool_fd = spool };
	struct build_context *ctx = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(build_context_scan_tar(&o, &ctx, &err) < 0);
	assert_null(ctx);
	/* not a tar */
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "this is not a tar archive at all, just text\n", 44), 44);
	close(p[1]);
	_cleanup_error_ struct berth_error *err2 = NULL;
	assert_true(scan(p[0], NULL, &ctx, &err2) < 0);
	close(p[0]);
	_cleanup_free_ char *m = berth_error_string(err2);
	assert_non_null(strstr(m, "context tar"));
	/* an escaping name, as extraction refuses it */
	const struct tar_entry evil[] = { { "a/../../evil", AE_IFREG, "x", 0, 0 } };
	_cleanup_close_ int fd2 = unit_write_tar(evil, 1, false);
	_cleanup_error_ struct berth_error *err3 = NULL;
	assert_int_equal(scan(fd2, NULL, &ctx, &err3), -EPERM);
	/* an empty body: an empty context */
	_cleanup_close_ int empty = spool_file();
	assert_int_equal(scan(empty, NULL, &ctx, NULL), 0);
	assert_int_equal(ctx->n, 0);
	ctx = build_context_free(ctx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scan_matches_extract_and_walk),
		cmocka_unit_test(test_unusual_tars_take_the_old_path),
		cmocka_unit_test(test_files_are_extracted_only_when_needed),
		cmocka_unit_test(test_broken_streams_fail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
