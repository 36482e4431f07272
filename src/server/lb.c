/*
 * lb.c - load balancer objects and the dataplane long poll (lb.h,
 * docs/lb.md). berth's own operations on the ECS endpoint
 * (BerthCreateLoadBalancer, BerthDescribeLoadBalancers,
 * BerthDeleteLoadBalancer, BerthDescribeTargetHealth, BerthAttachLoadBalancer,
 * BerthDetachLoadBalancer, BerthDrainTargets; `berth lb` calls them) and
 * GET /agent/v1/dataplane, which hands every agent of a cluster its load
 * balancers with their current targets and the cluster's discovery names.
 *
 * Trade-off: targets are not stored; they are computed from the task,
 * service and attachment records on every dataplane answer (the rules live in
 * lb-core.c), so nothing can drift from the tasks. The answer carries a hash;
 * a poll that sends the hash it has waits until the computed answer differs.
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <strings.h>

#include "common/json.h"
#include "common/log.h"
#include "http/http.h"
#include "server/internal.h"
#include "server/lb.h"
#include "aws/sigv4.h"
#include "pki/pki.h"

#define LB_KEY      LB_PREFIX "loadbalancers/"
#define TG_KEY      LB_PREFIX "targetgroups/"
#define CERT_KEY    LB_PREFIX "certs/"
#define PORT_KEY    LB_PREFIX "ports/"
#define ATTACH_KEY  LB_PREFIX "attachments/"
#define DP_MAX_WAIT 60
#define NOT_FOUND   "LoadBalancerNotFoundException"

/* Ports the agents keep for themselves (agent.c registers them as used). */
static const int RESERVED_PORTS[] = { 22, 53, 2375, 2376, 51678, 51679 };

static char *elb_arn(struct server *s, const char *kind, const char *name)
{
	_cleanup_free_ char *id = pki_random_hex(8);
	return xasprintf("arn:aws:elasticloadbalancing:%s:%s:%s/%s/%s", s->region, s->account, kind, name,
			 id);
}

/* ---- validation ---- */

/* 0 when cert and key are PEM, the key is the certificate's; else an InvalidParameterException. */
static int check_pem(struct ecs_call *c, const char *cert, const char *key)
{
	if (strlen(cert) > LB_PEM_MAX || strlen(key) > LB_PEM_MAX)
		return server_ecs_fail(c, "InvalidParameterException",
				       "certificate and key must be under 64 KiB.");
	BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	int r = 0;
	if (!x)
		r = server_ecs_fail(c, "InvalidParameterException",
				    "certificate: not a PEM X.509 certificate (BEGIN CERTIFICATE).");
	else if (!k)
		r = server_ecs_fail(c, "InvalidParameterException",
				    "privateKey: not an unencrypted PEM private key.");
	else if (X509_check_private_key(x, k) != 1)
		r = server_ecs_fail(c, "InvalidParameterException",
				    "privateKey does not match the certificate's public key.");
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return r;
}

/* An int field with a default and a range (InvalidParameterException naming it). */
static int int_field(struct ecs_call *c, json_t *in, const char *key, int64_t def, int64_t min, int64_t max,
		     int64_t *ret)
{
	*ret = def;
	return server_ecs_int(c, in, key, min, max, ret);
}

/* The target group record of a create call (validated), or -1 with the error in c. */
static int target_group_of(struct ecs_call *c, json_t *in, const char *name, int64_t port, const char *proto,
			   json_t **ret)
{
	const char *path;
	int64_t interval, healthy, unhealthy, delay;
	if (server_ecs_str(c, in, "healthCheckPath", false, &path) < 0 ||
	    int_field(c, in, "healthCheckIntervalSeconds", LB_DEFAULT_INTERVAL, 1, 300, &interval) < 0 ||
	    int_field(c, in, "healthyThresholdCount", LB_DEFAULT_HEALTHY, 1, 10, &healthy) < 0 ||
	    int_field(c, in, "unhealthyThresholdCount", LB_DEFAULT_UNHEALTHY, 1, 10, &unhealthy) < 0 ||
	    int_field(c, in, "deregistrationDelay", LB_DEFAULT_DEREG_DELAY, 0, 3600, &delay) < 0)
		return -1;
	if (path && !streq(proto, "HTTP"))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "healthCheckPath needs protocol HTTP (TCP targets are checked by connecting).");
	if (path && !server_lb_health_path_valid(path))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "healthCheckPath '%s' must start with '/' and hold no blanks (at most 1024 "
		    "characters).",
		    path);
	_cleanup_free_ char *arn = elb_arn(c->srv, "targetgroup", name);
	json_t *tg =
	    json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:f}", "targetGroupArn", arn, "targetGroupName",
		      name, "loadBalancerName", name, "port", (json_int_t)port, "protocol", proto,
		      "deregistrationDelay", (json_int_t)delay, "healthCheckIntervalSeconds",
		      (json_int_t)interval, "healthyThresholdCount", (json_int_t)healthy,
		      "unhealthyThresholdCount", (json_int_t)unhealthy, "createdAt", server_record_now());
	if (streq(proto, "HTTP"))
		json_object_set_new(tg, "healthCheckPath", json_string(path ? path : "/"));
	json_object_set_new(tg, "targetType", json_string("ip"));
	*ret = tg;
	return 0;
}

