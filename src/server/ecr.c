/*
 * ecr.c - the Amazon ECR API (X-Amz-Target AmazonEC2ContainerRegistry_V20150921.*,
 * awsJson1_1, SigV4 service "ecr") on the server's endpoint: repositories in
 * the store, images in the registry the server runs (ecr-registry.c), the
 * rule and scan logic in src/ecr/. Shapes and errors follow botocore's ecr
 * 2015-09-21 model. See docs/ecr.md.
 */
#include <ctype.h>
#include <inttypes.h>

#include "common/base64.h"
#include "common/digest.h"
#include "common/json.h"
#include "common/util.h"
#include "ecr/ecr.h"
#include "registry/registry.h"
#include "server/internal.h"

#define REPO_NAME_MAX 256
#define LIST_LIMIT    1000

static const char INVALID[] = "InvalidParameterException";

/* ECR's repositoryName: (?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*, 2..256. */
static bool repo_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || n > REPO_NAME_MAX)
		return false;
	bool prev_alnum = false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			prev_alnum = true;
		} else if (ch == '.' || ch == '_' || ch == '-' || ch == '/') {
			if (!prev_alnum || i + 1 == n)
				return false;
			prev_alnum = false;
		} else {
			return false;
		}
	}
	return true;
}

/* Tags: letters, digits, and _.- (at most 128), as the registry's grammar. */
static bool image_tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

static int bad_repo_name(struct ecs_call *c)
{
	return server_ecs_fail(
	    c, INVALID,
	    "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular "
	    "expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*' and be 2 to 256 "
	    "characters'");
}

static int no_repo(struct ecs_call *c, const char *name)
{
	return server_ecs_fail(c, "RepositoryNotFoundException",
			       "The repository with name '%s' does not exist in the registry with id '%s'",
			       name, c->srv->account);
}

/* repositoryName of the request, its record (caller decrefs) and revision. */
static int load_repo(struct ecs_call *c, json_t *in, const char **ret_name, json_t **ret, int64_t *ret_rev)
{
	const char *name;
	if (server_ecs_str(c, in, "repositoryName", true, &name) < 0)
		return -1;
	*ret_name = name;
	if (!repo_name_valid(name))
		return bad_repo_name(c);
	_cleanup_free_ char *key = server_ecr_repo_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	int r = server_record_get(c->srv, key, ret, ret_rev, &err);
	if (r == -ENOENT)
		return no_repo(c, name);
	return r < 0 ? server_ecs_internal(c, err) : 0;
}

/* The repository as ECR shows it (private fields removed). */
static json_t *repo_view(json_t *rec)
{
	json_t *v = json_deep_copy(rec);
	json_object_del(v, "tags");
	json_object_del(v, "lifecyclePolicyText");
	return v;
}

static int put_repo(struct ecs_call *c, const char *name, json_t *rec, int64_t rev)
{
	_cleanup_free_ char *key = server_ecr_repo_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	bool ok = false;
	if (server_record_cas(c->srv, key, rec, rev, &ok, &err) < 0)
		return server_ecs_internal(c, err);
	if (!ok)
		return server_ecs_fail(c, "ServerException", "the repository changed concurrently; retry");
	return 0;
}

static int mutability(struct ecs_call *c, json_t *in, const char **ret)
{
	if (server_ecs_str(c, in, "imageTagMutability", false, ret) < 0)
		return -1;
	if (!*ret)
		*ret = "MUTABLE";
	if (!streq(*ret, "MUTABLE") && !streq(*ret, "IMMUTABLE"))
		return server_ecs_fail(
		    c, INVALID,
		    "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member "
		    "must satisfy enum value set: [IMMUTABLE, MUTABLE]'");
	return 0;
}

static int scanning_config(struct ecs_call *c, json_t *in, bool *ret)
{
	json_t *cfg = json_object_get(in, "imageScanningConfiguration");
	if (!cfg)
		return 0;
	json_t *v = json_object_get(cfg, "scanOnPush");
	if (!json_is_object(cfg) || (v && !json_is_boolean(v)))
		return server_ecs_fail(c, "SerializationException",
				       "'imageScanningConfiguration.scanOnPush': expected a "
				       "boolean");
	*ret = json_is_true(v);
	return 0;
}

static int check_tags(struct ecs_call *c, json_t *tags)
{
	if (!tags)
		return 0;
	if (!json_is_array(tags) || json_array_size(tags) > 50)
		return server_ecs_fail(c, "InvalidTagParameterException",
				       "tags must be a list of at most 50 tags");
	size_t i;
	json_t *t;
	json_array_foreach (tags, i, t) {
		const char *k = json_string_value(json_object_get(t, "Key"));
		json_t *v = json_object_get(t, "Value");
		if (!k || !*k || strlen(k) > 128 ||
		    (v && (!json_is_string(v) || strlen(json_string_value(v)) > 256)))
			return server_ecs_fail(
			    c, "InvalidTagParameterException",
			    "tags[%zu]: Key (1-128 characters) and Value (at most 256) are required", i);
	}
	return 0;
}

/* ---- pagination of object lists: nextToken is the base64 of the next offset ---- */

