/*
 * shapes.c - Docker's JSON for containers: GET /containers/{id}/json and the
 * summaries of GET /containers/json, including docker's human "Status"
 * ("Up 2 minutes", "Exited (0) 3 seconds ago") and ps filters.
 */
#include <time.h>

#include "api/routes.h"
#include "common/json.h"
#include "common/util.h"

static int64_t unix_of(const char *t)
{
	struct timespec ts;
	return t && util_parse_rfc3339(t, &ts) == 0 ? ts.tv_sec : 0;
}

/* docker/go-units HumanDuration */
static char *human_duration(int64_t s)
{
	if (s < 1)
		return xstrdup("Less than a second");
	if (s == 1)
		return xstrdup("1 second");
	if (s < 60)
		return xasprintf("%lld seconds", (long long)s);
	int64_t m = s / 60;
	if (m == 1)
		return xstrdup("About a minute");
	if (m < 60)
		return xasprintf("%lld minutes", (long long)m);
	int64_t h = (int64_t)((double)s / 3600 + 0.5);
	if (h == 1)
		return xstrdup("About an hour");
	if (h < 48)
		return xasprintf("%lld hours", (long long)h);
	if (h < 24 * 7 * 2)
		return xasprintf("%lld days", (long long)(h / 24));
	if (h < 24 * 30 * 2)
		return xasprintf("%lld weeks", (long long)(h / 24 / 7));
	if (h < 24 * 365 * 2)
		return xasprintf("%lld months", (long long)(h / 24 / 30));
	return xasprintf("%lld years", (long long)(h / 24 / 365));
}

static char *status_text(const struct engine_container_info *i)
{
	int64_t now = time(NULL);
	switch (i->state) {
	case ENGINE_RUNNING:
	case ENGINE_PAUSED: {
		_cleanup_free_ char *d = human_duration(now - unix_of(i->started_at));
		if (i->state == ENGINE_PAUSED)
			return xasprintf("Up %s (Paused)", d);
		if (i->health)
			return xasprintf("Up %s (%s%s)", d, streq(i->health, "starting") ? "health: " : "",
					 i->health);
		return xasprintf("Up %s", d);
	}
	case ENGINE_RESTARTING: {
		_cleanup_free_ char *d = human_duration(now - unix_of(i->finished_at));
		return xasprintf("Restarting (%d) %s ago", i->exit_code, d);
	}
	case ENGINE_CREATED: return xstrdup("Created");
	case ENGINE_REMOVING: return xstrdup("Removal In Progress");
	case ENGINE_DEAD: return xstrdup("Dead");
	default: {
		if (unix_of(i->finished_at) <= 0)
			return xstrdup("Created");
		_cleanup_free_ char *d = human_duration(now - unix_of(i->finished_at));
		return xasprintf("Exited (%d) %s ago", i->exit_code, d);
	}
	}
}

static json_t *path_and_args(const struct engine_container_info *i, json_t **ret_args)
{
	json_t *all = json_array();
	json_array_extend(all, json_object_get(i->config, "Entrypoint"));
	json_array_extend(all, json_object_get(i->config, "Cmd"));
	json_t *args = json_array();
	for (size_t k = 1; k < json_array_size(all); k++)
		json_array_append(args, json_array_get(all, k));
	*ret_args = args;
	json_t *path = json_array_size(all) ? json_incref(json_array_get(all, 0)) : json_string("");
	json_decref(all);
	return path;
}

