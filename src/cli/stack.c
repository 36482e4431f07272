/*
 * stack.c - `berth apply -f compose.yml` and `berth stack ls|services|ps|rm`:
 * thin clients of the ECS API (and berth's load balancer operations) over
 * stack/ (compose mapping and plan, docs/stack.md).
 *
 * apply: read and map the whole file, read the stack's current objects,
 * compute the plan, and only then change anything, in the plan's order
 * (task definitions, load balancers, services in dependency order, jobs,
 * deletions). Every change that can be undone is journalled; when a step
 * fails, the journal is undone newest first, so a failed apply leaves the
 * stack as it was (deletions come last, after everything else succeeded).
 * Independent steps (the task definitions, the load balancers, the services)
 * run as waves of up to APPLY_WORKERS concurrent calls, started in the plan's
 * order: the cluster starts placing the first services' tasks while the
 * last ones are still being created (the calls, not the server, were the
 * sequential part of apply-to-running, docs/stack.md).
 */
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <unistd.h>

#include "cli/cli-build.h"
#include "cli/cli.h"
#include "cli/ecs.h"
#include "cli/opttab.h"
#include "cli/verbs.h"
#include "common/base64.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/strbuf.h"
#include "common/strv.h"
#include "stack/compose.h"
#include "stack/plan.h"
#include "stack/ytree.h"

#define DESCRIBE_SERVICES_BATCH 10 /* DescribeServices' limit */
#define WAIT_DEFAULT_SECONDS    300
#define APPLY_WORKERS           8 /* concurrent calls within a wave of independent steps */
#define ECR_TARGET_PREFIX       "AmazonEC2ContainerRegistry_V20150921"

struct apply_opts {
	const char *file, *name;
	bool dry_run, prune, wait;
	long wait_seconds;
};

/* ---- reading the stack's current objects ---- */

/* Every service of the cluster that is not INACTIVE, described with its tags. */
static int all_services(struct ecs_cli *e, json_t **ret)
{
	_cleanup_json_ json_t *arns = NULL, *out = json_array();
	if (cli_ecs_list(e, "ListServices", NULL, true, "serviceArns", &arns) < 0)
		return -1;
	for (size_t at = 0; at < json_array_size(arns); at += DESCRIBE_SERVICES_BATCH) {
		json_t *batch = json_array();
		for (size_t i = at; i < MIN(at + DESCRIBE_SERVICES_BATCH, json_array_size(arns)); i++)
			json_array_append(batch, json_array_get(arns, i));
		_cleanup_json_ json_t *in = json_pack("{s:o,s:[s]}", "services", batch, "include", "TAGS"),
				      *resp = NULL;
		if (cli_ecs_call(e, "DescribeServices", in, true, &resp) < 0)
			return -1;
		size_t i;
		json_t *s;
		json_array_foreach (json_object_get(resp, "services"), i, s)
			if (!streq_ptr(json_string_value(json_object_get(s, "status")), "INACTIVE"))
				json_array_append(out, s);
	}
	*ret = TAKE_PTR(out);
	return 0;
}

/* DescribeTaskDefinition with tags: {"taskDefinition", "tags"}. */
static int describe_taskdef(struct ecs_cli *e, const char *ref, json_t **ret)
{
	_cleanup_json_ json_t *in = json_pack("{s:s,s:[s]}", "taskDefinition", ref, "include", "TAGS");
	return cli_ecs_call(e, "DescribeTaskDefinition", in, false, ret);
}

/* The stack's jobs: the latest ACTIVE revision of each family STACK_* tagged kind=job. */
static int stack_jobs(struct ecs_cli *e, const char *stack, json_t *jobs)
{
	_cleanup_free_ char *prefix = xasprintf("%s_", stack);
	_cleanup_json_ json_t *in = json_pack("{s:s,s:s}", "familyPrefix", prefix, "status", "ACTIVE"),
			      *fams = NULL;
	if (cli_ecs_list(e, "ListTaskDefinitionFamilies", in, false, "families", &fams) < 0)
		return -1;
	size_t i;
	json_t *f;
	json_array_foreach (fams, i, f) {
		json_t *td = NULL;
		if (describe_taskdef(e, json_string_value(f), &td) < 0)
			return -1;
		const json_t *tags = json_object_get(td, "tags");
		if (streq_ptr(stack_tag_value(tags, STACK_TAG_NAMESPACE), stack) &&
		    streq_ptr(stack_tag_value(tags, STACK_TAG_KIND), "job"))
			json_object_set_new(jobs, json_string_value(f), td);
		else
			json_decref(td);
	}
	return 0;
}

/*
 * The current state plan.h wants. desired may be NULL (stack rm). Fails when
 * a service the file wants exists outside the stack or is still being deleted.
 */
static int gather(struct ecs_cli *e, const char *stack, const json_t *desired, json_t **ret)
{
	_cleanup_json_ json_t *cur = json_pack("{s:{},s:{}}", "services", "jobs"), *all = NULL, *lbs = NULL;
	if (all_services(e, &all) < 0)
		return -1;
	size_t i, k;
	json_t *s, *d;
	json_array_foreach (all, i, s) {
		const char *name = json_string_value(json_object_get(s, "serviceName"));
		bool ours =
		    streq_ptr(stack_tag_value(json_object_get(s, "tags"), STACK_TAG_NAMESPACE), stack);
		bool draining = streq_ptr(json_string_value(json_object_get(s, "status")), "DRAINING");
		json_array_foreach (json_object_get(desired, "services"), k, d) {
			if (!streq_ptr(json_string_value(json_object_get(d, "ecsName")), name))
				continue;
			if (!ours) {
				fprintf(stderr, "berth: service %s exists and is not part of stack %s\n",
					name, stack);
				return -1;
			}
			if (draining) {
				fprintf(
				    stderr,
				    "berth: service %s is still being deleted; apply again once it is gone\n",
				    name);
				return -1;
			}
		}
		if (!ours || draining)
			continue;
		json_t *td = NULL;
		if (describe_taskdef(e, json_string_value(json_object_get(s, "taskDefinition")), &td) < 0)
			return -1;
		json_object_set(td, "service", s);
		json_object_set_new(json_object_get(cur, "services"), name, td);
	}
	if (stack_jobs(e, stack, json_object_get(cur, "jobs")) < 0)
		return -1;
	/* a family that is a service's is not a job even when its latest revision says so */
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe (json_object_get(cur, "jobs"), tmp, key, v)
		if (json_object_get(json_object_get(cur, "services"), key))
			json_object_del(json_object_get(cur, "jobs"), key);
	_cleanup_json_ json_t *lin = json_object();
	if (cli_ecs_call(e, "BerthDescribeLoadBalancers", lin, false, &lbs) < 0)
		return -1;
	json_object_set(cur, "loadBalancers", json_object_get(lbs, "loadBalancers") ?: json_array());
	*ret = TAKE_PTR(cur);
	return 0;
}

