/*
 * layers.c - turn stored layer blobs into committed layer snapshots, and
 * record finished images.
 *
 * A layer snapshot holds only that layer's diff (overlay lowers stack them)
 * and is named by chain ID, so the same diff on a different parent is a
 * different snapshot, as in docker. It is unpacked into <root>/tmp and renamed
 * into snapshots/ when complete; a concurrent unpack of the same chain loses
 * the rename race harmlessly and discards its copy.
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "image/manifest.h"
#include "image/store.h"
#include "image/unpack.h"

void image_store_short_id(const char *digest, char out[13])
{
	const char *colon = digest ? strchr(digest, ':') : NULL;
	const char *hex = colon ? colon + 1 : (digest ? digest : "");
	snprintf(out, 13, "%s", hex);
}

struct layer_progress {
	image_progress_fn fn;
	void *userdata;
	const char *id;
	uint64_t total;
	int64_t last_ms;
};

static void on_unpack_progress(uint64_t done, void *ud)
{
	struct layer_progress *lp = ud;
	int64_t now = proc_now_ms();
	if (now - lp->last_ms < 100 && done < lp->total)
		return;
	lp->last_ms = now;
	struct image_progress p = { lp->id, "Extracting", done, lp->total };
	lp->fn(&p, lp->userdata);
}

static void emit(image_progress_fn fn, void *ud, const char *id, const char *status, uint64_t cur,
		 uint64_t total)
{
	if (!fn)
		return;
	struct image_progress p = { id, status, cur, total };
	fn(&p, ud);
}

static int unpack_one(struct image_store *s, struct store_layer *l, unpack_progress_fn fn, void *ud,
		      struct berth_error **err)
{
	_cleanup_free_ char *rnd = util_random_hex(8);
	_cleanup_free_ char *tmp = xasprintf("%s/tmp/layer-%s", s->root, rnd);
	_cleanup_free_ char *fs = xasprintf("%s/fs", tmp);
	if (mkdir(tmp, 0700) < 0 || mkdir(fs, 0755) < 0)
		return berth_error_errno(err, "create '%s'", tmp);
	_cleanup_close_ int in = image_content_open(s, l->blob, err);
	_cleanup_close_ int rootfd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = in < 0 ? in : rootfd < 0 ? berth_error_errno(err, "open '%s'", fs) : 0;
	struct unpack_result res = { 0 };
	if (r >= 0)
		r = image_unpack_layer(in, rootfd, l->diff_id, fn, ud, &res, err);
	if (r >= 0) {
		_cleanup_free_ char *dst = image_store_snapshot_dir(s, l->chain_id);
		if (rename(tmp, dst) < 0 && errno != EEXIST && errno != ENOTEMPTY)
			r = berth_error_errno(err, "rename '%s'", tmp);
		l->size = res.size;
		l->tar_size = res.tar_size;
	}
	(void)fs_rm_rf(tmp, NULL);
	if (r < 0)
		return berth_error_wrap(err, r, "unpack layer '%s'", l->blob);
	return 0;
}

static bool snapshot_present(struct image_store *s, const char *chain_id)
{
	_cleanup_free_ char *d = image_store_snapshot_dir(s, chain_id);
	_cleanup_free_ char *fs = xasprintf("%s/fs", d);
	struct stat st;
	return stat(fs, &st) == 0 && S_ISDIR(st.st_mode);
}

void image_store_image_chain_ids(struct store_image *img)
{
	const char *parent = NULL;
	for (size_t i = 0; i < img->n_layers; i++) {
		image_store_chain_id(parent, img->layers[i].diff_id, img->layers[i].chain_id);
		parent = img->layers[i].chain_id;
	}
}

int image_store_layer_ensure(struct image_store *s, sqlite3 *db, struct store_layer *l, unpack_progress_fn fn,
			     void *ud, bool *ret_unpacked, struct berth_error **err)
{
	*ret_unpacked = false;
	if (image_store_layer_get(db, l->chain_id, &l->size, &l->tar_size) &&
	    snapshot_present(s, l->chain_id))
		return 0;
	int r = unpack_one(s, l, fn, ud, err);
	if (r < 0)
		return r;
	*ret_unpacked = true;
	return image_store_layer_put(db, l->chain_id, l->diff_id, l->size, l->tar_size, err);
}

int image_store_layers_unpack(struct image_store *s, struct store_image *img, image_progress_fn progress,
			      void *userdata, const char *done_status, struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	int r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	image_store_image_chain_ids(img);
	for (size_t i = 0; i < img->n_layers; i++) {
		struct store_layer *l = &img->layers[i];
		char sid[13];
		image_store_short_id(l->blob[0] ? l->blob : l->diff_id, sid);
		struct layer_progress lp = { progress, userdata, sid, l->blob_size, 0 };
		bool unpacked = false;
		r = image_store_layer_ensure(s, db, l, progress ? on_unpack_progress : NULL, &lp, &unpacked,
					     err);
		if (r < 0)
			return r;
		if (unpacked && done_status)
			emit(progress, userdata, sid, done_status, 0, 0);
	}
	return 0;
}

static json_t *desc_json(const char *mt, const char *digest, uint64_t size)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", digest, "size", (json_int_t)size);
}

static int synthesise_manifest(struct image_store *s, struct store_image *img, struct berth_error **err)
{
	uint64_t csize = 0;
	if (!image_content_has(s, img->id, &csize))
		return berth_error_msg(err, ENOENT, "config blob '%s' missing", img->id);
	json_t *layers = json_array();
	for (size_t i = 0; i < img->n_layers; i++) {
		const struct store_layer *l = &img->layers[i];
		json_array_append_new(
		    layers, desc_json(l->media_type ? l->media_type : MT_OCI_LAYER, l->blob, l->blob_size));
	}
	_cleanup_json_ json_t *m =
	    json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType", MT_OCI_MANIFEST, "config",
		      desc_json(MT_OCI_CONFIG, img->id, csize), "layers", layers);
	_cleanup_free_ char *txt = json_dumps(m, JSON_COMPACT);
	char dg[DIGEST_STRING_MAX];
	int r = image_content_write_buffer(s, txt, strlen(txt), NULL, dg, err);
	if (r < 0)
		return r;
	img->manifest_digest = xstrdup(dg);
	free(img->manifest_media_type);
	img->manifest_media_type = xstrdup(MT_OCI_MANIFEST);
	return 0;
}

int image_store_image_finish(struct image_store *s, struct store_image *img, const char *const *tags,
			     const char *repo_digest, struct berth_error **err)
{
	int r;
	if (!img->manifest_digest && (r = synthesise_manifest(s, img, err)) < 0)
		return r;
	img->size = 0;
	for (size_t i = 0; i < img->n_layers; i++)
		img->size += img->layers[i].size;
	_cleanup_db_ sqlite3 *db = NULL;
	r = image_store_db_open(s, &db, err);
	if (r < 0)
		return r;
	r = image_store_db_begin(db, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < img->n_layers; i++)
		r = image_store_layer_put(db, img->layers[i].chain_id, img->layers[i].diff_id,
					  img->layers[i].size, img->layers[i].tar_size, err);
	if (r >= 0)
		r = image_store_image_put(db, img, err);
	for (size_t i = 0; r >= 0 && tags && tags[i]; i++)
		r = image_store_tag_put(db, tags[i], img->id, err);
	if (r >= 0 && repo_digest)
		r = image_store_digest_put(db, repo_digest, img->id, err);
	if (r < 0) {
		image_store_db_rollback(db);
		return r;
	}
	return image_store_db_commit(db, err);
}

const char *image_store_sniff_layer_type(struct image_store *s, const char *digest)
{
	_cleanup_close_ int fd = image_content_open(s, digest, NULL);
	unsigned char m[4] = { 0 };
	if (fd < 0 || read(fd, m, sizeof(m)) < 2)
		return MT_OCI_LAYER;
	if (m[0] == 0x1f && m[1] == 0x8b)
		return MT_OCI_LAYER_GZIP;
	if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
		return MT_OCI_LAYER_ZSTD;
	return MT_OCI_LAYER;
}
