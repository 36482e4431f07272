/*
 * system.c - /_ping, /version, /info.
 */
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>

#include "api/routes.h"
#include "image/image.h"
#include "common/util.h"

void api_ping(struct api_call *c)
{
	http_response_header(c->req, "Cache-Control", "no-cache, no-store, must-revalidate");
	http_response_header(c->req, "Pragma", "no-cache");
	/* dockerd's without BuildKit: the docker CLI builds with the classic builder API */
	http_response_header(c->req, "Builder-Version", "1");
	if (streq(http_request_method(c->req), "HEAD"))
		http_respond(c->req, 200, "text/plain; charset=utf-8", NULL, 0);
	else
		http_respond(c->req, 200, "text/plain; charset=utf-8", xstrdup("OK"), 2);
}

void api_version(struct api_call *c)
{
	struct utsname u;
	uname(&u);
	http_respond_json(
	    c->req, 200,
	    json_pack(
		"{s:{s:s},s:[{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}}],s:s,s:s,s:s,s:s,s:s,s:s,s:"
		"s,s:s,s:s}",
		"Platform", "Name", "berth", "Components", "Name", "Engine", "Version", BERTH_VERSION,
		"Details", "ApiVersion", API_VERSION, "MinAPIVersion", API_MIN_VERSION, "Os", "linux", "Arch",
		"amd64", "GitCommit", "berth", "GoVersion", "n/a", "KernelVersion", u.release, "Experimental",
		"false", "BuildTime", "", "Version", BERTH_VERSION, "ApiVersion", API_VERSION,
		"MinAPIVersion", API_MIN_VERSION, "GitCommit", "berth", "GoVersion", "n/a", "Os", "linux",
		"Arch", "amd64", "KernelVersion", u.release, "BuildTime", ""));
}

static json_t *registry_config(void)
{
	return json_pack("{s:[],s:[],s:[s],s:{},s:[]}", "AllowNondistributableArtifactsCIDRs",
			 "AllowNondistributableArtifactsHostnames", "InsecureRegistryCIDRs", "127.0.0.0/8",
			 "IndexConfigs", "Mirrors");
}

void api_info(struct api_call *c)
{
	struct engine_counts n;
	engine_counts(c->api->engine, &n);
	json_t *imgs = NULL;
	if (image_list(c->api->images, NULL, &imgs, NULL) >= 0)
		n.images = (unsigned)json_array_size(imgs);
	json_decref(imgs);
	struct utsname u;
	uname(&u);
	struct sysinfo si;
	sysinfo(&si);
	struct timespec ts;
	char now[RFC3339_MAX];
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, now);
	json_t *j = json_pack(
	    "{s:s,s:I,s:I,s:I,s:I,s:I,s:s,s:[],s:n,s:{s:[s],s:[s,s],s:n,s:[s,s]}}", "ID", "berth",
	    "Containers", (json_int_t)n.containers, "ContainersRunning", (json_int_t)n.running,
	    "ContainersPaused", (json_int_t)n.paused, "ContainersStopped", (json_int_t)n.stopped, "Images",
	    (json_int_t)n.images, "Driver", "overlay2", "DriverStatus", "SystemStatus", "Plugins", "Volume",
	    "local", "Network", "host", "none", "Authorization", "Log", "json-file", "none");
	const char *bools[] = {
		"MemoryLimit", "SwapLimit", "KernelMemory", "CpuCfsPeriod",   "CpuCfsQuota",
		"CPUShares",   "CPUSet",    "PidsLimit",    "IPv4Forwarding", "OomKillDisable"
	};
	for (size_t i = 0; i < ARRAY_SIZE(bools); i++)
		json_object_set_new(j, bools[i], json_true());
	json_object_set_new(j, "BridgeNfIptables", json_false());
	json_object_set_new(j, "BridgeNfIp6tables", json_false());
	json_object_set_new(j, "Debug", json_false());
	json_object_set_new(j, "NFd", json_integer(0));
	json_object_set_new(j, "NGoroutines", json_integer(0));
	json_object_set_new(j, "SystemTime", json_string(now));
	json_object_set_new(j, "LoggingDriver", json_string("json-file"));
	json_object_set_new(j, "CgroupDriver", json_string("cgroupfs"));
	json_object_set_new(j, "CgroupVersion", json_string("1"));
	json_object_set_new(j, "NEventsListener", json_integer(0));
	json_object_set_new(j, "KernelVersion", json_string(u.release));
	json_object_set_new(j, "OperatingSystem", json_string("berth"));
	json_object_set_new(j, "OSVersion", json_string(""));
	json_object_set_new(j, "OSType", json_string("linux"));
	json_object_set_new(j, "Architecture", json_string(u.machine));
	json_object_set_new(j, "IndexServerAddress", json_string("https://index.docker.io/v1/"));
	json_object_set_new(j, "RegistryConfig", registry_config());
	json_object_set_new(j, "NCPU", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_set_new(j, "MemTotal", json_integer((json_int_t)si.totalram * si.mem_unit));
	json_object_set_new(j, "GenericResources", json_null());
	json_object_set_new(j, "DockerRootDir", json_string(engine_root(c->api->engine)));
	json_object_set_new(j, "HttpProxy", json_string(""));
	json_object_set_new(j, "HttpsProxy", json_string(""));
	json_object_set_new(j, "NoProxy", json_string(""));
	json_object_set_new(j, "Name", json_string(u.nodename));
	json_object_set_new(j, "Labels", json_array());
	json_object_set_new(j, "ExperimentalBuild", json_false());
	json_object_set_new(j, "ServerVersion", json_string(BERTH_VERSION));
	json_object_set_new(j, "Runtimes", engine_runtimes_info(c->api->engine));
	json_object_set_new(j, "DefaultRuntime", json_string(engine_runtime_default(c->api->engine)));
	json_object_set_new(j, "Swarm",
			    json_pack("{s:s,s:s,s:s,s:b,s:s,s:n}", "NodeID", "", "NodeAddr", "",
				      "LocalNodeState", "inactive", "ControlAvailable", 0, "Error", "",
				      "RemoteManagers"));
	json_object_set_new(j, "LiveRestoreEnabled", json_true());
	json_object_set_new(j, "Isolation", json_string(""));
	json_object_set_new(j, "InitBinary", json_string(""));
	const char *commits[] = { "ContainerdCommit", "RuncCommit", "InitCommit" };
	for (size_t i = 0; i < ARRAY_SIZE(commits); i++)
		json_object_set_new(j, commits[i], json_pack("{s:s,s:s}", "ID", "", "Expected", ""));
	json_object_set_new(j, "SecurityOptions", json_array());
	json_object_set_new(j, "Warnings", json_null());
	http_respond_json(c->req, 200, j);
}

