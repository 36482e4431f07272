/*
 * mountspec.c - docker's two mount syntaxes turned into mount points:
 * `-v [SRC:]DST[:MODE]` (HostConfig.Binds) and `--mount` objects
 * (HostConfig.Mounts). Pure: no engine state; errors use docker's wording
 * where it has one, so scripts matching on them keep working.
 */
#include <ctype.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/options.h"

static const char *const propagations[] = { "private", "rprivate", "shared", "rshared", "slave", "rslave" };

static bool is_propagation(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(propagations); i++)
		if (streq(s, propagations[i]))
			return true;
	return false;
}

static json_t *mount_point(const char *type, const char *dst)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:b,s:s}", "Type", type, "Source", "", "Destination", dst, "Mode",
			 "", "RW", 1, "Propagation", "");
}

static int check_destination(const char *type, const char *dst, struct berth_error **err)
{
	if (!dst || !*dst)
		return berth_error_msg(err, EINVAL,
				       "invalid mount config for type \"%s\": field Target must not be empty",
				       type);
	if (dst[0] != '/')
		return berth_error_msg(
		    err, EINVAL,
		    "invalid mount config for type \"%s\": invalid mount path: '%s' mount path must "
		    "be absolute",
		    type, dst);
	_cleanup_free_ char *clean = fs_path_clean(dst);
	if (streq(clean, "/"))
		return berth_error_msg(err, EINVAL, "invalid specification: destination can't be '/'");
	return 0;
}

/* Apply a -v MODE list to mount point m. */
static int apply_mode(json_t *m, const char *mode, bool volume, struct berth_error **err)
{
	_cleanup_free_ char *copy = xstrdup(mode);
	int rw = 0, label = 0, prop = 0, nocopy = 0;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (streq(t, "ro") || streq(t, "rw")) {
			rw++;
			json_object_set_new(m, "RW", json_boolean(streq(t, "rw")));
		} else if (streq(t, "z") || streq(t, "Z")) {
			label++; /* SELinux relabeling: accepted, nothing to do without SELinux */
		} else if (streq(t, "nocopy")) {
			nocopy++;
		} else if (is_propagation(t)) {
			prop++;
			json_object_set_new(m, "Propagation", json_string(t));
		} else {
			return berth_error_msg(err, EINVAL, "invalid mode: %s", mode);
		}
	}
	if (rw > 1 || label > 1 || prop > 1 || nocopy > 1 || !*mode || mode[strlen(mode) - 1] == ',' ||
	    (nocopy && !volume) || (prop && volume))
		return berth_error_msg(err, EINVAL, "invalid mode: %s", mode);
	if (nocopy)
		json_object_set_new(m, "copy", json_false());
	json_object_set_new(m, "Mode", json_string(mode));
	return 0;
}

