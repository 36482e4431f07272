/*
 * runner.c - one thread per task drives it through the host layer (see
 * runner.h). Each task's thread sleeps on its own condition variable; the
 * engine's event stream (one reader thread) bumps the task named by the
 * event's container label (io.berth.agent.task), so a container event wakes
 * the one task it concerns, not all of them. A woken task re-inspects its
 * own containers: events only say "look", the engine's state is the truth.
 * Engine calls and state file writes are made without the runner's lock.
 *
 * Trade-off: a thread per task is simple and a node runs tens of tasks, not
 * thousands; a task's thread spends its life blocked on the condition.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "agent/logship.h"
#include "agent/runner.h"
#include "agent/task.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "engine/engine.h"
#include "host/host.h"
#include "host/netops.h"
#include "image/image.h"
#include "net/net.h"

#define PAUSE_IMAGE    "berth/pause:1"
#define PAUSE_NAME     "internalecspause"
#define MAX_TASK_BYTES (1 << 20)
#define STATE_VERSION  1

struct rtask {
	struct agent_runner *r;
	char *id, *arn;
	json_t *task; /* as received: taskArn, clusterArn, taskDefinition, overrides, desiredStatus */
	json_t
	    *st; /* persisted: {"ids": {name: engine id}, "pause": id, "volumes": [...], "status": {...}} */
	bool want_stop;      /* under r->lock */
	uint64_t seq;        /* under r->lock: bumped by this task's container events */
	pthread_cond_t cond; /* signalled with seq, want_stop and the runner's closing */
	char *stop_code, *stop_reason;
	bool running_thread;
	pthread_t thread;
	struct rtask *next;
};

struct agent_runner {
	struct agent_runner_config cfg;
	struct host *h;
	char *dir, *cgroup_parent, *network, *subnet, *pause_path, *dns_search;
	pthread_mutex_t lock;
	bool closing;
	struct rtask *tasks;
	struct engine_event_reader *events;
	pthread_t events_thread;
	bool events_running;
	pthread_mutex_t create_lock; /* pause image / task network creation */
};

static double epoch_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

/* ---- persistence ---- */

static char *state_path(const struct agent_runner *r, const char *id)
{
	return xasprintf("%s/tasks/%s.json", r->dir, id);
}

/*
 * Persist the task (called without the runner's lock, by the task's own
 * thread: the only writer of its state once it runs). The document is taken
 * under the lock, the file written (and fsync'ed) outside it, so one task's
 * disk write never holds up the others or the event thread.
 */
static void save(struct rtask *t)
{
	pthread_mutex_lock(&t->r->lock);
	_cleanup_json_ json_t *doc =
	    json_pack("{s:i,s:O,s:O}", "version", STATE_VERSION, "task", t->task, "state", t->st);
	_cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
	pthread_mutex_unlock(&t->r->lock);
	_cleanup_free_ char *path = state_path(t->r, t->id);
	_cleanup_error_ struct berth_error *err = NULL;
	if (fs_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
		log_fields(LOG_LEVEL_WARN, "cannot persist task state", "task", t->arn, "error", err->msg,
			   NULL);
}

/* ---- status ---- */

static json_t *status_of(struct rtask *t)
{
	json_t *s = json_object_get(t->st, "status");
	if (!json_is_object(s)) {
		s = json_pack("{s:s,s:s,s:[]}", "taskArn", t->arn, "lastStatus", "PROVISIONING",
			      "containers");
		json_object_set_new(t->st, "status", s);
	}
	return s;
}

/* Send the current status (copied under the lock so readers see a consistent object). */
static void report(struct rtask *t)
{
	struct agent_runner *r = t->r;
	pthread_mutex_lock(&r->lock);
	json_t *copy = json_deep_copy(status_of(t));
	pthread_mutex_unlock(&r->lock);
	save(t);
	if (r->cfg.report)
		r->cfg.report(r->cfg.userdata, copy);
	json_decref(copy);
}

static void set_task_status(struct rtask *t, const char *last, const char *time_key)
{
	pthread_mutex_lock(&t->r->lock);
	json_t *s = status_of(t);
	json_object_set_new(s, "lastStatus", json_string(last));
	if (time_key && !json_object_get(s, time_key))
		json_object_set_new(s, time_key, json_real(epoch_now()));
	pthread_mutex_unlock(&t->r->lock);
}

/* ---- task definition access ---- */

static const json_t *taskdef(const struct rtask *t)
{
	return json_object_get(t->task, "taskDefinition");
}

static const json_t *container_def(const struct rtask *t, const char *name)
{
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(taskdef(t), "containerDefinitions"), i, d)
		if (json_string_value(json_object_get(d, "name")) &&
		    streq(name, json_string_value(json_object_get(d, "name"))))
			return d;
	return NULL;
}

static const json_t *container_override(const struct rtask *t, const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach (json_object_get(json_object_get(t->task, "overrides"), "containerOverrides"), i,
			    o)
		if (json_string_value(json_object_get(o, "name")) &&
		    streq(name, json_string_value(json_object_get(o, "name"))))
			return o;
	return NULL;
}

static const char *network_mode(const struct rtask *t)
{
	const char *m = json_string_value(json_object_get(taskdef(t), "networkMode"));
	return m && *m ? m : "bridge";
}

static char *task_cgroup(const struct rtask *t)
{
	return xasprintf("%s/task-%s", t->r->cgroup_parent, t->id);
}

/* "1024", 1024 or "1 vCPU"/"1 GB" as ECS accepts task cpu/memory: units / MiB, 0 when absent. */
static int64_t task_size(const json_t *v, bool memory)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	const char *s = json_string_value(v);
	if (!s)
		return 0;
	char *end;
	double d = strtod(s, &end);
	if (end == s || d < 0 || d > 1e7)
		return 0;
	while (*end == ' ')
		end++;
	if (!*end)
		return (int64_t)d;
	if (!memory && (streq(end, "vCPU") || streq(end, "vcpu")))
		return (int64_t)(d * 1024);
	if (memory && (streq(end, "GB") || streq(end, "gb")))
		return (int64_t)(d * 1024);
	return 0;
}

static struct agent_task_ctx ctx_of(struct rtask *t)
{
	const json_t *td = taskdef(t);
	struct agent_task_ctx c = {
		.task_arn = t->arn,
		.task_id = t->id,
		.cluster_arn = json_string_value(json_object_get(t->task, "clusterArn")),
		.family = json_string_value(json_object_get(td, "family")),
		.revision = json_integer_value(json_object_get(td, "revision")),
		.network_mode = network_mode(t),
		.pause_id = json_string_value(json_object_get(t->st, "pause")),
		.volumes = json_object_get(t->st, "volumeMap"),
		.container_ids = json_object_get(t->st, "ids"),
	};
	return c;
}

/* ---- engine helpers ---- */

static struct engine *engine_of(struct rtask *t)
{
	return t->r->h->engine;
}

