/*
 * instructions.c - the typed level of the Dockerfile parser (BuildKit's
 * instructions package): argument counts, flags (BFlags semantics),
 * HEALTHCHECK options, ONBUILD triggers, RUN --mount values, and grouping
 * into meta ARGs and stages. Messages follow BuildKit's wording so users
 * can search them.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>

#include "build/build-internal.h"
#include "common/strbuf.h"
#include "common/strv.h"
#include "common/util.h"

/* --- flags (BFlags) ------------------------------------------------------ */

enum flag_kind { FL_STRING, FL_BOOL, FL_ARRAY };

struct flag_spec {
	const char *name;
	enum flag_kind kind;
	size_t off;
};

#define OPT(f) offsetof(struct df_opts, f)

static const struct flag_spec from_flags[] = { { "platform", FL_STRING, OPT(platform) } };
static const struct flag_spec run_flags[] = {
	{ "mount", FL_ARRAY, OPT(mounts) },
	{ "network", FL_STRING, OPT(network) },
	{ "security", FL_STRING, OPT(security) },
};
static const struct flag_spec copy_flags[] = {
	{ "from", FL_STRING, OPT(from) },     { "chown", FL_STRING, OPT(chown) },
	{ "chmod", FL_STRING, OPT(chmod) },   { "link", FL_BOOL, OPT(link) },
	{ "parents", FL_BOOL, OPT(parents) }, { "exclude", FL_ARRAY, OPT(exclude) },
};
static const struct flag_spec add_flags[] = {
	{ "chown", FL_STRING, OPT(chown) },       { "chmod", FL_STRING, OPT(chmod) },
	{ "link", FL_BOOL, OPT(link) },           { "keep-git-dir", FL_BOOL, OPT(keep_git_dir) },
	{ "checksum", FL_STRING, OPT(checksum) }, { "exclude", FL_ARRAY, OPT(exclude) },
};

struct hc_flags {
	char *interval, *timeout, *start_period, *start_interval, *retries;
};
#define HC(f) offsetof(struct hc_flags, f)
static const struct flag_spec hc_flag_specs[] = {
	{ "interval", FL_STRING, HC(interval) },         { "timeout", FL_STRING, HC(timeout) },
	{ "start-period", FL_STRING, HC(start_period) }, { "start-interval", FL_STRING, HC(start_interval) },
	{ "retries", FL_STRING, HC(retries) },
};

static int parse_flags(struct df_parser *p, const struct df_instr *in, const struct flag_spec *specs,
		       size_t n_specs, void *base)
{
	bool seen[16] = { false };
	for (char **f = in->flags; *f; f++) {
		if (!startswith(*f, "--"))
			return build_df_error(p, in->line, "arg should start with -- : %s", *f);
		const char *arg = *f + 2;
		const char *eq = strchr(arg, '=');
		_cleanup_free_ char *name = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
		const char *value = eq ? eq + 1 : NULL;
		size_t i;
		for (i = 0; i < n_specs; i++)
			if (streq(specs[i].name, name))
				break;
		if (i == n_specs)
			return build_df_error(p, in->line, "unknown flag: %s", name);
		const struct flag_spec *s = &specs[i];
		if (seen[i] && s->kind != FL_ARRAY)
			return build_df_error(p, in->line, "duplicate flag specified: %s", name);
		seen[i] = true;
		char *field = (char *)base + s->off;
		switch (s->kind) {
		case FL_BOOL:
			if (!value || strcasecmp(value, "true") == 0)
				*(bool *)field = true;
			else if (strcasecmp(value, "false") == 0)
				*(bool *)field = false;
			else
				return build_df_error(
				    p, in->line, "expecting boolean value for flag %s, not: %s", name, value);
			break;
		case FL_STRING:
			if (!value)
				return build_df_error(p, in->line, "missing a value on flag: %s", name);
			*(char **)field = xstrdup(value);
			break;
		case FL_ARRAY:
			if (!value)
				return build_df_error(p, in->line, "missing a value on flag: %s", name);
			strv_add((char ***)field, value);
			break;
		}
	}
	return 0;
}

#define PARSE_FLAGS(p, in, specs, base) parse_flags(p, in, specs, ARRAY_SIZE(specs), base)

