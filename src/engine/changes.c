/*
 * changes.c - `docker diff` and `docker export` of a container.
 *
 * Changes come from the overlay upper dir alone, like docker's overlay2
 * driver: a whiteout (char device 0/0) is a deletion, an entry that exists in
 * a lower layer is a modification, anything else an addition. A directory
 * that is only in the upper dir because something below it changed, and
 * whose mode and owner equal the lower one's, is not reported, except as the
 * parent of an addition or deletion (docker's rule, without its mtime check). Lower layers are
 * image layers (trusted), but they are still read with fd-relative lookups
 * that never follow symlinks.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "common/fs.h"
#include "common/json.h"
#include "engine/fsops.h"

#define CHANGES_MAX_DEPTH 256
#define CHANGES_MAX       1000000

enum { KIND_MODIFY = 0, KIND_ADD = 1, KIND_DELETE = 2 };

struct changes {
	int *lowers; /* O_PATH dir fds of the lower layers, topmost first */
	size_t n_lowers;
	json_t *out;        /* path -> kind */
	const json_t *skip; /* mount destinations to leave out */
	size_t count;
};

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

/* Look rel up in the lower layers: 1 found (*ret filled), 0 absent or whited out. */
static int lower_lookup(struct changes *ch, const char *rel, struct stat *ret)
{
	for (size_t i = 0; i < ch->n_lowers; i++) {
		_cleanup_close_ int fd =
		    fs_open_in_root(ch->lowers[i], rel, O_PATH | O_NOFOLLOW, 0, FS_RESOLVE_NO_FOLLOW, NULL);
		if (fd < 0)
			continue;
		struct stat st;
		if (fstat(fd, &st) < 0 || is_whiteout(&st))
			return 0;
		*ret = st;
		return 1;
	}
	return 0;
}

/*
 * A directory copied up is "the same" when its mode and owner are: its mtime
 * and size change whenever an entry is created in it, including the mount
 * points the engine adds, which docker's init layer would hide. Additions
 * and deletions report their parent anyway.
 */
static bool same_dir(const struct stat *a, const struct stat *b)
{
	return a->st_mode == b->st_mode && a->st_uid == b->st_uid && a->st_gid == b->st_gid;
}

static void record(struct changes *ch, const char *path, int kind)
{
	json_t *old = json_object_get(ch->out, path);
	if (old && kind == KIND_MODIFY)
		return;
	json_object_set_new(ch->out, path, json_integer(kind));
}

static void record_parent(struct changes *ch, const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return;
	_cleanup_free_ char *parent = xstrndup(path, (size_t)(slash - path));
	record(ch, parent, KIND_MODIFY);
}

static bool opaque_dir(int dirfd, const char *name)
{
	char v[2];
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 && fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y';
}

static int walk(struct changes *ch, int dirfd, const char *prefix, bool hidden, unsigned depth,
		struct berth_error **err);

static int entry(struct changes *ch, int dirfd, const char *name, const char *prefix, bool hidden,
		 unsigned depth, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", prefix, name);
	if (json_object_get(ch->skip, path))
		return 0;
	if (++ch->count > CHANGES_MAX)
		return berth_error_msg(err, E2BIG, "more than %d changed paths", CHANGES_MAX);
	struct stat st, low;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : berth_error_errno(err, "stat '%s'", path);
	if (is_whiteout(&st)) {
		record(ch, path, KIND_DELETE);
		record_parent(ch, path);
		return 0;
	}
	bool opaque = S_ISDIR(st.st_mode) && opaque_dir(dirfd, name);
	bool in_lower = !hidden && lower_lookup(ch, path + 1, &low) == 1;
	if (!in_lower) {
		record(ch, path, KIND_ADD);
		record_parent(ch, path);
	} else if (!(S_ISDIR(st.st_mode) && S_ISDIR(low.st_mode) && same_dir(&st, &low) && !opaque)) {
		record(ch, path, KIND_MODIFY);
	}
	if (!S_ISDIR(st.st_mode))
		return 0;
	_cleanup_close_ int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0)
		return berth_error_errno(err, "open '%s'", path);
	return walk(ch, TAKE_FD(sub), path, hidden || opaque, depth + 1, err);
}