/* Pull per policy; the image must exist locally afterwards. */
static int ensure_image(struct rtask *t, const char *ref, struct berth_error **err)
{
	struct image_store *is = t->r->h->images;
	_cleanup_free_ char *id = NULL;
	bool cached = image_resolve(is, ref, &id, NULL) >= 0;
	enum agent_pull_policy p = t->r->cfg.pull;
	if (cached && (p == AGENT_PULL_ONCE || p == AGENT_PULL_PREFER_CACHED))
		return 0;
	_cleanup_error_ struct berth_error *perr = NULL;
	_cleanup_free_ char *pid = NULL, *user = NULL, *password = NULL, *certs = NULL;
	struct image_auth auth = { 0 };
	struct image_remote_opts o = { 0 };
	int (*creds)(void *, const char *, char **, char **, char **) = t->r->cfg.registry_auth;
	if (creds && creds(t->r->cfg.userdata, ref, &user, &password, &certs) == 0 && user) {
		auth = (struct image_auth){ .username = user, .password = password };
		o = (struct image_remote_opts){ .auth = &auth, .certs_dir = certs };
	}
	int r = image_pull(is, ref, NULL, user ? &o : NULL, &pid, &perr);
	if (r >= 0)
		return 0;
	if (cached && p == AGENT_PULL_DEFAULT) {
		log_fields(LOG_LEVEL_INFO, "pull failed, using the cached image", "image", ref, "error",
			   perr->msg, NULL);
		return 0;
	}
	_cleanup_free_ char *why = berth_error_string(perr);
	return berth_error_msg(err, -r, "CannotPullContainerError: pull image '%s': %s", ref, why);
}

static int ensure_pause_image(struct agent_runner *r, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	if (image_resolve(r->h->images, PAUSE_IMAGE, &id, NULL) >= 0)
		return 0;
	/* an empty root filesystem; the static pause binary is bind-mounted at /pause */
	_cleanup_free_ char *tar = xasprintf("%s/empty.tar", r->dir);
	char zero[1024] = { 0 };
	int rr = fs_write_file_atomic(tar, zero, sizeof(zero), 0600, err);
	if (rr < 0)
		return rr;
	_cleanup_close_ int fd = open(tar, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_error_errno(err, "open '%s'", tar);
	_cleanup_json_ json_t *cfg = json_pack("{s:[s]}", "Cmd", "/pause");
	return image_import(r->h->images, fd, PAUSE_IMAGE, cfg, "berth agent pause image", NULL, err);
}

static int ensure_network(struct agent_runner *r, struct berth_error **err)
{
	if (!r->h->net)
		return berth_error_msg(err, ENOTSUP,
				       "awsvpc needs container networking: the agent runs with "
				       "--bridge none");
	struct net_ctx *nc = host_netops_net(r->h->net);
	struct net_network *n = NULL;
	if (net_network_get(nc, r->network, &n, NULL) >= 0) {
		net_network_free(n);
		return 0;
	}
	const char *labels[] = { "io.berth.agent.network=1", NULL };
	struct net_create_opts o = { .name = r->network, .subnet = r->subnet, .labels = labels };
	int rr = net_network_create(nc, &o, NULL, err);
	return rr == -EEXIST && net_network_get(nc, r->network, &n, NULL) >= 0 ? (net_network_free(n), 0)
									       : rr;
}

/*
 * Service discovery: the task's resolv.conf names the agent's resolver on
 * the task network's gateway, with the containers' dnsSearchDomains (a
 * stack's namespace: `cache` finds `cache.STACK`) and then the cluster's
 * discovery domain searched (containers of the task share the pause
 * container's resolv.conf, so their own DnsSearch would have no effect).
 */
static void task_dns(struct agent_runner *r, const json_t *td, json_t *hc)
{
	struct net_network *n = NULL;
	if (!r->dns_search || net_network_get(host_netops_net(r->h->net), r->network, &n, NULL) < 0)
		return;
	if (n->gateway && *n->gateway) {
		json_t *search = json_array();
		size_t i, k;
		json_t *d, *x;
		json_array_foreach (json_object_get(td, "containerDefinitions"), i, d)
			json_array_foreach (json_object_get(d, "dnsSearchDomains"), k, x)
				if (json_is_string(x) && json_array_size(search) < 5)
					json_array_append(search, x);
		json_array_append_new(search, json_string(r->dns_search));
		json_object_set_new(hc, "Dns", json_pack("[s]", n->gateway));
		json_object_set_new(hc, "DnsSearch", search);
	}
	net_network_free(n);
}

/*
 * A container named like one of the task's that its state does not hold: an
 * agent killed between creating (and, for the namespace owner, starting) it
 * and recording its id left it. Remove it, so the name is free again and no
 * copy runs that nothing will ever stop. Only a container labelled with this
 * task's id is touched.
 */
static void remove_unrecorded(struct rtask *t, const char *container)
{
	struct agent_task_ctx c = ctx_of(t);
	_cleanup_free_ char *name = agent_container_name(&c, container);
	_cleanup_container_info_ struct engine_container_info *i = NULL;
	if (engine_container_inspect(engine_of(t), name, &i, NULL) < 0)
		return;
	const char *owner =
	    json_string_value(json_object_get(json_object_get(i->config, "Labels"), AGENT_LABEL_MANAGED));
	if (!streq_ptr(owner, t->id))
		return;
	log_fields(LOG_LEVEL_INFO, "removing a container the task never recorded", "task", t->arn,
		   "container", name, NULL);
	engine_container_remove(engine_of(t), i->id, true, false, NULL);
}

static int create_pause(struct rtask *t, const char *cgroup, struct berth_error **err)
{
	struct agent_runner *r = t->r;
	pthread_mutex_lock(&r->create_lock);
	int rr = ensure_pause_image(r, err);
	if (rr >= 0)
		rr = ensure_network(r, err);
	pthread_mutex_unlock(&r->create_lock);
	if (rr < 0)
		return rr;
	struct agent_task_ctx c = ctx_of(t);
	_cleanup_free_ char *name = agent_container_name(&c, PAUSE_NAME);
	remove_unrecorded(t, PAUSE_NAME);
	_cleanup_json_ json_t *cfg =
	    json_pack("{s:s,s:[s],s:{s:s,s:s,s:s}}", "Image", PAUSE_IMAGE, "Cmd", "/pause", "Labels",
		      AGENT_LABEL_MANAGED, t->id, AGENT_LABEL_PAUSE, "1", AGENT_LABEL_TASK_ARN, t->arn);
	_cleanup_json_ json_t *hc = json_pack(
	    "{s:s,s:[{s:s,s:s,s:s,s:b}],s:{s:s}}", "NetworkMode", r->network, "Mounts", "Type", "bind",
	    "Source", r->pause_path, "Target", "/pause", "ReadOnly", 1, "RestartPolicy", "Name", "no");
	if (cgroup)
		json_object_set_new(hc, "CgroupParent", json_string(cgroup));
	task_dns(r, taskdef(t), hc);
	_cleanup_free_ char *id = NULL;
	if ((rr = host_container_create(r->h, name, cfg, hc, NULL, &id, err)) < 0 ||
	    (rr = engine_container_start(r->h->engine, id, err)) < 0) {
		if (id)
			engine_container_remove(r->h->engine, id, true, false, NULL);
		return berth_error_wrap(err, rr, "task network namespace");
	}
	pthread_mutex_lock(&r->lock);
	json_object_set_new(t->st, "pause", json_string(id));
	pthread_mutex_unlock(&r->lock);
	save(t);
	return 0;
}

/* Task volumes: host paths bind, docker volumes (task scope per task, shared by name), scratch per task. */
static int prepare_volumes(struct rtask *t, struct berth_error **err)
{
	json_t *map = json_object(), *owned = json_array();
	json_t *vols = json_object_get(taskdef(t), "volumes");
	size_t i;
	json_t *v;
	int rr = 0;
	json_array_foreach (vols, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));
		if (!name || !*name) {
			rr = berth_error_msg(err, EINVAL, "volumes[%zu]: name required", i);
			break;
		}
		const char *src =
		    json_string_value(json_object_get(json_object_get(v, "host"), "sourcePath"));
		json_t *dvc = json_object_get(v, "dockerVolumeConfiguration");
		const char *scope = json_string_value(json_object_get(dvc, "scope"));
		if (src && *src) {
			if (src[0] != '/') {
				rr = berth_error_msg(
				    err, EINVAL, "volumes[%s].host.sourcePath: absolute path required", name);
				break;
			}
			json_object_set_new(map, name, json_pack("{s:s}", "Bind", src));
			continue;
		}
		bool shared = dvc && scope && streq(scope, "shared");
		_cleanup_free_ char *vname = shared ? xstrdup(name) : xasprintf("ecs-%s-%.20s", name, t->id);
		_cleanup_json_ json_t *out = NULL;
		json_t *labels = json_pack("{s:s}", AGENT_LABEL_MANAGED, t->id);
		rr = engine_volume_create_opts(engine_of(t), vname, labels,
					       json_object_get(dvc, "driverOpts"), &out, err);
		json_decref(labels);
		if (rr < 0)
			break;
		json_object_set_new(map, name, json_pack("{s:s}", "Volume", vname));
		if (!shared)
			json_array_append_new(owned, json_string(vname));
	}
	pthread_mutex_lock(&t->r->lock);
	json_object_set_new(t->st, "volumeMap", map);
	json_object_set_new(t->st, "volumes", owned);
	pthread_mutex_unlock(&t->r->lock);
	return rr; /* persisted by the report that follows (start_task) or the stop's */
}

