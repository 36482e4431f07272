/*
 * streams.c - the streaming routes: logs, attach and exec start (hijacked
 * when the client asks for an upgrade, a plain streamed body otherwise),
 * and events. Attach with logs=1 replays the log before the live stream
 * (stream=0: only the replay); detach keys come from the query, the exec's
 * config or the daemon's default, in that order.
 */
#include <fcntl.h>
#include <poll.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/filters.h"
#include "api/routes.h"
#include "common/fs.h"
#include "common/json.h"
#include "common/process.h"
#include "common/util.h"
#include "common/detachkeys.h"

static const char *stream_type(bool tty)
{
	return tty ? "application/vnd.docker.raw-stream" : "application/vnd.docker.multiplexed-stream";
}

/* "since"/"until": unix seconds with optional fraction, or RFC 3339. 0 when absent. */
static int query_time_ns(struct api_call *c, const char *key, int64_t *ret)
{
	const char *v = http_request_query(c->req, key);
	*ret = 0;
	if (!v || !*v || streq(v, "0"))
		return 0;
	struct timespec ts;
	char *end;
	double d = strtod(v, &end);
	if (*end == '\0' && d >= 0) {
		*ret = (int64_t)(d * 1e9);
		return 0;
	}
	if (util_parse_rfc3339(v, &ts) == 0) {
		*ret = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		return 0;
	}
	http_respond_error(c->req, 400, "invalid value for %s: '%s'", key, v);
	return -EINVAL;
}

static int logs_read(void *ctx, struct strbuf *out)
{
	return engine_logs_read(ctx, out, NULL);
}

static void logs_done(void *ctx)
{
	engine_logs_close(ctx);
}

void api_container_logs(struct api_call *c)
{
	struct engine_log_opts o = { .tail = -1 };
	o.out = http_query_bool(c->req, "stdout", false);
	o.err = http_query_bool(c->req, "stderr", false);
	o.follow = http_query_bool(c->req, "follow", false);
	o.timestamps = http_query_bool(c->req, "timestamps", false);
	if (!o.out && !o.err) {
		http_respond_error(c->req, 400, "Bad parameters: you must choose at least one stream");
		return;
	}
	o.details = http_query_bool(c->req, "details", false);
	/* dockerd: a tail that is not a number (or is negative) means every line, as "all" */
	const char *tail = http_request_query(c->req, "tail");
	if (tail && *tail && (util_parse_int64(tail, &o.tail) < 0 || o.tail < 0))
		o.tail = -1;
	if (query_time_ns(c, "since", &o.since_ns) < 0 || query_time_ns(c, "until", &o.until_ns) < 0)
		return;
	struct engine_log_reader *r = NULL;
	bool tty = false;
	_cleanup_error_ struct berth_error *err = NULL;
	int rc = engine_logs_open(c->api->engine, c->param[0], &o, &r, &tty, &err);
	if (rc < 0) {
		api_error(c->req, rc, err);
		return;
	}
	http_respond_stream(c->req, 200, stream_type(tty), logs_read, logs_done, r);
}

/* docker-py and the 101 head (wait_head_read): the grace where the kernel cannot tell when the
 * client has read it, and the longest wait where it can. */
#define HIJACK_HEAD_GRACE_MS 50
#define HIJACK_HEAD_WAIT_MS  5000

struct hijack_ctx {
	int fd;                         /* the live stream; -1: none (stream=0) */
	struct engine_log_reader *logs; /* replayed first (logs=1), then NULL */
	bool buffered_head;             /* docker-py: loses what comes with the head (hijack_fn) */
};

/*
 * For a client that reads the 101 head through a buffered reader (docker-py): wait until it has
 * read the head, so that nothing we send next lands in that buffer. On a unix socket the kernel
 * tells: the head stays in our send queue (SIOCOUTQ) until the client has read it. Elsewhere (TCP
 * acknowledges on arrival, not on reading; TLS goes through our relay) a fixed grace has to do. Bounded: a
 * client that never reads gets its stream after HIJACK_HEAD_WAIT_MS.
 */
