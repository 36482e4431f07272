/*
 * cli.h - shared pieces of the `berth runtime` front end (cli.c, cli-run.c).
 * A small getopt-like parser that accepts runc's spellings: "--flag value",
 * "--flag=value", "-f value", and booleans.
 */
#ifndef BERTH_RUNTIME_CLI_H
#define BERTH_RUNTIME_CLI_H

#include "runtime/runtime.h"

enum cli_opt_kind {
	OPT_BOOL,
	OPT_STR,
	OPT_LIST, /* repeatable: appended to a char ** vector */
};

struct cli_opt {
	const char *name; /* long name without "--" */
	char short_name;  /* 0: none */
	enum cli_opt_kind kind;
	void *dst; /* bool *, const char **, or char *** */
};

/*
 * Parse options of a verb from argv[1..] (argv[0] is the verb); stop at the
 * first non-option (or "--"). Returns the index of the first positional
 * argument, or -1 after printing an error to stderr.
 */
int cli_parse(const char *verb, int argc, char **argv, const struct cli_opt *opts, size_t n_opts);

/* Print the error chain once, to stderr and to the --log file (text or json). */
void cli_error(const struct berth_error *err);
int cli_usage_error(const char *fmt, ...) _printf_(1, 2);

/* Global state parsed by cmd_runtime. */
struct cli_globals {
	struct runtime_ctx ctx;
	char **argv_full; /* for re-exec from the sealed memfd */
};
extern struct cli_globals cli_g;

int cli_cmd_create(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_exec(int argc, char **argv);

#endif
