/*
 * plan-steps.c - one Dockerfile instruction applied to a stage's state:
 * expansion with BuildKit's scoping (ENV over ARG; ARG values from
 * --build-arg, the default, or the global scope), the image config change,
 * the operation for the executor and the step's cache key.
 */
#include <ctype.h>

#include "build/build-internal.h"
#include "build/pathmatch.h"
#include "build/shlex.h"
#include "common/json.h"
#include "common/strbuf.h"

#define DEFAULT_SHELL_0 "/bin/sh"
#define DEFAULT_SHELL_1 "-c"

char **build_plan_shell(const json_t *config)
{
	char **v = xcalloc(1, sizeof(char *));
	json_t *sh = json_object_get(config, "Shell"), *e;
	size_t i;
	if (json_is_array(sh) && json_array_size(sh) > 0) {
		json_array_foreach (sh, i, e)
			strv_add(&v, json_is_string(e) ? json_string_value(e) : "");
		return v;
	}
	strv_add(&v, DEFAULT_SHELL_0);
	strv_add(&v, DEFAULT_SHELL_1);
	return v;
}

/* Command line of CMD/ENTRYPOINT/RUN/HEALTHCHECK: exec form, or shell + line. */
static char **cmdline_of(const struct df_instr *in, char *const *args, const json_t *config)
{
	if (in->json)
		return strv_dup(args);
	char **v = build_plan_shell(config);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; args[i]; i++) {
		if (i)
			strbuf_addch(&sb, ' ');
		strbuf_addstr(&sb, args[i]);
	}
	if (args[0])
		strv_add(&v, sb.buf);
	return v;
}

static void config_set_env(json_t *config, const char *key, const char *value)
{
	json_t *env = json_object_get(config, "Env");
	if (!json_is_array(env)) {
		env = json_array();
		json_object_set_new(config, "Env", env);
	}
	_cleanup_free_ char *kv = xasprintf("%s=%s", key, value);
	size_t kl = strlen(key), i;
	json_t *e;
	json_array_foreach (env, i, e) {
		const char *s = json_string_value(e);
		if (s && strncmp(s, key, kl) == 0 && s[kl] == '=') {
			json_array_set_new(env, i, json_string(kv));
			return;
		}
	}
	json_array_append_new(env, json_string(kv));
}

static json_t *config_object(json_t *config, const char *key)
{
	json_t *o = json_object_get(config, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(config, key, o);
	}
	return o;
}

/* --- config-only instructions -------------------------------------------- */

static int apply_kv(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env)
{
	const struct df_instr *in = s->in;
	struct strbuf t = STRBUF_INIT;
	strbuf_addstr(&t, build_df_cmd_name(in->cmd));
	_cleanup_strv_ char **kv = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i + 1 < in->n_args; i += 2) {
		_cleanup_free_ char *k = NULL, *v = NULL;
		if (build_plan_expand(pl, in, env, in->args[i], &k) < 0 ||
		    build_plan_expand(pl, in, env, in->args[i + 1], &v) < 0) {
			strbuf_release(&t);
			return -EINVAL;
		}
		strbuf_addf(&t, " %s=%s", k, v);
		strv_add(&kv, k);
		strv_add(&kv, v);
	}
	for (size_t i = 0; kv[i]; i += 2) {
		if (in->cmd == DF_ENV)
			config_set_env(st->config, kv[i], kv[i + 1]);
		else
			json_object_set_new(config_object(st->config, "Labels"), kv[i],
					    json_string(kv[i + 1]));
	}
	s->text = strbuf_detach(&t, NULL);
	return 0;
}