int engine_bind_parse(const char *spec, json_t **ret, struct berth_error **err)
{
	if (!spec || !*spec)
		return berth_error_msg(err, EINVAL, "invalid volume specification: ''");
	_cleanup_free_ char *s = xstrdup(spec);
	char *parts[4] = { 0 };
	size_t n = 0;
	for (char *p = s; p && n < 4; n++) {
		parts[n] = p;
		p = strchr(p, ':');
		if (p)
			*p++ = '\0';
	}
	if (n > 3 || (n == 4))
		return berth_error_msg(err, EINVAL, "invalid volume specification: '%s'", spec);
	const char *src = n >= 2 ? parts[0] : NULL, *dst = n >= 2 ? parts[1] : parts[0];
	const char *mode = n == 3 ? parts[2] : NULL;
	if ((src && !*src) || !*dst)
		return berth_error_msg(err, EINVAL, "invalid volume specification: '%s'", spec);
	bool volume = !src || src[0] != '/';
	const char *type = volume ? "volume" : "bind";
	if (dst[0] != '/')
		return berth_error_msg(err, EINVAL,
				       "invalid volume specification: '%s': invalid mount config for type "
				       "\"%s\": invalid mount path: '%s' mount path must be absolute",
				       spec, type, dst);
	int r = check_destination(type, dst, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *cdst = fs_path_clean(dst);
	_cleanup_json_ json_t *m = mount_point(type, cdst);
	if (volume) {
		json_object_set_new(m, "Name", json_string(src ? src : ""));
		json_object_set_new(m, "Driver", json_string("local"));
		json_object_set_new(m, "Mode", json_string("z"));
		json_object_set_new(m, "copy", json_true());
		if (!src)
			json_object_set_new(m, "anonymous", json_true());
	} else {
		_cleanup_free_ char *csrc = fs_path_clean(src);
		json_object_set_new(m, "Source", json_string(csrc));
		json_object_set_new(m, "Propagation", json_string("rprivate"));
		json_object_set_new(m, "create_source", json_true()); /* -v creates a missing host dir */
	}
	if (mode && (r = apply_mode(m, mode, volume, err)) < 0)
		return r;
	*ret = TAKE_PTR(m);
	return 0;
}

/* Options object key of another type present: docker's "field X must not be specified". */
static int check_foreign_options(const json_t *m, const char *type, struct berth_error **err)
{
	static const struct {
		const char *key, *type;
	} opts[] = { { "BindOptions", "bind" }, { "VolumeOptions", "volume" }, { "TmpfsOptions", "tmpfs" } };
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		json_t *v = json_object_get(m, opts[i].key);
		if (v && !json_is_null(v) && !streq(type, opts[i].type))
			return berth_error_msg(
			    err, EINVAL,
			    "invalid mount config for type \"%s\": field %s must not be specified", type,
			    opts[i].key);
		if (v && !json_is_null(v) && !json_is_object(v))
			return json_type_error("Mounts", opts[i].key, "object", v, err);
	}
	return 0;
}

static int parse_bind_options(const json_t *m, const char *path, json_t *mp, struct berth_error **err)
{
	json_t *bo = json_object_get(m, "BindOptions");
	const char *prop = NULL;
	bool nonrec = false;
	_cleanup_free_ char *p = json_path_join(path, "BindOptions");
	int r;
	if ((r = json_get_string(bo, p, "Propagation", 0, &prop, err)) < 0 ||
	    (r = json_get_bool(bo, p, "NonRecursive", 0, &nonrec, err)) < 0)
		return r;
	if (prop && *prop && !is_propagation(prop))
		return berth_error_msg(
		    err, EINVAL, "invalid mount config for type \"bind\": invalid propagation mode '%s'",
		    prop);
	json_object_set_new(mp, "Propagation", json_string(prop && *prop ? prop : "rprivate"));
	if (nonrec)
		json_object_set_new(mp, "nonrecursive", json_true());
	return 0;
}

static int parse_volume_options(const json_t *m, const char *path, json_t *mp, struct berth_error **err)
{
	json_t *vo = json_object_get(m, "VolumeOptions");
	_cleanup_free_ char *p = json_path_join(path, "VolumeOptions");
	bool nocopy = false;
	json_t *labels = NULL, *dc = NULL, *dopts = NULL;
	int r;
	if ((r = json_get_bool(vo, p, "NoCopy", 0, &nocopy, err)) < 0 ||
	    (r = json_get_object(vo, p, "Labels", 0, &labels, err)) < 0 ||
	    (r = json_get_object(vo, p, "DriverConfig", 0, &dc, err)) < 0)
		return r;
	_cleanup_free_ char *dp = json_path_join(p, "DriverConfig");
	const char *driver = NULL;
	if ((r = json_get_string(dc, dp, "Name", 0, &driver, err)) < 0 ||
	    (r = json_get_object(dc, dp, "Options", 0, &dopts, err)) < 0)
		return r;
	if (driver && *driver && !streq(driver, "local"))
		return berth_error_msg(err, ENOENT,
				       "error looking up volume plugin %s: plugin \"%s\" not found", driver,
				       driver);
	const char *k;
	json_t *v;
	json_object_foreach (labels, k, v)
		if (!json_is_string(v))
			return json_type_error(p, "Labels", "object of strings", labels, err);
	json_object_foreach (dopts, k, v)
		if (!json_is_string(v))
			return json_type_error(dp, "Options", "object of strings", dopts, err);
	json_object_set_new(mp, "copy", json_boolean(!nocopy));
	if (labels)
		json_object_set(mp, "labels", labels);
	if (dopts && json_object_size(dopts))
		json_object_set(mp, "options", dopts);
	return 0;
}

