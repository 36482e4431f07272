/*
 * exec.c - docker exec: an exec instance is created with its config, started
 * through the container's shim (which runs the process and records its exit
 * code in exec-<id>.json before closing the stream), and inspected.
 */
#include <fcntl.h>
#include <limits.h>
#include <sys/inotify.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/util.h"
#include "engine/internal.h"
#include "engine/state.h"
#include "shim/shim.h"

/* Exec instances kept per engine; finished ones beyond this are dropped oldest first. */
#define ENGINE_MAX_EXECS 1024

static struct exec_instance *exec_find_locked(struct engine *e, const char *id)
{
	for (struct exec_instance *x = e->execs; x; x = x->next)
		if (streq(x->id, id))
			return x;
	return NULL;
}

static void exec_trim_locked(struct engine *e)
{
	size_t n = 0;
	struct exec_instance **pp = &e->execs;
	while (*pp) {
		if (++n > ENGINE_MAX_EXECS) {
			struct exec_instance *x = *pp;
			*pp = x->next;
			free(x->id);
			free(x->container_id);
			json_decref(x->config);
			json_decref(x->process);
			free(x);
			continue;
		}
		pp = &(*pp)->next;
	}
}

/* dockerd's action of an exec event: "exec_create: " + entrypoint + " " + the arguments joined
 * by spaces (so "exec_start: true " for an exec without arguments). */
char *engine_exec_action(const char *what, const json_t *cmd)
{
	struct strbuf sb;
	strbuf_init(&sb, 64);
	strbuf_addf(&sb, "%s: %s ", what, json_string_value(json_array_get(cmd, 0)));
	for (size_t i = 1; i < json_array_size(cmd); i++)
		strbuf_addf(&sb, "%s%s", i > 1 ? " " : "", json_string_value(json_array_get(cmd, i)));
	return strbuf_detach(&sb, NULL);
}

