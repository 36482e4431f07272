/* test-dockerfile.c - Dockerfile parser: syntax, instructions, errors. */
#include "unit.h"

#include "build/dockerfile.h"
#include "common/strbuf.h"

static struct dockerfile *parse_ok(const char *text)
{
	struct dockerfile *df = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = build_dockerfile_parse(text, strlen(text), NULL, &df, &err);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fail_msg("parse failed: %s", m);
	}
	return df;
}

static void assert_parse_error(const char *text, const char *expect)
{
	struct dockerfile *df = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = build_dockerfile_parse(text, strlen(text), NULL, &df, &err);
	assert_true(r < 0);
	assert_null(df);
	_cleanup_free_ char *m = berth_error_string(err);
	if (!strstr(m, expect))
		fail_msg("error '%s' does not contain '%s'", m, expect);
}

static void assert_args(const struct df_instr *in, const char *const *expect)
{
	size_t n = 0;
	for (; expect[n]; n++) {
		assert_non_null(in->args[n]);
		assert_string_equal(in->args[n], expect[n]);
	}
	assert_null(in->args[n]);
	assert_int_equal(in->n_args, n);
}
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_basic(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok("FROM busybox\nRUN echo hi\n");
	assert_int_equal(df->n_stages, 1);
	assert_int_equal(df->n_instrs, 2);
	assert_string_equal(df->stages[0].base, "busybox");
	assert_int_equal(df->instrs[1].cmd, DF_RUN);
	assert_args(&df->instrs[1], ARGS("echo hi"));
	assert_false(df->instrs[1].json);
	assert_int_equal(df->escape, '\\');
}

static void test_case_insensitive_and_comments(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("# comment\n\nfrom scratch as Build\n   # indented comment\nrun true # not a comment\n");
	assert_int_equal(df->n_instrs, 2);
	assert_string_equal(df->stages[0].name, "build");
	assert_int_equal(df->instrs[0].line, 3);
	assert_args(&df->instrs[1], ARGS("true # not a comment"));
	assert_int_equal(df->instrs[1].line, 5);
}

static void test_continuation(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nRUN echo a \\\n  # comment inside\n\n    b \\  \n c\nLABEL x=1\n");
	const struct df_instr *in = &df->instrs[1];
	assert_args(in, ARGS("echo a     b  c"));
	assert_int_equal(in->line, 2);
	assert_int_equal(in->end_line, 6);
	assert_int_equal(df->instrs[2].line, 7);
	assert_non_null(df->warnings[0]);
	assert_non_null(strstr(df->warnings[0], "empty continuation line"));
}

static void test_escape_directive(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok(
	    "# escape=`\n# syntax=docker/dockerfile:1\nFROM scratch\nRUN dir c:\\ `\n  && echo done\n");
	assert_int_equal(df->escape, '`');
	assert_string_equal(df->syntax, "docker/dockerfile:1");
	assert_args(&df->instrs[1], ARGS("dir c:\\   && echo done"));
	assert_non_null(strstr(df->warnings[0], "syntax directive"));
}

static void test_directive_only_at_top(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("# hello\n# escape=`\nFROM scratch\nRUN a \\\nb\n");
	assert_int_equal(df->escape, '\\');
	assert_args(&df->instrs[1], ARGS("a b"));
	_cleanup_(dockerfile_freep) struct dockerfile *df2 = parse_ok("#check=skip=all\nFROM scratch\n");
	assert_string_equal(df2->check, "skip=all");
}