static int paginate(struct ecs_call *c, json_t *in, json_t *all, const char *key, json_t *out, int64_t limit)
{
	int64_t max = limit;
	const char *token = NULL;
	if (server_ecs_int(c, in, "maxResults", 1, limit, &max) < 0 ||
	    server_ecs_str(c, in, "nextToken", false, &token) < 0)
		return -1;
	size_t start = 0;
	if (token && *token) {
		void *d = NULL;
		size_t n = 0;
		uint64_t off;
		int bad = base64_decode(token, &d, &n) < 0 || util_parse_uint64(d, &off) < 0 ||
			  off > json_array_size(all);
		free(d);
		if (bad)
			return server_ecs_fail(c, INVALID,
					       "Invalid parameter at 'nextToken': the token is not valid");
		start = (size_t)off;
	}
	json_t *page = json_array();
	for (size_t i = start; i < json_array_size(all); i++) {
		if ((int64_t)json_array_size(page) == max) {
			char buf[32];
			snprintf(buf, sizeof(buf), "%zu", i);
			_cleanup_free_ char *t = base64_encode(buf, strlen(buf));
			json_object_set_new(out, "nextToken", json_string(t));
			break;
		}
		json_array_append(page, json_array_get(all, i));
	}
	json_object_set_new(out, key, page);
	return 0;
}

/* ---- repositories ---- */

static int create_repository(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	const char *name, *mut;
	bool scan = false;
	json_t *tags = json_object_get(in, "tags");
	if (server_ecs_str(c, in, "repositoryName", true, &name) < 0 || mutability(c, in, &mut) < 0 ||
	    scanning_config(c, in, &scan) < 0 || check_tags(c, tags) < 0)
		return -1;
	if (!repo_name_valid(name))
		return bad_repo_name(c);
	json_t *enc = json_object_get(in, "encryptionConfiguration");
	const char *et = json_string_value(json_object_get(enc, "encryptionType"));
	if (enc && et && !streq(et, "AES256") && !streq(et, "KMS"))
		return server_ecs_fail(c, INVALID,
				       "encryptionConfiguration.encryptionType must be AES256 or KMS");
	_cleanup_free_ char *arn = xasprintf("arn:aws:ecr:%s:%s:repository/%s", s->region, s->account, name);
	_cleanup_free_ char *uri = xasprintf("%s/%s", c->registry, name);
	json_t *rec =
	    json_pack("{s:s,s:s,s:s,s:s,s:f,s:s,s:{s:b},s:{s:s}}", "repositoryArn", arn, "registryId",
		      s->account, "repositoryName", name, "repositoryUri", uri, "createdAt",
		      server_record_now(), "imageTagMutability", mut, "imageScanningConfiguration",
		      "scanOnPush", scan, "encryptionConfiguration", "encryptionType", et ? et : "AES256");
	if (tags)
		json_object_set(rec, "tags", tags);
	_cleanup_free_ char *key = server_ecr_repo_key(name);
	_cleanup_error_ struct berth_error *err = NULL;
	bool ok = false;
	int r = server_record_cas(s, key, rec, 0, &ok, &err);
	if (r < 0) {
		json_decref(rec);
		return server_ecs_internal(c, err);
	}
	if (!ok) {
		json_decref(rec);
		return server_ecs_fail(
		    c, "RepositoryAlreadyExistsException",
		    "The repository with name '%s' already exists in the registry with id '%s'", name,
		    s->account);
	}
	*out = json_pack("{s:o}", "repository", repo_view(rec));
	json_decref(rec);
	return 0;
}

static int describe_repositories(struct ecs_call *c, json_t *in, json_t **out)
{
	json_t *names;
	if (server_ecs_strv(c, in, "repositoryNames", &names) < 0)
		return -1;
	_cleanup_json_ json_t *all = json_array();
	if (names) {
		size_t i;
		json_t *n;
		json_array_foreach (names, i, n) {
			json_t *fake = json_pack("{s:O}", "repositoryName", n), *rec = NULL;
			const char *name;
			int64_t rev;
			int r = load_repo(c, fake, &name, &rec, &rev);
			json_decref(fake);
			if (r < 0)
				return -1;
			json_array_append_new(all, repo_view(rec));
			json_decref(rec);
		}
	} else {
		_cleanup_json_ json_t *recs = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (server_record_list(c->srv, ECR_REPOS_PREFIX, &recs, &err) < 0)
			return server_ecs_internal(c, err);
		size_t i;
		json_t *rec;
		json_array_foreach (recs, i, rec)
			json_array_append_new(all, repo_view(rec));
	}
	*out = json_object();
	return paginate(c, in, all, "repositories", *out, LIST_LIMIT);
}

