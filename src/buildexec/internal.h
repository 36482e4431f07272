/*
 * internal.h - private to buildexec/: helpers shared by the backend's files.
 */
#ifndef BERTH_BUILDEXEC_INTERNAL_H
#define BERTH_BUILDEXEC_INTERNAL_H

#include "buildexec/buildexec.h"

#define BX_SCRATCH      "scratch"
/* history comment of intermediate images (dropped from the final image's history) */
#define BX_INTERMEDIATE IMAGE_COMMENT_BUILD_STEP

/* A snapshot of `state` for one step, mounted; *ret_id its snapshot id (caller frees). */
int buildexec_snapshot(struct buildexec *b, const char *state, char **ret_id, struct image_snapshot **ret,
		       struct berth_error **err);
/* Commit snapshot id as a new state and remove the snapshot (also on failure). */
int buildexec_commit_snapshot(struct buildexec *b, const char *id, const char *created_by, char **ret_state,
			      struct berth_error **err);

/* cache.c */
int buildexec_cache_get(struct buildexec *b, const char *key, char **ret_image, struct berth_error **err);
int buildexec_cache_put(struct buildexec *b, const char *key, const char *image, struct berth_error **err);

/* cachefrom.c: --cache-from sources (the backend's cache_source op) */
int buildexec_cache_source(void *be, const char *state, const char *key, char **ret_state,
			   struct berth_error **err);
/* 1 and the ID of a source image whose layers are state's and whose config is `config` but for
 * its times (a rebuild of that very image: dockerd gives its ID), else 0. */
int buildexec_cache_source_image(struct buildexec *b, const char *state, const json_t *config, char **ret_id);
void buildexec_sources_free(struct buildexec *b);

/* run.c */
int buildexec_run(void *be, const char *state, const struct plan_run *run, const char *const *mount_states,
		  build_output_fn out, void *out_ud, char **ret_state, struct berth_error **err);

/* A fetched remote source: dir/name is a file (a download) or a directory (a git checkout). */
struct bx_fetched {
	char *dir, *name;
	bool is_dir;
};

/* fetch.c: ADD of http(s) and git sources */
int buildexec_fetch_urls(void *be, const char *state, const struct build_copy_req *req, char **ret_state,
			 struct berth_error **err);

/* copy.c */
/* Place fetched sources like COPY does (dest, --chown, --chmod; directories by content). */
int buildexec_copy_fetched(struct buildexec *b, const char *state, const struct build_copy_req *req,
			   const struct bx_fetched *f, size_t n, char **ret_state, struct berth_error **err);
int buildexec_copy(void *be, const char *state, const struct build_copy_req *req, char **ret_state,
		   struct berth_error **err);
int buildexec_mkdir(void *be, const char *state, const char *path, char **ret_state,
		    struct berth_error **err);

#endif
