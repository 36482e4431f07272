/*
 * monitor.c - the engine's one background thread: waits (epoll) on the
 * pidfds of shims, records exits from the exit file the shim wrote, applies
 * restart policies and runs due health checks. Reattachment after a daemon
 * restart also lives here: a shim is adopted by pidfd_open() on its recorded
 * pid after checking /proc/<pid>/cmdline names it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/state.h"

#define SAVE_RETRY_MS 1000 /* a container record whose save failed is saved again */

void engine_monitor_wake(struct engine *e)
{
	uint64_t one = 1;
	(void)!write(e->wakefd, &one, sizeof(one));
}

/* The fd the monitor waits on: the shim's exit pipe, or (adopted after a daemon restart) its pidfd. */
static int watch_fd(const struct container *c)
{
	return c->exit_fd >= 0 ? c->exit_fd : c->shim_pidfd;
}

/* Call with e->lock held. */
void engine_monitor_watch(struct engine *e, struct container *c)
{
	int fd = watch_fd(c);
	if (fd < 0 || c->watched)
		return;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = engine_container_ref(c) };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		engine_container_unref(c);
	else
		c->watched = true;
}

/* Upper bound on a shim's life after its exit.json (its runtime delete has a 30 s timeout with runc). */
#define SHIM_GONE_TIMEOUT_MS 35000

/* Wait (bounded) for the previous shim of a container that is not running to exit. Without e->lock. */
void engine_shim_wait_gone(struct engine *e, struct container *c)
{
	pthread_mutex_lock(&e->lock);
	int fd = c->watched ? -1 : TAKE_FD(c->shim_pidfd);
	pthread_mutex_unlock(&e->lock);
	if (fd < 0)
		return;
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, SHIM_GONE_TIMEOUT_MS) == 0)
		log_fields(LOG_LEVEL_WARN, "a container's shim did not exit after its container", "id", c->id,
			   NULL);
	close(fd);
}

static bool file_contains(const char *path, const char *needle, size_t nlen)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, path, 64 * 1024, &sb, NULL) < 0)
		return false;
	return memmem(sb.buf, sb.len, needle, nlen) != NULL;
}

/* The init of a container whose shim vanished: kill it if it is really ours. */
static void kill_orphan(struct engine_rt *rt, const char *id, pid_t pid, int pidfd)
{
	if (pid <= 0)
		return;
	_cleanup_free_ char *cg = xasprintf("/proc/%d/cgroup", (int)pid);
	if (file_contains(cg, id, strlen(id)))
		proc_signal(pid, pidfd, SIGKILL);
	rt->oci.ops->delete (&rt->oci, id, true, NULL);
}

