/*
 * cni.c - a CNI 1.0 executor: runs the plugins of a network configuration
 * list with the protocol's environment (CNI_COMMAND, CNI_CONTAINERID,
 * CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH) and stdin JSON (the plugin's
 * config plus name, cniVersion, prevResult and the runtimeConfig entries of
 * the capabilities it declares), and validates what comes back.
 *
 * Trade-off: plugins are exec'd one by one with proc_run() and a timeout;
 * there is no plugin result cache on disk here — the caller (container.c)
 * persists results in its attachment records, written before ADD starts.
 */
#include <sys/stat.h>

#include "common/json.h"
#include "common/process.h"
#include "net/internal.h"

extern char **environ;

/* Plugin output we accept; results are small, errors too. */
#define CNI_MAX_OUTPUT         (1u << 20)
#define CNI_DEFAULT_TIMEOUT_MS 10000

static bool plugin_type_valid(const char *t)
{
	if (!t || !*t || strlen(t) > 64 || t[0] == '.')
		return false;
	for (const char *p = t; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
		    *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

int net_cni_conflist_validate(const json_t *conflist, struct berth_error **err)
{
	const char *v, *name;
	json_t *plugins;
	if (!json_is_object(conflist))
		return json_type_error(NULL, "conflist", "object", conflist, err);
	int r = json_get_string(conflist, NULL, "cniVersion", JSON_REQUIRED, &v, err);
	if (r < 0)
		return r;
	r = json_get_string(conflist, NULL, "name", JSON_REQUIRED, &name, err);
	if (r < 0)
		return r;
	if (!net_name_valid(name))
		return berth_error_msg(err, EINVAL, "invalid network name '%s' in conflist", name);
	r = json_get_array(conflist, NULL, "plugins", JSON_REQUIRED, &plugins, err);
	if (r < 0)
		return r;
	if (json_array_size(plugins) == 0)
		return berth_error_msg(err, EINVAL, "'plugins': empty list");
	size_t i;
	json_t *p;
	json_array_foreach (plugins, i, p) {
		_cleanup_free_ char *path = json_path_index("plugins", i);
		const char *type;
		if (!json_is_object(p))
			return json_type_error(NULL, path, "object", p, err);
		r = json_get_string(p, path, "type", JSON_REQUIRED, &type, err);
		if (r < 0)
			return r;
		if (!plugin_type_valid(type))
			return berth_error_msg(err, EINVAL, "'%s.type': invalid plugin name '%s'", path,
					       type);
	}
	return 0;
}

static int find_plugin(const char *cni_path, const char *type, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *dirs = xstrdup(cni_path ? cni_path : NET_DEFAULT_CNI_PATH);
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = xasprintf("%s/%s", d, type);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
			*ret = TAKE_PTR(p);
			return 0;
		}
	}
	return berth_error_msg(err, ENOENT, "cni plugin '%s' not found in '%s'", type,
			       cni_path ? cni_path : NET_DEFAULT_CNI_PATH);
}

/*
 * Environment: ours first, then the inherited one minus CNI_* (PATH matters:
 * plugins exec iptables), with x->path_prepend first in PATH.
 */
static char **build_env(const char *cmd, const struct cni_runtime *rt, const char *cni_path,
			const char *prepend)
{
	size_t n = 0;
	while (environ && environ[n])
		n++;
	char **env = xcalloc(n + 8, sizeof(char *));
	size_t k = 0;
	env[k++] = xasprintf("CNI_COMMAND=%s", cmd);
	env[k++] = xasprintf("CNI_PATH=%s", cni_path ? cni_path : NET_DEFAULT_CNI_PATH);
	if (rt) {
		env[k++] = xasprintf("CNI_CONTAINERID=%s", rt->container_id ? rt->container_id : "");
		env[k++] = xasprintf("CNI_NETNS=%s", rt->netns ? rt->netns : "");
		env[k++] = xasprintf("CNI_IFNAME=%s", rt->ifname ? rt->ifname : "");
		env[k++] = xasprintf("CNI_ARGS=%s", rt->args ? rt->args : "");
	}
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; i < n; i++) {
		if (startswith(environ[i], "CNI_"))
			continue;
		if (startswith(environ[i], "PATH=")) {
			path = environ[i] + 5;
			continue;
		}
		env[k++] = xstrdup(environ[i]);
		if (k >= n + 7)
			break;
	}
	if (k < n + 7)
		env[k++] =
		    prepend && *prepend ? xasprintf("PATH=%s:%s", prepend, path) : xasprintf("PATH=%s", path);
	return env;
}