/* ---- container state ---- */

enum cstate { C_NONE, C_CREATED, C_RUNNING, C_EXITED };

struct cinfo {
	enum cstate state;
	int exit_code;
	bool started; /* ran at least once */
	char health[16];
};

static void inspect(struct rtask *t, const char *name, struct cinfo *ci)
{
	memset(ci, 0, sizeof(*ci));
	pthread_mutex_lock(&t->r->lock);
	const char *id = json_string_value(json_object_get(json_object_get(t->st, "ids"), name));
	_cleanup_free_ char *cid = id ? xstrdup(id) : NULL;
	pthread_mutex_unlock(&t->r->lock);
	_cleanup_container_info_ struct engine_container_info *i = NULL;
	if (!cid || engine_container_inspect(engine_of(t), cid, &i, NULL) < 0) {
		ci->state = cid ? C_EXITED : C_NONE;
		ci->exit_code = cid ? 137 : 0;
		ci->started = cid != NULL;
		return;
	}
	ci->state = i->state == ENGINE_RUNNING || i->state == ENGINE_PAUSED ? C_RUNNING
		    : i->state == ENGINE_CREATED                            ? C_CREATED
									    : C_EXITED;
	ci->started = ci->state != C_CREATED;
	ci->exit_code = i->exit_code;
	snprintf(ci->health, sizeof(ci->health), "%s", i->health ? i->health : "");
}

/* 1 satisfied, 0 not yet, -1 never (the task cannot start). */
static int dep_state(struct rtask *t, const char *on, const char *cond)
{
	struct cinfo ci;
	inspect(t, on, &ci);
	if (ci.state == C_NONE || ci.state == C_CREATED)
		return 0;
	if (streq(cond, "START"))
		return 1;
	if (streq(cond, "HEALTHY")) {
		if (streq(ci.health, "healthy"))
			return 1;
		return ci.state == C_EXITED ? -1 : 0;
	}
	if (ci.state != C_EXITED)
		return 0;
	return streq(cond, "COMPLETE") || ci.exit_code == 0 ? 1 : -1;
}

/* Docker's NetworkSettings of a container (new reference; an empty object when it is gone). */
static json_t *network_settings(struct rtask *t, const char *id)
{
	_cleanup_container_info_ struct engine_container_info *i = NULL;
	if (!id || engine_container_inspect(engine_of(t), id, &i, NULL) < 0)
		return json_object();
	_cleanup_json_ json_t *j = host_container_json(t->r->h, i, json_object());
	json_t *ns = json_object_get(j, "NetworkSettings");
	return json_is_object(ns) ? json_incref(ns) : json_object();
}

/* ECS networkBindings from Docker's Ports ({"80/tcp": [{"HostIp", "HostPort"}]}). */
static json_t *bindings_of(const json_t *ns)
{
	json_t *out = json_array();
	const char *k;
	json_t *v;
	json_object_foreach (json_object_get(ns, "Ports"), k, v) {
		unsigned cport = 0;
		char proto[8] = "tcp";
		if (sscanf(k, "%u/%7s", &cport, proto) < 1)
			continue;
		size_t i;
		json_t *b;
		json_array_foreach (v, i, b) {
			const char *hp = json_string_value(json_object_get(b, "HostPort"));
			const char *ip = json_string_value(json_object_get(b, "HostIp"));
			if (hp && *hp)
				json_array_append_new(out, json_pack("{s:s,s:i,s:i,s:s}", "bindIP",
								     ip && *ip ? ip : "0.0.0.0",
								     "containerPort", (int)cport, "hostPort",
								     atoi(hp), "protocol", proto));
		}
	}
	return out;
}

/* The id of the task's awsvpc attachment: the task id as a UUID. ECS gives the same in the task's
 * attachments[].id and in each container's networkInterfaces[].attachmentId. */
static char *attachment_id(const struct rtask *t)
{
	return xasprintf("%.8s-%.4s-%.4s-%.4s-%.12s", t->id, t->id + 8, t->id + 12, t->id + 16, t->id + 20);
}

