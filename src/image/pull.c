/*
 * pull.c - image_pull(): manifest resolution, parallel verified blob
 * downloads with resume, unpack, tag.
 *
 * Downloads run on one thread with http/xfer.h's multi interface (bounded number of
 * concurrent transfers), so progress callbacks stay on the caller's thread.
 * Each blob streams into its own content writer, hashed on the fly; a dropped
 * connection is resumed with a Range request from the bytes already written
 * (a server that ignores Range restarts the blob from zero). Nothing is
 * unpacked or tagged until every blob verified.
 */
#include <pthread.h>

#include "common/json.h"
#include "common/process.h"
#include "image/manifest.h"
#include "image/remote.h"

#define PULL_DEFAULT_CONCURRENCY 3
#define PULL_MAX_ATTEMPTS        5
#define PULL_PROGRESS_MS         100

struct dl {
	const struct manifest_desc *desc;
	char sid[13];
	struct content_writer w;
	bool open, done, failed;
	int attempts;
	struct http_xfer *x; /* while a transfer runs */
	char *range;
	bool partial; /* asked for a range: a 200 means the server sends it all again */
	struct image_store *store;
	int64_t last_ms;
	struct berth_error *err;
};

struct puller {
	struct remote rm;
	const struct image_remote_opts *o;
	struct dl *dls;
	size_t n;
};

static int dl_write(void *ud, const char *data, size_t len)
{
	struct dl *d = ud;
	long status = http_xfer_status(d->x);
	if (status != 200 && status != 206)
		return 0; /* error body: ignored, status checked at the end */
	if (status == 200 && d->partial) {
		/* the server ignored our Range: start the blob over */
		d->partial = false;
		image_content_writer_done(&d->w);
		d->open = false;
		if (image_content_writer_open(d->store, &d->w, &d->err) < 0)
			return -EIO;
		d->open = true;
	}
	if (d->w.size + len > (uint64_t)d->desc->size)
		return -EBADMSG; /* more than the descriptor says: abort */
	if (image_content_writer_write(&d->w, data, len, &d->err) < 0)
		return -EIO;
	return 0;
}

static int dl_start(struct puller *p, struct http_xfer_multi *m, struct dl *d, struct berth_error **err)
{
	if (!d->open) {
		int r = image_content_writer_open(p->rm.s, &d->w, err);
		if (r < 0)
			return r;
		d->open = true;
	}
	_cleanup_free_ char *url = image_remote_url(&p->rm, "blobs", d->desc->digest);
	const char *hdrs[2];
	struct http_xfer_req q;
	image_remote_xfer_req(&p->rm, url, hdrs, 0, &q);
	q.on_data = dl_write;
	q.data_ctx = d;
	q.priv = d;
	free(d->range);
	d->range = NULL;
	d->store = p->rm.s;
	d->partial = d->w.size > 0;
	if (d->w.size > 0) {
		d->range = xasprintf("%llu-", (unsigned long long)d->w.size);
		q.range = d->range;
	}
	d->attempts++;
	d->x = http_xfer_new();
	int r = http_xfer_multi_add(m, d->x, &q, err);
	if (r < 0)
		d->x = http_xfer_free(d->x);
	return r;
}

static void dl_stop(struct http_xfer_multi *m, struct dl *d)
{
	if (!d->x)
		return;
	http_xfer_multi_remove(m, d->x);
	d->x = http_xfer_free(d->x);
}

/* A server that ignored our Range sent the blob from 0: restart the writer. */
static int dl_restart(struct puller *p, struct dl *d, struct berth_error **err)
{
	image_content_writer_done(&d->w);
	d->open = false;
	int r = image_content_writer_open(p->rm.s, &d->w, err);
	if (r >= 0)
		d->open = true;
	return r;
}

