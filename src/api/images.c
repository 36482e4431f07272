/*
 * images.c - /images/... routes over the image library (image/image.h):
 * list, inspect, history, tag, remove, import and pull (POST /images/create),
 * load and save. Image names contain '/', so these routes are matched by
 * suffix (api_images_route) rather than by the segment router.
 *
 * Uploads (import, load) are read as they arrive and spooled to an unlinked
 * file under the root (never whole in memory; the library needs a seekable
 * fd), handed to the library; pulls (pull.c) stream their progress as
 * docker's JSON message stream while they run.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>

#include "api/filters.h"
#include "api/routes.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/opttab.h"
#include "common/strv.h"
#include "common/util.h"
#include "engine/engine.h"
#include "image/image.h"

static int body_fd(struct api_call *c)
{
	if (http_request_body_streamed(c->req))
		return api_body_spool(c);
	size_t len;
	const char *body = http_request_body(c->req, &len);
	int fd = memfd_create("berth-upload", MFD_CLOEXEC);
	if (fd < 0 || fs_write_all(fd, body, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		safe_close(fd);
		http_respond_error(c->req, 500, "buffer upload: %s", strerror(errno));
		return -1;
	}
	return fd;
}

/* A dangling= filter's one value, as dockerd's strconv.ParseBool reads it; -1 after a 400. */
static int dangling_value(struct api_call *c, char **dangling)
{
	int d = opttab_parse_bool(dangling[0]);
	if (d < 0 || strv_length(dangling) > 1)
		http_respond_error(c->req, 400, "Invalid filter 'dangling=[%s]'", dangling[0]);
	return d < 0 || strv_length(dangling) > 1 ? -1 : d;
}

/* GET /images/json?filters= (dockerd's keys: reference, dangling, label, before, since) and ?filter= (old).
 */
