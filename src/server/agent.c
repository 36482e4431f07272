/*
 * agent.c - the server side of the agent protocol (docs/cluster.md), JSON
 * over the API's HTTPS listener under /agent/v1/:
 *
 *   GET  ca         the cluster CA (public; the agent checks its hash against the token)
 *   POST join       token + CSR -> node certificate (no client certificate needed for these two)
 *   POST register   resources, attributes -> container instance, lease
 *   POST heartbeat  keeps the node's lease (agentConnected)
 *   GET  tasks      long poll: the node's desired tasks after a revision
 *   POST status     batched task/container status reports
 *   GET  peers      long poll: the other nodes' overlay endpoints (overlay.c)
 *   GET  dataplane  long poll: load balancers, their targets, discovery names (lb.c)
 *   POST metrics    the node's task samples (metrics.c)
 *
 * Every call but join is authenticated by the node certificate (mutual TLS:
 * the listener verified it against the cluster CA; here its fingerprint must
 * be the one issued to that node, and the node must not be deregistered).
 * Errors are {"error": "...", "code": "..."} with an HTTP status: 400 bad
 * input, 401 no certificate, 403 refused (bad token, revoked node), 404.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>

#include "common/json.h"
#include "common/log.h"
#include "http/http.h"
#include "server/ecs-shape.h"
#include "server/internal.h"
#include "pki/pki.h"
#include "aws/sigv4.h"

#define AGENT_MAX_WAIT_SEC  60
#define AGENT_HEARTBEAT_SEC 5

/* How often an agent heartbeats: three beats per lease, at most every 5 s, so one lost beat never lapses a
 * lease. */
static int heartbeat_interval(const struct server *s)
{
	int every = s->agent_lease_ttl / 3;
	return every < 1 ? 1 : every > AGENT_HEARTBEAT_SEC ? AGENT_HEARTBEAT_SEC : every;
}

static void agent_error(struct http_request *req, unsigned status, const char *code, const char *msg)
{
	http_respond_json(req, status, json_pack("{s:s,s:s}", "error", msg, "code", code));
}

static json_t *body_json(struct http_request *req)
{
	size_t len = 0;
	const char *b = http_request_body(req, &len);
	json_t *j = len ? json_loadb(b, len, 0, NULL) : json_object();
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static void do_join(struct server *s, struct http_request *req)
{
	json_t *in = body_json(req);
	const char *token = json_string_value(json_object_get(in, "token"));
	const char *csr = json_string_value(json_object_get(in, "csr"));
	_cleanup_free_ char *hash = NULL, *secret = NULL;
	char want[65];
	if (!in || !token || !csr) {
		json_decref(in);
		return agent_error(req, 400, "BadRequest", "join needs 'token' and 'csr'");
	}
	if (pki_join_token_parse(token, &hash, &secret) < 0) {
		json_decref(in);
		return agent_error(req, 403, "InvalidToken", "malformed join token");
	}
	aws_sigv4_sha256_hex(s->ca_pem, strlen(s->ca_pem), want);
	if (!streq(hash, want) || strlen(secret) != strlen(s->join_secret) ||
	    CRYPTO_memcmp(secret, s->join_secret, strlen(secret)) != 0) {
		json_decref(in);
		log_fields(LOG_LEVEL_WARN, "agent join refused: bad token", NULL);
		return agent_error(req, 403, "InvalidToken", "join token refused");
	}
	_cleanup_free_ char *id = server_uuid_new();
	_cleanup_free_ char *cert = NULL, *fp = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (pki_sign_csr(s->ca_pem, s->ca_key_pem, csr, id, &cert, &err) < 0 ||
	    pki_cert_fingerprint(cert, &fp, &err) < 0) {
		json_decref(in);
		_cleanup_free_ char *m = berth_error_string(err);
		return agent_error(req, 400, "BadCSR", m);
	}
	_cleanup_free_ char *key = xasprintf("/berth/nodes/%s", id);
	json_t *node = json_pack("{s:s,s:s,s:b,s:f}", "nodeId", id, "fingerprint", fp, "revoked", 0,
				 "joinedAt", server_record_now());
	const char *host = json_string_value(json_object_get(in, "hostname"));
	if (host)
		json_object_set_new(node, "hostname", json_string(host));
	json_decref(in);
	int r = server_record_put(s, key, node, &err);
	json_decref(node);
	if (r < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		return agent_error(req, 500, "ServerError", m);
	}
	log_fields(LOG_LEVEL_INFO, "node joined", "node", id, NULL);
	http_respond_json(req, 200,
			  json_pack("{s:s,s:s,s:s}", "nodeId", id, "certificate", cert, "ca", s->ca_pem));
}

/* The record of the node whose certificate identity is peer ("ID sha256:HEX"), or NULL: unknown, another
 * certificate, revoked. */
static json_t *peer_node(struct server *s, const char *peer)
{
	const char *sp = strchr(peer, ' ');
	_cleanup_free_ char *id = sp ? xstrndup(peer, (size_t)(sp - peer)) : NULL;
	json_t *node = NULL;
	_cleanup_free_ char *key = id && server_name_valid(id, 64) ? xasprintf("/berth/nodes/%s", id) : NULL;
	if (!key || server_record_get(s, key, &node, NULL, NULL) < 0 ||
	    !streq_ptr(json_string_value(json_object_get(node, "fingerprint")), sp + 1) ||
	    json_is_true(json_object_get(node, "revoked"))) {
		json_decref(node);
		return NULL;
	}
	return node;
}

/* The calling node's record, or an error already sent (NULL). */
static json_t *authenticate(struct server *s, struct http_request *req)
{
	const char *peer = http_request_peer(req);
	if (!peer) {
		agent_error(req, 401, "NoCertificate", "agent calls need the node certificate (mutual TLS)");
		return NULL;
	}
	json_t *node = peer_node(s, peer);
	if (!node)
		agent_error(req, 403, "NodeRefused",
			    "node certificate refused (unknown or deregistered node)");
	return node;
}

static json_t *attributes_list(json_t *in)
{
	json_t *out = json_array(), *v;
	const char *k;
	size_t i;
	json_t *x;
	json_t *attrs = json_object_get(in, "attributes");
	if (json_is_object(attrs)) {
		json_object_foreach (attrs, k, v)
			if (json_is_string(v))
				json_array_append_new(out, json_pack("{s:s,s:O}", "name", k, "value", v));
	} else {
		json_array_foreach (attrs, i, x)
			if (json_is_string(json_object_get(x, "name")))
				json_array_append_new(out, json_deep_copy(x));
	}
	const char *defaults[][2] = { { "ecs.os-type", "linux" }, { "ecs.cpu-architecture", "x86_64" } };
	for (i = 0; i < ARRAY_SIZE(defaults); i++) {
		bool have = false;
		size_t k2;
		json_array_foreach (out, k2, x)
			have |= streq_ptr(json_string_value(json_object_get(x, "name")), defaults[i][0]);
		if (!have)
			json_array_append_new(
			    out, json_pack("{s:s,s:s}", "name", defaults[i][0], "value", defaults[i][1]));
	}
	return out;
}

static json_t *resources(json_t *res)
{
	json_int_t cpu = json_integer_value(json_object_get(res, "cpu"));
	json_int_t mem = json_integer_value(json_object_get(res, "memory"));
	json_t *out =
	    json_pack("[{s:s,s:s,s:f,s:I,s:I},{s:s,s:s,s:f,s:I,s:I}]", "name", "CPU", "type", "INTEGER",
		      "doubleValue", 0.0, "longValue", (json_int_t)0, "integerValue", cpu, "name", "MEMORY",
		      "type", "INTEGER", "doubleValue", 0.0, "longValue", (json_int_t)0, "integerValue", mem);
	const char *sets[][2] = { { "ports", "PORTS" }, { "portsUdp", "PORTS_UDP" } };
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		json_t *ports = json_array(), *p;
		size_t k;
		json_array_foreach (json_object_get(res, sets[i][0]), k, p) {
			char buf[16];
			if (json_is_integer(p)) {
				snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(p));
				json_array_append_new(ports, json_string(buf));
			}
		}
		json_array_append_new(out,
				      json_pack("{s:s,s:s,s:f,s:I,s:I,s:o}", "name", sets[i][1], "type",
						"STRINGSET", "doubleValue", 0.0, "longValue", (json_int_t)0,
						"integerValue", (json_int_t)0, "stringSetValue", ports));
	}
	return out;
}

