/*
 * snapshot.c - writable overlay snapshots for containers.
 *
 * The library mounts the overlay itself and hands out a path. It uses the new
 * mount API: fsopen("overlay") and one fsconfig("lowerdir+") per layer, so the
 * one-page limit of mount(2)'s option string never caps the layer count (the
 * trade-off: kernel >= 6.8; older kernels fall back to mount(2) with the
 * joined string, which works up to roughly 4 KiB of lower paths).
 */
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "image/store.h"

#define SNAPSHOT_ID_MAX 128

static bool snapshot_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > SNAPSHOT_ID_MAX || id[0] == '.' || id[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '-'))
			return false;
	}
	return true;
}

struct image_snapshot *image_snapshot_free(struct image_snapshot *sn)
{
	if (!sn)
		return NULL;
	free(sn->id);
	free(sn->image_id);
	free(sn->rootfs);
	free(sn->upperdir);
	free(sn->workdir);
	strv_free(sn->lowerdirs);
	free(sn);
	return NULL;
}

static int mount_legacy(char *const *lowers, const char *upper, const char *work, const char *target,
			struct berth_error **err)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "lowerdir=");
	for (size_t i = 0; lowers[i]; i++)
		strbuf_addf(&sb, "%s%s", i ? ":" : "", lowers[i]);
	strbuf_addf(&sb, ",upperdir=%s,workdir=%s", upper, work);
	if (sb.len >= (size_t)sysconf(_SC_PAGESIZE)) {
		strbuf_release(&sb);
		return berth_error_msg(
		    err, E2BIG,
		    "too many layers for one overlay mount on this kernel (needs lowerdir+, 6.8)");
	}
	int r = mount("overlay", target, "overlay", 0, sb.buf);
	strbuf_release(&sb);
	if (r < 0)
		return berth_error_errno(err, "mount overlay on '%s'", target);
	return 0;
}

static int overlay_mount(char *const *lowers, const char *upper, const char *work, const char *target,
			 struct berth_error **err)
{
	_cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return mount_legacy(lowers, upper, work, target, err);
	for (size_t i = 0; lowers[i]; i++) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", lowers[i], 0) < 0) {
			if (errno == EINVAL && i == 0)
				return mount_legacy(lowers, upper, work, target, err);
			return berth_error_errno(err, "overlay lower '%s'", lowers[i]);
		}
	}
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
		return berth_error_errno(err, "overlay upper '%s'", upper);
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return berth_error_errno(err, "create overlay for '%s'", target);
	_cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return berth_error_errno(err, "fsmount overlay for '%s'", target);
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return berth_error_errno(err, "mount overlay on '%s'", target);
	return 0;
}