static json_t *network_settings(const struct engine_container_info *i)
{
	const char *mode = json_string_value(json_object_get(i->hostconfig, "NetworkMode"));
	if (!mode || streq(mode, "default"))
		mode = "bridge";
	json_t *ep = json_pack("{s:n,s:n,s:n,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:s,s:n}", "IPAMConfig", "Links",
			       "Aliases", "NetworkID", "", "EndpointID", "", "Gateway", "", "IPAddress", "",
			       "IPPrefixLen", 0, "IPv6Gateway", "", "GlobalIPv6Address", "",
			       "GlobalIPv6PrefixLen", 0, "MacAddress", "", "DriverOpts");
	json_t *nets = json_object();
	json_object_set_new(nets, mode, ep);
	return json_pack("{s:s,s:s,s:b,s:s,s:i,s:{},s:s,s:n,s:n,s:s,s:s,s:s,s:i,s:s,s:i,s:s,s:s,s:o}",
			 "Bridge", "", "SandboxID", "", "HairpinMode", 0, "LinkLocalIPv6Address", "",
			 "LinkLocalIPv6PrefixLen", 0, "Ports", "SandboxKey", "", "SecondaryIPAddresses",
			 "SecondaryIPv6Addresses", "EndpointID", "", "Gateway", "", "GlobalIPv6Address", "",
			 "GlobalIPv6PrefixLen", 0, "IPAddress", "", "IPPrefixLen", 0, "IPv6Gateway", "",
			 "MacAddress", "", "Networks", nets);
}

void api_config_defaults(json_t *cfg)
{
	static const char *const strings[] = { "Hostname", "Domainname", "User", "Image", "WorkingDir" };
	static const char *const falses[] = { "AttachStdin", "AttachStdout", "AttachStderr",
					      "Tty",         "OpenStdin",    "StdinOnce" };
	static const char *const nulls[] = { "Env", "Cmd", "Volumes", "Entrypoint", "OnBuild", "Labels" };
	for (size_t k = 0; k < ARRAY_SIZE(strings); k++)
		if (!json_object_get(cfg, strings[k]))
			json_object_set_new(cfg, strings[k], json_string(""));
	for (size_t k = 0; k < ARRAY_SIZE(falses); k++)
		if (!json_object_get(cfg, falses[k]))
			json_object_set_new(cfg, falses[k], json_false());
	for (size_t k = 0; k < ARRAY_SIZE(nulls); k++)
		if (!json_object_get(cfg, nulls[k]))
			json_object_set_new(cfg, nulls[k], json_null());
}

/*
 * The members of dockerd's HostConfig (a Go struct: all of them, always) with
 * their zero values, for the ones a container's stored HostConfig lacks (docker-py
 * sends only what it is given: attrs['HostConfig']['Binds'] raised KeyError).
 */
static void hostconfig_members(json_t *hc)
{
	static const char zero[] =
	    "{\"Binds\":null,\"BlkioDeviceReadBps\":null,\"BlkioDeviceReadIOps\":null,"
	    "\"BlkioDeviceWriteBps\":null,\"BlkioDeviceWriteIOps\":null,\"BlkioWeight\":0,"
	    "\"BlkioWeightDevice\":null,\"CapAdd\":null,\"CapDrop\":null,\"Cgroup\":\"\",\"CgroupParent\":"
	    "\"\","
	    "\"ConsoleSize\":[0,0],\"ContainerIDFile\":\"\",\"CpuCount\":0,\"CpuPercent\":0,"
	    "\"CpuRealtimePeriod\":0,\"CpuRealtimeRuntime\":0,\"CpusetCpus\":\"\",\"CpusetMems\":\"\","
	    "\"DeviceCgroupRules\":null,\"DeviceRequests\":null,\"Devices\":null,\"Dns\":null,"
	    "\"DnsOptions\":null,\"DnsSearch\":null,\"ExtraHosts\":null,\"GroupAdd\":null,"
	    "\"IOMaximumBandwidth\":0,\"IOMaximumIOps\":0,\"Isolation\":\"\",\"KernelMemory\":0,"
	    "\"KernelMemoryTCP\":0,\"Links\":null,\"MemoryReservation\":0,\"MemorySwappiness\":null,"
	    "\"OomKillDisable\":false,\"OomScoreAdj\":0,\"PidMode\":\"\",\"PidsLimit\":null,"
	    "\"SecurityOpt\":null,\"UTSMode\":\"\",\"Ulimits\":null,\"UsernsMode\":\"\",\"VolumeDriver\":"
	    "\"\","
	    "\"VolumesFrom\":null}";
	_cleanup_json_ json_t *z = json_loads(zero, 0, NULL);
	const char *k;
	json_t *v;
	json_object_foreach (z, k, v)
		if (!json_object_get(hc, k))
			json_object_set(hc, k, v);
}

