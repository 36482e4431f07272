/*
 * ecr-registry.c - the registry `berth server --registry HOST:PORT` runs
 * in-process (src/registry/ through its embedding API) with a certificate
 * from the cluster CA, the hooks that make it ECR's (token credentials,
 * repositories must exist, immutable tags, push times), and one worker
 * thread that scans images and applies lifecycle policies. See docs/ecr.md.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "ecr/ecr.h"
#include "pki/pki.h"
#include "registry/registry.h"
#include "server/internal.h"

/* Policies are re-applied this often even without pushes (sinceImagePushed ages images). */
#define LIFECYCLE_PERIOD_SEC 30
#define SCAN_QUEUE_MAX       1024

struct scan_job {
	char *repo, *digest;
};

struct ecr_server {
	struct server *srv;
	struct registry_config cfg;
	struct registry_hooks hooks;
	struct registry *reg;
	char *endpoint; /* host:port */
	unsigned char key[ECR_TOKEN_KEY_SIZE];
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping, lifecycle_due;
	struct scan_job *jobs;
	size_t n_jobs;
	/* the vulnerability feed, reloaded when the directory's stamp changes (worker thread only) */
	struct ecr_feed *feed;
	char *feed_stamp;
	double feed_loaded_at;
};

char *server_ecr_repo_key(const char *repo)
{
	return xasprintf(ECR_REPOS_PREFIX "%s", repo);
}

char *server_ecr_image_key(const char *repo, const char *digest)
{
	return xasprintf(ECR_IMAGES_PREFIX "%s@%s", repo, digest);
}

const char *server_ecr_endpoint(struct server *s)
{
	return s->ecr ? s->ecr->endpoint : NULL;
}

struct registry *server_ecr_registry(struct server *s)
{
	return s->ecr ? s->ecr->reg : NULL;
}

int server_ecr_locate(struct server *s, char **ret_replica, char **ret_endpoint, struct berth_error **err)
{
	*ret_replica = *ret_endpoint = NULL;
	if (s->ecr) {
		*ret_endpoint = xstrdup(s->ecr->endpoint);
		return 0;
	}
	_cleanup_json_ json_t *rec = NULL;
	int r = server_replica_find(s, "registry", &rec, err);
	if (r < 0)
		return r;
	const char *ep = json_string_value(json_object_get(rec, "registry"));
	if (!ep)
		return -ENOENT;
	*ret_replica = xstrdup(json_string_value(json_object_get(rec, "id")));
	*ret_endpoint = xstrdup(ep);
	return 0;
}

char *server_ecr_issue_password(struct server *s, int64_t expires)
{
	unsigned char key[ECR_TOKEN_KEY_SIZE];
	ecr_token_key(s->secret, key);
	return ecr_token_issue(key, s->account, expires);
}

double server_ecr_now(struct server *s)
{
	if (s->registry_clock) {
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		if (fs_read_file_at(AT_FDCWD, s->registry_clock, 64, &sb, NULL) >= 0) {
			char *end;
			double t = strtod(sb.buf, &end);
			if (end != sb.buf && t > 0)
				return t;
		}
	}
	return server_record_now();
}

/* ---- hooks (registry threads) ---- */

static int hook_check_basic(void *data, const char *user, const char *password)
{
	struct ecr_server *e = data;
	if (!streq(user, "AWS"))
		return -EACCES;
	return ecr_token_verify(e->key, e->srv->account, password, (int64_t)time(NULL)) == 0 ? 0 : -EACCES;
}

static json_t *repo_record(struct server *s, const char *repo)
{
	_cleanup_free_ char *key = server_ecr_repo_key(repo);
	json_t *j = NULL;
	return server_record_get(s, key, &j, NULL, NULL) == 0 ? j : NULL;
}

static int hook_push_check(void *data, const char *repo)
{
	struct ecr_server *e = data;
	json_t *j = repo_record(e->srv, repo);
	json_decref(j);
	return j ? 0 : -ENOENT;
}

static bool hook_tag_immutable(void *data, const char *repo)
{
	struct ecr_server *e = data;
	_cleanup_json_ json_t *j = repo_record(e->srv, repo);
	return j && streq(json_string_value(json_object_get(j, "imageTagMutability")) ?: "", "IMMUTABLE");
}

