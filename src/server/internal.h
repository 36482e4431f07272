/*
 * internal.h - what the files of berth server share: the server context, the
 * ECS call context and its error helpers, record (JSON in the store) helpers,
 * ARNs and pagination. Not an API for other modules (server.h is).
 *
 * Store layout (every value is JSON):
 *   /berth/identity                  account, keys, CA (first server creates it)
 *   /berth/clusters/NAME             cluster
 *   /berth/taskdefs/FAMILY/%010d     task definition revision
 *   /berth/instances/CLUSTER/ID      container instance
 *   /berth/nodes/ID                  node identity (cert fingerprint, cluster, revoked)
 *   /berth/alive/ID                  bound to the agent's lease: present = connected
 *   /berth/tasks/CLUSTER/ID          task
 *   /berth/services/CLUSTER/NAME     service (its deployments, task sets and events inside)
 *   /berth/tags/ARN                  tags of a resource
 *   /berth/placement/CLUSTER         bumped by every placement (compare-and-swap token)
 *   /berth/subnets/BLOCK             a block of the cluster CIDR held by a node (overlay.c)
 *   /berth/leader                    the leader's id, bound to its lease
 *   /berth/lb/...                    load balancers, target groups, attachments (lb.h)
 *   /berth/logs/groups/NAME          log group (logs.c)
 *   /berth/logs/streams/HEX/NAME     log stream of the group whose name hashes to HEX
 */
#ifndef BERTH_SERVER_INTERNAL_H
#define BERTH_SERVER_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "common/error.h"
#include <stdatomic.h>

#include "common/strbuf.h"
#include "http/http.h"
#include "sched/sched.h"
#include "server/hbcache.h"
#include "store/store.h"

#define SERVER_DEFAULT_ROOT   "/var/lib/berth/server"
#define SERVER_DEFAULT_LISTEN "127.0.0.1:7443"
#define SERVER_DEFAULT_REGION "us-east-1"
/* Largest API request body (a 1 MiB PutLogEvents batch, JSON-escaped, fits). */
#define SERVER_MAX_BODY       (4u << 20)
#define ECS_TARGET_PREFIX     "AmazonEC2ContainerServiceV20141113."
#define AGENT_PREFIX          "/agent/v1/"

struct server {
	struct store *store;
	char *root, *listen, *region, *store_spec;
	char *id; /* this replica: random, for leader election */
	/* replicas.c: this replica's stable id and how the others reach it */
	char *replica_id; /* ROOT/replica-id */
	char *advertise;  /* --advertise-url, else the endpoint it prints */
	int64_t replica_lease;
	pthread_mutex_t replicas_lock;
	pthread_cond_t replicas_cond;
	pthread_t replicas_thread;
	bool replicas_running, replicas_stop;
	struct replica_conn *replica_pool; /* idle connections to other replicas (server_replica_call) */
	/* identity (same on every replica) */
	char *account, *access_key, *secret, *join_secret, *ca_pem, *ca_key_pem;
	int lost_node_timeout; /* seconds */
	int agent_lease_ttl;   /* seconds */
	int leader_ttl;        /* seconds */
	int task_retention;    /* seconds a STOPPED task / INACTIVE service stays (retention.h) */
	/* overlay (overlay.c) */
	char *cluster_cidr;   /* IPv4 CIDR the nodes' task subnets come from */
	int node_subnet_bits; /* prefix length of one node's subnet */
	int vxlan_id;         /* VNI of the cluster's VXLAN overlay */
	/* ECR (ecr.c, ecr-registry.c; docs/ecr.md) */
	char *registry_addr;  /* --registry HOST:PORT, or NULL: no registry, no ECR */
	char *vuln_feed;      /* --vuln-feed DIR of OSV files, or NULL */
	char *registry_clock; /* --registry-clock FILE (tests): the registry's "now" when it holds a number */
	struct ecr_server *ecr;
	pthread_mutex_t lock;
	struct sched_cache *sched;    /* sched-cache.c: the scheduler's snapshots */
	struct record_cache *records; /* records.c: clusters and task definitions (NULL: not cached) */
	struct hb_cache *hbc;         /* hbcache.c: heartbeat answers (SQLite store only; else NULL) */
	/* agent.c: the writes of heartbeats answered on the fast path (node id -> true) */
	pthread_t hbw_thread;
	pthread_mutex_t hbw_lock;
	pthread_cond_t hbw_cond;
	json_t *hbw_pending;
	bool hbw_started, hbw_stop;
	bool leader, stopping;
	pthread_cond_t stop_cond;
	/* logs (logs.c) */
	struct logs_store *logs; /* events under ROOT/logs */
	int logs_day_seconds;    /* length of a retention "day" (86400; tests shorten it) */
	int logs_sweep_interval; /* seconds between retention sweeps */
	bool logs_fsync;         /* --logs-fsync: fdatasync each batch before answering */
	pthread_t logs_sweeper;
	bool logs_sweeping, logs_stop, logs_kicked;
	pthread_mutex_t logs_lock;
	pthread_cond_t logs_cond;
	/* metrics (metrics.c, docs/metrics.md): in memory only */
	struct metrics_store *metrics;
	int metrics_period;  /* seconds of one datapoint (--metrics-period; 60) */
	char *metrics_token; /* bearer token of GET /metrics (ROOT/metrics-token) */
	json_t
	    *metrics_lb; /* "NODE/LB" -> the node's last request counter of the load balancer (under lock) */
	pthread_t metrics_sharer; /* metrics.c: ingests the other replicas' copies (etcd) */
	bool metrics_sharing;
	atomic_bool metrics_share_stop;
	struct longpoll *longpoll; /* longpoll.c */
	struct http_limits http_limits;
};

