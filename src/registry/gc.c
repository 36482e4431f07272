/*
 * gc.c - `berth registry gc`: lifecycle rules, then mark and sweep.
 *
 * Safe while the registry serves: the whole pass holds the storage lock
 * exclusively, which writers (upload commit, mount, manifest put) take
 * shared, so no link appears between mark and sweep; blobs newer than
 * storage.gc_grace are kept because an upload may have committed them before
 * its manifest arrives. Readers never lock: a pull racing with the deletion of
 * an unreferenced blob gets BLOB_UNKNOWN, as it would a moment later anyway.
 */
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "registry/manifest.h"
#include "registry/registry.h"
#include "registry/storage.h"

#define MANIFEST_READ_MAX (64u << 20)

struct dset {
	char **v;
	size_t n, alloc;
	bool sorted;
};

static void dset_add(struct dset *s, const char *d)
{
	if (s->n == s->alloc) {
		s->alloc = s->alloc ? 2 * s->alloc : 256;
		s->v = xrealloc(s->v, s->alloc * sizeof(char *));
	}
	s->v[s->n++] = xstrdup(d);
	s->sorted = false;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool dset_has(struct dset *s, const char *d)
{
	if (s->n == 0)
		return false; /* v is NULL: qsort/bsearch must not see it (UB, UBSan reports it) */
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(char *), cmp_strp);
		s->sorted = true;
	}
	return bsearch(&d, s->v, s->n, sizeof(char *), cmp_strp) != NULL;
}

static void dset_done(struct dset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct dset){ 0 };
}

struct gc {
	struct registry_store *st;
	const struct registry_config *cfg;
	bool dry_run;
	struct dset marked;
	struct dset doomed; /* "repo@digest" manifests removed by lifecycle */
	struct registry_gc_stats stats;
	time_t now;
};

/* Parse a stored manifest; NULL when unreadable. */
static int load_manifest(struct registry_store *st, const char *repo, const char *digest,
			 struct manifest_info *m)
{
	char path[PATH_MAX], mt[256];
	if (registry_store_manifest_info(st, repo, digest, mt, sizeof(mt), NULL) < 0)
		return -ENOENT;
	registry_store_blob_path(digest, path, sizeof(path));
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(st->rootfd, path, MANIFEST_READ_MAX, &sb, NULL) < 0)
		return -ENOENT;
	return registry_manifest_parse(mt, sb.buf, sb.len, m, NULL);
}

static time_t path_mtime(struct registry_store *st, const char *path)
{
	struct stat s;
	return fstatat(st->rootfd, path, &s, 0) == 0 ? s.st_mtime : 0;
}

struct tag_age {
	char *tag;
	time_t mtime;
};

static int cmp_newest(const void *a, const void *b)
{
	const struct tag_age *x = a, *y = b;
	return x->mtime < y->mtime ? 1 : x->mtime > y->mtime ? -1 : strcmp(x->tag, y->tag);
}

static void lifecycle_keep_tags(struct gc *g, const char *repo, const struct registry_repo_rule *rule)
{
	_cleanup_strv_ char **tags = NULL;
	if (!rule->keep_tags_pattern || rule->keep_tags_count < 0 ||
	    registry_store_tags_list(g->st, repo, &tags) < 0)
		return;
	size_t n = 0, cap = 0;
	for (char **t = tags; *t; t++)
		cap++;
	struct tag_age *v = xcalloc(cap + 1, sizeof(*v));
	char path[PATH_MAX];
	for (char **t = tags; *t; t++) {
		if (fnmatch(rule->keep_tags_pattern, *t, 0) != 0)
			continue;
		snprintf(path, sizeof(path), "repositories/%s/_manifests/tags/%s", repo, *t);
		v[n++] = (struct tag_age){ .tag = *t, .mtime = path_mtime(g->st, path) };
	}
	qsort(v, n, sizeof(*v), cmp_newest);
	for (size_t i = (size_t)rule->keep_tags_count; i < n; i++) {
		g->stats.tags_deleted++;
		if (!g->dry_run)
			registry_store_tag_delete(g->st, repo, v[i].tag);
	}
	free(v);
}

/* Manifests reachable from a tag (directly or as children of a tagged index). */
static void tagged_set(struct gc *g, const char *repo, struct dset *out)
{
	_cleanup_strv_ char **tags = NULL;
	char d[DIGEST_STRING_MAX + 2];
	if (registry_store_tags_list(g->st, repo, &tags) < 0)
		return;
	for (char **t = tags; *t; t++) {
		if (registry_store_resolve_tag(g->st, repo, *t, d) < 0)
			continue;
		dset_add(out, d);
		struct manifest_info m;
		if (load_manifest(g->st, repo, d, &m) < 0)
			continue;
		for (size_t i = 0; i < m.n_refs; i++)
			if (m.refs[i].is_manifest)
				dset_add(out, m.refs[i].digest);
		registry_manifest_info_done(&m);
	}
}