static void wait_head_read(int client)
{
	int domain = 0;
	socklen_t len = sizeof(domain);
	struct ucred peer = { 0 };
	socklen_t plen = sizeof(peer);
	int queued = 0;
	/* our own peer: the TLS relay, which reads the head at once whenever the client does not */
	if (getsockopt(client, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX ||
	    getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &plen) < 0 || peer.pid == getpid() ||
	    ioctl(client, SIOCOUTQ, &queued) < 0) {
		struct pollfd pw = { client, POLLIN, 0 };
		(void)poll(&pw, 1, HIJACK_HEAD_GRACE_MS);
		return;
	}
	int64_t deadline = proc_now_ms() + HIJACK_HEAD_WAIT_MS;
	for (int step = 1; queued > 0 && proc_now_ms() < deadline; step = step < 8 ? 2 * step : 8) {
		struct timespec ts = { 0, (long)step * 1000000L };
		nanosleep(&ts, NULL);
		if (ioctl(client, SIOCOUTQ, &queued) < 0)
			break;
	}
}

static void hijack_fn(void *ctx, int client, const char *extra, size_t extra_len)
{
	struct hijack_ctx *h = ctx;
	bool graced = false; /* the client had its moment to read the 101 head */
	if (h->logs) {
		/*
		 * docker-py reads the 101 head through a buffered reader, then takes
		 * the raw socket: bytes that arrive with the head are lost to it. Give
		 * it a moment to finish reading the head (bounded; dockerd is slow
		 * enough here by nature).
		 */
		wait_head_read(client);
		graced = true;
		_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
		int r;
		do {
			strbuf_reset(&sb);
			r = engine_logs_read(h->logs, &sb, NULL);
			if (sb.len > 0 && fs_write_all(client, sb.buf, sb.len) < 0)
				return;
		} while (r == 0);
		h->logs = engine_logs_close(h->logs);
	}
	if (h->fd >= 0) {
		/*
		 * Output of a quick exec would arrive with the head. docker-py
		 * reads the head a while longer: what a process that writes and
		 * exits at once sent before docker-py had read the head was lost
		 * to it (1-2% of `echo` execs; more under load, where a fixed
		 * grace after the head was not enough), so for it the stream
		 * starts once it has read the head.
		 */
		if (!graced && h->buffered_head)
			wait_head_read(client);
		http_relay(client, h->fd, extra, extra_len);
	} else {
		shutdown(client, SHUT_WR);
	}
}

static void hijack_done(void *ctx)
{
	struct hijack_ctx *h = ctx;
	safe_close(h->fd);
	engine_logs_close(h->logs);
	free(h);
}

/* Output-only stream for clients that did not ask for an upgrade. */
static int fd_read(void *ctx, struct strbuf *out)
{
	struct hijack_ctx *h = ctx;
	if (h->logs) {
		int r = engine_logs_read(h->logs, out, NULL);
		if (r != 0)
			h->logs = engine_logs_close(h->logs);
		if (out->len > 0 || r == 0)
			return 0;
	}
	if (h->fd < 0)
		return 1;
	char buf[32 * 1024];
	ssize_t n;
	do
		n = read(h->fd, buf, sizeof(buf));
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 1;
	strbuf_add(out, buf, (size_t)n);
	return 0;
}

static void respond_stream(struct api_call *c, int fd, struct engine_log_reader *logs, bool tty)
{
	struct hijack_ctx *h = xcalloc(1, sizeof(*h));
	h->fd = fd;
	h->logs = logs;
	const char *ua = http_request_header(c->req, "User-Agent");
	/* docker-py, or a program on it that names it (compose 1: "docker-compose/V docker-py/V") */
	h->buffered_head = ua && (startswith(ua, "docker-sdk-python/") || strstr(ua, "docker-py/"));
	const char *up = http_request_header(c->req, "Upgrade");
	if (up && (!strcasecmp(up, "tcp") || !strcasecmp(up, "h2c"))) {
		http_respond_hijack(c->req, stream_type(tty), hijack_fn, hijack_done, h);
	} else {
		if (fd >= 0)
			shutdown(fd, SHUT_WR);
		http_respond_stream(c->req, 200, stream_type(tty), fd_read, hijack_done, h);
	}
}

static void respond_stream_fd(struct api_call *c, int fd, bool tty)
{
	respond_stream(c, fd, NULL, tty);
}

