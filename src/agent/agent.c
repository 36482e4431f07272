/*
 * agent.c - `berth agent` (see agent.h): flags, the join, and three threads
 * over the server protocol: heartbeat, the long poll of desired tasks, and
 * the reporter that batches task transitions. Each thread has its own HTTP
 * client (libcurl handles are not shared); servers are tried in the order
 * given and the agent fails over to the next one on a connection error.
 *
 * Tasks keep running while the server is away: the runner persisted what it
 * was told, reports queue up (latest status per task wins) and are sent when
 * a server answers again.
 */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include "agent/agent.h"
#include "agent/lb.h"
#include "agent/logship.h"
#include "logs/wire.h"
#include "agent/metrics.h"
#include "agent/overlay.h"
#include "agent/runner.h"
#include "api/serve.h"
#include <fcntl.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/opttab.h"
#include "common/process.h"
#include "common/strbuf.h"
#include "host/host.h"
#include "host/netops.h"
#include "host/runtimes.h"
#include "http/http.h"
#include "net/net.h"
#include "pki/pki.h"

#define AGENT_VERSION BERTH_VERSION
#define MAX_SERVERS   8
#define MAX_ATTRS     64
#define POLL_WAIT_SEC 20
#define RETRY_MS      1000
#define MAX_RESPONSE  (8 << 20)

struct agent {
	/* flags */
	char *servers[MAX_SERVERS];
	size_t n_servers;
	char *token, *cluster, *root, *exec_root, *bridge, *cgroup_parent, *pidfile;
	char *task_network, *task_subnet, *pause_path, *pull, *advertise;
	char *attrs[MAX_ATTRS], *labels[MAX_ATTRS], *taints[MAX_ATTRS];
	size_t n_attrs, n_labels, n_taints;
	int64_t cpu, memory;         /* registered resources; 0: the machine's */
	struct host_runtime_opts rt; /* --add-runtime, --default-runtime, --runtime-path */
	/* identity (ROOT/agent/) */
	char *dir, *ca_file, *cert_file, *key_file;
	char *instance_arn;
	int heartbeat_s;
	/* running */
	struct host *host;
	struct agent_runner *runner;
	struct logship *logship; /* awslogs (logship.h) */
	struct conn *logs_conn;  /* the shipper threads' connections (LOGSHIP_THREADS) */
	int metrics_interval;    /* --metrics-interval */
	char *metrics_listen;    /* --metrics-listen */
	struct agent_metrics *metrics;
	struct conn *metrics_conn; /* the sampler thread's connection */
	struct conn *overlay_conn; /* the overlay thread's (peers long poll) */
	struct conn *lb_conn;      /* the load balancer thread's (targets long poll) */
	pthread_t threads[3];
	size_t n_threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	atomic_bool cancel;       /* aborts requests in flight (the long poll) at shutdown */
	size_t current;           /* server index in use */
	json_t *pending;          /* taskArn -> latest status not yet accepted */
	json_t *accepted_stopped; /* taskArn -> true once a STOPPED report was accepted */
	int exit_code;
	json_t *overlay_info;    /* the register answer's overlay fields (taskSubnet, vxlanId, ...) */
	struct overlay *overlay; /* the VXLAN dataplane (overlay.h) */
	struct lb_agent *lb;     /* load balancers and discovery records (lb.h) */
	struct net_dns *dns;     /* the resolver of awsvpc tasks (service discovery) */
	pthread_t dns_thread;
	bool dns_running;
	int dns_stop; /* eventfd ending the resolver */
	char *dns_domain;
	/* the cluster registry's credentials (GET /agent/v1/registry), under lock; NULL until fetched */
	json_t *registry;
	double registry_until; /* refetch after this (epoch seconds) */
};

static void usage(FILE *f)
{
	fprintf(
	    f, "Usage: berth agent --server https://HOST:PORT[,...] --token TOKEN [OPTIONS]\n\n"
	       "Join a berth cluster as a node: run the tasks the server places here and serve\n"
	       "this host's Docker Engine API on EXEC_ROOT/berth.sock.\n\n"
	       "Options:\n"
	       "      --server URLS        the server's endpoint; a comma-separated list of replicas\n"
	       "      --token TOKEN        the join token (ROOT/join-token on the server; pins its CA)\n"
	       "      --cluster NAME       cluster to register in (default: default)\n"
	       "      --root DIR           state (default $BERTH_ROOT or /var/lib/berth)\n"
	       "      --exec-root DIR      runtime state and the Docker socket (default $BERTH_EXEC_ROOT\n"
	       "                           or /run/berth)\n"
	       "      --attribute KEY=VALUE  node attribute (repeatable), e.g.\n"
	       "                           ecs.availability-zone=us-east-1a\n"
	       "      --label KEY=VALUE    node label (repeatable; Kubernetes-style selectors)\n"
	       "      --taint KEY=VALUE:EFFECT  taint (repeatable; NoSchedule, PreferNoSchedule, NoExecute)\n"
	       "      --cpu UNITS          CPU to offer (1024 per core; default: all cores)\n"
	       "      --memory MIB         memory to offer (default: all of it)\n"
	       "  -b, --bridge NAME|none   bridge of the default network (default berth0)\n"
	       "      --cgroup-parent NAME parent cgroup of the node's containers (default berth)\n"
	       "      --task-network NAME  network of awsvpc tasks (default ecs-tasks)\n"
	       "      --task-subnet CIDR   its subnet (default: the one the server assigns from its\n"
	       "                           --cluster-cidr; an explicit one must lie inside it)\n"
	       "      --advertise-address IP  this node's address for the VXLAN overlay (default: the\n"
	       "                           source address of its connection to the server)\n"
	       "      --pull-behavior P    default, always, once or prefer-cached (as the ECS agent)\n"
	       "      --metrics-interval N seconds between samples of the tasks' cgroups, sent to the\n"
	       "                           server (1 to 10, default 10)\n"
	       "      --metrics-listen HOST:PORT  serve Prometheus metrics of this node and its tasks\n"
	       "                           at http://HOST:PORT/metrics (plain HTTP: bind it to an\n"
	       "                           address only your Prometheus reaches)\n" HOST_RUNTIME_USAGE
	       "      --pause-path PATH    the static berth-pause binary (default: beside berth)\n"
	       "  -p, --pidfile FILE       write the agent's pid here\n"
	       "  -l, --log-level LEVEL    error, warn, info, debug, trace (default info)\n"
	       "  -h, --help               show this help\n");
}

