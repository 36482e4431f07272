/*
 * diff.c - trees to tars: `docker commit` (overlay upper dir -> layer with
 * OCI whiteouts), `docker export` (merged rootfs -> tar) and `docker import`
 * (tar -> one-layer image).
 *
 * Walking uses libarchive's disk reader (lstat, xattrs, hardlink detection via
 * the link resolver), never following symlinks. In commit mode an overlay
 * whiteout (char device 0/0) becomes an empty ".wh.<name>" file and a
 * directory with trusted.overlay.opaque=y gets a ".wh..wh..opq" entry; overlay's
 * own trusted.overlay.* xattrs are never copied into layers.
 */
#include <archive.h>
#include <archive_entry.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <fcntl.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/store.h"
#include "image/unpack.h"

#define DIFF_BUF (256u << 10)

struct tar_sink {
	struct content_writer *w; /* either a content writer ... */
	int fd;                   /* ... or an fd */
	struct berth_error *err;
};

static la_ssize_t sink_write(struct archive *a, void *ud, const void *buf, size_t len)
{
	struct tar_sink *t = ud;
	int r = t->w ? image_content_writer_write(t->w, buf, len, &t->err) : fs_write_all(t->fd, buf, len);
	if (r < 0) {
		archive_set_error(a, -r, "%s", strerror(-r)); /* "No space left on device" */
		return -1;
	}
	return (la_ssize_t)len;
}

static bool is_opaque(struct archive_entry *e)
{
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
		if (streq(name, "trusted.overlay.opaque") && size == 1 && *(const char *)value == 'y')
			return true;
	return false;
}

/* Drop trusted.overlay.* xattrs from an entry. */
static void strip_overlay_xattrs(struct archive_entry *e)
{
	struct xa {
		char *name;
		void *value;
		size_t size;
	} keep[64];
	size_t n = 0;
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && n < ARRAY_SIZE(keep)) {
		if (startswith(name, "trusted.overlay."))
			continue;
		keep[n].name = xstrdup(name);
		keep[n].value = xmalloc(size ? size : 1);
		memcpy(keep[n].value, value, size);
		keep[n++].size = size;
	}
	archive_entry_xattr_clear(e);
	for (size_t i = 0; i < n; i++) {
		archive_entry_xattr_add_entry(e, keep[i].name, keep[i].value, keep[i].size);
		free(keep[i].name);
		free(keep[i].value);
	}
}

