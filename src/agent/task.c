/*
 * task.c - ECS container definitions to Docker create configs (see task.h).
 * The mapping follows the ECS agent's (cpu units are CpuShares with its
 * minimum of 2, MiB to bytes, seconds to Docker's nanoseconds); every value
 * is checked here even though the server validated the task definition,
 * because the agent must not trust what arrives over the wire.
 */
#include <stdio.h>

#include "agent/task.h"
#include "common/json.h"
#include "common/strbuf.h"

#define MIB (1024 * 1024)

struct spec {
	const struct agent_task_ctx *ctx;
	const char *name; /* container name, for error paths */
	char at[64];      /* the list entry being read ("portMappings[2]"), "" at the top */
	json_t *cfg, *hc;
};

static int bad(struct spec *s, const char *field, const char *what, struct berth_error **err)
{
	return berth_error_msg(err, EINVAL, "containerDefinitions[%s].%s%s%s: %s", s->name, s->at,
			       *s->at ? "." : "", field, what);
}

static void at(struct spec *s, const char *list, size_t i)
{
	if (list)
		snprintf(s->at, sizeof(s->at), "%s[%zu]", list, i);
	else
		s->at[0] = 0;
}

/* An optional array of at most AGENT_MAX_ITEMS elements (NULL when absent or null). */
static int get_array(struct spec *s, const json_t *obj, const char *key, json_t **ret,
		     struct berth_error **err)
{
	json_t *v = json_object_get(obj, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return bad(s, key, "expected an array", err);
	if (json_array_size(v) > AGENT_MAX_ITEMS)
		return bad(s, key, "too many entries", err);
	*ret = v;
	return 0;
}

static int get_str(struct spec *s, const json_t *obj, const char *key, const char **ret,
		   struct berth_error **err)
{
	json_t *v = json_object_get(obj, key);
	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return bad(s, key, "expected a string", err);
	*ret = json_string_value(v);
	return 0;
}

static int get_int(struct spec *s, const json_t *obj, const char *key, int64_t min, int64_t max,
		   bool *present, int64_t *ret, struct berth_error **err)
{
	json_t *v = json_object_get(obj, key);
	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		_cleanup_free_ char *m =
		    xasprintf("expected an integer in [%lld, %lld]", (long long)min, (long long)max);
		return bad(s, key, m, err);
	}
	*present = true;
	*ret = json_integer_value(v);
	return 0;
}

/* A JSON array of strings, copied (NULL when absent). */
static int get_strs(struct spec *s, const json_t *obj, const char *key, json_t **ret,
		    struct berth_error **err)
{
	json_t *a;
	int r = get_array(s, obj, key, &a, err);
	*ret = NULL;
	if (r < 0 || !a)
		return r;
	size_t i;
	json_t *v;
	json_array_foreach (a, i, v)
		if (!json_is_string(v))
			return bad(s, key, "expected an array of strings", err);
	*ret = json_deep_copy(a);
	return 0;
}

static int set_strs(struct spec *s, const json_t *def, const char *key, json_t *dst, const char *dkey,
		    struct berth_error **err)
{
	json_t *a = NULL;
	int r = get_strs(s, def, key, &a, err);
	if (r >= 0 && a)
		json_object_set_new(dst, dkey, a);
	return r;
}

/* environment [{name, value}], overrides win by name; Env in definition order. */
static int env_of(struct spec *s, const json_t *def, const json_t *ov, struct berth_error **err)
{
	_cleanup_json_ json_t *map = json_object(), *order = json_array();
	const json_t *srcs[] = { def, ov };
	for (size_t k = 0; k < 2; k++) {
		json_t *a;
		int r = get_array(s, srcs[k], "environment", &a, err);
		if (r < 0)
			return r;
		size_t i;
		json_t *e;
		json_array_foreach (a, i, e) {
			const char *n = json_string_value(json_object_get(e, "name"));
			const char *v = json_string_value(json_object_get(e, "value"));
			if (!n || !*n || strchr(n, '='))
				return bad(s, "environment", "every entry needs a name without '='", err);
			if (!json_object_get(map, n))
				json_array_append_new(order, json_string(n));
			json_object_set_new(map, n, json_string(v ? v : ""));
		}
	}
	if (!json_array_size(order))
		return 0;
	json_t *env = json_array();
	size_t i;
	json_t *n;
	json_array_foreach (order, i, n) {
		const char *k = json_string_value(n);
		json_array_append_new(env,
				      json_sprintf("%s=%s", k, json_string_value(json_object_get(map, k))));
	}
	json_object_set_new(s->cfg, "Env", env);
	return 0;
}

