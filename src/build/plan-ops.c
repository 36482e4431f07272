/*
 * plan-ops.c - the filesystem-changing steps of a plan: RUN (command line,
 * heredoc scripts, process environment, mounts) and COPY/ADD (sources from
 * the context, another stage, an image, heredocs or URLs; destination; the
 * content hash that goes into the cache key).
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "build/build-internal.h"
#include "build/flags.h"
#include "build/pathmatch.h"
#include "build/shlex.h"
#include "common/digest.h"
#include "common/strbuf.h"
#include "common/strv.h"

/* RUN's argv: exec form as is; shell form through the shell, with heredoc
 * bodies either as the whole script or appended after the command line. */
static char **run_argv(const struct df_instr *in, const json_t *config, struct plan_run *run)
{
	if (in->json)
		return strv_dup(in->args);
	char **argv = build_plan_shell(config);
	const char *line = in->args[0] ? in->args[0] : "";
	if (in->n_heredocs > 0 && build_df_word_is_heredoc(line, NULL)) {
		const struct df_heredoc *h = &in->heredocs[0];
		if (startswith(h->content, "#!")) {
			run->script_name = xstrdup(h->name);
			run->script_data = xstrdup(h->content);
			_cleanup_free_ char *path = xasprintf("/dev/pipes/%s", h->name);
			strv_add(&argv, path);
		} else {
			strv_add(&argv, h->content);
		}
		return argv;
	}
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, line);
	for (size_t i = 0; i < in->n_heredocs; i++)
		strbuf_addf(&sb, "\n%s%s", in->heredocs[i].content, in->heredocs[i].name);
	strv_add(&argv, sb.buf);
	strbuf_release(&sb);
	return argv;
}

/* The process environment: image Env, then declared ARGs not overridden by
 * ENV, then proxy build args (never part of the cache key). */
static char **run_env(struct planner *pl, const struct stage_state *st, char ***ret_key_env)
{
	char **env = xcalloc(1, sizeof(char *));
	json_t *e = json_object_get(st->config, "Env"), *v;
	size_t i;
	json_array_foreach (e, i, v)
		if (json_is_string(v))
			strv_add(&env, json_string_value(v));
	for (char **a = st->args; a && *a; a++) {
		_cleanup_free_ char *k = xstrndup(*a, strcspn(*a, "="));
		if (!build_shlex_env_get(env, k))
			strv_add(&env, *a);
	}
	*ret_key_env = strv_dup(env);
	for (size_t k = 0; pl->opts->build_args && pl->opts->build_args[k]; k++) {
		const char *a = pl->opts->build_args[k];
		_cleanup_free_ char *key = xstrndup(a, strcspn(a, "="));
		if (build_plan_is_proxy_arg(key) && strchr(a, '=')) {
			pl->arg_used[k] = true;
			build_env_set(&env, key, strchr(a, '=') + 1);
		}
	}
	return env;
}

static int expand_field(struct planner *pl, const struct df_instr *in, char *const *env, char **field)
{
	if (!*field)
		return 0;
	char *v = NULL;
	if (build_plan_expand(pl, in, env, *field, &v) < 0)
		return -EINVAL;
	free(*field);
	*field = v;
	return 0;
}

/* RUN --mount=type=bind from the context: the content it binds is part of the step's key, as in
 * BuildKit (a scanned context has every digest: no file is read). NULL when the source resolves to
 * nothing (the step fails when it runs, with the mount's own error). */
static char *bind_content(struct planner *pl, const struct df_mount *m)
{
	if (m->type != DF_MOUNT_BIND || m->from || !pl->ctx)
		return NULL;
	char *src[] = { m->source && *m->source ? m->source : (char *)".", NULL };
	struct ctx_match *mm = NULL;
	size_t n = 0;
	char h[DIGEST_STRING_MAX];
	if (build_context_resolve(pl->ctx, src, NULL, &mm, &n, NULL) < 0)
		return NULL;
	int r = build_context_hash(pl->ctx, mm, n, h, NULL);
	build_ctx_matches_free(mm, n);
	return r < 0 ? NULL : xstrdup(h);
}

