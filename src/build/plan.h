/*
 * plan.h - the build plan: a pure function of (parsed Dockerfile, build
 * options, base image configs, build context) giving
 *   - the stages needed for the target (FROM stage, COPY --from and
 *     RUN --mount from= dependencies; cycles are errors),
 *   - waves: stage groups that can run in parallel, each after the previous,
 *   - per step: the instruction after variable expansion (with BuildKit's
 *     ARG/ENV scoping), the image config after the step, the operation the
 *     executor must perform, and its cache key:
 *       key = sha256(parent key + canonical step description + input hashes)
 *     where the first parent is the base image ID (or "scratch", or the
 *     final key of the base stage) and input hashes are the content hashes
 *     of the files a COPY/ADD reads (context, other stage, heredoc).
 *
 * Nothing here runs anything; base images are looked up through
 * `build_plan_opts.resolve` (NULL: an image's ID is its reference and its
 * config is empty, which is what `berth build-tool plan` shows).
 */
#ifndef BERTH_BUILD_PLAN_H
#define BERTH_BUILD_PLAN_H

#include <jansson.h>

#include "build/context.h"
#include "build/dockerfile.h"

/* Look up a base image: its ID (digest) and its docker "config" object. */
typedef int (*build_resolve_fn)(void *userdata, const char *ref, const char *platform, char **ret_id,
				json_t **ret_config, struct berth_error **err);

struct build_plan_opts {
	char *const *build_args; /* "KEY=value" (--build-arg), NULL-terminated or NULL */
	const char *target;      /* stage name or NULL for the last stage */
	const char *platform;    /* "linux/amd64"; NULL: the host's */
	char *const *labels;     /* --label "KEY=value" */
	build_resolve_fn resolve;
	void *userdata;
};

enum plan_op {
	OP_NONE, /* config only (ENV, LABEL, CMD, ...) */
	OP_RUN,
	OP_COPY,  /* COPY and ADD */
	OP_MKDIR, /* WORKDIR */
};

enum copy_src_kind { SRC_CONTEXT, SRC_STAGE, SRC_IMAGE, SRC_HEREDOC, SRC_URL };

struct plan_copy {
	bool add;
	enum copy_src_kind kind; /* of the non-heredoc sources */
	char **srcs;             /* expanded, cleaned source paths (or URLs) */
	char *dest;              /* absolute; ends with "/" when a directory */
	char *chown, *chmod, *checksum;
	bool link, parents, keep_git_dir;
	char **excludes;
	ssize_t from_stage;               /* SRC_STAGE */
	char *from_image, *from_image_id; /* SRC_IMAGE */
	struct ctx_match *matches;        /* SRC_CONTEXT */
	size_t n_matches;
	char **extract;                     /* ADD: context paths that are archives to unpack */
	char **inline_names, **inline_data; /* heredoc files (expanded if allowed) */
	size_t n_inline;
};

struct plan_run {
	char **argv;
	/* A RUN heredoc starting with "#!" is run as a file, like BuildKit:
	 * the backend mounts a read-only directory at /dev/pipes/ holding
	 * script_name (mode 0755) with script_data; argv runs it. */
	char *script_name, *script_data;
	char **env; /* full process environment, build args included */
	char *user, *workdir;
	char *network, *security;
	struct df_mount *mounts;
	size_t n_mounts;
	ssize_t *mount_stage; /* per mount: stage index for from=, or -1 */
};

struct plan_step {
	const struct df_instr *in; /* the instruction (owned by the dockerfile or the plan) */
	bool trigger;              /* replayed ONBUILD trigger of the base image */
	char *text;                /* "ENV A=1" after expansion (history created_by) */
	enum plan_op op;
	struct plan_run run;
	struct plan_copy copy;
	char *mkdir;    /* OP_MKDIR path */
	json_t *config; /* image config after this step */
	char key[DIGEST_STRING_MAX];
};

enum base_kind { BASE_SCRATCH, BASE_IMAGE, BASE_STAGE };

struct plan_stage {
	char *name; /* or NULL */
	bool needed;
	int wave;
	enum base_kind base_kind;
	char *base; /* expanded base reference */
	char *platform;
	ssize_t base_stage;
	char *base_id; /* BASE_IMAGE: resolved ID */
	size_t *deps;  /* stages this one waits for */
	size_t n_deps;
	struct plan_step *steps;
	size_t n_steps;
	json_t *config; /* final image config */
	char *author;   /* MAINTAINER */
	char base_key[DIGEST_STRING_MAX];
	char key[DIGEST_STRING_MAX]; /* key of the last step (or the base) */
};

struct build_plan {
	const struct dockerfile *df; /* borrowed */
	struct plan_stage *stages;
	size_t n_stages;
	size_t target;
	size_t **waves; /* waves[i]: stage indices, ends with SIZE_MAX */
	size_t n_waves;
	size_t n_steps;             /* steps in needed stages, FROM lines included */
	char **meta_env;            /* global ARG scope "K=V" */
	char **unused_args;         /* --build-arg keys never declared */
	struct df_instr **triggers; /* owned parsed ONBUILD triggers */
	size_t n_triggers;
};

/* Build the plan. `ctx` may be NULL when the Dockerfile has no COPY/ADD from the context. */
int build_plan_new(const struct dockerfile *df, struct build_context *ctx, const struct build_plan_opts *opts,
		   struct build_plan **ret, struct berth_error **err);
struct build_plan *build_plan_free(struct build_plan *p);
static inline void build_plan_freep(struct build_plan **p)
{
	*p = build_plan_free(*p);
}
#define _cleanup_plan_ _cleanup_(build_plan_freep)

/* JSON views for `berth build-tool` and tests (caller decrefs). */
json_t *build_plan_to_json(const struct build_plan *p);
json_t *build_dockerfile_to_json(const struct dockerfile *df);

/* "linux/amd64" for this host. */
const char *build_host_platform(void);
/* An ADD source that is a git repository ("git@...", "git://...", "http(s)://.../x.git[#ref[:dir]]"). */
bool build_url_is_git(const char *url);

#endif
