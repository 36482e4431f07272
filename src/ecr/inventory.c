/*
 * inventory.c - what is installed in an image: os-release, dpkg's status
 * file and apk's installed database, parsed from their bytes (hostile input:
 * bounded, every refusal names the line).
 */
#include <ctype.h>
#include <errno.h>

#include "common/strbuf.h"
#include "common/util.h"
#include "ecr/ecr.h"
#include "ecr/internal.h"

#define INVENTORY_MAX_PKGS 100000
#define FIELD_MAX          4096

int ecr_fail(char **ret_msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(ret_msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	return -EINVAL;
}

void ecr_inventory_done(struct ecr_inventory *inv)
{
	for (size_t i = 0; i < inv->n_pkgs; i++) {
		free(inv->pkgs[i].name);
		free(inv->pkgs[i].source);
		free(inv->pkgs[i].version);
	}
	free(inv->pkgs);
	free(inv->os_id);
	free(inv->os_version_id);
	*inv = (struct ecr_inventory){ 0 };
}

/* One line at a time: *line and *len (without the newline); false at the end. */
struct lines {
	const char *p, *end;
	size_t no;
};

static bool next_line(struct lines *l, const char **line, size_t *len)
{
	if (l->p >= l->end)
		return false;
	const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
	const char *e = nl ? nl : l->end;
	*line = l->p;
	*len = (size_t)(e - l->p);
	if (*len && e[-1] == '\r')
		(*len)--;
	l->p = nl ? nl + 1 : l->end;
	l->no++;
	return true;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

static char *trimmed(const char *s, size_t n)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return xstrndup(s, n);
}

static int add_pkg(struct ecr_inventory *inv, char **name, char **source, char **version,
		   enum ecr_pkg_kind kind, char **ret_msg)
{
	if (inv->n_pkgs >= INVENTORY_MAX_PKGS)
		return ecr_fail(ret_msg, "more than %d packages", INVENTORY_MAX_PKGS);
	inv->pkgs = xrealloc(inv->pkgs, (inv->n_pkgs + 1) * sizeof(*inv->pkgs));
	inv->pkgs[inv->n_pkgs++] = (struct ecr_package){ .name = TAKE_PTR(*name),
							 .source = TAKE_PTR(*source),
							 .version = TAKE_PTR(*version),
							 .kind = kind };
	return 0;
}

/* ---- os-release ---- */

int ecr_parse_os_release(struct ecr_inventory *inv, const char *buf, size_t len, char **ret_msg)
{
	struct lines l = { buf, buf + len, 0 };
	const char *line;
	size_t n;
	while (next_line(&l, &line, &n)) {
		if (blank(line, n) || line[0] == '#')
			continue;
		const char *eq = memchr(line, '=', n);
		if (!eq || eq == line)
			return ecr_fail(ret_msg, "os-release line %zu: expected KEY=value", l.no);
		for (const char *p = line; p < eq; p++)
			if (!isalnum((unsigned char)*p) && *p != '_')
				return ecr_fail(ret_msg, "os-release line %zu: invalid key", l.no);
		const char *v = eq + 1, *ve = line + n;
		struct strbuf sb = STRBUF_INIT;
		char quote = (v < ve && (*v == '"' || *v == '\'')) ? *v++ : 0;
		for (; v < ve && *v != quote; v++) {
			if (*v == '\\' && quote == '"' && v + 1 < ve)
				v++;
			strbuf_addch(&sb, *v);
		}
		if (quote && v >= ve) {
			strbuf_release(&sb);
			return ecr_fail(ret_msg, "os-release line %zu: unterminated quote", l.no);
		}
		char **dst = NULL;
		if ((size_t)(eq - line) == 2 && !strncmp(line, "ID", 2))
			dst = &inv->os_id;
		else if ((size_t)(eq - line) == 10 && !strncmp(line, "VERSION_ID", 10))
			dst = &inv->os_version_id;
		if (dst) {
			free(*dst);
			*dst = strbuf_detach(&sb, NULL);
		} else {
			strbuf_release(&sb);
		}
	}
	return 0;
}

/* ---- dpkg status ---- */

struct stanza {
	char *package, *version, *source, *status;
};

static void stanza_clear(struct stanza *s)
{
	free(s->package);
	free(s->version);
	free(s->source);
	free(s->status);
	*s = (struct stanza){ 0 };
}

static int stanza_end(struct ecr_inventory *inv, struct stanza *s, size_t line, char **ret_msg)
{
	int r = 0;
	if (!s->package && !s->version && !s->status && !s->source)
		return 0;
	if (!s->package || !*s->package)
		r = ecr_fail(ret_msg, "dpkg status: the stanza ending at line %zu has no Package field",
			     line);
	else if (s->status && !s->version && endswith(s->status, " installed"))
		r = ecr_fail(ret_msg, "dpkg status: package '%s' (line %zu) has no Version", s->package,
			     line);
	else if (s->status && endswith(s->status, " installed")) {
		/* "Source: name (version)": the source version is what advisories name */
		char *src = NULL, *ver = TAKE_PTR(s->version);
		if (s->source) {
			char *paren = strchr(s->source, '(');
			src = paren ? trimmed(s->source, (size_t)(paren - s->source)) : xstrdup(s->source);
			char *close = paren ? strchr(paren, ')') : NULL;
			if (paren && close) {
				free(ver);
				ver = trimmed(paren + 1, (size_t)(close - paren - 1));
			}
		}
		char *name = TAKE_PTR(s->package);
		r = add_pkg(inv, &name, &src, &ver, ECR_PKG_DPKG, ret_msg);
		free(name);
		free(src);
		free(ver);
	}
	stanza_clear(s);
	return r;
}

int ecr_parse_dpkg_status(struct ecr_inventory *inv, const char *buf, size_t len, char **ret_msg)
{
	struct lines l = { buf, buf + len, 0 };
	struct stanza s = { 0 };
	const char *line;
	size_t n;
	int r = 0;
	while (r == 0 && next_line(&l, &line, &n)) {
		if (blank(line, n)) {
			r = stanza_end(inv, &s, l.no, ret_msg);
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t')
			continue; /* continuation of a multi-line field */
		const char *colon = memchr(line, ':', n);
		if (!colon || colon == line) {
			r = ecr_fail(ret_msg, "dpkg status line %zu: expected 'Field: value'", l.no);
			break;
		}
		size_t klen = (size_t)(colon - line);
		if (n - klen > FIELD_MAX) {
			r = ecr_fail(ret_msg, "dpkg status line %zu: field too long", l.no);
			break;
		}
		char **dst = NULL;
		if (klen == 7 && !strncasecmp(line, "Package", 7))
			dst = &s.package;
		else if (klen == 7 && !strncasecmp(line, "Version", 7))
			dst = &s.version;
		else if (klen == 6 && !strncasecmp(line, "Source", 6))
			dst = &s.source;
		else if (klen == 6 && !strncasecmp(line, "Status", 6))
			dst = &s.status;
		if (dst && *dst) {
			r = ecr_fail(ret_msg, "dpkg status line %zu: field '%.*s' repeated in one stanza",
				     l.no, (int)klen, line);
			break;
		}
		if (dst)
			*dst = trimmed(colon + 1, n - klen - 1);
	}
	if (r == 0)
		r = stanza_end(inv, &s, l.no, ret_msg);
	stanza_clear(&s);
	return r;
}

/* ---- apk installed ---- */

int ecr_parse_apk_installed(struct ecr_inventory *inv, const char *buf, size_t len, char **ret_msg)
{
	struct lines l = { buf, buf + len, 0 };
	char *name = NULL, *ver = NULL, *origin = NULL;
	const char *line;
	size_t n;
	int r = 0;
	for (;;) {
		bool more = next_line(&l, &line, &n);
		if (!more || n == 0) {
			if (name || ver || origin) {
				if (!name || !ver)
					r = ecr_fail(ret_msg, "apk installed line %zu: package without %s",
						     l.no, name ? "V: (version)" : "P: (name)");
				else
					r = add_pkg(inv, &name, &origin, &ver, ECR_PKG_APK, ret_msg);
			}
			free(name);
			free(ver);
			free(origin);
			name = ver = origin = NULL;
			if (!more || r < 0)
				break;
			continue;
		}
		if (n < 2 || line[1] != ':' || n > FIELD_MAX) {
			r = ecr_fail(ret_msg, "apk installed line %zu: expected 'X:value'", l.no);
			break;
		}
		char **dst = line[0] == 'P' ? &name : line[0] == 'V' ? &ver : line[0] == 'o' ? &origin : NULL;
		if (dst) {
			free(*dst);
			*dst = trimmed(line + 2, n - 2);
		}
	}
	free(name);
	free(ver);
	free(origin);
	return r;
}
