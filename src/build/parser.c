/*
 * parser.c - the line level of the Dockerfile parser (BuildKit's
 * frontend/dockerfile/parser): directives, comments, continuation lines,
 * heredoc bodies, splitting an instruction into command, flags and
 * arguments by the instruction's argument syntax. Typed checks of each
 * instruction live in instructions.c.
 *
 * Trade-off: the input is held in memory and walked as an array of lines;
 * a Dockerfile is small (DF_MAX_SIZE) and random access keeps heredoc
 * reading simple.
 */
#include <ctype.h>
#include <jansson.h>

#include "build/build-internal.h"
#include "build/shlex.h"
#include "common/strbuf.h"
#include "common/strv.h"

static const char *const cmd_names[_DF_CMD_MAX] = {
	[DF_ADD] = "ADD",
	[DF_ARG] = "ARG",
	[DF_CMD] = "CMD",
	[DF_COPY] = "COPY",
	[DF_ENTRYPOINT] = "ENTRYPOINT",
	[DF_ENV] = "ENV",
	[DF_EXPOSE] = "EXPOSE",
	[DF_FROM] = "FROM",
	[DF_HEALTHCHECK] = "HEALTHCHECK",
	[DF_LABEL] = "LABEL",
	[DF_MAINTAINER] = "MAINTAINER",
	[DF_ONBUILD] = "ONBUILD",
	[DF_RUN] = "RUN",
	[DF_SHELL] = "SHELL",
	[DF_STOPSIGNAL] = "STOPSIGNAL",
	[DF_USER] = "USER",
	[DF_VOLUME] = "VOLUME",
	[DF_WORKDIR] = "WORKDIR",
};

const char *build_df_cmd_name(enum df_cmd cmd)
{
	return cmd < _DF_CMD_MAX ? cmd_names[cmd] : "?";
}

int build_df_cmd_lookup(const char *word)
{
	for (int i = 0; i < _DF_CMD_MAX; i++)
		if (strcasecmp(cmd_names[i], word) == 0)
			return i;
	return -1;
}

/* Go's unicode.IsSpace restricted to ASCII, and the parser's [\t\v\f\r ]. */
static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

int build_df_error(const struct df_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	return berth_error_msg(p->err, EINVAL, "%s:%d: %s", p->name, line, msg ? msg : "error");
}

void build_df_warn(struct df_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s:%d: ", p->name, line);
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	size_t n = 0;
	while (p->df->warnings[n])
		n++;
	p->df->warnings = xrealloc(p->df->warnings, (n + 2) * sizeof(char *));
	p->df->warnings[n] = strbuf_detach(&sb, NULL);
	p->df->warnings[n + 1] = NULL;
}

/* --- lines --------------------------------------------------------------- */

static bool next_line(struct df_parser *p, const char **ret, size_t *ret_len)
{
	if (p->pos >= p->len)
		return false;
	const char *s = p->text + p->pos;
	const char *nl = memchr(s, '\n', p->len - p->pos);
	size_t n = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += n + (nl ? 1 : 0);
	p->lineno++;
	*ret = s;
	*ret_len = n;
	return true;
}

/* Line without its trailing "\r" (trimNewline). */
static size_t trim_newline(const char *s, size_t n)
{
	if (n > 0 && s[n - 1] == '\r')
		n--;
	return n;
}

static size_t skip_leading_ws(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	return i;
}

static bool line_is_comment(const char *s, size_t n)
{
	n = trim_newline(s, n);
	size_t i = skip_leading_ws(s, n);
	return i < n && s[i] == '#';
}

static bool line_is_empty(const char *s, size_t n)
{
	n = trim_newline(s, n);
	return skip_leading_ws(s, n) == n;
}

/*
 * Strip a trailing escape character followed by blanks; returns true when
 * the line ends the instruction (no continuation).
 */
static bool trim_continuation(struct strbuf *sb, char escape)
{
	size_t n = sb->len;
	while (n > 0 && (sb->buf[n - 1] == ' ' || sb->buf[n - 1] == '\t'))
		n--;
	if (n > 0 && sb->buf[n - 1] == escape) {
		strbuf_setlen(sb, n - 1);
		return false;
	}
	return true;
}

/* --- directives ---------------------------------------------------------- */

