/*
 * metrics.c - the server's metrics (docs/metrics.md): the agents' samples
 * (POST /agent/v1/metrics) into the in-memory series (metrics/series.h), the
 * Prometheus exposition (GET /metrics, bearer token ROOT/metrics-token) and
 * BerthDescribeMetrics (the ECS endpoint's private call behind `berth top`
 * and `berth service stats`).
 *
 * A task's labels and reservations come from its record, read once when its
 * first sample arrives (the node must be the one the task is bound to);
 * task counts and desired counts are read from the store when asked for, so
 * they are exact while utilizations are as fresh as the last samples.
 * Nothing here is persisted: a restarted server (or another replica) starts
 * with no history.
 */
#include <openssl/crypto.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "http/http.h"
#include "metrics/prom.h"
#include "metrics/series.h"
#include "server/internal.h"

/* The agents' batches as received by each replica (etcd only; under the replica's lease). */
#define METRICS_SHARE_PREFIX "/berth/metrics/nodes/"
/* Most samples in one POST /agent/v1/metrics (one per task of the node). */
#define METRICS_MAX_BATCH    5000

static void agent_error(struct http_request *req, unsigned status, const char *code, const char *msg)
{
	http_respond_json(req, status, json_pack("{s:s,s:s}", "error", msg, "code", code));
}