static int delete_repository(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	const char *name;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	json_t *force = json_object_get(in, "force");
	if (force && !json_is_boolean(force))
		return server_ecs_fail(c, "SerializationException", "'force': expected a boolean");
	if (load_repo(c, in, &name, &rec, &rev) < 0)
		return -1;
	_cleanup_json_ json_t *imgs = server_ecr_images(s, name);
	if (json_array_size(imgs) && !json_is_true(force))
		return server_ecs_fail(
		    c, "RepositoryNotEmptyException",
		    "The repository with name '%s' in registry with id '%s' cannot be deleted because "
		    "it still contains images",
		    name, s->account);
	_cleanup_free_ char *key = server_ecr_repo_key(name);
	_cleanup_free_ char *images = xasprintf(ECR_IMAGES_PREFIX "%s@", name);
	_cleanup_free_ char *meta = xasprintf(ECR_META_PREFIX "%s", name);
	_cleanup_error_ struct berth_error *err = NULL;
	/* the record first: from then on pushes are refused, then the contents go */
	if (store_remove(s->store, key, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	struct store_kv_list l;
	if (store_range(s->store, images, NULL, 0, &l, NULL) == 0) {
		for (size_t i = 0; i < l.n; i++)
			store_remove(s->store, l.kvs[i].key, NULL, NULL);
		store_kv_list_done(&l);
	}
	store_remove(s->store, meta, NULL, NULL);
	if (registry_repo_delete(server_ecr_registry(s), name, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_pack("{s:o}", "repository", repo_view(rec));
	return 0;
}

static int put_image_tag_mutability(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name, *mut;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, &name, &rec, &rev) < 0)
		return -1;
	if (!json_object_get(in, "imageTagMutability"))
		return server_ecs_fail(c, INVALID, "imageTagMutability can not be blank.");
	if (mutability(c, in, &mut) < 0)
		return -1;
	json_object_set_new(rec, "imageTagMutability", json_string(mut));
	if (put_repo(c, name, rec, rev) < 0)
		return -1;
	*out = json_pack("{s:s,s:s,s:s}", "registryId", c->srv->account, "repositoryName", name,
			 "imageTagMutability", mut);
	return 0;
}

static int put_image_scanning_configuration(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	bool scan = false;
	if (load_repo(c, in, &name, &rec, &rev) < 0 || scanning_config(c, in, &scan) < 0)
		return -1;
	json_object_set_new(rec, "imageScanningConfiguration", json_pack("{s:b}", "scanOnPush", scan));
	if (put_repo(c, name, rec, rev) < 0)
		return -1;
	*out = json_pack("{s:s,s:s,s:{s:b}}", "registryId", c->srv->account, "repositoryName", name,
			 "imageScanningConfiguration", "scanOnPush", scan);
	return 0;
}

static int list_tags_for_resource(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *arn;
	if (server_ecs_str(c, in, "resourceArn", true, &arn) < 0)
		return -1;
	const char *p = strstr(arn, ":repository/");
	if (!startswith(arn, "arn:aws:ecr:") || !p)
		return server_ecs_fail(
		    c, INVALID, "Invalid parameter at 'resourceArn': '%s' is not a repository ARN", arn);
	json_t *fake = json_pack("{s:s}", "repositoryName", p + strlen(":repository/")), *rec = NULL;
	const char *name;
	int64_t rev;
	int r = load_repo(c, fake, &name, &rec, &rev);
	if (r == 0) {
		json_t *tags = json_object_get(rec, "tags");
		*out = json_pack("{s:o}", "tags", tags ? json_incref(tags) : json_array());
	}
	json_decref(rec);
	json_decref(fake);
	return r;
}

/* ---- images ---- */

static bool image_has_tag(json_t *img, const char *tag)
{
	return json_strv_contains(json_object_get(img, "imageTags"), tag);
}

static json_t *find_image(json_t *imgs, const char *digest, const char *tag)
{
	size_t i;
	json_t *img;
	json_array_foreach (imgs, i, img) {
		if (digest && !streq(json_string_value(json_object_get(img, "imageDigest")), digest))
			continue;
		if (tag && !image_has_tag(img, tag))
			continue;
		return img;
	}
	return NULL;
}

/* filter.tagStatus: TAGGED, UNTAGGED, ANY (default). */
static int tag_filter(struct ecs_call *c, json_t *in, const char **ret)
{
	json_t *f = json_object_get(in, "filter");
	*ret = "ANY";
	if (!f)
		return 0;
	const char *ts = json_string_value(json_object_get(f, "tagStatus"));
	if (!json_is_object(f) || (json_object_get(f, "tagStatus") && !ts))
		return server_ecs_fail(c, "SerializationException", "'filter.tagStatus': expected a string");
	if (ts && !streq(ts, "TAGGED") && !streq(ts, "UNTAGGED") && !streq(ts, "ANY"))
		return server_ecs_fail(
		    c, INVALID,
		    "Invalid parameter at 'filter.tagStatus' failed to satisfy constraint: 'Member must "
		    "satisfy enum value set: [TAGGED, UNTAGGED, ANY]'");
	if (ts)
		*ret = ts;
	return 0;
}

static bool passes(json_t *img, const char *status)
{
	size_t n = json_array_size(json_object_get(img, "imageTags"));
	return streq(status, "ANY") || (streq(status, "TAGGED") ? n > 0 : n == 0);
}

static int list_images(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name, *status;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, &name, &rec, &rev) < 0 || tag_filter(c, in, &status) < 0)
		return -1;
	_cleanup_json_ json_t *imgs = server_ecr_images(c->srv, name);
	_cleanup_json_ json_t *ids = json_array();
	size_t i, j;
	json_t *img, *t;
	json_array_foreach (imgs, i, img) {
		if (!passes(img, status))
			continue;
		json_t *d = json_object_get(img, "imageDigest"), *tags = json_object_get(img, "imageTags");
		if (json_array_size(tags) == 0)
			json_array_append_new(ids, json_pack("{s:O}", "imageDigest", d));
		json_array_foreach (tags, j, t)
			json_array_append_new(ids, json_pack("{s:O,s:O}", "imageDigest", d, "imageTag", t));
	}
	*out = json_object();
	return paginate(c, in, ids, "imageIds", *out, LIST_LIMIT);
}

