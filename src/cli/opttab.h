/*
 * opttab.h - how cli/'s verbs use the option tables of common/opttab.h: a
 * verb's whole parse (cli_opttab_parse: getopt_long over the table and
 * "--help", the verb's usage on --help and on errors, exit codes as docker's
 * CLI) and the callbacks only cli/ needs (K=V labels, docker's --filter).
 */
#ifndef BERTH_CLI_OPTTAB_H
#define BERTH_CLI_OPTTAB_H

#include "common/opttab.h"

/*
 * A verb's whole option parsing: getopt_long over argv with t and "--help", optind left at the
 * first operand. false: --help (usage on stdout, *ret_rc 0), an unknown option or a bad value
 * (usage on stderr, *ret_rc CLI_EXIT_DAEMON); the caller returns *ret_rc. shortopts_prefix: "+"
 * to stop at the first operand, or NULL.
 */
bool cli_opttab_parse(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
		      const char *usage, int *ret_rc);

/*
 * How a verb answers --help and a bad option, for the verbs whose wording
 * predates the table (kept byte for byte):
 *   CLI_USAGE_HINT  cli_usage(): "Usage: berth <text>" (one newline added if
 *                   missing) and, on errors, "\nRun 'berth --help' for more information";
 *   CLI_USAGE_PLAIN "Usage: berth <text>\n" and nothing more;
 *   CLI_USAGE_SEE   docker's: an error prints only "See 'berth <verb> --help'."
 *                   (after getopt's or the value's message); --help prints help as PLAIN.
 * error: the text shown on errors (NULL: help's). Errors exit CLI_EXIT_DAEMON (125).
 */
enum cli_usage_style { CLI_USAGE_HINT, CLI_USAGE_PLAIN, CLI_USAGE_SEE };
struct cli_usage {
	enum cli_usage_style style;
	const char *help;  /* after "Usage: berth " */
	const char *error; /* after "Usage: berth " on errors; NULL: help (not for SEE) */
	const char *verb;  /* SEE: the verb named in "See 'berth <verb> --help'." */
	bool short_help;   /* -h is --help too (docker's; only where no option takes -h) */
};
/* Print u's help (stdout, returns 0) or its error usage (stderr, returns 125). */
int cli_usage_print(const struct cli_usage *u, bool help);
/* cli_opttab_parse with a struct cli_usage instead of cli_usage()'s text. */
bool cli_opttab_parse_usage(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
			    const struct cli_usage *u, int *ret_rc);

/* CLI_OPT_CALL callbacks: "k=v" into the JSON object dest (strv_kv_set); a docker --filter
 * "k=v" into the filters object dest (cli_filter_add). */
int cli_opt_kv(void *dest, const char *arg);
int cli_opt_filter(void *dest, const char *arg);
#define CLI_OPT_KV(name, short_name, obj)                                                    \
	{                                                                                    \
		(name), (short_name), CLI_OPT_CALL, (obj), .fn = cli_opt_kv, .has_arg = true \
	}
#define CLI_OPT_FILTER(name, short_name, obj)                                                    \
	{                                                                                        \
		(name), (short_name), CLI_OPT_CALL, (obj), .fn = cli_opt_filter, .has_arg = true \
	}

#endif
