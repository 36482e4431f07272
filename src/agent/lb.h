/*
 * lb.h - the agent's data plane for load balancers and service discovery
 * (docs/lb.md).
 *
 * The agent follows GET /agent/v1/dataplane (a long poll answering the
 * cluster's load balancers with their current targets and the discovery
 * names) and keeps:
 *
 *  - one HAProxy per agent (master-worker mode, a child of the agent, all its
 *    files in DIR = EXEC_ROOT/lb so agents in network namespaces on one
 *    machine never collide) with a frontend on every load balancer's port and
 *    a backend of fixed server slots. Target changes go through HAProxy's
 *    runtime API on DIR/admin.sock (`set server be/sN addr IP port P`, `set
 *    server be/sN state ready|drain|maint`), so they drop no connection; only
 *    a change of listeners (or more targets than slots) rewrites the
 *    configuration and reloads (SIGUSR2 to the master: a new worker takes
 *    the listening sockets, the old one finishes its connections). HAProxy
 *    is restarted if it dies and stopped with the agent.
 *  - the records file of the resolver (net_dns_set_records_file): SERVICE and
 *    SERVICE.CLUSTER.local with the addresses of the service's healthy tasks.
 */
#ifndef BERTH_AGENT_LB_H
#define BERTH_AGENT_LB_H

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/strbuf.h"

#define LB_POLL_SEC  20
#define LB_MIN_SLOTS 16
#define LB_MAX_SLOTS 1024
#define LB_HAPROXY   "/usr/sbin/haproxy"

/* One agent call (same contract as overlay_fetch_fn). */
typedef int (*lb_fetch_fn)(void *userdata, const char *path, long timeout_ms, json_t **ret,
			   struct berth_error **err);

/* POST body to path on the current server (the agent's target health reports). */
typedef int (*lb_post_fn)(void *userdata, const char *path, const json_t *body, long timeout_ms,
			  struct berth_error **err);

/* HAProxy's view of the targets is sampled this often and reported when it changes (or this often x 30). */
#define LB_HEALTH_MS 1000

struct lb_agent_config {
	const char *dir;          /* required: HAProxy's files (config, sockets, certificates, log) */
	const char *haproxy;      /* NULL: LB_HAPROXY */
	const char *records_file; /* NULL: no discovery; else written atomically for the resolver */
	lb_fetch_fn fetch;        /* required */
	lb_post_fn post;          /* NULL: HAProxy's health results are not reported */
	void *userdata;
};

struct lb_agent;

/* Start following the dataplane (threads: the long poll and HAProxy's supervisor). Strings are copied. */
int agent_lb_start(const struct lb_agent_config *cfg, struct lb_agent **ret, struct berth_error **err);
/* Stop the threads and HAProxy (its listeners close with the agent); free. Accepts NULL; returns NULL. */
struct lb_agent *agent_lb_stop(struct lb_agent *l);

/*
 * Wait (at most timeout_ms) until the first dataplane answer since the start
 * is applied: HAProxy routes by the server's current targets. The agent
 * calls it before stopping task copies the server no longer wants after a
 * restart, so its listeners never hold those as their only servers.
 * Accepts NULL.
 */
#define LB_SYNC_WAIT_MS 10000
void agent_lb_wait_synced(struct lb_agent *l, int timeout_ms);

/*
 * Requests each load balancer of this node has received since HAProxy
 * started: {"NAME": N} from HAProxy's `show stat` (the frontend's req_tot
 * for HTTP, its sessions for TCP). NULL when HAProxy is not running. New
 * reference. For the metrics sampler (metrics.h).
 */
json_t *agent_lb_request_counts(struct lb_agent *l);

/* ---- pure parts (tests/unit/test-agent-lb.c) ---- */

/* `show stat` CSV -> {"NAME": requests} for every frontend fe_NAME (req_tot, else stot). */
json_t *agent_lb_parse_stat(const char *csv);

enum lb_slot_state { LB_SLOT_FREE, LB_SLOT_READY, LB_SLOT_DRAIN };

struct lb_slot {
	char *id; /* the task id; NULL when free */
	char *addr;
	int port;
	enum lb_slot_state st;
};

struct lb_backend {
	char *name;
	int port;
	bool http;
	char *health_path; /* HTTP only */
	int interval, rise, fall;
	char *tls_pem; /* the certificate and key, or NULL */
	struct lb_slot *slots;
	size_t n_slots;
};

