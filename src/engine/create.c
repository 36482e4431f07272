/*
 * create.c - POST /containers/create semantics: validate the Docker-shaped
 * Config/HostConfig (types checked, errors name the field), merge the image's
 * defaults the way docker does, and register the container.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/options.h"

/* Type rules for the members we act on; unknown members are kept as they are. */
struct field_rule {
	const char *key;
	json_type
	    type; /* JSON_STRING, JSON_TRUE (bool), JSON_INTEGER, JSON_ARRAY (of strings), JSON_OBJECT */
};

static const struct field_rule config_rules[] = {
	{ "Image", JSON_STRING },       { "Hostname", JSON_STRING },   { "Domainname", JSON_STRING },
	{ "User", JSON_STRING },        { "WorkingDir", JSON_STRING }, { "StopSignal", JSON_STRING },
	{ "Tty", JSON_TRUE },           { "OpenStdin", JSON_TRUE },    { "StdinOnce", JSON_TRUE },
	{ "AttachStdin", JSON_TRUE },   { "AttachStdout", JSON_TRUE }, { "AttachStderr", JSON_TRUE },
	{ "Env", JSON_ARRAY },          { "Labels", JSON_OBJECT },     { "StopTimeout", JSON_INTEGER },
	{ "Healthcheck", JSON_OBJECT }, { "Volumes", JSON_OBJECT },    { "ExposedPorts", JSON_OBJECT },
};

static const struct field_rule host_rules[] = {
	{ "Binds", JSON_ARRAY },       { "NetworkMode", JSON_STRING },  { "AutoRemove", JSON_TRUE },
	{ "Privileged", JSON_TRUE },   { "ReadonlyRootfs", JSON_TRUE }, { "CapAdd", JSON_ARRAY },
	{ "CapDrop", JSON_ARRAY },     { "Memory", JSON_INTEGER },      { "NanoCpus", JSON_INTEGER },
	{ "CpuShares", JSON_INTEGER }, { "PidsLimit", JSON_INTEGER },   { "RestartPolicy", JSON_OBJECT },
	{ "LogConfig", JSON_OBJECT },  { "SecurityOpt", JSON_ARRAY },   { "Tmpfs", JSON_OBJECT },
	{ "CpusetCpus", JSON_STRING }, { "Init", JSON_TRUE },           { "ExtraHosts", JSON_ARRAY },
	{ "Dns", JSON_ARRAY },         { "PidMode", JSON_STRING },      { "IpcMode", JSON_STRING },
	{ "UTSMode", JSON_STRING },    { "ShmSize", JSON_INTEGER },     { "MemorySwap", JSON_INTEGER },
	{ "VolumesFrom", JSON_ARRAY }, { "CpuQuota", JSON_INTEGER },    { "CpuPeriod", JSON_INTEGER },
	{ "CpusetMems", JSON_STRING }, { "BlkioWeight", JSON_INTEGER }, { "Runtime", JSON_STRING },
	{ "MaskedPaths", JSON_ARRAY }, { "ReadonlyPaths", JSON_ARRAY },
};

static int check_fields(const json_t *obj, const char *path, const struct field_rule *rules, size_t n,
			struct berth_error **err)
{
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return json_type_error(NULL, path, "object", obj, err);
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(obj, rules[i].key);
		if (!v || json_is_null(v))
			continue;
		bool ok;
		const char *want;
		switch (rules[i].type) {
		case JSON_STRING: ok = json_is_string(v), want = "string"; break;
		case JSON_TRUE: ok = json_is_boolean(v), want = "boolean"; break;
		case JSON_INTEGER: ok = json_is_integer(v), want = "integer"; break;
		case JSON_OBJECT: ok = json_is_object(v), want = "object"; break;
		default: {
			ok = json_is_array(v), want = "array of strings";
			size_t k;
			json_t *el;
			json_array_foreach (v, k, el)
				ok = ok && json_is_string(el);
		}
		}
		if (!ok)
			return json_type_error(path, rules[i].key, want, v, err);
	}
	return 0;
}

/* Cmd / Entrypoint: array of strings, or a string (docker's strslice). Normalised to an array. */
static int norm_strslice(json_t *obj, const char *key, struct berth_error **err)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		json_object_del(obj, key);
		return 0;
	}
	if (json_is_string(v)) {
		json_object_set_new(obj, key, json_pack("[O]", v));
		return 0;
	}
	size_t i;
	json_t *el;
	if (!json_is_array(v))
		return json_type_error("Config", key, "array of strings", v, err);
	json_array_foreach (v, i, el)
		if (!json_is_string(el))
			return json_type_error("Config", key, "array of strings", v, err);
	return 0;
}

