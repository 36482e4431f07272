/*
 * images.c - the built-in image store (see images.h): import a rootfs
 * tarball with libarchive's secure extraction (no "..", no absolute paths,
 * no writing through symlinks), tags in SQLite, overlay snapshots.
 */
#include <archive.h>
#include <archive_entry.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/engine.h"
#include "engine/images.h"

struct engine_images {
	char *root;
	sqlite3 *db;
};

int engine_images_new(const char *root, struct engine_images **ret, struct berth_error **err)
{
	struct engine_images *s = xcalloc(1, sizeof(*s));
	s->root = xstrdup(root);
	_cleanup_free_ char *path = xasprintf("%s/berth.db", root);
	int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
	if (rc != SQLITE_OK) {
		engine_images_free(s);
		return berth_error_msg(err, EIO, "open image database '%s': %s", path, sqlite3_errstr(rc));
	}
	sqlite3_busy_timeout(s->db, 5000);
	*ret = s;
	return 0;
}

struct engine_images *engine_images_free(struct engine_images *s)
{
	if (!s)
		return NULL;
	sqlite3_close(s->db);
	free(s->root);
	free(s);
	return NULL;
}

char *engine_image_normalize(const char *ref)
{
	const char *r = ref;
	if (startswith(r, "docker.io/library/"))
		r += 18;
	else if (startswith(r, "docker.io/"))
		r += 10;
	const char *slash = strrchr(r, '/');
	const char *colon = strrchr(slash ? slash : r, ':');
	if (strchr(r, '@') || colon)
		return xstrdup(r);
	return xasprintf("%s:latest", r);
}

static char *lookup_tag(struct engine_images *s, const char *name)
{
	sqlite3_stmt *st = NULL;
	char *id = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM tags WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			id = xstrdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	return id;
}

/* Name, full ID, or unique ID prefix -> full ID. */
static int resolve_id(struct engine_images *s, const char *name, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *norm = engine_image_normalize(name);
	char *id = lookup_tag(s, norm);
	if (id) {
		*ret = id;
		return 0;
	}
	const char *hex = startswith(name, "sha256:") ? name + 7 : name;
	size_t n = strlen(hex);
	if (n == 0 || n > 64 || strspn(hex, "0123456789abcdef") != n)
		return berth_error_msg(err, ENOENT, "No such image: %s", name);
	_cleanup_free_ char *pat = xasprintf("sha256:%s%%", hex);
	sqlite3_stmt *st = NULL;
	int count = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM images WHERE id LIKE ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (count++ == 0)
				id = xstrdup((const char *)sqlite3_column_text(st, 0));
		}
	}
	sqlite3_finalize(st);
	if (count == 1) {
		*ret = id;
		return 0;
	}
	free(id);
	if (count > 1)
		return berth_error_msg(err, ENOTUNIQ, "image ID prefix '%s' is ambiguous", name);
	return berth_error_msg(err, ENOENT, "No such image: %s", name);
}

static int load_config(struct engine_images *s, const char *id, json_t **ret, int64_t *ret_size,
		       int64_t *ret_created)
{
	sqlite3_stmt *st = NULL;
	int r = -ENOENT;
	if (sqlite3_prepare_v2(s->db, "SELECT config, size, created FROM images WHERE id = ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*ret = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
			if (ret_size)
				*ret_size = sqlite3_column_int64(st, 1);
			if (ret_created)
				*ret_created = sqlite3_column_int64(st, 2);
			r = *ret ? 0 : -EIO;
		}
	}
	sqlite3_finalize(st);
	return r;
}

static int exec_sql(struct engine_images *s, const char *sql, const char *a, const char *b, int64_t c, int64_t d)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		if (a)
			sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
		if (b)
			sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
		if (c >= 0)
			sqlite3_bind_int64(st, 3, c);
		if (d >= 0)
			sqlite3_bind_int64(st, 4, d);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Relative and without ".." components: the archive cannot name anything outside dest. */
static bool path_safe(const char *p)
{
	if (p[0] == '/')
		return false;
	for (const char *c = p; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return false;
		c += n;
		c += strspn(c, "/");
	}
	return true;
}

