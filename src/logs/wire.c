/*
 * wire.c - the agents' binary log batches and the json-file line reader (wire.h).
 */
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "logs/wire.h"

static void put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_header(unsigned char *h, uint64_t offset, int64_t timestamp, size_t len)
{
	put_u64(h, offset);
	put_u64(h + 8, (uint64_t)timestamp);
	uint32_t l = (uint32_t)len;
	for (int i = 0; i < 4; i++)
		h[16 + i] = (unsigned char)(l >> (8 * i));
}

void logs_wire_add(struct strbuf *sb, uint64_t offset, int64_t timestamp, const char *msg, size_t len)
{
	strbuf_grow(sb, LOGS_WIRE_EVENT_HDR + len);
	put_header((unsigned char *)sb->buf + sb->len, offset, timestamp, len);
	memcpy(sb->buf + sb->len + LOGS_WIRE_EVENT_HDR, msg, len);
	strbuf_setlen(sb, sb->len + LOGS_WIRE_EVENT_HDR + len);
}

size_t logs_wire_begin(struct strbuf *sb)
{
	size_t start = sb->len;
	strbuf_grow(sb, LOGS_WIRE_EVENT_HDR);
	strbuf_setlen(sb, start + LOGS_WIRE_EVENT_HDR);
	return start;
}

void logs_wire_end(struct strbuf *sb, size_t start, uint64_t offset, int64_t timestamp)
{
	put_header((unsigned char *)sb->buf + start, offset, timestamp,
		   sb->len - start - LOGS_WIRE_EVENT_HDR);
}

void logs_wire_batch_done(struct logs_wire_batch *b)
{
	free(b->ev);
	free(b->offsets);
	*b = (struct logs_wire_batch){ 0 };
}

const char *logs_wire_parse(const char *body, size_t len, size_t max_events, struct logs_wire_batch *b)
{
	*b = (struct logs_wire_batch){ 0 };
	const char *nl = body ? memchr(body, '\n', len) : NULL;
	if (!nl)
		return "the batch has no head line";
	b->head = body;
	b->head_len = (size_t)(nl - body);
	/* count first, so the arrays are allocated once */
	size_t pos = b->head_len + 1, n = 0;
	while (pos < len) {
		if (len - pos < LOGS_WIRE_EVENT_HDR)
			return "truncated event header";
		const unsigned char *h = (const unsigned char *)body + pos;
		uint32_t l =
		    (uint32_t)h[16] | (uint32_t)h[17] << 8 | (uint32_t)h[18] << 16 | (uint32_t)h[19] << 24;
		if (l == 0)
			return "Log event messages must not be empty.";
		if (l > len - pos - LOGS_WIRE_EVENT_HDR)
			return "truncated event message";
		if (++n > max_events)
			return "too many events in one batch";
		pos += LOGS_WIRE_EVENT_HDR + l;
	}
	b->ev = xcalloc(n + 1, sizeof(*b->ev));
	b->offsets = xcalloc(n + 1, sizeof(*b->offsets));
	pos = b->head_len + 1;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *h = (const unsigned char *)body + pos;
		uint32_t l =
		    (uint32_t)h[16] | (uint32_t)h[17] << 8 | (uint32_t)h[18] << 16 | (uint32_t)h[19] << 24;
		b->offsets[i] = get_u64(h);
		b->ev[i] =
		    (struct logs_in_event){ (int64_t)get_u64(h + 8), body + pos + LOGS_WIRE_EVENT_HDR, l };
		pos += LOGS_WIRE_EVENT_HDR + l;
	}
	b->n = n;
	return NULL;
}

/* ---- json-file lines ---- */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

static long hex4(const char *p, const char *end)
{
	if (end - p < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* cp as UTF-8 at o; the byte after it. */
static char *put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6), *o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12), *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18), *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f)), *o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/*
 * The first '"' or '\\' in [p, end), end when none: eight bytes at a time
 * (the per-line cost of the shipper: a log line's escapes made it call memchr
 * twice per escape).
 */
static const char *find_special(const char *p, const char *end)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	while (end - p >= 8) {
		uint64_t x;
		memcpy(&x, p, 8);
		uint64_t a = x ^ (ones * '"'), b = x ^ (ones * '\\');
		if (((a - ones) & ~a & highs) | ((b - ones) & ~b & highs))
			break; /* one of these eight: the byte loop finds which */
		p += 8;
	}
	while (p < end && *p != '"' && *p != '\\')
		p++;
	return p;
}

/*
 * A JSON string starting after its opening quote at *pp; unescaped into out when out is set.
 * *pp ends after the closing quote. -1: malformed or \u0000.
 */
