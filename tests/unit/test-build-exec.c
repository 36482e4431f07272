/* test-build-exec.c - the executor's step loop, driven by an in-memory
 * backend: order of operations, cache hits, progress events, and no image
 * (and no leaked state) when a step fails. The real backend comes with the
 * engine. */
#include "unit.h"

#include <pthread.h>

#include "build/executor.h"
#include "common/fs.h"
#include "common/strbuf.h"

static size_t strv_len_helper(char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fs_rm_rf_helper(const char *dir)
{
	fs_rm_rf(dir, NULL);
}

struct fake {
	int next_id;
	int live; /* references the executor holds */
	char *cache_key[64];
	char *cache_state[64];
	size_t n_cache;
	struct strbuf log;    /* operations performed, one per line */
	struct strbuf events; /* progress events as JSON lines */
	char *committed;      /* state committed */
	json_t *config;       /* image config committed */
	char **tags;
	const char *fail_run; /* fail a RUN whose command contains this */
	const char *seen_src_state;
};

static char *mk(struct fake *f, const char *parent, const char *what)
{
	f->live++;
	return xasprintf("%s|%s", parent ? parent : "", what);
}

static int fk_resolve(void *be, const char *ref, const char *platform, bool pull, char **ret_id,
		      json_t **ret_config, struct berth_error **err)
{
	struct fake *f = be;
	strbuf_addf(&f->log, "resolve %s%s\n", ref, pull ? " pull" : "");
	if (streq(ref, "missing"))
		return berth_error_msg(err, ENOENT, "pull access denied for '%s'", ref);
	*ret_id = xasprintf("sha256:%s", ref);
	*ret_config = json_pack("{s:[s]}", "Env", "FROM_BASE=1");
	return 0;
}

static int fk_from_image(void *be, const char *image_id, char **ret, struct berth_error **err)
{
	struct fake *f = be;
	strbuf_addf(&f->log, "from %s\n", image_id ? image_id : "scratch");
	*ret = mk(f, NULL, image_id ? image_id : "scratch");
	return 0;
}

static int fk_run(void *be, const char *state, const struct plan_run *run, const char *const *mounts,
		  build_output_fn out, void *out_ud, char **ret, struct berth_error **err)
{
	struct fake *f = be;
	const char *cmd = run->argv[strv_len_helper(run->argv) - 1];
	strbuf_addf(&f->log, "run %s\n", cmd);
	out(out_ud, "output line\n");
	if (f->fail_run && strstr(cmd, f->fail_run))
		return berth_error_msg(err, EIO, "the command '%s' returned a non-zero code: 1", cmd);
	if (run->n_mounts && mounts[0])
		strbuf_addf(&f->log, "mount-from %s\n", mounts[0]);
	*ret = mk(f, state, cmd);
	return 0;
}

static int fk_copy(void *be, const char *state, const struct build_copy_req *req, char **ret,
		   struct berth_error **err)
{
	struct fake *f = be;
	strbuf_addf(&f->log, "copy %s%s\n", req->copy->dest, req->src_state ? " from-stage" : "");
	if (req->src_state)
		f->seen_src_state = "yes";
	if (req->copy->kind == SRC_CONTEXT)
		assert_non_null(req->ctx);
	*ret = mk(f, state, req->copy->dest);
	return 0;
}

static int fk_mkdir(void *be, const char *state, const char *path, char **ret, struct berth_error **err)
{
	struct fake *f = be;
	strbuf_addf(&f->log, "mkdir %s\n", path);
	*ret = mk(f, state, path);
	return 0;
}

static int fk_cache_get(void *be, const char *key, char **ret, struct berth_error **err)
{
	struct fake *f = be;
	for (size_t i = 0; i < f->n_cache; i++)
		if (streq(f->cache_key[i], key)) {
			f->live++;
			*ret = xstrdup(f->cache_state[i]);
			return 1;
		}
	return 0;
}

static int fk_cache_put(void *be, const char *key, const char *state, struct berth_error **err)
{
	struct fake *f = be;
	assert_true(f->n_cache < 64);
	f->cache_key[f->n_cache] = xstrdup(key);
	f->cache_state[f->n_cache++] = xstrdup(state);
	return 0;
}

static int fk_commit(void *be, const char *state, json_t *cfg, char **ret, struct berth_error **err)
{
	struct fake *f = be;
	free(f->committed);
	f->committed = xstrdup(state);
	json_decref(f->config);
	f->config = json_incref(cfg);
	char d[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, state, strlen(state), d);
	*ret = xstrdup(d);
	return 0;
}

static int fk_tag(void *be, const char *id, const char *ref, struct berth_error **err)
{
	struct fake *f = be;
	size_t n = 0;
	while (f->tags && f->tags[n])
		n++;
	f->tags = xrealloc(f->tags, (n + 2) * sizeof(char *));
	f->tags[n] = xstrdup(ref);
	f->tags[n + 1] = NULL;
	return 0;
}

static int fk_retain(void *be, const char *state, char **ret, struct berth_error **err)
{
	struct fake *f = be;
	f->live++;
	*ret = xstrdup(state);
	return 0;
}

static void fk_release(void *be, const char *state)
{
	struct fake *f = be;
	f->live--;
}

static const struct build_backend_ops fake_ops = {
	.resolve_image = fk_resolve,
	.state_from_image = fk_from_image,
	.run = fk_run,
	.copy = fk_copy,
	.mkdir = fk_mkdir,
	.cache_get = fk_cache_get,
	.cache_put = fk_cache_put,
	.commit = fk_commit,
	.tag = fk_tag,
	.retain = fk_retain,
	.release = fk_release,
};

/* The same backend made thread-safe with one lock, for parallel stages. */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
#define LOCKED(call)                              \
	({                                        \
		pthread_mutex_lock(&fake_lock);   \
		__typeof__(call) _r = (call);     \
		pthread_mutex_unlock(&fake_lock); \
		_r;                               \
	})

static int mt_from_image(void *be, const char *id, char **ret, struct berth_error **err)
{
	return LOCKED(fk_from_image(be, id, ret, err));
}
static int mt_run(void *be, const char *state, const struct plan_run *run, const char *const *mounts,
		  build_output_fn out, void *out_ud, char **ret, struct berth_error **err)
{
	return LOCKED(fk_run(be, state, run, mounts, out, out_ud, ret, err));
}
static int mt_copy(void *be, const char *state, const struct build_copy_req *req, char **ret,
		   struct berth_error **err)
{
	return LOCKED(fk_copy(be, state, req, ret, err));
}
static int mt_mkdir(void *be, const char *state, const char *path, char **ret, struct berth_error **err)
{
	return LOCKED(fk_mkdir(be, state, path, ret, err));
}
static int mt_cache_get(void *be, const char *key, char **ret, struct berth_error **err)
{
	return LOCKED(fk_cache_get(be, key, ret, err));
}
static int mt_cache_put(void *be, const char *key, const char *state, struct berth_error **err)
{
	return LOCKED(fk_cache_put(be, key, state, err));
}
static int mt_retain(void *be, const char *state, char **ret, struct berth_error **err)
{
	return LOCKED(fk_retain(be, state, ret, err));
}
static void mt_release(void *be, const char *state)
{
	pthread_mutex_lock(&fake_lock);
	fk_release(be, state);
	pthread_mutex_unlock(&fake_lock);
}

static const struct build_backend_ops fake_ops_mt = {
	.resolve_image = fk_resolve,
	.state_from_image = mt_from_image,
	.run = mt_run,
	.copy = mt_copy,
	.mkdir = mt_mkdir,
	.cache_get = mt_cache_get,
	.cache_put = mt_cache_put,
	.commit = fk_commit,
	.tag = fk_tag,
	.retain = mt_retain,
	.release = mt_release,
	.thread_safe = true,
};

static void fake_done(struct fake *f)
{
	for (size_t i = 0; i < f->n_cache; i++) {
		free(f->cache_key[i]);
		free(f->cache_state[i]);
	}
	strbuf_release(&f->log);
	strbuf_release(&f->events);
	free(f->committed);
	json_decref(f->config);
	strv_free(f->tags);
}

static void on_event(void *ud, enum build_event ev, const char *text)
{
	struct fake *f = ud;
	_cleanup_free_ char *line = build_event_json(ev, text);
	strbuf_addstr(&f->events, line);
}

struct built {
	struct dockerfile *df;
	struct build_plan *plan;
	struct build_context *ctx;
};

static void built_done(struct built *b)
{
	build_plan_free(b->plan);
	build_context_free(b->ctx);
	build_dockerfile_free(b->df);
}

static const char *DF =
    "FROM scratch AS build\nWORKDIR /src\nCOPY . .\nRUN make\n"
    "FROM scratch\nENV A=1\nCOPY --from=build /src/out /app\nRUN --mount=from=build,target=/m ls\n"
    "CMD [\"/app\"]\n";

static void make_plan(struct built *b, const char *text, char *ctxdir)
{
	assert_int_equal(build_dockerfile_parse(text, strlen(text), NULL, &b->df, NULL), 0);
	assert_int_equal(build_context_open_dir(ctxdir, NULL, &b->ctx, NULL), 0);
	_cleanup_error_ struct berth_error *err = NULL;
	if (build_plan_new(b->df, b->ctx, NULL, &b->plan, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("plan: %s", m);
	}
}

static int run_build(struct fake *f, struct built *b, bool no_cache, char **id, struct berth_error **err)
{
	struct build_backend be = { .ops = &fake_ops, .data = f };
	char *tags[] = { (char *)"app:latest", (char *)"app:v1", NULL };
	struct build_exec_opts o = {
		.no_cache = no_cache, .tags = tags, .event = on_event, .event_userdata = f
	};
	strbuf_reset(&f->log);
	strbuf_reset(&f->events);
	return build_execute(b->plan, b->ctx, &be, &o, id, err);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_build_and_rebuild_from_cache(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, DF, dir);
	_cleanup_free_ char *id = NULL, *id2 = NULL, *id3 = NULL;
	assert_int_equal(run_build(&f, &b, false, &id, NULL), 0);
	assert_string_equal(f.log.buf, "from scratch\nmkdir /src\ncopy /src/\nrun make\nfrom scratch\n"
				       "copy /app from-stage\nrun ls\nmount-from |scratch|/src|/src/|make\n");
	assert_int_equal(f.live, 0);
	assert_non_null(id);
	assert_string_equal(f.tags[0], "app:latest");
	assert_string_equal(f.tags[1], "app:v1");
	assert_non_null(strstr(f.events.buf, "{\"stream\":\"Step 1/9 : FROM scratch AS build\\n\"}\n"));
	assert_non_null(strstr(f.events.buf, "Step 9/9 : CMD [\\\"/app\\\"]"));
	assert_non_null(strstr(f.events.buf, "output line"));
	assert_non_null(strstr(f.events.buf, "{\"aux\":{\"ID\":\"sha256:"));
	assert_non_null(strstr(f.events.buf, "Successfully tagged app:v1"));
	assert_int_equal(count(f.events.buf, "Using cache"), 0);
	/* image config: the plan's config and the history of both stages' steps */
	json_t *cfg = json_object_get(f.config, "config");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cfg, "Cmd"), 0)), "/app");
	assert_int_equal(json_array_size(json_object_get(f.config, "history")), 4);
	assert_true(json_is_true(
	    json_object_get(json_array_get(json_object_get(f.config, "history"), 0), "empty_layer")));
	assert_string_equal(json_string_value(json_object_get(f.config, "os")), "linux");
	/* second build: every filesystem step comes from the cache, same image */
	assert_int_equal(run_build(&f, &b, false, &id2, NULL), 0);
	assert_string_equal(f.log.buf, "from scratch\nfrom scratch\n");
	assert_int_equal(count(f.events.buf, " ---> Using cache"), 5);
	assert_string_equal(id, id2);
	assert_int_equal(f.live, 0);
	/* --no-cache runs everything again */
	assert_int_equal(run_build(&f, &b, true, &id3, NULL), 0);
	assert_int_equal(count(f.log.buf, "run "), 2);
	assert_int_equal(f.live, 0);
	fs_rm_rf_helper(dir);
}