struct create_in {
	const char *name, *proto_in, *cert, *key;
	char *cluster;
	int64_t port;
	char proto[5];
};

static int create_parse(struct ecs_call *c, json_t *in, struct create_in *ci)
{
	const char *cref;
	ci->port = -1;
	if (server_ecs_str(c, in, "name", true, &ci->name) < 0 ||
	    server_ecs_str(c, in, "cluster", false, &cref) < 0 ||
	    server_ecs_str(c, in, "protocol", false, &ci->proto_in) < 0 ||
	    server_ecs_str(c, in, "certificate", false, &ci->cert) < 0 ||
	    server_ecs_str(c, in, "privateKey", false, &ci->key) < 0 ||
	    server_ecs_int(c, in, "port", 1, 65535, &ci->port) < 0)
		return -1;
	if (!server_lb_name_valid(ci->name))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "name '%s': 1 to 32 letters, digits and hyphens, not starting or ending with a "
		    "hyphen.",
		    ci->name);
	if (ci->port < 0)
		return server_ecs_fail(c, "InvalidParameterException", "port can not be blank.");
	for (size_t i = 0; i < ARRAY_SIZE(RESERVED_PORTS); i++)
		if (ci->port == RESERVED_PORTS[i])
			return server_ecs_fail(
			    c, "InvalidParameterException",
			    "port %lld is reserved on the nodes (the agent and the resolver use it).",
			    (long long)ci->port);
	const char *p = ci->proto_in ? ci->proto_in : "HTTP";
	if (!strcasecmp(p, "HTTP") || !strcasecmp(p, "TCP"))
		snprintf(ci->proto, sizeof(ci->proto), "%s", !strcasecmp(p, "HTTP") ? "HTTP" : "TCP");
	else
		return server_ecs_fail(c, "InvalidParameterException", "protocol '%s': expected HTTP or TCP.",
				       p);
	if (!ci->cert != !ci->key)
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "certificate and privateKey go together (TLS termination needs both).");
	if (ci->cert && check_pem(c, ci->cert, ci->key) < 0)
		return -1;
	return server_cluster_resolve(c, cref, NULL, &ci->cluster);
}

static bool key_exists(struct server *s, const char *key)
{
	struct store_kv kv = { 0 };
	bool found = store_get(s->store, key, &kv, NULL) == 0;
	store_kv_done(&kv);
	return found;
}

/* Why the create transaction failed: which of the compared keys exists. */
static int create_conflict(struct ecs_call *c, const struct create_in *ci, const char *port_key)
{
	_cleanup_free_ char *lkey = xasprintf(LB_KEY "%s", ci->name),
			    *tkey = xasprintf(TG_KEY "%s", ci->name);
	_cleanup_json_ json_t *claim = NULL;
	if (key_exists(c->srv, lkey) || key_exists(c->srv, tkey))
		return server_ecs_fail(c, "DuplicateLoadBalancerNameException",
				       "A load balancer with the name '%s' already exists.", ci->name);
	if (server_record_get(c->srv, port_key, &claim, NULL, NULL) == 0)
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "port %lld is already used by load balancer '%s' in cluster '%s'.", (long long)ci->port,
		    json_string_value(json_object_get(claim, "loadBalancerName")), ci->cluster);
	return server_ecs_fail(c, "ServerException", "the load balancer changed concurrently; retry");
}