/* The awsvpc attachment as ECS reports it: an ElasticNetworkInterface with the task's address. */
static json_t *attachment_of(const struct rtask *t, const char *ip, const char *mac)
{
	_cleanup_free_ char *uuid = attachment_id(t);
	_cleanup_free_ char *eni = xasprintf("eni-%.17s", t->id);
	_cleanup_free_ char *dns = xasprintf("ip-%s", ip);
	for (char *c = dns; *c; c++)
		if (*c == '.')
			*c = '-';
	return json_pack("[{s:s,s:s,s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]}]", "id", uuid,
			 "type", "ElasticNetworkInterface", "status", "ATTACHED", "details", "name",
			 "subnetId", "value", t->r->network, "name", "networkInterfaceId", "value", eni,
			 "name", "macAddress", "value", mac ? mac : "", "name", "privateDnsName", "value",
			 dns, "name", "privateIPv4Address", "value", ip);
}

/*
 * What the network layer says of a container, asked once and kept in the
 * task's state under key[name]: the awsvpc address of the pause container,
 * a bridge container's port bindings. They do not change while it runs, and
 * asking takes the network layer's lock, which every CNI call of every other
 * task holds while its plugins run: a task of a 10-task burst waited for the
 * others' networking before it could report RUNNING. A borrowed reference.
 */
static json_t *net_cached(struct rtask *t, const char *key, const char *name, const char *id, bool awsvpc)
{
	pthread_mutex_lock(&t->r->lock);
	json_t *have = json_object_get(json_object_get(t->st, key), name);
	pthread_mutex_unlock(&t->r->lock);
	if (have) /* only the task's own thread sets it: stays valid without the lock */
		return have;
	_cleanup_json_ json_t *ns = network_settings(t, id);
	json_t *v;
	if (awsvpc) {
		json_t *net = json_object_get(json_object_get(ns, "Networks"), t->r->network);
		const char *ip = json_string_value(json_object_get(net, "IPAddress"));
		const char *mac = json_string_value(json_object_get(net, "MacAddress"));
		if (!ip || !*ip)
			return NULL; /* not attached (yet): ask again next time */
		v = json_pack("{s:s,s:s}", "ip", ip, "mac", mac ? mac : "");
	} else {
		v = bindings_of(ns);
	}
	pthread_mutex_lock(&t->r->lock);
	json_t *map = json_object_get(t->st, key);
	if (!map)
		json_object_set_new(t->st, key, map = json_object());
	json_object_set_new(map, name, v);
	pthread_mutex_unlock(&t->r->lock);
	return v;
}

/* Refresh containers[], the task's address and health in the status from the engine. */
static void refresh(struct rtask *t)
{
	_cleanup_json_ json_t *order = NULL;
	if (agent_task_order(json_object_get(taskdef(t), "containerDefinitions"), &order, NULL) < 0)
		return;
	json_t *list = json_array();
	size_t i;
	json_t *n;
	const char *pause = json_string_value(json_object_get(t->st, "pause"));
	json_t *addr = pause ? net_cached(t, "netCache", PAUSE_NAME, pause, true) : NULL;
	const char *ip = json_string_value(json_object_get(addr, "ip"));
	const char *mac = json_string_value(json_object_get(addr, "mac"));
	int healthy = 0, unhealthy = 0, checked = 0;
	json_array_foreach (order, i, n) {
		const char *name = json_string_value(n);
		struct cinfo ci;
		inspect(t, name, &ci);
		const char *last = ci.state == C_RUNNING  ? "RUNNING"
				   : ci.state == C_EXITED ? "STOPPED"
							  : "PENDING";
		const char *health = streq(ci.health, "healthy")     ? "HEALTHY"
				     : streq(ci.health, "unhealthy") ? "UNHEALTHY"
								     : "UNKNOWN";
		json_t *c =
		    json_pack("{s:s,s:s,s:s}", "name", name, "lastStatus", last, "healthStatus", health);
		const json_t *def = container_def(t, name);
		if (agent_container_essential(def) && json_object_get(def, "healthCheck")) {
			checked++;
			healthy += streq(health, "HEALTHY");
			unhealthy += streq(health, "UNHEALTHY");
		}
		pthread_mutex_lock(&t->r->lock);
		const char *id0 = json_string_value(json_object_get(json_object_get(t->st, "ids"), name));
		_cleanup_free_ char *id = id0 ? xstrdup(id0) : NULL;
		pthread_mutex_unlock(&t->r->lock);
		if (id)
			json_object_set_new(c, "runtimeId", json_string(id));
		if (ci.state == C_EXITED)
			json_object_set_new(c, "exitCode", json_integer(ci.exit_code));
		if (ip) {
			_cleanup_free_ char *att = attachment_id(t);
			json_object_set_new(
			    c, "networkInterfaces",
			    json_pack("[{s:s,s:s}]", "attachmentId", att, "privateIpv4Address", ip));
		} else if (ci.state == C_RUNNING && streq(network_mode(t), "bridge"))
			json_object_set(c, "networkBindings",
					net_cached(t, "bindingsCache", name, id, false));
		json_array_append_new(list, c);
	}
	pthread_mutex_lock(&t->r->lock);
	json_t *s = status_of(t);
	json_object_set_new(s, "containers", list);
	if (ip) {
		json_object_set_new(s, "privateIpv4Address", json_string(ip));
		json_object_set_new(s, "attachments", attachment_of(t, ip, mac));
	}
	json_object_set_new(s, "healthStatus",
			    json_string(unhealthy                       ? "UNHEALTHY"
					: checked && healthy == checked ? "HEALTHY"
									: "UNKNOWN"));
	pthread_mutex_unlock(&t->r->lock);
}

/* Wait for an event (or timeout_ms, < 0: none). Returns false when the runner closes. */
static bool wait_event(struct rtask *t, uint64_t *seen, int timeout_ms)
{
	struct agent_runner *r = t->r;
	pthread_mutex_lock(&r->lock);
	if (t->seq == *seen && !t->want_stop && !r->closing) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&t->cond, &r->lock);
		} else {
			struct timespec ts = proc_deadline(CLOCK_MONOTONIC, timeout_ms);
			pthread_cond_timedwait(&t->cond, &r->lock, &ts);
		}
	}
	*seen = t->seq;
	bool ok = !r->closing;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static bool stopping(struct rtask *t)
{
	pthread_mutex_lock(&t->r->lock);
	bool s = t->want_stop;
	pthread_mutex_unlock(&t->r->lock);
	return s;
}

static void request_stop(struct rtask *t, const char *code, const char *reason)
{
	pthread_mutex_lock(&t->r->lock);
	if (!t->want_stop) {
		t->want_stop = true;
		free(t->stop_code), free(t->stop_reason);
		t->stop_code = xstrdup(code);
		t->stop_reason = xstrdup(reason);
	}
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->r->lock);
}

/* ---- lifecycle ---- */