/* cpu, memory, memoryReservation (override wins): CpuShares (min 2), bytes. */
static int resources_of(struct spec *s, const json_t *def, const json_t *ov, struct berth_error **err)
{
	static const struct {
		const char *key, *docker;
		int64_t max, scale;
	} f[] = {
		{ "cpu", "CpuShares", 10 * 1024 * 1024, 1 },
		{ "memory", "Memory", INT64_C(1) << 30, MIB },
		{ "memoryReservation", "MemoryReservation", INT64_C(1) << 30, MIB },
	};
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		int64_t v = 0;
		bool has = false, has_ov = false;
		int r = get_int(s, def, f[i].key, 0, f[i].max, &has, &v, err);
		if (r >= 0 && ov)
			r = get_int(s, ov, f[i].key, 0, f[i].max, &has_ov, &v, err);
		if (r < 0)
			return r;
		if (!has && !has_ov)
			continue;
		if (streq(f[i].key, "cpu") && v < 2)
			v = 2; /* the kernel's minimum; the ECS agent does the same */
		if (streq(f[i].key, "memory") && v < 6)
			return bad(s, "memory", "at least 6 MiB", err);
		if (v)
			json_object_set_new(s->hc, f[i].docker, json_integer(v * f[i].scale));
	}
	return 0;
}

static int ports_of(struct spec *s, const json_t *def, const char *mode, struct berth_error **err)
{
	json_t *a;
	int r = get_array(s, def, "portMappings", &a, err);
	if (r < 0 || !a)
		return r;
	json_t *exposed = json_object();
	_cleanup_json_ json_t *bindings = json_object();
	json_object_set_new(s->cfg, "ExposedPorts", exposed);
	size_t i;
	json_t *p;
	json_array_foreach (a, i, p) {
		int64_t cport = 0, hport = 0;
		at(s, "portMappings", i);
		bool has_c, has_h;
		const char *proto = "tcp";
		if ((r = get_int(s, p, "containerPort", 1, 65535, &has_c, &cport, err)) < 0 ||
		    (r = get_int(s, p, "hostPort", 0, 65535, &has_h, &hport, err)) < 0 ||
		    (r = get_str(s, p, "protocol", &proto, err)) < 0)
			return r;
		if (!has_c)
			return bad(s, "containerPort", "required", err);
		if (!proto)
			proto = "tcp";
		if (!streq(proto, "tcp") && !streq(proto, "udp"))
			return bad(s, "protocol", "must be tcp or udp", err);
		if (!streq(mode, "bridge") && has_h && hport && hport != cport)
			return bad(s, "hostPort", "must equal containerPort outside bridge mode", err);
		_cleanup_free_ char *key = xasprintf("%lld/%s", (long long)cport, proto);
		json_object_set_new(exposed, key, json_object());
		if (streq(mode, "bridge")) {
			_cleanup_free_ char *hp = hport ? xasprintf("%lld", (long long)hport) : xstrdup("");
			json_object_set_new(bindings, key,
					    json_pack("[{s:s,s:s}]", "HostIp", "", "HostPort", hp));
		}
	}
	at(s, NULL, 0);
	if (json_object_size(bindings))
		json_object_set_new(s->hc, "PortBindings", TAKE_PTR(bindings));
	return 0;
}

