/*
 * executor.c - the build step loop over a backend (see executor.h). Stages
 * run wave by wave; within a wave they run one after the other so progress
 * output stays in Dockerfile order (NEEDSWORK: a wave's stages are
 * independent by construction and may run on threads once the backend is
 * thread-safe).
 */
#include <stdarg.h>

#include "build/build-internal.h"
#include "build/executor.h"
#include "common/strbuf.h"

struct exec {
	const struct build_plan *plan;
	const struct build_context *ctx;
	const struct build_backend *be;
	const struct build_exec_opts *o;
	char **final; /* per stage: its last state, until the build ends */
	char *cur;    /* the state of the stage being built */
	size_t step_no;
	struct berth_error **err;
};

char *build_event_json(enum build_event ev, const char *text)
{
	json_t *j;
	switch (ev) {
	case BUILD_EVENT_AUX_ID: j = json_pack("{s:{s:s}}", "aux", "ID", text); break;
	case BUILD_EVENT_ERROR:
		j = json_pack("{s:{s:s},s:s}", "errorDetail", "message", text, "error", text);
		break;
	default: j = json_pack("{s:s}", "stream", text); break;
	}
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(j);
	char *line = xasprintf("%s\n", s ? s : "{}");
	free(s);
	return line;
}

static void emit(struct exec *x, enum build_event ev, const char *fmt, ...) _printf_(3, 4);
static void emit(struct exec *x, enum build_event ev, const char *fmt, ...)
{
	if (!x->o->event)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s)
		x->o->event(x->o->event_userdata, ev, s);
}

/* "sha256:0123456789ab..." -> "0123456789ab" */
static const char *short_id(const char *id)
{
	static __thread char buf[13];
	const char *c = strchr(id, ':');
	snprintf(buf, sizeof(buf), "%.12s", c ? c + 1 : id);
	return buf;
}

static void set_cur(struct exec *x, char *next)
{
	if (x->cur)
		x->be->ops->release(x->be->data, x->cur);
	free(x->cur);
	x->cur = next;
}

static void run_output(void *ud, const char *line)
{
	struct exec *x = ud;
	emit(x, BUILD_EVENT_STREAM, "%s\n", line);
}

static int do_op(struct exec *x, const struct plan_step *s, char **next)
{
	const struct build_backend_ops *ops = x->be->ops;
	void *be = x->be->data;
	switch (s->op) {
	case OP_RUN: {
		const char **ms = xcalloc(s->run.n_mounts + 1, sizeof(char *));
		for (size_t i = 0; i < s->run.n_mounts; i++)
			ms[i] = s->run.mount_stage[i] >= 0 ? x->final[s->run.mount_stage[i]] : NULL;
		int r = ops->run(be, x->cur, &s->run, ms, run_output, x, next, x->err);
		free(ms);
		return r;
	}
	case OP_MKDIR: return ops->mkdir(be, x->cur, s->mkdir, next, x->err);
	case OP_COPY: {
		struct build_copy_req req = { .copy = &s->copy, .ctx = x->ctx };
		if (s->copy.kind == SRC_STAGE)
			req.src_state = x->final[s->copy.from_stage];
		if (s->copy.kind == SRC_URL) {
			if (!ops->fetch_urls)
				return berth_error_msg(x->err, ENOTSUP,
						       "remote ADD sources need network access, which this "
						       "build does not have: '%s'",
						       s->copy.srcs[0]);
			return ops->fetch_urls(be, x->cur, &req, next, x->err);
		}
		return ops->copy(be, x->cur, &req, next, x->err);
	}
	default: return 0;
	}
}

static int exec_step(struct exec *x, const struct plan_step *s)
{
	const struct build_backend_ops *ops = x->be->ops;
	emit(x, BUILD_EVENT_STREAM, "Step %zu/%zu : %s\n", ++x->step_no, x->plan->n_steps, s->in->original);
	if (s->op == OP_NONE) {
		emit(x, BUILD_EVENT_STREAM, " ---> %s\n", short_id(s->key));
		return 0;
	}
	char *next = NULL;
	if (!x->o->no_cache) {
		int hit = ops->cache_get(x->be->data, s->key, &next, x->err);
		if (hit < 0)
			return hit;
		if (hit > 0) {
			set_cur(x, next);
			emit(x, BUILD_EVENT_STREAM, " ---> Using cache\n ---> %s\n", short_id(s->key));
			return 0;
		}
	}
	int r = do_op(x, s, &next);
	if (r < 0)
		return berth_error_wrap(x->err, r, "%s:%d: %s", x->plan->df->name, s->in->line,
					s->in->original);
	r = ops->cache_put(x->be->data, s->key, next, x->err);
	set_cur(x, next);
	if (r < 0)
		return r;
	emit(x, BUILD_EVENT_STREAM, " ---> %s\n", short_id(s->key));
	return 0;
}