static int64_t started_ms_ago(const struct container *c)
{
	struct timespec st, now;
	if (!c->started_at || util_parse_rfc3339(c->started_at, &st) < 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	return (now.tv_sec - st.tv_sec) * 1000 + (now.tv_nsec - st.tv_nsec) / 1000000;
}

struct exit_job {
	struct engine *e;
	struct container *c; /* a reference */
	int exit_code;
	char *finished_at, *error; /* error: only when the shim vanished */
	pid_t orphan_pid;          /* > 0: the shim vanished, its init may live on */
	int orphan_pidfd;
	struct engine_rt orphan_rt; /* the runtime of the orphan's run */
	int shim_pidfd;             /* waited for before the unmount (-1: none, or the removal waits) */
	json_t *hostconfig;
	char *name;
};

static void exit_job_free(struct exit_job *j)
{
	safe_close(j->orphan_pidfd);
	engine_rt_done(&j->orphan_rt);
	safe_close(j->shim_pidfd);
	free(j->finished_at);
	free(j->error);
	json_decref(j->hostconfig);
	free(j->name);
	free(j);
}

struct exit_job *engine_exit_begin_locked(struct engine *e, struct container *c)
{
	if (c->exiting)
		return NULL;
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	_cleanup_free_ char *path = xasprintf("%s/exit.json", xdir);
	_cleanup_json_ json_t *j = NULL;
	char t[RFC3339_MAX];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, t);
	struct exit_job *job = xcalloc(1, sizeof(*job));
	job->e = e;
	job->c = engine_container_ref(c);
	job->orphan_pidfd = job->shim_pidfd = -1;
	if (json_load_path(path, 4096, &j, NULL) == 0) {
		job->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
		const char *fa = json_string_value(json_object_get(j, "finished_at"));
		job->finished_at = xstrdup(fa ? fa : t);
	} else {
		job->orphan_pid = c->pid > 0 ? c->pid : 0;
		job->orphan_pidfd = TAKE_FD(c->pidfd);
		engine_rt_of(e, c, &job->orphan_rt);
		job->exit_code = 137;
		job->finished_at = xstrdup(t);
		job->error = xstrdup("container shim exited unexpectedly");
	}
	if (c->watched) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, watch_fd(c), NULL);
		c->watched = false;
	}
	c->exit_fd = safe_close(c->exit_fd);
	/*
	 * The shim may still be deleting the runtime's state (cgroups, and with
	 * a shared PID namespace killing what is left in them): what reuses or
	 * removes the container's resources waits for it (a start, the removal:
	 * engine_shim_wait_gone). With a PID namespace of its own, every process of the
	 * container was gone when its init was reaped; with a shared one the
	 * unmount below waits for the shim too (it kills what is left).
	 */
	const char *pm = json_string_value(json_object_get(c->hostconfig, "PidMode"));
	bool shared_pidns = pm && (streq(pm, "host") || startswith(pm, "container:"));
	if (shared_pidns && !json_is_true(json_object_get(c->hostconfig, "AutoRemove")))
		job->shim_pidfd = TAKE_FD(c->shim_pidfd);
	job->hostconfig = json_incref(c->hostconfig);
	job->name = xstrdup(c->name);
	c->exiting = true;
	return job;
}

/* Without e->lock: what the exit leaves to undo. May block (a runtime delete has a 30 s timeout). */
static void exit_cleanup(struct exit_job *job)
{
	struct engine *e = job->e;
	const char *id = job->c->id;
	util_hang_point("exit-cleanup", job->name);
	int64_t t0 = proc_now_ns();
	if (job->orphan_pid > 0)
		kill_orphan(&job->orphan_rt, id, job->orphan_pid, job->orphan_pidfd);
	if (job->shim_pidfd >= 0) {
		struct pollfd p = { job->shim_pidfd, POLLIN, 0 };
		(void)poll(&p, 1, SHIM_GONE_TIMEOUT_MS);
	}
	/*
	 * An --rm container is removed right after (exit_finish_locked), and the
	 * removal unmounts it: the unmount (an overlay syncs its upper layer's
	 * filesystem, tens of ms) is not on the way to the exit and to the
	 * removal clients wait for. engine_lifecycle_recover() finishes what a crash
	 * in between leaves.
	 */
	if (!json_is_true(json_object_get(job->hostconfig, "AutoRemove")))
		e->img->unmount(e->img_ctx, id, NULL);
	engine_network_teardown(e, id, job->hostconfig);
	engine_shm_unmount(e, id); /* as dockerd's Cleanup: a shareable container's shm is per run */
	log_debug("exit %.12s: unmount+network %lld us", id, (long long)(proc_now_ns() - t0) / 1000);
}

/*
 * Under e->lock: the exit is recorded, the restart policy applied. Frees job.
 * An --rm container's removal begins here when may_remove and nothing else
 * operates on it (its op_lock is free): the returned removal is to be finished
 * without e->lock (engine_ops_autoremove_finish). Else it runs on a thread of its own.
 */