static json_t *df_images(struct api *api, struct engine_container_info **cs, size_t n, int64_t *layers)
{
	json_t *imgs = NULL;
	if (image_list(api->images, NULL, &imgs, NULL) < 0)
		return json_array();
	size_t i;
	json_t *img;
	json_array_foreach (imgs, i, img) {
		const char *id = json_string_value(json_object_get(img, "Id")) ?: "";
		int64_t used = 0;
		for (size_t k = 0; k < n; k++)
			used += streq(cs[k]->image_id ? cs[k]->image_id : "", id);
		json_object_set_new(img, "Containers", json_integer(used));
	}
	/* each layer once (dockerd's SharedSize and LayersSize), not once per image */
	if (image_disk_usage(api->images, imgs, layers, NULL) < 0) {
		json_array_foreach (imgs, i, img) {
			json_object_set_new(img, "SharedSize", json_integer(-1));
			*layers += json_integer_value(json_object_get(img, "Size"));
		}
	}
	return imgs;
}

static json_t *df_containers(struct engine_container_info **cs, size_t n)
{
	json_t *out = json_array();
	for (size_t k = 0; k < n; k++) {
		json_t *s = api_container_summary(cs[k]);
		int64_t rw = api_container_rw_usage(cs[k]);
		json_object_set_new(s, "SizeRw", json_integer(rw));
		json_object_set_new(s, "SizeRootFs", json_integer(rw));
		json_array_append_new(out, s);
	}
	return out;
}

static json_t *df_volumes(struct api *api, struct engine_container_info **cs, size_t n)
{
	json_t *vols = NULL;
	if (engine_volume_list(api->engine, &vols, NULL) < 0)
		return json_array();
	size_t i;
	json_t *v;
	json_array_foreach (vols, i, v) {
		const char *name = json_string_value(json_object_get(v, "Name")) ?: "";
		const char *mp = json_string_value(json_object_get(v, "Mountpoint")) ?: "";
		json_object_set_new(v, "UsageData",
				    json_pack("{s:I,s:I}", "Size", (json_int_t)api_dir_usage(mp), "RefCount",
					      (json_int_t)api_volume_refcount(cs, n, name)));
	}
	return vols;
}

void api_system_df(struct api_call *c)
{
	struct engine_container_info **cs = NULL;
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = engine_container_list(c->api->engine, true, &cs, &n, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	int64_t layers = 0;
	json_t *imgs = df_images(c->api, cs, n, &layers);
	json_t *j =
	    json_pack("{s:I,s:o,s:o,s:o,s:[]}", "LayersSize", (json_int_t)layers, "Images", imgs,
		      "Containers", df_containers(cs, n), "Volumes", df_volumes(c->api, cs, n), "BuildCache");
	engine_container_info_list_free(cs, n);
	http_respond_json(c->req, 200, j);
}