static void hook_manifest_pushed(void *data, const char *repo, const char *tag, const char *digest)
{
	struct ecr_server *e = data;
	struct server *s = e->srv;
	_cleanup_free_ char *key = server_ecr_image_key(repo, digest);
	json_t *rec = json_pack("{s:f}", "imagePushedAt", server_ecr_now(s));
	bool created = false;
	server_record_cas(s, key, rec, 0, &created, NULL); /* a re-push (new tag) keeps the first push time */
	json_decref(rec);
	_cleanup_json_ json_t *r = repo_record(s, repo);
	json_t *scan = json_object_get(json_object_get(r, "imageScanningConfiguration"), "scanOnPush");
	if (created && json_is_true(scan))
		server_ecr_queue_scan(s, repo, digest);
	server_ecr_kick_lifecycle(s);
	log_fields(LOG_LEVEL_DEBUG, "ecr push", "repository", repo, "tag", tag ? tag : "", "digest", digest,
		   NULL);
}

/* ---- images ---- */

/* imageSizeInBytes: config + layers of a manifest; the largest child of an index. */
static int64_t image_size(struct registry *reg, const char *repo, json_t *manifest, int depth)
{
	json_t *children = json_object_get(manifest, "manifests");
	if (json_is_array(children)) {
		int64_t best = 0;
		size_t i;
		json_t *c;
		json_array_foreach (children, i, c) {
			const char *d = json_string_value(json_object_get(c, "digest"));
			_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
			if (!d || depth > 2 || registry_manifest_read(reg, repo, d, &sb, NULL) < 0)
				continue;
			_cleanup_json_ json_t *m = json_loadb(sb.buf, sb.len, 0, NULL);
			int64_t n = image_size(reg, repo, m, depth + 1);
			if (n > best)
				best = n;
		}
		return best;
	}
	int64_t n = json_integer_value(json_object_get(json_object_get(manifest, "config"), "size"));
	size_t i;
	json_t *l;
	json_array_foreach (json_object_get(manifest, "layers"), i, l)
		n += json_integer_value(json_object_get(l, "size"));
	return n;
}

static int cmp_newest(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	double p = json_real_value(json_object_get(x, "imagePushedAt")),
	       q = json_real_value(json_object_get(y, "imagePushedAt"));
	if (p != q)
		return p < q ? 1 : -1;
	return strcmp(json_string_value(json_object_get(x, "imageDigest")),
		      json_string_value(json_object_get(y, "imageDigest")));
}

json_t *server_ecr_images(struct server *s, const char *repo)
{
	struct registry *reg = server_ecr_registry(s);
	json_t *out = json_array();
	if (!reg)
		return out;
	_cleanup_json_ json_t *imgs = registry_repo_images(reg, repo);
	_cleanup_free_ char *prefix = xasprintf(ECR_IMAGES_PREFIX "%s@", repo);
	/* the image records, by the digest in their key */
	struct store_kv_list kvs;
	json_t *by_digest = json_object();
	if (store_range(s->store, prefix, NULL, 0, &kvs, NULL) == 0) {
		for (size_t i = 0; i < kvs.n; i++) {
			json_t *j = json_loadb(kvs.kvs[i].value, kvs.kvs[i].value_len, 0, NULL);
			if (j)
				json_object_set_new(by_digest, kvs.kvs[i].key + strlen(prefix), j);
		}
		store_kv_list_done(&kvs);
	}
	size_t n = json_array_size(imgs), k = 0;
	json_t **v = xcalloc(n ? n : 1, sizeof(json_t *));
	json_t *children = json_object();
	size_t i;
	json_t *img;
	json_array_foreach (imgs, i, img) {
		const char *d = json_string_value(json_object_get(img, "imageDigest"));
		const char *mt = json_string_value(json_object_get(img, "imageManifestMediaType"));
		json_t *rec = json_object_get(by_digest, d);
		json_t *pushed = json_object_get(rec, "imagePushedAt");
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		_cleanup_json_ json_t *m = NULL;
		if (registry_manifest_read(reg, repo, d, &sb, NULL) == 0)
			m = json_loadb(sb.buf, sb.len, 0, NULL);
		json_t *o = json_pack("{s:s,s:O,s:f,s:I,s:s}", "imageDigest", d, "imageTags",
				      json_object_get(img, "imageTags"), "imagePushedAt",
				      pushed ? json_number_value(pushed)
					     : json_number_value(json_object_get(img, "storedAt")),
				      "imageSizeInBytes", (json_int_t)image_size(reg, repo, m, 0),
				      "imageManifestMediaType", mt);
		const char *amt =
		    json_string_value(json_object_get(json_object_get(m, "config"), "mediaType"));
		if (amt)
			json_object_set_new(o, "artifactMediaType", json_string(amt));
		if (json_object_get(rec, "scan"))
			json_object_set(o, "scan", json_object_get(rec, "scan"));
		size_t c;
		json_t *child;
		json_array_foreach (json_object_get(m, "manifests"), c, child)
			if (json_is_string(json_object_get(child, "digest")))
				json_object_set_new(children,
						    json_string_value(json_object_get(child, "digest")),
						    json_true());
		v[k++] = o;
	}
	/* a manifest an index of the repository points at lives and dies with that index */
	for (i = 0; i < k; i++)
		if (json_object_get(children, json_string_value(json_object_get(v[i], "imageDigest"))))
			json_object_set_new(v[i], "indexChild", json_true());
	json_decref(children);
	qsort(v, k, sizeof(json_t *), cmp_newest);
	for (i = 0; i < k; i++)
		json_array_append_new(out, v[i]);
	free(v);
	json_decref(by_digest);
	return out;
}