void api_images_list(struct api_call *c)
{
	static const char *const keys[] = { "reference", "dangling", "label", "before", "since", NULL };
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *fj = NULL;
	if (api_filters_parse(http_request_query(c->req, "filters"), keys, &fj, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	_cleanup_strv_ char **reference = api_filter_values(fj, "reference");
	_cleanup_strv_ char **dangling = api_filter_values(fj, "dangling");
	_cleanup_strv_ char **labels = api_filter_values(fj, "label");
	_cleanup_strv_ char **before = api_filter_values(fj, "before");
	_cleanup_strv_ char **since = api_filter_values(fj, "since");
	const char *legacy = http_request_query(c->req, "filter");
	if (!reference && legacy && *legacy)
		strv_add(&reference, legacy);
	struct image_list_filters f = { .all = http_query_bool(c->req, "all", false),
					.reference = (const char *const *)reference,
					.label = (const char *const *)labels,
					.before = before ? before[0] : NULL,
					.since = since ? since[0] : NULL };
	if (dangling) {
		int d = dangling_value(c, dangling);
		if (d < 0)
			return;
		f.dangling_set = true;
		f.dangling = d;
	}
	int r = image_list(c->api->images, &f, &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_image_inspect(struct api_call *c)
{
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = image_inspect(c->api->images, c->param[0], &out, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	/* dockerd marshals a whole container.Config in both: clients index its members unchecked */
	const char *keys[] = { "Config", "ContainerConfig" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *cfg = json_object_get(out, keys[i]);
		if (!json_is_object(cfg)) {
			cfg = json_object();
			json_object_set_new(out, keys[i], cfg);
		}
		api_config_defaults(cfg);
	}
	http_respond_json(c->req, 200, out);
}

void api_image_history(struct api_call *c)
{
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = image_history(c->api->images, c->param[0], &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

void api_image_tag(struct api_call *c)
{
	const char *repo = http_request_query(c->req, "repo");
	const char *tag = http_request_query(c->req, "tag");
	if (!repo || !*repo) {
		http_respond_error(c->req, 400, "repository name must be given");
		return;
	}
	_cleanup_free_ char *ref = tag && *tag ? xasprintf("%s:%s", repo, tag) : xstrdup(repo);
	_cleanup_error_ struct berth_error *err = NULL;
	int r = image_tag(c->api->images, c->param[0], ref, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	_cleanup_free_ char *id = NULL;
	if (image_resolve(c->api->images, ref, &id, NULL) >= 0)
		api_image_event(c->api, "tag", id, ref);
	http_respond_empty(c->req, 201);
}

/* The image's labels (new object, empty when it has none or is gone): its config blob alone
 * (image_inspect would also sum sizes and list references). */
static json_t *image_labels(struct api *a, const char *id)
{
	_cleanup_json_ json_t *cfg = NULL;
	json_t *labels = json_object();
	if (id && image_get_config(a->images, id, &cfg, NULL) >= 0) {
		const char *k;
		json_t *v;
		json_object_foreach (json_object_get(json_object_get(cfg, "config"), "Labels"), k, v)
			if (json_is_string(v))
				json_object_set(labels, k, v);
	}
	return labels;
}

static void image_event_labelled(struct api *a, const char *action, const char *id, const char *name,
				 const json_t *labels)
{
	_cleanup_json_ json_t *attrs = json_deep_copy(labels);
	json_object_set_new(attrs, "name", json_string(name));
	engine_event_log(a->engine, "image", action, id, attrs);
}

void api_image_event(struct api *a, const char *action, const char *id, const char *name)
{
	_cleanup_json_ json_t *labels = image_labels(a, id);
	image_event_labelled(a, action, id, name, labels);
}

void api_image_removal_events(struct api *a, const char *id, const json_t *labels, const json_t *answer)
{
	size_t i;
	json_t *x;
	_cleanup_json_ json_t *none = json_object();
	json_array_foreach (answer, i, x) {
		const char *untagged = json_string_value(json_object_get(x, "Untagged"));
		const char *deleted = json_string_value(json_object_get(x, "Deleted"));
		/* as dockerd: both name the image by its ID; an untag while the image still exists
		 * carries its labels, its delete (the image gone) none */
		if (untagged && id)
			image_event_labelled(a, "untag", id, id, labels ? labels : none);
		else if (deleted)
			image_event_labelled(a, "delete", deleted, deleted, none);
	}
}

static bool image_in_use(const char *id, char **ret_container, void *ctx)
{
	struct engine *e = ctx;
	struct engine_container_info **list = NULL;
	size_t n = 0;
	bool used = false;
	engine_container_list(e, true, &list, &n, NULL);
	for (size_t i = 0; i < n && !used; i++)
		if (streq(list[i]->image_id, id)) {
			used = true;
			if (ret_container)
				*ret_container = xstrndup(list[i]->id, 12);
		}
	engine_container_info_list_free(list, n);
	return used;
}

void api_image_remove(struct api_call *c)
{
	json_t *out = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int flags = http_query_bool(c->req, "force", false) ? IMAGE_REMOVE_FORCE : IMAGE_REMOVE_DEFAULT;
	engine_removals_wait(c->api->engine, 10000); /* a `run --rm` that returned holds no snapshot */
	_cleanup_free_ char *id = NULL;
	(void)image_resolve(c->api->images, c->param[0], &id, NULL);
	_cleanup_json_ json_t *labels = image_labels(c->api, id);
	int r = image_remove(c->api->images, c->param[0], flags, image_in_use, c->api->engine, &out, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	api_image_removal_events(c->api, id, labels, out);
	http_respond_json(c->req, 200, out);
}

static void import_src(struct api_call *c, const char *ref)
{
	/* docker import -c: the same Dockerfile lines as commit's (CMD, ENTRYPOINT, ENV, EXPOSE,
	 * LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR), applied to an empty config */
	_cleanup_json_ json_t *cfg = json_object();
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_strv_ char **changes = api_query_changes(c);
	/* the body first: an answer before it is read would reach a client still sending */
	_cleanup_close_ int fd = body_fd(c);
	if (fd < 0)
		return;
	if (engine_config_apply_changes(cfg, (const char *const *)changes, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	_cleanup_free_ char *id = NULL;
	int r = image_import(c->api->images, fd, ref, cfg, http_request_query(c->req, "message"), &id, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	api_image_event(c->api, "import", id, id);
	_cleanup_free_ char *line = xasprintf("{\"status\":\"%s\"}\r\n", id);
	http_respond(c->req, 200, "application/json", xstrdup(line), strlen(line));
}

void api_images_create(struct api_call *c)
{
	const char *src = http_request_query(c->req, "fromSrc");
	const char *from = http_request_query(c->req, "fromImage");
	const char *repo = http_request_query(c->req, "repo");
	const char *tag = http_request_query(c->req, "tag");
	if (src && streq(src, "-")) {
		_cleanup_free_ char *ref =
		    repo && *repo ? (tag && *tag ? xasprintf("%s:%s", repo, tag) : xstrdup(repo)) : NULL;
		import_src(c, ref);
	} else if (from && *from) {
		bool digest = tag && startswith(tag, "sha256:");
		_cleanup_free_ char *ref =
		    tag && *tag ? xasprintf("%s%s%s", from, digest ? "@" : ":", tag) : xstrdup(from);
		api_image_pull(c, ref);
	} else {
		http_respond_error(c->req, 400, "fromImage or fromSrc=- is required");
	}
}

void api_images_load(struct api_call *c)
{
	_cleanup_close_ int fd = body_fd(c);
	if (fd < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_strv_ char **loaded = NULL;
	int r = image_load(c->api->images, fd, NULL, NULL, NULL, &loaded, &err);
	/* like dockerd: the answer is a 200 JSON stream once the upload was taken, a failed load
	 * (not an archive, a bad manifest, a full disk) its errorDetail message (docker-py raises
	 * ImageLoadError, the CLI prints it and exits 1) */
	for (char **l = loaded; l && *l; l++) { /* "Loaded image: REF" or "Loaded image ID: ID" */
		const char *what = startswith(*l, "Loaded image ID: ") ? *l + 17
				   : startswith(*l, "Loaded image: ")  ? *l + 14
								       : NULL;
		_cleanup_free_ char *id = NULL;
		if (what && image_resolve(c->api->images, what, &id, NULL) >= 0)
			api_image_event(c->api, "load", id, what);
	}
	struct strbuf out = STRBUF_INIT;
	for (char **l = loaded; r >= 0 && l && *l; l++) {
		_cleanup_free_ char *line = xasprintf("%s\n", *l);
		_cleanup_json_ json_t *j = json_pack("{s:s}", "stream", line);
		char *s = json_dumps(j, JSON_COMPACT);
		strbuf_addstr(&out, s);
		strbuf_addstr(&out, "\r\n");
		free(s);
	}
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		_cleanup_json_ json_t *j = json_pack("{s:{s:s},s:s}", "errorDetail", "message",
						     m ? m : "load failed", "error", m ? m : "load failed");
		char *s = json_dumps(j, JSON_COMPACT);
		strbuf_addstr(&out, s);
		strbuf_addstr(&out, "\r\n");
		free(s);
	}
	size_t len;
	char *body = strbuf_detach(&out, &len);
	http_respond(c->req, 200, "application/json", body, len);
}

struct fd_stream {
	int fd;
};

static int fd_stream_read(void *ctx, struct strbuf *out)
{
	struct fd_stream *f = ctx;
	char buf[64 * 1024];
	ssize_t n = read(f->fd, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 ? -EIO : 1;
	strbuf_add(out, buf, (size_t)n);
	return 0;
}

static void fd_stream_done(void *ctx)
{
	struct fd_stream *f = ctx;
	safe_close(f->fd);
	free(f);
}

static void save(struct api_call *c, const char *const *names)
{
	int fd = api_tmpfile(c);
	_cleanup_error_ struct berth_error *err = NULL;
	if (fd < 0)
		return;
	/* berth extension: ?format=oci writes an OCI image layout (berth build --output type=oci) */
	const char *fmt = http_request_query(c->req, "format");
	enum image_archive_format af = fmt && streq(fmt, "oci") ? IMAGE_ARCHIVE_OCI : IMAGE_ARCHIVE_DOCKER;
	int r = image_save(c->api->images, names, af, fd, &err);
	if (r < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		api_error(c->req, r < 0 ? r : -EIO, err);
		return;
	}
	for (const char *const *n = names; *n; n++) {
		_cleanup_free_ char *id = NULL;
		if (image_resolve(c->api->images, *n, &id, NULL) >= 0)
			api_image_event(c->api, "save", id, id);
	}
	struct fd_stream *f = xcalloc(1, sizeof(*f));
	f->fd = fd;
	http_respond_stream(c->req, 200, "application/x-tar", fd_stream_read, fd_stream_done, f);
}

void api_images_get(struct api_call *c)
{
	/* ?names=a&names=b: docker's CLI sends one per image. */
	_cleanup_strv_ char **names = http_request_query_all(c->req, "names");
	if (!names[0] || !*names[0]) {
		http_respond_error(c->req, 400, "no images given");
		return;
	}
	save(c, (const char *const *)names);
}

void api_image_get(struct api_call *c)
{
	const char *names[] = { c->param[0], NULL };
	save(c, names);
}

api_route_fn api_images_route(const char *method, const char *path, char *name)
{
	static const struct {
		const char *m, *suffix;
		api_route_fn fn;
	} rs[] = {
		{ "GET", "/json", api_image_inspect },    { "POST", "/tag", api_image_tag },
		{ "GET", "/history", api_image_history }, { "GET", "/get", api_image_get },
		{ "DELETE", "", api_image_remove },       { "POST", "/push", api_image_push },
	};
	const char *rest = path + strlen("/images/");
	for (size_t i = 0; i < ARRAY_SIZE(rs); i++) {
		if (!streq(method, rs[i].m) || !endswith(rest, rs[i].suffix))
			continue;
		size_t n = strlen(rest) - strlen(rs[i].suffix);
		if (n == 0 || n >= API_PARAM_MAX)
			continue;
		memcpy(name, rest, n);
		name[n] = '\0';
		return rs[i].fn;
	}
	return NULL;
}

/* Docker's "until" filter: a duration ("24h": that long ago), unix seconds or an RFC 3339 time. */
int api_parse_until(const char *s, int64_t *ret)
{
	int64_t v, ns;
	struct timespec ts;
	if (util_parse_duration_ns(s, &ns) == 0 && ns >= 0) {
		*ret = (int64_t)time(NULL) - ns / 1000000000;
		return 0;
	}
	if (util_parse_int64(s, &v) == 0 && v >= 0) {
		*ret = v;
		return 0;
	}
	if (util_parse_rfc3339(s, &ts) == 0) {
		*ret = (int64_t)ts.tv_sec;
		return 0;
	}
	return -EINVAL;
}

void api_images_prune(struct api_call *c)
{
	static const char *const keys[] = { "dangling", "until", "label", NULL };
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *f = NULL;
	if (api_filters_parse(http_request_query(c->req, "filters"), keys, &f, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	_cleanup_strv_ char **dangling = api_filter_values(f, "dangling");
	_cleanup_strv_ char **until = api_filter_values(f, "until");
	_cleanup_strv_ char **labels = api_filter_values(f, "label");
	bool all = false;
	if (dangling && dangling[0]) {
		int d = dangling_value(c, dangling);
		if (d < 0)
			return;
		all = d == 0;
	}
	int64_t until_unix = 0;
	if (until && until[0] && api_parse_until(until[0], &until_unix) < 0) {
		http_respond_error(c->req, 400, "invalid filter 'until=%s'", until[0]);
		return;
	}
	json_t *out = NULL;
	engine_removals_wait(c->api->engine, 10000);
	int r = image_prune(c->api->images, all, until_unix, (const char *const *)labels, image_in_use,
			    c->api->engine, &out, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	api_image_removal_events(c->api, NULL, NULL, json_object_get(out, "ImagesDeleted"));
	http_respond_json(c->req, 200, out);
}
