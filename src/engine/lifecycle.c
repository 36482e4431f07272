/*
 * lifecycle.c - start, stop, kill, pause, restart, remove and wait, plus the
 * monitor thread that learns about exits from shim pidfds and applies
 * restart policies with docker's backoff (100 ms doubling to 1 min, reset
 * after 10 s of running).
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/process.h"
#include "common/strv.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/state.h"
#include "http/http.h"
#include "runtime/runtime.h"
#include "shim/shim.h"

static void now_rfc3339(char out[RFC3339_MAX])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, out);
}

/*
 * The executable for shims and `runtime` commands: the slim berth-shim next
 * to the berth binary when it is there, else the berth binary itself. Its
 * read-only handle (runtime_exe_open_ro) is opened once per process: shims
 * started from it need no CVE-2019-5736 re-exec; -1 where mounts cannot be
 * cloned (the shim then re-executes from a sealed memfd itself).
 */
static struct {
	pthread_mutex_t lock;
	char *for_path, *exe;
	int ro_fd;
} shim_exe = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, -1 };

static void shim_exe_get(struct engine *e, char **ret_exe, int *ret_fd)
{
	pthread_mutex_lock(&shim_exe.lock);
	if (!shim_exe.for_path || !streq(shim_exe.for_path, e->shim_path)) {
		free(shim_exe.for_path);
		free(shim_exe.exe);
		shim_exe.ro_fd = safe_close(shim_exe.ro_fd);
		shim_exe.for_path = xstrdup(e->shim_path);
		_cleanup_free_ char *d = xstrdup(e->shim_path);
		char *slash = strrchr(d, '/');
		if (slash)
			*slash = '\0';
		_cleanup_free_ char *slim = xasprintf("%s/berth-shim", slash ? d : ".");
		shim_exe.exe = xstrdup(access(slim, X_OK) == 0 ? slim : e->shim_path);
		_cleanup_error_ struct berth_error *oe = NULL;
		shim_exe.ro_fd = runtime_exe_open_ro(shim_exe.exe, &oe);
		if (shim_exe.ro_fd < 0) {
			_cleanup_free_ char *m = berth_error_string(oe);
			log_debug("shims will re-exec from a memfd: %s", m);
		}
	}
	*ret_exe = xstrdup(shim_exe.exe);
	*ret_fd = shim_exe.ro_fd >= 0 ? fcntl(shim_exe.ro_fd, F_DUPFD_CLOEXEC, 3) : -1;
	pthread_mutex_unlock(&shim_exe.lock);
}

/*
 * The resolv.conf a container gets: the host's, or in container:X mode X's
 * own (docker shares it: the containers of an ECS awsvpc task resolve
 * through what their pause container was given).
 */
static void resolv_conf_of(struct engine *e, const char *mode, struct strbuf *sb)
{
	if (mode && startswith(mode, "container:")) {
		struct container *t = NULL;
		if (engine_container_find(e, mode + 10, &t, NULL) >= 0) {
			_cleanup_free_ char *dir = engine_container_dir(e, t->id);
			_cleanup_free_ char *path = xasprintf("%s/resolv.conf", dir);
			pthread_mutex_lock(&e->lock);
			engine_container_unref(t);
			pthread_mutex_unlock(&e->lock);
			if (fs_read_file_at(AT_FDCWD, path, 1 << 20, sb, NULL) >= 0)
				return;
			strbuf_reset(sb);
		}
	}
	if (fs_read_file_at(AT_FDCWD, "/etc/resolv.conf", 1 << 20, sb, NULL) < 0)
		strbuf_reset(sb);
}

/* The words after `key` on the lines of a resolv.conf that start with it ("nameserver", "search" ...). */
static void resolv_words(const char *text, const char *key, bool last_only, char ***ret)
{
	_cleanup_free_ char *copy = xstrdup(text);
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(key);
		if (strncmp(line, key, n) || (line[n] != ' ' && line[n] != '\t'))
			continue;
		if (last_only) { /* search/domain: the last line wins */
			strv_free(*ret);
			*ret = NULL;
		}
		char *save2 = NULL;
		for (char *w = strtok_r(line + n, " \t", &save2); w; w = strtok_r(NULL, " \t", &save2))
			strv_add(ret, w);
	}
}