static struct autoremove *exit_finish_locked(struct exit_job *job, bool may_remove)
{
	struct engine *e = job->e;
	struct container *c = job->c;
	struct autoremove *rm = NULL;
	c->exiting = false;
	c->exit_code = job->exit_code;
	free(c->finished_at);
	c->finished_at = TAKE_PTR(job->finished_at);
	if (job->error) {
		free(c->error);
		c->error = TAKE_PTR(job->error);
	}
	c->pidfd = safe_close(c->pidfd);
	c->pid = 0;
	c->shim_pid = 0;
	c->exit_gen++;
	free(c->health);
	c->health = NULL;
	json_t *attrs = json_pack("{s:s}", "exitCode", "");
	json_object_set_new(attrs, "exitCode", json_sprintf("%d", c->exit_code));
	engine_container_event(e, c, "die", attrs);
	if (engine_restart_wanted(json_object_get(c->hostconfig, "RestartPolicy"), c->exit_code,
				  c->restart_count, c->manual_stop, c->removed)) {
		c->backoff_ms = engine_restart_backoff(c->backoff_ms, started_ms_ago(c));
		c->restart_due_ms = proc_now_ms() + c->backoff_ms;
		engine_container_set_state(e, c, ENGINE_RESTARTING);
		engine_monitor_wake(e);
	} else if (json_is_true(json_object_get(c->hostconfig, "AutoRemove")) && !c->removed) {
		if (may_remove && pthread_mutex_trylock(&c->op_lock) == 0) {
			/* the record goes from running to removing in one save (the same transaction) */
			c->state = ENGINE_EXITED;
			util_crash_point("rm-auto");
			rm = engine_ops_autoremove_begin_locked(e, c);
		} else {
			engine_container_set_state(e, c, ENGINE_EXITED);
			engine_ops_remove_async(e, c);
		}
	} else {
		engine_container_set_state(e, c, ENGINE_EXITED);
	}
	engine_container_unref(c);
	exit_job_free(job);
	return rm;
}

void engine_exit_cleanup_and_finish(struct exit_job *job)
{
	struct engine *e = job->e;
	struct container *c = job->c;
	exit_cleanup(job);
	pthread_mutex_lock(&e->lock);
	engine_container_ref(c);
	/* the exit's record changes and events (with --rm: the removal's mark too) in one commit */
	engine_store_begin(e);
	struct autoremove *rm = exit_finish_locked(job, true); /* frees job */
	if (engine_store_commit(e) <
	    0) /* saved as a failed save is: logged, retried (no other took its name) */
		engine_container_save(e, c, NULL);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	if (rm)
		engine_ops_autoremove_finish(e, rm);
}

static void *exit_thread(void *arg)
{
	engine_exit_cleanup_and_finish(arg);
	return NULL;
}

struct autoremove *engine_lifecycle_record_exit(struct engine *e, struct container *c)
{
	struct exit_job *job = engine_exit_begin_locked(e, c);
	if (!job)
		return NULL;
	exit_cleanup(job);
	return exit_finish_locked(job, true);
}