static int write_entry(struct archive *out, struct archive_entry *e, int datafd, char *buf,
		       struct berth_error **err)
{
	if (archive_write_header(out, e) != ARCHIVE_OK)
		return berth_error_msg(err, EIO, "write tar header '%s': %s", archive_entry_pathname(e),
				       archive_error_string(out));
	if (datafd < 0 || archive_entry_size(e) <= 0)
		return 0;
	ssize_t n;
	while ((n = read(datafd, buf, DIFF_BUF)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && archive_write_data(out, buf, (size_t)n) < 0)
			return berth_error_msg(err, archive_errno(out) > 0 ? archive_errno(out) : EIO,
					       "write tar data: %s", archive_error_string(out));
	return n < 0 ? berth_error_errno(err, "read '%s'", archive_entry_pathname(e)) : 0;
}

static int add_whiteout(struct archive *out, const char *path, const char *name, struct berth_error **err)
{
	struct archive_entry *w = archive_entry_new();
	_cleanup_free_ char *p = name ? xasprintf("%s%s%s", path, *path ? "/" : "", name) : NULL;
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *wh =
	    name ? xstrdup(p)
		 : (slash ? xasprintf("%.*s/.wh.%s", (int)(slash - path), path, slash + 1)
			  : xasprintf(".wh.%s", path));
	archive_entry_set_pathname(w, wh);
	archive_entry_set_filetype(w, AE_IFREG);
	archive_entry_set_perm(w, 0644);
	archive_entry_set_size(w, 0);
	int r = write_entry(out, w, -1, NULL, err);
	archive_entry_free(w);
	return r;
}

/* Relative archive name of a disk entry under root ("" for the root itself). */
static const char *rel_name(const char *full, size_t rootlen)
{
	const char *p = full + rootlen;
	while (*p == '/')
		p++;
	return p;
}

static int emit_disk_entry(struct archive *out, struct archive_entry *e, bool commit_mode, char *buf,
			   struct berth_error **err)
{
	_cleanup_free_ char *name = xstrdup(archive_entry_pathname(e));
	mode_t type = archive_entry_filetype(e);
	if (commit_mode && type == AE_IFCHR && archive_entry_rdev(e) == makedev(0, 0))
		return add_whiteout(out, name, NULL, err);
	bool opaque = commit_mode && type == AE_IFDIR && is_opaque(e);
	strip_overlay_xattrs(e);
	archive_entry_set_uname(e, NULL);
	archive_entry_set_gname(e, NULL);
	int fd = -1;
	if (type == AE_IFREG && archive_entry_size(e) > 0 && !archive_entry_hardlink(e)) {
		fd = open(archive_entry_sourcepath(e), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return berth_error_errno(err, "open '%s'", archive_entry_sourcepath(e));
	}
	int r = write_entry(out, e, fd, buf, err);
	safe_close(fd);
	if (r >= 0 && opaque)
		r = add_whiteout(out, name, ".wh..wh..opq", err);
	return r;
}

/* Is rel one of the paths to leave out (exact match, no leading '/')? */
static bool excluded(const char *rel, const char *const *exclude)
{
	for (; exclude && *exclude; exclude++)
		if (streq(rel, *exclude))
			return true;
	return false;
}

/* Tar the tree at root into out. commit_mode converts overlay whiteouts; exclude: subtrees left out. */
static int tar_tree(const char *root, struct archive *out, bool commit_mode, const char *const *exclude,
		    struct berth_error **err)
{
	struct archive *disk = archive_read_disk_new();
	struct archive_entry_linkresolver *lr = archive_entry_linkresolver_new();
	archive_entry_linkresolver_set_strategy(lr, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);
	archive_read_disk_set_symlink_physical(disk);
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_ACL |
						 ARCHIVE_READDISK_NO_FFLAGS);
	archive_read_disk_set_standard_lookup(disk);
	_cleanup_free_ char *buf = xmalloc(DIFF_BUF);
	int r = archive_read_disk_open(disk, root) == ARCHIVE_OK
		    ? 0
		    : berth_error_msg(err, EIO, "open '%s': %s", root, archive_error_string(disk));
	size_t rootlen = strlen(root);
	struct archive_entry *e = archive_entry_new();
	while (r >= 0) {
		archive_entry_clear(e);
		int ar = archive_read_next_header2(disk, e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK && ar != ARCHIVE_WARN) {
			r = berth_error_msg(err, EIO, "walk '%s': %s", root, archive_error_string(disk));
			break;
		}
		const char *rel = rel_name(archive_entry_pathname(e), rootlen);
		if (excluded(rel, exclude))
			continue;
		archive_read_disk_descend(disk);
		if (!*rel)
			continue;
		struct archive_entry *cur = archive_entry_clone(e), *spare = NULL;
		archive_entry_set_pathname(cur, rel);
		archive_entry_linkify(lr, &cur, &spare);
		if (cur)
			r = emit_disk_entry(out, cur, commit_mode, buf, err);
		if (cur && spare && r >= 0)
			r = emit_disk_entry(out, spare, commit_mode, buf, err);
		archive_entry_free(cur);
		archive_entry_free(spare);
	}
	archive_entry_free(e);
	archive_entry_linkresolver_free(lr);
	archive_read_free(disk);
	return r;
}

static struct archive *tar_writer(struct tar_sink *sink)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	archive_write_open(a, sink, NULL, sink_write, NULL);
	return a;
}

static int close_writer(struct archive *a, struct tar_sink *sink, int r, struct berth_error **err)
{
	if (r >= 0 && archive_write_close(a) != ARCHIVE_OK) {
		if (sink->err && err) {
			berth_error_free(*err);
			*err = TAKE_PTR(sink->err);
			r = -berth_error_code(*err);
			if (r == 0)
				r = -EIO;
		} else {
			r = berth_error_msg(err, EIO, "write tar: %s", archive_error_string(a));
		}
	}
	archive_write_free(a);
	sink->err = berth_error_free(sink->err);
	return r;
}

int image_snapshot_export(struct image_store *s, const char *id, int out_fd, struct berth_error **err)
{
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	int r = image_snapshot_mount(s, id, &sn, err);
	if (r < 0)
		return r;
	struct tar_sink sink = { .fd = out_fd };
	struct archive *a = tar_writer(&sink);
	r = tar_tree(sn->rootfs, a, false, NULL, err);
	r = close_writer(a, &sink, r, err);
	return r < 0 ? berth_error_wrap(err, r, "export snapshot '%s'", id) : 0;
}

