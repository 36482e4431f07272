/*
 * runopts.c - client-side parsers of docker's structured run flags:
 * `--mount` CSV into a HostConfig.Mounts object and `--ulimit` into a
 * Ulimits entry, as docker's CLI does before it calls the API. The daemon
 * validates again (it also serves other clients).
 */
#include "cli/runopts.h"
#include "common/json.h"
#include "common/util.h"

static int bool_value(const char *v, bool *ret)
{
	if (!v || streq(v, "true") || streq(v, "1")) {
		*ret = true;
		return 0;
	}
	if (streq(v, "false") || streq(v, "0")) {
		*ret = false;
		return 0;
	}
	return -EINVAL;
}

static json_t *sub(json_t *o, const char *k)
{
	json_t *s = json_object_get(o, k);
	if (!s)
		json_object_set_new(o, k, s = json_object());
	return s;
}

/* key=value into an object of strings ("volume-label=a=b" -> {"a": "b"}). */
static int add_kv(json_t *obj, const char *kv)
{
	const char *eq = kv ? strchr(kv, '=') : NULL;
	if (!eq || eq == kv)
		return -EINVAL;
	_cleanup_free_ char *k = xstrndup(kv, (size_t)(eq - kv));
	json_object_set_new(obj, k, json_string(eq + 1));
	return 0;
}

static int mount_field(json_t *m, const char *key, const char *v, char **errmsg)
{
	bool b;
	int64_t n;
	if (streq(key, "type"))
		json_object_set_new(m, "Type", json_string(v ? v : ""));
	else if (streq(key, "source") || streq(key, "src"))
		json_object_set_new(m, "Source", json_string(v ? v : ""));
	else if (streq(key, "target") || streq(key, "destination") || streq(key, "dst"))
		json_object_set_new(m, "Target", json_string(v ? v : ""));
	else if (streq(key, "readonly") || streq(key, "ro")) {
		if (bool_value(v, &b) < 0)
			goto bad_value;
		json_object_set_new(m, "ReadOnly", json_boolean(b));
	} else if (streq(key, "consistency")) {
		json_object_set_new(m, "Consistency", json_string(v ? v : ""));
	} else if (streq(key, "bind-propagation") && v) {
		json_object_set_new(sub(m, "BindOptions"), "Propagation", json_string(v));
	} else if (streq(key, "bind-nonrecursive")) {
		if (bool_value(v, &b) < 0)
			goto bad_value;
		json_object_set_new(sub(m, "BindOptions"), "NonRecursive", json_boolean(b));
	} else if (streq(key, "volume-nocopy")) {
		if (bool_value(v, &b) < 0)
			goto bad_value;
		json_object_set_new(sub(m, "VolumeOptions"), "NoCopy", json_boolean(b));
	} else if (streq(key, "volume-label")) {
		if (add_kv(sub(sub(m, "VolumeOptions"), "Labels"), v) < 0)
			goto bad_value;
	} else if (streq(key, "volume-driver") && v) {
		json_object_set_new(sub(sub(m, "VolumeOptions"), "DriverConfig"), "Name", json_string(v));
	} else if (streq(key, "volume-opt")) {
		if (add_kv(sub(sub(sub(m, "VolumeOptions"), "DriverConfig"), "Options"), v) < 0)
			goto bad_value;
	} else if (streq(key, "tmpfs-size") && v) {
		if (util_parse_bytes(v, &n) < 0 || n < 0)
			goto bad_value;
		json_object_set_new(sub(m, "TmpfsOptions"), "SizeBytes", json_integer(n));
	} else if (streq(key, "tmpfs-mode") && v) {
		char *end;
		long mode = strtol(v, &end, 8);
		if (!*v || *end || mode < 0 || mode > 07777)
			goto bad_value;
		json_object_set_new(sub(m, "TmpfsOptions"), "Mode", json_integer(mode));
	} else {
		*errmsg = xasprintf("unexpected key '%s' in '%s%s%s'", key, key, v ? "=" : "", v ? v : "");
		return -EINVAL;
	}
	return 0;
bad_value:
	*errmsg = xasprintf("invalid value for '%s': '%s'", key, v ? v : "");
	return -EINVAL;
}

int cli_mount_parse(const char *spec, json_t **ret, char **errmsg)
{
	_cleanup_json_ json_t *m = json_pack("{s:s}", "Type", "volume");
	_cleanup_free_ char *s = xstrdup(spec ? spec : "");
	char *save = NULL;
	for (char *kv = strtok_r(s, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');
		if (v)
			*v++ = '\0';
		if (!v && !streq(kv, "readonly") && !streq(kv, "ro") && !streq(kv, "volume-nocopy") &&
		    !streq(kv, "bind-nonrecursive")) {
			*errmsg = xasprintf("invalid field '%s' must be a key=value pair", kv);
			return -EINVAL;
		}
		if (mount_field(m, kv, v, errmsg) < 0)
			return -EINVAL;
	}
	if (!json_object_get(m, "Target")) {
		*errmsg = xstrdup("target is required");
		return -EINVAL;
	}
	*ret = TAKE_PTR(m);
	return 0;
}

static int limit_value(const char *s, int64_t *ret)
{
	if (streq(s, "unlimited") || streq(s, "-1")) {
		*ret = -1;
		return 0;
	}
	return util_parse_int64(s, ret) < 0 || *ret < 0 ? -EINVAL : 0;
}

int cli_ulimit_parse(const char *s, json_t **ret, char **errmsg)
{
	static const char *const names[] = { "as",      "core",     "cpu",        "data",   "fsize", "locks",
					     "memlock", "msgqueue", "nice",       "nofile", "nproc", "rss",
					     "rtprio",  "rttime",   "sigpending", "stack" };
	const char *eq = strchr(s, '=');
	if (!eq) {
		*errmsg = xasprintf("invalid ulimit argument: %s", s);
		return -EINVAL;
	}
	_cleanup_free_ char *name = xstrndup(s, (size_t)(eq - s));
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		known = known || streq(names[i], name);
	if (!known) {
		*errmsg = xasprintf("invalid ulimit type: %s", name);
		return -EINVAL;
	}
	_cleanup_free_ char *v = xstrdup(eq + 1);
	char *colon = strchr(v, ':');
	if (colon)
		*colon++ = '\0';
	int64_t soft, hard;
	if (limit_value(v, &soft) < 0 || (colon && limit_value(colon, &hard) < 0)) {
		*errmsg = xasprintf("invalid ulimit argument: %s", s);
		return -EINVAL;
	}
	if (!colon)
		hard = soft;
	if (hard >= 0 && (soft < 0 || soft > hard)) {
		*errmsg = xasprintf("ulimit soft limit must be less than or equal to hard limit: %lld > %lld",
				    (long long)soft, (long long)hard);
		return -EINVAL;
	}
	*ret = json_pack("{s:s,s:I,s:I}", "Name", name, "Hard", (json_int_t)hard, "Soft", (json_int_t)soft);
	return 0;
}

int cli_opt_restart(void *hostconfig, const char *v)
{
	_cleanup_free_ char *name = xstrdup(v);
	char *n = strchr(name, ':');
	int64_t max = 0;
	if (n) {
		*n++ = '\0';
		if (util_parse_int64(n, &max) < 0 || max < 0) {
			fprintf(stderr, "berth: invalid restart policy '%s'\n", v);
			return -EINVAL;
		}
	}
	json_object_set_new(hostconfig, "RestartPolicy",
			    json_pack("{s:s,s:I}", "Name", name, "MaximumRetryCount", (json_int_t)max));
	return 0;
}