json_t *api_container_json(const struct engine_container_info *i)
{
	json_t *args;
	json_t *path = path_and_args(i, &args);
	bool running = i->state == ENGINE_RUNNING || i->state == ENGINE_PAUSED;
	json_t *state = json_pack(
	    "{s:s,s:b,s:b,s:b,s:b,s:b,s:i,s:i,s:s,s:s,s:s}", "Status", engine_state_name(i->state), "Running",
	    running, "Paused", i->state == ENGINE_PAUSED, "Restarting", i->state == ENGINE_RESTARTING,
	    "OOMKilled", i->oom_killed, "Dead", i->dead, "Pid", (int)i->pid, "ExitCode", i->exit_code,
	    "Error", i->error, "StartedAt", i->started_at, "FinishedAt", i->finished_at);
	if (i->health)
		json_object_set_new(state, "Health",
				    json_pack("{s:s,s:i,s:O}", "Status", i->health, "FailingStreak",
					      i->health_failing_streak, "Log", i->health_log));
	json_t *execs = json_array();
	for (char **x = i->exec_ids; x && *x; x++)
		json_array_append_new(execs, json_string(*x));
	_cleanup_free_ char *name = xasprintf("/%s", i->name);
	json_t *j = json_pack("{s:s,s:s,s:o,s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:s}", "Id",
			      i->id, "Created", i->created, "Path", path, "Args", args, "State", state,
			      "Image", i->image_id, "ResolvConfPath", i->resolv_conf_path, "HostnamePath",
			      i->hostname_path, "HostsPath", i->hosts_path, "LogPath", i->log_path, "Name",
			      name, "RestartCount", i->restart_count, "Driver", "overlay2", "Platform",
			      "linux", "MountLabel", "", "ProcessLabel", "", "AppArmorProfile", "");
	json_object_set_new(j, "ExecIDs", json_array_size(execs) ? execs : (json_decref(execs), json_null()));
	/* a copy: i->hostconfig may be shared; dockerd names the runtime (DefaultRuntime "runc") */
	json_t *hc = json_is_object(i->hostconfig) ? json_copy(i->hostconfig) : json_object();
	const char *rt = json_string_value(json_object_get(hc, "Runtime"));
	if (!rt || !*rt)
		json_object_set_new(hc, "Runtime", json_string("runc"));
	hostconfig_members(hc);
	json_object_set_new(j, "HostConfig", hc);
	json_object_set_new(
	    j, "GraphDriver",
	    json_pack("{s:s,s:{s:s}}", "Name", "overlay2", "Data", "MergedDir", i->rootfs ? i->rootfs : ""));
	json_object_set_new(j, "Mounts", i->mounts ? json_incref(i->mounts) : json_array());
	json_t *cfg = json_is_object(i->config) ? json_copy(i->config) : json_object();
	api_config_defaults(cfg);
	json_object_set_new(j, "Config", cfg);
	json_object_set_new(j, "NetworkSettings", network_settings(i));
	return j;
}

static char *command_text(const struct engine_container_info *i)
{
	struct strbuf sb = STRBUF_INIT;
	const char *keys[] = { "Entrypoint", "Cmd" };
	for (size_t k = 0; k < 2; k++) {
		size_t n;
		json_t *el;
		json_array_foreach (json_object_get(i->config, keys[k]), n, el) {
			if (sb.len)
				strbuf_addch(&sb, ' ');
			strbuf_addstr(&sb, json_string_value(el));
		}
	}
	return strbuf_detach(&sb, NULL);
}

