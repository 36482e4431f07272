/*
 * fsops.c - container filesystem and resource routes: stats (one sample or a
 * stream, one per second like dockerd), the archive API (HEAD/GET/PUT with
 * X-Docker-Container-Path-Stat), changes, export and POST /commit.
 *
 * Tars are produced into an unlinked file under the root first and then
 * streamed, so that errors (missing path, unreadable file) become docker's
 * error statuses instead of a truncated 200, and the daemon's memory stays
 * bounded (a memfd would hold the whole archive in RAM). Uploads are spooled
 * the same way as they arrive (api_body_spool) and go to the engine as a file.
 */
#include <sys/mman.h>

#include "api/routes.h"
#include "common/base64.h"
#include "common/fs.h"
#include "common/json.h"

#define STATS_INTERVAL_MS 1000

static void fsop_error(struct http_request *req, int r, struct berth_error *err)
{
	/* invalid tars and non-directory extraction points are the client's fault */
	if (r == -EBADMSG || r == -ENOTDIR || r == -ENAMETOOLONG || r == -ELOOP)
		r = -EINVAL;
	/* a tar entry that reached a read-only mount: 403 like a read-only destination (API reference) */
	if (r == -EROFS)
		r = -EACCES;
	api_error(req, r, err);
}

/* ---- stats ---- */

struct stats_stream {
	struct engine *e;
	char *ref;
	json_t *prev;
};

static int stats_read(void *ctx, struct strbuf *out)
{
	struct stats_stream *s = ctx;
	if (s->prev && engine_stats_pace(s->e, STATS_INTERVAL_MS) < 0)
		return 1;
	json_t *cur = NULL;
	if (engine_container_stats(s->e, s->ref, s->prev, &cur, NULL) < 0)
		return 1; /* removed meanwhile: end of stream */
	_cleanup_free_ char *txt = json_dumps(cur, JSON_COMPACT);
	strbuf_addstr(out, txt);
	strbuf_addch(out, '\n');
	json_decref(s->prev);
	s->prev = cur;
	return 0;
}

static void stats_done(void *ctx)
{
	struct stats_stream *s = ctx;
	json_decref(s->prev);
	free(s->ref);
	free(s);
}