/* imageIds of a request: [{imageDigest?, imageTag?}], at least one of them each. */
static int image_ids(struct ecs_call *c, json_t *in, bool required, json_t **ret)
{
	json_t *ids = json_object_get(in, "imageIds");
	*ret = ids;
	if (!ids) {
		if (required)
			return server_ecs_fail(c, INVALID, "imageIds can not be blank.");
		return 0;
	}
	if (!json_is_array(ids) || (required && json_array_size(ids) == 0) || json_array_size(ids) > 100)
		return server_ecs_fail(
		    c, INVALID,
		    "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member "
		    "must have length between 1 and 100'");
	size_t i;
	json_t *id;
	json_array_foreach (ids, i, id) {
		json_t *d = json_object_get(id, "imageDigest"), *t = json_object_get(id, "imageTag");
		if (!json_is_object(id) || (d && !json_is_string(d)) || (t && !json_is_string(t)))
			return server_ecs_fail(c, "SerializationException",
					       "'imageIds[%zu]': expected {imageDigest, "
					       "imageTag}",
					       i);
	}
	return 0;
}

static char *image_id_text(json_t *id)
{
	const char *d = json_string_value(json_object_get(id, "imageDigest"));
	const char *t = json_string_value(json_object_get(id, "imageTag"));
	return xasprintf("{imageDigest:'%s', imageTag:'%s'}", d ? d : "null", t ? t : "null");
}

/* Why an imageId does not name an image of imgs (a failureCode), or NULL when it does. */
static const char *id_failure(json_t *imgs, json_t *id, json_t **ret_img)
{
	const char *d = json_string_value(json_object_get(id, "imageDigest"));
	const char *t = json_string_value(json_object_get(id, "imageTag"));
	*ret_img = NULL;
	if (!d && !t)
		return "MissingDigestAndTag";
	if (d && !digest_valid(d))
		return "InvalidImageDigest";
	if (t && !image_tag_valid(t))
		return "InvalidImageTag";
	json_t *img = find_image(imgs, d, t);
	if (!img && d && t && find_image(imgs, d, NULL))
		return "ImageTagDoesNotMatchDigest";
	*ret_img = img;
	return img ? NULL : "ImageNotFound";
}

static json_t *scan_status(json_t *img)
{
	json_t *scan = json_object_get(img, "scan");
	if (!scan)
		return NULL;
	return json_pack("{s:O,s:O}", "status", json_object_get(scan, "status"), "description",
			 json_object_get(scan, "description"));
}

static json_t *image_detail(struct server *s, const char *repo, json_t *img)
{
	json_t *o = json_pack("{s:s,s:s,s:O,s:O,s:O,s:O,s:O}", "registryId", s->account, "repositoryName",
			      repo, "imageDigest", json_object_get(img, "imageDigest"), "imageTags",
			      json_object_get(img, "imageTags"), "imageSizeInBytes",
			      json_object_get(img, "imageSizeInBytes"), "imagePushedAt",
			      json_object_get(img, "imagePushedAt"), "imageManifestMediaType",
			      json_object_get(img, "imageManifestMediaType"));
	if (json_array_size(json_object_get(img, "imageTags")) == 0)
		json_object_del(o, "imageTags");
	if (json_object_get(img, "artifactMediaType"))
		json_object_set(o, "artifactMediaType", json_object_get(img, "artifactMediaType"));
	json_t *scan = json_object_get(img, "scan");
	if (scan) {
		json_object_set_new(o, "imageScanStatus", scan_status(img));
		if (json_object_get(scan, "findingSeverityCounts"))
			json_object_set_new(
			    o, "imageScanFindingsSummary",
			    json_pack("{s:O,s:O,s:O}", "imageScanCompletedAt",
				      json_object_get(scan, "completedAt"), "vulnerabilitySourceUpdatedAt",
				      json_object_get(scan, "feedUpdatedAt"), "findingSeverityCounts",
				      json_object_get(scan, "findingSeverityCounts")));
	}
	return o;
}

static int image_not_found(struct ecs_call *c, json_t *id, const char *repo)
{
	_cleanup_free_ char *t = image_id_text(id);
	return server_ecs_fail(
	    c, "ImageNotFoundException",
	    "The image with imageId %s does not exist within the repository with name '%s' in the "
	    "registry with id '%s'",
	    t, repo, c->srv->account);
}

static int describe_images(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name, *status;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	json_t *ids;
	if (load_repo(c, in, &name, &rec, &rev) < 0 || tag_filter(c, in, &status) < 0 ||
	    image_ids(c, in, false, &ids) < 0)
		return -1;
	_cleanup_json_ json_t *imgs = server_ecr_images(c->srv, name);
	_cleanup_json_ json_t *all = json_array();
	size_t i;
	json_t *img, *id;
	if (ids) {
		json_array_foreach (ids, i, id) {
			const char *why = id_failure(imgs, id, &img);
			if (why && streq(why, "ImageNotFound"))
				return image_not_found(c, id, name);
			if (why)
				return server_ecs_fail(c, INVALID, "imageIds[%zu]: %s", i, why);
			json_array_append_new(all, image_detail(c->srv, name, img));
		}
	} else {
		json_array_foreach (imgs, i, img)
			if (passes(img, status))
				json_array_append_new(all, image_detail(c->srv, name, img));
	}
	*out = json_object();
	return paginate(c, in, all, "imageDetails", *out, LIST_LIMIT);
}

