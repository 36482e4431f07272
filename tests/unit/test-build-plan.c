/* test-build-plan.c - build plan: ARG/ENV scoping, config, dependencies,
 * target pruning, waves, cache keys. */
#include "unit.h"

#include "build/plan.h"
#include "common/fs.h"
#include "common/strbuf.h"

static struct dockerfile *parse(const char *text)
{
	struct dockerfile *df = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (build_dockerfile_parse(text, strlen(text), NULL, &df, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("parse: %s", m);
	}
	return df;
}

struct fixture {
	struct dockerfile *df;
	struct build_plan *plan;
};

static void fixture_done(struct fixture *f)
{
	build_plan_free(f->plan);
	build_dockerfile_free(f->df);
}
#define _cleanup_fixture_ _cleanup_(fixture_done)

static int fake_resolve(void *ud, const char *ref, const char *platform, char **ret_id, json_t **ret_config,
			struct berth_error **err)
{
	if (streq(ref, "missing:latest"))
		return berth_error_msg(err, ENOENT, "image '%s' not found", ref);
	*ret_id = xasprintf("sha256:%s-%s", ref, ud ? (const char *)ud : "v1");
	if (streq(ref, "onbuild"))
		*ret_config = json_pack("{s:[s],s:[s,s],s:[s]}", "Env", "FROM_IMAGE=1", "OnBuild",
					"ENV TRIGGERED=yes", "LABEL from=trigger", "Cmd", "inherited");
	else
		*ret_config =
		    json_pack("{s:[s,s],s:[s]}", "Env", "PATH=/bin", "BASE=img", "Cmd", "inherited");
	return 0;
}

static void plan_ok(struct fixture *f, const char *text, const struct build_plan_opts *o,
		    struct build_context *ctx)
{
	f->df = parse(text);
	_cleanup_error_ struct berth_error *err = NULL;
	if (build_plan_new(f->df, ctx, o, &f->plan, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("plan: %s", m);
	}
}

static void plan_err(const char *text, const struct build_plan_opts *o, const char *expect)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse(text);
	struct build_plan *p = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(build_plan_new(df, NULL, o, &p, &err) < 0);
	assert_null(p);
	_cleanup_free_ char *m = berth_error_string(err);
	if (!strstr(m, expect))
		fail_msg("error '%s' lacks '%s'", m, expect);
}

static const char *env_of(const json_t *config, const char *key)
{
	size_t i, kl = strlen(key);
	json_t *v;
	json_array_foreach (json_object_get(config, "Env"), i, v) {
		const char *s = json_string_value(v);
		if (strncmp(s, key, kl) == 0 && s[kl] == '=')
			return s + kl + 1;
	}
	return NULL;
}

static const json_t *final_config(const struct fixture *f)
{
	return f->plan->stages[f->plan->target].config;
}

static void test_meta_args_scope(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	char *args[] = { (char *)"V=2", (char *)"UNUSED=x", (char *)"HTTP_PROXY=http://p", NULL };
	struct build_plan_opts o = { .build_args = args };
	plan_ok(&f,
		"ARG BASE=scratch\nARG V=1\nARG W=$V-w\nFROM $BASE\nENV A=$V\nARG V\nENV B=$V C=$W\nARG "
		"W\nENV D=$W\n",
		&o, NULL);
	const json_t *c = final_config(&f);
	assert_string_equal(f.plan->stages[0].base, "scratch");
	assert_string_equal(env_of(c, "A"), ""); /* meta args are not visible before being re-declared */
	assert_string_equal(env_of(c, "B"), "2");
	assert_string_equal(env_of(c, "C"), "");
	assert_string_equal(env_of(c, "D"), "2-w");
	assert_string_equal(f.plan->unused_args[0], "UNUSED");
	assert_null(f.plan->unused_args[1]);
}

static void test_env_overrides_arg(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	char *args[] = { (char *)"X=from-arg", NULL };
	struct build_plan_opts o = { .build_args = args };
	plan_ok(&f,
		"FROM scratch\nARG X=default\nENV X=from-env\nRUN echo $X\nENV Y=$X\nARG X=again\nENV Z=$X\n",
		&o, NULL);
	const json_t *c = final_config(&f);
	assert_string_equal(env_of(c, "Y"), "from-env");
	assert_string_equal(env_of(c, "Z"), "from-env");
	const struct plan_step *run = &f.plan->stages[0].steps[2];
	assert_int_equal(run->op, OP_RUN);
	bool found = false;
	for (char **e = run->run.env; *e; e++)
		found |= streq(*e, "X=from-env");
	assert_true(found);
}

static void test_env_pairs_use_previous_values(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	plan_ok(&f,
		"FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\nENV q=\"a b\" r='$abc' "
		"s=a\\ b\n",
		NULL, NULL);
	const json_t *c = final_config(&f);
	assert_string_equal(env_of(c, "def"), "hello");
	assert_string_equal(env_of(c, "ghi"), "bye");
	assert_string_equal(env_of(c, "q"), "a b");
	assert_string_equal(env_of(c, "r"), "$abc");
	assert_string_equal(env_of(c, "s"), "a b");
	assert_string_equal(env_of(c, "PATH"),
			    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}

static void test_config_instructions(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	plan_ok(
	    &f,
	    "FROM scratch\nARG P=8080\nWORKDIR /srv\nWORKDIR app\nUSER ${U:-nobody}:1\nEXPOSE $P 53/udp 1-2\n"
	    "VOLUME /data $P\nLABEL a=1 \"b c\"=\"d e\"\nSTOPSIGNAL SIGINT\nSHELL [\"/bin/bash\", \"-euc\"]\n"
	    "CMD echo hi\nENTRYPOINT [\"/init\"]\nHEALTHCHECK --interval=10s CMD true\nONBUILD RUN make\n"
	    "MAINTAINER someone\n",
	    NULL, NULL);
	const json_t *c = final_config(&f);
	assert_string_equal(json_string_value(json_object_get(c, "WorkingDir")), "/srv/app");
	assert_string_equal(json_string_value(json_object_get(c, "User")), "nobody:1");
	json_t *ports = json_object_get(c, "ExposedPorts");
	assert_non_null(json_object_get(ports, "8080/tcp"));
	assert_non_null(json_object_get(ports, "53/udp"));
	assert_non_null(json_object_get(ports, "2/tcp"));
	assert_int_equal(json_object_size(ports), 4);
	assert_non_null(json_object_get(json_object_get(c, "Volumes"), "8080"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "Labels"), "b c")), "d e");
	assert_string_equal(json_string_value(json_object_get(c, "StopSignal")), "SIGINT");
	json_t *cmd = json_object_get(c, "Cmd");
	assert_int_equal(json_array_size(cmd), 3);
	assert_string_equal(json_string_value(json_array_get(cmd, 0)), "/bin/bash");
	assert_string_equal(json_string_value(json_array_get(cmd, 2)), "echo hi");
	assert_true(json_is_array(json_object_get(c, "Cmd"))); /* CMD was set in this stage: kept */
	json_t *hc = json_object_get(c, "Healthcheck");
	assert_string_equal(json_string_value(json_array_get(json_object_get(hc, "Test"), 0)), "CMD-SHELL");
	assert_int_equal(json_integer_value(json_object_get(hc, "Interval")), 10000000000LL);
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "OnBuild"), 0)), "RUN make");
	assert_string_equal(f.plan->stages[0].author, "someone");
	assert_string_equal(f.plan->stages[0].steps[1].mkdir, "/srv");
	assert_int_equal(f.plan->n_steps, 15);
}

