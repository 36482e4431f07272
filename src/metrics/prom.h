/*
 * prom.h - a writer of Prometheus's text exposition format (version 0.0.4,
 * what every Prometheus scrapes): "# HELP", "# TYPE" and sample lines with
 * escaped label values. Samples of one family must follow its header; the
 * writer does not reorder, callers emit family by family.
 */
#ifndef BERTH_METRICS_PROM_H
#define BERTH_METRICS_PROM_H

#include "common/strbuf.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n" (type: counter, gauge). */
void metrics_prom_family(struct strbuf *sb, const char *name, const char *type, const char *help);
/*
 * One sample line: name{k1="v1",...} value. labels: NULL or pairs of key,
 * value ending with a NULL key; a NULL value is written as "". Values are
 * printed with up to 15 significant digits (NaN and infinities as
 * Prometheus spells them).
 */
void metrics_prom_sample(struct strbuf *sb, const char *name, const char *const *labels, double value);
/* A label value with \\, \" and \n escaped (no quotes added). */
void metrics_prom_escape(struct strbuf *sb, const char *value);

#endif