/* ---- longpoll.c: agents' task long polls, parked without a thread ---- */
struct http_request;
typedef void (*longpoll_answer_fn)(struct http_request *req, void *ctx);
int server_longpoll_start(struct server *s, struct berth_error **err);
/* Stop watching and answer every parked poll (before the HTTP server stops). */
void server_longpoll_stop(struct server *s);
/*
 * Park req until an event under key_prefix (after revision since) concerns it
 * (arn NULL: any; else a record naming arn, or a delete) or wait_sec pass;
 * then answer(req, ctx) runs on an HTTP worker. false: not parked (something
 * changed already, or the server stops): answer now.
 */
bool server_longpoll_park(struct server *s, struct http_request *req, const char *key_prefix, const char *arn,
			  int64_t since, int wait_sec, longpoll_answer_fn answer, void *ctx);

/* ---- identity.c ---- */
int server_identity_init(struct server *s, struct berth_error **err);

/* ---- ECS calls (ecs.c) ---- */
struct ecs_call {
	struct server *srv;
	bool local;           /* "berthLocal": another replica asks for what this one holds (replicas.c) */
	const char *registry; /* ECR calls: the cluster registry's HOST:PORT (server_ecr_call()) */
	const char *type;     /* error __type, NULL while fine */
	unsigned status;
	char *msg;
	/* an answer the operation serialized itself (RunTask, StartTask: the task records as
	 * written): sent instead of *out; n_tasks counts its tasks */
	char *body;
	size_t n_tasks;
};

/* Record an ECS error (status 400 unless the type says otherwise); returns -1. */
int server_ecs_fail(struct ecs_call *c, const char *type, const char *fmt, ...) _printf_(3, 4);
/* Record a ServerException for an internal failure; returns -1. */
int server_ecs_internal(struct ecs_call *c, struct berth_error *err);

typedef int (*ecs_op_fn)(struct ecs_call *c, json_t *in, json_t **out);

struct http_request;
/* 0 when req (body of len bytes) is SigV4-signed with the cluster's key for service; else an error in c. */
int server_ecs_authenticate(struct ecs_call *c, struct http_request *req, const char *body, size_t len,
			    const char *service);
/* elbv2.c: ELBv2's query protocol on the endpoint (elbv2.h). */
bool server_elbv2_request(struct http_request *req);
void server_elbv2_handle(struct server *s, struct http_request *req);

/* Field getters with ECS's errors (SerializationException for a wrong JSON type). */
int server_ecs_str(struct ecs_call *c, json_t *in, const char *key, bool required, const char **ret);
int server_ecs_int(struct ecs_call *c, json_t *in, const char *key, int64_t min, int64_t max, int64_t *ret);
int server_ecs_strv(struct ecs_call *c, json_t *in, const char *key,
		    json_t **ret); /* array of strings or NULL */
/* Paginate an array of strings in strcmp order: maxResults (1..limit), nextToken; sets out[key] and
 * nextToken. */
int server_ecs_paginate(struct ecs_call *c, json_t *in, json_t *all, int limit, const char *key, json_t *out);

/* ---- records (records.c) ---- */
int server_record_get(struct server *s, const char *key, json_t **ret, int64_t *ret_rev,
		      struct berth_error **err);
int server_record_put(struct server *s, const char *key, json_t *value, struct berth_error **err);
/* Put only if the key's mod revision is still rev (0: only if absent); *ok tells. */
int server_record_cas(struct server *s, const char *key, json_t *value, int64_t rev, bool *ok,
		      struct berth_error **err);
/* Every record under prefix, in key order, as a new JSON array. */
int server_record_list(struct server *s, const char *prefix, json_t **ret, struct berth_error **err);
/* The same, with the store revision the records were read at (*ret_rev). */
int server_record_list_at(struct server *s, const char *prefix, json_t **ret, int64_t *ret_rev,
			  struct berth_error **err);
