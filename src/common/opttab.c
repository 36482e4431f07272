/*
 * opttab.c - table-driven command line options (see opttab.h). The GNU scan
 * is getopt_long over arrays made from the table, so every front end keeps
 * getopt's exact wording for unknown options and missing values; the Go scan
 * (runc's command line) is a small loop of its own because getopt_long can
 * neither refuse abbreviations nor read "-name" as a long option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/opttab.h"
#include "common/strbuf.h"
#include "common/strv.h"

/* getopt_long value of the "--help" that CLI_OPTTAB_ADD_HELP adds (beside the table's CLI_OPTTAB_BASE + i) */
#define OPTTAB_HELP (CLI_OPTTAB_BASE - 1)

static bool takes_arg(const struct cli_opt *o)
{
	switch (o->kind) {
	case CLI_OPT_FLAG:
	case CLI_OPT_BOOL: /* long: an optional value (long_has_arg); short: none */
	case CLI_OPT_HELP:
	case CLI_OPT_JSON_TRUE: return false;
	case CLI_OPT_CALL:
	case CLI_OPT_ENTRY: return o->has_arg;
	default: return true;
	}
}

/* getopt_long's has_arg of an entry's long name. */
static int long_has_arg(const struct cli_opt *o)
{
	if (o->kind == CLI_OPT_BOOL ||
	    ((o->kind == CLI_OPT_CALL || o->kind == CLI_OPT_ENTRY) && o->optional_arg))
		return optional_argument;
	return takes_arg(o) ? required_argument : no_argument;
}

static size_t table_size(const struct cli_opt *t)
{
	size_t n = 0;
	while (t && t[n].name)
		n++;
	return n;
}

void opttab_getopt(const struct cli_opt *t, const struct option *extra, size_t n_extra,
		   const char *shortopts_prefix, struct option **ret_long, char **ret_short)
{
	size_t n = table_size(t);
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

int opttab_parse_long(const char *flag, const char *arg, long min, long max, long *ret)
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

int opttab_parse_bool_flag(const char *flag, const char *v, bool *ret)
{
	if (!v || streq(v, "true") || streq(v, "1"))
		*ret = true;
	else if (streq(v, "false") || streq(v, "0"))
		*ret = false;
	else {
		fprintf(stderr, "berth: invalid argument \"%s\" for \"--%s\" flag: expected true or false\n",
			v, flag);
		return -EINVAL;
	}
	return 0;
}

/* Apply entry o with its argument (NULL when it takes none). */
static int apply_entry(const struct cli_opt *o, const char *arg)
{
	char flag[64];
	snprintf(flag, sizeof(flag), "--%s", o->name);
	long v;
	switch (o->kind) {
	case CLI_OPT_FLAG: *(bool *)o->dest = true; return 0;
	case CLI_OPT_STRING: *(const char **)o->dest = arg; return 0;
	case CLI_OPT_LONG:
		if (opttab_parse_long(flag, arg, o->min, o->max, &v) < 0)
			return -1;
		*(long *)o->dest = v;
		return 0;
	case CLI_OPT_JSON_STR: json_object_set_new(o->dest, o->key, json_string(arg)); return 0;
	case CLI_OPT_JSON_INT:
		if (opttab_parse_long(flag, arg, o->min, o->max, &v) < 0)
			return -1;
		json_object_set_new(o->dest, o->key, json_integer(v));
		return 0;
	case CLI_OPT_JSON_TRUE: json_object_set_new(o->dest, o->key, json_true()); return 0;
	case CLI_OPT_CALL: return o->fn(o->dest, o->has_arg || o->optional_arg ? arg : NULL) < 0 ? -1 : 0;
	case CLI_OPT_BOOL: return opttab_parse_bool_flag(o->name, arg, o->dest) < 0 ? -1 : 0;
	case CLI_OPT_JSON_APPEND: {
		json_t *a = json_object_get(o->dest, o->key);
		if (!json_is_array(a))
			json_object_set_new(o->dest, o->key, a = json_array());
		json_array_append_new(a, json_string(arg));
		return 0;
	}
	case CLI_OPT_STRV: strv_add(o->dest, arg); return 0;
	case CLI_OPT_ENTRY: return o->entry_fn(o, o->has_arg || o->optional_arg ? arg : NULL) < 0 ? -1 : 0;
	case CLI_OPT_STRDUP:
		free(*(char **)o->dest);
		*(char **)o->dest = xstrdup(arg);
		return 0;
	case CLI_OPT_HELP: return 2;
	}
	return 1;
}

int opttab_apply(const struct cli_opt *t, int ch, const char *arg)
{
	const struct cli_opt *o = NULL;
	size_t n = table_size(t);
	if (ch >= CLI_OPTTAB_BASE && (size_t)(ch - CLI_OPTTAB_BASE) < n)
		o = &t[ch - CLI_OPTTAB_BASE];
	for (size_t i = 0; !o && ch > 0 && i < n; i++)
		if (t[i].short_name == ch)
			o = &t[i];
	return o ? apply_entry(o, arg) : 1;
}

int opttab_scan(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix, unsigned flags)
{
	static const struct option help[] = { { "help", no_argument, NULL, OPTTAB_HELP } };
	bool add_help = flags & CLI_OPTTAB_ADD_HELP, short_help = add_help && (flags & CLI_OPTTAB_SHORT_HELP);
	_cleanup_free_ struct option *lo = NULL;
	_cleanup_free_ char *so = NULL;
	_cleanup_free_ char *prefix =
	    xasprintf("%s%s", shortopts_prefix ? shortopts_prefix : "", short_help ? "h" : "");
	opttab_getopt(t, help, add_help ? ARRAY_SIZE(help) : 0, prefix, &lo, &so);
	int ch;
	optind = 0; /* 0, not 1: glibc also forgets a half-read cluster of short options */
	while ((ch = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		if (ch == OPTTAB_HELP || (short_help && ch == 'h'))
			return CLI_OPTTAB_HELP;
		if (ch == '?')
			return CLI_OPTTAB_USAGE;
		int r = opttab_apply(t, ch, optarg);
		if (r == 2)
			return CLI_OPTTAB_HELP;
		if (r != 0)
			return r < 0 ? CLI_OPTTAB_BAD_VALUE : CLI_OPTTAB_USAGE;
	}
	return CLI_OPTTAB_OK;
}

int opttab_scan_usage(const struct cli_opt *t, int argc, char **argv, const char *shortopts_prefix,
		      void (*usage)(FILE *f))
{
	int r = opttab_scan(t, argc, argv, shortopts_prefix, 0);
	if (r == CLI_OPTTAB_HELP || r == CLI_OPTTAB_USAGE)
		usage(r == CLI_OPTTAB_HELP ? stdout : stderr);
	return r;
}

/* ---- Go's flag syntax (runc) ---- */

int opttab_parse_bool(const char *v)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (streq(v, yes[i]))
			return 1;
		if (streq(v, no[i]))
			return 0;
	}
	return -1;
}