static int dl_finish(struct puller *p, struct http_xfer_multi *m, struct dl *d, int xr,
		     const struct http_xfer_res *res, struct berth_error **err)
{
	long status = res->status;
	bool ok = xr >= 0;
	dl_stop(m, d);
	if (d->err) {
		_cleanup_free_ char *msg = berth_error_string(d->err);
		return berth_error_msg(err, berth_error_code(d->err) ?: EIO, "%s", msg);
	}
	if (ok && (status == 200 || status == 206)) {
		if (d->w.size < (uint64_t)d->desc->size && d->attempts < PULL_MAX_ATTEMPTS)
			return dl_start(p, m, d, err); /* short body: resume */
		image_remote_emit(p->o, d->sid, "Verifying Checksum", 0, 0);
		int r = image_content_writer_commit(&d->w, d->desc->digest, d->desc->size, NULL, err);
		image_content_writer_done(&d->w);
		d->open = false;
		if (r < 0)
			return berth_error_wrap(err, r, "blob '%s'", d->desc->digest);
		d->done = true;
		image_remote_emit(p->o, d->sid, "Download complete", 0, 0);
		return 0;
	}
	if (ok && status == 416 && d->w.size > 0) {
		int r = dl_restart(p, d, err);
		return r < 0 ? r : dl_start(p, m, d, err);
	}
	if (ok)
		return berth_error_msg(err, status == 404 ? ENOENT : EPROTO,
				       "blob '%s': registry returned HTTP %ld", d->desc->digest, status);
	if (res->fail == HTTP_XFER_ABORTED)
		return berth_error_msg(err, EBADMSG, "blob '%s' is larger than its descriptor (%lld bytes)",
				       d->desc->digest, (long long)d->desc->size);
	if (d->attempts >= PULL_MAX_ATTEMPTS)
		return berth_error_msg(err, EIO, "blob '%s': %s (after %d attempts)", d->desc->digest,
				       res->reason, d->attempts);
	return dl_start(p, m, d, err); /* transport error: resume with Range */
}

static void dl_progress(struct puller *p)
{
	int64_t now = proc_now_ms();
	for (size_t i = 0; i < p->n; i++) {
		struct dl *d = &p->dls[i];
		if (!d->x || now - d->last_ms < PULL_PROGRESS_MS)
			continue;
		d->last_ms = now;
		image_remote_emit(p->o, d->sid, "Downloading", d->w.size, (uint64_t)d->desc->size);
	}
}

/*
 * Unpacking overlaps downloading: a worker thread unpacks layer i as soon as
 * its blob is verified and layers 0..i-1 are done; the calling thread keeps
 * running transfers and reports the worker's progress, so callbacks still
 * come from the caller's thread only.
 */
struct unpacker {
	struct image_store *s;
	struct store_image *img;
	struct http_xfer_multi *m;
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* worker waits: a layer became ready, or abort */
	pthread_cond_t done_cv; /* caller waits: a layer finished, or the worker ended */
	bool *ready, *did_unpack;
	bool abort, finished;
	size_t current, completed, reported;
	uint64_t cur_bytes; /* compressed bytes of the current layer consumed (atomic) */
	int result;
	struct berth_error *err;
	int64_t last_ms;
};

static void unpacker_bytes(uint64_t done, void *ud)
{
	struct unpacker *u = ud;
	__atomic_store_n(&u->cur_bytes, done, __ATOMIC_RELAXED);
}

static void unpacker_end(struct unpacker *u, int r, struct berth_error *e)
{
	pthread_mutex_lock(&u->mu);
	u->result = r;
	u->err = e;
	u->finished = true;
	pthread_cond_signal(&u->done_cv);
	pthread_mutex_unlock(&u->mu);
	http_xfer_multi_wakeup(u->m);
}

