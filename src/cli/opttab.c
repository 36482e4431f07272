/* opttab.c - cli/'s verbs over the option tables of common/opttab.c (see opttab.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/strv.h"

int cli_usage_print(const struct cli_usage *u, bool help)
{
	if (!help && u->style == CLI_USAGE_SEE) {
		fprintf(stderr, "See 'berth %s --help'.\n", u->verb);
		return CLI_EXIT_DAEMON;
	}
	const char *text = help || !u->error ? u->help : u->error;
	if (u->style == CLI_USAGE_HINT)
		return cli_usage(text, help);
	fprintf(help ? stdout : stderr, "Usage: berth %s\n", text);
	return help ? 0 : CLI_EXIT_DAEMON;
}

bool cli_opttab_parse(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
		      const char *usage, int *ret_rc)
{
	const struct cli_usage u = { CLI_USAGE_HINT, usage, NULL, NULL };
	return cli_opttab_parse_usage(t, argc, argv, shortopts_prefix, &u, ret_rc);
}

bool cli_opttab_parse_usage(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
			    const struct cli_usage *u, int *ret_rc)
{
	unsigned flags = CLI_OPTTAB_ADD_HELP | (u->short_help ? CLI_OPTTAB_SHORT_HELP : 0);
	int r = opttab_scan(t, argc, argv, shortopts_prefix, flags);
	if (r == CLI_OPTTAB_OK)
		return true;
	*ret_rc = cli_usage_print(u, r == CLI_OPTTAB_HELP);
	return false;
}

int cli_opt_kv(void *dest, const char *arg)
{
	strv_kv_set(dest, arg);
	return 0;
}

int cli_opt_filter(void *dest, const char *arg)
{
	cli_filter_add(dest, arg);
	return 0;
}
