/*
 * executor.c - the build step loop over a backend (see executor.h). Stages
 * run wave by wave. The stages of a wave are independent by construction;
 * with opts.jobs > 1 and a thread-safe backend they run on threads, their
 * progress buffered and replayed in Dockerfile order after the wave, so the
 * output (step numbers included, which are fixed by the plan) is the same as
 * a sequential build's; sequentially, progress is live.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "build/build-internal.h"
#include "build/executor.h"
#include "common/strbuf.h"

struct exec {
	const struct build_plan *plan;
	const struct build_context *ctx;
	const struct build_backend *be;
	const struct build_exec_opts *o;
	char **final;       /* per stage: its last state, until the build ends */
	size_t *first_step; /* per stage: number of its FROM step ("Step N/M") */
	struct berth_error **err;
};

struct event {
	enum build_event ev;
	char *text;
};

/* One stage being built (possibly on its own thread). */
struct srun {
	struct exec *x;
	size_t stage;
	char *cur;      /* the stage's current state */
	size_t step_no; /* last step number used */
	bool buffer;    /* collect events, flushed in order after the wave */
	struct event *evs;
	size_t n_evs;
	int r;
	struct berth_error *err;
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

static void emit(struct exec *x, struct srun *sr, enum build_event ev, const char *fmt, ...) _printf_(4, 5);
static void emit(struct exec *x, struct srun *sr, enum build_event ev, const char *fmt, ...)
{
	if (!x->o->event)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s)
		return;
	if (sr && sr->buffer) {
		sr->evs = xrealloc(sr->evs, (sr->n_evs + 1) * sizeof(*sr->evs));
		sr->evs[sr->n_evs++] = (struct event){ .ev = ev, .text = s };
		return;
	}
	x->o->event(x->o->event_userdata, ev, s);
	free(s);
}

/* "sha256:0123456789ab..." -> "0123456789ab" */
static const char *short_id(const char *id)
{
	static __thread char buf[13];
	const char *c = strchr(id, ':');
	snprintf(buf, sizeof(buf), "%.12s", c ? c + 1 : id);
	return buf;
}

static void set_cur(struct srun *sr, char *next)
{
	if (sr->cur)
		sr->x->be->ops->release(sr->x->be->data, sr->cur);
	free(sr->cur);
	sr->cur = next;
}

static void run_output(void *ud, const char *text)
{
	struct srun *sr = ud;
	emit(sr->x, sr, BUILD_EVENT_STREAM, "%s", text);
}

/* "linux/arm64/v8" and "linux/arm64" are one platform for running binaries. */
static bool same_os_arch(const char *a, const char *b)
{
	const char *sa = strchr(a, '/'), *sb = strchr(b, '/');
	const char *ea = sa ? strchr(sa + 1, '/') : NULL, *eb = sb ? strchr(sb + 1, '/') : NULL;
	size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
	return la == lb && strncmp(a, b, la) == 0;
}

static int do_op(struct srun *sr, const struct plan_step *s, char **next)
{
	struct exec *x = sr->x;
	const struct build_backend_ops *ops = x->be->ops;
	void *be = x->be->data;
	const char *plat = x->plan->stages[sr->stage].platform;
	switch (s->op) {
	case OP_RUN: {
		if (plat && !same_os_arch(plat, build_host_platform()))
			return berth_error_msg(
			    &sr->err, ENOEXEC,
			    "RUN for platform '%s' on a '%s' host: berth runs build "
			    "steps natively and has no emulation for a foreign architecture",
			    plat, build_host_platform());
		const char **ms = xcalloc(s->run.n_mounts + 1, sizeof(char *));
		for (size_t i = 0; i < s->run.n_mounts; i++)
			ms[i] = s->run.mount_stage[i] >= 0 ? x->final[s->run.mount_stage[i]] : NULL;
		int r = ops->run(be, sr->cur, &s->run, ms, run_output, sr, next, &sr->err);
		free(ms);
		return r;
	}
	case OP_MKDIR: return ops->mkdir(be, sr->cur, s->mkdir, next, &sr->err);
	case OP_COPY: {
		struct build_copy_req req = { .copy = &s->copy, .ctx = x->ctx };
		if (s->copy.kind == SRC_STAGE)
			req.src_state = x->final[s->copy.from_stage];
		if (s->copy.kind == SRC_URL) {
			if (!ops->fetch_urls)
				return berth_error_msg(&sr->err, ENOTSUP,
						       "remote ADD sources need network access, which this "
						       "build does not have: '%s'",
						       s->copy.srcs[0]);
			return ops->fetch_urls(be, sr->cur, &req, next, &sr->err);
		}
		return ops->copy(be, sr->cur, &req, next, &sr->err);
	}
	default: return 0;
	}
}

static bool cancelled(const struct exec *x)
{
	return x->o->cancel && atomic_load(x->o->cancel);
}

