/*
 * build.c - POST /build (docker's classic builder API) and POST /build/prune.
 *
 * The context tar arrives as the request body; it is scanned as it streams
 * (build_context_scan_tar: entries and digests, nothing written but the
 * spool) and built by build_image() over the real backend (buildexec/) in a
 * thread whose progress events are streamed to the client as they come, one
 * JSON object per line: {"stream": "Step 1/5 : ..."}, {"aux": {"ID":
 * "sha256:..."}}, {"errorDetail": {...}, "error": ...}. The files are
 * extracted from the spool only when a step misses the cache.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/routes.h"
#include "build/context.h"
#include "build/executor.h"
#include "buildexec/buildexec.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "image/image.h"

#define CTX_TMPFS_MAX (256ll << 20) /* larger contexts are unpacked on disk */

struct build_job {
	struct api *api;
	int ctx_fd, out_fd, in_fd; /* ctx_fd: the spooled body */
	struct http_request *req;  /* while the body is read */
	int body_err;              /* reading the body (-EFBIG, -ECONNRESET) or spooling it failed */
	bool spool_failed;
	struct build_context *ctx;    /* the scanned context (NULL when scan_err) */
	struct berth_error *scan_err; /* a bad context tar: reported as the build's error */
	char *tmp;                    /* where the context is extracted on a miss, if it is */
	bool tmp_made, mounted;
	char *dockerfile, *target, *platform, *network;
	char **tags, **args, **labels, **extra_hosts, **cache_from;
	char **secrets, **ssh; /* "id=file" (in secret_dir), "id=socket" */
	char *secret_dir;
	bool no_cache, pull, quiet;
	bool error_sent;
	pthread_t th;
	bool started;
	int sock;            /* the client's connection: POLLHUP = gone, cancel */
	struct buildexec bx; /* the backend's state (cancellation) */
};

static void job_free(struct build_job *j)
{
	build_context_free(j->ctx);
	berth_error_free(j->scan_err);
	free(j->tmp);
	safe_close(j->ctx_fd);
	safe_close(j->out_fd);
	safe_close(j->in_fd);
	free(j->dockerfile);
	free(j->target);
	free(j->platform);
	free(j->network);
	pthread_mutex_destroy(&j->bx.lock);
	strv_free(j->tags);
	strv_free(j->extra_hosts);
	strv_free(j->cache_from);
	strv_free(j->secrets);
	strv_free(j->ssh);
	if (j->secret_dir)
		(void)fs_rm_rf(j->secret_dir, NULL);
	free(j->secret_dir);
	strv_free(j->args);
	strv_free(j->labels);
	free(j);
}

static void send_line(struct build_job *j, enum build_event ev, const char *text)
{
	_cleanup_free_ char *line = build_event_json(ev, text);
	(void)fs_write_all(j->out_fd, line, strlen(line));
}

static void on_event(void *ud, enum build_event ev, const char *text)
{
	struct build_job *j = ud;
	if (ev == BUILD_EVENT_ERROR)
		j->error_sent = true;
	if (j->quiet && ev == BUILD_EVENT_STREAM)
		return;
	send_line(j, ev, text);
}

/*
 * A small, uncompressed context is unpacked into a private tmpfs: creating and
 * deleting its files on the root filesystem (ext4's inode allocator scans for
 * recently deleted inodes) was most of an uncached build's context time.
 * Larger or compressed contexts (their size unknown until unpacked) go to disk.
 */
