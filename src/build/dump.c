/*
 * dump.c - JSON views of a parsed Dockerfile and of a build plan, printed by
 * `berth build-tool parse|plan` and compared by the integration tests.
 */
#include "build/build-internal.h"
#include "common/strv.h"

static json_t *mount_json(const char *spec)
{
	struct df_mount m;
	if (build_df_mount_parse(spec, &m, NULL) < 0)
		return json_string(spec);
	json_t *j = json_pack("{s:s,s:b}", "type", build_df_mount_type_name(m.type), "readonly", m.readonly);
	const char *keys[] = { "from", "source", "target", "id", "sharing", "env" };
	const char *vals[] = { m.from, m.source, m.target, m.id, m.sharing, m.env };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (vals[i])
			json_object_set_new(j, keys[i], json_string(vals[i]));
	if (m.required)
		json_object_set_new(j, "required", json_true());
	if (m.mode >= 0)
		json_object_set_new(j, "mode", json_integer(m.mode));
	if (m.uid >= 0)
		json_object_set_new(j, "uid", json_integer(m.uid));
	if (m.gid >= 0)
		json_object_set_new(j, "gid", json_integer(m.gid));
	if (m.size >= 0)
		json_object_set_new(j, "size", json_integer(m.size));
	build_df_mount_done(&m);
	return j;
}

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

static void set_int(json_t *o, const char *k, int64_t v)
{
	if (v)
		json_object_set_new(o, k, json_integer(v));
}

static void set_true(json_t *o, const char *k, bool v)
{
	if (v)
		json_object_set_new(o, k, json_true());
}

static json_t *instr_json(const struct df_instr *in)
{
	json_t *j = json_pack("{s:s,s:i,s:i,s:s,s:b,s:o}", "cmd", build_df_cmd_name(in->cmd), "line",
			      in->line, "end_line", in->end_line, "original", in->original, "json", in->json,
			      "args", strv_to_json(in->args));
	if (in->flags[0])
		json_object_set_new(j, "flags", strv_to_json(in->flags));
	if (in->n_heredocs) {
		json_t *h = json_array();
		for (size_t i = 0; i < in->n_heredocs; i++) {
			const struct df_heredoc *d = &in->heredocs[i];
			json_array_append_new(h, json_pack("{s:s,s:s,s:b,s:b,s:i}", "name", d->name,
							   "content", d->content, "expand", d->expand,
							   "chomp", d->chomp, "fd", (int)d->fd));
		}
		json_object_set_new(j, "heredocs", h);
	}
	const struct df_opts *o = &in->opts;
	set_str(j, "platform", o->platform);
	set_str(j, "from", o->from);
	set_str(j, "chown", o->chown);
	set_str(j, "chmod", o->chmod);
	set_str(j, "checksum", o->checksum);
	set_true(j, "link", o->link);
	set_true(j, "parents", o->parents);
	set_true(j, "keep_git_dir", o->keep_git_dir);
	if (o->exclude)
		json_object_set_new(j, "exclude", strv_to_json(o->exclude));
	if (o->mounts) {
		json_t *m = json_array();
		for (char **s = o->mounts; *s; s++)
			json_array_append_new(m, mount_json(*s));
		json_object_set_new(j, "mounts", m);
	}
	set_str(j, "network", o->network);
	set_str(j, "security", o->security);
	set_int(j, "interval", o->interval);
	set_int(j, "timeout", o->timeout);
	set_int(j, "start_period", o->start_period);
	set_int(j, "start_interval", o->start_interval);
	set_int(j, "retries", o->retries);
	if (in->trigger)
		json_object_set_new(j, "trigger", instr_json(in->trigger));
	set_str(j, "expression", in->expression);
	return j;
}

json_t *build_dockerfile_to_json(const struct dockerfile *df)
{
	char esc[2] = { df->escape, 0 };
	json_t *meta = json_array(), *stages = json_array();
	for (size_t i = 0; i < df->n_meta; i++)
		json_array_append_new(meta, instr_json(&df->instrs[i]));
	for (size_t i = 0; i < df->n_stages; i++) {
		const struct df_stage *s = &df->stages[i];
		json_t *ins = json_array();
		json_array_append_new(ins, instr_json(&df->instrs[s->from]));
		for (size_t k = 0; k < s->n; k++)
			json_array_append_new(ins, instr_json(&df->instrs[s->first + k]));
		json_t *js = json_pack("{s:s,s:o}", "base", s->base, "instructions", ins);
		set_str(js, "name", s->name);
		set_str(js, "platform", s->platform);
		json_array_append_new(stages, js);
	}
	json_t *j = json_pack("{s:s,s:o,s:o,s:o}", "escape", esc, "warnings", strv_to_json(df->warnings),
			      "meta_args", meta, "stages", stages);
	set_str(j, "syntax", df->syntax);
	set_str(j, "check", df->check);
	return j;
}

static const char *const op_names[] = { "none", "run", "copy", "mkdir" };
static const char *const kind_names[] = { "context", "stage", "image", "heredoc", "url" };
static const char *const base_names[] = { "scratch", "image", "stage" };

