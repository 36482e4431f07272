/*
 * plan.c - stages, dependencies, waves and the global ARG scope of a build
 * plan. Stages are processed depth-first from the target, so a stage is
 * processed after everything it depends on (its base stage, COPY --from,
 * RUN --mount from=) and a dependency found "in progress" is a cycle.
 * Stages never reached are not needed and are never expanded or resolved,
 * like BuildKit, which does not even pull their base images.
 */
#include <stdarg.h>
#include <sys/utsname.h>

#include "build/build-internal.h"
#include "build/shlex.h"
#include "common/digest.h"
#include "common/strbuf.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const proxy_args[] = {
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
	"ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

bool build_plan_is_proxy_arg(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(proxy_args); i++)
		if (streq(proxy_args[i], key))
			return true;
	return false;
}

const char *build_host_platform(void)
{
	struct utsname u;
	if (uname(&u) == 0) {
		if (streq(u.machine, "aarch64"))
			return "linux/arm64";
		if (streq(u.machine, "armv7l"))
			return "linux/arm/v7";
		if (streq(u.machine, "s390x"))
			return "linux/s390x";
		if (streq(u.machine, "ppc64le"))
			return "linux/ppc64le";
		if (streq(u.machine, "riscv64"))
			return "linux/riscv64";
	}
	return "linux/amd64";
}

void build_env_set(char ***env, const char *key, const char *value)
{
	size_t kl = strlen(key);
	for (char **e = *env; e && *e; e++)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=') {
			free(*e);
			*e = xasprintf("%s=%s", key, value);
			return;
		}
	_cleanup_free_ char *kv = xasprintf("%s=%s", key, value);
	strv_add(env, kv);
}

int build_plan_error(struct planner *pl, const struct df_instr *in, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!in)
		return berth_error_msg(pl->err, EINVAL, "%s", msg ? msg : "error");
	return berth_error_msg(pl->err, EINVAL, "%s:%d: %s", pl->df->name, in->line, msg ? msg : "error");
}

int build_plan_expand(struct planner *pl, const struct df_instr *in, char *const *env, const char *word,
		      char **ret)
{
	struct berth_error *e = NULL;
	int r = build_shlex_process_word(word, pl->df->escape, env, 0, ret, &e);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(e);
		berth_error_free(e);
		return build_plan_error(pl, in, "%s", m);
	}
	return 0;
}

const char *build_plan_build_arg(struct planner *pl, const char *key)
{
	const char *found = NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; pl->opts->build_args && pl->opts->build_args[i]; i++) {
		const char *a = pl->opts->build_args[i];
		if (strncmp(a, key, kl) == 0 && a[kl] == '=') {
			pl->arg_used[i] = true;
			found = a + kl + 1;
		}
	}
	return found;
}

char **build_stage_expand_env(const struct stage_state *st)
{
	char **env = strv_dup(st->args);
	json_t *e = json_object_get(st->config, "Env"), *v;
	size_t i;
	json_array_foreach (e, i, v)
		if (json_is_string(v))
			strv_add(&env, json_string_value(v));
	return env;
}

/* --- dependencies -------------------------------------------------------- */

static const char *stage_label(const struct dockerfile *df, size_t i, char buf[32])
{
	if (df->stages[i].name)
		return df->stages[i].name;
	snprintf(buf, 32, "%zu", i);
	return buf;
}

static void add_dep(struct plan_stage *ps, size_t dep)
{
	for (size_t i = 0; i < ps->n_deps; i++)
		if (ps->deps[i] == dep)
			return;
	ps->deps = xrealloc(ps->deps, (ps->n_deps + 1) * sizeof(size_t));
	ps->deps[ps->n_deps++] = dep;
}

int build_plan_depend(struct planner *pl, struct stage_state *st, const struct df_instr *in, const char *name,
		      ssize_t *ret_stage)
{
	ssize_t k = build_dockerfile_find_stage(pl->df, name);
	if (k < 0) {
		char *end;
		errno = 0;
		long idx = strtol(name, &end, 10);
		if (*name && !*end && !errno) {
			if (idx < 0 || (size_t)idx >= pl->df->n_stages)
				return build_plan_error(pl, in, "invalid stage index %ld", idx);
			k = idx;
		}
	}
	*ret_stage = k;
	if (k < 0)
		return 0;
	char buf[32];
	if ((size_t)k == st->index || pl->state[k] == 1)
		return build_plan_error(pl, in, "circular dependency detected on stage: %s",
					stage_label(pl->df, (size_t)k, buf));
	int r = build_plan_stage(pl, (size_t)k);
	if (r < 0)
		return r;
	add_dep(&pl->plan->stages[st->index], (size_t)k);
	return 0;
}

