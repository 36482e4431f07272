/*
 * progress.c - docker's JSON message stream (pull/push/load output) as
 * docker's CLI shows it: "<id>: <status>" lines, redrawn in place with a
 * progress bar on a terminal.
 */
#include "cli/verbs.h"
#include "common/json.h"

#define PROGRESS_BAR      50
/* Longest line kept while waiting for its newline; longer input is dropped. */
#define PROGRESS_LINE_MAX (1u << 20)
/* Layers tracked for in-place redraw; more just print new lines. */
#define PROGRESS_MAX_IDS  512

void cli_progress_init(struct cli_progress *p, FILE *out, bool tty, bool quiet)
{
	*p = (struct cli_progress){ .out = out, .tty = tty, .quiet = quiet };
	strbuf_init(&p->pending, 0);
}

static void bar(struct strbuf *sb, uint64_t cur, uint64_t total)
{
	if (total == 0)
		return;
	if (cur > total)
		cur = total;
	size_t fill = (size_t)(cur * PROGRESS_BAR / total);
	strbuf_addch(sb, '[');
	for (size_t i = 0; i < PROGRESS_BAR; i++)
		strbuf_addch(sb, i < fill ? '=' : i == fill ? '>' : ' ');
	_cleanup_free_ char *c = cli_human_size((double)cur), *t = cli_human_size((double)total);
	strbuf_addf(sb, "] %8s/%s", c, t);
}

static ssize_t find_id(struct cli_progress *p, const char *id)
{
	for (size_t i = 0; i < p->nids; i++)
		if (streq(p->ids[i], id))
			return (ssize_t)i;
	return -1;
}

static void forget_ids(struct cli_progress *p)
{
	for (size_t i = 0; i < p->nids; i++) {
		free(p->ids[i]);
		free(p->last[i]);
	}
	free(p->ids);
	free(p->last);
	p->ids = p->last = NULL;
	p->nids = 0;
}

static void show_id_line(struct cli_progress *p, const char *id, const char *status, const json_t *detail)
{
	uint64_t cur = (uint64_t)json_integer_value(json_object_get(detail, "current"));
	uint64_t total = (uint64_t)json_integer_value(json_object_get(detail, "total"));
	ssize_t at = find_id(p, id);
	if (!p->tty) {
		/* one line per status change; progress updates are for terminals */
		if (at >= 0 && streq(p->last[at], status))
			return;
	}
	if (at < 0 && p->nids < PROGRESS_MAX_IDS) {
		p->ids = xrealloc(p->ids, (p->nids + 1) * sizeof(*p->ids));
		p->last = xrealloc(p->last, (p->nids + 1) * sizeof(*p->last));
		p->ids[p->nids] = xstrdup(id);
		p->last[p->nids] = xstrdup(status);
		at = -1 - (ssize_t)p->nids++; /* new line */
	} else if (at >= 0) {
		free(p->last[at]);
		p->last[at] = xstrdup(status);
	}
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	strbuf_addf(&line, "%s: %s ", id, status);
	if (p->tty)
		bar(&line, cur, total);
	while (line.len && line.buf[line.len - 1] == ' ')
		strbuf_setlen(&line, line.len - 1);
	if (p->tty && at >= 0) {
		size_t up = p->nids - (size_t)at;
		fprintf(p->out, "\033[%zuA\r\033[2K%s\r\033[%zuB", up, line.buf, up);
	} else {
		fprintf(p->out, "%s%s\n", p->tty ? "\033[2K" : "", line.buf);
	}
}

static void handle(struct cli_progress *p, const char *text, size_t n)
{
	while (n && (text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (n == 0)
		return;
	_cleanup_json_ json_t *j = json_loadb(text, n, 0, NULL);
	if (!json_is_object(j)) {
		if (!p->quiet)
			fprintf(p->out, "%.*s\n", (int)n, text);
		return;
	}
	const char *e = json_string_value(json_object_get(j, "error"));
	if (!e)
		e = json_string_value(json_object_get(json_object_get(j, "errorDetail"), "message"));
	if (e) {
		if (!p->error)
			p->error = xstrdup(e);
		return;
	}
	json_t *aux = json_object_get(j, "aux");
	if (aux) {
		json_decref(p->aux);
		p->aux = json_incref(aux);
	}
	if (p->quiet)
		return;
	const char *stream = json_string_value(json_object_get(j, "stream"));
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *id = json_string_value(json_object_get(j, "id"));
	if (stream) {
		fputs(stream, p->out);
	} else if (status && id && *id) {
		show_id_line(p, id, status, json_object_get(j, "progressDetail"));
	} else if (status && *status) {
		forget_ids(p);
		fprintf(p->out, "%s\n", status);
	}
	fflush(p->out);
}

int cli_progress_feed(void *ctx, const char *data, size_t len)
{
	struct cli_progress *p = ctx;
	strbuf_add(&p->pending, data, len);
	size_t start = 0;
	char *nl;
	while ((nl = memchr(p->pending.buf + start, '\n', p->pending.len - start))) {
		size_t n = (size_t)(nl - (p->pending.buf + start));
		handle(p, p->pending.buf + start, n);
		start += n + 1;
	}
	memmove(p->pending.buf, p->pending.buf + start, p->pending.len - start);
	strbuf_setlen(&p->pending, p->pending.len - start);
	if (p->pending.len > PROGRESS_LINE_MAX)
		strbuf_reset(&p->pending);
	return 0;
}

void cli_progress_finish(struct cli_progress *p)
{
	if (p->pending.len)
		handle(p, p->pending.buf, p->pending.len);
	strbuf_reset(&p->pending);
	forget_ids(p);
}

void cli_progress_done(struct cli_progress *p)
{
	forget_ids(p);
	strbuf_release(&p->pending);
	free(p->error);
	p->error = NULL;
	json_decref(p->aux);
	p->aux = NULL;
}