/*
 * Registration taints (--taint) with the time each was first added: a taint
 * the previous registration had keeps its addedAt (NoExecute
 * tolerationSeconds count from it), a new one gets now.
 */
static json_t *register_taints(json_t *taints, json_t *old)
{
	json_t *out = json_array();
	size_t i, k;
	json_t *t, *o;
	json_array_foreach (taints, i, t) {
		if (!json_is_object(t))
			continue;
		json_t *c = json_deep_copy(t);
		double at = server_record_now();
		json_array_foreach (json_object_get(old, "taints"), k, o)
			if (json_equal(json_object_get(o, "key"), json_object_get(t, "key")) &&
			    json_equal(json_object_get(o, "value"), json_object_get(t, "value")) &&
			    json_equal(json_object_get(o, "effect"), json_object_get(t, "effect")) &&
			    json_is_number(json_object_get(o, "addedAt")))
				at = json_number_value(json_object_get(o, "addedAt"));
		json_object_set_new(c, "addedAt", json_real(at));
		json_array_append_new(out, c);
	}
	return out;
}

/* Taints set through the API (`berth node taint`, PutAttributes) outlive an agent's re-registration. */
static void keep_taint_attrs(json_t *inst, json_t *old)
{
	size_t i;
	json_t *a;
	json_array_foreach (json_object_get(old, "attributes"), i, a)
		if (startswith(json_string_value(json_object_get(a, "name")) ?: "", TAINT_ATTR_PREFIX))
			json_array_append(json_object_get(inst, "attributes"), a);
	if (json_object_get(old, "taintAddedAt"))
		json_object_set(inst, "taintAddedAt", json_object_get(old, "taintAddedAt"));
}

/* Grant a lease and bind the node's alive key to it; returns the lease id. */
static int64_t make_alive(struct server *s, const char *id, struct berth_error **err)
{
	int64_t lease = 0;
	_cleanup_free_ char *akey = xasprintf("/berth/alive/%s", id);
	if (store_lease_grant(s->store, s->agent_lease_ttl, &lease, err) < 0 ||
	    store_put(s->store, akey, "1", 1, lease, NULL, err) < 0)
		return -1;
	return lease;
}

/*
 * The overlay part of a register: the underlay address the agent reports, its
 * VTEP MAC, and its task subnet (the one it asks for, else one the server
 * allocates), all kept in the node record. A node that reports neither an
 * address nor a subnet (and holds none) takes no part: *ret_subnet stays NULL.
 */
