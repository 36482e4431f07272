/*
 * elbv2-query.c - AWS query protocol plumbing for the ELBv2 calls (elbv2.h):
 * form bodies in, XML out.
 */
#include <stdio.h>
#include <string.h>

#include "common/macro.h"
#include "server/elbv2.h"

/* Decode [s, s+n) into a new string; NULL on a bad escape or a NUL. */
static char *decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int a = i + 2 < n ? hex_digit_value(s[i + 1]) : -1,
			    b = i + 2 < n ? hex_digit_value(s[i + 2]) : -1;
			if (a < 0 || b < 0) {
				free(out);
				return NULL;
			}
			c = (char)(a * 16 + b);
			i += 2;
		}
		if (c == '\0') {
			free(out);
			return NULL;
		}
		*o++ = c;
	}
	*o = '\0';
	return out;
}

json_t *server_elbv2_form_parse(const char *body, size_t len)
{
	json_t *out = json_object();
	size_t pairs = 0;
	for (size_t at = 0; at < len;) {
		const char *p = body + at, *amp = memchr(p, '&', len - at);
		size_t n = amp ? (size_t)(amp - p) : len - at;
		at += n + 1;
		if (n == 0)
			continue; /* "a=1&&b=2" or a trailing '&' */
		const char *eq = memchr(p, '=', n);
		size_t kn = eq ? (size_t)(eq - p) : n;
		char *k = decode(p, kn), *v = decode(eq ? eq + 1 : p + n, eq ? n - kn - 1 : 0);
		bool ok = k && v && *k && !json_object_get(out, k) && ++pairs <= ELBV2_MAX_PARAMS;
		if (ok)
			json_object_set_new(out, k, json_string(v));
		free(k);
		free(v);
		if (!ok) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *server_elbv2_form_list(const json_t *form, const char *name)
{
	json_t *out = json_array();
	for (size_t i = 1; i <= ELBV2_MAX_PARAMS; i++) {
		char key[160];
		snprintf(key, sizeof(key), "%s.member.%zu", name, i);
		json_t *v = json_object_get(form, key);
		if (!v)
			break;
		json_array_append(out, v);
	}
	return out;
}

void server_elbv2_xml_text(struct strbuf *out, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': strbuf_addstr(out, "&lt;"); break;
		case '>': strbuf_addstr(out, "&gt;"); break;
		case '&': strbuf_addstr(out, "&amp;"); break;
		case '"': strbuf_addstr(out, "&quot;"); break;
		case '\'': strbuf_addstr(out, "&apos;"); break;
		default: strbuf_addch(out, *s);
		}
	}
}

void server_elbv2_xml_elem(struct strbuf *out, const char *tag, const char *text)
{
	if (!text)
		return;
	strbuf_addf(out, "<%s>", tag);
	server_elbv2_xml_text(out, text);
	strbuf_addf(out, "</%s>", tag);
}

char *server_elbv2_error_xml(const char *code, const char *message, const char *request_id)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addstr(&sb, "<ErrorResponse xmlns=\"" ELBV2_XMLNS "\"><Error><Type>Sender</Type>");
	server_elbv2_xml_elem(&sb, "Code", code);
	server_elbv2_xml_elem(&sb, "Message", message);
	strbuf_addstr(&sb, "</Error>");
	server_elbv2_xml_elem(&sb, "RequestId", request_id);
	strbuf_addstr(&sb, "</ErrorResponse>");
	return strbuf_detach(&sb, NULL);
}