/* The cluster's name (DescribeClusters), for the listener conflict check. */
static int cluster_name(struct ecs_cli *e, char **ret)
{
	_cleanup_json_ json_t *in = json_pack("{s:[s]}", "clusters", e->cluster ? e->cluster : "default"),
			      *out = NULL;
	if (cli_ecs_call(e, "DescribeClusters", in, false, &out) < 0)
		return -1;
	const char *name = json_string_value(
	    json_object_get(json_array_get(json_object_get(out, "clusters"), 0), "clusterName"));
	if (!name) {
		fprintf(stderr, "berth: cluster %s not found\n", e->cluster ? e->cluster : "default");
		return -1;
	}
	*ret = xstrdup(name);
	return 0;
}

/* ---- executing a plan ---- */

struct exec {
	struct ecs_cli *e;
	const char *stack;
	const json_t *current;
	json_t *taskdefs; /* family -> new ARN */
	json_t *tgs;      /* load balancer name -> target group ARN */
	json_t *journal;  /* [{op, request}] to undo, oldest first */
	long wait_seconds;
	pthread_mutex_t *lock; /* guards taskdefs, tgs, journal while a wave runs (NULL: one thread) */
};

static void exec_lock(struct exec *x)
{
	if (x->lock)
		pthread_mutex_lock(x->lock);
}

static void exec_unlock(struct exec *x)
{
	if (x->lock)
		pthread_mutex_unlock(x->lock);
}

static void journal(struct exec *x, const char *op, json_t *request)
{
	exec_lock(x);
	json_array_append_new(x->journal, json_pack("{s:s,s:o}", "op", op, "request", request));
	exec_unlock(x);
}

/* Poll until the service is INACTIVE or gone (its load balancers can then go, its name be reused). */
static int wait_gone(struct ecs_cli *e, const char *name, long seconds)
{
	double deadline = cli_ecs_now_mono() + (double)seconds;
	long interval = 100;
	for (;;) {
		_cleanup_json_ json_t *in = json_pack("{s:[s]}", "services", name), *out = NULL;
		if (cli_ecs_call(e, "DescribeServices", in, true, &out) < 0)
			return -1;
		json_t *s = json_array_get(json_object_get(out, "services"), 0);
		if (!s || streq_ptr(json_string_value(json_object_get(s, "status")), "INACTIVE"))
			return 0;
		if (cli_ecs_now_mono() > deadline) {
			fprintf(stderr, "berth: service %s still has tasks after %ld s\n", name, seconds);
			return -1;
		}
		cli_ecs_sleep_ms(interval);
		interval = MIN(interval * 2, 1000);
	}
}

static int wait_service_gone(struct exec *x, const char *name)
{
	return wait_gone(x->e, name, x->wait_seconds);
}

/* Deregister every ACTIVE revision of a family (familyPrefix matches more: compare exactly). */
static int deregister_family(struct exec *x, const char *family)
{
	_cleanup_json_ json_t *in = json_pack("{s:s,s:s}", "familyPrefix", family, "status", "ACTIVE"),
			      *arns = NULL;
	if (cli_ecs_list(x->e, "ListTaskDefinitions", in, false, "taskDefinitionArns", &arns) < 0)
		return -1;
	size_t i;
	json_t *a;
	json_array_foreach (arns, i, a) {
		_cleanup_free_ char *fr = cli_ecs_taskdef_name(json_string_value(a));
		char *colon = strrchr(fr, ':');
		if (colon)
			*colon = '\0';
		if (!streq(fr, family))
			continue;
		_cleanup_json_ json_t *din = json_pack("{s:O}", "taskDefinition", a), *out = NULL;
		if (cli_ecs_call(x->e, "DeregisterTaskDefinition", din, false, &out) < 0)
			return -1;
	}
	return 0;
}

/* Stop the running tasks of a job's family. */
static int stop_family_tasks(struct exec *x, const char *family)
{
	_cleanup_json_ json_t *in = json_pack("{s:s,s:s}", "family", family, "desiredStatus", "RUNNING"),
			      *arns = NULL;
	if (cli_ecs_list(x->e, "ListTasks", in, true, "taskArns", &arns) < 0)
		return -1;
	size_t i;
	json_t *a;
	json_array_foreach (arns, i, a) {
		_cleanup_json_ json_t *sin = json_pack("{s:O,s:s}", "task", a, "reason",
						       "Removed from the stack"),
				      *out = NULL;
		if (cli_ecs_call(x->e, "StopTask", sin, true, &out) < 0)
			return -1;
	}
	return 0;
}