/* As dockerd: the user's Env (a later KEY= replacing an earlier one), then the image's KEYs it does not set.
 */
static json_t *merge_env(const json_t *img, const json_t *user)
{
	json_t *out = json_array();
	const json_t *lists[] = { user, img };
	for (size_t l = 0; l < 2; l++) {
		size_t i;
		json_t *el;
		json_array_foreach (lists[l], i, el) {
			const char *s = json_string_value(el);
			if (!s)
				continue;
			size_t klen = strcspn(s, "=");
			size_t k;
			json_t *o;
			bool replaced = false;
			json_array_foreach (out, k, o) {
				const char *t = json_string_value(o);
				if (strlen(t) >= klen && !strncmp(t, s, klen) &&
				    (t[klen] == '=' || t[klen] == '\0')) {
					if (l == 0) /* the image's never replaces the user's */
						json_array_set(out, k, el);
					replaced = true;
					break;
				}
			}
			if (!replaced)
				json_array_append(out, el);
		}
	}
	return out;
}

static void merge_image(json_t *cfg, const json_t *imgcfg)
{
	const json_t *ic = json_object_get(imgcfg, "config");
	json_object_set_new(cfg, "Env", merge_env(json_object_get(ic, "Env"), json_object_get(cfg, "Env")));
	json_t *ep = json_object_get(cfg, "Entrypoint");
	bool user_ep = ep && !json_is_null(ep);
	/* `--entrypoint ''` ([""]): no entrypoint at all, not the image's (dockerd stores null), nor its Cmd
	 */
	bool reset_ep =
	    json_array_size(ep) == 1 && streq(json_string_value(json_array_get(ep, 0)) ?: "x", "");
	if (reset_ep)
		json_object_set_new(cfg, "Entrypoint", json_null());
	if (!user_ep && json_object_get(ic, "Entrypoint"))
		json_object_set(cfg, "Entrypoint", json_object_get(ic, "Entrypoint"));
	if (!json_object_get(cfg, "Cmd") && !user_ep && json_object_get(ic, "Cmd"))
		json_object_set(cfg, "Cmd", json_object_get(ic, "Cmd"));
	const char *keys[] = { "WorkingDir", "User", "StopSignal" };
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = json_string_value(json_object_get(cfg, keys[i]));
		json_t *iv = json_object_get(ic, keys[i]);
		if ((!v || !*v) && json_is_string(iv))
			json_object_set(cfg, keys[i], iv);
	}
	if (!json_object_get(cfg, "Healthcheck") && json_is_object(json_object_get(ic, "Healthcheck")))
		json_object_set(cfg, "Healthcheck", json_object_get(ic, "Healthcheck"));
	/* Volumes and ExposedPorts: the image's and the user's together, as docker merges them */
	const char *objs[] = { "Volumes", "ExposedPorts" };
	for (size_t i = 0; i < ARRAY_SIZE(objs); i++) {
		json_t *iv = json_object_get(ic, objs[i]);
		if (!json_is_object(iv) || !json_object_size(iv))
			continue;
		json_t *uv = json_object_get(cfg, objs[i]);
		if (!json_is_object(uv))
			json_object_set_new(cfg, objs[i], uv = json_object());
		json_object_update_missing(uv, iv);
	}
	json_t *labels = json_is_object(json_object_get(ic, "Labels"))
			     ? json_deep_copy(json_object_get(ic, "Labels"))
			     : json_object();
	json_object_update(labels, json_object_get(cfg, "Labels"));
	json_object_set_new(cfg, "Labels", labels);
}

static int check_restart(json_t *hc, struct berth_error **err)
{
	json_t *rp = json_object_get(hc, "RestartPolicy");
	const char *name = "";
	int r = json_get_string(rp, "HostConfig.RestartPolicy", "Name", 0, &name, err);
	if (r < 0)
		return r;
	int64_t max = 0;
	r = json_get_int_range(rp, "HostConfig.RestartPolicy", "MaximumRetryCount", 0, 0, 1 << 30, &max, err);
	if (r < 0)
		return r;
	if (*name && !streq(name, "no") && !streq(name, "always") && !streq(name, "on-failure") &&
	    !streq(name, "unless-stopped"))
		return berth_error_msg(err, EINVAL, "invalid restart policy '%s'", name);
	if (max > 0 && !streq(name, "on-failure"))
		return berth_error_msg(err, EINVAL,
				       "maximum retry count cannot be used with restart policy '%s'", name);
	if (*name && !streq(name, "no") && json_is_true(json_object_get(hc, "AutoRemove")))
		return berth_error_msg(err, EINVAL,
				       "can't create 'AutoRemove' container with restart policy");
	if (!rp)
		json_object_set_new(hc, "RestartPolicy",
				    json_pack("{s:s,s:i}", "Name", "", "MaximumRetryCount", 0));
	return 0;
}

