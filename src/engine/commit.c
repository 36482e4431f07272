/*
 * commit.c - `docker commit`: the container's upper dir becomes a layer on
 * top of its image (the image library's image_commit, the same code the
 * builder commits its steps with), the container's Config (plus the body's
 * overrides and the "changes" lines) becomes the new image's config.
 *
 * "changes" are Dockerfile instructions parsed by the builder's parser
 * (build_dockerfile_parse_trigger) and expanded with the builder's shell lexer
 * against the config's Env, as docker's BuildFromConfig does.
 */
#include <strings.h>

#include "build/dockerfile.h"
#include "build/shlex.h"
#include "common/json.h"
#include "engine/fsops.h"

/* Most change lines one commit takes (each is a small Dockerfile instruction). */
#define COMMIT_MAX_CHANGES 1024

struct change_ctx {
	json_t *cfg;
	char **env; /* the config's Env for expansion */
	bool cmd_set;
};

static int expand(struct change_ctx *x, const char *word, char **ret, struct berth_error **err)
{
	return build_shlex_process_word(word, '\\', x->env, 0, ret, err);
}

static json_t *obj_member(json_t *cfg, const char *key)
{
	json_t *o = json_object_get(cfg, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(cfg, key, o);
	}
	return o;
}

static void env_refresh(struct change_ctx *x)
{
	strv_free(x->env);
	size_t i, n = json_array_size(json_object_get(x->cfg, "Env"));
	json_t *v;
	x->env = xcalloc(n + 1, sizeof(char *));
	json_array_foreach (json_object_get(x->cfg, "Env"), i, v)
		x->env[i] = xstrdup(json_string_value(v) ?: "");
}

/* ENV k v / LABEL k v pairs (raw words, quotes kept by the parser). */
static int apply_pairs(struct change_ctx *x, const struct df_instr *in, struct berth_error **err)
{
	for (size_t i = 0; i + 1 < in->n_args; i += 2) {
		_cleanup_free_ char *k = NULL, *v = NULL;
		int r = expand(x, in->args[i], &k, err);
		if (r < 0 || (r = expand(x, in->args[i + 1], &v, err)) < 0)
			return r;
		if (in->cmd == DF_LABEL) {
			json_object_set_new(obj_member(x->cfg, "Labels"), k, json_string(v));
			continue;
		}
		json_t *env = json_object_get(x->cfg, "Env");
		if (!json_is_array(env))
			json_object_set_new(x->cfg, "Env", env = json_array());
		size_t j, kl = strlen(k);
		json_t *e;
		bool replaced = false;
		json_array_foreach (env, j, e) {
			const char *s = json_string_value(e);
			if (s && !strncmp(s, k, kl) && s[kl] == '=') {
				json_array_set_new(env, j, json_sprintf("%s=%s", k, v));
				replaced = true;
				break;
			}
		}
		if (!replaced)
			json_array_append_new(env, json_sprintf("%s=%s", k, v));
		env_refresh(x);
	}
	return 0;
}

static json_t *command_of(const struct df_instr *in)
{
	if (!in->json)
		return json_pack("[s,s,s]", "/bin/sh", "-c", in->n_args ? in->args[0] : "");
	json_t *a = json_array();
	for (size_t i = 0; i < in->n_args; i++)
		json_array_append_new(a, json_string(in->args[i]));
	return a;
}

/* EXPOSE and VOLUME: expanded words into an object of empty objects. */
static int apply_set(struct change_ctx *x, const struct df_instr *in, struct berth_error **err)
{
	json_t *set = obj_member(x->cfg, in->cmd == DF_EXPOSE ? "ExposedPorts" : "Volumes");
	for (size_t i = 0; i < in->n_args; i++) {
		_cleanup_free_ char *w = NULL;
		int r = expand(x, in->args[i], &w, err);
		if (r < 0)
			return r;
		if (!*w)
			continue;
		if (in->cmd == DF_EXPOSE && !strchr(w, '/')) {
			char *t = xasprintf("%s/tcp", w);
			free(w);
			w = t;
		}
		json_object_set_new(set, w, json_object());
	}
	return 0;
}

static int apply_instr(struct change_ctx *x, const struct df_instr *in, struct berth_error **err)
{
	static const char *const single[] = {
		[DF_USER] = "User", [DF_WORKDIR] = "WorkingDir", [DF_STOPSIGNAL] = "StopSignal"
	};
	switch (in->cmd) {
	case DF_CMD:
		json_object_set_new(x->cfg, "Cmd", command_of(in));
		x->cmd_set = true;
		return 0;
	case DF_ENTRYPOINT:
		json_object_set_new(x->cfg, "Entrypoint", command_of(in));
		if (!x->cmd_set) /* like the builder: a new entrypoint drops an inherited CMD */
			json_object_set_new(x->cfg, "Cmd", json_null());
		return 0;
	case DF_ENV:
	case DF_LABEL: return apply_pairs(x, in, err);
	case DF_EXPOSE:
	case DF_VOLUME: return apply_set(x, in, err);
	case DF_USER:
	case DF_WORKDIR:
	case DF_STOPSIGNAL: {
		_cleanup_free_ char *v = NULL;
		int r = expand(x, in->n_args ? in->args[0] : "", &v, err);
		if (r < 0)
			return r;
		json_object_set_new(x->cfg, single[in->cmd], json_string(v));
		return 0;
	}
	default:
		return berth_error_msg(err, EINVAL, "%s is not a valid change command",
				       build_df_cmd_name(in->cmd));
	}
}

