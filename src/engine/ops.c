/*
 * ops.c - operations on existing containers: stop, kill, pause, restart,
 * remove, wait, top and attach. Each takes the container's op_lock so
 * lifecycle changes of one container never interleave.
 */
#include <sys/wait.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strv.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/state.h"
#include "shim/shim.h"

/* Find, then take op_lock. Release with op_end(). */
static int op_begin(struct engine *e, const char *ref, struct container **ret, struct berth_error **err)
{
	int r = engine_container_find(e, ref, ret, err);
	if (r >= 0)
		pthread_mutex_lock(&(*ret)->op_lock);
	return r;
}

static void op_end(struct engine *e, struct container *c)
{
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
}

/* Wait (e->lock held) until the exit generation moves past gen, at most timeout_ms (< 0: forever). */
static bool wait_exit_locked(struct engine *e, struct container *c, uint64_t gen, int64_t timeout_ms)
{
	struct timespec dl = proc_deadline(CLOCK_MONOTONIC, timeout_ms); /* e->cond is monotonic */
	while (c->exit_gen == gen && c->state != ENGINE_EXITED && c->state != ENGINE_CREATED) {
		if (timeout_ms < 0)
			pthread_cond_wait(&e->cond, &e->lock);
		else if (pthread_cond_timedwait(&e->cond, &e->lock, &dl) == ETIMEDOUT)
			return false;
	}
	return true;
}

/*
 * A paused container is resumed before a signal can reach it. Called and
 * returns with e->lock held; the runtime command runs without it (op_lock,
 * held by the caller, keeps the state from changing meanwhile but for an exit).
 */
static int resume_if_paused(struct engine *e, struct container *c)
{
	if (c->state != ENGINE_PAUSED)
		return 0;
	struct engine_rt rt;
	engine_rt_of(e, c, &rt);
	pthread_mutex_unlock(&e->lock);
	int r = rt.oci.ops->resume(&rt.oci, c->id, NULL);
	engine_rt_done(&rt);
	pthread_mutex_lock(&e->lock);
	if (r >= 0 && c->state == ENGINE_PAUSED)
		c->state = ENGINE_RUNNING;
	return r;
}