/* A service step's request with the new task definition and load balancers' ARNs filled in. */
static json_t *service_request(struct exec *x, const json_t *st)
{
	json_t *req = json_deep_copy(json_object_get(st, "request"));
	const char *name = json_string_value(json_object_get(st, "name"));
	json_t *td = json_object_get(x->taskdefs, name);
	if (td)
		json_object_set(req, "taskDefinition", td);
	size_t i;
	json_t *l;
	json_array_foreach (json_object_get(req, "loadBalancers"), i, l) {
		const char *tg = json_string_value(json_object_get(l, "targetGroupArn"));
		if (tg && !startswith(tg, "arn:") && json_object_get(x->tgs, tg))
			json_object_set(l, "targetGroupArn", json_object_get(x->tgs, tg));
	}
	return req;
}

/* What UpdateService needs to put a service back as it was before this apply. */
static json_t *service_undo(const json_t *svc)
{
	json_t *req = json_pack("{s:O,s:O}", "service", json_object_get(svc, "serviceName"), "taskDefinition",
				json_object_get(svc, "taskDefinition"));
	bool replica = streq_ptr(json_string_value(json_object_get(svc, "schedulingStrategy")), "REPLICA");
	const char *keys[] = { "deploymentConfiguration", "placementConstraints", "loadBalancers",
			       "desiredCount", "placementStrategy" };
	for (size_t i = 0; i < ARRAY_SIZE(keys) - (replica ? 0 : 2); i++)
		if (json_object_get(svc, keys[i]))
			json_object_set(req, keys[i], json_object_get(svc, keys[i]));
	return req;
}

static int run_job(struct exec *x, const json_t *st)
{
	const char *name = json_string_value(json_object_get(st, "name"));
	_cleanup_free_ char *by = xasprintf("stack/%s", x->stack);
	_cleanup_json_ json_t *in = json_pack("{s:O,s:O,s:s}", "taskDefinition",
					      json_object_get(x->taskdefs, name), "count",
					      json_object_get(st, "count"), "startedBy", by),
			      *out = NULL;
	if (cli_ecs_call(x->e, "RunTask", in, true, &out) < 0)
		return -1;
	size_t i;
	json_t *t;
	json_array_foreach (json_object_get(out, "tasks"), i, t)
		journal(x, "StopTask",
			json_pack("{s:O,s:s}", "task", json_object_get(t, "taskArn"), "reason",
				  "berth apply rolled back"));
	if (cli_ecs_print_failures(json_object_get(out, "failures"))) {
		fprintf(stderr, "berth: job %s: not every task started\n", name);
		return -1;
	}
	return 0;
}

static int exec_delete(struct exec *x, const json_t *st)
{
	const char *kind = json_string_value(json_object_get(st, "kind"));
	const char *name = json_string_value(json_object_get(st, "name"));
	if (streq(kind, "lb")) {
		const char *after = json_string_value(json_object_get(st, "after"));
		if (after && wait_service_gone(x, after) < 0)
			return -1;
		_cleanup_json_ json_t *in = json_pack("{s:s}", "name", name), *out = NULL;
		return cli_ecs_call(x->e, "BerthDeleteLoadBalancer", in, false, &out);
	}
	if (streq(kind, "job"))
		return stop_family_tasks(x, name) < 0 ? -1 : deregister_family(x, name);
	_cleanup_json_ json_t *in = json_pack("{s:s,s:b}", "service", name, "force", true), *out = NULL;
	if (cli_ecs_call(x->e, "DeleteService", in, true, &out) < 0)
		return -1;
	return deregister_family(x, name);
}

static int exec_step(struct exec *x, const json_t *st)
{
	const char *op = json_string_value(json_object_get(st, "op"));
	const char *kind = json_string_value(json_object_get(st, "kind"));
	const char *name = json_string_value(json_object_get(st, "name"));
	_cleanup_json_ json_t *out = NULL;
	if (streq(op, "delete"))
		return exec_delete(x, st);
	if (streq(kind, "taskdef")) {
		if (cli_ecs_call(x->e, "RegisterTaskDefinition", json_object_get(st, "request"), false,
				 &out) < 0)
			return -1;
		json_t *arn = json_object_get(json_object_get(out, "taskDefinition"), "taskDefinitionArn");
		exec_lock(x);
		json_object_set(x->taskdefs, name, arn);
		exec_unlock(x);
		journal(x, "DeregisterTaskDefinition", json_pack("{s:O}", "taskDefinition", arn));
		return 0;
	}
	if (streq(kind, "lb")) {
		if (cli_ecs_call(x->e, "BerthCreateLoadBalancer", json_object_get(st, "request"), true,
				 &out) < 0)
			return -1;
		exec_lock(x);
		json_object_set(x->tgs, name,
				json_object_get(json_object_get(out, "targetGroup"), "targetGroupArn"));
		exec_unlock(x);
		journal(x, "BerthDeleteLoadBalancer", json_pack("{s:s}", "name", name));
		return 0;
	}
	if (streq(kind, "job"))
		return run_job(x, st);
	_cleanup_json_ json_t *req = service_request(x, st);
	if (streq(op, "create")) {
		if (cli_ecs_call(x->e, "CreateService", req, true, &out) < 0)
			return -1;
		journal(x, "DeleteService", json_pack("{s:s,s:b}", "service", name, "force", true));
		return 0;
	}
	if (cli_ecs_call(x->e, "UpdateService", req, true, &out) < 0)
		return -1;
	const json_t *cur =
	    json_object_get(json_object_get(json_object_get(x->current, "services"), name), "service");
	journal(x, "UpdateService", service_undo(cur));
	return 0;
}

