/* opttab.c - table-driven option parsing for CLI verbs (see opttab.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	case CLI_OPT_JSON_TRUE: return false;
	case CLI_OPT_CALL: return o->has_arg;
	default: return true;
	}
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
		lo[n_extra + i] = (struct option){ t[i].name, arg ? required_argument : no_argument, NULL,
						   CLI_OPTTAB_BASE + (int)i };
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
	case CLI_OPT_CALL: return o->fn(o->dest, o->has_arg ? arg : NULL) < 0 ? -1 : 0;
	}
	return 1;
}

bool cli_opttab_parse(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
		      const char *usage, int *ret_rc)
{
	static const struct option help[] = { { "help", no_argument, NULL, OPTTAB_HELP } };
	_cleanup_free_ struct option *lo = NULL;
	_cleanup_free_ char *so = NULL;
	cli_opttab_getopt(t, help, ARRAY_SIZE(help), shortopts_prefix, &lo, &so);
	int ch;
	optind = 1;
	while ((ch = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (ch == OPTTAB_HELP || cli_opttab_apply(t, ch, optarg) != 0) {
			*ret_rc = cli_usage(usage, ch == OPTTAB_HELP);
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
