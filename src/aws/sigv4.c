/*
 * sigv4.c - AWS Signature Version 4: verification and signing (see sigv4.h).
 *
 * The canonical request is rebuilt from the request as received. The query
 * string is decoded and re-encoded with AWS's rules (unreserved characters
 * kept, everything else %XX uppercase), then sorted by name and value, so a
 * client's own encoding choices do not matter.
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/macro.h"
#include "common/strbuf.h"
#include "aws/sigv4.h"

#define ALGORITHM "AWS4-HMAC-SHA256"

void aws_sigv4_auth_done(struct sigv4_auth *a)
{
	free(a->access_key);
	free(a->date);
	free(a->region);
	free(a->service);
	free(a->scope);
	strv_free(a->signed_headers);
	free(a->signature);
	*a = (struct sigv4_auth){ 0 };
}

static bool is_hex_lower(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Split the "Credential" value "AKID/date/region/service/aws4_request". */
static int parse_credential(const char *v, size_t n, struct sigv4_auth *a, struct berth_error **err)
{
	_cleanup_free_ char *copy = xstrndup(v, n);
	char *parts[5];
	size_t k = 0;
	char *p = copy;
	for (;;) {
		char *slash = strchr(p, '/');
		if (k == 5)
			return berth_error_msg(err, EINVAL, "credential '%s': expected 5 parts", copy);
		parts[k++] = p;
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	if (k != 5)
		return berth_error_msg(err, EINVAL, "credential: expected 5 slash-separated parts, got %zu",
				       k);
	if (!*parts[0] || strlen(parts[1]) != 8 || !is_digits(parts[1], 8) || !*parts[2] || !*parts[3] ||
	    !streq(parts[4], "aws4_request"))
		return berth_error_msg(err, EINVAL, "credential: malformed scope");
	a->access_key = xstrdup(parts[0]);
	a->date = xstrdup(parts[1]);
	a->region = xstrdup(parts[2]);
	a->service = xstrdup(parts[3]);
	a->scope = xasprintf("%s/%s/%s/aws4_request", parts[1], parts[2], parts[3]);
	return 0;
}

static int parse_signed_headers(const char *v, size_t n, struct sigv4_auth *a, struct berth_error **err)
{
	if (n == 0)
		return berth_error_msg(err, EINVAL, "SignedHeaders: empty");
	char **list = xcalloc(SIGV4_MAX_SIGNED_HEADERS + 1, sizeof(char *));
	size_t k = 0;
	const char *p = v, *end = v + n;
	while (p <= end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		size_t len = semi ? (size_t)(semi - p) : (size_t)(end - p);
		bool bad = len == 0 || k == SIGV4_MAX_SIGNED_HEADERS;
		for (size_t i = 0; i < len && !bad; i++)
			bad = !((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' ||
				p[i] == '_' || p[i] == '.');
		if (!bad) {
			list[k] = xstrndup(p, len);
			bad = k > 0 && strcmp(list[k - 1], list[k]) >= 0; /* sorted and unique */
			k++;
		}
		if (bad) {
			strv_free(list);
			return berth_error_msg(err, EINVAL, "SignedHeaders: invalid or unsorted list");
		}
		if (!semi)
			break;
		p = semi + 1;
	}
	a->signed_headers = list;
	return 0;
}

int aws_sigv4_parse_authorization(const char *header, struct sigv4_auth *ret, struct berth_error **err)
{
	if (!header)
		return berth_error_msg(err, EINVAL, "missing Authorization header");
	size_t hl = strlen(header);
	if (hl > SIGV4_MAX_HEADER)
		return berth_error_msg(err, EINVAL, "Authorization header too long");
	if (!startswith(header, ALGORITHM " "))
		return berth_error_msg(err, EINVAL,
				       "Authorization: unsupported algorithm, expected " ALGORITHM);
	struct sigv4_auth a = { 0 };
	bool have_cred = false, have_sh = false, have_sig = false;
	const char *p = header + strlen(ALGORITHM);
	int r = 0;
	while (*p && r == 0) {
		p += strspn(p, " ,");
		if (!*p)
			break;
		const char *eq = strchr(p, '=');
		if (!eq) {
			r = berth_error_msg(err, EINVAL, "Authorization: expected key=value");
			break;
		}
		size_t vlen = strcspn(eq + 1, ", ");
		const char *v = eq + 1;
		size_t klen = (size_t)(eq - p);
		if (klen == 10 && !strncmp(p, "Credential", 10) && !have_cred) {
			have_cred = true;
			r = parse_credential(v, vlen, &a, err);
		} else if (klen == 13 && !strncmp(p, "SignedHeaders", 13) && !have_sh) {
			have_sh = true;
			r = parse_signed_headers(v, vlen, &a, err);
		} else if (klen == 9 && !strncmp(p, "Signature", 9) && !have_sig) {
			have_sig = true;
			if (vlen != 64 || !is_hex_lower(v, 64))
				r = berth_error_msg(err, EINVAL,
						    "Signature: expected 64 lowercase hex digits");
			else
				a.signature = xstrndup(v, 64);
		} else {
			r = berth_error_msg(err, EINVAL, "Authorization: unexpected or repeated '%.*s'",
					    (int)MIN(klen, 64), p);
		}
		p = v + vlen;
	}
	if (r == 0 && !(have_cred && have_sh && have_sig))
		r = berth_error_msg(err, EINVAL,
				    "Authorization: needs Credential, SignedHeaders and Signature");
	if (r < 0) {
		aws_sigv4_auth_done(&a);
		return r;
	}
	*ret = a;
	return 0;
}

int aws_sigv4_parse_amz_date(const char *s, time_t *ret)
{
	if (!s || strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z' || !is_digits(s, 8) || !is_digits(s + 9, 6))
		return -EINVAL;
	struct tm tm = { 0 };
	tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
	tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
	tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
	tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
	tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
	tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
	if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -EINVAL;
	*ret = timegm(&tm);
	return 0;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '.' || c == '~';
}

static void uri_encode(struct strbuf *sb, const char *s, size_t n, bool keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/'))
			strbuf_addch(sb, c);
		else
			strbuf_addf(sb, "%%%02X", c);
	}
}

static char *uri_decode(const char *s, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hex_digit_value(s[i + 1]) >= 0 &&
		    hex_digit_value(s[i + 2]) >= 0) {
			strbuf_addch(&sb, hex_digit_value(s[i + 1]) * 16 + hex_digit_value(s[i + 2]));
			i += 2;
		} else {
			strbuf_addch(&sb, s[i] == '+' ? ' ' : s[i]);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void canonical_query(struct strbuf *out, const char *query)
{
	if (!query || !*query)
		return;
	size_t cap = 8, n = 0;
	char **items = xcalloc(cap, sizeof(char *));
	const char *p = query;
	while (*p) {
		size_t len = strcspn(p, "&");
		if (len > 0) {
			const char *eq = memchr(p, '=', len);
			size_t kl = eq ? (size_t)(eq - p) : len;
			_cleanup_free_ char *k = uri_decode(p, kl);
			_cleanup_free_ char *v = eq ? uri_decode(eq + 1, len - kl - 1) : xstrdup("");
			struct strbuf sb = STRBUF_INIT;
			uri_encode(&sb, k, strlen(k), false);
			strbuf_addch(&sb, '=');
			uri_encode(&sb, v, strlen(v), false);
			if (n + 1 >= cap)
				items = xrealloc(items, (cap *= 2) * sizeof(char *));
			items[n++] = strbuf_detach(&sb, NULL);
			items[n] = NULL;
		}
		p += len;
		if (*p == '&')
			p++;
	}
	qsort(items, n, sizeof(char *), cmp_strp);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(out, "%s%s", i ? "&" : "", items[i]);
	strv_free(items);
}

/* Header value as AWS canonicalises it: trimmed, runs of spaces collapsed. */
static void canonical_value(struct strbuf *out, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t start = out->len;
	bool space = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') {
			space = true;
			continue;
		}
		if (space && out->len > start)
			strbuf_addch(out, ' ');
		space = false;
		strbuf_addch(out, *v);
	}
}

int aws_sigv4_canonical_request(const char *method, const char *path, const char *query,
				const struct sigv4_auth *a, sigv4_header_fn get_header, void *ctx,
				const char *payload_sha256_hex, char **ret, struct berth_error **err)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s\n", method);
	if (!path || !*path)
		path = "/";
	uri_encode(&sb, path, strlen(path), true);
	strbuf_addch(&sb, '\n');
	canonical_query(&sb, query);
	strbuf_addch(&sb, '\n');
	for (char **h = a->signed_headers; h && *h; h++) {
		const char *v = get_header(ctx, *h);
		if (!v) {
			strbuf_release(&sb);
			return berth_error_msg(err, ENOENT, "signed header '%s' is not in the request", *h);
		}
		strbuf_addf(&sb, "%s:", *h);
		canonical_value(&sb, v);
		strbuf_addch(&sb, '\n');
	}
	strbuf_addch(&sb, '\n');
	for (char **h = a->signed_headers; h && *h; h++)
		strbuf_addf(&sb, "%s%s", h == a->signed_headers ? "" : ";", *h);
	strbuf_addf(&sb, "\n%s", payload_sha256_hex);
	*ret = strbuf_detach(&sb, NULL);
	return 0;
}

