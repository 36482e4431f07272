/*
 * embed.c - the registry inside another process (berth server --registry,
 * docs/ecr.md): start/stop without signals, and the store operations the
 * ECR API needs (list images, read/write/delete manifests, delete a
 * repository).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "registry/server.h"

int registry_start(struct registry_config *cfg, struct registry **ret, struct berth_error **err)
{
	struct registry *reg = xcalloc(1, sizeof(*reg));
	int r = registry_init(reg, cfg, err);
	if (r == 0)
		r = registry_start_http(reg, err);
	if (r < 0) {
		registry_done(reg);
		free(reg);
		return r;
	}
	registry_upload_expire(&reg->uploads, cfg->upload_expiry_s);
	*ret = reg;
	return 0;
}

uint16_t registry_bound_port(const struct registry *reg)
{
	return reg->port;
}

void registry_stop(struct registry *reg)
{
	if (!reg)
		return;
	registry_drain(reg);
	registry_done(reg);
	free(reg);
}

json_t *registry_repo_images(struct registry *reg, const char *repo)
{
	json_t *out = json_array();
	_cleanup_strv_ char **digests = NULL, **tags = NULL;
	registry_store_manifest_list(reg->store, repo, &digests);
	if (registry_store_tags_list(reg->store, repo, &tags) < 0)
		tags = xcalloc(1, sizeof(char *));
	/* tag -> digest once, not once per image */
	size_t nt = 0;
	while (tags[nt])
		nt++;
	char(*tag_digest)[DIGEST_STRING_MAX] = xcalloc(nt ? nt : 1, DIGEST_STRING_MAX);
	for (size_t i = 0; i < nt; i++)
		if (registry_store_resolve_tag(reg->store, repo, tags[i], tag_digest[i]) < 0)
			tag_digest[i][0] = '\0';
	for (char **d = digests; d && *d; d++) {
		char mt[256];
		if (registry_store_manifest_info(reg->store, repo, *d, mt, sizeof(mt), NULL) < 0)
			continue;
		json_t *t = json_array();
		for (size_t i = 0; i < nt; i++)
			if (streq(tag_digest[i], *d))
				json_array_append_new(t, json_string(tags[i]));
		const char *colon = strchr(*d, ':');
		_cleanup_free_ char *hex_path = xasprintf("repositories/%s/_manifests/revisions/%.*s/%s",
							  repo, (int)(colon - *d), *d, colon + 1);
		struct stat st;
		double stored = fstatat(reg->store->rootfd, hex_path, &st, 0) == 0
				    ? (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9
				    : 0;
		json_array_append_new(out, json_pack("{s:s,s:s,s:o,s:f}", "imageDigest", *d,
						     "imageManifestMediaType", mt, "imageTags", t, "storedAt",
						     stored));
	}
	free(tag_digest);
	return out;
}

int registry_manifest_read(struct registry *reg, const char *repo, const char *digest, struct strbuf *ret,
			   char **ret_media_type)
{
	char mt[256];
	int r = registry_store_manifest_info(reg->store, repo, digest, mt, sizeof(mt), NULL);
	if (r < 0)
		return r;
	char path[PATH_MAX];
	registry_store_blob_path(digest, path, sizeof(path));
	r = fs_read_file_at(reg->store->rootfd, path, (size_t)reg->cfg->manifest_max + 1, ret, NULL);
	if (r < 0)
		return r;
	if (ret_media_type)
		*ret_media_type = xstrdup(mt);
	return 0;
}

int registry_tag_resolve(struct registry *reg, const char *repo, const char *tag, char *ret_digest)
{
	return registry_store_resolve_tag(reg->store, repo, tag, ret_digest);
}

int registry_manifest_write(struct registry *reg, const char *repo, const char *tag, const char *content_type,
			    const void *data, size_t len, char *ret_digest, struct berth_error **err)
{
	if (len > (size_t)reg->cfg->manifest_max)
		return berth_error_msg(err, EFBIG, "manifest larger than %lld bytes",
				       (long long)reg->cfg->manifest_max);
	struct manifest_info m;
	int r = registry_manifest_parse(content_type, data, len, &m, err);
	if (r < 0)
		return r;
	digest_buffer(DIGEST_SHA256, data, len, ret_digest);
	const char *missing = NULL;
	const char *tags[] = { tag, NULL };
	r = registry_manifest_commit(reg, repo, tags, &m, ret_digest, data, len, &missing, err);
	if (missing)
		r = berth_error_msg(err, ENOENT, "the manifest references %s, which is not in the repository",
				    missing);
	registry_manifest_info_done(&m);
	return r;
}

int registry_blob_open(struct registry *reg, const char *digest, int *ret_fd, uint64_t *ret_size)
{
	return registry_store_blob_open(reg->store, digest, ret_fd, ret_size);
}

int registry_image_delete(struct registry *reg, const char *repo, const char *digest)
{
	return registry_store_manifest_delete(reg->store, repo, digest);
}

int registry_tag_delete(struct registry *reg, const char *repo, const char *tag)
{
	return registry_store_tag_delete(reg->store, repo, tag);
}

int registry_repo_delete(struct registry *reg, const char *repo, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("repositories/%s", repo);
	int r = fs_rm_rf_at(reg->store->rootfd, path, err);
	return r == -ENOENT ? 0 : r;
}
