/*
 * host.c - assembly of one container host (see host.h): the order of opening
 * (images, networking, engine, then the networking's view of the engine and
 * its garbage collection) and the container-creation policy that every front
 * end shares. Everything here was once inside `berth daemon`; the agent needs
 * exactly the same host, so it lives below both.
 */
#include <fcntl.h>
#include <sys/file.h>

#include "host/host.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "host/netops.h"
#include "image/image.h"
#include "runtime/cgroups.h"

int host_check_log_defaults(const char *driver, const json_t *opts, struct berth_error **err)
{
	if (!driver && !opts)
		return 0;
	json_t *lc = json_pack("{s:s,s:o}", "Type", driver ? driver : "json-file", "Config",
			       opts ? json_deep_copy(opts) : json_object());
	_cleanup_json_ json_t *cfg = json_pack("{s:s}", "Image", "x");
	_cleanup_json_ json_t *hc = json_pack("{s:o}", "LogConfig", lc);
	int r = engine_container_config_check(cfg, hc, err);
	return r < 0 ? berth_error_wrap(err, r, "invalid default log config") : 0;
}

/*
 * The roots are 0710 (dockerd's data root since 20.10.9): root's group may
 * traverse (the API socket in the exec root is root:root 0660), nobody else.
 * Containers do not need more: their rootfs, volumes and /etc files reach
 * them as mounts made by root, and paths are never resolved through the
 * roots after pivot_root. The builder's directory is 0700. Modes are
 * tightened on every open, so installs made with 0711 roots are fixed too.
 */
static int host_private_roots(const struct host_config *cfg, struct berth_error **err)
{
	_cleanup_free_ char *builder = xasprintf("%s/builder", cfg->root);
	const struct {
		const char *path;
		mode_t mode;
	} dirs[] = { { cfg->root, 0710 }, { cfg->exec_root, 0710 }, { builder, 0700 } };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int r = fs_mkdir_p(dirs[i].path, dirs[i].mode, err);
		if (r < 0)
			return r;
		if (chmod(dirs[i].path, dirs[i].mode) < 0)
			return berth_error_errno(err, "chmod '%s'", dirs[i].path);
	}
	return 0;
}

int host_open(const struct host_config *cfg, struct host **ret, struct berth_error **err)
{
	int r;
	if (!cfg->root || !cfg->exec_root)
		return berth_error_msg(err, EINVAL, "host: root and exec root are required");
	if ((r = host_check_log_defaults(cfg->log_driver, cfg->log_opts, err)) < 0)
		return r;
	if ((r = host_private_roots(cfg, err)) < 0)
		return r;
	/* One daemon or agent per root: two would race on every record and socket. */
	_cleanup_free_ char *lock = xasprintf("%s/host.lock", cfg->root);
	_cleanup_close_ int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lfd < 0)
		return berth_error_errno(err, "open '%s'", lock);
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK
			   ? berth_error_msg(err, EBUSY,
					     "root '%s' is in use by another berth daemon or agent",
					     cfg->root)
			   : berth_error_errno(err, "lock '%s'", lock);
	struct host *h = xcalloc(1, sizeof(*h));
	h->lock_fd = TAKE_FD(lfd);
	h->root = xstrdup(cfg->root);
	h->exec_root = xstrdup(cfg->exec_root);
	h->log_driver = cfg->log_driver ? xstrdup(cfg->log_driver) : NULL;
	h->log_opts = cfg->log_opts ? json_deep_copy(cfg->log_opts) : NULL;
	if ((r = image_store_open(cfg->root, &h->images, err)) < 0) {
		host_close(h);
		return berth_error_wrap(err, r, "open image store");
	}
	bool networking = !cfg->bridge || !streq(cfg->bridge, "none");
	if (networking && (r = host_netops_open(cfg->root, cfg->exec_root, cfg->bridge, cfg->bridge_subnet6,
						&h->net, err)) < 0) {
		host_close(h);
		return r;
	}
	struct engine_config ec = { .root = cfg->root,
				    .exec_root = cfg->exec_root,
				    .runtimes = cfg->runtimes,
				    .images = &engine_image_store_ops,
				    .images_ctx = h->images,
				    .net = h->net ? &host_netops_engine_ops : NULL,
				    .net_ctx = h->net,
				    .init_path = cfg->init_path,
				    .default_ulimits = cfg->default_ulimits,
				    .cgroup_parent = cfg->cgroup_parent };
	if ((r = engine_open(&ec, &h->engine, err)) < 0) {
		host_close(h);
		return berth_error_wrap(err, r, "open engine");
	}
	if (h->net) {
		_cleanup_error_ struct berth_error *gc_err = NULL;
		host_netops_set_engine(h->net, h->engine);
		if (host_netops_gc(h->net, &gc_err) < 0)
			log_fields(LOG_LEVEL_WARN, "network garbage collection failed", "error", gc_err->msg,
				   NULL);
	}
	*ret = h;
	return 0;
}

void host_shutdown(struct host *h)
{
	if (h && h->engine)
		engine_shutdown(h->engine);
}

/*
 * A daemon that stops with no container running leaves no firewall chains behind (the next
 * start rebuilds them); while containers keep running (they outlive the daemon) their
 * isolation and NAT stay.
 */
static void remove_firewall_if_idle(struct host *h)
{
	struct engine_counts n;
	if (!h->engine || !h->net)
		return;
	engine_counts(h->engine, &n);
	if (n.running || n.paused)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	if (host_netops_remove_firewall(h->net, &err) < 0)
		log_fields(LOG_LEVEL_WARN, "removing the firewall chains failed", "error", err->msg, NULL);
}

