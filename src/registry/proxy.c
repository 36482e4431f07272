/*
 * proxy.c - pull-through cache: on a local miss, fetch the manifest or blob
 * from the configured upstream registry (http/xfer.h), verify its digest, store
 * it, and serve it as if it had been pushed.
 *
 * Trade-off: a cached tag is served locally until it is older than
 * proxy.tag_ttl, then revalidated upstream (the cached copy is served when the
 * upstream is unreachable); blobs are content-addressed and never go stale.
 * Upstream auth: anonymous, Basic (proxy.username/password), or the
 * distribution token flow (Bearer challenge -> realm, with those credentials).
 */
#include <fcntl.h>
#include <limits.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "http/xfer.h"
#include "registry/manifest.h"
#include "registry/server.h"

#define PROXY_CONNECT_TIMEOUT_MS 10000
#define PROXY_MANIFEST_ACCEPT \
	"Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST

struct sink {
	struct strbuf *buf; /* manifests: into memory (bounded) */
	size_t max;
	int fd; /* blobs: into a temp file */
	struct digester *dg;
	bool failed;
	bool discard; /* body of a non-200 response (401 before a token retry, errors) */
};

static int on_data(void *ud, const char *ptr, size_t n)
{
	struct sink *s = ud;
	if (s->discard)
		return 0;
	if (s->buf) {
		if (s->buf->len + n > s->max) {
			s->failed = true;
			return -EFBIG;
		}
		strbuf_add(s->buf, ptr, n);
		return 0;
	}
	int r = fs_write_all(s->fd, ptr, n);
	if (r < 0) {
		s->failed = true;
		return r;
	}
	digester_update(s->dg, ptr, n);
	return 0;
}

struct resp_meta {
	long status;
	struct strbuf ct;   /* Content-Type of the final response */
	struct strbuf chal; /* WWW-Authenticate of a 401 */
	struct sink *sink;
};

static int on_header(void *ud, const char *ptr, size_t n)
{
	struct resp_meta *m = ud;
	if (n > 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		/* a new response (redirects, 401 before the retry): only a 200 body is kept */
		const char *sp = memchr(ptr, ' ', n);
		m->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		m->sink->discard = m->status != 200;
		strbuf_reset(&m->ct);
		return 0;
	}
	struct strbuf *dst = NULL;
	size_t skip = 0;
	if (n > 13 && strncasecmp(ptr, "Content-Type:", 13) == 0)
		dst = &m->ct, skip = 13;
	else if (n > 17 && strncasecmp(ptr, "WWW-Authenticate:", 17) == 0)
		dst = &m->chal, skip = 17;
	if (dst && n - skip < 4096) {
		strbuf_reset(dst);
		const char *v = ptr + skip;
		while (*v == ' ')
			v++;
		strbuf_add(dst, v, n - (size_t)(v - ptr));
		strbuf_trim_trailing(dst);
	}
	return 0;
}

/* Value of key="..." in a challenge, or NULL. Caller frees. */
static char *chal_param(const char *chal, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = chal; (p = strstr(p, key)); p += kl) {
		if ((p != chal && p[-1] != ' ' && p[-1] != ',') || strncmp(p + kl, "=\"", 2) != 0)
			continue;
		const char *v = p + kl + 2, *end = strchr(v, '"');
		return end ? xstrndup(v, (size_t)(end - v)) : NULL;
	}
	return NULL;
}

/* One GET of url to the upstream: redirects, timeouts; Basic credentials when user is set. */
static int proxy_perform(const char *url, const char *const *hdrs, const char *user, const char *password,
			 struct sink *sink, struct resp_meta *meta, struct http_xfer_res *res)
{
	struct http_xfer_req q = {
		.url = url,
		.headers = hdrs,
		.max_redirs = 5,
		.on_data = on_data,
		.data_ctx = sink,
		.on_header = on_header,
		.header_ctx = meta,
		.connect_timeout_ms = PROXY_CONNECT_TIMEOUT_MS,
		.low_speed_limit = 1,
		.low_speed_time_s = 60,
		.user = user,
		.password = password,
	};
	_cleanup_http_xfer_ struct http_xfer *x = http_xfer_new();
	return http_xfer_perform(x, &q, res, NULL);
}

/* Distribution token flow against the upstream: GET realm?service=&scope= (Basic if configured). */
static char *upstream_token(struct registry *reg, const char *chal, const char *repo)
{
	const struct registry_config *c = reg->cfg;
	_cleanup_free_ char *realm = chal_param(chal, "realm"), *service = chal_param(chal, "service");
	if (!realm || strncasecmp(chal, "Bearer ", 7) != 0)
		return NULL;
	_cleanup_free_ char *svc = service ? http_url_escape(service) : NULL;
	_cleanup_free_ char *scope_raw = xasprintf("repository:%s:pull", repo);
	_cleanup_free_ char *scope = http_url_escape(scope_raw);
	_cleanup_free_ char *url = xasprintf("%s%sscope=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", scope,
					     svc ? "&service=" : "", svc ? svc : "");
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	struct sink sink = { .buf = &body, .max = 1 << 16, .fd = -1 };
	struct resp_meta meta = { .ct = STRBUF_INIT, .chal = STRBUF_INIT, .sink = &sink };
	struct http_xfer_res res;
	int r = proxy_perform(url, NULL, c->proxy_user, c->proxy_password, &sink, &meta, &res);
	strbuf_release(&meta.ct);
	strbuf_release(&meta.chal);
	_cleanup_json_ json_t *j = NULL;
	if (r < 0 || meta.status != 200 || json_parse(body.buf, body.len, "token", &j, NULL) < 0)
		return NULL;
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	return tok && !strpbrk(tok, "\r\n") ? xstrdup(tok) : NULL;
}