/* Match ^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$ */
static bool match_directive(const char *s, size_t n, char **key, char **value)
{
	size_t i = 0;
	if (n == 0 || s[i++] != '#')
		return false;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	size_t k0 = i;
	if (i >= n || !isalpha((unsigned char)s[i]))
		return false;
	while (i < n && isalnum((unsigned char)s[i]))
		i++;
	size_t k1 = i;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	if (i >= n || s[i++] != '=')
		return false;
	while (i < n && is_space((unsigned char)s[i]))
		i++;
	size_t v0 = i, v1 = n;
	while (v1 > v0 && is_space((unsigned char)s[v1 - 1]))
		v1--;
	if (v1 == v0)
		return false;
	*key = xstrndup(s + k0, k1 - k0);
	for (char *c = *key; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	*value = xstrndup(s + v0, v1 - v0);
	return true;
}

static int parse_directives(struct df_parser *p)
{
	bool seen_escape = false, seen_syntax = false, seen_check = false;
	for (;;) {
		size_t save_pos = p->pos;
		int save_line = p->lineno;
		const char *s;
		size_t n;
		if (!next_line(p, &s, &n))
			return 0;
		n = trim_newline(s, n);
		_cleanup_free_ char *key = NULL, *value = NULL;
		bool *seen = NULL;
		if (match_directive(s, n, &key, &value)) {
			if (streq(key, "escape"))
				seen = &seen_escape;
			else if (streq(key, "syntax"))
				seen = &seen_syntax;
			else if (streq(key, "check"))
				seen = &seen_check;
		}
		if (!seen) {
			p->pos = save_pos;
			p->lineno = save_line;
			return 0;
		}
		if (*seen)
			return build_df_error(p, p->lineno, "only one %s parser directive can be used", key);
		*seen = true;
		if (streq(key, "escape")) {
			if (!streq(value, "\\") && !streq(value, "`"))
				return build_df_error(
				    p, p->lineno, "invalid escape token '%s' does not match ` or \\", value);
			p->escape = value[0];
		} else if (streq(key, "syntax")) {
			build_df_warn(p, p->lineno,
				      "syntax directive '%s' ignored: berth uses its built-in frontend",
				      value);
			p->df->syntax = TAKE_PTR(value);
		} else {
			p->df->check = TAKE_PTR(value);
		}
	}
}

/* --- splitting an instruction -------------------------------------------- */

static void strv_push(char ***v, size_t *n, char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof(char *));
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

/*
 * Leading "--flag" words of the argument text (BuildKit's
 * extractBuilderFlags): quotes and backslashes are processed inside flags;
 * a bare "--" ends the flags. Returns the rest.
 */
static const char *extract_flags(const char *line, char ***flags, size_t *nflags)
{
	enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
	struct strbuf word = STRBUF_INIT;
	bool blank_ok = false;
	char quote = 0;
	size_t len = strlen(line);
	for (size_t pos = 0; pos <= len; pos++) {
		char ch = pos < len ? line[pos] : 0;
		if (phase == IN_SPACES) {
			if (pos == len)
				break;
			if (is_space((unsigned char)ch))
				continue;
			if (ch != '-' || pos + 1 == len || line[pos + 1] != '-') {
				strbuf_release(&word);
				return line + pos;
			}
			phase = IN_WORD;
		}
		if (pos == len) {
			if (!streq(word.buf, "--") && (blank_ok || word.len > 0))
				strv_push(flags, nflags, strbuf_detach(&word, NULL));
			break;
		}
		if (phase == IN_WORD) {
			if (is_space((unsigned char)ch)) {
				phase = IN_SPACES;
				if (streq(word.buf, "--")) {
					strbuf_release(&word);
					return line + pos;
				}
				if (blank_ok || word.len > 0)
					strv_push(flags, nflags, strbuf_detach(&word, NULL));
				strbuf_reset(&word);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = IN_QUOTE;
				continue;
			}
			if (ch == '\\') {
				if (pos + 1 == len)
					continue;
				ch = line[++pos];
			}
			strbuf_addch(&word, ch);
			continue;
		}
		/* IN_QUOTE */
		if (ch == quote) {
			phase = IN_WORD;
			continue;
		}
		if (ch == '\\') {
			if (pos + 1 == len) {
				phase = IN_WORD;
				continue;
			}
			ch = line[++pos];
		}
		strbuf_addch(&word, ch);
	}
	strbuf_release(&word);
	return line + len;
}

/* BuildKit's parseWords: split on blanks, keep quotes and escapes in the words. */
char **build_df_parse_words(const char *rest, char escape)
{
	enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
	struct strbuf word = STRBUF_INIT;
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0, len = strlen(rest);
	bool blank_ok = false;
	char quote = 0;
	for (size_t pos = 0; pos <= len; pos++) {
		char ch = pos < len ? rest[pos] : 0;
		if (phase == IN_SPACES) {
			if (pos == len)
				break;
			if (is_space((unsigned char)ch))
				continue;
			phase = IN_WORD;
		}
		if (pos == len) {
			if (blank_ok || word.len > 0)
				strv_push(&v, &n, strbuf_detach(&word, NULL));
			break;
		}
		if (phase == IN_WORD) {
			if (is_space((unsigned char)ch)) {
				phase = IN_SPACES;
				if (blank_ok || word.len > 0)
					strv_push(&v, &n, strbuf_detach(&word, NULL));
				strbuf_reset(&word);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = IN_QUOTE;
			}
			if (ch == escape) {
				if (pos + 1 == len)
					continue;
				strbuf_addch(&word, ch);
				ch = rest[++pos];
			}
			strbuf_addch(&word, ch);
			continue;
		}
		if (ch == quote)
			phase = IN_WORD;
		if (ch == escape && quote != '\'') {
			if (pos + 1 == len) {
				phase = IN_WORD;
				continue;
			}
			strbuf_addch(&word, ch);
			ch = rest[++pos];
		}
		strbuf_addch(&word, ch);
	}
	strbuf_release(&word);
	return v;
}

/* Split on runs of [\t\v\f\r ] (parseStringsWhitespaceDelimited). */
static char **split_blanks(const char *rest)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	const char *s = rest;
	while (*s) {
		while (*s && is_blank((unsigned char)*s))
			s++;
		const char *e = s;
		while (*e && !is_blank((unsigned char)*e))
			e++;
		if (e > s)
			strv_push(&v, &n, xstrndup(s, (size_t)(e - s)));
		s = e;
	}
	return v;
}