/* Extract the opened archive a into dest; frees a. */
static int extract(struct archive *a, const char *dest, int64_t *ret_size, struct berth_error **err)
{
	struct archive *w = archive_write_disk_new();
	archive_write_disk_set_options(w, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_OWNER |
						  ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
						  ARCHIVE_EXTRACT_SECURE_SYMLINKS);
	int r = 0;
	int64_t size = 0;
	struct archive_entry *ent;
	for (;;) {
		int rc = archive_read_next_header(a, &ent);
		if (rc == ARCHIVE_EOF)
			break;
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
			r = berth_error_msg(err, EINVAL, "read image archive: %s", archive_error_string(a));
			goto out;
		}
		const char *p = archive_entry_pathname(ent);
		const char *hl0 = archive_entry_hardlink(ent);
		if (!p || !path_safe(p) || (hl0 && !path_safe(hl0))) {
			r = berth_error_msg(err, EINVAL, "refusing archive entry '%s': absolute path or '..'",
					    p ? p : "");
			goto out;
		}
		_cleanup_free_ char *full = xasprintf("%s/%s", dest, p);
		archive_entry_set_pathname(ent, full);
		const char *hl = archive_entry_hardlink(ent);
		if (hl) {
			_cleanup_free_ char *h = xasprintf("%s/%s", dest, hl);
			archive_entry_set_hardlink(ent, h);
		}
		size += archive_entry_size(ent);
		rc = archive_write_header(w, ent);
		if (rc == ARCHIVE_OK && archive_entry_size(ent) > 0) {
			const void *buf;
			size_t len;
			la_int64_t off;
			while ((rc = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK)
				archive_write_data_block(w, buf, len, off);
			rc = rc == ARCHIVE_EOF ? ARCHIVE_OK : rc;
		}
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
			r = berth_error_msg(err, EINVAL, "extract '%s': %s", p, archive_error_string(w));
			goto out;
		}
	}
	archive_write_finish_entry(w);
	*ret_size = size;
out:
	archive_read_free(a);
	archive_write_free(w);
	return r;
}

static json_t *make_config(const json_t *cfg)
{
	struct timespec ts;
	char t[RFC3339_MAX];
	clock_gettime(CLOCK_REALTIME, &ts);
	format_rfc3339(&ts, t);
	_cleanup_free_ char *salt = random_hex(16);
	json_t *c = cfg ? json_deep_copy(cfg) : json_object();
	if (!json_object_get(c, "Env"))
		json_object_set_new(c, "Env", json_pack("[s]", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
							       "/usr/bin:/sbin:/bin"));
	return json_pack("{s:s,s:s,s:s,s:o,s:{s:s,s:[s]},s:[{s:s,s:s}]}", "architecture", "amd64", "os", "linux",
			 "created", t, "config", c, "rootfs", "type", "layers", "diff_ids", salt, "history",
			 "created", t, "comment", "Imported from -");
}

static int import_archive(struct engine_images *s, struct archive *a, const char *ref, const json_t *config,
			  char **ret_id, struct berth_error **err)
{
	_cleanup_json_ json_t *cfg = make_config(config);
	_cleanup_free_ char *doc = json_dumps(cfg, JSON_COMPACT);
	char id[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, doc, strlen(doc), id);
	_cleanup_free_ char *dir = xasprintf("%s/images/%s/rootfs", s->root, id + 7);
	int r = fs_mkdir_p(dir, 0755, err);
	if (r < 0) {
		archive_read_free(a);
		return r;
	}
	int64_t size = 0;
	r = extract(a, dir, &size, err);
	if (r < 0) {
		_cleanup_free_ char *top = xasprintf("%s/images/%s", s->root, id + 7);
		fs_rm_rf(top, NULL);
		return r;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (exec_sql(s, "INSERT OR REPLACE INTO images (id, config, created, size) VALUES (?, ?, ?, ?)", id, doc,
		     ts.tv_sec, size) < 0)
		return berth_error_msg(err, EIO, "record image: %s", sqlite3_errmsg(s->db));
	if (ref) {
		_cleanup_free_ char *norm = engine_image_normalize(ref);
		exec_sql(s, "INSERT OR REPLACE INTO tags (name, id) VALUES (?, ?)", norm, id, -1, -1);
	}
	if (ret_id)
		*ret_id = xstrdup(id);
	return 0;
}

static struct archive *reader(void)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	return a;
}