static bool ctx_tmpfs(struct build_job *j, const char *dir)
{
	struct stat st;
	unsigned char magic[4] = { 0 };
	if (fstat(j->ctx_fd, &st) < 0 || st.st_size > CTX_TMPFS_MAX ||
	    pread(j->ctx_fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
		return false;
	static const unsigned char gz[] = { 0x1f, 0x8b }, bz[] = { 'B', 'Z', 'h' },
				   xz[] = { 0xfd, '7', 'z', 'X' }, zst[] = { 0x28, 0xb5, 0x2f, 0xfd };
	if (!memcmp(magic, gz, sizeof(gz)) || !memcmp(magic, bz, sizeof(bz)) ||
	    !memcmp(magic, xz, sizeof(xz)) || !memcmp(magic, zst, sizeof(zst)))
		return false;
	/* tar headers and padding: the files take less than the tar, plus a margin for the tmpfs itself */
	_cleanup_free_ char *opts = xasprintf("mode=0700,size=%lld", (long long)st.st_size + (16ll << 20));
	return mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) == 0;
}

/* build_context_dir_fn: the first step that needs the context's files makes its directory. */
static int job_ctx_dir(void *ud, char **ret_dir, struct berth_error **err)
{
	struct build_job *j = ud;
	int r = fs_mkdir_p(j->tmp, 0700, err);
	if (r < 0)
		return r;
	j->tmp_made = true;
	j->mounted = ctx_tmpfs(j, j->tmp);
	*ret_dir = xstrdup(j->tmp);
	return 0;
}

static void *job_main(void *arg)
{
	struct build_job *j = arg;
	_cleanup_error_ struct berth_error *err = TAKE_PTR(j->scan_err);
	struct build_context *ctx = j->ctx;
	struct buildexec *bx = &j->bx;
	bx->ctx = ctx;
	struct build_backend be;
	buildexec_backend(bx, &be);
	struct build_request rq = { .ctx = ctx,
				    .dockerfile = j->dockerfile,
				    .build_args = j->args,
				    .target = j->target,
				    .platform = j->platform,
				    .labels = j->labels,
				    .tags = j->tags,
				    .no_cache = j->no_cache,
				    .pull = j->pull,
				    .jobs = 2, /* independent stages in parallel; output order unchanged */
				    .cancel = &bx->cancelled,
				    .event = on_event,
				    .event_userdata = j };
	_cleanup_free_ char *id = NULL;
	int r = ctx ? build_image(&rq, &be, &id, &err) : -EINVAL;
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		/* build_image reports most errors as events itself */
		if (!j->error_sent)
			send_line(j, BUILD_EVENT_ERROR, m);
	} else if (j->quiet) {
		_cleanup_free_ char *l = xasprintf("%s\n", id);
		send_line(j, BUILD_EVENT_STREAM, l);
	}
	buildexec_done(bx);
	if (ctx) {
		_cleanup_free_ char *n = xasprintf("%zu", ctx->n);
		log_fields(LOG_LEVEL_DEBUG, "build context", "entries", n, "extracted",
			   build_context_is_extracted(ctx) ? "yes" : "no", NULL);
	}
	if (ctx && j->mounted)
		ctx->owned_root = false; /* the unmount below drops every file at once */
	j->ctx = build_context_free(ctx);
	if (j->mounted)
		(void)umount2(j->tmp, MNT_DETACH);
	if (j->tmp_made)
		(void)rmdir(j->tmp);
	j->out_fd = safe_close(j->out_fd);
	return NULL;
}