/* --- stage processing ---------------------------------------------------- */

static bool env_has(const json_t *config, const char *key)
{
	size_t i, kl = strlen(key);
	json_t *v;
	json_array_foreach (json_object_get(config, "Env"), i, v) {
		const char *s = json_string_value(v);
		if (s && strncmp(s, key, kl) == 0 && s[kl] == '=')
			return true;
	}
	return false;
}

static json_t *scratch_config(void)
{
	return json_pack("{s:[s],s:s}", "Env", "PATH=" DEFAULT_PATH, "WorkingDir", "/");
}

static void key_of(const char *what, const char *a, const char *b, char out[DIGEST_STRING_MAX])
{
	_cleanup_free_ char *s = xasprintf("%s\n%s\n%s", what, a, b ? b : "");
	digest_buffer(DIGEST_SHA256, s, strlen(s), out);
}

static int stage_base(struct planner *pl, size_t i, struct stage_state *st)
{
	const struct dockerfile *df = pl->df;
	const struct df_stage *ds = &df->stages[i];
	const struct df_instr *from = &df->instrs[ds->from];
	struct plan_stage *ps = &pl->plan->stages[i];
	int r = build_plan_expand(pl, from, pl->plan->meta_env, ds->base, &ps->base);
	if (r < 0)
		return r;
	if (!*ps->base)
		return build_plan_error(pl, from, "base name (%s) should not be blank", ds->base);
	if (ds->platform) {
		if ((r = build_plan_expand(pl, from, pl->plan->meta_env, ds->platform, &ps->platform)) < 0)
			return r;
	} else {
		ps->platform = xstrdup(pl->opts->platform ? pl->opts->platform : build_host_platform());
	}
	ssize_t k = build_dockerfile_find_stage(df, ps->base);
	if (streq(ps->base, "scratch")) {
		ps->base_kind = BASE_SCRATCH;
		st->config = scratch_config();
		key_of("scratch", ps->platform, NULL, ps->base_key);
	} else if (k >= 0 && (size_t)k < i) {
		ps->base_kind = BASE_STAGE;
		ps->base_stage = k;
		if ((r = build_plan_stage(pl, (size_t)k)) < 0)
			return r;
		add_dep(ps, (size_t)k);
		st->config = json_deep_copy(pl->plan->stages[k].config);
		memcpy(ps->base_key, pl->plan->stages[k].key, DIGEST_STRING_MAX);
	} else {
		ps->base_kind = BASE_IMAGE;
		json_t *cfg = NULL;
		if (pl->opts->resolve) {
			if ((r = pl->opts->resolve(pl->opts->userdata, ps->base, ps->platform, &ps->base_id,
						   &cfg, pl->err)) < 0)
				return berth_error_wrap(pl->err, r, "%s:%d: resolve image '%s'", df->name,
							from->line, ps->base);
		} else {
			ps->base_id = xstrdup(ps->base);
		}
		st->config = cfg && json_is_object(cfg) ? cfg : json_object();
		if (cfg && !json_is_object(cfg))
			json_decref(cfg);
		/* like BuildKit and the classic builder: PATH is always set */
		if (!env_has(st->config, "PATH")) {
			json_t *env = json_object_get(st->config, "Env");
			if (!json_is_array(env)) {
				env = json_array();
				json_object_set_new(st->config, "Env", env);
			}
			json_array_append_new(env, json_string("PATH=" DEFAULT_PATH));
		}
		key_of("image", ps->base_id, ps->platform, ps->base_key);
	}
	memcpy(st->key, ps->base_key, DIGEST_STRING_MAX);
	return 0;
}

static struct plan_step *new_step(struct plan_stage *ps)
{
	ps->steps = xrealloc(ps->steps, (ps->n_steps + 1) * sizeof(*ps->steps));
	struct plan_step *s = &ps->steps[ps->n_steps++];
	memset(s, 0, sizeof(*s));
	s->copy.from_stage = -1;
	return s;
}

