/*
 * proxy.c - pull-through cache: on a local miss, fetch the manifest or blob
 * from the configured upstream registry (libcurl), verify its digest, store
 * it, and serve it as if it had been pushed.
 *
 * Trade-off: tags are fetched once and then served locally (no upstream
 * revalidation); blobs are content-addressed so they never go stale. Upstream
 * auth: anonymous or Basic (proxy.username/password).
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>

#include "common/fs.h"
#include "common/util.h"
#include "registry/manifest.h"
#include "registry/server.h"

#define PROXY_MANIFEST_ACCEPT \
	"Accept: " MT_OCI_MANIFEST ", " MT_OCI_INDEX ", " MT_DOCKER_MANIFEST ", " MT_DOCKER_LIST

struct sink {
	struct strbuf *buf; /* manifests: into memory (bounded) */
	size_t max;
	int fd; /* blobs: into a temp file */
	struct digester *dg;
	bool failed;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;
	if (s->buf) {
		if (s->buf->len + n > s->max) {
			s->failed = true;
			return 0;
		}
		strbuf_add(s->buf, ptr, n);
		return n;
	}
	if (fs_write_all(s->fd, ptr, n) < 0) {
		s->failed = true;
		return 0;
	}
	digester_update(s->dg, ptr, n);
	return n;
}

static struct strbuf *ct_buf_of(void *ud)
{
	return ud;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	size_t n = size * nmemb;
	struct strbuf *ct = ct_buf_of(ud);
	if (n > 13 && strncasecmp(ptr, "Content-Type:", 13) == 0) {
		strbuf_reset(ct);
		const char *v = ptr + 13;
		while (*v == ' ')
			v++;
		strbuf_add(ct, v, n - (size_t)(v - ptr));
		strbuf_trim_trailing(ct);
	}
	return n;
}

static int proxy_get(struct registry *reg, const char *path, struct sink *sink, struct strbuf *ct,
		     struct berth_error **err)
{
	const struct registry_config *c = reg->cfg;
	_cleanup_free_ char *url = xasprintf("%s%s", c->proxy_url, path);
	CURL *h = curl_easy_init();
	if (!h)
		return berth_error_msg(err, ENOMEM, "initialize curl failed");
	struct curl_slist *hdrs = curl_slist_append(NULL, PROXY_MANIFEST_ACCEPT);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, ct);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (c->proxy_user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, c->proxy_user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->proxy_password ? c->proxy_password : "");
	}
	CURLcode cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	atomic_fetch_add(&reg->metrics.proxy_fetches, 1);
	if (cc != CURLE_OK || sink->failed)
		return berth_error_msg(err, EIO, "fetch '%s' from upstream: %s", path,
				       curl_easy_strerror(cc));
	if (status != 200)
		return berth_error_msg(err, ENOENT, "fetch '%s' from upstream: HTTP %ld", path, status);
	return 0;
}

int proxy_fetch_manifest(struct registry *reg, const char *repo, const char *ref, char *ret_digest,
			 struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT, ct = STRBUF_INIT;
	struct sink sink = { .buf = &body, .max = (size_t)reg->cfg->manifest_max, .fd = -1 };
	_cleanup_free_ char *path = xasprintf("/v2/%s/manifests/%s", repo, ref);
	int r = proxy_get(reg, path, &sink, &ct, err);
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
	if ((r = manifest_parse(ct.buf, body.buf, body.len, &m, err)) < 0)
		return r;
	struct manifest_put p = { .repo = repo,
				  .tag = by_digest ? NULL : ref,
				  .digest = digest,
				  .media_type = m.media_type,
				  .subject = m.subject[0] ? m.subject : NULL,
				  .artifact_type = m.artifact_type,
				  .annotations = m.annotations,
				  .data = body.buf,
				  .len = body.len };
	int lock = store_lock(reg->store, false, err);
	if (lock >= 0) {
		r = store_manifest_put(reg->store, &p, err);
		close(lock);
	} else {
		r = lock;
	}
	manifest_info_done(&m);
	if (r == 0)
		memcpy(ret_digest, digest, strlen(digest) + 1);
	return r;
}

int proxy_fetch_blob(struct registry *reg, const char *repo, const char *digest, struct berth_error **err)
{
	enum digest_algo algo;
	int r = digest_parse(digest, &algo, NULL, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *hex = random_hex(16);
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
	r = proxy_get(reg, path, &sink, &ct, err);
	if (r == 0) {
		digester_final(dg, actual);
		if (!streq(actual, digest))
			r = berth_error_msg(err, EBADMSG, "upstream blob digest mismatch for '%s'", digest);
	}
	struct stat st;
	if (r == 0 && (fsync(fd) < 0 || fstat(fd, &st) < 0))
		r = berth_error_errno(err, "sync proxy blob");
	if (r == 0) {
		int lock = store_lock(reg->store, false, err);
		r = lock < 0 ? lock : store_blob_commit(reg->store, tmp, digest, (uint64_t)st.st_size, err);
		if (r == 0)
			r = store_repo_link_blob(reg->store, repo, digest, err);
		if (lock >= 0)
			close(lock);
	}
	if (r < 0)
		unlinkat(reg->store->rootfd, tmp, 0);
	return r;
}