/* healthCheck {command, interval, timeout, retries, startPeriod} with ECS's defaults. */
static int health_of(struct spec *s, const json_t *def, struct berth_error **err)
{
	json_t *h = json_object_get(def, "healthCheck");
	if (!h || json_is_null(h))
		return 0;
	if (!json_is_object(h))
		return bad(s, "healthCheck", "expected an object", err);
	json_t *cmd = NULL;
	int r = get_strs(s, h, "command", &cmd, err);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *test = cmd;
	const char *kind = json_string_value(json_array_get(test, 0));
	if (!kind || (!streq(kind, "CMD") && !streq(kind, "CMD-SHELL") && !streq(kind, "NONE")))
		return bad(s, "healthCheck.command", "must start with CMD, CMD-SHELL or NONE", err);
	static const struct {
		const char *key, *docker;
		int64_t min, max, def;
	} f[] = { { "interval", "Interval", 5, 300, 30 },
		  { "timeout", "Timeout", 2, 60, 5 },
		  { "retries", "Retries", 1, 10, 3 },
		  { "startPeriod", "StartPeriod", 0, 300, 0 } };
	json_t *hc = json_pack("{s:O}", "Test", test);
	json_object_set_new(s->cfg, "Healthcheck", hc);
	for (size_t i = 0; i < ARRAY_SIZE(f); i++) {
		int64_t v = f[i].def;
		bool has;
		if ((r = get_int(s, h, f[i].key, f[i].min, f[i].max, &has, &v, err)) < 0)
			return r;
		json_object_set_new(hc, f[i].docker,
				    json_integer(streq(f[i].key, "retries") ? v : v * 1000000000LL));
	}
	return 0;
}