static int register_overlay(struct server *s, json_t *in, json_t *node, char **ret_subnet,
			    struct berth_error **err)
{
	const char *addr = json_string_value(json_object_get(in, "address"));
	json_t *want = json_object_get(in, "taskSubnet");
	struct in_addr a;
	if (json_object_get(in, "address") && (!addr || inet_pton(AF_INET, addr, &a) != 1))
		return berth_error_msg(err, EINVAL, "invalid 'address': expected the node's IPv4 address");
	if (want && !json_is_string(want))
		return berth_error_msg(err, EINVAL, "invalid 'taskSubnet': expected a CIDR string");
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	if (!addr && !want && !json_object_get(node, "taskSubnet"))
		return 0; /* not an overlay node (simulated nodes, older agents): no subnet */
	_cleanup_free_ char *mac = server_overlay_vtep_mac(id);
	json_object_set_new(node, "vtepMac", json_string(mac));
	if (addr)
		json_object_set_new(node, "address", json_string(addr));
	_cleanup_json_ json_t *fields = json_pack("{s:s}", "vtepMac", mac);
	if (addr)
		json_object_set_new(fields, "address", json_string(addr));
	int r = server_overlay_assign(s, id, json_string_value(want), fields, ret_subnet, err);
	if (r < 0)
		return r;
	json_object_set_new(node, "taskSubnet", json_string(*ret_subnet));
	return 0;
}

static void do_register(struct server *s, struct http_request *req, json_t *node)
{
	json_t *in = body_json(req);
	const char *cl_in = in ? json_string_value(json_object_get(in, "cluster")) : NULL;
	_cleanup_free_ char *cluster = xstrdup(cl_in ? cl_in : "default");
	json_t *res = in ? json_object_get(in, "resources") : NULL;
	if (!in || !json_is_object(res) || !json_is_integer(json_object_get(res, "cpu")) ||
	    !json_is_integer(json_object_get(res, "memory")) ||
	    json_integer_value(json_object_get(res, "cpu")) < 0 ||
	    json_integer_value(json_object_get(res, "memory")) < 0) {
		json_decref(in);
		return agent_error(req, 400, "BadRequest",
				   "register needs resources.cpu and resources.memory");
	}
	struct ecs_call c = { .srv = s };
	json_t *cl = NULL;
	if (server_cluster_resolve(&c, cluster, &cl, NULL) < 0) {
		json_decref(in);
		free(c.msg);
		return agent_error(req, 404, "ClusterNotFound", "cluster not found");
	}
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	_cleanup_free_ char *tail = xasprintf("%s/%s", cluster, id);
	_cleanup_free_ char *arn = server_arn_make(s, "container-instance", tail);
	_cleanup_free_ char *ikey = xasprintf("/berth/instances/%s/%s", cluster, id);
	json_t *old = NULL;
	const char *status = "ACTIVE";
	if (server_record_get(s, ikey, &old, NULL, NULL) == 0 &&
	    streq_ptr(json_string_value(json_object_get(old, "status")), "DRAINING"))
		status = "DRAINING";
	const char *ver = json_string_value(json_object_get(in, "agentVersion"));
	_cleanup_free_ char *ec2 = xasprintf("i-%.17s", id);
	json_t *inst = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:{s:s,s:s,s:s},s:f,s:I,s:s}", "containerInstanceArn", arn,
	    "ec2InstanceId", ec2, "status", status, "nodeId", id, "clusterName", cluster,
	    "registeredResources", resources(res), "attributes", attributes_list(in), "versionInfo",
	    "agentVersion", ver ? ver : "", "agentHash", "", "dockerVersion", "berth", "registeredAt",
	    old ? json_real_value(json_object_get(old, "registeredAt")) : server_record_now(), "version",
	    (json_int_t)1, "capacityProviderName", "");
	json_object_del(inst, "capacityProviderName");
	if (json_is_object(json_object_get(in, "labels")))
		json_object_set(inst, "labels", json_object_get(in, "labels"));
	if (json_is_array(json_object_get(in, "taints")))
		json_object_set_new(inst, "taints", register_taints(json_object_get(in, "taints"), old));
	keep_taint_attrs(inst, old);
	json_decref(old);
	_cleanup_free_ char *subnet = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = register_overlay(s, in, node, &subnet, &err);
	json_decref(in);
	json_decref(cl);
	if (r < 0) {
		json_decref(inst);
		_cleanup_free_ char *m = berth_error_string(err);
		log_fields(LOG_LEVEL_WARN, "node refused: no task subnet", "node", id, "error", m, NULL);
		return agent_error(req,
				   r == -EINVAL                   ? 400
				   : r == -EEXIST || r == -ENOSPC ? 409
								  : 500,
				   r == -ENOSPC   ? "SubnetExhausted"
				   : r == -EEXIST ? "SubnetConflict"
				   : r == -EINVAL ? "BadRequest"
						  : "ServerError",
				   m);
	}
	_cleanup_free_ char *nkey = xasprintf("/berth/nodes/%s", id);
	json_object_set_new(node, "cluster", json_string(cluster));
	int64_t lease = -1;
	if (server_record_put(s, ikey, inst, &err) < 0 || server_record_put(s, nkey, node, &err) < 0 ||
	    (lease = make_alive(s, id, &err)) < 0) {
		json_decref(inst);
		_cleanup_free_ char *m = berth_error_string(err);
		return agent_error(req, 500, "ServerError", m);
	}
	json_decref(inst);
	log_fields(LOG_LEVEL_INFO, "node registered", "node", id, "cluster", cluster, NULL);
	http_respond_json(req, 200,
			  json_pack("{s:s,s:s,s:s,s:I,s:i,s:i,s:s?,s:s,s:i,s:O?}", "containerInstanceArn",
				    arn, "containerInstanceId", id, "cluster", cluster, "leaseId",
				    (json_int_t)lease, "leaseTtl", s->agent_lease_ttl, "heartbeatInterval",
				    heartbeat_interval(s), "taskSubnet", subnet, "clusterCidr",
				    s->cluster_cidr, "vxlanId", s->vxlan_id, "vtepMac",
				    json_object_get(node, "vtepMac")));
}

