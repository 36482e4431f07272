/*
 * route.c - hand-written matchers for the distribution spec's name, tag and
 * digest grammars, and the path router. Linear scans, no allocation: the
 * router runs on every request and is fed hostile input.
 */
#include "registry/route.h"

#include "common/digest.h"
#include "common/util.h"

static bool is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*. Returns the length
 * matched up to the next '/' or NUL, or 0 if the component is invalid.
 */
static size_t name_component(const char *s)
{
	size_t i = 0;
	if (!is_alnum_lower(s[0]))
		return 0;
	while (s[i] && s[i] != '/') {
		if (is_alnum_lower(s[i])) {
			i++;
			continue;
		}
		size_t sep = i;
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (s[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (!is_alnum_lower(s[i]) || i == sep)
			return 0;
	}
	return i;
}

bool registry_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > REGISTRY_NAME_MAX)
		return false;
	const char *p = name;
	for (;;) {
		size_t n = name_component(p);
		if (n == 0)
			return false;
		p += n;
		if (*p == '\0')
			return true;
		p++; /* '/' */
	}
}

static bool is_tag_char(char c)
{
	return is_alnum_lower(c) || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-';
}

bool registry_tag_valid(const char *tag)
{
	if (!tag || !*tag)
		return false;
	char c = tag[0];
	if (!(is_alnum_lower(c) || (c >= 'A' && c <= 'Z') || c == '_'))
		return false;
	size_t i = 1;
	for (; tag[i]; i++)
		if (i >= REGISTRY_TAG_MAX || !is_tag_char(tag[i]))
			return false;
	return true;
}

bool registry_uuid_valid(const char *uuid)
{
	size_t i = 0;
	for (; uuid[i]; i++)
		if (!((uuid[i] >= '0' && uuid[i] <= '9') || (uuid[i] >= 'a' && uuid[i] <= 'f')))
			return false;
	return i == 32;
}

/* Index of the last '/' before position end (exclusive), or -1. */
static ssize_t last_slash(const char *s, ssize_t end)
{
	for (ssize_t i = end - 1; i >= 0; i--)
		if (s[i] == '/')
			return i;
	return -1;
}

/* The last segments of buf (after "/v2/"), from the right: seg[0] is the last one. */
struct tail {
	const char *seg[3];
	size_t len[3];
	ssize_t cut[3]; /* index of the '/' preceding seg[i] */
	int n;
};

static void split_tail(const char *b, ssize_t len, struct tail *t)
{
	ssize_t end = len;
	t->n = 0;
	while (t->n < 3) {
		ssize_t s = last_slash(b, end);
		if (s < 0)
			break;
		t->seg[t->n] = b + s + 1;
		t->len[t->n] = (size_t)(end - s - 1);
		t->cut[t->n] = s;
		t->n++;
		end = s;
	}
}

static bool seg_is(const struct tail *t, int i, const char *word)
{
	return i < t->n && t->len[i] == strlen(word) && memcmp(t->seg[i], word, t->len[i]) == 0;
}

/* Terminate the name at cut and the segments after it; the name is everything before. */
static void route_set_name(struct route *r, char *b, const struct tail *t, int verb, enum route_kind kind)
{
	for (int i = 0; i <= verb; i++)
		b[t->cut[i]] = '\0';
	r->name = b;
	r->kind = registry_name_valid(b) ? kind : ROUTE_NAME_INVALID;
}

static void route_classify(struct route *r, char *b, ssize_t len)
{
	struct tail t;
	split_tail(b, len, &t);
	/* uploads: <name>/blobs/uploads/ or <name>/blobs/uploads/<uuid> */
	if (seg_is(&t, 1, "uploads") && seg_is(&t, 2, "blobs")) {
		bool has_uuid = t.len[0] > 0;
		route_set_name(r, b, &t, 2, has_uuid ? ROUTE_UPLOAD : ROUTE_UPLOAD_START);
		if (has_uuid) {
			r->ref = t.seg[0];
			if (r->kind == ROUTE_UPLOAD && !registry_uuid_valid(r->ref))
				r->kind = ROUTE_REF_INVALID;
		}
		return;
	}
	if (t.n < 2)
		return;
	enum route_kind kind = ROUTE_NONE;
	if (seg_is(&t, 1, "tags") && seg_is(&t, 0, "list"))
		kind = ROUTE_TAGS;
	else if (seg_is(&t, 1, "manifests"))
		kind = ROUTE_MANIFEST;
	else if (seg_is(&t, 1, "blobs"))
		kind = ROUTE_BLOB;
	else if (seg_is(&t, 1, "referrers"))
		kind = ROUTE_REFERRERS;
	if (kind == ROUTE_NONE)
		return;
	route_set_name(r, b, &t, 1, kind);
	if (kind == ROUTE_TAGS || r->kind == ROUTE_NAME_INVALID)
		return;
	const char *last = t.seg[0];
	r->ref = last;
	r->ref_is_digest = strchr(last, ':') != NULL;
	bool ok =
	    r->ref_is_digest ? digest_valid(last) : (kind == ROUTE_MANIFEST && registry_tag_valid(last));
	if (!ok)
		r->kind = ROUTE_REF_INVALID;
}

void registry_route_parse(const char *path, struct route *r)
{
	r->kind = ROUTE_NONE;
	r->name = r->ref = NULL;
	r->ref_is_digest = false;
	r->buf[0] = '\0';
	if (!path)
		return;
	size_t len = strlen(path);
	if (len > ROUTE_PATH_MAX)
		return;
	if (streq(path, "/metrics")) {
		r->kind = ROUTE_METRICS;
		return;
	}
	if (streq(path, "/auth/token")) {
		r->kind = ROUTE_TOKEN;
		return;
	}
	if (streq(path, "/v2") || streq(path, "/v2/")) {
		r->kind = ROUTE_BASE;
		return;
	}
	if (streq(path, "/v2/_catalog")) {
		r->kind = ROUTE_CATALOG;
		return;
	}
	if (!startswith(path, "/v2/"))
		return;
	memcpy(r->buf, path + 4, len - 4 + 1);
	route_classify(r, r->buf, (ssize_t)(len - 4));
}

const char *registry_route_kind_name(enum route_kind kind)
{
	static const char *const names[_ROUTE_MAX] = {
		[ROUTE_NONE] = "none",
		[ROUTE_BASE] = "base",
		[ROUTE_CATALOG] = "catalog",
		[ROUTE_TAGS] = "tags",
		[ROUTE_MANIFEST] = "manifest",
		[ROUTE_BLOB] = "blob",
		[ROUTE_UPLOAD_START] = "upload_start",
		[ROUTE_UPLOAD] = "upload",
		[ROUTE_REFERRERS] = "referrers",
		[ROUTE_TOKEN] = "token",
		[ROUTE_METRICS] = "metrics",
		[ROUTE_NAME_INVALID] = "name_invalid",
		[ROUTE_REF_INVALID] = "ref_invalid",
	};
	return (unsigned)kind < _ROUTE_MAX ? names[kind] : "none";
}

int registry_content_range_parse(const char *h, uint64_t *a, uint64_t *b)
{
	if (!h)
		return 0;
	if (startswith(h, "bytes"))
		h += 5;
	while (*h == ' ' || *h == '=')
		h++;
	char tmp[64];
	size_t n = strcspn(h, "/");
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, h, n);
	tmp[n] = '\0';
	char *dash = strchr(tmp, '-');
	if (!dash)
		return -1;
	*dash = '\0';
	if (util_parse_uint64(tmp, a) < 0 || util_parse_uint64(dash + 1, b) < 0 || *b < *a)
		return -1;
	return 1;
}