static int run_mounts(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env,
		      json_t *desc)
{
	const struct df_instr *in = s->in;
	struct plan_run *run = &s->run;
	size_t n = strv_length(in->opts.mounts);
	run->mounts = xcalloc(n ? n : 1, sizeof(*run->mounts));
	run->mount_stage = xcalloc(n ? n : 1, sizeof(ssize_t));
	json_t *jm = json_array();
	json_object_set_new(desc, "mounts", jm);
	for (size_t i = 0; i < n; i++) {
		struct df_mount *m = &run->mounts[i];
		struct berth_error *e = NULL;
		if (build_df_mount_parse(in->opts.mounts[i], m, &e) < 0) {
			_cleanup_free_ char *msg = berth_error_string(e);
			berth_error_free(e);
			return build_plan_error(pl, in, "%s", msg);
		}
		run->n_mounts++;
		if (expand_field(pl, in, env, &m->from) < 0 || expand_field(pl, in, env, &m->source) < 0 ||
		    expand_field(pl, in, env, &m->target) < 0 || expand_field(pl, in, env, &m->id) < 0 ||
		    expand_field(pl, in, env, &m->env) < 0)
			return -EINVAL;
		run->mount_stage[i] = -1;
		const char *from_key = "";
		if (m->from) {
			if (build_plan_depend(pl, st, in, m->from, &run->mount_stage[i]) < 0)
				return -EINVAL;
			if (run->mount_stage[i] >= 0)
				from_key = pl->plan->stages[run->mount_stage[i]].key;
		}
		_cleanup_free_ char *content = bind_content(pl, m);
		json_array_append_new(jm,
				      json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:b,s:s*}", "type",
						build_df_mount_type_name(m->type), "from", m->from, "source",
						m->source, "target", m->target, "id", m->id, "from_key",
						from_key, "readonly", m->readonly, "context", content));
	}
	return 0;
}

int build_plan_run(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env,
		   json_t *desc)
{
	const struct df_instr *in = s->in;
	struct plan_run *run = &s->run;
	s->op = OP_RUN;
	run->argv = run_argv(in, st->config, run);
	if (run->script_data) {
		char d[DIGEST_STRING_MAX];
		digest_buffer(DIGEST_SHA256, run->script_data, strlen(run->script_data), d);
		json_object_set_new(desc, "script", json_pack("[s,s]", run->script_name, d));
	}
	_cleanup_strv_ char **key_env = NULL;
	run->env = run_env(pl, st, &key_env);
	const char *user = json_string_value(json_object_get(st->config, "User"));
	const char *wd = json_string_value(json_object_get(st->config, "WorkingDir"));
	run->user = xstrdup(user ? user : "");
	run->workdir = xstrdup(wd && *wd ? wd : "/");
	run->network = xstrdup(in->opts.network ? in->opts.network : "default");
	run->security = xstrdup(in->opts.security ? in->opts.security : "sandbox");
	json_object_set_new(desc, "argv", strv_to_json(run->argv));
	json_object_set_new(desc, "env", strv_to_json(key_env));
	json_object_set_new(desc, "network", json_string(run->network));
	json_object_set_new(desc, "security", json_string(run->security));
	int r = run_mounts(pl, st, s, env, desc);
	if (r < 0)
		return r;
	_cleanup_free_ char *j = json_dumps(json_object_get(desc, "argv"), JSON_COMPACT);
	s->text = in->json ? xasprintf("RUN %s", j) : xasprintf("RUN %s", in->args[0] ? in->args[0] : "");
	return 0;
}

/* --- COPY / ADD ---------------------------------------------------------- */

bool build_url_is_git(const char *s)
{
	if (startswith(s, "git@") || startswith(s, "git://"))
		return true;
	if (!startswith(s, "http://") && !startswith(s, "https://"))
		return false;
	size_t n = strcspn(s, "#?");
	return n > 4 && strncmp(s + n - 4, ".git", 4) == 0;
}

static bool is_url(const char *s)
{
	return startswith(s, "http://") || startswith(s, "https://") || startswith(s, "git@") ||
	       startswith(s, "git://");
}