/* Undo the journal newest first; failures are reported and the rest still undone. */
static void rollback(struct exec *x)
{
	size_t n = json_array_size(x->journal);
	if (n)
		fprintf(stderr, "berth: rolling back %zu change%s\n", n, n == 1 ? "" : "s");
	for (size_t i = n; i-- > 0;) {
		json_t *j = json_array_get(x->journal, i);
		const char *op = json_string_value(json_object_get(j, "op"));
		json_t *req = json_object_get(j, "request");
		bool lb = startswith(op, "Berth");
		if (streq(op, "BerthDeleteLoadBalancer")) {
			/* a service created by this apply holds it until it is gone */
			size_t k;
			json_t *o;
			for (k = i + 1; k < n; k++)
				if (streq(json_string_value(
					      json_object_get((o = json_array_get(x->journal, k)), "op")),
					  "DeleteService"))
					wait_service_gone(x, json_string_value(json_object_get(
								 json_object_get(o, "request"), "service")));
		}
		_cleanup_json_ json_t *out = NULL;
		bool taskdef_call = streq(op, "DeregisterTaskDefinition");
		int r = cli_ecs_call(x->e, op, req, !lb && !taskdef_call, &out);
		fprintf(stderr, "berth: undo %s %s%s\n", op,
			json_string_value(json_object_get(req, "service"))
			    ?: json_string_value(json_object_get(req, "name"))
			    ?: json_string_value(json_object_get(req, "taskDefinition"))
			    ?: json_string_value(json_object_get(req, "task")) ?: "",
			r < 0 ? ": failed" : "");
	}
}

/* A wave: steps [next, end) of one kind that do not depend on each other, run by several workers. */
struct wave {
	const json_t *steps;
	size_t next, end;
	const json_t *failed; /* the first step that failed */
	pthread_mutex_t lock;
};

struct worker {
	struct wave *w;
	struct exec x; /* its own client (x.e), the shared objects */
	struct ecs_cli e;
	pthread_t thread;
};

static void *worker_main(void *arg)
{
	struct worker *k = arg;
	struct wave *w = k->w;
	for (;;) {
		pthread_mutex_lock(&w->lock);
		const json_t *st =
		    !w->failed && w->next < w->end ? json_array_get(w->steps, w->next++) : NULL;
		pthread_mutex_unlock(&w->lock);
		if (!st)
			return NULL;
		if (exec_step(&k->x, st) < 0) {
			pthread_mutex_lock(&w->lock);
			if (!w->failed)
				w->failed = st;
			pthread_mutex_unlock(&w->lock);
		}
	}
}

/* Steps that can run concurrently with their neighbours of the same kind. */
static bool wave_kind(const json_t *st)
{
	const char *op = json_string_value(json_object_get(st, "op"));
	const char *kind = json_string_value(json_object_get(st, "kind"));
	return !streq(op, "delete") &&
	       (streq(kind, "taskdef") || streq(kind, "lb") || streq(kind, "service"));
}

/*
 * Run steps [from, end) with up to APPLY_WORKERS calls at once (this thread
 * is one worker); NULL when all succeeded, else the first failed step.
 */
static const json_t *run_wave(struct exec *x, const json_t *steps, size_t from, size_t end)
{
	struct wave w = { .steps = steps, .next = from, .end = end };
	pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_init(&w.lock, NULL);
	size_t n = MIN(end - from, (size_t)APPLY_WORKERS);
	struct worker *ks = xcalloc(n, sizeof(*ks));
	x->lock = &shared;
	size_t started = 0;
	for (size_t i = 1; i < n; i++) {
		struct worker *k = &ks[started];
		k->w = &w;
		k->e = *x->e;
		k->e.aws = NULL;
		k->x = *x;
		k->x.e = &k->e;
		if (cli_ecs_open(&k->e) < 0) /* error printed; fewer workers */
			break;
		if (pthread_create(&k->thread, NULL, worker_main, k) != 0) {
			cli_ecs_close(&k->e);
			break;
		}
		started++;
	}
	struct worker self = { .w = &w, .x = *x };
	worker_main(&self);
	for (size_t i = 0; i < started; i++) {
		pthread_join(ks[i].thread, NULL);
		cli_ecs_close(&ks[i].e);
	}
	free(ks);
	x->lock = NULL;
	pthread_mutex_destroy(&shared);
	pthread_mutex_destroy(&w.lock);
	return w.failed;
}

static int execute(struct exec *x, const json_t *plan)
{
	const json_t *steps = json_object_get(plan, "steps");
	for (size_t i = 0, end; i < json_array_size(steps); i = end) {
		const json_t *st = json_array_get(steps, i);
		const char *kind = json_string_value(json_object_get(st, "kind"));
		end = i + 1;
		if (wave_kind(st))
			while (end < json_array_size(steps) && wave_kind(json_array_get(steps, end)) &&
			       streq(kind,
				     json_string_value(json_object_get(json_array_get(steps, end), "kind"))))
				end++;
		if (end - i > 1) {
			if (!(st = run_wave(x, steps, i, end)))
				continue;
		} else if (exec_step(x, st) == 0) {
			continue;
		}
		fprintf(stderr, "berth: apply failed at %s %s %s\n",
			json_string_value(json_object_get(st, "op")),
			json_string_value(json_object_get(st, "kind")),
			json_string_value(json_object_get(st, "name")));
		if (streq(json_string_value(json_object_get(st, "op")), "delete")) {
			fprintf(
			    stderr,
			    "berth: the changes before it are applied; apply again to retry the deletions\n");
			return -1;
		}
		rollback(x);
		return -1;
	}
	return 0;
}

/* ---- waiting for steady state ---- */

static bool service_stable(const json_t *s)
{
	const json_t *deps = json_object_get(s, "deployments");
	const char *rollout = json_string_value(json_object_get(json_array_get(deps, 0), "rolloutState"));
	return json_array_size(deps) == 1 && (!rollout || streq(rollout, "COMPLETED")) &&
	       json_integer_value(json_object_get(s, "runningCount")) ==
		   json_integer_value(json_object_get(s, "desiredCount"));
}