struct lb_set {
	struct lb_backend *v;
	size_t n;
};

void agent_lb_set_done(struct lb_set *s);
/*
 * The load balancers of a dataplane answer, slots not yet assigned (n_slots
 * 0). Entries with a bad name, port or protocol are skipped (counted in
 * *ret_skipped, may be NULL). Targets stay in the answer (agent_lb_plan reads them).
 */
void agent_lb_set_from_answer(const json_t *lbs, struct lb_set *ret, size_t *ret_skipped);
/* Whether b's listener and checks differ from a's (same name): then HAProxy reloads. */
bool agent_lb_backend_listener_changed(const struct lb_backend *a, const struct lb_backend *b);
/*
 * Bring b's slots to targets ([{id, address, port, state}] as the server
 * answers; state "healthy" or "draining"): a known target keeps its slot, a
 * gone one frees its slot (maint), a new one takes a free slot. The runtime
 * API commands are appended to cmds (one per line) when cmds is not NULL.
 * Returns false when the slots do not suffice (then nothing changed; grow
 * with agent_lb_backend_grow and render a new configuration).
 */
bool agent_lb_plan(struct lb_backend *b, const json_t *targets, struct strbuf *cmds);
/* Make room for at least n targets (LB_MIN_SLOTS, doubling, at most LB_MAX_SLOTS). */
void agent_lb_backend_grow(struct lb_backend *b, size_t n);
/* Move the slot assignment of the same-named backend of old into b (old loses it). */
void agent_lb_backend_take_slots(struct lb_backend *b, struct lb_backend *old);
/*
 * The HAProxy configuration of the set: global (master-worker, the admin
 * socket in dir), defaults, one frontend and backend per load balancer.
 * Occupied slots are rendered with their address (draining ones disabled),
 * free ones disabled. Certificates are read from DIR/certs/NAME.pem.
 */
void agent_lb_render_config(const struct lb_set *s, const char *dir, struct strbuf *out);
/*
 * The resolver's records file of a discovery object ({"domain": "C.local",
 * "names": {"SERVICE": ["IP", ...]}}): "NAME IP..." lines, each service as
 * SERVICE and SERVICE.DOMAIN, names in order.
 */
void agent_lb_render_records(const json_t *discovery, struct strbuf *out);
/*
 * {"be_NAME/sK": {"lb": NAME, "id": TASK, "addr": "IP:PORT"}} of the set's
 * occupied slots: what agent_lb_parse_health needs to name HAProxy's servers.
 */
json_t *agent_lb_slot_map(const struct lb_set *s);
/*
 * `show stat` CSV -> {NAME: {TASK: {"state", "reason"?, "description"?}}}:
 * HAProxy's view of each target in slots (ELB's states and reasons: UP ->
 * healthy; DOWN after a failed check -> unhealthy with
 * Target.ResponseCodeMismatch "Health checks failed with these codes:
 * [404]", Target.Timeout or Target.FailedHealthChecks; DOWN before any check
 * -> initial; DRAIN -> draining). Every load balancer of slots is present,
 * also without targets; MAINT servers and servers whose address is no longer
 * the slot's are left out.
 */
json_t *agent_lb_parse_health(const char *csv, const json_t *slots);
/*
 * The server-state file the next HAProxy worker loads
 * (load-server-state-from-file), from `show servers state` of the running
 * one (NULL: none runs). A new worker would otherwise start every checked
 * server DOWN until `rise` checks pass, answering 503 meanwhile. Per ready
 * target of next: the running worker's line for its address and port, moved
 * to the target's slot (after an agent restart the slots are assigned anew),
 * when it is up there; nothing (DOWN until the checks pass) when it is down
 * there; a line with full health when the running worker does not know it:
 * the server only lists RUNNING, container-healthy tasks, and the checks take
 * a failing one down within fall x interval. Caller frees.
 */
char *agent_lb_server_state(const char *shown, const struct lb_set *next);
/*
 * The runtime API line of cmds (one command per line): the commands joined
 * by ';' and a final newline, with no empty command at the end (HAProxy
 * answers an empty command with "Unknown command" and its help).
 */
void agent_lb_runtime_line(const char *cmds, struct strbuf *out);
/* Whether an answer of the runtime API to `set server` commands means success. */
bool agent_lb_runtime_answer_ok(const char *out);

#endif