static int create_container(struct rtask *t, const char *name, const char *cgroup, struct berth_error **err)
{
	struct agent_task_ctx c = ctx_of(t);
	c.cgroup_parent = cgroup;
	_cleanup_json_ json_t *cfg = NULL, *hc = NULL;
	int rr =
	    agent_container_spec(&c, container_def(t, name), container_override(t, name), &cfg, &hc, err);
	if (rr < 0)
		return rr;
	if ((rr = ensure_image(t, json_string_value(json_object_get(cfg, "Image")), err)) < 0)
		return rr;
	_cleanup_free_ char *cname = agent_container_name(&c, name);
	remove_unrecorded(t, name);
	_cleanup_free_ char *id = NULL;
	if ((rr = host_container_create(t->r->h, cname, cfg, hc, NULL, &id, err)) < 0)
		return berth_error_wrap(err, rr, "CannotCreateContainerError: container '%s'", name);
	pthread_mutex_lock(&t->r->lock);
	json_t *ids = json_object_get(t->st, "ids");
	if (!ids)
		json_object_set_new(t->st, "ids", ids = json_object());
	json_object_set_new(ids, name, json_string(id));
	pthread_mutex_unlock(&t->r->lock);
	save(t);
	return 0;
}

/* Wait until every dependsOn condition of `name` holds. */
static int wait_deps(struct rtask *t, const char *name, uint64_t *seen, struct berth_error **err)
{
	const json_t *deps = json_object_get(container_def(t, name), "dependsOn");
	for (;;) {
		bool all = true;
		size_t i;
		json_t *d;
		json_array_foreach (deps, i, d) {
			const char *on = json_string_value(json_object_get(d, "containerName"));
			const char *cond = json_string_value(json_object_get(d, "condition"));
			int s = dep_state(t, on, cond);
			if (s < 0)
				return berth_error_msg(
				    err, ENOEXEC, "dependency condition %s of '%s' on '%s' cannot be met",
				    cond, name, on);
			all &= s > 0;
		}
		if (all)
			return 0;
		if (stopping(t))
			return -ECANCELED;
		if (!wait_event(t, seen, 1000))
			return -ESHUTDOWN;
	}
}

/* Pull, cgroup, volumes, namespace owner, then the containers in order. */
/*
 * secrets (SSM parameters, Secrets Manager): berth has no store to read them from. ECS fails a task
 * whose secrets it cannot retrieve (ResourceInitializationError) rather than run it without them;
 * so does the agent, instead of starting a container that lacks the variable.
 */
static int check_secrets(const json_t *td, struct berth_error **err)
{
	size_t i, k;
	const json_t *cd, *sec;
	json_array_foreach (json_object_get(td, "containerDefinitions"), i, cd)
		json_array_foreach (json_object_get(cd, "secrets"), k, sec)
			return berth_error_msg(
			    err, ENOTSUP,
			    "ResourceInitializationError: unable to pull secrets: container '%s' secret '%s' "
			    "(valueFrom '%s'): berth has no secrets store; pass the value in 'environment'",
			    json_string_value(json_object_get(cd, "name")),
			    json_string_value(json_object_get(sec, "name")),
			    json_string_value(json_object_get(sec, "valueFrom")));
	return 0;
}

static int start_task(struct rtask *t, uint64_t *seen, struct berth_error **err)
{
	const json_t *td = taskdef(t);
	_cleanup_json_ json_t *order = NULL;
	if (check_secrets(td, err) < 0)
		return -ENOTSUP;
	int rr = agent_task_order(json_object_get(td, "containerDefinitions"), &order, err);
	if (rr < 0)
		return rr;
	int64_t cpu = task_size(json_object_get(td, "cpu"), false);
	int64_t mem = task_size(json_object_get(td, "memory"), true);
	_cleanup_free_ char *cg = task_cgroup(t);
	if ((rr = host_cgroup_create(cg, cpu, mem * 1024 * 1024, err)) < 0)
		return rr;
	if (!json_object_get(t->st, "volumeMap") && (rr = prepare_volumes(t, err)) < 0)
		return rr;
	set_task_status(t, "PENDING", "pullStartedAt");
	report(t);
	/* a stop (e.g. of a copy resumed after the server stopped it) ends the start between steps */
	if (stopping(t))
		return -ECANCELED;
	if (streq(network_mode(t), "awsvpc") && !json_object_get(t->st, "pause") &&
	    (rr = create_pause(t, cg, err)) < 0)
		return rr;
	size_t i;
	json_t *n;
	json_array_foreach (order, i, n) {
		const char *name = json_string_value(n);
		struct cinfo ci;
		if (stopping(t))
			return -ECANCELED;
		inspect(t, name, &ci);
		if (ci.state == C_NONE && (rr = create_container(t, name, cg, err)) < 0)
			return rr;
	}
	set_task_status(t, "PENDING", "pullStoppedAt");
	json_array_foreach (order, i, n) {
		const char *name = json_string_value(n);
		if ((rr = wait_deps(t, name, seen, err)) < 0)
			return rr;
		if (stopping(t))
			return -ECANCELED;
		struct cinfo ci;
		inspect(t, name, &ci);
		if (ci.state != C_CREATED)
			continue;
		const char *id = json_string_value(json_object_get(json_object_get(t->st, "ids"), name));
		if ((rr = engine_container_start(engine_of(t), id, err)) < 0)
			return berth_error_wrap(err, rr, "start container '%s'", name);
		if (i + 1 < json_array_size(order)) { /* after the last one, monitor() reports RUNNING */
			refresh(t);
			report(t);
		}
	}
	return 0;
}

/* awslogs: hand each container's log to the shipper (seal: the container is about to be removed). */
static void ship_logs(struct rtask *t, bool seal)
{
	struct logship *ls = t->r->cfg.logs;
	if (!ls)
		return;
	size_t i;
	json_t *d;
	json_array_foreach (json_object_get(taskdef(t), "containerDefinitions"), i, d) {
		const char *name = json_string_value(json_object_get(d, "name"));
		pthread_mutex_lock(&t->r->lock);
		const char *id = json_string_value(json_object_get(json_object_get(t->st, "ids"), name));
		_cleanup_free_ char *cid = id ? xstrdup(id) : NULL;
		pthread_mutex_unlock(&t->r->lock);
		_cleanup_container_info_ struct engine_container_info *ci = NULL;
		if (!cid || engine_container_inspect(engine_of(t), cid, &ci, NULL) < 0 || !ci->log_path)
			continue;
		_cleanup_error_ struct berth_error *err = NULL;
		int r = seal ? agent_logship_seal(ls, t->id, d, cid, ci->log_path, &err)
			     : agent_logship_watch(ls, t->id, d, cid, ci->log_path, &err);
		if (r < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			log_fields(LOG_LEVEL_WARN, "awslogs: cannot ship the container's log", "task", t->arn,
				   "container", name, "error", m, NULL);
		}
	}
}

