/*
 * base64.c - RFC 4648 base64 without line breaks. Small enough that a table
 * and two loops beat pulling OpenSSL's BIO machinery into every caller.
 */
#include "common/base64.h"

static const char enc_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *encode(const void *data, size_t len, const char *table, bool pad)
{
	const unsigned char *p = data;
	char *out = xmalloc((len + 2) / 3 * 4 + 1), *o = out;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		*o++ = table[(v >> 18) & 63];
		*o++ = table[(v >> 12) & 63];
		if (i + 1 < len || pad)
			*o++ = i + 1 < len ? table[(v >> 6) & 63] : '=';
		if (i + 2 < len || pad)
			*o++ = i + 2 < len ? table[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

char *base64_encode(const void *data, size_t len)
{
	return encode(data, len, enc_table, true);
}

char *base64url_encode(const void *data, size_t len, bool pad)
{
	return encode(data, len, url_table, pad);
}

static int dec_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int base64_decode(const char *s, void **ret, size_t *ret_len)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1 || strlen(s) - n > 2)
		return -EINVAL;
	unsigned char *out = xmalloc(n / 4 * 3 + 3 + 1);
	size_t o = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		int v = dec_value(s[i]);
		if (v < 0) {
			free(out);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (n % 4 == 2) {
		out[o++] = (unsigned char)(acc >> 4);
	} else if (n % 4 == 3) {
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	}
	out[o] = '\0';
	*ret = out;
	*ret_len = o;
	return 0;
}