static json_t *copy_json(const struct build_plan *p, const struct plan_copy *c)
{
	json_t *j = json_pack("{s:b,s:s,s:o,s:s}", "add", c->add, "kind", kind_names[c->kind], "srcs",
			      strv_to_json(c->srcs), "dest", c->dest);
	set_str(j, "chown", c->chown);
	set_str(j, "chmod", c->chmod);
	set_str(j, "checksum", c->checksum);
	set_true(j, "link", c->link);
	set_true(j, "parents", c->parents);
	if (c->excludes && c->excludes[0])
		json_object_set_new(j, "exclude", strv_to_json(c->excludes));
	if (c->from_stage >= 0)
		json_object_set_new(j, "from_stage", json_integer(c->from_stage));
	set_str(j, "from_image", c->from_image);
	if (c->n_inline) {
		json_t *in = json_object();
		for (size_t i = 0; i < c->n_inline; i++)
			json_object_set_new(in, c->inline_names[i], json_string(c->inline_data[i]));
		json_object_set_new(j, "inline", in);
	}
	if (c->kind == SRC_CONTEXT && c->srcs[0]) {
		json_t *files = json_array();
		for (size_t i = 0; i < c->n_matches; i++) {
			const struct ctx_match *m = &c->matches[i];
			if (m->entry != SIZE_MAX)
				json_array_append_new(files, json_string(m->path));
		}
		json_object_set_new(j, "files", files);
		if (c->extract && c->extract[0])
			json_object_set_new(j, "extract", strv_to_json(c->extract));
	}
	return j;
}

static json_t *step_json(const struct build_plan *p, const struct plan_step *s)
{
	json_t *j = json_pack("{s:s,s:i,s:s,s:s,s:s}", "instruction", s->in->original, "line", s->in->line,
			      "text", s->text, "op", op_names[s->op], "key", s->key);
	set_true(j, "trigger", s->trigger);
	if (s->op == OP_RUN) {
		json_t *r = json_pack("{s:o,s:o,s:s,s:s,s:s,s:s}", "argv", strv_to_json(s->run.argv), "env",
				      strv_to_json(s->run.env), "user", s->run.user, "workdir",
				      s->run.workdir, "network", s->run.network, "security", s->run.security);
		if (s->run.script_name)
			json_object_set_new(
			    r, "script",
			    json_pack("{s:s,s:s}", "name", s->run.script_name, "data", s->run.script_data));
		if (s->run.n_mounts) {
			json_t *m = json_array();
			for (size_t i = 0; i < s->run.n_mounts; i++)
				json_array_append_new(m, mount_json(s->in->opts.mounts[i]));
			json_object_set_new(r, "mounts", m);
		}
		json_object_set_new(j, "run", r);
	} else if (s->op == OP_COPY) {
		json_object_set_new(j, "copy", copy_json(p, &s->copy));
	} else if (s->op == OP_MKDIR) {
		json_object_set_new(j, "mkdir", json_string(s->mkdir));
	}
	return j;
}

static json_t *stage_json(const struct build_plan *p, size_t i)
{
	const struct plan_stage *s = &p->stages[i];
	json_t *j = json_pack("{s:i,s:b}", "index", (int)i, "needed", s->needed);
	set_str(j, "name", p->df->stages[i].name);
	if (!s->needed)
		return j;
	json_t *deps = json_array(), *steps = json_array();
	for (size_t d = 0; d < s->n_deps; d++)
		json_array_append_new(deps, json_integer((json_int_t)s->deps[d]));
	for (size_t k = 0; k < s->n_steps; k++)
		json_array_append_new(steps, step_json(p, &s->steps[k]));
	json_object_set_new(j, "wave", json_integer(s->wave));
	json_object_set_new(j, "base", json_string(s->base));
	json_object_set_new(j, "base_kind", json_string(base_names[s->base_kind]));
	set_str(j, "base_id", s->base_id);
	json_object_set_new(j, "platform", json_string(s->platform));
	json_object_set_new(j, "deps", deps);
	json_object_set_new(j, "base_key", json_string(s->base_key));
	json_object_set_new(j, "key", json_string(s->key));
	json_object_set_new(j, "config", json_deep_copy(s->config));
	set_str(j, "author", s->author);
	json_object_set_new(j, "steps", steps);
	return j;
}

json_t *build_plan_to_json(const struct build_plan *p)
{
	json_t *waves = json_array(), *stages = json_array();
	for (size_t w = 0; w < p->n_waves; w++) {
		json_t *a = json_array();
		for (size_t *s = p->waves[w]; *s != SIZE_MAX; s++)
			json_array_append_new(a, json_integer((json_int_t)*s));
		json_array_append_new(waves, a);
	}
	for (size_t i = 0; i < p->n_stages; i++)
		json_array_append_new(stages, stage_json(p, i));
	return json_pack("{s:i,s:i,s:o,s:o,s:o}", "target", (int)p->target, "total_steps", (int)p->n_steps,
			 "waves", waves, "unused_build_args", strv_to_json(p->unused_args), "stages", stages);
}
