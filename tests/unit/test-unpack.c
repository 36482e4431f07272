/* test-unpack.c - layer unpack: whiteouts, links, metadata, hostile entries, corrupt streams. */
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/strbuf.h"
#include "image/unpack.h"

struct ent {
	const char *name;
	mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK; 0 = hardlink */
	const char *data_or_target;
};

/* Build an uncompressed tar in memory. */
static void build_tar(const struct ent *ents, size_t n, struct strbuf *out)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	size_t cap = 1 << 20, used = 0;
	char *buf = xmalloc(cap);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, ents[i].name);
		archive_entry_set_mtime(e, 1767225600, 0);
		if (ents[i].type == 0) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, ents[i].data_or_target);
		} else {
			archive_entry_set_filetype(e, ents[i].type);
		}
		archive_entry_set_perm(e, ents[i].type == AE_IFDIR ? 0755 : 0640);
		archive_entry_set_uid(e, 1000);
		archive_entry_set_gid(e, 1001);
		if (ents[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, ents[i].data_or_target);
		size_t len =
		    ents[i].type == AE_IFREG && ents[i].data_or_target ? strlen(ents[i].data_or_target) : 0;
		archive_entry_set_size(e, (la_int64_t)len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		if (len)
			assert_int_equal(archive_write_data(a, ents[i].data_or_target, len), (la_ssize_t)len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	strbuf_add(out, buf, used);
	free(buf);
}

static int mem_fd(const void *data, size_t len)
{
	char tmpl[] = "/tmp/berth-unit-tar-XXXXXX";
	int fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	unlink(tmpl);
	assert_int_equal(fs_write_all(fd, data, len), 0);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int unpack_buf(const void *data, size_t len, const char *dir, const char *expect,
		      struct unpack_result *res, char **ret_msg)
{
	int fd = mem_fd(data, len);
	int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct berth_error *err = NULL;
	int r = image_unpack_layer(fd, root, expect, NULL, NULL, res, &err);
	if (ret_msg)
		*ret_msg = err ? berth_error_string(err) : NULL;
	berth_error_free(err);
	close(fd);
	close(root);
	return r;
}

static void test_whiteouts_links_and_metadata(void **state)
{
	char *dir = unit_tmpdir();
	const struct ent ents[] = {
		{ "./etc/", AE_IFDIR, NULL },
		{ "etc/passwd", AE_IFREG, "root:x:0:0\n" },
		{ "etc/.wh.shadow", AE_IFREG, NULL },
		{ "opq/", AE_IFDIR, NULL },
		{ "opq/.wh..wh..opq", AE_IFREG, NULL },
		{ "link", AE_IFLNK, "/etc/passwd" },
		{ "hard", 0, "etc/passwd" },
	};
	struct strbuf tar = STRBUF_INIT;
	build_tar(ents, ARRAY_SIZE(ents), &tar);
	char want[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, tar.buf, tar.len, want);
	struct unpack_result res;
	assert_int_equal(unpack_buf(tar.buf, tar.len, dir, want, &res, NULL), 0);
	assert_string_equal(res.diff_id, want);
	assert_int_equal(res.tar_size, tar.len);

	char *p = xasprintf("%s/etc/shadow", dir);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	free(p);
	p = xasprintf("%s/opq", dir);
	char v[4] = { 0 };
	assert_int_equal(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
	free(p);
	p = xasprintf("%s/etc/passwd", dir);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1001);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_mtime, 1767225600);
	assert_int_equal(st.st_nlink, 2);
	free(p);
	p = xasprintf("%s/link", dir);
	char t[64] = { 0 };
	assert_int_equal(readlink(p, t, sizeof(t) - 1), 11);
	assert_string_equal(t, "/etc/passwd");
	free(p);
	strbuf_release(&tar);
	fs_rm_rf(dir, NULL);
	free(dir);
}

static void expect_refused(const struct ent *ents, size_t n, const char *needle)
{
	char *dir = unit_tmpdir();
	struct strbuf tar = STRBUF_INIT;
	char *msg = NULL;
	build_tar(ents, n, &tar);
	assert_true(unpack_buf(tar.buf, tar.len, dir, NULL, NULL, &msg) < 0);
	if (!msg || !strstr(msg, needle))
		fail_msg("error '%s' lacks '%s'", msg ? msg : "(none)", needle);
	free(msg);
	strbuf_release(&tar);
	fs_rm_rf(dir, NULL);
	free(dir);
}

static void test_traversal_refused(void **state)
{
	const struct ent a[] = { { "../../escape", AE_IFREG, "x" } };
	expect_refused(a, 1, "escapes the layer root");
	const struct ent b[] = { { "a/../../escape", AE_IFREG, "x" } };
	expect_refused(b, 1, "escapes the layer root");
	const struct ent c[] = { { "h", 0, "../../etc/passwd" } };
	expect_refused(c, 1, "escapes the layer root");
	const struct ent d[] = { { "d/", AE_IFDIR, NULL }, { "h", 0, "d" } };
	expect_refused(d, 2, "hardlink to directory");
	const struct ent e[] = { { "x/.wh...", AE_IFREG, NULL } };
	expect_refused(e, 1, "invalid whiteout");
}

static void test_symlink_parent_is_contained(void **state)
{
	char *dir = unit_tmpdir();
	char *outside = unit_tmpdir();
	const struct ent ents[] = {
		{ "esc", AE_IFLNK, outside },
		{ "rel", AE_IFLNK, "../../../../../../../../" },
		{ "rel/inside", AE_IFREG, "y" },
	};
	struct strbuf tar = STRBUF_INIT;
	build_tar(ents, ARRAY_SIZE(ents), &tar);
	assert_int_equal(unpack_buf(tar.buf, tar.len, dir, NULL, NULL, NULL), 0);
	/* "rel" resolves to the layer root itself, so the file lands at <root>/inside */
	char *p = xasprintf("%s/inside", dir);
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	strbuf_reset(&tar);
	const struct ent bad[] = { { "esc", AE_IFLNK, outside }, { "esc/pwned", AE_IFREG, "x" } };
	build_tar(bad, ARRAY_SIZE(bad), &tar);
	char *dir2 = unit_tmpdir();
	(void)unpack_buf(tar.buf, tar.len, dir2, NULL, NULL, NULL);
	p = xasprintf("%s/pwned", outside);
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	strbuf_release(&tar);
	fs_rm_rf(dir, NULL);
	fs_rm_rf(dir2, NULL);
	fs_rm_rf(outside, NULL);
	free(dir);
	free(dir2);
	free(outside);
}

static void test_digest_mismatch_and_corruption(void **state)
{
	const struct ent ents[] = { { "f", AE_IFREG, "hello" } };
	struct strbuf tar = STRBUF_INIT;
	build_tar(ents, 1, &tar);
	char *dir = unit_tmpdir();
	char *msg = NULL;
	assert_int_equal(unpack_buf(tar.buf, tar.len, dir,
				    "sha256:0000000000000000000000000000000000000000000000000000000000000000",
				    NULL, &msg),
			 -EBADMSG);
	assert_non_null(strstr(msg, "diff_id mismatch"));
	free(msg);

	/* gzip it, then cut the stream */
	uLongf zlen = compressBound(tar.len) + 64;
	unsigned char *z = xmalloc(zlen);
	z_stream zs = { 0 };
	deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = (unsigned char *)tar.buf;
	zs.avail_in = (uInt)tar.len;
	zs.next_out = z;
	zs.avail_out = (uInt)zlen;
	assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
	size_t glen = zs.total_out;
	deflateEnd(&zs);
	char want[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, tar.buf, tar.len, want);
	char *dir2 = unit_tmpdir();
	assert_int_equal(unpack_buf(z, glen, dir2, want, NULL, NULL), 0);
	char *dir3 = unit_tmpdir();
	assert_int_equal(unpack_buf(z, glen - 6, dir3, want, NULL, &msg), -EBADMSG);
	assert_non_null(strstr(msg, "truncated"));
	free(msg);
	z[glen / 2] ^= 0xff;
	char *dir4 = unit_tmpdir();
	assert_true(unpack_buf(z, glen, dir4, want, NULL, NULL) < 0);
	free(z);
	strbuf_release(&tar);
	char *dirs[] = { dir, dir2, dir3, dir4 };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		fs_rm_rf(dirs[i], NULL);
		free(dirs[i]);
	}
}

static void test_garbage_is_not_a_tar(void **state)
{
	char *dir = unit_tmpdir();
	static const char junk[1024] = "this is not a tar file at all";
	assert_true(unpack_buf(junk, sizeof(junk), dir, NULL, NULL, NULL) < 0);
	fs_rm_rf(dir, NULL);
	free(dir);
}

/* image_extract_tar (docker cp): ".wh." names are plain files, owner override, dir/non-dir guard. */
static void test_extract_tar_options(void **state)
{
	char *dir = unit_tmpdir();
	const struct ent ents[] = { { "d", AE_IFDIR, NULL },
				    { "d/.wh.keep", AE_IFREG, "x" },
				    { "f", AE_IFREG, "y" } };
	struct strbuf tar = STRBUF_INIT;
	build_tar(ents, ARRAY_SIZE(ents), &tar);
	_cleanup_close_ int rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct image_extract_opts o = { .chown = true, .uid = 7, .gid = 8 };
	int fd = mem_fd(tar.buf, tar.len);
	assert_int_equal(image_extract_tar(fd, rootfd, &o, NULL), 0);
	close(fd);
	struct stat st;
	assert_int_equal(fstatat(rootfd, "d/.wh.keep", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
	/* a file over the directory "d" is refused with no_overwrite_dir_nondir, accepted without */
	const struct ent over[] = { { "d", AE_IFREG, "z" } };
	strbuf_reset(&tar);
	build_tar(over, 1, &tar);
	o.no_overwrite_dir_nondir = true;
	fd = mem_fd(tar.buf, tar.len);
	struct berth_error *err = NULL;
	assert_int_equal(image_extract_tar(fd, rootfd, &o, &err), -EEXIST);
	close(fd);
	_cleanup_free_ char *msg = berth_error_string(err);
	assert_non_null(strstr(msg, "cannot overwrite directory"));
	err = berth_error_free(err);
	fd = mem_fd(tar.buf, tar.len);
	assert_int_equal(image_extract_tar(fd, rootfd, NULL, NULL), 0);
	close(fd);
	assert_int_equal(fstatat(rootfd, "d", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_uid, 1000); /* no override: the tar's owner */
	strbuf_release(&tar);
	fs_rm_rf(dir, NULL);
	free(dir);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr,
			"test-unpack: needs root (chown, whiteout devices, trusted xattrs), skipping\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whiteouts_links_and_metadata),
		cmocka_unit_test(test_traversal_refused),
		cmocka_unit_test(test_symlink_parent_is_contained),
		cmocka_unit_test(test_digest_mismatch_and_corruption),
		cmocka_unit_test(test_garbage_is_not_a_tar),
		cmocka_unit_test(test_extract_tar_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