static int exec_step(struct srun *sr, const struct plan_step *s)
{
	struct exec *x = sr->x;
	const struct build_backend_ops *ops = x->be->ops;
	if (cancelled(x))
		return berth_error_msg(&sr->err, ECANCELED, "build cancelled");
	emit(x, sr, BUILD_EVENT_STREAM, "Step %zu/%zu : %s\n", ++sr->step_no, x->plan->n_steps,
	     s->in->original);
	if (s->op == OP_NONE) {
		emit(x, sr, BUILD_EVENT_STREAM, " ---> %s\n", short_id(s->key));
		return 0;
	}
	char *next = NULL;
	if (!x->o->no_cache && ops->cache_source) {
		int hit = ops->cache_source(x->be->data, sr->cur, s->key, &next, &sr->err);
		if (hit < 0)
			return hit;
		/* remembered like a step's result (a rebuild without --cache-from hits, prune drops it) */
		if (hit > 0 && (hit = ops->cache_put(x->be->data, s->key, next, &sr->err)) < 0) {
			free(next);
			return hit;
		}
		if (next) {
			set_cur(sr, next);
			emit(x, sr, BUILD_EVENT_STREAM, " ---> Using cache\n ---> %s\n", short_id(next));
			return 0;
		}
	}
	if (!x->o->no_cache) {
		int hit = ops->cache_get(x->be->data, s->key, &next, &sr->err);
		if (hit < 0)
			return hit;
		if (hit > 0) {
			set_cur(sr, next);
			emit(x, sr, BUILD_EVENT_STREAM, " ---> Using cache\n ---> %s\n", short_id(next));
			return 0;
		}
	}
	int r = do_op(sr, s, &next);
	if (r < 0 && cancelled(x)) {
		berth_error_free(sr->err);
		sr->err = NULL;
		return berth_error_msg(&sr->err, ECANCELED, "build cancelled");
	}
	if (r < 0)
		return berth_error_wrap(&sr->err, r, "%s:%d: %s", x->plan->df->name, s->in->line,
					s->in->original);
	r = ops->cache_put(x->be->data, s->key, next, &sr->err);
	set_cur(sr, next);
	if (r < 0)
		return r;
	emit(x, sr, BUILD_EVENT_STREAM, " ---> %s\n", short_id(sr->cur));
	return 0;
}

static int exec_stage(struct srun *sr)
{
	struct exec *x = sr->x;
	size_t i = sr->stage;
	const struct plan_stage *ps = &x->plan->stages[i];
	const struct df_instr *from = &x->plan->df->instrs[x->plan->df->stages[i].from];
	const struct build_backend_ops *ops = x->be->ops;
	sr->step_no = x->first_step[i];
	if (cancelled(x))
		return berth_error_msg(&sr->err, ECANCELED, "build cancelled");
	emit(x, sr, BUILD_EVENT_STREAM, "Step %zu/%zu : %s\n", sr->step_no, x->plan->n_steps, from->original);
	char *st = NULL;
	int r;
	if (ps->base_kind == BASE_STAGE)
		r = ops->retain(x->be->data, x->final[ps->base_stage], &st, &sr->err);
	else
		r = ops->state_from_image(x->be->data, ps->base_kind == BASE_IMAGE ? ps->base_id : NULL, &st,
					  &sr->err);
	if (r < 0)
		return berth_error_wrap(&sr->err, r, "%s:%d: %s", x->plan->df->name, from->line,
					from->original);
	set_cur(sr, st);
	emit(x, sr, BUILD_EVENT_STREAM, " ---> %s\n",
	     short_id(ps->base_kind == BASE_IMAGE   ? ps->base_id
		      : ps->base_kind == BASE_STAGE ? st
						    : ps->base_key));
	for (size_t k = 0; k < ps->n_steps; k++)
		if ((r = exec_step(sr, &ps->steps[k])) < 0)
			return r;
	x->final[i] = TAKE_PTR(sr->cur);
	return 0;
}

/* --- waves ----------------------------------------------------------------- */

struct pool {
	struct srun *runs;
	size_t n;
	atomic_size_t next;
	atomic_bool failed;
};

static void *worker(void *arg)
{
	struct pool *p = arg;
	while (!atomic_load(&p->failed)) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			break;
		p->runs[i].r = exec_stage(&p->runs[i]);
		if (p->runs[i].r < 0)
			atomic_store(&p->failed, true);
	}
	return NULL;
}

/* Run the stages of a wave on up to `jobs` threads (the caller's included). */
static void run_pool(struct pool *p, size_t jobs)
{
	pthread_t *t = xcalloc(jobs, sizeof(pthread_t));
	size_t started = 0;
	for (size_t k = 1; k < jobs; k++)
		if (pthread_create(&t[started], NULL, worker, p) == 0)
			started++;
	worker(p);
	for (size_t k = 0; k < started; k++)
		pthread_join(t[k], NULL);
	free(t);
}

