/*
 * reference.c - docker image references: parse, normalise, format.
 *
 * Follows distribution/reference's grammar and ParseNormalizedNamed() rules
 * with a hand-written scanner instead of regular expressions, so errors can
 * say what is wrong. The trade-off: the grammar is duplicated here, and the
 * unit tests pin it to docker's observable behaviour.
 */
#include <ctype.h>

#include "common/digest.h"
#include "common/strbuf.h"
#include "image/image.h"

#define DEFAULT_DOMAIN  "docker.io"
#define LEGACY_DOMAIN   "index.docker.io"
#define OFFICIAL_PREFIX "library/"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_word(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* alpha-numeric (separator alpha-numeric)*, separator := [_.] | __ | -+ */
static bool path_component_valid(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
		return false;
	while (i < n) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t j = i;
		if (s[i] == '.') {
			j++;
		} else if (s[i] == '_') {
			j++;
			if (j < n && s[j] == '_')
				j++;
		} else if (s[i] == '-') {
			while (j < n && s[j] == '-')
				j++;
		} else {
			return false;
		}
		if (j >= n || !is_lower_alnum(s[j]))
			return false;
		i = j;
	}
	return true;
}

static bool path_valid(const char *s)
{
	while (true) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);
		if (!path_component_valid(s, n))
			return false;
		if (!slash)
			return true;
		s = slash + 1;
	}
}