static void lifecycle_untagged(struct gc *g, const char *repo, const struct registry_repo_rule *rule)
{
	if (rule->expire_untagged_days < 0)
		return;
	struct dset tagged = { 0 };
	_cleanup_strv_ char **revs = NULL;
	tagged_set(g, repo, &tagged);
	registry_store_manifest_list(g->st, repo, &revs);
	time_t cutoff = g->now - (time_t)rule->expire_untagged_days * 86400;
	char path[PATH_MAX];
	char mt[256], subject[DIGEST_STRING_MAX];
	for (char **d = revs; *d; d++) {
		if (dset_has(&tagged, *d))
			continue;
		/* referrers (signatures, SBOMs) live as long as their subject is kept */
		if (registry_store_manifest_info(g->st, repo, *d, mt, sizeof(mt), subject) == 0 &&
		    subject[0] && dset_has(&tagged, subject))
			continue;
		const char *colon = strchr(*d, ':');
		snprintf(path, sizeof(path), "repositories/%s/_manifests/revisions/%.*s/%s", repo,
			 (int)(colon - *d), *d, colon + 1);
		if (path_mtime(g->st, path) > cutoff)
			continue;
		g->stats.manifests_deleted++;
		_cleanup_free_ char *key = xasprintf("%s@%s", repo, *d);
		dset_add(&g->doomed, key);
		if (!g->dry_run)
			registry_store_manifest_delete(g->st, repo, *d);
	}
	dset_done(&tagged);
}

static void mark_repo(struct gc *g, const char *repo)
{
	_cleanup_strv_ char **revs = NULL;
	registry_store_manifest_list(g->st, repo, &revs);
	for (char **d = revs; *d; d++) {
		_cleanup_free_ char *key = xasprintf("%s@%s", repo, *d);
		if (dset_has(&g->doomed, key))
			continue;
		dset_add(&g->marked, *d);
		g->stats.manifests_marked++;
		struct manifest_info m;
		if (load_manifest(g->st, repo, *d, &m) < 0)
			continue;
		for (size_t i = 0; i < m.n_refs; i++) {
			dset_add(&g->marked, m.refs[i].digest);
			g->stats.blobs_marked++;
		}
		registry_manifest_info_done(&m);
	}
}

static void sweep_algo(struct gc *g, const char *algo)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "blobs/%s", algo);
	int fd = openat(g->st->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	_cleanup_closedir_ DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	time_t keep_after = g->now - (time_t)g->cfg->gc_grace_s;
	struct dirent *de;
	struct stat s;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *digest = xasprintf("%s:%s", algo, de->d_name);
		if (!digest_valid(digest) || dset_has(&g->marked, digest))
			continue;
		if (fstatat(fd, de->d_name, &s, 0) < 0 || s.st_mtime > keep_after)
			continue;
		g->stats.blobs_deleted++;
		g->stats.bytes_freed += s.st_size;
		if (!g->dry_run)
			unlinkat(fd, de->d_name, 0);
	}
}

/* Remove repository layer links whose blob no longer exists. */
static void prune_links(struct gc *g, const char *repo)
{
	char path[PATH_MAX];
	static const char *const algos[] = { "sha256", "sha512" };
	for (size_t a = 0; a < ARRAY_SIZE(algos); a++) {
		snprintf(path, sizeof(path), "repositories/%s/_layers/%s", repo, algos[a]);
		int fd = openat(g->st->rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		_cleanup_closedir_ DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d))) {
			_cleanup_free_ char *digest = xasprintf("%s:%s", algos[a], de->d_name);
			if (de->d_name[0] == '.' || !digest_valid(digest) ||
			    registry_store_blob_exists(g->st, digest, NULL))
				continue;
			g->stats.links_deleted++;
			unlinkat(fd, de->d_name, 0);
		}
	}
}

int registry_gc(struct registry_config *cfg, bool dry_run, struct registry_gc_stats *ret,
		struct berth_error **err)
{
	struct gc g = { .cfg = cfg, .dry_run = dry_run, .now = time(NULL) };
	int r = registry_store_open(cfg->root, &g.st, err);
	if (r < 0)
		return r;
	int lock = registry_store_lock(g.st, true, err);
	if (lock < 0) {
		registry_store_free(g.st);
		return lock;
	}
	_cleanup_strv_ char **repos = NULL;
	registry_store_catalog(g.st, &repos);
	for (char **p = repos; *p; p++) {
		const struct registry_repo_rule *rule = registry_config_rule(cfg, *p);
		if (rule) {
			lifecycle_keep_tags(&g, *p, rule);
			lifecycle_untagged(&g, *p, rule);
		}
	}
	for (char **p = repos; *p; p++)
		mark_repo(&g, *p);
	sweep_algo(&g, "sha256");
	sweep_algo(&g, "sha512");
	if (!dry_run)
		for (char **p = repos; *p; p++)
			prune_links(&g, *p);
	close(lock);
	dset_done(&g.marked);
	dset_done(&g.doomed);
	registry_store_free(g.st);
	*ret = g.stats;
	return 0;
}
