/*
 * lb.c - the agent's load balancer and discovery data plane (lb.h): two
 * threads. The poll thread follows GET /agent/v1/dataplane and applies each
 * answer (records file, HAProxy's runtime API or a reload); the supervisor
 * keeps HAProxy running while there is a load balancer (restart after a
 * crash, one second apart) and stops it when there is none or the agent
 * stops. HAProxy's master is our child; a master left by an agent that was
 * killed is adopted (its pid file names it) and reloaded with our
 * configuration instead of being replaced, so its listeners never close.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/lb.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"

#define RESTART_MS     1000
#define RETRY_MS       1000
#define SOCKET_WAIT_MS 5000
#define STOP_WAIT_MS   5000

struct lb_agent {
	char *dir, *haproxy, *records, *cfg_path, *sock_path, *pid_path;
	lb_fetch_fn fetch;
	lb_post_fn post;
	void *userdata;
	pthread_mutex_t lock;
	pthread_cond_t synced_cond;
	bool synced;         /* the first dataplane answer is applied (agent_lb_wait_synced) */
	bool stopping, want; /* want: HAProxy should run (some load balancer exists) */
	int wake;            /* eventfd: the supervisor looks again */
	pid_t pid;           /* HAProxy's master, 0: none */
	int pidfd;
	bool child; /* ours to reap (not adopted) */
	pthread_t poll_thread, sup_thread, health_thread;
	bool poll_running, sup_running, health_running;
	json_t *slot_map;  /* agent_lb_slot_map(&cur), published by the poll thread for the health thread
			      (locked) */
	struct lb_set cur; /* what HAProxy's configuration and runtime state hold (poll thread only) */
	char *records_text;
	char hash[65];
};

static bool stopping(struct lb_agent *l)
{
	pthread_mutex_lock(&l->lock);
	bool s = l->stopping;
	pthread_mutex_unlock(&l->lock);
	return s;
}

static void wake(struct lb_agent *l)
{
	uint64_t one = 1;
	(void)!write(l->wake, &one, sizeof(one));
}

/* Wait ms or until woken for stopping; false when stopping. */
static bool nap(struct lb_agent *l, int ms)
{
	int64_t end = proc_now_ms() + ms;
	while (!stopping(l)) {
		int64_t left = end - proc_now_ms();
		if (left <= 0)
			return true;
		usleep((useconds_t)MIN(left, 100) * 1000);
	}
	return false;
}

/* ---- HAProxy process ---- */

