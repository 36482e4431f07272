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
	struct dockerfile *df;
	struct berth_error **err;
};

int df_error(const struct df_parser *p, int line, const char *fmt, ...) _printf_(3, 4);
void df_warn(struct df_parser *p, int line, const char *fmt, ...) _printf_(3, 4);
int df_unknown_instruction(const struct df_parser *p, int line, const char *word);
int df_cmd_lookup(const char *word);
char **df_parse_words(const char *rest, char escape);
bool df_word_is_heredoc(const char *word, char **ret_name);
int df_instr_from_line(struct df_parser *p, const char *line, int lineno, struct df_instr *in);
int df_parse_lines(struct df_parser *p);
int df_instr_check(struct df_parser *p, struct df_instr *in);

#endif