int engine_images_import(struct engine_images *s, int fd, const char *ref, const json_t *config,
			 char **ret_id, struct berth_error **err)
{
	struct archive *a = reader();
	if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK) {
		int r = berth_error_msg(err, EINVAL, "read image archive: %s", archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	return import_archive(s, a, ref, config, ret_id, err);
}

int engine_images_import_buffer(struct engine_images *s, const void *buf, size_t len, const char *ref,
				const json_t *config, char **ret_id, struct berth_error **err)
{
	struct archive *a = reader();
	if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		int r = berth_error_msg(err, EINVAL, "read image archive: %s", archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	return import_archive(s, a, ref, config, ret_id, err);
}

static json_t *tags_of(struct engine_images *s, const char *id)
{
	json_t *a = json_array();
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM tags WHERE id = ? ORDER BY name", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(a, json_string((const char *)sqlite3_column_text(st, 0)));
	}
	sqlite3_finalize(st);
	return a;
}

int engine_images_list(struct engine_images *s, json_t **ret, struct berth_error **err)
{
	json_t *list = json_array();
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT id, config, created, size FROM images ORDER BY created DESC", -1, &st,
			       NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(st, 0);
			json_t *cfg = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
			json_t *labels = json_object_get(json_object_get(cfg, "config"), "Labels");
			json_array_append_new(
				list, json_pack("{s:s,s:s,s:o,s:[],s:I,s:I,s:I,s:I,s:O,s:I}", "Id", id, "ParentId", "",
						"RepoTags", tags_of(s, id), "RepoDigests", "Created",
						(json_int_t)sqlite3_column_int64(st, 2), "Size",
						(json_int_t)sqlite3_column_int64(st, 3), "VirtualSize",
						(json_int_t)sqlite3_column_int64(st, 3), "SharedSize", (json_int_t)-1,
						"Labels", labels ? labels : json_null(), "Containers", (json_int_t)-1));
			json_decref(cfg);
		}
	}
	sqlite3_finalize(st);
	*ret = list;
	return 0;
}