static int spawn_haproxy(struct lb_agent *l, struct berth_error **err)
{
	_cleanup_free_ char *log = xasprintf("%s/haproxy.log", l->dir);
	_cleanup_close_ int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_error_errno(err, "open '%s'", log);
	const char *argv[] = { l->haproxy, "-W", "-db", "-f", l->cfg_path, "-p", l->pid_path, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.stdio[1] = fd;
	o.stdio[2] = fd;
	o.new_session = true; /* a terminal's ^C reaches the agent, which stops HAProxy itself */
	pid_t pid;
	int pidfd = -1;
	int r = proc_spawn(&o, &pid, &pidfd, err);
	if (r < 0)
		return berth_error_wrap(err, r, "start haproxy");
	l->pid = pid;
	l->pidfd = pidfd >= 0 ? pidfd : proc_pidfd_open(pid);
	l->child = true;
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	log_fields(LOG_LEVEL_INFO, "haproxy started", "pid", buf, NULL);
	return 0;
}

/* A master left by an earlier agent on this exec root: adopt it when it runs our configuration. */
static void adopt_stale(struct lb_agent *l)
{
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT, cmd = STRBUF_INIT;
	if (fs_read_file_at(AT_FDCWD, l->pid_path, 64, &sb, NULL) < 0)
		return;
	pid_t pid = (pid_t)atoi(sb.buf);
	_cleanup_free_ char *proc = xasprintf("/proc/%d/cmdline", (int)pid);
	if (pid <= 1 || fs_read_file_at(AT_FDCWD, proc, 4096, &cmd, NULL) < 0)
		return;
	for (size_t i = 0; i < cmd.len; i++)
		if (!cmd.buf[i])
			cmd.buf[i] = ' ';
	if (!strstr(cmd.buf, l->cfg_path))
		return;
	int fd = proc_pidfd_open(pid);
	if (fd < 0)
		return;
	l->pid = pid;
	l->pidfd = fd;
	l->child = false;
	/* keep it (and its listeners) until the dataplane says there is no load balancer */
	l->want = true;
	log_fields(LOG_LEVEL_INFO, "adopted a running haproxy", "pid", sb.buf, NULL);
}

/* After the master ended: reap it when it is ours. Locked. */
static void reaped(struct lb_agent *l)
{
	int st = 0;
	if (l->child)
		(void)waitpid(l->pid, &st, 0);
	safe_close(l->pidfd);
	l->pidfd = -1;
	l->pid = 0;
}

static void stop_haproxy(struct lb_agent *l)
{
	if (!l->pid)
		return;
	(void)proc_signal(l->pid, l->pidfd, SIGTERM);
	struct pollfd p = { .fd = l->pidfd, .events = POLLIN };
	if (l->pidfd < 0 || poll(&p, 1, STOP_WAIT_MS) != 1)
		(void)proc_signal(l->pid, l->pidfd, SIGKILL);
	if (l->pidfd >= 0 && !l->child)
		(void)poll(&p, 1, STOP_WAIT_MS);
	reaped(l);
	log_fields(LOG_LEVEL_INFO, "haproxy stopped", NULL);
}

static void *supervise_main(void *arg)
{
	struct lb_agent *l = arg;
	int64_t not_before = 0;
	for (;;) {
		pthread_mutex_lock(&l->lock);
		if (l->stopping || (!l->want && l->pid)) {
			stop_haproxy(l);
			if (l->stopping) {
				pthread_mutex_unlock(&l->lock);
				return NULL;
			}
		}
		int timeout = -1;
		if (l->want && !l->pid && access(l->cfg_path, R_OK) == 0) {
			if (proc_now_ms() >= not_before) {
				_cleanup_error_ struct berth_error *err = NULL;
				if (spawn_haproxy(l, &err) < 0)
					log_fields(LOG_LEVEL_WARN, "cannot start haproxy", "error", err->msg,
						   NULL);
				not_before = proc_now_ms() + RESTART_MS;
			}
			if (!l->pid)
				timeout = (int)MAX(1, not_before - proc_now_ms());
		}
		struct pollfd p[2] = { { .fd = l->wake, .events = POLLIN },
				       { .fd = l->pidfd, .events = POLLIN } };
		pthread_mutex_unlock(&l->lock);
		(void)poll(p, l->pid ? 2 : 1, timeout);
		uint64_t v;
		if (p[0].revents & POLLIN)
			(void)!read(l->wake, &v, sizeof(v));
		if (l->pid && (p[1].revents & (POLLIN | POLLHUP))) {
			pthread_mutex_lock(&l->lock);
			log_fields(LOG_LEVEL_WARN, "haproxy exited; restarting it", NULL);
			reaped(l);
			pthread_mutex_unlock(&l->lock);
		}
	}
}

/* ---- runtime API ---- */

/* Send commands (lines) to the admin socket on one connection; *out: HAProxy's answer (at most 1 MiB). */
static int runtime_exchange(struct lb_agent *l, const char *cmds, struct strbuf *out,
			    struct berth_error **err)
{
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(l->sock_path) >= sizeof(sa.sun_path))
		return berth_error_msg(err, ENAMETOOLONG, "haproxy admin socket path '%s' too long",
				       l->sock_path);
	memcpy(sa.sun_path, l->sock_path, strlen(l->sock_path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_errno(err, "connect to haproxy's admin socket '%s'", l->sock_path);
	_cleanup_strbuf_ struct strbuf line = STRBUF_INIT;
	agent_lb_runtime_line(cmds, &line);
	int r = fs_write_all(fd, line.buf, line.len);
	if (r < 0)
		return berth_error_set(err, -r, "write to haproxy's admin socket");
	shutdown(fd, SHUT_WR);
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0 && out->len < (1 << 20))
		strbuf_add(out, buf, (size_t)n);
	return 0;
}

/* The pid of the worker answering on the admin socket (`show info`), 0: none answers. */
static long worker_pid(struct lb_agent *l)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	if (runtime_exchange(l, "show info", &out, NULL) < 0)
		return 0;
	const char *p = strstr(out.buf ? out.buf : "", "\nPid: ");
	return p ? strtol(p + 6, NULL, 10) : 0;
}