/* The node's instance record (and its key), or NULL when it has not registered. */
static json_t *node_instance(struct server *s, json_t *node, char **ret_key)
{
	const char *cluster = json_string_value(json_object_get(node, "cluster"));
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	if (!cluster)
		return NULL;
	char *key = xasprintf("/berth/instances/%s/%s", cluster, id);
	json_t *inst = NULL;
	if (server_record_get(s, key, &inst, NULL, NULL) < 0) {
		free(key);
		return NULL;
	}
	*ret_key = key;
	return inst;
}

/* j (taken) as compact JSON and a newline, as http_respond_json() answers; NULL when out of memory. */
static char *json_line(json_t *j)
{
	char *b = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!b)
		return NULL;
	size_t n = strlen(b);
	b = xrealloc(b, n + 2);
	memcpy(b + n, "\n", 2);
	return b;
}

/* A heartbeat's answer (JSON and a newline, malloc'd) for the node's instance record. */
static char *heartbeat_body(struct server *s, json_t *inst)
{
	return json_line(json_pack("{s:O,s:i,s:i}", "status", json_object_get(inst, "status"), "leaseTtl",
				   s->agent_lease_ttl, "heartbeatInterval", heartbeat_interval(s)));
}

/* Keep the lease of node id's alive key alive: 0 and *ret_lease, or -ENOENT (no key, the lease lapsed). */
static int lease_keep(struct server *s, const char *id, int64_t *ret_lease)
{
	_cleanup_free_ char *akey = xasprintf("/berth/alive/%s", id);
	struct store_kv kv = { 0 };
	int64_t ttl = 0;
	int r = store_get(s->store, akey, &kv, NULL);
	if (r == 0)
		r = store_lease_keepalive(s->store, *ret_lease = kv.lease, &ttl, NULL);
	store_kv_done(&kv);
	return r;
}

/*
 * What a heartbeat writes, when it must: a new lease when the node's lapsed (make_alive), and its
 * instance record without disconnectedAt. *ret_inst: the instance record (NULL: not registered,
 * 0 returned); *ret_lease the kept lease and *ret_wrote whether anything was written.
 */
static int heartbeat_apply(struct server *s, json_t *node, json_t **ret_inst, int64_t *ret_lease,
			   bool *ret_wrote, struct berth_error **err)
{
	_cleanup_free_ char *ikey = NULL;
	json_t *inst = node_instance(s, node, &ikey);
	*ret_inst = inst;
	*ret_wrote = false;
	if (!inst)
		return 0;
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	int64_t lease = 0;
	int r = lease_keep(s, id, &lease);
	if (r < 0) {
		*ret_wrote = true;
		if ((lease = make_alive(s, id, err)) < 0)
			return -EIO;
	}
	*ret_lease = lease;
	if (json_object_get(inst, "disconnectedAt")) {
		json_object_del(inst, "disconnectedAt");
		(void)server_record_put(s, ikey, inst, NULL);
		*ret_wrote = true;
	}
	return 0;
}

