/*
 * storage.c - content-addressed blob store with per-repository links.
 *
 * Trade-off: one small file per link/tag instead of a database. Lookups on the
 * hot path (manifest GET by tag, blob HEAD) are two or three openat() calls
 * relative to a root fd, with no locks; writes are atomic renames. gc takes
 * an exclusive flock so no link is created while it sweeps.
 */
#include "registry/storage.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"

#define LINK_MAX_SIZE (64u << 10)

static int mkdir_parents_at(int dirfd, const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdirat(dirfd, buf, 0700) < 0 && errno != EEXIST)
			return negative_errno();
		*p = '/';
	}
	return 0;
}

/* openat with O_CREAT that creates missing parent directories. */
static int open_create_at(int dirfd, const char *path, int flags, mode_t mode)
{
	int fd = openat(dirfd, path, flags | O_CREAT | O_CLOEXEC, mode);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : negative_errno();
	int r = mkdir_parents_at(dirfd, path);
	if (r < 0)
		return r;
	fd = openat(dirfd, path, flags | O_CREAT | O_CLOEXEC, mode);
	return fd >= 0 ? fd : negative_errno();
}

/* temp file + rename, without fsync (storage.fsync: false) */
static int write_replace_at(int dirfd, const char *path, const void *data, size_t len,
			    struct berth_error **err)
{
	char tmp[PATH_MAX];
	uint64_t rnd;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&rnd;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%016llx", path, (unsigned long long)rnd) >= (int)sizeof(tmp))
		return berth_error_msg(err, ENAMETOOLONG, "write '%s': path too long", path);
	_cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "create '%s'", path);
	int r = fs_write_all(fd, data, len);
	if (r == 0 && renameat(dirfd, tmp, dirfd, path) < 0)
		r = negative_errno();
	if (r < 0) {
		unlinkat(dirfd, tmp, 0);
		return berth_error_set(err, -r, "write '%s'", path);
	}
	return 0;
}

static int store_write(struct registry_store *s, const char *path, const void *data, size_t len,
		       struct berth_error **err)
{
	if (s->fsync)
		return fs_write_file_atomic_at(s->rootfd, path, data, len, 0600, err);
	return write_replace_at(s->rootfd, path, data, len, err);
}

static int write_atomic_at(struct registry_store *s, const char *path, const void *data, size_t len,
			   struct berth_error **err)
{
	int r = mkdir_parents_at(s->rootfd, path);
	if (r < 0)
		return berth_error_set(err, r, "create parent of '%s'", path);
	return store_write(s, path, data, len, err);
}

int registry_store_open(const char *root, struct registry_store **ret, struct berth_error **err)
{
	int r = fs_mkdir_p(root, 0700, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "open storage root '%s'", root);
	/* private to the registry, also for stores made before it was (blobs of private repos) */
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) && fchmod(fd, st.st_mode & 0700) < 0)
		return berth_error_errno(err, "chmod storage root '%s'", root);
	static const char *const dirs[] = { "blobs", "blobs/sha256", "blobs/sha512", "repositories",
					    "uploads" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdirat(fd, dirs[i], 0700) < 0 && errno != EEXIST)
			return berth_error_errno(err, "create '%s/%s'", root, dirs[i]);
	struct registry_store *s = xcalloc(1, sizeof(*s));
	s->rootfd = TAKE_FD(fd);
	s->root = xstrdup(root);
	s->fsync = true;
	atomic_store(&s->bytes, registry_store_scan_size(s));
	*ret = s;
	return 0;
}

struct registry_store *registry_store_free(struct registry_store *s)
{
	if (!s)
		return NULL;
	safe_close(s->rootfd);
	free(s->root);
	free(s);
	return NULL;
}

int registry_store_lock(struct registry_store *s, bool exclusive, struct berth_error **err)
{
	int fd = openat(s->rootfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "open storage lock");
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno != EINTR) {
			int r = berth_error_errno(err, "lock storage");
			close(fd);
			return r;
		}
	}
	return fd;
}

