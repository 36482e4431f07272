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
int runtime_cli_parse(const char *verb, int argc, char **argv, const struct cli_opt *opts, size_t n_opts);

/* Print the error chain once, to stderr and to the --log file (text or json). */
void runtime_cli_error(const struct berth_error *err);
int runtime_cli_usage_error(const char *fmt, ...) _printf_(1, 2);

/* Global state parsed by runtime_main. */
struct cli_globals {
	struct runtime_ctx ctx;
	char **argv_full; /* for re-exec from the sealed memfd */
};
extern struct cli_globals runtime_cli_g;

int runtime_cli_cmd_create(int argc, char **argv);
int runtime_cli_cmd_run(int argc, char **argv);
int runtime_cli_cmd_exec(int argc, char **argv);

#endif