static void do_heartbeat(struct server *s, struct http_request *req, json_t *node, uint64_t gen)
{
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *inst = NULL;
	int64_t lease = 0;
	bool wrote = false;
	if (heartbeat_apply(s, node, &inst, &lease, &wrote, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		return agent_error(req, 500, "ServerError", m);
	}
	if (!inst)
		return agent_error(req, 404, "NotRegistered", "register before heartbeating");
	char *body = heartbeat_body(s, inst);
	if (!body)
		return agent_error(req, 500, "ServerError", "encode the answer: out of memory");
	if (!wrote && s->hbc) /* a write makes the entry stale anyway */
		server_hb_cache_put(s->hbc, gen, json_string_value(json_object_get(node, "nodeId")),
				    http_request_peer(req), lease, body);
	http_respond(req, 200, "application/json", body, strlen(body));
}

/* ---- heartbeats on the HTTP fast path (hbcache.h) ---- */

/* The writes of heartbeats answered on the fast path, on a thread of their own (node id -> true). */
static void *hb_writer_main(void *arg)
{
	struct server *s = arg;
	pthread_mutex_lock(&s->hbw_lock);
	for (;;) {
		while (!s->hbw_stop && json_object_size(s->hbw_pending) == 0)
			pthread_cond_wait(&s->hbw_cond, &s->hbw_lock);
		if (s->hbw_stop)
			break;
		void *it = json_object_iter(s->hbw_pending);
		_cleanup_free_ char *id = xstrdup(json_object_iter_key(it));
		json_object_del(s->hbw_pending, id);
		pthread_mutex_unlock(&s->hbw_lock);
		_cleanup_free_ char *nkey = xasprintf("/berth/nodes/%s", id);
		_cleanup_json_ json_t *node = NULL, *inst = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		int64_t lease = 0;
		bool wrote = false;
		if (server_record_get(s, nkey, &node, NULL, NULL) == 0 &&
		    heartbeat_apply(s, node, &inst, &lease, &wrote, &err) < 0)
			log_fields(LOG_LEVEL_WARN, "heartbeat: keeping the node's lease failed", "node", id,
				   "error", err ? err->msg : "", NULL);
		pthread_mutex_lock(&s->hbw_lock);
	}
	pthread_mutex_unlock(&s->hbw_lock);
	return NULL;
}

int server_agent_hb_writer_start(struct server *s, struct berth_error **err)
{
	pthread_mutex_init(&s->hbw_lock, NULL);
	pthread_cond_init(&s->hbw_cond, NULL);
	s->hbw_pending = json_object();
	if (pthread_create(&s->hbw_thread, NULL, hb_writer_main, s) != 0)
		return berth_error_set(err, EAGAIN, "start the heartbeat writer thread");
	s->hbw_started = true;
	return 0;
}

void server_agent_hb_writer_stop(struct server *s)
{
	if (!s->hbw_started)
		return;
	pthread_mutex_lock(&s->hbw_lock);
	s->hbw_stop = true;
	pthread_cond_signal(&s->hbw_cond);
	pthread_mutex_unlock(&s->hbw_lock);
	pthread_join(s->hbw_thread, NULL);
	s->hbw_started = false;
	json_decref(s->hbw_pending);
	pthread_mutex_destroy(&s->hbw_lock);
	pthread_cond_destroy(&s->hbw_cond);
}

/* An agent_error() body. */
static char *error_body(const char *code, const char *msg)
{
	return json_line(json_pack("{s:s,s:s}", "error", msg, "code", code));
}

/*
 * A heartbeat on the fast path without a cache entry, from the store: reads only. The answer is the
 * full heartbeat's (403 refused, 404 not registered, 200); what it must write (a new lease after a
 * lapse, disconnectedAt cleared) goes to the writer thread, and the agent's next beat finds it done.
 * Without any write the cache entry is made. *ret_status 0: leave it to the full path.
 */
static char *heartbeat_read_only(struct server *s, const char *peer, unsigned *ret_status)
{
	uint64_t gen = server_hb_cache_gen(s->hbc);
	_cleanup_json_ json_t *node = peer_node(s, peer);
	if (!node) {
		*ret_status = 403;
		return error_body("NodeRefused", "node certificate refused (unknown or deregistered node)");
	}
	_cleanup_free_ char *ikey = NULL;
	_cleanup_json_ json_t *inst = node_instance(s, node, &ikey);
	if (!inst) {
		*ret_status = 404;
		return error_body("NotRegistered", "register before heartbeating");
	}
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	int64_t lease = 0;
	int r = lease_keep(s, id, &lease);
	char *body = heartbeat_body(s, inst);
	if (!body)
		return NULL;
	*ret_status = 200;
	if (r == 0 && !json_object_get(inst, "disconnectedAt")) {
		server_hb_cache_put(s->hbc, gen, id, peer, lease, body);
	} else {
		pthread_mutex_lock(&s->hbw_lock);
		json_object_set_new(s->hbw_pending, id, json_true());
		pthread_cond_signal(&s->hbw_cond);
		pthread_mutex_unlock(&s->hbw_lock);
	}
	return body;
}

/*
 * The fast path of a heartbeat (http_quick_fn, on the TLS loop's thread): the node's cached answer
 * after a lease keepalive (a memory operation with SQLite), else the answer its records give (a few
 * reads, once per node and change), with any write done by the writer thread just after. So an
 * agent's heartbeat connection never needs libmicrohttpd; other calls go there.
 */
bool server_agent_quick(const char *method, const char *path, const char *peer, const char *body,
			size_t body_len, unsigned *ret_status, char **ret_body, size_t *ret_len,
			void *userdata)
{
	struct server *s = userdata;
	(void)body, (void)body_len;
	int64_t lease = 0, ttl = 0;
	char *ans = NULL;
	unsigned status = 200;
	if (!s->hbc || !s->hbw_started || !peer || !streq(method, "POST") ||
	    !streq(path, AGENT_PREFIX "heartbeat"))
		return false;
	if (server_hb_cache_get(s->hbc, peer, &lease, &ans) &&
	    store_lease_keepalive(s->store, lease, &ttl, NULL) < 0) {
		_cleanup_free_ char *id = xstrndup(peer, (size_t)(strchr(peer, ' ') - peer));
		server_hb_cache_drop(s->hbc, id);
		free(ans);
		ans = NULL;
	}
	if (!ans)
		ans = heartbeat_read_only(s, peer, &status);
	if (!ans)
		return false;
	*ret_status = status;
	*ret_len = strlen(ans);
	*ret_body = ans;
	return true;
}

/* The node's tasks that need the agent: not yet STOPPED. */
static json_t *desired_tasks(struct server *s, const char *cluster, const char *arn, struct berth_error **err)
{
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster);
	json_t *all = NULL;
	if (server_record_list(s, tp, &all, err) < 0)
		return NULL;
	json_t *out = json_array();
	size_t i;
	json_t *t;
	json_array_foreach (all, i, t) {
		if (!server_task_active(t) ||
		    !streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn))
			continue;
		struct ecs_call c = { .srv = s };
		json_t *td = NULL;
		if (server_taskdef_resolve(&c, json_string_value(json_object_get(t, "taskDefinitionArn")),
					   &td) == 0)
			json_object_set_new(t, "taskDefinition", td);
		free(c.msg);
		json_array_append(out, t);
	}
	json_decref(all);
	return out;
}

