/*
 * runner.h - the tasks of one host, made real through the host layer.
 *
 * The agent hands the runner each task it is told about (ECS Task shape with
 * the full task definition embedded, see docs/cluster.md "agent protocol")
 * and the runner drives it: pull (with the ECS agent's pull behaviours),
 * task cgroup and volumes, for awsvpc a pause container owning the task's
 * network namespace and IP, containers created and started in dependsOn
 * order, essential-container exits stopping the task, stop with each
 * container's stopTimeout, then cleanup. Every transition is reported
 * through the callback with the task's status (ECS names: lastStatus,
 * containers[].lastStatus/exitCode/healthStatus, stopCode, stoppedReason).
 *
 * What the runner was told is persisted under its state directory, so after
 * an agent restart it reattaches to the containers that kept running and
 * reports the truth; tasks whose containers are gone are reported STOPPED.
 */
#ifndef BERTH_AGENT_RUNNER_H
#define BERTH_AGENT_RUNNER_H

#include <jansson.h>

#include "common/error.h"

struct host;
struct agent_runner;

enum agent_pull_policy {
	AGENT_PULL_DEFAULT = 0, /* pull; on failure use the cached image if there is one */
	AGENT_PULL_ALWAYS,      /* pull; fail the task when the pull fails */
	AGENT_PULL_ONCE,        /* pull only what is not cached */
	AGENT_PULL_PREFER_CACHED,
};

/* Called from runner threads with a task's status (borrowed; copy what you keep). */
typedef void (*agent_report_fn)(void *userdata, const json_t *status);

struct agent_runner_config {
	struct host *host;         /* required, borrowed */
	const char *state_dir;     /* required: tasks/<id>.json live here */
	const char *cgroup_parent; /* task cgroups: /<parent>/task-<id>; NULL: berth-tasks */
	const char *task_network;  /* awsvpc tasks' network name; NULL: ecs-tasks */
	const char *task_subnet;   /* its subnet when it must be created; NULL: the host picks */
	const char *pause_path;    /* static pause binary; NULL: found next to the executable */
	/* awsvpc tasks resolve through the resolver on the task network's gateway (the agent runs it),
	   with this search domain first (service discovery: SERVICE.CLUSTER.local); NULL: host's DNS */
	const char *dns_search;
	enum agent_pull_policy pull;
	struct logship *logs; /* awslogs shipper (logship.h); NULL: awslogs output stays local */
	agent_report_fn report;
	/*
	 * Credentials for pulling ref (may be NULL): 0 with *ret_user, *ret_password
	 * and *ret_certs_dir set (caller frees) when ref is on a registry that needs
	 * them (the cluster registry), 0 with nothing set otherwise, -errno when
	 * they cannot be had. Called with userdata.
	 */
	int (*registry_auth)(void *userdata, const char *ref, char **ret_user, char **ret_password,
			     char **ret_certs_dir);
	void *userdata;
};

/* Open, reload persisted tasks and resume them. */
int agent_runner_open(const struct agent_runner_config *cfg, struct agent_runner **ret,
		      struct berth_error **err);
/*
 * Apply one task as the server sees it: a new task starts; desiredStatus
 * STOPPED stops a running one (stopCode/stoppedReason from the task, else
 * UserInitiated). Unknown STOPPED tasks are ignored. Validated first: -EINVAL
 * with a message for a task this host cannot run (nothing is started then;
 * the caller reports it STOPPED with that reason).
 */
int agent_runner_apply(struct agent_runner *r, const json_t *task, struct berth_error **err);
/* Status of every task the runner knows (array, new reference). */
json_t *agent_runner_status(struct agent_runner *r);
/*
 * The RUNNING tasks for the metrics sampler (metrics.h): [{taskArn, cgroup
 * (the task cgroup, hierarchy-relative), netPids (host pids whose network
 * namespace is the task's: the pause container for awsvpc, every container
 * for bridge, none for host/none)}]. New reference.
 */
json_t *agent_runner_metrics_targets(struct agent_runner *r);
/* Forget STOPPED tasks the server has acknowledged (their state files go). */
void agent_runner_forget(struct agent_runner *r, const char *task_arn);
/* Stop watching (containers keep running, state stays for the next start) and free. Accepts NULL. */
struct agent_runner *agent_runner_close(struct agent_runner *r);

/* "default", "always", "once", "prefer-cached" -> policy; -EINVAL otherwise. */
int agent_pull_policy_parse(const char *s, enum agent_pull_policy *ret);

#endif
