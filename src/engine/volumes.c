/*
 * volumes.c - the local volume driver: <root>/volumes/<name>/_data plus a
 * small metadata file (<name>/meta.json: labels, created). A named volume
 * used by -v name:/dst is created on first use, as docker does.
 *
 * NEEDSWORK: copy-up of image content into a new empty volume, anonymous
 * volumes from image VOLUME, --volumes-from.
 */
#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"

static bool volume_name_valid(const char *n)
{
	size_t len = strlen(n);
	if (len < 1 || len > 255 || !isalnum((unsigned char)n[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)n[i]) && !strchr("_.-", n[i]))
			return false;
	return true;
}

static json_t *volume_json(struct engine *e, const char *name, const json_t *meta)
{
	_cleanup_free_ char *mp = xasprintf("%s/volumes/%s/_data", e->root, name);
	json_t *labels = json_object_get(meta, "labels");
	return json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:{}}", "Name", name, "Driver", "local", "Mountpoint", mp,
			 "CreatedAt", json_string_value(json_object_get(meta, "created")) ?: "", "Labels",
			 labels ? labels : json_object(), "Scope", "local", "Options");
}

static json_t *load_meta(struct engine *e, const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/volumes/%s/meta.json", e->root, name);
	json_t *j = NULL;
	if (json_load_path(p, 1 << 20, &j, NULL) < 0)
		j = json_object();
	return j;
}

int engine_volume_create(struct engine *e, const char *name, const json_t *labels, json_t **ret,
			 struct berth_error **err)
{
	_cleanup_free_ char *gen = NULL;
	if (!name || !*name)
		name = gen = random_hex(32);
	if (!volume_name_valid(name))
		return berth_error_msg(err, EINVAL,
				       "create %s: \"%s\" includes invalid characters for a local volume "
				       "name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
				       name, name);
	if (labels && !json_is_object(labels))
		return json_type_error(NULL, "Labels", "object", labels, err);
	_cleanup_free_ char *data = xasprintf("%s/volumes/%s/_data", e->root, name);
	_cleanup_free_ char *metap = xasprintf("%s/volumes/%s/meta.json", e->root, name);
	if (access(metap, F_OK) < 0) {
		int r = fs_mkdir_p(data, 0755, err);
		if (r < 0)
			return r;
		struct timespec ts;
		char t[RFC3339_MAX];
		clock_gettime(CLOCK_REALTIME, &ts);
		format_rfc3339(&ts, t);
		_cleanup_json_ json_t *meta =
		    json_pack("{s:s,s:o}", "created", t, "labels",
			      labels ? json_incref((json_t *)labels) : json_object());
		_cleanup_free_ char *text = json_dumps(meta, JSON_COMPACT);
		r = fs_write_file_atomic(metap, text, strlen(text), 0644, err);
		if (r < 0)
			return r;
		_cleanup_json_ json_t *attrs = json_pack("{s:s}", "driver", "local");
		pthread_mutex_lock(&e->lock);
		store_event(e, "volume", "create", name, attrs);
		pthread_mutex_unlock(&e->lock);
	}
	if (ret) {
		_cleanup_json_ json_t *meta = load_meta(e, name);
		*ret = volume_json(e, name, meta);
	}
	return 0;
}

int engine_volume_inspect(struct engine *e, const char *name, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/volumes/%s", e->root, name);
	if (!volume_name_valid(name) || access(dir, F_OK) < 0)
		return berth_error_msg(err, ENOENT, "get %s: no such volume", name);
	_cleanup_json_ json_t *meta = load_meta(e, name);
	*ret = volume_json(e, name, meta);
	return 0;
}

int engine_volume_list(struct engine *e, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/volumes", e->root);
	json_t *list = json_array();
	_cleanup_closedir_ DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || !volume_name_valid(de->d_name))
			continue;
		_cleanup_json_ json_t *meta = load_meta(e, de->d_name);
		json_array_append_new(list, volume_json(e, de->d_name, meta));
	}
	*ret = list;
	return 0;
}

static bool volume_in_use_locked(struct engine *e, const char *name)
{
	size_t nlen = strlen(name);
	for (size_t i = 0; i < e->n_cs; i++) {
		size_t k;
		json_t *b;
		json_array_foreach (json_object_get(e->cs[i]->hostconfig, "Binds"), k, b) {
			const char *s = json_string_value(b);
			if (s && !strncmp(s, name, nlen) && s[nlen] == ':')
				return true;
		}
	}
	return false;
}

int engine_volume_remove(struct engine *e, const char *name, bool force, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/volumes/%s", e->root, name);
	if (!volume_name_valid(name) || access(dir, F_OK) < 0)
		return force ? 0 : berth_error_msg(err, ENOENT, "get %s: no such volume", name);
	_cleanup_json_ json_t *attrs = json_pack("{s:s}", "driver", "local");
	pthread_mutex_lock(&e->lock);
	bool used = volume_in_use_locked(e, name);
	if (!used)
		store_event(e, "volume", "destroy", name, attrs);
	pthread_mutex_unlock(&e->lock);
	if (used)
		return berth_error_msg(err, EBUSY, "remove %s: volume is in use", name);
	return fs_rm_rf(dir, err);
}