/* mountPoints through the task's volumes; volumesFrom through the task's created containers. */
static int mounts_of(struct spec *s, const json_t *def, struct berth_error **err)
{
	json_t *a;
	int r = get_array(s, def, "mountPoints", &a, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *m;
	json_array_foreach (a, i, m) {
		const char *src = NULL, *dst = NULL;
		at(s, "mountPoints", i);
		if ((r = get_str(s, m, "sourceVolume", &src, err)) < 0 ||
		    (r = get_str(s, m, "containerPath", &dst, err)) < 0)
			return r;
		if (!src || !dst || dst[0] != '/')
			return bad(s, "containerPath",
				   "sourceVolume and an absolute containerPath are required", err);
		json_t *vol = json_object_get(s->ctx->volumes, src);
		const char *bind = json_string_value(json_object_get(vol, "Bind"));
		const char *name = json_string_value(json_object_get(vol, "Volume"));
		if (!bind && !name) {
			_cleanup_free_ char *w = xasprintf("unknown volume '%s'", src);
			return bad(s, "sourceVolume", w, err);
		}
		json_t *mounts = json_object_get(s->hc, "Mounts");
		if (!mounts)
			json_object_set_new(s->hc, "Mounts", mounts = json_array());
		json_array_append_new(mounts,
				      json_pack("{s:s,s:s,s:s,s:b}", "Type", bind ? "bind" : "volume",
						"Source", bind ? bind : name, "Target", dst, "ReadOnly",
						json_is_true(json_object_get(m, "readOnly"))));
	}
	at(s, NULL, 0);
	if ((r = get_array(s, def, "volumesFrom", &a, err)) < 0)
		return r;
	json_array_foreach (a, i, m) {
		const char *from = json_string_value(json_object_get(m, "sourceContainer"));
		const char *id = json_string_value(json_object_get(s->ctx->container_ids, from ? from : ""));
		if (!id)
			return bad(s, "volumesFrom",
				   "sourceContainer must name an earlier container of the task", err);
		json_t *vf = json_object_get(s->hc, "VolumesFrom");
		if (!vf)
			json_object_set_new(s->hc, "VolumesFrom", vf = json_array());
		json_array_append_new(
		    vf,
		    json_sprintf("%s:%s", id, json_is_true(json_object_get(m, "readOnly")) ? "ro" : "rw"));
	}
	return 0;
}

static int ulimits_of(struct spec *s, const json_t *def, struct berth_error **err)
{
	json_t *a;
	int r = get_array(s, def, "ulimits", &a, err);
	if (r < 0 || !a)
		return r;
	json_t *out = json_array();
	json_object_set_new(s->hc, "Ulimits", out);
	size_t i;
	json_t *u;
	json_array_foreach (a, i, u) {
		const char *name = NULL;
		at(s, "ulimits", i);
		int64_t soft = 0, hard = 0;
		bool hs, hh;
		if ((r = get_str(s, u, "name", &name, err)) < 0 ||
		    (r = get_int(s, u, "softLimit", 0, INT64_MAX, &hs, &soft, err)) < 0 ||
		    (r = get_int(s, u, "hardLimit", 0, INT64_MAX, &hh, &hard, err)) < 0)
			return r;
		if (!name || !hs || !hh)
			return bad(s, "name", "name, softLimit and hardLimit are required", err);
		json_array_append_new(out, json_pack("{s:s,s:I,s:I}", "Name", name, "Soft", (json_int_t)soft,
						     "Hard", (json_int_t)hard));
	}
	at(s, NULL, 0);
	return 0;
}

/* linuxParameters: capabilities, initProcessEnabled, sharedMemorySize, tmpfs, devices. */
static int linux_of(struct spec *s, const json_t *def, struct berth_error **err)
{
	json_t *lp = json_object_get(def, "linuxParameters");
	if (!lp || json_is_null(lp))
		return 0;
	if (!json_is_object(lp))
		return bad(s, "linuxParameters", "expected an object", err);
	json_t *caps = json_object_get(lp, "capabilities");
	int r;
	if ((r = set_strs(s, caps, "add", s->hc, "CapAdd", err)) < 0 ||
	    (r = set_strs(s, caps, "drop", s->hc, "CapDrop", err)) < 0)
		return r;
	if (json_is_true(json_object_get(lp, "initProcessEnabled")))
		json_object_set_new(s->hc, "Init", json_true());
	int64_t shm = 0;
	bool has;
	if ((r = get_int(s, lp, "sharedMemorySize", 1, 1 << 20, &has, &shm, err)) < 0)
		return r;
	if (has)
		json_object_set_new(s->hc, "ShmSize", json_integer(shm * MIB));
	json_t *a;
	if ((r = get_array(s, lp, "tmpfs", &a, err)) < 0)
		return r;
	size_t i;
	json_t *t;
	json_array_foreach (a, i, t) {
		const char *path = json_string_value(json_object_get(t, "containerPath"));
		int64_t size = 0;
		at(s, "linuxParameters.tmpfs", i);
		if ((r = get_int(s, t, "size", 1, 1 << 20, &has, &size, err)) < 0)
			return r;
		at(s, NULL, 0);
		if (!path || path[0] != '/' || !has)
			return bad(s, "linuxParameters.tmpfs", "containerPath and size are required", err);
		struct strbuf o = STRBUF_INIT;
		strbuf_addf(&o, "size=%lldm", (long long)size);
		json_t *mo = json_object_get(t, "mountOptions");
		size_t k;
		json_t *opt;
		json_array_foreach (mo, k, opt)
			if (json_is_string(opt) && !strchr(json_string_value(opt), ','))
				strbuf_addf(&o, ",%s", json_string_value(opt));
		json_t *tm = json_object_get(s->hc, "Tmpfs");
		if (!tm)
			json_object_set_new(s->hc, "Tmpfs", tm = json_object());
		json_object_set_new(tm, path, json_string(o.buf));
		strbuf_release(&o);
	}
	if ((r = get_array(s, lp, "devices", &a, err)) < 0)
		return r;
	json_array_foreach (a, i, t) {
		const char *host = json_string_value(json_object_get(t, "hostPath"));
		const char *ctr = json_string_value(json_object_get(t, "containerPath"));
		if (!host || host[0] != '/')
			return bad(s, "linuxParameters.devices", "hostPath is required", err);
		struct strbuf perms = STRBUF_INIT;
		json_t *p = json_object_get(t, "permissions");
		size_t k;
		json_t *pv;
		json_array_foreach (p, k, pv) {
			const char *x = json_string_value(pv);
			if (x && (streq(x, "read") || streq(x, "write") || streq(x, "mknod")))
				strbuf_addch(&perms, x[0] == 'r' ? 'r' : x[0] == 'w' ? 'w' : 'm');
		}
		json_t *dv = json_object_get(s->hc, "Devices");
		if (!dv)
			json_object_set_new(s->hc, "Devices", dv = json_array());
		json_array_append_new(dv, json_pack("{s:s,s:s,s:s}", "PathOnHost", host, "PathInContainer",
						    ctr ? ctr : host, "CgroupPermissions",
						    perms.len ? perms.buf : "rwm"));
		strbuf_release(&perms);
	}
	return 0;
}

/* extraHosts, dnsServers, dnsSearchDomains, systemControls, dockerSecurityOptions, logConfiguration. */
static int host_settings_of(struct spec *s, const json_t *def, struct berth_error **err)
{
	int r;
	if ((r = set_strs(s, def, "dnsServers", s->hc, "Dns", err)) < 0 ||
	    (r = set_strs(s, def, "dnsSearchDomains", s->hc, "DnsSearch", err)) < 0 ||
	    (r = set_strs(s, def, "dockerSecurityOptions", s->hc, "SecurityOpt", err)) < 0)
		return r;
	json_t *a;
	if ((r = get_array(s, def, "extraHosts", &a, err)) < 0)
		return r;
	size_t i;
	json_t *e;
	json_array_foreach (a, i, e) {
		const char *h = json_string_value(json_object_get(e, "hostname"));
		const char *ip = json_string_value(json_object_get(e, "ipAddress"));
		if (!h || !ip || strchr(h, ':'))
			return bad(s, "extraHosts", "hostname and ipAddress are required", err);
		json_t *x = json_object_get(s->hc, "ExtraHosts");
		if (!x)
			json_object_set_new(s->hc, "ExtraHosts", x = json_array());
		json_array_append_new(x, json_sprintf("%s:%s", h, ip));
	}
	if ((r = get_array(s, def, "systemControls", &a, err)) < 0)
		return r;
	json_array_foreach (a, i, e) {
		const char *ns = json_string_value(json_object_get(e, "namespace"));
		const char *v = json_string_value(json_object_get(e, "value"));
		if (!ns || !v)
			return bad(s, "systemControls", "namespace and value are required", err);
		json_t *x = json_object_get(s->hc, "Sysctls");
		if (!x)
			json_object_set_new(s->hc, "Sysctls", x = json_object());
		json_object_set_new(x, ns, json_string(v));
	}
	json_t *lc = json_object_get(def, "logConfiguration");
	if (lc && !json_is_null(lc)) {
		const char *drv = json_string_value(json_object_get(lc, "logDriver"));
		json_t *opts = json_object_get(lc, "options");
		if (!drv || (opts && !json_is_null(opts) && !json_is_object(opts)))
			return bad(s, "logConfiguration", "logDriver (and options as an object) expected",
				   err);
		/* awslogs is shipped to the server by the agent; locally the lines stay in json-file */
		bool aws = streq(drv, "awslogs");
		json_object_set_new(
		    s->hc, "LogConfig",
		    json_pack("{s:s,s:o}", "Type", aws ? "json-file" : drv, "Config",
			      opts && json_is_object(opts) && !aws ? json_deep_copy(opts) : json_object()));
	}
	return 0;
}

static json_t *labels_of(struct spec *s, const json_t *def, struct berth_error **err, int *ret)
{
	const struct agent_task_ctx *c = s->ctx;
	json_t *l = json_object();
	json_t *dl = json_object_get(def, "dockerLabels");
	*ret = 0;
	if (dl && !json_is_null(dl)) {
		const char *k;
		json_t *v;
		if (!json_is_object(dl)) {
			*ret = bad(s, "dockerLabels", "expected an object of strings", err);
			return l;
		}
		json_object_foreach (dl, k, v) {
			if (!json_is_string(v)) {
				*ret = bad(s, "dockerLabels", "expected an object of strings", err);
				return l;
			}
			json_object_set(l, k, v);
		}
	}
	_cleanup_free_ char *rev = xasprintf("%lld", (long long)c->revision);
	json_object_set_new(l, AGENT_LABEL_TASK_ARN, json_string(c->task_arn));
	json_object_set_new(l, AGENT_LABEL_CONTAINER, json_string(s->name));
	json_object_set_new(l, AGENT_LABEL_CLUSTER, json_string(c->cluster_arn));
	json_object_set_new(l, AGENT_LABEL_FAMILY, json_string(c->family));
	json_object_set_new(l, AGENT_LABEL_VERSION, json_string(rev));
	json_object_set_new(l, AGENT_LABEL_MANAGED, json_string(c->task_id));
	return l;
}

static int network_of(struct spec *s, const json_t *def, const char *mode, struct berth_error **err)
{
	if (streq(mode, "awsvpc")) {
		if (!s->ctx->pause_id)
			return berth_error_msg(err, EINVAL, "task network: no namespace owner for awsvpc");
		json_object_set_new(s->hc, "NetworkMode", json_sprintf("container:%s", s->ctx->pause_id));
	} else if (streq(mode, "bridge") || streq(mode, "host") || streq(mode, "none")) {
		json_object_set_new(s->hc, "NetworkMode", json_string(mode));
		const char *hn = json_string_value(json_object_get(def, "hostname"));
		if (hn && !streq(mode, "host"))
			json_object_set_new(s->cfg, "Hostname", json_string(hn));
	} else {
		return berth_error_msg(err, EINVAL, "networkMode: unknown mode '%s'", mode);
	}
	return 0;
}

/* image, command, entryPoint, workingDirectory, user, stopTimeout, flags. */
static int process_of(struct spec *s, const json_t *def, const json_t *ov, struct berth_error **err)
{
	const char *image = NULL, *wd = NULL, *user = NULL;
	int r;
	if ((r = get_str(s, def, "image", &image, err)) < 0 ||
	    (r = get_str(s, def, "workingDirectory", &wd, err)) < 0 ||
	    (r = get_str(s, def, "user", &user, err)) < 0)
		return r;
	if (!image || !*image)
		return bad(s, "image", "required", err);
	json_object_set_new(s->cfg, "Image", json_string(image));
	if (wd)
		json_object_set_new(s->cfg, "WorkingDir", json_string(wd));
	if (user)
		json_object_set_new(s->cfg, "User", json_string(user));
	json_t *cmd = NULL;
	if ((r = get_strs(s, ov && json_object_get(ov, "command") ? ov : def, "command", &cmd, err)) < 0)
		return r;
	if (cmd)
		json_object_set_new(s->cfg, "Cmd", cmd);
	if ((r = set_strs(s, def, "entryPoint", s->cfg, "Entrypoint", err)) < 0)
		return r;
	int64_t st = 30;
	bool has;
	if ((r = get_int(s, def, "stopTimeout", 2, 120, &has, &st, err)) < 0)
		return r;
	json_object_set_new(s->cfg, "StopTimeout", json_integer(st));
	static const struct {
		const char *key, *docker;
		bool host;
	} flags[] = { { "readonlyRootFilesystem", "ReadonlyRootfs", true },
		      { "privileged", "Privileged", true },
		      { "pseudoTerminal", "Tty", false },
		      { "interactive", "OpenStdin", false } };
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (json_is_true(json_object_get(def, flags[i].key)))
			json_object_set_new(flags[i].host ? s->hc : s->cfg, flags[i].docker, json_true());
	return 0;
}

char *agent_container_name(const struct agent_task_ctx *ctx, const char *container)
{
	return xasprintf("ecs-%s-%lld-%s-%.20s", ctx->family, (long long)ctx->revision, container,
			 ctx->task_id);
}

int agent_container_spec(const struct agent_task_ctx *ctx, const json_t *def, const json_t *override,
			 json_t **ret_config, json_t **ret_hostconfig, struct berth_error **err)
{
	if (!json_is_object(def))
		return berth_error_msg(err, EINVAL, "containerDefinitions: expected objects");
	if (override && !json_is_null(override) && !json_is_object(override))
		return berth_error_msg(err, EINVAL, "containerOverrides: expected objects");
	const char *name = json_string_value(json_object_get(def, "name"));
	if (!name || !*name || strlen(name) > 255 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
			 "OPQRSTUVWXYZ0123456789_-") != strlen(name))
		return berth_error_msg(err, EINVAL,
				       "containerDefinitions: a name of letters, digits, '-' "
				       "and '_' is required");
	_cleanup_json_ json_t *cfg = json_object(), *hc = json_object();
	struct spec s = { .ctx = ctx, .name = name, .cfg = cfg, .hc = hc };
	const char *mode = ctx->network_mode ? ctx->network_mode : "bridge";
	const json_t *ov = json_is_object(override) ? override : NULL;
	int r;
	if ((r = process_of(&s, def, ov, err)) < 0 || (r = env_of(&s, def, ov, err)) < 0 ||
	    (r = resources_of(&s, def, ov, err)) < 0 || (r = ports_of(&s, def, mode, err)) < 0 ||
	    (r = health_of(&s, def, err)) < 0 || (r = mounts_of(&s, def, err)) < 0 ||
	    (r = ulimits_of(&s, def, err)) < 0 || (r = linux_of(&s, def, err)) < 0 ||
	    (r = host_settings_of(&s, def, err)) < 0 || (r = network_of(&s, def, mode, err)) < 0)
		return r;
	json_t *labels = labels_of(&s, def, err, &r);
	json_object_set_new(cfg, "Labels", labels);
	if (r < 0)
		return r;
	if (ctx->cgroup_parent)
		json_object_set_new(hc, "CgroupParent", json_string(ctx->cgroup_parent));
	json_object_set_new(hc, "RestartPolicy", json_pack("{s:s}", "Name", "no"));
	*ret_config = TAKE_PTR(cfg);
	*ret_hostconfig = TAKE_PTR(hc);
	return 0;
}

