/*
 * save.c - image_save(): write `docker save` or OCI layout tarballs.
 *
 * Docker format: the classic layout every docker load understands
 * (manifest.json, repositories, <config hex>.json, <diff_id hex>/layer.tar
 * with VERSION and json). layer.tar must be the *uncompressed* layer (its
 * digest is the diff_id), so compressed blobs are inflated on the fly; the
 * size for the tar header comes from the tar_size recorded at unpack time.
 * OCI format: blobs as stored, with index.json naming each image.
 */
#include <archive.h>
#include <archive_entry.h>

#include "common/json.h"
#include "image/manifest.h"
#include "image/store.h"
#include "image/unpack.h"

#define SAVE_BUF   (256u << 10)
#define SAVE_MTIME 0

struct saver {
	struct image_store *s;
	struct archive *a;
	char **written; /* entry names already in the archive */
	size_t n_written;
	char *buf;
};

static bool already(struct saver *sv, const char *name)
{
	for (size_t i = 0; i < sv->n_written; i++)
		if (streq(sv->written[i], name))
			return true;
	sv->written = xrealloc(sv->written, (sv->n_written + 2) * sizeof(char *));
	sv->written[sv->n_written++] = xstrdup(name);
	sv->written[sv->n_written] = NULL;
	return false;
}

static int archive_err(struct saver *sv, struct berth_error **err)
{
	int e = archive_errno(sv->a);
	return berth_error_msg(err, e > 0 ? e : EIO, "write archive: %s", archive_error_string(sv->a));
}

static int header(struct saver *sv, const char *name, uint64_t size, mode_t type, struct berth_error **err)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, type == AE_IFDIR ? 0 : (la_int64_t)size);
	archive_entry_set_mtime(e, SAVE_MTIME, 0);
	int r = archive_write_header(sv->a, e);
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : archive_err(sv, err);
}

static int write_data(struct saver *sv, const void *data, size_t len, struct berth_error **err)
{
	while (len > 0) {
		la_ssize_t n = archive_write_data(sv->a, data, len);
		if (n <= 0)
			return archive_err(sv, err);
		data = (const char *)data + n;
		len -= (size_t)n;
	}
	return 0;
}

static int add_buffer(struct saver *sv, const char *name, const void *data, size_t len,
		      struct berth_error **err)
{
	if (already(sv, name))
		return 0;
	int r = header(sv, name, len, AE_IFREG, err);
	return r < 0 ? r : write_data(sv, data, len, err);
}

/* Copy a blob (raw, or decompressed when inflate) as entry name of exactly size bytes. */
static int add_blob(struct saver *sv, const char *name, const char *digest, bool inflate, uint64_t size,
		    struct berth_error **err)
{
	if (already(sv, name))
		return 0;
	_cleanup_close_ int fd = image_content_open(sv->s, digest, err);
	if (fd < 0)
		return fd;
	struct decomp *dc = NULL;
	int r = inflate ? image_decomp_new(fd, &dc, err) : 0;
	if (r >= 0)
		r = header(sv, name, size, AE_IFREG, err);
	uint64_t done = 0;
	while (r >= 0) {
		ssize_t n = dc ? image_decomp_read(dc, sv->buf, SAVE_BUF, err) : read(fd, sv->buf, SAVE_BUF);
		if (n < 0 && !dc && errno == EINTR)
			continue;
		if (n < 0 && !dc)
			n = berth_error_errno(err, "read blob '%s'", digest);
		if (n <= 0) {
			r = (int)n;
			break;
		}
		if (done + (uint64_t)n > size) {
			r = berth_error_msg(err, EBADMSG, "blob '%s' is larger than recorded", digest);
			break;
		}
		done += (uint64_t)n;
		r = write_data(sv, sv->buf, (size_t)n, err);
	}
	image_decomp_free(dc);
	if (r >= 0 && done != size)
		r = berth_error_msg(err, EBADMSG, "blob '%s' is shorter than recorded", digest);
	return r;
}