static void answer_tasks(struct server *s, struct http_request *req, json_t *node)
{
	_cleanup_free_ char *ikey = NULL;
	json_t *inst = node_instance(s, node, &ikey);
	if (!inst)
		return agent_error(req, 404, "NotRegistered", "register before polling tasks");
	const char *cluster = json_string_value(json_object_get(node, "cluster"));
	_cleanup_free_ char *arn = xstrdup(json_string_value(json_object_get(inst, "containerInstanceArn")));
	json_t *status = json_incref(json_object_get(inst, "status"));
	json_decref(inst);
	int64_t rev = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *tasks = NULL;
	if (store_revision(s->store, &rev, &err) < 0 || !(tasks = desired_tasks(s, cluster, arn, &err))) {
		json_decref(status);
		_cleanup_free_ char *m = berth_error_string(err);
		return agent_error(req, 500, "ServerError", m);
	}
	http_respond_json(req, 200,
			  json_pack("{s:I,s:o,s:o,s:s}", "revision", (json_int_t)rev, "tasks", tasks,
				    "status", status, "containerInstanceArn", arn));
}

struct tasks_poll {
	struct server *s;
	json_t *node;
};

/* A parked poll's answer, on an HTTP worker. */
static void tasks_poll_answer(struct http_request *req, void *ctx)
{
	struct tasks_poll *p = ctx;
	answer_tasks(p->s, req, p->node);
	json_decref(p->node);
	free(p);
}

/*
 * since > 0 and wait > 0: a long poll. It is parked (longpoll.c) without a
 * thread until a task event concerns this node or wait seconds pass.
 */
static void do_tasks(struct server *s, struct http_request *req, json_t *node)
{
	const char *q_since = http_request_query(req, "since"), *q_wait = http_request_query(req, "wait");
	int64_t since = q_since ? strtoll(q_since, NULL, 10) : 0;
	int wait = q_wait ? atoi(q_wait) : 0;
	wait = MAX(0, MIN(wait, AGENT_MAX_WAIT_SEC));
	if (since > 0 && wait > 0) {
		_cleanup_free_ char *ikey = NULL;
		json_t *inst = node_instance(s, node, &ikey);
		if (!inst)
			return agent_error(req, 404, "NotRegistered", "register before polling tasks");
		const char *cluster = json_string_value(json_object_get(node, "cluster"));
		const char *arn = json_string_value(json_object_get(inst, "containerInstanceArn"));
		struct tasks_poll *p = xcalloc(1, sizeof(*p));
		*p = (struct tasks_poll){ s, json_incref(node) };
		_cleanup_free_ char *prefix = cluster ? xasprintf("/berth/tasks/%s/", cluster) : NULL;
		bool parked = prefix && arn &&
			      server_longpoll_park(s, req, prefix, arn, since, wait, tasks_poll_answer, p);
		json_decref(inst);
		if (parked)
			return;
		json_decref(p->node);
		free(p);
	}
	answer_tasks(s, req, node);
}

static const char *const ORDER[] = { "PROVISIONING", "PENDING",  "ACTIVATING",     "RUNNING",
				     "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED" };

static int status_rank(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(ORDER); i++)
		if (streq(s, ORDER[i]))
			return (int)i;
	return -1;
}

/*
 * o[key] = a copy of v when it has the model's shape (ecs-shape.h: nulls and foreign members dropped),
 * so that DescribeTasks never echoes what a faulty agent sent; a value of the wrong shape is left out.
 * shape NULL: v as it is.
 */
static void set_checked(json_t *o, const char *key, json_t *v, const struct ecs_shape *shape)
{
	if (!v || json_is_null(v))
		return;
	if (!shape) { /* a plain string member */
		json_object_set(o, key, v);
		return;
	}
	json_t *copy = json_deep_copy(v);
	_cleanup_free_ char *why = NULL;
	if (server_ecs_shape_check(shape, copy, &why) == ECS_SHAPE_OK) {
		json_object_set_new(o, key, copy);
		return;
	}
	log_fields(LOG_LEVEL_WARN, "agent report field dropped", "field", key, "why", why, NULL);
	json_decref(copy);
}