static int apply_line(struct change_ctx *x, const char *line, struct berth_error **err)
{
	line += strspn(line, " \t");
	if (!*line)
		return 0;
	if (!strncasecmp(line, "ONBUILD", 7) && (line[7] == ' ' || line[7] == '\t')) {
		const char *trigger = line + 8 + strspn(line + 8, " \t");
		struct df_instr *t = NULL;
		int r = build_dockerfile_parse_trigger(trigger, &t, err);
		if (r < 0)
			return r;
		build_df_instr_free(t);
		json_t *ob = json_object_get(x->cfg, "OnBuild");
		if (!json_is_array(ob))
			json_object_set_new(x->cfg, "OnBuild", ob = json_array());
		json_array_append_new(ob, json_string(trigger));
		return 0;
	}
	struct df_instr *in = NULL;
	int r = build_dockerfile_parse_trigger(line, &in, err);
	if (r < 0)
		return r;
	r = apply_instr(x, in, err);
	build_df_instr_free(in);
	return r;
}

int engine_config_apply_changes(json_t *config, const char *const *changes, struct berth_error **err)
{
	struct change_ctx x = { .cfg = config };
	env_refresh(&x);
	int r = 0;
	size_t n = 0;
	for (const char *const *l = changes; r >= 0 && l && *l; l++) {
		if (++n > COMMIT_MAX_CHANGES)
			r = berth_error_msg(err, E2BIG, "more than %d changes", COMMIT_MAX_CHANGES);
		else
			r = apply_line(&x, *l, err);
	}
	strv_free(x.env);
	return r < 0 ? berth_error_wrap(err, r, "invalid changes") : 0;
}

/* The new image's config: the container's Config, the body's non-null fields, then the changes. */
static int commit_config(const struct fsop *op, const struct engine_commit_opts *o, json_t **ret,
			 struct berth_error **err)
{
	_cleanup_json_ json_t *cfg = json_deep_copy(op->config ? op->config : json_object());
	const char *k;
	json_t *v;
	if (o->config && !json_is_object(o->config))
		return berth_error_msg(err, EINVAL, "commit config: expected object");
	json_object_foreach ((json_t *)o->config, k, v)
		if (!json_is_null(v))
			json_object_set(cfg, k, v);
	int r = engine_config_apply_changes(cfg, o->changes, err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(cfg);
	return 0;
}

static char *created_by(const json_t *cfg)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(cfg, "Cmd"), i, v) {
		if (i)
			strbuf_addch(&sb, ' ');
		strbuf_addstr(&sb, json_string_value(v) ?: "");
	}
	return strbuf_detach(&sb, NULL);
}

static int commit_locked(struct engine *e, struct fsop *op, const struct engine_commit_opts *o, char **ret_id,
			 struct berth_error **err)
{
	if (!e->img->commit)
		return berth_error_msg(err, ENOTSUP, "the image store cannot commit containers");
	_cleanup_json_ json_t *cfg = NULL;
	int r = commit_config(op, o, &cfg, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *ref =
	    o->repo && *o->repo ? xasprintf("%s:%s", o->repo, o->tag && *o->tag ? o->tag : "latest") : NULL;
	_cleanup_free_ char *by = created_by(op->config);
	struct engine_image_commit req = { .ref = ref,
					   .config = cfg,
					   .author = o->author && *o->author ? o->author : NULL,
					   .comment = o->comment && *o->comment ? o->comment : NULL,
					   .created_by = by,
					   .exclude = engine_fsop_engine_mountpoints };
	return e->img->commit(e->img_ctx, op->id, &req, ret_id, err);
}

int engine_container_commit(struct engine *e, const char *ref, const struct engine_commit_opts *opts,
			    char **ret_id, struct berth_error **err)
{
	static const struct engine_commit_opts none = { 0 };
	const struct engine_commit_opts *o = opts ? opts : &none;
	/* pause first (it takes the op lock itself); only undo a pause we made */
	bool paused = o->pause && engine_container_pause(e, ref, true, NULL) >= 0;
	struct fsop op;
	int r = engine_fsop_begin(e, ref, true, &op, err);
	if (r >= 0)
		r = commit_locked(e, &op, o, ret_id, err);
	engine_fsop_end(&op);
	if (paused)
		engine_container_pause(e, ref, false, NULL);
	if (r >= 0) {
		pthread_mutex_lock(&e->lock);
		struct container *c = NULL;
		if (engine_container_find_locked(e, ref, &c, NULL) >= 0) {
			engine_container_event(e, c, "commit", NULL);
			engine_container_unref(c);
		}
		pthread_mutex_unlock(&e->lock);
	}
	return r;
}