/* Poll DescribeServices until every service of names is stable (one deployment, all tasks running). */
static int wait_stable(struct ecs_cli *e, const json_t *names, long seconds)
{
	double deadline = cli_ecs_now_mono() + (double)seconds;
	long interval = 200;
	for (;;) {
		size_t stable = 0;
		for (size_t at = 0; at < json_array_size(names); at += DESCRIBE_SERVICES_BATCH) {
			json_t *batch = json_array();
			for (size_t i = at; i < MIN(at + DESCRIBE_SERVICES_BATCH, json_array_size(names));
			     i++)
				json_array_append(batch, json_array_get(names, i));
			_cleanup_json_ json_t *in = json_pack("{s:o}", "services", batch), *out = NULL;
			if (cli_ecs_call(e, "DescribeServices", in, true, &out) < 0)
				return -1;
			size_t i;
			json_t *s;
			json_array_foreach (json_object_get(out, "services"), i, s)
				stable += service_stable(s);
		}
		if (stable == json_array_size(names))
			return 0;
		if (cli_ecs_now_mono() > deadline) {
			fprintf(stderr, "berth: %zu of %zu services are not stable after %ld s\n",
				json_array_size(names) - stable, json_array_size(names), seconds);
			return -1;
		}
		cli_ecs_sleep_ms(interval);
		interval = MIN(interval * 2, 1000);
	}
}

/* ---- berth apply ---- */

static const char *env_lookup(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

/* "K=V" strings of a {K: V} object; NULL when it has none. */
static char **kv_strv(const json_t *o)
{
	char **v = NULL;
	const char *k;
	json_t *x;
	json_object_foreach ((json_t *)o, k, x) {
		_cleanup_free_ char *kv = xasprintf("%s=%s", k, json_string_value(x) ?: "");
		strv_add(&v, kv);
	}
	return v;
}

/* The strings of an array; NULL when it has none. */
static char **str_strv(const json_t *a)
{
	char **v = NULL;
	size_t i;
	json_t *x;
	json_array_foreach (a, i, x)
		strv_add(&v, json_string_value(x) ?: "");
	return v;
}

/* The cluster registry: GetAuthorizationToken's "HOST:PORT" and docker login credentials. */
struct registry_login {
	char *host, *user, *password;
};

static void registry_login_done(struct registry_login *l)
{
	free(l->host);
	free(l->user);
	if (l->password)
		explicit_bzero(l->password, strlen(l->password));
	free(l->password);
}

/* An ECR call on the server's endpoint (the same flags as the ECS verbs); in stays the caller's. */
static int ecr_call(struct ecs_cli *e, const char *op, json_t *in, json_t **ret, struct berth_error **err)
{
	struct aws_config cfg;
	int r = aws_config_resolve(&e->flags, "ECR", env_lookup, NULL, &cfg, err);
	if (r < 0)
		return r;
	_cleanup_aws_client_ struct aws_client *ecr = NULL;
	r = aws_client_new(&cfg, "ecr", ECR_TARGET_PREFIX, &ecr, err);
	if (r == 0)
		r = aws_client_call(ecr, op, in, ret, err);
	aws_config_done(&cfg);
	return r;
}

static int registry_login(struct ecs_cli *e, struct registry_login *ret, struct berth_error **err)
{
	_cleanup_json_ json_t *out = NULL, *in = json_object();
	int r = ecr_call(e, "GetAuthorizationToken", in, &out, err);
	if (r < 0)
		return r;
	const json_t *a = json_array_get(json_object_get(out, "authorizationData"), 0);
	const char *ep = json_string_value(json_object_get(a, "proxyEndpoint"));
	const char *tok = json_string_value(json_object_get(a, "authorizationToken"));
	_cleanup_free_ char *dec = NULL;
	size_t n = 0;
	if (!ep || !tok || base64_decode(tok, (void **)&dec, &n) < 0 || !memchr(dec, ':', n))
		return berth_error_msg(err, EPROTO, "GetAuthorizationToken: unexpected answer");
	char *colon = memchr(dec, ':', n);
	ret->user = xstrndup(dec, (size_t)(colon - dec));
	ret->password = xstrndup(colon + 1, n - (size_t)(colon + 1 - dec));
	explicit_bzero(dec, n);
	ret->host = xstrdup(startswith(ep, "https://") ? ep + 8 : startswith(ep, "http://") ? ep + 7 : ep);
	ret->host[strcspn(ret->host, "/")] = '\0';
	return 0;
}

/*
 * Services with build: and no image (compose's "build then deploy"): build
 * each on the local engine (DOCKER_HOST or the default socket, as `berth
 * build`), tag it HOST/STACK/SERVICE:build-<12 hex of the image ID>, create
 * that ECR repository if needed, push, and deploy that reference. The tag
 * follows the content, so an unchanged build changes nothing and a changed
 * one rolls the service. A dry run builds (to know the reference) but
 * neither creates repositories nor pushes.
 */
static int build_images(struct ecs_cli *e, const struct apply_opts *o, json_t *desired)
{
	struct registry_login login = { 0 };
	int rc = 0;
	size_t i;
	json_t *s;
	_cleanup_free_ char *copy = xstrdup(streq(o->file, "-") ? "." : o->file);
	const char *dir = streq(o->file, "-") ? "." : dirname(copy);
	json_array_foreach (json_object_get(desired, "services"), i, s) {
		const json_t *b = json_object_get(s, "build");
		if (!b || json_object_get(s, "image"))
			continue;
		const char *svc = json_string_value(json_object_get(s, "name"));
		long long line = json_integer_value(json_object_get(b, "line"));
		_cleanup_error_ struct berth_error *err = NULL;
		if (!login.host && registry_login(e, &login, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			fprintf(stderr,
				"berth: %s:%lld: services.%s.build: building needs the cluster registry "
				"(berth server --registry), and the server has none (%s); set 'image' to an "
				"image the nodes can pull\n",
				o->file, line, svc, m);
			rc = -1;
			break;
		}
		const char *ctx = json_string_value(json_object_get(b, "context"));
		const char *df = json_string_value(json_object_get(b, "dockerfile"));
		_cleanup_free_ char *ctxdir = ctx[0] == '/' ? xstrdup(ctx) : xasprintf("%s/%s", dir, ctx);
		/* compose: the Dockerfile is relative to the context */
		_cleanup_free_ char *dfpath = !df            ? NULL
					      : df[0] == '/' ? xstrdup(df)
							     : xasprintf("%s/%s", ctxdir, df);
		_cleanup_free_ char *repo =
		    xasprintf("%s/%s", json_string_value(json_object_get(desired, "stack")), svc);
		_cleanup_strv_ char **args = kv_strv(json_object_get(b, "args"));
		_cleanup_strv_ char **labels = kv_strv(json_object_get(b, "labels"));
		_cleanup_strv_ char **cache = str_strv(json_object_get(b, "cacheFrom"));
		struct cli_build_spec spec = { .context = ctxdir,
					       .dockerfile = dfpath,
					       .target = json_string_value(json_object_get(b, "target")),
					       .args = args,
					       .labels = labels,
					       .cache_from = cache };
		fprintf(stderr, "berth: building services.%s from %s\n", svc, ctxdir);
		_cleanup_free_ char *id = NULL;
		if (cli_build_image(&spec, &id) != 0) {
			fprintf(stderr, "berth: %s:%lld: services.%s.build: the build failed\n", o->file,
				line, svc);
			rc = -1;
			break;
		}
		const char *hex = startswith(id, "sha256:") ? id + 7 : id;
		_cleanup_free_ char *tag = xasprintf("build-%.12s", hex);
		_cleanup_free_ char *name = xasprintf("%s/%s", login.host, repo);
		_cleanup_free_ char *ref = xasprintf("%s:%s", name, tag);
		if (cli_tag_image(id, name, tag) != 0) {
			rc = -1;
			break;
		}
		if (!o->dry_run) {
			_cleanup_json_ json_t *out = NULL, *in = json_pack("{s:s}", "repositoryName", repo);
			_cleanup_error_ struct berth_error *cerr = NULL;
			if (ecr_call(e, "CreateRepository", in, &out, &cerr) < 0) {
				_cleanup_free_ char *m = berth_error_string(cerr);
				if (!strstr(m, "RepositoryAlreadyExistsException")) {
					cli_ecs_error(cerr);
					rc = -1;
					break;
				}
			}
			fprintf(stderr, "berth: pushing %s\n", ref);
			if (cli_push_image(name, tag, login.user, login.password, login.host) != 0) {
				rc = -1;
				break;
			}
		}
		stack_compose_set_image(s, ref);
	}
	registry_login_done(&login);
	return rc;
}

static int apply_wait_timeout(void *seconds, const char *arg)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!*arg || *end || v < 1 || v > 86400) {
		fprintf(stderr, "berth: invalid --wait-timeout '%s': expected 1 to 86400 seconds\n", arg);
		return -1;
	}
	*(long *)seconds = v;
	return 0;
}

