/*
 * engine.c - open/close, the event reader, signal names and counters.
 */
#include <ctype.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "engine/internal.h"
#include "engine/options.h"

const char *engine_root(const struct engine *e)
{
	return e->root;
}

bool engine_cgroup_parent_valid(const char *p)
{
	if (*p == '/')
		p++;
	if (!*p || *p == '/' || strlen(p) > 200)
		return false;
	for (const char *s = p; *s;) {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
				return false;
		s += n;
		if (*s == '/')
			s++;
		if (!*s && s[-1] == '/')
			return false;
	}
	return true;
}

int engine_open(const struct engine_config *cfg, struct engine **ret, struct berth_error **err)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->root = xstrdup(cfg->root);
	e->exec_root = xstrdup(cfg->exec_root);
	e->rt_root = xasprintf("%s/runc", e->exec_root);
	if (cfg->runtimes)
		runtime_registry_copy(&e->runtimes, cfg->runtimes);
	else
		runtime_registry_init(&e->runtimes);
	e->shim_path = cfg->shim_path ? xstrdup(cfg->shim_path) : realpath("/proc/self/exe", NULL);
	e->init_path = xstrdup(cfg->init_path ? cfg->init_path : ENGINE_DEFAULT_INIT_PATH);
	e->cgroup_parent = xstrdup(cfg->cgroup_parent ? cfg->cgroup_parent : "berth");
	e->default_ulimits =
	    json_is_array(cfg->default_ulimits) ? json_deep_copy(cfg->default_ulimits) : NULL;
	e->epfd = e->wakefd = e->inofd = -1;
	pthread_mutex_init(&e->lock, NULL);
	proc_cond_init_monotonic(&e->cond); /* every timed wait on it takes a CLOCK_MONOTONIC deadline */
	e->net = cfg->net;
	e->net_ctx = cfg->net_ctx;
	int r;
	if ((r = runtime_registry_check(&e->runtimes, err)) < 0) { /* the default runtime must exist */
		engine_close(e);
		return r;
	}
	if (*e->cgroup_parent == '/' || !engine_cgroup_parent_valid(e->cgroup_parent)) {
		r = berth_error_msg(err, EINVAL,
				    "invalid cgroup parent '%s': expected a relative path of "
				    "[A-Za-z0-9_.-] names without '..'",
				    e->cgroup_parent);
		engine_close(e);
		return r;
	}
	if (e->default_ulimits &&
	    (r = engine_ulimits_check(e->default_ulimits, "default-ulimits", NULL, err)) < 0) {
		engine_close(e);
		return r;
	}
	_cleanup_free_ char *cdir = xasprintf("%s/containers", e->root);
	_cleanup_free_ char *xdir = xasprintf("%s/c", e->exec_root);
	if ((r = fs_mkdir_p(cdir, 0710, err)) < 0 || (r = fs_mkdir_p(xdir, 0700, err)) < 0 ||
	    (r = engine_store_open(e, err)) < 0) {
		engine_close(e);
		return r;
	}
	if (!cfg->images) {
		engine_close(e);
		return berth_error_msg(err, EINVAL, "engine: no image backend configured");
	}
	e->img = cfg->images;
	e->img_ctx = cfg->images_ctx;
	if ((r = engine_store_load(e, err)) < 0 || (r = engine_monitor_start(e, err)) < 0) {
		engine_close(e);
		return r;
	}
	pthread_mutex_lock(&e->lock);
	engine_lifecycle_recover(e);
	pthread_mutex_unlock(&e->lock);
	engine_monitor_wake(e);
	*ret = e;
	return 0;
}

struct engine *engine_close(struct engine *e)
{
	if (!e)
		return NULL;
	if (e->epfd >= 0)
		engine_monitor_stop(e);
	pthread_mutex_lock(&e->lock);
	/*
	 * Exit, removal, restart and health threads still use the engine (an
	 * --rm container's removal unmounts its rootfs, tens of ms): wait for
	 * them, at most 10 s; one still running then keeps the engine (leaked).
	 */
	struct timespec dl = proc_deadline(CLOCK_MONOTONIC, 10000);
	while (__atomic_load_n(&e->n_threads, __ATOMIC_SEQ_CST) > 0 &&
	       pthread_cond_timedwait(&e->cond, &e->lock, &dl) != ETIMEDOUT)
		;
	unsigned busy = __atomic_load_n(&e->n_threads, __ATOMIC_SEQ_CST);
	if (busy) {
		pthread_mutex_unlock(&e->lock);
		_cleanup_free_ char *n = xasprintf("%u", busy);
		log_fields(LOG_LEVEL_WARN, "engine threads still running at close: not freed", "threads", n,
			   NULL);
		return NULL;
	}
	for (size_t i = 0; i < e->n_cs; i++) {
		struct container *c = e->cs[i];
		/* drop the reference engine_monitor_watch() took */
		if (c->watched && c->refs > 1)
			engine_container_unref(c);
		engine_container_unref(c);
	}
	free(e->cs);
	while (e->execs) {
		struct exec_instance *x = e->execs;
		e->execs = x->next;
		free(x->id);
		free(x->container_id);
		json_decref(x->config);
		json_decref(x->process);
		free(x);
	}
	pthread_mutex_unlock(&e->lock);
	engine_store_close(e);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e->root);
	free(e->exec_root);
	runtime_registry_done(&e->runtimes);
	free(e->rt_root);
	free(e->init_path);
	free(e->cgroup_parent);
	json_decref(e->default_ulimits);
	free(e->shim_path);
	free(e);
	return NULL;
}