int engine_exec_create(struct engine *e, const char *ref, const json_t *config, char **ret_id,
		       struct berth_error **err)
{
	if (!json_is_object(config))
		return berth_error_msg(err, EINVAL, "exec config must be an object");
	const json_t *cmd = json_object_get(config, "Cmd");
	size_t i;
	json_t *el;
	if (!json_is_array(cmd) || json_array_size(cmd) == 0)
		return berth_error_msg(err, EINVAL, "No exec command specified");
	json_array_foreach (cmd, i, el)
		if (!json_is_string(el))
			return json_type_error("", "Cmd", "array of strings", cmd, err);
	json_t *env = json_object_get(config, "Env");
	if (env && !json_is_null(env) && !json_is_array(env))
		return json_type_error("", "Env", "array of strings", env, err);
	struct container *c;
	pthread_mutex_lock(&e->lock);
	int r = engine_container_find_locked(e, ref, &c, err);
	if (r < 0) {
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	r = engine_state_admit(ENGINE_OP_EXEC, c->state, false, c->id, err);
	if (r >= 0) {
		struct exec_instance *x = xcalloc(1, sizeof(*x));
		x->id = util_random_hex(32);
		x->container_id = xstrdup(c->id);
		x->config = json_deep_copy(config);
		x->next = e->execs;
		e->execs = x;
		exec_trim_locked(e);
		*ret_id = xstrdup(x->id);
		_cleanup_free_ char *action = engine_exec_action("exec_create", cmd);
		engine_container_event(e, c, action, json_pack("{s:s}", "execID", x->id));
	}
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* Call with e->lock held: the monitor learns of the exec's exit when its record lands in xdir. */
static void exec_watch_locked(struct engine *e, const char *xdir)
{
	if (e->inofd >= 0)
		(void)inotify_add_watch(e->inofd, xdir, IN_MOVED_TO);
}

/* A runtime's failure to start the command: dockerd's exit codes (127 not found, 126 else), or 0.
 * A missing working directory is 126 as well (runc: "chdir to cwd (...) set in config.json
 * failed: no such file or directory"): dockerd's 127 needs the command in the message. */
static int exec_start_failure_code(const struct berth_error *err)
{
	_cleanup_free_ char *m = berth_error_string((struct berth_error *)err);
	if (!m || !strstr(m, "OCI runtime exec failed"))
		return 0;
	if (strstr(m, "chdir to cwd"))
		return 126;
	return strcasestr(m, "no such file or directory") || strstr(m, "not found") ? 127 : 126;
}

/*
 * The exec's working directory must exist in the container, as runc checks before it reports
 * the process started (berth's runtime changes directory after that, where its failure could
 * only be an exit status). Resolved in the container's root as its init sees it (its mounts
 * included). Call with e->lock held (c->pid is its init). -ENOEXEC with runc's message.
 */
static int exec_check_cwd(const struct container *c, const char *cwd, struct berth_error **err)
{
	if (!cwd || c->pid <= 0)
		return 0;
	_cleanup_free_ char *root = xasprintf("/proc/%d/root", (int)c->pid);
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return 0; /* the runtime says what is wrong */
	_cleanup_close_ int fd = fs_open_in_root(rootfd, cwd, O_PATH | O_DIRECTORY, 0, 0, NULL);
	if (fd != -ENOENT && fd != -ENOTDIR)
		return 0;
	return berth_error_msg(err, ENOEXEC,
			       "OCI runtime exec failed: exec failed: unable to start container process: "
			       "chdir to cwd (\"%s\") set in config.json failed: %s: unknown",
			       cwd, fd == -ENOENT ? "no such file or directory" : "not a directory");
}

int engine_exec_start(struct engine *e, const char *exec_id, bool detach, bool raw,
		      const struct engine_stream_opts *so, int *ret_fd, bool *ret_tty,
		      struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	struct exec_instance *x = exec_find_locked(e, exec_id);
	if (!x) {
		pthread_mutex_unlock(&e->lock);
		return berth_error_msg(err, ENOENT, "No such exec instance: %s", exec_id);
	}
	if (x->started) {
		pthread_mutex_unlock(&e->lock);
		return berth_error_msg(err, EBUSY, "Error: Exec command %s is already running", exec_id);
	}
	struct container *c;
	int r = engine_container_find_locked(e, x->container_id, &c, err);
	if (r < 0) {
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	if (c->state != ENGINE_RUNNING) {
		r = berth_error_msg(err, EBUSY, "Container %s is not running", c->id);
		engine_container_unref(c);
		pthread_mutex_unlock(&e->lock);
		return r;
	}
	_cleanup_json_ json_t *cfg = json_deep_copy(x->config);
	json_t *proc = NULL;
	r = engine_spec_exec_process(e, c, cfg, &proc, err);
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	_cleanup_free_ char *id = xstrdup(x->id);
	bool want_in = json_is_true(json_object_get(cfg, "AttachStdin"));
	if (r >= 0) {
		_cleanup_free_ char *action = engine_exec_action("exec_start", json_object_get(cfg, "Cmd"));
		engine_container_event(e, c, action, json_pack("{s:s}", "execID", x->id));
		r = exec_check_cwd(c, json_string_value(json_object_get(proc, "cwd")), err);
	}
	if (r >= 0) {
		x->started = x->running = true;
		json_decref(x->process);
		x->process = json_incref(proc);
		exec_watch_locked(e, xdir);
	} else if (r == -ENOEXEC) {
		x->started = true; /* as dockerd: a start the runtime refused leaves 126 */
		x->exit_code = 126;
		json_decref(proc);
	} else if (r == -EINVAL && json_array_size(json_object_get(cfg, "Cmd"))) {
		/* an unknown user or group: dockerd starts the exec, which fails with 126 and says why */
		x->started = true;
		x->exit_code = 126;
		r = -ENOEXEC;
	}
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	if (r < 0)
		return r;
	_cleanup_json_ json_t *req = json_pack("{s:s,s:s,s:o,s:b,s:b,s:b}", "op", "exec", "id", id, "process",
					       proc, "detach", detach, "stdin", want_in, "raw", raw);
	engine_request_detach_keys(req, so);
	int fd = shim_request(xdir, req, NULL, err);
	if (fd < 0) {
		int code = exec_start_failure_code(err ? *err : NULL);
		pthread_mutex_lock(&e->lock);
		if ((x = exec_find_locked(e, id))) {
			x->running = false;
			if (code)
				x->exit_code = code;
		}
		pthread_mutex_unlock(&e->lock);
		return code ? -ENOEXEC : fd;
	}
	if (detach)
		fd = safe_close(fd);
	*ret_fd = fd;
	*ret_tty = raw;
	return 0;
}

/* The exec ended with code: recorded, and its exec_die logged once (dockerd's attributes:
 * execID, exitCode). Call with e->lock held. */
static void exec_finish_locked(struct engine *e, struct exec_instance *x, int code, pid_t pid)
{
	x->running = false;
	x->exit_code = code;
	if (pid > 0)
		x->pid = pid;
	if (x->die_logged)
		return;
	x->die_logged = true;
	struct container *c;
	if (engine_container_find_locked(e, x->container_id, &c, NULL) < 0)
		return;
	_cleanup_free_ char *sc = xasprintf("%d", code);
	engine_container_event(e, c, "exec_die", json_pack("{s:s,s:s}", "execID", x->id, "exitCode", sc));
	engine_container_unref(c);
}

/* A running exec whose record the shim wrote: finished. Call with e->lock held. */
static void exec_poll_locked(struct engine *e, struct exec_instance *x)
{
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, x->container_id);
	_cleanup_free_ char *path = xasprintf("%s/exec-%s.json", xdir, x->id);
	_cleanup_json_ json_t *j = NULL;
	struct container *c = NULL;
	bool alive =
	    engine_container_find_locked(e, x->container_id, &c, NULL) >= 0 && c->state == ENGINE_RUNNING;
	if (c)
		engine_container_unref(c);
	if (json_load_path(path, 4096, &j, NULL) == 0)
		exec_finish_locked(e, x, (int)json_integer_value(json_object_get(j, "exit_code")),
				   (pid_t)json_integer_value(json_object_get(j, "pid")));
	else if (!alive)
		exec_finish_locked(e, x, 137, 0);
}

void engine_exec_reap_locked(struct engine *e, int fd)
{
	/* aligned as struct inotify_event; one event is at most NAME_MAX + 1 bytes beyond it */
	char buf[sizeof(struct inotify_event) * 16 + NAME_MAX + 1]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			const char *id = ev->len ? ev->name : "";
			if (!startswith(id, "exec-") || !endswith(id, ".json") ||
			    endswith(id, ".process.json"))
				continue;
			_cleanup_free_ char *xid = xstrndup(id + 5, strlen(id) - 10);
			struct exec_instance *x = exec_find_locked(e, xid);
			if (x && x->running)
				exec_poll_locked(e, x);
		}
	}
}

