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
#include "common/util.h"
#include "engine/internal.h"
#include "http/http.h"
#include "shim/shim.h"

static void now_rfc3339(char out[RFC3339_MAX])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	format_rfc3339(&ts, out);
}

int engine_runtime_cmd(struct engine *e, const char *const *args, struct strbuf *out,
		       struct berth_error **err)
{
	_cleanup_free_ char *root = xasprintf("%s/runc", e->exec_root);
	/* The in-process runtime's CLI is `berth runtime` (same state format). */
	bool builtin = streq(e->runtime, "berth");
	const char *argv[18] = { builtin ? e->shim_path : e->runtime, builtin ? "runtime" : "--root",
				 builtin ? "--root" : root, root };
	size_t n = builtin ? 4 : 3;
	for (size_t i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	_cleanup_strbuf_ struct strbuf errout = STRBUF_INIT;
	int status;
	int r = proc_run(&o, NULL, 0, out, &errout, 0, 30000, &status, err);
	if (r < 0)
		return r;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		strbuf_trim_trailing(&errout);
		return berth_error_msg(err, EIO, "OCI runtime %s failed: %s", args[0], errout.buf);
	}
	return 0;
}

static int write_etc_files(struct engine *e, struct container *c, bool host_net, struct berth_error **err)
{
	_cleanup_free_ char *dir = container_dir(e, c->id);
	const char *hostname = json_string_value(json_object_get(c->config, "Hostname"));
	_cleanup_free_ char *hn = xasprintf("%s/hostname", dir), *hosts = xasprintf("%s/hosts", dir),
			    *resolv = xasprintf("%s/resolv.conf", dir);
	_cleanup_free_ char *hn_body = xasprintf("%s\n", hostname ? hostname : "berth");
	int r = fs_write_file_atomic(hn, hn_body, strlen(hn_body), 0644, err);
	if (r < 0)
		return r;
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	if (!host_net || fs_read_file_at(AT_FDCWD, "/etc/hosts", 1 << 20, &sb, NULL) < 0)
		strbuf_addf(&sb,
			    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
			    "127.0.0.1\t%s\n",
			    hostname ? hostname : "berth");
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
	if ((r = fs_write_file_atomic(hosts, sb.buf, sb.len, 0644, err)) < 0)
		return r;
	strbuf_reset(&sb);
	if (fs_read_file_at(AT_FDCWD, "/etc/resolv.conf", 1 << 20, &sb, NULL) < 0)
		strbuf_reset(&sb);
	return fs_write_file_atomic(resolv, sb.buf, sb.len, 0644, err);
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
		int r = container_find_locked(e, mode + 10, &t, err);
		if (r >= 0) {
			if (t->state != ENGINE_RUNNING || t->pid <= 0)
				r = berth_error_msg(
				    err, EINVAL, "cannot join network of a non running container: %s", t->id);
			else
				*ret_netns = xasprintf("/proc/%d/ns/net", (int)t->pid);
			container_unref(t);
		}
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	if (!e->net)
		return berth_error_msg(err, ENOENT, "network %s not found", mode);
	return e->net->attach(e->net_ctx, c->id, mode, c->hostconfig, ret_netns, err);
}

void network_teardown(struct engine *e, struct container *c)
{
	const char *mode = json_string_value(json_object_get(c->hostconfig, "NetworkMode"));
	if (!e->net || !mode || streq(mode, "none") || streq(mode, "host") || startswith(mode, "container:"))
		return;
	e->net->detach(e->net_ctx, c->id, mode, NULL);
}

static int write_shim_config(struct engine *e, struct container *c, const char *xdir,
			     struct berth_error **err)
{
	_cleanup_free_ char *dir = container_dir(e, c->id);
	_cleanup_free_ char *runc_root = xasprintf("%s/runc", e->exec_root);
	struct log_settings ls = { 0 };
	int r = log_settings_get(json_object_get(c->hostconfig, "LogConfig"), dir, c->id, &ls, err);
	if (r < 0)
		return r;
	if (ls.local) {
		_cleanup_free_ char *ldir = xasprintf("%s/local-logs", dir);
		if ((r = fs_mkdir_p(ldir, 0700, err)) < 0) {
			log_settings_done(&ls);
			return r;
		}
	}
	_cleanup_json_ json_t *j =
	    json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:s,s:b,s:b,s:b,s:b}", "id", c->id, "runtime", e->runtime,
		      "runtime_root", runc_root, "log_path", ls.path ? json_string(ls.path) : json_null(),
		      "log_max_size", (json_int_t)ls.max_size, "log_max_file", (json_int_t)ls.max_file,
		      "log_driver", ls.local ? "local" : "json-file", "log_compress", ls.compress, "tty",
		      json_is_true(json_object_get(c->config, "Tty")), "open_stdin",
		      json_is_true(json_object_get(c->config, "OpenStdin")), "stdin_once",
		      json_is_true(json_object_get(c->config, "StdinOnce")));
	log_settings_done(&ls);
	_cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
	_cleanup_free_ char *path = xasprintf("%s/shim.json", xdir);
	return fs_write_file_atomic(path, text, strlen(text), 0600, err);
}