static void test_failing_step_leaves_no_image(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT, .fail_run = "ls" };
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, DF, dir);
	_cleanup_free_ char *id = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(run_build(&f, &b, false, &id, &err) < 0);
	assert_null(id);
	assert_null(f.committed);
	assert_null(f.tags);
	assert_int_equal(f.live, 0);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "Dockerfile:8: RUN --mount=from=build,target=/m ls: the command 'ls' returned "
			       "a non-zero code: 1");
	assert_non_null(strstr(f.events.buf, "{\"errorDetail\":{\"message\":\"Dockerfile:8: RUN"));
	assert_null(strstr(f.events.buf, "Successfully built"));
	/* the steps before the failure were cached: fixing the failure reuses them */
	f.fail_run = NULL;
	_cleanup_free_ char *id2 = NULL;
	assert_int_equal(run_build(&f, &b, false, &id2, NULL), 0);
	assert_string_equal(f.log.buf,
			    "from scratch\nfrom scratch\nrun ls\nmount-from |scratch|/src|/src/|make\n");
	assert_int_equal(f.live, 0);
	fs_rm_rf_helper(dir);
}

static void test_remote_add_without_network_is_clear_error(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, "FROM scratch\nADD https://example.org/x.tgz /x/\n", dir);
	_cleanup_free_ char *id = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(run_build(&f, &b, false, &id, &err), -ENOTSUP);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(strstr(
	    m, "Dockerfile:2: ADD https://example.org/x.tgz /x/: remote ADD sources need network access"));
	assert_int_equal(f.live, 0);
	fs_rm_rf_helper(dir);
}