int engine_exec_inspect(struct engine *e, const char *exec_id, json_t **ret, struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	struct exec_instance *x = exec_find_locked(e, exec_id);
	if (!x) {
		pthread_mutex_unlock(&e->lock);
		return berth_error_msg(err, ENOENT, "No such exec instance: %s", exec_id);
	}
	if (x->running)
		exec_poll_locked(e, x);
	const json_t *cfg = x->config, *cmd = json_object_get(cfg, "Cmd");
	json_t *args = json_array();
	for (size_t i = 1; i < json_array_size(cmd); i++)
		json_array_append(args, json_array_get(cmd, i));
	const char *user = json_string_value(json_object_get(cfg, "User"));
	*ret = json_pack(
	    "{s:s,s:b,s:o,s:b,s:b,s:b,s:b,s:s,s:s,s:I,s:{s:b,s:s,s:O,s:o,s:s}}", "ID", x->id, "Running",
	    x->running, "ExitCode", x->running || !x->started ? json_null() : json_integer(x->exit_code),
	    "OpenStdin", json_is_true(json_object_get(cfg, "AttachStdin")), "OpenStdout",
	    json_is_true(json_object_get(cfg, "AttachStdout")), "OpenStderr",
	    json_is_true(json_object_get(cfg, "AttachStderr")), "CanRemove", false, "ContainerID",
	    x->container_id, "DetachKeys",
	    json_string_value(json_object_get(cfg, "DetachKeys"))
		? json_string_value(json_object_get(cfg, "DetachKeys"))
		: "",
	    "Pid", (json_int_t)x->pid, "ProcessConfig", "tty", json_is_true(json_object_get(cfg, "Tty")),
	    "entrypoint",
	    json_string_value(json_array_get(cmd, 0)) ? json_string_value(json_array_get(cmd, 0)) : "",
	    "arguments", args, "privileged", json_boolean(json_is_true(json_object_get(cfg, "Privileged"))),
	    "user", user ? user : "");
	json_decref(args);
	pthread_mutex_unlock(&e->lock);
	return 0;
}