static int no_flags(struct df_parser *p, const struct df_instr *in)
{
	return parse_flags(p, in, NULL, 0, NULL);
}

/* --- per instruction ----------------------------------------------------- */

static int err_at_least_one(struct df_parser *p, const struct df_instr *in)
{
	return build_df_error(p, in->line, "%s requires at least one argument", build_df_cmd_name(in->cmd));
}

static int err_exactly_one(struct df_parser *p, const struct df_instr *in)
{
	return build_df_error(p, in->line, "%s requires exactly one argument", build_df_cmd_name(in->cmd));
}

static bool valid_stage_name(const char *s)
{
	if (!islower((unsigned char)*s))
		return false;
	for (s++; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

static int check_from(struct df_parser *p, struct df_instr *in)
{
	if (in->n_args == 3 && strcasecmp(in->args[1], "as") == 0) {
		_cleanup_free_ char *lower = xstrdup(in->args[2]);
		for (char *c = lower; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!valid_stage_name(lower))
			return build_df_error(p, in->line,
					      "invalid name for build stage: \"%s\", name can't start with a "
					      "number or contain symbols",
					      in->args[2]);
	} else if (in->n_args != 1) {
		return build_df_error(p, in->line, "FROM requires either one or three arguments");
	}
	return PARSE_FLAGS(p, in, from_flags, &in->opts);
}

static int check_copy(struct df_parser *p, struct df_instr *in)
{
	const char *name = build_df_cmd_name(in->cmd);
	if (in->n_args < 2)
		return build_df_error(
		    p, in->line,
		    "%s requires at least two arguments, but only one was provided. Destination "
		    "could not be determined",
		    name);
	int r = in->cmd == DF_COPY ? PARSE_FLAGS(p, in, copy_flags, &in->opts)
				   : PARSE_FLAGS(p, in, add_flags, &in->opts);
	if (r < 0)
		return r;
	if (build_df_word_is_heredoc(in->args[in->n_args - 1], NULL))
		return build_df_error(p, in->line, "%s cannot accept a heredoc as a destination", name);
	for (size_t i = 0; i + 1 < in->n_args; i++) {
		_cleanup_free_ char *hd = NULL;
		if (!build_df_word_is_heredoc(in->args[i], &hd))
			continue;
		bool found = false;
		for (size_t k = 0; k < in->n_heredocs; k++)
			found |= streq(in->heredocs[k].name, hd);
		if (!found)
			return build_df_error(p, in->line, "%s: no body for heredoc '%s'", name, hd);
	}
	return 0;
}

static int check_run(struct df_parser *p, struct df_instr *in)
{
	int r = PARSE_FLAGS(p, in, run_flags, &in->opts);
	if (r < 0)
		return r;
	if (in->n_args == 0 && !in->json)
		return err_at_least_one(p, in);
	if (in->opts.network && !streq(in->opts.network, "default") && !streq(in->opts.network, "none") &&
	    !streq(in->opts.network, "host"))
		return build_df_error(p, in->line, "unsupported network mode \"%s\"", in->opts.network);
	if (in->opts.security && !streq(in->opts.security, "sandbox") &&
	    !streq(in->opts.security, "insecure"))
		return build_df_error(p, in->line, "unsupported security mode \"%s\"", in->opts.security);
	for (char **m = in->opts.mounts; m && *m; m++) {
		/* Values may use $VARS: check the syntax now, values again after expansion. */
		struct df_mount mnt;
		struct berth_error *e = NULL;
		r = build_df_mount_parse(*m, &mnt, &e);
		build_df_mount_done(&mnt);
		if (r < 0) {
			_cleanup_free_ char *msg = berth_error_string(e);
			berth_error_free(e);
			return build_df_error(p, in->line, "%s", msg);
		}
	}
	return 0;
}

static int parse_interval(struct df_parser *p, const struct df_instr *in, const char *flag, const char *v,
			  int64_t *ret)
{
	*ret = 0;
	if (!v || !*v)
		return 0;
	int64_t ns;
	if (util_parse_duration_ns(v, &ns) < 0)
		return build_df_error(p, in->line, "time: invalid duration \"%s\"", v);
	if (ns == 0)
		return 0;
	if (ns < 1000000)
		return build_df_error(p, in->line, "Interval \"%s\" cannot be less than 1ms", flag);
	*ret = ns;
	return 0;
}

static int check_healthcheck(struct df_parser *p, struct df_instr *in)
{
	if (in->n_args == 0)
		return err_at_least_one(p, in);
	char *typ = in->args[0];
	for (char *c = typ; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	if (streq(typ, "NONE")) {
		if (in->n_args != 1)
			return build_df_error(p, in->line, "HEALTHCHECK NONE takes no arguments");
		return 0;
	}
	struct hc_flags f = { 0 };
	int r = PARSE_FLAGS(p, in, hc_flag_specs, &f);
	if (r >= 0 && !streq(typ, "CMD"))
		r = build_df_error(p, in->line, "Unknown type \"%s\" in HEALTHCHECK (try CMD)", typ);
	if (r >= 0 && in->n_args < 2)
		r = build_df_error(p, in->line, "Missing command after HEALTHCHECK CMD");
	if (r >= 0)
		r = parse_interval(p, in, "interval", f.interval, &in->opts.interval);
	if (r >= 0)
		r = parse_interval(p, in, "timeout", f.timeout, &in->opts.timeout);
	if (r >= 0)
		r = parse_interval(p, in, "start-period", f.start_period, &in->opts.start_period);
	if (r >= 0)
		r = parse_interval(p, in, "start-interval", f.start_interval, &in->opts.start_interval);
	if (r >= 0 && f.retries) {
		int64_t n;
		if (util_parse_int64(f.retries, &n) < 0 || n > INT32_MAX || n < INT32_MIN)
			r = build_df_error(p, in->line, "strconv.ParseInt: parsing \"%s\": invalid syntax",
					   f.retries);
		else if (n < 0)
			r = build_df_error(p, in->line, "--retries cannot be negative (%" PRId64 ")", n);
		else
			in->opts.retries = (int)n;
	}
	free(f.interval);
	free(f.timeout);
	free(f.start_period);
	free(f.start_interval);
	free(f.retries);
	return r;
}

static int check_onbuild(struct df_parser *p, struct df_instr *in)
{
	if (!in->trigger)
		return err_at_least_one(p, in);
	int r = no_flags(p, in);
	if (r < 0)
		return r;
	enum df_cmd t = in->trigger->cmd;
	if (t == DF_ONBUILD)
		return build_df_error(p, in->line, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
	if (t == DF_MAINTAINER || t == DF_FROM)
		return build_df_error(p, in->line, "%s isn't allowed as an ONBUILD trigger",
				      build_df_cmd_name(t));
	r = build_df_instr_check(p, in->trigger);
	if (r < 0)
		return r;
	/* The expression stored in the image: the line without "ONBUILD", plus heredoc bodies. */
	const char *s = in->original + strlen("ONBUILD");
	while (isspace((unsigned char)*s))
		s++;
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, s);
	for (size_t i = 0; i < in->trigger->n_heredocs; i++)
		strbuf_addf(&sb, "\n%s%s", in->trigger->heredocs[i].content, in->trigger->heredocs[i].name);
	in->expression = strbuf_detach(&sb, NULL);
	return 0;
}

static int check_kv(struct df_parser *p, struct df_instr *in)
{
	int r = no_flags(p, in);
	if (r < 0)
		return r;
	if (in->n_args == 0)
		return err_at_least_one(p, in);
	for (size_t i = 0; i < in->n_args; i += 2)
		if (!*in->args[i])
			return build_df_error(p, in->line, "%s names can not be blank",
					      build_df_cmd_name(in->cmd));
	return 0;
}

int build_df_instr_check(struct df_parser *p, struct df_instr *in)
{
	int r;
	switch (in->cmd) {
	case DF_FROM: return check_from(p, in);
	case DF_ADD:
	case DF_COPY: return check_copy(p, in);
	case DF_RUN: return check_run(p, in);
	case DF_HEALTHCHECK: return check_healthcheck(p, in);
	case DF_ONBUILD: return check_onbuild(p, in);
	case DF_ENV:
	case DF_LABEL: return check_kv(p, in);
	case DF_CMD:
	case DF_ENTRYPOINT: return no_flags(p, in);
	case DF_SHELL:
		if ((r = no_flags(p, in)) < 0)
			return r;
		if (!in->json)
			return build_df_error(p, in->line, "SHELL requires the arguments to be in JSON form");
		return in->n_args == 0 ? err_at_least_one(p, in) : 0;
	case DF_ARG:
	case DF_EXPOSE:
	case DF_VOLUME:
		if (in->n_args == 0)
			return err_at_least_one(p, in);
		if ((r = no_flags(p, in)) < 0)
			return r;
		if (in->cmd == DF_VOLUME)
			for (size_t i = 0; i < in->n_args; i++)
				if (!in->args[i][strspn(in->args[i], " \t")])
					return build_df_error(p, in->line,
							      "VOLUME specified can not be an empty string");
		return 0;
	case DF_MAINTAINER:
	case DF_STOPSIGNAL:
	case DF_USER:
	case DF_WORKDIR:
		if (in->n_args != 1)
			return err_exactly_one(p, in);
		return no_flags(p, in);
	default: return build_df_error(p, in->line, "internal error: unhandled instruction");
	}
}

/* --- unknown instructions ------------------------------------------------ */

static size_t levenshtein(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 32 || lb > 32)
		return SIZE_MAX;
	size_t d[33][33];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = toupper((unsigned char)a[i - 1]) != toupper((unsigned char)b[j - 1]);
			d[i][j] = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
		}
	return d[la][lb];
}

int build_df_unknown_instruction(const struct df_parser *p, int line, const char *word)
{
	_cleanup_free_ char *upper = xstrdup(word);
	for (char *c = upper; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	size_t best = SIZE_MAX;
	const char *suggest = NULL;
	for (int i = 0; i < _DF_CMD_MAX; i++) {
		size_t d = levenshtein(word, build_df_cmd_name((enum df_cmd)i));
		if (d < best) {
			best = d;
			suggest = build_df_cmd_name((enum df_cmd)i);
		}
	}
	if (best <= 2 && best < strlen(word))
		return build_df_error(p, line, "unknown instruction: %s (did you mean %s?)", upper, suggest);
	return build_df_error(p, line, "unknown instruction: %s", upper);
}

/* --- stages -------------------------------------------------------------- */

ssize_t build_dockerfile_find_stage(const struct dockerfile *df, const char *name)
{
	for (size_t i = 0; i < df->n_stages; i++)
		if (df->stages[i].name && strcasecmp(df->stages[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static int group_stages(struct df_parser *p)
{
	struct dockerfile *df = p->df;
	for (size_t i = 0; i < df->n_instrs; i++) {
		struct df_instr *in = &df->instrs[i];
		if (df->n_stages == 0 && in->cmd == DF_ARG) {
			df->n_meta++;
			continue;
		}
		if (in->cmd != DF_FROM) {
			if (df->n_stages == 0)
				return build_df_error(p, in->line, "no build stage in current context");
			df->stages[df->n_stages - 1].n++;
			continue;
		}
		if (df->n_stages >= DF_MAX_STAGES)
			return build_df_error(p, in->line, "too many build stages (limit %d)", DF_MAX_STAGES);
		struct df_stage st = { .from = i, .first = i + 1 };
		st.base = xstrdup(in->args[0]);
		if (in->n_args == 3) {
			st.name = xstrdup(in->args[2]);
			for (char *c = st.name; *c; c++)
				*c = (char)tolower((unsigned char)*c);
			if (build_dockerfile_find_stage(df, st.name) >= 0) {
				int r = build_df_error(p, in->line, "duplicate stage name \"%s\"", st.name);
				free(st.name);
				free(st.base);
				return r;
			}
		}
		st.platform = in->opts.platform ? xstrdup(in->opts.platform) : NULL;
		df->stages = xrealloc(df->stages, (df->n_stages + 1) * sizeof(st));
		df->stages[df->n_stages++] = st;
	}
	if (df->n_instrs == 0)
		return berth_error_msg(p->err, EINVAL, "%s: the Dockerfile cannot be empty", p->name);
	if (df->n_stages == 0)
		return berth_error_msg(p->err, EINVAL, "%s: dockerfile contains no stages to build", p->name);
	return 0;
}

int build_dockerfile_parse(const char *text, size_t len, const char *name, struct dockerfile **ret,
			   struct berth_error **err)
{
	if (!name)
		name = "Dockerfile";
	if (len > DF_MAX_SIZE)
		return berth_error_msg(err, EFBIG, "%s: file too large (%zu bytes, limit %u)", name, len,
				       DF_MAX_SIZE);
	if (memchr(text, '\0', len))
		return berth_error_msg(err, EINVAL, "%s: file contains a NUL byte", name);
	_cleanup_dockerfile_ struct dockerfile *df = xcalloc(1, sizeof(*df));
	df->name = xstrdup(name);
	df->warnings = xcalloc(1, sizeof(char *));
	struct df_parser p = { .text = text, .len = len, .escape = '\\', .name = name, .df = df, .err = err };
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		p.pos = 3;
	int r = build_df_parse_lines(&p);
	if (r < 0)
		return r;
	df->escape = p.escape;
	for (size_t i = 0; i < df->n_instrs; i++) {
		if ((r = build_df_instr_check(&p, &df->instrs[i])) < 0)
			return r;
		if (df->instrs[i].cmd == DF_MAINTAINER)
			build_df_warn(&p, df->instrs[i].line,
				      "MAINTAINER instruction is deprecated in favor of using label");
	}
	if ((r = group_stages(&p)) < 0)
		return r;
	*ret = TAKE_PTR(df);
	return 0;
}

int build_dockerfile_parse_trigger(const char *line, struct df_instr **ret, struct berth_error **err)
{
	struct dockerfile tmp = { .warnings = xcalloc(1, sizeof(char *)) };
	struct df_parser p = {
		.text = line, .len = strlen(line), .escape = '\\', .name = "ONBUILD", .df = &tmp, .err = err
	};
	struct df_instr *in = xcalloc(1, sizeof(*in));
	/* A stored trigger may carry heredoc bodies after its first line. */
	int r = build_df_parse_lines(&p);
	if (r >= 0 && tmp.n_instrs != 1)
		r = berth_error_msg(err, EINVAL, "ONBUILD trigger '%s': expected one instruction", line);
	if (r >= 0)
		r = build_df_instr_check(&p, &tmp.instrs[0]);
	if (r >= 0 && (tmp.instrs[0].cmd == DF_ONBUILD || tmp.instrs[0].cmd == DF_FROM ||
		       tmp.instrs[0].cmd == DF_MAINTAINER))
		r = berth_error_msg(err, EINVAL, "%s isn't allowed as an ONBUILD trigger",
				    build_df_cmd_name(tmp.instrs[0].cmd));
	if (r >= 0) {
		*in = tmp.instrs[0];
		tmp.n_instrs = 0;
		*ret = in;
	} else {
		free(in);
	}
	for (size_t i = 0; i < tmp.n_instrs; i++)
		build_df_instr_done(&tmp.instrs[i]);
	free(tmp.instrs);
	strv_free(tmp.warnings);
	return r;
}

/* --- free ---------------------------------------------------------------- */

void build_df_instr_done(struct df_instr *in)
{
	if (!in)
		return;
	free(in->original);
	strv_free(in->flags);
	strv_free(in->args);
	for (size_t i = 0; i < in->n_heredocs; i++) {
		free(in->heredocs[i].name);
		free(in->heredocs[i].content);
	}
	free(in->heredocs);
	struct df_opts *o = &in->opts;
	free(o->platform);
	free(o->from);
	free(o->chown);
	free(o->chmod);
	free(o->checksum);
	strv_free(o->exclude);
	strv_free(o->mounts);
	free(o->network);
	free(o->security);
	in->trigger = build_df_instr_free(in->trigger);
	free(in->expression);
	memset(in, 0, sizeof(*in));
}

struct df_instr *build_df_instr_free(struct df_instr *in)
{
	build_df_instr_done(in);
	free(in);
	return NULL;
}

struct dockerfile *build_dockerfile_free(struct dockerfile *df)
{
	if (!df)
		return NULL;
	for (size_t i = 0; i < df->n_instrs; i++)
		build_df_instr_done(&df->instrs[i]);
	free(df->instrs);
	for (size_t i = 0; i < df->n_stages; i++) {
		free(df->stages[i].name);
		free(df->stages[i].base);
		free(df->stages[i].platform);
	}
	free(df->stages);
	strv_free(df->warnings);
	free(df->syntax);
	free(df->check);
	free(df->name);
	free(df);
	return NULL;
}