static void test_directive_errors(void **state)
{
	assert_parse_error("# escape=x\nFROM scratch\n",
			   "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
	assert_parse_error("# escape=`\n# escape=\\\nFROM scratch\n",
			   "Dockerfile:2: only one escape parser directive can be used");
}

static void test_json_and_shell_forms(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nCMD [\"a\", \"b c\"]\nENTRYPOINT [not json\nRUN [\"x\"] && y\nSHELL "
		     "[\"/bin/bash\", \"-c\"]\n"
		     "CMD []\n");
	assert_true(df->instrs[1].json);
	assert_args(&df->instrs[1], ARGS("a", "b c"));
	assert_false(df->instrs[2].json);
	assert_args(&df->instrs[2], ARGS("[not json"));
	assert_false(df->instrs[3].json);
	assert_true(df->instrs[4].json);
	assert_true(df->instrs[5].json);
	assert_int_equal(df->instrs[5].n_args, 0);
	assert_parse_error(
	    "FROM scratch\nCMD [\"a\", 1]\n",
	    "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only");
	assert_parse_error("FROM scratch\nSHELL /bin/sh -c\n",
			   "SHELL requires the arguments to be in JSON form");
}

static void test_env_label_forms(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok(
	    "FROM scratch\nENV A=1 B=\"x y\" C=a\\ b\nENV OLD value with spaces\nLABEL \"k 1\"=v k2='v 2'\n");
	assert_args(&df->instrs[1], ARGS("A", "1", "B", "\"x y\"", "C", "a\\ b"));
	assert_args(&df->instrs[2], ARGS("OLD", "value with spaces"));
	assert_args(&df->instrs[3], ARGS("\"k 1\"", "v", "k2", "'v 2'"));
	assert_parse_error("FROM scratch\nENV A=1 B\n", "Syntax error - can't find = in \"B\"");
	assert_parse_error("FROM scratch\nENV ONLY\n", "ENV must have two arguments");
	assert_parse_error("FROM scratch\nENV\n", "ENV requires at least one argument");
	assert_parse_error("FROM scratch\nLABEL =x\n", "LABEL names can not be blank");
}

static void test_arg_and_from(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok(
	    "ARG A=1 B\nARG C\nFROM --platform=$BUILDPLATFORM img:$A AS one\nFROM one\nARG D=\"x y\"\n");
	assert_int_equal(df->n_meta, 2);
	assert_args(&df->instrs[0], ARGS("A=1", "B"));
	assert_int_equal(df->n_stages, 2);
	assert_string_equal(df->stages[0].platform, "$BUILDPLATFORM");
	assert_string_equal(df->stages[0].base, "img:$A");
	assert_null(df->stages[1].name);
	assert_args(&df->instrs[4], ARGS("D=\"x y\""));
	assert_int_equal(build_dockerfile_find_stage(df, "ONE"), 0);
	assert_parse_error("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments");
	assert_parse_error("FROM a AS 1x\n", "invalid name for build stage: \"1x\"");
	assert_parse_error("FROM a AS x\nFROM b AS X\n", "Dockerfile:2: duplicate stage name \"x\"");
	assert_parse_error("RUN true\n", "Dockerfile:1: no build stage in current context");
	assert_parse_error("ARG X\n", "dockerfile contains no stages to build");
	assert_parse_error("\n# only comments\n", "the Dockerfile cannot be empty");
	assert_parse_error("FROM --platfrom=x a\n", "unknown flag: platfrom");
}

static void test_unknown_instruction(void **state)
{
	assert_parse_error("FROM scratch\n\n\n\n\n\nRUNN true\n",
			   "Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)");
	assert_parse_error("FROM scratch\nfrobnicate x\n", "Dockerfile:2: unknown instruction: FROBNICATE");
}

static void test_copy_flags(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nCOPY --from=build --chown=1:2 --chmod=755 --link --parents "
		     "--exclude=*.md --exclude=x "
		     "a b /dst/\nADD --keep-git-dir=true --checksum=sha256:abc https://x/y /z\nCOPY [\"a "
		     "b\", \"/c d\"]\n");
	const struct df_opts *o = &df->instrs[1].opts;
	assert_string_equal(o->from, "build");
	assert_string_equal(o->chown, "1:2");
	assert_string_equal(o->chmod, "755");
	assert_true(o->link);
	assert_true(o->parents);
	assert_string_equal(o->exclude[0], "*.md");
	assert_string_equal(o->exclude[1], "x");
	assert_args(&df->instrs[1], ARGS("a", "b", "/dst/"));
	assert_true(df->instrs[2].opts.keep_git_dir);
	assert_string_equal(df->instrs[2].opts.checksum, "sha256:abc");
	assert_args(&df->instrs[3], ARGS("a b", "/c d"));
	assert_parse_error("FROM scratch\nCOPY a\n", "COPY requires at least two arguments");
	assert_parse_error("FROM scratch\nCOPY --chwon=1 a b\n", "Dockerfile:2: unknown flag: chwon");
	assert_parse_error("FROM scratch\nCOPY --from=a --from=b a b\n", "duplicate flag specified: from");
	assert_parse_error("FROM scratch\nCOPY --link=maybe a b\n",
			   "expecting boolean value for flag link, not: maybe");
	assert_parse_error("FROM scratch\nCOPY --from a b\n", "missing a value on flag: from");
	assert_parse_error("FROM scratch\nADD --from=x a b\n", "unknown flag: from");
	assert_parse_error("FROM scratch\nENV --x=1 A=1\n", "unknown flag: x");
}