static int copy_flags(struct planner *pl, const struct df_instr *in, struct plan_copy *c, char *const *env)
{
	const struct df_opts *o = &in->opts;
	c->add = in->cmd == DF_ADD;
	c->link = o->link;
	c->parents = o->parents;
	c->keep_git_dir = o->keep_git_dir;
	c->chown = o->chown ? xstrdup(o->chown) : NULL;
	c->chmod = o->chmod ? xstrdup(o->chmod) : NULL;
	c->checksum = o->checksum ? xstrdup(o->checksum) : NULL;
	c->excludes = xcalloc(1, sizeof(char *));
	for (char **e = o->exclude; e && *e; e++) {
		_cleanup_free_ char *v = NULL;
		if (build_plan_expand(pl, in, env, *e, &v) < 0)
			return -EINVAL;
		strv_add(&c->excludes, v);
	}
	if (expand_field(pl, in, env, &c->chown) < 0 || expand_field(pl, in, env, &c->chmod) < 0 ||
	    expand_field(pl, in, env, &c->checksum) < 0)
		return -EINVAL;
	if (c->checksum && digest_parse(c->checksum, NULL, NULL, NULL) < 0)
		return build_plan_error(pl, in, "invalid checksum digest format '%s'", c->checksum);
	if (c->chmod && build_chmod_check(c->chmod, NULL) < 0)
		return build_plan_error(
		    pl, in,
		    "invalid chmod parameter '%s': expected an octal mode or a symbolic mode "
		    "like 'u+x,g-w'",
		    c->chmod);
	return 0;
}

static int copy_sources(struct planner *pl, const struct df_instr *in, struct plan_copy *c, char *const *env,
			json_t *desc)
{
	c->srcs = xcalloc(1, sizeof(char *));
	c->inline_names = xcalloc(1, sizeof(char *));
	c->inline_data = xcalloc(1, sizeof(char *));
	json_t *jin = json_array();
	json_object_set_new(desc, "inline", jin);
	for (size_t i = 0; i + 1 < in->n_args; i++) {
		_cleanup_free_ char *hd = NULL;
		if (!build_df_word_is_heredoc(in->args[i], &hd)) {
			_cleanup_free_ char *v = NULL;
			if (build_plan_expand(pl, in, env, in->args[i], &v) < 0)
				return -EINVAL;
			strv_add(&c->srcs, v);
			continue;
		}
		for (size_t k = 0; k < in->n_heredocs; k++) {
			const struct df_heredoc *h = &in->heredocs[k];
			if (!streq(h->name, hd))
				continue;
			_cleanup_free_ char *data = NULL;
			struct berth_error *e = NULL;
			if (!h->expand)
				data = xstrdup(h->content);
			else if (build_shlex_process_word(h->content, pl->df->escape, env,
							  SHLEX_RAW_QUOTES | SHLEX_RAW_ESCAPES, &data,
							  &e) < 0) {
				_cleanup_free_ char *m = berth_error_string(e);
				berth_error_free(e);
				return build_plan_error(pl, in, "%s", m);
			}
			strv_add(&c->inline_names, h->name);
			strv_add(&c->inline_data, data);
			c->n_inline++;
			char d[DIGEST_STRING_MAX];
			digest_buffer(DIGEST_SHA256, data, strlen(data), d);
			json_array_append_new(jin, json_pack("[s,s]", h->name, d));
			break;
		}
	}
	return 0;
}

static int copy_dest(struct planner *pl, const struct df_instr *in, const struct stage_state *st,
		     struct plan_copy *c, char *const *env)
{
	_cleanup_free_ char *d = NULL;
	if (build_plan_expand(pl, in, env, in->args[in->n_args - 1], &d) < 0)
		return -EINVAL;
	const char *wd = json_string_value(json_object_get(st->config, "WorkingDir"));
	_cleanup_free_ char *joined = d[0] == '/' ? xstrdup(d) : xasprintf("%s/%s", wd && *wd ? wd : "/", d);
	_cleanup_free_ char *clean = build_go_path_clean(joined);
	bool dir = !*d || streq(d, ".") || d[strlen(d) - 1] == '/';
	c->dest = dir && !streq(clean, "/") ? xasprintf("%s/", clean) : xstrdup(clean);
	size_t count = strv_length(c->srcs) + c->n_inline;
	bool wild = false;
	for (char **s = c->srcs; *s; s++)
		wild |= build_go_has_wildcards(*s);
	if ((count > 1 || wild) && c->dest[strlen(c->dest) - 1] != '/' && count > 1)
		return build_plan_error(
		    pl, in,
		    "When using %s with more than one source file, the destination must be a "
		    "directory and end with a /",
		    build_df_cmd_name(in->cmd));
	return 0;
}

