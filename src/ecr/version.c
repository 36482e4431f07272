/*
 * version.c - version ordering of the two package managers berth inventories:
 * dpkg (deb-version(7), the algorithm of dpkg's verrevcmp) and apk
 * (apk-tools' apk_version_compare token rules).
 */
#include <ctype.h>

#include "common/util.h"
#include "ecr/ecr.h"

/* ---- dpkg ---- */

static int dpkg_order(int c)
{
	if (isdigit(c))
		return 0;
	if (isalpha(c))
		return c;
	if (c == '~')
		return -1;
	if (c)
		return c + 256;
	return 0;
}

/* dpkg's verrevcmp over [a, a_end) and [b, b_end). */
static int verrevcmp(const char *a, const char *ae, const char *b, const char *be)
{
	while (a < ae || b < be) {
		int first_diff = 0;
		while ((a < ae && !isdigit((unsigned char)*a)) || (b < be && !isdigit((unsigned char)*b))) {
			int ac = a < ae ? dpkg_order((unsigned char)*a) : 0;
			int bc = b < be ? dpkg_order((unsigned char)*b) : 0;
			if (ac != bc)
				return ac - bc;
			a += a < ae;
			b += b < be;
		}
		while (a < ae && *a == '0')
			a++;
		while (b < be && *b == '0')
			b++;
		while (a < ae && isdigit((unsigned char)*a) && b < be && isdigit((unsigned char)*b)) {
			if (!first_diff)
				first_diff = *a - *b;
			a++;
			b++;
		}
		if (a < ae && isdigit((unsigned char)*a))
			return 1;
		if (b < be && isdigit((unsigned char)*b))
			return -1;
		if (first_diff)
			return first_diff;
	}
	return 0;
}

struct dpkg_ver {
	unsigned long long epoch;
	const char *up, *up_end, *rev, *rev_end;
};

static void dpkg_split(const char *v, struct dpkg_ver *d)
{
	while (isspace((unsigned char)*v))
		v++;
	const char *end = v + strlen(v);
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	d->epoch = 0;
	const char *colon = memchr(v, ':', (size_t)(end - v));
	if (colon) {
		for (const char *p = v; p < colon; p++)
			if (isdigit((unsigned char)*p) && d->epoch < 1000000000ULL)
				d->epoch = d->epoch * 10 + (unsigned)(*p - '0');
		v = colon + 1;
	}
	const char *dash = NULL;
	for (const char *p = v; p < end; p++)
		if (*p == '-')
			dash = p;
	d->up = v;
	d->up_end = dash ? dash : end;
	d->rev = dash ? dash + 1 : end;
	d->rev_end = end;
}

int ecr_dpkg_version_cmp(const char *a, const char *b)
{
	struct dpkg_ver x, y;
	dpkg_split(a, &x);
	dpkg_split(b, &y);
	if (x.epoch != y.epoch)
		return x.epoch < y.epoch ? -1 : 1;
	int r = verrevcmp(x.up, x.up_end, y.up, y.up_end);
	if (r)
		return r < 0 ? -1 : 1;
	r = verrevcmp(x.rev, x.rev_end, y.rev, y.rev_end);
	return r < 0 ? -1 : r > 0;
}

/* ---- apk ---- */

/* Token types in apk-tools' order: a lower type at the first difference is the greater version. */
enum apk_tok { T_DIGIT, T_LETTER, T_SUFFIX, T_REVISION, T_END, T_INVALID };

static const char *const PRE_SUFFIXES[] = { "alpha", "beta", "pre", "rc" };
static const char *const POST_SUFFIXES[] = { "cvs", "svn", "git", "hg", "p" };

struct apk_tok_val {
	enum apk_tok type;
	const char *num; /* digits (T_DIGIT, T_REVISION, suffix number), leading zeros stripped */
	size_t num_len;
	int letter;  /* T_LETTER */
	int suffix;  /* T_SUFFIX: -4..-1 pre-release, 1..5 post-release */
	bool is_pre; /* pre-release suffix */
};

static const char *apk_digits(const char *p, struct apk_tok_val *t)
{
	while (*p == '0' && isdigit((unsigned char)p[1]))
		p++;
	t->num = p;
	while (isdigit((unsigned char)*p))
		p++;
	t->num_len = (size_t)(p - t->num);
	return p;
}

/* Next token at *p (after the first, which is digits). */
static void apk_next(const char **pp, struct apk_tok_val *t, bool first)
{
	const char *p = *pp;
	*t = (struct apk_tok_val){ .type = T_INVALID };
	if (!*p) {
		t->type = T_END;
	} else if (first || (*p == '.' && isdigit((unsigned char)p[1]))) {
		if (!first)
			p++;
		if (!isdigit((unsigned char)*p))
			return;
		t->type = T_DIGIT;
		p = apk_digits(p, t);
	} else if (islower((unsigned char)*p) && !isalpha((unsigned char)p[1])) {
		t->type = T_LETTER;
		t->letter = *p++;
	} else if (*p == '_') {
		p++;
		for (size_t i = 0; i < ARRAY_SIZE(PRE_SUFFIXES) && t->type == T_INVALID; i++)
			if (startswith(p, PRE_SUFFIXES[i])) {
				t->type = T_SUFFIX;
				t->is_pre = true;
				t->suffix = (int)i - 4;
				p += strlen(PRE_SUFFIXES[i]);
			}
		for (size_t i = 0; i < ARRAY_SIZE(POST_SUFFIXES) && t->type == T_INVALID; i++)
			if (startswith(p, POST_SUFFIXES[i])) {
				t->type = T_SUFFIX;
				t->suffix = (int)i + 1;
				p += strlen(POST_SUFFIXES[i]);
			}
		if (t->type == T_SUFFIX)
			p = apk_digits(p, t);
	} else if (p[0] == '-' && p[1] == 'r' && isdigit((unsigned char)p[2])) {
		t->type = T_REVISION;
		p = apk_digits(p + 2, t);
	}
	if (t->type != T_END && t->type != T_INVALID)
		*pp = p;
}

static int num_cmp(const struct apk_tok_val *a, const struct apk_tok_val *b)
{
	if (a->num_len != b->num_len)
		return a->num_len < b->num_len ? -1 : 1;
	int r = memcmp(a->num, b->num, a->num_len);
	return r < 0 ? -1 : r > 0;
}

int ecr_apk_version_cmp(const char *a, const char *b)
{
	bool first = true;
	for (;;) {
		struct apk_tok_val x, y;
		apk_next(&a, &x, first);
		apk_next(&b, &y, first);
		first = false;
		if (x.type == T_END && y.type == T_END)
			return 0;
		if (x.type == T_INVALID || y.type == T_INVALID) /* fall back to plain byte order */
			return x.type == y.type ? (strcmp(a, b) > 0) - (strcmp(a, b) < 0)
						: (x.type == T_INVALID ? -1 : 1);
		if (x.type == y.type) {
			int r = 0;
			if (x.type == T_LETTER)
				r = (x.letter > y.letter) - (x.letter < y.letter);
			else if (x.type == T_SUFFIX)
				r = x.suffix != y.suffix ? (x.suffix > y.suffix) - (x.suffix < y.suffix)
							 : num_cmp(&x, &y);
			else if (x.type != T_END)
				r = num_cmp(&x, &y);
			if (r)
				return r;
			continue;
		}
		/* different kinds: a pre-release suffix is older than anything; else the lower kind is newer
		 */
		if (x.type == T_SUFFIX && x.is_pre)
			return -1;
		if (y.type == T_SUFFIX && y.is_pre)
			return 1;
		return x.type < y.type ? 1 : -1;
	}
}