static void test_cancelled_build_commits_and_tags_nothing(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, DF, dir);
	atomic_bool cancel = true;
	struct build_backend be = { .ops = &fake_ops, .data = &f };
	char *tags[] = { (char *)"app:latest", NULL };
	struct build_exec_opts o = {
		.tags = tags, .event = on_event, .event_userdata = &f, .cancel = &cancel
	};
	_cleanup_free_ char *id = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_execute(b.plan, b.ctx, &be, &o, &id, &err), -ECANCELED);
	assert_null(id);
	assert_null(f.committed);
	assert_null(f.tags);
	assert_int_equal(f.live, 0);
	assert_string_equal(f.log.buf, "");
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "build cancelled");
	assert_non_null(strstr(f.events.buf, "{\"errorDetail\":{\"message\":\"build cancelled\"}"));
	fs_rm_rf_helper(dir);
}

static void test_step_lines_name_states_and_full_tags(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, "FROM scratch\nWORKDIR /w\nENV A=1\n", dir);
	struct build_backend be = { .ops = &fake_ops, .data = &f };
	char *tags[] = { (char *)"app", (char *)"reg:5000/x", (char *)"y:v2", NULL };
	struct build_exec_opts o = { .tags = tags, .event = on_event, .event_userdata = &f };
	_cleanup_free_ char *id = NULL;
	assert_int_equal(build_execute(b.plan, b.ctx, &be, &o, &id, NULL), 0);
	/* the WORKDIR step's line names the backend's state (first 12 characters), not a cache key */
	assert_non_null(
	    strstr(f.events.buf, "Step 2/3 : WORKDIR /w\\n\"}\n{\"stream\":\" ---> |scratch|/w\\n"));
	assert_non_null(strstr(f.events.buf, "Successfully tagged app:latest\\n"));
	assert_non_null(strstr(f.events.buf, "Successfully tagged reg:5000/x:latest\\n"));
	assert_non_null(strstr(f.events.buf, "Successfully tagged y:v2\\n"));
	fs_rm_rf_helper(dir);
}