/* The stack's name: --name, the file's top-level name:, or the file's directory (compose's project name). */
static char *stack_name(const struct apply_opts *o, const char *text, size_t len, const char *dir)
{
	if (o->name)
		return xstrdup(o->name);
	struct ytree *t = NULL;
	char *name = NULL;
	if (stack_ytree_parse(text, len, &t, NULL) == 0) {
		const struct ynode *n = stack_ynode_get(t->root, "name");
		if (n && n->kind == YNODE_SCALAR && *n->str)
			name = xstrdup(n->str);
		stack_ytree_free(t);
	}
	return name ? name : stack_compose_default_stack_name(dir);
}

/* Load and map the file; warnings printed. */
static int load_file(const struct apply_opts *o, char **ret_stack, json_t **ret)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	_cleanup_error_ struct berth_error *err = NULL;
	bool in = streq(o->file, "-");
	if (fs_read_file_at(AT_FDCWD, in ? "/dev/stdin" : o->file, YTREE_MAX_SIZE, &sb, &err) < 0)
		return cli_ecs_error(err), -1;
	_cleanup_free_ char *copy = xstrdup(in ? "." : o->file);
	_cleanup_free_ char *dir = xstrdup(in ? "." : dirname(copy));
	_cleanup_free_ char *real = realpath(dir, NULL);
	_cleanup_free_ char *stack = stack_name(o, sb.buf, sb.len, real ? real : dir);
	struct compose_opts co = {
		.stack = stack, .file = in ? "stdin" : o->file, .dir = dir, .getenv = env_lookup
	};
	json_t *desired = NULL;
	if (stack_compose_load(sb.buf, sb.len, &co, &desired, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		fprintf(stderr, "%s\n", m);
		return -1;
	}
	size_t i;
	json_t *w;
	json_array_foreach (json_object_get(desired, "warnings"), i, w)
		fprintf(stderr, "berth: warning: %s\n", json_string_value(w));
	*ret_stack = TAKE_PTR(stack);
	*ret = desired;
	return 0;
}

/* Plan against the cluster and execute (shared by apply and stack rm: desired with no services, prune). */
static int converge(struct ecs_cli *e, const char *stack, const json_t *desired, bool prune, bool dry_run,
		    long wait_seconds, json_t **ret_plan)
{
	_cleanup_free_ char *cluster = NULL;
	_cleanup_json_ json_t *cur = NULL, *plan = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (cluster_name(e, &cluster) < 0 || gather(e, stack, desired, &cur) < 0)
		return -1;
	struct stack_plan_opts po = { .prune = prune, .cluster = cluster };
	if (stack_plan(desired, cur, &po, &plan, &err) < 0)
		return cli_ecs_error(err), -1;
	size_t i;
	json_t *w;
	json_array_foreach (json_object_get(plan, "warnings"), i, w)
		fprintf(stderr, "berth: warning: %s\n", json_string_value(w));
	if (stack_plan_changes(plan) == 0) {
		printf("no changes\n");
	} else {
		stack_plan_print(plan, stdout);
		fflush(stdout);
	}
	if (!dry_run && stack_plan_changes(plan)) {
		struct exec x = { e, stack, cur, json_object(), json_object(), json_array(), wait_seconds };
		int r = execute(&x, plan);
		json_decref(x.taskdefs);
		json_decref(x.tgs);
		json_decref(x.journal);
		if (r < 0)
			return -1;
	}
	if (ret_plan)
		*ret_plan = TAKE_PTR(plan);
	return 0;
}

