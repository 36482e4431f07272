/*
 * xfer.c - the one libcurl wrapper (see xfer.h). One curl easy handle per
 * struct http_xfer, reset before each transfer so no option of an earlier
 * request leaks into the next; callbacks are trampolines over the request
 * copied into the handle.
 */
#include <curl/curl.h>
#include <pthread.h>

#include "common/util.h"
#include "http/xfer.h"

struct http_xfer {
	CURL *h;
	struct curl_slist *hdrs;
	struct http_xfer_req r; /* shallow copy: the callbacks and buffers are the caller's */
	char *method, *url;     /* copies, for the error text after the caller freed its own */
	char errbuf[CURL_ERROR_SIZE];
	bool stopped, too_large, in_multi;
	int cb_errno;
};

struct http_xfer_multi {
	CURLM *m;
};

/* libcurl failed to allocate a handle: out of memory, like xmalloc. */
static __attribute__((noreturn)) void oom(void)
{
	static const char msg[] = "berth: out of memory (curl)\n";
	ssize_t _unused_ n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

struct http_xfer *http_xfer_new(void)
{
	pthread_once(&global_once, global_init);
	struct http_xfer *x = xcalloc(1, sizeof(*x));
	x->h = curl_easy_init();
	if (!x->h)
		oom();
	return x;
}

struct http_xfer *http_xfer_free(struct http_xfer *x)
{
	if (!x)
		return NULL;
	curl_easy_cleanup(x->h);
	curl_slist_free_all(x->hdrs);
	free(x->method);
	free(x->url);
	free(x);
	return NULL;
}

long http_xfer_status(struct http_xfer *x)
{
	long st = 0;
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &st);
	return st;
}

void *http_xfer_priv(struct http_xfer *x)
{
	return x->r.priv;
}

static size_t on_write(char *data, size_t size, size_t n, void *cls)
{
	struct http_xfer *x = cls;
	size_t len = size * n;
	if (x->r.on_data) {
		int k = x->r.on_data(x->r.data_ctx, data, len);
		if (k > 0)
			x->stopped = true;
		else if (k < 0)
			x->cb_errno = -k;
		return k == 0 ? len : 0;
	}
	if (!x->r.out)
		return len;
	if (x->r.out_max && x->r.out->len + len > x->r.out_max) {
		x->too_large = true;
		return 0;
	}
	strbuf_add(x->r.out, data, len);
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *cls)
{
	struct http_xfer *x = cls;
	size_t len = size * n;
	if (x->r.on_header) {
		int k = x->r.on_header(x->r.header_ctx, data, len);
		if (k < 0) {
			x->cb_errno = -k;
			return 0;
		}
	} else if (x->r.resp_headers) {
		strbuf_add(x->r.resp_headers, data, len);
	}
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *cls)
{
	struct http_xfer *x = cls;
	ssize_t k = x->r.read(x->r.read_ctx, buf, size * n);
	if (k < 0) {
		x->cb_errno = (int)-k;
		return CURL_READFUNC_ABORT;
	}
	return (size_t)k;
}

/* libcurl calls this about once a second (and on every transfer): non-zero aborts. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load((const atomic_bool *)ctx) ? 1 : 0;
}

static void setup(struct http_xfer *x, const struct http_xfer_req *r)
{
	CURL *h = x->h;
	curl_easy_reset(h);
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->r = *r;
	free(x->method);
	free(x->url);
	x->method = xstrdup(r->method ? r->method : "GET");
	x->url = xstrdup(r->url);
	x->r.method = x->method;
	x->r.url = x->url;
	x->r.headers = NULL; /* copied into hdrs below; not kept */
	x->errbuf[0] = '\0';
	x->stopped = x->too_large = false;
	x->cb_errno = 0;
	const char *method = r->method ? r->method : "GET";

	curl_easy_setopt(h, CURLOPT_URL, r->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	if (r->unix_socket)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, r->unix_socket);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (r->on_header || r->resp_headers) {
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	}
	for (const char *const *p = r->headers; p && *p; p++)
		x->hdrs = curl_slist_append(x->hdrs, *p);
	if (x->hdrs)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->hdrs);

	if (streq(method, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!streq(method, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (r->read) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		if (r->body_size >= 0)
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_size);
	} else if (r->body || streq(method, "POST")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body ? r->body_len : 0));
	}

	if (r->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
	if (r->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, r->cert_file);
	if (r->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, r->key_file);
	if (r->tls_no_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}

	if (r->connect_timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, r->connect_timeout_ms);
	if (r->timeout_ms > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	if (r->low_speed_limit > 0 && r->low_speed_time_s > 0) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, r->low_speed_limit);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, r->low_speed_time_s);
	}
	if (r->max_filesize)
		curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_filesize);
	if (r->cancel) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)r->cancel);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}

	if (r->max_redirs > 0) {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, r->max_redirs);
	}
	if (r->protocols)
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, r->protocols);
	if (r->redir_protocols)
		curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, r->redir_protocols);
	if (r->proxy)
		curl_easy_setopt(h, CURLOPT_PROXY, r->proxy);
	if (r->noproxy)
		curl_easy_setopt(h, CURLOPT_NOPROXY, r->noproxy);
	if (r->user) {
		curl_easy_setopt(h, CURLOPT_USERNAME, r->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, r->password ? r->password : "");
	}
	if (r->user_agent)
		curl_easy_setopt(h, CURLOPT_USERAGENT, r->user_agent);
	if (r->range)
		curl_easy_setopt(h, CURLOPT_RANGE, r->range);
	if (r->fail_on_error)
		curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
	if (r->want_filetime)
		curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
}