/* "sha256:<hex>" -> "sha256/<hex>" */
static void digest_rel(const char *digest, char *out, size_t n)
{
	const char *colon = strchr(digest, ':');
	size_t a = colon ? (size_t)(colon - digest) : 0;
	snprintf(out, n, "%.*s/%s", (int)a, digest, colon ? colon + 1 : digest);
}

void registry_store_blob_path(const char *digest, char *out, size_t n)
{
	char rel[DIGEST_STRING_MAX + 1];
	digest_rel(digest, rel, sizeof(rel));
	snprintf(out, n, "blobs/%s", rel);
}

int registry_store_blob_open(struct registry_store *s, const char *digest, int *ret_fd, uint64_t *ret_size)
{
	char path[PATH_MAX];
	struct stat st;
	registry_store_blob_path(digest, path, sizeof(path));
	int fd = openat(s->rootfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	if (fstat(fd, &st) < 0) {
		int r = negative_errno();
		close(fd);
		return r;
	}
	*ret_fd = fd;
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

bool registry_store_blob_exists(struct registry_store *s, const char *digest, uint64_t *ret_size)
{
	char path[PATH_MAX];
	struct stat st;
	registry_store_blob_path(digest, path, sizeof(path));
	if (fstatat(s->rootfd, path, &st, 0) < 0 || !S_ISREG(st.st_mode))
		return false;
	if (ret_size)
		*ret_size = (uint64_t)st.st_size;
	return true;
}

int registry_store_blob_commit(struct registry_store *s, const char *tmp_path, const char *digest,
			       uint64_t size, struct berth_error **err)
{
	char path[PATH_MAX];
	registry_store_blob_path(digest, path, sizeof(path));
	if (faccessat(s->rootfd, path, F_OK, 0) == 0) {
		/* same content already stored: refresh its mtime so a running gc's grace period keeps it */
		utimensat(s->rootfd, path, NULL, 0);
		unlinkat(s->rootfd, tmp_path, 0);
		return 0;
	}
	if (renameat(s->rootfd, tmp_path, s->rootfd, path) < 0)
		return berth_error_errno(err, "commit blob '%s'", digest);
	*strrchr(path, '/') = '\0';
	_cleanup_close_ int dfd = s->fsync ? openat(s->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (dfd >= 0)
		fsync(dfd);
	atomic_fetch_add(&s->bytes, (int64_t)size);
	return 0;
}

static void repo_path(char *out, size_t n, const char *repo, const char *kind, const char *digest)
{
	char rel[DIGEST_STRING_MAX + 1];
	digest_rel(digest, rel, sizeof(rel));
	snprintf(out, n, "repositories/%s/%s/%s", repo, kind, rel);
}

bool registry_store_repo_has_blob(struct registry_store *s, const char *repo, const char *digest,
				  uint64_t *ret_size)
{
	char path[PATH_MAX];
	repo_path(path, sizeof(path), repo, "_layers", digest);
	if (faccessat(s->rootfd, path, F_OK, 0) < 0)
		return false;
	return registry_store_blob_exists(s, digest, ret_size);
}

int registry_store_repo_link_blob(struct registry_store *s, const char *repo, const char *digest,
				  struct berth_error **err)
{
	char path[PATH_MAX];
	repo_path(path, sizeof(path), repo, "_layers", digest);
	int fd = open_create_at(s->rootfd, path, O_WRONLY, 0600);
	if (fd < 0)
		return berth_error_set(err, fd, "link blob '%s' into '%s'", digest, repo);
	close(fd);
	return 0;
}

int registry_store_repo_unlink_blob(struct registry_store *s, const char *repo, const char *digest)
{
	char path[PATH_MAX];
	repo_path(path, sizeof(path), repo, "_layers", digest);
	return unlinkat(s->rootfd, path, 0) < 0 ? negative_errno() : 0;
}

bool registry_store_repo_exists(struct registry_store *s, const char *repo)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "repositories/%s/_manifests", repo);
	if (faccessat(s->rootfd, path, F_OK, 0) == 0)
		return true;
	snprintf(path, sizeof(path), "repositories/%s/_layers", repo);
	return faccessat(s->rootfd, path, F_OK, 0) == 0;
}

/* Read a small file relative to rootfd into buf (NUL-terminated, trailing newline stripped). */
static int read_small_at(int dirfd, const char *path, char *buf, size_t n)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	ssize_t k;
	do
		k = read(fd, buf, n - 1);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return negative_errno();
	buf[k] = '\0';
	while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == ' '))
		buf[--k] = '\0';
	return (int)k;
}