/*
 * Try the JSON (exec) form. Returns 1 and sets *ret when `rest` is a JSON
 * array of strings, 0 when it is not JSON (shell form), -EINVAL when it is a
 * JSON array with non-string members.
 */
static int parse_json_array(const char *rest, char ***ret)
{
	const char *s = rest;
	while (is_space((unsigned char)*s))
		s++;
	if (*s != '[')
		return 0;
	json_error_t jerr;
	json_t *j = json_loads(s, 0, &jerr);
	if (!j)
		return 0;
	if (!json_is_array(j)) {
		json_decref(j);
		return 0;
	}
	char **v = xcalloc(json_array_size(j) + 1, sizeof(char *));
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *e = json_array_get(j, i);
		if (!json_is_string(e)) {
			strv_free(v);
			json_decref(j);
			return -EINVAL;
		}
		v[i] = xstrdup(json_string_value(e));
	}
	json_decref(j);
	*ret = v;
	return 1;
}

static char **strv_one(const char *s)
{
	char **v = xcalloc(2, sizeof(char *));
	v[0] = xstrdup(s);
	return v;
}

#define ERR_NOT_STRING_ARRAY "when using JSON array syntax, arrays must be comprised of strings only"

/* parseMaybeJSON / parseMaybeJSONToList */
static int args_maybe_json(struct df_parser *p, struct df_instr *in, const char *rest, bool to_list)
{
	int r = parse_json_array(rest, &in->args);
	if (r < 0)
		return build_df_error(p, in->line, ERR_NOT_STRING_ARRAY);
	if (r > 0) {
		in->json = true;
		return 0;
	}
	if (to_list)
		in->args = split_blanks(rest);
	else
		in->args = *rest ? strv_one(rest) : xcalloc(1, sizeof(char *));
	return 0;
}