static void test_run_flags(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok(
	    "FROM scratch\nRUN --mount=type=cache,target=/c,sharing=locked --mount=type=secret,id=tok "
	    "--network=none --security=insecure make\n");
	const struct df_opts *o = &df->instrs[1].opts;
	assert_string_equal(o->mounts[0], "type=cache,target=/c,sharing=locked");
	assert_string_equal(o->network, "none");
	assert_string_equal(o->security, "insecure");
	assert_args(&df->instrs[1], ARGS("make"));
	assert_parse_error("FROM scratch\nRUN --network=bridge x\n", "unsupported network mode \"bridge\"");
	assert_parse_error("FROM scratch\nRUN --security=x y\n", "unsupported security mode \"x\"");
	assert_parse_error("FROM scratch\nRUN --mount=type=nfs,target=/x y\n",
			   "unsupported mount type \"nfs\"");
	assert_parse_error("FROM scratch\nRUN --mount=type=cache y\n",
			   "mount type \"cache\" requires a target");
	assert_parse_error("FROM scratch\nRUN --mount=type=bind,foo=bar,target=/x y\n",
			   "unexpected key 'foo' in 'foo=bar'");
	assert_parse_error("FROM scratch\nRUN --mount=type=cache,target=/x,sharing=x y\n",
			   "unsupported sharing value");
	assert_parse_error("FROM scratch\nRUN --mount=type=cache,target=/x,mode=999 y\n",
			   "invalid value 999 for mode");
	assert_parse_error("FROM scratch\nRUN --mount=type=tmpfs,target=/x,from=a y\n",
			   "'from' is not supported");
	assert_parse_error("FROM scratch\nRUN --mount=type=bind,target=a\\\"b y\n",
			   "bare \" in non-quoted-field");
	assert_parse_error("FROM scratch\nRUN\n", "RUN requires at least one argument");
}

static void test_mount_parse_defaults(void **state)
{
	struct df_mount m;
	assert_int_equal(build_df_mount_parse("type=secret,id=aws", &m, NULL), 0);
	assert_int_equal(m.type, DF_MOUNT_SECRET);
	assert_string_equal(m.target, "/run/secrets/aws");
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("type=secret,target=/x/tok,required", &m, NULL), 0);
	assert_string_equal(m.id, "tok");
	assert_true(m.required);
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("target=/src,from=build,rw", &m, NULL), 0);
	assert_int_equal(m.type, DF_MOUNT_BIND);
	assert_false(m.readonly);
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("target=/src", &m, NULL), 0);
	assert_true(m.readonly);
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("type=cache,target=/c,uid=1000,gid=10,mode=0700", &m, NULL), 0);
	assert_string_equal(m.id, "/c");
	assert_string_equal(m.sharing, "shared");
	assert_int_equal(m.uid, 1000);
	assert_int_equal(m.mode, 0700);
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("type=ssh", &m, NULL), 0);
	assert_string_equal(m.id, "default");
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("type=tmpfs,target=/t,size=64m", &m, NULL), 0);
	assert_int_equal(m.size, 64 << 20);
	build_df_mount_done(&m);
	assert_int_equal(build_df_mount_parse("type=bind,\"target=/a,b\"", &m, NULL), 0);
	assert_string_equal(m.target, "/a,b");
	build_df_mount_done(&m);
}

