/*
 * content.c - the content-addressed blob store.
 *
 * Writers stream into a private temp file and hash as they go; nothing is
 * visible under blobs/ until the digest (and size) matched and the data is on
 * disk. Two writers of the same blob race harmlessly: both verify, the second
 * rename replaces identical bytes.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/util.h"
#include "image/store.h"

int image_content_path(struct image_store *s, const char *digest, char **ret, struct berth_error **err)
{
	enum digest_algo algo;
	const char *hex;
	int r = digest_parse(digest, &algo, &hex, err);
	if (r < 0)
		return r;
	*ret = xasprintf("%s/content/blobs/%s/%s", s->root, digest_algo_name(algo), hex);
	return 0;
}

int image_content_has(struct image_store *s, const char *digest, uint64_t *ret_size)
{
	_cleanup_free_ char *p = NULL;
	struct stat st;
	if (image_content_path(s, digest, &p, NULL) < 0)
		return 0;
	if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (ret_size)
		*ret_size = (uint64_t)st.st_size;
	return 1;
}

int image_content_open(struct image_store *s, const char *digest, struct berth_error **err)
{
	_cleanup_free_ char *p = NULL;
	int r = image_content_path(s, digest, &p, err);
	if (r < 0)
		return r;
	int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return berth_error_msg(err, ENOENT, "blob '%s' not found", digest);
		return berth_error_errno(err, "open blob '%s'", digest);
	}
	return fd;
}

int image_content_read(struct image_store *s, const char *digest, size_t max, struct strbuf *sb,
		       struct berth_error **err)
{
	_cleanup_close_ int fd = image_content_open(s, digest, err);
	if (fd < 0)
		return fd;
	ssize_t n = strbuf_read_fd(sb, fd, max);
	if (n == -EFBIG)
		return berth_error_msg(err, EFBIG, "blob '%s' is larger than %zu bytes", digest, max);
	if (n < 0)
		return berth_error_set(err, (int)n, "read blob '%s'", digest);
	return 0;
}

int image_content_delete(struct image_store *s, const char *digest)
{
	_cleanup_free_ char *p = NULL;
	if (image_content_path(s, digest, &p, NULL) < 0)
		return -EINVAL;
	if (unlink(p) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int image_content_writer_open(struct image_store *s, struct content_writer *w, struct berth_error **err)
{
	_cleanup_free_ char *rnd = util_random_hex(12);
	_cleanup_free_ char *path = xasprintf("%s/content/ingest/%s", s->root, rnd);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", path);
	*w = (struct content_writer){
		.store = s,
		.fd = fd,
		.tmp_path = TAKE_PTR(path),
		.d = digester_new(DIGEST_SHA256),
	};
	return 0;
}

int image_content_writer_write(struct content_writer *w, const void *data, size_t len,
			       struct berth_error **err)
{
	int r = fs_write_all(w->fd, data, len);
	if (r < 0)
		return berth_error_set(err, r, "write '%s'", w->tmp_path);
	digester_update(w->d, data, len);
	w->size += len;
	return 0;
}

static int fsync_dir(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

int image_content_writer_commit(struct content_writer *w, const char *expected, int64_t expected_size,
				char ret_digest[DIGEST_STRING_MAX], struct berth_error **err)
{
	char got[DIGEST_STRING_MAX];
	digester_final(w->d, got);
	if (expected_size >= 0 && (uint64_t)expected_size != w->size)
		return berth_error_msg(err, EBADMSG, "size mismatch for '%s': expected %lld bytes, got %llu",
				       expected ? expected : got, (long long)expected_size,
				       (unsigned long long)w->size);
	if (expected && !streq(expected, got))
		return berth_error_msg(err, EBADMSG, "digest mismatch: expected '%s', got '%s'", expected,
				       got);
	if (fsync(w->fd) < 0)
		return berth_error_errno(err, "fsync '%s'", w->tmp_path);
	_cleanup_free_ char *dst = NULL;
	int r = image_content_path(w->store, got, &dst, err);
	if (r < 0)
		return r;
	w->existed = access(dst, F_OK) == 0;
	if (rename(w->tmp_path, dst) < 0)
		return berth_error_errno(err, "rename '%s'", w->tmp_path);
	free(w->tmp_path);
	w->tmp_path = NULL;
	_cleanup_free_ char *dir = xasprintf("%s/content/blobs/sha256", w->store->root);
	(void)fsync_dir(dir);
	if (ret_digest)
		memcpy(ret_digest, got, DIGEST_STRING_MAX);
	return 0;
}

void image_content_writer_done(struct content_writer *w)
{
	w->fd = safe_close(w->fd);
	if (w->tmp_path)
		(void)unlink(w->tmp_path);
	free(w->tmp_path);
	w->tmp_path = NULL;
	w->d = digester_free(w->d);
}

int image_content_write_buffer(struct image_store *s, const void *data, size_t len, const char *expected,
			       char ret_digest[DIGEST_STRING_MAX], struct berth_error **err)
{
	if (expected && image_content_has(s, expected, NULL)) {
		char got[DIGEST_STRING_MAX];
		digest_buffer(DIGEST_SHA256, data, len, got);
		if (!streq(got, expected))
			return berth_error_msg(err, EBADMSG, "digest mismatch: expected '%s', got '%s'",
					       expected, got);
		if (ret_digest)
			memcpy(ret_digest, got, DIGEST_STRING_MAX);
		return 0;
	}
	struct content_writer w;
	int r = image_content_writer_open(s, &w, err);
	if (r < 0)
		return r;
	r = image_content_writer_write(&w, data, len, err);
	if (r >= 0)
		r = image_content_writer_commit(&w, expected, (int64_t)len, ret_digest, err);
	image_content_writer_done(&w);
	return r;
}