static bool domain_component_valid(const char *s, size_t n)
{
	if (n == 0 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool port_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* host [':' port], host := domain-name | '[' ipv6 ']' */
static bool domain_valid(const char *d)
{
	const char *port = NULL;
	if (d[0] == '[') {
		const char *close = strchr(d, ']');
		if (!close || close == d + 1)
			return false;
		for (const char *p = d + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		if (close[1] == '\0')
			return true;
		if (close[1] != ':')
			return false;
		return port_valid(close + 2);
	}
	port = strchr(d, ':');
	size_t hostlen = port ? (size_t)(port - d) : strlen(d);
	if (port && !port_valid(port + 1))
		return false;
	const char *s = d;
	const char *end = d + hostlen;
	if (hostlen == 0)
		return false;
	while (s <= end) {
		const char *dot = memchr(s, '.', (size_t)(end - s));
		const char *stop = dot ? dot : end;
		if (!domain_component_valid(s, (size_t)(stop - s)))
			return false;
		if (!dot)
			break;
		s = dot + 1;
	}
	return true;
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > IMAGE_REF_TAG_MAX || !is_word(t[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

static bool is_hex64(const char *s)
{
	size_t n = strlen(s);
	if (n != 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (isupper((unsigned char)s[i]))
			return true;
	return false;
}

/* Split "name[:tag]" where name may carry a host:port. Returns the tag or NULL. */
static char *split_tag(char *name)
{
	char *colon = strrchr(name, ':');
	char *slash = strrchr(name, '/');
	if (!colon || (slash && colon < slash))
		return NULL;
	*colon = '\0';
	return colon + 1;
}

static int ref_error(struct berth_error **err, const char *input, const char *why)
{
	if (why)
		return berth_error_msg(err, EINVAL, "invalid reference format '%s': %s", input, why);
	return berth_error_msg(err, EINVAL, "invalid reference format '%s'", input);
}

/* Docker's splitDockerDomain(). */
static void split_domain(const char *name, char **ret_domain, char **ret_rest)
{
	const char *slash = strchr(name, '/');
	size_t n = slash ? (size_t)(slash - name) : 0;
	_cleanup_free_ char *first = slash ? xstrndup(name, n) : NULL;
	if (!slash || (!strpbrk(first, ".:") && !streq(first, "localhost") && !has_upper(first, n))) {
		*ret_domain = xstrdup(DEFAULT_DOMAIN);
		*ret_rest = xstrdup(name);
	} else {
		*ret_domain = TAKE_PTR(first);
		*ret_rest = xstrdup(slash + 1);
	}
	if (streq(*ret_domain, LEGACY_DOMAIN)) {
		free(*ret_domain);
		*ret_domain = xstrdup(DEFAULT_DOMAIN);
	}
	if (streq(*ret_domain, DEFAULT_DOMAIN) && !strchr(*ret_rest, '/')) {
		char *r = xasprintf(OFFICIAL_PREFIX "%s", *ret_rest);
		free(*ret_rest);
		*ret_rest = r;
	}
}

static int parse_digest_part(const char *input, const char *dg, char **ret, struct berth_error **err)
{
	_cleanup_error_ struct berth_error *inner = NULL;
	if (digest_parse(dg, NULL, NULL, &inner) < 0) {
		_cleanup_free_ char *why = berth_error_string(inner);
		return ref_error(err, input, why);
	}
	*ret = xstrdup(dg);
	return 0;
}

int image_ref_parse(const char *s, int flags, struct image_ref **ret, struct berth_error **err)
{
	if (!s || !*s)
		return ref_error(err, "", "repository name must have at least one component");
	if (strlen(s) > 4096)
		return berth_error_msg(err, EINVAL, "invalid reference format: reference is too long");
	if (is_hex64(s))
		return berth_error_msg(
		    err, EINVAL, "invalid repository name '%s': cannot specify 64-byte hexadecimal strings",
		    s);

	_cleanup_free_ char *copy = xstrdup(s);
	_cleanup_free_ char *digest = NULL;
	char *at = strchr(copy, '@');
	if (at) {
		if (flags & IMAGE_REF_NO_DIGEST)
			return ref_error(err, s, "a digest is not allowed here");
		*at = '\0';
		int r = parse_digest_part(s, at + 1, &digest, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *domain = NULL, *rest = NULL;
	split_domain(copy, &domain, &rest);
	const char *tag = split_tag(rest);
	if (has_upper(rest, strlen(rest)))
		return ref_error(err, s, "repository name must be lowercase");
	if (!*rest)
		return ref_error(err, s, "repository name must have at least one component");
	if (!domain_valid(domain) || !path_valid(rest))
		return ref_error(err, s, NULL);
	if (tag && !tag_valid(tag))
		return ref_error(err, s, "invalid tag");
	if (strlen(domain) + 1 + strlen(rest) > IMAGE_REF_NAME_MAX)
		return berth_error_msg(
		    err, EINVAL,
		    "invalid reference '%s': repository name must not be more than %d characters", s,
		    IMAGE_REF_NAME_MAX);

	struct image_ref *r = xcalloc(1, sizeof(*r));
	r->domain = TAKE_PTR(domain);
	r->path = TAKE_PTR(rest);
	r->tag = tag ? xstrdup(tag) : NULL;
	r->digest = TAKE_PTR(digest);
	if (!r->tag && !r->digest && (flags & IMAGE_REF_DEFAULT_TAG))
		r->tag = xstrdup("latest");
	*ret = r;
	return 0;
}

char *image_ref_name(const struct image_ref *r)
{
	return xasprintf("%s/%s", r->domain, r->path);
}

char *image_ref_string(const struct image_ref *r)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s/%s", r->domain, r->path);
	if (r->tag)
		strbuf_addf(&sb, ":%s", r->tag);
	if (r->digest)
		strbuf_addf(&sb, "@%s", r->digest);
	return strbuf_detach(&sb, NULL);
}

char *image_ref_familiar(const struct image_ref *r)
{
	struct strbuf sb = STRBUF_INIT;
	if (streq(r->domain, DEFAULT_DOMAIN)) {
		const char *p = r->path;
		if (startswith(p, OFFICIAL_PREFIX) && !strchr(p + strlen(OFFICIAL_PREFIX), '/'))
			p += strlen(OFFICIAL_PREFIX);
		strbuf_addstr(&sb, p);
	} else {
		strbuf_addf(&sb, "%s/%s", r->domain, r->path);
	}
	if (r->tag)
		strbuf_addf(&sb, ":%s", r->tag);
	if (r->digest)
		strbuf_addf(&sb, "@%s", r->digest);
	return strbuf_detach(&sb, NULL);
}

struct image_ref *image_ref_dup(const struct image_ref *r)
{
	struct image_ref *d = xcalloc(1, sizeof(*d));
	d->domain = xstrdup(r->domain);
	d->path = xstrdup(r->path);
	d->tag = r->tag ? xstrdup(r->tag) : NULL;
	d->digest = r->digest ? xstrdup(r->digest) : NULL;
	return d;
}

struct image_ref *image_ref_free(struct image_ref *r)
{
	if (!r)
		return NULL;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	free(r);
	return NULL;
}

static char *normalise_arch(const char *a, char **variant)
{
	if (streq(a, "x86_64") || streq(a, "x86-64"))
		return xstrdup("amd64");
	if (streq(a, "aarch64"))
		return xstrdup("arm64");
	if (streq(a, "armhf")) {
		if (!*variant)
			*variant = xstrdup("v7");
		return xstrdup("arm");
	}
	if (streq(a, "i386") || streq(a, "i686"))
		return xstrdup("386");
	return xstrdup(a);
}

int image_platform_parse(const char *s, struct image_platform *ret, struct berth_error **err)
{
	if (!s || !*s)
		s = "linux/amd64";
	_cleanup_free_ char *low = xstrdup(s);
	for (char *p = low; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	char *parts[4] = { 0 };
	size_t n = 0;
	for (char *p = low; n < 4;) {
		parts[n++] = p;
		char *slash = strchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		p = slash + 1;
	}
	if (n > 3 || (n == 3 && strchr(parts[2], '/')))
		return berth_error_msg(err, EINVAL, "invalid platform '%s': expected os[/arch[/variant]]", s);
	for (size_t i = 0; i < n; i++)
		for (const char *c = parts[i];; c++) {
			if (!*c) {
				if (c == parts[i])
					return berth_error_msg(err, EINVAL,
							       "invalid platform '%s': empty component", s);
				break;
			}
			if (!is_lower_alnum(*c) && *c != '_' && *c != '-')
				return berth_error_msg(err, EINVAL, "invalid platform '%s'", s);
		}
	char *variant = n == 3 ? xstrdup(parts[2]) : NULL;
	ret->arch = normalise_arch(n >= 2 ? parts[1] : "amd64", &variant);
	ret->os = xstrdup(parts[0]);
	ret->variant = variant;
	return 0;
}

void image_platform_done(struct image_platform *p)
{
	free(p->os);
	free(p->arch);
	free(p->variant);
	p->os = p->arch = p->variant = NULL;
}