static void *unpacker_main(void *arg)
{
	struct unpacker *u = arg;
	struct berth_error *e = NULL;
	_cleanup_db_ sqlite3 *db = NULL;
	int r = image_store_db_open(u->s, &db, &e);
	for (size_t i = 0; r >= 0 && i < u->img->n_layers; i++) {
		pthread_mutex_lock(&u->mu);
		while (!u->ready[i] && !u->abort)
			pthread_cond_wait(&u->cv, &u->mu);
		bool stop = u->abort;
		u->current = i;
		__atomic_store_n(&u->cur_bytes, 0, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&u->mu);
		if (stop)
			break;
		bool did = false;
		r = image_store_layer_ensure(u->s, db, &u->img->layers[i], unpacker_bytes, u, &did, &e);
		pthread_mutex_lock(&u->mu);
		u->did_unpack[i] = did;
		if (r >= 0)
			u->completed = i + 1;
		pthread_cond_signal(&u->done_cv);
		pthread_mutex_unlock(&u->mu);
		http_xfer_multi_wakeup(u->m);
	}
	unpacker_end(u, r, e);
	return NULL;
}

static int unpacker_start(struct unpacker *u, struct image_store *s, struct store_image *img,
			  struct http_xfer_multi *m, struct berth_error **err)
{
	*u = (struct unpacker){ .s = s, .img = img, .m = m };
	u->ready = xcalloc(img->n_layers + 1, sizeof(bool));
	u->did_unpack = xcalloc(img->n_layers + 1, sizeof(bool));
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	proc_cond_init_monotonic(&u->done_cv);
	image_store_image_chain_ids(img);
	int r = pthread_create(&u->th, NULL, unpacker_main, u);
	if (r != 0)
		return berth_error_set(err, r, "start unpack thread");
	u->started = true;
	return 0;
}

static void unpacker_ready(struct unpacker *u, size_t i)
{
	pthread_mutex_lock(&u->mu);
	u->ready[i] = true;
	pthread_cond_signal(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

/* Report the worker's progress; -errno once it failed (error moved to err). */
static int unpacker_report(struct unpacker *u, const struct image_remote_opts *o, struct berth_error **err)
{
	pthread_mutex_lock(&u->mu);
	size_t completed = u->completed, current = u->current;
	bool finished = u->finished;
	int result = u->result;
	pthread_mutex_unlock(&u->mu);
	for (; u->reported < completed; u->reported++) {
		char sid[13];
		image_store_short_id(u->img->layers[u->reported].blob, sid);
		if (u->did_unpack[u->reported])
			image_remote_emit(o, sid, "Pull complete", 0, 0);
	}
	int64_t now = proc_now_ms();
	if (!finished && current == completed && current < u->img->n_layers && u->ready[current] &&
	    now - u->last_ms >= PULL_PROGRESS_MS) {
		uint64_t done = __atomic_load_n(&u->cur_bytes, __ATOMIC_RELAXED);
		char sid[13];
		u->last_ms = now;
		image_store_short_id(u->img->layers[current].blob, sid);
		if (done > 0)
			image_remote_emit(o, sid, "Extracting", done, u->img->layers[current].blob_size);
	}
	if (finished && result < 0) {
		if (err) {
			berth_error_free(*err);
			*err = TAKE_PTR(u->err);
		}
		return result;
	}
	return 0;
}

/* Stop (abort=true) or wait for the worker to finish every layer; reports progress meanwhile. */
static int unpacker_finish(struct unpacker *u, bool abort, const struct image_remote_opts *o,
			   struct berth_error **err)
{
	int r = 0;
	if (u->started) {
		pthread_mutex_lock(&u->mu);
		u->abort = abort;
		pthread_cond_signal(&u->cv);
		while (!u->finished && !abort) {
			struct timespec ts = proc_deadline(CLOCK_MONOTONIC, PULL_PROGRESS_MS);
			pthread_cond_timedwait(&u->done_cv, &u->mu, &ts);
			pthread_mutex_unlock(&u->mu);
			(void)unpacker_report(u, o, NULL);
			pthread_mutex_lock(&u->mu);
		}
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->th, NULL);
		if (!abort)
			r = unpacker_report(u, o, err);
	}
	berth_error_free(u->err);
	free(u->ready);
	free(u->did_unpack);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->cv);
	pthread_cond_destroy(&u->done_cv);
	return r;
}

