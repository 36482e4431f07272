/*
 * mounts.c - a container's mount points: resolved once at create from
 * --volumes-from, -v (Binds), --mount (Mounts) and the image's VOLUME list
 * (docker's precedence, in that order, later ones replacing earlier ones at
 * the same destination), stored with the container, turned into OCI mounts
 * at every start (with the one-time copy-up into empty volumes), and their
 * anonymous volumes removed with `rm -v` / `--rm`.
 */
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/options.h"

static json_t *find_dst(json_t *mounts, const char *dst, size_t *ret_index)
{
	size_t i;
	json_t *m;
	json_array_foreach (mounts, i, m)
		if (streq(json_string_value(json_object_get(m, "Destination")), dst)) {
			if (ret_index)
				*ret_index = i;
			return m;
		}
	return NULL;
}

/* Add m (stolen); replace = may override one from an earlier source. */
static int add_point(json_t *mounts, json_t *m, json_t *seen, struct berth_error **err)
{
	const char *dst = json_string_value(json_object_get(m, "Destination"));
	size_t idx;
	if (json_object_get(seen, dst)) {
		int r = berth_error_msg(err, EINVAL, "Duplicate mount point: %s", dst);
		json_decref(m);
		return r;
	}
	json_object_set_new(seen, dst, json_true());
	if (find_dst(mounts, dst, &idx))
		json_array_set_new(mounts, idx, m);
	else
		json_array_append_new(mounts, m);
	return 0;
}

static int volumes_from(struct engine *e, const json_t *hc, json_t *mounts, struct berth_error **err)
{
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(hc, "VolumesFrom"), i, el) {
		_cleanup_free_ char *ref = xstrdup(json_string_value(el));
		char *mode = strchr(ref, ':');
		if (mode)
			*mode++ = '\0';
		if (mode && !streq(mode, "ro") && !streq(mode, "rw"))
			return berth_error_msg(err, EINVAL, "invalid mode: %s", mode);
		struct container *src;
		pthread_mutex_lock(&e->lock);
		int r = engine_container_find_locked(e, ref, &src, NULL);
		_cleanup_json_ json_t *copy = r >= 0 ? json_deep_copy(src->mounts) : NULL;
		if (r >= 0)
			engine_container_unref(src);
		pthread_mutex_unlock(&e->lock);
		/* a 404 would make docker's CLI try to pull the image: it is a bad parameter */
		if (r < 0)
			return berth_error_msg(err, EINVAL, "--volumes-from: No such container: %s", ref);
		size_t k;
		json_t *m;
		json_array_foreach (copy, k, m) {
			if (streq(json_string_value(json_object_get(m, "Type")), "tmpfs"))
				continue;
			/* owned by the source container; "copy" kept: a volume it never
			 * populated (created, not started) gets this image's content */
			json_object_del(m, "anonymous");
			if (mode)
				json_object_set_new(m, "RW", json_boolean(streq(mode, "rw")));
			size_t idx;
			const char *dst = json_string_value(json_object_get(m, "Destination"));
			if (find_dst(mounts, dst, &idx))
				json_array_set(mounts, idx, m);
			else
				json_array_append(mounts, m);
		}
	}
	return 0;
}

static int user_points(const json_t *hc, json_t *mounts, struct berth_error **err)
{
	_cleanup_json_ json_t *seen = json_object();
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(hc, "Binds"), i, el) {
		json_t *m;
		int r = engine_bind_parse(json_string_value(el), &m, err);
		if (r < 0 || (r = add_point(mounts, m, seen, err)) < 0)
			return r;
	}
	json_t *ms = json_object_get(hc, "Mounts");
	if (ms && !json_is_null(ms) && !json_is_array(ms))
		return json_type_error("HostConfig", "Mounts", "array", ms, err);
	json_array_foreach (ms, i, el) {
		_cleanup_free_ char *p = json_path_index("HostConfig.Mounts", i);
		json_t *m;
		int r = engine_mount_parse(el, p, &m, err);
		if (r < 0 || (r = add_point(mounts, m, seen, err)) < 0)
			return r;
	}
	return 0;
}

static void image_volumes(const json_t *cfg, json_t *mounts)
{
	const char *dst;
	json_t *v;
	json_object_foreach (json_object_get(cfg, "Volumes"), dst, v) {
		if (!dst[0])
			continue;
		_cleanup_free_ char *clean = fs_path_clean(dst);
		if (clean[0] != '/' || streq(clean, "/") || find_dst(mounts, clean, NULL))
			continue;
		json_array_append_new(mounts, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:b,s:b}", "Type",
							"volume", "Name", "", "Source", "", "Destination",
							clean, "Driver", "local", "Mode", "", "RW", 1,
							"Propagation", "", "copy", 1, "anonymous", 1));
	}
}