/* Walk the upper dir at dirfd (taken over). hidden: lower content is masked (opaque or new dir). */
static int walk(struct changes *ch, int fd, const char *prefix, bool hidden, unsigned depth,
		struct berth_error **err)
{
	if (depth >= CHANGES_MAX_DEPTH) {
		close(fd);
		return berth_error_msg(err, ELOOP, "'%s': directories nested too deeply", prefix);
	}
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return berth_error_errno(err, "open '%s'", *prefix ? prefix : "/");
	}
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
			r = entry(ch, dirfd(d), de->d_name, prefix, hidden, depth, err);
	return r;
}

/* Paths the engine mounts over (and which docker's init layer hides). */
static json_t *skip_set(const json_t *hostconfig)
{
	json_t *s = json_object();
	for (const char *const *p = engine_fsop_engine_mountpoints; *p; p++) {
		_cleanup_free_ char *abs = xasprintf("/%s", *p);
		json_object_set_new(s, abs, json_true());
	}
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(hostconfig, "Binds"), i, v) {
		const char *b = json_string_value(v);
		const char *c = b ? strchr(b, ':') : NULL;
		if (c) {
			_cleanup_free_ char *dst = xstrndup(c + 1, strcspn(c + 1, ":"));
			_cleanup_free_ char *clean = fs_path_clean(dst);
			json_object_set_new(s, clean, json_true());
		}
	}
	json_array_foreach (json_object_get(hostconfig, "Mounts"), i, v) {
		const char *t = json_string_value(json_object_get(v, "Target"));
		if (t) {
			_cleanup_free_ char *clean = fs_path_clean(t);
			json_object_set_new(s, clean, json_true());
		}
	}
	const char *k;
	json_object_foreach (json_object_get(hostconfig, "Tmpfs"), k, v) {
		_cleanup_free_ char *clean = fs_path_clean(k);
		json_object_set_new(s, clean, json_true());
	}
	return s;
}

static int compare_paths(const void *a, const void *b)
{
	return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "Path")),
		      json_string_value(json_object_get(*(json_t *const *)b, "Path")));
}

static json_t *changes_list(json_t *map)
{
	size_t n = json_object_size(map), i = 0;
	json_t **items = xcalloc(n + 1, sizeof(*items));
	const char *k;
	json_t *v;
	json_object_foreach (map, k, v)
		items[i++] = json_pack("{s:s, s:O}", "Path", k, "Kind", v);
	qsort(items, n, sizeof(*items), compare_paths);
	json_t *out = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(out, items[i]);
	free(items);
	return out;
}

static int changes_of(struct engine *e, struct fsop *op, json_t **ret, struct berth_error **err)
{
	if (!e->img->layers)
		return berth_error_msg(err, ENOTSUP, "the image store cannot list container changes");
	_cleanup_free_ char *upper = NULL;
	_cleanup_strv_ char **lowers = NULL;
	int r = e->img->layers(e->img_ctx, op->id, &upper, &lowers, err);
	if (r == -ENOENT) { /* never started: no snapshot, no changes */
		berth_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		*ret = json_array();
		return 0;
	}
	if (r < 0)
		return r;
	struct changes ch = { .out = json_object(), .skip = skip_set(op->hostconfig) };
	for (char **l = lowers; l && *l; l++) {
		int fd = open(*l, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ch.lowers = xrealloc(ch.lowers, (ch.n_lowers + 1) * sizeof(int));
		ch.lowers[ch.n_lowers++] = fd;
	}
	int ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = ufd < 0 ? berth_error_errno(err, "open upper dir '%s'", upper)
		    : walk(&ch, ufd, "", false, 0, err);
	for (size_t i = 0; i < ch.n_lowers; i++)
		close(ch.lowers[i]);
	free(ch.lowers);
	json_decref((json_t *)ch.skip);
	if (r >= 0)
		*ret = changes_list(ch.out);
	json_decref(ch.out);
	return r;
}

int engine_container_changes(struct engine *e, const char *ref, json_t **ret, struct berth_error **err)
{
	struct fsop op;
	int r = engine_fsop_begin(e, ref, false, &op, err);
	if (r >= 0)
		r = changes_of(e, &op, ret, err);
	engine_fsop_end(&op);
	return r;
}

int engine_container_export(struct engine *e, const char *ref, int out_fd, struct berth_error **err)
{
	struct fsop op;
	/* pins (mounts, or prepares for a never-started container) the tree the image store tars */
	int r = engine_fsop_begin(e, ref, true, &op, err);
	if (r >= 0 && !e->img->export)
		r = berth_error_msg(err, ENOTSUP, "the image store cannot export containers");
	if (r >= 0)
		r = e->img->export(e->img_ctx, op.id, out_fd, err);
	engine_fsop_end(&op);
	return r;
}