static void *restart_thread(void *arg)
{
	struct container *c = arg;
	struct engine *e = c->engine;
	pthread_mutex_lock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	bool go = c->state == ENGINE_RESTARTING && !c->removed && !c->manual_stop;
	if (go)
		c->restart_count++;
	pthread_mutex_unlock(&e->lock);
	if (go) {
		struct berth_error *err = NULL;
		if (engine_lifecycle_start_locked_op(e, c, &err) < 0) {
			pthread_mutex_lock(&e->lock);
			_cleanup_free_ char *m = berth_error_string(err);
			free(c->error);
			c->error = xstrdup(m ? m : "restart failed");
			c->exit_code = 128;
			engine_container_set_state(e, c, ENGINE_EXITED);
			pthread_mutex_unlock(&e->lock);
		}
		berth_error_free(err);
	}
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

struct spawned {
	struct engine *e;
	void *(*fn)(void *);
	void *arg;
};

static void *spawned_main(void *p)
{
	struct spawned s = *(struct spawned *)p;
	free(p);
	s.fn(s.arg);
	pthread_mutex_lock(&s.e->lock);
	s.e->n_threads--;
	pthread_cond_broadcast(&s.e->cond);
	pthread_mutex_unlock(&s.e->lock);
	return NULL;
}

void engine_spawn_thread(struct engine *e, void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	struct spawned *s = xmalloc(sizeof(*s));
	*s = (struct spawned){ .e = e, .fn = fn, .arg = arg };
	/* the caller may hold e->lock: counted without it, uncounted again by the thread under it */
	__atomic_add_fetch(&e->n_threads, 1, __ATOMIC_SEQ_CST);
	if (pthread_create(&t, &at, spawned_main, s) != 0) {
		__atomic_sub_fetch(&e->n_threads, 1, __ATOMIC_SEQ_CST);
		free(s);
		fn(arg);
	}
	pthread_attr_destroy(&at);
}

/* Due restarts, health checks and record saves; returns ms until the next one (-1: none).
 * Call with e->lock held. */
static int run_due(struct engine *e)
{
	int64_t now = proc_now_ms(), next = -1;
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		if (c->state == ENGINE_RESTARTING && c->restart_due_ms) {
			if (c->restart_due_ms <= now) {
				c->restart_due_ms = 0;
				engine_spawn_thread(e, restart_thread, engine_container_ref(c));
			} else if (next < 0 || c->restart_due_ms - now < next) {
				next = c->restart_due_ms - now;
			}
		}
		int64_t h = engine_health_due(e, c, now);
		if (h >= 0 && (next < 0 || h < next))
			next = h;
	}
	if (engine_container_save_dirty(e) && (next < 0 || next > SAVE_RETRY_MS))
		next = SAVE_RETRY_MS;
	return next < 0 ? -1 : (int)MIN(next, 60000);
}

static void *monitor_main(void *arg)
{
	struct engine *e = arg;
	pthread_mutex_lock(&e->lock);
	int timeout = run_due(e);
	pthread_mutex_unlock(&e->lock);
	for (;;) {
		struct epoll_event evs[32];
		struct exit_job *jobs[ARRAY_SIZE(evs)];
		size_t n_jobs = 0;
		int n = epoll_wait(e->epfd, evs, ARRAY_SIZE(evs), timeout);
		pthread_mutex_lock(&e->lock);
		if (e->stopping) {
			pthread_mutex_unlock(&e->lock);
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct container *c = evs[i].data.ptr;
			if (c == (void *)&e->inofd) {
				engine_exec_reap_locked(e, e->inofd);
				continue;
			}
			if (!c) {
				uint64_t v;
				(void)!read(e->wakefd, &v, sizeof(v));
				continue;
			}
			if (c->watched && (jobs[n_jobs] = engine_exit_begin_locked(e, c)))
				n_jobs++;
			engine_container_unref(c);
		}
		timeout = run_due(e);
		pthread_mutex_unlock(&e->lock);
		/* each exit's cleanup on its own thread: one that hangs holds up nothing else */
		for (size_t i = 0; i < n_jobs; i++)
			engine_spawn_thread(e, exit_thread, jobs[i]);
	}
}

int engine_monitor_start(struct engine *e, struct berth_error **err)
{
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->epfd < 0 || e->wakefd < 0)
		return berth_error_errno(err, "create epoll");
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev);
	e->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ev.data.ptr = &e->inofd;
	if (e->inofd >= 0 && epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->inofd, &ev) < 0)
		e->inofd = safe_close(e->inofd);
	if (pthread_create(&e->monitor, NULL, monitor_main, e) != 0)
		return berth_error_set(err, EAGAIN, "start monitor thread");
	return 0;
}

void engine_monitor_stop(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
	engine_monitor_wake(e);
	pthread_join(e->monitor, NULL);
	safe_close(e->epfd);
	safe_close(e->wakefd);
	e->inofd = safe_close(e->inofd);
}