/*
 * Clusters and task definitions, read on every RunTask and written rarely,
 * cached as parsed records while no write to one was told by the store
 * (server_record_cache_note_write(), from the store's write observer): only for a
 * store this server alone writes (SQLite; etcd replicas' writes are never
 * told here). server_record_get_shared() returns a reference the caller must not
 * modify (json_decref() it); other keys, or no cache, read the store.
 */
struct record_cache;
struct record_cache *server_record_cache_new(void);
struct record_cache *server_record_cache_free(struct record_cache *c);
void server_record_cache_note_write(struct record_cache *c, const struct store_op *ops, size_t n_ops);
int server_record_get_shared(struct server *s, const char *key, json_t **ret, struct berth_error **err);
/* The server's store observer: the scheduler, record and heartbeat caches' (store_on_write(store, this,
 * srv)). */
void server_note_write(void *srv, const struct store_op *ops, size_t n_ops);
double server_record_now(void);
char *server_arn_make(struct server *s, const char *kind, const char *rest);
/* The last '/'-separated part of an ARN, or the string itself when it is not an ARN. */
const char *server_arn_tail(const char *s);
bool server_name_valid(const char *s, size_t max); /* letters, digits, '-' and '_' */
char *server_uuid_new(void);                       /* 32 random hex digits */
/*
 * A task id: 32 hex digits as ECS's, the first 12 the creation time in
 * milliseconds and 20 random ones after. New task records thus sort after
 * older ones, so the store's key index grows at its end instead of taking a
 * write at a random place per task (docs/cluster.md, "Task ids").
 */
char *server_task_id_new(void);
/* 32 hex digits, unique but not secret (container ids): a per-thread generator, not OpenSSL's. */
char *server_id_hex_new(void);
#define ID_HEX_LEN 32
/* server_id_hex_new() into buf, NUL-terminated. */
void server_id_hex_fill(char buf[ID_HEX_LEN + 1]);

