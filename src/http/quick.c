/*
 * quick.c - framing of the HTTP fast path (quick.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"
#include "http/quick.h"

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$&'*+-.^_`|~", c));
}

/* "close" among the comma-separated tokens of a Connection value. */
static bool has_close(const char *v, size_t n)
{
	for (size_t i = 0; i + 5 <= n; i++)
		if (!strncasecmp(v + i, "close", 5))
			return true;
	return false;
}

enum http_quick_parse http_quick_parse(const char *buf, size_t len, struct http_quick_req *ret)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return len >= HTTP_QUICK_MAX ? HTTP_QUICK_PASS : HTTP_QUICK_MORE;
	size_t head = (size_t)(end - buf) + 4;
	/* request line: METHOD SP /target SP HTTP/1.1 CRLF */
	const char *p = buf, *eol = memchr(buf, '\r', head);
	if (eol[1] != '\n')
		return HTTP_QUICK_PASS;
	size_t m = 0;
	while (p + m < eol && p[m] >= 'A' && p[m] <= 'Z')
		m++;
	if (m == 0 || m >= sizeof(ret->method) || p[m] != ' ')
		return HTTP_QUICK_PASS;
	memcpy(ret->method, p, m);
	ret->method[m] = '\0';
	p += m + 1;
	size_t t = 0;
	while (p + t < eol && p[t] > ' ' && p[t] < 0x7f && p[t] != '%' && p[t] != '?')
		t++;
	if (t == 0 || p[0] != '/' || t >= sizeof(ret->path) || p + t + 9 != eol ||
	    memcmp(p + t, " HTTP/1.1", 9))
		return HTTP_QUICK_PASS;
	memcpy(ret->path, p, t);
	ret->path[t] = '\0';
	/* header lines */
	bool have_cl = false;
	size_t cl = 0, hosts = 0;
	for (p = eol + 2; p < end + 2; p = eol + 2) {
		eol = memchr(p, '\r', (size_t)(end + 2 - p));
		if (!eol || eol[1] != '\n')
			return HTTP_QUICK_PASS;
		size_t n = 0;
		while (p + n < eol && is_tchar(p[n]))
			n++;
		if (n == 0 || p[n] != ':')
			return HTTP_QUICK_PASS; /* also folding and bare CR/LF */
		const char *v = p + n + 1, *ve = eol;
		for (const char *q = v; q < ve; q++)
			if (((unsigned char)*q < ' ' && *q != '\t') || *q == 0x7f)
				return HTTP_QUICK_PASS;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (n == 14 && !strncasecmp(p, "Content-Length", 14)) {
			if (have_cl || v == ve || ve - v > 9)
				return HTTP_QUICK_PASS;
			cl = 0;
			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9')
					return HTTP_QUICK_PASS;
				cl = cl * 10 + (size_t)(*q - '0');
			}
			have_cl = true;
		} else if (n == 4 && !strncasecmp(p, "Host", 4)) {
			hosts++;
		} else if ((n == 17 && !strncasecmp(p, "Transfer-Encoding", 17)) ||
			   (n == 6 && !strncasecmp(p, "Expect", 6)) ||
			   (n == 7 && !strncasecmp(p, "Upgrade", 7)) ||
			   (n == 10 && !strncasecmp(p, "Connection", 10) && has_close(v, (size_t)(ve - v)))) {
			return HTTP_QUICK_PASS;
		}
	}
	if (hosts != 1) /* the server answers 400 (RFC 9112 3.2) */
		return HTTP_QUICK_PASS;
	if (cl > HTTP_QUICK_MAX || head + cl > HTTP_QUICK_MAX)
		return HTTP_QUICK_PASS;
	if (len < head + cl)
		return HTTP_QUICK_MORE;
	if (len > head + cl)
		return HTTP_QUICK_PASS; /* pipelined: libmicrohttpd keeps the order */
	ret->body = buf + head;
	ret->body_len = cl;
	return HTTP_QUICK_READY;
}

static const char *reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

char *http_quick_format(unsigned status, const char *content_type, const char *body, size_t len,
			size_t *ret_len)
{
	/* once a second per thread (the TLS loop calls this for every answer) */
	static _Thread_local time_t last;
	static _Thread_local char date[64];
	time_t now = time(NULL);
	if (now != last) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	char head[512];
	int h =
	    snprintf(head, sizeof(head),
		     "HTTP/1.1 %u %s\r\nServer: berth/" BERTH_VERSION "\r\nDate: %s\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n\r\n",
		     status, reason(status), date, content_type, len);
	char *out = xmalloc((size_t)h + len);
	memcpy(out, head, (size_t)h);
	memcpy(out + h, body, len);
	*ret_len = (size_t)h + len;
	return out;
}