/* RUNNING until asked to stop or an essential container exits. */
static void monitor(struct rtask *t, uint64_t *seen)
{
	ship_logs(t, false);
	set_task_status(t, "RUNNING", "startedAt");
	refresh(t);
	report(t);
	_cleanup_free_ char *last = NULL;
	for (;;) {
		if (stopping(t))
			return;
		size_t i;
		json_t *d;
		json_array_foreach (json_object_get(taskdef(t), "containerDefinitions"), i, d) {
			struct cinfo ci;
			inspect(t, json_string_value(json_object_get(d, "name")), &ci);
			if (ci.state == C_EXITED && agent_container_essential(d)) {
				request_stop(t, "EssentialContainerExited",
					     "Essential container in task exited");
				return;
			}
		}
		refresh(t);
		pthread_mutex_lock(&t->r->lock);
		char *now =
		    json_dumps(json_object_get(status_of(t), "containers"), JSON_COMPACT | JSON_SORT_KEYS);
		pthread_mutex_unlock(&t->r->lock);
		if (!last || !streq(now, last))
			report(t);
		free(last);
		last = now;
		if (!wait_event(t, seen, -1))
			return;
	}
}

/* Stop in reverse start order with each container's stopTimeout, then the namespace owner. */
static void stop_task(struct rtask *t)
{
	set_task_status(t, "DEACTIVATING", NULL);
	pthread_mutex_lock(&t->r->lock);
	json_t *s = status_of(t);
	json_object_set_new(s, "desiredStatus", json_string("STOPPED"));
	json_object_set_new(s, "stoppingAt", json_real(epoch_now()));
	if (t->stop_code)
		json_object_set_new(s, "stopCode", json_string(t->stop_code));
	if (t->stop_reason)
		json_object_set_new(s, "stoppedReason", json_string(t->stop_reason));
	pthread_mutex_unlock(&t->r->lock);
	report(t);
	_cleanup_json_ json_t *order = NULL;
	if (agent_task_order(json_object_get(taskdef(t), "containerDefinitions"), &order, NULL) >= 0)
		for (size_t i = json_array_size(order); i-- > 0;) {
			const char *name = json_string_value(json_array_get(order, i));
			const json_t *d = container_def(t, name);
			json_t *st = json_object_get(d, "stopTimeout");
			int timeout = json_is_integer(st) ? (int)json_integer_value(st) : 30;
			pthread_mutex_lock(&t->r->lock);
			const char *id =
			    json_string_value(json_object_get(json_object_get(t->st, "ids"), name));
			_cleanup_free_ char *cid = id ? xstrdup(id) : NULL;
			pthread_mutex_unlock(&t->r->lock);
			if (cid)
				engine_container_stop(engine_of(t), cid, timeout, NULL);
		}
	refresh(t);
	const char *pause = json_string_value(json_object_get(t->st, "pause"));
	if (pause)
		engine_container_stop(engine_of(t), pause, 2, NULL);
	pthread_mutex_lock(&t->r->lock);
	s = status_of(t);
	json_object_set_new(s, "executionStoppedAt", json_real(epoch_now()));
	json_object_set_new(s, "stoppedAt", json_real(epoch_now()));
	json_object_set_new(s, "lastStatus", json_string("STOPPED"));
	pthread_mutex_unlock(&t->r->lock);
	report(t);
}

/* Remove containers, task volumes and the task cgroup (after STOPPED was reported). */
static void cleanup_task(struct rtask *t)
{
	pthread_mutex_lock(&t->r->lock);
	_cleanup_json_ json_t *ids = json_deep_copy(json_object_get(t->st, "ids"));
	_cleanup_json_ json_t *vols = json_deep_copy(json_object_get(t->st, "volumes"));
	const char *p = json_string_value(json_object_get(t->st, "pause"));
	_cleanup_free_ char *pause = p ? xstrdup(p) : NULL;
	pthread_mutex_unlock(&t->r->lock);
	const char *k;
	json_t *v;
	ship_logs(t, true);
	json_object_foreach (ids, k, v)
		engine_container_remove(engine_of(t), json_string_value(v), true, false, NULL);
	if (pause)
		engine_container_remove(engine_of(t), pause, true, false, NULL);
	/* and what an agent killed in the middle of the start created without recording it */
	size_t i;
	json_array_foreach (json_object_get(taskdef(t), "containerDefinitions"), i, v)
		remove_unrecorded(t, json_string_value(json_object_get(v, "name")));
	remove_unrecorded(t, PAUSE_NAME);
	json_array_foreach (vols, i, v)
		engine_volume_remove(engine_of(t), json_string_value(v), true, NULL);
	_cleanup_free_ char *cg = task_cgroup(t);
	host_cgroup_remove(cg, NULL);
}

static void *task_main(void *arg)
{
	struct rtask *t = arg;
	uint64_t seen = 0;
	pthread_mutex_lock(&t->r->lock);
	seen = t->seq;
	const char *last = json_string_value(json_object_get(status_of(t), "lastStatus"));
	bool was_running = last && streq(last, "RUNNING");
	pthread_mutex_unlock(&t->r->lock);
	_cleanup_error_ struct berth_error *err = NULL;
	int rr = was_running ? 0 : start_task(t, &seen, &err);
	if (rr == -ESHUTDOWN)
		return NULL;
	if (rr < 0 && rr != -ECANCELED) {
		_cleanup_free_ char *why = err ? berth_error_string(err) : xstrdup("task failed to start");
		log_fields(LOG_LEVEL_WARN, "task failed to start", "task", t->arn, "error", why, NULL);
		request_stop(t, "TaskFailedToStart", why);
	}
	if (!stopping(t))
		monitor(t, &seen);
	pthread_mutex_lock(&t->r->lock);
	bool closing = t->r->closing;
	pthread_mutex_unlock(&t->r->lock);
	if (closing)
		return NULL; /* the agent is going away: containers keep running */
	stop_task(t);
	cleanup_task(t);
	return NULL;
}

/* ---- the event stream: wake the task a container event concerns ---- */

static void *events_main(void *arg)
{
	struct agent_runner *r = arg;
	for (;;) {
		json_t *ev = NULL;
		if (engine_events_next(r->events, &ev, NULL) < 0 || !ev)
			break;
		/* the agent labels every container of a task (and its pause container) with the task id;
		 * events of other containers (docker run on the node's socket), volumes and images concern
		 * no task */
		const char *id = json_string_value(json_object_get(
		    json_object_get(json_object_get(ev, "Actor"), "Attributes"), AGENT_LABEL_MANAGED));
		pthread_mutex_lock(&r->lock);
		for (struct rtask *t = r->tasks; id && t; t = t->next)
			if (streq(t->id, id)) {
				t->seq++;
				pthread_cond_broadcast(&t->cond);
			}
		pthread_mutex_unlock(&r->lock);
		json_decref(ev);
	}
	return NULL;
}

/* ---- the set ---- */

static struct rtask *find_locked(struct agent_runner *r, const char *arn)
{
	for (struct rtask *t = r->tasks; t; t = t->next)
		if (streq(t->arn, arn))
			return t;
	return NULL;
}

static void rtask_free(struct rtask *t)
{
	free(t->id);
	free(t->arn);
	json_decref(t->task);
	json_decref(t->st);
	free(t->stop_code);
	free(t->stop_reason);
	pthread_cond_destroy(&t->cond);
	free(t);
}