static json_t *failure(json_t *id, const char *code, const char *reason)
{
	return json_pack("{s:O,s:s,s:s}", "imageId", id, "failureCode", code, "failureReason", reason);
}

static const char *failure_reason(const char *code)
{
	return streq(code, "ImageNotFound")                ? "Requested image not found"
	       : streq(code, "ImageTagDoesNotMatchDigest") ? "Invalid image tag for image digest"
	       : streq(code, "MissingDigestAndTag") ? "Either imageDigest or imageTag must be specified"
	       : streq(code, "InvalidImageDigest")
		   ? "Invalid request parameters: image digest should satisfy "
		     "the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"
		   : "Invalid request parameters: image tag is not valid";
}

static int batch_get_image(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	json_t *ids, *accepted;
	if (load_repo(c, in, &name, &rec, &rev) < 0 || image_ids(c, in, true, &ids) < 0 ||
	    server_ecs_strv(c, in, "acceptedMediaTypes", &accepted) < 0)
		return -1;
	_cleanup_json_ json_t *imgs = server_ecr_images(c->srv, name);
	json_t *images = json_array(), *failures = json_array();
	size_t i;
	json_t *id, *img;
	json_array_foreach (ids, i, id) {
		const char *why = id_failure(imgs, id, &img);
		if (why) {
			json_array_append_new(failures, failure(id, why, failure_reason(why)));
			continue;
		}
		const char *digest = json_string_value(json_object_get(img, "imageDigest"));
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		_cleanup_free_ char *mt = NULL;
		if (registry_manifest_read(server_ecr_registry(c->srv), name, digest, &sb, &mt) < 0) {
			json_array_append_new(failures,
					      failure(id, "ImageNotFound", failure_reason("ImageNotFound")));
			continue;
		}
		if (json_array_size(accepted) && !json_strv_contains(accepted, mt)) {
			json_array_append_new(failures,
					      failure(id, "UnsupportedImageType",
						      "The image's manifest media type is not accepted"));
			continue;
		}
		json_t *iid = json_pack("{s:s}", "imageDigest", digest);
		const char *tag = json_string_value(json_object_get(id, "imageTag"));
		if (tag)
			json_object_set_new(iid, "imageTag", json_string(tag));
		json_array_append_new(images,
				      json_pack("{s:s,s:s,s:o,s:s%,s:s}", "registryId", c->srv->account,
						"repositoryName", name, "imageId", iid, "imageManifest",
						sb.buf, sb.len, "imageManifestMediaType", mt));
	}
	*out = json_pack("{s:o,s:o}", "images", images, "failures", failures);
	return 0;
}

static int batch_delete_image(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	const char *name;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	json_t *ids;
	if (load_repo(c, in, &name, &rec, &rev) < 0 || image_ids(c, in, true, &ids) < 0)
		return -1;
	struct registry *reg = server_ecr_registry(s);
	json_t *deleted = json_array(), *failures = json_array();
	size_t i;
	json_t *id, *img;
	json_array_foreach (ids, i, id) {
		_cleanup_json_ json_t *imgs = server_ecr_images(s, name); /* fresh: earlier ids changed it */
		const char *why = id_failure(imgs, id, &img);
		if (why) {
			json_array_append_new(failures, failure(id, why, failure_reason(why)));
			continue;
		}
		const char *digest = json_string_value(json_object_get(img, "imageDigest"));
		const char *tag = json_string_value(json_object_get(id, "imageTag"));
		json_t *tags = json_object_get(img, "imageTags");
		bool whole = !tag || json_array_size(tags) <= 1; /* removing the last tag deletes the image */
		if (whole) {
			registry_image_delete(reg, name, digest);
			_cleanup_free_ char *key = server_ecr_image_key(name, digest);
			store_remove(s->store, key, NULL, NULL);
			if (tag) {
				json_array_append_new(
				    deleted, json_pack("{s:s,s:s}", "imageDigest", digest, "imageTag", tag));
			} else {
				size_t k;
				json_t *t;
				if (json_array_size(tags) == 0)
					json_array_append_new(deleted,
							      json_pack("{s:s}", "imageDigest", digest));
				json_array_foreach (tags, k, t)
					json_array_append_new(deleted, json_pack("{s:s,s:O}", "imageDigest",
										 digest, "imageTag", t));
			}
		} else {
			registry_tag_delete(reg, name, tag);
			json_array_append_new(deleted,
					      json_pack("{s:s,s:s}", "imageDigest", digest, "imageTag", tag));
		}
	}
	*out = json_pack("{s:o,s:o}", "imageIds", deleted, "failures", failures);
	return 0;
}