/* ENV / LABEL: "key value" (legacy) or key=value pairs. */
static int args_name_val(struct df_parser *p, struct df_instr *in, const char *rest)
{
	_cleanup_strv_ char **words = build_df_parse_words(rest, p->escape);
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	in->args = v;
	if (!words[0])
		return 0;
	if (!strchr(words[0], '=')) {
		const char *s = rest;
		while (*s && !is_blank((unsigned char)*s))
			s++;
		const char *val = s;
		while (*val && is_blank((unsigned char)*val))
			val++;
		if (!*val)
			return build_df_error(p, in->line, "%s must have two arguments",
					      build_df_cmd_name(in->cmd));
		strv_push(&in->args, &n, xstrndup(rest, (size_t)(s - rest)));
		strv_push(&in->args, &n, xstrdup(val));
		build_df_warn(
		    p, in->line,
		    "legacy key/value format with whitespace separator should not be used (%s key=value)",
		    build_df_cmd_name(in->cmd));
		return 0;
	}
	for (char **w = words; *w; w++) {
		char *eq = strchr(*w, '=');
		if (!eq)
			return build_df_error(
			    p, in->line,
			    "Syntax error - can't find = in \"%s\". Must be of the form: name=value", *w);
		strv_push(&in->args, &n, xstrndup(*w, (size_t)(eq - *w)));
		strv_push(&in->args, &n, xstrdup(eq + 1));
	}
	return 0;
}

/* HEALTHCHECK: type word then the command like CMD. */
static int args_healthcheck(struct df_parser *p, struct df_instr *in, const char *rest)
{
	size_t sep = 0;
	while (rest[sep] && !is_space((unsigned char)rest[sep]))
		sep++;
	if (sep == 0) {
		in->args = xcalloc(1, sizeof(char *));
		return 0;
	}
	const char *cmd = rest + sep;
	while (*cmd && is_space((unsigned char)*cmd))
		cmd++;
	_cleanup_strv_ char **tail = NULL;
	int r = parse_json_array(cmd, &tail);
	if (r < 0)
		return build_df_error(p, in->line, ERR_NOT_STRING_ARRAY);
	in->json = r > 0;
	if (r == 0)
		tail = *cmd ? strv_one(cmd) : xcalloc(1, sizeof(char *));
	size_t n = 0;
	in->args = xcalloc(1, sizeof(char *));
	strv_push(&in->args, &n, xstrndup(rest, sep));
	for (char **t = tail; *t; t++)
		strv_push(&in->args, &n, xstrdup(*t));
	return 0;
}

static int parse_heredoc_word(const char *word, struct df_heredoc *ret, struct berth_error **err);

/*
 * Build an instruction from one logical line (BuildKit's newNodeFromLine).
 * Heredoc bodies are read by the caller.
 */