/* The token Prometheus presents: HMAC-SHA256(secret key, label), the same on every replica. */
static char *metrics_token(struct server *s)
{
	static const char label[] = "berth metrics bearer token v1";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	HMAC(EVP_sha256(), s->secret, (int)strlen(s->secret), (const unsigned char *)label, sizeof(label) - 1,
	     mac, &len);
	char *hex = xmalloc(2 * len + 1);
	for (unsigned i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	return hex;
}

int server_metrics_start(struct server *s, struct berth_error **err)
{
	s->metrics = metrics_store_new(s->metrics_period, METRICS_DEFAULT_HISTORY);
	s->metrics_token = metrics_token(s);
	s->metrics_lb = json_object();
	_cleanup_free_ char *path = xasprintf("%s/metrics-token", s->root);
	int r = fs_write_file_atomic(path, s->metrics_token, strlen(s->metrics_token), 0600, err);
	return r < 0 ? berth_error_wrap(err, r, "write the metrics token") : 0;
}

void server_metrics_stop(struct server *s)
{
	s->metrics = metrics_store_free(s->metrics);
	free(s->metrics_token);
	s->metrics_token = NULL;
	json_decref(s->metrics_lb);
	s->metrics_lb = NULL;
}

/* "family" of "arn:...:task-definition/family:3". */
static char *family_of(const char *td_arn)
{
	const char *p = td_arn ? strrchr(td_arn, '/') : NULL;
	p = p ? p + 1 : td_arn ? td_arn : "";
	const char *colon = strrchr(p, ':');
	return colon ? xstrndup(p, (size_t)(colon - p)) : xstrdup(p);
}

const char *server_task_service_name(json_t *task)
{
	const char *g = json_string_value(json_object_get(task, "group"));
	return g && startswith(g, "service:") ? g + 8 : NULL;
}

/* Record one sample of the node's task; false when the task is not the node's (or not known). */
static bool ingest_one(struct server *s, const char *cluster, const char *node_id, const char *inst_arn,
		       json_t *j)
{
	const char *arn = json_string_value(json_object_get(j, "taskArn"));
	struct metrics_sample smp;
	if (!arn || metrics_sample_parse(j, &smp) < 0)
		return false;
	if (metrics_store_known(s->metrics, arn))
		return metrics_store_add(s->metrics, arn, NULL, &smp) == 0;
	const char *id = server_arn_tail(arn);
	_cleanup_free_ char *key =
	    server_name_valid(id, 64) ? xasprintf("/berth/tasks/%s/%s", cluster, id) : NULL;
	_cleanup_json_ json_t *t = NULL;
	if (!key || server_record_get(s, key, &t, NULL, NULL) < 0 ||
	    !streq_ptr(json_string_value(json_object_get(t, "containerInstanceArn")), inst_arn) ||
	    !streq_ptr(json_string_value(json_object_get(t, "taskArn")), arn) || !server_task_active(t))
		return false;
	_cleanup_free_ char *family = family_of(json_string_value(json_object_get(t, "taskDefinitionArn")));
	const char *svc = server_task_service_name(t);
	struct metrics_task_meta meta = {
		.cluster = cluster,
		.service = svc ? svc : "",
		.family = family,
		.node = node_id,
		.cpu_units = strtoll(json_string_value(json_object_get(t, "cpu")) ?: "0", NULL, 10),
		.memory_mib = strtoll(json_string_value(json_object_get(t, "memory")) ?: "0", NULL, 10),
	};
	return metrics_store_add(s->metrics, arn, &meta, &smp) == 0;
}

/* The services whose tasks are targets of load balancer lb (its target group in their loadBalancers, or
 * attached with berth lb attach), as an array of names; *ret_lb: the load balancer's record (or NULL). */
static json_t *lb_services(struct server *s, const char *lb, json_t **ret_lb)
{
	json_t *out = json_array();
	_cleanup_free_ char *lkey = xasprintf("/berth/lb/loadbalancers/%s", lb);
	if (!server_name_valid(lb, 64) || server_record_get(s, lkey, ret_lb, NULL, NULL) < 0)
		return out;
	const char *cluster = json_string_value(json_object_get(*ret_lb, "cluster"));
	const char *tg = json_string_value(json_object_get(*ret_lb, "targetGroupArn"));
	_cleanup_free_ char *sp = xasprintf("/berth/services/%s/", cluster ? cluster : "");
	_cleanup_free_ char *ap = xasprintf("/berth/lb/attachments/%s/%s/", lb, cluster ? cluster : "");
	_cleanup_json_ json_t *svcs = NULL, *atts = NULL;
	size_t i, k;
	json_t *v, *l;
	if (cluster && server_record_list(s, sp, &svcs, NULL) == 0)
		json_array_foreach (svcs, i, v)
			json_array_foreach (json_object_get(v, "loadBalancers"), k, l)
				if (streq_ptr(json_string_value(json_object_get(l, "targetGroupArn")), tg))
					json_array_append(out, json_object_get(v, "serviceName"));
	if (cluster && server_record_list(s, ap, &atts, NULL) == 0)
		json_array_foreach (atts, i, v)
			json_array_append(out, json_object_get(v, "serviceName"));
	return out;
}

/* The node's cumulative request counters per load balancer: what grew since its last report goes to the
 * services behind each load balancer (split evenly), in the period of now. */
static void ingest_requests(struct server *s, const char *node_id, json_t *lbs)
{
	const char *name;
	json_t *v;
	json_object_foreach (lbs, name, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			continue;
		_cleanup_free_ char *key = xasprintf("%s/%s", node_id, name);
		pthread_mutex_lock(&s->lock);
		json_t *prev = json_object_get(s->metrics_lb, key);
		json_int_t before = prev ? json_integer_value(prev) : -1, now = json_integer_value(v);
		json_object_set(s->metrics_lb, key, v);
		pthread_mutex_unlock(&s->lock);
		/* the first report only sets the baseline; a smaller counter is a restarted HAProxy */
		double delta = before < 0 ? 0 : now >= before ? (double)(now - before) : (double)now;
		if (delta <= 0)
			continue;
		_cleanup_json_ json_t *lb = NULL;
		_cleanup_json_ json_t *svcs = lb_services(s, name, &lb);
		size_t i;
		json_t *svc;
		json_array_foreach (svcs, i, svc)
			metrics_store_add_requests(s->metrics,
						   json_string_value(json_object_get(lb, "cluster")),
						   json_string_value(svc), server_record_now(),
						   delta / (double)json_array_size(svcs));
	}
}

/* A node's batch of samples (and load balancer counters); *ret_ok: samples taken; rejected (may be NULL)
 * gets the task ARNs refused. */
static void ingest_batch(struct server *s, const char *cluster, const char *id, json_t *in, json_t *rejected,
			 size_t *ret_ok)
{
	_cleanup_free_ char *tail = xasprintf("%s/%s", cluster, id);
	_cleanup_free_ char *inst = server_arn_make(s, "container-instance", tail);
	json_t *t;
	size_t i, ok = 0;
	json_array_foreach (json_object_get(in, "tasks"), i, t) {
		if (ingest_one(s, cluster, id, inst, t))
			ok++;
		else if (rejected && json_is_string(json_object_get(t, "taskArn")))
			json_array_append(rejected, json_object_get(t, "taskArn"));
	}
	json_t *lbs = json_object_get(in, "loadBalancers");
	if (json_is_object(lbs) && json_object_size(lbs) <= 1000)
		ingest_requests(s, id, lbs);
	*ret_ok = ok;
}

/* With etcd (several replicas), the batch also goes to /berth/metrics/nodes/NODE under this replica's
 * lease, where the other replicas' watch (share_main) takes it: every replica, the leader's autoscaler
 * included, sees every node. */
static void share(struct server *s, const char *cluster, const char *id, json_t *in)
{
	int64_t lease = server_replica_lease(s);
	if (!streq(s->store->ops->name, "etcd") || !lease)
		return;
	_cleanup_json_ json_t *v = json_pack("{s:s,s:s,s:s,s:O}", "replica", s->replica_id, "cluster",
					     cluster, "nodeId", id, "batch", in);
	_cleanup_free_ char *text = json_dumps(v, JSON_COMPACT);
	_cleanup_free_ char *key = xasprintf(METRICS_SHARE_PREFIX "%s", id);
	_cleanup_error_ struct berth_error *err = NULL;
	if (store_put(s->store, key, text, strlen(text), lease, NULL, &err) < 0)
		log_fields(LOG_LEVEL_WARN, "metrics not shared with the other replicas", "error", err->msg,
			   NULL);
}

void server_metrics_agent_ingest(struct server *s, struct http_request *req, json_t *node)
{
	size_t len = 0;
	const char *body = http_request_body(req, &len);
	_cleanup_json_ json_t *in = json_loadb(body ? body : "", len, 0, NULL);
	json_t *tasks = json_object_get(in, "tasks");
	if (!json_is_array(tasks) || json_array_size(tasks) > METRICS_MAX_BATCH)
		return agent_error(req, 400, "BadRequest",
				   "metrics needs 'tasks': a list of at most 5000 samples");
	const char *cluster = json_string_value(json_object_get(node, "cluster"));
	const char *id = json_string_value(json_object_get(node, "nodeId"));
	if (!cluster)
		return agent_error(req, 404, "NotRegistered", "register before sending metrics");
	json_t *rejected = json_array();
	size_t ok = 0;
	ingest_batch(s, cluster, id, in, rejected, &ok);
	share(s, cluster, id, in);
	http_respond_json(req, 200, json_pack("{s:I,s:o}", "accepted", (json_int_t)ok, "rejected", rejected));
}

/* The other replicas' batches, as they are put (etcd). */
static void *share_main(void *arg)
{
	struct server *s = arg;
	int64_t from = 0;
	while (!atomic_load(&s->metrics_share_stop)) {
		_cleanup_error_ struct berth_error *err = NULL;
		if (!from) {
			int64_t rev = 0;
			if (store_revision(s->store, &rev, &err) < 0) {
				sleep(1);
				continue;
			}
			from = rev + 1;
		}
		struct store_event_list ev = { 0 };
		int r = store_watch(s->store, METRICS_SHARE_PREFIX, from, 1000, &ev, &err);
		if (r == -ERANGE) { /* compacted: samples are cumulative, the next ones will do */
			from = 0;
			continue;
		}
		if (r < 0) {
			sleep(1);
			continue;
		}
		for (size_t i = 0; i < ev.n; i++) {
			struct store_event *e = &ev.events[i];
			from = e->kv.mod_revision + 1;
			if (e->type != STORE_EVENT_PUT)
				continue;
			_cleanup_json_ json_t *v = json_loadb(e->kv.value, e->kv.value_len, 0, NULL);
			const char *rep = json_string_value(json_object_get(v, "replica"));
			const char *cluster = json_string_value(json_object_get(v, "cluster"));
			const char *id = json_string_value(json_object_get(v, "nodeId"));
			json_t *batch = json_object_get(v, "batch");
			size_t ok;
			if (rep && cluster && id && json_is_array(json_object_get(batch, "tasks")) &&
			    json_array_size(json_object_get(batch, "tasks")) <= METRICS_MAX_BATCH &&
			    !server_replica_is_self(s, rep))
				ingest_batch(s, cluster, id, batch, NULL, &ok);
		}
		if (!ev.n && ev.revision >= from)
			from = ev.revision + 1;
		store_event_list_done(&ev);
	}
	return NULL;
}

int server_metrics_share_start(struct server *s, struct berth_error **err)
{
	if (!streq(s->store->ops->name, "etcd"))
		return 0;
	int r = pthread_create(&s->metrics_sharer, NULL, share_main, s);
	if (r != 0)
		return berth_error_set(err, r, "start the metrics watch");
	s->metrics_sharing = true;
	return 0;
}

void server_metrics_share_stop(struct server *s)
{
	atomic_store(&s->metrics_share_stop, true);
	if (s->metrics_sharing)
		pthread_join(s->metrics_sharer, NULL);
	s->metrics_sharing = false;
}

/* ---- counts from the store ---- */

struct counts {
	struct metrics_counts *v;
	size_t n, cap;
	json_t *names;  /* owns the strings v points to */
	json_t *active; /* taskArn -> true for tasks not STOPPED */
};

static struct metrics_counts *count_slot_find(struct counts *c, const char *cluster, const char *service)
{
	for (size_t i = 0; i < c->n; i++)
		if (streq(c->v[i].cluster, cluster) && streq_ptr(c->v[i].service, service))
			return &c->v[i];
	return NULL;
}

static struct metrics_counts *count_slot(struct counts *c, const char *cluster, const char *service)
{
	struct metrics_counts *found = count_slot_find(c, cluster, service);
	if (found)
		return found;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	json_t *cl = json_string(cluster), *sv = service ? json_string(service) : NULL;
	json_array_append_new(c->names, cl);
	if (sv)
		json_array_append_new(c->names, sv);
	c->v[c->n] = (struct metrics_counts){ json_string_value(cl), sv ? json_string_value(sv) : NULL, 0, 0,
					      service ? 0 : -1 };
	return &c->v[c->n++];
}

static void counts_done(struct counts *c)
{
	free(c->v);
	json_decref(c->names);
	json_decref(c->active);
}

/* Running/pending per service and cluster (cluster NULL: every cluster), desired per service. */
static int counts_build(struct server *s, const char *cluster, struct counts *c, struct berth_error **err)
{
	*c = (struct counts){ .names = json_array(), .active = json_object() };
	_cleanup_free_ char *tp = cluster ? xasprintf("/berth/tasks/%s/", cluster) : xstrdup("/berth/tasks/");
	_cleanup_free_ char *sp =
	    cluster ? xasprintf("/berth/services/%s/", cluster) : xstrdup("/berth/services/");
	_cleanup_json_ json_t *tasks = NULL, *services = NULL, *clusters = NULL;
	int r = server_record_list(s, tp, &tasks, err);
	if (r >= 0)
		r = server_record_list(s, sp, &services, err);
	if (r >= 0 && !cluster)
		r = server_record_list(s, "/berth/clusters/", &clusters, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *v;
	json_array_foreach (clusters, i, v) /* every cluster shows, also an idle one */
		if (streq_ptr(json_string_value(json_object_get(v, "status")), "ACTIVE"))
			count_slot(c, json_string_value(json_object_get(v, "clusterName")), NULL);
	json_array_foreach (services, i, v) {
		const char *cl = server_arn_tail(json_string_value(json_object_get(v, "clusterArn")) ?: "");
		const char *name = json_string_value(json_object_get(v, "serviceName"));
		if (!name || streq_ptr(json_string_value(json_object_get(v, "status")), "INACTIVE"))
			continue;
		count_slot(c, cl, name)->desired =
		    (long)json_integer_value(json_object_get(v, "desiredCount"));
		count_slot(c, cl, NULL);
	}
	json_array_foreach (tasks, i, v) {
		if (!server_task_active(v))
			continue;
		const char *cl = server_arn_tail(json_string_value(json_object_get(v, "clusterArn")) ?: "");
		const char *svc = server_task_service_name(v);
		bool running = streq_ptr(json_string_value(json_object_get(v, "lastStatus")), "RUNNING");
		json_object_set_new(c->active, json_string_value(json_object_get(v, "taskArn")) ?: "",
				    json_true());
		struct metrics_counts *slots[2] = { count_slot(c, cl, NULL),
						    svc ? count_slot(c, cl, svc) : NULL };
		for (size_t k = 0; k < 2; k++)
			if (slots[k])
				*(running ? &slots[k]->running : &slots[k]->pending) += 1;
	}
	return 0;
}

static void collect_gone(void *userdata, const struct metrics_task_view *t)
{
	struct counts *c = ((void **)userdata)[0];
	json_t *gone = ((void **)userdata)[1];
	if (!json_object_get(c->active, t->arn))
		json_array_append_new(gone, json_string(t->arn));
}

/* Forget the samples of tasks that stopped or vanished (the store says so, not the clock). */
static void prune(struct server *s, const char *cluster, struct counts *c)
{
	_cleanup_json_ json_t *gone = json_array();
	void *ud[2] = { c, gone };
	metrics_store_tasks(s->metrics, cluster, NULL, collect_gone, ud);
	size_t i;
	json_t *a;
	json_array_foreach (gone, i, a)
		metrics_store_forget(s->metrics, json_string_value(a));
}

/* ---- GET /metrics ---- */

static bool bearer_ok(struct server *s, struct http_request *req)
{
	const char *h = http_request_header(req, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	const char *tok = h + 7;
	size_t n = strlen(s->metrics_token);
	return strlen(tok) == n && CRYPTO_memcmp(tok, s->metrics_token, n) == 0;
}

void server_metrics_handle_scrape(struct server *s, struct http_request *req)
{
	if (!streq(http_request_method(req), "GET"))
		return http_respond_error(req, 405, "GET /metrics only");
	if (!bearer_ok(s, req)) {
		http_response_header(req, "WWW-Authenticate", "Bearer realm=\"berth metrics\"");
		return http_respond_error(
		    req, 401,
		    "GET /metrics needs 'Authorization: Bearer TOKEN' with the token in "
		    "ROOT/metrics-token");
	}
	struct counts c;
	_cleanup_error_ struct berth_error *err = NULL;
	if (counts_build(s, NULL, &c, &err) < 0) {
		counts_done(&c);
		return http_respond_error(req, 500, "read the store: %s", err->msg);
	}
	prune(s, NULL, &c);
	struct strbuf sb = STRBUF_INIT;
	metrics_store_render(s->metrics, server_record_now(), c.v, c.n, &sb);
	counts_done(&c);
	size_t len = sb.len;
	http_respond(req, 200, PROM_CONTENT_TYPE, strbuf_detach(&sb, NULL), len);
}

/* ---- BerthDescribeMetrics ---- */

static json_t *pct(double v)
{
	return v < 0 ? json_null() : json_real((double)(int64_t)(v * 100.0 + 0.5) / 100.0);
}

static void task_json(void *userdata, const struct metrics_task_view *t)
{
	json_array_append_new(
	    userdata,
	    json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "taskArn", t->arn,
		      "serviceName", t->meta->service, "family", t->meta->family, "containerInstanceId",
		      t->meta->node, "cpuUtilization", pct(t->cpu_pct), "memoryUtilization", pct(t->mem_pct),
		      "memoryBytes", (json_int_t)t->last.mem_bytes, "cpuReserved",
		      (json_int_t)t->meta->cpu_units, "memoryReserved", (json_int_t)t->meta->memory_mib,
		      "networkRxBytes", (json_int_t)t->last.rx_bytes, "networkTxBytes",
		      (json_int_t)t->last.tx_bytes, "storageReadBytes", (json_int_t)t->last.read_bytes,
		      "sampledAt", t->last.time));
}

static json_t *points_json(struct server *s, const char *cluster, const char *service, size_t n, double now)
{
	struct metrics_point p[METRICS_DEFAULT_HISTORY];
	n = MIN(n, ARRAY_SIZE(p));
	metrics_store_points(s->metrics, cluster, service, now, p, n);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:f,s:o,s:o,s:f,s:i}", "timestamp", p[i].start,
						   "cpuUtilization", pct(p[i].cpu_pct), "memoryUtilization",
						   pct(p[i].mem_pct), "requestCount", p[i].requests,
						   "samples", (int)p[i].samples));
	return a;
}

