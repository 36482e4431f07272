/*
 * record.c - per-container network records: <root>/net/containers/<id>/
 * holds config.json (the record), hosts, resolv.conf and hostname.
 *
 * The record is plain JSON kept in memory as a jansson object: every
 * endpoint carries the exact conflist, CNI_ARGS, capability args and result
 * of its CNI calls, so DEL after a crash repeats precisely what ADD was given.
 * An endpoint is saved with "state": "adding" before ADD runs.
 */
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "net/internal.h"
#include "net/record.h"

char *net_rec_dir(struct net_ctx *ctx, const char *id)
{
	return xasprintf("%s/containers/%s", ctx->root_dir, id);
}

char *net_rec_file(struct net_ctx *ctx, const char *id, const char *name)
{
	return xasprintf("%s/containers/%s/%s", ctx->root_dir, id, name);
}

int net_rec_load(struct net_ctx *ctx, const char *id, json_t **ret, struct berth_error **err)
{
	if (!net_id_valid(id))
		return berth_error_msg(err, EINVAL, "invalid container id '%s'", id ? id : "");
	_cleanup_free_ char *p = net_rec_file(ctx, id, "config.json");
	if (access(p, F_OK) < 0)
		return berth_error_msg(err, ENOENT, "container '%s' has no network state", id);
	json_auto_t *j = NULL;
	int r = json_load_path(p, 8 << 20, &j, err);
	if (r < 0)
		return r;
	if (!json_is_object(j) || !json_is_array(json_object_get(j, "endpoints")) ||
	    !json_is_string(json_object_get(j, "mode")))
		return berth_error_msg(err, EINVAL, "'%s': corrupt network record", p);
	*ret = TAKE_PTR(j);
	return 0;
}

int net_rec_save(struct net_ctx *ctx, const json_t *rec, struct berth_error **err)
{
	const char *id = net_rec_str(rec, "id");
	_cleanup_free_ char *d = net_rec_dir(ctx, id);
	int r = fs_mkdir_p(d, 0700, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *p = net_rec_file(ctx, id, "config.json");
	_cleanup_free_ char *s = json_dumps(rec, JSON_INDENT(1));
	return fs_write_file_atomic(p, s, strlen(s), 0600, err);
}

int net_rec_list(struct net_ctx *ctx, char ***ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/containers", ctx->root_dir);
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return berth_error_errno(err, "open '%s'", dir);
	_cleanup_strv_ char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !net_id_valid(de->d_name))
			continue;
		v = xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = xstrdup(de->d_name);
		v[n] = NULL;
	}
	*ret = TAKE_PTR(v);
	return 0;
}

int net_rec_load_all(struct net_ctx *ctx, json_t **ret, struct berth_error **err)
{
	_cleanup_strv_ char **ids = NULL;
	int r = net_rec_list(ctx, &ids, err);
	if (r < 0)
		return r;
	json_auto_t *all = json_array();
	for (size_t i = 0; ids[i]; i++) {
		json_t *rec = NULL;
		struct berth_error *e = NULL;
		/* a directory without a readable record (crash before the first save) is skipped */
		if (net_rec_load(ctx, ids[i], &rec, &e) == 0)
			json_array_append_new(all, rec);
		berth_error_free(e);
	}
	*ret = TAKE_PTR(all);
	return 0;
}

const char *net_rec_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

const char *const *net_rec_strv(const json_t *o, const char *key, char ***store)
{
	*store = NULL;
	if (json_get_strv(o, NULL, key, 0, store, NULL) < 0)
		*store = NULL;
	return (const char *const *)*store;
}

bool net_rec_on_network(const json_t *rec, const char *network_id)
{
	size_t i;
	json_t *ep;
	json_array_foreach (json_object_get(rec, "endpoints"), i, ep)
		if (streq_ptr(net_rec_str(ep, "network_id"), network_id))
			return true;
	return false;
}

int net_container_uses_network(struct net_ctx *ctx, const char *network_id, bool *ret,
			       struct berth_error **err)
{
	json_auto_t *all = NULL;
	int r = net_rec_load_all(ctx, &all, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *rec;
	*ret = false;
	json_array_foreach (all, i, rec)
		if (net_rec_on_network(rec, network_id))
			*ret = true;
	return 0;
}