void aws_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

char *aws_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *canonical)
{
	char h[65];
	aws_sigv4_sha256_hex(canonical, strlen(canonical), h);
	return xasprintf(ALGORITHM "\n%s\n%s\n%s", amz_date, scope, h);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int n = 32;
	HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void aws_sigv4_sign(const char *secret, const char *date, const char *region, const char *service,
		    const char *string_to_sign, char out[65])
{
	_cleanup_free_ char *k0 = xasprintf("AWS4%s", secret);
	unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
	hmac(k0, strlen(k0), date, k1);
	hmac(k1, 32, region, k2);
	hmac(k2, 32, service, k3);
	hmac(k3, 32, "aws4_request", k4);
	hmac(k4, 32, string_to_sign, sig);
	for (size_t i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sig[i]);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k4, sizeof(k4));
}

bool aws_sigv4_signature_equal(const char *a, const char *b)
{
	return strlen(a) == 64 && strlen(b) == 64 && CRYPTO_memcmp(a, b, 64) == 0;
}

void aws_sigv4_format_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

struct sign_headers {
	char **names;  /* lowercase, sorted */
	char **values; /* parallel to names */
	size_t n;
};

static const char *sign_lookup(void *ctx, const char *name)
{
	struct sign_headers *h = ctx;
	for (size_t i = 0; i < h->n; i++)
		if (streq(h->names[i], name))
			return h->values[i];
	return NULL;
}