void api_container_stats(struct api_call *c)
{
	bool stream = http_query_bool(c->req, "stream", true);
	bool one_shot = http_query_bool(c->req, "one-shot", false);
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *first = NULL;
	int r = engine_container_stats(c->api->engine, c->param[0], NULL, &first, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	if (stream) {
		struct stats_stream *s = xcalloc(1, sizeof(*s));
		s->e = c->api->engine;
		s->ref = xstrdup(c->param[0]);
		/* the first sample is sent by the first read (precpu empty, like dockerd's first frame) */
		json_decref(first);
		http_respond_stream(c->req, 200, "application/json", stats_read, stats_done, s);
		return;
	}
	/* without one-shot, docker primes precpu with a sample one interval earlier */
	json_t *second = NULL;
	if (!one_shot && engine_stats_pace(c->api->engine, STATS_INTERVAL_MS) >= 0 &&
	    engine_container_stats(c->api->engine, c->param[0], first, &second, NULL) >= 0) {
		json_decref(first);
		first = second;
	}
	http_respond_json(c->req, 200, first);
}

/* ---- archive ---- */

static void set_stat_header(struct http_request *req, const json_t *st)
{
	_cleanup_free_ char *txt = json_dumps(st, JSON_COMPACT);
	_cleanup_free_ char *b64 = base64_encode(txt, strlen(txt));
	http_response_header(req, "X-Docker-Container-Path-Stat", b64);
}

static const char *path_param(struct api_call *c)
{
	const char *p = http_request_query(c->req, "path");
	if (!p || !*p) {
		http_respond_error(c->req, 400, "bad parameter: path cannot be empty");
		return NULL;
	}
	return p;
}

void api_container_archive_head(struct api_call *c)
{
	const char *path = path_param(c);
	if (!path)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *st = NULL;
	int r = engine_archive_stat(c->api->engine, c->param[0], path, &st, &err);
	if (r < 0) {
		fsop_error(c->req, r, err);
		return;
	}
	set_stat_header(c->req, st);
	http_respond_empty(c->req, 200);
}

struct fd_reader {
	int fd;
};

static int fd_reader_read(void *ctx, struct strbuf *out)
{
	struct fd_reader *f = ctx;
	char buf[64 * 1024];
	ssize_t n;
	do
		n = read(f->fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -EIO : 1;
	strbuf_add(out, buf, (size_t)n);
	return 0;
}

static void fd_reader_done(void *ctx)
{
	struct fd_reader *f = ctx;
	safe_close(f->fd);
	free(f);
}

static void stream_tmpfile(struct api_call *c, int fd)
{
	if (lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		http_respond_error(c->req, 500, "rewind archive: %s", strerror(errno));
		return;
	}
	struct fd_reader *f = xcalloc(1, sizeof(*f));
	f->fd = fd;
	http_respond_stream(c->req, 200, "application/x-tar", fd_reader_read, fd_reader_done, f);
}

void api_container_archive_get(struct api_call *c)
{
	const char *path = path_param(c);
	if (!path)
		return;
	int fd = api_tmpfile(c);
	if (fd < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *st = NULL;
	int r = engine_archive_get(c->api->engine, c->param[0], path, fd, &st, &err);
	if (r < 0) {
		close(fd);
		fsop_error(c->req, r, err);
		return;
	}
	set_stat_header(c->req, st);
	stream_tmpfile(c, fd);
}

void api_container_archive_put(struct api_call *c)
{
	/* the body first: an answer before it is read would reach a client still sending */
	_cleanup_close_ int fd = api_body_spool(c);
	if (fd < 0)
		return;
	const char *path = path_param(c);
	if (!path)
		return;
	struct engine_archive_put_opts o = {
		.no_overwrite_dir_nondir = http_query_bool(c->req, "noOverwriteDirNonDir", false),
		.copy_uid_gid = http_query_bool(c->req, "copyUIDGID", false),
	};
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_archive_put(c->api->engine, c->param[0], path, fd, &o, &err);
	if (r < 0)
		fsop_error(c->req, r, err);
	else
		http_respond_empty(c->req, 200);
}

/* ---- changes, export, commit ---- */

void api_container_changes(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *out = NULL;
	int r = engine_container_changes(c->api->engine, c->param[0], &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_container_export(struct api_call *c)
{
	int fd = api_tmpfile(c);
	if (fd < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_export(c->api->engine, c->param[0], fd, &err);
	if (r < 0) {
		close(fd);
		api_error(c->req, r, err);
		return;
	}
	stream_tmpfile(c, fd);
}

char **api_query_changes(struct api_call *c)
{
	_cleanup_strv_ char **values = http_request_query_all(c->req, "changes");
	size_t n = 0;
	char **v = xcalloc(1, sizeof(char *));
	for (char **s = values; s && *s; s++)
		for (const char *p = *s; *p;) {
			const char *nl = strchrnul(p, '\n');
			if (nl > p) {
				v = xrealloc(v, (n + 2) * sizeof(char *));
				v[n++] = xstrndup(p, (size_t)(nl - p));
				v[n] = NULL;
			}
			p = *nl ? nl + 1 : nl;
		}
	return v;
}

static bool body_is_null(struct http_request *req)
{
	size_t len;
	const char *raw = http_request_body(req, &len);
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", raw[i]))
		i++;
	if (len - i < 4 || strncmp(raw + i, "null", 4))
		return false;
	for (i += 4; i < len; i++)
		if (!strchr(" \t\r\n", raw[i]))
			return false;
	return true;
}

void api_commit(struct api_call *c)
{
	const char *ref = http_request_query(c->req, "container");
	if (!ref || !*ref) {
		http_respond_error(c->req, 400, "bad parameter: container is required");
		return;
	}
	_cleanup_json_ json_t *body = NULL;
	/* docker's CLI sends "null" when no config is given */
	bool null_body = body_is_null(c->req);
	if (!null_body && api_body_json(c->req, &body, false) < 0)
		return;
	if (body && !json_is_object(body)) {
		http_respond_error(c->req, 400, "commit config: expected object");
		return;
	}
	_cleanup_strv_ char **changes = api_query_changes(c);
	struct engine_commit_opts o = {
		.repo = http_request_query(c->req, "repo"),
		.tag = http_request_query(c->req, "tag"),
		.comment = http_request_query(c->req, "comment"),
		.author = http_request_query(c->req, "author"),
		.pause = http_query_bool(c->req, "pause", true),
		.changes = (const char *const *)changes,
		.config = body,
	};
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *id = NULL;
	int r = engine_container_commit(c->api->engine, ref, &o, &id, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 201, json_pack("{s:s}", "Id", id));
}