/* Tag to record for `name`: the name itself if it is a tag of image id, none for IDs. */
static char *tag_for(struct image_store *s, const char *name, const char *id)
{
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	_cleanup_free_ char *full = NULL, *found = NULL;
	if (startswith(name, "sha256:") || image_ref_parse(name, IMAGE_REF_DEFAULT_TAG, &ref, NULL) < 0 ||
	    ref->digest)
		return NULL;
	full = image_ref_string(ref);
	if (image_resolve(s, full, &found, NULL) < 0 || !streq(found, id))
		return NULL;
	return image_ref_familiar(ref);
}

static int save_docker_one(struct saver *sv, const struct store_image *img, const char *tag, json_t *manifest,
			   json_t *repos, struct berth_error **err)
{
	char *hex = strchr(img->id, ':') + 1;
	_cleanup_free_ char *cfgname = xasprintf("%s.json", hex);
	uint64_t csize = 0;
	image_content_has(sv->s, img->id, &csize);
	int r = add_blob(sv, cfgname, img->id, false, csize, err);
	json_t *layers = json_array();
	const char *top = NULL;
	for (size_t i = 0; r >= 0 && i < img->n_layers; i++) {
		const struct store_layer *l = &img->layers[i];
		const char *lhex = strchr(l->chain_id, ':') + 1;
		_cleanup_free_ char *dir = xstrdup(lhex);
		_cleanup_free_ char *tarname = xasprintf("%s/layer.tar", dir);
		_cleanup_free_ char *vname = xasprintf("%s/VERSION", dir);
		_cleanup_free_ char *jname = xasprintf("%s/json", dir);
		_cleanup_free_ char *js = xasprintf("{\"id\":\"%s\"}", lhex);
		if (!already(sv, dir))
			r = header(sv, dir, 0, AE_IFDIR, err);
		if (r >= 0)
			r = add_buffer(sv, vname, "1.0", 3, err);
		if (r >= 0)
			r = add_buffer(sv, jname, js, strlen(js), err);
		if (r >= 0)
			r = add_blob(sv, tarname, l->blob, true, l->tar_size, err);
		json_array_append_new(layers, json_string(tarname));
		top = lhex;
	}
	json_t *tags = json_array();
	if (tag) {
		json_array_append_new(tags, json_string(tag));
		const char *colon = strrchr(tag, ':');
		_cleanup_free_ char *repo = xstrndup(tag, (size_t)(colon - tag));
		json_t *entry = json_object_get(repos, repo);
		if (!entry) {
			entry = json_object();
			json_object_set_new(repos, repo, entry);
		}
		json_object_set_new(entry, colon + 1, json_string(top ? top : ""));
	}
	json_array_append_new(
	    manifest, json_pack("{s:s, s:o, s:o}", "Config", cfgname, "RepoTags", tags, "Layers", layers));
	return r;
}

static int save_oci_one(struct saver *sv, const struct store_image *img, const char *tag, json_t *index,
			struct berth_error **err)
{
	uint64_t size = 0;
	if (!img->manifest_digest || !image_content_has(sv->s, img->manifest_digest, &size))
		return berth_error_msg(err, ENOENT, "manifest of image '%s' missing", img->id);
	_cleanup_free_ char *mname = xasprintf("blobs/sha256/%s", strchr(img->manifest_digest, ':') + 1);
	int r = add_blob(sv, mname, img->manifest_digest, false, size, err);
	_cleanup_free_ char *cname = xasprintf("blobs/sha256/%s", strchr(img->id, ':') + 1);
	uint64_t csize = 0;
	image_content_has(sv->s, img->id, &csize);
	if (r >= 0)
		r = add_blob(sv, cname, img->id, false, csize, err);
	for (size_t i = 0; r >= 0 && i < img->n_layers; i++) {
		const struct store_layer *l = &img->layers[i];
		_cleanup_free_ char *lname = xasprintf("blobs/sha256/%s", strchr(l->blob, ':') + 1);
		r = add_blob(sv, lname, l->blob, false, l->blob_size, err);
	}
	json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType",
			      img->manifest_media_type ? img->manifest_media_type : MT_OCI_MANIFEST, "digest",
			      img->manifest_digest, "size", (json_int_t)size);
	if (tag) {
		_cleanup_image_ref_ struct image_ref *ref = NULL;
		if (image_ref_parse(tag, IMAGE_REF_DEFAULT_TAG, &ref, NULL) == 0) {
			_cleanup_free_ char *full = image_ref_string(ref);
			json_object_set_new(d, "annotations",
					    json_pack("{s:s, s:s}", "io.containerd.image.name", full,
						      "org.opencontainers.image.ref.name", ref->tag));
		}
	}
	json_array_append_new(index, d);
	return r;
}