/* The utilization over the latest samples: the mean of the tasks' (weighted by reservation). */
static json_t *group_json(struct server *s, const struct metrics_counts *mc, json_t *tasks, size_t periods,
			  double now)
{
	double cu = 0, cr = 0, mu = 0, mr = 0;
	size_t i;
	json_t *t;
	json_array_foreach (tasks, i, t) {
		if (mc->service && !streq(json_string_value(json_object_get(t, "serviceName")), mc->service))
			continue;
		double cpu = json_number_value(json_object_get(t, "cpuUtilization"));
		double res = (double)json_integer_value(json_object_get(t, "cpuReserved"));
		res = res > 0 ? res : 1024;
		if (json_is_number(json_object_get(t, "cpuUtilization")))
			cu += cpu * res, cr += res;
		double mem = json_number_value(json_object_get(t, "memoryUtilization"));
		double mres = (double)json_integer_value(json_object_get(t, "memoryReserved"));
		if (json_is_number(json_object_get(t, "memoryUtilization")) && mres > 0)
			mu += mem * mres, mr += mres;
	}
	json_t *g = json_pack("{s:o,s:o,s:i,s:i}", "cpuUtilization", pct(cr > 0 ? cu / cr : -1),
			      "memoryUtilization", pct(mr > 0 ? mu / mr : -1), "runningCount",
			      (int)mc->running, "pendingCount", (int)mc->pending);
	if (mc->service) {
		json_object_set_new(g, "serviceName", json_string(mc->service));
		json_object_set_new(g, "desiredCount", json_integer(mc->desired));
	}
	if (periods)
		json_object_set_new(g, "datapoints", points_json(s, mc->cluster, mc->service, periods, now));
	return g;
}

