/*
 * context-internal.h - shared by context.c (directories, extraction) and
 * context-scan.c (scanning a tar stream); not part of the module's API.
 */
#ifndef BERTH_BUILD_CONTEXT_INTERNAL_H
#define BERTH_BUILD_CONTEXT_INTERNAL_H

#include <pthread.h>

#include "build/context.h"

/* Limits of what a scanned context keeps in memory from its stream. */
#define CTX_IGNORE_MAX (1u << 20) /* a .dockerignore: what context_load reads */

/* A scanned tar: its spool and what was kept of it until the files are extracted. */
struct build_context_lazy {
	pthread_mutex_t lock; /* guards the extraction */
	bool extracted;
	int spool_fd;
	bool plain;       /* the spool is an uncompressed tar: data_off is set for regular files */
	char *df_path;    /* the Dockerfile's cleaned path, or NULL */
	struct strbuf df; /* its content when df_complete */
	bool df_complete;
	build_context_dir_fn dir;
	void *dir_userdata;
	char *tmpdir;
};

/* An empty context (no entries, rootfd -1); build_context_free() frees it. */
struct build_context *build_context_new(void);

/* Read the context's .dockerignore (or "<dockerfile>.dockerignore"), walk ctx->rootfd into the
 * entries (owners from disk when use_owner) and sort them; context.c's loader for both kinds. */
int build_context_load_dir(struct build_context *ctx, bool use_owner, const char *dockerfile,
			   struct berth_error **err);

/* Extract the tar read from fd (from its current offset) into rootfd; digests not recorded. */
int build_context_extract_fd(int fd, int rootfd, struct berth_error **err);

/* A fresh private directory for an extraction (mkdtemp under dir, or tmpdir, or /tmp). */
int build_context_mkdtemp(struct build_context *ctx, const char *dir, struct berth_error **err);

int build_context_entry_cmp(const void *a, const void *b);

/* "a/./b/" -> "a/b"; -EPERM when it escapes (leading "/" dropped). */
int build_context_clean_tar_name(const char *name, char **ret, struct berth_error **err);

/* The process umask without changing it. */
mode_t build_context_umask(void);

#endif