int build_df_instr_from_line(struct df_parser *p, const char *line, int lineno, struct df_instr *in)
{
	while (is_space((unsigned char)*line))
		line++;
	size_t l = strlen(line);
	while (l > 0 && is_space((unsigned char)line[l - 1]))
		l--;
	_cleanup_free_ char *trimmed = xstrndup(line, l);
	char *rest = trimmed;
	while (*rest && !is_blank((unsigned char)*rest))
		rest++;
	_cleanup_free_ char *word = xstrndup(trimmed, (size_t)(rest - trimmed));
	in->line = in->end_line = lineno;
	in->original = xstrdup(line);
	in->flags = xcalloc(1, sizeof(char *));
	int cmd = build_df_cmd_lookup(word);
	if (cmd < 0)
		return build_df_unknown_instruction(p, lineno, word);
	in->cmd = (enum df_cmd)cmd;
	size_t nflags = 0;
	const char *args = *rest ? extract_flags(rest, &in->flags, &nflags) : rest;
	_cleanup_free_ char *a = xstrdup(args);
	size_t al = strlen(a);
	while (al > 0 && is_space((unsigned char)a[al - 1]))
		a[--al] = '\0';
	char *as = a;
	while (is_space((unsigned char)*as))
		as++;
	int r = 0;
	switch (in->cmd) {
	case DF_ADD:
	case DF_COPY:
	case DF_VOLUME: r = args_maybe_json(p, in, as, true); break;
	case DF_CMD:
	case DF_ENTRYPOINT:
	case DF_RUN:
	case DF_SHELL: r = args_maybe_json(p, in, as, false); break;
	case DF_ARG: in->args = build_df_parse_words(as, p->escape); break;
	case DF_ENV:
	case DF_LABEL: r = args_name_val(p, in, as); break;
	case DF_EXPOSE:
	case DF_FROM: in->args = split_blanks(as); break;
	case DF_HEALTHCHECK: r = args_healthcheck(p, in, as); break;
	case DF_ONBUILD:
		in->args = xcalloc(1, sizeof(char *));
		if (*as) {
			/* A trigger is one level deep: ONBUILD ONBUILD is refused later, and
			 * not recursing further keeps "ONBUILD ONBUILD ..." off the stack. */
			if (p->in_onbuild)
				return build_df_error(p, lineno,
						      "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
			in->trigger = xcalloc(1, sizeof(*in->trigger));
			p->in_onbuild = true;
			r = build_df_instr_from_line(p, as, lineno, in->trigger);
			p->in_onbuild = false;
		}
		break;
	default: /* MAINTAINER STOPSIGNAL USER WORKDIR */
		in->args = *as ? strv_one(as) : xcalloc(1, sizeof(char *));
		break;
	}
	if (!in->args)
		in->args = xcalloc(1, sizeof(char *));
	in->n_args = strv_length(in->args);
	return r;
}

/* --- heredocs ------------------------------------------------------------ */

/* Match ^(\d*)<<(-?)([^<]*)$ and decide the name and whether to expand. */
static int parse_heredoc_word(const char *word, struct df_heredoc *ret, struct berth_error **err)
{
	const char *s = word;
	uint64_t fd = 0;
	while (isdigit((unsigned char)*s)) {
		fd = fd * 10 + (uint64_t)(*s - '0');
		if (fd > UINT32_MAX)
			return 0;
		s++;
	}
	if (!startswith(s, "<<"))
		return 0;
	s += 2;
	bool chomp = *s == '-';
	if (chomp)
		s++;
	if (!*s || strchr(s, '<'))
		return 0;
	_cleanup_strv_ char **words = NULL, **raw = NULL;
	if (build_shlex_process_words(s, '\\', NULL, SHLEX_SKIP_UNSET, &words, err) < 0)
		return -EINVAL;
	if (!words[0] || words[1])
		return 0;
	if (build_shlex_process_words(s, '\\', NULL, SHLEX_SKIP_UNSET | SHLEX_RAW_QUOTES, &raw, err) < 0)
		return -EINVAL;
	if (!raw[0] || raw[1])
		return berth_error_msg(err, EINVAL,
				       "internal lexing of heredoc produced inconsistent results: %s", s);
	size_t q1 = 0, q2 = 0;
	for (const char *c = words[0]; *c; c++)
		q1 += *c == '\'' || *c == '"';
	for (const char *c = raw[0]; *c; c++)
		q2 += *c == '\'' || *c == '"';
	ret->name = xstrdup(words[0]);
	ret->expand = q1 == q2;
	ret->chomp = chomp;
	ret->fd = (unsigned)fd;
	return 1;
}

/* Is `word` a heredoc reference? (used for COPY sources and destination) */
bool build_df_word_is_heredoc(const char *word, char **ret_name)
{
	struct df_heredoc h = { 0 };
	if (parse_heredoc_word(word, &h, NULL) <= 0)
		return false;
	if (ret_name)
		*ret_name = TAKE_PTR(h.name);
	free(h.name);
	return true;
}

static bool can_contain_heredoc(const struct df_instr *in)
{
	if (in->cmd == DF_ONBUILD)
		return in->trigger && can_contain_heredoc(in->trigger);
	return in->cmd == DF_ADD || in->cmd == DF_COPY || in->cmd == DF_RUN;
}

static void chomp_tabs(struct strbuf *sb)
{
	struct strbuf out = STRBUF_INIT;
	bool bol = true;
	for (size_t i = 0; i < sb->len; i++) {
		char c = sb->buf[i];
		if (bol && c == '\t')
			continue;
		bol = c == '\n';
		strbuf_addch(&out, c);
	}
	strbuf_release(sb);
	*sb = out;
}

static int read_heredocs(struct df_parser *p, struct df_instr *in, const char *line)
{
	struct df_instr *target = in->cmd == DF_ONBUILD ? in->trigger : in;
	_cleanup_strv_ char **words = NULL;
	_cleanup_error_ struct berth_error *ignored = NULL;
	if (build_shlex_process_words(line, '\\', NULL, SHLEX_RAW_QUOTES | SHLEX_RAW_ESCAPES, &words,
				      &ignored) < 0)
		return 0;
	for (char **w = words; *w; w++) {
		struct df_heredoc h = { 0 };
		int r = parse_heredoc_word(*w, &h, p->err);
		if (r < 0)
			return build_df_error(p, in->line, "invalid heredoc '%s'", *w);
		if (r == 0)
			continue;
		if (target->n_heredocs >= DF_MAX_HEREDOCS) {
			free(h.name);
			return build_df_error(p, in->line, "too many heredocs in one instruction");
		}
		struct strbuf body = STRBUF_INIT;
		bool terminated = false;
		const char *s;
		size_t n;
		while (next_line(p, &s, &n)) {
			size_t tn = trim_newline(s, n);
			const char *t = s;
			if (h.chomp)
				while (tn > 0 && *t == '\t')
					t++, tn--;
			if (tn == strlen(h.name) && memcmp(t, h.name, tn) == 0) {
				terminated = true;
				break;
			}
			strbuf_add(&body, s, n);
			strbuf_addch(&body, '\n');
		}
		if (!terminated) {
			strbuf_release(&body);
			free(h.name);
			return build_df_error(p, in->line, "unterminated heredoc");
		}
		if (h.chomp)
			chomp_tabs(&body);
		h.content = strbuf_detach(&body, NULL);
		target->heredocs = xrealloc(target->heredocs, (target->n_heredocs + 1) * sizeof(h));
		target->heredocs[target->n_heredocs++] = h;
	}
	in->end_line = p->lineno;
	if (target != in)
		target->end_line = p->lineno;
	return 0;
}

/* --- logical lines ------------------------------------------------------- */

/* Read one logical line into sb. Returns 1, or 0 at the end of input. */
static int read_logical_line(struct df_parser *p, struct strbuf *sb, int *ret_start)
{
	const char *s;
	size_t n;
	for (;;) {
		if (!next_line(p, &s, &n))
			return 0;
		strbuf_reset(sb);
		if (!line_is_comment(s, n)) {
			size_t tn = trim_newline(s, n);
			size_t i = skip_leading_ws(s, tn);
			strbuf_add(sb, s + i, tn - i);
		}
		*ret_start = p->lineno;
		bool eol = trim_continuation(sb, p->escape);
		if (eol && sb->len == 0)
			continue;
		bool empty_cont = false;
		while (!eol && next_line(p, &s, &n)) {
			if (line_is_comment(s, n))
				continue;
			if (line_is_empty(s, n)) {
				empty_cont = true;
				continue;
			}
			struct strbuf piece = STRBUF_INIT;
			strbuf_add(&piece, s, trim_newline(s, n));
			eol = trim_continuation(&piece, p->escape);
			strbuf_add(sb, piece.buf, piece.len);
			strbuf_release(&piece);
		}
		if (empty_cont)
			build_df_warn(p, *ret_start, "empty continuation line found in: %s", sb->buf);
		return 1;
	}
}

int build_df_parse_lines(struct df_parser *p)
{
	int r = parse_directives(p);
	if (r < 0)
		return r;
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	int start;
	while ((r = read_logical_line(p, &line, &start)) > 0) {
		if (p->df->n_instrs >= DF_MAX_INSTRUCTIONS)
			return build_df_error(p, start, "too many instructions (limit %d)",
					      DF_MAX_INSTRUCTIONS);
		struct dockerfile *df = p->df;
		df->instrs = xrealloc(df->instrs, (df->n_instrs + 1) * sizeof(*df->instrs));
		struct df_instr *in = &df->instrs[df->n_instrs++];
		memset(in, 0, sizeof(*in));
		in->end_line = p->lineno;
		r = build_df_instr_from_line(p, line.buf, start, in);
		if (r < 0)
			return r;
		in->end_line = p->lineno;
		if (can_contain_heredoc(in) && strstr(line.buf, "<<")) {
			r = read_heredocs(p, in, line.buf);
			if (r < 0)
				return r;
		}
	}
	return r;
}