/* ---- clusters.c ---- */
/* Resolve a cluster name or ARN (NULL: "default") to an ACTIVE cluster record; ClusterNotFoundException. */
int server_cluster_resolve(struct ecs_call *c, const char *ref, json_t **ret, char **ret_name);
/* The same, *ret maybe from the record cache (server_record_get_shared()): read only. */
int server_cluster_resolve_shared(struct ecs_call *c, const char *ref, json_t **ret, char **ret_name);
int server_ecs_create_cluster(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_describe_clusters(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_clusters(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_account_settings(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_delete_cluster(struct ecs_call *c, json_t *in, json_t **out);

/* ---- taskdefs.c, taskdef-validate.c ---- */
int server_ecs_register_task_definition(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_describe_task_definition(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_deregister_task_definition(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_task_definitions(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_task_definition_families(struct ecs_call *c, json_t *in, json_t **out);
/* Find "family", "family:rev" or an ARN; InvalidParameterException/ClientException when absent. */
int server_taskdef_resolve(struct ecs_call *c, const char *ref, json_t **ret);
/* The same, *ret maybe from the record cache (server_record_get_shared()): read only. */
int server_taskdef_resolve_shared(struct ecs_call *c, const char *ref, json_t **ret);
/* ECS's refusal to launch from a deregistered (INACTIVE) revision: InvalidParameterException "TaskDefinition
 * is inactive" (RunTask, StartTask, CreateService, UpdateService with a new one, CreateTaskSet); 0 if ACTIVE.
 */
int server_taskdef_check_launchable(struct ecs_call *c, const json_t *td);
/* ECS's refusal of a networkConfiguration (in the request in) for a definition whose networkMode is not
 * awsvpc: InvalidParameterException; 0 otherwise. */
int server_taskdef_check_network_config(struct ecs_call *c, const json_t *td, const json_t *in);

/* ---- instances.c ---- */
int server_ecs_list_container_instances(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_describe_container_instances(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_update_container_instances_state(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_deregister_container_instance(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_put_attributes(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_attributes(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_delete_attributes(struct ecs_call *c, json_t *in, json_t **out);
/* An instance record with the computed fields (agentConnected, remainingResources, counts). */
json_t *server_instance_view(struct server *s, json_t *inst, json_t *tasks);
bool server_instance_connected(struct server *s, const char *id);

/* ---- tags.c ---- */
int server_ecs_tag_resource(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_untag_resource(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_tags_for_resource(struct ecs_call *c, json_t *in, json_t **out);
/* Validate a "tags" list (ECS's errors). */
int server_tags_check(struct ecs_call *c, json_t *tags);
/* Validate and store the "tags" of a create call for arn. */
int server_tags_set(struct ecs_call *c, const char *arn, json_t *tags);
json_t *server_tags_get(struct server *s, const char *arn);
/*
 * The tags of a new task (a new list): its own (RunTask's tags; NULL for a service's task), then,
 * when propagate is "TASK_DEFINITION" / "SERVICE", those of td / svc it lacks, and with managed
 * ECS's aws:ecs:clusterName (and aws:ecs:serviceName for a service's task); at most 50.
 */
json_t *server_task_tags(struct server *s, const char *cluster, json_t *own, json_t *td, json_t *svc,
			 const char *propagate, bool managed);

/* ---- tasks.c ---- */
int server_ecs_run_task(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_start_task(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_stop_task(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_explain_placement(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_describe_tasks(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_tasks(struct ecs_call *c, json_t *in, json_t **out);
bool server_task_active(json_t *task); /* lastStatus is not STOPPED */
/* What to place: RunTask's input after validation (borrowed). */
struct task_run_args {
	json_t *td, *overrides, *constraints, *strategies; /* overrides has containerOverrides */
	const char *group, *started_by;
	int64_t count;              /* 1..SCHED_MAX_COUNT */
	json_t *explicit_instances; /* StartTask: instance refs, one task each (count ignored) */
	json_t *tags;
};
/*
 * Place and bind a->count tasks (or one per explicit instance) in the
 * cluster, retrying on concurrent placements; appends the new task records
 * to tasks and the ECS failures to failures. -1 with an ECS error in c
 * (InvalidParameterException for a bad constraint or a cluster without
 * instances, ServerException).
 */
int server_task_place(struct ecs_call *c, const char *cluster, json_t *cl, struct task_run_args *a,
		      json_t *tasks, json_t *failures);
/* server_task_place(), the records appended to tasks as written (a JSON array's items, comma-separated). */
int server_task_place_text(struct ecs_call *c, const char *cluster, json_t *cl, struct task_run_args *a,
			   struct strbuf *tasks, size_t *n_tasks, json_t *failures);
/*
 * Ask a task to stop (desiredStatus STOPPED, stopCode, stoppedReason,
 * stoppingAt) by compare-and-swap. 1 when changed, 0 when it was already
 * stopping, -ENOENT for no such record, -EAGAIN after repeated conflicts.
 * *ret_task (may be NULL) gets the record.
 */
int server_task_request_stop(struct server *s, const char *key, const char *code, const char *reason,
			     json_t **ret_task, struct berth_error **err);
/* Mark a task STOPPED (desired and last) with a code and reason; writes it. */
int server_task_stop_now(struct server *s, const char *key, json_t *task, const char *code,
			 const char *reason, struct berth_error **err);

/* ---- sched-request.c: ECS JSON -> scheduler request ---- */
/* A sched_request and the arrays it points to (strings are borrowed from the JSON it came from). */
struct sreq {
	struct sched_request req;
	struct sched_strategy strategies[SCHED_MAX_STRATEGIES];
	struct sched_constraint constraints[SCHED_MAX_CONSTRAINTS];
	size_t n_constraints;
	uint16_t ports[SCHED_MAX_PORTS];
	void **blocks; /* arena */
	size_t n_blocks;
	char *msg; /* why building or preparing failed */
};
struct sreq_input {
	json_t *td;          /* the task definition record (its berthScheduling included) */
	json_t *constraints; /* request placementConstraints (may be NULL) */
	json_t *strategies;  /* request placementStrategy (may be NULL) */
	const char *group;
	int64_t cpu, memory; /* task size after overrides */
};
/* -EINVAL with r->msg naming the field. r must be server_sreq_done() either way. */
int server_sreq_build(struct sreq *r, const struct sreq_input *in);
/* sched_prepare with r->msg on failure (the library's text: field and position). */
int server_sreq_prepare(struct sreq *r, struct sched_snapshot *snap, struct sched_prepared **ret);
/* Add berthScheduling fields (an object) to r->req. */
int server_sreq_ext(struct sreq *r, json_t *ext);
void server_sreq_done(struct sreq *r);
/*
 * RegisterTaskDefinition: the berthScheduling object of the request merged
 * with its berth:* tags (each value JSON), shape-checked. *ret is a new
 * object (maybe empty); -EINVAL with *ret_msg (caller frees) naming the tag.
 */
int server_sreq_collect_ext(json_t *in, json_t **ret, char **ret_msg);
/* "berthPlacement" of a placed task record: host ports, priority, tolerations, anti-affinity. */
json_t *server_sreq_task_extra(const struct sreq *r, json_t *td, const struct sched_placement *pl);
/* The same as text appended to sb, head being server_sreq_extra_head(td) (once per request). */
void server_sreq_task_extra_text(const struct sreq *r, const char *head, const struct sched_placement *pl,
				 struct strbuf *sb);
/* The task definition's part of every berthPlacement (tolerations, taskAntiAffinity): `"k":v,...`. */
char *server_sreq_extra_head(json_t *td);
/* Why a task went where it did (berthPlacement.explanation): "best of 12 feasible nodes by spread(...); ...".
 */
char *server_sreq_placement_text(const struct sreq *r, const struct sched_placement *pl);
/* A task record as the scheduler's task (borrowing from task and r). */
int server_sreq_task_spec(struct sreq *r, json_t *task, struct sched_task_spec *ret);

/* ---- sched-cache.c: one scheduler snapshot per cluster, kept current from the store ---- */
struct sched_cache *server_sched_cache_new(void);
struct sched_cache *server_sched_cache_free(struct sched_cache *c);
/*
 * Lock the cache, apply the store's events since the last call (or load the
 * cluster on first use, or reload everything after a compaction) and return
 * the cluster's snapshot; valid until server_sched_cache_unlock(). One thread at a
 * time (one lock for every cluster).
 */
int server_sched_cache_lock(struct server *s, const char *cluster, struct sched_snapshot **ret,
			    struct berth_error **err);
/*
 * server_sched_cache_lock, but without reading the store when the cluster is loaded,
 * the last catch-up is younger than max_age_ms and no write that matters to
 * placement (a drain, attributes, taints, a registration or deregistration,
 * a task stopped) was acknowledged since it began: concurrent placements then
 * decide one after the other without waiting for the store's commit in
 * progress (their binds share the next one). Every change acknowledged to a
 * client is in the snapshot (read-your-writes); what it may miss is a lease
 * expiry or another replica's write of the last max_age_ms. Placements are
 * never missed (they all go through this cache, or compare the placement
 * token). Needs server_sched_cache_note_write() installed as the store's observer.
 */
int server_sched_cache_lock_fresh(struct server *s, const char *cluster, int max_age_ms,
				  struct sched_snapshot **ret, struct berth_error **err);
/*
 * Locked: apply the store's events since the last catch-up. -ERANGE: the
 * cache was reset (compacted history): unlock and lock again, the snapshot
 * pointer is gone.
 */
int server_sched_cache_catch_up(struct server *s, struct berth_error **err);
/* The store's write observer (store_on_write(store, server_sched_cache_note_write, cache)). */
void server_sched_cache_note_write(void *cache, const struct store_op *ops, size_t n_ops);
/* Forget the cluster's snapshot (it is rebuilt from the store on next use). Locked. */
void server_sched_cache_drop(struct server *s, const char *cluster);
void server_sched_cache_unlock(struct server *s);
/* The node's ecs.availability-zone attribute, or NULL. Locked; valid until unlocked. */
const char *server_sched_cache_node_zone(struct server *s, const char *node_id);
/* Whether a task record holds its node's resources (not STOPPED, not preempted). */
bool server_task_holds_resources(json_t *task);
#define TASK_STOP_CODE_PREEMPTED "Preempted"
/* sched-evict.c: stop the tasks NoExecute taints evict (leader, once a second). */
void server_sched_evict_tick(struct server *s);
/*
 * rebalance.c: services' berthScheduling (rebalance, disruptionBudget):
 * validate it at CreateService/UpdateService (from the field or the
 * berth:rebalance / berth:disruptionBudget tags) into the record, and the
 * leader's rebalancer (once a second).
 */
int server_service_sched_ext(struct ecs_call *c, json_t *in, json_t *svc);
/*
 * TagResource (add: [{key, value}]) / UntagResource (remove_keys: [key]) on
 * a service ARN: the berth:rebalance and berth:disruptionBudget tags set or
 * clear the service's berthScheduling field. Checked before anything is
 * written (InvalidParameterException naming the tag). 0 also for other ARNs.
 */
int server_service_sched_tags(struct ecs_call *c, const char *arn, json_t *add, json_t *remove_keys);
/* A service's spread attributes other than zone and instance, in strategy order (borrowed); how many. */
size_t server_service_spread_attributes(json_t *svc, const char **out, size_t max);
/* An instance record's attribute (or label) value, or NULL. */
const char *server_instance_attribute(json_t *inst, const char *name);
/*
 * The leader's scheduling extensions for one service, fed once a second by
 * server_deploy_run's pass (its service record and the cluster's task list): the
 * disruption budget, and the rebalancer when the pass left the service alone
 * (quiet).
 */
/* tasks: the cluster's task records, read at store revision tasks_rev. */
void server_rebalance_service(struct server *s, const char *cluster, json_t *svc, json_t *tasks,
			      int64_t tasks_rev, bool quiet);
/* Container instance attributes `berth:taint:KEY` = "VALUE:EFFECT" are taints (docs/scheduler.md). */
#define TAINT_ATTR_PREFIX "berth:taint:"

/* ---- agent.c (the agent protocol) ---- */
struct http_request;
void server_agent_handle(struct server *s, struct http_request *req);
/* The HTTP fast path (http_quick_fn, userdata the server): a heartbeat whose answer is cached (hbcache.h). */
bool server_agent_quick(const char *method, const char *path, const char *peer, const char *body,
			size_t body_len, unsigned *ret_status, char **ret_body, size_t *ret_len,
			void *userdata);
/* The heartbeat writer thread of the fast path (started with the heartbeat cache, stopped after the
 * listener). */
int server_agent_hb_writer_start(struct server *s, struct berth_error **err);
void server_agent_hb_writer_stop(struct server *s);

/* ---- overlay.c ---- */
#define OVERLAY_DEFAULT_CIDR        "10.42.0.0/16"
#define OVERLAY_DEFAULT_SUBNET_BITS 24
#define OVERLAY_DEFAULT_VXLAN_ID    1
/*
 * The task subnet of node id (its record must exist): the one it holds when
 * requested is NULL or equal, else the requested CIDR (must lie in the
 * cluster CIDR and not overlap another node's: -EINVAL, -EEXIST) or the
 * first free block (-ENOSPC, the message names the cluster CIDR). Written
 * into the node record (taskSubnet, plus the members of fields when not NULL)
 * by compare-and-swap. *ret: caller frees.
 */
int server_overlay_assign(struct server *s, const char *id, const char *requested, json_t *fields, char **ret,
			  struct berth_error **err);
/* Free the node's subnet (claims and the record's taskSubnet); 0 when it had none. */
int server_overlay_release(struct server *s, const char *id, struct berth_error **err);
/* The VTEP MAC of a node: locally administered, derived from its id. Caller frees. */
char *server_overlay_vtep_mac(const char *node_id);
/* GET /agent/v1/peers?since=REV&wait=SEC for the authenticated node. */
void server_overlay_handle_peers(struct server *s, struct http_request *req, json_t *self);

/* ---- lb.c (load balancers, lb.h) ---- */
int server_ecs_berth_create_load_balancer(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_describe_load_balancers(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_delete_load_balancer(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_describe_target_health(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_attach_load_balancer(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_detach_load_balancer(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_berth_drain_targets(struct ecs_call *c, json_t *in, json_t **out);
/* GET /agent/v1/dataplane?wait=SEC&hash=H for the authenticated node (docs/cluster.md). */
void server_lb_handle_dataplane(struct server *s, struct http_request *req, json_t *node);
/* POST /agent/v1/targethealth: the node's HAProxy view of its targets (lb.h). */
void server_lb_handle_target_health(struct server *s, struct http_request *req, json_t *node);
/* The nodes' target health reports of a cluster (records, array) and which of those nodes are connected. */
int server_lb_health_reports(struct server *s, const char *cluster, json_t **ret_reports, json_t **ret_alive,
			     struct berth_error **err);

/* ---- ecr.c (the ECR API), ecr-registry.c (the registry it runs; docs/ecr.md) ---- */
#define ECR_TARGET_PREFIX        "AmazonEC2ContainerRegistry_V20150921."
#define ECR_TARGET_NAME          "AmazonEC2ContainerRegistry_V20150921" /* aws_client's form */
#define ECR_REPOS_PREFIX         "/berth/ecr/repos/"                    /* + NAME: repository */
#define ECR_IMAGES_PREFIX        "/berth/ecr/images/" /* + NAME@DIGEST: pushedAt, scan results */
#define ECR_META_PREFIX          "/berth/ecr/meta/"   /* + NAME: lifecycle evaluation and preview */
/* Registry passwords handed to nodes (GET /agent/v1/registry) last an hour. */
#define AGENT_REGISTRY_TOKEN_TTL 3600
/* Start the registry at s->registry_addr (TLS from the cluster CA) and the ECR worker. */
int server_ecr_start(struct server *s, struct berth_error **err);
void server_ecr_stop(struct server *s);
/* The ECR operation called name, or NULL. */
ecs_op_fn server_ecr_find_op(const char *name);
/*
 * Run ECR operation op (known to server_ecr_find_op()) on any replica: here when this
 * server runs the registry; else calls that only need the store run here and
 * the others go to the replica that runs it (docs/ecr.md "Several servers").
 */
int server_ecr_call(struct ecs_call *c, const char *op, json_t *in, json_t **out);
/*
 * Where the cluster registry runs: *ret_endpoint its HOST:PORT, *ret_replica
 * the replica's id (NULL: this server). -ENOENT: no replica runs one. Caller frees.
 */
int server_ecr_locate(struct server *s, char **ret_replica, char **ret_endpoint, struct berth_error **err);
/* "host:port" clients push to, or NULL when this server runs no registry. */
const char *server_ecr_endpoint(struct server *s);
struct registry *server_ecr_registry(struct server *s);
/* A registry password (ecr/ecr.h) valid until expires. Caller frees. */
char *server_ecr_issue_password(struct server *s, int64_t expires);
/* The registry's notion of now (--registry-clock, else the real time). */
double server_ecr_now(struct server *s);
/* Queue a scan of repo@digest for the worker. */
void server_ecr_queue_scan(struct server *s, const char *repo, const char *digest);
/* Ask the worker to apply repo's lifecycle policy now. */
void server_ecr_kick_lifecycle(struct server *s);
/*
 * The images of repo with ECR's details: [{imageDigest, imageTags, imagePushedAt, imageSizeInBytes,
 * imageManifestMediaType, artifactMediaType, "scan" (the stored scan, or absent), "indexChild" (true
 * for a manifest an index of the repository lists)}], newest first.
 */
json_t *server_ecr_images(struct server *s, const char *repo);
/*
 * The images policy_text (ECR's JSON) expires in repo now: ECR's previewResults
 * ({imageTags, imageDigest, imagePushedAt, action, appliedRulePriority}).
 * -EINVAL with *ret_msg when the policy is invalid. With apply, they are deleted.
 */
int server_ecr_lifecycle_run(struct server *s, const char *repo, const char *policy_text, bool apply,
			     json_t **ret, char **ret_msg);
char *server_ecr_repo_key(const char *repo);
char *server_ecr_image_key(const char *repo, const char *digest);

/* ---- logs.c: CloudWatch Logs (Logs_20140328) ---- */
#define LOGS_TARGET_PREFIX "Logs_20140328."
int server_logs_create_log_group(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_delete_log_group(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_describe_log_groups(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_create_log_stream(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_delete_log_stream(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_describe_log_streams(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_put_log_events(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_get_log_events(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_filter_log_events(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_put_retention_policy(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_delete_retention_policy(struct ecs_call *c, json_t *in, json_t **out);
/* POST /agent/v1/logs from an authenticated node. */
void server_logs_agent_ingest(struct server *s, struct http_request *req);
/* Private logs calls between replicas (docs/logs.md "Several servers"). */
int server_logs_berth_stream_stats(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_berth_delete_files(struct ecs_call *c, json_t *in, json_t **out);
int server_logs_berth_agent_events(struct ecs_call *c, json_t *in, json_t **out);
/* Open ROOT/logs and start the retention sweep; server_logs_stop() ends both. */
int server_logs_start(struct server *s, struct berth_error **err);
void server_logs_stop(struct server *s);
/* Sweep now (a retention policy changed). */
void server_logs_sweep_kick(struct server *s);

/* ---- services.c, tasksets.c: the service API; deploy.c: its controller ---- */
#define SERVICE_MAX_EVENTS 100 /* ECS keeps the latest 100 events */
int server_ecs_create_service(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_update_service(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_delete_service(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_describe_services(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_services(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_list_services_by_namespace(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_create_task_set(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_update_task_set(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_update_service_primary_task_set(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_delete_task_set(struct ecs_call *c, json_t *in, json_t **out);
int server_ecs_describe_task_sets(struct ecs_call *c, json_t *in, json_t **out);
char *server_service_key(const char *cluster, const char *name);
/* Resolve a service name or ARN: ServiceNotFoundException when absent (or INACTIVE unless any_status). */
int server_service_resolve(struct ecs_call *c, const char *cluster, const char *ref, bool any_status,
			   json_t **ret, int64_t *ret_rev);
/*
 * Read-modify-write of a service record: edit changes svc in place and
 * returns 0 (write it by compare-and-swap; re-read and edit again on a
 * conflict), 1 (answer it without a write) or -1 (an ECS error in c).
 * *ret: the record as written.
 */
typedef int (*service_edit_fn)(struct ecs_call *c, const char *cluster, json_t *svc, void *ctx);
int server_service_edit(struct ecs_call *c, const char *cluster, const char *sref, service_edit_fn edit,
			void *ctx, json_t **ret);
/* A copy of the record with live runningCount/pendingCount from tasks (NULL: read them), no berth* fields. */
json_t *server_service_view(struct server *s, json_t *svc, json_t *tasks, bool with_tags);
/* Prepend an event ("(service NAME) ..."), keeping the latest SERVICE_MAX_EVENTS. */
void server_service_event(json_t *svc, const char *fmt, ...) _printf_(2, 3);
/* ... dated at (epoch seconds): a controller's event carries its pass's time, the drainingAt it wrote */
void server_service_event_at(json_t *svc, double at, const char *msg);
bool server_service_is_daemon(json_t *svc);
bool server_service_is_external(json_t *svc);
/* ECS's service placement: AZ-balanced spread first, then the user's strategies (or spread by instance). */
json_t *server_service_strategies(json_t *user);
/* "ecs-svc/" + 19 digits, random. Caller frees. */
char *server_deployment_id_new(void);
/* A new PRIMARY deployment record, rolloutState IN_PROGRESS. */
json_t *server_deployment_new(const char *id, json_t *svc, const char *td_arn, int64_t desired);
/* NAME of arn:aws:elasticloadbalancing:...:targetgroup/NAME/ID, or NULL. Caller frees. */
char *server_target_group_name(const char *arn);
/* A task set's computedDesiredCount: ceil(service desiredCount * scale / 100). */
int64_t server_task_set_count(json_t *svc, json_t *ts);
/*
 * One controller pass over every service (the leader, after every store
 * change and each second); tick: the once-a-second one, which also runs
 * server_rebalance_service() for every service.
 */
void server_deploy_run(struct server *s, bool tick);

/* ---- metrics.c (docs/metrics.md) ---- */
int server_metrics_start(struct server *s, struct berth_error **err); /* the store and ROOT/metrics-token */
void server_metrics_stop(struct server *s);
/* POST /agent/v1/metrics from the authenticated node. */
void server_metrics_agent_ingest(struct server *s, struct http_request *req, json_t *node);
/* The other replicas' copies of their agents' samples (etcd): a watch thread. */
int server_metrics_share_start(struct server *s, struct berth_error **err);
void server_metrics_share_stop(struct server *s);

/* ---- replicas.c ---- */

/* Load or make this replica's id, register it (endpoint: what peers call) and keep it alive. */
int server_replicas_start(struct server *s, const char *endpoint, struct berth_error **err);
void server_replicas_stop(struct server *s);
/* The lease of this replica's registration (0 while it has none). */
int64_t server_replica_lease(struct server *s);
/* id is NULL (data from before replicas were named) or this replica. */
bool server_replica_is_self(struct server *s, const char *id);
/* 1: replica id's registration is alive (its lease holds), 0: gone, < 0: the store failed. */
int server_replica_registered(struct server *s, const char *id, struct berth_error **err);
/* *ret: the live registration of the first replica (by id) that has field; -ENOENT: none. */
int server_replica_find(struct server *s, const char *field, json_t **ret, struct berth_error **err);
/*
 * Call op (awsJson1_1: target_prefix, SigV4 service) on replica id with in
 * plus "berthLocal": true; *out its answer. Its API error becomes c's error;
 * a replica that is not registered or not reachable: ServiceUnavailableException (503).
 */
int server_replica_call(struct ecs_call *c, const char *id, const char *target_prefix, const char *service,
			const char *op, json_t *in, json_t **out);
/* GET /metrics (bearer token). */
void server_metrics_handle_scrape(struct server *s, struct http_request *req);
int server_ecs_berth_describe_metrics(struct ecs_call *c, json_t *in, json_t **out);
/* NAME of a task whose group is service:NAME, else NULL (borrowed). */
const char *server_task_service_name(json_t *task);

/* ---- autoscaling.c: Application Auto Scaling (AnyScaleFrontendService), docs/autoscaling.md ---- */
#define AUTOSCALING_TARGET_PREFIX "AnyScaleFrontendService."
int server_as_register_scalable_target(struct ecs_call *c, json_t *in, json_t **out);
int server_as_describe_scalable_targets(struct ecs_call *c, json_t *in, json_t **out);
int server_as_deregister_scalable_target(struct ecs_call *c, json_t *in, json_t **out);
int server_as_put_scaling_policy(struct ecs_call *c, json_t *in, json_t **out);
int server_as_describe_scaling_policies(struct ecs_call *c, json_t *in, json_t **out);
int server_as_delete_scaling_policy(struct ecs_call *c, json_t *in, json_t **out);
int server_as_put_scheduled_action(struct ecs_call *c, json_t *in, json_t **out);
int server_as_describe_scheduled_actions(struct ecs_call *c, json_t *in, json_t **out);
int server_as_delete_scheduled_action(struct ecs_call *c, json_t *in, json_t **out);
int server_as_describe_scaling_activities(struct ecs_call *c, json_t *in, json_t **out);
/* One pass of the scaler (the leader, every second): scheduled actions, then policies. */
void server_autoscale_tick(struct server *s);
/*
 * Set an ACTIVE service's desiredCount through UpdateService's edit (services.c); why is the caller's
 * cause (logged and recorded by the caller). *ret_from: the count before. -ENOENT (service gone or
 * not ACTIVE) or another -errno, with *ret_msg (caller frees) either way.
 */
int server_service_set_desired_count(struct server *s, const char *cluster, const char *name, int64_t n,
				     const char *why, int64_t *ret_from, char **ret_msg);

/* ---- leader.c ---- */
int server_leader_start(struct server *s, struct berth_error **err);
void server_leader_stop(struct server *s);

#endif