static int parse_tmpfs_options(const json_t *m, const char *path, json_t *mp, struct berth_error **err)
{
	json_t *to = json_object_get(m, "TmpfsOptions");
	_cleanup_free_ char *p = json_path_join(path, "TmpfsOptions");
	int64_t size = 0, mode = 0;
	int r;
	if ((r = json_get_int_range(to, p, "SizeBytes", 0, 0, INT64_MAX, &size, err)) < 0 ||
	    (r = json_get_int_range(to, p, "Mode", 0, 0, 07777, &mode, err)) < 0)
		return r;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (size > 0)
		strbuf_addf(&sb, "size=%lld", (long long)size);
	if (mode > 0)
		strbuf_addf(&sb, "%smode=%llo", sb.len ? "," : "", (unsigned long long)mode);
	json_object_set_new(mp, "tmpfs", json_string(sb.buf));
	return 0;
}

int engine_mount_parse(const json_t *m, const char *path, json_t **ret, struct berth_error **err)
{
	if (!json_is_object(m))
		return json_type_error(NULL, path, "object", m, err);
	const char *type = NULL, *src = NULL, *dst = NULL;
	bool ro = false;
	int r;
	if ((r = json_get_string(m, path, "Type", 0, &type, err)) < 0 ||
	    (r = json_get_string(m, path, "Source", 0, &src, err)) < 0 ||
	    (r = json_get_string(m, path, "Target", 0, &dst, err)) < 0 ||
	    (r = json_get_bool(m, path, "ReadOnly", 0, &ro, err)) < 0)
		return r;
	if (!type || !*type)
		return berth_error_msg(err, EINVAL, "invalid mount config: mount type must be specified");
	if (!streq(type, "bind") && !streq(type, "volume") && !streq(type, "tmpfs"))
		return berth_error_msg(err, EINVAL,
				       "invalid mount config for type \"%s\": mount type unknown", type);
	if ((r = check_destination(type, dst, err)) < 0 || (r = check_foreign_options(m, type, err)) < 0)
		return r;
	_cleanup_free_ char *cdst = fs_path_clean(dst);
	_cleanup_json_ json_t *mp = mount_point(type, cdst);
	json_object_set_new(mp, "RW", json_boolean(!ro));
	if (streq(type, "bind")) {
		if (!src || !*src)
			return berth_error_msg(
			    err, EINVAL,
			    "invalid mount config for type \"bind\": field Source must not be empty");
		if (src[0] != '/')
			return berth_error_msg(
			    err, EINVAL,
			    "invalid mount config for type \"bind\": invalid mount path: '%s' mount "
			    "path must be absolute",
			    src);
		struct stat st;
		if (stat(src, &st) < 0)
			return berth_error_msg(
			    err, EINVAL,
			    "invalid mount config for type \"bind\": bind source path does not exist: "
			    "%s",
			    src);
		_cleanup_free_ char *csrc = fs_path_clean(src);
		json_object_set_new(mp, "Source", json_string(csrc));
		r = parse_bind_options(m, path, mp, err);
	} else if (streq(type, "volume")) {
		if (src && *src && src[0] == '/')
			return berth_error_msg(
			    err, EINVAL, "invalid mount config for type \"volume\": invalid volume name '%s'",
			    src);
		json_object_set_new(mp, "Name", json_string(src ? src : ""));
		json_object_set_new(mp, "Driver", json_string("local"));
		json_object_set_new(mp, "Mode", json_string("z"));
		if (!src || !*src)
			json_object_set_new(mp, "anonymous", json_true());
		r = parse_volume_options(m, path, mp, err);
	} else {
		if (src && *src)
			return berth_error_msg(
			    err, EINVAL,
			    "invalid mount config for type \"tmpfs\": field Source must not be specified");
		r = parse_tmpfs_options(m, path, mp, err);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(mp);
	return 0;
}

json_t *engine_mounts_public(const json_t *mounts)
{
	json_t *out = json_array();
	size_t i;
	json_t *m;
	json_array_foreach (mounts, i, m) {
		json_t *o = json_object();
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)m, k, v)
			if (isupper((unsigned char)k[0]))
				json_object_set(o, k, v);
		json_array_append_new(out, o);
	}
	return out;
}