static void test_heredocs(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nRUN <<EOF\necho $A\n  indented\nEOF\n"
		     "RUN <<-'END' cat >/x\n\tline1\n\t\tline2\n\tEND\n"
		     "COPY <<A <<\"B\" /dir/\na\nA\nb $x\nB\n"
		     "RUN 3<<X python3\nprint(1)\nX\n"
		     "LABEL x=<<EOF\n");
	const struct df_instr *r1 = &df->instrs[1];
	assert_int_equal(r1->n_heredocs, 1);
	assert_string_equal(r1->heredocs[0].name, "EOF");
	assert_string_equal(r1->heredocs[0].content, "echo $A\n  indented\n");
	assert_true(r1->heredocs[0].expand);
	assert_int_equal(r1->line, 2);
	assert_int_equal(r1->end_line, 5);
	const struct df_instr *r2 = &df->instrs[2];
	assert_string_equal(r2->heredocs[0].name, "END");
	assert_true(r2->heredocs[0].chomp);
	assert_false(r2->heredocs[0].expand);
	assert_string_equal(r2->heredocs[0].content, "line1\nline2\n");
	const struct df_instr *c = &df->instrs[3];
	assert_int_equal(c->n_heredocs, 2);
	assert_string_equal(c->heredocs[0].content, "a\n");
	assert_true(c->heredocs[0].expand);
	assert_string_equal(c->heredocs[1].content, "b $x\n");
	assert_false(c->heredocs[1].expand);
	assert_args(c, ARGS("<<A", "<<\"B\"", "/dir/"));
	assert_int_equal(df->instrs[4].heredocs[0].fd, 3);
	assert_int_equal(df->instrs[5].n_heredocs, 0); /* LABEL cannot hold a heredoc */
	assert_int_equal(df->instrs[5].line, 18);
	assert_parse_error("FROM scratch\nRUN <<EOF\necho\n", "Dockerfile:2: unterminated heredoc");
	assert_parse_error("FROM scratch\nCOPY a <<EOF\nx\nEOF\n",
			   "COPY cannot accept a heredoc as a destination");
}