/* ONBUILD triggers of the base run first; they are not inherited further. */
static int replay_triggers(struct planner *pl, struct stage_state *st, struct plan_stage *ps)
{
	json_t *ob = json_object_get(st->config, "OnBuild");
	if (!json_is_array(ob) || json_array_size(ob) == 0) {
		json_object_del(st->config, "OnBuild");
		return 0;
	}
	json_incref(ob);
	json_object_del(st->config, "OnBuild");
	size_t i;
	json_t *v;
	int r = 0;
	json_array_foreach (ob, i, v) {
		struct df_instr *t = NULL;
		if (!json_is_string(v)) {
			r = build_plan_error(pl, &pl->df->instrs[pl->df->stages[st->index].from],
					     "invalid ONBUILD trigger");
			break;
		}
		if ((r = build_dockerfile_parse_trigger(json_string_value(v), &t, pl->err)) < 0) {
			r = berth_error_wrap(pl->err, r, "base image '%s'", ps->base);
			break;
		}
		struct build_plan *p = pl->plan;
		p->triggers = xrealloc(p->triggers, (p->n_triggers + 1) * sizeof(*p->triggers));
		p->triggers[p->n_triggers++] = t;
		struct plan_step *s = new_step(ps);
		s->in = t;
		s->trigger = true;
		if ((r = build_plan_apply(pl, st, s)) < 0)
			break;
	}
	json_decref(ob);
	return r;
}

int build_plan_stage(struct planner *pl, size_t i)
{
	if (pl->state[i] == 2)
		return 0;
	pl->state[i] = 1;
	const struct df_stage *ds = &pl->df->stages[i];
	struct plan_stage *ps = &pl->plan->stages[i];
	ps->needed = true;
	ps->name = ds->name ? xstrdup(ds->name) : NULL;
	struct stage_state st = { .index = i };
	int r = stage_base(pl, i, &st);
	if (r >= 0)
		r = replay_triggers(pl, &st, ps);
	for (size_t j = 0; r >= 0 && j < ds->n; j++) {
		struct plan_step *s = new_step(ps);
		s->in = &pl->df->instrs[ds->first + j];
		r = build_plan_apply(pl, &st, s);
	}
	strv_free(st.args);
	if (r < 0) {
		json_decref(st.config);
		return r;
	}
	ps->config = st.config;
	memcpy(ps->key, st.key, DIGEST_STRING_MAX);
	ps->wave = 0;
	for (size_t d = 0; d < ps->n_deps; d++)
		ps->wave = MAX(ps->wave, pl->plan->stages[ps->deps[d]].wave + 1);
	pl->state[i] = 2;
	return 0;
}

/* --- cycles ----------------------------------------------------------------- */

/*
 * BuildKit checks every stage, needed or not, for cycles through COPY --from
 * and RUN --mount from= before planning, and names the first stage (in file
 * order) whose walk finds one. Names are expanded with the global ARGs only.
 */
struct dep_edge {
	size_t to;
	int line;
};

struct dep_graph {
	struct dep_edge **e; /* per stage */
	size_t *n;
	uint8_t *visited, *onpath;
	size_t start;   /* the stage the current walk started from */
	int start_line; /* the line of the edge leaving it */
};

static void graph_add(struct planner *pl, struct dep_graph *g, size_t from, const struct df_instr *in,
		      const char *raw)
{
	_cleanup_free_ char *name = NULL;
	if (build_shlex_process_word(raw, pl->df->escape, pl->plan->meta_env, 0, &name, NULL) < 0)
		return;
	ssize_t k = build_dockerfile_find_stage(pl->df, name);
	if (k < 0) {
		char *end;
		long idx = strtol(name, &end, 10);
		if (!*name || *end || idx < 0 || (size_t)idx >= pl->df->n_stages)
			return;
		k = idx;
	}
	g->e[from] = xrealloc(g->e[from], (g->n[from] + 1) * sizeof(struct dep_edge));
	g->e[from][g->n[from]++] = (struct dep_edge){ .to = (size_t)k, .line = in->line };
}

static int graph_visit(struct dep_graph *g, size_t s)
{
	if (g->visited[s])
		return 0;
	g->visited[s] = g->onpath[s] = 1;
	for (size_t i = 0; i < g->n[s]; i++) {
		if (s == g->start)
			g->start_line = g->e[s][i].line;
		if (g->onpath[g->e[s][i].to])
			return g->e[s][i].line;
		int line = graph_visit(g, g->e[s][i].to);
		if (line)
			return line;
	}
	g->onpath[s] = 0;
	return 0;
}

