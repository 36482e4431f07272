/*
 * health.c - docker's HEALTHCHECK: the test command runs as an exec through
 * the shim every Interval; Retries consecutive failures (not counting those
 * inside StartPeriod) make the container "unhealthy", one success "healthy".
 * The last five results are kept, as docker does.
 */
#include <poll.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "engine/internal.h"
#include "shim/shim.h"

#define HEALTH_DEFAULT_NS (30LL * 1000000000)
#define HEALTH_MAX_OUTPUT 4096
#define HEALTH_LOG_KEEP   5

static int64_t hc_ns(const json_t *hc, const char *key, int64_t def)
{
	json_int_t v = json_integer_value(json_object_get(hc, key));
	return v > 0 ? v : def;
}

/* The command of Test: ["CMD", ...] or ["CMD-SHELL", "cmd"]; NULL when disabled. */
static json_t *health_cmd(const json_t *hc)
{
	const json_t *test = json_object_get(hc, "Test");
	const char *kind = json_string_value(json_array_get(test, 0));
	if (!kind || streq(kind, "NONE"))
		return NULL;
	if (streq(kind, "CMD-SHELL") && json_string_value(json_array_get(test, 1)))
		return json_pack("[s,s,O]", "/bin/sh", "-c", json_array_get(test, 1));
	if (streq(kind, "CMD") && json_array_size(test) > 1) {
		json_t *cmd = json_array();
		for (size_t i = 1; i < json_array_size(test); i++)
			json_array_append(cmd, json_array_get(test, i));
		return cmd;
	}
	return NULL;
}

/* Run the check; returns its exit code (-1 on timeout/error) and output. */
static int run_check(const char *xdir, json_t *proc, const char *id, int64_t timeout_ns, struct strbuf *out)
{
	_cleanup_json_ json_t *req =
	    json_pack("{s:s,s:s,s:O,s:b}", "op", "exec", "id", id, "process", proc, "detach", false);
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_close_ int fd = shim_request(xdir, req, NULL, &err);
	if (fd < 0) {
		_cleanup_free_ char *m = berth_error_string(err);
		strbuf_addstr(out, m);
		return -1;
	}
	int64_t deadline = proc_now_ms() + timeout_ns / 1000000;
	_cleanup_strbuf_ struct strbuf raw = STRBUF_INIT;
	for (;;) {
		int64_t left = deadline - proc_now_ms();
		struct pollfd p = { fd, POLLIN, 0 };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			strbuf_addstr(out, "Health check exceeded timeout");
			return -1;
		}
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (raw.len < 64 * 1024)
			strbuf_add(&raw, buf, (size_t)n);
	}
	/* demultiplex frames */
	for (size_t i = 0; i + 8 <= raw.len;) {
		size_t len = ((size_t)(unsigned char)raw.buf[i + 4] << 24) |
			     ((size_t)(unsigned char)raw.buf[i + 5] << 16) |
			     ((size_t)(unsigned char)raw.buf[i + 6] << 8) | (unsigned char)raw.buf[i + 7];
		if (i + 8 + len > raw.len)
			break;
		if (out->len < HEALTH_MAX_OUTPUT)
			strbuf_add(out, raw.buf + i + 8, MIN(len, HEALTH_MAX_OUTPUT - out->len));
		i += 8 + len;
	}
	_cleanup_free_ char *path = xasprintf("%s/exec-%s.json", xdir, id);
	_cleanup_json_ json_t *j = NULL;
	if (json_load_path(path, 4096, &j, NULL) < 0)
		return -1;
	(void)unlink(path);
	return (int)json_integer_value(json_object_get(j, "exit_code"));
}