json_t *api_container_summary(const struct engine_container_info *i)
{
	_cleanup_free_ char *name = xasprintf("/%s", i->name);
	_cleanup_free_ char *cmd = command_text(i);
	_cleanup_free_ char *status = status_text(i);
	const char *mode = json_string_value(json_object_get(i->hostconfig, "NetworkMode"));
	json_t *labels = json_object_get(i->config, "Labels");
	json_t *ns = network_settings(i);
	json_t *nets = json_incref(json_object_get(ns, "Networks"));
	json_decref(ns);
	return json_pack("{s:s,s:[s],s:s,s:s,s:s,s:I,s:[],s:O,s:s,s:s,s:{s:s},s:{s:o},s:o}", "Id", i->id,
			 "Names", name, "Image", i->image, "ImageID", i->image_id, "Command", cmd, "Created",
			 (json_int_t)unix_of(i->created), "Ports", "Labels", labels ? labels : json_object(),
			 "State", engine_state_name(i->state), "Status", status, "HostConfig", "NetworkMode",
			 mode ? mode : "default", "NetworkSettings", "Networks", nets, "Mounts",
			 i->mounts ? json_incref(i->mounts) : json_array());
}

static bool any_matches(const json_t *vals, bool (*pred)(const struct engine_container_info *, const char *),
			const struct engine_container_info *i)
{
	if (json_is_object(vals)) { /* old clients: {"status": {"running": true}} */
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)vals, k, v)
			if (pred(i, k))
				return true;
		return false;
	}
	size_t n;
	json_t *el;
	json_array_foreach (vals, n, el)
		if (json_is_string(el) && pred(i, json_string_value(el)))
			return true;
	return false;
}

static bool f_status(const struct engine_container_info *i, const char *v)
{
	return streq(engine_state_name(i->state), v);
}

static bool f_name(const struct engine_container_info *i, const char *v)
{
	return strstr(i->name, v[0] == '/' ? v + 1 : v) != NULL;
}

static bool f_id(const struct engine_container_info *i, const char *v)
{
	return startswith(i->id, v);
}

static bool f_label(const struct engine_container_info *i, const char *v)
{
	_cleanup_free_ char *k = xstrdup(v);
	char *val = strchr(k, '=');
	if (val)
		*val++ = '\0';
	const char *have = json_string_value(json_object_get(json_object_get(i->config, "Labels"), k));
	return have && (!val || streq(have, val));
}

static bool f_exited(const struct engine_container_info *i, const char *v)
{
	return i->state == ENGINE_EXITED && i->exit_code == atoi(v);
}

static bool f_ancestor(const struct engine_container_info *i, const char *v)
{
	return streq(i->image, v) || startswith(i->image_id, v) ||
	       (strchr(v, ':') == NULL && startswith(i->image, v) && i->image[strlen(v)] == ':');
}

/* Label filters are all required (docker ANDs them); the others match any value. */
static bool all_labels(const json_t *vals, const struct engine_container_info *i)
{
	if (json_is_object(vals)) {
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)vals, k, v)
			if (!f_label(i, k))
				return false;
		return true;
	}
	size_t n;
	json_t *el;
	json_array_foreach (vals, n, el)
		if (!json_is_string(el) || !f_label(i, json_string_value(el)))
			return false;
	return true;
}

bool api_container_filter(const struct engine_container_info *i, const json_t *filters)
{
	const json_t *labels = json_object_get(filters, "label");
	if (labels && !all_labels(labels, i))
		return false;
	static const struct {
		const char *key;
		bool (*pred)(const struct engine_container_info *, const char *);
	} fs[] = { { "status", f_status },
		   { "name", f_name },
		   { "id", f_id },
		   { "exited", f_exited },
		   { "ancestor", f_ancestor } };
	for (size_t k = 0; k < ARRAY_SIZE(fs); k++) {
		const json_t *vals = json_object_get(filters, fs[k].key);
		if (vals && !any_matches(vals, fs[k].pred, i))
			return false;
	}
	return true;
}