static int check_cycles(struct planner *pl)
{
	const struct dockerfile *df = pl->df;
	size_t n = df->n_stages;
	struct dep_graph g = { .e = xcalloc(n, sizeof(struct dep_edge *)),
			       .n = xcalloc(n, sizeof(size_t)),
			       .visited = xcalloc(n, 1),
			       .onpath = xcalloc(n, 1) };
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < df->stages[i].n; j++) {
			const struct df_instr *in = &df->instrs[df->stages[i].first + j];
			if ((in->cmd == DF_COPY || in->cmd == DF_ADD) && in->opts.from)
				graph_add(pl, &g, i, in, in->opts.from);
			for (char **m = in->opts.mounts; m && *m; m++) {
				struct df_mount mnt;
				if (build_df_mount_parse(*m, &mnt, NULL) >= 0 && mnt.from)
					graph_add(pl, &g, i, in, mnt.from);
				build_df_mount_done(&mnt);
			}
		}
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		g.start = i;
		if (graph_visit(&g, i)) {
			int line = g.start_line;
			char buf[32];
			if (df->stages[i].name)
				snprintf(buf, sizeof(buf), "%s", df->stages[i].name);
			else
				snprintf(buf, sizeof(buf), "stage-%zu", i);
			r = berth_error_msg(pl->err, EINVAL,
					    "%s:%d: circular dependency detected on stage: %s", df->name,
					    line, buf);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(g.e[i]);
	free(g.e);
	free(g.n);
	free(g.visited);
	free(g.onpath);
	return r;
}

/* --- the plan ------------------------------------------------------------ */

static void meta_platform_args(char ***env, const char *target)
{
	const char *host = build_host_platform();
	const char *plats[2] = { target, host };
	const char *prefix[2] = { "TARGET", "BUILD" };
	for (int k = 0; k < 2; k++) {
		_cleanup_free_ char *p = xstrdup(plats[k]);
		char *os = p, *arch = strchr(p, '/'), *variant = NULL;
		if (arch) {
			*arch++ = '\0';
			variant = strchr(arch, '/');
			if (variant)
				*variant++ = '\0';
		}
		_cleanup_free_ char *k1 = xasprintf("%sPLATFORM", prefix[k]),
				    *k2 = xasprintf("%sOS", prefix[k]), *k3 = xasprintf("%sARCH", prefix[k]),
				    *k4 = xasprintf("%sVARIANT", prefix[k]);
		build_env_set(env, k1, plats[k]);
		build_env_set(env, k2, os);
		build_env_set(env, k3, arch ? arch : "");
		build_env_set(env, k4, variant ? variant : "");
	}
}

static int plan_meta_args(struct planner *pl)
{
	struct build_plan *p = pl->plan;
	p->meta_env = xcalloc(1, sizeof(char *));
	meta_platform_args(&p->meta_env, pl->opts->platform ? pl->opts->platform : build_host_platform());
	for (size_t i = 0; i < pl->df->n_meta; i++) {
		const struct df_instr *in = &pl->df->instrs[i];
		for (char **a = in->args; *a; a++) {
			char *eq = strchr(*a, '=');
			_cleanup_free_ char *name = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
			_cleanup_free_ char *value = NULL;
			const char *given = build_plan_build_arg(pl, name);
			if (given)
				value = xstrdup(given);
			else if (eq && build_plan_expand(pl, in, p->meta_env, eq + 1, &value) < 0)
				return -EINVAL;
			if (value)
				build_env_set(&p->meta_env, name, value);
		}
	}
	return 0;
}

static void plan_waves(struct build_plan *p)
{
	int max = -1;
	for (size_t i = 0; i < p->n_stages; i++)
		if (p->stages[i].needed)
			max = MAX(max, p->stages[i].wave);
	p->n_waves = (size_t)(max + 1);
	p->waves = xcalloc(p->n_waves ? p->n_waves : 1, sizeof(size_t *));
	for (size_t w = 0; w < p->n_waves; w++) {
		size_t n = 0;
		p->waves[w] = xcalloc(p->n_stages + 1, sizeof(size_t));
		for (size_t i = 0; i < p->n_stages; i++)
			if (p->stages[i].needed && p->stages[i].wave == (int)w)
				p->waves[w][n++] = i;
		p->waves[w][n] = SIZE_MAX;
	}
	p->n_steps = 0;
	for (size_t i = 0; i < p->n_stages; i++)
		if (p->stages[i].needed)
			p->n_steps += 1 + p->stages[i].n_steps;
}

