/*
 * format.c - output helpers: a small subset of Go templates as docker's
 * --format uses them ({{.Field}}, {{.A.B}}, {{json .X}}, {{json .}}, and
 * "\t"/"\n" escapes), and docker-style padded tables.
 */
#include "cli/cli.h"
#include "common/strbuf.h"

static const json_t *lookup(const json_t *obj, const char *path)
{
	const json_t *cur = obj;
	_cleanup_free_ char *p = xstrdup(path);
	char *save = NULL;
	for (char *t = strtok_r(p, ".", &save); t && cur; t = strtok_r(NULL, ".", &save))
		cur = json_object_get(cur, t);
	return cur;
}

static void add_value(struct strbuf *sb, const json_t *v, bool as_json)
{
	if (as_json) {
		char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		strbuf_addstr(sb, s ? s : "null");
		free(s);
		return;
	}
	if (!v) {
		strbuf_addstr(sb, "<no value>");
	} else if (json_is_string(v)) {
		strbuf_addstr(sb, json_string_value(v));
	} else if (json_is_integer(v)) {
		strbuf_addf(sb, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		strbuf_addf(sb, "%g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		strbuf_addstr(sb, json_is_true(v) ? "true" : "false");
	} else if (json_is_null(v)) {
		strbuf_addstr(sb, "<nil>");
	} else {
		char *s = json_dumps(v, JSON_COMPACT);
		strbuf_addstr(sb, s ? s : "");
		free(s);
	}
}

static void expand_action(struct strbuf *sb, const char *act, const json_t *obj)
{
	while (*act == ' ')
		act++;
	bool as_json = false;
	if (startswith(act, "json ")) {
		as_json = true;
		act += 5;
		while (*act == ' ')
			act++;
	}
	_cleanup_free_ char *path = xstrdup(act);
	size_t n = strlen(path);
	while (n && path[n - 1] == ' ')
		path[--n] = '\0';
	if (streq(path, "."))
		add_value(sb, obj, true);
	else if (path[0] == '.')
		add_value(sb, lookup(obj, path + 1), as_json);
	else
		strbuf_addf(sb, "{{%s}}", path);
}

char *cli_format(const char *tmpl, const json_t *obj)
{
	struct strbuf sb = STRBUF_INIT;
	if (streq(tmpl, "json")) {
		add_value(&sb, obj, true);
		return strbuf_detach(&sb, NULL);
	}
	const char *p = tmpl;
	while (*p) {
		if (p[0] == '{' && p[1] == '{') {
			const char *end = strstr(p + 2, "}}");
			if (!end) {
				strbuf_addstr(&sb, p);
				break;
			}
			_cleanup_free_ char *act = xstrndup(p + 2, (size_t)(end - p - 2));
			expand_action(&sb, act, obj);
			p = end + 2;
		} else if (p[0] == '\\' && (p[1] == 't' || p[1] == 'n')) {
			strbuf_addch(&sb, p[1] == 't' ? '\t' : '\n');
			p += 2;
		} else {
			strbuf_addch(&sb, *p++);
		}
	}
	return strbuf_detach(&sb, NULL);
}

void cli_print_table(const char *const *headers, size_t ncols, const json_t *rows)
{
	size_t *w = xcalloc(ncols, sizeof(size_t));
	for (size_t c = 0; c < ncols; c++)
		w[c] = strlen(headers[c]);
	size_t i;
	json_t *row;
	json_array_foreach (rows, i, row)
		for (size_t c = 0; c < ncols; c++)
			w[c] = MAX(w[c], strlen(json_string_value(json_array_get(row, c)) ?: ""));
	for (size_t c = 0; c < ncols; c++)
		printf(c + 1 < ncols ? "%-*s   " : "%-*s\n", c + 1 < ncols ? (int)w[c] : 0, headers[c]);
	json_array_foreach (rows, i, row)
		for (size_t c = 0; c < ncols; c++) {
			const char *v = json_string_value(json_array_get(row, c)) ?: "";
			if (c + 1 < ncols)
				printf("%-*s   ", (int)w[c], v);
			else
				printf("%s\n", v);
		}
	free(w);
}
