/*
 * opttab.h - table-driven command line options for every front end (the
 * docker-style CLI in cli/, the daemon, server, agent, registry, the
 * runtime, the hidden tools): a front end lists its options once (name,
 * short letter, kind, destination) instead of a `struct option` array, a
 * switch over option codes and per-value checks.
 *
 * One table, two syntaxes:
 *   opttab_scan()    GNU getopt_long's: "-abc" clusters, "--name=value"
 *                        and "--name value", unambiguous abbreviations,
 *                        operands permuted unless the short string starts
 *                        with "+"; getopt prints its own messages for an
 *                        unknown option or a missing value;
 *   opttab_scan_go() Go's flag package as runc (urfave/cli v1) reads it:
 *                        "-name" or "--name", exact names only, "=value" or
 *                        the next word, booleans take only "=value", no
 *                        clusters, stops at the first operand.
 *
 * Tables are usually built on the stack (destinations are the front end's
 * locals) and end with an entry whose name is NULL. A bad value prints one
 * message ("berth: invalid --port 'x': expected an integer from 1 to 65535")
 * and the scan reports it; the front end prints its usage as it likes.
 */
#ifndef BERTH_COMMON_OPTTAB_H
#define BERTH_COMMON_OPTTAB_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

enum cli_opt_kind {
	CLI_OPT_FLAG,      /* no argument: *(bool *)dest = true */
	CLI_OPT_STRING,    /* *(const char **)dest = the argument (last one wins; argv's string) */
	CLI_OPT_LONG,      /* *(long *)dest = an integer in [min, max] */
	CLI_OPT_JSON_STR,  /* dest (json_t * object)[key] = the argument */
	CLI_OPT_JSON_INT,  /* dest[key] = an integer in [min, max] */
	CLI_OPT_JSON_TRUE, /* no argument: dest[key] = true */
	CLI_OPT_CALL,      /* fn(dest, arg) (arg NULL for no_argument when !has_arg); < 0 fails */
	/*
	 * An optional value (docker's boolean flags): "--name" sets *(bool *)dest
	 * true, "--name=true|1" true, "--name=false|0" false, anything else fails;
	 * the short letter takes no value.
	 */
	CLI_OPT_BOOL,
	CLI_OPT_JSON_APPEND, /* the argument appended to the array dest[key] (made on first use) */
	CLI_OPT_STRV,        /* a copy of the argument appended to the strv *(char ***)dest (common/strv.h) */
	CLI_OPT_ENTRY,       /* entry_fn(the entry itself, arg): a callback that needs key/name/min/max */
	CLI_OPT_STRDUP,      /* *(char **)dest freed, then a copy of the argument (owned by dest) */
	CLI_OPT_HELP,        /* no argument: the scan stops and reports CLI_OPTTAB_HELP (dest unused) */
};

struct cli_opt {
	const char *name; /* long name without "--"; NULL ends the table */
	int short_name;   /* 'f' for -f, 0 for none */
	enum cli_opt_kind kind;
	void *dest;
	const char *key; /* JSON member for CLI_OPT_JSON_* */
	long min, max;   /* CLI_OPT_LONG, CLI_OPT_JSON_INT; free for CLI_OPT_ENTRY callbacks */
	int (*fn)(void *dest, const char *arg);
	bool has_arg; /* CLI_OPT_CALL, CLI_OPT_ENTRY: takes an argument */
	int (*entry_fn)(const struct cli_opt *o, const char *arg); /* CLI_OPT_ENTRY; < 0 fails */
	/* CLI_OPT_CALL, CLI_OPT_ENTRY: an optional value ("--name" gives NULL, "--name=v" v; the short
	 * letter takes none), e.g. --circuit-breaker[=rollback|no-rollback] */
	bool optional_arg;
};

/* getopt_long values of table entries: CLI_OPTTAB_BASE + index (short letters map back too). */
#define CLI_OPTTAB_BASE 0x4000

