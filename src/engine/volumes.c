/*
 * volumes.c - the local volume driver: <root>/volumes/<name>/_data plus a
 * small metadata file (<name>/meta.json: labels, options, created). A named
 * volume used by -v name:/dst is created on first use, as docker does.
 * Driver options type/device/o (`--mount volume-opt=...`, `volume create -o`)
 * make _data a mount of that file system, done on first use and undone when
 * the volume is removed, like docker's local driver.
 */
#include <ctype.h>
#include <dirent.h>
#include <sys/mount.h>
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
	json_t *opts = json_object_get(meta, "options");
	return json_pack("{s:s,s:s,s:s,s:s,s:O,s:s,s:O}", "Name", name, "Driver", "local", "Mountpoint", mp,
			 "CreatedAt", json_string_value(json_object_get(meta, "created")) ?: "", "Labels",
			 labels ? labels : json_object(), "Scope", "local", "Options",
			 opts ? opts : json_object());
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
	return engine_volume_create_full(e, name, labels, NULL, ret, err);
}

int engine_volume_create_opts(struct engine *e, const char *name, const json_t *labels,
			      const json_t *driver_opts, json_t **ret, struct berth_error **err)
{
	return engine_volume_create_full(e, name, labels, driver_opts, ret, err);
}

static int check_driver_opts(const json_t *opts, struct berth_error **err)
{
	if (!opts || json_is_null(opts))
		return 0;
	if (!json_is_object(opts))
		return json_type_error(NULL, "DriverOpts", "object", opts, err);
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)opts, k, v) {
		if (!json_is_string(v))
			return json_type_error("DriverOpts", k, "string", v, err);
		if (!streq(k, "type") && !streq(k, "device") && !streq(k, "o"))
			return berth_error_msg(err, EINVAL, "invalid option key: '%s'", k);
	}
	if (json_object_size(opts) && !json_object_get(opts, "device"))
		return berth_error_msg(err, EINVAL,
				       "invalid volume options: 'device' is required with 'type' or 'o'");
	return 0;
}

int engine_volume_create_full(struct engine *e, const char *name, const json_t *labels, const json_t *opts,
			      json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *gen = NULL;
	if (!name || !*name)
		name = gen = util_random_hex(32);
	if (!volume_name_valid(name))
		return berth_error_msg(err, EINVAL,
				       "create %s: \"%s\" includes invalid characters for a local volume "
				       "name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
				       name, name);
	if (labels && !json_is_null(labels) && !json_is_object(labels))
		return json_type_error(NULL, "Labels", "object", labels, err);
	int r0 = check_driver_opts(opts, err);
	if (r0 < 0)
		return r0;
	_cleanup_free_ char *data = xasprintf("%s/volumes/%s/_data", e->root, name);
	_cleanup_free_ char *metap = xasprintf("%s/volumes/%s/meta.json", e->root, name);
	if (access(metap, F_OK) < 0) {
		int r = fs_mkdir_p(data, 0755, err);
		if (r < 0)
			return r;
		struct timespec ts;
		char t[RFC3339_MAX];
		clock_gettime(CLOCK_REALTIME, &ts);
		util_format_rfc3339(&ts, t);
		_cleanup_json_ json_t *meta =
		    json_pack("{s:s,s:o,s:o}", "created", t, "labels",
			      json_is_object(labels) ? json_incref((json_t *)labels) : json_object(),
			      "options", json_is_object(opts) ? json_incref((json_t *)opts) : json_object());
		_cleanup_free_ char *text = json_dumps(meta, JSON_COMPACT);
		r = fs_write_file_atomic(metap, text, strlen(text), 0600, err);
		if (r < 0)
			return r;
		_cleanup_json_ json_t *attrs = json_pack("{s:s}", "driver", "local");
		pthread_mutex_lock(&e->lock);
		engine_store_event(e, "volume", "create", name, attrs);
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

/* _data is a mount point when its device differs from its parent's. */
static bool volume_is_mounted(const char *data)
{
	struct stat a, b;
	_cleanup_free_ char *parent = xasprintf("%s/..", data);
	return stat(data, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

int engine_volume_mount_driver(struct engine *e, const char *name, struct berth_error **err)
{
	_cleanup_json_ json_t *meta = load_meta(e, name);
	json_t *opts = json_object_get(meta, "options");
	const char *device = json_string_value(json_object_get(opts, "device"));
	if (!device)
		return 0;
	const char *type = json_string_value(json_object_get(opts, "type"));
	const char *o = json_string_value(json_object_get(opts, "o"));
	_cleanup_free_ char *data = xasprintf("%s/volumes/%s/_data", e->root, name);
	if (volume_is_mounted(data))
		return 0;
	unsigned long flags = 0;
	if (type && streq(type, "none"))
		flags |= MS_BIND, type = NULL;
	if (o && (streq(o, "bind") || startswith(o, "bind,") || strstr(o, ",bind")))
		flags |= MS_BIND;
	if (mount(device, data, type, flags, flags & MS_BIND ? NULL : o) < 0)
		return berth_error_errno(err, "mount volume '%s' (type '%s', device '%s')", name,
					 type ? type : "none", device);
	return 0;
}

/* Does a container use volume name? ids (may be NULL): their IDs, space-separated, as dockerd lists them. */
static bool volume_in_use_locked(struct engine *e, const char *name, struct strbuf *ids)
{
	size_t nlen = strlen(name);
	bool used = false;
	for (size_t i = 0; i < e->n_cs; i++) {
		bool mine = false;
		size_t k;
		json_t *b;
		json_array_foreach (json_object_get(e->cs[i]->hostconfig, "Binds"), k, b) {
			const char *s = json_string_value(b);
			mine = mine || (s && !strncmp(s, name, nlen) && s[nlen] == ':');
		}
		json_array_foreach (e->cs[i]->mounts, k, b)
			mine = mine || (streq(json_string_value(json_object_get(b, "Type")), "volume") &&
					streq(json_string_value(json_object_get(b, "Name")), name));
		if (mine && ids)
			strbuf_addf(ids, "%s%s", ids->len ? " " : "", e->cs[i]->id);
		used = used || mine;
	}
	return used;
}

int engine_volume_remove(struct engine *e, const char *name, bool force, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/volumes/%s", e->root, name);
	if (!volume_name_valid(name) || access(dir, F_OK) < 0)
		return force ? 0 : berth_error_msg(err, ENOENT, "get %s: no such volume", name);
	_cleanup_json_ json_t *attrs = json_pack("{s:s}", "driver", "local");
	pthread_mutex_lock(&e->lock);
	_cleanup_strbuf_ struct strbuf ids = STRBUF_INIT;
	bool used = volume_in_use_locked(e, name, &ids);
	if (!used)
		engine_store_event(e, "volume", "destroy", name, attrs);
	pthread_mutex_unlock(&e->lock);
	if (used)
		return berth_error_msg(err, EBUSY, "remove %s: volume is in use - [%s]", name, ids.buf);
	_cleanup_free_ char *data = xasprintf("%s/_data", dir);
	if (volume_is_mounted(data) && umount2(data, MNT_DETACH) < 0)
		return berth_error_errno(err, "remove %s: unmount", name);
	return fs_rm_rf(dir, err);
}