/*
 * Wait until a worker other than old answers on the admin socket (old 0: any
 * worker), or time out. After a reload the new worker takes over the
 * listeners, the admin socket included (expose-fd listeners: same file, same
 * inode), so only the pid that answers tells the new worker is up.
 */
static void wait_worker(struct lb_agent *l, long old)
{
	int64_t end = proc_now_ms() + SOCKET_WAIT_MS;
	for (;;) {
		long pid = worker_pid(l);
		if ((pid && pid != old) || proc_now_ms() >= end || !nap(l, 20))
			return;
	}
}

/* Send commands that answer nothing on success (';'-separated is one line). */
static int runtime_send(struct lb_agent *l, const char *cmds, struct berth_error **err)
{
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	int r = runtime_exchange(l, cmds, &out, err);
	if (r < 0)
		return r;
	if (!agent_lb_runtime_answer_ok(out.buf))
		return berth_error_msg(err, EPROTO, "haproxy refused runtime commands: %s", out.buf);
	return 0;
}

json_t *agent_lb_request_counts(struct lb_agent *l)
{
	if (!l)
		return NULL;
	pthread_mutex_lock(&l->lock);
	bool running = l->pid > 0;
	pthread_mutex_unlock(&l->lock);
	_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
	if (!running || runtime_exchange(l, "show stat", &out, NULL) < 0)
		return NULL;
	return agent_lb_parse_stat(out.buf);
}

/* ---- applying an answer ---- */

static int write_certs(struct lb_agent *l, const struct lb_set *s, struct berth_error **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/certs", l->dir);
	int r = fs_mkdir_p(dir, 0700, err);
	for (size_t i = 0; i < s->n && r >= 0; i++) {
		if (!s->v[i].tls_pem)
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s.pem", dir, s->v[i].name);
		r = fs_write_file_atomic(p, s->v[i].tls_pem, strlen(s->v[i].tls_pem), 0600, err);
	}
	return r;
}

