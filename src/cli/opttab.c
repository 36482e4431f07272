/* opttab.c - table-driven option parsing for CLI verbs (see opttab.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/macro.h"
#include "common/strbuf.h"
#include "common/strv.h"

/* getopt_long value of the "--help" every verb takes (beside the table's CLI_OPTTAB_BASE + i) */
#define OPTTAB_HELP (CLI_OPTTAB_BASE - 1)

static bool takes_arg(const struct cli_opt *o)
{
	switch (o->kind) {
	case CLI_OPT_FLAG:
	case CLI_OPT_BOOL: /* long: an optional value (long_has_arg); short: none */
	case CLI_OPT_JSON_TRUE: return false;
	case CLI_OPT_CALL:
	case CLI_OPT_ENTRY: return o->has_arg;
	default: return true;
	}
}

/* getopt_long's has_arg of an entry's long name. */
static int long_has_arg(const struct cli_opt *o)
{
	if (o->kind == CLI_OPT_BOOL || ((o->kind == CLI_OPT_CALL || o->kind == CLI_OPT_ENTRY) && o->optional_arg))
		return optional_argument;
	return takes_arg(o) ? required_argument : no_argument;
}

void cli_opttab_getopt(const struct cli_opt *t, const struct option *extra, size_t n_extra,
		       const char *shortopts_prefix, struct option **ret_long, char **ret_short)
{
	size_t n = 0;
	while (t && t[n].name)
		n++;
	struct option *lo = xcalloc(n_extra + n + 1, sizeof(*lo));
	if (n_extra)
		memcpy(lo, extra, n_extra * sizeof(*lo));
	struct strbuf so = STRBUF_INIT;
	strbuf_addstr(&so, shortopts_prefix ? shortopts_prefix : "");
	for (size_t i = 0; i < n; i++) {
		bool arg = takes_arg(&t[i]);
		lo[n_extra + i] =
		    (struct option){ t[i].name, long_has_arg(&t[i]), NULL, CLI_OPTTAB_BASE + (int)i };
		if (t[i].short_name) {
			strbuf_addch(&so, (char)t[i].short_name);
			if (arg)
				strbuf_addch(&so, ':');
		}
	}
	*ret_long = lo;
	*ret_short = strbuf_detach(&so, NULL);
}

int cli_opt_parse_long(const char *flag, const char *arg, long min, long max, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (!*arg || *end || errno || v < min || v > max) {
		fprintf(stderr, "berth: invalid %s '%s': expected an integer from %ld to %ld\n", flag, arg,
			min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

int cli_opttab_apply(const struct cli_opt *t, int ch, const char *arg)
{
	const struct cli_opt *o = NULL;
	size_t n = 0;
	while (t && t[n].name)
		n++;
	if (ch >= CLI_OPTTAB_BASE && (size_t)(ch - CLI_OPTTAB_BASE) < n)
		o = &t[ch - CLI_OPTTAB_BASE];
	for (size_t i = 0; !o && ch > 0 && i < n; i++)
		if (t[i].short_name == ch)
			o = &t[i];
	if (!o)
		return 1;
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	long v;
	switch (o->kind) {
	case CLI_OPT_FLAG: *(bool *)o->dest = true; return 0;
	case CLI_OPT_STRING: *(const char **)o->dest = arg; return 0;
	case CLI_OPT_LONG:
		if (cli_opt_parse_long(flag, arg, o->min, o->max, &v) < 0)
			return -1;
		*(long *)o->dest = v;
		return 0;
	case CLI_OPT_JSON_STR: json_object_set_new(o->dest, o->key, json_string(arg)); return 0;
	case CLI_OPT_JSON_INT:
		if (cli_opt_parse_long(flag, arg, o->min, o->max, &v) < 0)
			return -1;
		json_object_set_new(o->dest, o->key, json_integer(v));
		return 0;
	case CLI_OPT_JSON_TRUE: json_object_set_new(o->dest, o->key, json_true()); return 0;
	case CLI_OPT_CALL: return o->fn(o->dest, o->has_arg || o->optional_arg ? arg : NULL) < 0 ? -1 : 0;
	case CLI_OPT_BOOL: return cli_parse_bool_flag(o->name, arg, o->dest) < 0 ? -1 : 0;
	case CLI_OPT_JSON_APPEND: {
		json_t *a = json_object_get(o->dest, o->key);
		if (!json_is_array(a))
			json_object_set_new(o->dest, o->key, a = json_array());
		json_array_append_new(a, json_string(arg));
		return 0;
	}
	case CLI_OPT_STRV: strv_add(o->dest, arg); return 0;
	case CLI_OPT_ENTRY: return o->entry_fn(o, o->has_arg || o->optional_arg ? arg : NULL) < 0 ? -1 : 0;
	}
	return 1;
}

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
	static const struct option help[] = { { "help", no_argument, NULL, OPTTAB_HELP } };
	_cleanup_free_ struct option *lo = NULL;
	_cleanup_free_ char *so = NULL;
	_cleanup_free_ char *prefix =
	    xasprintf("%s%s", shortopts_prefix ? shortopts_prefix : "", u->short_help ? "h" : "");
	cli_opttab_getopt(t, help, ARRAY_SIZE(help), prefix, &lo, &so);
	int ch;
	optind = 0; /* 0, not 1: glibc also forgets a half-read cluster of short options */
	while ((ch = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (u->short_help && ch == 'h')
			ch = OPTTAB_HELP;
		if (ch == OPTTAB_HELP || cli_opttab_apply(t, ch, optarg) != 0) {
			*ret_rc = cli_usage_print(u, ch == OPTTAB_HELP);
			return false;
		}
	}
	return true;
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