int cli_apply(int argc, char **argv)
{
	static const char *text =
	    "apply [OPTIONS] -f FILE\n\n"
	    "Make a cluster match a compose file (a stack): one task definition, service and\n"
	    "load balancer per published port for each compose service, created, updated or\n"
	    "(with --prune) deleted so that the cluster runs what the file says. A second apply\n"
	    "of the same file changes nothing. The file is checked whole before anything\n"
	    "changes; a failed apply undoes what it did. A service with build: and no image is\n"
	    "built on the local engine (DOCKER_HOST), pushed to the cluster registry as\n"
	    "STACK/SERVICE:build-<image id> and deployed from there. See docs/stack.md.\n\n"
	    "Options:\n"
	    "  -f, --file FILE         the compose file (- for stdin)\n"
	    "      --name STACK        the stack's name (default: the file's top-level name,\n"
	    "                          else its directory's name); objects are STACK_SERVICE\n"
	    "      --dry-run           print the plan (a diff per object) and change nothing\n"
	    "      --prune             delete the stack's services and jobs the file no longer has\n"
	    "      --wait              wait until every service is stable (one deployment, all\n"
	    "                          tasks running)\n"
	    "      --wait-timeout S    give up waiting after S seconds (default 300)\n" ECS_CLI_HELP_CLUSTER
		ECS_CLI_HELP_COMMON;
	struct apply_opts o = { .wait_seconds = WAIT_DEFAULT_SECONDS };
	const struct cli_opt t[] = {
		{ "file", 'f', CLI_OPT_STRING, &o.file },
		{ "name", 0, CLI_OPT_STRING, &o.name },
		{ "dry-run", 0, CLI_OPT_FLAG, &o.dry_run },
		{ "prune", 0, CLI_OPT_FLAG, &o.prune },
		{ "wait", 0, CLI_OPT_FLAG, &o.wait },
		{ "wait-timeout", 0, CLI_OPT_CALL, &o.wait_seconds, .fn = apply_wait_timeout,
		  .has_arg = true },
		{ NULL },
	};
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse_table(&e, argc, argv, t, text, &rc))
		return rc;
	if (optind != argc || !o.file) {
		fprintf(stderr, "berth: apply needs -f FILE and no other arguments\n");
		return cli_usage(text, false);
	}
	_cleanup_free_ char *stack = NULL;
	_cleanup_json_ json_t *desired = NULL;
	if (load_file(&o, &stack, &desired) < 0)
		return 1;
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 1;
	if (build_images(&e, &o, desired) == 0 &&
	    converge(&e, stack, desired, o.prune, o.dry_run, o.wait_seconds, NULL) == 0) {
		rc = 0;
		if (o.wait && !o.dry_run) {
			_cleanup_json_ json_t *names = json_array();
			size_t i;
			json_t *s;
			json_array_foreach (json_object_get(desired, "services"), i, s)
				if (streq_ptr(json_string_value(json_object_get(s, "kind")), "service"))
					json_array_append(names, json_object_get(s, "ecsName"));
			if (json_array_size(names) && wait_stable(&e, names, o.wait_seconds) < 0)
				rc = 1;
		}
	}
	cli_ecs_close(&e);
	return rc;
}

/* ---- berth stack ---- */

/*
 * `stack VERB [OPTIONS] STACK`: parse, open the client, read the stack's
 * current objects. 0 to go on (close e after); else the exit code.
 */
static int open_stack(struct ecs_cli *e, int argc, char **argv, const char *text, json_t **ret)
{
	int rc;
	if (!cli_ecs_parse(e, argc, argv, text, &rc))
		return rc ? rc : -1;
	if (optind + 1 != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(e) < 0)
		return 1;
	if (gather(e, argv[optind], NULL, ret) < 0) {
		cli_ecs_close(e);
		return 1;
	}
	return 0;
}

static json_t *ls_row(const json_t *s)
{
	return json_pack("[s,s]", json_string_value(json_object_get(s, "name")),
			 json_string_value(json_object_get(s, "services")));
}

static int stack_ls(int argc, char **argv)
{
	static const char *text =
	    "stack ls [OPTIONS]\n\nList stacks (services tagged " STACK_TAG_NAMESPACE
	    ")\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind != argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	_cleanup_json_ json_t *all = NULL, *counts = json_object(), *items = json_array();
	rc = 1;
	if (all_services(&e, &all) == 0) {
		size_t i;
		json_t *s;
		json_array_foreach (all, i, s) {
			const char *ns = stack_tag_value(json_object_get(s, "tags"), STACK_TAG_NAMESPACE);
			if (ns)
				json_object_set_new(
				    counts, ns,
				    json_integer(json_integer_value(json_object_get(counts, ns)) + 1));
		}
		const char *k;
		json_t *v;
		json_object_foreach (counts, k, v) {
			_cleanup_free_ char *n = xasprintf("%lld", (long long)json_integer_value(v));
			json_array_append_new(items, json_pack("{s:s,s:s}", "name", k, "services", n));
		}
		static const char *const heads[] = { "NAME", "SERVICES" };
		if (cli_ecs_json(&e))
			cli_ecs_print_json(items);
		else
			cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), items, ls_row);
		rc = 0;
	}
	cli_ecs_close(&e);
	return rc;
}