int registry_store_resolve_tag(struct registry_store *s, const char *repo, const char *tag, char *ret_digest)
{
	char path[PATH_MAX], buf[DIGEST_STRING_MAX + 2];
	snprintf(path, sizeof(path), "repositories/%s/_manifests/tags/%s", repo, tag);
	int r = read_small_at(s->rootfd, path, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (!digest_valid(buf))
		return -EBADMSG;
	memcpy(ret_digest, buf, strlen(buf) + 1);
	return 0;
}

int registry_store_tag_mtime(struct registry_store *s, const char *repo, const char *tag, time_t *ret)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "repositories/%s/_manifests/tags/%s", repo, tag);
	if (fstatat(s->rootfd, path, &st, 0) < 0)
		return negative_errno();
	*ret = st.st_mtime;
	return 0;
}

int registry_store_manifest_info(struct registry_store *s, const char *repo, const char *digest,
				 char *ret_media_type, size_t mt_size, char *ret_subject)
{
	char path[PATH_MAX], buf[512];
	repo_path(path, sizeof(path), repo, "_manifests/revisions", digest);
	int r = read_small_at(s->rootfd, path, buf, sizeof(buf));
	if (r < 0)
		return r;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	snprintf(ret_media_type, mt_size, "%s", buf);
	if (ret_subject) {
		ret_subject[0] = '\0';
		if (nl && digest_valid(nl + 1))
			memcpy(ret_subject, nl + 1, strlen(nl + 1) + 1);
	}
	return 0;
}

static void referrer_path(char *out, size_t n, const char *repo, const char *subject, const char *digest)
{
	char rel[DIGEST_STRING_MAX + 1];
	digest_rel(subject, rel, sizeof(rel));
	const char *colon = strchr(digest, ':');
	snprintf(out, n, "repositories/%s/_referrers/%s/%.*s-%s", repo, rel, (int)(colon - digest), digest,
		 colon + 1);
}

static int put_referrer(struct registry_store *s, const struct manifest_put *p, struct berth_error **err)
{
	char path[PATH_MAX];
	_cleanup_json_ json_t *d = json_pack("{s:s,s:s,s:I}", "mediaType", p->media_type, "digest", p->digest,
					     "size", (json_int_t)p->len);
	if (p->artifact_type)
		json_object_set_new(d, "artifactType", json_string(p->artifact_type));
	if (p->annotations && json_object_size(p->annotations))
		json_object_set(d, "annotations", p->annotations);
	_cleanup_free_ char *txt = json_dump_compact(d);
	referrer_path(path, sizeof(path), p->repo, p->subject, p->digest);
	return write_atomic_at(s, path, txt, strlen(txt), err);
}

/* An immutable repository refuses to move any of the tags: checked for all before anything is written. */
static int check_tags(struct registry_store *s, const struct manifest_put *p, struct berth_error **err)
{
	char cur[DIGEST_STRING_MAX + 2];
	for (const char *const *t = p->tags; p->immutable_tags && t && *t; t++)
		if (registry_store_resolve_tag(s, p->repo, *t, cur) == 0 && !streq(cur, p->digest))
			return berth_error_msg(
			    err, EEXIST,
			    "The image tag '%s' already exists in the '%s' repository and cannot be "
			    "overwritten because the repository is immutable.",
			    *t, p->repo);
	return 0;
}

static int put_tag(struct registry_store *s, const struct manifest_put *p, const char *tag,
		   struct berth_error **err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "repositories/%s/_manifests/tags/%s", p->repo, tag);
	_cleanup_free_ char *line = xasprintf("%s\n", p->digest);
	return write_atomic_at(s, path, line, strlen(line), err);
}

