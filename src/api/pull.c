/*
 * pull.c - POST /images/create?fromImage=...: the pull runs on a worker
 * thread and its progress is streamed to the client as docker's JSON
 * messages while it happens (the request thread only relays the lines).
 * A pull that fails before its first progress line gets a plain HTTP error.
 */
#include <pthread.h>

#include "api/remote.h"
#include "api/routes.h"
#include "common/json.h"
#include "image/image.h"

struct pull_job {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct strbuf buf; /* lines not yet sent */
	bool started;      /* the response is a stream: errors go into it */
	bool done;
	int refs;
	int r;
	struct berth_error *err;
	struct api *api;
	char *ref, *platform;
	json_t *auth_hdr;
};

static void job_unref(struct pull_job *j)
{
	pthread_mutex_lock(&j->lock);
	bool last = --j->refs == 0;
	pthread_mutex_unlock(&j->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	strbuf_release(&j->buf);
	berth_error_free(j->err);
	free(j->ref);
	free(j->platform);
	json_decref(j->auth_hdr);
	free(j);
}

static void add_line(struct pull_job *j, json_t *line)
{
	char *s = json_dumps(line, JSON_COMPACT);
	json_decref(line);
	pthread_mutex_lock(&j->lock);
	strbuf_addstr(&j->buf, s);
	strbuf_addstr(&j->buf, "\r\n");
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	free(s);
}

static void on_progress(const struct image_progress *p, void *userdata)
{
	add_line(userdata, api_progress_json(p));
}

static void *worker(void *arg)
{
	struct pull_job *j = arg;
	struct image_auth auth;
	struct image_remote_opts o = { .auth = api_registry_auth_of(j->auth_hdr, &auth) ? &auth : NULL,
				       .progress = on_progress,
				       .progress_data = j };
	struct berth_error *err = NULL;
	int r = image_pull(j->api->images, j->ref, j->platform, &o, NULL, &err);
	if (r >= 0)
		api_image_event(j->api, "pull", j->ref, j->ref); /* as dockerd: the reference is the Actor */
	pthread_mutex_lock(&j->lock);
	if (r < 0 && (j->started || j->buf.len > 0)) {
		_cleanup_free_ char *m = berth_error_string(err);
		_cleanup_json_ json_t *e =
		    json_pack("{s:s,s:{s:s}}", "error", m, "errorDetail", "message", m);
		_cleanup_free_ char *s = json_dumps(e, JSON_COMPACT);
		strbuf_addstr(&j->buf, s);
		strbuf_addstr(&j->buf, "\r\n");
	}
	j->r = r;
	j->err = err;
	j->done = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	job_unref(j);
	return NULL;
}

static int stream_read(void *ctx, struct strbuf *out)
{
	struct pull_job *j = ctx;
	pthread_mutex_lock(&j->lock);
	while (j->buf.len == 0 && !j->done)
		pthread_cond_wait(&j->cond, &j->lock);
	bool end = j->buf.len == 0;
	strbuf_add(out, j->buf.buf, j->buf.len);
	strbuf_reset(&j->buf);
	pthread_mutex_unlock(&j->lock);
	return end ? 1 : 0;
}

static void stream_done(void *ctx)
{
	job_unref(ctx);
}

void api_image_pull(struct api_call *c, const char *ref)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *hdr = NULL;
	if (api_registry_auth_parse(http_request_header(c->req, "X-Registry-Auth"), &hdr, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	const char *platform = http_request_query(c->req, "platform");
	struct pull_job *j = xcalloc(1, sizeof(*j));
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	strbuf_init(&j->buf, 0);
	j->refs = 2; /* the worker, the response */
	j->api = c->api;
	j->ref = xstrdup(ref);
	j->platform = platform && *platform ? xstrdup(platform) : NULL;
	j->auth_hdr = hdr;
	pthread_t t;
	if (pthread_create(&t, NULL, worker, j) != 0) {
		j->refs = 1;
		job_unref(j);
		http_respond_error(c->req, 500, "start pull: out of threads");
		return;
	}
	pthread_detach(t);
	pthread_mutex_lock(&j->lock);
	while (j->buf.len == 0 && !j->done)
		pthread_cond_wait(&j->cond, &j->lock);
	bool failed_early = j->buf.len == 0 && j->r < 0;
	j->started = !failed_early;
	pthread_mutex_unlock(&j->lock);
	if (failed_early) {
		api_error(c->req, j->r, j->err);
		job_unref(j);
		return;
	}
	http_respond_stream(c->req, 200, "application/json", stream_read, stream_done, j);
}
