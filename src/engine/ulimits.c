/*
 * ulimits.c - docker's --ulimit / HostConfig.Ulimits / daemon
 * --default-ulimit, checked against what this daemon may grant: a hard limit
 * above the daemon's own needs CAP_SYS_RESOURCE, and without it the runtime
 * would fail inside the container's setup; we refuse at create with a
 * message that says why.
 */
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/options.h"

static const struct {
	const char *name, *oci;
	int resource;
} ulimit_names[] = {
	{ "as", "RLIMIT_AS", RLIMIT_AS },
	{ "core", "RLIMIT_CORE", RLIMIT_CORE },
	{ "cpu", "RLIMIT_CPU", RLIMIT_CPU },
	{ "data", "RLIMIT_DATA", RLIMIT_DATA },
	{ "fsize", "RLIMIT_FSIZE", RLIMIT_FSIZE },
	{ "locks", "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "memlock", "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
	{ "msgqueue", "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "nice", "RLIMIT_NICE", RLIMIT_NICE },
	{ "nofile", "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "nproc", "RLIMIT_NPROC", RLIMIT_NPROC },
	{ "rss", "RLIMIT_RSS", RLIMIT_RSS },
	{ "rtprio", "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
	{ "rttime", "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "sigpending", "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "stack", "RLIMIT_STACK", RLIMIT_STACK },
};

static int ulimit_index(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(ulimit_names); i++)
		if (streq(ulimit_names[i].name, name))
			return (int)i;
	return -1;
}

static bool have_sys_resource(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { 0 };
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_SYS_RESOURCE / 32].effective & (1u << (CAP_SYS_RESOURCE % 32));
}

/* -1 (unlimited) as the rlimit value. */
static uint64_t rl_value(int64_t v)
{
	return v < 0 ? (uint64_t)RLIM_INFINITY : (uint64_t)v;
}

static int check_one(const json_t *u, const char *path, json_t *out, struct berth_error **err)
{
	const char *name = NULL;
	int64_t soft = 0, hard = 0;
	int r;
	if (!json_is_object(u))
		return json_type_error(NULL, path, "object", u, err);
	if ((r = json_get_string(u, path, "Name", 0, &name, err)) < 0 ||
	    (r = json_get_int64(u, path, "Soft", 0, &soft, err)) < 0 ||
	    (r = json_get_int64(u, path, "Hard", 0, &hard, err)) < 0)
		return r;
	int idx = name ? ulimit_index(name) : -1;
	if (idx < 0)
		return berth_error_msg(err, EINVAL, "invalid ulimit type: %s", name ? name : "");
	if (soft < -1 || hard < -1)
		return berth_error_msg(err, EINVAL, "invalid ulimit '%s': limits must be >= -1", name);
	if (rl_value(soft) > rl_value(hard))
		return berth_error_msg(
		    err, EINVAL, "ulimit soft limit must be less than or equal to hard limit: %lld > %lld",
		    (long long)soft, (long long)hard);
	struct rlimit own;
	if (getrlimit(ulimit_names[idx].resource, &own) == 0 && rl_value(hard) > own.rlim_max &&
	    !have_sys_resource())
		return berth_error_msg(
		    err, EPERM,
		    "ulimit '%s': hard limit %llu exceeds the daemon's own hard limit %llu and "
		    "raising it needs CAP_SYS_RESOURCE, which the daemon does not have",
		    name, (unsigned long long)rl_value(hard), (unsigned long long)own.rlim_max);
	if (out)
		json_array_append_new(out, json_pack("{s:s,s:I,s:I}", "type", ulimit_names[idx].oci, "hard",
						     (json_int_t)rl_value(hard), "soft",
						     (json_int_t)rl_value(soft)));
	return 0;
}

int engine_ulimits_check(const json_t *ulimits, const char *path, json_t **ret_rlimits,
			 struct berth_error **err)
{
	if (!json_is_array(ulimits))
		return json_type_error(NULL, path, "array", ulimits, err);
	_cleanup_json_ json_t *out = json_array();
	_cleanup_json_ json_t *seen = json_object();
	size_t i;
	json_t *u;
	json_array_foreach (ulimits, i, u) {
		_cleanup_free_ char *p = json_path_index(path, i);
		int r = check_one(u, p, out, err);
		if (r < 0)
			return r;
		const char *name = json_string_value(json_object_get(u, "Name"));
		if (json_object_get(seen, name))
			return berth_error_msg(err, EINVAL, "duplicate ulimit '%s'", name);
		json_object_set_new(seen, name, json_true());
	}
	if (ret_rlimits)
		*ret_rlimits = TAKE_PTR(out);
	return 0;
}

static int parse_limit(const char *s, int64_t *ret)
{
	if (streq(s, "unlimited") || streq(s, "-1")) {
		*ret = -1;
		return 0;
	}
	return util_parse_int64(s, ret) < 0 || *ret < 0 ? -EINVAL : 0;
}

int engine_ulimit_parse(const char *s, json_t **ret, struct berth_error **err)
{
	const char *eq = s ? strchr(s, '=') : NULL;
	if (!eq)
		return berth_error_msg(err, EINVAL, "invalid ulimit argument: %s", s ? s : "");
	_cleanup_free_ char *name = xstrndup(s, (size_t)(eq - s));
	if (ulimit_index(name) < 0)
		return berth_error_msg(err, EINVAL, "invalid ulimit type: %s", name);
	_cleanup_free_ char *val = xstrdup(eq + 1);
	char *colon = strchr(val, ':');
	if (colon)
		*colon++ = '\0';
	int64_t soft, hard;
	if (parse_limit(val, &soft) < 0 || (colon && parse_limit(colon, &hard) < 0))
		return berth_error_msg(err, EINVAL, "invalid ulimit argument: %s", s);
	if (!colon)
		hard = soft;
	if (rl_value(soft) > rl_value(hard))
		return berth_error_msg(
		    err, EINVAL, "ulimit soft limit must be less than or equal to hard limit: %lld > %lld",
		    (long long)soft, (long long)hard);
	*ret = json_pack("{s:s,s:I,s:I}", "Name", name, "Hard", (json_int_t)hard, "Soft", (json_int_t)soft);
	return 0;
}

json_t *engine_ulimits_effective(const json_t *defaults, const json_t *own)
{
	json_t *all = json_array();
	size_t i;
	json_t *u;
	json_array_foreach (own, i, u)
		json_array_append(all, u);
	json_array_foreach (defaults, i, u) {
		const char *n = json_string_value(json_object_get(u, "Name"));
		bool set = false;
		size_t k;
		json_t *o;
		json_array_foreach (own, k, o)
			set = set || streq(json_string_value(json_object_get(o, "Name")) ?: "", n ? n : "");
		if (!set)
			json_array_append(all, u);
	}
	return all;
}
