/*
 * remote.c - the registry-facing routes: POST /images/{name}/push and
 * POST /auth (docker login), and docker's X-Registry-Auth header.
 *
 * The header is base64url (padding optional) of a JSON object
 * {"username", "password", "serveraddress", "identitytoken",
 * "registrytoken"}; an absent or empty header ("{}") means "use the daemon's
 * own config.json" (image library default).
 */
#include "api/remote.h"
#include "api/routes.h"
#include "common/base64.h"
#include "common/json.h"
#include "image/image.h"

#define AUTH_HEADER_MAX (16u << 10)

int api_registry_auth_parse(const char *hdr, json_t **ret, struct berth_error **err)
{
	*ret = NULL;
	size_t n = hdr ? strlen(hdr) : 0;
	if (n == 0)
		return 0;
	if (n > AUTH_HEADER_MAX)
		return berth_error_msg(err, EINVAL, "X-Registry-Auth: header too long");
	/* Everything from the first '=' on is padding, as docker's decoder treats it. */
	size_t k = strcspn(hdr, "=");
	_cleanup_free_ char *body = xstrndup(hdr, k);
	if (strspn(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_") != k)
		return berth_error_msg(err, EINVAL, "X-Registry-Auth: invalid base64");
	if (k % 4 == 1)
		return berth_error_msg(err, EINVAL, "X-Registry-Auth: invalid base64 length");
	_cleanup_free_ void *raw = NULL;
	size_t len;
	if (base64_decode(body, &raw, &len) < 0)
		return berth_error_msg(err, EINVAL, "X-Registry-Auth: invalid base64");
	json_error_t je;
	json_t *j = json_loadb(raw, len, 0, &je);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return berth_error_msg(err, EINVAL, "X-Registry-Auth: invalid JSON");
	}
	static const char *const keys[] = { "username",      "password", "serveraddress", "identitytoken",
					    "registrytoken", "auth",     "email" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(j, keys[i]);
		if (v && !json_is_string(v)) {
			json_decref(j);
			return berth_error_msg(err, EINVAL, "X-Registry-Auth: '%s': expected string",
					       keys[i]);
		}
	}
	*ret = j;
	return 0;
}

bool api_registry_auth_of(const json_t *j, struct image_auth *a)
{
	const char *s;
	*a = (struct image_auth){ 0 };
#define PICK(field, key)                                            \
	if ((s = json_string_value(json_object_get(j, key))) && *s) \
		a->field = s;
	PICK(username, "username");
	PICK(password, "password");
	PICK(identity_token, "identitytoken");
	PICK(registry_token, "registrytoken");
#undef PICK
	return a->username || a->password || a->identity_token || a->registry_token;
}

static void add_line(struct strbuf *sb, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	strbuf_addstr(sb, s);
	strbuf_addstr(sb, "\r\n");
	free(s);
	json_decref(j);
}

json_t *api_progress_json(const struct image_progress *p)
{
	json_t *j = json_pack("{s:s}", "status", p->status ? p->status : "");
	if (p->id)
		json_object_set_new(j, "id", json_string(p->id));
	json_object_set_new(j, "progressDetail",
			    p->total ? json_pack("{s:I,s:I}", "current", (json_int_t)p->current, "total",
						 (json_int_t)p->total)
				     : json_object());
	return j;
}

static void on_progress(const struct image_progress *p, void *userdata)
{
	add_line(userdata, api_progress_json(p));
}

void api_image_push(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *hdr = NULL;
	if (api_registry_auth_parse(http_request_header(c->req, "X-Registry-Auth"), &hdr, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	const char *tag = http_request_query(c->req, "tag");
	_cleanup_free_ char *name = tag && *tag ? xasprintf("%s:%s", c->param[0], tag) : xstrdup(c->param[0]);
	_cleanup_image_ref_ struct image_ref *ref = NULL;
	if (image_ref_parse(name, IMAGE_REF_DEFAULT_TAG | IMAGE_REF_NO_DIGEST, &ref, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	_cleanup_free_ char *id = NULL;
	if (image_resolve(c->api->images, name, &id, &err) < 0) {
		_cleanup_free_ char *fam = image_ref_familiar(ref);
		http_respond_error(c->req, 404, "An image does not exist locally with the tag: %s", fam);
		return;
	}
	struct image_auth auth;
	bool have_auth = api_registry_auth_of(hdr, &auth);
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	_cleanup_free_ char *repo = image_ref_name(ref);
	add_line(&out,
		 json_pack("{s:o}", "status", json_sprintf("The push refers to repository [%s]", repo)));
	struct image_remote_opts o = { .auth = have_auth ? &auth : NULL,
				       .progress = on_progress,
				       .progress_data = &out };
	_cleanup_free_ char *digest = NULL;
	int r = image_push(c->api->images, name, &o, &digest, &err);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		add_line(&out, json_pack("{s:s,s:{s:s}}", "error", m, "errorDetail", "message", m));
	} else {
		api_image_event(c->api, "push", name, name);
		add_line(&out, json_pack("{s:{},s:{s:s,s:s}}", "progressDetail", "aux", "Tag", ref->tag,
					 "Digest", digest));
	}
	size_t len;
	char *body = strbuf_detach(&out, &len);
	http_respond(c->req, 200, "application/json", body, len);
}

void api_auth(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	struct image_auth auth;
	if (!json_is_object(body) || !api_registry_auth_of(body, &auth)) {
		http_respond_error(c->req, 400, "username and password (or identitytoken) are required");
		return;
	}
	json_t *sa = json_object_get(body, "serveraddress");
	if (sa && !json_is_string(sa)) {
		http_respond_error(c->req, 400, "'serveraddress': expected string, got %s",
				   json_type_name(sa));
		return;
	}
	const char *server = json_string_value(sa);
	/* docker sends "https://index.docker.io/v1/" for the Hub and may send a scheme for others */
	_cleanup_free_ char *host = NULL;
	if (server && *server) {
		const char *p = strstr(server, "://");
		p = p ? p + 3 : server;
		host = xstrndup(p, strcspn(p, "/"));
		if (streq(host, "index.docker.io")) {
			free(host);
			host = NULL;
		}
	}
	_cleanup_error_ struct berth_error *err = NULL;
	int r = image_login(c->api->images, host, &auth, NULL, &err);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		http_respond_error(c->req, r == -EINVAL ? 400 : 401, "%s", m ? m : "login failed");
		return;
	}
	http_respond_json(c->req, 200,
			  json_pack("{s:s,s:s}", "Status", "Login Succeeded", "IdentityToken", ""));
}