/*
 * NetworkMode "" is "default". Whether a container:NAME or a network exists is
 * the start's question, as in dockerd (a 404 here makes the docker CLI pull
 * the image and report the pull's failure instead).
 */
static int check_network(struct engine *e, json_t *hc, struct berth_error **err)
{
	const char *mode = json_string_value(json_object_get(hc, "NetworkMode"));
	if (!mode || !*mode)
		json_object_set_new(hc, "NetworkMode", json_string("default"));
	return 0;
}

/* Fields dockerd always returns in HostConfig (clients index them without checking). */
static void hostconfig_defaults(json_t *hc)
{
	if (!json_is_object(json_object_get(hc, "LogConfig")))
		json_object_set_new(hc, "LogConfig", json_pack("{s:s,s:{}}", "Type", "json-file", "Config"));
	json_t *lc = json_object_get(hc, "LogConfig");
	const char *t = json_string_value(json_object_get(lc, "Type"));
	if (!t || !*t)
		json_object_set_new(lc, "Type", json_string("json-file"));
	if (!json_is_object(json_object_get(lc, "Config")))
		json_object_set_new(lc, "Config", json_object());
	static const char *const falses[] = { "AutoRemove", "Privileged", "ReadonlyRootfs",
					      "PublishAllPorts" };
	for (size_t i = 0; i < ARRAY_SIZE(falses); i++)
		if (!json_object_get(hc, falses[i]))
			json_object_set_new(hc, falses[i], json_false());
	static const char *const zeros[] = { "Memory",    "MemorySwap", "NanoCpus",
					     "CpuShares", "CpuPeriod",  "CpuQuota" };
	for (size_t i = 0; i < ARRAY_SIZE(zeros); i++)
		if (!json_object_get(hc, zeros[i]))
			json_object_set_new(hc, zeros[i], json_integer(0));
	if (json_integer_value(json_object_get(hc, "ShmSize")) <= 0) /* 0 (the CLI's): the default */
		json_object_set_new(hc, "ShmSize", json_integer(64 << 20));
	if (!json_object_get(hc, "PortBindings"))
		json_object_set_new(hc, "PortBindings", json_object());
	/* dockerd's default cgroup namespace mode on a cgroup v1 host (v2: private, not done here) */
	struct statfs sfs;
	const char *cgns = json_string_value(json_object_get(hc, "CgroupnsMode"));
	if ((!cgns || !*cgns) && statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type != CGROUP2_SUPER_MAGIC)
		json_object_set_new(hc, "CgroupnsMode", json_string("host"));
	const char *ipc = json_string_value(json_object_get(hc, "IpcMode"));
	if (!ipc || !*ipc)
		json_object_set_new(hc, "IpcMode", json_string("private"));
}

static bool is_no_new_privs(const char *s)
{
	return streq(s, "no-new-privileges") || streq(s, "no-new-privileges:true") ||
	       streq(s, "no-new-privileges=true");
}

/*
 * --security-opt: no-new-privileges, seccomp=unconfined, seccomp={profile}
 * (docker's CLI sends the file's content) or seccomp=/path (read by the
 * daemon and stored as content, so the container does not depend on it).
 */
static int security_opts_check(struct engine *e, json_t *hc, struct berth_error **err)
{
	size_t i;
	json_t *so;
	json_array_foreach (json_object_get(hc, "SecurityOpt"), i, so) {
		const char *s = json_string_value(so);
		if (is_no_new_privs(s) || streq(s, "seccomp=unconfined") || streq(s, "seccomp:unconfined") ||
		    streq(s, "apparmor=unconfined") || streq(s, "label=disable") || streq(s, "label:disable"))
			continue;
		if (!startswith(s, "seccomp=") && !startswith(s, "seccomp:"))
			return berth_error_msg(
			    err, EINVAL,
			    "invalid --security-opt '%.64s': supported are no-new-privileges, "
			    "seccomp=unconfined|PROFILE, apparmor=unconfined, label=disable",
			    s);
		const char *v = s + 8;
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		if (v[0] != '{') {
			if (v[0] != '/')
				return berth_error_msg(
				    err, EINVAL, "opening seccomp profile (%s) failed: path must be absolute",
				    v);
			int r = fs_read_file_at(AT_FDCWD, v, 1 << 20, &sb, err);
			if (r < 0)
				return berth_error_wrap(err, r, "opening seccomp profile (%s) failed", v);
			v = sb.buf;
		}
		_cleanup_json_ json_t *oci = NULL;
		_cleanup_json_ json_t *caps = json_array();
		int r = engine_seccomp_profile_to_oci(v, strlen(v), caps, &oci, err);
		if (r < 0)
			return berth_error_wrap(err, r, "decoding seccomp profile failed");
		if (e && sb.len)
			json_array_set_new(json_object_get(hc, "SecurityOpt"), i,
					   json_sprintf("seccomp=%s", v));
	}
	return 0;
}