static int proxy_get(struct registry *reg, const char *repo, const char *path, struct sink *sink,
		     struct strbuf *ct, struct berth_error **err)
{
	const struct registry_config *c = reg->cfg;
	_cleanup_free_ char *url = xasprintf("%s%s", c->proxy_url, path);
	_cleanup_free_ char *bearer = NULL;
	struct resp_meta meta = { .ct = STRBUF_INIT, .chal = STRBUF_INIT, .sink = sink };
	struct http_xfer_res res = { 0 };
	int xr = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		_cleanup_free_ char *authz = bearer ? xasprintf("Authorization: Bearer %s", bearer) : NULL;
		const char *hdrs[] = { PROXY_MANIFEST_ACCEPT, authz, NULL };
		xr = proxy_perform(url, hdrs, bearer ? NULL : c->proxy_user, c->proxy_password, sink, &meta,
				   &res);
		atomic_fetch_add(&reg->metrics.proxy_fetches, 1);
		if (xr < 0 || meta.status != 401 || bearer ||
		    !(bearer = upstream_token(reg, meta.chal.buf, repo)))
			break;
	}
	strbuf_reset(ct);
	strbuf_addstr(ct, meta.ct.buf);
	strbuf_release(&meta.ct);
	strbuf_release(&meta.chal);
	if (xr < 0 || sink->failed)
		return berth_error_msg(err, EIO, "fetch '%s' from upstream: %s", path, res.reason);
	if (meta.status != 200)
		return berth_error_msg(err, ENOENT, "fetch '%s' from upstream: HTTP %ld", path, meta.status);
	return 0;
}

int registry_proxy_fetch_manifest(struct registry *reg, const char *repo, const char *ref, char *ret_digest,
				  struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT, ct = STRBUF_INIT;
	struct sink sink = { .buf = &body, .max = (size_t)reg->cfg->manifest_max, .fd = -1 };
	_cleanup_free_ char *path = xasprintf("/v2/%s/manifests/%s", repo, ref);
	int r = proxy_get(reg, repo, path, &sink, &ct, err);
	if (r < 0)
		return r;
	char digest[DIGEST_STRING_MAX];
	bool by_digest = strchr(ref, ':') != NULL;
	enum digest_algo algo = DIGEST_SHA256;
	if (by_digest)
		digest_parse(ref, &algo, NULL, NULL);
	digest_buffer(algo, body.buf, body.len, digest);
	if (by_digest && !streq(digest, ref))
		return berth_error_msg(err, EBADMSG, "upstream manifest digest mismatch for '%s'", ref);
	struct manifest_info m;
	if ((r = registry_manifest_parse(ct.buf, body.buf, body.len, &m, err)) < 0)
		return r;
	const char *tags[] = { by_digest ? NULL : ref, NULL };
	struct manifest_put p = { .repo = repo,
				  .tags = tags,
				  .digest = digest,
				  .media_type = m.media_type,
				  .subject = m.subject[0] ? m.subject : NULL,
				  .artifact_type = m.artifact_type,
				  .annotations = m.annotations,
				  .data = body.buf,
				  .len = body.len };
	int lock = registry_store_lock(reg->store, false, err);
	if (lock >= 0) {
		r = registry_store_manifest_put(reg->store, &p, err);
		close(lock);
	} else {
		r = lock;
	}
	registry_manifest_info_done(&m);
	if (r == 0)
		memcpy(ret_digest, digest, strlen(digest) + 1);
	return r;
}

int registry_proxy_fetch_blob(struct registry *reg, const char *repo, const char *digest,
			      struct berth_error **err)
{
	enum digest_algo algo;
	int r = digest_parse(digest, &algo, NULL, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *hex = util_random_hex(16);
	_cleanup_free_ char *tmp = xasprintf("uploads/proxy-%s", hex);
	_cleanup_close_ int fd =
	    openat(reg->store->rootfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "create proxy temp file");
	_cleanup_strbuf_ struct strbuf ct = STRBUF_INIT;
	_cleanup_digester_ struct digester *dg = digester_new(algo);
	struct sink sink = { .fd = fd, .dg = dg };
	_cleanup_free_ char *path = xasprintf("/v2/%s/blobs/%s", repo, digest);
	char actual[DIGEST_STRING_MAX];
	r = proxy_get(reg, repo, path, &sink, &ct, err);
	if (r == 0) {
		digester_final(dg, actual);
		if (!streq(actual, digest))
			r = berth_error_msg(err, EBADMSG, "upstream blob digest mismatch for '%s'", digest);
	}
	struct stat st;
	if (r == 0 && ((reg->store->fsync && fsync(fd) < 0) || fstat(fd, &st) < 0))
		r = berth_error_errno(err, "sync proxy blob");
	if (r == 0) {
		int lock = registry_store_lock(reg->store, false, err);
		r = lock < 0 ? lock
			     : registry_store_blob_commit(reg->store, tmp, digest, (uint64_t)st.st_size, err);
		if (r == 0)
			r = registry_store_repo_link_blob(reg->store, repo, digest, err);
		if (lock >= 0)
			close(lock);
	}
	if (r < 0)
		unlinkat(reg->store->rootfd, tmp, 0);
	return r;
}