int engine_images_inspect(struct engine_images *s, const char *name, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = resolve_id(s, name, &id, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *cfg = NULL;
	int64_t size = 0, created = 0;
	if (load_config(s, id, &cfg, &size, &created) < 0)
		return berth_error_msg(err, ENOENT, "No such image: %s", name);
	json_t *out = json_pack("{s:s,s:o,s:[],s:s,s:s,s:O,s:O,s:O,s:O,s:I,s:I,s:{s:s,s:{}},s:O,s:{s:s}}", "Id", id,
				"RepoTags", tags_of(s, id), "RepoDigests", "Parent", "", "Comment", "",
				"Created", json_object_get(cfg, "created"), "Config", json_object_get(cfg, "config"),
				"Architecture", json_object_get(cfg, "architecture"), "Os", json_object_get(cfg, "os"),
				"Size", (json_int_t)size, "VirtualSize", (json_int_t)size, "GraphDriver", "Name",
				"overlay2", "Data", "RootFS", json_object_get(cfg, "rootfs"), "Metadata",
				"LastTagTime", "0001-01-01T00:00:00Z");
	json_object_set_new(out, "ContainerConfig", json_deep_copy(json_object_get(cfg, "config")));
	json_object_set_new(out, "DockerVersion", json_string(""));
	json_object_set_new(out, "Author", json_string(""));
	*ret = out;
	return 0;
}

int engine_images_tag(struct engine_images *s, const char *name, const char *ref, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = resolve_id(s, name, &id, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *norm = engine_image_normalize(ref);
	if (exec_sql(s, "INSERT OR REPLACE INTO tags (name, id) VALUES (?, ?)", norm, id, -1, -1) < 0)
		return berth_error_msg(err, EIO, "tag image: %s", sqlite3_errmsg(s->db));
	return 0;
}

int engine_images_remove(struct engine_images *s, const char *name, bool force,
			 bool (*in_use)(void *ctx, const char *id), void *ctx, json_t **ret,
			 struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = resolve_id(s, name, &id, err);
	if (r < 0)
		return r;
	json_t *out = json_array();
	_cleanup_free_ char *norm = engine_image_normalize(name);
	_cleanup_free_ char *tagged = lookup_tag(s, norm);
	_cleanup_json_ json_t *tags = tags_of(s, id);
	if (tagged && (json_array_size(tags) > 1 || !force)) {
		exec_sql(s, "DELETE FROM tags WHERE name = ?", norm, NULL, -1, -1);
		json_array_append_new(out, json_pack("{s:s}", "Untagged", norm));
		json_decref(tags);
		tags = tags_of(s, id);
		if (json_array_size(tags) > 0) {
			*ret = out;
			return 0;
		}
	}
	if (in_use && in_use(ctx, id) && !force) {
		json_decref(out);
		return berth_error_msg(err, EBUSY, "conflict: unable to delete %.12s - image is being used by a "
						   "container", id + 7);
	}
	exec_sql(s, "DELETE FROM tags WHERE id = ?", id, NULL, -1, -1);
	exec_sql(s, "DELETE FROM images WHERE id = ?", id, NULL, -1, -1);
	_cleanup_free_ char *dir = xasprintf("%s/images/%s", s->root, id + 7);
	fs_rm_rf(dir, NULL);
	json_array_append_new(out, json_pack("{s:s}", "Deleted", id));
	*ret = out;
	return 0;
}

unsigned engine_images_count(struct engine_images *s)
{
	sqlite3_stmt *st = NULL;
	unsigned n = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT COUNT(*) FROM images", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = (unsigned)sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* ---- engine_image_ops ---- */

static int ops_resolve(void *ctx, const char *name, char **ret_id, json_t **ret_config, struct berth_error **err)
{
	struct engine_images *s = ctx;
	_cleanup_free_ char *id = NULL;
	int r = resolve_id(s, name, &id, err);
	if (r < 0)
		return r;
	json_t *cfg = NULL;
	if (load_config(s, id, &cfg, NULL, NULL) < 0)
		return berth_error_msg(err, ENOENT, "No such image: %s", name);
	*ret_id = TAKE_PTR(id);
	*ret_config = cfg;
	return 0;
}

static char *snap_dir(struct engine_images *s, const char *cid, const char *sub)
{
	return xasprintf("%s/containers/%s/%s", s->root, cid, sub);
}

static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	_cleanup_free_ char *parent = xasprintf("%s/..", path);
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int ops_mount(void *ctx, const char *cid, char **ret_rootfs, struct berth_error **err)
{
	struct engine_images *s = ctx;
	_cleanup_free_ char *lowerf = snap_dir(s, cid, "lower");
	_cleanup_strbuf_ struct strbuf lower = STRBUF_INIT;
	int r = fs_read_file_at(AT_FDCWD, lowerf, 4096, &lower, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *upper = snap_dir(s, cid, "upper"), *work = snap_dir(s, cid, "work"),
			   *rootfs = snap_dir(s, cid, "rootfs");
	_cleanup_free_ char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower.buf, upper, work);
	if (!is_mountpoint(rootfs) && mount("overlay", rootfs, "overlay", 0, opts) < 0)
		return berth_error_errno(err, "mount overlay on '%s'", rootfs);
	*ret_rootfs = TAKE_PTR(rootfs);
	return 0;
}

static int ops_prepare(void *ctx, const char *cid, const char *image_id, char **ret_rootfs,
		       struct berth_error **err)
{
	struct engine_images *s = ctx;
	const char *subs[] = { "upper", "work", "rootfs" };
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		_cleanup_free_ char *d = snap_dir(s, cid, subs[i]);
		int r = fs_mkdir_p(d, 0755, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *lower = xasprintf("%s/images/%s/rootfs", s->root, image_id + 7);
	_cleanup_free_ char *lowerf = snap_dir(s, cid, "lower");
	int r = fs_write_file_atomic(lowerf, lower, strlen(lower), 0644, err);
	if (r < 0)
		return r;
	return ops_mount(ctx, cid, ret_rootfs, err);
}

static int ops_unmount(void *ctx, const char *cid, struct berth_error **err)
{
	_cleanup_free_ char *rootfs = snap_dir(ctx, cid, "rootfs");
	if (umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return berth_error_errno(err, "unmount '%s'", rootfs);
	return 0;
}

static int ops_remove(void *ctx, const char *cid, struct berth_error **err)
{
	int r = ops_unmount(ctx, cid, err);
	if (r < 0)
		return r;
	const char *subs[] = { "upper", "work", "rootfs", "lower" };
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		_cleanup_free_ char *d = snap_dir(ctx, cid, subs[i]);
		fs_rm_rf(d, NULL);
	}
	return 0;
}

const struct engine_image_ops engine_images_ops = {
	.resolve = ops_resolve,
	.prepare = ops_prepare,
	.mount = ops_mount,
	.unmount = ops_unmount,
	.remove = ops_remove,
};
