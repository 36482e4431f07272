/*
 * etcd.c - the store backend for several servers: etcd 3 through its v3
 * JSON gateway (grpc-gateway: /v3/kv/range|txn, /v3/watch, /v3/lease/...),
 * keys and values base64, 64-bit integers as JSON strings, fields with their
 * zero value left out of responses.
 *
 * Why the gateway and not gRPC: it is plain HTTP/1.1 + JSON over the libcurl
 * client we already have, and etcd 3.4 (Debian's) serves it on the client
 * port. A watch is one streaming POST per call that ends at the first batch of
 * events or at the caller's timeout, which is what store_watch() promises.
 *
 * Endpoints are tried in order; a connection failure moves on to the next
 * one (and remembers it), so one dead etcd member costs one failed connect.
 * HTTP clients (one libcurl handle each, not thread-safe) are pooled.
 */
#include <pthread.h>

#include "common/base64.h"
#include "common/json.h"
#include "common/log.h"
#include "common/util.h"
#include "http/http.h"
#include "store/store.h"

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_POOL          16
#define ETCD_TIMEOUT_MS    10000
#define ETCD_MAX_RESPONSE  (64u << 20)

struct etcd_store {
	struct store base;
	char *endpoints[ETCD_MAX_ENDPOINTS];
	size_t n_endpoints;
	pthread_mutex_t lock;
	size_t current; /* endpoint that answered last */
	struct http_client *pool[ETCD_MAX_ENDPOINTS][ETCD_POOL];
	size_t pool_n[ETCD_MAX_ENDPOINTS];
};

#define ES(st) ((struct etcd_store *)(st))

static struct http_client *client_get(struct etcd_store *s, size_t ep, struct berth_error **err)
{
	struct http_client *c = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->pool_n[ep] > 0)
		c = s->pool[ep][--s->pool_n[ep]];
	pthread_mutex_unlock(&s->lock);
	if (c)
		return c;
	_cleanup_free_ char *host = xasprintf("tcp://%s", s->endpoints[ep]);
	if (http_client_new(host, &c, err) < 0)
		return NULL;
	return c;
}

static void client_put(struct etcd_store *s, size_t ep, struct http_client *c)
{
	pthread_mutex_lock(&s->lock);
	if (s->pool_n[ep] < ETCD_POOL) {
		s->pool[ep][s->pool_n[ep]++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	http_client_free(c);
}

struct stream_ctx {
	struct strbuf line;
	json_t *events; /* the first result with events, or a cancel */
	bool created;
	bool overflow;
};

static int on_stream(void *cls, const char *data, size_t len)
{
	struct stream_ctx *w = cls;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			if (w->line.len > ETCD_MAX_RESPONSE) {
				w->overflow = true;
				return 1;
			}
			strbuf_addch(&w->line, data[i]);
			continue;
		}
		json_t *j = json_loadb(w->line.buf, w->line.len, 0, NULL);
		strbuf_reset(&w->line);
		json_t *res = j ? json_object_get(j, "result") : NULL;
		if (!res) {
			json_decref(j);
			continue;
		}
		if (json_is_true(json_object_get(res, "created")))
			w->created = true;
		if (json_array_size(json_object_get(res, "events")) > 0 ||
		    json_is_true(json_object_get(res, "canceled"))) {
			w->events = json_incref(res);
			json_decref(j);
			return 1; /* stop: we have a batch */
		}
		json_decref(j);
	}
	return 0;
}

/*
 * POST a JSON body to path on the first endpoint that answers. Regular
 * calls: *ret is the parsed response. stream non-NULL: the body goes to the
 * stream parser instead and timeout_ms bounds the call.
 */