/* docker run --cgroup-parent: the container's cgroup is /<parent>/<id> in every hierarchy. */
static int check_cgroup_parent(const json_t *hc, struct berth_error **err)
{
	json_t *v = json_object_get(hc, "CgroupParent");
	if (!v || json_is_null(v) || (json_is_string(v) && !*json_string_value(v)))
		return 0;
	if (!json_is_string(v))
		return json_type_error("HostConfig", "CgroupParent", "string", v, err);
	if (!engine_cgroup_parent_valid(json_string_value(v)))
		return berth_error_msg(err, EINVAL,
				       "invalid cgroup parent '%s': expected a path of [A-Za-z0-9_.-] names "
				       "without '.' or '..'",
				       json_string_value(v));
	return 0;
}

/*
 * docker run --runtime NAME: a runtime the daemon defines ("Unknown runtime
 * specified NAME", 400, as dockerd); none named: the daemon's default, stored
 * with the container (dockerd's adaptContainerSettings). e NULL: types only.
 */
static int check_runtime(struct engine *e, json_t *hc, struct berth_error **err)
{
	const char *name = json_string_value(json_object_get(hc, "Runtime"));
	if (!e)
		return 0;
	if (!name || !*name) {
		json_object_set_new(hc, "Runtime", json_string(engine_runtime_default(e)));
		return 0;
	}
	return engine_runtime_check(e, name, err);
}

/* dockerd's create-time checks of StopSignal and of the Healthcheck's durations (1 ms minimum). */
static int check_signal_and_health(const json_t *cfg, struct berth_error **err)
{
	const char *sig = json_string_value(json_object_get(cfg, "StopSignal"));
	if (sig && *sig && engine_signal_parse(sig) < 0)
		return berth_error_msg(err, EINVAL, "Invalid signal: %s", sig);
	const json_t *h = json_object_get(cfg, "Healthcheck");
	static const char *const durations[] = { "Interval", "Timeout", "StartPeriod" };
	for (size_t i = 0; i < ARRAY_SIZE(durations); i++) {
		json_t *v = json_object_get(h, durations[i]);
		if (v && !json_is_null(v) && !json_is_integer(v))
			return json_type_error("Config.Healthcheck", durations[i], "integer", v, err);
		json_int_t ns = json_integer_value(v);
		if (ns != 0 && ns < 1000000)
			return berth_error_msg(err, EINVAL, "%s in Healthcheck cannot be less than 1ms",
					       durations[i]);
	}
	if (json_integer_value(json_object_get(h, "Retries")) < 0)
		return berth_error_msg(err, EINVAL, "Retries in Healthcheck cannot be negative");
	return 0;
}

static int validate(struct engine *e, json_t *cfg, json_t *hc, struct berth_error **err)
{
	int r;
	if ((r = check_fields(cfg, "Config", config_rules, ARRAY_SIZE(config_rules), err)) < 0 ||
	    (r = check_fields(hc, "HostConfig", host_rules, ARRAY_SIZE(host_rules), err)) < 0 ||
	    (r = norm_strslice(cfg, "Cmd", err)) < 0 || (r = norm_strslice(cfg, "Entrypoint", err)) < 0 ||
	    (r = check_restart(hc, err)) < 0 || (r = check_network(e, hc, err)) < 0 ||
	    (r = check_cgroup_parent(hc, err)) < 0 || (r = check_runtime(e, hc, err)) < 0 ||
	    (r = engine_working_dir_check(cfg, err)) < 0 || (r = engine_resources_check(hc, err)) < 0 ||
	    (r = check_signal_and_health(cfg, err)) < 0)
		return r;
	hostconfig_defaults(hc);
	engine_spec_default_paths(hc);
	json_t *labels = json_object_get(cfg, "Labels");
	const char *k;
	json_t *v;
	json_object_foreach (labels, k, v)
		if (!json_is_string(v))
			return json_type_error("Config.Labels", k, "string", v, err);
	if ((r = engine_log_settings_get(json_object_get(hc, "LogConfig"), "", "", NULL, err)) < 0)
		return r;
	int r2 = security_opts_check(e, hc, err);
	if (r2 < 0 || (r2 = engine_spec_caps_check(hc, err)) < 0)
		return r2;
	if (json_object_get(hc, "Ulimits") && !json_is_null(json_object_get(hc, "Ulimits")) &&
	    (r2 = engine_ulimits_check(json_object_get(hc, "Ulimits"), "HostConfig.Ulimits", NULL, err)) < 0)
		return r2;
	if (json_is_true(json_object_get(hc, "Init")) && e && access(e->init_path, X_OK) < 0)
		/* EINVAL, not ENOENT: a 404 makes docker's CLI try to pull the image */
		return berth_error_msg(err, EINVAL,
				       "--init: init binary '%s' not found: install tini or set the daemon's "
				       "--init-path",
				       e->init_path);
	_cleanup_json_ json_t *mp = NULL;
	if ((r2 = engine_mounts_plan(NULL, cfg, hc, &mp, err)) < 0)
		return r2;
	return 0;
}