/* Error object on stdout: {"code": N, "msg": "...", "details": "..."}. */
static int plugin_failed(const char *type, const char *cmd, int status, const struct strbuf *out,
			 const struct strbuf *errout, struct berth_error **err)
{
	json_t *j = json_loadb(out->buf, out->len, 0, NULL);
	const char *msg = NULL, *details = NULL;
	json_int_t code = 0;
	if (json_is_object(j)) {
		msg = json_string_value(json_object_get(j, "msg"));
		details = json_string_value(json_object_get(j, "details"));
		code = json_integer_value(json_object_get(j, "code"));
	}
	int r;
	if (msg)
		r = berth_error_msg(err, EIO, "cni plugin '%s' %s failed: %s%s%s (code %lld)", type, cmd, msg,
				    details && *details ? ": " : "", details ? details : "", (long long)code);
	else
		r = berth_error_msg(err, EIO, "cni plugin '%s' %s failed with exit status %d: %.400s", type,
				    cmd, proc_exit_code(status), errout->len ? errout->buf : out->buf);
	json_decref(j);
	return r;
}

/* Exec one plugin. stdin is conf; *ret_out (may be NULL) gets stdout on success. */
static int exec_plugin(const struct cni_exec *x, const char *type, const char *cmd,
		       const struct cni_runtime *rt, const json_t *conf, struct strbuf *ret_out,
		       struct berth_error **err)
{
	_cleanup_free_ char *bin = NULL;
	int r = find_plugin(x->cni_path, type, &bin, err);
	if (r < 0)
		return r;
	_cleanup_strv_ char **env = build_env(cmd, rt, x->cni_path, x->path_prepend);
	_cleanup_free_ char *input = json_dump_compact(conf);
	const char *argv[] = { bin, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.envp = (const char *const *)env;
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT, errout = STRBUF_INIT;
	int status = 0;
	r = proc_run(&o, input, strlen(input), &out, &errout, CNI_MAX_OUTPUT,
		     x->timeout_ms > 0 ? x->timeout_ms : CNI_DEFAULT_TIMEOUT_MS, &status, err);
	if (r < 0)
		return berth_error_wrap(err, r, "cni plugin '%s' %s", type, cmd);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return plugin_failed(type, cmd, status, &out, &errout, err);
	if (ret_out)
		strbuf_add(ret_out, out.buf, out.len);
	return 0;
}

/* stdin of one plugin of the list: its own config + name + cniVersion (+ prevResult, runtimeConfig). */
static json_t *plugin_stdin(const json_t *conflist, const json_t *plugin, const json_t *prev,
			    const json_t *cap_args)
{
	json_t *c = json_deep_copy(plugin);
	json_object_set(c, "cniVersion", json_object_get(conflist, "cniVersion"));
	json_object_set(c, "name", json_object_get(conflist, "name"));
	json_object_del(c, "runtimeConfig");
	json_object_del(c, "prevResult");
	if (prev)
		json_object_set_new(c, "prevResult", json_deep_copy(prev));
	json_t *caps = json_object_get(plugin, "capabilities");
	if (json_is_object(caps) && json_is_object(cap_args)) {
		json_t *rc = json_object();
		const char *k;
		json_t *v;
		json_object_foreach (caps, k, v) {
			json_t *a = json_object_get(cap_args, k);
			if (json_is_true(v) && a)
				json_object_set(rc, k, a);
		}
		if (json_object_size(rc))
			json_object_set_new(c, "runtimeConfig", rc);
		else
			json_decref(rc);
	}
	return c;
}

static const char *plugin_type(const json_t *p)
{
	return json_string_value(json_object_get(p, "type"));
}

int net_cni_list_del(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		     const json_t *prev_result, struct berth_error **err)
{
	int r = net_cni_conflist_validate(conflist, err);
	if (r < 0)
		return r;
	json_t *plugins = json_object_get(conflist, "plugins");
	int first = 0;
	for (size_t i = json_array_size(plugins); i-- > 0;) {
		json_t *p = json_array_get(plugins, i);
		json_auto_t *in = plugin_stdin(conflist, p, prev_result, rt->capability_args);
		struct berth_error *e = NULL;
		int q = exec_plugin(x, plugin_type(p), "DEL", rt, in, NULL, first < 0 ? &e : err);
		berth_error_free(e);
		if (q < 0 && first == 0)
			first = q;
	}
	return first;
}

static int add_chain(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		     size_t *ret_done, json_t **ret, struct berth_error **err)
{
	json_t *plugins = json_object_get(conflist, "plugins");
	const char *version = json_string_value(json_object_get(conflist, "cniVersion"));
	json_auto_t *prev = NULL;
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		json_t *p = json_array_get(plugins, i);
		json_auto_t *in = plugin_stdin(conflist, p, prev, rt->capability_args);
		_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
		*ret_done = i + 1;
		int r = exec_plugin(x, plugin_type(p), "ADD", rt, in, &out, err);
		if (r < 0)
			return r;
		json_t *res = NULL;
		r = net_cni_result_parse(out.buf, out.len, version, &res, err);
		if (r < 0)
			return berth_error_wrap(err, r, "cni plugin '%s' ADD: invalid result",
						plugin_type(p));
		json_decref(prev);
		prev = res;
	}
	*ret = TAKE_PTR(prev);
	return 0;
}