static json_t *services_row(const json_t *s)
{
	const json_t *svc = json_object_get(s, "service");
	const json_t *def =
	    json_array_get(json_object_get(json_object_get(s, "taskDefinition"), "containerDefinitions"), 0);
	bool daemon = streq_ptr(json_string_value(json_object_get(svc, "schedulingStrategy")), "DAEMON");
	_cleanup_free_ char *replicas =
	    xasprintf("%lld/%lld", (long long)json_integer_value(json_object_get(svc, "runningCount")),
		      (long long)json_integer_value(json_object_get(svc, "desiredCount")));
	return json_pack("[s,s,s,s]", json_string_value(json_object_get(svc, "serviceName")) ?: "",
			 daemon ? "global" : "replicated", replicas,
			 json_string_value(json_object_get(def, "image")) ?: "");
}

static int stack_services(int argc, char **argv)
{
	static const char *text =
	    "stack services [OPTIONS] STACK\n\nList the services of a "
	    "stack\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	_cleanup_json_ json_t *cur = NULL, *items = json_array();
	int rc = open_stack(&e, argc, argv, text, &cur);
	if (rc)
		return rc < 0 ? 0 : rc;
	const char *k;
	json_t *v;
	json_object_foreach (json_object_get(cur, "services"), k, v)
		json_array_append(items, v);
	static const char *const heads[] = { "NAME", "MODE", "REPLICAS", "IMAGE" };
	if (cli_ecs_json(&e))
		cli_ecs_print_json(items);
	else
		cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), items, services_row);
	cli_ecs_close(&e);
	return 0;
}

static json_t *ps_row(const json_t *t)
{
	_cleanup_free_ char *td =
	    cli_ecs_taskdef_name(json_string_value(json_object_get(t, "taskDefinitionArn")));
	return json_pack("[s,s,s,s,s,s]", cli_ecs_arn_id(json_string_value(json_object_get(t, "taskArn"))),
			 td, cli_ecs_arn_id(json_string_value(json_object_get(t, "containerInstanceArn"))),
			 json_string_value(json_object_get(t, "desiredStatus")) ?: "",
			 json_string_value(json_object_get(t, "lastStatus")) ?: "",
			 json_string_value(json_object_get(t, "healthStatus")) ?: "");
}

static int stack_ps(int argc, char **argv)
{
	static const char *text =
	    "stack ps [OPTIONS] STACK\n\nList the tasks of a stack (services and "
	    "jobs)\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_FORMAT ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	_cleanup_json_ json_t *cur = NULL, *arns = json_array(), *tasks = NULL;
	int rc = open_stack(&e, argc, argv, text, &cur);
	if (rc)
		return rc < 0 ? 0 : rc;
	rc = 1;
	const char *groups[] = { "services", "jobs" };
	for (size_t g = 0; g < 2; g++) {
		const char *k;
		json_t *v;
		json_object_foreach (json_object_get(cur, groups[g]), k, v) {
			/* a service's running tasks; a job's finished ones too */
			for (size_t st = 0; st <= g; st++) {
				_cleanup_json_ json_t *in = json_pack(
							  "{s:s,s:s}", g ? "family" : "serviceName", k,
							  "desiredStatus", st ? "STOPPED" : "RUNNING"),
						      *l = NULL;
				if (cli_ecs_list(&e, "ListTasks", in, true, "taskArns", &l) < 0)
					goto out;
				json_array_extend(arns, l);
			}
		}
	}
	if (json_array_size(arns) == 0)
		tasks = json_array();
	else if (cli_ecs_describe(&e, "DescribeTasks", "tasks", "tasks", arns, NULL, &tasks, NULL) < 0)
		goto out;
	static const char *const heads[] = { "ID",      "TASK DEFINITION", "NODE",
					     "DESIRED", "LAST STATUS",     "HEALTH" };
	if (cli_ecs_json(&e))
		cli_ecs_print_json(tasks);
	else
		cli_ecs_print_items(&e, heads, ARRAY_SIZE(heads), tasks, ps_row);
	rc = 0;
out:
	cli_ecs_close(&e);
	return rc;
}

static int stack_rm(int argc, char **argv)
{
	static const char *text =
	    "stack rm [OPTIONS] STACK [STACK...]\n\nRemove stacks: their services, jobs, task "
	    "definitions and load balancers\n\nOptions:\n" ECS_CLI_HELP_CLUSTER ECS_CLI_HELP_COMMON;
	struct ecs_cli e = { 0 };
	int rc;
	if (!cli_ecs_parse(&e, argc, argv, text, &rc))
		return rc;
	if (optind >= argc)
		return cli_usage(text, false);
	if (cli_ecs_open(&e) < 0)
		return 1;
	rc = 0;
	for (int i = optind; i < argc; i++) {
		_cleanup_json_ json_t *none = json_pack("{s:s,s:[]}", "stack", argv[i], "services"),
				      *plan = NULL;
		if (converge(&e, argv[i], none, true, false, WAIT_DEFAULT_SECONDS, &plan) < 0) {
			rc = 1;
			continue;
		}
		if (stack_plan_changes(plan) == 0) {
			fprintf(stderr, "berth: nothing found in stack %s\n", argv[i]);
			rc = 1;
		}
		/* the names are free again once the services are gone (as docker stack rm leaves them) */
		size_t k;
		json_t *st;
		json_array_foreach (json_object_get(plan, "steps"), k, st)
			if (streq_ptr(json_string_value(json_object_get(st, "kind")), "service") &&
			    wait_gone(&e, json_string_value(json_object_get(st, "name")),
				      WAIT_DEFAULT_SECONDS) < 0)
				rc = 1;
	}
	cli_ecs_close(&e);
	return rc;
}

int cli_stack(int argc, char **argv)
{
	static const struct ecs_verb verbs[] = {
		{ "ls", stack_ls, "List stacks" },
		{ "list", stack_ls, NULL },
		{ "services", stack_services, "List the services of a stack" },
		{ "ps", stack_ps, "List the tasks of a stack" },
		{ "rm", stack_rm, "Remove stacks" },
		{ "remove", stack_rm, NULL },
	};
	return cli_ecs_group("stack", "Manage stacks (deploy one with 'berth apply -f compose.yml')", verbs,
			     ARRAY_SIZE(verbs), argc, argv);
}