/*
 * Detach keys of a stream: the detachKeys query, else fallback (the exec's
 * DetachKeys), else the daemon's detach-keys, else ctrl-p,ctrl-q. Only an
 * invalid query is an error (the others were checked when they were set).
 */
static int stream_detach_keys(struct api_call *c, const char *fallback, struct engine_stream_opts *o)
{
	const char *q = http_request_query(c->req, "detachKeys");
	const char *spec = q && *q                 ? q
			   : fallback && *fallback ? fallback
			   : c->api->detach_keys   ? c->api->detach_keys
						   : DETACH_KEYS_DEFAULT;
	if (detachkeys_parse(spec, o->detach_keys, &o->n_detach_keys, NULL) == 0)
		return 0;
	if (q && *q) {
		http_respond_error(c->req, 400, "Invalid detach keys (%s) provided", q);
		return -EINVAL;
	}
	return detachkeys_parse(DETACH_KEYS_DEFAULT, o->detach_keys, &o->n_detach_keys, NULL);
}

void api_container_attach(struct api_call *c)
{
	struct engine_stream_opts o = {
		.in = http_query_bool(c->req, "stdin", false),
		.out = http_query_bool(c->req, "stdout", false),
		.err = http_query_bool(c->req, "stderr", false),
		.logs = http_query_bool(c->req, "logs", false),
	};
	bool stream = http_query_bool(c->req, "stream", false);
	if (stream_detach_keys(c, NULL, &o) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	struct engine_log_reader *logs = NULL;
	bool tty = false;
	if (o.logs && (o.out || o.err)) {
		struct engine_log_opts lo = { .out = o.out, .err = o.err, .tail = -1 };
		int r = engine_logs_open(c->api->engine, c->param[0], &lo, &logs, &tty, &err);
		if (r == -ENOENT) {
			api_error(c->req, r, err);
			return;
		}
		berth_error_free(TAKE_PTR(err)); /* a driver without reading: no replay, as docker */
	}
	int fd = -1;
	if (stream) {
		int r = engine_container_attach(c->api->engine, c->param[0], &o, &fd, &tty, &err);
		if (r < 0) {
			engine_logs_close(logs);
			api_error(c->req, r, err);
			return;
		}
	} else if (!logs) {
		struct engine_container_info *i = NULL;
		int r = engine_container_inspect(c->api->engine, c->param[0], &i, &err);
		if (r < 0) {
			api_error(c->req, r, err);
			return;
		}
		tty = json_is_true(json_object_get(i->config, "Tty"));
		engine_container_info_free(i);
	}
	respond_stream(c, fd, logs, tty);
}

void api_exec_create(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, true) < 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *id = NULL;
	const json_t *dk = json_object_get(body, "DetachKeys");
	struct engine_stream_opts ko;
	if (json_is_string(dk) && *json_string_value(dk) &&
	    detachkeys_parse(json_string_value(dk), ko.detach_keys, &ko.n_detach_keys, NULL) < 0) {
		http_respond_error(c->req, 400, "Invalid escape keys (%s) provided", json_string_value(dk));
		return;
	}
	int r = engine_exec_create(c->api->engine, c->param[0], body, &id, &err);
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	http_respond_json(c->req, 201, json_pack("{s:s}", "Id", id));
}

/*
 * dockerd starts the stream, then writes the runtime's error into it (a
 * stdout frame unless Tty) and the exec's exit code says 126/127: a pipe
 * holding that message is the stream.
 */
static void respond_exec_failure(struct api_call *c, struct berth_error *err, bool tty)
{
	_cleanup_free_ char *msg = berth_error_string(err);
	_cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
	size_t len = strlen(msg ? msg : "") + 2;
	if (!tty) {
		unsigned char hdr[8] = { 1,
					 0,
					 0,
					 0,
					 (unsigned char)(len >> 24),
					 (unsigned char)(len >> 16),
					 (unsigned char)(len >> 8),
					 (unsigned char)len };
		strbuf_add(&sb, hdr, sizeof(hdr));
	}
	strbuf_addf(&sb, "%s\r\n", msg ? msg : "");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		http_respond_error(c->req, 500, "%s", msg ? msg : "exec failed");
		return;
	}
	/* far below the pipe's capacity: the message is one error chain */
	(void)fs_write_all(p[1], sb.buf, sb.len);
	close(p[1]);
	respond_stream_fd(c, p[0], tty);
}