static int etcd_call(struct etcd_store *s, const char *path, json_t *body, long timeout_ms,
		     struct stream_ctx *stream, json_t **ret, struct berth_error **err)
{
	_cleanup_free_ char *data = json_dumps(body, JSON_COMPACT);
	pthread_mutex_lock(&s->lock);
	size_t start = s->current;
	pthread_mutex_unlock(&s->lock);
	_cleanup_error_ struct berth_error *last = NULL;
	for (size_t k = 0; k < s->n_endpoints; k++) {
		size_t ep = (start + k) % s->n_endpoints;
		berth_error_free(last);
		last = NULL;
		struct http_client *c = client_get(s, ep, &last);
		if (!c)
			continue;
		struct http_client_request rq = {
			.method = "POST",
			.path = path,
			.content_type = "application/json",
			.body = data,
			.body_len = strlen(data),
			.body_fd = -1,
			.timeout_ms = stream ? timeout_ms : ETCD_TIMEOUT_MS,
			.on_body = stream ? on_stream : NULL,
			.on_body_ctx = stream,
		};
		_cleanup_strbuf_ struct strbuf out = STRBUF_INIT;
		long status = 0;
		int r = http_client_do(c, &rq, &status, &out, &last);
		if (r < 0) {
			http_client_free(c);
			if (stream && stream->created)
				return 0; /* the watch timed out (or broke) after it was set up: no events */
			continue;
		}
		client_put(s, ep, c);
		pthread_mutex_lock(&s->lock);
		s->current = ep;
		pthread_mutex_unlock(&s->lock);
		if (stream)
			return 0;
		json_t *j = json_loadb(out.buf, out.len, 0, NULL);
		if (!j || status != 200) {
			const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
			if (!msg)
				msg = json_string_value(json_object_get(j, "message"));
			int code = msg && strstr(msg, "not found") ? ENOENT : EIO;
			r = berth_error_msg(err, code, "etcd %s: HTTP %ld: %s", path, status,
					    msg ? msg : out.buf);
			json_decref(j);
			return r;
		}
		*ret = j;
		return 0;
	}
	_cleanup_free_ char *why = last ? berth_error_string(last) : xstrdup("no endpoint");
	return berth_error_msg(err, ECONNREFUSED, "etcd unreachable at every endpoint: %s", why);
}