/* The entry named name[0..len) (one letter: the short letter first, as urfave/cli's "force, f"). */
static const struct cli_opt *go_find(const struct cli_opt *t, const char *name, size_t len)
{
	for (size_t i = 0; len == 1 && t && t[i].name; i++)
		if (t[i].short_name == name[0])
			return &t[i];
	for (size_t i = 0; t && t[i].name; i++)
		if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0)
			return &t[i];
	return NULL;
}

int opttab_scan_go(const struct cli_opt *t, int argc, char **argv, const char *who)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (streq(a, "--"))
			return i + 1;
		if (a[0] != '-' || !a[1])
			break;
		const char *name = a + (a[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cli_opt *o = len && name[0] != '-' ? go_find(t, name, len) : NULL;
		if (!o || o->kind == CLI_OPT_HELP) {
			fprintf(stderr, "%s: unknown option '%s'\n", who, a);
			return -1;
		}
		const char *val = eq ? eq + 1 : NULL;
		if (o->kind == CLI_OPT_FLAG || o->kind == CLI_OPT_BOOL) {
			int b = val ? opttab_parse_bool(val) : 1;
			if (b < 0) {
				fprintf(stderr, "%s: invalid boolean value '%s' for '%.*s'\n", who, val,
					(int)(eq - a), a);
				return -1;
			}
			*(bool *)o->dest = b;
			continue;
		}
		if (!val && takes_arg(o)) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: option '%s' needs a value\n", who, a);
				return -1;
			}
			val = argv[++i];
		}
		if (apply_entry(o, val) != 0)
			return -1;
	}
	return i;
}

int opttab_log_level(void *dest, const char *arg)
{
	enum log_level level;
	if (log_parse_level(arg, &level) < 0) {
		fprintf(stderr, "%s: invalid log level '%s'\n", dest ? (const char *)dest : "berth", arg);
		return -1;
	}
	log_set_level(level);
	return 0;
}