/* The outcome of a finished transfer on x with libcurl's code rc. */
static int result(struct http_xfer *x, CURLcode rc, struct http_xfer_res *res, struct berth_error **err)
{
	*res = (struct http_xfer_res){ .filetime = -1, .stopped = x->stopped, .cb_errno = x->cb_errno };
	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &res->status);
	if (x->r.want_filetime) {
		curl_off_t ft = -1;
		if (curl_easy_getinfo(x->h, CURLINFO_FILETIME_T, &ft) == CURLE_OK && ft >= 0)
			res->filetime = (int64_t)ft;
	}
	if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x->stopped)) {
		res->reason = curl_easy_strerror(CURLE_OK);
		snprintf(res->detail, sizeof(res->detail), "%s", res->reason);
		return 0;
	}
	int code = EIO;
	res->fail = HTTP_XFER_FAILED;
	if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		res->fail = HTTP_XFER_TOO_LARGE, code = EFBIG;
	} else if (x->cb_errno || rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK ||
		   rc == CURLE_READ_ERROR) {
		if (rc == CURLE_ABORTED_BY_CALLBACK && x->r.cancel && atomic_load(x->r.cancel))
			res->fail = HTTP_XFER_CANCELLED, code = ECANCELED;
		else
			res->fail = HTTP_XFER_ABORTED, code = x->cb_errno ? x->cb_errno : EIO;
	} else if (rc == CURLE_COULDNT_CONNECT) {
		res->fail = HTTP_XFER_CONNECT, code = ECONNREFUSED;
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		res->fail = HTTP_XFER_TIMEOUT, code = ETIMEDOUT;
	} else if (rc == CURLE_HTTP_RETURNED_ERROR) {
		res->fail = HTTP_XFER_HTTP;
	}
	res->reason = curl_easy_strerror(rc);
	snprintf(res->detail, sizeof(res->detail), "%s", x->errbuf[0] ? x->errbuf : res->reason);
	if (res->fail == HTTP_XFER_TOO_LARGE && x->too_large)
		snprintf(res->detail, sizeof(res->detail), "response larger than %zu bytes", x->r.out_max);
	return berth_error_msg(err, code, "%s '%s': %s", x->method, x->url, res->detail);
}

int http_xfer_perform(struct http_xfer *x, const struct http_xfer_req *r, struct http_xfer_res *res,
		      struct berth_error **err)
{
	setup(x, r);
	CURLcode rc = curl_easy_perform(x->h);
	return result(x, rc, res, err);
}

struct http_xfer_multi *http_xfer_multi_new(void)
{
	pthread_once(&global_once, global_init);
	struct http_xfer_multi *m = xcalloc(1, sizeof(*m));
	m->m = curl_multi_init();
	if (!m->m)
		oom();
	return m;
}

struct http_xfer_multi *http_xfer_multi_free(struct http_xfer_multi *m)
{
	if (!m)
		return NULL;
	curl_multi_cleanup(m->m);
	free(m);
	return NULL;
}

int http_xfer_multi_add(struct http_xfer_multi *m, struct http_xfer *x, const struct http_xfer_req *r,
			struct berth_error **err)
{
	if (x->in_multi)
		return berth_error_msg(err, EBUSY, "%s '%s': transfer already running",
				       r->method ? r->method : "GET", r->url);
	setup(x, r);
	CURLMcode mc = curl_multi_add_handle(m->m, x->h);
	if (mc != CURLM_OK)
		return berth_error_msg(err, EIO, "%s '%s': %s", r->method ? r->method : "GET", r->url,
				       curl_multi_strerror(mc));
	x->in_multi = true;
	return 0;
}

void http_xfer_multi_remove(struct http_xfer_multi *m, struct http_xfer *x)
{
	if (!x || !x->in_multi)
		return;
	curl_multi_remove_handle(m->m, x->h);
	x->in_multi = false;
}

void http_xfer_multi_perform(struct http_xfer_multi *m, int *ret_running)
{
	int running = 0;
	curl_multi_perform(m->m, &running);
	*ret_running = running;
}

struct http_xfer *http_xfer_multi_next(struct http_xfer_multi *m, struct http_xfer_res *res, int *ret_r,
				       struct berth_error **err)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(m->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct http_xfer *x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		*ret_r = result(x, msg->data.result, res, err);
		return x;
	}
	return NULL;
}

void http_xfer_multi_wait(struct http_xfer_multi *m, int timeout_ms)
{
	curl_multi_poll(m->m, NULL, 0, timeout_ms, NULL);
}

void http_xfer_multi_wakeup(struct http_xfer_multi *m)
{
	curl_multi_wakeup(m->m);
}

char *http_url_escape(const char *s)
{
	pthread_once(&global_once, global_init);
	char *e = curl_easy_escape(NULL, s, 0);
	if (!e)
		oom();
	char *r = xstrdup(e);
	curl_free(e);
	return r;
}