static void test_foreign_platform_run_is_a_clear_error(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_(built_done) struct built b = { 0 };
	const char *foreign = streq(build_host_platform(), "linux/s390x") ? "linux/amd64" : "linux/s390x";
	_cleanup_free_ char *df = xasprintf("FROM --platform=%s base\nRUN true\n", foreign);
	make_plan(&b, df, dir);
	_cleanup_free_ char *id = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(run_build(&f, &b, false, &id, &err), -ENOEXEC);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_non_null(strstr(m, "has no emulation for a foreign architecture"));
	assert_null(strstr(f.log.buf, "run "));
	assert_int_equal(f.live, 0);
	fs_rm_rf_helper(dir);
}

static void test_event_json_shapes(void **state)
{
	_cleanup_free_ char *s = build_event_json(BUILD_EVENT_STREAM, "Step 1/2 : FROM \"x\"\n");
	assert_string_equal(s, "{\"stream\":\"Step 1/2 : FROM \\\"x\\\"\\n\"}\n");
	_cleanup_free_ char *a = build_event_json(BUILD_EVENT_AUX_ID, "sha256:abc");
	assert_string_equal(a, "{\"aux\":{\"ID\":\"sha256:abc\"}}\n");
	_cleanup_free_ char *e = build_event_json(BUILD_EVENT_ERROR, "boom");
	json_t *j = json_loads(e, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "error")), "boom");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message")),
			    "boom");
	json_decref(j);
}