int server_ecs_berth_create_load_balancer(struct ecs_call *c, json_t *in, json_t **out)
{
	struct create_in ci = { 0 };
	_cleanup_json_ json_t *tg = NULL, *lb = NULL, *claim = NULL, *secret = NULL;
	int r = create_parse(c, in, &ci);
	if (r >= 0)
		r = target_group_of(c, in, ci.name, ci.port, ci.proto, &tg);
	_cleanup_free_ char *cluster = ci.cluster;
	if (r < 0)
		return -1;
	_cleanup_free_ char *arn =
	    elb_arn(c->srv, streq(ci.proto, "HTTP") ? "loadbalancer/app" : "loadbalancer/net", ci.name);
	lb =
	    json_pack("{s:s,s:s,s:s,s:I,s:s,s:b,s:O,s:s,s:f}", "loadBalancerName", ci.name, "loadBalancerArn",
		      arn, "cluster", cluster, "port", (json_int_t)ci.port, "protocol", ci.proto, "tls",
		      ci.cert != NULL, "targetGroupArn", json_object_get(tg, "targetGroupArn"),
		      "targetGroupName", ci.name, "createdAt", server_record_now());
	claim = json_pack("{s:s}", "loadBalancerName", ci.name);
	_cleanup_free_ char *lkey = xasprintf(LB_KEY "%s", ci.name), *tkey = xasprintf(TG_KEY "%s", ci.name),
			    *ckey = xasprintf(CERT_KEY "%s", ci.name),
			    *pkey = xasprintf(PORT_KEY "%s/%lld", cluster, (long long)ci.port);
	_cleanup_free_ char *lv = json_dumps(lb, JSON_COMPACT), *tv = json_dumps(tg, JSON_COMPACT),
			    *pv = json_dumps(claim, JSON_COMPACT), *cv = NULL;
	struct store_op ops[4] = { { STORE_OP_PUT, lkey, lv, strlen(lv), 0 },
				   { STORE_OP_PUT, tkey, tv, strlen(tv), 0 },
				   { STORE_OP_PUT, pkey, pv, strlen(pv), 0 } };
	size_t nops = 3;
	if (ci.cert) {
		secret = json_pack("{s:s,s:s}", "certificate", ci.cert, "privateKey", ci.key);
		cv = json_dumps(secret, JSON_COMPACT);
		ops[nops++] = (struct store_op){ STORE_OP_PUT, ckey, cv, strlen(cv), 0 };
	}
	struct store_cmp cmps[3] = { { lkey, STORE_CMP_MOD, STORE_CMP_EQUAL, 0, NULL, 0 },
				     { tkey, STORE_CMP_MOD, STORE_CMP_EQUAL, 0, NULL, 0 },
				     { pkey, STORE_CMP_MOD, STORE_CMP_EQUAL, 0, NULL, 0 } };
	bool ok = false;
	_cleanup_error_ struct berth_error *err = NULL;
	if (store_txn(c->srv->store, cmps, 3, ops, nops, &ok, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	if (!ok)
		return create_conflict(c, &ci, pkey);
	log_fields(LOG_LEVEL_INFO, "load balancer created", "name", ci.name, "cluster", cluster, NULL);
	*out = json_pack("{s:O,s:O}", "loadBalancer", lb, "targetGroup", tg);
	return 0;
}

/* ---- reading ---- */

/* The load balancer and target group records of name; LoadBalancerNotFoundException. */
static int lb_get(struct ecs_call *c, const char *name, json_t **ret_lb, json_t **ret_tg)
{
	_cleanup_free_ char *lkey = server_lb_name_valid(name) ? xasprintf(LB_KEY "%s", name) : NULL;
	_cleanup_free_ char *tkey = lkey ? xasprintf(TG_KEY "%s", name) : NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *lb = NULL, *tg = NULL;
	int r = lkey ? server_record_get(c->srv, lkey, &lb, NULL, &err) : -ENOENT;
	if (r == 0)
		r = server_record_get(c->srv, tkey, &tg, NULL, &err);
	if (r == -ENOENT) {
		json_decref(lb);
		return server_ecs_fail(c, NOT_FOUND, "Load balancer '%s' not found.", name);
	}
	if (r < 0)
		return server_ecs_internal(c, err);
	*ret_lb = lb;
	if (ret_tg)
		*ret_tg = tg;
	else
		json_decref(tg);
	return 0;
}

/* A name or a target group / load balancer ARN: the name (borrowed from ref). */
static const char *name_of(const char *ref, char **tmp)
{
	if (!startswith(ref, "arn:aws:elasticloadbalancing:"))
		return ref;
	/* ...:targetgroup/NAME/ID or ...:loadbalancer/app/NAME/ID */
	const char *end = strrchr(ref, '/');
	const char *start = end;
	while (start && start > ref && start[-1] != '/')
		start--;
	*tmp = end && start ? xstrndup(start, (size_t)(end - start)) : xstrdup(ref);
	return *tmp;
}

static int attachments_of(struct server *s, const char *name, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *p = xasprintf(ATTACH_KEY "%s/", name);
	return server_record_list(s, p, ret, err);
}

static json_t *lb_view(struct server *s, json_t *lb, json_t *tg)
{
	json_t *v = json_deep_copy(lb);
	json_object_set(v, "targetGroup", tg);
	json_t *att = NULL;
	if (attachments_of(s, json_string_value(json_object_get(lb, "loadBalancerName")), &att, NULL) == 0)
		json_object_set_new(v, "attachments", att);
	return v;
}

int server_ecs_berth_describe_load_balancers(struct ecs_call *c, json_t *in, json_t **out)
{
	json_t *names;
	if (server_ecs_strv(c, in, "names", &names) < 0)
		return -1;
	json_t *list = json_array();
	_cleanup_error_ struct berth_error *err = NULL;
	if (!json_array_size(names)) {
		json_t *all = NULL;
		if (server_record_list(c->srv, LB_KEY, &all, &err) < 0) {
			json_decref(list);
			return server_ecs_internal(c, err);
		}
		size_t i;
		json_t *lb;
		json_array_foreach (all, i, lb) {
			_cleanup_free_ char *tkey = xasprintf(
			    TG_KEY "%s", json_string_value(json_object_get(lb, "loadBalancerName")));
			_cleanup_json_ json_t *tg = NULL;
			(void)server_record_get(c->srv, tkey, &tg, NULL, NULL);
			json_array_append_new(list, lb_view(c->srv, lb, tg));
		}
		json_decref(all);
	}
	size_t i;
	json_t *n;
	json_array_foreach (names, i, n) {
		_cleanup_free_ char *tmp = NULL;
		_cleanup_json_ json_t *lb = NULL, *tg = NULL;
		if (lb_get(c, name_of(json_string_value(n), &tmp), &lb, &tg) < 0) {
			json_decref(list);
			return -1;
		}
		json_array_append_new(list, lb_view(c->srv, lb, tg));
	}
	*out = json_pack("{s:o}", "loadBalancers", list);
	return 0;
}

/* The service record or attachment that keeps the target group in use; NULL when none. */
static char *tg_user(struct server *s, const char *name, const char *tg_arn)
{
	json_t *all = NULL;
	char *who = NULL;
	if (server_record_list(s, "/berth/services/", &all, NULL) == 0) {
		size_t i, k;
		json_t *svc, *l;
		json_array_foreach (all, i, svc) {
			if (streq_ptr(json_string_value(json_object_get(svc, "status")), "INACTIVE"))
				continue;
			json_array_foreach (json_object_get(svc, "loadBalancers"), k, l)
				if (!who && streq_ptr(json_string_value(json_object_get(l, "targetGroupArn")),
						      tg_arn))
					who =
					    xasprintf("service '%s'",
						      json_string_value(json_object_get(svc, "serviceArn")));
		}
		json_decref(all);
	}
	if (!who && attachments_of(s, name, &all, NULL) == 0) {
		if (json_array_size(all))
			who = xasprintf(
			    "service '%s' (attached with berth lb attach)",
			    json_string_value(json_object_get(json_array_get(all, 0), "serviceName")));
		json_decref(all);
	}
	return who;
}

int server_ecs_berth_delete_load_balancer(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	if (server_ecs_str(c, in, "name", true, &ref) < 0)
		return -1;
	_cleanup_free_ char *tmp = NULL;
	const char *name = name_of(ref, &tmp);
	for (int attempt = 0; attempt < 10; attempt++) {
		_cleanup_json_ json_t *lb = NULL, *tg = NULL;
		if (lb_get(c, name, &lb, &tg) < 0)
			return -1;
		const char *tg_arn = json_string_value(json_object_get(tg, "targetGroupArn"));
		_cleanup_free_ char *who = tg_user(c->srv, name, tg_arn);
		if (who)
			return server_ecs_fail(
			    c, "ResourceInUseException",
			    "Target group '%s' is currently in use by %s; remove it from the service "
			    "first.",
			    tg_arn, who);
		_cleanup_free_ char *lkey = xasprintf(LB_KEY "%s", name),
				    *tkey = xasprintf(TG_KEY "%s", name),
				    *ckey = xasprintf(CERT_KEY "%s", name),
				    *pkey = xasprintf(
					PORT_KEY "%s/%lld", json_string_value(json_object_get(lb, "cluster")),
					(long long)json_integer_value(json_object_get(lb, "port")));
		struct store_kv kv = { 0 };
		int64_t rev = 0;
		if (store_get(c->srv->store, lkey, &kv, NULL) == 0)
			rev = kv.mod_revision;
		store_kv_done(&kv);
		struct store_op ops[] = { { STORE_OP_DELETE, lkey, NULL, 0, 0 },
					  { STORE_OP_DELETE, tkey, NULL, 0, 0 },
					  { STORE_OP_DELETE, ckey, NULL, 0, 0 },
					  { STORE_OP_DELETE, pkey, NULL, 0, 0 } };
		struct store_cmp cmp = { lkey, STORE_CMP_MOD, STORE_CMP_EQUAL, rev, NULL, 0 };
		bool ok = false;
		_cleanup_error_ struct berth_error *err = NULL;
		if (store_txn(c->srv->store, &cmp, 1, ops, ARRAY_SIZE(ops), &ok, NULL, &err) < 0)
			return server_ecs_internal(c, err);
		if (ok) {
			log_fields(LOG_LEVEL_INFO, "load balancer deleted", "name", name, NULL);
			*out = json_pack("{s:O}", "loadBalancer", lb);
			return 0;
		}
	}
	return server_ecs_fail(c, "ServerException", "the load balancer changed concurrently; retry");
}

/* ---- membership ---- */

struct checks_cache {
	struct server *s;
	json_t *seen; /* taskDefinitionArn -> {"checks": bool, "stack": string|null} */
};

/* What discovery and membership read of a task definition, cached per pass. */
static const json_t *taskdef_facts(struct checks_cache *cc, const char *arn)
{
	json_t *v = json_object_get(cc->seen, arn);
	if (v)
		return v;
	struct ecs_call c = { .srv = cc->s };
	_cleanup_json_ json_t *td = NULL;
	bool any = false;
	const char *stack = NULL;
	if (server_taskdef_resolve(&c, arn, &td) == 0) {
		size_t i;
		json_t *d;
		json_array_foreach (json_object_get(td, "containerDefinitions"), i, d) {
			json_t *ess = json_object_get(d, "essential");
			any |=
			    (!ess || json_is_true(ess)) && json_is_object(json_object_get(d, "healthCheck"));
			stack = stack
				    ?: json_string_value(json_object_get(json_object_get(d, "dockerLabels"),
									 LB_STACK_LABEL));
		}
	}
	free(c.msg);
	v = json_pack("{s:b,s:s?}", "checks", any, "stack", stack);
	json_object_set_new(cc->seen, arn, v);
	return v;
}

static bool has_checks(void *userdata, const char *arn)
{
	return arn && json_is_true(json_object_get(taskdef_facts(userdata, arn), "checks"));
}

static const char *stack_of(void *userdata, const char *arn)
{
	return arn ? json_string_value(json_object_get(taskdef_facts(userdata, arn), "stack")) : NULL;
}

/* Everything the membership rules read for one cluster. */
struct cluster_state {
	json_t *tasks, *services, *instances, *nodes;
	struct checks_cache cc;
};

static void cluster_state_done(struct cluster_state *cs)
{
	json_decref(cs->tasks);
	json_decref(cs->services);
	json_decref(cs->instances);
	json_decref(cs->nodes);
	json_decref(cs->cc.seen);
}

static int cluster_state_load(struct server *s, const char *cluster, struct cluster_state *cs,
			      struct berth_error **err)
{
	*cs = (struct cluster_state){ .cc = { s, json_object() } };
	_cleanup_free_ char *tp = xasprintf("/berth/tasks/%s/", cluster),
			    *sp = xasprintf("/berth/services/%s/", cluster),
			    *ip = xasprintf("/berth/instances/%s/", cluster);
	int r = server_record_list(s, tp, &cs->tasks, err);
	if (r >= 0)
		r = server_record_list(s, sp, &cs->services, err);
	if (r >= 0)
		r = server_record_list(s, ip, &cs->instances, err);
	if (r >= 0)
		r = server_record_list(s, "/berth/nodes/", &cs->nodes, err);
	if (r < 0)
		cluster_state_done(cs);
	return r;
}

static json_t *targets_of(struct server *s, struct cluster_state *cs, json_t *lb, bool all_states)
{
	const char *name = json_string_value(json_object_get(lb, "loadBalancerName"));
	_cleanup_json_ json_t *att = NULL;
	(void)attachments_of(s, name, &att, NULL);
	struct lb_membership m = { .cluster = json_string_value(json_object_get(lb, "cluster")),
				   .tg_arn = json_string_value(json_object_get(lb, "targetGroupArn")),
				   .services = cs->services,
				   .attachments = att,
				   .nodes = cs->nodes,
				   .instances = cs->instances,
				   .has_checks = has_checks,
				   .userdata = &cs->cc };
	return server_lb_targets(&m, cs->tasks, all_states);
}

int server_lb_health_reports(struct server *s, const char *cluster, json_t **ret_reports, json_t **ret_alive,
			     struct berth_error **err)
{
	_cleanup_free_ char *prefix = xasprintf(LB_HEALTH_PREFIX "%s/", cluster ? cluster : "");
	json_t *reports = NULL;
	if (!cluster || server_record_list(s, prefix, &reports, err) < 0)
		return -1;
	json_t *alive = json_object();
	size_t i;
	json_t *r;
	json_array_foreach (reports, i, r) {
		const char *node = json_string_value(json_object_get(r, "nodeId"));
		if (node)
			json_object_set_new(alive, node, json_boolean(server_instance_connected(s, node)));
	}
	*ret_reports = reports;
	*ret_alive = alive;
	return 0;
}

/*
 * ELB's TargetHealth of a target: the server's state (membership) and, for
 * one in rotation, HAProxy's on the nodes (server_lb_health_merge): failing checks
 * on most nodes make it unhealthy, not yet checked initial. New reference.
 */
static json_t *target_health(json_t *state, json_t *seen)
{
	const char *st = json_string_value(state);
	json_t *th = json_pack("{s:O}", "state", state);
	if (streq_ptr(st, "healthy") && seen) {
		json_object_set(th, "state", json_object_get(seen, "state"));
		json_object_set(th, "reason", json_object_get(seen, "reason"));
		json_object_set(th, "description", json_object_get(seen, "description"));
	} else if (streq_ptr(st, "draining")) {
		json_object_set_new(th, "reason", json_string("Target.DeregistrationInProgress"));
		json_object_set_new(th, "description", json_string("Target deregistration is in progress"));
	} else if (streq_ptr(st, "initial")) {
		json_object_set_new(th, "reason", json_string("Elb.RegistrationInProgress"));
		json_object_set_new(th, "description", json_string("Target registration is in progress"));
	} else if (streq_ptr(st, "unhealthy")) {
		json_object_set_new(th, "reason", json_string("Target.FailedHealthChecks"));
		json_object_set_new(th, "description", json_string("Task container health checks failed"));
	}
	if (seen)
		json_object_set(th, "nodes", json_object_get(seen, "nodes"));
	return th;
}

int server_ecs_berth_describe_target_health(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	if (server_ecs_str(c, in, "name", true, &ref) < 0)
		return -1;
	_cleanup_free_ char *tmp = NULL;
	_cleanup_json_ json_t *lb = NULL, *tg = NULL;
	if (lb_get(c, name_of(ref, &tmp), &lb, &tg) < 0)
		return -1;
	struct cluster_state cs;
	_cleanup_error_ struct berth_error *err = NULL;
	if (cluster_state_load(c->srv, json_string_value(json_object_get(lb, "cluster")), &cs, &err) < 0)
		return server_ecs_internal(c, err);
	json_t *targets = targets_of(c->srv, &cs, lb, true), *descs = json_array();
	cluster_state_done(&cs);
	_cleanup_json_ json_t *reports = NULL, *alive = NULL, *seen = NULL;
	if (server_lb_health_reports(c->srv, json_string_value(json_object_get(lb, "cluster")), &reports,
				     &alive, NULL) == 0)
		seen = server_lb_health_merge(reports, alive,
					      json_string_value(json_object_get(lb, "loadBalancerName")));
	size_t i;
	json_t *t;
	json_array_foreach (targets, i, t) {
		json_t *target = json_pack("{s:O}", "id", json_object_get(t, "taskArn"));
		if (json_object_get(t, "address")) {
			json_object_set(target, "ip", json_object_get(t, "address"));
			json_object_set(target, "port", json_object_get(t, "port"));
		}
		json_t *th =
		    target_health(json_object_get(t, "state"),
				  json_object_get(seen, json_string_value(json_object_get(t, "id"))));
		json_array_append_new(descs,
				      json_pack("{s:o,s:O,s:o}", "target", target, "serviceName",
						json_object_get(t, "serviceName"), "targetHealth", th));
	}
	json_decref(targets);
	*out = json_pack("{s:O,s:o}", "targetGroupArn", json_object_get(tg, "targetGroupArn"),
			 "targetHealthDescriptions", descs);
	return 0;
}

/* ---- attachments and draining ---- */

int server_ecs_berth_attach_load_balancer(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *svc, *container, *cref;
	int64_t port = -1;
	if (server_ecs_str(c, in, "name", true, &ref) < 0 ||
	    server_ecs_str(c, in, "serviceName", true, &svc) < 0 ||
	    server_ecs_str(c, in, "containerName", false, &container) < 0 ||
	    server_ecs_str(c, in, "cluster", false, &cref) < 0 ||
	    server_ecs_int(c, in, "containerPort", 1, 65535, &port) < 0)
		return -1;
	if (port < 0)
		return server_ecs_fail(c, "InvalidParameterException", "containerPort can not be blank.");
	if (!server_name_valid(svc, 255))
		return server_ecs_fail(
		    c, "InvalidParameterException",
		    "serviceName '%s': up to 255 letters, digits, hyphens and underscores.", svc);
	_cleanup_free_ char *tmp = NULL, *cluster = NULL;
	const char *name = name_of(ref, &tmp);
	_cleanup_json_ json_t *lb = NULL, *tg = NULL;
	if (lb_get(c, name, &lb, &tg) < 0 || server_cluster_resolve(c, cref, NULL, &cluster) < 0)
		return -1;
	if (!streq_ptr(json_string_value(json_object_get(lb, "cluster")), cluster))
		return server_ecs_fail(c, "InvalidParameterException",
				       "load balancer '%s' serves cluster '%s', not '%s'.", name,
				       json_string_value(json_object_get(lb, "cluster")), cluster);
	_cleanup_json_ json_t *att =
	    json_pack("{s:s,s:O,s:s,s:s,s:I,s:f}", "loadBalancerName", name, "targetGroupArn",
		      json_object_get(tg, "targetGroupArn"), "cluster", cluster, "serviceName", svc,
		      "containerPort", (json_int_t)port, "attachedAt", server_record_now());
	if (container)
		json_object_set_new(att, "containerName", json_string(container));
	_cleanup_free_ char *key = xasprintf(ATTACH_KEY "%s/%s/%s", name, cluster, svc);
	_cleanup_error_ struct berth_error *err = NULL;
	if (server_record_put(c->srv, key, att, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_pack("{s:O}", "attachment", att);
	return 0;
}

int server_ecs_berth_detach_load_balancer(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref, *svc, *cref;
	if (server_ecs_str(c, in, "name", true, &ref) < 0 ||
	    server_ecs_str(c, in, "serviceName", true, &svc) < 0 ||
	    server_ecs_str(c, in, "cluster", false, &cref) < 0)
		return -1;
	_cleanup_free_ char *tmp = NULL, *cluster = NULL;
	const char *name = name_of(ref, &tmp);
	_cleanup_json_ json_t *lb = NULL, *att = NULL;
	if (lb_get(c, name, &lb, NULL) < 0 || server_cluster_resolve(c, cref, NULL, &cluster) < 0)
		return -1;
	_cleanup_free_ char *key =
	    server_name_valid(svc, 255) ? xasprintf(ATTACH_KEY "%s/%s/%s", name, cluster, svc) : NULL;
	if (!key || server_record_get(c->srv, key, &att, NULL, NULL) < 0)
		return server_ecs_fail(c, "InvalidParameterException",
				       "service '%s' is not attached to load balancer '%s'.", svc, name);
	_cleanup_error_ struct berth_error *err = NULL;
	if (store_remove(c->srv->store, key, NULL, &err) < 0)
		return server_ecs_internal(c, err);
	*out = json_pack("{s:O}", "attachment", att);
	return 0;
}

/* Set drainingAt on one task (compare-and-swap); its new record in *ret. */
static int drain_one(struct ecs_call *c, const char *cluster, const char *ref, json_t **ret)
{
	const char *id = server_arn_tail(ref);
	_cleanup_free_ char *key =
	    server_name_valid(id, 64) ? xasprintf("/berth/tasks/%s/%s", cluster, id) : NULL;
	for (int attempt = 0; attempt < 10; attempt++) {
		json_t *t = NULL;
		int64_t rev;
		if (!key || server_record_get(c->srv, key, &t, &rev, NULL) < 0)
			return server_ecs_fail(c, "InvalidParameterException", "task '%s' was not found.",
					       ref);
		if (json_object_get(t, "drainingAt") || !server_task_active(t)) {
			*ret = t;
			return 0;
		}
		json_object_set_new(t, "drainingAt", json_real(server_record_now()));
		bool ok = false;
		_cleanup_error_ struct berth_error *err = NULL;
		if (server_record_cas(c->srv, key, t, rev, &ok, &err) < 0) {
			json_decref(t);
			return server_ecs_internal(c, err);
		}
		if (ok) {
			*ret = t;
			return 0;
		}
		json_decref(t);
	}
	return server_ecs_fail(c, "ServerException", "task changed concurrently; retry");
}

int server_ecs_berth_drain_targets(struct ecs_call *c, json_t *in, json_t **out)
{
	const char *ref;
	json_t *tasks;
	if (server_ecs_str(c, in, "name", true, &ref) < 0 || server_ecs_strv(c, in, "tasks", &tasks) < 0)
		return -1;
	if (!json_array_size(tasks) || json_array_size(tasks) > 100)
		return server_ecs_fail(c, "InvalidParameterException", "tasks must have 1 to 100 items.");
	_cleanup_free_ char *tmp = NULL;
	_cleanup_json_ json_t *lb = NULL, *tg = NULL;
	if (lb_get(c, name_of(ref, &tmp), &lb, &tg) < 0)
		return -1;
	const char *cluster = json_string_value(json_object_get(lb, "cluster"));
	json_t *done = json_array();
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		json_t *rec = NULL;
		if (drain_one(c, cluster, json_string_value(t), &rec) < 0) {
			json_decref(done);
			return -1;
		}
		json_array_append_new(done,
				      json_pack("{s:O,s:O?}", "taskArn", json_object_get(rec, "taskArn"),
						"drainingAt", json_object_get(rec, "drainingAt")));
		json_decref(rec);
	}
	*out = json_pack("{s:o,s:O}", "tasks", done, "deregistrationDelay",
			 json_object_get(tg, "deregistrationDelay"));
	return 0;
}

/* ---- GET /agent/v1/dataplane ---- */

/* The dataplane of a cluster: load balancers with targets, TLS material, discovery names. */
static int dataplane_of(struct server *s, const char *cluster, json_t **ret, struct berth_error **err)
{
	struct cluster_state cs;
	json_t *all = NULL;
	int r = server_record_list(s, LB_KEY, &all, err);
	if (r < 0)
		return r;
	if ((r = cluster_state_load(s, cluster, &cs, err)) < 0) {
		json_decref(all);
		return r;
	}
	json_t *lbs = json_array();
	size_t i;
	json_t *lb;
	json_array_foreach (all, i, lb) {
		if (!streq_ptr(json_string_value(json_object_get(lb, "cluster")), cluster))
			continue;
		const char *name = json_string_value(json_object_get(lb, "loadBalancerName"));
		_cleanup_free_ char *tkey = xasprintf(TG_KEY "%s", name),
				    *ckey = xasprintf(CERT_KEY "%s", name);
		_cleanup_json_ json_t *tg = NULL, *cert = NULL;
		if (server_record_get(s, tkey, &tg, NULL, NULL) < 0)
			continue;
		json_t *o = json_pack(
		    "{s:s,s:O,s:O,s:O,s:O,s:O?,s:O,s:O,s:O,s:o}", "name", name, "port",
		    json_object_get(lb, "port"), "protocol", json_object_get(lb, "protocol"),
		    "targetGroupArn", json_object_get(tg, "targetGroupArn"), "deregistrationDelay",
		    json_object_get(tg, "deregistrationDelay"), "healthCheckPath",
		    json_object_get(tg, "healthCheckPath"), "healthCheckIntervalSeconds",
		    json_object_get(tg, "healthCheckIntervalSeconds"), "healthyThresholdCount",
		    json_object_get(tg, "healthyThresholdCount"), "unhealthyThresholdCount",
		    json_object_get(tg, "unhealthyThresholdCount"), "targets", targets_of(s, &cs, lb, false));
		if (json_is_true(json_object_get(lb, "tls")) &&
		    server_record_get(s, ckey, &cert, NULL, NULL) == 0)
			json_object_set(o, "tls", cert);
		json_array_append_new(lbs, o);
	}
	json_decref(all);
	_cleanup_free_ char *domain = xasprintf("%s.local", cluster);
	json_t *names = server_lb_discovery(cs.tasks, has_checks, &cs.cc);
	server_lb_discovery_stack_names(names, cs.tasks, stack_of, &cs.cc);
	*ret = json_pack("{s:s,s:o,s:{s:s,s:o}}", "cluster", cluster, "loadBalancers", lbs, "discovery",
			 "domain", domain, "names", names);
	cluster_state_done(&cs);
	return 0;
}

/* ---- POST /agent/v1/targethealth ---- */

void server_lb_handle_target_health(struct server *s, struct http_request *req, json_t *node)
{
	const char *cluster = json_string_value(json_object_get(node, "cluster"));
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	_cleanup_json_ json_t *in = len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *bad = !cluster || !id ? "register before reporting target health"
			  : !in           ? "expected a JSON body"
					  : server_lb_health_report_invalid(in);
	if (bad)
		return http_respond_json(req, 400,
					 json_pack("{s:s,s:s}", "error", bad, "code", "BadRequest"));
	_cleanup_free_ char *key = xasprintf(LB_HEALTH_PREFIX "%s/%s", cluster, id);
	_cleanup_json_ json_t *old = NULL;
	json_t *lbs = json_object_get(in, "loadBalancers");
	_cleanup_error_ struct berth_error *err = NULL;
	/* written only when it changed: a report is a store write that wakes the leader */
	if (server_record_get(s, key, &old, NULL, NULL) < 0 ||
	    !json_equal(json_object_get(old, "loadBalancers"), lbs)) {
		_cleanup_json_ json_t *rec = json_pack("{s:s,s:f,s:O}", "nodeId", id, "updatedAt",
						       server_record_now(), "loadBalancers", lbs);
		if (server_record_put(s, key, rec, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			return http_respond_json(req, 500,
						 json_pack("{s:s,s:s}", "error", m, "code", "ServerError"));
		}
	}
	http_respond_json(req, 200, json_object());
}

static bool relevant_key(const char *key, const char *cluster)
{
	size_t n = strlen(cluster);
	if (startswith(key, LB_PREFIX))
		return true;
	const char *prefixes[] = { "/berth/tasks/", "/berth/services/" };
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (startswith(key, prefixes[i]) && !strncmp(key + strlen(prefixes[i]), cluster, n) &&
		    key[strlen(prefixes[i]) + n] == '/')
			return true;
	return false;
}

/* Wait until a record the dataplane reads changes after from-1 (or the deadline); false on timeout. */
static bool wait_relevant(struct server *s, const char *cluster, int64_t *from, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - (int64_t)(server_record_now() * 1000);
		pthread_mutex_lock(&s->lock);
		bool stopping = s->stopping;
		pthread_mutex_unlock(&s->lock);
		if (left <= 0 || stopping)
			return false;
		struct store_event_list ev;
		if (store_watch(s->store, "/berth/", *from, (int)MIN(left, 1000), &ev, NULL) < 0)
			return true; /* compacted or store trouble: answer, the agent polls again */
		bool hit = false;
		for (size_t i = 0; i < ev.n; i++)
			hit |= relevant_key(ev.events[i].kv.key, cluster);
		if (ev.n)
			*from = ev.events[ev.n - 1].kv.mod_revision + 1;
		store_event_list_done(&ev);
		if (hit)
			return true;
	}
}

void server_lb_handle_dataplane(struct server *s, struct http_request *req, json_t *node)
{
	const char *cluster = json_string_value(json_object_get(node, "cluster"));
	if (!cluster)
		return http_respond_json(req, 404,
					 json_pack("{s:s,s:s}", "error",
						   "register before polling the dataplane", "code",
						   "NotRegistered"));
	const char *q_wait = http_request_query(req, "wait"), *q_hash = http_request_query(req, "hash");
	int wait = q_wait ? atoi(q_wait) : 0;
	wait = MAX(0, MIN(wait, DP_MAX_WAIT));
	int64_t deadline = (int64_t)(server_record_now() * 1000) + (int64_t)wait * 1000;
	for (;;) {
		int64_t rev = 0;
		json_t *dp = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		if (store_revision(s->store, &rev, &err) < 0 || dataplane_of(s, cluster, &dp, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			return http_respond_json(req, 500,
						 json_pack("{s:s,s:s}", "error", m, "code", "ServerError"));
		}
		_cleanup_free_ char *text = json_dumps(dp, JSON_COMPACT | JSON_SORT_KEYS);
		char hash[65];
		aws_sigv4_sha256_hex(text, strlen(text), hash);
		int64_t from = rev + 1;
		if (!q_hash || !streq(q_hash, hash) || !wait_relevant(s, cluster, &from, deadline)) {
			json_object_set_new(dp, "revision", json_integer(rev));
			json_object_set_new(dp, "hash", json_string(hash));
			return http_respond_json(req, 200, dp);
		}
		json_decref(dp);
	}
}