/* Create the volumes named (or anonymous) in the plan and fill in their sources. */
static int create_volumes(struct engine *e, json_t *mounts, struct berth_error **err)
{
	size_t i;
	json_t *m;
	json_array_foreach (mounts, i, m) {
		if (!streq(json_string_value(json_object_get(m, "Type")), "volume"))
			continue;
		const char *name = json_string_value(json_object_get(m, "Name"));
		_cleanup_free_ char *gen = name && *name ? NULL : util_random_hex(32);
		if (gen)
			name = gen;
		int r = engine_volume_create_full(e, name, json_object_get(m, "labels"),
						  json_object_get(m, "options"), NULL, err);
		if (r < 0)
			return r;
		_cleanup_free_ char *src = xasprintf("%s/volumes/%s/_data", e->root, name);
		json_object_set_new(m, "Name", json_string(name));
		json_object_set_new(m, "Source", json_string(src));
		json_object_del(m, "labels");
		json_object_del(m, "options");
	}
	return 0;
}

static int depth_of(const json_t *m)
{
	int n = 0;
	for (const char *p = json_string_value(json_object_get(m, "Destination")); p && *p; p++)
		n += *p == '/';
	return n;
}

static int by_depth(const void *a, const void *b)
{
	return depth_of(*(json_t *const *)a) - depth_of(*(json_t *const *)b);
}

static json_t *sorted(json_t *mounts)
{
	size_t n = json_array_size(mounts);
	json_t **v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_array_get(mounts, i);
	qsort(v, n, sizeof(*v), by_depth);
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

int engine_mounts_plan(struct engine *e, const json_t *cfg, const json_t *hc, json_t **ret,
		       struct berth_error **err)
{
	_cleanup_json_ json_t *mounts = json_array();
	int r;
	if ((e && (r = volumes_from(e, hc, mounts, err)) < 0) || (r = user_points(hc, mounts, err)) < 0)
		return r;
	image_volumes(cfg, mounts);
	if (e && (r = create_volumes(e, mounts, err)) < 0)
		return r;
	*ret = sorted(mounts);
	return 0;
}

static void add_oci(json_t *oci, const char *dst, const char *type, const char *src, json_t *opts)
{
	json_array_append_new(oci, json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type, "source",
					     src, "options", opts));
}

static int volume_point(struct engine *e, const char *rootfs, json_t *m, bool *changed,
			struct berth_error **err)
{
	const char *name = json_string_value(json_object_get(m, "Name"));
	const char *src = json_string_value(json_object_get(m, "Source"));
	int r =
	    engine_volume_create_full(e, name, NULL, NULL, NULL, err); /* recreated if removed meanwhile */
	if (r < 0)
		return r;
	if ((r = engine_volume_mount_driver(e, name, err)) < 0)
		return r;
	if (json_is_true(json_object_get(m, "copy"))) {
		const char *dst = json_string_value(json_object_get(m, "Destination"));
		if ((r = engine_copyup_volume(rootfs, dst, src, err)) < 0)
			return r;
		json_object_set_new(m, "copy", json_false());
		*changed = true;
	}
	return 0;
}

int engine_mounts_to_oci(struct engine *e, struct container *c, const char *rootfs, json_t *oci,
			 bool *ret_changed, struct berth_error **err)
{
	size_t i;
	json_t *m;
	*ret_changed = false;
	json_array_foreach (c->mounts, i, m) {
		const char *type = json_string_value(json_object_get(m, "Type"));
		const char *dst = json_string_value(json_object_get(m, "Destination"));
		const char *src = json_string_value(json_object_get(m, "Source"));
		const char *prop = json_string_value(json_object_get(m, "Propagation"));
		bool rw = json_is_true(json_object_get(m, "RW"));
		int r = 0;
		if (!type || !dst || !src)
			continue;
		if (streq(type, "tmpfs")) {
			json_t *o = json_pack("[s,s,s]", "nosuid", "nodev", "noexec");
			const char *t = json_string_value(json_object_get(m, "tmpfs"));
			_cleanup_free_ char *copy = xstrdup(t ? t : "");
			char *save = NULL;
			for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				json_array_append_new(o, json_string(tok));
			json_array_append_new(o, json_string(rw ? "rw" : "ro"));
			add_oci(oci, dst, "tmpfs", "tmpfs", o);
			continue;
		}
		if (streq(type, "volume"))
			r = volume_point(e, rootfs, m, ret_changed, err);
		else if (json_is_true(json_object_get(m, "create_source")) && access(src, F_OK) < 0)
			r = fs_mkdir_p(src, 0755, err);
		if (r < 0)
			return r;
		bool nonrec = json_is_true(json_object_get(m, "nonrecursive"));
		add_oci(oci, dst, "bind", src,
			json_pack("[s,s,s]", nonrec ? "bind" : "rbind", prop && *prop ? prop : "rprivate",
				  rw ? "rw" : "ro"));
	}
	return 0;
}

json_t *engine_mounts_anonymous(const struct container *c)
{
	json_t *names = json_array();
	size_t i;
	json_t *m;
	json_array_foreach (c->mounts, i, m)
		if (json_is_true(json_object_get(m, "anonymous")))
			json_array_append(names, json_object_get(m, "Name"));
	return names;
}

void engine_mounts_remove_volumes(struct engine *e, const json_t *names)
{
	size_t i;
	json_t *n;
	json_array_foreach (names, i, n)
		engine_volume_remove(e, json_string_value(n), true, NULL); /* in use elsewhere: kept */
}
