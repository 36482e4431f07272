/*
 * load.c - image_load(): `docker save` tarballs and OCI image layout tarballs.
 *
 * The archive is read once, sequentially (it may be a pipe): every regular
 * file is streamed straight into the content store, which gives us its digest
 * for free, and we remember name -> digest. Then manifest.json (docker) or
 * index.json (OCI) is interpreted from the stored blobs. OCI blobs are looked
 * up by digest, so a file whose content does not match its name is simply
 * "missing". Blobs written for files no image refers to are deleted at the end.
 */
#include <archive.h>
#include <archive_entry.h>

#include "common/json.h"
#include "image/manifest.h"
#include "image/store.h"
#include "image/unpack.h"

#define LOAD_MAX_FILES  100000
#define LOAD_MAX_IMAGES 1000

struct load_file {
	char *name;
	char *link; /* symlink target (cleaned, archive-relative), or NULL */
	char digest[DIGEST_STRING_MAX];
	bool fresh; /* written by this load (delete if unreferenced) */
};

struct load_ctx {
	struct image_store *s;
	struct load_file *files;
	size_t n_files, alloc_files;
	image_progress_fn progress;
	void *userdata;
	const char *tag;
	bool tag_used;
	char **loaded;
	size_t n_loaded;
};

static void ctx_done(struct load_ctx *c)
{
	for (size_t i = 0; i < c->n_files; i++) {
		free(c->files[i].name);
		free(c->files[i].link);
	}
	free(c->files);
	strv_free(c->loaded);
}

static struct load_file *add_file(struct load_ctx *c, char *name)
{
	if (c->n_files == c->alloc_files) {
		c->alloc_files = c->alloc_files ? c->alloc_files * 2 : 32;
		c->files = xrealloc(c->files, c->alloc_files * sizeof(*c->files));
	}
	struct load_file *f = &c->files[c->n_files++];
	memset(f, 0, sizeof(*f));
	f->name = name;
	return f;
}

static int store_entry(struct load_ctx *c, struct archive *a, struct load_file *f, struct berth_error **err)
{
	struct content_writer w;
	int r = image_content_writer_open(c->s, &w, err);
	if (r < 0)
		return r;
	const void *buf;
	size_t size;
	la_int64_t off;
	int ar = ARCHIVE_OK;
	while (r >= 0 && (ar = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
		r = image_content_writer_write(&w, buf, size, err);
	if (r >= 0 && ar != ARCHIVE_EOF)
		r = berth_error_msg(err, EBADMSG, "read '%s' from archive: %s", f->name,
				    archive_error_string(a));
	if (r >= 0)
		r = image_content_writer_commit(&w, NULL, -1, f->digest, err);
	f->fresh = !w.existed;
	image_content_writer_done(&w);
	return r;
}

/* Lexically resolve an archive-relative path; NULL when it climbs out. */
static char *archive_path_resolve(const char *p)
{
	_cleanup_strv_ char **parts = xcalloc(strlen(p) + 2, sizeof(char *));
	size_t n = 0;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t len = (size_t)(e - p);
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (n == 0)
				return NULL;
			free(parts[--n]);
			parts[n] = NULL;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			parts[n++] = xstrndup(p, len);
		}
		p = e;
	}
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (i)
			strbuf_addch(&sb, '/');
		strbuf_addstr(&sb, parts[i]);
	}
	return strbuf_detach(&sb, NULL);
}

/* Stream regular files into the store; the first pass of image_load(). */
static int read_archive(struct load_ctx *c, int fd, struct berth_error **err);

static const struct load_file *lookup(struct load_ctx *c, const char *name)
{
	_cleanup_free_ char *cur = xstrdup(name);
	for (int hops = 0; hops < 8; hops++) {
		const struct load_file *found = NULL;
		for (size_t i = 0; i < c->n_files; i++)
			if (streq(c->files[i].name, cur))
				found = &c->files[i];
		if (!found || !found->link)
			return found;
		free(cur);
		cur = xstrdup(found->link);
	}
	return NULL;
}

static int read_json_blob(struct load_ctx *c, const char *digest, const char *what, struct strbuf *sb,
			  struct berth_error **err)
{
	int r = image_content_read(c->s, digest, IMAGE_MANIFEST_MAX, sb, err);
	return r < 0 ? berth_error_wrap(err, r, "read %s", what) : 0;
}