static int apply_arg(struct planner *pl, struct stage_state *st, struct plan_step *s)
{
	const struct df_instr *in = s->in;
	struct strbuf t = STRBUF_INIT;
	strbuf_addstr(&t, "ARG");
	for (char **a = in->args; *a; a++) {
		_cleanup_strv_ char **env = build_stage_expand_env(st);
		char *eq = strchr(*a, '=');
		_cleanup_free_ char *raw = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		_cleanup_free_ char *name = NULL, *value = NULL;
		if (build_plan_expand(pl, in, env, raw, &name) < 0) {
			strbuf_release(&t);
			return -EINVAL;
		}
		const char *given = build_plan_build_arg(pl, name);
		if (given) {
			value = xstrdup(given);
		} else if (eq) {
			if (build_plan_expand(pl, in, env, eq + 1, &value) < 0) {
				strbuf_release(&t);
				return -EINVAL;
			}
		} else {
			const char *meta = build_shlex_env_get(pl->plan->meta_env, name);
			value = meta ? xstrdup(meta) : NULL;
		}
		if (value) {
			build_env_set(&st->args, name, value);
			strbuf_addf(&t, " %s=%s", name, value);
		} else {
			strbuf_addf(&t, " %s", name);
		}
	}
	s->text = strbuf_detach(&t, NULL);
	return 0;
}

static int parse_port(const char *s, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0 || v > 65535 || !isdigit((unsigned char)*s))
		return -EINVAL;
	*ret = v;
	return 0;
}