static int save_all(struct saver *sv, const char *const *names, enum image_archive_format format,
		    struct berth_error **err)
{
	_cleanup_db_ sqlite3 *db = NULL;
	_cleanup_json_ json_t *manifest = json_array(), *repos = json_object(), *index = json_array();
	int r = image_store_db_open(sv->s, &db, err);
	if (r >= 0 && format == IMAGE_ARCHIVE_OCI && !already(sv, "blobs"))
		r = header(sv, "blobs", 0, AE_IFDIR, err);
	if (r >= 0 && format == IMAGE_ARCHIVE_OCI && !already(sv, "blobs/sha256"))
		r = header(sv, "blobs/sha256", 0, AE_IFDIR, err);
	for (size_t i = 0; r >= 0 && names[i]; i++) {
		_cleanup_free_ char *id = NULL, *tag = NULL;
		struct store_image img = { 0 };
		r = image_resolve(sv->s, names[i], &id, err);
		if (r < 0 || (r = image_store_image_get(db, id, &img, err)) < 0)
			break;
		tag = tag_for(sv->s, names[i], id);
		if (format == IMAGE_ARCHIVE_OCI)
			r = save_oci_one(sv, &img, tag, index, err);
		else
			r = save_docker_one(sv, &img, tag, manifest, repos, err);
		image_store_image_done(&img);
	}
	if (r < 0)
		return r;
	if (format == IMAGE_ARCHIVE_OCI) {
		static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
		_cleanup_json_ json_t *idx = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType",
						       MT_OCI_INDEX, "manifests", index);
		_cleanup_free_ char *txt = json_dumps(idx, JSON_COMPACT);
		r = add_buffer(sv, "oci-layout", layout, strlen(layout), err);
		return r < 0 ? r : add_buffer(sv, "index.json", txt, strlen(txt), err);
	}
	_cleanup_free_ char *mtxt = json_dumps(manifest, JSON_COMPACT);
	_cleanup_free_ char *rtxt = json_dumps(repos, JSON_COMPACT);
	r = add_buffer(sv, "manifest.json", mtxt, strlen(mtxt), err);
	return r < 0 ? r : add_buffer(sv, "repositories", rtxt, strlen(rtxt), err);
}

int image_save(struct image_store *s, const char *const *names, enum image_archive_format format, int out_fd,
	       struct berth_error **err)
{
	if (!names || !names[0])
		return berth_error_msg(err, EINVAL, "save: no image given");
	struct saver sv = { .s = s, .a = archive_write_new(), .buf = xmalloc(SAVE_BUF) };
	archive_write_set_format_pax_restricted(sv.a);
	archive_write_set_bytes_in_last_block(sv.a, 1);
	int r = archive_write_open_fd(sv.a, out_fd) == ARCHIVE_OK ? 0 : archive_err(&sv, err);
	if (r >= 0)
		r = save_all(&sv, names, format, err);
	if (r >= 0 && archive_write_close(sv.a) != ARCHIVE_OK)
		r = archive_err(&sv, err);
	archive_write_free(sv.a);
	strv_free(sv.written);
	free(sv.buf);
	if (r < 0)
		return berth_error_wrap(err, r, "save images");
	return 0;
}
