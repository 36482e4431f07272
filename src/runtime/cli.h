/*
 * cli.h - shared pieces of the `berth runtime` front end (cli.c, cli-run.c).
 * Options are common/opttab.h tables read with runc's spellings (Go's flag
 * package): "--flag value", "--flag=value", "-flag value", "-f value", and
 * booleans as "--flag" or "--flag=false".
 */
#ifndef BERTH_RUNTIME_CLI_H
#define BERTH_RUNTIME_CLI_H

#include "common/opttab.h"
#include "runtime/runtime.h"

/*
 * Parse the options of a verb from argv[1..] (argv[0] is the verb) with the
 * table opts (NULL: none) in runc's syntax (common/opttab.h,
 * opttab_scan_go); stop at the first operand (or after "--"). Returns the
 * index of the first operand, or -1 after printing an error to stderr.
 */
int runtime_cli_parse(const char *verb, int argc, char **argv, const struct cli_opt *opts);

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