int engine_container_config_check(const json_t *config, const json_t *hostconfig, struct berth_error **err)
{
	if (!json_is_object(config))
		return berth_error_msg(err, EINVAL, "config cannot be empty in order to create a container");
	if (hostconfig && !json_is_null(hostconfig) && !json_is_object(hostconfig))
		return json_type_error(NULL, "HostConfig", "object", hostconfig, err);
	_cleanup_json_ json_t *cfg = json_deep_copy(config);
	_cleanup_json_ json_t *hc = json_is_object(hostconfig) ? json_deep_copy(hostconfig) : json_object();
	return validate(NULL, cfg, hc, err);
}

int engine_container_create(struct engine *e, const char *name, const json_t *config,
			    const json_t *hostconfig, char **ret_id, struct berth_error **err)
{
	if (!json_is_object(config))
		return berth_error_msg(err, EINVAL, "config cannot be empty in order to create a container");
	if (hostconfig && !json_is_null(hostconfig) && !json_is_object(hostconfig))
		return json_type_error(NULL, "HostConfig", "object", hostconfig, err);
	_cleanup_json_ json_t *cfg = json_deep_copy(config);
	_cleanup_json_ json_t *hc = json_is_object(hostconfig) ? json_deep_copy(hostconfig) : json_object();
	int r = validate(e, cfg, hc, err);
	if (r < 0)
		return r;
	const char *image = json_string_value(json_object_get(cfg, "Image"));
	if (!image || !*image)
		return berth_error_msg(err, EINVAL, "No image was specified");
	_cleanup_free_ char *image_id = NULL;
	_cleanup_json_ json_t *imgcfg = NULL;
	r = e->img->resolve(e->img_ctx, image, &image_id, &imgcfg, err);
	if (r < 0)
		return r;
	merge_image(cfg, imgcfg);
	if (json_array_size(json_object_get(cfg, "Cmd")) == 0 &&
	    json_array_size(json_object_get(cfg, "Entrypoint")) == 0)
		return berth_error_msg(err, EINVAL, "No command specified");
	_cleanup_json_ json_t *mounts = NULL;
	if ((r = engine_mounts_plan(e, cfg, hc, &mounts, err)) < 0)
		return r;

	struct container *c = engine_container_alloc();
	c->id = util_random_hex(32);
	if (!json_string_value(json_object_get(cfg, "Hostname")) ||
	    !*json_string_value(json_object_get(cfg, "Hostname")))
		json_object_set_new(cfg, "Hostname", json_stringn(c->id, 12));
	c->image = xstrdup(image);
	c->image_id = TAKE_PTR(image_id);
	c->config = json_incref(cfg);
	c->hostconfig = json_incref(hc);
	c->mounts = json_incref(mounts);
	struct timespec ts;
	char t[RFC3339_MAX];
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, t);
	c->created = xstrdup(t);
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	r = fs_mkdir_p(dir, 0710, err);
	util_crash_point("create-dir");
	if (r >= 0)
		r = engine_container_register(e, c, name, err);
	if (r < 0) { /* nothing half-made: not its directory, nor the anonymous volumes planned for it */
		fs_rm_rf(dir, NULL);
		_cleanup_json_ json_t *anon = engine_mounts_anonymous(c);
		engine_mounts_remove_volumes(e, anon);
		pthread_mutex_lock(&e->lock);
		engine_container_unref(c);
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	*ret_id = xstrdup(c->id);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return 0;
}