static bool is_mounted(const char *path)
{
	struct stat a, b;
	_cleanup_free_ char *parent = xasprintf("%s/..", path);
	if (stat(path, &a) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

/* Load a snapshot's description from the db and the layer list of its image. */
static int snapshot_describe(struct image_store *s, sqlite3 *db, const char *id, struct image_snapshot **ret,
			     struct berth_error **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_prepare(db, "SELECT image_id FROM snapshots WHERE id = ?", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_ROW)
		return berth_error_msg(err, ENOENT, "no such snapshot: '%s'", id);
	const char *img = (const char *)sqlite3_column_text(st, 0);
	_cleanup_(image_snapshot_freep) struct image_snapshot *sn = xcalloc(1, sizeof(*sn));
	_cleanup_free_ char *dir = image_store_snapshot_dir(s, id);
	sn->id = xstrdup(id);
	sn->image_id = img ? xstrdup(img) : NULL;
	sn->rootfs = xasprintf("%s/rootfs", dir);
	sn->upperdir = xasprintf("%s/fs", dir);
	sn->workdir = xasprintf("%s/work", dir);
	struct store_image si = { 0 };
	if (img) {
		r = image_store_image_get(db, img, &si, err);
		if (r < 0)
			return r;
	}
	size_t n = si.n_layers;
	sn->lowerdirs = xcalloc(n + 2, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *ld = image_store_snapshot_dir(s, si.layers[n - 1 - i].chain_id);
		sn->lowerdirs[i] = xasprintf("%s/fs", ld);
	}
	if (n == 0) /* overlay needs a lower: an empty one for scratch */
		sn->lowerdirs[0] = xasprintf("%s/empty", dir);
	image_store_image_done(&si);
	*ret = TAKE_PTR(sn);
	return 0;
}

int image_store_snapshot_get(struct image_store *s, const char *id, struct image_snapshot **ret,
			     struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	int r = image_store_db_open(s, &db, err);
	return r < 0 ? r : snapshot_describe(s, db, id, ret, err);
}

int image_snapshot_mount(struct image_store *s, const char *id, struct image_snapshot **ret,
			 struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_(image_snapshot_freep) struct image_snapshot *sn = NULL;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	r = snapshot_describe(s, db, id, &sn, err);
	if (r < 0)
		return r;
	if (!is_mounted(sn->rootfs)) {
		r = overlay_mount(sn->lowerdirs, sn->upperdir, sn->workdir, sn->rootfs, err);
		if (r < 0)
			return berth_error_wrap(err, r, "mount snapshot '%s'", id);
	}
	if (ret)
		*ret = TAKE_PTR(sn);
	return 0;
}

static int snapshot_insert(struct image_store *s, const char *id, const char *image_id,
			   struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	r = image_store_db_prepare(
	    db, "INSERT INTO snapshots (id, image_id, created) VALUES (?, ?, strftime('%s','now'))", &st,
	    err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (image_id)
		sqlite3_bind_text(st, 2, image_id, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, 2);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_CONSTRAINT)
		return berth_error_msg(err, EEXIST, "snapshot '%s' already exists", id);
	if (rc != SQLITE_DONE)
		return image_store_db_error(db, err, "record snapshot");
	return 0;
}

int image_snapshot_prepare(struct image_store *s, const char *id, const char *image,
			   struct image_snapshot **ret, struct berth_error **err)
{
	if (!snapshot_id_valid(id))
		return berth_error_msg(err, EINVAL, "invalid snapshot id '%s'", id);
	_cleanup_free_ char *image_id = NULL;
	int r = image ? image_resolve(s, image, &image_id, err) : 0;
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = image_store_snapshot_dir(s, id);
	if (mkdir(dir, 0700) < 0) {
		if (errno == EEXIST)
			return berth_error_msg(err, EEXIST, "snapshot '%s' already exists", id);
		return berth_error_errno(err, "create '%s'", dir);
	}
	static const char *const subdirs[] = { "fs", "work", "rootfs", "empty" };
	for (size_t i = 0; i < ARRAY_SIZE(subdirs); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, subdirs[i]);
		if (mkdir(p, i == 0 ? 0755 : 0700) < 0) {
			r = berth_error_errno(err, "create '%s'", p);
			(void)fs_rm_rf(dir, NULL);
			return r;
		}
	}
	r = snapshot_insert(s, id, image_id, err);
	if (r < 0) {
		if (r != -EEXIST)
			(void)fs_rm_rf(dir, NULL);
		return r;
	}
	r = image_snapshot_mount(s, id, ret, err);
	if (r < 0) {
		(void)image_snapshot_remove(s, id, NULL);
		return berth_error_wrap(err, r, "prepare snapshot '%s'", id);
	}
	return 0;
}

int image_snapshot_unmount(struct image_store *s, const char *id, struct berth_error **err)
{
	if (!snapshot_id_valid(id))
		return berth_error_msg(err, EINVAL, "invalid snapshot id '%s'", id);
	_cleanup_free_ char *dir = image_store_snapshot_dir(s, id);
	_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", dir);
	if (access(dir, F_OK) < 0)
		return berth_error_msg(err, ENOENT, "no such snapshot: '%s'", id);
	while (is_mounted(rootfs)) {
		if (umount2(rootfs, 0) < 0) {
			if (errno == EBUSY && umount2(rootfs, MNT_DETACH) == 0)
				continue;
			return berth_error_errno(err, "unmount '%s'", rootfs);
		}
	}
	return 0;
}

/*
 * The files go first, then the row: on a full disk removing the upper dir is
 * what frees the space the row's deletion needs. A crash in between leaves a
 * row without a directory, which a later removal (or the engine's sweep at
 * start) finishes.
 */
int image_snapshot_remove(struct image_store *s, const char *id, struct berth_error **err)
{
	int r = image_snapshot_unmount(s, id, err);
	if (r < 0 && r != -ENOENT)
		return r;
	bool had_dir = r >= 0;
	_cleanup_free_ char *dir = image_store_snapshot_dir(s, id);
	if (had_dir && (r = fs_rm_rf(dir, err)) < 0)
		return r;
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	r = image_store_db_prepare(db, "DELETE FROM snapshots WHERE id = ?", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE)
		return image_store_db_error(db, err, "delete snapshot");
	if (!had_dir && sqlite3_changes(db) == 0)
		return berth_error_msg(err, ENOENT, "no such snapshot: '%s'", id);
	return 0;
}

int image_snapshot_list(struct image_store *s, char ***ret, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = image_store_db_open(s, &db, err);
	if (r < 0 || (r = image_store_db_prepare(db, "SELECT id FROM snapshots", &st, err)) < 0)
		return r;
	char **ids = xcalloc(1, sizeof(char *));
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ids = xrealloc(ids, (n + 2) * sizeof(char *));
		ids[n++] = xstrdup((const char *)sqlite3_column_text(st, 0));
		ids[n] = NULL;
	}
	if (rc != SQLITE_DONE) {
		strv_free(ids);
		return image_store_db_error(db, err, "list snapshots");
	}
	*ret = ids;
	return 0;
}