static void test_entrypoint_resets_inherited_cmd(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	struct build_plan_opts o = { .resolve = fake_resolve };
	plan_ok(&f, "FROM img\nENTRYPOINT [\"/x\"]\n", &o, NULL);
	assert_true(json_is_null(json_object_get(final_config(&f), "Cmd")));
	assert_string_equal(env_of(final_config(&f), "BASE"), "img");
	assert_string_equal(f.plan->stages[0].base_id, "sha256:img-v1");
}

static void test_config_errors(void **state)
{
	plan_err("FROM scratch\nEXPOSE 70000\n", NULL, "Dockerfile:2: invalid containerPort: 70000");
	plan_err("FROM scratch\nEXPOSE 80/xyz\n", NULL, "invalid proto: xyz");
	plan_err("FROM scratch\nEXPOSE 90-80\n", NULL, "invalid range");
	plan_err("FROM scratch\nSTOPSIGNAL SIGNOPE\n", NULL, "Invalid signal: SIGNOPE");
	plan_err("FROM scratch\nVOLUME $NOPE\n", NULL, "VOLUME specified can not be an empty string");
	plan_err("FROM scratch\nENV A=\"${B:?must be set}\"\n", NULL, "Dockerfile:2: B: must be set");
	plan_err("ARG B\nFROM $B\n", NULL, "Dockerfile:2: base name ($B) should not be blank");
	plan_err("FROM scratch\nCOPY a /b\n", NULL, "COPY needs a build context");
	plan_err("FROM scratch\nCOPY --chmod=abc a /b\n", NULL, "invalid chmod parameter 'abc'");
	plan_err("FROM scratch\nCOPY a b /c\n", NULL, "the destination must be a directory and end with a /");
	plan_err("FROM scratch\nADD --checksum=md5:x https://e.org/f /f\n", NULL,
		 "Dockerfile:2: invalid checksum digest format 'md5:x'");
	plan_err("FROM scratch\nADD http://x/a b /c/\n", NULL,
		 "ADD cannot mix remote URLs and local sources");
	struct build_plan_opts o = { .resolve = fake_resolve };
	plan_err("FROM missing:latest\n", &o,
		 "Dockerfile:1: resolve image 'missing:latest': image 'missing:latest' not found");
}

