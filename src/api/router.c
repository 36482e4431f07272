/*
 * router.c - dispatch by method and path pattern ("/containers/{}/start"),
 * parse JSON bodies with limits, map engine errors to docker's statuses.
 */
#include <fcntl.h>

#include "common/fs.h"
#include "common/memtrim.h"
#include "common/process.h"
#include "host/host.h"
#include "host/netops.h"
#include "api/routes.h"
#include "api/serve.h"
#include "common/json.h"

unsigned api_status_of(int r)
{
	switch (-r) {
	case ENOENT: return 404;
	case EEXIST:
	case EBUSY:
	case ENOTCONN: return 409;
	case EALREADY: return 304;
	case EINVAL:
	case ENOTUNIQ:
	case E2BIG:
	case ERANGE: return 400;
	case EPERM:
	case EACCES: return 403;
	case EOPNOTSUPP: return 501;
	default: return 500;
	}
}

void api_error(struct http_request *req, int r, struct berth_error *err)
{
	unsigned status = api_status_of(r);
	if (status == 304) {
		http_respond_empty(req, 304);
		return;
	}
	_cleanup_free_ char *msg = berth_error_string(err);
	http_respond_error(req, status, "%s", msg ? msg : strerror(-r));
}

/* A streamed upload, spooled to an unlinked file under the root as it arrives: a seekable fd. */
int api_tmpfile(struct api_call *c)
{
	int fd = open(c->api->root, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		http_respond_error(c->req, 500, "create a temporary file: %s", strerror(errno));
	return fd;
}

int api_body_spool(struct api_call *c)
{
	_cleanup_close_ int fd = api_tmpfile(c);
	if (fd < 0)
		return -1;
	char *buf = xmalloc(256 * 1024);
	ssize_t n;
	int w = 0;
	while ((n = http_request_body_read(c->req, buf, 256 * 1024)) > 0 &&
	       (w = fs_write_all(fd, buf, (size_t)n)) >= 0)
		;
	/* the client sees the answer (a full disk) only once it has sent its body: read the rest */
	while (w < 0 && http_request_body_read(c->req, buf, 256 * 1024) > 0)
		;
	free(buf);
	if (n == -EFBIG) {
		http_respond_error(c->req, 413, "request body too large");
		return -1;
	}
	if (n < 0 || w < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		int e = n < 0 ? (int)-n : w < 0 ? -w : errno;
		http_respond_error(c->req, 500, "spool upload: %s", strerror(e));
		return -1;
	}
	return TAKE_FD(fd);
}

int api_body_json(struct http_request *req, json_t **ret, bool required)
{
	size_t len;
	const char *body = http_request_body(req, &len);
	if (len == 0 || strspn(body, " \t\r\n") == len) {
		if (required) {
			http_respond_error(req, 400, "request body is required");
			return -EINVAL;
		}
		*ret = NULL;
		return 0;
	}
	_cleanup_error_ struct berth_error *err = NULL;
	int r = json_parse(body, len, "request body", ret, &err);
	if (r < 0) {
		api_error(req, -EINVAL, err);
		return r;
	}
	return 0;
}

/* Match pattern segments against the path; "{}" captures one segment. */
static bool match(const char *pattern, const char *path, char caps[API_MAX_PARAMS][API_PARAM_MAX],
		  size_t *ncap)
{
	*ncap = 0;
	while (*pattern && *path) {
		if (*pattern != '/' || *path != '/')
			return false;
		pattern++, path++;
		size_t pl = strcspn(pattern, "/"), sl = strcspn(path, "/");
		if (pl == 2 && !strncmp(pattern, "{}", 2)) {
			if (sl == 0 || sl >= API_PARAM_MAX || *ncap >= API_MAX_PARAMS)
				return false;
			memcpy(caps[*ncap], path, sl);
			caps[(*ncap)++][sl] = '\0';
		} else if (pl != sl || strncmp(pattern, path, pl)) {
			return false;
		}
		pattern += pl, path += sl;
	}
	if (*path == '/' && path[1] == '\0')
		path++;
	return *pattern == '\0' && *path == '\0';
}

static const struct api_route routes[] = {
	{ "GET", "/_ping", api_ping, API_IO_THREAD },
	{ "HEAD", "/_ping", api_ping, API_IO_THREAD },
	{ "GET", "/version", api_version, API_IO_THREAD },
	{ "GET", "/info", api_info },
	{ "GET", "/events", api_events },
	{ "GET", "/containers/json", api_containers_list },
	{ "POST", "/containers/create", api_container_create },
	{ "POST", "/containers/prune", api_containers_prune },
	{ "GET", "/containers/{}/json", api_container_inspect },
	{ "POST", "/containers/{}/start", api_container_start },
	{ "POST", "/containers/{}/stop", api_container_stop },
	{ "POST", "/containers/{}/restart", api_container_restart },
	{ "POST", "/containers/{}/kill", api_container_kill },
	{ "POST", "/containers/{}/pause", api_container_pause },
	{ "POST", "/containers/{}/unpause", api_container_unpause },
	{ "POST", "/containers/{}/wait", api_container_wait, API_IO_THREAD },
	{ "POST", "/containers/{}/rename", api_container_rename },
	{ "POST", "/containers/{}/update", api_container_update },
	{ "POST", "/containers/{}/resize", api_container_resize },
	{ "POST", "/containers/{}/attach", api_container_attach },
	{ "DELETE", "/containers/{}", api_container_remove },
	{ "GET", "/containers/{}/logs", api_container_logs },
	{ "GET", "/containers/{}/top", api_container_top },
	{ "GET", "/containers/{}/stats", api_container_stats },
	{ "HEAD", "/containers/{}/archive", api_container_archive_head },
	{ "GET", "/containers/{}/archive", api_container_archive_get },
	{ "PUT", "/containers/{}/archive", api_container_archive_put },
	{ "GET", "/containers/{}/changes", api_container_changes },
	{ "GET", "/containers/{}/export", api_container_export },
	{ "POST", "/commit", api_commit },
	{ "POST", "/containers/{}/exec", api_exec_create },
	{ "POST", "/exec/{}/start", api_exec_start },
	{ "POST", "/exec/{}/resize", api_exec_resize },
	{ "GET", "/exec/{}/json", api_exec_inspect, API_IO_THREAD },
	{ "GET", "/volumes", api_volumes_list },
	{ "POST", "/volumes/create", api_volume_create },
	{ "GET", "/volumes/{}", api_volume_inspect },
	{ "DELETE", "/volumes/{}", api_volume_remove },
	{ "GET", "/networks", api_networks_list },
	{ "POST", "/networks/create", api_network_create },
	{ "POST", "/networks/prune", api_networks_prune },
	{ "GET", "/networks/{}", api_network_inspect },
	{ "DELETE", "/networks/{}", api_network_remove },
	{ "POST", "/networks/{}/connect", api_network_connect },
	{ "POST", "/networks/{}/disconnect", api_network_disconnect },
	{ "POST", "/build", api_build },
	{ "POST", "/build/prune", api_build_prune },
	{ "GET", "/images/json", api_images_list },
	{ "POST", "/images/create", api_images_create },
	{ "POST", "/images/load", api_images_load },
	{ "GET", "/images/get", api_images_get },
	{ "POST", "/images/prune", api_images_prune },
	{ "POST", "/auth", api_auth },
	{ "GET", "/system/df", api_system_df },
	{ "POST", "/volumes/prune", api_volumes_prune },
	{ "GET", "/images/{}/json", api_image_inspect },
	{ "POST", "/images/{}/tag", api_image_tag },
	{ "DELETE", "/images/{}", api_image_remove },
	/* swarm mode (moby api/server/router/swarm): never a member, never a manager */
	{ "GET", "/swarm", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/swarm/init", api_swarm_unsupported, API_IO_THREAD },
	{ "POST", "/swarm/join", api_swarm_unsupported, API_IO_THREAD },
	{ "POST", "/swarm/leave", api_swarm_not_member, API_IO_THREAD },
	{ "POST", "/swarm/update", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/swarm/unlockkey", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/swarm/unlock", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/services", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/services/create", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/services/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "DELETE", "/services/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/services/{}/update", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/services/{}/logs", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/nodes", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/nodes/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "DELETE", "/nodes/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/nodes/{}/update", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/tasks", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/tasks/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/tasks/{}/logs", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/secrets", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/secrets/create", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/secrets/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "DELETE", "/secrets/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/secrets/{}/update", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/configs", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/configs/create", api_swarm_not_manager, API_IO_THREAD },
	{ "GET", "/configs/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "DELETE", "/configs/{}", api_swarm_not_manager, API_IO_THREAD },
	{ "POST", "/configs/{}/update", api_swarm_not_manager, API_IO_THREAD },
};

/*
 * The route for method and path, its captures in caps; NULL when none (*path_matched: the path
 * has a route for another method). /images/<name with slashes> routes are not in the table
 * (api_images_route).
 */
static const struct api_route *route_find(const char *method, const char *path,
					  char caps[API_MAX_PARAMS][API_PARAM_MAX], bool *path_matched)
{
	size_t ncap;
	*path_matched = false;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (!match(routes[i].pattern, path, caps, &ncap))
			continue;
		*path_matched = true;
		if (streq(routes[i].method, method))
			return &routes[i];
	}
	return NULL;
}

bool api_route_exists(const char *method, const char *path)
{
	char caps[API_MAX_PARAMS][API_PARAM_MAX];
	bool path_matched;
	if (route_find(method, path, caps, &path_matched))
		return true;
	return startswith(path, "/images/") && api_images_route(method, path, caps[0]) != NULL;
}

/* A client too old or too new for us (dockerd's VersionMiddleware): answered with an error before
 * any route. */
static bool version_too_old(const char *v)
{
	return v && strverscmp(v, API_MIN_VERSION) < 0;
}

static bool version_too_new(const char *v)
{
	return v && strverscmp(v, API_MAX_REQUEST_VERSION) > 0;
}

bool api_route_inline(const char *method, const char *path, const char *version)
{
	if (version_too_old(version) || version_too_new(version))
		return true;
	char caps[API_MAX_PARAMS][API_PARAM_MAX];
	bool path_matched;
	const struct api_route *rt = route_find(method, path, caps, &path_matched);
	if (rt)
		return rt->io_thread;
	/* no route: a 404 or 405 at once (an image name is matched by the images routes) */
	return !startswith(path, "/images/");
}

bool api_run_inline(struct http_request *req, void *userdata)
{
	(void)userdata;
	return api_route_inline(http_request_method(req), http_request_path(req), http_request_version(req));
}

void api_init(struct api *a, struct host *h, const char *detach_keys)
{
	*a = (struct api){ .host = h,
			   .engine = h->engine,
			   .images = h->images,
			   .netops = h->net,
			   .root = h->root,
			   .started_ns = proc_now_ns(),
			   .detach_keys = detach_keys };
}

/* Requests whose work maps libarchive/OpenSSL and grows the heap: the daemon trims after them (memtrim.h). */
static bool bulk_request(const char *method, const char *path)
{
	return api_body_stream(method, path, NULL) || streq(path, "/images/get") || streq(path, "/commit") ||
	       (startswith(path, "/images/") && (endswith(path, "/get") || endswith(path, "/push"))) ||
	       (startswith(path, "/containers/") &&
		(endswith(path, "/export") || endswith(path, "/archive")));
}

static void dispatch(struct http_request *req, struct api *api, const char *method, const char *path)
{
	const char *v = http_request_version(req);
	http_response_header(req, "Api-Version", API_VERSION);
	http_response_header(req, "Docker-Experimental", "false");
	http_response_header(req, "Ostype", "linux");
	if (version_too_old(v)) {
		http_respond_error(req, 400,
				   "client version %s is too old. Minimum supported API version is %s, "
				   "please upgrade your client to a newer version",
				   v, API_MIN_VERSION);
		return;
	}
	if (version_too_new(v)) {
		http_respond_error(req, 400,
				   "client version %s is too new. Maximum supported API version is %s", v,
				   API_MAX_REQUEST_VERSION);
		return;
	}
	char caps[API_MAX_PARAMS][API_PARAM_MAX];
	bool path_matched;
	const struct api_route *rt = route_find(method, path, caps, &path_matched);
	if (rt) {
		struct api_call call = { api, req, { caps[0], caps[1] } };
		rt->fn(&call);
		return;
	}
	if (startswith(path, "/images/")) {
		api_route_fn fn = api_images_route(method, path, caps[0]);
		if (fn) {
			struct api_call call = { api, req, { caps[0], caps[1] } };
			fn(&call);
			return;
		}
	}
	if (path_matched)
		http_respond_error(req, 405, "method %s not allowed for %s", method, path);
	else
		http_respond_error(req, 404, "page not found");
}

void api_handle(struct http_request *req, void *userdata)
{
	const char *method = http_request_method(req);
	const char *path = http_request_path(req);
	bool bulk = bulk_request(method, path);
	if (bulk)
		memtrim_note();
	dispatch(req, userdata, method, path);
	if (bulk) /* the idle delay counts from the end of its synchronous part */
		memtrim_note();
}