static int exec_stage(struct exec *x, size_t i)
{
	const struct plan_stage *ps = &x->plan->stages[i];
	const struct df_instr *from = &x->plan->df->instrs[x->plan->df->stages[i].from];
	const struct build_backend_ops *ops = x->be->ops;
	emit(x, BUILD_EVENT_STREAM, "Step %zu/%zu : %s\n", ++x->step_no, x->plan->n_steps, from->original);
	char *st = NULL;
	int r;
	if (ps->base_kind == BASE_STAGE)
		r = ops->retain(x->be->data, x->final[ps->base_stage], &st, x->err);
	else
		r = ops->state_from_image(x->be->data, ps->base_kind == BASE_IMAGE ? ps->base_id : NULL, &st,
					  x->err);
	if (r < 0)
		return berth_error_wrap(x->err, r, "%s:%d: %s", x->plan->df->name, from->line,
					from->original);
	set_cur(x, st);
	emit(x, BUILD_EVENT_STREAM, " ---> %s\n",
	     short_id(ps->base_kind == BASE_IMAGE ? ps->base_id : ps->base_key));
	for (size_t k = 0; k < ps->n_steps; k++)
		if ((r = exec_step(x, &ps->steps[k])) < 0)
			return r;
	x->final[i] = TAKE_PTR(x->cur);
	return 0;
}

static void add_history(const struct build_plan *p, size_t i, json_t *hist)
{
	const struct plan_stage *ps = &p->stages[i];
	if (ps->base_kind == BASE_STAGE)
		add_history(p, (size_t)ps->base_stage, hist);
	for (size_t k = 0; k < ps->n_steps; k++) {
		const struct plan_step *s = &ps->steps[k];
		json_t *h = json_pack("{s:s,s:s}", "created_by", s->text, "comment", "berth build");
		if (s->op == OP_NONE)
			json_object_set_new(h, "empty_layer", json_true());
		json_array_append_new(hist, h);
	}
}

static json_t *image_config(const struct build_plan *p)
{
	const struct plan_stage *ps = &p->stages[p->target];
	_cleanup_free_ char *plat = xstrdup(ps->platform);
	char *arch = strchr(plat, '/'), *variant = NULL;
	if (arch) {
		*arch++ = '\0';
		if ((variant = strchr(arch, '/')))
			*variant++ = '\0';
	}
	json_t *hist = json_array();
	add_history(p, p->target, hist);
	json_t *j = json_pack("{s:s,s:s,s:O,s:o}", "os", plat, "architecture", arch ? arch : "", "config",
			      ps->config, "history", hist);
	if (variant)
		json_object_set_new(j, "variant", json_string(variant));
	if (ps->author)
		json_object_set_new(j, "author", json_string(ps->author));
	return j;
}

static int exec_finish(struct exec *x, char **ret_image_id)
{
	const struct build_backend_ops *ops = x->be->ops;
	_cleanup_json_ json_t *cfg = image_config(x->plan);
	_cleanup_free_ char *id = NULL;
	int r = ops->commit(x->be->data, x->final[x->plan->target], cfg, &id, x->err);
	if (r < 0)
		return berth_error_wrap(x->err, r, "commit image");
	emit(x, BUILD_EVENT_AUX_ID, "%s", id);
	emit(x, BUILD_EVENT_STREAM, "Successfully built %s\n", short_id(id));
	for (char *const *t = x->o->tags; t && *t; t++) {
		if ((r = ops->tag(x->be->data, id, *t, x->err)) < 0)
			return berth_error_wrap(x->err, r, "tag '%s'", *t);
		emit(x, BUILD_EVENT_STREAM, "Successfully tagged %s\n", *t);
	}
	*ret_image_id = TAKE_PTR(id);
	return 0;
}

int build_execute(const struct build_plan *plan, const struct build_context *ctx,
		  const struct build_backend *be, const struct build_exec_opts *opts, char **ret_image_id,
		  struct berth_error **err)
{
	static const struct build_exec_opts none = { 0 };
	struct exec x = { .plan = plan, .ctx = ctx, .be = be, .o = opts ? opts : &none, .err = err };
	x.final = xcalloc(plan->n_stages, sizeof(char *));
	int r = 0;
	for (size_t w = 0; r >= 0 && w < plan->n_waves; w++)
		for (size_t *s = plan->waves[w]; r >= 0 && *s != SIZE_MAX; s++)
			r = exec_stage(&x, *s);
	if (r >= 0)
		r = exec_finish(&x, ret_image_id);
	set_cur(&x, NULL);
	for (size_t i = 0; i < plan->n_stages; i++)
		if (x.final[i]) {
			be->ops->release(be->data, x.final[i]);
			free(x.final[i]);
		}
	free(x.final);
	if (r < 0 && x.o->event) {
		_cleanup_free_ char *msg = berth_error_string(err ? *err : NULL);
		x.o->event(x.o->event_userdata, BUILD_EVENT_ERROR, msg ? msg : "build failed");
	}
	return r;
}