static void test_stage_dependencies_and_waves(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	plan_ok(&f,
		"FROM scratch AS a\nENV A=1\n"
		"FROM scratch AS b\nENV B=1\n"
		"FROM scratch AS unused\nENV C=\"${X:?never evaluated}\"\n"
		"FROM a AS c\nCOPY --from=b /x /y\nRUN --mount=type=bind,from=1,target=/m true\n"
		"FROM scratch\nCOPY --from=c /y /z\n",
		NULL, NULL);
	const struct build_plan *p = f.plan;
	assert_int_equal(p->target, 4);
	assert_false(p->stages[2].needed);
	assert_true(p->stages[0].needed && p->stages[1].needed && p->stages[3].needed);
	assert_int_equal(p->n_waves, 3);
	assert_int_equal(p->waves[0][0], 0);
	assert_int_equal(p->waves[0][1], 1);
	assert_int_equal(p->waves[0][2], SIZE_MAX);
	assert_int_equal(p->waves[1][0], 3);
	assert_int_equal(p->waves[2][0], 4);
	assert_int_equal(p->stages[3].base_kind, BASE_STAGE);
	assert_int_equal(p->stages[3].n_deps, 2);
	assert_string_equal(env_of(p->stages[3].config, "A"), "1");
	assert_int_equal(p->stages[3].steps[0].copy.kind, SRC_STAGE);
	assert_int_equal(p->stages[3].steps[0].copy.from_stage, 1);
	assert_int_equal(p->stages[3].steps[1].run.mount_stage[0], 1);
	assert_int_equal(p->n_steps, 2 + 2 + 3 + 2);
}

static void test_target(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	struct build_plan_opts o = { .target = "B" };
	plan_ok(&f, "FROM scratch AS a\nFROM scratch AS b\nRUN true\nFROM a\n", &o, NULL);
	assert_int_equal(f.plan->target, 1);
	assert_false(f.plan->stages[0].needed);
	assert_false(f.plan->stages[2].needed);
	struct build_plan_opts bad = { .target = "nope" };
	plan_err("FROM scratch AS a\n", &bad, "target stage 'nope' could not be found");
}