/* ---- lifecycle ---- */

int server_ecr_lifecycle_run(struct server *s, const char *repo, const char *policy_text, bool apply,
			     json_t **ret, char **ret_msg)
{
	struct ecr_policy *p = NULL;
	*ret = NULL;
	int r = ecr_policy_parse(policy_text, strlen(policy_text), &p, ret_msg);
	if (r < 0)
		return r;
	json_t *all = server_ecr_images(s, repo), *imgs = json_array();
	size_t j;
	json_t *img0;
	json_array_foreach (all, j, img0)
		if (!json_is_true(json_object_get(img0, "indexChild"))) /* expired with their index */
			json_array_append(imgs, img0);
	json_decref(all);
	size_t n = json_array_size(imgs);
	struct ecr_image *v = xcalloc(n ? n : 1, sizeof(*v));
	const char ***tagv = xcalloc(n ? n : 1, sizeof(*tagv));
	int64_t *rule = xcalloc(n ? n : 1, sizeof(int64_t));
	for (size_t i = 0; i < n; i++) {
		json_t *img = json_array_get(imgs, i), *tags = json_object_get(img, "imageTags");
		tagv[i] = xcalloc(json_array_size(tags) + 1, sizeof(char *));
		for (size_t t = 0; t < json_array_size(tags); t++)
			tagv[i][t] = json_string_value(json_array_get(tags, t));
		v[i] = (struct ecr_image){ json_string_value(json_object_get(img, "imageDigest")), tagv[i],
					   json_array_size(tags),
					   json_number_value(json_object_get(img, "imagePushedAt")) };
	}
	ecr_policy_evaluate(p, v, n, server_ecr_now(s), rule);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		if (!rule[i])
			continue;
		json_t *img = json_array_get(imgs, i);
		json_t *res = json_pack("{s:s,s:O,s:O,s:{s:s},s:I}", "imageDigest", v[i].digest, "imageTags",
					json_object_get(img, "imageTags"), "imagePushedAt",
					json_object_get(img, "imagePushedAt"), "action", "type", "EXPIRE",
					"appliedRulePriority", (json_int_t)rule[i]);
		json_array_append_new(out, res);
		if (apply) {
			registry_image_delete(server_ecr_registry(s), repo, v[i].digest);
			_cleanup_free_ char *key = server_ecr_image_key(repo, v[i].digest);
			store_remove(s->store, key, NULL, NULL);
			log_fields(LOG_LEVEL_INFO, "ecr lifecycle expired an image", "repository", repo,
				   "digest", v[i].digest, NULL);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(tagv[i]);
	free(tagv);
	free(v);
	free(rule);
	json_decref(imgs);
	ecr_policy_free(p);
	*ret = out;
	return 0;
}

static void apply_policies(struct server *s)
{
	_cleanup_json_ json_t *repos = NULL;
	if (server_record_list(s, ECR_REPOS_PREFIX, &repos, NULL) < 0)
		return;
	size_t i;
	json_t *repo;
	json_array_foreach (repos, i, repo) {
		const char *name = json_string_value(json_object_get(repo, "repositoryName"));
		const char *text = json_string_value(json_object_get(repo, "lifecyclePolicyText"));
		if (!name || !text)
			continue;
		json_t *expired = NULL;
		_cleanup_free_ char *msg = NULL;
		if (server_ecr_lifecycle_run(s, name, text, true, &expired, &msg) < 0) {
			log_fields(LOG_LEVEL_WARN, "ecr lifecycle policy invalid", "repository", name,
				   "error", msg, NULL);
			continue;
		}
		json_decref(expired);
		_cleanup_free_ char *key = xasprintf(ECR_META_PREFIX "%s", name);
		json_t *meta = NULL;
		if (server_record_get(s, key, &meta, NULL, NULL) < 0)
			meta = json_object();
		json_object_set_new(meta, "lastEvaluatedAt", json_real(server_record_now()));
		server_record_put(s, key, meta, NULL);
		json_decref(meta);
	}
}

/* ---- scanning ---- */

static struct ecr_feed *current_feed(struct ecr_server *e)
{
	const char *dir = e->srv->vuln_feed;
	if (!dir)
		return NULL;
	_cleanup_free_ char *stamp = ecr_feed_dir_stamp(dir);
	if (e->feed && e->feed_stamp && streq(stamp, e->feed_stamp))
		return e->feed;
	struct ecr_feed *f = NULL;
	_cleanup_json_ json_t *skipped = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (ecr_feed_load_dir(dir, &f, &skipped, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		log_fields(LOG_LEVEL_WARN, "vulnerability feed not loaded", "dir", dir, "error", m, NULL);
		return e->feed;
	}
	size_t i;
	json_t *sk;
	json_array_foreach (skipped, i, sk)
		log_fields(LOG_LEVEL_WARN, "vulnerability feed file skipped", "error", json_string_value(sk),
			   NULL);
	ecr_feed_free(e->feed);
	e->feed = f;
	free(e->feed_stamp);
	e->feed_stamp = TAKE_PTR(stamp);
	e->feed_loaded_at = server_record_now();
	char count[32];
	snprintf(count, sizeof(count), "%zu", ecr_feed_count(f));
	log_fields(LOG_LEVEL_INFO, "vulnerability feed loaded", "dir", dir, "advisories", count, NULL);
	return f;
}

/* The image manifest to inventory: the manifest itself, or linux/amd64 (else the first) of an index. */
static json_t *platform_manifest(struct registry *reg, const char *repo, json_t *m)
{
	json_t *children = json_object_get(m, "manifests");
	if (!json_is_array(children))
		return json_incref(m);
	json_t *pick = json_array_get(children, 0);
	size_t i;
	json_t *c;
	json_array_foreach (children, i, c) {
		json_t *pl = json_object_get(c, "platform");
		if (streq(json_string_value(json_object_get(pl, "os")) ?: "", "linux") &&
		    streq(json_string_value(json_object_get(pl, "architecture")) ?: "", "amd64")) {
			pick = c;
			break;
		}
	}
	const char *d = json_string_value(json_object_get(pick, "digest"));
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (!d || registry_manifest_read(reg, repo, d, &sb, NULL) < 0)
		return NULL;
	return json_loadb(sb.buf, sb.len, 0, NULL);
}

static int inventory(struct registry *reg, const char *repo, const char *digest, struct ecr_inventory *inv,
		     struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (registry_manifest_read(reg, repo, digest, &sb, NULL) < 0)
		return berth_error_msg(err, ENOENT, "image %s is not in the repository", digest);
	_cleanup_json_ json_t *top = json_loadb(sb.buf, sb.len, 0, NULL);
	_cleanup_json_ json_t *m = platform_manifest(reg, repo, top);
	json_t *layers = json_object_get(m, "layers");
	if (!json_is_array(layers))
		return berth_error_msg(err, EINVAL, "UnsupportedImageType: the manifest has no layers");
	size_t n = json_array_size(layers);
	int *fds = xcalloc(n ? n : 1, sizeof(int));
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	int r = 0;
	size_t opened = 0;
	for (; opened < n && r == 0; opened++) {
		const char *d = json_string_value(json_object_get(json_array_get(layers, opened), "digest"));
		uint64_t size;
		if (!d || registry_blob_open(reg, d, &fds[opened], &size) < 0) {
			r = berth_error_msg(err, ENOENT, "layer %s is missing", d ? d : "?");
			break;
		}
	}
	if (r == 0)
		r = ecr_inventory_from_layers(fds, n, inv, err);
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return r;
}

static void scan_image(struct ecr_server *e, const char *repo, const char *digest)
{
	struct server *s = e->srv;
	struct ecr_inventory inv = { 0 };
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *scan;
	if (inventory(e->reg, repo, digest, &inv, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		scan = json_pack("{s:s,s:s,s:f}", "status", "FAILED", "description", m, "completedAt",
				 server_record_now());
	} else {
		struct ecr_feed *f = current_feed(e);
		json_t *findings = f ? ecr_feed_match(f, &inv) : json_array();
		json_t *counts = json_object();
		size_t i;
		json_t *fd;
		json_array_foreach (findings, i, fd) {
			const char *sev = json_string_value(json_object_get(fd, "severity"));
			json_object_set_new(
			    counts, sev, json_integer(json_integer_value(json_object_get(counts, sev)) + 1));
		}
		_cleanup_free_ char *desc = xasprintf(
		    "The scan was completed successfully: %zu packages (%s %s), %zu advisories in the feed.",
		    inv.n_pkgs, inv.os_id ? inv.os_id : "unknown os",
		    inv.os_version_id ? inv.os_version_id : "", f ? ecr_feed_count(f) : 0);
		scan = json_pack("{s:s,s:s,s:f,s:f,s:o,s:o,s:I}", "status", "COMPLETE", "description", desc,
				 "completedAt", server_record_now(), "feedUpdatedAt", e->feed_loaded_at,
				 "findings", findings, "findingSeverityCounts", counts, "packages",
				 (json_int_t)inv.n_pkgs);
	}
	ecr_inventory_done(&inv);
	_cleanup_free_ char *key = server_ecr_image_key(repo, digest);
	json_t *rec = NULL;
	if (server_record_get(s, key, &rec, NULL, NULL) < 0)
		rec = json_pack("{s:f}", "imagePushedAt", server_ecr_now(s));
	json_object_set_new(rec, "scan", scan);
	server_record_put(s, key, rec, NULL);
	json_decref(rec);
	log_fields(LOG_LEVEL_INFO, "ecr scan done", "repository", repo, "digest", digest, NULL);
}

/* ---- worker ---- */

void server_ecr_queue_scan(struct server *s, const char *repo, const char *digest)
{
	struct ecr_server *e = s->ecr;
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	if (e->n_jobs < SCAN_QUEUE_MAX) {
		e->jobs = xrealloc(e->jobs, (e->n_jobs + 1) * sizeof(*e->jobs));
		e->jobs[e->n_jobs++] = (struct scan_job){ xstrdup(repo), xstrdup(digest) };
	}
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

void server_ecr_kick_lifecycle(struct server *s)
{
	struct ecr_server *e = s->ecr;
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->lifecycle_due = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

static void *worker_main(void *arg)
{
	struct ecr_server *e = arg;
	double last_lifecycle = 0;
	pthread_mutex_lock(&e->lock);
	while (!e->stopping) {
		if (!e->n_jobs && !e->lifecycle_due) {
			struct timespec ts = proc_deadline(CLOCK_MONOTONIC, LIFECYCLE_PERIOD_SEC * 1000);
			if (pthread_cond_timedwait(&e->cond, &e->lock, &ts) != 0 &&
			    server_record_now() - last_lifecycle >= LIFECYCLE_PERIOD_SEC)
				e->lifecycle_due = true;
			continue;
		}
		struct scan_job *jobs = TAKE_PTR(e->jobs);
		size_t n = e->n_jobs;
		e->n_jobs = 0;
		bool lifecycle = e->lifecycle_due;
		e->lifecycle_due = false;
		pthread_mutex_unlock(&e->lock);
		for (size_t i = 0; i < n; i++) {
			scan_image(e, jobs[i].repo, jobs[i].digest);
			free(jobs[i].repo);
			free(jobs[i].digest);
		}
		free(jobs);
		if (lifecycle) {
			apply_policies(e->srv);
			last_lifecycle = server_record_now();
		}
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- start/stop ---- */

static int write_cert(struct server *s, const char *host, struct berth_error **err)
{
	_cleanup_free_ char *cert = NULL, *key = NULL;
	int r = pki_server_cert(s->ca_pem, s->ca_key_pem, *host ? host : NULL, &cert, &key, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *kp = xasprintf("%s/pki/registry-key.pem", s->root);
	_cleanup_free_ char *cp = xasprintf("%s/pki/registry.pem", s->root);
	if ((r = fs_write_file_atomic(kp, key, strlen(key), 0600, err)) < 0 ||
	    (r = fs_write_file_atomic(cp, cert, strlen(cert), 0644, err)) < 0)
		return r;
	return 0;
}

int server_ecr_start(struct server *s, struct berth_error **err)
{
	if (!s->registry_addr)
		return 0;
	struct ecr_server *e = xcalloc(1, sizeof(*e));
	e->srv = s;
	ecr_token_key(s->secret, e->key);
	pthread_mutex_init(&e->lock, NULL);
	proc_cond_init_monotonic(&e->cond);
	e->hooks = (struct registry_hooks){ .check_basic = hook_check_basic,
					    .push_check = hook_push_check,
					    .tag_immutable = hook_tag_immutable,
					    .manifest_pushed = hook_manifest_pushed };
	registry_config_init(&e->cfg);
	free(e->cfg.host);
	e->cfg.host = NULL;
	int r = registry_parse_addr(s->registry_addr, &e->cfg.host, &e->cfg.port);
	if (r < 0) {
		r = berth_error_msg(err, EINVAL, "invalid --registry '%s': expected HOST:PORT",
				    s->registry_addr);
	} else {
		if (!e->cfg.host || !*e->cfg.host) {
			free(e->cfg.host);
			e->cfg.host = xstrdup("127.0.0.1");
		}
		free(e->cfg.root);
		e->cfg.root = xasprintf("%s/registry", s->root);
		e->cfg.tls_cert = xasprintf("%s/pki/registry.pem", s->root);
		e->cfg.tls_key = xasprintf("%s/pki/registry-key.pem", s->root);
		e->cfg.access_log = false;
		e->cfg.hooks = &e->hooks;
		e->cfg.hooks_data = e;
		s->ecr = e; /* hooks and the worker reach it through the server */
		if ((r = write_cert(s, e->cfg.host, err)) == 0)
			r = registry_start(&e->cfg, &e->reg, err);
	}
	if (r == 0 && pthread_create(&e->worker, NULL, worker_main, e) != 0)
		r = berth_error_msg(err, EAGAIN, "start the ECR worker thread failed");
	if (r < 0) {
		registry_stop(e->reg);
		s->ecr = NULL;
		registry_config_done(&e->cfg);
		pthread_mutex_destroy(&e->lock);
		pthread_cond_destroy(&e->cond);
		free(e);
		return r;
	}
	e->worker_started = true;
	bool v6 = strchr(e->cfg.host, ':') != NULL;
	e->endpoint = xasprintf(v6 ? "[%s]:%u" : "%s:%u", e->cfg.host, registry_bound_port(e->reg));
	e->lifecycle_due = true; /* apply policies once at start */
	pthread_cond_signal(&e->cond);
	log_fields(LOG_LEVEL_INFO, "registry listening", "endpoint", e->endpoint, "root", e->cfg.root, NULL);
	return 0;
}

void server_ecr_stop(struct server *s)
{
	struct ecr_server *e = s->ecr;
	if (!e || !e->worker_started)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->worker, NULL);
	registry_stop(e->reg);
	for (size_t i = 0; i < e->n_jobs; i++) {
		free(e->jobs[i].repo);
		free(e->jobs[i].digest);
	}
	free(e->jobs);
	ecr_feed_free(e->feed);
	free(e->feed_stamp);
	free(e->endpoint);
	registry_config_done(&e->cfg);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
	s->ecr = NULL;
}
