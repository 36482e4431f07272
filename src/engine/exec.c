/*
 * exec.c - docker exec: an exec instance is created with its config, started
 * through the container's shim (which runs the process and records its exit
 * code in exec-<id>.json before closing the stream), and inspected.
 */
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
		engine_container_event(e, c, "exec_create", json_pack("{s:s}", "execID", x->id));
	}
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	return r;
}

/* A runtime's failure to start the command: dockerd's exit codes (127 not found, 126 else), or 0. */
static int exec_start_failure_code(const struct berth_error *err)
{
	_cleanup_free_ char *m = berth_error_string((struct berth_error *)err);
	if (!m || !strstr(m, "OCI runtime exec failed"))
		return 0;
	return strcasestr(m, "no such file or directory") || strstr(m, "not found") ? 127 : 126;
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
		x->started = x->running = true;
		json_decref(x->process);
		x->process = json_incref(proc);
		engine_container_event(e, c, "exec_start", json_pack("{s:s}", "execID", x->id));
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

int engine_exec_inspect(struct engine *e, const char *exec_id, json_t **ret, struct berth_error **err)
{
	pthread_mutex_lock(&e->lock);
	struct exec_instance *x = exec_find_locked(e, exec_id);
	if (!x) {
		pthread_mutex_unlock(&e->lock);
		return berth_error_msg(err, ENOENT, "No such exec instance: %s", exec_id);
	}
	if (x->running) {
		_cleanup_free_ char *xdir = engine_container_exec_dir(e, x->container_id);
		_cleanup_free_ char *path = xasprintf("%s/exec-%s.json", xdir, x->id);
		_cleanup_json_ json_t *j = NULL;
		struct container *c = NULL;
		bool alive = engine_container_find_locked(e, x->container_id, &c, NULL) >= 0 &&
			     c->state == ENGINE_RUNNING;
		if (c)
			engine_container_unref(c);
		if (json_load_path(path, 4096, &j, NULL) == 0) {
			x->running = false;
			x->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
			x->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
		} else if (!alive) {
			x->running = false;
			x->exit_code = 137;
		}
	}
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