static void test_healthcheck(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok(
	    "FROM scratch\nHEALTHCHECK --interval=5s --timeout=1m30s --start-period=1s --start-interval=2s "
	    "--retries=4 CMD curl -f x\nHEALTHCHECK NONE\nHEALTHCHECK CMD [\"a\",\"b\"]\n");
	const struct df_instr *h = &df->instrs[1];
	assert_args(h, ARGS("CMD", "curl -f x"));
	assert_int_equal(h->opts.interval, 5000000000LL);
	assert_int_equal(h->opts.timeout, 90000000000LL);
	assert_int_equal(h->opts.start_period, 1000000000LL);
	assert_int_equal(h->opts.start_interval, 2000000000LL);
	assert_int_equal(h->opts.retries, 4);
	assert_args(&df->instrs[2], ARGS("NONE"));
	assert_true(df->instrs[3].json);
	assert_parse_error("FROM scratch\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments");
	assert_parse_error("FROM scratch\nHEALTHCHECK RUN x\n",
			   "Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
	assert_parse_error("FROM scratch\nHEALTHCHECK CMD\n", "Missing command after HEALTHCHECK CMD");
	assert_parse_error("FROM scratch\nHEALTHCHECK --interval=1us CMD x\n", "cannot be less than 1ms");
	assert_parse_error("FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n",
			   "--retries cannot be negative (-1)");
	assert_parse_error("FROM scratch\nHEALTHCHECK --timeout=soon CMD x\n", "invalid duration");
	assert_parse_error("FROM scratch\nHEALTHCHECK\n", "HEALTHCHECK requires at least one argument");
}

static void test_onbuild(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nONBUILD COPY --chown=1 . /app\nONBUILD RUN <<EOF\necho hi\nEOF\n");
	const struct df_instr *o = &df->instrs[1];
	assert_non_null(o->trigger);
	assert_int_equal(o->trigger->cmd, DF_COPY);
	assert_string_equal(o->trigger->opts.chown, "1");
	assert_string_equal(o->expression, "COPY --chown=1 . /app");
	assert_string_equal(df->instrs[2].expression, "RUN <<EOF\necho hi\nEOF");
	assert_int_equal(df->instrs[2].trigger->n_heredocs, 1);
	assert_parse_error("FROM scratch\nONBUILD ONBUILD RUN x\n",
			   "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	assert_parse_error("FROM scratch\nONBUILD FROM x\n", "FROM isn't allowed as an ONBUILD trigger");
	assert_parse_error("FROM scratch\nONBUILD MAINTAINER x\n",
			   "MAINTAINER isn't allowed as an ONBUILD trigger");
	assert_parse_error("FROM scratch\nONBUILD\n", "ONBUILD requires at least one argument");
	struct strbuf deep = STRBUF_INIT;
	strbuf_addstr(&deep, "FROM scratch\n");
	for (int i = 0; i < 200000; i++)
		strbuf_addstr(&deep, "ONBUILD ");
	strbuf_addstr(&deep, "RUN x\n");
	assert_parse_error(deep.buf, "Dockerfile:2: Chaining ONBUILD");
	strbuf_release(&deep);
	struct df_instr *t = NULL;
	assert_int_equal(build_dockerfile_parse_trigger("RUN <<EOF\necho hi\nEOF", &t, NULL), 0);
	assert_string_equal(t->heredocs[0].content, "echo hi\n");
	build_df_instr_free(t);
	assert_true(build_dockerfile_parse_trigger("FROM x", &t, NULL) < 0);
}

static void test_single_arg_instructions(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nUSER app user\nWORKDIR /a b\nSTOPSIGNAL SIGKILL\nMAINTAINER me "
		     "<m@x>\nEXPOSE 80 90/udp\n"
		     "VOLUME /a /b\nVOLUME [\"/c\"]\n");
	assert_args(&df->instrs[1], ARGS("app user"));
	assert_args(&df->instrs[2], ARGS("/a b"));
	assert_args(&df->instrs[4], ARGS("me <m@x>"));
	assert_args(&df->instrs[5], ARGS("80", "90/udp"));
	assert_args(&df->instrs[6], ARGS("/a", "/b"));
	assert_args(&df->instrs[7], ARGS("/c"));
	assert_non_null(strstr(df->warnings[0], "MAINTAINER instruction is deprecated"));
	assert_parse_error("FROM scratch\nUSER\n", "USER requires exactly one argument");
	assert_parse_error("FROM scratch\nWORKDIR\n", "WORKDIR requires exactly one argument");
	assert_parse_error("FROM scratch\nEXPOSE\n", "EXPOSE requires at least one argument");
	assert_parse_error("FROM scratch\nVOLUME [\"\"]\n", "VOLUME specified can not be an empty string");
}

static void test_flags_quoting_and_terminator(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df =
	    parse_ok("FROM scratch\nCOPY --chown=\"a b\" x y\nRUN -- --not-a-flag\nRUN --network=none -x\n");
	assert_string_equal(df->instrs[1].opts.chown, "a b");
	assert_args(&df->instrs[2], ARGS("--not-a-flag"));
	assert_args(&df->instrs[3], ARGS("-x"));
}

static void test_crlf_bom_and_limits(void **state)
{
	_cleanup_(dockerfile_freep) struct dockerfile *df = parse_ok("\xef\xbb\xbf"
								     "FROM scratch\r\nRUN a \\\r\n b\r\n");
	assert_args(&df->instrs[1], ARGS("a  b"));
	struct dockerfile *bad = NULL;
	assert_int_equal(build_dockerfile_parse("FROM a\0", 7, NULL, &bad, NULL), -EINVAL);
	_cleanup_free_ char *big = xmalloc(DF_MAX_SIZE + 2);
	memset(big, '#', DF_MAX_SIZE + 1);
	assert_int_equal(build_dockerfile_parse(big, DF_MAX_SIZE + 1, NULL, &bad, NULL), -EFBIG);
}

static void test_error_uses_given_name(void **state)
{
	struct dockerfile *df = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	assert_true(build_dockerfile_parse("FROM a\nBAD x\n", 13, "build/Dockerfile.dev", &df, &err) < 0);
	_cleanup_free_ char *m = berth_error_string(err);
	assert_string_equal(m, "build/Dockerfile.dev:2: unknown instruction: BAD (did you mean ADD?)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_case_insensitive_and_comments),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_escape_directive),
		cmocka_unit_test(test_directive_only_at_top),
		cmocka_unit_test(test_directive_errors),
		cmocka_unit_test(test_json_and_shell_forms),
		cmocka_unit_test(test_env_label_forms),
		cmocka_unit_test(test_arg_and_from),
		cmocka_unit_test(test_unknown_instruction),
		cmocka_unit_test(test_copy_flags),
		cmocka_unit_test(test_run_flags),
		cmocka_unit_test(test_mount_parse_defaults),
		cmocka_unit_test(test_heredocs),
		cmocka_unit_test(test_healthcheck),
		cmocka_unit_test(test_onbuild),
		cmocka_unit_test(test_single_arg_instructions),
		cmocka_unit_test(test_flags_quoting_and_terminator),
		cmocka_unit_test(test_crlf_bom_and_limits),
		cmocka_unit_test(test_error_uses_given_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