static void record(struct engine *e, struct container *c, const char *start, int code, const char *output)
{
	char end[RFC3339_MAX];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, end);
	if (!c->health_log)
		c->health_log = json_array();
	json_array_append_new(c->health_log, json_pack("{s:s,s:s,s:i,s:s}", "Start", start, "End", end,
						       "ExitCode", code, "Output", output));
	while (json_array_size(c->health_log) > HEALTH_LOG_KEEP)
		json_array_remove(c->health_log, 0);
	const json_t *hc = json_object_get(c->config, "Healthcheck");
	json_int_t retries = json_integer_value(json_object_get(hc, "Retries"));
	if (retries <= 0)
		retries = 3;
	const char *old = c->health ? c->health : "starting";
	const char *now_status = old;
	if (code == 0) {
		c->health_streak = 0;
		now_status = "healthy";
	} else {
		struct timespec st;
		bool in_start = false;
		int64_t sp = hc_ns(hc, "StartPeriod", 0);
		if (sp && c->started_at && util_parse_rfc3339(c->started_at, &st) == 0)
			in_start =
			    ((int64_t)(ts.tv_sec - st.tv_sec) * 1000000000 + (ts.tv_nsec - st.tv_nsec)) < sp;
		if (!in_start && ++c->health_streak >= retries)
			now_status = "unhealthy";
	}
	if (!streq(old, now_status) || !c->health) {
		char *n = xstrdup(now_status);
		free(c->health);
		c->health = n;
		_cleanup_free_ char *action = xasprintf("health_status: %s", now_status);
		engine_container_event(e, c, action, NULL);
	}
	engine_container_save(e, c, NULL);
}

static void *health_thread(void *arg)
{
	struct container *c = arg;
	struct engine *e = c->engine;
	pthread_mutex_lock(&e->lock);
	const json_t *hc = json_object_get(c->config, "Healthcheck");
	int64_t timeout = hc_ns(hc, "Timeout", HEALTH_DEFAULT_NS);
	_cleanup_json_ json_t *cmd = health_cmd(hc);
	_cleanup_json_ json_t *xc = json_pack("{s:O}", "Cmd", cmd ? cmd : json_null());
	json_t *proc = NULL;
	bool ok = cmd && c->state == ENGINE_RUNNING && engine_spec_exec_process(e, c, xc, &proc, NULL) >= 0;
	_cleanup_free_ char *xdir = engine_container_exec_dir(e, c->id);
	pthread_mutex_unlock(&e->lock);
	char start[RFC3339_MAX];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	util_format_rfc3339(&ts, start);
	if (ok) {
		/* dockerd runs each probe as an exec: exec_create, exec_start and exec_die are logged */
		_cleanup_free_ char *id = util_random_hex(32);
		_cleanup_free_ char *created = engine_exec_action("exec_create", cmd);
		_cleanup_free_ char *started = engine_exec_action("exec_start", cmd);
		pthread_mutex_lock(&e->lock);
		engine_container_event(e, c, created, json_pack("{s:s}", "execID", id));
		engine_container_event(e, c, started, json_pack("{s:s}", "execID", id));
		pthread_mutex_unlock(&e->lock);
		_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
		int code = run_check(xdir, proc, id, timeout, &out);
		pthread_mutex_lock(&e->lock);
		if (code >= 0) {
			_cleanup_free_ char *sc = xasprintf("%d", code);
			engine_container_event(e, c, "exec_die",
					       json_pack("{s:s,s:s}", "execID", id, "exitCode", sc));
		}
		if (c->state == ENGINE_RUNNING)
			record(e, c, start, code < 0 ? -1 : code, out.buf);
		pthread_mutex_unlock(&e->lock);
	}
	json_decref(proc);
	pthread_mutex_lock(&e->lock);
	c->health_running = false;
	c->health_next_ms = proc_now_ms() + hc_ns(hc, "Interval", HEALTH_DEFAULT_NS) / 1000000;
	engine_container_unref(c);
	pthread_mutex_unlock(&e->lock);
	engine_monitor_wake(e);
	return NULL;
}

int64_t engine_health_due(struct engine *e, struct container *c, int64_t now)
{
	const json_t *hc = json_object_get(c->config, "Healthcheck");
	if (c->state != ENGINE_RUNNING || !hc || c->health_running)
		return -1;
	json_t *cmd = health_cmd(hc);
	if (!cmd)
		return -1;
	json_decref(cmd);
	if (c->health_next_ms == 0)
		c->health_next_ms = now + hc_ns(hc, "Interval", HEALTH_DEFAULT_NS) / 1000000;
	if (c->health_next_ms > now)
		return c->health_next_ms - now;
	c->health_running = true;
	engine_spawn_thread(c->engine, health_thread, engine_container_ref(c));
	return -1;
}