static void plan_labels_and_unused(struct planner *pl)
{
	struct build_plan *p = pl->plan;
	json_t *cfg = p->stages[p->target].config;
	for (char *const *l = pl->opts->labels; l && *l; l++) {
		const char *eq = strchr(*l, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*l, (size_t)(eq - *l)) : xstrdup(*l);
		json_t *labels = json_object_get(cfg, "Labels");
		if (!json_is_object(labels)) {
			labels = json_object();
			json_object_set_new(cfg, "Labels", labels);
		}
		json_object_set_new(labels, k, json_string(eq ? eq + 1 : ""));
	}
	p->unused_args = xcalloc(1, sizeof(char *));
	for (size_t i = 0; pl->opts->build_args && pl->opts->build_args[i]; i++) {
		const char *a = pl->opts->build_args[i];
		const char *eq = strchr(a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(a, (size_t)(eq - a)) : xstrdup(a);
		if (!pl->arg_used[i] && !build_plan_is_proxy_arg(k))
			strv_add(&p->unused_args, k);
	}
}

int build_plan_new(const struct dockerfile *df, struct build_context *ctx, const struct build_plan_opts *opts,
		   struct build_plan **ret, struct berth_error **err)
{
	static const struct build_plan_opts none = { 0 };
	if (!opts)
		opts = &none;
	_cleanup_plan_ struct build_plan *p = xcalloc(1, sizeof(*p));
	p->df = df;
	p->n_stages = df->n_stages;
	p->stages = xcalloc(df->n_stages, sizeof(*p->stages));
	for (size_t i = 0; i < df->n_stages; i++)
		p->stages[i].base_stage = -1;
	_cleanup_free_ int *state = xcalloc(df->n_stages, sizeof(int));
	_cleanup_free_ bool *used = xcalloc(strv_length(opts->build_args) + 1, sizeof(bool));
	struct planner pl = {
		.df = df, .ctx = ctx, .opts = opts, .plan = p, .state = state, .arg_used = used, .err = err
	};
	int r = plan_meta_args(&pl);
	if (r >= 0)
		r = check_cycles(&pl);
	if (r < 0)
		return r;
	p->target = df->n_stages - 1;
	if (opts->target) {
		ssize_t t = build_dockerfile_find_stage(df, opts->target);
		if (t < 0)
			return berth_error_msg(err, EINVAL, "target stage '%s' could not be found",
					       opts->target);
		p->target = (size_t)t;
	}
	if ((r = build_plan_stage(&pl, p->target)) < 0)
		return r;
	plan_waves(p);
	plan_labels_and_unused(&pl);
	*ret = TAKE_PTR(p);
	return 0;
}

void build_plan_step_done(struct plan_step *s)
{
	free(s->text);
	strv_free(s->run.argv);
	free(s->run.script_name);
	free(s->run.script_data);
	strv_free(s->run.env);
	free(s->run.user);
	free(s->run.workdir);
	free(s->run.network);
	free(s->run.security);
	for (size_t i = 0; i < s->run.n_mounts; i++)
		build_df_mount_done(&s->run.mounts[i]);
	free(s->run.mounts);
	free(s->run.mount_stage);
	struct plan_copy *c = &s->copy;
	strv_free(c->srcs);
	free(c->dest);
	free(c->chown);
	free(c->chmod);
	free(c->checksum);
	strv_free(c->excludes);
	free(c->from_image);
	free(c->from_image_id);
	build_ctx_matches_free(c->matches, c->n_matches);
	strv_free(c->extract);
	strv_free(c->inline_names);
	strv_free(c->inline_data);
	free(s->mkdir);
	json_decref(s->config);
}

struct build_plan *build_plan_free(struct build_plan *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_stages; i++) {
		struct plan_stage *s = &p->stages[i];
		for (size_t j = 0; j < s->n_steps; j++)
			build_plan_step_done(&s->steps[j]);
		free(s->steps);
		free(s->name);
		free(s->base);
		free(s->platform);
		free(s->base_id);
		free(s->deps);
		free(s->author);
		json_decref(s->config);
	}
	free(p->stages);
	for (size_t w = 0; w < p->n_waves; w++)
		free(p->waves[w]);
	free(p->waves);
	strv_free(p->meta_env);
	strv_free(p->unused_args);
	for (size_t i = 0; i < p->n_triggers; i++)
		build_df_instr_free(p->triggers[i]);
	free(p->triggers);
	free(p);
	return NULL;
}