static bool header_name_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* Insert (name lowercased, value) keeping names sorted; false on a duplicate. */
static bool sign_add(struct sign_headers *h, const char *name, const char *value)
{
	_cleanup_free_ char *low = xstrdup(name);
	for (char *p = low; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	size_t at = 0;
	while (at < h->n && strcmp(h->names[at], low) < 0)
		at++;
	if (at < h->n && streq(h->names[at], low))
		return false;
	memmove(h->names + at + 1, h->names + at, (h->n - at) * sizeof(char *));
	memmove(h->values + at + 1, h->values + at, (h->n - at) * sizeof(char *));
	h->names[at] = TAKE_PTR(low);
	h->values[at] = xstrdup(value);
	h->n++;
	h->names[h->n] = NULL;
	h->values[h->n] = NULL;
	return true;
}

static bool scope_part_ok(const char *s)
{
	return s && *s && !strchr(s, '/') && strlen(s) <= 128;
}

static int sign_collect(const struct sigv4_signer *s, const char *const *headers, const char *amz_date,
			struct sign_headers *h, struct berth_error **err)
{
	size_t n = 0;
	while (headers && headers[2 * n])
		n++;
	if (n + 2 > SIGV4_MAX_SIGNED_HEADERS)
		return berth_error_msg(err, EINVAL, "sign request: too many headers");
	h->names = xcalloc(n + 3, sizeof(char *));
	h->values = xcalloc(n + 3, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		const char *name = headers[2 * i], *value = headers[2 * i + 1];
		if (!header_name_ok(name) || !value || !strcasecmp(name, "authorization") ||
		    !strcasecmp(name, "x-amz-date") || !strcasecmp(name, "x-amz-security-token"))
			return berth_error_msg(err, EINVAL, "sign request: invalid header '%s'", name);
		if (!sign_add(h, name, value))
			return berth_error_msg(err, EINVAL, "sign request: repeated header '%s'", name);
	}
	if (!sign_lookup(h, "host"))
		return berth_error_msg(err, EINVAL, "sign request: no host header");
	sign_add(h, "x-amz-date", amz_date);
	if (s->session_token && *s->session_token)
		sign_add(h, "x-amz-security-token", s->session_token);
	return 0;
}

static void sign_headers_done(struct sign_headers *h)
{
	strv_free(h->names);
	strv_free(h->values);
}

int aws_sigv4_sign_request(const struct sigv4_signer *s, const char *method, const char *path,
			   const char *query, const char *const *headers, const void *body, size_t body_len,
			   time_t now, char ***ret, struct berth_error **err)
{
	if (!scope_part_ok(s->access_key) || !s->secret || !*s->secret || !scope_part_ok(s->region) ||
	    !scope_part_ok(s->service) || strchr(s->access_key, ',') || strchr(s->access_key, ' '))
		return berth_error_msg(err, EINVAL, "sign request: invalid credentials, region or service");
	char amz_date[17];
	aws_sigv4_format_amz_date(now, amz_date);
	struct sign_headers h = { 0 };
	int r = sign_collect(s, headers, amz_date, &h, err);
	if (r < 0) {
		sign_headers_done(&h);
		return r;
	}
	_cleanup_free_ char *date = xstrndup(amz_date, 8);
	struct sigv4_auth a = { .signed_headers = h.names };
	_cleanup_free_ char *scope = xasprintf("%s/%s/%s/aws4_request", date, s->region, s->service);
	char payload[65], sig[65];
	aws_sigv4_sha256_hex(body ? body : "", body ? body_len : 0, payload);
	_cleanup_free_ char *canonical = NULL;
	r = aws_sigv4_canonical_request(method, path, query, &a, sign_lookup, &h, payload, &canonical, err);
	if (r < 0) {
		sign_headers_done(&h);
		return r;
	}
	_cleanup_free_ char *sts = aws_sigv4_string_to_sign(amz_date, scope, canonical);
	aws_sigv4_sign(s->secret, date, s->region, s->service, sts, sig);
	struct strbuf sh = STRBUF_INIT;
	for (size_t i = 0; i < h.n; i++)
		strbuf_addf(&sh, "%s%s", i ? ";" : "", h.names[i]);
	char **out = xcalloc(4, sizeof(char *));
	size_t k = 0;
	out[k++] = xasprintf("X-Amz-Date: %s", amz_date);
	if (s->session_token && *s->session_token)
		out[k++] = xasprintf("X-Amz-Security-Token: %s", s->session_token);
	out[k] = xasprintf("Authorization: " ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			   s->access_key, scope, sh.buf, sig);
	strbuf_release(&sh);
	sign_headers_done(&h);
	*ret = out;
	return 0;
}