static int64_t j_i64(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static json_t *b64(const char *data, size_t len)
{
	_cleanup_free_ char *e = base64_encode(data, len);
	return json_string(e);
}

static json_t *b64s(const char *s)
{
	_cleanup_free_ char *e = base64_encode(s, strlen(s));
	return json_string(e);
}

static char *unb64(const json_t *v, size_t *ret_len)
{
	void *out = NULL;
	size_t n = 0;
	const char *s = json_string_value(v);
	if (!s || base64_decode(s, &out, &n) < 0) {
		out = xstrdup("");
		n = 0;
	}
	if (ret_len)
		*ret_len = n;
	return out;
}

static void kv_from_json(const json_t *j, struct store_kv *kv)
{
	kv->key = unb64(json_object_get(j, "key"), NULL);
	kv->value = unb64(json_object_get(j, "value"), &kv->value_len);
	kv->create_revision = j_i64(j, "create_revision");
	kv->mod_revision = j_i64(j, "mod_revision");
	kv->lease = j_i64(j, "lease");
}

static int64_t header_revision(const json_t *j)
{
	return j_i64(json_object_get(j, "header"), "revision");
}

static int et_get(struct store *st, const char *key, struct store_kv *ret, struct berth_error **err)
{
	json_t *res = NULL;
	json_t *body = json_pack("{s:o}", "key", b64s(key));
	int r = etcd_call(ES(st), "/v3/kv/range", body, 0, NULL, &res, err);
	json_decref(body);
	if (r < 0)
		return r;
	json_t *kvs = json_object_get(res, "kvs");
	if (json_array_size(kvs) == 0) {
		json_decref(res);
		return -ENOENT;
	}
	kv_from_json(json_array_get(kvs, 0), ret);
	json_decref(res);
	return 0;
}

static const char *const CMP_RESULT[] = { "EQUAL", "NOT_EQUAL", "LESS", "GREATER" };

static json_t *cmp_json(const struct store_cmp *c)
{
	json_t *j = json_pack("{s:o,s:s}", "key", b64s(c->key), "result", CMP_RESULT[c->result]);
	switch (c->target) {
	case STORE_CMP_MOD:
		json_object_set_new(j, "target", json_string("MOD"));
		json_object_set_new(j, "mod_revision", json_integer(c->revision));
		break;
	case STORE_CMP_CREATE:
		json_object_set_new(j, "target", json_string("CREATE"));
		json_object_set_new(j, "create_revision", json_integer(c->revision));
		break;
	case STORE_CMP_VALUE:
		json_object_set_new(j, "target", json_string("VALUE"));
		json_object_set_new(j, "value", b64(c->value ? c->value : "", c->value_len));
		break;
	}
	return j;
}

static json_t *op_json(const struct store_op *op)
{
	if (op->type == STORE_OP_DELETE)
		return json_pack("{s:{s:o}}", "request_delete_range", "key", b64s(op->key));
	json_t *put = json_pack("{s:o,s:o}", "key", b64s(op->key), "value",
				b64(op->value ? op->value : "", op->value_len));
	if (op->lease)
		json_object_set_new(put, "lease", json_integer(op->lease));
	return json_pack("{s:o}", "request_put", put);
}

static int et_txn(struct store *st, const struct store_cmp *cmps, size_t n_cmps, const struct store_op *ops,
		  size_t n_ops, bool *ret_ok, int64_t *ret_revision, struct berth_error **err)
{
	json_t *compare = json_array(), *success = json_array();
	for (size_t i = 0; i < n_cmps; i++)
		json_array_append_new(compare, cmp_json(&cmps[i]));
	for (size_t i = 0; i < n_ops; i++)
		json_array_append_new(success, op_json(&ops[i]));
	json_t *body = json_pack("{s:o,s:o}", "compare", compare, "success", success);
	json_t *res = NULL;
	int r = etcd_call(ES(st), "/v3/kv/txn", body, 0, NULL, &res, err);
	json_decref(body);
	if (r < 0)
		return r;
	*ret_ok = json_is_true(json_object_get(res, "succeeded"));
	*ret_revision = header_revision(res);
	json_decref(res);
	return 0;
}

static int et_range(struct store *st, const char *prefix, const char *start_after, size_t limit,
		    struct store_kv_list *ret, struct berth_error **err)
{
	_cleanup_free_ char *end = store_prefix_end(prefix);
	json_t *body = json_pack("{s:I}", "limit", (json_int_t)limit);
	if (start_after && strcmp(start_after, prefix) >= 0) {
		/* the smallest key after start_after: start_after + "\0" */
		size_t n = strlen(start_after);
		_cleanup_free_ char *k = xmalloc(n + 1);
		memcpy(k, start_after, n + 1);
		json_object_set_new(body, "key", b64(k, n + 1));
	} else {
		json_object_set_new(body, "key", *prefix ? b64s(prefix) : b64("\0", 1));
	}
	json_object_set_new(body, "range_end", *end ? b64s(end) : b64("\0", 1));
	json_t *res = NULL;
	int r = etcd_call(ES(st), "/v3/kv/range", body, 0, NULL, &res, err);
	json_decref(body);
	if (r < 0)
		return r;
	json_t *kvs = json_object_get(res, "kvs");
	size_t n = json_array_size(kvs);
	ret->kvs = xcalloc(n ? n : 1, sizeof(*ret->kvs));
	for (size_t i = 0; i < n; i++)
		kv_from_json(json_array_get(kvs, i), &ret->kvs[i]);
	ret->n = n;
	ret->more = json_is_true(json_object_get(res, "more"));
	ret->revision = header_revision(res);
	json_decref(res);
	return 0;
}

static int et_revision(struct store *st, int64_t *ret, struct berth_error **err)
{
	json_t *body = json_pack("{s:o,s:b}", "key", b64("\0", 1), "count_only", 1);
	json_t *res = NULL;
	int r = etcd_call(ES(st), "/v3/kv/range", body, 0, NULL, &res, err);
	json_decref(body);
	if (r < 0)
		return r;
	*ret = header_revision(res);
	json_decref(res);
	return 0;
}

static int et_watch(struct store *st, const char *prefix, int64_t from, int timeout_ms,
		    struct store_event_list *ret, struct berth_error **err)
{
	_cleanup_free_ char *end = store_prefix_end(prefix);
	json_t *create = json_pack("{s:o,s:o}", "key", *prefix ? b64s(prefix) : b64("\0", 1), "range_end",
				   *end ? b64s(end) : b64("\0", 1));
	if (from > 0)
		json_object_set_new(create, "start_revision", json_integer(from));
	json_t *body = json_pack("{s:o}", "create_request", create);
	struct stream_ctx w = { .line = STRBUF_INIT };
	/*
	 * A timeout of 0 asks for history only, at once. etcd sends history right
	 * after it has set the watch up, and only when there is some: ask for the
	 * revision first (nothing written since from: nothing to wait for), then
	 * give the watch the regular call timeout, not 1 ms, which a loaded etcd
	 * cannot meet (the call failed, or ended before the history came).
	 */
	long wait_ms = timeout_ms;
	if (timeout_ms <= 0) {
		int64_t rev;
		int r = et_revision(st, &rev, err);
		if (r < 0 || rev < from) {
			json_decref(body);
			strbuf_release(&w.line);
			ret->revision = rev;
			return r;
		}
		wait_ms = ETCD_TIMEOUT_MS; /* the prefix is expected to cover the writes since from */
	}
	int r = etcd_call(ES(st), "/v3/watch", body, wait_ms, &w, NULL, err);
	json_decref(body);
	strbuf_release(&w.line);
	if (r < 0) {
		json_decref(w.events);
		return r;
	}
	if (!w.events)
		return et_revision(st, &ret->revision, err);
	if (json_is_true(json_object_get(w.events, "canceled"))) {
		int64_t compact = j_i64(w.events, "compact_revision");
		json_decref(w.events);
		return berth_error_msg(err, ERANGE, "watch from revision %lld: compacted (oldest %lld)",
				       (long long)from, (long long)compact);
	}
	json_t *evs = json_object_get(w.events, "events");
	size_t n = json_array_size(evs);
	ret->events = xcalloc(n ? n : 1, sizeof(*ret->events));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(evs, i);
		const char *type = json_string_value(json_object_get(e, "type"));
		ret->events[i].type = type && streq(type, "DELETE") ? STORE_EVENT_DELETE : STORE_EVENT_PUT;
		kv_from_json(json_object_get(e, "kv"), &ret->events[i].kv);
	}
	ret->n = n;
	ret->revision = header_revision(w.events);
	json_decref(w.events);
	return 0;
}