void engine_shutdown(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
	e->closing = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

void engine_counts(struct engine *e, struct engine_counts *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&e->lock);
	for (size_t i = 0; i < e->n_cs; i++) {
		ret->containers++;
		switch (e->cs[i]->state) {
		case ENGINE_RUNNING:
		case ENGINE_RESTARTING: ret->running++; break;
		case ENGINE_PAUSED: ret->paused++; break;
		default: ret->stopped++;
		}
	}
	pthread_mutex_unlock(&e->lock);
}

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP },       { "INT", SIGINT },   { "QUIT", SIGQUIT },   { "ILL", SIGILL },
	{ "TRAP", SIGTRAP },     { "ABRT", SIGABRT }, { "BUS", SIGBUS },     { "FPE", SIGFPE },
	{ "KILL", SIGKILL },     { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },   { "USR2", SIGUSR2 },
	{ "PIPE", SIGPIPE },     { "ALRM", SIGALRM }, { "TERM", SIGTERM },   { "CHLD", SIGCHLD },
	{ "CONT", SIGCONT },     { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },   { "TTIN", SIGTTIN },
	{ "TTOU", SIGTTOU },     { "URG", SIGURG },   { "XCPU", SIGXCPU },   { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
	{ "PWR", SIGPWR },       { "SYS", SIGSYS },
};

int engine_signal_parse(const char *s)
{
	if (!s || !*s)
		return -EINVAL;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end == '\0')
		return v > 0 && v < 65 ? (int)v : -EINVAL;
	const char *n = !strncasecmp(s, "SIG", 3) ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(signals); i++)
		if (!strcasecmp(signals[i].name, n))
			return signals[i].sig;
	return -EINVAL;
}

/* ---- events ---- */

struct engine_event_reader {
	struct engine *e;
	int64_t since_ns, until_ns, last_seq;
	json_t *pending;
	size_t pos;
	bool follow;
};

void engine_event_log(struct engine *e, const char *type, const char *action, const char *id,
		      const json_t *attributes)
{
	pthread_mutex_lock(&e->lock);
	engine_store_event(e, type, action, id, attributes);
	pthread_mutex_unlock(&e->lock);
}

int engine_events_open(struct engine *e, int64_t since_ns, int64_t until_ns, struct engine_event_reader **ret,
		       struct berth_error **err)
{
	struct engine_event_reader *r = xcalloc(1, sizeof(*r));
	r->e = e;
	r->since_ns = since_ns;
	r->until_ns = until_ns;
	r->follow = until_ns == 0;
	pthread_mutex_lock(&e->lock);
	if (since_ns) {
		engine_store_events_since(e, since_ns, 0, &r->pending, &r->last_seq);
	} else {
		/* only new events: start after the newest one */
		json_t *all = NULL;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		engine_store_events_since(e, now, 0, &all, &r->last_seq);
		json_decref(all);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(e->db, "SELECT COALESCE(MAX(seq), 0) FROM events", -1, &st, NULL) ==
			SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			r->last_seq = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		r->pending = json_array();
	}
	pthread_mutex_unlock(&e->lock);
	*ret = r;
	return 0;
}

int engine_events_next(struct engine_event_reader *r, json_t **ret, struct berth_error **err)
{
	struct engine *e = r->e;
	for (;;) {
		while (r->pos < json_array_size(r->pending)) {
			json_t *ev = json_array_get(r->pending, r->pos++);
			int64_t t = json_integer_value(json_object_get(ev, "timeNano"));
			if (r->until_ns && t > r->until_ns) {
				*ret = NULL;
				return 0;
			}
			*ret = json_incref(ev);
			return 0;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		if (r->until_ns && now > r->until_ns) {
			*ret = NULL;
			return 0;
		}
		pthread_mutex_lock(&e->lock);
		uint64_t seq = e->event_seq;
		json_decref(r->pending);
		engine_store_events_since(e, r->since_ns, r->last_seq, &r->pending, &r->last_seq);
		r->pos = 0;
		if (json_array_size(r->pending) == 0) {
			if (e->closing || (!r->follow && !r->until_ns)) {
				pthread_mutex_unlock(&e->lock);
				*ret = NULL;
				return 0;
			}
			struct timespec dl = proc_deadline(CLOCK_MONOTONIC, 1000);
			while (e->event_seq == seq && !e->closing)
				if (pthread_cond_timedwait(&e->cond, &e->lock, &dl) == ETIMEDOUT)
					break;
		}
		pthread_mutex_unlock(&e->lock);
	}
}

struct engine_event_reader *engine_events_close(struct engine_event_reader *r)
{
	if (!r)
		return NULL;
	json_decref(r->pending);
	free(r);
	return NULL;
}

char *engine_container_cgroup_path(const struct engine *e, const struct container *c)
{
	const char *p = json_string_value(json_object_get(c->hostconfig, "CgroupParent"));
	if (!p || !*p)
		p = e->cgroup_parent;
	while (*p == '/')
		p++;
	return xasprintf("/%s/%s", p, c->id);
}