int registry_store_manifest_put(struct registry_store *s, const struct manifest_put *p,
				struct berth_error **err)
{
	char path[PATH_MAX];
	int r = check_tags(s, p, err);
	if (r < 0)
		return r;
	if (!registry_store_blob_exists(s, p->digest, NULL)) {
		registry_store_blob_path(p->digest, path, sizeof(path));
		r = store_write(s, path, p->data, p->len, err);
		if (r < 0)
			return r;
		atomic_fetch_add(&s->bytes, (int64_t)p->len);
	} else {
		registry_store_blob_path(p->digest, path, sizeof(path));
		utimensat(s->rootfd, path, NULL, 0);
	}
	repo_path(path, sizeof(path), p->repo, "_manifests/revisions", p->digest);
	_cleanup_free_ char *info = xasprintf("%s\n%s\n", p->media_type, p->subject ? p->subject : "");
	r = write_atomic_at(s, path, info, strlen(info), err);
	if (r < 0)
		return r;
	if (p->subject && (r = put_referrer(s, p, err)) < 0)
		return r;
	for (const char *const *t = p->tags; t && *t; t++)
		if ((r = put_tag(s, p, *t, err)) < 0)
			return r;
	return 0;
}

static int tags_pointing_at(struct registry_store *s, const char *repo, const char *digest, bool remove,
			    bool *ret_found);

int registry_store_manifest_delete(struct registry_store *s, const char *repo, const char *digest)
{
	char path[PATH_MAX], mt[256], subject[DIGEST_STRING_MAX];
	int r = registry_store_manifest_info(s, repo, digest, mt, sizeof(mt), subject);
	if (r < 0)
		return r;
	tags_pointing_at(s, repo, digest, true, NULL);
	if (subject[0]) {
		referrer_path(path, sizeof(path), repo, subject, digest);
		unlinkat(s->rootfd, path, 0);
	}
	repo_path(path, sizeof(path), repo, "_manifests/revisions", digest);
	return unlinkat(s->rootfd, path, 0) < 0 ? negative_errno() : 0;
}

int registry_store_tag_delete(struct registry_store *s, const char *repo, const char *tag)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "repositories/%s/_manifests/tags/%s", repo, tag);
	return unlinkat(s->rootfd, path, 0) < 0 ? negative_errno() : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct strv_builder {
	char **v;
	size_t n, alloc;
};

static void strv_push(struct strv_builder *b, char *s)
{
	if (b->n + 2 > b->alloc) {
		b->alloc = b->alloc ? 2 * b->alloc : 16;
		b->v = xrealloc(b->v, b->alloc * sizeof(char *));
	}
	b->v[b->n++] = s;
	b->v[b->n] = NULL;
}

static char **strv_finish(struct strv_builder *b)
{
	if (!b->v)
		return xcalloc(1, sizeof(char *));
	qsort(b->v, b->n, sizeof(char *), cmp_str);
	return b->v;
}

/* Directory entries of rootfd/path that are regular files (or any entry when any). */
static int list_dir(struct registry_store *s, const char *path, bool dirs, char ***ret)
{
	int fd = openat(s->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return negative_errno();
	}
	struct strv_builder b = { 0 };
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		bool is_dir = de->d_type == DT_DIR;
		if (dirs != is_dir || strstr(de->d_name, ".tmp"))
			continue;
		strv_push(&b, xstrdup(de->d_name));
	}
	*ret = strv_finish(&b);
	return 0;
}

int registry_store_tags_list(struct registry_store *s, const char *repo, char ***ret)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "repositories/%s/_manifests/tags", repo);
	int r = list_dir(s, path, false, ret);
	if (r == -ENOENT && registry_store_repo_exists(s, repo)) {
		*ret = xcalloc(1, sizeof(char *));
		return 0;
	}
	return r;
}