void api_exec_start(struct api_call *c)
{
	_cleanup_json_ json_t *body = NULL;
	if (api_body_json(c->req, &body, false) < 0)
		return;
	if (body && !json_is_object(body)) {
		http_respond_error(c->req, 400, "request body: expected object, got %s",
				   json_type_name(body));
		return;
	}
	bool detach = json_is_true(json_object_get(body, "Detach"));
	bool tty = json_is_true(json_object_get(body, "Tty"));
	int fd = -1;
	bool is_tty = false;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_json_ json_t *xi = NULL;
	struct engine_stream_opts so = { 0 };
	(void)engine_exec_inspect(c->api->engine, c->param[0], &xi, NULL);
	if (stream_detach_keys(c, json_string_value(json_object_get(xi, "DetachKeys")), &so) < 0)
		return;
	int r = engine_exec_start(c->api->engine, c->param[0], detach, tty, &so, &fd, &is_tty, &err);
	if (r == -ENOEXEC && detach) {
		_cleanup_free_ char *msg = berth_error_string(err);
		http_respond_error(c->req, 400, "%s", msg ? msg : "exec failed");
		return;
	}
	if (r == -ENOEXEC) {
		respond_exec_failure(c, err, tty);
		return;
	}
	if (r < 0) {
		api_error(c->req, r, err);
		return;
	}
	if (detach) {
		http_respond(c->req, 200, "application/json", NULL, 0);
		return;
	}
	respond_stream_fd(c, fd, is_tty);
}

void api_exec_inspect(struct api_call *c)
{
	_cleanup_error_ struct berth_error *err = NULL;
	json_t *out = NULL;
	int r = engine_exec_inspect(c->api->engine, c->param[0], &out, &err);
	if (r < 0)
		api_error(c->req, r, err);
	else
		http_respond_json(c->req, 200, out);
}

struct events_ctx {
	struct engine_event_reader *r;
	json_t *filters;
};

/* Filter values come as ["a","b"] or, from older clients, {"a":true,"b":true}. */
static bool filter_any(const json_t *vals, bool (*pred)(const json_t *ev, const char *v), const json_t *ev)
{
	if (json_is_object(vals)) {
		const char *k;
		json_t *v;
		json_object_foreach ((json_t *)vals, k, v)
			if (pred(ev, k))
				return true;
		return false;
	}
	size_t i;
	json_t *v;
	json_array_foreach (vals, i, v)
		if (json_is_string(v) && pred(ev, json_string_value(v)))
			return true;
	return false;
}

static bool ev_type(const json_t *ev, const char *v)
{
	return streq_ptr(json_string_value(json_object_get(ev, "Type")), v);
}

static bool ev_action(const json_t *ev, const char *v)
{
	return streq_ptr(json_string_value(json_object_get(ev, "Action")), v);
}

/* dockerd's "event" filter: exact, but when it names health_status, exec_create or exec_start
 * (actions that carry more after a colon) every value also matches as a prefix. */
static bool ev_action_prefix(const json_t *ev, const char *v)
{
	const char *a = json_string_value(json_object_get(ev, "Action"));
	return a && startswith(a, v);
}

static bool is_fuzzy_action(const json_t *unused, const char *v)
{
	return streq(v, "health_status") || streq(v, "exec_create") || streq(v, "exec_start");
}

static bool ev_actor(const json_t *ev, const char *v)
{
	const json_t *actor = json_object_get(ev, "Actor");
	const char *id = json_string_value(json_object_get(actor, "ID"));
	const char *name = json_string_value(json_object_get(json_object_get(actor, "Attributes"), "name"));
	return (id && startswith(id, v)) || (name && streq(name, v));
}

static bool ev_label(const json_t *ev, const char *v)
{
	const json_t *attrs = json_object_get(json_object_get(ev, "Actor"), "Attributes");
	const char *eq = strchr(v, '=');
	_cleanup_free_ char *k = eq ? xstrndup(v, (size_t)(eq - v)) : xstrdup(v);
	const char *have = json_string_value(json_object_get(attrs, k));
	return have && (!eq || streq(have, eq + 1));
}