static bool is_our_shim(struct engine *e, struct container *c)
{
	if (c->shim_pid <= 0)
		return false;
	_cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", (int)c->shim_pid);
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	return file_contains(path, xdir, strlen(xdir) + 1);
}

/* The live shim serving exec dir xdir (its command line names it), or 0. */
static pid_t find_shim(const char *xdir)
{
	_cleanup_closedir_ DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		_cleanup_free_ char *path = xasprintf("/proc/%s/cmdline", de->d_name);
		if (file_contains(path, xdir, strlen(xdir) + 1))
			return (pid_t)atoi(de->d_name);
	}
	return 0;
}

/*
 * What a daemon killed in the middle of a start (or a create) left behind:
 * the runtime's container (init, cgroup, state), its shim, the exec dir.
 * A start that was not recorded did not happen: all of it goes, the record
 * (if any) keeps its state. id may be NULL when unknown (an orphaned dir).
 */
static void reap_unrecorded(struct engine *e, const char *id, const char *xdir)
{
	_cleanup_json_ json_t *used = id ? engine_runtime_from_exec_dir(xdir) : NULL;
	if (used) { /* no shim.json: the runtime was not called */
		struct engine_rt rt;
		engine_rt_from(e, used, &rt);
		rt.oci.ops->delete (&rt.oci, id, true, NULL);
		engine_rt_done(&rt);
	}
	pid_t shim = find_shim(xdir);
	if (shim > 0)
		kill(shim, SIGKILL);
	if (id)
		e->img->unmount(e->img_ctx, id, NULL);
	fs_rm_rf(xdir, NULL);
	log_fields(LOG_LEVEL_INFO, "cleaned up an unrecorded container start", "id", id ? id : "-", "dir",
		   xdir, NULL);
}

/* A start in progress leaves an exec dir without exit.json and a record that is not running. */
static bool start_interrupted(struct engine *e, const struct container *c, char **ret_xdir)
{
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	_cleanup_free_ char *exit_json = xasprintf("%s/exit.json", xdir);
	if (access(xdir, F_OK) < 0 || access(exit_json, F_OK) == 0)
		return false;
	*ret_xdir = TAKE_PTR(xdir);
	return true;
}

/* Exec dirs and container dirs no record owns (a kill -9 before the record, or after its removal). */
static void sweep_orphans(struct engine *e)
{
	_cleanup_free_ char *xroot = xasprintf("%s/c", e->exec_root);
	_cleanup_free_ char *croot = xasprintf("%s/containers", e->root);
	const char *roots[] = { xroot, croot };
	for (size_t k = 0; k < ARRAY_SIZE(roots); k++) {
		_cleanup_closedir_ DIR *d = opendir(roots[k]);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			bool owned = false;
			for (size_t i = 0; i < e->n_cs && !owned; i++)
				owned = k == 0 ? !strncmp(e->cs[i]->id, de->d_name, 24)
					       : streq(e->cs[i]->id, de->d_name);
			if (owned)
				continue;
			_cleanup_free_ char *dir = xasprintf("%s/%s", roots[k], de->d_name);
			if (k == 1) {
				fs_rm_rf(dir, NULL);
				continue;
			}
			/* the shim config names the full id (for the runtime and the snapshot) */
			_cleanup_free_ char *cfg = xasprintf("%s/shim.json", dir);
			_cleanup_json_ json_t *j = NULL;
			const char *id = NULL;
			if (json_load_path(cfg, 1 << 20, &j, NULL) == 0)
				id = json_string_value(json_object_get(j, "id"));
			reap_unrecorded(e, id, dir);
			if (id)
				e->img->remove(e->img_ctx, id, NULL);
		}
	}
}