int image_snapshot_describe(struct image_store *s, const char *id, struct image_snapshot **ret,
			    struct berth_error **err)
{
	return image_store_snapshot_get(s, id, ret, err);
}

static json_t *history_entry(const char *created, const struct image_commit_opts *o, bool empty)
{
	json_t *h = json_pack("{s:s}", "created", created);
	if (o && o->author)
		json_object_set_new(h, "author", json_string(o->author));
	if (o && o->created_by)
		json_object_set_new(h, "created_by", json_string(o->created_by));
	if (o && o->comment)
		json_object_set_new(h, "comment", json_string(o->comment));
	if (empty)
		json_object_set_new(h, "empty_layer", json_true());
	return h;
}

/* The new config: the parent's (or a scratch one) with the layer, history entry and options applied. */
static int derive_config(struct image_store *s, const char *parent_id, const char *diff_id,
			 const struct image_commit_opts *o, const struct timespec *now, json_t **ret,
			 struct berth_error **err)
{
	_cleanup_json_ json_t *cfg = NULL;
	int r = parent_id ? image_get_config(s, parent_id, &cfg, err) : 0;
	if (r < 0)
		return r;
	if (!cfg)
		cfg = json_pack("{s:s, s:s, s:{}, s:{s:s, s:[]}, s:[]}", "architecture", "amd64", "os",
				"linux", "config", "rootfs", "type", "layers", "diff_ids", "history");
	char created[RFC3339_MAX];
	util_format_rfc3339(now, created);
	json_object_set_new(cfg, "created", json_string(created));
	if (o && o->config)
		json_object_set_new(cfg, "config", json_deep_copy(o->config));
	if (o && o->author)
		json_object_set_new(cfg, "author", json_string(o->author));
	/* docker's image "comment" (inspect's Comment) is the commit message; an inherited one is dropped */
	json_object_del(cfg, "comment");
	if (o && o->comment)
		json_object_set_new(cfg, "comment", json_string(o->comment));
	json_t *diffs = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
	if (!json_is_array(diffs))
		return berth_error_msg(err, EINVAL, "parent image config has no rootfs.diff_ids");
	if (diff_id)
		json_array_append_new(diffs, json_string(diff_id));
	json_t *hist = json_object_get(cfg, "history");
	if (!json_is_array(hist)) {
		hist = json_array();
		json_object_set_new(cfg, "history", hist);
	}
	json_array_append_new(hist, history_entry(created, o, !diff_id));
	*ret = TAKE_PTR(cfg);
	return 0;
}

/* Layer records of the new image: the parent's, then `blob` for the new diff_id (if any). */
static int fill_layers(struct image_store *s, const char *parent_id, const struct config_info *ci,
		       const char *blob, struct store_image *img, struct berth_error **err)
{
	struct store_image parent = { 0 };
	if (parent_id) {
		_cleanup_db_ sqlite3 *db = NULL;
		int r = image_store_db_open(s, &db, err);
		if (r < 0 || (r = image_store_image_get(db, parent_id, &parent, err)) < 0)
			return r;
	}
	img->n_layers = ci->n_diff_ids;
	img->layers = xcalloc(img->n_layers + 1, sizeof(*img->layers));
	for (size_t i = 0; i < img->n_layers; i++) {
		struct store_layer *l = &img->layers[i];
		bool inherited = i < parent.n_layers;
		snprintf(l->diff_id, sizeof(l->diff_id), "%s", ci->diff_ids[i]);
		snprintf(l->blob, sizeof(l->blob), "%s", inherited ? parent.layers[i].blob : blob);
		l->media_type = xstrdup(inherited && parent.layers[i].media_type
					    ? parent.layers[i].media_type
					    : image_store_sniff_layer_type(s, l->blob));
		image_content_has(s, l->blob, &l->blob_size);
	}
	image_store_image_done(&parent);
	return 0;
}