static void test_build_image_request(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *dfp = xasprintf("%s/Dockerfile", dir);
	const char *text = "FROM base\nMAINTAINER me\nARG USED\nCOPY Dockerfile /\n";
	assert_int_equal(fs_write_file_atomic(dfp, text, strlen(text), 0644, NULL), 0);
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	struct build_context *ctx = NULL;
	assert_int_equal(build_context_open_dir(dir, "Dockerfile", &ctx, NULL), 0);
	char *args[] = { (char *)"USED=1", (char *)"NOPE=2", NULL };
	char *tags[] = { (char *)"x:1", NULL };
	struct build_request req = { .ctx = ctx,
				     .build_args = args,
				     .tags = tags,
				     .pull = true,
				     .event = on_event,
				     .event_userdata = &f };
	struct build_backend be = { .ops = &fake_ops, .data = &f };
	_cleanup_free_ char *id = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_image(&req, &be, &id, &err), 0);
	assert_string_equal(f.log.buf, "resolve base pull\nfrom sha256:base\ncopy /\n");
	assert_non_null(
	    strstr(f.events.buf, "[WARNING]: Dockerfile:2: MAINTAINER instruction is deprecated"));
	assert_non_null(strstr(f.events.buf, "[Warning] One or more build-args [NOPE] were not consumed"));
	assert_string_equal(
	    json_string_value(json_array_get(json_object_get(json_object_get(f.config, "config"), "Env"), 0)),
	    "FROM_BASE=1");
	assert_string_equal(f.tags[0], "x:1");
	assert_int_equal(f.live, 0);
	/* errors before execution are reported as errorDetail too */
	strbuf_reset(&f.events);
	req.dockerfile_text = "FROM missing\n";
	_cleanup_free_ char *id2 = NULL;
	_cleanup_error_ struct berth_error *err2 = NULL;
	assert_int_equal(build_image(&req, &be, &id2, &err2), -ENOENT);
	assert_non_null(strstr(f.events.buf, "errorDetail"));
	assert_non_null(strstr(f.events.buf, "pull access denied for 'missing'"));
	strbuf_reset(&f.events);
	req.dockerfile_text = "FROM scratch\nRUNN x\n";
	_cleanup_error_ struct berth_error *err3 = NULL;
	assert_int_equal(build_image(&req, &be, &id2, &err3), -EINVAL);
	assert_non_null(strstr(f.events.buf, "Dockerfile:2: unknown instruction: RUNN"));
	build_context_free(ctx);
	fs_rm_rf_helper(dir);
}