/* Start `berth shim xdir` and wait for its readiness line. */
static int spawn_shim(struct engine *e, const char *xdir, pid_t *ret_pid, pid_t *ret_shim,
		      struct berth_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return berth_error_errno(err, "create pipe");
	_cleanup_close_ int rd = p[0];
	int wr = p[1];
	const char *argv[] = { e->shim_path, "shim", xdir, NULL };
	struct proc_spawn_opts o = PROC_SPAWN_OPTS_INIT;
	o.argv = argv;
	o.extra_fds = &wr;
	o.n_extra_fds = 1;
	o.new_session = true;
	pid_t pid;
	int pidfd = -1;
	int r = shim_spawn(&o, &pid, &pidfd, err);
	close(wr);
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

/* Join streams parked before start to the shim. Call with e->lock held. */
static void connect_parked(struct engine *e, struct container *c, const char *xdir)
{
	while (c->parked) {
		struct parked_attach *p = c->parked;
		c->parked = p->next;
		_cleanup_json_ json_t *req = engine_attach_request(&p->opts);
		int fd = shim_request(xdir, req, NULL, NULL);
		if (fd >= 0)
			engine_spawn_relay(p->fd, fd);
		else
			close(p->fd);
		free(p);
	}
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
	_cleanup_free_ char *xdir = container_exec_dir(e, c->id);
	_cleanup_free_ char *netns = NULL, *rootfs = NULL;
	fs_rm_rf(xdir, NULL);
	int r = fs_mkdir_p(xdir, 0700, err);
	if (r < 0)
		return r;
	r = c->rootfs ? e->img->mount(e->img_ctx, c->id, &rootfs, err)
		      : e->img->prepare(e->img_ctx, c->id, c->image_id, &rootfs, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->lock);
	free(c->rootfs);
	c->rootfs = xstrdup(rootfs);
	pthread_mutex_unlock(&e->lock);
	const char *mode = json_string_value(json_object_get(c->hostconfig, "NetworkMode"));
	if ((r = network_setup(e, c, &netns, err)) < 0 ||
	    /* network ops own /etc files of the modes they handle (network_setup gave a netns) */
	    (!(e->net && netns && mode && !startswith(mode, "container:")) &&
	     (r = write_etc_files(e, c, mode && streq(mode, "host"), err)) < 0) ||
	    (r = spec_write(e, c, rootfs, netns, err)) < 0 || (r = write_shim_config(e, c, xdir, err)) < 0)
		return r;
	pid_t pid = 0, shim = 0;
	r = spawn_shim(e, xdir, &pid, &shim, err);
	if (r < 0)
		return r;
	int pidfd = proc_pidfd_open(pid), shim_pidfd = proc_pidfd_open(shim);
	pthread_mutex_lock(&e->lock);
	connect_parked(e, c, xdir);
	pthread_mutex_unlock(&e->lock);
	_cleanup_json_ json_t *req = json_pack("{s:s}", "op", "start");
	int fd = shim_request(xdir, req, NULL, err);
	if (fd < 0) {
		proc_signal(pid, pidfd, SIGKILL);
		safe_close(pidfd);
		safe_close(shim_pidfd);
		return fd;
	}
	close(fd);
	char t[RFC3339_MAX];
	now_rfc3339(t);
	pthread_mutex_lock(&e->lock);
	safe_close(c->pidfd);
	safe_close(c->shim_pidfd);
	c->pid = pid;
	c->pidfd = pidfd;
	c->shim_pid = shim;
	c->shim_pidfd = shim_pidfd;
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
	container_set_state(e, c, ENGINE_RUNNING);
	container_event(e, c, "start", NULL);
	monitor_watch(e, c);
	pthread_mutex_unlock(&e->lock);
	monitor_wake(e);
	return 0;
}

int lifecycle_start_locked_op(struct engine *e, struct container *c, struct berth_error **err)
{
	int r = start_locked_op(e, c, err);
	if (r < 0) /* a failed start keeps no network (addresses, ports, netns) */
		network_teardown(e, c);
	return r;
}

int engine_container_start(struct engine *e, const char *ref, struct berth_error **err)
{
	struct container *c;
	int r = container_find(e, ref, &c, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	enum engine_state s = c->state;
	c->manual_stop = false;
	c->restart_due_ms = 0;
	pthread_mutex_unlock(&e->lock);
	if (s == ENGINE_RUNNING || s == ENGINE_RESTARTING)
		r = berth_error_msg(err, EALREADY, "container already started");
	else if (s == ENGINE_PAUSED)
		r = berth_error_msg(err, EBUSY, "cannot start a paused container, try unpause instead");
	else if (s == ENGINE_REMOVING || s == ENGINE_DEAD)
		r = berth_error_msg(err, EBUSY, "container is marked for removal and cannot be started");
	else
		r = lifecycle_start_locked_op(e, c, err);
	if (r < 0 && r != -EALREADY && r != -EBUSY) {
		_cleanup_free_ char *msg = berth_error_string(err ? *err : NULL);
		pthread_mutex_lock(&e->lock);
		free(c->error);
		c->error = xstrdup(msg ? msg : "start failed");
		c->exit_code = exec_error_code(c->error);
		store_save(e, c);
		pthread_mutex_unlock(&e->lock);
		e->img->unmount(e->img_ctx, c->id, NULL);
	}
	pthread_mutex_unlock(&c->op_lock);
	pthread_mutex_lock(&e->lock);
	container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return r;
}