static void add_loaded(struct load_ctx *c, char *line)
{
	c->loaded = xrealloc(c->loaded, (c->n_loaded + 2) * sizeof(char *));
	c->loaded[c->n_loaded++] = line;
	c->loaded[c->n_loaded] = NULL;
}

/* Normalise tags; add the caller's tag to the first image when it has none. */
static int finish(struct load_ctx *c, struct store_image *img, char **tags_in, struct berth_error **err)
{
	_cleanup_strv_ char **tags = xcalloc(1, sizeof(char *));
	size_t n = 0;
	char **familiar = xcalloc(1, sizeof(char *));
	for (size_t i = 0; tags_in && tags_in[i]; i++) {
		_cleanup_image_ref_ struct image_ref *ref = NULL;
		int r = image_ref_parse(tags_in[i], IMAGE_REF_DEFAULT_TAG | IMAGE_REF_NO_DIGEST, &ref, err);
		if (r < 0) {
			strv_free(familiar);
			return berth_error_wrap(err, r, "tag in archive");
		}
		tags = xrealloc(tags, (n + 2) * sizeof(char *));
		familiar = xrealloc(familiar, (n + 2) * sizeof(char *));
		tags[n] = image_ref_string(ref);
		familiar[n] = image_ref_familiar(ref);
		tags[++n] = NULL;
		familiar[n] = NULL;
	}
	int r = image_store_layers_unpack(c->s, img, c->progress, c->userdata, "Loading layer", err);
	if (r >= 0)
		r = image_store_image_finish(c->s, img, (const char *const *)tags, NULL, err);
	for (size_t i = 0; r >= 0 && i < n; i++)
		add_loaded(c, xasprintf("Loaded image: %s", familiar[i]));
	if (r >= 0 && n == 0)
		add_loaded(c, xasprintf("Loaded image ID: %s", img->id));
	strv_free(familiar);
	return r;
}

static int image_from_config(struct load_ctx *c, const char *config_digest, struct store_image *img,
			     struct config_info *ci, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	int r = read_json_blob(c, config_digest, "image config", &sb, err);
	if (r < 0)
		return r;
	r = image_config_parse(sb.buf, sb.len, ci, err);
	if (r < 0)
		return r;
	snprintf(img->id, sizeof(img->id), "%s", config_digest);
	img->created = ci->created;
	img->n_layers = ci->n_diff_ids;
	img->layers = xcalloc(ci->n_diff_ids ? ci->n_diff_ids : 1, sizeof(*img->layers));
	for (size_t i = 0; i < ci->n_diff_ids; i++)
		snprintf(img->layers[i].diff_id, DIGEST_STRING_MAX, "%s", ci->diff_ids[i]);
	return 0;
}

static int load_docker_one(struct load_ctx *c, json_t *m, size_t idx, struct berth_error **err)
{
	_cleanup_free_ char *path = json_path_index("manifest.json", idx);
	const char *cfg = NULL;
	json_t *layers = NULL;
	_cleanup_strv_ char **tags = NULL;
	int r;
	if ((r = json_get_string(m, path, "Config", JSON_REQUIRED, &cfg, err)) < 0 ||
	    (r = json_get_array(m, path, "Layers", JSON_REQUIRED, &layers, err)) < 0 ||
	    (r = json_get_strv(m, path, "RepoTags", JSON_OPTIONAL, &tags, err)) < 0)
		return r;
	const struct load_file *cf = lookup(c, cfg);
	if (!cf)
		return berth_error_msg(err, ENOENT, "config '%s' not found in archive", cfg);
	struct store_image img = { 0 };
	struct config_info ci = { 0 };
	r = image_from_config(c, cf->digest, &img, &ci, err);
	if (r >= 0 && json_array_size(layers) != img.n_layers)
		r = berth_error_msg(err, EINVAL, "'%s': %zu layers but the config has %zu diff_ids", path,
				    json_array_size(layers), img.n_layers);
	for (size_t i = 0; r >= 0 && i < img.n_layers; i++) {
		const char *ln = json_string_value(json_array_get(layers, i));
		const struct load_file *lf = ln ? lookup(c, ln) : NULL;
		if (!lf) {
			r = berth_error_msg(err, ENOENT, "layer '%s' not found in archive",
					    ln ? ln : "(invalid)");
			break;
		}
		struct store_layer *l = &img.layers[i];
		snprintf(l->blob, sizeof(l->blob), "%s", lf->digest);
		image_content_has(c->s, l->blob, &l->blob_size);
		l->media_type = xstrdup(image_store_sniff_layer_type(c->s, l->blob));
	}
	if (r >= 0 && !tags && c->tag && !c->tag_used) {
		tags = xcalloc(2, sizeof(char *));
		tags[0] = xstrdup(c->tag);
		c->tag_used = true;
	}
	if (r >= 0)
		r = finish(c, &img, tags, err);
	image_store_image_done(&img);
	image_config_info_done(&ci);
	return r;
}