/* ADD --checksum of a local source: one regular file whose content has that digest. */
static int verify_checksum(struct planner *pl, const struct df_instr *in, const struct plan_copy *c)
{
	const struct ctx_match *m = &c->matches[0];
	if (c->n_matches != 1 || m->entry == SIZE_MAX || !S_ISREG(pl->ctx->e[m->entry].mode))
		return build_plan_error(pl, in, "ADD --checksum needs exactly one source file");
	enum digest_algo algo;
	(void)digest_parse(c->checksum, &algo, NULL, NULL);
	char got[DIGEST_STRING_MAX];
	struct berth_error *e = NULL;
	int r;
	if (algo == DIGEST_SHA256) {
		r = build_context_entry_digest(pl->ctx, &pl->ctx->e[m->entry], &e);
		if (r >= 0)
			memcpy(got, pl->ctx->e[m->entry].digest, sizeof(got));
	} else {
		r = build_context_extract(pl->ctx, &e);
		_cleanup_close_ int fd =
		    r < 0 ? -1 : openat(pl->ctx->rootfd, m->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (r >= 0)
			r = fd < 0 ? berth_error_errno(&e, "open '%s'", m->path)
				   : digest_fd(algo, fd, got, NULL, &e);
	}
	if (r < 0) {
		_cleanup_free_ char *msg = berth_error_string(e);
		berth_error_free(e);
		return build_plan_error(pl, in, "ADD --checksum: %s", msg);
	}
	if (!streq(got, c->checksum))
		return build_plan_error(pl, in, "ADD: checksum mismatch for '%s': expected %s, got %s",
					m->path, c->checksum, got);
	return 0;
}

static int copy_from_context(struct planner *pl, const struct df_instr *in, struct plan_copy *c, json_t *desc)
{
	if (!c->srcs[0])
		return 0;
	if (!pl->ctx)
		return build_plan_error(pl, in, "%s needs a build context", build_df_cmd_name(in->cmd));
	for (char **s = c->srcs; *s; s++) {
		char *clean = NULL;
		struct berth_error *e = NULL;
		if (build_context_clean_source(*s, &clean, &e) < 0) {
			_cleanup_free_ char *m = berth_error_string(e);
			berth_error_free(e);
			return build_plan_error(pl, in, "%s", m);
		}
		free(*s);
		*s = clean;
	}
	struct berth_error *e = NULL;
	char hash[DIGEST_STRING_MAX];
	int r = build_context_resolve(pl->ctx, c->srcs, c->excludes, &c->matches, &c->n_matches, &e);
	if (r >= 0)
		r = build_context_hash(pl->ctx, c->matches, c->n_matches, hash, &e);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(e);
		berth_error_free(e);
		return build_plan_error(pl, in, "%s: %s", build_df_cmd_name(in->cmd), m);
	}
	size_t roots = 0;
	for (size_t i = 0; i < c->n_matches; i++)
		roots += c->matches[i].rel[0] == '\0';
	if (roots > 1 && c->dest[strlen(c->dest) - 1] != '/')
		return build_plan_error(
		    pl, in,
		    "When using %s with more than one source file, the destination must be a "
		    "directory and end with a /",
		    build_df_cmd_name(in->cmd));
	json_object_set_new(desc, "inputs", json_string(hash));
	if (c->checksum && (r = verify_checksum(pl, in, c)) < 0)
		return r;
	c->extract = xcalloc(1, sizeof(char *));
	for (size_t i = 0; c->add && i < c->n_matches; i++) {
		const struct ctx_match *m = &c->matches[i];
		if (m->rel[0] || m->entry == SIZE_MAX || !S_ISREG(pl->ctx->e[m->entry].mode))
			continue;
		int a = build_context_is_archive(pl->ctx, m->path, pl->err);
		if (a < 0)
			return a;
		if (a)
			strv_add(&c->extract, m->path);
	}
	return 0;
}

