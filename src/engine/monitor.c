/*
 * monitor.c - the engine's one background thread: waits (epoll) on the
 * pidfds of shims, records exits from the exit file the shim wrote, applies
 * restart policies and runs due health checks. Reattachment after a daemon
 * restart also lives here: a shim is adopted by pidfd_open() on its recorded
 * pid after checking /proc/<pid>/cmdline names it.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/util.h"
#include "engine/internal.h"

#define RESTART_BACKOFF_MIN_MS 100
#define RESTART_BACKOFF_MAX_MS 60000
#define RESTART_RESET_AFTER_MS 10000

void monitor_wake(struct engine *e)
{
	uint64_t one = 1;
	(void)!write(e->wakefd, &one, sizeof(one));
}

/* Call with e->lock held. */
void monitor_watch(struct engine *e, struct container *c)
{
	if (c->shim_pidfd < 0)
		return;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = container_ref(c) };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, c->shim_pidfd, &ev) < 0)
		container_unref(c);
}

static bool file_contains(const char *path, const char *needle, size_t nlen)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, path, 64 * 1024, &sb, NULL) < 0)
		return false;
	return memmem(sb.buf, sb.len, needle, nlen) != NULL;
}

/* The init of a container whose shim vanished: kill it if it is really ours. */
static void kill_orphan(struct engine *e, struct container *c)
{
	if (c->pid <= 0)
		return;
	_cleanup_free_ char *cg = xasprintf("/proc/%d/cgroup", (int)c->pid);
	if (file_contains(cg, c->id, strlen(c->id)))
		proc_signal(c->pid, c->pidfd, SIGKILL);
	const char *args[] = { "delete", "--force", c->id, NULL };
	engine_runtime_cmd(e, args, NULL, NULL);
}

static bool restart_wanted(const struct container *c)
{
	const json_t *rp = json_object_get(c->hostconfig, "RestartPolicy");
	const char *name = json_string_value(json_object_get(rp, "Name"));
	if (!name || c->manual_stop || c->removed)
		return false;
	if (streq(name, "always") || streq(name, "unless-stopped"))
		return true;
	if (streq(name, "on-failure")) {
		json_int_t max = json_integer_value(json_object_get(rp, "MaximumRetryCount"));
		return c->exit_code != 0 && (max <= 0 || c->restart_count < max);
	}
	return false;
}

static int64_t started_ms_ago(const struct container *c)
{
	struct timespec st, now;
	if (!c->started_at || parse_rfc3339(c->started_at, &st) < 0)
		return 0;
	clock_gettime(CLOCK_REALTIME, &now);
	return (now.tv_sec - st.tv_sec) * 1000 + (now.tv_nsec - st.tv_nsec) / 1000000;
}

/* Call with e->lock held. */
void lifecycle_record_exit(struct engine *e, struct container *c)
{
	_cleanup_free_ char *xdir = container_exec_dir(e, c->id);
	_cleanup_free_ char *path = xasprintf("%s/exit.json", xdir);
	_cleanup_json_ json_t *j = NULL;
	char t[RFC3339_MAX];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	format_rfc3339(&ts, t);
	free(c->finished_at);
	if (json_load_path(path, 4096, &j, NULL) == 0) {
		c->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
		const char *fa = json_string_value(json_object_get(j, "finished_at"));
		c->finished_at = xstrdup(fa ? fa : t);
	} else {
		kill_orphan(e, c);
		c->exit_code = 137;
		c->finished_at = xstrdup(t);
		free(c->error);
		c->error = xstrdup("container shim exited unexpectedly");
	}
	if (c->shim_pidfd >= 0) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->shim_pidfd, NULL);
		c->shim_pidfd = safe_close(c->shim_pidfd);
	}
	c->pidfd = safe_close(c->pidfd);
	c->pid = 0;
	c->shim_pid = 0;
	c->exit_gen++;
	free(c->health);
	c->health = NULL;
	int64_t t0 = now_ns();
	e->img->unmount(e->img_ctx, c->id, NULL);
	network_teardown(e, c);
	log_debug("exit %.12s: unmount+network %lld us", c->id, (long long)(now_ns() - t0) / 1000);
	json_t *attrs = json_pack("{s:s}", "exitCode", "");
	json_object_set_new(attrs, "exitCode", json_sprintf("%d", c->exit_code));
	container_event(e, c, "die", attrs);
	if (restart_wanted(c)) {
		int64_t ran = started_ms_ago(c);
		if (ran >= RESTART_RESET_AFTER_MS || c->backoff_ms == 0)
			c->backoff_ms = RESTART_BACKOFF_MIN_MS;
		else
			c->backoff_ms = MIN(c->backoff_ms * 2, RESTART_BACKOFF_MAX_MS);
		c->restart_due_ms = now_ms() + c->backoff_ms;
		container_set_state(e, c, ENGINE_RESTARTING);
	} else {
		container_set_state(e, c, ENGINE_EXITED);
		if (json_is_true(json_object_get(c->hostconfig, "AutoRemove")) && !c->removed)
			ops_remove_async(e, c);
	}
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
		if (lifecycle_start_locked_op(e, c, &err) < 0) {
			pthread_mutex_lock(&e->lock);
			_cleanup_free_ char *m = berth_error_string(err);
			free(c->error);
			c->error = xstrdup(m ? m : "restart failed");
			c->exit_code = 128;
			container_set_state(e, c, ENGINE_EXITED);
			pthread_mutex_unlock(&e->lock);
		}
		berth_error_free(err);
	}
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

