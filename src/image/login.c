/*
 * login.c - `docker login` support: check credentials against a registry,
 * and store or erase them in docker's config.json (so `docker` and berth
 * share one credential file).
 *
 * The file is rewritten atomically (temp + fsync + rename) with mode 0600;
 * other keys in it (credsStore, proxies, ...) are kept as they are.
 */

#include "common/base64.h"
#include "common/fs.h"
#include "common/json.h"
#include "image/remote.h"

#define CONFIG_MAX (1u << 20)

static char *config_dir(void)
{
	const char *dir = getenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	return dir ? xstrdup(dir) : xasprintf("%s/.docker", home ? home : "/root");
}

/* The key docker uses in "auths": the Hub's legacy URL, else the host. */
static const char *auth_key(const char *registry)
{
	if (!registry || !*registry || streq(registry, "docker.io") || streq(registry, "index.docker.io") ||
	    streq(registry, "registry-1.docker.io"))
		return "https://index.docker.io/v1/";
	return registry;
}

int image_login(struct image_store *s, const char *registry, const struct image_auth *auth,
		const struct image_remote_opts *opts, struct berth_error **err)
{
	if (!auth || ((!auth->username || !auth->password) && !auth->identity_token))
		return berth_error_msg(err, EINVAL, "login: username and password required");
	struct image_remote_opts o = opts ? *opts : (struct image_remote_opts){ 0 };
	o.auth = auth;
	struct image_ref ref = { .domain = (char *)(registry && *registry ? registry : "docker.io"),
				 .path = (char *)"" };
	struct remote rm;
	int r = image_remote_open(s, &ref, &o, false, &rm, err);
	if (r < 0)
		return berth_error_wrap(err, r, "login to '%s'", ref.domain);
	_cleanup_free_ char *url = xasprintf("%s/v2/", rm.base);
	_cleanup_strbuf_ struct strbuf body = STRBUF_INIT;
	struct http_req q = { .method = "GET", .url = url, .body = &body, .body_max = 64u << 10 };
	r = image_remote_do(&rm, &q, err);
	if (r >= 0 && q.status != 200)
		r = image_remote_status_error(&q, "login", err);
	image_http_req_done(&q);
	image_remote_done(&rm);
	return r < 0 ? berth_error_wrap(err, r, "login to '%s'", ref.domain) : 0;
}

static int load_config(const char *path, json_t **ret, struct berth_error **err)
{
	if (access(path, F_OK) < 0 && errno == ENOENT) {
		*ret = json_object();
		return 0;
	}
	int r = json_load_path(path, CONFIG_MAX, ret, err);
	if (r >= 0 && !json_is_object(*ret)) {
		json_decref(*ret);
		*ret = NULL; /* callers free *ret on failure too */
		return berth_error_msg(err, EINVAL, "'%s': expected a JSON object", path);
	}
	return r;
}

static int save_config(const char *dir, const char *path, json_t *doc, struct berth_error **err)
{
	int r = fs_mkdir_p(dir, 0700, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *txt = json_dumps(doc, JSON_INDENT(1));
	return fs_write_file_atomic(path, txt, strlen(txt), 0600, err);
}

int image_credentials_store(const char *registry, const char *username, const char *password,
			    struct berth_error **err)
{
	_cleanup_free_ char *dir = config_dir();
	_cleanup_free_ char *path = xasprintf("%s/config.json", dir);
	_cleanup_json_ json_t *doc = NULL;
	int r = load_config(path, &doc, err);
	if (r < 0)
		return r;
	json_t *auths = json_object_get(doc, "auths");
	if (!json_is_object(auths)) {
		auths = json_object();
		json_object_set_new(doc, "auths", auths);
	}
	_cleanup_free_ char *up = xasprintf("%s:%s", username, password);
	_cleanup_free_ char *b64 = base64_encode(up, strlen(up));
	json_object_set_new(auths, auth_key(registry), json_pack("{s:s}", "auth", b64));
	return save_config(dir, path, doc, err);
}

int image_credentials_erase(const char *registry, struct berth_error **err)
{
	_cleanup_free_ char *dir = config_dir();
	_cleanup_free_ char *path = xasprintf("%s/config.json", dir);
	_cleanup_json_ json_t *doc = NULL;
	int r = load_config(path, &doc, err);
	if (r < 0)
		return r;
	json_t *auths = json_object_get(doc, "auths");
	const char *key = auth_key(registry);
	if (!json_is_object(auths) || !json_object_get(auths, key))
		return berth_error_msg(err, ENOENT, "not logged in to '%s'", key);
	json_object_del(auths, key);
	return save_config(dir, path, doc, err);
}