static int download_all(struct puller *p, struct http_xfer_multi *m, struct unpacker *u,
			struct berth_error **err)
{
	unsigned max = p->o && p->o->max_concurrent ? p->o->max_concurrent : PULL_DEFAULT_CONCURRENCY;
	size_t next = 0, active = 0, queued = 0;
	int r = 0;
	for (size_t i = 0; i < p->n; i++)
		if (!p->dls[i].done && queued++ >= max)
			image_remote_emit(p->o, p->dls[i].sid, "Waiting", 0, 0);
	while (r >= 0) {
		while (active < max && next < p->n) {
			struct dl *d = &p->dls[next++];
			if (d->done)
				continue;
			r = dl_start(p, m, d, err);
			if (r < 0)
				break;
			active++;
		}
		if (r < 0 || active == 0)
			break;
		int running = 0;
		http_xfer_multi_perform(m, &running);
		struct http_xfer *x;
		struct http_xfer_res res;
		int xr = 0;
		while (r >= 0 && (x = http_xfer_multi_next(m, &res, &xr, NULL))) {
			struct dl *d = http_xfer_priv(x);
			r = dl_finish(p, m, d, xr, &res, err);
			if (r >= 0 && d->done) {
				active--;
				unpacker_ready(u, (size_t)(d - p->dls));
			}
		}
		dl_progress(p);
		if (r >= 0)
			r = unpacker_report(u, p->o, err);
		if (r >= 0 && running > 0)
			http_xfer_multi_wait(m, 200);
	}
	for (size_t i = 0; i < p->n; i++) {
		dl_stop(m, &p->dls[i]);
		if (p->dls[i].open)
			image_content_writer_done(&p->dls[i].w);
		free(p->dls[i].range);
		berth_error_free(p->dls[i].err);
	}
	return r;
}

/* GET a manifest by tag or digest; verify the digest; store it. */
static int fetch_manifest(struct puller *p, const char *what, struct strbuf *body, char **ret_type,
			  char ret_digest[DIGEST_STRING_MAX], struct berth_error **err)
{
	_cleanup_free_ char *url = image_remote_url(&p->rm, "manifests", what);
	struct http_req q = { .method = "GET",
			      .url = url,
			      .accept = MANIFEST_ACCEPT,
			      .body = body,
			      .body_max = IMAGE_MANIFEST_MAX };
	int r = image_remote_do(&p->rm, &q, err);
	if (r >= 0 && q.status != 200)
		r = image_remote_status_error(&q, "get manifest", err);
	if (r < 0) {
		image_http_req_done(&q);
		return berth_error_wrap(err, r, "pull '%s'", what);
	}
	digest_buffer(DIGEST_SHA256, body->buf, body->len, ret_digest);
	if (startswith(what, "sha256:") && !streq(what, ret_digest))
		r = berth_error_msg(err, EBADMSG, "manifest digest mismatch: expected '%s', got '%s'", what,
				    ret_digest);
	else if (q.resp_digest && startswith(q.resp_digest, "sha256:") && !streq(q.resp_digest, ret_digest))
		r = berth_error_msg(err, EBADMSG, "manifest digest mismatch: registry says '%s', got '%s'",
				    q.resp_digest, ret_digest);
	if (r >= 0)
		r = image_content_write_buffer(p->rm.s, body->buf, body->len, ret_digest, NULL, err);
	if (r >= 0)
		*ret_type = q.resp_type ? xstrdup(q.resp_type) : NULL;
	image_http_req_done(&q);
	return r;
}

static int fetch_config(struct puller *p, const struct manifest_desc *cfg, struct berth_error **err)
{
	if (image_content_has(p->rm.s, cfg->digest, NULL))
		return 0;
	if (cfg->size > (int64_t)IMAGE_MANIFEST_MAX)
		return berth_error_msg(err, EFBIG, "image config too large (%lld bytes)",
				       (long long)cfg->size);
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	_cleanup_free_ char *url = image_remote_url(&p->rm, "blobs", cfg->digest);
	struct http_req q = { .method = "GET", .url = url, .body = &body, .body_max = IMAGE_MANIFEST_MAX };
	int r = image_remote_do(&p->rm, &q, err);
	if (r >= 0 && q.status != 200)
		r = image_remote_status_error(&q, "get image config", err);
	image_http_req_done(&q);
	if (r < 0)
		return r;
	return image_content_write_buffer(p->rm.s, body.buf, body.len, cfg->digest, NULL, err);
}