static int put_image(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	const char *name, *manifest, *mt, *tag, *want;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, &name, &rec, &rev) < 0 ||
	    server_ecs_str(c, in, "imageManifest", true, &manifest) < 0 ||
	    server_ecs_str(c, in, "imageManifestMediaType", false, &mt) < 0 ||
	    server_ecs_str(c, in, "imageTag", false, &tag) < 0 ||
	    server_ecs_str(c, in, "imageDigest", false, &want) < 0)
		return -1;
	if (tag && !image_tag_valid(tag))
		return server_ecs_fail(c, INVALID, "Invalid parameter at 'imageTag': '%s' is not a valid tag",
				       tag);
	_cleanup_json_ json_t *imgs = server_ecr_images(s, name);
	char digest[DIGEST_STRING_MAX];
	digest_buffer(DIGEST_SHA256, manifest, strlen(manifest), digest);
	if (want && !streq(want, digest))
		return server_ecs_fail(c, "ImageDigestDoesNotMatchException",
				       "Provided digest %s does not match the manifest's digest %s", want,
				       digest);
	json_t *same = find_image(imgs, digest, tag);
	if (same && (tag || json_array_size(json_object_get(same, "imageTags")) == 0))
		return server_ecs_fail(
		    c, "ImageAlreadyExistsException",
		    "Image with digest '%s'%s%s%s already exists in the repository with name '%s' in "
		    "registry with id '%s'",
		    digest, tag ? " and tag '" : "", tag ? tag : "", tag ? "'" : "", name, s->account);
	_cleanup_error_ struct berth_error *err = NULL;
	int r = registry_manifest_write(server_ecr_registry(s), name, tag, mt, manifest, strlen(manifest),
					digest, &err);
	if (r == -EEXIST)
		return server_ecs_fail(
		    c, "ImageTagAlreadyExistsException",
		    "The image tag '%s' already exists in the '%s' repository and cannot be overwritten "
		    "because the repository is immutable.",
		    tag, name);
	if (r == -ENOENT) {
		_cleanup_free_ char *m = berth_error_string(err);
		return server_ecs_fail(c, "LayersNotFoundException", "%s", m);
	}
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		return server_ecs_fail(c, INVALID, "Invalid parameter at 'imageManifest': %s", m);
	}
	json_t *iid = json_pack("{s:s}", "imageDigest", digest);
	if (tag)
		json_object_set_new(iid, "imageTag", json_string(tag));
	_cleanup_json_ json_t *doc = json_loads(manifest, 0, NULL);
	const char *doc_mt = json_string_value(json_object_get(doc, "mediaType"));
	*out = json_pack("{s:{s:s,s:s,s:o,s:s,s:s}}", "image", "registryId", s->account, "repositoryName",
			 name, "imageId", iid, "imageManifest", manifest, "imageManifestMediaType",
			 mt       ? mt
			 : doc_mt ? doc_mt
				  : "");
	return 0;
}

/* ---- authorization ---- */

static int get_authorization_token(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	int64_t expires = (int64_t)time(NULL) + ECR_TOKEN_TTL;
	_cleanup_free_ char *pw = server_ecr_issue_password(s, expires);
	_cleanup_free_ char *cred = xasprintf("AWS:%s", pw);
	_cleanup_free_ char *b64 = base64_encode(cred, strlen(cred));
	_cleanup_free_ char *proxy = xasprintf("https://%s", c->registry);
	*out = json_pack("{s:[{s:s,s:I,s:s}]}", "authorizationData", "authorizationToken", b64, "expiresAt",
			 (json_int_t)expires, "proxyEndpoint", proxy);
	return 0;
}

/* ---- lifecycle policies ---- */

static int no_policy(struct ecs_call *c, const char *name)
{
	return server_ecs_fail(
	    c, "LifecyclePolicyNotFoundException",
	    "Lifecycle policy does not exist for the repository with name '%s' in the registry with id "
	    "'%s'",
	    name, c->srv->account);
}

static int policy_invalid(struct ecs_call *c, const char *msg)
{
	return server_ecs_fail(
	    c, INVALID,
	    "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy "
	    "validation failure: %s'",
	    msg);
}

static json_t *meta_get(struct server *s, const char *name)
{
	_cleanup_free_ char *key = xasprintf(ECR_META_PREFIX "%s", name);
	json_t *m = NULL;
	return server_record_get(s, key, &m, NULL, NULL) == 0 ? m : json_object();
}

static int put_lifecycle_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name, *text;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, &name, &rec, &rev) < 0 ||
	    server_ecs_str(c, in, "lifecyclePolicyText", true, &text) < 0)
		return -1;
	if (strlen(text) < 100 || strlen(text) > 30720)
		return server_ecs_fail(
		    c, INVALID,
		    "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: "
		    "'Member must have length between 100 and 30720'");
	struct ecr_policy *p = NULL;
	_cleanup_free_ char *msg = NULL;
	if (ecr_policy_parse(text, strlen(text), &p, &msg) < 0)
		return policy_invalid(c, msg);
	ecr_policy_free(p);
	json_object_set_new(rec, "lifecyclePolicyText", json_string(text));
	if (put_repo(c, name, rec, rev) < 0)
		return -1;
	server_ecr_kick_lifecycle(c->srv);
	*out = json_pack("{s:s,s:s,s:s}", "registryId", c->srv->account, "repositoryName", name,
			 "lifecyclePolicyText", text);
	return 0;
}

