/*
 * imagestore.c - struct engine_image_ops over the image library
 * (image/image.h): image names resolve through its store, container root
 * filesystems are its overlay snapshots (id = container id).
 */
#include "engine/internal.h"
#include "image/image.h"

static int is_resolve(void *ctx, const char *name, char **ret_id, json_t **ret_config,
		      struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = image_resolve(ctx, name, &id, err);
	if (r == -ENOENT) {
		berth_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		return berth_error_msg(err, ENOENT, "No such image: %s", name);
	}
	if (r < 0)
		return r;
	json_t *cfg = NULL;
	r = image_get_config(ctx, id, &cfg, err);
	if (r < 0)
		return r;
	*ret_id = TAKE_PTR(id);
	*ret_config = cfg;
	return 0;
}

static int take_rootfs(struct image_snapshot *sn, char **ret_rootfs)
{
	*ret_rootfs = xstrdup(sn->rootfs);
	image_snapshot_free(sn);
	return 0;
}

static int is_prepare(void *ctx, const char *cid, const char *image_id, char **ret_rootfs,
		      struct berth_error **err)
{
	struct image_snapshot *sn = NULL;
	int r = image_snapshot_prepare(ctx, cid, image_id, &sn, err);
	if (r == -EEXIST) {
		berth_error_free(err ? *err : NULL);
		if (err)
			*err = NULL;
		r = image_snapshot_mount(ctx, cid, &sn, err);
	}
	return r < 0 ? r : take_rootfs(sn, ret_rootfs);
}

static int is_mount(void *ctx, const char *cid, char **ret_rootfs, struct berth_error **err)
{
	struct image_snapshot *sn = NULL;
	int r = image_snapshot_mount(ctx, cid, &sn, err);
	return r < 0 ? r : take_rootfs(sn, ret_rootfs);
}

static int is_unmount(void *ctx, const char *cid, struct berth_error **err)
{
	int r = image_snapshot_unmount(ctx, cid, err);
	return r == -ENOENT ? 0 : r;
}

static int is_remove(void *ctx, const char *cid, struct berth_error **err)
{
	int r = image_snapshot_remove(ctx, cid, err);
	return r == -ENOENT ? 0 : r;
}

static int is_commit(void *ctx, const char *cid, const struct engine_image_commit *req, char **ret_id,
		     struct berth_error **err)
{
	struct image_commit_opts o = { .ref = req->ref,
				       .config = req->config,
				       .author = req->author,
				       .comment = req->comment,
				       .created_by = req->created_by,
				       .exclude = req->exclude };
	return image_commit(ctx, cid, &o, ret_id, err);
}

static int is_export(void *ctx, const char *cid, int out_fd, struct berth_error **err)
{
	return image_snapshot_export(ctx, cid, out_fd, err);
}

static int is_layers(void *ctx, const char *cid, char **ret_upper, char ***ret_lowers,
		     struct berth_error **err)
{
	_cleanup_image_snapshot_ struct image_snapshot *sn = NULL;
	int r = image_snapshot_describe(ctx, cid, &sn, err);
	if (r < 0)
		return r;
	*ret_upper = TAKE_PTR(sn->upperdir);
	*ret_lowers = TAKE_PTR(sn->lowerdirs);
	return 0;
}

static int is_snapshots(void *ctx, char ***ret_ids, struct berth_error **err)
{
	return image_snapshot_list(ctx, ret_ids, err);
}

const struct engine_image_ops engine_image_store_ops = {
	.resolve = is_resolve,
	.prepare = is_prepare,
	.mount = is_mount,
	.unmount = is_unmount,
	.remove = is_remove,
	.commit = is_commit,
	.export = is_export,
	.layers = is_layers,
	.snapshots = is_snapshots,
};