static int read_string(const char **pp, const char *end, struct strbuf *out)
{
	const char *p = *pp;
	char *o = NULL;
	if (out) { /* unescaping never lengthens: room for the rest of the line is enough */
		strbuf_grow(out, (size_t)(end - p));
		o = out->buf + out->len;
	}
	for (;;) {
		/* raw control characters pass (JSON forbids them; the engine never writes them, and
		 * shipping beats dropping the line) */
		const char *stop = find_special(p, end);
		if (stop == end)
			return -1;
		if (o) {
			memcpy(o, p, (size_t)(stop - p));
			o += stop - p;
		}
		p = stop;
		if (*p == '"') {
			*pp = p + 1;
			if (out)
				strbuf_setlen(out, (size_t)(o - out->buf));
			return 0;
		}
		if (++p >= end)
			return -1;
		char c = *p++, r;
		switch (c) {
		case '"': r = '"'; break;
		case '\\': r = '\\'; break;
		case '/': r = '/'; break;
		case 'b': r = '\b'; break;
		case 'f': r = '\f'; break;
		case 'n': r = '\n'; break;
		case 'r': r = '\r'; break;
		case 't': r = '\t'; break;
		case 'u': {
			long cp = hex4(p, end);
			if (cp <= 0)
				return -1;
			p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
				long lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2, end) : -1;
				if (lo < 0xdc00 || lo > 0xdfff)
					return -1;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return -1;
			}
			if (o)
				o = put_utf8(o, (unsigned long)cp);
			continue;
		}
		default: return -1;
		}
		if (o)
			*o++ = r;
	}
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

static int digits(const char *p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac]Z" (what the engine writes) fast; other RFC 3339 forms through
 * util_parse_rfc3339. */
static int parse_time(const char *s, size_t n, int64_t *ret)
{
	if (n >= 20 && n < 40 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
	    s[n - 1] == 'Z') {
		int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
		    mi = digits(s + 14, 2), se = digits(s + 17, 2);
		int ms = 0;
		bool ok = y >= 0 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h < 24 && mi >= 0 &&
			  mi < 60 && se >= 0 && se <= 60;
		if (ok && n > 20) {
			ok = s[19] == '.' && n > 21;
			for (size_t i = 20; ok && i < n - 1; i++) {
				ok = s[i] >= '0' && s[i] <= '9';
				if (i < 23)
					ms = ms * 10 + (s[i] - '0');
			}
			for (size_t i = n - 1; ok && i < 23; i++)
				ms *= 10;
		} else if (ok) {
			ok = n == 20;
		}
		if (ok) {
			*ret = ((util_days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000LL + se * 1000LL +
			       ms;
			return 0;
		}
	}
	char buf[64];
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	struct timespec ts;
	if (util_parse_rfc3339(buf, &ts) < 0)
		return -1;
	*ret = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return 0;
}

static int jsonfile_append(const char *line, size_t len, struct strbuf *msg, int64_t *ret_ts)
{
	const char *p = line, *end = line + len;
	bool have_log = false;
	*ret_ts = 0;
	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return -1;
	p = skip_ws(p, end);
	if (p < end && *p == '}') {
		p++;
	} else {
		for (;;) {
			if (p >= end || *p++ != '"')
				return -1;
			const char *key = p;
			if (read_string(&p, end, NULL) < 0)
				return -1;
			size_t klen = (size_t)(p - key - 1);
			p = skip_ws(p, end);
			if (p >= end || *p++ != ':')
				return -1;
			p = skip_ws(p, end);
			if (p >= end || *p++ != '"') /* only string values in the plain shape */
				return -1;
			const char *val = p;
			bool is_log = klen == 3 && memcmp(key, "log", 3) == 0;
			bool is_time = klen == 4 && memcmp(key, "time", 4) == 0;
			if (is_log && have_log)
				return -1; /* a duplicate key: let the JSON parser decide */
			if (read_string(&p, end, is_log ? msg : NULL) < 0)
				return -1;
			have_log |= is_log;
			if (is_time) {
				size_t vlen = (size_t)(p - val - 1);
				if (memchr(val, '\\', vlen) || parse_time(val, vlen, ret_ts) < 0)
					*ret_ts = 0;
			}
			p = skip_ws(p, end);
			if (p < end && *p == ',') {
				p = skip_ws(p + 1, end);
				continue;
			}
			if (p < end && *p == '}') {
				p++;
				break;
			}
			return -1;
		}
	}
	if (skip_ws(p, end) != end)
		return -1;
	return have_log ? 1 : 0;
}

int logs_jsonfile_append(const char *line, size_t len, struct strbuf *msg, int64_t *ret_ts)
{
	size_t start = msg->len;
	int r = jsonfile_append(line, len, msg, ret_ts);
	if (r != 1)
		strbuf_setlen(msg, start);
	return r;
}

int logs_jsonfile_line(const char *line, size_t len, struct strbuf *msg, int64_t *ret_ts)
{
	strbuf_reset(msg);
	return logs_jsonfile_append(line, len, msg, ret_ts);
}