/* Apply one report to a task record; NULL on success, else the reason it was refused. */
static const char *apply_report(json_t *t, json_t *rep)
{
	const char *now_s = json_string_value(json_object_get(t, "lastStatus"));
	const char *next = json_string_value(json_object_get(rep, "lastStatus"));
	int from = status_rank(now_s), to = status_rank(next);
	if (to < 0)
		return "invalid lastStatus";
	if (to < from)
		return "status may only move forward";
	double now = server_record_now();
	json_object_set_new(t, "lastStatus", json_string(next));
	if (to >= 3 && !json_object_get(t, "startedAt") && to != 7)
		json_object_set_new(t, "startedAt", json_real(now));
	if (to >= 3 && to != 7) {
		json_object_set_new(t, "connectivity", json_string("CONNECTED"));
		if (!json_object_get(t, "connectivityAt"))
			json_object_set_new(t, "connectivityAt", json_real(now));
	}
	const char *times[] = { "pullStartedAt", "pullStoppedAt" };
	for (size_t i = 0; i < ARRAY_SIZE(times); i++)
		if (json_is_number(json_object_get(rep, times[i])))
			json_object_set(t, times[i], json_object_get(rep, times[i]));
	/* what the node knows: the task's network attachment (awsvpc) and health */
	json_t *att = json_object_get(rep, "attachments");
	if (json_is_array(att) && json_array_size(att) <= 4)
		set_checked(t, "attachments", att, server_ecs_shape_named("Attachments"));
	const char *health = json_string_value(json_object_get(rep, "healthStatus"));
	if (health && (streq(health, "HEALTHY") || streq(health, "UNHEALTHY") || streq(health, "UNKNOWN")))
		json_object_set_new(t, "healthStatus", json_string(health));
	if (to == 7) {
		json_object_set_new(t, "desiredStatus", json_string("STOPPED"));
		json_object_set_new(t, "stoppedAt", json_real(now));
		json_object_set_new(t, "executionStoppedAt", json_real(now));
		const char *keys[] = { "stoppedReason", "stopCode" };
		const struct ecs_shape *shapes[] = { NULL, server_ecs_shape_named("TaskStopCode") };
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if (json_is_string(json_object_get(rep, keys[i])) && !json_object_get(t, keys[i]))
				set_checked(t, keys[i], json_object_get(rep, keys[i]), shapes[i]);
		if (!json_object_get(t, "stopCode"))
			json_object_set_new(t, "stopCode", json_string("EssentialContainerExited"));
	}
	size_t i, k;
	json_t *rc, *c;
	json_array_foreach (json_object_get(rep, "containers"), i, rc) {
		json_array_foreach (json_object_get(t, "containers"), k, c) {
			if (!streq_ptr(json_string_value(json_object_get(c, "name")),
				       json_string_value(json_object_get(rc, "name"))))
				continue;
			const char *fields[] = { "lastStatus",      "exitCode",          "reason",
						 "networkBindings", "networkInterfaces", "runtimeId",
						 "healthStatus" };
			const struct ecs_shape *cs = server_ecs_shape_named("Container");
			for (size_t f = 0; f < ARRAY_SIZE(fields); f++)
				set_checked(c, fields[f], json_object_get(rc, fields[f]),
					    server_ecs_shape_member(cs, fields[f]));
		}
	}
	json_object_set_new(t, "version",
			    json_integer(json_integer_value(json_object_get(t, "version")) + 1));
	return NULL;
}

static json_t *report_one(struct server *s, const char *cluster, const char *arn, json_t *rep)
{
	const char *task_arn = json_string_value(json_object_get(rep, "taskArn"));
	const char *id = task_arn ? server_arn_tail(task_arn) : "";
	json_t *result = json_pack("{s:s}", "taskArn", task_arn ? task_arn : "");
	_cleanup_free_ char *key =
	    server_name_valid(id, 64) ? xasprintf("/berth/tasks/%s/%s", cluster, id) : NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *t = NULL;
		int64_t rev;
		if (!key || server_record_get(s, key, &t, &rev, NULL) < 0 ||
		    !streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn)) {
			json_decref(t);
			json_object_set_new(result, "accepted", json_false());
			json_object_set_new(result, "error", json_string("no such task on this node"));
			return result;
		}
		const char *why = apply_report(t, rep);
		if (why) {
			json_decref(t);
			json_object_set_new(result, "accepted", json_false());
			json_object_set_new(result, "error", json_string(why));
			return result;
		}
		bool ok = false;
		int r = server_record_cas(s, key, t, rev, &ok, NULL);
		json_decref(t);
		if (r < 0)
			break;
		if (ok) {
			json_object_set_new(result, "accepted", json_true());
			return result;
		}
	}
	json_object_set_new(result, "accepted", json_false());
	json_object_set_new(result, "error", json_string("store busy; report again"));
	return result;
}

/* Reports applied together per store transaction (etcd refuses more than 128 operations in one). */
#define STATUS_TXN_MAX 64

/*
 * Apply reports [from, to) of a batch in one store transaction: one commit
 * (one fsync) for the lot instead of one each, which is what a node starting
 * ten tasks at once sends. Results for those that cannot apply (unknown task,
 * backwards move) are set at once; *all_done is false when the transaction
 * lost a race with another writer and nothing was written (or a task came
 * twice): the caller then applies the ones without a result one by one
 * (report_one retries its own compare-and-swap).
 */
static void report_many(struct server *s, const char *cluster, const char *arn, json_t *reports, size_t from,
			size_t to, json_t *results, bool *all_done)
{
	struct store_cmp cmps[STATUS_TXN_MAX];
	struct store_op ops[STATUS_TXN_MAX];
	char *keys[STATUS_TXN_MAX], *values[STATUS_TXN_MAX];
	size_t idx[STATUS_TXN_MAX], n = 0;
	bool deferred = false;
	for (size_t i = from; i < to; i++) {
		json_t *rep = json_array_get(reports, i);
		const char *task_arn = json_string_value(json_object_get(rep, "taskArn"));
		const char *id = task_arn ? server_arn_tail(task_arn) : "";
		json_t *res = json_array_get(results, i);
		char *key = server_name_valid(id, 64) ? xasprintf("/berth/tasks/%s/%s", cluster, id) : NULL;
		json_t *t = NULL;
		int64_t rev = 0;
		const char *why = NULL;
		if (!key || server_record_get(s, key, &t, &rev, NULL) < 0 ||
		    !streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), arn))
			why = "no such task on this node";
		else
			why = apply_report(t, rep);
		bool again =
		    false; /* the same task twice in one batch: the later one after this transaction */
		for (size_t k = 0; !why && k < n; k++)
			again |= streq(keys[k], key);
		if (why || again) {
			if (why) {
				json_object_set_new(res, "accepted", json_false());
				json_object_set_new(res, "error", json_string(why));
			}
			deferred |= again;
			json_decref(t);
			free(key);
			continue;
		}
		keys[n] = key;
		values[n] = json_dumps(t, JSON_COMPACT);
		json_decref(t);
		cmps[n] = (struct store_cmp){ key, STORE_CMP_MOD, STORE_CMP_EQUAL, rev };
		ops[n] = (struct store_op){ STORE_OP_PUT, key, values[n], strlen(values[n]), 0 };
		idx[n++] = i;
	}
	bool ok = n == 0;
	if (n && store_txn(s->store, cmps, n, ops, n, &ok, NULL, NULL) < 0)
		ok = false;
	for (size_t k = 0; k < n; k++) {
		if (ok)
			json_object_set_new(json_array_get(results, idx[k]), "accepted", json_true());
		free(keys[k]);
		free(values[k]);
	}
	*all_done = ok && !deferred;
}