/* nat.ParsePortSpecs for EXPOSE: [ip:[hostport:]]port[-port][/proto] */
static int expose_one(struct planner *pl, const struct df_instr *in, json_t *ports, const char *spec)
{
	_cleanup_free_ char *s = xstrdup(spec);
	char *slash = strrchr(s, '/');
	if (slash)
		*slash++ = '\0';
	_cleanup_free_ char *proto = xstrdup(slash ? slash : "tcp");
	for (char *c = proto; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (!streq(proto, "tcp") && !streq(proto, "udp") && !streq(proto, "sctp"))
		return build_plan_error(pl, in, "invalid proto: %s", proto);
	char *port = strrchr(s, ':');
	port = port ? port + 1 : s;
	char *dash = strchr(port, '-');
	long lo, hi;
	if (dash)
		*dash = '\0';
	if (parse_port(port, &lo) < 0 || (dash && parse_port(dash + 1, &hi) < 0))
		return build_plan_error(pl, in, "invalid containerPort: %s", spec);
	if (!dash)
		hi = lo;
	if (hi < lo)
		return build_plan_error(pl, in, "invalid range specified for container port: %s", spec);
	if (hi - lo > 65535)
		return build_plan_error(pl, in, "invalid containerPort: %s", spec);
	for (long p = lo; p <= hi; p++) {
		_cleanup_free_ char *key = xasprintf("%ld/%s", p, proto);
		json_object_set_new(ports, key, json_object());
	}
	return 0;
}

static int apply_expose(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env)
{
	const struct df_instr *in = s->in;
	struct strbuf t = STRBUF_INIT;
	strbuf_addstr(&t, "EXPOSE");
	json_t *ports = config_object(st->config, "ExposedPorts");
	int r = 0;
	for (char **a = in->args; *a && r >= 0; a++) {
		_cleanup_strv_ char **words = NULL;
		struct berth_error *e = NULL;
		if (build_shlex_process_words(*a, pl->df->escape, env, 0, &words, &e) < 0) {
			_cleanup_free_ char *m = berth_error_string(e);
			berth_error_free(e);
			r = build_plan_error(pl, in, "%s", m);
			break;
		}
		for (char **w = words; *w && r >= 0; w++) {
			r = expose_one(pl, in, ports, *w);
			strbuf_addf(&t, " %s", *w);
		}
	}
	if (r < 0) {
		strbuf_release(&t);
		return r;
	}
	s->text = strbuf_detach(&t, NULL);
	return 0;
}

static const char *const signames[] = {
	"HUP",  "INT",  "QUIT", "ILL",    "TRAP",   "ABRT",  "IOT", "BUS",  "FPE",  "KILL", "USR1",  "SEGV",
	"USR2", "PIPE", "ALRM", "TERM",   "STKFLT", "CHLD",  "CLD", "CONT", "STOP", "TSTP", "TTIN",  "TTOU",
	"URG",  "XCPU", "XFSZ", "VTALRM", "PROF",   "WINCH", "IO",  "POLL", "PWR",  "SYS",  "RTMIN", "RTMAX",
};

static bool valid_signal(const char *raw)
{
	_cleanup_free_ char *u = xstrdup(raw);
	for (char *c = u; *c; c++)
		*c = (char)toupper((unsigned char)*c);
	const char *s = startswith(u, "SIG") ? u + 3 : u;
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n >= 1 && n <= 64;
	for (size_t i = 0; i < ARRAY_SIZE(signames); i++)
		if (streq(s, signames[i]))
			return true;
	if (startswith(s, "RTMIN+") || startswith(s, "RTMAX-")) {
		n = strtol(s + 6, &end, 10);
		return s[6] && !*end && n >= 1 && n <= 15;
	}
	return false;
}

static int apply_single(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env)
{
	const struct df_instr *in = s->in;
	_cleanup_free_ char *v = NULL;
	if (build_plan_expand(pl, in, env, in->args[0], &v) < 0)
		return -EINVAL;
	switch (in->cmd) {
	case DF_USER: json_object_set_new(st->config, "User", json_string(v)); break;
	case DF_STOPSIGNAL:
		if (!valid_signal(v))
			return build_plan_error(pl, in, "Invalid signal: %s", v);
		json_object_set_new(st->config, "StopSignal", json_string(v));
		break;
	case DF_WORKDIR: {
		const char *cur = json_string_value(json_object_get(st->config, "WorkingDir"));
		_cleanup_free_ char *joined =
		    v[0] == '/' ? xstrdup(v) : xasprintf("%s/%s", cur && *cur ? cur : "/", v);
		_cleanup_free_ char *clean = build_go_path_clean(joined);
		json_object_set_new(st->config, "WorkingDir", json_string(clean));
		s->op = OP_MKDIR;
		s->mkdir = TAKE_PTR(clean);
		break;
	}
	default: /* MAINTAINER */
		free(pl->plan->stages[st->index].author);
		pl->plan->stages[st->index].author = xstrdup(v);
		break;
	}
	s->text = xasprintf("%s %s", build_df_cmd_name(in->cmd), v);
	return 0;
}

static void apply_cmd(struct stage_state *st, struct plan_step *s)
{
	const struct df_instr *in = s->in;
	_cleanup_strv_ char **argv = cmdline_of(in, in->args, st->config);
	bool is_cmd = in->cmd == DF_CMD;
	if (!is_cmd && in->json && !argv[0])
		json_object_set_new(st->config, "Entrypoint", json_null());
	else
		json_object_set_new(st->config, is_cmd ? "Cmd" : "Entrypoint", strv_to_json(argv));
	if (is_cmd)
		st->cmd_set = true;
	else if (!st->cmd_set)
		json_object_set_new(st->config, "Cmd", json_null());
	_cleanup_free_ char *j =
	    json_dumps(json_object_get(st->config, is_cmd ? "Cmd" : "Entrypoint"), JSON_COMPACT);
	s->text = xasprintf("%s %s", build_df_cmd_name(in->cmd), j ? j : "null");
}

static void apply_healthcheck(struct stage_state *st, struct plan_step *s)
{
	const struct df_instr *in = s->in;
	json_t *hc = json_object();
	if (streq(in->args[0], "NONE")) {
		json_object_set_new(hc, "Test", json_pack("[s]", "NONE"));
	} else {
		json_t *test = json_array();
		json_array_append_new(test, json_string(in->json ? "CMD" : "CMD-SHELL"));
		for (size_t i = 1; i < in->n_args; i++)
			json_array_append_new(test, json_string(in->args[i]));
		json_object_set_new(hc, "Test", test);
		const struct df_opts *o = &in->opts;
		if (o->interval)
			json_object_set_new(hc, "Interval", json_integer(o->interval));
		if (o->timeout)
			json_object_set_new(hc, "Timeout", json_integer(o->timeout));
		if (o->start_period)
			json_object_set_new(hc, "StartPeriod", json_integer(o->start_period));
		if (o->start_interval)
			json_object_set_new(hc, "StartInterval", json_integer(o->start_interval));
		if (o->retries)
			json_object_set_new(hc, "Retries", json_integer(o->retries));
	}
	json_object_set_new(st->config, "Healthcheck", hc);
	_cleanup_free_ char *j = json_dumps(hc, JSON_COMPACT | JSON_SORT_KEYS);
	s->text = xasprintf("HEALTHCHECK %s", j ? j : "{}");
}

static int apply_misc(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env)
{
	const struct df_instr *in = s->in;
	switch (in->cmd) {
	case DF_CMD:
	case DF_ENTRYPOINT: apply_cmd(st, s); return 0;
	case DF_HEALTHCHECK: apply_healthcheck(st, s); return 0;
	case DF_SHELL:
		json_object_set_new(st->config, "Shell", strv_to_json(in->args));
		s->text = xasprintf("SHELL %s", in->original + strspn(in->original + strlen("SHELL"), " \t") +
						    strlen("SHELL"));
		return 0;
	case DF_ONBUILD: {
		json_t *ob = json_object_get(st->config, "OnBuild");
		if (!json_is_array(ob)) {
			ob = json_array();
			json_object_set_new(st->config, "OnBuild", ob);
		}
		json_array_append_new(ob, json_string(in->expression));
		s->text = xasprintf("ONBUILD %s", in->expression);
		return 0;
	}
	case DF_VOLUME: {
		json_t *vols = config_object(st->config, "Volumes");
		struct strbuf t = STRBUF_INIT;
		strbuf_addstr(&t, "VOLUME");
		for (char **a = in->args; *a; a++) {
			_cleanup_free_ char *v = NULL;
			if (build_plan_expand(pl, in, env, *a, &v) < 0 || !v[strspn(v, " \t")]) {
				strbuf_release(&t);
				return v ? build_plan_error(pl, in,
							    "VOLUME specified can not be an empty string")
					 : -EINVAL;
			}
			json_object_set_new(vols, v, json_object());
			strbuf_addf(&t, " %s", v);
		}
		s->text = strbuf_detach(&t, NULL);
		return 0;
	}
	default:
		return build_plan_error(pl, in, "internal error: unhandled instruction %s",
					build_df_cmd_name(in->cmd));
	}
}

/* --- dispatch and cache key ---------------------------------------------- */

int build_plan_apply(struct planner *pl, struct stage_state *st, struct plan_step *s)
{
	const struct df_instr *in = s->in;
	_cleanup_strv_ char **env = build_stage_expand_env(st);
	_cleanup_json_ json_t *desc = json_object();
	int r;
	switch (in->cmd) {
	case DF_ENV:
	case DF_LABEL: r = apply_kv(pl, st, s, env); break;
	case DF_ARG: r = apply_arg(pl, st, s); break;
	case DF_EXPOSE: r = apply_expose(pl, st, s, env); break;
	case DF_USER:
	case DF_STOPSIGNAL:
	case DF_WORKDIR:
	case DF_MAINTAINER: r = apply_single(pl, st, s, env); break;
	case DF_RUN: r = build_plan_run(pl, st, s, env, desc); break;
	case DF_ADD:
	case DF_COPY: r = build_plan_copy(pl, st, s, env, desc); break;
	default: r = apply_misc(pl, st, s, env); break;
	}
	if (r < 0)
		return r;
	s->config = json_deep_copy(st->config);
	json_object_set_new(desc, "step", json_string(s->text));
	_cleanup_free_ char *canon = json_dumps(desc, JSON_COMPACT | JSON_SORT_KEYS);
	_cleanup_free_ char *input = xasprintf("%s\n%s", st->key, canon ? canon : "");
	digest_buffer(DIGEST_SHA256, input, strlen(input), s->key);
	memcpy(st->key, s->key, DIGEST_STRING_MAX);
	return 0;
}