static int add(char **v, size_t *n, size_t max, const char *what, const char *value)
{
	if (*n == max) {
		fprintf(stderr, "berth agent: at most %zu %s\n", max, what);
		return -EINVAL;
	}
	v[(*n)++] = xstrdup(value);
	return 0;
}

/* A positive number up to 2^40 for --name. */
static int parse_size(const char *name, const char *v, int64_t *ret)
{
	char *end;
	long long x = strtoll(v, &end, 10);
	if (!*v || *end || x <= 0 || x > (1LL << 40)) {
		fprintf(stderr, "berth agent: invalid --%s '%s'\n", name, v);
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

/* --cpu, --memory: into the int64_t o->dest */
static int opt_size(const struct cli_opt *o, const char *v)
{
	return parse_size(o->name, v, o->dest);
}

static int opt_metrics_interval(void *dest, const char *v)
{
	int64_t n = 0;
	int r = parse_size("metrics-interval", v, &n);
	if (r == 0 && n > AGENT_METRICS_MAX_INTERVAL) {
		fprintf(stderr, "berth agent: invalid --metrics-interval '%s': 1 to %d seconds\n", v,
			AGENT_METRICS_MAX_INTERVAL);
		r = -EINVAL;
	}
	*(int *)dest = (int)n;
	return r;
}

static int opt_servers(void *dest, const char *list)
{
	struct agent *a = dest;
	_cleanup_free_ char *copy = xstrdup(list);
	char *save = NULL;
	for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
		if (!startswith(s, "https://") || !s[8] || strchr(s + 8, '/')) {
			fprintf(stderr, "berth agent: invalid server '%s': expected https://HOST:PORT\n", s);
			return -EINVAL;
		}
		if (add(a->servers, &a->n_servers, MAX_SERVERS, "servers", s + 8) < 0)
			return -EINVAL;
	}
	return 0;
}

static int opt_attribute(void *dest, const char *v)
{
	struct agent *a = dest;
	return add(a->attrs, &a->n_attrs, MAX_ATTRS, "attributes", v);
}

static int opt_label(void *dest, const char *v)
{
	struct agent *a = dest;
	return add(a->labels, &a->n_labels, MAX_ATTRS, "labels", v);
}

static int opt_taint(void *dest, const char *v)
{
	struct agent *a = dest;
	return add(a->taints, &a->n_taints, MAX_ATTRS, "taints", v);
}

static void set(char **slot, const char *v)
{
	free(*slot);
	*slot = xstrdup(v);
}

static int parse_args(int argc, char **argv, struct agent *a)
{
#define STR(name, short_name, field)                            \
	{                                                       \
		(name), (short_name), CLI_OPT_STRDUP, &a->field \
	}
#define CALL(name, f)                                                  \
	{                                                              \
		(name), 0, CLI_OPT_CALL, a, .fn = (f), .has_arg = true \
	}
#define ENTRY(name, dest, f)                                                       \
	{                                                                          \
		(name), 0, CLI_OPT_ENTRY, (dest), .entry_fn = (f), .has_arg = true \
	}
	const struct cli_opt t[] = {
		CALL("server", opt_servers),
		STR("token", 0, token),
		STR("cluster", 0, cluster),
		STR("root", 0, root),
		STR("exec-root", 0, exec_root),
		CALL("attribute", opt_attribute),
		CALL("label", opt_label),
		CALL("taint", opt_taint),
		ENTRY("cpu", &a->cpu, opt_size),
		ENTRY("memory", &a->memory, opt_size),
		STR("bridge", 'b', bridge),
		STR("cgroup-parent", 0, cgroup_parent),
		STR("task-network", 0, task_network),
		STR("task-subnet", 0, task_subnet),
		STR("pull-behavior", 0, pull),
		HOST_RUNTIME_OPTIONS(&a->rt),
		STR("pause-path", 0, pause_path),
		STR("advertise-address", 0, advertise),
		{ "metrics-interval", 0, CLI_OPT_CALL, &a->metrics_interval, .fn = opt_metrics_interval,
		  .has_arg = true },
		STR("metrics-listen", 0, metrics_listen),
		STR("pidfile", 'p', pidfile),
		{ "log-level", 'l', CLI_OPT_CALL, "berth agent", .fn = opttab_log_level, .has_arg = true },
		{ "help", 'h', CLI_OPT_HELP },
		{ NULL },
	};
#undef STR
#undef CALL
#undef ENTRY
	int r = opttab_scan_usage(t, argc, argv, NULL, usage);
	if (r != CLI_OPTTAB_OK)
		return r == CLI_OPTTAB_HELP ? 1 : -EINVAL;
	if (optind < argc) {
		fprintf(stderr, "berth agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!a->n_servers || !a->token) {
		fprintf(stderr, "berth agent: --server and --token are required\n");
		return -EINVAL;
	}
	return 0;
}

/* ---- attributes, labels, taints ---- */

static int kv_split(const char *flag, const char *s, char **k, char **v)
{
	const char *eq = strchr(s, '=');
	if (!eq || eq == s) {
		fprintf(stderr, "berth agent: invalid %s '%s': expected KEY=VALUE\n", flag, s);
		return -EINVAL;
	}
	*k = xstrndup(s, (size_t)(eq - s));
	*v = xstrdup(eq + 1);
	return 0;
}

static int registration_of(struct agent *a, json_t **ret)
{
	json_t *attrs = json_object(), *labels = json_object(), *taints = json_array();
	json_t *reg =
	    json_pack("{s:s,s:o,s:o,s:o,s:s}", "cluster", a->cluster ? a->cluster : "default", "attributes",
		      attrs, "labels", labels, "taints", taints, "agentVersion", AGENT_VERSION);
	for (size_t i = 0; i < a->n_attrs + a->n_labels; i++) {
		bool attr = i < a->n_attrs;
		_cleanup_free_ char *k = NULL, *v = NULL;
		if (kv_split(attr ? "--attribute" : "--label", attr ? a->attrs[i] : a->labels[i - a->n_attrs],
			     &k, &v) < 0)
			return json_decref(reg), -EINVAL;
		json_object_set_new(attr ? attrs : labels, k, json_string(v));
	}
	for (size_t i = 0; i < a->n_taints; i++) {
		/* KEY=VALUE:EFFECT or KEY:EFFECT */
		const char *t = a->taints[i], *colon = strrchr(t, ':');
		const char *eff = colon ? colon + 1 : "";
		if (!colon || colon == t ||
		    (!streq(eff, "NoSchedule") && !streq(eff, "PreferNoSchedule") &&
		     !streq(eff, "NoExecute"))) {
			fprintf(stderr,
				"berth agent: invalid --taint '%s': expected KEY=VALUE:EFFECT with EFFECT "
				"NoSchedule, PreferNoSchedule or NoExecute\n",
				t);
			return json_decref(reg), -EINVAL;
		}
		_cleanup_free_ char *kv = xstrndup(t, (size_t)(colon - t));
		char *eq = strchr(kv, '=');
		if (eq)
			*eq = 0;
		json_array_append_new(
		    taints, json_pack("{s:s,s:s,s:s}", "key", kv, "value", eq ? eq + 1 : "", "effect", eff));
	}
	struct sysinfo si;
	int64_t mem = a->memory;
	if (!mem && sysinfo(&si) == 0)
		mem = (int64_t)((uint64_t)si.totalram * si.mem_unit / (1024 * 1024));
	int64_t cpu = a->cpu ? a->cpu : 1024 * sysconf(_SC_NPROCESSORS_ONLN);
	/* the ECS agent reserves these ports for itself and the engine */
	json_object_set_new(reg, "resources",
			    json_pack("{s:I,s:I,s:[i,i,i,i,i],s:[]}", "cpu", (json_int_t)cpu, "memory",
				      (json_int_t)mem, "ports", 22, 2375, 2376, 51678, 51679, "portsUdp"));
	char host[256] = "";
	gethostname(host, sizeof(host) - 1);
	json_object_set_new(reg, "hostname", json_string(host));
	if (a->advertise) /* overlay: the underlay address peers tunnel to, and an explicit subnet */
		json_object_set_new(reg, "address", json_string(a->advertise));
	if (a->task_subnet)
		json_object_set_new(reg, "taskSubnet", json_string(a->task_subnet));
	*ret = reg;
	return 0;
}

/* ---- HTTP ---- */

/* One client for the current server: mutual TLS when the node certificate exists. */
static int client_for(struct agent *a, size_t idx, bool verify, struct http_client **ret,
		      struct berth_error **err)
{
	_cleanup_free_ char *url = xasprintf("tcp://%s", a->servers[idx % a->n_servers]);
	struct http_client *c = NULL;
	int r = http_client_new(url, &c, err);
	if (r < 0)
		return r;
	bool have_cert = access(a->cert_file, R_OK) == 0;
	struct http_tls_files f = { .ca = verify ? a->ca_file : NULL,
				    .cert = have_cert ? a->cert_file : NULL,
				    .key = have_cert ? a->key_file : NULL };
	if ((r = http_client_set_tls(c, &f, verify, err)) < 0) {
		http_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

/* Send a request body of content type ct; *ret the parsed answer (object) for 2xx; -EACCES for 401/403,
 * -ENOENT 404. */
static int call_raw(struct agent *a, struct http_client *c, const char *method, const char *path,
		    const char *ct, const char *body, size_t len, long timeout_ms, json_t **ret,
		    struct berth_error **err)
{
	struct http_client_request rq = { .method = method,
					  .path = path,
					  .content_type = body ? ct : NULL,
					  .body = body,
					  .body_len = len,
					  .body_fd = -1,
					  .timeout_ms = timeout_ms,
					  .cancel = &a->cancel };
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	long status = 0;
	int r = http_client_do(c, &rq, &status, &out, err);
	if (r < 0)
		return r;
	if (out.len > MAX_RESPONSE)
		return berth_error_msg(err, EMSGSIZE, "%s %s: response too large", method, path);
	_cleanup_json_ json_t *j = json_loadb(out.buf, out.len, 0, NULL);
	if (status < 200 || status > 299) {
		const char *msg = json_string_value(json_object_get(j, "error"));
		const char *code = json_string_value(json_object_get(j, "code"));
		int e = status == 401 || status == 403 ? EACCES : status == 404 ? ENOENT : EIO;
		return berth_error_msg(err, e, "%s %s: %ld %s%s%s", method, path, status, code ? code : "",
				       msg ? ": " : "", msg ? msg : "");
	}
	if (!json_is_object(j))
		return berth_error_msg(err, EPROTO, "%s %s: expected a JSON object", method, path);
	if (ret)
		*ret = TAKE_PTR(j);
	return 0;
}

/* Send a JSON request (call_raw). */
static int call(struct agent *a, struct http_client *c, const char *method, const char *path,
		const json_t *body, long timeout_ms, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	return call_raw(a, c, method, path, "application/json", text, text ? strlen(text) : 0, timeout_ms,
			ret, err);
}

/* ---- join ---- */

static int write_secret(const char *path, const char *text, struct berth_error **err)
{
	return fs_write_file_atomic(path, text, strlen(text), 0600, err);
}

/* Fetch the CA (PEM) without verification, accept it only if it hashes to the token's pin. */
static int fetch_ca(struct agent *a, size_t idx, const char *pin, struct berth_error **err)
{
	_cleanup_(http_client_freep) struct http_client *c = NULL;
	int r = client_for(a, idx, false, &c, err);
	if (r < 0)
		return r;
	struct http_client_request rq = { .method = "GET",
					  .path = "/agent/v1/ca",
					  .body_fd = -1,
					  .timeout_ms = 10000,
					  .cancel = &a->cancel };
	_cleanup_strbuf_ struct strbuf ca = STRBUF_INIT;
	long status = 0;
	if ((r = http_client_do(c, &rq, &status, &ca, err)) < 0)
		return r;
	if (status != 200 || ca.len > 64 * 1024 || !strstr(ca.buf, "-----BEGIN CERTIFICATE-----"))
		return berth_error_msg(err, EPROTO, "GET /agent/v1/ca: %ld, no CA certificate", status);
	_cleanup_free_ char *hash = pki_sha256_hex(ca.buf, ca.len);
	if (!streq(hash, pin))
		return berth_error_msg(err, EACCES,
				       "the server's CA does not match the join token: refusing "
				       "to join (wrong token, or not the server it names)");
	return write_secret(a->ca_file, ca.buf, err);
}

static int join(struct agent *a, struct berth_error **err)
{
	_cleanup_free_ char *pin = NULL, *secret = NULL;
	if (pki_join_token_parse(a->token, &pin, &secret) < 0)
		return berth_error_msg(err, EINVAL, "malformed join token: expected K10<sha256>::<secret>");
	int r = -EIO;
	for (size_t i = 0; i < a->n_servers; i++) {
		berth_error_free(*err), *err = NULL;
		if ((r = fetch_ca(a, i, pin, err)) == -EACCES)
			return r;
		if (r < 0)
			continue;
		char host[256] = "";
		gethostname(host, sizeof(host) - 1);
		_cleanup_free_ char *csr = NULL, *key = NULL;
		if ((r = pki_csr_create(host, &csr, &key, err)) < 0)
			return r;
		_cleanup_(http_client_freep) struct http_client *c = NULL;
		_cleanup_json_ json_t *resp = NULL;
		_cleanup_json_ json_t *body =
		    json_pack("{s:s,s:s,s:s}", "token", a->token, "csr", csr, "hostname", host);
		if ((r = client_for(a, i, true, &c, err)) < 0 ||
		    (r = call(a, c, "POST", "/agent/v1/join", body, 15000, &resp, err)) < 0) {
			if (r == -EACCES)
				return berth_error_wrap(err, r, "join refused");
			continue;
		}
		const char *cert = json_string_value(json_object_get(resp, "certificate"));
		if (!cert)
			return berth_error_msg(err, EPROTO, "join: no certificate in the answer");
		if ((r = write_secret(a->key_file, key, err)) < 0 ||
		    (r = write_secret(a->cert_file, cert, err)) < 0)
			return r;
		a->current = i;
		log_fields(LOG_LEVEL_INFO, "joined the cluster", "server", a->servers[i], "node",
			   json_string_value(json_object_get(resp, "nodeId")), NULL);
		return 0;
	}
	return berth_error_wrap(err, r, "join: no server answered");
}

static int do_register(struct agent *a, struct http_client *c, struct berth_error **err)
{
	_cleanup_json_ json_t *reg = NULL, *resp = NULL;
	if (registration_of(a, &reg) < 0)
		return berth_error_msg(err, EINVAL, "invalid node attributes");
	int r = call(a, c, "POST", "/agent/v1/register", reg, 15000, &resp, err);
	if (r < 0)
		return r;
	const char *arn = json_string_value(json_object_get(resp, "containerInstanceArn"));
	json_t *hb = json_object_get(resp, "heartbeatInterval");
	pthread_mutex_lock(&a->lock);
	set(&a->instance_arn, arn ? arn : "");
	const char *had = json_string_value(json_object_get(a->overlay_info, "taskSubnet"));
	const char *got = json_string_value(json_object_get(resp, "taskSubnet"));
	if (had && got && !streq(had, got)) /* the server lost its state: peers route the new one */
		log_fields(LOG_LEVEL_WARN, "the server assigned another task subnet; restart the agent",
			   "subnet", had, "assigned", got, NULL);
	if (!a->overlay_info)
		a->overlay_info =
		    json_pack("{s:O?,s:O?,s:O?,s:O?}", "taskSubnet", json_object_get(resp, "taskSubnet"),
			      "clusterCidr", json_object_get(resp, "clusterCidr"), "vxlanId",
			      json_object_get(resp, "vxlanId"), "vtepMac", json_object_get(resp, "vtepMac"));
	a->heartbeat_s = json_is_integer(hb) && json_integer_value(hb) > 0 ? (int)json_integer_value(hb) : 5;
	pthread_mutex_unlock(&a->lock);
	log_fields(LOG_LEVEL_INFO, "registered", "instance", arn ? arn : "", NULL);
	return 0;
}

/* ---- threads ---- */

/* Wait ms (or until stopping); false when the agent is stopping. */
static bool pause_ms(struct agent *a, int ms)
{
	struct timespec ts = proc_deadline(CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&a->lock);
	while (!a->stopping && pthread_cond_timedwait(&a->cond, &a->lock, &ts) == 0)
		;
	bool ok = !a->stopping;
	pthread_mutex_unlock(&a->lock);
	return ok;
}

static bool is_stopping(struct agent *a)
{
	pthread_mutex_lock(&a->lock);
	bool s = a->stopping;
	pthread_mutex_unlock(&a->lock);
	return s;
}

/* A refused node certificate ends the agent: it was deregistered (or forged). */
static void fatal(struct agent *a, const struct berth_error *err)
{
	_cleanup_free_ char *m = berth_error_string(err);
	log_fields(LOG_LEVEL_ERROR, "the server refused this node", "error", m, NULL);
	fprintf(stderr, "berth agent: the server refused this node: %s\n", m);
	pthread_mutex_lock(&a->lock);
	a->exit_code = 1;
	pthread_mutex_unlock(&a->lock);
	kill(getpid(), SIGTERM);
}

/* The next server after a connection failure. */
static void fail_over(struct agent *a, size_t seen)
{
	pthread_mutex_lock(&a->lock);
	if (a->current == seen)
		a->current = (a->current + 1) % a->n_servers;
	pthread_mutex_unlock(&a->lock);
}

static size_t current(struct agent *a)
{
	pthread_mutex_lock(&a->lock);
	size_t c = a->current;
	pthread_mutex_unlock(&a->lock);
	return c;
}

/*
 * A thread's connection to the current server, kept between calls: one TLS
 * handshake per server and thread instead of one per heartbeat (libcurl keeps
 * the connection in the handle). Dropped on any error, so the next call
 * reconnects, possibly to the next server.
 */
struct conn {
	struct http_client *c;
	size_t idx;
};

static int conn_get(struct agent *a, struct conn *k, size_t idx, struct http_client **ret,
		    struct berth_error **err)
{
	if (!k->c || k->idx != idx) {
		k->c = http_client_free(k->c);
		int r = client_for(a, idx, true, &k->c, err);
		if (r < 0)
			return r;
		k->idx = idx;
	}
	*ret = k->c;
	return 0;
}

static void conn_drop(struct conn *k)
{
	k->c = http_client_free(k->c);
}

/* Heartbeats between two malloc_trim() calls. */
#define AGENT_TRIM_BEATS 12

static void *heartbeat_main(void *arg)
{
	struct agent *a = arg;
	struct conn k = { 0 };
	for (unsigned beat = 0; !is_stopping(a); beat++) {
		size_t idx = current(a);
		struct http_client *c = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		/*
		 * Hand freed heap back to the kernel: on the second beat (the start-up's allocations are
		 * done) and about once a minute after. Each thread's malloc arena keeps its freed
		 * chunks until then (docs/cluster.md, idle RSS).
		 */
		if (beat % AGENT_TRIM_BEATS == 1)
			(void)malloc_trim(0);
		int r = conn_get(a, &k, idx, &c, &err);
		if (r >= 0)
			r = call(a, c, "POST", "/agent/v1/heartbeat", NULL, 10000, NULL, &err);
		if (r == -ENOENT)
			r = do_register(a, c, &err);
		if (r == -EACCES) {
			conn_drop(&k);
			fatal(a, err);
			return NULL;
		}
		if (r < 0) {
			log_fields(LOG_LEVEL_WARN, "heartbeat failed", "error", err ? err->msg : "", NULL);
			conn_drop(&k);
			fail_over(a, idx);
		}
		pthread_mutex_lock(&a->lock);
		int every = a->heartbeat_s;
		pthread_mutex_unlock(&a->lock);
		if (!pause_ms(a, r < 0 ? RETRY_MS : every * 1000))
			break;
	}
	conn_drop(&k);
	return NULL;
}

/*
 * The runner's registry_auth: credentials and the cluster CA for images on
 * the cluster registry (docs/ecr.md), fetched from the server and cached
 * until shortly before they expire. Images elsewhere get nothing.
 */
static int registry_auth(void *userdata, const char *ref, char **ret_user, char **ret_password,
			 char **ret_certs_dir)
{
	struct agent *a = userdata;
	const char *slash = strchr(ref, '/');
	if (!slash)
		return 0;
	double now = (double)time(NULL);
	pthread_mutex_lock(&a->lock);
	bool stale = !a->registry || now >= a->registry_until;
	pthread_mutex_unlock(&a->lock);
	if (stale) {
		_cleanup_(http_client_freep) struct http_client *c = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		json_t *j = NULL;
		int r = client_for(a, current(a), true, &c, &err);
		if (r >= 0)
			r = call(a, c, "GET", "/agent/v1/registry", NULL, 10000, &j, &err);
		if (r == -ENOENT)
			j = json_object(); /* no cluster registry: ask again in a minute */
		if (r < 0 && r != -ENOENT) {
			berth_error_print(err, "berth agent: registry credentials");
			return r;
		}
		json_int_t exp = json_integer_value(json_object_get(j, "expiresAt"));
		pthread_mutex_lock(&a->lock);
		json_decref(a->registry);
		a->registry = j;
		a->registry_until = exp ? (double)exp - 300 : now + 60;
		pthread_mutex_unlock(&a->lock);
	}
	pthread_mutex_lock(&a->lock);
	const char *ep = json_string_value(json_object_get(a->registry, "endpoint"));
	bool ours = ep && strlen(ep) == (size_t)(slash - ref) && !strncmp(ref, ep, strlen(ep));
	if (ours) {
		*ret_user = xstrdup(json_string_value(json_object_get(a->registry, "username")));
		*ret_password = xstrdup(json_string_value(json_object_get(a->registry, "password")));
		*ret_certs_dir = xasprintf("%s/certs.d", a->dir);
	}
	_cleanup_free_ char *ca_dir = ours ? xasprintf("%s/certs.d/%s", a->dir, ep) : NULL;
	pthread_mutex_unlock(&a->lock);
	if (!ours)
		return 0;
	/* the registry's certificate is from the cluster CA: trust it for that host only */
	_cleanup_strbuf_ struct strbuf ca = STRBUF_INIT;
	_cleanup_free_ char *ca_crt = xasprintf("%s/ca.crt", ca_dir);
	_cleanup_error_ struct berth_error *err = NULL;
	int r = fs_read_file_at(AT_FDCWD, a->ca_file, 1 << 20, &ca, &err);
	if (r >= 0)
		r = fs_mkdir_p(ca_dir, 0700, &err);
	if (r >= 0)
		r = fs_write_file_atomic(ca_crt, ca.buf, ca.len, 0644, &err);
	if (r < 0)
		berth_error_print(err, "berth agent: registry CA");
	return r < 0 ? r : 0;
}

/* Apply the server's desired tasks; stop what it no longer wants, forget acknowledged STOPPED ones. */
static void apply_tasks(struct agent *a, const json_t *tasks)
{
	json_t *want = json_object();
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		const char *arn = json_string_value(json_object_get(t, "taskArn"));
		if (!arn)
			continue;
		json_object_set_new(want, arn, json_true());
		_cleanup_error_ struct berth_error *err = NULL;
		if (agent_runner_apply(a->runner, t, &err) < 0) {
			_cleanup_free_ char *why = berth_error_string(err);
			log_fields(LOG_LEVEL_WARN, "cannot run task", "task", arn, "error", why, NULL);
			json_t *st = json_pack("{s:s,s:s,s:s,s:s}", "taskArn", arn, "lastStatus", "STOPPED",
					       "stopCode", "TaskFailedToStart", "stoppedReason", why);
			pthread_mutex_lock(&a->lock);
			json_object_set_new(a->pending, arn, st);
			pthread_cond_broadcast(&a->cond);
			pthread_mutex_unlock(&a->lock);
		}
	}
	_cleanup_json_ json_t *mine = agent_runner_status(a->runner);
	bool waited = false;
	json_array_foreach (mine, i, t) {
		const char *arn = json_string_value(json_object_get(t, "taskArn"));
		const char *last = json_string_value(json_object_get(t, "lastStatus"));
		if (!arn || json_object_get(want, arn))
			continue;
		if (last && streq(last, "STOPPED")) {
			pthread_mutex_lock(&a->lock);
			bool acked = json_object_get(a->accepted_stopped, arn) != NULL;
			pthread_mutex_unlock(&a->lock);
			if (acked)
				agent_runner_forget(a->runner, arn);
			continue;
		}
		/* the server stopped it while we were away (node lost): stop the stale copy, once this
		 * node's load balancer routes by the server's targets (it may be a target there still);
		 * one bounded wait for all of them, not one per copy */
		if (!waited)
			agent_lb_wait_synced(a->lb, LB_SYNC_WAIT_MS);
		waited = true;
		_cleanup_json_ json_t *stop =
		    json_pack("{s:s,s:s,s:s,s:s}", "taskArn", arn, "desiredStatus", "STOPPED", "stopCode",
			      "TaskFailedToStart", "stoppedReason", "Task no longer desired by the server");
		agent_runner_apply(a->runner, stop, NULL);
	}
	/* acknowledgements of tasks neither the server nor the runner knows any more are done with */
	_cleanup_json_ json_t *known = agent_runner_status(a->runner);
	pthread_mutex_lock(&a->lock);
	const char *k;
	json_t *v, *tmp;
	json_object_foreach_safe (a->accepted_stopped, tmp, k, v) {
		bool live = json_object_get(want, k) != NULL;
		json_array_foreach (known, i, t) {
			const char *arn = json_string_value(json_object_get(t, "taskArn"));
			live |= arn && streq(k, arn);
		}
		if (!live)
			json_object_del(a->accepted_stopped, k);
	}
	pthread_mutex_unlock(&a->lock);
	json_decref(want);
}

static void *poll_main(void *arg)
{
	struct agent *a = arg;
	int64_t since = 0;
	struct conn k = { 0 };
	while (!is_stopping(a)) {
		size_t idx = current(a);
		struct http_client *c = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		_cleanup_json_ json_t *resp = NULL;
		_cleanup_free_ char *path = xasprintf("/agent/v1/tasks?since=%lld&wait=%d", (long long)since,
						      since ? POLL_WAIT_SEC : 0);
		int r = conn_get(a, &k, idx, &c, &err);
		if (r >= 0)
			r = call(a, c, "GET", path, NULL, (POLL_WAIT_SEC + 10) * 1000L, &resp, &err);
		if (r == -EACCES) {
			conn_drop(&k);
			fatal(a, err);
			return NULL;
		}
		if (r < 0) {
			conn_drop(&k);
			if (r != -ENOENT)
				fail_over(a, idx);
			if (!pause_ms(a, RETRY_MS))
				break;
			continue;
		}
		json_t *rev = json_object_get(resp, "revision");
		if (json_is_integer(rev))
			since = json_integer_value(rev);
		apply_tasks(a, json_object_get(resp, "tasks"));
	}
	conn_drop(&k);
	return NULL;
}

/* Runner callback: keep the latest status per task for the reporter. */
static void on_report(void *userdata, const json_t *status)
{
	struct agent *a = userdata;
	const char *arn = json_string_value(json_object_get(status, "taskArn"));
	if (!arn)
		return;
	pthread_mutex_lock(&a->lock);
	json_object_set_new(a->pending, arn, json_deep_copy(status));
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void *report_main(void *arg)
{
	struct agent *a = arg;
	struct conn conn = { 0 };
	for (;;) {
		pthread_mutex_lock(&a->lock);
		while (!a->stopping && json_object_size(a->pending) == 0)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->stopping) {
			pthread_mutex_unlock(&a->lock);
			break;
		}
		json_t *batch = json_array();
		const char *k;
		json_t *v;
		json_object_foreach (a->pending, k, v)
			json_array_append(batch, v);
		size_t idx = a->current;
		pthread_mutex_unlock(&a->lock);
		struct http_client *c = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		_cleanup_json_ json_t *resp = NULL, *body = json_pack("{s:o}", "tasks", batch);
		int r = conn_get(a, &conn, idx, &c, &err);
		if (r >= 0)
			r = call(a, c, "POST", "/agent/v1/status", body, 15000, &resp, &err);
		if (r == -EACCES) {
			fatal(a, err);
			break;
		}
		if (r < 0) {
			conn_drop(&conn);
			fail_over(a, idx);
			if (!pause_ms(a, RETRY_MS))
				break;
			continue;
		}
		/* drop what was sent unless a newer status arrived meanwhile; remember accepted STOPPEDs */
		pthread_mutex_lock(&a->lock);
		size_t i;
		json_t *sent;
		json_array_foreach (json_object_get(body, "tasks"), i, sent) {
			const char *arn = json_string_value(json_object_get(sent, "taskArn"));
			json_t *now = json_object_get(a->pending, arn);
			if (now && json_equal(now, sent))
				json_object_del(a->pending, arn);
			const char *last = json_string_value(json_object_get(sent, "lastStatus"));
			if (last && streq(last, "STOPPED"))
				json_object_set_new(a->accepted_stopped, arn, json_true());
		}
		pthread_mutex_unlock(&a->lock);
	}
	conn_drop(&conn);
	return NULL;
}

/*
 * POST body to path on the current server over a thread's own connection k; a failure other than
 * 404 (the server lacks the call) drops the connection and, unless refused, moves to the next server.
 */
static int post_raw_on(struct agent *a, struct conn *k, const char *path, const char *ct, const char *body,
		       size_t len, long timeout_ms, json_t **ret, struct berth_error **err)
{
	size_t idx = current(a);
	struct http_client *c = NULL;
	int r = conn_get(a, k, idx, &c, err);
	if (r >= 0)
		r = call_raw(a, c, "POST", path, ct, body, len, timeout_ms, ret, err);
	if (r < 0 && r != -ENOENT) {
		conn_drop(k);
		if (r != -EACCES)
			fail_over(a, idx);
	}
	return r;
}

static int post_on(struct agent *a, struct conn *k, const char *path, const json_t *body, long timeout_ms,
		   json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
	return post_raw_on(a, k, path, "application/json", text, strlen(text), timeout_ms, ret, err);
}

/* logship_send_fn: one batch of log events to the current server (the shipper's own thread). */
static int logs_send(void *userdata, unsigned thread, const char *body, size_t len, json_t **ret,
		     struct berth_error **err)
{
	struct agent *a = userdata;
	return post_raw_on(a, &a->logs_conn[thread], "/agent/v1/logs", LOGS_WIRE_TYPE, body, len, 30000, ret,
			   err);
}

/* The metrics sampler's send: POST /agent/v1/metrics to the current server (its own connection). */
static int metrics_send(void *userdata, const json_t *body, struct berth_error **err)
{
	struct agent *a = userdata;
	return post_on(a, a->metrics_conn, "/agent/v1/metrics", body, 10000, NULL, err);
}

static json_t *metrics_lb_counts(void *userdata)
{
	struct agent *a = userdata;
	return agent_lb_request_counts(a->lb);
}

static json_t *metrics_targets(void *userdata)
{
	struct agent *a = userdata;
	return agent_runner_metrics_targets(a->runner);
}

/* ---- lifecycle ---- */

/* One GET to the current server on a thread's kept connection (a long poll: overlay peers, lb targets). */
static int get_on(struct agent *a, struct conn *k, const char *path, long timeout_ms, json_t **ret,
		  struct berth_error **err)
{
	size_t idx = current(a);
	struct http_client *c = NULL;
	int r = conn_get(a, k, idx, &c, err);
	if (r >= 0)
		r = call(a, c, "GET", path, NULL, timeout_ms, ret, err);
	if (r < 0 && r != -ENOENT) {
		conn_drop(k);
		if (r != -EACCES)
			fail_over(a, idx);
	}
	return r;
}

/* overlay_fetch_fn: the overlay thread's peers long poll. */
static int overlay_fetch(void *userdata, const char *path, long timeout_ms, json_t **ret,
			 struct berth_error **err)
{
	struct agent *a = userdata;
	return get_on(a, a->overlay_conn, path, timeout_ms, ret, err);
}

/* lb_fetch_fn: the load balancer thread's targets long poll. */
static int lb_fetch(void *userdata, const char *path, long timeout_ms, json_t **ret, struct berth_error **err)
{
	struct agent *a = userdata;
	return get_on(a, a->lb_conn, path, timeout_ms, ret, err);
}

/* lb_post_fn: one POST to the current server (the load balancer's target health reports). */
static int lb_post(void *userdata, const char *path, const json_t *body, long timeout_ms,
		   struct berth_error **err)
{
	struct agent *a = userdata;
	size_t idx = current(a);
	_cleanup_(http_client_freep) struct http_client *c = NULL;
	_cleanup_json_ json_t *resp = NULL;
	int r = client_for(a, idx, true, &c, err);
	if (r >= 0)
		r = call(a, c, "POST", path, body, timeout_ms, &resp, err);
	return r;
}

static void *dns_main(void *arg)
{
	struct agent *a = arg;
	_cleanup_error_ struct berth_error *err = NULL;
	if (net_dns_serve(a->dns, a->dns_stop, &err) < 0)
		log_fields(LOG_LEVEL_ERROR, "the task resolver stopped", "error", err->msg, NULL);
	return NULL;
}

/*
 * Service discovery: the embedded resolver on the task network's gateway
 * (port 53), with the load balancer thread's records file for the task
 * network. Without container networking there is none.
 */
static int discovery_up(struct agent *a, struct berth_error **err)
{
	if (!a->host->net)
		return 0;
	a->dns_domain = xasprintf("%s.local", a->cluster ? a->cluster : "default");
	_cleanup_free_ char *records = xasprintf("%s/lb/dns.records", a->exec_root);
	int r = net_dns_open(host_netops_net(a->host->net), 53, &a->dns, err);
	if (r >= 0)
		r = net_dns_set_records_file(a->dns, a->task_network ? a->task_network : "ecs-tasks", records,
					     err);
	if (r >= 0 && (a->dns_stop = eventfd(0, EFD_CLOEXEC)) < 0)
		r = berth_error_errno(err, "eventfd");
	if (r >= 0 && (r = -pthread_create(&a->dns_thread, NULL, dns_main, a)) < 0)
		berth_error_set(err, -r, "start the resolver thread");
	if (r < 0) {
		a->dns = net_dns_free(a->dns);
		return berth_error_wrap(err, r, "service discovery");
	}
	a->dns_running = true;
	return 0;
}

/* The VXLAN overlay, when the server assigned a subnet and the node has container networking. */
static int overlay_up(struct agent *a, const char *subnet, struct berth_error **err)
{
	json_t *info = a->overlay_info;
	const char *cidr = json_string_value(json_object_get(info, "clusterCidr"));
	if (!a->host->net || !subnet || !cidr)
		return 0;
	struct overlay_config oc = { .host = a->host,
				     .task_network = a->task_network ? a->task_network : "ecs-tasks",
				     .task_subnet = subnet,
				     .cluster_cidr = cidr,
				     .local_address = a->advertise,
				     .vtep_mac = json_string_value(json_object_get(info, "vtepMac")),
				     .vni = (int)json_integer_value(json_object_get(info, "vxlanId")),
				     .fetch = overlay_fetch,
				     .userdata = a };
	return agent_overlay_start(&oc, &a->overlay, err);
}

static int started(void *userdata, struct host *h, struct berth_error **err)
{
	struct agent *a = userdata;
	a->host = h;
	int r;
	if (!a->overlay_conn)
		a->overlay_conn = xcalloc(1, sizeof(*a->overlay_conn));
	if (!a->lb_conn)
		a->lb_conn = xcalloc(1, sizeof(*a->lb_conn));
	if (access(a->cert_file, R_OK) != 0 && (r = join(a, err)) < 0)
		return r;
	if (!a->advertise &&
	    (r = agent_overlay_source_address(a->servers[a->current], &a->advertise, err)) < 0)
		return berth_error_wrap(err, r, "find the advertise address (set --advertise-address)");
	bool registered = false;
	r = -EIO;
	for (size_t i = 0; i < a->n_servers && !registered; i++) {
		_cleanup_(http_client_freep) struct http_client *c = NULL;
		berth_error_free(*err), *err = NULL;
		r = client_for(a, a->current + i, true, &c, err);
		if (r >= 0)
			r = do_register(a, c, err);
		if (r == -EACCES)
			return berth_error_wrap(err, r, "the server refused this node's certificate");
		if (r >= 0) {
			a->current = (a->current + i) % a->n_servers;
			registered = true;
		}
	}
	if (!registered)
		return berth_error_wrap(err, r, "register with the server");
	if ((r = discovery_up(a, err)) < 0)
		return r;
	enum agent_pull_policy pull = AGENT_PULL_DEFAULT;
	if (a->pull && agent_pull_policy_parse(a->pull, &pull) < 0)
		return berth_error_msg(err, EINVAL, "invalid --pull-behavior '%s'", a->pull);
	_cleanup_free_ char *state = xasprintf("%s/agent", a->root);
	_cleanup_free_ char *cgp = xasprintf("%s-tasks", a->cgroup_parent ? a->cgroup_parent : "berth");
	const char *subnet = json_string_value(json_object_get(a->overlay_info, "taskSubnet"));
	if (!subnet)
		subnet = a->task_subnet;
	if ((r = overlay_up(a, subnet, err)) < 0)
		return r;
	_cleanup_free_ char *logdir = xasprintf("%s/agent/logs", a->root);
	a->logs_conn = xcalloc(LOGSHIP_THREADS, sizeof(*a->logs_conn));
	struct logship_config lc = { .dir = logdir, .send = logs_send, .userdata = a };
	if ((r = agent_logship_open(&lc, &a->logship, err)) < 0) {
		a->overlay = agent_overlay_stop(a->overlay);
		return r;
	}
	struct agent_runner_config rc = { .host = h,
					  .logs = a->logship,
					  .state_dir = state,
					  .cgroup_parent = cgp,
					  .task_network = a->task_network,
					  .task_subnet = subnet,
					  .pause_path = a->pause_path,
					  .dns_search = a->dns ? a->dns_domain : NULL,
					  .pull = pull,
					  .report = on_report,
					  .registry_auth = registry_auth,
					  .userdata = a };
	if ((r = agent_runner_open(&rc, &a->runner, err)) < 0) {
		a->overlay = agent_overlay_stop(a->overlay);
		a->logship = agent_logship_close(a->logship);
		return r;
	}
	_cleanup_free_ char *lbdir = xasprintf("%s/lb", a->exec_root);
	_cleanup_free_ char *records = xasprintf("%s/lb/dns.records", a->exec_root);
	struct lb_agent_config lbc = { .dir = lbdir,
				       .records_file = a->dns ? records : NULL,
				       .fetch = lb_fetch,
				       .post = lb_post,
				       .userdata = a };
	/* before the task poll: it waits for the first dataplane answer before stopping stale copies */
	if ((r = agent_lb_start(&lbc, &a->lb, err)) < 0)
		return r;
	void *(*mains[])(void *) = { heartbeat_main, poll_main, report_main };
	for (size_t i = 0; i < ARRAY_SIZE(mains); i++) {
		if ((r = pthread_create(&a->threads[i], NULL, mains[i], a)) != 0)
			return berth_error_set(err, r, "start agent thread");
		a->n_threads++;
	}
	a->metrics_conn = xcalloc(1, sizeof(*a->metrics_conn));
	struct agent_metrics_config mc = { .interval = a->metrics_interval,
					   .listen = a->metrics_listen,
					   .node = a->instance_arn ? strrchr(a->instance_arn, '/') + 1 : NULL,
					   .targets = metrics_targets,
					   .send = metrics_send,
					   .lb_counts = metrics_lb_counts,
					   .userdata = a };
	/* after the load balancers: the sampler reads their request counters */
	if ((r = agent_metrics_start(&mc, &a->metrics, err)) < 0)
		return r;
	/* what the runner resumed is reported once more: the server may have missed it */
	_cleanup_json_ json_t *now = agent_runner_status(a->runner);
	size_t i;
	json_t *st;
	json_array_foreach (now, i, st)
		on_report(a, st);
	return 0;
}

static void stopping(void *userdata)
{
	struct agent *a = userdata;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	atomic_store(&a->cancel, true);
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	for (size_t i = 0; i < a->n_threads; i++)
		pthread_join(a->threads[i], NULL);
	a->metrics = agent_metrics_stop(a->metrics); /* before the runner and the lb it reads */
	a->overlay = agent_overlay_stop(a->overlay); /* the dataplane stays: tasks keep running */
	a->lb = agent_lb_stop(a->lb);                /* HAProxy stops with the agent */
	if (a->overlay_conn)
		conn_drop(a->overlay_conn);
	if (a->lb_conn)
		conn_drop(a->lb_conn);
	if (a->dns_running) {
		uint64_t one = 1;
		(void)!write(a->dns_stop, &one, sizeof(one));
		pthread_join(a->dns_thread, NULL);
		a->dns_running = false;
	}
	a->dns = net_dns_free(a->dns);
	safe_close(a->dns_stop);
	if (a->metrics_conn)
		conn_drop(a->metrics_conn);
	a->runner = agent_runner_close(a->runner);
	a->logship = agent_logship_close(a->logship);
	for (size_t i = 0; a->logs_conn && i < LOGSHIP_THREADS; i++)
		conn_drop(&a->logs_conn[i]);
}

static void agent_free(struct agent *a)
{
	char **slots[] = { &a->token,       &a->cluster,       &a->root,          &a->exec_root,
			   &a->bridge,      &a->cgroup_parent, &a->pidfile,       &a->task_network,
			   &a->task_subnet, &a->pause_path,    &a->pull,          &a->dir,
			   &a->ca_file,     &a->cert_file,     &a->key_file,      &a->instance_arn,
			   &a->advertise,   &a->dns_domain,    &a->metrics_listen };
	for (size_t i = 0; i < ARRAY_SIZE(slots); i++)
		free(*slots[i]);
	for (size_t i = 0; i < a->n_servers; i++)
		free(a->servers[i]);
	for (size_t i = 0; i < a->n_attrs; i++)
		free(a->attrs[i]);
	for (size_t i = 0; i < a->n_labels; i++)
		free(a->labels[i]);
	for (size_t i = 0; i < a->n_taints; i++)
		free(a->taints[i]);
	json_decref(a->pending);
	json_decref(a->accepted_stopped);
	free(a->logs_conn);
	free(a->metrics_conn);
	free(a->overlay_conn);
	free(a->lb_conn);
	json_decref(a->overlay_info);
	json_decref(a->registry);
	host_runtime_opts_done(&a->rt);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
}

int agent_main(int argc, char **argv)
{
	struct agent a = { .heartbeat_s = 5,
			   .dns_stop = -1,
			   .metrics_interval = AGENT_METRICS_DEFAULT_INTERVAL,
			   .rt = { .who = "berth agent" } };
	pthread_mutex_init(&a.lock, NULL);
	proc_cond_init_monotonic(&a.cond);
	a.pending = json_object();
	a.accepted_stopped = json_object();
	_cleanup_error_ struct berth_error *err = NULL;
	int r = parse_args(argc, argv, &a);
	if (r != 0) {
		agent_free(&a);
		return r > 0 ? 0 : 1;
	}
	if (!a.root)
		a.root = xstrdup(getenv("BERTH_ROOT") ? getenv("BERTH_ROOT") : "/var/lib/berth");
	if (!a.exec_root)
		a.exec_root = xstrdup(getenv("BERTH_EXEC_ROOT") ? getenv("BERTH_EXEC_ROOT") : "/run/berth");
	a.dir = xasprintf("%s/agent", a.root);
	a.ca_file = xasprintf("%s/ca.pem", a.dir);
	a.cert_file = xasprintf("%s/node.pem", a.dir);
	a.key_file = xasprintf("%s/node-key.pem", a.dir);
	if (r == 0)
		r = host_runtime_opts_finish(&a.rt, &err); /* refused before anything is made */
	if (r == 0)
		r = fs_mkdir_p(a.dir, 0700, &err);
	if (r == 0) {
		log_set_global_field("component", "agent");
		_cleanup_free_ char *sock = xasprintf("unix://%s/berth.sock", a.exec_root);
		struct api_serve_opts so = { .host = { .root = a.root,
						       .exec_root = a.exec_root,
						       .runtimes = &a.rt.runtimes,
						       .bridge = a.bridge,
						       .cgroup_parent = a.cgroup_parent },
					     .listen = { .n_hosts = 1 },
					     .pidfile = a.pidfile,
					     .role = "agent",
					     .started = started,
					     .stopping = stopping,
					     .userdata = &a };
		so.listen.hosts[0] = sock;
		r = api_serve(&so, &err);
	}
	if (r < 0 && err)
		berth_error_print(err, "berth agent");
	int code = r < 0 ? 1 : a.exit_code;
	agent_free(&a);
	return code;
}
