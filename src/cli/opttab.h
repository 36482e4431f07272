/*
 * opttab.h - table-driven option parsing for CLI verbs: a verb lists its
 * options once (name, short letter, kind, destination) instead of a
 * `struct option` array, a switch and per-value checks. The table turns into
 * getopt_long()'s arrays (cli_opttab_getopt) and applies each option it
 * returns (cli_opttab_apply): flags, strings, integers in a range, JSON
 * members of a request object, or a callback for anything else.
 *
 * Tables are usually built on the stack (destinations are the verb's
 * locals) and end with an entry whose name is NULL. Errors are printed once
 * ("berth: invalid --port 'x': expected an integer from 1 to 65535") and
 * reported as -1; the caller prints its usage.
 */
#ifndef BERTH_CLI_OPTTAB_H
#define BERTH_CLI_OPTTAB_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

enum cli_opt_kind {
	CLI_OPT_FLAG,      /* no argument: *(bool *)dest = true */
	CLI_OPT_STRING,    /* *(const char **)dest = the argument (last one wins) */
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
	CLI_OPT_ENTRY,       /* entry_fn(the entry itself, arg): a callback that needs key/name */
};

struct cli_opt {
	const char *name; /* long name without "--"; NULL ends the table */
	int short_name;   /* 'f' for -f, 0 for none */
	enum cli_opt_kind kind;
	void *dest;
	const char *key; /* JSON member for CLI_OPT_JSON_* */
	long min, max;   /* CLI_OPT_LONG, CLI_OPT_JSON_INT */
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
void cli_opttab_getopt(const struct cli_opt *t, const struct option *extra, size_t n_extra,
		       const char *shortopts_prefix, struct option **ret_long, char **ret_short);

/* Apply the option getopt_long() returned as ch: 0 done, -1 bad value (printed), 1 not ours. */
int cli_opttab_apply(const struct cli_opt *t, int ch, const char *arg);

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
#define CLI_OPT_KV(name, short_name, obj) \
	{ (name), (short_name), CLI_OPT_CALL, (obj), .fn = cli_opt_kv, .has_arg = true }
#define CLI_OPT_FILTER(name, short_name, obj) \
	{ (name), (short_name), CLI_OPT_CALL, (obj), .fn = cli_opt_filter, .has_arg = true }

/* Parse a decimal integer in [min, max] for --flag; -1 with a message. */
int cli_opt_parse_long(const char *flag, const char *arg, long min, long max, long *ret);

#endif