static int load_docker(struct load_ctx *c, const struct load_file *mf, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_json_ json_t *doc = NULL;
	int r = read_json_blob(c, mf->digest, "manifest.json", &sb, err);
	if (r < 0)
		return r;
	r = json_parse(sb.buf, sb.len, "manifest.json", &doc, err);
	if (r < 0)
		return r;
	if (!json_is_array(doc))
		return json_type_error("manifest.json", NULL, "array", doc, err);
	if (json_array_size(doc) > LOAD_MAX_IMAGES)
		return berth_error_msg(err, E2BIG, "manifest.json: too many images");
	for (size_t i = 0; i < json_array_size(doc); i++) {
		json_t *m = json_array_get(doc, i);
		if (!json_is_object(m))
			return json_type_error("manifest.json", NULL, "object", m, err);
		r = load_docker_one(c, m, i, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int load_oci_manifest(struct load_ctx *c, const struct manifest_desc *d, const char *ref_name,
			     struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	struct manifest m = { 0 };
	int r = read_json_blob(c, d->digest, "manifest", &sb, err);
	if (r < 0)
		return r;
	r = image_manifest_parse(sb.buf, sb.len, d->media_type, &m, err);
	if (r < 0)
		return r;
	if (m.kind == MANIFEST_INDEX) {
		struct image_platform p;
		const struct manifest_desc *sel = NULL;
		image_platform_parse(NULL, &p, NULL);
		r = image_manifest_select(&m, &p, &sel, err);
		image_platform_done(&p);
		if (r >= 0)
			r = load_oci_manifest(c, sel, ref_name, err);
		image_manifest_done(&m);
		return r;
	}
	struct store_image img = { 0 };
	struct config_info ci = { 0 };
	r = image_from_config(c, m.config.digest, &img, &ci, err);
	if (r >= 0 && m.n_layers != img.n_layers)
		r = berth_error_msg(err, EINVAL, "manifest has %zu layers but the config has %zu diff_ids",
				    m.n_layers, img.n_layers);
	for (size_t i = 0; r >= 0 && i < img.n_layers; i++) {
		struct store_layer *l = &img.layers[i];
		if (!image_content_has(c->s, m.layers[i].digest, &l->blob_size)) {
			r = berth_error_msg(err, ENOENT, "layer blob '%s' missing or corrupt in archive",
					    m.layers[i].digest);
			break;
		}
		snprintf(l->blob, sizeof(l->blob), "%s", m.layers[i].digest);
		l->media_type = xstrdup(m.layers[i].media_type);
	}
	img.manifest_digest = xstrdup(d->digest);
	img.manifest_media_type = xstrdup(m.media_type);
	img.config_media_type = xstrdup(m.config.media_type);
	char *tags[2] = { NULL, NULL };
	if (ref_name && strpbrk(ref_name, "/:"))
		tags[0] = (char *)ref_name;
	else if (c->tag && !c->tag_used)
		tags[0] = (char *)c->tag, c->tag_used = true;
	if (r >= 0)
		r = finish(c, &img, tags, err);
	image_store_image_done(&img);
	image_config_info_done(&ci);
	image_manifest_done(&m);
	return r;
}

static int load_oci(struct load_ctx *c, const struct load_file *idx, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	struct manifest m = { 0 };
	int r = read_json_blob(c, idx->digest, "index.json", &sb, err);
	if (r < 0)
		return r;
	r = image_manifest_parse(sb.buf, sb.len, MT_OCI_INDEX, &m, err);
	if (r < 0)
		return berth_error_wrap(err, r, "index.json");
	if (m.kind != MANIFEST_INDEX) {
		image_manifest_done(&m);
		return berth_error_msg(err, EINVAL, "index.json is not an image index");
	}
	for (size_t i = 0; r >= 0 && i < m.n_manifests; i++)
		r = load_oci_manifest(c, &m.manifests[i], m.manifests[i].ref_name, err);
	image_manifest_done(&m);
	return r;
}

static bool blob_referenced(sqlite3 *db, const char *digest)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	if (image_store_db_prepare(db,
				   "SELECT 1 FROM images WHERE id = ?1 OR manifest_digest = ?1"
				   " UNION SELECT 1 FROM image_layers WHERE blob = ?1",
				   &st, NULL) < 0)
		return true;
	sqlite3_bind_text(st, 1, digest, -1, SQLITE_TRANSIENT);
	return sqlite3_step(st) == SQLITE_ROW;
}

static void drop_unreferenced(struct load_ctx *c)
{
	_cleanup_db_ sqlite3 *db = NULL;
	if (image_store_db_open(c->s, &db, NULL) < 0)
		return;
	for (size_t i = 0; i < c->n_files; i++)
		if (c->files[i].fresh && !c->files[i].link && !blob_referenced(db, c->files[i].digest))
			image_content_delete(c->s, c->files[i].digest);
}

int image_load(struct image_store *s, int in_fd, const char *tag, image_progress_fn progress,
	       void *progress_data, char ***ret_loaded, struct berth_error **err)
{
	struct load_ctx c = { .s = s, .progress = progress, .userdata = progress_data, .tag = tag };
	int r = read_archive(&c, in_fd, err);
	if (r >= 0) {
		const struct load_file *mf = lookup(&c, "manifest.json");
		const struct load_file *idx = lookup(&c, "index.json");
		if (mf)
			r = load_docker(&c, mf, err);
		else if (idx)
			r = load_oci(&c, idx, err);
		else
			r = berth_error_msg(
			    err, EINVAL,
			    "unrecognised image archive: neither manifest.json nor index.json found");
	}
	drop_unreferenced(&c);
	if (r >= 0 && ret_loaded) {
		*ret_loaded = c.loaded ? TAKE_PTR(c.loaded) : xcalloc(1, sizeof(char *));
	}
	ctx_done(&c);
	if (r < 0)
		return berth_error_wrap(err, r, "load image archive");
	return 0;
}

static int link_entry(struct load_ctx *c, struct archive_entry *e, char *name, struct berth_error **err)
{
	const char *t = archive_entry_symlink(e);
	if (!t)
		t = archive_entry_hardlink(e);
	if (!t)
		return 0;
	_cleanup_free_ char *joined = NULL;
	if (archive_entry_symlink(e) && t[0] != '/') {
		char *slash = strrchr(name, '/');
		joined = slash ? xasprintf("%.*s/%s", (int)(slash - name), name, t) : xstrdup(t);
	} else {
		joined = xstrdup(t);
	}
	_cleanup_free_ char *clean = archive_path_resolve(joined);
	if (!clean)
		return 0; /* escapes the archive: ignored, lookups through it fail */
	struct load_file *f = add_file(c, name);
	f->link = TAKE_PTR(clean);
	return 1;
}

static int read_archive(struct load_ctx *c, int fd, struct berth_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int r = 0;
	if (archive_read_open_fd(a, fd, 256 << 10) != ARCHIVE_OK) {
		r = berth_error_msg(err, EINVAL, "not an image archive: %s", archive_error_string(a));
		archive_read_free(a);
		return r;
	}
	struct archive_entry *e;
	int ar;
	while (r >= 0 && ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK || ar == ARCHIVE_WARN)) {
		if (c->n_files >= LOAD_MAX_FILES) {
			r = berth_error_msg(err, E2BIG, "image archive has too many files");
			break;
		}
		_cleanup_free_ char *name = NULL;
		r = image_unpack_clean_path(archive_entry_pathname(e), &name, err);
		if (r < 0)
			break;
		if (archive_entry_symlink(e) || archive_entry_hardlink(e)) {
			r = link_entry(c, e, name, err);
			if (r > 0)
				name = NULL; /* owned by the table now */
			continue;
		}
		if (archive_entry_filetype(e) != AE_IFREG || !*name)
			continue;
		struct load_file *f = add_file(c, TAKE_PTR(name));
		r = store_entry(c, a, f, err);
	}
	if (r >= 0 && ar != ARCHIVE_EOF)
		r = berth_error_msg(err, EBADMSG, "read image archive: %s", archive_error_string(a));
	archive_read_free(a);
	return r;
}