void engine_spawn_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	if (pthread_create(&t, &at, fn, arg) != 0)
		fn(arg);
	pthread_attr_destroy(&at);
}

/* Due restarts and health checks; returns ms until the next one (-1: none). Call with e->lock held. */
static int run_due(struct engine *e)
{
	int64_t now = now_ms(), next = -1;
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		if (c->state == ENGINE_RESTARTING && c->restart_due_ms) {
			if (c->restart_due_ms <= now) {
				c->restart_due_ms = 0;
				engine_spawn_thread(restart_thread, container_ref(c));
			} else if (next < 0 || c->restart_due_ms - now < next) {
				next = c->restart_due_ms - now;
			}
		}
		int64_t h = health_due(e, c, now);
		if (h >= 0 && (next < 0 || h < next))
			next = h;
	}
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
		int n = epoll_wait(e->epfd, evs, ARRAY_SIZE(evs), timeout);
		pthread_mutex_lock(&e->lock);
		if (e->stopping) {
			pthread_mutex_unlock(&e->lock);
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			struct container *c = evs[i].data.ptr;
			if (!c) {
				uint64_t v;
				(void)!read(e->wakefd, &v, sizeof(v));
				continue;
			}
			if (c->shim_pidfd >= 0)
				lifecycle_record_exit(e, c);
			container_unref(c);
		}
		timeout = run_due(e);
		pthread_mutex_unlock(&e->lock);
	}
}

int monitor_start(struct engine *e, struct berth_error **err)
{
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->epfd < 0 || e->wakefd < 0)
		return berth_error_errno(err, "create epoll");
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev);
	if (pthread_create(&e->monitor, NULL, monitor_main, e) != 0)
		return berth_error_set(err, EAGAIN, "start monitor thread");
	return 0;
}

void monitor_stop(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_mutex_unlock(&e->lock);
	monitor_wake(e);
	pthread_join(e->monitor, NULL);
	safe_close(e->epfd);
	safe_close(e->wakefd);
}

static bool is_our_shim(struct engine *e, struct container *c)
{
	if (c->shim_pid <= 0)
		return false;
	_cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", (int)c->shim_pid);
	_cleanup_free_ char *xdir = container_exec_dir(e, c->id);
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
	if (id) {
		const char *args[] = { "delete", "--force", id, NULL };
		engine_runtime_cmd(e, args, NULL, NULL);
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
	_cleanup_free_ char *xdir = container_exec_dir(e, c->id);
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

/* Call with e->lock held, before the monitor runs. */
void lifecycle_recover(struct engine *e)
{
	struct container **finish = xcalloc(e->n_cs + 1, sizeof(*finish));
	size_t n_finish = 0;
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		c->engine = e;
		if (c->state == ENGINE_REMOVING || c->state == ENGINE_DEAD) { /* killed while removing */
			finish[n_finish++] = container_ref(c);
			continue;
		}
		if (c->state == ENGINE_RESTARTING) {
			c->restart_due_ms = now_ms();
			continue;
		}
		if (c->state != ENGINE_RUNNING && c->state != ENGINE_PAUSED) {
			_cleanup_free_ char *xdir = NULL;
			if (start_interrupted(e, c, &xdir))
				reap_unrecorded(e, c->id, xdir);
			continue;
		}
		if (is_our_shim(e, c)) {
			c->shim_pidfd = proc_pidfd_open(c->shim_pid);
			if (c->pid > 0)
				c->pidfd = proc_pidfd_open(c->pid);
		}
		if (c->shim_pidfd >= 0)
			monitor_watch(e, c);
		else
			lifecycle_record_exit(e, c);
	}
	for (size_t i = 0; i < n_finish; i++) {
		log_fields(LOG_LEVEL_INFO, "finishing an interrupted removal", "id", finish[i]->id, NULL);
		ops_remove_locked(e, finish[i]);
		container_unref(finish[i]);
	}
	free(finish);
	sweep_orphans(e);
}