/* The next progress bytes; -ECONNRESET when the client hung up (the build is then cancelled). */
static int job_read(void *ctx, struct strbuf *out)
{
	struct build_job *j = ctx;
	char buf[16384];
	ssize_t n;
	for (;;) {
		struct pollfd p[2] = { { .fd = j->in_fd, .events = POLLIN }, { .fd = j->sock } };
		int k = poll(p, j->sock >= 0 ? 2 : 1, -1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k > 0 && (p[1].revents & (POLLHUP | POLLERR)))
			return -ECONNRESET;
		if (k < 0 || p[0].revents)
			break;
	}
	do
		n = read(j->in_fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -EIO : 1;
	strbuf_add(out, buf, (size_t)n);
	return 0;
}

static void job_done(void *ctx)
{
	struct build_job *j = ctx;
	/* a client that went away: the build is cancelled (a running RUN is killed), nothing is
	 * committed or tagged; the thread's last writes fail with EPIPE */
	if (j->started)
		buildexec_cancel(&j->bx);
	j->in_fd = safe_close(j->in_fd);
	if (j->started)
		pthread_join(j->th, NULL);
	job_free(j);
}

/* {"K":"V",...} query value -> "K=V" vector (null values dropped, like docker without an env fallback). */
static int kv_param(struct api_call *c, const char *key, char ***ret)
{
	const char *v = http_request_query(c->req, key);
	*ret = NULL;
	if (!v || !*v)
		return 0;
	json_error_t je;
	_cleanup_json_ json_t *o = json_loads(v, 0, &je);
	if (!json_is_object(o)) {
		http_respond_error(c->req, 400, "invalid %s: expected a JSON object", key);
		return -EINVAL;
	}
	size_t n = 0;
	char **out = xcalloc(json_object_size(o) + 1, sizeof(char *));
	const char *k;
	json_t *val;
	json_object_foreach (o, k, val)
		if (json_is_string(val))
			out[n++] = xasprintf("%s=%s", k, json_string_value(val));
	*ret = out;
	return 0;
}

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* berth extension secrets={"id":"<hex of the value>"}: each value into a private file. */
static int secret_params(struct api_call *c, struct build_job *j)
{
	_cleanup_strv_ char **kv = NULL;
	int r = kv_param(c, "secrets", &kv);
	if (r < 0 || !kv || !kv[0])
		return r;
	_cleanup_free_ char *hex = util_random_hex(8);
	j->secret_dir = xasprintf("%s/builder/tmp/secrets-%s", c->api->root, hex);
	_cleanup_error_ struct berth_error *err = NULL;
	if ((r = fs_mkdir_p(j->secret_dir, 0700, &err)) < 0) {
		api_error(c->req, r, err);
		return r;
	}
	size_t nkv = 0;
	while (kv[nkv])
		nkv++;
	j->secrets = xcalloc(nkv + 1, sizeof(char *));
	for (size_t i = 0; kv[i]; i++) {
		char *eq = strchr(kv[i], '=');
		*eq++ = '\0';
		size_t n = strlen(eq);
		_cleanup_free_ char *v = xmalloc(n / 2 + 1);
		for (size_t k = 0; k < n / 2; k++) {
			int hi = unhex(eq[2 * k]), lo = unhex(eq[2 * k + 1]);
			if (hi < 0 || lo < 0) {
				n = 1; /* invalid: reported below */
				break;
			}
			v[k] = (char)((unsigned)hi << 4 | (unsigned)lo);
		}
		if (n % 2 || strchr(kv[i], '/') || !*kv[i] || streq(kv[i], "..") || streq(kv[i], ".")) {
			http_respond_error(c->req, 400, "invalid secret '%s': expected an id and hex data",
					   kv[i]);
			return -EINVAL;
		}
		_cleanup_free_ char *f = xasprintf("%s/%s", j->secret_dir, kv[i]);
		if ((r = fs_write_file_atomic(f, v, n / 2, 0400, &err)) < 0) {
			api_error(c->req, r, err);
			return r;
		}
		explicit_bzero(v, n / 2);
		j->secrets[i] = xasprintf("%s=%s", kv[i], f);
	}
	return 0;
}

static char *str_param(struct api_call *c, const char *key)
{
	const char *v = http_request_query(c->req, key);
	return v && *v ? xstrdup(v) : NULL;
}

static int job_params(struct api_call *c, struct build_job *j)
{
	/* docker build -t a -t b: one t= per tag (empty ones dropped) */
	j->tags = http_request_query_all(c->req, "t");
	size_t n = 0;
	for (char **t = j->tags; *t; t++)
		if (**t)
			j->tags[n++] = *t;
		else
			free(*t);
	j->tags[n] = NULL;
	j->target = str_param(c, "target");
	j->platform = str_param(c, "platform");
	/* default (the default bridge, what docker's CLI sends), bridge, none, host or a user network */
	const char *net = http_request_query(c->req, "networkmode");
	if (net && startswith(net, "container:")) {
		http_respond_error(c->req, 400, "network mode '%s' is not supported by the builder", net);
		return -EINVAL;
	}
	j->network = net && *net ? xstrdup(net) : NULL;
	/* docker build --add-host a:1.2.3.4 --add-host b:...: one extrahosts= each */
	j->extra_hosts = http_request_query_all(c->req, "extrahosts");
	size_t nh = 0;
	for (char **h = j->extra_hosts; *h; h++)
		if (**h)
			j->extra_hosts[nh++] = *h;
		else
			free(*h);
	j->extra_hosts[nh] = NULL;
	/* docker build --cache-from a --cache-from b: cachefrom=["a","b"] */
	const char *cf = http_request_query(c->req, "cachefrom");
	if (cf && *cf) {
		_cleanup_json_ json_t *a = json_loads(cf, 0, NULL);
		size_t i;
		json_t *v;
		if (!json_is_array(a)) {
			http_respond_error(c->req, 400, "invalid cachefrom: expected a JSON array of images");
			return -EINVAL;
		}
		j->cache_from = xcalloc(json_array_size(a) + 1, sizeof(char *));
		json_array_foreach (a, i, v) {
			if (!json_is_string(v)) {
				http_respond_error(c->req, 400, "invalid cachefrom: expected image names");
				return -EINVAL;
			}
			j->cache_from[i] = xstrdup(json_string_value(v));
		}
	}
	j->no_cache = http_query_bool(c->req, "nocache", false);
	j->pull = http_query_bool(c->req, "pull", false);
	j->quiet = http_query_bool(c->req, "q", false);
	int r = kv_param(c, "buildargs", &j->args);
	if (r >= 0)
		r = kv_param(c, "labels", &j->labels);
	if (r >= 0)
		r = kv_param(c, "ssh", &j->ssh); /* berth extension: {"id": "agent socket path"} */
	return r < 0 ? r : secret_params(c, j);
}

/* build_context_read_fn: the body as it arrives, each piece spooled before it is scanned. */
static ssize_t body_read(void *ud, void *buf, size_t n)
{
	struct build_job *j = ud;
	ssize_t got = http_request_body_read(j->req, buf, n);
	if (got < 0)
		j->body_err = (int)got;
	else if (got > 0 && fs_write_all(j->ctx_fd, buf, (size_t)got) < 0) {
		j->body_err = -errno;
		j->spool_failed = true;
		return j->body_err;
	}
	return got;
}

/* The context, scanned as it streams; false when the answer (413, 500) was given. */
static bool job_scan(struct api_call *c, struct build_job *j)
{
	j->req = c->req;
	struct build_context_scan_opts o = { .read = body_read,
					     .read_userdata = j,
					     .spool_fd = j->ctx_fd,
					     .dockerfile = j->dockerfile,
					     .dir = job_ctx_dir,
					     .dir_userdata = j };
	if (build_context_scan_tar(&o, &j->ctx, &j->scan_err) < 0) {
		/* the client sees the answer only once it has sent its body: read the rest */
		char *buf = xmalloc(256 * 1024);
		while (j->body_err >= 0 && http_request_body_read(c->req, buf, 256 * 1024) > 0)
			;
		free(buf);
	}
	j->req = NULL;
	if (j->body_err == -EFBIG) {
		http_respond_error(c->req, 413, "request body too large");
		return false;
	}
	if (j->body_err < 0) {
		http_respond_error(c->req, 500, "%s upload: %s", j->spool_failed ? "spool" : "read",
				   strerror(-j->body_err));
		return false;
	}
	return true;
}

void api_build(struct api_call *c)
{
	struct build_job *j = xcalloc(1, sizeof(*j));
	j->api = c->api;
	j->ctx_fd = j->out_fd = j->in_fd = -1;
	j->sock = http_request_socket(c->req);
	pthread_mutex_init(&j->bx.lock, NULL);
	_cleanup_free_ char *hex = util_random_hex(8);
	j->tmp = xasprintf("%s/builder/tmp/ctx-%s", j->api->root, hex);
	/* the context first: an answer before it is read would reach a client still sending */
	j->dockerfile = str_param(c, "dockerfile");
	if (!j->dockerfile)
		j->dockerfile = xstrdup("Dockerfile");
	j->ctx_fd = api_tmpfile(c);
	if (j->ctx_fd < 0 || !job_scan(c, j) || job_params(c, j) < 0) {
		job_free(j);
		return;
	}
	j->bx.engine = j->api->engine;
	j->bx.images = j->api->images;
	j->bx.root = j->api->root;
	j->bx.network = j->network;
	j->bx.extra_hosts = j->extra_hosts;
	j->bx.no_cache = j->no_cache;
	j->bx.cache_from = j->cache_from;
	j->bx.secrets = j->secrets;
	j->bx.ssh = j->ssh;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		http_respond_error(c->req, 500, "start build: %s", strerror(errno));
		job_free(j);
		return;
	}
	j->in_fd = p[0];
	j->out_fd = p[1];
	if (pthread_create(&j->th, NULL, job_main, j) != 0) {
		http_respond_error(c->req, 500, "start build: %s", strerror(errno));
		job_free(j);
		return;
	}
	j->started = true;
	http_respond_stream(c->req, 200, "application/json", job_read, job_done, j);
}

void api_build_prune(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *out = NULL;
	int r = buildexec_prune(c->api->images, c->api->root, &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}