/* A task (not yet in the set); takes id, task and st. */
static struct rtask *rtask_new(struct agent_runner *r, char *id, const char *arn, json_t *task, json_t *st)
{
	struct rtask *t = xcalloc(1, sizeof(*t));
	t->r = r;
	t->id = id;
	t->arn = xstrdup(arn);
	t->task = task;
	t->st = st;
	proc_cond_init_monotonic(&t->cond);
	return t;
}

/* The task id: the ARN's last path component, 32 hex (as ECS). */
static int task_id_of(const char *arn, char **ret, struct berth_error **err)
{
	const char *slash = arn ? strrchr(arn, '/') : NULL;
	const char *id = slash ? slash + 1 : NULL;
	if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
		return berth_error_msg(err, EINVAL, "taskArn '%s': expected .../task/CLUSTER/<32 hex>",
				       arn ? arn : "");
	*ret = xstrdup(id);
	return 0;
}

static int validate_task(const json_t *task, struct berth_error **err)
{
	const json_t *td = json_object_get(task, "taskDefinition");
	if (!json_is_object(td) || !json_is_string(json_object_get(td, "family")) ||
	    !json_is_integer(json_object_get(td, "revision")) ||
	    !json_is_string(json_object_get(task, "clusterArn")))
		return berth_error_msg(err, EINVAL,
				       "task: taskDefinition (family, revision) and clusterArn required");
	_cleanup_json_ json_t *order = NULL;
	int rr = agent_task_order(json_object_get(td, "containerDefinitions"), &order, err);
	if (rr < 0)
		return rr;
	const char *mode = json_string_value(json_object_get(td, "networkMode"));
	if (mode && !streq(mode, "awsvpc") && !streq(mode, "bridge") && !streq(mode, "host") &&
	    !streq(mode, "none"))
		return berth_error_msg(err, EINVAL, "networkMode: unknown mode '%s'", mode);
	/* every container translates (names, types, mounts against the task's volumes) */
	json_t *vmap = json_object();
	size_t i;
	json_t *v;
	json_array_foreach (json_object_get(td, "volumes"), i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		if (n)
			json_object_set_new(vmap, n, json_pack("{s:s}", "Volume", n));
	}
	json_t *ids = json_object();
	struct agent_task_ctx c = { .task_arn = "x",
				    .task_id = "0",
				    .cluster_arn = "x",
				    .family = json_string_value(json_object_get(td, "family")),
				    .revision = 1,
				    .network_mode = mode,
				    .pause_id = "p",
				    .volumes = vmap,
				    .container_ids = ids };
	json_t *n;
	json_array_foreach (order, i, n) {
		const json_t *d = NULL;
		size_t k;
		json_t *x;
		json_array_foreach (json_object_get(td, "containerDefinitions"), k, x)
			if (streq(json_string_value(json_object_get(x, "name")), json_string_value(n)))
				d = x;
		json_t *cfg = NULL, *hc = NULL;
		if ((rr = agent_container_spec(&c, d, NULL, &cfg, &hc, err)) < 0)
			break;
		json_decref(cfg), json_decref(hc);
		json_object_set_new(ids, json_string_value(n), json_string("x"));
	}
	json_decref(vmap);
	json_decref(ids);
	return rr;
}

static int spawn(struct rtask *t, struct berth_error **err)
{
	int rr = pthread_create(&t->thread, NULL, task_main, t);
	if (rr != 0)
		return berth_error_set(err, rr, "start task thread");
	t->running_thread = true;
	return 0;
}

int agent_runner_apply(struct agent_runner *r, const json_t *task, struct berth_error **err)
{
	const char *arn = json_string_value(json_object_get(task, "taskArn"));
	const char *desired = json_string_value(json_object_get(task, "desiredStatus"));
	_cleanup_free_ char *id = NULL;
	int rr = task_id_of(arn, &id, err);
	if (rr < 0)
		return rr;
	pthread_mutex_lock(&r->lock);
	struct rtask *t = find_locked(r, arn);
	if (t) {
		if (desired && streq(desired, "STOPPED") && !t->want_stop) {
			const char *code = json_string_value(json_object_get(task, "stopCode"));
			const char *why = json_string_value(json_object_get(task, "stoppedReason"));
			t->want_stop = true;
			t->stop_code = xstrdup(code ? code : "UserInitiated");
			t->stop_reason = xstrdup(why ? why : "Task stopped by user");
			pthread_cond_broadcast(&t->cond);
		}
		pthread_mutex_unlock(&r->lock);
		return 0;
	}
	pthread_mutex_unlock(&r->lock);
	if (desired && streq(desired, "STOPPED"))
		return 0;
	if ((rr = validate_task(task, err)) < 0)
		return rr;
	t = rtask_new(r, TAKE_PTR(id), arn, json_deep_copy(task), json_object());
	pthread_mutex_lock(&r->lock);
	if (find_locked(r, arn) || r->closing) {
		pthread_mutex_unlock(&r->lock);
		rtask_free(t);
		return 0;
	}
	t->next = r->tasks;
	r->tasks = t;
	status_of(t); /* persisted by the thread's first report (PENDING), a moment later */
	rr = spawn(t, err);
	pthread_mutex_unlock(&r->lock);
	return rr;
}

json_t *agent_runner_status(struct agent_runner *r)
{
	json_t *a = json_array();
	pthread_mutex_lock(&r->lock);
	for (struct rtask *t = r->tasks; t; t = t->next)
		json_array_append_new(a, json_deep_copy(status_of(t)));
	pthread_mutex_unlock(&r->lock);
	return a;
}

/* The host pid of a running container, or 0. */
static pid_t container_pid(struct engine *e, const char *id)
{
	_cleanup_container_info_ struct engine_container_info *info = NULL;
	if (!id || engine_container_inspect(e, id, &info, NULL) < 0 || info->state != ENGINE_RUNNING)
		return 0;
	return info->pid;
}

json_t *agent_runner_metrics_targets(struct agent_runner *r)
{
	json_t *out = json_array();
	pthread_mutex_lock(&r->lock);
	for (struct rtask *t = r->tasks; t; t = t->next) {
		const char *last = json_string_value(json_object_get(status_of(t), "lastStatus"));
		if (!last || !streq(last, "RUNNING"))
			continue;
		_cleanup_free_ char *cg = task_cgroup(t);
		json_t *ids = json_array(), *v;
		const char *k;
		const char *mode = network_mode(t),
			   *pause = json_string_value(json_object_get(t->st, "pause"));
		if (pause)
			json_array_append_new(ids, json_string(pause));
		else if (streq(mode, "bridge"))
			json_object_foreach (json_object_get(t->st, "ids"), k, v)
				json_array_append(ids, v);
		/* labels: cluster name, service (group service:NAME), family, reservations */
		const char *carn = json_string_value(json_object_get(t->task, "clusterArn"));
		const char *cslash = carn ? strrchr(carn, '/') : NULL;
		const char *group = json_string_value(json_object_get(t->task, "group"));
		const char *service = group && startswith(group, "service:") ? group + 8 : "";
		json_array_append_new(
		    out,
		    json_pack("{s:s,s:s,s:o,s:s,s:s,s:s?,s:I,s:I}", "taskArn", t->arn, "cgroup", cg, "netIds",
			      ids, "cluster", cslash ? cslash + 1 : "default", "service", service, "family",
			      json_string_value(json_object_get(taskdef(t), "family")), "cpu",
			      (json_int_t)task_size(json_object_get(t->task, "cpu"), false), "memory",
			      (json_int_t)task_size(json_object_get(t->task, "memory"), true)));
	}
	pthread_mutex_unlock(&r->lock);
	/* inspections outside the runner's lock: the engine has its own */
	size_t i;
	json_t *t;
	json_array_foreach (out, i, t) {
		json_t *pids = json_array(), *id;
		size_t j;
		json_array_foreach (json_object_get(t, "netIds"), j, id) {
			pid_t pid = container_pid(r->h->engine, json_string_value(id));
			if (pid > 0)
				json_array_append_new(pids, json_integer(pid));
		}
		json_object_del(t, "netIds");
		json_object_set_new(t, "netPids", pids);
	}
	return out;
}