/*
 * getopt_long()'s long options for t appended after extra (n_extra entries, may be 0) and its
 * short option string ("f" for a flag, "s:" for an argument) appended to shortopts_prefix
 * (may be NULL). Both returned arrays are the caller's to free.
 */
void opttab_getopt(const struct cli_opt *t, const struct option *extra, size_t n_extra,
		   const char *shortopts_prefix, struct option **ret_long, char **ret_short);

/*
 * Apply the option getopt_long() returned as ch: 0 done, -1 bad value (printed), 1 not ours,
 * 2 a CLI_OPT_HELP entry.
 */
int opttab_apply(const struct cli_opt *t, int ch, const char *arg);

/* What a scan found. */
enum {
	CLI_OPTTAB_OK = 0,         /* every option applied; optind is at the first operand */
	CLI_OPTTAB_HELP = 1,       /* --help (a CLI_OPT_HELP entry or the flag below): scan stopped */
	CLI_OPTTAB_USAGE = -1,     /* an unknown option or a missing value (getopt's message printed) */
	CLI_OPTTAB_BAD_VALUE = -2, /* an option's value was refused (its message printed) */
};
/* opttab_scan flags */
#define CLI_OPTTAB_ADD_HELP   (1u << 0) /* "--help" (ahead of the table's names) asks for help */
#define CLI_OPTTAB_SHORT_HELP (1u << 1) /* so does "-h" (with CLI_OPTTAB_ADD_HELP) */

/*
 * Scan argv (argv[0] names the command in getopt's messages) with getopt_long and t, applying
 * each option in turn, from a fully reset getopt (optind 0). Stops at the first help or error.
 * shortopts_prefix: "+" to stop at the first operand, NULL to permute operands to the end.
 */
int opttab_scan(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix, unsigned flags);

/*
 * opttab_scan and the usual answer of a front end: usage(stdout) on --help, usage(stderr)
 * after getopt's message for an unknown option or a missing value, nothing more for a bad value
 * (its own message is printed). Returns what opttab_scan found.
 */
int opttab_scan_usage(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
		      void (*usage)(FILE *f));

/* Go's strconv.ParseBool (runc's flags, dockerd's boolean filters): 1 true, 0 false, -1 neither. */
int opttab_parse_bool(const char *v);

/*
 * Scan argv[1..] (argv[0]: the verb) with runc's syntax (Go's flag package): "-n" or "--n" for
 * the short letter, "-name" or "--name" for the long name, the value as "=v" or the next word.
 * CLI_OPT_FLAG and CLI_OPT_BOOL take no next word; their "=v" is read as Go's strconv.ParseBool
 * (1 t T TRUE true True, 0 f F FALSE false False). Stops at the first operand, at "-" and after
 * "--". No CLI_OPT_HELP here (runc's --help is a boolean: use CLI_OPT_BOOL).
 * Returns the index of the first operand, or -1 after printing one of "<who>: unknown option
 * '-x'", "<who>: option '--x' needs a value", "<who>: invalid boolean value 'v' for '--x'" or
 * the value's own message to stderr.
 */
int opttab_scan_go(const struct cli_opt *t, int argc, char **argv, const char *who);

/* Parse a decimal integer in [min, max] for --flag; -1 with a message ("berth: invalid ..."). */
int opttab_parse_long(const char *flag, const char *arg, long min, long max, long *ret);

/*
 * The CLI_OPT_CALL callback of every front end's --log-level LEVEL (error, warn, info, debug,
 * trace; log_parse_level's names): sets the process's log level at once. dest is the
 * const char * naming the front end in the message ("berth server: invalid log level 'x'");
 * NULL: "berth".
 */
int opttab_log_level(void *dest, const char *arg);

/* docker's boolean flag value: NULL, "true", "1" true; "false", "0" false; else -EINVAL, printed. */
int opttab_parse_bool_flag(const char *flag, const char *v, bool *ret);

#endif
