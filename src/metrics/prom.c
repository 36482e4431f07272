/*
 * prom.c - Prometheus text exposition (prom.h). Small on purpose: the
 * format is lines, the only subtlety is escaping label values and spelling
 * non-finite numbers as Prometheus does.
 */
#include <math.h>
#include <string.h>

#include "common/macro.h"
#include "metrics/prom.h"

void metrics_prom_escape(struct strbuf *sb, const char *value)
{
	const char *v = value ? value : "";
	if (!strpbrk(v, "\\\"\n")) { /* the common case: nothing to escape */
		strbuf_addstr(sb, v);
		return;
	}
	for (const char *p = v; *p; p++) {
		if (*p == '\\' || *p == '"')
			strbuf_addch(sb, '\\'), strbuf_addch(sb, *p);
		else if (*p == '\n')
			strbuf_addstr(sb, "\\n");
		else
			strbuf_addch(sb, *p);
	}
}

void metrics_prom_family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	strbuf_addf(sb, "# HELP %s ", name);
	for (const char *p = help; *p; p++) /* HELP escapes only \ and newline */
		if (*p == '\\')
			strbuf_addstr(sb, "\\\\");
		else if (*p == '\n')
			strbuf_addstr(sb, "\\n");
		else
			strbuf_addch(sb, *p);
	strbuf_addf(sb, "\n# TYPE %s %s\n", name, type);
}

void metrics_prom_sample(struct strbuf *sb, const char *name, const char *const *labels, double value)
{
	strbuf_addstr(sb, name);
	if (labels && labels[0]) {
		strbuf_addch(sb, '{');
		for (size_t i = 0; labels[i]; i += 2) {
			if (i)
				strbuf_addch(sb, ',');
			strbuf_addstr(sb, labels[i]);
			strbuf_addstr(sb, "=\"");
			metrics_prom_escape(sb, labels[i + 1]);
			strbuf_addch(sb, '"');
		}
		strbuf_addch(sb, '}');
	}
	if (isnan(value))
		strbuf_addstr(sb, " NaN\n");
	else if (isinf(value))
		strbuf_addstr(sb, value > 0 ? " +Inf\n" : " -Inf\n");
	else
		strbuf_addf(sb, " %.15g\n", value);
}