static int get_lifecycle_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, &name, &rec, &rev) < 0)
		return -1;
	json_t *text = json_object_get(rec, "lifecyclePolicyText");
	if (!text)
		return no_policy(c, name);
	_cleanup_json_ json_t *meta = meta_get(c->srv, name);
	*out = json_pack("{s:s,s:s,s:O}", "registryId", c->srv->account, "repositoryName", name,
			 "lifecyclePolicyText", text);
	if (json_object_get(meta, "lastEvaluatedAt"))
		json_object_set(*out, "lastEvaluatedAt", json_object_get(meta, "lastEvaluatedAt"));
	return 0;
}

static int delete_lifecycle_policy(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (get_lifecycle_policy(c, in, out) < 0 || load_repo(c, in, &name, &rec, &rev) < 0)
		return -1;
	json_object_del(rec, "lifecyclePolicyText");
	return put_repo(c, name, rec, rev);
}

static int start_lifecycle_policy_preview(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	const char *name, *text;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, &name, &rec, &rev) < 0 ||
	    server_ecs_str(c, in, "lifecyclePolicyText", false, &text) < 0)
		return -1;
	if (!text)
		text = json_string_value(json_object_get(rec, "lifecyclePolicyText"));
	if (!text)
		return no_policy(c, name);
	json_t *results = NULL;
	_cleanup_free_ char *msg = NULL;
	if (server_ecr_lifecycle_run(s, name, text, false, &results, &msg) < 0)
		return policy_invalid(c, msg);
	/* evaluated at once: the preview is COMPLETE by the time anyone asks */
	_cleanup_json_ json_t *meta = meta_get(s, name);
	json_object_set_new(meta, "preview",
			    json_pack("{s:s,s:o,s:s}", "lifecyclePolicyText", text, "previewResults", results,
				      "status", "COMPLETE"));
	_cleanup_free_ char *key = xasprintf(ECR_META_PREFIX "%s", name);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_put(s, key, meta, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_pack("{s:s,s:s,s:s,s:s}", "registryId", s->account, "repositoryName", name,
			 "lifecyclePolicyText", text, "status", "IN_PROGRESS");
	return 0;
}

static int get_lifecycle_policy_preview(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name, *status;
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	json_t *ids;
	if (load_repo(c, in, &name, &rec, &rev) < 0 || image_ids(c, in, false, &ids) < 0)
		return -1;
	json_t *f = json_object_get(in, "filter");
	status = json_string_value(json_object_get(f, "tagStatus"));
	_cleanup_json_ json_t *meta = meta_get(c->srv, name);
	json_t *pv = json_object_get(meta, "preview");
	if (!pv)
		return server_ecs_fail(
		    c, "LifecyclePolicyPreviewNotFoundException",
		    "There is no dry run for this repository with name '%s' in registry with id '%s'", name,
		    c->srv->account);
	_cleanup_json_ json_t *all = json_array();
	size_t i, k;
	json_t *r, *id;
	json_array_foreach (json_object_get(pv, "previewResults"), i, r) {
		size_t nt = json_array_size(json_object_get(r, "imageTags"));
		if (status && !streq(status, "ANY") && (streq(status, "TAGGED") ? nt == 0 : nt > 0))
			continue;
		bool want = !ids || json_array_size(ids) == 0;
		json_array_foreach (ids, k, id) {
			const char *d = json_string_value(json_object_get(id, "imageDigest"));
			const char *t = json_string_value(json_object_get(id, "imageTag"));
			want |= (!d || streq(d, json_string_value(json_object_get(r, "imageDigest")))) &&
				(!t || image_has_tag(r, t));
		}
		if (want)
			json_array_append(all, r);
	}
	*out = json_pack("{s:s,s:s,s:O,s:O,s:{s:I}}", "registryId", c->srv->account, "repositoryName", name,
			 "lifecyclePolicyText", json_object_get(pv, "lifecyclePolicyText"), "status",
			 json_object_get(pv, "status"), "summary", "expiringImageTotalCount",
			 (json_int_t)json_array_size(json_object_get(pv, "previewResults")));
	return paginate(c, in, all, "previewResults", *out, 100);
}

/* ---- scanning ---- */

static int scan_target(struct ecs_call *c, json_t *in, const char **ret_name, json_t **ret_imgs,
		       json_t **ret_img)
{
	_cleanup_json_ json_t *rec = NULL;
	int64_t rev;
	if (load_repo(c, in, ret_name, &rec, &rev) < 0)
		return -1;
	json_t *id = json_object_get(in, "imageId");
	if (!json_is_object(id))
		return server_ecs_fail(c, INVALID, "imageId can not be blank.");
	*ret_imgs = server_ecr_images(c->srv, *ret_name);
	const char *why = id_failure(*ret_imgs, id, ret_img);
	if (why && streq(why, "ImageNotFound"))
		return image_not_found(c, id, *ret_name);
	if (why)
		return server_ecs_fail(c, INVALID, "imageId: %s", why);
	return 0;
}

static json_t *image_id_of(json_t *in, json_t *img)
{
	json_t *id = json_pack("{s:O}", "imageDigest", json_object_get(img, "imageDigest"));
	json_t *t = json_object_get(json_object_get(in, "imageId"), "imageTag");
	if (t)
		json_object_set(id, "imageTag", t);
	return id;
}