static char **json_strv(const json_t *a)
{
	char **v = NULL;
	size_t i;
	json_t *el;
	json_array_foreach (a, i, el)
		if (json_string_value(el))
			strv_add(&v, json_string_value(el));
	return v;
}

/*
 * --dns, --dns-search, --dns-option over the base resolv.conf, as dockerd's
 * resolvconf.Build: what is not given comes from the base; search "." is none.
 */
static void resolv_conf_apply(const json_t *hc, struct strbuf *sb)
{
	_cleanup_strv_ char **dns = json_strv(json_object_get(hc, "Dns"));
	_cleanup_strv_ char **search = json_strv(json_object_get(hc, "DnsSearch"));
	_cleanup_strv_ char **opts = json_strv(json_object_get(hc, "DnsOptions"));
	if (!dns && !search && !opts)
		return;
	_cleanup_free_ char *base = strbuf_detach(sb, NULL);
	if (!dns)
		resolv_words(base, "nameserver", false, &dns);
	if (!search) {
		resolv_words(base, "domain", true, &search);
		resolv_words(base, "search", true, &search);
	}
	if (!opts)
		resolv_words(base, "options", false, &opts);
	if (search && !(strv_length(search) == 1 && streq(search[0], "."))) {
		strbuf_addstr(sb, "search");
		for (char **w = search; *w; w++)
			strbuf_addf(sb, " %s", *w);
		strbuf_addch(sb, '\n');
	}
	for (char **w = dns; w && *w; w++)
		strbuf_addf(sb, "nameserver %s\n", *w);
	if (opts) {
		strbuf_addstr(sb, "options");
		for (char **w = opts; *w; w++)
			strbuf_addf(sb, " %s", *w);
		strbuf_addch(sb, '\n');
	}
}

static int write_etc_files(struct engine *e, struct container *c, bool host_net, struct berth_error **err)
{
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	const char *hostname = json_string_value(json_object_get(c->config, "Hostname"));
	_cleanup_free_ char *hn = xasprintf("%s/hostname", dir), *hosts = xasprintf("%s/hosts", dir),
			    *resolv = xasprintf("%s/resolv.conf", dir);
	_cleanup_free_ char *hn_body = xasprintf("%s\n", hostname ? hostname : "berth");
	const char *mode = json_string_value(json_object_get(c->hostconfig, "NetworkMode"));
	/* regenerated at every start: no fsync, after a crash they are written again before use */
	int r = fs_write_file_replace(hn, hn_body, strlen(hn_body), 0644, err);
	if (r < 0)
		return r;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	bool own = !host_net || fs_read_file_at(AT_FDCWD, "/etc/hosts", 1 << 20, &sb, NULL) < 0;
	if (own)
		/* libnetwork's etchosts defaults; with --network none dockerd names no address for
		 * the host name (there is none), without networks at all berth gives it loopback's */
		strbuf_addstr(&sb, "127.0.0.1\tlocalhost\n"
				   "::1\tlocalhost ip6-localhost ip6-loopback\n"
				   "fe00::0\tip6-localnet\n"
				   "ff00::0\tip6-mcastprefix\n"
				   "ff02::1\tip6-allnodes\n"
				   "ff02::2\tip6-allrouters\n");
	size_t i;
	json_t *el;
	json_array_foreach (json_object_get(c->hostconfig, "ExtraHosts"), i, el) {
		_cleanup_free_ char *h = xstrdup(json_string_value(el));
		char *ip = strchr(h, ':');
		if (ip) {
			*ip++ = '\0';
			strbuf_addf(&sb, "%s\t%s\n", ip, h);
		}
	}
	if (own && !streq_ptr(mode, "none"))
		strbuf_addf(&sb, "127.0.0.1\t%s\n", hostname ? hostname : "berth");
	if ((r = fs_write_file_replace(hosts, sb.buf, sb.len, 0644, err)) < 0)
		return r;
	strbuf_reset(&sb);
	resolv_conf_of(e, json_string_value(json_object_get(c->hostconfig, "NetworkMode")), &sb);
	resolv_conf_apply(c->hostconfig, &sb);
	return fs_write_file_replace(resolv, sb.buf, sb.len, 0644, err);
}