static int et_lease_grant(struct store *st, int64_t ttl, int64_t *ret_id, struct berth_error **err)
{
	json_t *body = json_pack("{s:I}", "TTL", (json_int_t)ttl);
	json_t *res = NULL;
	int r = etcd_call(ES(st), "/v3/lease/grant", body, 0, NULL, &res, err);
	json_decref(body);
	if (r < 0)
		return r;
	*ret_id = j_i64(res, "ID");
	json_decref(res);
	if (*ret_id == 0)
		return berth_error_msg(err, EIO, "etcd: lease grant returned no ID");
	return 0;
}

static int et_lease_keepalive(struct store *st, int64_t id, int64_t *ret_ttl, struct berth_error **err)
{
	json_t *body = json_pack("{s:I}", "ID", (json_int_t)id);
	json_t *res = NULL;
	int r = etcd_call(ES(st), "/v3/lease/keepalive", body, 0, NULL, &res, err);
	json_decref(body);
	if (r < 0)
		return r;
	int64_t ttl = j_i64(json_object_get(res, "result"), "TTL");
	json_decref(res);
	if (ttl <= 0)
		return -ENOENT;
	*ret_ttl = ttl;
	return 0;
}

static int et_lease_revoke(struct store *st, int64_t id, struct berth_error **err)
{
	json_t *body = json_pack("{s:I}", "ID", (json_int_t)id);
	json_t *res = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = etcd_call(ES(st), "/v3/lease/revoke", body, 0, NULL, &res, &e);
	json_decref(body);
	json_decref(res);
	if (r == -ENOENT)
		return -ENOENT;
	if (r < 0) {
		if (err)
			*err = TAKE_PTR(e);
		return r;
	}
	return 0;
}

static void et_free(struct store *st)
{
	struct etcd_store *s = ES(st);
	for (size_t i = 0; i < s->n_endpoints; i++) {
		for (size_t k = 0; k < s->pool_n[i]; k++)
			http_client_free(s->pool[i][k]);
		free(s->endpoints[i]);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct store_ops etcd_ops = {
	.name = "etcd",
	.get = et_get,
	.txn = et_txn,
	.range = et_range,
	.watch = et_watch,
	.revision = et_revision,
	.lease_grant = et_lease_grant,
	.lease_keepalive = et_lease_keepalive,
	.lease_revoke = et_lease_revoke,
	.free = et_free,
};

int store_etcd_open(const char *endpoints, struct store **ret, struct berth_error **err)
{
	struct etcd_store *s = xcalloc(1, sizeof(*s));
	s->base.ops = &etcd_ops;
	pthread_mutex_init(&s->lock, NULL);
	_cleanup_store_ struct store *owner = &s->base;
	_cleanup_free_ char *copy = xstrdup(endpoints);
	char *save = NULL;
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (startswith(p, "etcd://"))
			p += 7;
		if (startswith(p, "http://"))
			p += 7;
		if (!*p || !strchr(p, ':') || s->n_endpoints == ETCD_MAX_ENDPOINTS)
			return berth_error_msg(err, EINVAL, "invalid etcd endpoint '%s' in '%s'", p,
					       endpoints);
		s->endpoints[s->n_endpoints++] = xstrdup(p);
	}
	if (s->n_endpoints == 0)
		return berth_error_msg(err, EINVAL, "invalid etcd endpoints '%s'", endpoints);
	int64_t rev;
	int r = et_revision(&s->base, &rev, err);
	if (r < 0)
		return berth_error_wrap(err, r, "open etcd store '%s'", endpoints);
	*ret = TAKE_PTR(owner);
	return 0;
}