static void test_stage_reference_errors(void **state)
{
	/* BuildKit's own cases: the first stage (in file order) on a cycle is named */
	plan_err("FROM busybox AS stage0\nCOPY --from=stage0 f1 /sub/\n", NULL,
		 "Dockerfile:2: circular dependency detected on stage: stage0");
	plan_err("FROM busybox AS stage0\nCOPY --from=stage2 f1 /sub/\nFROM busybox AS stage1\n"
		 "COPY --from=stage0 f2 /sub/\nFROM busybox AS stage2\nCOPY --from=stage1 f2 /sub/\n",
		 NULL, "circular dependency detected on stage: stage0");
	plan_err("FROM scratch\nCOPY --from=0 /a /b\n", NULL,
		 "circular dependency detected on stage: stage-0");
	/* cycles are found even among stages the target does not need */
	struct build_plan_opts t = { .target = "ok" };
	plan_err("FROM scratch AS ok\nFROM scratch AS x\nCOPY --from=y a b\nFROM scratch AS y\nCOPY --from=x "
		 "a b\n",
		 &t, "circular dependency detected on stage: x");
	plan_err("FROM scratch AS a\nCOPY --from=b /x /y\nFROM scratch AS b\nCOPY --from=a /x /y\n", NULL,
		 "circular dependency detected on stage: ");
	plan_err("FROM scratch AS a\nCOPY --from=a /x /y\n", NULL,
		 "Dockerfile:2: circular dependency detected on stage: a");
	plan_err("FROM scratch\nCOPY --from=7 /x /y\n", NULL, "invalid stage index 7");
	plan_err("FROM scratch AS a\nRUN --mount=from=a,target=/m true\n", NULL, "circular dependency");
}

static void test_copy_from_image_and_url(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	struct build_plan_opts o = { .resolve = fake_resolve };
	plan_ok(&f, "FROM scratch\nCOPY --from=busybox:latest /bin/sh /sh\nADD https://e.org/f.tgz /opt/\n",
		&o, NULL);
	const struct plan_step *s = &f.plan->stages[0].steps[0];
	assert_int_equal(s->copy.kind, SRC_IMAGE);
	assert_string_equal(s->copy.from_image_id, "sha256:busybox:latest-v1");
	assert_int_equal(f.plan->stages[0].steps[1].copy.kind, SRC_URL);
	assert_string_equal(f.plan->stages[0].steps[1].copy.dest, "/opt/");
	_cleanup_fixture_ struct fixture g = { 0 };
	plan_ok(&g,
		"FROM scratch\nADD --checksum=sha256:"
		"24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://e.org/f /f\n",
		NULL, NULL);
	assert_string_equal(g.plan->stages[0].steps[0].copy.checksum,
			    "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d");
}