static char *sorted_lines(const char *s)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (const char *p = s; *p;) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		v = xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = xstrndup(p, l);
		v[n] = NULL;
		p += l + (e ? 1 : 0);
	}
	qsort(v, n, sizeof(char *), cmp_str);
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s\n", v[i]);
	strv_free(v);
	return strbuf_detach(&sb, NULL);
}

static const char *PAR =
    "FROM scratch AS a\nRUN a1\nRUN a2\nFROM scratch AS b\nRUN b1\nFROM scratch AS c\n"
    "RUN c1\nFROM scratch\nCOPY --from=a /x /y\nCOPY --from=b /x /z\nRUN --mount=from=c,target=/m d1\n";

static int build_with(struct fake *f, struct built *b, const struct build_backend_ops *ops, unsigned jobs,
		      char **id, struct berth_error **err)
{
	struct build_backend be = { .ops = ops, .data = f };
	struct build_exec_opts o = { .jobs = jobs, .event = on_event, .event_userdata = f };
	return build_execute(b->plan, b->ctx, &be, &o, id, err);
}

static void test_parallel_stages_match_sequential_output(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, PAR, dir);
	assert_int_equal(b.plan->n_waves, 2);
	_cleanup_(fake_done) struct fake seq = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_(fake_done) struct fake par = { .log = STRBUF_INIT, .events = STRBUF_INIT };
	_cleanup_free_ char *id1 = NULL, *id2 = NULL;
	assert_int_equal(build_with(&seq, &b, &fake_ops, 4, &id1, NULL), 0); /* not thread-safe: sequential */
	assert_int_equal(build_with(&par, &b, &fake_ops_mt, 4, &id2, NULL), 0);
	assert_string_equal(seq.events.buf, par.events.buf);
	_cleanup_free_ char *l1 = sorted_lines(seq.log.buf), *l2 = sorted_lines(par.log.buf);
	assert_string_equal(l1, l2);
	assert_string_equal(id1, id2);
	assert_int_equal(par.live, 0);
	assert_non_null(strstr(par.events.buf, "Step 11/11 : RUN --mount=from=c,target=/m d1"));
	fs_rm_rf_helper(dir);
}

static void test_parallel_failure_leaves_no_image(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_(built_done) struct built b = { 0 };
	make_plan(&b, PAR, dir);
	_cleanup_(fake_done) struct fake f = { .log = STRBUF_INIT, .events = STRBUF_INIT, .fail_run = "b1" };
	_cleanup_free_ char *id = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_int_equal(build_with(&f, &b, &fake_ops_mt, 3, &id, &err), -EIO);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "Dockerfile:5: RUN b1: the command 'b1' returned a non-zero code: 1");
	assert_null(id);
	assert_null(f.committed);
	assert_int_equal(f.live, 0);
	assert_null(strstr(f.log.buf, "d1"));
	assert_non_null(strstr(f.events.buf, "errorDetail"));
	fs_rm_rf_helper(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_and_rebuild_from_cache),
		cmocka_unit_test(test_failing_step_leaves_no_image),
		cmocka_unit_test(test_remote_add_without_network_is_clear_error),
		cmocka_unit_test(test_cancelled_build_commits_and_tags_nothing),
		cmocka_unit_test(test_step_lines_name_states_and_full_tags),
		cmocka_unit_test(test_foreign_platform_run_is_a_clear_error),
		cmocka_unit_test(test_event_json_shapes),
		cmocka_unit_test(test_build_image_request),
		cmocka_unit_test(test_parallel_stages_match_sequential_output),
		cmocka_unit_test(test_parallel_failure_leaves_no_image),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