int registry_store_manifest_list(struct registry_store *s, const char *repo, char ***ret)
{
	char path[PATH_MAX];
	_cleanup_strv_ char **algos = NULL;
	struct strv_builder b = { 0 };
	snprintf(path, sizeof(path), "repositories/%s/_manifests/revisions", repo);
	if (list_dir(s, path, true, &algos) < 0) {
		*ret = strv_finish(&b);
		return 0;
	}
	for (char **a = algos; *a; a++) {
		_cleanup_strv_ char **hexes = NULL;
		snprintf(path, sizeof(path), "repositories/%s/_manifests/revisions/%s", repo, *a);
		if (list_dir(s, path, false, &hexes) < 0)
			continue;
		for (char **h = hexes; *h; h++) {
			_cleanup_free_ char *d = xasprintf("%s:%s", *a, *h);
			if (digest_valid(d))
				strv_push(&b, TAKE_PTR(d));
		}
	}
	*ret = strv_finish(&b);
	return 0;
}

static void catalog_walk(struct registry_store *s, const char *rel, struct strv_builder *b, int depth)
{
	char path[PATH_MAX];
	_cleanup_strv_ char **subs = NULL;
	if (depth > 64)
		return;
	snprintf(path, sizeof(path), "repositories%s%s", *rel ? "/" : "", rel);
	if (list_dir(s, path, true, &subs) < 0)
		return;
	for (char **d = subs; *d; d++) {
		if ((*d)[0] == '_')
			continue;
		_cleanup_free_ char *name = *rel ? xasprintf("%s/%s", rel, *d) : xstrdup(*d);
		if (registry_store_repo_exists(s, name))
			strv_push(b, xstrdup(name));
		catalog_walk(s, name, b, depth + 1);
	}
}

int registry_store_catalog(struct registry_store *s, char ***ret)
{
	struct strv_builder b = { 0 };
	catalog_walk(s, "", &b, 0);
	*ret = strv_finish(&b);
	return 0;
}

int registry_store_referrers(struct registry_store *s, const char *repo, const char *subject,
			     const char *artifact_type, json_t **ret)
{
	char dir[PATH_MAX], rel[DIGEST_STRING_MAX + 1];
	_cleanup_strv_ char **files = NULL;
	json_t *arr = json_array();
	digest_rel(subject, rel, sizeof(rel));
	snprintf(dir, sizeof(dir), "repositories/%s/_referrers/%s", repo, rel);
	if (list_dir(s, dir, false, &files) == 0) {
		for (char **f = files; *f; f++) {
			_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
			_cleanup_free_ char *p = xasprintf("%s/%s", dir, *f);
			json_t *d = NULL;
			if (fs_read_file_at(s->rootfd, p, LINK_MAX_SIZE, &sb, NULL) < 0 ||
			    json_parse(sb.buf, sb.len, p, &d, NULL) < 0)
				continue;
			const char *at = json_string_value(json_object_get(d, "artifactType"));
			if (artifact_type && !streq_ptr(at, artifact_type)) {
				json_decref(d);
				continue;
			}
			json_array_append_new(arr, d);
		}
	}
	*ret = arr;
	return 0;
}

static int tags_pointing_at(struct registry_store *s, const char *repo, const char *digest, bool remove,
			    bool *ret_found)
{
	_cleanup_strv_ char **tags = NULL;
	char cur[DIGEST_STRING_MAX + 2];
	bool found = false;
	if (registry_store_tags_list(s, repo, &tags) < 0)
		return 0;
	for (char **t = tags; *t; t++) {
		if (registry_store_resolve_tag(s, repo, *t, cur) == 0 && streq(cur, digest)) {
			found = true;
			if (remove)
				registry_store_tag_delete(s, repo, *t);
		}
	}
	if (ret_found)
		*ret_found = found;
	return 0;
}

static int64_t scan_dir_size(int dirfd)
{
	int64_t total = 0;
	_cleanup_closedir_ DIR *d = fdopendir(dirfd);
	if (!d) {
		close(dirfd);
		return 0;
	}
	struct dirent *de;
	struct stat st;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode))
			total += st.st_size;
	return total;
}

int64_t registry_store_scan_size(struct registry_store *s)
{
	int64_t total = 0;
	static const char *const algos[] = { "blobs/sha256", "blobs/sha512" };
	for (size_t i = 0; i < ARRAY_SIZE(algos); i++) {
		int fd = openat(s->rootfd, algos[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			total += scan_dir_size(fd);
	}
	return total;
}
