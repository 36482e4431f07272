/*
 * build-internal.h - helpers shared between the files of src/build/; not
 * part of the module's API.
 */
#ifndef BERTH_BUILD_INTERNAL_H
#define BERTH_BUILD_INTERNAL_H

#include <stdarg.h>

#include "build/dockerfile.h"

#define DF_MAX_HEREDOCS 64

struct df_parser {
	const char *text;
	size_t len, pos;
	int lineno;
	char escape;
	const char *name;
	bool in_onbuild; /* parsing an ONBUILD trigger */
	struct dockerfile *df;
	struct berth_error **err;
};

int build_df_error(const struct df_parser *p, int line, const char *fmt, ...) _printf_(3, 4);
void build_df_warn(struct df_parser *p, int line, const char *fmt, ...) _printf_(3, 4);
int build_df_unknown_instruction(const struct df_parser *p, int line, const char *word);
int build_df_cmd_lookup(const char *word);
char **build_df_parse_words(const char *rest, char escape);
bool build_df_word_is_heredoc(const char *word, char **ret_name);
int build_df_instr_from_line(struct df_parser *p, const char *line, int lineno, struct df_instr *in);
int build_df_parse_lines(struct df_parser *p);
int build_df_instr_check(struct df_parser *p, struct df_instr *in);

#endif

/* --- planner internals (plan.c, plan-steps.c) ---------------------------- */
#include <jansson.h>

#include "build/plan.h"
#include "common/json.h"
#include "common/strv.h"

struct planner {
	const struct dockerfile *df;
	struct build_context *ctx;
	const struct build_plan_opts *opts;
	struct build_plan *plan;
	int *state;     /* per stage: 0 new, 1 in progress, 2 done */
	bool *arg_used; /* per opts->build_args entry */
	struct berth_error **err;
};

/* Processing state of one stage. */
struct stage_state {
	size_t index;
	json_t *config; /* docker container config being built */
	char **args;    /* declared ARGs with a value, "K=V" */
	bool cmd_set;
	char key[DIGEST_STRING_MAX];
};

/* Set KEY=value in an environment vector (replacing an existing KEY). */
void build_env_set(char ***env, const char *key, const char *value);
/* The environment for expansion: ARGs overlaid by ENV. */
char **build_stage_expand_env(const struct stage_state *st);
/* build_shlex_process_word with the Dockerfile's escape and a located error. */
int build_plan_expand(struct planner *pl, const struct df_instr *in, char *const *env, const char *word,
		      char **ret);
int build_plan_error(struct planner *pl, const struct df_instr *in, const char *fmt, ...) _printf_(3, 4);
/* Process stage i (and, first, what it depends on). */
int build_plan_stage(struct planner *pl, size_t i);
/* Apply one instruction to the stage: fills step (text, op, config) and updates st. */
int build_plan_apply(struct planner *pl, struct stage_state *st, struct plan_step *step);
/* Record that stage `st` depends on stage `dep` (processing dep first). */
int build_plan_depend(struct planner *pl, struct stage_state *st, const struct df_instr *in, const char *name,
		      ssize_t *ret_stage);
/* Build arg value for key, marking it used; NULL if not given. */
const char *build_plan_build_arg(struct planner *pl, const char *key);
void build_plan_step_done(struct plan_step *s);
int build_plan_run(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env,
		   json_t *desc);
int build_plan_copy(struct planner *pl, struct stage_state *st, struct plan_step *s, char *const *env,
		    json_t *desc);
bool build_plan_is_proxy_arg(const char *key);
/* The config's Shell (SHELL), or ["/bin/sh", "-c"]: a shell form's argv before its line. Caller frees. */
char **build_plan_shell(const json_t *config);