/* An image reference without its tag ("busybox:1" -> "busybox"; a registry's port stays). */
static char *strip_tag(const char *ref)
{
	const char *colon = strrchr(ref, ':'), *slash = strrchr(ref, '/');
	return colon && (!slash || colon > slash) ? xstrndup(ref, (size_t)(colon - ref)) : xstrdup(ref);
}

/* dockerd's image filter: the Actor's ID or image name (an image event's "name", a
 * container's "image"), each also without its tag. */
static bool ev_image(const json_t *ev, const char *v)
{
	const json_t *actor = json_object_get(ev, "Actor");
	bool image_ev = ev_type(ev, "image");
	const char *have[] = { json_string_value(json_object_get(actor, "ID")),
			       json_string_value(json_object_get(json_object_get(actor, "Attributes"),
								 image_ev ? "name" : "image")) };
	for (size_t i = 0; i < ARRAY_SIZE(have); i++) {
		if (!have[i])
			continue;
		_cleanup_free_ char *bare = strip_tag(have[i]);
		if (streq(have[i], v) || streq(bare, v))
			return true;
	}
	return false;
}

static bool ev_scope(const json_t *ev, const char *v)
{
	return streq_ptr(json_string_value(json_object_get(ev, "scope")), v);
}

/* dockerd's event filter keys; those of objects berth makes no events of (plugin, node, service,
 * secret, config) match an event's Actor as there, which selects none of berth's */
static const char *const event_filter_keys[] = { "config", "container", "daemon", "event",  "image",
						 "label",  "network",   "node",   "plugin", "scope",
						 "secret", "service",   "type",   "volume", NULL };

static bool event_matches(const json_t *ev, const json_t *filters)
{
	static const struct {
		const char *key;
		bool (*pred)(const json_t *ev, const char *v);
	} fs[] = { { "type", ev_type },    { "event", ev_action },  { "container", ev_actor },
		   { "volume", ev_actor }, { "network", ev_actor }, { "daemon", ev_actor },
		   { "plugin", ev_actor }, { "node", ev_actor },    { "service", ev_actor },
		   { "secret", ev_actor }, { "config", ev_actor },  { "image", ev_image },
		   { "scope", ev_scope },  { "label", ev_label } };
	for (size_t k = 0; k < ARRAY_SIZE(fs); k++) {
		const json_t *vals = json_object_get(filters, fs[k].key);
		bool (*pred)(const json_t *, const char *) = fs[k].pred;
		if (pred == ev_action && filter_any(vals, is_fuzzy_action, NULL))
			pred = ev_action_prefix;
		if (vals && !filter_any(vals, pred, ev))
			return false;
	}
	return true;
}

static int events_read(void *ctx, struct strbuf *out)
{
	struct events_ctx *x = ctx;
	for (;;) {
		json_t *ev = NULL;
		if (engine_events_next(x->r, &ev, NULL) < 0 || !ev)
			return 1;
		if (!x->filters || event_matches(ev, x->filters)) {
			char *s = json_dumps(ev, JSON_COMPACT);
			strbuf_addstr(out, s);
			strbuf_addch(out, '\n');
			free(s);
			json_decref(ev);
			return 0;
		}
		json_decref(ev);
	}
}

static void events_done(void *ctx)
{
	struct events_ctx *x = ctx;
	engine_events_close(x->r);
	json_decref(x->filters);
	free(x);
}

void api_events(struct api_call *c)
{
	int64_t since, until;
	if (query_time_ns(c, "since", &since) < 0 || query_time_ns(c, "until", &until) < 0)
		return;
	const char *f = http_request_query(c->req, "filters");
	json_t *filters = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (api_filters_parse(f, event_filter_keys, &filters, &err) < 0) {
		api_error(c->req, -EINVAL, err);
		return;
	}
	struct events_ctx *x = xcalloc(1, sizeof(*x));
	x->filters = filters;
	engine_events_open(c->api->engine, since, until, &x->r, NULL);
	http_respond_stream(c->req, 200, "application/json", events_read, events_done, x);
}