static int stop_locked(struct engine *e, struct container *c, int timeout_s)
{
	pthread_mutex_lock(&e->lock);
	c->manual_stop = true;
	if (c->state == ENGINE_RESTARTING) {
		c->restart_due_ms = 0;
		engine_container_set_state(e, c, ENGINE_EXITED);
	}
	if (!engine_state_live(c->state)) {
		engine_container_save(e, c, NULL);
		pthread_mutex_unlock(&e->lock);
		return -EALREADY;
	}
	resume_if_paused(e, c);
	const char *ss = json_string_value(json_object_get(c->config, "StopSignal"));
	int sig = ss ? engine_signal_parse(ss) : SIGTERM;
	if (timeout_s < 0) {
		json_t *st = json_object_get(c->config, "StopTimeout");
		timeout_s = json_is_integer(st) ? (int)json_integer_value(st) : 10;
	}
	uint64_t gen = c->exit_gen;
	proc_signal(c->pid, c->pidfd, sig > 0 ? sig : SIGTERM);
	engine_container_event(e, c, "kill", json_pack("{s:s}", "signal", "15"));
	if (!wait_exit_locked(e, c, gen, (int64_t)timeout_s * 1000)) {
		proc_signal(c->pid, c->pidfd, SIGKILL);
		wait_exit_locked(e, c, gen, 30000);
	}
	engine_container_event(e, c, "stop", NULL);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int engine_container_stop(struct engine *e, const char *ref, int timeout_s, struct berth_error **err)
{
	struct container *c;
	int r = op_begin(e, ref, &c, err);
	if (r < 0)
		return r;
	r = stop_locked(e, c, timeout_s);
	if (r == -EALREADY)
		berth_error_msg(err, EALREADY, "container already stopped");
	op_end(e, c);
	return r;
}

int engine_container_restart(struct engine *e, const char *ref, int timeout_s, struct berth_error **err)
{
	struct container *c;
	int r = op_begin(e, ref, &c, err);
	if (r < 0)
		return r;
	r = stop_locked(e, c, timeout_s);
	pthread_mutex_lock(&e->lock);
	c->manual_stop = false;
	pthread_mutex_unlock(&e->lock);
	r = engine_lifecycle_start_locked_op(e, c, err);
	if (r >= 0) {
		pthread_mutex_lock(&e->lock);
		engine_container_event(e, c, "restart", NULL);
		pthread_mutex_unlock(&e->lock);
	}
	op_end(e, c);
	return r;
}

int engine_container_kill(struct engine *e, const char *ref, int sig, struct berth_error **err)
{
	struct container *c;
	int r = op_begin(e, ref, &c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	if ((r = engine_state_admit(ENGINE_OP_KILL, c->state, false, c->id, err)) >= 0) {
		if (sig == SIGKILL)
			resume_if_paused(e, c);
		uint64_t gen = c->exit_gen;
		r = proc_signal(c->pid, c->pidfd, sig);
		if (r < 0)
			berth_error_set(err, -r, "kill container '%s'", c->id);
		else
			engine_container_event(e, c, "kill", json_pack("{s:s}", "signal", ""));
		/* like docker: a kill with the stop signal or SIGKILL counts as a manual stop */
		const char *ss = json_string_value(json_object_get(c->config, "StopSignal"));
		if (r >= 0 && (sig == SIGKILL || sig == (ss ? engine_signal_parse(ss) : SIGTERM)))
			c->manual_stop = true;
		/*
		 * dockerd returns from a SIGKILL only once the container is dead, so
		 * that an inspect or a remove right after sees it exited (137)
		 */
		if (r >= 0 && sig == SIGKILL)
			wait_exit_locked(e, c, gen, 30000);
	}
	pthread_mutex_unlock(&e->lock);
	op_end(e, c);
	return r;
}

int engine_container_pause(struct engine *e, const char *ref, bool pause, struct berth_error **err)
{
	struct container *c;
	int r = op_begin(e, ref, &c, err);
	if (r < 0)
		return r;
	struct engine_rt rt;
	pthread_mutex_lock(&e->lock);
	r = engine_state_admit(pause ? ENGINE_OP_PAUSE : ENGINE_OP_UNPAUSE, c->state, false, c->id, err);
	engine_rt_of(e, c, &rt);
	pthread_mutex_unlock(&e->lock);
	if (r >= 0)
		r = pause ? rt.oci.ops->pause(&rt.oci, c->id, err) : rt.oci.ops->resume(&rt.oci, c->id, err);
	engine_rt_done(&rt);
	if (r >= 0) {
		pthread_mutex_lock(&e->lock);
		engine_container_set_state(e, c, pause ? ENGINE_PAUSED : ENGINE_RUNNING);
		engine_container_event(e, c, pause ? "pause" : "unpause", NULL);
		pthread_mutex_unlock(&e->lock);
	}
	op_end(e, c);
	return r;
}

/* The container leaves the table: no longer listed, found, waited for; its name is free. e->lock held. */
static void hide_locked(struct engine *e, struct container *c)
{
	c->removed = true;
	c->dirty = false;
	while (c->parked) {
		struct parked_attach *p = c->parked;
		c->parked = p->next;
		close(p->fd);
		free(p);
	}
	engine_container_event(e, c, "destroy", NULL);
	engine_container_table_remove(e, c);
	pthread_cond_broadcast(&e->cond);
}

/*
 * Drop everything of an exited container. Crash-safe order: the record says
 * "removing" first, then the resources go (without e->lock: unmount, rm -rf
 * and the network's release may block), then the record; a daemon killed in
 * between finishes the removal at its next start (engine_lifecycle_recover). The
 * snapshot goes first: on a full disk it frees the space the record's
 * deletion needs. A step that fails leaves the container "dead" with the
 * error returned; removing it again finishes the job.
 *
 * hide_first (--rm): the container leaves the table as soon as its record
 * says "removing" (once that is saved), so `wait?condition=removed` (docker run --rm) answers
 * without waiting for the unmount and the rm -rf nobody can observe. The
 * record (or, if a new container took the name meanwhile and replaced it,
 * the orphan sweep of snapshots and directories) still finishes the job
 * after a crash; a step that fails is logged and retried at the next start.
 */
struct removal {
	bool hidden, scrub;
	json_t *hc;
	char *name;
};

/* The removal's first step, under e->lock: the record says "removing". */
static void remove_mark_locked(struct engine *e, struct container *c, bool hide_first, struct removal *rm)
{
	while (c->exiting) /* the exit's cleanup still unmounts and tears down */
		pthread_cond_wait(&e->cond, &e->lock);
	/* a failed save is logged and retried; the container is then hidden only at the end */
	rm->hidden = engine_container_set_state(e, c, ENGINE_REMOVING) >= 0 && hide_first;
	rm->hc = json_incref(c->hostconfig);
	const char *build =
	    json_string_value(json_object_get(json_object_get(c->config, "Labels"), "berth.build"));
	rm->scrub = build && streq(build, "1");
	if (rm->hidden) {
		hide_locked(e, c);
		e->n_hidden_removals++;
	}
	rm->name = xstrdup(c->name);
}

/* The rest, without e->lock (it takes it for the record); frees rm's contents. */
static int remove_finish(struct engine *e, struct container *c, struct removal *rm, struct berth_error **err)
{
	_cleanup_json_ json_t *hc = TAKE_PTR(rm->hc);
	_cleanup_free_ char *name = TAKE_PTR(rm->name);
	bool hidden = rm->hidden, scrub = rm->scrub;
	util_crash_point("rm-marked");
	util_hang_point("rm-resources", name);
	engine_shim_wait_gone(e, c); /* its runtime delete, after exit.json */
	int r = e->img->remove(e->img_ctx, c->id, err);
	util_crash_point("rm-snapshot");
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	if (r >= 0) {
		engine_network_release(e, c->id, hc);
		engine_shm_unmount(e, c->id);
		if ((r = fs_rm_rf(dir, err)) >= 0)
			r = fs_rm_rf(xdir, err);
	}
	pthread_mutex_lock(&e->lock);
	if (r >= 0)
		r = engine_store_delete(e, c->id, scrub, err);
	if (hidden && e->n_hidden_removals-- == 1)
		pthread_cond_broadcast(&e->cond);
	if (r < 0) {
		/* hidden: no more saves (a new container may own the name, and so the row, by now) */
		if (!hidden)
			engine_container_set_state(e, c, ENGINE_DEAD);
		pthread_mutex_unlock(&e->lock);
		return berth_error_wrap(err, r, "remove container '%.12s'", c->id);
	}
	if (!hidden)
		hide_locked(e, c);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int engine_ops_remove(struct engine *e, struct container *c, bool hide_first, struct berth_error **err)
{
	struct removal rm;
	pthread_mutex_lock(&e->lock);
	remove_mark_locked(e, c, hide_first, &rm);
	pthread_mutex_unlock(&e->lock);
	return remove_finish(e, c, &rm, err);
}

int engine_container_remove(struct engine *e, const char *ref, bool force, bool volumes,
			    struct berth_error **err)
{
	struct container *c;
	_cleanup_json_ json_t *anon = NULL;
	int r = op_begin(e, ref, &c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	if (c->removed) {
		r = berth_error_msg(err, ENOENT, "No such container: %s", ref);
	} else if ((r = engine_state_admit(ENGINE_OP_REMOVE, c->state, force, c->id, err)) >= 0) {
		c->manual_stop = true;
		c->restart_due_ms = 0;
		if (engine_state_live(c->state)) {
			uint64_t gen = c->exit_gen;
			resume_if_paused(e, c);
			proc_signal(c->pid, c->pidfd, SIGKILL);
			wait_exit_locked(e, c, gen, 30000);
		}
		if (!c->removed && volumes)
			anon = engine_mounts_anonymous(c);
	}
	bool go = r >= 0 && !c->removed;
	pthread_mutex_unlock(&e->lock);
	if (go)
		r = engine_ops_remove(e, c, false, err);
	op_end(e, c);
	if (r >= 0)
		engine_mounts_remove_volumes(e, anon); /* after the container is gone: no longer in use */
	return r;
}

void engine_removals_wait(struct engine *e, int timeout_ms)
{
	struct timespec deadline = proc_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&e->lock);
	while (e->n_hidden_removals && pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == 0)
		;
	pthread_mutex_unlock(&e->lock);
}

struct autoremove {
	struct container *c; /* a reference; its op_lock is held */
	json_t *anon;        /* its anonymous volumes, removed after it */
	struct removal rm;
};

/*
 * An --rm container's removal, begun under e->lock with c->op_lock held: the
 * record says "removing" and, unless anonymous volumes go too (`volume ls`
 * would still show them), the container leaves the table at once.
 */
struct autoremove *engine_ops_autoremove_begin_locked(struct engine *e, struct container *c)
{
	struct autoremove *a = xcalloc(1, sizeof(*a));
	a->c = engine_container_ref(c);
	a->anon = engine_mounts_anonymous(c); /* --rm removes anonymous volumes, like docker */
	remove_mark_locked(e, c, json_array_size(a->anon) == 0, &a->rm);
	return a;
}

/* The rest of it, without e->lock: the resources, the record, c->op_lock released, a freed. */
void engine_ops_autoremove_finish(struct engine *e, struct autoremove *a)
{
	struct container *c = a->c;
	_cleanup_error_ struct berth_error *err = NULL;
	if (remove_finish(e, c, &a->rm, &err) < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		log_fields(LOG_LEVEL_WARN, "removing an --rm container failed", "id", c->id, "error", m,
			   NULL);
		json_decref(TAKE_PTR(a->anon));
	}
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	engine_mounts_remove_volumes(e, a->anon);
	json_decref(a->anon);
	free(a);
}

static void *remove_thread(void *arg)
{
	struct container *c = arg;
	struct engine *e = c->engine;
	util_crash_point("rm-auto"); /* exited, rootfs still mounted: engine_lifecycle_recover() removes it */
	pthread_mutex_lock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	/* CREATED: a start that failed (docker removes an --rm container then too) */
	bool go = !c->removed && (c->state == ENGINE_EXITED || c->state == ENGINE_CREATED);
	struct autoremove *a = go ? engine_ops_autoremove_begin_locked(e, c) : NULL;
	pthread_mutex_unlock(&e->lock);
	if (a)
		engine_ops_autoremove_finish(e, a); /* releases op_lock */
	else
		pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

void engine_ops_remove_async(struct engine *e, struct container *c)
{
	engine_spawn_thread(e, remove_thread, engine_container_ref(c));
}

struct engine_wait {
	struct engine *e;
	struct container *c; /* a reference */
	enum engine_wait_condition cond;
	uint64_t gen; /* c->exit_gen at begin */
};

int engine_container_wait_begin(struct engine *e, const char *ref, enum engine_wait_condition cond,
				struct engine_wait **ret, struct berth_error **err)
{
	struct container *c;
	pthread_mutex_lock(&e->lock);
	int r = engine_container_find_locked(e, ref, &c, err);
	if (r >= 0) {
		struct engine_wait *w = xmalloc(sizeof(*w));
		*w = (struct engine_wait){ e, c, cond, c->exit_gen };
		*ret = w;
	}
	pthread_mutex_unlock(&e->lock);
	return r < 0 ? r : 0;
}

void engine_wait_free(struct engine_wait *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->e->lock);
	engine_container_unref(w->c);
	pthread_mutex_unlock(&w->e->lock);
	free(w);
}

int engine_container_wait_finish(struct engine_wait *w, int *ret_exit_code, struct berth_error **err)
{
	struct engine *e = w->e;
	struct container *c = w->c;
	int r = 0;
	pthread_mutex_lock(&e->lock);
	for (;;) {
		bool done;
		if (w->cond == ENGINE_WAIT_REMOVED)
			done = c->removed;
		else if (w->cond == ENGINE_WAIT_NEXT_EXIT)
			done = c->exit_gen != w->gen || c->removed;
		else /* not-running: dockerd also returns at an exit that a restart policy follows */
			done = (!engine_state_live(c->state) && c->state != ENGINE_RESTARTING) ||
			       c->exit_gen != w->gen;
		if (done)
			break;
		if (e->closing) {
			r = berth_error_msg(err, ESHUTDOWN, "daemon is shutting down");
			break;
		}
		pthread_cond_wait(&e->cond, &e->lock);
	}
	if (r == 0)
		*ret_exit_code = c->exit_code;
	pthread_mutex_unlock(&e->lock);
	engine_wait_free(w);
	return r;
}

int engine_container_wait(struct engine *e, const char *ref, enum engine_wait_condition cond,
			  int *ret_exit_code, struct berth_error **err)
{
	struct engine_wait *w;
	int r = engine_container_wait_begin(e, ref, cond, &w, err);
	return r < 0 ? r : engine_container_wait_finish(w, ret_exit_code, err);
}

/* Split on spaces (Go's strings.Fields over ASCII whitespace). */
static char **fields_of(const char *s)
{
	char **v = NULL;
	while (*s) {
		s += strspn(s, " \t");
		size_t n = strcspn(s, " \t");
		if (n) {
			_cleanup_free_ char *f = xstrndup(s, n);
			strv_add(&v, f);
		}
		s += n;
	}
	return v;
}

/*
 * As dockerd: `ps ARGS` (docker top's ps options; -q PIDS first, for a ps
 * that has it), its header as the titles, and the rows whose PID column names
 * one of the container's processes, the last column holding the rest.
 */
static int top_ps(const char *ps_args, const pid_t *pids, size_t npids, const char *plist, json_t **ret,
		  struct berth_error **err)
{
	_cleanup_strv_ char **args = fields_of(ps_args);
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int st = -1;
	for (int quick = 1; quick >= 0 && st != 0; quick--) {
		_cleanup_strv_ char **argv = NULL;
		strv_add(&argv, "ps");
		for (char **a = args; a && *a; a++)
			strv_add(&argv, *a);
		if (quick && plist && *plist) {
			strv_add(&argv, "-q");
			strv_add(&argv, plist);
		}
		struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
		o.argv = (const char **)argv;
		strbuf_reset(&out);
		if (proc_run(&o, NULL, 0, &out, NULL, 0, 10000, &st, NULL) < 0)
			st = -1;
	}
	if (st != 0)
		return berth_error_msg(err, EINVAL, "Error running ps: exit status %d",
				       st > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : st);
	char *save = NULL;
	char *header = strtok_r(out.buf, "\n", &save);
	_cleanup_strv_ char **titles = header ? fields_of(header) : NULL;
	size_t ntitles = strv_length(titles);
	ssize_t pid_col = -1;
	for (size_t i = 0; i < ntitles; i++)
		if (streq(titles[i], "PID"))
			pid_col = (ssize_t)i;
	if (pid_col < 0)
		return berth_error_msg(err, EINVAL, "Couldn't find PID field in ps output");
	json_t *procs = json_array();
	for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		_cleanup_strv_ char **f = fields_of(line);
		size_t nf = strv_length(f);
		int64_t pid;
		if ((size_t)pid_col >= nf || util_parse_int64(f[pid_col], &pid) < 0)
			continue;
		bool ours = false;
		for (size_t i = 0; i < npids && !ours; i++)
			ours = pids[i] == (pid_t)pid;
		if (!ours)
			continue;
		json_t *row = json_array();
		_cleanup_strbuf_ struct strbuf last = STRBUF_INIT;
		for (size_t i = 0; i < nf; i++) {
			if (i + 1 < ntitles) {
				json_array_append_new(row, json_string(f[i]));
				continue;
			}
			if (last.len)
				strbuf_addch(&last, ' ');
			strbuf_addstr(&last, f[i]);
		}
		json_array_append_new(row, json_string(last.len ? last.buf : ""));
		json_array_append_new(procs, row);
	}
	json_t *t = json_array();
	for (size_t i = 0; i < ntitles; i++)
		json_array_append_new(t, json_string(titles[i]));
	*ret = json_pack("{s:o,s:o}", "Titles", t, "Processes", procs);
	return 0;
}

int engine_container_top(struct engine *e, const char *ref, const char *ps_args, json_t **ret,
			 struct berth_error **err)
{
	struct container *c;
	int r = engine_container_find(e, ref, &c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	bool running = engine_state_live(c->state);
	_cleanup_free_ char *id = xstrdup(c->id);
	struct engine_rt rt;
	engine_rt_of(e, c, &rt);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	if (!running) {
		engine_rt_done(&rt);
		return berth_error_msg(err, ENOTCONN, "Container %s is not running", id);
	}
	_cleanup_free_ pid_t *pids = NULL;
	size_t npids = 0;
	r = rt.oci.ops->ps(&rt.oci, id, &pids, &npids, err);
	engine_rt_done(&rt);
	if (r < 0)
		return r;
	_cleanup_strbuf_ struct strbuf plist = STRBUF_INIT;
	for (size_t i = 0; i < npids; i++)
		strbuf_addf(&plist, "%s%d", i ? "," : "", (int)pids[i]);
	return top_ps(ps_args && *ps_args ? ps_args : "-ef", pids, npids, plist.buf, ret, err);
}

int engine_container_attach(struct engine *e, const char *ref, const struct engine_stream_opts *opts,
			    int *ret_fd, bool *ret_tty, struct berth_error **err)
{
	struct container *c;
	pthread_mutex_lock(&e->lock);
	int r = engine_container_find_locked(e, ref, &c, err);
	if (r < 0) {
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	bool tty = json_is_true(json_object_get(c->config, "Tty"));
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	if (engine_state_live(c->state)) {
		pthread_mutex_unlock(&e->lock);
		_cleanup_json_ json_t *req = engine_attach_request(opts);
		r = shim_request(xdir, req, NULL, err);
		pthread_mutex_lock(&e->lock);
	} else {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
			r = berth_error_errno(err, "socketpair");
		} else if (c->state == ENGINE_CREATED || c->state == ENGINE_RESTARTING ||
			   c->state == ENGINE_EXITED) {
			struct parked_attach *p = xcalloc(1, sizeof(*p));
			p->fd = sp[1];
			p->opts = *opts;
			p->next = c->parked;
			c->parked = p;
			r = sp[0];
		} else {
			close(sp[1]); /* exited: the stream ends at once */
			r = sp[0];
		}
	}
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	if (r < 0)
		return r;
	*ret_fd = r;
	*ret_tty = tty;
	return 0;
}

int engine_resize(struct engine *e, const char *ref, const char *exec_id, int height, int width,
		  struct berth_error **err)
{
	struct container *c;
	pthread_mutex_lock(&e->lock);
	int r;
	if (exec_id) {
		const char *cid = NULL;
		for (struct exec_instance *x = e->execs; x; x = x->next)
			if (streq(x->id, exec_id))
				cid = x->container_id;
		r = cid ? engine_container_find_locked(e, cid, &c, err)
			: berth_error_msg(err, ENOENT, "No such exec instance: %s", exec_id);
	} else {
		r = engine_container_find_locked(e, ref, &c, err);
	}
	if (r < 0) {
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	bool running = engine_state_live(c->state);
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	if (!running)
		return berth_error_msg(err, ENOTCONN, "Container is not running");
	_cleanup_json_ json_t *req =
	    json_pack("{s:s,s:i,s:i}", "op", "resize", "height", height, "width", width);
	if (exec_id)
		json_object_set_new(req, "exec", json_string(exec_id));
	int fd = shim_request(xdir, req, NULL, NULL);
	if (fd < 0)
		return -ENOTTY;
	close(fd);
	return 0;
}