/* Check and write the configuration, then start (supervisor) or reload HAProxy. */
static int reload(struct lb_agent *l, const struct lb_set *s, struct berth_error **err)
{
	if (!s->n) { /* nothing to listen on: the supervisor stops HAProxy */
		pthread_mutex_lock(&l->lock);
		l->want = false;
		pthread_mutex_unlock(&l->lock);
		wake(l);
		return 0;
	}
	_cleanup_strbuf_ struct strbuf cfg = STRBUF_INIT, out = STRBUF_INIT;
	agent_lb_render_config(s, l->dir, &cfg);
	_cleanup_free_ char *tmp = xasprintf("%s.new", l->cfg_path);
	int r = write_certs(l, s, err);
	if (r >= 0)
		r = fs_write_file_atomic(tmp, cfg.buf, cfg.len, 0600, err);
	if (r < 0)
		return r;
	const char *argv[] = { l->haproxy, "-c", "-q", "-f", tmp, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	int st = 0;
	if ((r = proc_run(&o, NULL, 0, &out, &out, 64 << 10, 10000, &st, err)) < 0)
		return berth_error_wrap(err, r, "check the haproxy configuration");
	if (proc_exit_code(st) != 0)
		return berth_error_msg(err, EINVAL, "haproxy refused the configuration: %s", out.buf);
	/* what the running worker's checks know goes to the next one (agent_lb_server_state) */
	_cleanup_strbuf_ struct strbuf shown = STRBUF_INIT;
	pthread_mutex_lock(&l->lock);
	bool was_running = l->pid > 0;
	pthread_mutex_unlock(&l->lock);
	long old = 0; /* the worker the reload replaces */
	if (was_running) {
		(void)runtime_exchange(l, "show servers state", &shown, NULL);
		old = worker_pid(l);
	}
	_cleanup_free_ char *state = agent_lb_server_state(shown.buf, s);
	_cleanup_free_ char *state_path = xasprintf("%s/server-state", l->dir);
	if ((r = fs_write_file_atomic(state_path, state, strlen(state), 0600, err)) < 0)
		return r;
	if (rename(tmp, l->cfg_path) < 0)
		return berth_error_errno(err, "rename '%s'", tmp);
	pthread_mutex_lock(&l->lock);
	bool running = l->pid > 0;
	if (!running) /* left by a HAProxy that died: the new one makes it again */
		(void)unlink(l->sock_path);
	if (running)
		(void)proc_signal(l->pid, l->pidfd, SIGUSR2); /* the master re-reads the file, a new worker */
	l->want = true;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	wait_worker(l, running ? old : 0);
	log_fields(LOG_LEVEL_INFO, running ? "haproxy reloaded" : "haproxy configured", NULL);
	return 0;
}

/* Whether the listeners of next differ from cur's (names, ports, protocols, checks, certificates). */
static bool listeners_changed(const struct lb_set *cur, const struct lb_set *next)
{
	if (cur->n != next->n)
		return true;
	for (size_t i = 0; i < next->n; i++)
		if (!streq(cur->v[i].name, next->v[i].name) ||
		    agent_lb_backend_listener_changed(&cur->v[i], &next->v[i]))
			return true;
	return false;
}

static void apply_records(struct lb_agent *l, const json_t *discovery)
{
	if (!l->records)
		return;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	agent_lb_render_records(discovery, &sb);
	if (l->records_text && streq(l->records_text, sb.buf))
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	if (fs_write_file_atomic(l->records, sb.buf, sb.len, 0644, &err) < 0) {
		log_fields(LOG_LEVEL_WARN, "cannot write the discovery records", "error", err->msg, NULL);
		return;
	}
	free(l->records_text);
	l->records_text = strbuf_detach(&sb, NULL);
}

static const json_t *targets_of(const json_t *lbs, const char *name)
{
	size_t i;
	json_t *x;
	json_array_foreach (lbs, i, x)
		if (streq_ptr(json_string_value(json_object_get(x, "name")), name))
			return json_object_get(x, "targets");
	return NULL;
}

static void apply_lbs(struct lb_agent *l, const json_t *lbs)
{
	struct lb_set next;
	size_t skipped = 0;
	agent_lb_set_from_answer(lbs, &next, &skipped);
	if (skipped)
		log_fields(LOG_LEVEL_WARN, "ignoring invalid load balancers in the dataplane answer", NULL);
	pthread_mutex_lock(&l->lock);
	bool need = listeners_changed(&l->cur, &next) || (next.n && !l->pid);
	pthread_mutex_unlock(&l->lock);
	_cleanup_strbuf_ struct strbuf cmds = STRBUF_INIT;
	for (size_t i = 0; i < next.n; i++) {
		struct lb_backend *b = &next.v[i];
		for (size_t k = 0; k < l->cur.n; k++)
			if (streq(l->cur.v[k].name, b->name))
				agent_lb_backend_take_slots(b, &l->cur.v[k]);
		const json_t *targets = targets_of(lbs, b->name);
		if (!b->n_slots)
			agent_lb_backend_grow(b, json_array_size(targets));
		if (!agent_lb_plan(b, targets, &cmds)) {
			agent_lb_backend_grow(b, json_array_size(targets));
			(void)agent_lb_plan(b, targets, NULL);
			need = true;
		}
	}
	_cleanup_error_ struct berth_error *err = NULL;
	int r = 0;
	if (!need && cmds.len)
		r = runtime_send(l, cmds.buf, &err);
	if (r < 0) {
		log_fields(LOG_LEVEL_WARN, "runtime update failed; reloading haproxy", "error", err->msg,
			   NULL);
		berth_error_free(err), err = NULL;
		need = true;
	}
	if (need && (r = reload(l, &next, &err)) < 0)
		log_fields(LOG_LEVEL_WARN, "cannot configure haproxy", "error", err->msg, NULL);
	agent_lb_set_done(&l->cur);
	l->cur = next;
	if (r < 0) /* retry from scratch at the next answer */
		l->hash[0] = '\0';
	json_t *map = agent_lb_slot_map(&l->cur);
	pthread_mutex_lock(&l->lock);
	json_decref(l->slot_map);
	l->slot_map = map;
	pthread_mutex_unlock(&l->lock);
}

static void set_synced(struct lb_agent *l)
{
	pthread_mutex_lock(&l->lock);
	l->synced = true;
	pthread_cond_broadcast(&l->synced_cond);
	pthread_mutex_unlock(&l->lock);
}

static void *poll_main(void *arg)
{
	struct lb_agent *l = arg;
	while (!stopping(l)) {
		_cleanup_free_ char *path =
		    xasprintf("/agent/v1/dataplane?wait=%d%s%s", l->hash[0] ? LB_POLL_SEC : 0,
			      l->hash[0] ? "&hash=" : "", l->hash);
		_cleanup_json_ json_t *resp = NULL;
		_cleanup_error_ struct berth_error *err = NULL;
		int r = l->fetch(l->userdata, path, (LB_POLL_SEC + 10) * 1000L, &resp, &err);
		if (r == -ENOENT)
			set_synced(l); /* an older server: no dataplane */
		if (r == -ENOENT && !nap(l, RETRY_MS * 5))
			break;
		if (r < 0) {
			if (r != -ENOENT)
				log_fields(LOG_LEVEL_DEBUG, "dataplane poll failed", "error",
					   err ? err->msg : "", NULL);
			if (!nap(l, RETRY_MS))
				break;
			continue;
		}
		const char *h = json_string_value(json_object_get(resp, "hash"));
		if (h && streq(h, l->hash))
			continue;
		snprintf(l->hash, sizeof(l->hash), "%s", h && strlen(h) == 64 ? h : "");
		apply_records(l, json_object_get(resp, "discovery"));
		apply_lbs(l, json_object_get(resp, "loadBalancers"));
		set_synced(l);
	}
	set_synced(l);
	return NULL;
}

void agent_lb_wait_synced(struct lb_agent *l, int timeout_ms)
{
	if (!l)
		return;
	struct timespec ts = proc_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (!l->synced && !l->stopping)
		if (pthread_cond_timedwait(&l->synced_cond, &l->lock, &ts) != 0)
			break;
	pthread_mutex_unlock(&l->lock);
}

/* ---- health reports ---- */

/*
 * Every LB_HEALTH_MS: HAProxy's view of each target (`show stat`), posted to
 * the server when it changed, and at least every 30 samples (a server that
 * restarted, or another replica, learns it again). The server combines the
 * nodes' reports (DescribeTargetHealth; the service controller replaces
 * tasks that fail them past the grace period).
 */
static void *health_main(void *arg)
{
	struct lb_agent *l = arg;
	_cleanup_free_ char *sent = NULL;
	int since = 0;
	while (nap(l, LB_HEALTH_MS)) {
		pthread_mutex_lock(&l->lock);
		bool running = l->pid > 0;
		_cleanup_json_ json_t *slots = json_incref(l->slot_map);
		pthread_mutex_unlock(&l->lock);
		_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
		if (running && runtime_exchange(l, "show stat", &out, NULL) < 0)
			continue; /* between workers: next time */
		_cleanup_json_ json_t *lbs = running ? agent_lb_parse_health(out.buf, slots) : json_object();
		_cleanup_json_ json_t *body = json_pack("{s:O}", "loadBalancers", lbs);
		_cleanup_free_ char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		if (sent && streq(sent, text) && ++since < 30)
			continue;
		_cleanup_error_ struct berth_error *err = NULL;
		if (l->post(l->userdata, "/agent/v1/targethealth", body, 10000, &err) < 0) {
			log_fields(LOG_LEVEL_DEBUG, "target health report failed", "error",
				   err ? err->msg : "", NULL);
			continue;
		}
		free(sent);
		sent = TAKE_PTR(text);
		since = 0;
	}
	return NULL;
}

/* ---- lifecycle ---- */

static struct lb_agent *lb_free(struct lb_agent *l)
{
	safe_close(l->wake);
	safe_close(l->pidfd);
	agent_lb_set_done(&l->cur);
	json_decref(l->slot_map);
	char **strs[] = { &l->dir,       &l->haproxy,  &l->records,     &l->cfg_path,
			  &l->sock_path, &l->pid_path, &l->records_text };
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->synced_cond);
	free(l);
	return NULL;
}