static void do_status(struct server *s, struct http_request *req, json_t *node)
{
	json_t *in = body_json(req);
	json_t *reports = in ? json_object_get(in, "tasks") : NULL;
	if (!json_is_array(reports) || json_array_size(reports) > 1000) {
		json_decref(in);
		return agent_error(req, 400, "BadRequest",
				   "status needs 'tasks': a list of at most 1000 reports");
	}
	_cleanup_free_ char *ikey = NULL;
	json_t *inst = node_instance(s, node, &ikey);
	if (!inst) {
		json_decref(in);
		return agent_error(req, 404, "NotRegistered", "register before reporting");
	}
	const char *cluster = json_string_value(json_object_get(node, "cluster"));
	const char *arn = json_string_value(json_object_get(inst, "containerInstanceArn"));
	json_t *results = json_array();
	size_t i;
	json_t *rep;
	json_array_foreach (reports, i, rep) {
		const char *task_arn = json_string_value(json_object_get(rep, "taskArn"));
		json_array_append_new(results, json_pack("{s:s}", "taskArn", task_arn ? task_arn : ""));
	}
	for (size_t from = 0; from < json_array_size(reports); from += STATUS_TXN_MAX) {
		size_t to = MIN(from + STATUS_TXN_MAX, json_array_size(reports));
		bool done = false;
		report_many(s, cluster, arn, reports, from, to, results, &done);
		for (i = from; !done && i < to; i++) /* a race with another writer: one by one */
			if (!json_object_get(json_array_get(results, i), "accepted"))
				json_array_set_new(results, i,
						   report_one(s, cluster, arn, json_array_get(reports, i)));
	}
	json_decref(inst);
	json_decref(in);
	http_respond_json(req, 200, json_pack("{s:o}", "results", results));
}

/* Credentials for the cluster registry (docs/ecr.md): a node pulls task images with them. */
static void do_registry(struct server *s, struct http_request *req)
{
	_cleanup_free_ char *replica = NULL, *ep = NULL;
	if (server_ecr_locate(s, &replica, &ep, NULL) < 0) /* here or on another replica */
		return agent_error(req, 404, "NoRegistry", "no server replica runs a registry (--registry)");
	int64_t expires = (int64_t)time(NULL) + AGENT_REGISTRY_TOKEN_TTL;
	_cleanup_free_ char *pw = server_ecr_issue_password(s, expires);
	http_respond_json(req, 200,
			  json_pack("{s:s,s:s,s:s,s:I}", "endpoint", ep, "username", "AWS", "password", pw,
				    "expiresAt", (json_int_t)expires));
}

void server_agent_handle(struct server *s, struct http_request *req)
{
	const char *path = http_request_path(req) + strlen(AGENT_PREFIX);
	const char *method = http_request_method(req);
	bool post = streq(method, "POST");
	if (streq(path, "join") && post)
		return do_join(s, req);
	if (streq(path, "ca") && streq(method, "GET")) /* public: the agent checks it against its token */
		return http_respond(req, 200, "application/x-pem-file", xstrdup(s->ca_pem),
				    strlen(s->ca_pem));
	if (!(post && (streq(path, "register") || streq(path, "heartbeat") || streq(path, "status") ||
		       streq(path, "logs") || streq(path, "metrics") || streq(path, "targethealth"))) &&
	    !(streq(method, "GET") && (streq(path, "tasks") || streq(path, "peers") ||
				       streq(path, "dataplane") || streq(path, "registry"))))
		return agent_error(req, 404, "NotFound", "no such agent call");
	uint64_t gen = s->hbc ? server_hb_cache_gen(s->hbc) : 0; /* before the reads an entry is made of */
	json_t *node = authenticate(s, req);
	if (!node)
		return;
	if (streq(path, "register"))
		do_register(s, req, node);
	else if (streq(path, "heartbeat"))
		do_heartbeat(s, req, node, gen);
	else if (streq(path, "tasks"))
		do_tasks(s, req, node);
	else if (streq(path, "peers"))
		server_overlay_handle_peers(s, req, node);
	else if (streq(path, "dataplane"))
		server_lb_handle_dataplane(s, req, node);
	else if (streq(path, "registry"))
		do_registry(s, req);
	else if (streq(path, "logs"))
		server_logs_agent_ingest(s, req);
	else if (streq(path, "metrics"))
		server_metrics_agent_ingest(s, req, node);
	else if (streq(path, "targethealth"))
		server_lb_handle_target_health(s, req, node);
	else
		do_status(s, req, node);
	json_decref(node);
}