static int copy_origin(struct planner *pl, struct stage_state *st, const struct df_instr *in,
		       struct plan_copy *c, char *const *env, json_t *desc)
{
	if (in->opts.from) {
		_cleanup_free_ char *from = NULL;
		if (build_plan_expand(pl, in, env, in->opts.from, &from) < 0)
			return -EINVAL;
		if (build_plan_depend(pl, st, in, from, &c->from_stage) < 0)
			return -EINVAL;
		json_object_set_new(desc, "srcs", strv_to_json(c->srcs));
		if (c->from_stage >= 0) {
			c->kind = SRC_STAGE;
			json_object_set_new(desc, "from_key",
					    json_string(pl->plan->stages[c->from_stage].key));
			return 0;
		}
		c->kind = SRC_IMAGE;
		c->from_image = TAKE_PTR(from);
		if (pl->opts->resolve) {
			json_t *cfg = NULL;
			int r = pl->opts->resolve(pl->opts->userdata, c->from_image, NULL, &c->from_image_id,
						  &cfg, pl->err);
			json_decref(cfg);
			if (r < 0)
				return berth_error_wrap(pl->err, r, "%s:%d: resolve image '%s'", pl->df->name,
							in->line, c->from_image);
		} else {
			c->from_image_id = xstrdup(c->from_image);
		}
		json_object_set_new(desc, "from_image", json_string(c->from_image_id));
		return 0;
	}
	size_t urls = 0, n = strv_length(c->srcs);
	for (char **s = c->srcs; *s; s++)
		urls += c->add && is_url(*s);
	if (urls > 0) {
		if (urls != n)
			return build_plan_error(pl, in, "ADD cannot mix remote URLs and local sources");
		c->kind = SRC_URL;
		if (c->checksum && n > 1)
			return build_plan_error(pl, in, "checksum can't be specified for multiple sources");
		if (c->checksum && build_url_is_git(c->srcs[0]))
			return build_plan_error(pl, in, "ADD --checksum is not supported for git sources");
		json_object_set_new(desc, "urls", strv_to_json(c->srcs));
		return 0;
	}
	if (!c->add && n > 0)
		for (char **s = c->srcs; *s; s++)
			if (is_url(*s))
				return build_plan_error(pl, in, "source can't be a URL for COPY");
	c->kind = SRC_CONTEXT;
	return copy_from_context(pl, in, c, desc);
}

int build_plan_copy(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env,
		    json_t *desc)
{
	const struct df_instr *in = s->in;
	struct plan_copy *c = &s->copy;
	s->op = OP_COPY;
	int r = copy_flags(pl, in, c, env);
	if (r >= 0)
		r = copy_sources(pl, in, c, env, desc);
	if (r >= 0)
		r = copy_dest(pl, in, st, c, env);
	if (r >= 0)
		r = copy_origin(pl, st, in, c, env, desc);
	if (r < 0)
		return r;
	struct strbuf t = STRBUF_INIT;
	strbuf_addstr(&t, build_df_cmd_name(in->cmd));
	if (c->from_stage >= 0)
		strbuf_addf(&t, " --from=%zd", c->from_stage);
	else if (c->from_image)
		strbuf_addf(&t, " --from=%s", c->from_image);
	if (c->chown)
		strbuf_addf(&t, " --chown=%s", c->chown);
	if (c->chmod)
		strbuf_addf(&t, " --chmod=%s", c->chmod);
	if (c->link)
		strbuf_addstr(&t, " --link");
	if (c->parents)
		strbuf_addstr(&t, " --parents");
	if (c->checksum)
		strbuf_addf(&t, " --checksum=%s", c->checksum);
	for (char **e = c->excludes; *e; e++)
		strbuf_addf(&t, " --exclude=%s", *e);
	for (char **x = c->srcs; *x; x++)
		strbuf_addf(&t, " %s", *x);
	for (size_t i = 0; i < c->n_inline; i++)
		strbuf_addf(&t, " <<%s", c->inline_names[i]);
	strbuf_addf(&t, " %s", c->dest);
	s->text = strbuf_detach(&t, NULL);
	return 0;
}