static void test_onbuild_triggers_replay(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	struct build_plan_opts o = { .resolve = fake_resolve };
	plan_ok(&f, "FROM onbuild\nENV AFTER=$TRIGGERED\n", &o, NULL);
	const struct plan_stage *s = &f.plan->stages[0];
	assert_int_equal(s->n_steps, 3);
	assert_true(s->steps[0].trigger);
	assert_string_equal(s->steps[0].text, "ENV TRIGGERED=yes");
	assert_string_equal(env_of(s->config, "AFTER"), "yes");
	assert_string_equal(env_of(s->config, "PATH"),
			    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	assert_null(json_object_get(s->config, "OnBuild")); /* not inherited further */
	_cleanup_fixture_ struct fixture g = { 0 };
	plan_ok(&g, "FROM scratch AS base\nONBUILD ENV T=1\nFROM base\n", NULL, NULL);
	assert_int_equal(g.plan->stages[1].n_steps, 1);
	assert_string_equal(env_of(g.plan->stages[1].config, "T"), "1");
}

static void test_run_argv_forms(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	char *args[] = { (char *)"https_proxy=http://proxy", NULL };
	struct build_plan_opts o = { .build_args = args };
	plan_ok(
	    &f,
	    "FROM scratch\nRUN [\"/bin/true\", \"x\"]\nRUN <<EOF\necho a\nEOF\nRUN cat <<A <<B\nx\nA\ny\nB\n"
	    "RUN --network=none --mount=type=cache,target=/c,id=$HOME echo\n"
	    "RUN <<PY\n#!/usr/bin/env python3\nprint(1)\nPY\n",
	    &o, NULL);
	const struct plan_step *s = f.plan->stages[0].steps;
	assert_string_equal(s[0].run.argv[0], "/bin/true");
	assert_null(s[0].run.argv[2]);
	assert_string_equal(s[1].run.argv[0], "/bin/sh");
	assert_string_equal(s[1].run.argv[2], "echo a\n");
	assert_string_equal(s[2].run.argv[2], "cat <<A <<B\nx\nA\ny\nB");
	assert_string_equal(s[3].run.network, "none");
	assert_string_equal(s[3].run.mounts[0].id, "");
	assert_string_equal(s[4].run.argv[2], "/dev/pipes/PY");
	assert_string_equal(s[4].run.script_name, "PY");
	assert_string_equal(s[4].run.script_data, "#!/usr/bin/env python3\nprint(1)\n");
	assert_null(s[1].run.script_name);
	bool proxy = false;
	for (char **e = s[3].run.env; *e; e++)
		proxy |= streq(*e, "https_proxy=http://proxy");
	assert_true(proxy);
	assert_null(f.plan->unused_args[0]);
}

/* --- cache keys --------------------------------------------------------- */

static void keys_of(const char *text, const struct build_plan_opts *o, struct build_context *ctx,
		    char keys[][DIGEST_STRING_MAX], size_t n)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	plan_ok(&f, text, o, ctx);
	const struct plan_stage *s = &f.plan->stages[f.plan->target];
	assert_int_equal(s->n_steps, n);
	for (size_t i = 0; i < n; i++)
		memcpy(keys[i], s->steps[i].key, DIGEST_STRING_MAX);
}