void agent_runner_forget(struct agent_runner *r, const char *task_arn)
{
	pthread_mutex_lock(&r->lock);
	struct rtask **pp = &r->tasks, *t = NULL;
	for (; *pp; pp = &(*pp)->next)
		if (streq((*pp)->arn, task_arn)) {
			const char *last = json_string_value(json_object_get(status_of(*pp), "lastStatus"));
			if (!last || !streq(last, "STOPPED"))
				break;
			t = *pp;
			*pp = t->next;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	if (!t)
		return;
	if (t->running_thread)
		pthread_join(t->thread, NULL);
	_cleanup_free_ char *path = state_path(r, t->id);
	(void)unlink(path);
	rtask_free(t);
}

/* Reload tasks/<id>.json; resume the ones not STOPPED. */
static void load_tasks(struct agent_runner *r)
{
	_cleanup_free_ char *dir = xasprintf("%s/tasks", r->dir);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n != 37 || !endswith(de->d_name, ".json"))
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
		_cleanup_json_ json_t *doc = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (json_load_path(path, MAX_TASK_BYTES, &doc, &err) < 0) {
			log_fields(LOG_LEVEL_WARN, "ignoring unreadable task state", "path", path, "error",
				   err->msg, NULL);
			continue;
		}
		json_t *task = json_object_get(doc, "task"), *st = json_object_get(doc, "state");
		const char *arn = json_string_value(json_object_get(task, "taskArn"));
		char *id = NULL;
		if (!json_is_object(st) || task_id_of(arn, &id, NULL) < 0 || validate_task(task, NULL) < 0) {
			free(id);
			continue;
		}
		struct rtask *t = rtask_new(r, id, arn, json_incref(task), json_incref(st));
		t->next = r->tasks;
		r->tasks = t;
		const char *last = json_string_value(json_object_get(status_of(t), "lastStatus"));
		if (last && streq(last, "STOPPED"))
			continue;
		/* reattach: still running containers keep running; anything gone ends the task */
		if (spawn(t, NULL) < 0)
			log_fields(LOG_LEVEL_WARN, "cannot resume task", "task", t->arn, NULL);
	}
	closedir(d);
}

static char *find_pause(const char *given)
{
	if (given)
		return xstrdup(given);
	_cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
	char *slash = self ? strrchr(self, '/') : NULL;
	if (slash) {
		*slash = 0;
		char *p = xasprintf("%s/berth-pause", self);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	static const char *const dirs[] = { "/usr/local/libexec/berth", "/usr/libexec/berth",
					    "/usr/local/bin", "/usr/bin" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char *p = xasprintf("%s/berth-pause", dirs[i]);
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

int agent_runner_open(const struct agent_runner_config *cfg, struct agent_runner **ret,
		      struct berth_error **err)
{
	if (!cfg->host || !cfg->state_dir)
		return berth_error_msg(err, EINVAL, "runner: host and state directory required");
	_cleanup_free_ char *pause = find_pause(cfg->pause_path);
	if (!pause)
		return berth_error_msg(err, ENOENT,
				       "berth-pause not found next to the berth binary: give "
				       "--pause-path");
	_cleanup_free_ char *tasks = xasprintf("%s/tasks", cfg->state_dir);
	int rr = fs_mkdir_p(tasks, 0700, err);
	if (rr < 0)
		return rr;
	struct agent_runner *r = xcalloc(1, sizeof(*r));
	r->cfg = *cfg;
	r->h = cfg->host;
	r->dir = xstrdup(cfg->state_dir);
	r->cgroup_parent = xstrdup(cfg->cgroup_parent ? cfg->cgroup_parent : "berth-tasks");
	r->network = xstrdup(cfg->task_network ? cfg->task_network : "ecs-tasks");
	r->subnet = cfg->task_subnet ? xstrdup(cfg->task_subnet) : NULL;
	r->pause_path = TAKE_PTR(pause);
	r->dns_search = cfg->dns_search ? xstrdup(cfg->dns_search) : NULL;
	r->cfg.dns_search = NULL; /* borrowed by cfg; r->dns_search is ours */
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->create_lock, NULL);
	if ((rr = engine_events_open(r->h->engine, 0, 0, &r->events, err)) < 0) {
		agent_runner_close(r);
		return rr;
	}
	if ((rr = pthread_create(&r->events_thread, NULL, events_main, r)) != 0) {
		agent_runner_close(r);
		return berth_error_set(err, rr, "start event thread");
	}
	r->events_running = true;
	pthread_mutex_lock(&r->lock);
	load_tasks(r);
	pthread_mutex_unlock(&r->lock);
	*ret = r;
	return 0;
}

struct agent_runner *agent_runner_close(struct agent_runner *r)
{
	if (!r)
		return NULL;
	pthread_mutex_lock(&r->lock);
	r->closing = true;
	for (struct rtask *t = r->tasks; t; t = t->next)
		pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&r->lock);
	for (struct rtask *t = r->tasks; t; t = t->next)
		if (t->running_thread)
			pthread_join(t->thread, NULL);
	if (r->events_running) {
		engine_shutdown(r->h->engine); /* ends the follower; the front end closes the engine */
		pthread_join(r->events_thread, NULL);
	}
	engine_events_close(r->events);
	while (r->tasks) {
		struct rtask *t = r->tasks;
		r->tasks = t->next;
		rtask_free(t);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->create_lock);
	free(r->dir);
	free(r->cgroup_parent);
	free(r->network);
	free(r->dns_search);
	free(r->subnet);
	free(r->pause_path);
	free(r);
	return NULL;
}

int agent_pull_policy_parse(const char *s, enum agent_pull_policy *ret)
{
	static const char *const names[] = { "default", "always", "once", "prefer-cached" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (s && streq(s, names[i])) {
			*ret = (enum agent_pull_policy)i;
			return 0;
		}
	return -EINVAL;
}