/* Resolve ref to an image manifest (selecting the platform in an index). */
static int resolve_manifest(struct puller *p, const char *platform, struct manifest *ret,
			    char ret_top[DIGEST_STRING_MAX], char ret_digest[DIGEST_STRING_MAX],
			    struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	_cleanup_free_ char *ctype = NULL;
	const char *what = p->rm.ref->digest ? p->rm.ref->digest : p->rm.ref->tag;
	int r = fetch_manifest(p, what, &body, &ctype, ret_top, err);
	if (r < 0)
		return r;
	struct manifest m;
	r = image_manifest_parse(body.buf, body.len, ctype, &m, err);
	if (r < 0)
		return r;
	memcpy(ret_digest, ret_top, DIGEST_STRING_MAX);
	if (m.kind == MANIFEST_INDEX) {
		struct image_platform plat;
		const struct manifest_desc *sel = NULL;
		r = image_platform_parse(platform, &plat, err);
		if (r >= 0)
			r = image_manifest_select(&m, &plat, &sel, err);
		if (r >= 0) {
			char want[DIGEST_STRING_MAX];
			memcpy(want, sel->digest, DIGEST_STRING_MAX);
			image_manifest_done(&m);
			free(ctype);
			ctype = NULL;
			r = fetch_manifest(p, want, &body, &ctype, ret_digest, err);
			if (r >= 0)
				r = image_manifest_parse(body.buf, body.len, ctype, &m, err);
			if (r >= 0 && m.kind != MANIFEST_IMAGE) {
				image_manifest_done(&m);
				r = berth_error_msg(err, EPROTONOSUPPORT,
						    "nested image index is not supported");
			}
		} else {
			image_manifest_done(&m);
		}
		image_platform_done(&plat);
		if (r < 0)
			return r;
	}
	*ret = m;
	return 0;
}

static int build_record(struct puller *p, const struct manifest *m, const char *mdigest,
			struct store_image *img, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	struct config_info ci = { 0 };
	int r = image_content_read(p->rm.s, m->config.digest, IMAGE_MANIFEST_MAX, &sb, err);
	if (r >= 0)
		r = image_config_parse(sb.buf, sb.len, &ci, err);
	if (r < 0)
		return r;
	if (ci.n_diff_ids != m->n_layers) {
		image_config_info_done(&ci);
		return berth_error_msg(err, EINVAL, "manifest has %zu layers but the config has %zu diff_ids",
				       m->n_layers, ci.n_diff_ids);
	}
	snprintf(img->id, sizeof(img->id), "%s", m->config.digest);
	img->manifest_digest = xstrdup(mdigest);
	img->manifest_media_type = xstrdup(m->media_type);
	img->config_media_type = xstrdup(m->config.media_type);
	img->created = ci.created;
	img->n_layers = m->n_layers;
	img->layers = xcalloc(m->n_layers + 1, sizeof(*img->layers));
	for (size_t i = 0; i < m->n_layers; i++) {
		struct store_layer *l = &img->layers[i];
		snprintf(l->diff_id, sizeof(l->diff_id), "%s", ci.diff_ids[i]);
		snprintf(l->blob, sizeof(l->blob), "%s", m->layers[i].digest);
		l->media_type = xstrdup(m->layers[i].media_type);
		l->blob_size = (uint64_t)m->layers[i].size;
	}
	image_config_info_done(&ci);
	return 0;
}