int server_ecs_berth_describe_metrics(struct ecs_call *c, json_t *in, json_t **out)
{
	struct server *s = c->srv;
	const char *cref = NULL, *service = NULL;
	int64_t periods = 0;
	if (server_ecs_str(c, in, "cluster", false, &cref) < 0 ||
	    server_ecs_str(c, in, "service", false, &service) < 0 ||
	    server_ecs_int(c, in, "periods", 0, METRICS_DEFAULT_HISTORY, &periods) < 0)
		return -1;
	_cleanup_json_ json_t *cl = NULL;
	_cleanup_free_ char *cluster = NULL;
	if (server_cluster_resolve(c, cref, &cl, &cluster) < 0)
		return -1;
	const char *svc = service ? server_arn_tail(service) : NULL;
	struct counts cn;
	_cleanup_error_ struct berth_error *err = NULL;
	if (counts_build(s, cluster, &cn, &err) < 0) {
		counts_done(&cn);
		return server_ecs_internal(c, err);
	}
	prune(s, cluster, &cn);
	(void)count_slot(&cn, cluster, NULL);
	if (svc && !count_slot_find(&cn, cluster, svc)) {
		counts_done(&cn);
		return server_ecs_fail(c, "ServiceNotFoundException", "Service not found.");
	}
	json_t *tasks = json_array();
	metrics_store_tasks(s->metrics, cluster, svc, task_json, tasks);
	double now = server_record_now();
	json_t *services = json_array();
	for (size_t i = 0; i < cn.n; i++)
		if (cn.v[i].service && streq(cn.v[i].cluster, cluster) &&
		    (!svc || streq(svc, cn.v[i].service)))
			json_array_append_new(services, group_json(s, &cn.v[i], tasks, (size_t)periods, now));
	struct metrics_counts *own = count_slot(&cn, cluster, NULL);
	*out =
	    json_pack("{s:s,s:i,s:o,s:o,s:o}", "cluster", cluster, "period", metrics_store_period(s->metrics),
		      "clusterMetrics", group_json(s, own, tasks, (size_t)periods, now), "services", services,
		      "tasks", tasks);
	counts_done(&cn);
	return 0;
}