static int exec_wave(struct exec *x, const size_t *stages)
{
	size_t n = 0;
	while (stages[n] != SIZE_MAX)
		n++;
	size_t jobs = x->be->ops->thread_safe && x->o->jobs > 1 ? MIN(x->o->jobs, n) : 1;
	struct pool p = { .runs = xcalloc(n, sizeof(struct srun)), .n = n };
	for (size_t i = 0; i < n; i++)
		p.runs[i] = (struct srun){ .x = x, .stage = stages[i], .buffer = jobs > 1 };
	if (jobs > 1)
		run_pool(&p, jobs);
	else
		for (size_t i = 0; i < n && (p.runs[i].r = exec_stage(&p.runs[i])) >= 0; i++)
			;
	/* Output in Dockerfile order; the first failing stage (in order) reports. */
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		struct srun *sr = &p.runs[i];
		for (size_t k = 0; k < sr->n_evs; k++) {
			x->o->event(x->o->event_userdata, sr->evs[k].ev, sr->evs[k].text);
			free(sr->evs[k].text);
		}
		free(sr->evs);
		set_cur(sr, NULL);
		if (sr->r < 0 && r == 0) {
			r = sr->r;
			if (x->err && !*x->err)
				*x->err = TAKE_PTR(sr->err);
		}
		berth_error_free(sr->err);
	}
	free(p.runs);
	return r;
}

/* The history of stage i (its base stages' first) and the keys of its filesystem steps. */
static void add_history(const struct build_plan *p, size_t i, json_t *hist, json_t *keys)
{
	const struct plan_stage *ps = &p->stages[i];
	if (ps->base_kind == BASE_STAGE)
		add_history(p, (size_t)ps->base_stage, hist, keys);
	for (size_t k = 0; k < ps->n_steps; k++) {
		const struct plan_step *s = &ps->steps[k];
		json_t *h = json_pack("{s:s,s:s}", "created_by", s->text, "comment", "berth build");
		if (s->op == OP_NONE)
			json_object_set_new(h, "empty_layer", json_true());
		else
			json_array_append_new(keys, json_string(s->key));
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
	json_t *hist = json_array(), *keys = json_array();
	add_history(p, p->target, hist, keys);
	json_t *j = json_pack("{s:s,s:s,s:O,s:o,s:o}", "os", plat, "architecture", arch ? arch : "", "config",
			      ps->config, "history", hist, BUILD_CACHE_KEYS, keys);
	if (variant)
		json_object_set_new(j, "variant", json_string(variant));
	if (ps->author)
		json_object_set_new(j, "author", json_string(ps->author));
	return j;
}

static int exec_finish(struct exec *x, char **ret_image_id)
{
	const struct build_backend_ops *ops = x->be->ops;
	if (cancelled(x))
		return berth_error_msg(x->err, ECANCELED, "build cancelled");
	_cleanup_json_ json_t *cfg = image_config(x->plan);
	_cleanup_free_ char *id = NULL;
	int r = ops->commit(x->be->data, x->final[x->plan->target], cfg, &id, x->err);
	if (r < 0)
		return berth_error_wrap(x->err, r, "commit image");
	emit(x, NULL, BUILD_EVENT_AUX_ID, "%s", id);
	emit(x, NULL, BUILD_EVENT_STREAM, "Successfully built %s\n", short_id(id));
	for (char *const *t = x->o->tags; t && *t; t++) {
		if ((r = ops->tag(x->be->data, id, *t, x->err)) < 0)
			return berth_error_wrap(x->err, r, "tag '%s'", *t);
		/* docker names the tag in full: "app" -> "app:latest" */
		const char *slash = strrchr(*t, '/');
		bool tagged = strchr(slash ? slash : *t, ':') || strchr(*t, '@');
		emit(x, NULL, BUILD_EVENT_STREAM, "Successfully tagged %s%s\n", *t, tagged ? "" : ":latest");
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
	x.first_step = xcalloc(plan->n_stages, sizeof(size_t));
	size_t step = 0;
	for (size_t w = 0; w < plan->n_waves; w++)
		for (size_t *s = plan->waves[w]; *s != SIZE_MAX; s++) {
			x.first_step[*s] = step + 1;
			step += 1 + plan->stages[*s].n_steps;
		}
	int r = 0;
	for (size_t w = 0; r >= 0 && w < plan->n_waves; w++)
		r = exec_wave(&x, plan->waves[w]);
	if (r >= 0)
		r = exec_finish(&x, ret_image_id);
	for (size_t i = 0; i < plan->n_stages; i++)
		if (x.final[i]) {
			be->ops->release(be->data, x.final[i]);
			free(x.final[i]);
		}
	free(x.final);
	free(x.first_step);
	if (r < 0 && x.o->event) {
		_cleanup_free_ char *msg = berth_error_string(err ? *err : NULL);
		x.o->event(x.o->event_userdata, BUILD_EVENT_ERROR, msg ? msg : "build failed");
	}
	return r;
}