static int pull_layers(struct puller *p, const struct manifest *m, struct store_image *img, bool *ret_new,
		       struct berth_error **err)
{
	p->n = m->n_layers;
	p->dls = xcalloc(p->n + 1, sizeof(*p->dls));
	struct http_xfer_multi *multi = http_xfer_multi_new();
	struct unpacker u;
	int r = unpacker_start(&u, p->rm.s, img, multi, err);
	bool any = false;
	for (size_t i = 0; r >= 0 && i < p->n; i++) {
		struct dl *d = &p->dls[i];
		d->desc = &m->layers[i];
		image_store_short_id(d->desc->digest, d->sid);
		d->done = image_content_has(p->rm.s, d->desc->digest, NULL);
		any |= !d->done;
		image_remote_emit(p->o, d->sid, d->done ? "Already exists" : "Pulling fs layer", 0, 0);
		if (d->done)
			unpacker_ready(&u, i);
	}
	if (r >= 0)
		r = download_all(p, multi, &u, err);
	int k = unpacker_finish(&u, r < 0, p->o, r < 0 ? NULL : err);
	if (r >= 0)
		r = k;
	http_xfer_multi_free(multi);
	free(p->dls);
	p->dls = NULL;
	*ret_new = any;
	return r;
}

static int do_pull(struct puller *p, const char *platform, char **ret_id, struct berth_error **err)
{
	struct manifest m = { 0 };
	char top[DIGEST_STRING_MAX], mdigest[DIGEST_STRING_MAX];
	_cleanup_free_ char *fam = image_ref_familiar(p->rm.ref);
	_cleanup_free_ char *from = xasprintf("Pulling from %s", p->rm.ref->path);
	image_remote_emit(p->o, p->rm.ref->tag ? p->rm.ref->tag : p->rm.ref->digest, from, 0, 0);
	int r = resolve_manifest(p, platform, &m, top, mdigest, err);
	if (r < 0)
		return r;
	bool fresh = false;
	struct store_image img = { 0 };
	r = fetch_config(p, &m.config, err);
	if (r >= 0)
		r = build_record(p, &m, mdigest, &img, err);
	if (r >= 0)
		r = pull_layers(p, &m, &img, &fresh, err);
	if (r >= 0)
		r = image_store_layers_unpack(p->rm.s, &img, p->o ? p->o->progress : NULL,
					      p->o ? p->o->progress_data : NULL, "Pull complete", err);
	_cleanup_free_ char *name = image_ref_name(p->rm.ref);
	_cleanup_free_ char *tag = p->rm.ref->tag ? image_ref_string(p->rm.ref) : NULL;
	_cleanup_free_ char *dref = xasprintf("%s@%s", name, top);
	const char *tags[2] = { tag, NULL };
	if (r >= 0)
		r = image_store_image_finish(p->rm.s, &img, tags, dref, err);
	if (r >= 0) {
		_cleanup_free_ char *d = xasprintf("Digest: %s", top);
		_cleanup_free_ char *st = xasprintf(
		    "Status: %s for %s", fresh ? "Downloaded newer image" : "Image is up to date", fam);
		image_remote_emit(p->o, NULL, d, 0, 0);
		image_remote_emit(p->o, NULL, st, 0, 0);
		if (ret_id)
			*ret_id = xstrdup(img.id);
	}
	image_store_image_done(&img);
	image_manifest_done(&m);
	return r;
}

int image_pull(struct image_store *s, const char *ref, const char *platform,
	       const struct image_remote_opts *opts, char **ret_id, struct berth_error **err)
{
	_cleanup_image_ref_ struct image_ref *r = NULL;
	int k = image_ref_parse(ref, IMAGE_REF_DEFAULT_TAG, &r, err);
	if (k < 0)
		return k;
	struct image_platform plat;
	k = image_platform_parse(platform, &plat, err); /* validate early */
	if (k < 0)
		return k;
	image_platform_done(&plat);
	struct puller p = { .o = opts };
	k = image_remote_open(s, r, opts, false, &p.rm, err);
	if (k >= 0)
		k = do_pull(&p, platform, ret_id, err);
	image_remote_done(&p.rm);
	if (k < 0)
		return berth_error_wrap(err, k, "pull '%s'", ref);
	return 0;
}