struct host *host_close(struct host *h)
{
	if (!h)
		return NULL;
	remove_firewall_if_idle(h);
	engine_close(h->engine);
	image_store_free(h->images);
	host_netops_free(h->net);
	safe_close(h->lock_fd);
	free(h->root);
	free(h->exec_root);
	free(h->log_driver);
	json_decref(h->log_opts);
	free(h);
	return NULL;
}

/* The host's default log driver where the request names none (docker's --log-driver). */
static json_t *default_log_config(const struct host *h, const json_t *hostconfig)
{
	json_t *hc = hostconfig ? json_deep_copy(hostconfig) : json_object();
	if (!h->log_driver && !h->log_opts)
		return hc;
	if (!json_is_object(hc))
		return hc;
	json_t *lc = json_object_get(hc, "LogConfig");
	const char *type = json_string_value(json_object_get(lc, "Type"));
	if ((lc && !json_is_object(lc)) || (type && *type))
		return hc;
	json_object_set_new(hc, "LogConfig",
			    json_pack("{s:s,s:o}", "Type", h->log_driver ? h->log_driver : "json-file",
				      "Config", h->log_opts ? json_deep_copy(h->log_opts) : json_object()));
	return hc;
}

int host_container_create(struct host *h, const char *name, const json_t *config, const json_t *hostconfig,
			  const json_t *networking_config, char **ret_id, struct berth_error **err)
{
	_cleanup_json_ json_t *hc = default_log_config(h, hostconfig);
	_cleanup_free_ char *id = NULL;
	int r = h->net ? host_netops_create_check(h->net, config, hc, networking_config, err) : 0;
	if (r >= 0)
		r = engine_container_create(h->engine, name, config, hc, &id, err);
	if (r < 0)
		return r;
	/* without its record the container would start on its network mode alone (no aliases, no
	 * --ip, no second network): the create fails with the reason and leaves nothing */
	if (h->net && (r = host_netops_create_commit(h->net, id, config, hc, networking_config, err)) < 0) {
		(void)engine_container_remove(h->engine, id, true, true, NULL);
		return r;
	}
	*ret_id = TAKE_PTR(id);
	return 0;
}

json_t *host_container_json(struct host *h, const struct engine_container_info *i, json_t *j)
{
	return host_netops_container_json(h->net, i, j);
}

json_t *host_container_summary(struct host *h, const struct engine_container_info *i, json_t *j)
{
	return host_netops_container_summary(h->net, i, j);
}

/* v1: <root>/<ctrl><path>; v2: <root><path>. */
static int cg_set(enum cgroup_kind kind, const char *ctrl, const char *path, const char *file,
		  const char *value, struct berth_error **err)
{
	_cleanup_free_ char *dir = kind == CGROUP_V1 ? xasprintf("%s/%s%s", runtime_cgroup_root(), ctrl, path)
						     : xasprintf("%s%s", runtime_cgroup_root(), path);
	return runtime_cg_write(dir, file, value, err);
}

int host_cgroup_create(const char *name, int64_t cpu_units, int64_t memory_bytes, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("/%s", name + (*name == '/'));
	enum cgroup_kind kind = runtime_cgroup_detect();
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(kind);
	if (!ops)
		return berth_error_msg(err, ENOTSUP, "no cgroup hierarchy for task limits");
	if (cpu_units < 0 || memory_bytes < 0)
		return berth_error_msg(err, EINVAL, "task cgroup '%s': negative limits", path);
	int r = ops->create(path, err);
	if (r < 0)
		return berth_error_wrap(err, r, "create task cgroup '%s'", path);
	char v[64];
	if (memory_bytes) {
		snprintf(v, sizeof(v), "%lld", (long long)memory_bytes);
		r = cg_set(kind, "memory", path, kind == CGROUP_V1 ? "memory.limit_in_bytes" : "memory.max",
			   v, err);
	}
	if (r >= 0 && cpu_units) {
		/* quota = units/1024 cores of a 100 ms period; weight from shares as runc converts */
		snprintf(v, sizeof(v), "%lld", (long long)(cpu_units * 100000 / 1024));
		if (kind == CGROUP_V1) {
			r = cg_set(kind, "cpu", path, "cpu.cfs_period_us", "100000", err);
			if (r >= 0)
				r = cg_set(kind, "cpu", path, "cpu.cfs_quota_us", v, err);
			snprintf(v, sizeof(v), "%lld", (long long)MAX(cpu_units, 2));
			if (r >= 0)
				r = cg_set(kind, "cpu", path, "cpu.shares", v, err);
		} else {
			char max[80];
			snprintf(max, sizeof(max), "%s 100000", v);
			r = cg_set(kind, "cpu", path, "cpu.max", max, err);
			long long shares = MAX(cpu_units, 2);
			snprintf(v, sizeof(v), "%lld", 1 + ((shares - 2) * 9999) / 262142);
			if (r >= 0)
				r = cg_set(kind, "cpu", path, "cpu.weight", v, err);
		}
	}
	if (r < 0) {
		ops->destroy(path, NULL);
		return berth_error_wrap(err, r, "task cgroup '%s' limits", path);
	}
	return 0;
}

int host_cgroup_remove(const char *name, struct berth_error **err)
{
	_cleanup_free_ char *path = xasprintf("/%s", name + (*name == '/'));
	const struct cgroup_ops *ops = runtime_cgroup_ops_for(runtime_cgroup_detect());
	return ops ? ops->destroy(path, err) : 0;
}