/* Network namespace to join (NULL: a new one, or none at all for host mode). */
static int network_setup(struct engine *e, struct container *c, char **ret_netns, struct berth_error **err)
{
	const char *mode = json_string_value(json_object_get(c->hostconfig, "NetworkMode"));
	*ret_netns = NULL;
	if (!mode || streq(mode, "none") || streq(mode, "host") || streq(mode, "default") ||
	    streq(mode, "bridge")) {
		if (e->net && mode && (streq(mode, "default") || streq(mode, "bridge")))
			return e->net->attach(e->net_ctx, c->id, mode, c->hostconfig, ret_netns, err);
		return 0;
	}
	if (startswith(mode, "container:")) {
		struct container *t;
		pthread_mutex_lock(&e->lock);
		int r = engine_container_find_locked(e, mode + 10, &t, err);
		if (r >= 0) {
			if (t->state != ENGINE_RUNNING || t->pid <= 0)
				r = berth_error_msg(
				    err, EINVAL, "cannot join network of a non running container: %s", t->id);
			else
				*ret_netns = xasprintf("/proc/%d/ns/net", (int)t->pid);
			engine_container_unref(t);
		}
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	if (!e->net)
		return berth_error_msg(err, ENOENT, "network %s not found", mode);
	return e->net->attach(e->net_ctx, c->id, mode, c->hostconfig, ret_netns, err);
}

static bool network_ops_mode(struct engine *e, const char *mode)
{
	return e->net && mode && !streq(mode, "none") && !streq(mode, "host") &&
	       !startswith(mode, "container:");
}

void engine_network_teardown(struct engine *e, const char *id, const json_t *hostconfig)
{
	const char *mode = json_string_value(json_object_get(hostconfig, "NetworkMode"));
	if (network_ops_mode(e, mode))
		e->net->detach(e->net_ctx, id, mode, NULL);
}

void engine_network_release(struct engine *e, const char *id, const json_t *hostconfig)
{
	const char *mode = json_string_value(json_object_get(hostconfig, "NetworkMode"));
	if (network_ops_mode(e, mode) && e->net->release)
		e->net->release(e->net_ctx, id, mode, NULL);
}

static int write_shim_config(struct engine *e, struct container *c, const char *xdir, const json_t *rt_used,
			     struct berth_error **err)
{
	_cleanup_free_ char *dir = engine_container_dir(e, c->id);
	struct log_settings ls = { 0 };
	int r = engine_log_settings_get(json_object_get(c->hostconfig, "LogConfig"), dir, c->id, &ls, err);
	if (r < 0)
		return r;
	if (ls.local) {
		_cleanup_free_ char *ldir = xasprintf("%s/local-logs", dir);
		if ((r = fs_mkdir_p(ldir, 0700, err)) < 0) {
			engine_log_settings_done(&ls);
			return r;
		}
	}
	_cleanup_json_ json_t *j =
	    json_pack("{s:s,s:o,s:I,s:I,s:s,s:b,s:b,s:b,s:b}", "id", c->id, "log_path",
		      ls.path ? json_string(ls.path) : json_null(), "log_max_size", (json_int_t)ls.max_size,
		      "log_max_file", (json_int_t)ls.max_file, "log_driver", ls.local ? "local" : "json-file",
		      "log_compress", ls.compress, "tty", json_is_true(json_object_get(c->config, "Tty")),
		      "open_stdin", json_is_true(json_object_get(c->config, "OpenStdin")), "stdin_once",
		      json_is_true(json_object_get(c->config, "StdinOnce")));
	engine_log_settings_done(&ls);
	_cleanup_free_ char *attrs = NULL;
	if ((r = engine_log_attrs(c->config, json_object_get(c->hostconfig, "LogConfig"), &attrs, err)) < 0)
		return r;
	if (attrs)
		json_object_set_new(j, "log_attrs", json_string(attrs));
	json_object_update(j, (json_t *)rt_used); /* the runtime of this run (runtimes.c) */
	_cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
	_cleanup_free_ char *path = xasprintf("%s/shim.json", xdir);
	return fs_write_file_replace(path, text, strlen(text), 0600, err);
}

/*
 * Start `berth-shim shim xdir` (from its read-only handle, passed as fd 4 and
 * executed as /proc/self/fd/4, when there is one) and wait for its readiness line.
 * The pipe's read end is returned in *ret_exit_fd: the shim keeps its end until
 * it has written exit.json, so its hang-up is the exit (before the shim's
 * runtime delete and its own exit).
 */
static int spawn_shim(struct engine *e, const char *xdir, pid_t *ret_pid, pid_t *ret_shim, int *ret_exit_fd,
		      struct berth_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return berth_error_errno(err, "create pipe");
	_cleanup_close_ int rd = p[0];
	_cleanup_free_ char *exe = NULL;
	int fds[2] = { p[1], -1 };
	shim_exe_get(e, &exe, &fds[1]);
	const char *argv[] = { fds[1] >= 0 ? "/proc/self/fd/4" : exe, "shim", xdir, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.extra_fds = fds;
	o.n_extra_fds = fds[1] >= 0 ? 2 : 1;
	o.new_session = true;
	pid_t pid;
	int pidfd = -1;
	int r = proc_spawn(&o, &pid, &pidfd, err);
	close(fds[0]);
	safe_close(fds[1]);
	if (r < 0)
		return r;
	int status;
	proc_wait(pid, pidfd, -1, &status, NULL);
	safe_close(pidfd);
	/*
	 * One line, not EOF: with the in-process runtime the container's init is
	 * forked from the shim and holds the pipe until it execs.
	 */
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	while (sb.len < 64 * 1024 && !memchr(sb.buf, '\n', sb.len)) {
		char buf[512];
		ssize_t n = read(rd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		strbuf_add(&sb, buf, (size_t)n);
	}
	if (sb.len == 0)
		return berth_error_msg(err, EIO, "shim exited without reporting");
	strbuf_trim_trailing(&sb);
	if (startswith(sb.buf, "error "))
		return berth_error_msg(err, EIO, "%s", sb.buf + 6);
	int a, b;
	if (sscanf(sb.buf, "ok %d %d", &a, &b) != 2)
		return berth_error_msg(err, EIO, "shim: bad readiness line '%s'", sb.buf);
	*ret_pid = a;
	*ret_shim = b;
	*ret_exit_fd = TAKE_FD(rd);
	return 0;
}

struct relay_job {
	int a, b;
};

static void *relay_thread(void *arg)
{
	struct relay_job *j = arg;
	http_relay(j->a, j->b, NULL, 0);
	close(j->a);
	close(j->b);
	free(j);
	return NULL;
}

void engine_spawn_relay(int a, int b)
{
	struct relay_job *j = xmalloc(sizeof(*j));
	*j = (struct relay_job){ a, b };
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, relay_thread, j) != 0) {
		close(a);
		close(b);
		free(j);
	}
	pthread_attr_destroy(&at);
}

void engine_request_detach_keys(json_t *req, const struct engine_stream_opts *o)
{
	if (!o || o->n_detach_keys == 0)
		return;
	json_t *keys = json_array();
	for (size_t i = 0; i < o->n_detach_keys && i < ENGINE_DETACH_KEYS_MAX; i++)
		json_array_append_new(keys, json_integer(o->detach_keys[i]));
	json_object_set_new(req, "detach_keys", keys);
}

json_t *engine_attach_request(const struct engine_stream_opts *o)
{
	json_t *req = json_pack("{s:s,s:b,s:b,s:b}", "op", "attach", "stdin", o->in, "stdout", o->out,
				"stderr", o->err);
	engine_request_detach_keys(req, o);
	return req;
}

/*
 * Join streams parked before start to the shim and send it "start", pipelined:
 * the shim takes them in order (each parked attach before the start, so no
 * output is missed), the replies are read after the last request is sent.
 * Takes e->lock to take the parked streams over. The start request's fd, or -errno.
 */
static int attach_parked_and_start(struct engine *e, struct container *c, const char *xdir,
				   struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	struct parked_attach *list = TAKE_PTR(c->parked);
	pthread_mutex_unlock(&e->lock);
	for (struct parked_attach *p = list; p; p = p->next) {
		_cleanup_json_ json_t *req = engine_attach_request(&p->opts);
		p->shim_fd = shim_request_send(xdir, req, NULL);
	}
	_cleanup_json_ json_t *req = json_pack("{s:s}", "op", "start");
	int fd = shim_request_send(xdir, req, err);
	while (list) {
		struct parked_attach *p = list;
		list = p->next;
		int sfd = p->shim_fd >= 0 ? shim_request_finish(p->shim_fd, NULL, NULL) : -1;
		if (sfd >= 0)
			engine_spawn_relay(p->fd, sfd);
		else
			close(p->fd);
		free(p);
	}
	return fd < 0 ? fd : shim_request_finish(fd, NULL, err);
}

static int exec_error_code(const char *msg)
{
	if (strstr(msg, "executable file not found") || strstr(msg, "no such file or directory"))
		return 127;
	if (strstr(msg, "permission denied"))
		return 126;
	return 128;
}

/* Prepare everything and start; c->op_lock held, e->lock not held. */
static int start_locked_op(struct engine *e, struct container *c, struct berth_error **err)
{
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	_cleanup_free_ char *netns = NULL, *rootfs = NULL;
	int64_t t0 = proc_now_ns(), t1, t2, t3, t4;
	/* the runtime this run is on: the shim's, and every later operation's (runtimes.c) */
	_cleanup_json_ json_t *rt_used = NULL;
	pthread_mutex_lock(&e->lock);
	int r = engine_runtime_for_start(e, c, &rt_used, err);
	if (r >= 0) {
		json_decref(c->rt_used);
		c->rt_used = json_deep_copy(rt_used);
	}
	pthread_mutex_unlock(&e->lock);
	if (r < 0)
		return r;
	engine_shim_wait_gone(e, c); /* a previous run's shim may still delete its runtime state */
	fs_rm_rf(xdir, NULL);
	r = fs_mkdir_p(xdir, 0700, err);
	if (r < 0)
		return r;
	r = c->rootfs ? e->img->mount(e->img_ctx, c->id, &rootfs, err)
		      : e->img->prepare(e->img_ctx, c->id, c->image_id, &rootfs, err);
	if (r < 0)
		return r;
	util_crash_point("start-snapshot");
	t1 = proc_now_ns();
	pthread_mutex_lock(&e->lock);
	free(c->rootfs);
	c->rootfs = xstrdup(rootfs);
	pthread_mutex_unlock(&e->lock);
	const char *mode = json_string_value(json_object_get(c->hostconfig, "NetworkMode"));
	if ((r = network_setup(e, c, &netns, err)) < 0 ||
	    /* network ops own /etc files of the modes they handle (network_setup gave a netns) */
	    (!(e->net && netns && mode && !startswith(mode, "container:")) &&
	     (r = write_etc_files(e, c, mode && streq(mode, "host"), err)) < 0) ||
	    (r = engine_spec_write(e, c, rootfs, netns, err)) < 0 ||
	    (r = write_shim_config(e, c, xdir, rt_used, err)) < 0)
		return r;
	t2 = proc_now_ns();
	pid_t pid = 0, shim = 0;
	_cleanup_close_ int exit_fd = -1;
	r = spawn_shim(e, xdir, &pid, &shim, &exit_fd, err);
	if (r < 0)
		return r;
	util_crash_point("start-shim");
	t3 = proc_now_ns();
	int pidfd = proc_pidfd_open(pid), shim_pidfd = proc_pidfd_open(shim);
	int fd = attach_parked_and_start(e, c, xdir, err);
	if (fd < 0) {
		proc_signal(pid, pidfd, SIGKILL);
		safe_close(pidfd);
		safe_close(shim_pidfd);
		return fd;
	}
	util_crash_point("start-started");
	t4 = proc_now_ns();
	log_debug("start %.12s: snapshot %lld us, network+files+spec %lld us, shim+create %lld us, "
		  "attach+start %lld us",
		  c->id, (long long)(t1 - t0) / 1000, (long long)(t2 - t1) / 1000,
		  (long long)(t3 - t2) / 1000, (long long)(t4 - t3) / 1000);
	close(fd);
	char t[RFC3339_MAX];
	now_rfc3339(t);
	pthread_mutex_lock(&e->lock);
	safe_close(c->pidfd);
	safe_close(c->shim_pidfd);
	safe_close(c->exit_fd);
	c->pid = pid;
	c->pidfd = pidfd;
	c->shim_pid = shim;
	c->shim_pidfd = shim_pidfd;
	c->exit_fd = TAKE_FD(exit_fd);
	free(c->started_at);
	c->started_at = xstrdup(t);
	free(c->error);
	c->error = NULL;
	c->has_started = true;
	c->oom_killed = false;
	c->exit_code = 0;
	if (json_object_get(c->config, "Healthcheck") && !c->health)
		c->health = xstrdup("starting");
	c->health_next_ms = 0;
	engine_store_begin(e); /* the record and its event: one commit */
	engine_container_set_state(e, c, ENGINE_RUNNING);
	engine_container_event(e, c, "start", NULL);
	if (engine_store_commit(e) < 0) /* saved again: a failed save is logged and retried */
		engine_container_save(e, c, NULL);
	engine_monitor_watch(e, c);
	pthread_mutex_unlock(&e->lock);
	engine_monitor_wake(e);
	return 0;
}

int engine_lifecycle_start_locked_op(struct engine *e, struct container *c, struct berth_error **err)
{
	int r = start_locked_op(e, c, err);
	if (r < 0) /* a failed start keeps no network (addresses, ports, netns) */
		engine_network_teardown(e, c->id, c->hostconfig); /* op_lock held: hostconfig stays */
	return r;
}

int engine_container_start(struct engine *e, const char *ref, struct berth_error **err)
{
	struct container *c;
	int r = engine_container_find(e, ref, &c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	enum engine_state s = c->state;
	c->manual_stop = false;
	c->restart_due_ms = 0;
	pthread_mutex_unlock(&e->lock);
	r = engine_state_admit(ENGINE_OP_START, s, false, c->id, err);
	if (r >= 0)
		r = engine_lifecycle_start_locked_op(e, c, err);
	if (r < 0 && r != -EALREADY && r != -EBUSY) {
		_cleanup_free_ char *msg = berth_error_string(err ? *err : NULL);
		pthread_mutex_lock(&e->lock);
		free(c->error);
		c->error = xstrdup(msg ? msg : "start failed");
		c->exit_code = exec_error_code(c->error);
		engine_container_save(e, c, NULL);
		if (json_is_true(json_object_get(c->hostconfig, "AutoRemove")))
			engine_ops_remove_async(e,
						c); /* docker removes an --rm container whose start failed */
		pthread_mutex_unlock(&e->lock);
		e->img->unmount(e->img_ctx, c->id, NULL);
	}
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return r;
}