bool agent_container_essential(const json_t *def)
{
	json_t *e = json_object_get(def, "essential");
	return !json_is_false(e);
}

static int index_of(const json_t *defs, const char *name)
{
	size_t i;
	json_t *d;
	json_array_foreach (defs, i, d)
		if (name && json_string_value(json_object_get(d, "name")) &&
		    streq(name, json_string_value(json_object_get(d, "name"))))
			return (int)i;
	return -1;
}

int agent_task_order(const json_t *defs, json_t **ret, struct berth_error **err)
{
	size_t n = json_array_size(defs);
	if (!json_is_array(defs) || n == 0 || n > AGENT_MAX_CONTAINERS)
		return berth_error_msg(err, EINVAL, "containerDefinitions: 1 to %d containers required",
				       AGENT_MAX_CONTAINERS);
	/* state: 0 unvisited, 1 on the stack, 2 placed; an explicit DFS stack of (node, next dep). */
	int state[AGENT_MAX_CONTAINERS] = { 0 };
	int stack[AGENT_MAX_CONTAINERS], next[AGENT_MAX_CONTAINERS];
	_cleanup_json_ json_t *order = json_array();
	for (size_t root = 0; root < n; root++) {
		const char *rn = json_string_value(json_object_get(json_array_get(defs, root), "name"));
		if (!rn || index_of(defs, rn) != (int)root)
			return berth_error_msg(err, EINVAL,
					       "containerDefinitions[%zu]: missing or duplicate name", root);
	}
	for (size_t root = 0; root < n; root++) {
		if (state[root])
			continue;
		int sp = 0;
		stack[sp] = (int)root, next[sp] = 0, state[root] = 1;
		while (sp >= 0) {
			int cur = stack[sp];
			const json_t *d = json_array_get(defs, (size_t)cur);
			const char *cname = json_string_value(json_object_get(d, "name"));
			json_t *deps = json_object_get(d, "dependsOn");
			if (deps && !json_is_null(deps) && !json_is_array(deps))
				return berth_error_msg(err, EINVAL,
						       "containerDefinitions[%s].dependsOn: expected "
						       "an array",
						       cname);
			if (next[sp] < (int)json_array_size(deps)) {
				const json_t *dep = json_array_get(deps, (size_t)next[sp]++);
				const char *on = json_string_value(json_object_get(dep, "containerName"));
				const char *cond = json_string_value(json_object_get(dep, "condition"));
				if (!cond || (!streq(cond, "START") && !streq(cond, "COMPLETE") &&
					      !streq(cond, "SUCCESS") && !streq(cond, "HEALTHY")))
					return berth_error_msg(err, EINVAL,
							       "containerDefinitions[%s].dependsOn: "
							       "condition must be START, COMPLETE, "
							       "SUCCESS or HEALTHY",
							       cname);
				int k = index_of(defs, on);
				if (k < 0 || k == cur)
					return berth_error_msg(err, EINVAL,
							       "containerDefinitions[%s].dependsOn: "
							       "unknown container '%s'",
							       cname, on ? on : "");
				if (state[k] == 1)
					return berth_error_msg(err, EINVAL,
							       "containerDefinitions[%s].dependsOn: "
							       "cycle through '%s'",
							       cname, on);
				if (state[k] == 0) {
					sp++;
					stack[sp] = k, next[sp] = 0, state[k] = 1;
				}
				continue;
			}
			state[cur] = 2;
			json_array_append_new(order, json_string(cname));
			sp--;
		}
	}
	*ret = TAKE_PTR(order);
	return 0;
}