/* Store a new image: parent (may be NULL) + optional layer (diff_id, blob) + history; tag o->ref. */
static int build_image(struct image_store *s, const char *parent_id, const char *diff_id, const char *blob,
		       const struct image_commit_opts *o, char **ret_id, struct berth_error **err)
{
	const char *tags[2] = { NULL, NULL };
	_cleanup_free_ char *full = NULL;
	if (o && o->ref) {
		_cleanup_image_ref_ struct image_ref *ref = NULL;
		int r = image_ref_parse(o->ref, IMAGE_REF_DEFAULT_TAG | IMAGE_REF_NO_DIGEST, &ref, err);
		if (r < 0)
			return r;
		tags[0] = full = image_ref_string(ref);
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	_cleanup_json_ json_t *cfg = NULL;
	int r = derive_config(s, parent_id, diff_id, o, &now, &cfg, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *txt = json_dumps(cfg, JSON_COMPACT);
	struct store_image img = { .created = now.tv_sec };
	if (parent_id) /* docker's Parent: the image a commit (or build step) was made on */
		snprintf(img.parent, sizeof(img.parent), "%s", parent_id);
	struct config_info ci = { 0 };
	r = image_content_write_buffer(s, txt, strlen(txt), NULL, img.id, err);
	if (r >= 0)
		r = image_config_parse(txt, strlen(txt), &ci, err);
	if (r >= 0)
		r = fill_layers(s, parent_id, &ci, blob, &img, err);
	if (r >= 0)
		r = image_store_layers_unpack(s, &img, NULL, NULL, NULL, err);
	if (r >= 0)
		r = image_store_image_finish(s, &img, tags, NULL, err);
	if (r >= 0 && ret_id)
		*ret_id = xstrdup(img.id);
	image_store_image_done(&img);
	image_config_info_done(&ci);
	return r;
}

int image_commit(struct image_store *s, const char *id, const struct image_commit_opts *opts, char **ret_id,
		 struct berth_error **err)
{
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	/* describe without mounting: the upper dir is all we read */
	int r = image_store_snapshot_get(s, id, &sn, err);
	if (r < 0)
		return berth_error_wrap(err, r, "commit '%s'", id);
	if (opts && opts->empty_layer)
		return build_image(s, sn->image_id, NULL, NULL, opts, ret_id, err);
	struct content_writer w;
	r = image_content_writer_open(s, &w, err);
	if (r < 0)
		return r;
	struct tar_sink sink = { .w = &w };
	struct archive *a = tar_writer(&sink);
	r = tar_tree(sn->upperdir, a, true, opts ? opts->exclude : NULL, err);
	r = close_writer(a, &sink, r, err);
	char dg[DIGEST_STRING_MAX];
	if (r >= 0)
		r = image_content_writer_commit(&w, NULL, -1, dg, err);
	image_content_writer_done(&w);
	if (r >= 0)
		r = build_image(s, sn->image_id, dg, dg, opts, ret_id, err);
	return r < 0 ? berth_error_wrap(err, r, "commit '%s'", id) : 0;
}

int image_import(struct image_store *s, int in_fd, const char *ref, const json_t *config_json,
		 const char *message, char **ret_id, struct berth_error **err)
{
	/* Store the stream as is, then hash its uncompressed form for the diff_id. */
	struct content_writer w;
	int r = image_content_writer_open(s, &w, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = xmalloc(DIFF_BUF);
	ssize_t n;
	while (r >= 0 && (n = read(in_fd, buf, DIFF_BUF)) != 0) {
		if (n < 0)
			r = errno == EINTR ? 0 : berth_error_errno(err, "read import stream");
		else
			r = image_content_writer_write(&w, buf, (size_t)n, err);
	}
	char blob[DIGEST_STRING_MAX], diff[DIGEST_STRING_MAX];
	if (r >= 0)
		r = image_content_writer_commit(&w, NULL, -1, blob, err);
	image_content_writer_done(&w);
	if (r < 0)
		return berth_error_wrap(err, r, "import");
	_cleanup_close_ int fd = image_content_open(s, blob, err);
	struct decomp *dc = NULL;
	r = fd < 0 ? fd : image_decomp_new(fd, &dc, err);
	while (r >= 0 && (n = image_decomp_read(dc, buf, DIFF_BUF, err)) > 0)
		;
	if (r >= 0 && n < 0)
		r = (int)n;
	if (r >= 0)
		image_decomp_digest(dc, diff);
	image_decomp_free(dc);
	if (r < 0)
		return berth_error_wrap(err, r, "import");
	struct image_commit_opts o = { .ref = ref,
				       .config = config_json,
				       .comment = message ? message : "Imported from -" };
	r = build_image(s, NULL, diff, blob, &o, ret_id, err);
	return r < 0 ? berth_error_wrap(err, r, "import") : 0;
}