static bool is_container_id(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/*
 * Container snapshots no record owns: a removal that failed to finish (its
 * record was deleted, the snapshot's was not, e.g. on a full disk) or a
 * crash. Build snapshots ("build-...") and other ids are not the engine's.
 */
static void sweep_snapshots(struct engine *e)
{
	char **ids = NULL;
	if (!e->img->snapshots || e->img->snapshots(e->img_ctx, &ids, NULL) < 0)
		return;
	for (size_t i = 0; ids[i]; i++) {
		if (!is_container_id(ids[i]))
			continue;
		bool owned = false;
		for (size_t k = 0; k < e->n_cs && !owned; k++)
			owned = streq(e->cs[k]->id, ids[i]);
		if (owned)
			continue;
		_cleanup_error_ struct berth_error *err = NULL;
		int r = e->img->remove(e->img_ctx, ids[i], &err);
		_cleanup_free_ char *m = r < 0 ? berth_error_string(err) : NULL;
		log_fields(r < 0 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
			   r < 0 ? "removing an orphaned snapshot failed" : "removed an orphaned snapshot",
			   "id", ids[i], "error", m ? m : "-", NULL);
	}
	strv_free(ids);
}

/* Call with e->lock held, before the monitor runs (the lock is dropped while removals finish). */
void engine_lifecycle_recover(struct engine *e)
{
	struct container **finish = xcalloc(e->n_cs + 1, sizeof(*finish));
	struct autoremove **rms = xcalloc(e->n_cs + 1, sizeof(*rms));
	size_t n_finish = 0, n_rms = 0;
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		c->engine = e;
		const char *rt = json_string_value(json_object_get(c->hostconfig, "Runtime"));
		if (!rt || !*rt) /* a record older than per-container runtimes: the default (dockerd) */
			json_object_set_new(c->hostconfig, "Runtime", json_string(engine_runtime_default(e)));
		if (c->state == ENGINE_REMOVING || c->state == ENGINE_DEAD || /* killed while removing */
		    (c->state == ENGINE_EXITED && /* or before removing an --rm container (as dockerd) */
		     json_is_true(json_object_get(c->hostconfig, "AutoRemove")))) {
			finish[n_finish++] = engine_container_ref(c);
			continue;
		}
		if (c->state == ENGINE_RESTARTING) {
			c->restart_due_ms = proc_now_ms();
			continue;
		}
		if (c->state != ENGINE_RUNNING && c->state != ENGINE_PAUSED) {
			_cleanup_free_ char *xdir = NULL;
			if (start_interrupted(e, c, &xdir))
				reap_unrecorded(e, c->id, xdir);
			continue;
		}
		_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
		json_decref(c->rt_used);
		c->rt_used = engine_runtime_from_exec_dir(xdir); /* what this run's operations call */
		if (is_our_shim(e, c)) {
			c->shim_pidfd = proc_pidfd_open(c->shim_pid);
			if (c->pid > 0)
				c->pidfd = proc_pidfd_open(c->pid);
		}
		if (c->shim_pidfd >= 0)
			engine_monitor_watch(e, c);
		else if ((rms[n_rms] =
			      engine_lifecycle_record_exit(e, c))) /* an --rm container: removed below */
			n_rms++;
	}
	pthread_mutex_unlock(&e->lock);
	/* removed before the daemon serves, so that no client sees one half gone */
	for (size_t i = 0; i < n_rms; i++)
		engine_ops_autoremove_finish(e, rms[i]);
	free(rms);
	for (size_t i = 0; i < n_finish; i++) {
		_cleanup_error_ struct berth_error *err = NULL;
		log_fields(LOG_LEVEL_INFO, "finishing an interrupted removal", "id", finish[i]->id, NULL);
		pthread_mutex_lock(&finish[i]->op_lock);
		if (engine_ops_remove(e, finish[i], false, &err) < 0) {
			_cleanup_free_ char *m = berth_error_string(err);
			log_fields(LOG_LEVEL_WARN, "finishing an interrupted removal failed", "id",
				   finish[i]->id, "error", m, NULL);
		}
		pthread_mutex_unlock(&finish[i]->op_lock);
	}
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < n_finish; i++)
		engine_container_unref(finish[i]);
	free(finish);
	sweep_orphans(e);
	sweep_snapshots(e);
}