static void test_cache_keys(void **state)
{
	char a[4][DIGEST_STRING_MAX], b[4][DIGEST_STRING_MAX];
	const char *df = "FROM img\nARG V=1\nRUN echo $V\nENV X=1\n";
	struct build_plan_opts o = { .resolve = fake_resolve };
	keys_of(df, &o, NULL, a, 3);
	keys_of(df, &o, NULL, b, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(a[i], b[i]);
	/* a different build arg changes the ARG step and everything after it */
	char *args[] = { (char *)"V=2", NULL };
	struct build_plan_opts o2 = { .resolve = fake_resolve, .build_args = args };
	keys_of(df, &o2, NULL, b, 3);
	for (int i = 0; i < 3; i++)
		assert_string_not_equal(a[i], b[i]);
	/* proxy args are not part of the key */
	char *proxy[] = { (char *)"http_proxy=http://p", NULL };
	struct build_plan_opts o3 = { .resolve = fake_resolve, .build_args = proxy };
	keys_of(df, &o3, NULL, b, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(a[i], b[i]);
	/* another base image ID changes every key */
	struct build_plan_opts o4 = { .resolve = fake_resolve, .userdata = (void *)"v2" };
	keys_of(df, &o4, NULL, b, 3);
	for (int i = 0; i < 3; i++)
		assert_string_not_equal(a[i], b[i]);
	/* a later change keeps earlier keys */
	keys_of("FROM img\nARG V=1\nRUN echo $V\nENV X=2\n", &o, NULL, b, 3);
	assert_string_equal(a[0], b[0]);
	assert_string_equal(a[1], b[1]);
	assert_string_not_equal(a[2], b[2]);
}

static void test_cache_keys_follow_context_content(void **state)
{
	_cleanup_free_ char *dir = unit_tmpdir();
	_cleanup_free_ char *f1 = xasprintf("%s/app.txt", dir), *f2 = xasprintf("%s/other.txt", dir);
	assert_int_equal(fs_write_file_atomic(f1, "v1", 2, 0644, NULL), 0);
	assert_int_equal(fs_write_file_atomic(f2, "o", 1, 0644, NULL), 0);
	const char *df = "FROM scratch\nCOPY app.txt /\nRUN true\n";
	char a[2][DIGEST_STRING_MAX], b[2][DIGEST_STRING_MAX];
	struct build_context *ctx = NULL;
	assert_int_equal(build_context_open_dir(dir, NULL, &ctx, NULL), 0);
	keys_of(df, NULL, ctx, a, 2);
	ctx = build_context_free(ctx);
	assert_int_equal(fs_write_file_atomic(f2, "changed", 7, 0644, NULL), 0);
	assert_int_equal(build_context_open_dir(dir, NULL, &ctx, NULL), 0);
	keys_of(df, NULL, ctx, b, 2);
	ctx = build_context_free(ctx);
	assert_string_equal(a[0], b[0]); /* an unrelated file changed */
	assert_string_equal(a[1], b[1]);
	assert_int_equal(fs_write_file_atomic(f1, "v2", 2, 0644, NULL), 0);
	assert_int_equal(build_context_open_dir(dir, NULL, &ctx, NULL), 0);
	keys_of(df, NULL, ctx, b, 2);
	ctx = build_context_free(ctx);
	assert_string_not_equal(a[0], b[0]);
	assert_string_not_equal(a[1], b[1]);
	fs_rm_rf(dir, NULL);
}

static void test_stage_key_feeds_copy_from(void **state)
{
	char a[1][DIGEST_STRING_MAX], b[1][DIGEST_STRING_MAX];
	keys_of("FROM scratch AS s\nRUN echo 1\nFROM scratch\nCOPY --from=s /a /b\n", NULL, NULL, a, 1);
	keys_of("FROM scratch AS s\nRUN echo 2\nFROM scratch\nCOPY --from=s /a /b\n", NULL, NULL, b, 1);
	assert_string_not_equal(a[0], b[0]);
}

static void test_long_stage_chains(void **state)
{
	/* the deepest chain the parser allows plans fine (recursion is bounded) */
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "FROM scratch AS s0\n");
	for (int i = 1; i < DF_MAX_STAGES; i++)
		strbuf_addf(&sb, "FROM s%d AS s%d\nCOPY --from=s%d /a /b\n", i - 1, i, i - 1);
	_cleanup_fixture_ struct fixture f = { 0 };
	plan_ok(&f, sb.buf, NULL, NULL);
	assert_int_equal(f.plan->n_waves, DF_MAX_STAGES);
	strbuf_addstr(&sb, "FROM scratch\n");
	struct dockerfile *df = NULL;
	assert_int_equal(build_dockerfile_parse(sb.buf, sb.len, NULL, &df, NULL), -EINVAL);
	strbuf_release(&sb);
}

static void test_plan_json(void **state)
{
	_cleanup_fixture_ struct fixture f = { 0 };
	plan_ok(&f, "FROM scratch AS x\nENV A=1\nFROM scratch\nRUN true\n", NULL, NULL);
	json_t *j = build_plan_to_json(f.plan);
	assert_int_equal(json_integer_value(json_object_get(j, "total_steps")), 2);
	json_t *st = json_array_get(json_object_get(j, "stages"), 0);
	assert_true(json_is_false(json_object_get(st, "needed")));
	json_decref(j);
	json_t *d = build_dockerfile_to_json(f.df);
	assert_int_equal(json_array_size(json_object_get(d, "stages")), 2);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta_args_scope),
		cmocka_unit_test(test_env_overrides_arg),
		cmocka_unit_test(test_env_pairs_use_previous_values),
		cmocka_unit_test(test_config_instructions),
		cmocka_unit_test(test_entrypoint_resets_inherited_cmd),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_stage_dependencies_and_waves),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_stage_reference_errors),
		cmocka_unit_test(test_copy_from_image_and_url),
		cmocka_unit_test(test_onbuild_triggers_replay),
		cmocka_unit_test(test_run_argv_forms),
		cmocka_unit_test(test_cache_keys),
		cmocka_unit_test(test_cache_keys_follow_context_content),
		cmocka_unit_test(test_stage_key_feeds_copy_from),
		cmocka_unit_test(test_long_stage_chains),
		cmocka_unit_test(test_plan_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