int net_cni_list_add(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		     json_t **ret, struct berth_error **err)
{
	int r = net_cni_conflist_validate(conflist, err);
	if (r < 0)
		return r;
	size_t done = 0;
	json_t *res = NULL;
	r = add_chain(x, conflist, rt, &done, &res, err);
	if (r >= 0) {
		*ret = res;
		return 0;
	}
	/* undo: DEL the plugins that ran (the failed one included), in reverse */
	json_auto_t *partial = json_deep_copy(conflist);
	json_t *plugins = json_object_get(partial, "plugins");
	while (json_array_size(plugins) > done)
		json_array_remove(plugins, json_array_size(plugins) - 1);
	struct berth_error *e = NULL;
	net_cni_list_del(x, partial, rt, NULL, &e);
	berth_error_free(e);
	return r;
}

int net_cni_list_check(const struct cni_exec *x, const json_t *conflist, const struct cni_runtime *rt,
		       const json_t *prev_result, struct berth_error **err)
{
	int r = net_cni_conflist_validate(conflist, err);
	if (r < 0)
		return r;
	if (!prev_result)
		return berth_error_msg(err, EINVAL, "cni CHECK needs the cached ADD result");
	json_t *plugins = json_object_get(conflist, "plugins");
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		json_t *p = json_array_get(plugins, i);
		json_auto_t *in = plugin_stdin(conflist, p, prev_result, rt->capability_args);
		r = exec_plugin(x, plugin_type(p), "CHECK", rt, in, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Does the plugin speak CNI 1.1 (GC, STATUS)? From its VERSION answer. */
static int plugin_speaks_11(const struct cni_exec *x, const char *type, bool *ret, struct berth_error **err)
{
	json_auto_t *in = json_pack("{s:s}", "cniVersion", CNI_VERSION);
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r = exec_plugin(x, type, "VERSION", NULL, in, &out, err);
	if (r < 0)
		return r;
	json_auto_t *j = NULL;
	r = json_parse(out.buf, out.len, "VERSION result", &j, err);
	if (r < 0)
		return berth_error_wrap(err, r, "cni plugin '%s' VERSION", type);
	json_t *sv = json_object_get(j, "supportedVersions");
	if (!json_is_array(sv))
		return berth_error_msg(err, EINVAL, "cni plugin '%s' VERSION: no 'supportedVersions'", type);
	*ret = json_strv_contains(sv, "1.1.0");
	return 0;
}

static int list_11_call(const struct cni_exec *x, const json_t *conflist, const char *cmd,
			const json_t *extra, bool require_11, struct berth_error **err)
{
	int r = net_cni_conflist_validate(conflist, err);
	if (r < 0)
		return r;
	json_t *plugins = json_object_get(conflist, "plugins");
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		json_t *p = json_array_get(plugins, i);
		bool v11 = false;
		r = plugin_speaks_11(x, plugin_type(p), &v11, err);
		if (r < 0)
			return r;
		if (!v11) {
			if (require_11)
				return berth_error_msg(err, EOPNOTSUPP, "cni plugin '%s' does not support %s",
						       plugin_type(p), cmd);
			continue;
		}
		json_auto_t *in = plugin_stdin(conflist, p, NULL, NULL);
		json_object_set_new(in, "cniVersion", json_string("1.1.0"));
		if (extra)
			json_object_update(in, (json_t *)extra);
		struct cni_runtime rt = { .container_id = "", .netns = "", .ifname = "" };
		r = exec_plugin(x, plugin_type(p), cmd, &rt, in, NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int net_cni_list_status(const struct cni_exec *x, const json_t *conflist, struct berth_error **err)
{
	return list_11_call(x, conflist, "STATUS", NULL, false, err);
}

int net_cni_list_gc(const struct cni_exec *x, const json_t *conflist, const json_t *valid_attachments,
		    struct berth_error **err)
{
	json_auto_t *extra = json_pack("{s:O}", "cni.dev/valid-attachments", valid_attachments);
	return list_11_call(x, conflist, "GC", extra, true, err);
}