int agent_lb_start(const struct lb_agent_config *cfg, struct lb_agent **ret, struct berth_error **err)
{
	if (!cfg->dir || !cfg->fetch)
		return berth_error_msg(err, EINVAL, "load balancer: no directory or fetch function");
	struct lb_agent *l = xcalloc(1, sizeof(*l));
	l->dir = xstrdup(cfg->dir);
	l->haproxy = xstrdup(cfg->haproxy ? cfg->haproxy : LB_HAPROXY);
	l->records = cfg->records_file ? xstrdup(cfg->records_file) : NULL;
	l->cfg_path = xasprintf("%s/haproxy.cfg", l->dir);
	l->sock_path = xasprintf("%s/admin.sock", l->dir);
	l->pid_path = xasprintf("%s/haproxy.pid", l->dir);
	l->fetch = cfg->fetch;
	l->post = cfg->post;
	l->userdata = cfg->userdata;
	l->pidfd = -1;
	pthread_mutex_init(&l->lock, NULL);
	proc_cond_init_monotonic(&l->synced_cond);
	l->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int r = l->wake < 0 ? berth_error_errno(err, "eventfd") : fs_mkdir_p(l->dir, 0700, err);
	if (r >= 0)
		adopt_stale(l);
	if (r >= 0 && (r = -pthread_create(&l->sup_thread, NULL, supervise_main, l)) < 0)
		berth_error_set(err, -r, "start the haproxy supervisor");
	l->sup_running = r >= 0;
	if (r >= 0 && (r = -pthread_create(&l->poll_thread, NULL, poll_main, l)) < 0)
		berth_error_set(err, -r, "start the dataplane thread");
	l->poll_running = r >= 0;
	if (r >= 0 && l->post && (r = -pthread_create(&l->health_thread, NULL, health_main, l)) < 0)
		berth_error_set(err, -r, "start the target health thread");
	l->health_running = r >= 0 && l->post;
	if (r < 0) {
		agent_lb_stop(l);
		return berth_error_wrap(err, r, "load balancer");
	}
	*ret = l;
	return 0;
}

struct lb_agent *agent_lb_stop(struct lb_agent *l)
{
	if (!l)
		return NULL;
	pthread_mutex_lock(&l->lock);
	l->stopping = true;
	pthread_cond_broadcast(&l->synced_cond);
	pthread_mutex_unlock(&l->lock);
	wake(l);
	if (l->poll_running)
		pthread_join(l->poll_thread, NULL);
	if (l->health_running)
		pthread_join(l->health_thread, NULL);
	if (l->sup_running)
		pthread_join(l->sup_thread, NULL);
	else
		stop_haproxy(l);
	return lb_free(l);
}