static int start_image_scan(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	_cleanup_json_ json_t *imgs = NULL;
	json_t *img;
	if (scan_target(c, in, &name, &imgs, &img) < 0)
		return -1;
	const char *digest = json_string_value(json_object_get(img, "imageDigest"));
	_cleanup_free_ char *key = server_ecr_image_key(name, digest);
	json_t *rec = NULL;
	if (server_record_get(c->srv, key, &rec, NULL, NULL) < 0)
		rec = json_pack("{s:O}", "imagePushedAt", json_object_get(img, "imagePushedAt"));
	json_object_set_new(
	    rec, "scan",
	    json_pack("{s:s,s:s}", "status", "IN_PROGRESS", "description", "The scan is in progress."));
	_cleanup_error_ struct berth_error *err = NULL;
	int r = server_record_put(c->srv, key, rec, &err);
	json_decref(rec);
	if (r < 0)
		return server_ecs_internal(c, err);
	server_ecr_queue_scan(c->srv, name, digest);
	*out = json_pack("{s:s,s:s,s:o,s:{s:s,s:s}}", "registryId", c->srv->account, "repositoryName", name,
			 "imageId", image_id_of(in, img), "imageScanStatus", "status", "IN_PROGRESS",
			 "description", "The scan is in progress.");
	return 0;
}

static int describe_image_scan_findings(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *name;
	_cleanup_json_ json_t *imgs = NULL;
	json_t *img;
	if (scan_target(c, in, &name, &imgs, &img) < 0)
		return -1;
	json_t *scan = json_object_get(img, "scan");
	if (!scan) {
		_cleanup_free_ char *t = image_id_text(json_object_get(in, "imageId"));
		return server_ecs_fail(
		    c, "ScanNotFoundException",
		    "Image scan does not exist for the image with '%s' in the repository with name '%s' "
		    "in the registry with id '%s'",
		    t, name, c->srv->account);
	}
	*out = json_pack("{s:s,s:s,s:o,s:o}", "registryId", c->srv->account, "repositoryName", name,
			 "imageId", image_id_of(in, img), "imageScanStatus", scan_status(img));
	if (!streq(json_string_value(json_object_get(scan, "status")), "COMPLETE"))
		return 0;
	json_t *findings =
	    json_pack("{s:O,s:O,s:O}", "imageScanCompletedAt", json_object_get(scan, "completedAt"),
		      "vulnerabilitySourceUpdatedAt", json_object_get(scan, "feedUpdatedAt"),
		      "findingSeverityCounts", json_object_get(scan, "findingSeverityCounts"));
	json_object_set_new(*out, "imageScanFindings", findings);
	return paginate(c, in, json_object_get(scan, "findings"), "findings", findings, 1000);
}

/*
 * registry: the operation reads or changes the registry's contents, or wakes
 * its worker, so a replica without the registry forwards it (server_ecr_call());
 * the others need only the store (repositories, policies, previews).
 */
struct ecr_op {
	const char *name;
	ecs_op_fn fn;
	bool registry;
};

static const struct ecr_op OPS[] = {
	{ "GetAuthorizationToken", get_authorization_token, false },
	{ "CreateRepository", create_repository, false },
	{ "DescribeRepositories", describe_repositories, false },
	{ "DeleteRepository", delete_repository, true },
	{ "PutImageTagMutability", put_image_tag_mutability, false },
	{ "PutImageScanningConfiguration", put_image_scanning_configuration, false },
	{ "ListTagsForResource", list_tags_for_resource, false },
	{ "ListImages", list_images, true },
	{ "DescribeImages", describe_images, true },
	{ "BatchGetImage", batch_get_image, true },
	{ "BatchDeleteImage", batch_delete_image, true },
	{ "PutImage", put_image, true },
	{ "PutLifecyclePolicy", put_lifecycle_policy, true },
	{ "GetLifecyclePolicy", get_lifecycle_policy, false },
	{ "DeleteLifecyclePolicy", delete_lifecycle_policy, false },
	{ "StartLifecyclePolicyPreview", start_lifecycle_policy_preview, true },
	{ "GetLifecyclePolicyPreview", get_lifecycle_policy_preview, false },
	{ "StartImageScan", start_image_scan, true },
	{ "DescribeImageScanFindings", describe_image_scan_findings, true },
};

static const struct ecr_op *find_op(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(OPS); i++)
		if (streq(OPS[i].name, name))
			return &OPS[i];
	return NULL;
}

ecs_op_fn server_ecr_find_op(const char *name)
{
	const struct ecr_op *o = find_op(name);
	return o ? o->fn : NULL;
}

int server_ecr_call(struct ecs_call *c, const char *op, json_t *in, json_t **out)
{
	const struct ecr_op *o = find_op(op);
	_cleanup_free_ char *replica = NULL, *endpoint = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	/* a forwarded call is answered here or not at all (the caller's view was stale) */
	int r = c->local && !server_ecr_registry(c->srv)
		    ? -ENOENT
		    : server_ecr_locate(c->srv, &replica, &endpoint, &err);
	if (r == -ENOENT)
		return server_ecs_fail(
		    c, "ServerException",
		    "No server replica runs a registry: start one berth server with --registry "
		    "HOST:PORT.");
	if (r < 0)
		return server_ecs_internal(c, err);
	if (replica && o->registry)
		return server_replica_call(c, replica, ECR_TARGET_NAME, "ecr", op, in, out);
	c->registry = endpoint;
	r = o->fn(c, in, out);
	c->registry = NULL;
	return r;
}
